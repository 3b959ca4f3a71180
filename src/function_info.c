/*-------------------------------------------------------------------------
 *
 * function_info.c
 *	  What cachier knows about a cached function: its identity (signature
 *	  and a digest of its definition), argument and result types, and its
 *	  per-function options from cachier.functions.
 *
 * Entries live in a backend-local hash in CacheMemoryContext; what an
 * entry points to (signature, argument types, type hash values) lives in
 * the entry's own small memory context.  Invalidation follows plancache:
 *
 *	- a change of a pg_proc row marks only the entry of that function (the
 *	  syscache callback's hash value; 0 means everything), a change of a
 *	  pg_type row only the entries whose argument or result types include
 *	  it.  A temporary table (a new pg_type row) therefore touches nothing.
 *	- a relcache invalidation of cachier.functions marks the options of
 *	  every entry; only they are read again, the definition is kept.
 *	- an entry read again gets a new version; call sites compare it with
 *	  the version they were prepared with (cachier_callsite_stale).
 *
 * When an entry is read again its old memory context is not freed at once
 * but moved under "retired" and freed at the end of the transaction: a
 * call in progress (a cached function calling itself, or another cached
 * function whose call reads the entry again) and every caller holding a
 * pointer into the entry (key.c, views.c, ...) keeps valid data until the
 * transaction ends.  No call of a function spans a transaction end, so
 * that is enough, and what a backend keeps is bounded by one context per
 * function plus what one transaction replaced.
 *
 * Invalidation callbacks only flip flags: they never touch the catalogs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "cachier.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

uint64		cachier_proc_generation = 1;

static HTAB *function_cache = NULL;

/* versions handed out to entries read again; never reused */
static uint64 last_version = 0;

/* replaced entry contexts, freed at the end of the transaction */
static MemoryContext retired = NULL;

/* ---------------------------------------------------------------- invalidation */

static bool
uses_type(const FunctionInfo *info, uint32 hashvalue)
{
	int			i;

	for (i = 0; i < info->ntypes; i++)
		if (info->type_hashes[i] == hashvalue)
			return true;
	return false;
}

/* hashvalue 0: every function changed */
static void
proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	FunctionInfo *info;

	cachier_proc_generation++;
	if (function_cache == NULL)
		return;
	hash_seq_init(&status, function_cache);
	while ((info = hash_seq_search(&status)) != NULL)
		if (hashvalue == 0 || info->proc_hash == hashvalue)
			info->valid = false;
}

/* hashvalue 0: every type changed */
static void
type_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	FunctionInfo *info;

	if (function_cache == NULL)
		return;
	hash_seq_init(&status, function_cache);
	while ((info = hash_seq_search(&status)) != NULL)
		if (hashvalue == 0 || uses_type(info, hashvalue))
			info->valid = false;
}

static void
relcache_changed(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	FunctionInfo *info;

	if (OidIsValid(relid) && !cachier_is_our_relation(relid))
		return;
	cachier_forget_relations();
	if (function_cache == NULL)
		return;
	hash_seq_init(&status, function_cache);
	while ((info = hash_seq_search(&status)) != NULL)
		info->options_valid = false;
}

/* Nothing reads a replaced entry once its transaction is over. */
static void
free_retired(XactEvent event, void *arg)
{
	if (retired == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			MemoryContextDeleteChildren(retired);
			break;
		default:
			break;
	}
}

void
cachier_register_invalidation(void)
{
	CacheRegisterSyscacheCallback(PROCOID, proc_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, type_changed, (Datum) 0);
	CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
	RegisterXactCallback(free_retired, NULL);
}

/* ---------------------------------------------------------------- identity */

static void
append_field(StringInfo buf, const char *text)
{
	if (text)
		appendStringInfoString(buf, text);
	appendStringInfoChar(buf, '\0');
}

static char *
text_attribute(HeapTuple tuple, int attno)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(PROCOID, tuple, attno, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Whether proconfig pins search_path (ALTER FUNCTION ... SET search_path). */
static bool
pins_search_path(HeapTuple tuple)
{
	bool		isnull;
	Datum		config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;

	if (isnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false, TYPALIGN_INT,
					  &items, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && strncmp(TextDatumGetCString(items[i]), "search_path=", 12) == 0)
			return true;
	return false;
}

/* proconfig ("name=value" settings), one field each */
static void
append_config(StringInfo buf, ArrayType *config)
{
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(config, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
	for (i = 0; i < n; i++)
		append_field(buf, nulls[i] ? NULL : TextDatumGetCString(items[i]));
}

/*
 * The digest covers everything that decides what the function returns and
 * is the same on every server: names, never OIDs.  CREATE OR REPLACE or
 * ALTER FUNCTION that changes any of it gives a new identity, so the old
 * entries become misses by themselves.  For a SECURITY DEFINER function
 * that includes the owner's name: ALTER FUNCTION ... OWNER TO changes
 * whose rights compute the results.
 */
static void
compute_identity(FunctionInfo *info, HeapTuple tuple)
{
	Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tuple);
	StringInfoData buf;
	bool		isnull;
	Datum		config;

	initStringInfo(&buf);
	append_field(&buf, "cachier identity v1");
	append_field(&buf, info->signature);
	append_field(&buf, format_type_be_qualified(proc->prorettype));
	append_field(&buf, get_language_name(proc->prolang, false));
	append_field(&buf, text_attribute(tuple, Anum_pg_proc_prosrc));
	append_field(&buf, text_attribute(tuple, Anum_pg_proc_probin));
	(void) SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosqlbody, &isnull);
	if (!isnull)
		append_field(&buf, TextDatumGetCString(DirectFunctionCall1(pg_get_function_sqlbody,
																   ObjectIdGetDatum(info->funcid))));
	appendStringInfo(&buf, "%c%c%c%c%c", proc->provolatile,
					 proc->proisstrict ? 't' : 'f', proc->prosecdef ? 't' : 'f',
					 proc->proleakproof ? 't' : 'f', proc->proparallel);
	append_field(&buf, "");
	config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	if (!isnull)
		append_config(&buf, DatumGetArrayTypeP(config));
	/*
	 * A SECURITY DEFINER function computes with its owner's rights: its
	 * identity holds the owner's name and OID, so that no other role, not
	 * even one renamed to the old owner's name, is served its entries.
	 */
	if (proc->prosecdef)
	{
		append_field(&buf, GetUserNameFromId(proc->proowner, false));
		appendStringInfo(&buf, "%u", proc->proowner);
		append_field(&buf, "");
	}
	cachier_sha256((uint8 *) buf.data, buf.len, info->identity);
	memcpy(&info->fingerprint, info->identity, sizeof(int64));
	pfree(buf.data);
}

/* ---------------------------------------------------------------- options */

static void
options_unset(CachierOptions *opts)
{
	opts->has_row = false;
	opts->wrapper_id = 0;
	opts->stale_after_us = CACHIER_NEVER;
	opts->next_time = -1;
	opts->wait_timeout_us = CACHIER_NEVER;
	opts->allow_null = -1;
	opts->entry_size_limit = CACHIER_NEVER;
	opts->cleanup_stale = -1;
	opts->cleanup_interval_us = CACHIER_NEVER;
	opts->per_role = -1;
	opts->storage = -1;
	opts->max_stale_age_us = CACHIER_NEVER;
	opts->track_reads = -1;
	opts->ndepends_on = -1;
	opts->depends_on = NULL;
	opts->on_change = -1;
	opts->nkey_settings = -1;
	opts->key_settings = NULL;
	opts->shared_cache = -1;	/* [M] */
}

static int64
interval_column(Datum *values, bool *nulls, int attno)
{
	if (nulls[attno - 1])
		return CACHIER_NEVER;
	return cachier_interval_us(DatumGetIntervalP(values[attno - 1]));
}

static int
bool_column(Datum *values, bool *nulls, int attno)
{
	return nulls[attno - 1] ? -1 : (int) DatumGetBool(values[attno - 1]);
}

/*
 * Columns of cachier.functions, in table order.  Before 0.5 the first two
 * were fn and wrapper, regprocedure (OIDs); from 0.5 they are ids.
 */
enum
{
	Col_fn_id = 1, Col_wrapper_id, Col_stale_after, Col_next_time, Col_wait_timeout,
	Col_allow_null, Col_entry_size_limit, Col_cleanup_stale,
	Col_cleanup_interval, Col_per_role, Col_updated_at, Col_storage,
	Col_max_stale_age, Col_track_reads, Col_depends_on, Col_on_change,
	Col_key_settings, Col_shared_cache
};

#define MAX_FUNCTIONS_ATTS	Col_shared_cache

/* The relations of depends_on, in mcxt. */
static void
load_depends_on(CachierOptions *opts, Datum value, MemoryContext mcxt)
{
	ArrayType  *array = DatumGetArrayTypeP(value);
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(array, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &items, &nulls, &n);
	opts->depends_on = MemoryContextAlloc(mcxt, sizeof(Oid) * Max(1, n));
	opts->ndepends_on = 0;
	for (i = 0; i < n; i++)
		if (!nulls[i])
			opts->depends_on[opts->ndepends_on++] = DatumGetObjectId(items[i]);
}

/* The setting names of key_settings, in mcxt. */
static void
load_key_settings(CachierOptions *opts, Datum value, MemoryContext mcxt)
{
	ArrayType  *array = DatumGetArrayTypeP(value);
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
	opts->key_settings = MemoryContextAlloc(mcxt, sizeof(char *) * Max(1, n));
	opts->nkey_settings = 0;
	for (i = 0; i < n; i++)
		if (!nulls[i])
			opts->key_settings[opts->nkey_settings++] =
				MemoryContextStrdup(mcxt, TextDatumGetCString(items[i]));
}

/* The options of one row of cachier.functions; arrays go to mcxt. */
static void
options_from_row(CachierOptions *opts, Datum *values, bool *nulls, MemoryContext mcxt)
{
	opts->has_row = true;
	/* (an OID before 0.5, an id since; cachier_function_wrapper resolves it) */
	opts->wrapper_id = nulls[Col_wrapper_id - 1] ? 0 :
		DatumGetInt32(values[Col_wrapper_id - 1]);
	opts->stale_after_us = interval_column(values, nulls, Col_stale_after);
	opts->next_time = bool_column(values, nulls, Col_next_time);
	opts->wait_timeout_us = interval_column(values, nulls, Col_wait_timeout);
	opts->allow_null = bool_column(values, nulls, Col_allow_null);
	opts->entry_size_limit = nulls[Col_entry_size_limit - 1] ? CACHIER_NEVER :
		DatumGetInt64(values[Col_entry_size_limit - 1]);
	opts->cleanup_stale = bool_column(values, nulls, Col_cleanup_stale);
	opts->cleanup_interval_us = interval_column(values, nulls, Col_cleanup_interval);
	opts->per_role = bool_column(values, nulls, Col_per_role);
	/* (columns a version before 0.5 does not have are NULL here) */
	if (!nulls[Col_storage - 1])
		opts->storage = cachier_parse_storage(TextDatumGetCString(values[Col_storage - 1]));
	opts->max_stale_age_us = interval_column(values, nulls, Col_max_stale_age);
	opts->track_reads = bool_column(values, nulls, Col_track_reads);
	if (!nulls[Col_depends_on - 1])
		load_depends_on(opts, values[Col_depends_on - 1], mcxt);
	if (!nulls[Col_on_change - 1])
		opts->on_change = cachier_parse_on_change(TextDatumGetCString(values[Col_on_change - 1]));
	if (!nulls[Col_key_settings - 1])
		load_key_settings(opts, values[Col_key_settings - 1], mcxt);
	opts->shared_cache = bool_column(values, nulls, Col_shared_cache);	/* [M] */
}

/*
 * Read the options of info's function (found by its id, or by its OID in
 * storage older than 0.5) into *opts and its id into *fn_id; the arrays
 * go to mcxt.
 */
static void
load_options(const FunctionInfo *info, CachierOptions *opts, int32 *fn_id,
			 MemoryContext mcxt)
{
	const CachierRelations *rels = cachier_relations();
	bool		legacy = cachier_storage_legacy();
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tuple;

	options_unset(opts);
	*fn_id = legacy ? 0 : cachier_lookup_fn_id(info->signature);
	if (!legacy && *fn_id == 0)
		return;
	rel = table_open(rels->functions, AccessShareLock);
	if (legacy)
		ScanKeyInit(&skey, Col_fn_id, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(info->funcid));
	else
		ScanKeyInit(&skey, Col_fn_id, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum(*fn_id));
	scan = systable_beginscan(rel, rels->functions_pkey, true, SnapshotSelf, 1, &skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Datum		values[MAX_FUNCTIONS_ATTS];
		bool		nulls[MAX_FUNCTIONS_ATTS];
		TupleDesc	desc = RelationGetDescr(rel);

		if (desc->natts > MAX_FUNCTIONS_ATTS)
			elog(ERROR, "cachier.functions has unexpected columns");
		memset(nulls, true, sizeof(nulls));
		heap_deform_tuple(tuple, desc, values, nulls);
		options_from_row(opts, values, nulls, mcxt);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * The wrapper recorded for funcid, or InvalidOid: resolved when asked
 * (memoize.c), not when the options are read by a call.
 */
Oid
cachier_function_wrapper(Oid funcid)
{
	int32		wrapper_id = cachier_function_info(funcid)->options.wrapper_id;

	return wrapper_id == 0 ? InvalidOid : cachier_fn_id_oid(wrapper_id);
}

OnChange
cachier_parse_on_change(const char *text)
{
	if (pg_strcasecmp(text, "invalidate") == 0)
		return ON_CHANGE_INVALIDATE;
	if (pg_strcasecmp(text, "refresh") == 0)
		return ON_CHANGE_REFRESH;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for on_change: \"%s\"", text),
			 errhint("Use 'invalidate' (the default: the next call computes) or 'refresh' (the old value is served while the background worker refreshes it).")));
	return ON_CHANGE_INVALIDATE;
}

const char *
cachier_on_change_name(OnChange on_change)
{
	return on_change == ON_CHANGE_REFRESH ? "refresh" : "invalidate";
}

/* max_stale_age: the option, else twice the shelf life, else no bound */
static int64
default_max_stale_age(int64 option, int64 stale_after_us)
{
	if (option != CACHIER_NEVER)
		return option;
	if (stale_after_us == CACHIER_NEVER || stale_after_us > PG_INT64_MAX / 2)
		return CACHIER_NEVER;
	return 2 * stale_after_us;
}

void
cachier_effective_options(const FunctionInfo *info, EffectiveOptions *eff)
{
	const CachierOptions *o = &info->options;

	eff->stale_after_us = o->stale_after_us != CACHIER_NEVER ?
		o->stale_after_us : cachier_default_stale_after_us();
	eff->next_time = o->next_time >= 0 ? o->next_time : cachier_default_next_time;
	eff->wait_timeout_us = o->wait_timeout_us != CACHIER_NEVER ?
		o->wait_timeout_us : cachier_default_wait_timeout_us();
	eff->allow_null = o->allow_null >= 0 ? o->allow_null : cachier_default_allow_null;
	eff->entry_size_limit = o->entry_size_limit != CACHIER_NEVER ?
		o->entry_size_limit : cachier_default_entry_size_limit();
	eff->cleanup_stale = o->cleanup_stale > 0;
	eff->cleanup_interval_us = o->cleanup_interval_us != CACHIER_NEVER ?
		o->cleanup_interval_us : cachier_default_cleanup_interval_us();
	/*
	 * per_role when the owner did not say: on for non-IMMUTABLE SECURITY
	 * INVOKER functions (their results may depend on who calls: row-level
	 * security, privileges, current_user), off for IMMUTABLE ones (their
	 * contract says they do not) and SECURITY DEFINER ones (they compute
	 * with their owner's rights, which their identity holds).
	 */
	eff->per_role = o->per_role >= 0 ? o->per_role > 0 :
		info->volatility != PROVOLATILE_IMMUTABLE && !info->secdef;
	eff->storage = o->storage >= 0 ? (Storage) o->storage : STORAGE_TABLE;
	eff->max_stale_age_us = default_max_stale_age(o->max_stale_age_us,
												  eff->stale_after_us);
	eff->track_reads = o->track_reads >= 0 ? o->track_reads : cachier_default_track_reads;
	eff->ndepends_on = o->ndepends_on > 0 ? o->ndepends_on : 0;
	eff->depends_on = o->ndepends_on > 0 ? o->depends_on : NULL;
	eff->on_change = o->on_change >= 0 ? (OnChange) o->on_change : ON_CHANGE_INVALIDATE;
	eff->nkey_settings = o->nkey_settings;
	eff->key_settings = o->nkey_settings >= 0 ? o->key_settings : NULL;
	eff->shared_cache = o->shared_cache != 0;	/* [M] default on */
}


/* ---------------------------------------------------------------- checks */

static bool
is_unsupported_type(Oid type)
{
	return IsPolymorphicType(type) || type == ANYOID || type == INTERNALOID ||
		type == CSTRINGOID || type == TRIGGEROID || type == EVENT_TRIGGEROID ||
		type == VOIDOID || get_typtype(type) == TYPTYPE_PSEUDO;
}

/*
 * Refuse what cannot be cached, with a clear error.  Results of type
 * record are refused too: their binary form names a row type that only
 * the computing backend knows.
 */
void
cachier_check_cacheable(Oid funcid)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	const char *kind = NULL;
	int			i;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", funcid)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	if (proc->prokind == PROKIND_AGGREGATE)
		kind = "aggregate functions";
	else if (proc->prokind == PROKIND_WINDOW)
		kind = "window functions";
	else if (proc->prokind == PROKIND_PROCEDURE)
		kind = "procedures";
	else if (proc->proretset)
		kind = "set-returning functions";
	if (kind)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cachier does not support %s", kind),
				 errdetail("%s is one of them.", format_procedure(funcid)),
				 errhint("Cache a plain function that returns one value.")));
	if (is_unsupported_type(proc->prorettype))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cachier cannot cache results of type %s",
						format_type_be(proc->prorettype)),
				 errdetail("%s returns %s.", format_procedure(funcid),
						   format_type_be(proc->prorettype)),
				 proc->prorettype == RECORDOID ?
				 errhint("Declare a composite type and return it instead of record.") : 0));
	for (i = 0; i < proc->pronargs; i++)
		if (is_unsupported_type(proc->proargtypes.values[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cachier does not support arguments of type %s",
							format_type_be(proc->proargtypes.values[i])),
					 errdetail("Argument %d of %s is of that type.", i + 1,
							   format_procedure(funcid))));
	ReleaseSysCache(tuple);
}

/* ---------------------------------------------------------------- the cache */

/* Keep mcxt until the end of the transaction, then free it. */
static void
retire(MemoryContext mcxt)
{
	if (mcxt == NULL)
		return;
	if (retired == NULL)
		retired = AllocSetContextCreate(CacheMemoryContext, "cachier retired functions",
										ALLOCSET_SMALL_SIZES);
	MemoryContextSetParent(mcxt, retired);
}

/* the hash values of the argument and result types, for type_changed */
static void
remember_types(FunctionInfo *info)
{
	int			i;

	info->ntypes = info->nargs + 1;
	info->type_hashes = MemoryContextAlloc(info->mcxt, sizeof(uint32) * info->ntypes);
	for (i = 0; i < info->nargs; i++)
		info->type_hashes[i] = GetSysCacheHashValue1(TYPEOID,
													 ObjectIdGetDatum(info->argtypes[i]));
	info->type_hashes[info->nargs] = GetSysCacheHashValue1(TYPEOID,
														   ObjectIdGetDatum(info->rettype));
}

/* Read the definition of info->funcid into info, in a new info->mcxt. */
static void
fill_info(FunctionInfo *info)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(info->funcid));
	Form_pg_proc proc;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", info->funcid)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	info->signature = MemoryContextStrdup(info->mcxt,
										  format_procedure_qualified(info->funcid));
	MemoryContextSetIdentifier(info->mcxt, info->signature);
	info->nargs = proc->pronargs;
	info->argtypes = MemoryContextAlloc(info->mcxt, sizeof(Oid) * Max(1, info->nargs));
	memcpy(info->argtypes, proc->proargtypes.values, sizeof(Oid) * info->nargs);
	info->rettype = proc->prorettype;
	info->strict = proc->proisstrict;
	info->secdef = proc->prosecdef;
	info->volatility = proc->provolatile;
	info->temporary = isAnyTempNamespace(proc->pronamespace);
	info->pins_search_path = pins_search_path(tuple);
	remember_types(info);
	compute_identity(info, tuple);
	ReleaseSysCache(tuple);
	info->options_mcxt = AllocSetContextCreate(info->mcxt, "cachier options",
											   ALLOCSET_SMALL_SIZES);
	load_options(info, &info->options, &info->fn_id, info->options_mcxt);
}

/*
 * Read the definition again into a copy with its own context; the entry
 * takes it over only when it is complete, and its old context is retired.
 * Flags cleared while reading (catalog access processes invalidations)
 * stay cleared, so the caller reads once more.
 */
static void
refill(FunctionInfo *info)
{
	FunctionInfo fresh = *info;

	info->valid = true;
	info->options_valid = true;
	fresh.mcxt = AllocSetContextCreate(CacheMemoryContext, "cachier function",
									   ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		fill_info(&fresh);
	}
	PG_CATCH();
	{
		info->valid = false;
		retire(fresh.mcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	retire(info->mcxt);
	fresh.valid = info->valid;
	fresh.options_valid = info->options_valid;
	fresh.version = ++last_version;
	*info = fresh;
}

/*
 * Read only the options and the id again (cachier.functions or
 * cachier.function_ids changed), into a new options context; the old one
 * is retired (a caller may still hold its arrays).
 */
static void
reload_options(FunctionInfo *info)
{
	CachierOptions options;
	int32		fn_id;
	MemoryContext mcxt = AllocSetContextCreate(info->mcxt, "cachier options",
											   ALLOCSET_SMALL_SIZES);

	info->options_valid = true;
	PG_TRY();
	{
		load_options(info, &options, &fn_id, mcxt);
	}
	PG_CATCH();
	{
		info->options_valid = false;
		retire(mcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	retire(info->options_mcxt);
	info->options_mcxt = mcxt;
	info->options = options;
	info->fn_id = fn_id;
}

FunctionInfo *
cachier_function_info(Oid funcid)
{
	FunctionInfo *info;
	bool		found;

	if (function_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(FunctionInfo);
		ctl.hcxt = CacheMemoryContext;
		function_cache = hash_create("cachier functions", 64, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	info = hash_search(function_cache, &funcid, HASH_ENTER, &found);
	if (!found)
	{
		memset(info, 0, sizeof(FunctionInfo));
		info->funcid = funcid;
		info->proc_hash = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(funcid));
	}

	/*
	 * Reading catalogs may process invalidations that clear a flag again:
	 * then the data may be outdated, so read once more.
	 */
	while (!info->valid || !info->options_valid)
	{
		if (!info->valid)
			refill(info);
		else
			reload_options(info);
	}
	return info;
}

/*
 * The id of funcid for the table tier: what cachier_function_info found
 * (0: the function has none, so it has no entries).
 */
int32
cachier_fn_id(Oid funcid)
{
	return cachier_function_info(funcid)->fn_id;
}
