/* kafka.h (private): librdkafka's configuration, built in one place for
 * every Kafka client momentd makes: the daemon's consumer and producer and
 * backtest's reader of recorded topics.
 *
 * The order is the contract: bootstrap.servers, kafka.common, then the
 * role's pass-through (kafka.consumer or kafka.producer), then the settings
 * momentd's guarantees rest on, which the pass-through cannot override
 * (manual commits for the consumer, idempotence and acks=all for the
 * producer). */
#ifndef MOMENTD_KAFKA_H
#define MOMENTD_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "momentd/config.h"

typedef enum md_kafka_role {
    MD_KAFKA_CONSUMER, /* the daemon's group member: commits by hand, after a batch is done */
    MD_KAFKA_PRODUCER, /* idempotent, acks=all: a retry never doubles or reorders a moment */
    MD_KAFKA_READER    /* reads topics to their end (partition EOF), commits nothing */
} md_kafka_role;

/* Why librdkafka refused a property: where it came from ("kafka.common",
 * "kafka.consumer", ..., or "momentd" for momentd's own), its name, and
 * librdkafka's words, except for a secret, whose value they would quote. */
typedef struct md_kafka_refusal {
    const char *where;
    char property[128];
    char error[512];
} md_kafka_refusal;

/* A new configuration for role; group (NULL: kafka.group_id) is the
 * consumer group for the consumer and the reader. NULL with *why filled when
 * librdkafka refuses a property. The caller owns the result until
 * rd_kafka_new takes it. */
rd_kafka_conf_t *md_kafka_conf_new(const md_config *cfg, md_kafka_role role, const char *group, md_kafka_refusal *why);

#endif
