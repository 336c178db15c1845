/* stage - the stage table; see stage.h. */
#include "config.h"

#include "stage.h"

#include <stddef.h>
#include <string.h>

#include "conf.h"
#include "protocol.h"
#include "strbuf.h"

#define AT(param) offsetof(struct conf_values, param)
/* The Postfix timeouts that bound a stage (doc/ARCHITECTURE.md, F9), by our names. */
#define COMMAND "milter_command_timeout"
#define CONTENT "milter_content_timeout"

/*
 * The stages that Postfix's smtpd sends (connect to data) are always
 * answered, never negotiated with PROTO_P_NR_*: smtpd's next packet comes
 * after the SMTP client's next command, and over TCP a packet left
 * unanswered holds that next one until our delayed ACK, 40 ms a message
 * (doc/ARCHITECTURE.md, F25). A reply is one small write. The content
 * stages that follow one another without the client (header, eoh, body)
 * keep theirs.
 */
static const struct stage_row {
	stage_desc d;
	size_t budget_offset;
	size_t timeout_offset; /* the d.timeout parameter's */
} stages[STAGE_N] = {
        [STAGE_CONNECT] = {{"connect", 0, PROTO_P_NOCONNECT, false, true,
                            "connect_budget", COMMAND, PROTO_M_CONNECT,
                            "milter_connect_macros"},
                           AT(connect_budget),
                           AT(milter_command_timeout)},
        [STAGE_HELO] = {{"helo", 0, PROTO_P_NOHELO, false, true,
                         "helo_budget", COMMAND, PROTO_M_HELO, "milter_helo_macros"},
                        AT(helo_budget),
                        AT(milter_command_timeout)},
        [STAGE_MAIL] = {{"mail", 0, PROTO_P_NOMAIL, false, false,
                         "mail_budget", COMMAND, PROTO_M_MAIL, "milter_mail_macros"},
                        AT(mail_budget),
                        AT(milter_command_timeout)},
        [STAGE_RCPT] = {{"rcpt", 0, PROTO_P_NORCPT, false, false,
                         "rcpt_budget", COMMAND, PROTO_M_RCPT, "milter_rcpt_macros"},
                        AT(rcpt_budget),
                        AT(milter_command_timeout)},
        [STAGE_DATA] = {{"data", 0, PROTO_P_NODATA, false, false,
                         "data_budget", COMMAND, PROTO_M_DATA, "milter_data_macros"},
                        AT(data_budget),
                        AT(milter_command_timeout)},
        /* One header is too small a unit for a budget of its own. */
        [STAGE_HEADER] = {{"header", PROTO_P_NR_HDR, PROTO_P_NOHDRS, true, false,
                           "eoh_budget", CONTENT, -1, NULL},
                          AT(eoh_budget),
                          AT(milter_content_timeout)},
        [STAGE_EOH] = {{"eoh", PROTO_P_NR_EOH, PROTO_P_NOEOH, true, false, "eoh_budget",
                        CONTENT, PROTO_M_EOH, "milter_end_of_header_macros"},
                       AT(eoh_budget),
                       AT(milter_content_timeout)},
        /* body_budget bounds the whole body, not each chunk (session.c). */
        [STAGE_BODY] = {{"body", PROTO_P_NR_BODY, PROTO_P_NOBODY, true, false,
                         "body_budget", CONTENT, -1, NULL},
                        AT(body_budget),
                        AT(milter_content_timeout)},
        [STAGE_EOM] = {{"eom", 0, 0, false, false, "eom_budget", CONTENT, PROTO_M_EOM,
                        "milter_end_of_data_macros"},
                       AT(eom_budget),
                       AT(milter_content_timeout)},
};

const stage_desc *
stage_get(enum stage stage)
{
	if ((unsigned)stage >= STAGE_N)
		ms_panic("no stage %d", (int)stage);
	return &stages[stage].d;
}

const char *
stage_name(enum stage stage)
{
	return (unsigned)stage < STAGE_N ? stages[stage].d.name : "?";
}

bool
stage_parse(const char *name, size_t len, enum stage *stage)
{
	for (int i = 0; i < STAGE_N; i++) {
		if (strlen(stages[i].d.name) == len &&
		    strncmp(stages[i].d.name, name, len) == 0) {
			*stage = (enum stage)i;
			return true;
		}
	}
	return false;
}

void
stage_list(strbuf *b)
{
	for (int i = 0; i < STAGE_N; i++)
		strbuf_put_item(b, (size_t)i, STAGE_N, stages[i].d.name);
}

long long
stage_budget(const struct conf_values *p, enum stage stage)
{
	(void)stage_get(stage);
	return *(const long long *)(const void *)((const char *)p +
	                                          stages[stage].budget_offset);
}

long long
stage_timeout(const struct conf_values *p, enum stage stage)
{
	(void)stage_get(stage);
	return *(const long long *)(const void *)((const char *)p +
	                                          stages[stage].timeout_offset);
}
