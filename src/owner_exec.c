/*-------------------------------------------------------------------------
 *
 * owner_exec.c
 *	  The one place where cachier runs SQL with privileges the caller does
 *	  not have: as the owner of its storage (a superuser, usually), and the
 *	  place where it runs DDL text on the caller's behalf.
 *
 * Everything privileged is done the way REFRESH MATERIALIZED VIEW does it
 * (matview.c): switch to the storage owner with
 * SECURITY_RESTRICTED_OPERATION (no SET ROLE, no temporary objects, no
 * session state left behind), open a GUC nest level and pin search_path to
 * "pg_catalog, pg_temp" in it, so that no operator, function or type the
 * caller planted in a schema of its search_path can be picked up by a
 * statement parsed while we are the owner.  Functions and operators are
 * never looked up in pg_temp.  The SQL texts given here must still write
 * operators and functions schema-qualified (OPERATOR(pg_catalog.=),
 * pg_catalog.now()) and name cachier's tables as cachier.<table>.
 *
 * On success the nest level is closed and the user restored here; on error
 * the abort of the (sub)transaction does both (AtEOXact_GUC and the
 * restore of the user id are part of every abort), which is why callers
 * that catch errors must do it with a subtransaction (subxact.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"

#define PINNED_SEARCH_PATH	"pg_catalog, pg_temp"

/*
 * Open a GUC nest level with search_path pinned; returns the level for
 * cachier_unpin_search_path.
 */
int
cachier_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
cachier_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
}

/*
 * Become the storage owner, security-restricted, with search_path pinned.
 * Pair with cachier_owner_end in the same (sub)transaction.
 */
void
cachier_owner_begin(OwnerContext *ctx)
{
	Oid			owner = cachier_relations()->owner;

	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec);
	SetUserIdAndSecContext(owner, ctx->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ctx->nestlevel = cachier_pin_search_path();
}

void
cachier_owner_end(OwnerContext *ctx)
{
	cachier_unpin_search_path(ctx->nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec);
}

/* Run sql through SPI; *oids, if wanted, gets the first column's OIDs. */
static int64
run_sql(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, List **oids)
{
	MemoryContext caller = CurrentMemoryContext;
	int64		processed;
	uint64		i;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "\"%s\" failed: %s", sql, SPI_result_code_string(rc));
	processed = (int64) SPI_processed;
	if (oids)
		*oids = NIL;
	for (i = 0; oids && SPI_tuptable && i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  1, &isnull);
		MemoryContext old;

		if (isnull)
			continue;
		old = MemoryContextSwitchTo(caller);
		*oids = lappend_oid(*oids, DatumGetObjectId(d));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return processed;
}

/*
 * Run one statement as the storage owner in the caller's transaction.
 * Errors propagate: this serves explicit requests.  Returns the number of
 * rows processed; *oids, if wanted, gets the first column (OIDs) of the
 * rows returned, in the caller's memory context.
 */
int64
cachier_exec_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
					  const char *nulls, List **oids)
{
	OwnerContext ctx;
	int64		processed;

	cachier_owner_begin(&ctx);
	processed = run_sql(sql, nargs, types, values, nulls, oids);
	cachier_owner_end(&ctx);
	return processed;
}

/* The first OID a statement run as owner returns, or InvalidOid. */
Oid
cachier_first_oid_as_owner(const char *sql, Oid type, Datum value)
{
	List	   *oids;

	cachier_exec_as_owner(sql, 1, &type, &value, NULL, &oids);
	return oids ? linitial_oid(oids) : InvalidOid;
}

/*
 * Run a statement (DDL that cachier_memoize writes) as the calling role,
 * with search_path pinned so that every name in it means what cachier
 * wrote.  The caller's privileges are checked as for its own statements.
 */
void
cachier_exec_as_caller(const char *sql)
{
	int			nestlevel = cachier_pin_search_path();

	(void) run_sql(sql, 0, NULL, NULL, NULL, NULL);
	cachier_unpin_search_path(nestlevel);
}
