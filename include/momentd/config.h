/* config.h: momentd's configuration, loaded from one JSON file.
 *
 * Every key is declared once, in the tables of config.c (name, type, default,
 * bounds, description); the loader walks those tables, rejects unknown keys,
 * and `momentd config-doc` prints the same tables as the reference in
 * docs/CONFIG.md, so the two cannot drift. After the structural pass the
 * rules (signals, windows, tags, models, campaigns) are compiled and
 * cross-checked (see rules.h); a configuration that loads is one the engine
 * can run.
 *
 * A loaded md_config is immutable plain data; it is freed with
 * md_config_destroy and nothing in it may be freed separately. */
#ifndef MOMENTD_CONFIG_H
#define MOMENTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "momentd/error.h"

typedef struct md_kv {
    char *key;
    char *value;
} md_kv;

typedef struct md_knum {
    char *key;
    double value;
} md_knum;

typedef struct md_cfg_kafka {
    char *brokers;
    char *group_id;
    char *topic_payments;
    char *topic_calls;
    char *topic_app_logins;
    char *topic_profiles;
    char *topic_outcomes;
    char *topic_dead_letter;
    char *topic_holdout;
    int64_t poll_timeout_ms;
    int64_t create_partitions;
    int64_t delivery_timeout_ms;
    int64_t align_slack_ms; /* 0: the topics are read independently */
    int64_t align_wait_ms;
    double backlog_share;
    double backlog_time_share;
    md_kv *common;     /* passed to librdkafka unchanged, consumer and producer alike */
    size_t n_common;
    md_kv *consumer;   /* passed to librdkafka unchanged */
    size_t n_consumer;
    md_kv *producer;
    size_t n_producer;
} md_cfg_kafka;

typedef struct md_cfg_redis {
    char *url;         /* redis://[:password@]host:port[/db], rediss:// for TLS, redis(s)+cluster://seeds */
    char *password;    /* AUTH; "" = none (or the URL's) */
    char *tls_ca_file;     /* rediss://: CA bundle; "" = the system's */
    char *tls_cert_file;   /* client certificate; "" = none */
    char *tls_key_file;
    char *tls_server_name; /* name the server certificate must carry; "" = the URL's host */
    char *key_prefix;
    int64_t timeout_ms;
    int64_t retry_backoff_ms;
    int64_t wait_replicas;   /* WAIT for this many replicas after a batch's applies; 0 = don't */
    int64_t wait_timeout_ms; /* how long WAIT may take before the batch is redone */
    int64_t state_cache_mb;  /* customers' hashes kept in memory between batches; 0 = none */
} md_cfg_redis;

typedef struct md_cfg_limits {
    int64_t max_message_bytes;
    int64_t max_future_skew_s;
    int64_t max_pages;
    int64_t max_depth;
    int64_t batch_size;
    int64_t max_lateness_ms;
    int64_t max_profile_attrs;
    int64_t dead_letter_max_bytes;   /* most bytes of an original a dead letter carries */
    int64_t dead_letters_per_second; /* 0 = no limit */
    int64_t schedule_every_ms;       /* 0 = this instance runs no schedule */
} md_cfg_limits;

typedef struct md_cfg_dedupe {
    int64_t event_id_horizon_ms;
    /* Not from the file: the deployment's secret key of the event-id guard
     * (md_siphash24), which momentd run reads from Redis at start
     * (md_store_dedupe_key) and every process on one namespace shares. All
     * zero for tools whose namespace is private (simulate, backtest). */
    uint64_t id_key[2];
} md_cfg_dedupe;

typedef struct md_cfg_log {
    char *level;
    int64_t stats_interval_ms;
} md_cfg_log;

typedef struct md_cfg_signal {
    char *name;
    char *type;  /* payment | call | app_login | any */
    char *where; /* expression over the event's fields; "" = every event of type */
} md_cfg_signal;

typedef struct md_cfg_window {
    char *name;
    char *signal;
    int64_t span_ms;
    int64_t granularity_ms;
    char *sum;   /* "" counts events; "amount" | "duration_s" | "session_s" sums */
} md_cfg_window;

typedef struct md_cfg_tag {
    char *name;
    char *class_;     /* statistical | rule | mined */
    char *category;
    char *label;
    char *expr;       /* rule, mined */
    char *attribute;  /* statistical: the profile attribute copied */
} md_cfg_tag;

typedef struct md_cfg_static {
    char *attribute;
    md_knum *offsets;
    size_t n_offsets;
} md_cfg_static;

typedef struct md_cfg_feature {
    char *name;
    char *expr;
    char *transform; /* none | log1p */
    double cap;
    double weight;
    char *note;
} md_cfg_feature;

/* A model version names the model in every moment, trigger record and
 * model-quality counter: 1-96 bytes of letters, digits, '.', '_' and '-'. */
#define MD_MODEL_VERSION_MAX 96

typedef struct md_cfg_model {
    char *version;
    double intercept;
    md_cfg_static *statics;
    size_t n_statics;
    md_cfg_feature *features;
    size_t n_features;
    int64_t top_reasons;
} md_cfg_model;

typedef struct md_cfg_cooldown {
    char *mode; /* adaptive | fixed */
    double fixed_days;
    double min_days;
    double max_days;
    double recovery_days;
    double repeat_penalty;
    char *recovery; /* exponential | window: the shape of the response's recovery after a contact */
} md_cfg_cooldown;

#define MD_MAX_ARMS 8 /* policy arms per campaign */

typedef struct md_cfg_arm {
    char *name;
    double share_pct;
    md_cfg_cooldown cooldown;
    /* A model of its own for the arm's customers (version NULL: the
     * campaign's), with the threshold and re-arm level it needs (0: the
     * campaign's): a fitted candidate tried live against the running model. */
    md_cfg_model model;
    double threshold;
    double rearm_below;
} md_cfg_arm;

typedef struct md_cfg_follow_up {
    char *after;        /* the outcome status that starts it */
    char *from_channel; /* the channel that outcome is about; "" = any */
    char *channel;      /* where the follow-up goes */
    int64_t gap_ms;     /* after the outcome */
} md_cfg_follow_up;

typedef struct md_cfg_route {
    char *channel;
    char *when; /* "" = always */
} md_cfg_route;

typedef struct md_cfg_campaign {
    char *name;
    char *eligible;
    char *fire_on;
    double threshold;
    double rearm_below;
    double conversion_value;
    double unwanted_cost;
    int64_t skip_after_conversion_ms;
    double holdout_pct;
    char *conversion;       /* expression over event fields; "" = none */
    int64_t attribution_ms;
    md_cfg_route *routes;
    size_t n_routes;
    md_cfg_cooldown cooldown;
    md_cfg_arm *arms;   /* policy arms; none = everyone gets cooldown */
    size_t n_arms;
    md_cfg_follow_up *follow_ups;
    size_t n_follow_ups;
    md_cfg_model model;
    char *starts;   /* RFC 3339; "" = always started */
    char *ends;     /* RFC 3339; "" = never ends */
    int64_t priority; /* higher decides first for a customer; ties in file order */
    char *audience;   /* "all" | "include_list" */
    char *note;
} md_cfg_campaign;

typedef struct md_cfg_cap {
    int64_t max;
    int64_t per_ms;
    char *scope; /* customer | contact_point (contact policy); channel caps are per customer */
} md_cfg_cap;

/* A channel's capacity: at most max moments per calendar slot of per
 * (slots aligned to midnight in contact_policy.default_utc_offset). */
typedef struct md_cfg_capacity {
    int64_t max;
    int64_t per_ms;
} md_cfg_capacity;

typedef struct md_cfg_channel {
    char *name;
    char *topic;
    char *quiet_start; /* "HH:MM" local; equal start and end = no quiet hours */
    char *quiet_end;
    int64_t fresh_for_ms;
    double contact_cost;
    md_cfg_cap *caps;
    size_t n_caps;
    char *consent; /* profile attribute granting consent; "" = none needed */
    char *confirm; /* emitted | sent: what makes a moment a contact */
    md_cfg_capacity *capacity;
    size_t n_capacity;
} md_cfg_channel;

typedef struct md_cfg_contact {
    md_cfg_cap *caps;
    size_t n_caps;
    int64_t complaint_block_ms;
    char *blackout_after;
    int64_t blackout_ms;
    char *default_utc_offset;
} md_cfg_contact;

typedef struct md_cfg_outcomes {
    int64_t horizon_ms;
    int64_t hangup_within_ms;
    int64_t fatigue_half_life_ms;
    double fatigue_no_answer, fatigue_declined, fatigue_hangup, fatigue_complaint;
    double fatigue_penalty;
} md_cfg_outcomes;

/* What momentd keeps of its own decisions so that `momentd fit` can learn
 * from them (docs/SPEC.md section 5). */
typedef struct md_cfg_learning {
    int64_t keep_ms;        /* how long a decision record is kept; 0 = none are recorded */
    int64_t max_per_campaign; /* records per customer and campaign, the oldest dropped first */
    double sample_pct;      /* share of customers (stable hash) whose not-contacted decisions are sampled */
    int64_t sample_every_ms; /* at most one such sample per customer and campaign this often */
    double calibration_bound; /* live calibration error (a share, 0.05 = 5 points) above which a model is drifting; 0 = not checked */
    int64_t calibration_min;  /* decisions a decile needs to count for calibration */
    int64_t drift_check_every_ms; /* how often the daemon measures its running models; 0 = never */
} md_cfg_learning;

typedef struct md_cfg_audit {
    int64_t keep_ms;          /* how long a customer's decision audit is kept; 0 = none kept */
    int64_t max_per_campaign; /* audit entries per customer and campaign, the oldest dropped first */
    char *topic;              /* one message per decision for a warehouse; "" = none */
} md_cfg_audit;

typedef struct md_cfg_privacy {
    int64_t forget_tombstone_ms; /* how long momentd forget's tombstone keeps a replay from bringing a customer back */
} md_cfg_privacy;

typedef struct md_cfg_http {
    char *listen;
    int64_t ready_max_lag; /* /readyz fails above this many messages of lag on a partition; 0 = not checked */
    double ready_max_redis_memory; /* share of maxmemory above which /readyz fails; 0 = off */
    char *token; /* bearer token for the data endpoints; "" = none */
} md_cfg_http;

struct md_rules; /* compiled rules, rules.h */

typedef struct md_config {
    char *path; /* the file it came from */
    md_cfg_kafka kafka;
    md_cfg_redis redis;
    md_cfg_limits limits;
    md_cfg_dedupe dedupe;
    md_cfg_log log;
    md_cfg_http http;
    md_cfg_signal *signals;
    size_t n_signals;
    md_cfg_window *windows;
    size_t n_windows;
    md_cfg_tag *tags;
    size_t n_tags;
    md_cfg_channel *channels;
    size_t n_channels;
    md_cfg_contact contact;
    md_cfg_outcomes outcomes;
    md_cfg_learning learning;
    md_cfg_privacy privacy;
    md_cfg_audit audit;
    md_cfg_campaign *campaigns;
    size_t n_campaigns;
    struct md_rules *rules; /* owned */
} md_config;

/* Loads and validates path, then applies the environment overrides the
 * configuration table names (md_config_foreach_env). On error returns NULL and
 * writes "<file>: <json path>: <what was expected>" into errstr. The result is
 * owned by the caller (md_config_destroy). */
md_config *md_config_load(const char *path, char *errstr, size_t errstr_size);

/* The text of a configuration file, NUL-terminated (at most 16 MiB, no NUL
 * byte inside), as md_config_load reads it; NULL with errstr set. The
 * caller frees it. */
char *md_config_read_text(const char *path, char *errstr, size_t errstr_size);

/* Same, from a NUL-terminated JSON text; name stands for the file in errors. */
md_config *md_config_load_string(const char *json, const char *name, char *errstr, size_t errstr_size);

void md_config_destroy(md_config *cfg); /* accepts NULL */

/* One-screen summary of a loaded configuration (momentd check). */
void md_config_print_summary(const md_config *cfg, FILE *out);

/* The configuration reference in Markdown, generated from the loader's own
 * tables (momentd config-doc > docs/CONFIG.md). */
void md_config_print_reference(FILE *out);

/* Calls fn for every key path the loader accepts ("kafka.brokers",
 * "campaigns[].model.features[].weight"), for the drift test. */
void md_config_foreach_key(void (*fn)(void *ctx, const char *path), void *ctx);

/* url with any "user:password@" replaced by "***@", for logs and summaries. */
void md_redact_url(const char *url, char *out, size_t n);

/* Whether a librdkafka property's value is a secret (passwords, keys, JAAS
 * and OAuth configuration): never logged, not even in librdkafka's own
 * rejection message, which quotes the value. */
bool md_config_key_is_secret(const char *key);

/* Parses "90d", "12h", "30m", "45s", "250ms" (or a bare number of
 * milliseconds) into milliseconds. */
bool md_parse_duration(const char *s, int64_t *out_ms);

/* "+08:00" / "-05:30" / "Z" to minutes east of UTC. */
bool md_parse_utc_offset(const char *s, int *out_min);

/* "21:00" to minutes after midnight. */
bool md_parse_time_of_day(const char *s, int *out_min);

/* The first setting a reload cannot change (marked restart-only in the
 * configuration table: the connections, the group and the subscription are
 * made once) that differs between a and b, as its dotted key in key; false
 * when none does. */
bool md_config_restart_change(const md_config *a, const md_config *b, char *key, size_t key_size);

/* Calls fn for every environment variable that overrides a setting, with
 * the dotted key it overrides, in table order. */
void md_config_foreach_env(void (*fn)(void *ctx, const char *name, const char *key), void *ctx);

#endif
