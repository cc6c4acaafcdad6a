/* test_hash_cache.c: the customers' hashes kept between batches: what an
 * entry holds after the writes apply.lua makes, the byte budget, and the
 * cases where an entry must go rather than be guessed at. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash_cache.h"

static const uint64_t key[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

/* The entry as "f=v;" in stored order, sorted, into out ("" when none). */
typedef struct image {
    char text[4096];
    size_t n;
    char *items[128];
} image;

static void collect(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    image *im = ctx;
    cr_assert_eq(f[fl], '\0', "fields are terminated");
    cr_assert_eq(v[vl], '\0', "values are terminated");
    char *item = malloc(fl + vl + 2);
    snprintf(item, fl + vl + 2, "%s=%s", f, v);
    im->items[im->n++] = item;
}

static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *entry_of(md_hash_cache *c, const char *k, image *im) {
    memset(im, 0, sizeof(*im));
    if (!md_hash_cache_each(c, k, collect, im)) return NULL;
    qsort(im->items, im->n, sizeof(char *), by_text);
    for (size_t i = 0; i < im->n; i++) {
        strcat(im->text, im->items[i]);
        strcat(im->text, ";");
        free(im->items[i]);
    }
    return im->text;
}

static void put3(md_hash_cache *c, const char *k) {
    const md_hash_field f[] = {{"v", "4", 1, 1}, {"x0", "1", 2, 1}, {"n", "10", 1, 2}};
    md_hash_cache_put(c, k, f, 3);
}

/* n entries put3 makes, "md:{<prefix><i>}" for i from 0. */
static void put_many(md_hash_cache *c, const char *prefix, int n) {
    char k[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "md:{%s%d}", prefix, i);
        put3(c, k);
    }
}

Test(hash_cache, holds_what_was_put_and_counts_hits) {
    md_hash_cache *c = md_hash_cache_new(1 << 20, key);
    image im;
    cr_assert_null(entry_of(c, "md:{a}", &im), "nothing before a put");
    put3(c, "md:{a}");
    cr_assert_str_eq(entry_of(c, "md:{a}", &im), "n=10;v=4;x0=1;");
    cr_assert_null(entry_of(c, "md:{b}", &im));
    md_hash_cache_stats st = md_hash_cache_stats_get(c);
    cr_assert_eq(st.hits, 1);
    cr_assert_eq(st.misses, 2);
    cr_assert_eq(st.entries, 1);
    md_hash_cache_destroy(c);
}

/* What apply.lua does to the hash: sets, deletes, HINCRBY on an integer or
 * nothing, then "v" the new version. */
Test(hash_cache, applied_writes_make_what_redis_holds) {
    md_hash_cache *c = md_hash_cache_new(1 << 20, key);
    put3(c, "md:{a}");
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_DEL, "x0", NULL);
    md_ops_add(&ops, MD_OP_SET, "n", "11");
    md_ops_add(&ops, MD_OP_SET, "t0", "1790000000000");
    md_ops_add(&ops, MD_OP_INCR, "c", "3");
    md_ops_add(&ops, MD_OP_INCR, "c", "-1");
    md_ops_add(&ops, MD_OP_SET, "x0", "1");
    md_hash_cache_applied(c, "md:{a}", &ops, 5, 0);
    image im;
    cr_assert_str_eq(entry_of(c, "md:{a}", &im), "c=2;n=11;t0=1790000000000;v=5;x0=1;");
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_INCR, "n", "5");
    md_ops_add(&ops, MD_OP_DEL, "t0", NULL);
    md_hash_cache_applied(c, "md:{a}", &ops, 6, 0);
    cr_assert_str_eq(entry_of(c, "md:{a}", &im), "c=2;n=16;v=6;x0=1;");
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

/* The key's expiry as the applies said: unknown after a read, set by an
 * apply that set it, kept through one that left it alone, forgotten after
 * one that made it unknown (a PERSIST) and with the entry. */
static void count_fields(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    (void)f, (void)fl, (void)v, (void)vl;
    ++*(size_t *)ctx;
}

/* Replacing an entry, by a read or by an apply, keeps every other entry of
 * its bucket: with a thousand keys in as many buckets, chains are common. */
Test(hash_cache, replacing_an_entry_keeps_the_others_of_its_bucket) {
    md_hash_cache *c = md_hash_cache_new(64 << 20, key);
    enum { N = 1000 };
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "md:{r%d}", i);
        put3(c, k);
    }
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "T", "1,,");
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "md:{r%d}", i);
        if (i % 2) put3(c, k);
        else md_hash_cache_applied(c, k, &ops, 5, 0);
    }
    for (int i = 0; i < N; i++) {
        size_t got = 0;
        snprintf(k, sizeof(k), "md:{r%d}", i);
        cr_assert(md_hash_cache_each(c, k, count_fields, &got), "%s lost", k);
        cr_assert_eq(got, i % 2 ? 3 : 4, "%s", k);
    }
    cr_assert_eq(md_hash_cache_stats_get(c).entries, N);
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

Test(hash_cache, the_entry_remembers_the_expiry_its_applies_set) {
    md_hash_cache *c = md_hash_cache_new(1 << 20, key);
    put3(c, "md:{a}");
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 0, "a read says nothing of the expiry");
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "t0", "1");
    md_hash_cache_applied(c, "md:{a}", &ops, 5, 86400000);
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 86400000);
    /* A read tells it too (the store keeps it for the next apply). */
    size_t got = 0;
    const md_hash_cache_entry *got_e = md_hash_cache_get(c, "md:{a}");
    cr_assert(got_e);
    cr_assert_eq(md_hash_cache_entry_expires_at(got_e), 86400000);
    md_hash_cache_entry_each(got_e, count_fields, &got);
    cr_assert_eq(got, 4, "its three fields (v among them) and t0");
    cr_assert_null(md_hash_cache_get(c, "md:{zz}"), "no entry");
    md_hash_cache_applied(c, "md:{a}", &ops, 6, 0);
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 86400000, "an apply that left the expiry alone");
    md_hash_cache_applied(c, "md:{a}", &ops, 7, -1);
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 0, "after a PERSIST");
    md_hash_cache_applied(c, "md:{a}", &ops, 8, 99);
    put3(c, "md:{a}");
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 0, "read again");
    md_hash_cache_applied(c, "md:{a}", &ops, 9, 99);
    md_hash_cache_drop(c, "md:{a}");
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{a}"), 0);
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{zz}"), 0, "no entry");
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

/* An apply sets the expiry again only when the one known has fallen more
 * than the slack behind now + ttl: never without one known, not while it
 * is fresh, and again after a day (or a sixteenth of a short TTL). */
Test(hash_cache, an_expiry_is_set_again_once_it_falls_behind_by_the_slack) {
    md_hash_cache *c = md_hash_cache_new(1 << 20, key);
    const int64_t day = 86400000, ttl = 200 * day, t0 = 1000000;
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0, ttl), t0 + ttl, "no entry");
    put3(c, "md:{a}");
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0, ttl), t0 + ttl, "an entry read, its expiry unknown");
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "t0", "1");
    md_hash_cache_applied(c, "md:{a}", &ops, 5, t0 + ttl);
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + 1000, ttl), 0, "a second later");
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + MD_EXPIRY_SLACK_MS, ttl), 0, "a day later");
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + MD_EXPIRY_SLACK_MS + 1, ttl), t0 + MD_EXPIRY_SLACK_MS + 1 + ttl,
                 "more than a day later");
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + 1000, ttl / 2), t0 + 1000 + ttl / 2, "a shorter TTL now");
    /* The same from the expiry a read told, without the cache. */
    cr_assert_eq(md_expiry_to_set(t0 + ttl, t0 + 1000, ttl), 0);
    cr_assert_eq(md_expiry_to_set(0, t0 + 1000, ttl), t0 + 1000 + ttl, "none known");
    cr_assert_eq(md_expiry_to_set(t0 + ttl, t0 + MD_EXPIRY_SLACK_MS + 1, ttl), t0 + MD_EXPIRY_SLACK_MS + 1 + ttl);
    /* A TTL of 8 days: the slack is half a day. */
    md_hash_cache_applied(c, "md:{a}", &ops, 6, t0 + 8 * day);
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + day / 2, 8 * day), 0);
    cr_assert_eq(md_expiry_to_set(md_hash_cache_expires_at(c, "md:{a}"), t0 + day / 2 + 1, 8 * day), t0 + day / 2 + 1 + 8 * day);
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

/* The cache keeps no outbox: after an outbox write, or an increment it
 * cannot make (Redis would have refused it), the entry goes; an apply to a
 * customer it does not hold makes none. */
Test(hash_cache, an_entry_it_cannot_follow_goes) {
    md_hash_cache *c = md_hash_cache_new(1 << 20, key);
    image im;
    md_ops ops;
    md_ops_init(&ops);
    put3(c, "md:{a}");
    md_ops_add(&ops, MD_OP_SET, "n", "12");
    md_ops_add(&ops, MD_OP_OUTBOX_SET, "trigger-1", "moments.in_app\n{}");
    md_hash_cache_applied(c, "md:{a}", &ops, 5, 0);
    cr_assert_null(entry_of(c, "md:{a}", &im), "an outbox write drops the entry");
    put3(c, "md:{a}");
    md_ops_clear(&ops);
    md_ops_add(&ops, MD_OP_SET, "n", "many");
    md_ops_add(&ops, MD_OP_INCR, "n", "1");
    md_hash_cache_applied(c, "md:{a}", &ops, 5, 0);
    cr_assert_null(entry_of(c, "md:{a}", &im), "an increment of no integer drops the entry");
    md_hash_cache_applied(c, "md:{b}", &ops, 1, 0);
    cr_assert_null(entry_of(c, "md:{b}", &im), "no entry is made by an apply");
    put3(c, "md:{a}");
    md_hash_cache_drop(c, "md:{a}");
    cr_assert_null(entry_of(c, "md:{a}", &im));
    cr_assert_eq(md_hash_cache_stats_get(c).entries, 0);
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

/* The budget holds: the least recently used go first, and a read makes an
 * entry recent. */
Test(hash_cache, the_budget_evicts_the_least_recently_used) {
    md_hash_cache *c = md_hash_cache_new(20000, key);
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "md:{c%d}", i);
        put3(c, k);
        image im;
        if (i >= 1) cr_assert_not_null(entry_of(c, "md:{c0}", &im), "c0, read at every put, kept (%d)", i);
    }
    md_hash_cache_stats st = md_hash_cache_stats_get(c);
    cr_assert_leq(st.bytes, 20000, "%zu bytes", st.bytes);
    cr_assert_lt(st.entries, 1000);
    cr_assert_gt(st.entries, 10);
    image im;
    cr_assert_not_null(entry_of(c, "md:{c0}", &im), "read at every put: never the oldest");
    cr_assert_not_null(entry_of(c, "md:{c999}", &im), "the newest stays");
    cr_assert_null(entry_of(c, "md:{c1}", &im), "the oldest went");
    md_hash_cache_destroy(c);
}

/* Many entries: the table grows and every one is still found. */
Test(hash_cache, many_entries_are_all_found) {
    md_hash_cache *c = md_hash_cache_new(64u << 20, key);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "md:{c%d}", i);
        put3(c, k);
    }
    image im;
    for (int i = 0; i < 20000; i += 997) {
        snprintf(k, sizeof(k), "md:{c%d}", i);
        cr_assert_str_eq(entry_of(c, k, &im), "n=10;v=4;x0=1;", "%s", k);
    }
    cr_assert_eq(md_hash_cache_stats_get(c).entries, 20000);
    md_hash_cache_destroy(c);
}

/* Records' lengths are varints: one byte below 128, more above. Fields and
 * values of every size across the boundaries (0, 127, 128, 16383, 16384,
 * 100,000 bytes) come back whole, in a put and after an apply. */
static void collect_raw(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    size_t *sizes = ctx;
    size_t k = sizes[0]++;
    sizes[1 + 2 * k] = fl;
    sizes[2 + 2 * k] = vl;
    cr_assert_eq(f[fl], '\0');
    cr_assert_eq(v[vl], '\0');
    if (strcmp(f, "new") == 0 || strcmp(f, "v") == 0) return; /* the apply's own */
    for (size_t i = 0; i < vl; i++) cr_assert_eq(v[i], (char)('a' + (i + vl) % 26), "value of %zu bytes, byte %zu", vl, i);
}

Test(hash_cache, lengths_of_every_size_come_back) {
    md_hash_cache *c = md_hash_cache_new(64u << 20, key);
    const size_t sizes[] = {0, 1, 127, 128, 300, 16383, 16384, 100000};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    char *vals[N], names[N][300];
    md_hash_field f[N];
    for (size_t i = 0; i < N; i++) {
        vals[i] = malloc(sizes[i] + 1);
        for (size_t b = 0; b < sizes[i]; b++) vals[i][b] = (char)('a' + (b + sizes[i]) % 26);
        vals[i][sizes[i]] = '\0';
        size_t nl = i == 4 ? 200 : 3; /* one field name past 128 too */
        memset(names[i], 'f', nl);
        names[i][nl - 1] = (char)('0' + i);
        names[i][nl] = '\0';
        f[i] = (md_hash_field){names[i], vals[i], nl, sizes[i]};
    }
    md_hash_cache_put(c, "md:{big}", f, N);
    size_t got[1 + 2 * (N + 2)] = {0};
    cr_assert(md_hash_cache_each(c, "md:{big}", collect_raw, got));
    cr_assert_eq(got[0], N);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(got[1 + 2 * i], strlen(names[i]));
        cr_assert_eq(got[2 + 2 * i], sizes[i], "value %zu: %zu bytes back", i, got[2 + 2 * i]);
    }
    /* After an apply that adds a field: the rebuilt entry reads the same. */
    md_ops ops;
    md_ops_init(&ops);
    md_ops_add(&ops, MD_OP_SET, "new", "1");
    md_hash_cache_applied(c, "md:{big}", &ops, 7, 0);
    memset(got, 0, sizeof(got));
    cr_assert(md_hash_cache_each(c, "md:{big}", collect_raw, got), "kept after the apply");
    cr_assert_eq(got[0], N + 2, "the fields, \"new\" and \"v\"");
    for (size_t i = 0; i < N; i++) cr_assert_eq(got[2 + 2 * i], sizes[i]);
    md_ops_fini(&ops);
    for (size_t i = 0; i < N; i++) free(vals[i]);
    md_hash_cache_destroy(c);
}

/* Held entries: found and counted as hits, decoded later with the watched
 * field noted, and never evicted, even over the budget, until released. */
Test(hash_cache, held_entries_stay_until_released_and_note_the_watched_field) {
    md_hash_cache *c = md_hash_cache_new(2000, key);
    md_hash_cache_watch(c, "p:contact_point");
    const md_hash_field f[] = {{"v", "4", 1, 1}, {"p:contact_point", "13900000001", 15, 11}, {"x0", "1", 2, 1}};
    md_hash_cache_put(c, "md:{h0}", f, 3);
    put3(c, "md:{h1}");
    const md_hash_cache_entry *h0 = md_hash_cache_hold(c, "md:{h0}"), *h1 = md_hash_cache_hold(c, "md:{h1}");
    cr_assert(h0 && h1);
    cr_assert_null(md_hash_cache_hold(c, "md:{none}"));
    cr_assert_eq(md_hash_cache_stats_get(c).hits, 2);
    cr_assert_eq(md_hash_cache_stats_get(c).misses, 1);
    const char *v;
    size_t vl;
    cr_assert(md_hash_cache_watched(h0, &v, &vl));
    cr_assert_eq(vl, 11);
    cr_assert(memcmp(v, "13900000001", 11) == 0);
    cr_assert_not(md_hash_cache_watched(h1, &v, &vl), "h1 has none");
    /* Many more entries than the budget holds: the held two stay. */
    put_many(c, "o", 200);
    size_t got = 0;
    md_hash_cache_entry_each(h0, count_fields, &got);
    cr_assert_eq(got, 3, "a held entry is whole");
    cr_assert_eq(md_hash_cache_expires_at(c, "md:{h0}"), 0);
    got = 0;
    cr_assert(md_hash_cache_each(c, "md:{h1}", count_fields, &got), "a held entry was evicted");
    cr_assert_lt(md_hash_cache_stats_get(c).bytes, 2000 + 400, "the others are evicted as before: %zu bytes",
                 md_hash_cache_stats_get(c).bytes);
    cr_assert_null(md_hash_cache_hold(c, "md:{o0}"), "the oldest of the others went");
    /* Released: the budget holds again, the oldest out first. */
    md_hash_cache_release(c);
    put3(c, "md:{after}");
    cr_assert(md_hash_cache_stats_get(c).bytes <= 2000);
    cr_assert(md_hash_cache_hold(c, "md:{after}"), "the newest stays");
    /* Released entries are used and evicted like any other: enough newer
     * ones push h0 and h1 out. */
    md_hash_cache_release(c);
    put_many(c, "p", 200);
    cr_assert_null(md_hash_cache_hold(c, "md:{h0}"), "a released entry is never evicted");
    cr_assert_null(md_hash_cache_hold(c, "md:{h1}"));
    cr_assert(md_hash_cache_stats_get(c).bytes <= 2000);
    cr_assert(md_hash_cache_hold(c, "md:{p199}"));
    md_hash_cache_destroy(c); /* with an entry held: freed all the same (ASan) */
}

/* Holding many at once is holding each in turn: each key's own entry found
 * (in a table of many buckets, a third of the keys absent, runs shorter and
 * longer than the look-ahead), the same hits and misses, and the recency
 * list whole afterwards: as many newer entries as the budget holds evict
 * every one of them (an entry lost from the list would stay for good). */
static void put_named(md_hash_cache *c, const char *k) {
    const md_hash_field f[] = {{"v", "4", 1, 1}, {"x0", "1", 2, 1}, {"k", k, 1, strlen(k)}};
    md_hash_cache_put(c, k, f, 3);
}

static void name_of(void *ctx, const char *f, size_t fl, const char *v, size_t vl) {
    (void)vl;
    if (fl == 1 && f[0] == 'k') *(const char **)ctx = v;
}

Test(hash_cache, holding_many_at_once_is_holding_each_in_turn) {
    enum { N = 300, MAXN = 64 };
    char name[32];
    md_hash_cache *probe = md_hash_cache_new(1 << 20, key);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "md:{m%03d}", i);
        put_named(probe, name);
    }
    size_t budget = md_hash_cache_stats_get(probe).bytes; /* just the N */
    md_hash_cache_destroy(probe);
    md_hash_cache *c = md_hash_cache_new(budget, key);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "md:{m%03d}", i);
        put_named(c, name);
    }
    cr_assert_eq(md_hash_cache_stats_get(c).entries, N);
    char k[MAXN][32];
    const char *keys[MAXN];
    for (size_t n = 0; n <= MAXN; n += 7) {
        for (size_t i = 0; i < n; i++) {
            if (i % 3 == 2) snprintf(k[i], sizeof(k[i]), "md:{absent%zu}", i);
            else snprintf(k[i], sizeof(k[i]), "md:{m%03zu}", (i * 37 + n * 11) % N);
            keys[i] = k[i];
        }
        md_hash_cache_stats before = md_hash_cache_stats_get(c);
        const md_hash_cache_entry *held[MAXN];
        md_hash_cache_hold_many(c, n, keys, held);
        md_hash_cache_stats after = md_hash_cache_stats_get(c);
        size_t want_hits = 0;
        for (size_t i = 0; i < n; i++) {
            if (i % 3 == 2) {
                cr_assert_null(held[i], "%s is not in the cache", keys[i]);
                continue;
            }
            want_hits++;
            cr_assert(held[i], "%s was not found (n %zu)", keys[i], n);
            const char *got = NULL;
            md_hash_cache_entry_each(held[i], name_of, &got);
            cr_assert(got && strcmp(got, keys[i]) == 0, "held[%zu] is %s's entry, not %s's", i, got ? got : "nobody", keys[i]);
        }
        cr_assert_eq(after.hits - before.hits, want_hits, "n %zu", n);
        cr_assert_eq(after.misses - before.misses, n - want_hits, "n %zu", n);
        md_hash_cache_release(c);
    }
    cr_assert_eq(md_hash_cache_stats_get(c).entries, N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "md:{n%03d}", i);
        put_named(c, name);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "md:{m%03d}", i);
        cr_assert_null(md_hash_cache_get(c, name), "%s was never evicted: out of the recency list", name);
    }
    cr_assert_eq(md_hash_cache_stats_get(c).entries, N);
    md_hash_cache_destroy(c);
}

/* An entry rebuilt by 400 applies that grow and shrink it: each rebuild
 * holds exactly what Redis would (a model of the hash kept beside it), the
 * watched field is found where it now is, and its bucket's other entries
 * stay. */
Test(hash_cache, entries_rebuilt_by_many_applies_hold_what_redis_would) {
    md_hash_cache *c = md_hash_cache_new(64 << 20, key);
    md_hash_cache_watch(c, "p:contact_point");
    enum { OTHERS = 300, FIELDS = 40 };
    char k[32];
    for (int i = 0; i < OTHERS; i++) {
        snprintf(k, sizeof(k), "md:{o%d}", i);
        put3(c, k);
    }
    put3(c, "md:{g}");
    /* The model: field i holds value vals[i] ("" absent). */
    char vals[FIELDS][80] = {{0}};
    md_ops ops;
    md_ops_init(&ops);
    uint64_t x = 12345;
    for (int step = 0; step < 400; step++) {
        md_ops_clear(&ops);
        for (int j = 0; j < 3; j++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            int f = (int)((x >> 33) % FIELDS);
            char name[24];
            snprintf(name, sizeof(name), f == 0 ? "p:contact_point" : "f%d", f);
            if ((x >> 20) % 4 == 0) {
                md_ops_add(&ops, MD_OP_DEL, name, NULL);
                vals[f][0] = '\0';
            } else {
                /* values of 1 to 60 bytes: the entry grows and shrinks */
                size_t len = 1 + (size_t)((x >> 40) % 60);
                for (size_t b = 0; b < len; b++) vals[f][b] = (char)('a' + (step + b) % 26);
                vals[f][len] = '\0';
                md_ops_add(&ops, MD_OP_SET, name, vals[f]);
            }
        }
        md_hash_cache_applied(c, "md:{g}", &ops, step + 10, 0);
        /* What the entry should be: put3's three (x0, n; v rewritten), then the model. */
        char want[8192] = "";
        char *items[FIELDS + 3];
        size_t n_items = 0;
        char store[FIELDS + 3][128];
        snprintf(store[n_items], sizeof(store[0]), "n=10");
        items[n_items] = store[n_items], n_items++;
        snprintf(store[n_items], sizeof(store[0]), "v=%d", step + 10);
        items[n_items] = store[n_items], n_items++;
        snprintf(store[n_items], sizeof(store[0]), "x0=1");
        items[n_items] = store[n_items], n_items++;
        for (int f = 0; f < FIELDS; f++) {
            if (!vals[f][0]) continue;
            if (f == 0) snprintf(store[n_items], sizeof(store[0]), "p:contact_point=%.60s", vals[f]);
            else snprintf(store[n_items], sizeof(store[0]), "f%d=%.60s", f, vals[f]);
            items[n_items] = store[n_items], n_items++;
        }
        qsort(items, n_items, sizeof(char *), by_text);
        for (size_t i = 0; i < n_items; i++) {
            strcat(want, items[i]);
            strcat(want, ";");
        }
        image im;
        const char *got = entry_of(c, "md:{g}", &im);
        cr_assert(got, "step %d: the entry went", step);
        cr_assert_str_eq(got, want, "step %d", step);
        const md_hash_cache_entry *e = md_hash_cache_get(c, "md:{g}");
        const char *wv;
        size_t wl;
        bool watched = md_hash_cache_watched(e, &wv, &wl);
        cr_assert_eq(watched, vals[0][0] != '\0', "step %d: the watched field", step);
        if (watched) cr_assert(wl == strlen(vals[0]) && memcmp(wv, vals[0], wl) == 0, "step %d: the watched field's value", step);
    }
    for (int i = 0; i < OTHERS; i++) {
        size_t got = 0;
        snprintf(k, sizeof(k), "md:{o%d}", i);
        cr_assert(md_hash_cache_each(c, k, count_fields, &got) && got == 3, "%s lost", k);
    }
    md_ops_fini(&ops);
    md_hash_cache_destroy(c);
}

/* An entry put held (a customer just read from Redis, decoded at its first
 * input): no hit counted, whole and never evicted until released, then
 * evicted like any other; one too large for the budget is not kept. */
Test(hash_cache, an_entry_put_held_stays_until_released_and_counts_no_hit) {
    md_hash_cache *c = md_hash_cache_new(2000, key);
    const md_hash_field f[] = {{"v", "4", 1, 1}, {"x0", "1", 2, 1}, {"n", "10", 1, 2}};
    cr_assert_null(md_hash_cache_hold(c, "md:{r0}"), "not there yet: a miss");
    const md_hash_cache_entry *h = md_hash_cache_put_held(c, "md:{r0}", f, 3);
    cr_assert(h);
    cr_assert_eq(md_hash_cache_stats_get(c).hits, 0, "putting it held is no hit");
    cr_assert_eq(md_hash_cache_stats_get(c).misses, 1);
    cr_assert_eq(md_hash_cache_stats_get(c).entries, 1);
    put_many(c, "o", 200);
    size_t got = 0;
    md_hash_cache_entry_each(h, count_fields, &got);
    cr_assert_eq(got, 3, "the held entry is whole after 200 others went through the budget");
    cr_assert_lt(md_hash_cache_stats_get(c).bytes, 2000 + 400, "the others are evicted as before: %zu bytes",
                 md_hash_cache_stats_get(c).bytes);
    md_hash_cache_release(c);
    image im;
    cr_assert_str_eq(entry_of(c, "md:{r0}", &im), "n=10;v=4;x0=1;", "released, it is found as put");
    put_many(c, "p", 200);
    cr_assert_null(md_hash_cache_hold(c, "md:{r0}"), "released, newer entries evict it");
    /* Over a tenth of the budget: not kept, and no entry left under its key. */
    static char big[400];
    memset(big, 'b', sizeof(big) - 1);
    const md_hash_field large[] = {{"v", "5", 1, 1}, {"big", big, 3, sizeof(big) - 1}};
    put3(c, "md:{r1}");
    cr_assert_null(md_hash_cache_put_held(c, "md:{r1}", large, 2));
    cr_assert_null(md_hash_cache_hold(c, "md:{r1}"), "the older entry of the key went too");
    md_hash_cache_destroy(c);
}
