/*-------------------------------------------------------------------------
 *
 * quota.c
 *	  cachier.max_role_bytes: the total size of the entries that one role's
 *	  calls may keep in cachier.entries, so that no role can fill the disk
 *	  through the cache.
 *
 * The size of an entry is its arguments and value (their full size, not
 * what compression makes of them on disk: what the role asked to keep)
 * plus a fixed per-row overhead.  What a role uses is known only approximately: an
 * estimate that every store adds to and nothing subtracts from (clears,
 * cleanups and rollbacks leave it too high, never too low).  When a store
 * would take the estimate past the limit, the role's entries are counted
 * exactly (an index scan of cachier.entries on role_id, no SQL text) and
 * the estimate replaced; only if the exact count is over the limit too is
 * the value not stored.  A role found full is not counted again for
 * RECOUNT_PAUSE, so that a role at its limit cannot make every miss scan
 * its entries.
 *
 * With shared_preload_libraries the estimates live in a small shared hash
 * (one per database and role) protected by its own LWLock: exclusive to
 * change, shared to read.  Without it each backend keeps its own, counted
 * exactly at its first store for the role.  When the shared hash is full a
 * role's store is counted exactly each time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "cachier.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define MAX_ROLES		1024	/* roles with a shared estimate */
#define RECOUNT_PAUSE	(USECS_PER_SEC)

/* Columns of cachier.entries used here. */
#define Col_args	6
#define Col_value	7
#define Col_role_id 8

typedef struct UsageKey
{
	Oid			dbid;
	Oid			roleid;
} UsageKey;

typedef struct RoleUsage
{
	UsageKey	key;
	int64		bytes;			/* estimate: never below the truth */
	TimestampTz full_until;		/* found full: no recount before this */
} RoleUsage;

static HTAB *shared_usage = NULL;
static LWLock *usage_lock = NULL;
static HTAB *local_usage = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* ---------------------------------------------------------------- shared memory */

static void
request_usage(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(hash_estimate_size(MAX_ROLES, sizeof(RoleUsage)));
	RequestNamedLWLockTranche("cachier quota", 1);
}

static void
attach_usage(void)
{
	HASHCTL		ctl;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ctl.keysize = sizeof(UsageKey);
	ctl.entrysize = sizeof(RoleUsage);
	shared_usage = ShmemInitHash("cachier role usage", MAX_ROLES, MAX_ROLES,
								 &ctl, HASH_ELEM | HASH_BLOBS);
	usage_lock = &(GetNamedLWLockTranche("cachier quota"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
cachier_quota_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_usage;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_usage;
}

/* ---------------------------------------------------------------- counting */

static int64
stored_size(HeapTuple tuple, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attno, desc, &isnull);

	return isnull ? 0 : (int64) toast_raw_datum_size(d) - VARHDRSZ;
}

/*
 * The exact size of the entries that roleid's calls stored: in the table,
 * uncommitted ones of every session included (a dirty snapshot, so that
 * sessions of one role storing at once cannot each fill the quota), and
 * this transaction's entries waiting to be written (pending.c).
 */
static int64
count_exactly(Oid roleid)
{
	const CachierRelations *rels = cachier_relations();
	Oid			index = get_relname_relid("entries_role", rels->schema);
	Relation	rel;
	ScanKeyData skey;
	SysScanDesc scan;
	SnapshotData dirty;
	HeapTuple	tuple;
	int64		total = 0;

	rel = table_open(rels->entries, AccessShareLock);
	if (!OidIsValid(index) || RelationGetDescr(rel)->natts < Col_role_id)
		elog(ERROR, "cachier.entries has no role_id index");
	ScanKeyInit(&skey, Col_role_id, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(roleid));
	InitDirtySnapshot(dirty);
	scan = systable_beginscan(rel, index, true, &dirty, 1, &skey);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		CHECK_FOR_INTERRUPTS();
		total += stored_size(tuple, RelationGetDescr(rel), Col_args) +
			stored_size(tuple, RelationGetDescr(rel), Col_value) +
			CACHIER_ENTRY_OVERHEAD;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return total + cachier_pending_role_bytes(roleid);
}

/* This backend's estimates, when there is no shared memory. */
static RoleUsage *
local_entry(Oid roleid)
{
	UsageKey	key = {MyDatabaseId, roleid};
	RoleUsage  *usage;
	bool		found;

	if (local_usage == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(UsageKey);
		ctl.entrysize = sizeof(RoleUsage);
		ctl.hcxt = TopMemoryContext;
		local_usage = hash_create("cachier role usage", 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	usage = hash_search(local_usage, &key, HASH_ENTER, &found);
	if (!found)
	{
		usage->full_until = 0;
		usage->bytes = count_exactly(roleid);
	}
	return usage;
}

/*
 * Decide with an estimate in hand: admit when it leaves room, otherwise
 * count again (unless the role was found full a moment ago).
 */
static bool
decide(RoleUsage *usage, int64 bytes, int64 limit, bool *recount)
{
	*recount = false;
	if (usage->bytes + bytes <= limit)
	{
		usage->bytes += bytes;
		return true;
	}
	if (GetCurrentTimestamp() < usage->full_until)
		return false;
	*recount = true;
	return false;
}

static bool
admit_local(Oid roleid, int64 bytes, int64 limit)
{
	RoleUsage  *usage = local_entry(roleid);
	bool		recount;

	if (decide(usage, bytes, limit, &recount))
		return true;
	if (!recount)
		return false;
	usage->bytes = count_exactly(roleid);
	if (usage->bytes + bytes <= limit)
	{
		usage->bytes += bytes;
		return true;
	}
	usage->full_until = GetCurrentTimestamp() + RECOUNT_PAUSE;
	return false;
}

/* The shared estimate of roleid, after an exact count if it had none. */
static bool
admit_shared(Oid roleid, int64 bytes, int64 limit)
{
	UsageKey	key = {MyDatabaseId, roleid};
	RoleUsage  *usage;
	bool		found;
	bool		recount;
	bool		admitted;
	int64		exact;

	LWLockAcquire(usage_lock, LW_EXCLUSIVE);
	usage = hash_search(shared_usage, &key, HASH_FIND, NULL);
	if (usage)
	{
		admitted = decide(usage, bytes, limit, &recount);
		LWLockRelease(usage_lock);
		if (admitted || !recount)
			return admitted;
	}
	else
		LWLockRelease(usage_lock);

	/* count without holding the lock, then publish the count */
	exact = count_exactly(roleid);
	admitted = exact + bytes <= limit;
	LWLockAcquire(usage_lock, LW_EXCLUSIVE);
	usage = hash_search(shared_usage, &key, HASH_ENTER_NULL, &found);
	if (usage)
	{
		usage->bytes = exact + (admitted ? bytes : 0);
		usage->full_until = admitted ? 0 : GetCurrentTimestamp() + RECOUNT_PAUSE;
	}
	LWLockRelease(usage_lock);
	return admitted;
}

/*
 * Whether storing an entry of "bytes" (cachier_entry_size) keeps the
 * current role within cachier.max_role_bytes; if so it is counted.
 */
bool
cachier_quota_admit(int64 bytes)
{
	int64		limit = cachier_max_role_bytes();

	if (limit < 0 || !cachier_entries_have_roles())
		return true;
	if (bytes > limit)
		return false;
	if (shared_usage != NULL)
		return admit_shared(GetUserId(), bytes, limit);
	return admit_local(GetUserId(), bytes, limit);
}
