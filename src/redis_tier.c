/*-------------------------------------------------------------------------
 *
 * redis_tier.c
 *	  The cache in Redis: keys, the stored value format, the cross-server
 *	  computing lock and clearing.
 *
 * Key:   <cachier.redis_key_prefix>v3:<namespace>:<function identity>:<argument key>
 *        namespace = "db.<system identifier>.<database OID>" (decimal) by
 *        default: this database of this cluster and its physical standbys,
 *        which have the same both; or "ns.<cachier.redis_namespace>" when
 *        a superuser set it, with every byte outside [A-Za-z0-9_.-]
 *        written as %XX, so that a namespace never holds ':' or a glob
 *        character and no namespace can spell another's key prefix.
 *        identity = the first 16 bytes of the function's identity digest
 *        (signature and definition, see function_info.c), argument key =
 *        SHA-256 of the keyed bytes (key.c), both in hex: the same on every
 *        server of a major version.  The lock of a key is "<key>:lock".
 *        Databases, and clusters, share entries only through a namespace
 *        that a superuser gave each of them (cachier.redis_namespace is
 *        PGC_SUSET: only a superuser sets it, also with ALTER DATABASE or
 *        ALTER ROLE ... SET).
 * Value: "CCH1", a flags byte (1: NULL result, 2: text form), created_at
 *        (int64, big-endian microseconds since 2000), compute_ms (float8
 *        bits, big-endian), the result type's qualified name (uint16
 *        length + bytes), with flag 8 the system identifier of the server
 *        that stored it and its function's epoch there (two big-endian
 *        int64: the computation read tables, see freshness.c), and the
 *        value's binary (or text) form.  Keys are "v3" since 0.5 (0.4's
 *        "v2" values have no epoch and are never read).  A value with an
 *        epoch from another server is never served: its epoch means
 *        nothing here (StoredEntry.epoch 0, which no epoch ever is).
 *
 * Nothing read from Redis is trusted: a value with another magic, type,
 * form or length, or one created more than CLOCK_SKEW in the future, is a
 * miss plus a WARNING (and is overwritten by the recomputed value); a
 * created_at less than CLOCK_SKEW ahead of this server's clock is taken
 * as now (another server's clock may be a little ahead).  Its bytes are only ever
 * decoded by the type's receive or input function, in a subtransaction
 * (cached_call.c).  Entries expire by themselves: the TTL follows the
 * shelf life.  Clearing uses SCAN and UNLINK, never KEYS.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "cachier_redis.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define VALUE_MAGIC		"CCH1"
#define FLAG_NULL		1
#define FLAG_TEXT		2
#define FLAG_EPOCH		8
#define EPOCH_LEN		16
#define HEADER_LEN		(4 + 1 + 8 + 8 + 2)
#define CLOCK_SKEW		(10 * USECS_PER_SEC)


static char *
hex(const uint8 *bytes, int n)
{
	char	   *out = palloc(n * 2 + 1);

	hex_encode((const char *) bytes, n, out);
	out[n * 2] = '\0';
	return out;
}

/* The namespace part of the keys (see the top of the file). */
static char *
key_namespace(void)
{
	StringInfoData buf;
	const unsigned char *p;

	initStringInfo(&buf);
	if (cachier_redis_namespace == NULL || cachier_redis_namespace[0] == '\0')
	{
		appendStringInfo(&buf, "db." UINT64_FORMAT ".%u", GetSystemIdentifier(), MyDatabaseId);
		return buf.data;
	}
	appendStringInfoString(&buf, "ns.");
	for (p = (const unsigned char *) cachier_redis_namespace; *p; p++)
	{
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "%%%02X", *p);
	}
	return buf.data;
}

static char *
function_prefix(const FunctionInfo *info)
{
	return psprintf("%sv3:%s:%s:", cachier_redis_key_prefix ? cachier_redis_key_prefix : "",
					key_namespace(), hex(info->identity, 16));
}

static char *
entry_key(const FunctionInfo *info, const StringInfo keyed)
{
	uint8		digest[CACHIER_DIGEST_LEN];

	cachier_sha256((const uint8 *) keyed->data, keyed->len, digest);
	return psprintf("%s%s", function_prefix(info), hex(digest, CACHIER_DIGEST_LEN));
}

static RedisResult *
command(int argc, const char **argv, const size_t *lens)
{
	size_t		own[8];
	int			i;

	if (lens == NULL)
	{
		for (i = 0; i < argc; i++)
			own[i] = strlen(argv[i]);
		lens = own;
	}
	return cachier_redis_command(argc, argv, lens);
}

static void
warn_malformed(const char *key, const char *why)
{
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the value of Redis key \"%s\" is malformed; recomputing it", key),
			 errdetail("%s", why)));
}

/*
 * A created_at read from Redis: in the future by less than CLOCK_SKEW, it
 * is taken as now; further in the future, it is not believed (false).
 */
static bool
trusted_created_at(TimestampTz created, TimestampTz *out)
{
	TimestampTz now = GetCurrentTimestamp();

	if (created > now && created - now > CLOCK_SKEW)
		return false;
	*out = Min(created, now);
	return true;
}

/* Check the header of a value read from Redis; fill entry from it. */
static bool
parse_value(const char *key, const char *data, size_t len, const TypeCodec *codec,
			StoredEntry *entry)
{
	const char *type = format_type_be_qualified(codec->type);
	uint64		created;
	uint64		ms_bits;
	uint16		tlen;
	uint8		flags;
	double		ms;

	if (len < HEADER_LEN || memcmp(data, VALUE_MAGIC, 4) != 0)
	{
		warn_malformed(key, "It does not start with a cachier header.");
		return false;
	}
	flags = (uint8) data[4];
	memcpy(&created, data + 5, 8);
	memcpy(&ms_bits, data + 13, 8);
	memcpy(&tlen, data + 21, 2);
	tlen = pg_ntoh16(tlen);
	if ((flags & ~(FLAG_NULL | FLAG_TEXT | FLAG_EPOCH)) != 0 ||
		len < (size_t) HEADER_LEN + tlen + ((flags & FLAG_EPOCH) ? EPOCH_LEN : 0) ||
		tlen != strlen(type) || memcmp(data + HEADER_LEN, type, tlen) != 0 ||
		((flags & FLAG_TEXT) != 0) != !codec->binary)
	{
		warn_malformed(key, psprintf("It is not a value of type %s.", type));
		return false;
	}
	ms_bits = pg_ntoh64(ms_bits);
	memcpy(&ms, &ms_bits, 8);
	if (isnan(ms) || isinf(ms) || ms < 0)
	{
		warn_malformed(key, "Its compute time is not a duration.");
		return false;
	}
	if (!trusted_created_at((TimestampTz) pg_ntoh64(created), &entry->created_at))
	{
		warn_malformed(key, "It was created in the future.");
		return false;
	}
	entry->found = true;
	entry->isnull = (flags & FLAG_NULL) != 0;
	entry->compute_ms = ms;
	entry->value = NULL;
	entry->has_epoch = (flags & FLAG_EPOCH) != 0;
	entry->epoch = 0;
	if (entry->has_epoch)
	{
		uint64		sysid;
		uint64		epoch;

		memcpy(&sysid, data + HEADER_LEN + tlen, 8);
		memcpy(&epoch, data + HEADER_LEN + tlen + 8, 8);
		if (pg_ntoh64(sysid) == GetSystemIdentifier())
			entry->epoch = (int64) pg_ntoh64(epoch);
		tlen += EPOCH_LEN;		/* the value follows */
	}
	if (!entry->isnull)
	{
		size_t		vlen = len - HEADER_LEN - tlen;

		entry->value = palloc(VARHDRSZ + vlen);
		SET_VARSIZE(entry->value, VARHDRSZ + vlen);
		memcpy(VARDATA(entry->value), data + HEADER_LEN + tlen, vlen);
	}
	else if (len != (size_t) HEADER_LEN + tlen)
	{
		warn_malformed(key, "A NULL value has trailing bytes.");
		return false;
	}
	return true;
}

/* Look the entry up in Redis; false (entry->found false) if not there. */
bool
cachier_redis_get(const FunctionInfo *info, const StringInfo keyed,
				  const TypeCodec *codec, StoredEntry *entry)
{
	char	   *key = entry_key(info, keyed);
	const char *argv[2] = {"GET", key};
	RedisResult *reply;
	bool		ok = false;

	entry->found = false;
	reply = command(2, argv, NULL);
	if (reply == NULL)
		return false;
	if (reply->type == REDIS_REPLY_STRING)
		ok = parse_value(key, reply->str, reply->len, codec, entry);
	else if (reply->type != REDIS_REPLY_NIL)
		warn_malformed(key, "It is not a string.");	/* WRONGTYPE too */
	return ok;
}

/* Store a value (NULL: a NULL result) with a TTL (0: none). */
bool
cachier_redis_put(const FunctionInfo *info, const StringInfo keyed,
				  const TypeCodec *codec, bytea *value,
				  TimestampTz created_at, double compute_ms, int64 ttl_us,
				  bool has_epoch, int64 epoch)
{
	const char *type = format_type_be_qualified(codec->type);
	StringInfoData buf;
	uint64		created = pg_hton64((uint64) created_at);
	uint64		ms_bits;
	uint16		tlen = pg_hton16((uint16) strlen(type));
	char		flags = (value == NULL ? FLAG_NULL : 0) | (codec->binary ? 0 : FLAG_TEXT) |
		(has_epoch ? FLAG_EPOCH : 0);
	char		ttl[32];
	const char *argv[5];
	size_t		lens[5];
	RedisResult *reply;

	memcpy(&ms_bits, &compute_ms, 8);
	ms_bits = pg_hton64(ms_bits);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VALUE_MAGIC, 4);
	appendBinaryStringInfo(&buf, &flags, 1);
	appendBinaryStringInfo(&buf, (char *) &created, 8);
	appendBinaryStringInfo(&buf, (char *) &ms_bits, 8);
	appendBinaryStringInfo(&buf, (char *) &tlen, 2);
	appendStringInfoString(&buf, type);
	if (has_epoch)
	{
		uint64		sysid = pg_hton64(GetSystemIdentifier());
		uint64		e = pg_hton64((uint64) epoch);

		appendBinaryStringInfo(&buf, (char *) &sysid, 8);
		appendBinaryStringInfo(&buf, (char *) &e, 8);
	}
	if (value)
		appendBinaryStringInfo(&buf, VARDATA(value), VARSIZE(value) - VARHDRSZ);

	argv[0] = "SET";
	argv[1] = entry_key(info, keyed);
	argv[2] = buf.data;
	lens[0] = 3;
	lens[1] = strlen(argv[1]);
	lens[2] = buf.len;
	if (ttl_us > 0)
	{
		snprintf(ttl, sizeof(ttl), INT64_FORMAT, Max(ttl_us / 1000, 1));
		argv[3] = "PX";
		argv[4] = ttl;
		lens[3] = 2;
		lens[4] = strlen(ttl);
	}
	reply = command(ttl_us > 0 ? 5 : 3, argv, lens);
	if (reply == NULL)
		return false;
	return reply->type == REDIS_REPLY_STATUS;
}

/*
 * Take the cross-server computing lock of a key: SET NX PX, so that it
 * expires if its holder dies.  1: taken, 0: another server has it,
 * -1: Redis is not answering.
 */
int
cachier_redis_lock(const FunctionInfo *info, const StringInfo keyed, int64 ttl_us,
				   RedisLock *lock)
{
	uint8		random[16];
	char		ttl[32];
	const char *argv[6];
	RedisResult *reply;

	lock->key = psprintf("%s:lock", entry_key(info, keyed));
	if (!pg_strong_random(random, sizeof(random)))
		memset(random, 0, sizeof(random));
	hex_encode((const char *) random, sizeof(random), lock->token);
	lock->token[32] = '\0';
	snprintf(ttl, sizeof(ttl), INT64_FORMAT, Max(ttl_us / 1000, 1));
	argv[0] = "SET";
	argv[1] = lock->key;
	argv[2] = lock->token;
	argv[3] = "NX";
	argv[4] = "PX";
	argv[5] = ttl;
	reply = command(6, argv, NULL);
	if (reply == NULL)
		return -1;
	return reply->type == REDIS_REPLY_STATUS ? 1 : 0;
}

/* Give the lock back, if it is still ours. */
void
cachier_redis_unlock(RedisLock *lock)
{
	const char *argv[5] = {"EVAL",
		"if redis.call('get', KEYS[1]) == ARGV[1] then "
		"return redis.call('del', KEYS[1]) else return 0 end",
	"1", lock->key, lock->token};

	(void) command(5, argv, NULL);
}

/* A glob pattern matching the keys that start with prefix. */
static char *
glob_prefix(const char *prefix)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = prefix; *p; p++)
	{
		if (strchr("*?[]\\", *p))
			appendStringInfoChar(&buf, '\\');
		appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '*');
	return buf.data;
}

/* UNLINK the keys of one SCAN page; how many were removed. */
static int64
unlink_page(const RedisResult *keys)
{
	const char **argv;
	size_t	   *lens;
	RedisResult *reply;
	int64		removed = 0;
	size_t		i;

	if (keys->elements == 0)
		return 0;
	argv = palloc(sizeof(char *) * (keys->elements + 1));
	lens = palloc(sizeof(size_t) * (keys->elements + 1));
	argv[0] = "UNLINK";
	lens[0] = 6;
	for (i = 0; i < keys->elements; i++)
	{
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	reply = cachier_redis_command(keys->elements + 1, argv, lens);
	if (reply && reply->type == REDIS_REPLY_INTEGER)
		removed = reply->integer;
	return removed;
}

/*
 * Remove the entry of keyed (or, with keyed NULL, every entry and lock of
 * the function) from Redis; how many keys went.
 */
int64
cachier_redis_clear(const FunctionInfo *info, const StringInfo keyed)
{
	char	   *pattern = glob_prefix(function_prefix(info));
	char		cursor[32] = "0";
	int64		removed = 0;

	if (keyed)
	{
		const char *argv[2] = {"UNLINK", entry_key(info, keyed)};
		RedisResult *reply = command(2, argv, NULL);

		if (reply && reply->type == REDIS_REPLY_INTEGER)
			removed = reply->integer;
		return removed;
	}
	do
	{
		const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
		RedisResult *reply = command(6, argv, NULL);

		if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
			reply->element[0]->type != REDIS_REPLY_STRING ||
			reply->element[1]->type != REDIS_REPLY_ARRAY)
			break;
		strlcpy(cursor, reply->element[0]->str, sizeof(cursor));
		removed += unlink_page(reply->element[1]);
	} while (strcmp(cursor, "0") != 0);
	return removed;
}

/* ---------------------------------------------------------------- single flight */

static void
sleep_interruptibly(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Compute and store while holding the key's Redis lock, and give it back
 * whatever happens: a failed or cancelled computation must free the key
 * at once on every server, not when the lock expires.
 */
static Datum
compute_holding_lock(RedisFlight *flight, bool *isnull, RedisLock *lock)
{
	Datum		value;

	PG_TRY();
	{
		value = flight->compute_and_store(flight->arg, isnull);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		cachier_redis_unlock(lock);
		RESUME_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();
	cachier_redis_unlock(lock);
	return value;
}

/*
 * One computation per key across servers: the key's Redis lock (SET NX
 * PX, which expires by itself if its holder dies).  Whoever takes it
 * computes and stores; the others poll Redis with a growing pause (1 to
 * 50 ms, interruptible) until the value is there, the lock is free again,
 * or wait_timeout has passed.  When Redis does not answer, compute.
 */
Datum
cachier_redis_single_flight(const FunctionInfo *info, const StringInfo keyed,
							int64 wait_timeout_us, RedisFlight *flight, bool *isnull)
{
	TimestampTz deadline = GetCurrentTimestamp() + wait_timeout_us;
	long		pause_ms = 1;
	bool		waited = false;
	RedisLock	lock;
	Datum		value;

	for (;;)
	{
		int			got = cachier_redis_lock(info, keyed, Max(wait_timeout_us, 1000), &lock);

		if (got > 0)
		{
			/* the server we waited for may have stored it just before */
			if (waited && flight->fresh_value(flight->arg, &value, isnull))
			{
				cachier_redis_unlock(&lock);
				return value;
			}
			return compute_holding_lock(flight, isnull, &lock);
		}
		if (got < 0)
			return flight->compute_and_store(flight->arg, isnull);
		if (!waited)
			flight->waiting(flight->arg);
		waited = true;
		if (GetCurrentTimestamp() >= deadline)
			return flight->gave_up(flight->arg, isnull);
		sleep_interruptibly(pause_ms);
		pause_ms = Min(pause_ms * 2, 50);
		if (flight->fresh_value(flight->arg, &value, isnull))
			return value;
	}
}
