/* sim_world.c: the simulated customers and call centre (sim_world.h). */
#include "sim_world.h"

#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

/* ---- scenario file: one flat table, walked by the configuration's
 * machinery (table.c) ---- */

#pragma GCC diagnostic ignored "-Wmissing-field-initializers" /* the table's optional columns */
static const md_field scenario_fields[] = {
    STR(md_sim_scenario, name, "", "Name shown in the table."),
    STR(md_sim_scenario, description, "", "What the scenario stands for."),
    STR(md_sim_scenario, engine_fixed, "config/sim/fixed45.json", "momentd configuration of the fixed-cooldown policy (relative to the scenario file's folder or absolute)."),
    STR(md_sim_scenario, engine_adaptive, "config/sim/adaptive.json", "momentd configuration of the adaptive policy; should differ from engine_fixed only in the cooldown."),
    INT(md_sim_scenario, customers, "10000", 10, 2000000, "Population size."),
    INT(md_sim_scenario, days, "240", 30, 3650, "Simulated days, warm-up included."),
    INT(md_sim_scenario, warmup_days, "60", 0, 3000, "Days of events before any contact, so that windows fill."),
    INT(md_sim_scenario, calls_per_day, "120", 1, 1000000, "Calls the call centre makes per day at most (its agents)."),
    INT(md_sim_scenario, old_gap_days, "45", 1, 365, "The old rule: never call a customer again within this many days."),
    NUMS(md_sim_scenario, tier_share, MD_SIM_TIERS, "0.5,0.35,0.15", 0, 1, "Share of customers in the low, mid and high need tiers (sums to 1)."),
    NUMS(md_sim_scenario, tier_base, MD_SIM_TIERS, "0.05,0.15,0.3", 0, 1, "Baseline demand of each tier."),
    NUM(md_sim_scenario, bill_cycle_amp, "0.1", 0, 1, "Swing of demand over the monthly bill cycle (highest just before the bill)."),
    NUM(md_sim_scenario, season_amp, "0.05", 0, 1, "Yearly swing of demand."),
    NUM(md_sim_scenario, episode_rate_per_month, "0.3", 0, 30, "Need episodes starting per customer per month (a large purchase, a cash squeeze)."),
    NUM(md_sim_scenario, episode_days_min, "5", 1, 365, "Shortest episode, days."),
    NUM(md_sim_scenario, episode_days_max, "30", 1, 365, "Longest episode, days."),
    NUM(md_sim_scenario, episode_lift, "0.5", 0, 1, "Demand added during an episode."),
    NUM(md_sim_scenario, satisfied_days, "60", 0, 365, "After a purchase, demand stays low this long."),
    NUM(md_sim_scenario, satisfied_factor, "0.2", 0, 1, "... multiplied by this."),
    NUM(md_sim_scenario, view_rate_full, "0.8", 0, 20, "Instalment-page views per day at demand 1 (Poisson)."),
    NUM(md_sim_scenario, view_rate_noise, "0.03", 0, 20, "Views per day regardless of demand (curious, not in need)."),
    NUM(md_sim_scenario, call_rate_full, "0.08", 0, 1, "Chance per day of an inbound instalment inquiry at demand 1."),
    NUM(md_sim_scenario, call_rate_noise, "0.002", 0, 1, "... regardless of demand."),
    NUM(md_sim_scenario, login_rate, "0.3", 0, 20, "Other app logins per day (noise)."),
    NUM(md_sim_scenario, spend_base, "3000", 0, 1e7, "Monthly bill at demand 0, yuan."),
    NUM(md_sim_scenario, spend_demand_mult, "2", 0, 100, "The bill grows by this factor times demand (spending swings)."),
    NUM(md_sim_scenario, late_prob_base, "0.05", 0, 1, "Chance a bill is paid late at demand 0."),
    NUM(md_sim_scenario, late_prob_full, "0.3", 0, 1, "... added at demand 1."),
    NUM(md_sim_scenario, bill_call_base, "0.03", 0, 1, "Chance of an inbound bill inquiry on a bill day, at demand 0."),
    NUM(md_sim_scenario, bill_call_full, "0.15", 0, 1, "... added at demand 1."),
    NUM(md_sim_scenario, balance_base, "2000", 0, 1e8, "Balance after paying the bill at demand 0, yuan."),
    NUM(md_sim_scenario, balance_demand_drop, "0.9", 0, 1, "The balance shrinks by this fraction times demand (a cash squeeze shows as a low balance)."),
    NUM(md_sim_scenario, organic_buy_full, "0.01", 0, 1, "Chance per day of buying uncontacted, at demand 1."),
    NUM(md_sim_scenario, answer_prob, "0.6", 0, 1, "Chance a call is answered by a rested customer."),
    NUM(md_sim_scenario, fatigue_penalty, "0.25", 0, 1, "Each call in the last 30 days multiplies answering and buying by (1 - this)."),
    NUM(md_sim_scenario, convert_full, "0.6", 0, 1, "Chance an answered customer buys, at demand 1 (scales with demand)."),
    NUM(md_sim_scenario, trough_demand, "0.15", 0, 1, "A call at demand below this is unwanted."),
    NUM(md_sim_scenario, complaint_unwanted, "0.04", 0, 1, "Chance an answered unwanted call ends in a complaint."),
    NUM(md_sim_scenario, optout_unwanted, "0.02", 0, 1, "Chance an answered unwanted call ends in an opt-out."),
    INT(md_sim_scenario, app_per_day, "100000", 0, 100000000, "App messages the pusher sends per day at most (0: no app channel)."),
    NUM(md_sim_scenario, app_open_prob, "0.35", 0, 1, "Chance a rested customer opens an app message."),
    NUM(md_sim_scenario, app_convert_full, "0.25", 0, 1, "Chance an opened message leads to a purchase, at demand 1 (scales with demand)."),
    NUM(md_sim_scenario, app_optout_unwanted, "0.005", 0, 1, "Chance an opened unwanted message ends in an opt-out."),
    NUM(md_sim_scenario, amount_base, "8000", 0, 1e8, "Instalment amount at demand 0, yuan."),
    NUM(md_sim_scenario, amount_demand_mult, "2", 0, 100, "... grows by this factor times demand."),
    NUM(md_sim_scenario, segment_signal, "0.5", 0, 1, "How often the static segment follows the need tier (0: never, static data says nothing; 1: always)."),
};
static const md_table scenario_table = {"scenario", scenario_fields, NF(scenario_fields)};

void md_sim_scenario_destroy(md_sim_scenario *s) {
    if (!s) return;
    md_table_free(&scenario_table, s);
    free(s);
}

md_sim_scenario *md_sim_scenario_load(const char *path, char *errstr, size_t errstr_size) {
    char err[400] = "";
    md_sim_scenario *s = calloc(1, sizeof(*s));
    FILE *f = fopen(path, "rb");
    char *text = malloc(1 << 20);
    yajl_val root = NULL;
    if (!s || !text) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (!f) {
        snprintf(err, sizeof(err), "cannot open it");
        goto fail;
    }
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    text[len] = '\0';
    char perr[256];
    root = yajl_tree_parse(text, perr, sizeof(perr));
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, sizeof(err), "not a JSON object%s%s", root ? "" : ": ", root ? "" : perr);
        goto fail;
    }
    md_table_loader L = {path, errstr, errstr_size, false};
    if (!md_table_load(&L, &scenario_table, root, s, "$")) goto loaded_badly;
    double share = s->tier_share[0] + s->tier_share[1] + s->tier_share[2];
    if (fabs(share - 1) > 1e-6) {
        snprintf(err, sizeof(err), "tier_share: sums to %g, not 1", share);
        goto fail;
    }
    if (s->warmup_days >= s->days) {
        snprintf(err, sizeof(err), "warmup_days (%lld) must be less than days (%lld)", (long long)s->warmup_days, (long long)s->days);
        goto fail;
    }
    if (s->episode_days_min > s->episode_days_max) {
        snprintf(err, sizeof(err), "episode_days_min is larger than episode_days_max");
        goto fail;
    }
    yajl_tree_free(root);
    fclose(f);
    free(text);
    return s;
fail:
    snprintf(errstr, errstr_size, "%s: %s", path, err);
loaded_badly: /* the loader wrote errstr */
    if (root) yajl_tree_free(root);
    if (f) fclose(f);
    free(text);
    md_sim_scenario_destroy(s);
    return NULL;
}

/* The scenario table's row of the field at off (NULL: none). */
static const md_field *scenario_field_at(size_t off) {
    for (size_t i = 0; i < NF(scenario_fields); i++)
        if (scenario_fields[i].off == off) return &scenario_fields[i];
    return NULL;
}

bool md_sim_scenario_scale(md_sim_scenario *s, int64_t factor, char *errstr, size_t errstr_size) {
    if (factor <= 1) return true;
    static const size_t scaled[] = {offsetof(md_sim_scenario, customers), offsetof(md_sim_scenario, calls_per_day),
                                    offsetof(md_sim_scenario, app_per_day)};
    enum { N_SCALED = sizeof(scaled) / sizeof(scaled[0]) };
    for (size_t i = 0; i < N_SCALED; i++) {
        const int64_t *v = (const int64_t *)(const void *)((const char *)s + scaled[i]);
        const md_field *f = scenario_field_at(scaled[i]);
        if (f && (double)*v * (double)factor > f->hi) {
            snprintf(errstr, errstr_size, "%s %" PRId64 " times %" PRId64 " is %.0f, over its limit of %.0f (docs/SCENARIOS.md)", f->key, *v,
                     factor, (double)*v * (double)factor, f->hi);
            return false;
        }
    }
    for (size_t i = 0; i < N_SCALED; i++) *(int64_t *)(void *)((char *)s + scaled[i]) *= factor;
    return true;
}

void md_sim_scenario_print_reference(FILE *out) {
    fprintf(out, "| key | type | default | bounds | meaning |\n|---|---|---|---|---|\n");
    md_table_print_rows(&scenario_table, out, false);
}

/* ---- randomness: a hash per (seed, customer, day, purpose) ---- */

static uint64_t mix(uint64_t x) {
    /* splitmix64's finaliser */
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

double md_sim_uniform(uint64_t seed, int64_t customer, int64_t day, uint32_t purpose) {
    uint64_t h = mix(seed ^ mix((uint64_t)customer * 0x100000001B3ULL ^ mix((uint64_t)day << 20 ^ purpose)));
    return (double)(h >> 11) / 9007199254740992.0;
}

enum purpose {
    P_TIER = 1, P_SEGMENT, P_SEGMENT2, P_AGE, P_CYCLE, P_SEASON, P_EPISODE, P_EPISODE_LEN, P_VIEWS, P_LOGINS, P_CALL, P_LATE,
    P_SPEND, P_ORGANIC, P_ANSWER, P_CONVERT, P_COMPLAIN, P_OPTOUT, P_AMOUNT,
    /* new purposes go last: the numbers above must not move, or every run changes */
    P_BILL_CALL, P_BALANCE, P_OPEN, P_APP_CONVERT, P_APP_OPTOUT, P_APP_AMOUNT
};

static int poisson(double lambda, double u) {
    /* Inversion: fine for the small rates used here. */
    double p = exp(-lambda), c = p;
    int k = 0;
    while (u > c && k < 50) {
        k++;
        p *= lambda / k;
        c += p;
    }
    return k;
}

/* ---- customers ---- */

static const char *const segments_by_tier[MD_SIM_TIERS] = {"transactor", "other", "revolver"};
static const char *const segments[] = {"transactor", "other", "revolver"};
static const char *const age_bands[] = {"18-24", "25-34", "35-44", "45-64", "65+"};

void md_sim_customer_init(const md_sim_scenario *sc, uint64_t seed, int64_t i, md_sim_customer *c) {
    memset(c, 0, sizeof(*c));
    double u = md_sim_uniform(seed, i, -1, P_TIER);
    c->tier = u < sc->tier_share[0] ? 0 : u < sc->tier_share[0] + sc->tier_share[1] ? 1 : 2;
    c->segment = md_sim_uniform(seed, i, -1, P_SEGMENT) < sc->segment_signal
                     ? segments_by_tier[c->tier]
                     : segments[(int)(md_sim_uniform(seed, i, -1, P_SEGMENT2) * 3) % 3];
    c->age_band = age_bands[(int)(md_sim_uniform(seed, i, -1, P_AGE) * 5) % 5];
    c->cycle_phase = md_sim_uniform(seed, i, -1, P_CYCLE) * 30;
    c->season_phase = md_sim_uniform(seed, i, -1, P_SEASON) * 2 * M_PI;
    c->satisfied_until = -1;
    c->episode_end = -1;
}

double md_sim_demand(const md_sim_scenario *sc, uint64_t seed, int64_t i, md_sim_customer *c, int64_t day) {
    /* A new episode may start on any day none is running. */
    if (day > c->episode_end && md_sim_uniform(seed, i, day, P_EPISODE) < sc->episode_rate_per_month / 30.0) {
        double len = sc->episode_days_min + md_sim_uniform(seed, i, day, P_EPISODE_LEN) * (sc->episode_days_max - sc->episode_days_min);
        c->episode_end = day + (int64_t)len;
    }
    double d = sc->tier_base[c->tier];
    /* Highest a few days before the bill: the statement shows the amount. */
    d += sc->bill_cycle_amp * cos(2 * M_PI * (fmod((double)day - c->cycle_phase + 3, 30.0)) / 30.0);
    d += sc->season_amp * sin(2 * M_PI * (double)day / 365.0 + c->season_phase);
    if (day <= c->episode_end) d += sc->episode_lift;
    if (day <= c->satisfied_until) d *= sc->satisfied_factor;
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

void md_sim_behave(const md_sim_scenario *sc, uint64_t seed, int64_t i, const md_sim_customer *c, int64_t day, double demand,
                   md_sim_day *out) {
    memset(out, 0, sizeof(*out));
    out->views = poisson(sc->view_rate_full * demand + sc->view_rate_noise, md_sim_uniform(seed, i, day, P_VIEWS));
    out->logins = poisson(sc->login_rate, md_sim_uniform(seed, i, day, P_LOGINS));
    out->call = md_sim_uniform(seed, i, day, P_CALL) < sc->call_rate_full * demand + sc->call_rate_noise;
    out->bill = (int64_t)c->cycle_phase == day % 30;
    if (out->bill) {
        double noise = 0.7 + 0.6 * md_sim_uniform(seed, i, day, P_SPEND);
        out->bill_amount = round(sc->spend_base * (1 + sc->spend_demand_mult * demand) * noise);
        out->late = md_sim_uniform(seed, i, day, P_LATE) < sc->late_prob_base + sc->late_prob_full * demand;
        out->bill_call = md_sim_uniform(seed, i, day, P_BILL_CALL) < sc->bill_call_base + sc->bill_call_full * demand;
        out->balance_after =
            round(sc->balance_base * (1 - sc->balance_demand_drop * demand) * (0.5 + md_sim_uniform(seed, i, day, P_BALANCE)));
    }
    out->organic_buy = md_sim_organic_buy(sc, seed, i, day, demand);
}

bool md_sim_organic_buy(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand) {
    return md_sim_uniform(seed, i, day, P_ORGANIC) < sc->organic_buy_full * demand;
}

const char *md_sim_result_name(md_sim_result r) {
    static const char *const n[] = {"no_answer", "declined", "converted", "complaint", "opt_out", "not_opened", "opened"};
    return r < MD_SIM_RESULT_COUNT ? n[r] : "?";
}

/* What the contacts of the last 30 days leave of answering, opening and
 * buying: one formula for the draws and for the ceiling's expectation. */
static double tiredness(const md_sim_scenario *sc, int recent_contacts) { return pow(1 - sc->fatigue_penalty, recent_contacts); }

/* The instalment amount at a demand before its noise (0.7 + 0.6 u, which
 * averages 1). */
static double amount_before_noise(const md_sim_scenario *sc, double demand) { return sc->amount_base * (1 + sc->amount_demand_mult * demand); }

md_sim_result md_sim_call(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand, int recent_contacts,
                          double *amount) {
    double tired = tiredness(sc, recent_contacts);
    *amount = 0;
    if (md_sim_uniform(seed, i, day, P_ANSWER) >= sc->answer_prob * tired) return MD_SIM_NO_ANSWER;
    if (demand < sc->trough_demand) {
        double u = md_sim_uniform(seed, i, day, P_COMPLAIN);
        if (u < sc->complaint_unwanted) return MD_SIM_COMPLAINT;
        if (u < sc->complaint_unwanted + sc->optout_unwanted) return MD_SIM_OPT_OUT;
    }
    if (md_sim_uniform(seed, i, day, P_CONVERT) < sc->convert_full * demand * tired) {
        *amount = round(amount_before_noise(sc, demand) * (0.7 + 0.6 * md_sim_uniform(seed, i, day, P_AMOUNT)));
        return MD_SIM_CONVERTED;
    }
    return MD_SIM_DECLINED;
}

double md_sim_call_expected_amount(const md_sim_scenario *sc, double demand, int recent_contacts) {
    double tired = tiredness(sc, recent_contacts);
    /* An answered call in a trough may end in a complaint or opt-out before
     * any offer (md_sim_call): only the rest can convert. */
    double heard = demand < sc->trough_demand ? 1 - sc->complaint_unwanted - sc->optout_unwanted : 1;
    double convert = sc->convert_full * demand * tired;
    if (convert > 1) convert = 1;
    return sc->answer_prob * tired * heard * convert * amount_before_noise(sc, demand);
}

md_sim_result md_sim_push(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand, int recent_contacts,
                          double *amount) {
    double tired = tiredness(sc, recent_contacts);
    *amount = 0;
    if (md_sim_uniform(seed, i, day, P_OPEN) >= sc->app_open_prob * tired) return MD_SIM_NOT_OPENED;
    if (demand < sc->trough_demand && md_sim_uniform(seed, i, day, P_APP_OPTOUT) < sc->app_optout_unwanted) return MD_SIM_OPT_OUT;
    if (md_sim_uniform(seed, i, day, P_APP_CONVERT) < sc->app_convert_full * demand * tired) {
        *amount = round(amount_before_noise(sc, demand) * (0.7 + 0.6 * md_sim_uniform(seed, i, day, P_APP_AMOUNT)));
        return MD_SIM_CONVERTED;
    }
    return MD_SIM_OPENED;
}
