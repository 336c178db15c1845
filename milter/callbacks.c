/* callbacks - libmilter glue; see callbacks.h. */
#include "config.h"

#include "callbacks.h"
#include "daemon.h"
#include "log.h"
#include "session.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * One milter connection. Negotiation comes before connect, so the protocol
 * flags are kept here and the session is attached at connect.
 */
struct conn {
	unsigned long proto; /* SMFIP_* flags agreed with the MTA */
	session *s;
};

/* Stages this milter never needs, and stages at which it never replies. */
#define CB_STAGES_OFF (SMFIP_NOBODY | SMFIP_NOEOH | SMFIP_NODATA | SMFIP_NOUNKNOWN)
#define CB_NO_REPLY (SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR)
/* Connect-stage macros we ask for: the stress macro plus Postfix's defaults. */
#define CB_CONNECT_MACROS_FMT "%s j {daemon_name} {daemon_addr} v _"

static struct conn *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static struct conn *
conn_get_or_create(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL) {
		c = ms_xcalloc(1, sizeof *c);
		smfi_setpriv(ctx, c);
	}
	return c;
}

/* The answer for a stage at which we have nothing to say. */
static sfsistat
carry_on(const struct conn *c, unsigned long nr_flag)
{
	return (c->proto & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
	     unsigned long f3, unsigned long *pf0, unsigned long *pf1,
	     unsigned long *pf2, unsigned long *pf3)
{
	struct conn *c = conn_get_or_create(ctx);
	conf *cf;
	strbuf macros = STRBUF_INIT;

	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
	*pf1 = f1 & (CB_STAGES_OFF | CB_NO_REPLY);
	*pf2 = 0;
	*pf3 = 0;
	c->proto = *pf1;
	if (*pf0 & SMFIF_SETSYMLIST) {
		/* So the stress macro arrives even if milter_connect_macros omits it. */
		cf = daemon_conf_acquire();
		strbuf_printf(&macros, CB_CONNECT_MACROS_FMT, stress_macro_name(cf));
		conf_unref(cf);
		if (smfi_setsymlist(ctx, SMFIM_CONNECT, macros.s) != MI_SUCCESS)
			log_msg(LOG_WARNING, "cannot request the connect macros %s", macros.s);
		strbuf_free(&macros);
	}
	return SMFIS_CONTINUE;
}

/* inet_ntop for what libmilter hands us; NULL for a non-IP client. */
static const char *
format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa == NULL)
		return NULL;
	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
				 buf, (socklen_t)len);
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6,
				 &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
				 buf, (socklen_t)len);
	return NULL;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct conn *c = conn_get_or_create(ctx);
	char abuf[INET6_ADDRSTRLEN];
	const char *addr = format_addr(hostaddr, abuf, sizeof abuf);
	conf *cf = daemon_conf_acquire();

	if (addr == NULL)
		addr = smfi_getsymval(ctx, "{client_addr}");
	session_free(c->s);
	c->s = session_create(cf, hostname, addr);
	conf_unref(cf);
	session_enter(c->s);
	session_set_stress(c->s, smfi_getsymval(ctx, (char *)session_stress_macro(c->s)));
	if (log_verbose() >= 1) {
		strbuf line = STRBUF_INIT;

		strbuf_puts(&line, "connect from ");
		session_format_client(c->s, &line);
		strbuf_puts(&line, " stress=");
		stress_format_log(session_stress(c->s), &line);
		log_msg(LOG_INFO, "%s", line.s);
		strbuf_free(&line);
	}
	session_leave(c->s);
	return SMFIS_CONTINUE;
}

/*
 * A callback without a session means the MTA skipped connect or we lost
 * state: we cannot say what the message went through, so the sender retries.
 */
#define CB_SESSION_OR_TEMPFAIL(c, ctx)                                            \
	do {                                                                        \
		(c) = conn_of(ctx);                                                 \
		if ((c) == NULL || (c)->s == NULL) {                                \
			log_msg(LOG_ERR, "%s: no session state; tempfail", __func__); \
			return SMFIS_TEMPFAIL;                                      \
		}                                                                   \
	} while (0)

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	struct conn *c;

	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_enter(c->s);
	session_helo(c->s, helo);
	session_leave(c->s);
	return carry_on(c, SMFIP_NR_HELO);
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c;

	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_enter(c->s);
	session_mail(c->s, argv[0]);
	session_set_queue_id(c->s, smfi_getsymval(ctx, "i"));
	session_leave(c->s);
	return carry_on(c, SMFIP_NR_MAIL);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c;

	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_enter(c->s);
	session_rcpt(c->s, argv[0]);
	session_leave(c->s);
	return carry_on(c, SMFIP_NR_RCPT);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c;

	(void)value;
	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_enter(c->s);
	session_header(c->s, name);
	session_leave(c->s);
	return carry_on(c, SMFIP_NR_HDR);
}

/* Remove the copies of our header the client sent, then add the real one. */
static void
apply_header(SMFICTX *ctx, const char *name, size_t n_forged, const strbuf *value)
{
	for (size_t i = n_forged; i > 0; i--)
		if (smfi_chgheader(ctx, (char *)name, (int)i, NULL) != MI_SUCCESS)
			log_msg(LOG_WARNING, "cannot remove a forged %s header", name);
	if (value->len > 0 &&
	    smfi_addheader(ctx, (char *)name, value->s) != MI_SUCCESS)
		log_msg(LOG_WARNING, "cannot add the %s header", name);
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct conn *c;
	strbuf value = STRBUF_INIT, line = STRBUF_INIT;
	size_t n_forged;

	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_enter(c->s);
	session_set_queue_id(c->s, smfi_getsymval(ctx, "i"));
	const char *name = session_params(c->s)->stress_header;
	/* Read the name before session_eom(), which ends the message. */
	session_eom(c->s, &value, &n_forged, &line);
	if (name[0] != '\0')
		apply_header(ctx, name, n_forged, &value);
	session_leave(c->s);
	log_msg(LOG_INFO, "%s", line.s);
	strbuf_free(&value);
	strbuf_free(&line);
	return SMFIS_ACCEPT;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	strbuf line = STRBUF_INIT;

	if (c == NULL || c->s == NULL)
		return SMFIS_CONTINUE;
	if (session_abort(c->s, &line))
		log_msg(LOG_INFO, "%s", line.s);
	strbuf_free(&line);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	smfi_setpriv(ctx, NULL);
	session_free(c->s);
	free(c);
	return SMFIS_CONTINUE;
}

struct smfiDesc *
callbacks_desc(const char *name)
{
	static struct smfiDesc desc;

	memset(&desc, 0, sizeof desc);
	desc.xxfi_name = (char *)name;
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST;
	desc.xxfi_connect = cb_connect;
	desc.xxfi_helo = cb_helo;
	desc.xxfi_envfrom = cb_envfrom;
	desc.xxfi_envrcpt = cb_envrcpt;
	desc.xxfi_header = cb_header;
	desc.xxfi_eom = cb_eom;
	desc.xxfi_abort = cb_abort;
	desc.xxfi_close = cb_close;
	desc.xxfi_negotiate = cb_negotiate;
	return &desc;
}
