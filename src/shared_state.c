/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *	  cachier's shared memory, which exists only when the library is in
 *	  shared_preload_libraries: per-function statistics, the queue of
 *	  background refreshes, and what the background workers share.
 *
 * Locking rule: one LWLock (cachier_shared->lock) protects the statistics
 * hash's structure and the refresh queue with its index: shared to look a function up,
 * exclusive to add one, to reset, and to change the queue.  The counters
 * of one function are protected by that function's spinlock, held only
 * for a few additions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
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
							 hash_estimate_size(CACHIER_MAX_FUNCTIONS, sizeof(FunctionStats))),
					hash_estimate_size(CACHIER_QUEUE_SIZE, sizeof(RefreshIndexEntry)));
}

static void
request_shared(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("cachier", 1);
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
		memset(cachier_shared, 0, sizeof(CachierShared));
		cachier_shared->lock = &(GetNamedLWLockTranche("cachier"))->lock;
		SpinLockInit(&cachier_shared->mutex);
	}
	ctl.keysize = sizeof(StatsKey);
	ctl.entrysize = sizeof(FunctionStats);
	cachier_stats_hash = ShmemInitHash("cachier statistics",
									   CACHIER_MAX_FUNCTIONS, CACHIER_MAX_FUNCTIONS,
									   &ctl, HASH_ELEM | HASH_BLOBS);
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
