/*-------------------------------------------------------------------------
 *
 * cached_call.c
 *	  The cached call: look the key up, serve a fresh entry, otherwise
 *	  compute once (single flight), store in the caller's transaction and
 *	  return.  Every decision can be explained with cachier.verbose.
 *
 * A call site (CallSite) is prepared once per expression (fn_extra) and
 * prepared again only when its own function's information was read again
 * (a new FunctionInfo version: the function or one of its types changed).
 * Arguments arrive already coerced to the function's declared types.
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
#include "catalog/pg_collation.h"
#include "cachier_redis.h"
#include "cachier_shared.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "utils/acl.h"
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
	bool		use_table;		/* storage includes the table */
	bool		use_redis;		/* storage includes Redis, and it is configured */
	bool		shared;			/* served to every role (else keyed by role) */
	bool		overwrite;		/* cachier.overwrite_cache, where honoured */
	const char *bypass;			/* why the call neither reads nor stores, or NULL */
	FreshCall	fresh;			/* [F] freshness of what it read (freshness.c) */
	const char *fresh_bypass;	/* [F] why a found entry can be neither served
								 * nor replaced here, or NULL */
	bool		has_epoch;		/* [F] the epoch the value is stored with */
	int64		epoch;
	bool		use_memory;		/* [M] the shared memory tier is in front of the table */
	uint64		memory_generation;	/* [M] read before the last lookup */
	bool		absent;			/* the first lookup found no entry, and... */
	uint64		commits_seen;	/* ... entries were committed this often
								 * before it (cachier_store_commits) */
} Call;

/* ---------------------------------------------------------------- call sites */

/*
 * Prepare site for funcid; everything it allocates goes to mcxt, which the
 * caller owns (and frees when it prepares a new site).  site->info stays
 * valid: entries of the function cache are never removed, and what they
 * point to is kept until the end of the transaction (function_info.c).
 */
void
cachier_callsite_init(CallSite *site, Oid funcid, MemoryContext mcxt)
{
	FunctionInfo *info = cachier_function_info(funcid);
	int			i;

	site->funcid = funcid;
	site->mcxt = mcxt;
	site->info = info;
	site->version = info->version;
	site->keybuf.data = NULL;
	site->stats = cachier_stats_handle(funcid, mcxt);
	fmgr_info_cxt(funcid, &site->fn, mcxt);
	site->argcodecs = MemoryContextAllocZero(mcxt, sizeof(TypeCodec) * Max(1, info->nargs));
	for (i = 0; i < info->nargs; i++)
		cachier_codec_init(&site->argcodecs[i], info->argtypes[i], mcxt);
	cachier_codec_init(&site->retcodec, info->rettype, mcxt);
}

/*
 * Whether the site must be prepared again: its function's information was
 * read again since.  Brings that information up to date first (options
 * changed in cachier.functions are read again without making sites stale).
 */
bool
cachier_callsite_stale(const CallSite *site)
{
	if (!site->info->valid || !site->info->options_valid)
		(void) cachier_function_info(site->funcid);
	return site->version != site->info->version;
}

/* ---------------------------------------------------------------- verbose */

/* "public.f(42, 'x')": the function's name and this call's arguments */
static const char *
describe(Call *c)
{
	const char *sig = c->site->info->signature;
	const char *paren = cachier_signature_paren(sig);

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

/*
 * Call the function.  With track, the computation is one whose result may
 * be stored: freshness.c reads the epoch before the snapshot, captures what
 * it reads and, in *started, says when the data was read.
 */
static Datum
compute_tracked(Call *c, bool *isnull, TimestampTz *started, double *ms, bool track)
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
	if (!track)
		result = FunctionCallInvoke(fcinfo);
	else
	{
		cachier_fresh_compute_begin(&c->fresh);
		PG_TRY();
		{
			result = FunctionCallInvoke(fcinfo);
		}
		PG_CATCH();
		{
			cachier_fresh_compute_end(&c->fresh, true);
			PG_RE_THROW();
		}
		PG_END_TRY();
		cachier_fresh_compute_end(&c->fresh, false);
		*started = c->fresh.read_at;
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	*ms = INSTR_TIME_GET_MILLISEC(elapsed);
	cachier_count(c->site->stats, STAT_COMPUTATION, *ms);
	*isnull = fcinfo->isnull;
	pfree(fcinfo);
	return result;
}

/* A computation whose result is not to be stored. */
static Datum
compute(Call *c, bool *isnull, TimestampTz *started, double *ms)
{
	return compute_tracked(c, isnull, started, ms, false);
}

/*
 * [F] Whether a computed value may be stored, as far as what it read goes;
 * sets the epoch it is stored with.
 */
static bool
fresh_storable(Call *c)
{
	const char *why = cachier_fresh_storable(&c->fresh, c->site->info->signature,
											 &c->has_epoch, &c->epoch);

	if (why == NULL)
		return true;
	note(c, "not stored", why);
	return false;
}

/*
 * The size limit of this call's values: entry_size_limit, capped by the
 * superuser's cachier.max_entry_size; which one it is.
 */
static int64
size_limit(Call *c, const char **which)
{
	int64		cap = cachier_max_entry_size();
	int64		limit = c->eff.entry_size_limit;

	*which = "entry_size_limit";
	if (cap != CACHIER_NEVER && (limit == CACHIER_NEVER || cap < limit))
	{
		*which = "cachier.max_entry_size";
		return cap;
	}
	return limit;
}

/* Encode a value for storage, unless a rule says it is not to be stored. */
static bool
storable(Call *c, Datum value, bool isnull, bytea **encoded)
{
	int64		size = 0;
	int64		limit;
	const char *which;

	*encoded = NULL;
	if (isnull && !c->eff.allow_null)
	{
		note(c, "not stored", "The result is NULL and allow_null is off.");
		return false;
	}
	if (!isnull)
	{
		*encoded = cachier_encode(&c->site->retcodec, value);
		size = VARSIZE(*encoded) - VARHDRSZ;
	}
	limit = size_limit(c, &which);
	if (limit != CACHIER_NEVER && size > limit)
	{
		if (cachier_verbose)
			note(c, "not stored",
				 psprintf("The result takes " INT64_FORMAT " bytes, more than %s (" INT64_FORMAT " bytes).",
						  size, which, limit));
		return false;
	}
	return true;
}

/*
 * The Redis TTL: the shelf life, plus as much again for next_time, never
 * more than the superuser's cachier.redis_max_ttl (0: none).  Nothing in
 * Redis lives forever unless the superuser says so: a role cannot leave
 * keys there that nobody can clear.
 */
static int64
redis_ttl_us(Call *c)
{
	int64		cap = cachier_redis_max_ttl_us();
	int64		ttl = 0;

	if (c->eff.stale_after_us != CACHIER_NEVER)
		ttl = c->eff.stale_after_us * (c->eff.next_time ? 2 : 1);
	if (cap != CACHIER_NEVER && (ttl == 0 || ttl > cap))
		ttl = cap;
	return ttl;
}

static void memory_fill(Call *c, const bytea *value, TimestampTz created_at, double ms,
						bool has_epoch, int64 epoch,
						bool committed);	/* [M] */

/*
 * Store in the table: queued with the statement's other entries (pending.c)
 * and written with them, unless the role's quota is used up or another
 * transaction holds the key's uncommitted entry.
 */
static bool
table_put(Call *c, bytea *encoded, TimestampTz created_at, double ms)
{
	EntryRow	row;
	bytea	   *args;
	int			value_len = encoded ? VARSIZE(encoded) - VARHDRSZ : 0;

	if (c->site->info->temporary)
	{
		/* its entries would outlive it, with nobody left to clear them */
		note(c, "not stored", "The function is temporary: it is gone when its session ends.");
		return false;
	}

	if (!cachier_quota_admit(cachier_entry_size(c->argbytes->len, value_len)))
	{
		note(c, "not stored",
			 "The entries stored by this role's calls would take more than cachier.max_role_bytes.");
		return false;
	}
	if (cachier_store_busy(c->site->funcid, c->key))
	{
		note(c, "not stored", "Another transaction has stored this key and not committed yet.");
		return false;
	}
	args = palloc(VARHDRSZ + c->argbytes->len);
	SET_VARSIZE(args, VARHDRSZ + c->argbytes->len);
	memcpy(VARDATA(args), c->argbytes->data, c->argbytes->len);
	memset(&row, 0, sizeof(row));
	row.funcid = c->site->funcid;
	row.key = c->key;
	row.fingerprint = c->site->info->fingerprint;
	row.args = args;
	row.value = encoded;
	row.created_at = created_at;
	row.compute_ms = ms;
	row.roleid = GetUserId();
	row.has_epoch = c->has_epoch;
	row.epoch = c->epoch;
	cachier_pending_add(&row, c->eff.wait_timeout_us);
	if (c->use_memory)			/* [M] published when the transaction commits */
		memory_fill(c, encoded, created_at, ms, c->has_epoch, c->epoch, false);
	note(c, "stored", NULL);
	return true;
}

/*
 * Store a computed (or given) value, unless a rule says not to: in the
 * table (to_table) and, for Redis storage, in Redis.
 */
static bool
store(Call *c, Datum value, bool isnull, TimestampTz created_at, double ms,
	  bool to_table)
{
	bytea	   *encoded;
	bool		stored = false;

	if (!storable(c, value, isnull, &encoded))
		return false;
	if (to_table && c->use_table)
		stored = table_put(c, encoded, created_at, ms);
	if (c->use_redis)
	{
		if (cachier_redis_put(c->site->info, c->argbytes, &c->site->retcodec, encoded,
							  created_at, ms, redis_ttl_us(c), c->has_epoch, c->epoch))
		{
			note(c, "stored in Redis", NULL);
			stored = true;
		}
		else
			note(c, "not stored in Redis", "Redis is not answering.");
	}
	else if (c->eff.storage == STORAGE_BOTH)
		note(c, "not stored in Redis", cachier_redis_unset_reason());
	return stored;
}

static Datum redis_single_flight(Call *c, bool *isnull, bool to_table);

/* Compute and store, holding the key's lock (inprogress.c). */
static Datum
compute_and_store(Call *c, bool *isnull)
{
	TimestampTz started;
	double		ms;
	Datum		result;

	if (c->use_redis)
		result = redis_single_flight(c, isnull, true);
	else
	{
		int			shown = cachier_computing_begin(c->site->funcid, c->key,
													c->site->keybuf.data,
													c->site->keybuf.len);

		result = compute_tracked(c, isnull, &started, &ms, true);
		cachier_computing_end(shown);
		if (fresh_storable(c))
			store(c, result, *isnull, started, ms, true);
	}
	/*
	 * Beyond a budget of locks per transaction, mark only the computing;
	 * the value may be in the memory tier already: misses that get the lock
	 * next must look again.
	 */
	if (!cachier_lock_keep_after_store())
	{
		cachier_store_announce();
		cachier_lock_release(c->key);
	}
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
			 errmsg("the cached value of %s could not be read; recomputing it",
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
	cachier_fresh_served(&c->fresh, entry); /* [F] an outer computation inherits */
	if (entry->isnull)
		return true;
	if (codec->fast != FAST_NONE)
	{
		if (cachier_decode_stored(codec, entry->value, value))	/* [T] no copy */
			return true;
		warn_unreadable(c, "The stored bytes are not a valid value of the result type.");
		return false;
	}
	if (!entry->untrusted && !cachier_decode_may_fail(codec->type))
		decode_work(&w);
	else if (!cachier_run_guarded(decode_work, &w, &error))
	{
		warn_unreadable(c, error->message);
		return false;
	}
	*value = w.result;
	return true;
}

typedef enum EntryAge
{
	AGE_FRESH,
	AGE_STALE,					/* older than stale_after */
	AGE_TOO_OLD,				/* older than this call's cachier.max_age */
	AGE_TOO_STALE				/* stale, and older than max_stale_age */
} EntryAge;

static EntryAge
entry_age(Call *c, const StoredEntry *entry, int64 *limit)
{
	int64		age = GetCurrentTimestamp() - entry->created_at;
	int64		max_age;

	if (cachier_max_age_us(&max_age) && (max_age <= 0 || age >= max_age))
	{
		*limit = Max(max_age, 0);
		return AGE_TOO_OLD;
	}
	*limit = c->eff.stale_after_us;
	if (c->eff.stale_after_us != CACHIER_NEVER && age >= c->eff.stale_after_us)
		return AGE_STALE;
	return AGE_FRESH;
}

/* next_time without the background worker: say so once per session */
static void
say_no_worker(void)
{
	static bool said = false;

	if (said)
		return;
	said = true;
	ereport(NOTICE,
			(errmsg("cachier: next_time refreshes stale values synchronously in this server"),
			 errdetail("Refreshing in the background needs cachier's background worker."),
			 errhint("Add cachier to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * next_time: serve the stale value at once and queue one background
 * refresh of the key.  False when that cannot be done here (no worker,
 * a standby, an unreadable value): the caller recomputes.
 */
static bool
serve_stale(Call *c, StoredEntry *entry, Datum *value, bool *isnull, int64 limit)
{
	bool		queued;

	if (!cachier_preloaded())
	{
		say_no_worker();
		return false;
	}
	if (RecoveryInProgress() || !decode_entry(c, entry, value, isnull))
		return false;
	queued = cachier_queue_refresh(c->site->funcid, c->key);
	if (queued)
		cachier_count(c->site->stats, STAT_REFRESH_QUEUED, 0);
	cachier_count(c->site->stats, STAT_SAVED, entry->compute_ms);
	if (cachier_verbose)
		note(c, "stale, served",
			 psprintf("Older than its shelf life (%s); next_time is on: %s.",
					  duration_text(limit),
					  queued ? "a background refresh is queued" :
					  "a refresh of it is already queued or running"));
	return true;
}

/*
 * next_time never serves a stale value older than max_stale_age (twice the
 * shelf life unless set), so a refresh that keeps failing cannot keep a
 * value alive forever.
 */
static bool
too_old_to_serve(Call *c, const StoredEntry *entry)
{
	return c->eff.max_stale_age_us != CACHIER_NEVER &&
		GetCurrentTimestamp() - entry->created_at >= c->eff.max_stale_age_us;
}

static void
note_stale(Call *c, EntryAge age, int64 limit)
{
	if (!cachier_verbose)
		return;
	if (age == AGE_TOO_STALE)
		note(c, "stale", psprintf("Older than max_stale_age (%s): recomputing.",
								  duration_text(c->eff.max_stale_age_us)));
	else if (age == AGE_TOO_OLD)
		note(c, "stale", psprintf("Older than cachier.max_age (%s): recomputing.",
								  duration_text(limit)));
	else
		note(c, "stale", psprintf("Older than its shelf life (%s): recomputing.",
								  duration_text(limit)));
}

/* [M] ---------------------------------------------------------------- memory tier */

/*
 * [M] Publish a value to the memory tier (memory_tier.c decides when: at
 * commit, or at once when the transaction wrote nothing).
 */
static void
memory_fill(Call *c, const bytea *value, TimestampTz created_at, double ms,
			bool has_epoch, int64 epoch, bool committed)
{
	MemoryFill	f;

	f.funcid = c->site->funcid;
	f.fingerprint = c->site->info->fingerprint;
	f.key = c->key;
	f.keyed = c->argbytes;
	f.value = value;
	f.created_at = created_at;
	f.compute_ms = ms;
	f.generation = c->memory_generation;
	/* [F] the epoch the value was read under: checked as a table entry's is */
	f.has_epoch = has_epoch;
	f.epoch = (uint64) epoch;
	f.committed = committed;	/* a table hit: committed by its writer */
	cachier_memory_publish(&f);
}

/*
 * [M] Whether an entry may be served as it is: fresh, and not invalidated
 * by a change since it was computed (nor unusable in this transaction).
 */
static bool
memory_servable(Call *c, const StoredEntry *entry)
{
	int64		limit;
	bool		invalidated;

	return entry_age(c, entry, &limit) == AGE_FRESH &&
		cachier_fresh_unusable(&c->fresh, entry, &invalidated) == NULL;
}

/*
 * [M] The memory tier's entry of the key, if it may be served as it is.
 * One that may not is no answer: the table may hold a newer one (with
 * on_change 'refresh', the background refresh's), and decides.  The
 * generation a later fill records is read first, before anything the value
 * could come from.
 */
static bool
memory_lookup(Call *c, StoredEntry *entry)
{
	c->memory_generation = cachier_memory_generation(c->site->funcid);
	if (!cachier_memory_lookup(c->site->funcid, c->site->info->fingerprint,
							   c->key, c->argbytes, entry))
		return false;
	if (memory_servable(c, entry))
		return true;
	cachier_memory_refused();
	entry->found = false;
	entry->from_memory = false;
	return false;
}

/* [M] A table hit that may be served as it is goes to the memory tier. */
static void
memory_promote(Call *c, const StoredEntry *entry)
{
	if (memory_servable(c, entry))
		memory_fill(c, entry->isnull ? NULL : entry->value, entry->created_at,
					entry->compute_ms, entry->has_epoch, entry->epoch, true);
}

/* Table first, then Redis: the freshest entry the storage has. */
static void
find_entry(Call *c, StoredEntry *entry)
{
	StoredEntry remote;
	int64		limit;

	entry->found = false;
	entry->untrusted = false;
	entry->from_memory = false;	/* [M] */
	if (c->use_table &&
		!cachier_pending_lookup(c->site->funcid, c->key, c->argbytes, entry))
	{
		if (c->use_memory && memory_lookup(c, entry))	/* [M] */
			return;
		cachier_store_lookup(c->site->funcid, c->key, c->argbytes, entry);
		if (c->use_memory && entry->found)	/* [M] */
			memory_promote(c, entry);
	}
	if (!c->use_redis || (entry->found && entry_age(c, entry, &limit) == AGE_FRESH))
		return;
	if (cachier_redis_get(c->site->info, c->argbytes, &c->site->retcodec, &remote) &&
		(!entry->found || entry_age(c, &remote, &limit) == AGE_FRESH))
	{
		*entry = remote;
		entry->untrusted = true;
	}
}

/*
 * [F] on_change 'refresh': serve an entry invalidated by a change (but not
 * older than its shelf life) at once and queue one background refresh.
 */
static bool
serve_invalidated(Call *c, StoredEntry *entry, Datum *value, bool *isnull, const char *why)
{
	int64		limit;
	bool		queued;

	if (c->eff.on_change != ON_CHANGE_REFRESH || !cachier_preloaded() ||
		entry_age(c, entry, &limit) != AGE_FRESH || !decode_entry(c, entry, value, isnull))
		return false;
	queued = cachier_queue_refresh(c->site->funcid, c->key);
	if (queued)
		cachier_count(c->site->stats, STAT_REFRESH_QUEUED, 0);
	cachier_count(c->site->stats, STAT_STALE_HIT, 0);
	cachier_count(c->site->stats, STAT_SAVED, entry->compute_ms);
	if (cachier_verbose)
		note(c, "invalidated, served",
			 psprintf("%s on_change is 'refresh': %s.", why,
					  queued ? "a background refresh is queued" :
					  "a refresh of it is already queued or running"));
	return true;
}

/*
 * [F] Whether a found entry is still valid for what it read.  If not,
 * false and in *served whether it was served anyway (on_change 'refresh');
 * an entry that cannot be judged here (REPEATABLE READ, a standby) sets
 * fresh_bypass: the call then computes without storing.
 */
static bool
fresh_usable(Call *c, StoredEntry *entry, Datum *value, bool *isnull, bool quiet,
			 bool *served)
{
	bool		invalidated;
	const char *why = cachier_fresh_unusable(&c->fresh, entry, &invalidated);

	*served = false;
	if (why == NULL)
		return true;
	if (!invalidated)
	{
		c->fresh_bypass = why;
		return false;
	}
	if (quiet)
		return false;
	cachier_count(c->site->stats, STAT_INVALIDATION, 0);
	if (serve_invalidated(c, entry, value, isnull, why))
	{
		*served = true;
		return false;
	}
	cachier_count(c->site->stats, STAT_MISS, 0);
	note(c, "invalidated", why);
	return false;
}

/*
 * Look the key up; true and the value if an entry may be served.  "event"
 * names the verbose event for a hit; quiet marks looks after the first
 * (after taking the lock or a wait): they neither count nor serve stale
 * values.
 */
static bool
lookup(Call *c, Datum *value, bool *isnull, const char *event, bool quiet)
{
	StoredEntry entry;
	EntryAge	age;
	int64		limit;
	bool		served;
	bool		counted = false;

	/* the count of commits first, then the lookup (nothing_committed_since) */
	if (!quiet && c->use_table && !c->use_redis)
		counted = cachier_store_commits(&c->commits_seen);
	find_entry(c, &entry);
	c->absent = counted && !entry.found;
	if (entry.found && !fresh_usable(c, &entry, value, isnull, quiet, &served))
		return served;
	age = entry.found ? entry_age(c, &entry, &limit) : AGE_FRESH;
	if (entry.found && age != AGE_FRESH)
	{
		if (quiet)
			return false;
		cachier_count(c->site->stats, STAT_STALE_HIT, 0);
		if (age == AGE_STALE && c->eff.next_time && too_old_to_serve(c, &entry))
			age = AGE_TOO_STALE;
		else if (age == AGE_STALE && c->eff.next_time &&
				 serve_stale(c, &entry, value, isnull, limit))
			return true;
		note_stale(c, age, limit);
		return false;
	}
	if (!entry.found || !decode_entry(c, &entry, value, isnull))
	{
		if (!quiet)
		{
			cachier_count(c->site->stats, STAT_MISS, 0);
			note(c, "miss", cachier_verbose ? cachier_context_detail(c->site->info, c->argbytes) : NULL);
		}
		return false;
	}
	if (entry.from_memory)		/* [M] counted per backend, flushed now and then */
		cachier_memory_count_hit(c->site->funcid, quiet, entry.compute_ms);
	else
		cachier_count(c->site->stats, quiet ? STAT_SAVED : STAT_HIT, entry.compute_ms);
	note(c, event, entry.from_memory ? "Served from the shared memory tier." : NULL);
	return true;
}

/* ---------------------------------------------------------------- single flight */

/* Wait for the session computing the key, counting the wait. */
static WaitResult
wait_for(Call *c, int64 timeout_us, bool exclusive)
{
	WaitResult	waited = cachier_lock_wait(c->key, timeout_us, exclusive);

	cachier_count(c->site->stats, STAT_WAIT, 0);
	if (waited == WAIT_TIMED_OUT)
		cachier_count(c->site->stats, STAT_WAIT_TIMEOUT, 0);
	return waited;
}

/* A session that may not store: it may still wait for one that does. */
static Datum
miss_read_only(Call *c, bool *isnull, const char *why)
{
	Datum		value;

	if (!RecoveryInProgress() && !IsInParallelMode() &&
		cachier_lock_is_held_elsewhere(c->key) &&
		wait_for(c, c->eff.wait_timeout_us, false) == WAIT_DONE &&
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
	if (waited == WAIT_HOLDER_STALLED)
		return compute_without_storing(c, isnull,
									   "The transaction computing it made an earlier call wait past wait_timeout.");
	return compute_without_storing(c, isnull,
								   psprintf("Another session is still computing it after wait_timeout (%s).",
											duration_text(c->eff.wait_timeout_us)));
}

/*
 * Whether the first lookup found nothing and nothing has been announced
 * since it began (table_store.c): then, holding the key's lock, there is
 * nothing new to look at, since a commit of entries and a key lock given
 * back early are announced before the lock goes.  An entry another
 * transaction wrote and has not committed was invisible to a second look
 * too.
 */
static bool
nothing_committed_since(Call *c)
{
	uint64		now;

	return c->absent && !c->overwrite && cachier_store_commits(&now) &&
		now == c->commits_seen;
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

	if (!cachier_can_write(&why) || !c->use_table)
	{
		if (c->use_redis)
			return redis_single_flight(c, isnull, false);
		if (!c->use_table)
			return compute_without_storing(c, isnull, cachier_redis_unset_reason());
		return miss_read_only(c, isnull, psprintf("Nothing is stored: %s.", why));
	}

	if (cachier_lock_try(c->key))
	{
		if (nothing_committed_since(c))
			return compute_and_store(c, isnull);
	}
	else
	{
		deadline = GetCurrentTimestamp() + c->eff.wait_timeout_us;
		waited = wait_for(c, c->eff.wait_timeout_us, false);
		if (waited == WAIT_DONE && !c->overwrite &&
			lookup(c, &value, isnull, "hit after waiting", true))
			return value;
		if (waited == WAIT_DONE)
			waited = wait_for(c, deadline - GetCurrentTimestamp(), true);
		if (waited != WAIT_DONE)
			return wait_gave_up(c, isnull, waited);
	}
	/* we hold the lock; someone may have stored the value before we got it */
	if (!c->overwrite && lookup(c, &value, isnull, "hit", true))
	{
		cachier_lock_release(c->key);
		return value;
	}
	return compute_and_store(c, isnull);
}

/* ---------------------------------------------------------------- Redis */

/*
 * The Redis tier's single flight (redis_tier.c) runs the key's computation
 * through these: compute and store, a fresh value another server stored,
 * and what to do when wait_timeout passes.
 */

/* A fresh value of the key in Redis, if there is one now. */
static bool
redis_fresh_value(void *arg, Datum *value, bool *isnull)
{
	Call	   *c = (Call *) arg;
	StoredEntry entry;
	int64		limit;
	bool		invalidated;

	if (c->overwrite ||
		!cachier_redis_get(c->site->info, c->argbytes, &c->site->retcodec, &entry))
		return false;
	entry.untrusted = true;
	if (cachier_fresh_unusable(&c->fresh, &entry, &invalidated) != NULL)
		return false;
	if (entry_age(c, &entry, &limit) != AGE_FRESH || !decode_entry(c, &entry, value, isnull))
		return false;
	cachier_count(c->site->stats, STAT_SAVED, entry.compute_ms);
	note(c, "hit after waiting", "Another server computed it.");
	return true;
}

typedef struct RedisCall
{
	Call	   *c;
	bool		to_table;
} RedisCall;

static Datum
redis_compute_and_store(void *arg, bool *isnull)
{
	RedisCall  *rc = (RedisCall *) arg;
	TimestampTz started;
	double		ms;
	Datum		value = compute_tracked(rc->c, isnull, &started, &ms, true);

	if (fresh_storable(rc->c))
		store(rc->c, value, *isnull, started, ms, rc->to_table);
	return value;
}

static bool
redis_fresh(void *arg, Datum *value, bool *isnull)
{
	return redis_fresh_value(((RedisCall *) arg)->c, value, isnull);
}

static void
redis_waiting(void *arg)
{
	cachier_count(((RedisCall *) arg)->c->site->stats, STAT_WAIT, 0);
}

static Datum
redis_gave_up(void *arg, bool *isnull)
{
	Call	   *c = ((RedisCall *) arg)->c;

	cachier_count(c->site->stats, STAT_WAIT_TIMEOUT, 0);
	return compute_without_storing(c, isnull,
								   psprintf("Another server is still computing it after wait_timeout (%s).",
											duration_text(c->eff.wait_timeout_us)));
}

/* One computation per key across servers (redis_tier.c). */
static Datum
redis_single_flight(Call *c, bool *isnull, bool to_table)
{
	RedisCall	rc = {c, to_table};
	RedisFlight flight = {redis_compute_and_store, redis_fresh, redis_waiting,
	redis_gave_up, &rc};

	return cachier_redis_single_flight(c->site->info, c->argbytes, c->eff.wait_timeout_us,
									   &flight, isnull);
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
set_storage(Call *c)
{
	c->use_redis = c->eff.storage != STORAGE_TABLE && cachier_redis_configured();
	c->use_table = c->eff.storage != STORAGE_REDIS;
	c->use_memory = c->use_table && c->eff.shared_cache && cachier_memory_enabled();	/* [M] */
	c->memory_generation = 0;	/* [M] */
}

/* The call site's buffer for keyed bytes, emptied; a call site is never
 * re-entered while a call on it runs. */
static StringInfo
empty_keybuf(CallSite *site)
{
	if (site->keybuf.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(site->mcxt);

		initStringInfo(&site->keybuf);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&site->keybuf);
	return &site->keybuf;
}

static void
call_begin(Call *c, CallSite *site, Datum *args, bool *argnulls, Oid collation)
{
	KeyedSettings settings;

	c->site = site;
	c->args = args;
	c->argnulls = argnulls;
	c->collation = collation;
	c->described = NULL;
	c->warned = false;
	cachier_effective_options(site->info, &c->eff);
	cachier_fresh_begin(&c->fresh, site, &c->eff);	/* [F] */
	c->fresh_bypass = NULL;
	c->has_epoch = false;
	c->epoch = 0;
	c->absent = false;
	set_storage(c);
	c->argbytes = empty_keybuf(site);
	c->overwrite = false;
	c->bypass = NULL;
	c->key = 0;
	if (!cachier_try_encode_args(c->argbytes, site->argcodecs, site->info->nargs,
								 args, argnulls))
	{
		c->bypass = "The arguments take more than 64 MB encoded; such a call is not cached.";
		return;
	}
	/* collation, settings, role, search path (context_key.c) */
	c->bypass = cachier_append_context(c->argbytes, site->info, &c->eff,
									   collation, &c->shared, &settings);
	if (c->bypass)
		return;
	c->key = cachier_make_key(site->info, c->argbytes, &settings);
}

/* A call that neither reads nor stores: compute, saying why if verbose. */
static Datum
compute_directly(Call *c, bool *isnull, const char *why)
{
	TimestampTz started;
	double		ms;

	if (cachier_verbose)
		ereport(NOTICE,
				(errmsg("cachier: bypassed: %s", c->site->info->signature),
				 errdetail_internal("%s", why)));
	return compute(c, isnull, &started, &ms);
}

/*
 * cachier.overwrite_cache replaces a value other roles are served only
 * when the caller owns the function; anyone may overwrite their own
 * per-role entries.  Otherwise any role could replace a shared value with
 * one computed under its own settings.
 */
static void
honour_overwrite(Call *c)
{
	c->overwrite = !c->shared || pg_proc_ownercheck(c->site->funcid, GetUserId());
	if (!c->overwrite)
		note(c, "overwrite ignored",
			 "Only the function's owner may replace a value that other roles are served.");
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
		c.site = site;
		c.args = args;
		c.argnulls = argnulls;
		c.collation = collation;
		return compute_directly(&c, isnull,
								!cachier_enabled ? "cachier.enabled is off." :
								"cachier.skip_cache is on.");
	}
	call_begin(&c, site, args, argnulls, collation);
	if (c.bypass)
		return compute_directly(&c, isnull, c.bypass);
	if (cachier_fresh_bypass(&c.fresh, &c.fresh_bypass))
		return compute_directly(&c, isnull, c.fresh_bypass);
	if (cachier_overwrite_cache)
		honour_overwrite(&c);
	if (c.overwrite)
	{
		note(&c, "overwrite", "cachier.overwrite_cache is on: recomputing.");
		cachier_memory_forget_function(site->funcid);	/* [M] */
	}
	else if (lookup(&c, &value, isnull, "hit", false))
		return value;
	if (c.fresh_bypass)
		return compute_directly(&c, isnull, c.fresh_bypass);
	return miss(&c, isnull);
}

/* Store value as the result without calling the function. */
bool
cachier_precache_value(CallSite *site, Datum *args, bool *argnulls,
					   Datum value, bool valuenull)
{
	Call		c;
	const char *why;
	bool		stored;

	if (!cachier_enabled || cachier_skip_cache)
		return false;
	call_begin(&c, site, args, argnulls, InvalidOid);
	if (!c.bypass && c.shared && !pg_proc_ownercheck(site->funcid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to precache a shared entry of %s",
						site->info->signature),
				 errdetail("Its entries are served to every role that calls it."),
				 errhint("Only the function's owner can set a value that other roles are served.")));
	if (c.bypass)
	{
		/* not note(): the arguments are too large to show */
		if (cachier_verbose)
			ereport(NOTICE,
					(errmsg("cachier: not stored: %s", site->info->signature),
					 errdetail_internal("%s", c.bypass)));
		return false;
	}
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
	c.has_epoch = cachier_fresh_current_epoch(&c.fresh, &c.epoch);	/* [F] */
	cachier_memory_forget_function(site->funcid);	/* [M] */
	stored = store(&c, value, valuenull, GetCurrentTimestamp(), 0, true);
	cachier_pending_flush();	/* an explicit request: write it now */
	/* the lock budget holds for precached keys too */
	if (!cachier_lock_keep_after_store())
		cachier_lock_release(c.key);
	return stored;
}

int64
cachier_clear_call(CallSite *site, Datum *args, bool *argnulls)
{
	Call		c;

	int64		removed = 0;

	call_begin(&c, site, args, argnulls, InvalidOid);
	if (c.bypass)
		return 0;				/* such calls are never cached */
	cachier_pending_flush();	/* so that the delete sees this transaction's entries */
	cachier_fresh_cleared(site->funcid);	/* [F] computations now running do not store */
	cachier_memory_forget_function(site->funcid);	/* [M] */
	if (c.use_table)
		removed += cachier_store_delete(site->funcid, &c.key);
	if (c.use_redis)
		removed += cachier_redis_clear(site->info, c.argbytes);
	return removed;
}

/* Remove every entry of a function, from the table and from Redis. */
int64
cachier_clear_function(Oid funcid)
{
	FunctionInfo *info = cachier_function_info(funcid);
	EffectiveOptions eff;
	int64		removed;

	cachier_pending_flush();	/* so that the delete sees this transaction's entries */
	cachier_fresh_cleared(funcid);	/* [F] computations now running do not store */
	cachier_memory_forget_function(funcid);	/* [M] */
	removed = cachier_store_delete(funcid, NULL);

	cachier_effective_options(info, &eff);
	if (eff.storage != STORAGE_TABLE && cachier_redis_configured())
		removed += cachier_redis_clear(info, NULL);
	return removed;
}

/*
 * A background refresh: recompute the entry whose keyed bytes are given
 * (read from the stored entry) and store it.  False if another session is
 * computing the key right now.  Errors propagate to the worker.
 */
bool
cachier_refresh_entry(CallSite *site, int64 key, const char *keyed, int len)
{
	Datum		args[FUNC_MAX_ARGS];
	bool		nulls[FUNC_MAX_ARGS];
	Call		c;
	bool		isnull;

	memset(&c, 0, sizeof(c));
	c.site = site;
	c.args = args;
	c.argnulls = nulls;
	cachier_effective_options(site->info, &c.eff);
	cachier_fresh_begin(&c.fresh, site, &c.eff);	/* [F] */
	set_storage(&c);
	/* the collation and settings it was keyed with, or leave it */
	if (!cachier_restore_context(site->info, &c.eff, keyed, len, &c.collation))
		return false;
	c.argbytes = empty_keybuf(site);
	appendBinaryStringInfo(c.argbytes, keyed, len);
	c.key = key;
	cachier_decode_args(site->argcodecs, site->info->nargs, keyed, len, args, nulls);
	if (!cachier_lock_try(key))
		return false;
	(void) compute_and_store(&c, &isnull);
	return true;
}
