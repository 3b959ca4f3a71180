/*-------------------------------------------------------------------------
 *
 * refresh_queue.c
 *	  The queue of background refreshes (next_time): a stale hit queues
 *	  its key, a database worker takes it, recomputes and stores it.
 *
 * An item stays in the queue, queued and then running, until the worker
 * has finished with it, so a key is refreshed at most once at a time: a
 * second stale hit finds it in the queue's index (a shared hash from key
 * to slot) and queues nothing.  Fair shares: a role holds at most
 * CACHIER_QUEUE_PER_ROLE slots and a database CACHIER_QUEUE_PER_DATABASE,
 * and a database's refresh worker takes its items one role after another
 * (round-robin by role OID), so nobody fills the queue or makes the others
 * wait behind a long list.  When the queue or a share is full a stale hit
 * is still served and queues nothing; a later one will.
 * Locking: cachier_shared->lock, exclusive for every change (see
 * shared_state.c); the launcher's latch under cachier_shared->mutex.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "miscadmin.h"

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
 * A free slot, if the role and the database have not used up their
 * shares of the queue; -1 otherwise.  Caller holds the lock exclusively.
 */
static int
free_slot_within_shares(Oid dbid, Oid roleid)
{
	int			first_free = -1;
	int			of_role = 0;
	int			of_database = 0;
	int			i;

	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
	{
		RefreshItem *item = &cachier_shared->queue[i];

		if (item->state == REFRESH_FREE)
		{
			if (first_free < 0)
				first_free = i;
			continue;
		}
		of_role += item->roleid == roleid;
		of_database += item->dbid == dbid;
	}
	if (of_role >= CACHIER_QUEUE_PER_ROLE || of_database >= CACHIER_QUEUE_PER_DATABASE)
		return -1;
	return first_free;
}

/*
 * Queue a refresh of the key; false if it is queued or running already,
 * or the queue (or the role's or the database's share of it) is full.  "Already queued" is the common answer under a
 * burst of stale hits, so it is found with the lock in shared mode.
 */
bool
cachier_queue_refresh(Oid funcid, int64 key)
{
	RefreshKey	k = make_key(MyDatabaseId, funcid, key);
	RefreshIndexEntry *entry;
	bool		found;
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_SHARED);
	found = hash_search(cachier_refresh_index, &k, HASH_FIND, NULL) != NULL;
	LWLockRelease(cachier_shared->lock);
	if (found)
		return false;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	i = free_slot_within_shares(MyDatabaseId, GetUserId());
	entry = i >= 0 ?
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
	LWLockRelease(cachier_shared->lock);
	/* the launcher starts the database's worker unless it is running */
	cachier_wake_launcher();
	return true;
}

/*
 * Whether queued item a comes before b in the round-robin after role
 * "last": roles above last first, in OID order, then the others from the
 * lowest; within a role, the lower slot.
 */
static bool
comes_before(const RefreshItem *a, int slot_a, const RefreshItem *b, int slot_b, Oid last)
{
	bool		a_next = a->roleid > last;
	bool		b_next = b->roleid > last;

	if (a_next != b_next)
		return a_next;
	if (a->roleid != b->roleid)
		return a->roleid < b->roleid;
	return slot_a < slot_b;
}

/*
 * Take the next queued refresh of a database; it is then running.  The
 * roles take turns: after a refresh of role r comes one of the next role
 * with queued refreshes (the only caller is the database's refresh worker,
 * which keeps r).
 */
bool
cachier_next_refresh(Oid dbid, RefreshItem *taken, int *slot)
{
	static Oid	last_role = InvalidOid;
	int			best = -1;
	int			i;

	LWLockAcquire(cachier_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CACHIER_QUEUE_SIZE; i++)
	{
		RefreshItem *item = &cachier_shared->queue[i];

		if (item->state != REFRESH_QUEUED || item->dbid != dbid)
			continue;
		if (best < 0 || comes_before(item, i, &cachier_shared->queue[best], best, last_role))
			best = i;
	}
	if (best >= 0)
	{
		RefreshItem *item = &cachier_shared->queue[best];

		item->state = REFRESH_RUNNING;
		item->attempts++;
		*taken = *item;
		*slot = best;
		last_role = item->roleid;
	}
	LWLockRelease(cachier_shared->lock);
	return best >= 0;
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
