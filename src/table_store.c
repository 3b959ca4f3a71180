/*-------------------------------------------------------------------------
 *
 * table_store.c
 *	  The table tier: cachier.entries, read through entry_scan.c and
 *	  written with SPI in the caller's transaction.
 *
 * Reads use SnapshotSelf: the latest committed entries plus the caller's
 * own, whatever the caller's isolation level, because a value committed
 * by another session after our snapshot was taken is exactly what a
 * shared cache should serve.  Writes run as the table's owner (PUBLIC has
 * no rights on it) inside a subtransaction, so that a failure to store
 * becomes a WARNING and never fails the caller's query; cancellation is
 * re-thrown.  Only the session that holds a key's in-progress lock
 * (inprogress.c) stores it, so INSERT ... ON CONFLICT never waits on a
 * concurrent insert of the same key.
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
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

/* Columns of cachier.entries, in table order. */
enum
{
	Col_function_id = 1, Col_key, Col_fingerprint, Col_created_at,
	Col_compute_ms, Col_args, Col_value, Col_role_id
};

#define PUT_NARGS	Col_role_id

static SPIPlanPtr put_plan = NULL;
static bool put_plan_has_roles = false;

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
prepare_put(bool with_roles)
{
	Oid			types[PUT_NARGS] = {REGPROCEDUREOID, INT8OID, INT8OID, TIMESTAMPTZOID,
	FLOAT8OID, BYTEAOID, BYTEAOID, OIDOID};

	if (put_plan != NULL && put_plan_has_roles == with_roles)
		return;
	if (put_plan != NULL)
	{
		SPI_freeplan(put_plan);
		put_plan = NULL;
	}
	put_plan = SPI_prepare(psprintf("INSERT INTO cachier.entries AS e"
									" (function_id, key, fingerprint, created_at, compute_ms, args, value%s)"
									" VALUES ($1, $2, $3, $4, $5, $6, $7%s)"
									" ON CONFLICT (function_id, key) DO UPDATE SET"
									" fingerprint = excluded.fingerprint, args = excluded.args,"
									" value = excluded.value, created_at = excluded.created_at,"
									" compute_ms = excluded.compute_ms%s",
									with_roles ? ", role_id" : "",
									with_roles ? ", $8" : "",
									with_roles ? ", role_id = excluded.role_id" : ""),
						   with_roles ? PUT_NARGS : PUT_NARGS - 1, types);
	put_plan_has_roles = with_roles;
	if (put_plan == NULL || SPI_keepplan(put_plan) != 0)
		elog(ERROR, "cachier: could not prepare the store statement: %s",
			 SPI_result_code_string(SPI_result));
}

static void
run_put(PutArgs *args)
{
	int			rc;

	prepare_put(cachier_entries_have_roles());
	rc = SPI_execute_plan(put_plan, args->values, args->nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "cachier: storing an entry failed: %s",
			 SPI_result_code_string(rc));
}

/* Store as the storage owner; runs inside cachier_run_guarded. */
static void
put_as_owner(void *arg)
{
	Oid			userid;
	int			sec;

	GetUserIdAndSecContext(&userid, &sec);
	SetUserIdAndSecContext(cachier_relations()->owner,
						   sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "cachier: SPI_connect failed");
	run_put((PutArgs *) arg);
	SPI_finish();
}

/*
 * A store's own deadlock check runs this soon: if the store ever waits in
 * a cycle with another transaction (see key_in_flight), it is the store
 * that gives up, never the other transaction.
 */
#define STORE_DEADLOCK_CHECK_MS	5

/*
 * Run put as the storage owner in a subtransaction (which restores the
 * user on the way out).  False, with a WARNING, when it failed.
 */
static StoreResult
put_protected(PutArgs *args, int64 wait_us)
{
	Oid			save_userid;
	int			save_sec;
	int			saved_lock_timeout = LockTimeout;
	int			saved_deadlock_timeout = DeadlockTimeout;
	ErrorData  *error;
	volatile bool ok = false;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	LockTimeout = cachier_timeout_ms(wait_us);
	DeadlockTimeout = Min(DeadlockTimeout, STORE_DEADLOCK_CHECK_MS);
	PG_TRY();
	{
		ok = cachier_run_guarded(put_as_owner, args, &error);
	}
	PG_FINALLY();
	{
		LockTimeout = saved_lock_timeout;
		DeadlockTimeout = saved_deadlock_timeout;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	if (ok)
		return STORED;
	if (error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
		return STORE_BUSY;
	ereport(WARNING,
			(errcode(error->sqlerrcode),
			 errmsg("could not store a cache entry; the result was returned without it"),
			 errdetail_internal("%s", error->message)));
	FreeErrorData(error);
	return STORE_FAILED;
}

/*
 * Whether another transaction, still in progress, has written the key: a
 * store would have to wait for it, and that transaction might be waiting
 * for us.  A dirty snapshot shows its tuple.  Then nothing is stored.
 */
static bool
key_in_flight(Oid funcid, int64 key)
{
	const CachierRelations *rels = cachier_relations();
	SnapshotData dirty;
	ScanKeyData skey[2];
	Relation	rel;
	SysScanDesc scan;
	bool		busy = false;

	InitDirtySnapshot(dirty);
	rel = table_open(rels->entries, AccessShareLock);
	ScanKeyInit(&skey[0], Col_function_id, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(funcid));
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
 * Store an entry.  When another transaction inserted the same key and has
 * not committed yet, nothing is stored (STORE_BUSY).  Other lock waits (a
 * relation extension, a writer that appears after our look) are bounded
 * by wait_us.
 */
StoreResult
cachier_store_put(Oid funcid, int64 key, int64 fingerprint,
				  bytea *args, bytea *value, TimestampTz created_at,
				  double compute_ms, int64 wait_us)
{
	PutArgs		put;

	memset(put.nulls, ' ', sizeof(put.nulls));
	put.values[0] = ObjectIdGetDatum(funcid);
	put.values[1] = Int64GetDatum(key);
	put.values[2] = Int64GetDatum(fingerprint);
	put.values[3] = TimestampTzGetDatum(created_at);
	put.values[4] = Float8GetDatum(compute_ms);
	put.values[5] = PointerGetDatum(args);
	put.values[6] = PointerGetDatum(value);
	put.nulls[6] = value == NULL ? 'n' : ' ';
	put.values[7] = ObjectIdGetDatum(GetUserId());	/* before we become the owner */
	if (key_in_flight(funcid, key))
		return STORE_BUSY;
	return put_protected(&put, wait_us);
}

/* Remove one entry (key given) or all entries of a function. */
int64
cachier_store_delete(Oid funcid, const int64 *key)
{
	Oid			types[2] = {REGPROCEDUREOID, INT8OID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(funcid);
	if (key == NULL)
		return cachier_exec_as_owner("DELETE FROM cachier.entries"
									 " WHERE function_id OPERATOR(pg_catalog.=) $1",
									 1, types, values, NULL, NULL);
	values[1] = Int64GetDatum(*key);
	return cachier_exec_as_owner("DELETE FROM cachier.entries"
								 " WHERE function_id OPERATOR(pg_catalog.=) $1"
								 " AND key OPERATOR(pg_catalog.=) $2",
								 2, types, values, NULL, NULL);
}
