/*-------------------------------------------------------------------------
 *
 * entry_scan.c
 *	  The index scan that finds cache entries, kept open for the rest of
 *	  the transaction so that a hit costs one B-tree descent and nothing
 *	  more: no relation opening, no scan set-up per call.
 *
 * Rules that keep this safe:
 *	- Everything the scan holds (relation references, buffer pins) belongs
 *	  to TopTransactionResourceOwner and its memory to TopTransactionContext,
 *	  so a subtransaction's end never takes it away underneath us.  The
 *	  index AM allocates some state lazily (B-tree's killed-items array), so
 *	  the scan always runs in TopTransactionContext; only the visitor runs
 *	  in the caller's context.
 *	- Buffer pins are dropped at the end of every lookup.
 *	- The scan is closed before commit or prepare (a transaction callback)
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

static OpenScan open_scan;

/* Close the scan; cachier.c calls this before every utility command. */
void
cachier_entry_scan_close(void)
{
	ResourceOwner saved = CurrentResourceOwner;

	if (open_scan.rel == NULL)
		return;
	CurrentResourceOwner = TopTransactionResourceOwner;
	ExecDropSingleTupleTableSlot(open_scan.slot);
	index_endscan(open_scan.scan);
	index_close(open_scan.index, NoLock);
	table_close(open_scan.rel, NoLock);
	CurrentResourceOwner = saved;
	memset(&open_scan, 0, sizeof(open_scan));
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
			memset(&open_scan, 0, sizeof(open_scan));
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
open_for_transaction(void)
{
	const CachierRelations *rels = cachier_relations();
	ResourceOwner saved = CurrentResourceOwner;
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);

	CurrentResourceOwner = TopTransactionResourceOwner;
	open_scan.rel = table_open(rels->entries, AccessShareLock);
	open_scan.index = index_open(rels->entries_pkey, AccessShareLock);
	open_scan.scan = index_beginscan(open_scan.rel, open_scan.index,
									 SnapshotSelf, 2, 0);
	open_scan.slot = table_slot_create(open_scan.rel, NULL);
	/* index column numbers: (fn_id, key) */
	ScanKeyInit(&open_scan.keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum) 0);
	ScanKeyInit(&open_scan.keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, (Datum) 0);
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
 * Call visit on the live entries of (funcid, key) until it returns true;
 * whether it did.  The tuple is only valid during the call.
 */
bool
cachier_scan_entry(Oid funcid, int64 key, EntryVisitor visit, void *arg)
{
	ResourceOwner saved;
	MemoryContext caller;
	bool		found = false;
	bool		shouldFree;
	int32		fn_id = cachier_fn_id(funcid);

	if (fn_id == 0)
		return false;
	if (IsInParallelMode())
		return scan_once(fn_id, key, visit, arg);
	if (open_scan.busy)
		cachier_entry_scan_close();	/* the last lookup failed mid-way */
	if (open_scan.rel == NULL)
		open_for_transaction();

	saved = CurrentResourceOwner;
	caller = MemoryContextSwitchTo(TopTransactionContext);
	CurrentResourceOwner = TopTransactionResourceOwner;
	open_scan.busy = true;
	open_scan.keys[0].sk_argument = Int32GetDatum(fn_id);
	open_scan.keys[1].sk_argument = Int64GetDatum(key);
	index_rescan(open_scan.scan, open_scan.keys, 2, NULL, 0);
	while (!found &&
		   index_getnext_slot(open_scan.scan, ForwardScanDirection, open_scan.slot))
	{
		HeapTuple	tuple = ExecFetchSlotHeapTuple(open_scan.slot, false, &shouldFree);

		MemoryContextSwitchTo(caller);
		found = visit(tuple, RelationGetDescr(open_scan.rel), arg);
		MemoryContextSwitchTo(TopTransactionContext);
	}
	ExecClearTuple(open_scan.slot);
	/* drop the pins on the index and heap pages until the next lookup */
	index_rescan(open_scan.scan, open_scan.keys, 2, NULL, 0);
	open_scan.busy = false;
	CurrentResourceOwner = saved;
	MemoryContextSwitchTo(caller);
	return found;
}
