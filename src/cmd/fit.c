/* fit.c: `momentd fit`. A campaign's model fitted to what momentd recorded
 * of its own decisions (the model's inputs at each decision, and whether a
 * conversion followed within the attribution window), calibrated, compared
 * with the hand-written weights on customers the fit did not see, and
 * written out as a candidate configuration.
 *
 * Two models, not one (two-model uplift): the contacted decisions give the
 * probability of a conversion after a contact, which is the p the value rule
 * needs (docs/SPEC.md section 6); the decisions not contacted (holdout,
 * sampled, released) give the probability without one. The second is
 * reported beside the first, decile by decile, so that an operator sees
 * where contact moves customers and where they would buy anyway. Two models
 * because the contacted decisions are all above the threshold and the
 * others mostly below it: one model with a treatment term would have to
 * extrapolate its interaction where it has no contacted data at all. */
#include "fit.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "momentd/engine.h"
#include "momentd/event.h"
#include "momentd/jsonw.h"
#include "rules.h"

/* One decision, compactly: its values live in the set's pool. */
typedef struct drow {
    const char *customer; /* interned in the set */
    int64_t ts;
    uint32_t schema;
    uint32_t off; /* into values */
    uint8_t n_values;
    char kind;
    bool converted;
} drow;

struct md_fit_set {
    const md_config *cfg;
    int campaign;
    char code[MD_STATE_CODE_LEN + 1]; /* the campaign's, as the hash's records name it */
    drow *rows;
    size_t n, cap;
    double *values;
    size_t n_values, cap_values;
    char **customers; /* interned ids, freed with the set */
    size_t n_customers, cap_customers;
    bool oom;
};

md_fit_set *md_fit_set_new(const md_config *cfg, int campaign) {
    md_fit_set *fs = calloc(1, sizeof(*fs));
    if (!fs) return NULL;
    fs->cfg = cfg;
    fs->campaign = campaign;
    md_state_code(cfg->campaigns[campaign].name, fs->code);
    return fs;
}

void md_fit_set_destroy(md_fit_set *fs) {
    if (!fs) return;
    for (size_t i = 0; i < fs->n_customers; i++) free(fs->customers[i]);
    free(fs->customers);
    free(fs->rows);
    free(fs->values);
    free(fs);
}

static bool grow(void **p, size_t *cap, size_t need, size_t esz) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 1024;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * esz);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

/* Adds one customer-hash field if it is a decision of the set's campaign. */
static void add_field(void *ctx, const char *customer, const char *field, size_t flen, const char *value, size_t vlen) {
    md_fit_set *fs = ctx;
    md_decision d;
    if (fs->oom || flen < 2 || (field[0] != 'q' && field[0] != 'Q') || !md_decision_parse(field, flen, value, vlen, &d)) return;
    if (strcmp(d.code, fs->code) != 0) return; /* both forms carry it; configured campaigns' codes differ */
    /* Records arrive customer by customer: intern the id once per run of them. */
    const char *cid = fs->n_customers ? fs->customers[fs->n_customers - 1] : NULL;
    if (!cid || strcmp(cid, customer) != 0) {
        char *copy = strdup(customer);
        if (!copy || !grow((void **)&fs->customers, &fs->cap_customers, fs->n_customers + 1, sizeof(char *))) {
            free(copy);
            fs->oom = true;
            return;
        }
        fs->customers[fs->n_customers++] = copy;
        cid = copy;
    }
    if (!grow((void **)&fs->rows, &fs->cap, fs->n + 1, sizeof(drow)) ||
        !grow((void **)&fs->values, &fs->cap_values, fs->n_values + d.n_values, sizeof(double))) {
        fs->oom = true;
        return;
    }
    memcpy(fs->values + fs->n_values, d.values, d.n_values * sizeof(double));
    fs->rows[fs->n++] = (drow){cid, d.ts_ms, d.schema, (uint32_t)fs->n_values, (uint8_t)d.n_values, d.kind, d.converted};
    fs->n_values += d.n_values;
}

/* Customer, then time, then what the decision was: a set is in this order
 * once read, whatever order Redis's scan or the trace gave, so that the
 * fit, the control rows' neighbours (contacted_near) and the deciles of
 * tied predictions do not depend on it. */
static int by_customer_time(const void *a, const void *b) {
    const drow *x = a, *y = b;
    int c = strcmp(x->customer, y->customer);
    if (c) return c;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    if (x->converted != y->converted) return x->converted ? 1 : -1;
    return x->schema < y->schema ? -1 : x->schema > y->schema;
}

static void sort_rows(md_fit_set *fs) {
    if (fs->n) qsort(fs->rows, fs->n, sizeof(drow), by_customer_time);
}

md_err md_fit_set_from_store(md_fit_set *fs, md_store *store, char *err, size_t errsz) {
    md_err e = md_store_scan_customers(store, add_field, fs, err, errsz);
    if (e == MD_ERR_OK && fs->oom) {
        snprintf(err, errsz, "out of memory");
        return MD_ERR_NOMEM;
    }
    sort_rows(fs);
    return e;
}

bool md_fit_set_from_trace(md_fit_set *fs, FILE *in, char *err, size_t errsz) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    bool ok = true;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        if (len == 0) continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        md_decision d;
        if (!t1 || !t2 || t1 == line || (size_t)(t1 - line) > MD_CUSTOMER_ID_MAX ||
            !md_decision_parse(t1 + 1, (size_t)(t2 - t1 - 1), t2 + 1, strlen(t2 + 1), &d)) {
            snprintf(err, errsz, "line %" PRId64 ": not \"<customer_id>\\t<q: field>\\t<value>\" with a valid decision record", lineno);
            ok = false;
            break;
        }
        *t1 = '\0';
        add_field(fs, line, t1 + 1, (size_t)(t2 - t1 - 1), t2 + 1, strlen(t2 + 1));
    }
    free(line);
    if (ok && fs->oom) {
        snprintf(err, errsz, "out of memory");
        ok = false;
    }
    if (ok) sort_rows(fs);
    return ok;
}

static void row_decision(const md_fit_set *fs, const drow *r, md_decision *d) {
    snprintf(d->campaign, sizeof(d->campaign), "%s", fs->cfg->campaigns[fs->campaign].name);
    d->ts_ms = r->ts;
    d->kind = r->kind;
    d->converted = r->converted;
    d->schema = r->schema;
    d->n_values = r->n_values;
    memcpy(d->values, fs->values + r->off, r->n_values * sizeof(double));
}

bool md_fit_set_write_trace(const md_fit_set *fs, FILE *out) {
    char field[128], value[MD_DECISION_MAX_VALUES * 16 + 32];
    md_decision d;
    for (size_t i = 0; i < fs->n; i++) {
        row_decision(fs, &fs->rows[i], &d);
        md_decision_format(&d, field, sizeof(field), value, sizeof(value));
        if (fprintf(out, "%s\t%s\t%s\n", fs->rows[i].customer, field, value) < 0) return false;
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* The model's columns                                                        */

/* Columns of the design matrix: each feature as the model transforms it,
 * then one indicator per listed level of each static attribute. */
static size_t n_columns(const md_cfg_model *m) {
    size_t d = m->n_features;
    for (size_t s = 0; s < m->n_statics; s++) d += m->statics[s].n_offsets;
    return d;
}

static double transformed(const md_cfg_feature *f, double x) {
    if (x > f->cap) x = f->cap;
    if (strcmp(f->transform, "log1p") == 0) x = x > -1 ? log1p(x) : 0;
    return x;
}

static void design_row(const md_cfg_model *m, const double *v, size_t nv, double *x) {
    size_t j = 0;
    for (size_t f = 0; f < m->n_features; f++) x[j++] = f < nv ? transformed(&m->features[f], v[f]) : 0;
    for (size_t s = 0; s < m->n_statics; s++) {
        double level = m->n_features + s < nv ? v[m->n_features + s] : 0;
        for (size_t k = 0; k < m->statics[s].n_offsets; k++) x[j++] = level == (double)(k + 1) ? 1 : 0;
    }
}

/* What the engine multiplies a model's score by at this decision:
 * (1 - fatigue_penalty)^fatigue, the campaign's fatigue then being the
 * record's value after the features and static levels (records made before
 * it was recorded have none: 1). */
static double record_factor(const md_fit_set *fs, const double *v, size_t nv) {
    const md_cfg_model *cm = &fs->cfg->campaigns[fs->campaign].model;
    size_t at = cm->n_features + cm->n_statics;
    double fatigue = nv > at && v[at] > 0 ? v[at] : 0;
    return pow(1 - fs->cfg->outcomes.fatigue_penalty, fatigue);
}

/* The decision's p_contact under model m: its score times the fatigue factor. */
static double row_p(const md_fit_set *fs, const md_fit_model *m, const drow *r) {
    const md_cfg_model *cm = &fs->cfg->campaigns[fs->campaign].model;
    double x[MD_FIT_MAX_D], z = m->intercept;
    design_row(cm, fs->values + r->off, r->n_values, x);
    for (size_t j = 0, d = n_columns(cm); j < d; j++) z += m->beta[j] * x[j];
    return md_sigmoid(z) * record_factor(fs, fs->values + r->off, r->n_values);
}

/* The configuration's weights and offsets as a model, in column order. */
static void hand_model(const md_cfg_model *cm, md_fit_model *m) {
    memset(m, 0, sizeof(*m));
    m->intercept = cm->intercept;
    size_t j = 0;
    for (size_t f = 0; f < cm->n_features; f++) m->beta[j++] = cm->features[f].weight;
    for (size_t s = 0; s < cm->n_statics; s++)
        for (size_t k = 0; k < cm->statics[s].n_offsets; k++) m->beta[j++] = cm->statics[s].offsets[k].value;
}

/* The column of static attribute s's first level. */
static size_t static_column(const md_cfg_model *cm, size_t s) {
    size_t j = cm->n_features;
    for (size_t t = 0; t < s; t++) j += cm->statics[t].n_offsets;
    return j;
}

/* ------------------------------------------------------------------------- */
/* Fitting                                                                    */

/* Row i of the rows (in by_customer_time's order) was not contacted, and no contact of the campaign
 * came within the attribution window before or after it: a clean control. */
static bool contacted_near(const md_fit_set *fs, size_t i, int64_t window) {
    const drow *r = &fs->rows[i];
    for (size_t j = i; j-- > 0 && fs->rows[j].customer == r->customer && r->ts - fs->rows[j].ts <= window;)
        if (fs->rows[j].kind == MD_DECISION_CONTACTED) return true;
    for (size_t j = i + 1; j < fs->n && fs->rows[j].customer == r->customer && fs->rows[j].ts - r->ts <= window; j++)
        if (fs->rows[j].kind == MD_DECISION_CONTACTED) return true;
    return false;
}

typedef struct matrix {
    double *x, *y, *f; /* f: each row's fatigue factor (record_factor) */
    size_t n, d, cap;
} matrix;

static bool matrix_add(matrix *m, const md_fit_set *fs, const double *v, size_t nv, bool y) {
    const md_cfg_model *cm = &fs->cfg->campaigns[fs->campaign].model;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4096;
        double *x = realloc(m->x, nc * m->d * sizeof(double));
        if (!x) return false;
        m->x = x;
        double *yy = realloc(m->y, nc * sizeof(double));
        if (!yy) return false;
        m->y = yy;
        double *ff = realloc(m->f, nc * sizeof(double));
        if (!ff) return false;
        m->f = ff;
        m->cap = nc;
    }
    design_row(cm, v, nv, m->x + m->n * m->d);
    m->f[m->n] = record_factor(fs, v, nv);
    m->y[m->n++] = y ? 1 : 0;
    return true;
}

static void matrix_free(matrix *m) {
    free(m->x);
    free(m->y);
    free(m->f);
}

/* The model's score is fitted through each row's fatigue factor, so that
 * the engine's p_contact (score x factor) is what it was fitted to. */
static bool fit_matrix(const matrix *m, double l2, const double *prior, md_fit_model *out) {
    memset(out, 0, sizeof(*out));
    md_fit_result r = {.beta = out->beta};
    md_fit_data data = {m->x, m->y, NULL, m->n, m->d, m->f, prior};
    if (!md_logit_fit(&data, l2, 100, &r)) return false;
    out->intercept = r.intercept;
    return true;
}

/* A fifth of the customers (a stable hash) are kept out of the fit that is
 * measured, so the quality reported is out of sample. */
static bool in_test_fifth(const char *customer) { return md_holdout_bucket(customer, "momentd-fit/test") < 2000; }

static int by_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

static int by_asc(const void *a, const void *b) { return -by_desc(a, b); }

/* The threshold on the fitted p that keeps the share of decisions above it
 * the hand model had: the sampled customers' decisions are a picture of
 * every decision the campaign makes (all of theirs are recorded, at most one
 * per sample_every), so the share is taken there; with too few of them, over
 * every decision read. */
static void choose_threshold(md_fit_set *fs, const md_fit_params *pp, const md_fit_model *hand, md_fit_outcome *o) {
    const md_cfg_campaign *cc = &fs->cfg->campaigns[fs->campaign];
    uint32_t schema = fs->cfg->rules->campaigns[fs->campaign].schema;
    o->threshold = cc->threshold;
    o->rearm_below = cc->rearm_below;
    o->threshold_basis = 0;
    double *p = malloc((fs->n + 1) * sizeof(double));
    if (!p) return;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0, above = 0;
        for (size_t i = 0; i < fs->n; i++) {
            const drow *r = &fs->rows[i];
            if (r->schema != schema || r->ts < pp->since_ms || (pass == 0 && !md_learning_sampled(fs->cfg, fs->campaign, r->customer))) continue;
            if (row_p(fs, hand, r) >= cc->threshold) above++;
            p[n++] = row_p(fs, &o->fitted, r);
        }
        if (n < 200 && pass == 0) continue;
        if (n == 0 || above == 0) break;
        qsort(p, n, sizeof(double), by_desc);
        o->threshold = p[above - 1];
        o->rearm_below = cc->threshold > 0 ? o->threshold * cc->rearm_below / cc->threshold : 0;
        o->threshold_basis = n;
        break;
    }
    free(p);
}

/* Out-of-sample quality on the test fifth's contacted decisions; the uplift
 * table: treated and control rates by decile of the fitted p. */
static bool measure(md_fit_set *fs, const md_fit_model *hand_train, const md_fit_model *fit_train, const bool *is_treated,
                    const bool *is_control, md_fit_outcome *o) {
    size_t n = 0;
    double *ph = malloc((fs->n + 1) * sizeof(double)), *pf = malloc((fs->n + 1) * sizeof(double)), *y = malloc((fs->n + 1) * sizeof(double));
    bool ok = ph && pf && y;
    for (size_t i = 0; ok && i < fs->n; i++) {
        if (!is_treated[i] || !in_test_fifth(fs->rows[i].customer)) continue;
        ph[n] = row_p(fs, hand_train, &fs->rows[i]);
        pf[n] = row_p(fs, fit_train, &fs->rows[i]);
        y[n++] = fs->rows[i].converted;
    }
    ok = ok && md_model_quality_of(ph, y, n, 200, &o->hand_quality) && md_model_quality_of(pf, y, n, 200, &o->fitted_quality);
    /* Uplift: decile edges of the final fitted p over the contacted decisions. */
    size_t nt = 0;
    for (size_t i = 0; ok && i < fs->n; i++)
        if (is_treated[i]) pf[nt++] = row_p(fs, &o->fitted, &fs->rows[i]);
    if (ok && nt >= MD_QUALITY_BINS) {
        qsort(pf, nt, sizeof(double), by_asc);
        double edges[MD_QUALITY_BINS - 1];
        for (int b = 1; b < MD_QUALITY_BINS; b++) edges[b - 1] = pf[nt * (size_t)b / MD_QUALITY_BINS];
        double conv_t[MD_QUALITY_BINS] = {0}, conv_c[MD_QUALITY_BINS] = {0};
        for (size_t i = 0; i < fs->n; i++) {
            if (!is_treated[i] && !is_control[i]) continue;
            double p = row_p(fs, &o->fitted, &fs->rows[i]);
            int b = 0;
            while (b < MD_QUALITY_BINS - 1 && p >= edges[b]) b++;
            if (is_treated[i]) {
                o->uplift_n_treated[b]++;
                conv_t[b] += fs->rows[i].converted;
            } else {
                o->uplift_n_control[b]++;
                conv_c[b] += fs->rows[i].converted;
            }
        }
        for (int b = 0; b < MD_QUALITY_BINS; b++) {
            o->uplift_treated[b] = o->uplift_n_treated[b] ? conv_t[b] / (double)o->uplift_n_treated[b] : NAN;
            o->uplift_control[b] = o->uplift_n_control[b] ? conv_c[b] / (double)o->uplift_n_control[b] : NAN;
        }
    }
    free(ph);
    free(pf);
    free(y);
    return ok;
}

bool md_fit_run(md_fit_set *fs, const md_fit_params *pp, md_fit_outcome *o, char *err, size_t errsz) {
    const md_cfg_campaign *cc = &fs->cfg->campaigns[fs->campaign];
    const md_cfg_model *cm = &cc->model;
    uint32_t schema = fs->cfg->rules->campaigns[fs->campaign].schema;
    memset(o, 0, sizeof(*o));
    size_t d = n_columns(cm);
    if (d > MD_FIT_MAX_D) {
        snprintf(err, errsz, "campaign %s: its model has %zu columns (features and static levels); the fitter takes at most %d", cc->name, d,
                 MD_FIT_MAX_D);
        return false;
    }
    hand_model(cm, &o->hand);
    o->decisions = fs->n;
    int64_t newest = 0;
    for (size_t i = 0; i < fs->n; i++)
        if (fs->rows[i].ts > newest) newest = fs->rows[i].ts;
    o->as_of_ms = pp->as_of_ms ? pp->as_of_ms : newest;
    int64_t window = cc->attribution_ms;
    bool *is_treated = calloc(fs->n + 1, sizeof(bool)), *is_control = calloc(fs->n + 1, sizeof(bool));
    matrix all_t = {.d = d}, train_t = {.d = d}, all_c = {.d = d};
    bool ok = is_treated && is_control;
    if (!ok) snprintf(err, errsz, "out of memory");
    for (size_t i = 0; ok && i < fs->n; i++) {
        const drow *r = &fs->rows[i];
        if (r->schema != schema) {
            o->other_schema++;
            continue;
        }
        if (r->ts < pp->since_ms) {
            o->too_old++;
            continue;
        }
        if (r->ts > o->as_of_ms - window) { /* a conversion may still come: the label is not final */
            o->unlabelled++;
            continue;
        }
        const double *v = fs->values + r->off;
        if (r->kind == MD_DECISION_RELEASED) o->released++;
        if (r->kind == MD_DECISION_CONTACTED) {
            is_treated[i] = true;
            o->treated++;
            ok = matrix_add(&all_t, fs, v, r->n_values, r->converted) &&
                 (in_test_fifth(r->customer) || matrix_add(&train_t, fs, v, r->n_values, r->converted));
        } else if (contacted_near(fs, i, window)) {
            o->contaminated++;
        } else {
            is_control[i] = true;
            o->control++;
            ok = matrix_add(&all_c, fs, v, r->n_values, r->converted);
        }
        if (!ok) snprintf(err, errsz, "out of memory");
    }
    if (ok && o->treated == 0) {
        snprintf(err, errsz,
                 "campaign %s: no contacted decision with a final label (%zu read, %zu of another model schema, %zu made within %" PRId64
                 " days of the newest)",
                 cc->name, o->decisions, o->other_schema, o->unlabelled, window / MD_DAY_MS);
        ok = false;
    }
    /* One class only: no weight can tell converters from the rest, and the
     * intercept runs off towards p = 0 or 1 (a candidate whose threshold
     * rounds to 0 would contact everyone). */
    size_t converted = 0;
    for (size_t i = 0; ok && i < fs->n; i++) converted += is_treated[i] && fs->rows[i].converted;
    if (ok && (converted == 0 || converted == o->treated)) {
        snprintf(err, errsz, "campaign %s: %s of the %zu contacted decisions with a final label converted: nothing to fit (wait for outcomes)",
                 cc->name, converted ? "all" : "none", o->treated);
        ok = false;
    }
    if (ok) {
        /* The measured fit: trained without the test fifth. */
        md_fit_model fit_train;
        const double *prior = pp->prior_hand ? o->hand.beta : NULL;
        ok = fit_matrix(train_t.n > 0 ? &train_t : &all_t, pp->l2, prior, &fit_train);
        /* The final fit: every contacted decision. */
        ok = ok && fit_matrix(&all_t, pp->l2, prior, &o->fitted);
        /* The not-contacted model has no model in use to keep to: towards 0. */
        if (ok && all_c.n > 0) o->control_ok = fit_matrix(&all_c, pp->l2, NULL, &o->control_model);
        ok = ok && measure(fs, &o->hand, &fit_train, is_treated, is_control, o);
        if (!ok) snprintf(err, errsz, "the fit failed (out of memory)");
    }
    if (ok) {
        choose_threshold(fs, pp, &o->hand, o);
        /* The version names the fitted coefficients: the same fit, the same name. */
        uint64_t h = md_hash64(&o->fitted.intercept, sizeof(double), md_hash64(o->fitted.beta, d * sizeof(double), 0));
        char day[16];
        md_format_day(o->as_of_ms, 0, day);
        snprintf(o->version, sizeof(o->version), "%.40s-fit-%s-%04x", cc->name, day, (unsigned)(h & 0xffff));
    }
    free(is_treated);
    free(is_control);
    matrix_free(&all_t);
    matrix_free(&train_t);
    matrix_free(&all_c);
    return ok;
}

bool md_fit_channel_chose(const md_fit_outcome *o) { return o->released > o->treated; }

size_t md_fit_set_size(const md_fit_set *fs) { return fs->n; }

size_t md_fit_predict(const md_fit_set *fs, const md_fit_model *m, int64_t from_ms, int64_t to_ms, int64_t as_of_ms, double *p, double *y) {
    uint32_t schema = fs->cfg->rules->campaigns[fs->campaign].schema;
    int64_t window = fs->cfg->campaigns[fs->campaign].attribution_ms;
    size_t n = 0;
    for (size_t i = 0; i < fs->n; i++) {
        const drow *r = &fs->rows[i];
        if (r->schema != schema || r->kind != MD_DECISION_CONTACTED || r->ts < from_ms || r->ts >= to_ms || r->ts > as_of_ms - window) continue;
        p[n] = row_p(fs, m, r);
        y[n++] = r->converted;
    }
    return n;
}

/* ------------------------------------------------------------------------- */
/* The candidate configuration                                                */

typedef struct emitter {
    FILE *out;
    const md_config *cfg;
    int campaign;
    const md_fit_outcome *o;
    const char *arm;  /* the policy arm that gets the fitted model (NULL: the campaign) */
    yajl_val model;   /* the campaign's model as written, the arm's starting point */
    bool replacing;   /* within the campaign: replace its model, or copy it (arm mode) */
} emitter;

static void emit_string(FILE *out, const char *s) {
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_str(&w, s);
    fputs(w.oom ? "\"\"" : w.buf, out);
    md_jsonw_fini(&w);
}

static void indent(FILE *out, int depth) {
    fputc('\n', out);
    for (int i = 0; i < depth; i++) fputs("  ", out);
}

/* The replacement for a value at path (a campaign's model and thresholds),
 * or false to copy the original. path is relative to the campaign. */
static bool replacement(const emitter *em, const char *path, size_t idx, const char *key, FILE *out) {
    const md_fit_outcome *o = em->o;
    const md_cfg_model *cm = &em->cfg->campaigns[em->campaign].model;
    if (!em->replacing) return false;
    if (strcmp(path, "") == 0 && strcmp(key, "threshold") == 0) return fprintf(out, "%.6g", o->threshold), true;
    if (strcmp(path, "") == 0 && strcmp(key, "rearm_below") == 0) return fprintf(out, "%.6g", o->rearm_below), true;
    if (strcmp(path, "model") == 0 && strcmp(key, "version") == 0) return emit_string(out, o->version), true;
    if (strcmp(path, "model") == 0 && strcmp(key, "intercept") == 0) return fprintf(out, "%.4f", o->fitted.intercept), true;
    if (strcmp(path, "model.features[]") == 0 && strcmp(key, "weight") == 0 && idx < cm->n_features)
        return fprintf(out, "%.4f", o->fitted.beta[idx]), true;
    return false;
}

static void emit(emitter *em, yajl_val v, int depth, const char *path, size_t idx, bool in_campaign);

static bool is_the_arm(const emitter *em, yajl_val v) {
    for (size_t i = 0; i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], "name") == 0 && YAJL_IS_STRING(v->u.object.values[i]))
            return strcmp(v->u.object.values[i]->u.string, em->arm) == 0;
    return false;
}

/* The arm that tries the candidate: its own keys but any model, threshold
 * and re-arm level, then the campaign's model with the fitted values and
 * the fitted threshold and re-arm level. */
static void emit_arm(emitter *em, yajl_val v, int depth) {
    fputc('{', em->out);
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        if (strcmp(k, "model") == 0 || strcmp(k, "threshold") == 0 || strcmp(k, "rearm_below") == 0) continue;
        indent(em->out, depth + 1);
        emit_string(em->out, k);
        fputs(": ", em->out);
        emit(em, v->u.object.values[i], depth + 1, "arms[].x", 0, false);
        fputc(',', em->out);
    }
    em->replacing = true;
    indent(em->out, depth + 1);
    fputs("\"model\": ", em->out);
    emit(em, em->model, depth + 1, "model", 0, true);
    fputc(',', em->out);
    indent(em->out, depth + 1);
    fprintf(em->out, "\"threshold\": %.6g,", em->o->threshold);
    indent(em->out, depth + 1);
    fprintf(em->out, "\"rearm_below\": %.6g", em->o->rearm_below);
    em->replacing = false;
    indent(em->out, depth);
    fputc('}', em->out);
}

static void emit_object(emitter *em, yajl_val v, int depth, const char *path, size_t idx, bool in_campaign) {
    if (in_campaign && em->arm && strcmp(path, "arms[]") == 0 && is_the_arm(em, v)) {
        emit_arm(em, v, depth);
        return;
    }
    fputc('{', em->out);
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        indent(em->out, depth + 1);
        emit_string(em->out, k);
        fputs(": ", em->out);
        if (in_campaign && replacement(em, path, idx, k, em->out)) {
            /* written */
        } else if (in_campaign && em->replacing && strcmp(path, "model.static[]") == 0 && strcmp(k, "offsets") == 0 &&
                   YAJL_IS_OBJECT(v->u.object.values[i])) {
            /* The static levels keep their names; their offsets are refitted. */
            yajl_val offs = v->u.object.values[i];
            size_t col = static_column(&em->cfg->campaigns[em->campaign].model, idx);
            fputc('{', em->out);
            for (size_t j = 0; j < offs->u.object.len; j++) {
                indent(em->out, depth + 2);
                emit_string(em->out, offs->u.object.keys[j]);
                fprintf(em->out, ": %.4f%s", em->o->fitted.beta[col + j], j + 1 < offs->u.object.len ? "," : "");
            }
            indent(em->out, depth + 1);
            fputc('}', em->out);
        } else {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
            emit(em, v->u.object.values[i], depth + 1, sub, idx, in_campaign);
        }
        if (i + 1 < v->u.object.len) fputc(',', em->out);
    }
    indent(em->out, depth);
    fputc('}', em->out);
}

static void emit(emitter *em, yajl_val v, int depth, const char *path, size_t idx, bool in_campaign) {
    if (YAJL_IS_OBJECT(v)) {
        emit_object(em, v, depth, path, idx, in_campaign);
    } else if (YAJL_IS_ARRAY(v)) {
        fputc('[', em->out);
        for (size_t i = 0; i < v->u.array.len; i++) {
            indent(em->out, depth + 1);
            if (!in_campaign && strcmp(path, "campaigns") == 0) {
                /* The campaign being fitted: paths inside it are relative to it. */
                emit(em, v->u.array.values[i], depth + 1, "", i, (int)i == em->campaign);
            } else {
                char sub[128];
                snprintf(sub, sizeof(sub), "%s[]", path);
                emit(em, v->u.array.values[i], depth + 1, sub, i, in_campaign);
            }
            if (i + 1 < v->u.array.len) fputc(',', em->out);
        }
        indent(em->out, depth);
        fputc(']', em->out);
    } else if (YAJL_IS_STRING(v)) {
        emit_string(em->out, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        fputs(v->u.number.r, em->out);
    } else if (YAJL_IS_TRUE(v)) {
        fputs("true", em->out);
    } else if (YAJL_IS_FALSE(v)) {
        fputs("false", em->out);
    } else {
        fputs("null", em->out);
    }
}

/* Whether campaign cc has the policy arm named arm; err says which it has. */
static bool has_arm(const md_cfg_campaign *cc, const char *arm, char *err, size_t errsz) {
    for (size_t a = 0; a < cc->n_arms; a++)
        if (strcmp(cc->arms[a].name, arm) == 0) return true;
    int n = snprintf(err, errsz, "--arm: campaign \"%s\" has no policy arm \"%s\"%s", cc->name, arm,
                     cc->n_arms ? " (its arms:" : " (it has none: add the arms, each with its share, first)");
    for (size_t i = 0; i < cc->n_arms && n > 0 && (size_t)n < errsz; i++)
        n += snprintf(err + n, errsz - (size_t)n, " %s%s", cc->arms[i].name, i + 1 < cc->n_arms ? "," : ")");
    return false;
}

bool md_fit_write_candidate(const char *config_path, const md_config *cfg, int campaign, const char *arm, const md_fit_outcome *o,
                            const char *out_path, char *err, size_t errsz) {
    if (arm && !has_arm(&cfg->campaigns[campaign], arm, err, errsz)) return false;
    char *text = md_config_read_text(config_path, err, errsz);
    if (!text) return false;
    char perr[256];
    yajl_val root = yajl_tree_parse(text, perr, sizeof(perr));
    free(text);
    if (!root) {
        snprintf(err, errsz, "%.900s: %s", config_path, perr);
        return false;
    }
    FILE *out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "w");
    if (!out) {
        snprintf(err, errsz, "%.900s: %s", out_path, strerror(errno));
        yajl_tree_free(root);
        return false;
    }
    const char *campaigns_path[] = {"campaigns", NULL}, *model_path[] = {"model", NULL};
    yajl_val campaigns = yajl_tree_get(root, campaigns_path, yajl_t_array);
    yajl_val model = campaigns && (size_t)campaign < campaigns->u.array.len
                         ? yajl_tree_get(campaigns->u.array.values[campaign], model_path, yajl_t_object)
                         : NULL;
    emitter em = {out, cfg, campaign, o, arm, model, arm == NULL};
    emit(&em, root, 0, "", 0, false);
    fputc('\n', out);
    bool ok = !ferror(out);
    if (out != stdout) ok = fclose(out) == 0 && ok;
    else fflush(out);
    yajl_tree_free(root);
    if (!ok) snprintf(err, errsz, "%.900s: write failed", out_path);
    return ok;
}

/* ------------------------------------------------------------------------- */
/* Output                                                                     */

static void print_quality_row(FILE *out, const char *name, const md_model_quality *q) {
    fprintf(out, "  %-8s %6.3f %7.4f %9.4f %12.1f pp over %d deciles; %.1f standard errors\n", name, q->auc, q->brier, q->log_loss,
            q->max_calibration_error * 100, q->bins_counted, q->max_calibration_z);
}

void md_fit_json_quality(md_jsonw *w, const char *key, const md_model_quality *q) {
    md_jsonw_key(w, key);
    md_jsonw_obj_open(w);
    md_jsonw_kint(w, "decisions", (int64_t)q->n);
    md_jsonw_kint(w, "conversions", (int64_t)q->positives);
    if (isfinite(q->auc)) md_jsonw_knum(w, "auc", q->auc);
    if (isfinite(q->brier)) md_jsonw_knum(w, "brier", q->brier);
    if (isfinite(q->log_loss)) md_jsonw_knum(w, "log_loss", q->log_loss);
    if (isfinite(q->max_calibration_error)) md_jsonw_knum(w, "max_calibration_error", q->max_calibration_error);
    if (isfinite(q->max_calibration_z)) md_jsonw_knum(w, "max_calibration_z", q->max_calibration_z);
    md_jsonw_kint(w, "deciles_judged", q->bins_counted);
    md_jsonw_key(w, "reliability");
    md_jsonw_arr_open(w);
    for (int b = 0; b < MD_QUALITY_BINS; b++) {
        md_jsonw_obj_open(w);
        md_jsonw_kint(w, "decisions", (int64_t)q->bins[b].n);
        if (q->bins[b].n) {
            md_jsonw_knum(w, "predicted", q->bins[b].mean_p);
            md_jsonw_knum(w, "observed", q->bins[b].observed);
        }
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
    md_jsonw_obj_close(w);
}

static void json_model(md_jsonw *w, const char *key, const md_cfg_model *cm, const md_fit_model *m) {
    md_jsonw_key(w, key);
    md_jsonw_obj_open(w);
    md_jsonw_knum(w, "intercept", m->intercept);
    md_jsonw_key(w, "weights");
    md_jsonw_obj_open(w);
    size_t j = 0;
    for (size_t f = 0; f < cm->n_features; f++) md_jsonw_knum(w, cm->features[f].name, m->beta[j++]);
    md_jsonw_obj_close(w);
    md_jsonw_key(w, "static");
    md_jsonw_obj_open(w);
    for (size_t s = 0; s < cm->n_statics; s++) {
        md_jsonw_key(w, cm->statics[s].attribute);
        md_jsonw_obj_open(w);
        for (size_t k = 0; k < cm->statics[s].n_offsets; k++) md_jsonw_knum(w, cm->statics[s].offsets[k].key, m->beta[j++]);
        md_jsonw_obj_close(w);
    }
    md_jsonw_obj_close(w);
    md_jsonw_obj_close(w);
}

void md_fit_json_penalty(md_jsonw *w, double l2, bool prior_hand) {
    md_jsonw_key(w, "penalty");
    md_jsonw_obj_open(w);
    md_jsonw_knum(w, "l2", l2);
    md_jsonw_kstr(w, "towards", prior_hand ? "hand" : "zero");
    md_jsonw_obj_close(w);
}

void md_fit_print(const md_config *cfg, int campaign, const md_fit_params *pp, const md_fit_outcome *o, bool json, FILE *out) {
    const md_cfg_campaign *cc = &cfg->campaigns[campaign];
    const md_cfg_model *cm = &cc->model;
    char asof[32];
    md_format_time(o->as_of_ms, asof);
    if (json) {
        md_jsonw w;
        md_jsonw_init(&w);
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "campaign", cc->name);
        md_jsonw_kstr(&w, "model_version", cm->version);
        md_jsonw_kstr(&w, "candidate_version", o->version);
        md_jsonw_kstr(&w, "as_of", asof);
        md_jsonw_key(&w, "decisions");
        md_jsonw_obj_open(&w);
        md_jsonw_kint(&w, "read", (int64_t)o->decisions);
        md_jsonw_kint(&w, "other_schema", (int64_t)o->other_schema);
        md_jsonw_kint(&w, "label_not_final", (int64_t)o->unlabelled);
        md_jsonw_kint(&w, "before_since", (int64_t)o->too_old);
        md_jsonw_kint(&w, "contacted", (int64_t)o->treated);
        md_jsonw_kint(&w, "not_contacted", (int64_t)o->control);
        md_jsonw_kint(&w, "not_contacted_but_near_a_contact", (int64_t)o->contaminated);
        md_jsonw_kint(&w, "released", (int64_t)o->released);
        md_jsonw_obj_close(&w);
        md_jsonw_kbool(&w, "channel_chose", md_fit_channel_chose(o));
        md_fit_json_penalty(&w, pp->l2, pp->prior_hand);
        json_model(&w, "hand", cm, &o->hand);
        json_model(&w, "fitted", cm, &o->fitted);
        if (o->control_ok) json_model(&w, "not_contacted_model", cm, &o->control_model);
        md_jsonw_key(&w, "out_of_sample");
        md_jsonw_obj_open(&w);
        md_fit_json_quality(&w, "hand", &o->hand_quality);
        md_fit_json_quality(&w, "fitted", &o->fitted_quality);
        md_jsonw_obj_close(&w);
        md_jsonw_key(&w, "uplift_by_decile");
        md_jsonw_arr_open(&w);
        for (int b = 0; b < MD_QUALITY_BINS; b++) {
            md_jsonw_obj_open(&w);
            md_jsonw_kint(&w, "contacted", (int64_t)o->uplift_n_treated[b]);
            md_jsonw_kint(&w, "not_contacted", (int64_t)o->uplift_n_control[b]);
            if (isfinite(o->uplift_treated[b])) md_jsonw_knum(&w, "contacted_rate", o->uplift_treated[b]);
            if (isfinite(o->uplift_control[b])) md_jsonw_knum(&w, "not_contacted_rate", o->uplift_control[b]);
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
        md_jsonw_knum(&w, "threshold", o->threshold);
        md_jsonw_knum(&w, "rearm_below", o->rearm_below);
        md_jsonw_kint(&w, "threshold_basis", (int64_t)o->threshold_basis);
        md_jsonw_obj_close(&w);
        fprintf(out, "%s\n", w.oom ? "{}" : w.buf);
        md_jsonw_fini(&w);
        return;
    }
    fprintf(out, "campaign %s: model %s -> candidate %s (labels final up to %" PRId64 " days before %s)\n", cc->name, cm->version,
            o->version, cc->attribution_ms / MD_DAY_MS, asof);
    fprintf(out,
            "decisions read: %zu (another model schema %zu, label not final yet %zu, before --since %zu)\n"
            "training sets: %zu contacted; %zu not contacted (holdout, sampled, released), %zu more left out for a contact within "
            "the attribution window; %zu released in all (sent to a channel that never made them; those whose records were kept)\n",
            o->decisions, o->other_schema, o->unlabelled, o->too_old, o->treated, o->control, o->contaminated, o->released);
    if (md_fit_channel_chose(o))
        fprintf(out,
                "warning: the channels made %zu of at least %zu moments sent to them: the contacted decisions are the channel's choice (its "
                "capacity), not the model's, and the fit sees only the part of the ranking the channel reached. Compare the fitted AUC "
                "below with the hand model's before using the candidate\n",
                o->treated, o->treated + o->released);
    fprintf(out, "L2 penalty %g, pulling the contacted model's weights towards %s\n\n", pp->l2,
            pp->prior_hand ? "the model in use (--prior hand)" : "0 (--prior zero)");
    fprintf(out, "%-40s %10s %10s %14s\n", "weight", "hand", "fitted", "not contacted");
    fprintf(out, "%-40s %10.4f %10.4f %14.4f\n", "intercept", o->hand.intercept, o->fitted.intercept, o->control_ok ? o->control_model.intercept : NAN);
    for (size_t j = 0, s = 0, k = 0; j < n_columns(cm); j++) {
        char name[128];
        if (j < cm->n_features) {
            snprintf(name, sizeof(name), "%s", cm->features[j].name);
        } else {
            while (k == cm->statics[s].n_offsets) s++, k = 0; /* the next attribute with levels */
            snprintf(name, sizeof(name), "%s=%s", cm->statics[s].attribute, cm->statics[s].offsets[k++].key);
        }
        fprintf(out, "%-40.40s %10.4f %10.4f %14.4f\n", name, o->hand.beta[j], o->fitted.beta[j], o->control_ok ? o->control_model.beta[j] : NAN);
    }
    fprintf(out, "\nout of sample (contacted decisions of a fifth of the customers, fitted without them: %zu, %zu converted):\n",
            o->fitted_quality.n, o->fitted_quality.positives);
    fprintf(out, "  %-8s %6s %7s %9s %15s\n", "model", "AUC", "Brier", "log loss", "calibration");
    print_quality_row(out, "hand", &o->hand_quality);
    print_quality_row(out, "fitted", &o->fitted_quality);
    fprintf(out, "reliability by decile of p (predicted -> observed, decisions):\n");
    for (int b = 0; b < MD_QUALITY_BINS; b++)
        fprintf(out, "  %2d  hand %5.1f%% -> %5.1f%%   fitted %5.1f%% -> %5.1f%%   (%zu)\n", b + 1, o->hand_quality.bins[b].mean_p * 100,
                o->hand_quality.bins[b].observed * 100, o->fitted_quality.bins[b].mean_p * 100, o->fitted_quality.bins[b].observed * 100,
                o->fitted_quality.bins[b].n);
    fprintf(out, "uplift by decile of the fitted p (conversion within %" PRId64 " days: contacted, not contacted):\n", cc->attribution_ms / MD_DAY_MS);
    for (int b = 0; b < MD_QUALITY_BINS; b++)
        fprintf(out, "  %2d  %5.1f%% of %-7zu %5.1f%% of %-7zu uplift %+5.1f pp\n", b + 1, o->uplift_treated[b] * 100, o->uplift_n_treated[b],
                o->uplift_control[b] * 100, o->uplift_n_control[b], (o->uplift_treated[b] - o->uplift_control[b]) * 100);
    if (o->threshold_basis)
        fprintf(out, "threshold %.4f -> %.4f, rearm_below %.4f -> %.4f (the same share of %zu decisions above it)\n", cc->threshold,
                o->threshold, cc->rearm_below, o->rearm_below, o->threshold_basis);
    else
        fprintf(out, "threshold kept at %.4f: no recorded decision was above it\n", cc->threshold);
}

/* ------------------------------------------------------------------------- */

static int64_t parse_since(const char *s, bool *ok) {
    int64_t t = 0;
    char buf[64];
    *ok = true;
    if (!s) return 0;
    if (strlen(s) == 10) {
        snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
        s = buf;
    }
    *ok = md_parse_rfc3339(s, strlen(s), &t);
    return t;
}

int md_fit(const md_fit_opts *o) {
    char err[1024];
    if (!o->config || !o->campaign || (o->from_redis == (o->trace_in != NULL))) {
        fprintf(stderr, "momentd: fit needs -c FILE, --campaign NAME and one of --from-redis or --from-trace FILE\n");
        return 2;
    }
    if (!(o->l2 > 0) || !isfinite(o->l2)) {
        fprintf(stderr, "momentd: fit: --l2 must be a positive number\n");
        return 2;
    }
    bool since_ok;
    int64_t since = parse_since(o->since, &since_ok);
    if (!since_ok) {
        fprintf(stderr, "momentd: fit: --since \"%s\" is not a date (YYYY-MM-DD) or an RFC 3339 time\n", o->since);
        return 2;
    }
    md_config *cfg = md_config_load(o->config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "momentd: %s\n", err);
        return 2;
    }
    int c = md_rules_campaign_index(cfg, o->campaign);
    int rc = 1;
    md_fit_set *fs = NULL;
    md_store *store = NULL;
    if (c < 0) {
        fprintf(stderr, "momentd: fit: %s has no campaign \"%s\"\n", o->config, o->campaign);
        rc = 2;
        goto out;
    }
    /* A wrong --arm is found before the fit, not after it. */
    if (o->arm && (!o->out || !has_arm(&cfg->campaigns[c], o->arm, err, sizeof(err)))) {
        fprintf(stderr, "momentd: fit: %s\n", o->out ? err : "--arm names the arm that gets the candidate written with --out; there is no --out");
        rc = 2;
        goto out;
    }
    if (!(fs = md_fit_set_new(cfg, c))) goto oom;
    if (o->from_redis) {
        md_cfg_redis rcfg = cfg->redis;
        if (o->redis_url) rcfg.url = (char *)o->redis_url;
        if (!(store = md_store_new(&rcfg, err, sizeof(err))) || md_store_connect(store, err, sizeof(err)) ||
            md_fit_set_from_store(fs, store, err, sizeof(err))) {
            fprintf(stderr, "momentd: fit: %s\n", err);
            goto out;
        }
    } else {
        FILE *in = strcmp(o->trace_in, "-") == 0 ? stdin : fopen(o->trace_in, "r");
        if (!in) {
            fprintf(stderr, "momentd: fit: %s: %s\n", o->trace_in, strerror(errno));
            rc = 2;
            goto out;
        }
        bool ok = md_fit_set_from_trace(fs, in, err, sizeof(err));
        if (in != stdin) fclose(in);
        if (!ok) {
            fprintf(stderr, "momentd: fit: %s: %s\n", o->trace_in, err);
            rc = 2;
            goto out;
        }
    }
    if (o->trace_out) {
        FILE *t = fopen(o->trace_out, "w");
        bool ok = t && md_fit_set_write_trace(fs, t);
        if (t) ok = fclose(t) == 0 && ok;
        if (!ok) {
            fprintf(stderr, "momentd: fit: %s: could not write the trace\n", o->trace_out);
            goto out;
        }
    }
    md_fit_outcome *res = calloc(1, sizeof(*res));
    if (!res) goto oom;
    md_fit_params pp = {since, 0, o->l2, o->prior_hand};
    if (!md_fit_run(fs, &pp, res, err, sizeof(err))) {
        fprintf(stderr, "momentd: fit: %s\n", err);
        free(res);
        rc = 2;
        goto out;
    }
    md_fit_print(cfg, c, &pp, res, o->json, stdout);
    rc = 0;
    if (o->out && !md_fit_write_candidate(o->config, cfg, c, o->arm, res, o->out, err, sizeof(err))) {
        fprintf(stderr, "momentd: fit: %s\n", err);
        rc = 1;
    } else if (o->out && !o->json) {
        if (o->arm)
            printf("candidate written to %s, in policy arm %s (the campaign and its other arms keep the running model): reload to try it live\n",
                   o->out, o->arm);
        else
            printf("candidate written to %s: try it with momentd backtest, then as a policy arm (--arm)\n", o->out);
    }
    free(res);
    goto out;
oom:
    fprintf(stderr, "momentd: fit: out of memory\n");
out:
    md_store_destroy(store);
    md_fit_set_destroy(fs);
    md_config_destroy(cfg);
    return rc;
}
