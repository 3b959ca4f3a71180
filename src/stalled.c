/*-------------------------------------------------------------------------
 *
 * stalled.c
 *	  Remembers computing sessions that made a waiter run out of
 *	  wait_timeout, so that later callers of the same key do not wait for
 *	  the same holder again.
 *
 * A holder is named by its virtual transaction id: when it ends its
 * transaction (or starts another) the record no longer matches and is
 * simply overwritten later.  Records live in a small ring: the oldest is
 * replaced first, so an entry can be forgotten early (a later caller then
 * waits once more), never wrongly kept.
 *
 * With shared_preload_libraries the ring is in shared memory, so one
 * timed-out wait spares every backend; an LWLock protects it: shared to
 * look, exclusive to record.  Without preloading each backend has its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/lwlock.h"

#define STALLED_SLOTS	128

typedef struct StalledHolder
{
	Oid			dbid;
	int64		key;
	VirtualTransactionId holder;
} StalledHolder;

typedef struct StalledRing
{
	int			next;			/* slot written next */
	StalledHolder slots[STALLED_SLOTS];
} StalledRing;

static StalledRing *shared_ring = NULL;
static LWLock *ring_lock = NULL;
static StalledRing local_ring;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static void
request_ring(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(StalledRing)));
	RequestNamedLWLockTranche("cachier stalled", 1);
}

static void
attach_ring(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared_ring = ShmemInitStruct("cachier stalled holders", sizeof(StalledRing), &found);
	if (!found)
		memset(shared_ring, 0, sizeof(StalledRing));
	ring_lock = &(GetNamedLWLockTranche("cachier stalled"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
cachier_stalled_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_ring;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_ring;
}

/* The ring, locked in mode if it is shared; give it back with unlock_ring. */
static StalledRing *
lock_ring(LWLockMode mode)
{
	if (shared_ring == NULL)
		return &local_ring;
	LWLockAcquire(ring_lock, mode);
	return shared_ring;
}

static void
unlock_ring(StalledRing *r)
{
	if (r == shared_ring)
		LWLockRelease(ring_lock);
}

/* A wait for these holders of the key ran out of wait_timeout. */
void
cachier_stalled_remember(int64 key, const VirtualTransactionId *holders, int n)
{
	StalledRing *r = lock_ring(LW_EXCLUSIVE);
	int			i;

	for (i = 0; i < n; i++)
	{
		StalledHolder *slot = &r->slots[r->next];

		slot->dbid = MyDatabaseId;
		slot->key = key;
		slot->holder = holders[i];
		r->next = (r->next + 1) % STALLED_SLOTS;
	}
	unlock_ring(r);
}

static bool
is_recorded(StalledRing *r, int64 key, const VirtualTransactionId *vxid)
{
	int			i;

	for (i = 0; i < STALLED_SLOTS; i++)
	{
		const StalledHolder *slot = &r->slots[i];

		if (slot->key == key && slot->dbid == MyDatabaseId &&
			VirtualTransactionIdEquals(slot->holder, *vxid))
			return true;
	}
	return false;
}

/* Whether a wait for every one of these holders of the key ran out before. */
bool
cachier_stalled_all(int64 key, const VirtualTransactionId *holders, int n)
{
	StalledRing *r;
	bool		all = n > 0;
	int			i;

	if (!all)
		return false;
	r = lock_ring(LW_SHARED);
	for (i = 0; i < n && all; i++)
		all = is_recorded(r, key, &holders[i]);
	unlock_ring(r);
	return all;
}
