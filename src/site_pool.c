/*-------------------------------------------------------------------------
 *
 * site_pool.c
 *	  Keeps the prepared call sites of wrappers between statements.
 *
 * Preparing a call site (cached_call.c) costs catalog lookups: the
 * function's information, the codecs of its arguments and result, its
 * statistics and freshness slots (the last two behind shared locks that
 * every backend takes).  The executor gives each expression a new FmgrInfo
 * per execution, so a wrapper called once per statement, as applications
 * call it, would prepare a site per statement.  Instead a wrapper's
 * expression (api.c) borrows a site here and gives it back when the
 * expression's memory goes (a reset callback on its fn_mcxt); the next
 * statement borrows it again.
 *
 * A borrowed site belongs to one expression: a recursive or second call of
 * the same function in one statement borrows another, or prepares one.  A
 * site given back is kept while its function's information is current and
 * no function or type changed since (any pg_proc or pg_type invalidation
 * retires every idle site), its key buffer is small, and fewer than
 * POOL_PER_FUNCTION sites of its function are idle; else it is freed.  Of
 * at most POOL_MAX idle sites, the one idle longest goes first.  The FmgrInfo of the function itself is prepared again per
 * borrow in the borrower's memory, so nothing a procedural language keeps
 * in it outlives the statement.
 *
 * Memory: each site has its own context, under the pool's (a child of
 * TopMemoryContext) from the end of its preparation on; a preparation that
 * fails leaves nothing behind, since it happens under the borrower's
 * memory.
 *
 * Locking: none; everything here is backend-local.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "lib/ilist.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#define POOL_MAX			32
#define POOL_PER_FUNCTION	4
#define POOL_MAX_KEYBUF		(64 * 1024)

/* A site of the pool, and the loan that gives it back. */
typedef struct PoolLoan PoolLoan;

typedef struct PooledSite
{
	CallSite	site;			/* first: a CallSite * is a PooledSite * */
	dlist_node	node;			/* in idle, while idle */
	uint64		generation;		/* pool_generation when prepared */
	PoolLoan   *loan;			/* while borrowed */
} PooledSite;

struct PoolLoan
{
	PooledSite *ps;				/* NULL once given back */
	MemoryContextCallback callback;
};

static MemoryContext pool_cxt = NULL;
static dlist_head idle = DLIST_STATIC_INIT(idle);
static int	nidle = 0;
static uint64 pool_generation = 1;
static bool callbacks_registered = false;

static void
forget_all(Datum arg, int cacheid, uint32 hashvalue)
{
	pool_generation++;
}

static void
free_site(PooledSite *ps)
{
	MemoryContextDelete(ps->site.mcxt);
}

/*
 * Whether a given-back site may be kept: checked without catalog access,
 * since this may run while a transaction aborts.
 */
static bool
keepable(PooledSite *ps, int same_function)
{
	const FunctionInfo *info = ps->site.info;

	return ps->generation == pool_generation &&
		info->valid && info->options_valid && ps->site.version == info->version &&
		(ps->site.keybuf.data == NULL || ps->site.keybuf.maxlen <= POOL_MAX_KEYBUF) &&
		same_function < POOL_PER_FUNCTION;
}

static int
idle_of(Oid funcid)
{
	dlist_iter	it;
	int			n = 0;

	dlist_foreach(it, &idle)
	{
		PooledSite *ps = dlist_container(PooledSite, node, it.cur);

		n += ps->site.funcid == funcid;
	}
	return n;
}

static void
give_back(PooledSite *ps)
{
	ps->loan = NULL;
	ps->site.fn.fn_extra = NULL;	/* lived in the borrower's memory */
	ps->site.fn.fn_mcxt = NULL;
	if (!keepable(ps, idle_of(ps->site.funcid)))
	{
		free_site(ps);
		return;
	}
	/* full: the site idle longest goes */
	if (nidle >= POOL_MAX)
	{
		PooledSite *oldest = dlist_container(PooledSite, node, dlist_pop_head_node(&idle));

		nidle--;
		free_site(oldest);
	}
	dlist_push_tail(&idle, &ps->node);
	nidle++;
}

/* The borrower's memory goes: the site comes back. */
static void
loan_ends(void *arg)
{
	PoolLoan   *loan = (PoolLoan *) arg;

	if (loan->ps != NULL)
		give_back(loan->ps);
	loan->ps = NULL;
}

/* An idle site of funcid that is still current, taken out of the pool. */
static PooledSite *
take_idle(Oid funcid)
{
	dlist_mutable_iter it;
	bool		stale;

	dlist_foreach_modify(it, &idle)
	{
		PooledSite *ps = dlist_container(PooledSite, node, it.cur);

		if (ps->generation != pool_generation)
		{
			dlist_delete(it.cur);
			nidle--;
			free_site(ps);
			continue;
		}
		if (ps->site.funcid != funcid)
			continue;
		/* checked while still in the pool: an error here loses nothing */
		stale = cachier_callsite_stale(&ps->site);
		dlist_delete(it.cur);
		nidle--;
		if (stale)
		{
			free_site(ps);
			continue;
		}
		return ps;
	}
	return NULL;
}

/* A new site of funcid, prepared under borrower and then moved to the pool. */
static PooledSite *
prepare(Oid funcid, MemoryContext borrower)
{
	MemoryContext mcxt;
	PooledSite *ps;

	if (pool_cxt == NULL)
		pool_cxt = AllocSetContextCreate(TopMemoryContext, "cachier call sites",
										 ALLOCSET_SMALL_SIZES);
	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, forget_all, (Datum) 0);
		CacheRegisterSyscacheCallback(TYPEOID, forget_all, (Datum) 0);
		callbacks_registered = true;
	}
	cachier_check_cacheable(funcid);
	mcxt = AllocSetContextCreate(borrower, "cachier call site", ALLOCSET_SMALL_SIZES);
	ps = MemoryContextAllocZero(mcxt, sizeof(PooledSite));
	ps->generation = pool_generation;
	cachier_callsite_init(&ps->site, funcid, mcxt);
	MemoryContextSetParent(mcxt, pool_cxt);
	return ps;
}

/*
 * A prepared call site of funcid for an expression whose memory is
 * borrower (its fn_mcxt), until that memory is reset or deleted or the
 * site is given back with cachier_site_release.  The caller has checked
 * EXECUTE on funcid.
 */
CallSite *
cachier_site_borrow(Oid funcid, MemoryContext borrower)
{
	PooledSite *ps = take_idle(funcid);
	PoolLoan   *loan;

	if (ps == NULL)
		ps = prepare(funcid, borrower);
	loan = MemoryContextAlloc(borrower, sizeof(PoolLoan));
	loan->ps = ps;
	loan->callback.func = loan_ends;
	loan->callback.arg = loan;
	MemoryContextRegisterResetCallback(borrower, &loan->callback);
	ps->loan = loan;
	/* the function's own FmgrInfo, whatever a language keeps in it: the borrower's */
	fmgr_info_cxt(funcid, &ps->site.fn, borrower);
	return &ps->site;
}

/* Give back a borrowed site before its borrower's memory goes. */
void
cachier_site_release(CallSite *site)
{
	PooledSite *ps = (PooledSite *) site;

	if (ps->loan != NULL)
		ps->loan->ps = NULL;
	give_back(ps);
}
