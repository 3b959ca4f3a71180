/*-------------------------------------------------------------------------
 *
 * update_keep.c
 *	  Keeps what a DBA did to cachier's objects through ALTER EXTENSION
 *	  cachier UPDATE.
 *
 * An update script may drop and recreate the extension's views and
 * functions.  That would lose the privileges a DBA granted or revoked on
 * them, and a user's view on cachier_entries would block the update
 * altogether.  So, before the scripts run, this file records
 *
 *	- the privileges of every member of the extension that differ from the
 *	  ones the scripts set (pg_init_privs): what the DBA changed, by the
 *	  object's name, and
 *	- the definitions (owner, options, privileges, comment, indexes) of the
 *	  views and materialized views outside any extension that depend on a
 *	  member, directly or through other such views, and drops them;
 *
 * and after the scripts it recreates those views and applies the recorded
 * privilege changes to the members that still exist under the same name.
 * That second half runs outside the scripts, so the privileges stay the
 * DBA's (not recorded as the extension's initial ones, which pg_dump would
 * skip) and the views do not become members of the extension.
 *
 * It is reached from the utility hook around ALTER EXTENSION cachier
 * UPDATE (cachier.c) when the library is loaded before the command, and
 * otherwise from cachier.keep_user_objects(), which every update script
 * calls first; then the second half runs when the transaction commits.
 *
 * Locking and safety: everything runs in the updating transaction, as the
 * superuser running the update, with search_path pinned to pg_catalog so
 * that no object of the caller's can change what the recorded text means.
 * The one statement that runs a user's query, refreshing a materialized
 * view, runs as the view's owner in a security-restricted operation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "cachier.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(cachier_keep_user_objects);

/* One statement to run after the scripts. */
typedef struct KeptStatement
{
	bool		generator;		/* sql yields the statements to run */
	char	   *sql;
	Oid			run_as;			/* InvalidOid, or the role to run it as */
} KeptStatement;

static List *kept = NIL;		/* in TopTransactionContext */
static bool recorded = false;	/* this transaction recorded already */
static bool replay_at_commit = false;
static bool callback_registered = false;

/*
 * The privileges the DBA changed on members of the extension (relations
 * and functions): the difference between their privileges and those the
 * scripts set, revokes first.  $1 is the extension.  Each row is a query
 * to run after the update that yields the statements re-applying one
 * change: to the member of the same name if it still exists; for a
 * function whose signature is gone, to the functions of the same name
 * that the update created (cachier_memoize with new parameters is still
 * cachier_memoize).
 */
#define MEMBERS_SQL \
"WITH m AS (" \
"  SELECT 'r' AS kind, c.oid AS objid, c.tableoid AS classid, 0::oid AS nsp, ''::text AS name," \
"         c.oid::regclass::text AS sig, 'TABLE' AS what," \
"         acldefault('r', c.relowner) AS dflt, c.relacl AS acl" \
"    FROM pg_depend d JOIN pg_class c ON c.oid = d.objid" \
"   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass" \
"     AND d.refobjid = $1 AND d.deptype = 'e'" \
"  UNION ALL" \
"  SELECT 'f', p.oid, p.tableoid, p.pronamespace, p.proname::text, p.oid::regprocedure::text," \
"         'FUNCTION', acldefault('f', p.proowner), p.proacl" \
"    FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid" \
"   WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass" \
"     AND d.refobjid = $1 AND d.deptype = 'e')," \
" i AS (SELECT m.kind, m.nsp, m.name, m.sig, m.what, coalesce(m.acl, m.dflt) AS acl," \
"              coalesce(ip.initprivs, m.dflt) AS init" \
"         FROM m LEFT JOIN pg_init_privs ip" \
"           ON ip.objoid = m.objid AND ip.classoid = m.classid AND ip.objsubid = 0)," \
" cur AS (SELECT i.kind, i.nsp, i.name, i.sig, i.what, a.grantee, a.privilege_type, a.is_grantable" \
"           FROM i, aclexplode(i.acl) a)," \
" ini AS (SELECT i.kind, i.nsp, i.name, i.sig, i.what, a.grantee, a.privilege_type, a.is_grantable" \
"           FROM i, aclexplode(i.init) a)," \
" who AS (SELECT 0::oid AS grantee, 'PUBLIC' AS rolname" \
"         UNION ALL SELECT oid, replace(quote_ident(rolname), '%', '%%') FROM pg_authid)," \
" change AS (" \
"  SELECT 1 AS ord, r.kind, r.nsp, r.name, r.sig," \
"         format('REVOKE %s ON %s %%s FROM %s', r.privilege_type, r.what, w.rolname) AS tmpl" \
"    FROM (SELECT * FROM ini EXCEPT SELECT * FROM cur) r JOIN who w USING (grantee)" \
"  UNION ALL" \
"  SELECT 2, g.kind, g.nsp, g.name, g.sig," \
"         format('GRANT %s ON %s %%s TO %s%s', g.privilege_type, g.what, w.rolname," \
"                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)" \
"    FROM (SELECT * FROM cur EXCEPT SELECT * FROM ini) g JOIN who w USING (grantee))" \
"SELECT CASE WHEN c.kind = 'r' THEN" \
"         format('SELECT %L WHERE to_regclass(%L) IS NOT NULL', format(c.tmpl, c.sig), c.sig)" \
"       ELSE" \
"         format('SELECT format(%L, p.oid::regprocedure) FROM pg_proc p'\n" \
"                ' WHERE p.pronamespace = %s AND p.proname = %L'\n" \
"                ' AND (p.oid::regprocedure::text = %L OR (to_regprocedure(%L) IS NULL'\n" \
"                ' AND p.oid::regprocedure::text <> ALL (%L::text[])))'," \
"                c.tmpl, c.nsp, c.name, c.sig, c.sig," \
"                (SELECT array_agg(sig) FROM m WHERE kind = 'f'))" \
"       END" \
"  FROM change c ORDER BY c.ord"

/*
 * Views and materialized views outside any extension that depend on a
 * member, each with the depth of its longest chain of such views.
 */
#define DEPENDENTS_SQL \
"WITH RECURSIVE members AS (" \
"  SELECT objid, classid FROM pg_depend" \
"   WHERE refclassid = 'pg_extension'::regclass AND refobjid = $1 AND deptype = 'e')," \
" dep(oid, depth) AS (" \
"  SELECT rw.ev_class, 1" \
"    FROM members m JOIN pg_depend d ON d.refobjid = m.objid AND d.refclassid = m.classid" \
"    JOIN pg_rewrite rw ON rw.oid = d.objid AND d.classid = 'pg_rewrite'::regclass" \
"   WHERE m.classid IN ('pg_class'::regclass, 'pg_proc'::regclass)" \
"  UNION" \
"  SELECT rw.ev_class, dep.depth + 1" \
"    FROM dep JOIN pg_depend d ON d.refobjid = dep.oid AND d.refclassid = 'pg_class'::regclass" \
"    JOIN pg_rewrite rw ON rw.oid = d.objid AND d.classid = 'pg_rewrite'::regclass" \
"   WHERE rw.ev_class <> dep.oid AND dep.depth < 100)" \
"SELECT c.oid, c.oid::regclass::text, c.relkind = 'm', max(dep.depth)" \
"  FROM dep JOIN pg_class c ON c.oid = dep.oid" \
" WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_class'::regclass" \
"                      AND e.objid = c.oid AND e.deptype = 'e')" \
" GROUP BY c.oid ORDER BY max(dep.depth), c.oid"

/* What recreates one view: definition, owner, privileges, comment, indexes. */
#define RECREATE_SQL \
"SELECT format('CREATE %s %s%s AS %s%s', $2, $3," \
"              CASE WHEN c.reloptions IS NULL THEN ''" \
"                   ELSE format(' WITH (%s)', array_to_string(c.reloptions, ', ')) END," \
"              rtrim(pg_get_viewdef(c.oid), ';'), CASE WHEN c.relkind = 'm' THEN ' WITH NO DATA' ELSE '' END)" \
"  FROM pg_class c WHERE c.oid = $1" \
" UNION ALL SELECT format('ALTER %s %s OWNER TO %I', $2, $3, pg_get_userbyid(c.relowner))" \
"  FROM pg_class c WHERE c.oid = $1" \
" UNION ALL SELECT format('GRANT %s ON TABLE %s TO %s%s', a.privilege_type, $3," \
"              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END," \
"              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)" \
"  FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1 AND a.grantee <> c.relowner" \
" UNION ALL SELECT format('COMMENT ON %s %s IS %L', $2, $3, obj_description($1, 'pg_class'))" \
" WHERE obj_description($1, 'pg_class') IS NOT NULL" \
" UNION ALL SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = $1"

static void
keep(bool generator, const char *sql, Oid run_as)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	KeptStatement *k = palloc0(sizeof(KeptStatement));

	k->generator = generator;
	k->sql = pstrdup(sql);
	k->run_as = run_as;
	kept = lappend(kept, k);
	MemoryContextSwitchTo(old);
}

static char *
text_column(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* The statements that recreate one dependent view, kept in order. */
static void
record_view(Oid view, const char *name, bool matview, Oid owner, bool populated)
{
	const char *kind = matview ? "MATERIALIZED VIEW" : "VIEW";
	Oid			types[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		values[3] = {ObjectIdGetDatum(view),
		CStringGetTextDatum(kind), CStringGetTextDatum(name)};

	if (SPI_execute_with_args(RECREATE_SQL, 3, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the definition of view %s", name);
	for (uint64 i = 0; i < SPI_processed; i++)
		keep(false, text_column(i, 1), InvalidOid);
	if (matview && populated)
		keep(false, psprintf("REFRESH MATERIALIZED VIEW %s", name), owner);
}

/* Record the dependent views (shallowest first) and drop them (deepest first). */
static void
record_and_drop_views(Oid extension)
{
	Datum		arg = ObjectIdGetDatum(extension);
	Oid			type = OIDOID;
	List	   *drops = NIL;
	ListCell   *lc;
	SPITupleTable *views;
	uint64		n;

	if (SPI_execute_with_args(DEPENDENTS_SQL, 1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the views that depend on extension cachier");
	views = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			view = DatumGetObjectId(SPI_getbinval(views->vals[i], views->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(views->vals[i], views->tupdesc, 2);
		bool		matview = DatumGetBool(SPI_getbinval(views->vals[i], views->tupdesc, 3, &isnull));
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(view));
		Form_pg_class form;

		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_class) GETSTRUCT(tuple);
		record_view(view, name, matview, form->relowner, form->relispopulated);
		ReleaseSysCache(tuple);
		drops = lcons(psprintf("DROP %s %s", matview ? "MATERIALIZED VIEW" : "VIEW", name), drops);
	}
	foreach(lc, drops)
	{
		CHECK_FOR_INTERRUPTS();
		if (SPI_execute((char *) lfirst(lc), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not run \"%s\"", (char *) lfirst(lc));
	}
}

/* Record the privileges the DBA changed on members, revokes first. */
static void
record_privileges(Oid extension)
{
	Datum		arg = ObjectIdGetDatum(extension);
	Oid			type = OIDOID;

	if (SPI_execute_with_args(MEMBERS_SQL, 1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the privileges of extension cachier");
	for (uint64 i = 0; i < SPI_processed; i++)
		keep(true, text_column(i, 1), InvalidOid);
}

static void
forget(void)
{
	kept = NIL;					/* its memory goes with the transaction */
	recorded = false;
	replay_at_commit = false;
}

static void
transaction_ends(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT && replay_at_commit)
		cachier_keep_finish();
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
			 event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_ABORT)
		forget();
}

/*
 * Before the update scripts run: record what the DBA changed and drop the
 * views in the way.  Once per transaction.
 */
void
cachier_keep_begin(void)
{
	Oid			extension = get_extension_oid("cachier", true);
	int			nestlevel;

	if (recorded || !OidIsValid(extension))
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(transaction_ends, NULL);
		callback_registered = true;
	}
	nestlevel = cachier_pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	record_and_drop_views(extension);
	record_privileges(extension);
	SPI_finish();
	cachier_unpin_search_path(nestlevel);
	recorded = true;
}

/* Run one statement, as the given role if valid. */
static void
run_as(const char *sql, Oid role)
{
	Oid			save_userid;
	int			save_sec;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	if (OidIsValid(role))
		SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run \"%s\"", sql);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/* Run one kept statement, or the statements its query yields. */
static void
replay(KeptStatement *k)
{
	List	   *statements = NIL;
	ListCell   *lc;

	if (!k->generator)
	{
		run_as(k->sql, k->run_as);
		return;
	}
	if (SPI_execute(k->sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", k->sql);
	for (uint64 i = 0; i < SPI_processed; i++)
		statements = lappend(statements, text_column(i, 1));
	foreach(lc, statements)
		run_as((char *) lfirst(lc), InvalidOid);
}

/* After the update scripts: recreate the views, apply the privileges. */
void
cachier_keep_finish(void)
{
	List	   *todo = kept;
	ListCell   *lc;
	int			nestlevel;

	if (!recorded || creating_extension)
		return;
	forget();
	if (todo == NIL)
		return;
	nestlevel = cachier_pin_search_path();
	/* see what the scripts did: the command's snapshot predates them */
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, todo)
	{
		CHECK_FOR_INTERRUPTS();
		replay((KeptStatement *) lfirst(lc));
	}
	SPI_finish();
	PopActiveSnapshot();
	cachier_unpin_search_path(nestlevel);
}

/*
 * cachier.keep_user_objects(): called first by every update script.  When
 * the utility hook already recorded (the library was loaded before the
 * command), nothing to do; otherwise record now and finish at commit.
 */
Datum
cachier_keep_user_objects(PG_FUNCTION_ARGS)
{
	if (!recorded)
	{
		if (!creating_extension)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cachier.keep_user_objects() runs only in ALTER EXTENSION cachier UPDATE")));
		cachier_keep_begin();
		replay_at_commit = true;
	}
	PG_RETURN_VOID();
}
