/*
 * protocol - the milter protocol's flag values that the core relies on
 *
 * DESCRIPTION
 *	The negotiation words of milter protocol version 6: the actions a
 *	milter may take (PROTO_F_*, libmilter's SMFIF_*), the protocol flags
 *	(PROTO_P_*, libmilter's SMFIP_*: stages not sent, stages not answered)
 *	and the macro stages (PROTO_M_*, libmilter's SMFIM_*). The core
 *	(session, admission, stage) and the MTA-side client (mproto) use these,
 *	so neither needs libmilter's header; milter/callbacks.c, the one file
 *	that includes <libmilter/mfapi.h>, asserts at compile time that every
 *	value here equals libmilter's. See doc/ARCHITECTURE.md.
 */
#ifndef MS_PROTOCOL_H
#define MS_PROTOCOL_H

/* Actions the MTA allows (negotiation, second word). */
#define PROTO_F_ADDHDRS 0x00000001u
#define PROTO_F_CHGBODY 0x00000002u
#define PROTO_F_ADDRCPT 0x00000004u
#define PROTO_F_DELRCPT 0x00000008u
#define PROTO_F_CHGHDRS 0x00000010u
#define PROTO_F_QUARANTINE 0x00000020u
#define PROTO_F_CHGFROM 0x00000040u
#define PROTO_F_ADDRCPT_PAR 0x00000080u
#define PROTO_F_SETSYMLIST 0x00000100u
#define PROTO_F_ALL 0x000001ffu

/* Protocol flags (negotiation, third word). */
#define PROTO_P_NOCONNECT 0x00000001u /* don't send CONNECT */
#define PROTO_P_NOHELO 0x00000002u
#define PROTO_P_NOMAIL 0x00000004u
#define PROTO_P_NORCPT 0x00000008u
#define PROTO_P_NOBODY 0x00000010u
#define PROTO_P_NOHDRS 0x00000020u
#define PROTO_P_NOEOH 0x00000040u
#define PROTO_P_NR_HDR 0x00000080u /* no reply to HEADER */
#define PROTO_P_NOUNKNOWN 0x00000100u
#define PROTO_P_NODATA 0x00000200u
#define PROTO_P_SKIP 0x00000400u     /* MTA understands 's' */
#define PROTO_P_RCPT_REJ 0x00000800u /* also send rejected RCPTs */
#define PROTO_P_NR_CONN 0x00001000u
#define PROTO_P_NR_HELO 0x00002000u
#define PROTO_P_NR_MAIL 0x00004000u
#define PROTO_P_NR_RCPT 0x00008000u
#define PROTO_P_NR_DATA 0x00010000u
#define PROTO_P_NR_UNKN 0x00020000u
#define PROTO_P_NR_EOH 0x00040000u
#define PROTO_P_NR_BODY 0x00080000u
#define PROTO_P_HDR_LEADSPC 0x00100000u /* header values keep leading space */
#define PROTO_P_MDS_256K 0x10000000u    /* max data size 256 KiB - 1 */
#define PROTO_P_MDS_1M 0x20000000u      /* max data size 1 MiB - 1 */
#define PROTO_P_ALL 0x001fffffu         /* every v6 flag; what Postfix offers */

/* Macro stages, as numbered in a negotiation reply's macro lists. */
enum {
	PROTO_M_CONNECT = 0,
	PROTO_M_HELO = 1,
	PROTO_M_MAIL = 2,
	PROTO_M_RCPT = 3,
	PROTO_M_DATA = 4,
	PROTO_M_EOM = 5, /* note: EOM before EOH, as on the wire */
	PROTO_M_EOH = 6,
	PROTO_M_COUNT = 7
};
#endif
