/* test_batch.c: the daemon's door and the simulator's door into the one
 * batch runner make byte-identical decisions and Redis writes, against the
 * real Redis of the integration fixture (MOMENTD_IT_REDIS_PORT).
 *
 * The same input (profiles naming one shared contact point, late payments
 * that fire the default configuration's prepay_wallet campaign for every
 * customer, a re-published event and a redelivered offset) goes through
 *   A: the daemon's path: raw messages by topic, parsed by the batch
 *      (md_batch_add_message), decided at the wall clock it is given;
 *   B: the driver's path of simulate and backtest: events parsed by the
 *      test and profiles handed over as structures, decided at each input's
 *      own time;
 * each in a namespace of its own, in batches smaller than the input. The
 * delivered moments must be equal field by field (the payload's
 * emitted_at, the only thing the clock writes, masked) and every key of the
 * two namespaces equal byte for byte. The default configuration caps a
 * contact point at 6 contacts in 30 days: 8 customers sharing one number
 * must give 6 contacts, and every other one not in the holdout group a
 * cap_contact_point suppression, on both paths,
 * which the old driver (it never read contact points) did not. */
#include <criterion/criterion.h>
#include <valkey/valkey.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "rules.h"
#include "momentd/engine.h"

#include "batch.h"
#include "helpers.h"

#define T0 INT64_C(1772294400000) /* 2026-03-01T00:00:00+08:00 */
#define DAY INT64_C(86400000)
#define HOUR INT64_C(3600000)
#define N_CUST 8
#define MAX_MSGS 64
#define MAX_MOMENTS 64

typedef struct msg {
    const char *topic;
    char key[64];
    char json[1024];
} msg;

typedef struct moment {
    char customer[64], trigger[64], topic[64];
    char payload[2048];
    int campaign, channel;
    bool holdout;
} moment;

typedef struct capture {
    moment m[MAX_MOMENTS];
    size_t n;
} capture;

static md_config *cfg;

/* The default configuration with moments fresh for ten years: the daemon
 * path decides at a wall clock 200 days after these fixed dates, and a
 * stale moment is never emitted (test_engine.c checks that guard). */
static md_config *long_fresh_config(void) {
    const char *pairs[] = {"\"fresh_for\": \"4h\"", "\"fresh_for\": \"3650d\"", "\"fresh_for\": \"24h\"", "\"fresh_for\": \"3650d\"",
                           "\"fresh_for\": \"2h\"", "\"fresh_for\": \"3650d\""};
    char err[512];
    md_config *c = th_config_edit(pairs, 3, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    return c;
}
static msg msgs[MAX_MSGS];
static size_t n_msgs;
static char url[128];

static md_err capture_deliver(void *ctx, const md_delivery *d, size_t n, char *err, size_t errsz) {
    (void)err;
    (void)errsz;
    capture *c = ctx;
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(c->n, MAX_MOMENTS);
        moment *m = &c->m[c->n++];
        snprintf(m->customer, sizeof(m->customer), "%s", d[i].customer_id);
        snprintf(m->trigger, sizeof(m->trigger), "%s", d[i].trigger_id);
        snprintf(m->topic, sizeof(m->topic), "%s", d[i].topic);
        cr_assert_lt(d[i].len, sizeof(m->payload));
        snprintf(m->payload, sizeof(m->payload), "%.*s", (int)d[i].len, d[i].payload);
        /* The clock's one trace: emitted_at. */
        char *e = strstr(m->payload, "\"emitted_at\":\"");
        cr_assert(e, "no emitted_at in %s", m->payload);
        for (e += 14; *e && *e != '"'; e++) *e = '#';
        m->campaign = d[i].campaign;
        m->channel = d[i].channel;
        m->holdout = d[i].holdout;
    }
    return MD_ERR_OK;
}

static void add(const char *topic, const char *key, const char *json) {
    cr_assert_lt(n_msgs, MAX_MSGS);
    msgs[n_msgs].topic = topic;
    snprintf(msgs[n_msgs].key, sizeof(msgs[n_msgs].key), "%s", key);
    snprintf(msgs[n_msgs].json, sizeof(msgs[n_msgs].json), "%s", json);
    n_msgs++;
}

static void payment(const char *cid, const char *eid, int64_t ts, int balance) {
    char j[1024];
    snprintf(j, sizeof(j),
             "{\"event_id\":\"%s\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%" PRId64
             ",\"amount\":100,\"channel\":\"bank\",\"kind\":\"bill\",\"late\":true,\"balance_after\":%d}",
             eid, cid, ts, balance);
    add(cfg->kafka.topic_payments, cid, j);
}

/* The input, in the order a partition would deliver it: each customer's
 * payments an hour after the one before's, the first customer's at
 * first_hour (local time). */
static void build_input(int first_hour) {
    n_msgs = 0;
    char cid[N_CUST][32], eid[64];
    for (int c = 0; c < N_CUST; c++) {
        snprintf(cid[c], sizeof(cid[c]), "batch-c%d", c);
        add(cfg->kafka.topic_profiles, cid[c], "{\"customer_type\":\"resident\",\"contact_point\":\"13900000001\"}");
    }
    static const int balance[] = {80, 60, 50};
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < N_CUST; c++) {
            snprintf(eid, sizeof(eid), "%.32s-%d", cid[c], k);
            payment(cid[c], eid, T0 + k * 30 * DAY + (first_hour + c % 8) * HOUR, balance[k]);
        }
    /* The same event re-published under a new offset: counted once. */
    snprintf(eid, sizeof(eid), "%.32s-%d", cid[0], 2);
    payment(cid[0], eid, T0 + 60 * DAY + first_hour * HOUR, 50);
}

/* The fixture's Redis (url) and the configuration every test here runs. */
static void use_fixture(void) {
    const char *port = getenv("MOMENTD_IT_REDIS_PORT");
    cr_assert(port, "MOMENTD_IT_REDIS_PORT is not set (run through ctest)");
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/0", port);
    cfg = long_fresh_config();
}

static md_store *store_for(const char *prefix) {
    char err[512];
    md_cfg_redis rc = {.url = url, .key_prefix = (char *)prefix, .timeout_ms = 2000, .retry_backoff_ms = 100};
    md_store *s = md_store_new(&rc, err, sizeof(err));
    cr_assert(s, "%s", err);
    cr_assert_eq(md_store_connect(s, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(md_store_wipe(s, err, sizeof(err)), MD_ERR_OK, "%s", err);
    return s;
}

/* Path A: what `momentd run` does with each polled message. With
 * restarting, a new batch is made for every run, as after a restart between
 * two batches: whatever a batch keeps in memory (the contact points' state
 * among it) must come from Redis, not from the run before. */
static void run_daemon_path(md_store *s, capture *out, md_counters *n, bool restarting) {
    char err[512], detail[64];
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = out};
    const int64_t wall = T0 + 200 * DAY;
    md_batch *b = NULL;
    for (size_t i = 0; i < n_msgs; i++) {
        if (b && md_batch_full(b)) {
            cr_assert_eq(md_batch_run(b, wall, err, sizeof(err)), MD_ERR_OK, "%s", err);
            if (restarting) {
                md_batch_destroy(b);
                b = NULL;
            }
        }
        if (!b) cr_assert(b = md_batch_new(cfg, s, 7, MD_BATCH_CLOCK_WALL, &hooks, n, NULL));
        md_message m = {msgs[i].topic, 0, (int64_t)i, msgs[i].key, strlen(msgs[i].key), msgs[i].json, strlen(msgs[i].json)};
        const char *reason = NULL;
        cr_assert_eq(md_batch_add_message(b, &m, wall, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s %s", reason, detail);
    }
    cr_assert_eq(md_batch_run(b, wall, err, sizeof(err)), MD_ERR_OK, "%s", err);
    md_batch_destroy(b);
}

/* Path B: what simulate and backtest do: structures in, input time. */
static void run_driver_path(md_store *s, capture *out, md_counters *n) {
    char err[512];
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = out};
    md_batch *b = md_batch_new(cfg, s, 7, MD_BATCH_CLOCK_INPUT, &hooks, n, NULL);
    md_event_limits lim = {1 << 20, 0, 64, 16};
    md_event_parser *p = md_event_parser_new(&lim);
    cr_assert(b && p);
    for (size_t i = 0; i < n_msgs; i++) {
        cr_assert_eq(md_batch_make_room(b, err, sizeof(err)), MD_ERR_OK, "%s", err);
        md_source src = {msgs[i].topic, 0, (int64_t)i};
        if (msgs[i].topic == cfg->kafka.topic_profiles) {
            cr_assert_eq(md_batch_add_profile(b, msgs[i].key, msgs[i].json, &src, err, sizeof(err)), MD_ERR_OK, "%s", err);
            continue;
        }
        md_parse_result res;
        if (msgs[i].topic == cfg->kafka.topic_outcomes) {
            md_outcome oc;
            cr_assert_eq(md_outcome_parse(p, msgs[i].json, strlen(msgs[i].json), NULL, 0, INT64_MAX / 2, &oc, &res), MD_ERR_OK, "%s",
                         res.detail);
            cr_assert_eq(md_batch_add_outcome(b, &oc, &src), MD_ERR_OK);
            continue;
        }
        md_event ev;
        cr_assert_eq(md_event_parse(p, msgs[i].json, strlen(msgs[i].json), NULL, 0, INT64_MAX / 2, &ev, &res), MD_ERR_OK, "%s",
                     res.detail);
        cr_assert_eq(md_batch_add_event(b, &ev, &src), MD_ERR_OK);
    }
    cr_assert_eq(md_batch_run(b, 0, err, sizeof(err)), MD_ERR_OK, "%s", err);
    md_batch_destroy(b);
    md_event_parser_destroy(p);
}

static valkeyReply *cmd(md_store *s, int argc, const char **argv) {
    size_t lens[8];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    valkeyReply *r = md_store_command_argv(s, argc, argv, lens);
    cr_assert(r, "redis command %s failed", argv[0]);
    return r;
}

/* Both namespaces wiped and their stores let go. */
static void drop_stores(md_store *a, md_store *b) {
    char err[256];
    md_store_wipe(a, err, sizeof(err));
    md_store_wipe(b, err, sizeof(err));
    md_store_destroy(a);
    md_store_destroy(b);
}

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every key of the namespace, each as "name-without-prefix\n" followed by
 * its sorted "field=value" lines, sorted: one string to compare. */
static char *dump_namespace(md_store *s, const char *prefix) {
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s:*", prefix);
    const char *scan[] = {"KEYS", pattern};
    valkeyReply *keys = cmd(s, 2, scan);
    cr_assert_eq(keys->type, VALKEY_REPLY_ARRAY);
    size_t nk = keys->elements;
    char **parts = calloc(nk + 1, sizeof(char *));
    size_t total = 1;
    for (size_t k = 0; k < nk; k++) {
        /* Hashes field by field; the schedule's due set member by score. */
        const char *type[] = {"TYPE", keys->element[k]->str};
        valkeyReply *t = cmd(s, 2, type);
        bool zset = t->type == VALKEY_REPLY_STATUS && strcmp(t->str, "zset") == 0;
        freeReplyObject(t);
        const char *hgetall[] = {"HGETALL", keys->element[k]->str};
        const char *zrange[] = {"ZRANGE", keys->element[k]->str, "0", "-1", "WITHSCORES"};
        valkeyReply *h = zset ? cmd(s, 5, zrange) : cmd(s, 2, hgetall);
        cr_assert_eq(h->type, VALKEY_REPLY_ARRAY, "%s is neither a hash nor the due set", keys->element[k]->str);
        size_t nf = h->elements / 2;
        char **lines = calloc(nf + 1, sizeof(char *));
        size_t len = strlen(keys->element[k]->str) + 2;
        for (size_t f = 0; f < nf; f++) {
            size_t l = h->element[2 * f]->len + h->element[2 * f + 1]->len + 3;
            lines[f] = malloc(l);
            snprintf(lines[f], l, "%s=%s\n", h->element[2 * f]->str, h->element[2 * f + 1]->str);
            len += l;
        }
        qsort(lines, nf, sizeof(char *), by_str);
        parts[k] = calloc(len, 1);
        strcat(parts[k], keys->element[k]->str + strlen(prefix));
        strcat(parts[k], "\n");
        for (size_t f = 0; f < nf; f++) {
            strcat(parts[k], lines[f]);
            free(lines[f]);
        }
        free(lines);
        total += strlen(parts[k]);
        freeReplyObject(h);
    }
    qsort(parts, nk, sizeof(char *), by_str);
    char *all = calloc(total, 1);
    for (size_t k = 0; k < nk; k++) {
        strcat(all, parts[k]);
        free(parts[k]);
    }
    free(parts);
    freeReplyObject(keys);
    return all;
}

typedef struct lines {
    size_t n;
    char *items[256];
} lines;

static void add_line(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    lines *l = ctx;
    cr_assert_lt(l->n, 256);
    char *item = malloc(fl + vl + 3);
    snprintf(item, fl + vl + 3, "%.*s=%.*s\n", (int)fl, f, (int)vl, v);
    l->items[l->n++] = item;
}

static char *joined(lines *l) {
    qsort(l->items, l->n, sizeof(char *), by_str);
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++) len += strlen(l->items[i]);
    char *all = calloc(len, 1);
    for (size_t i = 0; i < l->n; i++) {
        strcat(all, l->items[i]);
        free(l->items[i]);
    }
    return all;
}

/* The cache's entry for customer id, if any, field for field what Redis has. */
static void cached_matches_redis(md_store *s, const char *prefix, const char *id) {
    lines mine = {0}, redis = {0};
    if (!md_store_cache_each(s, id, add_line, &mine)) return;
    char key[128];
    snprintf(key, sizeof(key), "%s:{%s}", prefix, id);
    const char *argv[] = {"HGETALL", key};
    valkeyReply *h = cmd(s, 2, argv);
    for (size_t f = 0; f + 1 < h->elements; f += 2)
        add_line(&redis, h->element[f]->str, h->element[f]->len, h->element[f + 1]->str, h->element[f + 1]->len);
    freeReplyObject(h);
    char *a = joined(&mine), *b = joined(&redis);
    cr_assert_str_eq(a, b, "%s: the cache holds something else than Redis", id);
    free(a);
    free(b);
}

/* The window of name for customer id, as Redis holds it, at t. */
static int64_t stored_window(md_store *s, const char *id, const char *name, int64_t t) {
    char err[256];
    md_cstate *cs = md_cstate_new(cfg);
    const char *ids[] = {id};
    cr_assert_eq(md_store_read_customers(s, 1, ids, &cs, NULL, NULL, err, sizeof(err)), MD_ERR_OK, "%s", err);
    int w = -1;
    for (size_t i = 0; i < cfg->n_windows; i++)
        if (strcmp(cfg->windows[i].name, name) == 0) w = (int)i;
    cr_assert_geq(w, 0, "no window %s", name);
    int64_t v = md_cstate_window_raw(cs, w, t);
    md_cstate_destroy(cs);
    return v;
}

Test(batch, daemon_and_driver_paths_decide_and_write_byte_identically) {
    use_fixture();
    build_input(10);
    char pa[64], pb[64];
    snprintf(pa, sizeof(pa), "batch-a-%ld", (long)time(NULL));
    snprintf(pb, sizeof(pb), "batch-b-%ld", (long)time(NULL));
    md_store *sa = store_for(pa), *sb = store_for(pb);
    capture *ca = calloc(1, sizeof(*ca)), *cb = calloc(1, sizeof(*cb));
    char err[256];
    md_counters na, nb;
    memset(&na, 0, sizeof(na));
    memset(&nb, 0, sizeof(nb));
    run_daemon_path(sa, ca, &na, false);
    run_driver_path(sb, cb, &nb);

    /* What the configuration promises, so that equality is not two empty runs. */
    cr_assert_eq(na.triggers, 6, "daemon path: %" PRIu64 " moments, expected 6 (8 customers, a contact point capped at 6)", na.triggers);
    /* Holdout decisions contact nobody and use no cap: everyone else past
     * the sixth contact is capped. */
    cr_assert_lt(na.holdouts, N_CUST - 6, "too many holdouts for the cap to bite: choose other customer ids");
    cr_assert_eq(na.suppressed[MD_SUPPRESS_CAP_CONTACT_POINT], N_CUST - 6 - na.holdouts,
                 "daemon path: %" PRIu64 " cap_contact_point suppressions with %" PRIu64 " holdouts",
                 na.suppressed[MD_SUPPRESS_CAP_CONTACT_POINT], na.holdouts);
    cr_assert_eq(na.duplicates, 1, "the re-published event counted as new");
    /* The driver path decided the same. */
    cr_assert_eq(nb.triggers, na.triggers);
    cr_assert_eq(nb.holdouts, na.holdouts);
    cr_assert_eq(nb.duplicates, na.duplicates);
    for (int r = 0; r < MD_SUPPRESS_COUNT; r++)
        cr_assert_eq(nb.suppressed[r], na.suppressed[r], "suppressed %s: driver %" PRIu64 ", daemon %" PRIu64, md_suppress_name(r),
                     nb.suppressed[r], na.suppressed[r]);
    cr_assert_eq(ca->n, na.triggers + na.holdouts);
    cr_assert_eq(cb->n, ca->n);
    for (size_t i = 0; i < ca->n; i++) {
        const moment *a = &ca->m[i], *b = &cb->m[i];
        cr_assert_str_eq(b->customer, a->customer);
        cr_assert_str_eq(b->trigger, a->trigger);
        cr_assert_str_eq(b->topic, a->topic);
        cr_assert_str_eq(b->payload, a->payload);
        cr_assert_eq(b->campaign, a->campaign);
        cr_assert_eq(b->channel, a->channel);
        cr_assert_eq(b->holdout, a->holdout);
        cr_assert_geq(a->campaign, 0, "a delivered moment names no configured campaign");
    }
    char *da = dump_namespace(sa, pa), *db = dump_namespace(sb, pb);
    cr_assert(strstr(da, ":{cp:13900000001}\n"), "no contact-point key written:\n%s", da);
    cr_assert_str_eq(db, da);
    /* And with a batch made anew for every run. */
    char pc[64];
    snprintf(pc, sizeof(pc), "batch-c-%ld", (long)time(NULL));
    md_store *sc = store_for(pc);
    capture *cc = calloc(1, sizeof(*cc));
    md_counters nc;
    memset(&nc, 0, sizeof(nc));
    run_daemon_path(sc, cc, &nc, true);
    cr_assert_eq(nc.triggers, na.triggers, "restarting between batches: %" PRIu64 " moments, %" PRIu64 " without", nc.triggers, na.triggers);
    cr_assert_eq(nc.suppressed[MD_SUPPRESS_CAP_CONTACT_POINT], na.suppressed[MD_SUPPRESS_CAP_CONTACT_POINT]);
    char *dc = dump_namespace(sc, pc);
    cr_assert_str_eq(dc, da);
    free(dc);
    md_store_wipe(sc, err, sizeof(err));
    md_store_destroy(sc);
    /* And with the state cache (what momentd run uses): customers seen again
     * in a later batch are read from memory, and everything written is the
     * same; every entry it holds is what Redis holds. */
    char pd[64];
    snprintf(pd, sizeof(pd), "batch-d-%ld", (long)time(NULL));
    md_store *sd = store_for(pd);
    cr_assert(md_store_cache_states(sd, 1 << 20));
    capture *cd = calloc(1, sizeof(*cd));
    md_counters nd;
    memset(&nd, 0, sizeof(nd));
    run_daemon_path(sd, cd, &nd, false);
    cr_assert_eq(nd.triggers, na.triggers, "with the cache: %" PRIu64 " moments, %" PRIu64 " without", nd.triggers, na.triggers);
    cr_assert_eq(nd.duplicates, na.duplicates);
    /* Delivered too, each as without the cache: a customer decoded from the
     * cache decodes into a state another customer of the batch gave back,
     * and one with a moment keeps its state until the moment is delivered. */
    cr_assert_eq(cd->n, ca->n, "with the cache: %zu moments delivered, %zu without", cd->n, ca->n);
    for (size_t i = 0; i < ca->n; i++) {
        cr_assert_str_eq(cd->m[i].customer, ca->m[i].customer);
        cr_assert_str_eq(cd->m[i].trigger, ca->m[i].trigger);
        cr_assert_str_eq(cd->m[i].payload, ca->m[i].payload);
    }
    /* Nothing else wrote: every customer decoded from the cache (with the
     * contact point noted before the decoding) matched, none read again. */
    cr_assert_eq(nd.conflicts, 0, "%" PRIu64 " batches read again", nd.conflicts);
    char *dd = dump_namespace(sd, pd);
    cr_assert_str_eq(dd, da);
    free(dd);
    md_hash_cache_stats st = md_store_cache_stats_get(sd);
    cr_assert_gt(st.hits, 0, "no customer was read from the cache: the comparison proved nothing");
    cr_assert_gt(st.entries, 0);
    for (int c = 0; c < N_CUST; c++) {
        char id[32];
        snprintf(id, sizeof(id), "batch-c%d", c);
        cached_matches_redis(sd, pd, id);
    }
    md_store_wipe(sd, err, sizeof(err));
    md_store_destroy(sd);
    free(cd);
    free(cc);
    free(da);
    free(db);
    drop_stores(sa, sb);
    free(ca);
    free(cb);
    md_config_destroy(cfg);
}

/* With the state cache, a customer decodes into a state that another of the
 * batch gave back once its requests were queued; one whose state the steps
 * after the apply still read keeps it. Payments in the late evening, decided
 * at their own time, make moments that the calls' quiet hours hold back:
 * each such customer's due time must reach the schedule, and everything
 * written must equal what the same input writes without the cache. */
Test(batch, states_passed_between_customers_keep_what_is_read_after_the_apply) {
    use_fixture();
    build_input(22);
    char pa[64], pb[64];
    snprintf(pa, sizeof(pa), "batch-qa-%ld", (long)time(NULL));
    snprintf(pb, sizeof(pb), "batch-qb-%ld", (long)time(NULL));
    md_store *sa = store_for(pa), *sb = store_for(pb);
    cr_assert(md_store_cache_states(sb, 1 << 20));
    capture *ca = calloc(1, sizeof(*ca)), *cb = calloc(1, sizeof(*cb));
    md_counters na, nb;
    memset(&na, 0, sizeof(na));
    memset(&nb, 0, sizeof(nb));
    run_driver_path(sa, ca, &na);
    run_driver_path(sb, cb, &nb);
    cr_assert_gt(na.suppressed[MD_SUPPRESS_QUIET_HOURS], 0, "no moment was held back by quiet hours: the test proved nothing");
    cr_assert_gt(md_store_cache_stats_get(sb).hits, 0, "no customer was read from the cache: the test proved nothing");
    for (int r = 0; r < MD_SUPPRESS_COUNT; r++)
        cr_assert_eq(nb.suppressed[r], na.suppressed[r], "suppressed %s: with the cache %" PRIu64 ", without %" PRIu64, md_suppress_name(r),
                     nb.suppressed[r], na.suppressed[r]);
    cr_assert_eq(nb.triggers, na.triggers);
    cr_assert_eq(cb->n, ca->n);
    char *da = dump_namespace(sa, pa), *db = dump_namespace(sb, pb);
    cr_assert(strstr(da, ":due\n"), "no due set written:\n%s", da);
    cr_assert_str_eq(db, da);
    free(da);
    free(db);
    drop_stores(sa, sb);
    free(ca);
    free(cb);
    md_config_destroy(cfg);
}

/* A profile redelivered after a newer one (a rebalance hands the partition
 * to a consumer that re-reads it) must not bring the old attributes back:
 * profiles carry an offset watermark like events. */
Test(batch, a_redelivered_older_profile_changes_nothing) {
    use_fixture();
    char prefix[64], err[512], detail[64];
    snprintf(prefix, sizeof(prefix), "batch-p-%ld", (long)time(NULL));
    md_store *s = store_for(prefix);
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_batch *b = md_batch_new(cfg, s, 8, MD_BATCH_CLOCK_WALL, &hooks, NULL, NULL);
    cr_assert(b);
    static const struct {
        int64_t offset;
        const char *json;
    } seq[] = {{5, "{\"segment\":\"old\"}"}, {6, "{\"segment\":\"new\"}"}, {5, "{\"segment\":\"old\"}"}};
    for (size_t i = 0; i < 3; i++) {
        md_message m = {cfg->kafka.topic_profiles, 0, seq[i].offset, "batch-p1", 8, seq[i].json, strlen(seq[i].json)};
        const char *reason = NULL;
        cr_assert_eq(md_batch_add_message(b, &m, T0, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s", detail);
        cr_assert_eq(md_batch_run(b, T0, err, sizeof(err)), MD_ERR_OK, "%s", err);
    }
    char key[128];
    snprintf(key, sizeof(key), "%s:{batch-p1}", prefix);
    /* segment is read by the rules: packed, under the letter the
     * namespace's registry gave its long code. */
    char meta[96], field[48], packed[32];
    md_profile_code("segment", packed);
    snprintf(field, sizeof(field), "code:a%s", packed);
    snprintf(meta, sizeof(meta), "%s:meta", prefix);
    const char *code[] = {"HGET", meta, field};
    valkeyReply *r = cmd(s, 3, code);
    cr_assert_eq(r->type, VALKEY_REPLY_STRING, "the registry gave segment a short code");
    cr_assert(r->len == 1 && r->str[0] >= 'A' && r->str[0] <= 'Y', "%s", r->str);
    snprintf(packed, sizeof(packed), "%snew", r->str);
    freeReplyObject(r);
    const char *hget[] = {"HGET", key, "P"};
    r = cmd(s, 3, hget);
    cr_assert_eq(r->type, VALKEY_REPLY_STRING);
    cr_assert_str_eq(r->str, packed, "the redelivered older profile came back");
    freeReplyObject(r);
    md_batch_destroy(b);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

/* The due set against the states it mirrors: a member whose customer's key
 * is gone (expired, or a crash between an apply and the set's update) is
 * removed by the pass that takes it, instead of being taken again every
 * second; a member not yet due stays. */
Test(batch, the_schedule_drops_members_whose_state_is_gone) {
    use_fixture();
    char prefix[64], err[512], key[128];
    snprintf(prefix, sizeof(prefix), "batch-d-%ld", (long)time(NULL));
    snprintf(key, sizeof(key), "%s:due", prefix);
    md_store *s = store_for(prefix);
    const char *zadd[] = {"ZADD", key, "1000", "gone-1", "2000", "gone-2", "9000000000000", "later-1"};
    freeReplyObject(cmd(s, 8, zadd));
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_batch *b = md_batch_new(cfg, s, 8, MD_BATCH_CLOCK_WALL, &hooks, NULL, NULL);
    cr_assert(b);
    size_t added = 0;
    cr_assert_eq(md_batch_add_due(b, T0, &added, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(added, 2, "the two members due by T0");
    cr_assert_eq(md_batch_run(b, T0, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(cap->n, 0, "no state, no moment");
    const char *zrange[] = {"ZRANGE", key, "0", "-1"};
    valkeyReply *r = cmd(s, 4, zrange);
    cr_assert_eq(r->type, VALKEY_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1, "the orphans are gone");
    cr_assert_str_eq(r->element[0]->str, "later-1");
    freeReplyObject(r);
    cr_assert_eq(md_batch_add_due(b, T0, &added, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(added, 0, "the next pass takes nothing");
    md_batch_destroy(b);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

/* Another writer changes a customer between the batch's read and its apply
 * (a rebalance in flight does this): the apply is refused for the stale
 * version, and the batch must read and decide again, not take the refusal
 * for done. A thread bumps the customer's version every millisecond while
 * 150 single-event batches run; every event must still be counted once. */
typedef struct bumper {
    const char *url, *key;
    volatile int stop;
    volatile int ready; /* its first bump is done */
} bumper;

static void *bump(void *arg) {
    bumper *bp = arg;
    valkeyContext *c = valkeyConnect("127.0.0.1", atoi(strrchr(bp->url, ':') + 1));
    for (int i = 0; i < 2000 && !bp->stop && c && !c->err; i++) {
        valkeyReply *r = valkeyCommand(c, "HINCRBY %s v 1", bp->key);
        if (r) freeReplyObject(r);
        bp->ready = 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (c) valkeyFree(c);
    return NULL;
}

/* Payment i of customer cid (event id "<eid_prefix><i>", a minute after the
 * one before) as message i of the payments topic, decided in a batch of its own. */
static void pay_and_run(md_batch *b, const char *cid, const char *eid_prefix, int i) {
    char json[512], err[512], detail[64];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"%s%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%" PRId64
             ",\"amount\":1,\"channel\":\"bank\",\"kind\":\"bill\",\"late\":false,\"balance_after\":900}",
             eid_prefix, i, cid, T0 + i * 60000);
    md_message m = {cfg->kafka.topic_payments, 0, i, cid, strlen(cid), json, strlen(json)};
    const char *reason = NULL;
    cr_assert_eq(md_batch_add_message(b, &m, 0, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s", detail);
    cr_assert_eq(md_batch_run(b, 0, err, sizeof(err)), MD_ERR_OK, "%s", err);
}

/* With the state cache or without: the other writer's version bump makes
 * a cached state stale, and the batch must still decide again from Redis. */
static void concurrent_writer(bool cache) {
    use_fixture();
    char prefix[64], err[512], key[128];
    snprintf(prefix, sizeof(prefix), "batch-v%d-%ld", cache, (long)time(NULL));
    md_store *s = store_for(prefix);
    if (cache) cr_assert(md_store_cache_states(s, 1 << 20));
    snprintf(key, sizeof(key), "%s:{batch-v1}", prefix);
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_counters n;
    memset(&n, 0, sizeof(n));
    md_batch *b = md_batch_new(cfg, s, 1, MD_BATCH_CLOCK_INPUT, &hooks, &n, NULL);
    cr_assert(b);
    bumper bp = {url, key, 0, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bump, &bp), 0);
    for (int i = 0; i < 2000 && !bp.ready; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert(bp.ready, "the other writer never wrote");
    /* At least 150 batches, and on until one met the other writer (a busy
     * machine may run many between two of its writes). */
    int events = 0;
    for (int i = 0; i < 1500 && (i < 150 || n.conflicts == 0); i++, events++) pay_and_run(b, "batch-v1", "v", i);
    bp.stop = 1;
    pthread_join(th, NULL);
    cr_assert_gt(n.conflicts, 0, "no batch met the other writer: the test proved nothing");
    cr_assert_eq(stored_window(s, "batch-v1", "payments_180d", T0 + events * 60000), events,
                 "%" PRIu64 " conflicts, but events were lost or doubled", n.conflicts);
    if (cache) cr_assert_gt(md_store_cache_stats_get(s).hits, 0, "no batch read the customer from the cache");
    md_batch_destroy(b);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

Test(batch, a_concurrent_writer_makes_the_batch_decide_again) { concurrent_writer(false); }

Test(batch, a_concurrent_writer_makes_the_batch_decide_again_from_a_cached_state) { concurrent_writer(true); }

/* What the refuse hook was given. */
typedef struct refusals {
    size_t n;
    char customer[MAX_MSGS][64];
    int64_t offset[MAX_MSGS];
    char why[MAX_MSGS][MD_STORE_REFUSAL_MAX];
} refusals;

typedef struct refuse_ctx {
    capture *moments;
    refusals *refused;
} refuse_ctx;

static md_err refuse_deliver(void *ctx, const md_delivery *d, size_t n, char *err, size_t errsz) {
    return capture_deliver(((refuse_ctx *)ctx)->moments, d, n, err, errsz);
}

static void capture_refusal(void *ctx, const md_source *src, const char *customer_id, const char *why) {
    refusals *r = ((refuse_ctx *)ctx)->refused;
    cr_assert_lt(r->n, MAX_MSGS);
    snprintf(r->customer[r->n], sizeof(r->customer[0]), "%s", customer_id);
    r->offset[r->n] = src->offset;
    snprintf(r->why[r->n], sizeof(r->why[0]), "%s", why);
    r->n++;
}

/* Messages [from, to) of the input through the daemon's path in batches of
 * 7, each message's offset its index. */
static void run_range(md_store *s, size_t from, size_t to, refuse_ctx *rc, md_counters *n) {
    char err[512], detail[64];
    md_batch_hooks hooks = {.deliver = refuse_deliver, .refuse = capture_refusal, .ctx = rc};
    const int64_t wall = T0 + 200 * DAY;
    md_batch *b = md_batch_new(cfg, s, 7, MD_BATCH_CLOCK_WALL, &hooks, n, NULL);
    cr_assert(b);
    for (size_t i = from; i < to; i++) {
        if (md_batch_full(b)) cr_assert_eq(md_batch_run(b, wall, err, sizeof(err)), MD_ERR_OK, "%s", err);
        md_message m = {msgs[i].topic, 0, (int64_t)i, msgs[i].key, strlen(msgs[i].key), msgs[i].json, strlen(msgs[i].json)};
        const char *reason = NULL;
        cr_assert_eq(md_batch_add_message(b, &m, wall, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s %s", reason, detail);
    }
    cr_assert_eq(md_batch_run(b, wall, err, sizeof(err)), MD_ERR_OK, "the run failed instead of setting the refused customer aside: %s",
                 err);
    md_batch_destroy(b);
}

static size_t moments_of(const capture *c, const char *customer) {
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) k += strcmp(c->m[i].customer, customer) == 0;
    return k;
}

static void redis_do(const char *fmt, const char *a, const char *b2) {
    const char *port = getenv("MOMENTD_IT_REDIS_PORT");
    valkeyContext *c = valkeyConnect("127.0.0.1", atoi(port));
    cr_assert(c && !c->err);
    valkeyReply *r = valkeyCommand(c, fmt, a, b2);
    cr_assert(r && r->type != VALKEY_REPLY_ERROR, "%s", r ? r->str : c->errstr);
    freeReplyObject(r);
    valkeyFree(c);
}

/* A key Redis refuses for one customer (here a string where its hash or its
 * outbox belongs: a foreign write, a bad restore; on a cluster, CROSSSLOT)
 * costs that customer's inputs, which go to the refuse hook with Redis's
 * reason, and nothing else: every other customer is decided and applied as
 * without it, in the same batches. Refused at the read (its hash) and at the
 * apply (its outbox, found only when a moment is written there): then
 * nothing of the refused apply is written. */
Test(batch, a_customer_whose_key_redis_refuses_is_set_aside_and_the_others_go_on) {
    use_fixture();
    char prefix[64], err[512], key[160];
    build_input(10);
    /* Who has moments without poison. */
    snprintf(prefix, sizeof(prefix), "batch-r0-%ld", (long)time(NULL));
    md_store *s = store_for(prefix);
    capture *base = calloc(1, sizeof(*base)), *got = calloc(1, sizeof(*got));
    refusals *ref = calloc(1, sizeof(*ref));
    md_counters n;
    memset(&n, 0, sizeof(n));
    refuse_ctx rc = {base, ref};
    run_range(s, 0, n_msgs, &rc, &n);
    cr_assert_eq(ref->n, 0, "refusals without poison");
    const char *read_victim = "batch-c1", *apply_victim = NULL;
    for (int c = 2; c < N_CUST && !apply_victim; c++) {
        static char cid[32];
        snprintf(cid, sizeof(cid), "batch-c%d", c);
        if (moments_of(base, cid) > 0) apply_victim = cid;
    }
    cr_assert(apply_victim, "no customer had a moment: the apply refusal cannot be tested");
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);

    snprintf(prefix, sizeof(prefix), "batch-r1-%ld", (long)time(NULL));
    s = store_for(prefix);
    memset(&n, 0, sizeof(n));
    rc.moments = got;
    run_range(s, 0, N_CUST, &rc, &n); /* the profiles: every customer's hash, its outbox marked empty */
    snprintf(key, sizeof(key), "%s:{%s}", prefix, read_victim);
    redis_do("DEL %s", key, "");
    redis_do("SET %s %s", key, "not-a-hash");
    snprintf(key, sizeof(key), "%s:{%s}:x", prefix, apply_victim);
    redis_do("SET %s %s", key, "not-a-hash");

    run_range(s, N_CUST, n_msgs, &rc, &n);

    /* Every input of the read victim went to the hook, and those of the
     * apply victim's batches that wrote a moment (the others applied). */
    size_t of_read = 0, of_apply = 0, refused_read = 0, refused_apply = 0;
    for (size_t i = N_CUST; i < n_msgs; i++) {
        of_read += strcmp(msgs[i].key, read_victim) == 0;
        of_apply += strcmp(msgs[i].key, apply_victim) == 0;
    }
    for (size_t i = 0; i < ref->n; i++) {
        refused_read += strcmp(ref->customer[i], read_victim) == 0;
        refused_apply += strcmp(ref->customer[i], apply_victim) == 0;
    }
    cr_assert_eq(refused_read, of_read, "%zu of the read victim's %zu inputs refused", refused_read, of_read);
    cr_assert(refused_apply >= 1 && refused_apply <= of_apply, "%zu of the apply victim's %zu inputs refused", refused_apply, of_apply);
    cr_assert_eq(n.refused, ref->n, "momentd_redis_refused_total says %" PRIu64 ", the hook saw %zu", n.refused, ref->n);
    for (size_t i = 0; i < ref->n; i++) {
        cr_assert(strcmp(ref->customer[i], read_victim) == 0 || strcmp(ref->customer[i], apply_victim) == 0, "%s refused",
                  ref->customer[i]);
        cr_assert_str_eq(msgs[ref->offset[i]].key, ref->customer[i], "the hook named another customer's message");
        cr_assert(strstr(ref->why[i], "WRONGTYPE"), "the reason does not say what Redis said: %s", ref->why[i]);
    }
    /* The others: the same moments as without poison. */
    for (int c = 0; c < N_CUST; c++) {
        char cid[32];
        snprintf(cid, sizeof(cid), "batch-c%d", c);
        bool victim = strcmp(cid, read_victim) == 0 || strcmp(cid, apply_victim) == 0;
        cr_assert_eq(moments_of(got, cid), victim ? 0 : moments_of(base, cid), "%s: %zu moments, %zu without poison", cid,
                     moments_of(got, cid), moments_of(base, cid));
    }
    /* The refused applies wrote nothing: the apply victim's payments are
     * those of its batches that applied. */
    /* (The re-published duplicate of batch-c0 is not the apply victim's.) */
    int64_t counted = stored_window(s, apply_victim, "payments_180d", T0 + 61 * DAY);
    cr_assert_eq(counted, (int64_t)(of_apply - refused_apply), "the apply victim counts %" PRId64 " payments; %zu of its %zu were refused",
                 counted, refused_apply, of_apply);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(base);
    free(got);
    free(ref);
    md_config_destroy(cfg);
}

/* A customer read from the cache whose input changes nothing on that state
 * (an outcome of a trigger the cached hash does not hold) is still checked
 * against Redis: another consumer wrote that trigger meanwhile, and the
 * outcome must find it, not be dropped as unknown. */
Test(batch, a_cached_state_with_nothing_to_write_is_checked_against_redis) {
    use_fixture();
    char prefix[64], err[512], key[160], detail[64];
    snprintf(prefix, sizeof(prefix), "batch-o-%ld", (long)time(NULL));
    md_store *s = store_for(prefix);
    cr_assert(md_store_cache_states(s, 1 << 20));
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_counters n;
    memset(&n, 0, sizeof(n));
    md_batch *b = md_batch_new(cfg, s, 4, MD_BATCH_CLOCK_INPUT, &hooks, &n, NULL);
    cr_assert(b);
    /* The second read caches the customer, the third is served from the cache. */
    for (int i = 0; i < 3; i++) pay_and_run(b, "batch-o1", "o", i);
    const char *reason = NULL;
    cr_assert_gt(md_store_cache_stats_get(s).hits, 0, "the customer was never served from the cache");
    /* Another consumer's trigger, written as its apply would (version +1). */
    snprintf(key, sizeof(key), "%s:{batch-o1}", prefix);
    char rec[96];
    snprintf(rec, sizeof(rec), "%" PRId64 ",0,0,outbound_call,bill_instalment", T0 + 3 * 60000);
    valkeyReply *r = cmd(s, 4, (const char *[]){"HSET", key, "g:elsewhere-1", rec});
    freeReplyObject(r);
    r = cmd(s, 4, (const char *[]){"HINCRBY", key, "v", "1"});
    freeReplyObject(r);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"trigger_id\":\"elsewhere-1\",\"customer_id\":\"batch-o1\",\"campaign\":\"bill_instalment\",\"channel\":\"outbound_call\","
             "\"status\":\"no_answer\",\"ts\":%" PRId64 "}",
             T0 + 10 * 60000);
    md_message m = {cfg->kafka.topic_outcomes, 0, 0, "batch-o1", 8, json, strlen(json)};
    cr_assert_eq(md_batch_add_message(b, &m, 0, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s %s", reason ? reason : "", detail);
    cr_assert_eq(md_batch_run(b, 0, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(n.outcomes_unknown, 0, "the outcome was dropped as unknown on the cached state");
    cr_assert_eq(n.outcomes, 1, "the outcome of the trigger written elsewhere was not applied");
    cr_assert_geq(n.conflicts, 1, "the stale cached state was never refused");
    md_batch_destroy(b);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

static long long pttl_of(md_store *s, const char *key) {
    valkeyReply *r = cmd(s, 2, (const char *[]){"PTTL", key});
    cr_assert_eq(r->type, VALKEY_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The state cache knows when its customers' keys expire: an apply within a
 * day of the last expiry it set leaves the key's expiry alone (no PEXPIRE),
 * while a new customer's key always gets one, and so does every apply of a
 * store that does not know. */
Test(batch, a_cached_customers_recent_expiry_is_left_alone) {
    use_fixture();
    char prefix[64], err[512], key[160];
    snprintf(prefix, sizeof(prefix), "batch-e-%ld", (long)time(NULL));
    snprintf(key, sizeof(key), "%s:{batch-e1}", prefix);
    md_store *s = store_for(prefix);
    cr_assert(md_store_cache_states(s, 1 << 20));
    md_counters n;
    memset(&n, 0, sizeof(n));
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_batch *b = md_batch_new(cfg, s, 4, MD_BATCH_CLOCK_INPUT, &hooks, &n, NULL);
    cr_assert(b);
    pay_and_run(b, "batch-e1", "e", 0);
    long long first = pttl_of(s, key);
    cr_assert_gt(first, 86400000LL, "a new customer's key has no expiry: PTTL %lld", first);
    pay_and_run(b, "batch-e1", "e", 1); /* read from Redis, and cached */
    long long p1 = pttl_of(s, key);
    nanosleep(&(struct timespec){1, 500000000}, NULL);
    pay_and_run(b, "batch-e1", "e", 2); /* from the cache */
    cr_assert_gt(md_store_cache_stats_get(s).hits, 0, "the customer was never served from the cache");
    long long p2 = pttl_of(s, key);
    cr_assert_lt(p2, p1 - 1000, "the expiry was set again by an apply 1.5 s later: %lld then %lld ms", p1, p2);
    cr_assert_gt(p2, p1 - 86400000LL);
    md_batch_destroy(b);
    /* A store without the cache sets it on every apply. */
    md_store *plain = store_for(prefix);
    b = md_batch_new(cfg, plain, 4, MD_BATCH_CLOCK_INPUT, &hooks, &n, NULL);
    cr_assert(b);
    pay_and_run(b, "batch-e1", "e", 3);
    long long p3 = pttl_of(plain, key);
    cr_assert_gt(p3, p2 + 1000, "a store that does not know left the expiry: %lld then %lld ms", p2, p3);
    md_batch_destroy(b);
    md_store_destroy(plain);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

/* The sum of every capacity counter under prefix (the moments reserved and
 * emitted in each slot), read from Redis. */
static long long capacity_counted(const char *prefix) {
    const char *port = getenv("MOMENTD_IT_REDIS_PORT");
    valkeyContext *c = valkeyConnect("127.0.0.1", atoi(port));
    cr_assert(c && !c->err);
    valkeyReply *keys = valkeyCommand(c, "KEYS %s:capacity:*", prefix);
    cr_assert(keys && keys->type == VALKEY_REPLY_ARRAY);
    long long sum = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        valkeyReply *v = valkeyCommand(c, "GET %s", keys->element[i]->str);
        cr_assert(v && v->type == VALKEY_REPLY_STRING, "%s", keys->element[i]->str);
        sum += atoll(v->str);
        freeReplyObject(v);
    }
    freeReplyObject(keys);
    valkeyFree(c);
    return sum;
}

/* A batch reserves a channel's capacity for every decision it may make
 * (each event, each campaign: here 12 payments of 4 late payers, 24, of a
 * day's 20; their profiles decide nothing) and, when its run ends, gives back what it did not emit, so that
 * the other instances can have it: the day's counter then holds exactly the
 * calls made. (test_capacity.sh kills a batch that keeps what it did not
 * use only in the runs where a reservation happens to go unused; here every
 * run has one.) */
Test(batch, capacity_reserved_and_not_emitted_is_given_back) {
    use_fixture();
    md_config_destroy(cfg);
    const char *pairs[] = {"\"fresh_for\": \"4h\"", "\"fresh_for\": \"3650d\"", "\"fresh_for\": \"24h\"", "\"fresh_for\": \"3650d\"",
                           "\"fresh_for\": \"2h\"", "\"fresh_for\": \"3650d\"",
                           "\"name\": \"outbound_call\",", "\"name\": \"outbound_call\", \"capacity\": [{\"max\": 20, \"per\": \"1d\"}],"};
    char err[512], prefix[64], detail[64];
    cfg = th_config_edit(pairs, 4, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    int call = -1;
    for (size_t ch = 0; ch < cfg->n_channels; ch++)
        if (strcmp(cfg->channels[ch].name, "outbound_call") == 0) call = (int)ch;
    cr_assert(call >= 0 && cfg->channels[call].n_capacity == 1, "the call channel has its capacity");
    snprintf(prefix, sizeof(prefix), "batch-cap-%ld", (long)time(NULL));
    md_store *s = store_for(prefix);
    capture *cap = calloc(1, sizeof(*cap));
    md_batch_hooks hooks = {.deliver = capture_deliver, .ctx = cap};
    md_counters n;
    memset(&n, 0, sizeof(n));
    /* Capacity is the daemon's (the wall clock's): decided at 11:00 in China
     * on the day of the last payments, as run_daemon_path decides. */
    const int64_t wall = T0 + 60 * DAY + 11 * HOUR;
    md_batch *b = md_batch_new(cfg, s, 16, MD_BATCH_CLOCK_WALL, &hooks, &n, NULL); /* room for all 16 */
    cr_assert(b);
    /* A resident's profile, then three late payments a month apart with a
     * falling balance, at 10:00 in China (outside quiet hours): the last
     * fires prepay_wallet, by a call (no app login). One batch. */
    int offset = 0;
    for (int c = 0; c < 4; c++) {
        char cid[32];
        snprintf(cid, sizeof(cid), "cap-payer-%d", c);
        const char *profile = "{\"customer_type\":\"resident\"}";
        md_message pm = {cfg->kafka.topic_profiles, 0, c, cid, strlen(cid), profile, strlen(profile)};
        const char *preason = NULL;
        cr_assert_eq(md_batch_add_message(b, &pm, wall, &preason, detail, sizeof(detail)), MD_ERR_OK, "%s", detail);
        const int balance[] = {80, 60, 50};
        for (int k = 0; k < 3; k++) {
            char json[512];
            snprintf(json, sizeof(json),
                     "{\"event_id\":\"%s-%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%" PRId64
                     ",\"amount\":100,\"channel\":\"bank\",\"kind\":\"bill\",\"late\":true,\"balance_after\":%d}",
                     cid, k, cid, T0 + k * 30 * DAY + 10 * HOUR + c * 60000, balance[k]);
            md_message m = {cfg->kafka.topic_payments, 0, offset++, cid, strlen(cid), json, strlen(json)};
            const char *reason = NULL;
            cr_assert_eq(md_batch_add_message(b, &m, wall, &reason, detail, sizeof(detail)), MD_ERR_OK, "%s", detail);
        }
    }
    cr_assert_eq(md_batch_run(b, wall, err, sizeof(err)), MD_ERR_OK, "%s", err);
    long long calls = 0;
    for (size_t i = 0; i < cap->n; i++) calls += !cap->m[i].holdout && cap->m[i].channel == call;
    cr_assert_geq(calls, 1, "no call was made: the test proved nothing (%zu moments)", cap->n);
    long long counted = capacity_counted(prefix);
    cr_assert_eq(counted, calls, "the day's counter holds what the calls used (%lld), not what the batch reserved: %lld", calls, counted);
    md_batch_destroy(b);
    md_store_wipe(s, err, sizeof(err));
    md_store_destroy(s);
    free(cap);
    md_config_destroy(cfg);
}

/* A batch keeps its inputs end to end, each as long as it is (an event up
 * to its last page): an app login whose pages fill the limit, with the page
 * a window counts last, then inputs of every kind right behind it, in both
 * paths. Each is decided as it came: the last page is counted, the short
 * login's only page too, the outcome and the profile land on their
 * customers; a page cut off, or an input laid over the one before, would
 * show in the windows. */
Test(batch, inputs_lie_end_to_end_and_each_is_read_whole) {
    use_fixture();
    char pages[64 * 24] = "", j[2048], err[256];
    for (int k = 0; k < 63; k++) snprintf(pages + strlen(pages), sizeof(pages) - strlen(pages), "\"p%02d\",", k);
    strcat(pages, "\"instalment_product\"");
    n_msgs = 0;
    snprintf(j, sizeof(j),
             "{\"event_id\":\"ee-full\",\"type\":\"app_login\",\"customer_id\":\"batch-e0\",\"ts\":%" PRId64 ",\"pages\":[%s]}", T0,
             pages);
    cr_assert_lt(strlen(j), sizeof(msgs[0].json), "the message does not fit the test's buffer");
    add(cfg->kafka.topic_app_logins, "batch-e0", j);
    snprintf(j, sizeof(j),
             "{\"event_id\":\"ee-short\",\"type\":\"app_login\",\"customer_id\":\"batch-e1\",\"ts\":%" PRId64
             ",\"pages\":[\"prepay_product\"]}",
             T0 + HOUR);
    add(cfg->kafka.topic_app_logins, "batch-e1", j);
    add(cfg->kafka.topic_profiles, "batch-e2", "{\"customer_type\":\"resident\"}");
    snprintf(j, sizeof(j),
             "{\"trigger_id\":\"t-none\",\"customer_id\":\"batch-e3\",\"campaign\":\"bill_instalment\",\"channel\":\"outbound_call\","
             "\"status\":\"sent\",\"ts\":%" PRId64 "}",
             T0 + HOUR);
    add(cfg->kafka.topic_outcomes, "batch-e3", j);
    snprintf(j, sizeof(j),
             "{\"event_id\":\"ee-after\",\"type\":\"app_login\",\"customer_id\":\"batch-e4\",\"ts\":%" PRId64
             ",\"pages\":[\"instalment_product\",\"prepay_product\"]}",
             T0 + 2 * HOUR);
    add(cfg->kafka.topic_app_logins, "batch-e4", j);
    for (int path = 0; path < 2; path++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "batch-e%d-%ld", path, (long)time(NULL));
        md_store *s = store_for(prefix);
        capture *cap = calloc(1, sizeof(*cap));
        md_counters n;
        memset(&n, 0, sizeof(n));
        if (path == 0) run_daemon_path(s, cap, &n, false);
        else run_driver_path(s, cap, &n);
        cr_assert_eq(n.accepted, 3, "path %d: %" PRIu64 " events accepted", path, n.accepted);
        cr_assert_eq(n.profiles, 1);
        cr_assert_eq(n.outcomes + n.outcomes_unknown, 1, "path %d: the outcome was not decided", path);
        int64_t t = T0 + 3 * HOUR;
        cr_assert_eq(stored_window(s, "batch-e0", "instalment_views_7d", t), 1, "path %d: the 64th page was not read", path);
        cr_assert_eq(stored_window(s, "batch-e0", "prepay_views_7d", t), 0);
        cr_assert_eq(stored_window(s, "batch-e1", "prepay_views_7d", t), 1, "path %d", path);
        cr_assert_eq(stored_window(s, "batch-e1", "instalment_views_7d", t), 0, "path %d: a page of the login before it", path);
        cr_assert_eq(stored_window(s, "batch-e4", "instalment_views_7d", t), 1, "path %d", path);
        cr_assert_eq(stored_window(s, "batch-e4", "prepay_views_7d", t), 1, "path %d", path);
        md_store_wipe(s, err, sizeof(err));
        md_store_destroy(s);
        free(cap);
    }
    md_config_destroy(cfg);
}
