/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Per-function counters in shared memory, in the manner of
 *	  pg_stat_statements: a fixed table of cachier.max_tracked_functions
 *	  entries; when it is full the least used entries are evicted (and
 *	  counted).  The view cachier_stats reads copies of them
 *	  (cachier_stats_copy) through cachier.stats() in views.c,
 *	  cachier_stats_info through cachier.stats_info(), and
 *	  cachier_stats_reset() zeroes them.
 *
 * A call site keeps a StatsHandle (the key it counts for and a hint of
 * where its entry is), never a bare entry pointer: an eviction may give
 * the entry to another function, so every access checks the key first.
 *
 * Locking: stats_lock shared to find an entry and to count into it (the
 * counters under the entry's spinlock as well), exclusive to create, evict
 * or reset entries.  A key changes only under stats_lock exclusive.  No
 * catalog access while stats_lock is held.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"


#define USAGE_INIT			1.0 /* usage of a new entry */
#define USAGE_DECAY			0.99	/* usage kept at each eviction pass */
#define EVICT_PERCENT		5	/* share of the entries one pass evicts */
#define EVICT_MIN			10	/* ... and at least this many */

static void
make_key(StatsKey *key, Oid funcid)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->funcid = funcid;
}

static bool
same_key(const StatsKey *a, const StatsKey *b)
{
	return a->dbid == b->dbid && a->funcid == b->funcid;
}

static int
compare_usage(const void *a, const void *b)
{
	double		ua = (*(FunctionStats *const *) a)->usage;
	double		ub = (*(FunctionStats *const *) b)->usage;

	return (ua > ub) - (ua < ub);
}

/*
 * Evict the least used EVICT_PERCENT of the entries (at least EVICT_MIN,
 * so that passes stay rare in a small table) and age the others' usage;
 * stats_lock held exclusively.  A removed entry's key is cleared, so that
 * a handle still pointing there sees it is not its own.
 */
static void
evict_least_used(void)
{
	long		n = hash_get_num_entries(cachier_stats_hash);
	FunctionStats **all = palloc(Max(n, 1) * sizeof(FunctionStats *));
	HASH_SEQ_STATUS status;
	FunctionStats *fs;
	long		victims;
	long		i = 0;

	hash_seq_init(&status, cachier_stats_hash);
	while ((fs = hash_seq_search(&status)) != NULL)
	{
		fs->usage *= USAGE_DECAY;
		all[i++] = fs;
	}
	qsort(all, i, sizeof(FunctionStats *), compare_usage);
	victims = Min(i, Max(EVICT_MIN, i * EVICT_PERCENT / 100));
	for (n = 0; n < victims; n++)
	{
		fs = hash_search(cachier_stats_hash, &all[n]->key, HASH_REMOVE, NULL);
		if (fs)
			memset(&fs->key, 0, sizeof(fs->key));
	}
	cachier_shared->stats_evictions += victims;
	pfree(all);
}

/* Find or create key's entry; stats_lock held exclusively.  NULL: no room. */
static FunctionStats *
enter_entry(const StatsKey *key)
{
	FunctionStats *fs;
	bool		found;

	fs = hash_search(cachier_stats_hash, key, HASH_FIND, NULL);
	if (fs)
		return fs;
	if (hash_get_num_entries(cachier_stats_hash) >= cachier_max_tracked_functions)
		evict_least_used();
	fs = hash_search(cachier_stats_hash, key, HASH_ENTER_NULL, &found);
	if (fs && !found)
	{
		memset((char *) fs + offsetof(FunctionStats, mutex), 0,
			   sizeof(FunctionStats) - offsetof(FunctionStats, mutex));
		SpinLockInit(&fs->mutex);
		fs->usage = USAGE_INIT;
	}
	return fs;
}

/*
 * The handle's entry, with stats_lock held (shared if it existed, else
 * exclusive); NULL (and no lock held) when it is missing and create is
 * false, or when there is no room.  The caller releases stats_lock.
 */
static FunctionStats *
acquire_entry(StatsHandle *handle, bool create)
{
	LWLockAcquire(cachier_shared->stats_lock, LW_SHARED);
	if (handle->entry == NULL || !same_key(&handle->entry->key, &handle->key))
		handle->entry = hash_search(cachier_stats_hash, &handle->key, HASH_FIND, NULL);
	if (handle->entry != NULL)
		return handle->entry;
	LWLockRelease(cachier_shared->stats_lock);
	if (!create)
		return NULL;
	LWLockAcquire(cachier_shared->stats_lock, LW_EXCLUSIVE);
	handle->entry = enter_entry(&handle->key);
	if (handle->entry == NULL)
		LWLockRelease(cachier_shared->stats_lock);
	return handle->entry;
}

/*
 * A handle for counting funcid's events in this database, allocated in
 * mcxt; NULL when cachier is not preloaded (cachier_count ignores it).
 */
StatsHandle *
cachier_stats_handle(Oid funcid, MemoryContext mcxt)
{
	StatsHandle *handle;

	if (!cachier_preloaded())
		return NULL;
	handle = MemoryContextAlloc(mcxt, sizeof(StatsHandle));
	make_key(&handle->key, funcid);
	handle->entry = NULL;
	return handle;
}

static void
add_event(FunctionStats *fs, StatsEvent event, double ms)
{
	SpinLockAcquire(&fs->mutex);
	fs->usage += 1.0;
	switch (event)
	{
		case STAT_HIT:
			fs->hits++;
			fs->saved_ms += ms;
			break;
		case STAT_MISS:
			fs->misses++;
			break;
		case STAT_STALE_HIT:
			fs->stale_hits++;
			break;
		case STAT_WAIT:
			fs->waits++;
			break;
		case STAT_WAIT_TIMEOUT:
			fs->wait_timeouts++;
			break;
		case STAT_COMPUTATION:
			fs->computations++;
			fs->compute_ms += ms;
			break;
		case STAT_REFRESH_QUEUED:
			fs->refreshes_queued++;
			break;
		case STAT_REFRESH_DONE:
			fs->refreshes_done++;
			break;
		case STAT_REFRESH_FAILED:
			fs->refreshes_failed++;
			break;
		case STAT_SAVED:
			fs->saved_ms += ms;
			break;
		case STAT_INVALIDATION:	/* [F] */
			fs->invalidations++;
			break;
	}
	SpinLockRelease(&fs->mutex);
}

/* Count one event of the handle's function (creating its entry). */
void
cachier_count(StatsHandle *handle, StatsEvent event, double ms)
{
	FunctionStats *fs;

	if (handle == NULL)
		return;
	fs = acquire_entry(handle, true);
	if (fs == NULL)
		return;
	add_event(fs, event, ms);
	LWLockRelease(cachier_shared->stats_lock);
}

/* Count one event of funcid, for callers that keep no handle. */
void
cachier_count_function(Oid funcid, StatsEvent event, double ms)
{
	StatsHandle handle;

	if (!cachier_preloaded())
		return;
	make_key(&handle.key, funcid);
	handle.entry = NULL;
	cachier_count(&handle, event, ms);
}

/* When the background worker last cleaned funcid up; 0: not known. */
TimestampTz
cachier_stats_last_cleanup(Oid funcid)
{
	StatsHandle handle;
	FunctionStats *fs;
	TimestampTz last;

	if (!cachier_preloaded())
		return 0;
	make_key(&handle.key, funcid);
	handle.entry = NULL;
	fs = acquire_entry(&handle, false);
	if (fs == NULL)
		return 0;
	SpinLockAcquire(&fs->mutex);
	last = fs->last_cleanup;
	SpinLockRelease(&fs->mutex);
	LWLockRelease(cachier_shared->stats_lock);
	return last;
}

void
cachier_stats_set_last_cleanup(Oid funcid, TimestampTz when)
{
	StatsHandle handle;
	FunctionStats *fs;

	if (!cachier_preloaded())
		return;
	make_key(&handle.key, funcid);
	handle.entry = NULL;
	fs = acquire_entry(&handle, true);
	if (fs == NULL)
		return;
	SpinLockAcquire(&fs->mutex);
	fs->last_cleanup = when;
	SpinLockRelease(&fs->mutex);
	LWLockRelease(cachier_shared->stats_lock);
}

void
cachier_stats_require_preloaded(void)
{
	if (!cachier_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cachier statistics need cachier in shared_preload_libraries"),
				 errhint("Add cachier to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Copies of this database's entries, taken under stats_lock; *n set. */
FunctionStats *
cachier_stats_copy(int *n)
{
	FunctionStats *copies;
	HASH_SEQ_STATUS status;
	FunctionStats *fs;

	*n = 0;
	LWLockAcquire(cachier_shared->stats_lock, LW_SHARED);
	copies = palloc(Max(hash_get_num_entries(cachier_stats_hash), 1) * sizeof(FunctionStats));
	hash_seq_init(&status, cachier_stats_hash);
	while ((fs = hash_seq_search(&status)) != NULL)
	{
		if (fs->key.dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&fs->mutex);
		copies[(*n)++] = *fs;
		SpinLockRelease(&fs->mutex);
	}
	LWLockRelease(cachier_shared->stats_lock);
	return copies;
}

/* cachier.stats_info(OUT evictions bigint, OUT stats_reset timestamptz) */
PG_FUNCTION_INFO_V1(cachier_stats_info);
Datum
cachier_stats_info(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	cachier_stats_require_preloaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	LWLockAcquire(cachier_shared->stats_lock, LW_SHARED);
	values[0] = Int64GetDatum(cachier_shared->stats_evictions);
	values[1] = TimestampTzGetDatum(cachier_shared->stats_reset);
	LWLockRelease(cachier_shared->stats_lock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * cachier_stats_reset(): zero the counters of this database's functions
 * (keeping when each was last cleaned up), the count of evictions, and
 * note the time in stats_reset.
 */
PG_FUNCTION_INFO_V1(cachier_stats_reset);
Datum
cachier_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS status;
	FunctionStats *fs;

	cachier_stats_require_preloaded();
	LWLockAcquire(cachier_shared->stats_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, cachier_stats_hash);
	while ((fs = hash_seq_search(&status)) != NULL)
	{
		if (fs->key.dbid != MyDatabaseId)
			continue;
		memset((char *) fs + offsetof(FunctionStats, hits), 0,
			   offsetof(FunctionStats, last_cleanup) - offsetof(FunctionStats, hits));
	}
	cachier_shared->stats_evictions = 0;
	cachier_shared->stats_reset = GetCurrentTimestamp();
	LWLockRelease(cachier_shared->stats_lock);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- [M] memory tier */

/*
 * Add a backend's memory-tier counts of (dbid, funcid) since its last
 * flush: hits count as hits and as memory hits.  Called now and then,
 * never per hit (memory_tier.c batches them).
 */
void
cachier_stats_add_memory(Oid dbid, Oid funcid, int64 hits, double saved_ms,
						 int64 evictions)
{
	StatsHandle handle;
	FunctionStats *fs;

	if (!cachier_preloaded() || (hits == 0 && saved_ms == 0 && evictions == 0))
		return;
	memset(&handle.key, 0, sizeof(handle.key));
	handle.key.dbid = dbid;
	handle.key.funcid = funcid;
	handle.entry = NULL;
	fs = acquire_entry(&handle, true);
	if (fs == NULL)
		return;
	SpinLockAcquire(&fs->mutex);
	fs->usage += hits;
	fs->hits += hits;
	fs->memory_hits += hits;
	fs->saved_ms += saved_ms;
	fs->memory_evictions += evictions;
	SpinLockRelease(&fs->mutex);
	LWLockRelease(cachier_shared->stats_lock);
}
