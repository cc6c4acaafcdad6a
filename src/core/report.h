/* report.h (private): the funnel and uplift report of `momentd report`.
 *
 * Pure: the caller feeds the funnel hashes it read from Redis (one per
 * campaign and day, fields "<channel or holdout>:<stage>" = count), and the
 * report adds them up and derives every rate. Rates are never stored, so
 * they can never disagree with the counts they come from. */
#ifndef MOMENTD_REPORT_H
#define MOMENTD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "logit.h"
#include "momentd/config.h"

/* The funnel stages, in funnel order; the names are the field suffixes. */
#define MD_STAGE_MAP(X)                 \
    X(TRIGGERED, "triggered")           \
    X(FOLLOW_UPS, "follow_ups")         \
    X(SENT, "sent")                     \
    X(DELIVERED, "delivered")           \
    X(REACHED, "reached")               \
    X(OPENED, "opened")                 \
    X(CONVERTED, "converted")           \
    X(DECLINED, "declined")             \
    X(NO_ANSWER, "no_answer")           \
    X(HANGUP, "hangup")                 \
    X(COMPLAINT, "complaint")           \
    X(OPT_OUT, "opt_out")               \
    X(NOT_CALLED, "not_called")         \
    X(EXPIRED, "expired")               \
    X(CONVERSIONS, "conversions")       \
    X(AMOUNT_FEN, "amount_fen")

typedef enum md_stage {
#define MD_STAGE_ENUM(name, text) MD_STAGE_##name,
    MD_STAGE_MAP(MD_STAGE_ENUM)
#undef MD_STAGE_ENUM
        MD_STAGE_COUNT
} md_stage;

const char *md_stage_name(md_stage s);

/* The day range of a report from optional "YYYY-MM-DD" bounds (NULL = default):
 * to defaults to today in the operators' calendar (utc_offset_min, at
 * now_ms), from to 29 days before to. False with errstr when a bound is not
 * a date, from is after to, or the range exceeds ten years. */
bool md_report_range(const char *from, const char *to, int utc_offset_min, int64_t now_ms, int64_t *from_day, int64_t *to_day,
                     char *errstr, size_t errstr_size);

typedef struct md_report md_report;

/* A report over cfg's campaigns and channels (plus the holdout group) for
 * the days from_day .. to_day (days since 1970-01-01, at most 3661 of them).
 * cfg must outlive it. now_ms decides which trigger days' conversion labels
 * are final (the attribution window closed) for model quality. NULL on OOM
 * or a bad range. */
md_report *md_report_new(const md_config *cfg, int64_t from_day, int64_t to_day, int64_t now_ms);
void md_report_destroy(md_report *r); /* accepts NULL */

/* Adds one field of campaign's funnel hash of day (0 = from, up to the
 * number of days - 1). Fields of unknown channels or stages are counted in
 * md_report_ignored (a newer or older configuration wrote them) rather than
 * guessed at. */
void md_report_add(md_report *r, int campaign, int day, const char *field, const char *value);
/* Days in the report; "YYYY-MM-DD" of day i. */
int md_report_days(const md_report *r);
const char *md_report_day(const md_report *r, int day);
/* Per day and campaign: treated (every channel) or holdout triggers and conversions. */
int64_t md_report_day_count(const md_report *r, int campaign, int day, bool holdout, md_stage stage);
uint64_t md_report_ignored(const md_report *r);

/* The count of a stage for a campaign and a channel (cfg's index, or
 * n_channels for the holdout group). */
int64_t md_report_count(const md_report *r, int campaign, int channel, md_stage stage);

/* Treated (every channel) against holdout: conversions observed in the
 * event stream per trigger, their difference in percentage points and its
 * 95% confidence interval (normal approximation). has_uplift is false while
 * either group has no trigger. */
typedef struct md_uplift {
    int64_t treated_triggers, treated_conversions, holdout_triggers, holdout_conversions;
    double treated_rate, holdout_rate;
    bool has_uplift;
    double uplift_pp, ci_low_pp, ci_high_pp;
} md_uplift;
void md_report_uplift(const md_report *r, int campaign, md_uplift *out);

/* A policy arm's count of a stage (arm: index into the campaign's arms). */
int64_t md_report_arm_count(const md_report *r, int campaign, int arm, md_stage stage);

/* A policy arm's conversions per contact with its 95% interval, and for
 * every arm after the first its difference from the first (the arm in
 * place, by convention the running policy) in percentage points with the
 * interval (normal approximation). */
typedef struct md_arm_comparison {
    bool has_rate;
    double rate, rate_low, rate_high;
    bool has_difference;
    double difference_pp, low_pp, high_pp;
} md_arm_comparison;
void md_report_arm_vs_first(const md_report *r, int campaign, int arm, md_arm_comparison *out);

/* The timing table: a campaign's contacts by days since its previous
 * contact with the customer (md_gap_bucket; fields "gap.<bucket>:<stage>"
 * and "gap.<bucket>:released", a model's real contacts only), and what
 * followed: contacts = moments less those the channel reported not_called
 * or expired (released); outcomes as reported for the decision's own
 * moment; conversions (seen in the event stream within the attribution
 * window, credited to the latest model decision as model quality does, and
 * taken back when that contact is released) per contact with a 95% Wilson
 * interval. It shows what a repeat contact after a given gap is worth
 * against a first one: the evidence for cooldown.recovery and its days. */
typedef struct md_gap_row {
    int64_t moments, not_made, contacts, reached, no_answer, complaints, conversions;
    bool has_rate;
    double rate, rate_low, rate_high;
} md_gap_row;
void md_report_gap(const md_report *r, int campaign, int bucket, md_gap_row *out);

/* Model quality from live outcomes: every model version that decided in the
 * range (fields "q.<treated|holdout>.<p>.<version>:<triggered|conversions>",
 * p the moment's p_contact in thousandths, 000-999), measured on the decisions
 * whose attribution window has closed by now_ms. Calibration counts deciles
 * of at least learning.calibration_min decisions. */
#define MD_REPORT_P_BINS 1000 /* p in thousandths (1.000 counts as 0.999) */
#define MD_REPORT_MAX_MODELS 32 /* versions per report; fields of more are ignored */
typedef struct md_model_report {
    int campaign;
    const char *version;   /* owned by the report */
    bool current;          /* the running configuration's version of the campaign */
    md_model_quality q;    /* the treated decisions with final labels */
    int64_t pending;       /* treated decisions whose window is still open (not in q) */
    int64_t holdout_decisions, holdout_conversions;
    int64_t holdout_n[MD_QUALITY_BINS], holdout_conv[MD_QUALITY_BINS]; /* by the treated deciles' p */
    char final_through[16]; /* the last trigger day of the range with final labels; "" none */
    bool drifting;          /* calibration error above learning.calibration_bound */
} md_model_report;
size_t md_report_n_models(const md_report *r);
void md_report_model(const md_report *r, size_t i, md_model_report *out);
/* The model report of campaign's version; false when it decided nothing in the range. */
bool md_report_model_of(const md_report *r, int campaign, const char *version, md_model_report *out);

/* When each campaign was paused by an operator (since_ms[c], 0 = running;
 * md_store_paused), shown with its priority and dates. */
void md_report_set_paused(md_report *r, const int64_t *since_ms);

void md_report_print_text(const md_report *r, FILE *out);
void md_report_print_json(const md_report *r, FILE *out);

#endif
