/* logit.c: logistic regression and model quality (logit.h). */
#include "logit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double md_sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* log(1 + e^z) without overflow. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

static double row_weight(const md_fit_data *d, size_t i) { return d->w ? d->w[i] : 1.0; }
static double row_factor(const md_fit_data *d, size_t i) { return d->m ? d->m[i] : 1.0; }

/* A row's loss at z with factor f: -log(f s) if it converted, else
 * -log(1 - f s), s = sigma(z); f = 1 is the plain logistic loss. */
static double row_loss(double z, double y, double f) {
    if (f >= 1) return softplus(z) - y * z;
    if (y > 0.5) return softplus(-z) - log(f);
    return -log1p(-f * md_sigmoid(z));
}

static double linear(const md_fit_data *d, size_t i, double b0, const double *beta) {
    double z = b0;
    const double *xi = d->x + i * d->d;
    for (size_t j = 0; j < d->d; j++) z += xi[j] * beta[j];
    return z;
}

/* How far weight j is from where the penalty pulls it. */
static double off_prior(const md_fit_data *d, const double *beta, size_t j) { return beta[j] - (d->prior ? d->prior[j] : 0); }

static double penalised_loss(const md_fit_data *d, double l2, double b0, const double *beta) {
    double loss = 0;
    for (size_t i = 0; i < d->n; i++) {
        loss += row_weight(d, i) * row_loss(linear(d, i, b0, beta), d->y[i], row_factor(d, i));
    }
    for (size_t j = 0; j < d->d; j++) loss += 0.5 * l2 * off_prior(d, beta, j) * off_prior(d, beta, j);
    return loss;
}

/* Solves A x = b for a symmetric positive definite m x m matrix A (row
 * major, overwritten by its Cholesky factor). False when A is not positive
 * definite. */
static bool cholesky_solve(double *a, double *b, size_t m) {
    for (size_t j = 0; j < m; j++) {
        double s = a[j * m + j];
        for (size_t k = 0; k < j; k++) s -= a[j * m + k] * a[j * m + k];
        if (!(s > 0)) return false;
        double l = sqrt(s);
        a[j * m + j] = l;
        for (size_t i = j + 1; i < m; i++) {
            double t = a[i * m + j];
            for (size_t k = 0; k < j; k++) t -= a[i * m + k] * a[j * m + k];
            a[i * m + j] = t / l;
        }
    }
    for (size_t i = 0; i < m; i++) { /* L y = b */
        double t = b[i];
        for (size_t k = 0; k < i; k++) t -= a[i * m + k] * b[k];
        b[i] = t / a[i * m + i];
    }
    for (size_t i = m; i-- > 0;) { /* L' x = y */
        double t = b[i];
        for (size_t k = i + 1; k < m; k++) t -= a[k * m + i] * b[k];
        b[i] = t / a[i * m + i];
    }
    return true;
}

bool md_logit_fit(const md_fit_data *d, double l2, int max_iter, md_fit_result *res) {
    if (d->n == 0 || d->d > MD_FIT_MAX_D) return false;
    const size_t m = d->d + 1; /* the intercept first */
    double h[(MD_FIT_MAX_D + 1) * (MD_FIT_MAX_D + 1)], g[MD_FIT_MAX_D + 1], step[MD_FIT_MAX_D + 1];
    double trial[MD_FIT_MAX_D];
    double *beta = res->beta;
    memset(beta, 0, d->d * sizeof(double));
    /* Start from the base rate: the intercept alone is then already right. */
    double wsum = 0, ysum = 0;
    for (size_t i = 0; i < d->n; i++) {
        wsum += row_weight(d, i);
        ysum += row_weight(d, i) * d->y[i];
    }
    double base = (ysum + 0.5) / (wsum + 1.0);
    double b0 = log(base / (1 - base));
    double loss = penalised_loss(d, l2, b0, beta);
    res->converged = false;
    int it = 0;
    for (; it < max_iter; it++) {
        memset(h, 0, m * m * sizeof(double));
        memset(g, 0, m * sizeof(double));
        double row[MD_FIT_MAX_D + 1];
        row[0] = 1;
        for (size_t i = 0; i < d->n; i++) {
            const double *xi = d->x + i * d->d;
            memcpy(row + 1, xi, d->d * sizeof(double));
            double p = md_sigmoid(linear(d, i, b0, beta)), w = row_weight(d, i), f = row_factor(d, i);
            /* The loss's slope in z, and its expected curvature (Fisher
             * scoring); both are the logistic ones at f = 1. */
            double r = w * (p - d->y[i]), c = w * p * (1 - p);
            if (f < 1) {
                double q = 1 - f * p;
                r = w * (d->y[i] > 0.5 ? -(1 - p) : f * p * (1 - p) / q);
                c = w * f * p * (1 - p) * (1 - p) / q;
            }
            for (size_t a = 0; a < m; a++) {
                g[a] += r * row[a];
                double ca = c * row[a];
                for (size_t b = 0; b <= a; b++) h[a * m + b] += ca * row[b];
            }
        }
        for (size_t a = 0; a < m; a++)
            for (size_t b = 0; b < a; b++) h[b * m + a] = h[a * m + b];
        for (size_t j = 0; j < d->d; j++) {
            g[j + 1] += l2 * off_prior(d, beta, j);
            h[(j + 1) * m + j + 1] += l2;
        }
        /* A little ridge on the intercept too: when every outcome is the
         * same its curvature vanishes as it runs off. */
        h[0] += 1e-9 * (wsum + 1);
        memcpy(step, g, m * sizeof(double));
        if (!cholesky_solve(h, step, m)) break;
        /* Newton's step, halved until the loss does not grow. */
        double t = 1, new_b0 = b0, new_loss = loss;
        for (int half = 0; half < 30; half++, t *= 0.5) {
            new_b0 = b0 - t * step[0];
            for (size_t j = 0; j < d->d; j++) trial[j] = beta[j] - t * step[j + 1];
            new_loss = penalised_loss(d, l2, new_b0, trial);
            if (new_loss <= loss) break;
        }
        if (!(new_loss <= loss)) { /* no step helps: at the optimum up to rounding */
            res->converged = true;
            break;
        }
        double moved = fabs(new_b0 - b0);
        for (size_t j = 0; j < d->d; j++) {
            if (fabs(trial[j] - beta[j]) > moved) moved = fabs(trial[j] - beta[j]);
            beta[j] = trial[j];
        }
        b0 = new_b0;
        double gain = loss - new_loss;
        loss = new_loss;
        if (moved < 1e-8 || gain <= 1e-12 * (fabs(loss) + 1)) {
            res->converged = true;
            it++;
            break;
        }
    }
    res->intercept = b0;
    res->iterations = it;
    res->loss = loss;
    return true;
}

/* ------------------------------------------------------------------------- */

typedef struct scored {
    double p, y;
} scored;

static int by_p(const void *a, const void *b) {
    double x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* The calibration over the bins of at least min_bin decisions: the largest
 * miss, and the largest in standard errors of the bin's observed rate were
 * the model right (binomial, at its mean p; p kept half a decision from 0
 * and 1 so that a bin of certainties still has a scale). */
static void judge_bins(md_model_quality *q, size_t min_bin) {
    double worst = -1, worst_z = -1;
    q->bins_counted = 0;
    for (int b = 0; b < MD_QUALITY_BINS; b++) {
        const md_quality_bin *bin = &q->bins[b];
        if (bin->n == 0 || bin->n < min_bin) continue;
        q->bins_counted++;
        double n = (double)bin->n, e = fabs(bin->observed - bin->mean_p);
        double pm = fmin(fmax(bin->mean_p, 0.5 / n), 1 - 0.5 / n);
        double z = e / sqrt(pm * (1 - pm) / n);
        if (e > worst) worst = e;
        if (z > worst_z) worst_z = z;
    }
    q->max_calibration_error = worst >= 0 ? worst : NAN;
    q->max_calibration_z = worst_z >= 0 ? worst_z : NAN;
}

bool md_model_quality_of(const double *p, const double *y, size_t n, size_t min_bin, md_model_quality *q) {
    memset(q, 0, sizeof(*q));
    q->n = n;
    q->auc = q->max_calibration_error = q->max_calibration_z = NAN;
    if (n == 0) {
        q->brier = q->log_loss = NAN;
        return true;
    }
    scored *s = malloc(n * sizeof(*s));
    if (!s) return false;
    double brier = 0, ll = 0;
    for (size_t i = 0; i < n; i++) {
        s[i].p = p[i];
        s[i].y = y[i] > 0.5 ? 1 : 0;
        q->positives += (size_t)s[i].y;
        brier += (p[i] - s[i].y) * (p[i] - s[i].y);
        double pc = p[i] < 1e-15 ? 1e-15 : p[i] > 1 - 1e-15 ? 1 - 1e-15 : p[i];
        ll -= s[i].y ? log(pc) : log(1 - pc);
    }
    q->brier = brier / (double)n;
    q->log_loss = ll / (double)n;
    qsort(s, n, sizeof(*s), by_p);
    /* AUC by the rank sum of the positives, ties sharing their mean rank. */
    size_t neg = n - q->positives;
    if (q->positives && neg) {
        double rank_sum = 0;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            double pos = 0;
            while (j < n && s[j].p == s[i].p) pos += s[j++].y;
            rank_sum += pos * ((double)(i + 1) + (double)j) / 2.0;
            i = j;
        }
        double np = (double)q->positives;
        q->auc = (rank_sum - np * (np + 1) / 2.0) / (np * (double)neg);
    }
    for (int b = 0; b < MD_QUALITY_BINS; b++) {
        size_t lo = n * (size_t)b / MD_QUALITY_BINS, hi = n * (size_t)(b + 1) / MD_QUALITY_BINS;
        md_quality_bin *bin = &q->bins[b];
        double sp = 0, sy = 0;
        for (size_t i = lo; i < hi; i++) {
            sp += s[i].p;
            sy += s[i].y;
        }
        bin->n = hi - lo;
        bin->mean_p = bin->n ? sp / (double)bin->n : NAN;
        bin->observed = bin->n ? sy / (double)bin->n : NAN;
    }
    judge_bins(q, min_bin);
    free(s);
    return true;
}

void md_model_quality_binned(const double *p, const double *n, const double *pos, size_t nb, size_t min_bin, md_model_quality *q,
                             int *decile_of) {
    memset(q, 0, sizeof(*q));
    q->auc = q->max_calibration_error = q->max_calibration_z = NAN;
    double total = 0, positives = 0, brier = 0, ll = 0;
    for (size_t b = 0; b < nb; b++) {
        total += n[b];
        positives += pos[b];
        double pc = p[b] < 1e-15 ? 1e-15 : p[b] > 1 - 1e-15 ? 1 - 1e-15 : p[b];
        /* sum over the group of (p - y)^2 and of the log loss, y = 1 pos[b] times */
        brier += pos[b] * (1 - p[b]) * (1 - p[b]) + (n[b] - pos[b]) * p[b] * p[b];
        ll -= pos[b] * log(pc) + (n[b] - pos[b]) * log(1 - pc);
    }
    q->n = (size_t)total;
    q->positives = (size_t)positives;
    if (total <= 0) {
        q->brier = q->log_loss = NAN;
        for (int k = 0; k < MD_QUALITY_BINS; k++) q->bins[k].mean_p = q->bins[k].observed = NAN;
        for (size_t b = 0; decile_of && b < nb; b++) decile_of[b] = 0;
        return;
    }
    q->brier = brier / total;
    q->log_loss = ll / total;
    double neg = total - positives;
    if (positives > 0 && neg > 0) {
        double rank_sum = 0, below = 0;
        for (size_t b = 0; b < nb; b++) {
            rank_sum += pos[b] * (below + (1 + n[b]) / 2.0); /* the group's ranks below+1 .. below+n[b], mean shared */
            below += n[b];
        }
        q->auc = (rank_sum - positives * (positives + 1) / 2.0) / (positives * neg);
    }
    double sp[MD_QUALITY_BINS] = {0}, sy[MD_QUALITY_BINS] = {0}, sn[MD_QUALITY_BINS] = {0}, cum = 0;
    for (size_t b = 0; b < nb; b++) {
        int k = (int)floor(MD_QUALITY_BINS * (cum + n[b] / 2.0) / total);
        if (k >= MD_QUALITY_BINS) k = MD_QUALITY_BINS - 1;
        if (decile_of) decile_of[b] = k;
        cum += n[b];
        sn[k] += n[b];
        sp[k] += n[b] * p[b];
        sy[k] += pos[b];
    }
    for (int k = 0; k < MD_QUALITY_BINS; k++) {
        md_quality_bin *bin = &q->bins[k];
        bin->n = (size_t)sn[k];
        bin->mean_p = sn[k] > 0 ? sp[k] / sn[k] : NAN;
        bin->observed = sn[k] > 0 ? sy[k] / sn[k] : NAN;
    }
    judge_bins(q, min_bin);
}

/* The groups are md_model_quality_of's deciles (the same order and
 * bounds), pooled here. */
bool md_recalibration_fit(const double *p, const double *y, size_t n, md_recalibration *r) {
    memset(r, 0, sizeof(*r));
    md_model_quality q;
    if (!md_model_quality_of(p, y, n, 0, &q)) return false;
    double weight[MD_RECAL_BINS];
    for (int b = 0; b < MD_QUALITY_BINS; b++) {
        if (q.bins[b].n == 0) continue; /* fewer decisions than groups */
        int k = r->n++;
        weight[k] = (double)q.bins[b].n;
        r->p[k] = q.bins[b].mean_p;
        r->rate[k] = q.bins[b].observed;
        /* Pool the new group into the one before while it converts less
         * (and again, as long as the pooled one does). */
        while (k > 0 && r->rate[k - 1] > r->rate[k]) {
            double w = weight[k - 1] + weight[k];
            r->p[k - 1] = (r->p[k - 1] * weight[k - 1] + r->p[k] * weight[k]) / w;
            r->rate[k - 1] = (r->rate[k - 1] * weight[k - 1] + r->rate[k] * weight[k]) / w;
            weight[k - 1] = w;
            k = --r->n - 1;
        }
    }
    return true;
}

double md_recalibration_apply(const md_recalibration *r, double p) {
    if (r->n == 0) return p;
    if (p <= r->p[0]) return r->rate[0];
    if (p >= r->p[r->n - 1]) return r->rate[r->n - 1];
    int k = 0;
    while (p > r->p[k + 1]) k++;
    double span = r->p[k + 1] - r->p[k];
    return span > 0 ? r->rate[k] + (p - r->p[k]) * (r->rate[k + 1] - r->rate[k]) / span : r->rate[k + 1];
}
