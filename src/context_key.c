/*-------------------------------------------------------------------------
 *
 * context_key.c
 *	  The context part of a cache key: what besides the arguments decides
 *	  what a direct call would return to this caller, in this session.
 *
 * After the encoded arguments (key.c), a call's keyed bytes hold, in this
 * order and each only when it applies:
 *
 *	'c' collation identity '\0'		the function has collatable inputs
 *	's' "name=value\0"... '\0'		settings (non-IMMUTABLE functions, and
 *									what row-level security policies read)
 *	'r' role OID (4 bytes, BE)		entries not shared between roles
 *	'p' schema names, '\0' each		the resolved search_path (to the end)
 *
 * A collation is keyed by what it is (provider, locale, determinism), never
 * by its OID, and a setting by its name and value, so the same call gives
 * the same bytes on every server: the Redis tier keys by these bytes too.
 * The role is an OID, as before (see key.c).
 *
 * Cost.  A hit must not look settings up by name: each setting the key
 * holds has a slot that remembers where its GUC variable is (validated by
 * one array read per call, so a placeholder replaced by a real definition
 * is found again) and its last value; a call compares the current values
 * with the remembered ones (an integer or a short string each) and
 * re-encodes a setting only when it changed.  Per-function facts (its
 * collatable inputs, SET clauses, SECURITY DEFINER) are read once per
 * definition (FunctionInfo version); per-relation facts (row-level
 * security policies, the caller's SELECT privilege) once until a relcache
 * or role invalidation.  What the relations a function reads mean for the
 * call (bypass, key by role, settings the policies read) is remembered per
 * function and reused while the role, row_security, the function's list
 * of relations (a number read without a lock) and the invalidation
 * generation stay the same: a hit checks no privilege and copies no list.
 *
 * Everything here lives in TopMemoryContext and is backend-local.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "cachier.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_database.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "port/pg_bswap.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#define TAG_COLLATION	'c'
#define TAG_SETTINGS	's'
#define TAG_ROLE		'r'
#define TAG_PATH		'p'

/*
 * The default of cachier.key_settings: the settings that change what
 * built-in functions and types return (PostgreSQL 15's sources), so that
 * a function using them gives each session its own answer.
 *
 *	TimeZone					timestamptz output, casts between timestamptz
 *								and timestamp/date/time, date_trunc, extract,
 *								AT TIME ZONE without a zone
 *	DateStyle					date/time output and the parsing of input
 *								(DMY/MDY order)
 *	IntervalStyle				interval output
 *	search_path					which tables, functions, operators and types
 *								unqualified names reach; reg* output
 *	lc_monetary					money input/output, to_char's L
 *	lc_numeric					to_char's D and G
 *	lc_time						to_char's TMMonth, TMDay
 *	extra_float_digits			float4/float8 output
 *	bytea_output				bytea output (hex or escape)
 *	xmloption					whether text becomes xml as DOCUMENT or
 *								CONTENT (a cast can fail under one)
 *	xmlbinary					how xmlelement and friends encode bytea
 *	default_text_search_config	to_tsvector/to_tsquery without a
 *								configuration
 *
 * Left out: settings fixed per database (lc_collate, lc_ctype), those
 * that change messages or plans but not values (lc_messages, enable_*),
 * and the role (keyed separately).
 */
#define DEFAULT_KEY_SETTINGS \
	"TimeZone, DateStyle, IntervalStyle, search_path, lc_monetary, lc_numeric, " \
	"lc_time, extra_float_digits, bytea_output, xmloption, xmlbinary, " \
	"default_text_search_config"

/* cachier.key_settings */
static char *key_settings_text = NULL;

/* ---------------------------------------------------------------- settings */

/* What the key knows about one setting. */
typedef struct SettingSlot
{
	char	   *name;			/* lower case, as keyed */
	bool		is_path;		/* search_path: keyed by what it resolves to */
	struct config_generic *gconf;	/* its variable, or NULL: not defined */
	int			index;			/* where gconf was in get_guc_variables() */
	int			seen_count;		/* GetNumConfigOptions() when not found */
	bool		valid;			/* encoded matches the remembered value */
	int			ival;			/* remembered value: bool, int, enum */
	double		rval;			/* real */
	char	   *sval;			/* string (a copy), or NULL */
	bool		sval_null;
	char	   *encoded;		/* "name=value" or "name" (not defined) */
	int			encoded_len;	/* including its '\0' */
} SettingSlot;

static SettingSlot *slots = NULL;
static int	nslots = 0;
static int	maxslots = 0;
static uint64 settings_changes = 1;	/* moves when any slot is re-encoded */

/* The parsed cachier.key_settings and its generation. */
static int	global_nnames = 0;
static char **global_names = NULL;
static uint64 global_generation = 1;

/* ---------------------------------------------------------------- functions */

/* What the relations read add to this call's key, or why it bypasses. */
typedef struct ReadsContext
{
	bool		role;			/* keyed by role for row-level security */
	int			nsettings;
	int			settings[64];	/* slots the policies read */
	const char *bypass;
} ReadsContext;

/* What the key needs from a function's definition and options. */
typedef struct FunctionContext
{
	Oid			funcid;			/* hash key */
	uint64		version;		/* FunctionInfo version it was read from */
	bool		secdef;
	Oid			owner;			/* whose rights a SECURITY DEFINER one has */
	bool		collatable;		/* an input type is collatable */
	int			npinned;
	char	  **pinned;			/* names its SET clauses pin, lower case */
	/* the settings list it was built for */
	uint64		list_generation;	/* global_generation, or 0: own list */
	int			nlist;
	char	  **list;			/* own list (copies), to notice a change */
	int			nuse;
	int		   *use;			/* slot numbers keyed (not search_path) */
	bool		key_path;		/* search_path is in the list, not pinned */
	StringInfoData segment;		/* the encoded settings of use[] */
	uint64		segment_changes;	/* settings_changes it was built at */
	uint64		segment_hash;	/* hash_bytes_extended of segment, seed 0 */
	/* where its captured reads are (dep_registry.c), once there */
	DepFunction *deps;
	int			deps_count;		/* cachier_dep_function_count() when not found */
	/* check_reads' outcome, reused while none of these moved */
	bool		reads_valid;
	Oid			reads_user;
	bool		reads_row_security;
	uint64		reads_generation;	/* relations_generation */
	int			reads_size;		/* cachier_dep_function_size(deps) */
	int			reads_ndeclared;
	Oid		   *reads_declared; /* a copy of the depends_on it used */
	ReadsContext reads;
} FunctionContext;

static HTAB *function_contexts = NULL;

/* ---------------------------------------------------------------- relations */

/* What reading one relation means for the key. */
typedef struct RelationContext
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		exists;
	bool		rls;			/* relrowsecurity */
	bool		opaque;			/* a policy calls a function we cannot see into */
	int			nsettings;
	int		   *settings;		/* slots of current_setting('x') names */
	Oid			acl_user;		/* whose SELECT privilege acl_ok is */
	bool		acl_ok;
} RelationContext;

static HTAB *relation_contexts = NULL;
static uint64 relations_generation = 1;	/* moves when any of them is forgotten */

/* ---------------------------------------------------------------- collations */

typedef struct CollationIdentity
{
	Oid			collid;			/* hash key */
	char		identity[FLEXIBLE_ARRAY_MEMBER];
} CollationIdentity;

static HTAB *collation_identities = NULL;
static char *default_identity = NULL;

/* ================================================================ helpers */

static char *
lower_copy(const char *name)
{
	char	   *copy = MemoryContextStrdup(TopMemoryContext, name);
	char	   *p;

	for (p = copy; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return copy;
}

/* GUC names compare as guc.c sorts them: ASCII case-insensitively. */
static int
guc_name_cmp(const char *a, const char *b)
{
	while (*a && *b)
	{
		char		ca = (*a >= 'A' && *a <= 'Z') ? *a + ('a' - 'A') : *a;
		char		cb = (*b >= 'A' && *b <= 'Z') ? *b + ('a' - 'A') : *b;

		if (ca != cb)
			return (unsigned char) ca - (unsigned char) cb;
		a++, b++;
	}
	return (unsigned char) *a - (unsigned char) *b;
}

/* ================================================================ collation */

static void
append_field_text(StringInfo buf, HeapTuple tuple, int cacheid, int attno)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(cacheid, tuple, attno, &isnull);

	if (!isnull)
		appendStringInfoString(buf, TextDatumGetCString(d));
}

/*
 * "icu:und" or "libc:C/C", with ":nd" for a nondeterministic collation:
 * what decides how the collation compares, not what it is called.
 */
static char *
identity_of(char provider, bool deterministic, HeapTuple tuple, int cacheid,
			int collate_att, int ctype_att, int icu_att)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (provider == COLLPROVIDER_ICU)
	{
		appendStringInfoString(&buf, "icu:");
		append_field_text(&buf, tuple, cacheid, icu_att);
	}
	else
	{
		appendStringInfoString(&buf, "libc:");
		append_field_text(&buf, tuple, cacheid, collate_att);
		appendStringInfoChar(&buf, '/');
		append_field_text(&buf, tuple, cacheid, ctype_att);
	}
	if (!deterministic)
		appendStringInfoString(&buf, ":nd");
	return buf.data;
}

/* The database's default collation, as the identity of what it is. */
static const char *
database_identity(void)
{
	HeapTuple	tuple;
	Form_pg_database db;
	MemoryContext old;

	if (default_identity)
		return default_identity;
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	db = (Form_pg_database) GETSTRUCT(tuple);
	old = MemoryContextSwitchTo(TopMemoryContext);
	default_identity = identity_of(db->datlocprovider, true, tuple, DATABASEOID,
								   Anum_pg_database_datcollate,
								   Anum_pg_database_datctype,
								   Anum_pg_database_daticulocale);
	MemoryContextSwitchTo(old);
	ReleaseSysCache(tuple);
	return default_identity;
}

static char *
read_collation_identity(Oid collid)
{
	HeapTuple	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	Form_pg_collation coll;
	char	   *id;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	coll = (Form_pg_collation) GETSTRUCT(tuple);
	id = identity_of(coll->collprovider, coll->collisdeterministic, tuple, COLLOID,
					 Anum_pg_collation_collcollate, Anum_pg_collation_collctype,
					 Anum_pg_collation_colliculocale);
	ReleaseSysCache(tuple);
	return id;
}

/* The identity a call under collid is keyed by (InvalidOid: the default). */
static const char *
collation_identity(Oid collid)
{
	CollationIdentity *entry;
	bool		found;
	char	   *id;

	if (!OidIsValid(collid) || collid == DEFAULT_COLLATION_OID)
		return database_identity();
	entry = hash_search(collation_identities, &collid, HASH_FIND, NULL);
	if (entry)
		return entry->identity;
	id = read_collation_identity(collid);
	/* a variable-size entry: the hash is created with room for it below */
	if (strlen(id) >= NAMEDATALEN * 4)
		return MemoryContextStrdup(TopTransactionContext, id);
	entry = hash_search(collation_identities, &collid, HASH_ENTER, &found);
	strlcpy(entry->identity, id, NAMEDATALEN * 4);
	pfree(id);
	return entry->identity;
}

/*
 * The collation with this identity, for a refresh: the default collation
 * when it is the database's, else the first usable collation in pg_collation
 * that is the same; InvalidOid if none is.
 */
static Oid
collation_by_identity(const char *identity)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			found = InvalidOid;

	if (strcmp(identity, database_identity()) == 0)
		return DEFAULT_COLLATION_OID;
	rel = table_open(CollationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (!OidIsValid(found) && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_collation coll = (Form_pg_collation) GETSTRUCT(tuple);

		if (coll->collencoding != -1 && coll->collencoding != GetDatabaseEncoding())
			continue;
		if (coll->oid == DEFAULT_COLLATION_OID)
			continue;
		if (strcmp(read_collation_identity(coll->oid), identity) == 0)
			found = coll->oid;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The collation a wrapper's call was made under.  When the planner hook of
 * wrapper_calls.c rewrote the call, it is the call's own.  Otherwise:
 * a wrapper is an SQL
 * function whose body was parsed when it was created, so the collation of
 * its inner cachier.call_* call is always the default; once the planner
 * has inlined the wrapper, that call's arguments are the caller's own
 * expressions, which carry the caller's collations.  They are combined as
 * the parser combines a call's inputs: a non-default collation beats the
 * default; when several differ, the one written with COLLATE (a constant
 * or a relabelled expression) is taken, else there is none (as for a
 * direct call whose inputs' collations conflict).
 */
Oid
cachier_call_collation(FunctionCallInfo fcinfo, int first)
{
	Node	   *expr = fcinfo->flinfo ? fcinfo->flinfo->fn_expr : NULL;
	Oid			found = InvalidOid;
	Oid			explicit_coll = InvalidOid;
	bool		conflict = false;
	ListCell   *lc;
	int			i = 0;

	/* set by the call itself (wrapper_calls.c rewrote it): exact */
	if (PG_GET_COLLATION() != DEFAULT_COLLATION_OID)
		return PG_GET_COLLATION();
	if (expr == NULL || !IsA(expr, FuncExpr))
		return PG_GET_COLLATION();
	foreach(lc, ((FuncExpr *) expr)->args)
	{
		Node	   *arg = (Node *) lfirst(lc);
		Oid			coll;

		if (i++ < first)
			continue;
		coll = exprCollation(arg);
		if (!OidIsValid(coll) || coll == DEFAULT_COLLATION_OID)
			continue;
		if (IsA(arg, Const) || IsA(arg, RelabelType) || IsA(arg, CollateExpr))
			explicit_coll = OidIsValid(explicit_coll) && explicit_coll != coll ?
				InvalidOid : coll;
		if (OidIsValid(found) && found != coll)
			conflict = true;
		found = coll;
	}
	if (!OidIsValid(found))
		return PG_GET_COLLATION();
	return conflict ? explicit_coll : found;
}

/* ================================================================ settings */

/* The slot of a setting, created on first use. */
static int
slot_for(const char *name)
{
	int			i;

	for (i = 0; i < nslots; i++)
		if (guc_name_cmp(slots[i].name, name) == 0)
			return i;
	if (nslots == maxslots)
	{
		maxslots = Max(16, maxslots * 2);
		slots = slots == NULL ?
			MemoryContextAllocZero(TopMemoryContext, sizeof(SettingSlot) * maxslots) :
			repalloc(slots, sizeof(SettingSlot) * maxslots);
		memset(slots + nslots, 0, sizeof(SettingSlot) * (maxslots - nslots));
	}
	slots[nslots].name = lower_copy(name);
	slots[nslots].is_path = guc_name_cmp(name, "search_path") == 0;
	slots[nslots].seen_count = -1;
	return nslots++;
}

/* Find a setting's variable in guc.c's sorted array; NULL if undefined. */
static void
slot_find(SettingSlot *s)
{
	struct config_generic **vars = get_guc_variables();
	int			count = GetNumConfigOptions();
	int			lo = 0;
	int			hi = count - 1;

	s->gconf = NULL;
	s->seen_count = count;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = guc_name_cmp(vars[mid]->name, s->name);

		if (cmp == 0)
		{
			s->gconf = vars[mid];
			s->index = mid;
			return;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
}

/* Whether the variable's value differs from the remembered one; remembers. */
static bool
slot_value_changed(SettingSlot *s)
{
	struct config_generic *g = s->gconf;
	int			ival = 0;
	double		rval = 0;
	const char *sval = NULL;

	switch (g->vartype)
	{
		case PGC_BOOL:
			ival = *((struct config_bool *) g)->variable;
			break;
		case PGC_INT:
			ival = *((struct config_int *) g)->variable;
			break;
		case PGC_REAL:
			rval = *((struct config_real *) g)->variable;
			break;
		case PGC_STRING:
			sval = *((struct config_string *) g)->variable;
			break;
		case PGC_ENUM:
			ival = *((struct config_enum *) g)->variable;
			break;
	}
	if (s->valid)
	{
		if (g->vartype == PGC_STRING)
		{
			if (sval == NULL ? s->sval_null :
				(!s->sval_null && strcmp(sval, s->sval) == 0))
				return false;
		}
		else if (g->vartype == PGC_REAL ? rval == s->rval : ival == s->ival)
			return false;
	}
	s->ival = ival;
	s->rval = rval;
	if (s->sval)
		pfree(s->sval);
	s->sval = sval ? MemoryContextStrdup(TopMemoryContext, sval) : NULL;
	s->sval_null = (sval == NULL);
	return true;
}

/* The text of the remembered value, as SHOW would print it without units. */
static char *
slot_value_text(SettingSlot *s)
{
	struct config_generic *g = s->gconf;

	switch (g->vartype)
	{
		case PGC_BOOL:
			return pstrdup(s->ival ? "on" : "off");
		case PGC_INT:
			return psprintf("%d", s->ival);
		case PGC_REAL:
			return psprintf("%.17g", s->rval);
		case PGC_STRING:
			return pstrdup(s->sval ? s->sval : "");
		case PGC_ENUM:
			return pstrdup(config_enum_lookup_by_value((struct config_enum *) g, s->ival));
	}
	return pstrdup("");
}

static void
slot_encode(SettingSlot *s)
{
	char	   *text = s->gconf ? psprintf("%s=%s", s->name, slot_value_text(s)) :
		pstrdup(s->name);

	if (s->encoded)
		pfree(s->encoded);
	s->encoded = MemoryContextStrdup(TopMemoryContext, text);
	s->encoded_len = strlen(text) + 1;
	s->valid = true;
	settings_changes++;
	pfree(text);
}

/*
 * Bring a slot up to date: one array read to check its variable is still
 * where it was (a custom setting's placeholder is replaced when a library
 * defines it), then one comparison of its value.
 */
static void
slot_check(SettingSlot *s, struct config_generic **vars, int count)
{
	if (s->gconf)
	{
		if (s->index >= count || vars[s->index] != s->gconf)
		{
			slot_find(s);
			s->valid = false;
		}
	}
	else if (s->seen_count != count)
	{
		slot_find(s);
		s->valid = false;
	}
	if (s->gconf == NULL)
	{
		if (!s->valid)
			slot_encode(s);
		return;
	}
	if (slot_value_changed(s) || !s->valid)
		slot_encode(s);
}

/* ================================================================ cachier.key_settings */

/* Split a comma-separated list of setting names; false if malformed. */
static bool
split_names(const char *text, List **names)
{
	char	   *copy = pstrdup(text);

	*names = NIL;
	if (!SplitGUCList(copy, ',', names))
		return false;
	return true;
}

static bool
check_key_settings(char **newval, void **extra, GucSource source)
{
	List	   *names;
	ListCell   *lc;

	if (!split_names(*newval, &names))
	{
		GUC_check_errdetail("The list of setting names is malformed.");
		return false;
	}
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);

		if (*name == '\0' || strchr(name, '=') != NULL)
		{
			GUC_check_errdetail("\"%s\" is not a setting name.", name);
			return false;
		}
	}
	return true;
}

static void
assign_key_settings(const char *newval, void *extra)
{
	List	   *names;
	ListCell   *lc;
	int			i = 0;

	global_generation++;
	if (global_names)
	{
		for (i = 0; i < global_nnames; i++)
			pfree(global_names[i]);
		pfree(global_names);
	}
	global_names = NULL;
	global_nnames = 0;
	if (!split_names(newval, &names) || names == NIL)
		return;
	global_names = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * list_length(names));
	foreach(lc, names)
		global_names[global_nnames++] = lower_copy((const char *) lfirst(lc));
}

/* Called from cachier_define_settings ([X]). */
void
cachier_define_context_settings(void)
{
	DefineCustomStringVariable("cachier.key_settings",
							   "Settings whose values are part of the key of non-IMMUTABLE functions.",
							   "A comma-separated list of setting names (custom ones such as app.tenant "
							   "included); a function's key_settings option replaces it. "
							   "Settings the function pins with its own SET clause are left out.",
							   &key_settings_text, DEFAULT_KEY_SETTINGS,
							   PGC_USERSET, GUC_LIST_INPUT,
							   check_key_settings, assign_key_settings, NULL);
}

/* ================================================================ functions */

/* The names of the settings proconfig pins ("name=value" each). */
static void
read_pinned(FunctionContext *fc, HeapTuple tuple)
{
	bool		isnull;
	Datum		config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;

	fc->npinned = 0;
	fc->pinned = NULL;
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false, TYPALIGN_INT,
					  &items, &nulls, &n);
	fc->pinned = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * Max(1, n));
	for (i = 0; i < n; i++)
	{
		char	   *item;
		char	   *eq;

		if (nulls[i])
			continue;
		item = TextDatumGetCString(items[i]);
		eq = strchr(item, '=');
		if (eq)
			*eq = '\0';
		fc->pinned[fc->npinned++] = lower_copy(item);
	}
}

static void
forget_list(FunctionContext *fc)
{
	int			i;

	for (i = 0; i < fc->nlist; i++)
		pfree(fc->list[i]);
	if (fc->list)
		pfree(fc->list);
	if (fc->use)
		pfree(fc->use);
	fc->list = NULL;
	fc->nlist = 0;
	fc->use = NULL;
	fc->nuse = 0;
	fc->list_generation = 0;
	fc->key_path = false;
	fc->segment_changes = 0;
}

static void
read_definition(FunctionContext *fc, const FunctionInfo *info)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(info->funcid));
	int			i;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", info->funcid);
	for (i = 0; i < fc->npinned; i++)
		pfree(fc->pinned[i]);
	if (fc->pinned)
		pfree(fc->pinned);
	forget_list(fc);
	fc->secdef = ((Form_pg_proc) GETSTRUCT(tuple))->prosecdef;
	fc->owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	read_pinned(fc, tuple);
	ReleaseSysCache(tuple);
	fc->collatable = false;
	for (i = 0; i < info->nargs; i++)
		if (type_is_collatable(info->argtypes[i]))
			fc->collatable = true;
	fc->version = info->version;
	fc->reads_valid = false;
}

static bool
is_pinned(const FunctionContext *fc, const char *name)
{
	int			i;

	for (i = 0; i < fc->npinned; i++)
		if (guc_name_cmp(fc->pinned[i], name) == 0)
			return true;
	return false;
}

/* Whether the function's own key_settings list is still the one used. */
static bool
same_list(const FunctionContext *fc, int n, char *const *names)
{
	int			i;

	if (fc->list_generation != 0 || fc->nlist != n)
		return false;
	for (i = 0; i < n; i++)
		if (guc_name_cmp(fc->list[i], names[i]) != 0)
			return false;
	return true;
}

/* The slots the function's list keys: neither pinned nor search_path. */
static void
build_list(FunctionContext *fc, int n, char *const *names, bool own)
{
	int			i;

	forget_list(fc);
	fc->use = MemoryContextAlloc(TopMemoryContext, sizeof(int) * Max(1, n));
	if (own)
		fc->list = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * Max(1, n));
	for (i = 0; i < n; i++)
	{
		int			slot;
		int			j;
		bool		dup = false;

		if (own)
			fc->list[fc->nlist++] = lower_copy(names[i]);
		if (is_pinned(fc, names[i]))
			continue;
		slot = slot_for(names[i]);
		if (slots[slot].is_path)
		{
			fc->key_path = true;
			continue;
		}
		for (j = 0; j < fc->nuse; j++)
			dup |= fc->use[j] == slot;
		if (!dup)
			fc->use[fc->nuse++] = slot;
	}
	fc->list_generation = own ? 0 : global_generation;
}

static FunctionContext *
function_context(const FunctionInfo *info, const EffectiveOptions *eff)
{
	FunctionContext *fc;
	bool		found;

	fc = hash_search(function_contexts, &info->funcid, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) fc) + sizeof(Oid), 0, sizeof(FunctionContext) - sizeof(Oid));
		fc->version = 0;
	}
	if (fc->version != info->version)
		read_definition(fc, info);
	if (eff == NULL)
		return fc;
	if (eff->nkey_settings >= 0)
	{
		if (!same_list(fc, eff->nkey_settings, eff->key_settings))
			build_list(fc, eff->nkey_settings, eff->key_settings, true);
	}
	else if (fc->list_generation != global_generation)
		build_list(fc, global_nnames, global_names, false);
	return fc;
}

/* ================================================================ reads */

/*
 * The function's slot of captured reads (dep_registry.c): looked up until
 * found, and then only when the number of slots moved since the last miss.
 */
static DepFunction *
function_deps(FunctionContext *fc)
{
	int			count;

	if (fc->deps != NULL || !cachier_dep_available())
		return fc->deps;
	count = cachier_dep_function_count();
	if (count == fc->deps_count)
		return NULL;
	fc->deps = cachier_dep_function(fc->funcid, false);
	fc->deps_count = count;
	return fc->deps;
}

typedef struct PolicyWalk
{
	List	   *names;			/* of current_setting('x') */
	bool		opaque;
} PolicyWalk;

static bool
policy_walker(Node *node, PolicyWalk *walk)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, policy_walker, walk, 0);
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;

		if (f->funcid == F_CURRENT_SETTING_TEXT || f->funcid == F_CURRENT_SETTING_TEXT_BOOL)
		{
			Node	   *arg = linitial(f->args);

			if (IsA(arg, Const) && !((Const *) arg)->constisnull)
				walk->names = lappend(walk->names,
									  TextDatumGetCString(((Const *) arg)->constvalue));
			else
				walk->opaque = true;
		}
		else if (f->funcid >= FirstNormalObjectId)
			walk->opaque = true;
	}
	else if (IsA(node, OpExpr) && ((OpExpr *) node)->opno >= FirstNormalObjectId)
		walk->opaque = true;
	return expression_tree_walker(node, policy_walker, walk);
}

/* Read what row-level security means for relid into rc. */
static void
read_relation(RelationContext *rc)
{
	Relation	rel;
	PolicyWalk	walk = {NIL, false};
	ListCell   *lc;

	rc->valid = true;
	rc->exists = SearchSysCacheExists1(RELOID, ObjectIdGetDatum(rc->relid));
	rc->rls = false;
	rc->opaque = false;
	rc->nsettings = 0;
	if (rc->settings)
		pfree(rc->settings);
	rc->settings = NULL;
	rc->acl_user = InvalidOid;
	if (!rc->exists)
		return;
	rel = try_relation_open(rc->relid, AccessShareLock);
	if (rel == NULL)
	{
		rc->exists = false;
		return;
	}
	rc->rls = rel->rd_rel->relrowsecurity;
	if (rc->rls && rel->rd_rsdesc)
	{
		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *p = (RowSecurityPolicy *) lfirst(lc);

			(void) policy_walker((Node *) p->qual, &walk);
			(void) policy_walker((Node *) p->with_check_qual, &walk);
		}
	}
	relation_close(rel, AccessShareLock);
	rc->opaque = walk.opaque;
	rc->settings = MemoryContextAlloc(TopMemoryContext,
									  sizeof(int) * Max(1, list_length(walk.names)));
	foreach(lc, walk.names)
		rc->settings[rc->nsettings++] = slot_for((const char *) lfirst(lc));
}

static RelationContext *
relation_context(Oid relid)
{
	bool		found;
	RelationContext *rc = hash_search(relation_contexts, &relid, HASH_ENTER, &found);

	if (!found)
	{
		rc->valid = false;
		rc->settings = NULL;
	}
	if (!rc->valid)
		read_relation(rc);
	return rc;
}

static void
add_setting(ReadsContext *rx, int slot)
{
	int			i;

	for (i = 0; i < rx->nsettings; i++)
		if (rx->settings[i] == slot)
			return;
	if (rx->nsettings < (int) lengthof(rx->settings))
		rx->settings[rx->nsettings++] = slot;
	else
		rx->bypass = "Its row-level security policies read more settings than cachier keys.";
}

/*
 * A hit is served only to a caller who could make the direct call: for a
 * SECURITY INVOKER function, SELECT on every relation its computations
 * read (else the call computes directly and meets the same "permission
 * denied" as a direct call).  A relation under row-level security that
 * applies to the computing role keys the entry by role and by the
 * settings its policies read.
 */
static void
check_reads(const FunctionContext *fc, const EffectiveOptions *eff, const Oid *reads,
			int n, ReadsContext *rx)
{
	Oid			user = GetUserId();
	int			i;
	int			j;

	for (i = 0; i < n && rx->bypass == NULL; i++)
	{
		RelationContext *rc = relation_context(reads[i]);

		if (!rc->exists)
			continue;
		if (!fc->secdef)
		{
			if (rc->acl_user != user)
			{
				/* SELECT on the table, or on every one of its columns */
				rc->acl_ok = pg_class_aclcheck(rc->relid, user, ACL_SELECT) == ACLCHECK_OK ||
					pg_attribute_aclcheck_all(rc->relid, user, ACL_SELECT,
											  ACLMASK_ALL) == ACLCHECK_OK;
				rc->acl_user = user;
			}
			if (!rc->acl_ok)
			{
				rx->bypass = psprintf("The caller has no SELECT privilege on %s, which it reads.",
									  get_rel_name(rc->relid));
				return;
			}
		}
		if (!rc->rls ||
			check_enable_rls(rc->relid, fc->secdef ? fc->owner : user, true) != RLS_ENABLED)
			continue;
		if (rc->opaque && eff->nkey_settings < 0)
		{
			rx->bypass = psprintf("A row-level security policy of %s calls a function; name the settings it reads in key_settings to cache it.",
								  get_rel_name(rc->relid));
			return;
		}
		rx->role = true;
		for (j = 0; j < rc->nsettings; j++)
			add_setting(rx, rc->settings[j]);
	}
}

/* Whether the outcome fc remembers still holds for this call. */
static bool
reads_remembered(const FunctionContext *fc, const EffectiveOptions *eff, DepFunction *deps)
{
	int			ndeclared = Max(eff->ndepends_on, 0);

	return fc->reads_valid &&
		fc->reads_user == GetUserId() &&
		fc->reads_row_security == row_security &&
		fc->reads_generation == relations_generation &&
		fc->reads_size == (deps ? cachier_dep_function_size(deps) : -1) &&
		fc->reads_ndeclared == ndeclared &&
		(ndeclared == 0 ||
		 memcmp(fc->reads_declared, eff->depends_on, sizeof(Oid) * ndeclared) == 0);
}

static void
remember_reads(FunctionContext *fc, const EffectiveOptions *eff, int size,
			   uint64 generation, const ReadsContext *rx)
{
	int			ndeclared = Max(eff->ndepends_on, 0);

	if (fc->reads_declared)
		pfree(fc->reads_declared);
	fc->reads_declared = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(1, ndeclared));
	if (ndeclared > 0)
		memcpy(fc->reads_declared, eff->depends_on, sizeof(Oid) * ndeclared);
	fc->reads_ndeclared = ndeclared;
	fc->reads_user = GetUserId();
	fc->reads_row_security = row_security;
	fc->reads_generation = generation;
	fc->reads_size = size;
	fc->reads = *rx;
	fc->reads_valid = true;
}

/*
 * What the relations the function reads mean for this call (see
 * check_reads).  The outcome is remembered per function for the last
 * caller and reused until the role, row_security, the list of relations
 * or anything a relcache or role invalidation covers (privileges,
 * policies, memberships) changes: a hit reads no list and checks no
 * privilege.  A bypass is not remembered; it computes anyway.
 */
static const ReadsContext *
reads_context(FunctionContext *fc, const EffectiveOptions *eff, ReadsContext *rx)
{
	DepFunction *deps = function_deps(fc);
	int			size;
	uint64		generation;
	int			n;
	bool		overflow;
	const Oid  *reads;

	if (reads_remembered(fc, eff, deps))
		return &fc->reads;
	/*
	 * The size and the generation before the checks: a relation added, or
	 * an invalidation processed, while they run is seen at the next call.
	 */
	size = deps ? cachier_dep_function_size(deps) : -1;
	generation = relations_generation;
	reads = cachier_function_reads(eff, deps, &n, &overflow);
	rx->role = false;
	rx->nsettings = 0;
	rx->bypass = NULL;
	if (overflow)
		rx->bypass = psprintf("Its computations read more than %d relations, so the privileges and row-level security of what it reads cannot all be checked.",
							  CACHIER_RELS_PER_FUNCTION);
	else
		check_reads(fc, eff, reads, n, rx);
	pfree((void *) reads);
	if (rx->bypass == NULL)
		remember_reads(fc, eff, size, generation, rx);
	else
		fc->reads_valid = false;
	return rx;
}

/* ================================================================ the key */

/*
 * The settings part of the key: those of the function's list (checked one
 * by one, then copied as one segment built when one of them last changed)
 * and those row-level security policies read.
 */
static void
append_settings(StringInfo buf, FunctionContext *fc, const ReadsContext *rx,
				bool immutable, KeyedSettings *keyed)
{
	struct config_generic **vars = get_guc_variables();
	int			count = GetNumConfigOptions();
	int			i;
	bool		any = false;
	bool		extra = false;

	keyed->start = buf->len;
	if (!immutable && fc->nuse > 0)
	{
		for (i = 0; i < fc->nuse; i++)
			slot_check(&slots[fc->use[i]], vars, count);
		if (fc->segment_changes != settings_changes)
		{
			if (fc->segment.data == NULL)
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				initStringInfo(&fc->segment);
				MemoryContextSwitchTo(old);
			}
			resetStringInfo(&fc->segment);
			appendStringInfoChar(&fc->segment, TAG_SETTINGS);
			for (i = 0; i < fc->nuse; i++)
				appendBinaryStringInfo(&fc->segment, slots[fc->use[i]].encoded,
									   slots[fc->use[i]].encoded_len);
			/* with the end marker, which the key hashes with the segment */
			appendStringInfoChar(&fc->segment, '\0');
			fc->segment_hash = hash_bytes_extended((const unsigned char *) fc->segment.data,
												   fc->segment.len, 0);
			fc->segment_changes = settings_changes;
		}
		/* the end marker is left out until the policies' settings are in */
		appendBinaryStringInfo(buf, fc->segment.data, fc->segment.len - 1);
		any = true;
	}
	for (i = 0; i < rx->nsettings; i++)
	{
		SettingSlot *s = &slots[rx->settings[i]];
		int			j;
		bool		keyed_already = false;

		if (s->is_path || is_pinned(fc, s->name))
			continue;
		for (j = 0; !immutable && j < fc->nuse; j++)
			keyed_already |= fc->use[j] == rx->settings[i];
		if (keyed_already)
			continue;
		if (!any)
			appendStringInfoChar(buf, TAG_SETTINGS);
		any = extra = true;
		slot_check(s, vars, count);
		appendBinaryStringInfo(buf, s->encoded, s->encoded_len);
	}
	if (!any)
	{
		keyed->start = -1;
		return;
	}
	appendStringInfoChar(buf, '\0');
	keyed->len = buf->len - keyed->start;
	keyed->hash = extra ?
		hash_bytes_extended((const unsigned char *) buf->data + keyed->start, keyed->len, 0) :
		fc->segment_hash;
}

/*
 * Append the call's context to its keyed bytes (after the arguments) and
 * say whether the entry is shared between roles.  Returns why the call
 * must be computed directly, or NULL.
 *
 * Shared only with the owner's consent (the function is configured) and
 * when neither per_role nor row-level security keys it by role.
 */
const char *
cachier_append_context(StringInfo buf, const FunctionInfo *info,
					   const EffectiveOptions *eff, Oid collation, bool *shared,
					   KeyedSettings *settings)
{
	FunctionContext *fc = function_context(info, eff);
	ReadsContext scratch;
	const ReadsContext *rx;
	bool		immutable = info->volatility == PROVOLATILE_IMMUTABLE;

	rx = reads_context(fc, eff, &scratch);
	if (rx->bypass)
		return rx->bypass;
	if (fc->collatable)
	{
		appendStringInfoChar(buf, TAG_COLLATION);
		appendStringInfoString(buf, collation_identity(collation));
		appendStringInfoChar(buf, '\0');
	}
	append_settings(buf, fc, rx, immutable, settings);
	*shared = info->options.has_row && !eff->per_role && !rx->role;
	if (!*shared)
		cachier_append_role(buf);
	/* a shared entry is always keyed by the path, for the poisoning rule */
	if (!info->pins_search_path && !is_pinned(fc, "search_path") &&
		(*shared || (!immutable && fc->key_path)))
		cachier_append_search_path(buf);
	return NULL;
}

/* ================================================================ reading keys back */

/* The context parts of keyed bytes; pointers into them. */
typedef struct ParsedContext
{
	const char *collation;		/* identity, or NULL */
	const char *settings;		/* first "name=value", or NULL */
	const char *settings_end;
	bool		has_role;
	Oid			role;
	const char *path;			/* first schema name, or NULL */
	const char *end;
} ParsedContext;

static bool
parse_context(const FunctionInfo *info, const char *data, int len, ParsedContext *pc)
{
	int			pos = cachier_args_end(data, len, info->nargs);
	const char *end = data + len;

	memset(pc, 0, sizeof(*pc));
	pc->end = end;
	if (pos < 0)
		return false;
	while (pos < len)
	{
		char		tag = data[pos++];
		const char *p = data + pos;

		switch (tag)
		{
			case TAG_COLLATION:
				pc->collation = p;
				pos += strnlen(p, end - p) + 1;
				break;
			case TAG_SETTINGS:
				pc->settings = p;
				while (p < end && *p)
					p += strnlen(p, end - p) + 1;
				pc->settings_end = p;
				pos = (p - data) + 1;
				break;
			case TAG_ROLE:
				{
					uint32		be;

					if (pos + 4 > len)
						return false;
					memcpy(&be, p, 4);
					pc->has_role = true;
					pc->role = (Oid) pg_ntoh32(be);
					pos += 4;
					break;
				}
			case TAG_PATH:
				pc->path = p;
				pos = len;
				break;
			default:
				return false;
		}
	}
	return pos <= len;
}

/* A setting's name as guc.c spells it ("TimeZone"), for messages. */
static const char *
display_name(const char *keyed_name)
{
	int			slot = slot_for(keyed_name);	/* may move slots */
	SettingSlot *s = &slots[slot];

	slot_find(s);
	return s->gconf ? s->gconf->name : s->name;
}

/* Whether "name=value" is what the setting would be after RESET. */
static bool
is_reset_value(const char *item, const char *eq)
{
	char	   *name = pnstrdup(item, eq - item);
	const char *reset;

	if (GetConfigOption(name, true, false) == NULL)
		return false;
	reset = GetConfigOptionResetString(name);
	return reset != NULL && strcmp(reset, eq + 1) == 0;
}

static void
describe(StringInfo out, const FunctionInfo *info, const ParsedContext *pc, bool brief)
{
	const char *p;

	if (pc->has_role)
	{
		char	   *name = GetUserNameFromId(pc->role, true);

		if (name)
			appendStringInfo(out, "role %s", quote_identifier(name));
		else
			appendStringInfo(out, "role %u", pc->role);
	}
	if (pc->collation && !(brief && strcmp(pc->collation, database_identity()) == 0))
		appendStringInfo(out, "%scollation %s", out->len ? ", " : "",
						 strcmp(pc->collation, database_identity()) == 0 ?
						 "default" : pc->collation);
	for (p = pc->settings; p && p < pc->settings_end; p += strlen(p) + 1)
	{
		const char *eq = strchr(p, '=');

		if (eq && brief && is_reset_value(p, eq))
			continue;
		if (eq)
			appendStringInfo(out, "%s%s=%s", out->len ? ", " : "",
							 display_name(pnstrdup(p, eq - p)), eq + 1);
		else
			appendStringInfo(out, "%s%s unset", out->len ? ", " : "", display_name(p));
	}
	/* verbose leaves the path out: it is in most keys and reads long */
	if (pc->path && !brief)
	{
		appendStringInfo(out, "%ssearch_path ", out->len ? ", " : "");
		for (p = pc->path; p < pc->end; p += strnlen(p, pc->end - p) + 1)
			appendStringInfo(out, "%s%s", p == pc->path ? "" : ", ",
							 strncmp(p, "pg_temp:", 8) == 0 ? "pg_temp" : quote_identifier(p));
	}
}

/*
 * A readable description of the context an entry was keyed with, from its
 * keyed bytes: "role alice, collation icu:und, TimeZone=UTC, ...,
 * search_path pg_catalog, public"; "" when it holds none.  For the
 * cachier_entries view.
 */
char *
cachier_describe_context(const FunctionInfo *info, const char *data, int len)
{
	ParsedContext pc;
	StringInfoData out;

	if (!parse_context(info, data, len, &pc))
		return pstrdup("?");
	initStringInfo(&out);
	describe(&out, info, &pc, false);
	return out.data;
}

/* The resolved schema names as a search_path setting. */
static char *
path_setting(const ParsedContext *pc)
{
	StringInfoData out;
	const char *p;

	initStringInfo(&out);
	for (p = pc->path; p < pc->end; p += strnlen(p, pc->end - p) + 1)
	{
		if (strncmp(p, "pg_temp:", 8) == 0)
			return NULL;		/* a session's own temporary schema */
		appendStringInfo(&out, "%s%s", out.len ? ", " : "", quote_identifier(p));
	}
	return out.data;
}

/* Whether the session's own search_path resolves to the keyed schemas. */
static bool
path_resolves_same(const ParsedContext *pc)
{
	StringInfoData own;
	bool		same;

	initStringInfo(&own);
	cachier_append_search_path(&own);
	/* own holds the tag, then the names; pc->path points after the tag */
	same = own.len - 1 == pc->end - pc->path &&
		memcmp(own.data + 1, pc->path, own.len - 1) == 0;
	pfree(own.data);
	return same;
}

static bool
set_setting(const char *name, const char *value)
{
	return set_config_option(name, value,
							 superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SET, true, DEBUG1, false) > 0;
}

/*
 * For a background refresh, inside the caller's GUC nest level: set the
 * settings the entry was keyed with, find its collation, and check that
 * the context now gives exactly the keyed bytes (the same role, settings
 * the refresh could set, a search path that resolves the same).  False
 * when it cannot be reproduced: the refresh leaves the entry to the next
 * call then.
 */
bool
cachier_restore_context(const FunctionInfo *info, const EffectiveOptions *eff,
						const char *data, int len, Oid *collation)
{
	ParsedContext pc;
	const char *p;
	StringInfoData again;
	int			args_end = cachier_args_end(data, len, info->nargs);
	bool		shared;
	KeyedSettings keyed;
	bool		same;

	*collation = DEFAULT_COLLATION_OID;
	if (!parse_context(info, data, len, &pc))
		return false;
	if (pc.has_role && pc.role != GetUserId())
		return false;
	if (pc.collation && !OidIsValid(*collation = collation_by_identity(pc.collation)))
		return false;
	for (p = pc.settings; p && p < pc.settings_end; p += strlen(p) + 1)
	{
		const char *eq = strchr(p, '=');

		if (eq && !set_setting(pnstrdup(p, eq - p), eq + 1))
			return false;
	}
	if (pc.path && !path_resolves_same(&pc))
	{
		char	   *path = path_setting(&pc);

		if (path == NULL || !set_setting("search_path", path))
			return false;
	}
	initStringInfo(&again);
	appendBinaryStringInfo(&again, data, args_end);
	if (cachier_append_context(&again, info, eff, *collation, &shared, &keyed) != NULL)
		return false;
	same = again.len == len && memcmp(again.data, data, len) == 0;
	pfree(again.data);
	return same;
}

/* ================================================================ invalidation */

static void
forget_relation(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	RelationContext *rc;

	relations_generation++;
	if (relation_contexts == NULL)
		return;
	if (OidIsValid(relid))
	{
		rc = hash_search(relation_contexts, &relid, HASH_FIND, NULL);
		if (rc)
			rc->valid = false;
		return;
	}
	hash_seq_init(&seq, relation_contexts);
	while ((rc = hash_seq_search(&seq)) != NULL)
		rc->valid = false;
}

/* A role's attributes or memberships changed: privileges may differ. */
static void
forget_privileges(Datum arg, int cacheid, uint32 hashvalue)
{
	forget_relation(arg, InvalidOid);
}

static void
forget_collations(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS seq;
	CollationIdentity *entry;

	hash_seq_init(&seq, collation_identities);
	while ((entry = hash_seq_search(&seq)) != NULL)
		(void) hash_search(collation_identities, &entry->collid, HASH_REMOVE, NULL);
}

/* Called from _PG_init. */
void
cachier_context_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(FunctionContext);
	ctl.hcxt = TopMemoryContext;
	function_contexts = hash_create("cachier function contexts", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(RelationContext);
	relation_contexts = hash_create("cachier relation contexts", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = offsetof(CollationIdentity, identity) + NAMEDATALEN * 4;
	collation_identities = hash_create("cachier collation identities", 16, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(forget_relation, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, forget_privileges, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, forget_privileges, (Datum) 0);
	CacheRegisterSyscacheCallback(COLLOID, forget_collations, (Datum) 0);
}

/*
 * The verbose DETAIL of a miss: what the new entry is keyed by, or NULL;
 * settings only where they differ from what RESET would give, so that the
 * usual case reads short.
 */
char *
cachier_context_detail(const FunctionInfo *info, const StringInfo keyed)
{
	ParsedContext pc;
	StringInfoData out;

	if (!parse_context(info, keyed->data, keyed->len, &pc))
		return NULL;
	initStringInfo(&out);
	describe(&out, info, &pc, true);
	return out.len ? psprintf("Keyed by %s.", out.data) : NULL;
}

/* cachier.entry_context(fn regprocedure, args bytea) RETURNS text */
PG_FUNCTION_INFO_V1(cachier_entry_context);
Datum
cachier_entry_context(PG_FUNCTION_ARGS)
{
	Oid			funcid = PG_GETARG_OID(0);
	bytea	   *args = PG_GETARG_BYTEA_PP(1);
	FunctionInfo *info;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(funcid)))
		PG_RETURN_NULL();
	info = cachier_function_info(funcid);
	PG_RETURN_TEXT_P(cstring_to_text(cachier_describe_context(info, VARDATA_ANY(args),
															  VARSIZE_ANY_EXHDR(args))));
}

/* ================================================================ the key */

/*
 * The table's key: a hash of the keyed bytes seeded with the identity.
 * The settings (where cachier_append_context put them) are hashed on their
 * own and their hash folded in, so that it is computed once per change of
 * settings, not per call; the key is still a function of the keyed bytes
 * alone.
 */
int64
cachier_make_key(const FunctionInfo *info, const StringInfo keyed,
				 const KeyedSettings *settings)
{
	const unsigned char *data = (const unsigned char *) keyed->data;
	int			end;
	uint64		h;

	if (settings->start < 0)
		return (int64) hash_bytes_extended(data, keyed->len, (uint64) info->fingerprint);
	end = settings->start + settings->len;
	Assert(end <= keyed->len);
	h = hash_bytes_extended(data, settings->start, (uint64) info->fingerprint);
	h = hash_combine64(h, settings->hash);
	return (int64) hash_bytes_extended(data + end, keyed->len - end, h);
}
