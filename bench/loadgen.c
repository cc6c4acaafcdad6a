/* loadgen.c: the benchmark's load generator. Writes realistic payment,
 * call-centre and app-login streams for N customers straight to Kafka with
 * librdkafka, either as a 180-day history (the pre-load) or as live traffic at
 * a fixed rate or flat out.
 *
 *   loadgen history --brokers B [--customers N] [--days D] [--ending-days-ago A]
 *                   [--seed S] [--slice-days K] [--wait-group G] [--topic-prefix P]
 *   loadgen live    --brokers B [--customers N] [--seed S] [--tag T]
 *                   (--events E | --seconds S) [--rate R] [--appends FILE]
 *                   [--replay-days-ago A --replay-days D [--slice-days K]
 *                   [--wait-group G]] [--topic-prefix P]
 *   loadgen burst   --brokers B --topic T --input FILE
 *
 * The customers and their stories are tools/stories.c's, the same the
 * demo's gen_events prints: every customer has a story fixed by the seed and
 * the customer's number, so history and live traffic agree on who the
 * customer is and a minority of them cross a campaign's threshold.
 *
 * history: profiles first, then D days (default 180) ending A days before
 * today (default 0: ending yesterday), day by day in event time. With
 * --wait-group it lets that consumer group fall at most K days (default 2)
 * behind: after every K days it waits until the group has committed what was
 * produced K days earlier: a bounded backlog, for a pre-load whose Redis
 * memory is measured as it grows. (momentd reads its topics in event-time
 * order, kafka.align_slack, so an unpaced backlog loses nothing either;
 * bench/run's throughput phase writes unpaced.)
 *
 * live: event times follow the wall clock, shifted back into the most recent
 * daytime hours in China (01:00-11:00 UTC) when it is night there, so that
 * channels' quiet hours do not suppress every moment; the shift is printed.
 * Without --rate it produces flat out. With --replay-days-ago A and
 * --replay-days D (and --events E), event times instead run evenly from
 * midnight UTC A days ago through D days, in production order: E events of
 * D days replayed as fast as they can be written (and, with --wait-group,
 * paced like a history), with a customer's events spread over days rather
 * than seconds. --appends writes "event_id append_ms"
 * for every delivered message, the broker's log-append time (the broker must
 * stamp it: log.message.timestamp.type=LogAppendTime), for latency.
 *
 * burst: the "key|value" lines of FILE to topic T in one transaction, made
 * visible at once: it writes them all, prints "written N" and waits for a
 * line (or the end) on stdin, then commits and prints "committed". A
 * consumer reading committed messages (librdkafka's default) sees none of
 * them until then and all of them after: a backlog that appears at once,
 * whose writing (the broker taking in N messages, a busy second on a shared
 * two-core box) is over before it is read.
 *
 * The last line on stdout is "produced N events E profiles P"; any delivery error makes the exit
 * status 1. Exit status 2: bad arguments. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "stories.h"

#define DAY_MS INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)

typedef struct {
    const char *brokers;
    long customers;
    int days, slice_days, ending_days_ago;
    int replay_days_ago, replay_days; /* live: 0 = wall clock */
    uint64_t seed;
    const char *wait_group; /* NULL: no pacing */
    const char *tag;        /* event id infix, so that runs never collide */
    long events;            /* live: stop after this many, or ... */
    double seconds;         /* ... after this long */
    long rate;              /* live: events/s, 0 = flat out */
    const char *appends_path;
    const char *topic_prefix;
} options;

typedef struct {
    rd_kafka_t *rk;
    char topic[4][128]; /* payments, calls, app-logins, customer-profiles */
    long produced, delivered, failed, profiles; /* profiles: delivered to the profiles topic */
    FILE *appends;        /* owned; NULL unless --appends */
    bool append_time_ok;  /* every delivery carried a log-append time */
    char first_error[256];
} generator;

/* Topic indices are the stories' (payments, calls, app-logins, profiles). */
enum { T_PAYMENTS = STORY_PAYMENTS, T_CALLS = STORY_CALLS, T_APP_LOGINS = STORY_APP_LOGINS, T_PROFILES = STORY_PROFILES };

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    generator *g = opaque;
    if (m->err) {
        if (!g->failed++)
            snprintf(g->first_error, sizeof(g->first_error), "%s: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    g->delivered++;
    if (!strcmp(rd_kafka_topic_name(m->rkt), g->topic[T_PROFILES])) g->profiles++;
    if (!g->appends) return;
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (type != RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) g->append_time_ok = false;
    /* The event id is the payload's first field (see the printers below). */
    const char *p = m->payload, *key = "{\"event_id\":\"";
    size_t klen = strlen(key);
    if (m->len <= klen || memcmp(p, key, klen)) return;
    const char *id = p + klen, *end = memchr(id, '"', m->len - klen);
    if (end) fprintf(g->appends, "%.*s %" PRId64 "\n", (int)(end - id), id, ts);
}

static int produce(generator *g, int topic, const char *key, const char *json, int len) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(g->rk, RD_KAFKA_V_TOPIC(g->topic[topic]), RD_KAFKA_V_KEY(key, strlen(key)),
                                                    RD_KAFKA_V_VALUE((void *)json, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                    RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "loadgen: produce to %s: %s\n", g->topic[topic], rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(g->rk, 10); /* the local queue is full: let deliveries drain it */
    }
    g->produced++;
    rd_kafka_poll(g->rk, 0);
    return 0;
}

/* The stories' sink: each message straight to its topic. */
static int emit(void *ctx, story_topic t, const char *key, const char *json, int len) { return produce(ctx, (int)t, key, json, len); }

/* The high watermark of every partition of the four input topics, as the
 * offsets of a partition list (owned by the caller); NULL on error. */
static rd_kafka_topic_partition_list_t *high_watermarks(generator *g) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    for (int t = T_PAYMENTS; t <= T_PROFILES; t++) {
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(g->rk, g->topic[t], NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(g->rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err) {
            fprintf(stderr, "loadgen: metadata of %s: %s\n", g->topic[t], rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(parts);
            return NULL;
        }
        for (int p = 0; md->topic_cnt == 1 && p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, g->topic[t], md->topics[0].partitions[p].id);
        rd_kafka_metadata_destroy(md);
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t low;
        if (rd_kafka_query_watermark_offsets(g->rk, parts->elems[i].topic, parts->elems[i].partition, &low, &parts->elems[i].offset,
                                             10000))
            parts->elems[i].offset = 0; /* a partition never written to */
    }
    return parts;
}

/* Waits until group has committed, on every partition in want, at least the
 * offset there: momentd has processed all that was sent up to then. */
static int wait_for_group(rd_kafka_t *group, const rd_kafka_topic_partition_list_t *want, double timeout_s) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_copy(want);
    double deadline = mono_s() + timeout_s;
    int rc = -1;
    while (!stop_requested && mono_s() < deadline) {
        rd_kafka_resp_err_t err = rd_kafka_committed(group, parts, 10000);
        bool done = !err;
        for (int i = 0; done && i < parts->cnt; i++)
            if (want->elems[i].offset > 0 && parts->elems[i].offset < want->elems[i].offset) done = false;
        if (done) {
            rc = 0;
            break;
        }
        struct timespec nap = {0, 50 * 1000000};
        nanosleep(&nap, NULL);
    }
    if (rc) fprintf(stderr, "loadgen: group has not caught up within %.0f s (is momentd running with that group?)\n", timeout_s);
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* Keeps the generator at most one slice of event time ahead of a consumer
 * group (--wait-group): momentd reads the three topics independently, and a
 * backlog of weeks would let one topic run weeks ahead of another in event
 * time, beyond limits.max_lateness. The group still always has a slice to
 * read, so its own speed is what is measured. */
typedef struct pacer {
    rd_kafka_t *group;                       /* owned; NULL: no pacing */
    rd_kafka_topic_partition_list_t *behind; /* owned: where the previous slice ended */
} pacer;

static int pacer_init(pacer *p, const options *o) {
    p->group = NULL;
    p->behind = NULL;
    if (!o->wait_group) return 0;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", o->wait_group, err, sizeof(err)) ||
        !(p->group = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
        fprintf(stderr, "loadgen: group watcher: %s\n", err);
        return -1;
    }
    return 0;
}

/* A slice was written: wait until the group has read the one before it
 * (with catch_up, this one too). */
static int pacer_slice(pacer *p, generator *g, bool catch_up) {
    if (!p->group) return 0;
    if (rd_kafka_flush(g->rk, 60000)) {
        fprintf(stderr, "loadgen: messages still unsent after 60 s\n");
        return -1;
    }
    rd_kafka_topic_partition_list_t *now = high_watermarks(g);
    int rc = !now || (p->behind && wait_for_group(p->group, p->behind, 300)) || (catch_up && wait_for_group(p->group, now, 300)) ? -1 : 0;
    if (p->behind) rd_kafka_topic_partition_list_destroy(p->behind);
    p->behind = now;
    fprintf(stderr, ".");
    return rc;
}

static void pacer_fini(pacer *p) {
    if (p->behind) rd_kafka_topic_partition_list_destroy(p->behind);
    if (p->group) {
        fprintf(stderr, "\n");
        rd_kafka_destroy(p->group);
    }
}

static int run_history(generator *g, const options *o) {
    pacer p;
    /* Every customer drawn once, not once per day. */
    story_customer *all = malloc((size_t)o->customers * sizeof(*all));
    story_gen sg = {o->seed, o->tag, 0, emit, g};
    if (!all) {
        fprintf(stderr, "loadgen: out of memory for %ld customers\n", o->customers);
        return -1;
    }
    if (pacer_init(&p, o)) {
        free(all);
        return -1;
    }
    int rc = 0;
    for (long n = 0; n < o->customers && !rc; n++) {
        story_customer_get(o->seed, n, &all[n]);
        rc = story_profile(&sg, &all[n]);
    }
    /* By default the days end yesterday, so that today's live traffic comes
     * after them. */
    int64_t first_day = wall_ms() / DAY_MS * DAY_MS - (int64_t)(o->days + o->ending_days_ago) * DAY_MS;
    for (int d = 0; d < o->days && !rc && !stop_requested; d++) {
        for (long n = 0; n < o->customers && !rc; n++) rc = story_history_day(&sg, &all[n], n, d, first_day + d * DAY_MS);
        bool last = d + 1 == o->days;
        if (!rc && ((d + 1) % o->slice_days == 0 || last)) rc = pacer_slice(&p, g, last);
    }
    pacer_fini(&p);
    free(all);
    return rc;
}

/* The live event clock: now, or, at night in China, now shifted back to
 * 10:00 UTC of the same day (18:00 there), moving on with the wall clock. */
static int64_t daytime_shift_ms(int64_t now) {
    int64_t in_day = now % DAY_MS;
    if (in_day >= HOUR_MS && in_day < 11 * HOUR_MS) return 0;
    int64_t target = now / DAY_MS * DAY_MS + 10 * HOUR_MS;
    if (in_day < HOUR_MS) target -= DAY_MS;
    return now - target;
}

static int run_live(generator *g, const options *o) {
    pacer p;
    if (pacer_init(&p, o)) return -1;
    int rc = 0;
    int64_t shift = o->replay_days ? 0 : daytime_shift_ms(wall_ms());
    int64_t replay_from = wall_ms() / DAY_MS * DAY_MS - (int64_t)o->replay_days_ago * DAY_MS;
    double replay_step = o->replay_days ? (double)(o->replay_days * DAY_MS) / (double)o->events : 0;
    int64_t next_slice = replay_from + o->slice_days * DAY_MS; /* replays: where pacing looks again */
    if (shift) fprintf(stderr, "loadgen: event times are the wall clock minus %.2f h (night in China)\n", (double)shift / HOUR_MS);
    story_rng r = {story_mix(o->seed ^ story_mix((uint64_t)wall_ms()))};
    story_gen sg = {o->seed, o->tag, 0, emit, g};
    double t0 = mono_s();
    long sent = 0;
    story_customer c;
    while (!stop_requested) {
        double elapsed = mono_s() - t0;
        if ((o->events && sent >= o->events) || (o->seconds > 0 && elapsed >= o->seconds)) break;
        long due = o->rate ? (long)(elapsed * (double)o->rate) + 1 : sent + 1000;
        if (o->events && due > o->events) due = o->events;
        if (sent >= due) {
            rd_kafka_poll(g->rk, 1); /* paced: wait a millisecond, serving deliveries */
            continue;
        }
        int64_t ts = wall_ms() - shift;
        for (; sent < due && !rc; sent++) {
            if (o->replay_days) ts = replay_from + (int64_t)(replay_step * (double)sent);
            if (o->replay_days && ts >= next_slice) {
                rc = pacer_slice(&p, g, false);
                next_slice += o->slice_days * DAY_MS;
            }
            story_customer_get(o->seed, story_below(&r, o->customers), &c);
            if (!rc) rc = story_live_event(&sg, &c, ts, &r);
        }
        if (rc) break;
    }
    pacer_fini(&p);
    return rc;
}

/* Every mode's producer: the Java clients' partitioner, large batches, room
 * for a million queued messages, linger_ms of lingering, and one more
 * property (idempotence, or a transactional id). NULL after printing why. */
static rd_kafka_conf_t *producer_conf(const char *brokers, const char *linger_ms, const char *name, const char *value) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof(err)) || /* as the Java clients */
        rd_kafka_conf_set(conf, "linger.ms", linger_ms, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "batch.num.messages", "10000", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, name, value, err, sizeof(err))) {
        fprintf(stderr, "loadgen: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* burst: see the top. Returns 0, or -1 after printing why. */
static int run_burst(const char *brokers, const char *topic, const char *input) {
    FILE *in = fopen(input, "r");
    if (!in) {
        fprintf(stderr, "loadgen: %s: %s\n", input, strerror(errno));
        return -1;
    }
    char err[512], txn_id[64];
    snprintf(txn_id, sizeof(txn_id), "loadgen-burst-%ld", (long)getpid());
    rd_kafka_conf_t *conf = producer_conf(brokers, "20", "transactional.id", txn_id);
    if (!conf) {
        fclose(in);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "loadgen: %s\n", err);
        fclose(in);
        return -1;
    }
    int rc = -1;
    long n = 0;
    char line[8192];
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
    if (!e) e = rd_kafka_begin_transaction(rk);
    while (!e && fgets(line, sizeof(line), in)) {
        size_t len = strcspn(line, "\n");
        char *bar = memchr(line, '|', len);
        if (!bar || (line[len] != '\n' && !feof(in))) {
            fprintf(stderr, "loadgen: %s: line %ld is not key|value of under %zu bytes\n", input, n + 1, sizeof(line) - 1);
            goto out;
        }
        for (;;) {
            rd_kafka_resp_err_t r = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(line, (size_t)(bar - line)),
                                                      RD_KAFKA_V_VALUE(bar + 1, len - (size_t)(bar + 1 - line)),
                                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (r == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "loadgen: produce to %s: %s\n", topic, rd_kafka_err2str(r));
                goto out;
            }
            rd_kafka_poll(rk, 10);
        }
        n++;
        rd_kafka_poll(rk, 0);
    }
    if (!e && rd_kafka_flush(rk, 60000)) {
        fprintf(stderr, "loadgen: %d messages still unsent after 60 s\n", rd_kafka_outq_len(rk));
        goto out;
    }
    if (!e) {
        printf("written %ld\n", n);
        fflush(stdout);
        while (fgets(line, sizeof(line), stdin) == NULL && !feof(stdin) && errno == EINTR) {
        }
        e = rd_kafka_commit_transaction(rk, 60000);
    }
    if (e) {
        fprintf(stderr, "loadgen: transaction: %s\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        goto out;
    }
    printf("committed\nproduced %ld events %ld profiles 0\n", n, n);
    rc = 0;
out:
    /* Not committed: aborted now, so that a consumer reading committed
     * messages is not held at the open transaction until it times out. */
    if (rc) {
        rd_kafka_error_t *a = rd_kafka_abort_transaction(rk, 10000);
        if (a) rd_kafka_error_destroy(a);
    }
    rd_kafka_destroy(rk);
    fclose(in);
    return rc;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: %s wants an integer from %ld to %ld, got \"%s\"\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen history --brokers B [--customers N] [--days D] [--ending-days-ago A] [--seed S] [--slice-days K]\n"
            "                       [--wait-group G] [--topic-prefix P]\n"
            "       loadgen live --brokers B [--customers N] [--seed S] [--tag T] (--events E | --seconds S) [--rate R]\n"
            "                    [--appends FILE] [--replay-days-ago A --replay-days D [--slice-days K] [--wait-group G]]\n"
            "                    [--topic-prefix P]\n"
            "       loadgen burst --brokers B --topic T --input FILE\n");
}

int main(int argc, char **argv) {
    options o = {.customers = 100000, .days = 180, .slice_days = 2, .seed = 1, .tag = "", .topic_prefix = ""};
    if (argc < 2 || (strcmp(argv[1], "history") && strcmp(argv[1], "live") && strcmp(argv[1], "burst"))) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "burst")) {
        const char *brokers = NULL, *topic = NULL, *input = NULL;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--brokers")) brokers = argv[i + 1];
            else if (!strcmp(argv[i], "--topic")) topic = argv[i + 1];
            else if (!strcmp(argv[i], "--input")) input = argv[i + 1];
            else break;
        }
        if (!brokers || !topic || !input || argc != 8) {
            fprintf(stderr, "loadgen: burst needs --brokers B --topic T --input FILE, and nothing else\n");
            usage();
            return 2;
        }
        return run_burst(brokers, topic, input) ? 1 : 0;
    }
    bool live = !strcmp(argv[1], "live");
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!v) {
            fprintf(stderr, "loadgen: %s needs a value\n", f);
            return 2;
        }
        i++;
        if (!strcmp(f, "--brokers")) o.brokers = v;
        else if (!strcmp(f, "--customers") && !parse_long(f, v, 1, 100000000, &n)) o.customers = n;
        else if (!strcmp(f, "--seed") && !parse_long(f, v, 1, 1L << 40, &n)) o.seed = (uint64_t)n;
        else if (!strcmp(f, "--topic-prefix")) o.topic_prefix = v;
        else if (!live && !strcmp(f, "--days") && !parse_long(f, v, 1, 3650, &n)) o.days = (int)n;
        else if (!strcmp(f, "--slice-days") && !parse_long(f, v, 1, 30, &n)) o.slice_days = (int)n;
        else if (!strcmp(f, "--wait-group")) o.wait_group = v;
        else if (!live && !strcmp(f, "--ending-days-ago") && !parse_long(f, v, 0, 3650, &n)) o.ending_days_ago = (int)n;
        else if (live && !strcmp(f, "--replay-days-ago") && !parse_long(f, v, 1, 3650, &n)) o.replay_days_ago = (int)n;
        else if (live && !strcmp(f, "--replay-days") && !parse_long(f, v, 1, 3650, &n)) o.replay_days = (int)n;
        else if (live && !strcmp(f, "--tag") && strlen(v) < 16 && !strchr(v, '"')) o.tag = v;
        else if (live && !strcmp(f, "--events") && !parse_long(f, v, 1, 1000000000, &n)) o.events = n;
        else if (live && !strcmp(f, "--seconds") && !parse_long(f, v, 1, 86400, &n)) o.seconds = (double)n;
        else if (live && !strcmp(f, "--rate") && !parse_long(f, v, 1, 10000000, &n)) o.rate = n;
        else if (live && !strcmp(f, "--appends")) o.appends_path = v;
        else {
            fprintf(stderr, "loadgen: %s %s: unknown option for %s, or a bad value\n", f, v, argv[1]);
            usage();
            return 2;
        }
    }
    if (!o.brokers) {
        fprintf(stderr, "loadgen: --brokers is required\n");
        return 2;
    }
    if (live && !o.events && o.seconds <= 0) {
        fprintf(stderr, "loadgen: live needs --events or --seconds\n");
        return 2;
    }
    if (!o.replay_days != !o.replay_days_ago || (o.replay_days && (!o.events || o.rate || o.replay_days > o.replay_days_ago))) {
        fprintf(stderr, "loadgen: a replay needs --replay-days-ago A, --replay-days D <= A and --events, without --rate\n");
        return 2;
    }
    if (live && o.wait_group && !o.replay_days) {
        fprintf(stderr, "loadgen: --wait-group paces replays and histories, not live traffic\n");
        return 2;
    }
    if (!live) o.tag = "h";
    if (o.rate && o.seconds > 0 && !o.events) o.events = (long)((double)o.rate * o.seconds); /* exactly rate x seconds */

    generator g = {.append_time_ok = true};
    static const char *const names[] = {"payments", "calls", "app-logins", "customer-profiles"};
    for (int t = 0; t < 4; t++) snprintf(g.topic[t], sizeof(g.topic[t]), "%s%s", o.topic_prefix, names[t]);
    if (o.appends_path && !(g.appends = fopen(o.appends_path, "w"))) {
        fprintf(stderr, "loadgen: %s: %s\n", o.appends_path, strerror(errno));
        return 2;
    }
    char err[512];
    /* Flat out: large batches. Paced: send each millisecond's events at once. */
    rd_kafka_conf_t *conf = producer_conf(o.brokers, o.rate ? "1" : "20", "enable.idempotence", "true");
    if (!conf) return 2;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &g);
    if (!(g.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    double t0 = mono_s();
    int rc = live ? run_live(&g, &o) : run_history(&g, &o);
    if (rd_kafka_flush(g.rk, 60000)) fprintf(stderr, "loadgen: %d messages still unsent after 60 s\n", rd_kafka_outq_len(g.rk));
    double took = mono_s() - t0;
    long lost = g.produced - g.delivered - g.failed;
    rd_kafka_destroy(g.rk);
    if (g.appends && fclose(g.appends)) rc = -1;
    if (g.failed || lost) {
        fprintf(stderr, "loadgen: %ld of %ld messages not delivered (first error: %s)\n", g.failed + lost, g.produced,
                g.failed ? g.first_error : "none reported");
        rc = -1;
    }
    if (o.appends_path && !g.append_time_ok) {
        fprintf(stderr, "loadgen: the broker did not stamp log-append times; %s holds create times\n", o.appends_path);
        rc = -1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* librdkafka's threads included */
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    fprintf(stderr, "loadgen: %ld messages in %.1f s (%.0f/s), %.2f s of CPU\n", g.delivered, took, (double)g.delivered / (took > 0 ? took : 1),
            cpu);
    printf("produced %ld events %ld profiles %ld\n", g.delivered, g.delivered - g.profiles, g.profiles);
    return rc ? 1 : 0;
}
