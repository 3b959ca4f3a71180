/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Per-function counters in shared memory, in the manner of
 *	  pg_stat_statements: the view cachier_stats reads them through
 *	  cachier.stats(), cachier_stats_reset() zeroes them.
 *
 * A call site finds its function's entry once and keeps the pointer:
 * entries are never removed (a reset zeroes them), so it stays valid.
 * Locking: see shared_state.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

/* The statistics entry of a function of this database, or NULL. */
FunctionStats *
cachier_stats_entry(Oid funcid)
{
	StatsKey	key;
	FunctionStats *fs;
	bool		found;

	if (!cachier_preloaded())
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.funcid = funcid;
	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	fs = hash_search(cachier_stats_hash, &key, HASH_FIND, NULL);
	LWLockRelease(cachier_shared->lock);
	if (fs)
		return fs;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	fs = hash_search(cachier_stats_hash, &key, HASH_ENTER_NULL, &found);
	if (fs && !found)
	{
		memset((char *) fs + offsetof(FunctionStats, mutex), 0,
			   sizeof(FunctionStats) - offsetof(FunctionStats, mutex));
		SpinLockInit(&fs->mutex);
	}
	LWLockRelease(cachier_shared->lock);
	return fs;					/* NULL when the table is full */
}

void
cachier_count(FunctionStats *fs, StatsEvent event, double ms)
{
	if (fs == NULL)
		return;
	SpinLockAcquire(&fs->mutex);
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
	}
	SpinLockRelease(&fs->mutex);
}

static void
require_preloaded(void)
{
	if (!cachier_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cachier statistics need cachier in shared_preload_libraries"),
				 errhint("Add cachier to shared_preload_libraries in postgresql.conf and restart the server.")));
}

#define STATS_COLS 12

/* cachier.stats(): the counters of this database's functions */
PG_FUNCTION_INFO_V1(cachier_stats);
Datum
cachier_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	FunctionStats *fs;

	require_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	hash_seq_init(&status, cachier_stats_hash);
	while ((fs = hash_seq_search(&status)) != NULL)
	{
		Datum		values[STATS_COLS];
		bool		nulls[STATS_COLS] = {false};
		FunctionStats copy;

		/* this database's functions that still exist */
		if (fs->key.dbid != MyDatabaseId ||
			!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fs->key.funcid)))
			continue;
		SpinLockAcquire(&fs->mutex);
		copy = *fs;
		SpinLockRelease(&fs->mutex);
		values[0] = ObjectIdGetDatum(copy.key.funcid);
		values[1] = Int64GetDatum(copy.hits);
		values[2] = Int64GetDatum(copy.misses);
		values[3] = Int64GetDatum(copy.stale_hits);
		values[4] = Int64GetDatum(copy.waits);
		values[5] = Int64GetDatum(copy.wait_timeouts);
		values[6] = Int64GetDatum(copy.computations);
		values[7] = Int64GetDatum(copy.refreshes_queued);
		values[8] = Int64GetDatum(copy.refreshes_done);
		values[9] = Int64GetDatum(copy.refreshes_failed);
		values[10] = Float8GetDatum(copy.compute_ms);
		values[11] = Float8GetDatum(copy.saved_ms);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(cachier_shared->lock);
	return (Datum) 0;
}

/* cachier_stats_reset(): zero the counters of this database's functions */
PG_FUNCTION_INFO_V1(cachier_stats_reset);
Datum
cachier_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS status;
	FunctionStats *fs;

	require_preloaded();
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, cachier_stats_hash);
	while ((fs = hash_seq_search(&status)) != NULL)
	{
		TimestampTz last_cleanup;

		if (fs->key.dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&fs->mutex);
		last_cleanup = fs->last_cleanup;
		memset((char *) fs + offsetof(FunctionStats, hits), 0,
			   sizeof(FunctionStats) - offsetof(FunctionStats, hits));
		fs->last_cleanup = last_cleanup;
		SpinLockRelease(&fs->mutex);
	}
	LWLockRelease(cachier_shared->lock);
	PG_RETURN_VOID();
}
