/*-------------------------------------------------------------------------
 *
 * write_watch.c
 *	  The relations this transaction changed, and the bumps of their
 *	  dependents' epochs when it commits.
 *
 * What counts as a change of a relation (each mapped to its roots):
 *	- the result relations of any executed statement (INSERT, UPDATE,
 *	  DELETE, MERGE, ON CONFLICT, data-modifying CTEs, and through them
 *	  triggers and foreign-key actions), from read_capture.c's hook;
 *	- utility commands (cachier.c's ProcessUtility hook): COPY FROM,
 *	  TRUNCATE, REFRESH MATERIALIZED VIEW, ALTER TABLE/VIEW/..., CREATE OR
 *	  REPLACE VIEW, RENAME, SET SCHEMA, GRANT/REVOKE on relations, CREATE/
 *	  ALTER POLICY, CREATE RULE; commands whose targets are not simply
 *	  named (TRUNCATE ... CASCADE, GRANT ... ALL TABLES IN SCHEMA, DROP
 *	  POLICY/RULE, DROP OWNED, REASSIGN OWNED) change "everything" of the
 *	  database: more invalidation, never less;
 *	- drops of relations, also by CASCADE (object access hook).
 *
 * At PRE_COMMIT (and PRE_PREPARE) and again after the commit, each
 * changed relation's write mark is raised and its dependents (looked up
 * afresh each time) get new epochs: the first bump stops computations
 * that started before the commit from storing, the second catches
 * computations that registered the relation, or read an epoch, in the
 * window between the first bump and the commit becoming visible.  COMMIT
 * PREPARED bumps every tracked function of the database afterwards (the
 * committing session does not know what the prepared transaction wrote).
 * A savepoint rolled back forgets the relations it changed.
 *
 * Cost: a statement appends its result relations to a local array (a
 * linear search keeps them distinct); nothing shared is touched before
 * commit.  Beyond MAX_WRITTEN distinct relations the transaction counts as
 * having changed everything.  The array lives in TopTransactionContext.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "cachier.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/logicalworker.h"
#include "utils/memutils.h"

#define MAX_WRITTEN		256

typedef struct Written
{
	Oid			relid;			/* a root */
	int			level;			/* the subtransaction that changed it */
} Written;

static Written *written = NULL; /* in TopTransactionContext */
static int	nwritten = 0;
static int	all_level = 0;		/* > 0: "everything" changed at this level */
static object_access_hook_type prev_object_access = NULL;

static void
forget(void)
{
	written = NULL;
	nwritten = 0;
	all_level = 0;
}

static void
add_root(Oid root)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	for (i = 0; i < nwritten; i++)
		if (written[i].relid == root)
		{
			written[i].level = Min(written[i].level, level);
			return;
		}
	if (written == NULL)
		written = MemoryContextAlloc(TopTransactionContext, MAX_WRITTEN * sizeof(Written));
	if (nwritten == MAX_WRITTEN)
	{
		cachier_watch_write_all();
		return;
	}
	written[nwritten].relid = root;
	written[nwritten].level = level;
	nwritten++;
}

/* This transaction changes relid (a root or not). */
void
cachier_watch_write(Oid relid)
{
	const Oid  *roots;
	int			nroots;
	int			i;

	if (!IsTransactionState() || RecoveryInProgress())
		return;
	switch (cachier_relation_roots(relid, &roots, &nroots))
	{
		case REL_TRACKABLE:
			break;
		case REL_FOREIGN:
			add_root(relid);	/* it may be a declared dependency */
			return;
		default:
			return;
	}
	for (i = 0; i < nroots; i++)
		add_root(roots[i]);
}

/* This transaction changes relations it cannot name: count all of them. */
void
cachier_watch_write_all(void)
{
	int			level = GetCurrentTransactionNestLevel();

	if (all_level == 0 || level < all_level)
		all_level = level;
}

/* Whether this transaction changed anything so far. */
bool
cachier_watch_any(void)
{
	return nwritten > 0 || all_level > 0;
}

/* Whether this transaction changed one of the roots. */
bool
cachier_watch_wrote(const Oid *roots, int n)
{
	int			i;
	int			j;

	if (n == 0)
		return false;
	if (all_level > 0)
		return true;
	for (i = 0; i < nwritten; i++)
		for (j = 0; j < n; j++)
			if (written[i].relid == roots[j])
				return true;
	return false;
}

/* ---------------------------------------------------------------- commit */

/*
 * A logical replication worker applies the publisher's changes without the
 * executor's entry points we watch: a transaction of it that wrote
 * anything counts as having changed every relation (over-invalidation,
 * never a stale entry on a subscriber).
 */
static bool
applied_changes(void)
{
	return IsLogicalWorker() && TransactionIdIsValid(GetTopTransactionIdIfAny());
}

/* Mark and bump for everything changed.  No errors. */
static void
bump_written(void)
{
	int			i;

	if (!cachier_dep_available())
		return;
	if (applied_changes())
		cachier_watch_write_all();
	for (i = 0; i < nwritten; i++)
	{
		cachier_dep_mark_write(MyDatabaseId, written[i].relid);
		(void) cachier_dep_changed(MyDatabaseId, written[i].relid);
	}
	if (all_level > 0)
		cachier_dep_bump_database(MyDatabaseId, InvalidOid);
}

static void
transaction_event(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			bump_written();
			break;
		case XACT_EVENT_COMMIT:
			bump_written();
			forget();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget();
			break;
		default:
			break;
	}
}

/* A rolled-back savepoint's changes are undone: forget them. */
static void
subtransaction_event(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;
	int			k = 0;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < nwritten; i++)
			written[i].level = Min(written[i].level, level - 1);
		if (all_level >= level)
			all_level = level - 1;
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (i = 0; i < nwritten; i++)
		if (written[i].level < level)
			written[k++] = written[i];
	nwritten = k;
	if (all_level >= level)
		all_level = 0;
}

/* ---------------------------------------------------------------- DDL */

static void
object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId)
		cachier_watch_write(objectId);
}

static void
write_rangevar(RangeVar *rv)
{
	Oid			relid;

	if (rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid))
		cachier_watch_write(relid);
}

static void
write_rangevars(List *rvs)
{
	ListCell   *lc;

	foreach(lc, rvs)
		write_rangevar(lfirst_node(RangeVar, lc));
}

static bool
is_relation_object(ObjectType type)
{
	return type == OBJECT_TABLE || type == OBJECT_VIEW || type == OBJECT_MATVIEW ||
		type == OBJECT_FOREIGN_TABLE || type == OBJECT_SEQUENCE;
}

/* GRANT/REVOKE: the relations named, or everything. */
static void
write_grant(GrantStmt *stmt)
{
	if (!is_relation_object(stmt->objtype))
		return;
	if (stmt->targtype != ACL_TARGET_OBJECT)
	{
		if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
			cachier_watch_write_all();
		return;
	}
	write_rangevars(stmt->objects);
}

/* The changes a utility command makes, noted before it runs. */
static void
write_utility(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
			if (((CopyStmt *) stmt)->is_from)
				write_rangevar(((CopyStmt *) stmt)->relation);
			break;
		case T_TruncateStmt:
			write_rangevars(((TruncateStmt *) stmt)->relations);
			if (((TruncateStmt *) stmt)->behavior == DROP_CASCADE)
				cachier_watch_write_all();
			break;
		case T_RefreshMatViewStmt:
			write_rangevar(((RefreshMatViewStmt *) stmt)->relation);
			break;
		case T_AlterTableStmt:
			write_rangevar(((AlterTableStmt *) stmt)->relation);
			break;
		case T_ViewStmt:
			write_rangevar(((ViewStmt *) stmt)->view);
			break;
		case T_RenameStmt:
			write_rangevar(((RenameStmt *) stmt)->relation);
			break;
		case T_AlterObjectSchemaStmt:
			write_rangevar(((AlterObjectSchemaStmt *) stmt)->relation);
			break;
		case T_GrantStmt:
			write_grant((GrantStmt *) stmt);
			break;
		case T_CreatePolicyStmt:
			write_rangevar(((CreatePolicyStmt *) stmt)->table);
			break;
		case T_AlterPolicyStmt:
			write_rangevar(((AlterPolicyStmt *) stmt)->table);
			break;
		case T_RuleStmt:
			write_rangevar(((RuleStmt *) stmt)->relation);
			break;
		case T_DropStmt:
			{
				ObjectType type = ((DropStmt *) stmt)->removeType;

				if (type == OBJECT_POLICY || type == OBJECT_RULE)
					cachier_watch_write_all();
				break;
			}
		case T_DropOwnedStmt:
		case T_ReassignOwnedStmt:
			cachier_watch_write_all();
			break;
		default:
			break;
	}
}

/*
 * cachier.c's utility hook, before (after false) and after the command.
 * After COMMIT PREPARED, whose writes this session does not know, every
 * tracked function of the database gets a new epoch.
 */
void
cachier_watch_utility(PlannedStmt *pstmt, bool after)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (!after)
	{
		if (IsTransactionState() && !RecoveryInProgress())
			write_utility(stmt);
		return;
	}
	if (IsA(stmt, TransactionStmt) &&
		((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED &&
		cachier_dep_available())
		cachier_dep_bump_database(MyDatabaseId, InvalidOid);
}

void
cachier_watch_init(void)
{
	RegisterXactCallback(transaction_event, NULL);
	RegisterSubXactCallback(subtransaction_event, NULL);
	prev_object_access = object_access_hook;
	object_access_hook = object_access;
}
