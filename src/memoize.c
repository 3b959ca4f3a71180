/*-------------------------------------------------------------------------
 *
 * memoize.c
 *	  cachier_configure, cachier_memoize and cachier_unmemoize: the
 *	  per-function options in cachier.functions and the typed wrappers
 *	  whose calls go through the cache.
 *
 * Security rules, in this order in every entry point:
 *	1. the calling role must own the function (pg_proc_ownercheck) before
 *	   anything is looked up that could tell it something (whether the
 *	   function is memoized, or what a wrapper wraps);
 *	2. every option is validated before anything is changed;
 *	3. the wrapper is created and dropped AS THE CALLER (who owns it), from
 *	   SQL text in which every name is quoted and qualified, run with
 *	   search_path pinned (owner_exec.c);
 *	4. the options row is written as the storage owner through
 *	   owner_exec.c, and the wrapper it records is the function this file
 *	   created, never an OID a caller passed in.
 * The functions are C so that PUBLIC needs no helper in schema cachier.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "cachier_shared.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/comment.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

/*
 * The options, in the order of the parameters of cachier_configure (after
 * fn), with their columns in cachier.functions.
 */
enum
{
	Opt_stale_after, Opt_next_time, Opt_wait_timeout, Opt_allow_null,
	Opt_entry_size_limit, Opt_cleanup_stale, Opt_cleanup_interval, Opt_per_role,
	Opt_storage, Opt_max_stale_age, Opt_track_reads, Opt_depends_on,
	Opt_on_change, Opt_key_settings, Opt_shared_cache,
	NUM_OPTIONS
};

static const char *const option_names[NUM_OPTIONS] = {
	"stale_after", "next_time", "wait_timeout", "allow_null",
	"entry_size_limit", "cleanup_stale", "cleanup_interval", "per_role",
	"storage", "max_stale_age", "track_reads", "depends_on", "on_change",
	"key_settings", "shared_cache"
};

static const Oid option_types[NUM_OPTIONS] = {
	INTERVALOID, BOOLOID, INTERVALOID, BOOLOID, INT8OID, BOOLOID, INTERVALOID,
	BOOLOID, TEXTOID, INTERVALOID, BOOLOID, REGCLASSARRAYOID, TEXTOID,
	TEXTARRAYOID, BOOLOID
};

/*
 * Where the arguments are.  cachier_memoize takes name after
 * max_stale_age, then the options of 0.5 and reset; cachier_configure has
 * no name.  A call through an older version's SQL declaration has fewer
 * arguments: the missing ones are not given.
 */
#define CONFIGURE_RESET_ARG	(1 + NUM_OPTIONS)
#define MEMOIZE_NAME_ARG	(1 + Opt_max_stale_age + 1)
#define MEMOIZE_RESET_ARG	(2 + NUM_OPTIONS)

/* What one call says about the options of a function. */
typedef struct OptionRow
{
	Datum		values[NUM_OPTIONS];
	char		nulls[NUM_OPTIONS];
	bool		given[NUM_OPTIONS]; /* set to values/nulls */
	bool		reset[NUM_OPTIONS]; /* back to the default (NULL) */
} OptionRow;

/* ---------------------------------------------------------------- checks */

static Oid
required_function(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the function must not be NULL"),
				 errhint("Name it as 'my_function(integer)'::regprocedure.")));
	return PG_GETARG_OID(0);
}

static void
check_owner(Oid funcid)
{
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(funcid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", funcid)));
	if (!pg_proc_ownercheck(funcid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FUNCTION, get_func_name(funcid));
}

/* The function a wrapper wraps, or InvalidOid.  Only after check_owner. */
static Oid
wrapped_by(Oid funcid)
{
	int32		wrapper_id;

	if (cachier_storage_legacy())
		return cachier_first_oid_as_owner("SELECT fn FROM cachier.functions"
										  " WHERE wrapper OPERATOR(pg_catalog.=) $1",
										  REGPROCEDUREOID, ObjectIdGetDatum(funcid));
	wrapper_id = cachier_fn_id(funcid);
	if (wrapper_id == 0)
		return InvalidOid;		/* no id: recorded as nobody's wrapper */
	return cachier_fn_id_oid((int32)
							 cachier_first_oid_as_owner("SELECT fn_id FROM cachier.functions"
														" WHERE wrapper_id OPERATOR(pg_catalog.=) $1",
														INT4OID, Int32GetDatum(wrapper_id)));
}

/* Errors unless the caller owns funcid and it can be memoized. */
static void
check_memoizable(Oid funcid)
{
	Oid			wrapped;

	check_owner(funcid);
	cachier_check_cacheable(funcid);
	wrapped = wrapped_by(funcid);
	if (OidIsValid(wrapped))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is a cachier wrapper", format_procedure(funcid)),
				 errdetail("It wraps %s.", format_procedure(wrapped)),
				 errhint("Memoize or configure the wrapped function instead.")));
}

/* ---------------------------------------------------------------- options */

static Datum
interval_option(Datum value, int option)
{
	const char *name = option_names[option];
	Interval   *span = DatumGetIntervalP(value);

	if (option == Opt_cleanup_interval)
		(void) cachier_option_cleanup_interval_us(span);
	else if (option != Opt_max_stale_age)
		(void) cachier_option_interval_us(span, name);
	else if (cachier_interval_us(span) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_stale_age must not be negative"),
				 errhint("Give a positive interval such as '1 day', or NULL for twice stale_after.")));
	return value;
}

/* The elements of a one-dimensional array option; NULL elements refused. */
static void
array_elements(Datum value, Oid elemtype, const char *option, Datum **items, int *n)
{
	ArrayType  *array = DatumGetArrayTypeP(value);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool	   *nulls;
	int			i;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, items, &nulls, n);
	for (i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", option)));
}

/*
 * depends_on: relations whose changes the function's results depend on;
 * each must exist and be a table, view, materialized view or foreign
 * table that outlives the session.  Naming one needs no privilege on it:
 * its changes only invalidate the caller's own function's entries.
 */
static Datum
depends_on_option(Datum value)
{
	Datum	   *items;
	int			n;
	int			i;

	array_elements(value, REGCLASSOID, "depends_on", &items, &n);
	for (i = 0; i < n; i++)
	{
		Oid			relid = DatumGetObjectId(items[i]);
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		Form_pg_class rel;

		if (!HeapTupleIsValid(tuple))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", relid),
					 errhint("Name each relation of depends_on as 'schema.table'::regclass.")));
		rel = (Form_pg_class) GETSTRUCT(tuple);
		if (rel->relkind != RELKIND_RELATION && rel->relkind != RELKIND_PARTITIONED_TABLE &&
			rel->relkind != RELKIND_VIEW && rel->relkind != RELKIND_MATVIEW &&
			rel->relkind != RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" cannot be a dependency", NameStr(rel->relname)),
					 errdetail("depends_on names tables, views, materialized views and foreign tables.")));
		if (rel->relpersistence == RELPERSISTENCE_TEMP)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("a temporary table cannot be a dependency"),
					 errdetail("\"%s\" is dropped at the end of its session, leaving the option behind.",
							   NameStr(rel->relname))));
		ReleaseSysCache(tuple);
	}
	return value;
}

/*
 * Whether name is written as a setting's name can be: identifiers of
 * letters, digits, '_' and '$' (not starting with a digit or '$'),
 * joined by single dots ("timezone", "app.tenant").
 */
static bool
valid_setting_name(const char *name)
{
	bool		part_start = true;
	const char *p;

	for (p = name; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c == '.')
		{
			if (part_start)
				return false;
			part_start = true;
		}
		else if (isalpha(c) || c == '_' || c >= 0x80)
			part_start = false;
		else if ((isdigit(c) || c == '$') && !part_start)
			continue;
		else
			return false;
	}
	return !part_start;
}

/* key_settings: setting names (lower case, as settings are matched) */
static Datum
key_settings_option(Datum value)
{
	Datum	   *items;
	int			n;
	int			i;

	array_elements(value, TEXTOID, "key_settings", &items, &n);
	for (i = 0; i < n; i++)
	{
		char	   *name = TextDatumGetCString(items[i]);

		if (!valid_setting_name(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid setting name in key_settings: \"%s\"", name),
					 errhint("Name settings as SHOW does, e.g. 'TimeZone' or 'app.tenant'.")));
		for (char *c = name; *c; c++)
			*c = pg_tolower((unsigned char) *c);
		items[i] = CStringGetTextDatum(name);
	}
	return PointerGetDatum(construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Validate one option given as argument argno and put it in its column. */
static void
read_option(FunctionCallInfo fcinfo, int argno, int option, OptionRow *row)
{
	Datum		value = PG_GETARG_DATUM(argno);

	row->given[option] = true;
	row->nulls[option] = ' ';
	switch (option)
	{
		case Opt_stale_after:
		case Opt_wait_timeout:
		case Opt_cleanup_interval:
		case Opt_max_stale_age:
			row->values[option] = interval_option(value, option);
			break;
		case Opt_entry_size_limit:	/* given as text */
			row->values[option] = Int64GetDatum(cachier_parse_size(TextDatumGetCString(value),
																   option_names[option]));
			if (DatumGetInt64(row->values[option]) == CACHIER_NEVER)
				row->nulls[option] = 'n';
			break;
		case Opt_storage:		/* stored by its canonical name */
			cachier_check_storage(cachier_parse_storage(TextDatumGetCString(value)));
			row->values[option] = CStringGetTextDatum(cachier_storage_name(
											cachier_parse_storage(TextDatumGetCString(value))));
			break;
		case Opt_on_change:
			row->values[option] = CStringGetTextDatum(cachier_on_change_name(
											cachier_parse_on_change(TextDatumGetCString(value))));
			break;
		case Opt_depends_on:
			row->values[option] = depends_on_option(value);
			break;
		case Opt_key_settings:
			row->values[option] = key_settings_option(value);
			break;
		default:
			row->values[option] = value;
			break;
	}
}

/*
 * reset: the options that go back to their defaults ('all': every one);
 * an option also given in the same call takes the given value.
 */
static void
read_reset(FunctionCallInfo fcinfo, int argno, OptionRow *row)
{
	Datum	   *items;
	int			n;
	int			i;
	int			option;

	if (argno >= PG_NARGS() || PG_ARGISNULL(argno))
		return;
	array_elements(PG_GETARG_DATUM(argno), TEXTOID, "reset", &items, &n);
	for (i = 0; i < n; i++)
	{
		char	   *name = TextDatumGetCString(items[i]);

		if (pg_strcasecmp(name, "all") == 0)
		{
			memset(row->reset, true, sizeof(row->reset));
			continue;
		}
		for (option = 0; option < NUM_OPTIONS; option++)
			if (pg_strcasecmp(name, option_names[option]) == 0)
				break;
		if (option == NUM_OPTIONS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option in reset: \"%s\"", name),
					 errhint("Name options of cachier_configure, such as 'stale_after', or 'all'.")));
		row->reset[option] = true;
	}
}

/*
 * Read and validate the options given to a call: option i is argument
 * first + i, up to the first of NUM_OPTIONS options that are argument
 * split_at or later, which come one argument later (memoize's name sits
 * between them).  Options not given (NULL) are neither given nor reset.
 */
static void
read_options(FunctionCallInfo fcinfo, int first, int split_at, int reset_arg,
			 OptionRow *row)
{
	int			option;

	memset(row->nulls, 'n', sizeof(row->nulls));
	memset(row->given, false, sizeof(row->given));
	memset(row->reset, false, sizeof(row->reset));
	read_reset(fcinfo, reset_arg, row);
	for (option = 0; option < NUM_OPTIONS; option++)
	{
		int			argno = first + option;

		if (argno >= split_at)
			argno++;
		if (argno < PG_NARGS() && !PG_ARGISNULL(argno))
			read_option(fcinfo, argno, option, row);
	}
}

/*
 * Store what row says about the options of funcid as the storage owner,
 * recording wrapper (InvalidOid: none): given options take their values,
 * options reset go back to NULL, the others keep theirs.  Columns the
 * installed version's table does not have yet (an older version's
 * scripts call the 0.1-0.4 entry points) are left out; there the function
 * and wrapper columns hold OIDs.
 */
static void
write_options(Oid funcid, OptionRow *row, Oid wrapper)
{
	Oid			functions = cachier_relations()->functions;
	bool		legacy = cachier_storage_legacy();
	Datum		values[2 + NUM_OPTIONS];
	char		nulls[2 + NUM_OPTIONS];
	Oid			types[2 + NUM_OPTIONS];
	StringInfoData names;
	StringInfoData params;
	StringInfoData updates;
	int			nparams = 2;
	int			option;

	types[0] = types[1] = legacy ? REGPROCEDUREOID : INT4OID;
	nulls[0] = ' ';
	values[0] = legacy ? ObjectIdGetDatum(funcid) :
		Int32GetDatum(cachier_register_function(funcid, true));
	nulls[1] = OidIsValid(wrapper) ? ' ' : 'n';
	values[1] = legacy ? ObjectIdGetDatum(wrapper) :
		Int32GetDatum(OidIsValid(wrapper) ? cachier_register_function(wrapper, true) : 0);
	initStringInfo(&names);
	initStringInfo(&params);
	initStringInfo(&updates);
	appendStringInfoString(&names, legacy ? "fn, wrapper" : "fn_id, wrapper_id");
	appendStringInfoString(&params, "$1, $2");
	appendStringInfo(&updates, "%s = excluded.%s, ", legacy ? "wrapper" : "wrapper_id",
					 legacy ? "wrapper" : "wrapper_id");
	for (option = 0; option < NUM_OPTIONS; option++)
	{
		const char *name = option_names[option];

		if ((!row->given[option] && !row->reset[option]) ||
			get_attnum(functions, name) == InvalidAttrNumber)
			continue;
		types[nparams] = option_types[option];
		values[nparams] = row->values[option];
		nulls[nparams] = row->given[option] ? row->nulls[option] : 'n';
		nparams++;
		appendStringInfo(&names, ", %s", name);
		appendStringInfo(&params, ", $%d", nparams);
		appendStringInfo(&updates, "%s = excluded.%s, ", name, name);
	}
	cachier_exec_as_owner(psprintf("INSERT INTO cachier.functions AS f (%s) VALUES (%s)"
								   " ON CONFLICT (%s) DO UPDATE SET %supdated_at = pg_catalog.now()",
								   names.data, params.data, legacy ? "fn" : "fn_id",
								   updates.data),
						  nparams, types, values, nulls, NULL);
	CacheInvalidateRelcacheByRelid(functions);
	/* new cleanup options: the background worker plans again after commit */
	cachier_database_due_at_commit();
}

/*
 * Remove the options and entries of funcid (which the caller owns);
 * returns the wrapper that was recorded, or InvalidOid.
 */
static Oid
forget_function(Oid funcid)
{
	Oid			type = INT4OID;
	Datum		value = Int32GetDatum(cachier_fn_id(funcid));
	Oid			wrapper;

	cachier_memory_forget_function(funcid); /* [M] the memory tier too */
	if (cachier_storage_legacy())
	{
		type = REGPROCEDUREOID;
		value = ObjectIdGetDatum(funcid);
		cachier_exec_as_owner("DELETE FROM cachier.entries"
							  " WHERE function_id OPERATOR(pg_catalog.=) $1",
							  1, &type, &value, NULL, NULL);
		wrapper = cachier_first_oid_as_owner("DELETE FROM cachier.functions"
											 " WHERE fn OPERATOR(pg_catalog.=) $1 RETURNING wrapper",
											 type, value);
	}
	else if (DatumGetInt32(value) == 0)
		return InvalidOid;		/* no id: no options, no entries */
	else
	{
		cachier_exec_as_owner("DELETE FROM cachier.entries WHERE fn_id OPERATOR(pg_catalog.=) $1",
							  1, &type, &value, NULL, NULL);
		wrapper = cachier_first_oid_as_owner("DELETE FROM cachier.functions"
											 " WHERE fn_id OPERATOR(pg_catalog.=) $1"
											 " RETURNING wrapper_id",
											 type, value);
		wrapper = OidIsValid(wrapper) ? cachier_fn_id_oid((int32) wrapper) : InvalidOid;
	}
	CacheInvalidateRelcacheByRelid(cachier_relations()->functions);
	return wrapper;
}

/* ---------------------------------------------------------------- wrappers */

/* The schema and name a wrapper goes to, as given or by default. */
static List *
wrapper_name_parts(Form_pg_proc proc, text *name)
{
	char	   *schema = get_namespace_name(proc->pronamespace);
	char	   *wname;
	List	   *parts;

	if (name == NULL)
	{
		wname = psprintf("%s_cached", NameStr(proc->proname));
		truncate_identifier(wname, strlen(wname), false);
		return list_make2(makeString(schema), makeString(wname));
	}
	parts = stringToQualifiedNameList(text_to_cstring(name));
	if (list_length(parts) == 1)
		parts = lcons(makeString(schema), parts);
	if (list_length(parts) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid wrapper name \"%s\"", text_to_cstring(name)),
				 errhint("Give a function name, optionally qualified by a schema.")));
	return parts;
}

/*
 * A wrapper must be in a schema that pg_dump dumps and that outlives the
 * session: pg_dump skips the system schemas and the schemas of extensions
 * (the restore of cachier.functions would then fail as a whole, naming a
 * wrapper that does not exist), and a temporary schema goes with the
 * session, leaving cachier.functions naming a function that is gone.
 */
static void
check_wrapper_schema(List *names)
{
	const char *schema = strVal(linitial(names));
	bool		is_pg_temp = strcmp(schema, "pg_temp") == 0;
	Oid			nsp = is_pg_temp ? InvalidOid : get_namespace_oid(schema, true);
	const char *detail;

	if (is_pg_temp || (OidIsValid(nsp) && isAnyTempNamespace(nsp)))
		detail = "A function in a temporary schema is dropped at the end of the session, leaving its options behind.";
	else if (!OidIsValid(nsp))
		return;					/* CREATE FUNCTION reports it */
	else if (IsCatalogNamespace(nsp) || IsToastNamespace(nsp) ||
			 strcmp(schema, "information_schema") == 0)
		detail = "pg_dump does not dump functions in system schemas, so a restore would lose the wrapper and every function's options.";
	else if (OidIsValid(getExtensionOfObject(NamespaceRelationId, nsp)))
		detail = "pg_dump does not dump functions in the schema of an extension, so a restore would lose the wrapper and every function's options.";
	else
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_SCHEMA_NAME),
			 errmsg("a cachier wrapper cannot be created in schema \"%s\"", schema),
			 errdetail_internal("%s", detail),
			 errhint("Put the wrapper in a schema of yours, as in name => 'myschema.%s'.",
					 strVal(lsecond(names)))));
}

/*
 * Where a wrapper goes: name is 'x' or 'schema.x'; NULL means <fn>_cached
 * in fn's schema.
 */
static List *
wrapper_name(Form_pg_proc proc, text *name)
{
	List	   *parts = wrapper_name_parts(proc, name);

	check_wrapper_schema(parts);
	return parts;
}

/* The cachier.call_* entry point with the function's volatility and safety. */
static const char *
entry_point(Form_pg_proc proc)
{
	const char *vol = proc->provolatile == PROVOLATILE_IMMUTABLE ? "immutable" :
		proc->provolatile == PROVOLATILE_STABLE ? "stable" : "volatile";
	const char *par = proc->proparallel == PROPARALLEL_SAFE ? "safe" :
		proc->proparallel == PROPARALLEL_RESTRICTED ? "restricted" : "unsafe";

	return psprintf("call_%s_%s", vol, par);
}

/*
 * The CREATE FUNCTION text of the wrapper: the function's own argument
 * list (names, types, defaults, deparsed under the pinned search_path so
 * that every name in it is qualified), its result type, volatility and
 * parallel safety, and a body that is one call of cachier.call_*.  The
 * wrapper of an IMMUTABLE function is STABLE (as are the call_immutable_*
 * entry points): a cached value can change (cachier_clear, a new
 * definition), so no plan may fold one into a constant.
 */
static char *
wrapper_definition(Oid funcid, Form_pg_proc proc, List *names)
{
	StringInfoData sql;
	int			nestlevel = cachier_pin_search_path();
	char	   *arguments = TextDatumGetCString(DirectFunctionCall1(pg_get_function_arguments,
																	ObjectIdGetDatum(funcid)));
	char	   *rettype = format_type_be_qualified(proc->prorettype);
	int			i;

	cachier_unpin_search_path(nestlevel);
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE OR REPLACE FUNCTION %s(%s) RETURNS %s LANGUAGE sql %s PARALLEL %s"
					 " BEGIN ATOMIC SELECT cachier.%s('%u'::pg_catalog.regprocedure, NULL::%s",
					 NameListToQuotedString(names), arguments, rettype,
					 proc->provolatile == PROVOLATILE_VOLATILE ? "VOLATILE" : "STABLE",
					 proc->proparallel == PROPARALLEL_SAFE ? "SAFE" :
					 proc->proparallel == PROPARALLEL_RESTRICTED ? "RESTRICTED" : "UNSAFE",
					 entry_point(proc), funcid, rettype);
	for (i = 1; i <= proc->pronargs; i++)
		appendStringInfo(&sql, ", $%d", i);
	appendStringInfoString(&sql, "); END");
	return sql.data;
}

static void
drop_function(Oid funcid)
{
	cachier_exec_as_caller(psprintf("DROP FUNCTION %s", format_procedure_qualified(funcid)));
}

/*
 * Create (or replace) the wrapper of funcid named names, as the caller;
 * returns its OID.  old_wrapper is the wrapper recorded before.
 */
/*
 * The wrapper's body passes fn and a NULL of the result type to
 * cachier.call_* before the arguments, and no call takes more than
 * FUNC_MAX_ARGS arguments.
 */
#define MAX_WRAPPED_ARGS	(FUNC_MAX_ARGS - 2)

static void
check_wrappable(Oid funcid, Form_pg_proc proc)
{
	if (proc->pronargs > MAX_WRAPPED_ARGS)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_ARGUMENTS),
				 errmsg("function %s has too many arguments for a cachier wrapper",
						quote_qualified_identifier(get_namespace_name(proc->pronamespace),
												   NameStr(proc->proname))),
				 errdetail("A wrapper passes at most %d arguments; the function takes %d.",
						   MAX_WRAPPED_ARGS, proc->pronargs),
				 errhint("Call it through the cache with cachier_wrap(), or configure it with cachier_configure().")));
}

static Oid
create_wrapper(Oid funcid, Form_pg_proc proc, List *names, Oid old_wrapper)
{
	Oid		   *argtypes = proc->proargtypes.values;
	Oid			clash = LookupFuncName(names, proc->pronargs, argtypes, true);
	Oid			created;

	check_wrappable(funcid, proc);
	if (OidIsValid(clash) && clash != old_wrapper)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FUNCTION),
				 errmsg("function %s already exists", format_procedure(clash)),
				 errhint("Pass another wrapper name with name => '...'.")));
	/* memoized before under another name: the old wrapper goes */
	if (OidIsValid(old_wrapper) && !OidIsValid(clash))
		drop_function(old_wrapper);
	cachier_exec_as_caller(wrapper_definition(funcid, proc, names));
	CommandCounterIncrement();
	created = LookupFuncName(names, proc->pronargs, argtypes, false);
	CreateComments(created, ProcedureRelationId, 0,
				   psprintf("cached wrapper of %s (cachier)",
							format_procedure_qualified(funcid)));
	return created;
}

/* ---------------------------------------------------------------- SQL API */

/*
 * Each entry point runs with search_path pinned, as the PL/pgSQL versions
 * did with SET search_path: names in messages come out qualified, and
 * nothing in the caller's path is looked up.
 */

/* cachier_configure(fn, <options>) RETURNS void */
PG_FUNCTION_INFO_V1(cachier_configure);
Datum
cachier_configure(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	int			nestlevel = cachier_pin_search_path();
	OptionRow	row;

	check_memoizable(funcid);
	read_options(fcinfo, 1, INT_MAX, CONFIGURE_RESET_ARG, &row);
	write_options(funcid, &row, cachier_function_wrapper(funcid));
	cachier_unpin_search_path(nestlevel);
	PG_RETURN_VOID();
}

/* cachier_memoize(fn, <options>, name, <options of 0.5>, reset) RETURNS regprocedure */
PG_FUNCTION_INFO_V1(cachier_memoize);
Datum
cachier_memoize(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	/* (before 0.4 name came after the options, and there were fewer) */
	int			name_arg = Min(PG_NARGS() - 1, MEMOIZE_NAME_ARG);
	int			nestlevel = cachier_pin_search_path();
	OptionRow	row;
	HeapTuple	tuple;
	List	   *names;
	Oid			created;

	check_memoizable(funcid);
	read_options(fcinfo, 1, name_arg, MEMOIZE_RESET_ARG, &row);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	names = wrapper_name((Form_pg_proc) GETSTRUCT(tuple),
						 PG_ARGISNULL(name_arg) ? NULL : PG_GETARG_TEXT_PP(name_arg));
	created = create_wrapper(funcid, (Form_pg_proc) GETSTRUCT(tuple), names,
							 cachier_function_wrapper(funcid));
	ReleaseSysCache(tuple);
	write_options(funcid, &row, created);
	cachier_unpin_search_path(nestlevel);
	PG_RETURN_OID(created);
}

/*
 * The function that funcid names for unmemoize: itself, or the function
 * it wraps; the caller must own both, checked before anything is changed.
 */
static Oid
owned_target(Oid funcid)
{
	Oid			wrapped;

	check_owner(funcid);
	wrapped = wrapped_by(funcid);
	if (!OidIsValid(wrapped))
		return funcid;
	check_owner(wrapped);
	return wrapped;
}

/*
 * cachier_unmemoize(fn) RETURNS void: fn or the function it wraps loses
 * its wrapper, options and entries.  The caller must own what it names
 * and, for a wrapper, the wrapped function too.
 */
PG_FUNCTION_INFO_V1(cachier_unmemoize);
Datum
cachier_unmemoize(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	int			nestlevel = cachier_pin_search_path();
	Oid			wrapper;

	wrapper = forget_function(owned_target(funcid));
	if (OidIsValid(wrapper))
		drop_function(wrapper);
	cachier_unpin_search_path(nestlevel);
	PG_RETURN_VOID();
}

/*
 * Define the wrapper again from the function's current definition (its
 * defaults, volatility and parallel safety), as the caller, under the
 * wrapper's current name.  For wrapper_follow.c, after ALTER FUNCTION or
 * CREATE OR REPLACE FUNCTION of a memoized function.
 */
void
cachier_rewrap(Oid funcid, Oid wrapper)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	List	   *names;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	names = list_make2(makeString(get_namespace_name(get_func_namespace(wrapper))),
					   makeString(get_func_name(wrapper)));
	cachier_exec_as_caller(wrapper_definition(funcid, (Form_pg_proc) GETSTRUCT(tuple), names));
	ReleaseSysCache(tuple);
}

/* ----------------------------------------------- entry points of 0.1 - 0.3 */

/*
 * The install scripts of versions 0.1 to 0.3 create these helpers (and
 * PL/pgSQL versions of the functions above that call them); 0.4 drops
 * them, but for cachier.wrapper_of, which it revokes from PUBLIC.  They
 * stay in the library so that those scripts still run on the way to 0.4,
 * with the same checks as above.
 */

/* cachier.check_memoizable(fn) */
PG_FUNCTION_INFO_V1(cachier_check_memoizable);
Datum
cachier_check_memoizable(PG_FUNCTION_ARGS)
{
	check_memoizable(required_function(fcinfo));
	PG_RETURN_VOID();
}

/*
 * cachier.set_options(fn, wrapper, <options> [, storage]): the wrapper
 * must be a function the caller owns.
 */
PG_FUNCTION_INFO_V1(cachier_set_options);
Datum
cachier_set_options(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	Oid			wrapper = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	OptionRow	row;

	check_owner(funcid);
	if (OidIsValid(wrapper))
		check_owner(wrapper);
	/* these versions' calls stated the whole configuration */
	read_options(fcinfo, 2, INT_MAX, INT_MAX, &row);
	memset(row.reset, true, sizeof(row.reset));
	write_options(funcid, &row, wrapper);
	PG_RETURN_VOID();
}

/* cachier.wrapper_of(fn) RETURNS regprocedure */
PG_FUNCTION_INFO_V1(cachier_wrapper_of);
Datum
cachier_wrapper_of(PG_FUNCTION_ARGS)
{
	Oid			funcid = PG_GETARG_OID(0);
	Oid			wrapper;

	check_owner(funcid);
	wrapper = cachier_function_wrapper(funcid);
	if (!OidIsValid(wrapper))
		PG_RETURN_NULL();
	PG_RETURN_OID(wrapper);
}

/* cachier.forget(fn) RETURNS regprocedure: the wrapper, for the caller to drop */
PG_FUNCTION_INFO_V1(cachier_forget);
Datum
cachier_forget(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	Oid			wrapper;

	wrapper = forget_function(owned_target(funcid));
	if (!OidIsValid(wrapper))
		PG_RETURN_NULL();
	PG_RETURN_OID(wrapper);
}
