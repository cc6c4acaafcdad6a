/* fetch.c: the consumer read fairly, partition by partition (fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct part {
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *q;
} part;

struct md_fetcher {
    rd_kafka_t *rk;
    rd_kafka_queue_t *main; /* the consumer's own: rebalances, errors, and messages forwarded before a queue was taken out */
    part *parts;
    size_t n, cap;
    size_t next; /* where the next round starts, so no partition always goes first */
    int wake[2]; /* librdkafka writes a byte here when a queue that was empty is not */
};

md_fetcher *md_fetcher_new(rd_kafka_t *rk) {
    md_fetcher *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->rk = rk;
    if (pipe(f->wake) != 0) {
        free(f);
        return NULL;
    }
    for (int i = 0; i < 2; i++) fcntl(f->wake[i], F_SETFL, fcntl(f->wake[i], F_GETFL) | O_NONBLOCK);
    f->main = rd_kafka_queue_get_consumer(rk);
    if (!f->main) {
        close(f->wake[0]);
        close(f->wake[1]);
        free(f);
        return NULL;
    }
    rd_kafka_queue_io_event_enable(f->main, f->wake[1], "1", 1);
    return f;
}

static void drop(md_fetcher *f, size_t i) {
    /* Back to the consumer's queue: what it still holds is read from there,
     * and librdkafka purges it when the partition goes. */
    rd_kafka_queue_io_event_enable(f->parts[i].q, -1, NULL, 0);
    rd_kafka_queue_forward(f->parts[i].q, f->main);
    rd_kafka_queue_destroy(f->parts[i].q);
    free(f->parts[i].topic);
    f->parts[i] = f->parts[--f->n];
}

void md_fetcher_destroy(md_fetcher *f) {
    if (!f) return;
    while (f->n) drop(f, f->n - 1);
    rd_kafka_queue_io_event_enable(f->main, -1, NULL, 0);
    rd_kafka_queue_destroy(f->main);
    close(f->wake[0]);
    close(f->wake[1]);
    free(f->parts);
    free(f);
}

static size_t find(const md_fetcher *f, const char *topic, int32_t partition) {
    for (size_t i = 0; i < f->n; i++)
        if (f->parts[i].partition == partition && strcmp(f->parts[i].topic, topic) == 0) return i;
    return f->n;
}

void md_fetcher_rebalance(md_fetcher *f, const rd_kafka_topic_partition_list_t *parts, bool assigned) {
    if (!f || !parts) return;
    for (int k = 0; k < parts->cnt; k++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[k];
        size_t i = find(f, tp->topic, tp->partition);
        if (!assigned) {
            if (i < f->n) drop(f, i);
            continue;
        }
        if (i < f->n) continue;
        if (f->n == f->cap) {
            size_t nc = f->cap ? f->cap * 2 : 16;
            part *np = realloc(f->parts, nc * sizeof(*np));
            if (!np) continue; /* the partition stays on the consumer's queue: read all the same, only not in turn */
            f->parts = np;
            f->cap = nc;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_get_partition(f->rk, tp->topic, tp->partition);
        char *topic = strdup(tp->topic);
        if (!q || !topic) {
            if (q) rd_kafka_queue_destroy(q);
            free(topic);
            continue;
        }
        rd_kafka_queue_forward(q, NULL);
        rd_kafka_queue_io_event_enable(q, f->wake[1], "1", 1);
        f->parts[f->n++] = (part){topic, tp->partition, q};
    }
    if (f->next >= f->n) f->next = 0;
}

/* Rounds over the partitions, share messages each, until cap or a round
 * finds nothing; then the consumer's own queue. */
static size_t take(md_fetcher *f, rd_kafka_message_t **out, size_t cap) {
    size_t k = 0;
    /* Events (a rebalance, an error) and messages forwarded before their
     * partition's queue was taken out come first: those are the oldest. */
    rd_kafka_message_t *m;
    while (k < cap && (m = rd_kafka_consumer_poll(f->rk, 0))) out[k++] = m;
    for (bool more = true; k < cap && more && f->n;) {
        more = false;
        size_t share = (cap - k) / f->n;
        if (share == 0) share = 1;
        size_t n = f->n, start = f->next;
        for (size_t j = 0; j < n && k < cap && f->n == n; j++) {
            part *p = &f->parts[(start + j) % n];
            size_t want = share < cap - k ? share : cap - k;
            ssize_t got = rd_kafka_consume_batch_queue(p->q, 0, out + k, want);
            if (got > 0) {
                k += (size_t)got;
                if ((size_t)got == want) more = true; /* it may hold more */
            }
        }
        if (f->n) f->next = (f->next + 1) % f->n;
    }
    return k;
}

size_t md_fetcher_poll(md_fetcher *f, rd_kafka_message_t **out, size_t cap, int timeout_ms) {
    char drain[64];
    while (read(f->wake[0], drain, sizeof(drain)) > 0) {
    }
    size_t k = take(f, out, cap);
    if (k || timeout_ms <= 0) return k;
    /* Nothing yet: sleep until a queue that was empty is not (the pipe), at
     * most timeout_ms, then look again. A byte written between the drain and
     * the poll wakes it at once. */
    struct pollfd pfd = {f->wake[0], POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) > 0)
        while (read(f->wake[0], drain, sizeof(drain)) > 0) {
        }
    return take(f, out, cap);
}
