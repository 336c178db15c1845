/*
 * mproto - the MTA side of the Sendmail milter protocol, version 6
 *
 * What a milter client (milter-probe, the load generator, fuzz targets) needs
 * to talk to a milter without linking libmilter: protocol constants, packet
 * encoders, a bounded decoder for everything a milter may send back, and a
 * small blocking connection with per-operation timeouts.
 *
 * Wire format. Every packet is a 4-byte big-endian length, then one command
 * byte, then length-1 bytes of data. Strings are NUL-terminated; integers are
 * 32-bit big-endian except the client port in CONNECT (16-bit big-endian).
 *
 * Encoders (mproto_put_*) append one complete packet to a strbuf, so several
 * packets can be queued and written with one write: an MTA sends the macros
 * and the event they belong to together, which also avoids a Nagle stall on
 * TCP. They return 0, or -1 (buffer unchanged) when the packet would be
 * larger than MPROTO_MAX_PACKET.
 *
 * Decoding. mproto_frame() finds packet boundaries in a byte stream;
 * mproto_decode_reply() turns exactly one packet into an mproto_reply. Both
 * take untrusted bytes and a length, never read outside [buf, buf+len), and
 * reject absurd lengths, missing NUL terminators, trailing garbage, unknown
 * reply codes and data where none is allowed, with a one-line reason in err.
 * A decoded reply owns a copy of its strings (valid until the next decode
 * into the same mproto_reply, or mproto_reply_free()).
 *
 * I/O. mproto_conn_open() connects to a socket in the syntax of sockspec.h,
 * Postfix's inet:host:port included (an MTA writes it so); a spec without a
 * host connects to the loopback address, and fd:N is refused (it names a
 * listener, not a milter to connect to). mproto_conn_spec() is that check
 * alone, for a caller that wants to refuse a bad spec before connecting.
 * Reads and writes wait at most the connection's timeout each, so a
 * stuck milter cannot hang the caller. SIGPIPE is never raised.
 *
 * Concurrency: re-entrant. There is no global state; every function works
 * only on the objects it is given, so threads may use separate connections
 * and buffers freely. One mproto_conn or mproto_reply is used by one thread
 * at a time.
 */
#ifndef MS_MPROTO_H
#define MS_MPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "sockspec.h"
#include "strbuf.h"

#define MPROTO_VERSION 6 /* protocol version we speak */

/* Commands, MTA to milter. */
#define MPROTO_C_ABORT 'A'
#define MPROTO_C_BODY 'B'
#define MPROTO_C_CONNECT 'C'
#define MPROTO_C_MACRO 'D'
#define MPROTO_C_EOM 'E' /* end of body */
#define MPROTO_C_HELO 'H'
#define MPROTO_C_QUIT_NC 'K' /* quit, new connection follows */
#define MPROTO_C_HEADER 'L'
#define MPROTO_C_MAIL 'M'
#define MPROTO_C_EOH 'N'
#define MPROTO_C_OPTNEG 'O'
#define MPROTO_C_QUIT 'Q'
#define MPROTO_C_RCPT 'R'
#define MPROTO_C_DATA 'T'
#define MPROTO_C_UNKNOWN 'U' /* unrecognised SMTP command */

/* Replies, milter to MTA. */
#define MPROTO_R_ADDRCPT '+'
#define MPROTO_R_DELRCPT '-'
#define MPROTO_R_ADDRCPT_PAR '2' /* add recipient with ESMTP args */
#define MPROTO_R_SHUTDOWN '4'    /* 421 and hang up */
#define MPROTO_R_ACCEPT 'a'
#define MPROTO_R_REPLBODY 'b'
#define MPROTO_R_CONTINUE 'c'
#define MPROTO_R_DISCARD 'd'
#define MPROTO_R_CHGFROM 'e'
#define MPROTO_R_CONN_FAIL 'f'
#define MPROTO_R_ADDHEADER 'h'
#define MPROTO_R_INSHEADER 'i'
#define MPROTO_R_CHGHEADER 'm' /* empty value: delete */
#define MPROTO_R_PROGRESS 'p'
#define MPROTO_R_QUARANTINE 'q'
#define MPROTO_R_REJECT 'r'
#define MPROTO_R_SKIP 's'
#define MPROTO_R_TEMPFAIL 't'
#define MPROTO_R_REPLYCODE 'y' /* "550 5.7.1 text" */
#define MPROTO_R_OPTNEG 'O'    /* negotiation reply */

/* Client address families in CONNECT. */
#define MPROTO_FAM_UNKNOWN 'U' /* no port, no address follow */
#define MPROTO_FAM_UNIX 'L'
#define MPROTO_FAM_INET '4'
#define MPROTO_FAM_INET6 '6'



/* Sizes. */
#define MPROTO_CHUNK_SIZE 65535u    /* body chunk size MTAs use */
#define MPROTO_MDS_64K (65536u - 1) /* default max data size */
#define MPROTO_MDS_256K (262144u - 1)
#define MPROTO_MDS_1M (1048576u - 1)
#define MPROTO_MAX_PACKET (MPROTO_MDS_1M + 1) /* largest length field accepted */
#define MPROTO_HDR_LEN 4u                     /* the length field */

/* Status of the I/O functions (and mproto_frame errors). */
#define MPROTO_OK 0
#define MPROTO_ERR_IO (-1)  /* connect/read/write failed (errno text in err) */
#define MPROTO_ERR_EOF (-2) /* the milter closed the connection */
#define MPROTO_ERR_TIMEOUT (-3)
#define MPROTO_ERR_PROTO (-4) /* malformed data from the milter */

/* ---- Encoding: append one packet to out ------------------------------ */

typedef struct mproto_macro {
	const char *name; /* as sent: "j", "{daemon_name}" */
	const char *value;
} mproto_macro;

int mproto_put_packet(strbuf *out, int cmd, const void *data, size_t len);
int mproto_put_cmd(strbuf *out, int cmd); /* no data: T N E A Q K */
int mproto_put_optneg(strbuf *out, uint32_t version, uint32_t actions, uint32_t protocol);
/* D: cmd is the command the macros belong to ('C', 'H', 'L', 'B', ...). */
int mproto_put_macros(strbuf *out, int cmd, const mproto_macro *m, size_t n);
/* C: for MPROTO_FAM_UNKNOWN port and addr are not sent (addr may be NULL). */
int mproto_put_connect(strbuf *out, const char *hostname, int family, unsigned port,
                       const char *addr);
int mproto_put_helo(strbuf *out, const char *helo);
/* M and R: argv[0] is the address, then ESMTP arguments; NULL-terminated. */
int mproto_put_mail(strbuf *out, const char *const *argv);
int mproto_put_rcpt(strbuf *out, const char *const *argv);
int mproto_put_header(strbuf *out, const char *name, const char *value);
int mproto_put_body(strbuf *out, const void *data, size_t len);
int mproto_put_unknown(strbuf *out, const char *smtp_command);

/* ---- Decoding --------------------------------------------------------- */

typedef struct mproto_reply {
	int cmd;                   /* MPROTO_R_* */
	uint32_t index;            /* i, m: header index */
	const char *text;          /* y: SMTP reply; q: reason */
	const char *name;          /* h, i, m: header name (never empty) */
	const char *value;         /* h, i, m: header value */
	const char *addr;          /* + - 2 e: address */
	const char *args;          /* 2 e: ESMTP arguments, NULL if absent */
	const unsigned char *body; /* b: replacement body chunk */
	size_t body_len;
	uint32_t version; /* O: negotiation reply */
	uint32_t actions;
	uint32_t protocol;
	const char *macros[PROTO_M_COUNT]; /* O: per stage, NULL if not given */
	unsigned ignored_lists;             /* O: lists for unknown stages (skipped) */
	strbuf store;                       /* private: owns the bytes above */
} mproto_reply;

void mproto_reply_init(mproto_reply *r);
void mproto_reply_free(mproto_reply *r);

/*
 * mproto_frame: is there a complete packet at the start of buf? Returns 1
 * when there is, 0 when more bytes are needed, MPROTO_ERR_PROTO when the
 * length field is 0 or above max_len (use MPROTO_MAX_PACKET unless you know
 * better). Once the 4-byte length field is there and valid, *pkt_len is set
 * to the whole packet's size (length field included), even when returning 0.
 */
int mproto_frame(const unsigned char *buf, size_t len, uint32_t max_len, size_t *pkt_len,
                 strbuf *err);

/*
 * mproto_decode_reply: decode exactly one packet (length field included).
 * Returns 0, or -1 with the reason in err (err may be NULL).
 */
int mproto_decode_reply(const unsigned char *buf, size_t len, mproto_reply *out,
                        strbuf *err);

/*
 * mproto_reply_text_check: would Postfix accept this 'y' text? One or more
 * lines "ddd[ -]text" separated by CRLF, code starting with 4 or 5, '-' on
 * every line but the last, an enhanced status code (if any) of the same class.
 */
int mproto_reply_text_check(const char *text, strbuf *err);

/* ---- Names, for people ------------------------------------------------ */

const char *mproto_command_name(int cmd); /* "connect", ...; NULL if unknown */
const char *mproto_reply_name(int cmd);   /* "continue", ...; NULL if unknown */
const char *mproto_stage_name(int stage); /* PROTO_M_*: "connect", ... */
/* Append flag names separated by spaces ("NOHELO NR_HDR"); unknown bits as hex. */
void mproto_protocol_names(strbuf *out, uint32_t protocol);
void mproto_action_names(strbuf *out, uint32_t actions);
/*
 * Append one packet as printable text, e.g. "C [connect] 25 bytes: localhost\0"
 * (NUL as \0, other unprintable bytes as \xNN, at most max_bytes of data).
 * from_milter picks reply names ("c [continue]") over command names.
 */
void mproto_dump(strbuf *out, const unsigned char *pkt, size_t len, int from_milter,
                 size_t max_bytes);

/* ---- Connection --------------------------------------------------------- */

/* A socket a client can connect to; false with the reason in err. */
bool mproto_conn_spec(const char *text, sockspec *ss, strbuf *err);

typedef struct mproto_conn mproto_conn;

/* NULL on failure, reason in err. timeout_ms bounds connect and each I/O. */
mproto_conn *mproto_conn_open(const char *spec, int timeout_ms, strbuf *err);
void mproto_conn_close(mproto_conn *c);
void mproto_conn_set_timeout(mproto_conn *c, int timeout_ms);
/* Write all of buf (one or more packets). MPROTO_OK or an error status. */
int mproto_conn_write(mproto_conn *c, const void *buf, size_t len, strbuf *err);
/* Read one whole packet (length field included) into pkt (reset first). */
int mproto_conn_read(mproto_conn *c, strbuf *pkt, strbuf *err);
/* Read and decode one reply. */
int mproto_conn_read_reply(mproto_conn *c, strbuf *pkt, mproto_reply *r, strbuf *err);

#endif
