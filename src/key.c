/*-------------------------------------------------------------------------
 *
 * key.c
 *	  Encodes a call's arguments into its keyed bytes and reads them back
 *	  (args_text.c shows them; context_key.c appends the context and
 *	  hashes the whole into the table's key).
 *
 * The arguments, already coerced to the function's declared types, are
 * encoded one after another: a tag byte ('n' for NULL, 'v' for a value)
 * and, for a value, its 4-byte big-endian length and its binary (or text)
 * form from codec.c.  The call's context follows (context_key.c): its
 * collation, settings, for per-role entries the tag 'r' and the role's OID
 * (4 bytes, big-endian), so a new role that reuses a dropped role's name
 * never reaches the old role's entries, and where it applies the tag 'p'
 * and the names of the schemas the caller's search path resolves to
 * (cachier_append_search_path).  These "keyed bytes" are stored with the
 * entry and compared on every hit, so an entry is only ever served for
 * exactly its arguments in exactly its context.  The table's key is
 * a 64-bit hash of them seeded with the function's identity digest: cheap
 * to compute and to compare in the index, and a hash collision costs at
 * most a miss.  Apart from the role of a per-role entry, nothing in the
 * keyed bytes depends on OIDs or on the session, so the same call gives
 * the same bytes on every server of a major version (per-role entries are
 * shared only between servers whose role OIDs agree: a physical standby
 * and its primary).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#define TAG_NULL	'n'
#define TAG_VALUE	'v'
#define TAG_ROLE	'r'
#define TAG_PATH	'p'

/*
 * The resolved search path of the session, as keyed bytes, computed again
 * only when search_path, the role or a schema changed.
 */
static struct
{
	bool		valid;
	char	   *setting;		/* search_path as it was, in TopMemoryContext */
	Oid			roleid;
	StringInfoData bytes;
} path_cache;

/*
 * Append the encoded arguments to buf; false (buf then holds only part of
 * them) when they would take more than limit bytes.
 */
static bool
encode_args(StringInfo buf, TypeCodec *codecs, int nargs, Datum *values,
			bool *nulls, Size limit)
{
	int			i;

	for (i = 0; i < nargs; i++)
	{
		if (nulls[i])
		{
			appendStringInfoChar(buf, TAG_NULL);
			continue;
		}
		appendStringInfoChar(buf, TAG_VALUE);
		if (!cachier_append_encoded(buf, &codecs[i], values[i], limit))
			return false;
	}
	return true;
}

/*
 * The keyed bytes of a call, unless its arguments take more than
 * CACHIER_MAX_KEYED_BYTES encoded: false then, and the call cannot be
 * keyed (it is computed without the cache).
 */
bool
cachier_try_encode_args(StringInfo buf, TypeCodec *codecs, int nargs,
						Datum *values, bool *nulls)
{
	return encode_args(buf, codecs, nargs, values, nulls, CACHIER_MAX_KEYED_BYTES);
}

/*
 * The keyed bytes of a call; arguments too large for one buffer are an
 * error that says so (rather than "out of memory").
 */
void
cachier_encode_args(StringInfo buf, TypeCodec *codecs, int nargs,
					Datum *values, bool *nulls)
{
	if (!encode_args(buf, codecs, nargs, values, nulls, MaxAllocSize / 2))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the arguments are too large to be cached"),
				 errdetail("Encoded, they would take more than %d MB.",
						   (int) (MaxAllocSize / 2 / (1024 * 1024))),
				 errhint("Call the function directly, or set cachier.skip_cache for this call.")));
}

/* For per-role entries: the current role's OID is part of the key. */
void
cachier_append_role(StringInfo buf)
{
	uint32		be = pg_hton32((uint32) GetUserId());

	appendStringInfoChar(buf, TAG_ROLE);
	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
}

static void
forget_path(Datum arg, int cacheid, uint32 hashvalue)
{
	path_cache.valid = false;
}

/* Called from _PG_init: a schema or role change may resolve the path anew. */
void
cachier_key_init(void)
{
	CacheRegisterSyscacheCallback(NAMESPACEOID, forget_path, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, forget_path, (Datum) 0);
	cachier_wrapper_calls_init();
}

/* Resolve the session's search path into the cache. */
static void
resolve_path(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	List	   *path = fetch_search_path(true);
	ListCell   *lc;

	if (path_cache.bytes.data == NULL)
		initStringInfo(&path_cache.bytes);
	resetStringInfo(&path_cache.bytes);
	if (path_cache.setting)
		pfree(path_cache.setting);
	path_cache.setting = pstrdup(namespace_search_path ? namespace_search_path : "");
	path_cache.roleid = GetUserId();
	appendStringInfoChar(&path_cache.bytes, TAG_PATH);
	foreach(lc, path)
	{
		Oid			nsp = lfirst_oid(lc);
		char	   *name = get_namespace_name(nsp);

		/*
		 * The temporary schema's objects are this session's alone, and a
		 * later session may reuse its name: it stands for this session.
		 */
		if (isAnyTempNamespace(nsp))
			appendStringInfo(&path_cache.bytes, "pg_temp:%d:" INT64_FORMAT,
							 MyProcPid, (int64) MyStartTimestamp);
		else if (name)
			appendStringInfoString(&path_cache.bytes, name);
		appendStringInfoChar(&path_cache.bytes, '\0');
	}
	list_free(path);
	path_cache.valid = true;
	MemoryContextSwitchTo(old);
}

/*
 * For a shared entry of a function that does not pin its search_path: the
 * schemas the caller's search path resolves to, by name, so that callers
 * whose unqualified names resolve differently (and a role that planted an
 * operator in its own path) never share an entry.  The session's
 * temporary schema, when it has one, stands for this session (its process
 * and start time): such entries are this session's own.
 */
void
cachier_append_search_path(StringInfo buf)
{
	const char *setting = namespace_search_path ? namespace_search_path : "";

	if (!path_cache.valid || path_cache.roleid != GetUserId() ||
		strcmp(path_cache.setting, setting) != 0)
		resolve_path();
	appendBinaryStringInfo(buf, path_cache.bytes.data, path_cache.bytes.len);
}

/*
 * The next argument in stored keyed bytes: false at the end or when the
 * bytes are malformed; otherwise NULL-ness and the encoded value's place.
 */
bool
cachier_next_arg(const char *data, int len, int *pos, bool *isnull, int *start, uint32 *vlen)
{
	if (*pos >= len)
		return false;
	*isnull = data[(*pos)++] == TAG_NULL;
	if (*isnull)
		return true;
	if (*pos + 4 > len)
		return false;
	memcpy(vlen, data + *pos, 4);
	*vlen = pg_ntoh32(*vlen);
	*pos += 4;
	if (*vlen > (uint32) (len - *pos))
		return false;
	*start = *pos;
	*pos += *vlen;
	return true;
}

/*
 * Where the context (context_key.c) starts in keyed bytes: after nargs
 * encoded arguments; -1 when the bytes are malformed.
 */
int
cachier_args_end(const char *data, int len, int nargs)
{
	int			pos = 0;
	int			i;

	for (i = 0; i < nargs; i++)
	{
		bool		isnull;
		int			start;
		uint32		vlen;

		if (!cachier_next_arg(data, len, &pos, &isnull, &start, &vlen))
			return -1;
	}
	return pos;
}

/* The arguments of stored keyed bytes, as Datums of the declared types. */
void
cachier_decode_args(TypeCodec *codecs, int nargs, const char *data, int len,
					Datum *values, bool *nulls)
{
	int			pos = 0;
	int			i;

	for (i = 0; i < nargs; i++)
	{
		int			start;
		uint32		vlen;

		if (!cachier_next_arg(data, len, &pos, &nulls[i], &start, &vlen))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the stored arguments of a cache entry are malformed")));
		values[i] = nulls[i] ? (Datum) 0 : cachier_decode(&codecs[i], data + start, vlen);
	}
}

