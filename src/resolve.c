/*-------------------------------------------------------------------------
 *
 * resolve.c
 *	  Finds the function that cachier_wrap('name', args...) means, and
 *	  turns the given arguments into that function's declared types.
 *
 * 'name' and 'schema.name' resolve exactly as a direct call with the same
 * argument types would (the parser's own func_get_detail: implicit casts,
 * defaults, unknown-type literals); 'name(int, text)' names one function,
 * and each given argument must be implicitly castable to its parameter.
 * Missing trailing arguments take the function's defaults, so every form
 * of a call reaches the same cache key.
 *
 * A wrapper made by cachier_memoize stands for the function it wraps: its
 * name reaches that function's entries (cachier_wrapped_function).
 *
 * The result is prepared once per call site (in its fn_mcxt): a coercion
 * expression, an input function (for unknown literals) or a default
 * expression per parameter.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "cachier.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/params.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

typedef struct CoercionPlan
{
	int			source;			/* given argument, or -1 for the default */
	Oid			target;
	bool		from_unknown;	/* the given argument is an unknown literal */
	FmgrInfo	input;			/* its target type's input function */
	Oid			ioparam;
	ExprState  *expr;			/* coercion of $1, or the default; or NULL */
} CoercionPlan;

/* ---------------------------------------------------------------- finding */

/*
 * The '(' that starts the argument list of a signature such as
 * 'schema."f(x)"(integer)', or NULL for a bare name: a '(' inside a quoted
 * identifier is part of the name ("" inside quotes is a quote character,
 * which toggling twice leaves correct).
 */
const char *
cachier_signature_paren(const char *fntext)
{
	bool		quoted = false;
	const char *p;

	for (p = fntext; *p; p++)
	{
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '(' && !quoted)
			return p;
	}
	return NULL;
}

static void
report_not_found(List *names, int nargs, Oid *argtypes, FuncDetailCode code)
{
	const char *call = func_signature_string(names, nargs, NIL, argtypes);

	if (code == FUNCDETAIL_MULTIPLE)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("function %s is not unique", call),
				 errhint("Name one function with a signature such as 'f(integer)', or add explicit type casts to the arguments.")));
	if (code == FUNCDETAIL_COERCION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is a type cast, not a function", call),
				 errhint("Call the cast directly; there is nothing to cache.")));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("function %s does not exist", call),
			 errhint("No function matches the given name and argument types. You might need to add explicit type casts.")));
}

/* 'name' or 'schema.name': resolve as the parser would. */
static Oid
find_by_name(const char *fntext, int nsupplied, Oid *supplied, List **defaults)
{
	List	   *names = stringToQualifiedNameList(fntext);
	FuncDetailCode code;
	Oid			funcid;
	Oid			rettype;
	bool		retset;
	int			nvargs;
	Oid			vatype;
	Oid		   *true_types;

	code = func_get_detail(names, NIL, NIL, nsupplied, supplied,
						   false, true, false,
						   &funcid, &rettype, &retset, &nvargs, &vatype,
						   &true_types, defaults);
	if (code == FUNCDETAIL_NORMAL || code == FUNCDETAIL_AGGREGATE ||
		code == FUNCDETAIL_WINDOWFUNC || code == FUNCDETAIL_PROCEDURE)
		return funcid;			/* kinds are refused by the caller's check */
	report_not_found(names, nsupplied, supplied, code);
	return InvalidOid;
}

/* The last n default expressions of a function. */
static List *
trailing_defaults(HeapTuple proctup, int n)
{
	bool		isnull;
	Datum		d;
	List	   *all;

	if (n == 0)
		return NIL;
	d = SysCacheGetAttr(PROCOID, proctup, Anum_pg_proc_proargdefaults, &isnull);
	all = isnull ? NIL : (List *) stringToNode(TextDatumGetCString(d));
	if (list_length(all) < n)
		return NULL;
	return list_copy_tail(all, list_length(all) - n);
}

/* 'name(type, ...)': that function, called with at most its arguments. */
static Oid
find_by_signature(const char *fntext, int nsupplied, List **defaults)
{
	Oid			funcid = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
															  CStringGetDatum(fntext)));
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	int			nargs;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	nargs = ((Form_pg_proc) GETSTRUCT(tuple))->pronargs;
	*defaults = nsupplied <= nargs ? trailing_defaults(tuple, nargs - nsupplied) : NULL;
	ReleaseSysCache(tuple);
	if (nsupplied > nargs || (nsupplied < nargs && *defaults == NIL))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg_plural("%s takes %d argument, %d given",
							   "%s takes %d arguments, %d given",
							   nargs, format_procedure(funcid), nargs, nsupplied),
				 errhint("Pass one value per parameter; only parameters with defaults may be left out.")));
	return funcid;
}

/* ---------------------------------------------------------------- wrappers */

/* A function with a BEGIN ATOMIC body, as every cachier wrapper has. */
static bool
has_sql_body(Oid funcid)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	result = ((Form_pg_proc) GETSTRUCT(tuple))->prolang == SQLlanguageId &&
		!heap_attisnull(tuple, Anum_pg_proc_prosqlbody, NULL);
	ReleaseSysCache(tuple);
	return result;
}

/*
 * The function that funcid is the cachier wrapper of, or InvalidOid.
 *
 * A wrapper's body names its function, so pg_depend records a normal
 * dependency of the wrapper on it; the wrapper is that function's if the
 * function's options (function_info.c, whatever the storage of
 * cachier.functions) record it as its wrapper.  This is the one place
 * where the API asks "is this a wrapper?".
 */
Oid
cachier_wrapped_function(Oid funcid)
{
	Relation	rel;
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			wrapped = InvalidOid;
	List	   *candidates = NIL;
	ListCell   *lc;

	if (!has_sql_body(funcid))
		return InvalidOid;
	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&skey[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ProcedureRelationId));
	ScanKeyInit(&skey[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(funcid));
	scan = systable_beginscan(rel, DependDependerIndexId, true, NULL, 2, skey);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tuple);

		if (dep->refclassid == ProcedureRelationId && dep->deptype == DEPENDENCY_NORMAL &&
			dep->refobjid != funcid &&
			get_func_namespace(dep->refobjid) != cachier_relations()->schema)
			candidates = lappend_oid(candidates, dep->refobjid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	foreach(lc, candidates)
	{
		Oid			candidate = lfirst_oid(lc);

		if (cachier_function_wrapper(candidate) == funcid)
		{
			wrapped = candidate;
			break;
		}
	}
	list_free(candidates);
	return wrapped;
}

/* funcid, or the function it is the wrapper of */
static Oid
unwrap(Oid funcid)
{
	Oid			wrapped = cachier_wrapped_function(funcid);

	return OidIsValid(wrapped) ? wrapped : funcid;
}

/* ---------------------------------------------------------------- coercing */

/* $1 of the given type: the value a coercion expression works on */
static Param *
value_param(Oid type)
{
	Param	   *param = makeNode(Param);

	param->paramkind = PARAM_EXTERN;
	param->paramid = 1;
	param->paramtype = type;
	param->paramtypmod = -1;
	param->paramcollid = get_typcollation(type);
	param->location = -1;
	return param;
}

static ExprState *
prepare_expr(Expr *expr, ParamListInfo params)
{
	expr = expression_planner(expr);
	return ExecInitExprWithParams(expr, params);
}

static void
plan_given(ResolvedCall *rc, CoercionPlan *plan, int i, ParamListInfo params)
{
	Oid			from = rc->supplied[i];
	Param	   *param;
	Node	   *coerced;

	plan->source = i;
	if (from == plan->target)
		return;
	if (from == UNKNOWNOID)
	{
		Oid			infunc;

		getTypeInputInfo(plan->target, &infunc, &plan->ioparam);
		fmgr_info(infunc, &plan->input);
		plan->from_unknown = true;
		return;
	}
	param = value_param(from);
	coerced = coerce_to_target_type(NULL, (Node *) param, from, plan->target, -1,
									COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);
	if (coerced == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("argument %d of type %s cannot be passed as %s to %s",
						i + 1, format_type_be(from), format_type_be(plan->target),
						format_procedure(rc->funcid)),
				 errhint("Add an explicit type cast to the argument.")));
	plan->expr = prepare_expr((Expr *) coerced, params);
}

static void
check_execute(Oid funcid)
{
	AclResult	aclresult = pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(funcid));
}

/*
 * Resolve fntext for arguments of the given types, check that the caller
 * may execute it and that cachier can cache it, and prepare coercions.
 */
ResolvedCall *
cachier_resolve(const char *fntext, int nsupplied, Oid *supplied, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	ResolvedCall *rc = palloc0(sizeof(ResolvedCall));
	List	   *defaults = NIL;
	ParamListInfo params;
	ListCell   *lc;
	Oid		   *declared;
	int			ndeclared;
	int			i;

	rc->fntext = pstrdup(fntext);
	rc->nsupplied = nsupplied;
	rc->supplied = palloc(sizeof(Oid) * Max(1, nsupplied));
	memcpy(rc->supplied, supplied, sizeof(Oid) * nsupplied);
	rc->funcid = cachier_signature_paren(fntext) ?
		find_by_signature(fntext, nsupplied, &defaults) :
		find_by_name(fntext, nsupplied, supplied, &defaults);
	/* a wrapper is called as it would be directly, then stands for fn */
	check_execute(rc->funcid);
	rc->funcid = unwrap(rc->funcid);
	check_execute(rc->funcid);
	cachier_check_cacheable(rc->funcid);

	rc->nargs = get_func_nargs(rc->funcid);
	rc->plan = palloc0(sizeof(CoercionPlan) * Max(1, rc->nargs));
	rc->econtext = CreateStandaloneExprContext();
	params = makeParamList(1);
	rc->econtext->ecxt_param_list_info = params;
	(void) get_func_signature(rc->funcid, &declared, &ndeclared);
	for (i = 0; i < rc->nargs; i++)
		rc->plan[i].target = declared[i];
	for (i = 0; i < rc->nsupplied; i++)
		plan_given(rc, &rc->plan[i], i, params);
	i = rc->nsupplied;
	foreach(lc, defaults)
	{
		rc->plan[i].source = -1;
		rc->plan[i].expr = prepare_expr((Expr *) lfirst(lc), NULL);
		i++;
	}
	MemoryContextSwitchTo(old);
	return rc;
}

/* The function's arguments from the given ones, per the prepared plan. */
void
cachier_resolved_args(ResolvedCall *rc, Datum *in, bool *innulls,
					  Datum *out, bool *outnulls)
{
	ParamExternData *param = &rc->econtext->ecxt_param_list_info->params[0];
	int			i;

	for (i = 0; i < rc->nargs; i++)
	{
		CoercionPlan *plan = &rc->plan[i];

		if (plan->source >= 0 && plan->expr == NULL)
		{
			outnulls[i] = innulls[plan->source];
			out[i] = outnulls[i] ? (Datum) 0 :
				plan->from_unknown ?
				InputFunctionCall(&plan->input, DatumGetCString(in[plan->source]),
								  plan->ioparam, -1) :
				in[plan->source];
			continue;
		}
		if (plan->source >= 0)
		{
			param->value = in[plan->source];
			param->isnull = innulls[plan->source];
			param->ptype = rc->supplied[plan->source];
			param->pflags = PARAM_FLAG_CONST;
		}
		out[i] = ExecEvalExpr(plan->expr, rc->econtext, &outnulls[i]);
	}
}

/*
 * A function named without arguments: 'name', 'schema.name' or a
 * signature; a wrapper's name means the function it wraps.
 */
Oid
cachier_resolve_name_only(const char *fntext)
{
	return unwrap(DatumGetObjectId(DirectFunctionCall1(cachier_signature_paren(fntext) ?
													   regprocedurein : regprocin,
													   CStringGetDatum(fntext))));
}

/*
 * value, of type "from", as a value of type "to" by an assignment cast (as
 * INSERT would do); a clear error when there is none.
 */
Datum
cachier_coerce_value(Datum value, bool isnull, Oid from, Oid to, const char *what)
{
	Param	   *param;
	Node	   *coerced;
	ExprContext *econtext;
	ParamListInfo params;
	ExprState  *state;
	bool		resnull;

	if (from == to)
		return value;
	param = value_param(from);
	coerced = coerce_to_target_type(NULL, (Node *) param, from, to, -1,
									COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
	if (coerced == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a value of type %s cannot be stored as the result of %s",
						format_type_be(from), what),
				 errdetail("The function returns %s.", format_type_be(to)),
				 errhint("Cast the value to %s.", format_type_be(to))));
	params = makeParamList(1);
	params->params[0].value = value;
	params->params[0].isnull = isnull;
	params->params[0].ptype = from;
	params->params[0].pflags = PARAM_FLAG_CONST;
	econtext = CreateStandaloneExprContext();
	econtext->ecxt_param_list_info = params;
	state = prepare_expr((Expr *) coerced, params);
	value = ExecEvalExpr(state, econtext, &resnull);
	FreeExprContext(econtext, true);
	return value;
}
