/* status.h (private): what the daemon publishes for the HTTP endpoint.
 *
 * The daemon counts in its own thread without locks and, once per batch,
 * copies its counters into the shared md_status under a mutex; the HTTP
 * thread copies them out the same way. A scrape therefore sees one batch's
 * consistent totals, never a half-updated set. */
#ifndef MOMENTD_STATUS_H
#define MOMENTD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "momentd/engine.h"
#include "momentd/event.h"

#include "hash_cache.h"

#define MD_STATUS_MAX_CHANNELS 16
#define MD_STATUS_MAX_PARTITIONS 256 /* lag is reported for at most this many assigned partitions */

struct md_config;

/* A latency histogram with Prometheus' cumulative-bucket semantics kept
 * implicit: counts[i] is the number of observations in (bound[i-1],
 * bound[i]], the last one above every bound (+Inf). */
#define MD_HIST_BOUNDS 13
extern const double md_hist_bounds_s[MD_HIST_BOUNDS];
typedef struct md_hist {
    uint64_t counts[MD_HIST_BOUNDS + 1];
    uint64_t count;
    double sum_s;
} md_hist;
void md_hist_observe(md_hist *h, double seconds);

/* What is timed: Redis reads of a batch's customers, the conditional
 * applies, waiting for Kafka to acknowledge a batch's outputs, and a whole
 * batch from its first message in hand to its commit. */
#define MD_LATENCY_MAP(X)                                                          \
    X(REDIS_READ, "momentd_redis_read_seconds", "Pipelined reads of one batch's customers and contact points.") \
    X(REDIS_APPLY, "momentd_redis_apply_seconds", "One batch's conditional apply scripts (EVALSHA, pipelined).") \
    X(KAFKA_ACK, "momentd_kafka_ack_seconds", "Producing one batch's triggers and dead letters until Kafka acknowledged all.") \
    X(BATCH, "momentd_batch_seconds", "One batch from its messages in hand to its offsets committed.")
#define MD_LATENCY_ENUM(id, name, help) MD_LAT_##id,
typedef enum md_latency { MD_LATENCY_MAP(MD_LATENCY_ENUM) MD_LAT_COUNT } md_latency;

typedef struct md_partition_lag {
    char topic[128];
    int32_t partition;
    int64_t lag; /* high watermark - this consumer's position; -1 = not known yet */
} md_partition_lag;

/* Every scalar counter, once: its field, its name in the stats log line, its
 * Prometheus metric (NULL: /metrics shows it in a labelled family of its
 * own, written in http.c), and the metric's help. This list makes the
 * struct, the plain counters of /metrics and the stats line. */
#define MD_COUNTER_MAP(X)                                                                                                        \
    X(consumed, "consumed", "momentd_messages_consumed_total", "Kafka messages consumed (events, profiles, outcomes).")          \
    X(accepted, "accepted", NULL, "Events that parsed and validated.")                                                          \
    X(dead_lettered, "dead_lettered", NULL, "Messages sent to the dead-letter topic.")                                           \
    X(dead_letters_dropped, "dead_letters_dropped", "momentd_dead_letters_dropped_total",                                     \
      "Bad messages skipped without a dead letter: limits.dead_letters_per_second was exceeded.")                              \
    X(profile_rejects, "profile_rejects", "momentd_profile_dead_letters_total",                                                 \
      "Profile messages sent to the dead-letter topic (bad key, size or JSON).")                                                \
    X(duplicates, "duplicates", "momentd_duplicates_total", "Events recognised as redeliveries or re-publications.")             \
    X(dedupe_evictions, "dedupe_evictions", "momentd_dedupe_evictions_total",                                                 \
      "Event ids the re-publication guard forgot for room (a customer with over 256 events in the horizon).")                 \
    X(too_late, "too_late", "momentd_too_late_total", "Events older than limits.max_lateness behind the customer's newest.")     \
    X(align_gave_up, "align_gave_up", "momentd_align_gave_up_total",                                                          \
      "Times the event-time alignment stopped waiting for a partition that had nothing fetched (kafka.align_wait) and read the others without it.") \
    X(backlog_held, "backlog_held", "momentd_backlog_held_total",                                                            \
      "Times a partition with a backlog waited its turn (kafka.backlog_time_share) while another partition was receiving.")    \
    X(forgotten, "forgotten", "momentd_forgotten_total", \
      "Events and profiles of customers erased by momentd forget, ignored (a replay must not bring them back).") \
    X(profiles, "profiles", "momentd_profiles_total", "Profile updates applied.")                                                 \
    X(triggers, "triggers", NULL, "Marketing moments produced.")                                                                \
    X(holdouts, "holdouts", "momentd_holdout_decisions_total", "Triggers recorded for holdout customers (never sent).")          \
    X(scheduled, "scheduled", "momentd_scheduled_moments_total",                                                                \
      "Customers the schedule fired a moment for when a cooldown, quiet hours, a blackout or a cap ended (also in momentd_triggers_total).") \
    X(stale, "stale", "momentd_stale_decisions_total",                                                                          \
      "Decisions to contact whose moment had expired before it could be emitted (a replay, a backfill, lag): not emitted, no contact recorded.") \
    X(held, "held", "momentd_held_for_capacity_total",                                                                          \
      "Decisions to contact held because their channel had no capacity left in its slot (channels[].capacity); each comes back when the slot ends.") \
    X(outcomes, "outcomes", NULL, "Outcomes applied.")                                                                          \
    X(outcome_duplicates, "outcome_duplicates", NULL, "Outcomes already reported.")                                             \
    X(outcomes_unknown, "outcomes_unknown_trigger", NULL, "Outcomes for a trigger momentd did not emit.")                       \
    X(follow_ups, "follow_ups", "momentd_follow_ups_total", "Follow-up moments chained on outcomes (also in momentd_triggers_total).") \
    X(conversions, "conversions", "momentd_conversions_total", "Conversions observed in the event stream and attributed to a trigger.") \
    X(batches, "batches", "momentd_batches_total", "Batches committed.")                                                        \
    X(redis_retries, "redis_retries", "momentd_redis_retries_total", "Redis calls retried after a failure.")                     \
    X(redis_redirects, "redis_redirects", "momentd_redis_redirects_total",                                                      \
      "Commands a Redis Cluster redirected (MOVED, ASK: a slot moved or moving) and momentd sent again to the slot's new node.")  \
    X(refused, "refused", "momentd_redis_refused_total",                                                                        \
      "Inputs set aside (dead-lettered as redis_refused) because Redis refused their customer's key (WRONGTYPE, CROSSSLOT, a script error).") \
    X(conflicts, "conflicts", "momentd_conflicts_total", "Batches re-decided because another consumer changed a customer meanwhile.") \
    X(delivery_errors, "delivery_errors", "momentd_delivery_errors_total", "Kafka delivery reports with an error (each is produced again).") \
    X(rebalances, "rebalances", "momentd_rebalances_total", "Consumer group rebalances seen (assignments and revocations).")    \
    X(reloads, "reloads", NULL, "Configuration reloads applied.")                                                              \
    X(reload_failures, "reload_failures", NULL, "Configuration reloads refused.")

typedef struct md_counters {
#define MD_COUNTER_FIELD(field, stat, metric, help) uint64_t field;
    MD_COUNTER_MAP(MD_COUNTER_FIELD)
#undef MD_COUNTER_FIELD
    uint64_t accepted_by_type[MD_EVENT_TYPE_COUNT];
    uint64_t rejects[MD_REJECT_COUNT];
    uint64_t suppressed[MD_SUPPRESS_COUNT];
    uint64_t fired[MD_MAX_CAMPAIGNS][MD_STATUS_MAX_CHANNELS]; /* by campaign and channel, holdout excluded */
} md_counters;

/* A running model measured on live outcomes (learning.drift_check_every). */
typedef struct md_model_status {
    bool measured;            /* false until the first check since the start or a reload */
    int64_t decisions;        /* treated decisions of the last 30 days with final labels */
    double calibration_error; /* NaN: no decile had learning.calibration_min decisions */
    bool drifting;
} md_model_status;

typedef struct md_status_snapshot {
    md_counters n;
    bool redis_ok;           /* the last Redis call succeeded */
    int assigned_partitions; /* partitions this consumer owns now */
    int64_t started_ms;
    int64_t last_batch_ms;   /* wall clock of the last committed batch; 0 = none yet */
    int64_t config_loaded_ms; /* when the running configuration was loaded */
    int64_t outbox_pending;  /* outputs of the batch in hand not yet acknowledged by Kafka */
    int64_t max_lag;         /* largest known lag over the assigned partitions; -1 = none known */
    int64_t redis_used_memory, redis_maxmemory; /* INFO memory, read every few seconds; -1 = not known yet */
    md_hash_cache_stats state_cache; /* the store's state cache (every few seconds): hits are customers read from it */
    int64_t resident_bytes, peak_resident_bytes; /* this process's VmRSS and VmHWM (/proc/self/status, every few seconds); -1 = not known */
    md_model_status models[MD_MAX_CAMPAIGNS]; /* by the running configuration's campaign index */
    uint32_t paused_campaigns;                /* bit c: campaign c paused by an operator */
    md_hist latency[MD_LAT_COUNT];
    md_partition_lag lag[MD_STATUS_MAX_PARTITIONS];
    int n_lag;
} md_status_snapshot;

typedef struct md_status md_status;

/* cfg is borrowed: the running configuration, which the HTTP thread reads
 * between md_status_config_acquire and _release (a read lock). */
md_status *md_status_new(const struct md_config *cfg); /* NULL on OOM */
void md_status_destroy(md_status *st); /* accepts NULL */
void md_status_publish(md_status *st, const md_status_snapshot *snap);
void md_status_read(md_status *st, md_status_snapshot *out);

/* The running configuration for a reader; valid until the matching release. */
const struct md_config *md_status_config_acquire(md_status *st);
void md_status_config_release(md_status *st);
/* Replaces the running configuration once no reader holds it (a reload);
 * the caller may free the previous one when this returns. */
void md_status_config_swap(md_status *st, const struct md_config *cfg);

#endif
