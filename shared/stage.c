/* stage - the stage table; see stage.h. */
#include "config.h"

#include "stage.h"

#include <stddef.h>
#include <string.h>

#include "conf.h"
#include "protocol.h"
#include "strbuf.h"

static const struct stage_row {
	stage_desc d;
	size_t budget_offset;
} stages[STAGE_N] = {
        [STAGE_CONNECT] = {{"connect", PROTO_P_NR_CONN, PROTO_P_NOCONNECT, false, true,
                            "connect_budget", PROTO_M_CONNECT, "milter_connect_macros"},
                           offsetof(struct conf_values, connect_budget)},
        [STAGE_HELO] = {{"helo", PROTO_P_NR_HELO, PROTO_P_NOHELO, false, true,
                         "helo_budget", PROTO_M_HELO, "milter_helo_macros"},
                        offsetof(struct conf_values, helo_budget)},
        [STAGE_MAIL] = {{"mail", PROTO_P_NR_MAIL, PROTO_P_NOMAIL, false, false,
                         "mail_budget", PROTO_M_MAIL, "milter_mail_macros"},
                        offsetof(struct conf_values, mail_budget)},
        [STAGE_RCPT] = {{"rcpt", PROTO_P_NR_RCPT, PROTO_P_NORCPT, false, false,
                         "rcpt_budget", PROTO_M_RCPT, "milter_rcpt_macros"},
                        offsetof(struct conf_values, rcpt_budget)},
        [STAGE_DATA] = {{"data", PROTO_P_NR_DATA, PROTO_P_NODATA, false, false,
                         "data_budget", PROTO_M_DATA, "milter_data_macros"},
                        offsetof(struct conf_values, data_budget)},
        /* One header is too small a unit for a budget of its own. */
        [STAGE_HEADER] = {{"header", PROTO_P_NR_HDR, PROTO_P_NOHDRS, true, false,
                           "eoh_budget", -1, NULL},
                          offsetof(struct conf_values, eoh_budget)},
        [STAGE_EOH] = {{"eoh", PROTO_P_NR_EOH, PROTO_P_NOEOH, true, false, "eoh_budget",
                        PROTO_M_EOH, "milter_end_of_header_macros"},
                       offsetof(struct conf_values, eoh_budget)},
        /* body_budget bounds the whole body, not each chunk (session.c). */
        [STAGE_BODY] = {{"body", PROTO_P_NR_BODY, PROTO_P_NOBODY, true, false,
                         "body_budget", -1, NULL},
                        offsetof(struct conf_values, body_budget)},
        [STAGE_EOM] = {{"eom", 0, 0, false, false, "eom_budget", PROTO_M_EOM,
                        "milter_end_of_data_macros"},
                       offsetof(struct conf_values, eom_budget)},
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
		if (strlen(stages[i].d.name) == len && strncmp(stages[i].d.name, name, len) == 0) {
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
