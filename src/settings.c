/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The cachier.* settings (GUCs) and the validation of durations and
 *	  sizes that settings and per-function options share.
 *
 * Durations and sizes are integer GUCs with PostgreSQL's units (as
 * lock_timeout and work_mem are): '3d', '90s', '500ms', '10MB'; -1 means
 * never / unlimited where that makes sense.  SHOW, pg_settings.unit and
 * min/max come with them.  The per-function options, which are intervals
 * and size text, are checked against the same ranges (option_ranges).
 *
 * Every setting's variable lives here, also those that one other file
 * reads: settings.c depends on no other file of cachier (the settings of
 * context keys are defined by context_key.c, called from _PG_init).
 *
 * cachier.trace and its deprecated name cachier.verbose both turn on the
 * per-call NOTICEs; cachier_verbose is on while either is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "cachier_redis.h"
#include "cachier_shared.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"

bool		cachier_enabled = true;
bool		cachier_skip_cache = false;
bool		cachier_overwrite_cache = false;
bool		cachier_verbose = false;	/* cachier.trace or cachier.verbose */
bool		cachier_default_next_time = false;
bool		cachier_default_allow_null = false;
bool		cachier_default_track_reads = true;

/* settings read by the files that use them (declared in their headers) */
int			cachier_max_workers = 8;	/* worker.c */
int			cachier_refresh_timeout_ms = -1;	/* refresh.c */
int			cachier_max_tracked_functions = 1000;	/* stats.c */
int			cachier_max_dependent_functions = 4096; /* dep_registry.c */
int			cachier_max_dependency_relations = 8192;	/* dep_registry.c */
char	   *cachier_redis_url = NULL;	/* redis_client.c */
char	   *cachier_redis_key_prefix = NULL;
int			cachier_redis_timeout_ms = 200;
char	   *cachier_redis_namespace = NULL; /* redis_tier.c */
int			cachier_shared_cache_kb = 0;	/* memory_tier.c: 0, no memory tier */

static bool trace_setting = false;	/* cachier.trace */
static bool verbose_setting = false;	/* cachier.verbose, deprecated */
static int	stale_after_s = -1;	/* -1: never */
static int	wait_timeout_ms = 30 * 1000;
static int	cleanup_interval_s = 24 * 3600;
static int	entry_size_limit = -1;	/* bytes, -1: unlimited */
static int	max_age_s = -1;		/* -1: no limit */
static int	max_entry_size = 10 * 1024 * 1024;	/* bytes, -1: unlimited */
static int	max_role_kb = 1024 * 1024;	/* kB, -1: unlimited */
static int	redis_max_ttl_s = 30 * 24 * 3600;	/* s, -1: none */

/* the largest duration we keep: far beyond any shelf life, safe to add */
#define MAX_DURATION_US		(INT64CONST(100) * 366 * USECS_PER_DAY * 100)

int64
cachier_default_stale_after_us(void)
{
	return stale_after_s < 0 ? CACHIER_NEVER : (int64) stale_after_s * USECS_PER_SEC;
}

int64
cachier_default_wait_timeout_us(void)
{
	return (int64) wait_timeout_ms * 1000;
}

int64
cachier_default_cleanup_interval_us(void)
{
	return (int64) cleanup_interval_s * USECS_PER_SEC;
}

int64
cachier_default_entry_size_limit(void)
{
	return entry_size_limit < 0 ? CACHIER_NEVER : (int64) entry_size_limit;
}

/* cachier.max_entry_size in bytes, CACHIER_NEVER when unlimited */
int64
cachier_max_entry_size(void)
{
	return max_entry_size < 0 ? CACHIER_NEVER : (int64) max_entry_size;
}

/* cachier.max_role_bytes in bytes, CACHIER_NEVER when unlimited */
int64
cachier_max_role_bytes(void)
{
	return max_role_kb < 0 ? CACHIER_NEVER : (int64) max_role_kb * 1024;
}

/* cachier.redis_max_ttl in microseconds, CACHIER_NEVER when there is none */
int64
cachier_redis_max_ttl_us(void)
{
	return redis_max_ttl_s < 0 ? CACHIER_NEVER : (int64) redis_max_ttl_s * USECS_PER_SEC;
}

/* cachier.max_age, when set (not -1); 0 means "recompute every time" */
bool
cachier_max_age_us(int64 *max_age)
{
	*max_age = max_age_s < 0 ? 0 : (int64) max_age_s * USECS_PER_SEC;
	return max_age_s >= 0;
}

/* An interval as microseconds, months counted as 30 days (as interval
 * comparison does), clamped to a range that cannot overflow when added. */
int64
cachier_interval_us(const Interval *span)
{
	double		us;

	us = (double) span->month * DAYS_PER_MONTH * USECS_PER_DAY
		+ (double) span->day * USECS_PER_DAY
		+ (double) span->time;
	if (us > (double) MAX_DURATION_US)
		return MAX_DURATION_US;
	if (us < -(double) MAX_DURATION_US)
		return -MAX_DURATION_US;
	return (int64) us;
}

Interval *
cachier_us_interval(int64 us)
{
	Interval   *span = palloc0(sizeof(Interval));

	span->day = us / USECS_PER_DAY;
	span->time = us % USECS_PER_DAY;
	return span;
}

/*
 * The range of each duration option, the same as its setting's: an
 * option may not say what the setting may not.
 */
typedef struct OptionRange
{
	const char *option;
	int64		min_us;
	int64		max_us;
	const char *example;
} OptionRange;

static const OptionRange option_ranges[] = {
	{"stale_after", 0, (int64) INT_MAX * USECS_PER_SEC, "'3 days'"},
	{"wait_timeout", 0, (int64) INT_MAX * 1000, "'30 seconds'"},
	{"cleanup_interval", 1, (int64) INT_MAX * USECS_PER_SEC, "'1 hour'"},
	{"max_stale_age", 0, (int64) INT_MAX * USECS_PER_SEC, "'1 day'"},
};

static const OptionRange *
option_range(const char *option)
{
	size_t		i;

	for (i = 0; i < lengthof(option_ranges); i++)
		if (strcmp(option_ranges[i].option, option) == 0)
			return &option_ranges[i];
	elog(ERROR, "unknown duration option \"%s\"", option);
	return NULL;
}

/*
 * A per-function duration option, within the range of its setting: never
 * negative (cleanup_interval positive, as a zero interval would have the
 * background worker clean up without pause) and no longer than the
 * setting can be.
 */
int64
cachier_option_interval_us(const Interval *span, const char *option)
{
	const OptionRange *range = option_range(option);
	int64		us = cachier_interval_us(span);

	if (us < range->min_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 range->min_us > 0 ?
				 errmsg("%s must be positive", option) :
				 errmsg("%s must not be negative", option),
				 errhint("Give an interval such as %s, or NULL for the default.",
						 range->example)));
	if (us > range->max_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is out of range", option),
				 errdetail("The longest %s is %s, as for its setting.", option,
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(cachier_us_interval(range->max_us)))))));
	return us;
}

/* The cleanup_interval option (see cachier_option_interval_us). */
int64
cachier_option_cleanup_interval_us(const Interval *span)
{
	return cachier_option_interval_us(span, "cleanup_interval");
}

static bool
is_word(const char *text, const char *word)
{
	return pg_strcasecmp(text, word) == 0;
}

/*
 * Parse "<number> [unit]" as bytes, or "unlimited" or -1 as CACHIER_NEVER
 * (as the settings' -1); other negative numbers are not sizes, nor is
 * anything larger than a setting can be.  No errors raised.
 */
static bool
parse_size_text(const char *text, int64 *bytes)
{
	static const struct
	{
		const char *unit;
		int			shift;
	}			units[] = {
		{"", 0}, {"b", 0}, {"kb", 10}, {"mb", 20}, {"gb", 30}, {"tb", 40}
	};
	char	   *end;
	double		number;
	size_t		i;

	if (is_word(text, "unlimited") || strcmp(text, "-1") == 0)
	{
		*bytes = CACHIER_NEVER;
		return true;
	}
	errno = 0;
	number = strtod(text, &end);
	if (end == text || errno != 0 || number < 0 || isnan(number))
		return false;
	while (isspace((unsigned char) *end))
		end++;
	for (i = 0; i < lengthof(units); i++)
	{
		if (pg_strcasecmp(end, units[i].unit) == 0)
		{
			number = ldexp(number, units[i].shift);
			if (number > (double) INT_MAX)
				return false;
			*bytes = (int64) number;
			return true;
		}
	}
	return false;
}

/* A size option or setting, with a clear error for bad input. */
int64
cachier_parse_size(const char *text, const char *option)
{
	int64		bytes;

	if (!parse_size_text(text, &bytes))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for %s: \"%s\"", option, text),
				 errhint("Give a number of bytes up to 2GB, optionally followed by B, kB, MB or GB (1kB = 1024 bytes), or \"unlimited\" (-1).")));
	return bytes;
}

/* ---------------------------------------------------------------- Redis tier */

/* Why a function whose storage names Redis stores nothing there. */
const char *
cachier_redis_unset_reason(void)
{
#ifdef CACHIER_NO_REDIS
	return "Its storage names Redis, and this build of cachier has no Redis tier (WITH_REDIS=0).";
#else
	return "Its storage names Redis, and cachier.redis_url is not set.";
#endif
}

/*
 * At configure time: storage 'redis' or 'both' needs the Redis tier.  A
 * build without it refuses them; without cachier.redis_url they are
 * accepted (the URL may come with the next reload) with a WARNING.
 */
void
cachier_check_storage(Storage storage)
{
	if (storage == STORAGE_TABLE)
		return;
#ifdef CACHIER_NO_REDIS
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("storage \"%s\" needs the Redis tier, which this build of cachier does not have",
					cachier_storage_name(storage)),
			 errhint("Use storage => 'table', or build cachier with Redis (make WITH_REDIS=1, which needs libhiredis-dev).")));
#else
	if (cachier_redis_url == NULL || cachier_redis_url[0] == '\0')
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("cachier.redis_url is not set, so storage \"%s\" keeps nothing in Redis",
						cachier_storage_name(storage)),
				 storage == STORAGE_REDIS ?
				 errdetail("Until it is set, this function's results are computed on every call and not stored.") :
				 errdetail("Until it is set, this function's entries are kept in the table only."),
				 errhint("A superuser sets cachier.redis_url in postgresql.conf or with ALTER SYSTEM, then reloads the configuration.")));
#endif
}

/* ---------------------------------------------------------------- GUC hooks */

static void
assign_trace(bool newval, void *extra)
{
	cachier_verbose = newval || verbose_setting;
}

static void
assign_verbose(bool newval, void *extra)
{
	cachier_verbose = newval || trace_setting;
}

static void
define_bool(const char *name, const char *desc, bool *var, bool boot)
{
	DefineCustomBoolVariable(name, desc, NULL, var, boot, PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/* A duration or size set per session: an integer with a unit. */
static void
define_unit(const char *name, const char *desc, const char *long_desc, int *var,
			int boot, int min, int unit)
{
	DefineCustomIntVariable(name, desc, long_desc, var, boot, min, INT_MAX,
							PGC_USERSET, unit, NULL, NULL, NULL);
}

/* [M] cachier.shared_cache_size: 0 (off) or at least 1MB */
static bool
check_shared_cache_size(int *newval, void **extra, GucSource source)
{
	if (*newval != 0 && *newval < 1024)
	{
		GUC_check_errdetail("The memory tier needs at least 1MB; 0 turns it off.");
		return false;
	}
	return true;
}

void
cachier_define_settings(void)
{
	define_bool("cachier.enabled",
				"Whether calls go through the cache; off: neither read nor written.",
				&cachier_enabled, true);
	define_bool("cachier.skip_cache",
				"Call functions directly, neither reading nor writing the cache.",
				&cachier_skip_cache, false);
	define_bool("cachier.overwrite_cache",
				"Recompute, store and return a new value even when a fresh one is cached.",
				&cachier_overwrite_cache, false);
	DefineCustomBoolVariable("cachier.trace",
							 "Explain each cached call with a NOTICE: hit, miss, stale, stored or not stored.",
							 NULL, &trace_setting, false, PGC_USERSET, 0,
							 NULL, assign_trace, NULL);
	DefineCustomBoolVariable("cachier.verbose",
							 "Deprecated name of cachier.trace (VERBOSE is an SQL keyword); the trace is on while either is on.",
							 "To be removed in a later release: use cachier.trace.",
							 &verbose_setting, false, PGC_USERSET, 0,
							 NULL, assign_verbose, NULL);
	define_bool("cachier.next_time",
				"Default for next_time: return a stale value at once and refresh it in the background.",
				&cachier_default_next_time, false);
	/* [F] freshness */
	define_bool("cachier.track_reads",
				"Default of the track_reads option: record what a computation reads and invalidate its entries when that changes.",
				&cachier_default_track_reads, true);
	/* [X] context keys */
	define_bool("cachier.allow_null",
				"Default for allow_null: whether NULL results are cached.",
				&cachier_default_allow_null, false);

	define_unit("cachier.stale_after",
				"Default shelf life of a cached value.",
				"-1 keeps values forever.",
				&stale_after_s, -1, -1, GUC_UNIT_S);
	define_unit("cachier.max_age",
				"Largest age of a cached value this call accepts; 0 recomputes every time.",
				"-1 means no limit beyond stale_after.",
				&max_age_s, -1, -1, GUC_UNIT_S);
	define_unit("cachier.wait_timeout",
				"Longest wait for another session computing the same key.",
				"After it the waiting call computes the value itself.",
				&wait_timeout_ms, 30 * 1000, 0, GUC_UNIT_MS);
	define_unit("cachier.entry_size_limit",
				"Default size limit of a cached value; larger values are returned but not stored.",
				"-1 means no limit (cachier.max_entry_size still applies).",
				&entry_size_limit, -1, -1, GUC_UNIT_BYTE);
	/* at least 1s: 0 would have the background worker clean up without pause */
	define_unit("cachier.cleanup_interval",
				"Default time between two removals of the stale entries of a function.",
				NULL,
				&cleanup_interval_s, 24 * 3600, 1, GUC_UNIT_S);

	DefineCustomIntVariable("cachier.max_workers",
							"Most database workers (cleanup and next_time refreshes) running at once.",
							"Each is a background worker: max_worker_processes must leave room for them.",
							&cachier_max_workers, 8, 1, 64, PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/* [B] background workers */
	DefineCustomIntVariable("cachier.refresh_timeout",
							"Longest time a background refresh may run; one that takes longer fails.",
							"-1 (or 0) means no limit.  A shorter statement_timeout of the refreshing role applies too.",
							&cachier_refresh_timeout_ms, -1, -1, INT_MAX, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("cachier.redis_url",
							   "Where the Redis tier is: redis://[user:password@]host[:port][/db] or a unix socket path.",
							   "Empty: no Redis tier; functions whose storage is 'redis' are not cached.",
							   &cachier_redis_url, "", PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("cachier.redis_timeout",
							"Deadline of a connection to Redis and of each command.",
							"A Redis that does not answer in time is skipped for a second.",
							&cachier_redis_timeout_ms, 200, 1, 60000, PGC_USERSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("cachier.redis_key_prefix",
							   "Prefix of cachier's keys in Redis.",
							   NULL,
							   &cachier_redis_key_prefix, "cachier:", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	/* [C] the namespace of this database's keys in Redis (redis_tier.c) */
	DefineCustomStringVariable("cachier.redis_namespace",
							   "Namespace of this database's Redis entries; databases in one namespace share them.",
							   "Empty: this cluster's system identifier and this database's OID, so only this database and its physical standbys share.",
							   &cachier_redis_namespace, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);

	/* [E] limits of what a role can store: only a superuser raises them */
	DefineCustomIntVariable("cachier.max_entry_size",
							"Largest cached value any call stores; it caps entry_size_limit.",
							"Larger values are returned but not stored. -1 means no limit.",
							&max_entry_size, 10 * 1024 * 1024, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("cachier.max_role_bytes",
							"Largest total size of the cache entries that one role's calls stored.",
							"Counts each entry's arguments, value and a per-row overhead. -1 means no limit.",
							&max_role_kb, 1024 * 1024, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("cachier.redis_max_ttl",
							"Longest time any entry stays in Redis.",
							"Caps the TTL that the shelf life gives; entries without a shelf life get it. -1 means no limit.",
							&redis_max_ttl_s, 30 * 24 * 3600, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	/* [D] statistics: the size of the fixed shared table, fixed at start */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("cachier.max_tracked_functions",
								"Most functions with statistics in shared memory.",
								"When the table is full the least used entries are evicted; cachier_stats_info counts evictions.",
								&cachier_max_tracked_functions, 1000, 100, 100000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);

	/* [F] freshness: the size of the dependency registry, fixed at start */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("cachier.max_dependent_functions",
								"Most functions whose entries depend on tables, in shared memory.",
								"When full, the results of further such functions are not stored.",
								&cachier_max_dependent_functions, 4096, 100, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("cachier.max_dependency_relations",
								"Most relations that cached functions depend on, in shared memory.",
								"When full, results that read further relations are not stored.",
								&cachier_max_dependency_relations, 8192, 100, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
	/* [M] the shared memory tier (memory_tier.c): its size, fixed at start */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("cachier.shared_cache_size",
								"Size of the shared memory tier in front of the table tier.",
								"0 turns the memory tier off.  Set in postgresql.conf; takes effect at server start.",
								&cachier_shared_cache_kb, 0, 0, MAX_KILOBYTES,
								PGC_POSTMASTER, GUC_UNIT_KB, check_shared_cache_size, NULL, NULL);
}

/* ---------------------------------------------------------------- storage option */

Storage
cachier_parse_storage(const char *text)
{
	if (pg_strcasecmp(text, "table") == 0)
		return STORAGE_TABLE;
	if (pg_strcasecmp(text, "redis") == 0)
		return STORAGE_REDIS;
	if (pg_strcasecmp(text, "both") == 0)
		return STORAGE_BOTH;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for storage: \"%s\"", text),
			 errhint("Use 'table' (the default), 'redis' or 'both'.")));
	return STORAGE_TABLE;
}

const char *
cachier_storage_name(Storage storage)
{
	return storage == STORAGE_REDIS ? "redis" : storage == STORAGE_BOTH ? "both" : "table";
}
