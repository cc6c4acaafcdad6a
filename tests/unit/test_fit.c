/* test_fit.c: the logistic fitter against known answers, and the quality
 * measures against numbers worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "logit.h"

/* A small deterministic generator (no global rand state). */
static uint64_t rng_state;
static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double normal(void) {
    double u = uniform(), v = uniform();
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

Test(fit, recovers_known_weights) {
    enum { N = 200000, D = 3 };
    const double b0 = -1.0, truth[D] = {1.5, -2.0, 0.7};
    double *x = malloc(sizeof(double) * N * D), *y = malloc(sizeof(double) * N);
    cr_assert(x && y);
    rng_state = 42;
    for (size_t i = 0; i < N; i++) {
        x[i * D] = normal();
        x[i * D + 1] = uniform();
        x[i * D + 2] = log1p(floor(uniform() * 6)); /* a count, log1p as the models take them */
        double z = b0;
        for (int j = 0; j < D; j++) z += truth[j] * x[i * D + j];
        y[i] = uniform() < md_sigmoid(z) ? 1 : 0;
    }
    double beta[D];
    md_fit_result r = {.beta = beta};
    md_fit_data d = {x, y, NULL, N, D, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1.0, 50, &r));
    cr_assert(r.converged);
    cr_assert_float_eq(r.intercept, b0, 0.05, "intercept %f", r.intercept);
    for (int j = 0; j < D; j++) cr_assert_float_eq(beta[j], truth[j], 0.05, "weight %d: %f against %f", j, beta[j], truth[j]);
    /* The fitted probabilities are calibrated on data of the model's form. */
    double *p = malloc(sizeof(double) * N);
    cr_assert(p);
    for (size_t i = 0; i < N; i++) {
        double z = r.intercept;
        for (int j = 0; j < D; j++) z += beta[j] * x[i * D + j];
        p[i] = md_sigmoid(z);
    }
    md_model_quality q;
    cr_assert(md_model_quality_of(p, y, N, 200, &q));
    cr_assert_eq(q.bins_counted, 10);
    cr_assert_lt(q.max_calibration_error, 0.01, "calibration error %f", q.max_calibration_error);
    cr_assert_gt(q.auc, 0.75);
    free(p);
    free(x);
    free(y);
}

Test(fit, row_weights_count_as_repeated_rows) {
    /* Three rows with weight 2 fit like the same three rows twice. */
    double x1[] = {0, 1, 2}, y1[] = {0, 1, 1}, w1[] = {2, 2, 2};
    double x2[] = {0, 1, 2, 0, 1, 2}, y2[] = {0, 1, 1, 0, 1, 1};
    double b1[1], b2[1];
    md_fit_result r1 = {.beta = b1}, r2 = {.beta = b2};
    md_fit_data d1 = {x1, y1, w1, 3, 1, NULL, NULL}, d2 = {x2, y2, NULL, 6, 1, NULL, NULL};
    cr_assert(md_logit_fit(&d1, 0.5, 50, &r1));
    cr_assert(md_logit_fit(&d2, 0.5, 50, &r2));
    cr_assert_float_eq(b1[0], b2[0], 1e-6);
    cr_assert_float_eq(r1.intercept, r2.intercept, 1e-6);
}

Test(fit, separable_data_stays_finite) {
    enum { N = 1000 };
    double x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = (i - N / 2) / 100.0;
        y[i] = x[i] > 0; /* perfectly separated at 0 */
    }
    double beta[1];
    md_fit_result r = {.beta = beta};
    md_fit_data d = {x, y, NULL, N, 1, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1.0, 100, &r));
    cr_assert(r.converged);
    cr_assert(isfinite(beta[0]) && isfinite(r.intercept));
    cr_assert_gt(beta[0], 5, "the separating direction is still found: %f", beta[0]);
    cr_assert_lt(beta[0], 1000);
    /* A stronger penalty pulls the weight in. */
    double beta2[1];
    md_fit_result r2 = {.beta = beta2};
    cr_assert(md_logit_fit(&d, 100.0, 100, &r2));
    cr_assert_lt(beta2[0], beta[0]);
}

Test(fit, missing_feature_gets_zero_weight) {
    /* Column 1 is never recorded (always 0): the penalty keeps it at 0 and
     * the system solvable; column 0 is still fitted. */
    enum { N = 5000 };
    static double x[N * 2], y[N];
    rng_state = 7;
    for (int i = 0; i < N; i++) {
        x[i * 2] = normal();
        x[i * 2 + 1] = 0;
        y[i] = uniform() < md_sigmoid(0.5 + 1.0 * x[i * 2]);
    }
    double beta[2];
    md_fit_result r = {.beta = beta};
    md_fit_data d = {x, y, NULL, N, 2, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1.0, 50, &r));
    cr_assert(r.converged);
    cr_assert_eq(beta[1], 0.0);
    cr_assert_float_eq(beta[0], 1.0, 0.1);
}

Test(fit, a_prior_keeps_what_the_data_do_not_show) {
    /* Column 0 carries the outcome (true weight 1), column 1 none (y does
     * not depend on it), column 2 is never recorded. Pulled towards a prior
     * of (0.2, 0.8, 0.6): column 0 still goes to what the data say, column 1
     * to 0 by as much as the data outweigh the penalty, and column 2, with
     * no data at all, stays at its prior exactly; towards 0 it stays at 0. */
    enum { N = 20000 };
    static double x[N * 3], y[N];
    rng_state = 11;
    for (int i = 0; i < N; i++) {
        x[i * 3] = normal();
        x[i * 3 + 1] = normal();
        x[i * 3 + 2] = 0;
        y[i] = uniform() < md_sigmoid(-0.5 + 1.0 * x[i * 3]);
    }
    const double prior[3] = {0.2, 0.8, 0.6};
    double beta[3], plain[3];
    md_fit_result r = {.beta = beta}, rp = {.beta = plain};
    md_fit_data d = {x, y, NULL, N, 3, NULL, prior}, d0 = {x, y, NULL, N, 3, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1.0, 50, &r) && r.converged);
    cr_assert_float_eq(beta[0], 1.0, 0.06, "%f", beta[0]);
    cr_assert_float_eq(beta[1], 0.0, 0.06, "%f", beta[1]);
    cr_assert_float_eq(beta[2], 0.6, 1e-9, "%f", beta[2]);
    cr_assert_float_eq(r.intercept, -0.5, 0.06, "%f", r.intercept);
    cr_assert(md_logit_fit(&d0, 1.0, 50, &rp) && rp.converged);
    cr_assert_eq(plain[2], 0.0);
    /* A penalty as large as the data: column 1 is held half way or more
     * towards its prior (its curvature is about N/5 = 4,000 against 8,000),
     * where towards 0 it would be near 0; column 0 is pulled below 1. */
    cr_assert(md_logit_fit(&d, 8000.0, 50, &r) && r.converged);
    cr_assert(beta[1] > 0.4 && beta[1] < 0.8, "%f", beta[1]);
    cr_assert(beta[0] < 0.9 && beta[0] > 0.2, "%f", beta[0]);
    cr_assert_float_eq(beta[2], 0.6, 1e-9, "%f", beta[2]);
    cr_assert(md_logit_fit(&d0, 8000.0, 50, &rp) && rp.converged);
    cr_assert(fabs(plain[1]) < 0.05, "%f", plain[1]);
}

Test(fit, one_class_only_and_empty) {
    double x[] = {1, 2, 3}, y[] = {0, 0, 0}, beta[1];
    md_fit_result r = {.beta = beta};
    md_fit_data d = {x, y, NULL, 3, 1, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1.0, 50, &r));
    cr_assert(isfinite(r.intercept) && r.intercept < -1);
    md_fit_data empty = {x, y, NULL, 0, 1, NULL, NULL};
    cr_assert_not(md_logit_fit(&empty, 1.0, 50, &r));
}

Test(quality, by_hand) {
    /* p:  .1 .2 .3 .4 ; y: 0 1 0 1 -> pairs (pos, neg): (.2,.1) yes, (.2,.3) no,
     * (.4,.1) yes, (.4,.3) yes: AUC 3/4. Brier: (.01+.64+.09+.36)/4 = .275. */
    double p[] = {0.1, 0.2, 0.3, 0.4}, y[] = {0, 1, 0, 1};
    md_model_quality q;
    cr_assert(md_model_quality_of(p, y, 4, 1, &q));
    cr_assert_float_eq(q.auc, 0.75, 1e-12);
    cr_assert_float_eq(q.brier, 0.275, 1e-12);
    double ll = -(log(0.9) + log(0.2) + log(0.7) + log(0.4)) / 4;
    cr_assert_float_eq(q.log_loss, ll, 1e-12);
    cr_assert_eq(q.positives, 2);
}

Test(quality, ties_share_rank_and_deciles_hold_equal_counts) {
    enum { N = 1000 };
    static double p[N], y[N];
    for (int i = 0; i < N; i++) {
        p[i] = 0.5; /* one tie: no ranking at all */
        y[i] = i % 2;
    }
    md_model_quality q;
    cr_assert(md_model_quality_of(p, y, N, 100, &q));
    cr_assert_float_eq(q.auc, 0.5, 1e-12);
    for (int b = 0; b < MD_QUALITY_BINS; b++) cr_assert_eq(q.bins[b].n, N / 10);
    /* Over-confident predictions: deciles show it. */
    for (int i = 0; i < N; i++) {
        p[i] = (double)i / N;
        y[i] = i % 4 == 0; /* 25% everywhere */
    }
    cr_assert(md_model_quality_of(p, y, N, 100, &q));
    cr_assert_float_eq(q.bins[9].mean_p, 0.9495, 1e-9);
    cr_assert_float_eq(q.bins[9].observed, 0.25, 1e-9);
    cr_assert_float_eq(q.max_calibration_error, 0.9495 - 0.25, 1e-9);
    /* In standard errors of a bin of 100 at its mean p: the top decile again. */
    cr_assert_float_eq(q.max_calibration_z, (0.9495 - 0.25) / sqrt(0.9495 * 0.0505 / 100), 1e-9, "%g", q.max_calibration_z);
    /* Bins under the minimum count are not judged. */
    cr_assert(md_model_quality_of(p, y, N, 101, &q));
    cr_assert_eq(q.bins_counted, 0);
    cr_assert(isnan(q.max_calibration_error) && isnan(q.max_calibration_z));
    /* A calibrated model's misses are noise: 1,000 draws at p 0.3 per bin
     * miss by a point or two, under three standard errors (1.45 points). */
    rng_state = 11;
    static double p2[10000], y2[10000];
    for (int i = 0; i < 10000; i++) {
        p2[i] = 0.3;
        y2[i] = uniform() < 0.3;
    }
    cr_assert(md_model_quality_of(p2, y2, 10000, 1, &q));
    cr_assert(q.max_calibration_error > 0 && q.max_calibration_z < 3, "%g points, %g standard errors", 100 * q.max_calibration_error,
              q.max_calibration_z);
    cr_assert_float_eq(q.max_calibration_z, q.max_calibration_error / sqrt(0.3 * 0.7 / 1000), 1e-9);
}

Test(quality, counts_give_the_numbers_the_decisions_give) {
    /* 3,000 decisions whose p takes 100 values (the live report's bins),
     * measured once decision by decision and once from the counts. */
    enum { N = 3000, B = 100 };
    static double p[N], y[N];
    double bp[B], bn[B] = {0}, bpos[B] = {0};
    for (int b = 0; b < B; b++) bp[b] = (b + 0.5) / B;
    rng_state = 7;
    for (int i = 0; i < N; i++) {
        int b = (int)(uniform() * uniform() * B); /* skewed towards low p, as real scores are */
        p[i] = bp[b];
        y[i] = uniform() < p[i] * 0.8;
        bn[b]++;
        bpos[b] += y[i];
    }
    md_model_quality a, c;
    int decile_of[B];
    cr_assert(md_model_quality_of(p, y, N, 1, &a));
    md_model_quality_binned(bp, bn, bpos, B, 1, &c, decile_of);
    cr_assert_eq(c.n, a.n);
    cr_assert_eq(c.positives, a.positives);
    cr_assert_float_eq(c.auc, a.auc, 1e-12, "ties within a value share their rank in both");
    cr_assert_float_eq(c.brier, a.brier, 1e-12);
    cr_assert_float_eq(c.log_loss, a.log_loss, 1e-12);
    /* Deciles take whole groups: each holds about a tenth, in order of p. */
    size_t total = 0;
    for (int k = 0; k < MD_QUALITY_BINS; k++) {
        total += c.bins[k].n;
        cr_assert(c.bins[k].n > N / 10 - 150 && c.bins[k].n < N / 10 + 150, "decile %d holds %zu", k, c.bins[k].n);
        if (k) cr_assert_gt(c.bins[k].mean_p, c.bins[k - 1].mean_p);
    }
    cr_assert_eq(total, N);
    for (int b = 1; b < B; b++) cr_assert_geq(decile_of[b], decile_of[b - 1]);
}

Test(quality, one_large_group_fills_one_decile_and_no_counts_measure_nothing) {
    double bp[3] = {0.1, 0.5, 0.9}, bn[3] = {10, 980, 10}, bpos[3] = {1, 490, 9};
    md_model_quality q;
    int decile_of[3];
    md_model_quality_binned(bp, bn, bpos, 3, 200, &q, decile_of);
    cr_assert_eq(decile_of[0], 0);
    cr_assert_eq(decile_of[1], 5, "its middle, the 500th decision, is in the sixth tenth");
    cr_assert_eq(decile_of[2], 9);
    cr_assert_eq(q.bins_counted, 1, "only the large group has 200");
    cr_assert_float_eq(q.max_calibration_error, 0.0, 1e-12);
    double zero[3] = {0, 0, 0};
    md_model_quality_binned(bp, zero, zero, 3, 1, &q, decile_of);
    cr_assert_eq(q.n, 0);
    cr_assert(isnan(q.auc) && isnan(q.brier) && isnan(q.max_calibration_error));
}

Test(fit, a_known_factor_per_row_is_fitted_through_not_averaged) {
    /* P(y) = m sigma(b0 + b1 x) with m = 0.85^k, k the row's fatigue 0-3:
     * fitted with the factors, the weights come back; fitted without, the
     * intercept takes the average of the factors and the score is too low
     * for fresh rows (the engine would then multiply by m again). */
    enum { N = 200000 };
    static double x[N], y[N], m[N];
    const double b0 = -0.8, b1 = 0.9;
    rng_state = 99;
    for (int i = 0; i < N; i++) {
        x[i] = normal();
        m[i] = pow(0.85, (double)(int)(uniform() * 4));
        y[i] = uniform() < m[i] * md_sigmoid(b0 + b1 * x[i]);
    }
    double beta[1], plain[1];
    md_fit_result r = {.beta = beta}, rp = {.beta = plain};
    md_fit_data d = {x, y, NULL, N, 1, m, NULL}, dp = {x, y, NULL, N, 1, NULL, NULL};
    cr_assert(md_logit_fit(&d, 1e-6, 100, &r));
    cr_assert(r.converged);
    cr_assert_float_eq(r.intercept, b0, 0.05);
    cr_assert_float_eq(beta[0], b1, 0.05);
    cr_assert(md_logit_fit(&dp, 1e-6, 100, &rp));
    cr_assert_lt(rp.intercept, b0 - 0.15, "without the factors the score averages them in: %g", rp.intercept);
    /* All factors 1 is the plain fit. */
    for (int i = 0; i < N; i++) m[i] = 1;
    double ones[1];
    md_fit_result r1 = {.beta = ones};
    cr_assert(md_logit_fit(&d, 1e-6, 100, &r1));
    cr_assert_float_eq(r1.intercept, rp.intercept, 1e-9);
    cr_assert_float_eq(ones[0], plain[0], 1e-9);
}

/* The recalibration map, worked out by hand: 20 decisions, groups of two in
 * order of p; the third group converts less than the second, so the two are
 * pooled. */
Test(recalibration, pools_violators_by_hand) {
    double p[20], y[20];
    for (int i = 0; i < 20; i++) {
        p[19 - i] = 0.05 * i; /* given in descending order: the fit sorts */
        y[19 - i] = 0;
    }
    /* groups (by p): {0, .05} {.1, .15} {.2, .25} ... {.9, .95} */
    y[19 - 2] = y[19 - 3] = 1; /* group 1: rate 1 */
    y[19 - 4] = 1;             /* group 2: rate 0.5 -> pooled with group 1: 0.75 */
    for (int i = 10; i < 20; i++) y[19 - i] = i % 2; /* groups 5-9: rate 0.5 */
    md_recalibration r;
    cr_assert(md_recalibration_fit(p, y, 20, &r));
    /* group 0 (0), pooled 1+2 (0.75), 3 and 4 (0) pooled into it too
     * (0.375 over groups 1-4), then groups 5-9 at 0.5. */
    cr_assert_eq(r.n, 7, "%d points", r.n);
    cr_assert_float_eq(r.p[0], 0.025, 1e-12);
    cr_assert_float_eq(r.rate[0], 0, 1e-12);
    cr_assert_float_eq(r.p[1], (0.1 + 0.15 + 0.2 + 0.25 + 0.3 + 0.35 + 0.4 + 0.45) / 8, 1e-12);
    cr_assert_float_eq(r.rate[1], 3.0 / 8, 1e-12);
    for (int k = 2; k < 7; k++) {
        cr_assert_float_eq(r.rate[k], 0.5, 1e-12);
        cr_assert_gt(r.p[k], r.p[k - 1]);
    }
    /* Through the map: the ends held, linear between points. */
    cr_assert_float_eq(md_recalibration_apply(&r, 0.0), 0, 1e-12);
    cr_assert_float_eq(md_recalibration_apply(&r, 2.0), 0.5, 1e-12);
    double mid = (r.p[0] + r.p[1]) / 2;
    cr_assert_float_eq(md_recalibration_apply(&r, mid), 3.0 / 16, 1e-12);
    /* No decisions: no map, p unchanged. */
    cr_assert(md_recalibration_fit(p, y, 0, &r));
    cr_assert_eq(r.n, 0);
    cr_assert_float_eq(md_recalibration_apply(&r, 0.3), 0.3, 1e-12);
}

/* A score that bends: the truth is p^2, the prediction p. The map fitted on
 * one sample takes another sample's calibration error from over 15 points to
 * under 3 (what is left is at the ends, where the map holds the end groups'
 * rates: the top decile's upper half is mapped to the decile's mean), and
 * keeps its ranking. */
Test(recalibration, straightens_a_bend_out_of_sample) {
    enum { N = 100000 };
    double *p = malloc(sizeof(double) * N), *y = malloc(sizeof(double) * N), *p2 = malloc(sizeof(double) * N),
           *y2 = malloc(sizeof(double) * N);
    cr_assert(p && y && p2 && y2);
    rng_state = 7;
    for (size_t i = 0; i < N; i++) {
        p[i] = uniform();
        y[i] = uniform() < p[i] * p[i] ? 1 : 0;
        p2[i] = uniform();
        y2[i] = uniform() < p2[i] * p2[i] ? 1 : 0;
    }
    md_recalibration r;
    cr_assert(md_recalibration_fit(p, y, N, &r));
    md_model_quality before, after;
    cr_assert(md_model_quality_of(p2, y2, N, 200, &before));
    for (size_t i = 0; i < N; i++) p2[i] = md_recalibration_apply(&r, p2[i]);
    cr_assert(md_model_quality_of(p2, y2, N, 200, &after));
    cr_assert_gt(before.max_calibration_error, 0.15, "%f", before.max_calibration_error);
    cr_assert_lt(after.max_calibration_error, 0.03, "%f", after.max_calibration_error);
    cr_assert_float_eq(after.auc, before.auc, 0.01);
    free(p);
    free(y);
    free(p2);
    free(y2);
}
