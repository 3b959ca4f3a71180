/*-------------------------------------------------------------------------
 *
 * dep_registry.c
 *	  The shared memory of freshness: each tracked function's epoch, the
 *	  relation -> functions registry, and the per-relation write marks.
 *
 * Epochs.  Every value comes from one global atomic counter whose start
 * is derived from the server's start time (microseconds, shifted left by
 * ten bits), so no value is ever handed out twice, across restarts too.
 * A function's epoch is set to a new value whenever something it depends
 * on changes ("a bump"); an entry stored with epoch e is valid only while
 * its function's epoch is still e.  A bump is one fetch-add and one write:
 * it may run in a commit callback (no error, no allocation, no lock but
 * the ones below).
 *
 * Write marks.  WRITE_MARKS atomics, each the highest counter value of a
 * commit (or a commit about to happen) that wrote a relation hashing to
 * it.  A computation reads the counter (g0) before its snapshot, registers
 * what it read, then looks at the marks of those relations: a mark above
 * g0 means a writer may have committed after the snapshot, and the result
 * is not stored.  Otherwise any such writer marks after our registration
 * and so finds it and bumps us (each side writes, then reads the other's
 * location; LWLock acquire/release and the atomics are full barriers).
 *
 * Functions.  A fixed array of cachier.max_dependent_functions slots,
 * found through a hash (dbid, funcid) -> slot under func_lock (shared to
 * find, exclusive to add).  A slot is never freed or reused for another
 * function, so a backend may keep a pointer to it for its lifetime.  Its
 * list of relations (what cachier_dependencies shows, and what a nested
 * hit inherits) is protected by the slot's spinlock, held only to copy it.
 * When the array is full, a new function cannot be tracked: its results
 * are not stored (never served stale).
 *
 * Relations.  A shared hash (dbid, relid) -> up to FUNCS_PER_RELATION
 * function slots, partitioned: REL_PARTITIONS LWLocks, shared to look up
 * (writers), exclusive to register (computations that found a new
 * relation).  A relation with more dependents is marked "overflow" and a
 * change to it bumps every tracked function of its database: more
 * invalidation, never less.  When the hash is full a registration fails
 * and that result is not stored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#define REL_PARTITIONS		16
#define FUNCS_PER_RELATION	32
#define WRITE_MARKS			4096


typedef struct DepKey
{
	Oid			dbid;
	Oid			objid;			/* function or relation */
} DepKey;

typedef struct FuncIndexEntry
{
	DepKey		key;
	int			slot;
} FuncIndexEntry;

typedef struct DepRelation
{
	DepKey		key;
	bool		overflow;		/* more dependents than fit: bump them all */
	int			nfuncs;
	int			funcs[FUNCS_PER_RELATION];	/* function slots */
} DepRelation;

typedef struct DepShared
{
	pg_atomic_uint64 counter;	/* the last value handed out */
	LWLock	   *func_lock;		/* func_index and nfunctions */
	LWLock	   *rel_locks;		/* REL_PARTITIONS locks, padded */
	int			nfunctions;		/* slots in use */
	pg_atomic_uint64 marks[WRITE_MARKS];
	DepFunction funcs[FLEXIBLE_ARRAY_MEMBER];
} DepShared;

static DepShared *dep = NULL;
static HTAB *func_index = NULL;
static HTAB *rel_hash = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* ---------------------------------------------------------------- set-up */

static Size
dep_size(void)
{
	Size		size = offsetof(DepShared, funcs);

	size = add_size(size, mul_size(cachier_max_dependent_functions, sizeof(DepFunction)));
	size = add_size(size, hash_estimate_size(cachier_max_dependent_functions,
											 sizeof(FuncIndexEntry)));
	return add_size(size, hash_estimate_size(cachier_max_dependency_relations,
											 sizeof(DepRelation)));
}

static void
dep_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(dep_size());
	RequestNamedLWLockTranche("cachier dependencies", 1 + REL_PARTITIONS);
}

static void
dep_startup(void)
{
	HASHCTL		ctl;
	bool		found;
	int			i;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	dep = ShmemInitStruct("cachier dependencies",
						  offsetof(DepShared, funcs) +
						  sizeof(DepFunction) * cachier_max_dependent_functions,
						  &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("cachier dependencies");
		uint64		start = ((uint64) GetCurrentTimestamp()) << 10;

		dep->func_lock = &locks[0].lock;
		dep->rel_locks = (LWLock *) &locks[1];
		dep->nfunctions = 0;
		pg_atomic_init_u64(&dep->counter, start);
		for (i = 0; i < WRITE_MARKS; i++)
			pg_atomic_init_u64(&dep->marks[i], 0);
	}
	ctl.keysize = sizeof(DepKey);
	ctl.entrysize = sizeof(FuncIndexEntry);
	func_index = ShmemInitHash("cachier dependent functions",
							   cachier_max_dependent_functions,
							   cachier_max_dependent_functions,
							   &ctl, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	ctl.keysize = sizeof(DepKey);
	ctl.entrysize = sizeof(DepRelation);
	ctl.num_partitions = REL_PARTITIONS;
	rel_hash = ShmemInitHash("cachier dependency relations",
							 cachier_max_dependency_relations,
							 cachier_max_dependency_relations,
							 &ctl, HASH_ELEM | HASH_BLOBS | HASH_PARTITION | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
cachier_dep_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = dep_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = dep_startup;
}

/* Whether the registry exists (the library was preloaded). */
bool
cachier_dep_available(void)
{
	return dep != NULL;
}

/* ---------------------------------------------------------------- epochs */

/* The counter now: values handed out later are all larger. */
uint64
cachier_dep_counter(void)
{
	return pg_atomic_read_u64(&dep->counter);
}

/* Give f a new epoch; relid (or InvalidOid) is what changed.  No errors. */
void
cachier_dep_bump(DepFunction *f, Oid relid)
{
	uint64		value = pg_atomic_add_fetch_u64(&dep->counter, 1);

	f->last_changed = relid;
	pg_atomic_write_u64(&f->epoch, value);
	pg_memory_barrier();
}

uint64
cachier_dep_epoch(DepFunction *f)
{
	return pg_atomic_read_u64(&f->epoch);
}

/* Bump every tracked function of a database.  No errors. */
void
cachier_dep_bump_database(Oid dbid, Oid relid)
{
	int			n;
	int			i;

	LWLockAcquire(dep->func_lock, LW_SHARED);
	n = dep->nfunctions;
	LWLockRelease(dep->func_lock);
	for (i = 0; i < n; i++)
		if (dep->funcs[i].dbid == dbid)
			cachier_dep_bump(&dep->funcs[i], relid);
}

/*
 * How many function slots are in use, read without the lock: a backend
 * that found no slot for a function looks again only when this moved.
 */
int
cachier_dep_function_count(void)
{
	pg_read_barrier();
	return ((volatile DepShared *) dep)->nfunctions;
}

/*
 * A number that moves whenever f's list of relations changes (it only
 * grows, then overflows), read without the mutex: a caller that remembers
 * what the list meant for it reads the list again only when this moved.
 */
int
cachier_dep_function_size(DepFunction *f)
{
	volatile DepFunction *vf = f;

	pg_read_barrier();
	return vf->overflow ? vf->nrels + 1 : vf->nrels;
}

/*
 * The slot of a function of this database, added if create and there is
 * room; NULL otherwise.
 */
DepFunction *
cachier_dep_function(Oid funcid, bool create)
{
	DepKey		key;
	FuncIndexEntry *e;
	DepFunction *f = NULL;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.objid = funcid;
	LWLockAcquire(dep->func_lock, LW_SHARED);
	e = hash_search(func_index, &key, HASH_FIND, NULL);
	if (e)
		f = &dep->funcs[e->slot];
	LWLockRelease(dep->func_lock);
	if (f || !create)
		return f;

	LWLockAcquire(dep->func_lock, LW_EXCLUSIVE);
	e = hash_search(func_index, &key, HASH_FIND, NULL);
	if (e)
		f = &dep->funcs[e->slot];
	else if (dep->nfunctions < cachier_max_dependent_functions &&
			 (e = hash_search(func_index, &key, HASH_ENTER_NULL, &found)) != NULL)
	{
		e->slot = dep->nfunctions;
		f = &dep->funcs[e->slot];
		memset(f, 0, sizeof(*f));
		f->dbid = MyDatabaseId;
		f->funcid = funcid;
		SpinLockInit(&f->mutex);
		pg_atomic_init_u64(&f->epoch, pg_atomic_add_fetch_u64(&dep->counter, 1));
		pg_write_barrier();
		dep->nfunctions++;
	}
	LWLockRelease(dep->func_lock);
	return f;
}

static int
slot_of(DepFunction *f)
{
	return (int) (f - dep->funcs);
}

/* ---------------------------------------------------------------- relations */

static LWLock *
partition_lock(uint32 hash)
{
	return &((LWLockPadded *) dep->rel_locks)[hash % REL_PARTITIONS].lock;
}

static void
rel_key(DepKey *key, Oid dbid, Oid relid)
{
	memset(key, 0, sizeof(*key));
	key->dbid = dbid;
	key->objid = relid;
}

/* Remember relid in the function's own list (what the view shows). */
static void
remember_in_function(DepFunction *f, Oid relid, char how)
{
	int			i;

	SpinLockAcquire(&f->mutex);
	for (i = 0; i < f->nrels; i++)
		if (f->rels[i] == relid)
			break;
	if (i == f->nrels)
	{
		if (f->nrels < CACHIER_RELS_PER_FUNCTION)
		{
			f->rels[f->nrels] = relid;
			f->how[f->nrels] = how;
			f->nrels++;
		}
		else
			f->overflow = true;
	}
	else if (how == 'd')
		f->how[i] = how;
	SpinLockRelease(&f->mutex);
}

/*
 * Record that f depends on relid ('c' captured, 'd' declared).  False if
 * the registry is full: the caller must then not store.
 */
bool
cachier_dep_register(DepFunction *f, Oid relid, char how)
{
	DepKey		key;
	uint32		hash;
	LWLock	   *lock;
	DepRelation *r;
	int			slot = slot_of(f);
	bool		found;
	int			i;

	rel_key(&key, f->dbid, relid);
	hash = get_hash_value(rel_hash, &key);
	lock = partition_lock(hash);

	/* already there: a shared lock is enough to see it */
	LWLockAcquire(lock, LW_SHARED);
	r = hash_search_with_hash_value(rel_hash, &key, hash, HASH_FIND, NULL);
	if (r)
	{
		for (i = 0; i < r->nfuncs; i++)
			if (r->funcs[i] == slot)
				break;
		if (i < r->nfuncs || r->overflow)
		{
			LWLockRelease(lock);
			remember_in_function(f, relid, how);
			return true;
		}
	}
	LWLockRelease(lock);

	LWLockAcquire(lock, LW_EXCLUSIVE);
	r = hash_search_with_hash_value(rel_hash, &key, hash, HASH_ENTER_NULL, &found);
	if (r == NULL)
	{
		LWLockRelease(lock);
		return false;
	}
	if (!found)
	{
		r->overflow = false;
		r->nfuncs = 0;
	}
	for (i = 0; i < r->nfuncs; i++)
		if (r->funcs[i] == slot)
			break;
	if (i == r->nfuncs && !r->overflow)
	{
		if (r->nfuncs < FUNCS_PER_RELATION)
			r->funcs[r->nfuncs++] = slot;
		else
			r->overflow = true;
	}
	LWLockRelease(lock);
	remember_in_function(f, relid, how);
	return true;
}

/*
 * relid's entry in the registry, or NULL, with its partition's lock taken
 * shared (*lock: give it back).  No errors, no allocation.
 */
static DepRelation *
find_relation(Oid dbid, Oid relid, LWLock **lock)
{
	DepKey		key;
	uint32		hash;

	rel_key(&key, dbid, relid);
	hash = get_hash_value(rel_hash, &key);
	*lock = partition_lock(hash);
	LWLockAcquire(*lock, LW_SHARED);
	return hash_search_with_hash_value(rel_hash, &key, hash, HASH_FIND, NULL);
}

/*
 * relid of dbid changed (or is about to, at commit): bump its dependents.
 * Called from commit callbacks: no errors, no allocation.  How many
 * functions were bumped (-1: all of the database).
 */
int
cachier_dep_changed(Oid dbid, Oid relid)
{
	LWLock	   *lock;
	DepRelation *r = find_relation(dbid, relid, &lock);
	int			bumped = 0;
	bool		all = false;
	int			i;

	if (r && r->overflow)
		all = true;
	else if (r)
	{
		for (i = 0; i < r->nfuncs; i++)
			cachier_dep_bump(&dep->funcs[r->funcs[i]], relid);
		bumped = r->nfuncs;
	}
	LWLockRelease(lock);
	if (all)
	{
		cachier_dep_bump_database(dbid, relid);
		return -1;
	}
	return bumped;
}

/* ---------------------------------------------------------------- write marks */

static pg_atomic_uint64 *
mark_of(Oid dbid, Oid relid)
{
	uint32		h = (uint32) relid * 2654435761U ^ (uint32) dbid * 40503U;

	return &dep->marks[h % WRITE_MARKS];
}

/*
 * A writer of relid is about to commit, or has just committed: raise the
 * relation's mark to a new counter value.  No errors.
 */
void
cachier_dep_mark_write(Oid dbid, Oid relid)
{
	pg_atomic_uint64 *mark = mark_of(dbid, relid);
	uint64		value = pg_atomic_add_fetch_u64(&dep->counter, 1);
	uint64		old = pg_atomic_read_u64(mark);

	/* monotonic: a slower writer never lowers a newer writer's mark */
	while (old < value && !pg_atomic_compare_exchange_u64(mark, &old, value))
		;
	pg_memory_barrier();
}

/* Whether a write of relid may have committed after the counter was since. */
bool
cachier_dep_written_since(Oid dbid, Oid relid, uint64 since)
{
	pg_memory_barrier();
	return pg_atomic_read_u64(mark_of(dbid, relid)) > since;
}

/* ---------------------------------------------------------------- reading */

/*
 * Copy f's relations (and how each was found) into palloc'd arrays; the
 * count, and whether the list overflowed.
 */
int
cachier_dep_function_rels(DepFunction *f, Oid **rels, char **how, bool *overflow)
{
	Oid			copy[CACHIER_RELS_PER_FUNCTION];
	char		hcopy[CACHIER_RELS_PER_FUNCTION];
	int			n;

	SpinLockAcquire(&f->mutex);
	n = f->nrels;
	memcpy(copy, f->rels, n * sizeof(Oid));
	memcpy(hcopy, f->how, n);
	*overflow = f->overflow;
	SpinLockRelease(&f->mutex);
	*rels = palloc(Max(n, 1) * sizeof(Oid));
	memcpy(*rels, copy, n * sizeof(Oid));
	if (how)
	{
		*how = palloc(Max(n, 1));
		memcpy(*how, hcopy, n);
	}
	return n;
}

/* The slots of this database's functions, for the view; how many. */
int
cachier_dep_database_functions(DepFunction ***out)
{
	int			n;
	int			i;
	int			k = 0;

	LWLockAcquire(dep->func_lock, LW_SHARED);
	n = dep->nfunctions;
	LWLockRelease(dep->func_lock);
	*out = palloc(Max(n, 1) * sizeof(DepFunction *));
	for (i = 0; i < n; i++)
		if (dep->funcs[i].dbid == MyDatabaseId)
			(*out)[k++] = &dep->funcs[i];
	return k;
}

/*
 * The functions that depend on relid, copied into a palloc'd array; how
 * many (every function of the database when the relation overflowed).
 */
int
cachier_dep_dependents(Oid relid, DepFunction ***out)
{
	LWLock	   *lock;
	DepRelation *r;
	int			n = 0;
	bool		all = false;
	int			i;

	*out = palloc(FUNCS_PER_RELATION * sizeof(DepFunction *));
	r = find_relation(MyDatabaseId, relid, &lock);
	if (r && r->overflow)
		all = true;
	else if (r)
		for (i = 0; i < r->nfuncs; i++)
			(*out)[n++] = &dep->funcs[r->funcs[i]];
	LWLockRelease(lock);
	if (all)
	{
		pfree(*out);
		return cachier_dep_database_functions(out);
	}
	return n;
}
