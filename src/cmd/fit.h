/* fit.h (private): `momentd fit`, a campaign's model fitted to the decisions
 * momentd recorded and what followed them (fit.c), and the pieces the
 * simulator's --fit-after loop uses in-process. */
#ifndef MOMENTD_CMD_FIT_H
#define MOMENTD_CMD_FIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "logit.h"
#include "momentd/engine.h"
#include "momentd/jsonw.h"
#include "momentd/config.h"
#include "store.h"

/* The decisions of one campaign, gathered from Redis or a trace; kept in
 * the order of customer, then time, whatever order they were read in, so
 * that what is measured of them does not depend on Redis's scan. */
typedef struct md_fit_set md_fit_set;

md_fit_set *md_fit_set_new(const md_config *cfg, int campaign);
void md_fit_set_destroy(md_fit_set *fs);
/* Every decision record of the campaign in the store's namespace. */
md_err md_fit_set_from_store(md_fit_set *fs, md_store *store, char *err, size_t errsz);
/* Trace lines "<customer_id>\t<field>\t<value>" (what --trace-out writes);
 * false with the line number in err on a malformed line. */
bool md_fit_set_from_trace(md_fit_set *fs, FILE *in, char *err, size_t errsz);
bool md_fit_set_write_trace(const md_fit_set *fs, FILE *out);

/* A model of the campaign's form: an intercept and one coefficient per
 * column, the columns being each feature (capped and transformed as the
 * model says), then each listed level of each static attribute, in the
 * configuration's order. */
typedef struct md_fit_model {
    double intercept;
    double beta[MD_FIT_MAX_D];
} md_fit_model;

typedef struct md_fit_outcome {
    /* what was read */
    size_t decisions, other_schema, unlabelled, too_old, contaminated;
    /* Of the labelled decisions, those sent to a channel that never made
     * them (not_called, expired): released ones. More of them than
     * contacted ones means the channel chose whom to call (its capacity),
     * and the contacted decisions are its choice (md_fit_channel_chose). */
    size_t released;
    size_t treated, control; /* the training sets: contacted; holdout, sampled and released ones not contacted after */
    int64_t as_of_ms;        /* labels are final for decisions made attribution before this */
    /* the fits */
    md_fit_model hand, fitted, control_model;
    bool control_ok;
    /* out-of-sample quality on the treated decisions of a fifth of the customers (a stable hash), both models fitted
     * on the rest */
    md_model_quality hand_quality, fitted_quality;
    /* uplift by decile of the fitted p: treated and control rates */
    double uplift_treated[MD_QUALITY_BINS], uplift_control[MD_QUALITY_BINS];
    size_t uplift_n_treated[MD_QUALITY_BINS], uplift_n_control[MD_QUALITY_BINS];
    /* the threshold that keeps the share of decisions above it */
    double threshold, rearm_below;
    size_t threshold_basis; /* decisions of the sampled customers it was set on; 0 = kept */
    char version[96];
} md_fit_outcome;

typedef struct md_fit_params {
    int64_t since_ms; /* only decisions made at or after this; 0 = all */
    int64_t as_of_ms; /* 0: the newest decision's time */
    double l2;
    /* The penalty pulls the contacted model's weights towards the
     * campaign's model in use (false: towards 0): what the outcomes do not
     * show stays as it was. The not-contacted model's go towards 0. */
    bool prior_hand;
} md_fit_params;

bool md_fit_run(md_fit_set *fs, const md_fit_params *pp, md_fit_outcome *out, char *err, size_t errsz);

/* Whether the channels made fewer than half of the moments sent to them
 * (released > contacted; the released ones counted as far as the bound kept
 * their records, so a lower bound): the contacted decisions are then the
 * channel's choice (the top of its ranking by priority), not the model's,
 * and the fit sees only the part of the ranking the channel reached. */
bool md_fit_channel_chose(const md_fit_outcome *o);
/* How many decisions fs holds: room enough for md_fit_predict's arrays. */
size_t md_fit_set_size(const md_fit_set *fs);
/* Writes model m's p and the label (0 or 1) of each contacted decision made
 * in [from_ms, to_ms) whose label is final by as_of_ms to p[k] and y[k];
 * returns how many. Several models' periods pooled this way measure each
 * decision by the model that made it (the simulator's evaluation of
 * --fit-after and --refit-every). */
size_t md_fit_predict(const md_fit_set *fs, const md_fit_model *m, int64_t from_ms, int64_t to_ms, int64_t as_of_ms, double *p, double *y);

/* Writes config_path's configuration with the campaign's model, threshold and
 * re-arm level replaced by the fitted ones (everything else byte-for-byte
 * the same values) to out_path ("-" = stdout). With arm (not NULL), the
 * campaign keeps its model and the policy arm of that name gets the fitted
 * one, with its threshold and re-arm level, in place of any it had; an arm
 * the campaign does not have is an error, and nothing is written. */
bool md_fit_write_candidate(const char *config_path, const md_config *cfg, int campaign, const char *arm, const md_fit_outcome *o,
                            const char *out_path, char *err, size_t errsz);

/* What md_fit_run found with the parameters pp, as text or JSON. */
void md_fit_print(const md_config *cfg, int campaign, const md_fit_params *pp, const md_fit_outcome *o, bool json, FILE *out);
/* The penalty a fit used, as JSON under "penalty": {"l2": ..., "towards":
 * "hand" | "zero"} (momentd fit --json and simulate --fit-after --json). */
void md_fit_json_penalty(md_jsonw *w, double l2, bool prior_hand);
/* A model quality as JSON under key: counts, AUC, Brier, log loss, the
 * largest calibration error, the deciles judged and the reliability curve. */
void md_fit_json_quality(md_jsonw *w, const char *key, const md_model_quality *q);

typedef struct md_fit_opts {
    const char *config, *campaign, *trace_in, *trace_out, *out, *since, *redis_url;
    const char *arm; /* --arm: the policy arm that gets the candidate (NULL: the campaign) */
    bool from_redis, json;
    double l2;
    bool prior_hand; /* --prior hand */
} md_fit_opts;

/* `momentd fit`: exit 0, 1 runtime failure, 2 usage, configuration or data error. */
int md_fit(const md_fit_opts *o);

#endif
