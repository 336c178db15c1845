/* history-lmdb - the LMDB history store (lmdb:PATH); see history-store.h. */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history-store.h"

typedef struct lstore {
	history_store base;
	MDB_env *env;
	MDB_dbi dbi;
	char *path;
	bool read_only;
	size_t map_size;   /* bytes */
	size_t resweep_at; /* clients: no sweep for room below this many */
} lstore;

static void
lmdb_error(strbuf *why, const lstore *l, const char *what, int rc)
{
	strbuf_printf(why, "lmdb %s: %s: %s", l->path, what, mdb_strerror(rc));
}

/* The errors that mean the file is not a usable LMDB file. */
static bool
unusable(int rc)
{
	return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
	       rc == MDB_PANIC || rc == EACCES || rc == EPERM;
}

static int
env_open(lstore *l, const history_store_opts *o)
{
	unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | (l->read_only ? MDB_RDONLY : 0);
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_env_create(&l->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_mapsize(l->env, (size_t)o->map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(l->env, 1024)) != 0 ||
	    (rc = mdb_env_open(l->env, l->path, flags, 0640)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(l->env, NULL, l->read_only ? MDB_RDONLY : 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, NULL, 0, &l->dbi)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(l->env);
	l->env = NULL;
	return rc;
}

/* The damaged file out of the way: PATH.corrupt.UNIXTIME; its lock goes. */
static bool
move_aside(lstore *l, strbuf *why, strbuf *moved)
{
	strbuf to = STRBUF_INIT, lock = STRBUF_INIT;
	bool ok;

	strbuf_printf(&to, "%s.corrupt.%lld", l->path, (long long)time(NULL));
	strbuf_printf(&lock, "%s-lock", l->path);
	ok = rename(l->path, to.s) == 0;
	if (ok) {
		unlink(lock.s);
		if (moved != NULL)
			strbuf_printf(moved, "moved aside to %s", to.s);
	} else {
		strbuf_printf(why, "; cannot move it aside to %s: %s", to.s, strerror(errno));
	}
	strbuf_free(&to);
	strbuf_free(&lock);
	return ok;
}

static int
l_get(history_store *st, const char *key, history_record *out, strbuf *why)
{
	lstore *l = (lstore *)st;
	MDB_val k = {strlen(key), (void *)key}, v;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0) {
		lmdb_error(why, l, "read", rc);
		return -1;
	}
	rc = mdb_get(txn, l->dbi, &k, &v);
	if (rc == 0 && !history_record_decode(v.mv_data, v.mv_size, out, why)) {
		strbuf_printf(why, " (key %s)", key);
		rc = -1;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		lmdb_error(why, l, "read", rc);
		rc = -1;
	}
	mdb_txn_abort(txn);
	return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

static int
put_record(lstore *l, MDB_txn *txn, const char *key, const history_record *r)
{
	unsigned char buf[HISTORY_RECORD_SIZE];
	MDB_val k = {strlen(key), (void *)key}, v = {sizeof buf, buf};

	history_record_encode(r, buf);
	return mdb_put(txn, l->dbi, &k, &v, 0);
}

static int
update_txn(lstore *l, const char *const *keys, const history_delta *d, size_t n,
           uint64_t now, const history_store_opts *o, history_record *out)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		MDB_val k = {strlen(keys[i]), (void *)keys[i]}, v;
		strbuf bad = STRBUF_INIT;

		memset(&out[i], 0, sizeof out[i]);
		rc = mdb_get(txn, l->dbi, &k, &v);
		if (rc == 0 && !history_record_decode(v.mv_data, v.mv_size, &out[i], &bad))
			memset(&out[i], 0, sizeof out[i]); /* damaged: starts again */
		strbuf_free(&bad);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		history_record_add(&out[i], &d[i], now, o->window_s);
		if ((rc = put_record(l, txn, keys[i], &out[i])) != 0)
			break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

static long sweep_older(lstore *l, uint64_t oldest, size_t at_oldest, strbuf *why);
static long sweep_oldest_share(lstore *l, unsigned percent, strbuf *why);

/*
 * Whether the clients' pages fill more than 85 % of the file, and how many
 * clients it holds. The rest is the room a sweep needs: LMDB copies every
 * page it changes, deletions too, so a file that is full to the last page
 * cannot even be swept.
 */
static bool
nearly_full(lstore *l, size_t *entries)
{
	MDB_txn *txn;
	MDB_stat st;
	bool full = false;

	*entries = 0;
	if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	if (mdb_stat(txn, l->dbi, &st) == 0) {
		size_t used = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;

		full = used * st.ms_psize / 85 > l->map_size / 100;
		*entries = st.ms_entries;
	}
	mdb_txn_abort(txn);
	return full;
}

static bool
l_update(history_store *st, const char *const *keys, const history_delta *d, size_t n,
         uint64_t now, const history_store_opts *o, history_record *out, strbuf *why)
{
	lstore *l = (lstore *)st;
	size_t entries;
	int rc;

	/* Nearly full: the quarter of the clients not seen for longest go. Their
	   pages stay (a page is merged only when nearly empty) and new clients
	   fill them, so the next sweep waits until there are as many clients
	   again as before this one. */
	if (nearly_full(l, &entries) && entries >= l->resweep_at) {
		strbuf ignored = STRBUF_INIT;

		l->resweep_at = entries;
		sweep_oldest_share(l, 25, &ignored);
		strbuf_free(&ignored);
	}
	rc = update_txn(l, keys, d, n, now, o, out);
	/* Full all the same (the batch was large): sweep, and try again. */
	for (int i = 0; i < 2 && rc == MDB_MAP_FULL; i++) {
		if (sweep_oldest_share(l, 25, why) > 0)
			rc = update_txn(l, keys, d, n, now, o, out);
	}
	if (rc != 0) {
		lmdb_error(why, l, "update", rc);
		return false;
	}
	return true;
}

static bool
l_put(history_store *st, const char *key, const history_record *r,
      const history_store_opts *o, strbuf *why)
{
	lstore *l = (lstore *)st;
	MDB_txn *txn;
	int rc;

	(void)o;
	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) == 0) {
		if ((rc = put_record(l, txn, key, r)) == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0)
		lmdb_error(why, l, "write", rc);
	return rc == 0;
}

static int
l_del(history_store *st, const char *key, strbuf *why)
{
	lstore *l = (lstore *)st;
	MDB_val k = {strlen(key), (void *)key};
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) == 0) {
		if ((rc = mdb_del(txn, l->dbi, &k, NULL)) == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		lmdb_error(why, l, "delete", rc);
		return -1;
	}
	return rc == 0;
}

static bool
l_each(history_store *st, history_each_fn fn, void *ctx, strbuf *why)
{
	lstore *l = (lstore *)st;
	MDB_txn *txn = NULL;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
		if (rc != 0 && txn != NULL)
			mdb_txn_abort(txn);
		lmdb_error(why, l, "dump", rc);
		return false;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		history_record r;
		strbuf bad = STRBUF_INIT, key = STRBUF_INIT;
		bool go = true;

		strbuf_append(&key, k.mv_data, k.mv_size);
		if (history_record_decode(v.mv_data, v.mv_size, &r, &bad))
			go = fn(ctx, strbuf_str(&key), &r);
		strbuf_free(&bad);
		strbuf_free(&key);
		if (!go)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		lmdb_error(why, l, "dump", rc);
		return false;
	}
	return true;
}

/*
 * Removes the clients last seen before oldest, at most at_oldest of those
 * last seen at oldest itself, and the records that do not decode. In
 * transactions of a bounded number of deletions: each needs free pages for
 * the copies of those it changes, and frees the old ones for the next.
 */
static long
sweep_older(lstore *l, uint64_t oldest, size_t at_oldest, strbuf *why)
{
	size_t chunk = l->map_size / 4096 / 64;
	strbuf from = STRBUF_INIT; /* the key the next transaction starts at */
	long n = 0;
	int rc;

	if (chunk < 16)
		chunk = 16;
	do {
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val k = {from.len, from.s}, v;
		size_t done = 0;
		bool more = false;

		if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
			break;
		if ((rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
			mdb_txn_abort(txn);
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, from.len > 0 ? MDB_SET_RANGE : MDB_FIRST);
		while (rc == 0) {
			history_record r;
			strbuf bad = STRBUF_INIT;
			bool drop = !history_record_decode(v.mv_data, v.mv_size, &r, &bad) ||
			            r.last_seen < oldest;

			if (!drop && r.last_seen == oldest && at_oldest > 0) {
				drop = true;
				at_oldest--;
			}
			strbuf_free(&bad);
			if (drop && (rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			done += drop;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			if (rc == 0 && done >= chunk) {
				strbuf_reset(&from);
				strbuf_append(&from, k.mv_data, k.mv_size);
				more = true;
				break;
			}
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			break;
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			break;
		n += (long)done;
		rc = more ? 0 : MDB_NOTFOUND;
	} while (rc == 0);
	strbuf_free(&from);
	if (rc != MDB_NOTFOUND) {
		lmdb_error(why, l, "sweep", rc);
		return n > 0 ? n : -1;
	}
	return n;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Removes the percent share of the clients not seen for the longest (at
 * least one). A share, not an age: the clients of a full file may all have
 * been seen within the last seconds (a flood of new addresses), and a sweep
 * by age would then take nearly all of them or none. The scan reads one
 * timestamp per client: 8 MB for a million.
 */
static long
sweep_oldest_share(lstore *l, unsigned percent, strbuf *why)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	uint64_t *seen, cut;
	size_t n = 0, drop, below = 0;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_stat(txn, l->dbi, &st)) != 0 ||
	    (rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
		if (rc != 0 && txn != NULL)
			mdb_txn_abort(txn);
		lmdb_error(why, l, "sweep", rc);
		return -1;
	}
	if (st.ms_entries == 0 || (seen = calloc(st.ms_entries, sizeof *seen)) == NULL) {
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
		return 0;
	}
	while (n < st.ms_entries && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		history_record r;
		strbuf bad = STRBUF_INIT;

		/* A record that does not decode goes anyway: it sorts first. */
		seen[n++] = history_record_decode(v.mv_data, v.mv_size, &r, &bad) ? r.last_seen : 0;
		strbuf_free(&bad);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	qsort(seen, n, sizeof *seen, cmp_u64);
	drop = n * percent / 100;
	if (drop == 0)
		drop = 1;
	cut = seen[drop - 1];
	while (below < drop && seen[below] < cut)
		below++;
	free(seen);
	long removed = sweep_older(l, cut, drop - below, why);

	if (removed > 0)
		l->base.evicted += (unsigned long long)removed;
	return removed;
}

static long
l_sweep(history_store *st, uint64_t now, const history_store_opts *o, strbuf *why)
{
	return sweep_older((lstore *)st, now > o->max_age ? now - o->max_age : 0, 0, why);
}

static void
l_close(history_store *st)
{
	lstore *l = (lstore *)st;

	if (l->env != NULL)
		mdb_env_close(l->env);
	free(l->path);
	free(l->base.spec);
	free(l);
}

static const history_store_ops lmdb_ops = {
        "lmdb", true, l_get, l_update, l_put, l_del, l_each, l_sweep, l_close,
};

history_store *
history_lmdb_open(const char *spec, const char *path, const history_store_opts *o,
                  strbuf *why, strbuf *why_moved)
{
	lstore *l = ms_xcalloc(1, sizeof *l);
	int rc;

	l->base.ops = &lmdb_ops;
	l->base.spec = ms_xstrdup(spec);
	l->path = ms_xstrdup(path);
	l->read_only = o->read_only;
	l->map_size = (size_t)o->map_size;
	rc = env_open(l, o);
	if (rc != 0 && unusable(rc) && !l->read_only) {
		strbuf first = STRBUF_INIT;

		lmdb_error(&first, l, "open", rc);
		if (move_aside(l, &first, why_moved)) {
			if (why_moved != NULL) {
				strbuf_puts(why_moved, " (");
				strbuf_puts(why_moved, strbuf_str(&first));
				strbuf_puts(why_moved, "); a fresh one is created");
			}
			rc = env_open(l, o);
		} else {
			strbuf_puts(why, strbuf_str(&first));
			strbuf_free(&first);
			l_close(&l->base);
			return NULL;
		}
		strbuf_free(&first);
	}
	if (rc != 0) {
		lmdb_error(why, l, "open", rc);
		l_close(&l->base);
		return NULL;
	}
	return &l->base;
}
