/*-------------------------------------------------------------------------
 *
 * refresh_queue.c
 *	  The queue of background refreshes (next_time): a stale hit queues
 *	  its key, a database worker takes it, recomputes and stores it.
 *
 * An item stays in the queue, queued and then running, until the worker
 * has finished with it, so a key is refreshed at most once at a time: a
 * second stale hit finds it and queues nothing.  When the queue is full a
 * stale hit is still served and queues nothing; a later one will.
 * Locking: cachier_shared->lock, exclusive for every change (see
 * shared_state.c); the launcher's latch under cachier_shared->mutex.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "miscadmin.h"

void
cachier_wake_launcher(void)
{
	Latch	   *latch;

	SpinLockAcquire(&cachier_shared->mutex);
	latch = cachier_shared->launcher_latch;
	SpinLockRelease(&cachier_shared->mutex);
	if (latch)
		SetLatch(latch);
}

static bool
same_item(const RefreshItem *item, Oid funcid, int64 key)
{
	return item->state != REFRESH_FREE && item->dbid == MyDatabaseId &&
		item->funcid == funcid && item->key == key;
}

/* Queue a refresh of the key; false if it is queued or running already,
 * or the queue is full. */
bool
cachier_queue_refresh(Oid funcid, int64 key)
{
	int			free_slot = -1;
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
	{
		RefreshItem *item = &cachier_shared->queue[i];

		if (same_item(item, funcid, key))
		{
			LWLockRelease(cachier_shared->lock);
			return false;
		}
		if (item->state == REFRESH_FREE && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		RefreshItem *item = &cachier_shared->queue[free_slot];

		item->state = REFRESH_QUEUED;
		item->dbid = MyDatabaseId;
		item->funcid = funcid;
		item->key = key;
		item->roleid = GetUserId();
		item->attempts = 0;
	}
	LWLockRelease(cachier_shared->lock);
	if (free_slot < 0)
		return false;
	cachier_wake_launcher();
	return true;
}

/* Take the next queued refresh of a database; it is then running. */
bool
cachier_next_refresh(Oid dbid, RefreshItem *taken, int *slot)
{
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
	{
		RefreshItem *item = &cachier_shared->queue[i];

		if (item->state == REFRESH_QUEUED && item->dbid == dbid)
		{
			item->state = REFRESH_RUNNING;
			item->attempts++;
			*taken = *item;
			*slot = i;
			LWLockRelease(cachier_shared->lock);
			return true;
		}
	}
	LWLockRelease(cachier_shared->lock);
	return false;
}

/* Forget the queued refreshes of a database (the extension is gone). */
void
cachier_drop_refreshes(Oid dbid)
{
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
		if (cachier_shared->queue[i].state == REFRESH_QUEUED &&
			cachier_shared->queue[i].dbid == dbid)
			cachier_shared->queue[i].state = REFRESH_FREE;
	LWLockRelease(cachier_shared->lock);
}

void
cachier_refresh_finished(int slot)
{
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	cachier_shared->queue[slot].state = REFRESH_FREE;
	LWLockRelease(cachier_shared->lock);
}
