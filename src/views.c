/*-------------------------------------------------------------------------
 *
 * views.c
 *	  The set-returning functions behind the views cachier_entries,
 *	  cachier_functions and cachier_stats (the counters of stats.c, the
 *	  memory tier's bytes and the entry totals).  Values are shown only to
 *	  the role whose call stored them; keys being computed for the first
 *	  time come from computing.c.  They read
 *	  cachier.entries and cachier.functions directly (a heap scan under
 *	  the caller's snapshot, no SQL text) and return only the rows the
 *	  calling role may see, so the views can be readable by PUBLIC.
 *
 * Who sees what, as in pg_stat_statements: members of pg_read_all_stats
 * (superusers too) see every row.  Any other role sees the options,
 * statistics and entries of the functions it owns (has_privs_of_role with
 * the owner) and the entries its own calls stored (role_id).  An entry's
 * arguments are shown to the function's owner, to the entry's role and to
 * pg_read_all_stats; to anybody else they are NULL.
 *
 * Robustness: the lock table is read once per call of cachier.entry_rows.
 * An entry whose function was dropped shows no options and "?" arguments.
 * Arguments whose type may refuse its stored form (an enum label renamed)
 * are decoded in a subtransaction and show "?" when that fails, so one bad
 * row never makes the view fail for everyone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "cachier_shared.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

/* What the entry view needs to know about one function, found once. */
typedef struct FunctionView
{
	int32		fn_id;			/* hash key: the storage id */
	Oid			funcid;			/* InvalidOid: the function is gone */
	bool		exists;
	bool		owned;			/* the caller has the owner's privileges */
	bool		may_fail;		/* an argument type may refuse its bytes */
	int64		stale_after_us; /* CACHIER_NEVER: never stale */
	bool		has_codec;		/* codec is set up (for values shown) */
	TypeCodec	codec;			/* of the result type */
} FunctionView;

/* Where the columns of a scanned table are (by name: columns get added). */
typedef struct Columns
{
	AttrNumber	function;
	AttrNumber	key;
	AttrNumber	created_at;
	AttrNumber	compute_ms;
	AttrNumber	args;
	AttrNumber	value;
	AttrNumber	role;			/* InvalidAttrNumber before role_id exists */
	AttrNumber	wrapper;
	AttrNumber	updated_at;
} Columns;


static AttrNumber
column(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

static Datum
get_column(HeapTuple tuple, TupleDesc desc, AttrNumber attnum, bool *isnull)
{
	if (attnum == InvalidAttrNumber)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return heap_getattr(tuple, attnum, desc, isnull);
}

/*
 * The columns that name the function by id (0.5 on), or by OID in storage
 * older than 0.5.
 */
static void
find_columns(TupleDesc desc, Columns *cols)
{
	cols->function = column(desc, cachier_storage_legacy() ? "function_id" : "fn_id");
	cols->key = column(desc, "key");
	cols->created_at = column(desc, "created_at");
	cols->compute_ms = column(desc, "compute_ms");
	cols->args = column(desc, "args");
	cols->value = column(desc, "value");
	cols->role = column(desc, "role_id");
	cols->wrapper = column(desc, cachier_storage_legacy() ? "wrapper" : "wrapper_id");
	cols->updated_at = column(desc, "updated_at");
}

/* ---------------------------------------------------------------- locks */

/*
 * The keys whose computing lock some session holds in this database, from
 * one read of the lock table.
 */
static HTAB *
computing_keys(void)
{
	LockData   *data = GetLockStatusData();
	HASHCTL		ctl;
	HTAB	   *keys;
	int			i;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = CurrentMemoryContext;
	keys = hash_create("cachier computing keys", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *lock = &data->locks[i];
		const LOCKTAG *tag = &lock->locktag;
		int64		key;

		if (tag->locktag_type != LOCKTAG_ADVISORY ||
			tag->locktag_field1 != MyDatabaseId ||
			tag->locktag_field4 != CACHIER_LOCKSPACE ||
			(lock->holdMask & LOCKBIT_ON(ExclusiveLock)) == 0)
			continue;
		key = (int64) (((uint64) tag->locktag_field2 << 32) | tag->locktag_field3);
		(void) hash_search(keys, &key, HASH_ENTER, NULL);
	}
	return keys;
}

/* ---------------------------------------------------------------- functions */

static HTAB *
function_views(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(FunctionView);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("cachier function views", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void fill_function_view(FunctionView *fv, Oid funcid);

static FunctionView *
function_view(HTAB *views, int32 fn_id)
{
	FunctionView *fv;
	bool		found;

	fv = hash_search(views, &fn_id, HASH_ENTER, &found);
	if (!found)
		fill_function_view(fv, cachier_fn_id_oid(fn_id));
	return fv;
}

/* What the view needs to know about one function, funcid. */
static void
fill_function_view(FunctionView *fv, Oid funcid)
{
	int			i;

	fv->funcid = funcid;
	fv->has_codec = false;
	fv->owned = cachier_owns_function(fv->funcid, &fv->exists);
	fv->may_fail = false;
	fv->stale_after_us = CACHIER_NEVER;
	if (fv->exists)
	{
		FunctionInfo *info = cachier_function_info(fv->funcid);
		EffectiveOptions eff;

		cachier_effective_options(info, &eff);
		fv->stale_after_us = eff.stale_after_us;
		for (i = 0; i < info->nargs; i++)
			fv->may_fail |= cachier_decode_may_fail(info->argtypes[i]);
	}
}

/* ---------------------------------------------------------------- arguments */

typedef struct FormatArgs
{
	Oid			funcid;
	bytea	   *args;
	char	   *text;
} FormatArgs;

static void
format_args(void *arg)
{
	FormatArgs *fa = arg;

	fa->text = cachier_format_args_text(fa->funcid, VARDATA_ANY(fa->args),
										VARSIZE_ANY_EXHDR(fa->args));
}

/* The readable arguments of an entry; "?" when they cannot be read. */
static text *
readable_args(FunctionView *fv, Datum args)
{
	FormatArgs	fa;
	ErrorData  *error;

	if (!fv->exists)
		return cstring_to_text("?");
	fa.funcid = fv->funcid;
	fa.args = DatumGetByteaPP(args);
	fa.text = NULL;
	if (!fv->may_fail)
		format_args(&fa);
	else if (!cachier_run_guarded(format_args, &fa, &error))
	{
		FreeErrorData(error);
		return cstring_to_text("?");
	}
	return cstring_to_text(fa.text);
}

/*
 * What the entry was keyed with besides its arguments (context_key.c):
 * "role alice, collation icu:und, TimeZone=UTC"; shown with the arguments.
 */
static bool
readable_context(FunctionView *fv, Datum args, bool args_null, Datum *text)
{
	bytea	   *bytes;

	if (args_null || !fv->exists)
		return false;
	bytes = DatumGetByteaPP(args);
	*text = CStringGetTextDatum(cachier_describe_context(cachier_function_info(fv->funcid),
														 VARDATA_ANY(bytes),
														 VARSIZE_ANY_EXHDR(bytes)));
	return true;
}

/* ---------------------------------------------------------------- values */

typedef struct FormatValue
{
	FunctionView *fv;
	bytea	   *bytes;
	char	   *text;
} FormatValue;

static void
format_value(void *arg)
{
	FormatValue *f = arg;
	TypeCodec  *codec = &f->fv->codec;
	Oid			output;
	bool		varlena;
	Datum		d;

	if (codec->fast == FAST_NONE)
		d = cachier_decode(codec, VARDATA_ANY(f->bytes), VARSIZE_ANY_EXHDR(f->bytes));
	else if (!cachier_decode_fast(codec, VARDATA_ANY(f->bytes), VARSIZE_ANY_EXHDR(f->bytes), &d))
		return;					/* not a valid value: shown as NULL */
	getTypeOutputInfo(codec->type, &output, &varlena);
	f->text = OidOutputFunctionCall(output, d);
}

/*
 * An entry's value as text, for the role whose call stored it (and
 * superusers): another role, even the function's owner, might not be
 * allowed to compute it (the tables it read), so it sees no value.  NULL
 * when the value cannot be read.
 */
static bool
readable_value(FunctionView *fv, Datum value, bool own, Datum *text)
{
	FormatValue f = {fv, NULL, NULL};
	ErrorData  *error;

	if (!fv->exists || !(own || superuser()))
		return false;
	if (!fv->has_codec)
	{
		cachier_codec_init(&fv->codec, cachier_function_info(fv->funcid)->rettype,
						   CurrentMemoryContext);
		fv->has_codec = true;
	}
	f.bytes = DatumGetByteaPP(value);
	if (!cachier_decode_may_fail(fv->codec.type))
		format_value(&f);
	else if (!cachier_run_guarded(format_value, &f, &error))
	{
		FreeErrorData(error);
		return false;
	}
	if (f.text == NULL)
		return false;
	*text = CStringGetTextDatum(f.text);
	return true;
}

/* ---------------------------------------------------------------- entries */

#define ENTRY_COLS 12

typedef struct EntryScan
{
	Relation	rel;
	TableScanDesc scan;
	Columns		cols;
} EntryScan;

static void
entry_scan_begin(EntryScan *es, Oid relid)
{
	es->rel = table_open(relid, AccessShareLock);
	es->scan = table_beginscan(es->rel, GetActiveSnapshot(), 0, NULL);
	find_columns(RelationGetDescr(es->rel), &es->cols);
}

static HeapTuple
entry_scan_next(EntryScan *es)
{
	return heap_getnext(es->scan, ForwardScanDirection);
}

static void
entry_scan_end(EntryScan *es)
{
	table_endscan(es->scan);
	table_close(es->rel, AccessShareLock);
}

static bool
is_own_entry(Datum role, bool role_null)
{
	return !role_null && has_privs_of_role(GetUserId(), DatumGetObjectId(role));
}

/* The entry was stored by the calling role itself. */
static bool
own_entry(Datum role, bool role_null)
{
	return !role_null && DatumGetObjectId(role) == GetUserId();
}

/* One visible entry's row; false when the caller may not see it. */
static bool
entry_row(HeapTuple tuple, TupleDesc desc, const Columns *cols, HTAB *views,
		  HTAB *computing, bool sees_all, Datum *values, bool *nulls)
{
	FunctionView *fv;
	bool		isnull;
	bool		args_null;
	Datum		args;
	Datum		value;
	int64		key;
	TimestampTz created_at;

	fv = function_view(views, DatumGetInt32(get_column(tuple, desc, cols->function, &isnull)));
	values[9] = get_column(tuple, desc, cols->role, &nulls[9]);
	if (!sees_all && !fv->owned && !is_own_entry(values[9], nulls[9]))
		return false;
	key = DatumGetInt64(get_column(tuple, desc, cols->key, &isnull));
	created_at = DatumGetTimestampTz(get_column(tuple, desc, cols->created_at, &isnull));
	nulls[0] = !fv->exists;
	values[0] = ObjectIdGetDatum(fv->funcid);
	values[1] = Int64GetDatum(key);
	/*
	 * Arguments are for the owner, the entry's role and pg_read_all_stats:
	 * today exactly the roles that see the row at all.
	 */
	args = get_column(tuple, desc, cols->args, &args_null);
	nulls[2] = args_null;
	if (!args_null)
		values[2] = PointerGetDatum(readable_args(fv, args));
	nulls[11] = !readable_context(fv, args, args_null, &values[11]);
	values[3] = TimestampTzGetDatum(created_at);
	nulls[4] = !fv->exists;
	values[4] = BoolGetDatum(fv->stale_after_us != CACHIER_NEVER &&
							 created_at + fv->stale_after_us <= GetCurrentTimestamp());
	values[5] = BoolGetDatum(hash_search(computing, &key, HASH_FIND, NULL) != NULL);
	values[6] = BoolGetDatum(true);	/* stored: computed at least once */
	value = get_column(tuple, desc, cols->value, &isnull);
	values[7] = Int32GetDatum(isnull ? 0 : (int32) (toast_raw_datum_size(value) - VARHDRSZ));
	values[8] = get_column(tuple, desc, cols->compute_ms, &nulls[8]);
	nulls[10] = isnull || !readable_value(fv, value, own_entry(values[9], nulls[9]),
										   &values[10]);
	return true;
}

/* A set of 64-bit keys in CurrentMemoryContext. */
static HTAB *
key_set(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("cachier entry keys", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

typedef struct StoredRows
{
	ReturnSetInfo *rsinfo;
	bool		sees_all;
	HTAB	   *keys;			/* of the rows returned from storage */
} StoredRows;

/*
 * A key being computed that has no stored row yet (its first computation):
 * a row with processing and without completed, shown to whoever would see
 * the entry once stored.
 */
static void
computing_row(Oid funcid, int64 key, Oid roleid, TimestampTz started,
			  const char *keyed, int keyed_len, void *arg)
{
	StoredRows *stored = arg;
	Datum		values[ENTRY_COLS];
	bool		nulls[ENTRY_COLS] = {false};
	FunctionView fv;

	if (hash_search(stored->keys, &key, HASH_FIND, NULL) != NULL)
		return;
	fill_function_view(&fv, funcid);
	if (!stored->sees_all && !fv.owned && !has_privs_of_role(GetUserId(), roleid))
		return;
	nulls[0] = !fv.exists;
	values[0] = ObjectIdGetDatum(funcid);
	values[1] = Int64GetDatum(key);
	nulls[2] = keyed == NULL;
	if (keyed != NULL)
	{
		bytea	   *bytes = palloc(VARHDRSZ + keyed_len);

		SET_VARSIZE(bytes, VARHDRSZ + keyed_len);
		memcpy(VARDATA(bytes), keyed, keyed_len);
		values[2] = PointerGetDatum(readable_args(&fv, PointerGetDatum(bytes)));
		nulls[11] = !readable_context(&fv, PointerGetDatum(bytes), false, &values[11]);
	}
	else
		nulls[11] = true;
	nulls[3] = nulls[4] = true; /* created_at, stale: nothing stored yet */
	values[5] = BoolGetDatum(true);
	values[6] = BoolGetDatum(false);
	values[7] = Int32GetDatum(0);
	nulls[8] = true;
	values[9] = ObjectIdGetDatum(roleid);
	nulls[10] = true;
	tuplestore_putvalues(stored->rsinfo->setResult, stored->rsinfo->setDesc, values, nulls);
}

/*
 * cachier.entry_rows(): the entries of cachier.entries the caller may see,
 * with stale and processing computed now, then the keys being computed
 * for the first time (completed false).
 */
PG_FUNCTION_INFO_V1(cachier_entry_rows);
Datum
cachier_entry_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HTAB	   *views = function_views();
	HTAB	   *computing = computing_keys();
	bool		sees_all = cachier_sees_all_stats();
	EntryScan	es;
	HeapTuple	tuple;
	StoredRows	stored;

	InitMaterializedSRF(fcinfo, 0);
	stored.rsinfo = rsinfo;
	stored.sees_all = sees_all;
	stored.keys = key_set();
	entry_scan_begin(&es, cachier_relations()->entries);
	while ((tuple = entry_scan_next(&es)) != NULL)
	{
		Datum		values[ENTRY_COLS];
		bool		nulls[ENTRY_COLS] = {false};

		CHECK_FOR_INTERRUPTS();
		if (entry_row(tuple, RelationGetDescr(es.rel), &es.cols, views, computing,
					  sees_all, values, nulls))
		{
			int64		key = DatumGetInt64(values[1]);

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			(void) hash_search(stored.keys, &key, HASH_ENTER, NULL);
		}
	}
	entry_scan_end(&es);
	cachier_computing_visit(computing_row, &stored);
	return (Datum) 0;
}

/*
 * The number and bytes of the entries of each function, for
 * cachier_stats: a hash of EntryTotals by function, in CurrentMemoryContext.
 * The caller decides which functions to show.
 */
HTAB *
cachier_entry_totals(void)
{
	HASHCTL		ctl;
	HTAB	   *totals;
	HTAB	   *views;
	EntryScan	es;
	HeapTuple	tuple;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(EntryTotals);
	ctl.hcxt = CurrentMemoryContext;
	totals = hash_create("cachier entry totals", 64, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	views = function_views();
	entry_scan_begin(&es, cachier_relations()->entries);
	while ((tuple = entry_scan_next(&es)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(es.rel);
		bool		isnull;
		int32		fn_id = DatumGetInt32(get_column(tuple, desc, es.cols.function, &isnull));
		Datum		value = get_column(tuple, desc, es.cols.value, &isnull);
		FunctionView *fv;
		Oid			funcid;
		EntryTotals *t;
		bool		found;

		CHECK_FOR_INTERRUPTS();
		/* each id is resolved once (function_view reads no options here) */
		fv = hash_search(views, &fn_id, HASH_ENTER, &found);
		if (!found)
			fv->funcid = cachier_fn_id_oid(fn_id);
		funcid = fv->funcid;
		if (!OidIsValid(funcid))
			continue;			/* the function is gone */
		t = hash_search(totals, &funcid, HASH_ENTER, &found);
		if (!found)
			t->entries = t->bytes = 0;
		t->entries++;
		t->bytes += isnull ? 0 : toast_raw_datum_size(value) - VARHDRSZ;
	}
	entry_scan_end(&es);
	return totals;
}

/* ---------------------------------------------------------------- options */

/* function, wrapper, the options, updated_at (after max_stale_age) */
#define FUNCTION_COLS (3 + OPTION_VALUES)

/* key_settings as an array; unset: the setting cachier.key_settings */
static Datum
key_settings_value(const EffectiveOptions *eff, bool *isnull)
{
	Datum	   *items;
	int			n = 0;
	List	   *names = NIL;
	ListCell   *lc;

	*isnull = false;
	if (eff->nkey_settings >= 0)
	{
		items = palloc(sizeof(Datum) * Max(1, eff->nkey_settings));
		for (n = 0; n < eff->nkey_settings; n++)
			items[n] = CStringGetTextDatum(eff->key_settings[n]);
	}
	else
	{
		const char *setting = GetConfigOption("cachier.key_settings", true, false);

		if (setting == NULL || !SplitGUCList(pstrdup(setting), ',', &names))
		{
			*isnull = true;
			return (Datum) 0;
		}
		items = palloc(sizeof(Datum) * Max(1, list_length(names)));
		foreach(lc, names)
			items[n++] = CStringGetTextDatum((char *) lfirst(lc));
	}
	return PointerGetDatum(construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * The effective options of a function as SQL values, in the order of
 * cachier.effective_options (OPTION_VALUES columns): for the view and that
 * function.
 */
void
cachier_option_values(Oid funcid, Datum *values, bool *nulls)
{
	FunctionInfo *info = cachier_function_info(funcid);
	EffectiveOptions eff;
	Datum	   *relations;
	int			i;

	cachier_effective_options(info, &eff);
	nulls[0] = eff.stale_after_us == CACHIER_NEVER;
	values[0] = IntervalPGetDatum(cachier_us_interval(eff.stale_after_us));
	values[1] = BoolGetDatum(eff.next_time);
	values[2] = IntervalPGetDatum(cachier_us_interval(eff.wait_timeout_us));
	values[3] = BoolGetDatum(eff.allow_null);
	nulls[4] = eff.entry_size_limit == CACHIER_NEVER;
	values[4] = Int64GetDatum(eff.entry_size_limit);
	values[5] = BoolGetDatum(eff.cleanup_stale);
	values[6] = IntervalPGetDatum(cachier_us_interval(eff.cleanup_interval_us));
	values[7] = BoolGetDatum(eff.per_role);
	values[8] = CStringGetTextDatum(cachier_storage_name(eff.storage));
	nulls[9] = eff.max_stale_age_us == CACHIER_NEVER;
	values[9] = IntervalPGetDatum(cachier_us_interval(eff.max_stale_age_us));
	values[10] = BoolGetDatum(eff.track_reads);
	/* depends_on: NULL when none is declared */
	nulls[11] = info->options.ndepends_on < 0;
	if (!nulls[11])
	{
		relations = palloc(sizeof(Datum) * Max(1, eff.ndepends_on));
		for (i = 0; i < eff.ndepends_on; i++)
			relations[i] = ObjectIdGetDatum(eff.depends_on[i]);
		values[11] = PointerGetDatum(construct_array(relations, eff.ndepends_on, REGCLASSOID,
													 sizeof(Oid), true, TYPALIGN_INT));
	}
	values[12] = CStringGetTextDatum(cachier_on_change_name(eff.on_change));
	values[13] = key_settings_value(&eff, &nulls[13]);
	values[14] = BoolGetDatum(eff.shared_cache);
}

/*
 * cachier.function_rows(): the configured functions the caller may see,
 * with their effective options.
 */
PG_FUNCTION_INFO_V1(cachier_function_rows);
Datum
cachier_function_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		legacy = cachier_storage_legacy();
	EntryScan	es;
	HeapTuple	tuple;

	InitMaterializedSRF(fcinfo, 0);
	entry_scan_begin(&es, cachier_relations()->functions);
	es.cols.function = column(RelationGetDescr(es.rel), legacy ? "fn" : "fn_id");
	while ((tuple = entry_scan_next(&es)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(es.rel);
		Datum		values[FUNCTION_COLS];
		bool		nulls[FUNCTION_COLS] = {false};
		Datum		options[OPTION_VALUES];
		bool		options_null[OPTION_VALUES] = {false};
		bool		isnull;
		Datum		id = get_column(tuple, desc, es.cols.function, &isnull);
		Oid			funcid = cachier_fn_id_oid(DatumGetInt32(id));
		Datum		wrapper;

		CHECK_FOR_INTERRUPTS();
		if (!OidIsValid(funcid) || !cachier_may_see_function(funcid))
			continue;
		values[0] = ObjectIdGetDatum(funcid);
		wrapper = get_column(tuple, desc, es.cols.wrapper, &nulls[1]);
		if (!nulls[1])
		{
			values[1] = ObjectIdGetDatum(cachier_fn_id_oid(DatumGetInt32(wrapper)));
			nulls[1] = !OidIsValid(DatumGetObjectId(values[1]));
		}
		cachier_option_values(funcid, options, options_null);
		memcpy(values + 2, options, sizeof(Datum) * 10);
		memcpy(nulls + 2, options_null, sizeof(bool) * 10);
		values[12] = get_column(tuple, desc, es.cols.updated_at, &nulls[12]);
		memcpy(values + 13, options + 10, sizeof(Datum) * (OPTION_VALUES - 10));
		memcpy(nulls + 13, options_null + 10, sizeof(bool) * (OPTION_VALUES - 10));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	entry_scan_end(&es);
	return (Datum) 0;
}

/* ---------------------------------------------------------------- statistics */

#define STATS_COLS 18			/* 14 before 0.5: [F] invalidations, [M] memory tier */

static void
put_stats_row(ReturnSetInfo *rsinfo, Oid funcid, const FunctionStats *fs,
			  const EntryTotals *totals, HTAB *memory)
{
	EntryTotals *in_memory;
	Datum		values[STATS_COLS];
	bool		nulls[STATS_COLS] = {false};
	FunctionStats zero;

	if (fs == NULL)
	{
		memset(&zero, 0, sizeof(zero));
		fs = &zero;
	}
	values[0] = ObjectIdGetDatum(funcid);
	values[1] = Int64GetDatum(fs->hits);
	values[2] = Int64GetDatum(fs->misses);
	values[3] = Int64GetDatum(fs->stale_hits);
	values[4] = Int64GetDatum(fs->waits);
	values[5] = Int64GetDatum(fs->wait_timeouts);
	values[6] = Int64GetDatum(fs->computations);
	values[7] = Int64GetDatum(fs->refreshes_queued);
	values[8] = Int64GetDatum(fs->refreshes_done);
	values[9] = Int64GetDatum(fs->refreshes_failed);
	values[10] = Float8GetDatum(fs->compute_ms);
	values[11] = Float8GetDatum(fs->saved_ms);
	values[12] = Int64GetDatum(totals ? totals->entries : 0);
	values[13] = Int64GetDatum(totals ? totals->bytes : 0);
	values[14] = Int64GetDatum(fs->invalidations);	/* [F] */
	/* [M] the memory tier; a 0.4 definition of cachier.stats() takes 14 */
	in_memory = memory ? hash_search(memory, &funcid, HASH_FIND, NULL) : NULL;
	values[15] = Int64GetDatum(fs->memory_hits);
	values[16] = Int64GetDatum(fs->memory_evictions);
	values[17] = Int64GetDatum(in_memory ? in_memory->bytes : 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * cachier.stats(): per function of this database that still exists and
 * that the caller may see (cachier_may_see_function), its counters and its
 * entries in the table: a function with either has a row.
 */
PG_FUNCTION_INFO_V1(cachier_stats);
Datum
cachier_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HTAB	   *totals;
	FunctionStats *copies;
	EntryTotals *t;
	HASH_SEQ_STATUS status;
	HTAB	   *memory;			/* [M] */
	int			n;
	int			i;

	cachier_stats_require_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	cachier_memory_flush_counts();	/* [M] this backend's counts first */
	memory = cachier_memory_function_bytes();	/* [M] */
	totals = cachier_entry_totals();
	copies = cachier_stats_copy(&n);
	for (i = 0; i < n; i++)
	{
		Oid			funcid = copies[i].key.funcid;
		bool		found;

		t = hash_search(totals, &funcid, HASH_FIND, &found);
		if (cachier_may_see_function(funcid))
			put_stats_row(rsinfo, funcid, &copies[i], t, memory);
		if (found)
			hash_search(totals, &funcid, HASH_REMOVE, NULL);
	}
	/* functions with entries but no counters (evicted, or since restart) */
	hash_seq_init(&status, totals);
	while ((t = hash_seq_search(&status)) != NULL)
	{
		if (cachier_may_see_function(t->funcid))
			put_stats_row(rsinfo, t->funcid, NULL, t, memory);
	}
	return (Datum) 0;
}
