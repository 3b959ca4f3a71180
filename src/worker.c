/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  cachier's launcher (with shared_preload_libraries only) and what
 *	  backends ask of it.
 *
 * The launcher, connected to no database, keeps a slot per database and
 * starts, for each one, up to two short-lived database workers (see
 * db_worker.c): a cleanup worker when the database's next cleanup is due,
 * and a refresh worker when a refresh of one of its keys is queued.  The
 * two kinds are independent, so a slow refresh never delays a cleanup.  At
 * most cachier.max_workers database workers run at once, and refresh
 * workers leave one of them to cleanup workers (unless max_workers is 1).
 *
 * The launcher keeps the BackgroundWorkerHandle of every worker it
 * started; only the handle decides that a worker has stopped.  It is told
 * of every start and stop (bgw_notify_pid), and backends set its latch
 * when they queue a refresh or change cleanup options, so it sleeps until
 * the next cleanup is due or something happens, never polling.
 *
 * Locking: cachier_workers (the slots) and the refresh queue are under
 * cachier_shared->lock, exclusive to change; the launcher's latch is under
 * cachier_shared->mutex.  A worker's pid in its slot is cleared by the
 * worker itself, under the lock, before it exits: so a pid read under the
 * lock belongs to that live worker (DROP DATABASE signals it only then).
 * The launcher starts after recovery has finished, so nothing here ever
 * writes on a standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PGDLLEXPORT void cachier_launcher_main(Datum arg);

WorkerShared *cachier_workers = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* the launcher's handles, by slot and kind (launcher only) */
static BackgroundWorkerHandle *handles[CACHIER_MAX_DATABASES][WORKER_KINDS];

static const char *const worker_functions[WORKER_KINDS] = {
	"cachier_cleanup_main", "cachier_refresh_main"
};

/* ---------------------------------------------------------------- registration */

static void
request_workers_shmem(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

static void
attach_workers_shmem(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cachier_workers = ShmemInitStruct("cachier workers", sizeof(WorkerShared), &found);
	if (!found)
		memset(cachier_workers, 0, sizeof(WorkerShared));
	LWLockRelease(AddinShmemInitLock);
}

static void
fill_worker(BackgroundWorker *bgw, const char *function, const char *type)
{
	memset(bgw, 0, sizeof(*bgw));
	bgw->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw->bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(bgw->bgw_library_name, BGW_MAXLEN, "cachier");
	snprintf(bgw->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(bgw->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(bgw->bgw_type, BGW_MAXLEN, "%s", type);
}

/* Called from _PG_init while preloading. */
void
cachier_worker_init(void)
{
	BackgroundWorker bgw;

	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_workers_shmem;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_workers_shmem;

	fill_worker(&bgw, "cachier_launcher_main", "cachier launcher");
	bgw.bgw_restart_time = 5;
	RegisterBackgroundWorker(&bgw);
}

/* ---------------------------------------------------------------- slots */

/* The slot of a database, or NULL (caller holds the lock). */
WorkerSlot *
cachier_worker_slot(Oid dbid)
{
	int			i;

	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		if (cachier_workers->slots[i].dbid == dbid)
			return &cachier_workers->slots[i];
	return NULL;
}

static void
init_slot(WorkerSlot *slot, Oid dbid)
{
	memset(slot, 0, sizeof(*slot));
	slot->dbid = dbid;
	slot->next_cleanup = 0;
}

/* A database's slot, taken if need be; NULL when all are taken. */
static WorkerSlot *
get_slot(Oid dbid)
{
	WorkerSlot *slot = cachier_worker_slot(dbid);

	if (slot == NULL && (slot = cachier_worker_slot(InvalidOid)) != NULL)
		init_slot(slot, dbid);
	if (slot == NULL)
		cachier_workers->rescan = true; /* free those of dropped databases */
	return slot;
}

static bool
slot_busy(WorkerSlot *slot)
{
	return slot->started[WORKER_CLEANUP] || slot->started[WORKER_REFRESH];
}

/* ---------------------------------------------------------------- launcher */

/*
 * Track every database that allows connections (all due now), and free
 * the slots of the databases that are gone.
 */
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
	cachier_workers->rescan = false;
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
	{
		WorkerSlot *slot = &cachier_workers->slots[i];

		if (OidIsValid(slot->dbid) && !slot_busy(slot) &&
			!list_member_oid(dbids, slot->dbid))
			slot->dbid = InvalidOid;	/* dropped */
	}
	foreach(lc, dbids)
		(void) get_slot(lfirst_oid(lc));
	LWLockRelease(cachier_shared->lock);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * A launcher (re)starts: the workers a previous launcher started have no
 * handle here.  Those connected (pid set) are followed by their pid; one
 * not connected yet is forgotten, at worst two of a kind then overlap,
 * which both kinds tolerate.
 */
static void
adopt_workers(void)
{
	int			i;
	int			k;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		for (k = 0; k < WORKER_KINDS; k++)
			cachier_workers->slots[i].started[k] = cachier_workers->slots[i].pid[k] != 0;
	LWLockRelease(cachier_shared->lock);
}

/*
 * A database's cleanup is due now; if its cleanup worker is running, it
 * runs again after it (lock held exclusively).
 */
static void
cleanup_due(WorkerSlot *slot)
{
	slot->next_cleanup = 0;
	slot->cleanup_again = slot->started[WORKER_CLEANUP];
}

/* After a reload: cleanup_interval may be shorter now, so re-plan. */
static void
all_databases_due(void)
{
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		cleanup_due(&cachier_workers->slots[i]);
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

/* Whether a worker this launcher, or a previous one, started has stopped. */
static bool
worker_stopped(int i, WorkerKind kind)
{
	pid_t		pid;

	if (handles[i][kind] == NULL)
		return cachier_workers->slots[i].pid[kind] == 0;
	return GetBackgroundWorkerPid(handles[i][kind], &pid) == BGWH_STOPPED;
}

/*
 * Note the workers that have stopped (caller holds the lock exclusively):
 * a refresh worker's running refreshes go back to the queue, or away if
 * it could not even connect (the database is gone; so is its slot).
 */
static void
reap_workers(void)
{
	int			i;
	int			k;

	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
	{
		WorkerSlot *slot = &cachier_workers->slots[i];

		for (k = 0; k < WORKER_KINDS; k++)
		{
			if (!slot->started[k] || !worker_stopped(i, k))
				continue;
			slot->started[k] = false;
			slot->pid[k] = 0;
			if (handles[i][k])
				pfree(handles[i][k]);
			handles[i][k] = NULL;
			if (k == WORKER_REFRESH)
				cachier_release_refreshes(slot->dbid, !slot->unreachable);
		}
		if (OidIsValid(slot->dbid) && slot->unreachable && !slot_busy(slot))
		{
			cachier_release_refreshes(slot->dbid, false);
			slot->dbid = InvalidOid;
		}
	}
}

/* How many database workers of the kind run (WORKER_KINDS: of any kind). */
static int
workers_started(WorkerKind kind)
{
	int			i;
	int			k;
	int			n = 0;

	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
		for (k = 0; k < WORKER_KINDS; k++)
			if (cachier_workers->slots[i].started[k] &&
				(kind == WORKER_KINDS || k == (int) kind))
				n++;
	return n;
}

/*
 * Whether a worker of the kind may start under cachier.max_workers.
 * Refresh workers leave one of them to cleanup (unless there is only
 * one), so slow refreshes everywhere never stop every cleanup.
 */
static bool
worker_allowed(WorkerKind kind)
{
	if (workers_started(WORKER_KINDS) >= cachier_max_workers)
		return false;
	return kind != WORKER_REFRESH ||
		workers_started(WORKER_REFRESH) < Max(cachier_max_workers - 1, 1);
}

static bool
start_worker(int i, WorkerKind kind, Oid dbid)
{
	BackgroundWorker bgw;
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	bool		started;

	fill_worker(&bgw, worker_functions[kind], "cachier worker");
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	bgw.bgw_main_arg = ObjectIdGetDatum(dbid);
	bgw.bgw_notify_pid = MyProcPid;
	started = RegisterDynamicBackgroundWorker(&bgw, &handles[i][kind]);
	MemoryContextSwitchTo(oldcxt);
	return started;
}

/* Whether a worker of this kind is due in the slot (lock held). */
static bool
worker_due(WorkerSlot *slot, WorkerKind kind, TimestampTz now)
{
	if (slot->started[kind] || slot->unreachable)
		return false;
	if (kind == WORKER_CLEANUP)
		return slot->next_cleanup <= now;
	return has_queued_refresh(slot->dbid);
}

/*
 * Start the workers that are due; when the next cleanup is (DT_NOEND:
 * nothing is due until a backend or a worker's exit wakes us).
 */
static TimestampTz
start_due_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = DT_NOEND;
	int			i;
	int			k;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	reap_workers();
	for (i = 0; i < CACHIER_MAX_DATABASES; i++)
	{
		WorkerSlot *slot = &cachier_workers->slots[i];

		if (!OidIsValid(slot->dbid))
			continue;
		for (k = 0; k < WORKER_KINDS; k++)
		{
			if (!worker_due(slot, k, now))
			{
				if (k == WORKER_CLEANUP && !slot->started[k])
					next = Min(next, slot->next_cleanup);
				continue;
			}
			if (!worker_allowed(k))
				continue;		/* a worker's exit wakes us */
			if (start_worker(i, k, slot->dbid))
			{
				slot->started[k] = true;
				if (k == WORKER_CLEANUP)
					slot->cleanup_again = false;
			}
			else				/* no background worker slot free */
				next = Min(next, now + USECS_PER_SEC);
		}
	}
	LWLockRelease(cachier_shared->lock);
	return next;
}

static void
launcher_exit(int code, Datum arg)
{
	SpinLockAcquire(&cachier_shared->mutex);
	cachier_shared->launcher_latch = NULL;
	SpinLockRelease(&cachier_shared->mutex);
}

static void
launcher_sleep(TimestampTz next)
{
	long		ms;

	if (next == DT_NOEND)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
						 PG_WAIT_EXTENSION);
	else
	{
		ms = (long) Max((next - GetCurrentTimestamp()) / 1000 + 1, 10);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
	}
	ResetLatch(MyLatch);
}

void
cachier_launcher_main(Datum arg)
{
	bool		rescan = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("cachier launcher");

	SpinLockAcquire(&cachier_shared->mutex);
	cachier_shared->launcher_latch = MyLatch;
	SpinLockRelease(&cachier_shared->mutex);
	before_shmem_exit(launcher_exit, (Datum) 0);
	adopt_workers();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			all_databases_due();
		}
		if (rescan)
			scan_databases();
		launcher_sleep(start_due_workers());
		LWLockAcquire(cachier_shared->lock, LW_SHARED);
		rescan = cachier_workers->rescan;
		LWLockRelease(cachier_shared->lock);
	}
}

/* ---------------------------------------------------------------- backends */

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
 * worker sees them), make the database's cleanup worker plan again.
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

/* Make a database's cleanup worker run soon. */
void
cachier_database_due(Oid dbid)
{
	WorkerSlot *slot;

	if (!cachier_preloaded())
		return;
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	slot = get_slot(dbid);
	if (slot)
		cleanup_due(slot);
	LWLockRelease(cachier_shared->lock);
	cachier_wake_launcher();
}

/*
 * DROP DATABASE: ask our workers connected to it, if any, to stop.  The
 * signal is sent under the lock, while the pid is still in the slot: a
 * worker clears it under the lock before it exits, so the pid cannot have
 * been reused by another process.
 */
void
cachier_stop_database_worker(Oid dbid)
{
	WorkerSlot *slot;
	int			k;

	if (!cachier_preloaded() || !OidIsValid(dbid))
		return;
	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	slot = cachier_worker_slot(dbid);
	for (k = 0; slot != NULL && k < WORKER_KINDS; k++)
		if (slot->pid[k] != 0)
			(void) kill(slot->pid[k], SIGTERM);
	LWLockRelease(cachier_shared->lock);
}
