/* simulate.c: `momentd simulate` (simulate.h): three contact policies on one
 * simulated population, the engine ones through the real engine and Redis.
 *
 * Day by day: the world (sim_world.c) gives each customer's hidden demand
 * and the day's behaviour; for the engine policies that behaviour becomes
 * events (instalment-page views, inbound instalment inquiries, monthly bill
 * payments with their lateness, other logins, purchases) driven through the
 * engine in event-time order; the day's triggers queue at the call centre,
 * which calls the highest-scored first, up to its capacity; each call's
 * result comes from the world and goes back to the engine as the dialer
 * would report it (sent, then no_answer, declined, converted, complaint or
 * opt_out). The old policy never looks at events: it calls down a list
 * ranked by the campaign's static model (segment, age band), skipping anyone
 * called in the last old_gap_days. */
#include "simulate.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "report_store.h"
#include "fit.h"
#include "log.h"
#include "momentd/jsonw.h"
#include "sim_world.h"
#include "store.h"

#define DAY_MS INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)
/* Day 0 = 2026-01-05T00:00:00+08:00 (a Monday), in UTC epoch ms. */
#define T0_MS INT64_C(1767542400000)
#define RECENT 8 /* calls remembered per customer, for fatigue */
/* Inputs per batch: the size the simulator has always decided in, so its
 * results stay comparable across versions. */
#define SIM_BATCH 500
#define SIM_DAY_EVENTS 128 /* events of one customer's day at most (Poisson draws stop at 50 each) */

enum { POL_OLD, POL_FIXED, POL_ADAPTIVE, POL_COUNT };
static const char *const pol_names[POL_COUNT] = {"old", "fixed", "adaptive"};
static const char *const pol_labels[POL_COUNT] = {"old list, 45 d", "momentd fixed 45 d", "momentd adaptive"};

/* One call and whether it converted, for the third figure (the calls one
 * policy added against the ones it dropped). */
typedef struct call_rec {
    int64_t customer, day;
    bool converted;
} call_rec;

typedef struct stats {
    int64_t contacts, answered, conversions, unwanted, complaints, optouts, organic, triggers, uncalled;
    int64_t app_messages, app_opened, app_conversions, max_app_in_a_day;
    int64_t events, outcomes; /* driven through the engine */
    double amount;
    int64_t by_result[MD_SIM_RESULT_COUNT];
    int64_t max_calls_in_a_day;
    int64_t min_gap_days; /* shortest gap between two calls to one customer; -1 = none */
    call_rec *calls;      /* every call, in order */
    size_t n_calls, cap_calls;
} stats;

/* Conversions per call by days since the same policy's previous call to the
 * customer, in the buckets of momentd report's timing table
 * (md_gap_bucket): the shape of the recovery after a contact, as this world
 * has it (what cooldown.recovery should follow). */
typedef struct gap_tally {
    int64_t calls[MD_GAP_BUCKETS], conversions[MD_GAP_BUCKETS];
} gap_tally;

typedef struct person {
    md_sim_customer c;
    double demand;
    int64_t calls[RECENT]; /* days of the latest calls, newest first; -1 = none */
    bool opted_out;
    int64_t complained;  /* day of the last complaint; -1 = none */
    int64_t bought;      /* day of the last purchase, contacted or not; -1 = none */
    int64_t last_call;   /* day of the last call (not app message); -1 = none */
    int64_t follow_up;   /* the old list: day an app message follows an unanswered call; -1 = none */
    double static_score;
    double tiebreak;
} person;


enum { CH_CALL, CH_APP };
static const char *const ch_names[] = {"call", "app"};

typedef struct queued {
    int64_t customer;
    int channel; /* CH_CALL or CH_APP */
    int64_t due_day; /* the first day it may be served (not_before) */
    double score;
    int64_t ts_ms;
    char trigger_id[MD_TRIGGER_ID_LEN];
} queued;

/* Model versions whose live quality a run reports: the hand weights and up
 * to 31 fits (--refit-every). */
#define SIM_LIVE_MODELS 32

/* A fitted model and the day it went live (--fit-after, --refit-every);
 * recal: a monotone map of its p onto the outcomes of the decisions it was
 * fitted on (md_recalibration_fit), a diagnostic: how much of its
 * calibration error after the fit a bend in p would explain. */
typedef struct fit_period {
    int64_t from_day;
    md_fit_model model;
    md_recalibration recal;
} fit_period;

/* The --fit-after loop of one engine policy: the fits, and the hand and
 * fitted models' quality on the contacted decisions made after the first,
 * each decision scored by the fitted model that made it. */
typedef struct fit_report {
    size_t trained_on;                /* by the last fit */
    bool channel_chose;               /* ... whose contacted decisions were the channel's choice (md_fit_channel_chose) */
    double threshold_before, threshold_after; /* the hand model's; the last fit's */
    md_fit_model hand;                /* the configuration's model, from the first fit */
    fit_period *periods;              /* one per fit, in order */
    size_t n_periods;
    md_model_quality hand_quality, fitted;
    md_model_quality recalibrated; /* fitted, each decision's p through its fit's recal */
} fit_report;

typedef struct sim {
    const md_sim_scenario *sc;
    uint64_t seed;
    person *people;
    stats st[POL_COUNT];
    /* engine policies */
    md_config *cfg;
    queued *queue;         /* today's moments */
    size_t nq, capq;
    queued *later;         /* moments not due before a later day (follow-ups' not_before) */
    size_t nlater, caplater;
    int64_t day;
    bool serving;          /* the day's queue is being served */
    int64_t lost;          /* moments dropped for want of memory (reported) */
    FILE *trace;
    md_event *dayev;       /* one customer's day of events, sorted before it is fed */
    /* sample customers' demand and calls, for the plot */
    FILE *plot_demand[POL_COUNT];
    int64_t fit_after_days;
    int64_t refit_every_days; /* > 0: fitted again every this many days after the first fit */
    double fit_l2;
    bool fit_prior_hand;
    bool ceiling;             /* --ceiling: only the ceiling policy runs, in the old list's place */
    int64_t ceiling_gap_days;
    double ceiling_bar;       /* yuan a call must be worth on average */
    fit_report fit[POL_COUNT];
    gap_tally gaps[POL_COUNT]; /* filled after the run, for the output */
    /* momentd report's timing table of each engine policy at the end of the
     * run: what an operator sees of the same calls from the funnel. */
    md_gap_row live_timing[POL_COUNT][MD_GAP_BUCKETS];
    /* What momentd report measures from the funnel's model counters at the
     * end of the run: each model version's live quality (the first
     * SIM_LIVE_MODELS versions; more_live: how many more there were). */
    struct {
        char version[MD_MODEL_VERSION_MAX + 1];
        md_model_quality q;
        int64_t pending;
    } live[POL_COUNT][SIM_LIVE_MODELS];
    size_t n_live[POL_COUNT], more_live[POL_COUNT];
    int64_t population_factor; /* --population-factor (1: the file's) */
    bool keep_state;           /* --keep-state */
} sim;

/* ------------------------------------------------------------------------- */

static void customer_id(int64_t i, char out[24]) { snprintf(out, 24, "s%06" PRId64, i); }

static int64_t parse_customer(const char *id) { return id[0] == 's' ? strtoll(id + 1, NULL, 10) : -1; }

/* The campaign's static model on a customer's profile: intercept plus the
 * offsets of the attributes it names. What a CRM list is ranked by. */
static double static_model(const md_cfg_campaign *cc, const md_sim_customer *c) {
    double s = cc->model.intercept;
    for (size_t k = 0; k < cc->model.n_statics; k++) {
        const md_cfg_static *st = &cc->model.statics[k];
        const char *v = strcmp(st->attribute, "segment") == 0 ? c->segment : strcmp(st->attribute, "age_band") == 0 ? c->age_band : "";
        for (size_t o = 0; o < st->n_offsets; o++)
            if (strcmp(st->offsets[o].key, v) == 0) s += st->offsets[o].value;
    }
    return s;
}

static int recent_calls(const person *p, int64_t day) {
    int n = 0;
    for (int k = 0; k < RECENT; k++)
        if (p->calls[k] >= 0 && day - p->calls[k] < 30) n++;
    return n;
}

/* Contacts customer i today under policy pol, by a call or an app message;
 * records the result. Returns it. */
static md_sim_result contact(sim *s, int pol, int64_t i, int channel, double priority, double *amount) {
    person *p = &s->people[i];
    stats *st = &s->st[pol];
    if (p->calls[0] >= 0) {
        int64_t gap = s->day - p->calls[0];
        if (st->min_gap_days < 0 || gap < st->min_gap_days) st->min_gap_days = gap;
    }
    md_sim_result r = channel == CH_CALL ? md_sim_call(s->sc, s->seed, i, s->day, p->demand, recent_calls(p, s->day), amount)
                                         : md_sim_push(s->sc, s->seed, i, s->day, p->demand, recent_calls(p, s->day), amount);
    memmove(&p->calls[1], &p->calls[0], (RECENT - 1) * sizeof(int64_t));
    p->calls[0] = s->day;
    st->by_result[r]++;
    if (channel == CH_CALL) {
        st->contacts++;
        if (r != MD_SIM_NO_ANSWER) st->answered++;
    } else {
        st->app_messages++;
        if (r != MD_SIM_NOT_OPENED) st->app_opened++;
        if (r == MD_SIM_CONVERTED) st->app_conversions++;
    }
    if (p->demand < s->sc->trough_demand) st->unwanted++;
    if (channel == CH_CALL) {
        p->last_call = s->day;
        if (st->n_calls == st->cap_calls) {
            size_t c = st->cap_calls ? st->cap_calls * 2 : 4096;
            call_rec *a = realloc(st->calls, c * sizeof(*a));
            if (a) {
                st->calls = a;
                st->cap_calls = c;
            }
        }
        if (st->n_calls < st->cap_calls) st->calls[st->n_calls++] = (call_rec){i, s->day, r == MD_SIM_CONVERTED};
    }
    if (r == MD_SIM_CONVERTED) {
        p->bought = s->day;
        st->conversions++;
        st->amount += *amount;
        p->c.satisfied_until = s->day + (int64_t)s->sc->satisfied_days;
        p->c.episode_end = s->day;
    } else if (r == MD_SIM_COMPLAINT) {
        p->complained = s->day;
        st->complaints++;
    } else if (r == MD_SIM_OPT_OUT) {
        st->optouts++;
        p->opted_out = true;
    }
    if (s->trace)
        fprintf(s->trace, "%s\t%" PRId64 "\t%" PRId64 "\t%.4f\t%s\t%s\t%.0f\t%.2f\n", s->ceiling ? "ceiling" : pol_names[pol], s->day, i, p->demand, ch_names[channel],
                md_sim_result_name(r), *amount, priority);
    if (s->plot_demand[pol] && i < 3)
        fprintf(s->plot_demand[pol], "%" PRId64 "\t%" PRId64 "\t%.4f\t%s\n", i, s->day, p->demand, ch_names[channel]);
    return r;
}

/* ------------------------------------------------------------------------- */
/* Engine policies                                                            */

static bool push_queued(queued **arr, size_t *n, size_t *cap, const queued *q) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        queued *a = realloc(*arr, c * sizeof(queued));
        if (!a) return false;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = *q;
    return true;
}

static int64_t json_time(const char *payload, const char *key, int64_t fallback) {
    char pat[40];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *v = strstr(payload, pat);
    const char *end = v ? strchr(v + strlen(pat), '"') : NULL;
    int64_t t;
    if (!v || !end || !md_parse_rfc3339(v + strlen(pat), (size_t)(end - v - strlen(pat)), &t)) return fallback;
    return t;
}

/* The sink: each moment goes to today's queue, or, when it may not be
 * served before a later day (a follow-up's not_before), to the later list. */
static md_err on_moments(void *ctx, const md_delivery *dv, size_t n, char *err, size_t errsz) {
    (void)err;
    (void)errsz;
    sim *s = ctx;
    for (size_t k = 0; k < n; k++) {
        const md_delivery *d = &dv[k];
        if (d->holdout || d->channel < 0) continue;
        queued q;
        memset(&q, 0, sizeof(q));
        q.customer = parse_customer(d->customer_id);
        q.channel = strcmp(s->cfg->channels[d->channel].name, "in_app") == 0 ? CH_APP : CH_CALL;
        /* The dialer sorts by the moment's priority (its expected value). */
        const char *pr = strstr(d->payload, "\"priority\":");
        q.score = pr ? strtod(pr + 11, NULL) : 0;
        /* Served half an hour after the moment (its event time), or at its not_before. */
        q.ts_ms = json_time(d->payload, "event_time", T0_MS + s->day * DAY_MS + 12 * HOUR_MS) + HOUR_MS / 2;
        int64_t not_before = json_time(d->payload, "not_before", 0);
        if (not_before > q.ts_ms) q.ts_ms = not_before;
        q.due_day = (q.ts_ms - T0_MS) / DAY_MS;
        snprintf(q.trigger_id, sizeof(q.trigger_id), "%s", d->trigger_id);
        /* Nothing joins today's queue while it is being served (the pusher
         * and the dialer report outcomes then, and follow-ups come of them). */
        bool ok = q.due_day > s->day || s->serving ? push_queued(&s->later, &s->nlater, &s->caplater, &q)
                                                  : push_queued(&s->queue, &s->nq, &s->capq, &q);
        if (!ok) s->lost++;
    }
    return MD_ERR_OK;
}

/* Input for the engine, as the daemon would take it: the batch runs when full. */
static md_err sim_event(md_batch *b, const md_event *ev, char *err, size_t errsz) {
    md_err e = md_batch_make_room(b, err, errsz);
    return e ? e : md_batch_add_event(b, ev, NULL);
}

static int by_score(const void *a, const void *b) {
    const queued *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->customer < y->customer ? -1 : x->customer > y->customer;
}

static void base_event(md_event *ev, int64_t i, int64_t day, int n, md_event_type type, int64_t ts) {
    memset(ev, 0, offsetof(md_event, pages));
    ev->n_pages = 0;
    ev->type = type;
    customer_id(i, ev->customer_id);
    snprintf(ev->event_id, sizeof(ev->event_id), "%s-%" PRId64 "-%d", ev->customer_id, day, n);
    ev->ts_ms = ts;
}

/* An instant in waking hours (07:00-23:00 at +08:00) for the n-th event of
 * the day: an eighth of them fall in the calls' quiet hours (21:00-09:00),
 * where a moment must wait for the schedule. */
static int64_t daytime(const sim *s, int64_t i, int64_t day, int n) {
    double u = md_sim_uniform(s->seed, i, day, 1000 + (uint32_t)n);
    return T0_MS + day * DAY_MS + 7 * HOUR_MS + (int64_t)(u * 16 * HOUR_MS);
}

static int by_time(const void *a, const void *b) {
    const md_event *x = a, *y = b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

/* The next event of customer i's day (its id and, ts 0, its time drawn
 * from its place in the day), or NULL when the day is full. */
static md_event *day_event(sim *s, int *n, int64_t i, md_event_type type, int64_t ts) {
    if (*n >= SIM_DAY_EVENTS) return NULL;
    md_event *ev = &s->dayev[*n];
    base_event(ev, i, s->day, *n, type, ts ? ts : daytime(s, i, s->day, *n));
    (*n)++;
    return ev;
}

static void app_page(md_event *ev, const char *page, int64_t session_s) {
    ev->n_pages = 1;
    snprintf(ev->pages[0], sizeof(ev->pages[0]), "%s", page);
    ev->session_s = session_s;
}

static void inbound_call(md_event *ev, const char *reason, int64_t duration_s) {
    snprintf(ev->reason, sizeof(ev->reason), "%s", reason);
    ev->inbound = true;
    ev->duration_s = duration_s;
}

static void app_payment(md_event *ev, const char *kind, double amount) {
    ev->amount = amount;
    snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
    snprintf(ev->channel, sizeof(ev->channel), "app");
}

/* The customer's day as events, in event-time order (as the bank's systems
 * would publish them), through the engine. */
static md_err feed_day(sim *s, int pol, md_batch *dr, int64_t i, const md_sim_day *b, bool bought, double amount, char *err,
                       size_t errsz) {
    md_event *evs = s->dayev, *ev;
    int n = 0;
    s->st[pol].events += b->views + b->logins + b->call + b->bill + b->bill_call + bought;
    for (int k = 0; k < b->views && (ev = day_event(s, &n, i, MD_EVENT_APP_LOGIN, 0)); k++) app_page(ev, "instalment_product", 120);
    for (int k = 0; k < b->logins && (ev = day_event(s, &n, i, MD_EVENT_APP_LOGIN, 0)); k++) app_page(ev, "home", 60);
    if (b->call && (ev = day_event(s, &n, i, MD_EVENT_CALL, 0))) inbound_call(ev, "instalment_inquiry", 180);
    if (b->bill_call && (ev = day_event(s, &n, i, MD_EVENT_CALL, 0))) inbound_call(ev, "bill_inquiry", 120);
    if (b->bill && (ev = day_event(s, &n, i, MD_EVENT_PAYMENT, 0))) {
        app_payment(ev, "bill", b->bill_amount);
        ev->late = b->late;
        ev->has_balance_after = true;
        ev->balance_after = b->balance_after;
    }
    /* The purchase, in the event stream as the bank would see it. */
    if (bought && (ev = day_event(s, &n, i, MD_EVENT_PAYMENT, T0_MS + s->day * DAY_MS + 20 * HOUR_MS))) app_payment(ev, "instalment", amount);
    qsort(evs, (size_t)n, sizeof(md_event), by_time);
    md_err e = MD_ERR_OK;
    for (int k = 0; k < n && !e; k++) e = sim_event(dr, &evs[k], err, errsz);
    return e;
}

static md_err report_outcome(md_batch *dr, const queued *q, const char *status, int64_t ts, bool with_duration, char *err,
                             size_t errsz) {
    md_outcome oc;
    memset(&oc, 0, sizeof(oc));
    snprintf(oc.trigger_id, sizeof(oc.trigger_id), "%s", q->trigger_id);
    customer_id(q->customer, oc.customer_id);
    snprintf(oc.campaign, sizeof(oc.campaign), "bill_instalment");
    snprintf(oc.channel, sizeof(oc.channel), "%s", q->channel == CH_APP ? "in_app" : "outbound_call");
    for (int st = 0; st < MD_OUTCOME_STATUS_COUNT; st++)
        if (strcmp(md_outcome_status_name((md_outcome_status)st), status) == 0) oc.status = (md_outcome_status)st;
    oc.ts_ms = ts;
    oc.has_duration = with_duration;
    oc.duration_s = with_duration ? 240 : 0;
    md_err e = md_batch_make_room(dr, err, errsz);
    return e ? e : md_batch_add_outcome(dr, &oc, NULL);
}

/* The policy's decisions so far, from its Redis namespace. */
static md_fit_set *collect_decisions(const md_config *cfg, md_store *store, char *err, size_t errsz) {
    md_fit_set *fs = md_fit_set_new(cfg, 0);
    if (!fs) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (md_fit_set_from_store(fs, store, err, errsz) != MD_ERR_OK) {
        md_fit_set_destroy(fs);
        return NULL;
    }
    return fs;
}

/* The diagnostic map of model m's p onto the outcomes of the contacted
 * decisions it was fitted on (those whose labels were final at as_of_ms). */
static bool recalibration_of(const md_fit_set *fs, const md_fit_model *m, int64_t as_of_ms, md_recalibration *r) {
    size_t room = md_fit_set_size(fs) + 1;
    double *p = malloc(room * sizeof(double)), *y = malloc(room * sizeof(double));
    bool ok = p && y && md_recalibration_fit(p, y, md_fit_predict(fs, m, 0, as_of_ms, as_of_ms, p, y), r);
    free(p);
    free(y);
    return ok;
}

/* --fit-after (and each --refit-every): fits the campaign on every decision
 * recorded so far (labels final as of now), pulled towards the model in use
 * (in_use: the hand weights at the first fit, the last fit's after), as an
 * operator running momentd fit on the live configuration would; writes the
 * candidate next to nothing the user owns (a temporary file), then loads
 * it. NULL on failure, err set. */
static md_config *fit_now(sim *s, int pol, const md_config *in_use, const char *cfg_path, md_store *store, char *err, size_t errsz) {
    fit_report *f = &s->fit[pol];
    fit_period *grown = realloc(f->periods, (f->n_periods + 1) * sizeof(*grown));
    md_fit_outcome *fo = calloc(1, sizeof(*fo)); /* a few kB: the models and their quality */
    if (grown) f->periods = grown;
    md_fit_set *fs = grown && fo ? collect_decisions(in_use, store, err, errsz) : NULL;
    if (!fs) {
        if (!grown || !fo) snprintf(err, errsz, "out of memory");
        free(fo);
        return NULL;
    }
    md_fit_params pp = {0, T0_MS + s->day * DAY_MS, s->fit_l2, s->fit_prior_hand};
    md_config *fitted = NULL;
    char tmp[] = "/tmp/momentd-sim-fit-XXXXXX";
    int fd = -1;
    if (md_fit_run(fs, &pp, fo, err, errsz) && (fd = mkstemp(tmp)) >= 0) {
        close(fd);
        if (md_fit_write_candidate(cfg_path, in_use, 0, NULL, fo, tmp, err, errsz)) fitted = md_config_load(tmp, err, errsz);
        unlink(tmp);
    } else if (fd < 0 && !err[0]) {
        snprintf(err, errsz, "cannot create %s", tmp);
    }
    if (fitted) {
        if (f->n_periods == 0) { /* the first fit: the model in use is the configuration's */
            f->hand = fo->hand;
            f->threshold_before = in_use->campaigns[0].threshold;
        }
        f->trained_on = fo->treated;
        f->channel_chose = md_fit_channel_chose(fo);
        f->threshold_after = fo->threshold;
        fit_period period = {.from_day = s->day, .model = fo->fitted};
        if (recalibration_of(fs, &fo->fitted, T0_MS + s->day * DAY_MS, &period.recal)) {
            f->periods[f->n_periods++] = period;
        } else {
            snprintf(err, errsz, "out of memory");
            md_config_destroy(fitted);
            fitted = NULL;
        }
    }
    md_fit_set_destroy(fs);
    free(fo);
    return fitted;
}

/* At the end of a --fit-after run: both models on the contacted decisions
 * made after the fit whose labels are final. */
/* The live model quality momentd report shows, read from this policy's
 * funnel keys as of the end of the run (decisions whose attribution window
 * closed by then). */
static int read_live_quality(sim *s, int pol, const md_config *cfg, md_store *store, char *err, size_t errsz) {
    int off = 0;
    md_parse_utc_offset(cfg->contact.default_utc_offset, &off);
    int64_t first = (T0_MS + (int64_t)off * 60000) / DAY_MS - 1, last = first + s->sc->days + 2;
    md_report *rep = md_report_read(store, cfg, first, last, T0_MS + s->sc->days * DAY_MS, err, errsz);
    if (!rep) return 1;
    s->n_live[pol] = s->more_live[pol] = 0;
    for (size_t i = 0; i < md_report_n_models(rep); i++) {
        if (s->n_live[pol] == SIM_LIVE_MODELS) {
            s->more_live[pol]++;
            continue;
        }
        md_model_report m;
        md_report_model(rep, i, &m);
        snprintf(s->live[pol][s->n_live[pol]].version, sizeof(s->live[pol][0].version), "%s", m.version);
        s->live[pol][s->n_live[pol]].q = m.q;
        s->live[pol][s->n_live[pol]].pending = m.pending;
        s->n_live[pol]++;
    }
    for (int b = 0; b < MD_GAP_BUCKETS; b++) md_report_gap(rep, 0, b, &s->live_timing[pol][b]);
    md_report_destroy(rep);
    return 0;
}

/* Whether today is --fit-after's day or a --refit-every day after it. */
static bool fit_due(const sim *s) {
    if (s->fit_after_days <= 0 || s->day < s->fit_after_days) return false;
    int64_t since = s->day - s->fit_after_days;
    return since == 0 || (s->refit_every_days > 0 && since % s->refit_every_days == 0);
}

static int evaluate_fit(sim *s, int pol, const md_config *cfg, md_store *store, char *err, size_t errsz) {
    fit_report *f = &s->fit[pol];
    md_fit_set *fs = collect_decisions(cfg, store, err, errsz);
    if (!fs) return 1;
    int64_t from = T0_MS + s->fit_after_days * DAY_MS, as_of = T0_MS + s->sc->days * DAY_MS;
    size_t room = md_fit_set_size(fs) + 1, n = 0;
    double *p = malloc(room * sizeof(double)), *y = malloc(room * sizeof(double)), *mapped = malloc(room * sizeof(double));
    /* The hand weights on every decision since the first fit; then each
     * decision by the fit in use when it was made: its p is what the engine
     * decided on (and recorded) then. */
    bool ok = p && y && mapped && md_model_quality_of(p, y, md_fit_predict(fs, &f->hand, from, INT64_MAX, as_of, p, y), 200, &f->hand_quality);
    for (size_t k = 0; ok && k < f->n_periods; k++) {
        int64_t to = k + 1 < f->n_periods ? T0_MS + f->periods[k + 1].from_day * DAY_MS : INT64_MAX;
        size_t added = md_fit_predict(fs, &f->periods[k].model, T0_MS + f->periods[k].from_day * DAY_MS, to, as_of, p + n, y + n);
        for (size_t i = n; i < n + added; i++) mapped[i] = md_recalibration_apply(&f->periods[k].recal, p[i]);
        n += added;
    }
    ok = ok && md_model_quality_of(p, y, n, 200, &f->fitted) && md_model_quality_of(mapped, y, n, 200, &f->recalibrated);
    free(mapped);
    free(p);
    free(y);
    md_fit_set_destroy(fs);
    if (!ok) snprintf(err, errsz, "out of memory");
    return ok ? 0 : 1;
}

static int run_engine(sim *s, int pol, const char *cfg_path, const char *redis_url, char *err, size_t errsz) {
    const md_sim_scenario *sc = s->sc;
    md_config *cfg = md_config_load(cfg_path, err, errsz);
    if (!cfg) return 2;
    s->cfg = cfg;
    int rc = 1;
    md_store *store = NULL;
    md_config *warm = NULL; /* the warm-up's copy (see below) */
    md_config *fitted = NULL; /* --fit-after: the configuration with the fitted model */
    md_batch *dr = NULL;
    int camp = -1;
    for (size_t k = 0; k < cfg->n_campaigns; k++)
        if (strcmp(cfg->campaigns[k].name, "bill_instalment") == 0) camp = (int)k;
    if (camp < 0 || cfg->n_campaigns != 1) {
        snprintf(err, errsz, "%.900s: the simulation needs exactly one campaign, named bill_instalment", cfg_path);
        md_config_destroy(cfg);
        return 2;
    }
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "momentd-sim:%d:%s", (int)getpid(), pol_names[pol]);
    md_cfg_redis rc_cfg = cfg->redis;
    rc_cfg.url = (char *)redis_url;
    rc_cfg.key_prefix = prefix;
    if (!(store = md_store_new(&rc_cfg, err, errsz))) goto out;
    if (!md_store_cache_states(store, (size_t)cfg->redis.state_cache_mb << 20)) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    if (md_store_connect(store, err, errsz)) goto out;
    if (md_store_wipe(store, err, errsz)) goto out;
    /* Nothing fires during the warm-up, while windows fill: the warm-up runs
     * on a second copy of the configuration whose threshold cannot be
     * reached, and the batch moves to the real one when calling starts (the
     * state is all in Redis, so nothing else changes). No configuration is
     * changed while a batch decides on it. */
    if (!(warm = md_config_load(cfg_path, err, errsz))) goto out;
    warm->campaigns[camp].threshold = 2;
    md_batch_hooks hooks = {.deliver = on_moments, .ctx = s};
    if (!(dr = md_batch_new(warm, store, SIM_BATCH, MD_BATCH_CLOCK_INPUT, &hooks, NULL, NULL))) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    s->nq = s->nlater = 0; /* nothing carried over from another policy */
    stats *st = &s->st[pol];
    for (int64_t i = 0; i < sc->customers; i++) {
        char cid[24], prof[160];
        customer_id(i, cid);
        snprintf(prof, sizeof(prof), "{\"customer_type\":\"resident\",\"segment\":\"%s\",\"age_band\":\"%s\"}", s->people[i].c.segment,
                 s->people[i].c.age_band);
        if (md_batch_make_room(dr, err, errsz) || md_batch_add_profile(dr, cid, prof, NULL, err, errsz)) goto out;
    }
    for (s->day = 0; s->day < sc->days; s->day++) {
        if (s->day == sc->warmup_days) { /* each day ends with its batch run: this one is empty */
            md_batch_destroy(dr);
            if (!(dr = md_batch_new(cfg, store, SIM_BATCH, MD_BATCH_CLOCK_INPUT, &hooks, NULL, NULL))) {
                snprintf(err, errsz, "out of memory");
                goto out;
            }
        }
        if (fit_due(s)) {
            /* The model is fitted on what this policy recorded so far and
             * the rest of the run (or the days to the next refit) uses it,
             * as an operator would deploy it. */
            md_config *next = fit_now(s, pol, fitted ? fitted : cfg, cfg_path, store, err, errsz);
            if (!next) goto out;
            md_batch_destroy(dr);
            dr = NULL;
            md_config_destroy(fitted);
            fitted = next;
            s->cfg = fitted;
            if (!(dr = md_batch_new(fitted, store, SIM_BATCH, MD_BATCH_CLOCK_INPUT, &hooks, NULL, NULL))) {
                snprintf(err, errsz, "out of memory");
                goto out;
            }
        }
        s->nq = 0;
        /* The schedule: customers whose cooldown (or a cap, or quiet hours)
         * ended since yesterday's decisions are decided again at their due
         * time, before the call centre opens at 09:00. */
        for (;;) {
            size_t due = 0;
            if (md_batch_make_room(dr, err, errsz) || md_batch_add_due(dr, T0_MS + s->day * DAY_MS + 9 * HOUR_MS, &due, err, errsz)) goto out;
            if (md_batch_run(dr, 0, err, errsz)) goto out;
            if (due == 0) break;
        }
        /* Moments due today that were decided earlier (follow-ups). */
        size_t keep = 0;
        for (size_t k = 0; k < s->nlater; k++) {
            if (s->later[k].due_day <= s->day) {
                if (!push_queued(&s->queue, &s->nq, &s->capq, &s->later[k])) s->lost++;
            } else {
                s->later[keep++] = s->later[k];
            }
        }
        s->nlater = keep;
        for (int64_t i = 0; i < sc->customers; i++) {
            person *p = &s->people[i];
            p->demand = md_sim_demand(sc, s->seed, i, &p->c, s->day);
            md_sim_day b;
            md_sim_behave(sc, s->seed, i, &p->c, s->day, p->demand, &b);
            double amount = 0;
            if (b.organic_buy && s->day > p->c.satisfied_until) {
                amount = round(sc->amount_base * (1 + sc->amount_demand_mult * p->demand));
                p->bought = s->day;
                p->c.satisfied_until = s->day + (int64_t)sc->satisfied_days;
                p->c.episode_end = s->day;
                if (s->day >= sc->warmup_days) st->organic++;
            } else {
                b.organic_buy = false;
            }
            if (s->plot_demand[pol] && i < 3) fprintf(s->plot_demand[pol], "%" PRId64 "\t%" PRId64 "\t%.4f\tday\n", i, s->day, p->demand);
            if (feed_day(s, pol, dr, i, &b, b.organic_buy, amount, err, errsz)) goto out;
        }
        if (md_batch_run(dr, 0, err, errsz)) goto out;
        /* The call centre and the pusher: today's moments, best first, as
         * far as the agents (and the pusher's daily volume) go. */
        if (s->nq) qsort(s->queue, s->nq, sizeof(queued), by_score); /* queue is NULL before the first trigger */
        st->triggers += (int64_t)s->nq;
        int64_t calls = 0, pushes = 0;
        s->serving = true;
        for (size_t k = 0; k < s->nq; k++) {
            queued *q = &s->queue[k];
            person *p = &s->people[q->customer];
            bool app = q->channel == CH_APP;
            if ((app ? pushes >= sc->app_per_day : calls >= sc->calls_per_day) || p->opted_out) {
                /* The dialer says so when its day ends: a contact never made
                 * starts no cooldown. */
                st->uncalled++;
                st->outcomes++;
                if (report_outcome(dr, q, "not_called", T0_MS + s->day * DAY_MS + 21 * HOUR_MS, false, err, errsz)) goto out;
                continue;
            }
            double amount;
            md_sim_result r = contact(s, pol, q->customer, q->channel, q->score, &amount);
            if (app) pushes++;
            else calls++;
            int64_t t = q->ts_ms + HOUR_MS;
            /* As the dialer and the pusher would report it. */
            const char *steps[4];
            int n = 0;
            steps[n++] = "sent";
            if (app) {
                steps[n++] = "delivered";
                if (r != MD_SIM_NOT_OPENED) steps[n++] = "opened";
                if (r == MD_SIM_CONVERTED || r == MD_SIM_OPT_OUT) steps[n++] = md_sim_result_name(r);
            } else {
                if (r == MD_SIM_CONVERTED || r == MD_SIM_DECLINED) steps[n++] = "reached";
                steps[n++] = md_sim_result_name(r);
            }
            st->outcomes += n;
            for (int k2 = 0; k2 < n; k2++)
                if (report_outcome(dr, q, steps[k2], t + k2, strcmp(steps[k2], "reached") == 0, err, errsz)) goto out;
            if (r == MD_SIM_CONVERTED) {
                md_event ev;
                base_event(&ev, q->customer, s->day, 90, MD_EVENT_PAYMENT, t + 3 * HOUR_MS);
                ev.amount = amount;
                snprintf(ev.kind, sizeof(ev.kind), "instalment");
                snprintf(ev.channel, sizeof(ev.channel), app ? "app" : "phone");
                st->events++;
                if (sim_event(dr, &ev, err, errsz)) goto out;
            }
        }
        if (pushes > st->max_app_in_a_day) st->max_app_in_a_day = pushes;
        s->serving = false;
        if (calls > st->max_calls_in_a_day) st->max_calls_in_a_day = calls;
        if (md_batch_run(dr, 0, err, errsz)) goto out;
    }
    if (s->fit[pol].n_periods > 0 && evaluate_fit(s, pol, cfg, store, err, errsz)) goto out;
    if (read_live_quality(s, pol, cfg, store, err, errsz)) goto out;
    rc = 0;
out:
    if (store && s->keep_state && rc == 0) {
        /* Left for momentd fit, explain and report to read: a configuration
         * with this redis.key_prefix reads it (the next run's wipe of its
         * own prefix does not touch it). */
        fprintf(stderr, "momentd simulate: %s policy's state kept under the key prefix %s\n", pol_names[pol], prefix);
    } else if (store) {
        char werr[256]; /* the first error is the one to report */
        md_store_wipe(store, werr, sizeof(werr));
    }
    md_batch_destroy(dr);
    md_store_destroy(store);
    md_config_destroy(warm);
    md_config_destroy(fitted);
    md_config_destroy(cfg);
    s->cfg = NULL;
    return rc;
}

/* ------------------------------------------------------------------------- */
/* The old way                                                                */

typedef struct ranked {
    int64_t i;
    double score, tiebreak;
} ranked;

static int by_rank(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->tiebreak != y->tiebreak) return x->tiebreak < y->tiebreak ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The old way, made as fair as the engine policies: the same suppressions
 * a bank applies to any list (no one in a complaint block, no one who
 * bought within the campaign's skip_after_conversion) and the same app
 * follow-up of an unanswered call the next day; only the timing differs
 * (a static ranking and the 45-day rule).
 *
 * With s->ceiling on, the same loop is the ceiling instead (--ceiling): a
 * policy no engine can be, because it reads each customer's hidden demand.
 * Every day it ranks the customers again by what a call is worth today
 * (md_sim_call_expected_amount: demand, and the customer's recent contacts),
 * never calls one in a trough (no unwanted call of its own making), calls
 * nobody worth less than its bar, and keeps its own gap. The same
 * suppressions and follow-ups as the other policies. Run at the 45-day gap
 * and at a gap of one day, it measures how much timing alone can add in a
 * scenario: detection is perfect in both, only the gap differs. */
static int run_old(sim *s, const md_config *ref) {
    const md_cfg_campaign *cc = &ref->campaigns[0];
    const int64_t complaint_days = ref->contact.complaint_block_ms / DAY_MS;
    const int64_t skip_days = cc->skip_after_conversion_ms / DAY_MS;
    const md_sim_scenario *sc = s->sc;
    ranked *list = calloc((size_t)sc->customers, sizeof(ranked));
    if (!list) return 1;
    /* The list is made once, from static data: a CRM ranking. Ties (many
     * customers share a segment and age band) are broken by a fixed draw. */
    for (int64_t i = 0; i < sc->customers; i++) {
        list[i].i = i;
        list[i].score = static_model(cc, &s->people[i].c);
        list[i].tiebreak = md_sim_uniform(s->seed, i, -2, 77);
    }
    qsort(list, (size_t)sc->customers, sizeof(ranked), by_rank);
    stats *st = &s->st[POL_OLD];
    for (s->day = 0; s->day < sc->days; s->day++) {
        for (int64_t i = 0; i < sc->customers; i++) {
            person *p = &s->people[i];
            p->demand = md_sim_demand(sc, s->seed, i, &p->c, s->day);
            /* The old list never looks at behaviour: only purchases matter here. */
            if (md_sim_organic_buy(sc, s->seed, i, s->day, p->demand) && s->day > p->c.satisfied_until) {
                p->bought = s->day;
                p->c.satisfied_until = s->day + (int64_t)sc->satisfied_days;
                p->c.episode_end = s->day;
                if (s->day >= sc->warmup_days) st->organic++;
            }
            if (s->plot_demand[POL_OLD] && i < 3) fprintf(s->plot_demand[POL_OLD], "%" PRId64 "\t%" PRId64 "\t%.4f\tday\n", i, s->day, p->demand);
        }
        if (s->day < sc->warmup_days) continue;
        /* Yesterday's unanswered calls: an app message today. */
        int64_t pushes = 0;
        for (int64_t i = 0; i < sc->customers && pushes < sc->app_per_day; i++) {
            person *p = &s->people[i];
            if (p->follow_up != s->day) continue;
            p->follow_up = -1;
            if (p->opted_out) continue;
            double amount;
            contact(s, POL_OLD, i, CH_APP, 0, &amount);
            pushes++;
        }
        if (pushes > st->max_app_in_a_day) st->max_app_in_a_day = pushes;
        int64_t calls = 0, gap_days = sc->old_gap_days;
        if (s->ceiling) {
            gap_days = s->ceiling_gap_days;
            for (int64_t i = 0; i < sc->customers; i++) {
                const person *p = &s->people[i];
                double worth = md_sim_call_expected_amount(sc, p->demand, recent_calls(p, s->day));
                list[i].i = i;
                list[i].score = p->demand < sc->trough_demand || worth < s->ceiling_bar ? -1 : worth;
                list[i].tiebreak = md_sim_uniform(s->seed, i, s->day, 78);
            }
            qsort(list, (size_t)sc->customers, sizeof(ranked), by_rank);
        }
        for (int64_t k = 0; k < sc->customers && calls < sc->calls_per_day; k++) {
            person *p = &s->people[list[k].i];
            if (s->ceiling && list[k].score < 0) break; /* the rest are in troughs or below the bar */
            if (p->opted_out || (p->last_call >= 0 && s->day - p->last_call < gap_days)) continue;
            if (p->complained >= 0 && s->day - p->complained < complaint_days) continue;
            if (p->bought >= 0 && s->day - p->bought < skip_days) continue;
            double amount;
            if (contact(s, POL_OLD, list[k].i, CH_CALL, list[k].score, &amount) == MD_SIM_NO_ANSWER && sc->app_per_day > 0)
                p->follow_up = s->day + 1;
            calls++;
        }
        if (calls > st->max_calls_in_a_day) st->max_calls_in_a_day = calls;
    }
    free(list);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Output                                                                     */

static double rel(double a, double b) { return b != 0 ? (a - b) / b * 100 : NAN; }

typedef struct row {
    const char *key, *label;
    double v[POL_COUNT];
    bool lower_is_better;
} row;

/* The two rows that are rates, shown to a decimal; the rest are counts. */
static bool row_has_decimals(const row *r) { return strcmp(r->key, "conversion_rate") == 0 || strcmp(r->key, "answered_per_month") == 0; }

static size_t table_rows(const sim *s, row *rows) {
    size_t n = 0;
    const stats *st = s->st;
    double months = (double)(s->sc->days - s->sc->warmup_days) / 30.0;
#define ROW(k, l, expr, low)                                        \
    do {                                                            \
        rows[n].key = k;                                            \
        rows[n].label = l;                                          \
        rows[n].lower_is_better = low;                              \
        for (int p = 0; p < POL_COUNT; p++) rows[n].v[p] = (expr); \
        n++;                                                        \
    } while (0)
    ROW("contacts", "calls made", (double)st[p].contacts, false);
    ROW("answered", "answered calls (effective contacts)", (double)st[p].answered, false);
    ROW("answered_per_month", "effective contacts per month", st[p].answered / months, false);
    ROW("app_messages", "app messages sent", (double)st[p].app_messages, false);
    ROW("app_opened", "app messages opened", (double)st[p].app_opened, false);
    ROW("conversions", "conversions from contacts (calls and app)", (double)st[p].conversions, false);
    ROW("conversion_rate", "conversions per contact, %",
        st[p].contacts + st[p].app_messages ? 100.0 * st[p].conversions / (double)(st[p].contacts + st[p].app_messages) : 0, false);
    ROW("amount", "transaction amount from contacts, yuan", st[p].amount, false);
    ROW("unwanted", "contacts in demand troughs (unwanted)", (double)st[p].unwanted, true);
    ROW("complaints", "complaints", (double)st[p].complaints, true);
    ROW("opt_outs", "opt-outs", (double)st[p].optouts, true);
    ROW("organic", "purchases without a contact", (double)st[p].organic, false);
#undef ROW
    return n;
}

static const row *find_row(const row *rows, size_t n, const char *key) {
    for (size_t r = 0; r < n; r++)
        if (strcmp(rows[r].key, key) == 0) return &rows[r];
    abort(); /* the keys are this file's own */
}

/* The source's third figure: conversions per call of the calls adaptive
 * made that fixed did not (same customer, same day), against those of the
 * calls fixed made that adaptive did not. Reads both call lists sorted by
 * customer, then day. */
typedef struct churn {
    int64_t added, added_conv, dropped, dropped_conv;
} churn;

static int by_call(const void *a, const void *b) {
    const call_rec *x = a, *y = b;
    if (x->customer != y->customer) return x->customer < y->customer ? -1 : 1;
    return x->day < y->day ? -1 : x->day > y->day;
}

static churn call_churn(const sim *s) {
    churn c = {0, 0, 0, 0};
    const stats *f = &s->st[POL_FIXED], *a = &s->st[POL_ADAPTIVE];
    size_t i = 0, j = 0;
    while (i < f->n_calls || j < a->n_calls) {
        int cmp = i == f->n_calls ? 1 : j == a->n_calls ? -1 : by_call(&f->calls[i], &a->calls[j]);
        if (cmp == 0) {
            i++;
            j++;
        } else if (cmp < 0) {
            c.dropped++;
            c.dropped_conv += f->calls[i++].converted;
        } else {
            c.added++;
            c.added_conv += a->calls[j++].converted;
        }
    }
    return c;
}

static double per_call(int64_t conv, int64_t calls) { return calls ? 100.0 * (double)conv / (double)calls : 0; }

static void tally_gaps(const stats *st, gap_tally *g) {
    memset(g, 0, sizeof(*g));
    for (size_t i = 0; i < st->n_calls; i++) {
        int64_t gap = MD_GAP_FIRST;
        if (i > 0 && st->calls[i - 1].customer == st->calls[i].customer) gap = st->calls[i].day - st->calls[i - 1].day;
        int b = md_gap_bucket(gap);
        g->calls[b]++;
        g->conversions[b] += st->calls[i].converted;
    }
}

static void print_text(const sim *s, const churn *ch, FILE *out) {
    const md_sim_scenario *sc = s->sc;
    row rows[20];
    size_t n = table_rows(s, rows);
    fprintf(out, "scenario %s: %" PRId64 " customers, %" PRId64 " days (%" PRId64 " warm-up), %" PRId64 " calls/day, seed %" PRIu64 "\n",
            sc->name, sc->customers, sc->days, sc->warmup_days, sc->calls_per_day, s->seed);
    if (sc->description[0]) fprintf(out, "  %s\n", sc->description);
    fprintf(out, "\n%-38s %16s %18s %17s %12s %12s\n", "", pol_labels[0], pol_labels[1], pol_labels[2], "adapt/old", "adapt/fixed");
    for (size_t r = 0; r < n; r++) {
        const char *fmt = row_has_decimals(&rows[r]) ? "%16.1f %18.1f %17.1f" : "%16.0f %18.0f %17.0f";
        fprintf(out, "%-38s ", rows[r].label);
        fprintf(out, fmt, rows[r].v[0], rows[r].v[1], rows[r].v[2]);
        for (int against = 0; against < 2; against++) {
            double v = rel(rows[r].v[2], rows[r].v[against]);
            if (isfinite(v)) fprintf(out, " %+11.1f%%", v);
            else fprintf(out, " %12s", "n/a");
        }
        fputc('\n', out);
    }
    fprintf(out, "\nconversions per call by days since the policy's previous call to the customer (calls, then %% converted):\n%-24s", "");
    for (int b = 0; b < MD_GAP_BUCKETS; b++) fprintf(out, " %13s", md_gap_bucket_name(b));
    fprintf(out, "\n");
    for (int p = 0; p < POL_COUNT; p++) {
        const gap_tally *g = &s->gaps[p];
        fprintf(out, "%-24s", pol_labels[p]);
        for (int b = 0; b < MD_GAP_BUCKETS; b++) fprintf(out, " %6" PRId64 " %5.1f%%", g->calls[b], per_call(g->conversions[b], g->calls[b]));
        fprintf(out, "\n");
    }
    fprintf(out, "the same as momentd report's timing table shows it (contacts, then conversions per contact):\n");
    for (int p = POL_FIXED; p < POL_COUNT && !s->ceiling; p++) {
        fprintf(out, "%-24s", pol_labels[p]);
        for (int b = 0; b < MD_GAP_BUCKETS; b++) {
            const md_gap_row *g = &s->live_timing[p][b];
            fprintf(out, " %6" PRId64 " %5.1f%%", g->contacts, g->has_rate ? 100 * g->rate : 0.0);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\nevents through the engine and Redis: fixed %" PRId64 ", adaptive %" PRId64 " (plus %" PRId64 " and %" PRId64 " outcomes)\n",
            s->st[POL_FIXED].events, s->st[POL_ADAPTIVE].events, s->st[POL_FIXED].outcomes, s->st[POL_ADAPTIVE].outcomes);
    fprintf(out, "momentd triggers: fixed %" PRId64 " (%" PRId64 " not called: capacity or opt-out), adaptive %" PRId64 " (%" PRId64 " not called)\n",
            s->st[POL_FIXED].triggers, s->st[POL_FIXED].uncalled, s->st[POL_ADAPTIVE].triggers, s->st[POL_ADAPTIVE].uncalled);
    fprintf(out, "the card issuer's pilot reported for adaptive against the fixed 45-day rule: +27%% effective call lists per month, +39%% transaction amount\n");
    const row *per_month = find_row(rows, n, "answered_per_month"), *amount = find_row(rows, n, "amount");
    fprintf(out, "here, adaptive against fixed: %+.1f%% effective contacts per month, %+.1f%% transaction amount; against the old list: %+.1f%%, %+.1f%%\n",
            rel(per_month->v[2], per_month->v[1]), rel(amount->v[2], amount->v[1]), rel(per_month->v[2], per_month->v[0]),
            rel(amount->v[2], amount->v[0]));
    fprintf(out, "calls adaptive added (not made by fixed the same day): %" PRId64 ", %.1f%% converted; calls it dropped: %" PRId64 ", %.1f%% converted",
            ch->added, per_call(ch->added_conv, ch->added), ch->dropped, per_call(ch->dropped_conv, ch->dropped));
    if (ch->dropped_conv > 0 && ch->added > 0)
        fprintf(out, " (%.2f times as productive; the pilot reported 10.7)", per_call(ch->added_conv, ch->added) / per_call(ch->dropped_conv, ch->dropped));
    fputc('\n', out);
    for (int p = POL_FIXED; p < POL_COUNT; p++) {
        const fit_report *f = &s->fit[p];
        if (f->n_periods == 0) continue; /* not fitted */
        bool refitted = f->n_periods > 1;
        fprintf(out, "%s: model fitted on day %" PRId64, pol_labels[p], s->fit_after_days);
        if (refitted) fprintf(out, " and every %" PRId64 " days after, %zu fits, the last", s->refit_every_days, f->n_periods);
        fprintf(out,
                " on %zu contacted decisions (L2 %g towards %s), threshold %.3f -> %.3f; on the %zu contacted decisions after it%s: "
                "AUC hand %.3f, fitted %.3f; calibration error hand %.1f pp, fitted %.1f pp (largest over %d deciles of 200 or more; "
                "fitted %.1f standard errors)\n",
                f->trained_on, s->fit_l2,
                !s->fit_prior_hand ? "0"
                : refitted         ? "the model in use: the hand weights, then each fit"
                                   : "the hand weights",
                f->threshold_before, f->threshold_after, f->fitted.n, refitted ? ", each by the fit in use when it was made" : "",
                f->hand_quality.auc, f->fitted.auc, f->hand_quality.max_calibration_error * 100, f->fitted.max_calibration_error * 100,
                f->fitted.bins_counted, f->fitted.max_calibration_z);
        fprintf(out,
                "%s: the same decisions, each fit's p through a monotone map of the outcomes it was fitted on (a diagnostic: how much of "
                "the error a bend in p explains): calibration error %.1f pp (%.1f standard errors), AUC %.3f\n",
                pol_labels[p], f->recalibrated.max_calibration_error * 100, f->recalibrated.max_calibration_z, f->recalibrated.auc);
        if (f->channel_chose)
            fprintf(out, "%s: the call centre made fewer than half of the moments the last fit learnt from: they were its choice, not the model's\n",
                    pol_labels[p]);
    }
    for (int p = POL_FIXED; p < POL_COUNT; p++) {
        if (s->more_live[p]) fprintf(out, "%s: %zu model versions after the first %d not shown\n", pol_labels[p], s->more_live[p], SIM_LIVE_MODELS);
        for (size_t i = 0; i < s->n_live[p]; i++) {
            const md_model_quality *q = &s->live[p][i].q;
            fprintf(out, "%s: live quality of model %s (momentd report, windows closed): %zu decisions, %zu conversions, AUC %.3f, Brier %.4f, ",
                    pol_labels[p], s->live[p][i].version, q->n, q->positives, q->auc, q->brier);
            if (q->bins_counted)
                fprintf(out, "calibration error %.1f pp over %d deciles of learning.calibration_min or more (%.1f standard errors)\n",
                        q->max_calibration_error * 100, q->bins_counted, q->max_calibration_z);
            else fprintf(out, "no decile of learning.calibration_min decisions or more to measure calibration on\n");
        }
    }
}

/* momentd report's timing table of each engine policy, keyed as calls_by_gap. */
static void json_live_timing(md_jsonw *w, const sim *s) {
    md_jsonw_key(w, "live_timing");
    md_jsonw_obj_open(w);
    for (int p = POL_FIXED; p < POL_COUNT; p++) {
        md_jsonw_key(w, pol_names[p]);
        md_jsonw_obj_open(w);
        for (int b = 0; b < MD_GAP_BUCKETS; b++) {
            const md_gap_row *g = &s->live_timing[p][b];
            md_jsonw_key(w, md_gap_bucket_name(b));
            md_jsonw_obj_open(w);
            md_jsonw_kint(w, "moments", g->moments);
            md_jsonw_kint(w, "contacts", g->contacts);
            md_jsonw_kint(w, "reached", g->reached);
            md_jsonw_kint(w, "no_answer", g->no_answer);
            md_jsonw_kint(w, "complaints", g->complaints);
            md_jsonw_kint(w, "conversions", g->conversions);
            md_jsonw_obj_close(w);
        }
        md_jsonw_obj_close(w);
    }
    md_jsonw_obj_close(w);
}

static void json_live(md_jsonw *w, const sim *s) {
    md_jsonw_key(w, "live_models");
    md_jsonw_obj_open(w);
    for (int p = POL_FIXED; p < POL_COUNT; p++) {
        md_jsonw_key(w, pol_names[p]);
        md_jsonw_arr_open(w);
        for (size_t i = 0; i < s->n_live[p]; i++) {
            md_jsonw_obj_open(w);
            md_jsonw_kstr(w, "version", s->live[p][i].version);
            md_jsonw_kint(w, "pending", s->live[p][i].pending);
            md_fit_json_quality(w, "quality", &s->live[p][i].q);
            md_jsonw_obj_close(w);
        }
        md_jsonw_arr_close(w);
    }
    md_jsonw_obj_close(w);
    /* Versions beyond the first SIM_LIVE_MODELS, not listed. */
    md_jsonw_key(w, "live_models_omitted");
    md_jsonw_obj_open(w);
    for (int p = POL_FIXED; p < POL_COUNT; p++) md_jsonw_kint(w, pol_names[p], (int64_t)s->more_live[p]);
    md_jsonw_obj_close(w);
}

static void json_fit(md_jsonw *w, const sim *s) {
    md_jsonw_key(w, "fit");
    md_jsonw_obj_open(w);
    md_jsonw_kint(w, "after_day", s->fit_after_days);
    md_jsonw_kint(w, "refit_every_days", s->refit_every_days);
    md_fit_json_penalty(w, s->fit_l2, s->fit_prior_hand);
    for (int p = POL_FIXED; p < POL_COUNT; p++) {
        const fit_report *f = &s->fit[p];
        md_jsonw_key(w, pol_names[p]);
        md_jsonw_obj_open(w);
        md_jsonw_kint(w, "fits", (int64_t)f->n_periods);
        md_jsonw_kint(w, "trained_on", (int64_t)f->trained_on);
        md_jsonw_kbool(w, "channel_chose", f->channel_chose);
        md_jsonw_knum(w, "threshold_before", f->threshold_before);
        md_jsonw_knum(w, "threshold_after", f->threshold_after);
        md_jsonw_kint(w, "evaluated_on", (int64_t)f->fitted.n);
        md_jsonw_kint(w, "conversions", (int64_t)f->fitted.positives);
        md_fit_json_quality(w, "hand", &f->hand_quality);
        md_fit_json_quality(w, "fitted", &f->fitted);
        md_fit_json_quality(w, "recalibrated", &f->recalibrated);
        md_jsonw_key(w, "recalibration"); /* the last fit's map */
        md_jsonw_arr_open(w);
        const md_recalibration *r = f->n_periods ? &f->periods[f->n_periods - 1].recal : NULL;
        for (int k = 0; r && k < r->n; k++) {
            md_jsonw_obj_open(w);
            md_jsonw_knum(w, "p", r->p[k]);
            md_jsonw_knum(w, "rate", r->rate[k]);
            md_jsonw_obj_close(w);
        }
        md_jsonw_arr_close(w);
        md_jsonw_obj_close(w);
    }
    md_jsonw_obj_close(w);
}

/* Counts and yuan amounts as exact integers (md_jsonw_knum keeps six
 * significant digits, which would round an amount of 29,124,147 yuan). */
static void knumber(md_jsonw *w, const char *key, double v) {
    if (v == floor(v) && fabs(v) < 9007199254740992.0) md_jsonw_kint(w, key, (int64_t)v);
    else md_jsonw_knum(w, key, v);
}

/* A policy's contacts by what became of them. */
static void json_results(md_jsonw *w, const stats *st) {
    md_jsonw_key(w, "results");
    md_jsonw_obj_open(w);
    for (int r = 0; r < MD_SIM_RESULT_COUNT; r++) knumber(w, md_sim_result_name((md_sim_result)r), (double)st->by_result[r]);
    md_jsonw_obj_close(w);
}

static void print_json(const sim *s, const churn *ch, FILE *out) {
    const md_sim_scenario *sc = s->sc;
    row rows[20];
    size_t n = table_rows(s, rows);
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "scenario", sc->name);
    knumber(&w, "seed", (double)s->seed);
    knumber(&w, "customers", (double)sc->customers);
    knumber(&w, "population_factor", (double)s->population_factor);
    knumber(&w, "days", (double)sc->days);
    knumber(&w, "warmup_days", (double)sc->warmup_days);
    md_jsonw_kint(&w, "start_ms", T0_MS); /* day 0's first instant: the run's times (decision records among them) count from it */
    knumber(&w, "calls_per_day", (double)sc->calls_per_day);
    md_jsonw_key(&w, "policies");
    md_jsonw_obj_open(&w);
    for (int p = 0; p < POL_COUNT; p++) {
        md_jsonw_key(&w, pol_names[p]);
        md_jsonw_obj_open(&w);
        for (size_t r = 0; r < n; r++) knumber(&w, rows[r].key, rows[r].v[p]);
        knumber(&w, "max_calls_in_a_day", (double)s->st[p].max_calls_in_a_day);
        knumber(&w, "max_app_messages_in_a_day", (double)s->st[p].max_app_in_a_day);
        knumber(&w, "app_conversions", (double)s->st[p].app_conversions);
        knumber(&w, "min_gap_days", (double)s->st[p].min_gap_days);
        if (p != POL_OLD) {
            knumber(&w, "events", (double)s->st[p].events);
            knumber(&w, "outcomes", (double)s->st[p].outcomes);
            knumber(&w, "triggers", (double)s->st[p].triggers);
            knumber(&w, "triggers_not_called", (double)s->st[p].uncalled);
        }
        json_results(&w, &s->st[p]);
        md_jsonw_obj_close(&w);
    }
    md_jsonw_obj_close(&w);
    for (int against = 0; against < 2; against++) {
        md_jsonw_key(&w, against == 0 ? "adaptive_vs_old_pct" : "adaptive_vs_fixed_pct");
        md_jsonw_obj_open(&w);
        for (size_t r = 0; r < n; r++) {
            double v = rel(rows[r].v[2], rows[r].v[against == 0 ? 0 : 1]);
            if (isfinite(v)) knumber(&w, rows[r].key, round(v * 10) / 10);
            else {
                md_jsonw_key(&w, rows[r].key);
                md_jsonw_null(&w);
            }
        }
        md_jsonw_obj_close(&w);
    }
    md_jsonw_key(&w, "calls_by_gap");
    md_jsonw_obj_open(&w);
    for (int p = 0; p < POL_COUNT; p++) {
        const gap_tally *g = &s->gaps[p];
        md_jsonw_key(&w, pol_names[p]);
        md_jsonw_obj_open(&w);
        for (int b = 0; b < MD_GAP_BUCKETS; b++) {
            md_jsonw_key(&w, md_gap_bucket_name(b));
            md_jsonw_obj_open(&w);
            knumber(&w, "calls", (double)g->calls[b]);
            knumber(&w, "conversions", (double)g->conversions[b]);
            md_jsonw_obj_close(&w);
        }
        md_jsonw_obj_close(&w);
    }
    md_jsonw_obj_close(&w);
    md_jsonw_key(&w, "calls_added_dropped");
    md_jsonw_obj_open(&w);
    knumber(&w, "added", (double)ch->added);
    knumber(&w, "added_conversions", (double)ch->added_conv);
    knumber(&w, "dropped", (double)ch->dropped);
    knumber(&w, "dropped_conversions", (double)ch->dropped_conv);
    md_jsonw_key(&w, "productivity_ratio");
    if (ch->dropped_conv > 0 && ch->added > 0)
        md_jsonw_num(&w, round(per_call(ch->added_conv, ch->added) / per_call(ch->dropped_conv, ch->dropped) * 100) / 100);
    else md_jsonw_null(&w);
    md_jsonw_obj_close(&w);
    md_jsonw_key(&w, "bank_seed_pct");
    md_jsonw_obj_open(&w);
    knumber(&w, "answered_per_month", 27);
    knumber(&w, "amount", 39);
    md_jsonw_obj_close(&w);
    if (s->fit_after_days > 0) json_fit(&w, s);
    json_live(&w, s);
    json_live_timing(&w, s);
    md_jsonw_obj_close(&w);
    if (!w.oom) fprintf(out, "%s\n", w.buf);
    md_jsonw_fini(&w);
}

/* --ceiling: the one policy that ran, as text or JSON (the same keys as a
 * policy of the full table, plus the gap and the bar). */
static void print_ceiling(const sim *s, bool json, FILE *out) {
    const md_sim_scenario *sc = s->sc;
    const stats *st = &s->st[POL_OLD];
    row rows[20];
    size_t n = table_rows(s, rows);
    if (!json) {
        fprintf(out, "scenario %s: %" PRId64 " customers, %" PRId64 " days (%" PRId64 " warm-up), %" PRId64 " calls/day, seed %" PRIu64 "\n",
                sc->name, sc->customers, sc->days, sc->warmup_days, sc->calls_per_day, s->seed);
        fprintf(out, "ceiling: knows every customer's hidden demand; calls no one in a trough, no one worth under %.0f yuan a call, "
                     "no one again within %" PRId64 " days\n\n", s->ceiling_bar, s->ceiling_gap_days);
        for (size_t r = 0; r < n; r++)
            fprintf(out, row_has_decimals(&rows[r]) ? "%-42s %16.1f\n" : "%-42s %16.0f\n",
                    rows[r].label, rows[r].v[POL_OLD]);
        fprintf(out, "%-42s %16" PRId64 "\n", "shortest gap between two contacts, days", st->min_gap_days);
        return;
    }
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "scenario", sc->name);
    knumber(&w, "seed", (double)s->seed);
    knumber(&w, "customers", (double)sc->customers);
    knumber(&w, "population_factor", (double)s->population_factor);
    knumber(&w, "calls_per_day", (double)sc->calls_per_day);
    md_jsonw_key(&w, "ceiling");
    md_jsonw_obj_open(&w);
    knumber(&w, "gap_days", (double)s->ceiling_gap_days);
    knumber(&w, "bar", s->ceiling_bar);
    for (size_t r = 0; r < n; r++) knumber(&w, rows[r].key, rows[r].v[POL_OLD]);
    knumber(&w, "min_gap_days", (double)st->min_gap_days);
    knumber(&w, "max_calls_in_a_day", (double)st->max_calls_in_a_day);
    json_results(&w, st);
    md_jsonw_obj_close(&w);
    md_jsonw_obj_close(&w);
    if (!w.oom) fprintf(out, "%s\n", w.buf);
    md_jsonw_fini(&w);
}

/* ------------------------------------------------------------------------- */
/* Plots (gnuplot)                                                            */

static int plot(const sim *s, const char *dir) {
    char path[1024];
    row rows[20];
    size_t n = table_rows(s, rows);
    snprintf(path, sizeof(path), "%s/policies.dat", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    const char *show[] = {"answered", "conversions", "amount", "unwanted", "complaints", "opt_outs"};
    for (size_t k = 0; k < sizeof(show) / sizeof(show[0]); k++)
        for (size_t r = 0; r < n; r++)
            if (strcmp(rows[r].key, show[k]) == 0) {
                /* Relative to the old list (= 100), so one axis fits all. */
                double base = rows[r].v[0] ? rows[r].v[0] : 1;
                fprintf(f, "\"%s\"\t%.2f\t%.2f\t%.2f\n", rows[r].key, 100 * rows[r].v[0] / base, 100 * rows[r].v[1] / base, 100 * rows[r].v[2] / base);
            }
    fclose(f);
    snprintf(path, sizeof(path), "%s/plot.gp", dir);
    f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f,
            "set terminal png size 1000,560 font ',10' noenhanced\n"
            "set datafile separator '\\t'\n"
            "set output '%s/policies.png'\n"
            "set title 'Scenario %s, seed %" PRIu64 ": each policy relative to the old list (= 100)'\n"
            "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
            "set ylabel 'relative to the old list'\nset grid ytics\nset key top left\n"
            "plot '%s/policies.dat' using 2:xtic(1) title 'old list, 45 d', '' using 3 title 'momentd fixed 45 d', '' using 4 title 'momentd adaptive'\n",
            dir, s->sc->name, s->seed, dir);
    for (int p = 0; p < POL_COUNT; p++) {
        fprintf(f,
                "set output '%s/demand-%s.png'\nunset style\nset style data lines\nset title 'Hidden demand of customers 0-2 and the calls made to them (%s)'\n"
                "set ylabel 'hidden demand'\nset xlabel 'day'\nset yrange [0:1.05]\n"
                "plot for [c=0:2] sprintf(\"< awk -F'\\t' '$1 == %%d && $4 == \\\"day\\\"' %s/demand-%s.dat\", c) using 2:3 with lines lw 2 lc c+1 title sprintf('customer %%d', c), "
                "for [c=0:2] sprintf(\"< awk -F'\\t' '$1 == %%d && $4 == \\\"call\\\"' %s/demand-%s.dat\", c) using 2:3 with points pt 7 ps 1.5 lc c+1 title sprintf('call to %%d', c), "
                "for [c=0:2] sprintf(\"< awk -F'\\t' '$1 == %%d && $4 == \\\"app\\\"' %s/demand-%s.dat\", c) using 2:3 with points pt 9 ps 1.5 lc c+1 title sprintf('app message to %%d', c)\n"
                "set yrange [*:*]\nunset xlabel\n",
                dir, pol_names[p], pol_labels[p], dir, pol_names[p], dir, pol_names[p], dir, pol_names[p]);
    }
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "gnuplot '%s/plot.gp' 2>'%s/gnuplot.log'", dir, dir);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "momentd simulate: gnuplot failed (see %s/gnuplot.log; is gnuplot installed?)\n", dir);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */

/* A path in the scenario, relative to the scenario's folder. */
static void resolve(const char *scenario_path, const char *p, char *out, size_t n) {
    if (p[0] == '/' || access(p, R_OK) == 0) {
        snprintf(out, n, "%s", p);
        return;
    }
    const char *slash = strrchr(scenario_path, '/');
    if (!slash) snprintf(out, n, "%s", p);
    else snprintf(out, n, "%.*s/%s", (int)(slash - scenario_path), scenario_path, p);
}

int md_simulate(const md_simulate_opts *o) {
    char err[1024] = "";
    md_sim_scenario *sc = md_sim_scenario_load(o->scenario, err, sizeof(err));
    if (!sc) {
        fprintf(stderr, "momentd simulate: %s\n", err);
        return 2;
    }
    /* --population-factor K: the same world K times as large. Each
     * customer's draws depend on its index, so the file's customers live
     * the same lives and K - 1 times as many join them. */
    int64_t factor = o->population_factor > 1 ? o->population_factor : 1;
    if (!md_sim_scenario_scale(sc, factor, err, sizeof(err))) {
        fprintf(stderr, "momentd simulate: --population-factor %" PRId64 ": %s\n", factor, err);
        md_sim_scenario_destroy(sc);
        return 2;
    }
    int rc = 1;
    sim s;
    memset(&s, 0, sizeof(s));
    s.sc = sc;
    s.population_factor = factor;
    s.seed = o->seed;
    s.fit_after_days = o->fit_after_days;
    s.refit_every_days = o->refit_every_days;
    s.fit_l2 = o->fit_l2;
    s.fit_prior_hand = o->fit_prior_hand;
    s.keep_state = o->keep_state;
    s.ceiling = o->ceiling_gap_days > 0;
    s.ceiling_gap_days = o->ceiling_gap_days;
    s.ceiling_bar = o->ceiling_bar;
    s.people = calloc((size_t)sc->customers, sizeof(person));
    s.dayev = calloc(SIM_DAY_EVENTS, sizeof(md_event));
    char fixed_path[1024], adaptive_path[1024];
    resolve(o->scenario, sc->engine_fixed, fixed_path, sizeof(fixed_path));
    resolve(o->scenario, sc->engine_adaptive, adaptive_path, sizeof(adaptive_path));
    md_config *ref = md_config_load(adaptive_path, err, sizeof(err));
    if (o->fit_after_days > 0 && (o->fit_after_days <= sc->warmup_days || o->fit_after_days >= sc->days)) {
        fprintf(stderr, "momentd simulate: --fit-after %" PRId64 " must be after the warm-up (%" PRId64 " days) and before the end (%" PRId64 ")\n",
                o->fit_after_days, sc->warmup_days, sc->days);
        rc = 2;
        goto out;
    }
    if (o->refit_every_days > 0 && o->fit_after_days <= 0) {
        fprintf(stderr, "momentd simulate: --refit-every refits the model --fit-after fits first; give --fit-after DAYS too\n");
        rc = 2;
        goto out;
    }
    if (!(o->fit_l2 > 0) || !isfinite(o->fit_l2)) {
        fprintf(stderr, "momentd simulate: --l2 must be a positive number\n");
        rc = 2;
        goto out;
    }
    if (s.ceiling && (o->fit_after_days > 0 || o->plot_dir)) {
        fprintf(stderr, "momentd simulate: --ceiling runs one policy only; it takes neither --fit-after nor --plot\n");
        rc = 2;
        goto out;
    }
    if (!s.people || !s.dayev || !ref) {
        fprintf(stderr, "momentd simulate: %s\n", ref ? "out of memory" : err);
        rc = 2;
        goto out;
    }
    if (o->trace && !(s.trace = fopen(o->trace, "w"))) {
        fprintf(stderr, "momentd simulate: cannot write %s\n", o->trace);
        goto out;
    }
    if (s.trace) fprintf(s.trace, "policy\tday\tcustomer\tdemand\tchannel\tresult\tamount\tpriority\n");
    if (o->plot_dir) {
        mkdir(o->plot_dir, 0755);
        for (int p = 0; p < POL_COUNT; p++) {
            char path[1100];
            snprintf(path, sizeof(path), "%s/demand-%s.dat", o->plot_dir, pol_names[p]);
            if (!(s.plot_demand[p] = fopen(path, "w"))) {
                fprintf(stderr, "momentd simulate: cannot write %s\n", path);
                goto out;
            }
        }
    }
    for (int pol = 0; pol < (s.ceiling ? 1 : POL_COUNT); pol++) {
        /* The same population, needs and luck for every policy. */
        for (int64_t i = 0; i < sc->customers; i++) {
            md_sim_customer_init(sc, s.seed, i, &s.people[i].c);
            for (int k = 0; k < RECENT; k++) s.people[i].calls[k] = -1;
            s.people[i].opted_out = false;
            s.people[i].complained = s.people[i].bought = s.people[i].last_call = s.people[i].follow_up = -1;
        }
        s.st[pol].min_gap_days = -1;
        int r;
        if (pol == POL_OLD) r = run_old(&s, ref);
        else r = run_engine(&s, pol, pol == POL_FIXED ? fixed_path : adaptive_path, o->redis_url, err, sizeof(err));
        if (r) {
            fprintf(stderr, "momentd simulate: %s policy: %s\n", pol_names[pol], err[0] ? err : "out of memory");
            rc = r;
            goto out;
        }
        if (o->progress) fprintf(stderr, "momentd simulate: %s policy done\n", s.ceiling ? "ceiling" : pol_names[pol]);
    }
    for (int p = 0; p < POL_COUNT; p++)
        if (s.plot_demand[p]) {
            fclose(s.plot_demand[p]);
            s.plot_demand[p] = NULL;
        }
    if (s.lost) fprintf(stderr, "momentd simulate: %" PRId64 " moments dropped for want of memory\n", s.lost);
    if (s.ceiling) {
        print_ceiling(&s, o->json, stdout);
        rc = 0;
        goto out;
    }
    /* Both the churn and the gaps read each policy's calls by customer, then day. */
    for (int p = 0; p < POL_COUNT; p++)
        if (s.st[p].n_calls) qsort(s.st[p].calls, s.st[p].n_calls, sizeof(call_rec), by_call);
    churn ch = call_churn(&s);
    for (int p = 0; p < POL_COUNT; p++) tally_gaps(&s.st[p], &s.gaps[p]);
    if (o->json) print_json(&s, &ch, stdout);
    else print_text(&s, &ch, stdout);
    rc = 0;
    if (o->plot_dir && plot(&s, o->plot_dir)) rc = 1;
out:
    for (int p = 0; p < POL_COUNT; p++)
        if (s.plot_demand[p]) fclose(s.plot_demand[p]);
    if (s.trace) fclose(s.trace);
    free(s.queue);
    free(s.later);
    free(s.people);
    free(s.dayev);
    for (int p = 0; p < POL_COUNT; p++) {
        free(s.st[p].calls);
        free(s.fit[p].periods);
    }
    md_config_destroy(ref);
    md_sim_scenario_destroy(sc);
    return rc;
}
