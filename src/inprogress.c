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
 * it one at a time.
 *
 * Waits sleep in the lock manager (pg_locks and pg_blocking_pids show
 * them), in rounds ended by a lock timeout.  Between rounds a waiter
 * looks whether its time (wait_timeout) is up and whether a deadlock can
 * form through its wait: only if the chain of lock waits from the key's
 * holders leads back to it does the next round run PostgreSQL's deadlock
 * check, early, so that the cache's waiter is the one that finds the
 * cycle.  A deadlock is turned into "compute it yourself", a timeout into
 * the same without storing: neither reaches the caller as an error.
 * Cancellation, statement_timeout and termination do, also when they
 * arrive as a round ends (see "Cancel requests" below).  Nobody waits
 * twice for a holder that is not making progress: once a wait for a key's
 * holder has run out of wait_timeout, later callers of that key compute at
 * once while the same transaction holds it (stalled.c).  PREPARE
 * TRANSACTION gives the transaction's computing locks back first (they are
 * transaction-scoped marks, not data locks), so a prepared transaction
 * never holds one, not even across a restart; its stored entries become
 * visible when it commits.
 *
 * While a wait lasts, the backend's SIGINT handler is wrapped (and
 * restored when the wait ends, also by an error); nothing else in
 * cachier touches signals.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

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


/* ---------------------------------------------------------------- waiting */

/*
 * Shortest round of a wait.  Each round ends with a lock timeout, after
 * which the waiter looks again whether a deadlock can form through its
 * wait and whether its own time is up.
 */
#define MIN_ROUND_MS	100

/* how soon a waiter checks for deadlocks when one may be forming */
#define EARLY_DEADLOCK_CHECK_MS	10

/* most sessions followed when looking for a chain of waits back to us */
#define MAX_CHAIN	64

int
cachier_timeout_ms(int64 timeout_us)
{
	int64		ms = (timeout_us + 999) / 1000;

	return (int) Min(Max(ms, 1), INT_MAX);
}

/*
 * Cancel requests that arrive during a wait.
 *
 * PostgreSQL delivers a lock timeout, statement_timeout and a cancel
 * request alike: each sets QueryCancelPending (the two timeouts by sending
 * SIGINT to their own process), and the next CHECK_FOR_INTERRUPTS reports
 * one of them, the lock timeout first.  A cancel request that arrives as a
 * round's lock timeout fires would be taken for that timeout and
 * forgotten.  So while a wait lasts, SIGINT goes through note_sigint
 * first, which records a SIGINT sent by another process -- a cancel
 * request (pg_cancel_backend, a client's cancel) -- and then calls the
 * backend's own handler as usual.  After a round that ended with a lock
 * timeout, a recorded cancel request is raised again (raise_lost_cancel).
 * A statement_timeout that ran out with the round is recognised by time
 * (raise_statement_timeout_if_due).  Nothing here ever clears an
 * interrupt flag.
 */
static volatile sig_atomic_t cancel_requested = false;
static struct sigaction backend_sigint;
static bool watching = false;

static void
note_sigint(int signo, siginfo_t *info, void *context)
{
	int			save_errno = errno;

	if (info == NULL || info->si_pid != MyProcPid)
		cancel_requested = true;
	errno = save_errno;
	if (backend_sigint.sa_flags & SA_SIGINFO)
		backend_sigint.sa_sigaction(signo, info, context);
	else if (backend_sigint.sa_handler != SIG_DFL &&
			 backend_sigint.sa_handler != SIG_IGN)
		backend_sigint.sa_handler(signo);
}

/* Start noting cancel requests; true if this call must stop it. */
static bool
watch_cancels(void)
{
	struct sigaction act;

	if (watching)
		return false;
	cancel_requested = false;
	if (sigaction(SIGINT, NULL, &backend_sigint) != 0)
		return false;
	/* a process that ignores SIGINT cannot be cancelled anyway */
	if (!(backend_sigint.sa_flags & SA_SIGINFO) &&
		(backend_sigint.sa_handler == SIG_DFL || backend_sigint.sa_handler == SIG_IGN))
		return false;
	memset(&act, 0, sizeof(act));
	act.sa_sigaction = note_sigint;
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_SIGINFO | (backend_sigint.sa_flags & SA_RESTART);
	if (sigaction(SIGINT, &act, NULL) != 0)
		return false;
	watching = true;
	return true;
}

/* Give the backend its own SIGINT handler back. */
static void
unwatch_cancels(bool started)
{
	if (!started)
		return;
	(void) sigaction(SIGINT, &backend_sigint, NULL);
	watching = false;
}

/* A round ended with a lock timeout: raise a cancel request it hid. */
static void
raise_lost_cancel(void)
{
	if (!cancel_requested)
		return;
	cancel_requested = false;
	QueryCancelPending = true;
	InterruptPending = true;
	CHECK_FOR_INTERRUPTS();
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
 * Deadlocks through a wait.
 *
 * A cycle through our wait exists only if the session we wait for is
 * waiting, directly or through others, for a lock we hold.  PostgreSQL's
 * deadlock check finds such cycles, but it takes every partition of the
 * lock table; 64 waiters running it every round would stall everybody's
 * locking for nothing.  So each round first follows the chain of lock
 * waits from the key's holders, reading each session's awaited lock (its
 * PGPROC, without a lock) and that lock's holders (one partition, shared):
 * only when the chain leads back to us, or cannot be followed, does the
 * round run the deadlock check, early.  A stale read only moves that
 * check by one round, since every round looks again.
 */

/* What proc waits for in the lock manager, if anything (may be stale). */
static bool
awaited_lock(PGPROC *proc, LOCKTAG *tag, LOCKMODE *mode, bool *readable)
{
	volatile PGPROC *vproc = proc;
	LOCK	   *lock = vproc->waitLock;
	volatile LOCKTAG *vtag;
	LockMethod	method;

	*readable = true;
	if (lock == NULL)
		return false;
	*mode = vproc->waitLockMode;
	vtag = &lock->tag;
	tag->locktag_field1 = vtag->locktag_field1;
	tag->locktag_field2 = vtag->locktag_field2;
	tag->locktag_field3 = vtag->locktag_field3;
	tag->locktag_field4 = vtag->locktag_field4;
	tag->locktag_type = vtag->locktag_type;
	tag->locktag_lockmethodid = vtag->locktag_lockmethodid;
	/* the lock may have been recycled meanwhile: check before using it */
	if (tag->locktag_lockmethodid != DEFAULT_LOCKMETHOD &&
		tag->locktag_lockmethodid != USER_LOCKMETHOD)
	{
		*readable = false;
		return false;
	}
	method = GetLockTagsMethodTable(tag);
	if (*mode < 1 || *mode > method->numLockModes)
	{
		*readable = false;
		return false;
	}
	return true;
}

/*
 * Whether we hold the lock, in any mode.  A session waiting for it may be
 * queued behind a request that our mode blocks, even if its own does not.
 */
static bool
we_hold(const LOCKTAG *tag)
{
	LockMethod	method = GetLockTagsMethodTable(tag);
	LOCKMODE	mode;

	/* our virtual transaction's lock lives in the fast path, not in our table */
	if (tag->locktag_type == LOCKTAG_VIRTUALTRANSACTION)
		return tag->locktag_field1 == (uint32) MyProc->backendId &&
			tag->locktag_field2 == (uint32) MyProc->lxid;
	for (mode = 1; mode <= method->numLockModes; mode++)
		if (LockHeldByMe(tag, mode))
			return true;
	return false;
}

typedef struct Chain
{
	int			n;
	PGPROC	   *procs[MAX_CHAIN];
} Chain;

/* Add the session running vxid to the chain; false if it is full. */
static bool
chain_add(Chain *chain, VirtualTransactionId vxid)
{
	PGPROC	   *proc = BackendIdGetProc(vxid.backendId);
	int			i;

	/* gone, prepared (waits for nothing) or in its next transaction */
	if (proc == NULL || proc->lxid != vxid.localTransactionId)
		return true;
	for (i = 0; i < chain->n; i++)
		if (chain->procs[i] == proc)
			return true;
	if (chain->n == MAX_CHAIN)
		return false;
	chain->procs[chain->n++] = proc;
	return true;
}

/*
 * Whether a deadlock may form through a wait for these holders: some
 * chain of lock waits from them leads back to us, or is too long to
 * follow.  A waiting session is taken to wait for every holder of the
 * lock it awaits, whatever their modes: it may be queued behind a request
 * that they block.  A holder outside any transaction (a session-level
 * lock of an idle session) waits for nothing.
 */
static bool
cycle_possible(const VirtualTransactionId *holders, int nholders)
{
	Chain		chain;
	int			next;
	int			i;

	chain.n = 0;
	for (i = 0; i < nholders; i++)
		if (!chain_add(&chain, holders[i]))
			return true;
	for (next = 0; next < chain.n; next++)
	{
		LOCKTAG		tag;
		LOCKMODE	mode;
		bool		readable;
		VirtualTransactionId *blockers;
		int			nblockers;

		if (!awaited_lock(chain.procs[next], &tag, &mode, &readable))
		{
			if (!readable)
				return true;
			continue;			/* running, or waiting for no lock */
		}
		if (we_hold(&tag))
			return true;
		blockers = GetLockConflicts(&tag, GetLockTagsMethodTable(&tag)->numLockModes,
									&nblockers);
		for (i = 0; i < nblockers; i++)
			if (!chain_add(&chain, blockers[i]))
				return true;
	}
	return false;
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
 * One bounded wait for the lock.  With check, the deadlock check runs
 * early: it runs in the process whose deadlock_timeout passes first, and
 * running ours sooner makes the cache's waiter the one that finds a cycle,
 * so that it computes by itself rather than another transaction getting a
 * deadlock error because of the cache.  Without check, it does not run at
 * all during the round (nothing can close a cycle through us right now).
 */
static bool
wait_round(WaitArgs *w, int slice_ms, bool check, ErrorData **error)
{
	int			saved_lock_timeout = LockTimeout;
	int			saved_deadlock_timeout = DeadlockTimeout;
	volatile bool done = false;

	LockTimeout = slice_ms;
	if (check)
		DeadlockTimeout = Min(DeadlockTimeout, EARLY_DEADLOCK_CHECK_MS);
	else
		DeadlockTimeout = (int) Min(Max((int64) DeadlockTimeout,
										(int64) slice_ms * 2 + 1000),
									(int64) INT_MAX);
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
 * The rounds of a wait (see cachier_lock_wait).  Whatever a round
 * allocates lives in cxt, reset after it.
 */
static WaitResult
wait_in_rounds(WaitArgs *w, int64 key, TimestampTz deadline, MemoryContext cxt)
{
	MemoryContext caller = CurrentMemoryContext;
	VirtualTransactionId *holders;
	int			nholders;
	ErrorData  *error;

	for (;;)
	{
		int64		left;
		bool		check;
		int			slice_ms;

		CHECK_FOR_INTERRUPTS();
		left = deadline - GetCurrentTimestamp();
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		holders = holders_of(&w->tag, &nholders);
		if (left <= 0)
		{
			/* spare later callers a wait for the same holders */
			cachier_stalled_remember(key, holders, nholders);
			MemoryContextSwitchTo(caller);
			return WAIT_TIMED_OUT;
		}
		check = cycle_possible(holders, nholders);
		MemoryContextSwitchTo(caller);
		slice_ms = Min(cachier_timeout_ms(left), Max(DeadlockTimeout / 2, MIN_ROUND_MS));
		if (wait_round(w, slice_ms, check, &error))
			return WAIT_DONE;
		if (error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
			return WAIT_DEADLOCK;
		if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(error);
		FreeErrorData(error);
		raise_lost_cancel();
		raise_statement_timeout_if_due();
	}
}

/*
 * Wait, at most timeout_us, for the session computing the key to end its
 * transaction.  With exclusive, queue for the lock and keep it (the caller
 * then computes or gives it back); otherwise wake with all other waiters
 * and hold nothing.  The wait runs in rounds so that deadlocks formed
 * after it began are still found by us.  Lock timeouts and deadlocks come
 * back as results; a cancel request, statement_timeout or termination is
 * raised as the usual error, also when it coincides with a round's end.
 */
WaitResult
cachier_lock_wait(int64 key, int64 timeout_us, bool exclusive)
{
	TimestampTz deadline = GetCurrentTimestamp() + timeout_us;
	WaitArgs	w;
	VirtualTransactionId *holders;
	int			nholders;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt;
	bool		stalled;
	bool		watched;
	volatile WaitResult result = WAIT_TIMED_OUT;

	if (timeout_us <= 0)
		return WAIT_TIMED_OUT;
	make_tag(&w.tag, key);
	w.mode = exclusive ? ExclusiveLock : ShareLock;
	cxt = AllocSetContextCreate(caller, "cachier wait", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);
	holders = holders_of(&w.tag, &nholders);
	stalled = cachier_stalled_all(key, holders, nholders);
	MemoryContextSwitchTo(caller);
	if (stalled)
	{
		MemoryContextDelete(cxt);
		return WAIT_HOLDER_STALLED;
	}
	watched = watch_cancels();
	PG_TRY();
	{
		result = wait_in_rounds(&w, key, deadline, cxt);
	}
	PG_FINALLY();
	{
		unwatch_cancels(watched);
		MemoryContextSwitchTo(caller);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	if (result == WAIT_DONE && exclusive)
		remember_key(key);
	return result;
}
