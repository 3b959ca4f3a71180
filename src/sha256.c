/*-------------------------------------------------------------------------
 *
 * sha256.c
 *	  SHA-256, for the digest of a function's identity (function_info.c)
 *	  and for the Redis tier's keys.  A file of its own so that the files
 *	  that need a digest depend on nothing else.  No state, no locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "common/cryptohash.h"
#include "common/sha2.h"

void
cachier_sha256(const uint8 *data, size_t len, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, data, len) < 0 ||
		pg_cryptohash_final(ctx, out, CACHIER_DIGEST_LEN) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}
