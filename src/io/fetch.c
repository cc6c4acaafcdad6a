/* fetch.c: the consumer read fairly, partition by partition, in event-time
 * order across topics (fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "momentd/event.h"

/* Messages held ahead per partition: enough for a batch's share and to see
 * where each partition stands, few enough to cost nothing (librdkafka's
 * prefetch holds the rest). */
#define LOOKAHEAD 1024
#define NO_TIME INT64_MIN /* a message without a readable event time */
/* A partition that had a message this recently, and has less than
 * kafka.backlog_share of a batch waiting, is live: its next event should
 * not wait behind a backlog's batch (a live partition can be quiet for
 * seconds between two customers' events). */
#define LIVE_MS 10000

typedef struct held {
    rd_kafka_message_t *m;
    int64_t ts; /* event time, or NO_TIME */
} held;

typedef struct part {
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *q;
    held *ahead; /* ring of LOOKAHEAD, taken from q, not yet handed out */
    size_t head, len;
    int64_t last_ts;     /* newest event time taken from q (NO_TIME: none yet) */
    bool at_end;         /* q reported the partition's end and nothing came since */
    int64_t empty_since; /* monotonic ms it has been empty while behind; -1: not waiting */
    bool gave_up;        /* waited align_wait: read around until it has messages */
    int64_t due;         /* this round: the latest event time it may hand out */
    int64_t last_msg;    /* monotonic ms its last message was taken from q */
    int64_t receiving_at; /* monotonic ms a message last came after it had reported its end: live traffic */
    size_t given;        /* handed out by the take in progress */
} part;

struct md_fetcher {
    rd_kafka_t *rk;
    rd_kafka_queue_t *main; /* the consumer's own: rebalances, errors, and messages forwarded before a queue was taken out */
    part *parts;
    size_t n, cap;
    size_t next; /* where the next round starts, so no partition always goes first */
    int wake[2]; /* librdkafka writes a byte here when a queue that was empty is not */
    int64_t slack_ms, wait_ms;
    double backlog_share;
    double time_share;       /* of the loop's time, for a backlog while another partition is receiving */
    int64_t took_backlog_us; /* when (monotonic us) the last take handed out a backlog's messages; 0: it did not */
    int64_t backlog_next_us; /* a backlog waits until then */
    uint64_t gave_up, held;
};

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

md_fetcher *md_fetcher_new(rd_kafka_t *rk, const md_cfg_kafka *k) {
    md_fetcher *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->rk = rk;
    md_fetcher_configure(f, k);
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

void md_fetcher_configure(md_fetcher *f, const md_cfg_kafka *k) {
    f->slack_ms = k->align_slack_ms;
    f->wait_ms = k->align_wait_ms;
    f->backlog_share = k->backlog_share;
    f->time_share = k->backlog_time_share;
}

uint64_t md_fetcher_gave_up(const md_fetcher *f) { return f ? f->gave_up : 0; }
uint64_t md_fetcher_backlog_held(const md_fetcher *f) { return f ? f->held : 0; }

static void drop(md_fetcher *f, size_t i) {
    part *p = &f->parts[i];
    /* What the lookahead holds was never handed out, so never committed:
     * whoever owns the partition next reads it again. */
    for (size_t k = 0; k < p->len; k++) rd_kafka_message_destroy(p->ahead[(p->head + k) % LOOKAHEAD].m);
    free(p->ahead);
    /* Back to the consumer's queue: what it still holds is read from there,
     * and librdkafka purges it when the partition goes. */
    rd_kafka_queue_io_event_enable(p->q, -1, NULL, 0);
    rd_kafka_queue_forward(p->q, f->main);
    rd_kafka_queue_destroy(p->q);
    free(p->topic);
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

static int by_partition(const void *a, const void *b) {
    const part *x = a, *y = b;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return strcmp(x->topic, y->topic);
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
        held *ahead = malloc(LOOKAHEAD * sizeof(*ahead));
        if (!q || !topic || !ahead) {
            if (q) rd_kafka_queue_destroy(q);
            free(topic);
            free(ahead);
            continue;
        }
        rd_kafka_queue_forward(q, NULL);
        rd_kafka_queue_io_event_enable(q, f->wake[1], "1", 1);
        f->parts[f->n++] = (part){topic, tp->partition, q, ahead, 0, 0, NO_TIME, false, -1, false, INT64_MAX, INT64_MIN / 2, 0, 0};
    }
    /* By partition number: the alignment's groups are runs of one number. */
    qsort(f->parts, f->n, sizeof(*f->parts), by_partition);
    if (f->next >= f->n) f->next = 0;
}

/* Tops a partition's lookahead up from its queue. The end of the partition
 * is a mark, not a message: it is kept as at_end and the message dropped. */
static void refill(md_fetcher *f, part *p, int64_t now) {
    rd_kafka_message_t *got[256];
    while (p->len < LOOKAHEAD) {
        size_t want = LOOKAHEAD - p->len < 256 ? LOOKAHEAD - p->len : 256;
        ssize_t n = rd_kafka_consume_batch_queue(p->q, 0, got, want);
        if (n <= 0) return;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = got[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                p->at_end = true;
                rd_kafka_message_destroy(m);
                continue;
            }
            int64_t ts = NO_TIME;
            if (!m->err) {
                if (p->at_end) p->receiving_at = now;
                p->at_end = false;
                p->gave_up = false;
                p->last_msg = now;
                if (f->slack_ms > 0 && m->payload && md_event_peek_time(m->payload, m->len, &ts) && ts > p->last_ts) p->last_ts = ts;
            }
            p->ahead[(p->head + p->len++) % LOOKAHEAD] = (held){m, ts};
        }
        if ((size_t)n < want) return;
    }
}

/* Sets the due time of the group parts[lo, hi) (one partition number of
 * every input topic: co-partitioned topics keyed by customer put all of a
 * customer's events there, as Kafka Streams' tasks assume): align_slack
 * after the earliest a partition of the group can still give (its next
 * message's time; for one with nothing fetched that is not at its end, its
 * last message's time, or anything if it has had none). INT64_MAX without
 * the alignment or when nothing holds back; NO_TIME when only messages
 * without a time are due. Another partition number's backlog holds this
 * group back in nothing. */
static void set_due(md_fetcher *f, size_t lo, size_t hi, int64_t now) {
    int64_t earliest = INT64_MAX;
    bool none_seen = false;
    for (size_t i = lo; i < hi && f->slack_ms > 0; i++) {
        part *p = &f->parts[i];
        if (p->len > 0) {
            p->empty_since = -1;
            int64_t ts = p->ahead[p->head].ts;
            if (ts != NO_TIME && ts < earliest) earliest = ts;
            continue;
        }
        if (p->at_end || p->gave_up) continue;
        if (p->empty_since < 0) p->empty_since = now;
        if (now - p->empty_since >= f->wait_ms) {
            p->gave_up = true;
            f->gave_up++;
            continue;
        }
        if (p->last_ts == NO_TIME) none_seen = true;
        else if (p->last_ts < earliest) earliest = p->last_ts;
    }
    int64_t due = none_seen ? NO_TIME : earliest == INT64_MAX ? INT64_MAX : earliest + f->slack_ms;
    for (size_t i = lo; i < hi; i++) f->parts[i].due = due;
}

/* Rounds over the partitions, a fair share each of what is due, until cap
 * or a round hands out nothing; the consumer's own queue first. */
static size_t take(md_fetcher *f, rd_kafka_message_t **out, size_t cap) {
    size_t k = 0;
    /* Events (a rebalance, an error) and messages forwarded before their
     * partition's queue was taken out come first: those are the oldest. */
    rd_kafka_message_t *m;
    while (k < cap && (m = rd_kafka_consumer_poll(f->rk, 0))) out[k++] = m;
    int64_t now_us = mono_us(), now = now_us / 1000;
    /* A partition with a backlog takes at most backlog_share of the batch
     * while another one is live (a message in the last LIVE_MS, and less
     * than that share waiting): a batch of 2,000 of a flood's messages
     * takes 30-100 ms, and the live partitions' new events would wait for
     * it. When every partition has a backlog (a bootstrap) or none has,
     * batches fill. */
    size_t limit = (size_t)((double)cap * f->backlog_share), backlog_cap = cap;
    if (limit == 0) limit = 1;
    bool receiving = false;
    for (size_t j = 0; j < f->n; j++) {
        part *p = &f->parts[j];
        p->given = 0;
        if (p->len < LOOKAHEAD / 2) refill(f, p, now);
        if (now - p->last_msg < LIVE_MS && p->len < limit) backlog_cap = limit;
        if (p->receiving_at && now - p->receiving_at < LIVE_MS && p->len < limit) receiving = true;
    }
    /* And it takes at most backlog_time_share of the loop's time while
     * another partition is receiving (caught up, with new messages): a
     * flood read flat out keeps the machine busy (momentd, Redis, the
     * broker serving it) and every other event waits for a core. After a
     * take that handed out a backlog, the batch took now - that take: the
     * backlog then waits (1/share - 1) times that, while the live
     * partitions' events go through at once. A bootstrap, where nothing
     * is receiving, is never paced. */
    if (f->took_backlog_us) {
        f->backlog_next_us = now_us + (int64_t)((double)(now_us - f->took_backlog_us) * (1 / f->time_share - 1));
        f->took_backlog_us = 0;
    }
    bool pace = receiving && backlog_cap < cap && f->time_share < 1, hold = pace && now_us < f->backlog_next_us;
    bool gave_backlog = false, held_one = false;
    while (k < cap && f->n) {
        size_t n = f->n, start = f->next, before = k;
        for (size_t lo = 0, hi; lo < n; lo = hi) {
            for (hi = lo + 1; hi < n && f->parts[hi].partition == f->parts[lo].partition;) hi++;
            set_due(f, lo, hi, now);
        }
        size_t share = (cap - k) / n;
        if (share == 0) share = 1;
        for (size_t j = 0; j < n && k < cap; j++) {
            part *p = &f->parts[(start + j) % n];
            size_t room = backlog_cap - p->given < share ? backlog_cap - p->given : share;
            if (pace && p->len >= limit) { /* a backlog */
                if (hold) room = 0, held_one = true;
                else gave_backlog = true;
            }
            for (size_t given = 0; given < room && k < cap && p->len > 0; given++) {
                held *h = &p->ahead[p->head];
                if (h->ts != NO_TIME && h->ts > p->due) break; /* ahead of its group: it waits */
                out[k++] = h->m;
                p->head = (p->head + 1) % LOOKAHEAD;
                p->len--;
                p->given++;
            }
        }
        f->next = (f->next + 1) % n;
        if (k == before) break;
        for (size_t j = 0; j < n; j++) /* for the next round: the lookaheads were filled before the first */
            if (f->parts[j].len < LOOKAHEAD / 2) refill(f, &f->parts[j], now);
    }
    if (gave_backlog) f->took_backlog_us = now_us;
    f->held += held_one;
    return k;
}

size_t md_fetcher_poll(md_fetcher *f, rd_kafka_message_t **out, size_t cap, int timeout_ms) {
    char drain[64];
    while (read(f->wake[0], drain, sizeof(drain)) > 0) {
    }
    size_t k = take(f, out, cap);
    if (k || timeout_ms <= 0) return k;
    int64_t turn_ms = (f->backlog_next_us - mono_us() + 999) / 1000; /* a backlog's turn, when one waits */
    if (turn_ms > 0 && turn_ms < timeout_ms) timeout_ms = (int)turn_ms;
    /* Nothing due yet: sleep until a queue that was empty is not (the pipe),
     * at most timeout_ms, then look again (an alignment wait ends there at
     * the latest). A byte written between the drain and the poll wakes it
     * at once. */
    struct pollfd pfd = {f->wake[0], POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) > 0)
        while (read(f->wake[0], drain, sizeof(drain)) > 0) {
        }
    return take(f, out, cap);
}
