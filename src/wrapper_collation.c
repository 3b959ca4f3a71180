/*-------------------------------------------------------------------------
 *
 * wrapper_collation.c
 *	  Keeps the collation of a call of a cachier wrapper.
 *
 * A wrapper (memoize.c) is an SQL function whose body, parsed when it was
 * created (BEGIN ATOMIC, so that it depends on its function and survives
 * pg_dump), calls cachier.call_*; that inner call's collation was fixed
 * then, to the default.  When the planner inlines the wrapper, the inner
 * call's arguments are the caller's expressions and cachier_call_collation
 * (context_key.c) reads the collation from them, but not whether it was
 * written with COLLATE (which decides between two different ones); and a
 * wrapper that is not inlined (an IMMUTABLE one called with constants is
 * evaluated first; one given its own SET clause never is) runs through
 * the SQL function executor, where nothing of the caller's collation is
 * left.
 *
 * So, before planning, a call of a wrapper under a collation other than
 * the default is replaced by the body's call of cachier.call_* with the
 * wrapper's arguments and the call's collation: what inlining does, with
 * the collation kept.  This is done only where the caller may execute
 * the wrapper (else the call is left to fail as it would), and the plan
 * still depends on the wrapper (a PlanInvalItem), so changing or dropping
 * it replans.  Calls under the default collation are left alone.
 *
 * Needs the library loaded before the query is planned: with
 * shared_preload_libraries always; otherwise from the second statement of
 * a session on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "cachier.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/planner.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static planner_hook_type prev_planner = NULL;

typedef struct Rewrite
{
	List	   *wrappers;		/* OIDs of the wrappers replaced */
} Rewrite;

/* The body's call of cachier.call_* if funcid is a wrapper; else NULL. */
static FuncExpr *
wrapper_body(Oid funcid)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	bool		isnull;
	Datum		body;
	Node	   *n;
	Query	   *q;
	FuncExpr   *call = NULL;
	char	   *schema;

	if (!HeapTupleIsValid(tuple))
		return NULL;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	body = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosqlbody, &isnull);
	if (proc->prolang != SQLlanguageId || proc->proretset || isnull)
	{
		ReleaseSysCache(tuple);
		return NULL;
	}
	n = stringToNode(TextDatumGetCString(body));
	ReleaseSysCache(tuple);
	if (IsA(n, List))
		n = linitial(linitial_node(List, (List *) n));
	if (!IsA(n, Query))
		return NULL;
	q = (Query *) n;
	if (q->commandType != CMD_SELECT || q->rtable != NIL || list_length(q->targetList) != 1)
		return NULL;
	n = (Node *) ((TargetEntry *) linitial(q->targetList))->expr;
	if (!IsA(n, FuncExpr))
		return NULL;
	call = (FuncExpr *) n;
	schema = get_namespace_name(get_func_namespace(call->funcid));
	if (schema == NULL || strcmp(schema, "cachier") != 0 ||
		strncmp(get_func_name(call->funcid), "call_", 5) != 0)
		return NULL;
	return call;
}

typedef struct Substitute
{
	List	   *args;
} Substitute;

static Node *
substitute_params(Node *node, Substitute *sub)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN)
	{
		Param	   *p = (Param *) node;

		if (p->paramid < 1 || p->paramid > list_length(sub->args))
			elog(ERROR, "a cachier wrapper refers to parameter $%d", p->paramid);
		return copyObject(list_nth(sub->args, p->paramid - 1));
	}
	return expression_tree_mutator(node, substitute_params, sub);
}

/* Replace f, a call of a wrapper under a non-default collation, in place. */
static void
rewrite_call(FuncExpr *f, Rewrite *rw)
{
	FuncExpr   *call;
	Substitute	sub;
	ListCell   *lc;

	foreach(lc, f->args)
		if (IsA(lfirst(lc), NamedArgExpr))
			return;				/* left to the planner's usual path */
	if (list_length(f->args) != get_func_nargs(f->funcid))
		return;					/* defaults to insert: likewise */
	call = wrapper_body(f->funcid);
	if (call == NULL || pg_proc_aclcheck(f->funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		return;
	sub.args = f->args;
	call = (FuncExpr *) substitute_params((Node *) call, &sub);
	rw->wrappers = lappend_oid(rw->wrappers, f->funcid);
	call->inputcollid = f->inputcollid;
	call->funccollid = f->funccollid;
	call->location = f->location;
	memcpy(f, call, sizeof(FuncExpr));
}

/*
 * A call without an input collation whose inputs have collations: they
 * conflict, and the call must keep having none (the wrapper's inner call
 * would otherwise pick one of them).
 */
static bool
conflicting_inputs(FuncExpr *f)
{
	ListCell   *lc;

	foreach(lc, f->args)
		if (OidIsValid(exprCollation((Node *) lfirst(lc))))
			return true;
	return false;
}

static bool
rewrite_walker(Node *node, Rewrite *rw)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, rewrite_walker, rw, 0);
	if (expression_tree_walker(node, rewrite_walker, rw))
		return true;
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;

		if (f->funcid >= FirstNormalObjectId && f->inputcollid != DEFAULT_COLLATION_OID &&
			(OidIsValid(f->inputcollid) || conflicting_inputs(f)))
			rewrite_call(f, rw);
	}
	return false;
}

static PlannedStmt *
planner_keeping_collations(Query *parse, const char *query_string, int cursorOptions,
						   ParamListInfo boundParams)
{
	Rewrite		rw = {NIL};
	PlannedStmt *result;
	ListCell   *lc;

	(void) query_tree_walker(parse, rewrite_walker, &rw, 0);
	if (prev_planner)
		result = prev_planner(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);
	foreach(lc, rw.wrappers)
	{
		PlanInvalItem *item = makeNode(PlanInvalItem);

		item->cacheId = PROCOID;
		item->hashValue = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(lfirst_oid(lc)));
		result->invalItems = lappend(result->invalItems, item);
	}
	return result;
}

/* Called from cachier_key_init (_PG_init). */
void
cachier_wrapper_collation_init(void)
{
	prev_planner = planner_hook;
	planner_hook = planner_keeping_collations;
}
