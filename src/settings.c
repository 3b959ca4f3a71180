/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The cachier.* settings (GUCs) and the parsing of durations and sizes
 *	  that settings and per-function options share.
 *
 * Durations are written as PostgreSQL intervals ('3 days', '500ms',
 * 'PT1H'); sizes as bytes with an optional unit (B, KB, MB, GB, TB, where
 * 1KB = 1024 bytes).  Check hooks parse once; the parsed value travels as
 * the GUC's "extra", so reading a setting on the hot path costs nothing.
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
#include "utils/datetime.h"
#include "utils/guc.h"

bool		cachier_enabled = true;
bool		cachier_skip_cache = false;
bool		cachier_overwrite_cache = false;
bool		cachier_verbose = false;
bool		cachier_default_next_time = false;
bool		cachier_default_allow_null = false;
bool		cachier_default_track_reads = true;

static char *stale_after_text;
static char *wait_timeout_text;
static char *max_age_text;
static char *entry_size_limit_text;
static char *cleanup_interval_text;

static int64 stale_after_us = CACHIER_NEVER;
static int64 wait_timeout_us = 30 * USECS_PER_SEC;
static int64 cleanup_interval_us = USECS_PER_DAY;
static int64 entry_size_limit = CACHIER_NEVER;
static bool max_age_set = false;
static int	max_entry_size = 10 * 1024 * 1024;	/* bytes, -1: unlimited */
static int	max_role_kb = 1024 * 1024;	/* kB, -1: unlimited */
static int	redis_max_ttl_s = 30 * 24 * 3600;	/* s, -1: none */
static int64 max_age_us = 0;

/* the largest duration we keep: far beyond any shelf life, safe to add */
#define MAX_DURATION_US		(INT64CONST(100) * 366 * USECS_PER_DAY * 100)

int64
cachier_default_stale_after_us(void)
{
	return stale_after_us;
}

int64
cachier_default_wait_timeout_us(void)
{
	return wait_timeout_us;
}

int64
cachier_default_cleanup_interval_us(void)
{
	return cleanup_interval_us;
}

int64
cachier_default_entry_size_limit(void)
{
	return entry_size_limit;
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

/* cachier.max_age, when set; a value <= 0 means "recompute every time" */
bool
cachier_max_age_us(int64 *max_age)
{
	*max_age = max_age_us;
	return max_age_set;
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

/* A per-function duration option: never negative. */
int64
cachier_option_interval_us(const Interval *span, const char *option)
{
	int64		us = cachier_interval_us(span);

	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", option),
				 errhint("Give a positive interval such as '3 days', or NULL for the cachier.%s default.",
						 option)));
	return us;
}

/*
 * The cleanup_interval option: positive, as cachier.cleanup_interval is (a
 * zero interval would have the background worker clean up without pause).
 */
int64
cachier_option_cleanup_interval_us(const Interval *span)
{
	int64		us = cachier_interval_us(span);

	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cleanup_interval must be positive"),
				 errhint("Give an interval such as '1 hour', or NULL for the cachier.cleanup_interval default.")));
	return us;
}

/* Parse interval text without raising errors; false if it is not one. */
static bool
parse_interval_text(const char *text, int64 *us)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_itm_in itm;
	Interval	span;

	if (strlen(text) >= sizeof(workbuf) / 2)
		return false;
	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm) != 0)
	{
		char		copy[256];

		strlcpy(copy, text, sizeof(copy));
		if (DecodeISO8601Interval(copy, &dtype, &itm) != 0)
			return false;
	}
	if (dtype != DTK_DELTA || itmin2interval(&itm, &span) != 0)
		return false;
	*us = cachier_interval_us(&span);
	return true;
}

static bool
is_word(const char *text, const char *word)
{
	return pg_strcasecmp(text, word) == 0;
}

/*
 * Parse "<number> [unit]" as bytes, or "unlimited" as CACHIER_NEVER; a
 * negative number (-1 included) is not a size.  No errors raised.
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

	if (is_word(text, "unlimited"))
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
			if (number >= (double) PG_INT64_MAX / 2)
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
				 errhint("Give a number of bytes, optionally followed by B, KB, MB, GB or TB (1KB = 1024 bytes), or \"unlimited\".")));
	return bytes;
}

/* ---------------------------------------------------------------- GUC hooks */

static bool
keep_parsed(void **extra, int64 value)
{
	/* a GUC's extra must come from malloc, which GUC code frees */
	int64	   *parsed = malloc(sizeof(int64));

	if (parsed == NULL)
		return false;
	*parsed = value;
	*extra = parsed;
	return true;
}

static bool
check_duration(char **newval, void **extra, bool allow_never,
			   bool allow_negative, int64 never_value)
{
	int64		us;

	if (allow_never && (is_word(*newval, "never") || is_word(*newval, "off") ||
						is_word(*newval, "-1") || (*newval)[0] == '\0'))
		return keep_parsed(extra, never_value);
	if (!parse_interval_text(*newval, &us))
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		GUC_check_errhint("Use an interval such as '3 days', '90s' or '500ms'%s.",
						  allow_never ? ", or 'never'" : "");
		return false;
	}
	if (us < 0 && !allow_negative)
	{
		GUC_check_errdetail("The interval must not be negative.");
		return false;
	}
	return keep_parsed(extra, us);
}

static bool
check_stale_after(char **newval, void **extra, GucSource source)
{
	return check_duration(newval, extra, true, false, CACHIER_NEVER);
}

static void
assign_stale_after(const char *newval, void *extra)
{
	stale_after_us = *(int64 *) extra;
}

static bool
check_wait_timeout(char **newval, void **extra, GucSource source)
{
	return check_duration(newval, extra, false, false, 0);
}

static void
assign_wait_timeout(const char *newval, void *extra)
{
	wait_timeout_us = *(int64 *) extra;
}

static bool
check_cleanup_interval(char **newval, void **extra, GucSource source)
{
	if (!check_duration(newval, extra, false, false, 0))
		return false;
	if (*(int64 *) *extra <= 0)
	{
		GUC_check_errdetail("The cleanup interval must be positive.");
		return false;
	}
	return true;
}

static void
assign_cleanup_interval(const char *newval, void *extra)
{
	cleanup_interval_us = *(int64 *) extra;
}

/* max_age: '' means unset; 0 or a negative interval recomputes every time */
static bool
check_max_age(char **newval, void **extra, GucSource source)
{
	if ((*newval)[0] == '\0' || is_word(*newval, "off") || is_word(*newval, "none"))
		return keep_parsed(extra, PG_INT64_MIN);
	return check_duration(newval, extra, false, true, 0);
}

static void
assign_max_age(const char *newval, void *extra)
{
	int64		v = *(int64 *) extra;

	max_age_set = (v != PG_INT64_MIN);
	max_age_us = max_age_set ? v : 0;
}

static bool
check_entry_size_limit(char **newval, void **extra, GucSource source)
{
	int64		bytes;

	if (!parse_size_text(*newval, &bytes))
	{
		GUC_check_errdetail("\"%s\" is not a size.", *newval);
		GUC_check_errhint("Give a number of bytes, optionally followed by B, KB, MB, GB or TB (1KB = 1024 bytes), or \"unlimited\".");
		return false;
	}
	return keep_parsed(extra, bytes);
}

static void
assign_entry_size_limit(const char *newval, void *extra)
{
	entry_size_limit = *(int64 *) extra;
}

static void
define_bool(const char *name, const char *desc, bool *var, bool boot)
{
	DefineCustomBoolVariable(name, desc, NULL, var, boot, PGC_USERSET, 0,
							 NULL, NULL, NULL);
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
	define_bool("cachier.verbose",
				"Explain each cached call with a NOTICE: hit, miss, stale, stored or not stored.",
				&cachier_verbose, false);
	define_bool("cachier.next_time",
				"Default for next_time: return a stale value at once and refresh it in the background.",
				&cachier_default_next_time, false);
	/* [F] freshness */
	define_bool("cachier.track_reads",
				"Default of the track_reads option: record what a computation reads and invalidate its entries when that changes.",
				&cachier_default_track_reads, true);
	define_bool("cachier.allow_null",
				"Default for allow_null: whether NULL results are cached.",
				&cachier_default_allow_null, false);

	DefineCustomStringVariable("cachier.stale_after",
							   "Default shelf life of a cached value ('never' keeps values forever).",
							   "An interval such as '3 days' or '90s', or 'never'.",
							   &stale_after_text, "never", PGC_USERSET, 0,
							   check_stale_after, assign_stale_after, NULL);
	DefineCustomStringVariable("cachier.max_age",
							   "Largest age of a cached value this call accepts; 0 or negative recomputes.",
							   "Empty means no limit beyond stale_after.",
							   &max_age_text, "", PGC_USERSET, 0,
							   check_max_age, assign_max_age, NULL);
	DefineCustomStringVariable("cachier.wait_timeout",
							   "Longest wait for another session computing the same key.",
							   "After it the waiting call computes the value itself.",
							   &wait_timeout_text, "30s", PGC_USERSET, 0,
							   check_wait_timeout, assign_wait_timeout, NULL);
	DefineCustomStringVariable("cachier.entry_size_limit",
							   "Default size limit of a cached value; larger values are returned but not stored.",
							   "Bytes with an optional unit (B, KB, MB, GB, TB; 1KB = 1024 bytes), or 'unlimited'.",
							   &entry_size_limit_text, "unlimited", PGC_USERSET, 0,
							   check_entry_size_limit, assign_entry_size_limit, NULL);
	DefineCustomStringVariable("cachier.cleanup_interval",
							   "Default time between two removals of the stale entries of a function.",
							   NULL,
							   &cleanup_interval_text, "1 day", PGC_USERSET, 0,
							   check_cleanup_interval, assign_cleanup_interval, NULL);

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

	/* [M] the shared memory tier (memory_tier.c): its size, fixed at start */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("cachier.shared_cache_size",
								"Size of the shared memory tier in front of the table tier.",
								"0 turns the memory tier off.  Set in postgresql.conf; takes effect at server start.",
								&cachier_shared_cache_kb, 0, 0, MAX_KILOBYTES,
								PGC_POSTMASTER, GUC_UNIT_KB, check_shared_cache_size, NULL, NULL);

	MarkGUCPrefixReserved("cachier");
}
