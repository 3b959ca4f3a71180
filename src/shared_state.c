/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *	  cachier's shared memory, which exists only when the library is in
 *	  shared_preload_libraries: per-function statistics, the queue of
 *	  background refreshes, and what the background workers share.
 *
 * Locking rule: one LWLock per structure.  cachier_shared->lock protects
 * the refresh queue with its index (exclusive to change it).
 * cachier_shared->stats_lock protects the statistics hash, a fixed table of
 * cachier.max_tracked_functions entries: shared to look a function up and
 * to count (plus the entry's spinlock, held only for a few additions),
 * exclusive to add, evict or reset entries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "utils/hsearch.h"

CachierShared *cachier_shared = NULL;
HTAB	   *cachier_stats_hash = NULL;
HTAB	   *cachier_refresh_index = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static Size
shared_size(void)
{
	return add_size(add_size(MAXALIGN(sizeof(CachierShared)),
							 hash_estimate_size(cachier_max_tracked_functions,
												sizeof(FunctionStats))),
					hash_estimate_size(CACHIER_QUEUE_SIZE, sizeof(RefreshIndexEntry)));
}

static void
request_shared(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("cachier", 2);
}

static void
attach_shared(void)
{
	HASHCTL		ctl;
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cachier_shared = ShmemInitStruct("cachier", sizeof(CachierShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("cachier");

		memset(cachier_shared, 0, sizeof(CachierShared));
		cachier_shared->lock = &locks[0].lock;
		cachier_shared->stats_lock = &locks[1].lock;
		cachier_shared->stats_reset = GetCurrentTimestamp();
		SpinLockInit(&cachier_shared->mutex);
		pg_atomic_init_u64(&cachier_shared->entry_commits, 0);
	}
	ctl.keysize = sizeof(StatsKey);
	ctl.entrysize = sizeof(FunctionStats);
	cachier_stats_hash = ShmemInitHash("cachier statistics",
									   cachier_max_tracked_functions,
									   cachier_max_tracked_functions,
									   &ctl, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	ctl.keysize = sizeof(RefreshKey);
	ctl.entrysize = sizeof(RefreshIndexEntry);
	cachier_refresh_index = ShmemInitHash("cachier refresh queue index",
										  CACHIER_QUEUE_SIZE, CACHIER_QUEUE_SIZE,
										  &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
cachier_shared_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_shared;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_shared;
}

/* Whether shared memory is there: the library was preloaded. */
bool
cachier_preloaded(void)
{
	return cachier_shared != NULL;
}

/* Wake the launcher (its latch is published under the mutex). */
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
