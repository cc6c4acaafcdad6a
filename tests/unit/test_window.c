/* test_window.c: sliding windows over event time: span edges, granularity,
 * late and out-of-order events, sums, eviction, and de-duplication. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "momentd/engine.h"
#include "cstate_internal.h" /* MD_SEEN_MAX */
#include "rules.h"

static md_config *cfg;
static md_cstate *cs;
static md_ops ops;
static md_engine_out out;

static void setup(void) {
    cfg = th_default_config();
    cs = md_cstate_new(cfg);
    md_ops_init(&ops);
    md_engine_out_init(&out);
}
static void teardown(void) {
    md_engine_out_fini(&out);
    md_ops_fini(&ops);
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
}
TestSuite(window, .init = setup, .fini = teardown);

static int win(const char *name) {
    for (size_t i = 0; i < cfg->n_windows; i++)
        if (strcmp(cfg->windows[i].name, name) == 0) return (int)i;
    cr_assert_fail("no window %s", name);
    return -1;
}

/* The Redis field of the series a window reads. */
static const char *series_field_of(const md_config *c, const char *window) {
    for (size_t i = 0; i < c->n_windows; i++)
        if (strcmp(c->windows[i].name, window) == 0) return c->rules->series[c->rules->windows[i].series].field;
    cr_assert_fail("no window %s", window);
    return NULL;
}

/* One of its older names: prefix 'S' (packed, before the four-digit
 * names) or 's' (decimal). */
static void series_older_of(const md_config *c, const char *window, char prefix, char out[24]) {
    for (size_t i = 0; i < c->n_windows; i++)
        if (strcmp(c->windows[i].name, window) == 0) {
            snprintf(out, 24, "%c%s", prefix, c->rules->series[c->rules->windows[i].series].older);
            return;
        }
    cr_assert_fail("no window %s", window);
}

static md_applied pay(const char *id, int64_t ts, double amount, bool late, const md_source *src) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"%s\",\"type\":\"payment\",\"customer_id\":\"w1\",\"ts\":%lld,\"amount\":%g,\"kind\":\"bill\","
             "\"late\":%s,\"balance_after\":500}",
             id, (long long)ts, amount, late ? "true" : "false");
    md_event ev = th_event(json);
    cr_assert_eq(md_engine_process(cfg, cs, NULL, &ev, src, ts, &ops, NULL, &out), MD_ERR_OK);
    return out.applied;
}

static md_applied view(const char *id, int64_t ts) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"%s\",\"type\":\"app_login\",\"customer_id\":\"w1\",\"ts\":%lld,\"pages\":[\"prepay_product\"]}", id,
             (long long)ts);
    md_event ev = th_event(json);
    cr_assert_eq(md_engine_process(cfg, cs, NULL, &ev, NULL, ts, &ops, NULL, &out), MD_ERR_OK);
    return out.applied;
}

Test(window, span_edges_at_day_granularity) {
    int w = win("payments_180d");
    pay("p1", TH_T0, 10, false, NULL);
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0), 1);
    /* Exact to the granularity: a read anywhere in the event's (UTC) day
     * bucket sees it, a read in the bucket before does not. TH_T0 is 02:00Z. */
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 - 1), 1, "same day bucket");
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 - 2 * TH_HOUR - 1), 0, "the bucket before");
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 179 * TH_DAY), 1, "still inside on the 180th day");
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 180 * TH_DAY), 0, "out on the 181st day");
}

Test(window, span_edges_at_hour_granularity) {
    int w = win("prepay_views_7d");
    view("v1", TH_T0);
    view("v2", TH_T0 + 3 * TH_HOUR);
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 3 * TH_HOUR), 2);
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 167 * TH_HOUR), 2);
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 168 * TH_HOUR), 1, "the first hour bucket left the span");
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 171 * TH_HOUR), 0);
}

Test(window, late_and_out_of_order_events_are_read_at_their_own_time) {
    int w = win("late_payments_180d");
    pay("a", TH_T0 + 10 * TH_DAY, 1, true, NULL);
    pay("b", TH_T0 + 2 * TH_DAY, 1, true, NULL); /* 8 days late, inside max_lateness? no: 7d */
    cr_assert_eq(out.applied, MD_TOO_LATE, "8 days behind the newest event is beyond limits.max_lateness (7d)");
    pay("c", TH_T0 + 5 * TH_DAY, 1, true, NULL); /* 5 days late: counted */
    cr_assert_eq(out.applied, MD_APPLIED);
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 5 * TH_DAY), 1, "at its own time only itself");
    cr_assert_eq(md_cstate_window(cfg, cs, w, TH_T0 + 10 * TH_DAY), 2, "and it counts for later reads");
    /* The decision made for c saw the window at c's time. */
    size_t k;
    for (k = 0; k < out.eval[0].n_contrib; k++)
        if (out.eval[0].contrib[k].feature == 0) break; /* feature 0 = late_payments_180d */
    cr_assert_lt(k, out.eval[0].n_contrib);
    cr_assert_eq(out.eval[0].contrib[k].value, 1);
}

Test(window, sums_are_exact_in_fen) {
    int w = win("payment_amount_30d");
    pay("p1", TH_T0, 120.5, false, NULL);
    pay("p2", TH_T0 + TH_DAY, 79.49, false, NULL);
    pay("p3", TH_T0 + TH_DAY, 0.01, false, NULL);
    cr_assert_float_eq(md_cstate_window(cfg, cs, w, TH_T0 + TH_DAY), 200.0, 1e-9);
    cr_assert_float_eq(md_cstate_window(cfg, cs, w, TH_T0 + 30 * TH_DAY), 79.5, 1e-9);
}

/* The value the recorded ops last set for field, or NULL. */
static const char *last_set(const char *field) {
    const char *v = NULL;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), field) == 0) v = ops.ops[i].kind == MD_OP_SET ? md_ops_value(&ops, i) : NULL;
    return v;
}

/* Whether ops' last operation on field f deletes it. */
static bool was_deleted(const char *f) {
    bool d = false;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), f) == 0) d = ops.ops[i].kind == MD_OP_DEL;
    return d;
}

/* The text the flush in ops wrote for the series whose field is sf
 * ("S<code>"): that field's, or its entry "<code><buckets>" in a piece
 * "H<k>" (the layout in src/core/cstate.c); NULL when neither was written. */
static const char *series_written(const char *sf) {
    static char out[512];
    const char *found = last_set(sf);
    for (size_t i = 0; i < ops.n && !found; i++) {
        const char *f = md_ops_field(&ops, i), *v = md_ops_value(&ops, i);
        if (ops.ops[i].kind != MD_OP_SET || f[0] != 'H') continue;
        for (const char *p = v; *p;) {
            const char *e = strchr(p, ';');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n > 4 && memcmp(p, sf + 1, 4) == 0) {
                snprintf(out, sizeof(out), "%.*s", (int)(n - 4), p + 4);
                found = out;
            }
            p += n + (e ? 1 : 0);
        }
    }
    return found;
}

Test(window, redelivered_offsets_count_once) {
    md_source src = {"payments", 3, 41};
    cr_assert_eq(pay("p1", TH_T0, 10, false, &src), MD_APPLIED);
    md_ops_clear(&ops);
    cr_assert_eq(pay("p1", TH_T0, 10, false, &src), MD_DUP_OFFSET);
    cr_assert_eq(ops.n, 0, "a redelivery records nothing");
    src.offset = 40;
    cr_assert_eq(pay("p0", TH_T0, 10, false, &src), MD_DUP_OFFSET, "anything at or below the watermark");
    src.partition = 2; /* another partition has its own watermark */
    cr_assert_eq(pay("p9", TH_T0, 10, false, &src), MD_APPLIED);
    cr_assert_eq(md_cstate_window(cfg, cs, win("payments_180d"), TH_T0), 2);
}

/* The watermarks are packed into pieces "W", "W1", ...: "<topic's short
 * name><partition>:<offset>" in base 36, joined by ';'. The forms before,
 * a field "W<short name><partition>" and the older "w:<topic>:<partition>",
 * are still read, and deleted when the watermarks are next written. With
 * two forms (never written together, but read either way) the higher offset
 * holds. */
Test(window, watermarks_are_packed_and_read_in_the_older_forms) {
    char code[MD_STATE_CODE_LEN + 1], field[32], want[64];
    md_state_code("payments", code);
    snprintf(field, sizeof(field), "W%s3", code);
    md_source src = {"payments", 3, 41};
    cr_assert_eq(pay("p1", TH_T0, 10, false, &src), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    snprintf(want, sizeof(want), "%s3:15", code); /* 41 in base 36 */
    cr_assert_str_eq(last_set("W") ? last_set("W") : "(none)", want);
    for (size_t i = 0; i < ops.n; i++)
        cr_assert(strncmp(md_ops_field(&ops, i), "w:", 2) != 0 && strcmp(md_ops_field(&ops, i), field) != 0, "the older forms are never written");
    for (int order = 0; order < 4; order++) {
        md_cstate *fresh = md_cstate_new(cfg);
        /* 0: the older form alone; 1 and 2: both field forms, the older one
         * higher, read first or last; 3: the field, then a piece lower than it. */
        if (order == 2) md_cstate_load_field(fresh, field, strlen(field), "30", 2);
        if (order < 3) md_cstate_load_field(fresh, "w:payments:3", 12, "41", 2);
        if (order == 1) md_cstate_load_field(fresh, field, strlen(field), "30", 2);
        if (order == 3) {
            snprintf(want, sizeof(want), "%s3:u", code); /* 30 */
            md_cstate_load_field(fresh, field, strlen(field), "41", 2);
            md_cstate_load_field(fresh, "W", 1, want, strlen(want));
        }
        cr_assert_eq(fresh->bad_fields, 0);
        md_ops_clear(&ops);
        cr_assert_not(md_cs_take_offset(fresh, &ops, "payments", 3, 41), "order %d: 41 was applied", order);
        md_cstate_flush(fresh, &ops);
        cr_assert_eq(ops.n, 0, "a redelivered offset records nothing, nor repacks by itself");
        cr_assert(md_cs_take_offset(fresh, &ops, "payments", 3, 42), "order %d: 42 is new", order);
        md_cstate_flush(fresh, &ops);
        snprintf(want, sizeof(want), "%s3:16", code);
        cr_assert_str_eq(last_set("W") ? last_set("W") : "(none)", want, "order %d", order);
        cr_assert(order == 3 || was_deleted("w:payments:3"), "order %d: the older field is deleted", order);
        cr_assert(order == 0 || was_deleted(field), "order %d: the field of its own is deleted", order);
        md_ops_clear(&ops);
        cr_assert(md_cs_take_offset(fresh, &ops, "payments", 3, 43));
        md_cstate_flush(fresh, &ops);
        cr_assert_eq(ops.n, 1, "deleted once: %zu ops", ops.n);
        cr_assert(md_cs_take_offset(fresh, &ops, "payments", 2, 0), "another partition has its own watermark");
        cr_assert(md_cs_take_offset(fresh, &ops, "calls", 3, 0), "another topic has its own watermark");
        md_cstate_destroy(fresh);
    }
    /* Malformed ones are counted and not read. */
    const char *bad[][2] = {{"w:payments:x", "1"}, {"w::3", "1"}, {"w:payments", "1"}, {"W#####3", "1"}, {field, "x"}, {"Wabcde-1", "1"},
                            {"Wabcde", "1"}};
    md_cstate *fresh = md_cstate_new(cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate_reset(fresh);
        md_cstate_load_field(fresh, bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]));
        cr_assert_eq(fresh->n_wm, 0, "%s = %s is not read", bad[i][0], bad[i][1]);
        cr_assert_eq(fresh->bad_fields, strcmp(bad[i][0], "Wabcde") == 0 ? 0 : 1, "%s = %s", bad[i][0], bad[i][1]);
    }
    md_cstate_destroy(fresh);
}

/* Two campaigns, or two input topics, whose short names in the stored state
 * are the same would share their audit runs or watermarks: refused at load.
 * (FNV-1a 32 of camp35229 and camp64784 agree modulo 36^5, as do those of
 * topic-10929 and topic-41084.) */
Test(window, names_that_share_a_short_name_are_refused) {
    char a[MD_STATE_CODE_LEN + 1], b[MD_STATE_CODE_LEN + 1], err[512];
    /* The codes are part of the stored layout: another hash would orphan
     * every audit run and watermark already in Redis. (Worked out apart
     * from momentd: FNV-1a 32 modulo 36^5 in five base-36 digits.) */
    const char *known[][2] = {{"prepay_wallet", "jxoz8"}, {"payments", "3zeau"}, {"bill_instalment", "zyoq4"}, {"a", "9wi7g"}};
    for (size_t i = 0; i < 4; i++) {
        md_state_code(known[i][0], a);
        cr_assert_str_eq(a, known[i][1], "%s", known[i][0]);
    }
    /* And a series' field name, as every stored state has it: the daily
     * count of signal "payment", the hash's last four base-36 digits; and
     * the whole hash, the older names' ("S" + it packed, "s" + it in
     * decimal). */
    char series[16], older[16];
    md_series_field("payment", 86400000, MD_SUM_NONE, series, older);
    cr_assert_str_eq(series, "S6cvd");
    cr_assert_str_eq(older, "13f6cvd");
    md_state_code("camp35229", a);
    md_state_code("camp64784", b);
    cr_assert_str_eq(a, b);
    md_state_code("prepay_wallet", b);
    cr_assert_str_neq(a, b);
    const char *campaigns[] = {"\"name\": \"prepay_wallet\"", "\"name\": \"camp35229\"", "\"name\": \"bill_instalment\"",
                               "\"name\": \"camp64784\"", "score.prepay_wallet", "score.camp35229"};
    md_config *clash = th_config_edit(campaigns, 3, err, sizeof(err));
    cr_assert_null(clash, "two campaigns with one short name are refused");
    cr_assert(strstr(err, "\"camp64784\" and \"camp35229\" have the same short name"), "%s", err);
    const char *topics[] = {"\"group_id\": \"momentd\",", "\"group_id\": \"momentd\", \"topic_calls\": \"topic-10929\", \"topic_app_logins\": \"topic-41084\","};
    clash = th_config_edit(topics, 1, err, sizeof(err));
    cr_assert_null(clash, "two topics with one short name are refused");
    cr_assert(strstr(err, "$.kafka.topic_app_logins: \"topic-41084\" and \"topic-10929\""), "%s", err);
    const char *one_topic[] = {"\"group_id\": \"momentd\",", "\"group_id\": \"momentd\", \"topic_calls\": \"topic-10929\","};
    md_config *one = th_config_edit(one_topic, 1, err, sizeof(err));
    cr_assert_not_null(one, "one of them alone is fine: %s", err);
    md_config_destroy(one);
}

Test(window, republished_event_ids_count_once_within_the_horizon) {
    md_source src = {"payments", 0, 1};
    pay("same", TH_T0, 10, false, &src);
    src.offset = 2;
    cr_assert_eq(pay("same", TH_T0, 10, false, &src), MD_DUP_EVENT_ID);
    cr_assert_eq(md_cstate_window(cfg, cs, win("payments_180d"), TH_T0), 1);
}

/* Regression: the event-id guard (72 h) was shorter than the lateness window
 * (7 d), so an event re-published while 3-7 days behind the customer's newest
 * event passed the lateness check, was no longer recognised, and counted
 * twice. The guard now covers every event that can still be counted, up to
 * the lateness edge exactly; past it the event is too late to count at all. */
Test(window, republished_event_ids_are_recognised_up_to_the_lateness_window) {
    md_source src = {"payments", 0, 1};
    pay("same", TH_T0, 10, false, &src);
    src.offset = 2;
    pay("later", TH_T0 + 4 * TH_DAY, 10, false, &src);
    src.offset = 3;
    cr_assert_eq(pay("same", TH_T0, 10, false, &src), MD_DUP_EVENT_ID, "4 days behind: still recognised");
    src.offset = 4;
    pay("edge", TH_T0 + 7 * TH_DAY, 10, false, &src); /* exactly max_lateness ahead of "same" */
    src.offset = 5;
    cr_assert_eq(pay("same", TH_T0, 10, false, &src), MD_DUP_EVENT_ID, "at the lateness edge: still recognised");
    src.offset = 6;
    pay("past", TH_T0 + 7 * TH_DAY + 1, 10, false, &src);
    src.offset = 7;
    cr_assert_eq(pay("same", TH_T0, 10, false, &src), MD_TOO_LATE, "past the edge: too late, never counted");
    cr_assert_eq(md_cstate_window(cfg, cs, win("payments_180d"), TH_T0 + 8 * TH_DAY), 4, "same, later, edge, past: each once");
}

Test(window, state_round_trips_through_the_recorded_ops) {
    /* Replaying the recorded operations into a fresh state (as Redis would
     * hold them) gives the same windows: the recording cannot drift. */
    pay("p1", TH_T0, 10, true, NULL);
    pay("p2", TH_T0 + 20 * TH_DAY, 15, true, NULL);
    view("v1", TH_T0 + 20 * TH_DAY);
    md_cstate_flush(cs, &ops);
    md_cstate *fresh = md_cstate_new(cfg);
    /* Fold the ops as the apply script does (HSET/HINCRBY/HDEL on a map). */
    char fields[256][64];
    long long vals[256];
    char strs[256][160];
    size_t n = 0;
    for (size_t i = 0; i < ops.n; i++) {
        if (ops.ops[i].kind == MD_OP_OUTBOX_SET) continue; /* another key */
        const char *f = md_ops_field(&ops, i);
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(fields[k], f) == 0) break;
        if (k == n) {
            snprintf(fields[n], 64, "%s", f);
            vals[n] = 0;
            strs[n][0] = '\0';
            n++;
        }
        char kind = ops.ops[i].kind;
        if (kind == 'I') vals[k] += atoll(md_ops_value(&ops, i)), snprintf(strs[k], 160, "%lld", vals[k]);
        else if (kind == 'S') snprintf(strs[k], 160, "%s", md_ops_value(&ops, i)), vals[k] = atoll(strs[k]);
        else strs[k][0] = '\0', fields[k][0] = '\0';
    }
    for (size_t k = 0; k < n; k++)
        if (fields[k][0]) md_cstate_load_field(fresh, fields[k], strlen(fields[k]), strs[k], strlen(strs[k]));
    for (size_t w = 0; w < cfg->n_windows; w++)
        cr_assert_eq(md_cstate_window(cfg, fresh, (int)w, TH_T0 + 20 * TH_DAY), md_cstate_window(cfg, cs, (int)w, TH_T0 + 20 * TH_DAY),
                     "window %s", cfg->windows[w].name);
    double b1, b2;
    cr_assert(md_cstate_balance(cs, &b1));
    cr_assert(md_cstate_balance(fresh, &b2), "regression: the balance field was read as a bucket and lost on reload");
    cr_assert_float_eq(b1, b2, 1e-9);
    md_cstate_destroy(fresh);
}

Test(window, old_buckets_are_evicted) {
    pay("p1", TH_T0, 10, false, NULL);
    pay("p2", TH_T0 + 3 * TH_DAY, 10, false, NULL);
    md_cstate_flush(cs, &ops);
    const char *before = series_written(series_field_of(cfg, "payments_180d"));
    cr_assert(before && strchr(before, ','), "two buckets packed in the payments series: %s", before ? before : "(none)");
    md_ops_clear(&ops);
    pay("p3", TH_T0 + 200 * TH_DAY, 10, false, NULL);
    md_cstate_flush(cs, &ops);
    const char *after = series_written(series_field_of(cfg, "payments_180d"));
    cr_assert(after, "the series is written back");
    cr_assert_null(strchr(after, ','), "buckets older than span + max_lateness are dropped: %s", after);
    cr_assert_eq(md_cstate_window(cfg, cs, win("payments_180d"), TH_T0 + 200 * TH_DAY), 1);
}

Test(window, packed_series_round_trip_and_reject_garbage) {
    md_cstate *fresh = md_cstate_new(cfg);
    int w = win("payments_180d");
    /* Buckets are days since the epoch: TH_T0's day and three days later. */
    int64_t d0 = TH_T0 / TH_DAY;
    char packed[64];
    th_b36((uint64_t)d0, packed);
    strcat(packed, ":2,3:5");
    const char *sf = series_field_of(cfg, "payments_180d");
    cr_assert_eq(sf[0], 'S', "the current form's name: %s", sf);
    md_cstate_load_field(fresh, sf, strlen(sf), packed, strlen(packed));
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 3 * TH_DAY), 7);
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 200 * TH_DAY), 0);
    /* A value of 1 is written as nothing, a negative one with '-', gaps and
     * values in base 36: day d0 holding 1, d0 + 36 holding -35, d0 + 37
     * holding 36, d0 + 38 holding 1. */
    th_b36((uint64_t)d0, packed);
    strcat(packed, ",10:-z,1:10,1");
    md_cstate_reset(fresh);
    md_cstate_load_field(fresh, sf, strlen(sf), packed, strlen(packed));
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 38 * TH_DAY), 1 - 35 + 36 + 1);
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 30 * TH_DAY), 1);
    /* Each of these is refused as a whole (the series is left empty), never half-read. */
    const char *bad[] = {"c:", "c:#", "c,0", "c,-3", "c,", "c,,", ":1", ",c", "c:1,", "C", "c:A",
                         /* numbers only as momentd writes them: no blank, no '+', no overflow */
                         "c: 1", "c:+1", "c:1_", "c:-", "c:-,1", "c:1y2v4b4t4g3bsgxs", "c:1y2v4b4t4g3bt", "1y2v4b4t4g3bt,1",
                         /* thirteen digits past 2^64 - 1 ("3w5e11264sgsf"): refused, never wrapped round to a small number */
                         "c:3w5e11264sgsg", "c:zzzzzzzzzzzzz", "c:-zzzzzzzzzzzzz", "zzzzzzzzzzzzz",
                         /* fourteen digits, even of a small number (base 36 has at most 13) */
                         "c:10000000000000", "10000000000000,1", "c:0000000000000z", "c,00000000000001",
                         /* a byte neither a digit nor a separator, after a number */
                         "c#1", "c:1#2", "c:2;1",
                         /* a gap that takes the bucket number past INT64_MAX (found by fuzz_state) */
                         "1y2p0ij32e8e7,1", "c,1y2p0ij32e8e7"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate_reset(fresh);
        md_cstate_load_field(fresh, sf, strlen(sf), bad[i], strlen(bad[i]));
        cr_assert_eq(md_cstate_window(cfg, fresh, w, 12 * TH_DAY), 0, "\"%s\" must not load", bad[i]);
        cr_assert_eq(fresh->bad_fields, 1, "\"%s\" is counted as a bad field", bad[i]);
    }
    /* A NUL is no separator either. */
    md_cstate_reset(fresh);
    md_cstate_load_field(fresh, sf, strlen(sf), "c\0" "1", 3);
    cr_assert_eq(fresh->bad_fields, 1, "a NUL between two numbers");
    /* INT64_MAX and INT64_MIN, the ends of what a bucket holds, load. */
    md_cstate_reset(fresh);
    const char *ends = "c:1y2p0ij32e8e7,1:-1y2p0ij32e8e8";
    md_cstate_load_field(fresh, sf, strlen(sf), ends, strlen(ends));
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert_eq(md_cstate_window_raw(fresh, w, 13 * TH_DAY), -1, "INT64_MAX + INT64_MIN");
    md_cstate_destroy(fresh);
}

/* The older form, "s<hash>" in decimal with every value written, is still
 * read; the next flush writes the current form and deletes the older name,
 * and when a hash holds both names the current one is read. */
Test(window, the_older_series_form_is_read_and_rewritten) {
    md_cstate *fresh = md_cstate_new(cfg);
    int w = win("payments_180d");
    int64_t d0 = TH_T0 / TH_DAY;
    const char *sf = series_field_of(cfg, "payments_180d");
    char legacy[24], packed[64], current[64];
    series_older_of(cfg, "payments_180d", 's', legacy);
    snprintf(packed, sizeof(packed), "%lld:2,3:5", (long long)d0);
    md_cstate_load_field(fresh, legacy, strlen(legacy), packed, strlen(packed));
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 3 * TH_DAY), 7);
    md_ops_clear(&ops);
    md_cstate_flush(fresh, &ops);
    th_b36((uint64_t)d0, current);
    strcat(current, ":2,3:5");
    cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", current, "rewritten in the current form");
    bool deleted = false;
    for (size_t i = 0; i < ops.n; i++) deleted |= ops.ops[i].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, i), legacy) == 0;
    cr_assert(deleted, "the older name %s is deleted", legacy);
    /* An older series that does not parse is counted and left as it was:
     * no write deletes it or puts an empty one in its place. */
    md_cstate_reset(fresh);
    md_cstate_load_field(fresh, legacy, strlen(legacy), "12:x", 4);
    cr_assert_eq(fresh->bad_fields, 1);
    md_ops_clear(&ops);
    md_cstate_flush(fresh, &ops);
    for (size_t i = 0; i < ops.n; i++)
        cr_assert(strcmp(md_ops_field(&ops, i), legacy) != 0 && strcmp(md_ops_field(&ops, i), sf) != 0, "%s written", md_ops_field(&ops, i));
    /* The older form is never read without its values, nor with base 36. */
    const char *bad[] = {"12", "12:1,3", "12:1,0:1", "12:1,-3:1", "12:1,,", ":1", "12:a", "12:99999999999999999999",
                         "12:9223372036854775808"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate_reset(fresh);
        md_cstate_load_field(fresh, legacy, strlen(legacy), bad[i], strlen(bad[i]));
        cr_assert_eq(md_cstate_window(cfg, fresh, w, 12 * TH_DAY), 0, "\"%s\" must not load", bad[i]);
        cr_assert_eq(fresh->bad_fields, 1, "\"%s\" is counted as a bad field", bad[i]);
    }
    /* Both names, in either order: the current one counts, the older goes. */
    for (int order = 0; order < 2; order++) {
        md_cstate_reset(fresh);
        th_b36((uint64_t)d0, current);
        strcat(current, ":4");
        for (int k = 0; k < 2; k++) {
            bool older = (k == 0) == (order == 0);
            const char *f = older ? legacy : sf, *v = older ? packed : current;
            md_cstate_load_field(fresh, f, strlen(f), v, strlen(v));
        }
        cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 3 * TH_DAY), 4, "order %d: the current form is read", order);
        md_ops_clear(&ops);
        md_cstate_flush(fresh, &ops);
        deleted = false;
        for (size_t i = 0; i < ops.n; i++) deleted |= ops.ops[i].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, i), legacy) == 0;
        cr_assert(deleted, "order %d: the older name is deleted", order);
        cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", current, "order %d", order);
    }
    md_cstate_destroy(fresh);
}

/* The names before four digits, "S<the whole hash>" packed: read while
 * the current name is not there, renamed by the next flush. With all three
 * names in a hash, in any order, the current one is read and both older
 * ones are deleted; without the current, the older packed one wins over
 * the decimal one. */
Test(window, the_longer_series_name_is_read_and_renamed) {
    md_cstate *fresh = md_cstate_new(cfg);
    int w = win("payments_180d");
    int64_t d0 = TH_T0 / TH_DAY;
    const char *sf = series_field_of(cfg, "payments_180d");
    char longer[24], decimal[24], v_long[64], v_cur[64], v_dec[64];
    series_older_of(cfg, "payments_180d", 'S', longer);
    series_older_of(cfg, "payments_180d", 's', decimal);
    cr_assert_gt(strlen(longer), strlen(sf), "%s is longer than %s", longer, sf);
    th_b36((uint64_t)d0, v_long);
    strcat(v_long, ":2,3:5"); /* 7 by TH_T0 + 3 days */
    th_b36((uint64_t)d0, v_cur);
    strcat(v_cur, ":4"); /* 4 */
    snprintf(v_dec, sizeof(v_dec), "%lld:9", (long long)d0); /* 9 */
    md_cstate_load_field(fresh, longer, strlen(longer), v_long, strlen(v_long));
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 3 * TH_DAY), 7);
    md_ops_clear(&ops);
    md_cstate_flush(fresh, &ops);
    cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", v_long, "written under the current name");
    bool deleted = false;
    for (size_t i = 0; i < ops.n; i++) deleted |= ops.ops[i].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, i), longer) == 0;
    cr_assert(deleted, "the longer name %s is deleted", longer);
    /* Every order of the three names (and of the two older ones alone). */
    const char *names[3] = {sf, longer, decimal}, *vals[3] = {v_cur, v_long, v_dec};
    const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int with_current = 0; with_current < 2; with_current++)
        for (int p = 0; p < 6; p++) {
            md_cstate_reset(fresh);
            for (int k = 0; k < 3; k++) {
                int n = perms[p][k];
                if (n == 0 && !with_current) continue;
                md_cstate_load_field(fresh, names[n], strlen(names[n]), vals[n], strlen(vals[n]));
            }
            cr_assert_eq(fresh->bad_fields, 0);
            cr_assert_eq(md_cstate_window(cfg, fresh, w, TH_T0 + 3 * TH_DAY), with_current ? 4 : 7,
                         "order %d%d%d, current %s: the newest form is read", perms[p][0], perms[p][1], perms[p][2],
                         with_current ? "there" : "absent");
            md_ops_clear(&ops);
            md_cstate_flush(fresh, &ops);
            int dels = 0;
            for (size_t i = 0; i < ops.n; i++)
                dels += ops.ops[i].kind == MD_OP_DEL &&
                        (strcmp(md_ops_field(&ops, i), longer) == 0 || strcmp(md_ops_field(&ops, i), decimal) == 0);
            cr_assert_eq(dels, 2, "order %d%d%d: both older names deleted", perms[p][0], perms[p][1], perms[p][2]);
            cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", with_current ? v_cur : v_long);
        }
    md_cstate_destroy(fresh);
}

static void b36(int64_t v, char *out) {
    char tmp[16];
    size_t n = 0, len = 0;
    do tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
    while (v /= 36);
    while (n) out[len++] = tmp[--n];
    out[len] = '\0';
}

static md_applied pay_balance(const char *id, int64_t ts, const char *balance_after) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"%s\",\"type\":\"payment\",\"customer_id\":\"w1\",\"ts\":%lld,\"amount\":10,\"kind\":\"bill\","
             "\"late\":false%s%s}",
             id, (long long)ts, balance_after ? ",\"balance_after\":" : "", balance_after ? balance_after : "");
    md_event ev = th_event(json);
    cr_assert_eq(md_engine_process(cfg, cs, NULL, &ev, NULL, ts, &ops, NULL, &out), MD_ERR_OK);
    return out.applied;
}

static void load(md_cstate *s, const char *f, const char *v) { md_cstate_load_field(s, f, strlen(f), v, strlen(v)); }

/* The balance part of the T written in ops ("<balance>[,<its time>]",
 * after the three times), "" for a T without one, NULL when no T. */
static const char *t_balance(void) {
    const char *t = last_set("T");
    for (int k = 0; t && k < 3; k++) {
        t = strchr(t, ',');
        if (t) t++;
    }
    return last_set("T") ? (t ? t : "") : NULL;
}

Test(window, event_times_and_the_balance_are_packed_and_read_in_the_older_form) {
    char t0[16], t2[16], want[64];
    b36(TH_T0, t0);
    b36(TH_T0 + TH_HOUR, t2);
    cr_assert_eq(pay_balance("p1", TH_T0, "500"), MD_APPLIED);
    cr_assert_eq(view("v1", TH_T0 + TH_HOUR), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    /* One field of the three types' times in base 36, none for a type not seen. */
    snprintf(want, sizeof(want), ".%s,,%s,500", t0, t2);
    /* The balance at the newest payment carries no time of its own; the
     * '.' says the outbox was left empty (the apply wrote nothing to it). */
    cr_assert_str_eq(last_set("T") ? last_set("T") : "(none)", want);
    for (size_t i = 0; i < ops.n; i++)
        cr_assert(strcmp(md_ops_field(&ops, i), "t0") != 0 && strcmp(md_ops_field(&ops, i), "bal") != 0, "the older form is never written");
    /* Read back, and in the older form, the times and "bal" (either order):
     * the balance's time is the newest payment's. */
    char times[64];
    snprintf(times, sizeof(times), "%s,,%s", t0, t2);
    for (int order = 0; order < 3; order++) {
        md_cstate *fresh = md_cstate_new(cfg);
        if (order == 2) load(fresh, "T", want);
        if (order == 0) load(fresh, "T", times);
        if (order < 2) load(fresh, "bal", "500");
        if (order == 1) load(fresh, "T", times);
        md_cstate_view v;
        md_cstate_view_of(fresh, &v);
        cr_assert_eq(v.balance_ts, TH_T0, "order %d", order);
        cr_assert_eq(v.last_ts[MD_EVENT_PAYMENT], TH_T0);
        cr_assert_eq(v.last_ts[MD_EVENT_CALL], 0);
        cr_assert_eq(v.last_ts[MD_EVENT_APP_LOGIN], TH_T0 + TH_HOUR);
        cr_assert_eq(v.newest_ts, TH_T0 + TH_HOUR);
        cr_assert_eq(fresh->bad_fields, 0);
        md_cstate_destroy(fresh);
    }
    /* A later payment without a balance: the balance keeps its own time,
     * now written out; one with a balance makes it implicit again. */
    md_ops_clear(&ops);
    cr_assert_eq(pay_balance("p2", TH_T0 + 2 * TH_HOUR, NULL), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    char t0b[16];
    b36(TH_T0, t0b);
    snprintf(want, sizeof(want), "500,%s", t0b);
    cr_assert_str_eq(t_balance() ? t_balance() : "(none)", want, "its time in base 36");
    md_cstate_view v;
    md_cstate_view_of(cs, &v);
    cr_assert_eq(v.balance_ts, TH_T0);
    md_ops_clear(&ops);
    cr_assert_eq(pay_balance("p3", TH_T0 + 3 * TH_HOUR, "12.5"), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    cr_assert_str_eq(t_balance() ? t_balance() : "(none)", "12.5");
    /* A late payment with a balance does not replace the newer balance. */
    md_ops_clear(&ops);
    cr_assert_eq(pay_balance("p4", TH_T0 + TH_HOUR, "99"), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    cr_assert(!t_balance() || strcmp(t_balance(), "12.5") == 0, "%s", t_balance());
    double b;
    cr_assert(md_cstate_balance(cs, &b));
    cr_assert_float_eq(b, 12.5, 1e-9);

    /* The older form, one field a type and the balance with its time:
     * read, then rewritten as "T" with the balance (the older fields
     * deleted) by the next write. */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, "w1");
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", (long long)TH_T0);
    load(cs, "t0", ms);
    snprintf(ms, sizeof(ms), "%lld", (long long)(TH_T0 + TH_HOUR));
    load(cs, "t1", ms);
    snprintf(want, sizeof(want), "7.25,%lld", (long long)TH_T0);
    load(cs, "bal", want);
    md_cstate_view_of(cs, &v);
    cr_assert_eq(v.last_ts[MD_EVENT_PAYMENT], TH_T0);
    cr_assert_eq(v.last_ts[MD_EVENT_CALL], TH_T0 + TH_HOUR);
    cr_assert_eq(v.balance_ts, TH_T0);
    md_ops_clear(&ops);
    cr_assert_eq(view("v2", TH_T0 + 2 * TH_HOUR), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    char t1[16];
    b36(TH_T0 + TH_HOUR, t1);
    b36(TH_T0 + 2 * TH_HOUR, t2);
    snprintf(want, sizeof(want), ".%s,%s,%s,7.25", t0, t1, t2);
    cr_assert_str_eq(last_set("T") ? last_set("T") : "(none)", want, "the balance at the newest payment, its time left out");
    for (int k = 0; k < 3; k++) {
        char f[3] = {'t', (char)('0' + k), '\0'};
        bool deleted = false;
        for (size_t i = 0; i < ops.n; i++) deleted |= strcmp(md_ops_field(&ops, i), f) == 0 && ops.ops[i].kind == MD_OP_DEL;
        cr_assert(deleted, "%s deleted", f);
    }
    cr_assert(was_deleted("bal"), "bal deleted");
    /* A state with T and "bal" both holding a balance: T's is read, in
     * either order; "bal" alone goes along another write, never by itself. */
    for (int order = 0; order < 2; order++) {
        md_cstate *fresh = md_cstate_new(cfg);
        snprintf(want, sizeof(want), "%s,,,3.5", t0);
        if (order) load(fresh, "bal", "9");
        load(fresh, "T", want);
        if (!order) load(fresh, "bal", "9");
        cr_assert(md_cstate_balance(fresh, &b));
        cr_assert_float_eq(b, 3.5, 1e-9, "order %d: T's balance", order);
        md_ops_clear(&ops);
        md_cstate_flush(fresh, &ops);
        cr_assert_eq(ops.n, 0, "order %d: nothing else written, nothing written", order);
        md_ops_add(&ops, MD_OP_SET, "cb", "1");
        md_cstate_flush(fresh, &ops);
        cr_assert(was_deleted("bal"), "order %d: bal goes along another write", order);
        cr_assert_str_eq(last_set("T") && last_set("T")[0] == '.' ? last_set("T") + 1 : "(none)", want, "order %d", order);
        md_cstate_destroy(fresh);
    }

    /* What does not parse is counted and changes nothing. */
    const char *bad[][2] = {{"T", "abc"}, {"T", "1,2,3,x"}, {"T", "1,2,3,"}, {"T", "1,2,3,4,"}, {"T", "1,2,3,4,5,6"}, {"T", "1,2,3,nan"},
                            {"T", "1,2,3,,5"}, {"T", "1,2"}, {"T", "!,,"}, {"T", "zzzzzzzzzzzzzz,,"}, {"T", "1,2,!"}, {"T", ".1,2,!"},
                            {"T", ".."}, {"T", ".!,,"},
                            {"bal", ""}, {"bal", "abc"}, {"bal", "1,x"}, {"bal", "nan"}, {"bal", ",5"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate *fresh = md_cstate_new(cfg);
        load(fresh, bad[i][0], bad[i][1]);
        cr_assert_eq(fresh->bad_fields, 1, "%s = \"%s\" refused", bad[i][0], bad[i][1]);
        md_cstate_view_of(fresh, &v);
        cr_assert_eq(v.newest_ts, 0);
        cr_assert_not(md_cstate_balance(fresh, &b));
        md_cstate_destroy(fresh);
    }
}

Test(window, stored_integers_load_to_their_limits) {
    md_cstate *fresh = md_cstate_new(cfg);
    const char *good[][2] = {{"9223372036854775807", "9223372036854775807"}, {"-9223372036854775808", "-9223372036854775808"},
                             {"0", "0"}, {"-17", "-17"}, {"007", "7"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        md_cstate_reset(fresh);
        md_cstate_load_field(fresh, "v", 1, good[i][0], strlen(good[i][0]));
        char got[32];
        snprintf(got, sizeof(got), "%lld", (long long)md_cstate_version(fresh));
        cr_assert_str_eq(got, good[i][1], "version \"%s\" loads as %s", good[i][0], got);
    }
    md_cstate_destroy(fresh);
}

Test(window, a_batch_writes_each_series_once) {
    for (int k = 0; k < 20; k++) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", k);
        pay(id, TH_T0 + k * TH_HOUR, 10, false, NULL);
    }
    md_cstate_flush(cs, &ops);
    for (size_t i = 0; i < ops.n; i++) {
        const char *f = md_ops_field(&ops, i);
        if (f[0] != 'H' && f[0] != 'S') continue;
        size_t writes = 0;
        for (size_t j = 0; j < ops.n; j++) writes += strcmp(md_ops_field(&ops, j), f) == 0;
        cr_assert_eq(writes, 1, "20 payments in one batch: %s is written once, got %zu", f, writes);
    }
    const char *sf = series_field_of(cfg, "payments_180d");
    cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", "ftu:k", "one day bucket (20514) holding 20, in base 36");
}

/* A configuration that reorders signals and adds a window (a reload, or a
 * restart with an edited file) reads every series the old one wrote: series
 * are stored under a name derived from what they count, not their position. */
Test(window, history_survives_reordered_signals_and_a_new_window) {
    pay("p1", TH_T0, 10, true, NULL);
    pay("p2", TH_T0 + TH_DAY, 20, false, NULL);
    view("v1", TH_T0 + TH_DAY);
    md_cstate_flush(cs, &ops);
    const char *pairs[] = {
        "{\"name\": \"payment\", \"type\": \"payment\"},\n    {\"name\": \"late_payment\", \"type\": \"payment\", \"where\": \"late\"},",
        "{\"name\": \"late_payment\", \"type\": \"payment\", \"where\": \"late\"},\n    {\"name\": \"payment\", \"type\": \"payment\"},",
        "\"windows\": [",
        "\"windows\": [\n    {\"name\": \"payments_7d_hourly\", \"signal\": \"payment\", \"span\": \"7d\", \"granularity\": \"1h\"},",
    };
    char err[512];
    md_config *edited = th_config_edit(pairs, 2, err, sizeof(err));
    cr_assert_not_null(edited, "%s", err);
    cr_assert_str_eq(edited->signals[0].name, "late_payment", "the edit reordered the signals");
    cr_assert_str_eq(edited->windows[0].name, "payments_7d_hourly", "the edit added a window first");
    md_cstate *fresh = md_cstate_new(edited);
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_SET) {
            const char *f = md_ops_field(&ops, i), *v = md_ops_value(&ops, i);
            md_cstate_load_field(fresh, f, strlen(f), v, strlen(v));
        }
    const char *names[] = {"payments_180d", "late_payments_180d", "payment_amount_30d", "prepay_views_7d"};
    double want[] = {2, 1, 30, 1};
    for (size_t k = 0; k < 4; k++) {
        int w_old = win(names[k]), w_new = -1;
        for (size_t i = 0; i < edited->n_windows; i++)
            if (strcmp(edited->windows[i].name, names[k]) == 0) w_new = (int)i;
        cr_assert_geq(w_new, 0);
        double before = md_cstate_window(cfg, cs, w_old, TH_T0 + TH_DAY);
        cr_assert_float_eq(before, want[k], 1e-9, "%s before: %g", names[k], before);
        cr_assert_float_eq(md_cstate_window(edited, fresh, w_new, TH_T0 + TH_DAY), before, 1e-9, "%s read back by the edited config",
                           names[k]);
    }
    cr_assert_str_neq(series_field_of(cfg, "payments_180d"), series_field_of(cfg, "late_payments_180d"));
    md_cstate_destroy(fresh);
    md_config_destroy(edited);
}

/* The guard's pieces as Redis holds them after the writes in ops, flushed
 * first (md_cstate_flush): field "G<k>" -> value. */
typedef struct guard_pieces {
    char field[MD_SEEN_PIECES][8];
    char value[MD_SEEN_PIECES][80];
    size_t n;
} guard_pieces;

static void guard_apply(guard_pieces *g) {
    md_cstate_flush(cs, &ops);
    for (size_t k = 0; k < ops.n; k++) {
        const char *f = md_ops_field(&ops, k);
        cr_assert_neq(f[0], 'J', "an id written in the earlier one-field form: %s", f);
        if (f[0] != 'G') continue;
        size_t at = 0;
        while (at < g->n && strcmp(g->field[at], f) != 0) at++;
        if (ops.ops[k].kind == MD_OP_DEL) {
            cr_assert_lt(at, g->n, "%s deleted, never written", f);
            g->n--;
            memmove(g->field[at], g->field[at + 1], (g->n - at) * sizeof(g->field[0]));
            memmove(g->value[at], g->value[at + 1], (g->n - at) * sizeof(g->value[0]));
            continue;
        }
        const char *v = md_ops_value(&ops, k);
        /* Redis keeps a hash compact (listpack) while every value is 64
         * bytes at most. */
        cr_assert_leq(strlen(v), 64, "%s = %s: over the listpack value limit", f, v);
        if (at == g->n) snprintf(g->field[g->n++], sizeof(g->field[0]), "%s", f);
        snprintf(g->value[at], sizeof(g->value[0]), "%s", v);
    }
}

static size_t guard_ids(const guard_pieces *g) {
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) n += strlen(g->value[i]) / 12;
    return n;
}

/* A fresh state read from the pieces, as the next batch would. */
static void guard_reload(const guard_pieces *g) {
    md_cstate_reset(cs);
    for (size_t i = 0; i < g->n; i++) md_cstate_load_field(cs, g->field[i], strlen(g->field[i]), g->value[i], strlen(g->value[i]));
    cr_assert_eq(cs->bad_fields, 0);
}

/* Regression: every accepted event added a field to its customer's hash for
 * the whole horizon, with no count limit, and each check scanned them all:
 * 200,000 ids to one customer made a 16.5 MB hash and a 181 ms batch. The
 * guard now keeps at most MD_SEEN_MAX ids (packed a few to a field, each
 * within the listpack's value limit): a fixed cost per event and a fixed
 * size per customer. The oldest beyond it are forgotten, counted, and would
 * count again if re-published. */
Test(window, the_event_id_guard_is_bounded_and_counts_what_it_forgets) {
    char id[32];
    size_t evicted = 0;
    static guard_pieces g;
    g.n = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "hot%d", i);
        md_ops_clear(&ops);
        cr_assert_eq(pay(id, TH_T0 + i * 1000, 1, false, NULL), MD_APPLIED);
        evicted += out.dedupe_evicted;
        guard_apply(&g);
        cr_assert_leq(guard_ids(&g), MD_SEEN_MAX, "after %d events the guard holds %zu ids", i + 1, guard_ids(&g));
        cr_assert_eq(guard_ids(&g), cs->n_seen, "Redis's pieces hold %zu ids, the state %zu", guard_ids(&g), cs->n_seen);
    }
    cr_assert_eq(guard_ids(&g), MD_SEEN_MAX);
    cr_assert_eq(g.n, MD_SEEN_PIECES, "%zu pieces for %d ids", g.n, MD_SEEN_MAX);
    cr_assert_eq(evicted, 1000 - MD_SEEN_MAX, "forgotten for room: %zu", evicted);
    guard_reload(&g);
    cr_assert_eq(pay("hot999", TH_T0 + 999 * 1000, 1, false, NULL), MD_DUP_EVENT_ID, "the newest ids are remembered");
    snprintf(id, sizeof(id), "hot%d", 1000 - MD_SEEN_MAX);
    cr_assert_eq(pay(id, TH_T0, 1, false, NULL), MD_DUP_EVENT_ID, "the oldest one kept");
    cr_assert_eq(pay("hot0", TH_T0, 1, false, NULL), MD_APPLIED, "forgotten for room: counts again (documented)");
}

/* Ten base-36 digits of h modulo 36^10: an id's hash in the guard. */
static void b36_hash10(uint64_t h, char out[16]) {
    h %= UINT64_C(3656158440062976);
    for (int i = 9; i >= 0; i--, h /= 36) out[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[h % 36];
    out[10] = '\0';
}

/* "J" + base 36 of h modulo 36^10: the earlier form's field for a hash. */
static void b36_field(uint64_t h, char out[24]) {
    out[0] = 'J';
    th_b36(h % UINT64_C(3656158440062976), out + 1);
}

/* The hash the guard wrote for one id under the configuration's key (a
 * fresh state: the only id of piece "G"). */
static void guard_hash_of(const char *id, char hash[16]) {
    md_ops_clear(&ops);
    cr_assert_eq(pay(id, TH_T0, 1, false, NULL), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    const char *v = last_set("G");
    cr_assert(v && strlen(v) > 12 && strlen(v) < 24, "one id in piece G: %s", v ? v : "(none)");
    snprintf(hash, 16, "%.10s", v + strlen(v) % 12);
}
/* SipHash-2-4 as its authors give it (key 00 01 .. 0f; messages 00 01 ..
 * of each length): the guard's hash is the real keyed function. */
Test(window, siphash24_matches_the_reference_vectors) {
    unsigned char msg[16];
    for (int i = 0; i < 16; i++) msg[i] = (unsigned char)i;
    const uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    cr_assert_eq(md_siphash24(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    cr_assert_eq(md_siphash24(key, msg, 1), 0x74f839c593dc67fdULL);
    cr_assert_eq(md_siphash24(key, msg, 8), 0x93f5f5799a932462ULL);
    cr_assert_eq(md_siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
}

/* Two ids whose unkeyed hashes (md_hash64 with the guard's old seed) are
 * equal: a producer who can choose event ids could make a real event look
 * like a re-publication of its own and be dropped. Found offline by
 * tools/fnv_collide.c (a distinguished-point search, about 2^32 steps).
 * Under the keyed guard both count. */
Test(window, ids_crafted_to_collide_without_the_key_both_count) {
    const char *a = "a545f8d31831771f", *b = "76d191e47bb760a6";
    cr_assert_str_neq(a, b);
    cr_assert_eq(md_hash64(a, strlen(a), 0x65766964), md_hash64(b, strlen(b), 0x65766964), "the pair does not collide unkeyed");
    cfg->dedupe.id_key[0] = 0x243f6a8885a308d3ULL;
    cfg->dedupe.id_key[1] = 0x13198a2e03707344ULL;
    cr_assert_eq(pay(a, TH_T0, 1, false, NULL), MD_APPLIED);
    cr_assert_eq(pay(b, TH_T0 + 1000, 1, false, NULL), MD_APPLIED, "the crafted id was taken for a re-publication");
    cr_assert_eq(pay(b, TH_T0 + 1000, 1, false, NULL), MD_DUP_EVENT_ID, "a real re-publication is still recognised");
    cr_assert_eq(md_cstate_window_raw(cs, win("payments_180d"), TH_T0 + 2000), 2);
}

/* The hash depends on the deployment's key: without it nobody can say
 * which ids share one. */
Test(window, the_guard_hashes_ids_under_the_deployment_key) {
    char f0[16], f1[16];
    guard_hash_of("pay-1", f0);
    md_cstate_reset(cs);
    cfg->dedupe.id_key[0] = 1;
    guard_hash_of("pay-1", f1);
    cr_assert_str_neq(f0, f1, "the same hash under two keys");
    char legacy[16];
    b36_hash10(md_hash64("pay-1", 5, 0x65766964), legacy);
    cr_assert_str_neq(f1, legacy, "the keyed hash is the unkeyed one");
    const uint64_t key[2] = {1, 0};
    char want[16];
    b36_hash10(md_siphash24(key, "pay-1", 5), want);
    cr_assert_str_eq(f1, want);
}

/* The guard's piece "G" = base 36 of the oldest id's hour, then per id ten
 * base-36 digits of its hash modulo 36^10 and two of its hours above that
 * base (event time in hours, rounded up); read back, a re-publication is
 * one for the whole horizon and at most an hour more. */
Test(window, the_guard_packs_ids_into_pieces_in_hours_under_base_36) {
    cfg->dedupe.id_key[0] = 3;
    const uint64_t key[2] = {3, 0};
    const int64_t t7 = TH_T0 + 20 * 60000 + 34567; /* within an hour, so that rounding up shows */
    md_ops_clear(&ops);
    cr_assert_eq(pay("pay-7", t7, 1, false, NULL), MD_APPLIED);
    cr_assert_eq(pay("pay-6", t7 + 2 * TH_HOUR, 1, false, NULL), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    char want[64], h7[16], h6[16];
    th_b36((uint64_t)(t7 / TH_HOUR + 1), want);
    b36_hash10(md_siphash24(key, "pay-7", 5), h7);
    b36_hash10(md_siphash24(key, "pay-6", 5), h6);
    snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s00%s02", h7, h6);
    cr_assert_str_eq(last_set("G") ? last_set("G") : "(none)", want);
    size_t sets = 0;
    for (size_t k = 0; k < ops.n; k++) sets += md_ops_field(&ops, k)[0] == 'G';
    cr_assert_eq(sets, 1, "one write of the piece a batch, not one an id: %zu", sets);
    /* Read back: remembered at its time, for its whole horizon. */
    md_cstate_reset(cs);
    md_cstate_load_field(cs, "G", 1, want, strlen(want));
    cr_assert_eq(cs->bad_fields, 0);
    cr_assert_eq(pay("pay-5", t7 + 3 * TH_HOUR, 1, false, NULL), MD_APPLIED); /* an add prunes what is past the horizon */
    cr_assert_eq(pay("pay-7", t7, 1, false, NULL), MD_DUP_EVENT_ID, "its time read back is the event's, not 1970's");
    cr_assert_eq(pay("pay-6", t7, 1, false, NULL), MD_DUP_EVENT_ID);
    md_cstate_reset(cs);
    md_cstate_load_field(cs, "G", 1, want, strlen(want));
    int64_t edge = t7 + cfg->rules->dedupe_horizon_ms; /* the newest event exactly a horizon after pay-7 */
    cr_assert_eq(pay("pay-4", edge, 1, false, NULL), MD_APPLIED);
    cr_assert_eq(pay("pay-7", t7, 1, false, NULL), MD_DUP_EVENT_ID, "remembered for its whole horizon");
    /* Malformed pieces are left alone, nothing kept from them: no id, no
     * base, a digit out of base 36, six ids (over 64 bytes), a piece
     * number with a leading zero or beyond the last piece. */
    md_cstate_reset(cs);
    char six[128];
    snprintf(six, sizeof(six), "%s", want);
    for (int i = 0; i < 4; i++) snprintf(six + strlen(six), sizeof(six) - strlen(six), "%s00", h7);
    const char *bad[][2] = {{"G", "dhq1"}, {"G", "0000000000"}, {"G", "1Abcdefghij00"}, {"G", "1abcdefghij0?"},
                            {"G", six},    {"G0", want},        {"G01", want},          {"G1g", want}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) md_cstate_load_field(cs, bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]));
    cr_assert_eq(cs->bad_fields, sizeof(bad) / sizeof(bad[0]));
    cr_assert_eq(cs->n_seen, 0);
}

/* An id that ages out is dropped by rewriting its piece, never by a delete
 * of its own (an HDEL of an aged id took 1 us of Redis's 14 an event, BENCHMARKS.md);
 * a piece whose last id aged out is deleted. */
Test(window, aged_ids_leave_by_their_piece_rewritten) {
    static guard_pieces g;
    g.n = 0;
    char id[16];
    md_ops_clear(&ops);
    for (int i = 0; i < 7; i++) { /* G holds five, G1 two */
        snprintf(id, sizeof(id), "p%d", i);
        cr_assert_eq(pay(id, TH_T0 + i * TH_HOUR, 1, false, NULL), MD_APPLIED);
    }
    guard_apply(&g);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.field[0], "G");
    cr_assert_str_eq(g.field[1], "G1");
    /* Every one ages out at once: G holds the new id, G1 goes. */
    guard_reload(&g);
    md_ops_clear(&ops);
    cr_assert_eq(pay("late-1", TH_T0 + 10 * TH_DAY, 1, false, NULL), MD_APPLIED);
    guard_apply(&g);
    for (size_t k = 0; k < ops.n; k++)
        cr_assert(ops.ops[k].kind != MD_OP_DEL || md_ops_field(&ops, k)[0] == 'G', "a delete of %s", md_ops_field(&ops, k));
    cr_assert_eq(g.n, 1, "%zu pieces left", g.n);
    cr_assert_eq(guard_ids(&g), 1);
    /* One id further apart than the horizon (the bench's customers: one event in
     * three days, 72 hours), the common case: one write of G, no delete. */
    for (int i = 0; i < 5; i++) {
        guard_reload(&g);
        md_ops_clear(&ops);
        snprintf(id, sizeof(id), "q%d", i);
        cr_assert_eq(pay(id, TH_T0 + (18 + 8 * i) * TH_DAY, 1, false, NULL), MD_APPLIED);
        guard_apply(&g);
        for (size_t k = 0; k < ops.n; k++) cr_assert_neq(ops.ops[k].kind, MD_OP_DEL, "a delete of %s", md_ops_field(&ops, k));
        cr_assert_eq(guard_ids(&g), 1, "%zu pieces, %s = %s", g.n, g.field[0], g.value[0]);
    }
    guard_reload(&g);
    cr_assert_eq(pay("q4", TH_T0, 1, false, NULL), MD_DUP_EVENT_ID);
    cr_assert_eq(pay("q3", TH_T0, 1, false, NULL), MD_APPLIED, "aged out of the piece");
}

/* The forms of earlier versions, one field an id ("J" + base 36 of the
 * hash modulo 36^10 = hours; "j" + the whole hash in base 36 = seconds;
 * "i" + 16 hex digits = ms; "e" + the unkeyed hash), are honoured until
 * they age out, and deleted under their own names; new ids go to a piece. */
Test(window, the_guard_reads_the_earlier_forms) {
    cfg->dedupe.id_key[0] = 3;
    const uint64_t key[2] = {3, 0};
    const int64_t t7 = TH_T0 + 20 * 60000 + 34567;
    char f[24];
    b36_field(md_siphash24(key, "pay-7", 5), f);
    char hours[24];
    snprintf(hours, sizeof(hours), "%lld", (long long)(t7 / TH_HOUR + 1));
    md_cstate_load_field(cs, f, strlen(f), hours, strlen(hours));
    cr_assert_eq(pay("pay-6", t7 + 1000, 1, false, NULL), MD_APPLIED); /* an add prunes what is past the horizon */
    cr_assert_eq(pay("pay-7", t7, 1, false, NULL), MD_DUP_EVENT_ID, "an id the hours form remembers, at its time");
    md_ops_clear(&ops);
    cr_assert_eq(pay("pay-1", t7 + cfg->rules->dedupe_horizon_ms + 2 * TH_HOUR, 1, false, NULL), MD_APPLIED);
    md_cstate_flush(cs, &ops);
    bool deleted = false;
    for (size_t k = 0; k < ops.n; k++) deleted |= ops.ops[k].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, k), f) == 0;
    cr_assert(deleted, "aged out under its own name %s", f);
    cr_assert(last_set("G"), "the new id not in a piece");
    /* Base 36 and seconds; hex and ms. */
    char secf[24], secs[24];
    secf[0] = 'j';
    th_b36(md_siphash24(key, "pay-4", 5), secf + 1);
    snprintf(secs, sizeof(secs), "%lld", (long long)(TH_T0 / 1000));
    md_cstate_reset(cs);
    md_cstate_load_field(cs, secf, strlen(secf), secs, strlen(secs));
    cr_assert_eq(pay("pay-3", TH_T0 + 1000, 1, false, NULL), MD_APPLIED); /* an add prunes what is past the horizon */
    cr_assert_eq(pay("pay-4", TH_T0, 1, false, NULL), MD_DUP_EVENT_ID, "an id the seconds form remembers, at its time");
    md_cstate_reset(cs);
    char hexf[24], ms[24];
    snprintf(hexf, sizeof(hexf), "i%016" PRIx64, md_siphash24(key, "pay-8", 5));
    snprintf(ms, sizeof(ms), "%lld", (long long)TH_T0);
    md_cstate_load_field(cs, hexf, strlen(hexf), ms, strlen(ms));
    md_cstate_load_field(cs, secf, strlen(secf), secs, strlen(secs));
    cr_assert_eq(pay("pay-8", TH_T0, 1, false, NULL), MD_DUP_EVENT_ID, "an id the earlier form remembers");
    md_ops_clear(&ops);
    cr_assert_eq(pay("pay-9", TH_T0 + cfg->rules->dedupe_horizon_ms + 2000, 1, false, NULL), MD_APPLIED);
    bool deleted_hex = false, deleted_secs = false;
    for (size_t k = 0; k < ops.n; k++) {
        deleted_hex |= ops.ops[k].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, k), hexf) == 0;
        deleted_secs |= ops.ops[k].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, k), secf) == 0;
    }
    cr_assert(deleted_hex, "aged out under its own name %s", hexf);
    cr_assert(deleted_secs, "aged out under its own name %s", secf);
    /* Malformed: a digit out of base 36, past 2^64, a negative time; 14
     * digits after "j", or 11 after "J", is no guard field of this version
     * (left alone). */
    md_cstate_reset(cs);
    const char *bad[][2] = {{"jA1", "5"},  {"j12345678901234", "5"}, {"jzzzzzzzzzzzzz", "5"}, {"j1", "-5"},
                            {"JA1", "5"},  {"J1", "-5"},             {"J1", "x"},              {"J12345678901", "5"},
                            {"J1", "2562047788015216"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) md_cstate_load_field(cs, bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]));
    cr_assert_eq(cs->bad_fields, 7);
    cr_assert_eq(cs->n_seen, 0);
}

/* Entries written before the key ("e" + the unkeyed hash) still recognise
 * their re-publications until they age out, and are deleted by their own
 * name when they do. */
Test(window, legacy_guard_entries_are_honoured_until_they_age_out) {
    char field[24], ts[24];
    snprintf(field, sizeof(field), "e%016" PRIx64, md_hash64("old-1", 5, 0x65766964));
    snprintf(ts, sizeof(ts), "%lld", (long long)TH_T0);
    md_cstate_load_field(cs, field, strlen(field), ts, strlen(ts));
    cfg->dedupe.id_key[0] = 7;
    cr_assert_eq(pay("old-1", TH_T0, 1, false, NULL), MD_DUP_EVENT_ID, "a re-publication of an id seen before the key counted again");
    cr_assert_eq(pay("new-1", TH_T0 + 1000, 1, false, NULL), MD_APPLIED);
    md_ops_clear(&ops);
    cr_assert_eq(pay("new-2", TH_T0 + cfg->rules->dedupe_horizon_ms + 2000, 1, false, NULL), MD_APPLIED);
    bool deleted = false;
    for (size_t k = 0; k < ops.n; k++) deleted |= ops.ops[k].kind == MD_OP_DEL && strcmp(md_ops_field(&ops, k), field) == 0;
    cr_assert(deleted, "the aged legacy entry %s was not deleted", field);
    cr_assert_eq(pay("old-1", TH_T0 + cfg->rules->dedupe_horizon_ms + 3000, 1, false, NULL), MD_APPLIED, "a fresh event with that id");
}

/* ---- The packed profile ---- */

static const char *profile_of(const md_cstate *c, const char *name) {
    for (size_t a = 0; a < cfg->rules->n_profile_attrs; a++)
        if (strcmp(cfg->rules->profile_attrs[a], name) == 0) return md_cs_profile(c, (int)a);
    cr_assert_fail("no configured attribute %s", name);
    return NULL;
}

/* Every attribute the customer has, "name=value;" in order, for comparing. */
static void attrs_of(const md_cstate *c, char *out, size_t size) {
    md_cstate_view v;
    md_cstate_view_of(c, &v);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v.n_attrs; i++) {
        const char *k, *val;
        md_cstate_attr(c, i, &k, &val);
        len += (size_t)snprintf(out + len, size - len, "%s=%s;", k, val);
    }
}

static bool op_is(size_t i, int kind, const char *field) { return ops.ops[i].kind == kind && strcmp(md_ops_field(&ops, i), field) == 0; }
static int count_ops(int kind, const char *field) {
    int n = 0;
    for (size_t i = 0; i < ops.n; i++) n += op_is(i, kind, field);
    return n;
}

/* What the ops would leave in a hash that held nothing, loaded into to. */
static void load_sets(md_cstate *to) {
    md_cstate_reset(to);
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_SET) {
            const char *f = md_ops_field(&ops, i), *v = md_ops_value(&ops, i);
            md_cstate_load_field(to, f, strlen(f), v, strlen(v));
        }
}

/* The attributes the rules read are stored in pieces "P", "P1", ... under
 * four-digit short names; the others, contact_point, and values that cannot
 * be packed stay fields "p:<name>". Read back, the profile is the same. */
Test(window, the_profile_is_packed_under_short_names) {
    char err[256], before[2048], after[2048];
    md_cstate_set_customer(cs, "c1");
    const char *profile = "{\"segment\":\"transactor\",\"nickname\":\"Li\",\"customer_type\":\"resident\","
                          "\"contact_point\":\"+8613800000000\",\"age_band\":\"35-44\",\"sep\":\"a\\u001fb\"}";
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(cs, profile, &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
    char code_seg[8], code_type[8], code_age[8], want[128];
    md_profile_code("segment", code_seg);
    md_profile_code("customer_type", code_type);
    md_profile_code("age_band", code_age);
    cr_assert_str_eq(code_seg, "vlye", "the short names are part of the stored layout");
    snprintf(want, sizeof(want), "%stransactor\x1f%sresident\x1f%s35-44", code_seg, code_type, code_age);
    cr_assert_str_eq(last_set("P") ? last_set("P") : "(none)", want);
    cr_assert_eq(count_ops(MD_OP_SET, "p:segment") + count_ops(MD_OP_SET, "p:customer_type") + count_ops(MD_OP_SET, "p:age_band"), 0);
    cr_assert_str_eq(last_set("p:nickname") ? last_set("p:nickname") : "(none)", "Li", "an attribute no rule reads keeps its name");
    cr_assert_str_eq(last_set("p:contact_point") ? last_set("p:contact_point") : "(none)", "+8613800000000");
    cr_assert_str_eq(last_set("p:sep") ? last_set("p:sep") : "(none)", "a\x1f" "b");
    attrs_of(cs, before, sizeof(before));
    md_cstate *fresh = md_cstate_new(cfg);
    load_sets(fresh);
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert_str_eq(profile_of(fresh, "segment"), "transactor");
    cr_assert_str_eq(profile_of(fresh, "customer_type"), "resident");
    cr_assert_str_eq(profile_of(fresh, "contact_point"), "+8613800000000");
    cr_assert_null(profile_of(fresh, "province"));
    attrs_of(fresh, after, sizeof(after));
    cr_assert_eq(strlen(after), strlen(before), "%s against %s", after, before);
    for (const char *kv = before; *kv; kv = strchr(kv, ';') + 1) { /* the same set, in whichever order */
        char one[256];
        snprintf(one, sizeof(one), "%.*s", (int)(strchr(kv, ';') - kv + 1), kv);
        cr_assert(strstr(after, one), "%s read back: %s", one, after);
    }
    /* Read back and written again with nothing changed: no write at all. */
    md_ops_clear(&ops);
    md_cstate_flush(fresh, &ops);
    cr_assert_eq(ops.n, 0, "%zu writes for a profile read as written", ops.n);

    /* Values too long for one piece take several; a smaller profile then
     * deletes the pieces it no longer needs, and the fields it dropped. */
    md_ops_clear(&ops);
    profile = "{\"segment\":\"ssssssssssssssssssssssssssssss\",\"customer_type\":\"tttttttttttttttttttttttttttttt\","
              "\"age_band\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"province\":\"pppppppppppppppppppppppppppppp\"}";
    cr_assert_eq(md_cstate_set_profile(fresh, profile, &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert(last_set("P") && last_set("P1"), "two pieces");
    cr_assert(strlen(last_set("P")) <= 64 && strlen(last_set("P1")) <= 64);
    cr_assert_eq(count_ops(MD_OP_DEL, "p:nickname") + count_ops(MD_OP_DEL, "p:sep") + count_ops(MD_OP_DEL, "p:contact_point"), 3);
    md_cstate_load_field(cs, "x", 1, "", 0); /* nothing: cs is only a holder below */
    load_sets(cs);
    cr_assert_str_eq(profile_of(cs, "province"), "pppppppppppppppppppppppppppppp");
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(cs, "{\"segment\":\"new\"}", &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
    snprintf(want, sizeof(want), "%snew", code_seg);
    cr_assert_str_eq(last_set("P") ? last_set("P") : "(none)", want);
    cr_assert_eq(count_ops(MD_OP_DEL, "P1"), 1, "the second piece is deleted");
    /* No profile at all: every piece goes. */
    load_sets(fresh);
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(fresh, NULL, &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
    cr_assert_eq(count_ops(MD_OP_DEL, "P"), 1);
    md_cstate_destroy(fresh);
}

/* A state written before the packing: its attributes are fields. They are
 * read, and packed by the next flush that writes anything else (never by
 * one that writes nothing); when a hash holds an attribute in both forms,
 * in either order, the packed value is read and the field deleted. */
Test(window, an_older_profile_is_read_and_packed_along_other_writes) {
    char code_seg[8], want[64];
    md_profile_code("segment", code_seg);
    md_cstate_load_field(cs, "p:segment", 9, "closed", 6);
    md_cstate_load_field(cs, "p:nickname", 10, "Li", 2);
    cr_assert_str_eq(profile_of(cs, "segment"), "closed");
    md_ops_clear(&ops);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(ops.n, 0, "nothing else to write: not rewritten for this");
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 2);
    md_cstate_flush(cs, &ops);
    snprintf(want, sizeof(want), "%sclosed", code_seg);
    cr_assert_str_eq(last_set("P") ? last_set("P") : "(none)", want);
    cr_assert_eq(count_ops(MD_OP_DEL, "p:segment"), 1);
    cr_assert_eq(count_ops(MD_OP_DEL, "p:nickname") + count_ops(MD_OP_SET, "p:nickname"), 0, "an attribute no rule reads is left");
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 3);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(ops.n, 1, "packed once");
    snprintf(want, sizeof(want), "%spacked", code_seg);
    for (int order = 0; order < 2; order++) {
        md_cstate_reset(cs);
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (order == 0)) md_cstate_load_field(cs, "p:segment", 9, "field", 5);
            else md_cstate_load_field(cs, "P", 1, want, strlen(want));
        }
        cr_assert_eq(cs->bad_fields, 0);
        cr_assert_str_eq(profile_of(cs, "segment"), "packed", "order %d", order);
        md_ops_clear(&ops);
        md_cs_set_int(&ops, "v", 2);
        md_cstate_flush(cs, &ops);
        cr_assert_eq(count_ops(MD_OP_DEL, "p:segment"), 1, "order %d: the field is deleted", order);
        cr_assert_str_eq(last_set("P") ? last_set("P") : "(none)", want, "order %d", order);
    }
}

/* A piece holding the short name of an attribute this configuration no
 * longer reads keeps it, shown as "#<code>", and writes it back as it was;
 * a piece that is not one is counted as a bad field and changes nothing. */
Test(window, profile_pieces_read_strictly_and_unknown_short_names_kept) {
    md_cstate_load_field(cs, "P", 1, "zzzzold\x1fvlyetransactor", 22);
    cr_assert_eq(cs->bad_fields, 0);
    cr_assert_str_eq(profile_of(cs, "segment"), "transactor");
    char all[256];
    attrs_of(cs, all, sizeof(all));
    cr_assert_str_eq(all, "#zzzz=old;segment=transactor;");
    char err[128];
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(cs, "{\"segment\":\"new\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    cr_assert_str_eq(last_set("P") ? last_set("P") : "(none)", "vlyenew", "a new profile replaces all of it");
    const char *bad[][2] = {{"P", "abc"}, {"P", "vlyex\x1f" "ab"}, {"P", "Zvlyex"}, {"P", "ZAvlyex"}, {"P", "ZA"}, {"P", ".vlyex"}, {"P0", "vlyex"}, {"P01", "vlyex"},
                            {"P256", "vlyex"}, {"Px", "vlyex"}, {"P1234", "vlyex"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate_reset(cs);
        md_cstate_load_field(cs, bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]));
        cr_assert_eq(cs->bad_fields, 1, "%s = \"%s\" is counted as a bad field", bad[i][0], bad[i][1]);
        cr_assert_null(profile_of(cs, "segment"), "%s = \"%s\"", bad[i][0], bad[i][1]);
    }
    md_cstate_reset(cs);
    md_cstate_load_field(cs, "P255", 4, "vlyex", 5);
    cr_assert_eq(cs->bad_fields, 0, "the last piece a profile can have");
    cr_assert_str_eq(profile_of(cs, "segment"), "x");
    /* An attribute a profile names "#vlye" is just an attribute: a field of
     * its own, never taken for segment's short name. */
    md_cstate_reset(cs);
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(cs, "{\"#vlye\":\"closed\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    cr_assert_str_eq(last_set("p:#vlye") ? last_set("p:#vlye") : "(none)", "closed");
    cr_assert_null(last_set("P"));
    md_cstate *fresh = md_cstate_new(cfg);
    load_sets(fresh);
    cr_assert_null(profile_of(fresh, "segment"));
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 2);
    md_cstate_flush(fresh, &ops);
    cr_assert_null(last_set("P"), "and not packed later either");
    cr_assert_eq(count_ops(MD_OP_DEL, "p:#vlye"), 0);
    md_cstate_destroy(fresh);
}

/* Two attributes the rules read with one short name would read each
 * other's values: the configuration is refused, naming both. */
Test(window, two_profile_attributes_with_one_short_name_are_refused) {
    char err[512], a[8], b[8];
    md_profile_code("attr869", a);
    md_profile_code("attr9246", b);
    cr_assert_str_eq(a, b);
    const char *clash[] = {"profile.segment == \\\"closed\\\"", "profile.attr869 == \\\"x\\\" || profile.attr9246 == \\\"y\\\""};
    md_config *c = th_config_edit(clash, 1, err, sizeof(err));
    cr_assert_null(c, "refused");
    cr_assert(strstr(err, "profile.attr9246 and profile.attr869 have the same short name in the stored state (necz)"), "%s", err);
    const char *one[] = {"profile.segment == \\\"closed\\\"", "profile.attr869 == \\\"x\\\""};
    c = th_config_edit(one, 1, err, sizeof(err));
    cr_assert_not_null(c, "one of them alone is fine: %s", err);
    md_config_destroy(c);
}

/* ---- A campaign's fields under its short code ---- */

static int campaign_index(const char *name) {
    for (size_t i = 0; i < cfg->n_campaigns; i++)
        if (strcmp(cfg->campaigns[i].name, name) == 0) return (int)i;
    cr_assert_fail("no campaign %s", name);
    return -1;
}

/* A campaign's scalar fields and contact log are stored as "<letter><campaign
 * code>" and "K<code><time>"; states before 2026-12-06 named them by the
 * campaign ("l:prepay_wallet", "k:<time>:prepay_wallet"). Those are read,
 * and renamed by the next flush that writes anything else: the values are
 * the same read back, and nothing is renamed twice. */
Test(window, campaign_fields_are_named_by_code_and_older_names_renamed) {
    int pw = campaign_index("prepay_wallet"), bi = campaign_index("bill_instalment");
    const int64_t t0 = TH_T0 - 60 * TH_DAY, t1 = TH_T0 - 20 * TH_DAY;
    char v_l[24], v_lp[24], v_f[48], v_k[48];
    snprintf(v_l, sizeof(v_l), "%lld", (long long)t1);
    snprintf(v_lp, sizeof(v_lp), "%lld", (long long)t0);
    snprintf(v_f, sizeof(v_f), "1500,%lld", (long long)t1);
    snprintf(v_k, sizeof(v_k), "k:%lld:prepay_wallet", (long long)t1);
    const char *older[][2] = {{"a:prepay_wallet", "0"}, {"f:prepay_wallet", v_f}, {"l:prepay_wallet", v_l}, {"lp:prepay_wallet", v_lp},
                              {"c:prepay_wallet", v_lp}, {"z:prepay_wallet", v_l}, {v_k, "outbound_call"}, {"f:bill_instalment", "2"}};
    const size_t n_older = sizeof(older) / sizeof(older[0]);
    for (size_t i = 0; i < n_older; i++) md_cstate_load_field(cs, older[i][0], strlen(older[i][0]), older[i][1], strlen(older[i][1]));
    cr_assert_eq(cs->bad_fields, 0);
    md_camp_st want_pw = cs->camps[pw], want_bi = cs->camps[bi];
    cr_assert(want_pw.disarmed && want_pw.last_contact == t1 && want_pw.prev_contact == t0 && want_pw.last_conversion == t0 &&
              want_pw.last_stale == t1 && want_pw.fatigue == 1.5 && want_pw.fatigue_ts == t1);
    cr_assert(want_bi.fatigue == 2 && want_bi.fatigue_ts == 0, "the oldest fatigue form: a count, never decayed");
    cr_assert_eq(cs->n_contacts, 1);
    md_ops_clear(&ops);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(ops.n, 0, "nothing else to write: not renamed for this");
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 2);
    md_cstate_flush(cs, &ops);
    for (size_t i = 0; i < n_older; i++) cr_assert_eq(count_ops(MD_OP_DEL, older[i][0]), 1, "%s is deleted", older[i][0]);
    char code[8], name[32], k_name[32];
    md_state_code("prepay_wallet", code);
    const char *letters = "AFLBCZ";
    for (const char *l = letters; *l; l++) {
        snprintf(name, sizeof(name), "%c%s", *l, code);
        cr_assert(last_set(name), "%s is written", name);
    }
    char bi_fatigue[8] = "F";
    md_state_code("bill_instalment", bi_fatigue + 1);
    cr_assert_str_eq(last_set(bi_fatigue) ? last_set(bi_fatigue) : "(none)", "2000,0");
    snprintf(k_name, sizeof(k_name), "K%s", code);
    th_b36((uint64_t)t1, k_name + strlen(k_name));
    cr_assert_str_eq(last_set(k_name) ? last_set(k_name) : "(none)", "outbound_call");
    /* Read back: the same state, and nothing more to rename. */
    md_cstate *fresh = md_cstate_new(cfg);
    load_sets(fresh);
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert(fresh->camps[pw].disarmed && fresh->camps[pw].last_contact == t1 && fresh->camps[pw].prev_contact == t0 &&
              fresh->camps[pw].last_conversion == t0 && fresh->camps[pw].last_stale == t1 && fresh->camps[pw].fatigue == 1.5 &&
              fresh->camps[pw].fatigue_ts == t1);
    cr_assert(fresh->camps[bi].fatigue == 2 && fresh->camps[bi].fatigue_ts == 0);
    cr_assert(fresh->n_contacts == 1 && fresh->contacts[0].ts == t1 && fresh->contacts[0].campaign == pw && !fresh->contacts[0].older);
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 3);
    md_cstate_flush(fresh, &ops);
    cr_assert_eq(ops.n, 1, "renamed once");
    /* Both names of one field, in either order: the current one is read,
     * the older deleted; the writers use the current names. */
    snprintf(name, sizeof(name), "L%s", code);
    for (int order = 0; order < 2; order++) {
        md_cstate_reset(fresh);
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (order == 0)) md_cstate_load_field(fresh, "l:prepay_wallet", 15, v_lp, strlen(v_lp));
            else md_cstate_load_field(fresh, name, strlen(name), v_l, strlen(v_l));
        }
        cr_assert_eq(fresh->camps[pw].last_contact, t1, "order %d: the current name is read", order);
        md_ops_clear(&ops);
        md_cs_set_last_contact(fresh, &ops, pw, TH_T0);
        cr_assert_eq(count_ops(MD_OP_DEL, "l:prepay_wallet"), 1, "order %d", order);
        snprintf(v_l, sizeof(v_l), "%lld", (long long)TH_T0);
        cr_assert_str_eq(last_set(name) ? last_set(name) : "(none)", v_l);
        snprintf(name, sizeof(name), "B%s", code);
        cr_assert(last_set(name), "the contact before it, under its current name");
        snprintf(name, sizeof(name), "L%s", code);
        snprintf(v_l, sizeof(v_l), "%lld", (long long)t1);
    }
    /* An older field whose value does not parse is counted and left as it
     * was: not renamed, not deleted. */
    md_cstate_reset(fresh);
    md_cstate_load_field(fresh, "l:prepay_wallet", 15, "soon", 4);
    cr_assert_eq(fresh->bad_fields, 1);
    md_ops_clear(&ops);
    md_cs_set_int(&ops, "v", 2);
    md_cstate_flush(fresh, &ops);
    cr_assert_eq(count_ops(MD_OP_DEL, "l:prepay_wallet"), 0);
    cr_assert_null(last_set(name));
    md_cstate_destroy(fresh);
}


/* The series are packed into pieces "H", "H1", ... of at most 64 bytes,
 * "<code><buckets>" joined by ';'; a reload of what was written reads
 * every window back. */
Test(window, series_are_packed_into_pieces_of_64_bytes) {
    for (int k = 0; k < 40; k++) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", k);
        pay(id, TH_T0 + k * TH_DAY, 10 + k, k % 3 == 0, NULL);
        snprintf(id, sizeof(id), "v%d", k);
        view(id, TH_T0 + k * TH_DAY);
    }
    md_ops_clear(&ops);
    pay("last", TH_T0 + 40 * TH_DAY, 5, false, NULL);
    md_cstate_flush(cs, &ops);
    md_cstate *fresh = md_cstate_new(cfg);
    int pieces = 0;
    for (size_t i = 0; i < ops.n; i++) {
        const char *f = md_ops_field(&ops, i);
        if (ops.ops[i].kind != MD_OP_SET) continue;
        if (f[0] == 'H') {
            pieces++;
            cr_assert_leq(strlen(md_ops_value(&ops, i)), 64, "%s: %s", f, md_ops_value(&ops, i));
        }
        cr_assert(f[0] != 'S' || strlen(md_ops_value(&ops, i)) + 4 > 64, "%s fits a piece: %s", f, md_ops_value(&ops, i));
    }
    cr_assert_geq(pieces, 2, "eleven windows' series over 40 days need two pieces at least, got %d", pieces);
    /* Everything the state holds, written whole into a fresh one. */
    md_ops_clear(&ops);
    cs->series_repack = true;
    for (size_t si = 0; si < cfg->rules->n_series; si++) cs->series[si].dirty = true;
    cs->series_pieces = 0;
    md_cstate_flush(cs, &ops);
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_SET) load(fresh, md_ops_field(&ops, i), md_ops_value(&ops, i));
    cr_assert_eq(fresh->bad_fields, 0);
    for (size_t w = 0; w < cfg->n_windows; w++)
        cr_assert_eq(md_cstate_window(cfg, fresh, (int)w, TH_T0 + 40 * TH_DAY), md_cstate_window(cfg, cs, (int)w, TH_T0 + 40 * TH_DAY),
                     "window %s", cfg->windows[w].name);
    md_cstate_destroy(fresh);
}

/* A series an earlier version wrote as a field of its own is read, and
 * packed only along another write; one too long for a piece keeps its own
 * field, written only when it changes. */
Test(window, a_series_field_of_its_own_is_packed_along_other_writes_or_kept_when_long) {
    md_cstate *fresh = md_cstate_new(cfg);
    const char *sf = series_field_of(cfg, "payments_180d");
    char v[128];
    th_b36((uint64_t)(TH_T0 / TH_DAY), v);
    strcat(v, ":2,3:5");
    load(fresh, sf, v);
    cr_assert_eq(md_cstate_window(cfg, fresh, win("payments_180d"), TH_T0 + 3 * TH_DAY), 7);
    md_ops_clear(&ops);
    md_cstate_flush(fresh, &ops);
    cr_assert_eq(ops.n, 0, "read and left alone: not rewritten for the packing");
    md_ops_add(&ops, MD_OP_SET, "cb", "1"); /* another write of the same apply */
    md_cstate_flush(fresh, &ops);
    cr_assert(was_deleted(sf), "its own field is deleted");
    cr_assert_str_eq(series_written(sf) ? series_written(sf) : "(none)", v + 0, "and its buckets are in a piece");
    cr_assert(last_set("H"), "piece H written");
    /* Long: 30 buckets three days apart are more than a piece holds. */
    md_cstate_reset(fresh);
    th_b36((uint64_t)(TH_T0 / TH_DAY - 90), v);
    for (int k = 0; k < 29; k++) strcat(v, ",3");
    cr_assert_gt(strlen(v) + 4, 64);
    load(fresh, sf, v);
    cr_assert_eq(fresh->bad_fields, 0);
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_SET, "cb", "1");
    md_cstate_flush(fresh, &ops);
    cr_assert_null(last_set(sf), "unchanged: not written again");
    cr_assert(!was_deleted(sf), "and not deleted");
    cr_assert_null(last_set("H"), "nor packed");
    md_ops_clear(&ops);
    md_engine_out_init(&out);
    md_cstate *keep = cs;
    cs = fresh;
    pay("long", TH_T0, 10, false, NULL);
    cs = keep;
    md_cstate_flush(fresh, &ops);
    cr_assert(last_set(sf) && strlen(last_set(sf)) > strlen(v), "changed: its own field is written: %s", last_set(sf) ? last_set(sf) : "(none)");
    md_cstate_destroy(fresh);
}

/* A piece is read whole or not at all; an entry of a series this
 * configuration does not read is kept through a repack; a piece whose text
 * is unchanged is not written again; a series both in a piece and in a
 * field of its own, in either order, is read from the piece. */
Test(window, pieces_are_read_whole_kept_and_written_when_changed) {
    md_cstate *fresh = md_cstate_new(cfg);
    const char *pf = series_field_of(cfg, "payments_180d"), *af = series_field_of(cfg, "app_logins_7d");
    int pw = win("payments_180d"), aw = win("app_logins_7d");
    char day[16], hour[16], piece[128], own[64];
    th_b36((uint64_t)(TH_T0 / TH_DAY), day);
    th_b36((uint64_t)(TH_T0 / TH_HOUR), hour);
    cr_assert_null(strstr("zzzz", pf + 1));
    /* Bad: the second entry does not parse; the series read before stays. */
    snprintf(own, sizeof(own), "%s:3", day);
    load(fresh, pf, own);
    snprintf(piece, sizeof(piece), "%s%s:9;%sx!", pf + 1, day, af + 1);
    load(fresh, "H", piece);
    cr_assert_eq(fresh->bad_fields, 1);
    cr_assert_eq(md_cstate_window(cfg, fresh, pw, TH_T0), 3, "nothing of the bad piece is taken");
    const char *bad[] = {"", ";", "abc", "zzzz", "zzzz1;", "ZZZZ1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        load(fresh, "H1", bad[i]);
        cr_assert_eq(fresh->bad_fields, 2 + i, "\"%s\" is a bad piece", bad[i]);
    }
    load(fresh, "H01", "zzzz1");
    load(fresh, "H64", "zzzz1");
    cr_assert_eq(fresh->bad_fields, 1 + sizeof(bad) / sizeof(bad[0]) + 2, "no piece names H01 or H64");
    /* Both forms, either order: the piece is read. */
    for (int order = 0; order < 2; order++) {
        md_cstate_reset(fresh);
        snprintf(piece, sizeof(piece), "%s%s:9;zzzz1,2:3", pf + 1, day);
        if (order) load(fresh, pf, own);
        load(fresh, "H", piece);
        if (!order) load(fresh, pf, own);
        cr_assert_eq(fresh->bad_fields, 0);
        cr_assert_eq(md_cstate_window(cfg, fresh, pw, TH_T0), 9, "order %d: the piece's", order);
        md_ops_clear(&ops);
        md_ops_add(&ops, MD_OP_SET, "cb", "1");
        md_cstate_flush(fresh, &ops);
        cr_assert(was_deleted(pf), "order %d: the field of its own goes", order);
        cr_assert_null(last_set("H"), "order %d: the piece is unchanged, not rewritten", order);
    }
    /* An unknown entry longer than a piece (no version writes one) is not
     * kept: the next repack writes pieces of 64 bytes at most (found by
     * fuzz_state: it overflowed the piece's buffer). */
    md_cstate_reset(fresh);
    snprintf(piece, sizeof(piece), "%s%s:9;zzzz1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", pf + 1, day);
    cr_assert_gt(strlen(piece), 64);
    load(fresh, "H", piece);
    cr_assert_eq(fresh->bad_fields, 0);
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_SET, "cb", "1");
    md_cstate_flush(fresh, &ops);
    snprintf(piece, sizeof(piece), "%s%s:9", pf + 1, day);
    cr_assert_str_eq(last_set("H") ? last_set("H") : "(none)", piece, "the piece over 64 bytes is rewritten without the long entry");
    /* Two pieces; a change of the series in the second writes only that
     * one, and the unknown entry in it is kept. */
    md_cstate_reset(fresh);
    char first[80];
    snprintf(first, sizeof(first), "%s%s,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", pf + 1, day); /* 57 bytes */
    snprintf(piece, sizeof(piece), "%s%s;zzzz1,2:3", af + 1, hour);
    load(fresh, "H", first);
    load(fresh, "H1", piece);
    cr_assert_eq(fresh->bad_fields, 0);
    cr_assert_eq(md_cstate_window(cfg, fresh, aw, TH_T0), 1);
    md_ops_clear(&ops);
    md_engine_out_init(&out);
    md_cstate *keep = cs;
    cs = fresh;
    view("again", TH_T0 + 1);
    cs = keep;
    md_cstate_flush(fresh, &ops);
    cr_assert_null(last_set("H"), "H is unchanged: not written");
    char want[128];
    snprintf(want, sizeof(want), "%s%s:2;", af + 1, hour);
    const char *h1 = last_set("H1") ? last_set("H1") : "(none)";
    cr_assert(strncmp(h1, want, strlen(want)) == 0, "H1 is written, the logins counted twice: %s", h1);
    cr_assert(strlen(h1) > 9 && strcmp(h1 + strlen(h1) - 9, "zzzz1,2:3") == 0, "the unknown entry as it was, last: %s", h1);
    md_cstate_destroy(fresh);
}

/* Watermarks over 64 bytes take two pieces, each at most 64 bytes; a move
 * rewrites only the piece that holds it; what was written reads back; a
 * piece is read whole or not at all. */
Test(window, watermark_pieces_are_bounded_rewritten_when_changed_and_read_whole) {
    md_cstate *fresh = md_cstate_new(cfg);
    for (int32_t p = 0; p < 10; p++) cr_assert(md_cs_take_offset(fresh, &ops, "payments", p, 1000 + p));
    md_cstate_flush(fresh, &ops);
    cr_assert(last_set("W") && last_set("W1"), "ten watermarks, two pieces");
    cr_assert_null(last_set("W2"));
    cr_assert_leq(strlen(last_set("W")), 64);
    cr_assert_leq(strlen(last_set("W1")), 64);
    md_cstate *back = md_cstate_new(cfg);
    load(back, "W", last_set("W"));
    load(back, "W1", last_set("W1"));
    cr_assert_eq(back->bad_fields, 0);
    for (int32_t p = 0; p < 10; p++) {
        cr_assert_not(md_cs_take_offset(back, &ops, "payments", p, 1000 + p), "partition %d read back", p);
        cr_assert(md_cs_take_offset(back, &ops, "payments", p, 1001 + p));
    }
    md_cstate_destroy(back);
    md_ops_clear(&ops);
    cr_assert(md_cs_take_offset(fresh, &ops, "payments", 9, 5000));
    md_cstate_flush(fresh, &ops);
    cr_assert_null(last_set("W"), "the first piece is unchanged: not written");
    cr_assert(last_set("W1"), "the one holding partition 9 is");
    /* Bad pieces: counted, nothing of them taken (not even a good entry before the bad one). */
    char code[MD_STATE_CODE_LEN + 1], piece[64];
    md_state_code("payments", code);
    const char *bad[] = {"", "abc", "#####3:1", "abcde:1", "abcde3:", "abcde3", "abcde3:1;", "abcde3:-1", "abcde3:1;zz", "abcdezzzzzzz:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_cstate_reset(fresh);
        snprintf(piece, sizeof(piece), "%s3:1;%s", code, bad[i]);
        load(fresh, "W", i == 0 ? "" : piece);
        cr_assert_eq(fresh->bad_fields, 1, "\"%s\" refused", bad[i]);
        cr_assert_eq(fresh->n_wm, 0, "\"%s\": nothing taken", bad[i]);
    }
    /* ...nor a raise of a watermark another piece gave, and what it added goes */
    md_cstate_reset(fresh);
    snprintf(piece, sizeof(piece), "%s3:1", code);
    load(fresh, "W", piece);
    snprintf(piece, sizeof(piece), "%s3:zz;%s3:zzz;%s4:5;%s5:", code, code, code, code);
    load(fresh, "W1", piece);
    cr_assert_eq(fresh->bad_fields, 1);
    cr_assert_eq(fresh->n_wm, 1, "the bad piece's new watermark is not kept");
    cr_assert(md_cs_take_offset(fresh, &ops, "payments", 3, 2), "partition 3 at offset 1, as the good piece says");
    /* ...and an earlier version's piece over 64 bytes the same */
    md_cstate_reset(fresh);
    char long_piece[256];
    size_t lp = 0;
    for (int p = 0; p < 12; p++) lp += (size_t)snprintf(long_piece + lp, sizeof(long_piece) - lp, "%s%d:1;", code, p);
    snprintf(long_piece + lp, sizeof(long_piece) - lp, "%s12:", code);
    cr_assert_gt(strlen(long_piece), 64);
    load(fresh, "W", long_piece);
    cr_assert_eq(fresh->bad_fields, 1);
    cr_assert_eq(fresh->n_wm, 0, "a long piece with a bad entry: nothing taken");
    long_piece[lp - 1] = '\0'; /* without the bad entry */
    md_cstate_reset(fresh);
    load(fresh, "W", long_piece);
    cr_assert_eq(fresh->bad_fields, 0, "%s", long_piece);
    cr_assert_eq(fresh->n_wm, 12, "a long piece is read");
    md_cstate_reset(fresh);
    load(fresh, "W16", "abcde3:1");
    load(fresh, "W01", "abcde3:1");
    cr_assert_eq(fresh->bad_fields, 2, "no pieces W16 or W01");
    md_cstate_destroy(fresh);
}

/* ---- The namespace's short codes ---- */

/* The table a registry that never saw cfg's names gives: A, B, C, ... in
 * the order asked (codes.lua). */
static md_codes *codes_in_order(const md_config *c) {
    md_codes *codes = md_codes_fresh(c);
    cr_assert_not_null(codes);
    return codes;
}

/* The i-th name (0-based) of the wanted list, and its kind. */
static void wanted_name(const md_config *c, size_t i, char out[16]) {
    size_t n = 0;
    char *wanted = md_codes_wanted(c, &n), *p = wanted;
    cr_assert_lt(i, n);
    for (size_t k = 0; k < i; k++) p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    snprintf(out, 16, "%.*s", (int)len, p);
    free(wanted);
}

/* What cfg asks the registry for: its topics (each code once), series and
 * packed attributes, by kind and long code; the answer is checked before
 * any state uses it. */
Test(window, the_codes_table_takes_only_a_registry_answer_that_fits) {
    size_t n = 0;
    char *wanted = md_codes_wanted(cfg, &n);
    size_t topics = 0, series = 0, attrs = 0;
    for (char *p = wanted; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0)) {
        size_t len = strcspn(p, ",");
        topics += p[0] == 't' && len == 1 + MD_STATE_CODE_LEN;
        series += p[0] == 's' && len == 5;
        attrs += p[0] == 'a' && len == 1 + MD_PROFILE_CODE_LEN;
    }
    cr_assert_eq(topics + series + attrs, n, "every name is a kind and a long code: %s", wanted);
    cr_assert_eq(series, cfg->rules->n_series);
    cr_assert_geq(topics, 3);
    cr_assert_gt(attrs, 0);
    char payments[MD_STATE_CODE_LEN + 1], first[16];
    md_state_code(cfg->kafka.topic_payments, payments);
    wanted_name(cfg, 0, first);
    cr_assert_eq(first[0], 't');
    cr_assert_str_eq(first + 1, payments, "the payments topic first");
    md_codes *good = codes_in_order(cfg);
    md_codes_destroy(good);
    const char **shorts = calloc(n + 1, sizeof(char *));
    char err[256];
    /* every short code may be "" (the registry had none left) */
    for (size_t i = 0; i < n; i++) shorts[i] = "";
    md_codes *none = md_codes_new(cfg, shorts, n, err, sizeof(err));
    cr_assert_not_null(none, "%s", err);
    md_codes_destroy(none);
    const char *bad_short[] = {"a", "AB", "Z", "ZA", "Zab", "ZAAA", "1", "-"};
    for (size_t b = 0; b < sizeof(bad_short) / sizeof(bad_short[0]); b++) {
        shorts[0] = bad_short[b];
        err[0] = '\0';
        cr_assert_null(md_codes_new(cfg, shorts, n, err, sizeof(err)), "\"%s\" is no short code", bad_short[b]);
        cr_assert(strstr(err, "not a short code"), "%s", err);
    }
    shorts[0] = "ZQB";
    md_codes *three = md_codes_new(cfg, shorts, n, err, sizeof(err));
    cr_assert_not_null(three, "Z and two letters is one: %s", err);
    md_codes_destroy(three);
    /* two series with one letter would read each other's history */
    size_t s1 = n, s2 = n;
    for (size_t i = 0; i < n; i++) {
        char name[16];
        wanted_name(cfg, i, name);
        if (name[0] == 's') {
            if (s1 == n) s1 = i;
            else if (s2 == n) s2 = i;
        }
    }
    cr_assert_lt(s2, n);
    shorts[0] = "";
    shorts[s1] = shorts[s2] = "K";
    cr_assert_null(md_codes_new(cfg, shorts, n, err, sizeof(err)));
    cr_assert(strstr(err, "two names have one short code"), "%s", err);
    shorts[s2] = "";
    cr_assert_null(md_codes_new(cfg, shorts, n - 1, err, sizeof(err)), "one answer short");
    cr_assert(strstr(err, "fewer"), "%s", err);
    cr_assert_null(md_codes_new(cfg, shorts, n + 1, err, sizeof(err)), "one too many");
    cr_assert(strstr(err, "more"), "%s", err);
    free(shorts);
    free(wanted);
}

/* The entry of a packed family's piece that begins with code, or NULL. */
static bool piece_has_entry(const char *piece, const char *code, char sep) {
    size_t cl = strlen(code);
    for (const char *p = piece; p && *p;) {
        if (strncmp(p, code, cl) == 0) return true;
        p = strchr(p, sep);
        if (p) p++;
    }
    return false;
}

/* With the namespace's codes, the series, watermarks and profile are
 * written under their short codes, a byte each where the long code took
 * four or five, and read back the same; a state written under the long
 * codes reads the same and is rewritten short along its next other write. */
Test(window, short_codes_are_written_read_and_taken_over_from_long_codes) {
    md_codes *codes = codes_in_order(cfg);
    char err[256], payments_long[MD_STATE_CODE_LEN + 1];
    md_state_code(cfg->kafka.topic_payments, payments_long);
    /* the long form first: a state written without codes */
    md_source src = {cfg->kafka.topic_payments, 3, 41};
    md_cstate_set_customer(cs, "w1");
    cr_assert_eq(md_cstate_set_profile(cs, "{\"segment\":\"transactor\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    cr_assert_eq(pay("p1", TH_T0, 10, false, &src), MD_APPLIED);
    view("v1", TH_T0 + TH_HOUR);
    md_cstate_flush(cs, &ops);
    const char *sf = series_field_of(cfg, "payments_180d");
    cr_assert(piece_has_entry(last_set("H"), sf + 1, ';'), "long: %s", last_set("H"));
    cr_assert(piece_has_entry(last_set("W"), payments_long, ';'), "long: %s", last_set("W"));
    md_ops long_ops;
    md_ops_init(&long_ops);
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_SET) md_ops_add(&long_ops, MD_OP_SET, md_ops_field(&ops, i), md_ops_value(&ops, i));
    char before[2048], after[2048];
    attrs_of(cs, before, sizeof(before));
    double w_pay = md_cstate_window(cfg, cs, win("payments_180d"), TH_T0 + TH_DAY);
    double w_view = md_cstate_window(cfg, cs, win("prepay_views_7d"), TH_T0 + TH_DAY);
    cr_assert_eq(w_pay, 1);
    cr_assert_eq(w_view, 1);
    /* read with the codes: the same state, and nothing written by itself */
    md_cstate *fresh = md_cstate_new(cfg);
    md_cstate_set_codes(fresh, codes);
    md_cstate_set_customer(fresh, "w1");
    for (size_t i = 0; i < long_ops.n; i++) load(fresh, md_ops_field(&long_ops, i), md_ops_value(&long_ops, i));
    cr_assert_eq(fresh->bad_fields, 0);
    attrs_of(fresh, after, sizeof(after));
    cr_assert_str_eq(after, before);
    cr_assert_eq(md_cstate_window(cfg, fresh, win("payments_180d"), TH_T0 + TH_DAY), w_pay);
    cr_assert_eq(md_cstate_window(cfg, fresh, win("prepay_views_7d"), TH_T0 + TH_DAY), w_view);
    md_ops_clear(&ops);
    cr_assert_not(md_cs_take_offset(fresh, &ops, cfg->kafka.topic_payments, 3, 41), "the long watermark holds");
    md_cstate_flush(fresh, &ops);
    cr_assert_eq(ops.n, 0, "a customer read and left alone is not rewritten for its codes");
    /* its next write takes every family over to the short codes */
    cr_assert(md_cs_take_offset(fresh, &ops, cfg->kafka.topic_payments, 3, 42));
    md_cstate_flush(fresh, &ops);
    const char *h = last_set("H"), *wm = last_set("W"), *pp = last_set("P");
    cr_assert_not_null(h);
    cr_assert_not_null(wm);
    cr_assert_not_null(pp, "the profile is packed again along the write");
    cr_assert_str_eq(wm, "A3:16", "the payments topic is A, 42 is 16 in base 36");
    for (const char *p = h; *p; p += strcspn(p, ";") + (p[strcspn(p, ";")] ? 1 : 0))
        cr_assert(*p >= 'A' && *p <= 'Y', "every series under a letter: %s", h);
    cr_assert(pp[0] >= 'A' && pp[0] <= 'Y' && strcmp(pp + 1, "transactor") == 0, "segment under a letter: %s", pp);
    /* and the short form reads back the same, with the codes */
    md_cstate *back = md_cstate_new(cfg);
    md_cstate_set_codes(back, codes);
    md_cstate_set_customer(back, "w1");
    for (size_t i = 0; i < long_ops.n; i++) load(back, md_ops_field(&long_ops, i), md_ops_value(&long_ops, i));
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_SET) load(back, md_ops_field(&ops, i), md_ops_value(&ops, i));
    cr_assert_eq(back->bad_fields, 0);
    attrs_of(back, after, sizeof(after));
    cr_assert_str_eq(after, before);
    cr_assert_eq(md_cstate_window(cfg, back, win("payments_180d"), TH_T0 + TH_DAY), w_pay);
    cr_assert_eq(md_cstate_window(cfg, back, win("prepay_views_7d"), TH_T0 + TH_DAY), w_view);
    cr_assert_eq(back->n_wm, 1, "the long and the short entry of one topic are one watermark");
    cr_assert_eq(back->wm[0].offset, 42, "the higher of the two");
    md_ops_clear(&ops);
    cr_assert_not(md_cs_take_offset(back, &ops, cfg->kafka.topic_payments, 3, 42));
    /* the short form alone reads the same */
    md_cstate_reset(back);
    md_cstate_set_customer(back, "w1");
    load(back, "H", h);
    load(back, "W", wm);
    load(back, "P", pp);
    cr_assert_eq(back->bad_fields, 0);
    cr_assert_eq(md_cstate_window(cfg, back, win("payments_180d"), TH_T0 + TH_DAY), w_pay);
    cr_assert_str_eq(profile_of(back, "segment"), "transactor");
    md_cstate_destroy(back);
    md_cstate_destroy(fresh);
    md_ops_fini(&long_ops);
    md_codes_destroy(codes);
}

/* Short codes the table does not hold belong to another configuration's
 * topic, series or attribute: kept as they were, never read as one of
 * this configuration's. */
Test(window, unknown_short_codes_are_kept_as_they_were) {
    md_codes *codes = codes_in_order(cfg);
    md_cstate_set_codes(cs, codes);
    md_cstate_set_customer(cs, "w1");
    load(cs, "H", "Yfx0,u:2");
    load(cs, "W", "Y3:15;ZQQ2:1");
    load(cs, "P", "Yold\x1fZQRolder");
    cr_assert_eq(cs->bad_fields, 0);
    cr_assert_eq(md_cstate_window(cfg, cs, win("payments_180d"), TH_T0), 0);
    char all[256];
    attrs_of(cs, all, sizeof(all));
    cr_assert_str_eq(all, "#Y=old;#ZQR=older;");
    md_source src = {cfg->kafka.topic_payments, 3, 41};
    cr_assert_eq(pay("p1", TH_T0, 10, false, &src), MD_APPLIED, "another topic's watermark at 41 is not this one's");
    md_cstate_flush(cs, &ops);
    cr_assert(piece_has_entry(last_set("H"), "Yfx0,u:2", ';'), "kept: %s", last_set("H"));
    cr_assert_str_eq(last_set("W"), "A3:15;Y3:15;ZQQ2:1");
    md_ops_clear(&ops);
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"segment\":\"x\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    const char *pp = last_set("P");
    cr_assert(pp && pp[0] >= 'A' && pp[0] <= 'Y' && strcmp(pp + 1, "x") == 0, "a new profile replaces all of it, under a letter: %s",
              pp ? pp : "(none)");
    md_codes_destroy(codes);
}

/* Every audit outcome's code reads back as that outcome, and a text that is
 * no code (one letter of a two-letter code, a code and more) as none. */
Test(window, every_audit_outcome_code_reads_back) {
    md_cstate *cs = md_cstate_new(cfg);
    char field[32], value[32];
    snprintf(field, sizeof(field), "R%s%s", cs->r->campaigns[0].code, "1b");
    for (int o = 0; o <= MD_AUDIT_HOLDOUT; o++) {
        md_cstate_reset(cs);
        snprintf(value, sizeof(value), "%s,5,300", md_audit_outcome_code(o));
        load(cs, field, value);
        cr_assert_eq(cs->n_audits, 1, "%s read", value);
        cr_assert_eq(cs->audits[0].outcome, o, "%s read as %s", value, md_audit_outcome_name(cs->audits[0].outcome));
    }
    const char *none[] = {"c,5,300", "bto,5,300", ",5,300", "f\0,5,300"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        md_cstate_reset(cs);
        md_cstate_load_field(cs, field, strlen(field), none[i], i == 3 ? 8 : strlen(none[i]));
        cr_assert_eq(cs->n_audits, 0, "\"%s\" is no outcome", none[i]);
    }
    md_cstate_destroy(cs);
}
