/* history-redis - the Redis history store (redis:...); see history-store.h. */
#include "config.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "history-store.h"

#define KEY_PREFIX "ms:h:"

/*
 * One update, atomic on the server: history_record_add() in Lua, the TTL
 * renewed. KEYS[1] the key; ARGV now, window, ttl, accepted, refused.
 */
static const char update_script[] =
        "local k=KEYS[1] local now=tonumber(ARGV[1]) local win=tonumber(ARGV[2]) "
        "local ttl=tonumber(ARGV[3]) "
        "local h=redis.call('HMGET',k,'a','r','f','l','w') "
        "local a=tonumber(h[1]) or 0 local r=tonumber(h[2]) or 0 "
        "local f=tonumber(h[3]) or now local l=tonumber(h[4]) or 0 "
        "local w=tonumber(h[5]) or now "
        "if l==0 then f=now w=now end "
        "if win>0 and now>w and now-w>=win then a=math.floor(a/2) r=math.floor(r/2) w=now end "
        "a=a+tonumber(ARGV[4]) r=r+tonumber(ARGV[5]) if now>l then l=now end "
        "if f>l then f=l end if w>l then w=l end "
        "redis.call('HSET',k,'a',a,'r',r,'f',f,'l',l,'w',w) redis.call('EXPIRE',k,ttl) "
        "return {'a',tostring(a),'r',tostring(r),'f',tostring(f),'l',tostring(l),"
        "'w',tostring(w)}";

typedef struct rstore {
	history_store base;
	redisContext *c; /* NULL: connect at the next call */
	char *host;      /* NULL for a unix socket */
	char *path;
	int port;
	long long timeout_ms;
} rstore;

static struct timeval
tv_of(long long ms)
{
	return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
}

static void
r_error(rstore *r, strbuf *why, const char *what)
{
	if (r->host != NULL)
		strbuf_printf(why, "redis %s:%d: ", r->host, r->port);
	else
		strbuf_printf(why, "redis unix:%s: ", r->path);
	strbuf_puts(why, what);
}

static void
drop(rstore *r)
{
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
}

static bool
connected(rstore *r, strbuf *why)
{
	struct timeval tv = tv_of(r->timeout_ms);

	if (r->c != NULL)
		return true;
	r->c = r->host != NULL ? redisConnectWithTimeout(r->host, r->port, tv)
	                       : redisConnectUnixWithTimeout(r->path, tv);
	if (r->c == NULL || r->c->err != 0) {
		r_error(r, why, r->c != NULL ? r->c->errstr : "cannot connect");
		drop(r);
		return false;
	}
	if (redisSetTimeout(r->c, tv) != REDIS_OK) {
		r_error(r, why, "cannot set the timeout");
		drop(r);
		return false;
	}
	return true;
}

/* The next reply of a pipeline; NULL after an error (the connection is dropped). */
static redisReply *
next_reply(rstore *r, strbuf *why)
{
	void *reply = NULL;

	if (redisGetReply(r->c, &reply) != REDIS_OK || reply == NULL) {
		r_error(r, why, r->c->errstr[0] != '\0' ? r->c->errstr : "no reply");
		drop(r);
		return NULL;
	}
	return reply;
}

/* A hash as an array of field, value: the record; false with why. */
static bool
reply_record(rstore *r, const redisReply *rep, history_record *out, strbuf *why)
{
	const char **f, **v;
	size_t *fl, *vl, n;
	bool ok;

	if (rep->type == REDIS_REPLY_ERROR) {
		r_error(r, why, rep->str);
		return false;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
		r_error(r, why, "unexpected reply type");
		return false;
	}
	n = rep->elements / 2;
	f = ms_xcalloc(n + 1, sizeof *f);
	v = ms_xcalloc(n + 1, sizeof *v);
	fl = ms_xcalloc(n + 1, sizeof *fl);
	vl = ms_xcalloc(n + 1, sizeof *vl);
	for (size_t i = 0; i < n; i++) {
		const redisReply *a = rep->element[2 * i], *b = rep->element[2 * i + 1];

		if (a->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_STRING) {
			f[i] = v[i] = "";
			continue;
		}
		f[i] = a->str, fl[i] = a->len;
		v[i] = b->str, vl[i] = b->len;
	}
	ok = history_record_parse_fields(f, fl, v, vl, n, out, why);
	free(f), free(v), free(fl), free(vl);
	return ok;
}

static int
r_get(history_store *st, const char *key, history_record *out, strbuf *why)
{
	rstore *r = (rstore *)st;
	redisReply *rep;
	int rc;

	if (!connected(r, why))
		return -1;
	if ((rep = redisCommand(r->c, "HGETALL " KEY_PREFIX "%s", key)) == NULL) {
		r_error(r, why, r->c->errstr);
		drop(r);
		return -1;
	}
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 0)
		rc = 0;
	else
		rc = reply_record(r, rep, out, why) ? 1 : -1;
	freeReplyObject(rep);
	return rc;
}

static bool
r_update(history_store *st, const char *const *keys, const history_delta *d, size_t n,
         uint64_t now, const history_store_opts *o, history_record *out, strbuf *why)
{
	rstore *r = (rstore *)st;
	bool ok = true;

	if (!connected(r, why))
		return false;
	for (size_t i = 0; i < n; i++)
		redisAppendCommand(r->c, "EVAL %s 1 " KEY_PREFIX "%s %llu %llu %llu %u %u",
		                   update_script, keys[i], (unsigned long long)now,
		                   (unsigned long long)o->window_s,
		                   (unsigned long long)o->max_age, d[i].accepted, d[i].refused);
	for (size_t i = 0; i < n; i++) {
		redisReply *rep = next_reply(r, why);

		if (rep == NULL)
			return false;
		if (!reply_record(r, rep, &out[i], why)) {
			memset(&out[i], 0, sizeof out[i]);
			ok = false;
		}
		freeReplyObject(rep);
	}
	return ok;
}

static bool
r_put(history_store *st, const char *key, const history_record *rec,
      const history_store_opts *o, strbuf *why)
{
	rstore *r = (rstore *)st;
	bool ok = true;

	if (!connected(r, why))
		return false;
	redisAppendCommand(r->c, "DEL " KEY_PREFIX "%s", key);
	redisAppendCommand(r->c, "HSET " KEY_PREFIX "%s a %llu r %llu f %llu l %llu w %llu", key,
	                   (unsigned long long)rec->accepted, (unsigned long long)rec->refused,
	                   (unsigned long long)rec->first_seen,
	                   (unsigned long long)rec->last_seen,
	                   (unsigned long long)rec->window_start);
	redisAppendCommand(r->c, "EXPIRE " KEY_PREFIX "%s %llu", key,
	                   (unsigned long long)o->max_age);
	for (int i = 0; i < 3; i++) {
		redisReply *rep = next_reply(r, why);

		if (rep == NULL)
			return false;
		if (rep->type == REDIS_REPLY_ERROR) {
			r_error(r, why, rep->str);
			ok = false;
		}
		freeReplyObject(rep);
	}
	return ok;
}

static int
r_del(history_store *st, const char *key, strbuf *why)
{
	rstore *r = (rstore *)st;
	redisReply *rep;
	int rc;

	if (!connected(r, why))
		return -1;
	if ((rep = redisCommand(r->c, "DEL " KEY_PREFIX "%s", key)) == NULL) {
		r_error(r, why, r->c->errstr);
		drop(r);
		return -1;
	}
	rc = rep->type == REDIS_REPLY_INTEGER ? rep->integer > 0 : -1;
	if (rc < 0)
		r_error(r, why, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
	freeReplyObject(rep);
	return rc;
}

static bool
r_each(history_store *st, history_each_fn fn, void *ctx, strbuf *why)
{
	rstore *r = (rstore *)st;
	char cursor[32] = "0";

	if (!connected(r, why))
		return false;
	do {
		redisReply *rep = redisCommand(r->c, "SCAN %s MATCH " KEY_PREFIX "* COUNT 1000",
		                               cursor);
		bool go = true;

		if (rep == NULL) {
			r_error(r, why, r->c->errstr);
			drop(r);
			return false;
		}
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			r_error(r, why, "unexpected SCAN reply");
			freeReplyObject(rep);
			return false;
		}
		snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
		for (size_t i = 0; go && i < rep->element[1]->elements; i++) {
			const redisReply *k = rep->element[1]->element[i];
			const char *key;
			history_record rec;
			strbuf bad = STRBUF_INIT;

			if (k->type != REDIS_REPLY_STRING || k->len <= strlen(KEY_PREFIX))
				continue;
			key = k->str + strlen(KEY_PREFIX);
			if (r_get(st, key, &rec, &bad) == 1)
				go = fn(ctx, key, &rec);
			strbuf_free(&bad);
		}
		freeReplyObject(rep);
		if (!go)
			break;
	} while (strcmp(cursor, "0") != 0);
	return true;
}

static long
r_sweep(history_store *st, uint64_t now, const history_store_opts *o, strbuf *why)
{
	(void)st, (void)now, (void)o, (void)why;
	return 0; /* the keys' TTLs */
}

static void
r_close(history_store *st)
{
	rstore *r = (rstore *)st;

	drop(r);
	free(r->host);
	free(r->path);
	free(r->base.spec);
	free(r);
}

static const history_store_ops redis_ops = {
        "redis", false, r_get, r_update, r_put, r_del, r_each, r_sweep, r_close,
};

history_store *
history_redis_open(const char *spec, const char *target, const history_store_opts *o,
                   strbuf *why)
{
	rstore *r = ms_xcalloc(1, sizeof *r);
	const char *colon;
	char *end;
	long port;

	r->base.ops = &redis_ops;
	r->base.spec = ms_xstrdup(spec);
	r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1000;
	if (strncmp(target, "unix:", 5) == 0 || target[0] == '/') {
		r->path = ms_xstrdup(target[0] == '/' ? target : target + 5);
		return &r->base;
	}
	colon = strrchr(target, ':');
	if (colon == NULL || colon == target || colon[1] == '\0' ||
	    (port = strtol(colon + 1, &end, 10), *end != '\0') || port < 1 || port > 65535) {
		strbuf_printf(why, "'%s': expected redis:HOST:PORT or redis:unix:/PATH", spec);
		r_close(&r->base);
		return NULL;
	}
	r->port = (int)port;
	if (target[0] == '[' && colon[-1] == ']')
		r->host = ms_xstrndup(target + 1, (size_t)(colon - target - 2));
	else
		r->host = ms_xstrndup(target, (size_t)(colon - target));
	return &r->base;
}
