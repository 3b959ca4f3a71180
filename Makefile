# cachier — PGXS build.  `make && make install`, then see README.md.
# `make WITH_REDIS=0` builds without hiredis: no Redis tier.

EXTENSION   = cachier
MODULE_big  = cachier
WITH_REDIS ?= 1
ifeq ($(WITH_REDIS),0)
REDIS_SRC   = src/redis_client.c src/redis_tier.c
REDIS_CPPFLAGS = -DCACHIER_NO_REDIS
else
REDIS_SRC   = src/redis_none.c
REDIS_CPPFLAGS =
SHLIB_LINK  = -lhiredis
endif
OBJS        = $(patsubst %.c,%.o,$(sort $(filter-out $(REDIS_SRC),$(wildcard src/*.c))))
DATA        = $(sort $(wildcard sql/cachier--*.sql))
PGFILEDESC  = "cachier - persistent cache for SQL function results"

# pg_regress tests: every sql/*.sql that is not an install script.
REGRESS      = $(sort $(filter-out cachier--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_regress --temp-config=test/regress.conf

# isolation specs (concurrency promises)
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=test/regress.conf \
                 --inputdir=test/isolation --outputdir=output_iso

# TAP tests (restarts, dumps, standbys, workers, Redis) live in test/t
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(REDIS_CPPFLAGS)

EXTRA_CLEAN = tmp_check tmp_regress tmp_check_iso output_iso results regression.diffs regression.out log

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# prove looks in t/ by default; ours are in test/t
PROVE_TESTS = test/t/*.pl

# every object depends on the shared header
$(OBJS): src/cachier.h

.PHONY: bench
bench:
	test/bench/run.sh
