/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Finds cachier's own storage: the schema "cachier", its tables and
 *	  their primary-key indexes, and the role that owns them.  Storage
 *	  created before 0.5 has no cachier.function_ids (function_ids is
 *	  InvalidOid then; see function_ids.c).
 *
 * The OIDs are looked up once per backend and forgotten when a relcache
 * invalidation names one of them (DROP EXTENSION, a re-creation), so the
 * hot path does no catalog lookups.  Calling this without the extension
 * created in the current database is an error with a hint.
 *
 * Locking: the background workers lock the extension itself in share mode
 * before they touch its tables (cachier_lock_extension), since DROP
 * EXTENSION locks it exclusively before any of its objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "cachier.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static CachierRelations rels;
static bool rels_valid = false;

static Oid
relation_in_schema(const char *name, Oid schema)
{
	Oid			relid = get_relname_relid(name, schema);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("cachier storage table cachier.%s is missing", name),
				 errhint("Re-create the extension with DROP EXTENSION cachier CASCADE; CREATE EXTENSION cachier;")));
	return relid;
}

static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

const CachierRelations *
cachier_relations(void)
{
	if (rels_valid)
		return &rels;

	rels.schema = get_namespace_oid("cachier", true);
	if (!OidIsValid(rels.schema))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"cachier\" is not created in this database"),
				 errhint("Run CREATE EXTENSION cachier;")));
	rels.entries = relation_in_schema("entries", rels.schema);
	rels.entries_pkey = relation_in_schema("entries_pkey", rels.schema);
	rels.functions = relation_in_schema("functions", rels.schema);
	rels.functions_pkey = relation_in_schema("functions_pkey", rels.schema);
	rels.function_ids = get_relname_relid("function_ids", rels.schema);
	if (OidIsValid(rels.function_ids))
	{
		rels.function_ids_pkey = relation_in_schema("function_ids_pkey", rels.schema);
		rels.function_ids_identity = relation_in_schema("function_ids_identity_key",
														rels.schema);
	}
	rels.owner = relation_owner(rels.entries);
	rels_valid = true;
	return &rels;
}

/*
 * For a background worker's transaction, before it uses cachier's tables:
 * lock the extension in share mode, so that it and a DROP EXTENSION (which
 * locks the extension exclusively first, then each of its tables) never
 * lock the tables in opposite orders and deadlock.  Whether the extension
 * still exists once locked.
 */
bool
cachier_lock_extension(void)
{
	Oid			extension = get_extension_oid("cachier", true);

	if (!OidIsValid(extension))
		return false;
	LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
	/* the lock processed invalidations: dropped while we waited? */
	return get_extension_oid("cachier", true) == extension;
}

void
cachier_forget_relations(void)
{
	rels_valid = false;
}

/* Called from invalidation callbacks: no catalog access here. */
bool
cachier_is_our_relation(Oid relid)
{
	if (!rels_valid)
		return false;
	return relid == rels.entries || relid == rels.entries_pkey ||
		relid == rels.functions || relid == rels.functions_pkey ||
		(OidIsValid(rels.function_ids) && relid == rels.function_ids);
}
