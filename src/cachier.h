/*-------------------------------------------------------------------------
 *
 * cachier.h
 *	  Declarations shared by the files of the cachier extension.
 *
 * The design in one paragraph: a call goes through cached_call.c, which
 * builds a key (key.c) from the function's identity (function_info.c) and
 * the arguments, looks it up in the table tier (table_store.c), and on a
 * miss takes the key's in-progress lock (inprogress.c), computes, encodes
 * the value (codec.c) and stores it in the caller's transaction.  Options
 * come from settings.c (GUCs) merged with the per-function row.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHIER_H
#define CACHIER_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "storage/lock.h"
#include "utils/timestamp.h"

#define CACHIER_DIGEST_LEN		32	/* SHA-256 of a function's identity */
#define CACHIER_LOCKSPACE		27182	/* locktag_field4 of our advisory locks */
#define CACHIER_NEVER			(-1)	/* "no limit" for durations and sizes */

/* ---------------------------------------------------------------- settings.c */

extern bool cachier_enabled;
extern bool cachier_skip_cache;
extern bool cachier_overwrite_cache;
extern bool cachier_verbose;
extern bool cachier_default_next_time;
extern bool cachier_default_allow_null;
extern bool cachier_default_track_reads;

extern int64 cachier_default_stale_after_us(void);
extern int64 cachier_default_wait_timeout_us(void);
extern int64 cachier_default_cleanup_interval_us(void);
extern int64 cachier_default_entry_size_limit(void);
extern bool cachier_max_age_us(int64 *max_age);
extern int64 cachier_max_entry_size(void);
extern int64 cachier_max_role_bytes(void);
extern int64 cachier_redis_max_ttl_us(void);

extern void cachier_define_settings(void);
extern int64 cachier_interval_us(const Interval *span);
extern int64 cachier_option_interval_us(const Interval *span, const char *option);
extern int64 cachier_option_cleanup_interval_us(const Interval *span);
extern int64 cachier_parse_size(const char *text, const char *option);
extern Interval *cachier_us_interval(int64 us);

/* ---------------------------------------------------------------- function_info.c */

/* where a function's entries live */
typedef enum Storage
{
	STORAGE_TABLE = 0,
	STORAGE_REDIS,
	STORAGE_BOTH
} Storage;

/* a per-function option as stored: "unset" means use the setting */
typedef struct CachierOptions
{
	bool		has_row;		/* a row exists in cachier.functions */
	int32		wrapper_id;		/* 0: none; see cachier_function_wrapper */
	int64		stale_after_us; /* CACHIER_NEVER when unset */
	int			next_time;		/* -1 unset, else 0/1 */
	int64		wait_timeout_us;
	int			allow_null;
	int64		entry_size_limit;
	int			cleanup_stale;
	int64		cleanup_interval_us;
	int			per_role;
	int			storage;		/* -1 unset, else a Storage */
	int64		max_stale_age_us;	/* CACHIER_NEVER when unset */
	/* 0.5 (issues 10, 11): arrays point into the FunctionInfo's mcxt */
	int			track_reads;	/* -1 unset, else 0/1 */
	int			ndepends_on;	/* -1 unset, else the length of depends_on */
	Oid		   *depends_on;		/* declared dependencies (relations) */
	int			on_change;		/* -1 unset, else an OnChange */
	int			nkey_settings;	/* -1 unset, else the length of key_settings */
	char	  **key_settings;	/* setting names the key holds */
	/* [M] issue 13 */
	int			shared_cache;	/* -1 unset (on), else 0/1 */
} CachierOptions;

/* what happens to an entry when something it read changes */
typedef enum OnChange
{
	ON_CHANGE_INVALIDATE = 0,	/* the next call computes */
	ON_CHANGE_REFRESH			/* served old while the worker refreshes */
} OnChange;

/* options merged with the settings: what a call obeys */
typedef struct EffectiveOptions
{
	int64		stale_after_us; /* CACHIER_NEVER: never stale */
	bool		next_time;
	int64		wait_timeout_us;
	bool		allow_null;
	int64		entry_size_limit;	/* CACHIER_NEVER: unlimited */
	bool		cleanup_stale;
	int64		cleanup_interval_us;
	bool		per_role;
	Storage		storage;
	int64		max_stale_age_us;	/* with next_time: oldest value served;
									 * CACHIER_NEVER: no bound */
	bool		track_reads;	/* capture the relations a computation reads */
	int			ndepends_on;
	const Oid  *depends_on;		/* declared dependencies */
	OnChange	on_change;
	int			nkey_settings;	/* -1: the cachier.key_settings list */
	char	  *const *key_settings;
	/* [M] issue 13 */
	bool		shared_cache;	/* use the shared memory tier (when it exists) */
} EffectiveOptions;

/*
 * What cachier knows about one function; lives in the backend's cache.
 * The pointers point into mcxt, which is replaced (and freed at the end of
 * the transaction) each time the definition is read again.
 */
typedef struct FunctionInfo
{
	Oid			funcid;			/* hash key */
	bool		valid;			/* the definition is up to date */
	bool		options_valid;	/* the options are up to date */
	uint64		version;		/* new each time the definition is read */
	uint32		proc_hash;		/* syscache hash value of its pg_proc row */
	int			ntypes;
	uint32	   *type_hashes;	/* of its argument and result types */
	MemoryContext mcxt;			/* signature, argtypes, type_hashes */
	char	   *signature;		/* schema-qualified, e.g. public.f(integer) */
	uint8		identity[CACHIER_DIGEST_LEN];	/* signature + definition digest */
	int64		fingerprint;	/* first 8 bytes of identity */
	int			nargs;
	Oid		   *argtypes;
	Oid			rettype;
	bool		strict;
	bool		secdef;			/* SECURITY DEFINER */
	char		volatility;
	bool		temporary;		/* in a temporary schema: gone with its session */
	bool		pins_search_path;	/* has its own SET search_path */
	int32		fn_id;			/* storage id (function_ids.c); 0: none */
	MemoryContext options_mcxt; /* the options' arrays; child of mcxt */
	CachierOptions options;
} FunctionInfo;

/* moves on every change of pg_proc: names may resolve differently */
extern uint64 cachier_proc_generation;

extern FunctionInfo *cachier_function_info(Oid funcid);
extern void cachier_effective_options(const FunctionInfo *info, EffectiveOptions *eff);
extern void cachier_check_cacheable(Oid funcid);
extern void cachier_register_invalidation(void);
extern Oid	cachier_function_wrapper(Oid funcid);
extern OnChange cachier_parse_on_change(const char *text);
extern const char *cachier_on_change_name(OnChange on_change);

/* ---------------------------------------------------------------- catalog.c */

typedef struct CachierRelations
{
	Oid			schema;
	Oid			entries;
	Oid			entries_pkey;
	Oid			functions;
	Oid			functions_pkey;
	Oid			function_ids;	/* InvalidOid: storage older than 0.5 */
	Oid			function_ids_pkey;
	Oid			function_ids_identity;
	Oid			owner;
} CachierRelations;

extern const CachierRelations *cachier_relations(void);
extern bool cachier_lock_extension(void);
extern void cachier_forget_relations(void);
extern bool cachier_is_our_relation(Oid relid);

/* ---------------------------------------------------------------- function_ids.c */

/*
 * Storage names a function by a fixed-width id (entries.fn_id,
 * functions.fn_id), never by its OID.  The id of a function is
 * cachier_function_info(funcid)->fn_id (0: it has none, so no entries);
 * cachier_fn_id(funcid) says the same.  cachier_register_function gives
 * one to a function that has none (for a store), cachier_fn_id_oid turns
 * an id back into the function's current OID.
 */
extern char *cachier_function_identity(Oid funcid);
extern bool cachier_storage_legacy(void);
extern int32 cachier_lookup_fn_id(const char *identity);
extern int32 cachier_fn_id(Oid funcid);
extern Oid	cachier_fn_id_oid(int32 id);
extern int32 cachier_register_function(Oid funcid, bool wait);

/* ---------------------------------------------------------------- owner_exec.c */

/* the storage owner's context, between cachier_owner_begin and _end */
typedef struct OwnerContext
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;		/* GUC nest level with search_path pinned */
} OwnerContext;

extern void cachier_owner_begin(OwnerContext *ctx);
extern void cachier_owner_end(OwnerContext *ctx);
extern int	cachier_pin_search_path(void);
extern void cachier_unpin_search_path(int nestlevel);
extern int64 cachier_exec_as_owner(const char *sql, int nargs, Oid *types,
								   Datum *values, const char *nulls, List **oids);
extern Oid	cachier_first_oid_as_owner(const char *sql, Oid type, Datum value);
extern void cachier_exec_as_caller(const char *sql);

/* ---------------------------------------------------------------- subxact.c */

extern bool cachier_run_guarded(void (*work) (void *), void *arg, ErrorData **error);

/* ---------------------------------------------------------------- codec.c */

/*
 * Types whose binary form is produced directly, without calling the send
 * and receive functions: the bytes are the same, the cost much lower.
 */
typedef enum FastForm
{
	FAST_NONE,
	FAST_FIXED,					/* pass-by-value: big-endian bits */
	FAST_TEXT,					/* text, varchar, bpchar: the bytes */
	FAST_BYTEA					/* bytea: the bytes */
} FastForm;

/* How the values of one type are turned into bytes and back. */
typedef struct TypeCodec
{
	Oid			type;
	FastForm	fast;
	bool		binary;			/* send/recv; else output/input text */
	int16		typlen;
	bool		typbyval;
	Oid			ioparam;
	FmgrInfo	encode;
	FmgrInfo	decode;
} TypeCodec;

extern void cachier_codec_init(TypeCodec *codec, Oid type, MemoryContext mcxt);
extern bytea *cachier_encode(TypeCodec *codec, Datum value);
extern bool cachier_append_encoded(StringInfo buf, TypeCodec *codec, Datum value,
								   Size limit);
extern Datum cachier_decode(TypeCodec *codec, const char *data, int len);
extern bool cachier_decode_fast(TypeCodec *codec, const char *data, int len,
								Datum *value);
extern bool cachier_decode_stored(TypeCodec *codec, bytea *bytes, Datum *value);
extern bool cachier_decode_may_fail(Oid type);

/* ---------------------------------------------------------------- key.c */

/*
 * Largest encoded arguments of a cached call: a call whose arguments take
 * more is computed without the cache (see cachier_encode_args).
 */
#define CACHIER_MAX_KEYED_BYTES	((Size) 64 * 1024 * 1024)

extern void cachier_encode_args(StringInfo buf, TypeCodec *codecs, int nargs,
								Datum *values, bool *nulls);
extern bool cachier_try_encode_args(StringInfo buf, TypeCodec *codecs, int nargs,
									Datum *values, bool *nulls);
extern void cachier_append_role(StringInfo buf);
extern void cachier_append_search_path(StringInfo buf);
extern void cachier_key_init(void);
/* Where cachier_append_context put the settings, for cachier_make_key. */
typedef struct KeyedSettings
{
	int			start;			/* offset of their tag in the keyed bytes; -1: none */
	int			len;			/* from the tag to the end marker, inclusive */
	uint64		hash;			/* hash_bytes_extended of those bytes, seed 0 */
} KeyedSettings;

extern int64 cachier_make_key(const FunctionInfo *info, const StringInfo keyed,
							   const KeyedSettings *settings);
extern bool cachier_next_arg(const char *data, int len, int *pos, bool *isnull,
							 int *start, uint32 *vlen);

/* ---------------------------------------------------------------- args_text.c */

extern char *cachier_format_args_text(Oid funcid, const char *data, int len);
extern void cachier_decode_args(TypeCodec *codecs, int nargs, const char *data, int len,
								Datum *values, bool *nulls);
extern void cachier_sha256(const uint8 *data, size_t len, uint8 *out);

extern int	cachier_args_end(const char *data, int len, int nargs);

/* ---------------------------------------------------------------- context_key.c [X] */

extern void cachier_context_init(void);
extern void cachier_wrapper_calls_init(void);
extern void cachier_define_context_settings(void);
extern Oid	cachier_call_collation(FunctionCallInfo fcinfo, int first);
extern const char *cachier_append_context(StringInfo buf, const FunctionInfo *info,
										  const EffectiveOptions *eff, Oid collation,
										  bool *shared, KeyedSettings *settings);
extern char *cachier_describe_context(const FunctionInfo *info, const char *data, int len);
extern char *cachier_context_detail(const FunctionInfo *info, const StringInfo keyed);
extern bool cachier_restore_context(const FunctionInfo *info, const EffectiveOptions *eff,
									const char *data, int len, Oid *collation);

/* ---------------------------------------------------------------- entry_scan.c */

typedef bool (*EntryVisitor) (HeapTuple tuple, TupleDesc desc, void *arg);

extern void cachier_entry_scan_init(void);
extern void cachier_entry_scan_close(void);
extern bool cachier_scan_entry(Oid funcid, int64 key, EntryVisitor visit, void *arg);
extern bool cachier_entry_probe(Oid funcid, int64 key, ItemPointer tid, bool *newer);

/* ---------------------------------------------------------------- table_store.c */

typedef struct StoredEntry
{
	bool		found;
	bool		isnull;			/* the cached result is NULL */
	bool		untrusted;		/* read from Redis: decode guarded */
	bytea	   *value;			/* detoasted copy in the caller's context */
	TimestampTz created_at;
	double		compute_ms;
	bool		has_epoch;		/* [F] the computation read tracked relations */
	int64		epoch;			/* [F] its function's epoch then */
	bool		from_memory;	/* [M] served by the shared memory tier */
} StoredEntry;

extern void cachier_store_lookup(Oid funcid, int64 key, const StringInfo keyed,
								 StoredEntry *entry);
/* One entry to write: what pending.c queues and table_store.c writes. */
typedef struct EntryRow
{
	Oid			funcid;
	int64		key;
	int64		fingerprint;
	bytea	   *args;			/* the keyed bytes */
	bytea	   *value;			/* NULL: a NULL result */
	TimestampTz created_at;
	double		compute_ms;
	Oid			roleid;			/* whose call stored it */
	bool		has_epoch;		/* [F] see StoredEntry */
	int64		epoch;
	int			nest_level;		/* the subtransaction that computed it */
	bool		dropped;		/* that subtransaction rolled back */
	/* table_store.c: what the busy check before queueing found */
	bool		probed;			/* the fields below are set */
	bool		newer;			/* the key's version is newer than our snapshot */
	ItemPointerData current;	/* the version to replace; invalid: none */
} EntryRow;

#define CACHIER_ENTRY_OVERHEAD	64	/* a row's header, key columns and index entries */
extern int64 cachier_entry_size(int args_len, int value_len);
extern bool cachier_store_busy(Oid funcid, int64 key);
extern bool cachier_store_commits(uint64 *count);
extern void cachier_store_announce(void);
extern void cachier_store_init(void);
extern void cachier_store_take_probe(EntryRow *row);
extern void cachier_store_write(List *rows, int64 wait_us);
extern int64 cachier_store_delete(Oid funcid, const int64 *key);
extern int64 cachier_store_count_tracked(Oid funcid);
extern bool cachier_entries_have_epochs(void);
extern bool cachier_entry_tuple_epoch(HeapTuple tuple, TupleDesc desc, int64 *epoch);
extern bool cachier_can_write(const char **why);
extern bool cachier_entries_have_roles(void);

/* ---------------------------------------------------------------- stalled.c */

extern void cachier_stalled_init(void);
extern void cachier_stalled_remember(int64 key, const VirtualTransactionId *holders, int n);
extern bool cachier_stalled_all(int64 key, const VirtualTransactionId *holders, int n);

/* ---------------------------------------------------------------- quota.c */

extern void cachier_quota_init(void);
extern bool cachier_quota_admit(int64 bytes);

/* ---------------------------------------------------------------- pending.c */

extern void cachier_pending_init(void);
extern void cachier_pending_add(const EntryRow *row, int64 wait_us);
extern bool cachier_pending_lookup(Oid funcid, int64 key, const StringInfo keyed,
								   StoredEntry *entry);
extern void cachier_pending_flush(void);
extern int64 cachier_pending_role_bytes(Oid roleid);
extern void cachier_pending_utility_begin(void);
extern void cachier_pending_utility_end(void);

/* ---------------------------------------------------------------- inprogress.c */

typedef enum WaitResult
{
	WAIT_DONE,					/* the computing session finished */
	WAIT_TIMED_OUT,				/* wait_timeout passed */
	WAIT_HOLDER_STALLED,		/* a wait for the same holder timed out before */
	WAIT_DEADLOCK				/* waiting would have deadlocked */
} WaitResult;

extern bool cachier_lock_try(int64 key);
extern void cachier_lock_release(int64 key);
extern bool cachier_lock_is_held_elsewhere(int64 key);
extern WaitResult cachier_lock_wait(int64 key, int64 timeout_us, bool exclusive);
extern void cachier_lock_key_ids(int64 key, uint32 *classid, uint32 *objid);
extern bool cachier_lock_keep_after_store(void);
extern void cachier_inprogress_init(void);
extern int	cachier_timeout_ms(int64 timeout_us);

/* ---------------------------------------------------------------- cached_call.c */

/* One prepared call of a function: arguments already of its declared types. */
typedef struct CallSite
{
	Oid			funcid;
	uint64		version;		/* of info when the site was prepared */
	FunctionInfo *info;
	FmgrInfo	fn;				/* the cached function itself */
	TypeCodec  *argcodecs;
	TypeCodec	retcodec;
	StringInfoData keybuf;		/* reused for each call's keyed bytes */
	struct StatsHandle *stats;	/* shared counters (stats.c), or NULL */
	struct DepFunction *deps;	/* [F] its shared epoch (dep_registry.c), or NULL */
	MemoryContext mcxt;			/* where the site's data lives */
} CallSite;

extern void cachier_callsite_init(CallSite *site, Oid funcid, MemoryContext mcxt);
/* site_pool.c: prepared call sites kept between statements */
extern CallSite *cachier_site_borrow(Oid funcid, MemoryContext borrower);
extern void cachier_site_release(CallSite *site);
extern bool cachier_callsite_stale(const CallSite *site);
extern Datum cachier_cached_call(CallSite *site, Datum *args, bool *argnulls,
								 Oid collation, bool *isnull);
extern bool cachier_precache_value(CallSite *site, Datum *args, bool *argnulls,
								   Datum value, bool valuenull);
extern int64 cachier_clear_call(CallSite *site, Datum *args, bool *argnulls);
extern int64 cachier_clear_function(Oid funcid);
extern Storage cachier_parse_storage(const char *text);
extern const char *cachier_storage_name(Storage storage);

/* settings.c [Y]: a WARNING (or, built without Redis, an ERROR) at configure time */
extern void cachier_check_storage(Storage storage);
extern const char *cachier_redis_unset_reason(void);
extern bool cachier_refresh_entry(CallSite *site, int64 key, const char *keyed, int len);

/* ---------------------------------------------------------------- resolve.c */

/* A function named by text and the coercions from the given argument types. */
typedef struct ResolvedCall
{
	char	   *fntext;			/* the text it was resolved from */
	int			nsupplied;
	Oid		   *supplied;		/* the types given */
	Oid			funcid;
	int			nargs;			/* the function's argument count */
	struct CoercionPlan *plan;	/* per argument: coercion or default */
	struct ExprContext *econtext;
} ResolvedCall;

extern ResolvedCall *cachier_resolve(const char *fntext, int nsupplied,
									 Oid *supplied, MemoryContext mcxt);
extern void cachier_resolved_args(ResolvedCall *rc, Datum *in, bool *innulls,
								  Datum *out, bool *outnulls);
extern Oid	cachier_resolve_name_only(const char *fntext);
extern Oid	cachier_wrapped_function(Oid funcid);
extern const char *cachier_signature_paren(const char *fntext);
extern Datum cachier_coerce_value(Datum value, bool isnull, Oid from, Oid to,
								  const char *what);


/* ==== [F] freshness: dep_registry.c, relation_roots.c, read_capture.c, write_watch.c, freshness.c */

#define CACHIER_RELS_PER_FUNCTION	32	/* relations a function's slot lists */

/*
 * A tracked function in shared memory (dep_registry.c): its epoch, the
 * relation whose change last bumped it, and the relations it depends on.
 */
typedef struct DepFunction
{
	Oid			dbid;
	Oid			funcid;
	pg_atomic_uint64 epoch;
	Oid			last_changed;	/* hint for verbose; read without a lock */
	slock_t		mutex;			/* protects the fields below */
	int			nrels;
	bool		overflow;		/* more relations than fit in rels */
	Oid			rels[CACHIER_RELS_PER_FUNCTION];
	char		how[CACHIER_RELS_PER_FUNCTION]; /* 'c' captured, 'd' declared */
} DepFunction;

extern int	cachier_max_dependent_functions;
extern int	cachier_max_dependency_relations;
extern void cachier_dep_init(void);
extern bool cachier_dep_available(void);
extern uint64 cachier_dep_counter(void);
extern uint64 cachier_dep_epoch(DepFunction *f);
extern void cachier_dep_bump(DepFunction *f, Oid relid);
extern void cachier_dep_bump_database(Oid dbid, Oid relid);
extern DepFunction *cachier_dep_function(Oid funcid, bool create);
extern int	cachier_dep_function_count(void);
extern int	cachier_dep_function_size(DepFunction *f);
extern bool cachier_dep_register(DepFunction *f, Oid relid, char how);
extern int	cachier_dep_changed(Oid dbid, Oid relid);
extern void cachier_dep_mark_write(Oid dbid, Oid relid);
extern bool cachier_dep_written_since(Oid dbid, Oid relid, uint64 since);
extern int	cachier_dep_function_rels(DepFunction *f, Oid **rels, char **how, bool *overflow);
extern int	cachier_dep_database_functions(DepFunction ***out);
extern int	cachier_dep_dependents(Oid relid, DepFunction ***out);

/* relation_roots.c: what a read or a write of a relation stands for */
typedef enum RelationClass
{
	REL_TRACKABLE,				/* a table, view, materialized view ... */
	REL_OURS,					/* cachier's own storage: ignored */
	REL_TEMPORARY,
	REL_FOREIGN,
	REL_CATALOG,
	REL_SEQUENCE
} RelationClass;

extern RelationClass cachier_relation_roots(Oid relid, const Oid **roots, int *nroots);
extern const char *cachier_relation_class_name(RelationClass rc);
extern void cachier_relation_roots_init(void);

/* read_capture.c: the relations a computation reads */
typedef struct CaptureFrame
{
	struct CaptureFrame *parent;
	MemoryContext mcxt;			/* where rels lives */
	int			nrels;
	int			maxrels;
	Oid		   *rels;			/* roots, no duplicates */
	RelationClass untrackable;	/* REL_TRACKABLE: none seen */
	Oid			untrackable_rel;
	bool		unknown;		/* a nested hit whose reads are not all known */
} CaptureFrame;

extern void cachier_capture_init(void);
extern void cachier_capture_push(CaptureFrame *frame);
extern void cachier_capture_pop(CaptureFrame *frame);
extern bool cachier_capture_active(void);
extern void cachier_capture_add(Oid relid);
extern void cachier_capture_add_root(CaptureFrame *frame, Oid root);
extern void cachier_capture_unknown(void);
extern void cachier_capture_inherit(Oid root);

/* write_watch.c: the relations this transaction wrote */
extern void cachier_watch_init(void);
extern void cachier_watch_write(Oid relid);
extern void cachier_watch_write_all(void);
extern bool cachier_watch_any(void);
extern bool cachier_watch_wrote(const Oid *roots, int n);
extern void cachier_watch_utility(PlannedStmt *pstmt, bool after);

/* freshness.c: the freshness policy of one cached call (cached_call.c) */
typedef struct FreshCall
{
	bool		track;			/* entries carry an epoch: track_reads or depends_on */
	bool		track_reads;
	DepFunction *deps;			/* the function's slot, or NULL */
	const Oid  *declared;
	int			ndeclared;
	/* a computation (cachier_fresh_compute_begin/_end) */
	bool		computing;
	bool		pushed_snapshot;
	uint64		e0;				/* the epoch before the snapshot */
	uint64		g0;				/* the counter before the snapshot */
	TimestampTz read_at;		/* when the data was read */
	CaptureFrame frame;
} FreshCall;

extern void cachier_fresh_begin(FreshCall *fc, CallSite *site, const EffectiveOptions *eff);
extern const char *cachier_fresh_unusable(FreshCall *fc, const StoredEntry *entry,
										  bool *invalidated);
extern bool cachier_fresh_bypass(FreshCall *fc, const char **why);
extern void cachier_fresh_compute_begin(FreshCall *fc);
extern void cachier_fresh_compute_end(FreshCall *fc, bool error);
extern const char *cachier_fresh_storable(FreshCall *fc, const char *signature,
										  bool *has_epoch, int64 *epoch);
extern void cachier_fresh_served(FreshCall *fc, const StoredEntry *entry);
extern bool cachier_fresh_current_epoch(FreshCall *fc, int64 *epoch);
extern void cachier_fresh_cleared(Oid funcid);
extern bool cachier_fresh_outdated(CallSite *site, const EffectiveOptions *eff,
								   bool has_epoch, int64 epoch);
extern const Oid *cachier_function_reads(const EffectiveOptions *eff, DepFunction *deps,
										  int *n, bool *overflow);
/* ---------------------------------------------------------------- memoize.c */

extern void cachier_rewrap(Oid funcid, Oid wrapper);

/* ---------------------------------------------------------------- computing.c */

typedef void (*ComputingVisitor) (Oid funcid, int64 key, Oid roleid, TimestampTz started,
								  const char *keyed, int keyed_len, void *arg);

extern void cachier_computing_init(void);
extern int	cachier_computing_begin(Oid funcid, int64 key, const char *keyed, int len);
extern void cachier_computing_end(int token);
extern void cachier_computing_visit(ComputingVisitor visit, void *arg);
/* ---------------------------------------------------------------- [M] memory_tier.c */

/* cachier.shared_cache_size, in kB; 0: no memory tier */
extern int	cachier_shared_cache_kb;


/* What a fill or promotion publishes: the keyed bytes and the value. */
typedef struct MemoryFill
{
	Oid			funcid;
	int64		fingerprint;	/* the function's identity and definition */
	int64		key;			/* cachier_make_key of keyed */
	const StringInfoData *keyed;
	const bytea *value;			/* NULL: a NULL result */
	TimestampTz created_at;
	double		compute_ms;
	uint64		generation;		/* cachier_memory_generation before reading */
	bool		has_epoch;		/* freshness epoch (NULL: always valid) */
	uint64		epoch;
	bool		committed;		/* a table row another transaction committed */
} MemoryFill;

extern void cachier_memory_init(void);
extern bool cachier_memory_enabled(void);
extern uint64 cachier_memory_generation(Oid funcid);
extern bool cachier_memory_lookup(Oid funcid, int64 fingerprint, int64 key,
								  const StringInfo keyed, StoredEntry *entry);
extern void cachier_memory_publish(const MemoryFill *fill);
extern void cachier_memory_forget_function(Oid funcid);
extern void cachier_memory_forget_all(void);
extern void cachier_memory_refused(void);
extern void cachier_memory_count_hit(Oid funcid, bool quiet, double saved_ms);
extern void cachier_memory_flush_counts(void);
extern struct HTAB *cachier_memory_function_bytes(void);

/* ---------------------------------------------------------------- visibility.c */

extern bool cachier_owns_function(Oid funcid, bool *exists);
extern bool cachier_sees_all_stats(void);
extern bool cachier_may_see_function(Oid funcid);

/* ---------------------------------------------------------------- update_keep.c */

extern void cachier_keep_begin(void);
extern void cachier_keep_finish(void);

#endif							/* CACHIER_H */
