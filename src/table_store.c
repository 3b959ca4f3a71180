/*-------------------------------------------------------------------------
 *
 * table_store.c
 *	  The table tier: cachier.entries, read through entry_scan.c and
 *	  written with SPI in the caller's transaction.
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
 * transaction holds (beyond the lock budget) is skipped, so INSERT ... ON
 * CONFLICT does not wait for a concurrent insert of the same key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "cachier.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
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

#define PUT_NARGS	(Col_role_id + 1)	/* [F] and the epoch */

static SPIPlanPtr put_plan = NULL;
static bool put_plan_has_roles = false;
static bool put_plan_has_epochs = false;

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

	if (entries != epoch_table)
	{
		epoch_attnum = get_attnum(entries, "epoch");
		epoch_table = entries;
	}
	return epoch_attnum;
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

typedef struct PutArgs
{
	Datum		values[PUT_NARGS];
	char		nulls[PUT_NARGS];
} PutArgs;

static void
put_args(const EntryRow *row, int32 fn_id, PutArgs *put)
{
	memset(put->nulls, ' ', sizeof(put->nulls));
	put->values[0] = Int32GetDatum(fn_id);
	put->values[1] = Int64GetDatum(row->key);
	put->values[2] = Int64GetDatum(row->fingerprint);
	put->values[3] = TimestampTzGetDatum(row->created_at);
	put->values[4] = Float8GetDatum(row->compute_ms);
	put->values[5] = PointerGetDatum(row->args);
	put->values[6] = PointerGetDatum(row->value);
	put->nulls[6] = row->value == NULL ? 'n' : ' ';
	put->values[7] = ObjectIdGetDatum(row->roleid);
	put->values[8] = Int64GetDatum(row->epoch);
	put->nulls[8] = row->has_epoch ? ' ' : 'n';
}

static void
prepare_put(bool with_roles, bool with_epochs)
{
	Oid			types[PUT_NARGS] = {INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID,
	FLOAT8OID, BYTEAOID, BYTEAOID, OIDOID, INT8OID};
	StringInfoData sql;

	if (put_plan != NULL && put_plan_has_roles == with_roles &&
		put_plan_has_epochs == with_epochs)
		return;
	if (put_plan != NULL)
	{
		SPI_freeplan(put_plan);
		put_plan = NULL;
	}
	/* 0.4 added role_id, 0.5 epoch: the library may be newer than the SQL */
	Assert(with_roles || !with_epochs);
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO cachier.entries AS e"
					 " (fn_id, key, fingerprint, created_at, compute_ms, args, value%s%s)"
					 " VALUES ($1, $2, $3, $4, $5, $6, $7%s%s)"
					 " ON CONFLICT (fn_id, key) DO UPDATE SET"
					 " fingerprint = excluded.fingerprint, args = excluded.args,"
					 " value = excluded.value, created_at = excluded.created_at,"
					 " compute_ms = excluded.compute_ms%s%s",
					 with_roles ? ", role_id" : "",
					 with_epochs ? ", epoch" : "",
					 with_roles ? ", $8" : "",
					 with_epochs ? ", $9" : "",
					 with_roles ? ", role_id = excluded.role_id" : "",
					 with_epochs ? ", epoch = excluded.epoch" : "");
	put_plan = SPI_prepare(sql.data,
						   with_epochs ? PUT_NARGS : with_roles ? PUT_NARGS - 1 : PUT_NARGS - 2,
						   types);
	put_plan_has_roles = with_roles;
	put_plan_has_epochs = with_epochs;
	if (put_plan == NULL || SPI_keepplan(put_plan) != 0)
		elog(ERROR, "could not prepare the store statement: %s",
			 SPI_result_code_string(SPI_result));
}

static void
run_put(PutArgs *args)
{
	int			rc;

	rc = SPI_execute_plan(put_plan, args->values, args->nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "storing a cache entry failed: %s",
			 SPI_result_code_string(rc));
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

/*
 * Whether another transaction, still in progress, has written the key: a
 * store would have to wait for it, and that transaction might be waiting
 * for us.  A dirty snapshot shows its tuple.  Then nothing is stored.
 */
bool
cachier_store_busy(Oid funcid, int64 key)
{
	const CachierRelations *rels = cachier_relations();
	SnapshotData dirty;
	ScanKeyData skey[2];
	Relation	rel;
	SysScanDesc scan;
	bool		busy = false;
	int32		fn_id = cachier_fn_id(funcid);

	if (fn_id == 0)
		return false;			/* the function has no entries */
	InitDirtySnapshot(dirty);
	rel = table_open(rels->entries, AccessShareLock);
	ScanKeyInit(&skey[0], Col_fn_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(fn_id));
	ScanKeyInit(&skey[1], Col_key, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(key));
	scan = systable_beginscan(rel, rels->entries_pkey, true, &dirty, 2, skey);
	while (!busy && HeapTupleIsValid(systable_getnext(scan)))
		busy = TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return busy;
}

/*
 * Write the rows as the storage owner (owner_exec.c: restricted,
 * search_path pinned), with this store's lock waits; a row whose key
 * another transaction is writing right now is skipped.  Runs inside
 * cachier_run_guarded, whose subtransaction undoes it all on error.
 */
static void
write_as_owner(void *arg)
{
	WriteWork  *work = (WriteWork *) arg;
	OwnerContext owner;
	bool		with_roles = cachier_entries_have_roles();
	bool		with_epochs = with_roles && cachier_entries_have_epochs();
	ListCell   *lc;

	cachier_owner_begin(&owner);
	set_local("lock_timeout", cachier_timeout_ms(work->wait_us));
	set_local("deadlock_timeout", Min(DeadlockTimeout, STORE_DEADLOCK_CHECK_MS));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	prepare_put(with_roles, with_epochs);
	foreach(lc, work->rows)
	{
		EntryRow   *row = lfirst(lc);
		PutArgs		put;
		int32		fn_id;

		CHECK_FOR_INTERRUPTS();
		if (row->dropped || (row->has_epoch && !with_epochs))
			continue;
		/* 0: another transaction is registering the function (function_ids.c) */
		fn_id = cachier_register_function(row->funcid, false);
		if (fn_id == 0 || cachier_store_busy(row->funcid, row->key))
			continue;
		put_args(row, fn_id, &put);
		run_put(&put);
		work->written++;
	}
	SPI_finish();
	cachier_owner_end(&owner);
}

/* Write the rows in one subtransaction; false and *error if it failed. */
static bool
write_rows(List *rows, int64 wait_us, ErrorData **error)
{
	WriteWork	work = {rows, wait_us, 0};

	return cachier_run_guarded(write_as_owner, &work, error);
}

/*
 * Errors that mean "someone else's entry wins", not a failure: a lock wait
 * past wait_timeout, a deadlock our store detected first, or, under
 * REPEATABLE READ and SERIALIZABLE, a row version stored after our
 * snapshot was taken (it is newer than ours: keep it).
 */
static bool
is_busy(const ErrorData *error)
{
	return error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		(error->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE &&
		 IsolationUsesXactSnapshot());
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
	if (write_rows(rows, wait_us, &error))
		return;
	FreeErrorData(error);
	foreach(lc, rows)
	{
		if (write_rows(list_make1(lfirst(lc)), wait_us, &error) || is_busy(error))
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
