/* engine.h: the pure core of momentd: customer state, windows, tags, demand
 * model, contact policy and trigger decisions.
 *
 * Nothing here does I/O or reads a clock: every function takes the time it
 * decides at as a parameter. The daemon reads a customer's state from Redis
 * into an md_cstate, lets the engine process events against it, and writes
 * back the list of field operations (md_ops) the engine recorded, together
 * with the triggers it produced. Unit tests drive the same code with no
 * services at all. */
#ifndef MOMENTD_ENGINE_H
#define MOMENTD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/config.h"
#include "momentd/event.h"

#define MD_DAY_MS INT64_C(86400000)
#define MD_HOUR_MS INT64_C(3600000)
#define MD_TRIGGER_ID_LEN 34 /* "m" + 32 hex digits + NUL */
#define MD_MOMENT_SCHEMA_VERSION 1 /* every moment's "schema_version" (docs/schemas/moment.schema.json) */

/* ------------------------------------------------------------------------- */
/* Field operations on one customer's Redis hash                              */

/* SET, INCR and DEL act on the customer's hash; OUTBOX_SET on its outbox
 * hash (field = trigger id). */
typedef enum md_op_kind { MD_OP_SET = 'S', MD_OP_INCR = 'I', MD_OP_DEL = 'D', MD_OP_OUTBOX_SET = 'X' } md_op_kind;

typedef struct md_op {
    char kind;       /* md_op_kind */
    size_t field;    /* offset of the NUL-terminated field name in md_ops.arena */
    size_t value;    /* offset of the value text */
    uint32_t field_len, value_len; /* their lengths (every apply's argument list needs them) */
} md_op;

/* A growable list of operations; strings live in one arena. Caller-allocated:
 * md_ops_init / md_ops_fini. */
typedef struct md_ops {
    md_op *ops;
    size_t n, cap;
    char *arena;
    size_t used, arena_cap;
    void *scratch; /* md_ops_compact's working space, kept for the next call */
    size_t scratch_cap;
    bool oom;
} md_ops;

void md_ops_init(md_ops *o);
void md_ops_fini(md_ops *o);
void md_ops_clear(md_ops *o);
/* Appends one operation; field and value (NULL = "") are copied. On
 * allocation failure sets o->oom and drops the operation: callers check oom
 * once before applying, and never apply a list that lost an operation. */
void md_ops_add(md_ops *o, char kind, const char *field, const char *value);
/* Field and value text of op i; valid until the next add or clear. */
const char *md_ops_field(const md_ops *o, size_t i);
const char *md_ops_value(const md_ops *o, size_t i);
/* Rewrites o into fewer commands with the same effect: a field's last
 * SET or DEL is all that counts of it (its earlier ones are dropped), ops on
 * different fields commute, so the list becomes every deleted field, then
 * every set one, then the outbox's, then, in their own order, the ops of
 * fields that are also incremented (an INCR needs what came before it).
 * apply.lua sends each kind's run as one command: a customer with 80 events
 * in a batch costs two or three calls instead of two per event. Out of
 * memory: o is left as it was (still correct, only longer). */
void md_ops_compact(md_ops *o);

/* ------------------------------------------------------------------------- */
/* Customer state                                                             */

typedef struct md_cstate md_cstate;

/* Creates an empty state for cfg's rules; cfg must outlive it. NULL on OOM. */
md_cstate *md_cstate_new(const md_config *cfg);
void md_cstate_destroy(md_cstate *cs); /* accepts NULL */
/* Forgets everything (reuse for another customer). */
void md_cstate_reset(md_cstate *cs);
/* Asks the processor to bring cs into its cache before it is loaded again:
 * a batch's states were last touched a batch ago, and loading one waited
 * on memory (BENCHMARKS.md). Two steps, a decode or two apart: the struct
 * (members false), then, with the struct there, what its members point to
 * (members true): asking for both at once would wait for the struct. */
void md_cstate_prefetch(const md_cstate *cs, bool members);
/* The customer this state belongs to (copied; used by the holdout hash). */
void md_cstate_set_customer(md_cstate *cs, const char *customer_id);
const char *md_cstate_customer(const md_cstate *cs);
/* The state's version as loaded (the hash's "v" field, 0 when absent). The
 * apply script writes only while Redis still holds this version, so two
 * consumers deciding for one customer at once cannot both act on the same
 * state: the later one re-reads and decides again. */
int64_t md_cstate_version(const md_cstate *cs);
/* When the customer's key expires, as the store's state cache knew it when
 * the state was loaded from there (the store's clock, ms); 0: not known (a
 * read from Redis). The store sets it and reads it back at the apply, which
 * then needs no second look into the cache; the core only carries it. */
void md_cstate_set_key_expiry(md_cstate *cs, int64_t at);
int64_t md_cstate_key_expiry(const md_cstate *cs);

/* The namespace's short codes. Inside a customer's packed fields, the input
 * topics (watermarks), the window series and the profile attributes the
 * rules read are named by codes: the long code, a hash of what each one is
 * (4 or 5 base-36 digits), or, once the namespace gave it one, a short code
 * of one capital letter (A-Y) or three (Z and two more). The namespace
 * draws short codes from a counter in "<prefix>:meta", once for each long
 * code and never again for another (the store, codes.lua): a name there
 * takes a byte where it took four or five, in every customer's hash
 * (docs/ARCHITECTURE.md). A state reads both forms and writes the short one
 * where it has it. */
typedef struct md_codes md_codes;
/* What cfg names by code, as the namespace's registry knows them:
 * "t<topic code>", "s<series code>" and "a<attribute code>", joined by ',',
 * each once (malloc'd; NULL when out of memory); *n their count. */
char *md_codes_wanted(const md_config *cfg, size_t *n);
/* cfg's table from the registry's answer: shorts[i], the short code of the
 * i-th wanted ("" for none). NULL, with the reason in errstr, when one is
 * not a short code or two long codes hold one (a registry that is not
 * momentd's), or out of memory. */
md_codes *md_codes_new(const md_config *cfg, const char *const *shorts, size_t n, char *errstr, size_t errstr_size);
/* The table a new namespace's registry gives cfg: its names' short codes
 * in the order md_codes_wanted lists them, as codes.lua draws them (A to
 * Y, then ZAA, ZAB, ...). For what runs without Redis (bench/core, the
 * fuzzers, tests); NULL when out of memory. */
md_codes *md_codes_fresh(const md_config *cfg);
void md_codes_destroy(md_codes *codes); /* accepts NULL */
/* The hash of the wanted list a table was made for: equal for every
 * configuration with the same topics, series and attributes in one order,
 * and to md_codes_config_id of each (worked out once, as it loads). */
uint64_t md_codes_id(const md_codes *codes);
uint64_t md_codes_config_id(const md_config *cfg);
/* States loaded from now on read and write the short codes of codes, which
 * must fit the state's configuration and outlive its use; NULL (as a new
 * state starts): long codes only. Kept across md_cstate_reset. */
void md_cstate_set_codes(md_cstate *cs, const md_codes *codes);
const md_config *md_cstate_config(const md_cstate *cs);

/* Loads one hash field as read from Redis (HGETALL pairs). Unknown fields are
 * ignored; a field that does not parse is ignored and counted. */
void md_cstate_load_field(md_cstate *cs, const char *field, size_t flen, const char *value, size_t vlen);
/* Loads one field of the customer's outbox hash (trigger id -> "<topic>\n<payload>"). */
void md_cstate_load_outbox(md_cstate *cs, const char *field, size_t flen, const char *value, size_t vlen);
/* True when the loaded hash says its outbox was left empty ("x0"): the
 * store then does not read the outbox. */
bool md_cstate_outbox_clear(const md_cstate *cs);
/* Whether a hash holding this field says its outbox was left empty, read as
 * md_cstate_load_field reads it (T's mark on a T that parses, or "x0"): the
 * store asks it of a hash's fields before it decides to decode them later,
 * at the customer's first input. Other fields answer false without a look.
 * cs is the scratch it reads into: its loaded state is garbage until the
 * next md_cstate_reset. */
bool md_cstate_probe_outbox_clear(md_cstate *cs, const char *field, size_t flen, const char *value, size_t vlen);
/* True when at least one field was loaded. */
bool md_cstate_exists(const md_cstate *cs);

/* How long the customer's hash is kept after an apply: the rules' state
 * TTL, or 0 (for good) once the customer opted out. */
int64_t md_cstate_ttl_ms(const md_cstate *cs);
/* The schedule (docs/SPEC.md section 6): when the customer is to be
 * re-evaluated without an event (0: not scheduled); whether that changed
 * since the state was loaded (the store then syncs its due set). */
int64_t md_cstate_due(const md_cstate *cs);
bool md_cstate_due_changed(const md_cstate *cs, int64_t *due);

/* What explain shows of a state, as plain data; valid until the state
 * changes. windows are the values of the last md_engine_evaluate (or
 * md_engine_process) on it. */
typedef struct md_cstate_view {
    const char *customer_id;
    bool exists;
    size_t n_attrs;
    const double *windows; /* cfg->n_windows values */
    int64_t last_ts[MD_EVENT_TYPE_COUNT]; /* newest event time by type, 0 = none */
    int64_t newest_ts;                    /* the newest of them */
    int64_t balance_ts;                   /* event time of the balance, 0 = none */
    bool opted_out;
    int64_t forgotten_at; /* erased by momentd forget at this time (the tombstone); 0 = never */
    int64_t complaint_until, blackout_until; /* 0 = never */
    size_t n_contacts, n_pending;
    uint64_t do_not_contact; /* channels (bit = index) on the customer's do-not-contact list (momentd dnc) */
} md_cstate_view;

void md_cstate_view_of(const md_cstate *cs, md_cstate_view *v);
/* Campaigns paused by an operator (bit c for campaign c; momentd pause), as
 * the caller read them: decisions of a paused campaign are suppressed as
 * paused. Kept across md_cstate_reset. */
void md_cstate_set_paused(md_cstate *cs, uint32_t paused_campaigns);
/* The decision audit (explain --history): runs of a campaign's decisions
 * that ended the same way. outcome: "fired", "holdout" or the suppression
 * reason; p: p_contact at the last decision of the run. */
typedef struct md_audit_entry {
    int campaign;
    int64_t from_ms, last_ms;
    const char *outcome;
    double p;
} md_audit_entry;
size_t md_cstate_audit_count(const md_cstate *cs);
void md_cstate_audit(const md_cstate *cs, size_t i, md_audit_entry *out);
const char *md_audit_outcome_name(int outcome);
/* Its code in the stored record (one or two letters); NULL for none. */
const char *md_audit_outcome_code(int outcome);
/* Profile attribute i < n_attrs. */
void md_cstate_attr(const md_cstate *cs, size_t i, const char **key, const char **value);
/* Campaign c's own state. */
typedef struct md_campaign_state {
    bool armed;           /* hysteresis: false after a trigger, until the score falls below rearm_below */
    double fatigue;       /* as stored, at fatigue_ts (md_cstate_fatigue decays it to a time) */
    int64_t fatigue_ts;
    int64_t last_contact; /* 0 = never */
    int64_t last_conversion; /* 0 = none seen */
    int64_t last_stale;      /* event time of the last decision to contact that was stale (not emitted); 0 = none */
    const char *list;        /* "include", "exclude" (momentd list) or NULL */
} md_campaign_state;
md_campaign_state md_cstate_campaign(const md_cstate *cs, int c);

/* Pending outbox entries (triggers written but not yet acknowledged by Kafka). */
size_t md_cstate_pending_count(const md_cstate *cs);
/* Entry i: its trigger id, the channel topic (or holdout topic) and payload.
 * Pointers are valid until the state changes. */
void md_cstate_pending(const md_cstate *cs, size_t i, const char **trigger_id, const char **topic, const char **payload);

/* Who a moment is for, read back from its head as the engine wrote it:
 * campaign and channel indices into cfg (-1 when not configured, and the
 * channel always -1 for a holdout decision), and whether it went to the
 * holdout topic. */
void md_moment_route(const md_config *cfg, const char *topic, const char *payload, int *campaign, int *channel, bool *holdout);

/* Pending funnel increments (written with the decisions, not yet added to
 * the campaign's funnel key). Entry i: its outbox field (to delete once
 * added), campaign, day (YYYY-MM-DD), funnel field ("in_app:opened") and
 * delta. Pointers are valid until the state changes. */
size_t md_cstate_incr_count(const md_cstate *cs);
void md_cstate_incr(const md_cstate *cs, size_t i, const char **outbox_field, const char **campaign, const char **day,
                    const char **field, int64_t *delta);

/* Profile: replaces the stored attributes (json object text, NUL-terminated)
 * and records the operations. A NULL json deletes the profile. Returns
 * MD_ERR_BAD_EVENT with a reason in errstr when the value is not an object of
 * scalars. */
md_err md_cstate_set_profile(md_cstate *cs, const char *json, md_ops *ops, char *errstr, size_t errstr_size);
/* Validates a profile without applying it (same rules as set_profile). */
md_err md_profile_check(const char *json, int64_t max_attrs, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------- */
/* Processing                                                                 */

/* Where a message came from, for offset-watermark de-duplication. topic NULL
 * means no watermark (file input, simulations). */
typedef struct md_source {
    const char *topic;
    int32_t partition;
    int64_t offset;
} md_source;

typedef enum md_applied {
    MD_APPLIED = 0,       /* counted, decisions made */
    MD_DUP_OFFSET,        /* this partition offset was already applied: redelivery */
    MD_DUP_EVENT_ID,      /* the event_id was seen within the dedupe horizon: re-publication */
    MD_TOO_LATE,          /* older than limits.max_lateness behind the customer's newest event */
    MD_FORGOTTEN          /* the customer was erased (momentd forget) after this event, or a profile before they were active again */
} md_applied;

const char *md_applied_name(md_applied a);

/* Why a campaign did not fire on an event; also the label of the
 * suppression metric. */
#define MD_SUPPRESS_MAP(X)                                      \
    X(NONE, "none")                                             \
    X(BELOW_THRESHOLD, "below_threshold")                       \
    X(NOT_REARMED, "not_rearmed")                               \
    X(OPT_OUT, "opt_out")                                       \
    X(COMPLAINT, "complaint")                                   \
    X(BLACKOUT, "blackout")                                     \
    X(EVENT_NOT_ALLOWED, "event_not_allowed")                   \
    X(NOT_ELIGIBLE, "not_eligible")                             \
    X(COOLDOWN, "cooldown")                                     \
    X(NO_ROUTE, "no_route")                                     \
    X(CAP_CUSTOMER, "cap_customer")                             \
    X(CAP_CHANNEL, "cap_channel")                               \
    X(CAP_CONTACT_POINT, "cap_contact_point")                   \
    X(QUIET_HOURS, "quiet_hours")                               \
    X(RECENT_CONVERSION, "recent_conversion")                   \
    X(LOW_VALUE, "low_value")                                   \
    X(STALE, "stale")                                           \
    X(NOT_STARTED, "not_started")                               \
    X(ENDED, "ended")                                           \
    X(PAUSED, "paused")                                         \
    X(DO_NOT_CONTACT, "do_not_contact")                         \
    X(NO_CONSENT, "no_consent")                                 \
    X(EXCLUDED, "excluded")                                     \
    X(NOT_INCLUDED, "not_included")                             \
    X(HELD_CAPACITY, "held_capacity")

typedef enum md_suppress {
#define MD_SUPPRESS_ENUM(name, text) MD_SUPPRESS_##name,
    MD_SUPPRESS_MAP(MD_SUPPRESS_ENUM)
#undef MD_SUPPRESS_ENUM
        MD_SUPPRESS_COUNT
} md_suppress;

const char *md_suppress_name(md_suppress s);

/* Days since a campaign's previous contact with the customer, in the buckets
 * of the timing table (momentd report: funnel fields "gap.<bucket>:<stage>";
 * momentd simulate: conversions per call by gap). Bucket 0 is "first" (no
 * earlier contact of the campaign in the customer's state), then 0-6, 7-13,
 * 14-20, 21-29, 30-44, 45-59, 60-89 and 90+ days: weeks inside the usual
 * recovery month, where a repeat contact's worth changes fastest. */
#define MD_GAP_BUCKETS 9
#define MD_GAP_FIRST (-1)    /* gap_days of a first contact */
#define MD_GAP_UNKNOWN (-2)  /* gap_days not recorded (a follow-up, an older record) */
int md_gap_bucket(int64_t gap_days); /* MD_GAP_FIRST -> 0; MD_GAP_UNKNOWN -> -1 */
const char *md_gap_bucket_name(int bucket);
int md_gap_bucket_by_name(const char *name, size_t len); /* -1 when it names none */

typedef struct md_contribution {
    int feature; /* index into the campaign's features, or -1 for the static tier */
    double value;
    double contribution;
} md_contribution;

#define MD_MAX_FEATURES 64

/* A decision the model made, as recorded for `momentd fit` (the layout is
 * cstate.c's: field "q:<campaign>:<time>"): the model's inputs then and
 * whether a conversion followed within the campaign's attribution window. */
#define MD_DECISION_MAX_VALUES 48
typedef enum md_decision_kind {
    MD_DECISION_CONTACTED = 't', /* a trigger sent to a channel */
    MD_DECISION_HOLDOUT = 'h',   /* the same decision for a holdout customer: not contacted */
    MD_DECISION_SAMPLED = 'n',   /* a sampled decision not to contact */
    MD_DECISION_RELEASED = 'u',  /* a trigger the channel never made (not_called, expired) */
} md_decision_kind;

typedef struct md_decision {
    char campaign[72]; /* "" when the field names it by its code alone (the customer hash's form) */
    char code[6];      /* the campaign's short code (md_state_code) */
    int64_t ts_ms;
    char kind; /* md_decision_kind */
    bool converted;
    uint32_t schema; /* the model's schema then (md_rcampaign.schema) */
    /* The features' values before cap and transform, in the model's order,
     * then for each static attribute the 1-based index of its level among
     * the model's offsets (0: absent or another level), then the campaign's
     * fatigue at the decision (records made before it was kept lack it). */
    double values[MD_DECISION_MAX_VALUES];
    size_t n_values;
} md_decision;

/* Parses one customer-hash field and its value as a decision record; false
 * when the field is not one (or is malformed). */
bool md_decision_parse(const char *field, size_t flen, const char *value, size_t vlen, md_decision *out);
/* The field and value md_decision_parse reads back (a trace, a test): the
 * older form, by the campaign's name, which d must hold. */
void md_decision_format(const md_decision *d, char *field, size_t fsz, char *value, size_t vsz);
/* The customer's decision records (explain): how many, and record i (false
 * if it cannot be read back, which the loader already refused). */
size_t md_cstate_decision_count(const md_cstate *cs);
bool md_cstate_decision(const md_cstate *cs, size_t i, md_decision *out);

/* One campaign's evaluation on one event (or at one instant for explain). */
typedef struct md_campaign_eval {
    double score;
    double logit;
    double static_part;
    size_t n_contrib;
    md_contribution contrib[MD_MAX_FEATURES]; /* in feature order; md_engine_evaluate sorts them, largest first */
    md_suppress suppressed;                   /* NONE when fired */
    bool untimed;                             /* a block time alone will not lift (below threshold, opt-out, ...) */
    bool fired;
    bool holdout;
    int channel;                  /* chosen channel when routed, else -1 */
    int arm;                      /* the customer's policy arm, or -1 when the campaign has none */
    double fatigue;               /* the campaign's fatigue now, decayed */
    double p_contact;             /* score x (1 - fatigue_penalty)^fatigue: what both policy modes compare with the threshold */
    double value;                 /* expected value of contacting now on channel, yuan (the moment's priority) */
    double required_gap_days;     /* cooldown now */
    double days_since_last_contact; /* -1 when never contacted by this campaign */
    int64_t eligible_again_ms;    /* earliest time cooldown/blocks allow a contact; 0 = now */
    const char *deciding_rule;    /* what eligible_again_ms is due to */
} md_campaign_eval;

/* A trigger to produce. payload is owned by the md_engine_out. */
typedef struct md_trigger {
    char id[MD_TRIGGER_ID_LEN];
    int campaign;
    int channel;
    bool holdout;
    const char *topic;
    char *payload;
} md_trigger;

#define MD_MAX_CAMPAIGNS 32

/* A channel's capacity (channels[].capacity) as the caller grants it for
 * the decisions it is about to ask for: how many more moments the channel
 * may take (-1: no limit), and when it next frees (the start of the next
 * slot of the exhausted limit). The engine takes one for each moment it
 * emits on the channel (taken counts them) and holds the others for
 * capacity, scheduled for when it frees (docs/SPEC.md section 6). */
typedef struct md_capacity {
    int64_t left;
    int64_t frees_at_ms;
    int64_t taken;
} md_capacity;

/* How far into the first second after its channel frees a decision held
 * for capacity comes back: less the higher its value (ms, 0-999). */
int64_t md_capacity_rank_offset_ms(double value);

typedef struct md_engine_out {
    /* Per channel, set by the caller and kept across calls; NULL: no
     * channel has a capacity. */
    md_capacity *capacity;
    md_applied applied;
    size_t n_campaigns;
    md_campaign_eval eval[MD_MAX_CAMPAIGNS];
    size_t n_triggers;
    md_trigger triggers[MD_MAX_CAMPAIGNS];
    /* Contact records for the contact-point key (one per real contact). */
    size_t n_contact_point_records;
    /* Conversions this event was attributed as (one per campaign at most). */
    size_t n_conversions;
    /* Event ids the guard forgot to make room while still within the
     * horizon (a customer with more than its capacity of events in it). */
    size_t dedupe_evicted;
    /* Decisions to contact that came too late: the moment had expired
     * before it could be emitted (docs/SPEC.md section 6). */
    size_t n_stale;
    /* Decisions to contact held because their channel had no capacity left. */
    size_t n_held;
    /* md_engine_outcome: why a follow-up was not sent, NONE when none was stopped. */
    md_suppress follow_up_suppressed;
} md_engine_out;

void md_engine_out_init(md_engine_out *out);
void md_engine_out_fini(md_engine_out *out); /* frees payloads */

/* Contact history of one contact point (a phone number shared by several
 * accounts), kept under its own key. Plain counts over time. */
typedef struct md_cpstate md_cpstate;
md_cpstate *md_cpstate_new(void);
void md_cpstate_destroy(md_cpstate *cp);
void md_cpstate_reset(md_cpstate *cp);
void md_cpstate_load_field(md_cpstate *cp, const char *field, const char *value);
/* Whether a profile value grants a channel's consent (channels[].consent):
 * "true", "yes", "granted" (any case) or "1"; NULL (absent) does not. */
bool md_consent_granted(const char *value);
/* Whether the contact point is on the do-not-contact list for channel
 * (momentd dnc --contact-points), or for every channel. cp may be NULL. */
bool md_cpstate_do_not_contact(const md_cpstate *cp, const char *channel);

/* Processes one parsed event against the customer's state at the event's own
 * time. cp may be NULL (customer without a contact point). Records hash
 * operations in ops (customer key) and cp_ops (contact-point key), updates cs
 * and cp in memory to match, and fills out. emitted_at_ms is the wall clock
 * written into triggers. Pure: no I/O, no clock. */
md_err md_engine_process(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_event *ev, const md_source *src,
                         int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_engine_out *out);

/* The schedule (docs/SPEC.md section 6): a decision made at t without an
 * event, for a customer whose due time (md_cstate_due) has come: when a
 * cooldown, quiet hours, a blackout or a cap that alone held a campaign back
 * ends, and the campaign still clears its bar, it fires then. Does nothing
 * when the customer is not due by t (an event re-decided it meanwhile).
 * Every decision, by event or schedule, re-schedules the customer. */
md_err md_engine_due(const md_config *cfg, md_cstate *cs, md_cpstate *cp, int64_t t, int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops,
                     md_engine_out *out);

/* Records what only the end of a batch knows: each bucket series changed
 * since the state was loaded, written back whole (one field per series, so a
 * series touched by many events of the batch is written once). Call after
 * the customer's last md_engine_process of the batch, before applying ops. */
void md_cstate_flush(md_cstate *cs, md_ops *ops);

/* What became of an outcome. */
typedef enum md_outcome_applied {
    MD_OUTCOME_APPLIED = 0,      /* funnel, fatigue and blocks updated */
    MD_OUTCOME_DUP_OFFSET,       /* this partition offset was already applied: redelivery */
    MD_OUTCOME_DUPLICATE,        /* this status was already reported for this trigger */
    MD_OUTCOME_UNKNOWN_TRIGGER   /* no such trigger for this customer, campaign and channel (or a holdout one): ignored */
} md_outcome_applied;

const char *md_outcome_applied_name(md_outcome_applied a);

/* Applies one outcome (docs/SPEC.md section 8) to the customer's state: the
 * trigger's funnel stage once per status; fatigue +1 on no_answer, declined,
 * complaint and a reached call shorter than outcomes.hangup_within; fatigue
 * reset on opened and converted; complaint starts the complaint block;
 * opt_out blocks every campaign for good. Then the campaign's follow-ups
 * whose `after` matches: each becomes a trigger in out (and the outbox) with
 * not_before = the outcome's time + gap, moved past the channel's quiet
 * hours, unless a block or a cap forbids a contact then. cp may be NULL.
 * Pure, like md_engine_process. */
md_err md_engine_outcome(const md_config *cfg, md_cstate *cs, md_cpstate *cp, const md_outcome *o, const md_source *src,
                         int64_t emitted_at_ms, md_ops *ops, md_ops *cp_ops, md_outcome_applied *applied, md_engine_out *out);

/* Applies one profile (json NULL: a tombstone, which deletes it) from src
 * to the customer's state, once per offset: MD_APPLIED, MD_DUP_OFFSET for a
 * redelivery (nothing recorded), or MD_TOO_LATE never. src may be NULL (no
 * watermark: file or simulated input). A profile that is not an object of
 * scalars returns MD_ERR_BAD_EVENT with the reason in errstr and changes
 * nothing but the watermark; inputs are validated with md_profile_check
 * before they are batched. */
md_err md_engine_profile(md_cstate *cs, const char *json, const md_source *src, md_ops *ops, md_applied *applied, char *errstr,
                         size_t errstr_size);

/* The contact point the customer's profile names (the configured
 * contact_point attribute), or NULL when it names none. Valid until the
 * state changes. */
const char *md_cstate_contact_point(const md_cstate *cs);
/* The hash field that holds it (for a store that must know a customer's
 * contact point before it decodes the hash). */
const char *md_cstate_contact_point_field(void);

/* How long a contact point's key is kept after an apply: the longest cap
 * span plus a day, so no cap ever counts a contact that was forgotten. */
int64_t md_cpstate_ttl_ms(const md_config *cfg);

/* Evaluates every campaign at time now_ms without an event and without
 * changing anything (explain). fire_on rules are skipped. */
void md_engine_evaluate(const md_config *cfg, md_cstate *cs, const md_cpstate *cp, int64_t now_ms, md_engine_out *out);

/* ------------------------------------------------------------------------- */
/* The pure pieces, exposed for tests and tools                               */

/* Sum of a series' buckets in the span_ms window ending at t_ms. */
int64_t md_cstate_window_raw(const md_cstate *cs, int window, int64_t t_ms);
/* Window value as features see it (fen converted to yuan for amount sums). */
double md_cstate_window(const md_config *cfg, const md_cstate *cs, int window, int64_t t_ms);
bool md_cstate_balance(const md_cstate *cs, double *balance);
double md_cstate_fatigue(const md_cstate *cs, int campaign, int64_t t); /* decayed to t */

/* The contact policy (docs/SPEC.md section 6).
 *
 * md_fatigue_at: fatigue stored as amount at since_ms, halved every
 * half_life_ms after it (since_ms 0: an older state, not decayed).
 *
 * md_contact_value: what contacting now is expected to be worth, yuan:
 *   p x conversion_value x (1 - repeat_penalty x exp(-d / recovery_days))
 *     - contact_cost - unwanted_cost x (1 - p)
 * where d is the days since the campaign's last contact (< 0: never, no
 * repeat penalty); fixed mode has no repeat term (d = never).
 *
 * md_cooldown_required_days: the gap after which a contact at probability p
 * is worth as much as one at the threshold made with no contact before it:
 * fixed: fixed_days; adaptive: recovery_days x ln(repeat_penalty x p x V /
 * ((p - threshold) x (V + unwanted_cost))), within [min_days, max_days]
 * (max_days at or below the threshold). */
double md_fatigue_at(double amount, int64_t since_ms, int64_t t_ms, int64_t half_life_ms);
double md_contact_value(const md_cfg_cooldown *cd, double p, double days_since_contact, double conversion_value, double contact_cost,
                        double unwanted_cost);
double md_cooldown_required_days(const md_cfg_cooldown *cd, double p, double threshold, double conversion_value, double unwanted_cost);

/* Whether local minute-of-day falls in [start, end) (wrapping past midnight);
 * start == end means no quiet hours. */
bool md_quiet_hours_active(int start_min, int end_min, int64_t t_ms, int utc_offset_min);

/* v in decimal into out (at least 21 bytes), terminated; its length. As
 * snprintf "%lld" does, without parsing a format: state fields are written
 * by the thousand per batch, and snprintf was a tenth of momentd's CPU. */
size_t md_fmt_i64(char *out, int64_t v);

/* v's low 4 * digits bits as that many lower-case hex digits, with leading
 * zeros, into out, terminated ("%0*" PRIx64 without printf): trigger ids,
 * decision records' schemas and the guard's older field names. */
void md_fmt_hex(char *out, uint64_t v, int digits);

/* The strings parts[0..n_parts) one after another into out (size bytes),
 * cut and terminated as snprintf's "%s%s..." cuts them; the length
 * written. MD_JOIN(out, size, s1, s2, ...) lists them in place. The
 * funnel's fields, a trigger's record and its id are made this way at
 * every trigger and outcome: snprintf parsed its format for each, about
 * 400 instructions a string (bench/instructions). */
size_t md_join(char *out, size_t size, const char *const *parts, size_t n_parts);
#define MD_JOIN(out, size, ...) \
    md_join(out, size, (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* A decimal int64 of len bytes exactly as md_fmt_i64 writes it: an
 * optional '-', then 1 to 19 digits, nothing else, within int64. false
 * for anything else (blanks, '+', a point, an overflow). */
bool md_parse_i64(const char *s, size_t len, int64_t *out);

/* A decimal of len bytes, "[-][<digits>][.<digits>]" with a digit, at
 * most 15 from the first that is not 0 and at most 22 after the point,
 * read as strtod reads it, without strtod: the digits make an integer m
 * that a double holds exactly, and m / 10^k, one correctly rounded
 * division of two exact doubles, is the double nearest the text. false
 * for any other text (an exponent, a '+', blanks, more digits): the
 * caller then asks strtod. An event's amount, a balance and a profile's
 * numbers are read this way (strtod cost about 700 instructions a
 * number). */
bool md_parse_f64(const char *s, size_t len, double *out);

/* 64-bit hash of data (FNV-1a with a final mix), stable across runs and
 * machines: it names stored series, and named the event-id guard's entries
 * before the guard was keyed. Not for strings an attacker chooses: its
 * collisions can be computed. */
uint64_t md_hash64(const void *data, size_t len, uint64_t seed);

/* SipHash-2-4 of data under a 128-bit secret key (key[0] the first 8 key
 * bytes, little-endian): collisions cannot be chosen without the key. For
 * the event-id guard, whose ids come from producers (cfg->dedupe.id_key). */
uint64_t md_siphash24(const uint64_t key[2], const void *data, size_t len);

/* Stable membership in [0, 10000): hash of customer and campaign. The
 * campaign's half is md_holdout_seed (a configuration keeps it, per
 * campaign: md_holdout_bucket_seeded). */
unsigned md_holdout_bucket(const char *customer_id, const char *campaign);
unsigned md_holdout_bucket_seeded(const char *customer_id, uint64_t seed);
uint64_t md_holdout_seed(const char *campaign);
/* Whether campaign c's decisions not to contact are sampled for this
 * customer (learning.sample_pct; a stable hash of its own, independent of
 * holdout and arms). md_learning_seed is the per-campaign part. */
bool md_learning_sampled(const md_config *cfg, int c, const char *customer_id);
uint64_t md_learning_seed(const char *campaign);

/* The customer's policy arm in campaign c (a stable hash of customer and
 * campaign, independent of the holdout one, walked through the arms'
 * cumulative shares), or -1 when the campaign has no arms. md_arm_seed is
 * the campaign's half of the hash. */
int md_policy_arm(const md_config *cfg, int c, const char *customer_id);
uint64_t md_arm_seed(const char *campaign);
/* The model, threshold and re-arm level campaign c applies to a customer of
 * policy arm `arm` (-1: none): the arm's when it has a model of its own
 * (a candidate tried live), else the campaign's. */
const md_cfg_model *md_campaign_model(const md_config *cfg, int c, int arm);
double md_campaign_threshold(const md_config *cfg, int c, int arm);
double md_campaign_rearm_below(const md_config *cfg, int c, int arm);

/* Deterministic trigger id from campaign, customer and causing event. */
void md_trigger_id(const char *campaign, const char *customer_id, const char *event_id, char out[MD_TRIGGER_ID_LEN]);

/* Evaluated tags of the last md_engine_process / md_engine_evaluate call on cs:
 * writes a JSON array of the true tags (statistical ones as "name:value"). */
struct md_jsonw;
void md_engine_write_tags(const md_config *cfg, const md_cstate *cs, struct md_jsonw *w);
/* The same tags grouped by their configured category (tags[].category): an
 * object of category -> array of the true rule and mined tags in it; tags
 * without a category and categories with no true tag are left out. */
void md_engine_write_tag_categories(const md_config *cfg, const md_cstate *cs, struct md_jsonw *w);

#endif
