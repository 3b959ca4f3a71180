/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  cachier's background workers (with shared_preload_libraries only).
 *
 * The launcher, connected to no database, keeps a list of the databases
 * that allow connections and starts, for each one that is due, a short-
 * lived database worker: due when its next cleanup time has come or when
 * a refresh of one of its keys is queued.  At most cachier.max_workers
 * database workers run at once.  A database worker checks that the
 * extension exists there, removes the stale entries of each function with
 * cleanup_stale whose cleanup_interval has passed (bounded batches, each
 * its own transaction), runs the queued refreshes (each its own
 * transaction, as the role whose call queued it), reports when it should
 * run next and exits.
 *
 * Locking: the database slots and the queue are under
 * cachier_shared->lock (see shared_state.c).  The launcher starts after
 * recovery has finished, so nothing here ever writes on a standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PGDLLEXPORT void cachier_launcher_main(Datum arg);
PGDLLEXPORT void cachier_db_worker_main(Datum arg);

int			cachier_max_workers = 8;

#define DATABASE_SCAN_INTERVAL	(60 * USECS_PER_SEC)
#define NO_EXTENSION_RECHECK	(5 * 60 * USECS_PER_SEC)
#define LONGEST_SLEEP_MS		60000L

/* ---------------------------------------------------------------- registration */

static void
fill_worker(BackgroundWorker *bgw, const char *function, const char *name)
{
	memset(bgw, 0, sizeof(*bgw));
	bgw->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw->bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(bgw->bgw_library_name, BGW_MAXLEN, "cachier");
	snprintf(bgw->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(bgw->bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(bgw->bgw_type, BGW_MAXLEN, "%s", name);
}

/* Called from _PG_init while preloading. */
void
cachier_worker_init(void)
{
	BackgroundWorker bgw;

	fill_worker(&bgw, "cachier_launcher_main", "cachier launcher");
	bgw.bgw_restart_time = 5;
	RegisterBackgroundWorker(&bgw);
}

/* ---------------------------------------------------------------- launcher */

static DatabaseSlot *
find_slot(Oid dbid)
{
	int			i;

	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		if (cachier_shared->databases[i].dbid == dbid)
			return &cachier_shared->databases[i];
	return NULL;
}

/* Track every database that allows connections; new ones are due now. */
static void
scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	List	   *dbids = NIL;
	ListCell   *lc;
	int			i;

	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "listing databases");
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (db->datallowconn && !db->datistemplate)
			dbids = lappend_oid(dbids, db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
	{
		DatabaseSlot *slot = &cachier_shared->databases[i];

		if (OidIsValid(slot->dbid) && !slot->worker_running &&
			!list_member_oid(dbids, slot->dbid))
			slot->dbid = InvalidOid;	/* dropped */
	}
	foreach(lc, dbids)
	{
		DatabaseSlot *slot;

		if (find_slot(lfirst_oid(lc)) || (slot = find_slot(InvalidOid)) == NULL)
			continue;
		slot->dbid = lfirst_oid(lc);
		slot->next_run = 0;
		slot->worker_running = false;
	}
	LWLockRelease(cachier_shared->lock);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* After a reload: cleanup_interval may be shorter now, so re-plan. */
static void
all_databases_due(void)
{
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		cachier_shared->databases[i].next_run = 0;
	LWLockRelease(cachier_shared->lock);
}

static bool
has_queued_refresh(Oid dbid)
{
	int			i;

	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
		if (cachier_shared->queue[i].state == REFRESH_QUEUED &&
			cachier_shared->queue[i].dbid == dbid)
			return true;
	return false;
}

static bool
start_db_worker(Oid dbid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	fill_worker(&bgw, "cachier_db_worker_main", "cachier worker");
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	bgw.bgw_main_arg = ObjectIdGetDatum(dbid);
	bgw.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&bgw, &handle);
}

/* Start the workers that are due; how long until the next one is (ms). */
static long
start_due_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = now + LONGEST_SLEEP_MS * 1000;
	List	   *to_start = NIL;
	ListCell   *lc;
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
	{
		DatabaseSlot *slot = &cachier_shared->databases[i];
		bool		due;

		if (!OidIsValid(slot->dbid) || slot->worker_running)
			continue;
		due = slot->next_run <= now || has_queued_refresh(slot->dbid);
		if (due && cachier_shared->workers_running < cachier_max_workers)
		{
			slot->worker_running = true;
			cachier_shared->workers_running++;
			to_start = lappend_oid(to_start, slot->dbid);
		}
		else if (!due)
			next = Min(next, slot->next_run);
		else
			next = Min(next, now + 100 * 1000); /* wait for a free worker */
	}
	LWLockRelease(cachier_shared->lock);

	foreach(lc, to_start)
	{
		if (start_db_worker(lfirst_oid(lc)))
			continue;
		/* no background worker slot free: try again soon */
		LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
		find_slot(lfirst_oid(lc))->worker_running = false;
		cachier_shared->workers_running--;
		LWLockRelease(cachier_shared->lock);
		next = Min(next, now + USECS_PER_SEC);
	}
	return (long) Max((next - now) / 1000, 10);
}

static void
launcher_exit(int code, Datum arg)
{
	SpinLockAcquire(&cachier_shared->mutex);
	cachier_shared->launcher_latch = NULL;
	SpinLockRelease(&cachier_shared->mutex);
}

void
cachier_launcher_main(Datum arg)
{
	TimestampTz next_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("cachier launcher");

	SpinLockAcquire(&cachier_shared->mutex);
	cachier_shared->launcher_latch = MyLatch;
	SpinLockRelease(&cachier_shared->mutex);
	before_shmem_exit(launcher_exit, (Datum) 0);

	for (;;)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			all_databases_due();
		}
		if (GetCurrentTimestamp() >= next_scan)
		{
			scan_databases();
			next_scan = GetCurrentTimestamp() + DATABASE_SCAN_INTERVAL;
		}
		sleep_ms = Min(start_due_workers(), (next_scan - GetCurrentTimestamp()) / 1000 + 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(sleep_ms, 10), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------- database worker */

static TimestampTz db_next_run;
static bool db_connected = false;

/* A database worker ends: free its slot and its refreshes. */
static void
db_worker_exit(int code, Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	DatabaseSlot *slot;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dbid);
	if (slot)
	{
		slot->worker_running = false;
		slot->worker_pid = 0;
		slot->next_run = db_next_run;
		if (!db_connected)
			slot->dbid = InvalidOid;	/* the next scan adds it back if it exists */
	}
	cachier_release_refreshes(dbid, db_connected);
	cachier_shared->workers_running--;
	LWLockRelease(cachier_shared->lock);
	cachier_wake_launcher();
}

static bool due_at_commit = false;

static void
wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && due_at_commit)
		cachier_database_due(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		due_at_commit = false;
}

/*
 * This transaction changed cleanup options: once it commits (so that the
 * worker sees them), make the database's worker plan again.
 */
void
cachier_database_due_at_commit(void)
{
	static bool registered = false;

	if (!cachier_preloaded())
		return;
	if (!registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		registered = true;
	}
	due_at_commit = true;
}

/* Whether a worker of the database is running (caller holds the lock). */
bool
cachier_worker_running_locked(Oid dbid)
{
	DatabaseSlot *slot = find_slot(dbid);

	return slot != NULL && slot->worker_running;
}

/* Make a database's worker run soon. */
void
cachier_database_due(Oid dbid)
{
	DatabaseSlot *slot;

	if (!cachier_preloaded())
		return;
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dbid);
	if (slot == NULL && (slot = find_slot(InvalidOid)) != NULL)
	{
		slot->dbid = dbid;
		slot->worker_running = false;
	}
	if (slot)
		slot->next_run = 0;
	LWLockRelease(cachier_shared->lock);
	cachier_wake_launcher();
}

/* DROP DATABASE: ask our worker connected to it, if any, to stop. */
void
cachier_stop_database_worker(Oid dbid)
{
	DatabaseSlot *slot;
	pid_t		pid = 0;

	if (!cachier_preloaded() || !OidIsValid(dbid))
		return;
	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	slot = find_slot(dbid);
	if (slot)
		pid = slot->worker_pid;
	LWLockRelease(cachier_shared->lock);
	if (pid != 0)
		(void) kill(pid, SIGTERM);
}

static bool
extension_present(void)
{
	bool		present;

	StartTransactionCommand();
	present = OidIsValid(get_namespace_oid("cachier", true)) &&
		OidIsValid(get_relname_relid("entries", get_namespace_oid("cachier", true)));
	CommitTransactionCommand();
	return present;
}

typedef struct CleanupPlan
{
	Oid			funcid;
	int64		stale_after_us;
	int64		interval_us;
} CleanupPlan;

/* The functions with cleanup_stale and their effective options. */
static List *
cleanup_plans(void)
{
	List	   *fns;
	List	   *plans = NIL;
	ListCell   *lc;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	cachier_exec_as_owner("SELECT fn FROM cachier.functions WHERE cleanup_stale",
						  0, NULL, NULL, NULL, &fns);
	foreach(lc, fns)
	{
		EffectiveOptions eff;
		CleanupPlan *plan = MemoryContextAlloc(TopMemoryContext, sizeof(CleanupPlan));

		cachier_effective_options(cachier_function_info(lfirst_oid(lc)), &eff);
		plan->funcid = lfirst_oid(lc);
		plan->stale_after_us = eff.stale_after_us;
		plan->interval_us = eff.cleanup_interval_us;
		plans = lappend(plans, plan);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return plans;
}

/* Clean up the functions that are due; when the next one is. */
static TimestampTz
run_cleanups(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = now + USECS_PER_DAY;
	List	   *plans = cleanup_plans();
	ListCell   *lc;

	foreach(lc, plans)
	{
		CleanupPlan *plan = lfirst(lc);
		TimestampTz last = cachier_stats_last_cleanup(plan->funcid);
		int64		removed;

		if (last + plan->interval_us > now)
		{
			next = Min(next, last + plan->interval_us);
			continue;
		}
		pgstat_report_activity(STATE_RUNNING, "removing stale cache entries");
		removed = cachier_cleanup_function(plan->funcid, plan->stale_after_us, true);
		cachier_stats_set_last_cleanup(plan->funcid, now);
		ereport(DEBUG1,
				(errmsg("cachier: removed " INT64_FORMAT " stale entries of function %u",
						removed, plan->funcid)));
		next = Min(next, now + plan->interval_us);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	return next;
}

typedef struct ArgsCopy
{
	char	   *data;
	int			len;
	TimestampTz created_at;
} ArgsCopy;

static bool
copy_args(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ArgsCopy   *copy = (ArgsCopy *) arg;
	bool		isnull;
	bytea	   *args = DatumGetByteaPCopy(heap_getattr(tuple, 6, desc, &isnull));

	if (isnull)
		return false;
	copy->data = VARDATA(args);
	copy->len = VARSIZE(args) - VARHDRSZ;
	copy->created_at = DatumGetTimestampTz(heap_getattr(tuple, 4, desc, &isnull));
	return true;
}

static char refresh_target[NAMEDATALEN * 2 + 64];

/*
 * One refresh, in the current transaction, as the role that queued it.
 * False when there was nothing to do (the function or the entry is gone,
 * the entry is fresh again, another session is computing it).
 */
static bool
refresh_in_transaction(RefreshItem *item)
{
	Oid			save_user;
	int			save_sec;
	AclResult	aclresult;
	CallSite	site;
	ArgsCopy	copy;
	EffectiveOptions eff;
	bool		refreshed;

	snprintf(refresh_target, sizeof(refresh_target), "function %u", item->funcid);
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(item->funcid)))
		return false;			/* dropped meanwhile */
	strlcpy(refresh_target, format_procedure(item->funcid), sizeof(refresh_target));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(item->roleid)))
		return false;
	aclresult = pg_proc_aclcheck(item->funcid, item->roleid, ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(item->funcid));
	cachier_check_cacheable(item->funcid);

	memset(&site, 0, sizeof(site));
	cachier_callsite_init(&site, item->funcid, CurTransactionContext);
	if (!cachier_scan_entry(item->funcid, item->key, copy_args, &copy))
		return false;			/* cleared meanwhile */
	cachier_effective_options(site.info, &eff);
	if (eff.stale_after_us == CACHIER_NEVER ||
		GetCurrentTimestamp() - copy.created_at < eff.stale_after_us)
		return false;			/* refreshed by a call meanwhile */

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(item->roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	refreshed = cachier_refresh_entry(&site, item->key, copy.data, copy.len);
	SetUserIdAndSecContext(save_user, save_sec);
	return refreshed;
}

/* Run one queued refresh in its own transaction; a failure is a WARNING. */
static void
run_refresh(RefreshItem *item)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	pgstat_report_activity(STATE_RUNNING, "refreshing a stale cache entry");
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		bool		refreshed = refresh_in_transaction(item);

		PopActiveSnapshot();
		CommitTransactionCommand();
		if (refreshed)
			cachier_count_function(item->funcid, STAT_REFRESH_DONE, 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING,
				(errmsg("cachier: background refresh of %s failed: %s",
						refresh_target, edata->message),
				 errdetail("The stale value stays in the cache.")));
		FreeErrorData(edata);
		cachier_count_function(item->funcid, STAT_REFRESH_FAILED, 0);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}

static void
run_refreshes(Oid dbid)
{
	RefreshItem item;
	int			slot;

	while (cachier_next_refresh(dbid, &item, &slot))
	{
		CHECK_FOR_INTERRUPTS();
		run_refresh(&item);
		cachier_refresh_finished(slot);
	}
}

void
cachier_db_worker_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	db_next_run = GetCurrentTimestamp() + USECS_PER_MINUTE;
	before_shmem_exit(db_worker_exit, arg);
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("cachier worker");
	db_connected = true;
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	if (find_slot(dbid))
		find_slot(dbid)->worker_pid = MyProcPid;
	LWLockRelease(cachier_shared->lock);

	if (!extension_present())
	{
		db_next_run = GetCurrentTimestamp() + NO_EXTENSION_RECHECK;
		cachier_drop_refreshes(dbid);
		proc_exit(0);
	}
	db_next_run = run_cleanups();
	run_refreshes(dbid);
	proc_exit(0);
}
