/*
 * dnsbl-filter - Postfix's d.d.d.d filter of the A records a DNSBL returns
 *
 * SYNOPSIS
 *	f = dnsbl_filter_parse("127.0.0.[2..11]", &err);	at load time
 *	if (dnsbl_filter_match(f, addr)) ...	addr: 4 bytes, network order
 *	dnsbl_filter_free(f);
 *
 * DESCRIPTION
 *	The syntax of reject_rbl_client domain=d.d.d.d (postconf(5)): four
 *	fields separated by ".", each a decimal number 0..255, or a "[]"
 *	holding one or more ";"-separated numbers or number..number ranges:
 *	127.0.0.2, 127.0.0.[2..11], 127.0.[0..255].[2;4;8],
 *	127.0.0.[2;4..7;10]. As in Postfix 2.8+ (global/ip_match.c): a whole
 *	pattern inside one pair of [] is accepted too ("[127.0.0.2]"); a range
 *	must not run backwards; a "[]" cannot span fields or follow a number
 *	in the same field; no white space. Postfix's source comment shows
 *	"[2,4,6..8]" with commas, but its parser only takes ";": so do we.
 *
 *	A NULL filter matches every address.
 *
 * CONCURRENCY
 *	A filter is immutable once parsed: any thread may match it.
 *
 * DIAGNOSTICS
 *	dnsbl_filter_parse() returns NULL with a sentence appended to err
 *	that names the column and what was expected there.
 */
#ifndef MS_DNSBL_FILTER_H
#define MS_DNSBL_FILTER_H

#include <stdbool.h>

#include "strbuf.h"

typedef struct dnsbl_filter dnsbl_filter;

dnsbl_filter *dnsbl_filter_parse(const char *text, strbuf *err);
bool dnsbl_filter_match(const dnsbl_filter *f, const unsigned char addr[4]);
void dnsbl_filter_free(dnsbl_filter *f);

#endif
