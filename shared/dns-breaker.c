/* dns-breaker - per-zone circuit breakers; see dns-breaker.h. */
#include "config.h"

#include "dns-breaker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

enum br_state { BR_CLOSED, BR_OPEN, BR_HALF };

struct zone {
	struct zone *next;
	enum br_state state;
	unsigned timeouts; /* consecutive */
	long long since;   /* OPEN: when it was suspended, or its probe failed */
	char name[];
};

struct dns_breaker {
	pthread_mutex_t mu; /* everything below */
	unsigned threshold, open_ms;
	struct zone *zones;
	dnsbl_breaker_fn on_breaker; /* set at create only */
	void *arg;
};

dns_breaker *
dns_breaker_create(unsigned threshold, unsigned open_ms, dnsbl_breaker_fn on_breaker,
                   void *arg)
{
	dns_breaker *br = ms_xcalloc(1, sizeof *br);

	pthread_mutex_init(&br->mu, NULL);
	br->threshold = threshold;
	br->open_ms = open_ms;
	br->on_breaker = on_breaker;
	br->arg = arg;
	return br;
}

void
dns_breaker_free(dns_breaker *br)
{
	if (br == NULL)
		return;
	while (br->zones) {
		struct zone *z = br->zones;

		br->zones = z->next;
		free(z);
	}
	pthread_mutex_destroy(&br->mu);
	free(br);
}

/* Under mu. */
static struct zone *
zone_get(dns_breaker *br, const char *name)
{
	struct zone *z;
	size_t len = strlen(name);

	for (z = br->zones; z; z = z->next)
		if (strcmp(z->name, name) == 0)
			return z;
	z = ms_xcalloc(1, sizeof *z + len + 1);
	memcpy(z->name, name, len + 1);
	z->next = br->zones;
	br->zones = z;
	return z;
}

static void
suspend(struct zone *z, long long now)
{
	z->state = BR_OPEN;
	z->since = now;
}

enum dns_admit
dns_breaker_admit(dns_breaker *br, const char *name)
{
	enum dns_admit r = DNS_ADMIT_PASS;

	pthread_mutex_lock(&br->mu);
	if (br->threshold > 0) {
		struct zone *z = zone_get(br, name);

		if (z->state == BR_HALF) {
			r = DNS_ADMIT_SKIP; /* its one probe is out */
		} else if (z->state == BR_OPEN) {
			if (budget_now_ms() < budget_deadline(z->since, br->open_ms)) {
				r = DNS_ADMIT_SKIP;
			} else {
				z->state = BR_HALF;
				r = DNS_ADMIT_PROBE;
			}
		}
	}
	pthread_mutex_unlock(&br->mu);
	return r;
}

void
dns_breaker_report(dns_breaker *br, const char *name, enum dns_report what, bool probe)
{
	bool suspended = false, resumed = false;
	unsigned count = 0;
	long long now = budget_now_ms();

	pthread_mutex_lock(&br->mu);
	if (br->threshold == 0) {
		pthread_mutex_unlock(&br->mu);
		return;
	}
	struct zone *z = zone_get(br, name);
	/* A probe sent before dns_breaker_reset() is an ordinary query now. */
	probe = probe && z->state == BR_HALF;
	switch (what) {
	case DNS_REP_ANSWER:
		z->timeouts = 0;
		/*
		 * Only the probe resumes a suspended zone. Any other query
		 * was sent before the zone was suspended, and its answer, told
		 * late (when its call ends), says nothing of the server now.
		 */
		if (probe) {
			z->state = BR_CLOSED;
			resumed = true;
		}
		break;
	case DNS_REP_TIMEOUT:
		z->timeouts++;
		if (probe) {
			suspend(z, now);
		} else if (z->state == BR_CLOSED && z->timeouts >= br->threshold) {
			suspend(z, now);
			suspended = true;
			count = z->timeouts;
		}
		break;
	case DNS_REP_ERROR:
		if (probe)
			suspend(z, now);
		break;
	case DNS_REP_CANCEL:
		/* The probe was not needed after all: the next query probes. */
		if (probe)
			suspend(z, now - br->open_ms);
		break;
	}
	pthread_mutex_unlock(&br->mu);
	if ((suspended || resumed) && br->on_breaker)
		br->on_breaker(br->arg, name, suspended, count);
}

void
dns_breaker_configure(dns_breaker *br, unsigned threshold, unsigned open_ms)
{
	pthread_mutex_lock(&br->mu);
	br->threshold = threshold;
	br->open_ms = open_ms;
	pthread_mutex_unlock(&br->mu);
}

void
dns_breaker_reset(dns_breaker *br)
{
	struct zone *resumed = NULL;

	pthread_mutex_lock(&br->mu);
	for (struct zone **pp = &br->zones; *pp;) {
		struct zone *z = *pp;

		if (z->state == BR_CLOSED) {
			z->timeouts = 0;
			pp = &z->next;
			continue;
		}
		/* Taken out to be reported without the lock; a new one is made
		   on the zone's next query. */
		*pp = z->next;
		z->next = resumed;
		resumed = z;
	}
	pthread_mutex_unlock(&br->mu);
	while (resumed) {
		struct zone *z = resumed;

		resumed = z->next;
		if (br->on_breaker)
			br->on_breaker(br->arg, z->name, false, 0);
		free(z);
	}
}

unsigned
dns_breaker_suspended(dns_breaker *br)
{
	unsigned n = 0;

	pthread_mutex_lock(&br->mu);
	for (struct zone *z = br->zones; z; z = z->next)
		n += z->state != BR_CLOSED;
	pthread_mutex_unlock(&br->mu);
	return n;
}
