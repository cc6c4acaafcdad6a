/* store.h (private): momentd's Redis edge.
 *
 * Thin on purpose: it turns engine state into Redis commands and replies back
 * into state. Every call is pipelined over the batch (one round trip for all
 * reads, one for all writes). Failures are classified: MD_ERR_REDIS_DOWN is
 * retriable (the caller waits retry_backoff and redoes the whole batch, which
 * the watermarks make safe), and so are error replies every key would get
 * now and none later (OOM, LOADING, BUSY, READONLY, MASTERDOWN, TRYAGAIN,
 * NOSCRIPT, CLUSTERDOWN, MISCONF); MD_ERR_REDIS_REFUSED is an error reply
 * that belongs to one key (WRONGTYPE, CROSSSLOT, a script's own error):
 * the per-customer calls say which key in a md_store_refusal array and read
 * or apply the others; MD_ERR_REDIS_REPLY is a bug or a foreign write. */
#ifndef MOMENTD_STORE_H
#define MOMENTD_STORE_H

#include "momentd/config.h"
#include "momentd/engine.h"

#include "hash_cache.h"

typedef struct md_store md_store;

/* Why Redis refused one key's command ("redis HGETALL <key>: WRONGTYPE ..."),
 * or "" for a key that went through. */
#define MD_STORE_REFUSAL_MAX 200
typedef char md_store_refusal[MD_STORE_REFUSAL_MAX];

/* Validates cfg->url; does not connect. NULL with errstr on a bad URL. The
 * handle copies what it needs from cfg. */
md_store *md_store_new(const md_cfg_redis *cfg, char *errstr, size_t errstr_size);
void md_store_destroy(md_store *s); /* accepts NULL */

/* Connects if not connected: AUTH, SELECT, SCRIPT LOAD. MD_ERR_REDIS_DOWN
 * (retriable) with a reason in errstr on failure. */
md_err md_store_connect(md_store *s, char *errstr, size_t errstr_size);
bool md_store_connected(const md_store *s);
/* channels[].capacity's counter of one limit (per_ms) for one slot: keys
 * of one channel share a hash tag (one node of a cluster). */
void md_store_capacity_key(const md_store *s, const char *channel, int64_t per_ms, int64_t slot, char *out, size_t n);
/* Gives give_back to the n counters (not below 0; expired ones stay
 * gone), then reserves up to want from all of them: *granted is what every
 * limit (max[i]) allowed, taken from each; *tightest the index of the limit
 * with the least left. Each counter lives ttl_ms more. */
md_err md_store_capacity(md_store *s, size_t n, const char *const *keys, const int64_t *max, const int64_t *ttl_ms, int64_t give_back,
                         int64_t want, int64_t *granted, size_t *tightest, char *errstr, size_t errstr_size);
/* Commands a cluster redirected (MOVED, ASK) and sent again, since s was made. */
uint64_t md_store_redirects(const md_store *s);
/* Drops the connection (after an error, so the next call reconnects). */
void md_store_disconnect(md_store *s);

/* Connects if needed and sends PING: MD_ERR_OK when Redis answers. For
 * readiness while no batch is flowing. */
md_err md_store_ping(md_store *s, char *errstr, size_t errstr_size);

/* Redis's used_memory and maxmemory (0: no limit), from INFO memory; -1
 * for a field Redis did not report. For /metrics and /readyz: under
 * noeviction a full Redis refuses every write and consumption stops. */
md_err md_store_memory(md_store *s, int64_t *used, int64_t *max, char *errstr, size_t errstr_size);

/* "<prefix>:{<customer_id>}" and "<prefix>:{cp:<contact point>}". */
void md_store_customer_key(const md_store *s, const char *customer_id, char *out, size_t n);
void md_store_contact_point_key(const md_store *s, const char *contact_point, char *out, size_t n);

/* Pipelined HGETALL of n customers into states[i] (reset first). A key
 * Redis refuses (its hash or outbox is not a hash: WRONGTYPE) leaves that
 * state empty: with refused (n entries) the others are read and the call
 * returns MD_ERR_REDIS_REFUSED with refused[i] saying why ("" for the
 * others); without, it fails. Contact points alike. */
md_err md_store_read_customers(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states,
                               md_store_refusal *refused, bool *cached, char *errstr, size_t errstr_size);
/* The same, but a customer the state cache holds is only held there
 * (held[i]; cached[i] true), not decoded: states[i] is left as it was, and
 * must not be read until md_store_load_entry. A batch decodes each customer
 * when it first decides it, while Redis applies the customers before: the
 * decoding, a quarter of momentd's time, no longer leaves Redis idle. The
 * entries are held (never evicted) until the next call. Customers the
 * cache does not hold are read into states[i] as above (held[i] NULL). */
md_err md_store_read_customers_held(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states,
                                    const md_hash_cache_entry **held, md_store_refusal *refused, bool *cached, char *errstr,
                                    size_t errstr_size);
/* Decodes a cache entry (a held customer's, say) into cs (reset first).
 * False when the entry does not say that the customer's outbox is empty (an
 * entry is never kept otherwise; its outbox was not read): the caller drops
 * it (md_store_cache_drop) and reads the customer from Redis. */
bool md_store_load_entry(const md_hash_cache_entry *entry, const char *customer_id, md_cstate *cs);
/* A held customer's contact point (md_cstate_contact_point, before the
 * decoding) into out; false when its profile names none. */
bool md_store_held_contact_point(const md_hash_cache_entry *held, char *out, size_t n);
void md_store_cache_drop(md_store *s, const char *customer_id);

/* Keeps up to bytes of the customers' hashes in memory (hash_cache.h) as
 * they were read and as the applies left them, so that md_store_read_customers
 * reads from Redis only the customers it does not hold (cached[i], when
 * given, says which came from memory). Only for a store whose applies are
 * the batch's, conditional on the version read: a decision on a stale entry
 * is then refused at its apply (0), the entry dropped, and the caller reads
 * again. 0 turns it off. False when out of memory. */
bool md_store_cache_states(md_store *s, size_t bytes);
md_hash_cache_stats md_store_cache_stats_get(const md_store *s); /* all 0 without a cache */
/* fn for each field the cache holds for customer_id; false when it holds
 * none (for checks that it matches Redis). */
bool md_store_cache_each(md_store *s, const char *customer_id, md_hash_cache_field_fn fn, void *ctx);
md_err md_store_read_contact_points(md_store *s, size_t n, const char *const *contact_points, md_cpstate *const *cps,
                                    md_store_refusal *refused, char *errstr, size_t errstr_size);

/* The smallest hash-max-listpack-value of the nodes: the longest field name
 * or value a hash may hold and keep Redis's compact encoding. A customer's
 * hash with one longer field (a trigger record with long campaign, channel
 * and model version names, say) is converted for good to a hash table that
 * costs about three times the memory. MD_ERR_REDIS_REFUSED when CONFIG is
 * not allowed (a managed Redis), which a caller may ignore. */
#define MD_LISTPACK_VALUE_MIN 128
md_err md_store_listpack_value(md_store *s, int64_t *bytes, char *errstr, size_t errstr_size);

typedef struct md_apply_req {
    char key[400];
    const md_ops *ops;
    int64_t expect_version; /* the "v" read before deciding; -1 = no check */
    int64_t ttl_ms;
    bool outbox_empty;      /* the outbox hash is known to be empty (so absent) and
                             * stays so: the apply leaves it alone */
    int64_t known_expiry;   /* when the key expires as the state cache knew it at the
                             * read (md_cstate_key_expiry); 0: not known, the apply
                             * sets it */
} md_apply_req;

/* Pipelined EVALSHA apply.lua for every request; results[i] = 1 applied, 0
 * version conflict, -1 refused (both: nothing written for that request).
 * Refusals as for the reads: with refused (n entries) the call returns
 * MD_ERR_REDIS_REFUSED and says which; without, it fails. */
md_err md_store_apply(md_store *s, size_t n, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                      size_t errstr_size);

/* md_store_apply in two halves, so that Redis applies one part of a batch
 * while the caller decides the next: _send writes the n requests to the
 * connection without reading a reply; _collect reads the replies of every
 * request sent since the last collect (total, in order) into results. reqs
 * must stay valid until _collect. After an error from either, the
 * connection is closed and whatever was sent may or may not have been
 * applied: the caller redoes the batch (applies are idempotent per offset
 * and conditional on the version). */
md_err md_store_apply_send(md_store *s, size_t n, const md_apply_req *reqs, char *errstr, size_t errstr_size);
md_err md_store_apply_collect(md_store *s, size_t total, const md_apply_req *reqs, int *results, md_store_refusal *refused, char *errstr,
                              size_t errstr_size);
/* Takes the replies already there, without waiting (one plain connection;
 * a cluster's or a TLS connection's are left to _collect): results and
 * the state cache for those applies now, while Redis works on the rest,
 * instead of all of them after the last (a tenth of a batch's time). A
 * reply that is not a result, and any error, are left to _collect. */
void md_store_apply_poll(md_store *s, const md_apply_req *reqs, int *results, md_store_refusal *refused);
/* How many of the requests sent since the last _collect were answered and
 * settled by md_store_apply_poll: the first that many, whose ops the store
 * reads no more. */
size_t md_store_apply_taken(const md_store *s);

/* Adds n pending funnel increments: HINCRBY "<prefix>:funnel:<campaign>:<day>"
 * field delta, each key kept 400 days. One round trip. */
md_err md_store_funnel_add(md_store *s, size_t n, const char *const *campaigns, const char *const *days,
                           const char *const *fields, const int64_t *deltas, char *errstr, size_t errstr_size);

/* "<prefix>:funnel:<campaign>:<day>". */
void md_store_funnel_key(const md_store *s, const char *campaign, const char *day, char *out, size_t n);

/* The schedule's due set, "<prefix>:due": a sorted set of customer ids by
 * due time (ms), mirroring each customer's "d" field. md_store_due_sync
 * writes the n customers' due times (0 removes them); md_store_due_take
 * calls fn for at most max customers due by until_ms, earliest first (they
 * stay in the set until a decision re-schedules or clears them). */
md_err md_store_due_sync(md_store *s, size_t n, const char *const *customer_ids, const int64_t *due, char *errstr, size_t errstr_size);
md_err md_store_due_take(md_store *s, int64_t until_ms, size_t max, void (*fn)(void *ctx, const char *customer_id, size_t len),
                         void *ctx, char *errstr, size_t errstr_size);

/* Deletes every outbox entry (pending triggers and funnel increments) of the
 * n customers, as read into states[i]: once Kafka acknowledged the triggers
 * and the funnel took the increments. One round trip; OK when there are none. */
md_err md_store_forget_outbox(md_store *s, size_t n, const char *const *customer_ids, md_cstate *const *states, char *errstr,
                              size_t errstr_size);

/* Erases a customer (momentd forget): state, profile, contact log, trigger
 * and decision records and outbox in one script (forget.lua), leaving a
 * tombstone "fg" = now_ms kept tombstone_ms (an opted-out customer keeps the
 * opt-out flag, for good); then its contacts on its contact point's key and
 * its place in the schedule. What was there is reported in out. */
typedef struct md_forget_result {
    int64_t fields;                /* fields of the customer's hash before (0: no state) */
    int64_t outbox;                /* outbox entries */
    int64_t contact_point_records; /* its contacts on the contact point's key */
    bool was_scheduled;
    bool kept_opt_out;
    char contact_point[300];
} md_forget_result;
md_err md_store_forget_customer(md_store *s, const char *customer_id, int64_t now_ms, int64_t tombstone_ms, md_forget_result *out,
                                char *errstr, size_t errstr_size);

/* Run-time control shared by every instance, the hash "<prefix>:control":
 * field "paused:<campaign>" = when an operator paused it (momentd pause).
 * md_store_paused reads it as a mask over cfg's campaigns (bit c), with the
 * pause times in since_ms[c] (0: not paused; NULL: not wanted). */
md_err md_store_paused(md_store *s, const struct md_config *cfg, uint32_t *mask, int64_t *since_ms, char *errstr, size_t errstr_size);
md_err md_store_set_paused(md_store *s, const char *campaign, bool paused, int64_t now_ms, char *errstr, size_t errstr_size);

/* The deployment's secret key of the event-id guard (cfg->dedupe.id_key):
 * field "dedupe_key" of "<prefix>:meta", 32 hex digits, drawn from the
 * kernel's random source by the first process on the namespace and read by
 * every other. MD_ERR_REDIS_REPLY when the field holds something else. */
md_err md_store_dedupe_key(md_store *s, uint64_t key[2], char *errstr, size_t errstr_size);

/* Do-not-contact and campaign-list entries (momentd dnc, momentd list;
 * mark.lua): for each of the n customers or contact points, adds field =
 * value ("dn:<channel>" = when listed, kept if listed already;
 * "ls:<campaign>" = "include" | "exclude") or removes it (a "dn:" entry
 * whatever its value, an "ls:" one only if it is value). An entry keeps its
 * hash for good; a hash left without one gets ttl_ms back. A customer's
 * version is bumped, so that a batch that read it before decides again.
 * *changed counts the ids that changed; on an error the ids of the slices
 * before (1,000 each) are done. */
md_err md_store_mark(md_store *s, md_id_kind kind, size_t n, const char *const *ids, bool add, const char *field,
                     const char *value, int64_t ttl_ms, size_t *changed, char *errstr, size_t errstr_size);

/* Pipelined HDEL key field, for n pairs (outbox entries Kafka acknowledged). */
md_err md_store_hdel(md_store *s, size_t n, const char *const *keys, const char *const *fields, char *errstr,
                     size_t errstr_size);

/* Pipelined HGETALL of n keys (one round trip); calls fn for every field of
 * key i. Field and value are binary-safe and valid only during the call. */
typedef void (*md_store_field_fn)(void *ctx, size_t i, const char *field, size_t flen, const char *value, size_t vlen);
md_err md_store_hgetall_each(md_store *s, size_t n, const char *const *keys, md_store_field_fn fn, void *ctx, char *errstr,
                             size_t errstr_size);

/* Runs one command and returns its reply (the caller frees it with
 * freeReplyObject), for tools such as explain. NULL on failure. */
void *md_store_command_argv(md_store *s, int argc, const char **argv, const size_t *argvlen);

/* Visits every customer hash under the store's prefix (SCAN, then
 * pipelined HGETALL per page of keys): fn gets the customer id and each
 * field, valid only during the call. Contact-point keys, outboxes and the
 * shared keys are skipped. For whole-namespace tools (momentd fit). */
typedef void (*md_store_customer_field_fn)(void *ctx, const char *customer_id, const char *field, size_t flen, const char *value,
                                           size_t vlen);
md_err md_store_scan_customers(md_store *s, md_store_customer_field_fn fn, void *ctx, char *errstr, size_t errstr_size);

/* Deletes every key under the store's prefix (SCAN + UNLINK): the private
 * namespace of a simulation or a backtest, before and after its run. */
md_err md_store_wipe(md_store *s, char *errstr, size_t errstr_size);

#endif
