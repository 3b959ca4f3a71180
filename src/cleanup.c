/*-------------------------------------------------------------------------
 *
 * cleanup.c
 *	  Removal of stale entries in bounded batches, for the background
 *	  worker (each batch its own short transaction) and for
 *	  cachier_cleanup() (in the caller's transaction, which a function
 *	  cannot commit).
 *
 * A batch deletes at most CLEANUP_BATCH rows found through the index on
 * (fn_id, created_at), so it holds few row locks for a short time
 * and never blocks hits, which take no locks on rows.  Between batches the
 * worker pauses as long as the batch took, so that on a busy machine it
 * takes at most about half a core from the queries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#define CLEANUP_BATCH	10000

static int64
delete_batch(int32 fn_id, TimestampTz cutoff)
{
	Oid			types[3] = {INT4OID, TIMESTAMPTZOID, INT4OID};
	Datum		values[3];

	values[0] = Int32GetDatum(fn_id);
	values[1] = TimestampTzGetDatum(cutoff);
	values[2] = Int32GetDatum(CLEANUP_BATCH);
	/* every operator qualified: immune to the search_path it runs under */
	return cachier_exec_as_owner("DELETE FROM cachier.entries"
								 " WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
								 " SELECT ctid FROM cachier.entries"
								 " WHERE fn_id OPERATOR(pg_catalog.=) $1"
								 " AND created_at OPERATOR(pg_catalog.<=) $2 LIMIT $3))",
								 3, types, values, NULL, NULL);
}

/* Sleep, interruptibly, as long as the work since start took. */
static void
pause_like(TimestampTz start)
{
	long		ms = (long) ((GetCurrentTimestamp() - start) / 1000);

	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Min(ms, 1000), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * Remove the entries of funcid older than stale_after_us; how many.  With
 * own_transactions, each batch commits on its own (the caller must not be
 * in a transaction).
 */
int64
cachier_cleanup_function(Oid funcid, int64 stale_after_us, bool own_transactions)
{
	TimestampTz cutoff;
	int64		total = 0;
	int64		n;
	int32		fn_id;

	if (stale_after_us == CACHIER_NEVER)
		return 0;
	if (own_transactions)
	{
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		fn_id = cachier_lock_extension() ? cachier_fn_id(funcid) : 0;
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	else
		fn_id = cachier_fn_id(funcid);
	if (fn_id == 0)
		return 0;				/* the function has no entries */
	cutoff = GetCurrentTimestamp() - stale_after_us;
	do
	{
		TimestampTz batch_start = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		n = 0;
		if (own_transactions)
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
		}
		if (!own_transactions || cachier_lock_extension())
			n = delete_batch(fn_id, cutoff);
		if (own_transactions)
		{
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		total += n;
		/* the worker leaves as much time to others as a batch took */
		if (own_transactions && n >= CLEANUP_BATCH)
			pause_like(batch_start);
	} while (n >= CLEANUP_BATCH);
	return total;
}

/*
 * The functions with cleanup_stale (that exist), by OID.  In storage
 * older than 0.5 the first column is the function's OID.
 */
List *
cachier_cleanup_candidates(void)
{
	List	   *ids;
	List	   *fns = NIL;
	ListCell   *lc;

	if (cachier_storage_legacy())
	{
		cachier_exec_as_owner("SELECT fn FROM cachier.functions WHERE cleanup_stale ORDER BY fn",
							  0, NULL, NULL, NULL, &fns);
		return fns;
	}
	cachier_exec_as_owner("SELECT fn_id FROM cachier.functions WHERE cleanup_stale",
						  0, NULL, NULL, NULL, &ids);
	foreach(lc, ids)
	{
		Oid			funcid = cachier_fn_id_oid((int32) lfirst_oid(lc));

		if (OidIsValid(funcid))
			fns = lappend_oid(fns, funcid);
	}
	list_sort(fns, list_oid_cmp);
	return fns;
}

/*
 * cachier_cleanup(fn regprocedure DEFAULT NULL) RETURNS bigint
 * Remove the stale entries of fn, or of every function with cleanup_stale
 * that the caller owns; in the caller's transaction.
 */
PG_FUNCTION_INFO_V1(cachier_cleanup);
Datum
cachier_cleanup(PG_FUNCTION_ARGS)
{
	int64		total = 0;
	List	   *fns = NIL;
	ListCell   *lc;

	if (!PG_ARGISNULL(0))
		fns = list_make1_oid(PG_GETARG_OID(0));
	else
	{
		List	   *configured = cachier_cleanup_candidates();

		foreach(lc, configured)
			if (pg_proc_ownercheck(lfirst_oid(lc), GetUserId()))
				fns = lappend_oid(fns, lfirst_oid(lc));
	}
	foreach(lc, fns)
	{
		Oid			fn = lfirst_oid(lc);
		EffectiveOptions eff;

		if (!pg_proc_ownercheck(fn, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FUNCTION, get_func_name(fn));
		cachier_effective_options(cachier_function_info(fn), &eff);
		total += cachier_cleanup_function(fn, eff.stale_after_us, false);
	}
	PG_RETURN_INT64(total);
}
