/* run.c: `momentd run`, the daemon: Kafka in, the batch runner, Kafka out.
 *
 * Its own jobs are the Kafka edges of a batch and the process around it:
 *   - poll up to limits.batch_size messages and hand each to the batch
 *     (batch.h), which parses it; what it refuses becomes a dead letter
 *     (the original bytes, cut to what the producer may send, with the
 *     reason and the source in headers);
 *   - run the batch (read, decide, apply with the version check) with a sink
 *     that produces its outbox and the dead letters with the idempotent
 *     producer and waits for every acknowledgement;
 *   - commit the batch's offsets only then, so that a crash anywhere before
 *     redelivers the batch, whose re-applied inputs are no-ops;
 *   - wait and retry while Redis or Kafka is down, publish the counters for
 *     /metrics, reload the configuration on SIGHUP between batches.
 *
 * Why 700 lines: these are the Kafka edges of one process (rebalances,
 * topic creation and look-up, dead letters cut to what the producer may
 * send, produce-until-acknowledged, commits, lag for /readyz) around a loop
 * whose batch logic lives in batch.c; each part is short and they share
 * the daemon's handle. */
#include "run.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "log.h"
#include "momentd/engine.h"
#include "momentd/event.h"
#include "http.h"
#include "fetch.h"
#include "kafka.h"
#include "report_store.h"
#include "status.h"
#include "store.h"

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms % 1000) * 1000000)};
    nanosleep(&ts, NULL);
}

typedef struct delivery {
    int status; /* 0 pending, 1 delivered, -1 failed */
} delivery;

struct outmsg;

#define MD_MAX_OUTPUT_TOPICS 64

typedef struct daemon {
    md_config *cfg;                  /* owned: the running configuration, replaced on reload */
    volatile sig_atomic_t *stop;
    volatile sig_atomic_t *reload;   /* set by SIGHUP: reload cfg->path between batches */
    rd_kafka_t *consumer;
    md_fetcher *fetcher;             /* owned: reads the consumer's partitions in turn */
    rd_kafka_t *producer;
    md_store *store;
    md_batch *batch;                 /* owned: built for cfg, replaced on reload (batch_bufs) */
    rd_kafka_message_t **msgs;       /* owned: the batch's messages, sized by limits.batch_size */
    size_t n_msgs;                   /* how many of them the running batch holds */
    struct outmsg *dl;               /* owned: the batch's dead letters */
    size_t ndl;
    struct outmsg *out;              /* what the sink produces: dead letters and the outbox */
    size_t cap_out;
    md_counters n;
    int64_t last_stats_ms;
    md_status *status;      /* what /metrics and /readyz read */
    md_status_snapshot snap; /* the daemon's own copy, published once per batch */
    int64_t last_publish_ms;
    int64_t last_ping_ms;
    int64_t last_due_ms; /* the schedule's last pass */
    int64_t last_memory_ms;  /* when Redis's memory was last read */
    int64_t last_models_ms;  /* when the running models were last measured (learning.drift_check_every) */
    int64_t last_control_ms; /* when the run-time control (paused campaigns) was last read */
    uint32_t paused;         /* campaigns paused by an operator, as last read */
    size_t dead_letter_cap; /* most bytes of an original the producer can send in a dead letter */
    double dl_tokens;       /* dead letters that may still be produced now (limits.dead_letters_per_second) */
    int64_t dl_refill_ms;
    rd_kafka_topic_partition_list_t *last_commit; /* the last batch's offsets, committed again at a clean stop */
    rd_kafka_topic_t *outputs[MD_MAX_OUTPUT_TOPICS]; /* owned: topics the producer has looked up (learn_outputs) */
    size_t n_outputs;
} daemon;

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void mono_now(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

/* This process's resident memory and its peak, in bytes, from Linux's
 * /proc/self/status (-1 each where it cannot be read): the figure an
 * operator sizes a container by, with what the state cache holds beside it. */
static void read_own_memory(int64_t *resident, int64_t *peak) {
    *resident = *peak = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long long kb;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) *resident = (int64_t)kb * 1024;
        else if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) *peak = (int64_t)kb * 1024;
    }
    fclose(f);
}

static void publish(daemon *d, bool force);
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* ------------------------------------------------------------------------- */
/* Kafka set-up                                                               */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    delivery *dr = m->_private;
    if (dr) dr->status = m->err ? -1 : 1;
    if (m->err) {
        ((daemon *)opaque)->n.delivery_errors++;
        md_log(MD_LOG_WARN, "kafka", "delivery failed", "topic", rd_kafka_topic_name(m->rkt), "error", rd_kafka_err2str(m->err), NULL);
    }
}

/* Counted for /metrics and logged; otherwise what librdkafka would do
 * without a callback, for the eager and the cooperative protocols alike.
 * Messages of revoked partitions still in hand are never committed by us
 * (the commit fails) and the new owner re-reads them as no-ops. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
    daemon *d = opaque;
    d->n.rebalances++;
    /* NULL before the group chose one: a consumer closed before it ever
     * joined (one that waited for Redis all along) is revoked so. */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    bool cooperative = protocol && strcmp(protocol, "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    char cnt[16];
    snprintf(cnt, sizeof(cnt), "%d", parts ? parts->cnt : 0);
    md_log(MD_LOG_INFO, "kafka", assign ? "partitions assigned" : "partitions revoked", "partitions", cnt, NULL);
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative) e = assign ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
    else ae = rd_kafka_assign(rk, assign ? parts : NULL);
    md_fetcher_rebalance(d->fetcher, parts, assign); /* the partitions' own queues, read in turn */
    if (e) {
        md_log(MD_LOG_ERROR, "kafka", "rebalance failed", "error", rd_kafka_error_string(e), NULL);
        rd_kafka_error_destroy(e);
    } else if (ae) {
        md_log(MD_LOG_ERROR, "kafka", "rebalance failed", "error", rd_kafka_err2str(ae), NULL);
    }
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    md_log(level <= 3 ? MD_LOG_ERROR : level <= 4 ? MD_LOG_WARN : level <= 6 ? MD_LOG_INFO : MD_LOG_DEBUG, "librdkafka", buf,
           "facility", fac, NULL);
}

static rd_kafka_t *make_client(daemon *d, rd_kafka_type_t type) {
    char err[512];
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(d->cfg, type == RD_KAFKA_CONSUMER ? MD_KAFKA_CONSUMER : MD_KAFKA_PRODUCER, NULL, &why);
    if (!conf) {
        md_log(MD_LOG_ERROR, "kafka", "rejected property", "where", why.where, "property", why.property, "error", why.error, NULL);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_opaque(conf, d);
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    } else {
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        md_log(MD_LOG_ERROR, "kafka", "cannot create client", "error", err, NULL);
        rd_kafka_conf_destroy(conf); /* not owned by librdkafka on failure */
        return NULL;
    }
    return rk;
}

/* Writes the names of the topics momentd produces to (dead letters,
 * holdouts, decisions, each channel's) to names, at most max; returns how many. */
static size_t output_topics(const md_config *cfg, const char **names, size_t max) {
    size_t n = 0;
    names[n++] = cfg->kafka.topic_dead_letter;
    names[n++] = cfg->kafka.topic_holdout;
    if (cfg->audit.topic && *cfg->audit.topic) names[n++] = cfg->audit.topic;
    for (size_t i = 0; i < cfg->n_channels && n < max; i++) names[n++] = cfg->channels[i].topic;
    return n;
}

/* Looks up every topic momentd produces to, once, before the first batch
 * needs it: librdkafka looks up a topic it has not seen at most once a
 * second, so the first trigger on each channel after a start or a reload
 * waited about a second for its acknowledgement, and the batch with it
 * (librdkafka issue #3202; seen here as a p99 of 900 ms in the first seconds
 * of bench/run's latency phase). The handles are kept, so the metadata stays
 * cached. Best effort: a topic that cannot be looked up is looked up again
 * when first used. */
static void learn_outputs(daemon *d) {
    const char *names[MD_MAX_OUTPUT_TOPICS];
    size_t n = output_topics(d->cfg, names, MD_MAX_OUTPUT_TOPICS);
    for (size_t i = 0; i < n && d->n_outputs < MD_MAX_OUTPUT_TOPICS; i++) {
        bool known = false;
        for (size_t k = 0; k < d->n_outputs && !known; k++) known = strcmp(rd_kafka_topic_name(d->outputs[k]), names[i]) == 0;
        if (known) continue;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(d->producer, names[i], NULL);
        if (!rkt) continue;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(d->producer, 0, rkt, &md, 5000);
        if (err) md_log(MD_LOG_WARN, "kafka", "cannot look up an output topic yet", "topic", names[i], "error", rd_kafka_err2str(err), NULL);
        else rd_kafka_metadata_destroy(md);
        d->outputs[d->n_outputs++] = rkt;
    }
}

/* Creates missing topics so that a fresh cluster works out of the box.
 * Best effort: an error other than "already exists" is logged, not fatal. */
static void create_topics(daemon *d) {
    const md_config *cfg = d->cfg;
    if (cfg->kafka.create_partitions <= 0) return;
    const char *names[64];
    size_t n = 0;
    names[n++] = cfg->kafka.topic_payments;
    names[n++] = cfg->kafka.topic_calls;
    names[n++] = cfg->kafka.topic_app_logins;
    names[n++] = cfg->kafka.topic_profiles;
    names[n++] = cfg->kafka.topic_outcomes;
    n += output_topics(cfg, names + n, 64 - n);
    rd_kafka_NewTopic_t *topics[64];
    char err[256];
    for (size_t i = 0; i < n; i++) {
        topics[i] = rd_kafka_NewTopic_new(names[i], (int)cfg->kafka.create_partitions, 1, err, sizeof(err));
        if (topics[i] && strcmp(names[i], cfg->kafka.topic_profiles) == 0)
            rd_kafka_NewTopic_set_config(topics[i], "cleanup.policy", "compact");
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(d->producer);
    rd_kafka_CreateTopics(d->producer, topics, n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev) {
        md_log(MD_LOG_WARN, "kafka", "topic creation timed out; continuing", NULL);
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                md_log(MD_LOG_INFO, "kafka", "created topic", "topic", rd_kafka_topic_result_name(tr[i]), NULL);
            else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                md_log(MD_LOG_WARN, "kafka", "cannot create topic", "topic", rd_kafka_topic_result_name(tr[i]), "error",
                       rd_kafka_topic_result_error_string(tr[i]), NULL);
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++) rd_kafka_NewTopic_destroy(topics[i]);
}

/* ------------------------------------------------------------------------- */
/* Producing with acknowledgement                                             */

typedef struct outmsg {
    const char *topic;
    const void *key;
    size_t keylen;
    const void *value;
    size_t len;
    rd_kafka_headers_t *headers; /* owned until produced */
    delivery dr;
} outmsg;

/* Produces every message and waits until Kafka acknowledged all of them,
 * re-producing failures; returns false only when asked to stop before that. */
static bool produce_all(daemon *d, outmsg *m, size_t n) {
    size_t remaining = n;
    for (size_t i = 0; i < n; i++) m[i].dr.status = -1;
    int64_t stop_deadline = 0;
    while (remaining > 0) {
        for (size_t i = 0; i < n; i++) {
            if (m[i].dr.status != -1) continue;
            m[i].dr.status = 0;
            rd_kafka_headers_t *h = m[i].headers ? rd_kafka_headers_copy(m[i].headers) : NULL;
            rd_kafka_resp_err_t err;
            for (;;) {
                err = rd_kafka_producev(d->producer, RD_KAFKA_V_TOPIC(m[i].topic), RD_KAFKA_V_KEY(m[i].key, m[i].keylen),
                                        RD_KAFKA_V_VALUE((void *)m[i].value, m[i].len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&m[i].dr), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
                rd_kafka_poll(d->producer, 100); /* back-pressure: let deliveries drain */
            }
            if (err) {
                if (h) rd_kafka_headers_destroy(h);
                md_log(MD_LOG_WARN, "kafka", "produce failed; retrying", "topic", m[i].topic, "error", rd_kafka_err2str(err), NULL);
                m[i].dr.status = -1;
            }
        }
        /* flush, not poll: it sends what is queued at once instead of
         * waiting out linger.ms, which only adds latency here since the
         * batch's outputs are all produced already. */
        rd_kafka_flush(d->producer, 50);
        remaining = 0;
        bool failed = false;
        for (size_t i = 0; i < n; i++) {
            if (m[i].dr.status != 1) remaining++;
            if (m[i].dr.status == -1) failed = true;
        }
        if (failed) sleep_ms(200);
        if (remaining) publish(d, false); /* a scrape during an outage sees the outbox waiting */
        if (remaining && *d->stop) {
            if (!stop_deadline) stop_deadline = wall_ms() + 10000;
            if (wall_ms() > stop_deadline) return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* Batch                                                                      */

/* A dead letter carries the original bytes, but at most
 * limits.dead_letter_max_bytes of them and never more than the producer may
 * send: a message the broker accepted can still be larger than our
 * producer's message.max.bytes, and a dead letter that cannot be produced
 * would stop the stream behind it for good; and a flood of large bad
 * messages must not become a flood of large dead letters. A cut one says so
 * in momentd.truncated_from (the original value size) and identifies the
 * original by momentd.sha256. */
#define MD_DEAD_LETTER_KEY_MAX 1024
#define MD_DEAD_LETTER_HEADROOM 8192 /* key, headers, record overhead */

static size_t producer_message_max(rd_kafka_t *producer) {
    char v[32];
    size_t n = sizeof(v);
    long long max = 1000000; /* librdkafka's default */
    if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK) max = atoll(v);
    return max > 2 * MD_DEAD_LETTER_HEADROOM ? (size_t)max - MD_DEAD_LETTER_HEADROOM : MD_DEAD_LETTER_HEADROOM;
}

static rd_kafka_headers_t *dead_letter_headers(const rd_kafka_message_t *m, const char *reason, const char *detail, size_t cap) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(7);
    char num[32];
    if (m->len > cap || m->key_len > MD_DEAD_LETTER_KEY_MAX) {
        snprintf(num, sizeof(num), "%zu", m->len);
        rd_kafka_header_add(h, "momentd.truncated_from", -1, num, -1);
        unsigned char md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256(m->payload ? m->payload : (const void *)"", m->len, md);
        for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        rd_kafka_header_add(h, "momentd.sha256", -1, hex, -1);
    }
    rd_kafka_header_add(h, "momentd.reason", -1, reason, -1);
    rd_kafka_header_add(h, "momentd.detail", -1, detail, -1);
    rd_kafka_header_add(h, "momentd.source_topic", -1, rd_kafka_topic_name(m->rkt), -1);
    snprintf(num, sizeof(num), "%" PRId32, m->partition);
    rd_kafka_header_add(h, "momentd.source_partition", -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, m->offset);
    rd_kafka_header_add(h, "momentd.source_offset", -1, num, -1);
    return h;
}

/* Makes m a dead letter of this batch: at most limits.dead_letters_per_second
 * (a token bucket of a second's worth), so that a producer gone wrong cannot
 * flood the dead-letter topic; beyond it the message is skipped all the
 * same, and counted. */
static void dead_letter(daemon *d, const rd_kafka_message_t *m, const char *reason, const char *detail) {
    double rate = (double)d->cfg->limits.dead_letters_per_second;
    if (rate > 0) {
        int64_t t = wall_ms();
        d->dl_tokens += rate * (double)(t - d->dl_refill_ms) / 1000.0;
        if (d->dl_tokens > rate) d->dl_tokens = rate;
        d->dl_refill_ms = t;
        if (d->dl_tokens < 1) {
            if (d->n.dead_letters_dropped++ % 1000 == 0)
                md_log(MD_LOG_WARN, "daemon", "dead letters over limits.dead_letters_per_second are dropped (counted)", "reason", reason,
                       "topic", rd_kafka_topic_name(m->rkt), NULL);
            return;
        }
        d->dl_tokens -= 1;
    }
    size_t cap = d->dead_letter_cap < (size_t)d->cfg->limits.dead_letter_max_bytes ? d->dead_letter_cap
                                                                                   : (size_t)d->cfg->limits.dead_letter_max_bytes;
    outmsg *o = &d->dl[d->ndl++];
    memset(o, 0, sizeof(*o));
    o->topic = d->cfg->kafka.topic_dead_letter;
    o->key = m->key;
    o->keylen = m->key_len > MD_DEAD_LETTER_KEY_MAX ? MD_DEAD_LETTER_KEY_MAX : m->key_len;
    o->value = m->payload;
    o->len = m->len > cap ? cap : m->len;
    o->headers = dead_letter_headers(m, reason, detail, cap);
    if (md_log_enabled(MD_LOG_DEBUG))
        md_log(MD_LOG_DEBUG, "daemon", "dead letter", "reason", reason, "detail", detail, "topic", rd_kafka_topic_name(m->rkt), NULL);
}

/* Hands one polled message to the batch; one it refuses becomes a dead
 * letter of this batch. */
static void take_message(daemon *d, rd_kafka_message_t *m, int64_t now) {
    md_message msg = {rd_kafka_topic_name(m->rkt), m->partition, m->offset, m->key ? m->key : "", m->key_len, m->payload, m->len};
    const char *reason = NULL;
    char detail[256];
    if (md_batch_add_message(d->batch, &msg, now, &reason, detail, sizeof(detail)) == MD_ERR_OK) return;
    if (!reason) reason = "too_large"; /* out of memory for a copy: the message cannot be held */
    dead_letter(d, m, reason, detail);
}

/* The batch's refuse hook: Redis refused the key of the customer this
 * message was for, so it was not applied; it becomes a dead letter of this
 * batch (the batch holds at most as many messages as d->dl has room for,
 * and each is dead-lettered at most once). */
static void refuse_message(void *ctx, const md_source *src, const char *customer_id, const char *why) {
    daemon *d = ctx;
    (void)customer_id;
    for (size_t i = 0; i < d->n_msgs; i++) {
        const rd_kafka_message_t *m = d->msgs[i];
        if (m->offset == src->offset && m->partition == src->partition && strcmp(rd_kafka_topic_name(m->rkt), src->topic) == 0) {
            dead_letter(d, m, MD_DEAD_LETTER_REDIS_REFUSED, why);
            return;
        }
    }
}

/* Copies the counters and health into the shared status for the HTTP
 * thread; at most every 200 ms unless forced (a state change). */
static void publish(daemon *d, bool force) {
    int64_t now = wall_ms();
    if (!d->status || (!force && now - d->last_publish_ms < 200)) return;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    d->snap.n_lag = 0;
    d->snap.max_lag = -1;
    if (d->consumer && rd_kafka_assignment(d->consumer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR && assigned) {
        d->snap.assigned_partitions = assigned->cnt;
        /* Lag from what the client already knows (its position and the
         * high watermark of its last fetch response): no broker round trip. */
        rd_kafka_position(d->consumer, assigned);
        for (int i = 0; i < assigned->cnt && d->snap.n_lag < MD_STATUS_MAX_PARTITIONS; i++) {
            const rd_kafka_topic_partition_t *tp = &assigned->elems[i];
            int64_t lo = -1, hi = -1;
            md_partition_lag *l = &d->snap.lag[d->snap.n_lag++];
            snprintf(l->topic, sizeof(l->topic), "%s", tp->topic);
            l->partition = tp->partition;
            l->lag = -1;
            if (rd_kafka_get_watermark_offsets(d->consumer, tp->topic, tp->partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
                continue;
            /* No position yet: nothing consumed here since the assignment. */
            l->lag = tp->offset >= 0 ? hi - tp->offset : -1;
            if (l->lag < 0 && tp->offset >= 0) l->lag = 0;
            if (l->lag > d->snap.max_lag) d->snap.max_lag = l->lag;
        }
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    d->snap.n = d->n;
    md_status_publish(d->status, &d->snap);
    d->last_publish_ms = now;
}

/* The batch's sink: its dead letters and every outbox entry, produced
 * until Kafka acknowledged all of them. */
static md_err sink_deliver(void *ctx, const md_delivery *dv, size_t n, char *errstr, size_t errstr_size) {
    daemon *d = ctx;
    size_t total = d->ndl + n;
    if (total == 0) return MD_ERR_OK;
    if (total > d->cap_out) {
        outmsg *o = realloc(d->out, total * sizeof(*o));
        if (!o) {
            snprintf(errstr, errstr_size, "out of memory");
            return MD_ERR_NOMEM;
        }
        d->out = o;
        d->cap_out = total;
    }
    memcpy(d->out, d->dl, d->ndl * sizeof(outmsg));
    for (size_t i = 0; i < n; i++) {
        outmsg *o = &d->out[d->ndl + i];
        memset(o, 0, sizeof(*o));
        o->topic = dv[i].topic;
        o->key = dv[i].customer_id;
        o->keylen = strlen(dv[i].customer_id);
        o->value = dv[i].payload;
        o->len = dv[i].len;
    }
    d->snap.outbox_pending = (int64_t)total;
    struct timespec t_ack;
    mono_now(&t_ack);
    if (!produce_all(d, d->out, total)) {
        snprintf(errstr, errstr_size, "stopped before Kafka acknowledged the batch's outputs");
        return MD_ERR_KAFKA;
    }
    md_hist_observe(&d->snap.latency[MD_LAT_KAFKA_ACK], seconds_since(&t_ack));
    d->snap.outbox_pending = 0;
    return MD_ERR_OK;
}

/* The batch's retry hook: a dependency that may come back (Redis) or memory
 * that may be freed is waited for, as long as no stop was asked for. */
static bool batch_retry(void *ctx, md_err e, const char *what, const char *errstr) {
    daemon *d = ctx;
    if (*d->stop) return false;
    if (md_err_is_retriable(e)) {
        d->snap.redis_ok = false;
        d->n.redis_retries++;
        md_log(MD_LOG_WARN, "redis", strcmp(what, "read") == 0 ? "read failed; retrying" : "write failed; redoing", "step", what, "error",
               errstr, NULL);
        publish(d, true);
        sleep_ms(d->cfg->redis.retry_backoff_ms);
        return !*d->stop;
    }
    if (e == MD_ERR_NOMEM) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory; retrying the batch", "step", what, NULL);
        sleep_ms(1000);
        return !*d->stop;
    }
    md_log(MD_LOG_ERROR, "daemon", "batch failed", "step", what, "error", errstr, NULL);
    return false;
}

static void commit_batch(daemon *d, rd_kafka_message_t **msgs, size_t n) {
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp) tp = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
    }
    /* Asynchronous: the batch's effects are durable already, so the next
     * batch need not wait for the broker's answer; a commit that fails (or
     * never happens: a crash) only makes its messages come again, as no-ops.
     * commits are sent in order; the last one is repeated synchronously at
     * a clean stop so that a restart starts where this one ended. */
    rd_kafka_resp_err_t err = rd_kafka_commit(d->consumer, offs, 1);
    if (err)
        md_log(MD_LOG_WARN, "kafka", "offset commit failed; the batch will be redelivered", "error", rd_kafka_err2str(err), NULL);
    if (d->last_commit) rd_kafka_topic_partition_list_destroy(d->last_commit);
    d->last_commit = offs;
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)rk;
    (void)offsets;
    (void)opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        /* E.g. a rebalance took the partitions: the new owner re-reads these
         * messages, and the watermarks make them no-ops. */
        md_log(MD_LOG_WARN, "kafka", "offset commit failed; the batch will be redelivered", "error", rd_kafka_err2str(err), NULL);
}

/* One line with every counter, by the names the counter list gives. */
static void log_stats(daemon *d, const char *msg) {
    static const char *const keys[] = {
#define MD_COUNTER_STAT(field, stat, metric, help) stat,
        MD_COUNTER_MAP(MD_COUNTER_STAT)
#undef MD_COUNTER_STAT
    };
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    const uint64_t v[N] = {
#define MD_COUNTER_VALUE(field, stat, metric, help) d->n.field,
        MD_COUNTER_MAP(MD_COUNTER_VALUE)
#undef MD_COUNTER_VALUE
    };
    char buf[N][24];
    const char *values[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%" PRIu64, v[i]);
        values[i] = buf[i];
    }
    md_log_pairs(MD_LOG_INFO, "daemon", msg, keys, values, N);
}

/* A batch and the buffers around it, all sized by one configuration. */
typedef struct batch_bufs {
    md_batch *batch;
    rd_kafka_message_t **msgs;
    outmsg *dl;
} batch_bufs;

/* Builds them for cfg; the batch's hooks, counters and histograms are d's.
 * false when memory ran out: *b is then freed and zeroed. */
static bool batch_bufs_new(daemon *d, const md_config *cfg, batch_bufs *b) {
    size_t cap = (size_t)cfg->limits.batch_size;
    md_batch_hooks hooks = {.deliver = sink_deliver, .retry = batch_retry, .refuse = refuse_message, .decisions = true, .ctx = d};
    b->msgs = calloc(cap, sizeof(*b->msgs));
    b->dl = calloc(cap, sizeof(outmsg));
    b->batch = md_batch_new(cfg, d->store, cap, MD_BATCH_CLOCK_WALL, &hooks, &d->n, d->snap.latency);
    if (b->msgs && b->dl && b->batch) return true;
    md_batch_destroy(b->batch);
    free(b->msgs);
    free(b->dl);
    memset(b, 0, sizeof(*b));
    return false;
}

/* Hands b to d, freeing what d had. */
static void batch_bufs_install(daemon *d, batch_bufs *b) {
    md_batch_destroy(d->batch);
    free(d->msgs);
    free(d->dl);
    d->batch = b->batch;
    d->msgs = b->msgs;
    d->dl = b->dl;
    d->ndl = 0;
}

static void apply_log_level(const md_config *cfg) {
    md_log_level lvl = MD_LOG_INFO;
    md_log_parse_level(cfg->log.level, &lvl); /* the loader accepted only known names */
    md_log_set_level(lvl);
}

/* Trigger counts by campaign and channel are indexed by position; carry
 * them over by name so that /metrics stays monotonic for the campaigns and
 * channels both configurations have. */
static void remap_fired(daemon *d, const md_config *old, const md_config *neu) {
    uint64_t (*fired)[MD_STATUS_MAX_CHANNELS] = calloc(MD_MAX_CAMPAIGNS, sizeof(*fired));
    if (!fired) return; /* the counts stay by position: a cosmetic error at worst */
    for (size_t c = 0; c < neu->n_campaigns && c < MD_MAX_CAMPAIGNS; c++)
        for (size_t oc = 0; oc < old->n_campaigns && oc < MD_MAX_CAMPAIGNS; oc++) {
            if (strcmp(neu->campaigns[c].name, old->campaigns[oc].name) != 0) continue;
            for (size_t ch = 0; ch < neu->n_channels && ch < MD_STATUS_MAX_CHANNELS; ch++)
                for (size_t och = 0; och < old->n_channels && och < MD_STATUS_MAX_CHANNELS; och++)
                    if (strcmp(neu->channels[ch].name, old->channels[och].name) == 0) fired[c][ch] = d->n.fired[oc][och];
        }
    memcpy(d->n.fired, fired, MD_MAX_CAMPAIGNS * sizeof(*fired));
    free(fired);
}

/* SIGHUP: re-reads the configuration file. Runs between batches, with no
 * message in hand, so the switch is atomic for the stream: every batch is
 * decided wholly under one configuration. A file that does not load, or
 * that changes a setting only a restart can apply, changes nothing. */
static void read_control(daemon *d);

static void reload(daemon *d) {
    char err[1024];
    const char *path = d->cfg->path;
    md_config *neu = md_config_load(path, err, sizeof(err));
    if (neu) memcpy(neu->dedupe.id_key, d->cfg->dedupe.id_key, sizeof(neu->dedupe.id_key)); /* not in the file */
    char key[256];
    bool fixed = neu && md_config_restart_change(d->cfg, neu, key, sizeof(key));
    if (fixed) snprintf(err, sizeof(err), "%s: %s changed; that takes a restart", path, key);
    /* The new batch is built before the running one goes, so a refusal
     * leaves everything as it was. */
    batch_bufs next;
    bool buffers = neu && !fixed && batch_bufs_new(d, neu, &next);
    if (neu && !fixed && !buffers) snprintf(err, sizeof(err), "out of memory allocating the batch buffers");
    if (!buffers) {
        md_config_destroy(neu);
        d->n.reload_failures++;
        md_log(MD_LOG_ERROR, "config", "reload refused; the running configuration stays", "error", err, NULL);
        publish(d, true);
        return;
    }
    batch_bufs_install(d, &next);
    md_config *old = d->cfg;
    d->cfg = neu;
    remap_fired(d, old, neu);
    d->n.reloads++;
    learn_outputs(d); /* channels the new configuration added */
    d->snap.config_loaded_ms = wall_ms();
    md_fetcher_configure(d->fetcher, &neu->kafka);
    /* Campaigns and versions may have changed: measure the new ones soon,
     * and read the paused ones again by the new campaign indices. */
    memset(d->snap.models, 0, sizeof(d->snap.models));
    d->last_models_ms = 0;
    d->paused = 0;
    read_control(d); /* before the next batch, which is decided under the new configuration */
    d->last_control_ms = wall_ms();
    if (d->status) md_status_config_swap(d->status, neu); /* waits out a scrape or report reading the old one */
    md_config_destroy(old);
    apply_log_level(neu);
    /* Which model each campaign now runs, for the operator's log. */
    char models[1024] = "";
    size_t used = 0;
    for (size_t c = 0; c < neu->n_campaigns && used < sizeof(models); c++) {
        used += (size_t)snprintf(models + used, sizeof(models) - used, "%s%s=%s", c ? "," : "", neu->campaigns[c].name,
                                 neu->campaigns[c].model.version);
        /* and the models policy arms try live beside it */
        for (size_t a = 0; a < neu->campaigns[c].n_arms && used < sizeof(models); a++)
            if (neu->campaigns[c].arms[a].model.version)
                used += (size_t)snprintf(models + used, sizeof(models) - used, "+%s:%s", neu->campaigns[c].arms[a].name,
                                         neu->campaigns[c].arms[a].model.version);
    }
    md_log(MD_LOG_INFO, "config", "configuration reloaded", "config", neu->path, "models", models, NULL);
    publish(d, true);
}

/* Each running model measured on live outcomes: its treated triggers of the
 * last 30 days whose attribution window has closed (read from the funnel
 * keys), for /metrics; a calibration error that crosses
 * learning.calibration_bound is logged once each way. */
/* Campaigns paused or resumed by an operator (momentd pause / resume), read
 * once a second from Redis: every instance applies them from its next
 * batch; each change is logged. */
static void read_control(daemon *d) {
    char err[512];
    uint32_t mask;
    if (md_store_paused(d->store, d->cfg, &mask, NULL, err, sizeof(err)) != MD_ERR_OK) return; /* Redis down: the batches say so */
    for (size_t c = 0; c < d->cfg->n_campaigns && c < 32; c++)
        if ((mask ^ d->paused) & (1u << c))
            md_log(MD_LOG_WARN, "control", mask & (1u << c) ? "campaign paused: it fires nothing until resumed" : "campaign resumed",
                   "campaign", d->cfg->campaigns[c].name, NULL);
    d->paused = mask;
    d->snap.paused_campaigns = mask;
    md_batch_set_paused(d->batch, mask);
}

static void check_models(daemon *d) {
    const md_config *cfg = d->cfg;
    int64_t now = wall_ms();
    int offset_min = 0;
    md_parse_utc_offset(cfg->contact.default_utc_offset, &offset_min);
    int64_t local_ms = now + (int64_t)offset_min * 60000;
    char err[512];
    for (size_t c = 0; c < cfg->n_campaigns && c < MD_MAX_CAMPAIGNS; c++) {
        const md_cfg_campaign *cc = &cfg->campaigns[c];
        /* The last day whose triggers' windows have all closed (md_report's labels_final). */
        int64_t to = (local_ms - cc->attribution_ms) / MD_DAY_MS - 1;
        md_report *rep = md_report_read(d->store, cfg, to - 29, to, now, err, sizeof(err));
        if (!rep) {
            md_log(MD_LOG_WARN, "model", "could not measure the running model; trying again later", "campaign", cc->name, "error", err, NULL);
            return;
        }
        md_model_report m;
        md_model_status *st = &d->snap.models[c];
        bool was = st->measured && st->drifting;
        bool decided = md_report_model_of(rep, (int)c, cc->model.version, &m); /* false: no trigger in those days */
        st->measured = true;
        st->decisions = decided ? (int64_t)m.q.n : 0;
        st->calibration_error = decided && m.q.bins_counted ? m.q.max_calibration_error : NAN;
        st->drifting = decided && m.drifting;
        md_report_destroy(rep);
        if (st->drifting == was) continue;
        char e[32], bound[32], n[32];
        snprintf(e, sizeof(e), "%.1f", 100 * st->calibration_error);
        snprintf(bound, sizeof(bound), "%.1f", 100 * cfg->learning.calibration_bound);
        snprintf(n, sizeof(n), "%" PRId64, st->decisions);
        md_log(st->drifting ? MD_LOG_WARN : MD_LOG_INFO, "model",
               st->drifting ? "model calibration drifted beyond learning.calibration_bound" : "model calibration is back within learning.calibration_bound",
               "campaign", cc->name, "version", cc->model.version, "error_points", e, "bound_points", bound, "decisions", n, NULL);
    }
}

int md_daemon_run(md_config *cfg, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload_requested) {
    daemon d;
    md_http *http = NULL;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.stop = stop;
    d.reload = reload_requested;
    int rc = 1;
    char err[512];
    apply_log_level(cfg);
    if (!(d.store = md_store_new(&cfg->redis, err, sizeof(err)))) {
        md_log(MD_LOG_ERROR, "redis", err, NULL);
        goto out;
    }
    /* The batch's store only: its applies are conditional on the version
     * read, which keeps a cached state honest (store.h). */
    if (!md_store_cache_states(d.store, (size_t)cfg->redis.state_cache_mb << 20)) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    batch_bufs first;
    if (batch_bufs_new(&d, cfg, &first)) batch_bufs_install(&d, &first);
    else {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    if (!(d.producer = make_client(&d, RD_KAFKA_PRODUCER)) || !(d.consumer = make_client(&d, RD_KAFKA_CONSUMER))) goto out;
    rd_kafka_poll_set_consumer(d.consumer);
    d.dead_letter_cap = producer_message_max(d.producer);
    d.dl_tokens = (double)cfg->limits.dead_letters_per_second; /* a full second's worth */
    d.dl_refill_ms = wall_ms();
    create_topics(&d);
    learn_outputs(&d);
    const char *topics[] = {cfg->kafka.topic_payments, cfg->kafka.topic_calls, cfg->kafka.topic_app_logins, cfg->kafka.topic_profiles,
                            cfg->kafka.topic_outcomes};
    const int n_topics = (int)(sizeof(topics) / sizeof(topics[0]));
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(n_topics);
    for (int i = 0; i < n_topics; i++) rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(d.consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr) {
        md_log(MD_LOG_ERROR, "kafka", "subscribe failed", "error", rd_kafka_err2str(kerr), NULL);
        goto out;
    }
    if (!(d.fetcher = md_fetcher_new(d.consumer, &cfg->kafka))) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    d.status = md_status_new(cfg);
    if (!d.status) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    d.snap.started_ms = d.snap.config_loaded_ms = wall_ms();
    d.snap.redis_used_memory = d.snap.redis_maxmemory = -1;
    d.snap.resident_bytes = d.snap.peak_resident_bytes = -1;
    http = md_http_start(cfg->http.listen, d.status, err, sizeof(err));
    if (!http && err[0]) {
        md_log(MD_LOG_ERROR, "http", err, "listen", cfg->http.listen, NULL);
        goto out;
    }
    while (!*stop && md_store_connect(d.store, err, sizeof(err)) != MD_ERR_OK) {
        md_log(MD_LOG_WARN, "redis", "waiting for redis", "error", err, NULL);
        publish(&d, true);
        sleep_ms(cfg->redis.retry_backoff_ms);
    }
    /* The event-id guard's key, before the first event: every instance on
     * the namespace must hash ids alike. */
    while (!*stop && md_store_dedupe_key(d.store, d.cfg->dedupe.id_key, err, sizeof(err)) != MD_ERR_OK) {
        md_log(MD_LOG_WARN, "redis", "waiting for the event-id guard's key", "error", err, NULL);
        publish(&d, true);
        sleep_ms(cfg->redis.retry_backoff_ms);
    }
    int64_t listpack = -1;
    if (!*stop && md_store_listpack_value(d.store, &listpack, err, sizeof(err)) == MD_ERR_OK && listpack < MD_LISTPACK_VALUE_MIN) {
        char have[24], want[24];
        snprintf(have, sizeof(have), "%lld", (long long)listpack);
        snprintf(want, sizeof(want), "%d", MD_LISTPACK_VALUE_MIN);
        md_log(MD_LOG_WARN, "redis",
               "hash-max-listpack-value is below what momentd's fields need: a customer with a longer field (a trigger record) costs "
               "Redis about three times the memory; set it in redis.conf (docs/OPERATIONS.md)",
               "hash_max_listpack_value", have, "recommended", want, NULL);
    }
    d.snap.redis_ok = md_store_connected(d.store);
    md_log(MD_LOG_INFO, "daemon", "started", "brokers", cfg->kafka.brokers, "group", cfg->kafka.group_id, "config", cfg->path, NULL);
    d.last_stats_ms = wall_ms();
    read_control(&d); /* a campaign paused before the start stays paused from the first batch */
    d.last_control_ms = wall_ms();
    while (!*stop) {
        if (d.reload && *d.reload) {
            *d.reload = 0;
            reload(&d);
        }
        size_t n = 0, cap = (size_t)d.cfg->limits.batch_size;
        struct timespec t_batch;
        size_t got = md_fetcher_poll(d.fetcher, d.msgs, cap, (int)d.cfg->kafka.poll_timeout_ms);
        d.n.align_gave_up = md_fetcher_gave_up(d.fetcher);
        d.n.backlog_held = md_fetcher_backlog_held(d.fetcher);
        if (got) mono_now(&t_batch);
        for (size_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = d.msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    md_log(m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? MD_LOG_DEBUG : MD_LOG_WARN, "kafka", "consumer error",
                           "error", rd_kafka_message_errstr(m), NULL);
                rd_kafka_message_destroy(m);
                continue;
            }
            d.msgs[n++] = m;
        }
        rd_kafka_poll(d.producer, 0);
        if (n > 0) {
            int64_t now = wall_ms();
            d.ndl = 0;
            d.n_msgs = n;
            for (size_t i = 0; i < n; i++) take_message(&d, d.msgs[i], now);
            size_t customers = md_batch_customers(d.batch);
            bool done = md_batch_run(d.batch, now, err, sizeof(err)) == MD_ERR_OK;
            if (done) {
                d.snap.redis_ok = true;
                commit_batch(&d, d.msgs, n);
                d.n.batches++;
                d.n.redis_redirects = md_store_redirects(d.store);
                d.snap.last_batch_ms = wall_ms();
                double took = seconds_since(&t_batch);
                md_hist_observe(&d.snap.latency[MD_LAT_BATCH], took);
                if (md_log_enabled(MD_LOG_DEBUG)) {
                    char nm[24], nc[24], ms[24];
                    snprintf(nm, sizeof(nm), "%zu", n);
                    snprintf(nc, sizeof(nc), "%zu", customers);
                    snprintf(ms, sizeof(ms), "%.3f", took * 1000);
                    md_log(MD_LOG_DEBUG, "daemon", "batch committed", "messages", nm, "customers", nc, "ms", ms, NULL);
                }
            }
            for (size_t i = 0; i < d.ndl; i++) rd_kafka_headers_destroy(d.dl[i].headers);
            for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(d.msgs[i]);
            d.n_msgs = 0;
            if (!done) break; /* stop requested mid-batch: leave it uncommitted */
        }
        /* The schedule, every limits.schedule_every: customers whose cooldown, quiet
         * hours, blackout or cap ended are decided again now, without an
         * event (no offsets to commit: the due set is in Redis). */
        if (d.cfg->limits.schedule_every_ms > 0 && wall_ms() - d.last_due_ms >= d.cfg->limits.schedule_every_ms && !*stop) {
            int64_t now = wall_ms();
            size_t due = 0;
            d.last_due_ms = now;
            if (md_batch_add_due(d.batch, now, &due, err, sizeof(err)) != MD_ERR_OK) {
                md_log(MD_LOG_WARN, "redis", "could not read the schedule; trying again in a second", "error", err, NULL);
                md_batch_clear(d.batch);
            } else if (due > 0 && md_batch_run(d.batch, now, err, sizeof(err)) != MD_ERR_OK) {
                break; /* stop requested mid-batch: the due set still holds them */
            }
        }
        /* Idle: nothing tells us whether Redis is still there, so ask once
         * a second (for /readyz; batches find out by themselves). */
        if (n == 0 && wall_ms() - d.last_ping_ms >= 1000) {
            bool was = d.snap.redis_ok;
            d.snap.redis_ok = md_store_ping(d.store, err, sizeof(err)) == MD_ERR_OK;
            d.last_ping_ms = wall_ms();
            if (was != d.snap.redis_ok) {
                md_log(d.snap.redis_ok ? MD_LOG_INFO : MD_LOG_WARN, "redis", d.snap.redis_ok ? "redis is back" : "redis is not answering",
                       "error", d.snap.redis_ok ? "" : err, NULL);
                publish(&d, true);
            }
        }
        /* Redis's memory, for /metrics and /readyz, every 5 s: under
         * noeviction a full Redis refuses every write, so warn first. */
        if (wall_ms() - d.last_memory_ms >= 5000) {
            int64_t used, max;
            if (md_store_memory(d.store, &used, &max, err, sizeof(err)) == MD_ERR_OK) {
                d.snap.redis_used_memory = used;
                d.snap.redis_maxmemory = max;
            }
            d.snap.state_cache = md_store_cache_stats_get(d.store);
            read_own_memory(&d.snap.resident_bytes, &d.snap.peak_resident_bytes);
            d.last_memory_ms = wall_ms();
        }
        if (wall_ms() - d.last_control_ms >= 1000) {
            read_control(&d);
            d.last_control_ms = wall_ms();
        }
        if (d.cfg->learning.drift_check_every_ms > 0 && wall_ms() - d.last_models_ms >= d.cfg->learning.drift_check_every_ms) {
            check_models(&d);
            d.last_models_ms = wall_ms();
        }
        publish(&d, false);
        if (wall_ms() - d.last_stats_ms >= d.cfg->log.stats_interval_ms) {
            log_stats(&d, "stats");
            d.last_stats_ms = wall_ms();
        }
    }
    rc = 0;
out:
    md_http_stop(http); /* first: it reads d.status */
    if (d.consumer && d.last_commit && rc == 0) {
        rd_kafka_resp_err_t cerr = rd_kafka_commit(d.consumer, d.last_commit, 0);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            md_log(MD_LOG_WARN, "kafka", "final offset commit failed; the last batch will be redelivered", "error", rd_kafka_err2str(cerr), NULL);
    }
    if (d.last_commit) rd_kafka_topic_partition_list_destroy(d.last_commit);
    if (d.consumer) {
        rd_kafka_consumer_close(d.consumer); /* its revocation drops the partitions' queues */
        md_fetcher_destroy(d.fetcher);
        d.fetcher = NULL;
        rd_kafka_destroy(d.consumer);
    }
    if (d.producer) {
        rd_kafka_flush(d.producer, 10000);
        for (size_t i = 0; i < d.n_outputs; i++) rd_kafka_topic_destroy(d.outputs[i]);
        rd_kafka_destroy(d.producer);
    }
    if (rc == 0) log_stats(&d, "stopped");
    md_store_destroy(d.store);
    md_status_destroy(d.status);
    batch_bufs none = {0};
    batch_bufs_install(&d, &none); /* frees the running ones */
    free(d.out);
    md_config_destroy(d.cfg);
    return rc;
}
