/* test_report.c: funnel counts add up, rates and uplift are derived exactly,
 * and fields the configuration does not know are left out, not guessed. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "report.h"

static md_config *cfg;
static md_report *rep;

static void setup(void) {
    cfg = th_default_config();
    rep = md_report_new(cfg, 20758, 20787, INT64_MAX); /* 2026-11-01 .. 2026-11-30 */
    cr_assert(rep);
}
static void teardown(void) {
    md_report_destroy(rep);
    md_config_destroy(cfg);
}
TestSuite(report, .init = setup, .fini = teardown);

enum { PREPAY = 0, OUTBOUND = 0, IN_APP = 1 };

Test(report, days_add_up_per_campaign_channel_and_stage) {
    /* Two days of prepay_wallet's funnel hash. */
    md_report_add(rep, PREPAY, 0, "outbound_call:triggered", "10");
    md_report_add(rep, PREPAY, 0, "outbound_call:no_answer", "4");
    md_report_add(rep, PREPAY, 0, "in_app:triggered", "7");
    md_report_add(rep, PREPAY, 0, "outbound_call:triggered", "5");
    md_report_add(rep, PREPAY, 0, "outbound_call:reached", "6");
    cr_assert_eq(md_report_count(rep, PREPAY, OUTBOUND, MD_STAGE_TRIGGERED), 15);
    cr_assert_eq(md_report_count(rep, PREPAY, OUTBOUND, MD_STAGE_NO_ANSWER), 4);
    cr_assert_eq(md_report_count(rep, PREPAY, IN_APP, MD_STAGE_TRIGGERED), 7);
    cr_assert_eq(md_report_count(rep, 1, OUTBOUND, MD_STAGE_TRIGGERED), 0, "the other campaign is untouched");
    cr_assert_eq(md_report_ignored(rep), 0);
}

Test(report, unknown_channels_stages_and_values_are_left_out) {
    md_report_add(rep, PREPAY, 0, "fax:triggered", "3");
    md_report_add(rep, PREPAY, 0, "outbound_call:teleported", "3");
    md_report_add(rep, PREPAY, 0, "outbound_call:triggered", "3x");
    md_report_add(rep, PREPAY, 0, "no-colon", "3");
    md_report_add(rep, 7, 0, "outbound_call:triggered", "3");
    cr_assert_eq(md_report_ignored(rep), 5);
    cr_assert_eq(md_report_count(rep, PREPAY, OUTBOUND, MD_STAGE_TRIGGERED), 0);
}

Test(report, uplift_and_its_interval_by_hand) {
    /* Treated: 200 triggers over two channels, 30 conversions (15%).
     * Holdout: 100 triggers, 5 conversions (5%). */
    md_report_add(rep, PREPAY, 0, "outbound_call:triggered", "120");
    md_report_add(rep, PREPAY, 0, "in_app:triggered", "80");
    md_report_add(rep, PREPAY, 0, "outbound_call:conversions", "20");
    md_report_add(rep, PREPAY, 0, "in_app:conversions", "10");
    md_report_add(rep, PREPAY, 0, "holdout:triggered", "100");
    md_report_add(rep, PREPAY, 0, "holdout:conversions", "5");
    md_uplift u;
    md_report_uplift(rep, PREPAY, &u);
    cr_assert_eq(u.treated_triggers, 200);
    cr_assert_eq(u.treated_conversions, 30);
    cr_assert_eq(u.holdout_triggers, 100);
    cr_assert_eq(u.holdout_conversions, 5);
    cr_assert(u.has_uplift);
    cr_assert_float_eq(u.uplift_pp, 10.0, 1e-9);
    /* Worked by hand: se = sqrt(.15*.85/200 + .05*.95/100) = 0.0333542 (3.33542
     * points), 1.96 se = 6.53742 points. */
    cr_assert_float_eq(u.ci_low_pp, 3.46258, 1e-4);
    cr_assert_float_eq(u.ci_high_pp, 16.53742, 1e-4);
}

Test(report, days_are_named_and_series_kept_per_day) {
    cr_assert_eq(md_report_days(rep), 30);
    cr_assert_str_eq(md_report_day(rep, 0), "2026-11-01");
    cr_assert_str_eq(md_report_day(rep, 29), "2026-11-30");
    md_report_add(rep, PREPAY, 3, "in_app:triggered", "4");
    md_report_add(rep, PREPAY, 3, "holdout:conversions", "1");
    md_report_add(rep, PREPAY, 30, "in_app:triggered", "4");
    cr_assert_eq(md_report_day_count(rep, PREPAY, 3, false, MD_STAGE_TRIGGERED), 4);
    cr_assert_eq(md_report_day_count(rep, PREPAY, 3, true, MD_STAGE_CONVERSIONS), 1);
    cr_assert_eq(md_report_day_count(rep, PREPAY, 4, false, MD_STAGE_TRIGGERED), 0);
    cr_assert_eq(md_report_ignored(rep), 1, "a day outside the range is left out");
    cr_assert_null(md_report_new(cfg, 20787, 20758, INT64_MAX), "to before from");
}

Test(report, no_uplift_without_both_groups) {
    md_report_add(rep, PREPAY, 0, "outbound_call:triggered", "10");
    md_uplift u;
    md_report_uplift(rep, PREPAY, &u);
    cr_assert_not(u.has_uplift, "a holdout group with no trigger measures nothing");
    cr_assert_float_eq(u.holdout_rate, 0, 1e-12);
}

Test(report, policy_arms_side_by_side) {
    /* bill_instalment's default arms: adaptive, fixed45. */
    md_report_add(rep, 1, 0, "arm.adaptive:triggered", "40");
    md_report_add(rep, 1, 0, "arm.adaptive:conversions", "6");
    md_report_add(rep, 1, 2, "arm.fixed45:triggered", "50");
    md_report_add(rep, 1, 2, "arm.fixed45:complaint", "3");
    md_report_add(rep, 1, 2, "arm.teleport:triggered", "9");
    cr_assert_eq(md_report_arm_count(rep, 1, 0, MD_STAGE_TRIGGERED), 40);
    cr_assert_eq(md_report_arm_count(rep, 1, 0, MD_STAGE_CONVERSIONS), 6);
    cr_assert_eq(md_report_arm_count(rep, 1, 1, MD_STAGE_TRIGGERED), 50);
    cr_assert_eq(md_report_arm_count(rep, 1, 1, MD_STAGE_COMPLAINT), 3);
    cr_assert_eq(md_report_ignored(rep), 1, "an arm the configuration does not have");
    cr_assert_eq(md_report_count(rep, 1, OUTBOUND, MD_STAGE_TRIGGERED), 0, "arm counters are not channel counters");
}

Test(report, the_timing_table_by_gap_with_wilson_intervals_by_hand) {
    md_report_add(rep, 1, 0, "gap.first:triggered", "60");
    md_report_add(rep, 1, 3, "gap.first:triggered", "40");
    md_report_add(rep, 1, 3, "gap.first:released", "10");
    md_report_add(rep, 1, 4, "gap.first:reached", "50");
    md_report_add(rep, 1, 4, "gap.first:no_answer", "30");
    md_report_add(rep, 1, 4, "gap.first:complaint", "2");
    md_report_add(rep, 1, 5, "gap.first:conversions", "19");
    md_report_add(rep, 1, 6, "gap.first:conversions", "-1"); /* a released contact's conversion taken back */
    md_report_add(rep, 1, 5, "gap.30-44:triggered", "4");
    md_report_add(rep, 1, 5, "gap.30-44:released", "4");
    md_report_add(rep, 1, 5, "gap.30-44:conversions", "1");
    md_report_add(rep, 1, 6, "gap.45+:triggered", "9");  /* a bucket of no table */
    md_report_add(rep, 1, 6, "gap.first:teleport", "9"); /* a stage of none */
    cr_assert_eq(md_report_ignored(rep), 2);
    md_gap_row g;
    md_report_gap(rep, 1, 0, &g);
    cr_assert_eq(g.moments, 100);
    cr_assert_eq(g.not_made, 10);
    cr_assert_eq(g.contacts, 90);
    cr_assert_eq(g.reached, 50);
    cr_assert_eq(g.no_answer, 30);
    cr_assert_eq(g.complaints, 2);
    cr_assert_eq(g.conversions, 18);
    cr_assert(g.has_rate);
    cr_assert_float_eq(g.rate, 0.2, 1e-12);
    /* Wilson, z 1.96, n 90, p 0.2: centre 0.2122811, half-width 0.0818582. */
    cr_assert_float_eq(g.rate_low, 0.1304230, 1e-6, "%.7f", g.rate_low);
    cr_assert_float_eq(g.rate_high, 0.2941393, 1e-6, "%.7f", g.rate_high);
    md_report_gap(rep, 1, md_gap_bucket(35), &g);
    cr_assert_eq(g.moments, 4);
    cr_assert_eq(g.contacts, 0, "none made");
    cr_assert_eq(g.conversions, 0, "never more conversions than contacts");
    cr_assert(!g.has_rate, "no rate without a contact");
    md_report_gap(rep, 0, 0, &g);
    cr_assert_eq(g.moments, 0, "the other campaign's table is apart");
    cr_assert_eq(md_report_count(rep, 1, OUTBOUND, MD_STAGE_TRIGGERED), 0, "timing counters are not channel counters");
    /* Both outputs carry it; the text only the buckets with moments. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    md_report_print_json(rep, f);
    fclose(f);
    cr_assert(strstr(buf, "\"timing\":[{\"gap_days\":\"first\",\"moments\":100,\"not_made\":10,\"contacts\":90,\"reached\":50"), "%s", buf);
    free(buf);
    f = open_memstream(&buf, &len);
    md_report_print_text(rep, f);
    fclose(f);
    cr_assert(strstr(buf, "    first           90        10        50        30          2          18  0.200 (0.130 .. 0.294)"), "%s", buf);
    cr_assert(!strstr(buf, "    7-13 "), "no row for a gap without moments");
    free(buf);
}

Test(report, every_outcome_status_is_a_funnel_stage) {
    /* A status added to event.h but not to the report would be counted as
     * an unknown field and left out of every funnel. */
    for (int st = 0; st < MD_OUTCOME_STATUS_COUNT; st++) {
        bool found = false;
        for (int s = 0; s < MD_STAGE_COUNT; s++)
            if (strcmp(md_stage_name((md_stage)s), md_outcome_status_name((md_outcome_status)st)) == 0) found = true;
        cr_assert(found, "status %s has no funnel stage", md_outcome_status_name((md_outcome_status)st));
    }
}

/* ---- model quality from the live counters ---- */

#define V "prepay_wallet-2026.11.1"

Test(report, model_quality_from_live_counts_by_version_with_final_labels_only) {
    /* Days 0-19 (2026-11-01 .. 20) have final labels: prepay_wallet's
     * 30-day window after each of them has closed at now; day 20 has not. */
    md_report_destroy(rep);
    int64_t day_ms = 86400000, now = (20758 + 20) * day_ms - 8 * 3600000 + 30 * day_ms;
    rep = md_report_new(cfg, 20758, 20787, now);
    md_report_add(rep, PREPAY, 0, "q.treated.700." V ":triggered", "300");
    md_report_add(rep, PREPAY, 0, "q.treated.700." V ":conversions", "210");
    md_report_add(rep, PREPAY, 19, "q.treated.200." V ":triggered", "300");
    md_report_add(rep, PREPAY, 19, "q.treated.200." V ":conversions", "30");
    md_report_add(rep, PREPAY, 20, "q.treated.500." V ":triggered", "10"); /* window still open */
    md_report_add(rep, PREPAY, 0, "q.holdout.700." V ":triggered", "100");
    md_report_add(rep, PREPAY, 0, "q.holdout.700." V ":conversions", "20");
    md_report_add(rep, PREPAY, 2, "q.treated.400.prepay_wallet-old:triggered", "5");
    const char *bad[] = {"q.treated.70." V ":triggered", "q.other.700." V ":triggered", "q.treated.700.:triggered", "q.treated.700." V ":sent",
                         "q.treated.7x0." V ":triggered"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) md_report_add(rep, PREPAY, 0, bad[i], "1");
    cr_assert_eq(md_report_ignored(rep), 5);
    cr_assert_eq(md_report_count(rep, PREPAY, OUTBOUND, MD_STAGE_TRIGGERED), 0, "model counters are not the funnel's");
    cr_assert_eq(md_report_n_models(rep), 2);
    md_model_report m;
    cr_assert(md_report_model_of(rep, PREPAY, V, &m));
    cr_assert(m.current);
    cr_assert_eq(m.q.n, 600);
    cr_assert_eq(m.q.positives, 240);
    cr_assert_eq(m.pending, 10);
    cr_assert_str_eq(m.final_through, "2026-11-20");
    /* By hand: positives at .7 beat the 270 negatives at .2, tie with
     * the 90 at .7; those at .2 tie with the 270: (56700 + 9450 + 4050) / 86400. */
    cr_assert_float_eq(m.q.auc, 70200.0 / 86400.0, 1e-12);
    cr_assert_float_eq(m.q.brier, (210 * 0.3 * 0.3 + 90 * 0.7 * 0.7 + 30 * 0.8 * 0.8 + 270 * 0.2 * 0.2) / 600, 1e-12);
    cr_assert_eq(m.q.bins[2].n, 300);
    cr_assert_float_eq(m.q.bins[2].mean_p, 0.2, 1e-12);
    cr_assert_float_eq(m.q.bins[2].observed, 0.1, 1e-12);
    cr_assert_eq(m.q.bins[7].n, 300);
    cr_assert_eq(m.q.bins_counted, 2, "two deciles of 200 or more (learning.calibration_min)");
    cr_assert_float_eq(m.q.max_calibration_error, 0.1, 1e-12);
    cr_assert_float_eq(m.q.max_calibration_z, 0.1 / sqrt(0.2 * 0.8 / 300), 1e-9, "decile 3: 10 points over 300 decisions at p .2");
    cr_assert(m.drifting, "10 points is above learning.calibration_bound 0.05");
    cr_assert_eq(m.holdout_decisions, 100);
    cr_assert_eq(m.holdout_n[7], 100, "the holdout decisions of p .7 go with the treated decile of p .7");
    cr_assert_eq(m.holdout_conv[7], 20);
    cr_assert(md_report_model_of(rep, PREPAY, "prepay_wallet-old", &m));
    cr_assert_not(m.current);
    cr_assert_eq(m.q.n, 5);
    cr_assert_not(m.drifting, "no decile of 200: not judged");
    cr_assert_not(md_report_model_of(rep, 1, V, &m), "another campaign's");
    /* The JSON carries the same. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    md_report_print_json(rep, f);
    fclose(f);
    cr_assert(strstr(buf, "\"models\":[{\"version\":\"" V "\",\"running\":true,\"labels_final_through\":\"2026-11-20\",\"decisions\":600,"
                          "\"conversions\":240,\"pending\":10,"),
              "%s", buf);
    cr_assert(strstr(buf, "\"calibration_error\":0.1,\"calibration_z\":4.33013,\"deciles_counted\":2,\"decile_min_decisions\":200,\"drifting\":true"),
              "%s", buf);
    free(buf);
}

Test(report, a_release_after_the_trigger_leaves_no_negative_count) {
    md_report_add(rep, PREPAY, 0, "q.treated.700." V ":triggered", "-1"); /* the trigger's own +1 was lost */
    md_report_add(rep, PREPAY, 0, "q.treated.700." V ":conversions", "1");
    md_model_report m;
    cr_assert(md_report_model_of(rep, PREPAY, V, &m));
    cr_assert_eq(m.q.n, 0);
    cr_assert_eq(m.q.positives, 0);
}

Test(report, arms_are_compared_with_the_first_with_intervals_by_hand) {
    /* bill_instalment's arms: adaptive 20 of 100 contacts converted, fixed45 10 of 100. */
    md_report_add(rep, 1, 0, "arm.adaptive:triggered", "100");
    md_report_add(rep, 1, 0, "arm.adaptive:conversions", "20");
    md_report_add(rep, 1, 0, "arm.fixed45:triggered", "100");
    md_report_add(rep, 1, 0, "arm.fixed45:conversions", "10");
    md_arm_comparison a, b;
    md_report_arm_vs_first(rep, 1, 0, &a);
    md_report_arm_vs_first(rep, 1, 1, &b);
    cr_assert(a.has_rate && !a.has_difference, "the first arm is what the others are compared with");
    cr_assert_float_eq(a.rate, 0.2, 1e-12);
    cr_assert_float_eq(a.rate_low, 0.2 - 1.96 * 0.04, 1e-12);
    cr_assert(b.has_difference);
    /* se = sqrt(.1 x .9 / 100 + .2 x .8 / 100) = 0.05 */
    cr_assert_float_eq(b.difference_pp, -10, 1e-9);
    cr_assert_float_eq(b.low_pp, -10 - 1.96 * 5, 1e-9);
    cr_assert_float_eq(b.high_pp, -10 + 1.96 * 5, 1e-9);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    md_report_print_json(rep, f);
    fclose(f);
    cr_assert(strstr(buf, "\"model_version\":\"bill_instalment-2026.11.1\",\"conversions_per_contact_ci95\":[0.1216,0.2784],"
                          "\"vs_first_arm_pp\":null"), "%s", buf);
    cr_assert(strstr(buf, "\"vs_first_arm_pp\":-10,\"vs_first_arm_ci95_pp\":[-19.8,-0.2]"), "%s", buf);
    free(buf);
}
