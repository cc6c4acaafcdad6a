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
 * The machinery that walks tables (loading, defaults, bounds, environment
 * overrides, the reload rule, the reference rows) is table.c, shared with
 * the simulator's scenario files. */
#include "momentd/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "rules.h"
#include "table.h"

/* The table's last columns (flags, env) are optional: a row that leaves them
 * out gets 0 and NULL, which is what an initializer does anyway. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MS_DAY 86400000.0
#define MS_HOUR 3600000.0

/* ---- kafka ---- */
static const md_field kafka_fields[] = {
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
    DUR(md_cfg_kafka, "delivery_timeout", delivery_timeout_ms, "30s", 1000, 3600000, "How long a moment (or dead letter) waits for Kafka's acknowledgement before it is reported failed and produced again (librdkafka's message.timeout.ms, which kafka.producer may still set).", F_RESTART),
    DUR(md_cfg_kafka, "align_slack", align_slack_ms, "1h", 0, MS_DAY, "Event-time alignment of the input topics: a partition whose next event is more than this ahead of the earliest next event among the assigned partitions of the same number (co-partitioned topics put a customer's events under one number) waits for them, the way Kafka Streams picks the earliest record among a task's partitions, so that a backlog (a bootstrap on topics that hold history, a restart after a long stop, a replay) is read in event-time order across topics and no event falls behind limits.max_lateness because another topic ran ahead. Must be below limits.max_lateness. 0: the topics are read independently (a backlog of one topic can then run weeks ahead of another)."),
    DUR(md_cfg_kafka, "align_wait", align_wait_ms, "1s", 0, 60000, "How long the alignment waits for a partition that has nothing fetched yet but is not at its end (its next event may be the earliest) before reading the others without it; counted in momentd_align_gave_up_total. A partition at its end never holds the others back."),
    NUM(md_cfg_kafka, backlog_share, "0.04", 0.001, 1, "The most of a batch (limits.batch_size) a partition with a backlog takes while another partition is live (a message in the last 10 seconds, and less than that share waiting): a flood on one partition (a hot customer, a producer catching up) then costs the live partitions' events one short batch, not one of limits.batch_size of the flood's. 1: no limit. When every partition has a backlog (a bootstrap, a restart after a long stop) batches fill whatever this is."),
    NUM(md_cfg_kafka, backlog_time_share, "0.5", 0.05, 1, "The most of momentd's time a partition with a backlog takes while another partition is receiving (it had caught up and a message came since, in the last 10 seconds): after a batch with the backlog's messages, the backlog waits (1/share - 1) times that batch's time, and the loop is free for the live partitions meanwhile; a flood on one partition is then read at about this share of full speed (those behind it on its partition number wait that much longer) and leaves the machine room for everyone else's events. Each wait is counted in momentd_backlog_held_total. 1: read a backlog flat out. A bootstrap or a restart after a long stop, where nothing is receiving, is never paced."),
    PASS(md_cfg_kafka, "common", common, n_common, "librdkafka properties for the consumer and the producer alike (security.protocol, sasl.*, ssl.*), passed through unchanged; the value of a secret property (*password*, *secret*, sasl.jaas.*, ssl.key.pem, ...) may be \"${env:NAME}\" or \"${file:PATH}\".", F_RESTART, NULL, md_config_key_is_secret),
    PASS(md_cfg_kafka, "consumer", consumer, n_consumer, "librdkafka consumer properties, passed through unchanged (e.g. \"fetch.min.bytes\"). Unless set here, momentd sets queued.min.messages 2000, queued.max.messages.kbytes 512 (a partition's prefetch: each is read from its own queue) and fetch.message.max.bytes 131072 (a fetch response, every partition of a broker in one, is parsed whole: with librdkafka's 1 MB a backlog appearing at once held the live partitions' messages back).", F_RESTART, NULL, md_config_key_is_secret),
    PASS(md_cfg_kafka, "producer", producer, n_producer, "librdkafka producer properties, passed through unchanged (e.g. \"linger.ms\").", F_RESTART, NULL, md_config_key_is_secret),
};
static const md_table kafka_table = {"kafka", kafka_fields, NF(kafka_fields)};

/* ---- redis ---- */
static const md_field redis_fields[] = {
    STR(md_cfg_redis, url, "redis://127.0.0.1:6379/0", "redis://[[USER]:PASSWORD@]host:port[/db], rediss:// for TLS, or redis+cluster://[[USER]:PASSWORD@]host:port[,host:port...] for a Redis Cluster (seed nodes; database 0), rediss+cluster:// for a cluster over TLS; USER is a Redis ACL user (AUTH USER PASSWORD). Secret: may be \"${env:NAME}\" or \"${file:PATH}\".", F_RESTART | F_SECRET, "MOMENTD_REDIS_URL"),
    STR(md_cfg_redis, password, "", "Redis AUTH password (overrides one in the URL); write \"${env:NAME}\" or \"${file:PATH}\" to keep it out of the file. Never logged.", F_RESTART | F_SECRET, "MOMENTD_REDIS_PASSWORD"),
    STR(md_cfg_redis, key_prefix, "md", "Prefix of every key momentd writes; backtests use another one.", F_RESTART),
    STR(md_cfg_redis, tls_ca_file, "", "rediss://: PEM file of the CA that signs Redis's certificate; empty = the system's CAs.", F_RESTART),
    STR(md_cfg_redis, tls_cert_file, "", "rediss://: client certificate (PEM) for a Redis with tls-auth-clients; empty = none.", F_RESTART),
    STR(md_cfg_redis, tls_key_file, "", "rediss://: the client certificate's private key (PEM file); empty = in tls_cert_file.", F_RESTART),
    STR(md_cfg_redis, tls_server_name, "", "rediss://: the name (DNS or IP) Redis's certificate must carry; empty = the URL's host.", F_RESTART),
    DUR(md_cfg_redis, "timeout", timeout_ms, "5s", 10, 600000, "Connect and command timeout.", F_RESTART),
    DUR(md_cfg_redis, "retry_backoff", retry_backoff_ms, "500ms", 10, 60000, "Wait between reconnection attempts while Redis is down."),
    INT(md_cfg_redis, wait_replicas, "0", 0, 16, "After a batch's applies, wait (Redis WAIT, on every primary) until this many replicas hold them before the moments go out and the offsets are committed, so that a primary killed and replaced by its replica loses nothing acknowledged. 0: don't wait (a failover may lose the last writes of the dead primary). A batch not replicated within wait_timeout is redone, so a primary left without enough replicas holds the stream until one is back.", F_RESTART),
    DUR(md_cfg_redis, "wait_timeout", wait_timeout_ms, "1s", 1, 60000, "Longest WAIT for redis.wait_replicas before the batch is redone.", F_RESTART),
    INT(md_cfg_redis, state_cache_mb, "96", 0, 65536, "Megabytes of customers' state hashes kept in memory as momentd last read or wrote them, so that a customer seen again needs no read from Redis (least recently used out first; about 550-600 B a customer of bench/run's load, so 96 MB hold about 170,000). momentd's RSS grows by about this much once it is full, beside 100-110 MB of its own at 100,000 customers (the consumer's prefetch, the batch: docs/OPERATIONS.md, the state cache). Safe with other writers: every apply is conditional on the version its decision read, and a stale entry is dropped and the batch read again. 0: read every customer from Redis every batch.", F_RESTART),
};
static const md_table redis_table = {"redis", redis_fields, NF(redis_fields)};

/* ---- limits ---- */
static const md_field limits_fields[] = {
    INT(md_cfg_limits, max_message_bytes, "65536", 256, 16777216, "Larger messages are dead-lettered as too_large."),
    INT(md_cfg_limits, max_future_skew_s, "300", 0, 86400, "Events further ahead of the clock are dead-lettered."),
    INT(md_cfg_limits, max_pages, "64", 0, 64, "Most page ids in one app_login."),
    INT(md_cfg_limits, max_depth, "16", 2, 64, "Deepest JSON nesting accepted in an event."),
    INT(md_cfg_limits, batch_size, "2000", 1, 10000, "Most messages processed per batch (one Redis round trip each way)."),
    DUR(md_cfg_limits, "max_lateness", max_lateness_ms, "7d", 0, 90 * MS_DAY, "How far behind a customer's newest event a late event may be and still be counted."),
    INT(md_cfg_limits, max_profile_attrs, "32", 1, 256, "Most attributes kept per profile."),
    INT(md_cfg_limits, dead_letter_max_bytes, "65536", 256, 16777216, "Most bytes of a rejected message its dead letter carries; a longer one is cut and carries momentd.truncated_from and momentd.sha256 of the original."),
    DUR(md_cfg_limits, "schedule_every", schedule_every_ms, "1s", 0, 3600000, "How often this instance decides the customers the schedule holds due (a cooldown, quiet hours, a blackout or a cap that ended); 0: this instance runs no schedule (its customers are still decided at their next event)."),
    INT(md_cfg_limits, dead_letters_per_second, "1000", 0, 1000000, "Most dead letters produced per second (bursts of a second's worth); beyond it bad messages are skipped without one and counted in momentd_dead_letters_dropped_total (0: no limit)."),
};
static const md_table limits_table = {"limits", limits_fields, NF(limits_fields)};

static const md_field dedupe_fields[] = {
    DUR(md_cfg_dedupe, "event_id_horizon", event_id_horizon_ms, "72h", MS_HOUR, 30 * MS_DAY, "A re-published event_id is recognised while it is this close (in event time) to the customer's newest event; never less than limits.max_lateness, so that an event that can still be counted is always recognised."),
};
static const md_table dedupe_table = {"dedupe", dedupe_fields, NF(dedupe_fields)};

static const md_field log_fields[] = {
    ENUM(md_cfg_log, "level", level, "info", "debug|info|warn|error", "Least severe level written to stderr."),
    DUR(md_cfg_log, "stats_interval", stats_interval_ms, "10s", 100, 3600000, "How often the running totals are logged (one line)."),
};
static const md_table log_table = {"log", log_fields, NF(log_fields)};

static const md_field http_fields[] = {
    STR(md_cfg_http, listen, "127.0.0.1:9464", "IPv4-ADDRESS:PORT of the HTTP endpoint (/metrics, /healthz, /readyz, /api/report, the report page); empty disables it.", F_RESTART),
    INT(md_cfg_http, ready_max_lag, "100000", 0, 1e12, "/readyz answers 503 while any assigned partition lags by more than this many messages (0: lag is not checked)."),
    STR(md_cfg_http, token, "", "Bearer token that /metrics, /api/report and the report page's data need (Authorization: Bearer TOKEN; the page takes it as /#token=TOKEN); /healthz and /readyz stay open for probes. At least 16 characters of A-Z a-z 0-9 - . _ ~ + / =. Empty: no authentication (listen on loopback, or put the reverse proxy of OPERATIONS.md in front). Secret: may be \"${env:NAME}\" or \"${file:PATH}\". Never logged.", F_SECRET, "MOMENTD_HTTP_TOKEN"),
    NUM(md_cfg_http, ready_max_redis_memory, "0.9", 0, 1, "/readyz answers 503 while Redis uses more than this share of its maxmemory (read every 5 s; 0: not checked, nor when Redis has no maxmemory). Under noeviction a full Redis refuses every write: this warns first."),
};
static const md_table http_table = {"http", http_fields, NF(http_fields)};

/* ---- signals, windows, tags ---- */
static const md_field signal_fields[] = {
    STR(md_cfg_signal, name, NULL, "Name windows refer to."),
    ENUM(md_cfg_signal, "type", type, NULL, "payment|call|app_login|any", "Event type selected."),
    EXPR(md_cfg_signal, where, "", "Predicate over the event's fields (amount, kind, late, reason, inbound, pages, ...); empty selects every event of the type."),
};
static const md_table signal_table = {"signal", signal_fields, NF(signal_fields)};

static const md_field window_fields[] = {
    STR(md_cfg_window, name, NULL, "Feature name, e.g. late_payments_180d."),
    STR(md_cfg_window, signal, NULL, "The signal counted."),
    DUR(md_cfg_window, "span", span_ms, NULL, MS_HOUR, 400 * MS_DAY, "Sliding span of event time."),
    DUR(md_cfg_window, "granularity", granularity_ms, "1d", 60000, 31 * MS_DAY, "Bucket width; the window is exact to this."),
    ENUM(md_cfg_window, "sum", sum, "", "|amount|duration_s|session_s", "Empty counts events; otherwise sums this field."),
};
static const md_table window_table = {"window", window_fields, NF(window_fields)};

static const md_field tag_fields[] = {
    STR(md_cfg_tag, name, NULL, "Tag name, usable in later expressions as 0/1."),
    ENUM(md_cfg_tag, "class", class_, "rule", "statistical|rule|mined", "statistical copies a profile attribute; rule and mined evaluate expr."),
    STR(md_cfg_tag, category, "", "Grouping shown by explain (tag_categories)."),
    STR(md_cfg_tag, label, "", "Human label (any language)."),
    EXPR(md_cfg_tag, expr, "", "rule: over windows, balance, recency, profile.*, earlier tags; mined: may also read score.<campaign>."),
    STR(md_cfg_tag, attribute, "", "statistical: the profile attribute; the tag is attribute:value."),
};
static const md_table tag_table = {"tag", tag_fields, NF(tag_fields)};

/* ---- model ---- */
static const md_field static_fields[] = {
    STR(md_cfg_static, attribute, NULL, "Profile attribute."),
    NUMMAP(md_cfg_static, "offsets", offsets, n_offsets, "Log-odds offset per attribute value; other values add 0."),
};
static const md_table static_table = {"static offset", static_fields, NF(static_fields)};

static const md_field feature_fields[] = {
    STR(md_cfg_feature, name, NULL, "Name shown in reasons."),
    EXPR(md_cfg_feature, expr, NULL, "Value of the feature (no value counts as 0)."),
    ENUM(md_cfg_feature, "transform", transform, "none", "none|log1p", "Applied after the cap."),
    NUM(md_cfg_feature, cap, "1e9", -1e9, 1e9, "Upper bound applied to the value before the transform."),
    NUM(md_cfg_feature, weight, NULL, -100, 100, "Log-odds weight."),
    STR(md_cfg_feature, note, "", "Why this weight: free text for reviewers, ignored by the engine."),
};
static const md_table feature_table = {"feature", feature_fields, NF(feature_fields)};

static const md_field model_fields[] = {
    STR(md_cfg_model, version, NULL, "Model version carried by every trigger."),
    NUM(md_cfg_model, intercept, "0", -100, 100, "Log-odds intercept."),
    ARR(md_cfg_model, "static", statics, n_statics, static_table, md_cfg_static, "", "Static tier: offsets by profile attribute."),
    ARR(md_cfg_model, "features", features, n_features, feature_table, md_cfg_feature, NULL, "Dynamic part: weighted features."),
    INT(md_cfg_model, top_reasons, "3", 1, 16, "Contributions carried as reasons."),
};
static const md_table model_table = {"model", model_fields, NF(model_fields)};

static const md_field cooldown_fields[] = {
    ENUM(md_cfg_cooldown, "mode", mode, "adaptive", "adaptive|fixed",
         "fixed: the old rule, never again within fixed_days; adaptive: the gap falls out of the contact's expected value (docs/SPEC.md section 6)."),
    NUM(md_cfg_cooldown, fixed_days, "45", 0, 3650, "Gap of the fixed mode."),
    NUM(md_cfg_cooldown, min_days, "3", 0, 3650, "adaptive: shortest gap, reached at demand peaks."),
    NUM(md_cfg_cooldown, max_days, "45", 0, 3650, "adaptive: the gap at the threshold; never longer (the baseline rule it replaces)."),
    NUM(md_cfg_cooldown, recovery_days, "30", 0.01, 365, "adaptive: how fast response recovers after a contact (see recovery)."),
    NUM(md_cfg_cooldown, repeat_penalty, "0.5", 0, 1, "adaptive: the share of response a contact made just now takes away."),
    ENUM(md_cfg_cooldown, "recovery", recovery, "exponential", "exponential|window",
         "adaptive: the shape of that recovery. exponential: a contact d days ago leaves 1 - repeat_penalty * exp(-d / recovery_days) of the response; window: a contact within the last recovery_days leaves 1 - repeat_penalty of it whatever its age, an older one fades as in exponential (customers who tire of the contacts of the last month, the way contact caps count them); inside the window only a peak worth a tired customer is contacted again."),
};
static const md_table cooldown_table = {"cooldown", cooldown_fields, NF(cooldown_fields)};

static const md_field arm_fields[] = {
    STR(md_cfg_arm, name, NULL, "Arm name, carried by triggers and the report."),
    NUM(md_cfg_arm, share_pct, NULL, 0, 100, "Share of the campaign's customers (stable hash) in this arm; the arms' shares sum to 100."),
    OBJ(md_cfg_arm, "cooldown", cooldown, cooldown_table, "The contact policy of this arm, in place of the campaign's cooldown."),
    OBJ(md_cfg_arm, "model", model, model_table, "A model for this arm's customers in place of the campaign's (a fitted candidate tried live against the running model): the campaign model's features (names, expressions, caps, transforms) and static attributes and levels, with its own version, intercept, weights and offsets.", F_OPTIONAL),
    NUM(md_cfg_arm, threshold, "0", 0, 1, "The arm's threshold (a fitted model's p is on another scale); 0 = the campaign's."),
    NUM(md_cfg_arm, rearm_below, "0", 0, 1, "The arm's re-arm level; 0 = the campaign's."),
};
static const md_table arm_table = {"arm", arm_fields, NF(arm_fields)};

static const md_field follow_up_fields[] = {
    ENUM(md_cfg_follow_up, "after", after, NULL, "sent|delivered|reached|opened|converted|declined|no_answer|complaint|opt_out",
         "The outcome status that starts this follow-up."),
    STRK(md_cfg_follow_up, "from_channel", from_channel, "", "Only after an outcome on this channel; empty = any."),
    STRK(md_cfg_follow_up, "channel", channel, NULL, "The channel of the follow-up (its caps and quiet hours apply)."),
    DUR(md_cfg_follow_up, "gap", gap_ms, "0", 0, 30 * MS_DAY, "How long after the outcome the follow-up may be delivered (its not_before)."),
};
static const md_table follow_up_table = {"follow_up", follow_up_fields, NF(follow_up_fields)};

static const md_field route_fields[] = {
    STR(md_cfg_route, channel, NULL, "A channel of the channels section."),
    EXPR(md_cfg_route, when, "", "Condition (features, tags, event.*); first matching route wins; empty always matches."),
};
static const md_table route_table = {"route", route_fields, NF(route_fields)};

static const md_field campaign_fields[] = {
    STR(md_cfg_campaign, name, NULL, "Campaign name, carried by triggers."),
    EXPR(md_cfg_campaign, eligible, "", "Who may be contacted at all (tags); empty = everyone."),
    EXPR(md_cfg_campaign, fire_on, "", "Which events may fire the campaign (event.type, event.reason, ...); empty = any."),
    NUM(md_cfg_campaign, threshold, NULL, 0, 1, "Score that fires on an upward crossing."),
    NUM(md_cfg_campaign, rearm_below, NULL, 0, 1, "After firing, the campaign re-arms only when the score falls below this (or at once after no_answer, not_called or expired)."),
    NUM(md_cfg_campaign, conversion_value, "1000", 0, 1e9, "What one conversion is worth, yuan: the contact's expected value is p x this, less costs."),
    NUM(md_cfg_campaign, unwanted_cost, "0", 0, 1e9, "What a contact the customer did not want costs (complaint and opt-out risk), yuan, weighed by 1 - p: low-p contacts become worth nothing (low_value), higher-p ones gain against the threshold."),
    DUR(md_cfg_campaign, "skip_after_conversion", skip_after_conversion_ms, "0", 0, 3650 * MS_DAY, "No contact for this long after a conversion of this campaign (its own purchase); 0 = off."),
    NUM(md_cfg_campaign, holdout_pct, "0", 0, 100, "Share of customers (stable hash) recorded on the holdout topic instead of contacted."),
    EXPR(md_cfg_campaign, conversion, "", "Events that count as a conversion of this campaign (over event fields, e.g. kind == \"prepay\"); empty = none observed."),
    DUR(md_cfg_campaign, "attribution", attribution_ms, "30d", MS_DAY / 24, 365 * MS_DAY, "A conversion counts for the campaign's trigger (treated or holdout) at most this long before it."),
    ARR(md_cfg_campaign, "routes", routes, n_routes, route_table, md_cfg_route, NULL, "Channel selection, first match wins."),
    OBJ(md_cfg_campaign, "cooldown", cooldown, cooldown_table, "Adaptive or fixed gap between two contacts of this campaign."),
    ARR(md_cfg_campaign, "arms", arms, n_arms, arm_table, md_cfg_arm, "", "Policy arms: customers split (stable hash) between contact policies, compared in the report."),
    ARR(md_cfg_campaign, "follow_ups", follow_ups, n_follow_ups, follow_up_table, md_cfg_follow_up, "", "Contacts chained on outcomes (an SMS after a connected call, an in-app message after an unanswered one)."),
    OBJ(md_cfg_campaign, "model", model, model_table, "The demand model."),
    STR(md_cfg_campaign, starts, "", "Event time (RFC 3339) from which the campaign may fire; \"\" = always. Before it, decisions are suppressed as not_started."),
    STR(md_cfg_campaign, ends, "", "Event time (RFC 3339) from which it no longer fires (suppressed as ended); \"\" = never."),
    ENUM(md_cfg_campaign, "audience", audience, "all", "all|include_list", "Who the campaign may contact: everyone its rules allow, or only the customers on its include list (momentd list --include); its exclude list is never contacted either way."),
    INT(md_cfg_campaign, priority, "0", -1000, 1000, "Campaigns are decided for a customer highest priority first (file order among equals): a contact one makes counts for the caps of the next."),
    STR(md_cfg_campaign, note, "", "Free text for reviewers, ignored by the engine."),
};
static const md_table campaign_table = {"campaign", campaign_fields, NF(campaign_fields)};

static const md_field cap_fields[] = {
    INT(md_cfg_cap, max, NULL, 0, 1000, "Most contacts in the rolling span."),
    DUR(md_cfg_cap, "per", per_ms, NULL, 60000, 400 * MS_DAY, "Rolling span (never calendar days)."),
    ENUM(md_cfg_cap, "scope", scope, "customer", "customer|contact_point", "Counted per customer or per contact point (profile attribute contact_point)."),
};
static const md_table cap_table = {"cap", cap_fields, NF(cap_fields)};

static const md_field capacity_fields[] = {
    INT(md_cfg_capacity, max, NULL, 0, 100000000, "Most moments the channel's subscriber takes in one slot (0: none)."),
    DUR(md_cfg_capacity, "per", per_ms, NULL, 1000, 31 * MS_DAY, "The slot: calendar periods of this length from midnight in contact_policy.default_utc_offset (1h: each hour, 1d: each day)."),
};
static const md_table capacity_table = {"capacity", capacity_fields, NF(capacity_fields)};

static const md_field channel_fields[] = {
    STR(md_cfg_channel, name, NULL, "outbound_call, in_app, sms, ..."),
    STR(md_cfg_channel, topic, NULL, "Topic the channel's subscriber reads."),
    TOD(md_cfg_channel, quiet_start, "00:00", "Start of quiet hours, customer's local time."),
    TOD(md_cfg_channel, quiet_end, "00:00", "End of quiet hours; equal to start means none."),
    DUR(md_cfg_channel, "fresh_for", fresh_for_ms, NULL, 60000, 3650 * MS_DAY, "A moment expires this long after its event (expires_at); one that would be emitted after that is not emitted (stale): a replayed history or a lagging consumer never reaches the dialer with last summer's needs."),
    NUM(md_cfg_channel, contact_cost, "0", 0, 1e9, "What one contact on this channel costs, yuan (an agent's call, an SMS); subtracted from its expected value."),
    ARR(md_cfg_channel, "caps", caps, n_caps, cap_table, md_cfg_cap, NULL, "Per-customer caps on this channel."),
    ARR(md_cfg_channel, "capacity", capacity, n_capacity, capacity_table, md_cfg_capacity, "", "What the channel's subscriber can take (a call centre's calls per hour and per day), across customers and campaigns: a moment beyond it is held (held_capacity) and comes back when the slot ends, the most valuable first. At most 4 limits; none: no limit."),
    ENUM(md_cfg_channel, "confirm", confirm, "emitted", "emitted|sent", "What makes a moment a contact (its cooldown, its caps): emitted, the moment itself; sent, the channel's report of it. With sent, a moment counts from its emission until its freshness (fresh_for) ends, and is then released as expired unless the channel reported on it (sent, or any later status): for a dialer that reports sent, so that moments it never got to cost no cooldown."),
    STR(md_cfg_channel, consent, "", "Profile attribute that must grant consent for this channel (\"true\", \"yes\", \"1\" or \"granted\"; anything else or absent: the route is skipped as no_consent); \"\" = no consent needed."),
};
static const md_table channel_table = {"channel", channel_fields, NF(channel_fields)};

static const md_field contact_fields[] = {
    ARR(md_cfg_contact, "caps", caps, n_caps, cap_table, md_cfg_cap, NULL, "Caps across all campaigns and channels."),
    DUR(md_cfg_contact, "complaint_block", complaint_block_ms, "180d", 0, 3650 * MS_DAY, "No marketing for this long after a complaint."),
    EXPR(md_cfg_contact, blackout_after, "", "Service-recovery events (over event fields) that start a blackout."),
    DUR(md_cfg_contact, "blackout", blackout_ms, "72h", 0, 365 * MS_DAY, "Length of the service-recovery blackout."),
    {"default_utc_offset", T_UTCOFF, offsetof(md_cfg_contact, default_utc_offset), "+08:00", 0, 0,
     "Customer time zone when the profile has no utc_offset.", NULL, 0, 0, NULL},
};
static const md_table contact_table = {"contact_policy", contact_fields, NF(contact_fields)};

static const md_field outcome_fields[] = {
    DUR(md_cfg_outcomes, "horizon", horizon_ms, "30d", MS_DAY, 365 * MS_DAY, "How long after a trigger its outcomes are accepted; later ones, and ones for unknown triggers, are counted and ignored."),
    DUR(md_cfg_outcomes, "hangup_within", hangup_within_ms, "5s", 0, 600000, "A reached call shorter than this (outcome duration_s) counts as a hang-up (fatigue_hangup)."),
    DUR(md_cfg_outcomes, "fatigue_half_life", fatigue_half_life_ms, "30d", MS_DAY / 24, 3650 * MS_DAY, "Fatigue halves this long after it last grew: people forget."),
    NUM(md_cfg_outcomes, fatigue_no_answer, "0.5", 0, 100, "Fatigue added by an unanswered call (the customer may simply have been busy)."),
    NUM(md_cfg_outcomes, fatigue_declined, "1", 0, 100, "Fatigue added by a declined offer."),
    NUM(md_cfg_outcomes, fatigue_hangup, "1.5", 0, 100, "Fatigue added by a call hung up within hangup_within."),
    NUM(md_cfg_outcomes, fatigue_complaint, "3", 0, 100, "Fatigue added by a complaint (an outcome, or an inbound complaint call after a recent contact)."),
    NUM(md_cfg_outcomes, fatigue_penalty, "0.15", 0, 1, "Each unit of fatigue multiplies the probability of a response by (1 - this); both policy modes compare that probability with the threshold."),
};
static const md_table outcome_table = {"outcomes", outcome_fields, NF(outcome_fields)};

static const md_field learning_fields[] = {
    DUR(md_cfg_learning, "keep", keep_ms, "120d", 0, 400 * MS_DAY, "How long each decision record (the model's inputs at a trigger, a holdout decision or a sampled decision not to contact, and whether a conversion followed) is kept for momentd fit; never less than the longest attribution window; 0 = record nothing."),
    INT(md_cfg_learning, max_per_campaign, "12", 1, 64, "At most this many decision records per customer and campaign, so a customer's state stays bounded. At the bound a new record of a decision that was no contact (sampled, or a contact the channel never made) is not kept, and a contact's or a holdout's takes the place of the oldest record of no contact (of the oldest record when none is left): which records are kept must not depend on whether they converted, nor on the decisions after them."),
    NUM(md_cfg_learning, sample_pct, "5", 0, 100, "Share of customers (stable hash) whose decisions not to contact are sampled too: the model's view of customers it does not pick."),
    DUR(md_cfg_learning, "sample_every", sample_every_ms, "7d", MS_DAY / 24, 365 * MS_DAY, "At most one sampled decision per customer and campaign this often."),
    NUM(md_cfg_learning, calibration_bound, "0.05", 0, 1, "A model version whose live calibration error (the largest gap between predicted and observed conversion over its deciles of calibration_min decisions or more, as a share: 0.05 = 5 points) is above this is drifting: momentd report flags it, and the daemon sets momentd_model_drifting and logs a warning; 0 = not checked."),
    INT(md_cfg_learning, calibration_min, "200", 1, 1000000000, "Decisions a decile of predicted p needs before its calibration counts."),
    DUR(md_cfg_learning, "drift_check_every", drift_check_every_ms, "15m", 0, 30 * MS_DAY, "How often the daemon measures each running model on the last 30 days of triggers whose attribution window has closed (from the funnel keys, one pipelined read); 0 = never."),
};
static const md_table learning_table = {"learning", learning_fields, NF(learning_fields)};

static const md_field audit_fields[] = {
    DUR(md_cfg_audit, "keep", keep_ms, "35d", 0, 400 * MS_DAY, "How long each customer's decision audit is kept (momentd explain --history: why (not) contacted on a past day); 0 = none kept. One entry per campaign for each run of decisions that ended the same way (fired, holdout, or the rule that blocked), its last day updated at most once a day."),
    INT(md_cfg_audit, max_per_campaign, "16", 1, 256, "At most this many audit entries per customer and campaign (the oldest go first)."),
    STR(md_cfg_audit, topic, "", "Kafka topic that gets one message per decision (every campaign on every event counted, and every decision of the schedule: fired, holdout or the rule that blocked, with score, p_contact and channel; docs/schemas/decision.schema.json), for a warehouse; \"\" = none. Produced with the batch's moments, before its offsets are committed.", F_RESTART),
};
static const md_table audit_table = {"audit", audit_fields, NF(audit_fields)};

static const md_field privacy_fields[] = {
    DUR(md_cfg_privacy, "forget_tombstone", forget_tombstone_ms, "30d", MS_DAY, 3650 * MS_DAY, "momentd forget leaves a tombstone this long (longer once the customer is active again: it lives as long as their state): their events up to the erasure are not counted again, and profile messages are ignored until an event after it (the compacted profiles topic still holds the old profile: delete it there). Keep it longer than any replay of the input topics."),
};
static const md_table privacy_table = {"privacy", privacy_fields, NF(privacy_fields)};

static const md_field root_fields[] = {
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
    OBJ(md_config, "learning", learning, learning_table, "Decision records for fitting the models (momentd fit)."),
    OBJ(md_config, "privacy", privacy, privacy_table, "Erasure (momentd forget)."),
    OBJ(md_config, "audit", audit, audit_table, "The decision audit (momentd explain --history)."),
    ARR(md_config, "campaigns", campaigns, n_campaigns, campaign_table, md_cfg_campaign, NULL, "Campaigns."),
};
static const md_table root_table = {"configuration", root_fields, NF(root_fields)};

void md_config_destroy(md_config *cfg) {
    if (!cfg) return;
    md_rules_destroy(cfg->rules);
    md_table_free(&root_table, cfg);
    free(cfg->path);
    free(cfg);
}

bool md_config_restart_change(const md_config *a, const md_config *b, char *key, size_t key_size) {
    return md_table_restart_change(&root_table, "", a, b, key, key_size);
}

typedef struct env_visit {
    void (*fn)(void *ctx, const char *name, const char *key);
    void *ctx;
} env_visit;

static void visit_env(void *ctx, const char *path, const md_field *f) {
    env_visit *ev = ctx;
    if (f->env) ev->fn(ev->ctx, f->env, path);
}

void md_config_foreach_env(void (*fn)(void *ctx, const char *name, const char *key), void *ctx) {
    env_visit ev = {fn, ctx};
    md_table_walk(&root_table, "", visit_env, &ev);
}

md_config *md_config_load_string(const char *json, const char *name, char *errstr, size_t errstr_size) {
    md_table_loader L = {.file = name, .err = errstr, .errsz = errstr_size};
    char perr[512];
    yajl_val root = yajl_tree_parse(json, perr, sizeof(perr));
    if (!root) {
        /* yajl's message spans lines; keep the first two for one readable error. */
        char *nl = strchr(perr, '\n');
        if (nl && (nl = strchr(nl + 1, '\n'))) *nl = '\0';
        md_table_fail(&L, "$", "not valid JSON: %s", perr);
        return NULL;
    }
    md_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(name))) {
        free(cfg);
        yajl_tree_free(root);
        md_table_fail(&L, "$", "out of memory");
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) md_table_fail(&L, "$", "expected an object at the top level");
    else if (md_table_load(&L, &root_table, root, cfg, "$") && md_table_apply_env(&L, &root_table, cfg)) {
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

char *md_config_read_text(const char *path, char *errstr, size_t errstr_size) {
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
    return buf;
}

md_config *md_config_load(const char *path, char *errstr, size_t errstr_size) {
    char *buf = md_config_read_text(path, errstr, errstr_size);
    if (!buf) return NULL;
    md_config *cfg = md_config_load_string(buf, path, errstr, errstr_size);
    free(buf);
    return cfg;
}

/* ------------------------------------------------------------------------- */
/* Reference                                                                  */

void md_config_print_reference(FILE *out) {
    fprintf(out, "# momentd configuration reference\n\n"
                 "Generated by `momentd config-doc` from the tables the loader itself uses; do not edit by hand.\n"
                 "Unknown keys are rejected. Durations are strings such as `\"90d\"`, `\"12h\"`, `\"30m\"`, `\"45s\"`, `\"250ms\"`.\n"
                 "*Reload*: `yes` takes effect at the next batch after SIGHUP; `restart` needs a restart (a reload that "
                 "changes it is refused and names the key). *Environment*: the variable that, when set and not empty, "
                 "overrides the file's value. A secret setting written as `\"${env:NAME}\"` or "
                 "`\"${file:PATH}\"` (the whole value) is replaced by that environment variable, or by that file's contents "
                 "without a trailing newline; a variable that is not set or a file that cannot be read is an error. Secret settings "
                 "are `redis.url`, `redis.password` and librdkafka properties whose names mark them secret; a reference "
                 "anywhere else is refused.\n\n"
                 "| key | type | default | bounds | reload | environment | meaning |\n|---|---|---|---|---|---|---|\n");
    md_table_print_rows(&root_table, out, true);
}

typedef struct key_visit {
    void (*fn)(void *ctx, const char *path);
    void *ctx;
} key_visit;

static void visit_key(void *ctx, const char *path, const md_field *f) {
    (void)f;
    key_visit *kv = ctx;
    kv->fn(kv->ctx, path);
}

void md_config_foreach_key(void (*fn)(void *ctx, const char *path), void *ctx) {
    key_visit kv = {fn, ctx};
    md_table_walk(&root_table, "", visit_key, &kv);
}

/* A cooldown in the summary: "45d", or "3-45d, recovery window 30d". */
static void print_cooldown_span(FILE *out, const md_cfg_cooldown *cd) {
    if (strcmp(cd->mode, "fixed") == 0) fprintf(out, " %.0fd", cd->fixed_days);
    else fprintf(out, " %.0f-%.0fd, recovery %s %gd", cd->min_days, cd->max_days, cd->recovery, cd->recovery_days);
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
    /* What limits a channel across customers, and what makes its contact. */
    for (size_t i = 0; i < cfg->n_channels; i++) {
        const md_cfg_channel *ch = &cfg->channels[i];
        bool sent = cfg->rules->channels[i].confirm_sent;
        if (!ch->n_capacity && !sent) continue;
        fprintf(out, "  channel   %-16s", ch->name);
        if (ch->n_capacity) fprintf(out, " capacity");
        for (size_t k = 0; k < ch->n_capacity; k++)
            fprintf(out, " %lld per %.0fs", (long long)ch->capacity[k].max, (double)ch->capacity[k].per_ms / 1000.0);
        if (sent) fprintf(out, "%s a contact once the channel reports sent", ch->n_capacity ? "," : "");
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < cfg->n_campaigns; i++) {
        const md_cfg_campaign *c = &cfg->campaigns[i];
        fprintf(out, "  campaign  %-16s model %s, %zu features, threshold %g (re-arm < %g), cooldown %s", c->name,
                c->model.version, c->model.n_features, c->threshold, c->rearm_below, c->cooldown.mode);
        print_cooldown_span(out, &c->cooldown);
        fprintf(out, ", holdout %.1f%%, routes:", c->holdout_pct);
        for (size_t r = 0; r < c->n_routes; r++) fprintf(out, " %s", c->routes[r].channel);
        fprintf(out, "\n            priority %lld, starts %s, ends %s\n", (long long)c->priority, *c->starts ? c->starts : "always",
                *c->ends ? c->ends : "never");
        for (size_t a = 0; a < c->n_arms; a++) {
            const md_cfg_cooldown *cd = &c->arms[a].cooldown;
            fprintf(out, "            arm %-12s %5.1f%% of customers, cooldown %s", c->arms[a].name, c->arms[a].share_pct, cd->mode);
            print_cooldown_span(out, cd);
            const md_cfg_arm *arm = &c->arms[a];
            if (arm->model.version)
                fprintf(out, ", model %s, threshold %g (re-arm < %g)", arm->model.version, arm->threshold > 0 ? arm->threshold : c->threshold,
                        arm->rearm_below > 0 ? arm->rearm_below : c->rearm_below);
            fprintf(out, "\n");
        }
    }
}

/* The credentials end at the last '@': a host or a database number never
 * holds one, a password may hold '@' and '/' both (cutting at the first '@',
 * or stopping at a '/', printed part or all of it). */
void md_redact_url(const char *url, char *out, size_t n) {
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strrchr(host, '@');
    if (!at) {
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
