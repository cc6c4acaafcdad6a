/* cstate_internal.h (private to the core): a customer's state in memory,
 * shared by cstate.c (loading and recording) and engine.c (deciding).
 *
 * The structures here are only ever changed through cstate.c's helpers,
 * which record the matching Redis write; the Redis layout they map to is
 * drawn, and only named, in cstate.c. */
#ifndef MOMENTD_CSTATE_INTERNAL_H
#define MOMENTD_CSTATE_INTERNAL_H

#include <stdbool.h>
#include <string.h>

#include "momentd/engine.h"
#include "momentd/expr.h"
#include "rules.h"

/* a and b equal, on the per-event path: the first byte decides most
 * comparisons there (attribute values, topic and attribute names) without
 * a call to strcmp. */
static inline bool md_str_eq(const char *a, const char *b) { return a[0] == b[0] && strcmp(a, b) == 0; }

typedef struct md_bucket {
    int64_t id;
    int64_t v;
} md_bucket;

enum { SERIES_OLDER_DECIMAL = 1, SERIES_OLDER_PACKED = 2 };
typedef struct md_series_st {
    md_bucket *b; /* sorted by id */
    size_t n, cap;
    bool dirty;   /* changed since loaded: md_cstate_flush writes it back */
    /* The form its buckets were read from: 0 nothing, 'H' an entry of a
     * packed piece "H<k>", 'S' a field of its own "S<code>" (a series too
     * long for a piece, or one an earlier version wrote), 'L' the older long
     * name "S<hash>", 's' the older decimal form "s<hash>". The newest form
     * the hash holds is read; the names of the others are deleted by the
     * next flush, which writes the current. */
    char form;
    bool own_field;      /* the hash holds "S<code>": kept while the series is too long for a piece */
    /* Its text as read or last written (md_cstate.series_text, from
     * text_at), while text_ok: a flush packs every series into the pieces,
     * and encoding the unchanged ones again read each one's buckets, a
     * cache miss a series (40% of the flush in perf of bench_core). */
    bool text_ok;
    uint32_t text_at, text_len;
    uint8_t older_names; /* SERIES_OLDER_*: older names the hash holds, to delete */
} md_series_st;

/* A topic partition's highest applied offset: "W<topic code><partition>"
 * (md_state_code). */
typedef struct md_wmark {
    char code[MD_STATE_CODE_LEN + 1];
    /* Read from the older form "w:<topic>:<partition>", whose topic name is
     * kept here to delete it when the watermark next moves (and the field is
     * written in the current form); its buffer kept across resets (put_str). */
    bool legacy;
    bool own_field; /* the hash holds "W<code><partition>" (before the pieces): deleted when packed */
    char *topic;
    size_t topic_cap;
    int32_t partition;
    int64_t offset;
} md_wmark;

typedef struct md_seen {
    uint64_t hash; /* in the 'G' and 'J' forms, the SipHash modulo MD_SEEN_SHORT_HASH */
    int64_t ts;
    /* Where it is written: 'G' (now), an entry of the packed field of
     * `piece` (guard_piece_field in cstate.c); 'J', 'j', 'i' (earlier), 'e'
     * (md_hash64 of versions before the key, not keyed), a field of its own
     * (seen_field). */
    char form;
    uint8_t piece;
} md_seen;
#define MD_SEEN_SHORT_HASH UINT64_C(3656158440062976) /* 36^10: ten base-36 digits */

/* How many event ids a customer's guard remembers at most (within the
 * horizon): a fixed cost per event and a fixed size per customer, whatever
 * a producer sends. A customer with more events in the horizon has the
 * oldest ids forgotten, and counted. */
#define MD_SEEN_MAX 256
/* The guard's ids are packed MD_SEEN_PER_PIECE to a field ("piece"), so
 * that a piece's value stays within Redis's 64-byte listpack value limit
 * (cstate.c, guard_piece_value); a customer's few ids are one field. */
#define MD_SEEN_PER_PIECE 5
#define MD_SEEN_PIECES ((MD_SEEN_MAX + MD_SEEN_PER_PIECE - 1) / MD_SEEN_PER_PIECE)

typedef struct md_contact {
    int64_t ts;
    int campaign; /* -1: a campaign no longer configured (still counts for caps) */
    int channel;
    bool older;   /* stored as "k:<time>:<campaign>" (before 2026-12-06): renamed by the next flush */
} md_contact;

typedef struct md_pending {
    char id[MD_TRIGGER_ID_LEN];
    char *topic;
    char *payload;
} md_pending;

/* Bit of md_trec.bits after the outcome statuses: converted, as observed in
 * the event stream (the campaign's conversion expression). */
#define MD_REC_CONVERTED (1u << 16)
/* ... and its model decision's conversion was counted for model quality
 * (the funnel credits the latest trigger, which may be a follow-up). */
#define MD_REC_MODEL_CONVERTED (1u << 17)
/* Released: the channel reported not_called or expired (never contacted). */
#define MD_REC_RELEASED ((1u << MD_OUTCOME_NOT_CALLED) | (1u << MD_OUTCOME_EXPIRED))

typedef struct md_trec {
    char id[MD_TRIGGER_ID_LEN];
    int campaign; /* -1: a campaign no longer configured */
    int channel;  /* -1: a channel no longer configured */
    int64_t fired_ms;
    bool holdout;
    unsigned bits;
    int p_milli; /* the model's p_contact at the decision, thousandths; -1: none (a follow-up, an older record) */
    char version[MD_MODEL_VERSION_MAX + 1]; /* the model version that decided ("" with p_milli -1) */
    int gap_days; /* whole days since the campaign's previous contact when a model decided it; MD_GAP_FIRST, MD_GAP_UNKNOWN */
} md_trec;

/* A decision record (field "Q<campaign code><ts>", the older form
 * "q:<campaign>:<ts>"), for momentd fit. */
typedef struct md_drec {
    int campaign;   /* a configured campaign (records of others expire with the key) */
    int64_t ts;
    char kind;      /* md_decision_kind */
    bool converted;
    char *rest;     /* "<schema hex>,<values...>", as stored; in the state's texts (md_cstate.texts) */
    char form;      /* its field's form: 'Q', or 'q' (older: rewritten as 'Q' when it next changes) */
} md_drec;

/* A run of one campaign's decisions for the customer that all ended the
 * same way (field "R<campaign code><from>" = "<outcome code>,<last - from>,<p
 * thousandths>", times in base 36): the decision audit. outcome is an md_suppress, NONE for
 * fired, or MD_AUDIT_HOLDOUT. */
#define MD_AUDIT_HOLDOUT MD_SUPPRESS_COUNT
typedef struct md_audit {
    int campaign;
    int64_t from, last;
    int outcome;
    int p_milli;
    /* The form it is stored in: 'R' "R<campaign code><from, base 36>";
     * older ones, rewritten in the current form when the run changes: ':'
     * "R:<campaign>:<from, base 36>", 'r' "r:<campaign>:<from ms>" with the
     * outcome's name and the last time in ms. */
    char form;
} md_audit;

typedef struct md_incr {
    char name[MD_TRIGGER_ID_LEN + 24]; /* the outbox field, "+<trigger id>:<stage>" */
    char campaign[72];
    char day[16];    /* YYYY-MM-DD, the trigger's day */
    char field[128]; /* "<channel or holdout>:<stage>", "arm.<arm>:<stage>" or a model-quality field */
    int64_t delta;
} md_incr;

typedef struct md_camp_st {
    bool disarmed;
    double fatigue;          /* as of fatigue_ts; md_fatigue_at decays it */
    int64_t fatigue_ts;      /* 0: a state written before fatigue decayed (not decayed) */
    int64_t last_contact;
    int64_t prev_contact;    /* the last contact before it: restored when it is released */
    int64_t last_conversion; /* of this campaign's conversion expression; 0 = none seen */
    int64_t last_stale;      /* event time of the last decision to contact that came too late; 0 = none */
    char list;               /* "ls:<campaign>": 'i' on its include list, 'e' on its exclude list, 0 neither */
    uint8_t older;           /* bit CF_*: the field is stored under its older name, "<prefix>:<campaign>" */
    uint8_t current;         /* bit CF_*: read under its current name (which wins over the older) */
} md_camp_st;

/* A campaign's fields, "<letter><campaign code>" (cstate.c, camp_letter). */
enum { CF_DISARMED, CF_FATIGUE, CF_LAST, CF_PREV, CF_CONV, CF_STALE, CF_COUNT };

/* Where the hash holds a profile attribute: a field "p:<name>", a piece of
 * the packed profile "P<k>", or (read from an older state or edited by
 * hand) both. */
enum { ATTR_IN_FIELD = 1, ATTR_IN_PIECE = 2 };
typedef struct md_attr {
    char *key; /* buffers kept across resets (put_str) */
    char *value;
    size_t key_cap, value_cap;
    uint8_t stored; /* ATTR_IN_*; 0 for one not written yet */
    bool unknown_code; /* key is "#<code>": read packed, its name unknown to this configuration */
} md_attr;

struct md_cstate {
    const md_config *cfg;
    const md_rules *r;
    const md_codes *codes; /* the namespace's short codes (md_cstate_set_codes), or NULL */
    char customer_id[MD_CUSTOMER_ID_MAX + 1];
    bool exists;
    /* The outbox was empty at the last apply, so reads skip it: T begins
     * with '.' (earlier versions: the field "x0"). Set only by an apply that
     * read it empty (conditional on the version, like every apply); taken
     * away by the apply that adds to it. States without it always have
     * their outbox read. */
    bool outbox_clear;
    bool t_marked; /* T as the hash holds it begins with the mark */
    bool x0_field; /* the hash holds the earlier form "x0": moved into T along other writes */
    int64_t version; /* the "v" field as loaded; 0 when absent */
    int64_t key_expiry; /* md_cstate_key_expiry */
    md_series_st *series;
    md_series_st *series_scratch; /* n_series of them: a piece is decoded here, then taken whole */
    /* The packed series' pieces "H<k>" the hash holds (k below
     * series_pieces), each piece's FNV-1a 64 as read or written (bit k of
     * series_piece_known: its text parsed), so a flush writes only the
     * pieces that changed; series_repack: a series the next flush would
     * write in another form (along other writes). */
    unsigned series_pieces;
    uint64_t series_piece_known;
    uint64_t series_piece_sum[64];
    bool series_repack;
    /* Entries of the pieces that no series of this configuration reads,
     * "<code><buckets>" joined by ';', kept as they were (a reload that
     * drops a window and adds it back keeps its history, as fields did). */
    char *series_kept;
    size_t series_kept_len, series_kept_cap;
    char *enc_buf; /* series_encode's text, kept from one flush to the next */
    size_t enc_cap;
    char *series_text; /* md_series_st.text_at: the series' texts, emptied by each load */
    size_t series_text_len, series_text_cap;
    bool has_balance;
    double balance;
    int64_t balance_ts;      /* read it with md_cs_balance_ts: see balance_at_payment */
    /* The balance was loaded without its time: it is the newest payment's
     * (last_ts[0]), whichever field the load read first. Cleared, with
     * balance_ts made explicit, when a payment moves last_ts[0] on. */
    bool balance_at_payment;
    bool balance_dirty;      /* T, with the balance, to be written by md_cstate_flush */
    bool balance_in_t;       /* T held a balance: an older "bal" beside it is not read */
    /* The balance's text as stored ("" until formatted): T is written at
     * every event, the balance changes with payments only, so the shortest
     * text of the double (snprintf, then strtod to check it) is worked out
     * once a change, not at every write. balance_loaded: parse_balance's,
     * taken when its field is read. */
    char balance_text[64], balance_loaded[64];
    bool balance_older;      /* the hash holds "bal": deleted, its balance in T, along the next write */
    int64_t last_ts[MD_EVENT_TYPE_COUNT];
    bool times_dirty;        /* T to be written by md_cstate_flush */
    bool times_older;        /* older "t<type>" fields were loaded: deleted by that write */
    int64_t newest_ts;
    md_wmark *wm;
    size_t n_wm, cap_wm;
    /* The watermarks' pieces "W<k>" the hash holds and their texts' sums,
     * as the series' (wmark_flush); dirty: an offset moved; repack: one is
     * in another form (a field of its own, the older "w:"), packed along
     * other writes. */
    unsigned wm_pieces;
    uint64_t wm_piece_known;
    uint64_t wm_piece_sum[16];
    bool wm_dirty, wm_repack;
    md_seen *seen;          /* the event-id guard, in the order the ids came (forget_oldest_seen) */
    size_t n_legacy_seen;   /* how many of them are legacy */
    uint64_t seen_dirty;    /* bit k: the guard's piece k to be written by md_cstate_flush */
    size_t n_seen, cap_seen;
    md_attr *attrs;
    size_t n_attrs, cap_attrs;
    unsigned profile_pieces; /* the packed profile's pieces "P<k>" the hash holds: k below this */
    bool profile_repack;     /* an attribute to pack is a field of its own (an older state): the next flush packs it */
    int *attr_of; /* rules' profile attribute index -> attrs index or -1 */
    md_contact *contacts;
    size_t n_contacts, cap_contacts;
    md_camp_st *camps;
    int64_t complaint_until, blackout_until;
    int64_t forgotten_at; /* the erasure tombstone ("fg"); 0 = never */
    uint32_t paused_campaigns; /* bit c: campaign c is paused (md_cstate_set_paused; not stored in the customer's state) */
    int64_t due, due_loaded; /* when the schedule re-evaluates this customer (0: not scheduled), now and as loaded */
    bool opted_out;
    uint64_t dnc_mask; /* "dn:<channel>" (momentd dnc): channels (bit = index) not to contact; "dn:*" sets all */
    bool pinned;       /* "pn": do-not-contact or list entries, which keep the hash for good */
    md_pending *pending;
    size_t n_pending, cap_pending;
    md_trec *trecs;
    size_t n_trecs, cap_trecs;
    md_drec *drecs;
    size_t n_drecs, cap_drecs;
    /* The decision records' texts (md_drec.rest), carved from chunks that
     * stay until the next load: a record dropped leaves its text there. A
     * malloc and a free of each record's text at every load cost a few
     * percent of the per-event path (bench/core, BENCHMARKS.md). */
    struct md_text_chunk *texts;
    md_audit *audits;
    size_t n_audits, cap_audits;
    md_incr *incrs;
    size_t n_incrs, cap_incrs;
    unsigned bad_fields;

    /* Scratch of the last evaluation, read by tags/explain. */
    int64_t eval_t;
    const md_event *eval_event;
    double *win_vals;
    double *tag_num;   /* rule/mined: 0/1 */
    double *scores;
};

struct md_cpstate {
    int64_t *ts;
    char **channel;
    size_t n, cap;
    /* "dn:<channel>" entries (momentd dnc --contact-points): the channels,
     * or "*", this contact point must not be contacted on. */
    char dnc[8][64];
    size_t n_dnc;
};

/* Recording helpers: change the in-memory state and record the operation. */
void md_cs_bucket_add(md_cstate *cs, md_ops *ops, int series, int64_t bucket, int64_t delta);
void md_cs_evict(md_cstate *cs, md_ops *ops, int64_t now_ms);
void md_cs_set_int(md_ops *ops, const char *field, int64_t v);
/* The redelivery guard: false when offset is at or below the partition's
 * watermark (already applied: nothing recorded); otherwise moves the
 * watermark to it, records the field write and returns true. */
bool md_cs_take_offset(md_cstate *cs, md_ops *ops, const char *topic, int32_t partition, int64_t offset);
/* The guard's hash of event_id: SipHash under the deployment's key. */
uint64_t md_cs_id_hash(const md_cstate *cs, const char *event_id);
/* Whether event_id, of hash h (md_cs_id_hash), is in the guard. */
bool md_cs_seen(const md_cstate *cs, const char *event_id, uint64_t h);
/* Remembers the id of hash h (an event at ts), forgetting ids older than the newest
 * event less horizon_ms, and the oldest beyond MD_SEEN_MAX, recording each
 * field write; returns how many were forgotten for room while still within
 * the horizon. */
size_t md_cs_add_seen(md_cstate *cs, md_ops *ops, uint64_t h, int64_t ts, int64_t horizon_ms);
void md_cs_add_contact(md_cstate *cs, md_ops *ops, int64_t ts, int campaign, int channel);
bool md_cs_add_pending(md_cstate *cs, md_ops *ops, const char *id, const char *topic, const char *payload);
const char *md_cs_profile(const md_cstate *cs, int attr); /* NULL when absent */
/* Scalar fields: each sets the state in memory and records its write. */
void md_cs_set_fatigue(md_cstate *cs, md_ops *ops, int c, double fatigue, int64_t t); /* 0 deletes the field */
void md_cs_set_armed(md_cstate *cs, md_ops *ops, int c, bool armed);
void md_cs_set_last_contact(md_cstate *cs, md_ops *ops, int c, int64_t t); /* keeps the one before for a release */
void md_cs_set_last_conversion(md_cstate *cs, md_ops *ops, int c, int64_t t);
void md_cs_set_last_stale(md_cstate *cs, md_ops *ops, int c, int64_t t);
void md_cs_set_due(md_cstate *cs, md_ops *ops, int64_t t); /* 0: not scheduled */
/* Takes back the contact trigger t made (its channel said it never
 * happened: not_called, expired): its contact-log entry goes, and the
 * campaign's last contact is the one before it again when t's was the last. */
void md_cs_release_contact(md_cstate *cs, md_ops *ops, const md_trec *t);
void md_cs_set_complaint_until(md_cstate *cs, md_ops *ops, int64_t until);
void md_cs_set_blackout_until(md_cstate *cs, md_ops *ops, int64_t until);
void md_cs_set_opted_out(md_cstate *cs, md_ops *ops);
void md_cs_set_last_ts(md_cstate *cs, int type, int64_t t);
/* The event time of the balance (0: none). */
static inline int64_t md_cs_balance_ts(const md_cstate *cs) {
    return !cs->has_balance ? 0 : cs->balance_at_payment ? cs->last_ts[MD_EVENT_PAYMENT] : cs->balance_ts;
}
void md_cs_set_balance(md_cstate *cs, double balance, int64_t t);
/* A contact record on a contact point's key (its caps), written and loaded. */
void md_cp_add_contact(md_cpstate *cp, md_ops *cp_ops, int64_t t, const char *customer_id, const char *campaign, const char *channel);
/* Trigger records: add one, find one by id (NULL), rewrite one after its bits changed. */
/* p is the model's p_contact at the decision, version the model's version
 * (p < 0, version NULL: not a model's decision, e.g. a follow-up). */
md_trec *md_cs_add_trec(md_cstate *cs, md_ops *ops, const char *id, int campaign, int channel, int64_t fired_ms, bool holdout, double p,
                        const char *version, int gap_days);
md_trec *md_cs_find_trec(md_cstate *cs, const char *id);
void md_cs_save_trec(md_cstate *cs, md_ops *ops, const md_trec *t);
/* Decision records: add one for campaign c at ts (at
 * learning.max_per_campaign one of no contact is not kept, and a contact's
 * takes the place of the oldest one of no contact: drec_room), the newest
 * time one of c was made (0: none), mark those of c made within window
 * before t as converted, and turn the contacted record of c made at ts into
 * a released one. */
void md_cs_add_drec(md_cstate *cs, md_ops *ops, int c, int64_t ts, char kind, uint32_t schema, const double *values, size_t n);
int64_t md_cs_newest_drec(const md_cstate *cs, int c);
void md_cs_convert_drecs(md_cstate *cs, md_ops *ops, int c, int64_t t, int64_t window_ms);
void md_cs_release_drec(md_cstate *cs, md_ops *ops, int c, int64_t ts);
/* The decision audit: campaign c decided at t with this outcome (an
 * md_suppress, NONE = fired, MD_AUDIT_HOLDOUT) and p: extends the newest
 * entry of c when the outcome is the same (written at most once a day),
 * else opens a new one (the oldest beyond audit.max_per_campaign go). */
void md_cs_audit(md_cstate *cs, md_ops *ops, int c, int64_t t, int outcome, double p);
/* A funnel increment for trigger t's campaign and day: field "<channel or
 * holdout>:<stage>", recorded in the outbox hash under "+<id>:<stage>". */
void md_cs_add_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, int64_t delta);
/* The same for a policy arm: field "arm.<arm>:<stage>", entry "+<id>:arm.<stage>". */
void md_cs_add_arm_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *arm, const char *stage, int64_t delta);
/* The timing table: field "gap.<bucket>:<stage>" (md_gap_bucket of the
 * trigger's gap_days), entry "+<id>:gap.<entry>" (as for model quality);
 * nothing for a trigger whose gap was not recorded. */
void md_cs_add_gap_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta);
/* Model quality: a model decision's trigger (stage "triggered") or its
 * conversion ("conversions"), counted by p in thousandths, field
 * "q.<treated|holdout>.<000-999>.<model version>:<stage>", entry
 * "+<id>:q.<entry>" (entry names the increment: a release takes a trigger
 * back with entry "released", delta -1). Nothing for a trigger with no model p. */
void md_cs_add_model_incr(md_cstate *cs, md_ops *ops, const md_trec *t, const char *stage, const char *entry, int64_t delta);

#endif
