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
# the ones that need a server with shared_preload_libraries = 'cachier',
# and with max_prepared_transactions > 0 (as test/regress.conf sets)
REGRESS_NEED_PRELOAD = options stats upgrade visibility
REGRESS_NEED_2PC     = transactions

# `make installcheck` runs the pg_regress tests against the running server
# (PGHOST, PGPORT, PGUSER as for psql), as PGXS users expect.
# `make installcheck-full` (TEMP_INSTANCE=1) runs everything, pg_regress,
# isolation specs and TAP tests, on throwaway clusters with
# test/regress.conf: the full suite, which test/run-tests.sh runs.
# The test databases are UTF8 with the C.UTF-8 locale whatever the
# environment says (a machine without LANG would give SQL_ASCII, where ICU
# collations, which the context tests use, do not exist): pg_regress asks
# for the encoding, and the throwaway clusters' initdb takes the locale
# from the environment the test targets set (after the includes).
TEST_LOCALE = --encoding=UTF8
REGRESS_OPTS = $(TEST_LOCALE)
ifdef TEMP_INSTANCE
REGRESS_OPTS += --temp-instance=tmp_regress --temp-config=test/regress.conf

# isolation specs (concurrency promises)
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = $(TEST_LOCALE) --temp-instance=tmp_check_iso --temp-config=test/regress.conf \
                 --inputdir=test/isolation --outputdir=output_iso

# TAP tests (restarts, dumps, standbys, workers, Redis) live in test/t
TAP_TESTS = 1
else
NO_INSTALLCHECK = 1
endif

# PostgreSQL's test tools refuse to start a cluster as root, and root has
# no role on a default server: as root, the tests run as the postgres user
# on a copy of the tree (test/scripts/dev-check.sh), unless PGUSER names
# the role to connect as (and then only against a running server).
ifeq ($(shell id -u),0)
ifneq ($(TEMP_INSTANCE)$(if $(PGUSER),,nouser),)
AS_POSTGRES = 1
NO_INSTALLCHECK = 1
endif
endif

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(REDIS_CPPFLAGS)

EXTRA_CLEAN = tmp_check tmp_regress tmp_check_iso tmp_memory output_iso results regression.diffs regression.out log

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# prove looks in t/ by default; ours are in test/t
PROVE_TESTS = test/t/*.pl

# every object depends on the shared header
$(OBJS): src/cachier.h

.PHONY: bench installcheck-full installcheck-memory-tier
bench:
	test/bench/run.sh

installcheck-full:
	$(MAKE) installcheck TEMP_INSTANCE=1

# `make installcheck-memory-tier` runs the correctness tests again with the
# shared memory tier on (test/memory-tier.conf), and checks that the tier
# served hits meanwhile: every pg_regress file, the isolation specs of
# freshness and the TAP tests of freshness and context keys
# (test/scripts/memory-tier.sh).  As the postgres user, after make install;
# test/run-tests.sh runs it.
MEMORY_TIER_REGRESS   = $(sort $(filter-out cachier--%,$(basename $(notdir $(wildcard sql/*.sql)))))
MEMORY_TIER_ISOLATION = $(sort $(filter fresh_%,$(basename $(notdir $(wildcard test/isolation/specs/*.spec)))))
MEMORY_TIER_TAP       = $(sort $(wildcard test/t/05[0-9]_*.pl test/t/06[0-9]_*.pl))
installcheck-memory-tier:
	bindir='$(bindir)' make='$(MAKE)' \
	pg_regress='$(top_builddir)/src/test/regress/pg_regress' \
	pg_isolation_regress='$(top_builddir)/src/test/isolation/pg_isolation_regress' \
	test/scripts/memory-tier.sh '$(MEMORY_TIER_REGRESS)' '$(MEMORY_TIER_ISOLATION)' '$(MEMORY_TIER_TAP)'

installcheck installcheck-memory-tier: export LANG := C.UTF-8
installcheck installcheck-memory-tier: export LC_CTYPE := C.UTF-8
installcheck installcheck-memory-tier: export LC_COLLATE := C.UTF-8

ifdef AS_POSTGRES
installcheck:
	test/scripts/dev-check.sh --
else ifndef TEMP_INSTANCE
installcheck:
	@tests='$(REGRESS)'; \
	skip() { [ -n "$$2" ] || return 0; echo "$$1: skipping $$2"; for t in $$2; do tests=$$(echo " $$tests " | sed "s/ $$t / /"); done; }; \
	show() { '$(bindir)/psql' -XAtqc "SHOW $$1" postgres; }; \
	preload=$$(show shared_preload_libraries) && prepared=$$(show max_prepared_transactions) || exit 1; \
	case ",$$preload," in *cachier*) ;; \
	*) skip "cachier is not in shared_preload_libraries" '$(filter $(REGRESS_NEED_PRELOAD),$(REGRESS))';; esac; \
	[ "$$prepared" != 0 ] || skip "max_prepared_transactions is 0" '$(filter $(REGRESS_NEED_2PC),$(REGRESS))'; \
	$(pg_regress_installcheck) $(REGRESS_OPTS) $$tests
endif
