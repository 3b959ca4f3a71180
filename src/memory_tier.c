/*-------------------------------------------------------------------------
 *
 * memory_tier.c
 *	  The shared memory tier (issue 13): a fixed area of
 *	  cachier.shared_cache_size in front of the table tier, shared by every
 *	  backend of the server and never authoritative: it only ever holds
 *	  copies of values that the table tier would serve, and forgets them
 *	  whenever in doubt.
 *
 * Layout.  A header, a table of generations and P partitions (one per MB
 * of the area, 1 to 64).  A partition is an index (see MemSlot) and a
 * pool of 128-byte units.  An entry is one head unit (its header, then the first
 * 40 bytes of its keyed bytes followed by its value) and as many chained
 * data units (120 bytes each) as the rest needs.  Units come from the
 * partition's free list: no fragmentation, no compaction.
 *
 * Lookup.  The call's 64-bit key (cachier_make_key: a hash of the keyed
 * bytes seeded with the function's identity, never SHA-256), mixed with
 * the database and the function, picks the partition and the index group
 * (one cache line of 8 tagged slots).  Only an entry whose tag matches is
 * read, comparing hash, database, function, length and every keyed byte; the entry is served only if its fingerprint (the function's
 * identity and definition: CREATE OR REPLACE changes it), the storage
 * table it came from (DROP/CREATE EXTENSION changes it), its function's
 * generation, the global generation and its freshness epoch (if it has
 * one) are all still current.  No catalog access; the only allocation is
 * the returned value.
 *
 * Invalidation without scans.  Each (database, function) maps to one of
 * GEN_SLOTS 64-bit generations; an entry records its slot's value plus the
 * global generation (both only grow, so an unchanged sum means neither
 * moved) as read BEFORE its value was read from the table or computed.  cachier_clear,
 * cachier_unmemoize, precache and overwrite_cache bump the slot at once
 * and again after their transaction commits, so that a table row a
 * concurrent reader promotes in between is not served either.  Functions
 * sharing a slot only over-invalidate each other.  The global generation
 * (cachier_memory_reset(); on a hot standby, any replayed invalidation of
 * the entries table: clears on the primary send one) drops everything.
 * A standby backend processes invalidations before each lookup and bumps
 * the global generation at its first use (see standby_catch_up).
 *
 * Eviction: CLOCK, aware of cost.  Each entry has a weight, 1 to
 * MAX_WEIGHT, from what computing it cost per unit of the area it takes
 * (cachier knows both): 1 below WEIGHT2_MS_PER_UNIT, MAX_WEIGHT from
 * WEIGHT3_MS_PER_UNIT on.  Its credit starts at weight - 1 and a hit
 * raises it to the weight, if it was lower (hot entries' lines stay clean,
 * nothing is relinked).  An insertion that lacks free units moves its
 * partition's hand, taking one credit from each entry it passes and
 * evicting the first found without credit (or no longer valid): a cheap
 * entry nobody hit goes at the hand's first visit, as in plain CLOCK, and
 * one that was dear to compute survives a scan of cheap ones.  At most
 * MAX_WEIGHT + 1 turns of one partition's hand: never a whole-area pass.
 * Entries larger than an eighth of a partition are not admitted.
 *
 * Publishing.  A fill (a computed or precached value) is published when
 * its transaction commits (XACT_EVENT_COMMIT, from a backend-local list),
 * or at once when the transaction has no XID yet (it has written nothing,
 * so the value cannot reflect uncommitted writes).  A table hit is
 * promoted at once unless this transaction stored that key itself (then
 * the row may be its own, uncommitted).  A rollback, a rolled-back subtransaction or PREPARE publishes
 * nothing.  Meanwhile this backend skips the memory tier for those keys:
 * its own newer value is in pending.c or in the table.
 *
 * Locking rules.  Each partition has its own LWLock: shared to look up
 * (a hit's credit is a benign racy byte store), exclusive to insert,
 * evict or remove.  Generations are atomics read without a lock.  While a
 * partition lock is held: no catalog access, no ereport, and no allocation
 * but the palloc of a hit's result.  Nothing here runs in a critical
 * section; the commit callback only takes partition locks, copies bytes
 * and adds to atomics (it allocates nothing and cannot fail).
 *
 * Counters.  Hits, misses, evictions and per-function events are counted
 * in this backend, in fixed arrays (no allocation), and flushed into the
 * statistics (stats.c) and the area's atomics at most every half second
 * at a commit, when a statistics function is called and at exit: no
 * shared cache line is written per hit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "cachier_shared.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"


#define UNIT_SIZE			128
#define UNIT_FREE			0
#define UNIT_ENTRY			1
#define UNIT_DATA			2
#define NIL_UNIT			(-1)
#define GEN_SLOTS			4096	/* function generations */
#define DB_SLOTS			64	/* databases' entries tables (standby) */
#define PARTITION_BYTES		(1024 * 1024)	/* one partition per MB */
#define MAX_PARTITIONS		64
#define ADMIT_FRACTION		8	/* largest entry: this fraction of a partition */
#define MAX_WEIGHT			3	/* an entry's most credit (cost-aware CLOCK) */
#define WEIGHT2_MS_PER_UNIT	0.1 /* compute time per unit for weight 2 */
#define WEIGHT3_MS_PER_UNIT	10.0	/* and for MAX_WEIGHT */
#define EVICT_TURNS			(MAX_WEIGHT + 1)	/* most turns of the hand per insertion */
#define REF_WEIGHT(ref)		((ref) >> 4)
#define REF_CREDIT(ref)		((ref) & 0x0F)
#define FLUSH_INTERVAL_US	500000	/* counters flushed at most this often */
#define LOCAL_SLOTS			256 /* functions counted between flushes */

/* The first bytes of every unit: free units are chained through next. */
typedef struct MemUnit
{
	uint8		kind;
	uint8		pad[3];
	int32		next;
} MemUnit;

/* A head unit: one entry. */
typedef struct MemEntry
{
	uint8		kind;			/* UNIT_ENTRY */
	uint8		ref;			/* weight << 4 | credit (cost-aware CLOCK) */
	uint8		isnull;
	uint8		has_epoch;
	int32		next;			/* next free unit, while free */
	int32		data;			/* first data unit, or NIL_UNIT */
	uint32		keylen;
	uint32		vallen;
	Oid			dbid;
	Oid			funcid;
	Oid			entries_rel;	/* cachier.entries it was read for */
	uint64		hash;
	int64		fingerprint;
	uint64		gen;			/* its function's generation + the global one */
	uint64		epoch;
	TimestampTz created_at;
	double		compute_ms;
	char		bytes[FLEXIBLE_ARRAY_MEMBER];	/* keyed bytes, then value */
} MemEntry;

typedef struct MemData
{
	uint8		kind;			/* UNIT_DATA */
	uint8		pad[3];
	int32		next;			/* next data unit of the entry */
	char		bytes[FLEXIBLE_ARRAY_MEMBER];
} MemData;

#define INLINE_BYTES	((Size) (UNIT_SIZE - offsetof(MemEntry, bytes)))
#define DATA_BYTES		((Size) (UNIT_SIZE - offsetof(MemData, bytes)))

StaticAssertDecl(offsetof(MemEntry, next) == offsetof(MemUnit, next) &&
				 offsetof(MemData, next) == offsetof(MemUnit, next) &&
				 offsetof(MemEntry, bytes) <= UNIT_SIZE - 32,
				 "memory tier units must share their first fields");

/*
 * The index: groups of 8 slots (one cache line) holding a tag (32 bits of
 * the hash) and the head unit.  A lookup reads the slots of its home group
 * and dereferences only entries whose tag matches; it goes on to the next
 * group only if this one has no EMPTY slot.  A group that has an EMPTY
 * slot was never full (EMPTY is never restored in a group without one), so
 * no key was pushed past it: removing from such a group may leave EMPTY,
 * otherwise DELETED.
 */
typedef struct MemSlot
{
	uint32		tag;
	int32		unit;			/* head unit, SLOT_EMPTY or SLOT_DELETED */
} MemSlot;

#define SLOTS_PER_GROUP		8
#define SLOT_EMPTY			(-1)
#define SLOT_DELETED		(-2)

typedef struct MemPartition
{
	LWLock	   *lock;
	int32		nunits;
	int32		ngroups;		/* of SLOTS_PER_GROUP index slots */
	int32		free_head;
	int32		nfree;
	int32		hand;			/* CLOCK hand: next unit to look at */
	int32		nentries;
	int64		bytes;			/* keyed and value bytes held */
	Size		groups_off;		/* from the area's start */
	Size		units_off;
} MemPartition;

typedef struct DbRel
{
	pg_atomic_uint32 dbid;
	pg_atomic_uint32 relid;
} DbRel;

typedef struct MemArea
{
	Size		size;
	int			npartitions;
	Size		max_entry;		/* bytes (units) of the largest entry admitted */
	pg_atomic_uint64 global_gen;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	pg_atomic_uint64 fills;
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 rejected;
	pg_atomic_uint64 invalidations;
	DbRel		dbrels[DB_SLOTS];	/* each database's cachier.entries */
	pg_atomic_uint64 gens[GEN_SLOTS];
	MemPartition parts[MAX_PARTITIONS];
} MemArea;

static MemArea *area = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* ---------------------------------------------------------------- backend-local state */

/* per-function counts since the last flush; no allocation on the hot path */
typedef struct LocalCount
{
	Oid			dbid;			/* InvalidOid: free */
	Oid			funcid;
	int64		hits;
	double		saved_ms;
	int64		evictions;
} LocalCount;

static struct
{
	int64		hits;
	int64		misses;
	int64		fills;
	int64		evictions;
	int64		rejected;
	int64		invalidations;
	LocalCount	funcs[LOCAL_SLOTS];
	TimestampTz last_flush;
} local;

/* fills waiting for their transaction to commit */
typedef struct DeferredKey
{
	Oid			funcid;
	int64		key;
} DeferredKey;

typedef struct DeferredFill
{
	MemoryFill	fill;			/* keyed and value point to copies */
	StringInfoData keyed;
	int			nest_level;
	bool		dropped;
} DeferredFill;

static MemoryContext deferred_cxt = NULL;
static List *deferred = NIL;
static HTAB *deferred_index = NULL;

/* functions whose generation is bumped again after commit */
#define MAX_FORGETS 32
static Oid	forgets[MAX_FORGETS];
static int	nforgets = 0;
static bool forgets_overflowed = false;

/* this database's cachier.entries, as registered in the area */
static Oid	registered_rel = InvalidOid;

/* ---------------------------------------------------------------- sizing */

static Size
area_size(void)
{
	return (Size) cachier_shared_cache_kb * 1024;
}

static int
partition_count(Size size)
{
	Size		rest = size > sizeof(MemArea) ? size - sizeof(MemArea) : 0;

	return (int) Max(1, Min(MAX_PARTITIONS, rest / PARTITION_BYTES));
}

bool
cachier_memory_enabled(void)
{
	return area != NULL;
}

/* ---------------------------------------------------------------- addressing */

static inline MemSlot *
group_at(MemPartition *p, uint32 g)
{
	return (MemSlot *) ((char *) area + p->groups_off) + (Size) g * SLOTS_PER_GROUP;
}

static inline MemUnit *
unit_at(MemPartition *p, int32 i)
{
	return (MemUnit *) ((char *) area + p->units_off + (Size) i * UNIT_SIZE);
}

#define ENTRY_AT(p, i)	((MemEntry *) unit_at(p, i))
#define DATA_AT(p, i)	((MemData *) unit_at(p, i))

/* a 64-bit finalizer (splitmix64): the key's bits spread over the word */
static inline uint64
mix64(uint64 x)
{
	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static inline uint64
entry_hash(Oid dbid, Oid funcid, int64 key)
{
	return mix64((uint64) key ^ (((uint64) dbid << 32) | funcid));
}

/* x (32 random bits) mapped onto 0..n-1 by a multiply, not a division */
static inline uint32
reduce(uint32 x, uint32 n)
{
	return (uint32) (((uint64) x * n) >> 32);
}

static inline MemPartition *
partition_of(uint64 hash)
{
	return &area->parts[reduce((uint32) hash, area->npartitions)];
}

/* the group where the probe for hash starts */
static inline uint32
home_group(MemPartition *p, uint64 hash)
{
	return reduce((uint32) (hash >> 32), p->ngroups);
}

static inline uint32
next_group(MemPartition *p, uint32 g)
{
	return g + 1 == (uint32) p->ngroups ? 0 : g + 1;
}

static inline pg_atomic_uint64 *
gen_slot(Oid dbid, Oid funcid)
{
	return &area->gens[mix64(((uint64) dbid << 32) | funcid) % GEN_SLOTS];
}

static int
units_for(Size bytes)
{
	if (bytes <= INLINE_BYTES)
		return 1;
	return 1 + (int) ((bytes - INLINE_BYTES + DATA_BYTES - 1) / DATA_BYTES);
}

/* ---------------------------------------------------------------- shared memory */

static void
init_partition(MemPartition *p, Size offset, Size bytes, LWLock *lock)
{
	int32		i;

	p->lock = lock;
	/* two index slots per unit: groups at most half full */
	p->nunits = (int32) ((bytes - 3 * PG_CACHE_LINE_SIZE) /
						 (UNIT_SIZE + 2 * sizeof(MemSlot)));
	p->ngroups = Max(1, p->nunits * 2 / SLOTS_PER_GROUP);
	p->groups_off = offset;
	p->units_off = offset + TYPEALIGN(PG_CACHE_LINE_SIZE,
									  (Size) p->ngroups * SLOTS_PER_GROUP * sizeof(MemSlot));
	p->hand = 0;
	p->nentries = 0;
	p->bytes = 0;
	for (i = 0; i < p->ngroups * SLOTS_PER_GROUP; i++)
	{
		group_at(p, 0)[i].tag = 0;
		group_at(p, 0)[i].unit = SLOT_EMPTY;
	}
	for (i = 0; i < p->nunits; i++)
	{
		MemUnit    *u = unit_at(p, i);

		u->kind = UNIT_FREE;
		u->next = i + 1 < p->nunits ? i + 1 : NIL_UNIT;
	}
	p->free_head = 0;
	p->nfree = p->nunits;
}

static void
init_area(Size size)
{
	LWLockPadded *locks = GetNamedLWLockTranche("cachier memory tier");
	int			np = partition_count(size);
	Size		start = TYPEALIGN(PG_CACHE_LINE_SIZE, sizeof(MemArea));
	Size		per = ((size - start) / np) & ~((Size) PG_CACHE_LINE_SIZE - 1);
	int			i;

	memset(area, 0, sizeof(MemArea));
	area->size = size;
	area->npartitions = np;
	pg_atomic_init_u64(&area->global_gen, 1);
	pg_atomic_init_u64(&area->hits, 0);
	pg_atomic_init_u64(&area->misses, 0);
	pg_atomic_init_u64(&area->fills, 0);
	pg_atomic_init_u64(&area->evictions, 0);
	pg_atomic_init_u64(&area->rejected, 0);
	pg_atomic_init_u64(&area->invalidations, 0);
	for (i = 0; i < DB_SLOTS; i++)
	{
		pg_atomic_init_u32(&area->dbrels[i].dbid, InvalidOid);
		pg_atomic_init_u32(&area->dbrels[i].relid, InvalidOid);
	}
	for (i = 0; i < GEN_SLOTS; i++)
		pg_atomic_init_u64(&area->gens[i], 1);
	for (i = 0; i < np; i++)
		init_partition(&area->parts[i], start + (Size) i * per, per, &locks[i].lock);
	area->max_entry = (Size) area->parts[0].nunits * UNIT_SIZE / ADMIT_FRACTION;
}

static void
request_area(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	if (area_size() == 0)
		return;
	RequestAddinShmemSpace(area_size());
	RequestNamedLWLockTranche("cachier memory tier", partition_count(area_size()));
}

static void
attach_area(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	if (area_size() == 0)
		return;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	area = ShmemInitStruct("cachier memory tier", area_size(), &found);
	if (!found)
		init_area(area_size());
	LWLockRelease(AddinShmemInitLock);
}

/* ---------------------------------------------------------------- entries' bytes */

typedef enum StreamOp
{
	STREAM_COMPARE,
	STREAM_READ,
	STREAM_WRITE
} StreamOp;

/*
 * Compare, read or write len bytes at offset off of e's bytes (keyed bytes
 * then value, across its units); false if they differ (or the chain is
 * shorter than it should be, which cannot happen).
 */
static bool
stream(MemPartition *p, MemEntry *e, Size off, char *buf, Size len, StreamOp op)
{
	char	   *seg = e->bytes;
	Size		seglen = INLINE_BYTES;
	int32		next = e->data;

	while (len > 0)
	{
		if (off < seglen)
		{
			Size		n = Min(seglen - off, len);

			if (op == STREAM_COMPARE && memcmp(seg + off, buf, n) != 0)
				return false;
			if (op == STREAM_READ)
				memcpy(buf, seg + off, n);
			if (op == STREAM_WRITE)
				memcpy(seg + off, buf, n);
			buf += n;
			len -= n;
			off = 0;
			if (len == 0)
				break;
		}
		else
			off -= seglen;
		if (next == NIL_UNIT)
			return false;
		seg = DATA_AT(p, next)->bytes;
		seglen = DATA_BYTES;
		next = DATA_AT(p, next)->next;
	}
	return true;
}

static bool
same_key(MemPartition *p, MemEntry *e, uint64 hash, Oid dbid, Oid funcid,
		 const StringInfoData *keyed)
{
	return e->hash == hash && e->funcid == funcid && e->dbid == dbid &&
		e->keylen == (uint32) keyed->len &&
		stream(p, e, 0, keyed->data, keyed->len, STREAM_COMPARE);
}

/*
 * The generation of (dbid, funcid): its slot's value plus the global one.
 * Both only grow, so an equal sum means neither moved.
 */
static inline uint64
current_generation(Oid dbid, Oid funcid)
{
	return pg_atomic_read_u64(gen_slot(dbid, funcid)) +
		pg_atomic_read_u64(&area->global_gen);
}

/* Whether e may still be served, as far as generations can tell. */
static bool
generations_current(const MemEntry *e)
{
	return e->gen == current_generation(e->dbid, e->funcid);
}

/*
 * The index slot of (hash, dbid, funcid, keyed bytes), or NULL; partition
 * lock held (either mode).
 */
static MemSlot *
find_slot(MemPartition *p, uint64 hash, Oid dbid, Oid funcid,
		  const StringInfoData *keyed)
{
	uint32		tag = (uint32) hash;
	uint32		g = home_group(p, hash);
	int32		probes;

	for (probes = 0; probes < p->ngroups; probes++)
	{
		MemSlot    *slots = group_at(p, g);
		bool		has_empty = false;
		int			k;

		for (k = 0; k < SLOTS_PER_GROUP; k++)
		{
			if (slots[k].unit == SLOT_EMPTY)
				has_empty = true;
			else if (slots[k].tag == tag && slots[k].unit >= 0 &&
					 same_key(p, ENTRY_AT(p, slots[k].unit), hash, dbid, funcid, keyed))
				return &slots[k];
		}
		if (has_empty)
			break;
		g = next_group(p, g);
	}
	return NULL;
}

/* ---------------------------------------------------------------- local counts */

static LocalCount *
local_count(Oid dbid, Oid funcid)
{
	uint32		start = (uint32) mix64(((uint64) dbid << 32) | funcid) % LOCAL_SLOTS;
	uint32		i;

	for (i = 0; i < LOCAL_SLOTS; i++)
	{
		LocalCount *lc = &local.funcs[(start + i) % LOCAL_SLOTS];

		if (lc->dbid == dbid && lc->funcid == funcid)
			return lc;
		if (lc->dbid == InvalidOid)
		{
			lc->dbid = dbid;
			lc->funcid = funcid;
			return lc;
		}
	}
	return NULL;				/* full until the next flush: counted in totals only */
}

/*
 * The entry the last lookup found was not served (stale, or invalidated
 * since): the area counts a miss instead of the hit the lookup counted.
 */
void
cachier_memory_refused(void)
{
	if (local.hits > 0)
		local.hits--;
	local.misses++;
}

/* A memory hit of funcid (quiet: a hit after waiting, counted as time saved). */
void
cachier_memory_count_hit(Oid funcid, bool quiet, double saved_ms)
{
	LocalCount *lc = local_count(MyDatabaseId, funcid);

	if (lc == NULL)
		return;
	if (!quiet)
		lc->hits++;
	lc->saved_ms += saved_ms;
}

/* Move this backend's counts into the shared statistics and the area. */
void
cachier_memory_flush_counts(void)
{
	int			i;

	if (area == NULL)
		return;
	pg_atomic_fetch_add_u64(&area->hits, local.hits);
	pg_atomic_fetch_add_u64(&area->misses, local.misses);
	pg_atomic_fetch_add_u64(&area->fills, local.fills);
	pg_atomic_fetch_add_u64(&area->evictions, local.evictions);
	pg_atomic_fetch_add_u64(&area->rejected, local.rejected);
	pg_atomic_fetch_add_u64(&area->invalidations, local.invalidations);
	local.hits = local.misses = local.fills = 0;
	local.evictions = local.rejected = local.invalidations = 0;
	for (i = 0; i < LOCAL_SLOTS; i++)
	{
		LocalCount *lc = &local.funcs[i];

		if (lc->dbid == InvalidOid)
			continue;
		cachier_stats_add_memory(lc->dbid, lc->funcid, lc->hits, lc->saved_ms,
								 lc->evictions);
		memset(lc, 0, sizeof(*lc));
	}
	local.last_flush = GetCurrentTimestamp();
}

static void
flush_at_exit(int code, Datum arg)
{
	cachier_memory_flush_counts();
}

/* ---------------------------------------------------------------- lookup */

/*
 * On a hot standby, clears on the primary arrive as relcache invalidations
 * of cachier.entries in replayed commit records, which a backend reads
 * only when it processes invalidations.  So a standby backend processes
 * them before each lookup (a cheap check when there are none), and at its
 * first use forgets the whole area: invalidations queued before it
 * connected were never meant for it, and the backends they were meant for
 * may not have read them yet.
 */
static void
standby_catch_up(void)
{
	static bool first_done = false;

	if (!RecoveryInProgress())
		return;
	if (!first_done)
	{
		pg_atomic_fetch_add_u64(&area->global_gen, 1);
		first_done = true;
	}
	AcceptInvalidationMessages();
}

/* This database's cachier.entries, registered for the standby's callback. */
static Oid
entries_rel(void)
{
	Oid			rel = cachier_relations()->entries;
	int			i;

	if (rel == registered_rel)
		return rel;
	if (!OidIsValid(registered_rel))
		before_shmem_exit(flush_at_exit, (Datum) 0);
	for (i = 0; i < DB_SLOTS; i++)
	{
		DbRel	   *d = &area->dbrels[i];
		uint32		dbid = pg_atomic_read_u32(&d->dbid);

		if (dbid == InvalidOid)
		{
			uint32		expected = InvalidOid;

			if (!pg_atomic_compare_exchange_u32(&d->dbid, &expected, MyDatabaseId) &&
				expected != MyDatabaseId)
				continue;
		}
		else if (dbid != MyDatabaseId)
			continue;
		pg_atomic_write_u32(&d->relid, rel);
		break;
	}
	registered_rel = rel;
	return rel;
}

/* Whether this transaction has an unpublished fill of the key. */
static bool
own_fill_pending(Oid funcid, int64 key)
{
	DeferredKey dk;

	if (deferred_index == NULL)
		return false;
	memset(&dk, 0, sizeof(dk));
	dk.funcid = funcid;
	dk.key = key;
	return hash_search(deferred_index, &dk, HASH_FIND, NULL) != NULL;
}

/*
 * The generation a fill of funcid must record: read it BEFORE reading the
 * table or computing.  0 when there is no area (a fill is then ignored).
 */
uint64
cachier_memory_generation(Oid funcid)
{
	if (area == NULL)
		return 0;
	standby_catch_up();
	return current_generation(MyDatabaseId, funcid);
}

/* Copy e's value into entry (a palloc of the value only). */
static void
take_value(MemPartition *p, MemEntry *e, StoredEntry *entry)
{
	entry->found = true;
	entry->isnull = e->isnull;
	entry->untrusted = false;
	entry->from_memory = true;
	entry->created_at = e->created_at;
	entry->compute_ms = e->compute_ms;
	entry->value = NULL;
	if (!e->isnull)
	{
		entry->value = palloc(VARHDRSZ + e->vallen);
		SET_VARSIZE(entry->value, VARHDRSZ + e->vallen);
		(void) stream(p, e, e->keylen, VARDATA(entry->value), e->vallen, STREAM_READ);
	}
}

/*
 * The entry of (funcid, keyed bytes) if the area has a valid one: true and
 * entry filled (value palloc'd in the caller's context).
 */
bool
cachier_memory_lookup(Oid funcid, int64 fingerprint, int64 key,
					  const StringInfo keyed, StoredEntry *entry)
{
	uint64		hash;
	MemPartition *p;
	MemSlot    *slot;
	Oid			rel;
	bool		found = false;
	bool		has_epoch = false;
	uint64		epoch = 0;

	if (area == NULL || own_fill_pending(funcid, key))
		return false;
	standby_catch_up();
	rel = entries_rel();
	hash = entry_hash(MyDatabaseId, funcid, key);
	p = partition_of(hash);
	LWLockAcquire(p->lock, LW_SHARED);
	slot = find_slot(p, hash, MyDatabaseId, funcid, keyed);
	if (slot)
	{
		MemEntry   *e = ENTRY_AT(p, slot->unit);

		if (e->fingerprint == fingerprint && e->entries_rel == rel &&
			generations_current(e))
		{
			take_value(p, e, entry);
			has_epoch = e->has_epoch;
			epoch = e->epoch;
			found = true;
			/* a benign racy byte store, and only when it changes anything */
			if (REF_CREDIT(e->ref) < REF_WEIGHT(e->ref))
				e->ref = (e->ref & 0xF0) | REF_WEIGHT(e->ref);
		}
	}
	LWLockRelease(p->lock);
	/*
	 * The entry's freshness epoch goes with it: the caller checks it as it
	 * checks a table entry's (freshness.c), after the same gates.
	 */
	entry->has_epoch = has_epoch;
	entry->epoch = (int64) epoch;
	if (found)
		local.hits++;
	else
		local.misses++;
	return found;
}

/* ---------------------------------------------------------------- insertion */

static void
free_units(MemPartition *p, int32 head)
{
	int32		i = head;
	int32		next = ENTRY_AT(p, head)->data;

	for (;;)
	{
		MemUnit    *u = unit_at(p, i);

		u->kind = UNIT_FREE;
		u->next = p->free_head;
		p->free_head = i;
		p->nfree++;
		if (next == NIL_UNIT)
			break;
		i = next;
		next = DATA_AT(p, i)->next;
	}
}

/* Take entry i out of the index and free it; partition lock exclusive. */
static void
remove_entry(MemPartition *p, int32 i)
{
	MemEntry   *e = ENTRY_AT(p, i);
	uint32		g = home_group(p, e->hash);
	int32		probes;

	for (probes = 0; probes < p->ngroups; probes++)
	{
		MemSlot    *slots = group_at(p, g);
		MemSlot    *mine = NULL;
		bool		has_empty = false;
		int			k;

		for (k = 0; k < SLOTS_PER_GROUP; k++)
		{
			if (slots[k].unit == i)
				mine = &slots[k];
			else if (slots[k].unit == SLOT_EMPTY)
				has_empty = true;
		}
		if (mine)
		{
			mine->unit = has_empty ? SLOT_EMPTY : SLOT_DELETED;
			break;
		}
		g = next_group(p, g);
	}
	p->nentries--;
	p->bytes -= e->keylen + e->vallen;
	free_units(p, i);
}

/*
 * Put head unit i into the first free slot of its probe sequence; there is
 * one: twice as many slots as units.  Partition lock exclusive.
 */
static void
index_entry(MemPartition *p, uint64 hash, int32 i)
{
	uint32		g = home_group(p, hash);
	int32		probes;

	for (probes = 0; probes < p->ngroups; probes++)
	{
		MemSlot    *slots = group_at(p, g);
		int			k;

		for (k = 0; k < SLOTS_PER_GROUP; k++)
		{
			if (slots[k].unit < 0)
			{
				slots[k].tag = (uint32) hash;
				slots[k].unit = i;
				return;
			}
		}
		g = next_group(p, g);
	}
	Assert(false);
}

/* The ref byte of a new entry: its weight, and one credit less. */
static uint8
initial_ref(double compute_ms, int units)
{
	double		per_unit = compute_ms / Max(units, 1);
	uint8		weight = per_unit >= WEIGHT3_MS_PER_UNIT ? MAX_WEIGHT :
		per_unit >= WEIGHT2_MS_PER_UNIT ? 2 : 1;

	return (uint8) (weight << 4) | (weight - 1);
}

/* Victims' functions, counted once the lock is released. */
typedef struct Victims
{
	int			n;
	Oid			dbid[16];
	Oid			funcid[16];
} Victims;

/*
 * CLOCK: free at least need units, moving the hand; false if a few turns
 * were not enough (then nothing is inserted).  Partition lock exclusive.
 */
static bool
make_room(MemPartition *p, int need, Victims *victims)
{
	int64		steps = 0;
	int64		limit = (int64) EVICT_TURNS * p->nunits;

	while (p->nfree < need)
	{
		int32		i = p->hand;
		MemEntry   *e = ENTRY_AT(p, i);

		if (++steps > limit)
			return false;
		p->hand = (i + 1) % p->nunits;
		if (e->kind != UNIT_ENTRY)
			continue;
		if (REF_CREDIT(e->ref) > 0 && generations_current(e))
		{
			e->ref--;			/* one credit */
			continue;
		}
		if (generations_current(e))
		{
			local.evictions++;
			if (victims->n < (int) lengthof(victims->dbid))
			{
				victims->dbid[victims->n] = e->dbid;
				victims->funcid[victims->n] = e->funcid;
				victims->n++;
			}
		}
		remove_entry(p, i);
	}
	return true;
}

/* Take need units from the free list and chain them; returns the head. */
static int32
take_units(MemPartition *p, int need)
{
	int32		head = p->free_head;
	int32		prev = NIL_UNIT;
	int			k;

	for (k = 0; k < need; k++)
	{
		int32		i = p->free_head;

		p->free_head = unit_at(p, i)->next;
		p->nfree--;
		unit_at(p, i)->kind = k == 0 ? UNIT_ENTRY : UNIT_DATA;
		if (k == 1)
			ENTRY_AT(p, head)->data = i;
		else if (k > 1)
			DATA_AT(p, prev)->next = i;
		if (k > 0)
			DATA_AT(p, i)->next = NIL_UNIT;
		prev = i;
	}
	if (need == 1)
		ENTRY_AT(p, head)->data = NIL_UNIT;
	return head;
}

static void
count_victims(const Victims *victims)
{
	int			i;

	for (i = 0; i < victims->n; i++)
	{
		LocalCount *lc = local_count(victims->dbid[i], victims->funcid[i]);

		if (lc)
			lc->evictions++;
	}
}

/*
 * Put the fill into the area now, replacing the key's entry if there is
 * one.  Allocates nothing and raises no error: safe after commit.
 */
static void
publish_now(const MemoryFill *f, Oid dbid, Oid rel)
{
	uint32		vallen = f->value ? VARSIZE(f->value) - VARHDRSZ : 0;
	Size		total = (Size) f->keyed->len + vallen;
	int			need = units_for(total);
	uint64		hash = entry_hash(dbid, f->funcid, f->key);
	MemPartition *p = partition_of(hash);
	Victims		victims = {0};
	MemSlot    *slot;
	int32		i;
	MemEntry   *e;

	if ((Size) need * UNIT_SIZE > area->max_entry ||
		f->generation != current_generation(dbid, f->funcid))
	{
		local.rejected++;
		return;
	}
	LWLockAcquire(p->lock, LW_EXCLUSIVE);
	slot = find_slot(p, hash, dbid, f->funcid, f->keyed);
	if (slot)
		remove_entry(p, slot->unit);
	if (!make_room(p, need, &victims))
	{
		LWLockRelease(p->lock);
		local.rejected++;
		count_victims(&victims);
		return;
	}
	i = take_units(p, need);
	e = ENTRY_AT(p, i);
	e->ref = initial_ref(f->compute_ms, need);
	e->isnull = f->value == NULL;
	e->has_epoch = f->has_epoch;
	e->keylen = f->keyed->len;
	e->vallen = vallen;
	e->dbid = dbid;
	e->funcid = f->funcid;
	e->entries_rel = rel;
	e->hash = hash;
	e->fingerprint = f->fingerprint;
	e->gen = f->generation;
	e->epoch = f->epoch;
	e->created_at = f->created_at;
	e->compute_ms = f->compute_ms;
	(void) stream(p, e, 0, f->keyed->data, f->keyed->len, STREAM_WRITE);
	if (f->value)
		(void) stream(p, e, f->keyed->len, (char *) VARDATA(f->value), vallen,
					  STREAM_WRITE);
	index_entry(p, hash, i);
	p->nentries++;
	p->bytes += total;
	LWLockRelease(p->lock);
	local.fills++;
	count_victims(&victims);
}

static void
ensure_deferred(void)
{
	HASHCTL		ctl;

	if (deferred_cxt != NULL)
		return;
	deferred_cxt = AllocSetContextCreate(TopTransactionContext,
										 "cachier memory tier fills",
										 ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(DeferredKey);
	ctl.entrysize = sizeof(DeferredKey);
	ctl.hcxt = deferred_cxt;
	deferred_index = hash_create("cachier memory tier fills", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Keep a copy of the fill until the transaction ends. */
static void
defer(const MemoryFill *f)
{
	MemoryContext old;
	DeferredFill *d;
	DeferredKey dk;

	ensure_deferred();
	old = MemoryContextSwitchTo(deferred_cxt);
	d = palloc(sizeof(DeferredFill));
	d->fill = *f;
	initStringInfo(&d->keyed);
	appendBinaryStringInfo(&d->keyed, f->keyed->data, f->keyed->len);
	d->fill.keyed = &d->keyed;
	if (f->value)
	{
		bytea	   *copy = palloc(VARSIZE(f->value));

		memcpy(copy, f->value, VARSIZE(f->value));
		d->fill.value = copy;
	}
	d->nest_level = GetCurrentTransactionNestLevel();
	d->dropped = false;
	deferred = lappend(deferred, d);
	MemoryContextSwitchTo(old);
	memset(&dk, 0, sizeof(dk));
	dk.funcid = f->funcid;
	dk.key = f->key;
	(void) hash_search(deferred_index, &dk, HASH_ENTER, NULL);
}

/*
 * Publish a fill: at once if this transaction has written nothing (no
 * XID) or if it is a table row another transaction committed (a table hit
 * whose key this transaction has not stored), else when it commits.
 * Ignored without an area or when the fill's generation was not read (0).
 */
void
cachier_memory_publish(const MemoryFill *fill)
{
	bool		now;

	if (area == NULL || fill->generation == 0)
		return;
	standby_catch_up();
	(void) entries_rel();		/* registered: the commit callback needs it */
	if (IsInParallelMode())
		now = false;
	else if (fill->committed)
		now = !own_fill_pending(fill->funcid, fill->key);
	else
		now = !TransactionIdIsValid(GetTopTransactionIdIfAny());
	if (now)
		publish_now(fill, MyDatabaseId, registered_rel);
	else
		defer(fill);
}

/*
 * Forget every entry of funcid in this database, in every backend, at
 * once (cachier_clear, unmemoize, precache, overwrite): its generation
 * moves now and again after commit.  Hot standbys learn it from the
 * relcache invalidation of cachier.entries that the commit record carries.
 */
void
cachier_memory_forget_function(Oid funcid)
{
	if (area == NULL)
		return;
	pg_atomic_fetch_add_u64(gen_slot(MyDatabaseId, funcid), 1);
	local.invalidations++;
	if (nforgets < MAX_FORGETS)
		forgets[nforgets++] = funcid;
	else
		forgets_overflowed = true;
	CacheInvalidateRelcacheByRelid(cachier_relations()->entries);
}

/*
 * Forget the whole area, in every backend, at once (all databases).  For
 * callers that cannot name the functions: COMMIT PREPARED of a transaction
 * that cleared entries (its backend's commit callback never runs there).
 */
void
cachier_memory_forget_all(void)
{
	if (area == NULL)
		return;
	pg_atomic_fetch_add_u64(&area->global_gen, 1);
	local.invalidations++;
}

/* ---------------------------------------------------------------- transactions */

static void
forget_transaction_state(void)
{
	deferred_cxt = NULL;		/* went with TopTransactionContext */
	deferred = NIL;
	deferred_index = NULL;
	nforgets = 0;
	forgets_overflowed = false;
}

/* After commit: bump the forgotten functions again, publish the fills. */
static void
committed(void)
{
	ListCell   *lc;
	int			i;

	if (forgets_overflowed)
		pg_atomic_fetch_add_u64(&area->global_gen, 1);
	for (i = 0; i < nforgets; i++)
		pg_atomic_fetch_add_u64(gen_slot(MyDatabaseId, forgets[i]), 1);
	foreach(lc, deferred)
	{
		DeferredFill *d = lfirst(lc);

		if (!d->dropped && OidIsValid(registered_rel))
			publish_now(&d->fill, MyDatabaseId, registered_rel);
	}
}

static void
transaction_event(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (GetCurrentTransactionStartTimestamp() - local.last_flush >= FLUSH_INTERVAL_US)
				cachier_memory_flush_counts();
			break;
		case XACT_EVENT_COMMIT:
			committed();
			forget_transaction_state();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_transaction_state();
			break;
		default:
			break;
	}
}

/* A rolled-back subtransaction's fills are dropped. */
static void
subtransaction_event(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, deferred)
	{
		DeferredFill *d = lfirst(lc);

		if (d->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			d->dropped = true;
		else
			d->nest_level = level - 1;
	}
}

/*
 * On a hot standby nothing here sees the primary's clears; their commit
 * records carry a relcache invalidation of cachier.entries, which replay
 * passes to every backend: then the whole area is forgotten.
 */
static void
relcache_changed(Datum arg, Oid relid)
{
	int			i;

	if (area == NULL || !RecoveryInProgress())
		return;
	if (relid == InvalidOid)
	{
		pg_atomic_fetch_add_u64(&area->global_gen, 1);
		return;
	}
	for (i = 0; i < DB_SLOTS; i++)
	{
		if (pg_atomic_read_u32(&area->dbrels[i].dbid) == MyDatabaseId &&
			pg_atomic_read_u32(&area->dbrels[i].relid) == relid)
		{
			pg_atomic_fetch_add_u64(&area->global_gen, 1);
			return;
		}
	}
}

/* Called from _PG_init while preloading. */
void
cachier_memory_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_area;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_area;
	RegisterXactCallback(transaction_event, NULL);
	RegisterSubXactCallback(subtransaction_event, NULL);
	CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
}

/* ---------------------------------------------------------------- SQL */

/*
 * Bytes (keyed bytes, value and units) each function of this database
 * holds in the area: funcid -> EntryTotals (entries, bytes), for the
 * statistics view.  NULL without an area.  Each partition is read under
 * its lock held shared, one at a time.
 */
HTAB *
cachier_memory_function_bytes(void)
{
	HASHCTL		ctl;
	HTAB	   *totals;
	int			pi;

	if (area == NULL)
		return NULL;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(EntryTotals);
	ctl.hcxt = CurrentMemoryContext;
	totals = hash_create("cachier memory bytes", 64, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (pi = 0; pi < area->npartitions; pi++)
	{
		MemPartition *p = &area->parts[pi];
		int32		i;

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(p->lock, LW_SHARED);
		for (i = 0; i < p->nunits; i++)
		{
			MemEntry   *e = ENTRY_AT(p, i);
			EntryTotals *t;
			bool		found;

			if (e->kind != UNIT_ENTRY || e->dbid != MyDatabaseId)
				continue;
			/* HASH_ENTER may allocate: no error is expected, and LWLocks are released on error */
			t = hash_search(totals, &e->funcid, HASH_ENTER, &found);
			if (!found)
			{
				t->entries = 0;
				t->bytes = 0;
			}
			t->entries++;
			t->bytes += (int64) units_for(e->keylen + e->vallen) * UNIT_SIZE;
		}
		LWLockRelease(p->lock);
	}
	return totals;
}

/*
 * cachier.memory(): the area's size, use and counters, for the view
 * cachier_memory.  Without an area: one row of zeros, enabled false.
 */
PG_FUNCTION_INFO_V1(cachier_memory);
Datum
cachier_memory(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[11];
	bool		nulls[11] = {false};
	int64		entries = 0;
	int64		used = 0;
	int64		hits;
	int64		misses;
	int			pi;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	cachier_memory_flush_counts();
	if (area == NULL)
	{
		memset(values, 0, sizeof(values));
		values[0] = BoolGetDatum(false);
		values[7] = Float8GetDatum(0);
		nulls[7] = true;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
	}
	for (pi = 0; pi < area->npartitions; pi++)
	{
		MemPartition *p = &area->parts[pi];

		LWLockAcquire(p->lock, LW_SHARED);
		entries += p->nentries;
		used += (int64) (p->nunits - p->nfree) * UNIT_SIZE;
		LWLockRelease(p->lock);
	}
	hits = pg_atomic_read_u64(&area->hits);
	misses = pg_atomic_read_u64(&area->misses);
	values[0] = BoolGetDatum(true);
	values[1] = Int64GetDatum((int64) area->size);
	values[2] = Int64GetDatum(used);
	values[3] = Int64GetDatum(entries);
	values[4] = Int64GetDatum((int64) area->max_entry);
	values[5] = Int64GetDatum(hits);
	values[6] = Int64GetDatum(misses);
	values[7] = Float8GetDatum(hits + misses > 0 ? (double) hits / (hits + misses) : 0);
	nulls[7] = hits + misses == 0;
	values[8] = Int64GetDatum(pg_atomic_read_u64(&area->evictions));
	values[9] = Int64GetDatum(pg_atomic_read_u64(&area->rejected));
	values[10] = Int64GetDatum(pg_atomic_read_u64(&area->invalidations));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* cachier_memory_reset(): forget every entry of the area (all databases). */
PG_FUNCTION_INFO_V1(cachier_memory_reset);
Datum
cachier_memory_reset(PG_FUNCTION_ARGS)
{
	cachier_memory_forget_all();
	PG_RETURN_BOOL(area != NULL);
}
