# cachier — PGXS build.  `make && make install`, then see README.md.

EXTENSION   = cachier
MODULE_big  = cachier
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
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
PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK  = -lhiredis

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
