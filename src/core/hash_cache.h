/* hash_cache.h: what momentd last read or wrote of its customers' Redis
 * hashes, kept in memory so that the next batch of a customer needs no
 * HGETALL (the read was a fifth of Redis's CPU per event and half of
 * momentd's, BENCHMARKS.md).
 *
 * An entry is a hash's fields and values as Redis holds them after
 * momentd's last apply (from when the apply is sent: until its reply, as
 * Redis will hold them), with the version ("v") that apply wrote. It may be
 * stale: another writer (a second consumer, momentd forget or dnc, the key's
 * expiry) changes Redis, not this. That is safe because every writer bumps
 * "v" and every apply is conditional on the version its decision read: a
 * decision on a stale entry is refused at the apply, the entry dropped, and
 * the batch read from Redis and decided again (store.c, batch.c).
 *
 * Bounded by a byte budget, least recently used out first. Not thread-safe:
 * one per store. Pure: the caller draws the hashing key. */
#ifndef MOMENTD_HASH_CACHE_H
#define MOMENTD_HASH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/engine.h"

typedef struct md_hash_cache md_hash_cache;

/* budget: bytes of entries (keys, fields, values and their bookkeeping)
 * kept at most; sip_key: a secret, random SipHash key for the table (keys
 * are customer ids, which whoever produces input chooses). NULL when out of
 * memory. */
md_hash_cache *md_hash_cache_new(size_t budget, const uint64_t sip_key[2]);
void md_hash_cache_destroy(md_hash_cache *c);

/* fn(ctx, field, flen, value, vlen) for each field of key's entry, in the
 * order stored; true when there was one (it becomes the most recent). */
typedef void (*md_hash_cache_field_fn)(void *ctx, const char *field, size_t flen, const char *value, size_t vlen);
bool md_hash_cache_each(md_hash_cache *c, const char *key, md_hash_cache_field_fn fn, void *ctx);

/* One field and its value (not terminated: lengths say where they end). */
typedef struct md_hash_field {
    const char *f, *v;
    size_t fl, vl;
} md_hash_field;

/* Replaces key's entry with n fields (what HGETALL returned); they may
 * point into the entry being replaced. An entry larger than a tenth of the
 * budget is not kept. */
void md_hash_cache_put(md_hash_cache *c, const char *key, const md_hash_field *fields, size_t n);

/* key's entry as Redis holds it once it has applied ops and set "v" to
 * version (what apply.lua does); the store gives it each apply as the apply
 * is sent, and drops the entry when Redis refuses the apply or its reply is
 * lost (store.c, apply_ahead). Sets, deletes and increments are made on the
 * entry; an outbox write (not part of the hash) or no entry leaves none. expires_at:
 * when that apply's PEXPIRE made the key expire, on the caller's clock
 * (ms); 0 when the apply left the expiry alone (the entry keeps what it
 * knew); -1 when it is not known (a PERSIST, say). */
void md_hash_cache_applied(md_hash_cache *c, const char *key, const md_ops *ops, int64_t version, int64_t expires_at);
/* When key expires, as the applies since its entry was read said (on their
 * caller's clock); 0 when that is not known or there is no entry. Lets the
 * store leave a fresh expiry alone instead of setting it on every apply. */
int64_t md_hash_cache_expires_at(const md_hash_cache *c, const char *key);
/* How far a key's known expiry may fall behind "ttl after the last apply"
 * before an apply sets it again: a day, or a sixteenth of the TTL when
 * that is shorter. A PEXPIRE on every apply was a fifth of the calls Redis
 * made per event (BENCHMARKS.md); a customer's state then lives at least
 * its TTL less this after its last event. */
#define MD_EXPIRY_SLACK_MS (24LL * 3600 * 1000)
/* What an apply at now (the caller's clock, ms) sets its key's expiry to:
 * now + ttl_ms, or 0 to leave it as it is, when the expiry an earlier
 * apply set (known, md_hash_cache_expires_at; 0: none) is within
 * MD_EXPIRY_SLACK_MS of that. */
int64_t md_expiry_to_set(int64_t known, int64_t now, int64_t ttl_ms);
void md_hash_cache_drop(md_hash_cache *c, const char *key);

/* Holding entries: a batch looks its customers up at once, then decodes
 * each when it first decides it, while Redis applies the customers before
 * it (the read took a quarter of momentd's time, with Redis idle). An
 * entry held is never evicted, even beyond the budget, until
 * md_hash_cache_release; it still goes when dropped, replaced or applied
 * (the holder decodes a customer before writing it). */
typedef struct md_hash_cache_entry md_hash_cache_entry;
/* Records, with each entry, where the field named so is (one field, say
 * the profile's contact point, needed before the entries are decoded):
 * for entries put after this call. */
void md_hash_cache_watch(md_hash_cache *c, const char *name);
/* key's entry, made the most recent, counted as a hit (NULL and a miss
 * when none): valid until the next change to the cache. */
const md_hash_cache_entry *md_hash_cache_get(md_hash_cache *c, const char *key);
/* The same, held. */
const md_hash_cache_entry *md_hash_cache_hold(md_hash_cache *c, const char *key);
/* Puts key's entry as md_hash_cache_put does, and holds it without counting
 * a hit (the caller read it from Redis, after a miss); NULL when it is too
 * large to keep (over a tenth of the budget). */
const md_hash_cache_entry *md_hash_cache_put_held(md_hash_cache *c, const char *key, const md_hash_field *fields, size_t n);
/* held[i] = md_hash_cache_hold(c, keys[i]) for each of n keys, in order,
 * with each key's table slot, entry and recency neighbours asked into the
 * processor's cache a few keys ahead: a batch's entries were last touched a
 * batch ago, and holding them one by one waited on memory for each
 * (BENCHMARKS.md). */
void md_hash_cache_hold_many(md_hash_cache *c, size_t n, const char *const *keys, const md_hash_cache_entry **held);
/* e's key's expiry, as md_hash_cache_expires_at. */
int64_t md_hash_cache_entry_expires_at(const md_hash_cache_entry *e);
/* The watched field's value in e (not terminated by vlen's count but by a
 * NUL, as every value); false when e has none. */
bool md_hash_cache_watched(const md_hash_cache_entry *e, const char **value, size_t *vlen);
/* Before decoding customer c of a batch's n, whose held entries (NULL: not
 * held) are decoded into states in order: asks the processor to bring the
 * next two held customers' memory into its cache, the entry and the state
 * struct two ahead, the state's members one ahead (its struct asked for at
 * the decode before; asking for both at once would wait for the struct).
 * A batch's entries and states were last touched a batch ago, and decoding
 * them waited on memory (BENCHMARKS.md). states NULL: the entries only (the
 * states are taken from a stack of recently used ones, src/io/batch.c). */
void md_hash_cache_prefetch_decodes(const md_hash_cache_entry *const *held, md_cstate *const *states, size_t n, size_t c);
/* fn for each field of e, as md_hash_cache_each. */
void md_hash_cache_entry_each(const md_hash_cache_entry *e, md_hash_cache_field_fn fn, void *ctx);
/* Lets go of every entry held (and evicts down to the budget). */
void md_hash_cache_release(md_hash_cache *c);
void md_hash_cache_clear(md_hash_cache *c);

typedef struct md_hash_cache_stats {
    uint64_t hits, misses; /* md_hash_cache_each found an entry, or did not */
    size_t entries, bytes;
} md_hash_cache_stats;
md_hash_cache_stats md_hash_cache_stats_get(const md_hash_cache *c);

#endif
