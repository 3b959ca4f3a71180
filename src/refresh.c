/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  One background refresh (next_time), run by the refresh worker as a
 *	  clean session of the role whose call queued it would run it.
 *
 * Each refresh is its own transaction, with its own statement start time
 * (so now() is right).  The function runs under a GUC nest level holding
 * the settings a new session of that role in this database would start
 * with (ALTER ROLE/DATABASE ... SET), as that role, security-restricted
 * (as REFRESH MATERIALIZED VIEW runs), and for at most
 * cachier.refresh_timeout (or the role's shorter statement_timeout).
 * Everything is undone after it, on success and on error: no setting one
 * refresh made is seen by the next.  A refresh that fails or times out
 * keeps the stale value and is a WARNING.
 *
 * Called only by the refresh worker (db_worker.c), outside a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/pg_db_role_setting.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"


static char refresh_target[NAMEDATALEN * 2 + 64];

/*
 * The settings a new session of roleid in this database starts with, as
 * process_settings() (postinit.c) applies them: the most specific first,
 * each kept against the less specific ones by its source's priority.
 */
static void
apply_session_settings(Oid roleid)
{
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(DbRoleSettingRelationId));

	ApplySetting(snapshot, MyDatabaseId, roleid, rel, PGC_S_DATABASE_USER);
	ApplySetting(snapshot, InvalidOid, roleid, rel, PGC_S_USER);
	ApplySetting(snapshot, MyDatabaseId, InvalidOid, rel, PGC_S_DATABASE);
	ApplySetting(snapshot, InvalidOid, InvalidOid, rel, PGC_S_GLOBAL);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/* The refresh's time limit in ms under the role's settings; -1: none. */
static int
refresh_limit_ms(void)
{
	int			limit = cachier_refresh_timeout_ms;

	if (StatementTimeout > 0 && (limit < 0 || StatementTimeout < limit))
		limit = StatementTimeout;
	return limit;
}

typedef struct ArgsCopy
{
	char	   *data;
	int			len;
	TimestampTz created_at;
	bool		has_epoch;		/* [F] */
	int64		epoch;
} ArgsCopy;

static bool
copy_args(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ArgsCopy   *copy = (ArgsCopy *) arg;
	bool		isnull;
	bytea	   *args = DatumGetByteaPCopy(heap_getattr(tuple, 6, desc, &isnull));

	if (isnull)
		return false;
	copy->has_epoch = cachier_entry_tuple_epoch(tuple, desc, &copy->epoch);	/* [F] */
	copy->data = VARDATA(args);
	copy->len = VARSIZE(args) - VARHDRSZ;
	copy->created_at = DatumGetTimestampTz(heap_getattr(tuple, 4, desc, &isnull));
	return true;
}

/*
 * Compute and store the entry as roleid, in a clean session of that role.
 * On error the transaction's abort restores the user, the security context
 * and every setting (AtEOXact_GUC(false, 1) covers our nest level).
 */
static bool
refresh_as_role(CallSite *site, RefreshItem *item, ArgsCopy *copy)
{
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	int			limit;
	bool		refreshed;

	GetUserIdAndSecContext(&save_user, &save_sec);
	nestlevel = NewGUCNestLevel();

	/*
	 * Become the role first: its settings are then applied inside a
	 * security-restricted operation, which refuses role and
	 * session_authorization (a role's own ALTER ROLE ... SET role = 'x'
	 * would otherwise change session_user for row-level security) exactly
	 * where a login of that role would have checked them against itself.
	 */
	SetUserIdAndSecContext(item->roleid,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	apply_session_settings(item->roleid);
	limit = refresh_limit_ms();
	if (limit > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, limit);
	refreshed = cachier_refresh_entry(site, item->key, copy->data, copy->len);
	disable_timeout(STATEMENT_TIMEOUT, false);
	SetUserIdAndSecContext(save_user, save_sec);
	AtEOXact_GUC(false, nestlevel);
	return refreshed;
}

/*
 * One refresh, in the current transaction.  False when there was nothing
 * to do (the function, the role or the entry is gone, the entry is fresh
 * again, another session is computing it).
 */
static bool
refresh_in_transaction(RefreshItem *item)
{
	AclResult	aclresult;
	CallSite	site;
	ArgsCopy	copy;
	EffectiveOptions eff;

	snprintf(refresh_target, sizeof(refresh_target), "function %u", item->funcid);
	if (!cachier_lock_extension())
		return false;			/* the extension was dropped */
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(item->funcid)))
		return false;			/* dropped meanwhile */
	strlcpy(refresh_target, format_procedure_qualified(item->funcid),
			sizeof(refresh_target));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(item->roleid)))
		return false;
	aclresult = pg_proc_aclcheck(item->funcid, item->roleid, ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(item->funcid));
	cachier_check_cacheable(item->funcid);

	memset(&site, 0, sizeof(site));
	cachier_callsite_init(&site, item->funcid, CurTransactionContext);
	if (!cachier_scan_entry(item->funcid, item->key, copy_args, &copy))
		return false;			/* cleared meanwhile */
	cachier_effective_options(site.info, &eff);
	if ((eff.stale_after_us == CACHIER_NEVER ||
		 GetCurrentTimestamp() - copy.created_at < eff.stale_after_us) &&
		!cachier_fresh_outdated(&site, &eff, copy.has_epoch, copy.epoch))
		return false;			/* refreshed by a call meanwhile */
	return refresh_as_role(&site, item, &copy);
}

/* A refresh failed: the transaction is aborted, a WARNING says why. */
static void
report_failure(MemoryContext cxt, RefreshItem *item)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	disable_timeout(STATEMENT_TIMEOUT, false);
	QueryCancelPending = false; /* a timeout that fired too late */
	AbortCurrentTransaction();
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("background refresh of %s failed", refresh_target),
			 errdetail_internal("%s", edata->message),
			 errhint("The stale value stays in the cache.")));
	FreeErrorData(edata);
	cachier_count_function(item->funcid, STAT_REFRESH_FAILED, 0);
}

/* Run one queued refresh in its own transaction; a failure is a WARNING. */
void
cachier_run_refresh(RefreshItem *item)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	pgstat_report_activity(STATE_RUNNING, "refreshing a stale cache entry");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		bool		refreshed = refresh_in_transaction(item);

		PopActiveSnapshot();
		CommitTransactionCommand();
		if (refreshed)
			cachier_count_function(item->funcid, STAT_REFRESH_DONE, 0);
	}
	PG_CATCH();
	{
		report_failure(oldcxt, item);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}
