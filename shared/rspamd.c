/* rspamd - a client of rspamd's HTTP protocol; see rspamd.h. */
#include "config.h"

#include "rspamd.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "sockspec.h"

/* Depth of a reply: rspamd's is 4 (reply, symbols, symbol, options). */
#define REPLY_DEPTH 16
/* The longest wait in one poll, and the longest timeout given to curl: a
   deadline of "no limit" (LLONG_MAX) fits neither an int nor curl's
   arithmetic; the loop keeps the real deadline. */
#define POLL_MAX_MS 1000
#define CURL_TIMEOUT_MAX_MS (24LL * 3600 * 1000)
/* Bytes of rspamd's error text quoted in why. */
#define ERROR_TEXT_MAX 200

/* ---- the reply ---- */

void
rspamd_reply_free(rspamd_reply *r)
{
	for (size_t i = 0; i < r->nsymbols; i++)
		free(r->symbols[i]);
	free(r->symbols);
	memset(r, 0, sizeof *r);
	r->score = r->required = NAN;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
rspamd_reply_has_symbol(const rspamd_reply *r, const char *name)
{
	if (r->nsymbols == 0)
		return false;
	return bsearch(&name, r->symbols, r->nsymbols, sizeof *r->symbols, cmp_name) != NULL;
}

/* Printable ASCII, quoted into why: rspamd's text is not ours. */
static void
put_quoted(strbuf *why, const char *s, size_t n)
{
	size_t i;

	strbuf_putc(why, '\'');
	for (i = 0; i < n && i < ERROR_TEXT_MAX; i++)
		strbuf_putc(why, s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?');
	if (i < n)
		strbuf_puts(why, "...");
	strbuf_putc(why, '\'');
}

static bool
refuse(strbuf *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
refuse(strbuf *why, const char *fmt, ...)
{
	va_list ap;

	strbuf_puts(why, "rspamd reply refused: ");
	va_start(ap, fmt);
	strbuf_vprintf(why, fmt, ap);
	va_end(ap);
	return false;
}

/* A number, or for required_score also null (rspamd without a reject action). */
static bool
get_number(json_object *top, const char *key, bool null_ok, double *out, strbuf *why)
{
	json_object *v;
	bool found = json_object_object_get_ex(top, key, &v);

	if (!found || v == NULL) { /* json-c's null is NULL */
		if (null_ok) {
			*out = NAN;
			return true;
		}
		return refuse(why, found ? "%s is not a number" : "%s is missing", key);
	}
	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		return refuse(why, "%s is not a number", key);
	*out = json_object_get_double(v);
	if (!isfinite(*out))
		return refuse(why, "%s is not a finite number", key);
	return true;
}

/* A lower-case word of letters and single spaces: it reaches headers and templates. */
static bool
get_action(json_object *top, char *out, strbuf *why)
{
	json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(top, "action", &v) || !json_object_is_type(v, json_type_string))
		return refuse(why, "action is missing or not a string");
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= RSPAMD_ACTION_MAX)
		return refuse(why, "action is empty or longer than %d bytes", RSPAMD_ACTION_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		bool letter = s[i] >= 'a' && s[i] <= 'z';
		bool space = s[i] == ' ' && i > 0 && i + 1 < n && s[i - 1] != ' ';

		if (!letter && !space) {
			refuse(why, "action ");
			put_quoted(why, s, n);
			strbuf_puts(why, " is not words of lower-case letters");
			return false;
		}
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static bool
symbol_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > RSPAMD_SYMBOL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f)
			return false;
	return true;
}

/* The names of "symbols" (an object keyed by name), at most RSPAMD_SYMBOLS_MAX, sorted. */
static bool
get_symbols(json_object *top, rspamd_reply *out, strbuf *why)
{
	json_object *syms;
	size_t n, cap, kept;

	if (!json_object_object_get_ex(top, "symbols", &syms) || syms == NULL)
		return true;
	if (!json_object_is_type(syms, json_type_object))
		return refuse(why, "symbols is not an object");
	n = (size_t)json_object_object_length(syms);
	cap = n < RSPAMD_SYMBOLS_MAX ? n : RSPAMD_SYMBOLS_MAX;
	out->symbols = ms_xcalloc(cap ? cap : 1, sizeof *out->symbols);
	json_object_object_foreach(syms, key, val) {
		(void)val;
		if (out->nsymbols == cap || !symbol_name_ok(key)) {
			out->symbols_dropped++;
			continue;
		}
		out->symbols[out->nsymbols++] = ms_xstrdup(key);
	}
	qsort(out->symbols, out->nsymbols, sizeof *out->symbols, cmp_name);
	/* json-c keeps one value per key; a duplicate name is dropped all the same. */
	kept = 0;
	for (size_t i = 0; i < out->nsymbols; i++) {
		if (kept > 0 && strcmp(out->symbols[kept - 1], out->symbols[i]) == 0) {
			free(out->symbols[i]);
			out->symbols_dropped++;
			continue;
		}
		out->symbols[kept++] = out->symbols[i];
	}
	out->nsymbols = kept;
	return true;
}

/* {"error": "..."}: rspamd refused the request; its text, quoted, in why. */
static bool
error_text(json_object *top, strbuf *why)
{
	json_object *v;

	if (!json_object_is_type(top, json_type_object) || !json_object_object_get_ex(top, "error", &v))
		return false;
	if (json_object_is_type(v, json_type_string))
		put_quoted(why, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	else
		strbuf_puts(why, "(not a string)");
	return true;
}

static json_object *
parse_json(const char *json, size_t len, strbuf *why)
{
	struct json_tokener *tok;
	json_object *top;
	enum json_tokener_error err;
	size_t end;

	if (len > RSPAMD_REPLY_MAX) {
		refuse(why, "longer than %d bytes", RSPAMD_REPLY_MAX);
		return NULL;
	}
	/* JSON text has no NUL byte, and json-c would stop at one. */
	if (memchr(json, '\0', len) != NULL) {
		refuse(why, "a NUL byte");
		return NULL;
	}
	tok = json_tokener_new_ex(REPLY_DEPTH);
	if (tok == NULL)
		ms_panic("json_tokener_new_ex: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	top = json_tokener_parse_ex(tok, json, (int)len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (top == NULL || err != json_tokener_success) {
		refuse(why, "not JSON: %s at byte %zu",
		       err == json_tokener_continue ? "it ends too soon" : json_tokener_error_desc(err), end);
		json_object_put(top);
		top = NULL;
	} else if (end < len) {
		refuse(why, "bytes after the JSON value at byte %zu", end);
		json_object_put(top);
		top = NULL;
	}
	json_tokener_free(tok);
	return top;
}

bool
rspamd_reply_parse(const char *json, size_t len, rspamd_reply *out, strbuf *why)
{
	json_object *top;
	bool ok;

	memset(out, 0, sizeof *out);
	out->score = out->required = NAN;
	top = parse_json(json, len, why);
	if (top == NULL)
		return false;
	if (!json_object_is_type(top, json_type_object))
		ok = refuse(why, "not a JSON object");
	else if (json_object_object_get_ex(top, "error", NULL)) {
		strbuf_puts(why, "rspamd answered an error: ");
		(void)error_text(top, why);
		ok = false;
	}
	else
		ok = get_action(top, out->action, why) &&
		     get_number(top, "score", false, &out->score, why) &&
		     get_number(top, "required_score", true, &out->required, why) &&
		     get_symbols(top, out, why);
	json_object_put(top);
	if (!ok)
		rspamd_reply_free(out);
	return ok;
}

const char *
rspamd_status_name(enum rspamd_status st)
{
	switch (st) {
	case RSPAMD_OK: return "ok";
	case RSPAMD_ERROR: return "error";
	case RSPAMD_TIMEOUT: return "timeout";
	case RSPAMD_CANCELLED: return "cancelled";
	}
	ms_panic("bad status %d", (int)st);
}

/* ---- the client ---- */

/* One scan's curl state: an easy handle driven by a multi handle of its own,
   so that the scan's thread can look at the cancel flag between polls. */
typedef struct slot {
	CURL *easy;
	CURLM *multi;
} slot;

struct rspamd_client {
	char *url;       /* http://HOST:PORT/checkv2 or http://localhost/checkv2 */
	char *unix_path; /* NULL: TCP */
	pthread_mutex_t lock;
	slot *idle[RSPAMD_POOL_MAX]; /* under lock */
	size_t nidle;
};

bool
rspamd_global_init(strbuf *why)
{
	const curl_version_info_data *v;
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK) {
		strbuf_printf(why, "libcurl: curl_global_init: %s", curl_easy_strerror(rc));
		return false;
	}
	v = curl_version_info(CURLVERSION_NOW);
	if (!(v->features & CURL_VERSION_UNIX_SOCKETS)) {
		strbuf_printf(why, "libcurl %s was built without unix-domain sockets", v->version);
		curl_global_cleanup();
		return false;
	}
	return true;
}

void
rspamd_global_cleanup(void)
{
	curl_global_cleanup();
}

/* The URL of a TCP endpoint: a numeric host, resolved here once. */
static bool
tcp_url(rspamd_client *c, const char *endpoint, const sockspec *ss, strbuf *why)
{
	struct addrinfo *res;
	char host[INET6_ADDRSTRLEN];
	strbuf url = STRBUF_INIT;
	int rc = sockspec_addrinfo(ss, false, &res);

	if (rc != 0) {
		strbuf_printf(why, "rspamd endpoint '%s': %s", endpoint, gai_strerror(rc));
		return false;
	}
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
	if (rc != 0) {
		strbuf_printf(why, "rspamd endpoint '%s': %s", endpoint, gai_strerror(rc));
		freeaddrinfo(res);
		return false;
	}
	strbuf_printf(&url, res->ai_family == AF_INET6 ? "http://[%s]:%u/checkv2" : "http://%s:%u/checkv2",
	              host, ss->port);
	freeaddrinfo(res);
	c->url = strbuf_detach(&url);
	return true;
}

rspamd_client *
rspamd_client_new(const char *endpoint, strbuf *why)
{
	static const char http[] = "http://";
	rspamd_client *c;
	sockspec ss;
	bool ok;
	int rc;

	if (strncmp(endpoint, http, sizeof http - 1) == 0) {
		char *hp = ms_xstrdup(endpoint + sizeof http - 1);
		size_t n = strlen(hp);

		if (n > 0 && hp[n - 1] == '/')
			hp[n - 1] = '\0';
		ok = sockspec_parse_hostport(hp, &ss, why);
		free(hp);
	} else {
		ok = sockspec_parse(endpoint, SOCKSPEC_POSTFIX, &ss, why);
	}
	if (!ok)
		return NULL;
	if (ss.family != AF_UNIX && ss.family != AF_INET && ss.family != AF_INET6) {
		strbuf_printf(why, "rspamd endpoint '%s': not a unix or TCP socket", endpoint);
		return NULL;
	}
	c = ms_xcalloc(1, sizeof *c);
	if (ss.family == AF_UNIX) {
		c->url = ms_xstrdup("http://localhost/checkv2");
		c->unix_path = ms_xstrdup(ss.path);
	} else if (!tcp_url(c, endpoint, &ss, why)) {
		free(c);
		return NULL;
	}
	if ((rc = pthread_mutex_init(&c->lock, NULL)) != 0)
		ms_panic("pthread_mutex_init: %s", strerror(rc));
	return c;
}

static void
slot_free(slot *s)
{
	if (s == NULL)
		return;
	if (s->multi != NULL)
		curl_multi_cleanup(s->multi);
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	free(s);
}

void
rspamd_client_free(rspamd_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nidle; i++)
		slot_free(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->url);
	free(c->unix_path);
	free(c);
}

static slot *
slot_take(rspamd_client *c)
{
	slot *s = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->nidle > 0)
		s = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	if (s != NULL) {
		curl_easy_reset(s->easy);
		return s;
	}
	s = ms_xcalloc(1, sizeof *s);
	s->easy = curl_easy_init();
	s->multi = curl_multi_init();
	if (s->easy == NULL || s->multi == NULL)
		ms_panic("curl_easy_init or curl_multi_init failed: out of memory?");
	return s;
}

/* A slot whose last scan went wrong is not kept: nothing of it is trusted. */
static void
slot_give(rspamd_client *c, slot *s, bool healthy)
{
	pthread_mutex_lock(&c->lock);
	if (healthy && c->nidle < RSPAMD_POOL_MAX) {
		c->idle[c->nidle++] = s;
		s = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	slot_free(s);
}

/* One scan in flight: what curl's callbacks see. */
typedef struct scan {
	const rspamd_request *rq;
	long long sent;  /* bytes of the spool file given to curl */
	int read_errno;  /* pread() failed: its errno; -1: the file ended early */
	strbuf body;     /* the reply */
	bool too_long;   /* the reply passed RSPAMD_REPLY_MAX */
} scan;

static size_t
on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	scan *sc = arg;
	long long left = sc->rq->fd_len - sc->sent;
	size_t want = size * nitems;
	ssize_t n;

	if (left <= 0)
		return 0;
	if ((long long)want > left)
		want = (size_t)left;
	do
		n = pread(sc->rq->fd, buf, want, (off_t)sc->sent);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		sc->read_errno = n < 0 ? errno : -1;
		return CURL_READFUNC_ABORT;
	}
	sc->sent += n;
	return (size_t)n;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	scan *sc = arg;
	size_t n = size * nmemb;

	if (sc->body.len + n > RSPAMD_REPLY_MAX) {
		sc->too_long = true;
		return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
	}
	strbuf_append(&sc->body, data, n);
	return n;
}

/* "Name: value", a control character of the value made '?' (never a second line). */
static struct curl_slist *
add_header(struct curl_slist *list, const char *name, const char *value)
{
	strbuf h = STRBUF_INIT;
	struct curl_slist *l;

	if (value == NULL)
		return list;
	strbuf_printf(&h, "%s: ", name);
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
		strbuf_putc(&h, *p < 0x20 || *p == 0x7f ? '?' : (char)*p);
	l = curl_slist_append(list, strbuf_str(&h));
	strbuf_free(&h);
	if (l == NULL)
		ms_panic("curl_slist_append: out of memory");
	return l;
}

static struct curl_slist *
request_headers(const rspamd_request *rq)
{
	struct curl_slist *h = NULL;
	const char *from = rq->from;

	if (from != NULL && from[0] == '\0')
		from = "<>";
	h = add_header(h, "IP", rq->ip);
	h = add_header(h, "Helo", rq->helo);
	h = add_header(h, "From", from);
	for (size_t i = 0; i < rq->nrcpt; i++)
		h = add_header(h, "Rcpt", rq->rcpt[i]);
	h = add_header(h, "Queue-Id", rq->queue_id);
	h = add_header(h, "User", rq->user);
	h = add_header(h, "Hostname", rq->hostname);
	h = add_header(h, "Settings-Id", rq->settings_id);
	/* No "Expect: 100-continue" round trip before a large body, and no
	   form content type: the body is the message as it is. */
	h = add_header(h, "Expect", "");
	h = add_header(h, "Content-Type", "");
	h = add_header(h, "Accept", "");
	return h;
}

static void
setup(rspamd_client *c, CURL *e, scan *sc, struct curl_slist *hdrs, char *errbuf,
      long long left_ms)
{
	const rspamd_request *rq = sc->rq;

	curl_easy_setopt(e, CURLOPT_URL, c->url);
	if (c->unix_path != NULL)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	if (rq->mem != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->mem);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->mem_len);
	} else {
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, sc);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(rq->fd_len > 0 ? rq->fd_len : 0));
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, sc);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	if (left_ms > CURL_TIMEOUT_MAX_MS)
		left_ms = CURL_TIMEOUT_MAX_MS;
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)left_ms);
}

/* Drive the transfer until it ends, the deadline passes or *cancel is set. */
static enum rspamd_status
run(slot *s, long long deadline_ms, const atomic_bool *cancel, CURLcode *result)
{
	int running = 1, queued;
	CURLMsg *m;

	for (;;) {
		CURLMcode mc;
		long long left;

		if (cancel != NULL && atomic_load(cancel))
			return RSPAMD_CANCELLED;
		mc = curl_multi_perform(s->multi, &running);
		if (mc != CURLM_OK) {
			*result = CURLE_FAILED_INIT;
			return RSPAMD_ERROR;
		}
		if (running == 0)
			break;
		left = budget_left(deadline_ms);
		if (left == 0)
			return RSPAMD_TIMEOUT;
		if (cancel != NULL && left > RSPAMD_CANCEL_POLL_MS)
			left = RSPAMD_CANCEL_POLL_MS;
		else if (left > POLL_MAX_MS)
			left = POLL_MAX_MS;
		mc = curl_multi_poll(s->multi, NULL, 0, (int)left, NULL);
		if (mc != CURLM_OK) {
			*result = CURLE_FAILED_INIT;
			return RSPAMD_ERROR;
		}
	}
	*result = CURLE_FAILED_INIT;
	while ((m = curl_multi_info_read(s->multi, &queued)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == s->easy)
			*result = m->data.result;
	if (*result == CURLE_OPERATION_TIMEDOUT)
		return RSPAMD_TIMEOUT;
	return *result == CURLE_OK ? RSPAMD_OK : RSPAMD_ERROR;
}

/* Why a transfer that curl ended went wrong, in one sentence. */
static void
explain(const scan *sc, CURLcode rc, const char *errbuf, strbuf *why)
{
	if (sc->read_errno > 0)
		strbuf_printf(why, "rspamd: reading the message: %s", strerror(sc->read_errno));
	else if (sc->read_errno < 0)
		strbuf_printf(why, "rspamd: the message file ended after %lld of %lld bytes",
		              sc->sent, sc->rq->fd_len);
	else if (sc->too_long)
		strbuf_printf(why, "rspamd: the reply is longer than %d bytes", RSPAMD_REPLY_MAX);
	else
		strbuf_printf(why, "rspamd: %s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
}

/* The reply of a transfer that ended: 200 and a verdict, or why not. */
static enum rspamd_status
read_reply(CURL *e, const scan *sc, rspamd_reply *out, strbuf *why)
{
	const char *body = sc->body.s != NULL ? sc->body.s : "";
	long code = 0;
	strbuf ignored = STRBUF_INIT;
	json_object *top;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		return rspamd_reply_parse(body, sc->body.len, out, why) ? RSPAMD_OK : RSPAMD_ERROR;
	/* rspamd's error object says why; any other body is not quoted. */
	strbuf_printf(why, "rspamd: HTTP status %ld", code);
	top = parse_json(body, sc->body.len, &ignored);
	if (top != NULL) {
		strbuf_puts(why, ": ");
		if (!error_text(top, why))
			strbuf_puts(why, "no error text");
		json_object_put(top);
	}
	strbuf_free(&ignored);
	return RSPAMD_ERROR;
}

enum rspamd_status
rspamd_scan(rspamd_client *c, const rspamd_request *rq, long long deadline_ms,
            const atomic_bool *cancel, rspamd_reply *out, strbuf *why)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	scan sc = {.rq = rq, .body = STRBUF_INIT};
	struct curl_slist *hdrs;
	enum rspamd_status st;
	CURLcode rc = CURLE_OK;
	long long left = budget_left(deadline_ms);
	slot *s;

	memset(out, 0, sizeof *out);
	out->score = out->required = NAN;
	if (rq->mem == NULL && rq->fd < 0) {
		strbuf_puts(why, "rspamd: no message to scan");
		return RSPAMD_ERROR;
	}
	if (cancel != NULL && atomic_load(cancel)) {
		strbuf_puts(why, "rspamd: scan cancelled before it started");
		return RSPAMD_CANCELLED;
	}
	if (left == 0) {
		strbuf_puts(why, "rspamd: no time left to scan");
		return RSPAMD_TIMEOUT;
	}
	s = slot_take(c);
	hdrs = request_headers(rq);
	setup(c, s->easy, &sc, hdrs, errbuf, left);
	curl_multi_add_handle(s->multi, s->easy);
	st = run(s, deadline_ms, cancel, &rc);
	/* Taken out mid-transfer, curl closes the connection: rspamd sees us go. */
	curl_multi_remove_handle(s->multi, s->easy);
	switch (st) {
	case RSPAMD_OK:
		st = read_reply(s->easy, &sc, out, why);
		break;
	case RSPAMD_TIMEOUT:
		strbuf_printf(why, "rspamd: no reply within the deadline (%lld ms)", left);
		break;
	case RSPAMD_CANCELLED:
		strbuf_puts(why, "rspamd: scan cancelled");
		break;
	case RSPAMD_ERROR:
		explain(&sc, rc, errbuf, why);
		break;
	}
	curl_slist_free_all(hdrs);
	strbuf_free(&sc.body);
	slot_give(c, s, st == RSPAMD_OK);
	return st;
}
