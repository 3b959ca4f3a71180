/*-------------------------------------------------------------------------
 *
 * inprogress.c
 *	  The "being computed" mark of a key: a transaction-level advisory lock
 *	  in cachier's own lock space.
 *
 * The tag is (database, first 4 bytes of the key, next 4 bytes, 51908).
 * pg_advisory_lock() uses 1 and 2 in the last field, so application locks
 * never collide with ours; pg_locks shows ours with objsubid = 51908.
 *
 * Locking rule: the session that computes a key holds the lock in
 * ExclusiveLock mode from before it computes until its transaction ends,
 * so waiters wake exactly when the value is committed (or the computation
 * failed, rolled back, or its backend died: the lock dies with it).  It is
 * only ever taken without waiting.  Waiters take ShareLock and drop it at
 * once, so any number wake together.  A wait is bounded by wait_timeout
 * (through lock_timeout) and a deadlock is turned into "compute it
 * yourself": neither reaches the caller as an error.  Cancellation and
 * termination do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"

void
cachier_lock_key_ids(const uint8 *key, uint32 *classid, uint32 *objid)
{
	*classid = ((uint32) key[0] << 24) | ((uint32) key[1] << 16) |
		((uint32) key[2] << 8) | key[3];
	*objid = ((uint32) key[4] << 24) | ((uint32) key[5] << 16) |
		((uint32) key[6] << 8) | key[7];
}

static void
make_tag(LOCKTAG *tag, const uint8 *key)
{
	uint32		classid;
	uint32		objid;

	cachier_lock_key_ids(key, &classid, &objid);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, classid, objid, CACHIER_LOCKSPACE);
}

/* Take the key's lock to compute it; false if another session has it. */
bool
cachier_lock_try(const uint8 *key)
{
	LOCKTAG		tag;

	make_tag(&tag, key);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/* Give back a lock taken by cachier_lock_try that we did not use. */
void
cachier_lock_release(const uint8 *key)
{
	LOCKTAG		tag;

	make_tag(&tag, key);
	LockRelease(&tag, ExclusiveLock, false);
}

/* Whether another session is computing the key right now. */
bool
cachier_lock_is_held_elsewhere(const uint8 *key)
{
	LOCKTAG		tag;

	make_tag(&tag, key);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ShareLock, false);
	return false;
}

static int
timeout_ms(int64 timeout_us)
{
	int64		ms = (timeout_us + 999) / 1000;

	return (int) Min(Max(ms, 1), INT_MAX);
}

static void
wait_share(void *arg)
{
	LOCKTAG    *tag = (LOCKTAG *) arg;

	(void) LockAcquire(tag, ShareLock, false, false);
	LockRelease(tag, ShareLock, false);
}

/*
 * Wait until the session computing the key ends its transaction, at most
 * timeout_us.  The wait runs guarded (subxact.c) so that a lock timeout or
 * a deadlock can be caught; anything else is re-thrown.  The caller looks
 * the key up again after WAIT_DONE.
 */
WaitResult
cachier_lock_wait(const uint8 *key, int64 timeout_us)
{
	int			saved_lock_timeout = LockTimeout;
	LOCKTAG		tag;
	ErrorData  *error;
	bool		done;

	if (timeout_us <= 0)
		return WAIT_TIMED_OUT;
	make_tag(&tag, key);
	LockTimeout = timeout_ms(timeout_us);
	PG_TRY();
	{
		done = cachier_run_guarded(wait_share, &tag, &error);
	}
	PG_FINALLY();
	{
		LockTimeout = saved_lock_timeout;
	}
	PG_END_TRY();
	if (done)
		return WAIT_DONE;
	if (error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		return WAIT_TIMED_OUT;
	if (error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
		return WAIT_DEADLOCK;
	ReThrowError(error);
	pg_unreachable();
}
