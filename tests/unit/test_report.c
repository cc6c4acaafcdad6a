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
    rep = md_report_new(cfg, 20758, 20787); /* 2026-11-01 .. 2026-11-30 */
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
    cr_assert_null(md_report_new(cfg, 20787, 20758), "to before from");
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
