/* kafka.c: librdkafka's configuration for every client (kafka.h). */
#include "kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool set(rd_kafka_conf_t *conf, const char *where, const char *k, const char *v, md_kafka_refusal *why) {
    if (rd_kafka_conf_set(conf, k, v, why->error, sizeof(why->error)) == RD_KAFKA_CONF_OK) return true;
    why->where = where;
    snprintf(why->property, sizeof(why->property), "%s", k);
    /* librdkafka's message quotes the value: not for a secret. */
    if (md_config_key_is_secret(k)) snprintf(why->error, sizeof(why->error), "librdkafka rejected the value (not shown: it is a secret)");
    return false;
}

static bool set_all(rd_kafka_conf_t *conf, const char *where, const md_kv *kv, size_t n, md_kafka_refusal *why) {
    for (size_t i = 0; i < n; i++)
        if (!set(conf, where, kv[i].key, kv[i].value, why)) return false;
    return true;
}

rd_kafka_conf_t *md_kafka_conf_new(const md_config *cfg, md_kafka_role role, const char *group, md_kafka_refusal *why) {
    const md_cfg_kafka *k = &cfg->kafka;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = set(conf, "kafka.brokers", "bootstrap.servers", k->brokers, why) &&
              set_all(conf, "kafka.common", k->common, k->n_common, why);
    switch (role) {
    case MD_KAFKA_CONSUMER:
        /* The fetcher reads every partition from its own queue, and then
         * librdkafka's prefetch bounds apply per partition, not to the
         * consumer: its defaults (100,000 messages, 64 MB) let a backlog of
         * 20 partitions take 300 MB (bench/run) and could take gigabytes.
         * 2,000 messages and 512 KB a partition still hold half a second of
         * input at full speed, where a fetch takes milliseconds (each message
         * also costs librdkafka a few hundred bytes beside its payload, and
         * a fetch buffer is kept whole while a message of it waits: with
         * 10,000 and 2 MB the prefetch of 12 partitions took about 100 MB of
         * momentd's 191 MB peak; with 4,000 and 1 MB 43-49 MB, with these
         * 13-15 MB less, at the same speed: BENCHMARKS.md). And at most 128 KB of a
         * partition per fetch (librdkafka: 1 MB): every partition of a
         * broker comes in one fetch response,
         * parsed whole, so when a backlog appears at once (a burst committed
         * in one transaction, bench/run) the live partitions' next messages
         * waited behind two responses of 1 MB of it: every other customer's
         * trigger late by up to 38 ms at that moment, by 8 at most with
         * 128 KB, and a backlog is read as fast (BENCHMARKS.md).
         * kafka.consumer may set any of them. */
        ok = ok && set(conf, "momentd", "queued.min.messages", "2000", why) &&
             set(conf, "momentd", "queued.max.messages.kbytes", "512", why) &&
             set(conf, "momentd", "fetch.message.max.bytes", "131072", why) &&
             set_all(conf, "kafka.consumer", k->consumer, k->n_consumer, why) &&
             set(conf, "kafka.group_id", "group.id", group ? group : k->group_id, why) &&
             set(conf, "momentd", "enable.auto.commit", "false", why) &&
             set(conf, "momentd", "enable.auto.offset.store", "false", why) &&
             set(conf, "momentd", "auto.offset.reset", "earliest", why) &&
             /* The fetcher's event-time alignment: a partition at its end
              * holds no other back. */
             set(conf, "momentd", "enable.partition.eof", "true", why);
        break;
    case MD_KAFKA_PRODUCER: {
        /* kafka.delivery_timeout is librdkafka's message timeout: a moment
         * not acknowledged by then is reported failed, and the daemon's sink
         * produces it again (same trigger id). The pass-through may still
         * set message.timeout.ms itself. */
        char ms[32];
        snprintf(ms, sizeof(ms), "%lld", (long long)k->delivery_timeout_ms);
        ok = ok && set(conf, "kafka.delivery_timeout", "message.timeout.ms", ms, why) &&
             set_all(conf, "kafka.producer", k->producer, k->n_producer, why) &&
             set(conf, "momentd", "enable.idempotence", "true", why) &&
             set(conf, "momentd", "acks", "all", why);
        break;
    }
    case MD_KAFKA_READER:
        ok = ok && set(conf, "momentd", "group.id", group ? group : k->group_id, why) &&
             set(conf, "momentd", "enable.partition.eof", "true", why) &&
             set(conf, "momentd", "enable.auto.commit", "false", why);
        break;
    }
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}
