/* batch.c: the one batch runner (batch.h).
 *
 * Sized once for its capacity: every per-batch buffer is allocated by
 * md_batch_new and reused, so a batch allocates nothing per input beyond
 * what the engine's recording needs. A reload builds a new batch for the new
 * configuration. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "momentd/jsonw.h"
#include "rules.h"

typedef enum item_kind { ITEM_EVENT, ITEM_OUTCOME, ITEM_PROFILE, ITEM_DUE } item_kind;

typedef struct item {
    item_kind kind;
    int customer;       /* index into the batch's customers */
    bool has_src;
    md_source src;      /* topic borrowed (batch.h) */
    union {             /* in the inputs' block (next_item) */
        md_event *ev;   /* ITEM_EVENT; ITEM_PROFILE and ITEM_DUE keep their customer id in it, ITEM_DUE its time */
        md_outcome *oc; /* ITEM_OUTCOME */
    };
    char *profile_json; /* ITEM_PROFILE: owned copy, NULL = tombstone */
} item;

/* The batch's inputs lie one after the other in one block, each as long as
 * it is: an event up to its last page (pages come last in md_event), not the
 * 4.7 KB of 64 pages that an event in each item took, which spread a
 * batch's 2,000 events over 10 MB: a page of memory each, read in
 * md_batch_run and decide_item with a miss of the processor's address cache
 * at every one (perf in bench/run, BENCHMARKS.md). The block holds cap of
 * the largest, so the next input always has a whole md_event's room (an
 * event is parsed in place before its length is known), and nothing in it
 * moves: the batch's customer list borrows their ids. */
#define INPUT_ALIGN 16
static size_t input_room(size_t n) { return (n + INPUT_ALIGN - 1) & ~(size_t)(INPUT_ALIGN - 1); }
static size_t input_slot(void) { return input_room(sizeof(md_event) > sizeof(md_outcome) ? sizeof(md_event) : sizeof(md_outcome)); }
/* What an event takes of the block: up to its last page. */
static size_t event_room(const md_event *ev) { return input_room(md_event_used_bytes(ev)); }

/* Which entry of a batch's list holds a given name. Customers and contact
 * points are looked up once per input, and a linear scan made a batch
 * quadratic: 2,000 distinct customers cost two million strcmp calls, 12% of
 * the daemon's CPU. Open addressing over a power-of-two table at least twice
 * the batch, each slot holding an entry's index + 1 (0: empty), cleared per
 * batch. */
typedef struct name_index {
    uint32_t *slots; /* owned */
    size_t mask;
    uint64_t seed;   /* random per index: ids are chosen by whoever produces
                      * input, and a fixed, public seed would let them make
                      * every id collide and every lookup a scan */
} name_index;

static uint64_t random_seed(void) {
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&seed, sizeof(seed), 1, f) != 1) {
        struct timespec ts; /* no /dev/urandom: weaker, still not public */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&seed;
    }
    if (f) fclose(f);
    return seed;
}

static bool name_index_init(name_index *x, size_t cap) {
    size_t n = 16;
    while (n < cap * 2) n <<= 1;
    x->mask = n - 1;
    x->seed = random_seed();
    return (x->slots = calloc(n, sizeof(*x->slots))) != NULL;
}

static void name_index_clear(name_index *x) { memset(x->slots, 0, (x->mask + 1) * sizeof(*x->slots)); }

/* The slot for id among names: holding the index + 1 of the equal name, or
 * empty (0), where the caller stores the index + 1 of the name it adds. */
static uint32_t *name_index_slot(const name_index *x, const char *const *names, const char *id) {
    uint64_t h = md_hash64(id, strlen(id), x->seed);
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask)
        if (!x->slots[i] || strcmp(names[x->slots[i] - 1], id) == 0) return &x->slots[i];
}

#define NO_OPS SIZE_MAX /* a customer without write lists (ops_slot) */
#define MD_CONTACT_POINT_MAX 300 /* a contact point is at most 256 bytes (md_profile_check), with room and its NUL */

struct md_batch {
    const md_config *cfg;
    md_store *store;
    md_batch_clock clock;
    int64_t newest_event_ms; /* the newest event time decided (md_batch_newest_event) */
    uint32_t paused_campaigns; /* md_batch_set_paused */
    md_batch_hooks hooks;
    md_counters *n;
    md_counters own_counters; /* where counts go when the caller keeps none */
    md_hist *latency;
    md_event_parser *parser;
    size_t cap;
    item *items;
    char *input;       /* the inputs' block (next_item), cap * input_slot() */
    size_t input_used; /* bytes of it the batch's inputs take */
    size_t n_items;
    /* Customers of the batch, in order of first appearance. */
    const char **cust_ids; /* borrowed from items */
    /* Each customer's state (states[c]): one of objs while it is bound,
     * else idle. The states come from a stack of free ones, the last given back on top: a
     * customer decoded from the state cache takes one at its first input
     * and gives it back once its requests are queued, so the next customer
     * decodes into memory still in the processor's cache. A state per
     * customer for the whole batch (2,000 of about 6 KB each, every one
     * last touched a batch ago) made decoding and flushing wait on memory:
     * a fifth of the per-event path (bench/core --ab-pool, BENCHMARKS.md). */
    md_cstate **states;
    md_cstate **objs;  /* the cap states, owned */
    md_cstate **free_states;
    size_t n_free;
    md_cstate *idle;   /* what an unbound customer reads: empty, never written */
    /* Each customer's writes (ops_of(b, c), and its contact point's), the
     * same way: taken at its first decision, given back once Redis has
     * answered its apply (the state cache's entry is rebuilt from them
     * then), or at once when it has nothing to apply. */
    md_ops *ops, *cp_ops; /* the cap pairs, owned */
    size_t *ops_slot;     /* customer -> its pair, or NO_OPS */
    size_t *free_ops;     /* the free pairs, the last given back on top */
    size_t n_free_ops;
    int *cust_cp; /* customer -> contact point index, or -1 */
    size_t n_cust;
    name_index cust_index;
    /* Contact points the customers' profiles name. */
    char **cp_ids;
    md_cpstate **cps;
    size_t n_cp;
    name_index cp_index;
    /* Apply requests (a customer's and its contact point's) and results. */
    md_apply_req *reqs;
    int *results;
    size_t *last, *final_order;
    md_delivery *deliveries;
    size_t cap_deliveries;
    md_engine_out out;
    /* channels[].capacity (the daemon's wall clock only): what this attempt
     * reserved per channel (the engine's view is out.capacity), the
     * counters it reserved on, what it owes them (reserved, not emitted,
     * not yet given back), and what each customer's decisions took. */
    md_capacity *capacity; /* NULL: no channel has a capacity */
    char (*cap_keys)[MD_CAPACITY_LIMITS][192];
    int64_t *cap_granted, *cap_owed, *cap_before;
    int64_t *cust_taken; /* customer x channel */
    size_t n_reqs;       /* the last attempt's apply requests */
    const char **due_ids; /* customers whose due time changed, and it */
    int64_t *due_at;
    bool *due_check;      /* customers the due set named: their member is rewritten whatever the state says */
    bool *cached;         /* customers read from the store's cache (md_store_cache_states), not from Redis */
    const md_hash_cache_entry **held; /* of those, the ones not decoded yet (load_held) */
    bool held_stale;      /* load_held found an entry that did not match: read again */
    bool read_decoded;    /* and so the next read decodes every customer at once, none held */
    /* Customers whose key Redis refused in this run, and why (""); their
     * inputs are skipped by every later attempt and handed to the refuse
     * hook once the run succeeds. */
    md_store_refusal *refusal;
    /* Whether each customer was refused: read at every input, where a
     * look at refusal (a line of its own each, 200 bytes apart) missed the
     * processor's cache. */
    bool *is_refused;
    bool any_refused;
    md_store_refusal *scratch; /* 2 x capacity: what one store call refused */
    size_t *req_customer;      /* apply request -> customer */
    /* The decision records of this attempt (hooks.decisions), owned. */
    struct decision_rec {
        size_t customer;
        char *payload;
    } *decisions;
    size_t n_decisions, cap_decisions;
};

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void observe(md_batch *b, md_latency which, const struct timespec *t0) {
    if (b->latency) md_hist_observe(&b->latency[which], seconds_since(t0));
}

md_batch *md_batch_new(const md_config *cfg, md_store *store, size_t capacity, md_batch_clock clock, const md_batch_hooks *hooks,
                       md_counters *counters, md_hist *latency) {
    md_batch *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->cfg = cfg;
    b->store = store;
    b->clock = clock;
    b->hooks = *hooks;
    b->n = counters ? counters : &b->own_counters;
    b->latency = latency;
    b->cap = capacity ? capacity : 1;
    md_engine_out_init(&b->out);
    md_event_limits lim = {(size_t)cfg->limits.max_message_bytes, cfg->limits.max_future_skew_s * 1000, (size_t)cfg->limits.max_pages,
                           (int)cfg->limits.max_depth};
    b->parser = md_event_parser_new(&lim);
    size_t cap = b->cap;
    b->items = calloc(cap, sizeof(*b->items));
    b->input = calloc(cap, input_slot()); /* memory only where it is written (calloc maps a block this large) */
    b->cust_ids = calloc(cap, sizeof(*b->cust_ids));
    b->states = calloc(cap, sizeof(*b->states));
    b->objs = calloc(cap, sizeof(*b->objs));
    b->free_states = calloc(cap, sizeof(*b->free_states));
    b->idle = md_cstate_new(cfg);
    b->ops = calloc(cap, sizeof(*b->ops));
    b->ops_slot = calloc(cap, sizeof(*b->ops_slot));
    b->free_ops = calloc(cap, sizeof(*b->free_ops));
    b->cp_ops = calloc(cap, sizeof(*b->cp_ops));
    b->cust_cp = calloc(cap, sizeof(*b->cust_cp));
    b->cp_ids = calloc(cap, sizeof(*b->cp_ids));
    b->cps = calloc(cap, sizeof(*b->cps));
    b->due_ids = calloc(cap, sizeof(*b->due_ids));
    b->due_at = calloc(cap, sizeof(*b->due_at));
    b->due_check = calloc(cap, sizeof(*b->due_check));
    b->cached = calloc(cap, sizeof(*b->cached));
    b->held = calloc(cap, sizeof(*b->held));
    b->reqs = calloc(cap * 2, sizeof(*b->reqs));
    b->results = calloc(cap * 2, sizeof(*b->results));
    b->last = calloc(cap, sizeof(*b->last));
    b->final_order = calloc(cap, sizeof(*b->final_order));
    b->refusal = calloc(cap, sizeof(*b->refusal));
    b->is_refused = calloc(cap, sizeof(*b->is_refused));
    b->scratch = calloc(cap * 2, sizeof(*b->scratch));
    b->req_customer = calloc(cap * 2, sizeof(*b->req_customer));
    /* Both run whatever the other returns: destroy frees each. */
    bool indexed = name_index_init(&b->cust_index, cap);
    indexed = name_index_init(&b->cp_index, cap) && indexed;
    if (!b->parser || !b->items || !b->input || !b->cust_ids || !b->states || !b->objs || !b->free_states || !b->idle || !b->ops ||
        !b->ops_slot || !b->free_ops || !b->cp_ops || !b->cust_cp || !b->cp_ids || !b->cps ||
        !b->due_ids || !b->due_at || !b->due_check || !b->cached || !b->held || !b->reqs || !b->results || !b->last || !b->final_order || !b->refusal || !b->is_refused ||
        !b->scratch || !b->req_customer || !indexed) {
        md_batch_destroy(b);
        return NULL;
    }
    bool limited = false;
    for (size_t ch = 0; ch < cfg->n_channels; ch++) limited |= cfg->channels[ch].n_capacity > 0;
    if (limited && clock == MD_BATCH_CLOCK_WALL) {
        size_t nch = cfg->n_channels;
        b->capacity = calloc(nch, sizeof(*b->capacity));
        b->cap_keys = calloc(nch, sizeof(*b->cap_keys));
        b->cap_granted = calloc(nch, sizeof(*b->cap_granted));
        b->cap_owed = calloc(nch, sizeof(*b->cap_owed));
        b->cap_before = calloc(nch, sizeof(*b->cap_before));
        b->cust_taken = calloc(cap * nch, sizeof(*b->cust_taken));
        if (!b->capacity || !b->cap_keys || !b->cap_granted || !b->cap_owed || !b->cap_before || !b->cust_taken) {
            md_batch_destroy(b);
            return NULL;
        }
        b->out.capacity = b->capacity;
    }
    for (size_t i = 0; i < cap; i++) {
        md_ops_init(&b->ops[i]);
        md_ops_init(&b->cp_ops[i]);
        b->ops_slot[i] = NO_OPS;
        b->free_ops[b->n_free_ops++] = cap - 1 - i;
        b->objs[i] = md_cstate_new(cfg);
        b->free_states[b->n_free++] = b->objs[i];
        b->states[i] = b->idle;
        b->cps[i] = md_cpstate_new();
        b->cp_ids[i] = malloc(MD_CONTACT_POINT_MAX);
        if (!b->objs[i] || !b->cps[i] || !b->cp_ids[i]) {
            md_batch_destroy(b);
            return NULL;
        }
    }
    return b;
}

void md_batch_destroy(md_batch *b) {
    if (!b) return;
    md_batch_clear(b);
    for (size_t i = 0; i < b->cap; i++) {
        if (b->objs) md_cstate_destroy(b->objs[i]);
        if (b->cps) md_cpstate_destroy(b->cps[i]);
        if (b->cp_ids) free(b->cp_ids[i]);
        if (b->ops) md_ops_fini(&b->ops[i]);
        if (b->cp_ops) md_ops_fini(&b->cp_ops[i]);
    }
    md_engine_out_fini(&b->out);
    md_event_parser_destroy(b->parser);
    free(b->items);
    free(b->input);
    free(b->cust_ids);
    free(b->states);
    free(b->objs);
    free(b->free_states);
    md_cstate_destroy(b->idle);
    free(b->ops);
    free(b->ops_slot);
    free(b->free_ops);
    free(b->cp_ops);
    free(b->cust_cp);
    free(b->cp_ids);
    free(b->cps);
    free(b->due_ids);
    free(b->due_at);
    free(b->due_check);
    free(b->cached);
    free(b->held);
    free(b->reqs);
    free(b->results);
    free(b->last);
    free(b->final_order);
    free(b->refusal);
    free(b->is_refused);
    free(b->scratch);
    free(b->req_customer);
    free(b->capacity);
    free(b->cap_keys);
    free(b->cap_granted);
    free(b->cap_owed);
    free(b->cap_before);
    free(b->cust_taken);
    free(b->decisions);
    free(b->deliveries);
    free(b->cust_index.slots);
    free(b->cp_index.slots);
    free(b);
}

size_t md_batch_len(const md_batch *b) { return b->n_items; }
size_t md_batch_customers(const md_batch *b) { return b->n_cust; }
bool md_batch_full(const md_batch *b) { return b->n_items >= b->cap; }

/* Customer c takes a state from the stack. */
static md_cstate *bind_state(md_batch *b, size_t c) { return b->states[c] = b->free_states[--b->n_free]; }

/* Customer c gives its state back; it reads the idle state from now on. */
static void unbind_state(md_batch *b, size_t c) {
    if (b->states[c] == b->idle) return;
    b->free_states[b->n_free++] = b->states[c];
    b->states[c] = b->idle;
}

/* Customer c's writes and its contact point's, once it has taken a pair. */
static md_ops *ops_of(md_batch *b, size_t c) { return &b->ops[b->ops_slot[c]]; }
static md_ops *cp_ops_of(md_batch *b, size_t c) { return &b->cp_ops[b->ops_slot[c]]; }

/* Customer c takes a pair of write lists from the stack, emptied. */
static void bind_ops(md_batch *b, size_t c) {
    size_t k = b->free_ops[--b->n_free_ops];
    b->ops_slot[c] = k;
    md_ops_clear(&b->ops[k]);
    md_ops_clear(&b->cp_ops[k]);
}

static void unbind_ops(md_batch *b, size_t c) {
    if (b->ops_slot[c] == NO_OPS) return;
    b->free_ops[b->n_free_ops++] = b->ops_slot[c];
    b->ops_slot[c] = NO_OPS;
}

/* Every customer's state and write lists back on their stacks, the last
 * bound on top. */
static void unbind_all(md_batch *b) {
    for (size_t c = b->n_cust; c-- > 0;) {
        unbind_state(b, c);
        unbind_ops(b, c);
    }
}

static void clear_decisions(md_batch *b) {
    for (size_t i = 0; i < b->n_decisions; i++) free(b->decisions[i].payload);
    b->n_decisions = 0;
}

void md_batch_clear(md_batch *b) {
    clear_decisions(b);
    unbind_all(b);
    for (size_t i = 0; i < b->n_items; i++) {
        free(b->items[i].profile_json);
        b->items[i].profile_json = NULL;
    }
    b->n_items = 0;
    b->input_used = 0;
    if (b->n_cust) {
        memset(b->due_check, 0, b->n_cust * sizeof(*b->due_check));
        if (b->any_refused) memset(b->is_refused, 0, b->n_cust * sizeof(*b->is_refused));
        b->any_refused = false;
    }
    b->n_cust = 0;
    if (b->cust_index.slots) name_index_clear(&b->cust_index);
}

/* ------------------------------------------------------------------------- */
/* Input                                                                      */

/* The next item, its event or outcome at the end of the inputs' block (a
 * whole md_event's room, not yet taken), or NULL when full. Its customer id
 * must live in its input: the batch's customer list borrows it. */
static item *next_item(md_batch *b, item_kind kind, const md_source *src) {
    if (b->n_items >= b->cap) return NULL;
    item *it = &b->items[b->n_items];
    it->kind = kind;
    it->ev = (md_event *)(void *)(b->input + b->input_used);
    it->profile_json = NULL;
    it->has_src = src && src->topic;
    if (it->has_src) it->src = *src;
    return it;
}


/* Commits the item made by next_item for customer id (a string inside it),
 * its input taking what it is as long as. */
static void push_item(md_batch *b, item *it, const char *id) {
    b->input_used += it->kind == ITEM_OUTCOME ? input_room(sizeof(md_outcome)) : event_room(it->ev);
    uint32_t *slot = name_index_slot(&b->cust_index, b->cust_ids, id);
    if (!*slot) {
        b->cust_ids[b->n_cust] = id;
        *slot = (uint32_t)++b->n_cust;
    }
    it->customer = (int)*slot - 1;
    b->n_items++;
}

/* Counts an event item made by next_item and adds it. */
static void push_event(md_batch *b, item *it) {
    b->n->accepted++;
    if ((int)it->ev->type >= 0 && it->ev->type < MD_EVENT_TYPE_COUNT) b->n->accepted_by_type[it->ev->type]++;
    push_item(b, it, it->ev->customer_id);
}

md_err md_batch_add_event(md_batch *b, const md_event *ev, const md_source *src) {
    item *it = next_item(b, ITEM_EVENT, src);
    if (!it) return MD_ERR_OVERFLOW;
    memcpy(it->ev, ev, md_event_used_bytes(ev));
    push_event(b, it);
    return MD_ERR_OK;
}

md_err md_batch_add_outcome(md_batch *b, const md_outcome *oc, const md_source *src) {
    item *it = next_item(b, ITEM_OUTCOME, src);
    if (!it) return MD_ERR_OVERFLOW;
    *it->oc = *oc;
    push_item(b, it, it->oc->customer_id);
    return MD_ERR_OK;
}

md_err md_batch_add_profile(md_batch *b, const char *customer_id, const char *json, const md_source *src, char *errstr,
                            size_t errstr_size) {
    size_t idlen = strlen(customer_id);
    char why[160];
    if (idlen == 0 || idlen > MD_CUSTOMER_ID_MAX) {
        snprintf(errstr, errstr_size, "a profile's key must be its customer_id (1-%d bytes)", MD_CUSTOMER_ID_MAX);
        return MD_ERR_BAD_EVENT;
    }
    if (!md_id_check(customer_id, idlen, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "the profile's key (its customer_id) %s", why);
        return MD_ERR_BAD_EVENT;
    }
    if (json && md_profile_check(json, b->cfg->limits.max_profile_attrs, errstr, errstr_size)) return MD_ERR_BAD_EVENT;
    item *it = next_item(b, ITEM_PROFILE, src);
    if (!it) return MD_ERR_OVERFLOW;
    if (json && !(it->profile_json = strdup(json))) {
        snprintf(errstr, errstr_size, "out of memory");
        return MD_ERR_NOMEM;
    }
    md_event_clear(it->ev); /* a customer id, a time: no pages */
    memcpy(it->ev->customer_id, customer_id, idlen + 1);
    push_item(b, it, it->ev->customer_id);
    b->n->profiles++;
    return MD_ERR_OK;
}

typedef struct due_take {
    md_batch *b;
    int64_t until;
    size_t added;
} due_take;

static void add_due(void *ctx, const char *id, size_t len) {
    due_take *d = ctx;
    if (len == 0 || len > MD_CUSTOMER_ID_MAX) return; /* not a member momentd wrote */
    item *it = next_item(d->b, ITEM_DUE, NULL);
    if (!it) return;
    md_event_clear(it->ev); /* a customer id, a time: no pages */
    memcpy(it->ev->customer_id, id, len);
    it->ev->customer_id[len] = '\0';
    it->ev->ts_ms = d->until; /* when the schedule ran: the input clock's time for it */
    push_item(d->b, it, it->ev->customer_id);
    d->b->due_check[it->customer] = true;
    d->added++;
}

md_err md_batch_add_due(md_batch *b, int64_t until_ms, size_t *added, char *errstr, size_t errstr_size) {
    due_take d = {b, until_ms, 0};
    *added = 0;
    if (b->n_items >= b->cap) return MD_ERR_OK;
    md_err e = md_store_due_take(b->store, until_ms, b->cap - b->n_items, add_due, &d, errstr, errstr_size);
    *added = d.added;
    return e;
}

md_err md_batch_add_message(md_batch *b, const md_message *m, int64_t now_ms, const char **reason, char *detail, size_t detail_size) {
    const md_config *cfg = b->cfg;
    const md_source src = {m->topic, m->partition, m->offset};
    const md_source *srcp = m->offset >= 0 ? &src : NULL;
    /* Replays judge nothing against the wall clock: every input is "now". */
    int64_t parse_now = b->clock == MD_BATCH_CLOCK_INPUT ? INT64_MAX / 2 : now_ms;
    const char *payload = m->payload ? m->payload : "";
    const char *key = m->key; /* NULL: not checked (batch.h) */
    *reason = NULL;
    detail[0] = '\0';
    b->n->consumed++;
    if (b->n_items >= b->cap) {
        snprintf(detail, detail_size, "the batch is full");
        return MD_ERR_OVERFLOW;
    }
    md_err e = MD_ERR_OK;
    if (strcmp(m->topic, cfg->kafka.topic_profiles) == 0) {
        char cid[MD_CUSTOMER_ID_MAX + 1];
        if (!m->key || m->key_len == 0 || m->key_len > MD_CUSTOMER_ID_MAX) {
            *reason = "key_mismatch";
            snprintf(detail, detail_size, "a profile's key must be its customer_id (1-%d bytes)", MD_CUSTOMER_ID_MAX);
        } else if (m->len > (size_t)cfg->limits.max_message_bytes) {
            *reason = "too_large";
            snprintf(detail, detail_size, "%zu bytes, limit %lld", m->len, (long long)cfg->limits.max_message_bytes);
        } else {
            memcpy(cid, m->key, m->key_len);
            cid[m->key_len] = '\0';
            char *json = NULL;
            if (m->payload && !(json = malloc(m->len + 1))) {
                *reason = "too_large";
                snprintf(detail, detail_size, "out of memory");
            } else if (json) {
                memcpy(json, m->payload, m->len);
                json[m->len] = '\0';
                if (strlen(json) != m->len) {
                    *reason = "not_json";
                    snprintf(detail, detail_size, "profile contains a NUL byte");
                }
            }
            if (!*reason) {
                e = md_batch_add_profile(b, cid, json, srcp, detail, detail_size);
                if (e == MD_ERR_BAD_EVENT) *reason = MD_DEAD_LETTER_BAD_PROFILE;
                else if (e) *reason = "too_large";
            }
            free(json);
        }
        if (*reason) b->n->profile_rejects++;
    } else {
        /* Parsed straight into the end of the inputs' block: it joins the
         * batch only if it parses. */
        md_parse_result res;
        bool outcome = strcmp(m->topic, cfg->kafka.topic_outcomes) == 0;
        item *it = next_item(b, outcome ? ITEM_OUTCOME : ITEM_EVENT, srcp);
        md_err pe = outcome ? md_outcome_parse(b->parser, payload, m->len, key, m->key_len, parse_now, it->oc, &res)
                            : md_event_parse(b->parser, payload, m->len, key, m->key_len, parse_now, it->ev, &res);
        if (pe == MD_ERR_OK) {
            if (outcome) push_item(b, it, it->oc->customer_id);
            else push_event(b, it);
        } else {
            *reason = md_reject_code(res.reason);
            snprintf(detail, detail_size, "%s", res.detail);
            b->n->rejects[res.reason]++;
        }
    }
    if (*reason) {
        b->n->dead_lettered++;
        return MD_ERR_BAD_EVENT;
    }
    return e;
}

/* ------------------------------------------------------------------------- */
/* Running                                                                    */

/* Whether the caller wants the step redone after e. */
static bool retry(md_batch *b, md_err e, const char *what, const char *errstr) {
    return b->hooks.retry && b->hooks.retry(b->hooks.ctx, e, what, errstr);
}

static bool refused(const md_batch *b, size_t c) { return b->is_refused[c]; }

/* Customer c's key was refused: why. Its inputs are skipped from now on.
 * true when it was not refused before. */
static bool refuse(md_batch *b, size_t c, const char *why) {
    if (refused(b, c)) return false;
    snprintf(b->refusal[c], sizeof(b->refusal[c]), "%s", why[0] ? why : "refused");
    b->is_refused[c] = b->any_refused = true;
    if (b->held[c]) b->held[c] = NULL; /* never decoded: it reads as nobody (the idle state), as a refused read leaves it */
    return true;
}

/* Customer c's state, decoded from the state cache where read_states held
 * it (once, at its first decision). An entry that did not say its outbox
 * was empty, or that names another contact point than the batch read (it
 * cannot happen: entries are kept with the empty-outbox mark only, and the contact point
 * is the profile's), is dropped and the attempt ends as a conflict
 * (held_stale), so that the next reads the customer from Redis. */
static md_err load_held(md_batch *b, size_t c, char *err, size_t errsz) {
    const md_hash_cache_entry *h = b->held[c];
    if (!h) return MD_ERR_OK;
    b->held[c] = NULL;
    /* Customers are decoded in the order they first appear: the next ones'
     * entries are asked for now (their states will be the stack's top,
     * already in the processor's cache). */
    md_hash_cache_prefetch_decodes(b->held, NULL, b->n_cust, c);
    bool ok = md_store_load_entry(h, b->cust_ids[c], bind_state(b, c));
    const char *cp = md_cstate_contact_point(b->states[c]);
    int cpi = b->cust_cp[c];
    if (ok && (cp ? cpi < 0 || strcmp(cp, b->cp_ids[cpi]) != 0 : cpi >= 0)) ok = false;
    if (ok) return MD_ERR_OK;
    md_store_cache_drop(b->store, b->cust_ids[c]);
    b->held_stale = true;
    snprintf(err, errsz, "the state cache's entry of customer %s did not match its hash; read again", b->cust_ids[c]);
    return MD_ERR_REDIS_REPLY;
}

/* Reads the batch's customers and the contact points their profiles name.
 * A customer whose key (or contact point's key) Redis refused is marked
 * refused, and the rest are read. */
static md_err read_states(md_batch *b, char *err, size_t errsz) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Each customer a state to be read into; those the cache holds give
     * theirs back (they decode at their first input), the last taken on top. */
    unbind_all(b);
    for (size_t c = 0; c < b->n_cust; c++) bind_state(b, c);
    bool hold = !b->read_decoded;
    b->read_decoded = false;
    if (!hold) memset(b->held, 0, b->n_cust * sizeof(*b->held));
    md_err e = md_store_read_customers_held(b->store, b->n_cust, b->cust_ids, b->states, hold ? b->held : NULL, b->scratch, b->cached, err,
                                            errsz);
    for (size_t c = b->n_cust; c-- > 0;)
        if (b->held[c]) unbind_state(b, c);
    if (e == MD_ERR_REDIS_REFUSED) {
        for (size_t c = 0; c < b->n_cust; c++)
            if (b->scratch[c][0]) refuse(b, c, b->scratch[c]);
        e = MD_ERR_OK;
    }
    if (e) return e;
    b->n_cp = 0;
    name_index_clear(&b->cp_index);
    for (size_t c = 0; c < b->n_cust; c++) {
        b->cust_cp[c] = -1;
        char held_cp[MD_CONTACT_POINT_MAX];
        const char *cp = refused(b, c)  ? NULL
                       : !b->held[c]    ? md_cstate_contact_point(b->states[c])
                       : md_store_held_contact_point(b->held[c], held_cp, sizeof(held_cp)) ? held_cp
                                                                                           : NULL;
        if (!cp) continue;
        uint32_t *slot = name_index_slot(&b->cp_index, (const char *const *)b->cp_ids, cp);
        if (!*slot) {
            snprintf(b->cp_ids[b->n_cp], MD_CONTACT_POINT_MAX, "%s", cp);
            *slot = (uint32_t)++b->n_cp;
        }
        b->cust_cp[c] = (int)*slot - 1;
    }
    if (b->n_cp) e = md_store_read_contact_points(b->store, b->n_cp, (const char *const *)b->cp_ids, b->cps, b->scratch, err, errsz);
    if (e == MD_ERR_REDIS_REFUSED) {
        /* Every customer on a refused contact point: its caps cannot be
         * read, so none of them may be decided. */
        for (size_t c = 0; c < b->n_cust; c++)
            if (b->cust_cp[c] >= 0 && b->scratch[b->cust_cp[c]][0]) refuse(b, c, b->scratch[b->cust_cp[c]]);
        e = MD_ERR_OK;
    }
    if (!e) observe(b, MD_LAT_REDIS_READ, &t0);
    return e;
}

/* A trigger decided: a holdout decision, or a real contact by campaign and
 * channel (for /metrics). */
static void count_trigger(md_batch *b, const md_trigger *tr) {
    if (tr->holdout) {
        b->n->holdouts++;
        return;
    }
    b->n->triggers++;
    if (tr->campaign < MD_MAX_CAMPAIGNS && tr->channel >= 0 && tr->channel < MD_STATUS_MAX_CHANNELS)
        b->n->fired[tr->campaign][tr->channel]++;
}

static bool grow_decisions(md_batch *b) {
    size_t cap = b->cap_decisions ? b->cap_decisions * 2 : 256;
    struct decision_rec *d = realloc(b->decisions, cap * sizeof(*d));
    if (!d) return false;
    b->decisions = d;
    b->cap_decisions = cap;
    return true;
}

/* One message per campaign decided (hooks.decisions with audit.topic):
 * what a warehouse needs to answer "why (not)" over every customer. cause:
 * the event, or NULL for the schedule. */
static md_err record_decisions(md_batch *b, size_t customer, const md_event *cause, int64_t decided_ms) {
    if (!b->hooks.decisions || !b->cfg->audit.topic || !*b->cfg->audit.topic) return MD_ERR_OK;
    const md_engine_out *o = &b->out;
    char tb[32];
    for (size_t c = 0; c < o->n_campaigns; c++) {
        const md_campaign_eval *e = &o->eval[c];
        const md_cfg_campaign *cc = &b->cfg->campaigns[c];
        const char *trigger = "";
        for (size_t t = 0; t < o->n_triggers; t++)
            if (o->triggers[t].campaign == (int)c) trigger = o->triggers[t].id;
        md_jsonw w;
        md_jsonw_init(&w);
        md_jsonw_obj_open(&w);
        md_jsonw_kint(&w, "schema_version", 1);
        md_jsonw_kstr(&w, "customer_id", b->cust_ids[customer]);
        md_jsonw_kstr(&w, "campaign", cc->name);
        md_jsonw_kstr(&w, "model_version", md_campaign_model(b->cfg, (int)c, e->arm)->version);
        if (e->arm >= 0) md_jsonw_kstr(&w, "arm", cc->arms[e->arm].name);
        md_format_time(decided_ms, tb);
        md_jsonw_kstr(&w, "decided_at", tb);
        md_jsonw_kstr(&w, "outcome", e->suppressed != MD_SUPPRESS_NONE ? md_suppress_name(e->suppressed) : e->holdout ? "holdout" : "fired");
        md_jsonw_knum(&w, "score", e->score);
        md_jsonw_knum(&w, "p_contact", e->p_contact);
        md_jsonw_knum(&w, "threshold", md_campaign_threshold(b->cfg, (int)c, e->arm));
        md_jsonw_kstr(&w, "channel", e->channel >= 0 ? b->cfg->channels[e->channel].name : "");
        if (*trigger) md_jsonw_kstr(&w, "trigger_id", trigger);
        md_jsonw_key(&w, "caused_by");
        md_jsonw_obj_open(&w);
        if (cause) {
            md_jsonw_kstr(&w, "event_id", cause->event_id);
            md_jsonw_kstr(&w, "type", md_event_type_name(cause->type));
            md_format_time(cause->ts_ms, tb);
            md_jsonw_kstr(&w, "event_time", tb);
        } else {
            md_jsonw_kstr(&w, "type", "schedule");
        }
        md_jsonw_obj_close(&w);
        md_jsonw_obj_close(&w);
        if (w.oom || (b->n_decisions == b->cap_decisions && !grow_decisions(b))) {
            md_jsonw_fini(&w);
            return MD_ERR_NOMEM;
        }
        b->decisions[b->n_decisions].customer = customer;
        b->decisions[b->n_decisions++].payload = w.buf; /* taken over */
    }
    return MD_ERR_OK;
}

/* Decides one input against its customer's state. MD_ERR_NOMEM only. */
static md_err decide_item(md_batch *b, item *it, int64_t now_ms, char *err, size_t errsz);

/* Decides one input; what its decisions took of each channel's capacity is
 * its customer's (applied or not with it). */
static md_err decide(md_batch *b, item *it, int64_t now_ms, char *err, size_t errsz) {
    if (!b->capacity) return decide_item(b, it, now_ms, err, errsz);
    size_t nch = b->cfg->n_channels;
    for (size_t ch = 0; ch < nch; ch++) b->cap_before[ch] = b->capacity[ch].taken;
    md_err e = decide_item(b, it, now_ms, err, errsz);
    for (size_t ch = 0; ch < nch; ch++) b->cust_taken[(size_t)it->customer * nch + ch] += b->capacity[ch].taken - b->cap_before[ch];
    return e;
}

static md_err decide_item(md_batch *b, item *it, int64_t now_ms, char *err, size_t errsz) {
    if (refused(b, (size_t)it->customer)) return MD_ERR_OK;
    md_err le = load_held(b, (size_t)it->customer, err, errsz);
    if (le) return le;
    md_cstate *cs = b->states[it->customer];
    md_cstate_set_paused(cs, b->paused_campaigns);
    if (b->ops_slot[it->customer] == NO_OPS) bind_ops(b, (size_t)it->customer);
    md_ops *ops = ops_of(b, (size_t)it->customer), *cp_ops = cp_ops_of(b, (size_t)it->customer);
    int cpi = b->cust_cp[it->customer];
    md_cpstate *cp = cpi >= 0 ? b->cps[cpi] : NULL;
    const md_source *src = it->has_src ? &it->src : NULL;
    md_err e = MD_ERR_OK;
    if (it->kind == ITEM_PROFILE) {
        md_applied applied;
        /* Validated when added: only memory can fail here. */
        if (md_engine_profile(cs, it->profile_json, src, ops, &applied, err, errsz) == MD_ERR_NOMEM) return MD_ERR_NOMEM;
        if (applied == MD_FORGOTTEN) b->n->forgotten++;
        return MD_ERR_OK;
    }
    if (it->kind == ITEM_DUE) {
        /* With the input clock the schedule decides when it ran (the time
         * md_batch_add_due was given), never before the due time. */
        int64_t due = md_cstate_due(cs);
        int64_t t = b->clock == MD_BATCH_CLOCK_INPUT ? (it->ev->ts_ms > due ? it->ev->ts_ms : due) : now_ms;
        e = md_engine_due(b->cfg, cs, cp, t, t, ops, cp_ops, &b->out);
        if (!e) e = record_decisions(b, (size_t)it->customer, NULL, t);
        if (!e) {
            b->n->scheduled += b->out.n_triggers > 0;
            b->n->stale += b->out.n_stale;
            b->n->held += b->out.n_held;
            for (size_t t2 = 0; t2 < b->out.n_triggers; t2++) count_trigger(b, &b->out.triggers[t2]);
        }
        md_engine_out_fini(&b->out);
        if (e) snprintf(err, errsz, "out of memory while deciding");
        return e ? MD_ERR_NOMEM : MD_ERR_OK;
    }
    if (it->kind == ITEM_OUTCOME) {
        md_outcome_applied oa;
        int64_t t = b->clock == MD_BATCH_CLOCK_INPUT ? it->oc->ts_ms : now_ms;
        e = md_engine_outcome(b->cfg, cs, cp, it->oc, src, t, ops, cp_ops, &oa, &b->out);
        if (!e) {
            if (oa == MD_OUTCOME_APPLIED) b->n->outcomes++;
            else if (oa == MD_OUTCOME_UNKNOWN_TRIGGER) b->n->outcomes_unknown++;
            else b->n->outcome_duplicates++;
            for (size_t t2 = 0; t2 < b->out.n_triggers; t2++) {
                count_trigger(b, &b->out.triggers[t2]);
                b->n->follow_ups++;
            }
            if (b->out.follow_up_suppressed != MD_SUPPRESS_NONE) b->n->suppressed[b->out.follow_up_suppressed]++;
        }
    } else {
        int64_t t = b->clock == MD_BATCH_CLOCK_INPUT ? it->ev->ts_ms : now_ms;
        if (it->ev->ts_ms > b->newest_event_ms) b->newest_event_ms = it->ev->ts_ms;
        e = md_engine_process(b->cfg, cs, cp, it->ev, src, t, ops, cp_ops, &b->out);
        if (!e && b->out.applied == MD_APPLIED) e = record_decisions(b, (size_t)it->customer, it->ev, t);
        if (!e) {
            b->n->conversions += b->out.n_conversions;
            b->n->dedupe_evictions += b->out.dedupe_evicted;
            b->n->stale += b->out.n_stale;
            b->n->held += b->out.n_held;
            if (b->out.applied == MD_DUP_OFFSET || b->out.applied == MD_DUP_EVENT_ID) b->n->duplicates++;
            else if (b->out.applied == MD_TOO_LATE) b->n->too_late++;
            else if (b->out.applied == MD_FORGOTTEN) b->n->forgotten++;
            for (size_t t2 = 0; t2 < b->out.n_triggers; t2++) count_trigger(b, &b->out.triggers[t2]);
            if (b->out.applied == MD_APPLIED)
                for (size_t c = 0; c < b->out.n_campaigns; c++)
                    if (b->out.eval[c].suppressed != MD_SUPPRESS_NONE) b->n->suppressed[b->out.eval[c].suppressed]++;
        }
    }
    md_engine_out_fini(&b->out);
    if (e) snprintf(err, errsz, "out of memory while deciding");
    return e ? MD_ERR_NOMEM : MD_ERR_OK;
}

/* Slot numbers for times before 1970 too. */
static int64_t floor_div(int64_t a, int64_t d) { return a / d - (a % d != 0 && (a < 0) != (d < 0)); }

/* Before an attempt decides: reserves each limited channel's capacity for
 * what the batch could emit on it (each input, each campaign), first giving
 * back what earlier attempts owe the same counters, and sets the engine's
 * view: what was granted, and when the tightest limit's slot ends. A batch
 * holds what it reserved only while it decides and applies. */
static md_err reserve_capacity(md_batch *b, int64_t now_ms, char *err, size_t errsz) {
    const md_config *cfg = b->cfg;
    size_t nch = cfg->n_channels;
    int64_t off = (int64_t)cfg->rules->default_utc_offset_min * 60000;
    /* Only events and the schedule decide campaigns (an outcome's follow-up
     * takes no capacity): a batch of profiles and outcomes reserves nothing. */
    size_t deciding = 0;
    for (size_t i = 0; i < b->n_items; i++) deciding += b->items[i].kind == ITEM_EVENT || b->items[i].kind == ITEM_DUE;
    int64_t want = (int64_t)(deciding * cfg->n_campaigns);
    memset(b->cust_taken, 0, b->cap * nch * sizeof(*b->cust_taken));
    for (size_t ch = 0; ch < nch; ch++) {
        const md_cfg_channel *c = &cfg->channels[ch];
        md_capacity *cap = &b->capacity[ch];
        *cap = (md_capacity){.left = -1};
        if (!c->n_capacity) continue;
        if (!want && !b->cap_owed[ch]) {
            *cap = (md_capacity){.left = 0}; /* nothing here decides a campaign */
            continue;
        }
        char keys[MD_CAPACITY_LIMITS][192];
        const char *kp[MD_CAPACITY_LIMITS];
        int64_t max[MD_CAPACITY_LIMITS], ttl[MD_CAPACITY_LIMITS], ends[MD_CAPACITY_LIMITS];
        bool same = true;
        for (size_t i = 0; i < c->n_capacity; i++) {
            int64_t per = c->capacity[i].per_ms, slot = floor_div(now_ms + off, per);
            ends[i] = (slot + 1) * per - off;
            ttl[i] = ends[i] - now_ms + per;
            max[i] = c->capacity[i].max;
            md_store_capacity_key(b->store, c->name, per, slot, keys[i], sizeof(keys[i]));
            kp[i] = keys[i];
            same = same && strcmp(keys[i], b->cap_keys[ch][i]) == 0;
        }
        int64_t granted;
        size_t tightest;
        md_err e = md_store_capacity(b->store, c->n_capacity, kp, max, ttl, same ? b->cap_owed[ch] : 0, want, &granted, &tightest, err, errsz);
        if (e) return e;
        memcpy(b->cap_keys[ch], keys, sizeof(keys));
        b->cap_owed[ch] = 0; /* given back (or its slot is over) */
        b->cap_granted[ch] = granted;
        cap->left = granted;
        cap->frees_at_ms = ends[tightest < c->n_capacity ? tightest : 0];
    }
    return MD_ERR_OK;
}

/* After an attempt: what it reserved and did not emit is owed back. What a
 * customer's decisions took was emitted when its apply went through; after
 * a failed apply (unknown), everything taken counts as emitted: a moment is
 * never sent beyond capacity, at worst a little capacity goes unused. */
static void settle_capacity(md_batch *b, bool applies_known) {
    size_t nch = b->cfg->n_channels;
    for (size_t ch = 0; ch < nch; ch++) {
        if (!b->cap_granted[ch]) continue;
        int64_t used = 0;
        if (!applies_known) used = b->capacity[ch].taken;
        else
            for (size_t q = 0; q < b->n_reqs; q++)
                if (b->results[q] == 1 && b->reqs[q].expect_version >= 0) used += b->cust_taken[b->req_customer[q] * nch + ch];
        b->cap_owed[ch] += b->cap_granted[ch] - used;
        b->cap_granted[ch] = 0;
    }
}

/* At the end of a run: gives back at once what the batch did not use, so
 * that other instances can have it. A failure leaves it owed, given back
 * with the next reservation on the same counters (or never, once the slot
 * is over). */
static void give_back_capacity(md_batch *b) {
    for (size_t ch = 0; ch < b->cfg->n_channels; ch++) {
        const md_cfg_channel *c = &b->cfg->channels[ch];
        if (!c->n_capacity || b->cap_owed[ch] <= 0) continue;
        const char *kp[MD_CAPACITY_LIMITS];
        int64_t max[MD_CAPACITY_LIMITS], ttl[MD_CAPACITY_LIMITS], granted;
        size_t tightest;
        char err[256];
        for (size_t i = 0; i < c->n_capacity; i++) {
            kp[i] = b->cap_keys[ch][i];
            max[i] = c->capacity[i].max;
            ttl[i] = c->capacity[i].per_ms * 2;
        }
        if (md_store_capacity(b->store, c->n_capacity, kp, max, ttl, b->cap_owed[ch], 0, &granted, &tightest, err, sizeof(err)) == MD_ERR_OK)
            b->cap_owed[ch] = 0;
        else md_log(MD_LOG_DEBUG, "batch", "capacity not given back yet", "channel", c->name, "error", err, NULL);
    }
}

/* Customer c's requests are queued: its state goes back to the stack unless
 * the steps after the apply read it (moments to deliver, funnel counts, a
 * due time to write). */
static void release_if_done(md_batch *b, size_t c) {
    int64_t due;
    md_cstate *cs = b->states[c];
    if (md_cstate_pending_count(cs) || md_cstate_incr_count(cs) || md_cstate_due_changed(cs, &due) || b->due_check[c]) return;
    unbind_state(b, c);
}

/* Adds customer c's requests (its state, and its contact point's if it
 * touched one) after flushing its state into its ops. MD_ERR_NOMEM when
 * recording lost an operation: such a list is never applied. */
static md_err queue_customer(md_batch *b, size_t c, size_t *nreq, char *err, size_t errsz) {
    if (refused(b, c)) return MD_ERR_OK;
    md_ops *ops = ops_of(b, c), *cp_ops = cp_ops_of(b, c);
    md_cstate_flush(b->states[c], ops);
    if (ops->oom || cp_ops->oom) {
        snprintf(err, errsz, "out of memory while recording");
        return MD_ERR_NOMEM;
    }
    /* Only duplicates: nothing to write. Unless the state came from the
     * cache: what was decided on it (a duplicate, an outcome of a trigger
     * it does not hold) holds only if Redis still has that version, so the
     * empty apply checks it (and a conflict reads the batch again). */
    if (ops->n == 0 && !b->cached[c]) {
        unbind_ops(b, c);
        release_if_done(b, c);
        return MD_ERR_OK;
    }
    md_ops_compact(ops);
    md_ops_compact(cp_ops);
    b->req_customer[*nreq] = c;
    md_apply_req *q = &b->reqs[(*nreq)++];
    md_store_customer_key(b->store, b->cust_ids[c], q->key, sizeof(q->key));
    q->ops = ops;
    q->expect_version = md_cstate_version(b->states[c]);
    q->ttl_ms = md_cstate_ttl_ms(b->states[c]);
    q->outbox_empty = md_cstate_outbox_clear(b->states[c]); /* after the flush: nothing added */
    q->known_expiry = md_cstate_key_expiry(b->states[c]);
    if (cp_ops->n && b->cust_cp[c] >= 0) {
        b->req_customer[*nreq] = c;
        q = &b->reqs[(*nreq)++];
        md_store_contact_point_key(b->store, b->cp_ids[b->cust_cp[c]], q->key, sizeof(q->key));
        q->ops = cp_ops;
        q->expect_version = -1;
        q->ttl_ms = md_cpstate_ttl_ms(b->cfg);
        q->outbox_empty = true; /* a contact point has none */
        q->known_expiry = 0;
    }
    release_if_done(b, c);
    return MD_ERR_OK;
}

/* Requests [from, to) were answered (of nreq queued): each customer whose
 * last request is among them gives its write lists back. Returns to. */
static size_t release_answered(md_batch *b, size_t from, size_t to, size_t nreq) {
    for (size_t q = from; q < to; q++) {
        size_t c = b->req_customer[q];
        if (q + 1 == nreq || b->req_customer[q + 1] != c) unbind_ops(b, c); /* a customer's requests are queued together */
    }
    return to;
}

/* Requests are handed to Redis in slices of this many while the rest of the
 * batch is decided, so that Redis's work on applies overlaps the decisions
 * instead of following them (bench/run: see BENCHMARKS.md). */
#define MD_APPLY_SLICE 64

typedef enum attempt { ATTEMPT_DONE, ATTEMPT_CONFLICT, ATTEMPT_REFUSED, ATTEMPT_FAILED } attempt;

/* One attempt at steps 1-3: read, decide in input order, apply. On
 * ATTEMPT_FAILED *what names the step and *e says why. */
static attempt decide_and_apply(md_batch *b, int64_t now_ms, md_err *e, const char **what, char *err, size_t errsz) {
    size_t nreq = 0, nsent = 0, next_final = 0, n_final = 0, answered = 0;
    *what = "read";
    clear_decisions(b); /* a redo decides again */
    b->n_reqs = 0;
    if ((*e = read_states(b, err, errsz))) return ATTEMPT_FAILED;
    *what = "capacity";
    if (b->capacity && (*e = reserve_capacity(b, now_ms, err, errsz))) return ATTEMPT_FAILED;
    /* Customers in the order their last input of the batch comes: once the
     * decisions have passed it, that customer's requests are final. */
    for (size_t i = 0; i < b->n_items; i++) b->last[b->items[i].customer] = i;
    for (size_t i = 0; i < b->n_items; i++)
        if (b->last[b->items[i].customer] == i) b->final_order[n_final++] = (size_t)b->items[i].customer;
    *what = "apply";
    for (size_t i = 0; i < b->n_items; i++) {
        while (next_final < n_final && b->last[b->final_order[next_final]] < i)
            if ((*e = queue_customer(b, b->final_order[next_final++], &nreq, err, errsz))) goto failed;
        if (nreq - nsent >= MD_APPLY_SLICE) {
            if ((*e = md_store_apply_send(b->store, nreq - nsent, b->reqs + nsent, err, errsz))) goto failed;
            nsent = nreq;
            md_store_apply_poll(b->store, b->reqs, b->results, b->scratch);
            answered = release_answered(b, answered, md_store_apply_taken(b->store), nreq);
        }
        if ((*e = decide(b, &b->items[i], now_ms, err, errsz))) goto failed;
    }
    while (next_final < n_final)
        if ((*e = queue_customer(b, b->final_order[next_final++], &nreq, err, errsz))) goto failed;
    /* One apply per customer, conditional on the version read: the rest of
     * them, then every reply. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *e = md_store_apply_send(b->store, nreq - nsent, b->reqs + nsent, err, errsz);
    if (!*e) *e = md_store_apply_collect(b->store, nreq, b->reqs, b->results, b->scratch, err, errsz);
    b->n_reqs = nreq;
    bool newly_refused = false;
    if (*e == MD_ERR_REDIS_REFUSED) {
        /* The others were applied; a refused apply wrote nothing. The run is
         * decided again without the refused customers: what was applied
         * reads as duplicates then, as after a conflict. */
        for (size_t q = 0; q < nreq; q++)
            if (b->results[q] < 0 && b->scratch[q][0]) newly_refused |= refuse(b, b->req_customer[q], b->scratch[q]);
        *e = MD_ERR_OK;
    }
    if (*e) return ATTEMPT_FAILED; /* the store dropped the connection */
    if (nreq) observe(b, MD_LAT_REDIS_APPLY, &t0);
    if (newly_refused) return ATTEMPT_REFUSED;
    for (size_t q = 0; q < nreq; q++)
        if (b->results[q] == 0) return ATTEMPT_CONFLICT;
    return ATTEMPT_DONE;
failed:
    /* Requests sent but not answered: their replies would be taken for the
     * next command's. Drop the connection with them; whether they were
     * applied or not, the redo reads what is there. */
    if (nsent) md_store_disconnect(b->store);
    if (b->held_stale) {
        b->held_stale = false;
        b->read_decoded = true; /* a customer just read from Redis is held too: reading it held again would not end */
        return ATTEMPT_CONFLICT;
    }
    return ATTEMPT_FAILED;
}

/* Step 4: every outbox entry of the batch's customers to the sink. */
static md_err deliver(md_batch *b, char *err, size_t errsz) {
    size_t total = b->n_decisions;
    for (size_t c = 0; c < b->n_cust; c++) total += md_cstate_pending_count(b->states[c]);
    if (total > b->cap_deliveries) {
        md_delivery *d = realloc(b->deliveries, total * sizeof(*d));
        if (!d) {
            snprintf(err, errsz, "out of memory");
            return MD_ERR_NOMEM;
        }
        b->deliveries = d;
        b->cap_deliveries = total;
    }
    size_t k = 0;
    for (size_t c = 0; c < b->n_cust; c++) {
        md_cstate *cs = b->states[c];
        for (size_t p = 0; p < md_cstate_pending_count(cs); p++) {
            md_delivery *d = &b->deliveries[k++];
            md_cstate_pending(cs, p, &d->trigger_id, &d->topic, &d->payload);
            d->customer_id = b->cust_ids[c];
            d->len = strlen(d->payload);
            md_moment_route(b->cfg, d->topic, d->payload, &d->campaign, &d->channel, &d->holdout);
        }
    }
    for (size_t i = 0; i < b->n_decisions; i++) {
        if (refused(b, b->decisions[i].customer)) continue;
        md_delivery *d = &b->deliveries[k++];
        *d = (md_delivery){.trigger_id = "", .topic = b->cfg->audit.topic, .payload = b->decisions[i].payload,
                           .customer_id = b->cust_ids[b->decisions[i].customer], .campaign = -1, .channel = -1};
        d->len = strlen(d->payload);
    }
    return b->hooks.deliver(b->hooks.ctx, b->deliveries, k, err, errsz);
}

/* The due set follows the customers' "d" fields. After the apply, so a
 * crash in between leaves a field without its member: the customer's next
 * event re-decides and re-schedules it (the window the schedule may miss). */
static md_err sync_due(md_batch *b, char *err, size_t errsz) {
    size_t k = 0;
    for (size_t c = 0; c < b->n_cust; c++) {
        int64_t due;
        /* A member the set holds for a state that says otherwise (its key
         * expired, or a crash between an apply and this) is corrected too,
         * or the schedule would take it again at every pass. */
        if (!md_cstate_due_changed(b->states[c], &due) && !b->due_check[c]) continue;
        b->due_ids[k] = b->cust_ids[c];
        b->due_at[k++] = due;
    }
    md_err e;
    while ((e = md_store_due_sync(b->store, k, b->due_ids, b->due_at, err, errsz)) && retry(b, e, "schedule", err)) {
    }
    return e;
}

/* Step 5: funnel increments, then forgetting the outbox. */
static md_err settle(md_batch *b, char *err, size_t errsz) {
    size_t n_in = 0;
    for (size_t c = 0; c < b->n_cust; c++) n_in += md_cstate_incr_count(b->states[c]);
    md_err e = MD_ERR_OK;
    if (n_in) {
        const char **camp = calloc(n_in, sizeof(char *)), **day = calloc(n_in, sizeof(char *)), **field = calloc(n_in, sizeof(char *));
        int64_t *delta = calloc(n_in, sizeof(int64_t));
        if (!camp || !day || !field || !delta) {
            snprintf(err, errsz, "out of memory");
            e = MD_ERR_NOMEM;
        } else {
            size_t k = 0;
            for (size_t c = 0; c < b->n_cust; c++)
                for (size_t i = 0; i < md_cstate_incr_count(b->states[c]); i++, k++) {
                    const char *name;
                    md_cstate_incr(b->states[c], i, &name, &camp[k], &day[k], &field[k], &delta[k]);
                }
            /* Funnel counts must not be lost: retried until Redis takes
             * them. A crash between this and forgetting them below counts
             * them twice: the one window where a funnel count (never a
             * trigger) may be off by one. */
            while ((e = md_store_funnel_add(b->store, n_in, camp, day, field, delta, err, errsz)) && retry(b, e, "funnel", err)) {
            }
        }
        free(camp);
        free(day);
        free(field);
        free(delta);
        if (e) return e;
    }
    /* Forgetting delivered triggers may fail (Redis went down just now):
     * they are delivered again later under the same trigger id, which
     * subscribers drop, so that alone is not worth waiting for. Funnel
     * increments already added would be added again: those are retried. */
    while ((e = md_store_forget_outbox(b->store, b->n_cust, b->cust_ids, b->states, err, errsz))) {
        if (!n_in) {
            md_log(MD_LOG_WARN, "redis", "could not clear delivered outbox entries; they will be delivered again", "error", err, NULL);
            return MD_ERR_OK;
        }
        if (!retry(b, e, "forget", err)) return e;
    }
    return MD_ERR_OK;
}

/* Counts, logs and hands to the refuse hook every input of a refused
 * customer: once per run, after its last attempt (a redo restores the
 * counters). */
static void report_refusals(md_batch *b) {
    if (!b->any_refused) return;
    for (size_t c = 0; c < b->n_cust; c++) {
        if (!refused(b, c)) continue;
        md_log(MD_LOG_WARN, "redis", "redis refused this customer's key; its inputs are set aside", "customer", b->cust_ids[c], "error",
               b->refusal[c], NULL);
    }
    /* One pass over the inputs, in their order, however many were refused. */
    for (size_t i = 0; i < b->n_items; i++) {
        const item *it = &b->items[i];
        size_t c = (size_t)it->customer;
        if (!refused(b, c)) continue;
        b->n->refused++;
        if (it->has_src && b->hooks.refuse) {
            b->n->dead_lettered++;
            b->hooks.refuse(b->hooks.ctx, &it->src, b->cust_ids[c], b->refusal[c]);
        }
    }
}

md_err md_batch_run(md_batch *b, int64_t now_ms, char *errstr, size_t errstr_size) {
    md_err e = MD_ERR_OK;
    const char *what = "";
    md_counters before = *b->n;
    for (;;) {
        attempt a = decide_and_apply(b, now_ms, &e, &what, errstr, errstr_size);
        if (b->capacity) settle_capacity(b, a != ATTEMPT_FAILED);
        if (a == ATTEMPT_DONE) break;
        *b->n = before; /* the redo counts again */
        if (a == ATTEMPT_REFUSED) continue; /* decided again without the refused customers */
        if (a == ATTEMPT_CONFLICT) {
            /* Another writer changed one of these customers since we read it
             * (a rebalance in flight, or another consumer owning another
             * topic's partition of the same customer). Re-read and decide
             * again: what the other applied is then part of the state, what
             * we applied reads as duplicates, and every outbox entry is
             * delivered below. */
            b->n->conflicts++;
            before = *b->n;
            md_log(MD_LOG_INFO, "batch", "customer changed concurrently; re-reading the batch", NULL);
            continue;
        }
        if (!retry(b, e, what, errstr)) goto out;
        before = *b->n; /* what the hook counted stays */
    }
    report_refusals(b);
    if (b->capacity) give_back_capacity(b);
    if ((e = deliver(b, errstr, errstr_size))) goto out;
    if ((e = sync_due(b, errstr, errstr_size))) goto out;
    e = settle(b, errstr, errstr_size);
out:
    md_batch_clear(b);
    return e;
}

md_err md_batch_make_room(md_batch *b, char *errstr, size_t errstr_size) {
    return md_batch_full(b) ? md_batch_run(b, 0, errstr, errstr_size) : MD_ERR_OK;
}

int64_t md_batch_newest_event(const md_batch *b) { return b->newest_event_ms; }

void md_batch_set_paused(md_batch *b, uint32_t paused_campaigns) { b->paused_campaigns = paused_campaigns; }
