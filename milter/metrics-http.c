/* metrics-http - Prometheus' /metrics over HTTP; see metrics-http.h. */
#include "config.h"

#include "metrics-http.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "sockspec.h"
#include "strbuf.h"

#include <microhttpd.h>
#include <string.h>
#include <unistd.h>

#define METRICS_HTTP_BACKLOG 16
#define METRICS_HTTP_CONNECTIONS 16
#define METRICS_HTTP_TIMEOUT_S 10
#define METRICS_HTTP_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *metrics_http_daemon;

int
metrics_http_listen(const char *spec, bool *failed)
{
	strbuf why = STRBUF_INIT, name = STRBUF_INIT;
	sockspec ss;
	int fd;

	*failed = false;
	if (spec[0] == '\0')
		return -1;
	if (!sockspec_parse_hostport(spec, &ss, &why)) /* checked at load */
		ms_panic("metrics_listen passed the config check: %s", strbuf_str(&why));
	strbuf_free(&why);
	strbuf_printf(&name, "metrics_listen=%s", spec);
	fd = daemon_listen_inet(name.s, &ss, METRICS_HTTP_BACKLOG);
	strbuf_free(&name);
	*failed = fd < 0;
	return fd;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, strbuf *body, const char *type)
{
	size_t len = body->len;
	struct MHD_Response *r = MHD_create_response_from_buffer(
	        len, strbuf_detach(body), MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size,
       void **con_cls)
{
	strbuf body = STRBUF_INIT;
	metrics_sources src;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || strcmp(url, "/metrics") != 0) {
		strbuf_puts(&body, "not found: GET /metrics only\n");
		return reply(c, MHD_HTTP_NOT_FOUND, &body, "text/plain; charset=utf-8");
	}
	daemon_metrics_sources(&src);
	metrics_render(&src, &body);
	return reply(c, MHD_HTTP_OK, &body, METRICS_HTTP_TYPE);
}

bool
metrics_http_start(int fd)
{
	if (fd < 0)
		return true;
	metrics_http_daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, answer,
	        NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
	        MHD_OPTION_END);
	if (metrics_http_daemon == NULL) {
		log_msg(LOG_ERR, "cannot start the metrics HTTP server");
		close(fd);
		return false;
	}
	return true;
}

void
metrics_http_stop(void)
{
	if (metrics_http_daemon != NULL)
		MHD_stop_daemon(metrics_http_daemon);
	metrics_http_daemon = NULL;
}
