/* test_kafka.c: the librdkafka configuration momentd builds (kafka.c), for
 * every client: momentd's own settings win over the pass-through, the
 * documented keys reach librdkafka, a refusal names its setting and never
 * quotes a secret. No broker needed: nothing connects. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "kafka.h"

static char *get(rd_kafka_conf_t *conf, const char *name) {
    static char v[512];
    size_t n = sizeof(v);
    cr_assert_eq(rd_kafka_conf_get(conf, name, v, &n), RD_KAFKA_CONF_OK, "%s is not set", name);
    return v;
}

Test(kafka, delivery_timeout_is_the_message_timeout) {
    char err[512];
    md_config *cfg = th_config_with("\"group_id\": \"momentd\"", "\"group_id\": \"momentd\", \"delivery_timeout\": \"45s\"", err, sizeof(err));
    cr_assert(cfg, "%s", err);
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(cfg, MD_KAFKA_PRODUCER, NULL, &why);
    cr_assert(conf, "%s: %s: %s", why.where, why.property, why.error);
    cr_assert_str_eq(get(conf, "message.timeout.ms"), "45000");
    cr_assert_str_eq(get(conf, "enable.idempotence"), "true");
    cr_assert_str_eq(get(conf, "acks"), "-1", "acks=all");
    rd_kafka_conf_destroy(conf);
    md_config_destroy(cfg);
}

Test(kafka, momentd_settings_win_over_the_pass_through) {
    char err[512];
    md_config *cfg = th_config_with("\"consumer\": {\"fetch.wait.max.ms\": \"50\"}",
                                    "\"consumer\": {\"fetch.wait.max.ms\": \"50\", \"enable.auto.commit\": \"true\"}", err, sizeof(err));
    cr_assert(cfg, "%s", err);
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(cfg, MD_KAFKA_CONSUMER, NULL, &why);
    cr_assert(conf);
    cr_assert_str_eq(get(conf, "enable.auto.commit"), "false", "offsets are committed only after a batch is done");
    cr_assert_str_eq(get(conf, "fetch.wait.max.ms"), "50");
    cr_assert_str_eq(get(conf, "group.id"), "momentd");
    rd_kafka_conf_destroy(conf);
    md_config_destroy(cfg);
}

/* sasl.jaas.config is a secret by name and unknown to librdkafka (a Java
 * client's setting): refused, named, and its value never repeated. */
Test(kafka, a_refused_secret_is_named_not_quoted) {
    char err[512];
    md_config *cfg = th_config_with("\"consumer\": {\"fetch.wait.max.ms\": \"50\"}",
                                    "\"common\": {\"sasl.jaas.config\": \"hunter2-secret\"}, \"consumer\": {\"fetch.wait.max.ms\": \"50\"}",
                                    err, sizeof(err));
    cr_assert(cfg, "%s", err);
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(cfg, MD_KAFKA_PRODUCER, NULL, &why);
    cr_assert_null(conf, "an unknown property must be refused");
    cr_assert_str_eq(why.where, "kafka.common");
    cr_assert_str_eq(why.property, "sasl.jaas.config");
    cr_assert_null(strstr(why.error, "hunter2"), "the error quotes the secret: %s", why.error);
    md_config_destroy(cfg);
}

/* The fetcher reads each partition from its own queue, where librdkafka's
 * prefetch bounds count per partition: momentd's defaults keep a backlog of
 * many partitions from filling memory, and a fetch takes at most 128 KB of
 * one partition so that a backlog appearing at once does not hold the live
 * partitions' messages behind megabytes of it; the pass-through still sets
 * them. The
 * fetcher's alignment needs each partition's end reported. */
Test(kafka, consumer_prefetch_bounded_per_partition) {
    char err[512];
    md_config *cfg = th_config_with("\"group_id\": \"momentd\"", "\"group_id\": \"momentd\"", err, sizeof(err));
    cr_assert(cfg, "%s", err);
    md_kafka_refusal why;
    rd_kafka_conf_t *conf = md_kafka_conf_new(cfg, MD_KAFKA_CONSUMER, NULL, &why);
    cr_assert(conf);
    cr_assert_str_eq(get(conf, "queued.max.messages.kbytes"), "512");
    cr_assert_str_eq(get(conf, "queued.min.messages"), "2000");
    cr_assert_str_eq(get(conf, "fetch.message.max.bytes"), "131072");
    cr_assert_str_eq(get(conf, "enable.partition.eof"), "true");
    rd_kafka_conf_destroy(conf);
    md_config_destroy(cfg);
    cfg = th_config_with("\"consumer\": {\"fetch.wait.max.ms\": \"50\"}",
                         "\"consumer\": {\"fetch.wait.max.ms\": \"50\", \"queued.max.messages.kbytes\": \"8192\", \"max.partition.fetch.bytes\": \"1048576\"}",
                         err, sizeof(err));
    cr_assert(cfg, "%s", err);
    conf = md_kafka_conf_new(cfg, MD_KAFKA_CONSUMER, NULL, &why);
    cr_assert(conf);
    cr_assert_str_eq(get(conf, "queued.max.messages.kbytes"), "8192", "kafka.consumer sets it");
    cr_assert_str_eq(get(conf, "fetch.message.max.bytes"), "1048576", "kafka.consumer sets it, by its other name too");
    rd_kafka_conf_destroy(conf);
    md_config_destroy(cfg);
}
