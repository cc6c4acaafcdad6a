/* fetch.h (private): the daemon's consumer read fairly, partition by
 * partition.
 *
 * rd_kafka_consumer_poll serves one queue for every assigned partition, in
 * the order librdkafka fetched them: a partition with a backlog (a hot
 * customer's flood, a producer catching up) fills the prefetch, and every
 * other partition's new events wait behind it (bench/run's hot-customer
 * phase: the others' p99 went from 2 ms to 1.3-1.8 s). The fetcher takes
 * each assigned partition's queue out of that one (rd_kafka_queue_forward
 * to NULL) and fills a batch from them in turn, a fair share each, so a
 * batch holds every partition that has something; a partition's own order
 * is kept. librdkafka signals a queue that was empty and is not through a
 * pipe, so an idle daemon sleeps in poll(2) and wakes at the first
 * message, or at an event of the consumer's own queue (a rebalance). */
#ifndef MOMENTD_FETCH_H
#define MOMENTD_FETCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct md_fetcher md_fetcher;

/* For rk, a subscribed consumer; NULL on failure (out of memory, no pipe). */
md_fetcher *md_fetcher_new(rd_kafka_t *rk);
/* Forgets every partition queue; before rd_kafka_consumer_close. Accepts NULL. */
void md_fetcher_destroy(md_fetcher *f);

/* From the rebalance callback, after the assignment changed: parts were
 * assigned (assigned true) or revoked. */
void md_fetcher_rebalance(md_fetcher *f, const rd_kafka_topic_partition_list_t *parts, bool assigned);

/* Up to cap messages into out (the caller destroys each), in turn from
 * every partition that has some, waiting up to timeout_ms for the first;
 * rebalances and errors are served meanwhile. Returns how many. */
size_t md_fetcher_poll(md_fetcher *f, rd_kafka_message_t **out, size_t cap, int timeout_ms);

#endif
