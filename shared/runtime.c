/* runtime - the state the daemon owns across reloads; see runtime.h. */
#include "config.h"

#include "runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "load-conf.h"
#include "history.h"
#include "log.h"
#include "metrics.h"

struct runtime {
	atomic_uint refs;
	pthread_mutex_t mu; /* everything below; dns written under it */
	bool configured;    /* cfg holds a snapshot's parameters */
	dnsbl_config cfg;   /* for the resolver's start */
	char *servers;      /* cfg.servers, our copy */
	bool dns_failed;    /* could not start with cfg: logged */
	_Atomic(dnsbl_ctx *) dns;
	atomic_int stress; /* enum stress_force */
	void (*on_block)(void *arg); /* runtime_on_block(): for the resolver */
	void *block_arg;
	load_levels *load; /* the own stress signal (load.h): counts survive reloads */
	bool load_follower; /* another process configures it */
	history *hist;          /* the client history; its thread starts on first use */
	history_provider hp;    /* over hist */
	atomic_bool history_on; /* history_store is set */
	scanners *scan; /* the content scanners: no thread, made at create */
};

static enum history_status
hp_lookup(void *self, const char *client_addr, long long deadline_ms, history_record *out)
{
	return history_lookup(self, client_addr, deadline_ms, out);
}

static void
hp_note(void *self, const char *client_addr, const history_delta *d)
{
	history_note(self, client_addr, d);
}

/* The history's parameters in a snapshot (the normal personality's). */
static void
history_config_of(const conf *c, history_config *hc)
{
	const struct conf_values *v = conf_personality(c, false);

	memset(hc, 0, sizeof *hc);
	hc->spec = v->history_store;
	hc->store.map_size = (unsigned long long)v->history_size;
	hc->store.max_age = (uint64_t)(v->history_known_time / 1000);
	hc->store.window_s = hc->store.max_age;
	hc->store.timeout_ms = v->history_store_timeout;
	hc->cache_size = (size_t)v->history_cache_size;
	hc->cache_ttl_ms = v->history_cache_time;
	hc->v6_prefix = (unsigned)v->history_ipv6_prefix;
	hc->queue_max = (size_t)v->history_queue_max;
}

static void
breaker_log(void *arg, const char *zone, bool suspended, unsigned timeouts)
{
	(void)arg;
	metrics_zone(zone, suspended);
	if (suspended)
		log_msg(LOG_WARNING,
		        "dnsbl zone %s suspended after %u lookups in a row without an "
		        "answer (timeouts, or no DNS server reachable)",
		        zone, timeouts);
	else
		log_msg(LOG_INFO, "dnsbl zone %s resumed", zone);
}

runtime *
runtime_create(void)
{
	runtime *rt = ms_xcalloc(1, sizeof *rt);

	atomic_init(&rt->refs, 1);
	pthread_mutex_init(&rt->mu, NULL);
	atomic_init(&rt->dns, NULL);
	atomic_init(&rt->stress, STRESS_FORCE_NONE);
	rt->load = load_create();
	rt->hist = history_create();
	rt->hp = (history_provider){"history", rt->hist, hp_lookup, hp_note};
	atomic_init(&rt->history_on, false);
	rt->scan = scanners_create();
	return rt;
}

void
runtime_ref(runtime *rt)
{
	if (rt != NULL)
		atomic_fetch_add(&rt->refs, 1);
}

void
runtime_unref(runtime *rt)
{
	if (rt == NULL || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	dnsbl_free(atomic_load(&rt->dns));
	history_free(rt->hist); /* writes what is queued first */
	scanners_free(rt->scan);
	free(rt->servers);
	load_free(rt->load);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
}

static void
count_query(void *arg, const char *zone, enum dnsbl_status status, bool cached)
{
	(void)arg;
	metrics_dns_query(zone, status, cached);
}

/* The resolver's parameters in a snapshot; servers points into it. */
static dnsbl_config
dns_config(const conf *c)
{
	const struct conf_values *v = conf_personality(c, false);

	return (dnsbl_config){
	        .servers = v->dns_servers,
	        .cache_size = (size_t)v->dns_cache_size,
	        .neg_ttl = 600,
	        .breaker_threshold = (unsigned)v->dnsbl_breaker_threshold,
	        .breaker_open_ms = (unsigned)v->dnsbl_breaker_time,
	        .on_breaker = breaker_log,
	        .on_query = count_query,
	};
}

/* The scanners' parameters in a snapshot: of the normal personality. */
static scanners_config
scan_config(const conf *c)
{
	const struct conf_values *v = conf_personality(c, false);

	return (scanners_config){
	        .endpoint = {v->clamd_socket, v->spamd_socket, v->rspamd_socket},
	        .max_connections = {(unsigned)v->clamd_max_connections,
	                            (unsigned)v->spamd_max_connections,
	                            (unsigned)v->rspamd_max_connections},
	        .breaker_threshold = (unsigned)v->scanner_breaker_threshold,
	        .breaker_ms = (unsigned)v->scanner_breaker_time,
	};
}

bool
runtime_configure(runtime *rt, const conf *c, strbuf *err)
{
	dnsbl_config cfg = dns_config(c);
	scanners_config scfg = scan_config(c);
	dnsbl_ctx *dns;
	bool ok;

	/* The scanners first: a reload they refuse changes nothing. */
	if (!scanners_configure(rt->scan, &scfg, err))
		return false;
	pthread_mutex_lock(&rt->mu);
	dns = atomic_load(&rt->dns);
	ok = dns != NULL ? dnsbl_reconfigure(dns, &cfg, err)
	                 : dnsbl_check_servers(cfg.servers, err);
	if (ok) {
		free(rt->servers);
		rt->servers = ms_xstrdup(cfg.servers);
		rt->cfg = cfg;
		rt->cfg.servers = rt->servers;
		rt->configured = true;
		rt->dns_failed = false;
	}
	if (ok) {
		history_config hc;

		history_config_of(c, &hc);
		history_configure(rt->hist, &hc);
		atomic_store(&rt->history_on, hc.spec[0] != '\0');
	}
	pthread_mutex_unlock(&rt->mu);
	if (ok && !rt->load_follower)
		load_conf_apply(rt->load, c, NULL, budget_now_ms());
	return ok;
}

void
runtime_load_follow(runtime *rt)
{
	rt->load_follower = true;
}

load_levels *
runtime_load(runtime *rt)
{
	return rt != NULL ? rt->load : NULL;
}

const dns_provider *
runtime_dns(runtime *rt)
{
	dnsbl_ctx *dns;

	if (rt == NULL)
		return NULL;
	if ((dns = atomic_load(&rt->dns)) != NULL)
		return dnsbl_provider(dns);
	pthread_mutex_lock(&rt->mu);
	dns = atomic_load(&rt->dns);
	if (dns == NULL && rt->configured && !rt->dns_failed) {
		strbuf err = STRBUF_INIT;

		rt->cfg.on_block = rt->on_block;
		rt->cfg.block_arg = rt->block_arg;

		dns = dnsbl_create(&rt->cfg, &err);
		if (dns == NULL) {
			/* Logged once; DNS checks are then skipped and say so. */
			rt->dns_failed = true;
			log_msg(LOG_ERR, "DNSBL resolver: %s", strbuf_str(&err));
		}
		atomic_store(&rt->dns, dns);
		strbuf_free(&err);
	}
	pthread_mutex_unlock(&rt->mu);
	return dns != NULL ? dnsbl_provider(dns) : NULL;
}

const scan_provider *
runtime_scan(runtime *rt)
{
	return rt != NULL ? scanners_provider(rt->scan) : NULL;
}

void
runtime_scan_stats(runtime *rt, enum scan_kind k, scanners_stats *out)
{
	memset(out, 0, sizeof *out);
	if (rt != NULL)
		scanners_get_stats(rt->scan, k, out);
}

void
runtime_will_block(runtime *rt)
{
	void (*fn)(void *arg) = NULL;
	void *arg = NULL;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	fn = rt->on_block;
	arg = rt->block_arg;
	pthread_mutex_unlock(&rt->mu);
	if (fn != NULL)
		fn(arg);
}

void
runtime_dns_stats(runtime *rt, dnsbl_stats *out)
{
	dnsbl_ctx *dns = rt != NULL ? atomic_load(&rt->dns) : NULL;

	memset(out, 0, sizeof *out);
	if (dns != NULL)
		dnsbl_get_stats(dns, out);
}

void
runtime_set_stress(runtime *rt, enum stress_force force)
{
	if (rt != NULL)
		atomic_store(&rt->stress, (int)force);
}

enum stress_force
runtime_stress(runtime *rt)
{
	return rt != NULL ? (enum stress_force)atomic_load(&rt->stress) : STRESS_FORCE_NONE;
}

void
runtime_on_block(runtime *rt, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&rt->mu);
	rt->on_block = fn;
	rt->block_arg = arg;
	pthread_mutex_unlock(&rt->mu);
}

const history_provider *
runtime_history(runtime *rt)
{
	return rt != NULL && atomic_load(&rt->history_on) ? &rt->hp : NULL;
}

void
runtime_history_stats(runtime *rt, history_stats *out)
{
	history_get_stats(rt != NULL ? rt->hist : NULL, out);
}

void
runtime_history_start(runtime *rt)
{
	if (rt != NULL)
		history_start(rt->hist);
}
