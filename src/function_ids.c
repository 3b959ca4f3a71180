/*-------------------------------------------------------------------------
 *
 * function_ids.c
 *	  How storage names a function: a fixed-width id from
 *	  cachier.function_ids, which records the function's identity (its
 *	  schema-qualified signature, e.g. "public.f(integer)") and a hint, the
 *	  OID that identity resolved to last.
 *
 * pg_upgrade and pg_dump keep names but not function OIDs, so nothing
 * stored holds an OID that is trusted: an id is found from a function's
 * identity (cachier_function_info does that once per definition and keeps
 * it in FunctionInfo.fn_id), and an id is turned back into an OID through
 * the hint, checked against the identity, or by resolving the identity
 * again when the hint no longer names it.
 *
 * Renames: before a command that can rename a function (ALTER FUNCTION,
 * ALTER SCHEMA, ALTER TYPE, ...) cachier_check_hints makes every hint
 * right; after it, cachier_follow_renames gives each row whose function's
 * identity changed its new identity (the event triggers call both).
 *
 * Installed SQL objects older than 0.5 (the library was updated, ALTER
 * EXTENSION UPDATE not run yet) have no cachier.function_ids: then no
 * function has an id, so the table tier finds nothing and stores nothing
 * until the update, and options are read by OID as before.
 *
 * Rules: registration runs as the storage owner (owner_exec.c); lookups
 * read with SnapshotSelf, as the options do; nothing here runs in an
 * invalidation callback.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "cachier.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* column numbers of cachier.function_ids */
#define Col_id			1
#define Col_identity	2
#define Col_fn			3

/* ---------------------------------------------------------------- identity */

/* The identity of funcid, or NULL if there is no such function. */
char *
cachier_function_identity(Oid funcid)
{
	return format_procedure_extended(funcid, FORMAT_PROC_FORCE_QUALIFY |
									 FORMAT_PROC_INVALID_AS_NULL);
}

/* Whether hint is the OID of the function whose identity is identity. */
static bool
hint_names(Oid hint, const char *identity)
{
	char	   *now = OidIsValid(hint) ? cachier_function_identity(hint) : NULL;

	return now != NULL && strcmp(now, identity) == 0;
}

typedef struct Resolve
{
	const char *identity;
	Oid			funcid;
} Resolve;

static void
resolve_work(void *arg)
{
	Resolve    *r = (Resolve *) arg;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	int			nestlevel = cachier_pin_search_path();

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(r->identity);
	fcinfo->args[0].isnull = false;
	result = to_regprocedure(fcinfo);
	r->funcid = fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
	cachier_unpin_search_path(nestlevel);
}

/*
 * The function an identity names now, or InvalidOid.  An identity whose
 * argument type no longer exists is an error in to_regprocedure: caught,
 * in a subtransaction, except in parallel mode where it cannot start one.
 */
static Oid
resolve_identity(const char *identity)
{
	Resolve		r = {identity, InvalidOid};
	ErrorData  *error;

	if (IsInParallelMode())
		return InvalidOid;
	if (!cachier_run_guarded(resolve_work, &r, &error))
	{
		FreeErrorData(error);
		return InvalidOid;
	}
	return r.funcid;
}

/* ---------------------------------------------------------------- lookups */

bool
cachier_storage_legacy(void)
{
	return !OidIsValid(cachier_relations()->function_ids);
}

/*
 * Scan cachier.function_ids by one column (its unique index) with
 * snapshot; the row's id, identity (palloc'd) and hint, or 0.
 */
static int32
scan_ids(int attno, Oid index, RegProcedure eqproc, Datum value, Snapshot snapshot,
		 char **identity, Oid *hint, bool *busy)
{
	Relation	rel = table_open(cachier_relations()->function_ids, AccessShareLock);
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tuple;
	int32		id = 0;

	ScanKeyInit(&skey, attno, BTEqualStrategyNumber, eqproc, value);
	scan = systable_beginscan(rel, index, true, snapshot, 1, &skey);
	while (id == 0 && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;

		if (busy && snapshot->snapshot_type == SNAPSHOT_DIRTY)
		{
			*busy = TransactionIdIsValid(snapshot->xmin) ||
				TransactionIdIsValid(snapshot->xmax);
			break;
		}
		id = DatumGetInt32(heap_getattr(tuple, Col_id, desc, &isnull));
		if (identity)
			*identity = TextDatumGetCString(heap_getattr(tuple, Col_identity, desc, &isnull));
		if (hint)
			*hint = DatumGetObjectId(heap_getattr(tuple, Col_fn, desc, &isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return id;
}

/* The id recorded for identity, or 0. */
int32
cachier_lookup_fn_id(const char *identity)
{
	if (cachier_storage_legacy())
		return 0;
	return scan_ids(Col_identity, cachier_relations()->function_ids_identity, F_TEXTEQ,
					CStringGetTextDatum(identity), SnapshotSelf, NULL, NULL, NULL);
}

/*
 * The function that id names now, or InvalidOid (it was dropped, or its
 * identity does not resolve).  In legacy storage ids are OIDs.
 */
Oid
cachier_fn_id_oid(int32 id)
{
	char	   *identity = NULL;
	Oid			hint = InvalidOid;

	if (cachier_storage_legacy())
		return (Oid) id;
	if (scan_ids(Col_id, cachier_relations()->function_ids_pkey, F_INT4EQ,
				 Int32GetDatum(id), SnapshotSelf, &identity, &hint, NULL) == 0)
		return InvalidOid;
	if (hint_names(hint, identity))
		return hint;
	return resolve_identity(identity);
}

/* ---------------------------------------------------------------- registration */

/*
 * The id of funcid, registering the function if it has none yet; 0 when
 * the storage is older than 0.5, or when another transaction is
 * registering it right now and wait is false (a store then skips the entry
 * rather than wait; with wait, as for cachier_configure, the insert waits
 * for that transaction).  Runs the insert as the storage owner in the
 * caller's (sub)transaction; other backends read their ids again after it
 * commits.
 */
int32
cachier_register_function(Oid funcid, bool wait)
{
	char	   *signature = cachier_function_identity(funcid);
	const CachierRelations *rels;
	SnapshotData dirty;
	bool		busy = false;
	int32		id;
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	List	   *ids;

	if (cachier_storage_legacy() || signature == NULL)
		return 0;
	rels = cachier_relations();
	id = cachier_lookup_fn_id(signature);
	if (id != 0)
		return id;
	InitDirtySnapshot(dirty);
	if (!wait)
		(void) scan_ids(Col_identity, rels->function_ids_identity, F_TEXTEQ,
						CStringGetTextDatum(signature), &dirty, NULL, NULL, &busy);
	if (busy)
		return 0;
	values[0] = CStringGetTextDatum(signature);
	values[1] = ObjectIdGetDatum(funcid);
	cachier_exec_as_owner("INSERT INTO cachier.function_ids (identity, fn) VALUES ($1, $2)"
						  " ON CONFLICT (identity) DO NOTHING RETURNING id",
						  2, types, values, NULL, &ids);
	if (ids == NIL)				/* registered by a transaction that committed */
		return cachier_lookup_fn_id(signature);
	id = (int32) linitial_oid(ids);
	CacheInvalidateRelcacheByRelid(rels->function_ids);
	return id;
}

/* ---------------------------------------------------------------- renames */

/*
 * The statement whose command start checked the hints: renames are
 * followed at its end only, where every hint is known to be right.
 */
static LocalTransactionId hints_checked_lxid = InvalidLocalTransactionId;
static TimestampTz hints_checked_at = 0;

typedef struct IdRow
{
	int32		id;
	char	   *identity;
	Oid			hint;
} IdRow;

/* Every row of cachier.function_ids, in the caller's memory context. */
static List *
all_rows(void)
{
	Relation	rel = table_open(cachier_relations()->function_ids, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, NULL);
	HeapTuple	tuple;
	List	   *rows = NIL;

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		IdRow	   *row = palloc(sizeof(IdRow));
		bool		isnull;

		row->id = DatumGetInt32(heap_getattr(tuple, Col_id, desc, &isnull));
		row->identity = TextDatumGetCString(heap_getattr(tuple, Col_identity, desc, &isnull));
		row->hint = DatumGetObjectId(heap_getattr(tuple, Col_fn, desc, &isnull));
		rows = lappend(rows, row);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return rows;
}

static void
update_row(const char *column, Oid type, Datum value, int32 id)
{
	Oid			types[2] = {type, INT4OID};
	Datum		values[2] = {value, Int32GetDatum(id)};

	cachier_exec_as_owner(psprintf("UPDATE cachier.function_ids SET %s = $1"
								   " WHERE id OPERATOR(pg_catalog.=) $2", column),
						  2, types, values, NULL, NULL);
}

/*
 * cachier.check_hints(), at the start of a command that may rename
 * functions: every hint that no longer names its row's function is
 * resolved again from the identity (InvalidOid if the identity names no
 * function: a row left over, which no rename may then touch).
 */
PG_FUNCTION_INFO_V1(cachier_check_hints);
Datum
cachier_check_hints(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	if (cachier_storage_legacy())
		PG_RETURN_VOID();
	foreach(lc, all_rows())
	{
		IdRow	   *row = lfirst(lc);
		Oid			now;

		if (hint_names(row->hint, row->identity))
			continue;
		/* InvalidOid when it names no function: then no rename follows it */
		now = resolve_identity(row->identity);
		if (now != row->hint)
			update_row("fn", OIDOID, ObjectIdGetDatum(now), row->id);
	}
	hints_checked_lxid = MyProc->lxid;
	hints_checked_at = GetCurrentStatementStartTimestamp();
	PG_RETURN_VOID();
}

/*
 * cachier.follow_renames(), at the end of such a command: a row whose
 * function (its hint, right since the command started) has another
 * identity now, while the old identity names no function, takes the new
 * identity.  A row left over under that new identity (it names no
 * function any more) goes.
 */
PG_FUNCTION_INFO_V1(cachier_follow_renames);
Datum
cachier_follow_renames(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	if (cachier_storage_legacy() || hints_checked_lxid != MyProc->lxid ||
		hints_checked_at != GetCurrentStatementStartTimestamp())
		PG_RETURN_VOID();
	foreach(lc, all_rows())
	{
		IdRow	   *row = lfirst(lc);
		char	   *now = cachier_function_identity(row->hint);
		Oid			types[1] = {TEXTOID};
		Datum		values[1];

		if (now == NULL || strcmp(now, row->identity) == 0 ||
			OidIsValid(resolve_identity(row->identity)))
			continue;
		values[0] = CStringGetTextDatum(now);
		cachier_exec_as_owner("DELETE FROM cachier.function_ids"
							  " WHERE identity OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, NULL);
		update_row("identity", TEXTOID, values[0], row->id);
		/* keys hold the identity: the old entries can never be found again */
		types[0] = INT4OID;
		values[0] = Int32GetDatum(row->id);
		cachier_exec_as_owner("DELETE FROM cachier.entries WHERE fn_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, NULL);
	}
	CacheInvalidateRelcacheByRelid(cachier_relations()->function_ids);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- SQL helpers */

/* cachier.function_identity(fn oid) RETURNS text */
PG_FUNCTION_INFO_V1(cachier_function_identity_sql);
Datum
cachier_function_identity_sql(PG_FUNCTION_ARGS)
{
	char	   *identity = cachier_function_identity(PG_GETARG_OID(0));

	if (identity == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(identity));
}

/* cachier.fn_id(fn regprocedure) RETURNS integer: NULL when it has none */
PG_FUNCTION_INFO_V1(cachier_fn_id_sql);
Datum
cachier_fn_id_sql(PG_FUNCTION_ARGS)
{
	char	   *identity = cachier_function_identity(PG_GETARG_OID(0));
	int32		id = identity ? cachier_lookup_fn_id(identity) : 0;

	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(id);
}
