/* test_sim_world.c: the simulator's world (sim_world.c): scenario loading,
 * reproducible draws, demand bounds and dynamics, and how calls turn out. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_world.h"

static md_sim_scenario *load_text(const char *json, char *err, size_t errsz) {
    char path[] = "/tmp/momentd-scenario-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    md_sim_scenario *s = md_sim_scenario_load(path, err, errsz);
    unlink(path);
    return s;
}

Test(sim_world, scenario_defaults_and_errors) {
    char err[512];
    md_sim_scenario *s = load_text("{\"name\": \"t\", \"customers\": 50, \"tier_share\": [0.2, 0.3, 0.5]}", err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->customers, 50);
    cr_assert_eq(s->old_gap_days, 45, "the old rule defaults to 45 days");
    cr_assert_float_eq(s->tier_share[2], 0.5, 1e-12);
    md_sim_scenario_destroy(s);
    struct {
        const char *json, *want;
    } bad[] = {
        /* The configuration's loader and its messages (table.c). */
        {"{\"bogus\": 1}", "$.bogus: unknown key in scenario (known keys: name,"},
        {"{\"customers\": 5}", "$.customers: expected an integer in [10, 2000000], got 5"},
        {"{\"customers\": 10.5}", "$.customers: expected an integer, got 10.5"},
        {"{\"tier_share\": [0.5, 0.5, 0.5]}", "tier_share: sums to 1.5, not 1"},
        {"{\"tier_share\": [1, 0]}", "$.tier_share: expected an array of 3 numbers, got an array"},
        {"{\"tier_share\": [1.5, 0, 0]}", "$.tier_share: 1.5 is outside [0, 1]"},
        {"{\"days\": 40, \"warmup_days\": 40}", "warmup_days (40) must be less than days (40)"},
        {"{\"answer_prob\": \"high\"}", "$.answer_prob: expected a number, got \"high\""},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_null(load_text(bad[i].json, err, sizeof(err)), "%s must not load", bad[i].json);
        cr_assert_not_null(strstr(err, bad[i].want), "%s: got \"%s\"", bad[i].json, err);
    }
}

static md_sim_scenario *defaults(void) {
    char err[512];
    md_sim_scenario *s = load_text("{}", err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    return s;
}

/* simulate --population-factor: the population, the call centre and the
 * pusher K times over, nothing else; refused whole past a limit. */
Test(sim_world, a_scenario_scales_its_population_and_capacity_within_its_limits) {
    char err[512];
    md_sim_scenario *s = load_text("{\"customers\": 1000, \"calls_per_day\": 30, \"app_per_day\": 500, \"days\": 90}", err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    cr_assert(md_sim_scenario_scale(s, 1, err, sizeof(err)), "a factor of 1 is the file");
    cr_assert_eq(s->customers, 1000);
    cr_assert(md_sim_scenario_scale(s, 4, err, sizeof(err)), "%s", err);
    cr_assert_eq(s->customers, 4000);
    cr_assert_eq(s->calls_per_day, 120);
    cr_assert_eq(s->app_per_day, 2000);
    cr_assert_eq(s->days, 90, "time is not scaled");
    cr_assert_eq(s->old_gap_days, 45);
    cr_assert(md_sim_scenario_scale(s, 500, err, sizeof(err)), "2,000,000 customers is the limit itself");
    cr_assert_eq(s->customers, 2000000);
    cr_assert_not(md_sim_scenario_scale(s, 2, err, sizeof(err)), "past the customers' limit");
    cr_assert_str_eq(err, "customers 2000000 times 2 is 4000000, over its limit of 2000000 (docs/SCENARIOS.md)");
    cr_assert_eq(s->customers, 2000000, "refused: nothing scaled");
    cr_assert_eq(s->calls_per_day, 60000);
    md_sim_scenario_destroy(s);
    s = load_text("{\"customers\": 10, \"calls_per_day\": 600000}", err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    cr_assert_not(md_sim_scenario_scale(s, 2, err, sizeof(err)), "past the calls' limit, the customers within theirs");
    cr_assert_not_null(strstr(err, "calls_per_day 600000 times 2 is 1200000, over its limit of 1000000"), "%s", err);
    cr_assert_eq(s->customers, 10, "refused: the customers unscaled too");
    md_sim_scenario_destroy(s);
}

Test(sim_world, draws_are_reproducible_and_independent) {
    cr_assert_eq(md_sim_uniform(7, 3, 10, 1), md_sim_uniform(7, 3, 10, 1));
    cr_assert_neq(md_sim_uniform(7, 3, 10, 1), md_sim_uniform(8, 3, 10, 1), "another seed");
    cr_assert_neq(md_sim_uniform(7, 3, 10, 1), md_sim_uniform(7, 4, 10, 1), "another customer");
    cr_assert_neq(md_sim_uniform(7, 3, 10, 1), md_sim_uniform(7, 3, 11, 1), "another day");
    cr_assert_neq(md_sim_uniform(7, 3, 10, 1), md_sim_uniform(7, 3, 10, 2), "another purpose");
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = md_sim_uniform(1, i, 0, 1);
        cr_assert(u >= 0 && u < 1);
        sum += u;
    }
    cr_assert_float_eq(sum / 100000, 0.5, 0.01, "uniform: mean %g", sum / 100000);
}

Test(sim_world, demand_is_bounded_and_drops_after_a_purchase) {
    md_sim_scenario *s = defaults();
    md_sim_customer c;
    double hi = 0;
    for (int64_t i = 0; i < 200; i++) {
        md_sim_customer_init(s, 1, i, &c);
        for (int64_t d = 0; d < 365; d++) {
            double x = md_sim_demand(s, 1, i, &c, d);
            cr_assert(x >= 0 && x <= 1, "demand %g out of [0, 1]", x);
            if (x > hi) hi = x;
        }
    }
    cr_assert_gt(hi, 0.6, "episodes lift demand high at times (%g)", hi);
    md_sim_customer_init(s, 1, 5, &c);
    c.episode_end = 100; /* in an episode */
    double before = md_sim_demand(s, 1, 5, &c, 50);
    c.satisfied_until = 80;
    double after = md_sim_demand(s, 1, 5, &c, 50);
    cr_assert_float_eq(after, before * s->satisfied_factor, 1e-9, "satisfied: %g -> %g", before, after);
    md_sim_scenario_destroy(s);
}

Test(sim_world, behaviour_follows_demand_imperfectly) {
    md_sim_scenario *s = defaults();
    md_sim_customer c;
    md_sim_customer_init(s, 1, 0, &c);
    double views[2] = {0, 0}, balance[2] = {0, 0};
    int calls[2] = {0, 0}, bill_calls[2] = {0, 0}, bills[2] = {0, 0};
    for (int64_t d = 0; d < 20000; d++)
        for (int k = 0; k < 2; k++) {
            md_sim_day b;
            md_sim_behave(s, 1, k, &c, d, k ? 0.9 : 0.0, &b);
            views[k] += b.views;
            calls[k] += b.call;
            if (b.bill) {
                bills[k]++;
                bill_calls[k] += b.bill_call;
                balance[k] += b.balance_after;
            } else {
                cr_assert_not(b.bill_call, "bill inquiries come on bill days");
            }
        }
    cr_assert_gt(bills[0], 600, "a bill a month");
    cr_assert_lt(balance[1] / bills[1], balance[0] / bills[0] / 3, "a cash squeeze shows as a low balance");
    cr_assert_lt(bill_calls[0], bill_calls[1], "bill inquiries rise with demand");
    cr_assert_float_eq(views[0] / 20000, s->view_rate_noise, 0.01, "views at demand 0: noise only (%g)", views[0] / 20000);
    cr_assert_float_eq(views[1] / 20000, 0.9 * s->view_rate_full + s->view_rate_noise, 0.05, "at demand 0.9 (%g)", views[1] / 20000);
    cr_assert_lt(calls[0], calls[1], "inquiries rise with demand");
    md_sim_scenario_destroy(s);
}

Test(sim_world, calls_convert_with_demand_and_tire) {
    md_sim_scenario *s = defaults();
    int conv[3] = {0, 0, 0}, answered[2] = {0, 0}, complaints = 0;
    for (int64_t i = 0; i < 20000; i++) {
        double amount;
        md_sim_result r0 = md_sim_call(s, 1, i, 1, 0.0, 0, &amount);
        md_sim_result r1 = md_sim_call(s, 1, i, 1, 0.5, 0, &amount);
        md_sim_result r2 = md_sim_call(s, 1, i, 1, 0.9, 0, &amount);
        if (r2 == MD_SIM_CONVERTED) cr_assert_gt(amount, 0);
        conv[0] += r0 == MD_SIM_CONVERTED;
        conv[1] += r1 == MD_SIM_CONVERTED;
        conv[2] += r2 == MD_SIM_CONVERTED;
        complaints += r0 == MD_SIM_COMPLAINT;
        answered[0] += md_sim_call(s, 1, i, 2, 0.5, 0, &amount) != MD_SIM_NO_ANSWER;
        answered[1] += md_sim_call(s, 1, i, 2, 0.5, 3, &amount) != MD_SIM_NO_ANSWER;
    }
    cr_assert_eq(conv[0], 0, "nobody buys at demand 0");
    cr_assert(conv[1] < conv[2], "more buy at higher demand: %d < %d", conv[1], conv[2]);
    cr_assert_gt(complaints, 0, "unwanted calls draw complaints");
    cr_assert_float_eq((double)answered[1] / answered[0], pow(1 - s->fatigue_penalty, 3), 0.03, "three recent calls tire: %g",
                       (double)answered[1] / answered[0]);
    md_sim_scenario_destroy(s);
}

/* The ceiling policy ranks calls by md_sim_call_expected_amount: it must be
 * what md_sim_call pays on average, in peaks, in troughs (where complaints
 * and opt-outs come first) and for tired customers. */
Test(sim_world, a_calls_expected_amount_is_what_calls_pay_on_average) {
    md_sim_scenario *s = defaults();
    struct {
        double demand;
        int recent;
    } cases[] = {{0.9, 0}, {0.5, 0}, {0.5, 2}, {0.1, 0}, {0.0, 0}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        double sum = 0;
        const int n = 200000;
        for (int64_t i = 0; i < n; i++) {
            double amount;
            md_sim_call(s, 3, i, 5, cases[c].demand, cases[c].recent, &amount);
            sum += amount;
        }
        double want = md_sim_call_expected_amount(s, cases[c].demand, cases[c].recent), got = sum / n;
        /* 200,000 calls: the mean's standard error is under 1.5% of it at these rates. */
        if (want == 0) cr_assert_eq(got, 0, "demand %g: nothing to buy, nothing paid", cases[c].demand);
        else cr_assert(fabs(got - want) < 0.05 * want, "demand %g, %d recent: expected %g yuan a call, the world paid %g on average",
                       cases[c].demand, cases[c].recent, want, got);
    }
    cr_assert_gt(md_sim_call_expected_amount(s, 0.9, 0), md_sim_call_expected_amount(s, 0.5, 0), "worth more at a peak");
    cr_assert_gt(md_sim_call_expected_amount(s, 0.5, 0), md_sim_call_expected_amount(s, 0.5, 2), "and less to a tired customer");
    md_sim_scenario_destroy(s);
}

Test(sim_world, app_messages_open_less_with_fatigue_and_never_complain) {
    md_sim_scenario *s = defaults();
    int opened[2] = {0, 0}, conv[2] = {0, 0}, complaints = 0;
    for (int64_t i = 0; i < 20000; i++) {
        double amount;
        md_sim_result r = md_sim_push(s, 1, i, 1, 0.8, 0, &amount);
        md_sim_result t = md_sim_push(s, 1, i, 1, 0.8, 2, &amount);
        md_sim_result low = md_sim_push(s, 1, i, 2, 0.0, 0, &amount);
        opened[0] += r != MD_SIM_NOT_OPENED;
        opened[1] += t != MD_SIM_NOT_OPENED;
        conv[0] += r == MD_SIM_CONVERTED;
        conv[1] += low == MD_SIM_CONVERTED;
        complaints += r == MD_SIM_COMPLAINT || low == MD_SIM_COMPLAINT;
        cr_assert(r == MD_SIM_NOT_OPENED || r == MD_SIM_OPENED || r == MD_SIM_CONVERTED || r == MD_SIM_OPT_OUT);
    }
    cr_assert_float_eq(opened[0] / 20000.0, s->app_open_prob, 0.02, "opened: %g", opened[0] / 20000.0);
    cr_assert_float_eq((double)opened[1] / opened[0], pow(1 - s->fatigue_penalty, 2), 0.04, "two recent contacts tire");
    cr_assert_gt(conv[0], 0);
    cr_assert_eq(conv[1], 0, "nobody buys at demand 0");
    cr_assert_eq(complaints, 0, "an app message draws no complaint");
    md_sim_scenario_destroy(s);
}
