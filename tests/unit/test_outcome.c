/* test_outcome.c: outcomes reported by the channels (docs/SPEC.md section 8): parsing
 * and validation, and what each status does to fatigue, blocks, the funnel
 * and the cooldown; plus conversions observed in the event stream. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "momentd/engine.h"
#include "momentd/jsonw.h"
#include "rules.h"

static md_config *cfg;
static md_cstate *cs;
static md_ops ops, cp_ops;
static md_engine_out out;
static md_event_parser *parser;
static char cust[32];
static int seq;
static char trigger[MD_TRIGGER_ID_LEN];
static int64_t fired_at;
static double out_p; /* p_contact of the trigger a test fired */

/* A customer outside both holdout groups, or inside prepay_wallet's. */
static void pick_customer(bool holdout) {
    th_pick_customer(cust, sizeof(cust), "oc", holdout);
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
}

static void setup(void) {
    cfg = th_default_config();
    cs = md_cstate_new(cfg);
    md_ops_init(&ops);
    md_ops_init(&cp_ops);
    md_engine_out_init(&out);
    md_event_limits lim = {65536, 300000, 64, 16};
    parser = md_event_parser_new(&lim);
    seq = 0;
    pick_customer(false);
}
static void teardown(void) {
    md_event_parser_destroy(parser);
    md_engine_out_fini(&out);
    md_ops_fini(&ops);
    md_ops_fini(&cp_ops);
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
}
TestSuite(outcome, .init = setup, .fini = teardown);

static void event(const char *fmt, int64_t ts, double x) {
    char json[512];
    int n = snprintf(json, sizeof(json), fmt, seq++, cust, (long long)ts, x);
    cr_assert(n > 0 && (size_t)n < sizeof(json));
    md_event ev = th_event(json);
    cr_assert_eq(md_engine_process(cfg, cs, NULL, &ev, NULL, ev.ts_ms, &ops, &cp_ops, &out), MD_ERR_OK);
}
#define LATE_PAYMENT                                                                                                         \
    "{\"event_id\":\"e%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":100,\"kind\":\"bill\",\"late\":true," \
    "\"balance_after\":%g}"
#define PREPAY_PAYMENT                                                                                                       \
    "{\"event_id\":\"e%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":%g,\"kind\":\"prepay\",\"balance_after\":900}"
#define COMPLAINT_CALL                                                                                                        \
    "{\"event_id\":\"e%d\",\"type\":\"call\",\"customer_id\":\"%s\",\"ts\":%lld,\"reason\":\"complaint\",\"direction\":\"inbound\"," \
    "\"duration_s\":%g}"

/* Three late payments with a low balance: prepay_wallet's moment, by
 * outbound call on the third (see test_engine.c). fire also remembers the
 * trigger. */
static void late_story(int64_t t) {
    event(LATE_PAYMENT, t - 60 * TH_DAY, 80);
    event(LATE_PAYMENT, t - 30 * TH_DAY, 60);
    event(LATE_PAYMENT, t, 50);
}
static void fire(int64_t t) {
    late_story(t);
    cr_assert_eq(out.n_triggers, 1, "the story fires once");
    snprintf(trigger, sizeof(trigger), "%s", out.triggers[0].id);
    fired_at = t;
}

static md_outcome_applied report(const char *status, int64_t ts, const char *extra) {
    char json[512], key[64];
    snprintf(json, sizeof(json),
             "{\"trigger_id\":\"%s\",\"customer_id\":\"%s\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\","
             "\"status\":\"%s\",\"ts\":%lld%s}",
             trigger, cust, status, (long long)ts, extra ? extra : "");
    snprintf(key, sizeof(key), "%s", cust);
    md_outcome o;
    md_parse_result res;
    cr_assert_eq(md_outcome_parse(parser, json, strlen(json), key, strlen(key), ts, &o, &res), MD_ERR_OK, "%s: %s", json,
                 res.detail);
    md_outcome_applied a;
    cr_assert_eq(md_engine_outcome(cfg, cs, NULL, &o, NULL, ts, &ops, &cp_ops, &a, &out), MD_ERR_OK);
    return a;
}

/* Sum of the pending funnel increments for field ("outbound_call:no_answer"),
 * or for every field that starts with it. */
static int64_t funnel_sum(const char *field, bool prefix) {
    int64_t sum = 0;
    for (size_t i = 0; i < md_cstate_incr_count(cs); i++) {
        const char *name, *camp, *day, *f;
        int64_t d;
        md_cstate_incr(cs, i, &name, &camp, &day, &f, &d);
        if (prefix ? strncmp(f, field, strlen(field)) == 0 : strcmp(f, field) == 0) sum += d;
    }
    return sum;
}
static int64_t funnel(const char *field) { return funnel_sum(field, false); }
static int64_t funnel_prefixed(const char *prefix) { return funnel_sum(prefix, true); }

/* The state as Redis would hold it after the ops recorded so far: the
 * last write of each field wins, a delete removes it. */
static void fold_into(md_cstate *fresh) {
    md_cstate_reset(fresh);
    md_cstate_set_customer(fresh, cust);
    for (size_t i = 0; i < ops.n; i++) {
        const char *f = md_ops_field(&ops, i), *v = md_ops_value(&ops, i);
        bool later = false;
        for (size_t j = i + 1; j < ops.n && !later; j++)
            later = strcmp(md_ops_field(&ops, j), f) == 0 && (ops.ops[j].kind == MD_OP_OUTBOX_SET) == (ops.ops[i].kind == MD_OP_OUTBOX_SET);
        if (later) continue;
        if (ops.ops[i].kind == MD_OP_SET) md_cstate_load_field(fresh, f, strlen(f), v, strlen(v));
        else if (ops.ops[i].kind == MD_OP_OUTBOX_SET && f[0] == '+') md_cstate_load_outbox(fresh, f, strlen(f), v, strlen(v));
    }
}

static md_cstate *folded_state(void) {
    md_cstate *fresh = md_cstate_new(cfg);
    fold_into(fresh);
    return fresh;
}

/* ---- parsing ---- */

static md_reject parse_reason(const char *json, const char *key) {
    md_outcome o;
    md_parse_result res;
    md_outcome_parse(parser, json, strlen(json), key, key ? strlen(key) : 0, TH_T0, &o, &res);
    return res.reason;
}

Test(outcome, parses_every_status_and_the_optional_duration) {
    static const char *const statuses[] = {"sent", "delivered", "reached", "opened", "converted", "declined", "no_answer", "complaint", "opt_out"};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char json[400];
        snprintf(json, sizeof(json),
                 "{\"trigger_id\":\"m1\",\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"sms\",\"status\":\"%s\","
                 "\"ts\":\"2026-03-02T10:00:00+08:00\",\"extra\":{\"ignored\":[1]}}",
                 statuses[i]);
        md_outcome o;
        md_parse_result res;
        cr_assert_eq(md_outcome_parse(parser, json, strlen(json), "c1", 2, TH_T0, &o, &res), MD_ERR_OK, "%s", res.detail);
        cr_assert_str_eq(md_outcome_status_name(o.status), statuses[i]);
        cr_assert_eq(o.ts_ms, TH_T0);
        cr_assert_not(o.has_duration);
    }
    const char *with = "{\"trigger_id\":\"m1\",\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"outbound_call\","
                       "\"status\":\"reached\",\"ts\":1772416800000,\"duration_s\":3}";
    md_outcome o;
    md_parse_result res;
    cr_assert_eq(md_outcome_parse(parser, with, strlen(with), "c1", 2, TH_T0, &o, &res), MD_ERR_OK, "%s", res.detail);
    cr_assert(o.has_duration);
    cr_assert_eq(o.duration_s, 3);
}

Test(outcome, rejections_each_reason) {
#define BASE(status, extra)                                                                                                    \
    "{\"trigger_id\":\"m1\",\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"sms\",\"status\":\"" status "\",\"ts\":1772416800000" extra "}"
    cr_assert_eq(parse_reason(BASE("answered", ""), "c1"), MD_REJECT_UNKNOWN_STATUS);
    cr_assert_eq(parse_reason(BASE("a-very-long-status-indeed", ""), "c1"), MD_REJECT_UNKNOWN_STATUS);
    cr_assert_eq(parse_reason(BASE("sent", ""), "someone-else"), MD_REJECT_KEY_MISMATCH);
    cr_assert_eq(parse_reason(BASE("sent", ",\"duration_s\":-1"), "c1"), MD_REJECT_BAD_NUMBER);
    cr_assert_eq(parse_reason(BASE("sent", ",\"duration_s\":\"3\""), "c1"), MD_REJECT_WRONG_TYPE);
    cr_assert_eq(parse_reason("{\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"sms\",\"status\":\"sent\",\"ts\":1772416800000}", "c1"),
                 MD_REJECT_MISSING_FIELD);
    cr_assert_eq(parse_reason("{\"trigger_id\":\"\",\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"sms\",\"status\":\"sent\",\"ts\":1772416800000}", "c1"),
                 MD_REJECT_EMPTY_STRING);
    cr_assert_eq(parse_reason("{\"trigger_id\":\"m1\",\"customer_id\":\"c1\",\"campaign\":\"p\",\"channel\":\"sms\",\"status\":\"sent\",\"ts\":4102444800000}", "c1"),
                 MD_REJECT_FUTURE_TIMESTAMP);
    cr_assert_eq(parse_reason("[\"sent\"]", "c1"), MD_REJECT_NOT_OBJECT);
    cr_assert_eq(parse_reason("{\"trigger_id\":", "c1"), MD_REJECT_NOT_JSON);
    cr_assert_str_eq(md_reject_code(MD_REJECT_UNKNOWN_STATUS), "unknown_status");
#undef BASE
}

/* ---- effects ---- */

/* Fatigue: weighed by outcome, decaying, lowering p in both modes. */
Test(outcome, unanswered_and_declined_add_fatigue_that_decays_and_converted_resets_it) {
    fire(TH_T0);
    cr_assert_eq(md_cstate_fatigue(cs, 0, TH_T0), 0);
    double fresh_p = out.eval[0].p_contact;
    cr_assert_float_eq(fresh_p, out.eval[0].score, 1e-12, "no fatigue: p is the score");
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(report("declined", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    const md_cfg_outcomes *oc = &cfg->outcomes;
    double half = (double)oc->fatigue_half_life_ms;
    double expect = oc->fatigue_no_answer * exp2(-(double)TH_HOUR / half) + oc->fatigue_declined;
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, TH_T0 + 2 * TH_HOUR), expect, 1e-9, "no_answer 0.5, decayed an hour, then declined 1");
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, TH_T0 + 2 * TH_HOUR + oc->fatigue_half_life_ms), expect / 2, 1e-9, "halved a half-life later");
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + TH_DAY, &out);
    double f = md_cstate_fatigue(cs, 0, TH_T0 + TH_DAY);
    cr_assert_float_eq(out.eval[0].fatigue, f, 1e-12);
    cr_assert_float_eq(out.eval[0].p_contact, out.eval[0].score * pow(1 - oc->fatigue_penalty, f), 1e-12, "fatigue lowers p");
    const md_cfg_campaign *cc = &cfg->campaigns[0];
    cr_assert_float_eq(out.eval[0].required_gap_days,
                       md_cooldown_required_days(&cc->cooldown, out.eval[0].p_contact, cc->threshold, cc->conversion_value, cc->unwanted_cost), 1e-9);
    cr_assert_eq(report("converted", TH_T0 + 3 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(md_cstate_fatigue(cs, 0, TH_T0 + 3 * TH_HOUR), 0, "a positive response resets fatigue");
    md_cstate *fresh = folded_state();
    cr_assert_eq(md_cstate_fatigue(fresh, 0, TH_T0 + 3 * TH_HOUR), 0, "the reset is stored");
    md_cstate_destroy(fresh);
}

Test(outcome, fatigue_is_stored_with_its_time_and_older_counts_still_read) {
    fire(TH_T0);
    cr_assert_eq(report("declined", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    int64_t later = TH_T0 + TH_HOUR + cfg->outcomes.fatigue_half_life_ms;
    md_cstate *fresh = folded_state();
    cr_assert_float_eq(md_cstate_fatigue(fresh, 0, later), md_cstate_fatigue(cs, 0, later), 1e-9);
    cr_assert_float_eq(md_cstate_fatigue(fresh, 0, later), cfg->outcomes.fatigue_declined / 2, 1e-9);
    md_cstate_destroy(fresh);
    /* A state written before fatigue decayed: a plain count, read as units. */
    md_cstate_load_field(cs, "f:prepay_wallet", 15, "2", 1);
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, later), 2, 1e-12);
}

/* After no_answer the campaign need not wait for its score to fall below
 * rearm_below: it may fire again once the gap has passed. */
Test(outcome, no_answer_rearms_the_campaign) {
    fire(TH_T0);
    cr_assert(!md_cstate_campaign(cs, 0).armed, "disarmed by its trigger");
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert(md_cstate_campaign(cs, 0).armed, "re-armed by no_answer");
    pick_customer(false);
    fire(TH_T0);
    cr_assert_eq(report("declined", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert(!md_cstate_campaign(cs, 0).armed, "a declined offer does not re-arm");
}

/* not_called and expired: the channel never made the contact; it counts for
 * neither the cooldown nor the caps, and the contact before it stands again. */
Test(outcome, not_called_and_expired_release_the_contact) {
    const char *statuses[] = {"not_called", "expired"};
    for (int k = 0; k < 2; k++) {
        pick_customer(false);
        int64_t before = TH_T0 - 50 * TH_DAY;
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)before);
        md_cstate_load_field(cs, "l:prepay_wallet", 15, v, strlen(v));
        fire(TH_T0);
        cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, TH_T0);
        size_t contacts = 0;
        md_cstate_view view;
        md_cstate_view_of(cs, &view);
        contacts = view.n_contacts;
        cr_assert_eq(report(statuses[k], TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
        cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, before, "%s: the contact before it is the last again", statuses[k]);
        cr_assert(md_cstate_campaign(cs, 0).armed, "%s: re-armed", statuses[k]);
        cr_assert_eq(md_cstate_due(cs), TH_T0 + TH_HOUR, "%s: the schedule decides again at once", statuses[k]);
        md_cstate_view_of(cs, &view);
        cr_assert_eq(view.n_contacts, contacts - 1, "%s: its cap entry is gone", statuses[k]);
        cr_assert_eq(funnel(k == 0 ? "outbound_call:not_called" : "outbound_call:expired"), 1);
        md_cstate *fresh = folded_state();
        cr_assert_eq(md_cstate_campaign(fresh, 0).last_contact, before, "%s: stored", statuses[k]);
        md_cstate_view_of(fresh, &view);
        cr_assert_eq(view.n_contacts, contacts - 1);
        md_cstate_destroy(fresh);
        md_ops_clear(&ops);
    }
}

Test(outcome, a_short_reached_call_is_a_hang_up) {
    fire(TH_T0);
    cr_assert_eq(report("reached", TH_T0 + TH_HOUR, ",\"duration_s\":3"), MD_OUTCOME_APPLIED);
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, TH_T0 + TH_HOUR), cfg->outcomes.fatigue_hangup, 1e-9, "3 s is under outcomes.hangup_within (5 s)");
    cr_assert_eq(funnel("outbound_call:hangup"), 1);
    pick_customer(false);
    fire(TH_T0);
    cr_assert_eq(report("reached", TH_T0 + TH_HOUR, ",\"duration_s\":95"), MD_OUTCOME_APPLIED);
    cr_assert_eq(md_cstate_fatigue(cs, 0, TH_T0 + TH_HOUR), 0, "a real conversation is no hang-up");
}

Test(outcome, complaint_blocks_for_the_configured_period) {
    fire(TH_T0);
    cr_assert_eq(report("complaint", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + 100 * TH_DAY, &out);
    cr_assert_eq(out.eval[1].suppressed, MD_SUPPRESS_COMPLAINT, "every campaign, not only the one complained about");
    cr_assert_eq(out.eval[1].eligible_again_ms, TH_T0 + TH_HOUR + cfg->contact.complaint_block_ms);
}

Test(outcome, opt_out_blocks_every_campaign_for_good) {
    fire(TH_T0);
    cr_assert_eq(report("opt_out", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + 3000 * TH_DAY, &out);
    for (size_t c = 0; c < out.n_campaigns; c++) {
        cr_assert_eq(out.eval[c].suppressed, MD_SUPPRESS_OPT_OUT);
        cr_assert_eq(out.eval[c].eligible_again_ms, INT64_MAX);
    }
}

Test(outcome, the_same_outcome_twice_counts_once) {
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(report("no_answer", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_DUPLICATE);
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, TH_T0 + TH_HOUR), cfg->outcomes.fatigue_no_answer, 1e-9);
    cr_assert_eq(funnel("outbound_call:no_answer"), 1);
    cr_assert_eq(funnel("outbound_call:triggered"), 1);
}

Test(outcome, unknown_or_mismatched_triggers_are_ignored) {
    fire(TH_T0);
    char real[MD_TRIGGER_ID_LEN];
    snprintf(real, sizeof(real), "%s", trigger);
    snprintf(trigger, sizeof(trigger), "m0000000000000000000000000000dead");
    cr_assert_eq(report("complaint", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_UNKNOWN_TRIGGER);
    cr_assert_eq(md_cstate_fatigue(cs, 0, TH_T0 + TH_HOUR), 0);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + TH_DAY, &out);
    cr_assert_neq(out.eval[1].suppressed, MD_SUPPRESS_COMPLAINT, "an unknown trigger's complaint is not trusted");
    /* The real id, reported for another channel than it was sent on. */
    snprintf(trigger, sizeof(trigger), "%s", real);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"trigger_id\":\"%s\",\"customer_id\":\"%s\",\"campaign\":\"prepay_wallet\",\"channel\":\"sms\",\"status\":\"opt_out\",\"ts\":%lld}",
             trigger, cust, (long long)(TH_T0 + TH_HOUR));
    md_outcome o;
    md_parse_result res;
    cr_assert_eq(md_outcome_parse(parser, json, strlen(json), cust, strlen(cust), TH_T0 + TH_HOUR, &o, &res), MD_ERR_OK);
    md_outcome_applied a;
    cr_assert_eq(md_engine_outcome(cfg, cs, NULL, &o, NULL, TH_T0, &ops, &cp_ops, &a, &out), MD_ERR_OK);
    cr_assert_eq(a, MD_OUTCOME_UNKNOWN_TRIGGER);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + TH_DAY, &out);
    cr_assert_neq(out.eval[1].suppressed, MD_SUPPRESS_OPT_OUT);
}

/* Regression: an outcome for a trigger momentd never emitted recorded its
 * offset watermark before the trigger was checked, so 1,000 bogus outcomes
 * made 1,000 state hashes living a year. Now it records nothing at all. */
Test(outcome, an_unknown_trigger_records_nothing_not_even_a_watermark) {
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, "never-seen");
    md_ops_clear(&ops);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"trigger_id\":\"m0000000000000000000000000000dead\",\"customer_id\":\"never-seen\",\"campaign\":\"prepay_wallet\","
             "\"channel\":\"outbound_call\",\"status\":\"complaint\",\"ts\":%lld}",
             (long long)TH_T0);
    md_outcome o;
    md_parse_result res;
    cr_assert_eq(md_outcome_parse(parser, json, strlen(json), "never-seen", 10, TH_T0, &o, &res), MD_ERR_OK, "%s", res.detail);
    md_source src = {"moment-outcomes", 0, 41};
    md_outcome_applied a;
    cr_assert_eq(md_engine_outcome(cfg, cs, NULL, &o, &src, TH_T0, &ops, &cp_ops, &a, &out), MD_ERR_OK);
    cr_assert_eq(a, MD_OUTCOME_UNKNOWN_TRIGGER);
    cr_assert_eq(ops.n, 0, "%zu field writes for an outcome that must change nothing (first: %s)", ops.n,
                 ops.n ? md_ops_field(&ops, 0) : "");
}

Test(outcome, outcomes_for_a_holdout_decision_are_not_trusted) {
    pick_customer(true);
    fire(TH_T0);
    cr_assert(out.triggers[0].holdout);
    cr_assert_eq(funnel("holdout:triggered"), 1);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_UNKNOWN_TRIGGER, "a holdout customer is never contacted");
}

Test(outcome, conversions_in_the_stream_count_once_for_treated_and_holdout_alike) {
    for (int holdout = 0; holdout <= 1; holdout++) {
        pick_customer(holdout);
        fire(TH_T0);
        const char *group = holdout ? "holdout" : "outbound_call";
        char conv[64], amount[64];
        snprintf(conv, sizeof(conv), "%s:conversions", group);
        snprintf(amount, sizeof(amount), "%s:amount_fen", group);
        event(PREPAY_PAYMENT, TH_T0 + 5 * TH_DAY, 500);
        cr_assert_eq(out.n_conversions, 1);
        event(PREPAY_PAYMENT, TH_T0 + 6 * TH_DAY, 300);
        cr_assert_eq(out.n_conversions, 0, "one conversion per trigger");
        cr_assert_eq(funnel(conv), 1, "%s", group);
        cr_assert_eq(funnel(amount), 50000, "500 yuan in fen");
    }
    /* Outside the 30-day attribution window nothing is attributed. */
    pick_customer(false);
    fire(TH_T0);
    event(PREPAY_PAYMENT, TH_T0 + 31 * TH_DAY, 500);
    cr_assert_eq(out.n_conversions, 0);
}

Test(outcome, a_complaint_call_tires_the_campaigns_that_called) {
    fire(TH_T0);
    event(COMPLAINT_CALL, TH_T0 + TH_DAY, 300);
    cr_assert_float_eq(md_cstate_fatigue(cs, 0, TH_T0 + TH_DAY), cfg->outcomes.fatigue_complaint, 1e-9, "prepay_wallet called a day before");
    cr_assert_eq(md_cstate_fatigue(cs, 1, TH_T0 + TH_DAY), 0, "bill_instalment never called");
}

Test(outcome, trigger_records_and_increments_survive_a_reload) {
    fire(TH_T0);
    report("no_answer", TH_T0 + TH_HOUR, NULL);
    md_cstate *fresh = folded_state();
    cr_assert_eq(md_cstate_incr_count(fresh), md_cstate_incr_count(cs));
    md_cstate *keep = cs;
    cs = fresh;
    cr_assert_eq(report("no_answer", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_DUPLICATE, "the status bits came back");
    cr_assert_eq(report("opened", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cs = keep;
    md_cstate_destroy(fresh);
}

/* ---- policy arms ---- */

enum { INSTALMENT = 1 };

Test(outcome, policy_arms_split_customers_stably_and_near_their_shares) {
    int n[2] = {0, 0};
    for (int i = 0; i < 20000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "arm-%d", i);
        int a = md_policy_arm(cfg, INSTALMENT, id);
        cr_assert(a == 0 || a == 1);
        cr_assert_eq(md_policy_arm(cfg, INSTALMENT, id), a, "stable");
        n[a]++;
    }
    cr_assert(n[0] > 9600 && n[0] < 10400, "50%% share: %d of 20000", n[0]);
    cr_assert_eq(md_policy_arm(cfg, 0, "arm-1"), -1, "prepay_wallet has no arms");
}

/* Five instalment-page views and an instalment call fire bill_instalment
 * for a revolver (see the model's notes). Returns the trigger's payload. */
static const char *fire_instalment(int want_arm) {
    for (int i = 0;; i++) {
        snprintf(cust, sizeof(cust), "arm-%d", i);
        if (md_policy_arm(cfg, INSTALMENT, cust) == want_arm && md_holdout_bucket(cust, "bill_instalment") >= 1000 &&
            md_holdout_bucket(cust, "prepay_wallet") >= 500)
            break;
    }
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    char err[128];
    cr_assert_eq(md_cstate_set_profile(cs, "{\"segment\":\"revolver\"}", &ops, err, sizeof(err)), MD_ERR_OK);
    for (int k = 0; k < 5; k++)
        event("{\"event_id\":\"e%d\",\"type\":\"app_login\",\"customer_id\":\"%s\",\"ts\":%lld,\"pages\":[\"instalment_product\"],\"session_s\":%g}",
              TH_T0 + k * TH_HOUR, 60);
    event("{\"event_id\":\"e%d\",\"type\":\"call\",\"customer_id\":\"%s\",\"ts\":%lld,\"reason\":\"instalment_inquiry\",\"direction\":\"inbound\",\"duration_s\":%g}",
          TH_T0 + 6 * TH_HOUR, 200);
    cr_assert_eq(out.n_triggers, 1, "bill_instalment fires (score %.3f)", out.eval[INSTALMENT].score);
    cr_assert_eq(out.triggers[0].campaign, INSTALMENT);
    return out.triggers[0].payload;
}

/* After fire_instalment: the peak goes on (ten more views the next day);
 * the gap the customer's arm then requires. */
static double peak_gap_after(void) {
    for (int k = 0; k < 10; k++)
        event("{\"event_id\":\"e%d\",\"type\":\"app_login\",\"customer_id\":\"%s\",\"ts\":%lld,\"pages\":[\"instalment_product\"],\"session_s\":%g}",
              TH_T0 + TH_DAY + k * TH_HOUR, 60);
    md_engine_evaluate(cfg, cs, NULL, TH_T0 + TH_DAY + 12 * TH_HOUR, &out);
    const md_campaign_eval *e = &out.eval[INSTALMENT];
    const md_cfg_campaign *cc = &cfg->campaigns[INSTALMENT];
    const md_cfg_cooldown *cd = e->arm >= 0 ? &cc->arms[e->arm].cooldown : &cc->cooldown;
    cr_assert_float_eq(e->required_gap_days, md_cooldown_required_days(cd, e->p_contact, cc->threshold, cc->conversion_value, cc->unwanted_cost),
                       1e-9);
    return e->required_gap_days;
}

Test(outcome, each_arm_contacts_under_its_own_policy_and_is_counted_apart) {
    const char *p = fire_instalment(1);
    cr_assert(strstr(p, "\"mode\":\"fixed\",\"arm\":\"fixed45\""), "%s", p);
    cr_assert(strstr(p, "\"required_gap_days\":45,"), "the fixed arm waits 45 days whatever the score: %s", p);
    cr_assert_eq(funnel("arm.fixed45:triggered"), 1);
    cr_assert_eq(funnel("arm.adaptive:triggered"), 0);
    cr_assert_eq(funnel("outbound_call:triggered"), 1, "the channel funnel counts it too");
    double fixed_gap = peak_gap_after();

    p = fire_instalment(0);
    cr_assert(strstr(p, "\"mode\":\"adaptive\",\"arm\":\"adaptive\""), "%s", p);
    cr_assert_eq(funnel("arm.adaptive:triggered"), 1);
    double adaptive_gap = peak_gap_after();
    cr_assert_float_eq(fixed_gap, 45, 1e-9, "the fixed arm: 45 days whatever p");
    cr_assert_lt(adaptive_gap, 40, "the adaptive arm at a peak: %.1f days", adaptive_gap);
}

/* ---- follow-ups ---- */

/* prepay_wallet's two default follow-ups with shorter gaps: in-app 2 h after
 * an unanswered call, SMS 10 minutes after a connected one; daily_cap is the
 * customer's contacts per rolling 24 h (the default policy allows 1, which
 * leaves no room for a follow-up the same day). */
/* The suite's configuration with (from, to) text edits, a fresh state and
 * a fresh customer outside the holdout groups. */
static void use_config(const char *const *pairs, size_t n_pairs) {
    char err[512];
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
    cs = NULL; /* teardown must not free them again if the load fails */
    cfg = NULL;
    cfg = th_config_edit(pairs, n_pairs, err, sizeof(err));
    cr_assert(cfg, "%s", err);
    cs = md_cstate_new(cfg);
    md_ops_clear(&ops);
    pick_customer(false);
}

static void with_follow_ups_cap(int daily_cap) {
    char cap[64];
    snprintf(cap, sizeof(cap), "{\"max\": %d, \"per\": \"24h\", \"scope\": \"customer\"}", daily_cap);
    const char *pairs[] = {"{\"max\": 1, \"per\": \"24h\", \"scope\": \"customer\"}", cap,
                           "\"channel\": \"in_app\", \"gap\": \"24h\"}", "\"channel\": \"in_app\", \"gap\": \"2h\"}",
                           "\"channel\": \"sms\", \"gap\": \"24h\"}", "\"channel\": \"sms\", \"gap\": \"10m\"}"};
    use_config(pairs, 3);
}
static void with_follow_ups(void) { with_follow_ups_cap(2); }

Test(outcome, the_daily_contact_cap_still_holds_for_follow_ups) {
    with_follow_ups_cap(1);
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 0, "1 contact per rolling 24 h: the call was it");
    cr_assert_eq(out.follow_up_suppressed, MD_SUPPRESS_CAP_CUSTOMER);
}

static bool has(const char *payload, const char *needle) { return strstr(payload, needle) != NULL; }

Test(outcome, an_unanswered_call_is_followed_in_app_after_the_gap) {
    with_follow_ups();
    fire(TH_T0); /* 10:00 Beijing: daytime */
    char orig[MD_TRIGGER_ID_LEN];
    snprintf(orig, sizeof(orig), "%s", trigger);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 1, "one follow-up");
    const md_trigger *t = &out.triggers[0];
    cr_assert_str_eq(t->topic, "moments.in_app");
    char want[128];
    snprintf(want, sizeof(want), "\"follow_up_of\":\"%s\"", orig);
    cr_assert(has(t->payload, want), "%s", t->payload);
    char nb[32];
    md_format_time(TH_T0 + 3 * TH_HOUR, nb);
    snprintf(want, sizeof(want), "\"not_before\":\"%s\"", nb);
    cr_assert(has(t->payload, want), "not_before is the outcome plus 2 h: %s", t->payload);
    cr_assert_eq(funnel("in_app:follow_ups"), 1);
    cr_assert_eq(funnel("in_app:triggered"), 1);
    /* The same outcome again is a duplicate and follows up nothing more. */
    cr_assert_eq(report("no_answer", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_DUPLICATE);
    cr_assert_eq(out.n_triggers, 0);
}

Test(outcome, a_connected_call_is_followed_by_sms_and_a_hang_up_by_nothing) {
    with_follow_ups();
    fire(TH_T0);
    cr_assert_eq(report("reached", TH_T0 + TH_HOUR, ",\"duration_s\":2"), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 0, "a hang-up is a no");
    pick_customer(false);
    fire(TH_T0);
    cr_assert_eq(report("reached", TH_T0 + TH_HOUR, ",\"duration_s\":180"), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 1);
    cr_assert_str_eq(out.triggers[0].topic, "moments.sms");
    cr_assert_eq(funnel("sms:follow_ups"), 1);
}

Test(outcome, a_follow_up_waits_out_the_quiet_hours) {
    with_follow_ups();
    fire(TH_T0);
    /* Reached at 20:55 Beijing; +10 min = 21:05, inside SMS quiet hours (21:00-08:00). */
    cr_assert_eq(report("reached", TH_T0 + 10 * TH_HOUR + 55 * 60000, ",\"duration_s\":180"), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 1);
    char nb[32], want[64];
    md_format_time(TH_T0 + 22 * TH_HOUR, nb); /* 08:00 the next morning */
    snprintf(want, sizeof(want), "\"not_before\":\"%s\"", nb);
    cr_assert(has(out.triggers[0].payload, want), "%s", out.triggers[0].payload);
}

Test(outcome, caps_and_blocks_still_stop_a_follow_up) {
    with_follow_ups();
    fire(TH_T0);
    /* Two SMS in the last month: the SMS cap (2 per 30 days) is full, while
     * the customer-wide caps (4 per 30 days, 2 per 24 h here) still have room. */
    for (int k = 1; k <= 2; k++) {
        char f[64];
        snprintf(f, sizeof(f), "k:%lld:prepay_wallet", (long long)(TH_T0 - 5 * k * TH_DAY));
        md_cstate_load_field(cs, f, strlen(f), "sms", 3);
    }
    cr_assert_eq(report("reached", TH_T0 + TH_HOUR, ",\"duration_s\":180"), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.follow_up_suppressed, MD_SUPPRESS_CAP_CHANNEL);
    /* An opt-out before the outcome blocks it too. */
    pick_customer(false);
    fire(TH_T0);
    md_cstate_load_field(cs, "oo", 2, "1", 1);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.follow_up_suppressed, MD_SUPPRESS_OPT_OUT);
}

Test(outcome, nul_characters_are_rejected) {
    cr_assert_eq(parse_reason("{\"trigger_id\":\"\\u0000t\",\"customer_id\":\"c1\",\"campaign\":\"prepay_wallet\",\"channel\":\"sms\","
                              "\"status\":\"sent\",\"ts\":1772416800000}",
                              "c1"),
                 MD_REJECT_BAD_VALUE);
}

Test(outcome, nul_in_status_is_rejected_not_read_uninitialised) {
    cr_assert_eq(parse_reason("{\"trigger_id\":\"t\",\"customer_id\":\"c1\",\"campaign\":\"prepay_wallet\",\"channel\":\"sms\","
                              "\"status\":\"se\\u0000nt\",\"ts\":1772416800000}",
                              "c1"),
                 MD_REJECT_BAD_VALUE);
}

/* ---- decision records: what momentd fit learns from ---- */

/* The suite's configuration with a learning section, and a fresh customer. */
static void with_learning(const char *learning) {
    char to[256];
    snprintf(to, sizeof(to), "\"learning\": %s, \"contact_policy\": {", learning);
    const char *pairs[] = {"\"contact_policy\": {", to};
    use_config(pairs, 1);
}

/* Field "Q<campaign code><t in base 36>": a decision record's name. */
static void decision_field_of(const char *campaign, int64_t t, char f[32]) {
    char tmp[16];
    size_t n = 0, len = MD_STATE_CODE_LEN + 1;
    f[0] = 'Q';
    md_state_code(campaign, f + 1);
    do tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[t % 36];
    while (t /= 36);
    while (n) f[len++] = tmp[--n];
    f[len] = '\0';
}

/* The decision record of campaign `campaign` made at t, as the ops left it
 * (the last write wins); false when there is none or it was deleted. */
static bool decision_at(const char *campaign, int64_t t, md_decision *d) {
    char f[32];
    decision_field_of(campaign, t, f);
    const char *v = NULL;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), f) == 0) v = ops.ops[i].kind == MD_OP_SET ? md_ops_value(&ops, i) : NULL;
    return v && md_decision_parse(f, strlen(f), v, strlen(v), d);
}

Test(outcome, a_trigger_records_the_models_inputs_and_a_conversion_labels_it) {
    md_cstate_load_field(cs, "p:customer_type", 15, "resident", 8);
    fire(TH_T0);
    md_decision d;
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    cr_assert_not(d.converted);
    char code[MD_STATE_CODE_LEN + 1];
    md_state_code("prepay_wallet", code);
    cr_assert_str_eq(d.code, code, "named by its code");
    cr_assert_str_eq(d.campaign, "", "not by its name");
    /* The model's 8 features before cap and transform, then its 2 static
     * attributes as levels, then the campaign's fatigue (none yet). */
    const md_cfg_model *m = &cfg->campaigns[0].model;
    cr_assert_eq(d.n_values, m->n_features + m->n_statics + 1);
    cr_assert_float_eq(d.values[m->n_features + m->n_statics], 0, 1e-12);
    cr_assert_str_eq(m->features[0].name, "late_payments_180d");
    cr_assert_float_eq(d.values[0], 3, 1e-9, "three late payments, raw");
    cr_assert_str_eq(m->features[1].name, "low_balance");
    cr_assert_float_eq(d.values[1], 1, 1e-9);
    cr_assert_str_eq(m->statics[0].attribute, "customer_type");
    cr_assert_str_eq(m->statics[0].offsets[0].key, "resident");
    cr_assert_float_eq(d.values[m->n_features], 1, 1e-9, "resident is customer_type's first level");
    cr_assert_float_eq(d.values[m->n_features + 1], 0, 1e-9, "no source_channel: no level");
    cr_assert_eq(d.schema, md_model_schema(&cfg->campaigns[0].model));
    /* A conversion 5 days later labels it, and the label is in Redis. */
    event(PREPAY_PAYMENT, TH_T0 + 5 * TH_DAY, 500);
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert(d.converted);
    /* Formatting (a trace: by the campaign's name) gives back what was parsed. */
    char f[96], v[1024];
    md_decision back;
    snprintf(d.campaign, sizeof(d.campaign), "prepay_wallet");
    md_decision_format(&d, f, sizeof(f), v, sizeof(v));
    cr_assert(strncmp(f, "q:prepay_wallet:", 16) == 0, "%s", f);
    cr_assert(md_decision_parse(f, strlen(f), v, strlen(v), &back));
    cr_assert_str_eq(back.campaign, "prepay_wallet");
    cr_assert_str_eq(back.code, code);
    cr_assert_eq(back.n_values, d.n_values);
    cr_assert_eq(back.ts_ms, d.ts_ms);
    cr_assert(back.converted);
}

Test(outcome, a_conversion_outside_the_window_labels_nothing_and_holdout_is_recorded_as_such) {
    pick_customer(true); /* in prepay_wallet's holdout */
    fire(TH_T0);
    md_decision d;
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_eq(d.kind, MD_DECISION_HOLDOUT);
    event(PREPAY_PAYMENT, TH_T0 + 31 * TH_DAY, 500);
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_not(d.converted, "31 days after: outside the 30-day attribution");
}

Test(outcome, a_contact_the_channel_never_made_is_recorded_as_released) {
    fire(TH_T0);
    cr_assert_eq(report("not_called", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    md_decision d;
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_eq(d.kind, MD_DECISION_RELEASED);
}

Test(outcome, decision_records_are_bounded_per_campaign_and_age_out) {
    with_learning("{\"max_per_campaign\": 2, \"keep\": \"60d\"}");
    /* Three triggers (each after a release, so the campaign re-arms and no cooldown holds). */
    for (int k = 0; k < 3; k++) {
        int64_t t = TH_T0 + k * 2 * TH_DAY;
        if (k == 0) fire(t);
        else {
            event(LATE_PAYMENT, t, 50);
            cr_assert_eq(out.n_triggers, 1, "trigger %d", k);
            snprintf(trigger, sizeof(trigger), "%s", out.triggers[0].id);
        }
        cr_assert_eq(report("not_called", t + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    }
    md_decision d;
    cr_assert_not(decision_at("prepay_wallet", TH_T0, &d), "the oldest went for the third");
    cr_assert(decision_at("prepay_wallet", TH_T0 + 2 * TH_DAY, &d));
    cr_assert(decision_at("prepay_wallet", TH_T0 + 4 * TH_DAY, &d));
    /* 60 days on, an event evicts them. */
    event(PREPAY_PAYMENT, TH_T0 + 65 * TH_DAY, 10);
    cr_assert_not(decision_at("prepay_wallet", TH_T0 + 2 * TH_DAY, &d));
    cr_assert_not(decision_at("prepay_wallet", TH_T0 + 4 * TH_DAY, &d));
}

/* The bound keeps records whatever their outcome: no number of decisions
 * of no contact (sampled, released) after a contact pushes its record out,
 * so a customer who keeps being decided on without buying keeps the record
 * of the contact as one who bought and went quiet does; and at the bound a
 * new record of no contact is not kept, so which of them are kept depends
 * only on what came before. */
Test(outcome, a_full_bound_keeps_a_contacts_record_and_no_new_record_of_no_contact) {
    with_learning("{\"max_per_campaign\": 2, \"sample_pct\": 100, \"sample_every\": \"1h\", \"keep\": \"60d\"}");
    fire(TH_T0); /* contacted, and left so: the channel reports nothing */
    md_decision d;
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    /* The cooldown holds the next ones back: each a sampled decision. */
    for (int k = 1; k <= 4; k++) {
        event(LATE_PAYMENT, TH_T0 + k * 2 * TH_HOUR, 50);
        cr_assert_eq(out.n_triggers, 0);
    }
    cr_assert(decision_at("prepay_wallet", TH_T0, &d), "the contact's record stays");
    cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    /* The story's second payment, 30 days before, was sampled: with the
     * contact it fills the bound, and stays. */
    cr_assert(decision_at("prepay_wallet", TH_T0 - 30 * TH_DAY, &d), "the earlier sampled decision stays");
    cr_assert_eq(d.kind, MD_DECISION_SAMPLED);
    for (int k = 1; k <= 4; k++) cr_assert_not(decision_at("prepay_wallet", TH_T0 + k * 2 * TH_HOUR, &d), "sampled decision %d: no room", k);
}

/* A contact's record at a full bound takes the place of the oldest record
 * of no contact, not of an older contact's. */
Test(outcome, a_contacts_record_takes_the_place_of_the_oldest_record_of_no_contact) {
    with_learning("{\"max_per_campaign\": 2, \"sample_pct\": 0, \"keep\": \"400d\"}");
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED); /* fires again after the peak gap, 20 days */
    int64_t contacts[2] = {0, 0};
    int n = 0;
    for (int day = 5; day <= 40 && n < 2; day += 5) {
        event(LATE_PAYMENT, TH_T0 + day * TH_DAY, 50);
        if (out.n_triggers == 0) continue;
        snprintf(trigger, sizeof(trigger), "%s", out.triggers[0].id);
        contacts[n++] = TH_T0 + day * TH_DAY;
        /* The first is never made: released, its record is one of no contact. */
        if (n == 1) cr_assert_eq(report("not_called", TH_T0 + day * TH_DAY + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    }
    cr_assert_eq(n, 2, "a moment after the gap, and another after its release");
    md_decision d;
    cr_assert(decision_at("prepay_wallet", contacts[1], &d));
    cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    cr_assert(decision_at("prepay_wallet", TH_T0, &d), "the older contact's record stays");
    cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    cr_assert_not(decision_at("prepay_wallet", contacts[0], &d), "the released record made room");
}

/* A bound lowered by a reload: the next decision takes a customer's records
 * down to it, a contact's too when nothing else is left, and keeps no
 * record of no contact then. */
Test(outcome, a_lowered_bound_takes_the_records_down_to_it) {
    with_learning("{\"max_per_campaign\": 8, \"sample_pct\": 0, \"keep\": \"400d\"}");
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    /* No answer: the campaign may fire again after the peak gap, every 20 days here. */
    int contacts = 1;
    for (int day = 5; day <= 80; day += 5) {
        event(LATE_PAYMENT, TH_T0 + day * TH_DAY, 50);
        if (out.n_triggers == 0) continue;
        snprintf(trigger, sizeof(trigger), "%s", out.triggers[0].id);
        cr_assert_eq(report("no_answer", TH_T0 + day * TH_DAY + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
        contacts++;
    }
    cr_assert_eq(contacts, 5, "contacts on days 0, 20, 40, 60 and 80: %d", contacts);
    md_decision d;
    for (int day = 0; day <= 80; day += 20) cr_assert(decision_at("prepay_wallet", TH_T0 + day * TH_DAY, &d), "day %d", day);
    /* Reloaded with a bound of 2 and every customer sampled. */
    char err[512];
    const char *pairs[] = {"\"contact_policy\": {",
                           "\"learning\": {\"max_per_campaign\": 2, \"sample_pct\": 100, \"sample_every\": \"1h\", \"keep\": \"400d\"}, \"contact_policy\": {"};
    md_config *lower = th_config_edit(pairs, 1, err, sizeof(err));
    cr_assert(lower, "%s", err);
    md_cstate *back = md_cstate_new(lower);
    fold_into(back);
    md_cstate_destroy(cs);
    md_config_destroy(cfg);
    cfg = lower;
    cs = back;
    event(LATE_PAYMENT, TH_T0 + 82 * TH_DAY, 50); /* within the gap: a decision not to contact, sampled */
    cr_assert_eq(out.n_triggers, 0);
    for (int day = 0; day <= 40; day += 20) cr_assert_not(decision_at("prepay_wallet", TH_T0 + day * TH_DAY, &d), "day %d over the bound", day);
    for (int day = 60; day <= 80; day += 20) {
        cr_assert(decision_at("prepay_wallet", TH_T0 + day * TH_DAY, &d), "day %d", day);
        cr_assert_eq(d.kind, MD_DECISION_CONTACTED);
    }
    cr_assert_not(decision_at("prepay_wallet", TH_T0 + 82 * TH_DAY, &d), "no room left for a record of no contact");
}

/* An on-time bill paid leaving a low balance: eligible for the wallet, far below its threshold. */
#define LOW_BALANCE_PAYMENT                                                                                                  \
    "{\"event_id\":\"e%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%lld,\"amount\":100,\"kind\":\"bill\",\"late\":false," \
    "\"balance_after\":%g}"

/* Many decision records made in one state, more than its texts' first
 * chunk holds and more than the bound, the oldest dropped as they come: each
 * record kept reads back whole, in memory (explain) and as written, and
 * the state reset and loaded again holds the same. */
Test(outcome, many_decision_records_in_one_state_read_back_whole) {
    with_learning("{\"sample_pct\": 100, \"sample_every\": \"1h\", \"max_per_campaign\": 40, \"keep\": \"365d\"}");
    enum { N = 90 };
    for (int k = 0; k < N; k++) event(LOW_BALANCE_PAYMENT, TH_T0 + k * 2 * TH_HOUR, 50 + k);
    /* Both campaigns sample the customer: 40 records each. */
    cr_assert_eq(md_cstate_decision_count(cs), 80, "the bound: %zu", md_cstate_decision_count(cs));
    md_decision d, again;
    for (int k = 0; k < N; k++) {
        bool kept = decision_at("prepay_wallet", TH_T0 + k * 2 * TH_HOUR, &d);
        cr_assert_eq(kept, k < 40, "record %d: the first 40 fill the bound", k);
        if (!kept) continue;
        cr_assert_eq(d.kind, MD_DECISION_SAMPLED);
        cr_assert_gt(d.n_values, 2);
    }
    /* In memory, each as written. */
    char f[128], v[1024];
    for (size_t i = 0; i < md_cstate_decision_count(cs); i++) {
        cr_assert(md_cstate_decision(cs, i, &d), "record %zu reads back", i);
        cr_assert(decision_at(d.campaign, d.ts_ms, &again), "record %zu (%s)", i, d.campaign);
        md_decision_format(&d, f, sizeof(f), v, sizeof(v));
        char f2[128], v2[1024];
        md_decision_format(&again, f2, sizeof(f2), v2, sizeof(v2));
        cr_assert_str_eq(v, v2, "record at %lld", (long long)d.ts_ms);
    }
    /* Loaded again, three times over the same state object (a batch's
     * states are reused from one customer to the next). */
    md_cstate *back = md_cstate_new(cfg);
    for (int round = 0; round < 3; round++) {
        fold_into(back);
        cr_assert_eq(md_cstate_decision_count(back), 80);
        for (size_t i = 0; i < 80; i++) {
            cr_assert(md_cstate_decision(back, i, &d));
            cr_assert(decision_at(d.campaign, d.ts_ms, &again));
            char f2[128], v2[1024];
            md_decision_format(&d, f, sizeof(f), v, sizeof(v));
            md_decision_format(&again, f2, sizeof(f2), v2, sizeof(v2));
            cr_assert_str_eq(v, v2);
        }
    }
    md_cstate_destroy(back);
}

Test(outcome, only_the_sampled_customers_not_contacted_decisions_are_recorded_once_per_period) {
    /* With everyone sampled, a late payment that does not fire is recorded
     * as a sampled decision, and a second one within sample_every is not. */
    with_learning("{\"sample_pct\": 100}");
    event(LOW_BALANCE_PAYMENT, TH_T0, 50);
    cr_assert_eq(out.n_triggers, 0);
    md_decision d;
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert_eq(d.kind, MD_DECISION_SAMPLED);
    event(LOW_BALANCE_PAYMENT, TH_T0 + 3 * TH_DAY, 50);
    cr_assert_not(decision_at("prepay_wallet", TH_T0 + 3 * TH_DAY, &d), "within sample_every (7 d)");
    event(LOW_BALANCE_PAYMENT, TH_T0 + 8 * TH_DAY, 50);
    cr_assert(decision_at("prepay_wallet", TH_T0 + 8 * TH_DAY, &d));
    /* With nobody sampled, nothing is recorded for a decision not to contact. */
    with_learning("{\"sample_pct\": 0}");
    event(LOW_BALANCE_PAYMENT, TH_T0, 50);
    cr_assert_not(decision_at("prepay_wallet", TH_T0, &d));
}

Test(outcome, decision_records_in_the_older_form_are_read_rewritten_and_aged_out) {
    /* Written by the campaign's name and the time in decimal. */
    char older[64], current[32];
    snprintf(older, sizeof(older), "q:prepay_wallet:%lld", (long long)TH_T0);
    const char *v = "t0,0a1b2c3d,3,1,0";
    md_cstate_load_field(cs, older, strlen(older), v, strlen(v));
    snprintf(older, sizeof(older), "q:no_such_campaign:%lld", (long long)TH_T0);
    md_cstate_load_field(cs, older, strlen(older), v, strlen(v)); /* expires with the key */
    cr_assert_eq(md_cstate_decision_count(cs), 1);
    md_decision d;
    cr_assert(md_cstate_decision(cs, 0, &d));
    cr_assert_str_eq(d.campaign, "prepay_wallet");
    cr_assert_eq(d.ts_ms, TH_T0);
    cr_assert_eq(d.n_values, 3);
    /* Its conversion rewrites it under the current name and deletes the older. */
    event(PREPAY_PAYMENT, TH_T0 + 5 * TH_DAY, 500);
    cr_assert(decision_at("prepay_wallet", TH_T0, &d));
    cr_assert(d.converted);
    snprintf(older, sizeof(older), "q:prepay_wallet:%lld", (long long)TH_T0);
    bool deleted = false;
    for (size_t i = 0; i < ops.n; i++) deleted |= strcmp(md_ops_field(&ops, i), older) == 0 && ops.ops[i].kind == MD_OP_DEL;
    cr_assert(deleted);
    /* One never changed ages out under its own name. */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    md_ops_clear(&ops);
    md_cstate_load_field(cs, older, strlen(older), v, strlen(v));
    event(PREPAY_PAYMENT, TH_T0 + 200 * TH_DAY, 10);
    deleted = false;
    for (size_t i = 0; i < ops.n; i++) deleted |= strcmp(md_ops_field(&ops, i), older) == 0 && ops.ops[i].kind == MD_OP_DEL;
    cr_assert(deleted, "aged out by its own name");
    decision_field_of("prepay_wallet", TH_T0, current);
    for (size_t i = 0; i < ops.n; i++) cr_assert_str_neq(md_ops_field(&ops, i), current);
}

Test(outcome, malformed_decision_records_are_refused) {
    md_decision d;
    const char *good_f = "q:prepay_wallet:1772416800000", *good_v = "t0,0a1b2c3d,3,1,0";
    cr_assert(md_decision_parse(good_f, strlen(good_f), good_v, strlen(good_v), &d));
    cr_assert_eq(d.n_values, 3);
    cr_assert_eq(d.schema, 0x0a1b2c3du);
    const char *bad[][2] = {{"q:prepay_wallet:x", "t0,0a1b2c3d,3"},   {"q::1", "t0,0a1b2c3d,3"},
                            {good_f, "x0,0a1b2c3d,3"},                {good_f, "t2,0a1b2c3d,3"},
                            {good_f, "t0,0a1b2c,3"},                  {good_f, "t0,0a1b2c3d,3,,1"},
                            {good_f, "t0,0a1b2c3d,3,nan"},            {"g:prepay_wallet:1", "t0,0a1b2c3d,3"},
                            {"Q", "t0,0a1b2c3d,3"},                   {"Qabcde", "t0,0a1b2c3d,3"},
                            {"Qab-de1", "t0,0a1b2c3d,3"},             {"Qabcde1!", "t0,0a1b2c3d,3"},
                            {"Qabcdezzzzzzzzzzzzzz", "t0,0a1b2c3d,3"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(md_decision_parse(bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]), &d), "%s = %s", bad[i][0], bad[i][1]);
}

/* ---- model quality counters (momentd report's live calibration) ---- */

/* The model-quality field of the trigger just fired: p_contact in thousandths. */
static void quality_field(const char *group, const char *stage, char *out, size_t n) {
    int milli = (int)lround(out_p * 1000);
    snprintf(out, n, "q.%s.%03d.prepay_wallet-2026.11.1:%s", group, milli >= 1000 ? 999 : milli, stage);
}

/* The value of the trigger record g:<trigger> as the ops left it. */
static const char *trigger_record(void) {
    char f[64];
    snprintf(f, sizeof(f), "g:%s", trigger);
    const char *v = NULL;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), f) == 0 && ops.ops[i].kind == MD_OP_SET) v = md_ops_value(&ops, i);
    return v;
}

Test(outcome, a_trigger_counts_for_its_models_quality_by_p_and_version) {
    fire(TH_T0);
    out_p = out.eval[0].p_contact;
    cr_assert(out_p > 0.5 && out_p < 1, "fired above the threshold: %g", out_p);
    char trig[160], conv[160], want[64];
    quality_field("treated", "triggered", trig, sizeof(trig));
    quality_field("treated", "conversions", conv, sizeof(conv));
    cr_assert_eq(funnel(trig), 1, "%s", trig);
    /* The record keeps p and the version for the conversion to come. */
    snprintf(want, sizeof(want), ",%ld,prepay_wallet-2026.11.1,-1", lround(out_p * 1000)); /* -1: a first contact */
    const char *rec = trigger_record();
    cr_assert(rec && strlen(rec) > strlen(want) && strcmp(rec + strlen(rec) - strlen(want), want) == 0, "%s", rec ? rec : "(none)");
    cr_assert_eq(funnel(conv), 0);
    event(PREPAY_PAYMENT, TH_T0 + 5 * TH_DAY, 500);
    cr_assert_eq(funnel(conv), 1);
    event(PREPAY_PAYMENT, TH_T0 + 6 * TH_DAY, 500);
    cr_assert_eq(funnel(conv), 1, "one conversion per decision");
    /* Reloaded from what Redis holds, the record still knows it counted. */
    md_cstate *fresh = folded_state();
    md_cstate_destroy(cs);
    cs = fresh;
    md_ops_clear(&ops);
    event(PREPAY_PAYMENT, TH_T0 + 7 * TH_DAY, 500);
    cr_assert_eq(funnel(conv), 1, "no second count after a reload");
}

Test(outcome, a_holdout_decision_counts_in_the_holdout_group) {
    pick_customer(true);
    fire(TH_T0);
    out_p = out.eval[0].p_contact;
    char trig[160], treated[160];
    quality_field("holdout", "triggered", trig, sizeof(trig));
    quality_field("treated", "triggered", treated, sizeof(treated));
    cr_assert_eq(funnel(trig), 1);
    cr_assert_eq(funnel(treated), 0);
}

Test(outcome, a_released_contact_is_taken_back_from_its_models_quality_once) {
    fire(TH_T0);
    out_p = out.eval[0].p_contact;
    char trig[160], conv[160];
    quality_field("treated", "triggered", trig, sizeof(trig));
    quality_field("treated", "conversions", conv, sizeof(conv));
    event(PREPAY_PAYMENT, TH_T0 + TH_HOUR, 500); /* bought before the dialer said it never called */
    cr_assert_eq(funnel(conv), 1);
    cr_assert_eq(report("not_called", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel(trig), 0, "1 - 1: never contacted");
    cr_assert_eq(funnel(conv), 0, "and its conversion goes with it");
    cr_assert_eq(report("expired", TH_T0 + 3 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel(trig), 0, "expired after not_called takes nothing more");
    cr_assert_eq(funnel(conv), 0);
}

Test(outcome, a_conversion_after_a_follow_up_counts_for_the_models_decision) {
    with_follow_ups();
    fire(TH_T0);
    out_p = out.eval[0].p_contact;
    char conv[160];
    quality_field("treated", "conversions", conv, sizeof(conv));
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 1, "the follow-up");
    event(PREPAY_PAYMENT, TH_T0 + 2 * TH_DAY, 500);
    cr_assert_eq(funnel("in_app:conversions"), 1, "the funnel credits the latest trigger, the follow-up");
    cr_assert_eq(funnel(conv), 1, "model quality credits the decision whose p it measures");
}

Test(outcome, an_older_trigger_record_without_p_loads_and_counts_no_quality) {
    const char *older = "1767225600000,0,0,outbound_call,prepay_wallet";
    md_cstate_load_field(cs, "g:mold", 6, older, strlen(older));
    snprintf(trigger, sizeof(trigger), "mold");
    cr_assert_eq(report("sent", 1767225600000 + TH_HOUR, NULL), MD_OUTCOME_APPLIED, "the older record is known");
    event(PREPAY_PAYMENT, 1767225600000 + TH_DAY, 500);
    cr_assert_eq(funnel("outbound_call:conversions"), 1);
    for (size_t i = 0; i < md_cstate_incr_count(cs); i++) {
        const char *name, *camp, *day, *f;
        int64_t d;
        md_cstate_incr(cs, i, &name, &camp, &day, &f, &d);
        cr_assert(strncmp(f, "q.", 2) != 0, "no model quality without p: %s", f);
    }
    /* A p over 1, or six parts, is a malformed record: not loaded. */
    const char *bad[] = {"1767225600000,0,0,outbound_call,prepay_wallet,1001,v1", "1767225600000,0,0,outbound_call,prepay_wallet,500"};
    for (size_t i = 0; i < 2; i++) {
        md_cstate_load_field(cs, "g:mbad", 6, bad[i], strlen(bad[i]));
        snprintf(trigger, sizeof(trigger), "mbad");
        cr_assert_eq(report("sent", 1767225600000 + TH_HOUR, NULL), MD_OUTCOME_UNKNOWN_TRIGGER, "%s", bad[i]);
    }
}

/* ---- the timing table: contacts by days since the previous one ---- */

Test(outcome, gap_buckets_by_their_bounds) {
    struct {
        int64_t days;
        const char *name;
    } cases[] = {{MD_GAP_FIRST, "first"}, {0, "0-6"},    {6, "0-6"},    {7, "7-13"},   {13, "7-13"},  {14, "14-20"}, {20, "14-20"},
                 {21, "21-29"},          {29, "21-29"}, {30, "30-44"}, {44, "30-44"}, {45, "45-59"}, {59, "45-59"}, {60, "60-89"},
                 {89, "60-89"},          {90, "90+"},   {4000, "90+"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int b = md_gap_bucket(cases[i].days);
        cr_assert_str_eq(md_gap_bucket_name(b), cases[i].name, "%lld days", (long long)cases[i].days);
        cr_assert_eq(md_gap_bucket_by_name(cases[i].name, strlen(cases[i].name)), b);
    }
    cr_assert_eq(md_gap_bucket(MD_GAP_UNKNOWN), -1, "a gap never recorded is in no bucket");
    cr_assert_eq(md_gap_bucket_by_name("45+", 3), -1, "a bucket of another table is none of these");
    cr_assert_eq(md_gap_bucket_by_name("first", 4), -1, "the whole name, not a prefix");
}

Test(outcome, a_first_contact_and_what_followed_count_in_the_timing_table) {
    fire(TH_T0);
    cr_assert_eq(funnel("gap.first:triggered"), 1);
    cr_assert_eq(report("sent", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(report("no_answer", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel("gap.first:no_answer"), 1);
    /* Reloaded from what Redis holds, the record still knows its gap. */
    md_cstate *fresh = folded_state();
    md_cstate_destroy(cs);
    cs = fresh;
    md_ops_clear(&ops);
    event(PREPAY_PAYMENT, TH_T0 + 5 * TH_DAY, 500);
    cr_assert_eq(funnel("gap.first:conversions"), 1);
    cr_assert_eq(funnel_prefixed("gap."), funnel_prefixed("gap.first:"), "nothing in another bucket");
    cr_assert_eq(funnel_prefixed("gap.first:"), 4, "triggered, sent, no_answer, conversions");
}

Test(outcome, a_repeat_contact_counts_in_the_bucket_of_its_gap_and_a_release_takes_it_back_once) {
    char last[32];
    snprintf(last, sizeof(last), "%lld", (long long)(TH_T0 - 50 * TH_DAY));
    md_cstate_load_field(cs, "l:prepay_wallet", 15, last, strlen(last));
    fire(TH_T0);
    cr_assert_eq(funnel("gap.45-59:triggered"), 1, "50 days after the previous contact");
    cr_assert_eq(funnel("gap.first:triggered"), 0);
    const char *rec = trigger_record();
    cr_assert(rec && strlen(rec) > 3 && strcmp(rec + strlen(rec) - 3, ",50") == 0, "%s", rec ? rec : "(none)");
    event(PREPAY_PAYMENT, TH_T0 + TH_HOUR, 500); /* bought before the dialer said it never called */
    cr_assert_eq(funnel("gap.45-59:conversions"), 1);
    cr_assert_eq(report("not_called", TH_T0 + 2 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel("gap.45-59:released"), 1);
    cr_assert_eq(funnel("gap.45-59:conversions"), 0, "1 - 1 in the same batch: a contact never made converts nothing");
    cr_assert_eq(report("expired", TH_T0 + 3 * TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel("gap.45-59:released"), 1, "released once");
    cr_assert_eq(funnel("gap.45-59:not_called") + funnel("gap.45-59:expired"), 0, "a release is counted as released");
}

Test(outcome, a_conversion_after_a_follow_up_counts_for_the_decisions_gap) {
    with_follow_ups();
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(out.n_triggers, 1, "the follow-up");
    cr_assert_eq(funnel("gap.first:triggered"), 1, "the decision only: no policy chose the follow-up's gap");
    cr_assert_eq(funnel("gap.first:follow_ups"), 0);
    event(PREPAY_PAYMENT, TH_T0 + 2 * TH_DAY, 500);
    cr_assert_eq(funnel("in_app:conversions"), 1, "the funnel credits the follow-up");
    cr_assert_eq(funnel("gap.first:conversions"), 1, "the timing table the decision");
}

Test(outcome, holdout_decisions_and_older_records_count_no_timing) {
    pick_customer(true);
    fire(TH_T0);
    cr_assert_eq(funnel_prefixed("gap."), 0, "a holdout decision is no contact");
    /* A record written before the gap was kept: its outcomes count nowhere here. */
    pick_customer(false);
    md_ops_clear(&ops);
    const char *older = "1767225600000,0,0,outbound_call,prepay_wallet,700,prepay_wallet-2026.11.1";
    md_cstate_load_field(cs, "g:mold", 6, older, strlen(older));
    snprintf(trigger, sizeof(trigger), "mold");
    cr_assert_eq(report("reached", 1767225600000 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel("outbound_call:reached"), 1);
    cr_assert_eq(funnel_prefixed("gap."), 0);
    /* A gap below -1 is malformed; parts after the gap (a later version's) are left alone. */
    const char *bad = "1767225600000,0,0,outbound_call,prepay_wallet,700,prepay_wallet-2026.11.1,-2";
    md_cstate_load_field(cs, "g:mbad", 6, bad, strlen(bad));
    snprintf(trigger, sizeof(trigger), "mbad");
    cr_assert_eq(report("sent", 1767225600000 + TH_HOUR, NULL), MD_OUTCOME_UNKNOWN_TRIGGER);
    const char *newer = "1767225600000,0,0,outbound_call,prepay_wallet,700,prepay_wallet-2026.11.1,8,x";
    md_cstate_load_field(cs, "g:mnew", 6, newer, strlen(newer));
    snprintf(trigger, sizeof(trigger), "mnew");
    cr_assert_eq(report("sent", 1767225600000 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(funnel("gap.7-13:sent"), 1);
}

/* ---- a fitted candidate tried live in a policy arm ---- */

/* prepay_wallet split into arm "running" (the campaign's model) and arm
 * "candidate" with a model of its own: the same features, intercept moved
 * by `shift`, version prepay_wallet-fit-test, threshold `thr`. */
static void with_candidate_arm(double shift, double thr) {
    md_config *base = th_default_config();
    const md_cfg_model *m = &base->campaigns[0].model;
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "version", "prepay_wallet-fit-test");
    md_jsonw_knum(&w, "intercept", m->intercept + shift);
    md_jsonw_key(&w, "static");
    md_jsonw_arr_open(&w);
    for (size_t s = 0; s < m->n_statics; s++) {
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "attribute", m->statics[s].attribute);
        md_jsonw_key(&w, "offsets");
        md_jsonw_obj_open(&w);
        for (size_t k = 0; k < m->statics[s].n_offsets; k++) md_jsonw_knum(&w, m->statics[s].offsets[k].key, m->statics[s].offsets[k].value);
        md_jsonw_obj_close(&w);
        md_jsonw_obj_close(&w);
    }
    md_jsonw_arr_close(&w);
    md_jsonw_key(&w, "features");
    md_jsonw_arr_open(&w);
    for (size_t f = 0; f < m->n_features; f++) {
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "name", m->features[f].name);
        md_jsonw_kstr(&w, "expr", m->features[f].expr);
        md_jsonw_kstr(&w, "transform", m->features[f].transform);
        md_jsonw_knum(&w, "cap", m->features[f].cap);
        md_jsonw_knum(&w, "weight", m->features[f].weight);
        md_jsonw_obj_close(&w);
    }
    md_jsonw_arr_close(&w);
    md_jsonw_obj_close(&w);
    cr_assert_not(w.oom);
    md_config_destroy(base);
    size_t n = strlen(w.buf) + 512;
    char *to = malloc(n);
    snprintf(to, n,
             "\"name\": \"prepay_wallet\", \"arms\": [{\"name\": \"running\", \"share_pct\": 50, \"cooldown\": {\"mode\": \"adaptive\"}}, "
             "{\"name\": \"candidate\", \"share_pct\": 50, \"cooldown\": {\"mode\": \"adaptive\"}, \"threshold\": %g, \"model\": %s}],",
             thr, w.buf);
    md_jsonw_fini(&w);
    const char *pairs[] = {"\"name\": \"prepay_wallet\",", to};
    use_config(pairs, 1);
    free(to);
}

/* A customer outside prepay_wallet's holdout in arm `arm`. */
static void pick_in_arm(int arm) {
    for (int i = 0; i < 2000; i++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "arm%d-%d", arm, i);
        th_pick_customer(cust, sizeof(cust), prefix, false);
        if (md_policy_arm(cfg, 0, cust) == arm) {
            md_cstate_reset(cs);
            md_cstate_set_customer(cs, cust);
            return;
        }
    }
    cr_assert_fail("no customer in arm %d", arm);
}

Test(outcome, a_candidate_arm_scores_its_customers_with_its_own_model_threshold_and_version) {
    with_candidate_arm(2.0, 0.9);
    pick_in_arm(1);
    fire(TH_T0);
    double p_candidate = out.eval[0].p_contact;
    const char *pl = out.triggers[0].payload;
    cr_assert(strstr(pl, "\"model_version\":\"prepay_wallet-fit-test\""), "%s", pl);
    cr_assert(strstr(pl, "\"threshold\":0.9,"), "%s", pl);
    cr_assert(strstr(pl, "\"arm\":\"candidate\""), "%s", pl);
    out_p = p_candidate;
    char f[160];
    snprintf(f, sizeof(f), "q.treated.%03d.prepay_wallet-fit-test:triggered", (int)lround(out_p * 1000) >= 1000 ? 999 : (int)lround(out_p * 1000));
    cr_assert_eq(funnel(f), 1, "model quality counts the candidate's version: %s", f);
    /* The same story in the other arm: the campaign's model, 2 log-odds lower. */
    pick_in_arm(0);
    fire(TH_T0);
    pl = out.triggers[0].payload;
    cr_assert(strstr(pl, "\"model_version\":\"prepay_wallet-2026.11.1\""), "%s", pl);
    double p_running = out.eval[0].p_contact;
    cr_assert_float_eq(log(p_candidate / (1 - p_candidate)) - log(p_running / (1 - p_running)), 2.0, 1e-9, "the intercept moved by 2");
    cr_assert(strstr(pl, "\"arm\":\"running\""), "%s", pl);
}

Test(outcome, a_candidate_arms_threshold_holds_back_what_the_campaigns_would_fire) {
    with_candidate_arm(0.0, 0.99); /* the same model, a threshold nobody reaches */
    pick_in_arm(1);
    event(LATE_PAYMENT, TH_T0 - 60 * TH_DAY, 80);
    event(LATE_PAYMENT, TH_T0 - 30 * TH_DAY, 60);
    event(LATE_PAYMENT, TH_T0, 50);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[0].suppressed, MD_SUPPRESS_BELOW_THRESHOLD);
    cr_assert_float_eq(md_campaign_threshold(cfg, 0, 1), 0.99, 1e-12);
    cr_assert_float_eq(md_campaign_threshold(cfg, 0, 0), cfg->campaigns[0].threshold, 1e-12, "the other arm keeps the campaign's");
    cr_assert_float_eq(md_campaign_rearm_below(cfg, 0, 1), cfg->campaigns[0].rearm_below, 1e-12, "0: the campaign's re-arm level");
}

Test(outcome, a_decision_record_keeps_the_campaigns_fatigue_for_the_fit) {
    fire(TH_T0);
    cr_assert_eq(report("no_answer", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED); /* fatigue 0.5, and re-armed */
    int64_t later = TH_T0 + 60 * TH_DAY;
    event(LATE_PAYMENT, later - 30 * TH_DAY, 60);
    event(LATE_PAYMENT, later, 50);
    cr_assert_eq(out.n_triggers, 1, "fires again after the gap");
    md_decision d;
    cr_assert(decision_at("prepay_wallet", later, &d));
    const md_cfg_model *m = &cfg->campaigns[0].model;
    cr_assert_eq(d.n_values, m->n_features + m->n_statics + 1);
    double want = 0.5 * pow(0.5, (double)(later - TH_T0 - TH_HOUR) / (30.0 * TH_DAY)); /* halved every 30 days */
    cr_assert_float_eq(d.values[m->n_features + m->n_statics], want, 0.001, "fatigue %g, want %g", d.values[m->n_features + m->n_statics], want);
    cr_assert_float_eq(out.eval[0].fatigue, want, 1e-9, "the same fatigue the engine multiplied the score by");
}

/* ---- erasure: the tombstone momentd forget leaves ---- */

Test(outcome, an_erased_customers_old_events_and_profiles_are_ignored_until_they_come_back) {
    const int64_t erased = TH_T0;
    char fg[32];
    snprintf(fg, sizeof(fg), "%lld", (long long)erased);
    md_cstate_load_field(cs, "fg", 2, fg, strlen(fg));
    md_cstate_view v;
    md_cstate_view_of(cs, &v);
    cr_assert_eq(v.forgotten_at, erased);
    /* A replayed event from before the erasure: nothing is written. */
    md_ops_clear(&ops);
    event(LATE_PAYMENT, erased - TH_DAY, 80);
    cr_assert_eq(out.applied, MD_FORGOTTEN);
    cr_assert_eq(ops.n, 0, "not a single write");
    event(LATE_PAYMENT, erased, 80);
    cr_assert_eq(out.applied, MD_FORGOTTEN, "the erasure's own instant too");
    /* Its old profile, replayed from the compacted topic: ignored. */
    md_applied a;
    char err[128];
    cr_assert_eq(md_engine_profile(cs, "{\"customer_type\":\"resident\"}", NULL, &ops, &a, err, sizeof(err)), MD_ERR_OK);
    cr_assert_eq(a, MD_FORGOTTEN);
    cr_assert_eq(ops.n, 0);
    /* The customer comes back: a later event counts, and then a profile. */
    event(LATE_PAYMENT, erased + TH_HOUR, 80);
    cr_assert_eq(out.applied, MD_APPLIED);
    cr_assert_eq(md_engine_profile(cs, "{\"customer_type\":\"resident\"}", NULL, &ops, &a, err, sizeof(err)), MD_ERR_OK);
    cr_assert_eq(a, MD_APPLIED);
    /* Still no event from before the erasure. */
    event(LATE_PAYMENT, erased - TH_HOUR, 80);
    cr_assert_eq(out.applied, MD_FORGOTTEN);
    /* A malformed tombstone is not loaded (a bad field, left for the loader to count). */
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    md_cstate_load_field(cs, "fg", 2, "x", 1);
    md_cstate_view_of(cs, &v);
    cr_assert_eq(v.forgotten_at, 0);
}

/* ---- the campaign's lifecycle: dates, pause, priority ---- */

static void with_campaign_keys(const char *keys) {
    char to[512];
    snprintf(to, sizeof(to), "\"name\": \"prepay_wallet\", %s,", keys);
    const char *pairs[] = {"\"name\": \"prepay_wallet\",", to};
    use_config(pairs, 1);
}

Test(outcome, a_campaign_fires_only_between_its_dates) {
    char keys[200], s[32], e[32];
    md_format_time(TH_T0, s);
    md_format_time(TH_T0 + 100 * TH_DAY, e);
    snprintf(keys, sizeof(keys), "\"starts\": \"%s\", \"ends\": \"%s\"", s, e);
    with_campaign_keys(keys);
    late_story(TH_T0 - TH_HOUR);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[0].suppressed, MD_SUPPRESS_NOT_STARTED);
    cr_assert_eq(out.eval[0].eligible_again_ms, 0, "untimed: the start puts nobody into the schedule");
    pick_customer(false);
    late_story(TH_T0 + 50 * TH_DAY);
    cr_assert_eq(out.n_triggers, 1, "fires between its dates");
    pick_customer(false);
    late_story(TH_T0 + 100 * TH_DAY);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[0].suppressed, MD_SUPPRESS_ENDED, "from its end on");
}

Test(outcome, a_paused_campaign_fires_nothing_and_resumes) {
    md_cstate_set_paused(cs, 1u << 0);
    late_story(TH_T0);
    cr_assert_eq(out.n_triggers, 0);
    cr_assert_eq(out.eval[0].suppressed, MD_SUPPRESS_PAUSED);
    md_cstate_set_paused(cs, 0);
    event(LATE_PAYMENT, TH_T0 + TH_HOUR, 40);
    cr_assert_eq(out.n_triggers, 1, "resumed: the next event fires");
}

Test(outcome, campaigns_are_decided_highest_priority_first) {
    cr_assert_eq(cfg->rules->campaign_order[0], 0, "equal priority: file order");
    with_campaign_keys("\"priority\": -1");
    cr_assert_eq(cfg->rules->campaign_order[0], 1, "bill_instalment (0) before prepay_wallet (-1)");
    cr_assert_eq(cfg->rules->campaign_order[1], 0);
}

Test(outcome, bad_dates_are_refused_at_load) {
    char err[512];
    md_config *bad = th_config_with("\"name\": \"prepay_wallet\",", "\"name\": \"prepay_wallet\", \"starts\": \"tomorrow\",", err, sizeof(err));
    cr_assert_null(bad);
    cr_assert(strstr(err, "$.campaigns[0].starts: \"tomorrow\" is not an RFC 3339 time"), "%s", err);
    bad = th_config_with("\"name\": \"prepay_wallet\",",
                         "\"name\": \"prepay_wallet\", \"starts\": \"2026-06-01T00:00:00Z\", \"ends\": \"2026-05-01T00:00:00Z\",", err, sizeof(err));
    cr_assert_null(bad);
    cr_assert(strstr(err, "$.campaigns[0].ends: 2026-05-01T00:00:00Z is not after starts"), "%s", err);
}

/* ---- the decision audit (explain --history) ---- */

/* The audit entries of campaign 0 as the ops left them, reloaded. */
static size_t audit_of(md_audit_entry *out, size_t max) {
    md_cstate *fresh = folded_state();
    size_t n = 0;
    for (size_t i = 0; i < md_cstate_audit_count(fresh) && n < max; i++) {
        md_audit_entry e;
        md_cstate_audit(fresh, i, &e);
        if (e.campaign != 0) continue;
        out[n] = e;
        out[n].outcome = e.outcome; /* static names: valid after the state goes */
        n++;
    }
    md_cstate_destroy(fresh);
    for (size_t i = 1; i < n; i++) /* oldest first */
        for (size_t j = i; j > 0 && out[j].from_ms < out[j - 1].from_ms; j--) {
            md_audit_entry t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

Test(outcome, the_audit_keeps_runs_of_decisions_that_ended_the_same_way) {
    event(LATE_PAYMENT, TH_T0 - 60 * TH_DAY, 80); /* below the threshold */
    event(LATE_PAYMENT, TH_T0 - 30 * TH_DAY, 60); /* still below */
    event(LATE_PAYMENT, TH_T0, 50);               /* fires */
    cr_assert_eq(out.n_triggers, 1);
    event(LATE_PAYMENT, TH_T0 + TH_HOUR, 50);     /* blocked: not re-armed (the first rule that blocks) */
    event(LATE_PAYMENT, TH_T0 + 2 * TH_HOUR, 50); /* the same day, the same way: no new entry */
    event(LATE_PAYMENT, TH_T0 + 3 * TH_DAY, 50);  /* another day, the same way */
    md_audit_entry a[8];
    size_t n = audit_of(a, 8);
    cr_assert_eq(n, 3, "below the threshold, fired, not re-armed (%zu entries)", n);
    cr_assert_str_eq(a[0].outcome, "below_threshold");
    cr_assert_eq(a[0].from_ms, TH_T0 - 60 * TH_DAY);
    cr_assert_eq(a[0].last_ms, TH_T0 - 30 * TH_DAY, "its last day: the first decision of that day");
    cr_assert_str_eq(a[1].outcome, "fired");
    cr_assert_eq(a[1].from_ms, TH_T0);
    cr_assert_str_eq(a[2].outcome, "not_rearmed");
    cr_assert_eq(a[2].from_ms, TH_T0 + TH_HOUR);
    cr_assert_eq(a[2].last_ms, TH_T0 + 3 * TH_DAY, "extended to the new day");
    cr_assert(a[2].p > 0.5 && a[2].p < 1, "p at that decision: %g", a[2].p);
}

Test(outcome, the_audit_is_bounded_and_ages_out) {
    pick_customer(false); /* a fresh state */
    int64_t t = TH_T0;
    /* Alternate two outcomes on 20 days: 20 runs, at most 16 kept. */
    for (int d = 0; d < 20; d++) {
        md_cstate_set_paused(cs, d % 2 ? 1u : 0u);
        event(LATE_PAYMENT, t + d * TH_DAY, 5000); /* a high balance: below the threshold unless paused */
    }
    md_audit_entry a[32];
    size_t n = audit_of(a, 32);
    cr_assert_eq(n, 16, "audit.max_per_campaign: %zu", n);
    cr_assert_eq(a[0].from_ms, t + 4 * TH_DAY, "the oldest went first");
    /* Older than audit.keep (35 days) at the next write: gone. */
    md_cstate_set_paused(cs, 0);
    event(LATE_PAYMENT, t + 60 * TH_DAY, 5000);
    md_cstate_flush(cs, &ops);
    n = audit_of(a, 32);
    cr_assert(n >= 1 && n <= 2, "only the recent runs stay: %zu", n);
    for (size_t i = 0; i < n; i++) cr_assert_geq(a[i].last_ms, t + 60 * TH_DAY - 35 * TH_DAY);
}

/* The last SET (or DEL: "-") of field in the ops so far; NULL when none. */
static const char *last_op(const char *field) {
    const char *v = NULL;
    for (size_t i = 0; i < ops.n; i++)
        if (strcmp(md_ops_field(&ops, i), field) == 0 && (ops.ops[i].kind == MD_OP_SET || ops.ops[i].kind == MD_OP_DEL))
            v = ops.ops[i].kind == MD_OP_SET ? md_ops_value(&ops, i) : "-";
    return v;
}

Test(outcome, the_audit_is_stored_short_and_every_outcome_has_its_own_code) {
    event(LATE_PAYMENT, TH_T0 - 60 * TH_DAY, 80);
    event(LATE_PAYMENT, TH_T0 - 30 * TH_DAY, 60);
    char field[64], from[16], span[16], want[64];
    th_b36(TH_T0 - 60 * TH_DAY, from);
    th_b36(30 * TH_DAY, span);
    char code[MD_STATE_CODE_LEN + 1];
    md_state_code("prepay_wallet", code);
    snprintf(field, sizeof(field), "R%s%s", code, from); /* the campaign's short name, then the run's start */
    const char *v = last_op(field);
    cr_assert(v, "no %s", field);
    snprintf(want, sizeof(want), "bt,%s,", span); /* below_threshold, extended by 30 days, then p */
    cr_assert(strncmp(v, want, strlen(want)) == 0 && strlen(v) < 20, "%s = %s", field, v);
    for (size_t i = 0; i < ops.n; i++)
        cr_assert(strncmp(md_ops_field(&ops, i), "r:", 2) != 0 && strncmp(md_ops_field(&ops, i), "R:", 2) != 0, "an older form is never written");
    for (int o = 0; o <= MD_SUPPRESS_COUNT; o++) { /* MD_SUPPRESS_COUNT: the holdout */
        const char *code = md_audit_outcome_code(o);
        cr_assert(code && strlen(code) >= 1 && strlen(code) <= 2, "%s has no code", md_audit_outcome_name(o));
        for (int q = 0; q < o; q++) cr_assert_str_neq(code, md_audit_outcome_code(q), "%s and %s", md_audit_outcome_name(o), md_audit_outcome_name(q));
    }
    cr_assert_null(md_audit_outcome_code(MD_SUPPRESS_COUNT + 1));
}

/* The audit's older forms: "r:<campaign>:<from ms>" = "<outcome name>,<last
 * ms>,<p>", and "R:<campaign>:<from>" with times in base 36 and the
 * outcome's code. Each is read, deleted under its own name when its run
 * changes (the run written in the current form) or ages out. */
Test(outcome, an_older_audit_record_is_read_and_moves_to_the_current_form_when_it_changes) {
    int64_t f = TH_T0 - 60 * TH_DAY;
    char from[16], code[MD_STATE_CODE_LEN + 1], new_field[64];
    th_b36((uint64_t)f, from);
    md_state_code("prepay_wallet", code);
    snprintf(new_field, sizeof(new_field), "R%s%s", code, from);
    for (int form = 0; form < 2; form++) {
        char old_field[64], old_value[64];
        if (form == 0) {
            snprintf(old_field, sizeof(old_field), "r:prepay_wallet:%lld", (long long)f);
            snprintf(old_value, sizeof(old_value), "below_threshold,%lld,120", (long long)f);
        } else {
            snprintf(old_field, sizeof(old_field), "R:prepay_wallet:%s", from);
            snprintf(old_value, sizeof(old_value), "bt,0,120");
        }
        md_cstate_reset(cs);
        md_cstate_set_customer(cs, cust);
        md_ops_clear(&ops);
        md_cstate_load_field(cs, old_field, strlen(old_field), old_value, strlen(old_value));
        md_audit_entry a;
        cr_assert_eq(md_cstate_audit_count(cs), 1, "%s", old_field);
        md_cstate_audit(cs, 0, &a);
        cr_assert_str_eq(a.outcome, "below_threshold");
        cr_assert_eq(a.from_ms, f);
        cr_assert_float_eq(a.p, 0.12, 1e-12);
        event(LATE_PAYMENT, TH_T0 - 30 * TH_DAY, 60); /* below the threshold again, another day: the run goes on */
        cr_assert_str_eq(last_op(old_field) ? last_op(old_field) : "(none)", "-", "%s is deleted", old_field);
        cr_assert(last_op(new_field) && last_op(new_field)[0] == 'b', "and the run written as %s", new_field);
        md_audit_entry e[4];
        cr_assert_eq(audit_of(e, 4), 1, "one run, not two");
        cr_assert_eq(e[0].from_ms, f);
        cr_assert_eq(e[0].last_ms, TH_T0 - 30 * TH_DAY);
        /* An older record that ages out is deleted under its own name. */
        md_cstate_reset(cs);
        md_cstate_set_customer(cs, cust);
        md_ops_clear(&ops);
        md_cstate_load_field(cs, old_field, strlen(old_field), old_value, strlen(old_value));
        event(LATE_PAYMENT, TH_T0 + 60 * TH_DAY, 60); /* 120 days later: past audit.keep */
        md_cstate_flush(cs, &ops);
        cr_assert_str_eq(last_op(old_field) ? last_op(old_field) : "(none)", "-", "%s aged out", old_field);
    }
    /* Unknown codes, campaigns and malformed numbers are not read. */
    char unknown_campaign[32], short_name[32], upper[32];
    snprintf(unknown_campaign, sizeof(unknown_campaign), "R%.4s_%s", code, from); /* '_' is no base-36 digit: no code of any campaign */
    snprintf(short_name, sizeof(short_name), "R%.3s", code);                     /* shorter than a code */
    snprintf(upper, sizeof(upper), "R%sZ9", code);
    const char *bad[][2] = {{"R:prepay_wallet:zz", "xx,1,2"}, {"R:prepay_wallet:Z9", "bt,1,2"}, {"R:prepay_wallet:1", "bt,-1,2"},
                            {"R:prepay_wallet:zzzzzzzzzzzzzz", "bt,1,2"}, {unknown_campaign, "bt,1,2"}, {short_name, "bt,1,2"},
                            {upper, "bt,1,2"}, {new_field, "xx,1,2"}, {new_field, "bt,-1,2"}, {new_field, "bt,1"}};
    md_cstate_reset(cs);
    md_cstate_set_customer(cs, cust);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) md_cstate_load_field(cs, bad[i][0], strlen(bad[i][0]), bad[i][1], strlen(bad[i][1]));
    cr_assert_eq(md_cstate_audit_count(cs), 0);
    md_cstate_load_field(cs, new_field, strlen(new_field), "bt,1,2", 6);
    cr_assert_eq(md_cstate_audit_count(cs), 1, "the current form, well formed, is read");
}

/* channels[].confirm "sent": a moment counts as a contact from its emission,
 * and when its freshness ends (4 h for outbound_call) without a report of
 * the channel's it is released as expired: no cooldown, no cap, the
 * campaign re-armed, decided again then. The schedule is set for that
 * lapse. A moment the channel reported sent keeps its contact; with the
 * default "emitted", nothing lapses. */
Test(outcome, a_moment_never_confirmed_sent_is_released_when_its_freshness_ends) {
    char err[256];
    md_config *confirming = th_config_with("\"name\": \"outbound_call\",", "\"name\": \"outbound_call\", \"confirm\": \"sent\",", err, sizeof(err));
    cr_assert(confirming, "%s", err);
    md_config *plain = cfg;
    cfg = confirming;
    md_cstate_destroy(cs);
    cs = md_cstate_new(cfg);
    pick_customer(false);
    fire(TH_T0);
    const int64_t lapse = TH_T0 + 4 * TH_HOUR;
    cr_assert_eq(md_cstate_due(cs), lapse, "scheduled for the end of the moment's freshness");
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, TH_T0, "a contact meanwhile");
    md_cstate_view view;
    md_cstate_view_of(cs, &view);
    size_t contacts = view.n_contacts;
    cr_assert_eq(md_engine_due(cfg, cs, NULL, lapse - 1, lapse - 1, &ops, &cp_ops, &out), MD_ERR_OK);
    cr_assert_eq(out.n_triggers, 0, "not before the lapse");
    cr_assert_eq(funnel("outbound_call:expired"), 0);
    /* At the lapse the contact is taken back, and the moment, still there,
     * fires again: its cooldown was the released contact's. */
    cr_assert_eq(md_engine_due(cfg, cs, NULL, lapse, lapse, &ops, &cp_ops, &out), MD_ERR_OK);
    cr_assert_eq(funnel("outbound_call:expired"), 1, "the first moment counted as expired");
    cr_assert_eq(out.n_triggers, 1, "decided again: the moment fires anew");
    cr_assert_str_neq(out.triggers[0].id, trigger);
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, lapse);
    md_cstate_view_of(cs, &view);
    cr_assert_eq(view.n_contacts, contacts, "the first contact's cap entry went, the new one's came");
    md_cstate *fresh = folded_state();
    cr_assert_eq(md_cstate_campaign(fresh, 0).last_contact, lapse, "stored");
    md_cstate_destroy(fresh);

/* Reported sent: the contact stands, nothing is scheduled for it. */
    md_ops_clear(&ops);
    pick_customer(false);
    fire(TH_T0);
    cr_assert_eq(report("sent", TH_T0 + TH_HOUR, NULL), MD_OUTCOME_APPLIED);
    cr_assert_eq(md_engine_due(cfg, cs, NULL, lapse, lapse, &ops, &cp_ops, &out), MD_ERR_OK);
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, TH_T0, "a confirmed contact stays");
    cr_assert_eq(funnel("outbound_call:expired"), 0);

    /* The default, "emitted": the moment is the contact, nothing lapses. */
    cfg = plain;
    md_cstate_destroy(cs); /* before the configuration it was made for */
    md_config_destroy(confirming);
    cs = md_cstate_new(cfg);
    md_ops_clear(&ops);
    pick_customer(false);
    fire(TH_T0);
    cr_assert_neq(md_cstate_due(cs), lapse, "no lapse scheduled");
    cr_assert_eq(md_engine_due(cfg, cs, NULL, lapse, lapse, &ops, &cp_ops, &out), MD_ERR_OK);
    cr_assert_eq(out.n_triggers, 0, "the cooldown of the contact holds");
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, TH_T0);
    cr_assert_eq(funnel("outbound_call:expired"), 0);
}

/* channels[].capacity, as the batch grants it: with none left a decision
 * is held (held_capacity), and the customer scheduled for when the channel
 * frees, ranked by value; with some left the moment takes one. A holdout
 * decision takes none. */
Test(outcome, a_channel_without_capacity_holds_the_moment_until_it_frees) {
    int call = md_rules_channel_index(cfg, "outbound_call");
    cr_assert(call >= 0);
    md_capacity caps[8];
    for (size_t i = 0; i < 8; i++) caps[i] = (md_capacity){.left = -1};
    const int64_t frees = TH_T0 + TH_HOUR;
    caps[call] = (md_capacity){.left = 0, .frees_at_ms = frees};
    out.capacity = caps;
    late_story(TH_T0);
    cr_assert_eq(out.n_triggers, 0, "no capacity: no moment");
    cr_assert_eq(out.n_held, 1);
    cr_assert_eq(out.eval[0].suppressed, MD_SUPPRESS_HELD_CAPACITY);
    double value = out.eval[0].value;
    cr_assert_gt(value, 0);
    cr_assert_eq(md_cstate_due(cs), frees + md_capacity_rank_offset_ms(value), "back when the channel frees, at its rank");
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, 0, "no contact recorded");
    /* The slot ends and the batch grants one: the moment fires then. */
    caps[call] = (md_capacity){.left = 1, .frees_at_ms = frees + TH_HOUR};
    int64_t at = md_cstate_due(cs);
    cr_assert_eq(md_engine_due(cfg, cs, NULL, at, at, &ops, &cp_ops, &out), MD_ERR_OK);
    cr_assert_eq(out.n_triggers, 1, "fired when capacity came");
    cr_assert_eq(caps[call].taken, 1);
    cr_assert_eq(caps[call].left, 0);
    cr_assert_eq(md_cstate_campaign(cs, 0).last_contact, at);
    out.capacity = NULL;

    /* A holdout customer's decision takes no capacity. */
    pick_customer(true);
    caps[call] = (md_capacity){.left = 0, .frees_at_ms = frees};
    out.capacity = caps;
    late_story(TH_T0);
    cr_assert_eq(out.n_held, 0, "a holdout decision is recorded, not held");
    cr_assert_eq(out.n_triggers, 1);
    cr_assert(out.triggers[0].holdout);
    out.capacity = NULL;
}

Test(outcome, the_rank_offset_falls_as_the_value_rises) {
    cr_assert_eq(md_capacity_rank_offset_ms(0), 999);
    cr_assert_eq(md_capacity_rank_offset_ms(-5), 999);
    cr_assert_eq(md_capacity_rank_offset_ms(1), 500);
    int64_t prev = 1000;
    for (double v = 0.01; v < 5000; v *= 1.7) {
        int64_t o = md_capacity_rank_offset_ms(v);
        cr_assert_leq(o, prev, "value %g", v);
        cr_assert_geq(o, 0);
        prev = o;
    }
    cr_assert_lt(md_capacity_rank_offset_ms(200), md_capacity_rank_offset_ms(20));
}
