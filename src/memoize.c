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
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/comment.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

/*
 * Columns of cachier.functions that a call writes, in table order; the
 * options are in the same order as the parameters of cachier_configure.
 */
enum
{
	Opt_fn, Opt_wrapper, Opt_stale_after, Opt_next_time, Opt_wait_timeout,
	Opt_allow_null, Opt_entry_size_limit, Opt_cleanup_stale,
	Opt_cleanup_interval, Opt_per_role, Opt_storage, Opt_max_stale_age,
	NUM_OPTION_COLUMNS
};

#define NUM_OPTIONS		(NUM_OPTION_COLUMNS - Opt_stale_after)

static const char *const option_columns[NUM_OPTION_COLUMNS] = {
	"fn", "wrapper", "stale_after", "next_time", "wait_timeout", "allow_null",
	"entry_size_limit", "cleanup_stale", "cleanup_interval", "per_role",
	"storage", "max_stale_age"
};

static const Oid option_types[NUM_OPTION_COLUMNS] = {
	REGPROCEDUREOID, REGPROCEDUREOID, INTERVALOID, BOOLOID, INTERVALOID,
	BOOLOID, INT8OID, BOOLOID, INTERVALOID, BOOLOID, TEXTOID, INTERVALOID
};

/* One row of cachier.functions, ready for SPI. */
typedef struct OptionRow
{
	Datum		values[NUM_OPTION_COLUMNS];
	char		nulls[NUM_OPTION_COLUMNS];
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
	return cachier_first_oid_as_owner("SELECT fn FROM cachier.functions"
									  " WHERE wrapper OPERATOR(pg_catalog.=) $1",
									  REGPROCEDUREOID, ObjectIdGetDatum(funcid));
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
interval_option(Datum value, int column)
{
	const char *name = option_columns[column];
	Interval   *span = DatumGetIntervalP(value);

	if (column == Opt_cleanup_interval)
		(void) cachier_option_cleanup_interval_us(span);
	else if (column != Opt_max_stale_age)
		(void) cachier_option_interval_us(span, name);
	else if (cachier_interval_us(span) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_stale_age must not be negative"),
				 errhint("Give a positive interval such as '1 day', or NULL for twice stale_after.")));
	return value;
}

/* Validate one option given as argument argno and put it in its column. */
static void
read_option(FunctionCallInfo fcinfo, int argno, int column, OptionRow *row)
{
	Datum		value = PG_GETARG_DATUM(argno);

	row->nulls[column] = ' ';
	switch (option_types[column])
	{
		case INTERVALOID:
			row->values[column] = interval_option(value, column);
			break;
		case INT8OID:			/* entry_size_limit, given as text */
			row->values[column] = Int64GetDatum(cachier_parse_size(TextDatumGetCString(value),
																   option_columns[column]));
			if (DatumGetInt64(row->values[column]) == CACHIER_NEVER)
				row->nulls[column] = 'n';
			break;
		case TEXTOID:			/* storage, stored by its canonical name */
			row->values[column] = CStringGetTextDatum(cachier_storage_name(
											cachier_parse_storage(TextDatumGetCString(value))));
			break;
		default:
			row->values[column] = value;
			break;
	}
}

/*
 * Read and validate noptions options from the arguments that start at
 * first; options not given stay NULL ("use the setting").
 */
static void
read_options(FunctionCallInfo fcinfo, Oid funcid, int first, int noptions,
			 OptionRow *row)
{
	int			i;

	memset(row->nulls, 'n', sizeof(row->nulls));
	row->nulls[Opt_fn] = ' ';
	row->values[Opt_fn] = ObjectIdGetDatum(funcid);
	for (i = 0; i < noptions && i < NUM_OPTIONS; i++)
		if (!PG_ARGISNULL(first + i))
			read_option(fcinfo, first + i, Opt_stale_after + i, row);
}

/*
 * Store the options row of row's function as the storage owner, recording
 * wrapper (InvalidOid: none).  A call states the whole configuration.
 * Columns the installed version's table does not have yet (an older
 * version's scripts call the 0.1-0.3 entry points) are left out.
 */
static void
write_options(OptionRow *row, Oid wrapper)
{
	Oid			functions = cachier_relations()->functions;
	StringInfoData names;
	StringInfoData params;
	StringInfoData updates;
	int			ncolumns = 0;
	int			i;

	row->nulls[Opt_wrapper] = OidIsValid(wrapper) ? ' ' : 'n';
	row->values[Opt_wrapper] = ObjectIdGetDatum(wrapper);
	initStringInfo(&names);
	initStringInfo(&params);
	initStringInfo(&updates);
	for (i = 0; i < NUM_OPTION_COLUMNS; i++)
	{
		if (get_attnum(functions, option_columns[i]) == InvalidAttrNumber)
			break;
		appendStringInfo(&names, "%s%s", i ? ", " : "", option_columns[i]);
		appendStringInfo(&params, "%s$%d", i ? ", " : "", i + 1);
		if (i > Opt_fn)
			appendStringInfo(&updates, "%s = excluded.%s, ",
							 option_columns[i], option_columns[i]);
		ncolumns++;
	}
	cachier_exec_as_owner(psprintf("INSERT INTO cachier.functions AS f (%s) VALUES (%s)"
								   " ON CONFLICT (fn) DO UPDATE SET %supdated_at = pg_catalog.now()",
								   names.data, params.data, updates.data),
						  ncolumns, (Oid *) option_types, row->values, row->nulls, NULL);
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
	Oid			type = REGPROCEDUREOID;
	Datum		value = ObjectIdGetDatum(funcid);
	Oid			wrapper;

	cachier_memory_forget_function(funcid); /* [M] the memory tier too */
	cachier_exec_as_owner("DELETE FROM cachier.entries WHERE function_id OPERATOR(pg_catalog.=) $1",
						  1, &type, &value, NULL, NULL);
	wrapper = cachier_first_oid_as_owner("DELETE FROM cachier.functions"
										 " WHERE fn OPERATOR(pg_catalog.=) $1 RETURNING wrapper",
										 type, value);
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
 * parallel safety, and a body that is one call of cachier.call_*.
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
					 proc->provolatile == PROVOLATILE_IMMUTABLE ? "IMMUTABLE" :
					 proc->provolatile == PROVOLATILE_STABLE ? "STABLE" : "VOLATILE",
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
	read_options(fcinfo, funcid, 1, PG_NARGS() - 1, &row);
	write_options(&row, cachier_function_info(funcid)->options.wrapper);
	cachier_unpin_search_path(nestlevel);
	PG_RETURN_VOID();
}

/* cachier_memoize(fn, <options>, name) RETURNS regprocedure */
PG_FUNCTION_INFO_V1(cachier_memoize);
Datum
cachier_memoize(PG_FUNCTION_ARGS)
{
	Oid			funcid = required_function(fcinfo);
	int			name_arg = PG_NARGS() - 1;
	int			nestlevel = cachier_pin_search_path();
	OptionRow	row;
	HeapTuple	tuple;
	List	   *names;
	Oid			created;

	check_memoizable(funcid);
	read_options(fcinfo, funcid, 1, name_arg - 1, &row);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	names = wrapper_name((Form_pg_proc) GETSTRUCT(tuple),
						 PG_ARGISNULL(name_arg) ? NULL : PG_GETARG_TEXT_PP(name_arg));
	created = create_wrapper(funcid, (Form_pg_proc) GETSTRUCT(tuple), names,
							 cachier_function_info(funcid)->options.wrapper);
	ReleaseSysCache(tuple);
	write_options(&row, created);
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
	read_options(fcinfo, funcid, 2, PG_NARGS() - 2, &row);
	write_options(&row, wrapper);
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
	wrapper = cachier_function_info(funcid)->options.wrapper;
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
