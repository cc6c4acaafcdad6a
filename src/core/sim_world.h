/* sim_world.h (private): the simulated customers and call centre behind
 * `momentd simulate`.
 *
 * This is deliberately separate code from the engine, with its own
 * parameters (the scenario file): each customer has a hidden demand in
 * [0, 1] that the engine never sees; the world turns it into events that
 * reflect it only imperfectly, and decides what happens when a customer is
 * called. Nothing here reads the engine's configuration, and nothing in the
 * engine's configuration is fitted to a scenario.
 *
 * Every random draw is a hash of (seed, customer, day, purpose), not a step
 * of a shared generator: the same customer on the same day draws the same
 * numbers whichever policy runs, so policies are compared on the same
 * population, the same needs and the same luck ("common random numbers"),
 * and a run is deterministic for a seed. */
#ifndef MOMENTD_SIM_WORLD_H
#define MOMENTD_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MD_SIM_TIERS 3

typedef struct md_sim_scenario {
    char *name;
    char *description;
    char *engine_fixed;    /* momentd configuration for the fixed-cooldown policy */
    char *engine_adaptive; /* ... and for the adaptive one; the two should differ only in the cooldown */
    int64_t customers;
    int64_t days;
    int64_t warmup_days;   /* events, no contacts: windows fill before calling starts */
    int64_t calls_per_day; /* the call centre's capacity */
    int64_t old_gap_days;  /* the old rule's cooling-off (45) */
    /* hidden demand */
    double tier_share[MD_SIM_TIERS];
    double tier_base[MD_SIM_TIERS];
    double bill_cycle_amp, season_amp, episode_rate_per_month, episode_days_min, episode_days_max, episode_lift;
    double satisfied_days, satisfied_factor; /* after a purchase, demand is this much lower for that long */
    /* behaviour: what the events show of demand */
    double view_rate_full, view_rate_noise, call_rate_full, call_rate_noise, login_rate;
    double spend_base, spend_demand_mult, late_prob_base, late_prob_full, organic_buy_full;
    double bill_call_base, bill_call_full, balance_base, balance_demand_drop;
    /* the contact world */
    double answer_prob, fatigue_penalty, convert_full, trough_demand, complaint_unwanted, optout_unwanted;
    /* the app-message channel */
    int64_t app_per_day;
    double app_open_prob, app_convert_full, app_optout_unwanted;
    double amount_base, amount_demand_mult;
    /* static attributes: how well a customer's segment predicts demand */
    double segment_signal;
} md_sim_scenario;

/* Loads a scenario file (JSON; unknown keys are errors). NULL with errstr set
 * on error. Free with md_sim_scenario_destroy. */
md_sim_scenario *md_sim_scenario_load(const char *path, char *errstr, size_t errstr_size);
void md_sim_scenario_destroy(md_sim_scenario *s);
/* The same world factor times as large: customers, calls_per_day and
 * app_per_day multiplied (simulate --population-factor). False, s
 * unchanged and errstr set, when one would pass the scenario's limit. */
bool md_sim_scenario_scale(md_sim_scenario *s, int64_t factor, char *errstr, size_t errstr_size);
/* The scenario reference (every key, default, bounds), for the docs. */
void md_sim_scenario_print_reference(FILE *out);

/* A uniform draw in [0, 1) for (seed, customer, day, purpose). */
double md_sim_uniform(uint64_t seed, int64_t customer, int64_t day, uint32_t purpose);

/* One customer's fixed traits. */
typedef struct md_sim_customer {
    int tier;               /* 0 low, 1 mid, 2 high need on average */
    const char *segment;    /* static attribute the old list ranks by: revolver, transactor, ... */
    const char *age_band;
    double cycle_phase;     /* day of the month the bill falls due */
    double season_phase;
    int64_t satisfied_until; /* day; demand is low until then (after a purchase) */
    int64_t episode_end;     /* day; a need episode lasts until then */
} md_sim_customer;

void md_sim_customer_init(const md_sim_scenario *sc, uint64_t seed, int64_t i, md_sim_customer *c);

/* Hidden demand of customer i on day d (advances its episode state: call
 * once per customer per day, in day order). */
double md_sim_demand(const md_sim_scenario *sc, uint64_t seed, int64_t i, md_sim_customer *c, int64_t day);

/* The day's behaviour. */
typedef struct md_sim_day {
    int views;        /* app logins that view the instalment page */
    int logins;       /* other app logins */
    bool call;        /* an inbound instalment inquiry */
    bool bill_call;   /* an inbound bill inquiry (on a bill day) */
    double balance_after; /* the account balance after the bill payment */
    bool bill;        /* the monthly bill is paid today */
    double bill_amount;
    bool late;
    bool organic_buy; /* the customer buys by itself, uncontacted */
} md_sim_day;
void md_sim_behave(const md_sim_scenario *sc, uint64_t seed, int64_t i, const md_sim_customer *c, int64_t day, double demand,
                   md_sim_day *out);

/* Whether customer i buys by itself today (uncontacted). */
bool md_sim_organic_buy(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand);

/* A contact and what became of it: a call is answered or not; an app
 * message is opened or not. */
typedef enum md_sim_result {
    MD_SIM_NO_ANSWER,
    MD_SIM_DECLINED,
    MD_SIM_CONVERTED,
    MD_SIM_COMPLAINT,
    MD_SIM_OPT_OUT,
    MD_SIM_NOT_OPENED, /* app messages only */
    MD_SIM_OPENED,     /* opened, no purchase */
    MD_SIM_RESULT_COUNT
} md_sim_result;
const char *md_sim_result_name(md_sim_result r);

/* recent_contacts: calls in the 30 days before. Returns the result; the
 * amount (yuan) when converted. */
md_sim_result md_sim_call(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand, int recent_contacts,
                          double *amount);

/* What a call to customer i today is worth on average (yuan): the chance it
 * is answered and converts, times the mean amount, as md_sim_call draws
 * them. Only the world knows it (it reads the hidden demand): the
 * simulator's ceiling policy ranks by it. */
double md_sim_call_expected_amount(const md_sim_scenario *sc, double demand, int recent_contacts);

/* An app message (in-app push): NOT_OPENED, OPENED, CONVERTED or OPT_OUT.
 * Cheaper and less intrusive than a call: no complaints, a smaller chance
 * of buying. recent_contacts counts calls and messages alike. */
md_sim_result md_sim_push(const md_sim_scenario *sc, uint64_t seed, int64_t i, int64_t day, double demand, int recent_contacts,
                          double *amount);

#endif
