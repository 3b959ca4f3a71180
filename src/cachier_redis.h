/*-------------------------------------------------------------------------
 *
 * cachier_redis.h
 *	  The Redis tier: the connection (redis_client.c) and the cache's
 *	  keys, values and locks in Redis (redis_tier.c); in a build without
 *	  hiredis (make WITH_REDIS=0, CACHIER_NO_REDIS) redis_none.c instead.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHIER_REDIS_H
#define CACHIER_REDIS_H

#include "cachier.h"
#ifndef CACHIER_NO_REDIS
#include <hiredis/hiredis.h>
#endif

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

/*
 * The Redis tier's single flight: one computation per key across servers.
 * The caller supplies what it does; redis_tier.c takes the key's lock,
 * waits, and frees the lock whatever happens.
 */
typedef struct RedisFlight
{
	Datum		(*compute_and_store) (void *arg, bool *isnull);
	bool		(*fresh_value) (void *arg, Datum *value, bool *isnull); /* stored by another */
	void		(*waiting) (void *arg); /* the first wait begins */
	Datum		(*gave_up) (void *arg, bool *isnull);	/* wait_timeout passed */
	void	   *arg;
} RedisFlight;

extern Datum cachier_redis_single_flight(const FunctionInfo *info, const StringInfo keyed,
										 int64 wait_timeout_us, RedisFlight *flight,
										 bool *isnull);

#endif							/* CACHIER_REDIS_H */
