/* logit.h (private to the core): fitting a logistic model to recorded
 * decisions, and measuring how good a model's probabilities are.
 *
 * Pure arithmetic: rows in, weights and numbers out. What a row is (a
 * decision's features, transformed as the campaign's model transforms them)
 * is decided by the caller (src/cmd/fit.c); nothing here knows a campaign. */
#ifndef MOMENTD_LOGIT_H
#define MOMENTD_LOGIT_H

#include <stdbool.h>
#include <stddef.h>

/* n rows of d columns, row-major; y in {0, 1}; w the rows' weights (NULL:
 * all 1). The intercept is not a column: it is fitted apart, unpenalised.
 * m (NULL: all 1) is each row's known factor in (0, 1]: P(y = 1) =
 * m sigma(z), as the engine's p_contact multiplies the model's score by
 * (1 - fatigue_penalty)^fatigue; fitted this way the model's score is what
 * the engine multiplies, not an average that already holds the fatigue. */
typedef struct md_fit_data {
    const double *x;
    const double *y;
    const double *w;
    size_t n, d;
    const double *m;
    /* d weights the penalty pulls towards (NULL: 0): the model in use, so
     * that what the outcomes do not show stays as it was. */
    const double *prior;
} md_fit_data;

typedef struct md_fit_result {
    double intercept;
    double *beta;      /* d weights, owned by the caller */
    int iterations;
    bool converged;
    double loss;       /* the penalised negative log-likelihood at the result */
} md_fit_result;

/* L2-regularised logistic regression by Newton's method (iteratively
 * reweighted least squares; Fisher scoring when rows have a factor m) with
 * step halving:
 *     minimise  sum_i w_i logloss(y_i, m_i sigma(b0 + x_i . beta)) + l2 / 2 |beta - prior|^2
 * l2 > 0 keeps the weights finite on separable data and a column that is
 * always 0 (a missing feature) at its prior (0 without one). res->beta
 * must hold d doubles.
 * Returns false (res untouched past beta) when n is 0 or d is over
 * MD_FIT_MAX_D. */
#define MD_FIT_MAX_D 64
bool md_logit_fit(const md_fit_data *data, double l2, int max_iter, md_fit_result *res);

double md_sigmoid(double z);

/* How good probabilities are against what happened. */
#define MD_QUALITY_BINS 10
typedef struct md_quality_bin {
    size_t n;
    double mean_p;   /* mean predicted probability in the bin */
    double observed; /* share of positives in the bin */
} md_quality_bin;

typedef struct md_model_quality {
    size_t n;
    size_t positives;
    double auc;     /* NaN when only one class is present */
    double brier;
    double log_loss;
    md_quality_bin bins[MD_QUALITY_BINS]; /* deciles of predicted p, lowest first */
    /* Largest |observed - mean_p| over the bins holding at least min_bin
     * decisions, and how many bins did; NaN when none did. */
    double max_calibration_error;
    int bins_counted;
    /* The largest of the same misses in standard errors, were the model
     * right (binomial at the bin's mean p): what noise alone makes of a
     * bin of n decisions. Of ten bins of a calibrated model, one is beyond
     * 2 about a third of the time and beyond 3 about 3% of the time, so a
     * miss of 5 points in a bin of 200 at p 0.25 (1.6) is noise, and one of
     * 5 points in a bin of 2,000 (5.2) is not. NaN when no bin counted. */
    double max_calibration_z;
} md_model_quality;

/* Fills q for n predictions p[i] of outcomes y[i] (0/1). The deciles hold
 * equal counts in order of p. Returns false when out of memory. */
bool md_model_quality_of(const double *p, const double *y, size_t n, size_t min_bin, md_model_quality *q);

/* The same from counts: nb groups of decisions that share one predicted
 * p[b] (ascending), n[b] decisions of which pos[b] converted (the live
 * report's p in thousandths). Ties share their rank as above; a decile
 * takes whole groups, each where the middle of the group falls in the
 * cumulative count, so deciles are only as even as the groups allow (some
 * may stay empty). decile_of (NULL or nb ints) receives each group's decile. */
void md_model_quality_binned(const double *p, const double *n, const double *pos, size_t nb, size_t min_bin, md_model_quality *q,
                             int *decile_of);

/* A monotone map of predicted probabilities onto observed rates, fitted on
 * decisions whose outcomes are known: the decisions in order of p, in
 * MD_RECAL_BINS groups of equal count, each group at its mean p and its
 * observed rate, neighbours pooled (by their counts) wherever a rate falls
 * below the one before (pool adjacent violators: isotonic regression on the
 * groups). What a score that bends against its features would need to say
 * what it means, without changing whom it ranks first. */
#define MD_RECAL_BINS MD_QUALITY_BINS
typedef struct md_recalibration {
    int n; /* points, 1 to MD_RECAL_BINS after pooling; 0: no decisions */
    double p[MD_RECAL_BINS];    /* ascending */
    double rate[MD_RECAL_BINS]; /* non-decreasing */
} md_recalibration;

/* Fits r to n predictions p[i] with outcomes y[i] (0/1). Returns false when
 * out of memory (r->n then 0). */
bool md_recalibration_fit(const double *p, const double *y, size_t n, md_recalibration *r);

/* p through the map: linear between its points, the end points' rates
 * beyond them (a map fitted on p from 0.2 to 0.3 says nothing of 0.5); p
 * itself when the map has no point. */
double md_recalibration_apply(const md_recalibration *r, double p);

#endif
