/*-------------------------------------------------------------------------
 *
 * inprogress.c
 *	  The "being computed" mark of a key: a transaction-level advisory lock
 *	  in cachier's own lock space.
 *
 * The tag is (database, high 32 bits of the key, low 32 bits, 27182).
 * pg_advisory_lock() uses 1 and 2 in the last field, so application locks
 * never collide with ours; pg_locks shows ours with objsubid = 27182.
 *
 * Locking rule: the session that computes a key holds the lock in
 * ExclusiveLock mode from before it computes until its transaction ends,
 * so waiters wake exactly when the value is committed (or the computation
 * failed, rolled back, or its backend died: the lock dies with it).  It is
 * first taken without waiting.  Waiters take ShareLock and drop it at
 * once, so any number wake together when the value is committed; only
 * when the computation failed do they queue for ExclusiveLock to compute
 * it one at a time.  A wait is bounded by wait_timeout (through
 * lock_timeout, in rounds, each asking whether a holder is itself blocked
 * and only then checking for deadlocks early) and a deadlock is turned
 * into "compute it yourself":
 * neither reaches the caller as an error.  Cancellation and termination
 * do.  Nobody waits twice for a holder that is not making progress: once
 * a wait for a key's holder has run out of wait_timeout, later callers of
 * that key compute at once while the same transaction holds it
 * (stalled.c).  PREPARE TRANSACTION gives the transaction's
 * computing locks back first (they are transaction-scoped marks, not data
 * locks), so a prepared transaction never holds one, not even across a
 * restart; its stored entries become visible when it commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/sinvaladt.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* computing locks this transaction took (an upper bound: see below) */
static int	locks_taken = 0;

/* their keys, in TopTransactionContext, for PREPARE TRANSACTION */
static List *keys_taken = NIL;

static void make_tag(LOCKTAG *tag, int64 key);

static void
remember_key(int64 key)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	int64	   *copy = palloc(sizeof(int64));

	*copy = key;
	keys_taken = lappend(keys_taken, copy);
	MemoryContextSwitchTo(old);
	locks_taken++;
}

/* Before PREPARE: give back every computing lock the transaction holds. */
static void
release_for_prepare(void)
{
	ListCell   *lc;

	foreach(lc, keys_taken)
	{
		LOCKTAG		tag;

		make_tag(&tag, *(int64 *) lfirst(lc));
		while (LockHeldByMe(&tag, ExclusiveLock))
			LockRelease(&tag, ExclusiveLock, false);
	}
}

static void
transaction_ends(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_PREPARE)
		release_for_prepare();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		locks_taken = 0;
		keys_taken = NIL;		/* freed with TopTransactionContext */
	}
}

void
cachier_inprogress_init(void)
{
	RegisterXactCallback(transaction_ends, NULL);
}

/*
 * Whether a computed key keeps its lock until commit.  Each held lock
 * takes a slot of the shared lock table, which has room for about
 * max_locks_per_transaction per session: a statement that misses
 * thousands of keys would fill it and make other sessions' queries fail.
 * Past half that budget, a key's lock is given back once it is stored;
 * until the transaction commits, another session may then compute that
 * key once more (its store waits for ours, at most wait_timeout).
 */
bool
cachier_lock_keep_after_store(void)
{
	return locks_taken <= Max(8, max_locks_per_xact / 2);
}

void
cachier_lock_key_ids(int64 key, uint32 *classid, uint32 *objid)
{
	*classid = (uint32) ((uint64) key >> 32);
	*objid = (uint32) key;
}

static void
make_tag(LOCKTAG *tag, int64 key)
{
	uint32		classid;
	uint32		objid;

	cachier_lock_key_ids(key, &classid, &objid);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, classid, objid, CACHIER_LOCKSPACE);
}

/*
 * The computing lock belongs to the current (sub)transaction's resource
 * owner, whether it was taken at once or after a wait in a subtransaction
 * (whose commit hands it to that owner), so that it can be given back.
 */
static LockAcquireResult
acquire_for_transaction(const LOCKTAG *tag, LOCKMODE mode, bool dontWait)
{
	ResourceOwner saved = CurrentResourceOwner;
	LockAcquireResult result;

	CurrentResourceOwner = CurTransactionResourceOwner;
	PG_TRY();
	{
		result = LockAcquire(tag, mode, false, dontWait);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = saved;
	}
	PG_END_TRY();
	return result;
}

/* Take the key's lock to compute it; false if another session has it. */
bool
cachier_lock_try(int64 key)
{
	LOCKTAG		tag;

	make_tag(&tag, key);
	if (acquire_for_transaction(&tag, ExclusiveLock, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	remember_key(key);
	return true;
}

/* Give back a lock taken by cachier_lock_try or a wait that we did not use. */
void
cachier_lock_release(int64 key)
{
	ResourceOwner saved = CurrentResourceOwner;
	LOCKTAG		tag;

	make_tag(&tag, key);
	CurrentResourceOwner = CurTransactionResourceOwner;
	LockRelease(&tag, ExclusiveLock, false);
	CurrentResourceOwner = saved;
}

/* Whether another session is computing the key right now. */
bool
cachier_lock_is_held_elsewhere(int64 key)
{
	LOCKTAG		tag;

	make_tag(&tag, key);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ShareLock, false);
	return false;
}

/*
 * Shortest round of a wait.  A round ends with a lock timeout, which
 * PostgreSQL reports in place of a cancel request or statement_timeout
 * arriving in the same instant: those are then lost and the wait goes on
 * (up to wait_timeout).  Few, long rounds keep that window negligible.
 */
#define MIN_ROUND_MS	100

/* how soon a waiter checks for deadlocks when one may be forming */
#define EARLY_DEADLOCK_CHECK_MS	10

int
cachier_timeout_ms(int64 timeout_us)
{
	int64		ms = (timeout_us + 999) / 1000;

	return (int) Min(Max(ms, 1), INT_MAX);
}

typedef struct WaitArgs
{
	LOCKTAG		tag;
	LOCKMODE	mode;
} WaitArgs;

static void
wait_for_lock(void *arg)
{
	WaitArgs   *w = (WaitArgs *) arg;

	(void) LockAcquire(&w->tag, w->mode, false, false);
	if (w->mode == ShareLock)
		LockRelease(&w->tag, ShareLock, false);
}

/*
 * One bounded wait for the lock, with the deadlock check run early.  The
 * check runs in the process whose deadlock_timeout passes first; running
 * ours sooner (and again each round) makes the cache's waiter the one that
 * finds a cycle, so that it computes by itself rather than another
 * transaction getting a deadlock error because of the cache.
 */
static bool
wait_round(WaitArgs *w, int slice_ms, bool check_early, ErrorData **error)
{
	int			saved_lock_timeout = LockTimeout;
	int			saved_deadlock_timeout = DeadlockTimeout;
	volatile bool done = false;

	LockTimeout = slice_ms;
	if (check_early)
		DeadlockTimeout = Min(DeadlockTimeout, EARLY_DEADLOCK_CHECK_MS);
	PG_TRY();
	{
		done = cachier_run_guarded(wait_for_lock, w, error);
	}
	PG_FINALLY();
	{
		LockTimeout = saved_lock_timeout;
		DeadlockTimeout = saved_deadlock_timeout;
	}
	PG_END_TRY();
	return done;
}

/* The transactions holding the key's lock (none on a standby). */
static VirtualTransactionId *
holders_of(const LOCKTAG *tag, int *count)
{
	return GetLockConflicts(tag, ShareLock, count);
}

/*
 * Whether a holder of the key's lock is itself waiting for a lock: only
 * then can a deadlock through our wait form, and only then is the early
 * deadlock check (which takes every lock partition) worth running.  The
 * holder's waitLock is read without its lock: a stale answer only moves
 * the early check by one round, since every round asks again.
 */
static bool
any_holder_blocked(const VirtualTransactionId *holders, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		PGPROC	   *proc = BackendIdGetProc(holders[i].backendId);

		if (proc != NULL && proc->waitLock != NULL)
			return true;
	}
	return false;
}

/*
 * A round ended with a lock timeout.  If statement_timeout ran out in the
 * same instant, PostgreSQL reported only the lock timeout: report the
 * statement timeout now rather than wait on.
 */
static void
raise_statement_timeout_if_due(void)
{
	TimestampTz due;

	if (StatementTimeout <= 0)
		return;
	due = GetCurrentStatementStartTimestamp() + (int64) StatementTimeout * 1000;
	if (GetCurrentTimestamp() >= due)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to statement timeout")));
}

/*
 * Wait, at most timeout_us, for the session computing the key to end its
 * transaction.  With exclusive, queue for the lock and keep it (the caller
 * then computes or gives it back); otherwise wake with all other waiters
 * and hold nothing.  The wait runs in rounds so that deadlocks formed
 * after it began are still found by us.  Lock timeouts and deadlocks come
 * back as results; anything else (a cancel, statement_timeout) is
 * re-thrown.
 */
WaitResult
cachier_lock_wait(int64 key, int64 timeout_us, bool exclusive)
{
	TimestampTz deadline = GetCurrentTimestamp() + timeout_us;
	WaitArgs	w;
	ErrorData  *error;
	VirtualTransactionId *holders;
	int			nholders;

	if (timeout_us <= 0)
		return WAIT_TIMED_OUT;
	make_tag(&w.tag, key);
	w.mode = exclusive ? ExclusiveLock : ShareLock;
	holders = holders_of(&w.tag, &nholders);
	if (cachier_stalled_all(key, holders, nholders))
		return WAIT_HOLDER_STALLED;
	for (;;)
	{
		int64		left = deadline - GetCurrentTimestamp();

		if (left <= 0)
		{
			/* spare later callers a wait for the same holders */
			holders = holders_of(&w.tag, &nholders);
			cachier_stalled_remember(key, holders, nholders);
			return WAIT_TIMED_OUT;
		}
		holders = holders_of(&w.tag, &nholders);
		if (wait_round(&w, Min(cachier_timeout_ms(left), Max(DeadlockTimeout / 2, MIN_ROUND_MS)),
					   any_holder_blocked(holders, nholders), &error))
		{
			if (exclusive)
				remember_key(key);
			return WAIT_DONE;
		}
		if (error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
			return WAIT_DEADLOCK;
		if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(error);
		FreeErrorData(error);
		raise_statement_timeout_if_due();
	}
}
