/* event.h: the input events of docs/SPEC.md section 2, parsed and validated.
 *
 * A parsed event is plain data: fixed-size buffers, no heap pointers, so the
 * consumer can keep a batch of them in one array and nothing needs freeing.
 * Parsing never changes any state; a message is either a complete, typed
 * event or a rejection with one machine-readable reason. */
#ifndef MOMENTD_EVENT_H
#define MOMENTD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/error.h"

#define MD_EVENT_ID_MAX 128  /* bytes, docs/SPEC.md section 2 */
#define MD_CUSTOMER_ID_MAX 64 /* bytes, docs/SPEC.md section 2 */
#define MD_TOKEN_MAX 64      /* channel, kind, reason, page id */
#define MD_PAGES_MAX 64      /* hard ceiling; limits.max_pages may lower it */

typedef enum md_event_type {
    MD_EVENT_PAYMENT = 0,
    MD_EVENT_CALL = 1,
    MD_EVENT_APP_LOGIN = 2,
    MD_EVENT_TYPE_COUNT
} md_event_type;

/* "payment", "call", "app_login". */
const char *md_event_type_name(md_event_type type);

typedef struct md_event {
    md_event_type type;
    char event_id[MD_EVENT_ID_MAX + 1];
    char customer_id[MD_CUSTOMER_ID_MAX + 1];
    int64_t ts_ms; /* event time, epoch milliseconds UTC */

    /* payment */
    double amount;
    char channel[MD_TOKEN_MAX + 1]; /* "" when absent */
    char kind[MD_TOKEN_MAX + 1];
    bool late;
    bool has_balance_after;
    double balance_after;

    /* call */
    char reason[MD_TOKEN_MAX + 1];
    int64_t duration_s;
    bool inbound;

    /* app_login */
    int64_t session_s;
    size_t n_pages;
    /* Last: a batch keeps an event only up to its last page (batch.c), and
     * nothing reads past pages[n_pages - 1]. */
    char pages[MD_PAGES_MAX][MD_TOKEN_MAX + 1];
} md_event;

/* The bytes of ev up to its last page: all of it that anything reads (a
 * batch keeps no more of an event). */
size_t md_event_used_bytes(const md_event *ev);
/* Empties ev's fields before its pages, no pages among them. */
void md_event_clear(md_event *ev);

/* Why a message was rejected: the code travels in the dead letter and labels
 * the metric, so these strings are an interface; add, never rename. */
#define MD_REJECT_MAP(X)                                                        \
    X(NONE, "none", "accepted")                                                 \
    X(TOO_LARGE, "too_large", "message larger than limits.max_message_bytes")   \
    X(NOT_JSON, "not_json", "not valid JSON (or not valid UTF-8)")              \
    X(NOT_OBJECT, "not_object", "the top-level JSON value is not an object")    \
    X(TOO_DEEP, "too_deep", "nesting deeper than limits.max_depth")             \
    X(MISSING_FIELD, "missing_field", "a required field is absent")             \
    X(WRONG_TYPE, "wrong_type", "a field has the wrong JSON type")              \
    X(DUPLICATE_FIELD, "duplicate_field", "a known field appears twice")        \
    X(UNKNOWN_TYPE, "unknown_type", "type is not payment, call or app_login")   \
    X(BAD_VALUE, "bad_value", "a field has a value outside its allowed set")    \
    X(BAD_NUMBER, "bad_number", "a number is not finite or out of range")       \
    X(STRING_TOO_LONG, "string_too_long", "a string exceeds its length limit")  \
    X(EMPTY_STRING, "empty_string", "a required string is empty")               \
    X(TOO_MANY_ITEMS, "too_many_items", "an array exceeds limits.max_pages")    \
    X(BAD_TIMESTAMP, "bad_timestamp", "ts is not RFC 3339 nor epoch millis, or before 2000") \
    X(FUTURE_TIMESTAMP, "future_timestamp", "ts is further ahead than limits.max_future_skew_s") \
    X(KEY_MISMATCH, "key_mismatch", "the Kafka message key is not the customer_id") \
    X(UNKNOWN_STATUS, "unknown_status", "an outcome's status is not one of docs/SPEC.md section 8")

typedef enum md_reject {
#define MD_REJECT_ENUM(name, code, text) MD_REJECT_##name,
    MD_REJECT_MAP(MD_REJECT_ENUM)
#undef MD_REJECT_ENUM
        MD_REJECT_COUNT
} md_reject;

/* The other dead-letter reasons (the same interface rules): a profile
 * message md_profile_check refused, and an input whose customer's key Redis
 * refused (WRONGTYPE, CROSSSLOT, a script's error; docs/SPEC.md section 7). */
#define MD_DEAD_LETTER_BAD_PROFILE "bad_profile"
#define MD_DEAD_LETTER_REDIS_REFUSED "redis_refused"

/* The stable machine-readable code ("not_json"), and a one-line description. */
const char *md_reject_code(md_reject r);
const char *md_reject_text(md_reject r);

typedef struct md_event_limits {
    size_t max_message_bytes;
    int64_t max_future_skew_ms;
    size_t max_pages;
    int max_depth;
} md_event_limits;

/* Outcome of a parse: reason is MD_REJECT_NONE on success; detail names the
 * field and what was wrong, for logs and the dead letter. */
typedef struct md_parse_result {
    md_reject reason;
    char detail[192];
} md_parse_result;

typedef struct md_event_parser md_event_parser;

/* Creates a parser with the given limits (copied). Returns NULL on allocation
 * failure. The parser is reused for every message and is not thread-safe. */
md_event_parser *md_event_parser_new(const md_event_limits *limits);
void md_event_parser_destroy(md_event_parser *p); /* accepts NULL */

/* Parses one message of len bytes (not NUL-terminated). key/keylen is the
 * Kafka message key; key == NULL skips the key check (file input). now_ms is
 * the wall clock, used only for the future-skew check. On success fills *out
 * and returns MD_ERR_OK; otherwise returns MD_ERR_BAD_EVENT with res->reason
 * set and *out unspecified. */
md_err md_event_parse(md_event_parser *p, const char *buf, size_t len, const char *key, size_t keylen,
                      int64_t now_ms, md_event *out, md_parse_result *res);

/* ------------------------------------------------------------------------- */
/* Outcomes (docs/SPEC.md section 8): what a channel's subscriber reports back.       */

#define MD_OUTCOME_STATUS_MAP(X)                                               \
    X(SENT, "sent")                                                            \
    X(DELIVERED, "delivered")                                                  \
    X(REACHED, "reached")                                                      \
    X(OPENED, "opened")                                                        \
    X(CONVERTED, "converted")                                                  \
    X(DECLINED, "declined")                                                    \
    X(NO_ANSWER, "no_answer")                                                  \
    X(COMPLAINT, "complaint")                                                  \
    X(OPT_OUT, "opt_out")                                                      \
    X(NOT_CALLED, "not_called")                                                \
    X(EXPIRED, "expired")

typedef enum md_outcome_status {
#define MD_OUTCOME_ENUM(name, text) MD_OUTCOME_##name,
    MD_OUTCOME_STATUS_MAP(MD_OUTCOME_ENUM)
#undef MD_OUTCOME_ENUM
        MD_OUTCOME_STATUS_COUNT
} md_outcome_status;

/* "sent", "no_answer", ...: stable, they label funnel counters. */
const char *md_outcome_status_name(md_outcome_status s);

typedef struct md_outcome {
    char trigger_id[MD_EVENT_ID_MAX + 1];
    char customer_id[MD_CUSTOMER_ID_MAX + 1];
    char campaign[MD_TOKEN_MAX + 1];
    char channel[MD_TOKEN_MAX + 1];
    md_outcome_status status;
    int64_t ts_ms;
    bool has_duration;
    int64_t duration_s; /* optional: length of a connected call */
} md_outcome;

/* Parses one outcome message, with the same limits, key check and reasons as
 * md_event_parse (and MD_REJECT_UNKNOWN_STATUS). Unknown fields are ignored. */
md_err md_outcome_parse(md_event_parser *p, const char *buf, size_t len, const char *key, size_t keylen,
                        int64_t now_ms, md_outcome *out, md_parse_result *res);

/* Whether id (len bytes) may name Redis keys: customer ids and contact
 * points become hash tags ("<prefix>:{<id>}", "<prefix>:{cp:<id>}"), so
 * '{' or '}' would move a customer's keys to other cluster slots, '*' and
 * '?' are glob characters in SCAN patterns, control characters have no
 * place in an id, and a customer id beginning "cp:" would write into a
 * contact point's key. false with the reason in detail. */
bool md_id_check(const char *id, size_t len, char *detail, size_t detail_size);

/* What an id an operator gives names: a customer, or a contact point (a
 * phone number, shared by accounts). */
typedef enum md_id_kind { MD_ID_CUSTOMER, MD_ID_CONTACT_POINT } md_id_kind;

/* Parses an RFC 3339 timestamp ("2026-11-24T08:00:00+08:00", fraction and
 * lower-case separators allowed) of len bytes into epoch milliseconds.
 * Returns false when it is not one. */
bool md_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);

/* The calendar date of t_ms at utc_offset_min minutes east of UTC: year,
 * month 1-12, day 1-31 (proleptic Gregorian). */
void md_civil_date(int64_t t_ms, int utc_offset_min, int *year, unsigned *month, unsigned *day);

/* "YYYY-MM-DD" of t_ms at utc_offset_min minutes east of UTC. */
void md_format_day(int64_t t_ms, int utc_offset_min, char out[16]);

/* Days in month 1-12 of year (Gregorian); 0 for another month number. */
unsigned md_days_in_month(int year, unsigned month);

/* The event time of a message, read without checking the rest: the top
 * level's "ts" (an RFC 3339 string or integer epoch milliseconds) among its
 * first MD_PEEK_TIME_BYTES bytes. For ordering input by event time before
 * it is parsed (the consumer's alignment of its topics); md_event_parse
 * still decides whether the message is valid. false when there is no
 * readable "ts" there (the message is then not held back: it is parsed,
 * and dead-lettered if bad, in its turn). */
#define MD_PEEK_TIME_BYTES 4096
bool md_event_peek_time(const char *buf, size_t len, int64_t *ts_ms);

/* Earliest accepted event time: 2000-01-01T00:00:00Z. */
#define MD_MIN_EVENT_TIME_MS INT64_C(946684800000)

#endif
