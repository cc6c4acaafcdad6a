/* report.c: the funnel and uplift report (report.h). Counts in, every rate
 * derived here, text for people and JSON for machines from the same numbers. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "momentd/engine.h"
#include "momentd/jsonw.h"

static const char *const stage_names[MD_STAGE_COUNT] = {
#define MD_STAGE_NAME(name, text) text,
    MD_STAGE_MAP(MD_STAGE_NAME)
#undef MD_STAGE_NAME
};

const char *md_stage_name(md_stage s) { return (unsigned)s < MD_STAGE_COUNT ? stage_names[s] : "?"; }

/* The timing table's counts: every funnel stage, then the contacts released
 * (the channel reported not_called or expired: never made). */
#define GAP_RELEASED MD_STAGE_COUNT
#define GAP_STAGES (MD_STAGE_COUNT + 1)

/* Per-day series kept for the page: triggers and conversions, treated and holdout. */
enum { DS_TRIG, DS_CONV, DS_HOLD_TRIG, DS_HOLD_CONV, DS_COUNT };

static bool parse_day(const char *s, int64_t *days) {
    char buf[32];
    int64_t ms;
    if (strlen(s) != 10) return false;
    snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
    if (!md_parse_rfc3339(buf, strlen(buf), &ms)) return false;
    *days = ms / MD_DAY_MS;
    return true;
}

bool md_report_range(const char *from, const char *to, int utc_offset_min, int64_t now_ms, int64_t *from_day, int64_t *to_day,
                     char *errstr, size_t errstr_size) {
    if (to) {
        if (!parse_day(to, to_day)) {
            snprintf(errstr, errstr_size, "to: expected a day as YYYY-MM-DD, got \"%.32s\"", to);
            return false;
        }
    } else {
        char today[16];
        md_format_day(now_ms, utc_offset_min, today);
        parse_day(today, to_day);
    }
    if (from) {
        if (!parse_day(from, from_day)) {
            snprintf(errstr, errstr_size, "from: expected a day as YYYY-MM-DD, got \"%.32s\"", from);
            return false;
        }
    } else {
        *from_day = *to_day - 29;
    }
    if (*from_day > *to_day || *to_day - *from_day > 3660) {
        snprintf(errstr, errstr_size, "from must not be after to, and the range at most ten years");
        return false;
    }
    return true;
}

/* One model version's counts: [treated 0 / holdout 1][p in thousandths]. */
typedef struct model_tally {
    int campaign;
    char version[MD_MODEL_VERSION_MAX + 1];
    double n[2][MD_REPORT_P_BINS], conv[2][MD_REPORT_P_BINS];
    int64_t pending;
} model_tally;

struct md_report {
    const md_config *cfg;
    int64_t from_day, now_ms;
    int utc_offset_min;
    model_tally *models;
    size_t n_models;
    int64_t paused_since[MD_MAX_CAMPAIGNS]; /* md_report_set_paused; 0 = running */
    char from[16], to[16];
    int n_days;
    char (*day_names)[16];
    size_t n_groups; /* channels + the holdout group */
    int64_t *counts; /* [campaign][group][stage] */
    int64_t *daily;  /* [campaign][day][DS_*] */
    int64_t *arms;   /* [campaign][MD_MAX_ARMS][stage] */
    int64_t *gaps;   /* [campaign][MD_GAP_BUCKETS][GAP_STAGES]: the timing table */
    uint64_t ignored;
};

md_report *md_report_new(const md_config *cfg, int64_t from_day, int64_t to_day, int64_t now_ms) {
    if (to_day < from_day || to_day - from_day > 3660) return NULL;
    md_report *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->cfg = cfg;
    r->from_day = from_day;
    r->now_ms = now_ms;
    md_parse_utc_offset(cfg->contact.default_utc_offset, &r->utc_offset_min);
    r->n_days = (int)(to_day - from_day + 1);
    r->n_groups = cfg->n_channels + 1;
    r->counts = calloc(cfg->n_campaigns * r->n_groups * MD_STAGE_COUNT + 1, sizeof(int64_t));
    r->daily = calloc(cfg->n_campaigns * (size_t)r->n_days * DS_COUNT + 1, sizeof(int64_t));
    r->day_names = calloc((size_t)r->n_days, sizeof(*r->day_names));
    r->arms = calloc(cfg->n_campaigns * MD_MAX_ARMS * MD_STAGE_COUNT + 1, sizeof(int64_t));
    r->gaps = calloc(cfg->n_campaigns * MD_GAP_BUCKETS * GAP_STAGES + 1, sizeof(int64_t));
    if (!r->counts || !r->daily || !r->day_names || !r->arms || !r->gaps) {
        md_report_destroy(r);
        return NULL;
    }
    for (int d = 0; d < r->n_days; d++) md_format_day((from_day + d) * MD_DAY_MS, 0, r->day_names[d]);
    snprintf(r->from, sizeof(r->from), "%s", r->day_names[0]);
    snprintf(r->to, sizeof(r->to), "%s", r->day_names[r->n_days - 1]);
    return r;
}

void md_report_destroy(md_report *r) {
    if (!r) return;
    free(r->counts);
    free(r->daily);
    free(r->day_names);
    free(r->arms);
    free(r->gaps);
    free(r->models);
    free(r);
}

int md_report_days(const md_report *r) { return r->n_days; }
const char *md_report_day(const md_report *r, int day) { return r->day_names[day]; }

static int64_t *daily_cell(const md_report *r, int campaign, int day, int series) {
    return &r->daily[((size_t)campaign * (size_t)r->n_days + (size_t)day) * DS_COUNT + (size_t)series];
}

static int64_t *arm_cell(const md_report *r, int campaign, int arm, md_stage stage) {
    return &r->arms[((size_t)campaign * MD_MAX_ARMS + (size_t)arm) * MD_STAGE_COUNT + stage];
}

static int64_t *gap_cell(const md_report *r, int campaign, int bucket, int stage) {
    return &r->gaps[((size_t)campaign * MD_GAP_BUCKETS + (size_t)bucket) * GAP_STAGES + (size_t)stage];
}

void md_report_gap(const md_report *r, int campaign, int bucket, md_gap_row *out) {
    memset(out, 0, sizeof(*out));
    out->moments = *gap_cell(r, campaign, bucket, MD_STAGE_TRIGGERED);
    out->not_made = *gap_cell(r, campaign, bucket, GAP_RELEASED);
    out->contacts = out->moments > out->not_made ? out->moments - out->not_made : 0;
    out->reached = *gap_cell(r, campaign, bucket, MD_STAGE_REACHED);
    out->no_answer = *gap_cell(r, campaign, bucket, MD_STAGE_NO_ANSWER);
    out->complaints = *gap_cell(r, campaign, bucket, MD_STAGE_COMPLAINT);
    /* Releases take their conversions back: never below 0, nor above the contacts. */
    int64_t conv = *gap_cell(r, campaign, bucket, MD_STAGE_CONVERSIONS);
    out->conversions = conv < 0 ? 0 : conv > out->contacts ? out->contacts : conv;
    out->has_rate = out->contacts > 0;
    if (!out->has_rate) return;
    double n = (double)out->contacts, p = (double)out->conversions / n;
    /* Wilson's interval: honest at the small counts of a rare gap. */
    double z = 1.96, d = 1 + z * z / n, mid = (p + z * z / (2 * n)) / d, half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
    out->rate = p;
    out->rate_low = mid - half;
    out->rate_high = mid + half;
}

int64_t md_report_arm_count(const md_report *r, int campaign, int arm, md_stage stage) {
    return *arm_cell(r, campaign, arm, stage);
}

int64_t md_report_day_count(const md_report *r, int campaign, int day, bool holdout, md_stage stage) {
    if (stage == MD_STAGE_TRIGGERED) return *daily_cell(r, campaign, day, holdout ? DS_HOLD_TRIG : DS_TRIG);
    if (stage == MD_STAGE_CONVERSIONS) return *daily_cell(r, campaign, day, holdout ? DS_HOLD_CONV : DS_CONV);
    return 0;
}

static int64_t *cell(const md_report *r, int campaign, int group, md_stage stage) {
    return &r->counts[((size_t)campaign * r->n_groups + (size_t)group) * MD_STAGE_COUNT + stage];
}

/* Whether the conversions of campaign's triggers of day are all in: the
 * day (in the operators' calendar) ended an attribution window ago. */
static bool labels_final(const md_report *r, int campaign, int day) {
    int64_t day_end_ms = (r->from_day + day + 1) * MD_DAY_MS - (int64_t)r->utc_offset_min * 60000;
    return day_end_ms + r->cfg->campaigns[campaign].attribution_ms <= r->now_ms;
}

static model_tally *model_of(md_report *r, int campaign, const char *version, size_t len) {
    for (size_t i = 0; i < r->n_models; i++)
        if (r->models[i].campaign == campaign && strlen(r->models[i].version) == len && memcmp(r->models[i].version, version, len) == 0)
            return &r->models[i];
    if (r->n_models >= MD_REPORT_MAX_MODELS || len == 0 || len > MD_MODEL_VERSION_MAX) return NULL;
    if (!r->models && !(r->models = calloc(MD_REPORT_MAX_MODELS, sizeof(model_tally)))) return NULL;
    model_tally *m = &r->models[r->n_models++];
    m->campaign = campaign;
    memcpy(m->version, version, len);
    m->version[len] = '\0';
    return m;
}

/* A model-quality field, "q.<treated|holdout>.<p in thousandths>.<version>:<stage>". */
static bool add_model_field(md_report *r, int campaign, int day, const char *field, long long v) {
    const char *colon = strrchr(field, ':');
    int group = strncmp(field, "q.treated.", 10) == 0 ? 0 : strncmp(field, "q.holdout.", 10) == 0 ? 1 : -1;
    if (group < 0 || !colon) return false;
    const char *b = field + 10;
    if (!(b[0] >= '0' && b[0] <= '9' && b[1] >= '0' && b[1] <= '9' && b[2] >= '0' && b[2] <= '9' && b[3] == '.') || colon <= b + 4)
        return false;
    int bin = (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
    bool trig = strcmp(colon + 1, "triggered") == 0;
    if (!trig && strcmp(colon + 1, "conversions") != 0) return false;
    model_tally *m = model_of(r, campaign, b + 4, (size_t)(colon - (b + 4)));
    if (!m) return false;
    if (!labels_final(r, campaign, day)) {
        if (trig && group == 0) m->pending += v;
        return true;
    }
    if (trig) m->n[group][bin] += (double)v;
    else m->conv[group][bin] += (double)v;
    return true;
}

void md_report_add(md_report *r, int campaign, int day, const char *field, const char *value) {
    const char *colon = strchr(field, ':');
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (!colon || *end || errno || campaign < 0 || (size_t)campaign >= r->cfg->n_campaigns || day < 0 || day >= r->n_days) {
        r->ignored++;
        return;
    }
    if (strncmp(field, "q.", 2) == 0) {
        if (!add_model_field(r, campaign, day, field, v)) r->ignored++;
        return;
    }
    size_t gl = (size_t)(colon - field);
    int stage = -1;
    for (int st = 0; st < MD_STAGE_COUNT; st++)
        if (strcmp(colon + 1, stage_names[st]) == 0) stage = st;
    if (strncmp(field, "gap.", 4) == 0) { /* the timing table: "gap.<bucket>:<stage>" */
        int bucket = md_gap_bucket_by_name(field + 4, gl - 4);
        if (strcmp(colon + 1, "released") == 0) stage = GAP_RELEASED;
        if (bucket < 0 || stage < 0) r->ignored++;
        else *gap_cell(r, campaign, bucket, stage) += v;
        return;
    }
    if (strncmp(field, "arm.", 4) == 0) { /* a policy arm's counter */
        const md_cfg_campaign *cc = &r->cfg->campaigns[campaign];
        for (size_t a = 0; stage >= 0 && a < cc->n_arms; a++)
            if (strlen(cc->arms[a].name) == gl - 4 && memcmp(cc->arms[a].name, field + 4, gl - 4) == 0) {
                *arm_cell(r, campaign, (int)a, (md_stage)stage) += v;
                return;
            }
        r->ignored++;
        return;
    }
    int group = -1;
    if (gl == 7 && memcmp(field, "holdout", 7) == 0) group = (int)r->cfg->n_channels;
    for (size_t c = 0; group < 0 && c < r->cfg->n_channels; c++)
        if (strlen(r->cfg->channels[c].name) == gl && memcmp(r->cfg->channels[c].name, field, gl) == 0) group = (int)c;
    if (group < 0 || stage < 0) {
        r->ignored++;
        return;
    }
    *cell(r, campaign, group, (md_stage)stage) += v;
    bool holdout = group == (int)r->cfg->n_channels;
    if (stage == MD_STAGE_TRIGGERED) *daily_cell(r, campaign, day, holdout ? DS_HOLD_TRIG : DS_TRIG) += v;
    if (stage == MD_STAGE_CONVERSIONS) *daily_cell(r, campaign, day, holdout ? DS_HOLD_CONV : DS_CONV) += v;
}

uint64_t md_report_ignored(const md_report *r) { return r->ignored; }

int64_t md_report_count(const md_report *r, int campaign, int channel, md_stage stage) {
    return *cell(r, campaign, channel, stage);
}

/* The difference of two conversion rates k1/n1 - k2/n2 in percentage
 * points and its 95% interval (normal approximation); false while either
 * group is empty. */
static bool rate_difference(int64_t k1, int64_t n1, int64_t k2, int64_t n2, double *pp, double *low_pp, double *high_pp) {
    if (n1 <= 0 || n2 <= 0) return false;
    double p1 = (double)k1 / (double)n1, p2 = (double)k2 / (double)n2;
    double se = sqrt(p1 * (1 - p1) / (double)n1 + p2 * (1 - p2) / (double)n2);
    *pp = (p1 - p2) * 100;
    *low_pp = (p1 - p2 - 1.96 * se) * 100;
    *high_pp = (p1 - p2 + 1.96 * se) * 100;
    return true;
}

void md_report_uplift(const md_report *r, int campaign, md_uplift *u) {
    memset(u, 0, sizeof(*u));
    for (size_t g = 0; g < r->cfg->n_channels; g++) {
        u->treated_triggers += *cell(r, campaign, (int)g, MD_STAGE_TRIGGERED);
        u->treated_conversions += *cell(r, campaign, (int)g, MD_STAGE_CONVERSIONS);
    }
    u->holdout_triggers = *cell(r, campaign, (int)r->cfg->n_channels, MD_STAGE_TRIGGERED);
    u->holdout_conversions = *cell(r, campaign, (int)r->cfg->n_channels, MD_STAGE_CONVERSIONS);
    double n1 = (double)u->treated_triggers, n2 = (double)u->holdout_triggers;
    u->treated_rate = n1 > 0 ? (double)u->treated_conversions / n1 : 0;
    u->holdout_rate = n2 > 0 ? (double)u->holdout_conversions / n2 : 0;
    u->has_uplift = rate_difference(u->treated_conversions, u->treated_triggers, u->holdout_conversions, u->holdout_triggers, &u->uplift_pp,
                                    &u->ci_low_pp, &u->ci_high_pp);
}

void md_report_arm_vs_first(const md_report *r, int campaign, int arm, md_arm_comparison *out) {
    memset(out, 0, sizeof(*out));
    int64_t k = *arm_cell(r, campaign, arm, MD_STAGE_TRIGGERED), conv = *arm_cell(r, campaign, arm, MD_STAGE_CONVERSIONS);
    out->has_rate = k > 0;
    if (k > 0) {
        double p = (double)conv / (double)k, se = sqrt(p * (1 - p) / (double)k);
        out->rate = p;
        out->rate_low = p - 1.96 * se;
        out->rate_high = p + 1.96 * se;
    }
    if (arm == 0) return;
    out->has_difference = rate_difference(conv, k, *arm_cell(r, campaign, 0, MD_STAGE_CONVERSIONS), *arm_cell(r, campaign, 0, MD_STAGE_TRIGGERED),
                                          &out->difference_pp, &out->low_pp, &out->high_pp);
}

void md_report_set_paused(md_report *r, const int64_t *since_ms) {
    for (size_t c = 0; c < r->cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) r->paused_since[c] = since_ms[c];
}

size_t md_report_n_models(const md_report *r) { return r->n_models; }

void md_report_model(const md_report *r, size_t i, md_model_report *out) {
    const model_tally *m = &r->models[i];
    const md_config *cfg = r->cfg;
    memset(out, 0, sizeof(*out));
    out->campaign = m->campaign;
    out->version = m->version;
    out->current = strcmp(cfg->campaigns[m->campaign].model.version, m->version) == 0;
    out->pending = m->pending;
    double p[MD_REPORT_P_BINS], n[MD_REPORT_P_BINS], conv[MD_REPORT_P_BINS];
    int decile_of[MD_REPORT_P_BINS];
    for (int b = 0; b < MD_REPORT_P_BINS; b++) {
        p[b] = (double)b / MD_REPORT_P_BINS; /* the moments' p, to the thousandth */
        /* Releases subtract from counts the trigger added: never below 0
         * even if an increment was lost to an operator's edit. */
        n[b] = m->n[0][b] > 0 ? m->n[0][b] : 0;
        conv[b] = m->conv[0][b] < 0 ? 0 : m->conv[0][b] > n[b] ? n[b] : m->conv[0][b];
    }
    md_model_quality_binned(p, n, conv, MD_REPORT_P_BINS, (size_t)cfg->learning.calibration_min, &out->q, decile_of);
    /* The holdout group by the same p: what the same p gives uncontacted. */
    for (int b = 0; b < MD_REPORT_P_BINS; b++) {
        int k = out->q.n ? decile_of[b] : b * MD_QUALITY_BINS / MD_REPORT_P_BINS;
        out->holdout_n[k] += (int64_t)m->n[1][b];
        out->holdout_conv[k] += (int64_t)m->conv[1][b];
        out->holdout_decisions += (int64_t)m->n[1][b];
        out->holdout_conversions += (int64_t)m->conv[1][b];
    }
    for (int d = r->n_days - 1; d >= 0; d--)
        if (labels_final(r, m->campaign, d)) {
            snprintf(out->final_through, sizeof(out->final_through), "%s", r->day_names[d]);
            break;
        }
    out->drifting = cfg->learning.calibration_bound > 0 && out->q.bins_counted > 0 &&
                    out->q.max_calibration_error > cfg->learning.calibration_bound;
}

bool md_report_model_of(const md_report *r, int campaign, const char *version, md_model_report *out) {
    for (size_t i = 0; i < r->n_models; i++)
        if (r->models[i].campaign == campaign && strcmp(r->models[i].version, version) == 0) {
            md_report_model(r, i, out);
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------------- */
/* Output                                                                     */

static void print_models_text(const md_report *r, int c, FILE *out) {
    bool header = false;
    for (size_t i = 0; i < r->n_models; i++) {
        if (r->models[i].campaign != c) continue;
        md_model_report m;
        md_report_model(r, i, &m);
        if (!header) {
            fprintf(out, "  model quality (treated decisions whose %lld-day attribution window has closed; p to the thousandth):\n",
                    (long long)(r->cfg->campaigns[c].attribution_ms / 86400000));
            header = true;
        }
        fprintf(out, "    %s%s: %zu decisions, %zu conversions, %lld still open", m.version, m.current ? " (running)" : "", m.q.n,
                m.q.positives, (long long)m.pending);
        if (m.q.n == 0) {
            fprintf(out, "\n");
            continue;
        }
        fprintf(out, "\n      AUC %.3f  Brier %.4f  log loss %.4f  calibration error ", m.q.auc, m.q.brier, m.q.log_loss);
        if (m.q.bins_counted)
            fprintf(out, "%.1f points (%.1f standard errors) over %d deciles of >= %lld%s\n", 100 * m.q.max_calibration_error,
                    m.q.max_calibration_z, m.q.bins_counted, (long long)r->cfg->learning.calibration_min,
                    m.drifting ? ", ABOVE learning.calibration_bound" : "");
        else fprintf(out, "not measured (no decile of >= %lld decisions)\n", (long long)r->cfg->learning.calibration_min);
        fprintf(out, "      %-7s %9s %10s %9s %9s %9s\n", "decile", "decisions", "predicted", "observed", "holdout", "observed");
        for (int k = 0; k < MD_QUALITY_BINS; k++) {
            const md_quality_bin *b = &m.q.bins[k];
            if (b->n == 0 && m.holdout_n[k] == 0) continue;
            fprintf(out, "      %-7d %9zu", k + 1, b->n);
            if (b->n) fprintf(out, " %9.1f%% %8.1f%%", 100 * b->mean_p, 100 * b->observed);
            else fprintf(out, " %10s %9s", "-", "-");
            fprintf(out, " %9lld", (long long)m.holdout_n[k]);
            if (m.holdout_n[k]) fprintf(out, " %8.1f%%\n", 100.0 * (double)m.holdout_conv[k] / (double)m.holdout_n[k]);
            else fprintf(out, " %9s\n", "-");
        }
    }
}

/* An estimate (key, unless NULL) and its interval ([low, high] under
 * ci_key), or nulls when there is none. */
static void estimate_json(md_jsonw *w, const char *key, const char *ci_key, bool has, double v, double low, double high) {
    if (key) {
        md_jsonw_key(w, key);
        if (has) md_jsonw_num(w, v);
        else md_jsonw_null(w);
    }
    md_jsonw_key(w, ci_key);
    if (!has) {
        md_jsonw_null(w);
        return;
    }
    md_jsonw_arr_open(w);
    md_jsonw_num(w, low);
    md_jsonw_num(w, high);
    md_jsonw_arr_close(w);
}

static void num_or_null(md_jsonw *w, const char *key, double v) {
    md_jsonw_key(w, key);
    if (isnan(v)) md_jsonw_null(w);
    else md_jsonw_num(w, v);
}

static void print_models_json(const md_report *r, int c, md_jsonw *w) {
    md_jsonw_key(w, "models");
    md_jsonw_arr_open(w);
    for (size_t i = 0; i < r->n_models; i++) {
        if (r->models[i].campaign != c) continue;
        md_model_report m;
        md_report_model(r, i, &m);
        md_jsonw_obj_open(w);
        md_jsonw_kstr(w, "version", m.version);
        md_jsonw_kbool(w, "running", m.current);
        md_jsonw_kstr(w, "labels_final_through", m.final_through);
        md_jsonw_kint(w, "decisions", (int64_t)m.q.n);
        md_jsonw_kint(w, "conversions", (int64_t)m.q.positives);
        md_jsonw_kint(w, "pending", m.pending);
        num_or_null(w, "auc", m.q.auc);
        num_or_null(w, "brier", m.q.brier);
        num_or_null(w, "log_loss", m.q.log_loss);
        num_or_null(w, "calibration_error", m.q.max_calibration_error);
        num_or_null(w, "calibration_z", m.q.max_calibration_z);
        md_jsonw_kint(w, "deciles_counted", m.q.bins_counted);
        md_jsonw_kint(w, "decile_min_decisions", r->cfg->learning.calibration_min);
        md_jsonw_kbool(w, "drifting", m.drifting);
        md_jsonw_kint(w, "holdout_decisions", m.holdout_decisions);
        md_jsonw_kint(w, "holdout_conversions", m.holdout_conversions);
        md_jsonw_key(w, "reliability");
        md_jsonw_arr_open(w);
        for (int k = 0; k < MD_QUALITY_BINS; k++) {
            md_jsonw_obj_open(w);
            md_jsonw_kint(w, "decisions", (int64_t)m.q.bins[k].n);
            num_or_null(w, "predicted", m.q.bins[k].n ? m.q.bins[k].mean_p : NAN);
            num_or_null(w, "observed", m.q.bins[k].n ? m.q.bins[k].observed : NAN);
            md_jsonw_kint(w, "holdout_decisions", m.holdout_n[k]);
            num_or_null(w, "holdout_observed", m.holdout_n[k] ? (double)m.holdout_conv[k] / (double)m.holdout_n[k] : NAN);
            md_jsonw_obj_close(w);
        }
        md_jsonw_arr_close(w);
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
}

static void print_timing_text(const md_report *r, int c, FILE *out) {
    bool header = false;
    for (int b = 0; b < MD_GAP_BUCKETS; b++) {
        md_gap_row g;
        md_report_gap(r, c, b, &g);
        if (g.moments == 0) continue;
        if (!header) {
            fprintf(out, "  timing (contacts by days since the campaign's previous contact; conversions within %lld days):\n",
                    (long long)(r->cfg->campaigns[c].attribution_ms / 86400000));
            fprintf(out, "    %-8s %9s %9s %9s %9s %10s %11s  %s\n", "gap days", "contacts", "not made", "reached", "no answer",
                    "complaints", "conversions", "conv/contact (95% CI)");
            header = true;
        }
        fprintf(out, "    %-8s %9lld %9lld %9lld %9lld %10lld %11lld  ", md_gap_bucket_name(b), (long long)g.contacts, (long long)g.not_made,
                (long long)g.reached, (long long)g.no_answer, (long long)g.complaints, (long long)g.conversions);
        if (g.has_rate) fprintf(out, "%.3f (%.3f .. %.3f)\n", g.rate, g.rate_low, g.rate_high);
        else fprintf(out, "-\n");
    }
}

static void print_timing_json(const md_report *r, int c, md_jsonw *w) {
    md_jsonw_key(w, "timing");
    md_jsonw_arr_open(w);
    for (int b = 0; b < MD_GAP_BUCKETS; b++) {
        md_gap_row g;
        md_report_gap(r, c, b, &g);
        md_jsonw_obj_open(w);
        md_jsonw_kstr(w, "gap_days", md_gap_bucket_name(b));
        md_jsonw_kint(w, "moments", g.moments);
        md_jsonw_kint(w, "not_made", g.not_made);
        md_jsonw_kint(w, "contacts", g.contacts);
        md_jsonw_kint(w, "reached", g.reached);
        md_jsonw_kint(w, "no_answer", g.no_answer);
        md_jsonw_kint(w, "complaints", g.complaints);
        md_jsonw_kint(w, "conversions", g.conversions);
        estimate_json(w, "conversions_per_contact", "conversions_per_contact_ci95", g.has_rate, g.rate, g.rate_low, g.rate_high);
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
}

static const char *group_name(const md_report *r, size_t g) {
    return g < r->cfg->n_channels ? r->cfg->channels[g].name : "holdout";
}

static bool group_empty(const md_report *r, int c, size_t g) {
    for (int s = 0; s < MD_STAGE_COUNT; s++)
        if (*cell(r, c, (int)g, (md_stage)s)) return false;
    return true;
}

/* The stages shown as a funnel row (conversions and amount go to the uplift part). */
static const md_stage funnel_stages[] = {MD_STAGE_TRIGGERED, MD_STAGE_FOLLOW_UPS, MD_STAGE_SENT,     MD_STAGE_DELIVERED, MD_STAGE_REACHED,
                                         MD_STAGE_OPENED,    MD_STAGE_CONVERTED, MD_STAGE_DECLINED, MD_STAGE_NO_ANSWER,
                                         MD_STAGE_HANGUP,    MD_STAGE_COMPLAINT, MD_STAGE_OPT_OUT};
#define N_FUNNEL (sizeof(funnel_stages) / sizeof(funnel_stages[0]))

void md_report_print_text(const md_report *r, FILE *out) {
    fprintf(out, "momentd report, trigger days %s .. %s (%s)\n", r->from, r->to, r->cfg->contact.default_utc_offset);
    fprintf(out, "rates are shares of the triggers sent on that channel\n");
    for (size_t c = 0; c < r->cfg->n_campaigns; c++) {
        const md_cfg_campaign *lc = &r->cfg->campaigns[c];
        char since[32];
        fprintf(out, "\ncampaign %s (priority %lld; starts %s, ends %s; %s%s)\n  %-14s", lc->name, (long long)lc->priority,
                *lc->starts ? lc->starts : "always", *lc->ends ? lc->ends : "never",
                c < MD_MAX_CAMPAIGNS && r->paused_since[c] ? "PAUSED since " : "running",
                c < MD_MAX_CAMPAIGNS && r->paused_since[c] ? (md_format_time(r->paused_since[c], since), since) : "", "channel");
        for (size_t k = 0; k < N_FUNNEL; k++) fprintf(out, " %10s", stage_names[funnel_stages[k]]);
        fprintf(out, "\n");
        bool any = false;
        for (size_t g = 0; g < r->cfg->n_channels; g++) {
            if (group_empty(r, (int)c, g)) continue;
            any = true;
            int64_t trig = *cell(r, (int)c, (int)g, MD_STAGE_TRIGGERED);
            fprintf(out, "  %-14s", group_name(r, g));
            for (size_t k = 0; k < N_FUNNEL; k++) fprintf(out, " %10lld", (long long)*cell(r, (int)c, (int)g, funnel_stages[k]));
            fprintf(out, "\n  %-14s", "");
            for (size_t k = 0; k < N_FUNNEL; k++) {
                if (trig > 0) fprintf(out, " %9.1f%%", 100.0 * (double)*cell(r, (int)c, (int)g, funnel_stages[k]) / (double)trig);
                else fprintf(out, " %10s", "-");
            }
            fprintf(out, "\n");
        }
        if (!any) fprintf(out, "  (no triggers in these days)\n");
        md_uplift u;
        md_report_uplift(r, (int)c, &u);
        int64_t amount_t = 0;
        for (size_t g = 0; g < r->cfg->n_channels; g++) amount_t += *cell(r, (int)c, (int)g, MD_STAGE_AMOUNT_FEN);
        int64_t amount_h = *cell(r, (int)c, (int)r->cfg->n_channels, MD_STAGE_AMOUNT_FEN);
        fprintf(out, "  conversions observed in the event stream within %lld days of a trigger:\n",
                (long long)(r->cfg->campaigns[c].attribution_ms / 86400000));
        fprintf(out, "    treated  %8lld triggers %8lld conversions %7.2f%%  amount %.2f\n", (long long)u.treated_triggers,
                (long long)u.treated_conversions, u.treated_rate * 100, (double)amount_t / 100);
        fprintf(out, "    holdout  %8lld triggers %8lld conversions %7.2f%%  amount %.2f\n", (long long)u.holdout_triggers,
                (long long)u.holdout_conversions, u.holdout_rate * 100, (double)amount_h / 100);
        if (u.has_uplift)
            fprintf(out, "    uplift   %+.2f percentage points (95%% CI %+.2f .. %+.2f)\n", u.uplift_pp, u.ci_low_pp, u.ci_high_pp);
        else
            fprintf(out, "    uplift   not measurable yet (no triggers in %s)\n", u.treated_triggers ? "the holdout group" : "the treated group");
        const md_cfg_campaign *cc = &r->cfg->campaigns[c];
        if (cc->n_arms) {
            fprintf(out, "  policy arms (contacts made, and what followed):\n    %-14s %-9s %9s %11s %12s %11s %11s %11s\n", "arm", "policy",
                    "contacts", "conversions", "amount", "complaints", "no answer", "conv/contact");
            for (size_t a = 0; a < cc->n_arms; a++) {
                int64_t k = *arm_cell(r, (int)c, (int)a, MD_STAGE_TRIGGERED), conv = *arm_cell(r, (int)c, (int)a, MD_STAGE_CONVERSIONS);
                char policy[32];
                if (strcmp(cc->arms[a].cooldown.mode, "fixed") == 0) snprintf(policy, sizeof(policy), "fixed %gd", cc->arms[a].cooldown.fixed_days);
                else snprintf(policy, sizeof(policy), "adaptive");
                fprintf(out, "    %-14s %-9s %9lld %11lld %12.2f %11lld %11lld ", cc->arms[a].name, policy, (long long)k, (long long)conv,
                        (double)*arm_cell(r, (int)c, (int)a, MD_STAGE_AMOUNT_FEN) / 100, (long long)*arm_cell(r, (int)c, (int)a, MD_STAGE_COMPLAINT),
                        (long long)*arm_cell(r, (int)c, (int)a, MD_STAGE_NO_ANSWER));
                if (k > 0) fprintf(out, "%11.3f\n", (double)conv / (double)k);
                else fprintf(out, "%11s\n", "-");
            }
            for (size_t a = 0; a < cc->n_arms; a++) {
                md_arm_comparison cmp;
                md_report_arm_vs_first(r, (int)c, (int)a, &cmp);
                fprintf(out, "    %-14s model %s", cc->arms[a].name, md_campaign_model(r->cfg, (int)c, (int)a)->version);
                if (cmp.has_rate) fprintf(out, "; conversions per contact %.3f (95%% CI %.3f .. %.3f)", cmp.rate, cmp.rate_low, cmp.rate_high);
                if (cmp.has_difference)
                    fprintf(out, "; against %s %+.2f points (95%% CI %+.2f .. %+.2f)", cc->arms[0].name, cmp.difference_pp, cmp.low_pp, cmp.high_pp);
                fprintf(out, "\n");
            }
        }
        print_timing_text(r, (int)c, out);
        print_models_text(r, (int)c, out);
    }
    if (r->ignored) fprintf(out, "\n%llu funnel fields of unknown channels or stages were left out\n", (unsigned long long)r->ignored);
}

void md_report_print_json(const md_report *r, FILE *out) {
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "from", r->from);
    md_jsonw_kstr(&w, "to", r->to);
    md_jsonw_kstr(&w, "utc_offset", r->cfg->contact.default_utc_offset);
    md_jsonw_key(&w, "campaigns");
    md_jsonw_arr_open(&w);
    for (size_t c = 0; c < r->cfg->n_campaigns; c++) {
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "campaign", r->cfg->campaigns[c].name);
        md_jsonw_key(&w, "lifecycle");
        md_jsonw_obj_open(&w);
        md_jsonw_kint(&w, "priority", r->cfg->campaigns[c].priority);
        md_jsonw_kstr(&w, "starts", r->cfg->campaigns[c].starts);
        md_jsonw_kstr(&w, "ends", r->cfg->campaigns[c].ends);
        int64_t ps = c < MD_MAX_CAMPAIGNS ? r->paused_since[c] : 0;
        md_jsonw_kbool(&w, "paused", ps != 0);
        char pst[32] = "";
        if (ps) md_format_time(ps, pst);
        md_jsonw_kstr(&w, "paused_since", pst);
        md_jsonw_obj_close(&w);
        md_jsonw_key(&w, "channels");
        md_jsonw_arr_open(&w);
        for (size_t g = 0; g < r->n_groups; g++) {
            int64_t trig = *cell(r, (int)c, (int)g, MD_STAGE_TRIGGERED);
            md_jsonw_obj_open(&w);
            md_jsonw_kstr(&w, "channel", group_name(r, g));
            md_jsonw_key(&w, "counts");
            md_jsonw_obj_open(&w);
            for (int s = 0; s < MD_STAGE_COUNT; s++) md_jsonw_kint(&w, stage_names[s], *cell(r, (int)c, (int)g, (md_stage)s));
            md_jsonw_obj_close(&w);
            md_jsonw_key(&w, "rates");
            md_jsonw_obj_open(&w);
            for (int s = 1; s < MD_STAGE_COUNT; s++) {
                if (s == MD_STAGE_AMOUNT_FEN) continue;
                md_jsonw_key(&w, stage_names[s]);
                if (trig > 0) md_jsonw_num(&w, (double)*cell(r, (int)c, (int)g, (md_stage)s) / (double)trig);
                else md_jsonw_null(&w);
            }
            md_jsonw_obj_close(&w);
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
        md_uplift u;
        md_report_uplift(r, (int)c, &u);
        md_jsonw_key(&w, "uplift");
        md_jsonw_obj_open(&w);
        md_jsonw_kint(&w, "treated_triggers", u.treated_triggers);
        md_jsonw_kint(&w, "treated_conversions", u.treated_conversions);
        md_jsonw_knum(&w, "treated_rate", u.treated_rate);
        md_jsonw_kint(&w, "holdout_triggers", u.holdout_triggers);
        md_jsonw_kint(&w, "holdout_conversions", u.holdout_conversions);
        md_jsonw_knum(&w, "holdout_rate", u.holdout_rate);
        estimate_json(&w, "uplift_pp", "ci95_pp", u.has_uplift, u.uplift_pp, u.ci_low_pp, u.ci_high_pp);
        md_jsonw_obj_close(&w);
        const md_cfg_campaign *cc = &r->cfg->campaigns[c];
        md_jsonw_key(&w, "arms");
        md_jsonw_arr_open(&w);
        for (size_t a = 0; a < cc->n_arms; a++) {
            int64_t k = *arm_cell(r, (int)c, (int)a, MD_STAGE_TRIGGERED), conv = *arm_cell(r, (int)c, (int)a, MD_STAGE_CONVERSIONS);
            md_jsonw_obj_open(&w);
            md_jsonw_kstr(&w, "arm", cc->arms[a].name);
            md_jsonw_kstr(&w, "mode", cc->arms[a].cooldown.mode);
            md_jsonw_knum(&w, "share_pct", cc->arms[a].share_pct);
            md_jsonw_kint(&w, "contacts", k);
            md_jsonw_kint(&w, "conversions", conv);
            md_jsonw_kint(&w, "amount_fen", *arm_cell(r, (int)c, (int)a, MD_STAGE_AMOUNT_FEN));
            md_jsonw_kint(&w, "complaints", *arm_cell(r, (int)c, (int)a, MD_STAGE_COMPLAINT));
            md_jsonw_kint(&w, "no_answer", *arm_cell(r, (int)c, (int)a, MD_STAGE_NO_ANSWER));
            md_jsonw_kint(&w, "opt_out", *arm_cell(r, (int)c, (int)a, MD_STAGE_OPT_OUT));
            md_jsonw_key(&w, "conversions_per_contact");
            if (k > 0) md_jsonw_num(&w, (double)conv / (double)k);
            else md_jsonw_null(&w);
            md_jsonw_kstr(&w, "model_version", md_campaign_model(r->cfg, (int)c, (int)a)->version);
            md_arm_comparison cmp;
            md_report_arm_vs_first(r, (int)c, (int)a, &cmp);
            estimate_json(&w, NULL, "conversions_per_contact_ci95", cmp.has_rate, cmp.rate, cmp.rate_low, cmp.rate_high);
            estimate_json(&w, "vs_first_arm_pp", "vs_first_arm_ci95_pp", cmp.has_difference, cmp.difference_pp, cmp.low_pp, cmp.high_pp);
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
        print_timing_json(r, (int)c, &w);
        print_models_json(r, (int)c, &w);
        md_jsonw_key(&w, "days");
        md_jsonw_arr_open(&w);
        for (int d = 0; d < r->n_days; d++) {
            md_jsonw_obj_open(&w);
            md_jsonw_kstr(&w, "day", r->day_names[d]);
            md_jsonw_kint(&w, "triggered", *daily_cell(r, (int)c, d, DS_TRIG));
            md_jsonw_kint(&w, "conversions", *daily_cell(r, (int)c, d, DS_CONV));
            md_jsonw_kint(&w, "holdout_triggered", *daily_cell(r, (int)c, d, DS_HOLD_TRIG));
            md_jsonw_kint(&w, "holdout_conversions", *daily_cell(r, (int)c, d, DS_HOLD_CONV));
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
        md_jsonw_obj_close(&w);
    }
    md_jsonw_arr_close(&w);
    md_jsonw_kint(&w, "ignored_fields", (int64_t)r->ignored);
    md_jsonw_obj_close(&w);
    fprintf(out, "%s\n", w.oom ? "{\"error\":\"out of memory\"}" : w.buf);
    md_jsonw_fini(&w);
}
