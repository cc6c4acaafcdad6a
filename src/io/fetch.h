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
 * message, or at an event of the consumer's own queue (a rebalance).
 *
 * Event-time alignment (kafka.align_slack, kafka.align_wait). momentd reads
 * several topics whose partitions fill at different rates in event time: on
 * a backlog, fair shares in messages let the sparse topics run weeks ahead
 * of the dense one, and the customer's newest event moves so far ahead that
 * the dense topic's events fall beyond limits.max_lateness (an unpaced
 * 60-day backlog of three topics lost 45% of its events that way). So the
 * fetcher holds a few messages of each partition ahead (the lookahead),
 * reads each one's event time (md_event_peek_time), and hands out only
 * those at most align_slack after the earliest next event among the
 * partitions of the same number: the partitions that run ahead wait, as
 * Kafka Streams does with the earliest record among a task's partitions.
 * The input topics are co-partitioned (keyed by customer, the same
 * partition count), so a customer's events all share a partition number,
 * and a backlog on partition 0 holds nothing of partition 1 back (a hot
 * customer's flood of old events costs only its own partition number's
 * customers). A partition with
 * nothing fetched holds the others at its last event's time until it has
 * messages, reports its end (PARTITION_EOF: caught up, it holds nothing
 * back, so live traffic never waits) or align_wait passes. Messages with
 * no readable time are never held. A partition's own order is kept.
 *
 * A flood on one partition (a hot customer, a producer catching up) while
 * the others are live: a partition that is behind takes at most
 * kafka.backlog_share of a batch while another partition is live (a message in
 * the last 10 seconds, and less than that share waiting), so a batch stays short and the live
 * partitions' events do not wait for 2,000 of the flood's. */
#ifndef MOMENTD_FETCH_H
#define MOMENTD_FETCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/config.h"

typedef struct md_fetcher md_fetcher;

/* For rk, a subscribed consumer with enable.partition.eof, with k's
 * align_slack (0: no alignment), align_wait and backlog_share. NULL on
 * failure (out of memory, no pipe). */
md_fetcher *md_fetcher_new(rd_kafka_t *rk, const md_cfg_kafka *k);
/* A reload's new settings. */
void md_fetcher_configure(md_fetcher *f, const md_cfg_kafka *k);
/* How many times a partition's align_wait ran out (it was then read around). */
uint64_t md_fetcher_gave_up(const md_fetcher *f);
/* Times a backlog waited its turn (kafka.backlog_time_share). */
uint64_t md_fetcher_backlog_held(const md_fetcher *f);
/* Forgets every partition queue; before rd_kafka_consumer_close. Accepts NULL. */
void md_fetcher_destroy(md_fetcher *f);

/* From the rebalance callback, after the assignment changed: parts were
 * assigned (assigned true) or revoked. */
void md_fetcher_rebalance(md_fetcher *f, const rd_kafka_topic_partition_list_t *parts, bool assigned);

/* Up to cap messages into out (the caller destroys each), in turn from
 * every partition that has some due by the alignment, waiting up to
 * timeout_ms for the first; rebalances and errors are served meanwhile.
 * Returns how many. */
size_t md_fetcher_poll(md_fetcher *f, rd_kafka_message_t **out, size_t cap, int timeout_ms);

#endif
