/* load-conf - load parameters from a snapshot; see load-conf.h. */
#include "config.h"

#include "load-conf.h"
#include "log.h"
#include "mastercf.h"
#include "metrics.h"
#include "stress.h"

#include <stdlib.h>
#include <string.h>

/* The stages whose durations are the latency source's input. */
static const enum stage latency_stages[] = {STAGE_CONNECT, STAGE_HELO, STAGE_MAIL};

static double bucket_ms[METRICS_N_BUCKETS];

static void
log_lines(int prio, const char *prefix, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		if (n > 0)
			log_msg(prio, "%s%.*s", prefix, (int)n, p);
		p += n;
		p += *p == '\n';
	}
}

/* service_limits = auto: from postconf, or the fallback. */
static void
auto_limits(const char *postconf, mastercf_limits_list *out)
{
	strbuf text = STRBUF_INIT, why = STRBUF_INIT, found = STRBUF_INIT;
	long long def = LOAD_FALLBACK_LIMIT;
	mastercf_services svc;

	if (!mastercf_read_local(postconf, &text, &def, &why)) {
		/* A notice, not a warning: a host without Postfix is no fault. */
		log_msg(LOG_NOTICE,
		        "service_limits = auto: %s; counting every session as smtpd "
		        "against %d (set service_limits)",
		        strbuf_str(&why), LOAD_FALLBACK_LIMIT);
		out->v = NULL;
		out->n = 0;
		out->v = ms_xrealloc(out->v, sizeof *out->v);
		out->v[0].service = ms_xstrdup(LOAD_DEFAULT_SERVICE);
		out->v[0].limit = LOAD_FALLBACK_LIMIT;
		out->n = 1;
		goto done;
	}
	mastercf_parse(text.s != NULL ? text.s : "", text.len, def, &svc);
	mastercf_limits(&svc, out, &found);
	log_lines(LOG_INFO, "service_limits = auto: ", strbuf_str(&found));
	if (svc.n == 0)
		log_msg(LOG_NOTICE, "service_limits = auto: postconf -M shows no smtpd "
		                     "service: the sessions source counts nothing");
	mastercf_services_free(&svc);
done:
	strbuf_free(&text);
	strbuf_free(&why);
	strbuf_free(&found);
}

/* A list given by hand: names master.cf does not send are a warning. */
static void
check_names(const conf *c, const char *postconf, const mastercf_limits_list *given)
{
	strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	long long def = LOAD_FALLBACK_LIMIT;
	mastercf_services svc;
	const char *where = conf_param_origin(c, "service_limits");

	if (!mastercf_read_local(postconf, &text, &def, &why)) {
		log_debug(1, "service_limits: not checked against master.cf: %s",
		          strbuf_str(&why));
		goto done;
	}
	mastercf_parse(text.s != NULL ? text.s : "", text.len, def, &svc);
	for (size_t i = 0; i < given->n; i++) {
		const char *name = given->v[i].service;
		bool known = strcmp(name, LOAD_DEFAULT_SERVICE) == 0;

		for (size_t k = 0; !known && k < svc.n; k++)
			known = svc.v[k].daemon_name != NULL &&
			        strcmp(svc.v[k].daemon_name, name) == 0;
		if (!known)
			log_msg(LOG_WARNING,
			        "%s: service_limits: no smtpd service in master.cf has "
			        "-o milter_macro_daemon_name=%s: its sessions count as %s",
			        where != NULL ? where : "service_limits", name,
			        LOAD_DEFAULT_SERVICE);
	}
	mastercf_services_free(&svc);
done:
	strbuf_free(&text);
	strbuf_free(&why);
}

void
load_conf_apply(load_levels *l, const conf *c, const char *postconf, long long now)
{
	const struct conf_values *v = conf_personality(c, false);
	const char *sources = conf_param_text(c, false, "stress_sources");
	const char *limits = conf_param_text(c, false, "service_limits");
	mastercf_limits_list list = {NULL, 0};
	strbuf why = STRBUF_INIT;
	unsigned mask = 0;
	bool is_auto = false;
	load_params cfg;
	load_limit *limits_v;

	for (unsigned i = 0; i < METRICS_N_BUCKETS; i++)
		bucket_ms[i] = metrics_bucket_le[i] * 1000.0;
	/* both were validated at load_levels */
	(void)stress_sources_parse(sources != NULL ? sources : "", &mask, &why);
	if (mask & STRESS_USE_SESSIONS) {
		(void)mastercf_parse_limits(limits != NULL ? limits : "auto", &is_auto, &list,
		                            &why);
		if (is_auto)
			auto_limits(postconf, &list);
		else
			check_names(c, postconf, &list);
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.enabled[LOAD_SESSIONS] = (mask & STRESS_USE_SESSIONS) != 0;
	cfg.enabled[LOAD_LATENCY] = (mask & STRESS_USE_LATENCY) != 0;
	limits_v = ms_xcalloc(list.n + 1, sizeof *limits_v);
	for (size_t i = 0; i < list.n; i++)
		limits_v[i] = (load_limit){list.v[i].service, list.v[i].limit};
	cfg.limits = limits_v;
	cfg.n_limits = list.n;
	cfg.enter = v->stress_enter;
	cfg.leave = v->stress_leave;
	cfg.hold_ms = v->stress_hold;
	cfg.latency_ms = (mask & STRESS_USE_LATENCY) ? v->stress_latency : 0;
	cfg.bucket_ms = bucket_ms;
	cfg.n_buckets = METRICS_N_BUCKETS;
	load_configure(l, &cfg, now);
	free(limits_v);
	mastercf_limits_free(&list);
	strbuf_free(&why);
}

void
load_conf_tick(load_levels *l, long long now)
{
	unsigned long long counts[METRICS_N_BUCKETS + 1];

	memset(counts, 0, sizeof counts);
	for (size_t i = 0; i < sizeof latency_stages / sizeof latency_stages[0]; i++)
		metrics_stage_counts(latency_stages[i], counts);
	load_latency_tick(l, counts, now);
}
