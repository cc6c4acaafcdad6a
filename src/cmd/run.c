/* daemon.c: the consume-decide-produce loop of `momentd run`.
 *
 * One batch at a time, in this order, which is what SPEC section 9 rests on:
 *   1. poll up to limits.batch_size messages;
 *   2. parse; bad input goes to the dead-letter topic (original bytes, reason
 *      and source in headers);
 *   3. read every customer of the batch from Redis (one pipelined HGETALL
 *      each), decide in the pure engine, and apply each customer's changes
 *      with one EVALSHA that writes only if the customer's version is still
 *      the one read (optimistic concurrency) and puts triggers into the
 *      customer's outbox in the same atomic step;
 *   4. produce every outbox entry of the batch's customers with the
 *      idempotent producer and wait for Kafka's acknowledgements;
 *   5. delete acknowledged outbox entries, then commit the batch's offsets.
 * A crash anywhere before 5 redelivers the batch: watermarks turn the
 * re-applied events into no-ops and the outbox entries are produced again
 * under the same trigger_id. Redis or Kafka down: steps 3-4 wait and retry;
 * nothing is skipped. */
#include "run.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cstate_internal.h"
#include "log.h"
#include "momentd/engine.h"
#include "momentd/event.h"
#include "http.h"
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

typedef enum item_kind { ITEM_EVENT, ITEM_PROFILE, ITEM_OUTCOME, ITEM_SKIP } item_kind;

typedef struct item {
    rd_kafka_message_t *msg;
    item_kind kind;
    md_event ev;         /* ITEM_EVENT; for the others only customer_id is set */
    md_outcome oc;       /* ITEM_OUTCOME */
    char *profile_json;  /* ITEM_PROFILE: NUL-terminated copy, NULL = tombstone */
    int customer;        /* index into the batch's customers */
} item;

typedef struct delivery {
    int status; /* 0 pending, 1 delivered, -1 failed */
} delivery;

typedef md_counters counters;
struct outmsg;

/* Which entry of a batch's list holds a given name. Customers and contact
 * points are looked up once per event, and a linear scan made a batch
 * quadratic: 2,000 distinct customers cost two million strcmp calls, 12% of
 * the daemon's CPU. Open addressing over a power-of-two table at least twice
 * the batch, each slot holding an entry's index + 1 (0: empty), cleared per
 * batch. */
typedef struct {
    uint32_t *slots; /* owned */
    size_t mask;
} batch_index;

static bool batch_index_init(batch_index *x, size_t cap) {
    size_t n = 16;
    while (n < cap * 2) n <<= 1;
    x->mask = n - 1;
    return (x->slots = calloc(n, sizeof(*x->slots))) != NULL;
}

static void batch_index_clear(batch_index *x) { memset(x->slots, 0, (x->mask + 1) * sizeof(*x->slots)); }

/* The slot for id among names: holding the index + 1 of the equal name, or
 * empty (0), where the caller stores the index + 1 of the name it adds. */
static uint32_t *batch_index_slot(const batch_index *x, const char *const *names, const char *id) {
    uint64_t h = md_hash64(id, strlen(id), 0);
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask)
        if (!x->slots[i] || strcmp(names[x->slots[i] - 1], id) == 0) return &x->slots[i];
}

#define MD_MAX_OUTPUT_TOPICS 64

typedef struct daemon {
    md_config *cfg;                  /* owned: the running configuration, replaced on reload */
    volatile sig_atomic_t *stop;
    volatile sig_atomic_t *reload;   /* set by SIGHUP: reload cfg->path between batches */
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    md_store *store;
    md_event_parser *parser;
    /* Per-batch buffers, sized by limits.batch_size and the configuration
     * (alloc_batch / free_batch; a reload replaces them). */
    size_t cap;
    rd_kafka_message_t **msgs;
    struct outmsg *dl;
    item *items;
    md_cstate **states;
    md_cpstate **cps;
    md_ops *ops;
    md_ops *cp_ops;
    char **cp_ids;
    int *cust_cp; /* customer -> contact point index or -1 */
    const char **cust_ids;
    size_t n_cust, n_cp;
    batch_index cust_index, cp_index; /* cust_ids, cp_ids by name */
    md_engine_out out;
    counters n;
    int64_t last_stats_ms;
    md_status *status;      /* what /metrics and /readyz read */
    md_status_snapshot snap; /* the daemon's own copy, published once per batch */
    int64_t last_publish_ms;
    int64_t last_ping_ms;
    size_t dead_letter_cap; /* most bytes of an original a dead letter carries */
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
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    char cnt[16];
    snprintf(cnt, sizeof(cnt), "%d", parts ? parts->cnt : 0);
    md_log(MD_LOG_INFO, "kafka", assign ? "partitions assigned" : "partitions revoked", "partitions", cnt, NULL);
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative) e = assign ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
    else ae = rd_kafka_assign(rk, assign ? parts : NULL);
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

static bool conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, const char *where) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message quotes the value: not for a secret. */
        md_log(MD_LOG_ERROR, "kafka", "rejected property", "where", where, "property", k, "error",
               md_config_key_is_secret(k) ? "librdkafka rejected the value (not shown: it is a secret)" : err, NULL);
        return false;
    }
    return true;
}

static rd_kafka_t *make_client(daemon *d, rd_kafka_type_t type) {
    const md_config *cfg = d->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    bool ok = conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, "kafka.brokers");
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_opaque(conf, d);
    for (size_t i = 0; ok && i < cfg->kafka.n_common; i++)
        ok = conf_set(conf, cfg->kafka.common[i].key, cfg->kafka.common[i].value, "kafka.common");
    if (type == RD_KAFKA_CONSUMER) {
        ok = ok && conf_set(conf, "group.id", cfg->kafka.group_id, "kafka.group_id") &&
             conf_set(conf, "enable.auto.commit", "false", "momentd") &&
             conf_set(conf, "enable.auto.offset.store", "false", "momentd") &&
             conf_set(conf, "auto.offset.reset", "earliest", "momentd");
        for (size_t i = 0; ok && i < cfg->kafka.n_consumer; i++)
            ok = conf_set(conf, cfg->kafka.consumer[i].key, cfg->kafka.consumer[i].value, "kafka.consumer");
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    } else {
        /* Idempotent: retries never duplicate or reorder a trigger. */
        ok = ok && conf_set(conf, "enable.idempotence", "true", "momentd") && conf_set(conf, "acks", "all", "momentd");
        for (size_t i = 0; ok && i < cfg->kafka.n_producer; i++)
            ok = conf_set(conf, cfg->kafka.producer[i].key, cfg->kafka.producer[i].value, "kafka.producer");
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
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
 * holdouts, each channel's) to names, at most max; returns how many. */
static size_t output_topics(const md_config *cfg, const char **names, size_t max) {
    size_t n = 0;
    names[n++] = cfg->kafka.topic_dead_letter;
    names[n++] = cfg->kafka.topic_holdout;
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

static int find_customer(daemon *d, const char *id) {
    uint32_t *slot = batch_index_slot(&d->cust_index, d->cust_ids, id);
    if (!*slot) {
        d->cust_ids[d->n_cust] = id;
        *slot = (uint32_t)++d->n_cust;
    }
    return (int)*slot - 1;
}

/* A dead letter carries the original bytes, but never more than the
 * producer may send: a message the broker accepted can still be larger than
 * our producer's message.max.bytes, and a dead letter that cannot be
 * produced would stop the stream behind it for good. Longer values and keys
 * are cut and say so in momentd.truncated_from (the original value size). */
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
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    char num[32];
    if (m->len > cap || m->key_len > MD_DEAD_LETTER_KEY_MAX) {
        snprintf(num, sizeof(num), "%zu", m->len);
        rd_kafka_header_add(h, "momentd.truncated_from", -1, num, -1);
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

/* Parses the batch; bad messages become dead letters in dl[]. */
static size_t classify(daemon *d, rd_kafka_message_t **msgs, size_t n, outmsg *dl) {
    const md_config *cfg = d->cfg;
    size_t ndl = 0;
    int64_t now = wall_ms();
    d->n_cust = 0;
    batch_index_clear(&d->cust_index);
    for (size_t i = 0; i < n; i++) {
        item *it = &d->items[i];
        rd_kafka_message_t *m = msgs[i];
        it->msg = m;
        it->kind = ITEM_SKIP;
        it->profile_json = NULL;
        const char *topic = rd_kafka_topic_name(m->rkt);
        const char *reason = NULL;
        char detail[256] = "";
        d->n.consumed++;
        if (strcmp(topic, cfg->kafka.topic_profiles) == 0) {
            char cid[MD_CUSTOMER_ID_MAX + 1];
            if (!m->key || m->key_len == 0 || m->key_len > MD_CUSTOMER_ID_MAX) {
                reason = "key_mismatch";
                snprintf(detail, sizeof(detail), "a profile's key must be its customer_id (1-%d bytes)", MD_CUSTOMER_ID_MAX);
            } else if (m->len > (size_t)cfg->limits.max_message_bytes) {
                reason = "too_large";
                snprintf(detail, sizeof(detail), "%zu bytes, limit %lld", m->len, (long long)cfg->limits.max_message_bytes);
            } else {
                memcpy(cid, m->key, m->key_len);
                cid[m->key_len] = '\0';
                if (m->payload) {
                    it->profile_json = malloc(m->len + 1);
                    if (!it->profile_json) {
                        reason = "too_large";
                        snprintf(detail, sizeof(detail), "out of memory");
                    } else {
                        memcpy(it->profile_json, m->payload, m->len);
                        it->profile_json[m->len] = '\0';
                        if (strlen(it->profile_json) != m->len) {
                            reason = "not_json";
                            snprintf(detail, sizeof(detail), "profile contains a NUL byte");
                        } else if (md_profile_check(it->profile_json, cfg->limits.max_profile_attrs, detail, sizeof(detail))) {
                            reason = "bad_profile";
                        }
                    }
                }
                if (!reason) {
                    it->kind = ITEM_PROFILE;
                    snprintf(it->ev.customer_id, sizeof(it->ev.customer_id), "%s", cid);
                    d->n.profiles++;
                }
            }
        } else if (strcmp(topic, cfg->kafka.topic_outcomes) == 0) {
            md_parse_result res;
            if (md_outcome_parse(d->parser, m->payload ? m->payload : "", m->payload ? m->len : 0, m->key ? m->key : "",
                                 m->key ? m->key_len : 0, now, &it->oc, &res) == MD_ERR_OK) {
                it->kind = ITEM_OUTCOME;
                snprintf(it->ev.customer_id, sizeof(it->ev.customer_id), "%s", it->oc.customer_id);
            } else {
                reason = md_reject_code(res.reason);
                snprintf(detail, sizeof(detail), "%s", res.detail);
                d->n.rejects[res.reason]++;
            }
        } else {
            md_parse_result res;
            if (md_event_parse(d->parser, m->payload ? m->payload : "", m->payload ? m->len : 0, m->key ? m->key : "",
                               m->key ? m->key_len : 0, now, &it->ev, &res) == MD_ERR_OK) {
                it->kind = ITEM_EVENT;
                d->n.accepted++;
                if ((int)it->ev.type >= 0 && it->ev.type < MD_EVENT_TYPE_COUNT) d->n.accepted_by_type[it->ev.type]++;
            } else {
                reason = md_reject_code(res.reason);
                snprintf(detail, sizeof(detail), "%s", res.detail);
                d->n.rejects[res.reason]++;
            }
        }
        if (reason) {
            free(it->profile_json);
            it->profile_json = NULL;
            d->n.dead_lettered++;
            if (strcmp(topic, cfg->kafka.topic_profiles) == 0) d->n.profile_rejects++;
            outmsg *o = &dl[ndl++];
            memset(o, 0, sizeof(*o));
            o->topic = cfg->kafka.topic_dead_letter;
            o->key = m->key;
            o->keylen = m->key_len > MD_DEAD_LETTER_KEY_MAX ? MD_DEAD_LETTER_KEY_MAX : m->key_len;
            o->value = m->payload;
            o->len = m->len > d->dead_letter_cap ? d->dead_letter_cap : m->len;
            o->headers = dead_letter_headers(m, reason, detail, d->dead_letter_cap);
            if (md_log_enabled(MD_LOG_DEBUG))
                md_log(MD_LOG_DEBUG, "daemon", "dead letter", "reason", reason, "detail", detail, "topic", topic, NULL);
            continue;
        }
        it->customer = find_customer(d, it->ev.customer_id);
    }
    return ndl;
}

/* A trigger decided in this batch: a holdout decision, or a real contact by
 * campaign and channel (for /metrics). */
static void count_trigger(daemon *d, const md_trigger *tr) {
    if (tr->holdout) {
        d->n.holdouts++;
        return;
    }
    d->n.triggers++;
    if (tr->campaign < MD_MAX_CAMPAIGNS && tr->channel < MD_STATUS_MAX_CHANNELS) d->n.fired[tr->campaign][tr->channel]++;
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

/* Adds customer c's requests (its state, and its contact point's if it
 * touched one) to reqs after flushing its state into its ops; sets *oom when
 * recording ran out of memory. */
static void queue_customer(daemon *d, size_t c, md_apply_req *reqs, size_t *nreq, bool *oom) {
    md_cstate_flush(d->states[c], &d->ops[c]);
    if (d->ops[c].oom || d->cp_ops[c].oom) *oom = true;
    if (d->ops[c].n == 0) return; /* only duplicates: nothing to write */
    md_apply_req *q = &reqs[(*nreq)++];
    md_store_customer_key(d->store, d->cust_ids[c], q->key, sizeof(q->key));
    q->ops = &d->ops[c];
    q->expect_version = md_cstate_version(d->states[c]);
    q->ttl_ms = md_cstate_ttl_ms(d->states[c]);
    if (d->cp_ops[c].n && d->cust_cp[c] >= 0) {
        q = &reqs[(*nreq)++];
        md_store_contact_point_key(d->store, d->cp_ids[d->cust_cp[c]], q->key, sizeof(q->key));
        q->ops = &d->cp_ops[c];
        q->expect_version = -1;
        q->ttl_ms = d->cfg->rules->max_cap_span_ms + MD_DAY_MS;
    }
}

/* Requests are handed to Redis in slices of this many while the rest of the
 * batch is decided, so that Redis's work on applies overlaps the daemon's
 * on decisions instead of following it (bench/run: see BENCHMARKS.md). */
#define MD_APPLY_SLICE 64

/* Reads, decides and applies the whole batch; loops until Redis accepted it
 * or a stop was requested (then returns false and nothing is committed). */
static bool decide_and_apply(daemon *d, size_t n) {
    const md_config *cfg = d->cfg;
    char err[512];
    md_apply_req *reqs = calloc(d->n_cust * 2 + 1, sizeof(md_apply_req));
    int *results = calloc(d->n_cust * 2 + 1, sizeof(int));
    /* Customers in the order their last message of the batch comes: once
     * the decisions have passed it, that customer's requests are final. */
    size_t *last = calloc(d->n_cust + 1, sizeof(size_t)), *final_order = calloc(d->n_cust + 1, sizeof(size_t));
    bool ok = false;
    if (!reqs || !results || !last || !final_order) goto done;
    for (size_t i = 0; i < n; i++)
        if (d->items[i].kind != ITEM_SKIP) last[d->items[i].customer] = i;
    size_t n_final = 0;
    for (size_t i = 0; i < n; i++)
        if (d->items[i].kind != ITEM_SKIP && last[d->items[i].customer] == i) final_order[n_final++] = (size_t)d->items[i].customer;
    while (!*d->stop) {
        struct timespec t_read;
        mono_now(&t_read);
        md_err e = md_store_read_customers(d->store, d->n_cust, d->cust_ids, d->states, err, sizeof(err));
        /* Contact points named by the profiles just read. */
        d->n_cp = 0;
        batch_index_clear(&d->cp_index);
        for (size_t c = 0; !e && c < d->n_cust; c++) {
            d->cust_cp[c] = -1;
            const char *cp = md_cs_profile(d->states[c], cfg->rules->attr_contact_point);
            if (!cp || !*cp) continue;
            uint32_t *slot = batch_index_slot(&d->cp_index, (const char *const *)d->cp_ids, cp);
            if (!*slot) {
                snprintf(d->cp_ids[d->n_cp], 300, "%s", cp);
                *slot = (uint32_t)++d->n_cp;
            }
            d->cust_cp[c] = (int)*slot - 1;
        }
        if (!e && d->n_cp)
            e = md_store_read_contact_points(d->store, d->n_cp, (const char *const *)d->cp_ids, d->cps, err, sizeof(err));
        if (!e) md_hist_observe(&d->snap.latency[MD_LAT_REDIS_READ], seconds_since(&t_read));
        if (e) {
            d->snap.redis_ok = false;
            publish(d, true);
            d->n.redis_retries++;
            md_log(MD_LOG_WARN, "redis", "read failed; retrying", "error", err, NULL);
            sleep_ms(cfg->redis.retry_backoff_ms);
            continue;
        }
        for (size_t c = 0; c < d->n_cust; c++) {
            md_ops_clear(&d->ops[c]);
            md_ops_clear(&d->cp_ops[c]);
        }
        /* Decide, in message order (per-customer order is partition order),
         * handing each slice of final customers' requests to Redis. */
        int64_t now = wall_ms();
        counters before = d->n;
        size_t nreq = 0, nsent = 0, next_final = 0;
        bool oom = false;
        for (size_t i = 0; i < n; i++) {
            item *it = &d->items[i];
            while (!oom && next_final < n_final && last[final_order[next_final]] < i)
                queue_customer(d, final_order[next_final++], reqs, &nreq, &oom);
            if (!oom && nreq - nsent >= MD_APPLY_SLICE) {
                if (md_store_apply_send(d->store, nreq - nsent, reqs + nsent, err, sizeof(err)) != MD_ERR_OK) {
                    d->n = before;
                    d->n.redis_retries++;
                    md_log(MD_LOG_WARN, "redis", "apply failed; redoing the batch", "error", err, NULL);
                    sleep_ms(cfg->redis.retry_backoff_ms);
                    goto retry;
                }
                nsent = nreq;
            }
            if (it->kind == ITEM_SKIP) continue;
            md_cstate *cs = d->states[it->customer];
            md_source src = {rd_kafka_topic_name(it->msg->rkt), it->msg->partition, it->msg->offset};
            if (it->kind == ITEM_PROFILE) {
                if (src.offset <= md_cs_watermark(cs, src.topic, src.partition)) continue;
                md_cs_set_watermark(cs, &d->ops[it->customer], src.topic, src.partition, src.offset);
                md_cstate_set_profile(cs, it->profile_json, &d->ops[it->customer], err, sizeof(err));
                continue;
            }
            if (it->kind == ITEM_OUTCOME) {
                md_outcome_applied oa;
                int ocp = d->cust_cp[it->customer];
                if (md_engine_outcome(cfg, cs, ocp >= 0 ? d->cps[ocp] : NULL, &it->oc, &src, now, &d->ops[it->customer],
                                      &d->cp_ops[it->customer], &oa, &d->out) != MD_ERR_OK) {
                    md_engine_out_fini(&d->out);
                    md_log(MD_LOG_ERROR, "daemon", "out of memory while applying an outcome; retrying the batch", NULL);
                    sleep_ms(1000);
                    goto retry;
                }
                if (oa == MD_OUTCOME_APPLIED) d->n.outcomes++;
                else if (oa == MD_OUTCOME_UNKNOWN_TRIGGER) d->n.outcomes_unknown++;
                else d->n.outcome_duplicates++;
                for (size_t t = 0; t < d->out.n_triggers; t++) {
                    count_trigger(d, &d->out.triggers[t]);
                    d->n.follow_ups++;
                }
                if (d->out.follow_up_suppressed != MD_SUPPRESS_NONE) d->n.suppressed[d->out.follow_up_suppressed]++;
                md_engine_out_fini(&d->out);
                continue;
            }
            int cpi = d->cust_cp[it->customer];
            if (md_engine_process(cfg, cs, cpi >= 0 ? d->cps[cpi] : NULL, &it->ev, &src, now, &d->ops[it->customer],
                                  &d->cp_ops[it->customer], &d->out) != MD_ERR_OK) {
                md_log(MD_LOG_ERROR, "daemon", "out of memory while deciding; retrying the batch", NULL);
                md_engine_out_fini(&d->out);
                sleep_ms(1000);
                goto retry;
            }
            d->n.conversions += d->out.n_conversions;
            if (d->out.applied == MD_DUP_OFFSET || d->out.applied == MD_DUP_EVENT_ID) d->n.duplicates++;
            else if (d->out.applied == MD_TOO_LATE) d->n.too_late++;
            for (size_t t = 0; t < d->out.n_triggers; t++) {
                count_trigger(d, &d->out.triggers[t]);
            }
            if (d->out.applied == MD_APPLIED)
                for (size_t c = 0; c < d->out.n_campaigns; c++)
                    if (d->out.eval[c].suppressed != MD_SUPPRESS_NONE) d->n.suppressed[d->out.eval[c].suppressed]++;
            md_engine_out_fini(&d->out);
        }
        /* One apply per customer, conditional on the version read: the
         * rest of them, then every reply. */
        while (!oom && next_final < n_final) queue_customer(d, final_order[next_final++], reqs, &nreq, &oom);
        if (oom) {
            md_log(MD_LOG_ERROR, "daemon", "out of memory while recording; retrying the batch", NULL);
            d->n = before;
            sleep_ms(1000);
            goto retry;
        }
        struct timespec t_apply;
        mono_now(&t_apply);
        e = md_store_apply_send(d->store, nreq - nsent, reqs + nsent, err, sizeof(err));
        if (!e) e = md_store_apply_collect(d->store, nreq, reqs, results, err, sizeof(err));
        nsent = 0; /* answered, or the connection is gone with them */
        d->snap.redis_ok = e == MD_ERR_OK;
        if (!e && nreq) md_hist_observe(&d->snap.latency[MD_LAT_REDIS_APPLY], seconds_since(&t_apply));
        if (e) {
            d->n = before; /* the redo counts again */
            d->n.redis_retries++;
            md_log(MD_LOG_WARN, "redis", "apply failed; redoing the batch", "error", err, NULL);
            sleep_ms(cfg->redis.retry_backoff_ms);
            continue;
        }
        bool conflict = false;
        for (size_t q = 0; q < nreq; q++)
            if (results[q] == 0) conflict = true;
        if (conflict) {
            /* Another consumer changed one of these customers since we read
             * it (a rebalance in flight, or another consumer owning another
             * topic's partition of the same customer). Re-read and decide
             * again: what the others applied is then part of the state, what
             * we applied reads as duplicates, and every outbox entry is
             * produced below. */
            d->n = before;
            d->n.conflicts++;
            md_log(MD_LOG_INFO, "daemon", "customer changed concurrently; re-reading the batch", NULL);
            continue;
        }
        ok = true;
        break;
    retry:
        /* Requests sent but not answered: their replies would be taken for
         * the next command's. Drop the connection with them; whether they
         * were applied or not, the redo reads what is there. */
        if (nsent) md_store_disconnect(d->store);
    }
done:
    free(reqs);
    free(results);
    free(last);
    free(final_order);
    return ok;
}

/* Produces the outbox of every customer of the batch, adds its pending
 * funnel increments, then forgets both. Returns false only when a stop was
 * requested before Kafka acknowledged everything (the batch stays
 * uncommitted and is redelivered). */
static bool flush_outbox(daemon *d, outmsg *dl, size_t ndl) {
    size_t total = ndl, n_in = 0;
    for (size_t c = 0; c < d->n_cust; c++) {
        total += md_cstate_pending_count(d->states[c]) + md_cstate_incr_count(d->states[c]);
        n_in += md_cstate_incr_count(d->states[c]);
    }
    if (total == 0) return true;
    outmsg *m = calloc(total, sizeof(outmsg));
    const char **in_camp = calloc(n_in + 1, sizeof(char *)), **in_day = calloc(n_in + 1, sizeof(char *)),
               **in_field = calloc(n_in + 1, sizeof(char *));
    int64_t *in_delta = calloc(n_in + 1, sizeof(int64_t));
    bool ok = false;
    if (!m || !in_camp || !in_day || !in_field || !in_delta) goto out;
    size_t k = 0, ni = 0;
    for (size_t i = 0; i < ndl; i++) m[k++] = dl[i];
    for (size_t c = 0; c < d->n_cust; c++) {
        md_cstate *cs = d->states[c];
        size_t np = md_cstate_pending_count(cs), nc = md_cstate_incr_count(cs);
        for (size_t p = 0; p < np + nc; p++) {
            const char *name;
            if (p < np) {
                const char *topic, *payload;
                md_cstate_pending(cs, p, &name, &topic, &payload);
                m[k].topic = topic;
                m[k].key = d->cust_ids[c];
                m[k].keylen = strlen(d->cust_ids[c]);
                m[k].value = payload;
                m[k].len = strlen(payload);
                k++;
            } else {
                md_cstate_incr(cs, p - np, &name, &in_camp[ni], &in_day[ni], &in_field[ni], &in_delta[ni]);
                ni++;
            }
        }
    }
    d->snap.outbox_pending = (int64_t)total;
    struct timespec t_ack;
    mono_now(&t_ack);
    if (!produce_all(d, m, k)) goto out;
    md_hist_observe(&d->snap.latency[MD_LAT_KAFKA_ACK], seconds_since(&t_ack));
    char err[512];
    /* Funnel counts must not be lost: retried until Redis takes them. A
     * crash between this and the HDEL below counts them twice: the one
     * window where a funnel count (never a trigger) may be off by one. */
    while (ni && md_store_funnel_add(d->store, ni, in_camp, in_day, in_field, in_delta, err, sizeof(err)) != MD_ERR_OK) {
        if (*d->stop) goto out;
        d->n.redis_retries++;
        md_log(MD_LOG_WARN, "redis", "funnel update failed; retrying", "error", err, NULL);
        sleep_ms(d->cfg->redis.retry_backoff_ms);
    }
    /* Forgetting acknowledged triggers may fail (Redis went down just now):
     * they are produced again later under the same trigger_id, which
     * subscribers drop, so that alone is not worth waiting for. Funnel
     * increments already added would be added again: those are retried. */
    while (md_store_forget_outbox(d->store, d->n_cust, d->cust_ids, d->states, err, sizeof(err)) != MD_ERR_OK) {
        if (!ni || *d->stop) {
            md_log(MD_LOG_WARN, "redis", "could not clear acknowledged outbox entries; they will be re-sent", "error", err, NULL);
            break;
        }
        d->n.redis_retries++;
        sleep_ms(d->cfg->redis.retry_backoff_ms);
    }
    ok = true;
    d->snap.outbox_pending = 0;
out:
    free(m);
    free(in_camp);
    free(in_day);
    free(in_field);
    free(in_delta);
    return ok;
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

static void log_stats(daemon *d, const char *msg) {
    char b[16][24];
    snprintf(b[0], 24, "%" PRIu64, d->n.consumed);
    snprintf(b[1], 24, "%" PRIu64, d->n.accepted);
    snprintf(b[2], 24, "%" PRIu64, d->n.dead_lettered);
    snprintf(b[3], 24, "%" PRIu64, d->n.duplicates);
    snprintf(b[4], 24, "%" PRIu64, d->n.too_late);
    snprintf(b[5], 24, "%" PRIu64, d->n.profiles);
    snprintf(b[6], 24, "%" PRIu64, d->n.triggers);
    snprintf(b[7], 24, "%" PRIu64, d->n.holdouts);
    snprintf(b[8], 24, "%" PRIu64, d->n.batches);
    snprintf(b[9], 24, "%" PRIu64, d->n.redis_retries);
    snprintf(b[10], 24, "%" PRIu64, d->n.conflicts);
    snprintf(b[11], 24, "%" PRIu64, d->n.outcomes);
    snprintf(b[12], 24, "%" PRIu64, d->n.outcome_duplicates);
    snprintf(b[13], 24, "%" PRIu64, d->n.outcomes_unknown);
    snprintf(b[14], 24, "%" PRIu64, d->n.conversions);
    snprintf(b[15], 24, "%" PRIu64, d->n.follow_ups);
    md_log(MD_LOG_INFO, "daemon", msg, "consumed", b[0], "accepted", b[1], "dead_lettered", b[2], "duplicates", b[3],
           "too_late", b[4], "profiles", b[5], "triggers", b[6], "holdouts", b[7], "batches", b[8], "redis_retries", b[9],
           "conflicts", b[10], "outcomes", b[11], "outcome_duplicates", b[12], "outcomes_unknown_trigger", b[13],
           "conversions", b[14], "follow_ups", b[15], NULL);
}

/* Allocates every per-batch buffer for d->cfg. On failure some may be set:
 * free_batch frees whatever was. */
static bool alloc_batch(daemon *d) {
    size_t cap = (size_t)d->cfg->limits.batch_size;
    d->cap = cap;
    d->msgs = calloc(cap, sizeof(*d->msgs));
    d->dl = calloc(cap, sizeof(outmsg));
    d->items = calloc(cap, sizeof(item));
    d->states = calloc(cap, sizeof(md_cstate *));
    d->cps = calloc(cap, sizeof(md_cpstate *));
    d->ops = calloc(cap, sizeof(md_ops));
    d->cp_ops = calloc(cap, sizeof(md_ops));
    d->cp_ids = calloc(cap, sizeof(char *));
    d->cust_cp = calloc(cap, sizeof(int));
    d->cust_ids = calloc(cap, sizeof(char *));
    /* Both run whatever the other returns: on failure free_batch frees each
     * pointer, so none may still be the running buffers' (see reload). */
    bool indexed = batch_index_init(&d->cust_index, cap);
    indexed = batch_index_init(&d->cp_index, cap) && indexed;
    if (!d->msgs || !d->dl || !d->items || !d->states || !d->cps || !d->ops || !d->cp_ops || !d->cp_ids || !d->cust_cp || !d->cust_ids ||
        !indexed)
        return false;
    for (size_t i = 0; i < cap; i++) {
        d->states[i] = md_cstate_new(d->cfg);
        d->cps[i] = md_cpstate_new();
        d->cp_ids[i] = malloc(300);
        if (!d->states[i] || !d->cps[i] || !d->cp_ids[i]) return false;
        md_ops_init(&d->ops[i]);
        md_ops_init(&d->cp_ops[i]);
    }
    return true;
}

static void free_batch(daemon *d) {
    for (size_t i = 0; i < d->cap; i++) {
        if (d->states) md_cstate_destroy(d->states[i]);
        if (d->cps) md_cpstate_destroy(d->cps[i]);
        if (d->cp_ids) free(d->cp_ids[i]);
        if (d->ops) md_ops_fini(&d->ops[i]);
        if (d->cp_ops) md_ops_fini(&d->cp_ops[i]);
    }
    free(d->msgs);
    free(d->dl);
    free(d->items);
    free(d->states);
    free(d->cps);
    free(d->ops);
    free(d->cp_ops);
    free(d->cp_ids);
    free(d->cust_cp);
    free(d->cust_ids);
    free(d->cust_index.slots);
    free(d->cp_index.slots);
}

static md_event_parser *parser_for(const md_config *cfg) {
    md_event_limits lim = {(size_t)cfg->limits.max_message_bytes, cfg->limits.max_future_skew_s * 1000,
                           (size_t)cfg->limits.max_pages, (int)cfg->limits.max_depth};
    return md_event_parser_new(&lim);
}

static void apply_log_level(const md_config *cfg) {
    md_log_level lvl = MD_LOG_INFO;
    md_log_parse_level(cfg->log.level, &lvl); /* the loader accepted only known names */
    md_log_set_level(lvl);
}

static bool same_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static bool same_kvs(const md_kv *a, size_t na, const md_kv *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i].key, b[i].key) || !same_str(a[i].value, b[i].value)) return false;
    return true;
}

/* The first setting a reload cannot change (the connections, the group and
 * the subscription are made once), or NULL when they are all unchanged. */
static const char *restart_only_change(const md_config *a, const md_config *b) {
    if (!same_str(a->kafka.brokers, b->kafka.brokers)) return "kafka.brokers";
    if (!same_str(a->kafka.group_id, b->kafka.group_id)) return "kafka.group_id";
    if (!same_str(a->kafka.topic_payments, b->kafka.topic_payments)) return "kafka.topic_payments";
    if (!same_str(a->kafka.topic_calls, b->kafka.topic_calls)) return "kafka.topic_calls";
    if (!same_str(a->kafka.topic_app_logins, b->kafka.topic_app_logins)) return "kafka.topic_app_logins";
    if (!same_str(a->kafka.topic_profiles, b->kafka.topic_profiles)) return "kafka.topic_profiles";
    if (!same_str(a->kafka.topic_outcomes, b->kafka.topic_outcomes)) return "kafka.topic_outcomes";
    if (!same_kvs(a->kafka.common, a->kafka.n_common, b->kafka.common, b->kafka.n_common)) return "kafka.common";
    if (!same_kvs(a->kafka.consumer, a->kafka.n_consumer, b->kafka.consumer, b->kafka.n_consumer)) return "kafka.consumer";
    if (!same_kvs(a->kafka.producer, a->kafka.n_producer, b->kafka.producer, b->kafka.n_producer)) return "kafka.producer";
    if (!same_str(a->redis.url, b->redis.url)) return "redis.url";
    if (!same_str(a->redis.password, b->redis.password)) return "redis.password";
    if (!same_str(a->redis.tls_ca_file, b->redis.tls_ca_file) || !same_str(a->redis.tls_cert_file, b->redis.tls_cert_file) ||
        !same_str(a->redis.tls_key_file, b->redis.tls_key_file) || !same_str(a->redis.tls_server_name, b->redis.tls_server_name))
        return "redis.tls_*";
    if (!same_str(a->redis.key_prefix, b->redis.key_prefix)) return "redis.key_prefix";
    if (a->redis.timeout_ms != b->redis.timeout_ms) return "redis.timeout";
    if (!same_str(a->http.listen, b->http.listen)) return "http.listen";
    return NULL;
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
static void reload(daemon *d) {
    char err[1024];
    const char *path = d->cfg->path;
    md_config *neu = md_config_load(path, err, sizeof(err));
    const char *fixed = neu ? restart_only_change(d->cfg, neu) : NULL;
    if (fixed) snprintf(err, sizeof(err), "%s: %s changed; that takes a restart", path, fixed);
    md_event_parser *parser = neu && !fixed ? parser_for(neu) : NULL;
    daemon next = *d; /* the running buffers stay in d until the new ones exist */
    bool buffers = false;
    if (parser) {
        next.cfg = neu;
        buffers = alloc_batch(&next);
        if (!buffers) {
            free_batch(&next);
            snprintf(err, sizeof(err), "out of memory allocating the batch buffers");
        }
    } else if (neu && !fixed) {
        snprintf(err, sizeof(err), "out of memory creating the parser");
    }
    if (!buffers) {
        md_event_parser_destroy(parser);
        md_config_destroy(neu);
        d->n.reload_failures++;
        md_log(MD_LOG_ERROR, "config", "reload refused; the running configuration stays", "error", err, NULL);
        publish(d, true);
        return;
    }
    free_batch(d);
    md_event_parser_destroy(d->parser);
    md_config *old = d->cfg;
    remap_fired(&next, old, neu);
    next.parser = parser;
    *d = next;
    d->n.reloads++;
    learn_outputs(d); /* channels the new configuration added */
    d->snap.config_loaded_ms = wall_ms();
    if (d->status) md_status_config_swap(d->status, neu); /* waits out a scrape or report reading the old one */
    md_config_destroy(old);
    apply_log_level(neu);
    /* Which model each campaign now runs, for the operator's log. */
    char models[1024] = "";
    size_t used = 0;
    for (size_t c = 0; c < neu->n_campaigns && used < sizeof(models); c++)
        used += (size_t)snprintf(models + used, sizeof(models) - used, "%s%s=%s", c ? "," : "", neu->campaigns[c].name,
                                 neu->campaigns[c].model.version);
    md_log(MD_LOG_INFO, "config", "configuration reloaded", "config", neu->path, "models", models, NULL);
    publish(d, true);
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
    md_engine_out_init(&d.out);
    if (!alloc_batch(&d) || !(d.parser = parser_for(cfg))) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    if (!(d.store = md_store_new(&cfg->redis, err, sizeof(err)))) {
        md_log(MD_LOG_ERROR, "redis", err, NULL);
        goto out;
    }
    if (!(d.producer = make_client(&d, RD_KAFKA_PRODUCER)) || !(d.consumer = make_client(&d, RD_KAFKA_CONSUMER))) goto out;
    rd_kafka_poll_set_consumer(d.consumer);
    d.dead_letter_cap = producer_message_max(d.producer);
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
    d.status = md_status_new(cfg);
    if (!d.status) {
        md_log(MD_LOG_ERROR, "daemon", "out of memory at start", NULL);
        goto out;
    }
    d.snap.started_ms = d.snap.config_loaded_ms = wall_ms();
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
    d.snap.redis_ok = md_store_connected(d.store);
    md_log(MD_LOG_INFO, "daemon", "started", "brokers", cfg->kafka.brokers, "group", cfg->kafka.group_id, "config", cfg->path, NULL);
    d.last_stats_ms = wall_ms();
    while (!*stop) {
        if (d.reload && *d.reload) {
            *d.reload = 0;
            reload(&d);
        }
        size_t n = 0, cap = (size_t)d.cfg->limits.batch_size;
        struct timespec t_batch;
        while (n < cap) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(d.consumer, n == 0 ? (int)d.cfg->kafka.poll_timeout_ms : 0);
            if (!m) break;
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    md_log(m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? MD_LOG_DEBUG : MD_LOG_WARN, "kafka", "consumer error",
                           "error", rd_kafka_message_errstr(m), NULL);
                rd_kafka_message_destroy(m);
                continue;
            }
            if (n == 0) mono_now(&t_batch);
            d.msgs[n++] = m;
        }
        rd_kafka_poll(d.producer, 0);
        if (n > 0) {
            size_t ndl = classify(&d, d.msgs, n, d.dl);
            bool done = decide_and_apply(&d, n) && flush_outbox(&d, d.dl, ndl);
            if (done) {
                commit_batch(&d, d.msgs, n);
                d.n.batches++;
                d.snap.last_batch_ms = wall_ms();
                double took = seconds_since(&t_batch);
                md_hist_observe(&d.snap.latency[MD_LAT_BATCH], took);
                if (md_log_enabled(MD_LOG_DEBUG)) {
                    char nm[24], nc[24], ms[24];
                    snprintf(nm, sizeof(nm), "%zu", n);
                    snprintf(nc, sizeof(nc), "%zu", d.n_cust);
                    snprintf(ms, sizeof(ms), "%.3f", took * 1000);
                    md_log(MD_LOG_DEBUG, "daemon", "batch committed", "messages", nm, "customers", nc, "ms", ms, NULL);
                }
            }
            for (size_t i = 0; i < ndl; i++) rd_kafka_headers_destroy(d.dl[i].headers);
            for (size_t i = 0; i < n; i++) {
                free(d.items[i].profile_json);
                d.items[i].profile_json = NULL;
                rd_kafka_message_destroy(d.msgs[i]);
            }
            if (!done) break; /* stop requested mid-batch: leave it uncommitted */
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
        rd_kafka_consumer_close(d.consumer);
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
    md_event_parser_destroy(d.parser);
    free_batch(&d);
    md_config_destroy(d.cfg);
    return rc;
}
