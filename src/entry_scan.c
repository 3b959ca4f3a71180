/*-------------------------------------------------------------------------
 *
 * entry_scan.c
 *	  The index scans that find cache entries, kept open for the rest of
 *	  the transaction so that a hit costs one B-tree descent and nothing
 *	  more: no relation opening, no scan set-up per call.  One reads with
 *	  SnapshotSelf (lookups), the other with a dirty snapshot (whether
 *	  another transaction is writing a key, asked before a store).
 *
 * Rules that keep this safe:
 *	- Everything the scan holds (relation references, buffer pins) belongs
 *	  to TopTransactionResourceOwner and its memory to TopTransactionContext,
 *	  so a subtransaction's end never takes it away underneath us.  The
 *	  index AM allocates some state lazily (B-tree's killed-items array), so
 *	  the scan always runs in TopTransactionContext; only the visitor runs
 *	  in the caller's context.
 *	- Buffer pins are dropped at the end of every lookup.
 *	- Writes (table_store.c) never use these scans: they run in a
 *	  subtransaction, and may run after the scans were closed before a
 *	  utility command.
 *	- The scans are closed before commit or prepare (a transaction callback)
 *	  and before any utility command runs (cachier.c's ProcessUtility hook),
 *	  so that
 *	  DROP EXTENSION, TRUNCATE or ALTER TABLE in the same transaction never
 *	  find the table in use; after an abort it is simply forgotten, since
 *	  the resource owner has released it.
 *	- In parallel mode a plain one-off scan is used instead.
 *	- Entries are found by the function's storage id (function_ids.c); a
 *	  function without one has no entries and nothing is scanned.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "cachier.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

typedef struct OpenScan
{
	Relation	rel;			/* NULL: nothing is open */
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	bool		busy;			/* a lookup is running (or failed mid-way) */
} OpenScan;

/*
 * Two scans, opened on first use: one with SnapshotSelf for lookups, one
 * with a dirty snapshot (whose xmin and xmax say which other transaction
 * is writing the entry just returned) for cachier_entry_probe.
 */
typedef enum ScanKind
{
	SCAN_SELF,
	SCAN_DIRTY,
	NUM_SCANS
} ScanKind;

static OpenScan open_scans[NUM_SCANS];
static SnapshotData dirty_snapshot;

static void
close_scan(OpenScan *os)
{
	if (os->rel == NULL)
		return;
	ExecDropSingleTupleTableSlot(os->slot);
	index_endscan(os->scan);
	index_close(os->index, NoLock);
	table_close(os->rel, NoLock);
	memset(os, 0, sizeof(OpenScan));
}

/* Close the scans; cachier.c calls this before every utility command. */
void
cachier_entry_scan_close(void)
{
	ResourceOwner saved = CurrentResourceOwner;
	int			i;

	CurrentResourceOwner = TopTransactionResourceOwner;
	for (i = 0; i < NUM_SCANS; i++)
		close_scan(&open_scans[i]);
	CurrentResourceOwner = saved;
}

static void
transaction_ends(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			cachier_entry_scan_close();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the resource owner releases it all */
			memset(open_scans, 0, sizeof(open_scans));
			break;
		default:
			break;
	}
}

void
cachier_entry_scan_init(void)
{
	RegisterXactCallback(transaction_ends, NULL);
}

static void
open_for_transaction(OpenScan *os, Snapshot snapshot)
{
	const CachierRelations *rels = cachier_relations();
	ResourceOwner saved = CurrentResourceOwner;
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);

	CurrentResourceOwner = TopTransactionResourceOwner;
	os->rel = table_open(rels->entries, AccessShareLock);
	os->index = index_open(rels->entries_pkey, AccessShareLock);
	os->scan = index_beginscan(os->rel, os->index, snapshot, 2, 0);
	os->slot = table_slot_create(os->rel, NULL);
	/* index column numbers: (fn_id, key) */
	ScanKeyInit(&os->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum) 0);
	ScanKeyInit(&os->keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, (Datum) 0);
	CurrentResourceOwner = saved;
	MemoryContextSwitchTo(oldcxt);
}

/* A one-off scan, for parallel mode. */
static bool
scan_once(int32 fn_id, int64 key, EntryVisitor visit, void *arg)
{
	const CachierRelations *rels = cachier_relations();
	Relation	rel = table_open(rels->entries, AccessShareLock);
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	/* heap column numbers: fn_id is 1, key is 2 */
	ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(fn_id));
	ScanKeyInit(&skey[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(key));
	scan = systable_beginscan(rel, rels->entries_pkey, true, SnapshotSelf, 2, skey);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
		found = visit(tuple, RelationGetDescr(rel), arg);
	systable_endscan(scan);
	table_close(rel, NoLock);
	return found;
}

/*
 * Run the transaction's scan of this kind on (fn_id, key), calling visit
 * on each tuple it returns until visit returns true; whether it did.
 */
static bool
scan_open(ScanKind kind, int32 fn_id, int64 key, EntryVisitor visit, void *arg)
{
	OpenScan   *os = &open_scans[kind];
	ResourceOwner saved;
	MemoryContext caller;
	bool		found = false;
	bool		returned = false;
	bool		shouldFree;

	if (os->busy)
		cachier_entry_scan_close(); /* the last lookup failed mid-way */
	if (os->rel == NULL)
	{
		if (kind == SCAN_DIRTY)
			InitDirtySnapshot(dirty_snapshot);
		open_for_transaction(os, kind == SCAN_DIRTY ? &dirty_snapshot : SnapshotSelf);
	}

	saved = CurrentResourceOwner;
	caller = MemoryContextSwitchTo(TopTransactionContext);
	CurrentResourceOwner = TopTransactionResourceOwner;
	os->busy = true;
	os->keys[0].sk_argument = Int32GetDatum(fn_id);
	os->keys[1].sk_argument = Int64GetDatum(key);
	index_rescan(os->scan, os->keys, 2, NULL, 0);
	while (!found && index_getnext_slot(os->scan, ForwardScanDirection, os->slot))
	{
		HeapTuple	tuple = ExecFetchSlotHeapTuple(os->slot, false, &shouldFree);

		returned = true;
		MemoryContextSwitchTo(caller);
		found = visit(tuple, RelationGetDescr(os->rel), arg);
		MemoryContextSwitchTo(TopTransactionContext);
	}
	/*
	 * Drop the pins on the index and heap pages until the next lookup.  A
	 * scan that returned nothing holds none: B-tree lets go of the leaf
	 * when it finds no match, and no heap page was read.
	 */
	if (returned)
	{
		ExecClearTuple(os->slot);
		index_rescan(os->scan, os->keys, 2, NULL, 0);
	}
	os->busy = false;
	CurrentResourceOwner = saved;
	MemoryContextSwitchTo(caller);
	return found;
}

/*
 * Call visit on the live entries of (funcid, key) until it returns true;
 * whether it did.  The tuple is only valid during the call.
 */
bool
cachier_scan_entry(Oid funcid, int64 key, EntryVisitor visit, void *arg)
{
	int32		fn_id = cachier_fn_id(funcid);

	if (fn_id == 0)
		return false;
	if (IsInParallelMode())
		return scan_once(fn_id, key, visit, arg);
	return scan_open(SCAN_SELF, fn_id, key, visit, arg);
}

typedef struct Probe
{
	ItemPointerData tid;		/* the committed (or our own) version */
	bool		busy;			/* another transaction is writing the key */
	bool		newer;			/* tid was committed after our snapshot */
} Probe;

/* Note what the dirty snapshot returned: whose version, and whether newer. */
static bool
probe_visit(HeapTuple tuple, TupleDesc desc, void *arg)
{
	Probe	   *probe = (Probe *) arg;
	OpenScan   *os = &open_scans[SCAN_DIRTY];

	if (TransactionIdIsValid(dirty_snapshot.xmin) ||
		TransactionIdIsValid(dirty_snapshot.xmax))
	{
		probe->busy = true;
		return true;
	}
	probe->tid = tuple->t_self;
	probe->newer = IsolationUsesXactSnapshot() && ActiveSnapshotSet() &&
		!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)) &&
		!table_tuple_satisfies_snapshot(os->rel, os->slot, GetActiveSnapshot());
	return false;
}

/*
 * Probe the versions of (funcid, key) that any transaction has written.
 * True if another transaction, still in progress, has inserted, updated or
 * deleted one: a write of the key would have to wait for it.  Otherwise
 * *tid is the version a write would replace (committed, or this
 * transaction's own), invalid when there is none, and *newer says whether
 * it was committed after the active snapshot of a REPEATABLE READ or
 * SERIALIZABLE transaction.  Not in parallel mode (nothing is written
 * there).
 */
bool
cachier_entry_probe(Oid funcid, int64 key, ItemPointer tid, bool *newer)
{
	int32		fn_id = cachier_fn_id(funcid);
	Probe		probe;

	ItemPointerSetInvalid(&probe.tid);
	probe.busy = false;
	probe.newer = false;
	Assert(!IsInParallelMode());
	if (fn_id != 0)				/* else the function has no entries */
		(void) scan_open(SCAN_DIRTY, fn_id, key, probe_visit, &probe);
	*tid = probe.tid;
	*newer = probe.newer;
	return probe.busy;
}
