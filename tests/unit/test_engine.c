/* test_engine.c: the demand model, the cooldown curve and every contact rule
 * the configuration can express, each shown to actually block. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "momentd/engine.h"
#include "momentd/jsonw.h"
#include "cstate_internal.h"
#include "rules.h"

static md_config *cfg;
static md_cstate *cs;
static md_ops ops, cp_ops;
static md_engine_out out;
static char cust[32];
static int seq;

enum { PREPAY = 0, INSTALMENT = 1 };

/* A customer outside both campaigns' holdout groups (5% and 10%). */
static void pick_customer(bool holdout_prepay) {
    th_pick_customer(cust, sizeof(cust), "cust", holdout_prepay);
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
}
static int64_t emit_delay; /* how long after its event a decision is emitted (lag, replay) */

static void start(md_config *c) {
    cfg = c;
    cs = md_cstate_new(cfg);
    md_ops_init(&ops);
    md_ops_init(&cp_ops);
    md_engine_out_init(&out);
    seq = 0;
    emit_delay = 0;
    pick_customer(false);
}
static void setup(void) { start(th_default_config()); }
static void teardown(void) {
    md_engine_out_fini(&out);
    md_ops_fini(&ops);
    md_ops_fini(&cp_ops);
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
}
TestSuite(engine, .init = setup, .fini = teardown);

static void process_json(const char *json, md_cpstate *cp) {
    md_event ev = th_event(json);
    cr_assert_eq(md_engine_process(cfg, cs, cp, &ev, NULL, ev.ts_ms + emit_delay, &ops, &cp_ops, &out), MD_ERR_OK);
}

static void late_payment(int64_t ts, double balance) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"e%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":100,\"kind\":\"bill\","
             "\"late\":true,\"balance_after\":%g}",
             seq++, cust, (long long)ts, balance);
    process_json(json, NULL);
}

static void prepay_view(int64_t ts) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"e%d\",\"type\":\"app_login\",\"customer_id\":\"%s\",\"ts\":%lld,\"pages\":[\"prepay_product\"]}", seq++,
             cust, (long long)ts);
    process_json(json, NULL);
}

static void view(int64_t ts, const char *page) {
    char json[512];
    snprintf(json, sizeof(json), "{\"event_id\":\"e%d\",\"type\":\"app_login\",\"customer_id\":\"%s\",\"ts\":%lld,\"pages\":[\"%s\"]}",
             seq++, cust, (long long)ts, page);
    process_json(json, NULL);
}

static void call(int64_t ts, const char *reason) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"e%d\",\"type\":\"call\",\"customer_id\":\"%s\",\"ts\":%lld,\"reason\":\"%s\",\"direction\":\"inbound\",\"duration_s\":120}",
             seq++, cust, (long long)ts, reason);
    process_json(json, NULL);
}

/* make_late_low_balance(TH_T0) with the customer's contact-point state. */
static void late_low_balance_with(md_cpstate *cp) {
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"last\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":100,\"kind\":\"bill\",\"late\":true,\"balance_after\":50}",
             cust, (long long)TH_T0);
    process_json(json, cp);
}

static void field(const char *f, const char *v) { md_cstate_load_field(cs, f, strlen(f), v, strlen(v)); }
static void field_time(const char *f, int64_t t) {
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)t);
    field(f, v);
}

/* Three late payments leaving a low balance: low_balance and late_payer become
 * true on the third, and prepay_wallet's score crosses 0.6 exactly then. */
static void make_late_low_balance(int64_t t_last) {
    late_payment(t_last - 60 * TH_DAY, 80);
    cr_assert_eq(out.n_triggers, 0);
    late_payment(t_last - 30 * TH_DAY, 60);
    cr_assert_eq(out.n_triggers, 0, "two late payments are not enough (score %.3f)", out.eval[PREPAY].score);
    late_payment(t_last, 50);
}

/* Swaps the suite's configuration for the default with `from` replaced by
 * `to`, and gives it a fresh customer state (a state must not outlive its
 * configuration). */
static void reconfigure(const char *from, const char *to) {
    char err[512];
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
    cs = NULL; /* teardown must not free them again if the load fails */
    cfg = NULL;
    cfg = th_config_with(from, to, err, sizeof(err));
    cr_assert(cfg, "%s", err);
    cs = md_cstate_new(cfg);
}

Test(engine, late_payer_with_low_balance_fires_once_with_reasons) {
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
    md_trigger *t = &out.triggers[0];
    cr_assert_eq(t->campaign, PREPAY);
    cr_assert_str_eq(t->topic, "moments.outbound_call", "no app use, not a call: the dialer");
    cr_assert_not(t->holdout);
    cr_assert(strstr(t->payload, "\"reasons\":[{\"feature\":\"late_payments_180d\",\"value\":3,"), "%s", t->payload);
    cr_assert(strstr(t->payload, "\"low_balance\""), "%s", t->payload);
    cr_assert(strstr(t->payload, "\"tags\":[\"low_balance\",\"late_payer\"]"), "%s", t->payload);
    cr_assert(strstr(t->payload, "\"model_version\":\"prepay_wallet-2026.11.1\""));
    cr_assert(strstr(t->payload, "\"expires_at\":\"2026-03-02T06:00:00.000Z\""), "4h freshness: %s", t->payload);
    cr_assert(strstr(t->payload, "\"days_since_last_contact\":null"));
    /* Contributions add up to the logit. */
    double sum = cfg->campaigns[PREPAY].model.intercept;
    for (size_t k = 0; k < out.eval[PREPAY].n_contrib; k++) sum += out.eval[PREPAY].contrib[k].contribution;
    cr_assert_float_eq(sum, out.eval[PREPAY].logit, 1e-9);
    cr_assert_float_eq(out.eval[PREPAY].score, 1 / (1 + exp(-out.eval[PREPAY].logit)), 1e-12);
    /* The trigger was written to the outbox in the same operations. */
    bool in_outbox = false;
    for (size_t i = 0; i < ops.n; i++)
        if (ops.ops[i].kind == MD_OP_OUTBOX_SET && strcmp(md_ops_field(&ops, i), t->id) == 0) in_outbox = true;
    cr_assert(in_outbox);
    cr_assert_eq(md_cstate_pending_count(cs), 1);
}

/* tags[].category groups the true rule tags for explain; false tags and
 * categories with nothing true are left out. */
Test(engine, tags_are_grouped_by_category) {
    make_late_low_balance(TH_T0);
    md_jsonw w;
    md_jsonw_init(&w);
    md_engine_write_tag_categories(cfg, cs, &w);
    cr_assert_str_eq(w.buf, "{\"outage_risk 停电风险客户\":[\"low_balance\",\"late_payer\"]}");
    md_jsonw_fini(&w);
}

/* A rule may read a statistical tag: its value is the profile attribute's. */
Test(engine, a_rule_reads_a_statistical_tag_as_the_profile_value) {
    reconfigure("\"expr\": \"balance >= 200\"", "\"expr\": \"province == \\\"Beijing\\\"\"");
    char err[256];
    const char *profiles[] = {"{\"province\":\"Beijing\"}", "{\"province\":\"Hebei\"}"};
    for (int k = 0; k < 2; k++) {
        pick_customer(false);
        md_ops_clear(&ops);
        cr_assert_eq(md_cstate_set_profile(cs, profiles[k], &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
        late_payment(TH_T0, 500);
        md_jsonw w;
        md_jsonw_init(&w);
        md_engine_write_tag_categories(cfg, cs, &w);
        bool high = strstr(w.buf, "high_balance") != NULL;
        cr_assert_eq(high, k == 0, "%s: %s", profiles[k], w.buf);
        md_jsonw_fini(&w);
    }
}

Test(engine, hysteresis_no_refire_until_score_falls_below_rearm) {
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
    late_payment(TH_T0 + 70 * TH_DAY, 40); /* after any cooldown, still high */
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NOT_REARMED);
}

Test(engine, trigger_ids_are_deterministic) {
    char a[MD_TRIGGER_ID_LEN], b[MD_TRIGGER_ID_LEN], c[MD_TRIGGER_ID_LEN];
    md_trigger_id("prepay_wallet", "c1", "e1", a);
    md_trigger_id("prepay_wallet", "c1", "e1", b);
    md_trigger_id("prepay_wallet", "c1", "e2", c);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_eq(strlen(a), 33);
    /* The text of an id never changes between versions: a replay after an
     * upgrade must name its moments as before (values of 2026-12). */
    cr_assert_str_eq(a, "ma77e333ecec598e56e9fb28eab732a47");
    md_trigger_id("ab", "c", "", a);
    cr_assert_str_eq(a, "mdc438bd1242d1f090786da6dbece34e9");
    md_trigger_id("a", "bc", "", b); /* the names are kept apart */
    cr_assert_str_eq(b, "m0d86c699af02d3bbbd711789566f2a6f");
    md_trigger_id("", "", "", a);
    cr_assert_str_eq(a, "m8a20b91ed0769ba5c2d7b6df259959a3");
}

/* The gap at which a contact at p is worth a threshold contact with no
 * contact before it: tau ln(rho p V / ((p - theta)(V + U))), in
 * [min_days, max_days]; computed here by hand for tau 6, rho 0.9, theta 0.65. */
Test(engine, the_gap_falls_out_of_the_value) {
    md_cfg_cooldown cd = {.mode = "adaptive", .fixed_days = 45, .min_days = 3, .max_days = 45, .recovery_days = 6, .repeat_penalty = 0.9};
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.3, 0.65, 1000, 0), 45, 1e-9, "below the threshold: max_days");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.65, 0.65, 1000, 0), 45, 1e-9, "at the threshold: never longer than max_days");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.66, 0.65, 1000, 0), 6 * log(0.9 * 0.66 / 0.01), 1e-9, "just above: long");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.8, 0.65, 1000, 0), 6 * log(0.9 * 0.8 / 0.15), 1e-9);
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.95, 0.65, 1000, 0), 6 * log(0.9 * 0.95 / 0.3), 1e-9);
    cr_assert_lt(md_cooldown_required_days(&cd, 0.95, 0.65, 1000, 0), md_cooldown_required_days(&cd, 0.8, 0.65, 1000, 0),
                 "the higher p, the shorter the gap");
    /* unwanted_cost weighs on the threshold contact it is compared with
     * (1 - threshold) more than on this one (1 - p): the gap shrinks. */
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.8, 0.65, 1000, 500), 6 * log(0.9 * 0.8 * 1000 / (0.15 * 1500)), 1e-9);
    cd.recovery_days = 1;
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.99, 0.65, 1000, 0), 3, 1e-9, "at peaks: min_days");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.99, 0.65, 0, 0), 45, 1e-9, "a conversion worth nothing: max_days");
    cd.mode = "fixed";
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.99, 0.65, 1000, 0), 45, 1e-9, "fixed: fixed_days whatever p");
}

/* recovery "window": the whole repeat penalty for recovery_days (the
 * customer still counts that contact), then the exponential's fading. The
 * gap is min_days when a tired contact still clears the bar,
 * p >= theta (V + U) / (V (1 - rho) + U), else never inside the window.
 * Worked by hand for tau 30, rho 0.5, theta 0.3, V 1000. */
Test(engine, a_window_recovery_holds_the_penalty_for_its_days) {
    md_cfg_cooldown cd = {.mode = "adaptive", .min_days = 3, .max_days = 45, .recovery_days = 30, .repeat_penalty = 0.5,
                          .recovery = "window"};
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 1, 1000, 0, 0), 400, 1e-9, "a day after: half");
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 29.9, 1000, 0, 0), 400, 1e-9, "still half at the window's end");
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 30, 1000, 0, 0), 800 * (1 - 0.5 * exp(-1)), 1e-9, "then fading");
    cr_assert_float_eq(md_contact_value(&cd, 0.8, -1, 1000, 10, 0), 790, 1e-9, "never contacted: p V - cost");
    /* theta 0.3: a tired contact clears the bar from p 0.6. */
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.6, 0.3, 1000, 0), 3, 1e-9, "a peak worth a tired customer: min_days");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.59, 0.3, 1000, 0), 30, 1e-9,
                       "just under it: the window (the exponential would say %g)", 30 * log(0.5 * 0.59 / 0.29));
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.35, 0.3, 1000, 0), fmin(45, 30 * log(0.5 * 0.35 / 0.05)), 1e-9,
                       "near the threshold: the exponential's longer gap");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.31, 0.3, 1000, 0), 45, 1e-9, "never longer than max_days");
    /* U 500: p >= 0.3 * 1500 / (500 + 500) = 0.45. */
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.45, 0.3, 1000, 500), 3, 1e-9, "unwanted_cost lowers the bar for the tired contact");
    cr_assert_float_eq(md_cooldown_required_days(&cd, 0.44, 0.3, 1000, 500), 30, 1e-9);
    cd.recovery = "exponential";
    cr_assert_lt(md_cooldown_required_days(&cd, 0.59, 0.3, 1000, 0), 30, "the exponential would call inside the window");
}

Test(engine, the_value_of_a_contact) {
    md_cfg_cooldown cd = {.mode = "adaptive", .min_days = 3, .max_days = 45, .recovery_days = 6, .repeat_penalty = 0.9};
    cr_assert_float_eq(md_contact_value(&cd, 0.8, -1, 1000, 10, 0), 790, 1e-9, "never contacted: p V - cost");
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 6, 1000, 10, 100), 0.8 * 1000 * (1 - 0.9 * exp(-1)) - 10 - 100 * 0.2, 1e-9);
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 0, 1000, 0, 0), 80, 1e-9, "just contacted: a tenth of it left");
    cd.mode = "fixed";
    cr_assert_float_eq(md_contact_value(&cd, 0.8, 0, 1000, 10, 0), 790, 1e-9, "fixed: no repeat term");
    cr_assert_lt(md_contact_value(&cd, 0.01, -1, 1000, 50, 0), 0, "a trough: worth less than it costs");
}

Test(engine, fatigue_halves_every_half_life) {
    cr_assert_float_eq(md_fatigue_at(2, 1000, 1000, 30 * TH_DAY), 2, 1e-12);
    cr_assert_float_eq(md_fatigue_at(2, 1000, 1000 + 30 * TH_DAY, 30 * TH_DAY), 1, 1e-12);
    cr_assert_float_eq(md_fatigue_at(2, 1000, 1000 + 60 * TH_DAY, 30 * TH_DAY), 0.5, 1e-12);
    cr_assert_float_eq(md_fatigue_at(2, 0, 1000 + 60 * TH_DAY, 30 * TH_DAY), 2, 1e-12, "an older state: not decayed");
    cr_assert_float_eq(md_fatigue_at(0, 1000, 5000, 30 * TH_DAY), 0, 1e-12);
}

/* A late payer with a low balance who keeps looking at the product, last
 * contacted days_ago days before T0 (the views alone must not fire: the
 * story is about T0). */
static void peak_story(double days_ago) {
    int64_t last = TH_T0 - (int64_t)(days_ago * (double)TH_DAY);
    field_time("l:prepay_wallet", last);
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    field_time("l:prepay_wallet", TH_T0 - 2 * TH_HOUR);
    prepay_view(TH_T0 - 2 * TH_HOUR);
    prepay_view(TH_T0 - TH_HOUR);
    prepay_view(TH_T0 - TH_HOUR / 2);
    field_time("l:prepay_wallet", last);
    late_payment(TH_T0, 50);
}

Test(engine, peak_customer_contacted_before_45_days_trough_not_after_45) {
    peak_story(15);
    cr_assert_geq(out.eval[PREPAY].score, 0.9, "score %.3f", out.eval[PREPAY].score);
    cr_assert_eq(out.n_triggers, 1, "15 days after the last contact, at peak: %s", md_suppress_name(out.eval[PREPAY].suppressed));
    const md_cfg_campaign *cc = &cfg->campaigns[PREPAY];
    cr_assert_float_eq(out.eval[PREPAY].required_gap_days,
                       md_cooldown_required_days(&cc->cooldown, out.eval[PREPAY].p_contact, cc->threshold, cc->conversion_value, cc->unwanted_cost),
                       1e-9);
    cr_assert_lt(out.eval[PREPAY].required_gap_days, 15);
    cr_assert_str_eq(out.triggers[0].topic, "moments.in_app", "used the app this week: in-app message");

    /* Near the threshold: same history without product views and with no
     * customer type: the score is just over the threshold, the gap is long,
     * so 10 days are too soon... */
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 10 * TH_DAY);
    make_late_low_balance(TH_T0);
    cr_assert_geq(out.eval[PREPAY].score, 0.6);
    cr_assert_lt(out.eval[PREPAY].score, 0.7);
    cr_assert_gt(out.eval[PREPAY].required_gap_days, 10, "gap %.1f", out.eval[PREPAY].required_gap_days);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COOLDOWN);
    /* ... but never longer than the 45 days it replaces. */
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 45 * TH_DAY - TH_HOUR);
    make_late_low_balance(TH_T0);
    cr_assert_leq(out.eval[PREPAY].required_gap_days, 45);
    cr_assert_eq(out.n_triggers, 1, "45 days after the last contact, above the threshold: %s", md_suppress_name(out.eval[PREPAY].suppressed));
}

Test(engine, fixed_mode_is_45_days) {
    reconfigure("\"mode\": \"adaptive\", \"min_days\": 7", "\"mode\": \"fixed\", \"min_days\": 7");
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 44 * TH_DAY);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COOLDOWN);
    cr_assert_float_eq(out.eval[PREPAY].required_gap_days, 45, 1e-9);
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 46 * TH_DAY);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
}

/* A gap of 30.5 days: 30.4 days after the last contact is too soon, 30.6
 * days is not. Truncating either the gap or the time since the last
 * contact to whole days fails one side. */
Test(engine, a_fractional_cooldown_holds_just_below_and_releases_just_above) {
    reconfigure("\"mode\": \"adaptive\", \"min_days\": 7", "\"mode\": \"fixed\", \"fixed_days\": 30.5, \"min_days\": 7");
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 30 * TH_DAY - 10 * TH_HOUR); /* 30.42 days before */
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COOLDOWN, "30.42 days after a contact, with a 30.5-day gap");
    cr_assert_float_eq(out.eval[PREPAY].required_gap_days, 30.5, 1e-9);
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 30 * TH_DAY - 14 * TH_HOUR); /* 30.58 days before */
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1, "30.58 days after a contact, with a 30.5-day gap: %s",
                 md_suppress_name(out.eval[PREPAY].suppressed));
}

/* Fatigue lowers p (score x (1 - fatigue_penalty)^fatigue), so the same
 * customer needs a longer gap, or falls below the threshold. */
Test(engine, fatigue_lowers_p_and_lengthens_the_gap) {
    peak_story(50);
    double rested_gap = out.eval[PREPAY].required_gap_days, score = out.eval[PREPAY].score;
    cr_assert_float_eq(out.eval[PREPAY].p_contact, score, 1e-12);
    cr_assert_lt(rested_gap, 45, "a peak: shorter than max_days");
    pick_customer(false);
    char v[64];
    snprintf(v, sizeof(v), "1000,%lld", (long long)(TH_T0 - 60 * TH_DAY)); /* 1 unit, two half-lives ago: 0.25 now */
    field("f:prepay_wallet", v);
    peak_story(50);
    cr_assert_float_eq(out.eval[PREPAY].fatigue, 0.25, 1e-9);
    cr_assert_float_eq(out.eval[PREPAY].p_contact, out.eval[PREPAY].score * pow(1 - 0.15, 0.25), 1e-9);
    cr_assert_gt(out.eval[PREPAY].required_gap_days, rested_gap, "tired %.1f, rested %.1f", out.eval[PREPAY].required_gap_days, rested_gap);
    pick_customer(false);
    field_time("l:prepay_wallet", TH_T0 - 50 * TH_DAY);
    snprintf(v, sizeof(v), "3000,%lld", (long long)TH_T0); /* three units just now */
    field("f:prepay_wallet", v);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_BELOW_THRESHOLD, "p %.3f", out.eval[PREPAY].p_contact);
    cr_assert_eq(out.n_triggers, 0);
}

Test(engine, a_stale_moment_is_never_emitted) {
    int64_t fresh_for = cfg->channels[md_rules_channel_index(cfg, "outbound_call")].fresh_for_ms;
    emit_delay = fresh_for + 1;
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_STALE);
    cr_assert_eq(out.n_stale, 1);
    cr_assert_eq(md_cstate_campaign(cs, PREPAY).last_contact, 0, "no contact recorded");
    cr_assert(md_cstate_campaign(cs, PREPAY).armed, "not disarmed");
    cr_assert_eq(md_cstate_pending_count(cs), 0);
    cr_assert_eq(md_cstate_campaign(cs, PREPAY).last_stale, TH_T0, "explain shows it");
    cr_assert_float_eq(md_cstate_window(cfg, cs, 1, TH_T0), 3, 1e-9, "late_payments_180d still counted all three");
    pick_customer(false);
    emit_delay = fresh_for;
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1, "emitted at its expiry: still fresh");
    cr_assert_eq(out.n_stale, 0);
}

/* skip_after_conversion: the campaign's own purchase, contacted or not,
 * stops it for that long; and a contact worth less than it costs is not made. */
Test(engine, a_recent_conversion_and_a_low_value_stop_a_contact) {
    char err[512];
    md_config *c = th_config_with("\"conversion\": \"kind == \\\"prepay\\\"\"",
                                  "\"conversion\": \"kind == \\\"prepay\\\"\", \"skip_after_conversion\": \"60d\"", err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    teardown();
    start(c);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"buy\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":500,\"kind\":\"prepay\"}", cust,
             (long long)(TH_T0 - 90 * TH_DAY));
    process_json(json, NULL);
    cr_assert_eq(md_cstate_campaign(cs, PREPAY).last_conversion, TH_T0 - 90 * TH_DAY, "an uncontacted purchase counts too");
    make_late_low_balance(TH_T0); /* its first late payment is 60 days before T0: 30 after the purchase */
    cr_assert_eq(out.n_triggers, 1, "90 days after the purchase: %s", md_suppress_name(out.eval[PREPAY].suppressed));
    pick_customer(false);
    snprintf(json, sizeof(json),
             "{\"event_id\":\"buy\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":500,\"kind\":\"prepay\"}", cust,
             (long long)(TH_T0 - 59 * TH_DAY));
    process_json(json, NULL);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_RECENT_CONVERSION);
    cr_assert_eq(out.eval[PREPAY].eligible_again_ms, TH_T0 + TH_DAY);
}

Test(engine, a_contact_worth_less_than_it_costs_is_not_made) {
    char err[512];
    md_config *c = th_config_with("\"contact_cost\": 5", "\"contact_cost\": 100000", err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    teardown();
    start(c);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_LOW_VALUE, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    cr_assert_lt(out.eval[PREPAY].value, 0);
}

Test(engine, complaint_blocks_until_its_end) {
    field_time("cb", TH_T0 + 30 * TH_DAY);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COMPLAINT);
    cr_assert_eq(out.eval[PREPAY].eligible_again_ms, TH_T0 + 30 * TH_DAY);
}

Test(engine, opt_out_blocks_forever) {
    field("oo", "1");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_OPT_OUT);
    cr_assert_eq(out.eval[PREPAY].eligible_again_ms, INT64_MAX);
}

Test(engine, customer_cap_over_a_rolling_day_not_a_calendar_day) {
    /* A contact at 23:59 local yesterday and now 00:01-ish: same rolling 24h. */
    field("k:1772380740000:bill_instalment", "sms"); /* 2026-03-01T23:59:00+08:00 */
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    late_payment(INT64_C(1772380860000) + 9 * TH_HOUR, 50); /* 09:01 next morning, outside quiet hours */
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_CAP_CUSTOMER);
}

Test(engine, channel_cap_blocks) {
    field("k:1771000000000:bill_instalment", "outbound_call");
    field("k:1771500000000:bill_instalment", "outbound_call");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_CAP_CHANNEL);
    cr_assert_eq(out.eval[PREPAY].eligible_again_ms, INT64_C(1771000000000) + 30 * TH_DAY);
}

Test(engine, contact_point_cap_spans_accounts) {
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"contact_point\":\"+8613800000000\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    md_cpstate *cp = md_cpstate_new();
    for (int i = 0; i < 6; i++) {
        char f[64];
        snprintf(f, sizeof(f), "k:%lld:other-account:prepay_wallet", (long long)(TH_T0 - (i + 2) * TH_DAY));
        md_cpstate_load_field(cp, f, "sms");
    }
    late_low_balance_with(cp);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_CAP_CONTACT_POINT);
    md_cpstate_destroy(cp);
}

Test(engine, quiet_hours_in_the_customers_time_zone) {
    cr_assert(md_quiet_hours_active(21 * 60, 9 * 60, TH_T0 + 12 * TH_HOUR + 30 * 60000, 480), "22:30 in Beijing");
    cr_assert_not(md_quiet_hours_active(21 * 60, 9 * 60, TH_T0, 480), "10:00 in Beijing");
    cr_assert(md_quiet_hours_active(21 * 60, 9 * 60, TH_T0, 0), "02:00 UTC");
    cr_assert_not(md_quiet_hours_active(0, 0, TH_T0, 0), "equal start and end: none");
    cr_assert(md_quiet_hours_active(13 * 60, 14 * 60, TH_T0 + 3 * TH_HOUR + 60000, 480), "non-wrapping 13:00-14:00");

    make_late_low_balance(TH_T0 + 12 * TH_HOUR + 30 * 60000); /* 22:30 local */
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_QUIET_HOURS);
    cr_assert_eq(out.eval[PREPAY].eligible_again_ms, TH_T0 + 23 * TH_HOUR, "until 09:00 local");
    /* The same instant for a customer in UTC is 14:30: allowed. */
    pick_customer(false);
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"utc_offset\":\"+00:00\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    make_late_low_balance(TH_T0 + 12 * TH_HOUR + 30 * 60000);
    cr_assert_eq(out.n_triggers, 1);
}

/* Quiet hours are [start, end): 21:00 itself is quiet, 20:59:59.999 is not;
 * 09:00 itself is not, 08:59:59.999 is (TH_T0 is 10:00 in Beijing). */
Test(engine, quiet_hours_at_exactly_their_start_and_end_minute) {
    const int64_t b2100 = TH_T0 + 11 * TH_HOUR, b0900 = TH_T0 + 23 * TH_HOUR;
    cr_assert(md_quiet_hours_active(21 * 60, 9 * 60, b2100, 480), "21:00:00.000");
    cr_assert_not(md_quiet_hours_active(21 * 60, 9 * 60, b2100 - 1, 480), "20:59:59.999");
    cr_assert_not(md_quiet_hours_active(21 * 60, 9 * 60, b0900, 480), "09:00:00.000");
    cr_assert(md_quiet_hours_active(21 * 60, 9 * 60, b0900 - 1, 480), "08:59:59.999");
    /* And through the engine: a moment due at 21:00 is held, at 20:59 sent. */
    make_late_low_balance(b2100);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_QUIET_HOURS, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    pick_customer(false);
    make_late_low_balance(b2100 - 60000);
    cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
}

Test(engine, service_recovery_blackout) {
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"restore\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":300,\"kind\":\"arrears_restore\",\"late\":true,\"balance_after\":10}",
             cust, (long long)TH_T0);
    process_json(json, NULL);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_BLACKOUT, "no marketing right after a power cut");
    late_payment(TH_T0 + 2 * TH_DAY, 20);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_BLACKOUT, "still inside the 72h");
    late_payment(TH_T0 + 4 * TH_DAY, 20);
    cr_assert_eq(out.n_triggers, 1, "after the blackout: %s", md_suppress_name(out.eval[PREPAY].suppressed));
}

Test(engine, complaint_call_starts_a_blackout) {
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    call(TH_T0 - TH_HOUR, "complaint");
    late_payment(TH_T0, 50);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_BLACKOUT);
}

Test(engine, sms_right_after_a_service_call) {
    /* Two late payments and a low balance leave the score just under 0.6; an
     * inbound bill inquiry adds bill_calls_30d and crosses it on the call,
     * so the route is the SMS after the call (the utility's channel). */
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"customer_type\":\"resident\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    cr_assert_lt(out.eval[PREPAY].score, 0.6);
    call(TH_T0, "bill_inquiry");
    cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    cr_assert_str_eq(out.triggers[0].topic, "moments.sms");
    cr_assert(strstr(out.triggers[0].payload, "\"caused_by\":{\"event_id\":\"e2\",\"type\":\"call\""), "%s", out.triggers[0].payload);
    /* An outbound call with the same reason is not a service call ending: no SMS route. */
    pick_customer(false);
    cr_assert_eq(md_cstate_set_profile(cs, "{\"customer_type\":\"resident\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"out1\",\"type\":\"call\",\"customer_id\":\"%s\",\"ts\":%lld,\"reason\":\"bill_inquiry\",\"direction\":\"outbound\"}",
             cust, (long long)TH_T0);
    process_json(json, NULL);
    cr_assert_eq(out.n_triggers, 0, "bill_call counts inbound calls only, so the score stays below");
}

Test(engine, fire_on_restricts_the_events_that_fire) {
    reconfigure("\"threshold\": 0.6,", "\"fire_on\": \"event.type == \\\"call\\\"\", \"threshold\": 0.6,");
    pick_customer(false);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_EVENT_NOT_ALLOWED);
    call(TH_T0 + TH_HOUR, "bill_inquiry");
    cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    cr_assert_str_eq(out.triggers[0].topic, "moments.sms", "right after an inbound bill inquiry: SMS");
}

Test(engine, eligibility_blocks) {
    md_cstate_destroy(cs); /* a state must not outlive its configuration */
    md_config_destroy(cfg);
    cs = NULL; /* teardown must not free them again if an assertion stops the test */
    cfg = NULL;
    char err[512];
    cfg = th_config_with("\"eligible\": \"low_balance ||", "\"eligible\": \"frequent_arrears && (low_balance ||", err, sizeof(err));
    cr_assert_null(cfg, "unbalanced parentheses are caught");
    cfg = th_config_with("\"eligible\": \"low_balance ||", "\"eligible\": \"frequent_arrears && low_balance ||", err, sizeof(err));
    cr_assert(cfg, "%s", err);
    /* "a && b || c ..." still lets late_payer through; use a strict rule instead. */
    md_config_destroy(cfg);
    cfg = th_config_with("\"eligible\": \"low_balance || frequent_arrears || late_payer || frequent_payer || prepay_views_7d >= 1\"",
                         "\"eligible\": \"frequent_arrears\"", err, sizeof(err));
    cr_assert(cfg, "%s", err);
    cs = md_cstate_new(cfg);
    pick_customer(false);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NOT_ELIGIBLE);
}

Test(engine, holdout_records_but_never_contacts) {
    pick_customer(true);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
    cr_assert(out.triggers[0].holdout);
    cr_assert_str_eq(out.triggers[0].topic, "moments.holdout");
    cr_assert(strstr(out.triggers[0].payload, "\"holdout\":true"));
    /* No contact was made, so no cap is consumed. */
    for (size_t i = 0; i < ops.n; i++) cr_assert_neq(md_ops_field(&ops, i)[0], 'k', "no contact-log entry for a holdout");
}

/* Holdout and arm membership by statistics, not by the hash that computes
 * them: each share is near its configured value, the two campaigns' holdout
 * groups overlap as independent draws would, and a campaign's arms split its
 * holdout group as they split everyone. Bounds are about four standard
 * deviations. */
Test(engine, holdout_membership_is_stable_and_near_its_share) {
    enum { N = 20000 };
    int in_wallet = 0, in_instal = 0, both = 0, arm0 = 0, hold_instal_arm0 = 0;
    int instal = -1;
    for (size_t c = 0; c < cfg->n_campaigns; c++)
        if (strcmp(cfg->campaigns[c].name, "bill_instalment") == 0) instal = (int)c;
    cr_assert_geq(instal, 0);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c%d", i);
        bool w = md_holdout_bucket(id, "prepay_wallet") < 500;  /* 5% */
        bool b = md_holdout_bucket(id, "bill_instalment") < 1000; /* 10% */
        int arm = md_policy_arm(cfg, instal, id);
        cr_assert(arm == 0 || arm == 1);
        in_wallet += w;
        in_instal += b;
        both += w && b;
        arm0 += arm == 0;
        hold_instal_arm0 += b && arm == 0;
    }
    cr_assert(in_wallet > 880 && in_wallet < 1120, "5%% of %d is 1000, got %d", N, in_wallet);
    cr_assert(in_instal > 1830 && in_instal < 2170, "10%% of %d is 2000, got %d", N, in_instal);
    cr_assert(both > 60 && both < 140, "independent 5%% and 10%% overlap in about 100 of %d, got %d", N, both);
    cr_assert(arm0 > 9720 && arm0 < 10280, "half of %d in the first arm, got %d", N, arm0);
    cr_assert(hold_instal_arm0 > 0.40 * in_instal && hold_instal_arm0 < 0.60 * in_instal,
              "the arms split the holdout group as everyone: %d of %d", hold_instal_arm0, in_instal);
    /* Stable across processes and versions: membership is stored nowhere, so
     * a changed hash would silently move customers between groups. */
    cr_assert_eq(md_holdout_bucket("c1", "prepay_wallet"), 165);
    cr_assert_eq(md_holdout_bucket("c2", "bill_instalment"), 1733);
}

Test(engine, evaluate_changes_nothing_and_explains_the_blocking_rule) {
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + TH_DAY, &out);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_neq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NONE);
    cr_assert_str_eq(out.eval[PREPAY].deciding_rule, "cooldown");
    cr_assert_gt(out.eval[PREPAY].eligible_again_ms, TH_T0 + 7 * TH_DAY);
}

/* A profile value with an escaped NUL would be cut short by yajl's tree
 * ("a\u0000b" read as "a"): refused whole, the previous profile kept. */
Test(engine, profile_with_a_nul_character_is_refused) {
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"contact_point\":\"+8613800000000\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    md_ops_clear(&ops);
    cr_assert_eq(md_cstate_set_profile(cs, "{\"contact_point\":\"+86\\u0000other\"}", &ops, err, sizeof(err)), MD_ERR_BAD_EVENT);
    cr_assert_not_null(strstr(err, "NUL character"), "%s", err);
    cr_assert_eq(ops.n, 0, "nothing written");
    cr_assert_str_eq(md_cs_profile(cs, cfg->rules->attr_contact_point), "+8613800000000");
}

/* The kind of the last operation on field f in ops, 0 when there is none. */
static int last_op_on(const char *f) {
    int kind = 0;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), f) == 0) kind = ops.ops[i].kind;
    return kind;
}

/* The value of the last SET of field f in ops, or NULL. */
static const char *last_value_of(const char *f) {
    const char *v = NULL;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), f) == 0) v = ops.ops[i].kind == MD_OP_SET ? md_ops_value(&ops, i) : NULL;
    return v;
}

/* The shortest of "%.15g", "%.16g", "%.17g" that reads back as b: the text
 * T has always stored for a balance, worked out here with printf. */
static void shortest_text(double b, char *out, size_t n) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, b);
        if (strtod(out, NULL) == b) return;
    }
}

Test(engine, a_balance_is_stored_as_the_shortest_text_that_reads_back_as_it) {
    /* Whole cents (formatted without printf) and everything else (with
     * it): the same text either way, and it reads back as the balance. */
    double balances[] = {109.33, 100, 0.5, 0.05, 0.1, 1.1, 12.5, 2000, 0, -12.5, -0.07, -3, 999999999.99, 123456789.45, -999999999.99,
                         1e9, -1e9, 1e-5, 0.30000000000000004, 1.005, 2.675, 1.0 / 3, 123.456, 1e-300,
                         -0.0, 17.99, 0.01, 1e8 + 0.01};
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < sizeof(balances) / sizeof(balances[0]) + 2000; i++) {
        double b;
        if (i < sizeof(balances) / sizeof(balances[0])) {
            b = balances[i];
        } else { /* random whole cents of every size, and a few not */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            long long cents = (long long)(x % 100000000000ULL) / (long long)(1 + x % 100000) * (x & 1 ? 1 : -1);
            b = (double)cents / 100.0;
            if (i % 7 == 0) b += 0.001;
        }
        md_cstate_reset(cs);
        md_cstate_set_customer(cs, cust);
        md_ops_clear(&ops);
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"event_id\":\"b%zu\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":100,\"kind\":\"bill\","
                 "\"balance_after\":%.17g}",
                 i, cust, (long long)TH_T0, b);
        process_json(json, NULL);
        md_cstate_flush(cs, &ops);
        const char *t = last_value_of("T");
        cr_assert(t, "T written for %.17g", b);
        const char *comma = t;
        for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++) comma = strchr(comma, ',') + 1; /* past the three times */
        char want[64];
        shortest_text(b, want, sizeof(want));
        cr_assert_str_eq(comma, want, "balance %.17g: T = %s", b, t);
        /* Read back (whole cents without strtod): the same double, sign and all. */
        md_cstate *back = md_cstate_new(cfg);
        md_cstate_load_field(back, "T", 1, t, strlen(t));
        cr_assert_eq(back->bad_fields, 0, "T = %s", t);
        cr_assert(back->has_balance && back->balance == b && signbit(back->balance) == signbit(b), "balance %.17g read back as %.17g",
                  b, back->balance);
        md_cstate_destroy(back);
    }
    /* Texts fmt_cents does not write read as strtod reads them. */
    const char *texts[] = {"-0", "007.50", ".5", "5.", "1e3", "0.125", "-0.00", "123456789012345", "1234567890123456", "+4"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char t[64];
        snprintf(t, sizeof(t), "1,2,3,%s", texts[i]);
        md_cstate *back = md_cstate_new(cfg);
        md_cstate_load_field(back, "T", 1, t, strlen(t));
        double want = strtod(texts[i], NULL);
        cr_assert(back->has_balance && back->balance == want && signbit(back->balance) == signbit(want), "%s read as %.17g", texts[i],
                  back->balance);
        md_cstate_destroy(back);
    }
}

Test(engine, an_outbox_left_empty_is_marked_and_unmarked_by_the_next_write_to_it) {
    /* Read empty, nothing added: the apply says so (T begins with '.'),
     * and the next batch reads only the customer's hash. */
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    md_cstate_flush(cs, &ops);
    const char *t = last_value_of("T");
    cr_assert(t && t[0] == '.', "T = %s", t ? t : "(none)");
    cr_assert_eq(last_op_on("x0"), 0, "no field of its own");
    cr_assert(md_cstate_outbox_clear(cs));
    /* Read back: the mark is there, and the times read as before. */
    md_cstate *back = md_cstate_new(cfg);
    md_cstate_load_field(back, "T", 1, t, strlen(t));
    cr_assert(md_cstate_outbox_clear(back));
    cr_assert_eq(back->bad_fields, 0);
    cr_assert_eq(back->last_ts[MD_EVENT_PAYMENT], cs->last_ts[MD_EVENT_PAYMENT]);
    md_cstate_reset(back);
    md_cstate_load_field(back, "T", 1, t + 1, strlen(t + 1));
    cr_assert_not(md_cstate_outbox_clear(back), "a T without the mark says nothing");
    /* The store's probe (md_cstate_probe_outbox_clear) answers as the load,
     * whatever the scratch state held before: the mark on a T that parses,
     * or "x0"; a marked T that does not parse, another field: no. */
    md_cstate_load_field(back, "x0", 2, "1", 1);
    cr_assert_not(md_cstate_probe_outbox_clear(back, "T", 1, t + 1, strlen(t + 1)), "an unmarked T, after x0 was loaded");
    cr_assert(md_cstate_probe_outbox_clear(back, "T", 1, t, strlen(t)));
    cr_assert(md_cstate_probe_outbox_clear(back, "x0", 2, "1", 1));
    cr_assert_not(md_cstate_probe_outbox_clear(back, "T", 1, ".zz", 3), "a marked T that does not parse");
    cr_assert_not(md_cstate_probe_outbox_clear(back, "v", 1, ".1", 2), "another field");
    md_cstate_destroy(back);
    /* With the mark loaded, a trigger writes the outbox and takes the mark
     * away in the same apply. */
    md_ops_clear(&ops);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    late_payment(TH_T0, 50);
    cr_assert_eq(out.n_triggers, 1);
    md_cstate_flush(cs, &ops);
    t = last_value_of("T");
    cr_assert(t && t[0] != '.', "the mark goes with the first outbox write: T = %s", t ? t : "(none)");
    cr_assert_not(md_cstate_outbox_clear(cs));
    /* An outbox still holding a trigger (a crash before Kafka acknowledged
     * it) is never marked empty. */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    const char *waiting = "moments.sms\n{}";
    md_cstate_load_outbox(cs, "t1", 2, waiting, strlen(waiting));
    md_ops_clear(&ops);
    late_payment(TH_T0 + TH_DAY, 80);
    md_cstate_flush(cs, &ops);
    t = last_value_of("T");
    cr_assert(t && t[0] != '.', "T = %s", t ? t : "(none)");
    cr_assert_not(md_cstate_outbox_clear(cs));
}

/* The field "x0" of earlier versions says the same: read, and moved into
 * T by the customer's next apply that writes anything (deleted there), a
 * customer read and left alone not rewritten for it. */
Test(engine, the_earlier_empty_outbox_field_is_read_and_moved_into_t) {
    md_cstate_load_field(cs, "x0", 2, "1", 1);
    cr_assert(md_cstate_outbox_clear(cs));
    md_cstate_flush(cs, &ops);
    cr_assert_eq(ops.n, 0, "nothing to write, nothing written");
    /* along any other write, not only a new time */
    md_ops_add(&ops, MD_OP_SET, "cb", "1");
    md_cstate_flush(cs, &ops);
    cr_assert_eq(last_op_on("x0"), MD_OP_DEL, "moved along another write");
    cr_assert(last_value_of("T") && last_value_of("T")[0] == '.', "into T's mark");
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    md_ops_clear(&ops);
    md_cstate_load_field(cs, "x0", 2, "1", 1);
    late_payment(TH_T0, 80);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(last_op_on("x0"), MD_OP_DEL);
    const char *t = last_value_of("T");
    cr_assert(t && t[0] == '.', "T = %s", t ? t : "(none)");
    cr_assert(md_cstate_outbox_clear(cs));
    md_ops_clear(&ops);
    late_payment(TH_T0 + 1, 80);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(last_op_on("x0"), 0, "deleted once");
    /* A trigger's outbox write takes the earlier field away with the mark. */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    md_cstate_load_field(cs, "x0", 2, "1", 1);
    md_ops_clear(&ops);
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    late_payment(TH_T0, 50);
    cr_assert_eq(out.n_triggers, 1);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(last_op_on("x0"), MD_OP_DEL);
    t = last_value_of("T");
    cr_assert(t && t[0] != '.', "T = %s", t ? t : "(none)");
}

Test(engine, the_newest_event_is_the_newest_of_its_type_and_not_stored_twice) {
    /* Only a call time stored: a payment 8 days older is beyond the 7-day
     * max_lateness behind the customer's newest event. */
    field_time("t1", TH_T0); /* the older form: one field a type */
    late_payment(TH_T0 - 8 * TH_DAY, 80);
    cr_assert_eq(out.applied, MD_TOO_LATE);
    /* States written before carry it as "n": still read. */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    field_time("n", TH_T0);
    late_payment(TH_T0 - 8 * TH_DAY, 80);
    cr_assert_eq(out.applied, MD_TOO_LATE);
    /* An accepted event writes its type's time, not "n". */
    md_ops_clear(&ops);
    late_payment(TH_T0 + TH_DAY, 80);
    cr_assert_eq(out.applied, MD_APPLIED);
    md_cstate_flush(cs, &ops);
    cr_assert_eq(last_op_on("T"), MD_OP_SET);
    cr_assert_eq(last_op_on("n"), 0);
}

/* ---- the schedule ---- */

static void due_at(int64_t t) {
    md_engine_out_fini(&out);
    cr_assert_eq(md_engine_due(cfg, cs, NULL, t, t + emit_delay, &ops, &cp_ops, &out), MD_ERR_OK);
}

/* Held back only by time (the cooldown), a campaign above its threshold is
 * scheduled for when the gap ends, and fires then without an event; before
 * that the schedule does nothing. */
Test(engine, a_cooldown_that_ends_fires_by_the_schedule) {
    peak_story(6); /* contacted 6 days ago: the gap (about 10 days at this p) holds */
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COOLDOWN);
    int64_t until = out.eval[PREPAY].eligible_again_ms;
    cr_assert_gt(until, TH_T0);
    cr_assert_lt(until, TH_T0 + 7 * TH_DAY, "within the views' 7-day window, so p holds");
    cr_assert_eq(md_cstate_due(cs), until, "scheduled for the end of the gap");
    due_at(until - 1);
    cr_assert_eq(out.n_triggers, 0, "not due yet");
    cr_assert_eq(md_cstate_due(cs), until);
    /* recent_app_use fades day by day, so p is a little lower when the gap
     * ends, and the gap a little longer: the schedule follows it, 15
     * minutes at least per step, and fires within a few steps. */
    int passes = 0;
    int64_t due = 0;
    for (; passes < 5 && out.n_triggers == 0; passes++) {
        due = md_cstate_due(cs);
        cr_assert_gt(due, 0, "still scheduled after %d passes", passes);
        due_at(due);
    }
    cr_assert_eq(out.n_triggers, 1, "fired within %d passes: %s", passes, md_suppress_name(out.eval[PREPAY].suppressed));
    cr_assert_lt(due, until + TH_DAY, "within a day of the first due time");
    const char *p = out.triggers[0].payload;
    cr_assert(strstr(p, "\"caused_by\":{\"type\":\"schedule\""), "%s", p);
    char want[MD_TRIGGER_ID_LEN], cause[40];
    snprintf(cause, sizeof(cause), "due@%lld", (long long)due);
    md_trigger_id("prepay_wallet", cust, cause, want);
    cr_assert_str_eq(out.triggers[0].id, want, "the id names the due time: a replay makes the same");
    cr_assert_eq(md_cstate_campaign(cs, PREPAY).last_contact, due);
    cr_assert_eq(md_cstate_due(cs), 0, "nothing held back any more");
}

/* When the gap ends later than the signals last (the views leave their
 * 7-day window), the schedule decides on what is left: p has fallen, the
 * gap is longer, and the customer is scheduled again for its end. */
Test(engine, the_schedule_decides_on_the_state_when_it_runs) {
    peak_story(3);
    int64_t until = out.eval[PREPAY].eligible_again_ms;
    cr_assert_gt(until, TH_T0 + 7 * TH_DAY, "after the views' window");
    due_at(until);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_COOLDOWN, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    cr_assert_gt(out.eval[PREPAY].required_gap_days, 20, "p fell: a long gap");
    cr_assert_eq(md_cstate_due(cs), out.eval[PREPAY].eligible_again_ms, "scheduled again for the new gap's end");
}

/* Below the threshold nothing is scheduled: time alone will not lift it. */
Test(engine, an_untimed_block_schedules_nothing) {
    late_payment(TH_T0 - 60 * TH_DAY, 80);
    late_payment(TH_T0 - 30 * TH_DAY, 60);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_BELOW_THRESHOLD);
    cr_assert(out.eval[PREPAY].untimed);
    cr_assert_eq(md_cstate_due(cs), 0);
}

/* A moment held back by quiet hours fires when they end (09:00 local for
 * calls), by the schedule. */
Test(engine, quiet_hours_that_end_fire_by_the_schedule) {
    int64_t night = TH_T0 + 12 * TH_HOUR; /* 22:00 in Beijing */
    late_payment(night - 60 * TH_DAY, 80);
    late_payment(night - 30 * TH_DAY, 60);
    late_payment(night, 50);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_QUIET_HOURS);
    int64_t nine = TH_T0 + 23 * TH_HOUR; /* 09:00 the next morning */
    cr_assert_eq(md_cstate_due(cs), nine);
    due_at(nine);
    cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
}

/* An event after the due time (the timer had not run: lag, a replay)
 * decides the due time first, at that time; stale when emitted too late. */
Test(engine, an_event_after_the_due_time_decides_it_first) {
    int64_t night = TH_T0 + 12 * TH_HOUR;
    late_payment(night - 60 * TH_DAY, 80);
    late_payment(night - 30 * TH_DAY, 60);
    late_payment(night, 50);
    int64_t nine = TH_T0 + 23 * TH_HOUR;
    cr_assert_eq(md_cstate_due(cs), nine);
    prepay_view(nine + TH_HOUR);
    cr_assert_eq(out.n_triggers, 1, "the 09:00 decision, made when the 10:00 event came");
    cr_assert(strstr(out.triggers[0].payload, "\"type\":\"schedule\""), "%s", out.triggers[0].payload);
    cr_assert_eq(md_cstate_campaign(cs, PREPAY).last_contact, nine);
    /* The same, emitted two days later: stale. */
    pick_customer(false);
    late_payment(night - 60 * TH_DAY, 80);
    late_payment(night - 30 * TH_DAY, 60);
    late_payment(night, 50);
    emit_delay = 2 * TH_DAY;
    prepay_view(nine + TH_HOUR);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_geq(out.n_stale, 1);
}

/* Do-not-contact (momentd dnc): a channel the customer or their contact
 * point is listed for is skipped and the next route that applies is taken;
 * with none left the decision is suppressed as do_not_contact, untimed (the
 * schedule will not wait for it). */
Test(engine, do_not_contact_skips_the_channel_for_the_next_route) {
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1);
    cr_assert_str_eq(out.triggers[0].topic, "moments.outbound_call", "no app login: the last route, the call");

    pick_customer(false);
    field("dn:outbound_call", "1");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_DO_NOT_CONTACT);
    cr_assert(out.eval[PREPAY].untimed);

    /* An app login makes in_app the first route; listed for in_app only,
     * the call route after it is taken. */
    for (int listed = 0; listed < 2; listed++) {
        pick_customer(false);
        if (listed) field("dn:in_app", "1");
        late_payment(TH_T0 - 60 * TH_DAY, 80);
        late_payment(TH_T0 - 30 * TH_DAY, 60);
        view(TH_T0 - TH_HOUR, "home");
        cr_assert_eq(out.n_triggers, 0, "an app login alone fired");
        late_payment(TH_T0, 50);
        cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
        cr_assert_str_eq(out.triggers[0].topic, listed ? "moments.outbound_call" : "moments.in_app");
    }

    /* Listed for every channel. */
    pick_customer(false);
    field("dn:*", "1");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_DO_NOT_CONTACT);
}

Test(engine, a_contact_point_on_the_do_not_contact_list_is_not_contacted_for_any_account) {
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"contact_point\":\"+8613800000000\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    md_cpstate *cp = md_cpstate_new();
    md_cpstate_load_field(cp, "dn:outbound_call", "1772294400000");
    cr_assert(md_cpstate_do_not_contact(cp, "outbound_call"));
    cr_assert(!md_cpstate_do_not_contact(cp, "sms"));
    late_low_balance_with(cp);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_DO_NOT_CONTACT);
    md_cpstate_reset(cp);
    cr_assert(!md_cpstate_do_not_contact(cp, "outbound_call"), "reset keeps the list");
    md_cpstate_destroy(cp);
}

/* A channel with a consent attribute is used only for customers whose
 * profile grants it. */
Test(engine, a_channel_that_needs_consent_is_used_only_with_it) {
    reconfigure("{\"name\": \"outbound_call\", \"topic\": \"moments.outbound_call\",",
                "{\"name\": \"outbound_call\", \"topic\": \"moments.outbound_call\", \"consent\": \"call_consent\",");
    pick_customer(false);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NO_CONSENT, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    static const char *const refused[] = {"no", "false", "0", "withdrawn", ""};
    static const char *const granted[] = {"yes", "TRUE", "1", "granted"};
    char err[128], profile[128];
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        pick_customer(false);
        snprintf(profile, sizeof(profile), "{\"call_consent\":\"%s\"}", refused[i]);
        cr_assert_eq(md_cstate_set_profile(cs, profile, &ops, err, sizeof(err)), MD_ERR_OK);
        make_late_low_balance(TH_T0);
        cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NO_CONSENT, "consent \"%s\" was taken as granted", refused[i]);
    }
    for (size_t i = 0; i < sizeof(granted) / sizeof(granted[0]); i++) {
        pick_customer(false);
        snprintf(profile, sizeof(profile), "{\"call_consent\":\"%s\"}", granted[i]);
        cr_assert_eq(md_cstate_set_profile(cs, profile, &ops, err, sizeof(err)), MD_ERR_OK);
        make_late_low_balance(TH_T0);
        cr_assert_eq(out.n_triggers, 1, "consent \"%s\": %s", granted[i], md_suppress_name(out.eval[PREPAY].suppressed));
    }
}

/* A campaign's exclude list keeps it away from a customer; with audience
 * include_list only its include list is contacted. Other campaigns are not
 * affected. */
Test(engine, campaign_lists_exclude_and_include) {
    field("ls:prepay_wallet", "exclude");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_EXCLUDED);
    cr_assert(out.eval[PREPAY].untimed);
    cr_assert_str_eq(md_cstate_campaign(cs, PREPAY).list, "exclude");
    cr_assert_null(md_cstate_campaign(cs, INSTALMENT).list);

    reconfigure("\"name\": \"prepay_wallet\",", "\"name\": \"prepay_wallet\", \"audience\": \"include_list\",");
    pick_customer(false);
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.eval[PREPAY].suppressed, MD_SUPPRESS_NOT_INCLUDED);
    pick_customer(false);
    field("ls:prepay_wallet", "include");
    make_late_low_balance(TH_T0);
    cr_assert_eq(out.n_triggers, 1, "%s", md_suppress_name(out.eval[PREPAY].suppressed));
    pick_customer(false);
    field("ls:prepay_wallet", "maybe");
    cr_assert_null(md_cstate_campaign(cs, PREPAY).list, "a list value other than include or exclude was taken");
}

/* What keeps a customer alone keeps its state from expiring. */
Test(engine, listed_customers_are_kept_for_good) {
    cr_assert_gt(md_cstate_ttl_ms(cs), 0);
    field("pn", "1");
    cr_assert_eq(md_cstate_ttl_ms(cs), 0);
}

/* A model of a customer's two hashes (eight fields of each, told apart by
 * their last character, 0 to 7): applies ops the way apply.lua does, in
 * order. */
typedef struct {
    bool has[2][8];
    long long val[2][8];
} two_hashes;

static void model_apply(two_hashes *h, const md_ops *o) {
    for (size_t i = 0; i < o->n; i++) {
        const char *name = md_ops_field(o, i);
        int f = name[strlen(name) - 1] - '0', space = o->ops[i].kind == MD_OP_OUTBOX_SET;
        long long v = atoll(md_ops_value(o, i));
        switch (o->ops[i].kind) {
        case MD_OP_SET:
        case MD_OP_OUTBOX_SET: h->has[space][f] = true, h->val[space][f] = v; break;
        case MD_OP_DEL: h->has[space][f] = false, h->val[space][f] = 0; break;
        case MD_OP_INCR: h->val[space][f] = (h->has[space][f] ? h->val[space][f] : 0) + v, h->has[space][f] = true; break;
        }
    }
}

/* Commands apply.lua sends for o: one per run of one kind, an INCR each. */
static size_t model_calls(const md_ops *o) {
    size_t calls = 0;
    for (size_t i = 0; i < o->n; i++)
        if (i == 0 || o->ops[i].kind != o->ops[i - 1].kind || o->ops[i].kind == MD_OP_INCR) calls++;
    return calls;
}

Test(engine, compacted_ops_have_the_same_effect_in_fewer_commands) {
    static const char kinds[] = {MD_OP_SET, MD_OP_DEL, MD_OP_INCR, MD_OP_OUTBOX_SET};
    uint64_t r = 88172645463325252ULL; /* xorshift: the same lists every run */
    for (int round = 0; round < 2000; round++) {
        md_ops o;
        md_ops_init(&o);
        bool incrs = round % 2; /* half the lists without an INCR */
        size_t n = 1 + round % 40;
        for (size_t i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            char kind = incrs ? kinds[r % 4] : "SDX"[r % 3];
            /* Names of one letter, of 8 bytes, and longer, sharing their first
             * 8 bytes: the sort compares those as one number, then the rest. */
            static const char *const prefix[] = {"f", "abcdefg", "a_long_field_"};
            char field[24], value[8];
            snprintf(field, sizeof(field), "%s%c", prefix[round % 3], (char)('0' + (r >> 8) % 8));
            snprintf(value, sizeof(value), "%d", (int)((r >> 16) % 100));
            md_ops_add(&o, kind, field, value);
        }
        two_hashes before = {0}, after = {0};
        for (int f = 0; f < 8; f += 3) before.has[0][f] = after.has[0][f] = true, before.val[0][f] = after.val[0][f] = 7;
        model_apply(&before, &o);
        size_t calls = model_calls(&o);
        md_ops_compact(&o);
        model_apply(&after, &o);
        cr_assert(memcmp(&before, &after, sizeof(before)) == 0, "round %d: the compacted list ends elsewhere", round);
        /* (With an INCR among them, a field's ops keep their order at the
         * end, which can cost a command more than the list had.) */
        if (!incrs) cr_assert(model_calls(&o) <= 3 && model_calls(&o) <= calls, "round %d: without INCR, one run per kind (%zu, %zu before)",
                              round, model_calls(&o), calls);
        md_ops_fini(&o);
    }
}

/* md_fmt_i64 writes what snprintf "%lld" writes, at both ends of the range:
 * every integer field and RESP length goes through it. */
Test(engine, integers_are_written_as_snprintf_writes_them) {
    const int64_t vals[] = {0, 1, -1, 9, 10, -10, 99, 100, 1790563956669LL, -1790563956669LL, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char got[24], want[24];
        memset(got, 'x', sizeof(got));
        size_t n = md_fmt_i64(got, vals[i]);
        snprintf(want, sizeof(want), "%lld", (long long)vals[i]);
        cr_assert_str_eq(got, want);
        cr_assert_eq(n, strlen(want));
    }
}

Test(engine, a_hot_customers_batch_compacts_to_two_commands) {
    /* 80 events of one customer: each forgets its oldest id, remembers its
     * own and moves the watermark, as md_cs_add_seen and
     * md_cs_set_watermark write them. */
    md_ops o;
    md_ops_init(&o);
    char field[32];
    for (int e = 0; e < 80; e++) {
        snprintf(field, sizeof(field), "i%016x", e);
        md_ops_add(&o, MD_OP_DEL, field, NULL);
        snprintf(field, sizeof(field), "i%016x", 1000 + e);
        md_ops_add(&o, MD_OP_SET, field, "1");
        snprintf(field, sizeof(field), "%d", 100 + e);
        md_ops_add(&o, MD_OP_SET, "w:payments:0", field);
    }
    cr_assert_eq(model_calls(&o), 160); /* a delete, then a run of two sets, per event */
    md_ops_compact(&o);
    cr_assert_eq(o.n, 161, "80 deletes, 80 ids and the last watermark: %zu", o.n);
    cr_assert_eq(model_calls(&o), 2);
    for (size_t i = 0; i < o.n; i++)
        if (!strcmp(md_ops_field(&o, i), "w:payments:0")) cr_assert_str_eq(md_ops_value(&o, i), "179");
    md_ops_fini(&o);
}

/* day_of_month and days_in_month read the decision's date in the customer's
 * calendar, so a bill-cycle feature can be written: here a tag that is true
 * three days before the statement (profile attribute statement_day). */
static bool three_days_to_statement(int64_t t, const char *profile) {
    pick_customer(false);
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, profile, &ops, err, sizeof(err)), MD_ERR_OK, "%s", err);
    late_payment(t, 500);
    md_jsonw w;
    md_jsonw_init(&w);
    md_engine_write_tag_categories(cfg, cs, &w);
    bool on = strstr(w.buf, "frequent_payer") != NULL;
    md_jsonw_fini(&w);
    return on;
}

Test(engine, the_calendar_builtins_give_a_days_to_the_statement_feature) {
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
    char err[256];
    md_config *c = th_config_with(
        "\"expr\": \"payments_180d >= 5\"",
        "\"expr\": \"profile.statement_day - day_of_month + days_in_month * (day_of_month > profile.statement_day) == 3\"", err,
        sizeof(err));
    cr_assert(c, "%s", err);
    start(c);
    const char *beijing = "{\"statement_day\":\"2\"}", *utc = "{\"statement_day\":\"2\",\"utc_offset\":\"+00:00\"}";
    /* TH_T0 is 2026-03-02 10:00 in Beijing: the statement day itself. */
    cr_assert_not(three_days_to_statement(TH_T0, beijing));
    cr_assert(three_days_to_statement(TH_T0 - 3 * TH_DAY, beijing), "2026-02-27: February has 28 days");
    cr_assert_not(three_days_to_statement(TH_T0 - 2 * TH_DAY, beijing), "2026-02-28: two days");
    /* 2026-02-28 23:30 in UTC is already 1 March in Beijing (8 hours on). */
    const int64_t feb28_2330_utc = TH_T0 - 2 * TH_DAY + 21 * TH_HOUR + 30 * 60000;
    cr_assert(three_days_to_statement(feb28_2330_utc - 24 * TH_HOUR, utc), "27 February in UTC");
    cr_assert_not(three_days_to_statement(feb28_2330_utc - 24 * TH_HOUR, beijing), "28 February in Beijing");
    cr_assert(three_days_to_statement(TH_T0 - 31 * TH_DAY, beijing), "2026-01-30: January has 31 days");
}

Test(engine, calendar_dates_and_month_lengths) {
    int y;
    unsigned m, d;
    md_civil_date(TH_T0, 480, &y, &m, &d);
    cr_assert(y == 2026 && m == 3 && d == 2);
    md_civil_date(TH_T0 - 10 * TH_HOUR - 1, 480, &y, &m, &d); /* 23:59:59.999 the day before */
    cr_assert(y == 2026 && m == 3 && d == 1);
    md_civil_date(TH_T0, -600, &y, &m, &d); /* 16:00 on 1 March at UTC-10 */
    cr_assert(y == 2026 && m == 3 && d == 1);
    cr_assert_eq(md_days_in_month(2026, 2), 28);
    cr_assert_eq(md_days_in_month(2028, 2), 29);
    cr_assert_eq(md_days_in_month(2100, 2), 28);
    cr_assert_eq(md_days_in_month(2000, 2), 29);
    cr_assert_eq(md_days_in_month(2026, 4), 30);
    cr_assert_eq(md_days_in_month(2026, 12), 31);
    cr_assert_eq(md_days_in_month(2026, 13), 0);
}
