/* simulate.h (private): `momentd simulate`, three contact policies compared
 * on one simulated population (see simulate.c and sim_world.h). */
#ifndef MOMENTD_SIMULATE_H
#define MOMENTD_SIMULATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct md_simulate_opts {
    const char *scenario;  /* scenario file */
    uint64_t seed;
    bool json;             /* the table as JSON on stdout */
    const char *plot_dir;  /* NULL, or where to write PNG charts (gnuplot) */
    const char *trace;     /* NULL, or a TSV of every call: policy, day, customer, demand, result, amount */
    const char *redis_url; /* the Redis the engine policies use (their own key prefix, wiped after) */
    bool progress;         /* a line on stderr per policy */
    int64_t fit_after_days; /* > 0: each engine policy fits its model on its own decisions of the days before
                             * this one and runs the rest with the fitted model (momentd fit in-process) */
    int64_t ceiling_gap_days; /* > 0: run only the ceiling policy (it knows the hidden demand) with this gap */
    double ceiling_bar;       /* ... calling no one worth less than this many yuan a call on average */
    double fit_l2;            /* --fit-after's fit: momentd fit's --l2 (> 0) */
    bool fit_prior_hand;      /* ... and its --prior hand */
    /* The scenario's population and call centre K times over (customers,
     * calls_per_day, app_per_day): the same world with K times the
     * decisions, so that a measure's noise shrinks by the square root of
     * K. 1 (or 0): as the file says. */
    int population_factor;
    int64_t refit_every_days; /* > 0 (with fit_after_days): fitted again every this many days after the first fit, on
                               * every decision recorded by then, each fit pulled towards the model in use */
    bool keep_state;          /* leave each engine policy's Redis state in place at the end (its key prefix on stderr) */
} md_simulate_opts;

#define MD_SIM_MAX_POPULATION_FACTOR 100

/* Returns a process exit code: 0, 1 runtime failure, 2 bad scenario or configuration. */
int md_simulate(const md_simulate_opts *o);

#endif
