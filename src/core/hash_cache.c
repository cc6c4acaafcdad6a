/* hash_cache.c: the customers' hashes as last read or written (hash_cache.h).
 *
 * A chained table of entries keyed by SipHash under the caller's secret key
 * (customer ids are chosen by whoever produces input: a public hash would
 * let them pile every id into one chain), and a list from the most to
 * the least recently used, which goes first when the budget is passed. An
 * entry is one block: its key, then each field as a record (record_write:
 * the lengths as varints, the field and the value each terminated, as
 * Redis replies are). */
#include "hash_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *chain;            /* the next in its bucket */
    struct entry *newer, *older;    /* the recency list */
    uint64_t hash;
    size_t charged; /* bytes counted against the budget */
    size_t n;       /* fields */
    size_t key_len;
    size_t data_len;
    int64_t expires_at; /* when the key expires, as md_hash_cache_applied was told; 0: not known */
    size_t watch_off;   /* where the watched field's record starts in data; 0: absent */
    uint64_t held;      /* the hold generation that holds it (md_hash_cache_hold); 0: none */
    char data[]; /* the key and its NUL, then the fields */
} entry;

/* A field of the entry being rebuilt: its text, or a number made here. */
typedef struct field {
    md_hash_field h;
    bool own; /* the value is num (moved with the struct), not h.v */
    char num[24];
} field;

struct md_hash_cache {
    entry **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t entries, bytes, budget;
    entry *newest, *oldest;
    entry *held_newest, *held_oldest; /* the entries held, out of the list above until released */
    uint64_t sip[2];
    uint64_t hits, misses;
    char watch[64];   /* md_hash_cache_watch's field, "" for none */
    size_t watch_len;
    uint64_t hold_gen; /* entries held with this generation stay until md_hash_cache_release */
    /* md_hash_cache_applied's arrays, kept (every apply comes here). */
    field *fs;
    md_hash_field *out;
    size_t scratch_cap;
};

/* A field's record in an entry: the field's and the value's lengths as
 * varints (7 bits a byte, the high bit on all but the last: a byte each for
 * fields and values under 128 bytes, nearly all of them, where two u32 took
 * 8 and a customer's 26 fields 156 bytes more), then the field and a NUL,
 * the value and a NUL. */
static size_t varint_size(size_t n) {
    size_t s = 1;
    for (; n >= 128; n >>= 7) s++;
    return s;
}

static size_t record_size(const md_hash_field *h) { return varint_size(h->fl) + varint_size(h->vl) + h->fl + h->vl + 2; }

static char *put_varint(char *w, size_t n) {
    for (; n >= 128; n >>= 7) *w++ = (char)((n & 127) | 128);
    *w++ = (char)n;
    return w;
}

static const char *get_varint(const char *p, size_t *n) {
    size_t v = 0;
    unsigned shift = 0;
    unsigned char b;
    do {
        b = (unsigned char)*p++;
        v |= (size_t)(b & 127) << shift;
        shift += 7;
    } while (b & 128);
    *n = v;
    return p;
}

static char *record_write(char *w, const md_hash_field *h) {
    w = put_varint(put_varint(w, h->fl), h->vl);
    memcpy(w, h->f, h->fl);
    w[h->fl] = '\0';
    memcpy(w + h->fl + 1, h->v, h->vl);
    w[h->fl + 1 + h->vl] = '\0';
    return w + h->fl + h->vl + 2;
}

/* The record at p into h (pointing into the entry); the next record. */
static const char *record_read(const char *p, md_hash_field *h) {
    size_t fl, vl;
    p = get_varint(get_varint(p, &fl), &vl);
    *h = (md_hash_field){.f = p, .fl = fl, .v = p + fl + 1, .vl = vl};
    return p + fl + vl + 2;
}

md_hash_cache *md_hash_cache_new(size_t budget, const uint64_t sip_key[2]) {
    md_hash_cache *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->mask = 1023;
    c->buckets = calloc(c->mask + 1, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->budget = budget;
    c->hold_gen = 1;
    c->sip[0] = sip_key[0];
    c->sip[1] = sip_key[1];
    return c;
}

void md_hash_cache_clear(md_hash_cache *c) {
    if (!c) return;
    for (int list = 0; list < 2; list++)
        for (entry *e = list ? c->held_newest : c->newest, *next; e; e = next) {
            next = e->older;
            free(e);
        }
    memset(c->buckets, 0, (c->mask + 1) * sizeof(*c->buckets));
    c->newest = c->oldest = c->held_newest = c->held_oldest = NULL;
    c->entries = c->bytes = 0;
}

void md_hash_cache_destroy(md_hash_cache *c) {
    if (!c) return;
    md_hash_cache_clear(c);
    free(c->buckets);
    free(c->fs);
    free(c->out);
    free(c);
}

static entry **slot_of(md_hash_cache *c, const char *key, size_t len, uint64_t h) {
    entry **p = &c->buckets[h & c->mask];
    while (*p && ((*p)->hash != h || (*p)->key_len != len || memcmp((*p)->data, key, len) != 0)) p = &(*p)->chain;
    return p;
}

static void list_unlink(entry **newest, entry **oldest, entry *e) {
    if (e->newer) e->newer->older = e->older;
    else *newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else *oldest = e->newer;
    e->newer = e->older = NULL;
}

static void list_link_newest(entry **newest, entry **oldest, entry *e) {
    e->older = *newest;
    e->newer = NULL;
    if (*newest) (*newest)->newer = e;
    *newest = e;
    if (!*oldest) *oldest = e;
}

/* Out of its list: the recency list, or the held entries'. */
static void unlink_recency(md_hash_cache *c, entry *e) {
    if (e->held == c->hold_gen) list_unlink(&c->held_newest, &c->held_oldest, e);
    else list_unlink(&c->newest, &c->oldest, e);
}

/* The most recent of the recency list, held no more. */
static void link_newest(md_hash_cache *c, entry *e) {
    e->held = 0;
    list_link_newest(&c->newest, &c->oldest, e);
}

/* Takes e, which *p points to, out of the table and frees it: remove_entry
 * without looking for its slot again. */
static void remove_at(md_hash_cache *c, entry **p, entry *e) {
    *p = e->chain;
    unlink_recency(c, e);
    c->entries--;
    c->bytes -= e->charged;
    free(e);
}

/* Takes e out of the table and frees it. */
static void remove_entry(md_hash_cache *c, entry *e) { remove_at(c, slot_of(c, e->data, e->key_len, e->hash), e); }

/* The least recently used out until the budget holds, never keep (just
 * put); the entries held are not in the list: with more of them than the
 * budget holds, the cache runs over it until md_hash_cache_release. */
static void evict(md_hash_cache *c, const entry *keep) {
    while (c->bytes > c->budget && c->oldest && c->oldest != keep) remove_entry(c, c->oldest);
}

/* Twice the buckets once there are more entries than buckets. */
static void grow(md_hash_cache *c) {
    if (c->entries <= c->mask + 1) return;
    size_t mask = c->mask * 2 + 1;
    entry **b = calloc(mask + 1, sizeof(*b));
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i <= c->mask; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & mask];
            b[e->hash & mask] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->mask = mask;
}

/* key's entry (len bytes, hash h), out of its recency list (the caller
 * links it where it goes), counted as a hit; NULL and a miss when there is
 * none. */
static entry *take_hashed(md_hash_cache *c, const char *key, size_t len, uint64_t h) {
    entry *e = *slot_of(c, key, len, h);
    if (!e) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    unlink_recency(c, e);
    return e;
}

static entry *take(md_hash_cache *c, const char *key) {
    size_t len = strlen(key);
    return take_hashed(c, key, len, md_siphash24(c->sip, key, len));
}

const md_hash_cache_entry *md_hash_cache_get(md_hash_cache *c, const char *key) {
    entry *e = take(c, key);
    if (e) link_newest(c, e);
    return (const md_hash_cache_entry *)e;
}

bool md_hash_cache_each(md_hash_cache *c, const char *key, md_hash_cache_field_fn fn, void *ctx) {
    const md_hash_cache_entry *e = md_hash_cache_get(c, key);
    if (e) md_hash_cache_entry_each(e, fn, ctx);
    return e != NULL;
}

/* Puts key's entry (its hash h) in slot p, where slot_of found it or found
 * none. The entry being replaced takes the new one's place in its chain and
 * is freed last: the fields may point into it. One look into the table per
 * apply, not three (they were a tenth of momentd's CPU, each a miss). Returns
 * the entry, or NULL when it is too large to keep (and key has none then). */
static entry *put_entry_at(md_hash_cache *c, entry **p, uint64_t h, const char *key, size_t len, const md_hash_field *fields, size_t n,
                           int64_t expires_at) {
    size_t data = len + 1;
    for (size_t i = 0; i < n; i++) data += record_size(&fields[i]);
    entry *old = *p;
    size_t charged = sizeof(entry) + data + 16; /* and the allocator's own */
    entry *e = charged <= c->budget / 10 ? malloc(sizeof(entry) + data) : NULL;
    if (!e) {
        if (old) remove_at(c, p, old);
        return NULL;
    }
    *e = (entry){.hash = h, .charged = charged, .n = n, .key_len = len, .data_len = data, .expires_at = expires_at};
    memcpy(e->data, key, len + 1);
    char *w = e->data + len + 1;
    for (size_t i = 0; i < n; i++) {
        if (c->watch_len && fields[i].fl == c->watch_len && memcmp(fields[i].f, c->watch, c->watch_len) == 0) e->watch_off = (size_t)(w - e->data);
        w = record_write(w, &fields[i]);
    }
    e->chain = old ? old->chain : *p;
    *p = e;
    if (old) {
        unlink_recency(c, old);
        c->entries--;
        c->bytes -= old->charged;
        free(old);
    }
    link_newest(c, e);
    c->entries++;
    c->bytes += charged;
    evict(c, e);
    grow(c);
    return e;
}

/* key's entry as a read from Redis gives it: put_entry_at's answer. */
static entry *put_read(md_hash_cache *c, const char *key, const md_hash_field *fields, size_t n) {
    size_t len = strlen(key);
    uint64_t h = md_siphash24(c->sip, key, len);
    return put_entry_at(c, slot_of(c, key, len, h), h, key, len, fields, n, 0); /* a read says nothing of the key's expiry */
}

void md_hash_cache_put(md_hash_cache *c, const char *key, const md_hash_field *fields, size_t n) { put_read(c, key, fields, n); }

void md_hash_cache_watch(md_hash_cache *c, const char *name) {
    size_t n = strlen(name);
    c->watch_len = n < sizeof(c->watch) ? n : 0;
    memcpy(c->watch, name, c->watch_len);
}

static const md_hash_cache_entry *hold_entry(md_hash_cache *c, entry *e) {
    if (!e) return NULL;
    e->held = c->hold_gen;
    list_link_newest(&c->held_newest, &c->held_oldest, e);
    return (const md_hash_cache_entry *)e;
}

const md_hash_cache_entry *md_hash_cache_hold(md_hash_cache *c, const char *key) { return hold_entry(c, take(c, key)); }

const md_hash_cache_entry *md_hash_cache_put_held(md_hash_cache *c, const char *key, const md_hash_field *fields, size_t n) {
    entry *e = put_read(c, key, fields, n);
    if (!e) return NULL;
    unlink_recency(c, e); /* out of the recency list, into the held one */
    return hold_entry(c, e);
}

/* How many keys ahead hold_many asks for a key's slot; its entry is asked
 * for half as far ahead (the slot is there by then), the entry's recency
 * neighbours (which unlinking it writes) one ahead. */
#define HOLD_AHEAD 8

void md_hash_cache_hold_many(md_hash_cache *c, size_t n, const char *const *keys, const md_hash_cache_entry **held) {
    uint64_t hash[HOLD_AHEAD];
    size_t len[HOLD_AHEAD];
    for (size_t j = 0; j < n && j < HOLD_AHEAD; j++) {
        len[j] = strlen(keys[j]);
        hash[j] = md_siphash24(c->sip, keys[j], len[j]);
        __builtin_prefetch(&c->buckets[hash[j] & c->mask]);
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = i + HOLD_AHEAD / 2;
        if (k < n) {
            const entry *e = c->buckets[hash[k % HOLD_AHEAD] & c->mask];
            if (e) __builtin_prefetch(e, 1);
        }
        if (i + 1 < n) {
            const entry *e = c->buckets[hash[(i + 1) % HOLD_AHEAD] & c->mask];
            if (e && e->hash == hash[(i + 1) % HOLD_AHEAD]) {
                if (e->newer) __builtin_prefetch(e->newer, 1);
                if (e->older) __builtin_prefetch(e->older, 1);
            }
        }
        size_t r = i % HOLD_AHEAD;
        held[i] = hold_entry(c, take_hashed(c, keys[i], len[r], hash[r]));
        size_t j = i + HOLD_AHEAD; /* into the slot i leaves */
        if (j < n) {
            len[r] = strlen(keys[j]);
            hash[r] = md_siphash24(c->sip, keys[j], len[r]);
            __builtin_prefetch(&c->buckets[hash[r] & c->mask]);
        }
    }
}

bool md_hash_cache_watched(const md_hash_cache_entry *he, const char **value, size_t *vlen) {
    const entry *e = (const entry *)he;
    if (!e->watch_off) return false;
    md_hash_field h;
    record_read(e->data + e->watch_off, &h);
    *value = h.v;
    *vlen = h.vl;
    return true;
}

int64_t md_hash_cache_entry_expires_at(const md_hash_cache_entry *he) { return ((const entry *)he)->expires_at; }

/* e's header and fields asked for: a fixed number of lines, not up to the
 * data's end, since reading the header to learn it would wait for the very
 * line being asked for. A state is 600-900 bytes with the header; lines
 * past the block are harmless. */
static void entry_prefetch(const md_hash_cache_entry *he) {
    const char *p = (const char *)he;
    for (int line = 0; line < 14; line++) __builtin_prefetch(p + 64 * line);
}

void md_hash_cache_prefetch_decodes(const md_hash_cache_entry *const *held, md_cstate *const *states, size_t n, size_t c) {
    if (c + 2 < n && held[c + 2]) {
        entry_prefetch(held[c + 2]);
        if (states) md_cstate_prefetch(states[c + 2], false);
    }
    if (states && c + 1 < n && held[c + 1]) md_cstate_prefetch(states[c + 1], true);
}

void md_hash_cache_entry_each(const md_hash_cache_entry *he, md_hash_cache_field_fn fn, void *ctx) {
    const entry *e = (const entry *)he;
    const char *p = e->data + e->key_len + 1;
    for (size_t i = 0; i < e->n; i++) {
        md_hash_field h;
        p = record_read(p, &h);
        fn(ctx, h.f, h.fl, h.v, h.vl);
    }
}

void md_hash_cache_release(md_hash_cache *c) {
    /* The held entries, the most recently used, back at the newest end. */
    if (c->held_oldest) {
        c->held_oldest->older = c->newest;
        if (c->newest) c->newest->newer = c->held_oldest;
        else c->oldest = c->held_oldest;
        c->newest = c->held_newest;
    }
    c->held_newest = c->held_oldest = NULL;
    c->hold_gen++; /* their marks now name no hold */
    evict(c, NULL);
}

int64_t md_hash_cache_expires_at(const md_hash_cache *c, const char *key) {
    size_t len = strlen(key);
    const entry *e = *slot_of((md_hash_cache *)c, key, len, md_siphash24(c->sip, key, len));
    return e ? e->expires_at : 0;
}

int64_t md_expiry_to_set(int64_t known, int64_t now, int64_t ttl_ms) {
    int64_t until = now + ttl_ms, slack = ttl_ms / 16 < MD_EXPIRY_SLACK_MS ? ttl_ms / 16 : MD_EXPIRY_SLACK_MS;
    return known > 0 && known >= until - slack && known <= until ? 0 : until;
}

void md_hash_cache_drop(md_hash_cache *c, const char *key) {
    size_t len = strlen(key);
    entry **p = slot_of(c, key, len, md_siphash24(c->sip, key, len));
    if (*p) remove_at(c, p, *p);
}

/* Fields of one length differ mostly at the end (a topic's watermarks
 * "W3zeau0" and "W3zeau1", the guard's hashes, "S<hash>"): the last byte first
 * spares most calls to memcmp, which was 5% of momentd's CPU here. */
static field *find(field *fs, size_t n, const char *f, size_t fl) {
    for (size_t i = 0; i < n; i++)
        if (fs[i].h.fl == fl && (fl == 0 || fs[i].h.f[fl - 1] == f[fl - 1]) && memcmp(fs[i].h.f, f, fl) == 0) return &fs[i];
    return NULL;
}

void md_hash_cache_applied(md_hash_cache *c, const char *key, const md_ops *ops, int64_t version, int64_t expires_at) {
    size_t len = strlen(key);
    uint64_t h = md_siphash24(c->sip, key, len);
    entry **slot = slot_of(c, key, len, h), *e = *slot;
    if (!e) return;
    size_t need = e->n + ops->n + 1, n = 0;
    if (need > c->scratch_cap) {
        size_t cap = need * 2;
        field *f = realloc(c->fs, cap * sizeof(*f));
        if (f) c->fs = f;
        md_hash_field *o = realloc(c->out, cap * sizeof(*o));
        if (o) c->out = o;
        if (!f || !o) goto drop;
        c->scratch_cap = cap;
    }
    field *fs = c->fs;
    const char *p = e->data + e->key_len + 1;
    for (size_t i = 0; i < e->n; i++, n++) {
        fs[n] = (field){.own = false};
        p = record_read(p, &fs[n].h);
    }
    /* What apply.lua does, in the same order: every op, then the version. */
    for (size_t o = 0; o <= ops->n; o++) {
        const char *f = o < ops->n ? md_ops_field(ops, o) : "v";
        char kind = o < ops->n ? ops->ops[o].kind : MD_OP_SET;
        size_t fl = o < ops->n ? ops->ops[o].field_len : 1;
        field *x = find(fs, n, f, fl);
        if (kind == MD_OP_OUTBOX_SET) goto drop; /* the outbox is not kept: the next read must see it */
        if (kind == MD_OP_DEL) {
            if (x) *x = fs[--n];
            continue;
        }
        if (!x) {
            x = &fs[n++];
            *x = (field){.h = {.f = f, .fl = fl}};
        }
        if (kind == MD_OP_SET && o == ops->n) {
            x->h.vl = md_fmt_i64(x->num, version);
            x->own = true;
        } else if (kind == MD_OP_SET) {
            x->h.v = md_ops_value(ops, o);
            x->h.vl = ops->ops[o].value_len;
            x->own = false;
        } else { /* MD_OP_INCR: as HINCRBY, on an integer or nothing */
            char buf[24], *end;
            long long cur = 0, by = strtoll(md_ops_value(ops, o), &end, 10);
            if (x->h.v || x->own) {
                if (x->h.vl == 0 || x->h.vl >= sizeof(buf)) goto drop;
                memcpy(buf, x->own ? x->num : x->h.v, x->h.vl);
                buf[x->h.vl] = '\0';
                cur = strtoll(buf, &end, 10);
                if (*end) goto drop;
            }
            x->h.vl = md_fmt_i64(x->num, (int64_t)(cur + by));
            x->own = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        c->out[i] = fs[i].h;
        if (fs[i].own) c->out[i].v = fs[i].num;
    }
    put_entry_at(c, slot, h, key, len, c->out, n, expires_at > 0 ? expires_at : expires_at < 0 ? 0 : e->expires_at);
    return;
drop:
    remove_at(c, slot, e);
}

md_hash_cache_stats md_hash_cache_stats_get(const md_hash_cache *c) {
    return (md_hash_cache_stats){c->hits, c->misses, c->entries, c->bytes};
}
