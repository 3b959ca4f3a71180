/*-------------------------------------------------------------------------
 *
 * refresh_queue.c
 *	  The queue of background refreshes (next_time): a stale hit queues
 *	  its key, a database worker takes it, recomputes and stores it.
 *
 * An item stays in the queue, queued and then running, until the worker
 * has finished with it, so a key is refreshed at most once at a time: a
 * second stale hit finds it in the queue's index (a shared hash from key
 * to slot) and queues nothing.  When the queue is full a
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

static RefreshKey
make_key(Oid dbid, Oid funcid, int64 key)
{
	RefreshKey	k;

	memset(&k, 0, sizeof(k));
	k.dbid = dbid;
	k.funcid = funcid;
	k.key = key;
	return k;
}

/* Empty a slot and forget its key; caller holds the lock exclusively. */
static void
free_slot(int slot)
{
	RefreshItem *item = &cachier_shared->queue[slot];
	RefreshKey	k = make_key(item->dbid, item->funcid, item->key);

	hash_search(cachier_refresh_index, &k, HASH_REMOVE, NULL);
	item->state = REFRESH_FREE;
}

/*
 * Queue a refresh of the key; false if it is queued or running already,
 * or the queue is full.  "Already queued" is the common answer under a
 * burst of stale hits, so it is found with the lock in shared mode.
 */
bool
cachier_queue_refresh(Oid funcid, int64 key)
{
	RefreshKey	k = make_key(MyDatabaseId, funcid, key);
	RefreshIndexEntry *entry;
	bool		found;
	bool		wake;
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	found = hash_search(cachier_refresh_index, &k, HASH_FIND, NULL) != NULL;
	LWLockRelease(cachier_shared->lock);
	if (found)
		return false;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
		if (cachier_shared->queue[i].state == REFRESH_FREE)
			break;
	entry = i < CACHIER_QUEUE_SIZE ?
		hash_search(cachier_refresh_index, &k, HASH_ENTER_NULL, &found) : NULL;
	if (entry == NULL || found)
	{
		LWLockRelease(cachier_shared->lock);
		return false;			/* full, or queued meanwhile */
	}
	entry->slot = i;
	cachier_shared->queue[i].state = REFRESH_QUEUED;
	cachier_shared->queue[i].dbid = MyDatabaseId;
	cachier_shared->queue[i].funcid = funcid;
	cachier_shared->queue[i].key = key;
	cachier_shared->queue[i].roleid = GetUserId();
	cachier_shared->queue[i].attempts = 0;
	/* a running worker of this database will find it (and its exit wakes us) */
	wake = !cachier_worker_running_locked(MyDatabaseId);
	LWLockRelease(cachier_shared->lock);
	if (wake)
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
			free_slot(i);
	LWLockRelease(cachier_shared->lock);
}

/*
 * A database worker ends (caller holds the lock exclusively).  A refresh
 * it was running goes back to the queue once; a second death drops it, so
 * a refresh that kills its worker is not retried forever.  A worker that
 * could not even connect (the database was dropped) drops them all.
 */
void
cachier_release_refreshes(Oid dbid, bool connected)
{
	int			i;

	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
	{
		RefreshItem *item = &cachier_shared->queue[i];

		if (item->dbid != dbid || item->state == REFRESH_FREE)
			continue;
		if (!connected || (item->state == REFRESH_RUNNING && item->attempts >= 2))
			free_slot(i);
		else if (item->state == REFRESH_RUNNING)
			item->state = REFRESH_QUEUED;
	}
}

void
cachier_refresh_finished(int slot)
{
	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	free_slot(slot);
	LWLockRelease(cachier_shared->lock);
}
