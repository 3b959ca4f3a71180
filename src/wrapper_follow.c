/*-------------------------------------------------------------------------
 *
 * wrapper_follow.c
 *	  Keeps a wrapper made by cachier_memoize in step with its function.
 *
 * A wrapper copies what its function declares: argument defaults,
 * volatility and parallel safety.  After ALTER FUNCTION or CREATE OR
 * REPLACE FUNCTION of a memoized function, the event trigger
 * cachier_follow_functions defines the wrapper again from the function's
 * new declaration, so that g_cached(1) uses g's new default and a function
 * made PARALLEL UNSAFE is no longer run in parallel workers through its
 * wrapper.  (Strictness needs nothing here: the call path reads it from
 * the function each time its definition changes.)
 *
 * The wrapper is redefined as the role running the DDL, which must own the
 * wrapper, like any CREATE OR REPLACE; if it cannot (another owner, or a
 * change CREATE OR REPLACE refuses, such as renamed parameters), the DDL
 * still succeeds and a WARNING says how to make the wrapper again.  Each
 * redefinition runs in its own subtransaction for that reason
 * (cachier_run_guarded): DDL is rare, calls never pay for it.
 *
 * Locking: none of its own; the DDL holds what it holds, and CREATE OR
 * REPLACE of the wrapper takes the usual locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(cachier_follow_functions);

#define CHANGED_FUNCTIONS_SQL \
	"SELECT DISTINCT objid FROM pg_catalog.pg_event_trigger_ddl_commands()" \
	" WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"

/* The functions the command changed. */
static List *
changed_functions(void)
{
	List	   *funcs = NIL;
	int			nestlevel = cachier_pin_search_path();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(CHANGED_FUNCTIONS_SQL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the functions the command changed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			funcs = lappend_oid(funcs, DatumGetObjectId(d));
	}
	SPI_finish();
	cachier_unpin_search_path(nestlevel);
	return funcs;
}

/* The wrapper of funcid that still exists, or InvalidOid. */
static Oid
wrapper_of(Oid funcid)
{
	Oid			wrapper = cachier_function_wrapper(funcid);

	if (!OidIsValid(wrapper) || wrapper == funcid ||
		!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(wrapper)))
		return InvalidOid;
	return wrapper;
}

/* What follow() hands to its subtransaction. */
typedef struct Follow
{
	Oid			funcid;
	Oid			wrapper;		/* set before the redefinition is tried */
} Follow;

static void
rewrap(void *arg)
{
	Follow	   *f = (Follow *) arg;

	f->wrapper = wrapper_of(f->funcid);
	if (OidIsValid(f->wrapper))
		cachier_rewrap(f->funcid, f->wrapper);
}

/*
 * Redefine the wrapper of funcid, if it has one, in a subtransaction
 * (subxact.c): a failure is a WARNING, a cancel is still a cancel.
 */
static void
follow(Oid funcid)
{
	Follow		f = {funcid, InvalidOid};
	ErrorData  *error;

	if (cachier_run_guarded(rewrap, &f, &error))
		return;
	if (OidIsValid(f.wrapper))
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the cachier wrapper %s was not changed to follow %s",
						format_procedure(f.wrapper), format_procedure(funcid)),
				 errdetail("%s", error->message),
				 errhint("Call cachier_memoize('%s') again as the wrapper's owner.",
						 format_procedure_qualified(funcid))));
	FreeErrorData(error);
}

/* The event trigger behind cachier_follow_functions (ddl_command_end). */
Datum
cachier_follow_functions(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cachier.follow_functions() must be called as an event trigger")));
	foreach(lc, changed_functions())
	{
		CHECK_FOR_INTERRUPTS();
		follow(lfirst_oid(lc));
	}
	PG_RETURN_NULL();
}
