/* engine.c: from one event to decisions: windows, tags, demand model, contact
 * policy, triggers. Pure: the time is the event's own (or explain's "now"),
 * and every state change goes through cstate's recording helpers.
 *
 * Order of one event (md_engine_process):
 *   1. redelivery guard (offset watermark), re-publication guard (event_id),
 *      lateness guard; each stops here with only the watermark recorded;
 *   2. counters: matching signals add to their series' buckets; balance and
 *      last-event times; expired buckets dropped; service-recovery blackout;
 *   3. features at the event's time: windows, recency, tags (statistical,
 *      rule), each campaign's score, then mined tags (they may read scores);
 *   4. per campaign, the checks of docs/SPEC.md sections 5-6 in a fixed order (the
 *      first that fails is the recorded suppression reason), then channel,
 *      caps, quiet hours, holdout; a trigger is written to the outbox in the
 *      same atomic apply as the counters, so none can be lost.
 *
 * Why one file of 800 lines: the order of the checks above is the policy,
 * and it reads top to bottom here; events, outcomes and explain share the
 * same decide(), and the moment's schema is written and read back beside it. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cstate_internal.h"
#include "momentd/jsonw.h"

static const char *const applied_names[] = {"applied", "duplicate_offset", "duplicate_event_id", "too_late", "forgotten"};
const char *md_applied_name(md_applied a) { return (unsigned)a < sizeof(applied_names) / sizeof(applied_names[0]) ? applied_names[a] : "?"; }

void md_engine_out_init(md_engine_out *out) { memset(out, 0, sizeof(*out)); }

void md_engine_out_fini(md_engine_out *out) {
    for (size_t i = 0; i < out->n_triggers; i++) free(out->triggers[i].payload);
    out->n_triggers = 0;
}

/* An empty result for the next decision (the evaluations are filled by it). */
static void out_reset(md_engine_out *out) {
    md_engine_out_fini(out);
    out->applied = MD_APPLIED;
    out->n_campaigns = 0;
    out->n_contact_point_records = 0;
    out->n_conversions = 0;
    out->dedupe_evicted = 0;
    out->n_stale = 0;
    out->n_held = 0;
}

/* ------------------------------------------------------------------------- */
/* Pure pieces                                                                */

static bool is_fixed(const md_cfg_cooldown *cd) { return strcmp(cd->mode, "fixed") == 0; }

static bool recovers_by_window(const md_cfg_cooldown *cd) { return cd->recovery && strcmp(cd->recovery, "window") == 0; }

/* The share of the response a contact d days ago leaves (adaptive mode).
 * exponential: 1 - rho e^(-d/tau). window: the whole penalty for tau days
 * (the customer still counts that contact), then the same fading. */
static double recovered_share(const md_cfg_cooldown *cd, double d) {
    if (recovers_by_window(cd) && d < cd->recovery_days) return 1 - cd->repeat_penalty;
    return 1 - cd->repeat_penalty * exp(-d / cd->recovery_days);
}

double md_contact_value(const md_cfg_cooldown *cd, double p, double days_since_contact, double conversion_value, double contact_cost,
                        double unwanted_cost) {
    double recovered = !is_fixed(cd) && days_since_contact >= 0 ? recovered_share(cd, days_since_contact) : 1;
    return p * conversion_value * recovered - contact_cost - unwanted_cost * (1 - p);
}

double md_cooldown_required_days(const md_cfg_cooldown *cd, double p, double threshold, double conversion_value, double unwanted_cost) {
    if (is_fixed(cd)) return cd->fixed_days;
    if (p <= threshold || conversion_value <= 0) return cd->max_days;
    /* Contacting at p after d days is worth what a threshold contact with
     * no contact before it is worth when
     *   p V (1 - rho e^(-d/tau)) - U (1 - p) = theta V - U (1 - theta)
     * (the contact cost is on both sides), so
     *   d = tau ln(rho p V / ((p - theta)(V + U))):
     * long just above the threshold, short at peaks. */
    double ratio = cd->repeat_penalty * p * conversion_value / ((p - threshold) * (conversion_value + unwanted_cost));
    double d = ratio > 0 ? cd->recovery_days * log(ratio) : 0;
    if (recovers_by_window(cd)) {
        /* Within the window the share is 1 - rho whatever d: a contact there
         * clears the bar when p V (1 - rho) - U (1 - p) >= theta V - U (1 - theta),
         * i.e. p >= theta (V + U) / (V (1 - rho) + U), and then at once (a
         * peak worth a tired customer); otherwise not before the window
         * has passed, and then as the fading says. */
        double need = threshold * (conversion_value + unwanted_cost) / (conversion_value * (1 - cd->repeat_penalty) + unwanted_cost);
        if (p >= need) d = cd->min_days;
        else if (!(d >= cd->recovery_days)) d = cd->recovery_days;
    }
    if (!(d < cd->max_days)) d = cd->max_days; /* also NaN */
    if (d < cd->min_days) d = cd->min_days;
    return d;
}

bool md_quiet_hours_active(int start_min, int end_min, int64_t t_ms, int utc_offset_min) {
    if (start_min == end_min) return false;
    int64_t local_min = t_ms / 60000 + utc_offset_min;
    int m = (int)(((local_min % 1440) + 1440) % 1440);
    if (start_min < end_min) return m >= start_min && m < end_min;
    return m >= start_min || m < end_min; /* wraps past midnight, e.g. 21:00-09:00 */
}

unsigned md_holdout_bucket_seeded(const char *customer_id, uint64_t seed) {
    return (unsigned)(md_hash64(customer_id, strlen(customer_id), seed) % 10000);
}

unsigned md_holdout_bucket(const char *customer_id, const char *campaign) {
    return md_holdout_bucket_seeded(customer_id, md_holdout_seed(campaign));
}

bool md_learning_sampled(const md_config *cfg, int c, const char *customer_id) {
    uint64_t h = md_hash64(customer_id, strlen(customer_id), cfg->rules->campaigns[c].learning_seed);
    return (unsigned)(h % 10000) < (unsigned)llround(cfg->learning.sample_pct * 100);
}

int md_policy_arm(const md_config *cfg, int c, const char *customer_id) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    if (cc->n_arms == 0) return -1;
    uint64_t h = md_hash64(customer_id, strlen(customer_id), cfg->rules->campaigns[c].arm_seed);
    double x = (double)(h % 10000) / 100.0, edge = 0;
    for (size_t a = 0; a < cc->n_arms; a++) {
        edge += cc->arms[a].share_pct;
        if (x < edge) return (int)a;
    }
    return (int)cc->n_arms - 1; /* rounding at 100 */
}

const md_cfg_model *md_campaign_model(const md_config *cfg, int c, int arm) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    return arm >= 0 && (size_t)arm < cc->n_arms && cc->arms[arm].model.version ? &cc->arms[arm].model : &cc->model;
}

double md_campaign_threshold(const md_config *cfg, int c, int arm) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    return arm >= 0 && (size_t)arm < cc->n_arms && cc->arms[arm].threshold > 0 ? cc->arms[arm].threshold : cc->threshold;
}

double md_campaign_rearm_below(const md_config *cfg, int c, int arm) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    return arm >= 0 && (size_t)arm < cc->n_arms && cc->arms[arm].rearm_below > 0 ? cc->arms[arm].rearm_below : cc->rearm_below;
}

/* The contact policy of campaign c for a customer of policy arm `arm` (-1: none). */
static const md_cfg_cooldown *cooldown_of(const md_config *cfg, int c, int arm) {
    return arm >= 0 ? &cfg->campaigns[c].arms[arm].cooldown : &cfg->campaigns[c].cooldown;
}

void md_trigger_id(const char *campaign, const char *customer_id, const char *event_id, char out[MD_TRIGGER_ID_LEN]) {
    char buf[MD_EVENT_ID_MAX + MD_CUSTOMER_ID_MAX + 300];
    /* "<campaign>\0<customer>\0<event id>", cut as snprintf cuts it (an
     * id's text is stable across versions) */
    size_t len = md_join(buf, sizeof(buf), &campaign, 1);
    if (len + 1 < sizeof(buf)) len += 1 + md_join(buf + len + 1, sizeof(buf) - len - 1, &customer_id, 1);
    if (len + 1 < sizeof(buf)) len += 1 + md_join(buf + len + 1, sizeof(buf) - len - 1, &event_id, 1);
    uint64_t a = md_hash64(buf, len, 0x6d6f6d656e74ULL);
    uint64_t b = md_hash64(buf, len, a ^ 0x7472696767ULL);
    _Static_assert(MD_TRIGGER_ID_LEN == 34, "m, 32 hex digits and a NUL");
    out[0] = 'm'; /* "m%016" PRIx64 "%016" PRIx64 */
    md_fmt_hex(out + 1, a, 16);
    md_fmt_hex(out + 17, b, 16);
}

/* ------------------------------------------------------------------------- */
/* Windows and features                                                       */


static int64_t last_contact_any(const md_cstate *cs) {
    int64_t last = 0;
    for (size_t i = 0; i < cs->n_contacts; i++)
        if (cs->contacts[i].ts > last) last = cs->contacts[i].ts;
    for (size_t c = 0; c < cs->cfg->n_campaigns; c++)
        if (cs->camps[c].last_contact > last) last = cs->camps[c].last_contact;
    return last;
}

static md_value v_num(double x) {
    md_value v = {.kind = MD_VAL_NUM, .num = x};
    return v;
}
_Static_assert(MD_PAGES_MAX <= UINT16_MAX && MD_TOKEN_MAX + 1 <= UINT16_MAX, "an event's pages fit md_value's n and stride");
static md_value v_str(const char *s) {
    md_value v = {.kind = s ? MD_VAL_STR : MD_VAL_MISSING, .str = s};
    return v;
}
static const md_value v_missing = {.kind = MD_VAL_MISSING};

static md_value event_value(const md_event *ev, int f) {
    if (!ev) return v_missing;
    bool pay = ev->type == MD_EVENT_PAYMENT, call = ev->type == MD_EVENT_CALL, app = ev->type == MD_EVENT_APP_LOGIN;
    switch (f) {
    case MD_EF_TYPE: return v_str(md_event_type_name(ev->type));
    case MD_EF_AMOUNT: return pay ? v_num(ev->amount) : v_missing;
    case MD_EF_CHANNEL: return pay && ev->channel[0] ? v_str(ev->channel) : v_missing;
    case MD_EF_KIND: return pay ? v_str(ev->kind) : v_missing;
    case MD_EF_LATE: return pay ? v_num(ev->late) : v_missing;
    case MD_EF_BALANCE_AFTER: return pay && ev->has_balance_after ? v_num(ev->balance_after) : v_missing;
    case MD_EF_REASON: return call ? v_str(ev->reason) : v_missing;
    case MD_EF_DURATION_S: return call ? v_num((double)ev->duration_s) : v_missing;
    case MD_EF_DIRECTION: return call ? v_str(ev->inbound ? "inbound" : "outbound") : v_missing;
    case MD_EF_INBOUND: return call ? v_num(ev->inbound) : v_missing;
    case MD_EF_PAGES: {
        if (!app) return v_missing;
        md_value v = {.kind = MD_VAL_LIST, .list = ev->pages[0], .n = ev->n_pages, .stride = sizeof(ev->pages[0])};
        return v;
    }
    case MD_EF_SESSION_S: return app ? v_num((double)ev->session_s) : v_missing;
    default: return v_missing;
    }
}

/* Profile values that are whole numbers in text ("50000") read as numbers,
 * so `profile.credit_limit >= 10000` works; anything else is a string. */
static md_value profile_value(const char *s) {
    if (!s) return v_missing;
    double d;
    if (md_parse_f64(s, strlen(s), &d)) return v_num(d); /* most numbers: without strtod */
    char *end;
    d = strtod(s, &end);
    if (*s && !*end && end != s && isfinite(d)) return v_num(d);
    return v_str(s);
}

static int utc_offset_of(const md_cstate *cs);

/* get_slot's slots that need more than a load: builtins (dates, days
 * since), profile attributes (read as numbers when they are), statistical
 * tags. Apart, so that get_slot, which every expression node that reads a
 * value calls, needs no stack frame for them (BENCHMARKS.md). */
static __attribute__((noinline)) md_value get_slot_computed(const md_cstate *cs, int slot) {
    int idx = MD_SLOT_INDEX(slot);
    int64_t t = cs->eval_t;
    switch (MD_SLOT_CLASS(slot)) {
    case MD_SLOT_BUILTIN: {
        int64_t last = 0;
        switch (idx) {
        case MD_BI_BALANCE: return cs->has_balance ? v_num(cs->balance) : v_missing;
        case MD_BI_DAYS_SINCE_PAYMENT: last = cs->last_ts[MD_EVENT_PAYMENT]; break;
        case MD_BI_DAYS_SINCE_CALL: last = cs->last_ts[MD_EVENT_CALL]; break;
        case MD_BI_DAYS_SINCE_APP_LOGIN: last = cs->last_ts[MD_EVENT_APP_LOGIN]; break;
        case MD_BI_DAYS_SINCE_CONTACT: last = last_contact_any(cs); break;
        case MD_BI_DAY_OF_MONTH:
        case MD_BI_DAYS_IN_MONTH: {
            /* The decision's date in the customer's calendar, so that a
             * bill-cycle feature ("days to the statement date") can predict
             * a peak before any event shows it. */
            int y;
            unsigned m, d;
            md_civil_date(t, utc_offset_of(cs), &y, &m, &d);
            return v_num(idx == MD_BI_DAY_OF_MONTH ? d : md_days_in_month(y, m));
        }
        default: return v_missing;
        }
        if (last <= 0) return v_missing;
        double d = (double)(t - last) / (double)MD_DAY_MS;
        return v_num(d < 0 ? 0 : d);
    }
    case MD_SLOT_TAG: return v_str(md_cs_profile(cs, cs->r->tags[idx].profile_attr)); /* statistical */
    case MD_SLOT_PROFILE: return profile_value(md_cs_profile(cs, idx));
    default: return v_missing;
    }
}

static md_value get_slot(void *ctx, int slot) {
    const md_cstate *cs = ctx;
    int idx = MD_SLOT_INDEX(slot);
    switch (MD_SLOT_CLASS(slot)) {
    case MD_SLOT_EVENT: return event_value(cs->eval_event, idx);
    case MD_SLOT_WINDOW: return v_num(cs->win_vals[idx]);
    case MD_SLOT_SCORE: return v_num(cs->scores[idx]);
    case MD_SLOT_TAG:
        if (cs->r->tags[idx].cls != MD_TAG_STATISTICAL) return v_num(cs->tag_num[idx]);
        break;
    default: break;
    }
    return get_slot_computed(cs, slot);
}

static bool eval_bool(md_cstate *cs, const md_expr *e) {
    return e == NULL || md_value_truthy(md_expr_eval(e, get_slot, cs));
}

static int cmp_contrib(const void *a, const void *b) {
    double x = ((const md_contribution *)a)->contribution, y = ((const md_contribution *)b)->contribution;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The score of campaign c's model for the customer: the campaign's, or
 * their policy arm's when it has a model of its own (same features, its
 * own weights; rules.c checks the shape). */
static void score_campaign(const md_config *cfg, md_cstate *cs, int c, md_campaign_eval *ev) {
    const md_rcampaign *rc = &cs->r->campaigns[c];
    ev->arm = md_policy_arm(cfg, c, cs->customer_id);
    const md_cfg_model *m = md_campaign_model(cfg, c, ev->arm);
    double logit = m->intercept;
    ev->n_contrib = 0;
    ev->static_part = 0;
    for (size_t s = 0; s < rc->n_statics; s++) {
        const char *val = md_cs_profile(cs, rc->statics[s].profile_attr);
        const md_cfg_static *st = &m->statics[s];
        double off = 0;
        for (size_t k = 0; val && k < st->n_offsets; k++)
            if (md_str_eq(st->offsets[k].key, val)) off = st->offsets[k].value;
        ev->static_part += off;
        if (ev->n_contrib < MD_MAX_FEATURES)
            ev->contrib[ev->n_contrib++] = (md_contribution){.feature = -(int)s - 1, .value = 0, .contribution = off};
    }
    logit += ev->static_part;
    for (size_t f = 0; f < rc->n_features; f++) {
        const md_rfeature *rf = &rc->features[f];
        md_value v = md_expr_eval(rf->expr, get_slot, cs);
        double x = v.kind == MD_VAL_NUM ? v.num : 0; /* no value contributes nothing */
        if (x > rf->cap) x = rf->cap;
        if (rf->log1p) x = x > -1 ? log1p(x) : 0;
        double contribution = m->features[f].weight * x;
        logit += contribution;
        if (ev->n_contrib < MD_MAX_FEATURES)
            ev->contrib[ev->n_contrib++] = (md_contribution){.feature = (int)f, .value = v.kind == MD_VAL_NUM ? v.num : 0, .contribution = contribution};
    }
    /* In feature order: sorted only where shown (a moment's reasons,
     * explain), not for every event's score. */
    ev->logit = logit;
    ev->score = 1.0 / (1.0 + exp(-logit));
    cs->scores[c] = ev->score;
}

/* An evaluation zeroed but for its contributions, which score_campaign
 * writes from the first (n_contrib says how many are read): the 64 of them
 * are 1.5 KB, and zeroing them for every campaign at every event was a
 * twentieth of compute_features (BENCHMARKS.md). */
_Static_assert(offsetof(md_campaign_eval, suppressed) == offsetof(md_campaign_eval, contrib) + sizeof(((md_campaign_eval *)0)->contrib),
               "md_campaign_eval's contributions are followed by the rest");
static void clear_eval(md_campaign_eval *e) {
    memset(e, 0, offsetof(md_campaign_eval, contrib));
    memset(&e->suppressed, 0, sizeof(*e) - offsetof(md_campaign_eval, suppressed));
}

/* Windows, tags and scores at time t, into cs's scratch and out->eval. */
static void compute_features(const md_config *cfg, md_cstate *cs, const md_event *ev, int64_t t, md_engine_out *out) {
    cs->eval_t = t;
    cs->eval_event = ev;
    for (size_t w = 0; w < cfg->n_windows; w++) cs->win_vals[w] = md_cstate_window(cfg, cs, (int)w, t);
    for (size_t g = 0; g < cfg->n_tags; g++) {
        const md_rtag *rt = &cs->r->tags[g];
        cs->tag_num[g] = 0;
        if (rt->cls == MD_TAG_RULE) cs->tag_num[g] = md_value_truthy(md_expr_eval(rt->expr, get_slot, cs));
    }
    out->n_campaigns = cfg->n_campaigns;
    for (size_t c = 0; c < cfg->n_campaigns; c++) {
        clear_eval(&out->eval[c]);
        out->eval[c].channel = -1;
        score_campaign(cfg, cs, (int)c, &out->eval[c]);
    }
    for (size_t g = 0; g < cfg->n_tags; g++)
        if (cs->r->tags[g].cls == MD_TAG_MINED) cs->tag_num[g] = md_value_truthy(md_expr_eval(cs->r->tags[g].expr, get_slot, cs));
}

void md_engine_write_tags(const md_config *cfg, const md_cstate *cs, md_jsonw *w) {
    md_jsonw_arr_open(w);
    for (size_t g = 0; g < cfg->n_tags; g++) {
        const md_rtag *rt = &cs->r->tags[g];
        if (rt->cls == MD_TAG_STATISTICAL) {
            const char *v = md_cs_profile(cs, rt->profile_attr);
            if (!v) continue;
            char buf[400];
            MD_JOIN(buf, sizeof(buf), cfg->tags[g].name, ":", v);
            md_jsonw_str(w, buf);
        } else if (cs->tag_num[g] != 0) {
            md_jsonw_str(w, cfg->tags[g].name);
        }
    }
    md_jsonw_arr_close(w);
}

void md_engine_write_tag_categories(const md_config *cfg, const md_cstate *cs, md_jsonw *w) {
    md_jsonw_obj_open(w);
    for (size_t g = 0; g < cfg->n_tags; g++) {
        const char *cat = cfg->tags[g].category;
        if (!cat || !*cat) continue;
        bool first = true; /* the category's first tag: it is written here, with all of its tags */
        for (size_t k = 0; k < g && first; k++) first = !cfg->tags[k].category || strcmp(cfg->tags[k].category, cat) != 0;
        if (!first) continue;
        bool opened = false;
        for (size_t k = g; k < cfg->n_tags; k++) {
            if (!cfg->tags[k].category || strcmp(cfg->tags[k].category, cat) != 0) continue;
            if (cs->r->tags[k].cls == MD_TAG_STATISTICAL || cs->tag_num[k] == 0) continue;
            if (!opened) {
                md_jsonw_key(w, cat);
                md_jsonw_arr_open(w);
                opened = true;
            }
            md_jsonw_str(w, cfg->tags[k].name);
        }
        if (opened) md_jsonw_arr_close(w);
    }
    md_jsonw_obj_close(w);
}

/* ------------------------------------------------------------------------- */
/* Contact policy                                                             */

static int utc_offset_of(const md_cstate *cs) {
    int off;
    const char *s = md_cs_profile(cs, cs->r->attr_utc_offset);
    if (s && md_parse_utc_offset(s, &off)) return off;
    return cs->r->default_utc_offset_min;
}

/* Counts contacts in (t - per, t]; when count >= max, *free_at is the time the
 * oldest counted contact leaves the span far enough for one more. */
static bool cap_blocks(const int64_t *ts, size_t n, int64_t max, int64_t per, int64_t t, int64_t *free_at) {
    int64_t in_span[64];
    size_t k = 0, count = 0;
    for (size_t i = 0; i < n; i++)
        if (ts[i] > t - per && ts[i] <= t) {
            count++;
            if (k < 64) in_span[k++] = ts[i];
        }
    if ((int64_t)count < max) return false;
    /* The (count - max + 1)-th oldest must leave the span. */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && in_span[j - 1] > in_span[j]; j--) {
            int64_t tmp = in_span[j];
            in_span[j] = in_span[j - 1];
            in_span[j - 1] = tmp;
        }
    size_t idx = (size_t)(count - (size_t)max);
    *free_at = (idx < k ? in_span[idx] : t) + per;
    return true;
}

typedef struct policy_check {
    md_suppress reason;
    int64_t until; /* when the block lifts; INT64_MAX = never */
} policy_check;

static void note_block(md_campaign_eval *e, md_suppress why, int64_t until) {
    if (e->suppressed == MD_SUPPRESS_NONE) e->suppressed = why;
    if (until == 0 || until == INT64_MAX) e->untimed = true; /* time alone will not lift it */
    if (until > e->eligible_again_ms) {
        e->eligible_again_ms = until;
        e->deciding_rule = md_suppress_name(why);
    }
}

/* Blocks that hold for every contact whatever its campaign: opt-out,
 * complaint, service-recovery blackout. */
static void check_blocks(const md_cstate *cs, int64_t t, md_campaign_eval *e) {
    if (cs->opted_out) note_block(e, MD_SUPPRESS_OPT_OUT, INT64_MAX);
    if (cs->complaint_until > t) note_block(e, MD_SUPPRESS_COMPLAINT, cs->complaint_until);
    if (cs->blackout_until > t) note_block(e, MD_SUPPRESS_BLACKOUT, cs->blackout_until);
}

/* Caps over rolling spans for a contact on channel at t: customer-wide,
 * this channel, the contact point (cp may be NULL). */
static void check_caps(const md_config *cfg, const md_cstate *cs, const md_cpstate *cp, int channel, int64_t t, md_campaign_eval *e) {
    int64_t ts_all[256], ts_chan[256];
    size_t n_all = 0, n_chan = 0;
    for (size_t i = 0; i < cs->n_contacts && n_all < 256; i++) {
        ts_all[n_all++] = cs->contacts[i].ts;
        if (cs->contacts[i].channel == channel) ts_chan[n_chan++] = cs->contacts[i].ts;
    }
    int64_t free_at;
    for (size_t k = 0; k < cfg->contact.n_caps; k++) {
        const md_cfg_cap *cap = &cfg->contact.caps[k];
        if (strcmp(cap->scope, "customer") == 0) {
            if (cap_blocks(ts_all, n_all, cap->max, cap->per_ms, t, &free_at)) note_block(e, MD_SUPPRESS_CAP_CUSTOMER, free_at);
        } else if (cp && cap_blocks(cp->ts, cp->n, cap->max, cap->per_ms, t, &free_at)) {
            note_block(e, MD_SUPPRESS_CAP_CONTACT_POINT, free_at);
        }
    }
    const md_cfg_channel *ch = &cfg->channels[channel];
    for (size_t k = 0; k < ch->n_caps; k++)
        if (cap_blocks(ts_chan, n_chan, ch->caps[k].max, ch->caps[k].per_ms, t, &free_at))
            note_block(e, MD_SUPPRESS_CAP_CHANNEL, free_at);
}

/* When channel's quiet hours (in the customer's time zone) that contain t
 * end, or 0 when t is outside them. */
static int64_t quiet_hours_end(const md_cstate *cs, int channel, int64_t t) {
    const md_rchannel *rch = &cs->r->channels[channel];
    int off = utc_offset_of(cs);
    if (!md_quiet_hours_active(rch->quiet_start_min, rch->quiet_end_min, t, off)) return 0;
    int64_t local_min = t / 60000 + off;
    int m = (int)(((local_min % 1440) + 1440) % 1440);
    int wait = (rch->quiet_end_min - m + 1440) % 1440;
    return t + (int64_t)wait * 60000 - (t % 60000);
}

bool md_consent_granted(const char *v) {
    return v && (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "granted") == 0);
}

/* Whether the customer may be contacted on channel at all: not on a
 * do-not-contact list (the customer's or the contact point's), and with
 * consent where the channel asks for it. */
static md_suppress channel_block(const md_config *cfg, const md_cstate *cs, const md_cpstate *cp, int channel) {
    if ((channel < 64 && (cs->dnc_mask >> channel & 1)) || md_cpstate_do_not_contact(cp, cfg->channels[channel].name))
        return MD_SUPPRESS_DO_NOT_CONTACT;
    int attr = cs->r->channels[channel].consent_attr;
    if (attr >= 0) {
        if (!md_consent_granted(md_cs_profile(cs, attr))) return MD_SUPPRESS_NO_CONSENT;
    }
    return MD_SUPPRESS_NONE;
}

/* Applies every policy rule of campaign c at time t; fills e. Only reads state.
 * check_event: whether fire_on applies (an event is present). */
static void decide(const md_config *cfg, md_cstate *cs, const md_cpstate *cp, int c, int64_t t, bool check_event,
                   md_campaign_eval *e) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    const md_rcampaign *rc = &cs->r->campaigns[c];
    const md_camp_st *st = &cs->camps[c];
    e->suppressed = MD_SUPPRESS_NONE;
    e->untimed = false;
    e->eligible_again_ms = 0;
    e->deciding_rule = NULL;
    /* The campaign's lifecycle first: paused by an operator (momentd pause),
     * not started or ended by its dates (event time, so replays agree).
     * Untimed: a campaign starting in three months must not put every
     * customer it sees into the schedule. */
    if (cs->paused_campaigns & (1u << c)) note_block(e, MD_SUPPRESS_PAUSED, 0);
    if (rc->starts_ms && t < rc->starts_ms) note_block(e, MD_SUPPRESS_NOT_STARTED, 0);
    if (rc->ends_ms && t >= rc->ends_ms) note_block(e, MD_SUPPRESS_ENDED, 0);
    /* e->arm: score_campaign found the customer's arm (one hash per campaign and event). */
    const md_cfg_cooldown *cd = cooldown_of(cfg, c, e->arm);
    /* Fatigue lowers the chance of a response the same way in both modes. */
    e->fatigue = md_fatigue_at(st->fatigue, st->fatigue_ts, t, cfg->outcomes.fatigue_half_life_ms);
    e->p_contact = e->score * pow(1 - cfg->outcomes.fatigue_penalty, e->fatigue);
    double threshold = md_campaign_threshold(cfg, c, e->arm);
    e->required_gap_days = md_cooldown_required_days(cd, e->p_contact, threshold, cc->conversion_value, cc->unwanted_cost);
    e->days_since_last_contact = st->last_contact > 0 ? (double)(t - st->last_contact) / (double)MD_DAY_MS : -1;

    check_blocks(cs, t, e);
    /* The campaign's lists (momentd list): untimed, like eligibility. */
    if (st->list == 'e') note_block(e, MD_SUPPRESS_EXCLUDED, 0);
    else if (rc->include_list_only && st->list != 'i') note_block(e, MD_SUPPRESS_NOT_INCLUDED, 0);
    if (check_event && !eval_bool(cs, rc->fire_on)) note_block(e, MD_SUPPRESS_EVENT_NOT_ALLOWED, 0);
    if (!eval_bool(cs, rc->eligible)) note_block(e, MD_SUPPRESS_NOT_ELIGIBLE, 0);
    if (e->p_contact < threshold) note_block(e, MD_SUPPRESS_BELOW_THRESHOLD, 0);
    else if (st->disarmed) note_block(e, MD_SUPPRESS_NOT_REARMED, 0);
    if (cc->skip_after_conversion_ms > 0 && st->last_conversion > 0 && t < st->last_conversion + cc->skip_after_conversion_ms)
        note_block(e, MD_SUPPRESS_RECENT_CONVERSION, st->last_conversion + cc->skip_after_conversion_ms);
    if (st->last_contact > 0) {
        int64_t until = st->last_contact + (int64_t)llround(e->required_gap_days * (double)MD_DAY_MS);
        if (until > t) note_block(e, MD_SUPPRESS_COOLDOWN, until);
    }
    /* The first route that applies and whose channel may be used: a
     * customer who must not be called can still get the SMS route after it. */
    md_suppress route_block = MD_SUPPRESS_NONE;
    for (size_t k = 0; k < rc->n_routes; k++) {
        if (!eval_bool(cs, rc->routes[k].when)) continue;
        md_suppress why = channel_block(cfg, cs, cp, rc->routes[k].channel);
        if (why == MD_SUPPRESS_NONE) {
            e->channel = rc->routes[k].channel;
            break;
        }
        if (route_block == MD_SUPPRESS_NONE) route_block = why;
    }
    if (e->channel < 0) {
        note_block(e, route_block != MD_SUPPRESS_NONE ? route_block : MD_SUPPRESS_NO_ROUTE, 0);
        return;
    }
    e->value = md_contact_value(cd, e->p_contact, e->days_since_last_contact, cc->conversion_value, cfg->channels[e->channel].contact_cost,
                                cc->unwanted_cost);
    if (e->value <= 0) note_block(e, MD_SUPPRESS_LOW_VALUE, 0);
    check_caps(cfg, cs, cp, e->channel, t, e);
    int64_t quiet_end = quiet_hours_end(cs, e->channel, t);
    if (quiet_end) note_block(e, MD_SUPPRESS_QUIET_HOURS, quiet_end);
    e->holdout = md_holdout_bucket_seeded(cs->customer_id, rc->holdout_seed) < (unsigned)llround(cc->holdout_pct * 100);
}

/* ------------------------------------------------------------------------- */
/* Decision records, for momentd fit                                          */

/* The model's inputs at this decision, as md_decision describes them. */
static size_t decision_values(md_cstate *cs, int c, double *vals) {
    const md_rcampaign *rc = &cs->r->campaigns[c];
    const md_cfg_model *m = &cs->cfg->campaigns[c].model;
    size_t n = 0;
    for (size_t f = 0; f < rc->n_features && n < MD_DECISION_MAX_VALUES; f++) {
        md_value v = md_expr_eval(rc->features[f].expr, get_slot, cs);
        vals[n++] = v.kind == MD_VAL_NUM ? v.num : 0;
    }
    for (size_t s = 0; s < rc->n_statics && n < MD_DECISION_MAX_VALUES; s++) {
        const char *val = md_cs_profile(cs, rc->statics[s].profile_attr);
        size_t level = 0;
        for (size_t k = 0; val && k < m->statics[s].n_offsets && !level; k++)
            if (md_str_eq(m->statics[s].offsets[k].key, val)) level = k + 1;
        vals[n++] = (double)level;
    }
    return n;
}

static void record_decision(md_cstate *cs, md_ops *ops, int c, int64_t t, char kind) {
    if (cs->r->decision_keep_ms <= 0) return;
    double vals[MD_DECISION_MAX_VALUES];
    size_t n = decision_values(cs, c, vals);
    /* Then the campaign's fatigue, which multiplies the score into
     * p_contact: momentd fit fits the score through it. */
    const md_camp_st *st = &cs->camps[c];
    if (n < MD_DECISION_MAX_VALUES)
        vals[n++] = round(md_fatigue_at(st->fatigue, st->fatigue_ts, t, cs->cfg->outcomes.fatigue_half_life_ms) * 1000) / 1000;
    md_cs_add_drec(cs, ops, c, t, kind, cs->r->campaigns[c].schema, vals, n);
}

/* A decision not to contact, recorded for the customers of the sample
 * (learning.sample_pct, a stable hash of its own) at most once per
 * sample_every: what the model saw of those it did not pick. Decisions that
 * could never be a contact (not eligible, opted out) tell nothing. */
static void sample_decision(const md_config *cfg, md_cstate *cs, md_ops *ops, int c, int64_t t, const md_campaign_eval *e) {
    if (cs->r->decision_keep_ms <= 0 || cfg->learning.sample_pct <= 0) return;
    if (e->suppressed == MD_SUPPRESS_NOT_ELIGIBLE || e->suppressed == MD_SUPPRESS_OPT_OUT || e->suppressed == MD_SUPPRESS_STALE) return;
    if (!md_learning_sampled(cfg, c, cs->customer_id)) return;
    int64_t newest = md_cs_newest_drec(cs, c);
    if (newest > 0 && t - newest < cfg->learning.sample_every_ms) return;
    record_decision(cs, ops, c, t, MD_DECISION_SAMPLED);
}

/* ------------------------------------------------------------------------- */
/* Triggers                                                                   */

/* The fields every moment opens with (docs/SPEC.md section 7). */
static void trigger_head(md_jsonw *w, const char *id, const char *customer_id, const char *campaign, const char *channel) {
    md_jsonw_obj_open(w);
    /* docs/schemas/moment.schema.json: fields are added within a version,
     * never removed or changed; a change that breaks a reader bumps it. */
    md_jsonw_kint(w, "schema_version", MD_MOMENT_SCHEMA_VERSION);
    md_jsonw_kstr(w, "trigger_id", id);
    md_jsonw_kstr(w, "customer_id", customer_id);
    md_jsonw_kstr(w, "campaign", campaign);
    md_jsonw_kstr(w, "channel", channel);
}

/* The string value of "key":"..." in a moment's head, as trigger_head wrote
 * it (names are configuration identifiers: never escaped), into out. */
static bool head_field(const char *payload, const char *key, char *out, size_t n) {
    char pat[32];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *v = strstr(payload, pat);
    if (!v) return false;
    v += strlen(pat);
    const char *end = strchr(v, '"');
    if (!end || (size_t)(end - v) >= n) return false;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = '\0';
    return true;
}

void md_moment_route(const md_config *cfg, const char *topic, const char *payload, int *campaign, int *channel, bool *holdout) {
    char name[128];
    *campaign = *channel = -1;
    *holdout = strcmp(topic, cfg->kafka.topic_holdout) == 0;
    if (head_field(payload, "campaign", name, sizeof(name)))
        for (size_t c = 0; c < cfg->n_campaigns; c++)
            if (strcmp(cfg->campaigns[c].name, name) == 0) *campaign = (int)c;
    if (!*holdout && head_field(payload, "channel", name, sizeof(name)))
        for (size_t c = 0; c < cfg->n_channels; c++)
            if (strcmp(cfg->channels[c].name, name) == 0) *channel = (int)c;
}

/* The fields every moment closes with, so that a trigger and a follow-up can
 * never disagree on them: fresh until fresh_from + the channel's fresh_for.
 * Returns the finished text (the caller owns it), or NULL on allocation
 * failure (w is then freed). */
static char *trigger_tail(md_jsonw *w, const md_config *cfg, const char *model_version, int ch, int64_t fresh_from,
                          int64_t emitted_at_ms, bool holdout) {
    char tbuf[32];
    md_format_time(emitted_at_ms, tbuf);
    md_jsonw_kstr(w, "emitted_at", tbuf);
    md_format_time(fresh_from + cfg->channels[ch].fresh_for_ms, tbuf);
    md_jsonw_kstr(w, "expires_at", tbuf);
    md_jsonw_kstr(w, "model_version", model_version);
    md_jsonw_kbool(w, "holdout", holdout);
    md_jsonw_obj_close(w);
    if (w->oom) {
        md_jsonw_fini(w);
        return NULL;
    }
    return w->buf; /* ownership moves to the caller */
}

/* ev NULL: fired by the schedule at t (docs/SPEC.md section 6). Fresh from
 * fresh_from: the event's time, or the schedule's decision. */
static char *build_trigger(const md_config *cfg, const md_cstate *cs, const md_event *ev, int64_t t, int64_t fresh_from, int c,
                           const md_campaign_eval *e, const char *id, int64_t emitted_at_ms) {
    const md_cfg_campaign *cc = &cfg->campaigns[c];
    const md_cfg_model *m = md_campaign_model(cfg, c, e->arm); /* the arm's, when it has one */
    char tbuf[32];
    md_jsonw w;
    md_jsonw_init(&w);
    trigger_head(&w, id, cs->customer_id, cc->name, cfg->channels[e->channel].name);
    md_jsonw_knum(&w, "priority", round(e->value * 100) / 100);
    md_jsonw_knum(&w, "score", e->score);
    md_jsonw_knum(&w, "p_contact", e->p_contact);
    md_jsonw_knum(&w, "threshold", md_campaign_threshold(cfg, c, e->arm));
    md_jsonw_key(&w, "reasons");
    md_jsonw_arr_open(&w);
    md_contribution by_size[MD_MAX_FEATURES];
    memcpy(by_size, e->contrib, e->n_contrib * sizeof(*by_size));
    qsort(by_size, e->n_contrib, sizeof(*by_size), cmp_contrib);
    int64_t shown = 0;
    for (size_t i = 0; i < e->n_contrib && shown < m->top_reasons; i++) {
        const md_contribution *k = &by_size[i];
        if (k->contribution <= 0) break;
        md_jsonw_obj_open(&w);
        if (k->feature >= 0) {
            md_jsonw_kstr(&w, "feature", cc->model.features[k->feature].name);
            md_jsonw_knum(&w, "value", k->value);
        } else {
            const md_cfg_static *st = &cc->model.statics[-k->feature - 1];
            char name[160];
            snprintf(name, sizeof(name), "profile.%s", st->attribute);
            md_jsonw_kstr(&w, "feature", name);
            const char *v = md_cs_profile(cs, cs->r->campaigns[c].statics[-k->feature - 1].profile_attr);
            md_jsonw_kstr(&w, "value", v ? v : "");
        }
        md_jsonw_knum(&w, "contribution", k->contribution);
        md_jsonw_obj_close(&w);
        shown++;
    }
    md_jsonw_arr_close(&w);
    md_jsonw_key(&w, "tags");
    md_engine_write_tags(cfg, cs, &w);
    md_jsonw_key(&w, "cooldown");
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "mode", e->arm >= 0 ? cc->arms[e->arm].cooldown.mode : cc->cooldown.mode);
    if (e->arm >= 0) md_jsonw_kstr(&w, "arm", cc->arms[e->arm].name);
    md_jsonw_knum(&w, "required_gap_days", round(e->required_gap_days * 100) / 100);
    md_jsonw_key(&w, "days_since_last_contact");
    if (e->days_since_last_contact < 0) md_jsonw_null(&w);
    else md_jsonw_num(&w, round(e->days_since_last_contact * 100) / 100);
    md_jsonw_knum(&w, "fatigue", round(e->fatigue * 100) / 100);
    md_jsonw_obj_close(&w);
    md_jsonw_key(&w, "caused_by");
    md_jsonw_obj_open(&w);
    if (ev) md_jsonw_kstr(&w, "event_id", ev->event_id);
    md_jsonw_kstr(&w, "type", ev ? md_event_type_name(ev->type) : "schedule");
    md_format_time(t, tbuf);
    md_jsonw_kstr(&w, "ts", tbuf);
    md_jsonw_obj_close(&w);
    md_jsonw_kstr(&w, "event_time", tbuf);
    return trigger_tail(&w, cfg, m->version, e->channel, fresh_from, emitted_at_ms, e->holdout);
}

/* ------------------------------------------------------------------------- */
/* Processing                                                                 */


/* ------------------------------------------------------------------------- */
/* Deciding and firing                                                        */

static void funnel_add(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, int64_t delta);
static void timing_add(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta);

#define MD_SCHEDULE_STEP_MS (15 * 60000)

static void release(md_cstate *cs, md_ops *ops, const md_trec *r, bool released_before);

/* Where in the first second after its channel frees a decision held for
 * capacity comes back: the higher its expected value, the sooner, so that
 * the schedule, which takes due customers in time order, gives the freed
 * capacity to the most valuable first. 999 ms at a value of 0 or less,
 * falling as 1000 / (1 + value). */
int64_t md_capacity_rank_offset_ms(double value) {
    if (!(value > 0)) return 999;
    double ms = 1000.0 / (1.0 + value);
    return ms >= 999 ? 999 : (int64_t)ms;
}

/* A report that the channel acted on a moment: any status but not_called
 * and expired (sent, or a later one whose sent was lost). */
#define MD_REC_ACTED (((1u << MD_OUTCOME_STATUS_COUNT) - 1) & ~MD_REC_RELEASED)

/* When the contact of r, on a channel that confirms by sent, lapses
 * unconfirmed (the end of its freshness); 0 when it does not wait for one
 * (confirmed, released, a holdout, another channel). */
static int64_t confirm_deadline(const md_config *cfg, const md_cstate *cs, const md_trec *r) {
    if (r->holdout || r->campaign < 0 || r->channel < 0 || !cs->r->channels[r->channel].confirm_sent) return 0;
    if (r->bits & (MD_REC_ACTED | MD_REC_RELEASED)) return 0;
    return r->fired_ms + cfg->channels[r->channel].fresh_for_ms;
}

/* Releases, as expired, the contacts whose confirmation lapsed by t, before
 * deciding at t: the dialer never got to them, so they hold no cooldown. */
static void release_unconfirmed(const md_config *cfg, md_cstate *cs, md_ops *ops, int64_t t) {
    if (!cs->r->any_confirm_sent) return; /* no scan of the trigger records on every decision */
    for (size_t i = 0; i < cs->n_trecs; i++) {
        md_trec *r = &cs->trecs[i];
        int64_t until = confirm_deadline(cfg, cs, r);
        if (!until || until > t) continue;
        r->bits |= 1u << MD_OUTCOME_EXPIRED;
        md_cs_save_trec(cs, ops, r);
        funnel_add(cs, ops, r, md_outcome_status_name(MD_OUTCOME_EXPIRED), 1);
        release(cs, ops, r, false);
    }
}

/* The earliest lapse of a contact still waiting for its sent: the schedule
 * comes back then, releases it and decides again. 0: none waits. */
static int64_t next_confirm_deadline(const md_config *cfg, const md_cstate *cs) {
    int64_t next = 0;
    for (size_t i = 0; cs->r->any_confirm_sent && i < cs->n_trecs; i++) {
        int64_t until = confirm_deadline(cfg, cs, &cs->trecs[i]);
        if (until && (next == 0 || until < next)) next = until;
    }
    return next;
}

/* Decides every campaign at t (features already computed into out->eval)
 * and fires those that pass; a contact made by one is seen by the caps of
 * the next. ev is the event deciding (NULL: the schedule); cause names the
 * decision in the trigger ids (the event id, or "due@<ms>"), so a replay
 * makes the same ids. Then schedules the customer for the earliest time a
 * campaign held back only by time (a cooldown, quiet hours, a blackout, a
 * cap) could fire. */
static md_err fire_campaigns(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_event *ev, int64_t t, int64_t fresh_from,
                             const char *cause, int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_engine_out *out) {
    int64_t due = 0, held_due = 0;
    release_unconfirmed(cfg, cs, ops, t);
    /* Highest priority first: its contact counts for the caps of the next. */
    for (size_t k = 0; k < cfg->n_campaigns; k++) {
        size_t c = cs->r->campaign_order[k];
        md_campaign_eval *e = &out->eval[c];
        md_camp_st *st = &cs->camps[c];
        const md_cfg_campaign *cc = &cfg->campaigns[c];
        if (st->disarmed && e->score < md_campaign_rearm_below(cfg, (int)c, e->arm)) md_cs_set_armed(cs, ops, (int)c, true);
        decide(cfg, cs, cp, (int)c, t, ev != NULL, e);
        if (e->suppressed != MD_SUPPRESS_NONE) {
            if (!e->untimed && e->eligible_again_ms > t && (due == 0 || e->eligible_again_ms < due)) due = e->eligible_again_ms;
            sample_decision(cfg, cs, ops, (int)c, t, e);
            md_cs_audit(cs, ops, (int)c, t, e->suppressed, e->p_contact);
            continue;
        }
        /* Never emit a moment that has already expired (a replayed history,
         * a backfill, consumer lag, a schedule that ran late): the state
         * above is updated, no contact is made or recorded. */
        if (emitted_at_ms > fresh_from + cfg->channels[e->channel].fresh_for_ms) {
            e->suppressed = MD_SUPPRESS_STALE;
            out->n_stale++;
            if (t > st->last_stale) md_cs_set_last_stale(cs, ops, (int)c, t);
            md_cs_audit(cs, ops, (int)c, t, MD_SUPPRESS_STALE, e->p_contact);
            continue;
        }
        /* The channel's capacity (a holdout decision is never sent, so it
         * takes none): none left, the decision waits for the next slot,
         * ranked by its value. */
        md_capacity *cap = out->capacity && !e->holdout ? &out->capacity[e->channel] : NULL;
        if (cap && cap->left == 0) {
            e->suppressed = MD_SUPPRESS_HELD_CAPACITY;
            out->n_held++;
            int64_t at = cap->frees_at_ms + md_capacity_rank_offset_ms(e->value);
            if (held_due == 0 || at < held_due) held_due = at;
            md_cs_audit(cs, ops, (int)c, t, MD_SUPPRESS_HELD_CAPACITY, e->p_contact);
            continue;
        }
        if (out->n_triggers >= MD_MAX_CAMPAIGNS) break; /* a schedule and an event in one call: at most one each per campaign */
        if (cap && cap->left > 0) {
            cap->left--;
            cap->taken++;
        }
        md_trigger *tr = &out->triggers[out->n_triggers];
        md_trigger_id(cc->name, cs->customer_id, cause, tr->id);
        tr->payload = build_trigger(cfg, cs, ev, t, fresh_from, (int)c, e, tr->id, emitted_at_ms);
        if (!tr->payload) return MD_ERR_NOMEM;
        tr->campaign = (int)c;
        tr->channel = e->channel;
        tr->holdout = e->holdout;
        tr->topic = e->holdout ? cfg->kafka.topic_holdout : cfg->channels[e->channel].topic;
        out->n_triggers++;
        e->fired = true;
        if (!md_cs_add_pending(cs, ops, tr->id, tr->topic, tr->payload)) return MD_ERR_NOMEM;
        /* The record outcomes and conversions are checked against, and the
         * first stage of the funnel. */
        int gap_days = e->days_since_last_contact < 0 ? MD_GAP_FIRST : (int)fmin(e->days_since_last_contact, 100000);
        md_trec *rec = md_cs_add_trec(cs, ops, tr->id, (int)c, e->channel, t, e->holdout, e->p_contact,
                                      md_campaign_model(cfg, (int)c, e->arm)->version, gap_days);
        if (!rec) return MD_ERR_NOMEM;
        funnel_add(cs, ops, rec, "triggered", 1);
        timing_add(cs, ops, rec, "triggered", "triggered", 1);
        md_cs_add_model_incr(cs, ops, rec, "triggered", "triggered", 1);
        md_cs_audit(cs, ops, (int)c, t, e->holdout ? MD_AUDIT_HOLDOUT : MD_SUPPRESS_NONE, e->p_contact);
        record_decision(cs, ops, (int)c, t, e->holdout ? MD_DECISION_HOLDOUT : MD_DECISION_CONTACTED);
        md_cs_set_armed(cs, ops, (int)c, false);
        md_cs_set_last_contact(cs, ops, (int)c, t);
        if (!e->holdout) {
            /* A holdout decision is recorded, never delivered: it counts for
             * the campaign's own cooldown (so both groups see the same
             * timeline) but not for caps, which limit real contacts. */
            md_cs_add_contact(cs, ops, t, (int)c, e->channel);
            if (cp && cp_ops) {
                md_cp_add_contact(cp, cp_ops, t, cs->customer_id, cc->name, cfg->channels[e->channel].name);
                out->n_contact_point_records++;
            }
        }
    }
    /* A decision of the schedule itself that is held back again (its
     * features moved while it waited: a longer gap) comes back no sooner
     * than MD_SCHEDULE_STEP_MS: a gap that creeps along with a decaying
     * feature is followed in a few steps, not one pass per second. */
    if (due && !ev && due < t + MD_SCHEDULE_STEP_MS) due = t + MD_SCHEDULE_STEP_MS;
    int64_t lapse = next_confirm_deadline(cfg, cs); /* always after t: those before were released */
    if (lapse && (due == 0 || lapse < due)) due = lapse;
    /* Not held to the 15-minute step: a held decision comes back when its
     * channel frees, at its rank. */
    if (held_due && (due == 0 || held_due < due)) due = held_due;
    md_cs_set_due(cs, ops, due);
    return MD_ERR_OK;
}

/* The schedule's decision at t: features at t without an event, then every
 * campaign; fresh from t (a decision on the state at t, whenever the timer
 * ran). The trigger ids name the due time, not t, so that a replay (or a
 * timer that ran late) makes the same ids. When an event comes before the
 * timer ran, md_engine_process decides the due time first, at that time. */
static md_err fire_due(const md_config *cfg, md_cstate *cs, md_cpstate *cp, int64_t t, int64_t emitted_at_ms, md_ops *ops,
                       md_ops *cp_ops, md_engine_out *out) {
    char cause[40];
    snprintf(cause, sizeof(cause), "due@%" PRId64, cs->due);
    compute_features(cfg, cs, NULL, t, out);
    return fire_campaigns(cfg, cs, cp, NULL, t, t, cause, emitted_at_ms, ops, cp_ops, out);
}

md_err md_engine_due(const md_config *cfg, md_cstate *cs, md_cpstate *cp, int64_t t, int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops,
                     md_engine_out *out) {
    out_reset(out);
    /* Not due (any more): an event since re-decided it, or it never was. */
    if (!cs->exists || cs->due == 0 || cs->due > t) return MD_ERR_OK;
    if (fire_due(cfg, cs, cp, t, emitted_at_ms, ops, cp_ops, out) != MD_ERR_OK) return MD_ERR_NOMEM;
    return ops->oom || (cp_ops && cp_ops->oom) ? MD_ERR_NOMEM : MD_ERR_OK;
}

/* ------------------------------------------------------------------------- */
/* Feedback: fatigue, conversions, outcomes                                   */

/* A funnel increment for trigger t, and for its policy arm when the
 * campaign has arms and the trigger was a real contact (arms compare
 * contact policies; holdout customers are never contacted). */
static void funnel_add(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, int64_t delta) {
    md_cs_add_incr(cs, ops, t, stage, delta);
    if (t->holdout || t->campaign < 0) return;
    int arm = md_policy_arm(cs->cfg, t->campaign, cs->customer_id);
    if (arm < 0) return;
    md_cs_add_arm_incr(cs, ops, t, cs->cfg->campaigns[t->campaign].arms[arm].name, stage, delta);
}

/* The timing table's count for a model's decision that was a real contact
 * (a holdout decision contacts nobody; a follow-up has no gap of its own,
 * what follows it is credited to the decision, as model quality does).
 * entry names the increment apart from the stage, so that a take-back in
 * the same batch as the count adds to it instead of replacing it. */
static void timing_add(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta) {
    if (!t->holdout) md_cs_add_gap_incr(cs, ops, t, stage, entry, delta);
}

/* Fatigue of campaign c grows by weight at t (on what is left of it after
 * decay); weight 0 resets it (a positive response). */
static void add_fatigue(md_cstate *cs, md_ops *ops, int c, double weight, int64_t t) {
    const md_camp_st *st = &cs->camps[c];
    if (weight == 0) {
        if (st->fatigue != 0) md_cs_set_fatigue(cs, ops, c, 0, t);
        return;
    }
    md_cs_set_fatigue(cs, ops, c, md_fatigue_at(st->fatigue, st->fatigue_ts, t, cs->cfg->outcomes.fatigue_half_life_ms) + weight, t);
}

/* Whether campaign c really contacted the customer (not holdout) in (t - span, t]. */
static bool contacted_within(const md_cstate *cs, int c, int64_t t, int64_t span) {
    for (size_t i = 0; i < cs->n_trecs; i++) {
        const md_trec *r = &cs->trecs[i];
        if (r->campaign == c && !r->holdout && r->fired_ms <= t && r->fired_ms > t - span) return true;
    }
    return false;
}

/* A conversion seen in the event stream counts for the campaign's latest
 * trigger within its attribution window, treated or holdout alike (that
 * symmetry is what makes the uplift honest), and at most once per trigger. */
static void attribute_conversions(const md_config *cfg, md_cstate *cs, const md_event *ev, md_ops *ops, md_engine_out *out) {
    for (size_t c = 0; c < cfg->n_campaigns; c++) {
        const md_expr *conv = cs->r->campaigns[c].conversion;
        if (!conv || !md_value_truthy(md_expr_eval(conv, get_slot, cs))) continue;
        /* The campaign's own purchase, contacted or not: skip_after_conversion. */
        if (ev->ts_ms > cs->camps[c].last_conversion) md_cs_set_last_conversion(cs, ops, (int)c, ev->ts_ms);
        /* Every decision of the campaign within the window before it is
         * labelled converted, contacted or not: the label momentd fit learns. */
        md_cs_convert_drecs(cs, ops, (int)c, ev->ts_ms, cfg->campaigns[c].attribution_ms);
        /* The funnel credits the latest trigger (a follow-up included);
         * model quality the latest model decision, whose p it measures. */
        md_trec *best = NULL, *decided = NULL;
        for (size_t i = 0; i < cs->n_trecs; i++) {
            md_trec *r = &cs->trecs[i];
            if (r->campaign != (int)c || r->fired_ms > ev->ts_ms || ev->ts_ms - r->fired_ms > cfg->campaigns[c].attribution_ms)
                continue;
            if (!best || r->fired_ms > best->fired_ms) best = r;
            if (r->p_milli >= 0 && !(r->bits & MD_REC_RELEASED) && (!decided || r->fired_ms > decided->fired_ms)) decided = r;
        }
        if (decided && !(decided->bits & MD_REC_MODEL_CONVERTED)) {
            decided->bits |= MD_REC_MODEL_CONVERTED;
            md_cs_save_trec(cs, ops, decided);
            md_cs_add_model_incr(cs, ops, decided, "conversions", "conversions", 1);
            timing_add(cs, ops, decided, "conversions", "conversions", 1);
        }
        if (!best || (best->bits & MD_REC_CONVERTED)) continue;
        best->bits |= MD_REC_CONVERTED;
        md_cs_save_trec(cs, ops, best);
        funnel_add(cs, ops, best, "conversions", 1);
        if (ev->type == MD_EVENT_PAYMENT) funnel_add(cs, ops, best, "amount_fen", llround(ev->amount * 100));
        out->n_conversions++;
    }
}

static const char *const outcome_applied_names[] = {"applied", "duplicate_offset", "duplicate", "unknown_trigger"};
const char *md_outcome_applied_name(md_outcome_applied a) { return (unsigned)a < 4 ? outcome_applied_names[a] : "?"; }

/* The follow-up's own message: the trigger schema of docs/SPEC.md section 7 where
 * it applies, with what it follows and when it may be delivered. */
static char *build_follow_up(const md_config *cfg, const md_cstate *cs, const md_outcome *o, const md_trec *orig, int ch,
                             const char *id, int64_t not_before, int64_t emitted_at_ms) {
    const md_cfg_campaign *cc = &cfg->campaigns[orig->campaign];
    char tbuf[32];
    md_jsonw w;
    md_jsonw_init(&w);
    trigger_head(&w, id, cs->customer_id, cc->name, cfg->channels[ch].name);
    md_jsonw_kstr(&w, "follow_up_of", orig->id);
    md_jsonw_key(&w, "caused_by");
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "outcome", md_outcome_status_name(o->status));
    md_jsonw_kstr(&w, "channel", o->channel);
    md_format_time(o->ts_ms, tbuf);
    md_jsonw_kstr(&w, "ts", tbuf);
    md_jsonw_obj_close(&w);
    md_jsonw_kstr(&w, "event_time", tbuf);
    md_format_time(not_before, tbuf);
    md_jsonw_kstr(&w, "not_before", tbuf);
    return trigger_tail(&w, cfg, cc->model.version, ch, not_before, emitted_at_ms, false);
}

/* The campaign's follow-ups for outcome o of trigger orig. */
static md_err fire_follow_ups(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_outcome *o, const md_trec *orig_in_state,
                              int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_engine_out *out) {
    /* A copy: adding a follow-up's record may move the state's records. */
    const md_trec orig_copy = *orig_in_state, *orig = &orig_copy;
    const md_rcampaign *rc = &cs->r->campaigns[orig->campaign];
    const md_cfg_campaign *cc = &cfg->campaigns[orig->campaign];
    /* A call answered and hung up within seconds is a "no": nothing follows it. */
    if (o->status == MD_OUTCOME_REACHED && o->has_duration && o->duration_s * 1000 < cfg->outcomes.hangup_within_ms)
        return MD_ERR_OK;
    for (size_t k = 0; k < rc->n_follow_ups && out->n_triggers < MD_MAX_CAMPAIGNS; k++) {
        const md_rfollow_up *rf = &rc->follow_ups[k];
        if (rf->after != (int)o->status || (rf->from_channel >= 0 && rf->from_channel != orig->channel)) continue;
        int64_t not_before = o->ts_ms + cc->follow_ups[k].gap_ms;
        int64_t quiet_end = quiet_hours_end(cs, rf->channel, not_before);
        if (quiet_end) not_before = quiet_end;
        md_campaign_eval *e = &out->eval[0];
        memset(e, 0, sizeof(*e));
        check_blocks(cs, not_before, e);
        md_suppress why = channel_block(cfg, cs, cp, rf->channel);
        if (why != MD_SUPPRESS_NONE) note_block(e, why, 0);
        if (cs->camps[orig->campaign].list == 'e') note_block(e, MD_SUPPRESS_EXCLUDED, 0);
        check_caps(cfg, cs, cp, rf->channel, not_before, e);
        if (e->suppressed != MD_SUPPRESS_NONE) {
            out->follow_up_suppressed = e->suppressed;
            continue;
        }
        /* Deterministic: the same outcome re-decided gives the same id. */
        char cause[MD_EVENT_ID_MAX + 16];
        snprintf(cause, sizeof(cause), "%.*s#follow_up%zu", MD_TRIGGER_ID_LEN - 1, orig->id, k);
        md_trigger *tr = &out->triggers[out->n_triggers];
        md_trigger_id(cc->name, cs->customer_id, cause, tr->id);
        tr->payload = build_follow_up(cfg, cs, o, orig, rf->channel, tr->id, not_before, emitted_at_ms);
        if (!tr->payload) return MD_ERR_NOMEM;
        tr->campaign = orig->campaign;
        tr->channel = rf->channel;
        tr->holdout = false;
        tr->topic = cfg->channels[rf->channel].topic;
        out->n_triggers++;
        if (!md_cs_add_pending(cs, ops, tr->id, tr->topic, tr->payload)) return MD_ERR_NOMEM;
        md_trec *rec = md_cs_add_trec(cs, ops, tr->id, orig->campaign, rf->channel, not_before, false, -1, NULL, MD_GAP_UNKNOWN);
        if (!rec) return MD_ERR_NOMEM;
        funnel_add(cs, ops, rec, "triggered", 1);
        funnel_add(cs, ops, rec, "follow_ups", 1);
        md_cs_add_contact(cs, ops, not_before, orig->campaign, rf->channel);
        md_cs_set_last_contact(cs, ops, orig->campaign, not_before);
        if (cp && cp_ops) md_cp_add_contact(cp, cp_ops, not_before, cs->customer_id, cc->name, cfg->channels[rf->channel].name);
    }
    return MD_ERR_OK;
}

md_err md_engine_profile(md_cstate *cs, const char *json, const md_source *src, md_ops *ops, md_applied *applied, char *errstr,
                         size_t errstr_size) {
    *applied = MD_APPLIED;
    /* An erased customer's profile is not taken back until they are active
     * again (an event after the erasure): the compacted profiles topic still
     * holds the old one, and a replay would restore it (docs/SPEC.md
     * section 9, erasure). */
    if (cs->forgotten_at > 0 && cs->newest_ts <= cs->forgotten_at) {
        *applied = MD_FORGOTTEN;
        return MD_ERR_OK;
    }
    if (src && src->topic && !md_cs_take_offset(cs, ops, src->topic, src->partition, src->offset)) {
        *applied = MD_DUP_OFFSET;
        return MD_ERR_OK;
    }
    return md_cstate_set_profile(cs, json, ops, errstr, errstr_size);
}

/* The channel never made the contact of r (not_called, expired, or no
 * report by the end of its freshness on a channel that confirms by sent):
 * it counts for no cooldown and no cap, and the campaign may fire again. */
static void release(md_cstate *cs, md_ops *ops, const md_trec *r, bool released_before) {
    md_cs_release_contact(cs, ops, r);
    md_cs_release_drec(cs, ops, r->campaign, r->fired_ms);
    /* Model quality measures p of contacted customers: an uncontacted one
     * is taken back (and a conversion already counted for it). */
    if (!released_before) {
        md_cs_add_model_incr(cs, ops, r, "triggered", "released", -1);
        timing_add(cs, ops, r, "released", "released", 1);
        if (r->bits & MD_REC_MODEL_CONVERTED) {
            md_cs_add_model_incr(cs, ops, r, "conversions", "unconverted", -1);
            timing_add(cs, ops, r, "conversions", "unconverted", -1);
        }
    }
    if (cs->camps[r->campaign].disarmed) md_cs_set_armed(cs, ops, r->campaign, true);
}

md_err md_engine_outcome(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_outcome *o, const md_source *src,
                         int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_outcome_applied *applied, md_engine_out *out) {
    md_engine_out_fini(out);
    out->n_campaigns = 0;
    out->follow_up_suppressed = MD_SUPPRESS_NONE;
    *applied = MD_OUTCOME_APPLIED;
    if (!cs->customer_id[0]) md_cstate_set_customer(cs, o->customer_id);
    /* Trust nothing the subscriber says that momentd did not emit: the
     * trigger must be one of this customer's, for the same campaign and
     * channel, and really sent (holdout decisions never are). Checked before
     * anything is recorded, the watermark included: an outcome for an
     * unknown trigger writes nothing, so a flood of them cannot create state
     * for customers momentd never saw. */
    md_trec *r = md_cs_find_trec(cs, o->trigger_id);
    if (!r || r->holdout || r->campaign < 0 || strcmp(cfg->campaigns[r->campaign].name, o->campaign) != 0 || r->channel < 0 ||
        strcmp(cfg->channels[r->channel].name, o->channel) != 0) {
        *applied = MD_OUTCOME_UNKNOWN_TRIGGER;
        return MD_ERR_OK;
    }
    if (src && src->topic && !md_cs_take_offset(cs, ops, src->topic, src->partition, src->offset)) {
        *applied = MD_OUTCOME_DUP_OFFSET;
        return MD_ERR_OK;
    }
    unsigned bit = 1u << o->status;
    if (r->bits & bit) {
        *applied = MD_OUTCOME_DUPLICATE;
        return ops->oom ? MD_ERR_NOMEM : MD_ERR_OK;
    }
    bool released_before = (r->bits & MD_REC_RELEASED) != 0; /* not_called, then expired too */
    r->bits |= bit;
    md_cs_save_trec(cs, ops, r);
    funnel_add(cs, ops, r, md_outcome_status_name(o->status), 1);
    if (!(bit & MD_REC_RELEASED)) timing_add(cs, ops, r, md_outcome_status_name(o->status), md_outcome_status_name(o->status), 1);
    int c = r->campaign;
    const md_cfg_outcomes *oc = &cfg->outcomes;
    switch (o->status) {
    case MD_OUTCOME_NO_ANSWER:
        add_fatigue(cs, ops, c, oc->fatigue_no_answer, o->ts_ms);
        /* Not reached: the peak may still be there, so the campaign need
         * not wait for its score to fall first (the gap its value gives
         * still applies). */
        if (cs->camps[c].disarmed) md_cs_set_armed(cs, ops, c, true);
        break;
    case MD_OUTCOME_NOT_CALLED:
    case MD_OUTCOME_EXPIRED:
        release(cs, ops, r, released_before);
        /* The moment may still be there: the schedule decides again now. */
        if (cs->due == 0 || cs->due > o->ts_ms) md_cs_set_due(cs, ops, o->ts_ms);
        break;
    case MD_OUTCOME_DECLINED: add_fatigue(cs, ops, c, oc->fatigue_declined, o->ts_ms); break;
    case MD_OUTCOME_REACHED:
        /* Answered and hung up within seconds: a "no" in voice. */
        if (o->has_duration && o->duration_s * 1000 < oc->hangup_within_ms) {
            add_fatigue(cs, ops, c, oc->fatigue_hangup, o->ts_ms);
            funnel_add(cs, ops, r, "hangup", 1);
            timing_add(cs, ops, r, "hangup", "hangup", 1);
        }
        break;
    case MD_OUTCOME_OPENED: add_fatigue(cs, ops, c, 0, o->ts_ms); break; /* a positive response resets */
    case MD_OUTCOME_CONVERTED:
        add_fatigue(cs, ops, c, 0, o->ts_ms);
        if (o->ts_ms > cs->camps[c].last_conversion) md_cs_set_last_conversion(cs, ops, c, o->ts_ms);
        break;
    case MD_OUTCOME_COMPLAINT: {
        add_fatigue(cs, ops, c, oc->fatigue_complaint, o->ts_ms);
        int64_t until = o->ts_ms + cfg->contact.complaint_block_ms;
        if (until > cs->complaint_until) md_cs_set_complaint_until(cs, ops, until);
        break;
    }
    case MD_OUTCOME_OPT_OUT:
        if (!cs->opted_out) md_cs_set_opted_out(cs, ops);
        break;
    default: break; /* sent, delivered: funnel only */
    }
    cs->exists = true;
    if (fire_follow_ups(cfg, cs, cp, o, r, emitted_at_ms, ops, cp_ops, out) != MD_ERR_OK) return MD_ERR_NOMEM;
    return ops->oom ? MD_ERR_NOMEM : MD_ERR_OK;
}

md_err md_engine_process(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_event *ev, const md_source *src,
                         int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_engine_out *out) {
    const md_rules *r = cfg->rules;
    const int64_t t = ev->ts_ms;
    out_reset(out);
    if (!cs->customer_id[0]) md_cstate_set_customer(cs, ev->customer_id);

    /* 1. Guards. An erased customer's events up to the erasure are never
     * counted again (a replay must not bring them back); later ones are. */
    if (cs->forgotten_at > 0 && t <= cs->forgotten_at) {
        out->applied = MD_FORGOTTEN;
        return MD_ERR_OK;
    }
    if (src && src->topic && !md_cs_take_offset(cs, ops, src->topic, src->partition, src->offset)) {
        out->applied = MD_DUP_OFFSET;
        return MD_ERR_OK;
    }
    uint64_t idh = md_cs_id_hash(cs, ev->event_id); /* once, for the check and the guard's entry */
    if (md_cs_seen(cs, ev->event_id, idh)) {
        out->applied = MD_DUP_EVENT_ID;
        return MD_ERR_OK;
    }
    if (cs->newest_ts > 0 && t < cs->newest_ts - cfg->limits.max_lateness_ms) {
        out->applied = MD_TOO_LATE;
        return MD_ERR_OK;
    }
    cs->exists = true;
    /* A schedule due before this event (the timer had not run yet: lag, a
     * replay) is decided first, at its own time. */
    if (cs->due > 0 && cs->due <= t && fire_due(cfg, cs, cp, cs->due, emitted_at_ms, ops, cp_ops, out) != MD_ERR_OK) return MD_ERR_NOMEM;

    /* 2. Counters. */
    out->dedupe_evicted = md_cs_add_seen(cs, ops, idh, t, r->dedupe_horizon_ms);
    /* Not stored: the newest event is the newest of its type, and loading
     * the times of each type (T) finds it again (one write per event less). */
    if (t > cs->newest_ts) cs->newest_ts = t;
    if (t > cs->last_ts[ev->type]) md_cs_set_last_ts(cs, (int)ev->type, t);
    if (ev->type == MD_EVENT_PAYMENT && ev->has_balance_after && t >= md_cs_balance_ts(cs)) md_cs_set_balance(cs, ev->balance_after, t);
    cs->eval_event = ev;
    cs->eval_t = t;
    for (size_t s = 0; s < r->n_signals; s++) {
        const md_rsignal *sig = &r->signals[s];
        if (sig->type >= 0 && sig->type != (int)ev->type) continue;
        if (sig->where && !md_value_truthy(md_expr_eval(sig->where, get_slot, cs))) continue;
        for (size_t si = 0; si < r->n_series; si++) {
            const md_rseries *rs = &r->series[si];
            if (rs->signal != (int)s) continue;
            int64_t delta = 1;
            if (rs->sum == MD_SUM_AMOUNT) delta = (int64_t)llround(ev->amount * 100);
            else if (rs->sum == MD_SUM_DURATION) delta = ev->type == MD_EVENT_CALL ? ev->duration_s : 0;
            else if (rs->sum == MD_SUM_SESSION) delta = ev->type == MD_EVENT_APP_LOGIN ? ev->session_s : 0;
            if (delta != 0) md_cs_bucket_add(cs, ops, (int)si, t / rs->granularity_ms, delta);
        }
    }
    md_cs_evict(cs, ops, cs->newest_ts);
    if (r->blackout_after && md_value_truthy(md_expr_eval(r->blackout_after, get_slot, cs))) {
        int64_t until = t + cfg->contact.blackout_ms;
        if (until > cs->blackout_until) md_cs_set_blackout_until(cs, ops, until);
    }

    attribute_conversions(cfg, cs, ev, ops, out);
    if (ev->type == MD_EVENT_CALL && ev->inbound && strcmp(ev->reason, "complaint") == 0) {
        /* A complaint call is the loudest "no" a customer gives: every
         * campaign that contacted them recently becomes more cautious. */
        for (size_t c = 0; c < cfg->n_campaigns; c++)
            if (contacted_within(cs, (int)c, t, cfg->outcomes.horizon_ms)) add_fatigue(cs, ops, (int)c, cfg->outcomes.fatigue_complaint, t);
    }

    /* 3. Features, tags, scores. */
    compute_features(cfg, cs, ev, t, out);

    /* 4. Decisions. */
    if (fire_campaigns(cfg, cs, cp, ev, t, t, ev->event_id, emitted_at_ms, ops, cp_ops, out) != MD_ERR_OK) return MD_ERR_NOMEM;
    return ops->oom || (cp_ops && cp_ops->oom) ? MD_ERR_NOMEM : MD_ERR_OK;
}

void md_engine_evaluate(const md_config *cfg, md_cstate *cs, const md_cpstate *cp, int64_t now_ms, md_engine_out *out) {
    md_engine_out_fini(out);
    out->applied = MD_APPLIED;
    compute_features(cfg, cs, NULL, now_ms, out);
    for (size_t c = 0; c < cfg->n_campaigns; c++) {
        md_campaign_eval *e = &out->eval[c];
        /* Hysteresis as the next event would see it. */
        bool disarmed = cs->camps[c].disarmed;
        if (disarmed && e->score < md_campaign_rearm_below(cfg, (int)c, e->arm)) cs->camps[c].disarmed = false;
        decide(cfg, cs, cp, (int)c, now_ms, false, e);
        cs->camps[c].disarmed = disarmed;
        qsort(e->contrib, e->n_contrib, sizeof(md_contribution), cmp_contrib);
    }
}
