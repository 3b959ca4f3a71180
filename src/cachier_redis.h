/*-------------------------------------------------------------------------
 *
 * cachier_redis.h
 *	  The Redis tier: the connection (redis_client.c) and the cache's
 *	  keys, values and locks in Redis (redis_tier.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHIER_REDIS_H
#define CACHIER_REDIS_H

#include "cachier.h"
#include <hiredis/hiredis.h>

extern char *cachier_redis_url;
extern char *cachier_redis_key_prefix;
extern int	cachier_redis_timeout_ms;
extern char *cachier_redis_namespace;

/*
 * A reply of Redis, copied out of hiredis into palloc'd memory of the
 * caller's context: nothing of the library is left to free.
 */
typedef struct RedisResult
{
	int			type;			/* REDIS_REPLY_STRING, _STATUS, _ERROR, ... */
	char	   *str;			/* string, status, error: len bytes and a NUL */
	size_t		len;
	long long	integer;		/* REDIS_REPLY_INTEGER */
	size_t		elements;		/* REDIS_REPLY_ARRAY */
	struct RedisResult **element;
} RedisResult;

/* redis_client.c */
extern bool cachier_redis_configured(void);
extern RedisResult *cachier_redis_command(int argc, const char **argv, const size_t *lens);

/* redis_tier.c */
typedef struct RedisLock
{
	char	   *key;			/* palloc'd in the caller's context */
	char		token[33];
} RedisLock;

extern bool cachier_redis_get(const FunctionInfo *info, const StringInfo keyed,
							  const TypeCodec *codec, StoredEntry *entry);
extern bool cachier_redis_put(const FunctionInfo *info, const StringInfo keyed,
							  const TypeCodec *codec, bytea *value,
							  TimestampTz created_at, double compute_ms,
							  int64 ttl_us, bool has_epoch, int64 epoch);
extern int	cachier_redis_lock(const FunctionInfo *info, const StringInfo keyed,
							   int64 ttl_us, RedisLock *lock);
extern void cachier_redis_unlock(RedisLock *lock);
extern int64 cachier_redis_clear(const FunctionInfo *info, const StringInfo keyed);

#endif							/* CACHIER_REDIS_H */
