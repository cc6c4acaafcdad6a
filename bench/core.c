/* core.c: momentd's CPU per event without Kafka and Redis (bench/core).
 *
 * bench/run measures the daemon whole, on a shared two-core box where the
 * broker, Redis and the load generator take turns with it: runs of the same
 * commit differ by a fifth, more than most changes to the per-event path
 * are worth. This measures that path alone, in one thread, on the same
 * customers (tools/stories.c, the population bench/run's loadgen writes):
 *
 *   for each batch of B messages, as src/io/batch.c and src/io/store.c
 *   run it: every customer's cached hash held at once
 *   (md_hash_cache_hold_many), each decoded at its first message
 *   (md_cstate_load_field, the next entries asked into the processor's
 *   cache) into a state taken from the stack of free ones (and its writes
 *   into write lists taken the same way), every message parsed and decided
 *   (md_event_parse, md_engine_process), and at each customer's last
 *   message its state flushed into its operations (md_cstate_flush,
 *   md_ops_compact), both given back to their stacks, and its
 *   cached hash rebuilt as Redis would hold it after the apply
 *   (md_hash_cache_applied; the daemon does that when Redis answers the
 *   apply's slice, a few dozen customers later).
 *
 * What it leaves out: librdkafka, the Redis protocol and the sockets, the
 * outbox and the moments' delivery. A hash whose apply would fill its outbox
 * (a moment) is kept without the outbox's entries: Redis would be read
 * for it, here the cache stands for Redis.
 *
 * A history of D days (profiles first) fills the cache, timed apart; then R
 * runs of E live events for customers drawn at random, at times following
 * the last history day, 50,000 a second of event time (bench/run's live
 * traffic is stamped with the wall clock and read at about that rate). Prints each run's CPU time per event (the thread's
 * own clock), split into decode, parse and decide, write-back, and the
 * median over runs.
 *
 *   bench_core CONFIG [--customers N] [--days D] [--events E] [--runs R]
 *              [--batch B] [--seed S] [--no-prefetch | --ab]
 *              [--no-pool | --ab-pool] [--decoded-size N]
 *
 * --no-prefetch: hashes held one by one (md_hash_cache_hold) and nothing
 * asked into the processor's cache ahead: the path as it was before
 * md_hash_cache_hold_many and the prefetches, to compare.
 * --ab: both, batch about: odd batches with the prefetches, even ones
 * without, each timed apart. On a shared machine whose speed drifts by a
 * tenth from one minute to the next, two separate runs cannot tell a
 * change of a few percent; batches taken in turn see the same machine and
 * the same customers' states.
 * --no-pool: a state and write lists of its own for each customer of the
 * batch, as the daemon had before the stacks (and the states prefetched as
 * then).
 * --ab-pool: batches in turn with the stack and without it, as --ab.
 * --decoded-size N: after the history, N customers' cached hashes (every
 * 37th customer, round the population) are each decoded into a state of
 * their own and the heap they take is printed, per state, beside a hash's
 * bytes in the cache: what a cache of decoded states would hold per
 * customer instead (BENCHMARKS.md). */
#include <inttypes.h>
#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer's allocator's count (sanitizer/allocator_interface.h,
 * which this machine's compiler does not install). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash_cache.h"
#include "momentd/config.h"
#include "momentd/engine.h"
#include "momentd/event.h"
#include "stories.h"

typedef struct msg {
    story_topic topic;
    long customer;
    char *json;
    int len;
} msg;

typedef struct bench {
    const md_config *cfg;
    md_hash_cache *cache;
    md_event_parser *parser;
    long customers;
    story_customer *people;
    bool prefetch;
    bool ab;       /* prefetch batch about (--ab) */
    bool pool;         /* states taken from a stack and given back at the customer's last message, as the daemon's (else --no-pool) */
    bool ab_pool;      /* with and without, batch about (--ab-pool) */
    md_cstate **stack; /* the free states, the last given back on top */
    size_t n_free;
    md_cstate **bound; /* slot -> its state */
    size_t *ops_stack, n_free_ops;
    size_t *ops_k;     /* slot -> its write lists, ops[k] and cp_ops[k], taken as the states */
    size_t *last;      /* slot -> its last message in the batch */
    long n_batch;  /* batches run this run */
    double cpu[2]; /* --ab: CPU time of the batches without and with */
    uint64_t ab_events[2];
    /* The batch being built: its messages, then its customers. */
    msg *msgs;
    size_t n_msgs, cap;
    long current; /* the customer the story generator is writing for */
    long *cust;   /* message -> batch slot */
    long *slot_of; /* customer -> batch slot + 1, 0: none yet */
    long *slot_customer;
    char (*keys)[32];
    const char **key_ptr;
    const md_hash_cache_entry **held;
    md_cstate **states;
    md_ops *ops, *cp_ops;
    bool *decoded;
    int64_t *offset; /* per topic and partition: the message's offset */
    md_engine_out out;
    /* Time spent, ns. */
    double t_decode, t_decide, t_write;
    uint64_t events, rejected, triggers;
} bench;

static double clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static double cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static int collect(void *ctx, story_topic t, const char *key, const char *json, int len) {
    (void)key;
    bench *b = ctx;
    if (b->n_msgs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        msg *m = realloc(b->msgs, cap * sizeof(*m));
        if (!m) return 1;
        b->msgs = m;
        b->cap = cap;
    }
    char *copy = malloc((size_t)len + 1);
    if (!copy) return 1;
    memcpy(copy, json, (size_t)len);
    copy[len] = '\0';
    b->msgs[b->n_msgs++] = (msg){t, b->current, copy, len};
    return 0;
}

/* Customer c's key, as the store names it. */
static void customer_key(const bench *b, long c, char *out, size_t n) { snprintf(out, n, "md:{%s}", b->people[c].id); }

static void field_into_state(void *ctx, const char *f, size_t fl, const char *v, size_t vl) { md_cstate_load_field(ctx, f, fl, v, vl); }

/* ops without what goes to the outbox: what Redis's hash holds after it. */
static void without_outbox(const md_ops *in, md_ops *out) {
    md_ops_clear(out);
    for (size_t i = 0; i < in->n; i++)
        if (in->ops[i].kind != MD_OP_OUTBOX_SET) md_ops_add(out, in->ops[i].kind, md_ops_field(in, i), md_ops_value(in, i));
}

/* Customer s's state flushed into its operations, and its cached hash
 * rebuilt as Redis would hold it after the apply. */
static void write_back(bench *b, size_t s, md_cstate *cs, md_ops *scratch) {
    md_ops *own = &b->ops[b->ops_k[s]];
    md_cstate_flush(cs, own);
    md_ops_compact(own);
    const md_ops *ops = own;
    if (!md_cstate_outbox_clear(cs) || !b->held[s]) {
        /* A new customer (Redis would create the hash) or a moment in
         * its outbox (the store would read the hash again): the hash is
         * put as it was read, then the apply rebuilds it. */
        if (!b->held[s]) md_hash_cache_put(b->cache, b->keys[s], NULL, 0);
        without_outbox(ops, scratch);
        ops = scratch;
    }
    md_hash_cache_applied(b->cache, b->keys[s], ops, md_cstate_version(cs) + 1, 0);
}

/* msgs[from, to) as one batch. The split of the time is taken with the
 * monotonic clock (a read of the thread's CPU clock is a system call, and
 * three a message would be a tenth of what is measured); the run's total
 * with the thread's CPU clock. */
static int run_batch(bench *b, size_t from, size_t to, md_ops *scratch) {
    double t0 = now_ns();
    size_t n_cust = 0;
    for (size_t i = from; i < to; i++) {
        long c = b->msgs[i].customer;
        if (!b->slot_of[c]) {
            b->slot_customer[n_cust] = c;
            customer_key(b, c, b->keys[n_cust], sizeof(b->keys[0]));
            b->key_ptr[n_cust] = b->keys[n_cust];
            b->decoded[n_cust] = false;
            b->slot_of[c] = (long)++n_cust;
        }
        b->cust[i - from] = b->slot_of[c] - 1;
    }
    if (b->prefetch) md_hash_cache_hold_many(b->cache, n_cust, b->key_ptr, b->held);
    else
        for (size_t s = 0; s < n_cust; s++) b->held[s] = md_hash_cache_hold(b->cache, b->key_ptr[s]);
    double t1 = now_ns();
    b->t_decode += t1 - t0;
    for (size_t i = from; i < to; i++) b->last[b->cust[i - from]] = i;
    for (size_t i = from; i < to; i++) {
        double ta = now_ns();
        size_t s = (size_t)b->cust[i - from];
        if (!b->decoded[s]) {
            b->bound[s] = b->pool ? b->stack[--b->n_free] : b->states[s];
            b->ops_k[s] = b->pool ? b->ops_stack[--b->n_free_ops] : s;
            md_ops_clear(&b->ops[b->ops_k[s]]);
            md_ops_clear(&b->cp_ops[b->ops_k[s]]);
        }
        md_cstate *cs = b->bound[s];
        if (!b->decoded[s]) {
            b->decoded[s] = true;
            /* The daemon's states are the stack's top, in the processor's
             * cache: only the entries are asked for ahead. */
            if (b->prefetch) md_hash_cache_prefetch_decodes(b->held, b->pool ? NULL : b->states, n_cust, s);
            md_cstate_reset(cs);
            md_cstate_set_customer(cs, b->people[b->slot_customer[s]].id);
            if (b->held[s]) md_hash_cache_entry_each(b->held[s], field_into_state, cs);
        }
        double tb = now_ns();
        b->t_decode += tb - ta;
        const msg *m = &b->msgs[i];
        int32_t partition = (int32_t)(b->slot_customer[s] % 4);
        md_source src = {story_topic_names[m->topic], partition, ++b->offset[m->topic * 4 + partition]};
        md_applied applied;
        char err[256];
        if (m->topic == STORY_PROFILES) {
            if (md_engine_profile(cs, m->json, &src, &b->ops[b->ops_k[s]], &applied, err, sizeof(err)) != MD_ERR_OK) b->rejected++;
        } else {
            md_event ev;
            md_parse_result res;
            if (md_event_parse(b->parser, m->json, (size_t)m->len, b->people[b->slot_customer[s]].id, strlen(b->people[b->slot_customer[s]].id),
                               INT64_MAX / 2, &ev, &res) != MD_ERR_OK) {
                b->rejected++;
            } else {
                if (md_engine_process(b->cfg, cs, NULL, &ev, &src, ev.ts_ms, &b->ops[b->ops_k[s]], &b->cp_ops[b->ops_k[s]], &b->out) != MD_ERR_OK) return 1;
                b->triggers += b->out.n_triggers;
                md_engine_out_fini(&b->out);
            }
        }
        b->events++;
        b->t_decide += now_ns() - tb;
        if (b->last[s] == i) {
            /* Its requests queued: the daemon flushes the state then, and
             * the cached hash is rebuilt when Redis answers the apply's
             * slice, here at once. */
            double tc = now_ns();
            write_back(b, s, cs, scratch);
            if (b->pool) {
                b->stack[b->n_free++] = cs;
                b->ops_stack[b->n_free_ops++] = b->ops_k[s];
            }
            b->t_write += now_ns() - tc;
        }
    }
    double t2 = now_ns();
    for (size_t s = 0; s < n_cust; s++) b->slot_of[b->slot_customer[s]] = 0;
    md_hash_cache_release(b->cache);
    b->t_write += now_ns() - t2;
    return 0;
}

static int run_msgs(bench *b, size_t batch, md_ops *scratch) {
    for (size_t i = 0; i < b->n_msgs; i += batch) {
        size_t to = i + batch < b->n_msgs ? i + batch : b->n_msgs;
        if (b->ab) b->prefetch = b->n_batch % 2 == 1;
        if (b->ab_pool) b->pool = b->n_batch % 2 == 1;
        double c0 = b->ab || b->ab_pool ? cpu_ns() : 0;
        if (run_batch(b, i, to, scratch)) return 1;
        if (b->ab) {
            b->cpu[b->prefetch] += cpu_ns() - c0;
            b->ab_events[b->prefetch] += to - i;
        }
        if (b->ab_pool) {
            b->cpu[b->pool] += cpu_ns() - c0;
            b->ab_events[b->pool] += to - i;
        }
        b->n_batch++;
    }
    for (size_t i = 0; i < b->n_msgs; i++) free(b->msgs[i].json);
    b->n_msgs = 0;
    return 0;
}

/* Bytes the allocator has handed out and not had back: glibc's count, or
 * AddressSanitizer's where it replaces glibc's allocator (whose mallinfo2
 * then says 0). */
static size_t heap_in_use(void) {
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* --decoded-size: the heap n states decoded from the cache take, each a
 * state of its own (as a cache of decoded states would keep them). */
static int decoded_states(bench *b, const md_codes *codes, long n) {
    md_cstate **kept = calloc((size_t)n, sizeof(*kept));
    if (!kept) return 1;
    size_t before = heap_in_use();
    long found = 0;
    for (long k = 0; k < n; k++) {
        long c = (long)(((uint64_t)k * 37) % (uint64_t)b->customers);
        char key[sizeof(b->keys[0])];
        customer_key(b, c, key, sizeof(key));
        if (!(kept[k] = md_cstate_new(b->cfg))) return 1;
        md_cstate_set_codes(kept[k], codes);
        md_cstate_set_customer(kept[k], b->people[c].id);
        found += md_hash_cache_each(b->cache, key, field_into_state, kept[k]);
    }
    size_t after = heap_in_use();
    md_hash_cache_stats st = md_hash_cache_stats_get(b->cache);
    printf("decoded: %ld states (%ld from the cache) take %.0f B of heap each; a hash takes %.0f B in the cache\n", n, found,
           (double)(after - before) / (double)n, st.entries ? (double)st.bytes / (double)st.entries : 0.0);
    for (long k = 0; k < n; k++) md_cstate_destroy(kept[k]);
    free(kept);
    return 0;
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long customers = 100000, days = 180, events = 1000000, runs = 3, batch = 2000;
    uint64_t seed = 1;
    long decoded_size = 0;
    bool prefetch = true, ab = false, pool = true, ab_pool = false;
    const char *config = argc > 1 ? argv[1] : NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-prefetch") == 0) {
            prefetch = false;
            continue;
        }
        if (strcmp(a, "--ab") == 0) {
            ab = true;
            continue;
        }
        if (strcmp(a, "--no-pool") == 0) {
            pool = false;
            continue;
        }
        if (strcmp(a, "--ab-pool") == 0) {
            ab_pool = true;
            continue;
        }
        if (!v) config = NULL;
        else if (strcmp(a, "--customers") == 0) customers = atol(v);
        else if (strcmp(a, "--days") == 0) days = atol(v);
        else if (strcmp(a, "--events") == 0) events = atol(v);
        else if (strcmp(a, "--runs") == 0) runs = atol(v);
        else if (strcmp(a, "--batch") == 0) batch = atol(v);
        else if (strcmp(a, "--seed") == 0) seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--decoded-size") == 0) decoded_size = atol(v);
        else config = NULL;
        i++;
    }
    if (!config || customers < 1 || days < 1 || events < 1 || runs < 1 || batch < 1 || batch > 10000 || decoded_size < 0 ||
        decoded_size > 100000 || (ab && (ab_pool || !prefetch)) || (ab_pool && !pool)) {
        fprintf(stderr, "usage: bench_core CONFIG [--customers N] [--days D] [--events E] [--runs R] [--batch B (1-10000)] [--seed S] "
                        "[--no-prefetch | --ab] [--no-pool | --ab-pool] [--decoded-size N (0-100000)]; one of --ab and --ab-pool\n");
        return 2;
    }
    char err[512];
    md_config *cfg = md_config_load(config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "bench_core: %s\n", err);
        return 1;
    }
    static const uint64_t sip[2] = {0x6d6f6d656e746421ULL, 0x62656e6368636f72ULL};
    bench b = {.cfg = cfg, .customers = customers, .prefetch = prefetch && !ab};
    md_event_limits lim = {(size_t)cfg->limits.max_message_bytes, cfg->limits.max_future_skew_s * 1000, (size_t)cfg->limits.max_pages,
                           (int)cfg->limits.max_depth};
    b.cache = md_hash_cache_new((size_t)8 << 30, sip); /* every customer: Redis's stand-in */
    b.parser = md_event_parser_new(&lim);
    b.people = calloc((size_t)customers, sizeof(*b.people));
    b.slot_of = calloc((size_t)customers, sizeof(long));
    size_t cap = (size_t)batch;
    b.cust = calloc(cap, sizeof(long));
    b.slot_customer = calloc(cap, sizeof(long));
    b.keys = calloc(cap, sizeof(*b.keys));
    b.key_ptr = calloc(cap, sizeof(char *));
    b.held = calloc(cap, sizeof(*b.held));
    b.states = calloc(cap, sizeof(md_cstate *));
    b.ops = calloc(cap, sizeof(md_ops));
    b.cp_ops = calloc(cap, sizeof(md_ops));
    b.decoded = calloc(cap, sizeof(bool));
    b.stack = calloc(cap, sizeof(md_cstate *));
    b.bound = calloc(cap, sizeof(md_cstate *));
    b.last = calloc(cap, sizeof(size_t));
    b.ops_stack = calloc(cap, sizeof(size_t));
    b.ops_k = calloc(cap, sizeof(size_t));
    b.pool = pool;
    b.offset = calloc(STORY_TOPIC_COUNT * 4, sizeof(int64_t));
    if (!b.cache || !b.parser || !b.people || !b.slot_of || !b.cust || !b.slot_customer || !b.keys || !b.key_ptr || !b.held || !b.states ||
        !b.ops || !b.cp_ops || !b.decoded || !b.stack || !b.bound || !b.last || !b.ops_stack || !b.ops_k || !b.offset) {
        fprintf(stderr, "bench_core: out of memory\n");
        return 1;
    }
    md_hash_cache_watch(b.cache, md_cstate_contact_point_field());
    md_engine_out_init(&b.out);
    /* The namespace's short codes, as a new namespace's registry gives
     * them: what run's states read and write. */
    md_codes *codes = md_codes_fresh(cfg);
    if (!codes) {
        fprintf(stderr, "bench_core: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < cap; i++) {
        if (!(b.states[i] = md_cstate_new(cfg))) return 1;
        md_cstate_set_codes(b.states[i], codes);
        md_ops_init(&b.ops[i]);
        md_ops_init(&b.cp_ops[i]);
        b.stack[b.n_free++] = b.states[i];
        b.ops_stack[b.n_free_ops++] = i;
    }
    md_ops scratch;
    md_ops_init(&scratch);
    for (long n = 0; n < customers; n++) story_customer_get(seed, n, &b.people[n]);

    /* The history: profiles, then day by day, every customer's day in turn. */
    int64_t start = ((int64_t)time(NULL) * 1000 / STORY_DAY_MS - days) * STORY_DAY_MS;
    story_gen g = {seed, "h", 0, collect, &b};
    double h0 = cpu_ns();
    for (long n = 0; n < customers; n++) {
        b.current = n;
        if (story_profile(&g, &b.people[n])) return 1;
    }
    if (run_msgs(&b, (size_t)batch, &scratch)) return 1;
    for (long d = 0; d < days; d++) {
        for (long n = 0; n < customers; n++) {
            b.current = n;
            if (story_history_day(&g, &b.people[n], n, d, start + d * STORY_DAY_MS)) return 1;
        }
        if (run_msgs(&b, (size_t)batch, &scratch)) return 1;
    }
    md_hash_cache_stats st = md_hash_cache_stats_get(b.cache);
    printf("history: %" PRIu64 " messages of %ld customers over %ld days in %.1f s of CPU; %zu hashes, %.0f B a hash in the cache\n", b.events,
           customers, days, (cpu_ns() - h0) / 1e9, st.entries, st.entries ? (double)st.bytes / (double)st.entries : 0.0);

    if (decoded_size > 0 && decoded_states(&b, codes, decoded_size)) return 1;

    /* Live: E events a run, customers at random, times after the history. */
    double *per = calloc((size_t)runs, sizeof(double));
    double *ratio = calloc((size_t)runs, sizeof(double));
    if (!per || !ratio) return 1;
    b.ab = ab;
    b.ab_pool = ab_pool;
    int64_t t = start + days * STORY_DAY_MS + 2 * STORY_HOUR_MS;
    story_rng pick = {story_mix(seed ^ 0x6c697665ULL)};
    for (long r = 0; r < runs; r++) {
        story_gen lg = {seed, "l", r * events, collect, &b};
        b.events = b.rejected = b.triggers = 0;
        b.t_decode = b.t_decide = b.t_write = 0;
        b.cpu[0] = b.cpu[1] = 0;
        b.ab_events[0] = b.ab_events[1] = 0;
        b.n_batch = 0;
        double cpu = 0;
        for (long e = 0; e < events;) {
            /* Generated a batch ahead, outside the clock. */
            for (long k = 0; k < batch && e < events; k++, e++) {
                long n = story_below(&pick, customers);
                b.current = n;
                t += e % 50 == 0; /* 50,000 events a second of event time, as bench/run's live traffic read flat out */
                if (story_live_event(&lg, &b.people[n], t, &pick)) return 1;
            }
            double c0 = cpu_ns();
            if (run_msgs(&b, (size_t)batch, &scratch)) return 1;
            cpu += cpu_ns() - c0;
        }
        double wall = b.t_decode + b.t_decide + b.t_write;
        per[r] = cpu / (double)b.events;
        printf("run %ld: %" PRIu64 " events, %.0f ns of CPU an event (of its time: decode %.0f%%, parse and decide %.0f%%, write-back %.0f%%); %" PRIu64
               " moments, %" PRIu64 " rejected\n",
               r + 1, b.events, per[r], 100 * b.t_decode / wall, 100 * b.t_decide / wall, 100 * b.t_write / wall, b.triggers, b.rejected);
        if (ab || ab_pool) {
            double with = b.cpu[1] / (double)b.ab_events[1], without = b.cpu[0] / (double)b.ab_events[0];
            ratio[r] = with / without;
            printf("run %ld, batches in turn: %.0f ns an event with the %s, %.0f without: %.3f\n", r + 1, with, ab ? "prefetches" : "stack of states",
                   without, ratio[r]);
        }
    }
    qsort(per, (size_t)runs, sizeof(double), by_double);
    printf("median of %ld runs: %.0f ns of CPU an event (batch %ld, %s, %s)\n", runs, per[runs / 2], batch,
           ab ? "prefetch in every other batch" : prefetch ? "prefetch" : "no prefetch",
           ab_pool ? "the stack of states in every other batch" : pool ? "the stack of states" : "a state per customer");
    if (ab || ab_pool) {
        qsort(ratio, (size_t)runs, sizeof(double), by_double);
        printf("median of %ld runs: with the %s / without, %.3f\n", runs, ab ? "prefetches" : "stack of states", ratio[runs / 2]);
    }
    free(per);
    free(ratio);
    for (size_t i = 0; i < cap; i++) {
        md_cstate_destroy(b.states[i]);
        md_ops_fini(&b.ops[i]);
        md_ops_fini(&b.cp_ops[i]);
    }
    md_ops_fini(&scratch);
    md_engine_out_fini(&b.out);
    free(b.msgs);
    free(b.people);
    free(b.slot_of);
    free(b.cust);
    free(b.slot_customer);
    free(b.keys);
    free(b.key_ptr);
    free(b.held);
    free(b.states);
    free(b.ops);
    free(b.cp_ops);
    free(b.decoded);
    free(b.stack);
    free(b.bound);
    free(b.last);
    free(b.ops_stack);
    free(b.ops_k);
    free(b.offset);
    md_event_parser_destroy(b.parser);
    md_hash_cache_destroy(b.cache);
    md_codes_destroy(codes);
    md_config_destroy(cfg);
    return 0;
}
