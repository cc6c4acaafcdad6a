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

struct md_report {
    const md_config *cfg;
    char from[16], to[16];
    int n_days;
    char (*day_names)[16];
    size_t n_groups; /* channels + the holdout group */
    int64_t *counts; /* [campaign][group][stage] */
    int64_t *daily;  /* [campaign][day][DS_*] */
    int64_t *arms;   /* [campaign][MD_MAX_ARMS][stage] */
    uint64_t ignored;
};

md_report *md_report_new(const md_config *cfg, int64_t from_day, int64_t to_day) {
    if (to_day < from_day || to_day - from_day > 3660) return NULL;
    md_report *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->cfg = cfg;
    r->n_days = (int)(to_day - from_day + 1);
    r->n_groups = cfg->n_channels + 1;
    r->counts = calloc(cfg->n_campaigns * r->n_groups * MD_STAGE_COUNT + 1, sizeof(int64_t));
    r->daily = calloc(cfg->n_campaigns * (size_t)r->n_days * DS_COUNT + 1, sizeof(int64_t));
    r->day_names = calloc((size_t)r->n_days, sizeof(*r->day_names));
    r->arms = calloc(cfg->n_campaigns * MD_MAX_ARMS * MD_STAGE_COUNT + 1, sizeof(int64_t));
    if (!r->counts || !r->daily || !r->day_names || !r->arms) {
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

void md_report_add(md_report *r, int campaign, int day, const char *field, const char *value) {
    const char *colon = strchr(field, ':');
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (!colon || *end || errno || campaign < 0 || (size_t)campaign >= r->cfg->n_campaigns || day < 0 || day >= r->n_days) {
        r->ignored++;
        return;
    }
    size_t gl = (size_t)(colon - field);
    int stage = -1;
    for (int st = 0; st < MD_STAGE_COUNT; st++)
        if (strcmp(colon + 1, stage_names[st]) == 0) stage = st;
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
    u->has_uplift = n1 > 0 && n2 > 0;
    if (!u->has_uplift) return;
    double p1 = u->treated_rate, p2 = u->holdout_rate;
    double se = sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
    u->uplift_pp = (p1 - p2) * 100;
    u->ci_low_pp = (p1 - p2 - 1.96 * se) * 100;
    u->ci_high_pp = (p1 - p2 + 1.96 * se) * 100;
}

/* ------------------------------------------------------------------------- */
/* Output                                                                     */

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
        fprintf(out, "\ncampaign %s\n  %-14s", r->cfg->campaigns[c].name, "channel");
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
        }
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
        md_jsonw_key(&w, "uplift_pp");
        if (u.has_uplift) md_jsonw_num(&w, u.uplift_pp);
        else md_jsonw_null(&w);
        md_jsonw_key(&w, "ci95_pp");
        if (u.has_uplift) {
            md_jsonw_arr_open(&w);
            md_jsonw_num(&w, u.ci_low_pp);
            md_jsonw_num(&w, u.ci_high_pp);
            md_jsonw_arr_close(&w);
        } else {
            md_jsonw_null(&w);
        }
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
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
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
