/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The SQL-callable helpers behind the views and the event triggers:
 *	  readable forms of what is stored and a function's effective options.
 *	  (Option storage and wrappers are in memoize.c.)
 *
 * Security rule: these read helpers are revoked from PUBLIC in the install
 * scripts; they change nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "cachier_shared.h"
#include "funcapi.h"
#include "utils/builtins.h"

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
	TupleDesc	desc;
	Datum		values[OPTION_VALUES];
	bool		nulls[OPTION_VALUES] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	/* (the descriptor of an older version has fewer columns: a prefix) */
	cachier_option_values(PG_GETARG_OID(0), values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
