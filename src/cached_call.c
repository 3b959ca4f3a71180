/*-------------------------------------------------------------------------
 *
 * cached_call.c
 *	  The cached call: look the key up, serve a fresh entry, otherwise
 *	  compute once (single flight), store in the caller's transaction and
 *	  return.  Every decision can be explained with cachier.verbose.
 *
 * A call site (CallSite) is prepared once per expression (fn_extra) and
 * re-prepared when cachier_generation moves.  Arguments arrive already
 * coerced to the function's declared types.
 *
 * Locking: see inprogress.c.  Only the holder of a key's lock stores it;
 * a session that cannot store (read-only, standby, parallel worker) or
 * that gave up waiting computes and returns without storing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "cachier.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

typedef struct Call
{
	CallSite   *site;
	Datum	   *args;
	bool	   *argnulls;
	Oid			collation;
	EffectiveOptions eff;
	StringInfo	argbytes;		/* encoded arguments (+ role): the exact key */
	int64		key;			/* hash of identity and argbytes */
	char	   *described;
	bool		warned;			/* the unreadable-value WARNING was given */
} Call;

/* ---------------------------------------------------------------- call sites */

void
cachier_callsite_init(CallSite *site, Oid funcid, MemoryContext mcxt)
{
	FunctionInfo *info = cachier_function_info(funcid);
	int			i;

	site->funcid = funcid;
	site->mcxt = mcxt;
	site->info = info;
	site->generation = cachier_generation;
	fmgr_info_cxt(funcid, &site->fn, mcxt);
	site->argcodecs = MemoryContextAllocZero(mcxt, sizeof(TypeCodec) * Max(1, info->nargs));
	for (i = 0; i < info->nargs; i++)
		cachier_codec_init(&site->argcodecs[i], info->argtypes[i], mcxt);
	cachier_codec_init(&site->retcodec, info->rettype, mcxt);
}

bool
cachier_callsite_stale(const CallSite *site)
{
	return site->generation != cachier_generation || !site->info->valid;
}

/* ---------------------------------------------------------------- verbose */

/* "public.f(42, 'x')": the function's name and this call's arguments */
static const char *
describe(Call *c)
{
	const char *sig = c->site->info->signature;
	const char *paren = strchr(sig, '(');

	if (c->described == NULL)
		c->described = psprintf("%.*s%s", (int) (paren - sig), sig,
								cachier_format_args_text(c->site->funcid,
													c->argbytes->data,
													c->argbytes->len));
	return c->described;
}

static void
note(Call *c, const char *event, const char *detail)
{
	if (!cachier_verbose)
		return;
	ereport(NOTICE,
			(errmsg("cachier: %s: %s", event, describe(c)),
			 detail ? errdetail_internal("%s", detail) : 0));
}

static char *
duration_text(int64 us)
{
	return DatumGetCString(DirectFunctionCall1(interval_out,
											   IntervalPGetDatum(cachier_us_interval(us))));
}

/* ---------------------------------------------------------------- computing */

static Datum
compute(Call *c, bool *isnull, TimestampTz *started, double *ms)
{
	int			nargs = c->site->info->nargs;
	FunctionCallInfo fcinfo = palloc(SizeForFunctionCallInfo(nargs));
	instr_time	start;
	instr_time	elapsed;
	Datum		result;
	int			i;

	InitFunctionCallInfoData(*fcinfo, &c->site->fn, nargs, c->collation, NULL, NULL);
	for (i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = c->args[i];
		fcinfo->args[i].isnull = c->argnulls[i];
	}
	*started = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(start);
	result = FunctionCallInvoke(fcinfo);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	*ms = INSTR_TIME_GET_MILLISEC(elapsed);
	*isnull = fcinfo->isnull;
	pfree(fcinfo);
	return result;
}

/* Store a computed (or given) value, unless a rule says not to. */
static bool
store(Call *c, Datum value, bool isnull, TimestampTz created_at, double ms)
{
	bytea	   *encoded = NULL;
	bytea	   *args;
	int64		size = 0;

	if (isnull && !c->eff.allow_null)
	{
		note(c, "not stored", "The result is NULL and allow_null is off.");
		return false;
	}
	if (!isnull)
	{
		encoded = cachier_encode(&c->site->retcodec, value);
		size = VARSIZE(encoded) - VARHDRSZ;
	}
	if (c->eff.entry_size_limit != CACHIER_NEVER && size > c->eff.entry_size_limit)
	{
		if (cachier_verbose)
			note(c, "not stored",
				 psprintf("The result takes " INT64_FORMAT " bytes, more than entry_size_limit (" INT64_FORMAT " bytes).",
						  size, c->eff.entry_size_limit));
		return false;
	}
	args = palloc(VARHDRSZ + c->argbytes->len);
	SET_VARSIZE(args, VARHDRSZ + c->argbytes->len);
	memcpy(VARDATA(args), c->argbytes->data, c->argbytes->len);
	switch (cachier_store_put(c->site->funcid, c->key, c->site->info->fingerprint,
							  args, encoded, created_at, ms, c->eff.wait_timeout_us))
	{
		case STORED:
			note(c, "stored", NULL);
			return true;
		case STORE_BUSY:
			note(c, "not stored", "Another transaction is storing this key and has not committed within wait_timeout.");
			return false;
		default:
			return false;
	}
}

static Datum
compute_and_store(Call *c, bool *isnull)
{
	TimestampTz started;
	double		ms;
	Datum		result = compute(c, isnull, &started, &ms);

	store(c, result, *isnull, started, ms);
	/* beyond a budget of locks per transaction, mark only the computing */
	if (!cachier_lock_keep_after_store())
		cachier_lock_release(c->key);
	return result;
}

static Datum
compute_without_storing(Call *c, bool *isnull, const char *why)
{
	TimestampTz started;
	double		ms;
	Datum		result = compute(c, isnull, &started, &ms);

	note(c, "not stored", why);
	return result;
}

/* ---------------------------------------------------------------- reading */

typedef struct DecodeWork
{
	TypeCodec  *codec;
	bytea	   *bytes;
	Datum		result;
} DecodeWork;

static void
decode_work(void *arg)
{
	DecodeWork *w = (DecodeWork *) arg;

	w->result = cachier_decode(w->codec, VARDATA(w->bytes),
							   VARSIZE(w->bytes) - VARHDRSZ);
}

static void
warn_unreadable(Call *c, const char *why)
{
	if (c->warned)
		return;
	c->warned = true;
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("cachier: the cached value of %s could not be read; recomputing it",
					describe(c)),
			 errdetail_internal("%s", why)));
}

/* The entry's value; false (with a WARNING) if it can no longer be read. */
static bool
decode_entry(Call *c, StoredEntry *entry, Datum *value, bool *isnull)
{
	TypeCodec  *codec = &c->site->retcodec;
	DecodeWork	w = {codec, entry->value, (Datum) 0};
	ErrorData  *error;

	*isnull = entry->isnull;
	if (entry->isnull)
		return true;
	if (codec->fast != FAST_NONE)
	{
		if (cachier_decode_fast(codec, VARDATA(entry->value),
								VARSIZE(entry->value) - VARHDRSZ, value))
			return true;
		warn_unreadable(c, "The stored bytes are not a valid value of the result type.");
		return false;
	}
	if (!cachier_decode_may_fail(codec->type))
		decode_work(&w);
	else if (!cachier_run_guarded(decode_work, &w, &error))
	{
		warn_unreadable(c, error->message);
		return false;
	}
	*value = w.result;
	return true;
}

static bool
is_fresh(Call *c, const StoredEntry *entry, int64 *shelf_life)
{
	int64		life = c->eff.stale_after_us;
	int64		max_age;

	if (cachier_max_age_us(&max_age))
	{
		if (max_age <= 0)
			life = 0;
		else if (life == CACHIER_NEVER || max_age < life)
			life = max_age;
	}
	*shelf_life = life;
	if (life == CACHIER_NEVER)
		return true;
	return GetCurrentTimestamp() - entry->created_at < life;
}

/*
 * Look the key up; true and the value if a fresh entry is there.  "event"
 * names the verbose event for a hit (a first look or a look after a wait);
 * quiet suppresses the miss and stale notes of looks after the first.
 */
static bool
lookup(Call *c, Datum *value, bool *isnull, const char *event, bool quiet)
{
	StoredEntry entry;
	int64		shelf_life;

	cachier_store_lookup(c->site->funcid, c->key, c->argbytes, &entry);
	if (!entry.found)
	{
		if (!quiet)
			note(c, "miss", NULL);
		return false;
	}
	if (!is_fresh(c, &entry, &shelf_life))
	{
		if (!quiet)
			note(c, "stale",
				 c->eff.next_time ?
				 psprintf("Older than its shelf life (%s). next_time is on, but refreshing in the background needs the background worker: recomputing now.",
						  duration_text(shelf_life)) :
				 psprintf("Older than its shelf life (%s): recomputing.",
						  duration_text(shelf_life)));
		return false;
	}
	if (!decode_entry(c, &entry, value, isnull))
		return false;
	note(c, event, NULL);
	return true;
}

/* ---------------------------------------------------------------- single flight */

/* A session that may not store: it may still wait for one that does. */
static Datum
miss_read_only(Call *c, bool *isnull, const char *why)
{
	Datum		value;

	if (!RecoveryInProgress() && !IsInParallelMode() &&
		cachier_lock_is_held_elsewhere(c->key) &&
		cachier_lock_wait(c->key, c->eff.wait_timeout_us, false) == WAIT_DONE &&
		lookup(c, &value, isnull, "hit after waiting", true))
		return value;
	return compute_without_storing(c, isnull, why);
}

static Datum
wait_gave_up(Call *c, bool *isnull, WaitResult waited)
{
	if (waited == WAIT_DEADLOCK)
		return compute_without_storing(c, isnull,
									   "Waiting for the session computing it would have deadlocked.");
	return compute_without_storing(c, isnull,
								   psprintf("Another session is still computing it after wait_timeout (%s).",
											duration_text(c->eff.wait_timeout_us)));
}

/*
 * Single flight: compute only while holding the key's lock.  If another
 * session holds it, wait with the other waiters for its commit and read
 * its value; if it failed instead, queue for the lock to compute (one at
 * a time, each looking again first).  The whole wait is bounded by
 * wait_timeout.
 */
static Datum
miss(Call *c, bool *isnull)
{
	const char *why;
	Datum		value;
	TimestampTz deadline;
	WaitResult	waited;

	if (!cachier_can_write(&why))
		return miss_read_only(c, isnull, psprintf("Nothing is stored: %s.", why));

	if (!cachier_lock_try(c->key))
	{
		deadline = GetCurrentTimestamp() + c->eff.wait_timeout_us;
		waited = cachier_lock_wait(c->key, c->eff.wait_timeout_us, false);
		if (waited == WAIT_DONE && !cachier_overwrite_cache &&
			lookup(c, &value, isnull, "hit after waiting", true))
			return value;
		if (waited == WAIT_DONE)
			waited = cachier_lock_wait(c->key, deadline - GetCurrentTimestamp(), true);
		if (waited != WAIT_DONE)
			return wait_gave_up(c, isnull, waited);
	}
	/* we hold the lock; someone may have stored the value before we got it */
	if (!cachier_overwrite_cache && lookup(c, &value, isnull, "hit", true))
	{
		cachier_lock_release(c->key);
		return value;
	}
	return compute_and_store(c, isnull);
}

/* ---------------------------------------------------------------- entry points */

static bool
any_null(const Call *c)
{
	int			i;

	for (i = 0; i < c->site->info->nargs; i++)
		if (c->argnulls[i])
			return true;
	return false;
}

static void
call_begin(Call *c, CallSite *site, Datum *args, bool *argnulls, Oid collation)
{
	c->site = site;
	c->args = args;
	c->argnulls = argnulls;
	c->collation = collation;
	c->described = NULL;
	c->warned = false;
	cachier_effective_options(site->info, &c->eff);
	/* a call site is never re-entered while a call on it runs */
	if (site->keybuf.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(site->mcxt);

		initStringInfo(&site->keybuf);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&site->keybuf);
	c->argbytes = &site->keybuf;
	cachier_encode_args(c->argbytes, site->argcodecs, site->info->nargs,
						args, argnulls);
	if (c->eff.per_role)
		cachier_append_role(c->argbytes);
	c->key = cachier_make_key(site->info, c->argbytes);
}

Datum
cachier_cached_call(CallSite *site, Datum *args, bool *argnulls, Oid collation,
					bool *isnull)
{
	Call		c;
	Datum		value;

	if (site->info->strict)
	{
		c.site = site;
		c.argnulls = argnulls;
		if (any_null(&c))
		{
			*isnull = true;		/* what the strict function itself gives */
			return (Datum) 0;
		}
	}
	if (!cachier_enabled || cachier_skip_cache)
	{
		TimestampTz started;
		double		ms;

		c.site = site;
		c.args = args;
		c.argnulls = argnulls;
		c.collation = collation;
		if (cachier_verbose)
			ereport(NOTICE,
					(errmsg("cachier: bypassed: %s", site->info->signature),
					 errdetail("%s", cachier_enabled ? "cachier.skip_cache is on." :
							   "cachier.enabled is off.")));
		return compute(&c, isnull, &started, &ms);
	}
	call_begin(&c, site, args, argnulls, collation);
	if (cachier_overwrite_cache)
		note(&c, "overwrite", "cachier.overwrite_cache is on: recomputing.");
	else if (lookup(&c, &value, isnull, "hit", false))
		return value;
	return miss(&c, isnull);
}

/* Store value as the result without calling the function. */
bool
cachier_precache_value(CallSite *site, Datum *args, bool *argnulls,
					   Datum value, bool valuenull)
{
	Call		c;
	const char *why;

	if (!cachier_enabled || cachier_skip_cache)
		return false;
	call_begin(&c, site, args, argnulls, InvalidOid);
	if (!cachier_can_write(&why))
	{
		note(&c, "not stored", psprintf("Nothing is stored: %s.", why));
		return false;
	}
	if (!cachier_lock_try(c.key) &&
		cachier_lock_wait(c.key, c.eff.wait_timeout_us, true) != WAIT_DONE)
	{
		note(&c, "not stored", "Another session is computing it.");
		return false;
	}
	return store(&c, value, valuenull, GetCurrentTimestamp(), 0);
}

int64
cachier_clear_call(CallSite *site, Datum *args, bool *argnulls)
{
	Call		c;

	call_begin(&c, site, args, argnulls, InvalidOid);
	return cachier_store_delete(site->funcid, &c.key);
}
