/* config.c: the declarative configuration tables, the loader that walks them,
 * and the reference generator that prints them.
 *
 * Each JSON object in the file has one table here: key, type, default, bounds,
 * offset into its struct, and a sentence for the docs. Loading an object is one
 * generic walk of its table (fill defaults, then apply the file's keys, reject
 * the ones the table does not know); freeing is the same walk. Keeping the
 * tables the single source of truth is what lets docs/CONFIG.md be generated
 * and tested against the loader.
 *
 * Why one file of 950 lines: the tables and the machinery that walks them
 * (loading, defaults, bounds, environment overrides, the reload rule and the
 * generated reference) must stay together, so that nothing reads a key the
 * table does not declare. */
#include "momentd/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "rules.h"

typedef enum ftype { T_STR, T_INT, T_NUM, T_DUR, T_ENUM, T_EXPR, T_TOD, T_UTCOFF, T_OBJ, T_ARR, T_PASS, T_NUMMAP } ftype;

struct table;

typedef struct field {
    const char *key;
    ftype type;
    size_t off;
    const char *def; /* default as text; NULL = required (objects, arrays: NULL = may be absent) */
    double lo, hi;   /* bounds for T_INT, T_NUM, T_DUR (ms) */
    const char *doc;
    const struct table *sub; /* T_OBJ, T_ARR */
    size_t elem_size;        /* T_ARR */
    size_t count_off;        /* T_ARR, T_PASS, T_NUMMAP */
    const char *choices;     /* T_ENUM: "a|b|c" */
    /* The columns that drive more than the loader: */
    unsigned flags;          /* F_RESTART: a reload that changes it is refused (the connections, the group
                              * and the subscription are made once) */
    const char *env;         /* T_STR: the environment variable that overrides it, or NULL */
} field;

#define F_RESTART 1u

/* The table's last columns (flags, env) are optional: a row that leaves them
 * out gets 0 and NULL, which is what an initializer does anyway. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct table {
    const char *name;
    const field *fields;
    size_t n;
} table;

#define NF(arr) (sizeof(arr) / sizeof((arr)[0]))
#define STR(s, k, d, doc_, ...) {#k, T_STR, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define STRK(s, k, m, d, doc_, ...) {k, T_STR, offsetof(s, m), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define EXPR(s, k, d, doc_, ...) {#k, T_EXPR, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define INT(s, k, d, lo, hi, doc_, ...) {#k, T_INT, offsetof(s, k), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define NUM(s, k, d, lo, hi, doc_, ...) {#k, T_NUM, offsetof(s, k), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define DUR(s, k, m, d, lo, hi, doc_, ...) {k, T_DUR, offsetof(s, m), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define ENUM(s, k, m, d, ch, doc_, ...) {k, T_ENUM, offsetof(s, m), d, 0, 0, doc_, NULL, 0, 0, ch, __VA_ARGS__}
#define TOD(s, k, d, doc_, ...) {#k, T_TOD, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define OBJ(s, k, m, t, doc_, ...) {k, T_OBJ, offsetof(s, m), "", 0, 0, doc_, &t, 0, 0, NULL, __VA_ARGS__}
#define ARR(s, k, m, cnt, t, et, req, doc_, ...) {k, T_ARR, offsetof(s, m), req, 0, 0, doc_, &t, sizeof(et), offsetof(s, cnt), NULL, __VA_ARGS__}
#define PASS(s, k, m, cnt, doc_, ...) {k, T_PASS, offsetof(s, m), "", 0, 0, doc_, NULL, 0, offsetof(s, cnt), NULL, __VA_ARGS__}
#define NUMMAP(s, k, m, cnt, doc_, ...) {k, T_NUMMAP, offsetof(s, m), "", 0, 0, doc_, NULL, 0, offsetof(s, cnt), NULL, __VA_ARGS__}

#define MS_DAY 86400000.0
#define MS_HOUR 3600000.0

/* ---- kafka ---- */
static const field kafka_fields[] = {
    STR(md_cfg_kafka, brokers, "127.0.0.1:9092", "Bootstrap brokers.", F_RESTART, "MOMENTD_KAFKA_BROKERS"),
    STR(md_cfg_kafka, group_id, "momentd", "Consumer group of the daemon.", F_RESTART),
    STRK(md_cfg_kafka, "topic_payments", topic_payments, "payments", "Payment events.", F_RESTART),
    STRK(md_cfg_kafka, "topic_calls", topic_calls, "calls", "Call-centre events.", F_RESTART),
    STRK(md_cfg_kafka, "topic_app_logins", topic_app_logins, "app-logins", "App-login events.", F_RESTART),
    STRK(md_cfg_kafka, "topic_profiles", topic_profiles, "customer-profiles", "Compacted topic of static customer profiles.", F_RESTART),
    STRK(md_cfg_kafka, "topic_outcomes", topic_outcomes, "moment-outcomes", "Outcomes reported by the channels' subscribers.", F_RESTART),
    STRK(md_cfg_kafka, "topic_dead_letter", topic_dead_letter, "momentd.dead-letter", "Rejected input: original bytes and reason."),
    STRK(md_cfg_kafka, "topic_holdout", topic_holdout, "moments.holdout", "Decisions for holdout customers (never contacted)."),
    INT(md_cfg_kafka, create_partitions, "4", 0, 1024, "At start, create missing topics with this many partitions (0: never create)."),
    DUR(md_cfg_kafka, "poll_timeout", poll_timeout_ms, "100ms", 1, 10000, "Longest wait of one consumer poll."),
    DUR(md_cfg_kafka, "delivery_timeout", delivery_timeout_ms, "30s", 1000, 3600000, "How long a batch waits for trigger acknowledgements before retrying."),
    PASS(md_cfg_kafka, "common", common, n_common, "librdkafka properties for the consumer and the producer alike (security.protocol, sasl.*, ssl.*), passed through unchanged; values may be \"${env:NAME}\" or \"${file:PATH}\".", F_RESTART),
    PASS(md_cfg_kafka, "consumer", consumer, n_consumer, "librdkafka consumer properties, passed through unchanged (e.g. \"fetch.min.bytes\").", F_RESTART),
    PASS(md_cfg_kafka, "producer", producer, n_producer, "librdkafka producer properties, passed through unchanged (e.g. \"linger.ms\").", F_RESTART),
};
static const table kafka_table = {"kafka", kafka_fields, NF(kafka_fields)};

/* ---- redis ---- */
static const field redis_fields[] = {
    STR(md_cfg_redis, url, "redis://127.0.0.1:6379/0", "redis://[:PASSWORD@]host:port[/db], or rediss:// for TLS.", F_RESTART, "MOMENTD_REDIS_URL"),
    STR(md_cfg_redis, password, "", "Redis AUTH password (overrides one in the URL); write \"${env:NAME}\" or \"${file:PATH}\" to keep it out of the file. Never logged.", F_RESTART, "MOMENTD_REDIS_PASSWORD"),
    STR(md_cfg_redis, key_prefix, "md", "Prefix of every key momentd writes; backtests use another one.", F_RESTART),
    STR(md_cfg_redis, tls_ca_file, "", "rediss://: PEM file of the CA that signs Redis's certificate; empty = the system's CAs.", F_RESTART),
    STR(md_cfg_redis, tls_cert_file, "", "rediss://: client certificate (PEM) for a Redis with tls-auth-clients; empty = none.", F_RESTART),
    STR(md_cfg_redis, tls_key_file, "", "rediss://: the client certificate's private key (PEM file); empty = in tls_cert_file.", F_RESTART),
    STR(md_cfg_redis, tls_server_name, "", "rediss://: the name (DNS or IP) Redis's certificate must carry; empty = the URL's host.", F_RESTART),
    DUR(md_cfg_redis, "timeout", timeout_ms, "5s", 10, 600000, "Connect and command timeout.", F_RESTART),
    DUR(md_cfg_redis, "retry_backoff", retry_backoff_ms, "500ms", 10, 60000, "Wait between reconnection attempts while Redis is down."),
};
static const table redis_table = {"redis", redis_fields, NF(redis_fields)};

/* ---- limits ---- */
static const field limits_fields[] = {
    INT(md_cfg_limits, max_message_bytes, "65536", 256, 16777216, "Larger messages are dead-lettered as too_large."),
    INT(md_cfg_limits, max_future_skew_s, "300", 0, 86400, "Events further ahead of the clock are dead-lettered."),
    INT(md_cfg_limits, max_pages, "64", 0, 64, "Most page ids in one app_login."),
    INT(md_cfg_limits, max_depth, "16", 2, 64, "Deepest JSON nesting accepted in an event."),
    INT(md_cfg_limits, batch_size, "2000", 1, 10000, "Most messages processed per batch (one Redis round trip each way)."),
    DUR(md_cfg_limits, "max_lateness", max_lateness_ms, "7d", 0, 90 * MS_DAY, "How far behind a customer's newest event a late event may be and still be counted."),
    INT(md_cfg_limits, max_profile_attrs, "32", 1, 256, "Most attributes kept per profile."),
};
static const table limits_table = {"limits", limits_fields, NF(limits_fields)};

static const field dedupe_fields[] = {
    DUR(md_cfg_dedupe, "event_id_horizon", event_id_horizon_ms, "72h", MS_HOUR, 30 * MS_DAY, "A re-published event_id is recognised while it is this close (in event time) to the customer's newest event; never less than limits.max_lateness, so that an event that can still be counted is always recognised."),
};
static const table dedupe_table = {"dedupe", dedupe_fields, NF(dedupe_fields)};

static const field log_fields[] = {
    ENUM(md_cfg_log, "level", level, "info", "debug|info|warn|error", "Least severe level written to stderr."),
    DUR(md_cfg_log, "stats_interval", stats_interval_ms, "10s", 100, 3600000, "How often the running totals are logged (one line)."),
};
static const table log_table = {"log", log_fields, NF(log_fields)};

static const field http_fields[] = {
    STR(md_cfg_http, listen, "127.0.0.1:9464", "IPv4-ADDRESS:PORT of the HTTP endpoint (/metrics, /healthz, /readyz, /api/report, the report page); empty disables it.", F_RESTART),
    INT(md_cfg_http, ready_max_lag, "100000", 0, 1e12, "/readyz answers 503 while any assigned partition lags by more than this many messages (0: lag is not checked)."),
};
static const table http_table = {"http", http_fields, NF(http_fields)};

/* ---- signals, windows, tags ---- */
static const field signal_fields[] = {
    STR(md_cfg_signal, name, NULL, "Name windows refer to."),
    ENUM(md_cfg_signal, "type", type, NULL, "payment|call|app_login|any", "Event type selected."),
    EXPR(md_cfg_signal, where, "", "Predicate over the event's fields (amount, kind, late, reason, inbound, pages, ...); empty selects every event of the type."),
};
static const table signal_table = {"signal", signal_fields, NF(signal_fields)};

static const field window_fields[] = {
    STR(md_cfg_window, name, NULL, "Feature name, e.g. late_payments_180d."),
    STR(md_cfg_window, signal, NULL, "The signal counted."),
    DUR(md_cfg_window, "span", span_ms, NULL, MS_HOUR, 400 * MS_DAY, "Sliding span of event time."),
    DUR(md_cfg_window, "granularity", granularity_ms, "1d", 60000, 31 * MS_DAY, "Bucket width; the window is exact to this."),
    ENUM(md_cfg_window, "sum", sum, "", "|amount|duration_s|session_s", "Empty counts events; otherwise sums this field."),
};
static const table window_table = {"window", window_fields, NF(window_fields)};

static const field tag_fields[] = {
    STR(md_cfg_tag, name, NULL, "Tag name, usable in later expressions as 0/1."),
    ENUM(md_cfg_tag, "class", class_, "rule", "statistical|rule|mined", "statistical copies a profile attribute; rule and mined evaluate expr."),
    STR(md_cfg_tag, category, "", "Grouping shown in explain and reports."),
    STR(md_cfg_tag, label, "", "Human label (any language)."),
    EXPR(md_cfg_tag, expr, "", "rule: over windows, balance, recency, profile.*, earlier tags; mined: may also read score.<campaign>."),
    STR(md_cfg_tag, attribute, "", "statistical: the profile attribute; the tag is attribute:value."),
};
static const table tag_table = {"tag", tag_fields, NF(tag_fields)};

/* ---- model ---- */
static const field static_fields[] = {
    STR(md_cfg_static, attribute, NULL, "Profile attribute."),
    NUMMAP(md_cfg_static, "offsets", offsets, n_offsets, "Log-odds offset per attribute value; other values add 0."),
};
static const table static_table = {"static offset", static_fields, NF(static_fields)};

static const field feature_fields[] = {
    STR(md_cfg_feature, name, NULL, "Name shown in reasons."),
    EXPR(md_cfg_feature, expr, NULL, "Value of the feature (no value counts as 0)."),
    ENUM(md_cfg_feature, "transform", transform, "none", "none|log1p", "Applied after the cap."),
    NUM(md_cfg_feature, cap, "1e9", -1e9, 1e9, "Upper bound applied to the value before the transform."),
    NUM(md_cfg_feature, weight, NULL, -100, 100, "Log-odds weight."),
    STR(md_cfg_feature, note, "", "Why this weight: free text for reviewers, ignored by the engine."),
};
static const table feature_table = {"feature", feature_fields, NF(feature_fields)};

static const field model_fields[] = {
    STR(md_cfg_model, version, NULL, "Model version carried by every trigger."),
    NUM(md_cfg_model, intercept, "0", -100, 100, "Log-odds intercept."),
    ARR(md_cfg_model, "static", statics, n_statics, static_table, md_cfg_static, "", "Static tier: offsets by profile attribute."),
    ARR(md_cfg_model, "features", features, n_features, feature_table, md_cfg_feature, NULL, "Dynamic part: weighted features."),
    INT(md_cfg_model, top_reasons, "3", 1, 16, "Contributions carried as reasons."),
};
static const table model_table = {"model", model_fields, NF(model_fields)};

static const field cooldown_fields[] = {
    ENUM(md_cfg_cooldown, "mode", mode, "adaptive", "adaptive|fixed", "fixed: always fixed_days; adaptive: by score and fatigue."),
    NUM(md_cfg_cooldown, fixed_days, "45", 0, 3650, "Gap of the fixed mode."),
    NUM(md_cfg_cooldown, min_days, "3", 0, 3650, "Gap at or above the peak score."),
    NUM(md_cfg_cooldown, max_days, "90", 0, 3650, "Gap at or below the trough score."),
    NUM(md_cfg_cooldown, trough, "0.5", 0, 1, "Score at or below which the gap is max_days."),
    NUM(md_cfg_cooldown, peak, "0.9", 0, 1, "Score at or above which the gap is min_days."),
    NUM(md_cfg_cooldown, fatigue_step, "0.5", 0, 10, "Each unanswered or declined contact multiplies the gap by (1 + step * n)."),
    NUM(md_cfg_cooldown, fatigue_max, "4", 1, 100, "Largest fatigue multiplier."),
};
static const table cooldown_table = {"cooldown", cooldown_fields, NF(cooldown_fields)};

static const field arm_fields[] = {
    STR(md_cfg_arm, name, NULL, "Arm name, carried by triggers and the report."),
    NUM(md_cfg_arm, share_pct, NULL, 0, 100, "Share of the campaign's customers (stable hash) in this arm; the arms' shares sum to 100."),
    OBJ(md_cfg_arm, "cooldown", cooldown, cooldown_table, "The contact policy of this arm, in place of the campaign's cooldown."),
};
static const table arm_table = {"arm", arm_fields, NF(arm_fields)};

static const field follow_up_fields[] = {
    ENUM(md_cfg_follow_up, "after", after, NULL, "sent|delivered|reached|opened|converted|declined|no_answer|complaint|opt_out",
         "The outcome status that starts this follow-up."),
    STRK(md_cfg_follow_up, "from_channel", from_channel, "", "Only after an outcome on this channel; empty = any."),
    STRK(md_cfg_follow_up, "channel", channel, NULL, "The channel of the follow-up (its caps and quiet hours apply)."),
    DUR(md_cfg_follow_up, "gap", gap_ms, "0", 0, 30 * MS_DAY, "How long after the outcome the follow-up may be delivered (its not_before)."),
};
static const table follow_up_table = {"follow_up", follow_up_fields, NF(follow_up_fields)};

static const field route_fields[] = {
    STR(md_cfg_route, channel, NULL, "A channel of the channels section."),
    EXPR(md_cfg_route, when, "", "Condition (features, tags, event.*); first matching route wins; empty always matches."),
};
static const table route_table = {"route", route_fields, NF(route_fields)};

static const field campaign_fields[] = {
    STR(md_cfg_campaign, name, NULL, "Campaign name, carried by triggers."),
    EXPR(md_cfg_campaign, eligible, "", "Who may be contacted at all (tags); empty = everyone."),
    EXPR(md_cfg_campaign, fire_on, "", "Which events may fire the campaign (event.type, event.reason, ...); empty = any."),
    NUM(md_cfg_campaign, threshold, NULL, 0, 1, "Score that fires on an upward crossing."),
    NUM(md_cfg_campaign, rearm_below, NULL, 0, 1, "After firing, the campaign re-arms only when the score falls below this."),
    NUM(md_cfg_campaign, holdout_pct, "0", 0, 100, "Share of customers (stable hash) recorded on the holdout topic instead of contacted."),
    EXPR(md_cfg_campaign, conversion, "", "Events that count as a conversion of this campaign (over event fields, e.g. kind == \"prepay\"); empty = none observed."),
    DUR(md_cfg_campaign, "attribution", attribution_ms, "30d", MS_DAY / 24, 365 * MS_DAY, "A conversion counts for the campaign's trigger (treated or holdout) at most this long before it."),
    ARR(md_cfg_campaign, "routes", routes, n_routes, route_table, md_cfg_route, NULL, "Channel selection, first match wins."),
    OBJ(md_cfg_campaign, "cooldown", cooldown, cooldown_table, "Adaptive or fixed gap between two contacts of this campaign."),
    ARR(md_cfg_campaign, "arms", arms, n_arms, arm_table, md_cfg_arm, "", "Policy arms: customers split (stable hash) between contact policies, compared in the report."),
    ARR(md_cfg_campaign, "follow_ups", follow_ups, n_follow_ups, follow_up_table, md_cfg_follow_up, "", "Contacts chained on outcomes (an SMS after a connected call, an in-app message after an unanswered one)."),
    OBJ(md_cfg_campaign, "model", model, model_table, "The demand model."),
    STR(md_cfg_campaign, note, "", "Free text for reviewers, ignored by the engine."),
};
static const table campaign_table = {"campaign", campaign_fields, NF(campaign_fields)};

static const field cap_fields[] = {
    INT(md_cfg_cap, max, NULL, 0, 1000, "Most contacts in the rolling span."),
    DUR(md_cfg_cap, "per", per_ms, NULL, 60000, 400 * MS_DAY, "Rolling span (never calendar days)."),
    ENUM(md_cfg_cap, "scope", scope, "customer", "customer|contact_point", "Counted per customer or per contact point (profile attribute contact_point)."),
};
static const table cap_table = {"cap", cap_fields, NF(cap_fields)};

static const field channel_fields[] = {
    STR(md_cfg_channel, name, NULL, "outbound_call, in_app, sms, ..."),
    STR(md_cfg_channel, topic, NULL, "Topic the channel's subscriber reads."),
    TOD(md_cfg_channel, quiet_start, "00:00", "Start of quiet hours, customer's local time."),
    TOD(md_cfg_channel, quiet_end, "00:00", "End of quiet hours; equal to start means none."),
    DUR(md_cfg_channel, "fresh_for", fresh_for_ms, NULL, 60000, 30 * MS_DAY, "A moment expires this long after its event (expires_at)."),
    ARR(md_cfg_channel, "caps", caps, n_caps, cap_table, md_cfg_cap, NULL, "Per-customer caps on this channel."),
};
static const table channel_table = {"channel", channel_fields, NF(channel_fields)};

static const field contact_fields[] = {
    ARR(md_cfg_contact, "caps", caps, n_caps, cap_table, md_cfg_cap, NULL, "Caps across all campaigns and channels."),
    DUR(md_cfg_contact, "complaint_block", complaint_block_ms, "180d", 0, 3650 * MS_DAY, "No marketing for this long after a complaint."),
    EXPR(md_cfg_contact, blackout_after, "", "Service-recovery events (over event fields) that start a blackout."),
    DUR(md_cfg_contact, "blackout", blackout_ms, "72h", 0, 365 * MS_DAY, "Length of the service-recovery blackout."),
    {"default_utc_offset", T_UTCOFF, offsetof(md_cfg_contact, default_utc_offset), "+08:00", 0, 0,
     "Customer time zone when the profile has no utc_offset.", NULL, 0, 0, NULL},
};
static const table contact_table = {"contact_policy", contact_fields, NF(contact_fields)};

static const field outcome_fields[] = {
    DUR(md_cfg_outcomes, "horizon", horizon_ms, "30d", MS_DAY, 365 * MS_DAY, "How long after a trigger its outcomes are accepted; later ones, and ones for unknown triggers, are counted and ignored."),
    DUR(md_cfg_outcomes, "hangup_within", hangup_within_ms, "5s", 0, 600000, "A reached call shorter than this (outcome duration_s) counts as a hang-up: fatigue grows as for no_answer."),
};
static const table outcome_table = {"outcomes", outcome_fields, NF(outcome_fields)};

static const field root_fields[] = {
    OBJ(md_config, "kafka", kafka, kafka_table, "Kafka connection and topics."),
    OBJ(md_config, "redis", redis, redis_table, "Redis connection."),
    OBJ(md_config, "limits", limits, limits_table, "Input limits."),
    OBJ(md_config, "dedupe", dedupe, dedupe_table, "Duplicate detection."),
    OBJ(md_config, "log", log, log_table, "Logging."),
    OBJ(md_config, "http", http, http_table, "HTTP endpoint."),
    ARR(md_config, "signals", signals, n_signals, signal_table, md_cfg_signal, NULL, "Event selections that windows count."),
    ARR(md_config, "windows", windows, n_windows, window_table, md_cfg_window, NULL, "Sliding windows per customer."),
    ARR(md_config, "tags", tags, n_tags, tag_table, md_cfg_tag, "", "The tag library."),
    ARR(md_config, "channels", channels, n_channels, channel_table, md_cfg_channel, NULL, "Contact channels and their policies."),
    OBJ(md_config, "contact_policy", contact, contact_table, "Rules across channels and campaigns."),
    OBJ(md_config, "outcomes", outcomes, outcome_table, "Outcomes reported by the channels (topic kafka.topic_outcomes)."),
    ARR(md_config, "campaigns", campaigns, n_campaigns, campaign_table, md_cfg_campaign, NULL, "Campaigns."),
};
static const table root_table = {"configuration", root_fields, NF(root_fields)};

/* ------------------------------------------------------------------------- */
/* Scalars                                                                    */

bool md_parse_duration(const char *s, int64_t *out_ms) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return false;
    double mult;
    if (*end == '\0' || strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "m") == 0) mult = 60000;
    else if (strcmp(end, "h") == 0) mult = MS_HOUR;
    else if (strcmp(end, "d") == 0) mult = MS_DAY;
    else return false;
    if (v * mult > 9e15) return false;
    *out_ms = (int64_t)llround(v * mult);
    return true;
}

bool md_parse_time_of_day(const char *s, int *out_min) {
    if (strlen(s) != 5 || s[2] != ':') return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0)) return false;
    *out_min = h * 60 + m;
    return true;
}

bool md_parse_utc_offset(const char *s, int *out_min) {
    if (strcmp(s, "Z") == 0 || strcmp(s, "z") == 0) {
        *out_min = 0;
        return true;
    }
    if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return false;
    int hm;
    char tmp[6] = {s[1], s[2], ':', s[4], s[5], 0};
    if (!md_parse_time_of_day(tmp, &hm) || hm > 14 * 60) return false;
    *out_min = s[0] == '-' ? -hm : hm;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Loader                                                                     */

typedef struct loader {
    const char *file;
    char *err;
    size_t errsz;
    bool failed;
} loader;

static bool lerr(loader *L, const char *path, const char *fmt, ...) {
    if (L->failed) return false;
    L->failed = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errsz, "%s: %s: %s", L->file, path, msg);
    return false;
}

static void describe(yajl_val v, char *out, size_t n) {
    if (!v) snprintf(out, n, "nothing");
    else if (YAJL_IS_STRING(v)) snprintf(out, n, "\"%.60s\"", v->u.string);
    else if (YAJL_IS_NUMBER(v)) snprintf(out, n, "%.60s", v->u.number.r);
    else if (YAJL_IS_OBJECT(v)) snprintf(out, n, "an object");
    else if (YAJL_IS_ARRAY(v)) snprintf(out, n, "an array");
    else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) snprintf(out, n, "a boolean");
    else snprintf(out, n, "null");
}

static bool load_object(loader *L, const table *t, yajl_val obj, void *base, const char *path);

static bool choice_ok(const char *choices, const char *s) {
    size_t n = strlen(s);
    const char *c = choices;
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, s, n) == 0) return true;
        if (!bar) return false;
        c = bar + 1;
    }
}

/* A whole string value "${env:NAME}" or "${file:PATH}" stands for the
 * variable's value or the file's contents without its trailing newline, so
 * that secrets (SASL and key passwords, the Redis password) stay out of the
 * file. Anything else is taken literally. On success *out is malloc'd. */
#define MD_SECRET_FILE_MAX 65536
static bool resolve_reference(loader *L, const char *path, const char *text, char **out) {
    size_t n = strlen(text);
    bool is_env = strncmp(text, "${env:", 6) == 0, is_file = strncmp(text, "${file:", 7) == 0;
    if ((!is_env && !is_file) || n < 8 || text[n - 1] != '}') {
        *out = strdup(text);
        return *out ? true : lerr(L, path, "out of memory");
    }
    size_t skip = is_env ? 6 : 7;
    char name[4096];
    if (n - skip - 1 == 0 || n - skip - 1 >= sizeof(name)) return lerr(L, path, "an empty or too long %s reference", is_env ? "${env:}" : "${file:}");
    memcpy(name, text + skip, n - skip - 1);
    name[n - skip - 1] = '\0';
    if (is_env) {
        const char *v = getenv(name);
        if (!v) return lerr(L, path, "environment variable %s is not set", name);
        *out = strdup(v);
        return *out ? true : lerr(L, path, "out of memory");
    }
    FILE *f = fopen(name, "rb");
    if (!f) return lerr(L, path, "cannot read %s: %s", name, strerror(errno));
    char *buf = malloc(MD_SECRET_FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, MD_SECRET_FILE_MAX + 1, f) : 0;
    bool too_big = got > MD_SECRET_FILE_MAX, read_err = ferror(f);
    fclose(f);
    if (!buf) return lerr(L, path, "out of memory");
    if (too_big || read_err) {
        free(buf);
        return lerr(L, path, too_big ? "%s is larger than 64 KiB" : "cannot read %s", name);
    }
    if (got && buf[got - 1] == '\n') got--;
    if (got && buf[got - 1] == '\r') got--;
    buf[got] = '\0';
    if (strlen(buf) != got) {
        free(buf);
        return lerr(L, path, "%s holds a NUL byte", name);
    }
    *out = buf;
    return true;
}

/* Applies a text value (a default, or a string from the file) to a scalar field. */
static bool set_from_text(loader *L, const field *f, void *base, const char *text, const char *path) {
    void *dst = (char *)base + f->off;
    switch (f->type) {
    case T_STR:
    case T_EXPR:
    case T_ENUM:
    case T_TOD:
    case T_UTCOFF: {
        if (f->type == T_ENUM && !choice_ok(f->choices, text))
            return lerr(L, path, "expected one of %s, got \"%s\"", f->choices, text);
        int tmp;
        if (f->type == T_TOD && !md_parse_time_of_day(text, &tmp))
            return lerr(L, path, "expected a local time \"HH:MM\", got \"%s\"", text);
        if (f->type == T_UTCOFF && !md_parse_utc_offset(text, &tmp))
            return lerr(L, path, "expected a UTC offset like \"+08:00\", got \"%s\"", text);
        char *s;
        if (f->type == T_STR) {
            if (!resolve_reference(L, path, text, &s)) return false;
        } else if (!(s = strdup(text))) {
            return lerr(L, path, "out of memory");
        }
        free(*(char **)dst);
        *(char **)dst = s;
        return true;
    }
    case T_DUR: {
        int64_t ms;
        if (!md_parse_duration(text, &ms))
            return lerr(L, path, "expected a duration like \"90d\", \"12h\", \"30m\", \"45s\" or \"250ms\", got \"%s\"", text);
        if (ms < f->lo || ms > f->hi)
            return lerr(L, path, "duration \"%s\" is outside [%.0f ms, %.0f ms]", text, f->lo, f->hi);
        *(int64_t *)dst = ms;
        return true;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (*end || end == text || errno) return lerr(L, path, "expected an integer, got %s", text);
        if (v < f->lo || v > f->hi) return lerr(L, path, "expected an integer in [%.0f, %.0f], got %lld", f->lo, f->hi, v);
        *(int64_t *)dst = v;
        return true;
    }
    case T_NUM: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (*end || end == text || errno || !isfinite(v)) return lerr(L, path, "expected a number, got %s", text);
        if (v < f->lo || v > f->hi) return lerr(L, path, "expected a number in [%g, %g], got %s", f->lo, f->hi, text);
        *(double *)dst = v;
        return true;
    }
    default: return lerr(L, path, "internal: not a scalar");
    }
}

/* Builds the JSON path of a member ("campaigns[2].model") for error messages.
 * Paths longer than the buffer are cut with "..." rather than overflowing. */
static void path_key(char *out, size_t n, const char *path, const char *key) {
    int r = snprintf(out, n, "%s.%s", path, key);
    if (r < 0 || (size_t)r >= n) snprintf(out + n - 4, 4, "...");
}

static void path_index(char *out, size_t n, const char *path, size_t i) {
    int r = snprintf(out, n, "%s[%zu]", path, i);
    if (r < 0 || (size_t)r >= n) snprintf(out + n - 4, 4, "...");
}

static bool set_from_json(loader *L, const field *f, void *base, yajl_val v, const char *path) {
    char got[96];
    describe(v, got, sizeof(got));
    switch (f->type) {
    case T_INT:
    case T_NUM:
        if (!YAJL_IS_NUMBER(v)) return lerr(L, path, "expected a number, got %s", got);
        return set_from_text(L, f, base, v->u.number.r, path);
    case T_DUR:
        if (YAJL_IS_NUMBER(v) || YAJL_IS_STRING(v))
            return set_from_text(L, f, base, YAJL_IS_NUMBER(v) ? v->u.number.r : v->u.string, path);
        return lerr(L, path, "expected a duration string like \"90d\", got %s", got);
    case T_OBJ:
        if (!YAJL_IS_OBJECT(v)) return lerr(L, path, "expected an object, got %s", got);
        return load_object(L, f->sub, v, (char *)base + f->off, path);
    case T_ARR: {
        if (!YAJL_IS_ARRAY(v)) return lerr(L, path, "expected an array of objects, got %s", got);
        size_t n = v->u.array.len;
        void *arr = n ? calloc(n, f->elem_size) : NULL;
        if (n && !arr) return lerr(L, path, "out of memory");
        *(void **)((char *)base + f->off) = arr;
        *(size_t *)((char *)base + f->count_off) = 0;
        for (size_t i = 0; i < n; i++) {
            char sub[512];
            path_index(sub, sizeof(sub), path, i);
            yajl_val el = v->u.array.values[i];
            if (!YAJL_IS_OBJECT(el)) {
                describe(el, got, sizeof(got));
                return lerr(L, sub, "expected an object, got %s", got);
            }
            /* Count first, so that the free walk covers a half-loaded element. */
            *(size_t *)((char *)base + f->count_off) = i + 1;
            if (!load_object(L, f->sub, el, (char *)arr + i * f->elem_size, sub)) return false;
        }
        return true;
    }
    case T_PASS:
    case T_NUMMAP: {
        if (!YAJL_IS_OBJECT(v)) return lerr(L, path, "expected an object, got %s", got);
        size_t n = v->u.object.len;
        size_t esz = f->type == T_PASS ? sizeof(md_kv) : sizeof(md_knum);
        void *arr = n ? calloc(n, esz) : NULL;
        if (n && !arr) return lerr(L, path, "out of memory");
        *(void **)((char *)base + f->off) = arr;
        for (size_t i = 0; i < n; i++) {
            char sub[512];
            const char *k = v->u.object.keys[i];
            yajl_val val = v->u.object.values[i];
            path_key(sub, sizeof(sub), path, k);
            *(size_t *)((char *)base + f->count_off) = i + 1;
            if (f->type == T_PASS) {
                md_kv *kv = (md_kv *)arr + i;
                kv->key = strdup(k);
                if (YAJL_IS_STRING(val)) {
                    if (!resolve_reference(L, sub, val->u.string, &kv->value)) return false;
                } else if (YAJL_IS_NUMBER(val)) kv->value = strdup(val->u.number.r);
                else if (YAJL_IS_TRUE(val) || YAJL_IS_FALSE(val)) kv->value = strdup(YAJL_IS_TRUE(val) ? "true" : "false");
                else {
                    describe(val, got, sizeof(got));
                    return lerr(L, sub, "expected a string, number or boolean, got %s", got);
                }
                if (!kv->key || !kv->value) return lerr(L, sub, "out of memory");
            } else {
                md_knum *kn = (md_knum *)arr + i;
                if (!YAJL_IS_NUMBER(val)) {
                    describe(val, got, sizeof(got));
                    return lerr(L, sub, "expected a number, got %s", got);
                }
                kn->key = strdup(k);
                if (!kn->key) return lerr(L, sub, "out of memory");
                kn->value = YAJL_GET_DOUBLE(val);
                if (!isfinite(kn->value) || fabs(kn->value) > 100)
                    return lerr(L, sub, "expected a number in [-100, 100], got %s", val->u.number.r);
            }
        }
        return true;
    }
    default:
        if (!YAJL_IS_STRING(v)) return lerr(L, path, "expected a string, got %s", got);
        return set_from_text(L, f, base, v->u.string, path);
    }
}

static bool load_object(loader *L, const table *t, yajl_val obj, void *base, const char *path) {
    size_t nkeys = obj ? obj->u.object.len : 0;
    /* Reject unknown and repeated keys before anything else. */
    for (size_t k = 0; k < nkeys; k++) {
        const char *key = obj->u.object.keys[k];
        size_t i;
        for (i = 0; i < t->n; i++)
            if (strcmp(t->fields[i].key, key) == 0) break;
        if (i == t->n) {
            char known[512] = "";
            for (size_t j = 0; j < t->n; j++) {
                strncat(known, t->fields[j].key, sizeof(known) - strlen(known) - 3);
                if (j + 1 < t->n) strncat(known, ", ", sizeof(known) - strlen(known) - 1);
            }
            char sub[512];
            path_key(sub, sizeof(sub), path, key);
            return lerr(L, sub, "unknown key in %s (known keys: %s)", t->name, known);
        }
        for (size_t j = 0; j < k; j++)
            if (strcmp(obj->u.object.keys[j], key) == 0) {
                char sub[512];
                path_key(sub, sizeof(sub), path, key);
                return lerr(L, sub, "key appears more than once");
            }
    }
    for (size_t i = 0; i < t->n; i++) {
        const field *f = &t->fields[i];
        yajl_val v = NULL;
        for (size_t k = 0; k < nkeys; k++)
            if (strcmp(obj->u.object.keys[k], f->key) == 0) v = obj->u.object.values[k];
        char sub[512];
        path_key(sub, sizeof(sub), path, f->key);
        if (v && !YAJL_IS_NULL(v)) {
            if (!set_from_json(L, f, base, v, sub)) return false;
        } else if (f->type == T_OBJ) {
            if (!load_object(L, f->sub, NULL, (char *)base + f->off, sub)) return false;
        } else if (f->type == T_ARR || f->type == T_PASS || f->type == T_NUMMAP) {
            if (!f->def) return lerr(L, sub, "required (an array of %s objects)", f->sub->name);
        } else if (!f->def) {
            return lerr(L, sub, "required");
        } else if (!set_from_text(L, f, base, f->def, sub)) {
            return false;
        }
    }
    return true;
}

static void free_object(const table *t, void *base) {
    for (size_t i = 0; i < t->n; i++) {
        const field *f = &t->fields[i];
        void *p = (char *)base + f->off;
        switch (f->type) {
        case T_OBJ: free_object(f->sub, p); break;
        case T_ARR: {
            void *arr = *(void **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) free_object(f->sub, (char *)arr + k * f->elem_size);
            free(arr);
            break;
        }
        case T_PASS: {
            md_kv *kv = *(md_kv **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) {
                free(kv[k].key);
                free(kv[k].value);
            }
            free(kv);
            break;
        }
        case T_NUMMAP: {
            md_knum *kn = *(md_knum **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) free(kn[k].key);
            free(kn);
            break;
        }
        case T_STR:
        case T_EXPR:
        case T_ENUM:
        case T_TOD:
        case T_UTCOFF: free(*(char **)p); break;
        default: break;
        }
    }
}

void md_config_destroy(md_config *cfg) {
    if (!cfg) return;
    md_rules_destroy(cfg->rules);
    free_object(&root_table, cfg);
    free(cfg->path);
    free(cfg);
}

/* The environment overrides the table names (field.env), applied over
 * what the file said. An empty variable is taken as unset. */
static bool apply_env_table(loader *L, const table *t, void *obj) {
    for (size_t i = 0; i < t->n; i++) {
        const field *f = &t->fields[i];
        void *p = (char *)obj + f->off;
        if (f->type == T_OBJ && !apply_env_table(L, f->sub, p)) return false;
        const char *v = f->env ? getenv(f->env) : NULL;
        if (!v || !*v) continue;
        char *copy = strdup(v);
        if (!copy) return lerr(L, f->env, "out of memory");
        free(*(char **)p);
        *(char **)p = copy;
    }
    return true;
}

static bool apply_env(loader *L, md_config *cfg) { return apply_env_table(L, &root_table, cfg); }

static bool same_text(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

/* Whether field f holds the same value in objects a and b. */
static bool same_value(const field *f, const void *a, const void *b) {
    const void *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
    switch (f->type) {
    case T_STR:
    case T_EXPR:
    case T_ENUM:
    case T_TOD:
    case T_UTCOFF: return same_text(*(char *const *)pa, *(char *const *)pb);
    case T_INT:
    case T_DUR: return *(const int64_t *)pa == *(const int64_t *)pb;
    case T_NUM: return *(const double *)pa == *(const double *)pb;
    case T_PASS: {
        size_t na = *(const size_t *)((const char *)a + f->count_off), nb = *(const size_t *)((const char *)b + f->count_off);
        const md_kv *ka = *(md_kv *const *)pa, *kb = *(md_kv *const *)pb;
        if (na != nb) return false;
        for (size_t k = 0; k < na; k++)
            if (!same_text(ka[k].key, kb[k].key) || !same_text(ka[k].value, kb[k].value)) return false;
        return true;
    }
    case T_OBJ:
    case T_ARR:
    case T_NUMMAP: return true; /* objects are compared field by field; no restart-only arrays or maps */
    }
    return true;
}

static bool restart_change(const table *t, const char *prefix, const void *a, const void *b, char *key, size_t n) {
    for (size_t i = 0; i < t->n; i++) {
        const field *f = &t->fields[i];
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        if (f->type == T_OBJ && restart_change(f->sub, path, (const char *)a + f->off, (const char *)b + f->off, key, n)) return true;
        if ((f->flags & F_RESTART) && !same_value(f, a, b)) {
            snprintf(key, n, "%s", path);
            return true;
        }
    }
    return false;
}

bool md_config_restart_change(const md_config *a, const md_config *b, char *key, size_t key_size) {
    return restart_change(&root_table, "", a, b, key, key_size);
}

typedef struct env_visit {
    void (*fn)(void *ctx, const char *name, const char *key);
    void *ctx;
} env_visit;

static void visit_env(void *ctx, const char *path, const field *f) {
    env_visit *ev = ctx;
    if (f->env) ev->fn(ev->ctx, f->env, path);
}

static void walk(const table *t, const char *prefix, void (*fn)(void *ctx, const char *path, const field *f), void *ctx);

void md_config_foreach_env(void (*fn)(void *ctx, const char *name, const char *key), void *ctx) {
    env_visit ev = {fn, ctx};
    walk(&root_table, "", visit_env, &ev);
}

md_config *md_config_load_string(const char *json, const char *name, char *errstr, size_t errstr_size) {
    loader L = {.file = name, .err = errstr, .errsz = errstr_size};
    char perr[512];
    yajl_val root = yajl_tree_parse(json, perr, sizeof(perr));
    if (!root) {
        /* yajl's message spans lines; keep the first two for one readable error. */
        char *nl = strchr(perr, '\n');
        if (nl && (nl = strchr(nl + 1, '\n'))) *nl = '\0';
        lerr(&L, "$", "not valid JSON: %s", perr);
        return NULL;
    }
    md_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(name))) {
        free(cfg);
        yajl_tree_free(root);
        lerr(&L, "$", "out of memory");
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) lerr(&L, "$", "expected an object at the top level");
    else if (load_object(&L, &root_table, root, cfg, "$") && apply_env(&L, cfg)) {
        char rerr[768];
        cfg->rules = md_rules_compile(cfg, rerr, sizeof(rerr));
        if (!cfg->rules) snprintf(errstr, errstr_size, "%s: %s", name, rerr), L.failed = true;
    }
    yajl_tree_free(root);
    if (L.failed) {
        md_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

md_config *md_config_load(const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > 16u << 20) {
                snprintf(errstr, errstr_size, "%s: larger than 16 MiB", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(errstr, errstr_size, "%s: out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        snprintf(errstr, errstr_size, "%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0'; /* yajl_tree_parse needs NUL-terminated text */
    if (strlen(buf) != len) {
        snprintf(errstr, errstr_size, "%s: contains a NUL byte", path);
        free(buf);
        return NULL;
    }
    md_config *cfg = md_config_load_string(buf, path, errstr, errstr_size);
    free(buf);
    return cfg;
}

/* ------------------------------------------------------------------------- */
/* Reference                                                                  */

static const char *type_text(const field *f, char *buf, size_t n) {
    switch (f->type) {
    case T_STR: return "string";
    case T_EXPR: return "expression";
    case T_INT: return "integer";
    case T_NUM: return "number";
    case T_DUR: return "duration";
    case T_TOD: return "HH:MM";
    case T_UTCOFF: return "UTC offset";
    case T_OBJ: return "object";
    case T_ARR: return "array of objects";
    case T_PASS: return "object of strings";
    case T_NUMMAP: return "object of numbers";
    case T_ENUM: snprintf(buf, n, "one of `%s`", f->choices); return buf;
    }
    return "?";
}

static void fmt_bound(const field *f, char *buf, size_t n) {
    if (f->type == T_INT || f->type == T_NUM) snprintf(buf, n, "%g – %g", f->lo, f->hi);
    else if (f->type == T_DUR) snprintf(buf, n, "%g ms – %g ms", f->lo, f->hi);
    else buf[0] = '\0';
}

typedef void (*visit_fn)(void *ctx, const char *path, const field *f);

static void walk(const table *t, const char *prefix, visit_fn fn, void *ctx) {
    for (size_t i = 0; i < t->n; i++) {
        const field *f = &t->fields[i];
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s%s", prefix, *prefix ? "." : "", f->key, f->type == T_ARR ? "[]" : "");
        fn(ctx, path, f);
        if (f->type == T_OBJ || f->type == T_ARR) walk(f->sub, path, fn, ctx);
    }
}

static void print_row(void *ctx, const char *path, const field *f) {
    FILE *out = ctx;
    char tb[128], bb[64];
    const char *def = f->def == NULL ? "*required*" : (f->type == T_OBJ || f->type == T_ARR || f->type == T_PASS || f->type == T_NUMMAP) ? "" : f->def;
    fmt_bound(f, bb, sizeof(bb));
    char envb[80] = "";
    if (f->env) snprintf(envb, sizeof(envb), "`%s`", f->env);
    fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s | %s |\n", path, type_text(f, tb, sizeof(tb)), *def && f->def ? "`" : "",
            *def && f->def ? (*def ? def : "\"\"") : def, *def && f->def ? "`" : "", bb, (f->flags & F_RESTART) ? "restart" : "yes",
            envb, f->doc);
}

void md_config_print_reference(FILE *out) {
    fprintf(out, "# momentd configuration reference\n\n"
                 "Generated by `momentd config-doc` from the tables the loader itself uses; do not edit by hand.\n"
                 "Unknown keys are rejected. Durations are strings such as `\"90d\"`, `\"12h\"`, `\"30m\"`, `\"45s\"`, `\"250ms\"`.\n"
                 "*Reload*: `yes` takes effect at the next batch after SIGHUP; `restart` needs a restart (a reload that "
                 "changes it is refused and names the key). *Environment*: the variable that, when set and not empty, "
                 "overrides the file's value. Any string value written as `\"${env:NAME}\"` or "
                 "`\"${file:PATH}\"` (the whole value) is replaced by that environment variable, or by that file's contents "
                 "without a trailing newline; a variable that is not set or a file that cannot be read is an error.\n\n"
                 "| key | type | default | bounds | reload | environment | meaning |\n|---|---|---|---|---|---|---|\n");
    walk(&root_table, "", print_row, out);
}

typedef struct key_visit {
    void (*fn)(void *ctx, const char *path);
    void *ctx;
} key_visit;

static void visit_key(void *ctx, const char *path, const field *f) {
    (void)f;
    key_visit *kv = ctx;
    kv->fn(kv->ctx, path);
}

void md_config_foreach_key(void (*fn)(void *ctx, const char *path), void *ctx) {
    key_visit kv = {fn, ctx};
    walk(&root_table, "", visit_key, &kv);
}

void md_config_print_summary(const md_config *cfg, FILE *out) {
    fprintf(out, "%s: OK\n", cfg->path);
    fprintf(out, "  kafka     %s  group %s\n", cfg->kafka.brokers, cfg->kafka.group_id);
    fprintf(out, "  inputs    %s, %s, %s, %s\n", cfg->kafka.topic_payments, cfg->kafka.topic_calls,
            cfg->kafka.topic_app_logins, cfg->kafka.topic_profiles);
    fprintf(out, "  outputs   dead letters %s, holdout %s\n", cfg->kafka.topic_dead_letter, cfg->kafka.topic_holdout);
    char url[512];
    md_redact_url(cfg->redis.url, url, sizeof(url));
    fprintf(out, "  redis     %s  prefix %s%s\n", url, cfg->redis.key_prefix, cfg->redis.password && *cfg->redis.password ? "  (password set)" : "");
    fprintf(out, "  signals   %zu   windows %zu   tags %zu\n", cfg->n_signals, cfg->n_windows, cfg->n_tags);
    fprintf(out, "  channels ");
    for (size_t i = 0; i < cfg->n_channels; i++) fprintf(out, " %s->%s", cfg->channels[i].name, cfg->channels[i].topic);
    fprintf(out, "\n");
    for (size_t i = 0; i < cfg->n_campaigns; i++) {
        const md_cfg_campaign *c = &cfg->campaigns[i];
        fprintf(out, "  campaign  %-16s model %s, %zu features, threshold %.2f (re-arm < %.2f), cooldown %s", c->name,
                c->model.version, c->model.n_features, c->threshold, c->rearm_below, c->cooldown.mode);
        if (strcmp(c->cooldown.mode, "fixed") == 0) fprintf(out, " %.0fd", c->cooldown.fixed_days);
        else fprintf(out, " %.0f-%.0fd", c->cooldown.min_days, c->cooldown.max_days);
        fprintf(out, ", holdout %.1f%%, routes:", c->holdout_pct);
        for (size_t r = 0; r < c->n_routes; r++) fprintf(out, " %s", c->routes[r].channel);
        fprintf(out, "\n");
        for (size_t a = 0; a < c->n_arms; a++) {
            const md_cfg_cooldown *cd = &c->arms[a].cooldown;
            fprintf(out, "            arm %-12s %5.1f%% of customers, cooldown %s", c->arms[a].name, c->arms[a].share_pct, cd->mode);
            if (strcmp(cd->mode, "fixed") == 0) fprintf(out, " %.0fd\n", cd->fixed_days);
            else fprintf(out, " %.0f-%.0fd\n", cd->min_days, cd->max_days);
        }
    }
}

void md_redact_url(const char *url, char *out, size_t n) {
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (!at || (slash && slash < at)) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s***@%s", (int)(host - url), url, at + 1);
}

bool md_config_key_is_secret(const char *key) {
    static const char *const words[] = {"password", "secret", "sasl.jaas", "sasl.oauthbearer.config", "ssl.key.pem", "private"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(key, words[i])) return true;
    return false;
}
