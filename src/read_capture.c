/*-------------------------------------------------------------------------
 *
 * read_capture.c
 *	  The relations a computation reads, and the relations a statement
 *	  writes, both seen from one ExecutorStart hook.
 *
 * Every statement the executor runs -- SQL and PL/pgSQL bodies, dynamic
 * EXECUTE, triggers, foreign-key actions -- passes ExecutorStart with its
 * final range table: base tables of views (and the views themselves),
 * partitions and inheritance children, each mapped to its roots
 * (relation_roots.c).  While a cached computation runs (a CaptureFrame
 * pushed by freshness.c) the relations go into the innermost frame; a
 * frame hands what it saw to its parent when popped, so an outer
 * computation knows everything its nested ones read.  Independently, the
 * result relations of any statement are written relations
 * (write_watch.c).
 *
 * Frames live on the C stack of the computing call and are popped in a
 * PG_FINALLY there; an abort forgets them all (the stack is gone).  Their
 * relation arrays live in the context current when the frame was pushed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"

static ExecutorStart_hook_type prev_executor_start = NULL;
static CaptureFrame *top = NULL;

void
cachier_capture_push(CaptureFrame *frame)
{
	frame->parent = top;
	frame->mcxt = CurrentMemoryContext;
	frame->nrels = 0;
	frame->maxrels = 0;
	frame->rels = NULL;
	frame->untrackable = REL_TRACKABLE;
	frame->untrackable_rel = InvalidOid;
	frame->unknown = false;
	top = frame;
}

/* Pop frame (the innermost), giving the parent what it saw. */
void
cachier_capture_pop(CaptureFrame *frame)
{
	CaptureFrame *parent;
	int			i;

	if (top != frame)
		return;					/* an error already unwound past it */
	parent = frame->parent;
	top = parent;
	if (parent == NULL)
		return;
	for (i = 0; i < frame->nrels; i++)
		cachier_capture_add_root(parent, frame->rels[i]);
	if (parent->untrackable == REL_TRACKABLE)
	{
		parent->untrackable = frame->untrackable;
		parent->untrackable_rel = frame->untrackable_rel;
	}
	parent->unknown |= frame->unknown;
}

bool
cachier_capture_active(void)
{
	return top != NULL;
}

/* A read of its (already mapped) root, for frame. */
void
cachier_capture_add_root(CaptureFrame *frame, Oid root)
{
	int			i;

	for (i = 0; i < frame->nrels; i++)
		if (frame->rels[i] == root)
			return;
	if (frame->nrels == frame->maxrels)
	{
		int			n = Max(8, frame->maxrels * 2);

		frame->rels = frame->rels ?
			repalloc(frame->rels, n * sizeof(Oid)) :
			MemoryContextAlloc(frame->mcxt, n * sizeof(Oid));
		frame->maxrels = n;
	}
	frame->rels[frame->nrels++] = root;
}

/* A read of relid, in the innermost computation. */
void
cachier_capture_add(Oid relid)
{
	const Oid  *roots;
	int			nroots;
	RelationClass rc;
	int			i;

	if (top == NULL)
		return;
	rc = cachier_relation_roots(relid, &roots, &nroots);
	if (rc == REL_OURS)
		return;
	if (rc != REL_TRACKABLE)
	{
		if (top->untrackable == REL_TRACKABLE)
		{
			top->untrackable = rc;
			top->untrackable_rel = relid;
		}
		return;
	}
	for (i = 0; i < nroots; i++)
		cachier_capture_add_root(top, roots[i]);
}

/* The innermost computation used a value that depends on root. */
void
cachier_capture_inherit(Oid root)
{
	if (top)
		cachier_capture_add_root(top, root);
}

/* The innermost computation used a value whose reads are not all known. */
void
cachier_capture_unknown(void)
{
	if (top)
		top->unknown = true;
}

static bool
is_result_relation(PlannedStmt *pstmt, Index rti)
{
	ListCell   *lc;

	foreach(lc, pstmt->resultRelations)
		if ((Index) lfirst_int(lc) == rti)
			return true;
	return false;
}

/*
 * Whether the statement only appends to its result relations, without
 * looking at their rows: a plain INSERT (no ON CONFLICT, no RETURNING or
 * other column reads).  Its target is written, not read.  An UPDATE or
 * DELETE reads its target even without a WHERE clause: its row count.
 */
static bool
blind_insert(PlannedStmt *pstmt, RangeTblEntry *rte)
{
	return pstmt->commandType == CMD_INSERT &&
		(rte->requiredPerms & ACL_SELECT) == 0 &&
		pstmt->planTree != NULL && IsA(pstmt->planTree, ModifyTable) &&
		((ModifyTable *) pstmt->planTree)->onConflictAction == ONCONFLICT_NONE;
}

/* Reads (inside a computation) and writes of the statement. */
static void
watch_plan(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *pstmt = queryDesc->plannedstmt;
	ListCell   *lc;
	Index		rti = 0;

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0)
		return;
	if (top == NULL && pstmt->resultRelations == NIL)
		return;
	foreach(lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		rti++;
		if (rte->rtekind != RTE_RELATION)
			continue;
		if (pstmt->resultRelations != NIL && is_result_relation(pstmt, rti))
		{
			cachier_watch_write(rte->relid);
			if (blind_insert(pstmt, rte))
				continue;
		}
		if (top != NULL)
			cachier_capture_add(rte->relid);
	}
}

static void
executor_start(QueryDesc *queryDesc, int eflags)
{
	watch_plan(queryDesc, eflags);
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
forget_frames(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		top = NULL;
}

void
cachier_capture_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = executor_start;
	RegisterXactCallback(forget_frames, NULL);
}
