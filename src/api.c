/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL-callable functions of the cached call path: cachier_wrap,
 *	  cachier_clear, cachier_precache and cachier.call_* (the body of every
 *	  memoized wrapper).  They only collect arguments, keep per-call-site
 *	  state in fn_extra and call into cached_call.c and resolve.c.
 *
 * Each of cachier_wrap, cachier_clear and cachier_precache has overloads
 * whose arguments are text (VARIADIC text[], and a text value for
 * precache): a bound parameter of unknown type, which a VARIADIC "any" or
 * anyelement parameter cannot take, resolves to them.  Their arguments are
 * read as untyped literals are (ARGS_UNTYPED): by the input function of
 * the parameter they are passed to, so '42' reaches an integer parameter
 * and '2024-01-01' a date.  (The parser marks every call of a VARIADIC
 * text[] function as VARIADIC, so an explicit VARIADIC text array is read
 * the same way.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"

/* How the arguments after fn (and the precached value) were declared. */
typedef enum ArgsForm
{
	ARGS_TYPED,					/* VARIADIC "any" (and value anyelement) */
	ARGS_UNTYPED				/* VARIADIC text[] (and value text) */
} ArgsForm;

/* The arguments of a VARIADIC "any" call, from position "first" on. */
typedef struct GivenArgs
{
	int			n;
	Datum	   *values;
	bool	   *nulls;
	Oid		   *types;
} GivenArgs;

/*
 * State of one cachier_wrap / cachier_clear / cachier_precache call site;
 * it and everything it points to live in site.mcxt, a child of fn_mcxt,
 * freed when the site is prepared again.
 */
typedef struct WrapSite
{
	ResolvedCall *resolved;
	uint64		generation;		/* cachier_proc_generation when resolved */
	CallSite	site;
	FmgrInfo	output;			/* result's output function (cachier_wrap) */
} WrapSite;

static char *
function_name_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the function name must not be NULL"),
				 errhint("Pass a name such as 'my_function', 'my_schema.my_function' or 'my_function(integer)'.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/*
 * Text values as untyped literals: the cstrings that an unknown-type
 * argument carries.
 */
static void
untype_args(GivenArgs *given)
{
	int			i;

	for (i = 0; i < given->n; i++)
	{
		if (!given->nulls[i])
			given->values[i] = CStringGetDatum(TextDatumGetCString(given->values[i]));
		given->types[i] = UNKNOWNOID;
	}
}

/*
 * Collect the variadic arguments.  The text[] overloads (form
 * ARGS_UNTYPED) pass untyped values.  A VARIADIC "any" call written with
 * VARIADIC and an array passes the array's elements, typed as the array is.
 */
static void
given_args(FunctionCallInfo fcinfo, int first, ArgsForm form, GivenArgs *given)
{
	int			i;

	if (form == ARGS_UNTYPED && PG_NARGS() > first)
	{
		/* the parser collected them into one text[] */
		if (PG_ARGISNULL(first))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the VARIADIC argument array must not be NULL")));
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(first), TEXTOID, -1, false,
						  TYPALIGN_INT, &given->values, &given->nulls, &given->n);
		given->types = palloc(sizeof(Oid) * Max(1, given->n));
		untype_args(given);
		return;
	}
	if (PG_NARGS() > first && get_fn_expr_variadic(fcinfo->flinfo))
	{
		Oid			elemtype;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		ArrayType  *arr;

		if (PG_ARGISNULL(first))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the VARIADIC argument array must not be NULL")));
		arr = PG_GETARG_ARRAYTYPE_P(first);
		elemtype = ARR_ELEMTYPE(arr);
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
						  &given->values, &given->nulls, &given->n);
		given->types = palloc(sizeof(Oid) * Max(1, given->n));
		for (i = 0; i < given->n; i++)
			given->types[i] = elemtype;
		return;
	}
	given->n = Max(0, PG_NARGS() - first);
	given->values = palloc(sizeof(Datum) * Max(1, given->n));
	given->nulls = palloc(sizeof(bool) * Max(1, given->n));
	given->types = palloc(sizeof(Oid) * Max(1, given->n));
	for (i = 0; i < given->n; i++)
	{
		given->values[i] = PG_GETARG_DATUM(first + i);
		given->nulls[i] = PG_ARGISNULL(first + i);
		given->types[i] = get_fn_expr_argtype(fcinfo->flinfo, first + i);
		if (!OidIsValid(given->types[i]))
			elog(ERROR, "could not determine the type of argument %d", first + i + 1);
	}
}

static bool
same_resolution(const ResolvedCall *rc, const char *fntext, const GivenArgs *given)
{
	return strcmp(rc->fntext, fntext) == 0 && rc->nsupplied == given->n &&
		memcmp(rc->supplied, given->types, sizeof(Oid) * given->n) == 0;
}

/* A context for one call site, freed with fn_mcxt or when replaced. */
static MemoryContext
site_context(FunctionCallInfo fcinfo)
{
	return AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "cachier call site",
								 ALLOCSET_SMALL_SIZES);
}

/*
 * The call site for fntext and these argument types, prepared if needed:
 * resolved again when pg_proc changed (a new overload may match better),
 * prepared again when the function changed.
 */
static WrapSite *
wrap_site(FunctionCallInfo fcinfo, const char *fntext, const GivenArgs *given)
{
	WrapSite   *old = (WrapSite *) fcinfo->flinfo->fn_extra;
	WrapSite   *ws;
	MemoryContext mcxt;
	Oid			outfn;
	bool		isvarlena;

	if (old && old->generation == cachier_proc_generation &&
		!cachier_callsite_stale(&old->site) &&
		same_resolution(old->resolved, fntext, given))
		return old;
	fcinfo->flinfo->fn_extra = NULL;	/* until it is complete */
	mcxt = site_context(fcinfo);
	ws = MemoryContextAllocZero(mcxt, sizeof(WrapSite));
	ws->generation = cachier_proc_generation;
	ws->resolved = cachier_resolve(fntext, given->n, given->types, mcxt);
	cachier_callsite_init(&ws->site, ws->resolved->funcid, mcxt);
	getTypeOutputInfo(ws->site.info->rettype, &outfn, &isvarlena);
	fmgr_info_cxt(outfn, &ws->output, mcxt);
	if (old)
		MemoryContextDelete(old->site.mcxt);
	fcinfo->flinfo->fn_extra = ws;
	return ws;
}

/* The function's own arguments, coerced and with defaults. */
static void
function_args(WrapSite *ws, GivenArgs *given, Datum **values, bool **nulls)
{
	int			nargs = ws->resolved->nargs;

	*values = palloc(sizeof(Datum) * Max(1, nargs));
	*nulls = palloc(sizeof(bool) * Max(1, nargs));
	cachier_resolved_args(ws->resolved, given->values, given->nulls, *values, *nulls);
}

static void
check_owner(Oid funcid)
{
	if (!pg_proc_ownercheck(funcid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FUNCTION, get_func_name(funcid));
}

static Datum
wrap(FunctionCallInfo fcinfo, ArgsForm form)
{
	char	   *fntext = function_name_arg(fcinfo);
	GivenArgs	given;
	WrapSite   *ws;
	Datum	   *values;
	bool	   *nulls;
	Datum		result;
	bool		isnull;

	given_args(fcinfo, 1, form, &given);
	ws = wrap_site(fcinfo, fntext, &given);
	function_args(ws, &given, &values, &nulls);
	result = cachier_cached_call(&ws->site, values, nulls, PG_GET_COLLATION(), &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(OutputFunctionCall(&ws->output, result)));
}

/* cachier_wrap(fn text [, VARIADIC args "any"]) RETURNS text */
PG_FUNCTION_INFO_V1(cachier_wrap);
Datum
cachier_wrap(PG_FUNCTION_ARGS)
{
	return wrap(fcinfo, ARGS_TYPED);
}

/* cachier_wrap(fn text, VARIADIC args text[]) RETURNS text */
PG_FUNCTION_INFO_V1(cachier_wrap_untyped);
Datum
cachier_wrap_untyped(PG_FUNCTION_ARGS)
{
	return wrap(fcinfo, ARGS_UNTYPED);
}

static Datum
clear(FunctionCallInfo fcinfo, ArgsForm form)
{
	char	   *fntext = function_name_arg(fcinfo);
	GivenArgs	given;
	WrapSite   *ws;
	Datum	   *values;
	bool	   *nulls;
	Oid			funcid;

	if (PG_NARGS() == 1)
	{
		funcid = cachier_resolve_name_only(fntext);
		check_owner(funcid);
		PG_RETURN_INT64(cachier_clear_function(funcid));
	}
	given_args(fcinfo, 1, form, &given);
	ws = wrap_site(fcinfo, fntext, &given);
	check_owner(ws->site.funcid);
	function_args(ws, &given, &values, &nulls);
	PG_RETURN_INT64(cachier_clear_call(&ws->site, values, nulls));
}

/* cachier_clear(fn text [, VARIADIC args "any"]) RETURNS bigint */
PG_FUNCTION_INFO_V1(cachier_clear);
Datum
cachier_clear(PG_FUNCTION_ARGS)
{
	return clear(fcinfo, ARGS_TYPED);
}

/* cachier_clear(fn text, VARIADIC args text[]) RETURNS bigint */
PG_FUNCTION_INFO_V1(cachier_clear_untyped);
Datum
cachier_clear_untyped(PG_FUNCTION_ARGS)
{
	return clear(fcinfo, ARGS_UNTYPED);
}

/*
 * The value to precache as a value of the function's result type: an
 * anyelement by an assignment cast, a text value (an untyped literal or
 * parameter) by the result type's input function.
 */
static Datum
precache_value(FunctionCallInfo fcinfo, ArgsForm form, const FunctionInfo *info)
{
	Oid			infunc;
	Oid			ioparam;

	if (form == ARGS_TYPED)
		return cachier_coerce_value(PG_GETARG_DATUM(1), PG_ARGISNULL(1),
									get_fn_expr_argtype(fcinfo->flinfo, 1),
									info->rettype, info->signature);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	getTypeInputInfo(info->rettype, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, text_to_cstring(PG_GETARG_TEXT_PP(1)),
								ioparam, -1);
}

static Datum
precache(FunctionCallInfo fcinfo, ArgsForm value_form, ArgsForm args_form)
{
	char	   *fntext = function_name_arg(fcinfo);
	GivenArgs	given;
	WrapSite   *ws;
	Datum	   *values;
	bool	   *nulls;
	Datum		value;

	given_args(fcinfo, 2, args_form, &given);
	ws = wrap_site(fcinfo, fntext, &given);
	function_args(ws, &given, &values, &nulls);
	value = precache_value(fcinfo, value_form, ws->site.info);
	PG_RETURN_BOOL(cachier_precache_value(&ws->site, values, nulls, value,
										  PG_ARGISNULL(1)));
}

/* cachier_precache(fn text, value anyelement [, VARIADIC args "any"]) */
PG_FUNCTION_INFO_V1(cachier_precache);
Datum
cachier_precache(PG_FUNCTION_ARGS)
{
	return precache(fcinfo, ARGS_TYPED, ARGS_TYPED);
}

/* cachier_precache(fn text, value text [, VARIADIC args "any"]) */
PG_FUNCTION_INFO_V1(cachier_precache_untyped);
Datum
cachier_precache_untyped(PG_FUNCTION_ARGS)
{
	return precache(fcinfo, ARGS_UNTYPED, ARGS_TYPED);
}

/* cachier_precache(fn text, value text, VARIADIC args text[]) */
PG_FUNCTION_INFO_V1(cachier_precache_untyped_args);
Datum
cachier_precache_untyped_args(PG_FUNCTION_ARGS)
{
	return precache(fcinfo, ARGS_UNTYPED, ARGS_UNTYPED);
}

/* ---------------------------------------------------------------- wrappers */

/*
 * A wrapper passes exactly the function's declared argument types and a
 * NULL of its result type; anything else (a hand-written call) is refused,
 * since the result is returned as that type.
 */
static void
check_wrapper_call(FunctionCallInfo fcinfo, const FunctionInfo *info)
{
	int			i;

	if (PG_NARGS() - 2 != info->nargs ||
		get_fn_expr_argtype(fcinfo->flinfo, 1) != info->rettype)
		goto mismatch;
	for (i = 0; i < info->nargs; i++)
		if (get_fn_expr_argtype(fcinfo->flinfo, i + 2) != info->argtypes[i])
			goto mismatch;
	return;
mismatch:
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("the arguments do not match %s", info->signature),
			 errhint("cachier.call_* functions are called by wrappers made with cachier_memoize(); call the wrapper or cachier_wrap() instead.")));
}

/*
 * The wrapper's call site: kept in fn_extra for the rest of the statement,
 * borrowed from site_pool.c (so a statement reuses what an earlier one
 * prepared), and borrowed again when the function changed.
 */
static CallSite *
wrapper_site(FunctionCallInfo fcinfo, Oid funcid)
{
	CallSite   *old = (CallSite *) fcinfo->flinfo->fn_extra;
	CallSite   *site;
	AclResult	aclresult;

	if (old && old->funcid == funcid && !cachier_callsite_stale(old))
		return old;
	fcinfo->flinfo->fn_extra = NULL;
	if (old)
		cachier_site_release(old);
	aclresult = pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(funcid));
	site = cachier_site_borrow(funcid, fcinfo->flinfo->fn_mcxt);
	check_wrapper_call(fcinfo, site->info);
	fcinfo->flinfo->fn_extra = site;
	return site;
}

/* cachier.call_*(fn regprocedure, result anyelement [, VARIADIC args "any"]) */
PG_FUNCTION_INFO_V1(cachier_call);
Datum
cachier_call(PG_FUNCTION_ARGS)
{
	CallSite   *site;
	Datum		values[FUNC_MAX_ARGS];
	bool		nulls[FUNC_MAX_ARGS];
	Datum		result;
	bool		isnull;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the function to call must not be NULL")));
	site = wrapper_site(fcinfo, PG_GETARG_OID(0));
	for (i = 0; i < site->info->nargs; i++)
	{
		values[i] = PG_GETARG_DATUM(i + 2);
		nulls[i] = PG_ARGISNULL(i + 2);
	}
	result = cachier_cached_call(site, values, nulls, cachier_call_collation(fcinfo, 2),
								 &isnull);
	if (isnull)
		PG_RETURN_NULL();
	return result;
}
