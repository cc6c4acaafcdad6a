/* main.c: the momentd command line: one binary, subcommands. */
#include <getopt.h>
#include <valkey/valkey.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "log.h"
#include "momentd/config.h"
#include "momentd/engine.h"
#include "momentd/jsonw.h"
#include "report_store.h"
#include "rules.h"
#include "store.h"

#include "sim_world.h"
#include "simulate.h"
#include "backtest.h"
#include "fit.h"
#include "forget.h"
#include "lists.h"

#define MOMENTD_VERSION "0.1.0"

static const char usage[] =
    "usage: momentd COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run -c FILE                     consume events, emit marketing moments; SIGTERM/SIGINT stop it\n"
    "                                  cleanly, SIGHUP reloads FILE (kept only if it loads)\n"
    "  check -c FILE                   validate a configuration; exit 0 and print a summary, or exit 2\n"
    "  explain -c FILE CUSTOMER [--json] [--at TIME] [--history] [--since DAY]\n"
    "                                  one customer's windows, tags, scores, cooldown and what an event now would do;\n"
    "                                  --history: why (not) contacted, campaign by campaign, since DAY (the audit)\n"
    "  report -c FILE [--from DAY] [--to DAY] [--json]\n"
    "                                  funnel per campaign and channel, the uplift over the holdout group and\n"
    "                                  each model version's live quality (AUC, Brier, calibration by decile), for\n"
    "                                  the triggers of days DAY (YYYY-MM-DD, the default UTC offset's calendar;\n"
    "                                  default: the last 30 days)\n"
    "  simulate --scenario FILE [--seed N] [--json] [--plot DIR] [--trace FILE] [--redis URL] [--fit-after DAYS]\n"
    "           [--l2 X] [--prior hand|zero] [--refit-every DAYS] [--ceiling GAP[:BAR]] [--population-factor K]\n"
    "           [--keep-state]\n"
    "                                  compare the old 45-day call list, momentd with a fixed 45-day cooldown\n"
    "                                  and momentd with the adaptive cooldown on one simulated population\n"
    "                                  (the engine policies through the real engine and Redis); --fit-after: each\n"
    "                                  engine policy fits its model on its first DAYS and runs the rest with it\n"
    "                                  (the fit's --l2 and --prior as momentd fit's); --refit-every: and again\n"
    "                                  every DAYS after, on every decision so far, towards the model in use;\n"
    "                                  --ceiling: instead, only a policy that knows the hidden demand, calling\n"
    "                                  no one again within GAP days nor worth under BAR yuan a call (no Redis);\n"
    "                                  --population-factor: K times the scenario's customers and call centre, the\n"
    "                                  file's customers among them (K times the decisions: a measure's noise / sqrt K);\n"
    "                                  --keep-state: leave each engine policy's Redis state in place, its key prefix\n"
    "                                  on stderr, for momentd fit, explain and report (redis.key_prefix set to it)\n"
    "  backtest -c CANDIDATE --live FILE (--from-file EVENTS | --from-topic T[,T...]) [--json]\n"
    "                                  replay recorded events through the engine under both configurations, in\n"
    "                                  Redis namespaces of their own, and compare the triggers per campaign,\n"
    "                                  channel and day (EVENTS: JSON lines, or topic|key|json lines)\n"
    "  fit -c FILE --campaign NAME (--from-redis | --from-trace FILE) [--since DAY] [--out CANDIDATE [--arm ARM]]\n"
    "      [--trace-out FILE] [--l2 X] [--prior hand|zero] [--json]\n"
    "                                  fit the campaign's model to the decisions momentd recorded and the conversions\n"
    "                                  that followed; print hand against fitted weights, out-of-sample AUC, Brier,\n"
    "                                  log loss, calibration by decile and uplift; write a candidate configuration\n"
    "                                  (the L2 penalty --l2, default 10, pulls the weights towards the model in use;\n"
    "                                  --prior zero: towards 0, default 1; --arm: the fitted model goes to that\n"
    "                                  policy arm only, to be tried live against the running model, which the\n"
    "                                  campaign and its other arms keep)\n"
    "  load-profiles -c FILE PROFILES  write static profiles (CUSTOMER_ID|{json} lines, \"-\" = stdin) into Redis\n"
    "  pause -c FILE CAMPAIGN          stop a campaign firing on every instance, from its next batch (no restart)\n"
    "  resume -c FILE CAMPAIGN         let it fire again\n"
    "  forget -c FILE (CUSTOMER... | --from-file FILE) [--json]\n"
    "                                  erase customers (GDPR / PIPL): state, profile, contact log, records and outbox,\n"
    "                                  leaving a tombstone (privacy.forget_tombstone) so that a replay does not bring\n"
    "                                  them back; an opted-out customer keeps only the opt-out flag (\"-\" = stdin)\n"
    "  dnc -c FILE (--channel NAME | --all-channels) [--contact-points] [--remove] (ID... | --from-file FILE) [--json]\n"
    "                                  put customers (or, with --contact-points, phone numbers and other contact\n"
    "                                  points) on the do-not-contact list of a channel or of every channel, or take\n"
    "                                  them off: their routes on it are skipped (suppressed as do_not_contact)\n"
    "  list -c FILE --campaign NAME (--include | --exclude) [--remove] (CUSTOMER... | --from-file FILE) [--json]\n"
    "                                  a campaign's exclude list (never contacted by it) or include list (the only\n"
    "                                  customers it contacts when its audience is include_list)\n"
    "  config-doc                      print the configuration reference (Markdown)\n"
    "  scenario-doc                    print the simulator's scenario reference (Markdown)\n"
    "  version                         print the version\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";

static void print_env_line(void *ctx, const char *name, const char *key) { fprintf(ctx, "  %-30s overrides %s\n", name, key); }

/* The usage, then the environment overrides as the configuration table
 * names them (so --help cannot drift from the loader). */
static void print_usage(FILE *out) {
    fputs(usage, out);
    fputs("environment (when set and not empty):\n", out);
    md_config_foreach_env(print_env_line, out);
}

/* Shutdown: the first SIGTERM/SIGINT asks the loop to finish its batch,
 * commit and close. librdkafka's consumer close can block while the group
 * coordinator is unreachable, so a watchdog bounds the clean stop: after
 * MOMENTD_SHUTDOWN_GRACE_S seconds, or at a second signal, the process exits
 * at once. That loses nothing: offsets are committed only after a batch's
 * effects are durable, so whatever was unfinished is redelivered. */
#define MOMENTD_SHUTDOWN_GRACE_S 30
static volatile sig_atomic_t stop_requested = 0;
static void on_force_exit(int sig) {
    static const char msg[] = "{\"level\":\"error\",\"component\":\"main\",\"msg\":\"clean shutdown did not finish in time; "
                              "exiting now (uncommitted input will be redelivered)\"}\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}
static void on_signal(int sig) {
    if (stop_requested) on_force_exit(sig);
    stop_requested = 1;
    alarm(MOMENTD_SHUTDOWN_GRACE_S);
}

/* SIGHUP: reload the configuration between two batches (daemon.h). */
static volatile sig_atomic_t reload_requested = 0;
static void on_hangup(int sig) {
    (void)sig;
    reload_requested = 1;
}

static md_config *load_or_die(const char *path) {
    char err[1024];
    if (!path) {
        fprintf(stderr, "momentd: -c FILE is required\n");
        exit(2);
    }
    md_config *cfg = md_config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "momentd: %s\n", err);
        exit(2);
    }
    return cfg;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_run(const char *path) {
    md_config *cfg = load_or_die(path);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_force_exit;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return md_daemon_run(cfg, &stop_requested, &reload_requested); /* frees cfg */
}

static int cmd_check(const char *path) {
    md_config *cfg = load_or_die(path);
    md_config_print_summary(cfg, stdout);
    md_config_destroy(cfg);
    return 0;
}

/* ---- explain ---- */

static const char *fmt_time(int64_t ms, char buf[32]) {
    if (ms == INT64_MAX) return "never";
    if (ms <= 0) return "now";
    md_format_time(ms, buf);
    return buf;
}

static const char *decision_kind_name(char kind) {
    switch (kind) {
    case MD_DECISION_CONTACTED: return "contacted";
    case MD_DECISION_HOLDOUT: return "holdout";
    case MD_DECISION_SAMPLED: return "sampled, not contacted";
    case MD_DECISION_RELEASED: return "released, never contacted";
    default: return "?";
    }
}

/* The level a decision record stored for static attribute s of model m
 * (1-based among its offsets; 0 none). */
static const char *decision_level(const md_cfg_model *m, size_t s, double level) {
    size_t k = (size_t)level;
    return level >= 1 && k <= m->statics[s].n_offsets ? m->statics[s].offsets[k - 1].key : NULL;
}

static int newest_first(const void *a, const void *b) {
    int64_t x = ((const md_decision *)a)->ts_ms, y = ((const md_decision *)b)->ts_ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Campaign c's decision records (at most learning.max_per_campaign, 64),
 * newest first: what the model saw at each trigger, holdout and sampled
 * decision, and whether a conversion followed. */
#define EXPLAIN_MAX_DECISIONS 64
static size_t campaign_decisions(const md_config *cfg, const md_cstate *cs, size_t c, md_decision *out) {
    size_t n = 0;
    for (size_t i = 0; i < md_cstate_decision_count(cs) && n < EXPLAIN_MAX_DECISIONS; i++)
        if (md_cstate_decision(cs, i, &out[n]) && strcmp(out[n].campaign, cfg->campaigns[c].name) == 0) n++;
    qsort(out, n, sizeof(*out), newest_first);
    return n;
}

static void explain_decisions_text(const md_config *cfg, const md_cstate *cs, size_t c) {
    const md_cfg_model *m = &cfg->campaigns[c].model;
    static md_decision ds[EXPLAIN_MAX_DECISIONS];
    size_t n = campaign_decisions(cfg, cs, c, ds);
    if (n) printf("  decisions recorded for momentd fit (newest first):\n");
    for (size_t i = 0; i < n; i++) {
        const md_decision d = ds[i];
        char tb[32];
        printf("    %s  %-26s %s\n      ", fmt_time(d.ts_ms, tb), decision_kind_name(d.kind), d.converted ? "converted after" : "no conversion (yet)");
        size_t nv = m->n_features + m->n_statics; /* and the fatigue in newer records */
        if (d.schema != cfg->rules->campaigns[c].schema || (d.n_values != nv && d.n_values != nv + 1)) {
            printf("(recorded by a model of another shape: %zu values)\n", d.n_values);
            continue;
        }
        for (size_t k = 0; k < m->n_features; k++) printf("%s=%g ", m->features[k].name, d.values[k]);
        for (size_t k = 0; k < m->n_statics; k++) {
            const char *lv = decision_level(m, k, d.values[m->n_features + k]);
            printf("profile.%s=%s ", m->statics[k].attribute, lv ? lv : "(other)");
        }
        if (d.n_values > nv) printf("fatigue=%g", d.values[nv]);
        printf("\n");
    }
}

static void explain_decisions_json(const md_config *cfg, const md_cstate *cs, size_t c, md_jsonw *w) {
    const md_cfg_model *m = &cfg->campaigns[c].model;
    static md_decision ds[EXPLAIN_MAX_DECISIONS];
    size_t n = campaign_decisions(cfg, cs, c, ds);
    md_jsonw_key(w, "decisions");
    md_jsonw_arr_open(w);
    for (size_t i = 0; i < n; i++) {
        const md_decision d = ds[i];
        char tb[32];
        size_t nv = m->n_features + m->n_statics; /* and the fatigue in newer records */
        bool same_shape = d.schema == cfg->rules->campaigns[c].schema && (d.n_values == nv || d.n_values == nv + 1);
        md_jsonw_obj_open(w);
        md_jsonw_kstr(w, "at", fmt_time(d.ts_ms, tb));
        md_jsonw_kstr(w, "kind", decision_kind_name(d.kind));
        md_jsonw_kbool(w, "converted", d.converted);
        md_jsonw_kbool(w, "current_model_shape", same_shape);
        md_jsonw_key(w, "features");
        md_jsonw_obj_open(w);
        for (size_t k = 0; same_shape && k < m->n_features; k++) md_jsonw_knum(w, m->features[k].name, d.values[k]);
        for (size_t k = 0; same_shape && k < m->n_statics; k++) {
            char name[160];
            snprintf(name, sizeof(name), "profile.%s", m->statics[k].attribute);
            const char *lv = decision_level(m, k, d.values[m->n_features + k]);
            md_jsonw_key(w, name);
            if (lv) md_jsonw_str(w, lv);
            else md_jsonw_null(w);
        }
        md_jsonw_obj_close(w);
        md_jsonw_key(w, "fatigue");
        if (same_shape && d.n_values > nv) md_jsonw_num(w, d.values[nv]);
        else md_jsonw_null(w);
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
}

static int newest_audit_first(const void *a, const void *b) {
    const md_audit_entry *x = a, *y = b;
    if (x->campaign != y->campaign) return x->campaign - y->campaign;
    return x->from_ms < y->from_ms ? 1 : x->from_ms > y->from_ms ? -1 : 0;
}

/* The decision audit from since_ms on, by campaign, newest run first; the
 * caller frees it. */
static md_audit_entry *audit_since(const md_cstate *cs, int64_t since_ms, size_t *n) {
    size_t total = md_cstate_audit_count(cs);
    md_audit_entry *e = calloc(total + 1, sizeof(*e));
    *n = 0;
    for (size_t i = 0; e && i < total; i++) {
        md_cstate_audit(cs, i, &e[*n]);
        if (e[*n].last_ms >= since_ms) (*n)++;
    }
    if (e) qsort(e, *n, sizeof(*e), newest_audit_first);
    return e;
}

static void explain_history_text(const md_config *cfg, const md_cstate *cs, int64_t since_ms) {
    size_t n;
    md_audit_entry *e = audit_since(cs, since_ms, &n);
    char a[32], b[32];
    printf("\nhistory (each campaign's decisions by how they ended, newest first; last = the first decision of the last day seen):\n");
    if (n == 0) printf("  (no decision in the audit%s)\n", since_ms > 0 ? " since then" : "");
    for (size_t i = 0; e && i < n; i++)
        printf("  %-18s %s .. %s  %-18s p %.3f\n", cfg->campaigns[e[i].campaign].name, fmt_time(e[i].from_ms, a), fmt_time(e[i].last_ms, b),
               e[i].outcome, e[i].p);
    free(e);
}

static void explain_history_json(const md_config *cfg, const md_cstate *cs, int64_t since_ms, md_jsonw *w) {
    size_t n;
    md_audit_entry *e = audit_since(cs, since_ms, &n);
    char tb[32];
    md_jsonw_key(w, "history");
    md_jsonw_arr_open(w);
    for (size_t i = 0; e && i < n; i++) {
        md_jsonw_obj_open(w);
        md_jsonw_kstr(w, "campaign", cfg->campaigns[e[i].campaign].name);
        md_jsonw_kstr(w, "from", fmt_time(e[i].from_ms, tb));
        md_jsonw_kstr(w, "last", fmt_time(e[i].last_ms, tb));
        md_jsonw_kstr(w, "outcome", e[i].outcome);
        md_jsonw_knum(w, "p_contact", e[i].p);
        md_jsonw_obj_close(w);
    }
    md_jsonw_arr_close(w);
    free(e);
}

/* Whether channel ch may be used for the customer at all, and if not why:
 * "ok", "do_not_contact (customer)", "do_not_contact (contact point)" or
 * "no_consent (<attribute> is ...)". */
static const char *channel_status(const md_config *cfg, const md_cstate *cs, const md_cstate_view *v, const md_cpstate *cp, size_t ch,
                                  char *buf, size_t n) {
    if (ch < 64 && (v->do_not_contact >> ch & 1)) return "do_not_contact (customer)";
    if (md_cpstate_do_not_contact(cp, cfg->channels[ch].name)) return "do_not_contact (contact point)";
    const char *attr = cfg->channels[ch].consent;
    if (!attr || !*attr) return "ok";
    const char *value = NULL;
    for (size_t i = 0; i < v->n_attrs; i++) {
        const char *k, *val;
        md_cstate_attr(cs, i, &k, &val);
        if (strcmp(k, attr) == 0) value = val;
    }
    if (md_consent_granted(value)) return "ok";
    snprintf(buf, n, "no_consent (%s is %s%.64s%s)", attr, value ? "\"" : "", value ? value : "absent", value ? "\"" : "");
    return buf;
}

static void explain_text(const md_config *cfg, md_cstate *cs, const md_cpstate *cp, const md_engine_out *out, int64_t at) {
    char tb[32];
    md_cstate_view v;
    md_cstate_view_of(cs, &v);
    printf("customer %s at %s\n", v.customer_id, fmt_time(at, tb));
    if (!v.exists) {
        printf("  no state in Redis (never seen, or expired)\n");
    }
    printf("\nprofile:\n");
    if (v.n_attrs == 0) printf("  (none)\n");
    for (size_t i = 0; i < v.n_attrs; i++) {
        const char *ak, *av;
        md_cstate_attr(cs, i, &ak, &av);
        printf("  %-20s %s\n", ak, av);
    }
    /* Windows are read at the time explained, from the buckets kept; the
     * rest is the state as it is now, which may hold later events: said
     * where it does, so that an explanation of a past moment never passes
     * off today's balance as that day's. */
    bool later = v.newest_ts > at;
    printf("\nwindows (at %s):\n", fmt_time(at, tb));
    for (size_t w = 0; w < cfg->n_windows; w++) printf("  %-24s %g\n", cfg->windows[w].name, v.windows[w]);
    if (later) printf("\ncurrent state (it holds events after %s):\n", fmt_time(at, tb));
    double bal;
    if (md_cstate_balance(cs, &bal))
        printf("  %-24s %g%s\n", "balance", bal, v.balance_ts > at ? "  (set by a later event)" : "");
    else printf("  %-24s (unknown)\n", "balance");
    static const char *const kinds[] = {"payment", "call", "app_login"};
    for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++)
        printf("  last %-19s %s%s\n", kinds[k], v.last_ts[k] ? fmt_time(v.last_ts[k], tb) : "never",
               v.last_ts[k] > at ? "  (later than the time explained)" : "");
    printf("\ntags:\n  ");
    md_jsonw w;
    md_jsonw_init(&w);
    md_engine_write_tags(cfg, cs, &w);
    printf("%s\n", w.buf ? w.buf : "[]");
    md_jsonw_fini(&w);
    md_jsonw_init(&w);
    md_engine_write_tag_categories(cfg, cs, &w);
    printf("  by category: %s\n", w.buf ? w.buf : "{}");
    md_jsonw_fini(&w);
    if (v.forgotten_at)
        printf("\nerased by momentd forget at %s: events up to then are not counted again\n", fmt_time(v.forgotten_at, tb));
    printf("\nblocks:\n  opted out          %s\n", v.opted_out ? "yes" : "no");
    printf("  complaint block    %s\n", v.complaint_until > at ? fmt_time(v.complaint_until, tb) : "none");
    printf("  blackout           %s\n", v.blackout_until > at ? fmt_time(v.blackout_until, tb) : "none");
    printf("channels (do-not-contact lists, consent):\n");
    for (size_t ch = 0; ch < cfg->n_channels; ch++) {
        char why[160];
        printf("  %-18s %s\n", cfg->channels[ch].name, channel_status(cfg, cs, &v, cp, ch, why, sizeof(why)));
    }
    printf("contacts in the log: %zu; pending outbox entries: %zu\n", v.n_contacts, v.n_pending);
    int64_t due = md_cstate_due(cs);
    printf("schedule: %s%s\n", due ? "decided again at " : "not scheduled", due ? fmt_time(due, tb) : "");
    for (size_t c = 0; c < out->n_campaigns; c++) {
        const md_campaign_eval *e = &out->eval[c];
        const md_cfg_campaign *cc = &cfg->campaigns[c];
        const md_campaign_state st = md_cstate_campaign(cs, (int)c);
        const md_cfg_model *model = md_campaign_model(cfg, (int)c, e->arm); /* the policy arm's, when it has one */
        printf("\ncampaign %s (model %s)\n", cc->name, model->version);
        printf("  score %.3f (threshold %.2f, re-arm below %.2f, %s)\n", e->score, md_campaign_threshold(cfg, (int)c, e->arm),
               md_campaign_rearm_below(cfg, (int)c, e->arm),
               st.armed ? "armed" : "disarmed");
        if (st.list || strcmp(cc->audience, "include_list") == 0)
            printf("  audience %s; this customer is %s\n", cc->audience,
                   st.list ? (strcmp(st.list, "include") == 0 ? "on its include list" : "on its exclude list") : "on neither list");
        printf("  contributions (log-odds; intercept %.2f):\n", model->intercept);
        for (size_t k = 0; k < e->n_contrib; k++) {
            const md_contribution *ct = &e->contrib[k];
            if (ct->feature >= 0)
                printf("    %+7.3f  %-24s value %g\n", ct->contribution, cc->model.features[ct->feature].name, ct->value);
            else
                printf("    %+7.3f  profile.%s\n", ct->contribution, cc->model.statics[-ct->feature - 1].attribute);
        }
        if (e->arm >= 0) printf("  policy arm: %s (%.0f%% of customers)\n", cc->arms[e->arm].name, cc->arms[e->arm].share_pct);
        printf("  contact: p %.3f (score x (1 - %.2f)^fatigue %.2f), value now %.2f yuan (the moment's priority)\n", e->p_contact,
               cfg->outcomes.fatigue_penalty, e->fatigue, e->value);
        const md_cfg_cooldown *cd = e->arm >= 0 ? &cc->arms[e->arm].cooldown : &cc->cooldown;
        bool adaptive = strcmp(cd->mode, "fixed") != 0; /* only the adaptive mode has a recovery */
        printf("  cooldown: mode %s%s%s, required gap now %.1f days, last contact %s\n", cd->mode, adaptive ? ", recovery " : "",
               adaptive ? cd->recovery : "", e->required_gap_days, st.last_contact ? fmt_time(st.last_contact, tb) : "never");
        if (st.last_conversion) printf("  last conversion: %s\n", fmt_time(st.last_conversion, tb));
        if (st.last_stale) printf("  last stale decision: the event of %s would have fired, but its moment had expired before it could be emitted\n", fmt_time(st.last_stale, tb));
        printf("  channel now: %s\n", e->channel >= 0 ? cfg->channels[e->channel].name : "(no route matches)");
        if (e->suppressed == MD_SUPPRESS_NONE) {
            printf("  an event now: WOULD FIRE%s (if the campaign's fire_on accepts the event)\n", e->holdout ? " (holdout: recorded, not sent)" : "");
        } else {
            printf("  an event now: would not fire: %s\n", md_suppress_name(e->suppressed));
            if (e->deciding_rule) printf("  eligible again: %s (decided by %s)\n", fmt_time(e->eligible_again_ms, tb), e->deciding_rule);
        }
        explain_decisions_text(cfg, cs, c);
    }
}

static void explain_json(const md_config *cfg, md_cstate *cs, const md_cpstate *cp, const md_engine_out *out, int64_t at,
                         int64_t history_since) {
    char tb[32];
    md_cstate_view v;
    md_cstate_view_of(cs, &v);
    md_jsonw w;
    md_jsonw_init(&w);
    md_jsonw_obj_open(&w);
    md_jsonw_kstr(&w, "customer_id", v.customer_id);
    md_jsonw_kstr(&w, "at", fmt_time(at, tb));
    md_jsonw_kbool(&w, "exists", v.exists);
    md_jsonw_key(&w, "profile");
    md_jsonw_obj_open(&w);
    for (size_t i = 0; i < v.n_attrs; i++) {
        const char *ak, *av;
        md_cstate_attr(cs, i, &ak, &av);
        md_jsonw_kstr(&w, ak, av);
    }
    md_jsonw_obj_close(&w);
    md_jsonw_key(&w, "windows");
    md_jsonw_obj_open(&w);
    for (size_t i = 0; i < cfg->n_windows; i++) md_jsonw_knum(&w, cfg->windows[i].name, v.windows[i]);
    md_jsonw_obj_close(&w);
    /* Windows are as of "at"; the balance, blocks, tags and contact state
     * are the current state, which holds later events when this is true. */
    md_jsonw_kbool(&w, "state_after_at", v.newest_ts > at);
    md_jsonw_key(&w, "balance");
    double bal;
    if (md_cstate_balance(cs, &bal)) md_jsonw_num(&w, bal);
    else md_jsonw_null(&w);
    md_jsonw_kstr(&w, "balance_at", v.balance_ts ? fmt_time(v.balance_ts, tb) : "");
    md_jsonw_key(&w, "tags");
    md_engine_write_tags(cfg, cs, &w);
    md_jsonw_key(&w, "tag_categories");
    md_engine_write_tag_categories(cfg, cs, &w);
    md_jsonw_kbool(&w, "opted_out", v.opted_out);
    md_jsonw_kstr(&w, "forgotten_at", v.forgotten_at ? fmt_time(v.forgotten_at, tb) : "");
    md_jsonw_kstr(&w, "complaint_until", v.complaint_until ? fmt_time(v.complaint_until, tb) : "");
    md_jsonw_kstr(&w, "blackout_until", v.blackout_until ? fmt_time(v.blackout_until, tb) : "");
    md_jsonw_key(&w, "channels");
    md_jsonw_obj_open(&w);
    for (size_t ch = 0; ch < cfg->n_channels; ch++) {
        char why[160];
        md_jsonw_kstr(&w, cfg->channels[ch].name, channel_status(cfg, cs, &v, cp, ch, why, sizeof(why)));
    }
    md_jsonw_obj_close(&w);
    md_jsonw_kint(&w, "pending_outbox", (int64_t)v.n_pending);
    md_jsonw_kstr(&w, "scheduled_at", md_cstate_due(cs) ? fmt_time(md_cstate_due(cs), tb) : "");
    md_jsonw_key(&w, "campaigns");
    md_jsonw_arr_open(&w);
    for (size_t c = 0; c < out->n_campaigns; c++) {
        const md_campaign_eval *e = &out->eval[c];
        const md_cfg_campaign *cc = &cfg->campaigns[c];
        const md_campaign_state st = md_cstate_campaign(cs, (int)c);
        md_jsonw_obj_open(&w);
        md_jsonw_kstr(&w, "campaign", cc->name);
        md_jsonw_kstr(&w, "model_version", md_campaign_model(cfg, (int)c, e->arm)->version);
        md_jsonw_knum(&w, "score", e->score);
        md_jsonw_knum(&w, "threshold", md_campaign_threshold(cfg, (int)c, e->arm));
        md_jsonw_kbool(&w, "armed", st.armed);
        md_jsonw_kstr(&w, "audience", cc->audience);
        md_jsonw_kstr(&w, "list", st.list ? st.list : "");
        md_jsonw_key(&w, "contributions");
        md_jsonw_arr_open(&w);
        for (size_t k = 0; k < e->n_contrib; k++) {
            const md_contribution *ct = &e->contrib[k];
            md_jsonw_obj_open(&w);
            if (ct->feature >= 0) {
                md_jsonw_kstr(&w, "feature", cc->model.features[ct->feature].name);
                md_jsonw_knum(&w, "value", ct->value);
            } else {
                char name[160];
                snprintf(name, sizeof(name), "profile.%s", cc->model.statics[-ct->feature - 1].attribute);
                md_jsonw_kstr(&w, "feature", name);
            }
            md_jsonw_knum(&w, "contribution", ct->contribution);
            md_jsonw_obj_close(&w);
        }
        md_jsonw_arr_close(&w);
        md_jsonw_key(&w, "cooldown");
        md_jsonw_obj_open(&w);
        const md_cfg_cooldown *cd = e->arm >= 0 ? &cc->arms[e->arm].cooldown : &cc->cooldown;
        md_jsonw_kstr(&w, "mode", cd->mode);
        if (strcmp(cd->mode, "fixed") != 0) md_jsonw_kstr(&w, "recovery", cd->recovery);
        if (e->arm >= 0) md_jsonw_kstr(&w, "arm", cc->arms[e->arm].name);
        md_jsonw_knum(&w, "required_gap_days", e->required_gap_days);
        md_jsonw_knum(&w, "fatigue", e->fatigue);
        md_jsonw_knum(&w, "p_contact", e->p_contact);
        md_jsonw_knum(&w, "value", e->value);
        md_jsonw_kstr(&w, "last_conversion", st.last_conversion ? fmt_time(st.last_conversion, tb) : "");
        md_jsonw_kstr(&w, "last_stale_decision", st.last_stale ? fmt_time(st.last_stale, tb) : "");
        md_jsonw_kstr(&w, "last_contact", st.last_contact ? fmt_time(st.last_contact, tb) : "");
        md_jsonw_obj_close(&w);
        md_jsonw_kstr(&w, "channel", e->channel >= 0 ? cfg->channels[e->channel].name : "");
        md_jsonw_kbool(&w, "would_fire", e->suppressed == MD_SUPPRESS_NONE);
        md_jsonw_kstr(&w, "blocked_by", e->suppressed == MD_SUPPRESS_NONE ? "" : md_suppress_name(e->suppressed));
        md_jsonw_kstr(&w, "eligible_again", e->deciding_rule ? fmt_time(e->eligible_again_ms, tb) : "now");
        md_jsonw_kstr(&w, "decided_by", e->deciding_rule ? e->deciding_rule : "");
        md_jsonw_kbool(&w, "holdout", e->holdout);
        explain_decisions_json(cfg, cs, c, &w);
        md_jsonw_obj_close(&w);
    }
    md_jsonw_arr_close(&w);
    if (history_since >= 0) explain_history_json(cfg, cs, history_since, &w);
    md_jsonw_obj_close(&w);
    printf("%s\n", w.buf);
    md_jsonw_fini(&w);
}

/* history: also the decision audit, from since (a day; implies history) on. */
static int cmd_explain(const char *path, const char *customer, bool json, const char *at_text, bool history, const char *since) {
    md_config *cfg = load_or_die(path);
    char err[512];
    int rc = 1;
    int64_t at = now_ms();
    if (at_text && !md_parse_rfc3339(at_text, strlen(at_text), &at)) {
        fprintf(stderr, "momentd: --at expects an RFC 3339 time, got \"%s\"\n", at_text);
        md_config_destroy(cfg);
        return 2;
    }
    if (strlen(customer) == 0 || strlen(customer) > MD_CUSTOMER_ID_MAX) {
        fprintf(stderr, "momentd: customer id must be 1-%d bytes\n", MD_CUSTOMER_ID_MAX);
        md_config_destroy(cfg);
        return 2;
    }
    int64_t since_ms = 0;
    if (since) { /* a day of the operators' calendar */
        char t[64];
        snprintf(t, sizeof(t), "%.10sT00:00:00%s", since, cfg->contact.default_utc_offset);
        if (strlen(since) != 10 || !md_parse_rfc3339(t, strlen(t), &since_ms)) {
            fprintf(stderr, "momentd: --since expects a day as YYYY-MM-DD, got \"%.32s\"\n", since);
            md_config_destroy(cfg);
            return 2;
        }
        history = true;
    }
    md_store *store = md_store_new(&cfg->redis, err, sizeof(err));
    md_cstate *cs = md_cstate_new(cfg);
    md_cpstate *cp = md_cpstate_new();
    md_engine_out out;
    md_engine_out_init(&out);
    if (!store || !cs || !cp) {
        fprintf(stderr, "momentd: %s\n", store ? "out of memory" : err);
        goto done;
    }
    const char *ids[] = {customer};
    if (md_store_read_customers(store, 1, ids, &cs, NULL, NULL, err, sizeof(err))) {
        fprintf(stderr, "momentd: %s\n", err);
        goto done;
    }
    const char *cpid = md_cstate_contact_point(cs);
    if (cpid) {
        const char *cps[] = {cpid};
        if (md_store_read_contact_points(store, 1, cps, &cp, NULL, err, sizeof(err))) {
            fprintf(stderr, "momentd: %s\n", err);
            goto done;
        }
    }
    uint32_t paused; /* campaigns an operator paused (momentd pause) block like any rule */
    if (md_store_paused(store, cfg, &paused, NULL, err, sizeof(err))) {
        fprintf(stderr, "momentd: %s\n", err);
        goto done;
    }
    md_cstate_set_paused(cs, paused);
    md_engine_evaluate(cfg, cs, cp, at, &out);
    if (json) explain_json(cfg, cs, cp, &out, at, history ? since_ms : -1);
    else explain_text(cfg, cs, cp, &out, at);
    if (!json && history) explain_history_text(cfg, cs, since_ms);
    rc = 0;
done:
    md_engine_out_fini(&out);
    md_cpstate_destroy(cp);
    md_cstate_destroy(cs);
    md_store_destroy(store);
    md_config_destroy(cfg);
    return rc;
}

/* ---- report ---- */

static int cmd_report(const char *path, const char *from, const char *to, bool json) {
    md_config *cfg = load_or_die(path);
    char err[512] = "";
    int rc = 1;
    int64_t d_from, d_to;
    if (!md_report_range(from, to, cfg->rules->default_utc_offset_min, now_ms(), &d_from, &d_to, err, sizeof(err))) {
        fprintf(stderr, "momentd: report: %s\n", err);
        md_config_destroy(cfg);
        return 2;
    }
    md_store *store = md_store_new(&cfg->redis, err, sizeof(err));
    md_report *rep = store ? md_report_read(store, cfg, d_from, d_to, now_ms(), err, sizeof(err)) : NULL;
    if (!rep) {
        fprintf(stderr, "momentd: cannot read the report: %s\n", err);
        goto done;
    }
    if (json) md_report_print_json(rep, stdout);
    else md_report_print_text(rep, stdout);
    rc = 0;
done:
    md_report_destroy(rep);
    md_store_destroy(store);
    md_config_destroy(cfg);
    return rc;
}

/* momentd pause / resume: the run-time control every instance reads once a
 * second (md_store_paused). */
static int cmd_pause(const char *path, const char *campaign, bool paused) {
    const char *verb = paused ? "pause" : "resume";
    if (!path || !campaign) {
        fprintf(stderr, "momentd: %s needs -c FILE and one CAMPAIGN\n", verb);
        return 2;
    }
    md_config *cfg = load_or_die(path);
    char err[512];
    bool known = false;
    for (size_t c = 0; c < cfg->n_campaigns; c++) known = known || strcmp(cfg->campaigns[c].name, campaign) == 0;
    if (!known) {
        fprintf(stderr, "momentd: %s: no campaign \"%.64s\" in %s\n", verb, campaign, path);
        md_config_destroy(cfg);
        return 2;
    }
    int rc = 1;
    md_store *store = md_store_new(&cfg->redis, err, sizeof(err));
    int64_t now = now_ms();
    if (store && md_store_set_paused(store, campaign, paused, now, err, sizeof(err)) == MD_ERR_OK) {
        char tb[32];
        printf("campaign %s %s at %s: every momentd instance on %s applies it from its next batch (within a second)\n", campaign,
               paused ? "paused" : "resumed", fmt_time(now, tb), cfg->redis.key_prefix);
        rc = 0;
    } else {
        fprintf(stderr, "momentd: %s: %s\n", verb, err);
    }
    md_store_destroy(store);
    md_config_destroy(cfg);
    return rc;
}

/* An option's whole number, within lo..hi: true with *out set, or true and
 * *out left as it is when the option was not given (text NULL). */
static bool whole_option(const char *text, long long lo, long long hi, long long *out) {
    if (!text) return true;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("momentd %s\n", MOMENTD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "config-doc") == 0) {
        md_config_print_reference(stdout);
        return 0;
    }
    if (strcmp(cmd, "scenario-doc") == 0) {
        md_sim_scenario_print_reference(stdout);
        return 0;
    }
    const char *config = NULL, *at = NULL, *from = NULL, *to = NULL, *scenario = NULL, *plot = NULL, *trace = NULL, *redis = NULL;
    const char *seed = "1", *live = NULL, *from_file = NULL, *from_topic = NULL;
    const char *campaign = NULL, *from_trace = NULL, *trace_out = NULL, *out_path = NULL, *since = NULL, *l2 = NULL;
    const char *fit_after = NULL, *arm = NULL, *ceiling = NULL, *prior = "hand";
    const char *population = NULL, *refit_every = NULL;
    bool keep_state = false;
    bool json = false, from_redis = false, history = false;
    const char *channel = NULL;
    bool all_channels = false, contact_points = false, remove = false;
    int which = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
                                         {"at", required_argument, NULL, 'a'},     {"help", no_argument, NULL, 'h'},
                                         {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
                                         {"scenario", required_argument, NULL, 's'}, {"seed", required_argument, NULL, 'S'},
                                         {"plot", required_argument, NULL, 'p'},   {"trace", required_argument, NULL, 'T'},
                                         {"redis", required_argument, NULL, 'r'},  {"live", required_argument, NULL, 'L'},
                                         {"from-file", required_argument, NULL, 'F'}, {"from-topic", required_argument, NULL, 'K'},
                                         {"campaign", required_argument, NULL, 'C'}, {"from-redis", no_argument, NULL, 'R'},
                                         {"from-trace", required_argument, NULL, 'I'}, {"trace-out", required_argument, NULL, 'O'},
                                         {"out", required_argument, NULL, 'o'},    {"since", required_argument, NULL, 'n'},
                                         {"history", no_argument, NULL, 'H'},
                                         {"l2", required_argument, NULL, 'l'},     {"fit-after", required_argument, NULL, 'A'},
                                         {"channel", required_argument, NULL, 'N'}, {"all-channels", no_argument, NULL, 'W'},
                                         {"contact-points", no_argument, NULL, 'P'}, {"remove", no_argument, NULL, 'X'},
                                         {"include", no_argument, NULL, 'i'},      {"exclude", no_argument, NULL, 'e'},
                                         {"arm", required_argument, NULL, 'M'},    {"ceiling", required_argument, NULL, 'G'},
                                         {"prior", required_argument, NULL, 'Y'},  {"population-factor", required_argument, NULL, 'Q'},
                                         {"refit-every", required_argument, NULL, 'E'}, {"keep-state", no_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'j': json = true; break;
        case 'a': at = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 's': scenario = optarg; break;
        case 'S': seed = optarg; break;
        case 'p': plot = optarg; break;
        case 'T': trace = optarg; break;
        case 'r': redis = optarg; break;
        case 'L': live = optarg; break;
        case 'F': from_file = optarg; break;
        case 'K': from_topic = optarg; break;
        case 'C': campaign = optarg; break;
        case 'R': from_redis = true; break;
        case 'I': from_trace = optarg; break;
        case 'O': trace_out = optarg; break;
        case 'o': out_path = optarg; break;
        case 'n': since = optarg; break;
        case 'l': l2 = optarg; break;
        case 'A': fit_after = optarg; break;
        case 'M': arm = optarg; break;
        case 'G': ceiling = optarg; break;
        case 'Y': prior = optarg; break;
        case 'Q': population = optarg; break;
        case 'E': refit_every = optarg; break;
        case 'k': keep_state = true; break;
        case 'H': history = true; break;
        case 'N': channel = optarg; break;
        case 'W': all_channels = true; break;
        case 'P': contact_points = true; break;
        case 'X': remove = true; break;
        case 'i':
        case 'e':
            if (which && which != ch) {
                fprintf(stderr, "momentd: --include and --exclude are one or the other\n");
                return 2;
            }
            which = ch;
            break;
        case 'h': print_usage(stdout); return 0;
        default: print_usage(stderr); return 2;
        }
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(config);
    if (strcmp(cmd, "check") == 0) return cmd_check(config);
    if (strcmp(cmd, "report") == 0) return cmd_report(config, from, to, json);
    if (strcmp(cmd, "load-profiles") == 0) {
        if (!config || optind != argc - 1) {
            fprintf(stderr, "momentd: load-profiles needs -c FILE and one PROFILES file\n");
            return 2;
        }
        return md_load_profiles(config, argv[optind], redis); /* the loader already applied MOMENTD_REDIS_URL */
    }
    if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
        return cmd_pause(config, optind == argc - 1 ? argv[optind] : NULL, strcmp(cmd, "pause") == 0);
    if (strcmp(cmd, "forget") == 0) {
        md_forget_opts fo = {config, (const char *const *)argv + optind, argc - optind, from_file, json};
        return md_forget(&fo);
    }
    if (strcmp(cmd, "dnc") == 0 || strcmp(cmd, "list") == 0) {
        bool dnc = strcmp(cmd, "dnc") == 0;
        if ((dnc && (campaign || which)) || (!dnc && (channel || all_channels || contact_points))) {
            fprintf(stderr, "momentd %s: %s\n", cmd,
                    dnc ? "--campaign, --include and --exclude are momentd list's" : "--channel, --all-channels and --contact-points are momentd dnc's");
            return 2;
        }
        md_lists_opts lo = {config, dnc, channel, all_channels, contact_points, campaign, which, remove,
                            (const char *const *)argv + optind, argc - optind, from_file, json};
        return md_lists(&lo);
    }
    if (strcmp(cmd, "backtest") == 0) {
        if (!config || !live || !from_file == !from_topic) {
            fprintf(stderr, "momentd: backtest needs -c CANDIDATE, --live FILE and one of --from-file or --from-topic\n");
            return 2;
        }
        md_backtest_opts bo = {config, live, from_file, from_topic, redis, json};
        return md_backtest(&bo);
    }
    /* --prior and --l2: momentd fit's, and simulate --fit-after's (each
     * command judges its --l2: -1 when it is no number). The penalty's
     * default follows the prior: a light pull (10) towards the model in
     * use, or the 1 that fitting towards 0 always had. Both were measured
     * in the simulator (RESULTS.md, "The penalties compared"). */
    bool prior_hand = strcmp(prior, "hand") == 0;
    if (!l2) l2 = prior_hand ? "10" : "1";
    char *l2_end;
    double l2v = strtod(l2, &l2_end);
    if (*l2_end || l2_end == l2) l2v = -1;
    if ((strcmp(cmd, "fit") == 0 || strcmp(cmd, "simulate") == 0) && !prior_hand && strcmp(prior, "zero") != 0) {
        fprintf(stderr, "momentd: --prior is hand (the weights are pulled towards the model in use, the default) or zero (towards 0), not \"%s\"\n",
                prior);
        return 2;
    }
    if (strcmp(cmd, "fit") == 0) {
        md_fit_opts fo = {config, campaign, from_trace, trace_out, out_path, since, redis, arm, from_redis, json, l2v, prior_hand};
        return md_fit(&fo);
    }
    if (strcmp(cmd, "simulate") == 0) {
        char *end;
        unsigned long long sv = strtoull(seed, &end, 10);
        if (!scenario || !*seed || *end || seed[0] == '-') {
            fprintf(stderr, "momentd: simulate needs --scenario FILE and a non-negative integer --seed\n");
            return 2;
        }
        long long fa = 0, re = 0, pf = 1;
        if (!whole_option(fit_after, 1, LLONG_MAX, &fa)) {
            fprintf(stderr, "momentd: simulate --fit-after needs a positive number of days\n");
            return 2;
        }
        if (!whole_option(refit_every, 1, 3650, &re)) {
            fprintf(stderr, "momentd: simulate --refit-every needs a whole number of days from 1 to 3650\n");
            return 2;
        }
        if (!whole_option(population, 1, MD_SIM_MAX_POPULATION_FACTOR, &pf)) {
            fprintf(stderr, "momentd: simulate --population-factor needs a whole number from 1 to %d\n", MD_SIM_MAX_POPULATION_FACTOR);
            return 2;
        }
        /* --ceiling GAP[:BAR]: days, and yuan a call must be worth. */
        long long cgap = 0;
        double cbar = 0;
        if (ceiling) {
            bool ok = true;
            cgap = strtoll(ceiling, &end, 10);
            if (end != ceiling && *end == ':') {
                const char *b = end + 1;
                cbar = strtod(b, &end);
                if (end == b || !(cbar >= 0) || !isfinite(cbar)) ok = false;
            }
            if (!ok || end == ceiling || *end || cgap <= 0 || cgap > 3650) {
                fprintf(stderr, "momentd: simulate --ceiling needs GAP[:BAR]: a whole number of days from 1 to 3650, "
                                "and optionally the yuan a call must be worth on average (0 or more), e.g. 45 or 1:2000\n");
                return 2;
            }
        }
        const char *env = getenv("MOMENTD_REDIS_URL");
        md_simulate_opts so = {scenario, (uint64_t)sv, json, plot, trace,
                               redis ? redis : env && *env ? env : "redis://127.0.0.1:6379/0", true, (int64_t)fa, (int64_t)cgap, cbar,
                               l2v, prior_hand, (int)pf, (int64_t)re, keep_state};
        return md_simulate(&so);
    }
    if (strcmp(cmd, "explain") == 0) {
        if (optind != argc - 1) {
            fprintf(stderr, "momentd: explain takes exactly one CUSTOMER\n");
            return 2;
        }
        return cmd_explain(config, argv[optind], json, at, history, since);
    }
    fprintf(stderr, "momentd: unknown command \"%s\"\n\n%s", cmd, usage);
    return 2;
}
