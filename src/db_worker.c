/*-------------------------------------------------------------------------
 *
 * db_worker.c
 *	  The two short-lived workers the launcher (worker.c) starts in a
 *	  database: the cleanup worker and the refresh worker.
 *
 * The cleanup worker removes the stale entries of each function with
 * cleanup_stale whose cleanup_interval has passed (bounded batches, each
 * its own transaction, see cleanup.c), writes when the next cleanup is due
 * into its slot and exits.  The refresh worker takes the database's queued
 * refreshes, one role after another (refresh_queue.c), runs each in its own
 * transaction as a clean session of that role (refresh.c) and exits when
 * the queue has none left.  Neither waits for the other.
 *
 * Locking: a worker sets its pid in its slot under cachier_shared->lock
 * once connected and clears it, under the lock, in its exit callback: the
 * launcher and DROP DATABASE rely on that (see worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void cachier_cleanup_main(Datum arg);
PGDLLEXPORT void cachier_refresh_main(Datum arg);

static WorkerKind my_kind;
static bool connected = false;
static TimestampTz next_cleanup;	/* what the cleanup worker reports */

/* A worker ends: clear its pid (and say when to clean up next). */
static void
db_worker_exit(int code, Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	WorkerSlot *slot;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	slot = cachier_worker_slot(dbid);
	if (slot)
	{
		if (slot->pid[my_kind] == MyProcPid)
			slot->pid[my_kind] = 0;
		/* made due while we ran (options changed): run again at once */
		if (my_kind == WORKER_CLEANUP)
			slot->next_cleanup = slot->cleanup_again ? 0 : next_cleanup;
		if (!connected)
			slot->unreachable = true;
	}
	LWLockRelease(cachier_shared->lock);
}

/* Connect to the database; from then on DROP DATABASE may signal us. */
void
cachier_worker_connect(Oid dbid, WorkerKind kind, const char *appname)
{
	WorkerSlot *slot;

	my_kind = kind;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	next_cleanup = GetCurrentTimestamp() + USECS_PER_MINUTE;	/* after an error */
	before_shmem_exit(db_worker_exit, ObjectIdGetDatum(dbid));
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname(appname);
	connected = true;
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	slot = cachier_worker_slot(dbid);
	if (slot)
		slot->pid[kind] = MyProcPid;
	LWLockRelease(cachier_shared->lock);
}

static bool
extension_present(void)
{
	Oid			nsp;
	bool		present;

	StartTransactionCommand();
	nsp = get_namespace_oid("cachier", true);
	present = cachier_lock_extension() && OidIsValid(nsp) &&
		OidIsValid(get_relname_relid("entries", nsp));
	CommitTransactionCommand();
	return present;
}

/* ---------------------------------------------------------------- cleanup */

typedef struct CleanupPlan
{
	Oid			funcid;
	int64		stale_after_us;
	int64		interval_us;
} CleanupPlan;

/*
 * The functions with cleanup_stale and their effective options, in the
 * caller's memory context (not the transaction's, which ends here).
 */
static List *
cleanup_plans(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *fns;
	List	   *plans = NIL;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	fns = cachier_lock_extension() ? cachier_cleanup_candidates() : NIL;
	foreach(lc, fns)
	{
		EffectiveOptions eff;
		CleanupPlan *plan = MemoryContextAlloc(caller, sizeof(CleanupPlan));
		MemoryContext old;

		cachier_effective_options(cachier_function_info(lfirst_oid(lc)), &eff);
		plan->funcid = lfirst_oid(lc);
		plan->stale_after_us = eff.stale_after_us;
		plan->interval_us = eff.cleanup_interval_us;
		old = MemoryContextSwitchTo(caller);
		plans = lappend(plans, plan);
		MemoryContextSwitchTo(old);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return plans;
}

/* Clean one function if it is due; when it is due next. */
static TimestampTz
clean_if_due(CleanupPlan *plan, TimestampTz now)
{
	TimestampTz last = cachier_stats_last_cleanup(plan->funcid);
	int64		removed;

	if (last + plan->interval_us > now)
		return last + plan->interval_us;
	pgstat_report_activity(STATE_RUNNING, "removing stale cache entries");
	removed = cachier_cleanup_function(plan->funcid, plan->stale_after_us, true);
	cachier_stats_set_last_cleanup(plan->funcid, now);
	ereport(DEBUG1,
			(errmsg_internal("removed " INT64_FORMAT " stale entries of function %u",
							 removed, plan->funcid)));
	return now + plan->interval_us;
}

/* Clean up the functions that are due; when the next one is (DT_NOEND: none). */
static TimestampTz
run_cleanups(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = DT_NOEND;
	List	   *plans = cleanup_plans();
	ListCell   *lc;

	foreach(lc, plans)
		next = Min(next, clean_if_due(lfirst(lc), now));
	list_free_deep(plans);
	pgstat_report_activity(STATE_IDLE, NULL);
	return next;
}

void
cachier_cleanup_main(Datum arg)
{
	cachier_worker_connect(DatumGetObjectId(arg), WORKER_CLEANUP, "cachier cleanup");
	/* without the extension nothing is due until cleanup options change */
	next_cleanup = extension_present() ? run_cleanups() : DT_NOEND;
	proc_exit(0);
}

/* ---------------------------------------------------------------- refresh */

void
cachier_refresh_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	RefreshItem item;
	int			slot;

	cachier_worker_connect(dbid, WORKER_REFRESH, "cachier refresh");
	if (!extension_present())
	{
		cachier_drop_refreshes(dbid);
		proc_exit(0);
	}
	while (cachier_next_refresh(dbid, &item, &slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		cachier_run_refresh(&item);
		cachier_refresh_finished(slot);
	}
	proc_exit(0);
}
