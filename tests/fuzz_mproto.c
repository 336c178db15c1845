/*
 * fuzz_mproto - libFuzzer target: what milter-probe reads from a milter.
 *
 * The input is the byte stream a milter sends back, after one byte that
 * picks the frame limit (the negotiated max data sizes and the decoder's
 * own limit) and the dump width. The stream is cut into packets by
 * mproto_frame(), as mproto_conn_read() does, and each packet is decoded
 * into the same mproto_reply (so its memory is reused) by
 * mproto_decode_reply(): negotiation replies with macro lists, replies with
 * text, header and recipient edits, body replacement, the bare verdicts.
 * Every packet is also printed by mproto_dump(), and the names of the
 * negotiated flags, and a reply code's text is checked as milter-probe does
 * (mproto_reply_text_check()).
 *
 * Invariants, else abort: mproto_frame() agrees with itself on every
 * prefix of a packet; a decoded reply's fields are set as its kind says
 * and point into its own copy; encoding it again (in the packet layout the
 * decoder documents) and decoding that gives the same reply; the dump is
 * printable ASCII; a reply text that passes the check starts with 4 or 5,
 * which is what milter-probe's verdict depends on.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproto.h"
#include "names.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what, const mproto_reply *r)
{
	fprintf(stderr, "%s (reply '%c')\n", what, r != NULL ? r->cmd : '?');
	abort();
}

/* mproto_frame() on every shorter prefix: "need more", same length once known. */
static void
check_prefixes(const unsigned char *buf, size_t pkt_len, uint32_t max)
{
	size_t len, n;
	int rc;

	for (len = 0; len < pkt_len; len = len < 8 ? len + 1 : len * 2) {
		n = 0;
		rc = mproto_frame(buf, len, max, &n, NULL);
		if (rc != 0 || (len >= MPROTO_HDR_LEN && n != pkt_len))
			die("mproto_frame disagrees with itself on a prefix", NULL);
	}
}

static bool
inside(const mproto_reply *r, const void *p)
{
	const char *c = p;

	return c >= r->store.s && c <= r->store.s + r->store.len;
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
put32(strbuf *b, uint32_t v)
{
	unsigned char d[4];

	names_put32(d, v);
	strbuf_append(b, d, 4);
}

static void
put_str(strbuf *b, const char *s)
{
	strbuf_append(b, s, strlen(s) + 1);
}

/*
 * The reply as a packet again, in the layout mproto.h describes; false when
 * it no longer fits (a text without its NUL at the size limit gains one).
 */
static bool
encode(const mproto_reply *r, strbuf *pkt)
{
	strbuf d = STRBUF_INIT;
	int i;

	switch (r->cmd) {
	case MPROTO_R_REPLYCODE:
	case MPROTO_R_QUARANTINE:
		put_str(&d, r->text);
		break;
	case MPROTO_R_INSHEADER:
	case MPROTO_R_CHGHEADER:
		put32(&d, r->index);
		/* fall through */
	case MPROTO_R_ADDHEADER:
		put_str(&d, r->name);
		put_str(&d, r->value);
		break;
	case MPROTO_R_ADDRCPT:
	case MPROTO_R_DELRCPT:
	case MPROTO_R_ADDRCPT_PAR:
	case MPROTO_R_CHGFROM:
		put_str(&d, r->addr);
		if (r->args != NULL)
			put_str(&d, r->args);
		break;
	case MPROTO_R_REPLBODY:
		strbuf_append(&d, r->body, r->body_len);
		break;
	case MPROTO_R_OPTNEG:
		put32(&d, r->version);
		put32(&d, r->actions);
		put32(&d, r->protocol);
		for (i = 0; i < PROTO_M_COUNT; i++) {
			if (r->macros[i] != NULL) {
				put32(&d, (uint32_t)i);
				put_str(&d, r->macros[i]);
			}
		}
		break;
	default:
		break;
	}
	strbuf_reset(pkt);
	i = mproto_put_packet(pkt, r->cmd, d.s, d.len);
	strbuf_free(&d);
	return i == 0;
}

/* Fields set as the reply's kind says, pointing into its own copy. */
static void
check_fields(const mproto_reply *r)
{
	int i;

	switch (r->cmd) {
	case MPROTO_R_REPLYCODE:
		if (r->text == NULL || r->text[0] == '\0')
			die("reply code without text", r);
		/* fall through */
	case MPROTO_R_QUARANTINE:
		if (r->text == NULL || !inside(r, r->text))
			die("text missing or outside the reply", r);
		break;
	case MPROTO_R_ADDHEADER:
	case MPROTO_R_INSHEADER:
	case MPROTO_R_CHGHEADER:
		if (r->name == NULL || r->value == NULL || r->name[0] == '\0' ||
		    !inside(r, r->name) || !inside(r, r->value))
			die("header edit without name or value", r);
		break;
	case MPROTO_R_ADDRCPT:
	case MPROTO_R_DELRCPT:
	case MPROTO_R_ADDRCPT_PAR:
	case MPROTO_R_CHGFROM:
		if (r->addr == NULL || !inside(r, r->addr) ||
		    (r->args != NULL && !inside(r, r->args)))
			die("address edit without address", r);
		if (r->args != NULL &&
		    (r->cmd == MPROTO_R_ADDRCPT || r->cmd == MPROTO_R_DELRCPT))
			die("arguments where none are allowed", r);
		break;
	case MPROTO_R_REPLBODY:
		if (r->body_len > 0 &&
		    (!inside(r, r->body) || !inside(r, r->body + r->body_len)))
			die("body outside the reply", r);
		break;
	case MPROTO_R_OPTNEG:
		for (i = 0; i < PROTO_M_COUNT; i++)
			if (r->macros[i] != NULL && !inside(r, r->macros[i]))
				die("macro list outside the reply", r);
		break;
	default:
		if (r->text != NULL || r->name != NULL || r->addr != NULL ||
		    r->body_len != 0)
			die("data in a reply that has none", r);
	}
}

static void
check_same(const mproto_reply *a, const mproto_reply *b)
{
	int i;

	if (a->cmd != b->cmd || a->index != b->index || !same_str(a->text, b->text) ||
	    !same_str(a->name, b->name) || !same_str(a->value, b->value) ||
	    !same_str(a->addr, b->addr) || !same_str(a->args, b->args) ||
	    a->body_len != b->body_len ||
	    (a->body_len > 0 && memcmp(a->body, b->body, a->body_len) != 0) ||
	    a->version != b->version || a->actions != b->actions ||
	    a->protocol != b->protocol)
		die("decoding the reply encoded again gives another reply", a);
	for (i = 0; i < PROTO_M_COUNT; i++)
		if (!same_str(a->macros[i], b->macros[i]))
			die("macro lists differ after encoding again", a);
}

static void
check_printable(const strbuf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if (b->s[i] < 0x20 || b->s[i] >= 0x7f)
			die("unprintable byte in a dump", NULL);
}

static void
look_at(const mproto_reply *r, strbuf *scratch)
{
	strbuf_reset(scratch);
	if (r->cmd == MPROTO_R_OPTNEG) {
		mproto_protocol_names(scratch, r->protocol);
		mproto_action_names(scratch, r->actions);
		check_printable(scratch);
	}
	if (r->cmd == MPROTO_R_REPLYCODE &&
	    mproto_reply_text_check(r->text, scratch) == 0 && r->text[0] != '4' &&
	    r->text[0] != '5')
		die("a reply text that passed the check starts with neither 4 nor 5", r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t limits[] = {MPROTO_MDS_64K + 1, MPROTO_MDS_256K + 1,
	                                  MPROTO_MAX_PACKET, 64};
	mproto_reply r, again;
	strbuf err = STRBUF_INIT, pkt = STRBUF_INIT, text = STRBUF_INIT;
	size_t off, pkt_len, width;
	uint32_t max;
	int rc;

	if (size < 1)
		return 0;
	max = limits[data[0] & 3];
	width = (size_t)(data[0] >> 2) * 4;
	mproto_reply_init(&r);
	mproto_reply_init(&again);
	for (off = 1; off < size; off += pkt_len) {
		const unsigned char *p = data + off;

		pkt_len = 0;
		rc = mproto_frame(p, size - off, max, &pkt_len, &err);
		if (rc < 0 && err.len == 0)
			die("framing error without a reason", NULL);
		if (rc <= 0)
			break;
		if (pkt_len < MPROTO_HDR_LEN + 1 || pkt_len > size - off)
			die("mproto_frame returned a packet outside the data", NULL);
		check_prefixes(p, pkt_len, max);
		strbuf_reset(&text);
		mproto_dump(&text, p, pkt_len, 1, width);
		mproto_dump(&text, p, pkt_len, 0, width);
		check_printable(&text);
		strbuf_reset(&err);
		if (mproto_decode_reply(p, pkt_len, &r, &err) < 0) {
			if (err.len == 0)
				die("a refused packet without a reason", NULL);
			continue;
		}
		if (mproto_reply_name(r.cmd) == NULL)
			die("a decoded reply without a name", &r);
		check_fields(&r);
		if (!encode(&r, &pkt))
			continue;
		if (mproto_decode_reply((const unsigned char *)pkt.s, pkt.len, &again,
		                        &err) < 0) {
			fprintf(stderr, "%s\n", strbuf_str(&err));
			die("the reply encoded again does not decode", &r);
		}
		check_same(&r, &again);
		look_at(&r, &text);
	}
	/* The whole input as one packet: lengths that disagree, trailing bytes. */
	(void)mproto_decode_reply(data, size, &r, NULL);
	mproto_reply_free(&r);
	mproto_reply_free(&again);
	strbuf_free(&err);
	strbuf_free(&pkt);
	strbuf_free(&text);
	return 0;
}
