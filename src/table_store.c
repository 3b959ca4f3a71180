/*-------------------------------------------------------------------------
 *
 * table_store.c
 *	  The table tier: cachier.entries, read through entry_scan.c and
 *	  written in the caller's transaction, straight into the table and
 *	  its indexes.
 *
 * Reads use SnapshotSelf: the latest committed entries plus the caller's
 * own, whatever the caller's isolation level, because a value committed
 * by another session after our snapshot was taken is exactly what a
 * shared cache should serve.  Writes come in batches from pending.c (the
 * entries of a statement) and run as the table's owner (PUBLIC has no
 * rights on it) inside one subtransaction, so that a failure to store
 * becomes a WARNING and never fails the caller's query; cancellation is
 * re-thrown.  Only the session that holds a key's in-progress lock
 * (inprogress.c) stores it, and a key whose uncommitted entry another
 * transaction holds (beyond the lock budget) is skipped, so a store never
 * waits for a concurrent insert of the same key.
 *
 * A write does what INSERT ... ON CONFLICT (fn_id, key) DO UPDATE would,
 * without SQL: the key's current version, found by a dirty-snapshot probe
 * of the key index (the busy check before queueing, trusted while nothing
 * contradicts it, or one when writing), is updated, or the row is
 * inserted, new rows in groups as COPY inserts them.  The indexes are
 * maintained by the executor's own routine (ExecInsertIndexTuples), so
 * every index of the table, unique checks included, stays right, and the
 * table's constraints are checked as an INSERT checks them.  The table has
 * no triggers, rules or policies of its own: none are run.
 *
 * Each transaction that wrote entries adds one to a shared count when it
 * commits (cachier_store_commits), after its entries became visible and
 * before its key locks are given back, and a key lock given back before
 * commit (beyond the lock budget) adds one first (cachier_store_announce):
 * a miss that read the count before looking the key up, and finds it
 * unchanged once it holds the key's lock, knows that no entry it could
 * have found was committed or published in between, and need not look
 * again.  Not with prepared transactions enabled: PREPARE gives its key
 * locks back, and its entries appear at a COMMIT PREPARED that may run in
 * any session, with nothing to count it in order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "cachier.h"
#include "cachier_shared.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

/* Columns of cachier.entries, in table order. */
enum
{
	Col_fn_id = 1, Col_key, Col_fingerprint, Col_created_at,
	Col_compute_ms, Col_args, Col_value, Col_role_id
};

/*
 * [F] The attribute number of cachier.entries.epoch (0.5 on), found by
 * name once per storage table: InvalidAttrNumber until ALTER EXTENSION
 * UPDATE adds it (then nothing that read tables is stored).
 */
static Oid epoch_table = InvalidOid;
static AttrNumber epoch_attnum = InvalidAttrNumber;

static AttrNumber
epoch_column(void)
{
	Oid			entries = cachier_relations()->entries;

	/* not found is not remembered: ALTER EXTENSION UPDATE may add it */
	if (entries != epoch_table || epoch_attnum == InvalidAttrNumber)
	{
		epoch_attnum = get_attnum(entries, "epoch");
		epoch_table = entries;
	}
	return epoch_attnum;
}

/* The epoch column of the open entries table, from its own descriptor. */
static AttrNumber
epoch_attnum_of(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), "epoch") == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/* Whether cachier.entries can hold epochs. */
bool
cachier_entries_have_epochs(void)
{
	return epoch_column() != InvalidAttrNumber;
}

/* An entry's epoch (false: NULL, read nothing trackable). */
bool
cachier_entry_tuple_epoch(HeapTuple tuple, TupleDesc desc, int64 *epoch)
{
	AttrNumber	attnum = epoch_column();
	bool		isnull;
	Datum		d;

	if (attnum == InvalidAttrNumber || attnum > desc->natts)
		return false;
	d = heap_getattr(tuple, attnum, desc, &isnull);
	if (isnull)
		return false;
	*epoch = DatumGetInt64(d);
	return true;
}

/*
 * Whether cachier.entries has the role_id column (0.4 on).  The library
 * can be newer than the installed SQL objects until ALTER EXTENSION
 * UPDATE: until then entries are stored without their role.
 */
bool
cachier_entries_have_roles(void)
{
	return get_attnum(cachier_relations()->entries, "role_id") != InvalidAttrNumber;
}

/* Whether a stored entry's keyed bytes are exactly the call's. */
static bool
same_keyed_bytes(HeapTuple tuple, TupleDesc desc, const StringInfo keyed)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, Col_args, desc, &isnull);
	struct varlena *args;
	bool		same;

	if (isnull)
		return false;
	args = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
	same = VARSIZE_ANY_EXHDR(args) == (Size) keyed->len &&
		memcmp(VARDATA_ANY(args), keyed->data, keyed->len) == 0;
	if ((Pointer) args != DatumGetPointer(d))
		pfree(args);
	return same;
}

typedef struct LookupArgs
{
	const StringInfo keyed;
	StoredEntry *entry;
} LookupArgs;

/* Copy what a hit needs out of the tuple, if it is the call's entry. */
static bool
take_entry(HeapTuple tuple, TupleDesc desc, void *arg)
{
	LookupArgs *la = (LookupArgs *) arg;
	StoredEntry *entry = la->entry;
	bool		isnull;
	Datum		d;

	if (!same_keyed_bytes(tuple, desc, la->keyed))
		return false;
	d = heap_getattr(tuple, Col_value, desc, &entry->isnull);
	entry->value = entry->isnull ? NULL :
		(bytea *) pg_detoast_datum_copy((struct varlena *) DatumGetPointer(d));
	entry->created_at = DatumGetTimestampTz(heap_getattr(tuple, Col_created_at,
														 desc, &isnull));
	entry->compute_ms = DatumGetFloat8(heap_getattr(tuple, Col_compute_ms,
													desc, &isnull));
	entry->has_epoch = cachier_entry_tuple_epoch(tuple, desc, &entry->epoch);
	return true;
}

/*
 * Find the entry of (funcid, key) whose keyed bytes are the call's.  A
 * different entry under the same 64-bit key (a hash collision) is a miss.
 */
void
cachier_store_lookup(Oid funcid, int64 key, const StringInfo keyed,
					 StoredEntry *entry)
{
	LookupArgs	la = {keyed, entry};

	entry->found = cachier_scan_entry(funcid, key, take_entry, &la);
}

/* Whether this session may write the cache now; why not, if it may not. */
bool
cachier_can_write(const char **why)
{
	if (RecoveryInProgress())
		*why = "the server is a hot standby";
	else if (XactReadOnly)
		*why = "the transaction is read-only";
	else if (IsInParallelMode())
		*why = "the call runs in a parallel operation";
	else if (cachier_storage_legacy())
		*why = "the extension's storage is older than its library (ALTER EXTENSION cachier UPDATE)";
	else
		return true;
	return false;
}

/*
 * A store's own deadlock check runs this soon: if the store ever waits in
 * a cycle with another transaction (see cachier_store_busy), it is the store
 * that gives up, never the other transaction.
 */
#define STORE_DEADLOCK_CHECK_MS	5

typedef struct WriteWork
{
	List	   *rows;			/* EntryRow * */
	int64		wait_us;
	bool		trust_probes;	/* use what the busy checks found */
	int			written;
} WriteWork;


static void
set_local(const char *name, int value)
{
	char		text[32];

	snprintf(text, sizeof(text), "%d", value);
	(void) set_config_option(name, text, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* What the last busy check found, for the row queued right after it. */
static struct
{
	bool		valid;
	Oid			funcid;
	int64		key;
	bool		newer;
	ItemPointerData current;
}			last_probe;

/*
 * Whether another transaction, still in progress, has written the key: a
 * store would have to wait for it, and that transaction might be waiting
 * for us.  Then nothing is stored.  Otherwise the row of the key queued
 * next (cachier_store_take_probe) takes along which version it replaces,
 * so that its write needs no second probe.
 */
bool
cachier_store_busy(Oid funcid, int64 key)
{
	bool		busy = cachier_entry_probe(funcid, key, &last_probe.current,
										   &last_probe.newer);

	last_probe.valid = !busy;
	last_probe.funcid = funcid;
	last_probe.key = key;
	return busy;
}

/* Called by pending.c for a row it queues: the last busy check's findings. */
void
cachier_store_take_probe(EntryRow *row)
{
	row->probed = last_probe.valid && last_probe.funcid == row->funcid &&
		last_probe.key == row->key;
	if (row->probed)
	{
		row->newer = last_probe.newer;
		row->current = last_probe.current;
	}
	last_probe.valid = false;
}

/*
 * What one batch of writes holds open: the table and its indexes (as an
 * INSERT would, through a result relation), a slot to build rows in, and
 * a dirty-snapshot scan of the key index that finds the version of a key
 * any transaction has written.
 */
/*
 * New rows are inserted in groups (table_multi_insert, as COPY does): one
 * WAL record and one buffer lock per heap page rather than per row.
 */
#define INSERT_GROUP_ROWS	100
#define INSERT_GROUP_BYTES	(64 * 1024)

typedef struct EntryWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *row;		/* a row that replaces a version */
	TupleTableSlot *group[INSERT_GROUP_ROWS];	/* rows to insert, made on use */
	int			ngroup;
	Size		group_bytes;
	Relation	pkey;
	IndexScanDesc scan;
	TupleTableSlot *found;		/* the key's current version */
	SnapshotData dirty;
	ScanKeyData keys[2];
	AttrNumber	epoch_attnum;	/* InvalidAttrNumber: no epoch column */
} EntryWriter;

static void
writer_open(EntryWriter *w)
{
	const CachierRelations *rels = cachier_relations();

	w->rel = table_open(rels->entries, RowExclusiveLock);
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 0, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->row = table_slot_create(w->rel, NULL);
	memset(w->group, 0, sizeof(w->group));
	w->ngroup = 0;
	w->group_bytes = 0;
	w->found = table_slot_create(w->rel, NULL);
	w->pkey = index_open(rels->entries_pkey, RowExclusiveLock);
	InitDirtySnapshot(w->dirty);
	w->scan = index_beginscan(w->rel, w->pkey, &w->dirty, 2, 0);
	ScanKeyInit(&w->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum) 0);
	ScanKeyInit(&w->keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, (Datum) 0);
	w->epoch_attnum = epoch_attnum_of(w->rel);
	/* role_id came with 0.4: older storage is never written (legacy) */
	if (RelationGetDescr(w->rel)->natts < Col_role_id)
		elog(ERROR, "cachier.entries has no column role_id");
}

static void
writer_close(EntryWriter *w)
{
	int			i;

	index_endscan(w->scan);
	index_close(w->pkey, NoLock);
	ExecDropSingleTupleTableSlot(w->found);
	ExecDropSingleTupleTableSlot(w->row);
	for (i = 0; i < INSERT_GROUP_ROWS && w->group[i] != NULL; i++)
		ExecDropSingleTupleTableSlot(w->group[i]);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

typedef enum KeyState
{
	KEY_ABSENT,					/* no version of the key: insert */
	KEY_PRESENT,				/* a committed version (or our own): update */
	KEY_BUSY,					/* another transaction is writing it: skip */
	KEY_NEWER					/* committed after our snapshot: keep it */
} KeyState;

/*
 * The state of (fn_id, key) as a write finds it, and the TID of its
 * current version.  Under REPEATABLE READ and SERIALIZABLE a version that
 * another transaction committed after our snapshot is newer than what we
 * computed, so it stays (as INSERT ... ON CONFLICT would refuse to update
 * it).
 */
static KeyState
key_state(EntryWriter *w, int32 fn_id, int64 key, ItemPointer tid)
{
	KeyState	state = KEY_ABSENT;

	w->keys[0].sk_argument = Int32GetDatum(fn_id);
	w->keys[1].sk_argument = Int64GetDatum(key);
	index_rescan(w->scan, w->keys, 2, NULL, 0);
	if (index_getnext_slot(w->scan, ForwardScanDirection, w->found))
	{
		HeapTuple	tuple = ExecFetchSlotHeapTuple(w->found, false, NULL);

		if (TransactionIdIsValid(w->dirty.xmin) || TransactionIdIsValid(w->dirty.xmax))
			state = KEY_BUSY;
		else if (IsolationUsesXactSnapshot() &&
				 !TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)) &&
				 !table_tuple_satisfies_snapshot(w->rel, w->found, GetActiveSnapshot()))
			state = KEY_NEWER;
		else
			state = KEY_PRESENT;
		*tid = w->found->tts_tid;
	}
	ExecClearTuple(w->found);
	return state;
}

/* Put the row's columns into a slot, checked as an INSERT checks them. */
static void
fill_slot(EntryWriter *w, TupleTableSlot *slot, const EntryRow *row, int32 fn_id)
{
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
	slot->tts_values[Col_fn_id - 1] = Int32GetDatum(fn_id);
	slot->tts_values[Col_key - 1] = Int64GetDatum(row->key);
	slot->tts_values[Col_fingerprint - 1] = Int64GetDatum(row->fingerprint);
	slot->tts_values[Col_created_at - 1] = TimestampTzGetDatum(row->created_at);
	slot->tts_values[Col_compute_ms - 1] = Float8GetDatum(row->compute_ms);
	slot->tts_values[Col_args - 1] = PointerGetDatum(row->args);
	slot->tts_values[Col_value - 1] = PointerGetDatum(row->value);
	slot->tts_values[Col_role_id - 1] = ObjectIdGetDatum(row->roleid);
	memset(slot->tts_isnull, false, Col_role_id * sizeof(bool));
	slot->tts_isnull[Col_value - 1] = row->value == NULL;
	if (row->has_epoch)
	{
		slot->tts_values[w->epoch_attnum - 1] = Int64GetDatum(row->epoch);
		slot->tts_isnull[w->epoch_attnum - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
	if (w->rel->rd_att->constr)
		ExecConstraints(w->rri, slot, w->estate);
}

/* Insert the grouped rows, then their index entries. */
static void
insert_group(EntryWriter *w)
{
	int			i;

	if (w->ngroup == 0)
		return;
	table_multi_insert(w->rel, w->group, w->ngroup, GetCurrentCommandId(true), 0, NULL);
	for (i = 0; i < w->ngroup; i++)
	{
		(void) ExecInsertIndexTuples(w->rri, w->group[i], w->estate, false, false,
									 NULL, NIL);
		ExecClearTuple(w->group[i]);
	}
	w->ngroup = 0;
	w->group_bytes = 0;
}

/* Add a new row to the group of rows to insert. */
static void
group_row(EntryWriter *w, const EntryRow *row, int32 fn_id)
{
	if (w->group[w->ngroup] == NULL)
	{
		/* the slot lasts for the batch, not for the row */
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->group[w->ngroup] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	fill_slot(w, w->group[w->ngroup], row, fn_id);
#ifndef USE_FLOAT8_BYVAL
	/* int8, timestamptz and float8 were palloc'd in the per-row memory */
	ExecMaterializeSlot(w->group[w->ngroup]);
#endif
	w->ngroup++;
	w->group_bytes += VARSIZE(row->args) + (row->value ? VARSIZE(row->value) : 0);
	if (w->ngroup == INSERT_GROUP_ROWS || w->group_bytes >= INSERT_GROUP_BYTES)
		insert_group(w);
}

/*
 * Replace the key's current version with the row in the slot.  A version
 * this command wrote itself (the same key twice in one batch) is not yet
 * visible to the update: the command counter moves on, once.  A version
 * another transaction replaced meanwhile stays: its entry wins.
 */
static bool
update_entry(EntryWriter *w, ItemPointer tid)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	result;

	result = table_tuple_update(w->rel, tid, w->row, GetCurrentCommandId(true),
								GetActiveSnapshot(), InvalidSnapshot, true,
								&tmfd, &lockmode, &update_indexes);
	if (result == TM_Invisible)
	{
		CommandCounterIncrement();
		result = table_tuple_update(w->rel, tid, w->row, GetCurrentCommandId(true),
									GetActiveSnapshot(), InvalidSnapshot, true,
									&tmfd, &lockmode, &update_indexes);
	}
	if (result != TM_Ok)
		return false;
	if (update_indexes)
		(void) ExecInsertIndexTuples(w->rri, w->row, w->estate, false, false, NULL, NIL);
	return true;
}

/*
 * Replace the version a busy check found, if it still is the key's: the
 * line pointer could have been reused since, so its row is read first.
 */
static bool
replace_probed(EntryWriter *w, ItemPointer tid, int32 fn_id, int64 key)
{
	bool		same;
	bool		isnull;

	/*
	 * Read with the dirty snapshot: a version that is dead, or that another
	 * transaction is writing, is no longer the one to replace (the key is
	 * probed again).  The slot keeps the buffer pinned until the update is
	 * done, so the line pointer cannot be pruned away meanwhile.
	 */
	if (!table_tuple_fetch_row_version(w->rel, tid, &w->dirty, w->found))
		return false;
	same = !TransactionIdIsValid(w->dirty.xmin) && !TransactionIdIsValid(w->dirty.xmax) &&
		DatumGetInt32(slot_getattr(w->found, Col_fn_id, &isnull)) == fn_id &&
		DatumGetInt64(slot_getattr(w->found, Col_key, &isnull)) == key;
	same = same && update_entry(w, tid);
	ExecClearTuple(w->found);
	return same;
}

/*
 * Write one row: insert it (with the group), or update the key's current
 * version; nothing when another transaction is writing the key, or under
 * REPEATABLE READ committed a version after our snapshot.  What the busy
 * check before queueing found is used when trusted: the key's lock kept
 * other writers away since, and if one came anyway the version has changed
 * (the update fails: the key is probed again) or the unique index raises
 * an error (the caller then retries the row alone, without trusting the
 * check).
 */
static bool
write_entry(EntryWriter *w, const EntryRow *row, int32 fn_id, bool trust_probe)
{
	ItemPointerData tid;
	KeyState	state;

	if (trust_probe && row->probed)
	{
		tid = row->current;
		state = row->newer ? KEY_NEWER :
			ItemPointerIsValid(&tid) ? KEY_PRESENT : KEY_ABSENT;
		if (state == KEY_PRESENT)
		{
			fill_slot(w, w->row, row, fn_id);
			if (replace_probed(w, &tid, fn_id, row->key))
				return true;
			state = key_state(w, fn_id, row->key, &tid);
		}
	}
	else
		state = key_state(w, fn_id, row->key, &tid);
	if (state == KEY_BUSY || state == KEY_NEWER)
		return false;
	if (state == KEY_ABSENT)
	{
		group_row(w, row, fn_id);
		return true;
	}
	fill_slot(w, w->row, row, fn_id);
	return update_entry(w, &tid);
}

/* A row to write, and where it stood in the queue. */
typedef struct QueuedRow
{
	EntryRow   *row;
	int			pos;
} QueuedRow;

static int
queued_cmp(const void *a, const void *b)
{
	const QueuedRow *x = (const QueuedRow *) a;
	const QueuedRow *y = (const QueuedRow *) b;

	if (x->row->funcid != y->row->funcid)
		return x->row->funcid < y->row->funcid ? -1 : 1;
	if (x->row->key != y->row->key)
		return x->row->key < y->row->key ? -1 : 1;
	return x->pos - y->pos;
}

/*
 * The rows to write, in key order, each key once: its newest row that was
 * not dropped (computed in a subtransaction that rolled back).  Key order
 * lets a large batch visit each page of the key index once, and two
 * batches never wait for each other's keys in opposite orders.
 */
static QueuedRow *
batch_rows(List *rows, int *n)
{
	QueuedRow  *batch = palloc(sizeof(QueuedRow) * Max(1, list_length(rows)));
	ListCell   *lc;
	int			i;
	int			kept = 0;

	*n = 0;
	foreach(lc, rows)
	{
		EntryRow   *row = lfirst(lc);

		if (!row->dropped)
		{
			batch[*n].row = row;
			batch[*n].pos = foreach_current_index(lc);
			(*n)++;
		}
	}
	qsort(batch, *n, sizeof(QueuedRow), queued_cmp);
	for (i = 0; i < *n; i++)
		if (i + 1 == *n || batch[i].row->funcid != batch[i + 1].row->funcid ||
			batch[i].row->key != batch[i + 1].row->key)
			batch[kept++] = batch[i];
	*n = kept;
	return batch;
}

/*
 * Write the rows as the storage owner (owner_exec.c), with this store's
 * lock waits, straight into the table and its indexes (no SQL: no plan,
 * no executor start per row).  A row whose key another transaction is
 * writing right now is skipped.  Runs inside cachier_run_guarded, whose
 * subtransaction undoes it all on error.
 */
static void
write_as_owner(void *arg)
{
	WriteWork  *work = (WriteWork *) arg;
	OwnerContext owner;
	EntryWriter w;
	MemoryContext per_row;
	MemoryContext old;
	QueuedRow  *batch;
	int32		fn_id = 0;
	int			n;
	int			i;

	cachier_owner_begin(&owner);
	set_local("lock_timeout", cachier_timeout_ms(work->wait_us));
	set_local("deadlock_timeout", Min(DeadlockTimeout, STORE_DEADLOCK_CHECK_MS));
	batch = batch_rows(work->rows, &n);
	writer_open(&w);
	per_row = GetPerTupleMemoryContext(w.estate);
	for (i = 0; i < n; i++)
	{
		EntryRow   *row = batch[i].row;

		CHECK_FOR_INTERRUPTS();
		if (row->has_epoch && w.epoch_attnum == InvalidAttrNumber)
			continue;
		/* rows come grouped by function: its id once per group */
		if (i == 0 || row->funcid != batch[i - 1].row->funcid)
		{
			/* the id lookups found; 0: register the function (function_ids.c) */
			fn_id = cachier_fn_id(row->funcid);
			if (fn_id == 0)
				fn_id = cachier_register_function(row->funcid, false);
		}
		/* still 0: another transaction is registering the function */
		if (fn_id == 0)
			continue;
		old = MemoryContextSwitchTo(per_row);
		if (write_entry(&w, row, fn_id, work->trust_probes))
			work->written++;
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(w.estate);
	}
	old = MemoryContextSwitchTo(per_row);
	insert_group(&w);
	MemoryContextSwitchTo(old);
	writer_close(&w);
	/* what follows in this transaction sees the rows, as after an INSERT */
	CommandCounterIncrement();
	cachier_owner_end(&owner);
}

/* Write the rows in one subtransaction; false and *error if it failed. */
static bool
write_rows(List *rows, int64 wait_us, bool trust_probes, ErrorData **error)
{
	WriteWork	work = {rows, wait_us, trust_probes, 0};

	return cachier_run_guarded(write_as_owner, &work, error);
}

/*
 * Errors that mean "someone else's entry wins", not a failure: a lock wait
 * past wait_timeout, a deadlock our store detected first, a concurrent
 * insert of the key that committed first, or, under REPEATABLE READ and
 * SERIALIZABLE, a row version stored after our snapshot was taken (it is
 * newer than ours: keep it).
 */
static bool
is_busy(const ErrorData *error)
{
	return error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		error->sqlerrcode == ERRCODE_UNIQUE_VIOLATION ||
		error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		(error->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE &&
		 IsolationUsesXactSnapshot());
}

/* ---------------------------------------------------------------- commits */

static bool wrote_entries;		/* this transaction wrote entries */

static void
count_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
	{
		/* after the commit made them visible, before the key locks go */
		if (wrote_entries)
			cachier_store_announce();
		wrote_entries = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		wrote_entries = false;
}

void
cachier_store_init(void)
{
	RegisterXactCallback(count_commit, NULL);
}

/*
 * Entries may have become visible (a commit), or a key's lock is about to
 * be given back with its value already published to the memory tier:
 * misses that hold a key's lock must look again.
 */
void
cachier_store_announce(void)
{
	if (cachier_preloaded())
		pg_atomic_fetch_add_u64(&cachier_shared->entry_commits, 1);
}

/*
 * The count cachier_store_announce adds to; false when it says nothing:
 * without shared_preload_libraries, and with prepared transactions
 * enabled (see the header).  Entries written other than by cachier (by
 * hand, by logical replication) are not counted: a miss may then compute a
 * value that was just stored, which is wasted work, never a wrong result.
 */
bool
cachier_store_commits(uint64 *count)
{
	if (!cachier_preloaded() || max_prepared_xacts > 0)
		return false;
	*count = pg_atomic_read_u64(&cachier_shared->entry_commits);
	pg_read_barrier();			/* read before whatever the caller reads next */
	return true;
}

/*
 * Write entries computed in this transaction (pending.c), all in one
 * subtransaction: one XID for all of them.  If that fails, each row is
 * written in a subtransaction of its own, so that one row the table
 * refuses costs only that row: a failure to write it becomes a WARNING
 * (its value was returned already), and another transaction holding the
 * key's uncommitted entry, or a lock wait past wait_us, makes it quietly
 * not stored.  Cancellation is re-thrown.
 */
void
cachier_store_write(List *rows, int64 wait_us)
{
	ErrorData  *error;
	ListCell   *lc;

	if (cachier_storage_legacy())
		return;					/* before ALTER EXTENSION UPDATE to 0.5 */
	wrote_entries = true;		/* (a failed write counts too: harmless) */
	if (write_rows(rows, wait_us, true, &error))
		return;
	FreeErrorData(error);
	foreach(lc, rows)
	{
		if (write_rows(list_make1(lfirst(lc)), wait_us, false, &error) || is_busy(error))
			continue;
		ereport(WARNING,
				(errcode(error->sqlerrcode),
				 errmsg("could not store a cache entry; the result was returned without it"),
				 errdetail_internal("%s", error->message)));
		FreeErrorData(error);
	}
}

/* Remove one entry (key given) or all entries of a function. */
int64
cachier_store_delete(Oid funcid, const int64 *key)
{
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		values[2];
	int32		fn_id = cachier_fn_id(funcid);

	if (fn_id == 0)
		return 0;				/* the function has no entries */
	values[0] = Int32GetDatum(fn_id);
	if (key == NULL)
		return cachier_exec_as_owner("DELETE FROM cachier.entries"
									 " WHERE fn_id OPERATOR(pg_catalog.=) $1",
									 1, types, values, NULL, NULL);
	values[1] = Int64GetDatum(*key);
	return cachier_exec_as_owner("DELETE FROM cachier.entries"
								 " WHERE fn_id OPERATOR(pg_catalog.=) $1"
								 " AND key OPERATOR(pg_catalog.=) $2",
								 2, types, values, NULL, NULL);
}

/*
 * [F] How many entries of a function carry an epoch: what an invalidation
 * of its dependencies makes unusable.
 */
int64
cachier_store_count_tracked(Oid funcid)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	List	   *counts = NIL;
	int32		fn_id = cachier_fn_id(funcid);

	if (fn_id == 0 || !cachier_entries_have_epochs())
		return 0;
	values[0] = Int32GetDatum(fn_id);
	(void) cachier_exec_as_owner("SELECT pg_catalog.count(*)::pg_catalog.oid FROM cachier.entries"
								 " WHERE fn_id OPERATOR(pg_catalog.=) $1"
								 " AND epoch IS NOT NULL",
								 1, types, values, NULL, &counts);
	return counts != NIL ? (int64) linitial_oid(counts) : 0;
}

/* What an entry of these sizes takes in the table, as the quota counts it. */
int64
cachier_entry_size(int args_len, int value_len)
{
	return (int64) args_len + value_len + CACHIER_ENTRY_OVERHEAD;
}
