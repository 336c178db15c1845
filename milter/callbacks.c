/* callbacks - libmilter glue; see callbacks.h. */
#include "config.h"

#include "callbacks.h"
#include "admission.h"
#include "budget.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "session.h"
#include "stage.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * The core speaks the protocol through protocol.h; libmilter has its own
 * names for the same values. They must agree, or a stage the core thinks it
 * turned off would still arrive.
 */
#define SAME(ours, theirs) _Static_assert((ours) == (theirs), #ours " != " #theirs)
SAME(PROTO_P_NOCONNECT, SMFIP_NOCONNECT);
SAME(PROTO_P_NOHELO, SMFIP_NOHELO);
SAME(PROTO_P_NOMAIL, SMFIP_NOMAIL);
SAME(PROTO_P_NORCPT, SMFIP_NORCPT);
SAME(PROTO_P_NOBODY, SMFIP_NOBODY);
SAME(PROTO_P_NOHDRS, SMFIP_NOHDRS);
SAME(PROTO_P_NOEOH, SMFIP_NOEOH);
SAME(PROTO_P_NR_HDR, SMFIP_NR_HDR);
SAME(PROTO_P_NOUNKNOWN, SMFIP_NOUNKNOWN);
SAME(PROTO_P_NODATA, SMFIP_NODATA);
SAME(PROTO_P_SKIP, SMFIP_SKIP);
SAME(PROTO_P_RCPT_REJ, SMFIP_RCPT_REJ);
SAME(PROTO_P_NR_CONN, SMFIP_NR_CONN);
SAME(PROTO_P_NR_HELO, SMFIP_NR_HELO);
SAME(PROTO_P_NR_MAIL, SMFIP_NR_MAIL);
SAME(PROTO_P_NR_RCPT, SMFIP_NR_RCPT);
SAME(PROTO_P_NR_DATA, SMFIP_NR_DATA);
SAME(PROTO_P_NR_UNKN, SMFIP_NR_UNKN);
SAME(PROTO_P_NR_EOH, SMFIP_NR_EOH);
SAME(PROTO_P_NR_BODY, SMFIP_NR_BODY);
SAME(PROTO_P_HDR_LEADSPC, SMFIP_HDR_LEADSPC);
SAME(PROTO_P_MDS_256K, SMFIP_MDS_256K);
SAME(PROTO_P_MDS_1M, SMFIP_MDS_1M);
SAME(PROTO_F_ADDHDRS, SMFIF_ADDHDRS);
SAME(PROTO_F_CHGBODY, SMFIF_CHGBODY);
SAME(PROTO_F_ADDRCPT, SMFIF_ADDRCPT);
SAME(PROTO_F_DELRCPT, SMFIF_DELRCPT);
SAME(PROTO_F_CHGHDRS, SMFIF_CHGHDRS);
SAME(PROTO_F_QUARANTINE, SMFIF_QUARANTINE);
SAME(PROTO_F_CHGFROM, SMFIF_CHGFROM);
SAME(PROTO_F_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR);
SAME(PROTO_F_SETSYMLIST, SMFIF_SETSYMLIST);
SAME(PROTO_M_CONNECT, SMFIM_CONNECT);
SAME(PROTO_M_HELO, SMFIM_HELO);
SAME(PROTO_M_MAIL, SMFIM_ENVFROM);
SAME(PROTO_M_RCPT, SMFIM_ENVRCPT);
SAME(PROTO_M_DATA, SMFIM_DATA);
SAME(PROTO_M_EOM, SMFIM_EOM);
SAME(PROTO_M_EOH, SMFIM_EOH);
#undef SAME

/*
 * One milter connection. Negotiation comes before connect: the config
 * snapshot taken there is the one the session runs on, so the stages it
 * negotiated away and the ones its rules need always agree. It is also
 * where the connection is admitted or found past max_sessions.
 */
struct conn {
	unsigned long proto; /* SMFIP_* flags agreed with the MTA */
	conf *cf;
	runtime *rt; /* the daemon's, taken with cf */
	session *s;
	admission_ticket ticket;
	bool over; /* past max_sessions: overload_action at connect, nothing else */
	bool known;          /* the personality was known at negotiation */
	stress_state stress; /* ... and this is it */
};

static bool callbacks_endpoint; /* set before libmilter's threads start */

void
callbacks_set_endpoint(void)
{
	callbacks_endpoint = true;
}

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
	if (c->cf == NULL)
		daemon_acquire(&c->cf, &c->rt);
	/* At negotiation; at connect for an MTA that did not negotiate. */
	if (c->ticket.state == ADMISSION_NEW)
		c->over = !admission_enter(daemon_admission(), &c->ticket,
		                           admission_params(c->cf), budget_now_ms());
	return c;
}

static const char *
macro_of(void *ctx, const char *name)
{
	return smfi_getsymval(ctx, (char *)name);
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
	     unsigned long f3, unsigned long *pf0, unsigned long *pf1,
	     unsigned long *pf2, unsigned long *pf3)
{
	struct conn *c = conn_get_or_create(ctx);

	(void)f2;
	(void)f3;
	*pf2 = 0;
	*pf3 = 0;
	if (c->over) {
		/* Only connect, no actions: the MTA sends nothing else. */
		*pf0 = 0;
		*pf1 = f1 & admission_overload_protocol();
		c->proto = *pf1;
		return SMFIS_CONTINUE;
	}
	/*
	 * No SMFIF_SETSYMLIST: a macro list of ours would replace Postfix's for
	 * that stage, and rules may test any macro the administrator has Postfix
	 * send (milter_*_macros). The stress macro comes the documented way.
	 */
	*pf0 = f0 & session_actions();
	if (callbacks_endpoint) {
		c->known = true;
		c->stress = (stress_state){true, STRESS_SRC_ENDPOINT};
	} else {
		c->known = session_known_at_negotiation(c->cf, c->rt, &c->stress);
	}
	*pf1 = f1 & session_protocol_known(c->cf, c->known ? c->stress.stressed : -1);
	c->proto = *pf1;
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

/*
 * Turn the session's reply into what libmilter returns. The custom reply is
 * set right before the matching return (ARCHITECTURE.md F7: on a mismatch libmilter
 * keeps it for later). At a stage negotiated as "no reply" the answer must be
 * SMFIS_NOREPLY whatever the session said.
 */
static sfsistat
answer(SMFICTX *ctx, const struct conn *c, session_reply *r, enum stage stage)
{
	sfsistat rc = SMFIS_CONTINUE;

	if (c->proto & stage_get(stage)->nr_flag) {
		session_reply_free(r);
		return SMFIS_NOREPLY;
	}
	switch (r->answer) {
	case SESSION_CONTINUE:
		rc = SMFIS_CONTINUE;
		break;
	case SESSION_ACCEPT:
		rc = SMFIS_ACCEPT;
		break;
	case SESSION_DISCARD:
		rc = SMFIS_DISCARD;
		break;
	case SESSION_SKIP:
		/* Only an MTA that offered SMFIP_SKIP understands it. */
		rc = (c->proto & SMFIP_SKIP) ? SMFIS_SKIP : SMFIS_CONTINUE;
		break;
	case SESSION_TEMPFAIL:
	case SESSION_REJECT:
		rc = r->answer == SESSION_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_REJECT;
		if (r->code[0] != '\0') {
			strbuf text = STRBUF_INIT;

			rules_reply_text_for_milter(strbuf_str(&r->text), &text);
			if (smfi_setreply(ctx, r->code, r->ecode[0] ? r->ecode : NULL,
					  text.s) != MI_SUCCESS)
				log_msg(LOG_WARNING, "libmilter refused the reply %s %s",
					r->code, r->ecode);
			strbuf_free(&text);
		}
		break;
	}
	session_reply_free(r);
	return rc;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct conn *c = conn_get_or_create(ctx);
	char abuf[INET6_ADDRSTRLEN];
	const char *addr;
	session_reply r;

	session_reply_init(&r);
	if (c->over) {
		admission_overload_reply(admission_params(c->cf), &r);
		return answer(ctx, c, &r, STAGE_CONNECT);
	}
	addr = format_addr(hostaddr, abuf, sizeof abuf);
	if (addr == NULL)
		addr = smfi_getsymval(ctx, "{client_addr}");
	session_free(c->s);
	c->s = session_create(c->cf, c->rt, hostname, addr);
	session_set_macros(c->s, macro_of, ctx);
	session_set_protocol(c->s, c->proto);
	if (c->known)
		session_preset_stress(c->s, c->stress);
	session_enter(c->s);
	session_on_connect(c->s, &r);
	session_leave(c->s);
	return answer(ctx, c, &r, STAGE_CONNECT);
}

/*
 * A callback without a session means the MTA skipped connect or we lost
 * state: we cannot say what the message went through, so the sender retries.
 * A connection past max_sessions has no session: an MTA that sends more
 * than it negotiated gets tempfail, quietly.
 */
#define CB_SESSION_OR_TEMPFAIL(c, ctx)                                                   \
	do {                                                                             \
		(c) = conn_of(ctx);                                                      \
		if ((c) == NULL || (c)->s == NULL) {                                     \
			if ((c) == NULL || !(c)->over)                                   \
				log_msg(LOG_ERR, "%s: no session state; tempfail",       \
				        __func__);                                       \
			return SMFIS_TEMPFAIL;                                           \
		}                                                                        \
	} while (0)

/* The common shape of a stage callback: time it, run it, answer. */
#define CB_STAGE(ctx, stage, call)                                               \
	do {                                                                        \
		struct conn *c_;                                                    \
		session_reply r_;                                                   \
		CB_SESSION_OR_TEMPFAIL(c_, ctx);                                    \
		session_reply_init(&r_);                                            \
		session_enter(c_->s);                                               \
		call;                                                               \
		session_leave(c_->s);                                               \
		return answer(ctx, c_, &r_, stage);                               \
	} while (0)

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	CB_STAGE(ctx, STAGE_HELO, session_on_helo(c_->s, helo, &r_));
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	CB_STAGE(ctx, STAGE_MAIL, session_on_mail(c_->s, argv[0], &r_));
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	CB_STAGE(ctx, STAGE_RCPT, session_on_rcpt(c_->s, argv[0], &r_));
}

static sfsistat
cb_data(SMFICTX *ctx)
{
	CB_STAGE(ctx, STAGE_DATA, session_on_data(c_->s, &r_));
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	CB_STAGE(ctx, STAGE_HEADER, session_on_header(c_->s, name, value, &r_));
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	CB_STAGE(ctx, STAGE_EOH, session_on_eoh(c_->s, &r_));
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	CB_STAGE(ctx, STAGE_BODY, session_on_body(c_->s, chunk, len, &r_));
}

/* Remove the copies of our header the client sent, then add ours and the tags. */
static void
apply_changes(SMFICTX *ctx, const session_changes *ch)
{
	for (size_t i = ch->n_forged; i > 0; i--)
		if (smfi_chgheader(ctx, (char *)ch->forged_name, (int)i, NULL) != MI_SUCCESS)
			log_msg(LOG_WARNING, "cannot remove a forged %s header", ch->forged_name);
	for (size_t i = 0; i < ch->n_add; i++)
		if (smfi_addheader(ctx, ch->add[i].name, ch->add[i].value) != MI_SUCCESS)
			log_msg(LOG_WARNING, "cannot add the %s header", ch->add[i].name);
	if (ch->quarantine != NULL && smfi_quarantine(ctx, ch->quarantine) != MI_SUCCESS)
		log_msg(LOG_WARNING, "cannot quarantine the message");
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct conn *c;
	session_reply r;
	session_changes ch;

	CB_SESSION_OR_TEMPFAIL(c, ctx);
	session_reply_init(&r);
	session_changes_init(&ch);
	session_enter(c->s);
	session_on_eom(c->s, &r, &ch);
	apply_changes(ctx, &ch);
	session_leave(c->s);
	session_changes_free(&ch);
	return answer(ctx, c, &r, STAGE_EOM);
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL && c->s != NULL)
		session_on_abort(c->s);
	return SMFIS_CONTINUE;
}

/* Also called for a connection that never got to connect (a bare TCP probe). */
static sfsistat
cb_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	smfi_setpriv(ctx, NULL);
	admission_leave(daemon_admission(), &c->ticket);
	session_free(c->s);
	conf_unref(c->cf);
	runtime_unref(c->rt);
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
	desc.xxfi_flags = session_actions();
	desc.xxfi_connect = cb_connect;
	desc.xxfi_helo = cb_helo;
	desc.xxfi_envfrom = cb_envfrom;
	desc.xxfi_envrcpt = cb_envrcpt;
	desc.xxfi_data = cb_data;
	desc.xxfi_header = cb_header;
	desc.xxfi_eoh = cb_eoh;
	desc.xxfi_body = cb_body;
	desc.xxfi_eom = cb_eom;
	desc.xxfi_abort = cb_abort;
	desc.xxfi_close = cb_close;
	desc.xxfi_negotiate = cb_negotiate;
	return &desc;
}
