/* cstate.c: a customer's state in memory, loaded from its Redis hash, and the
 * list of hash operations that bring Redis to the same state.
 *
 * Every mutation goes through a helper that changes the struct and records the
 * matching operation, so the in-memory state (which later events of the same
 * batch read) and what the apply script writes cannot disagree. This file
 * is the one owner of the Redis layout: no other file names a field.
 *
 * Redis layout: one hash per customer, key "<prefix>:{<customer_id>}", so a
 * Redis Cluster hash tag keeps everything one apply script touches in one slot.
 * Fields:
 *   v                       version: +1 on every apply; the apply script
 *                           writes only if it is still the version read
 *   H, H<k>                 the series, packed: "<code><buckets>" per series (as S<code> below),
 *                           joined by ';', at most 64 bytes a piece (see "The packed series")
 *   S<code>                 a series too long for a piece, or one an earlier version wrote
 *                           (packed along the next write): one bucket series, in base 36: the oldest
 *                           non-empty bucket's number, then ",<gap>" for each
 *                           next, each with ":<value>" unless it is 1. One field
 *                           per series keeps what a batch reads bounded by the
 *                           configuration, not by history; <code> is four base-36
 *                           digits of FNV-1a("signal|granularity ms|sum") modulo
 *                           36^4 (md_series_field), so an edited configuration
 *                           keeps reading the series it still has. Older names,
 *                           read while the current one is absent and renamed by
 *                           the next flush: "S<hash>", the whole hash in base 36,
 *                           and "s<hash>", decimal with every value written
 *   T                       "[.]<payment>,<call>,<app_login>[,<balance>[,<its time>]]": '.' when
 *                           the outbox was left empty by the last apply (reads skip it); the time of
 *                           the newest event of each type in base 36 ms, empty for none, then the
 *                           newest balance_after, its time (base 36 ms) written only when it is
 *                           not the newest payment's (flush_times). The older forms, one field
 *                           "t<type>" a type in decimal and "bal" = "<balance>[,<time ms>]", are
 *                           read and moved into T (T's balance over bal's)
 *   n                       time of the customer's newest event: no longer written (the
 *                           largest time in T is the same), still read in older states
 *   x0                      the outbox was empty at the last apply (reads skip it): written by
 *                           earlier versions, now T's leading '.'; read, and moved into T
 *                           along the next write
 *   W, W<k>                 highest applied Kafka offset of each topic partition (redelivery
 *                           guard), packed: "<topic code><partition>:<offset>" (base 36; the
 *                           topic by its namespace's short code, or its long one, md_state_code) joined by ';', at most 64
 *                           bytes a piece (wmark_flush); "W<code><partition>" = <offset> (a field
 *                           of its own, before the pieces) and "w:<topic>:<partition>" (older)
 *                           are read and deleted by the next write
 *   G, G<k>                 the recently seen event ids (re-publication guard), packed
 *                           MD_SEEN_PER_PIECE to a field ("piece" k, in base 36, none for 0):
 *                           "<base>" then per id "<hash><hours>", <base> an hour in base 36
 *                           (its length is the value's length modulo 12), <hash> ten base-36
 *                           digits of its SipHash under the deployment's key modulo 36^10,
 *                           <hours> two base-36 digits, its event time in hours rounded up
 *                           less <base>. At most 64 bytes a piece, so that a customer's hash
 *                           stays in Redis's compact listpack encoding (one field of every id
 *                           passed that limit and tripled memory), and at most MD_SEEN_MAX ids
 *                           within the horizon, so that it stays bounded. A piece is rewritten
 *                           whole when one of its ids is added or ages out (guard_flush): no
 *                           delete per aged id. The forms of earlier versions, one field per
 *                           id, are honoured until they age out and deleted under their own
 *                           names: "J<hash>" = hours, "j<whole hash>" = seconds,
 *                           "i<16 hex>" = ms and "e<16 hex>" (the unkeyed hash) = ms
 *   P, P<k>                 the profile's attributes the rules read, packed under their
 *                           namespace's short codes, or their long ones (md_profile_code):
 *                           "<code><value>" joined by 0x1f, at most 64 bytes a piece (see
 *                           "The packed profile" below)
 *                           In H, W and P a name is its long code (base-36 digits) or the
 *                           short code its namespace gave it (capitals: "The namespace's
 *                           short codes" below, md_codes); each form is read, the short one
 *                           written where the state has it
 *   p:<attribute>           a profile attribute no rule reads, contact_point, or one that
 *                           cannot be packed; every attribute in states before 2026-12-06
 *   A<campaign code>        "0" while the campaign is disarmed (hysteresis)
 *   F<campaign code>        fatigue, "<thousandths>,<time ms it was set>" (it decays from then;
 *                           older states wrote a plain count, read as that many units, undecayed)
 *   L<campaign code>        time of the campaign's last contact
 *   B<campaign code>        the contact before it (restored when the last is released)
 *   C<campaign code>        time of the campaign's last conversion (skip_after_conversion)
 *   Z<campaign code>        event time of its last decision to contact that was stale (not emitted; explain)
 *   K<campaign code><time>  contact log entry, the time in base 36 ms, value = channel (caps)
 *                           (these seven by the campaign's name in states before 2026-12-06:
 *                           "a:", "f:", "l:", "lp:", "c:", "z:<campaign>", "k:<time>:<campaign>";
 *                           read, and renamed along the next other write: camp_field_of)
 *   cb / bo / oo            complaint block until, blackout until, opted out
 *   dn:<channel>            on that channel's do-not-contact list since this time ("dn:*": every
 *                           channel; momentd dnc, mark.lua); a contact point's hash has them too
 *   ls:<campaign>           "include" or "exclude": on that campaign's list (momentd list)
 *   pn                      how many dn:/ls: entries the hash holds: while there, it never expires
 *   R<code><from>           decision audit (the campaign by its short code): "<outcome code>,<last - from>,<p thousandths>", a run
 *                           of the campaign's decisions from <from> that all ended the same way
 *                           (fired, holdout or the rule that blocked); <last> is the first decision
 *                           of the last day the run was seen (one write a day), p that decision's;
 *                           times in ms, <from> and <last - from> in base 36, the outcome as its
 *                           code of one or two letters (audit_codes): the audit was a quarter of
 *                           a customer's memory written out. Kept audit.keep, at most
 *                           audit.max_per_campaign. "R:<campaign>:<from>" (by name) and
 *                           "r:<campaign>:<from>" = "<outcome name>,<last>,<p>" in decimal: the
 *                           older forms, still read
 *   fg                      erased (momentd forget, forget.lua) at this time: the tombstone;
 *                           events up to it are ignored, and profiles until an event after it
 *   d                       when the schedule re-evaluates the customer (its member in the
 *                           "<prefix>:due" sorted set has the same score; store.c syncs it)
 *   g:<trigger id>          trigger record, "<fired ms>,<holdout 0/1>,<bits>,<channel>,<campaign>
 *                           [,<p thousandths>,<model version>[,<gap days>]]" (p and version for a
 *                           model's decision, not a follow-up; then the whole days since the
 *                           campaign's previous contact, -1 for none, for the timing table;
 *                           older records lack them);
 *                           bits: outcome statuses received (1 << status),
 *                           MD_REC_CONVERTED for a conversion observed in the
 *                           event stream, MD_REC_MODEL_CONVERTED when it was
 *                           counted for model quality. Kept for outcomes.horizon
 *                           (and the longest attribution window).
 *   Q<code><time>           decision record for momentd fit (the campaign by its short code, the
 *                           time in base 36 ms; "q:<campaign>:<time>" in decimal, the older form, is
 *                           read, rewritten when the record changes or deleted when it ages out),
 *                           "<kind><converted 0/1>,<schema hex>,<values>":
 *                           kind t contacted, h holdout, n sampled not contacted, u released;
 *                           values as md_decision says. Kept for learning.keep, at most
 *                           learning.max_per_campaign per campaign (at the bound a new record of no
 *                           contact, n or u, is not kept; a contact's takes the place of the oldest
 *                           of them: drec_room); those of a campaign no longer configured expire
 *                           with the key
 * and the outbox, in its own hash "<key>:x" (same slot):
 *   <trigger id>            "<topic>\n<payload>" until Kafka acknowledged it
 *   +<trigger id>:<stage>   a funnel increment, "<campaign>\t<day>\t<field>\t<delta>"
 *                           (also "+<id>:arm.<stage>" for a policy arm, "+<id>:gap.<stage>" for
 *                           the timing table, field "gap.<bucket>:<stage>", and "+<id>:q.<stage>"
 *                           for model quality, field "q.<treated|holdout>.<p in thousandths>.<version>:<stage>"),
 *                           until it was added to the campaign's funnel key;
 *                           the name is deterministic, so a re-decided batch
 *                           writes the same entry, never a second one
 *
 * Why 1,100 lines in one file: the loader and the writers of every field
 * stay side by side, so a field's name and format change in one place. */
#include "cstate_internal.h"
#include "momentd/jsonw.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

/* ------------------------------------------------------------------------- */
/* md_ops                                                                     */

void md_ops_init(md_ops *o) { memset(o, 0, sizeof(*o)); }

void md_ops_fini(md_ops *o) {
    free(o->ops);
    free(o->arena);
    free(o->scratch);
    memset(o, 0, sizeof(*o));
}

void md_ops_clear(md_ops *o) {
    o->n = 0;
    o->used = 0;
    o->oom = false;
}

static size_t arena_put(md_ops *o, const char *s, uint32_t *slen) {
    size_t len = strlen(s) + 1;
    *slen = (uint32_t)(len - 1);
    if (o->used + len > o->arena_cap) {
        size_t cap = o->arena_cap ? o->arena_cap : 1024;
        while (cap < o->used + len) cap *= 2;
        char *na = realloc(o->arena, cap);
        if (!na) {
            o->oom = true;
            return 0;
        }
        o->arena = na;
        o->arena_cap = cap;
    }
    memcpy(o->arena + o->used, s, len);
    size_t at = o->used;
    o->used += len;
    return at;
}

void md_ops_add(md_ops *o, char kind, const char *field, const char *value) {
    if (!o || o->oom) return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        md_op *no = realloc(o->ops, cap * sizeof(md_op));
        if (!no) {
            o->oom = true;
            return;
        }
        o->ops = no;
        o->cap = cap;
    }
    uint32_t fl, vl;
    size_t f = arena_put(o, field, &fl);
    size_t v = arena_put(o, value ? value : "", &vl);
    if (o->oom) return;
    o->ops[o->n].field_len = fl;
    o->ops[o->n].value_len = vl;
    o->ops[o->n].kind = kind;
    o->ops[o->n].field = f;
    o->ops[o->n].value = v;
    o->n++;
}

const char *md_ops_field(const md_ops *o, size_t i) { return o->arena + o->ops[i].field; }
const char *md_ops_value(const md_ops *o, size_t i) { return o->arena + o->ops[i].value; }

typedef struct op_ref {
    const char *field;
    uint64_t head; /* the field's first 8 bytes, big-endian, zero-padded: compares as strcmp does them */
    size_t seq;    /* position in the list: order within one field */
    bool outbox;   /* the outbox hash's field space, not the customer's */
    bool long_field; /* 8 bytes or more: the rest decides when the heads are equal */
} op_ref;

static op_ref op_ref_of(const md_ops *o, size_t i) {
    op_ref r = {o->arena + o->ops[i].field, 0, i, o->ops[i].kind == MD_OP_OUTBOX_SET, o->ops[i].field_len >= 8};
    size_t n = o->ops[i].field_len < 8 ? o->ops[i].field_len : 8;
    for (size_t k = 0; k < 8; k++) r.head = r.head << 8 | (k < n ? (unsigned char)r.field[k] : 0);
    return r;
}

/* strcmp's order of the fields (equal heads with one under 8 bytes are
 * equal fields: the zero padding is where the shorter one ends), then the
 * list's: the sort took a third of md_ops_compact's time in strcmp. */
static int op_ref_cmp(const void *a, const void *b) {
    const op_ref *x = a, *y = b;
    if (x->outbox != y->outbox) return x->outbox ? 1 : -1;
    if (x->head != y->head) return x->head < y->head ? -1 : 1;
    int c = x->long_field ? strcmp(x->field + 8, y->field + 8) : 0;
    if (c) return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool op_ref_same_field(const op_ref *x, const op_ref *y) {
    return x->outbox == y->outbox && x->head == y->head && (!x->long_field || strcmp(x->field + 8, y->field + 8) == 0);
}

void md_ops_compact(md_ops *o) {
    if (!o || o->oom || o->n < 2) return;
    size_t n = o->n, n_last = 0, n_incr = 0;
    /* One block, kept in o across calls (every customer of every batch
     * comes here): the refs, the rewritten list, and the kept positions
     * (fields' last ops; incremented fields' ops from n on). */
    size_t need = n * (sizeof(op_ref) + sizeof(md_op) + 2 * sizeof(size_t));
    if (need > o->scratch_cap) {
        void *grown = realloc(o->scratch, need);
        if (!grown) return;
        o->scratch = grown;
        o->scratch_cap = need;
    }
    op_ref *refs = o->scratch;
    md_op *out = (md_op *)(refs + n);
    size_t *keep = (size_t *)(out + n);
    for (size_t i = 0; i < n; i++) refs[i] = op_ref_of(o, i);
    /* A customer's batch is a few to a few dozen ops: an insertion sort
     * there, where qsort's merge sort and its calls cost 3% of momentd. */
    if (n > 32) {
        qsort(refs, n, sizeof(*refs), op_ref_cmp);
    } else {
        for (size_t i = 1; i < n; i++) {
            op_ref x = refs[i];
            size_t j = i;
            for (; j > 0 && op_ref_cmp(&refs[j - 1], &x) > 0; j--) refs[j] = refs[j - 1];
            refs[j] = x;
        }
    }
    for (size_t i = 0, j; i < n; i = j) { /* refs[i..j): one field's ops, in order */
        bool incremented = false;
        for (j = i; j < n && op_ref_same_field(&refs[j], &refs[i]); j++)
            incremented |= o->ops[refs[j].seq].kind == MD_OP_INCR;
        if (incremented)
            for (size_t k = i; k < j; k++) keep[n + n_incr++] = refs[k].seq;
        else
            keep[n_last++] = refs[j - 1].seq;
    }
    size_t m = 0;
    static const char order[] = {MD_OP_DEL, MD_OP_SET, MD_OP_OUTBOX_SET};
    for (size_t r = 0; r < sizeof(order); r++)
        for (size_t k = 0; k < n_last; k++)
            if (o->ops[keep[k]].kind == order[r]) out[m++] = o->ops[keep[k]];
    for (size_t k = 0; k < n_incr; k++) out[m++] = o->ops[keep[n + k]];
    memcpy(o->ops, out, m * sizeof(*out));
    o->n = m;
}

size_t md_fmt_i64(char *out, int64_t v) {
    char tmp[20];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do tmp[n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

void md_fmt_hex(char *out, uint64_t v, int digits) {
    for (int i = 0; i < digits; i++) out[i] = "0123456789abcdef"[v >> (4 * (digits - 1 - i)) & 15];
    out[digits] = '\0';
}

size_t md_join(char *out, size_t size, const char *const *parts, size_t n_parts) {
    size_t len = 0;
    for (size_t i = 0; i < n_parts && len + 1 < size; i++) {
        size_t n = strnlen(parts[i], size - 1 - len);
        memcpy(out + len, parts[i], n);
        len += n;
    }
    if (size) out[len] = '\0';
    return len;
}

void md_cs_set_int(md_ops *ops, const char *field, int64_t v) {
    char buf[24];
    md_fmt_i64(buf, v);
    md_ops_add(ops, MD_OP_SET, field, buf);
}

/* FNV-1a with a seed folded in, then a final avalanche (splitmix64), so
 * similar ids land far apart. Stable across versions: ids depend on it. */
uint64_t md_hash64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static uint64_t load64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                                                                                \
    do {                                                                                                                         \
        v0 += v1, v1 = SIP_ROTL(v1, 13), v1 ^= v0, v0 = SIP_ROTL(v0, 32);                                                        \
        v2 += v3, v3 = SIP_ROTL(v3, 16), v3 ^= v2;                                                                               \
        v0 += v3, v3 = SIP_ROTL(v3, 21), v3 ^= v0;                                                                               \
        v2 += v1, v1 = SIP_ROTL(v1, 17), v1 ^= v2, v2 = SIP_ROTL(v2, 32);                                                        \
    } while (0)

uint64_t md_siphash24(const uint64_t key[2], const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load64le(p + i);
        v3 ^= m;
        SIP_ROUND;
        SIP_ROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++) last |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= last;
    SIP_ROUND;
    SIP_ROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIP_ROUND;
    SIP_ROUND;
    SIP_ROUND;
    SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------------------- */
/* Lifecycle                                                                  */

md_cstate *md_cstate_new(const md_config *cfg) {
    md_cstate *cs = calloc(1, sizeof(*cs));
    if (!cs) return NULL;
    const md_rules *r = cfg->rules;
    cs->cfg = cfg;
    cs->r = r;
    cs->series = calloc(r->n_series + 1, sizeof(md_series_st));
    cs->series_scratch = calloc(r->n_series + 1, sizeof(md_series_st));
    cs->camps = calloc(cfg->n_campaigns + 1, sizeof(md_camp_st));
    cs->attr_of = calloc(r->n_profile_attrs + 1, sizeof(int));
    cs->win_vals = calloc(cfg->n_windows + 1, sizeof(double));
    cs->tag_num = calloc(cfg->n_tags + 1, sizeof(double));
    cs->scores = calloc(cfg->n_campaigns + 1, sizeof(double));
    if (!cs->series || !cs->series_scratch || !cs->camps || !cs->attr_of || !cs->win_vals || !cs->tag_num || !cs->scores) {
        md_cstate_destroy(cs);
        return NULL;
    }
    md_cstate_reset(cs);
    return cs;
}

/* The watermarks' topics and the profile attributes keep their buffers
 * from one load to the next (only the counts go to 0): a batch loads
 * thousands of states, and freeing and allocating each one's strings again
 * was 5% of the daemon's CPU. md_cstate_destroy frees them. */
static void texts_clear(md_cstate *cs, bool all);

static void clear_dynamic(md_cstate *cs) {
    for (size_t i = 0; i < cs->n_pending; i++) {
        free(cs->pending[i].topic);
        free(cs->pending[i].payload);
    }
    texts_clear(cs, false);
    cs->n_wm = cs->n_attrs = cs->n_pending = cs->n_seen = cs->n_contacts = cs->n_trecs = cs->n_incrs = cs->n_drecs = 0;
    cs->n_legacy_seen = 0;
    cs->seen_dirty = 0;
    cs->n_audits = 0;
    cs->profile_pieces = 0;
    cs->profile_repack = false;
}

void md_cstate_reset(md_cstate *cs) {
    clear_dynamic(cs);
    for (size_t s = 0; s < cs->r->n_series; s++) {
        cs->series[s].n = 0;
        cs->series[s].dirty = false;
        cs->series[s].form = 0;
        cs->series[s].own_field = cs->series[s].text_ok = false;
        cs->series[s].older_names = 0;
    }
    cs->series_text_len = 0;
    cs->series_pieces = cs->wm_pieces = 0;
    cs->series_piece_known = cs->wm_piece_known = 0;
    cs->wm_dirty = cs->wm_repack = false;
    cs->series_repack = false;
    cs->series_kept_len = 0;
    cs->version = 0;
    cs->key_expiry = 0;
    for (size_t c = 0; c < cs->cfg->n_campaigns; c++) memset(&cs->camps[c], 0, sizeof(md_camp_st));
    for (size_t a = 0; a < cs->r->n_profile_attrs; a++) cs->attr_of[a] = -1;
    cs->exists = false;
    cs->outbox_clear = cs->t_marked = cs->x0_field = false;
    cs->customer_id[0] = '\0';
    cs->has_balance = false;
    cs->balance = 0;
    cs->balance_ts = 0;
    cs->balance_at_payment = cs->balance_dirty = cs->balance_in_t = cs->balance_older = false;
    cs->balance_text[0] = '\0';
    memset(cs->last_ts, 0, sizeof(cs->last_ts));
    cs->times_dirty = cs->times_older = false;
    cs->newest_ts = 0;
    cs->complaint_until = cs->blackout_until = 0;
    cs->due = cs->due_loaded = 0;
    cs->opted_out = false;
    cs->dnc_mask = 0;
    cs->pinned = false;
    cs->forgotten_at = 0;
    cs->bad_fields = 0;
    cs->eval_event = NULL;
    cs->eval_t = 0;
}

void md_cstate_prefetch(const md_cstate *cs, bool members) {
    if (!members) {
        for (size_t off = 0; off < sizeof(*cs); off += 64) __builtin_prefetch((const char *)cs + off, 1);
        return;
    }
    /* What a load writes: the series and their buckets, the campaigns, the
     * profile's slots, the watermarks, the guard's first ids. */
    size_t ns = cs->r->n_series;
    for (size_t off = 0; off < ns * sizeof(*cs->series); off += 64) __builtin_prefetch((const char *)cs->series + off, 1);
    for (size_t s = 0; s < ns; s++)
        if (cs->series[s].b) __builtin_prefetch(cs->series[s].b, 1);
    __builtin_prefetch(cs->camps, 1);
    if (cs->attrs) __builtin_prefetch(cs->attrs, 1);
    if (cs->wm) __builtin_prefetch(cs->wm, 1);
    if (cs->seen) __builtin_prefetch(cs->seen, 1);
}

void md_cstate_destroy(md_cstate *cs) {
    if (!cs) return;
    if (cs->r) clear_dynamic(cs);
    texts_clear(cs, true);
    if (cs->series)
        for (size_t s = 0; s < cs->r->n_series; s++) free(cs->series[s].b);
    if (cs->series_scratch)
        for (size_t s = 0; s < cs->r->n_series; s++) free(cs->series_scratch[s].b);
    free(cs->series);
    free(cs->series_scratch);
    free(cs->series_kept);
    free(cs->enc_buf);
    free(cs->series_text);
    for (size_t i = 0; i < cs->cap_wm; i++) free(cs->wm[i].topic);
    free(cs->wm);
    free(cs->seen);
    for (size_t i = 0; i < cs->cap_attrs; i++) {
        free(cs->attrs[i].key);
        free(cs->attrs[i].value);
    }
    free(cs->attrs);
    free(cs->attr_of);
    free(cs->contacts);
    free(cs->camps);
    free(cs->pending);
    free(cs->trecs);
    free(cs->drecs);
    free(cs->audits);
    free(cs->incrs);
    free(cs->win_vals);
    free(cs->tag_num);
    free(cs->scores);
    free(cs);
}

bool md_cstate_exists(const md_cstate *cs) { return cs->exists; }

void md_cstate_set_codes(md_cstate *cs, const md_codes *codes) { cs->codes = codes; }

const md_config *md_cstate_config(const md_cstate *cs) { return cs->cfg; }

void md_cstate_set_customer(md_cstate *cs, const char *customer_id) {
    size_t n = strnlen(customer_id, sizeof(cs->customer_id) - 1); /* cut as snprintf would */
    memcpy(cs->customer_id, customer_id, n);
    cs->customer_id[n] = '\0';
}

const char *md_cstate_customer(const md_cstate *cs) { return cs->customer_id; }

int64_t md_cstate_version(const md_cstate *cs) { return cs->version; }

void md_cstate_set_key_expiry(md_cstate *cs, int64_t at) { cs->key_expiry = at; }
int64_t md_cstate_key_expiry(const md_cstate *cs) { return cs->key_expiry; }

/* ------------------------------------------------------------------------- */
/* Growable arrays                                                            */

static bool grow(void **arr, size_t *cap, size_t need, size_t esz) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need) nc *= 2;
    void *na = realloc(*arr, nc * esz);
    if (!na) return false;
    *arr = na;
    *cap = nc;
    return true;
}

/* grow for an array whose slots own buffers: new slots start empty. */
static bool grow_slots(void **arr, size_t *cap, size_t need, size_t esz) {
    size_t old = *cap;
    if (!grow(arr, cap, need, esz)) return false;
    memset((char *)*arr + old * esz, 0, (*cap - old) * esz);
    return true;
}

/* s (n bytes) into a slot's buffer, grown when too small. */
static bool put_str(char **dst, size_t *cap, const char *s, size_t n) {
    if (*cap < n + 1) {
        size_t c = n + 1 < 32 ? 32 : n + 1;
        char *d = realloc(*dst, c);
        if (!d) return false;
        *dst = d;
        *cap = c;
    }
    memcpy(*dst, s, n);
    (*dst)[n] = '\0';
    return true;
}

static md_bucket *series_find(md_series_st *s, int64_t id, size_t *pos) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->b[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    *pos = lo;
    return lo < s->n && s->b[lo].id == id ? &s->b[lo] : NULL;
}

static bool series_set(md_series_st *s, int64_t id, int64_t v) {
    size_t pos;
    md_bucket *b = series_find(s, id, &pos);
    if (b) {
        b->v = v;
        return true;
    }
    if (!grow((void **)&s->b, &s->cap, s->n + 1, sizeof(md_bucket))) return false;
    memmove(&s->b[pos + 1], &s->b[pos], (s->n - pos) * sizeof(md_bucket));
    s->b[pos].id = id;
    s->b[pos].v = v;
    s->n++;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                    */

/* (engine.h) By hand rather than strtoll, which copies, honours the locale
 * and skips blanks: this runs for every bucket of every series a batch
 * reads (8% of the daemon's CPU with strtoll). */
bool md_parse_i64(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    bool neg = len > 0 && s[0] == '-';
    if (neg) i++;
    if (i == len || len - i > 19) return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* at most 19 digits: no wrap */
    }
    if (v > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static const char b36_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Each byte's base-36 value plus one: 0 for a byte that is no lower-case
 * base-36 digit. A table, not two range tests a digit: every bucket of
 * every series, every guarded id and every field's time is read through
 * it, at each batch's decode. */
#define B36_DIGIT_ROW(c0, v0) [c0] = v0 + 1, [c0 + 1] = v0 + 2, [c0 + 2] = v0 + 3, [c0 + 3] = v0 + 4, [c0 + 4] = v0 + 5, [c0 + 5] = v0 + 6
static const uint8_t b36_value_plus1[256] = {B36_DIGIT_ROW('0', 0),  ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10,
                                             B36_DIGIT_ROW('a', 10), B36_DIGIT_ROW('g', 16), B36_DIGIT_ROW('m', 22),
                                             B36_DIGIT_ROW('s', 28), ['y'] = 35, ['z'] = 36};
#undef B36_DIGIT_ROW

/* A lower-case base-36 digit's value; -1 for any other character. */
static int b36_digit(char c) { return (int)b36_value_plus1[(unsigned char)c] - 1; }

/* Base 36, lower case: 1 to 13 digits, at most 2^64 - 1 (a 64-bit hash).
 * Twelve digits cannot pass 2^64 (36^12 < 2^63), so only a thirteenth is
 * checked for overflow: the check's division, made for every digit, was
 * a fifth of the decode's time (perf, bench/core). */
static bool parse_b36_u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 13) return false;
    size_t safe = len < 13 ? len : 12;
    uint64_t v = 0;
    for (size_t i = 0; i < safe; i++) {
        unsigned d = b36_value_plus1[(unsigned char)s[i]];
        if (!d) return false;
        v = v * 36 + (d - 1);
    }
    if (len == 13) {
        unsigned d = b36_value_plus1[(unsigned char)s[12]];
        if (!d || v > (UINT64_MAX - (d - 1)) / 36) return false;
        v = v * 36 + (d - 1);
    }
    *out = v;
    return true;
}

/* Five base-36 digits fit 32 bits (36^5 < 2^32): the writers below divide
 * a 64-bit value once per five digits and the rest in 32 bits, where a
 * division by 36 is a cheaper multiply (the guard's ids, ten digits each,
 * and every time in base 36 are written at each flush). */
#define B36_POW5 60466176u

/* Base 36, lower case, of v (at most 13 digits and a NUL); its length. */
static size_t fmt_b36(char *out, uint64_t v) {
    char tmp[16];
    size_t n = 0, len = 0;
    for (; v >= B36_POW5; v /= B36_POW5)
        for (uint32_t lo = (uint32_t)(v % B36_POW5), k = 0; k < 5; k++, lo /= 36) tmp[n++] = b36_digits[lo % 36];
    uint32_t w = (uint32_t)v;
    do tmp[n++] = b36_digits[w % 36];
    while (w /= 36);
    while (n) out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

/* FNV-1a, 32 bits, of n bytes: the hash of the state's derived field
 * names (series, short codes), which must never change. */
static uint32_t fnv1a32(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* A campaign's or topic's short name in field names (rules.h). A name went
 * into every audit run's and every watermark's field, hundreds of thousands
 * of times over: "R:bill_instalment:" and "w:customer-profiles:" were 130 B
 * of a customer's 800. Fixed width, so the rest of the field follows it
 * without a separator. */
static void state_code_n(const char *name, size_t n, char out[MD_STATE_CODE_LEN + 1]) {
    uint32_t h = fnv1a32(name, n) % 60466176u; /* 36^5 */
    for (int i = MD_STATE_CODE_LEN; i-- > 0; h /= 36) out[i] = b36_digits[h % 36];
    out[MD_STATE_CODE_LEN] = '\0';
}

void md_state_code(const char *name, char out[MD_STATE_CODE_LEN + 1]) { state_code_n(name, strlen(name), out); }

/* Four digits, not the hash's seven: a series' name is in every customer's
 * hash five to ten times over (15 B of a customer's 655 B went to the three
 * digits). 36^4 names leave a collision between two series of one
 * configuration of ten series one chance in 37,000 (45 pairs in 36^4); rules.c
 * refuses it. */
#define SERIES_CODE_LEN 4
void md_series_field(const char *signal, int64_t granularity_ms, int sum, char field[16], char older[16]) {
    char key[300];
    int n = snprintf(key, sizeof(key), "%s|%lld|%d", signal, (long long)granularity_ms, sum);
    uint32_t h = fnv1a32(key, n < 0 ? 0 : (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1);
    field[0] = 'S';
    uint32_t c = h % (36u * 36u * 36u * 36u);
    for (int i = SERIES_CODE_LEN; i > 0; c /= 36) field[i--] = b36_digits[c % 36];
    field[SERIES_CODE_LEN + 1] = '\0';
    if (older) fmt_b36(older, h);
}

/* T's first byte when the outbox was left empty (in place of the field
 * "x0" of earlier versions: 5 B of every customer's hash). */
#define OUTBOX_CLEAR_MARK '.'

/* ---- The namespace's short codes (engine.h): the long codes above name a
 * topic, a series or an attribute in every customer's hash, 20, 24 and 16
 * bytes of a customer's 400 at bench/run's defaults
 * (bench/experiments/hash-bytes). A registry that gives each a letter
 * instead cannot collide, as a shorter hash would: two series with one
 * letter would read each other's history. The registry is Redis's
 * ("<prefix>:meta", codes.lua); this is the format and the table. ---- */
#define SHORT_CODE_MAX 3

struct md_codes {
    uint64_t id; /* md_hash64 of the wanted list it was made for */
    size_t n_topics;
    char topic_long[MD_INPUT_TOPICS][MD_STATE_CODE_LEN + 1];
    char topic[MD_INPUT_TOPICS][SHORT_CODE_MAX + 1];
    char (*series)[SHORT_CODE_MAX + 1]; /* by the rules' series index; "" none */
    char (*attr)[SHORT_CODE_MAX + 1];   /* by the rules' attribute index; "" none (contact_point) */
    size_t n_series, n_attrs;
    /* A one-letter code's series and attribute, index + 1 (0: none): a state's
     * decode looks up every series and attribute it reads, and a walk over
     * the lists with a strlen and a memcmp each was about a seventh of the
     * decode's instructions (BENCHMARKS.md). */
    int series_of_letter[25], attr_of_letter[25];
};

static bool is_capital(char c) { return c >= 'A' && c <= 'Z'; }

/* The length of the code at p, before end: a short code's one letter (A-Y)
 * or three ('Z' and two), or a long code's long_len base-36 digits (which
 * are never capitals, so the two read apart); 0 when neither. */
static size_t code_len_at(const char *p, const char *end, size_t long_len) {
    if (p >= end) return 0;
    if (*p >= 'A' && *p <= 'Y') return 1;
    if (*p == 'Z') return end - p >= 3 && is_capital(p[1]) && is_capital(p[2]) ? 3 : 0;
    if ((size_t)(end - p) < long_len) return 0;
    for (size_t i = 0; i < long_len; i++)
        if (b36_digit(p[i]) < 0) return 0;
    return long_len;
}

static bool is_short_code(const char *s, size_t n) { return n > 0 && n <= SHORT_CODE_MAX && code_len_at(s, s + n, SIZE_MAX) == n; }

/* Each wanted name of r into fn, in the registry's order: the input
 * topics (each code once), the series, the attributes the rules pack. */
typedef void (*wanted_fn)(void *ctx, char kind, const char *code, size_t index);
static void each_wanted(const md_rules *r, wanted_fn fn, void *ctx) {
    for (size_t i = 0; i < MD_INPUT_TOPICS; i++) {
        bool again = false;
        for (size_t o = 0; o < i && !again; o++) again = strcmp(r->input_topic_codes[o], r->input_topic_codes[i]) == 0;
        if (!again) fn(ctx, 't', r->input_topic_codes[i], i);
    }
    for (size_t i = 0; i < r->n_series; i++) fn(ctx, 's', r->series[i].field + 1, i);
    for (size_t i = 0; i < r->n_profile_attrs; i++)
        if (r->profile_codes[i][0]) fn(ctx, 'a', r->profile_codes[i], i);
}

typedef struct wanted_text {
    char *s;
    size_t len, n;
} wanted_text;

static void wanted_append(void *ctx, char kind, const char *code, size_t index) {
    (void)index;
    wanted_text *w = ctx;
    if (w->n) w->s[w->len++] = ',';
    w->s[w->len++] = kind;
    size_t cl = strlen(code);
    memcpy(w->s + w->len, code, cl);
    w->len += cl;
    w->s[w->len] = '\0';
    w->n++;
}

static char *wanted_of(const md_rules *r, size_t *n) {
    size_t most = MD_INPUT_TOPICS + r->n_series + r->n_profile_attrs;
    wanted_text w = {malloc(most * (MD_STATE_CODE_LEN + 2) + 1), 0, 0};
    if (!w.s) return NULL;
    w.s[0] = '\0';
    each_wanted(r, wanted_append, &w);
    *n = w.n;
    return w.s;
}

char *md_codes_wanted(const md_config *cfg, size_t *n) { return wanted_of(cfg->rules, n); }

uint64_t md_codes_names_id(const md_rules *r) {
    size_t n;
    char *wanted = wanted_of(r, &n);
    uint64_t id = wanted ? md_hash64(wanted, strlen(wanted), 0) : 0;
    free(wanted);
    return id == 0 && wanted ? 1 : id; /* 0 says out of memory */
}

uint64_t md_codes_config_id(const md_config *cfg) { return cfg->rules->codes_id; }

typedef struct codes_fill {
    md_codes *codes;
    const char *const *shorts;
    size_t n, next;
    const char *bad; /* why the answer does not fit */
    char bad_code[MD_STATE_CODE_LEN + 2];
} codes_fill;

static void codes_take(void *ctx, char kind, const char *code, size_t index) {
    codes_fill *f = ctx;
    if (f->bad) return;
    if (f->next >= f->n) {
        f->bad = "fewer short codes than asked for";
        return;
    }
    const char *s = f->shorts[f->next++];
    size_t sl = s ? strlen(s) : 0;
    if (sl && !is_short_code(s, sl)) {
        f->bad = "not a short code (one letter A-Y, or Z and two letters)";
        snprintf(f->bad_code, sizeof(f->bad_code), "%c%s", kind, code);
        return;
    }
    md_codes *c = f->codes;
    char *into = kind == 't' ? c->topic[c->n_topics] : kind == 's' ? c->series[index] : c->attr[index];
    if (kind == 't') memcpy(c->topic_long[c->n_topics++], code, MD_STATE_CODE_LEN + 1);
    memcpy(into, s ? s : "", sl + 1);
}

/* Two different long codes with one short one: reading one for the other
 * would mix two series' histories. Each family is read apart, so a letter
 * must be unique within one (the registry makes it unique everywhere). */
static bool codes_unique(char (*list)[SHORT_CODE_MAX + 1], size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < i && list[i][0]; o++)
            if (strcmp(list[i], list[o]) == 0) return false;
    return true;
}

md_codes *md_codes_new(const md_config *cfg, const char *const *shorts, size_t n, char *errstr, size_t errstr_size) {
    md_codes *c = calloc(1, sizeof(*c));
    if (c) {
        c->n_series = cfg->rules->n_series;
        c->n_attrs = cfg->rules->n_profile_attrs;
        c->series = calloc(c->n_series + 1, sizeof(*c->series));
        c->attr = calloc(c->n_attrs + 1, sizeof(*c->attr));
    }
    if (!c || !c->series || !c->attr) {
        snprintf(errstr, errstr_size, "out of memory");
        md_codes_destroy(c);
        return NULL;
    }
    c->id = cfg->rules->codes_id;
    codes_fill f = {c, shorts, n, 0, NULL, ""};
    each_wanted(cfg->rules, codes_take, &f);
    if (!f.bad && f.next != n) f.bad = "more short codes than asked for";
    if (!f.bad && (!codes_unique(c->topic, c->n_topics) || !codes_unique(c->series, c->n_series) || !codes_unique(c->attr, c->n_attrs)))
        f.bad = "two names have one short code";
    if (f.bad) {
        snprintf(errstr, errstr_size, "the namespace's short codes: %s%s%s", f.bad, f.bad_code[0] ? ", for " : "", f.bad_code);
        md_codes_destroy(c);
        return NULL;
    }
    for (size_t i = 0; i < c->n_series; i++)
        if (c->series[i][0] && !c->series[i][1]) c->series_of_letter[c->series[i][0] - 'A'] = (int)i + 1;
    for (size_t i = 0; i < c->n_attrs; i++)
        if (c->attr[i][0] && !c->attr[i][1]) c->attr_of_letter[c->attr[i][0] - 'A'] = (int)i + 1;
    return c;
}

/* The index that short code (n bytes) has in list (n_list codes), or -1;
 * by_letter answers a one-letter code. */
static int short_code_index(const int by_letter[25], char (*list)[SHORT_CODE_MAX + 1], size_t n_list, const char *code, size_t n) {
    if (n == 1) return code[0] >= 'A' && code[0] <= 'Y' ? by_letter[code[0] - 'A'] - 1 : -1;
    for (size_t i = 0; i < n_list; i++)
        if (strlen(list[i]) == n && memcmp(list[i], code, n) == 0) return (int)i;
    return -1;
}

/* The n-th short code a registry gives (from 1; codes.lua draws them so),
 * "" beyond the last. */
static void nth_short_code(size_t n, char out[SHORT_CODE_MAX + 1]) {
    if (n >= 1 && n <= 25) snprintf(out, SHORT_CODE_MAX + 1, "%c", (char)('A' + n - 1));
    else if (n > 25 && n <= 25 + 26 * 26) snprintf(out, SHORT_CODE_MAX + 1, "Z%c%c", (char)('A' + (n - 26) / 26), (char)('A' + (n - 26) % 26));
    else out[0] = '\0';
}

md_codes *md_codes_fresh(const md_config *cfg) {
    size_t n = 0;
    char *wanted = md_codes_wanted(cfg, &n);
    char(*codes)[SHORT_CODE_MAX + 1] = calloc(n + 1, sizeof(*codes));
    const char **shorts = calloc(n + 1, sizeof(char *));
    md_codes *table = NULL;
    if (wanted && codes && shorts) {
        for (size_t i = 0; i < n; i++) {
            nth_short_code(i + 1, codes[i]);
            shorts[i] = codes[i];
        }
        char err[160];
        table = md_codes_new(cfg, shorts, n, err, sizeof(err)); /* fits: its own names, each its own code */
    }
    free(wanted);
    free(codes);
    free(shorts);
    return table;
}

void md_codes_destroy(md_codes *codes) {
    if (!codes) return;
    free(codes->series);
    free(codes->attr);
    free(codes);
}

uint64_t md_codes_id(const md_codes *codes) { return codes->id; }

/* The short code of the topic with long code long_code, or NULL. */
static const char *topic_short(const md_codes *codes, const char *long_code) {
    if (!codes) return NULL;
    for (size_t i = 0; i < codes->n_topics; i++)
        if (memcmp(codes->topic_long[i], long_code, MD_STATE_CODE_LEN) == 0) return codes->topic[i][0] ? codes->topic[i] : NULL;
    return NULL;
}

/* The long code of the topic with short code s (n bytes), or NULL. */
static const char *topic_long_of(const md_codes *codes, const char *s, size_t n) {
    if (!codes) return NULL;
    if (n > SHORT_CODE_MAX) return NULL;
    /* (every watermark of every decode: a strlen a topic was a tenth of the decode's watermarks) */
    for (size_t i = 0; i < codes->n_topics; i++)
        if (memcmp(codes->topic[i], s, n) == 0 && codes->topic[i][n] == '\0') return codes->topic_long[i];
    return NULL;
}

/* Which series a field's name is, and in which form ('S' the current name,
 * 'L' the older long one, 's' the older decimal one); -1 for none. The
 * current names first: an older name can be as short as a current one. */
static int series_by_field(const md_rules *r, const char *f, size_t fl, char *form) {
    if (f[0] == 'S')
        for (size_t i = 0; i < r->n_series; i++)
            if (r->series[i].field_len == fl && memcmp(r->series[i].field, f, fl) == 0) {
                *form = 'S';
                return (int)i;
            }
    for (size_t i = 0; i < r->n_series; i++)
        if (r->series[i].older_len + 1 == fl && memcmp(r->series[i].older, f + 1, fl - 1) == 0) {
            *form = f[0] == 'S' ? 'L' : 's';
            return (int)i;
        }
    return -1;
}

/* The same for a time or a span: at most INT64_MAX. */
static bool parse_b36(const char *s, size_t len, int64_t *out) {
    uint64_t v;
    if (!parse_b36_u64(s, len, &v) || v > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
}

/* ---- The event-id guard's pieces: "G<k>" = "<base>" + "<hash><hours>" per
 * id (the layout above). The base's length is the value's length modulo
 * 12 (an hour's number has 1 to 8 digits), so the value needs no
 * separator: five ids and a base of four digits (hours until the year
 * 2161) are 64 bytes, Redis's listpack value limit. ---- */
#define GUARD_ENTRY_LEN 12
#define GUARD_MAX_OFFSET (36 * 36 - 1) /* hours above the base: 54 days, over the 30-day horizon's limit */
#define GUARD_PIECE_MAX (8 + MD_SEEN_PER_PIECE * GUARD_ENTRY_LEN) /* a base of at most 8 digits */
_Static_assert(MD_SEEN_PIECES <= 64, "md_cstate.seen_dirty has a bit for every piece");

static void guard_piece_field(int piece, char field[8]) {
    field[0] = 'G';
    if (piece == 0) field[1] = '\0';
    else fmt_b36(field + 1, (uint64_t)piece);
}

/* Base 36 of v in exactly width digits (v < 36^width). */
static void fmt_b36_fixed(char *out, uint64_t v, int width) {
    for (; width > 0; v /= B36_POW5)
        for (uint32_t lo = (uint32_t)(v % B36_POW5), k = 0; k < 5 && width > 0; k++, lo /= 36) out[--width] = b36_digits[lo % 36];
}

/* The value of piece k, from the entries in it; its length (0: none). An
 * id further than GUARD_MAX_OFFSET hours above the piece's oldest is
 * written at that offset: it is then remembered for less than its time,
 * which a horizon of at most 30 days never asks for. */
static size_t guard_piece_value(const md_cstate *cs, int piece, char *out) {
    int64_t base = INT64_MAX;
    for (size_t i = 0; i < cs->n_seen; i++)
        if (cs->seen[i].form == 'G' && cs->seen[i].piece == piece && cs->seen[i].ts / MD_HOUR_MS < base) base = cs->seen[i].ts / MD_HOUR_MS;
    if (base == INT64_MAX) return 0;
    size_t n = fmt_b36(out, (uint64_t)base);
    for (size_t i = 0; i < cs->n_seen; i++) {
        const md_seen *e = &cs->seen[i];
        if (e->form != 'G' || e->piece != piece) continue;
        if (n + GUARD_ENTRY_LEN > GUARD_PIECE_MAX) break; /* never: a piece holds MD_SEEN_PER_PIECE at most */
        int64_t off = e->ts / MD_HOUR_MS - base;
        fmt_b36_fixed(out + n, e->hash, 10);
        fmt_b36_fixed(out + n + 10, (uint64_t)(off > GUARD_MAX_OFFSET ? GUARD_MAX_OFFSET : off), 2);
        n += GUARD_ENTRY_LEN;
    }
    out[n] = '\0';
    return n;
}

/* Reads piece "G<k>" into the guard; false when it is no piece of this
 * form (nothing then kept from it). */
static bool load_guard_piece(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    uint64_t piece = 0, h = 0;
    int64_t base, off = 0;
    if (fl > 1 && (f[1] == '0' || !parse_b36_u64(f + 1, fl - 1, &piece) || piece >= MD_SEEN_PIECES)) return false;
    size_t n = vl / GUARD_ENTRY_LEN, bl = vl % GUARD_ENTRY_LEN;
    if (n == 0 || n > MD_SEEN_PER_PIECE || bl == 0 || !parse_b36(v, bl, &base) || base > INT64_MAX / MD_HOUR_MS - GUARD_MAX_OFFSET) return false;
    if (!grow((void **)&cs->seen, &cs->cap_seen, cs->n_seen + n, sizeof(md_seen))) return false;
    /* Parsed past the guard's end, kept only when all of it parses. */
    for (size_t i = 0; i < n; i++) {
        const char *e = v + bl + i * GUARD_ENTRY_LEN;
        if (!parse_b36_u64(e, 10, &h) || !parse_b36(e + 10, 2, &off)) return false;
        cs->seen[cs->n_seen + i] = (md_seen){h, (base + off) * MD_HOUR_MS, 'G', (uint8_t)piece};
    }
    cs->n_seen += n;
    return true;
}

/* Writes the pieces that changed: the whole piece, or its deletion when
 * its last id aged out. */
static void guard_flush(md_cstate *cs, md_ops *ops) {
    char field[8], value[GUARD_PIECE_MAX + 1];
    for (int k = 0; cs->seen_dirty && k < MD_SEEN_PIECES; k++) {
        if (!(cs->seen_dirty & UINT64_C(1) << k)) continue;
        cs->seen_dirty &= ~(UINT64_C(1) << k);
        guard_piece_field(k, field);
        if (guard_piece_value(cs, k, value)) md_ops_add(ops, MD_OP_SET, field, value);
        else md_ops_add(ops, MD_OP_DEL, field, NULL);
    }
}

/* The decision audit's format (defined with its writer, below). */
static int audit_outcome_of(const char *s, size_t n, bool legacy);
static void audit_field(const md_cstate *cs, const md_audit *a, char *out);

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The state's texts (md_cstate.texts): chunks carved in order, never moved
 * (records point into them); all but the newest freed at each reset. */
struct md_text_chunk {
    struct md_text_chunk *next;
    size_t used, cap;
    char data[];
};
#define MD_TEXT_CHUNK 2048

/* s (n bytes) as a terminated text that lives until the state is next
 * reset; NULL when out of memory. */
static char *text_dup(md_cstate *cs, const char *s, size_t n) {
    struct md_text_chunk *c = cs->texts;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > MD_TEXT_CHUNK ? n + 1 : MD_TEXT_CHUNK;
        struct md_text_chunk *fresh = malloc(sizeof(*fresh) + cap);
        if (!fresh) return NULL;
        *fresh = (struct md_text_chunk){.next = c, .used = 0, .cap = cap};
        cs->texts = c = fresh;
    }
    char *d = c->data + c->used;
    memcpy(d, s, n);
    d[n] = '\0';
    c->used += n + 1;
    return d;
}

/* Every text let go: the newest chunk is kept for the next load (the
 * others are the few states with many records), the rest freed. */
static void texts_clear(md_cstate *cs, bool all) {
    struct md_text_chunk *c = cs->texts, *keep = all ? NULL : c;
    if (keep) {
        c = keep->next;
        keep->next = NULL;
        keep->used = 0;
    }
    while (c) {
        struct md_text_chunk *next = c->next;
        free(c);
        c = next;
    }
    cs->texts = keep;
}

/* Packed series, text rather than binary so that redis-cli shows it
 * readably. The current form ("S<hash>"), in base 36, lower case: the first
 * bucket's id, then ",<gap>" for each next, ids ascending; each followed by
 * ":<value>" ("-" before a negative one) unless the value is 1, which most
 * count buckets hold. "20658:1,9:1,15:1,6:1,22:2" in the older decimal form
 * ("s<hash>", still read) is "fw6,9,f,6,m:2": half the bytes of the
 * customers' series (BENCHMARKS.md). Decoding replaces the series, all or
 * nothing: never count half a series. */
static bool series_decode_into(md_series_st *s, const char *v, size_t vl, bool legacy);
static bool series_decode(md_series_st *s, const char *v, size_t vl, bool legacy) {
    if (series_decode_into(s, v, vl, legacy)) return true;
    s->n = 0;
    return false;
}

/* A signed base-36 number as series_encode writes it: an optional '-', then
 * 1 to 13 digits, at most INT64_MAX (INT64_MIN's magnitude when negative). */
static bool parse_b36_i64(const char *s, size_t len, int64_t *out) {
    bool neg = len > 0 && s[0] == '-';
    uint64_t m;
    if (!parse_b36_u64(s + neg, len - neg, &m) || m > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return true;
}

static size_t fmt_b36_i64(char *out, int64_t v) {
    if (v >= 0) return fmt_b36(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_b36(out + 1, 0 - (uint64_t)v);
}

static bool series_decode_into(md_series_st *s, const char *v, size_t vl, bool legacy) {
    s->n = 0;
    int64_t id = 0;
    size_t i = 0;
    while (i < vl) {
        size_t start = i;
        while (i < vl && v[i] != ':' && v[i] != ',') i++;
        int64_t num[2] = {0, 1};
        if (legacy ? !md_parse_i64(v + start, i - start, &num[0]) : !parse_b36_i64(v + start, i - start, &num[0])) return false;
        if (i < vl && v[i] == ':') {
            size_t vs = ++i;
            while (i < vl && v[i] != ',') i++;
            if (legacy ? !md_parse_i64(v + vs, i - vs, &num[1]) : !parse_b36_i64(v + vs, i - vs, &num[1])) return false;
        } else if (legacy) {
            return false; /* the older form always wrote ":<value>" */
        }
        if (i < vl && ++i == vl) return false; /* a trailing ',' */
        if (s->n > 0 && num[0] <= 0) return false; /* gaps are positive */
        if (s->n > 0 && id > INT64_MAX - num[0]) return false; /* a gap past the last bucket number there can be */
        id = s->n == 0 ? num[0] : id + num[0];
        if (!grow((void **)&s->b, &s->cap, s->n + 1, sizeof(md_bucket))) return false;
        s->b[s->n].id = id;
        s->b[s->n].v = num[1];
        s->n++;
    }
    return true;
}

/* The packed text of s in the current form, in the state's encoding buffer
 * (valid until the next call: no malloc a series at every flush), its
 * length in *len; NULL on allocation failure. */
static const char *series_encode(md_cstate *cs, const md_series_st *s, size_t *len) {
    if (!grow((void **)&cs->enc_buf, &cs->enc_cap, s->n * 30 + 1, 1)) return NULL; /* two signed base-36 int64 (14 each), two separators */
    char *buf = cs->enc_buf;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (i) buf[n++] = ',';
        n += fmt_b36_i64(buf + n, i == 0 ? s->b[0].id : s->b[i].id - s->b[i - 1].id);
        if (s->b[i].v == 1) continue;
        buf[n++] = ':';
        n += fmt_b36_i64(buf + n, s->b[i].v);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The number k of a piece's name "<letter><k>" ("<letter>" alone: 0), k in
 * decimal without a leading zero and below limit; false for any other name. */
static bool piece_number(const char *f, size_t fl, unsigned limit, unsigned *k) {
    unsigned n = 0;
    if (fl > 4) return false;
    for (size_t i = 1; i < fl; i++) {
        if (f[i] < '0' || f[i] > '9' || (i == 1 && f[i] == '0')) return false;
        n = n * 10 + (unsigned)(f[i] - '0');
    }
    *k = n;
    return n < limit;
}

/* ---- The packed series: pieces "H", "H1", ... of at most 64 bytes (Redis's
 * listpack value limit), each "<code><buckets>" per series joined by ';',
 * <code> the four base-36 digits of its field's name (md_series_field) and
 * <buckets> series_encode's text. A series too long for a piece stays a
 * field of its own, "S<code>". Five series an event were five of the eleven
 * fields an apply rewrote, and each costs the apply script a Lua string in
 * and out (BENCHMARKS.md). ---- */
#define SERIES_PIECE_MAX 64
#define SERIES_SEP ';'
#define SERIES_PIECES_MAX 64 /* md_cstate.series_piece_known has a bit for each */
#define SERIES_KEPT_MAX 1024 /* unknown entries kept, bytes: beyond, they go with the next repack */

/* The series an entry's code (n bytes, long or short) names, or -1. */
static int series_by_code(const md_cstate *cs, const char *code, size_t n) {
    const md_rules *r = cs->r;
    if (n == SERIES_CODE_LEN) {
        for (size_t i = 0; i < r->n_series; i++)
            if (memcmp(r->series[i].field + 1, code, SERIES_CODE_LEN) == 0) return (int)i;
    } else if (cs->codes) {
        return short_code_index(cs->codes->series_of_letter, cs->codes->series, cs->codes->n_series, code, n);
    }
    return -1;
}

/* The code series si is written under: its short code where the
 * namespace gave it one. */
static const char *series_code(const md_cstate *cs, size_t si) {
    return cs->codes && cs->codes->series[si][0] ? cs->codes->series[si] : cs->r->series[si].field + 1;
}

/* Piece k of a packed family: "<letter>" for the first, "<letter><k>" after. */
static void piece_name(char letter, unsigned k, char out[8]) {
    out[0] = letter;
    if (k == 0) out[1] = '\0';
    else md_fmt_i64(out + 1, (int64_t)(k % 64));
}

/* Piece k of a family's packing is piece: written unless the hash holds it
 * already (held pieces, bit k of *known: its text's sum is sum[k]). */
/* A piece's fingerprint, telling whether its text changed since it was
 * read (kept in memory only, so any good 64-bit mix does): eight bytes a
 * step, where md_hash64's byte-at-a-time FNV took 2% of the per-event
 * path (bench/instructions, BENCHMARKS.md). */
static uint64_t piece_sum(const char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    return h ^ h >> 31;
}

static void piece_put(md_ops *ops, char letter, unsigned k, char *piece, size_t len, unsigned held, uint64_t *known, uint64_t *sum) {
    char name[8];
    piece[len] = '\0';
    uint64_t h = piece_sum(piece, len);
    if (k < held && (*known >> k & 1) && sum[k] == h) return;
    piece_name(letter, k, name);
    md_ops_add(ops, MD_OP_SET, name, piece);
    *known |= UINT64_C(1) << k;
    sum[k] = h;
}

/* Deletes the family's pieces from k on, up to the held ones. */
static void pieces_drop_from(md_ops *ops, char letter, unsigned k, unsigned held, uint64_t *known) {
    for (unsigned j = k; j < held; j++) {
        char name[8];
        piece_name(letter, j, name);
        md_ops_add(ops, MD_OP_DEL, name, NULL);
        *known &= ~(UINT64_C(1) << j);
    }
}

/* Keeps text as series s's (series_flush writes it as it is while s is
 * unchanged); without memory, or for an empty one (nothing to write), the
 * flush encodes s again. */
static void series_keep_text(md_cstate *cs, md_series_st *s, const char *text, size_t n) {
    s->text_ok = n > 0 && n <= UINT32_MAX && grow((void **)&cs->series_text, &cs->series_text_cap, cs->series_text_len + n, 1);
    if (!s->text_ok) return;
    memcpy(cs->series_text + cs->series_text_len, text, n);
    s->text_at = (uint32_t)cs->series_text_len;
    s->text_len = (uint32_t)n;
    cs->series_text_len += n;
}

/* Piece "H<k>": read whole or not at all (false: a series of it does not
 * parse, nothing is taken). Each entry is decoded into a scratch series,
 * then swapped in, so a bad piece leaves what was read before it. */
static bool load_series_piece(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    unsigned k;
    if (!piece_number(f, fl, SERIES_PIECES_MAX, &k) || vl == 0) return false;
    int taken[SERIES_PIECE_MAX];
    const char *taken_text[SERIES_PIECE_MAX];
    size_t n_taken = 0, kept_mark = cs->series_kept_len, taken_len[SERIES_PIECE_MAX];
    for (const char *p = v, *e = v + vl; p < e;) {
        const char *sep = memchr(p, SERIES_SEP, (size_t)(e - p)), *end = sep ? sep : e;
        size_t cl = code_len_at(p, end, SERIES_CODE_LEN);
        if (cl == 0 || (size_t)(end - p) <= cl || (sep && sep + 1 == e)) goto bad;
        int si = series_by_code(cs, p, cl);
        bool again = si >= 0 && cs->series[si].form == 'H';
        for (size_t j = 0; j < n_taken && !again; j++) again = taken[j] == si;
        /* Under its long code while the namespace has a short one: the
         * piece is rewritten along the customer's next other write. */
        if (si >= 0 && !again && cl == SERIES_CODE_LEN && cs->codes && cs->codes->series[si][0]) cs->series_repack = true;
        if (si < 0) { /* a series no window of this configuration reads: kept as it is */
            for (const char *c = p + cl; c < end; c++)
                if (b36_digit(*c) < 0 && *c != ',' && *c != ':' && *c != '-') goto bad; /* no series' text */
            size_t n = (size_t)(end - p), at = cs->series_kept_len;
            if (at + 1 + n <= SERIES_KEPT_MAX && n <= SERIES_PIECE_MAX) { /* one longer is no entry this version wrote */
                if (!grow((void **)&cs->series_kept, &cs->series_kept_cap, at + 1 + n + 1, 1)) goto bad;
                if (at) cs->series_kept[at++] = SERIES_SEP;
                memcpy(cs->series_kept + at, p, n);
                cs->series_kept_len = at + n;
            }
        } else if (again) {
            cs->series_repack = true; /* twice: the first read is kept, the next flush writes it once */
        } else {
            if (!series_decode_into(&cs->series_scratch[n_taken], p + cl, (size_t)(end - p) - cl, false)) goto bad;
            taken_text[n_taken] = p + cl;
            taken_len[n_taken] = (size_t)(end - p) - cl;
            taken[n_taken++] = si;
        }
        p = sep ? sep + 1 : e;
    }
    for (size_t j = 0; j < n_taken; j++) {
        md_series_st *s = &cs->series[taken[j]], *t = &cs->series_scratch[j];
        md_bucket *b = s->b;
        size_t cap = s->cap;
        s->b = t->b, s->n = t->n, s->cap = t->cap;
        t->b = b, t->n = 0, t->cap = cap;
        if (s->own_field) cs->series_repack = true; /* "S<code>" read first: deleted along the next write */
        s->form = 'H';
        s->dirty |= s->older_names != 0;
        series_keep_text(cs, s, taken_text[j], taken_len[j]);
    }
    if (k + 1 > cs->series_pieces) cs->series_pieces = k + 1;
    cs->series_piece_known |= UINT64_C(1) << k;
    cs->series_piece_sum[k] = piece_sum(v, vl);
    if (vl > SERIES_PIECE_MAX) cs->series_repack = true;
    return true;
bad:
    cs->series_kept_len = kept_mark;
    return false;
}


/* Writes the series: those that fit into pieces, in the configuration's
 * order, then the kept entries; each longer one as "S<code>". Pieces whose
 * text is unchanged are not written; pieces no longer needed and the
 * names of other forms are deleted. Runs when a series changed, or along
 * other writes when one is to move to another form. */
static void series_flush(md_cstate *cs, md_ops *ops) {
    bool any = cs->series_repack && ops->n > 0;
    for (size_t si = 0; si < cs->r->n_series && !any; si++) any = cs->series[si].dirty;
    if (!any) return;
    char piece[SERIES_PIECE_MAX + 1];
    size_t len = 0;
    unsigned k = 0;
    for (size_t si = 0, ki = 0; si < cs->r->n_series || ki < cs->series_kept_len;) {
        const char *code, *text, *encoded = NULL;
        size_t tl = 0, code_len;
        if (si < cs->r->n_series) {
            md_series_st *s = &cs->series[si];
            const char *field = cs->r->series[si].field;
            for (int o = 0; o < 2; o++)
                if (s->older_names & (o ? SERIES_OLDER_PACKED : SERIES_OLDER_DECIMAL)) {
                    char older[24];
                    snprintf(older, sizeof(older), "%c%s", o ? 'S' : 's', cs->r->series[si].older);
                    md_ops_add(ops, MD_OP_DEL, older, NULL);
                }
            s->older_names = 0;
            if (s->n && !s->dirty && s->text_ok) {
                encoded = cs->series_text + s->text_at;
                tl = s->text_len;
            } else if (s->n) {
                if (!(encoded = series_encode(cs, s, &tl))) {
                    ops->oom = true;
                    return;
                }
                series_keep_text(cs, s, encoded, tl);
            }
            code = series_code(cs, si);
            code_len = strlen(code);
            bool packed = encoded && code_len + tl <= SERIES_PIECE_MAX;
            if (!encoded || packed) {
                if (s->own_field) md_ops_add(ops, MD_OP_DEL, field, NULL);
                s->own_field = false;
            } else if (s->dirty || !s->own_field) {
                md_ops_add(ops, MD_OP_SET, field, encoded);
                s->own_field = true;
            }
            s->form = !encoded ? 0 : packed ? 'H' : 'S';
            s->dirty = false;
            si++;
            if (!packed) continue;
            text = encoded;
        } else {
            const char *p = cs->series_kept + ki, *e = cs->series_kept + cs->series_kept_len;
            const char *sep = memchr(p, SERIES_SEP, (size_t)(e - p)), *end = sep ? sep : e;
            code = p;
            code_len = code_len_at(p, end, SERIES_CODE_LEN); /* never 0: checked as it was read */
            text = p + code_len;
            tl = (size_t)(end - text);
            ki = sep ? (size_t)(sep + 1 - cs->series_kept) : cs->series_kept_len;
        }
        if (code_len + tl > SERIES_PIECE_MAX) continue; /* never: neither a series nor a kept entry gets here so */
        if (len && len + 1 + code_len + tl > SERIES_PIECE_MAX) {
            if (k + 1 >= SERIES_PIECES_MAX) { /* the pieces are full: a series takes a field of its own, a kept entry goes */
                if (encoded) {
                    md_series_st *s = &cs->series[si - 1];
                    md_ops_add(ops, MD_OP_SET, cs->r->series[si - 1].field, encoded);
                    s->own_field = true;
                    s->form = 'S';
                }
                continue;
            }
            piece_put(ops, 'H', k++, piece, len, cs->series_pieces, &cs->series_piece_known, cs->series_piece_sum);
            len = 0;
        }
        if (len) piece[len++] = SERIES_SEP;
        memcpy(piece + len, code, code_len);
        memcpy(piece + len + code_len, text, tl);
        len += code_len + tl;
    }
    if (len) piece_put(ops, 'H', k++, piece, len, cs->series_pieces, &cs->series_piece_known, cs->series_piece_sum);
    pieces_drop_from(ops, 'H', k, cs->series_pieces, &cs->series_piece_known);
    cs->series_pieces = k;
    cs->series_repack = false;
}

static int campaign_by_name(const md_config *cfg, const char *s, size_t n) {
    for (size_t i = 0; i < cfg->n_campaigns; i++)
        if (strlen(cfg->campaigns[i].name) == n && memcmp(cfg->campaigns[i].name, s, n) == 0) return (int)i;
    return -1;
}

static int channel_by_name(const md_config *cfg, const char *s, size_t n) {
    for (size_t i = 0; i < cfg->n_channels; i++)
        if (strlen(cfg->channels[i].name) == n && memcmp(cfg->channels[i].name, s, n) == 0) return (int)i;
    return -1;
}

static void reindex_attrs(md_cstate *cs) {
    for (size_t a = 0; a < cs->r->n_profile_attrs; a++) {
        cs->attr_of[a] = -1;
        for (size_t k = 0; k < cs->n_attrs; k++)
            if (strcmp(cs->attrs[k].key, cs->r->profile_attrs[a]) == 0) cs->attr_of[a] = (int)k;
    }
}

static bool add_attr(md_cstate *cs, const char *k, size_t kl, const char *v, size_t vl) {
    if (cs->n_attrs >= (size_t)cs->cfg->limits.max_profile_attrs) return false;
    if (!grow_slots((void **)&cs->attrs, &cs->cap_attrs, cs->n_attrs + 1, sizeof(md_attr))) return false;
    md_attr *a = &cs->attrs[cs->n_attrs];
    if (!put_str(&a->key, &a->key_cap, k, kl) || !put_str(&a->value, &a->value_cap, v, vl)) return false;
    a->stored = 0;
    a->unknown_code = false;
    cs->n_attrs++;
    return true;
}

/* ---- The packed profile: the attributes the rules read, under their
 * short names, in pieces "P", "P1", ... of at most 64 bytes (Redis's
 * listpack value limit), "<code><value>" joined by 0x1f. Their names were
 * the largest part of a customer's hash: five attributes, 112 of 577
 * bytes, 60 of them "p:<name>" and 20 the entries' own overhead. An
 * attribute no rule reads stays a field "p:<name>" (its name is all a
 * state can tell it by), and so does contact_point (the store looks for
 * it before decoding) and a value that holds 0x1f or does not fit a piece. ---- */
#define PROFILE_PIECE_MAX 64
#define PROFILE_SEP '\x1f'
#define PROFILE_PIECES_MAX 256 /* limits.max_profile_attrs at most, one a piece */

void md_profile_code(const char *name, char out[MD_PROFILE_CODE_LEN + 1]) {
    uint32_t c = fnv1a32(name, strlen(name)) % (36u * 36u * 36u * 36u);
    for (int i = MD_PROFILE_CODE_LEN; i-- > 0; c /= 36) out[i] = b36_digits[c % 36];
    out[MD_PROFILE_CODE_LEN] = '\0';
}

/* The rules' index of an attribute by name, or -1. */
static int configured_attr(const md_cstate *cs, const char *k, size_t kl) {
    for (size_t a = 0; a < cs->r->n_profile_attrs; a++)
        if (strlen(cs->r->profile_attrs[a]) == kl && memcmp(cs->r->profile_attrs[a], k, kl) == 0) return (int)a;
    return -1;
}

/* An attribute's short name in the packed profile, or NULL when it stays a
 * field: "#<code>" is one read packed that this configuration no longer
 * reads, kept packed as it was. */
static const char *attr_code(const md_cstate *cs, const md_attr *at) {
    if (at->unknown_code) return at->key + 1;
    int a = configured_attr(cs, at->key, strlen(at->key));
    if (a < 0 || !cs->r->profile_codes[a][0]) return NULL;
    return cs->codes && cs->codes->attr[a][0] ? cs->codes->attr[a] : cs->r->profile_codes[a];
}

/* The code an attribute is packed under, or NULL when it stays a field. */
static const char *attr_packed_code(const md_cstate *cs, const md_attr *at) {
    size_t vl = strlen(at->value);
    const char *code = attr_code(cs, at);
    return code && strlen(code) + vl <= PROFILE_PIECE_MAX && !memchr(at->value, PROFILE_SEP, vl) ? code : NULL;
}

static void profile_piece_name(char out[16], unsigned k) {
    if (k == 0) snprintf(out, 16, "P");
    else snprintf(out, 16, "P%u", k);
}

/* A piece of the packed profile: each entry an attribute. One already read
 * as a field ("p:<name>" of an older state) takes the piece's value, and the
 * next flush deletes the field. */
static bool load_profile_piece(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    unsigned k;
    if (!piece_number(f, fl, PROFILE_PIECES_MAX, &k)) return false;
    for (const char *p = v, *e = v + vl; p < e;) { /* read whole or not at all */
        const char *sep = memchr(p, PROFILE_SEP, (size_t)(e - p)), *end = sep ? sep : e;
        if (code_len_at(p, end, MD_PROFILE_CODE_LEN) == 0) return false;
        p = sep ? sep + 1 : e;
    }
    if (k + 1 > cs->profile_pieces) cs->profile_pieces = k + 1;
    for (const char *p = v, *e = v + vl; p < e;) {
        const char *sep = memchr(p, PROFILE_SEP, (size_t)(e - p)), *end = sep ? sep : e;
        size_t cl = code_len_at(p, end, MD_PROFILE_CODE_LEN);
        const char *val = p + cl;
        size_t val_len = (size_t)(end - val);
        int a = -1;
        if (cl != MD_PROFILE_CODE_LEN) {
            if (cs->codes) a = short_code_index(cs->codes->attr_of_letter, cs->codes->attr, cs->codes->n_attrs, p, cl);
        } else {
            for (size_t i = 0; i < cs->r->n_profile_attrs && a < 0; i++)
                if (cs->r->profile_codes[i][0] && memcmp(cs->r->profile_codes[i], p, cl) == 0) a = (int)i;
        }
        /* under its long code while the namespace has a short one: packed
         * again along the customer's next other write */
        if (a >= 0 && cl == MD_PROFILE_CODE_LEN && cs->codes && cs->codes->attr[a][0]) cs->profile_repack = true;
        if (a >= 0 && cs->attr_of[a] >= 0) { /* also a field: the piece's value is read */
            md_attr *at = &cs->attrs[cs->attr_of[a]];
            if (!put_str(&at->value, &at->value_cap, val, val_len)) return false;
            at->stored |= ATTR_IN_PIECE;
            cs->profile_repack = true;
        } else {
            char unknown[MD_PROFILE_CODE_LEN + 2] = "#";
            memcpy(unknown + 1, p, cl);
            unknown[cl + 1] = '\0';
            const char *name = a >= 0 ? cs->r->profile_attrs[a] : unknown;
            if (!add_attr(cs, name, strlen(name), val, val_len)) return false;
            cs->attrs[cs->n_attrs - 1].stored = ATTR_IN_PIECE;
            cs->attrs[cs->n_attrs - 1].unknown_code = a < 0;
            if (a >= 0) cs->attr_of[a] = (int)(cs->n_attrs - 1);
        }
        p = sep ? sep + 1 : e;
    }
    return true;
}

/* A field "p:<name>". One the packed profile holds too keeps the piece's
 * value; one that can be packed is, by the next flush. */
static bool load_profile_field(md_cstate *cs, const char *k, size_t kl, const char *v, size_t vl) {
    int a = configured_attr(cs, k, kl);
    if (a >= 0 && cs->attr_of[a] >= 0) {
        cs->attrs[cs->attr_of[a]].stored |= ATTR_IN_FIELD;
        cs->profile_repack = true;
        return true;
    }
    if (!add_attr(cs, k, kl, v, vl)) return false;
    md_attr *at = &cs->attrs[cs->n_attrs - 1];
    at->stored = ATTR_IN_FIELD;
    if (a >= 0) cs->attr_of[a] = (int)(cs->n_attrs - 1);
    if (attr_packed_code(cs, at)) cs->profile_repack = true;
    return true;
}

/* Writes the profile as cs->attrs now hold it: the packable attributes into
 * pieces, in their order, the others as fields, and deletes what the hash
 * held in the other form and the pieces no longer needed. */
static void profile_write(md_cstate *cs, md_ops *ops) {
    char piece[PROFILE_PIECE_MAX + 1], name[16], field[300];
    size_t len = 0;
    unsigned k = 0;
    for (size_t i = 0; i < cs->n_attrs; i++) {
        md_attr *at = &cs->attrs[i];
        snprintf(field, sizeof(field), "p:%s", at->key);
        const char *code = attr_packed_code(cs, at); /* one scan of the configured names an attribute */
        if (!code) {
            if (at->stored != ATTR_IN_FIELD) md_ops_add(ops, MD_OP_SET, field, at->value);
            at->stored = ATTR_IN_FIELD;
            continue;
        }
        if (at->stored & ATTR_IN_FIELD) md_ops_add(ops, MD_OP_DEL, field, NULL);
        at->stored = ATTR_IN_PIECE;
        size_t vl = strlen(at->value), cl = strlen(code), need = (len ? 1 : 0) + cl + vl;
        if (len + need > PROFILE_PIECE_MAX) {
            piece[len] = '\0';
            profile_piece_name(name, k++);
            md_ops_add(ops, MD_OP_SET, name, piece);
            len = 0;
        }
        if (len) piece[len++] = PROFILE_SEP;
        memcpy(piece + len, code, cl);
        memcpy(piece + len + cl, at->value, vl);
        len += cl + vl;
    }
    if (len) {
        piece[len] = '\0';
        profile_piece_name(name, k++);
        md_ops_add(ops, MD_OP_SET, name, piece);
    }
    for (unsigned j = k; j < cs->profile_pieces; j++) {
        profile_piece_name(name, j);
        md_ops_add(ops, MD_OP_DEL, name, NULL);
    }
    cs->profile_pieces = k;
    cs->profile_repack = false;
}

/* A decision record's field: "Q<campaign code><time in base 36>", or the
 * older "q:<campaign>:<time>", where the campaign is what lies between "q:"
 * and the last ':' (names may hold ':'). The campaign's code, the length
 * of its name in the older form (0 in the current one) and the time. */
static bool decision_field(const char *f, size_t fl, char code[MD_STATE_CODE_LEN + 1], size_t *campaign_len, int64_t *ts) {
    if (fl > MD_STATE_CODE_LEN + 1 && f[0] == 'Q') {
        for (size_t i = 0; i < MD_STATE_CODE_LEN; i++)
            if (b36_digit(code[i] = f[1 + i]) < 0) return false;
        code[MD_STATE_CODE_LEN] = '\0';
        *campaign_len = 0;
        return parse_b36(f + 1 + MD_STATE_CODE_LEN, fl - 1 - MD_STATE_CODE_LEN, ts);
    }
    if (fl < 4 || f[0] != 'q' || f[1] != ':') return false;
    size_t colon = fl;
    while (colon > 2 && f[colon - 1] != ':') colon--;
    if (colon <= 3) return false; /* no ':' after "q:", or an empty name */
    *campaign_len = colon - 3;
    state_code_n(f + 2, *campaign_len, code);
    return md_parse_i64(f + colon, fl - colon, ts);
}

/* Exactly n hex digits (strtoull was 1% of momentd's CPU here). */
static bool parse_hex64(const char *s, size_t n, uint64_t *out) {
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return false;
        h = h << 4 | (uint64_t)d;
    }
    *out = h;
    return n > 0;
}

/* The watermark of a topic (by its code) and partition, or NULL. */
static md_wmark *find_wmark(md_cstate *cs, const char *code, int32_t partition) {
    for (size_t i = 0; i < cs->n_wm; i++)
        if (cs->wm[i].partition == partition && strcmp(cs->wm[i].code, code) == 0) return &cs->wm[i];
    return NULL;
}

/* A new watermark at offset -1 (its topic buffer kept across resets); NULL
 * when out of memory. */
static md_wmark *add_wmark(md_cstate *cs, const char *code, int32_t partition) {
    if (!grow_slots((void **)&cs->wm, &cs->cap_wm, cs->n_wm + 1, sizeof(md_wmark))) return NULL;
    md_wmark *w = &cs->wm[cs->n_wm++];
    memcpy(w->code, code, MD_STATE_CODE_LEN + 1);
    w->legacy = w->own_field = false;
    w->partition = partition;
    w->offset = -1;
    return w;
}

/* ---- A campaign's fields: "<letter><campaign code>" (camp_letter), each
 * a value of md_camp_st. States before 2026-12-06 named them
 * "<prefix>:<campaign name>" (camp_older_prefix): 15 bytes of a 28-byte
 * field were the campaign's name. The older names are read and renamed by
 * the next flush that writes anything else. ---- */
static const char camp_letter[CF_COUNT] = {'A', 'F', 'L', 'B', 'C', 'Z'};
static const char *const camp_older_prefix[CF_COUNT] = {"a:", "f:", "l:", "lp:", "c:", "z:"};

/* ---- The watermarks, packed: pieces "W", "W1", ... of at most 64 bytes,
 * "<topic code><partition>:<offset>" per topic partition (both numbers in
 * base 36) joined by ';', in the order of code and partition. Their names
 * were 44% of what the watermarks cost (27 of 64 B a customer at
 * bench/run's defaults, bench/experiments/hash-bytes). Beyond
 * WM_PIECES_MAX pieces a watermark keeps a field of its own,
 * "W<code><partition>" = <offset> in decimal, the form before the pieces.
 * ---- */
#define WM_PIECE_MAX 64
#define WM_SEP ';'
#define WM_PIECES_MAX 16 /* md_cstate.wm_piece_known has a bit for each */

/* One entry "<code><partition>:<offset>" of [p, end); false when it is not
 * one. The topic's code comes out long where the namespace's codes know
 * its short one (so both forms of one topic meet as one watermark); a
 * short one they do not know stays as it is (another configuration's
 * topic), and *long_known says the entry named by its long code a topic
 * that has a short one. */
static bool parse_wmark_entry(const md_cstate *cs, const char *p, const char *end, char code[MD_STATE_CODE_LEN + 1], int32_t *partition,
                              int64_t *offset, bool *long_known) {
    size_t cl = code_len_at(p, end, MD_STATE_CODE_LEN);
    const char *colon = cl && (size_t)(end - p) > cl ? memchr(p + cl, ':', (size_t)(end - p) - cl) : NULL;
    int64_t part;
    if (!colon || colon == p + cl || colon + 1 == end) return false;
    const char *known = cl < MD_STATE_CODE_LEN ? topic_long_of(cs->codes, p, cl) : NULL;
    memcpy(code, known ? known : p, known ? MD_STATE_CODE_LEN : cl);
    code[known ? MD_STATE_CODE_LEN : cl] = '\0';
    *long_known = cl == MD_STATE_CODE_LEN && topic_short(cs->codes, code);
    if (!parse_b36(p + cl, (size_t)(colon - p) - cl, &part) || part > INT32_MAX) return false;
    *partition = (int32_t)part;
    return parse_b36(colon + 1, (size_t)(end - colon - 1), offset);
}

/* Piece "W<k>", read whole or not at all. A watermark also read in
 * another form keeps the higher offset, as both field forms do. */
static bool load_wmark_piece(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    unsigned k;
    char code[MD_STATE_CODE_LEN + 1];
    int32_t part;
    int64_t off;
    if (!piece_number(f, fl, WM_PIECES_MAX, &k) || vl == 0) return false;
    /* A piece of at most 64 bytes is read in one pass, undone when an
     * entry does not parse: the watermarks it added go, and those it raised
     * get their offsets back (13 at most: "A0:0;" is five bytes). A longer
     * one, an earlier version's, is checked whole first. A second pass over
     * every piece was 2% of the instructions an event (bench/instructions). */
    struct raised_wmark {
        size_t at;
        int64_t offset;
    } raised[13];
    size_t n_raised = 0, n_wm_before = cs->n_wm;
    bool one_pass = vl <= WM_PIECE_MAX, repack = false;
    for (int pass = one_pass; pass < 2; pass++)
        for (const char *p = v, *e = v + vl; p < e;) {
            const char *sep = memchr(p, WM_SEP, (size_t)(e - p)), *end = sep ? sep : e;
            bool long_known;
            if (!parse_wmark_entry(cs, p, end, code, &part, &off, &long_known) || (sep && sep + 1 == e)) goto undo;
            if (pass) {
                repack |= long_known; /* under its short code along the next write */
                md_wmark *w = find_wmark(cs, code, part);
                if (!w && !(w = add_wmark(cs, code, part))) goto undo;
                if (off > w->offset) {
                    if (one_pass && (size_t)(w - cs->wm) < n_wm_before) {
                        if (n_raised == sizeof(raised) / sizeof(raised[0])) goto undo; /* never (above) */
                        raised[n_raised++] = (struct raised_wmark){(size_t)(w - cs->wm), w->offset};
                    }
                    w->offset = off;
                }
            }
            p = sep ? sep + 1 : e;
        }
    cs->wm_repack |= repack;
    if (k + 1 > cs->wm_pieces) cs->wm_pieces = k + 1;
    cs->wm_piece_known |= UINT64_C(1) << k;
    cs->wm_piece_sum[k] = piece_sum(v, vl);
    if (vl > WM_PIECE_MAX) cs->wm_repack = true;
    return true;
undo:
    while (n_raised > 0) {
        n_raised--;
        cs->wm[raised[n_raised].at].offset = raised[n_raised].offset;
    }
    if (one_pass) cs->n_wm = n_wm_before;
    return false;
}

static int wmark_cmp(const void *a, const void *b) {
    const md_wmark *x = a, *y = b;
    int c = strcmp(x->code, y->code);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Writes the watermarks when one moved (or, along other writes, when one
 * is in another form): the pieces whose text changed, the deletion of those
 * no longer needed and of the other forms' fields. */
static void wmark_flush(md_cstate *cs, md_ops *ops) {
    if (!cs->wm_dirty && !(cs->wm_repack && ops->n > 0)) return;
    for (size_t i = 1; i < cs->n_wm; i++)
        if (wmark_cmp(&cs->wm[i - 1], &cs->wm[i]) > 0) { /* as read they nearly always are: no qsort call */
            qsort(cs->wm, cs->n_wm, sizeof(md_wmark), wmark_cmp);
            break;
        }
    char piece[WM_PIECE_MAX + 1], entry[64], field[300];
    size_t len = 0;
    unsigned k = 0;
    for (size_t i = 0; i < cs->n_wm; i++) {
        md_wmark *w = &cs->wm[i];
        if (w->offset < 0) continue;
        size_t cl = strlen(w->code);
        memcpy(field, "W", 1);
        memcpy(field + 1, w->code, cl);
        md_fmt_i64(field + 1 + cl, w->partition);
        if (w->legacy) {
            size_t tl = strlen(w->topic), at = 0;
            char older[300];
            if (tl > sizeof(older) - 16) tl = sizeof(older) - 16; /* topic names are at most 249 */
            memcpy(older, "w:", 2);
            memcpy(older + 2, w->topic, tl);
            older[2 + tl] = ':';
            at = 3 + tl;
            md_fmt_i64(older + at, w->partition);
            md_ops_add(ops, MD_OP_DEL, older, NULL);
            w->legacy = false;
        }
        const char *sc = cl == MD_STATE_CODE_LEN ? topic_short(cs->codes, w->code) : NULL, *code = sc ? sc : w->code;
        size_t n = strlen(code);
        memcpy(entry, code, n);
        n += fmt_b36(entry + n, (uint64_t)w->partition);
        entry[n++] = ':';
        n += fmt_b36(entry + n, (uint64_t)w->offset);
        if (len + (len ? 1 : 0) + n > WM_PIECE_MAX) {
            if (k + 1 >= WM_PIECES_MAX) { /* the pieces are full: a field of its own */
                /* by its long code (a short one would read as a piece's
                 * name); one known only by a short code, another
                 * configuration's topic, is not kept */
                if (cl == MD_STATE_CODE_LEN) {
                    md_cs_set_int(ops, field, w->offset);
                    w->own_field = true;
                }
                continue;
            }
            piece_put(ops, 'W', k++, piece, len, cs->wm_pieces, &cs->wm_piece_known, cs->wm_piece_sum);
            len = 0;
        }
        if (w->own_field) md_ops_add(ops, MD_OP_DEL, field, NULL);
        w->own_field = false;
        if (len) piece[len++] = WM_SEP;
        memcpy(piece + len, entry, n);
        len += n;
    }
    if (len) piece_put(ops, 'W', k++, piece, len, cs->wm_pieces, &cs->wm_piece_known, cs->wm_piece_sum);
    pieces_drop_from(ops, 'W', k, cs->wm_pieces, &cs->wm_piece_known);
    cs->wm_pieces = k;
    cs->wm_dirty = cs->wm_repack = false;
}

/* The campaign whose short code the MD_STATE_CODE_LEN bytes at code are, or -1. */
static int campaign_by_code(const md_cstate *cs, const char *code) {
    for (size_t i = 0; i < cs->cfg->n_campaigns; i++)
        if (memcmp(cs->r->campaigns[i].code, code, MD_STATE_CODE_LEN) == 0) return (int)i;
    return -1;
}

/* Whether field f is a campaign's field: *campaign its index (-1 for one
 * not configured), *cf which (CF_*), *older whether under its older name. */
static bool camp_field_of(const md_cstate *cs, const char *f, size_t fl, int *campaign, int *cf, bool *older) {
    for (int k = 0; k < CF_COUNT; k++) {
        *cf = k;
        if (fl == 1 + MD_STATE_CODE_LEN && f[0] == camp_letter[k]) {
            *campaign = campaign_by_code(cs, f + 1);
            *older = false;
            return true;
        }
        /* the first byte first: every audit run and decision record of
         * every decode comes through here, and none is an older name */
        if (f[0] != camp_older_prefix[k][0]) continue;
        size_t pl = strlen(camp_older_prefix[k]);
        if (fl > pl && memcmp(f, camp_older_prefix[k], pl) == 0) {
            *campaign = campaign_by_name(cs->cfg, f + pl, fl - pl);
            *older = true;
            return true;
        }
    }
    return false;
}

/* Writes campaign c's field cf (v NULL: deletes it) under its current name;
 * its older name, if the hash has it, goes. */
static void camp_put(md_cstate *cs, md_ops *ops, int c, int cf, const char *v) {
    char field[300];
    field[0] = camp_letter[cf];
    memcpy(field + 1, cs->r->campaigns[c].code, MD_STATE_CODE_LEN + 1);
    md_ops_add(ops, v ? MD_OP_SET : MD_OP_DEL, field, v);
    if (cs->camps[c].older & (1u << cf)) {
        snprintf(field, sizeof(field), "%s%s", camp_older_prefix[cf], cs->cfg->campaigns[c].name);
        md_ops_add(ops, MD_OP_DEL, field, NULL);
        cs->camps[c].older &= (uint8_t) ~(1u << cf);
    }
}

/* A time or a count; 0 (none) is deleted. */
static void camp_put_int(md_cstate *cs, md_ops *ops, int c, int cf, int64_t v) {
    char buf[24];
    md_fmt_i64(buf, v);
    camp_put(cs, ops, c, cf, v ? buf : NULL);
}

static void camp_put_fatigue(md_cstate *cs, md_ops *ops, int c) {
    const md_camp_st *st = &cs->camps[c];
    char val[48];
    snprintf(val, sizeof(val), "%lld,%" PRId64, (long long)llround(st->fatigue * 1000), st->fatigue_ts);
    camp_put(cs, ops, c, CF_FATIGUE, st->fatigue > 0 ? val : NULL);
}

/* The fields an older state holds under their older names, renamed. */
static void camp_rename(md_cstate *cs, md_ops *ops, int c) {
    const md_camp_st *st = &cs->camps[c];
    for (int cf = 0; cf < CF_COUNT; cf++) {
        if (!(st->older & (1u << cf))) continue;
        if (cf == CF_DISARMED) camp_put(cs, ops, c, cf, st->disarmed ? "0" : NULL);
        else if (cf == CF_FATIGUE) camp_put_fatigue(cs, ops, c);
        else camp_put_int(cs, ops, c, cf,
                          cf == CF_LAST ? st->last_contact : cf == CF_PREV ? st->prev_contact : cf == CF_CONV ? st->last_conversion : st->last_stale);
    }
}

/* A contact log entry's field: "K<campaign code><time in base 36>", or the
 * older "k:<time>:<campaign>". */
static void contact_field(const md_cstate *cs, const md_contact *k, bool older, char *out, size_t size) {
    if (older) {
        snprintf(out, size, "k:%" PRId64 ":%s", k->ts, cs->cfg->campaigns[k->campaign].name);
        return;
    }
    out[0] = 'K';
    memcpy(out + 1, cs->r->campaigns[k->campaign].code, MD_STATE_CODE_LEN);
    fmt_b36(out + 1 + MD_STATE_CODE_LEN, (uint64_t)(k->ts < 0 ? 0 : k->ts));
}

bool md_parse_f64(const char *s, size_t n, double *out) {
    /* Powers of ten a double holds exactly. */
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = n > 0 && s[0] == '-', point = false;
    size_t digits = 0, significant = 0, decimals = 0; /* significant: from the first that is not 0 */
    int64_t m = 0;
    for (size_t i = neg; i < n; i++) {
        if (s[i] == '.' && !point) {
            point = true;
            continue;
        }
        if (s[i] < '0' || s[i] > '9' || (point && ++decimals > 22)) return false;
        digits++;
        if ((m > 0 || s[i] != '0') && ++significant > 15) return false;
        m = m * 10 + (s[i] - '0');
    }
    if (digits == 0 || (point && decimals == 0)) return false;
    double v = (double)m / pow10[decimals]; /* both exact: one rounding, strtod's */
    *out = neg ? -v : v;
    return true;
}

/* A balance as T (and "bal" before it) stores it: "<balance>" (at the
 * newest payment) or "<balance>,<its time ms>", the time in base 36 in T
 * (b36), in decimal in "bal". */
static bool parse_balance(md_cstate *cs, const char *v, size_t vl, double *balance, int64_t *ts, bool *timed, bool b36) {
    char buf[sizeof(cs->balance_text)];
    const char *comma = memchr(v, ',', vl);
    size_t n = comma ? (size_t)(comma - v) : vl;
    if (n == 0 || n >= sizeof(buf)) return false;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (!md_parse_f64(buf, n, balance)) {
        char *end;
        *balance = strtod(buf, &end);
        if (*end || !isfinite(*balance)) return false;
    }
    *timed = comma != NULL;
    if (comma && !(b36 ? parse_b36_i64(comma + 1, vl - n - 1, ts) : md_parse_i64(comma + 1, vl - n - 1, ts))) return false;
    memcpy(cs->balance_loaded, buf, n + 1); /* the text, written back as it was (taken by the caller) */
    return true;
}

void md_cstate_load_field(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    int64_t x, y;
    double b;
    const md_config *cfg = cs->cfg;
    cs->exists = true;
    if (fl == 0) goto bad;
    if (fl == 3 && memcmp(f, "bal", 3) == 0) { /* the older form of T's balance: "<balance>[,<its time ms>]" */
        bool timed = false;
        if (!parse_balance(cs, v, vl, &b, &y, &timed, false)) goto bad;
        cs->balance_older = true; /* into T, along the next write */
        if (cs->balance_in_t) return; /* T's is the newer */
        memcpy(cs->balance_text, cs->balance_loaded, sizeof(cs->balance_text));
        cs->has_balance = true;
        cs->balance = b;
        cs->balance_ts = timed ? y : 0;
        cs->balance_at_payment = !timed; /* "<balance>": at the newest payment */
        return;
    }
    if (fl == 1 && f[0] == 'T') { /* "[.]<t0>,<t1>,<t2>[,<balance>[,<its time>]]": times in base 36, "" for none */
        const char *p = v, *e = v + vl, *c = NULL;
        bool marked = vl > 0 && v[0] == OUTBOX_CLEAR_MARK;
        p += marked;
        int64_t t[MD_EVENT_TYPE_COUNT];
        for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++) {
            c = memchr(p, ',', (size_t)(e - p));
            if (k < MD_EVENT_TYPE_COUNT - 1 && !c) goto bad;
            size_t n = (size_t)((c ? c : e) - p);
            t[k] = 0;
            if (n && !parse_b36(p, n, &t[k])) goto bad;
            p = c ? c + 1 : e;
        }
        bool timed = false;
        if (c && !parse_balance(cs, p, (size_t)(e - p), &b, &y, &timed, true)) goto bad;
        for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++) {
            if (t[k] > cs->last_ts[k]) cs->last_ts[k] = t[k]; /* with older fields too: the later */
            if (t[k] > cs->newest_ts) cs->newest_ts = t[k];
        }
        if (marked) cs->outbox_clear = cs->t_marked = true;
        if (c) { /* over a balance "bal" gave */
            memcpy(cs->balance_text, cs->balance_loaded, sizeof(cs->balance_text));
            cs->has_balance = cs->balance_in_t = true;
            cs->balance = b;
            cs->balance_ts = timed ? y : 0;
            cs->balance_at_payment = !timed;
        }
        return;
    }
    if (f[0] == 'H') { /* H<k>: a piece of the packed series */
        if (!load_series_piece(cs, f, fl, v, vl)) goto bad;
        return;
    }
    if (f[0] == 'S' || f[0] == 's') { /* S<code> = a series of its own; S<hash> and s<hash>: the older names (md_series_field) */
        char form;
        int si = series_by_field(cs->r, f, fl, &form);
        if (si < 0) return; /* a series no window of this configuration reads: left to expire */
        md_series_st *s = &cs->series[si];
        /* The newest form the hash holds is read, whatever the order: a
         * piece's entry, the field of its own, the older packed name, the
         * decimal one. The others' names are deleted by the next flush (the
         * older ones at once, a field of its own along other writes). An
         * older series that does not parse is left as it was. */
        static const char rank[128] = {['H'] = 4, ['S'] = 3, ['L'] = 2, ['s'] = 1};
        if (rank[(unsigned char)s->form] > rank[(unsigned char)form]) {
            if (form == 'S') {
                s->own_field = cs->series_repack = true;
            } else {
                s->older_names |= form == 'L' ? SERIES_OLDER_PACKED : SERIES_OLDER_DECIMAL;
                s->dirty = true;
            }
            return;
        }
        if (!series_decode(s, v, vl, form == 's')) goto bad;
        if (form == 's') s->text_ok = false; /* decimal: written anew */
        else series_keep_text(cs, s, v, vl);
        if (form != 'S') {
            s->older_names |= form == 'L' ? SERIES_OLDER_PACKED : SERIES_OLDER_DECIMAL;
        } else {
            s->own_field = true;
            if (strlen(series_code(cs, (size_t)si)) + vl <= SERIES_PIECE_MAX) cs->series_repack = true; /* an earlier version's: into a piece */
        }
        s->form = form;
        s->dirty |= s->older_names != 0;
        return;
    }
    if (fl == 1 && f[0] == 'd') {
        if (!md_parse_i64(v, vl, &x)) goto bad;
        cs->due = cs->due_loaded = x;
        return;
    }
    if (fl == 1 && f[0] == 'v') {
        if (!md_parse_i64(v, vl, &x)) goto bad;
        cs->version = x;
        return;
    }
    if (fl == 2 && f[0] == 't' && f[1] >= '0' && f[1] < '0' + MD_EVENT_TYPE_COUNT) { /* older: one field a type */
        if (!md_parse_i64(v, vl, &x)) goto bad;
        if (x > cs->last_ts[f[1] - '0']) cs->last_ts[f[1] - '0'] = x;
        if (x > cs->newest_ts) cs->newest_ts = x; /* the newest event is the newest of its type */
        cs->times_older = cs->times_dirty = true; /* rewritten as "T" by the next flush */
        return;
    }
    if (fl == 1 && f[0] == 'n') { /* written by versions before 2026-12: the same as the largest t<k> */
        if (!md_parse_i64(v, vl, &x)) goto bad;
        if (x > cs->newest_ts) cs->newest_ts = x;
        return;
    }
    if (f[0] == 'W' && fl <= 3) { /* a piece of the watermarks (wmark_flush) */
        if (!load_wmark_piece(cs, f, fl, v, vl)) goto bad;
        return;
    }
    if ((fl > 2 && f[0] == 'w' && f[1] == ':') || (fl > MD_STATE_CODE_LEN + 1 && f[0] == 'W')) {
        /* W<topic code><partition> and w:<topic>:<partition>: fields of their own, packed along the next write */
        bool legacy = f[0] == 'w';
        char code[MD_STATE_CODE_LEN + 1];
        const char *topic = f + 2, *part;
        size_t topic_len = 0;
        if (legacy) {
            const char *last = NULL;
            for (size_t i = fl; i-- > 2;)
                if (f[i] == ':') {
                    last = f + i;
                    break;
                }
            if (!last || last == topic) goto bad;
            topic_len = (size_t)(last - topic);
            state_code_n(topic, topic_len, code);
            part = last + 1;
        } else {
            for (size_t i = 0; i < MD_STATE_CODE_LEN; i++)
                if (b36_digit(code[i] = f[1 + i]) < 0) goto bad;
            code[MD_STATE_CODE_LEN] = '\0';
            part = f + 1 + MD_STATE_CODE_LEN;
        }
        if (!md_parse_i64(part, fl - (size_t)(part - f), &x) || x < 0 || x > INT32_MAX || !md_parse_i64(v, vl, &y)) goto bad;
        md_wmark *e = find_wmark(cs, code, (int32_t)x);
        if (!e) { /* the usual case: a watermark seen once */
            if (!(e = add_wmark(cs, code, (int32_t)x))) goto bad;
            e->offset = y;
        } else if (y > e->offset) { /* both forms: the higher offset was applied */
            e->offset = y;
        }
        if (legacy && !put_str(&e->topic, &e->topic_cap, topic, topic_len)) goto bad;
        e->legacy |= legacy;
        e->own_field |= !legacy;
        cs->wm_repack = true;
        return;
    }
    if (f[0] == 'G' && fl <= 3) { /* a piece of the event-id guard (guard_piece_value) */
        if (!load_guard_piece(cs, f, fl, v, vl)) goto bad;
        return;
    }
    if ((fl == 17 && (f[0] == 'i' || f[0] == 'e')) || (f[0] == 'j' && fl >= 2 && fl <= 14) ||
        (f[0] == 'J' && fl >= 2 && fl <= 11)) { /* the event-id guard (seen_field) */
        uint64_t h;
        int64_t unit = f[0] == 'J' ? MD_HOUR_MS : f[0] == 'j' ? 1000 : 1;
        if (f[0] == 'J' || f[0] == 'j' ? !parse_b36_u64(f + 1, fl - 1, &h) : !parse_hex64(f + 1, 16, &h)) goto bad;
        if (!md_parse_i64(v, vl, &x) || x < 0 || x > INT64_MAX / unit) goto bad;
        if (!grow((void **)&cs->seen, &cs->cap_seen, cs->n_seen + 1, sizeof(md_seen))) goto bad;
        cs->seen[cs->n_seen] = (md_seen){h, x * unit, f[0], 0};
        cs->n_legacy_seen += f[0] == 'e';
        cs->n_seen++;
        return;
    }
    if (fl > 2 && f[0] == 'p' && f[1] == ':') {
        if (!load_profile_field(cs, f + 2, fl - 2, v, vl)) goto bad;
        return;
    }
    if (f[0] == 'P') { /* a piece of the packed profile */
        if (!load_profile_piece(cs, f, fl, v, vl)) goto bad;
        return;
    }
    int camp, cf;
    bool older;
    if (camp_field_of(cs, f, fl, &camp, &cf, &older)) {
        if (camp < 0) return; /* a campaign no longer configured: left to expire */
        md_camp_st *st = &cs->camps[camp];
        if (older && (st->current & (1u << cf))) { /* both names: the current one is read, the older goes */
            st->older |= (uint8_t)(1u << cf);
            return;
        }
        double fatigue = 0;
        if (cf == CF_FATIGUE) {
            const char *comma = memchr(v, ',', vl);
            if (!comma) { /* an older state: a count of units, never decayed */
                if (!md_parse_i64(v, vl, &x)) goto bad;
                fatigue = (double)(x < 0 ? 0 : x > 1000 ? 1000 : x);
                y = 0;
            } else {
                if (!md_parse_i64(v, (size_t)(comma - v), &x) || !md_parse_i64(comma + 1, vl - (size_t)(comma - v) - 1, &y) || x < 0) goto bad;
                fatigue = (double)(x > 1000000 ? 1000000 : x) / 1000.0;
            }
        } else if (!md_parse_i64(v, vl, &x)) {
            goto bad; /* left as it was, under whichever name */
        }
        if (cf == CF_FATIGUE) {
            st->fatigue = fatigue;
            st->fatigue_ts = y;
        } else if (cf == CF_DISARMED) st->disarmed = x == 0;
        else if (cf == CF_LAST) st->last_contact = x;
        else if (cf == CF_PREV) st->prev_contact = x;
        else if (cf == CF_CONV) st->last_conversion = x;
        else st->last_stale = x;
        if (older) st->older |= (uint8_t)(1u << cf);
        else st->current |= (uint8_t)(1u << cf);
        return;
    }
    if (fl > 2 && f[0] == 'g' && f[1] == ':') { /* g:<trigger id> = fired,holdout,bits,channel,campaign */
        char buf[200];
        if (fl - 2 >= MD_TRIGGER_ID_LEN || vl >= sizeof(buf)) goto bad;
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        char *part[9], *save = NULL;
        int np = 0;
        for (char *tok = strtok_r(buf, ",", &save); tok && np < 9; tok = strtok_r(NULL, ",", &save)) part[np++] = tok;
        int64_t fired, hold, bits, p_milli = -1, gap = MD_GAP_UNKNOWN;
        if ((np != 5 && np != 7 && np < 8) || !md_parse_i64(part[0], strlen(part[0]), &fired) || !md_parse_i64(part[1], strlen(part[1]), &hold) ||
            !md_parse_i64(part[2], strlen(part[2]), &bits) || bits < 0 || bits > 0xFFFFFFFF)
            goto bad;
        /* Older records have no model p and version (5 parts), or no gap (7);
         * parts after the gap (a later version's) are left alone. */
        if (np >= 8 && (!md_parse_i64(part[7], strlen(part[7]), &gap) || gap < MD_GAP_FIRST || gap > 100000)) goto bad;
        if (np >= 7 && (!md_parse_i64(part[5], strlen(part[5]), &p_milli) || p_milli < 0 || p_milli > 1000 || strlen(part[6]) == 0 ||
                        strlen(part[6]) > MD_MODEL_VERSION_MAX))
            goto bad;
        if (!grow((void **)&cs->trecs, &cs->cap_trecs, cs->n_trecs + 1, sizeof(md_trec))) goto bad;
        md_trec *t = &cs->trecs[cs->n_trecs++];
        memcpy(t->id, f + 2, fl - 2);
        t->id[fl - 2] = '\0';
        t->fired_ms = fired;
        t->holdout = hold != 0;
        t->bits = (unsigned)bits;
        t->channel = channel_by_name(cfg, part[3], strlen(part[3]));
        t->campaign = campaign_by_name(cfg, part[4], strlen(part[4]));
        t->p_milli = (int)p_milli;
        snprintf(t->version, sizeof(t->version), "%s", np >= 7 ? part[6] : "");
        t->gap_days = (int)gap;
        return;
    }
    if ((fl > 2 && (f[0] == 'r' || f[0] == 'R') && f[1] == ':') || (fl > MD_STATE_CODE_LEN + 1 && f[0] == 'R')) {
        /* the decision audit: R<campaign code><from>; R:<campaign>:<from> and r:<campaign>:<from> (older) */
        char form = f[1] != ':' ? 'R' : f[0] == 'r' ? 'r' : ':';
        size_t from_at, campaign_len = 0;
        if (form == 'R') {
            from_at = 1 + MD_STATE_CODE_LEN;
        } else {
            from_at = fl;
            while (from_at > 2 && f[from_at - 1] != ':') from_at--;
            if (from_at <= 3) goto bad;
            campaign_len = from_at - 3;
        }
        int64_t from, last, p;
        const char *c1 = memchr(v, ',', vl), *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(v + vl - c1 - 1)) : NULL;
        if (!c2 || !md_parse_i64(c2 + 1, (size_t)(v + vl - c2 - 1), &p)) goto bad;
        if (form == 'r' ? !md_parse_i64(f + from_at, fl - from_at, &from) || !md_parse_i64(c1 + 1, (size_t)(c2 - c1 - 1), &last)
                        : !parse_b36(f + from_at, fl - from_at, &from) || !parse_b36(c1 + 1, (size_t)(c2 - c1 - 1), &last))
            goto bad;
        if (form != 'r') last += from;
        int outcome = audit_outcome_of(v, (size_t)(c1 - v), form == 'r');
        int c = -1;
        if (form == 'R') {
            for (size_t i = 0; i < cfg->n_campaigns && c < 0; i++)
                if (memcmp(cs->r->campaigns[i].code, f + 1, MD_STATE_CODE_LEN) == 0) c = (int)i;
        } else {
            c = campaign_by_name(cfg, f + 2, campaign_len);
        }
        if (c < 0 || outcome < 0) return; /* a campaign or outcome this version does not know: expires with the key */
        if (!grow((void **)&cs->audits, &cs->cap_audits, cs->n_audits + 1, sizeof(md_audit))) goto bad;
        cs->audits[cs->n_audits++] = (md_audit){c, from, last, outcome, (int)p, form};
        return;
    }
    if ((fl > 2 && f[0] == 'q' && f[1] == ':') || (fl > MD_STATE_CODE_LEN + 1 && f[0] == 'Q')) {
        /* Q<campaign code><time> (q:<campaign>:<time>, older) = <kind><converted>,<schema>,<values> */
        size_t cl;
        char code[MD_STATE_CODE_LEN + 1];
        if (!decision_field(f, fl, code, &cl, &x) || vl < 3 || v[2] != ',' || (v[1] != '0' && v[1] != '1')) goto bad;
        int c = -1;
        for (size_t i = 0; i < cfg->n_campaigns && c < 0; i++)
            if (memcmp(cs->r->campaigns[i].code, code, MD_STATE_CODE_LEN) == 0) c = (int)i;
        if (c < 0) return; /* a campaign no longer configured: expires with the key */
        if (!grow((void **)&cs->drecs, &cs->cap_drecs, cs->n_drecs + 1, sizeof(md_drec))) goto bad;
        md_drec *d = &cs->drecs[cs->n_drecs];
        *d = (md_drec){c, x, v[0], v[1] == '1', text_dup(cs, v + 3, vl - 3), f[0]};
        if (!d->rest) goto bad;
        cs->n_drecs++;
        return;
    }
    if ((fl > 2 && f[0] == 'k' && f[1] == ':') || (fl > 1 + MD_STATE_CODE_LEN && f[0] == 'K')) {
        /* K<campaign code><time in base 36>, or the older k:<time>:<campaign> */
        int c = -1;
        if (f[0] == 'K') {
            if (!parse_b36(f + 1 + MD_STATE_CODE_LEN, fl - 1 - MD_STATE_CODE_LEN, &x)) goto bad;
            c = campaign_by_code(cs, f + 1);
        } else {
            const char *colon = memchr(f + 2, ':', fl - 2);
            if (!colon || !md_parse_i64(f + 2, (size_t)(colon - f - 2), &x)) goto bad;
            c = campaign_by_name(cfg, colon + 1, fl - (size_t)(colon - f) - 1);
        }
        if (!grow((void **)&cs->contacts, &cs->cap_contacts, cs->n_contacts + 1, sizeof(md_contact))) goto bad;
        md_contact *k = &cs->contacts[cs->n_contacts++];
        k->ts = x;
        k->campaign = c;
        k->channel = channel_by_name(cfg, v, vl);
        k->older = f[0] == 'k';
        return;
    }
    if (fl == 2 && f[0] == 'x' && f[1] == '0') { /* the mark's earlier form */
        cs->outbox_clear = cs->x0_field = true;
        return;
    }
    if (fl == 2 && f[0] == 'f' && f[1] == 'g') { /* the erasure's tombstone (forget.lua writes it) */
        if (!md_parse_i64(v, vl, &x) || x <= 0) goto bad;
        cs->forgotten_at = x;
        cs->exists = true;
        return;
    }
    if (fl > 3 && memcmp(f, "dn:", 3) == 0) { /* dn:<channel> = when listed (momentd dnc) */
        if (fl == 4 && f[3] == '*') cs->dnc_mask = ~UINT64_C(0);
        for (size_t ch = 0; ch < cs->cfg->n_channels && ch < 64; ch++)
            if (strlen(cs->cfg->channels[ch].name) == fl - 3 && memcmp(cs->cfg->channels[ch].name, f + 3, fl - 3) == 0)
                cs->dnc_mask |= UINT64_C(1) << ch;
        return; /* a channel no longer configured: kept, and read again if it comes back */
    }
    if (fl > 3 && memcmp(f, "ls:", 3) == 0) { /* ls:<campaign> = include | exclude (momentd list) */
        for (size_t c = 0; c < cs->cfg->n_campaigns; c++)
            if (strlen(cs->cfg->campaigns[c].name) == fl - 3 && memcmp(cs->cfg->campaigns[c].name, f + 3, fl - 3) == 0) {
                if (vl == 7 && memcmp(v, "include", 7) == 0) cs->camps[c].list = 'i';
                else if (vl == 7 && memcmp(v, "exclude", 7) == 0) cs->camps[c].list = 'e';
                else goto bad;
            }
        return;
    }
    if (fl == 2 && memcmp(f, "pn", 2) == 0) {
        if (!md_parse_i64(v, vl, &x)) goto bad;
        cs->pinned = x > 0;
        return;
    }
    if (fl == 2 && (memcmp(f, "cb", 2) == 0 || memcmp(f, "bo", 2) == 0 || memcmp(f, "oo", 2) == 0)) {
        if (!md_parse_i64(v, vl, &x)) goto bad;
        if (f[0] == 'c') cs->complaint_until = x;
        else if (f[0] == 'b') cs->blackout_until = x;
        else cs->opted_out = x != 0;
        return;
    }
    return; /* unknown field: written by a newer version, left alone */
bad:
    cs->bad_fields++;
}

void md_cstate_load_outbox(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    cs->exists = true;
    if (fl > 1 && f[0] == '+') { /* a funnel increment: campaign \t day \t field \t delta */
        md_incr in;
        char buf[256];
        if (fl >= sizeof(in.name) || vl >= sizeof(buf)) goto bad;
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        char *part[4], *save = NULL;
        int np = 0;
        for (char *tok = strtok_r(buf, "\t", &save); tok && np < 4; tok = strtok_r(NULL, "\t", &save)) part[np++] = tok;
        if (np != 4 || strlen(part[0]) >= sizeof(in.campaign) || strlen(part[1]) >= sizeof(in.day) ||
            strlen(part[2]) >= sizeof(in.field) || !md_parse_i64(part[3], strlen(part[3]), &in.delta))
            goto bad;
        memcpy(in.name, f, fl);
        in.name[fl] = '\0';
        snprintf(in.campaign, sizeof(in.campaign), "%s", part[0]);
        snprintf(in.day, sizeof(in.day), "%s", part[1]);
        snprintf(in.field, sizeof(in.field), "%s", part[2]);
        if (!grow((void **)&cs->incrs, &cs->cap_incrs, cs->n_incrs + 1, sizeof(md_incr))) goto bad;
        cs->incrs[cs->n_incrs++] = in;
        return;
    }
    {
        const char *nl = memchr(v, '\n', vl);
        if (!nl || fl == 0 || fl >= MD_TRIGGER_ID_LEN) goto bad;
        if (!grow((void **)&cs->pending, &cs->cap_pending, cs->n_pending + 1, sizeof(md_pending))) goto bad;
        md_pending *p = &cs->pending[cs->n_pending];
        memcpy(p->id, f, fl);
        p->id[fl] = '\0';
        p->topic = dupn(v, (size_t)(nl - v));
        p->payload = dupn(nl + 1, vl - (size_t)(nl - v) - 1);
        if (!p->topic || !p->payload) {
            free(p->topic);
            free(p->payload);
            goto bad;
        }
        cs->n_pending++;
        return;
    }
    return; /* unknown field: written by a newer version, left alone */
bad:
    cs->bad_fields++;
}

/* ------------------------------------------------------------------------- */
/* Recording helpers                                                          */

void md_cs_bucket_add(md_cstate *cs, md_ops *ops, int series, int64_t bucket, int64_t delta) {
    md_series_st *s = &cs->series[series];
    size_t pos;
    md_bucket *b = series_find(s, bucket, &pos);
    if (!series_set(s, bucket, (b ? b->v : 0) + delta)) {
        ops->oom = true; /* the batch is retried; nothing half-recorded is applied */
        return;
    }
    s->dirty = true;
}

/* Drops buckets, dedupe entries and contact records that no rule can read
 * any more. Bounded by what expired, so amortised constant per event. */
/* A decision record's field in its form (decision_field): derived, never
 * stored. A campaign's name in each of up to twelve records a campaign was
 * a tenth of a customer's memory. */
static void drec_field(const md_cstate *cs, const md_drec *d, char *out, size_t n) {
    if (d->form == 'q') {
        snprintf(out, n, "q:%s:%" PRId64, cs->cfg->campaigns[d->campaign].name, d->ts);
    } else if (n > MD_STATE_CODE_LEN + 14) {
        out[0] = 'Q';
        memcpy(out + 1, cs->r->campaigns[d->campaign].code, MD_STATE_CODE_LEN);
        fmt_b36(out + 1 + MD_STATE_CODE_LEN, (uint64_t)(d->ts < 0 ? 0 : d->ts));
    }
}

void md_cs_evict(md_cstate *cs, md_ops *ops, int64_t now_ms) {
    char field[64];
    for (size_t si = 0; si < cs->r->n_series; si++) {
        const md_rseries *rs = &cs->r->series[si];
        md_series_st *s = &cs->series[si];
        int64_t oldest_kept = (now_ms - rs->retention_ms) / rs->granularity_ms;
        size_t drop = 0;
        while (drop < s->n && s->b[drop].id < oldest_kept) drop++;
        if (drop) {
            memmove(s->b, s->b + drop, (s->n - drop) * sizeof(md_bucket));
            s->n -= drop;
            s->dirty = true;
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < cs->n_contacts; i++) {
        md_contact *k = &cs->contacts[i];
        if (k->ts < now_ms - cs->r->max_cap_span_ms) {
            /* Contacts of unconfigured campaigns have an unknown name; they expire with the key. */
            if (k->campaign >= 0) {
                contact_field(cs, k, k->older, field, sizeof(field));
                md_ops_add(ops, MD_OP_DEL, field, NULL);
                continue;
            }
        }
        cs->contacts[keep++] = *k;
    }
    cs->n_contacts = keep;
    keep = 0;
    for (size_t i = 0; i < cs->n_trecs; i++) {
        md_trec *t = &cs->trecs[i];
        if (t->fired_ms < now_ms - cs->r->trigger_record_ms) {
            snprintf(field, sizeof(field), "g:%s", t->id);
            md_ops_add(ops, MD_OP_DEL, field, NULL);
            continue;
        }
        cs->trecs[keep++] = *t;
    }
    cs->n_trecs = keep;
    keep = 0;
    for (size_t i = 0; i < cs->n_drecs; i++) {
        md_drec *d = &cs->drecs[i];
        if (d->ts < now_ms - cs->r->decision_keep_ms) {
            char qfield[128];
            drec_field(cs, d, qfield, sizeof(qfield));
            md_ops_add(ops, MD_OP_DEL, qfield, NULL);
            continue; /* its text stays in the chunk until the next load */
        }
        cs->drecs[keep++] = *d;
    }
    cs->n_drecs = keep;
    keep = 0;
    for (size_t i = 0; i < cs->n_audits; i++) {
        md_audit *a = &cs->audits[i];
        if (a->last < now_ms - cs->r->audit_keep_ms) {
            char rfield[128];
            audit_field(cs, a, rfield);
            md_ops_add(ops, MD_OP_DEL, rfield, NULL);
            continue;
        }
        cs->audits[keep++] = *a;
    }
    cs->n_audits = keep;
}

/* An outbox write: from now on the outbox must be read again (T is
 * written without the mark by the flush, in the same apply). */
static void outbox_add(md_cstate *cs, md_ops *ops, const char *field, const char *value) {
    md_ops_add(ops, MD_OP_OUTBOX_SET, field, value);
    if (cs->x0_field) md_ops_add(ops, MD_OP_DEL, "x0", NULL);
    cs->outbox_clear = cs->x0_field = false;
}

bool md_cstate_outbox_clear(const md_cstate *cs) { return cs->outbox_clear; }

bool md_cstate_probe_outbox_clear(md_cstate *cs, const char *f, size_t fl, const char *v, size_t vl) {
    if (!(fl == 1 && f[0] == 'T') && !(fl == 2 && f[0] == 'x' && f[1] == '0')) return false;
    cs->outbox_clear = false;
    md_cstate_load_field(cs, f, fl, v, vl);
    return cs->outbox_clear;
}

/* b as "%.15g" writes it when b is a whole number of cents under 10^13
 * (a balance as payments give it: "109.33", "-12.5", "100"), without
 * printf: b is then the double nearest cents / 100, which has at most 15
 * digits, so "%.15g" gives those digits and they read back as b. false,
 * out untouched, for any other b (negative zero among them): the caller
 * formats it with printf. A new balance is formatted at a third of the
 * events, and printf's float path, with the strtod that checks it, was
 * among the flush's costliest calls (BENCHMARKS.md). */
static bool fmt_cents(char *out, size_t size, double b) {
    if (!(fabs(b) < 1e13) || size < 24) return false;
    long long cents = llround(b * 100);
    if ((double)cents / 100.0 != b || (cents == 0 && signbit(b))) return false;
    char digits[24];
    size_t n = 0;
    unsigned long long u = cents < 0 ? 0ULL - (unsigned long long)cents : (unsigned long long)cents;
    do digits[n++] = (char)('0' + u % 10);
    while (u /= 10);
    while (n < 3) digits[n++] = '0'; /* at least "0.0c" */
    size_t w = 0, frac_end = 0; /* digits[0..1] are the cents, digits[2..] the whole part */
    if (cents < 0) out[w++] = '-';
    for (size_t i = n; i-- > 2;) out[w++] = digits[i];
    if (digits[0] != '0') frac_end = 2;
    else if (digits[1] != '0') frac_end = 1;
    if (frac_end) {
        out[w++] = '.';
        out[w++] = digits[1];
        if (frac_end == 2) out[w++] = digits[0];
    }
    out[w] = '\0';
    return true;
}

/* T, once a batch: every event moves a time. One field of the three
 * types' times (in base 36: 8 digits, not 13) took a third less of a
 * customer's memory than three; the balance in it saves its own name and
 * entry (7 B), and a payment's apply writes one field where it wrote two. The balance's time is
 * left out when it is the newest payment's, as it nearly always is. An
 * older state's "t<type>" and "bal" fields are deleted by the write that
 * moves them into T, along other writes for "bal" alone. */
static void flush_times(md_cstate *cs, md_ops *ops) {
    /* The mark moves with the outbox's state, at once (the apply writes the
     * outbox, or writes other fields anyway); from an earlier "x0" only
     * along other writes, like the balance from "bal". */
    bool mark_moves = cs->outbox_clear != cs->t_marked && !cs->x0_field;
    if (!cs->times_dirty && !cs->balance_dirty && !((cs->balance_older || cs->x0_field) && ops->n > 0) && !mark_moves) return;
    char val[160];
    size_t n = 0;
    if (cs->outbox_clear) val[n++] = OUTBOX_CLEAR_MARK;
    cs->t_marked = cs->outbox_clear;
    for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++) {
        if (k) val[n++] = ',';
        if (cs->last_ts[k] > 0) n += fmt_b36(val + n, (uint64_t)cs->last_ts[k]);
    }
    if (cs->has_balance) {
        int64_t at = md_cs_balance_ts(cs);
        /* The shortest text that reads back as the same double ("92.85",
         * not "92.849999999999994"): it is stored for every customer. */
        val[n++] = ',';
        if (!cs->balance_text[0] && !fmt_cents(cs->balance_text, sizeof(cs->balance_text), cs->balance)) /* a new balance: formatted once, not at every write of T */
            for (int prec = 15; prec <= 17; prec++) {
                snprintf(cs->balance_text, sizeof(cs->balance_text), "%.*g", prec, cs->balance);
                if (strtod(cs->balance_text, NULL) == cs->balance) break;
            }
        size_t bl = strlen(cs->balance_text);
        memcpy(val + n, cs->balance_text, bl);
        n += bl;
        cs->balance_at_payment = at == cs->last_ts[MD_EVENT_PAYMENT];
        cs->balance_ts = at;
        if (!cs->balance_at_payment) {
            val[n++] = ',';
            n += fmt_b36_i64(val + n, at);
        }
        cs->balance_in_t = true;
    }
    val[n] = '\0';
    md_ops_add(ops, MD_OP_SET, "T", val);
    if (cs->times_older)
        for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++) md_ops_add(ops, MD_OP_DEL, (char[3]){'t', (char)('0' + k), '\0'}, NULL);
    if (cs->balance_older) md_ops_add(ops, MD_OP_DEL, "bal", NULL);
    if (cs->x0_field) md_ops_add(ops, MD_OP_DEL, "x0", NULL);
    cs->times_dirty = cs->times_older = cs->balance_dirty = cs->balance_older = cs->x0_field = false;
}

void md_cstate_flush(md_cstate *cs, md_ops *ops) {
    wmark_flush(cs, ops);
    flush_times(cs, ops);
    guard_flush(cs, ops);
    series_flush(cs, ops); /* before the renames below: its writes are other writes for them */
    /* An older state's profile attributes, fields of their own, packed:
     * along other writes only, like x0 below (a customer read and left
     * alone is not rewritten for this). */
    if (cs->profile_repack && ops->n > 0) profile_write(cs, ops);
    /* And its campaigns' fields under their older names, renamed, the same way. */
    if (ops->n > 0) {
        for (size_t c = 0; c < cs->cfg->n_campaigns; c++)
            if (cs->camps[c].older) camp_rename(cs, ops, (int)c);
        char field[300];
        for (size_t i = 0; i < cs->n_contacts; i++) {
            md_contact *k = &cs->contacts[i];
            if (!k->older || k->campaign < 0 || k->channel < 0) continue; /* one of an unknown channel stays as it is */
            contact_field(cs, k, true, field, sizeof(field));
            md_ops_add(ops, MD_OP_DEL, field, NULL);
            contact_field(cs, k, false, field, sizeof(field));
            md_ops_add(ops, MD_OP_SET, field, cs->cfg->channels[k->channel].name);
            k->older = false;
        }
    }
    /* The outbox was read and is empty, and this batch adds nothing to it:
     * say so (T's mark), and the next reads skip it. Only along other
     * writes: a customer with nothing to write gets no apply for this. T
     * may be written a second time in the batch then (md_ops_compact keeps
     * the last), once each time the outbox empties; and an earlier "x0"
     * moves into T the same way. */
    if (!cs->outbox_clear && ops->n > 0 && cs->n_pending == 0 && cs->n_incrs == 0) cs->outbox_clear = true;
    flush_times(cs, ops);
}

bool md_cs_take_offset(md_cstate *cs, md_ops *ops, const char *topic, int32_t partition, int64_t offset) {
    char code[MD_STATE_CODE_LEN + 1];
    md_state_code(topic, code);
    md_wmark *w = find_wmark(cs, code, partition);
    if (w && offset <= w->offset) return false;
    if (!w && !(w = add_wmark(cs, code, partition))) {
        ops->oom = true;
        return true;
    }
    w->offset = offset;
    cs->wm_dirty = true; /* written by md_cstate_flush (wmark_flush), once a batch */
    return true;
}


/* The guard's entry for an event id: its SipHash under the deployment's
 * key, modulo 36^10, and its event time in hours, rounded up (an id is
 * remembered up to an hour beyond the horizon, never less), packed into a
 * piece (guard_piece_value). Entries of earlier versions, a field each, are
 * still honoured until they age out: "J<the hash, base 36>" = hours, "j<the
 * whole hash, base 36>" = seconds, "i<the same in hex>" = ms, "e<md_hash64>"
 * = ms (from before the key).
 *
 * Ten base-36 digits (51.7 bits): a new event wrongly taken for one of at
 * most 256 remembered ids has a chance of 256 / 36^10, 7e-14: at a billion
 * events a day, once in forty years. */
uint64_t md_cs_id_hash(const md_cstate *cs, const char *event_id) {
    return md_siphash24(cs->cfg->dedupe.id_key, event_id, strlen(event_id));
}

static uint64_t legacy_id_hash(const char *event_id) { return md_hash64(event_id, strlen(event_id), 0x65766964); }

static void seen_field(const md_seen *e, char field[24]) {
    field[0] = e->form;
    if (e->form == 'J' || e->form == 'j') {
        fmt_b36(field + 1, e->hash);
        return;
    }
    md_fmt_hex(field + 1, e->hash, 16);
}

bool md_cs_seen(const md_cstate *cs, const char *event_id, uint64_t h) {
    uint64_t legacy = cs->n_legacy_seen ? legacy_id_hash(event_id) : 0;
    for (size_t i = 0; i < cs->n_seen; i++) {
        char form = cs->seen[i].form;
        if (cs->seen[i].hash == (form == 'G' || form == 'J' ? h % MD_SEEN_SHORT_HASH : form == 'e' ? legacy : h)) return true;
    }
    return false;
}

/* Forgets entry i: its piece is rewritten by the next flush, or, an entry
 * of an earlier form, its own field deleted. */
static void forget_seen(md_cstate *cs, md_ops *ops, size_t i) {
    if (cs->seen[i].form == 'G') {
        cs->seen_dirty |= UINT64_C(1) << cs->seen[i].piece;
        return;
    }
    char field[24];
    seen_field(&cs->seen[i], field);
    md_ops_add(ops, MD_OP_DEL, field, NULL);
    cs->n_legacy_seen -= cs->seen[i].form == 'e';
}

/* The first piece with room for one more id, by the ids each holds
 * (count), -1 for none. */
static int guard_piece_with_room(const uint8_t count[MD_SEEN_PIECES]) {
    for (int k = 0; k < MD_SEEN_PIECES; k++)
        if (count[k] < MD_SEEN_PER_PIECE) return k;
    return -1;
}

/* Forgets the oldest id (a full guard): the first of the oldest hour, the
 * ids being kept in the order they came (within a process; read back from
 * Redis, in their pieces' order). count: the ids each piece holds. */
static void forget_oldest_seen(md_cstate *cs, md_ops *ops, uint8_t count[MD_SEEN_PIECES]) {
    size_t oldest = 0;
    for (size_t i = 1; i < cs->n_seen; i++)
        if (cs->seen[i].ts < cs->seen[oldest].ts) oldest = i;
    if (cs->seen[oldest].form == 'G') count[cs->seen[oldest].piece]--;
    forget_seen(cs, ops, oldest);
    memmove(&cs->seen[oldest], &cs->seen[oldest + 1], (cs->n_seen - oldest - 1) * sizeof(md_seen));
    cs->n_seen--;
}

size_t md_cs_add_seen(md_cstate *cs, md_ops *ops, uint64_t h, int64_t ts, int64_t horizon_ms) {
    size_t keep = 0, evicted = 0;
    int64_t newest = cs->newest_ts > ts ? cs->newest_ts : ts;
    uint8_t count[MD_SEEN_PIECES] = {0}; /* the ids each piece keeps, taken on the way */
    for (size_t i = 0; i < cs->n_seen; i++) {
        if (cs->seen[i].ts < newest - horizon_ms) {
            forget_seen(cs, ops, i);
            continue;
        }
        if (cs->seen[i].form == 'G') count[cs->seen[i].piece]++; /* at most MD_SEEN_PER_PIECE a piece as read */
        cs->seen[keep++] = cs->seen[i];
    }
    cs->n_seen = keep;
    if (ts < newest - horizon_ms) return 0; /* older than the horizon: nothing to remember */
    if (cs->n_seen >= MD_SEEN_MAX) {
        /* Full: forget the oldest. */
        forget_oldest_seen(cs, ops, count);
        evicted = 1;
    }
    int piece;
    /* Never without a piece with room (MD_SEEN_PIECES pieces hold more
     * than MD_SEEN_MAX ids, and a piece of more is not read): should it
     * happen, forget until one has room rather than overfill one. */
    while ((piece = guard_piece_with_room(count)) < 0 && cs->n_seen) {
        forget_oldest_seen(cs, ops, count);
        evicted++;
    }
    if (piece < 0 || !grow((void **)&cs->seen, &cs->cap_seen, cs->n_seen + 1, sizeof(md_seen))) {
        ops->oom = true;
        return evicted;
    }
    /* Hours, rounded up: the guard's horizon is days long (30 at most), so
     * two base-36 digits above the piece's base hold an id's time. */
    int64_t hours = ts <= 0 ? 0 : (ts - 1) / MD_HOUR_MS + 1;
    cs->seen[cs->n_seen++] = (md_seen){h % MD_SEEN_SHORT_HASH, hours * MD_HOUR_MS, 'G', (uint8_t)piece};
    cs->seen_dirty |= UINT64_C(1) << piece;
    return evicted;
}

void md_cs_add_contact(md_cstate *cs, md_ops *ops, int64_t ts, int campaign, int channel) {
    char field[160];
    if (!grow((void **)&cs->contacts, &cs->cap_contacts, cs->n_contacts + 1, sizeof(md_contact))) return;
    cs->contacts[cs->n_contacts].ts = ts;
    cs->contacts[cs->n_contacts].campaign = campaign;
    cs->contacts[cs->n_contacts].channel = channel;
    cs->contacts[cs->n_contacts].older = false;
    contact_field(cs, &cs->contacts[cs->n_contacts], false, field, sizeof(field));
    cs->n_contacts++;
    md_ops_add(ops, MD_OP_SET, field, cs->cfg->channels[channel].name);
}

/* ---- Writers of the scalar fields: each changes the state in memory and
 * records the field write that brings Redis to the same, under the names
 * the loader above reads. ---- */

void md_cs_set_fatigue(md_cstate *cs, md_ops *ops, int c, double fatigue, int64_t t) {
    if (fatigue < 0.0005) fatigue = 0;
    if (fatigue > 1000) fatigue = 1000;
    cs->camps[c].fatigue = fatigue;
    cs->camps[c].fatigue_ts = t;
    camp_put_fatigue(cs, ops, c);
}

void md_cs_set_armed(md_cstate *cs, md_ops *ops, int c, bool armed) {
    cs->camps[c].disarmed = !armed;
    camp_put(cs, ops, c, CF_DISARMED, armed ? NULL : "0");
}

void md_cs_set_last_contact(md_cstate *cs, md_ops *ops, int c, int64_t t) {
    md_camp_st *st = &cs->camps[c];
    if (st->last_contact > 0 && st->last_contact != t) {
        st->prev_contact = st->last_contact;
        camp_put_int(cs, ops, c, CF_PREV, st->prev_contact);
    }
    st->last_contact = t;
    camp_put_int(cs, ops, c, CF_LAST, t);
}

void md_cs_set_last_conversion(md_cstate *cs, md_ops *ops, int c, int64_t t) {
    cs->camps[c].last_conversion = t;
    camp_put_int(cs, ops, c, CF_CONV, t);
}

void md_cs_set_last_stale(md_cstate *cs, md_ops *ops, int c, int64_t t) {
    cs->camps[c].last_stale = t;
    camp_put_int(cs, ops, c, CF_STALE, t);
}

void md_cs_set_due(md_cstate *cs, md_ops *ops, int64_t t) {
    if (t < 0) t = 0;
    if (t == cs->due) return;
    cs->due = t;
    if (t) md_cs_set_int(ops, "d", t);
    else md_ops_add(ops, MD_OP_DEL, "d", NULL);
}

bool md_cstate_due_changed(const md_cstate *cs, int64_t *due) {
    *due = cs->due;
    return cs->due != cs->due_loaded;
}

int64_t md_cstate_due(const md_cstate *cs) { return cs->due; }

void md_cs_release_contact(md_cstate *cs, md_ops *ops, const md_trec *t) {
    if (t->campaign < 0) return;
    char field[160];
    size_t keep = 0;
    for (size_t i = 0; i < cs->n_contacts; i++) {
        const md_contact *k = &cs->contacts[i];
        if (k->ts == t->fired_ms && k->campaign == t->campaign) {
            contact_field(cs, k, k->older, field, sizeof(field));
            md_ops_add(ops, MD_OP_DEL, field, NULL);
            continue;
        }
        cs->contacts[keep++] = *k;
    }
    cs->n_contacts = keep;
    md_camp_st *st = &cs->camps[t->campaign];
    if (st->last_contact != t->fired_ms) return; /* a later contact stands */
    st->last_contact = st->prev_contact;
    st->prev_contact = 0;
    camp_put(cs, ops, t->campaign, CF_PREV, NULL);
    camp_put_int(cs, ops, t->campaign, CF_LAST, st->last_contact);
}

void md_cs_set_complaint_until(md_cstate *cs, md_ops *ops, int64_t until) {
    cs->complaint_until = until;
    md_cs_set_int(ops, "cb", until);
}

void md_cs_set_blackout_until(md_cstate *cs, md_ops *ops, int64_t until) {
    cs->blackout_until = until;
    md_cs_set_int(ops, "bo", until);
}

void md_cs_set_opted_out(md_cstate *cs, md_ops *ops) {
    cs->opted_out = true;
    md_cs_set_int(ops, "oo", 1);
}

void md_cs_set_last_ts(md_cstate *cs, int type, int64_t t) {
    if (type == MD_EVENT_PAYMENT && cs->balance_at_payment) { /* the balance keeps its time */
        cs->balance_ts = cs->last_ts[MD_EVENT_PAYMENT];
        cs->balance_at_payment = false;
        cs->balance_dirty = true;
    }
    cs->last_ts[type] = t;
    cs->times_dirty = true;
}

void md_cs_set_balance(md_cstate *cs, double balance, int64_t t) {
    cs->has_balance = true;
    cs->balance = balance;
    cs->balance_text[0] = '\0';
    cs->balance_ts = t;
    cs->balance_at_payment = false;
    cs->balance_dirty = true;
}


void md_cp_add_contact(md_cpstate *cp, md_ops *cp_ops, int64_t t, const char *customer_id, const char *campaign, const char *channel) {
    char field[300];
    snprintf(field, sizeof(field), "k:%" PRId64 ":%s:%s", t, customer_id, campaign);
    md_ops_add(cp_ops, MD_OP_SET, field, channel);
    md_cpstate_load_field(cp, field, channel);
}

bool md_cs_add_pending(md_cstate *cs, md_ops *ops, const char *id, const char *topic, const char *payload) {
    if (!grow((void **)&cs->pending, &cs->cap_pending, cs->n_pending + 1, sizeof(md_pending))) return false;
    md_pending *p = &cs->pending[cs->n_pending];
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->topic = strdup(topic);
    p->payload = strdup(payload);
    if (!p->topic || !p->payload) {
        free(p->topic);
        free(p->payload);
        return false;
    }
    cs->n_pending++;
    size_t tl = strlen(topic), pl = strlen(payload);
    char *val = malloc(tl + pl + 2);
    if (!val) return false;
    memcpy(val, topic, tl);
    val[tl] = '\n';
    memcpy(val + tl + 1, payload, pl + 1);
    /* The outbox lives in its own hash ("<key>:x", same slot): its values are
     * large and would turn the customer hash out of its compact encoding. */
    outbox_add(cs, ops, id, val);
    free(val);
    return true;
}

void md_cs_save_trec(md_cstate *cs, md_ops *ops, const md_trec *t) {
    char field[MD_TRIGGER_ID_LEN + 4], val[200 + MD_MODEL_VERSION_MAX], fired[24], bits[24], milli[24] = "", gap[24] = "";
    MD_JOIN(field, sizeof(field), "g:", t->id);
    md_fmt_i64(fired, t->fired_ms);
    md_fmt_i64(bits, t->bits);
    bool with_p = t->p_milli >= 0, with_gap = with_p && t->gap_days != MD_GAP_UNKNOWN;
    if (with_p) md_fmt_i64(milli, t->p_milli);
    if (with_gap) md_fmt_i64(gap, t->gap_days);
    /* "<fired>,<holdout>,<bits>,<channel>,<campaign>[,<p_milli>,<version>[,<gap days>]]" */
    MD_JOIN(val, sizeof(val), fired, t->holdout ? ",1," : ",0,", bits, ",", t->channel >= 0 ? cs->cfg->channels[t->channel].name : "?", ",",
            t->campaign >= 0 ? cs->cfg->campaigns[t->campaign].name : "?", with_p ? "," : "", milli, with_p ? "," : "",
            with_p ? t->version : "", with_gap ? "," : "", gap);
    md_ops_add(ops, MD_OP_SET, field, val);
}

md_trec *md_cs_add_trec(md_cstate *cs, md_ops *ops, const char *id, int campaign, int channel, int64_t fired_ms, bool holdout, double p,
                        const char *version, int gap_days) {
    if (!grow((void **)&cs->trecs, &cs->cap_trecs, cs->n_trecs + 1, sizeof(md_trec))) {
        ops->oom = true;
        return NULL;
    }
    md_trec *t = &cs->trecs[cs->n_trecs++];
    MD_JOIN(t->id, sizeof(t->id), id);
    t->campaign = campaign;
    t->channel = channel;
    t->fired_ms = fired_ms;
    t->holdout = holdout;
    t->bits = 0;
    t->p_milli = p >= 0 && version && *version ? (int)lround(p > 1 ? 1000 : p * 1000) : -1;
    MD_JOIN(t->version, sizeof(t->version), t->p_milli >= 0 ? version : "");
    t->gap_days = t->p_milli >= 0 ? gap_days : MD_GAP_UNKNOWN; /* stored only beside a model's p */
    md_cs_save_trec(cs, ops, t);
    return t;
}

static void save_drec(md_cstate *cs, md_ops *ops, md_drec *d) {
    char field[128];
    if (d->form == 'q') { /* rewritten in the current form */
        drec_field(cs, d, field, sizeof(field));
        md_ops_add(ops, MD_OP_DEL, field, NULL);
        d->form = 'Q';
    }
    drec_field(cs, d, field, sizeof(field));
    size_t n = strlen(d->rest);
    char small[512], *val = n + 4 <= sizeof(small) ? small : malloc(n + 4);
    if (!val) {
        ops->oom = true;
        return;
    }
    val[0] = d->kind;
    val[1] = d->converted ? '1' : '0';
    val[2] = ',';
    memcpy(val + 3, d->rest, n + 1);
    md_ops_add(ops, MD_OP_SET, field, val);
    if (val != small) free(val);
}

static void drop_drec(md_cstate *cs, md_ops *ops, size_t i) {
    char field[128];
    drec_field(cs, &cs->drecs[i], field, sizeof(field));
    md_ops_add(ops, MD_OP_DEL, field, NULL);
    memmove(cs->drecs + i, cs->drecs + i + 1, (cs->n_drecs - i - 1) * sizeof(md_drec));
    cs->n_drecs--;
}

/* A record of a decision that was no contact: sampled, or a contact the
 * channel never made. */
static bool drec_expendable(char kind) { return kind == MD_DECISION_SAMPLED || kind == MD_DECISION_RELEASED; }

/* Room in campaign c's records for a new one of kind at ts: one record per
 * time (the later decision stands). At learning.max_per_campaign a new
 * record of no contact is not kept (false), and a contact's or a holdout's
 * takes the place of the oldest record of no contact, of the oldest record
 * when none is left; over a bound lowered since, records of no contact go
 * first, oldest first.
 * Why: which records a bound keeps must not depend on how they turned out,
 * and whether more decisions come after a record does (a customer who buys
 * stops being decided on). Dropping the oldest for any new record let the
 * records that came after a decision push it out: a customer whose moments
 * the channel kept leaving uncalled (a call centre smaller than the
 * moments) got a released record a day, and the contacted records left
 * were mostly those of customers who bought and went quiet: a model fitted
 * or judged on them saw 8-10 points more conversion than there was
 * (RESULTS.md, "Which records a bound keeps"). A record of no contact
 * that is refused depends only on the records before it. */
static bool drec_room(md_cstate *cs, md_ops *ops, int c, int64_t ts, char kind) {
    const size_t bound = (size_t)cs->cfg->learning.max_per_campaign;
    for (;;) {
        size_t count = 0, oldest = SIZE_MAX, oldest_expendable = SIZE_MAX, same = SIZE_MAX;
        for (size_t i = 0; i < cs->n_drecs; i++) {
            const md_drec *d = &cs->drecs[i];
            if (d->campaign != c) continue;
            count++;
            if (oldest == SIZE_MAX || d->ts < cs->drecs[oldest].ts) oldest = i;
            if (drec_expendable(d->kind) && (oldest_expendable == SIZE_MAX || d->ts < cs->drecs[oldest_expendable].ts)) oldest_expendable = i;
            if (d->ts == ts) same = i;
        }
        if (same != SIZE_MAX) drop_drec(cs, ops, same);
        else if (count < bound) return true;
        else if (count == bound && drec_expendable(kind)) return false;
        else drop_drec(cs, ops, oldest_expendable != SIZE_MAX ? oldest_expendable : oldest);
    }
}

void md_cs_add_drec(md_cstate *cs, md_ops *ops, int c, int64_t ts, char kind, uint32_t schema, const double *values, size_t n) {
    if (!drec_room(cs, ops, c, ts, kind)) return;
    char rest[MD_DECISION_MAX_VALUES * 16 + 16];
    md_fmt_hex(rest, schema, 8);
    size_t len = 8;
    for (size_t k = 0; k < n && k < MD_DECISION_MAX_VALUES; k++) { /* 1 + 15 bytes at most each */
        rest[len++] = ',';
        len += md_fmt_g6(rest + len, isfinite(values[k]) ? values[k] : 0.0);
    }
    rest[len] = '\0';
    if (!grow((void **)&cs->drecs, &cs->cap_drecs, cs->n_drecs + 1, sizeof(md_drec)) ||
        !(cs->drecs[cs->n_drecs].rest = text_dup(cs, rest, len < sizeof(rest) ? len : sizeof(rest) - 1))) {
        ops->oom = true;
        return;
    }
    md_drec *d = &cs->drecs[cs->n_drecs++];
    d->campaign = c;
    d->ts = ts;
    d->kind = kind;
    d->converted = false;
    d->form = 'Q';
    save_drec(cs, ops, d);
}

int64_t md_cs_newest_drec(const md_cstate *cs, int c) {
    int64_t newest = 0;
    for (size_t i = 0; i < cs->n_drecs; i++)
        if (cs->drecs[i].campaign == c && cs->drecs[i].ts > newest) newest = cs->drecs[i].ts;
    return newest;
}

void md_cs_convert_drecs(md_cstate *cs, md_ops *ops, int c, int64_t t, int64_t window_ms) {
    for (size_t i = 0; i < cs->n_drecs; i++) {
        md_drec *d = &cs->drecs[i];
        if (d->campaign != c || d->converted || d->ts > t || t - d->ts > window_ms) continue;
        d->converted = true;
        save_drec(cs, ops, d);
    }
}

void md_cs_release_drec(md_cstate *cs, md_ops *ops, int c, int64_t ts) {
    for (size_t i = 0; i < cs->n_drecs; i++) {
        md_drec *d = &cs->drecs[i];
        if (d->campaign != c || d->ts != ts || d->kind != MD_DECISION_CONTACTED) continue;
        d->kind = MD_DECISION_RELEASED;
        save_drec(cs, ops, d);
    }
}

bool md_decision_parse(const char *f, size_t fl, const char *v, size_t vl, md_decision *out) {
    size_t cl;
    _Static_assert(sizeof(out->code) == MD_STATE_CODE_LEN + 1, "md_decision.code holds a short code");
    if (!decision_field(f, fl, out->code, &cl, &out->ts_ms) || cl >= sizeof(out->campaign) || vl < 12 || v[2] != ',' ||
        (v[1] != '0' && v[1] != '1'))
        return false;
    if (v[0] != MD_DECISION_CONTACTED && v[0] != MD_DECISION_HOLDOUT && v[0] != MD_DECISION_SAMPLED && v[0] != MD_DECISION_RELEASED)
        return false;
    memcpy(out->campaign, f + 2, cl); /* none in the current form: its code names it */
    out->campaign[cl] = '\0';
    out->kind = v[0];
    out->converted = v[1] == '1';
    char buf[MD_DECISION_MAX_VALUES * 24 + 16];
    if (vl - 3 >= sizeof(buf)) return false;
    memcpy(buf, v + 3, vl - 3);
    buf[vl - 3] = '\0';
    char *end;
    errno = 0;
    unsigned long schema = strtoul(buf, &end, 16);
    if (end != buf + 8 || errno) return false;
    out->schema = (uint32_t)schema;
    out->n_values = 0;
    const char *p = end;
    while (*p == ',') {
        if (out->n_values >= MD_DECISION_MAX_VALUES) return false;
        double x = strtod(p + 1, &end);
        if (end == p + 1 || !isfinite(x)) return false;
        out->values[out->n_values++] = x;
        p = end;
    }
    return *p == '\0';
}

void md_decision_format(const md_decision *d, char *field, size_t fsz, char *value, size_t vsz) {
    snprintf(field, fsz, "q:%s:%" PRId64, d->campaign, d->ts_ms);
    size_t len = (size_t)snprintf(value, vsz, "%c%c,%08x", d->kind, d->converted ? '1' : '0', (unsigned)d->schema);
    for (size_t k = 0; k < d->n_values && len < vsz; k++) len += (size_t)snprintf(value + len, vsz - len, ",%.6g", d->values[k]);
}

size_t md_cstate_decision_count(const md_cstate *cs) { return cs->n_drecs; }

/* ---- The decision audit ---- */

/* The suppression reasons by name (explain, metrics, the audit's outcomes). */
static const char *const suppress_names[] = {
#define MD_SUPPRESS_NAME(name, text) text,
    MD_SUPPRESS_MAP(MD_SUPPRESS_NAME)
#undef MD_SUPPRESS_NAME
};
const char *md_suppress_name(md_suppress s) { return (unsigned)s < MD_SUPPRESS_COUNT ? suppress_names[s] : "?"; }

const char *md_audit_outcome_name(int outcome) {
    if (outcome == MD_SUPPRESS_NONE) return "fired";
    if (outcome == MD_AUDIT_HOLDOUT) return "holdout";
    return md_suppress_name((md_suppress)outcome);
}

/* Each outcome's code in the audit's records: one or two letters, stable
 * across versions (a record keeps its code for audit.keep), so new reasons
 * get new codes and none is ever reused. */
static const char *const audit_codes[MD_AUDIT_HOLDOUT + 1] = {
    [MD_SUPPRESS_NONE] = "f",               [MD_SUPPRESS_BELOW_THRESHOLD] = "bt",  [MD_SUPPRESS_NOT_REARMED] = "nr",
    [MD_SUPPRESS_OPT_OUT] = "oo",           [MD_SUPPRESS_COMPLAINT] = "cp",        [MD_SUPPRESS_BLACKOUT] = "bo",
    [MD_SUPPRESS_EVENT_NOT_ALLOWED] = "ea", [MD_SUPPRESS_NOT_ELIGIBLE] = "ne",     [MD_SUPPRESS_COOLDOWN] = "cd",
    [MD_SUPPRESS_NO_ROUTE] = "rt",          [MD_SUPPRESS_CAP_CUSTOMER] = "cc",     [MD_SUPPRESS_CAP_CHANNEL] = "ch",
    [MD_SUPPRESS_CAP_CONTACT_POINT] = "cq", [MD_SUPPRESS_QUIET_HOURS] = "qh",      [MD_SUPPRESS_RECENT_CONVERSION] = "rc",
    [MD_SUPPRESS_LOW_VALUE] = "lv",         [MD_SUPPRESS_STALE] = "st",            [MD_SUPPRESS_NOT_STARTED] = "ns",
    [MD_SUPPRESS_ENDED] = "en",             [MD_SUPPRESS_PAUSED] = "pa",           [MD_SUPPRESS_DO_NOT_CONTACT] = "dn",
    [MD_SUPPRESS_NO_CONSENT] = "nc",        [MD_SUPPRESS_EXCLUDED] = "ex",         [MD_SUPPRESS_NOT_INCLUDED] = "ni",
    [MD_SUPPRESS_HELD_CAPACITY] = "hc",     [MD_AUDIT_HOLDOUT] = "h",
};

const char *md_audit_outcome_code(int outcome) {
    return outcome >= 0 && outcome <= MD_AUDIT_HOLDOUT && audit_codes[outcome] ? audit_codes[outcome] : NULL;
}

/* The outcome a record names: by its code, or in an older record by its
 * name; -1 when none (read on every load of a state: the short form
 * compares only the one- or two-letter codes). */
static int audit_outcome_of(const char *s, size_t n, bool legacy) {
    if (!legacy) { /* one or two letters, compared in place: a strlen a code was a tenth of an R field's decode */
        if (n == 0 || n > 2) return -1;
        char second = n == 2 ? s[1] : '\0';
        if (n == 2 && second == '\0') return -1;
        for (int o = 0; o <= MD_AUDIT_HOLDOUT; o++)
            if (audit_codes[o] && audit_codes[o][0] == s[0] && audit_codes[o][1] == second) return o;
        return -1;
    }
    for (int o = 0; o <= MD_AUDIT_HOLDOUT; o++) {
        const char *want = md_audit_outcome_name(o);
        if (want && strlen(want) == n && memcmp(want, s, n) == 0) return o;
    }
    return -1;
}

/* The field of audit record a, in the form it is stored in (out: 128 bytes). */
static void audit_field(const md_cstate *cs, const md_audit *a, char *out) {
    uint64_t from = a->from < 0 ? 0 : (uint64_t)a->from;
    if (a->form == 'R') {
        out[0] = 'R';
        memcpy(out + 1, cs->r->campaigns[a->campaign].code, MD_STATE_CODE_LEN);
        fmt_b36(out + 1 + MD_STATE_CODE_LEN, from);
        return;
    }
    const char *name = cs->cfg->campaigns[a->campaign].name;
    size_t nl = strlen(name);
    if (nl > 100) nl = 100; /* names are at most 64 */
    out[0] = a->form == 'r' ? 'r' : 'R';
    out[1] = ':';
    memcpy(out + 2, name, nl);
    out[2 + nl] = ':';
    if (a->form == 'r') md_fmt_i64(out + 3 + nl, a->from);
    else fmt_b36(out + 3 + nl, from);
}

static void save_audit(const md_cstate *cs, md_ops *ops, md_audit *a) {
    char field[128], val[96];
    if (a->form != 'R') { /* an older record changes: it moves to the current form */
        audit_field(cs, a, field);
        md_ops_add(ops, MD_OP_DEL, field, NULL);
        a->form = 'R';
    }
    audit_field(cs, a, field);
    const char *code = md_audit_outcome_code(a->outcome);
    if (!code) code = md_audit_outcome_name(a->outcome); /* cannot happen: every outcome has a code (test_outcome checks) */
    size_t n = strlen(code);
    memcpy(val, code, n);
    val[n++] = ',';
    n += fmt_b36(val + n, a->last > a->from ? (uint64_t)(a->last - a->from) : 0);
    val[n++] = ',';
    md_fmt_i64(val + n, a->p_milli);
    md_ops_add(ops, MD_OP_SET, field, val);
}

void md_cs_audit(md_cstate *cs, md_ops *ops, int c, int64_t t, int outcome, double p) {
    if (cs->r->audit_keep_ms <= 0) return;
    int p_milli = (int)lround((p < 0 ? 0 : p > 1 ? 1 : p) * 1000);
    md_audit *newest = NULL, *oldest = NULL;
    size_t count = 0;
    for (size_t i = 0; i < cs->n_audits; i++) {
        md_audit *a = &cs->audits[i];
        if (a->campaign != c) continue;
        count++;
        if (!newest || a->from > newest->from) newest = a;
        if (!oldest || a->from < oldest->from) oldest = a;
    }
    /* Days, not instants, decide what is written: the state is the same
     * however the events were cut into batches (the first decision of each
     * day is the one written), and a customer seen all day costs one write
     * a day, not one per event. */
    if (newest && t / MD_DAY_MS < newest->last / MD_DAY_MS) return; /* a late event of an earlier day */
    if (newest && newest->outcome == outcome) {
        if (t / MD_DAY_MS != newest->last / MD_DAY_MS) {
            newest->last = t;
            newest->p_milli = p_milli;
            save_audit(cs, ops, newest);
        }
        return;
    }
    if (count >= (size_t)cs->cfg->audit.max_per_campaign && oldest) {
        char field[128];
        audit_field(cs, oldest, field);
        md_ops_add(ops, MD_OP_DEL, field, NULL);
        *oldest = cs->audits[--cs->n_audits];
    }
    if (!grow((void **)&cs->audits, &cs->cap_audits, cs->n_audits + 1, sizeof(md_audit))) {
        ops->oom = true;
        return;
    }
    md_audit *a = &cs->audits[cs->n_audits++];
    *a = (md_audit){c, t, t, outcome, p_milli, 'R'};
    save_audit(cs, ops, a);
}

size_t md_cstate_audit_count(const md_cstate *cs) { return cs->n_audits; }

void md_cstate_audit(const md_cstate *cs, size_t i, md_audit_entry *out) {
    const md_audit *a = &cs->audits[i];
    *out = (md_audit_entry){a->campaign, a->from, a->last, md_audit_outcome_name(a->outcome), a->p_milli / 1000.0};
}

void md_cstate_set_paused(md_cstate *cs, uint32_t paused_campaigns) { cs->paused_campaigns = paused_campaigns; }

bool md_cstate_decision(const md_cstate *cs, size_t i, md_decision *out) {
    if (i >= cs->n_drecs) return false;
    const md_drec *d = &cs->drecs[i];
    char field[128], value[MD_DECISION_MAX_VALUES * 24 + 16];
    drec_field(cs, d, field, sizeof(field));
    int n = snprintf(value, sizeof(value), "%c%c,%s", d->kind, d->converted ? '1' : '0', d->rest);
    if (n <= 0 || (size_t)n >= sizeof(value) || !md_decision_parse(field, strlen(field), value, (size_t)n, out)) return false;
    snprintf(out->campaign, sizeof(out->campaign), "%s", cs->cfg->campaigns[d->campaign].name);
    return true;
}

md_trec *md_cs_find_trec(md_cstate *cs, const char *id) {
    for (size_t i = 0; i < cs->n_trecs; i++)
        if (strcmp(cs->trecs[i].id, id) == 0) return &cs->trecs[i];
    return NULL;
}


/* One funnel increment of trigger t: entry "+<id>:<kind><stage>" (kind ""
 * for the channel's funnel, "arm." or "q."), field as given. */
static void add_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *kind, const char *stage, const char *field, int64_t delta) {
    if (t->campaign < 0) return; /* a campaign no longer configured has no funnel */
    md_incr in;
    MD_JOIN(in.name, sizeof(in.name), "+", t->id, ":", kind, stage);
    MD_JOIN(in.campaign, sizeof(in.campaign), cs->cfg->campaigns[t->campaign].name);
    /* Funnel days follow the operators' calendar (the default UTC offset), not UTC. */
    md_format_day(t->fired_ms, cs->r->default_utc_offset_min, in.day);
    MD_JOIN(in.field, sizeof(in.field), field);
    in.delta = delta;
    /* The same increment twice in one batch (re-decided) replaces, never adds. */
    for (size_t i = 0; i < cs->n_incrs; i++)
        if (strcmp(cs->incrs[i].name, in.name) == 0) {
            cs->incrs[i] = in;
            goto record;
        }
    if (!grow((void **)&cs->incrs, &cs->cap_incrs, cs->n_incrs + 1, sizeof(md_incr))) {
        ops->oom = true;
        return;
    }
    cs->incrs[cs->n_incrs++] = in;
record:;
    char val[256], delta_text[24];
    md_fmt_i64(delta_text, in.delta);
    MD_JOIN(val, sizeof(val), in.campaign, "\t", in.day, "\t", in.field, "\t", delta_text);
    outbox_add(cs, ops, in.name, val);
}

void md_cs_add_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, int64_t delta) {
    char field[128];
    MD_JOIN(field, sizeof(field), t->holdout ? "holdout" : t->channel >= 0 ? cs->cfg->channels[t->channel].name : "?", ":", stage);
    add_incr(cs, ops, t, "", stage, field, delta);
}

void md_cs_add_arm_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *arm, const char *stage, int64_t delta) {
    char field[128];
    MD_JOIN(field, sizeof(field), "arm.", arm, ":", stage);
    add_incr(cs, ops, t, "arm.", stage, field, delta);
}

/* The timing table's buckets of days since the campaign's previous contact
 * (its funnel fields "gap.<bucket>:<stage>", which momentd report reads back
 * by name). The upper bound (inclusive) in days of each bucket after "first". */
static const int gap_bucket_last_day[MD_GAP_BUCKETS - 1] = {6, 13, 20, 29, 44, 59, 89, INT_MAX};
static const char *const gap_bucket_names[MD_GAP_BUCKETS] = {"first", "0-6", "7-13", "14-20", "21-29", "30-44", "45-59", "60-89", "90+"};

int md_gap_bucket(int64_t gap_days) {
    if (gap_days == MD_GAP_FIRST) return 0;
    if (gap_days < 0) return -1;
    int b = 0;
    while (gap_days > gap_bucket_last_day[b]) b++;
    return b + 1;
}

const char *md_gap_bucket_name(int bucket) { return bucket >= 0 && bucket < MD_GAP_BUCKETS ? gap_bucket_names[bucket] : "?"; }

int md_gap_bucket_by_name(const char *name, size_t len) {
    for (int b = 0; b < MD_GAP_BUCKETS; b++)
        if (strlen(gap_bucket_names[b]) == len && memcmp(gap_bucket_names[b], name, len) == 0) return b;
    return -1;
}

void md_cs_add_gap_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta) {
    int bucket = md_gap_bucket(t->gap_days);
    if (bucket < 0) return;
    char field[128];
    MD_JOIN(field, sizeof(field), "gap.", md_gap_bucket_name(bucket), ":", stage);
    add_incr(cs, ops, t, "gap.", entry, field, delta);
}

void md_cs_add_model_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta) {
    if (t->p_milli < 0) return;
    char field[128];
    int milli = t->p_milli >= 1000 ? 999 : t->p_milli; /* 0 to 999: "%03d" */
    char p3[4] = {(char)('0' + milli / 100), (char)('0' + milli / 10 % 10), (char)('0' + milli % 10), '\0'};
    MD_JOIN(field, sizeof(field), "q.", t->holdout ? "holdout" : "treated", ".", p3, ".", t->version, ":", stage);
    add_incr(cs, ops, t, "q.", entry, field, delta);
}

size_t md_cstate_incr_count(const md_cstate *cs) { return cs->n_incrs; }

void md_cstate_incr(const md_cstate *cs, size_t i, const char **outbox_field, const char **campaign, const char **day,
                    const char **field, int64_t *delta) {
    const md_incr *in = &cs->incrs[i];
    *outbox_field = in->name;
    *campaign = in->campaign;
    *day = in->day;
    *field = in->field;
    *delta = in->delta;
}

size_t md_cstate_pending_count(const md_cstate *cs) { return cs->n_pending; }

/* An opt-out is for good: that customer's state never expires. */
/* Kept for good while opted out or on a do-not-contact or campaign list: an
 * expired hash would forget the customer must be left alone. */
int64_t md_cstate_ttl_ms(const md_cstate *cs) { return cs->opted_out || cs->pinned ? 0 : cs->r->state_ttl_ms; }

/* ---- Reading the state: windows, balance, fatigue ---- */

int64_t md_cstate_window_raw(const md_cstate *cs, int window, int64_t t_ms) {
    const md_rwindow *w = &cs->r->windows[window];
    const md_rseries *rs = &cs->r->series[w->series];
    const md_series_st *s = &cs->series[w->series];
    int64_t last = t_ms / rs->granularity_ms;
    int64_t first = last - w->span_ms / rs->granularity_ms + 1;
    /* Binary search for the first bucket in range, then sum the (few, sparse)
     * non-empty buckets of the span. */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->b[mid].id < first) lo = mid + 1;
        else hi = mid;
    }
    int64_t sum = 0;
    for (size_t i = lo; i < s->n && s->b[i].id <= last; i++) sum += s->b[i].v;
    return sum;
}

double md_cstate_window(const md_config *cfg, const md_cstate *cs, int window, int64_t t_ms) {
    (void)cfg;
    return (double)md_cstate_window_raw(cs, window, t_ms) * cs->r->windows[window].scale;
}

bool md_cstate_balance(const md_cstate *cs, double *balance) {
    if (cs->has_balance) *balance = cs->balance;
    return cs->has_balance;
}

/* Fatigue is stored as an amount and the time it was set ("f:<campaign>"),
 * and read at any time by halving it every half-life since. */
double md_fatigue_at(double amount, int64_t since_ms, int64_t t_ms, int64_t half_life_ms) {
    if (amount <= 0) return 0;
    if (since_ms <= 0 || t_ms <= since_ms || half_life_ms <= 0) return amount;
    return amount * exp2(-(double)(t_ms - since_ms) / (double)half_life_ms);
}

double md_cstate_fatigue(const md_cstate *cs, int campaign, int64_t t) {
    return md_fatigue_at(cs->camps[campaign].fatigue, cs->camps[campaign].fatigue_ts, t, cs->cfg->outcomes.fatigue_half_life_ms);
}

void md_cstate_view_of(const md_cstate *cs, md_cstate_view *v) {
    v->customer_id = cs->customer_id;
    v->exists = cs->exists;
    v->n_attrs = cs->n_attrs;
    v->windows = cs->win_vals;
    memcpy(v->last_ts, cs->last_ts, sizeof(v->last_ts));
    v->newest_ts = 0;
    for (int k = 0; k < MD_EVENT_TYPE_COUNT; k++)
        if (cs->last_ts[k] > v->newest_ts) v->newest_ts = cs->last_ts[k];
    v->balance_ts = md_cs_balance_ts(cs);
    v->opted_out = cs->opted_out;
    v->do_not_contact = cs->dnc_mask;
    v->forgotten_at = cs->forgotten_at;
    v->complaint_until = cs->complaint_until;
    v->blackout_until = cs->blackout_until;
    v->n_contacts = cs->n_contacts;
    v->n_pending = cs->n_pending;
}

void md_cstate_attr(const md_cstate *cs, size_t i, const char **key, const char **value) {
    *key = cs->attrs[i].key;
    *value = cs->attrs[i].value;
}

md_campaign_state md_cstate_campaign(const md_cstate *cs, int c) {
    const md_camp_st *k = &cs->camps[c];
    md_campaign_state st = {!k->disarmed,      k->fatigue,       k->fatigue_ts, k->last_contact,
                            k->last_conversion, k->last_stale,
                            k->list == 'i' ? "include" : k->list == 'e' ? "exclude" : NULL};
    return st;
}

int64_t md_cpstate_ttl_ms(const md_config *cfg) { return cfg->rules->max_cap_span_ms + MD_DAY_MS; }

/* The profile's contact point, as a field: the store's cache notes where
 * it is in each entry, so that a batch knows its customers' contact points
 * before it decodes them. */
const char *md_cstate_contact_point_field(void) { return "p:contact_point"; }

const char *md_cstate_contact_point(const md_cstate *cs) {
    const char *cp = md_cs_profile(cs, cs->r->attr_contact_point);
    return cp && *cp ? cp : NULL;
}


void md_cstate_pending(const md_cstate *cs, size_t i, const char **trigger_id, const char **topic, const char **payload) {
    *trigger_id = cs->pending[i].id;
    *topic = cs->pending[i].topic;
    *payload = cs->pending[i].payload;
}

const char *md_cs_profile(const md_cstate *cs, int attr) {
    if (attr < 0 || (size_t)attr >= cs->r->n_profile_attrs) return NULL;
    int k = cs->attr_of[attr];
    return k < 0 ? NULL : cs->attrs[k].value;
}

static md_err profile_parse(const char *json, int64_t max_attrs, yajl_val *out, char *errstr, size_t errstr_size) {
    char perr[256];
    *out = NULL;
    /* yajl's tree hands strings over NUL-terminated, without their length:
     * an escaped NUL would silently cut a value short ("a\u0000b" as "a",
     * merging contact points). Refused on the raw text, conservatively. */
    if (strstr(json, "\\u0000")) {
        snprintf(errstr, errstr_size, "profile contains a NUL character (\\u0000)");
        return MD_ERR_BAD_EVENT;
    }
    yajl_val root = yajl_tree_parse(json, perr, sizeof(perr));
    if (!root) {
        snprintf(errstr, errstr_size, "profile is not valid JSON");
        return MD_ERR_BAD_EVENT;
    }
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        snprintf(errstr, errstr_size, "profile is not a JSON object");
        return MD_ERR_BAD_EVENT;
    }
    if (root->u.object.len > (size_t)max_attrs) {
        snprintf(errstr, errstr_size, "profile has %zu attributes, limit %lld", root->u.object.len, (long long)max_attrs);
        yajl_tree_free(root);
        return MD_ERR_BAD_EVENT;
    }
    for (size_t i = 0; i < root->u.object.len; i++) {
        yajl_val v = root->u.object.values[i];
        const char *k = root->u.object.keys[i];
        const char *text = YAJL_IS_STRING(v) ? v->u.string : YAJL_IS_NUMBER(v) ? v->u.number.r : "";
        if (!(YAJL_IS_STRING(v) || YAJL_IS_NUMBER(v) || YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v) || YAJL_IS_NULL(v)) ||
            strlen(k) == 0 || strlen(k) > 64 || strlen(text) > 256) {
            snprintf(errstr, errstr_size,
                     "profile attribute \"%.64s\" must be a string or number (<= 256 bytes) or a boolean, with a name of 1-64 bytes", k);
            yajl_tree_free(root);
            return MD_ERR_BAD_EVENT;
        }
        /* The contact point names a Redis key, "<prefix>:{cp:<value>}". */
        char why[160];
        if (strcmp(k, "contact_point") == 0 && !md_id_check(text, strlen(text), why, sizeof(why))) {
            snprintf(errstr, errstr_size, "profile attribute \"contact_point\" %s", why);
            yajl_tree_free(root);
            return MD_ERR_BAD_EVENT;
        }
    }
    *out = root;
    return MD_ERR_OK;
}

md_err md_profile_check(const char *json, int64_t max_attrs, char *errstr, size_t errstr_size) {
    yajl_val root;
    md_err err = profile_parse(json, max_attrs, &root, errstr, errstr_size);
    yajl_tree_free(root);
    return err;
}

md_err md_cstate_set_profile(md_cstate *cs, const char *json, md_ops *ops, char *errstr, size_t errstr_size) {
    yajl_val root = NULL;
    char field[300];
    if (json) {
        md_err err = profile_parse(json, cs->cfg->limits.max_profile_attrs, &root, errstr, errstr_size);
        if (err) return err;
    }
    /* Valid: replace. The fields of the profile before are deleted, and its
     * pieces rewritten or deleted (profile_write). */
    for (size_t i = 0; i < cs->n_attrs; i++) {
        if (!(cs->attrs[i].stored & ATTR_IN_FIELD)) continue;
        snprintf(field, sizeof(field), "p:%s", cs->attrs[i].key);
        md_ops_add(ops, MD_OP_DEL, field, NULL);
    }
    cs->n_attrs = 0;
    if (root) {
        for (size_t i = 0; i < root->u.object.len; i++) {
            yajl_val v = root->u.object.values[i];
            const char *k = root->u.object.keys[i];
            const char *s = YAJL_IS_STRING(v) ? v->u.string : YAJL_IS_NUMBER(v) ? v->u.number.r
                          : YAJL_IS_TRUE(v)   ? "true"
                          : YAJL_IS_FALSE(v)  ? "false"
                                              : NULL;
            if (!s) continue;
            size_t j = 0; /* a name given twice: its last value, as JSON readers take it */
            while (j < cs->n_attrs && strcmp(cs->attrs[j].key, k) != 0) j++;
            if (j < cs->n_attrs) put_str(&cs->attrs[j].value, &cs->attrs[j].value_cap, s, strlen(s));
            else add_attr(cs, k, strlen(k), s, strlen(s));
        }
        yajl_tree_free(root);
    }
    profile_write(cs, ops);
    reindex_attrs(cs);
    cs->exists = true;
    return MD_ERR_OK;
}

/* ------------------------------------------------------------------------- */
/* Contact points                                                             */

md_cpstate *md_cpstate_new(void) { return calloc(1, sizeof(md_cpstate)); }

void md_cpstate_reset(md_cpstate *cp) {
    for (size_t i = 0; i < cp->n; i++) free(cp->channel[i]);
    cp->n = 0;
    cp->n_dnc = 0;
}

bool md_cpstate_do_not_contact(const md_cpstate *cp, const char *channel) {
    for (size_t i = 0; cp && i < cp->n_dnc; i++)
        if (strcmp(cp->dnc[i], "*") == 0 || strcmp(cp->dnc[i], channel) == 0) return true;
    return false;
}

void md_cpstate_destroy(md_cpstate *cp) {
    if (!cp) return;
    md_cpstate_reset(cp);
    free(cp->ts);
    free(cp->channel);
    free(cp);
}

void md_cpstate_load_field(md_cpstate *cp, const char *field, const char *value) {
    /* k:<time>:<customer>:<campaign> = channel; dn:<channel> = when listed */
    int64_t ts;
    if (strncmp(field, "dn:", 3) == 0) {
        if (cp->n_dnc < sizeof(cp->dnc) / sizeof(cp->dnc[0]) && strlen(field + 3) < sizeof(cp->dnc[0]))
            snprintf(cp->dnc[cp->n_dnc++], sizeof(cp->dnc[0]), "%s", field + 3);
        return;
    }
    if (strncmp(field, "k:", 2) != 0) return;
    const char *colon = strchr(field + 2, ':');
    if (!colon || !md_parse_i64(field + 2, (size_t)(colon - field - 2), &ts)) return;
    size_t cap = cp->cap;
    if (!grow((void **)&cp->ts, &cap, cp->n + 1, sizeof(int64_t))) return;
    cap = cp->cap;
    if (!grow((void **)&cp->channel, &cap, cp->n + 1, sizeof(char *))) return;
    cp->cap = cap;
    if (!(cp->channel[cp->n] = strdup(value))) return;
    cp->ts[cp->n++] = ts;
}
