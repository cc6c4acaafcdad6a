/* rules.h (private): the configuration compiled for the engine.
 *
 * The loader's structs hold text; this holds what the engine runs: compiled
 * expressions with names resolved to slots, windows grouped into shared bucket
 * series, channels and campaigns by index. It is built once per configuration
 * (md_rules_compile, called by the loader) and read-only afterwards. */
#ifndef MOMENTD_RULES_H
#define MOMENTD_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/config.h"
#include "momentd/event.h"
#include "momentd/expr.h"

/* A slot is class << 16 | index. */
enum md_slot_class { MD_SLOT_EVENT = 1, MD_SLOT_WINDOW, MD_SLOT_BUILTIN, MD_SLOT_TAG, MD_SLOT_PROFILE, MD_SLOT_SCORE };
#define MD_SLOT(cls, idx) ((int)(((cls) << 16) | (idx)))
#define MD_SLOT_CLASS(s) ((s) >> 16)
#define MD_SLOT_INDEX(s) ((s) & 0xFFFF)

enum md_event_field {
    MD_EF_TYPE, MD_EF_AMOUNT, MD_EF_CHANNEL, MD_EF_KIND, MD_EF_LATE, MD_EF_BALANCE_AFTER, MD_EF_REASON,
    MD_EF_DURATION_S, MD_EF_DIRECTION, MD_EF_INBOUND, MD_EF_PAGES, MD_EF_SESSION_S, MD_EF_COUNT
};
extern const char *const md_event_field_names[MD_EF_COUNT];

enum md_builtin {
    MD_BI_BALANCE, MD_BI_DAYS_SINCE_PAYMENT, MD_BI_DAYS_SINCE_CALL, MD_BI_DAYS_SINCE_APP_LOGIN,
    MD_BI_DAYS_SINCE_CONTACT, MD_BI_DAY_OF_MONTH, MD_BI_DAYS_IN_MONTH, MD_BI_COUNT
};
extern const char *const md_builtin_names[MD_BI_COUNT];

typedef struct md_rsignal {
    int type; /* md_event_type, or -1 for any */
    md_expr *where; /* NULL = every event of the type */
} md_rsignal;

/* Windows over the same signal, granularity and summed field share one bucket
 * series in Redis, so a second window over the same signal costs no memory. */
enum md_sum_field { MD_SUM_NONE, MD_SUM_AMOUNT, MD_SUM_DURATION, MD_SUM_SESSION };
typedef struct md_rseries {
    int signal;
    int64_t granularity_ms;
    int sum; /* md_sum_field; sums of amount are stored in fen (1/100 yuan) to stay integers */
    int64_t retention_ms; /* longest span of its windows + limits.max_lateness */
    /* Redis field: "S" + a hash of (signal name, granularity, sum). Keyed by
     * what the series is, not by its position, so a configuration that adds,
     * removes or reorders windows or signals (a reload, a restart) keeps
     * reading every other series' history. */
    char field[16];
    size_t field_len; /* strlen(field), for matching fields as they load */
    /* The name's hash part as states before 2026-12-06 wrote it, after "S"
     * (packed) or "s" (decimal): still read, renamed by the next flush. */
    char older[16];
    size_t older_len;
} md_rseries;

typedef struct md_rwindow {
    int series;
    int64_t span_ms;
    double scale; /* 0.01 for amounts (fen to yuan), else 1 */
} md_rwindow;

enum md_tag_class { MD_TAG_STATISTICAL, MD_TAG_RULE, MD_TAG_MINED };
typedef struct md_rtag {
    int cls;
    md_expr *expr;     /* rule, mined */
    int profile_attr;  /* statistical */
} md_rtag;

typedef struct md_rfeature {
    md_expr *expr;
    bool log1p;
    double cap; /* the weight is the model's (the campaign's or its arm's: md_campaign_model) */
} md_rfeature;

typedef struct md_rstatic {
    int profile_attr;
} md_rstatic;

typedef struct md_rroute {
    int channel;
    md_expr *when; /* NULL = always */
} md_rroute;

typedef struct md_rfollow_up {
    int after;        /* md_outcome_status */
    int from_channel; /* -1 = any */
    int channel;
} md_rfollow_up;

/* A campaign's or topic's short name in a customer's field names: 5 base-36
 * digits, leading zeros kept, of FNV-1a 32 over the name (md_state_code in
 * cstate.c, the layout's owner). Configuration refuses two campaigns, or two
 * input topics, with one code. */
#define MD_STATE_CODE_LEN 5
/* A profile attribute the rules read, as it is named in the stored profile:
 * four base-36 digits of FNV-1a 32 of its name (cstate.c). */
#define MD_PROFILE_CODE_LEN 4
void md_profile_code(const char *name, char out[MD_PROFILE_CODE_LEN + 1]);
void md_state_code(const char *name, char out[MD_STATE_CODE_LEN + 1]);
#define MD_INPUT_TOPICS 5
/* The id of the names r (being compiled) wants short codes for:
 * md_codes_id of any table made for them (cstate.c). 0 when out of memory. */
struct md_rules;
uint64_t md_codes_names_id(const struct md_rules *r);
/* A series' field name into field: "S" + FNV-1a 32 over "<signal>|<granularity
 * ms>|<sum>" modulo 36^4, in four base-36 digits (cstate.c, the layout's
 * owner); into older (may be NULL) the whole hash in base 36, the name's part
 * after "S" or "s" in states written before 2026-12-06. */
void md_series_field(const char *signal, int64_t granularity_ms, int sum, char field[16], char older[16]);

typedef struct md_rcampaign {
    md_expr *eligible; /* NULL = everyone */
    md_expr *fire_on;  /* NULL = any event */
    md_expr *conversion; /* NULL = conversions are not observed */
    md_rfeature *features;
    size_t n_features;
    md_rstatic *statics;
    size_t n_statics;
    md_rroute *routes;
    size_t n_routes;
    md_rfollow_up *follow_ups;
    size_t n_follow_ups;
    bool fixed_cooldown;
    /* What a decision record of this campaign's model means: a hash of its
     * features' expressions and its static attributes and their levels, in
     * order. Records of another schema are not this model's inputs. */
    uint32_t schema;
    /* The seed of the learning sample's stable hash (md_learning_sampled),
     * derived from the campaign's name once, not per decision. */
    uint64_t learning_seed;
    /* The same for the holdout group (md_holdout_bucket) and the policy arm
     * (md_policy_arm), which every decision and every score reads. */
    uint64_t holdout_seed, arm_seed;
    int64_t starts_ms, ends_ms; /* campaigns[].starts / ends; 0 = none */
    bool include_list_only;     /* campaigns[].audience "include_list" */
    char code[MD_STATE_CODE_LEN + 1]; /* its short name in state fields (md_state_code) */
} md_rcampaign;

typedef struct md_rchannel {
    int quiet_start_min, quiet_end_min;
    int consent_attr; /* profile attribute that grants consent, or -1: none needed */
    bool confirm_sent; /* channels[].confirm "sent" */
} md_rchannel;

/* Most limits in channels[].capacity. */
#define MD_CAPACITY_LIMITS 4

typedef struct md_rules {
    size_t n_signals, n_windows, n_tags, n_campaigns, n_channels;
    bool any_confirm_sent; /* a channel's contacts wait for sent: decisions look for lapses */
    md_rsignal *signals;
    md_rseries *series;
    size_t n_series;
    md_rwindow *windows;
    md_rtag *tags;
    md_rcampaign *campaigns;
    size_t *campaign_order; /* campaign indices, highest priority first (file order among equals) */
    md_rchannel *channels;
    md_expr *blackout_after;
    int default_utc_offset_min;
    int64_t max_cap_span_ms;     /* longest cap span: how long contact records are kept */
    int64_t dedupe_horizon_ms;   /* how long event ids are remembered: dedupe.event_id_horizon,
                                  * but never less than limits.max_lateness */
    int64_t state_ttl_ms;        /* a customer's state expires after this much inactivity */
    int64_t trigger_record_ms;   /* how long trigger records are kept: outcomes.horizon and every attribution */
    int64_t audit_keep_ms;       /* audit.keep; 0 = no audit */
    int64_t decision_keep_ms;    /* how long decision records are kept: learning.keep, at least every
                                  * attribution (a record must outlive its label); 0 = none recorded */
    /* Profile attributes the rules read, by index, and their short names in
     * the stored profile (md_profile_code; "" for contact_point, which is
     * always a field of its own). */
    char **profile_attrs;
    char (*profile_codes)[MD_PROFILE_CODE_LEN + 1];
    size_t n_profile_attrs;
    /* The input topics' codes (md_state_code), in the order payments,
     * calls, app logins, profiles, outcomes: their watermarks' names. */
    char input_topic_codes[MD_INPUT_TOPICS][MD_STATE_CODE_LEN + 1];
    /* md_codes_id of a table for these rules' names (md_codes_names_id): a
     * store finds a configuration's short codes by it once per batch
     * without listing the names again. */
    uint64_t codes_id;
    int attr_contact_point;      /* index of "contact_point" */
    int attr_utc_offset;         /* index of "utc_offset" */
} md_rules;

/* Compiles cfg's rules; on error returns NULL with "<json path>: message" in
 * errstr. The result is owned by cfg (md_config_destroy frees it). */
md_rules *md_rules_compile(const md_config *cfg, char *errstr, size_t errstr_size);
void md_rules_destroy(md_rules *r); /* accepts NULL; needs no cfg */

/* The schema hash of a campaign's model (md_rcampaign.schema). */
uint32_t md_model_schema(const md_cfg_model *m);

/* Index of the named item, or -1. */
int md_rules_channel_index(const md_config *cfg, const char *name);
int md_rules_campaign_index(const md_config *cfg, const char *name);

#endif
