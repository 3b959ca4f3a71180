/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The SQL-callable helpers behind cachier_memoize, cachier_configure,
 *	  cachier_unmemoize and the views: option storage, checks, and readable
 *	  forms of what is stored.
 *
 * Security rule: every function here that changes cachier.functions or
 * cachier.entries checks that the calling role owns the function (or is
 * superuser) before it writes as the storage owner.  The read helpers used
 * by the views are revoked from PUBLIC in the install script.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "cachier_shared.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

static Oid
required_function(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the function must not be NULL"),
				 errhint("Name it as 'my_function(integer)'::regprocedure.")));
	return PG_GETARG_OID(0);
}

static void
check_owner(Oid funcid)
{
	if (!pg_proc_ownercheck(funcid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FUNCTION, get_func_name(funcid));
}

/* The function a wrapper wraps, or InvalidOid if funcid is no wrapper. */
static Oid
wrapped_by(Oid funcid)
{
	return cachier_first_oid_as_owner("SELECT fn FROM cachier.functions WHERE wrapper = $1",
									  REGPROCEDUREOID, ObjectIdGetDatum(funcid));
}

/* cachier.fingerprint(fn regprocedure) RETURNS bigint */
PG_FUNCTION_INFO_V1(cachier_fingerprint);
Datum
cachier_fingerprint(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(cachier_function_info(PG_GETARG_OID(0))->fingerprint);
}

/* cachier.format_args(fn regprocedure, args bytea) RETURNS text */
PG_FUNCTION_INFO_V1(cachier_format_args);
Datum
cachier_format_args(PG_FUNCTION_ARGS)
{
	bytea	   *args = PG_GETARG_BYTEA_PP(1);

	PG_RETURN_TEXT_P(cstring_to_text(cachier_format_args_text(PG_GETARG_OID(0),
															  VARDATA_ANY(args),
															  VARSIZE_ANY_EXHDR(args))));
}

/* cachier.lock_ids(key bigint, OUT classid oid, OUT objid oid) */
PG_FUNCTION_INFO_V1(cachier_lock_ids);
Datum
cachier_lock_ids(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	uint32		classid;
	uint32		objid;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	cachier_lock_key_ids(PG_GETARG_INT64(0), &classid, &objid);
	values[0] = ObjectIdGetDatum(classid);
	values[1] = ObjectIdGetDatum(objid);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* cachier.effective_options(fn regprocedure, OUT ...): options with defaults */
PG_FUNCTION_INFO_V1(cachier_effective_options_sql);
Datum
cachier_effective_options_sql(PG_FUNCTION_ARGS)
{
	FunctionInfo *info = cachier_function_info(PG_GETARG_OID(0));
	EffectiveOptions eff;
	TupleDesc	desc;
	Datum		values[9];
	bool		nulls[9] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	cachier_effective_options(info, &eff);
	values[8] = CStringGetTextDatum(cachier_storage_name(eff.storage));
	nulls[0] = eff.stale_after_us == CACHIER_NEVER;
	values[0] = IntervalPGetDatum(cachier_us_interval(eff.stale_after_us));
	values[1] = BoolGetDatum(eff.next_time);
	values[2] = IntervalPGetDatum(cachier_us_interval(eff.wait_timeout_us));
	values[3] = BoolGetDatum(eff.allow_null);
	nulls[4] = eff.entry_size_limit == CACHIER_NEVER;
	values[4] = Int64GetDatum(eff.entry_size_limit);
	values[5] = BoolGetDatum(eff.cleanup_stale);
	values[6] = IntervalPGetDatum(cachier_us_interval(eff.cleanup_interval_us));
	values[7] = BoolGetDatum(eff.per_role);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* cachier.check_memoizable(fn regprocedure): errors unless fn can be memoized */
PG_FUNCTION_INFO_V1(cachier_check_memoizable);
Datum
cachier_check_memoizable(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);

	check_owner(funcid);
	cachier_check_cacheable(funcid);
	if (OidIsValid(wrapped_by(funcid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is a cachier wrapper", format_procedure(funcid)),
				 errdetail("It wraps %s.", format_procedure(wrapped_by(funcid))),
				 errhint("Memoize or configure the wrapped function instead.")));
	PG_RETURN_VOID();
}

static Datum
interval_option(FunctionCallInfo fcinfo, int argno, const char *name, char *null)
{
	*null = PG_ARGISNULL(argno) ? 'n' : ' ';
	if (PG_ARGISNULL(argno))
		return (Datum) 0;
	(void) cachier_option_interval_us(PG_GETARG_INTERVAL_P(argno), name);
	return PG_GETARG_DATUM(argno);
}

/*
 * cachier.set_options(fn, wrapper, stale_after, next_time, wait_timeout,
 * allow_null, entry_size_limit, cleanup_stale, cleanup_interval, per_role
 * [, storage]) -- storage from version 0.3 on
 * Validates and stores the options (NULL: use the setting) and makes every
 * session reload them at its next call.
 */
PG_FUNCTION_INFO_V1(cachier_set_options);
Datum
cachier_set_options(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	Oid			types[11] = {REGPROCEDUREOID, REGPROCEDUREOID, INTERVALOID, BOOLOID,
	INTERVALOID, BOOLOID, INT8OID, BOOLOID, INTERVALOID, BOOLOID, TEXTOID};
	Datum		values[11];
	char		nulls[11];
	int			nargs = Min(PG_NARGS(), 11);
	bool		with_storage = nargs > 10;	/* the 0.3 signature */
	int			i;

	check_owner(funcid);
	memset(nulls, 'n', sizeof(nulls));
	for (i = 0; i < nargs; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	values[2] = interval_option(fcinfo, 2, "stale_after", &nulls[2]);
	values[4] = interval_option(fcinfo, 4, "wait_timeout", &nulls[4]);
	values[8] = interval_option(fcinfo, 8, "cleanup_interval", &nulls[8]);
	if (!PG_ARGISNULL(6))
	{
		int64		limit = cachier_parse_size(text_to_cstring(PG_GETARG_TEXT_PP(6)),
											   "entry_size_limit");

		nulls[6] = limit == CACHIER_NEVER ? 'n' : ' ';
		values[6] = Int64GetDatum(limit);
	}
	if (with_storage && !PG_ARGISNULL(10))
		values[10] = CStringGetTextDatum(cachier_storage_name(
											cachier_parse_storage(text_to_cstring(PG_GETARG_TEXT_PP(10)))));
	cachier_exec_as_owner(psprintf("INSERT INTO cachier.functions AS f (fn, wrapper, stale_after,"
								   " next_time, wait_timeout, allow_null, entry_size_limit,"
								   " cleanup_stale, cleanup_interval, per_role%s)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10%s)"
								   " ON CONFLICT (fn) DO UPDATE SET wrapper = excluded.wrapper,"
								   " stale_after = excluded.stale_after, next_time = excluded.next_time,"
								   " wait_timeout = excluded.wait_timeout, allow_null = excluded.allow_null,"
								   " entry_size_limit = excluded.entry_size_limit,"
								   " cleanup_stale = excluded.cleanup_stale,"
								   " cleanup_interval = excluded.cleanup_interval,"
								   " per_role = excluded.per_role,%s updated_at = now()",
								   with_storage ? ", storage" : "",
								   with_storage ? ", $11" : "",
								   with_storage ? " storage = excluded.storage," : ""),
						  with_storage ? 11 : 10, types, values, nulls, NULL);
	CacheInvalidateRelcacheByRelid(cachier_relations()->functions);
	/* new cleanup options: the background worker plans again after commit */
	cachier_database_due_at_commit();
	PG_RETURN_VOID();
}

/* cachier.wrapper_of(fn regprocedure) RETURNS regprocedure */
PG_FUNCTION_INFO_V1(cachier_wrapper_of);
Datum
cachier_wrapper_of(PG_FUNCTION_ARGS)
{
	Oid			wrapper = cachier_function_info(PG_GETARG_OID(0))->options.wrapper;

	if (!OidIsValid(wrapper))
		PG_RETURN_NULL();
	PG_RETURN_OID(wrapper);
}

/*
 * cachier.forget(fn regprocedure) RETURNS regprocedure
 * Removes the options and entries of fn (or of the function that fn wraps)
 * and returns the wrapper for the caller to drop.
 */
PG_FUNCTION_INFO_V1(cachier_forget);
Datum
cachier_forget(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	Oid			target = wrapped_by(funcid);
	Oid			types[1] = {REGPROCEDUREOID};
	Datum		values[1];
	Oid			wrapper;

	if (OidIsValid(target))
		funcid = target;
	check_owner(funcid);
	values[0] = ObjectIdGetDatum(funcid);
	cachier_exec_as_owner("DELETE FROM cachier.entries WHERE function_id = $1",
						  1, types, values, NULL, NULL);
	wrapper = cachier_first_oid_as_owner("DELETE FROM cachier.functions WHERE fn = $1 RETURNING wrapper",
										 REGPROCEDUREOID, values[0]);
	CacheInvalidateRelcacheByRelid(cachier_relations()->functions);
	if (!OidIsValid(wrapper))
		PG_RETURN_NULL();
	PG_RETURN_OID(wrapper);
}
