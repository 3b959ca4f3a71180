/*-------------------------------------------------------------------------
 *
 * freshness.c
 *	  The freshness policy of a cached call: whether a stored entry may
 *	  still be served, how a computation is run so that what it read is
 *	  known, and whether (and with which epoch) its result may be stored.
 *	  Also the SQL functions cachier_invalidate() and
 *	  cachier.dependency_rows().
 *
 * An entry whose epoch is NULL read nothing trackable and is valid as long
 * as its shelf life.  An entry with an epoch is valid only while its
 * function's epoch (dep_registry.c) is unchanged, and only where epochs
 * mean something: a server with cachier preloaded, not in recovery, in a
 * READ COMMITTED transaction that has not itself changed a relation the
 * function depends on.  Elsewhere such entries are neither served nor
 * stored: the call computes directly.
 *
 * A computation: read the function's epoch e0 and the counter g0, then
 * (READ COMMITTED) push a fresh snapshot, so the data read is at least as
 * new as e0; capture the relations read (read_capture.c); afterwards
 * register them, and store with epoch e0 only if nothing the computation
 * read was written by a commit after g0 (write marks) and the epoch is
 * still e0.  Any change committed later bumps the epoch and so makes the
 * entry invalid.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "cachier_shared.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

static bool warned_untrackable = false;
static bool warned_not_preloaded = false;

/* ---------------------------------------------------------------- helpers */

/* Declared relations as registry roots: a trackable one's roots, else itself. */
static int
declared_roots(FreshCall *fc, Oid *out, int max)
{
	int			n = 0;
	int			i;
	int			j;

	for (i = 0; i < fc->ndeclared; i++)
	{
		const Oid  *roots;
		int			nroots;

		if (cachier_relation_roots(fc->declared[i], &roots, &nroots) != REL_TRACKABLE)
		{
			roots = &fc->declared[i];
			nroots = 1;
		}
		for (j = 0; j < nroots && n < max; j++)
			out[n++] = roots[j];
	}
	return n;
}

/* Every relation the function is known to depend on (palloc'd). */
static Oid *
known_relations(FreshCall *fc, int *n, bool *overflow)
{
	Oid		   *rels = NULL;
	Oid		   *all;
	int			nrels = 0;

	*overflow = false;
	if (fc->deps)
		nrels = cachier_dep_function_rels(fc->deps, &rels, NULL, overflow);
	all = palloc((nrels + fc->ndeclared * 16 + 1) * sizeof(Oid));
	if (nrels > 0)
		memcpy(all, rels, nrels * sizeof(Oid));
	*n = nrels + declared_roots(fc, all + nrels, fc->ndeclared * 16);
	return all;
}

/* Whether this transaction changed something the function depends on. */
static bool
wrote_dependency(FreshCall *fc)
{
	int			n;
	bool		overflow;
	Oid		   *rels;

	if (!cachier_watch_any())
		return false;
	rels = known_relations(fc, &n, &overflow);
	return overflow || cachier_watch_wrote(rels, n);
}

/* Where epochs cannot be used, why; NULL where they can. */
static const char *
epochs_unusable(void)
{
	if (!cachier_dep_available())
		return "cachier is not in shared_preload_libraries, so changes to the tables it read cannot be seen.";
	if (RecoveryInProgress())
		return "The server is a hot standby: results that depend on tables are neither served nor stored here.";
	if (IsolationUsesXactSnapshot())
		return "Under REPEATABLE READ and SERIALIZABLE, results that depend on tables are neither served nor stored.";
	if (IsParallelWorker())
		return "A parallel worker cannot see what its transaction changed: results that depend on tables are computed.";
	return NULL;
}

static char *
changed_text(Oid relid)
{
	char	   *name = OidIsValid(relid) ? get_rel_name(relid) : NULL;

	if (name == NULL)
		return "A relation it depends on changed.";
	return psprintf("%s changed.", name);
}

/* ---------------------------------------------------------------- calls */

void
cachier_fresh_begin(FreshCall *fc, CallSite *site, const EffectiveOptions *eff)
{
	fc->track_reads = eff->track_reads;
	fc->declared = eff->depends_on;
	fc->ndeclared = eff->ndepends_on;
	fc->track = fc->track_reads || fc->ndeclared > 0;
	fc->computing = false;
	fc->pushed_snapshot = false;
	fc->deps = NULL;
	if (fc->track && cachier_dep_available())
	{
		if (site->deps == NULL)
			site->deps = cachier_dep_function(site->funcid, true);
		fc->deps = site->deps;
	}
}

/*
 * Whether the call must compute directly, neither reading nor storing:
 * the transaction changed a relation the function depends on, or it
 * declares dependencies where epochs cannot be used.
 */
bool
cachier_fresh_bypass(FreshCall *fc, const char **why)
{
	if (!fc->track)
		return false;
	if (fc->ndeclared > 0 && (*why = epochs_unusable()) != NULL)
		return true;
	if (wrote_dependency(fc))
	{
		*why = "This transaction changed a relation it depends on.";
		return true;
	}
	return false;
}

/*
 * Why a found entry may not be served, or NULL.  *invalidated: because
 * something it depends on changed (the caller recomputes and stores);
 * otherwise the caller computes without storing.
 */
const char *
cachier_fresh_unusable(FreshCall *fc, const StoredEntry *entry, bool *invalidated)
{
	const char *why;

	*invalidated = false;
	if (!entry->has_epoch || !fc->track)
		return NULL;
	if ((why = epochs_unusable()) != NULL)
		return why;
	if (fc->deps == NULL)
		return "Too many functions are tracked (cachier.max_dependent_functions).";
	if (entry->epoch == 0)
	{
		/* no epoch is ever 0 (see dep_registry.c) */
		*invalidated = true;
		return "It was stored while its reads were not tracked (track_reads off, cachier before 0.5, or another server).";
	}
	if ((uint64) entry->epoch != cachier_dep_epoch(fc->deps))
	{
		*invalidated = true;
		return changed_text(fc->deps->last_changed);
	}
	return NULL;
}

/* An entry was served inside another computation: it inherits its reads. */
void
cachier_fresh_served(FreshCall *fc, const StoredEntry *entry)
{
	Oid		   *rels;
	int			n;
	bool		overflow;
	int			i;

	if (!cachier_capture_active() || !entry->has_epoch || !fc->track)
		return;
	rels = known_relations(fc, &n, &overflow);
	if (overflow)
		cachier_capture_unknown();
	for (i = 0; i < n; i++)
		cachier_capture_inherit(rels[i]);
	pfree(rels);
}

/* Before computing: the epoch, the counter, then a fresh snapshot. */
void
cachier_fresh_compute_begin(FreshCall *fc)
{
	fc->computing = true;
	fc->pushed_snapshot = false;
	if (fc->deps != NULL)
	{
		fc->e0 = cachier_dep_epoch(fc->deps);
		fc->g0 = cachier_dep_counter();
		if (!IsolationUsesXactSnapshot() && !IsInParallelMode())
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			fc->pushed_snapshot = true;
		}
	}
	fc->read_at = IsolationUsesXactSnapshot() ?
		GetCurrentTransactionStartTimestamp() : GetCurrentTimestamp();
	if (fc->track_reads)
		cachier_capture_push(&fc->frame);
}

/*
 * After computing (error false: normally).  After an error the snapshot
 * is left to the (sub)transaction's abort, which pops it with any others
 * the failed computation pushed.
 */
void
cachier_fresh_compute_end(FreshCall *fc, bool error)
{
	if (fc->track_reads)
		cachier_capture_pop(&fc->frame);
	if (fc->pushed_snapshot && !error)
		PopActiveSnapshot();
}

static void
warn_once(bool *warned, const char *signature, const char *why, const char *hint)
{
	if (*warned)
		return;
	*warned = true;
	ereport(WARNING,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("results of %s are not cached", signature),
			 errdetail_internal("%s", why),
			 errhint("%s", hint)));
}

/* Register every relation read or declared; false if the registry is full. */
static bool
register_all(FreshCall *fc, Oid *rels, int n, int ncaptured)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!cachier_dep_register(fc->deps, rels[i], i < ncaptured ? 'c' : 'd'))
			return false;
	return true;
}

/*
 * After a computation: NULL if its result may be stored (*has_epoch and
 * *epoch say how), else why not.  Gives the once-per-session WARNINGs.
 */
const char *
cachier_fresh_storable(FreshCall *fc, const char *signature, bool *has_epoch, int64 *epoch)
{
	CaptureFrame *frame = &fc->frame;
	int			ncaptured = fc->track_reads ? frame->nrels : 0;
	Oid		   *rels;
	int			n;
	const char *why;
	int			i;

	*has_epoch = false;
	if (!fc->track)
	{
		/* epoch 0: served while the function is not tracked, never after */
		*has_epoch = true;
		*epoch = 0;
		return NULL;
	}
	if (fc->track_reads && fc->ndeclared == 0 && frame->untrackable != REL_TRACKABLE)
	{
		char	   *name = get_rel_name(frame->untrackable_rel);

		why = psprintf("It read the %s relation %s, whose changes cachier cannot see.",
					   cachier_relation_class_name(frame->untrackable),
					   name ? name : "(dropped)");
		warn_once(&warned_untrackable, signature, why,
				  "Set depends_on to the relations whose changes matter, or track_reads => false to rely on stale_after.");
		return why;
	}
	if (fc->track_reads && fc->ndeclared == 0 && frame->unknown)
		return "It used a cached value whose dependencies are not all known.";
	rels = palloc((ncaptured + fc->ndeclared * 16 + 1) * sizeof(Oid));
	if (ncaptured > 0)
		memcpy(rels, frame->rels, ncaptured * sizeof(Oid));
	n = ncaptured + declared_roots(fc, rels + ncaptured, fc->ndeclared * 16);
	if (n == 0)
		return NULL;			/* read nothing trackable: a NULL epoch */
	if (!cachier_dep_available())
	{
		why = "It read tables, and without shared_preload_libraries cachier cannot see their changes.";
		warn_once(&warned_not_preloaded, signature, why,
				  "Add cachier to shared_preload_libraries and restart, or set track_reads => false to rely on stale_after.");
		return why;
	}
	if ((why = epochs_unusable()) != NULL)
		return why;
	if (fc->deps == NULL)
		return "Too many functions are tracked (cachier.max_dependent_functions).";
	if (!fc->pushed_snapshot)
		return "It was computed in a parallel operation, with a snapshot older than its epoch.";
	if (!register_all(fc, rels, n, ncaptured))
		return "The dependency registry is full (cachier.max_dependency_relations).";
	if (cachier_watch_wrote(rels, n))
		return "This transaction changed a relation it read.";
	for (i = 0; i < n; i++)
		if (cachier_dep_written_since(MyDatabaseId, rels[i], fc->g0))
			return psprintf("It was computed while a change to %s committed.",
							get_rel_name(rels[i]) ? get_rel_name(rels[i]) : "a relation it read");
	if (cachier_dep_epoch(fc->deps) != fc->e0)
		return psprintf("It was computed while: %s", changed_text(fc->deps->last_changed));
	*has_epoch = true;
	*epoch = (int64) fc->e0;
	return NULL;
}

/*
 * The epoch a value given by cachier_precache gets: the function's
 * current one, where epochs can be used and it is tracked.
 */
bool
cachier_fresh_current_epoch(FreshCall *fc, int64 *epoch)
{
	Oid			rels[FUNC_MAX_ARGS];
	int			n;

	*epoch = 0;					/* see cachier_fresh_storable */
	if (!fc->track)
		return true;
	if (fc->deps == NULL || epochs_unusable() != NULL)
		return false;
	n = declared_roots(fc, rels, lengthof(rels));
	if (!register_all(fc, rels, n, 0))
		return false;
	*epoch = (int64) cachier_dep_epoch(fc->deps);
	return true;
}

/*
 * Whether a stored entry (of a background refresh) was invalidated by a
 * change since it was computed.
 */
bool
cachier_fresh_outdated(CallSite *site, const EffectiveOptions *eff, bool has_epoch, int64 epoch)
{
	FreshCall	fc;
	StoredEntry entry;
	bool		invalidated;

	cachier_fresh_begin(&fc, site, eff);
	memset(&entry, 0, sizeof(entry));
	entry.has_epoch = has_epoch;
	entry.epoch = epoch;
	(void) cachier_fresh_unusable(&fc, &entry, &invalidated);
	return invalidated;
}

/* cachier_clear: computations running now must not store their result. */
void
cachier_fresh_cleared(Oid funcid)
{
	DepFunction *f;

	if (!cachier_dep_available())
		return;
	f = cachier_dep_function(funcid, false);
	if (f)
		cachier_dep_bump(f, InvalidOid);
}

/*
 * The relations a function's computations read (captured since the
 * server started, in deps, which may be NULL) and the ones its options
 * declare, palloc'd; for privilege checks of context keys (issue 11).
 * *overflow: it read more than its slot lists, so the list is not all.
 */
const Oid *
cachier_function_reads(const EffectiveOptions *eff, DepFunction *deps, int *n,
					   bool *overflow)
{
	FreshCall	fc;

	memset(&fc, 0, sizeof(fc));
	fc.declared = eff->depends_on;
	fc.ndeclared = eff->ndepends_on;
	fc.deps = deps;
	return known_relations(&fc, n, overflow);
}

/* ---------------------------------------------------------------- SQL */

/* May the current role invalidate what depends on relid: could it change it? */
static void
check_may_invalidate(Oid relid)
{
	AclMode		modes = ACL_INSERT | ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE;

	if (pg_class_ownercheck(relid, GetUserId()) ||
		pg_class_aclmask(relid, GetUserId(), modes, ACLMASK_ANY) != 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to invalidate the entries that depend on %s",
					get_rel_name(relid)),
			 errdetail("Only a role that may change a relation may invalidate what depends on it."),
			 errhint("Ask its owner, or a role with INSERT, UPDATE, DELETE or TRUNCATE on it.")));
}

/*
 * cachier_invalidate(rel regclass) RETURNS bigint: invalidate every entry
 * that depends on rel, for a change cachier cannot see; how many entries
 * that was.
 */
PG_FUNCTION_INFO_V1(cachier_invalidate);
Datum
cachier_invalidate(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	const Oid  *roots;
	int			nroots;
	int64		count = 0;
	int			r;

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	check_may_invalidate(relid);
	if (!cachier_dep_available())
		PG_RETURN_INT64(0);		/* nothing with an epoch is served here */
	if (cachier_relation_roots(relid, &roots, &nroots) != REL_TRACKABLE)
	{
		roots = &relid;
		nroots = 1;
	}
	for (r = 0; r < nroots; r++)
	{
		DepFunction **funcs;
		int			n = cachier_dep_dependents(roots[r], &funcs);
		int			i;

		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			count += cachier_store_count_tracked(funcs[i]->funcid);
			cachier_dep_bump(funcs[i], relid);
			cachier_count_function(funcs[i]->funcid, STAT_INVALIDATION, 0);
		}
	}
	PG_RETURN_INT64(count);
}

/*
 * cachier.dependency_rows(): for each tracked function of this database
 * that the caller may see, the relations it depends on and how each is
 * known ('captured' or 'declared').
 */
PG_FUNCTION_INFO_V1(cachier_dependency_rows);
Datum
cachier_dependency_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DepFunction **funcs;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (!cachier_dep_available())
		return (Datum) 0;
	n = cachier_dep_database_functions(&funcs);
	for (i = 0; i < n; i++)
	{
		Oid			funcid = funcs[i]->funcid;
		Oid		   *rels;
		char	   *how;
		bool		overflow;
		int			nrels;
		int			j;

		CHECK_FOR_INTERRUPTS();
		if (get_func_name(funcid) == NULL || !cachier_may_see_function(funcid))
			continue;
		nrels = cachier_dep_function_rels(funcs[i], &rels, &how, &overflow);
		for (j = 0; j < nrels; j++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			if (get_rel_name(rels[j]) == NULL)
				continue;		/* dropped */
			values[0] = ObjectIdGetDatum(funcid);
			values[1] = ObjectIdGetDatum(rels[j]);
			values[2] = CStringGetTextDatum(how[j] == 'd' ? "declared" : "captured");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
