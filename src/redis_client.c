/*-------------------------------------------------------------------------
 *
 * redis_client.c
 *	  The backend's connection to Redis (hiredis, non-blocking): connect
 *	  and command deadlines (cachier.redis_timeout), waits that answer
 *	  cancel requests, and a failure policy that never fails the query.
 *
 * Rules:
 *	- Every wait is WaitLatchOrSocket with the deadline left, followed by
 *	  CHECK_FOR_INTERRUPTS; if that throws, the connection (whose protocol
 *	  state is then unknown) is freed before the error goes on.
 *	- Any failure (refused, timed out, garbage) closes the connection,
 *	  gives a WARNING at most every WARNING_EVERY, and makes Redis
 *	  "down" for RETRY_AFTER: calls then skip Redis at no cost, and the
 *	  next call after that reconnects by itself.
 *	- Replies are hiredis (malloc) objects: callers copy what they need
 *	  and free them with freeReplyObject; error text is copied before the
 *	  library's objects are freed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "cachier_redis.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define RETRY_AFTER		(USECS_PER_SEC)
#define WARNING_EVERY	(10 * USECS_PER_SEC)

char	   *cachier_redis_url = NULL;
char	   *cachier_redis_key_prefix = NULL;
int			cachier_redis_timeout_ms = 200;

static redisContext *conn = NULL;
static char *conn_url = NULL;		/* the URL that conn and down_until are for */
static TimestampTz down_until = 0;
static TimestampTz last_warning = 0;

typedef struct RedisTarget
{
	char	   *host;			/* NULL for a unix socket */
	int			port;
	char	   *path;
	char	   *user;
	char	   *password;
	int			db;
} RedisTarget;

static void
disconnect(void)
{
	if (conn)
		redisFree(conn);
	conn = NULL;
}

/* Give up on Redis for a while, saying why (at most every WARNING_EVERY). */
static void
fail(const char *what)
{
	TimestampTz now = GetCurrentTimestamp();

	disconnect();
	down_until = now + RETRY_AFTER;
	if (now - last_warning >= WARNING_EVERY)
	{
		last_warning = now;
		ereport(WARNING,
				(errmsg("cachier: Redis is unavailable: %s", what),
				 errdetail("Calls use the table or compute until it answers again.")));
	}
}

/* redis://[user:password@]host[:port][/db] or an absolute socket path */
static bool
parse_url(const char *url, RedisTarget *t)
{
	char	   *s = pstrdup(url);
	char	   *at;
	char	   *slash;
	char	   *colon;

	memset(t, 0, sizeof(*t));
	t->port = 6379;
	if (s[0] == '/')
	{
		t->path = s;
		return true;
	}
	if (strncmp(s, "redis://", 8) != 0)
		return false;
	s += 8;
	if ((at = strrchr(s, '@')) != NULL)
	{
		*at = '\0';
		colon = strchr(s, ':');
		if (colon)
		{
			*colon = '\0';
			t->user = s[0] ? s : NULL;
			t->password = colon + 1;
		}
		else
			t->password = s;
		s = at + 1;
	}
	if ((slash = strchr(s, '/')) != NULL)
	{
		*slash = '\0';
		t->db = slash[1] ? atoi(slash + 1) : 0;
	}
	if ((colon = strrchr(s, ':')) != NULL)
	{
		*colon = '\0';
		t->port = atoi(colon + 1);
	}
	t->host = s;
	return t->host[0] != '\0' && t->port > 0;
}

/* Wait until the socket is ready or the deadline passes; false on timeout. */
static bool
wait_socket(int events, TimestampTz deadline)
{
	for (;;)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		int			rc;

		if (left <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch, events | WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   conn->fd, left, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			PG_TRY();
			{
				CHECK_FOR_INTERRUPTS();
			}
			PG_CATCH();
			{
				disconnect();
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
		if (rc & events)
			return true;
	}
}

/* Send one command and read its reply before the deadline; NULL on failure. */
static redisReply *
round_trip(int argc, const char **argv, const size_t *lens, TimestampTz deadline)
{
	void	   *reply = NULL;
	int			done = 0;

	if (redisAppendCommandArgv(conn, argc, argv, lens) != REDIS_OK)
		return NULL;
	while (!done)
	{
		if (redisBufferWrite(conn, &done) != REDIS_OK)
			return NULL;
		if (!done && !wait_socket(WL_SOCKET_WRITEABLE, deadline))
			return NULL;
	}
	for (;;)
	{
		if (redisGetReplyFromReader(conn, &reply) != REDIS_OK)
			return NULL;
		if (reply)
			return (redisReply *) reply;
		if (!wait_socket(WL_SOCKET_READABLE, deadline) ||
			redisBufferRead(conn) != REDIS_OK)
			return NULL;
	}
}

/* A command whose reply must not be an error (AUTH, SELECT). */
static bool
setup_command(int argc, const char **argv, TimestampTz deadline)
{
	size_t		lens[3];
	redisReply *reply;
	bool		ok;
	int			i;

	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	reply = round_trip(argc, argv, lens, deadline);
	ok = reply && reply->type != REDIS_REPLY_ERROR;
	if (reply)
		freeReplyObject(reply);
	return ok;
}

static bool
connect_before(TimestampTz deadline)
{
	RedisTarget t;
	int			err = 0;
	socklen_t	errlen = sizeof(err);
	char		db[16];

	if (!parse_url(cachier_redis_url, &t))
	{
		fail(psprintf("cachier.redis_url \"%s\" is not redis://[user:password@]host[:port][/db] or a socket path",
					  cachier_redis_url));
		return false;
	}
	conn = t.path ? redisConnectUnixNonBlock(t.path) : redisConnectNonBlock(t.host, t.port);
	if (conn == NULL || conn->err)
	{
		fail(conn ? pstrdup(conn->errstr) : "out of memory");
		return false;
	}
	if (!wait_socket(WL_SOCKET_WRITEABLE, deadline) ||
		getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0)
	{
		fail(err ? strerror(err) : "connection timed out");
		return false;
	}
	if (t.password &&
		!(t.user ? setup_command(3, (const char *[]) {"AUTH", t.user, t.password}, deadline) :
		  setup_command(2, (const char *[]) {"AUTH", t.password}, deadline)))
	{
		fail("authentication failed");
		return false;
	}
	snprintf(db, sizeof(db), "%d", t.db);
	if (t.db != 0 && !setup_command(2, (const char *[]) {"SELECT", db}, deadline))
	{
		fail("SELECT of the database failed");
		return false;
	}
	return true;
}

/* Whether Redis is configured and not known to be down. */
bool
cachier_redis_configured(void)
{
	return cachier_redis_url != NULL && cachier_redis_url[0] != '\0';
}

/*
 * Run one command.  The reply or NULL when Redis is not configured, down,
 * slow or answering garbage; the caller goes on without it.  The only
 * error reply passed on is WRONGTYPE (a key holding another type).
 */
redisReply *
cachier_redis_command(int argc, const char **argv, const size_t *lens)
{
	TimestampTz deadline;
	redisReply *reply;

	if (!cachier_redis_configured())
		return NULL;
	if (conn_url == NULL || strcmp(conn_url, cachier_redis_url) != 0)
	{
		/* another server: forget the connection and the last failure */
		disconnect();
		down_until = 0;
		if (conn_url)
			free(conn_url);
		conn_url = strdup(cachier_redis_url);
	}
	if (GetCurrentTimestamp() < down_until)
		return NULL;
	deadline = GetCurrentTimestamp() + (int64) cachier_redis_timeout_ms * 1000;
	if (conn == NULL && !connect_before(deadline))
		return NULL;
	reply = round_trip(argc, argv, lens, deadline);
	if (reply == NULL)
	{
		fail(conn && conn->err ? pstrdup(conn->errstr) : "no answer within cachier.redis_timeout");
		return NULL;
	}
	/* a key of another type is the key's problem, not Redis's */
	if (reply->type == REDIS_REPLY_ERROR &&
		strncmp(reply->str, "WRONGTYPE", 9) != 0)
	{
		char	   *msg = pnstrdup(reply->str, reply->len);

		freeReplyObject(reply);
		fail(psprintf("error reply: %s", msg));
		return NULL;
	}
	return reply;
}
