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

static long sweep_older(lstore *l, uint64_t oldest, strbuf *why);

static bool
l_update(history_store *st, const char *const *keys, const history_delta *d, size_t n,
         uint64_t now, const history_store_opts *o, history_record *out, strbuf *why)
{
	lstore *l = (lstore *)st;
	int rc = update_txn(l, keys, d, n, now, o, out);

	/* Full: the clients not seen for the longest go first, then once more. */
	for (uint64_t age = o->max_age / 2; rc == MDB_MAP_FULL && age > 0; age /= 2) {
		if (sweep_older(l, now > age ? now - age : 0, why) > 0)
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

/* Removes the clients last seen before oldest, and records that do not decode. */
static long
sweep_older(lstore *l, uint64_t oldest, strbuf *why)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	long n = 0;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0) {
		lmdb_error(why, l, "sweep", rc);
		return -1;
	}
	if ((rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		lmdb_error(why, l, "sweep", rc);
		return -1;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		history_record r;
		strbuf bad = STRBUF_INIT;
		bool drop = !history_record_decode(v.mv_data, v.mv_size, &r, &bad) ||
		            r.last_seen < oldest;

		strbuf_free(&bad);
		if (drop && (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		n += drop;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		lmdb_error(why, l, "sweep", rc);
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_error(why, l, "sweep", rc);
		return -1;
	}
	return n;
}

static long
l_sweep(history_store *st, uint64_t now, const history_store_opts *o, strbuf *why)
{
	return sweep_older((lstore *)st, now > o->max_age ? now - o->max_age : 0, why);
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
