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
 *	- No hiredis object outlives the function that got it, and nothing
 *	  that can throw (ereport, palloc) runs while one is held: a reply is
 *	  copied with allocations that return NULL instead of throwing, error
 *	  text into a local buffer, the library's object is freed, and only
 *	  then is anything reported.  Callers get palloc'd RedisResults.
 *	- Messages name the server by host and port (or socket path) only:
 *	  cachier.redis_url may hold a password, so neither the URL nor its
 *	  user name or password is ever shown, to anyone.  A URL that does not
 *	  parse is not shown at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <sys/socket.h>

#include "cachier_redis.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define RETRY_AFTER		(USECS_PER_SEC)
#define WARNING_EVERY	(10 * USECS_PER_SEC)
#define ERRTEXT_LEN		256


static redisContext *conn = NULL;
static char *conn_url = NULL;		/* the URL that conn and down_until are for */
static char conn_where[1100];		/* host:port or socket path of conn_url */
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

/* Whether it is time for another WARNING; Redis is down for a while anyway. */
static bool
going_down(void)
{
	TimestampTz now = GetCurrentTimestamp();

	disconnect();
	down_until = now + RETRY_AFTER;
	if (now - last_warning < WARNING_EVERY)
		return false;
	last_warning = now;
	return true;
}

/*
 * Give up on Redis for a while, saying why (at most every WARNING_EVERY):
 * detail is the reason, the library's or the server's text included (made
 * a sentence: the libraries' texts have no period).
 */
static void
fail(int sqlerrcode, const char *detail)
{
	size_t		n = strlen(detail);

	if (going_down())
		ereport(WARNING,
				(errcode(sqlerrcode),
				 errmsg("Redis at %s is unavailable", conn_where),
				 errdetail("%s%s", detail, n > 0 && detail[n - 1] == '.' ? "" : "."),
				 errhint("Calls use the table or compute until it answers again.")));
}

/* Digits only, in [min, max]. */
static bool
parse_number(const char *s, int min, int max, int *out)
{
	long		n = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++)
	{
		if (!isdigit((unsigned char) *s) || (n = n * 10 + (*s - '0')) > max)
			return false;
	}
	*out = (int) n;
	return n >= min;
}

/* A host name, an IPv4 address or (in brackets, removed here) an IPv6 one. */
static bool
parse_host(char *s, char **host)
{
	size_t		n = strlen(s);

	if (s[0] == '[' && n > 2 && s[n - 1] == ']')
	{
		s[n - 1] = '\0';
		*host = s + 1;
		return strspn(*host, "0123456789abcdefABCDEF:.") == n - 2;
	}
	*host = s;
	return n > 0 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/*
 * redis://[[user]:password@]host[:port][/db] or an absolute socket path
 * (of letters, digits and "/._~+-", not starting with "//").  Strict, so
 * that a mistyped URL is refused instead of showing a piece of a password
 * as a host name or a path.
 */
static bool
parse_url(const char *url, RedisTarget *t)
{
	char	   *s = pstrdup(url);
	char	   *at;
	char	   *slash;
	char	   *colon;
	char	   *bracket;

	memset(t, 0, sizeof(*t));
	t->port = 6379;
	if (s[0] == '/')
	{
		t->path = s;
		return s[1] != '/' &&
			strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._~+-") == strlen(s);
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
		if (slash[1] && !parse_number(slash + 1, 0, 1000000, &t->db))
			return false;
	}
	bracket = strrchr(s, ']');
	if ((colon = strrchr(s, ':')) != NULL && (bracket == NULL || colon > bracket))
	{
		*colon = '\0';
		if (!parse_number(colon + 1, 1, 65535, &t->port))
			return false;
	}
	return parse_host(s, &t->host);
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

/*
 * Send one command and read its reply before the deadline; NULL on
 * failure.  The reply is the caller's to free, before anything can throw.
 */
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

/* Copy up to ERRTEXT_LEN - 1 bytes of a text that is not NUL-terminated. */
static void
copy_text(char *dst, const char *src, size_t len)
{
	len = Min(len, ERRTEXT_LEN - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* The text of a failed round trip, copied from the connection. */
static void
round_trip_error(char *errtext)
{
	if (conn && conn->err)
		copy_text(errtext, conn->errstr, strlen(conn->errstr));
	else
		strlcpy(errtext, "It did not answer within cachier.redis_timeout.", ERRTEXT_LEN);
}

/*
 * A command whose reply must not be an error (AUTH, SELECT); false with
 * the reason in errtext if it fails.
 */
static bool
setup_command(int argc, const char **argv, TimestampTz deadline, char *errtext)
{
	size_t		lens[3];
	redisReply *reply;
	bool		ok;
	int			i;

	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	reply = round_trip(argc, argv, lens, deadline);
	if (reply == NULL)
	{
		round_trip_error(errtext);
		return false;
	}
	ok = reply->type != REDIS_REPLY_ERROR;
	if (!ok)
		copy_text(errtext, reply->str, reply->len);
	freeReplyObject(reply);
	return ok;
}

/* Remember which server conn_url names, for messages: host:port or path. */
static void
describe(const RedisTarget *t)
{
	if (t->path)
		strlcpy(conn_where, t->path, sizeof(conn_where));
	else if (strchr(t->host, ':'))
		snprintf(conn_where, sizeof(conn_where), "[%s]:%d", t->host, t->port);
	else
		snprintf(conn_where, sizeof(conn_where), "%s:%d", t->host, t->port);
}

/* A URL that does not parse: say so without showing any of it. */
static void
fail_malformed(void)
{
	if (going_down())
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cachier.redis_url is not a valid Redis address"),
				 errdetail("It must be redis://[user:password@]host[:port][/db] or an absolute unix socket path; it is not shown because it may contain a password."),
				 errhint("Calls use the table or compute until it is corrected.")));
}

/* Open the socket and wait until it is connected; false if it failed. */
static bool
open_socket(const RedisTarget *t, TimestampTz deadline)
{
	char		errtext[ERRTEXT_LEN];
	int			err = 0;
	socklen_t	errlen = sizeof(err);

	conn = t->path ? redisConnectUnixNonBlock(t->path) : redisConnectNonBlock(t->host, t->port);
	if (conn == NULL || conn->err)
	{
		if (conn)
			copy_text(errtext, conn->errstr, strlen(conn->errstr));
		else
			strlcpy(errtext, "out of memory", ERRTEXT_LEN);
		fail(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, errtext);
		return false;
	}
	if (!wait_socket(WL_SOCKET_WRITEABLE, deadline))
	{
		fail(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
			 "It did not accept the connection within cachier.redis_timeout.");
		return false;
	}
	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0)
	{
		fail(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
			 err ? strerror(err) : strerror(errno));
		return false;
	}
	return true;
}

static bool
connect_before(TimestampTz deadline)
{
	RedisTarget t;
	char		errtext[ERRTEXT_LEN];
	char		db[16];

	if (!parse_url(cachier_redis_url, &t))
	{
		strlcpy(conn_where, "(an invalid cachier.redis_url)", sizeof(conn_where));
		fail_malformed();
		return false;
	}
	describe(&t);
	if (!open_socket(&t, deadline))
		return false;
	if (t.password &&
		!(t.user ? setup_command(3, (const char *[]) {"AUTH", t.user, t.password}, deadline, errtext) :
		  setup_command(2, (const char *[]) {"AUTH", t.password}, deadline, errtext)))
	{
		fail(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
			 psprintf("Authentication failed: %s", errtext));
		return false;
	}
	snprintf(db, sizeof(db), "%d", t.db);
	if (t.db != 0 && !setup_command(2, (const char *[]) {"SELECT", db}, deadline, errtext))
	{
		fail(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
			 psprintf("SELECT of database %d failed: %s", t.db, errtext));
		return false;
	}
	return true;
}

/* An allocation that returns NULL instead of throwing. */
static void *
alloc_or_null(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/*
 * Copy a hiredis reply into palloc'd memory without throwing (NULL if
 * memory ran out), so that the reply can be freed before anything else.
 */
static RedisResult *
copy_reply(const redisReply *r)
{
	RedisResult *out = alloc_or_null(sizeof(RedisResult));
	size_t		i;

	if (out == NULL)
		return NULL;
	memset(out, 0, sizeof(*out));
	out->type = r->type;
	out->integer = r->integer;
	if (r->str)
	{
		if ((out->str = alloc_or_null(r->len + 1)) == NULL)
			return NULL;
		memcpy(out->str, r->str, r->len);
		out->str[r->len] = '\0';
		out->len = r->len;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
	{
		if ((out->element = alloc_or_null(sizeof(RedisResult *) * r->elements)) == NULL)
			return NULL;
		for (i = 0; i < r->elements; i++)
		{
			if ((out->element[i] = copy_reply(r->element[i])) == NULL)
				return NULL;
		}
		out->elements = r->elements;
	}
	return out;
}

/* Whether Redis is configured and not known to be down. */
bool
cachier_redis_configured(void)
{
	return cachier_redis_url != NULL && cachier_redis_url[0] != '\0';
}

/* A new cachier.redis_url: forget the connection and the last failure. */
static void
follow_url(void)
{
	if (conn_url != NULL && strcmp(conn_url, cachier_redis_url) == 0)
		return;
	disconnect();
	down_until = 0;
	if (conn_url)
		free(conn_url);
	conn_url = strdup(cachier_redis_url);
}

/*
 * Run one command.  The reply (palloc'd, see RedisResult) or NULL when
 * Redis is not configured, down, slow or answering garbage; the caller
 * goes on without it.  The only error reply passed on is WRONGTYPE (a key
 * holding another type).
 */
RedisResult *
cachier_redis_command(int argc, const char **argv, const size_t *lens)
{
	TimestampTz deadline;
	redisReply *reply;
	RedisResult *result;
	char		errtext[ERRTEXT_LEN];

	if (!cachier_redis_configured())
		return NULL;
	follow_url();
	if (GetCurrentTimestamp() < down_until)
		return NULL;
	deadline = GetCurrentTimestamp() + (int64) cachier_redis_timeout_ms * 1000;
	if (conn == NULL && !connect_before(deadline))
		return NULL;
	reply = round_trip(argc, argv, lens, deadline);
	if (reply == NULL)
	{
		round_trip_error(errtext);
		fail(ERRCODE_CONNECTION_FAILURE, errtext);
		return NULL;
	}
	/* a key of another type is the key's problem, not Redis's */
	if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WRONGTYPE", 9) != 0)
	{
		copy_text(errtext, reply->str, reply->len);
		freeReplyObject(reply);
		fail(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, psprintf("It answered with an error: %s", errtext));
		return NULL;
	}
	result = copy_reply(reply);
	freeReplyObject(reply);
	if (result == NULL)
		fail(ERRCODE_OUT_OF_MEMORY, "Its reply did not fit in memory.");
	return result;
}
