/*-------------------------------------------------------------------------
 *
 * relation_roots.c
 *	  What a read or a write of a relation stands for in the dependency
 *	  registry: its class (trackable, temporary, foreign, catalog, sequence,
 *	  cachier's own) and its roots -- the topmost parents through
 *	  pg_inherits, so that reads and writes of a partition, an inheritance
 *	  child or their parent all meet at the same relation.
 *
 * A backend-local cache, in its own memory context under
 * CacheMemoryContext, keeps the answer per relation.  Any relcache
 * invalidation marks the whole cache out of date (parents can change with
 * ATTACH/DETACH PARTITION or ALTER TABLE ... INHERIT, without an
 * invalidation of the child's own entry); it is emptied at the next use,
 * never inside the callback.  Its size is bounded by the relations the
 * backend touched since the last invalidation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "cachier.h"
#include "catalog/catalog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define MAX_ROOTS	16			/* more (multiple inheritance): keep the first */

typedef struct RootsEntry
{
	Oid			relid;			/* hash key */
	RelationClass rclass;
	int			nroots;
	Oid			roots[MAX_ROOTS];
} RootsEntry;

static MemoryContext roots_cxt = NULL;
static HTAB *roots_cache = NULL;
static bool roots_stale = false;

static void
roots_invalidated(Datum arg, Oid relid)
{
	roots_stale = true;
}

void
cachier_relation_roots_init(void)
{
	CacheRegisterRelcacheCallback(roots_invalidated, (Datum) 0);
}

static void
ensure_cache(void)
{
	HASHCTL		ctl;

	if (roots_cache != NULL && !roots_stale)
		return;
	if (roots_cxt == NULL)
		roots_cxt = AllocSetContextCreate(CacheMemoryContext, "cachier relation roots",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(roots_cxt);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RootsEntry);
	ctl.hcxt = roots_cxt;
	roots_cache = hash_create("cachier relation roots", 64, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	roots_stale = false;
}

/* The direct parents of relid, from pg_inherits. */
static List *
parents_of(Oid relid)
{
	Relation	rel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *parents = NIL;

	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tuple))->inhparent);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return parents;
}

static void
add_root(RootsEntry *e, Oid root)
{
	int			i;

	for (i = 0; i < e->nroots; i++)
		if (e->roots[i] == root)
			return;
	if (e->nroots < MAX_ROOTS)
		e->roots[e->nroots++] = root;
}

/* Walk up pg_inherits from relid; depth bounds a (corrupt) cycle. */
static void
find_roots(RootsEntry *e, Oid relid, int depth)
{
	List	   *parents;
	ListCell   *lc;

	CHECK_FOR_INTERRUPTS();
	parents = depth < 64 ? parents_of(relid) : NIL;
	if (parents == NIL)
	{
		add_root(e, relid);
		return;
	}
	foreach(lc, parents)
		find_roots(e, lfirst_oid(lc), depth + 1);
	list_free(parents);
}

static RelationClass
classify(Oid relid)
{
	char		kind;

	Oid			nsp;

	nsp = get_rel_namespace(relid);
	if (cachier_is_our_relation(relid) ||
		(OidIsValid(nsp) && nsp == get_namespace_oid("cachier", true)))
		return REL_OURS;
	if (IsCatalogRelationOid(relid))
		return REL_CATALOG;
	kind = get_rel_relkind(relid);
	if (kind == RELKIND_FOREIGN_TABLE)
		return REL_FOREIGN;
	if (kind == RELKIND_SEQUENCE)
		return REL_SEQUENCE;
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		return REL_TEMPORARY;
	return REL_TRACKABLE;
}

/*
 * The class of relid and, for a trackable one, its roots (valid until the
 * next call that misses the cache).
 */
RelationClass
cachier_relation_roots(Oid relid, const Oid **roots, int *nroots)
{
	RootsEntry *e;
	bool		found;

	ensure_cache();
	e = hash_search(roots_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		e->nroots = 0;
		e->rclass = REL_TRACKABLE;	/* until classified: an error leaves it so */
		PG_TRY();
		{
			e->rclass = classify(relid);
			if (e->rclass == REL_TRACKABLE)
				find_roots(e, relid, 0);
		}
		PG_CATCH();
		{
			hash_search(roots_cache, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	*roots = e->roots;
	*nroots = e->nroots;
	return e->rclass;
}

const char *
cachier_relation_class_name(RelationClass rc)
{
	switch (rc)
	{
		case REL_TEMPORARY:
			return "temporary";
		case REL_FOREIGN:
			return "foreign";
		case REL_CATALOG:
			return "system catalog";
		case REL_SEQUENCE:
			return "sequence";
		default:
			return "trackable";
	}
}
