/* test_store.c: the Redis edge (store.c) against the real Redis of the
 * integration fixture (MOMENTD_IT_REDIS_PORT): applies with every number of
 * operations, the version check end to end, and engine state written and
 * read back. */
#include <criterion/criterion.h>
#include <valkey/valkey.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "momentd/engine.h"
#include "store.h"

static md_store *store;
static md_config *cfg;
static char prefix[64];
static char errbuf[512];

static void setup(void) {
    const char *port = getenv("MOMENTD_IT_REDIS_PORT");
    cr_assert(port, "MOMENTD_IT_REDIS_PORT is not set (run through ctest)");
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/0", port);
    /* A prefix of this run's own, so that reruns never see old keys. */
    snprintf(prefix, sizeof(prefix), "store-%ld-%ld", (long)time(NULL), (long)clock());
    md_cfg_redis rc = {.url = url, .key_prefix = prefix, .timeout_ms = 2000, .retry_backoff_ms = 100};
    store = md_store_new(&rc, errbuf, sizeof(errbuf));
    cr_assert(store, "%s", errbuf);
    cr_assert_eq(md_store_connect(store, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cfg = th_default_config();
}

static void teardown(void) {
    md_store_destroy(store);
    md_config_destroy(cfg);
}

TestSuite(store, .init = setup, .fini = teardown);

/* The integer reply of COMMAND KEY (HLEN, PTTL). */
static long long key_integer(const char *command, const char *key) {
    const char *argv[] = {command, key};
    size_t lens[] = {strlen(command), strlen(key)};
    valkeyReply *r = md_store_command_argv(store, 2, argv, lens);
    cr_assert(r && r->type == VALKEY_REPLY_INTEGER, "%s %s", command, key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static long long hlen(const char *key) { return key_integer("HLEN", key); }
static long long pttl(const char *key) { return key_integer("PTTL", key); }

/* Regression: the apply command's fixed arguments were miscounted by one,
 * so an apply whose size landed exactly on the argv capacity wrote past it
 * (found by AddressSanitizer in the SIGKILL test). Every op count from 0 to
 * 60 goes through one pipeline here, crossing every capacity boundary. */
Test(store, regression_apply_argv_capacity_every_op_count) {
    enum { N = 61 };
    md_ops ops[N];
    md_apply_req reqs[N];
    int results[N];
    char field[32], value[32];
    for (int i = 0; i < N; i++) {
        md_ops_init(&ops[i]);
        for (int k = 0; k < i; k++) {
            snprintf(field, sizeof(field), "f%d", k);
            snprintf(value, sizeof(value), "%d", k);
            md_ops_add(&ops[i], MD_OP_SET, field, value);
        }
        char cid[32];
        snprintf(cid, sizeof(cid), "argc%d", i);
        md_store_customer_key(store, cid, reqs[i].key, sizeof(reqs[i].key));
        reqs[i].ops = &ops[i];
        reqs[i].expect_version = 0;
        reqs[i].ttl_ms = 60000;
        reqs[i].outbox_empty = i % 2; /* both forms of the command */
        reqs[i].known_expiry = 0;
    }
    cr_assert_eq(md_store_apply(store, N, reqs, results, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(results[i], 1, "apply with %d ops", i);
        cr_assert_eq(hlen(reqs[i].key), i + 1, "%d fields plus the version", i);
        md_ops_fini(&ops[i]);
    }
}

Test(store, a_stale_version_is_a_conflict_and_writes_nothing) {
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "1");
    md_apply_req req = {.ops = &ops, .expect_version = 0, .ttl_ms = 60000};
    md_store_customer_key(store, "ver", req.key, sizeof(req.key));
    int res = -1;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 1);
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "2");
    md_ops_add(&ops, MD_OP_SET, "other", "x");
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 0, "version 0 is stale after the first apply");
    cr_assert_eq(hlen(req.key), 2, "still only n and v");
    md_ops_fini(&ops);
}

static void run(int argc, const char **argv) {
    size_t lens[8];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    valkeyReply *r = md_store_command_argv(store, argc, argv, lens);
    cr_assert(r && r->type != VALKEY_REPLY_ERROR, "%s", r ? r->str : "no reply");
    freeReplyObject(r);
}

/* A key of another type refuses the apply of its customer alone, before
 * the first write (Redis keeps what a script wrote before an error), and
 * the pipeline's other applies go through; with no refusal array the call
 * fails as before. Refused: the customer's hash (at the version check), its
 * outbox (at the type check, though the ops before the outbox's would have
 * succeeded) and a contact point's hash (at its first write). */
Test(store, a_key_of_another_type_refuses_its_apply_alone_and_nothing_is_written) {
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "a", "1");
    md_ops_add(&ops, MD_OP_INCR, "n", "2");
    md_ops_add(&ops, MD_OP_OUTBOX_SET, "m1", "moment");
    md_ops_add(&ops, MD_OP_SET, "b", "3");
    enum { N = 4 };
    md_apply_req reqs[N];
    memset(reqs, 0, sizeof(reqs));
    const char *ids[N] = {"ok-before", "bad-hash", "bad-outbox", "ok-after"};
    for (int i = 0; i < N; i++) {
        md_store_customer_key(store, ids[i], reqs[i].key, sizeof(reqs[i].key));
        reqs[i].ops = &ops;
        reqs[i].ttl_ms = 60000;
    }
    md_apply_req cp = {.ops = &ops, .expect_version = -1, .ttl_ms = 60000};
    md_store_contact_point_key(store, "13800000000", cp.key, sizeof(cp.key));
    char outbox[420];
    snprintf(outbox, sizeof(outbox), "%s:x", reqs[2].key);
    run(3, (const char *[]){"SET", reqs[1].key, "foreign"});
    run(3, (const char *[]){"SET", outbox, "foreign"});
    run(3, (const char *[]){"SET", cp.key, "foreign"});
    int results[N + 1];
    md_store_refusal refused[N + 1];
    md_apply_req all[N + 1];
    memcpy(all, reqs, sizeof(reqs));
    all[N] = cp;
    cr_assert_eq(md_store_apply(store, N + 1, all, results, refused, errbuf, sizeof(errbuf)), MD_ERR_REDIS_REFUSED, "%s", errbuf);
    static const int want[N + 1] = {1, -1, -1, 1, -1};
    for (int i = 0; i < N + 1; i++) {
        cr_assert_eq(results[i], want[i], "request %d: %d", i, results[i]);
        if (want[i] < 0) cr_assert(strstr(refused[i], "WRONGTYPE"), "request %d: reason '%s'", i, refused[i]);
        else cr_assert_str_empty(refused[i], "request %d refused: %s", i, refused[i]);
    }
    cr_assert_eq(hlen(reqs[0].key), 4, "a, n, b and the version");
    cr_assert_eq(hlen(reqs[3].key), 4, "a, n, b and the version");
    cr_assert_eq(hlen(reqs[2].key), 0, "the refused apply wrote %lld fields before its outbox", hlen(reqs[2].key));
    /* Without a refusal array, one refusal fails the call. */
    int res = 0;
    cr_assert_eq(md_store_apply(store, 1, &reqs[1], &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_REDIS_REFUSED);
    cr_assert(strstr(errbuf, "WRONGTYPE") && strstr(errbuf, reqs[1].key), "%s", errbuf);
    md_ops_fini(&ops);
}

/* A transient error every key gets (here OOM: maxmemory below what Redis
 * uses, under noeviction) is MD_ERR_REDIS_DOWN, waited for and retried,
 * never a refusal that would set customers aside. */
Test(store, a_full_redis_is_waited_for_not_a_refusal) {
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "a", "1");
    md_apply_req req = {.ops = &ops, .expect_version = 0, .ttl_ms = 60000};
    md_store_customer_key(store, "oom", req.key, sizeof(req.key));
    const char *get[] = {"CONFIG", "GET", "maxmemory"};
    size_t gl[] = {6, 3, 9};
    valkeyReply *r = md_store_command_argv(store, 3, get, gl);
    cr_assert(r && r->type == VALKEY_REPLY_ARRAY && r->elements == 2);
    char old[32];
    snprintf(old, sizeof(old), "%s", r->element[1]->str);
    freeReplyObject(r);
    const char *pol[] = {"CONFIG", "GET", "maxmemory-policy"};
    size_t pl[] = {6, 3, 16};
    r = md_store_command_argv(store, 3, pol, pl);
    cr_assert(r && r->type == VALKEY_REPLY_ARRAY && r->elements == 2);
    cr_assert_str_eq(r->element[1]->str, "noeviction", "the test Redis would evict at this maxmemory");
    freeReplyObject(r);
    run(4, (const char *[]){"CONFIG", "SET", "maxmemory", "1"});
    md_store_refusal refused[1];
    int res = 0;
    md_err e = md_store_apply(store, 1, &req, &res, refused, errbuf, sizeof(errbuf));
    run(4, (const char *[]){"CONFIG", "SET", "maxmemory", old});
    cr_assert_eq(e, MD_ERR_REDIS_DOWN, "%s", errbuf);
    cr_assert(strstr(errbuf, "OOM"), "%s", errbuf);
    cr_assert_eq(md_err_is_retriable(e), 1);
    md_ops_fini(&ops);
}

/* Engine state written through the store and read back into a fresh state
 * decides exactly as the state in memory: the layout cannot drift between
 * what cstate records and what it loads. */
Test(store, engine_state_round_trips_through_redis) {
    md_cstate *cs = md_cstate_new(cfg), *back = md_cstate_new(cfg);
    md_ops ops, cp_ops;
    md_ops_init(&ops);
    md_ops_init(&cp_ops);
    md_engine_out out;
    md_engine_out_init(&out);
    const char *cid = "rt1";
    size_t fired = 0;
    md_cstate_set_customer(cs, cid);
    static const char *const events[] = {
        "{\"event_id\":\"e1\",\"type\":\"payment\",\"customer_id\":\"rt1\",\"ts\":%lld,\"amount\":80.5,\"kind\":\"bill\",\"late\":true,\"balance_after\":60}",
        "{\"event_id\":\"e2\",\"type\":\"payment\",\"customer_id\":\"rt1\",\"ts\":%lld,\"amount\":20,\"kind\":\"bill\",\"late\":true,\"balance_after\":40}",
        "{\"event_id\":\"e3\",\"type\":\"app_login\",\"customer_id\":\"rt1\",\"ts\":%lld,\"pages\":[\"prepay_product\"],\"session_s\":30}",
        "{\"event_id\":\"e4\",\"type\":\"payment\",\"customer_id\":\"rt1\",\"ts\":%lld,\"amount\":20,\"kind\":\"bill\",\"late\":true,\"balance_after\":30}",
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), events[i], (long long)(TH_T0 + (int64_t)i * 20 * TH_DAY));
        md_event ev = th_event(json);
        md_source src = {"payments", 0, (int64_t)i};
        cr_assert_eq(md_engine_process(cfg, cs, NULL, &ev, &src, TH_T0, &ops, &cp_ops, &out), MD_ERR_OK);
        fired += out.n_triggers;
    }
    cr_assert_gt(fired, 0, "the story fires (so outbox, contact log and hysteresis are in the state)");
    md_cstate_flush(cs, &ops);
    md_apply_req req = {.ops = &ops, .expect_version = 0, .ttl_ms = 60000};
    md_store_customer_key(store, cid, req.key, sizeof(req.key));
    int res = -1;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 1);

    const char *ids[] = {cid};
    cr_assert_eq(md_store_read_customers(store, 1, ids, &back, NULL, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(md_cstate_version(back), 1);
    cr_assert_eq(md_cstate_pending_count(back), fired, "the outbox came back");
    int64_t at = TH_T0 + 61 * TH_DAY;
    for (size_t w = 0; w < cfg->n_windows; w++)
        cr_assert_float_eq(md_cstate_window(cfg, back, (int)w, at), md_cstate_window(cfg, cs, (int)w, at), 1e-9, "window %s",
                           cfg->windows[w].name);
    md_engine_out a, b;
    md_engine_out_init(&a);
    md_engine_out_init(&b);
    md_engine_evaluate(cfg, cs, NULL, at, &a);
    md_engine_evaluate(cfg, back, NULL, at, &b);
    for (size_t c = 0; c < a.n_campaigns; c++) {
        cr_assert_float_eq(a.eval[c].score, b.eval[c].score, 1e-12, "campaign %zu score", c);
        cr_assert_eq(a.eval[c].suppressed, b.eval[c].suppressed, "campaign %zu decision", c);
        cr_assert_eq(a.eval[c].eligible_again_ms, b.eval[c].eligible_again_ms, "campaign %zu eligible again", c);
    }
    md_engine_out_fini(&a);
    md_engine_out_fini(&b);
    md_engine_out_fini(&out);
    md_ops_fini(&ops);
    md_ops_fini(&cp_ops);
    md_cstate_destroy(cs);
    md_cstate_destroy(back);
}

/* redis.wait_replicas: an apply is answered only once that many replicas
 * hold it. The fixture's Redis has none, so with 1 the apply (carried out
 * on the primary, which a retry reads as done) fails as Redis down, to be
 * redone; with 0 the same Redis takes it. */
Test(store, wait_replicas_holds_an_apply_no_replica_has) {
    const char *port = getenv("MOMENTD_IT_REDIS_PORT");
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/0", port);
    md_cfg_redis rc = {.url = url, .key_prefix = prefix, .timeout_ms = 2000, .retry_backoff_ms = 100, .wait_replicas = 1,
                       .wait_timeout_ms = 50};
    md_store *waiting = md_store_new(&rc, errbuf, sizeof(errbuf));
    cr_assert(waiting, "%s", errbuf);
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "1");
    md_apply_req req = {.ops = &ops, .expect_version = 0, .ttl_ms = 60000};
    md_store_customer_key(waiting, "waited", req.key, sizeof(req.key));
    int res = -1;
    cr_assert_eq(md_store_apply(waiting, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_REDIS_DOWN);
    cr_assert(strstr(errbuf, "0 of the 1 replicas (redis.wait_replicas) took the batch within 50 ms"), "%s", errbuf);
    cr_assert_eq(res, 1, "the primary carried it out");
    md_store_destroy(waiting);
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "2");
    req.expect_version = 1;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "without waiting: %s", errbuf);
    cr_assert_eq(res, 1);
    md_ops_fini(&ops);
}

/* An apply refreshes its outbox's expiry with the state's, unless the
 * caller knows the outbox is empty and writes nothing to it: then the
 * outbox key is not touched at all (one call less per apply). */
Test(store, the_outbox_expiry_follows_the_state_unless_known_empty) {
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "1");
    md_apply_req req = {.ops = &ops, .expect_version = 0, .ttl_ms = 60000};
    md_store_customer_key(store, "outbox-ttl", req.key, sizeof(req.key));
    char outbox[420];
    snprintf(outbox, sizeof(outbox), "%s:x", req.key);
    run(4, (const char *[]){"HSET", outbox, "t1", "pending"});
    int res = -1;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 1);
    cr_assert_gt(pttl(outbox), 0, "an outbox with entries lives as long as the state");
    run(2, (const char *[]){"PERSIST", outbox});
    req.expect_version = 1;
    req.outbox_empty = true;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 1);
    cr_assert_eq(pttl(outbox), -1, "known empty: the outbox key is left alone");
    cr_assert_gt(pttl(req.key), 0, "the state's expiry is refreshed all the same");
    /* An outbox write goes to the outbox whatever the flag says. */
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_OUTBOX_SET, "t2", "moment");
    req.expect_version = 2;
    cr_assert_eq(md_store_apply(store, 1, &req, &res, NULL, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(res, 1);
    cr_assert_eq(hlen(outbox), 2, "the outbox entry written beside the pending one");
    cr_assert_gt(pttl(outbox), 0, "and the outbox's expiry set with it");
    md_ops_fini(&ops);
}

/* The value of field f in customer id's cache entry, or NULL. */
typedef struct cached_field {
    const char *want;
    char got[64];
    bool found;
} cached_field;

static void find_cached(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    cached_field *c = ctx;
    if (strlen(c->want) == fl && memcmp(c->want, f, fl) == 0) {
        snprintf(c->got, sizeof(c->got), "%.*s", (int)vl, v);
        c->found = true;
    }
}

static const char *cached_value(const char *id, const char *field, cached_field *c) {
    *c = (cached_field){.want = field};
    if (!md_store_cache_each(store, id, find_cached, c) || !c->found) return NULL;
    return c->got;
}

/* Customers ids[0..n) written once (a = "1", and an empty outbox, so that
 * each is cached at its next read) through reqs with first's ops; second
 * sets a = "2", for the apply a test makes next. */
static void written_once(size_t n, const char *const *ids, md_apply_req *reqs, int *results, md_store_refusal *refused, md_ops *first,
                         md_ops *second) {
    md_ops_init(first);
    md_ops_init(second);
    md_ops_add(first, MD_OP_SET, "a", "1");
    md_ops_add(first, MD_OP_SET, "x0", "1"); /* the outbox is empty: the entry is cached at the read */
    md_ops_add(second, MD_OP_SET, "a", "2");
    memset(reqs, 0, n * sizeof(*reqs));
    for (size_t i = 0; i < n; i++) {
        md_store_customer_key(store, ids[i], reqs[i].key, sizeof(reqs[i].key));
        reqs[i].ops = first;
        reqs[i].ttl_ms = 60000;
    }
    cr_assert_eq(md_store_apply(store, n, reqs, results, refused, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
}

/* Replies taken while the batch still decides (md_store_apply_poll): the
 * results and the state cache of the applies before a refusal are there
 * at once; the refusal and everything after it are left to collect, which
 * ends with every result as one call would have. */
Test(store, replies_taken_early_leave_a_refusal_to_the_collect) {
    cr_assert(md_store_cache_states(store, 1 << 20));
    enum { N = 6, BAD = 3 };
    const char *ids[N] = {"poll-0", "poll-1", "poll-2", "poll-bad", "poll-4", "poll-5"};
    md_ops first, second;
    md_apply_req reqs[N];
    int results[N];
    md_store_refusal refused[N];
    written_once(N, ids, reqs, results, refused, &first, &second);
    /* Read (and so cached), then one customer's hash replaced by a string. */
    md_cstate *states[N];
    bool cached[N];
    for (int i = 0; i < N; i++) states[i] = md_cstate_new(cfg);
    cr_assert_eq(md_store_read_customers(store, N, ids, states, refused, cached, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cached_field c;
    for (int i = 0; i < N; i++) cr_assert_str_eq(cached_value(ids[i], "a", &c) ? c.got : "(none)", "1", "%s", ids[i]);
    run(2, (const char *[]){"DEL", reqs[BAD].key});
    run(3, (const char *[]){"SET", reqs[BAD].key, "foreign"});
    for (int i = 0; i < N; i++) {
        reqs[i].ops = &second;
        reqs[i].expect_version = md_cstate_version(states[i]);
        results[i] = -7;
    }
    cr_assert_eq(md_store_apply_send(store, N, reqs, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    /* Until Redis has answered them all (a second at most), then a poll. */
    for (int k = 0; k < 100 && results[BAD - 1] == -7; k++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        md_store_apply_poll(store, reqs, results, refused);
    }
    for (int i = 0; i < BAD; i++) {
        cr_assert_eq(results[i], 1, "%s taken early: %d", ids[i], results[i]);
        cr_assert_str_eq(cached_value(ids[i], "a", &c) ? c.got : "(none)", "2", "%s's entry has the apply", ids[i]);
    }
    for (int i = BAD; i < N; i++) cr_assert_eq(results[i], -7, "%s: left to the collect", ids[i]);
    md_store_apply_poll(store, reqs, results, refused); /* a refusal held: nothing more taken */
    cr_assert_eq(results[BAD + 1], -7);
    cr_assert_eq(md_store_apply_collect(store, N, reqs, results, refused, errbuf, sizeof(errbuf)), MD_ERR_REDIS_REFUSED, "%s", errbuf);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(results[i], i == BAD ? -1 : 1, "%s: %d", ids[i], results[i]);
        if (i == BAD) cr_assert(strstr(refused[i], "WRONGTYPE"), "%s", refused[i]);
        else cr_assert_str_empty(refused[i], "%s: %s", ids[i], refused[i]);
    }
    for (int i = BAD + 1; i < N; i++) cr_assert_str_eq(cached_value(ids[i], "a", &c) ? c.got : "(none)", "2", "%s", ids[i]);
    cr_assert_null(cached_value(ids[BAD], "a", &c), "the refused customer's entry goes");
    /* The connection is in step: the next command gets its own reply. */
    cr_assert_eq(hlen(reqs[0].key), 3, "a, x0 and the version");
    /* Read again from the cache, a customer carries the expiry its last
     * apply set, for the next apply to leave alone. */
    cr_assert_eq(md_store_read_customers(store, 1, ids, states, refused, cached, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert(cached[0]);
    cr_assert_gt(md_cstate_key_expiry(states[0]), 0, "the cache's expiry was not carried into the state");
    for (int i = 0; i < N; i++) md_cstate_destroy(states[i]);
    md_ops_fini(&first);
    md_ops_fini(&second);
}

/* A customer's cache entry takes its apply as the apply is sent (the entry
 * is still in the processor's cache then): read back before any reply, it
 * has the writes and the next version. An apply Redis answers with a
 * conflict takes its entry away; applies whose replies are lost with the
 * connection take theirs away, applied or not, so that the cache never
 * keeps a version Redis may not have. */
Test(store, an_entry_takes_its_apply_when_sent_and_goes_with_a_lost_reply) {
    cr_assert(md_store_cache_states(store, 1 << 20));
    enum { N = 3 };
    const char *ids[N] = {"ahead-0", "ahead-1", "ahead-2"};
    md_cstate *states[N];
    bool cached[N];
    for (int i = 0; i < N; i++) states[i] = md_cstate_new(cfg);
    md_ops first, second;
    md_apply_req reqs[N];
    int results[N];
    md_store_refusal refused[N];
    written_once(N, ids, reqs, results, refused, &first, &second);
    cached_field c;
    /* A conflict: the entry read goes when Redis says the version is stale. */
    cr_assert_eq(md_store_read_customers(store, N, ids, states, refused, cached, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    reqs[0].ops = &second;
    reqs[0].expect_version = md_cstate_version(states[0]) - 1;
    cr_assert_eq(md_store_apply_send(store, 1, reqs, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(md_store_apply_collect(store, 1, reqs, results, refused, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(results[0], 0, "a stale version is a conflict");
    cr_assert_null(cached_value(ids[0], "a", &c), "the entry of a conflict stays");
    /* Sent, then the connection lost before the replies were read. */
    cr_assert_eq(md_store_read_customers(store, N, ids, states, refused, cached, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    for (int i = 0; i < N; i++) {
        reqs[i].ops = &second;
        reqs[i].expect_version = md_cstate_version(states[i]);
    }
    cr_assert_eq(md_store_apply_send(store, N, reqs, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    char version[24];
    for (int i = 0; i < N; i++) {
        cr_assert_str_eq(cached_value(ids[i], "a", &c) ? c.got : "(none)", "2", "%s's entry has its apply before the reply", ids[i]);
        snprintf(version, sizeof(version), "%lld", (long long)reqs[i].expect_version + 1);
        cr_assert_str_eq(cached_value(ids[i], "v", &c) ? c.got : "(none)", version, "%s's entry has the apply's version", ids[i]);
    }
    md_store_disconnect(store);
    for (int i = 0; i < N; i++) cr_assert_null(cached_value(ids[i], "a", &c), "%s's entry outlived its lost reply", ids[i]);
    /* Read again (from Redis), each customer is what Redis has. */
    cr_assert_eq(md_store_connect(store, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    cr_assert_eq(md_store_read_customers(store, N, ids, states, refused, cached, errbuf, sizeof(errbuf)), MD_ERR_OK, "%s", errbuf);
    for (int i = 0; i < N; i++) {
        cr_assert_not(cached[i], "%s came from the cache", ids[i]);
        /* Whether Redis ran the applies before it saw the connection close
         * is its own affair: the entry is what it has. */
        const char *argv[] = {"HGET", reqs[i].key, "a"};
        size_t lens[] = {4, strlen(reqs[i].key), 1};
        valkeyReply *r = md_store_command_argv(store, 3, argv, lens);
        cr_assert(r && r->type == VALKEY_REPLY_STRING, "HGET %s a", reqs[i].key);
        cr_assert_str_eq(cached_value(ids[i], "a", &c) ? c.got : "(none)", r->str, "%s: the entry is not what Redis has", ids[i]);
        freeReplyObject(r);
    }
    for (int i = 0; i < N; i++) md_cstate_destroy(states[i]);
    md_ops_fini(&first);
    md_ops_fini(&second);
}
