/* batch.h (private): the one batch runner: read, decide, apply, deliver, forget.
 *
 * Every command that changes state goes through this code: `momentd run`
 * (Kafka in, Kafka out), `simulate` (simulated days in, a simulated call
 * centre out), `backtest` (recorded events in, a tally out) and
 * `load-profiles` (profile lines in, nothing out). They differ only in their
 * source, which adds input, and their sink, which takes the outbox; the
 * rules of a batch are written once, here. One batch, in this order:
 *
 *   1. read every customer of the batch (one pipelined HGETALL each) and the
 *      contact point its profile names;
 *   2. decide in input order (per customer, that is partition order) in the
 *      pure engine, recording each customer's field operations;
 *   3. apply each customer's operations with one EVALSHA that writes only if
 *      the customer's version is still the one read and puts its triggers
 *      into its outbox in the same step, in slices sent while later
 *      customers are still being decided. A version conflict (another writer
 *      got there first) re-reads and decides the batch again;
 *   4. hand every outbox entry of the batch's customers to the sink, which
 *      returns once they are delivered;
 *   5. add the pending funnel increments, then forget the outbox.
 *
 * A failure before 5 leaves the batch to be redone as a whole: watermarks
 * make re-applied input a no-op, and outbox entries are delivered again
 * under the same trigger id. The runner itself never sleeps and never
 * decides to wait: it asks the caller's retry hook, which branches on the
 * md_err (md_err_is_retriable) and its own stop flag. */
#ifndef MOMENTD_BATCH_H
#define MOMENTD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/config.h"
#include "momentd/engine.h"
#include "momentd/event.h"
#include "status.h"
#include "store.h"

typedef struct md_batch md_batch;

/* Which clock decisions are made at. */
typedef enum md_batch_clock {
    /* The caller's wall clock, given to md_batch_run and written into
     * triggers as emitted_at; events from the future are refused against
     * the time given to md_batch_add_message (`run`). */
    MD_BATCH_CLOCK_WALL,
    /* Each input's own time: a trigger is emitted at the time of the event
     * or outcome that caused it, and no input is from the future (replays
     * and simulations, which run faster than time). */
    MD_BATCH_CLOCK_INPUT
} md_batch_clock;

/* One outbox entry handed to the sink. Every pointer is valid only during
 * the deliver call. campaign and channel are read from the moment itself
 * (md_moment_route: indices into the configuration, -1 when unknown). */
typedef struct md_delivery {
    const char *customer_id;
    const char *trigger_id;
    const char *topic;
    const char *payload;
    size_t len;
    int campaign;
    int channel;
    bool holdout;
} md_delivery;

typedef struct md_batch_hooks {
    /* The sink: delivers the n outbox entries of a batch (n may be 0) and
     * returns MD_ERR_OK once every one is acknowledged, or an error when it
     * gave up (the batch is then not done). Required. */
    md_err (*deliver)(void *ctx, const md_delivery *d, size_t n, char *errstr, size_t errstr_size);
    /* Asked after a failure the batch could be retried from (what: "read",
     * "apply", "funnel" or "forget"; e and errstr say why): true to retry
     * (after waiting as the caller sees fit), false to give up, and
     * md_batch_run then returns e. NULL: never retry. */
    bool (*retry)(void *ctx, md_err e, const char *what, const char *errstr);
    /* Called once per input of a customer whose key Redis refused
     * (MD_ERR_REDIS_REFUSED: WRONGTYPE, CROSSSLOT, a script's error), with
     * the input's source and Redis's reason, before the sink's deliver of
     * the same run: the input was not applied and the caller sets it aside
     * (a dead letter). Inputs without a source are only counted. NULL:
     * only counted and logged. */
    void (*refuse)(void *ctx, const md_source *src, const char *customer_id, const char *why);
    /* With cfg->audit.topic set, also hand deliver one record per decision
     * (campaign -1, trigger_id "": docs/schemas/decision.schema.json) after
     * the batch's moments. For the daemon; the simulator and the backtest
     * count moments only. */
    bool decisions;
    void *ctx;
} md_batch_hooks;

/* A batch of at most capacity inputs over cfg and store, both borrowed and
 * required to outlive the batch. hooks is copied. counters (borrowed, may be
 * NULL) is where the batch counts what it saw and decided; latency (borrowed,
 * MD_LAT_COUNT histograms, may be NULL) gets the Redis read and apply times.
 * NULL on OOM. */
md_batch *md_batch_new(const md_config *cfg, md_store *store, size_t capacity, md_batch_clock clock, const md_batch_hooks *hooks,
                       md_counters *counters, md_hist *latency);
void md_batch_destroy(md_batch *b); /* accepts NULL */

/* Inputs queued and distinct customers among them. */
size_t md_batch_len(const md_batch *b);
size_t md_batch_customers(const md_batch *b);
bool md_batch_full(const md_batch *b);

/* Adding input; each is copied. src (NULL: no offset watermark, for
 * simulated and file input) is copied but src->topic is borrowed and must
 * stay valid until md_batch_run or md_batch_clear returns. MD_ERR_OVERFLOW
 * when the batch is full, MD_ERR_NOMEM. */
md_err md_batch_add_event(md_batch *b, const md_event *ev, const md_source *src);
md_err md_batch_add_outcome(md_batch *b, const md_outcome *oc, const md_source *src);
/* json NULL is a tombstone (deletes the profile); it is checked as
 * md_profile_check does and refused with MD_ERR_BAD_EVENT and errstr. */
md_err md_batch_add_profile(md_batch *b, const char *customer_id, const char *json, const md_source *src, char *errstr,
                            size_t errstr_size);

/* The schedule: adds the customers due by until_ms (at most as many as the
 * batch has room for), each decided at md_batch_run without an event
 * (md_engine_due); *added says how many. */
md_err md_batch_add_due(md_batch *b, int64_t until_ms, size_t *added, char *errstr, size_t errstr_size);

/* One raw message of an input topic, as a source received it. */
typedef struct md_message {
    const char *topic; /* borrowed as src->topic above */
    int32_t partition;
    int64_t offset;    /* -1: no watermark */
    const void *key;   /* NULL: no key to check it against (file input); a
                        * Kafka message without a key has "" */
    size_t key_len;
    const void *payload; /* NULL: a tombstone */
    size_t len;
} md_message;

/* Parses a message by its topic (events, outcomes or profiles of the
 * configuration) and adds it. MD_ERR_OK when added; MD_ERR_BAD_EVENT when it
 * must be dead-lettered, with *reason (a static code: "not_json",
 * "bad_profile", ...) and detail set, counted in the counters. now_ms is the
 * wall clock that future-skew is judged against (not checked with
 * MD_BATCH_CLOCK_INPUT). */
md_err md_batch_add_message(md_batch *b, const md_message *m, int64_t now_ms, const char **reason, char *detail, size_t detail_size);

/* Runs the batch (steps 1-5 above) and empties it. now_ms is the decision
 * time with MD_BATCH_CLOCK_WALL (ignored with INPUT). MD_ERR_OK when every
 * step is done; otherwise the first error the retry hook gave up on, with
 * errstr, and the batch's effects may be partly applied (redo it). */
md_err md_batch_run(md_batch *b, int64_t now_ms, char *errstr, size_t errstr_size);

/* For sources that run faster than time (MD_BATCH_CLOCK_INPUT): runs the
 * batch when it is full, so that the next input fits. MD_ERR_OK or
 * md_batch_run's error. */
md_err md_batch_make_room(md_batch *b, char *errstr, size_t errstr_size);

/* Empties the batch without running it. */
void md_batch_clear(md_batch *b);

/* The newest event time any run of this batch decided (0: none): where a
 * replay's history ends. */
int64_t md_batch_newest_event(const md_batch *b);

/* Campaigns an operator paused (bit c: campaign c of the batch's
 * configuration; md_store_paused), applied from the next run on. */
void md_batch_set_paused(md_batch *b, uint32_t paused_campaigns);

#endif
