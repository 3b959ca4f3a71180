/*-------------------------------------------------------------------------
 *
 * cachier_shared.h
 *	  The shared-memory state of cachier (see shared_state.c for its
 *	  locking rule) and the interfaces of the files that use it:
 *	  statistics, the refresh queue, cleanup and the background workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHIER_SHARED_H
#define CACHIER_SHARED_H

#include "cachier.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/hsearch.h"

#define CACHIER_QUEUE_SIZE		1024	/* queued or running refreshes */
#define CACHIER_MAX_DATABASES	256		/* databases the launcher tracks */

typedef struct StatsKey
{
	Oid			dbid;
	Oid			funcid;
} StatsKey;

/*
 * Counters of one function, an entry of the fixed-size statistics hash.
 * The key changes only under stats_lock held exclusively (an eviction); the
 * counters are changed under stats_lock held shared plus mutex, which
 * protects all the fields after it.
 */
typedef struct FunctionStats
{
	StatsKey	key;
	slock_t		mutex;
	double		usage;			/* decaying count of events: eviction order */
	int64		hits;
	int64		misses;
	int64		stale_hits;
	int64		waits;
	int64		wait_timeouts;
	int64		computations;
	int64		refreshes_queued;
	int64		refreshes_done;
	int64		refreshes_failed;
	double		compute_ms;
	double		saved_ms;
	int64		invalidations;	/* [F] entries found invalidated by a change */
	int64		memory_hits;	/* [M] hits the memory tier served */
	int64		memory_evictions;	/* [M] its entries the memory tier evicted */
	TimestampTz last_cleanup;
} FunctionStats;

/*
 * What a call site keeps to count its function's events: the key it counts
 * for and the entry last found for it.  Eviction may give that entry to
 * another function at any time, so the entry is only a hint: cachier_count
 * checks its key and finds (or creates) the right entry when it changed.
 */
typedef struct StatsHandle
{
	StatsKey	key;
	FunctionStats *entry;		/* hint, may be stale or NULL */
} StatsHandle;

typedef enum StatsEvent
{
	STAT_HIT,
	STAT_MISS,
	STAT_STALE_HIT,
	STAT_WAIT,
	STAT_WAIT_TIMEOUT,
	STAT_COMPUTATION,
	STAT_REFRESH_QUEUED,
	STAT_REFRESH_DONE,
	STAT_REFRESH_FAILED,
	STAT_SAVED,					/* a value served: only the time saved */
	STAT_INVALIDATION			/* [F] an entry invalidated by a change */
} StatsEvent;

typedef enum RefreshState
{
	REFRESH_FREE = 0,
	REFRESH_QUEUED,
	REFRESH_RUNNING
} RefreshState;

typedef struct RefreshItem
{
	RefreshState state;
	Oid			dbid;
	Oid			funcid;
	int64		key;
	Oid			roleid;			/* the role whose call queued it */
	int			attempts;		/* workers that took it */
} RefreshItem;

/* The refresh queue's index: which slot holds a key. */
typedef struct RefreshKey
{
	Oid			dbid;
	Oid			funcid;
	int64		key;
} RefreshKey;

typedef struct RefreshIndexEntry
{
	RefreshKey	key;
	int			slot;
} RefreshIndexEntry;

typedef struct DatabaseSlot
{
	Oid			dbid;			/* InvalidOid: free */
	TimestampTz next_run;		/* when its worker should run again */
	bool		worker_running;
	pid_t		worker_pid;		/* once connected, 0 otherwise */
} DatabaseSlot;

typedef struct CachierShared
{
	LWLock	   *lock;			/* the refresh queue and its index */
	LWLock	   *stats_lock;		/* the statistics hash and the two below */
	int64		stats_evictions;	/* entries evicted since stats_reset */
	TimestampTz stats_reset;	/* last cachier_stats_reset(), or start */
	slock_t		mutex;			/* protects the launcher fields below */
	Latch	   *launcher_latch;
	int			workers_running;
	RefreshItem queue[CACHIER_QUEUE_SIZE];
	DatabaseSlot databases[CACHIER_MAX_DATABASES];
	/*
	 * Entries committed, or key locks given back early (table_store.c):
	 * read by every cached call, so on a cache line of its own.
	 */
	char		pad_before[PG_CACHE_LINE_SIZE];
	pg_atomic_uint64 entry_commits;
	char		pad_after[PG_CACHE_LINE_SIZE];
} CachierShared;

extern CachierShared *cachier_shared;
extern HTAB *cachier_stats_hash;
extern HTAB *cachier_refresh_index;

/* shared_state.c */
extern void cachier_shared_init(void);
extern bool cachier_preloaded(void);

/* stats.c */
extern int	cachier_max_tracked_functions;
extern StatsHandle *cachier_stats_handle(Oid funcid, MemoryContext mcxt);
extern void cachier_count(StatsHandle *handle, StatsEvent event, double ms);
extern void cachier_count_function(Oid funcid, StatsEvent event, double ms);
extern TimestampTz cachier_stats_last_cleanup(Oid funcid);
extern void cachier_stats_set_last_cleanup(Oid funcid, TimestampTz when);
/* [M] a backend's memory-tier counts, flushed now and then (memory_tier.c) */
extern void cachier_stats_require_preloaded(void);
extern FunctionStats *cachier_stats_copy(int *n);
extern void cachier_stats_add_memory(Oid dbid, Oid funcid, int64 hits,
									 double saved_ms, int64 evictions);

/* views.c */
typedef struct EntryTotals
{
	Oid			funcid;			/* hash key */
	int64		entries;
	int64		bytes;
} EntryTotals;

extern HTAB *cachier_entry_totals(void);
/* how many values cachier_option_values gives (cachier.effective_options) */
#define OPTION_VALUES 15
extern void cachier_option_values(Oid funcid, Datum *values, bool *nulls);

/* refresh_queue.c */
extern bool cachier_queue_refresh(Oid funcid, int64 key);
extern bool cachier_next_refresh(Oid dbid, RefreshItem *item, int *slot);
extern void cachier_refresh_finished(int slot);
extern void cachier_drop_refreshes(Oid dbid);
extern void cachier_release_refreshes(Oid dbid, bool connected);
extern void cachier_wake_launcher(void);

/* cleanup.c */
extern int64 cachier_cleanup_function(Oid funcid, int64 stale_after_us, bool own_transactions);
extern List *cachier_cleanup_candidates(void);

/* worker.c */
extern int	cachier_max_workers;
extern void cachier_worker_init(void);
extern void cachier_database_due(Oid dbid);
extern void cachier_database_due_at_commit(void);
extern void cachier_stop_database_worker(Oid dbid);

/* ==== [B] background workers (worker.c, db_worker.c, refresh.c, refresh_queue.c) ==== */

/* A role, and a database, may hold at most this many queue slots. */
#define CACHIER_QUEUE_PER_ROLE		(CACHIER_QUEUE_SIZE / 16)
#define CACHIER_QUEUE_PER_DATABASE	(CACHIER_QUEUE_SIZE / 4)

/* Each database has up to one worker of each kind at a time. */
typedef enum WorkerKind
{
	WORKER_CLEANUP = 0,
	WORKER_REFRESH,
	WORKER_KINDS
} WorkerKind;

/*
 * What the launcher knows of one database.  "started" is the launcher's
 * own record, cleared only once the worker's handle says it stopped; pid
 * is set by the worker once connected and cleared by it (under the lock)
 * before it exits, so a pid read under the lock is a live worker's.
 */
typedef struct WorkerSlot
{
	Oid			dbid;			/* InvalidOid: free */
	TimestampTz next_cleanup;	/* DT_NOEND: nothing due */
	bool		cleanup_again;	/* made due while its cleanup worker ran */
	bool		started[WORKER_KINDS];
	pid_t		pid[WORKER_KINDS];
	bool		unreachable;	/* a worker could not connect: dropped */
} WorkerSlot;

typedef struct WorkerShared
{
	bool		rescan;			/* a backend found no free slot */
	WorkerSlot	slots[CACHIER_MAX_DATABASES];
} WorkerShared;

/* under cachier_shared->lock */
extern WorkerShared *cachier_workers;

/* worker.c */
extern WorkerSlot *cachier_worker_slot(Oid dbid);

/* db_worker.c */
extern void cachier_worker_connect(Oid dbid, WorkerKind kind, const char *appname);

/* refresh.c */
extern int	cachier_refresh_timeout_ms;
extern void cachier_run_refresh(RefreshItem *item);

#endif							/* CACHIER_SHARED_H */
