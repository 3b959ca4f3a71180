/*-------------------------------------------------------------------------
 *
 * redis_none.c
 *	  The Redis tier of a build without hiredis (make WITH_REDIS=0).
 *
 * It replaces redis_client.c and redis_tier.c: the settings still exist
 * (so a postgresql.conf written for a full build still loads), but the
 * tier is never configured, so cached_call.c never reaches the other
 * functions.  cachier_configure refuses storage 'redis' and 'both' in such
 * a build (settings.c, cachier_check_storage).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_redis.h"


bool
cachier_redis_configured(void)
{
	return false;
}

static void
no_redis(void)
{
	elog(ERROR, "cachier was built without the Redis tier");
}

RedisResult *
cachier_redis_command(int argc, const char **argv, const size_t *lens)
{
	no_redis();
	return NULL;
}

bool
cachier_redis_get(const FunctionInfo *info, const StringInfo keyed,
				  const TypeCodec *codec, StoredEntry *entry)
{
	return false;
}

bool
cachier_redis_put(const FunctionInfo *info, const StringInfo keyed,
				  const TypeCodec *codec, bytea *value,
				  TimestampTz created_at, double compute_ms, int64 ttl_us,
				  bool has_epoch, int64 epoch)
{
	return false;
}

int
cachier_redis_lock(const FunctionInfo *info, const StringInfo keyed,
				   int64 ttl_us, RedisLock *lock)
{
	no_redis();
	return 0;
}

void
cachier_redis_unlock(RedisLock *lock)
{
}

int64
cachier_redis_clear(const FunctionInfo *info, const StringInfo keyed)
{
	return 0;
}

/* Without Redis there is no other server to share a computation with. */
Datum
cachier_redis_single_flight(const FunctionInfo *info, const StringInfo keyed,
							int64 wait_timeout_us, RedisFlight *flight, bool *isnull)
{
	return flight->compute_and_store(flight->arg, isnull);
}
