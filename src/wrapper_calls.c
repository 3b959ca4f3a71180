/*-------------------------------------------------------------------------
 *
 * wrapper_calls.c
 *	  Replaces calls of cachier wrappers by their body before planning.
 *
 * A wrapper (memoize.c) is an SQL function whose body, parsed when it was
 * created (BEGIN ATOMIC, so that it depends on its function and survives
 * pg_dump), is one call of cachier.call_*.  Left to the planner, a call of
 * it is inlined, which costs reading the body back from its stored node
 * tree in every statement that is planned (simple protocol: every
 * statement), and loses the call's collation: the inner call's collation
 * was fixed to the default when the body was parsed, and a wrapper that is
 * not inlined runs through the SQL function executor, where nothing of
 * the caller's collation is left.
 *
 * So, before planning, a call of a wrapper is replaced by the body's call
 * of cachier.call_* with the wrapper's arguments and the call's own
 * collation: what inlining does, without reading the body each time and
 * with the collation kept.  The body of each function seen is remembered
 * per backend (or that it is not a wrapper) until any pg_proc
 * invalidation.  Only calls that inlining would also replace are
 * replaced: a plain SQL wrapper (not STRICT, no SET clause, not SECURITY
 * DEFINER, as volatile as its body, whose body has the shape memoize.c
 * gives it), called with all its arguments by position, by a caller that
 * may execute it (else the call is left to fail as it would), with no
 * fmgr hook (sepgsql) that wants to see its calls.  The plan
 * still depends on the wrapper (a PlanInvalItem), so changing or dropping
 * it replans.
 *
 * Needs the library loaded before the query is planned: with
 * shared_preload_libraries always; otherwise from the second statement of
 * a session on (until then the planner inlines as usual).
 *
 * Memory: a body is parsed in scratch memory and only its call kept, in
 * a context of its own; a pg_proc invalidation only marks the cache
 * outdated (it may arrive in the middle of a lookup), and the next lookup
 * empties it.
 *
 * Locking: none; catalog reads through the syscache only.
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
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/planner.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

static planner_hook_type prev_planner = NULL;

typedef struct Rewrite
{
	List	   *wrappers;		/* OIDs of the wrappers replaced */
} Rewrite;

/* What a function is to this file: a wrapper (with its body) or not. */
typedef struct KnownFunction
{
	Oid			funcid;			/* hash key */
	FuncExpr   *call;			/* the body's call of cachier.call_*, or NULL */
	int			nargs;
} KnownFunction;

#define MAX_KNOWN_FUNCTIONS 4096

static HTAB *known = NULL;		/* in known_cxt; emptied by any pg_proc change */
static MemoryContext known_cxt = NULL;
static uint64 known_generation = 0;	/* moved by every pg_proc change */
static uint64 known_filled_at = 0;	/* known_generation when known was current */

/* Whether the cachier.call_* function callid is one of the entry points. */
static bool
is_entry_point(Oid callid)
{
	char	   *schema = get_namespace_name(get_func_namespace(callid));
	char	   *name = get_func_name(callid);

	return schema != NULL && name != NULL && strcmp(schema, "cachier") == 0 &&
		strncmp(name, "call_", 5) == 0;
}

/*
 * Whether call has the shape cachier_memoize gives a wrapper's body:
 * cachier.call_*(fn, NULL::result, $1, ..., $nargs), each parameter once
 * and in order, so that putting the call's arguments in their place
 * evaluates each exactly once, as the wrapper would.
 */
static bool
memoize_shape(FuncExpr *call, int nargs)
{
	ListCell   *lc;
	int			i = 0;

	if (list_length(call->args) != nargs + 2 || call->funcvariadic)
		return false;
	foreach(lc, call->args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (i >= 2 && !(IsA(arg, Param) && ((Param *) arg)->paramkind == PARAM_EXTERN &&
						((Param *) arg)->paramid == i - 1))
			return false;
		if (i < 2 && !IsA(arg, Const))
			return false;
		i++;
	}
	return true;
}

/*
 * The body's call of cachier.call_* if funcid is a wrapper that inlining
 * would replace (plain SQL, BEGIN ATOMIC, not STRICT, no SET clause, not
 * SECURITY DEFINER, not returning record, as volatile as its body's call)
 * and whose body has the shape cachier_memoize gives it; NULL otherwise.
 * In the current memory context.
 */
static FuncExpr *
read_body(Oid funcid, int *nargs)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	bool		isnull;
	Datum		body;
	Node	   *n;
	Query	   *q;
	char		volatility;

	if (!HeapTupleIsValid(tuple))
		return NULL;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	*nargs = proc->pronargs;
	volatility = proc->provolatile;
	body = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosqlbody, &isnull);
	if (isnull || proc->prolang != SQLlanguageId || proc->proretset ||
		proc->prorettype == RECORDOID ||
		proc->proisstrict || proc->prosecdef || proc->prokind != PROKIND_FUNCTION ||
		!heap_attisnull(tuple, Anum_pg_proc_proconfig, NULL))
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
	if (q->commandType != CMD_SELECT || q->rtable != NIL || list_length(q->targetList) != 1 ||
		q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs || q->hasSubLinks ||
		q->cteList != NIL || q->groupClause != NIL || q->groupingSets != NIL ||
		q->havingQual != NULL || q->distinctClause != NIL || q->sortClause != NIL ||
		q->limitCount != NULL || q->limitOffset != NULL || q->setOperations != NULL ||
		(q->jointree != NULL && q->jointree->quals != NULL))
		return NULL;
	n = (Node *) ((TargetEntry *) linitial(q->targetList))->expr;
	if (!IsA(n, FuncExpr) || !is_entry_point(((FuncExpr *) n)->funcid) ||
		!memoize_shape((FuncExpr *) n, *nargs) ||
		func_volatile(((FuncExpr *) n)->funcid) != volatility)
		return NULL;
	return (FuncExpr *) n;
}

/*
 * Any pg_proc change: what is known is forgotten at the next lookup, not
 * here (this may run in the middle of one, while its memory is in use).
 */
static void
forget_known(Datum arg, int cacheid, uint32 hashvalue)
{
	known_generation++;
}

/* Empty the cache if a pg_proc change came since it was filled. */
static void
drop_if_outdated(void)
{
	if (known_cxt != NULL && known_filled_at != known_generation)
	{
		MemoryContextReset(known_cxt);
		known = NULL;
	}
	known_filled_at = known_generation;
}

/*
 * What funcid is (remembered until a pg_proc change).  The entry and the
 * body it points to stay valid until the next call of this function.
 */
static KnownFunction *
known_function(Oid funcid)
{
	KnownFunction *kf;
	FuncExpr   *call;
	int			nargs = 0;
	uint64		generation;
	MemoryContext scratch;
	MemoryContext old;
	bool		found;

	drop_if_outdated();
	if (known != NULL && (kf = hash_search(known, &funcid, HASH_FIND, NULL)) != NULL)
		return kf;
	/* a database with very many functions: start over rather than grow */
	if (known != NULL && hash_get_num_entries(known) >= MAX_KNOWN_FUNCTIONS)
	{
		MemoryContextReset(known_cxt);
		known = NULL;
	}
	if (known_cxt == NULL)
		known_cxt = AllocSetContextCreate(TopMemoryContext, "cachier wrapper bodies",
										  ALLOCSET_SMALL_SIZES);
	/* parsed in scratch memory; only the call is kept */
	generation = known_generation;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "cachier wrapper body",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(scratch);
	call = read_body(funcid, &nargs);
	MemoryContextSwitchTo(old);
	if (generation != known_generation)
	{
		/* a pg_proc change while it was read: use it this once only */
		kf = palloc(sizeof(KnownFunction));
		kf->funcid = funcid;
		kf->nargs = nargs;
		kf->call = call ? copyObject(call) : NULL;
		MemoryContextDelete(scratch);
		return kf;
	}
	if (known == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(KnownFunction);
		ctl.hcxt = known_cxt;
		known = hash_create("cachier wrapper bodies", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	kf = hash_search(known, &funcid, HASH_ENTER, &found);
	kf->nargs = nargs;
	old = MemoryContextSwitchTo(known_cxt);
	kf->call = call ? copyObject(call) : NULL;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	return kf;
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
		return (Node *) list_nth(sub->args, p->paramid - 1);
	}
	return expression_tree_mutator(node, substitute_params, sub);
}

/* Replace f, a call of a function, in place if it is a wrapper's. */
static void
rewrite_call(FuncExpr *f, Rewrite *rw)
{
	KnownFunction *kf = known_function(f->funcid);
	FuncExpr   *call;
	Substitute	sub;
	ListCell   *lc;

	if (kf->call == NULL || f->funcvariadic || list_length(f->args) != kf->nargs)
		return;					/* not a wrapper; defaults to insert: the usual path */
	foreach(lc, f->args)
		if (IsA(lfirst(lc), NamedArgExpr))
			return;				/* likewise */
	/* as inline_function: the caller may execute it, and no hook wants to see it */
	if (pg_proc_aclcheck(f->funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK ||
		FmgrHookIsNeeded(f->funcid))
		return;
	sub.args = f->args;
	call = (FuncExpr *) substitute_params((Node *) kf->call, &sub);
	rw->wrappers = lappend_oid(rw->wrappers, f->funcid);
	call->inputcollid = f->inputcollid;
	call->funccollid = f->funccollid;
	call->location = f->location;
	memcpy(f, call, sizeof(FuncExpr));
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
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid >= FirstNormalObjectId)
		rewrite_call((FuncExpr *) node, rw);
	return false;
}

static PlannedStmt *
planner_replacing_wrappers(Query *parse, const char *query_string, int cursorOptions,
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
cachier_wrapper_calls_init(void)
{
	prev_planner = planner_hook;
	planner_hook = planner_replacing_wrappers;
	CacheRegisterSyscacheCallback(PROCOID, forget_known, (Datum) 0);
}
