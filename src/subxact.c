/*-------------------------------------------------------------------------
 *
 * subxact.c
 *	  Runs a piece of work in a subtransaction and hands back its error
 *	  instead of failing the caller's query.
 *
 * This is how the cache keeps its promise never to make a query fail that
 * would succeed without it: storing, waiting and reading a stored value
 * run guarded, and their errors become WARNINGs or misses.  Cancellation
 * (cancel requests, statement_timeout) and shutdown are never swallowed:
 * they are re-thrown after the subtransaction is rolled back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

static bool
must_rethrow(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		edata->elevel > ERROR;
}

/*
 * Run work(arg) in a subtransaction.  True if it succeeded; otherwise the
 * subtransaction is rolled back and *error (allocated in the caller's
 * memory context) says why.
 */
bool
cachier_run_guarded(void (*work) (void *), void *arg, ErrorData **error)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	*error = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (must_rethrow(edata))
			ReThrowError(edata);
		*error = edata;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
