/*-------------------------------------------------------------------------
 *
 * cachier.c
 *	  Module entry point: defines the settings, registers the cache
 *	  invalidation and transaction callbacks and the utility hook and, when
 *	  preloaded, the shared memory and the background worker launcher.  Everything else lives in the file named for
 *	  its job (see cachier.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static ProcessUtility_hook_type prev_process_utility = NULL;

/* CREATE or ALTER EXTENSION cachier: what update_keep.c surrounds */
static bool
updates_cachier(Node *stmt)
{
	if (IsA(stmt, AlterExtensionStmt))
		return strcmp(((AlterExtensionStmt *) stmt)->extname, "cachier") == 0;
	if (IsA(stmt, CreateExtensionStmt))
		return strcmp(((CreateExtensionStmt *) stmt)->extname, "cachier") == 0;
	return false;
}

/*
 * Before any utility command: close the transaction's entries scan (so
 * DDL on the storage finds the table unused), write the entries computed
 * so far (so DDL and event triggers see them) and, for DROP DATABASE, stop
 * our background worker connected to that database; around ALTER EXTENSION
 * cachier UPDATE, keep the DBA's privileges and views.  While it runs, the
 * statements it runs are nested ones (pending.c).
 */
static void
before_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			   ProcessUtilityContext context, ParamListInfo params,
			   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	cachier_entry_scan_close();
	if (IsA(pstmt->utilityStmt, DropdbStmt))
		cachier_stop_database_worker(get_database_oid(((DropdbStmt *) pstmt->utilityStmt)->dbname,
													  true));
	cachier_watch_utility(pstmt, false);	/* [F] what the command changes */
	if (updates_cachier(pstmt->utilityStmt))
		cachier_keep_begin();
	cachier_pending_utility_begin();
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context,
								 params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
		if (updates_cachier(pstmt->utilityStmt))
			cachier_keep_finish();
	}
	PG_FINALLY();
	{
		cachier_pending_utility_end();
	}
	PG_END_TRY();
	cachier_watch_utility(pstmt, true); /* [F] COMMIT PREPARED */
}

void
_PG_init(void)
{
	cachier_define_settings();
	cachier_define_context_settings();
	/* after every cachier.* setting is defined: their values from the
	 * configuration files are taken over only until the prefix is reserved */
	MarkGUCPrefixReserved("cachier");
	cachier_register_invalidation();
	cachier_entry_scan_init();
	cachier_inprogress_init();
	cachier_pending_init();
	cachier_store_init();
	cachier_key_init();
	cachier_context_init();
	cachier_relation_roots_init();	/* [F] */
	cachier_capture_init();
	cachier_watch_init();
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = before_utility;
	if (process_shared_preload_libraries_in_progress)
	{
		cachier_shared_init();
		cachier_dep_init();		/* [F] */
		cachier_quota_init();
		cachier_stalled_init();
		cachier_computing_init();
		cachier_worker_init();
		cachier_memory_init();	/* [M] */
	}
}
