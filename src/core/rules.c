/* rules.c: compiles and cross-checks the configuration's rules (rules.h).
 *
 * Names are checked here, once: a window naming a missing signal, a tag
 * reading a later tag, a rule tag reading a model score, a campaign routing to
 * a channel that has no contact policy: each is an error with the JSON path of
 * the offending key, never a silent default at run time. */
#include "rules.h"
#include "momentd/engine.h"

#include <stdarg.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t md_holdout_seed(const char *campaign) { return md_hash64(campaign, strlen(campaign), 0x686f6c64); }

/* The holdout's hash over "learning/<campaign>" (cut at 95 bytes, as it
 * always was), its campaign half computed once. */
uint64_t md_learning_seed(const char *campaign) {
    char seeded[96];
    snprintf(seeded, sizeof(seeded), "learning/%s", campaign);
    return md_holdout_seed(seeded);
}

/* A seed of its own, so that arm and holdout membership are independent. */
uint64_t md_arm_seed(const char *campaign) { return md_hash64(campaign, strlen(campaign), 0x61726d73); }

const char *const md_event_field_names[MD_EF_COUNT] = {"type",   "amount",     "channel",   "kind",    "late",  "balance_after",
                                                       "reason", "duration_s", "direction", "inbound", "pages", "session_s"};
const char *const md_builtin_names[MD_BI_COUNT] = {"balance", "days_since_last_payment", "days_since_last_call",
                                                   "days_since_last_app_login", "days_since_last_contact",
                                                   "day_of_month", "days_in_month"};

#define MAX_PROFILE_ATTRS 256

typedef struct compiler {
    const md_config *cfg;
    md_rules *r;
    char *err;
    size_t errsz;
    bool failed;
    /* what the expression being compiled may read */
    unsigned allow;      /* bit per md_slot_class */
    bool bare_event;     /* event fields without the "event." prefix (signals, blackout) */
    size_t tag_limit;    /* tags [0, tag_limit) are visible */
    bool mined_visible;  /* mined tags among them are visible */
} compiler;

static bool cerr(compiler *c, const char *fmt, ...) {
    if (c->failed) return false;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errsz, fmt, ap);
    va_end(ap);
    return false;
}

static int profile_attr(md_rules *r, const char *name) {
    for (size_t i = 0; i < r->n_profile_attrs; i++)
        if (strcmp(r->profile_attrs[i], name) == 0) return (int)i;
    if (r->n_profile_attrs >= MAX_PROFILE_ATTRS) return -1;
    char **na = realloc(r->profile_attrs, (r->n_profile_attrs + 1) * sizeof(char *));
    if (!na) return -1;
    r->profile_attrs = na;
    if (!(na[r->n_profile_attrs] = strdup(name))) return -1;
    return (int)r->n_profile_attrs++;
}

static int resolve(void *ctx, const char *name) {
    compiler *c = ctx;
    const md_config *cfg = c->cfg;
    const char *ev = NULL;
    if (c->bare_event) ev = name;
    else if (strncmp(name, "event.", 6) == 0 && (c->allow & (1u << MD_SLOT_EVENT))) ev = name + 6;
    if (ev) {
        for (int i = 0; i < MD_EF_COUNT; i++)
            if (strcmp(md_event_field_names[i], ev) == 0) return MD_SLOT(MD_SLOT_EVENT, i);
        return -1;
    }
    if ((c->allow & (1u << MD_SLOT_PROFILE)) && strncmp(name, "profile.", 8) == 0 && name[8]) {
        int a = profile_attr(c->r, name + 8);
        return a < 0 ? -1 : MD_SLOT(MD_SLOT_PROFILE, a);
    }
    if ((c->allow & (1u << MD_SLOT_SCORE)) && strncmp(name, "score.", 6) == 0) {
        int k = md_rules_campaign_index(cfg, name + 6);
        return k < 0 ? -1 : MD_SLOT(MD_SLOT_SCORE, k);
    }
    if (c->allow & (1u << MD_SLOT_WINDOW))
        for (size_t i = 0; i < cfg->n_windows; i++)
            if (strcmp(cfg->windows[i].name, name) == 0) return MD_SLOT(MD_SLOT_WINDOW, (int)i);
    if (c->allow & (1u << MD_SLOT_BUILTIN))
        for (int i = 0; i < MD_BI_COUNT; i++)
            if (strcmp(md_builtin_names[i], name) == 0) return MD_SLOT(MD_SLOT_BUILTIN, i);
    if (c->allow & (1u << MD_SLOT_TAG))
        for (size_t i = 0; i < c->tag_limit; i++)
            if (strcmp(cfg->tags[i].name, name) == 0 &&
                (c->mined_visible || strcmp(cfg->tags[i].class_, "mined") != 0))
                return MD_SLOT(MD_SLOT_TAG, (int)i);
    return -1;
}

/* Compiles text at path; "" compiles to NULL (meaning "always"). */
static bool compile(compiler *c, const char *text, const char *path, md_expr **out) {
    *out = NULL;
    if (!text || !*text) return true;
    char msg[512];
    *out = md_expr_compile(text, resolve, c, msg, sizeof(msg));
    if (!*out) return cerr(c, "%s: %s", path, msg);
    return true;
}

#define ALLOW(...) allow_mask((int[]){__VA_ARGS__, 0})
static unsigned allow_mask(const int *cls) {
    unsigned m = 0;
    for (; *cls; cls++) m |= 1u << *cls;
    return m;
}

static bool check_cooldown(compiler *c, const md_cfg_cooldown *cd, const char *where) {
    if (cd->min_days > cd->max_days) return cerr(c, "%s.min_days: %g is above max_days %g", where, cd->min_days, cd->max_days);
    return true;
}

/* Names become expression identifiers, Redis field names and metric labels:
 * an identifier of at most 64 bytes fits all three without quoting. */
static bool is_identifier(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

/* A model version is written into trigger records and model-quality field
 * names (comma- and colon-separated): no separators, bounded. */
static bool is_model_version(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MD_MODEL_VERSION_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-')) return false;
    return true;
}

static bool unique_names(compiler *c, const char *what, size_t n, const char *(*name_of)(const md_config *, size_t)) {
    for (size_t i = 0; i < n; i++)
        if (!is_identifier(name_of(c->cfg, i)))
            return cerr(c, "$.%s[%zu].name: \"%s\" must be an identifier (letters, digits, _; not starting with a digit; at most 64 bytes)",
                        what, i, name_of(c->cfg, i));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(name_of(c->cfg, i), name_of(c->cfg, j)) == 0)
                return cerr(c, "$.%s[%zu].name: \"%s\" is already the name of $.%s[%zu]", what, i, name_of(c->cfg, i), what, j);
    return true;
}
static const char *signal_name(const md_config *cfg, size_t i) { return cfg->signals[i].name; }
static const char *window_name(const md_config *cfg, size_t i) { return cfg->windows[i].name; }
static const char *tag_name(const md_config *cfg, size_t i) { return cfg->tags[i].name; }
static const char *channel_name(const md_config *cfg, size_t i) { return cfg->channels[i].name; }
static const char *campaign_name(const md_config *cfg, size_t i) { return cfg->campaigns[i].name; }

int md_rules_channel_index(const md_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_channels; i++)
        if (strcmp(cfg->channels[i].name, name) == 0) return (int)i;
    return -1;
}

int md_rules_campaign_index(const md_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_campaigns; i++)
        if (strcmp(cfg->campaigns[i].name, name) == 0) return (int)i;
    return -1;
}

static bool compile_signals_windows(compiler *c) {
    const md_config *cfg = c->cfg;
    md_rules *r = c->r;
    char path[128];
    c->bare_event = true;
    c->allow = 0;
    for (size_t i = 0; i < cfg->n_signals; i++) {
        const char *t = cfg->signals[i].type;
        r->signals[i].type = strcmp(t, "any") == 0 ? -1 : strcmp(t, "payment") == 0 ? MD_EVENT_PAYMENT
                                                      : strcmp(t, "call") == 0      ? MD_EVENT_CALL
                                                                                    : MD_EVENT_APP_LOGIN;
        snprintf(path, sizeof(path), "$.signals[%zu].where", i);
        if (!compile(c, cfg->signals[i].where, path, &r->signals[i].where)) return false;
    }
    c->bare_event = false;
    r->series = calloc(cfg->n_windows ? cfg->n_windows : 1, sizeof(md_rseries));
    if (!r->series) return cerr(c, "out of memory");
    for (size_t i = 0; i < cfg->n_windows; i++) {
        const md_cfg_window *w = &cfg->windows[i];
        int sig = -1;
        for (size_t s = 0; s < cfg->n_signals; s++)
            if (strcmp(cfg->signals[s].name, w->signal) == 0) sig = (int)s;
        if (sig < 0) return cerr(c, "$.windows[%zu].signal: no signal named \"%s\"", i, w->signal);
        if (w->span_ms % w->granularity_ms != 0)
            return cerr(c, "$.windows[%zu]: span must be a whole number of granularity buckets", i);
        if (w->span_ms / w->granularity_ms > 10000)
            return cerr(c, "$.windows[%zu]: more than 10000 buckets per span; use a coarser granularity", i);
        int sum = !*w->sum ? MD_SUM_NONE : strcmp(w->sum, "amount") == 0 ? MD_SUM_AMOUNT
                                         : strcmp(w->sum, "duration_s") == 0 ? MD_SUM_DURATION
                                                                             : MD_SUM_SESSION;
        size_t s;
        for (s = 0; s < r->n_series; s++)
            if (r->series[s].signal == sig && r->series[s].granularity_ms == w->granularity_ms && r->series[s].sum == sum)
                break;
        if (s == r->n_series) {
            r->series[s].signal = sig;
            r->series[s].granularity_ms = w->granularity_ms;
            r->series[s].sum = sum;
            md_series_field(w->signal, w->granularity_ms, sum, r->series[s].field, r->series[s].older);
            r->series[s].field_len = strlen(r->series[s].field);
            r->series[s].older_len = strlen(r->series[s].older);
            for (size_t o = 0; o < s; o++)
                if (strcmp(r->series[o].field, r->series[s].field) == 0 || strcmp(r->series[o].older, r->series[s].older) == 0)
                    return cerr(c, "$.windows[%zu]: its series' Redis field collides with another's; rename signal \"%s\"", i,
                                w->signal);
            r->n_series++;
        }
        int64_t keep = w->span_ms + cfg->limits.max_lateness_ms;
        if (keep > r->series[s].retention_ms) r->series[s].retention_ms = keep;
        r->windows[i].series = (int)s;
        r->windows[i].span_ms = w->span_ms;
        r->windows[i].scale = sum == MD_SUM_AMOUNT ? 0.01 : 1.0;
    }
    return true;
}

static bool compile_tags(compiler *c) {
    const md_config *cfg = c->cfg;
    char path[128];
    for (size_t i = 0; i < cfg->n_tags; i++) {
        const md_cfg_tag *t = &cfg->tags[i];
        md_rtag *rt = &c->r->tags[i];
        snprintf(path, sizeof(path), "$.tags[%zu]", i);
        if (strcmp(t->class_, "statistical") == 0) {
            rt->cls = MD_TAG_STATISTICAL;
            if (!*t->attribute) return cerr(c, "%s.attribute: required for a statistical tag", path);
            if (*t->expr) return cerr(c, "%s.expr: a statistical tag copies its attribute and has no expr", path);
            if ((rt->profile_attr = profile_attr(c->r, t->attribute)) < 0) return cerr(c, "%s: too many profile attributes", path);
            continue;
        }
        rt->cls = strcmp(t->class_, "mined") == 0 ? MD_TAG_MINED : MD_TAG_RULE;
        if (!*t->expr) return cerr(c, "%s.expr: required for a %s tag", path, t->class_);
        if (*t->attribute) return cerr(c, "%s.attribute: only statistical tags have one", path);
        /* A tag sees the tags before it; a rule tag sees no model score (scores
         * are computed from rule tags), a mined tag sees both. */
        c->allow = ALLOW(MD_SLOT_WINDOW, MD_SLOT_BUILTIN, MD_SLOT_TAG, MD_SLOT_PROFILE);
        if (rt->cls == MD_TAG_MINED) c->allow |= 1u << MD_SLOT_SCORE;
        c->tag_limit = i;
        c->mined_visible = rt->cls == MD_TAG_MINED;
        strncat(path, ".expr", sizeof(path) - strlen(path) - 1);
        if (!compile(c, t->expr, path, &rt->expr)) return false;
    }
    return true;
}

static bool compile_caps(compiler *c, const md_cfg_cap *caps, size_t n, const char *path, bool channel_level) {
    for (size_t i = 0; i < n; i++) {
        if (channel_level && strcmp(caps[i].scope, "customer") != 0)
            return cerr(c, "%s[%zu].scope: channel caps count per customer; put contact_point caps in contact_policy.caps", path, i);
        if (caps[i].per_ms > c->r->max_cap_span_ms) c->r->max_cap_span_ms = caps[i].per_ms;
    }
    return true;
}

static bool compile_channels(compiler *c) {
    const md_config *cfg = c->cfg;
    char path[128];
    if (cfg->n_channels == 0) return cerr(c, "$.channels: at least one channel is required");
    for (size_t i = 0; i < cfg->n_channels; i++) {
        const md_cfg_channel *ch = &cfg->channels[i];
        md_parse_time_of_day(ch->quiet_start, &c->r->channels[i].quiet_start_min);
        md_parse_time_of_day(ch->quiet_end, &c->r->channels[i].quiet_end_min);
        c->r->channels[i].consent_attr = -1;
        c->r->channels[i].confirm_sent = ch->confirm && strcmp(ch->confirm, "sent") == 0;
        c->r->any_confirm_sent |= c->r->channels[i].confirm_sent;
        if (ch->consent && *ch->consent && (c->r->channels[i].consent_attr = profile_attr(c->r, ch->consent)) < 0)
            return cerr(c, "$.channels[%zu].consent: more profile attributes than momentd reads", i);
        if (strcmp(ch->name, "*") == 0 || strchr(ch->name, ':'))
            return cerr(c, "$.channels[%zu].name: \"*\" and ':' are reserved (do-not-contact entries name channels)", i);
        snprintf(path, sizeof(path), "$.channels[%zu].caps", i);
        if (!compile_caps(c, ch->caps, ch->n_caps, path, true)) return false;
        if (ch->n_capacity > MD_CAPACITY_LIMITS) return cerr(c, "$.channels[%zu].capacity: at most %d limits", i, MD_CAPACITY_LIMITS);
    }
    if (!compile_caps(c, cfg->contact.caps, cfg->contact.n_caps, "$.contact_policy.caps", false)) return false;
    c->bare_event = true;
    c->allow = 0;
    bool ok = compile(c, cfg->contact.blackout_after, "$.contact_policy.blackout_after", &c->r->blackout_after);
    c->bare_event = false;
    md_parse_utc_offset(cfg->contact.default_utc_offset, &c->r->default_utc_offset_min);
    return ok;
}

/* A policy arm's own model (a fitted candidate tried live) scores with the
 * campaign's compiled features: it must have their shape, and a version of
 * its own so that moments and the report tell the two apart. */
static bool check_arm_model(compiler *c, size_t i, size_t a) {
    const md_cfg_campaign *cc = &c->cfg->campaigns[i];
    const md_cfg_arm *arm = &cc->arms[a];
    const md_cfg_model *m = &arm->model, *base = &cc->model;
    if (!m->version) {
        if (arm->threshold > 0 || arm->rearm_below > 0)
            return cerr(c, "$.campaigns[%zu].arms[%zu]: threshold and rearm_below go with a model of the arm's own", i, a);
        return true;
    }
    if (!is_model_version(m->version))
        return cerr(c, "$.campaigns[%zu].arms[%zu].model.version: \"%.120s\" must be 1-%d bytes of letters, digits, '.', '_' and '-'", i, a,
                    m->version, MD_MODEL_VERSION_MAX);
    if (base->version && strcmp(m->version, base->version) == 0)
        return cerr(c, "$.campaigns[%zu].arms[%zu].model.version: \"%s\" is the campaign model's version; the arm's model needs one of its own",
                    i, a, m->version);
    for (size_t b = 0; b < a; b++)
        if (cc->arms[b].model.version && strcmp(cc->arms[b].model.version, m->version) == 0)
            return cerr(c, "$.campaigns[%zu].arms[%zu].model.version: \"%s\" is already arms[%zu]'s", i, a, m->version, b);
    bool same = m->n_features == base->n_features && m->n_statics == base->n_statics && md_model_schema(m) == md_model_schema(base);
    for (size_t f = 0; same && f < m->n_features; f++)
        same = strcmp(m->features[f].name, base->features[f].name) == 0 && strcmp(m->features[f].transform, base->features[f].transform) == 0 &&
               m->features[f].cap == base->features[f].cap;
    if (!same)
        return cerr(c, "$.campaigns[%zu].arms[%zu].model: must have the campaign model's features (names, expressions, caps, transforms, in order) "
                       "and static attributes and levels, as a fitted candidate does; only the version, intercept, weights and offsets may differ",
                    i, a);
    double thr = arm->threshold > 0 ? arm->threshold : cc->threshold, rearm = arm->rearm_below > 0 ? arm->rearm_below : cc->rearm_below;
    if (rearm > thr)
        return cerr(c, "$.campaigns[%zu].arms[%zu]: rearm_below %g is above the threshold %g (hysteresis needs rearm_below <= threshold)", i, a,
                    rearm, thr);
    return true;
}

/* A campaign's start or end: RFC 3339, or "" for none (0). */
static bool campaign_time(compiler *c, const char *text, int64_t *out, size_t i, const char *key) {
    *out = 0;
    if (!text || !*text) return true;
    if (!md_parse_rfc3339(text, strlen(text), out) || *out <= 0)
        return cerr(c, "$.campaigns[%zu].%s: \"%.64s\" is not an RFC 3339 time (2026-12-01T00:00:00+08:00)", i, key, text);
    return true;
}

/* Campaign indices by priority, highest first; stable, so file order among equals. */
static void order_campaigns(const md_config *cfg, size_t *order) {
    for (size_t i = 0; i < cfg->n_campaigns; i++) {
        size_t j = i;
        while (j > 0 && cfg->campaigns[order[j - 1]].priority < cfg->campaigns[i].priority) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

static bool compile_campaigns(compiler *c) {
    const md_config *cfg = c->cfg;
    md_rules *r = c->r;
    char path[160];
    if (cfg->n_campaigns == 0) return cerr(c, "$.campaigns: at least one campaign is required");
    for (size_t i = 0; i < cfg->n_campaigns; i++) {
        const md_cfg_campaign *cc = &cfg->campaigns[i];
        md_rcampaign *rc = &r->campaigns[i];
        const md_cfg_cooldown *cd = &cc->cooldown;
        md_state_code(cc->name, rc->code);
        for (size_t o = 0; o < i; o++)
            if (strcmp(r->campaigns[o].code, rc->code) == 0)
                return cerr(c, "$.campaigns[%zu].name: \"%s\" and \"%s\" have the same short name in the stored state (%s); rename one", i,
                            cc->name, cfg->campaigns[o].name, rc->code);
        if (cc->rearm_below > cc->threshold)
            return cerr(c, "$.campaigns[%zu].rearm_below: %g is above the threshold %g (hysteresis needs rearm_below <= threshold)", i,
                        cc->rearm_below, cc->threshold);
        char where[96];
        snprintf(where, sizeof(where), "$.campaigns[%zu].cooldown", i);
        if (!check_cooldown(c, cd, where)) return false;
        if (cc->n_arms > MD_MAX_ARMS) return cerr(c, "$.campaigns[%zu].arms: at most %d arms", i, MD_MAX_ARMS);
        double shares = 0;
        for (size_t a = 0; a < cc->n_arms; a++) {
            if (!is_identifier(cc->arms[a].name))
                return cerr(c, "$.campaigns[%zu].arms[%zu].name: \"%s\" must be an identifier", i, a, cc->arms[a].name);
            for (size_t b = 0; b < a; b++)
                if (strcmp(cc->arms[a].name, cc->arms[b].name) == 0)
                    return cerr(c, "$.campaigns[%zu].arms[%zu].name: \"%s\" is already the name of arms[%zu]", i, a, cc->arms[a].name, b);
            snprintf(where, sizeof(where), "$.campaigns[%zu].arms[%zu].cooldown", i, a);
            if (!check_cooldown(c, &cc->arms[a].cooldown, where)) return false;
            if (!check_arm_model(c, i, a)) return false;
            shares += cc->arms[a].share_pct;
        }
        if (cc->n_arms && fabs(shares - 100) > 1e-6)
            return cerr(c, "$.campaigns[%zu].arms: the shares sum to %g, not 100", i, shares);
        rc->fixed_cooldown = strcmp(cd->mode, "fixed") == 0;
        if (!campaign_time(c, cc->starts, &rc->starts_ms, i, "starts") || !campaign_time(c, cc->ends, &rc->ends_ms, i, "ends")) return false;
        rc->include_list_only = strcmp(cc->audience, "include_list") == 0;
        if (rc->starts_ms && rc->ends_ms && rc->ends_ms <= rc->starts_ms)
            return cerr(c, "$.campaigns[%zu].ends: %s is not after starts %s", i, cc->ends, cc->starts);
        if (!is_model_version(cc->model.version))
            return cerr(c, "$.campaigns[%zu].model.version: \"%.120s\" must be 1-%d bytes of letters, digits, '.', '_' and '-'", i,
                        cc->model.version ? cc->model.version : "", MD_MODEL_VERSION_MAX);
        if (cc->model.n_features == 0) return cerr(c, "$.campaigns[%zu].model.features: at least one feature is required", i);
        if (cc->model.n_features + cc->model.n_statics > MD_DECISION_MAX_VALUES - 1) /* and the fatigue, in a decision record */
            return cerr(c, "$.campaigns[%zu].model: %zu features and %zu static attributes; at most %d together", i, cc->model.n_features,
                        cc->model.n_statics, MD_DECISION_MAX_VALUES - 1);
        if (cc->n_routes == 0) return cerr(c, "$.campaigns[%zu].routes: at least one route is required", i);

        /* Model: features see windows, recency, profile, the event and every
         * statistical and rule tag. */
        c->allow = ALLOW(MD_SLOT_WINDOW, MD_SLOT_BUILTIN, MD_SLOT_TAG, MD_SLOT_PROFILE, MD_SLOT_EVENT);
        c->tag_limit = cfg->n_tags;
        c->mined_visible = false;
        rc->n_features = cc->model.n_features;
        rc->features = calloc(rc->n_features, sizeof(md_rfeature));
        rc->n_statics = cc->model.n_statics;
        rc->statics = calloc(rc->n_statics ? rc->n_statics : 1, sizeof(md_rstatic));
        rc->n_routes = cc->n_routes;
        rc->routes = calloc(rc->n_routes, sizeof(md_rroute));
        if (!rc->features || !rc->statics || !rc->routes) return cerr(c, "out of memory");
        for (size_t f = 0; f < rc->n_features; f++) {
            const md_cfg_feature *cf = &cc->model.features[f];
            snprintf(path, sizeof(path), "$.campaigns[%zu].model.features[%zu].expr", i, f);
            if (!compile(c, cf->expr, path, &rc->features[f].expr)) return false;
            rc->features[f].log1p = strcmp(cf->transform, "log1p") == 0;
            rc->features[f].cap = cf->cap;
        }
        for (size_t s = 0; s < rc->n_statics; s++)
            if ((rc->statics[s].profile_attr = profile_attr(r, cc->model.statics[s].attribute)) < 0)
                return cerr(c, "$.campaigns[%zu].model.static[%zu]: too many profile attributes", i, s);

        /* Eligibility and routes see every tag, mined ones included. */
        c->mined_visible = true;
        c->allow |= 1u << MD_SLOT_SCORE;
        snprintf(path, sizeof(path), "$.campaigns[%zu].eligible", i);
        if (!compile(c, cc->eligible, path, &rc->eligible)) return false;
        snprintf(path, sizeof(path), "$.campaigns[%zu].fire_on", i);
        if (!compile(c, cc->fire_on, path, &rc->fire_on)) return false;
        for (size_t k = 0; k < rc->n_routes; k++) {
            int ch = md_rules_channel_index(cfg, cc->routes[k].channel);
            if (ch < 0)
                return cerr(c, "$.campaigns[%zu].routes[%zu].channel: \"%s\" has no entry in $.channels, so it has no contact policy", i, k,
                            cc->routes[k].channel);
            rc->routes[k].channel = ch;
            snprintf(path, sizeof(path), "$.campaigns[%zu].routes[%zu].when", i, k);
            if (!compile(c, cc->routes[k].when, path, &rc->routes[k].when)) return false;
        }
        rc->n_follow_ups = cc->n_follow_ups;
        rc->follow_ups = calloc(cc->n_follow_ups + 1, sizeof(md_rfollow_up));
        if (!rc->follow_ups) return cerr(c, "out of memory");
        for (size_t k = 0; k < cc->n_follow_ups; k++) {
            const md_cfg_follow_up *fu = &cc->follow_ups[k];
            md_rfollow_up *rf = &rc->follow_ups[k];
            rf->channel = md_rules_channel_index(cfg, fu->channel);
            if (rf->channel < 0)
                return cerr(c, "$.campaigns[%zu].follow_ups[%zu].channel: \"%s\" has no entry in $.channels, so it has no contact policy", i, k,
                            fu->channel);
            rf->from_channel = -1;
            if (fu->from_channel[0] && (rf->from_channel = md_rules_channel_index(cfg, fu->from_channel)) < 0)
                return cerr(c, "$.campaigns[%zu].follow_ups[%zu].from_channel: \"%s\" is not a channel", i, k, fu->from_channel);
            rf->after = -1;
            for (int st = 0; st < MD_OUTCOME_STATUS_COUNT; st++)
                if (strcmp(md_outcome_status_name((md_outcome_status)st), fu->after) == 0) rf->after = st;
        }
        /* The conversion is a fact about the event alone, like a signal. */
        bool bare = c->bare_event;
        unsigned allow = c->allow;
        c->bare_event = true;
        c->allow = 0;
        snprintf(path, sizeof(path), "$.campaigns[%zu].conversion", i);
        bool ok = compile(c, cc->conversion, path, &rc->conversion);
        c->bare_event = bare;
        c->allow = allow;
        if (!ok) return false;
    }
    return true;
}

static uint32_t fnv_add(uint32_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return (h ^ 0x1f) * 16777619u; /* a separator, so "ab","c" differs from "a","bc" */
}

uint32_t md_model_schema(const md_cfg_model *m) {
    uint32_t h = 2166136261u;
    for (size_t f = 0; f < m->n_features; f++) h = fnv_add(h, m->features[f].expr);
    h = fnv_add(h, "|");
    for (size_t s = 0; s < m->n_statics; s++) {
        h = fnv_add(h, m->statics[s].attribute);
        for (size_t k = 0; k < m->statics[s].n_offsets; k++) h = fnv_add(h, m->statics[s].offsets[k].key);
    }
    return h;
}

md_rules *md_rules_compile(const md_config *cfg, char *errstr, size_t errstr_size) {
    md_rules *r = calloc(1, sizeof(*r));
    compiler c = {.cfg = cfg, .r = r, .err = errstr, .errsz = errstr_size};
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->n_signals = cfg->n_signals;
    r->n_windows = cfg->n_windows;
    r->n_tags = cfg->n_tags;
    r->n_campaigns = cfg->n_campaigns;
    r->n_channels = cfg->n_channels;
    r->signals = calloc(cfg->n_signals + 1, sizeof(md_rsignal));
    r->windows = calloc(cfg->n_windows + 1, sizeof(md_rwindow));
    r->tags = calloc(cfg->n_tags + 1, sizeof(md_rtag));
    r->campaigns = calloc(cfg->n_campaigns + 1, sizeof(md_rcampaign));
    r->channels = calloc(cfg->n_channels + 1, sizeof(md_rchannel));
    r->campaign_order = calloc(cfg->n_campaigns + 1, sizeof(size_t));
    if (!r->signals || !r->windows || !r->tags || !r->campaigns || !r->channels || !r->campaign_order) cerr(&c, "out of memory");
    else order_campaigns(cfg, r->campaign_order);
    /* The two attributes the contact rules read are always known. */
    r->attr_contact_point = profile_attr(r, "contact_point");
    r->attr_utc_offset = profile_attr(r, "utc_offset");
    if (!c.failed && unique_names(&c, "signals", cfg->n_signals, signal_name) &&
        unique_names(&c, "windows", cfg->n_windows, window_name) && unique_names(&c, "tags", cfg->n_tags, tag_name) &&
        unique_names(&c, "channels", cfg->n_channels, channel_name) &&
        unique_names(&c, "campaigns", cfg->n_campaigns, campaign_name) && compile_signals_windows(&c) &&
        compile_tags(&c) && compile_channels(&c) && compile_campaigns(&c)) {
        /* Names shared between windows, tags and builtins would be ambiguous. */
        for (size_t i = 0; i < cfg->n_tags && !c.failed; i++) {
            for (size_t w = 0; w < cfg->n_windows; w++)
                if (strcmp(cfg->tags[i].name, cfg->windows[w].name) == 0)
                    cerr(&c, "$.tags[%zu].name: \"%s\" is also a window name", i, cfg->tags[i].name);
            for (int b = 0; b < MD_BI_COUNT; b++)
                if (strcmp(cfg->tags[i].name, md_builtin_names[b]) == 0)
                    cerr(&c, "$.tags[%zu].name: \"%s\" is a built-in feature name", i, cfg->tags[i].name);
        }
        /* The input topics' offset watermarks are stored under each topic's
         * short name: two topics with one would share a watermark. */
        const char *const topics[] = {cfg->kafka.topic_payments, cfg->kafka.topic_calls, cfg->kafka.topic_app_logins,
                                      cfg->kafka.topic_profiles, cfg->kafka.topic_outcomes};
        const char *const topic_keys[] = {"topic_payments", "topic_calls", "topic_app_logins", "topic_profiles", "topic_outcomes"};
        char(*codes)[MD_STATE_CODE_LEN + 1] = r->input_topic_codes;
        _Static_assert(sizeof(topics) / sizeof(topics[0]) == MD_INPUT_TOPICS, "every input topic has a code");
        for (size_t i = 0; i < MD_INPUT_TOPICS; i++) md_state_code(topics[i], codes[i]);
        for (size_t i = 0; i < MD_INPUT_TOPICS && !c.failed; i++)
            for (size_t o = 0; o < i; o++)
                if (strcmp(topics[i], topics[o]) != 0 && strcmp(codes[i], codes[o]) == 0) {
                    cerr(&c, "$.kafka.%s: \"%s\" and \"%s\" have the same short name in the stored state (%s); rename one", topic_keys[i],
                         topics[i], topics[o], codes[i]);
                    break;
                }
        /* The attributes the rules read are stored under their short names:
         * two with one would read each other's values. contact_point keeps a
         * field of its own (the store finds it before decoding). */
        if (!c.failed && !(r->profile_codes = calloc(r->n_profile_attrs + 1, sizeof(*r->profile_codes)))) cerr(&c, "out of memory");
        for (size_t i = 0; i < r->n_profile_attrs && !c.failed; i++) {
            if ((int)i == r->attr_contact_point) continue;
            md_profile_code(r->profile_attrs[i], r->profile_codes[i]);
            for (size_t o = 0; o < i; o++)
                if (strcmp(r->profile_codes[i], r->profile_codes[o]) == 0) {
                    cerr(&c, "profile.%s and profile.%s have the same short name in the stored state (%s); read one of them "
                             "under another name",
                         r->profile_attrs[i], r->profile_attrs[o], r->profile_codes[i]);
                    break;
                }
        }
        if (!c.failed && !(r->codes_id = md_codes_names_id(r))) cerr(&c, "out of memory");
        /* Every key is "<key_prefix>:..." and the store keeps at most 63
         * bytes of it: a longer prefix was cut silently, and two prefixes
         * alike in their first 63 bytes shared their keys. */
        const char *kp = cfg->redis.key_prefix;
        size_t kpl = strlen(kp);
        if (kpl == 0 || kpl > 63 || strpbrk(kp, "{}*?"))
            cerr(&c, "$.redis.key_prefix: must be 1-63 bytes without { } * or ? (got %zu bytes)", kpl);
        for (size_t i = 0; i < kpl; i++)
            if ((unsigned char)kp[i] < 0x20 || kp[i] == 0x7f) cerr(&c, "$.redis.key_prefix: contains a control character");
        /* RFC 6750's token characters, and long enough not to be guessed
         * over the connection limit's few thousand tries a second. */
        const char *tok = cfg->http.token ? cfg->http.token : "";
        size_t tl = strlen(tok);
        if (tl > 0 && (tl < 16 || tl > 256 || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") != tl))
            cerr(&c, "$.http.token: must be 16-256 characters of A-Z a-z 0-9 - . _ ~ + / = (got %zu characters%s)", tl,
                 tl >= 16 && tl <= 256 ? ", one of them not allowed" : "");
        /* The alignment lets one partition run align_slack ahead of another:
         * as much as or more than the lateness limit would drop what it
         * exists to keep. */
        if (cfg->kafka.align_slack_ms > 0 && cfg->kafka.align_slack_ms >= cfg->limits.max_lateness_ms)
            cerr(&c, "$.kafka.align_slack: %lld s is not below limits.max_lateness (%lld s); make it smaller, or 0 to read the topics independently",
                 (long long)(cfg->kafka.align_slack_ms / 1000), (long long)(cfg->limits.max_lateness_ms / 1000));
        int64_t longest = 0;
        for (size_t s = 0; s < r->n_series; s++)
            if (r->series[s].retention_ms > longest) longest = r->series[s].retention_ms;
        if (r->max_cap_span_ms > longest) longest = r->max_cap_span_ms;
        if (cfg->contact.complaint_block_ms > longest) longest = cfg->contact.complaint_block_ms;
        /* State outlives the longest thing it must remember by a day, and at
         * least the longest cooldown. */
        for (size_t k = 0; k < cfg->n_campaigns; k++)
            for (size_t a = 0; a <= cfg->campaigns[k].n_arms; a++) {
                const md_cfg_cooldown *cd = a < cfg->campaigns[k].n_arms ? &cfg->campaigns[k].arms[a].cooldown : &cfg->campaigns[k].cooldown;
                double d = cd->max_days * 86400000.0;
                if (cd->fixed_days * 86400000.0 > d) d = cd->fixed_days * 86400000.0;
                if ((int64_t)d > longest) longest = (int64_t)d;
                if (cfg->campaigns[k].skip_after_conversion_ms > longest) longest = cfg->campaigns[k].skip_after_conversion_ms;
            }
        r->state_ttl_ms = longest + 86400000;
        /* Every event that can still be counted (up to limits.max_lateness
         * behind the newest) must be recognised when it comes again: a
         * shorter guard counted a re-published event twice. */
        r->dedupe_horizon_ms = cfg->dedupe.event_id_horizon_ms > cfg->limits.max_lateness_ms ? cfg->dedupe.event_id_horizon_ms
                                                                                              : cfg->limits.max_lateness_ms;
        r->trigger_record_ms = cfg->outcomes.horizon_ms;
        for (size_t k = 0; k < cfg->n_campaigns; k++)
            if (cfg->campaigns[k].attribution_ms > r->trigger_record_ms) r->trigger_record_ms = cfg->campaigns[k].attribution_ms;
        r->decision_keep_ms = cfg->learning.keep_ms;
        r->audit_keep_ms = cfg->audit.keep_ms;
        for (size_t k = 0; k < cfg->n_campaigns; k++) {
            r->campaigns[k].schema = md_model_schema(&cfg->campaigns[k].model);
            r->campaigns[k].learning_seed = md_learning_seed(cfg->campaigns[k].name);
            r->campaigns[k].holdout_seed = md_holdout_seed(cfg->campaigns[k].name);
            r->campaigns[k].arm_seed = md_arm_seed(cfg->campaigns[k].name);
            if (r->decision_keep_ms > 0 && cfg->campaigns[k].attribution_ms > r->decision_keep_ms)
                r->decision_keep_ms = cfg->campaigns[k].attribution_ms;
        }
    }
    if (c.failed) {
        md_rules_destroy(r);
        return NULL;
    }
    return r;
}

void md_rules_destroy(md_rules *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_signals && r->signals; i++) md_expr_destroy(r->signals[i].where);
    for (size_t i = 0; i < r->n_tags && r->tags; i++) md_expr_destroy(r->tags[i].expr);
    for (size_t i = 0; i < r->n_campaigns && r->campaigns; i++) {
        md_rcampaign *c = &r->campaigns[i];
        md_expr_destroy(c->eligible);
        md_expr_destroy(c->fire_on);
        md_expr_destroy(c->conversion);
        for (size_t f = 0; f < c->n_features && c->features; f++) md_expr_destroy(c->features[f].expr);
        for (size_t k = 0; k < c->n_routes && c->routes; k++) md_expr_destroy(c->routes[k].when);
        free(c->follow_ups);
        free(c->features);
        free(c->statics);
        free(c->routes);
    }
    md_expr_destroy(r->blackout_after);
    for (size_t i = 0; i < r->n_profile_attrs; i++) free(r->profile_attrs[i]);
    free(r->profile_attrs);
    free(r->profile_codes);
    free(r->signals);
    free(r->series);
    free(r->windows);
    free(r->tags);
    free(r->campaigns);
    free(r->campaign_order);
    free(r->channels);
    free(r);
}
