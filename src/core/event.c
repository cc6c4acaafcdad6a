/* event.c: docs/SPEC.md section 2 event parsing with yajl's callback parser
 * (and, for the plain messages nearly all are, md_json_scan's fast path in
 * front of it, which calls the same callbacks: json_scan.h).
 *
 * Kafka payloads are not NUL-terminated, so the tree parser (which calls
 * strlen) is out; the callback parser reads (ptr, len) directly. Every known
 * field's raw value is captured into a fixed slot while parsing, and only after
 * the whole message parsed cleanly are the slots checked against the rules of
 * the event's type. That order matters: `type` may come last, and a message
 * that is broken JSON must be reported as such even if its first fields looked
 * fine. Nothing is allocated per message: yajl's handle, when yajl reads one,
 * comes from the parser's arena. */
#include "momentd/event.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "json_scan.h"
#include "momentd/engine.h"

static const char *const type_names[MD_EVENT_TYPE_COUNT] = {"payment", "call", "app_login"};

const char *md_event_type_name(md_event_type type) {
    return (unsigned)type < MD_EVENT_TYPE_COUNT ? type_names[type] : "?";
}

static const char *const reject_codes[] = {
#define MD_REJECT_CODE(name, code, text) code,
    MD_REJECT_MAP(MD_REJECT_CODE)
#undef MD_REJECT_CODE
};
static const char *const reject_texts[] = {
#define MD_REJECT_TEXT(name, code, text) text,
    MD_REJECT_MAP(MD_REJECT_TEXT)
#undef MD_REJECT_TEXT
};

const char *md_reject_code(md_reject r) { return (unsigned)r < MD_REJECT_COUNT ? reject_codes[r] : "unknown"; }
const char *md_reject_text(md_reject r) { return (unsigned)r < MD_REJECT_COUNT ? reject_texts[r] : "unknown"; }

/* ------------------------------------------------------------------------- */
/* Known fields                                                               */

typedef enum field_id {
    F_EVENT_ID,
    F_TYPE,
    F_CUSTOMER_ID,
    F_TS,
    F_AMOUNT,
    F_CHANNEL,
    F_KIND,
    F_LATE,
    F_BALANCE_AFTER,
    F_REASON,
    F_DURATION_S,
    F_DIRECTION,
    F_PAGES,
    F_SESSION_S,
    F_TRIGGER_ID, /* outcomes */
    F_CAMPAIGN,
    F_STATUS,
    F_COUNT,
    F_UNKNOWN = -1
} field_id;

#define FIELD_NAMES(X)                                                                                                 \
    X("event_id") X("type") X("customer_id") X("ts") X("amount") X("channel") X("kind") X("late") X("balance_after")   \
        X("reason") X("duration_s") X("direction") X("pages") X("session_s") X("trigger_id") X("campaign") X("status")
#define FIELD_NAME(s) s,
#define FIELD_NAME_LEN(s) sizeof(s) - 1,
static const char *const field_names[F_COUNT] = {FIELD_NAMES(FIELD_NAME)};
/* so that a key is compared with the names of its length only (a strlen
 * of each name per key was a tenth of the parse) */
static const unsigned char field_name_len[F_COUNT] = {FIELD_NAMES(FIELD_NAME_LEN)};
_Static_assert(sizeof((const char *[]){FIELD_NAMES(FIELD_NAME)}) == F_COUNT * sizeof(const char *), "a name for each field_id");
#undef FIELD_NAME
#undef FIELD_NAME_LEN

static const char *const status_names[MD_OUTCOME_STATUS_COUNT] = {
#define MD_OUTCOME_NAME(name, text) text,
    MD_OUTCOME_STATUS_MAP(MD_OUTCOME_NAME)
#undef MD_OUTCOME_NAME
};

const char *md_outcome_status_name(md_outcome_status s) {
    return (unsigned)s < MD_OUTCOME_STATUS_COUNT ? status_names[s] : "?";
}

typedef enum jtype { J_NONE, J_STRING, J_NUMBER, J_BOOL, J_NULL, J_ARRAY, J_OBJECT } jtype;

static const char *jtype_name(jtype t) {
    static const char *const n[] = {"nothing", "a string", "a number", "a boolean", "null", "an array", "an object"};
    return n[t];
}

/* Longest raw text kept for a string or number slot; longer values are caught
 * by the per-field length rules before they could matter. */
#define SLOT_TEXT_MAX 160

typedef struct slot {
    jtype jt;
    size_t len; /* full length as seen, even if truncated in text */
    char text[SLOT_TEXT_MAX + 1];
    bool boolean;
} slot;

struct md_event_parser {
    md_event_limits limits;
    /* per-message state */
    int depth;
    field_id cur;       /* field whose value is expected at depth 1 */
    bool in_pages;      /* inside the top-level "pages" array */
    bool seen_top;      /* the top-level value started */
    slot slots[F_COUNT];
    md_event *ev;
    md_parse_result *res;
    md_event scratch; /* the event an outcome parse fills (outcomes have no pages) */
    /* yajl's allocations during one parse (its handle, lexer, buffers and
     * stack: five or six, freed at the end), carved from this arena and let
     * go together when the next parse starts: a malloc and a free of each
     * per message cost a few percent of the per-event path's CPU
     * (bench/core, BENCHMARKS.md). What does not fit goes to malloc. */
    size_t arena_used;
    _Alignas(16) unsigned char arena[8192];
};

/* An arena block: its size, then the bytes yajl asked for. */
typedef struct arena_block {
    size_t size;
    _Alignas(16) unsigned char data[];
} arena_block;

static bool in_arena(const md_event_parser *p, const void *ptr) {
    const unsigned char *c = ptr;
    return c >= p->arena && c < p->arena + sizeof(p->arena);
}

static void *arena_malloc(void *ctx, size_t size) {
    md_event_parser *p = ctx;
    size_t need = sizeof(arena_block) + ((size + 15) & ~(size_t)15);
    if (size > sizeof(p->arena) || p->arena_used + need > sizeof(p->arena)) return malloc(size);
    arena_block *b = (arena_block *)(p->arena + p->arena_used);
    p->arena_used += need;
    b->size = size;
    return b->data;
}

static void arena_free(void *ctx, void *ptr) {
    if (!in_arena(ctx, ptr)) free(ptr); /* an arena block goes with the arena */
}

static void *arena_realloc(void *ctx, void *ptr, size_t size) {
    md_event_parser *p = ctx;
    if (!ptr) return arena_malloc(p, size);
    if (!in_arena(p, ptr)) return realloc(ptr, size);
    arena_block *b = (arena_block *)((unsigned char *)ptr - offsetof(arena_block, data));
    if (size <= b->size) return ptr;
    /* The last block grows where it is (yajl's stack and buffers grow one
     * at a time); another moves. */
    size_t end = (size_t)((unsigned char *)ptr - p->arena) + ((b->size + 15) & ~(size_t)15);
    size_t grown = (size_t)((unsigned char *)ptr - p->arena) + ((size + 15) & ~(size_t)15);
    if (end == p->arena_used && grown <= sizeof(p->arena)) {
        p->arena_used = grown;
        b->size = size;
        return ptr;
    }
    void *n = arena_malloc(p, size);
    if (n) memcpy(n, ptr, b->size);
    return n;
}

static int fail(md_event_parser *p, md_reject r, const char *fmt, ...) {
    if (p->res->reason == MD_REJECT_NONE) {
        va_list ap;
        p->res->reason = r;
        va_start(ap, fmt);
        vsnprintf(p->res->detail, sizeof(p->res->detail), fmt, ap);
        va_end(ap);
    }
    return 0; /* cancels the yajl parse */
}

static field_id lookup_field(const unsigned char *key, size_t len) {
    for (int i = 0; i < F_COUNT; i++)
        if (field_name_len[i] == len && memcmp(field_names[i], key, len) == 0) return (field_id)i;
    return F_UNKNOWN;
}

/* A scalar or container begins. Returns the slot to fill, or NULL when the
 * value is not one we keep (inside an unknown field or deeper). */
static slot *value_slot(md_event_parser *p, jtype jt, int *ok) {
    *ok = 1;
    if (!p->seen_top) {
        p->seen_top = true;
        if (jt != J_OBJECT) *ok = fail(p, MD_REJECT_NOT_OBJECT, "top-level value is %s", jtype_name(jt));
        return NULL;
    }
    if (p->depth != 1 || p->cur == F_UNKNOWN) return NULL;
    slot *s = &p->slots[p->cur];
    if (s->jt != J_NONE) {
        *ok = fail(p, MD_REJECT_DUPLICATE_FIELD, "field '%s' appears more than once", field_names[p->cur]);
        return NULL;
    }
    s->jt = jt;
    return s;
}

static int cb_null(void *ctx) {
    md_event_parser *p = ctx;
    int ok;
    if (p->in_pages && p->depth == 2) return fail(p, MD_REJECT_WRONG_TYPE, "pages: elements must be strings, got null");
    value_slot(p, J_NULL, &ok);
    return ok;
}

static int cb_boolean(void *ctx, int v) {
    md_event_parser *p = ctx;
    int ok;
    if (p->in_pages && p->depth == 2) return fail(p, MD_REJECT_WRONG_TYPE, "pages: elements must be strings, got a boolean");
    slot *s = value_slot(p, J_BOOL, &ok);
    if (s) s->boolean = v != 0;
    return ok;
}

static void keep_text(slot *s, const char *v, size_t len) {
    size_t n = len < SLOT_TEXT_MAX ? len : SLOT_TEXT_MAX;
    memcpy(s->text, v, n);
    s->text[n] = '\0';
    s->len = len;
}

static int cb_number(void *ctx, const char *v, size_t len) {
    md_event_parser *p = ctx;
    int ok;
    if (p->in_pages && p->depth == 2) return fail(p, MD_REJECT_WRONG_TYPE, "pages: elements must be strings, got a number");
    slot *s = value_slot(p, J_NUMBER, &ok);
    if (s) keep_text(s, v, len);
    return ok;
}

static int cb_string(void *ctx, const unsigned char *v, size_t len) {
    md_event_parser *p = ctx;
    int ok;
    if (p->in_pages && p->depth == 2) {
        if (p->ev->n_pages >= p->limits.max_pages)
            return fail(p, MD_REJECT_TOO_MANY_ITEMS, "pages: more than %zu entries", p->limits.max_pages);
        if (len > MD_TOKEN_MAX)
            return fail(p, MD_REJECT_STRING_TOO_LONG, "pages[%zu]: %zu bytes, at most %d", p->ev->n_pages, len, MD_TOKEN_MAX);
        if (memchr(v, '\0', len)) return fail(p, MD_REJECT_BAD_VALUE, "pages[%zu] contains a NUL character (\\u0000)", p->ev->n_pages);
        memcpy(p->ev->pages[p->ev->n_pages], v, len);
        p->ev->pages[p->ev->n_pages][len] = '\0';
        p->ev->n_pages++;
        return 1;
    }
    slot *s = value_slot(p, J_STRING, &ok);
    if (s) keep_text(s, (const char *)v, len);
    return ok;
}

static int open_container(md_event_parser *p, jtype jt) {
    int ok;
    if (p->in_pages && p->depth == 2)
        return fail(p, MD_REJECT_WRONG_TYPE, "pages: elements must be strings, got %s", jtype_name(jt));
    bool top = !p->seen_top;
    value_slot(p, jt, &ok);
    if (!ok) return 0;
    if (!top && p->depth == 1 && p->cur == F_PAGES && jt == J_ARRAY) p->in_pages = true;
    p->depth++;
    if (p->depth > p->limits.max_depth)
        return fail(p, MD_REJECT_TOO_DEEP, "nesting deeper than %d levels", p->limits.max_depth);
    return 1;
}

static int close_container(md_event_parser *p) {
    p->depth--;
    if (p->depth == 1) p->in_pages = false;
    return 1;
}

static int cb_start_map(void *ctx) { return open_container(ctx, J_OBJECT); }
static int cb_end_map(void *ctx) { return close_container(ctx); }
static int cb_start_array(void *ctx) { return open_container(ctx, J_ARRAY); }
static int cb_end_array(void *ctx) { return close_container(ctx); }

static int cb_map_key(void *ctx, const unsigned char *key, size_t len) {
    md_event_parser *p = ctx;
    if (p->depth == 1) p->cur = lookup_field(key, len);
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_boolean, NULL, NULL, cb_number, cb_string, cb_start_map, cb_map_key, cb_end_map,
    cb_start_array, cb_end_array};

/* ------------------------------------------------------------------------- */
/* Timestamps                                                                 */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    /* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic
     * Gregorian calendar, exact for every year we accept. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, int *out) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

void md_civil_date(int64_t t_ms, int utc_offset_min, int *year, unsigned *month, unsigned *day) {
    int64_t secs = t_ms / 1000 + (int64_t)utc_offset_min * 60;
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    /* civil_from_days (Howard Hinnant), the inverse of days_from_civil above. */
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = m;
    *year = (int)(y + (m <= 2));
}

void md_format_day(int64_t t_ms, int utc_offset_min, char out[16]) {
    int y;
    unsigned m, d;
    md_civil_date(t_ms, utc_offset_min, &y, &m, &d);
    if (y >= 0 && y <= 9999) { /* always (event times are bounded): at every funnel increment and moment, without snprintf */
        for (unsigned v = (unsigned)y, k = 4; k-- > 0; v /= 10) out[k] = (char)('0' + v % 10);
        out[4] = '-';
        out[5] = (char)('0' + m / 10);
        out[6] = (char)('0' + m % 10);
        out[7] = '-';
        out[8] = (char)('0' + d / 10);
        out[9] = (char)('0' + d % 10);
        out[10] = '\0';
        return;
    }
    if (snprintf(out, 16, "%04d-%02u-%02u", y, m % 13, d % 32) >= 16) out[0] = '\0'; /* cannot happen: y < 10^4 */
}

unsigned md_days_in_month(int year, unsigned month) {
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12) return 0;
    return days[month - 1] + (month == 2 && leap);
}

bool md_parse_rfc3339(const char *s, size_t len, int64_t *out_ms) {
    int Y, M, D, h, m, sec, oh = 0, om = 0;
    if (len < 20) return false;
    if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' || !digits(s + 8, 2, &D))
        return false;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return false;
    if (!digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > (int)md_days_in_month(Y, (unsigned)M) || h > 23 || m > 59 || sec > 60) return false;
    if (sec == 60) sec = 59; /* a leap second is folded into the second before it */
    size_t i = 19;
    int ms = 0;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) return false;
    }
    if (i >= len) return false;
    int sign = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        sign = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len) {
        sign = s[i] == '+' ? 1 : -1;
        if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + m * 60 + sec - sign * (oh * 3600 + om * 60);
    *out_ms = secs * 1000 + ms;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Field rules                                                                */

static bool require(md_event_parser *p, field_id f, jtype jt) {
    slot *s = &p->slots[f];
    if (s->jt == J_NONE) {
        fail(p, MD_REJECT_MISSING_FIELD, "'%s' is required", field_names[f]);
        return false;
    }
    if (s->jt != jt) {
        fail(p, MD_REJECT_WRONG_TYPE, "'%s' must be %s, got %s", field_names[f], jtype_name(jt), jtype_name(s->jt));
        return false;
    }
    return true;
}

/* An optional field that, when present, must have JSON type jt (null counts
 * as absent). Returns true when the field is present and well-typed. */
static bool optional(md_event_parser *p, field_id f, jtype jt, bool *bad) {
    slot *s = &p->slots[f];
    if (s->jt == J_NONE || s->jt == J_NULL) return false;
    if (s->jt != jt) {
        fail(p, MD_REJECT_WRONG_TYPE, "'%s' must be %s, got %s", field_names[f], jtype_name(jt), jtype_name(s->jt));
        *bad = true;
        return false;
    }
    return true;
}

static bool copy_string(md_event_parser *p, field_id f, char *dst, size_t max, bool allow_empty) {
    slot *s = &p->slots[f];
    if (s->len > max) {
        fail(p, MD_REJECT_STRING_TOO_LONG, "'%s' is %zu bytes, at most %zu", field_names[f], s->len, max);
        return false;
    }
    if (!allow_empty && s->len == 0) {
        fail(p, MD_REJECT_EMPTY_STRING, "'%s' must not be empty", field_names[f]);
        return false;
    }
    /* JSON allows "\u0000"; a C string would end there, so "a\u0000b" would
     * act as customer "a" (found by fuzz/fuzz_event.c). */
    if (memchr(s->text, '\0', s->len)) {
        fail(p, MD_REJECT_BAD_VALUE, "'%s' contains a NUL character (\\u0000)", field_names[f]);
        return false;
    }
    memcpy(dst, s->text, s->len);
    dst[s->len] = '\0';
    return true;
}

bool md_id_check(const char *id, size_t len, char *detail, size_t detail_size) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f || c == '{' || c == '}' || c == '*' || c == '?') {
            snprintf(detail, detail_size, "contains %s%c%s at byte %zu (ids may not hold { } * ? or control characters)",
                     c < 0x20 || c == 0x7f ? "a control character" : "'", c < 0x20 || c == 0x7f ? ' ' : (char)c,
                     c < 0x20 || c == 0x7f ? "" : "'", i);
            return false;
        }
    }
    if (len >= 3 && memcmp(id, "cp:", 3) == 0) {
        snprintf(detail, detail_size, "begins with \"cp:\", the contact points' namespace");
        return false;
    }
    return true;
}

/* A customer id names Redis keys ("<prefix>:{<id>}"): md_id_check's rule. */
static bool customer_id_ok(md_event_parser *p, const char *id) {
    char why[160];
    if (md_id_check(id, strlen(id), why, sizeof(why))) return true;
    fail(p, MD_REJECT_BAD_VALUE, "'customer_id' %s", why);
    return false;
}

static bool number_in(md_event_parser *p, field_id f, double lo, double hi, double *out) {
    slot *s = &p->slots[f];
    double v = 0;
    bool parsed = s->len <= SLOT_TEXT_MAX && md_parse_f64(s->text, s->len, &v); /* a plain decimal: nearly every one */
    if (!parsed && s->len <= SLOT_TEXT_MAX) {
        char *end;
        errno = 0;
        v = strtod(s->text, &end);
        parsed = *end == '\0' && errno != ERANGE;
    }
    if (!parsed || !isfinite(v) || v < lo || v > hi) {
        fail(p, MD_REJECT_BAD_NUMBER, "'%s' = %.40s is not a finite number in [%g, %g]", field_names[f], s->text, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static bool integer_in(md_event_parser *p, field_id f, int64_t lo, int64_t hi, int64_t *out) {
    slot *s = &p->slots[f];
    int64_t quick; /* a plain integer, nearly every one (ts, duration_s, session_s): no strtoll */
    if (md_parse_i64(s->text, s->len, &quick) && quick >= lo && quick <= hi) {
        *out = quick;
        return true;
    }
    if (strpbrk(s->text, ".eE")) {
        fail(p, MD_REJECT_WRONG_TYPE, "'%s' must be an integer, got %.40s", field_names[f], s->text);
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s->text, &end, 10);
    if (s->len > SLOT_TEXT_MAX || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        fail(p, MD_REJECT_BAD_NUMBER, "'%s' = %.40s is out of range [%lld, %lld]", field_names[f], s->text,
             (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static bool check_timestamp(md_event_parser *p, int64_t now_ms) {
    slot *s = &p->slots[F_TS];
    int64_t ts;
    if (s->jt == J_NONE) return fail(p, MD_REJECT_MISSING_FIELD, "'ts' is required"), false;
    if (s->jt == J_STRING) {
        if (s->len > 40 || !md_parse_rfc3339(s->text, s->len, &ts))
            return fail(p, MD_REJECT_BAD_TIMESTAMP, "'ts' = \"%.40s\" is not an RFC 3339 timestamp", s->text), false;
    } else if (s->jt == J_NUMBER) {
        if (!integer_in(p, F_TS, INT64_MIN / 2, INT64_MAX / 2, &ts)) {
            p->res->reason = MD_REJECT_BAD_TIMESTAMP;
            return false;
        }
    } else {
        return fail(p, MD_REJECT_WRONG_TYPE, "'ts' must be a string or an integer, got %s", jtype_name(s->jt)), false;
    }
    if (ts < MD_MIN_EVENT_TIME_MS)
        return fail(p, MD_REJECT_BAD_TIMESTAMP, "'ts' is before 2000-01-01T00:00:00Z"), false;
    if (ts > now_ms + p->limits.max_future_skew_ms)
        return fail(p, MD_REJECT_FUTURE_TIMESTAMP, "'ts' is %lld s ahead of the clock (limit %lld s)",
                    (long long)((ts - now_ms) / 1000), (long long)(p->limits.max_future_skew_ms / 1000)),
               false;
    p->ev->ts_ms = ts;
    return true;
}

#define AMOUNT_MAX 1e9       /* yuan; larger is a unit error upstream */
#define DURATION_MAX 86400   /* one day, for calls and sessions */

static bool check_payment(md_event_parser *p) {
    md_event *ev = p->ev;
    bool bad = false;
    if (!require(p, F_AMOUNT, J_NUMBER) || !number_in(p, F_AMOUNT, 0, AMOUNT_MAX, &ev->amount)) return false;
    if (!require(p, F_KIND, J_STRING) || !copy_string(p, F_KIND, ev->kind, MD_TOKEN_MAX, false)) return false;
    if (optional(p, F_CHANNEL, J_STRING, &bad) && !copy_string(p, F_CHANNEL, ev->channel, MD_TOKEN_MAX, false))
        return false;
    if (bad) return false;
    if (optional(p, F_LATE, J_BOOL, &bad)) ev->late = p->slots[F_LATE].boolean;
    if (bad) return false;
    if (optional(p, F_BALANCE_AFTER, J_NUMBER, &bad)) {
        if (!number_in(p, F_BALANCE_AFTER, -AMOUNT_MAX, AMOUNT_MAX, &ev->balance_after)) return false;
        ev->has_balance_after = true;
    }
    return !bad;
}

static bool check_call(md_event_parser *p) {
    md_event *ev = p->ev;
    bool bad = false;
    char direction[16];
    if (!require(p, F_REASON, J_STRING) || !copy_string(p, F_REASON, ev->reason, MD_TOKEN_MAX, false)) return false;
    if (!require(p, F_DIRECTION, J_STRING) || !copy_string(p, F_DIRECTION, direction, 15, false)) {
        if (p->res->reason == MD_REJECT_STRING_TOO_LONG) {
            p->res->reason = MD_REJECT_BAD_VALUE;
            snprintf(p->res->detail, sizeof(p->res->detail), "'direction' must be \"inbound\" or \"outbound\"");
        }
        return false;
    }
    if (strcmp(direction, "inbound") == 0) ev->inbound = true;
    else if (strcmp(direction, "outbound") == 0) ev->inbound = false;
    else return fail(p, MD_REJECT_BAD_VALUE, "'direction' must be \"inbound\" or \"outbound\", got \"%s\"", direction), false;
    if (optional(p, F_DURATION_S, J_NUMBER, &bad) && !integer_in(p, F_DURATION_S, 0, DURATION_MAX, &ev->duration_s))
        return false;
    return !bad;
}

static bool check_app_login(md_event_parser *p) {
    bool bad = false;
    /* pages: its elements were validated while parsing; only its own type is left. */
    optional(p, F_PAGES, J_ARRAY, &bad);
    if (bad) return false;
    if (optional(p, F_SESSION_S, J_NUMBER, &bad) && !integer_in(p, F_SESSION_S, 0, DURATION_MAX, &p->ev->session_s))
        return false;
    return !bad;
}

static bool check_key(md_event_parser *p, const char *key, size_t keylen, const char *customer_id) {
    size_t cl = strlen(customer_id);
    if (key && (keylen != cl || memcmp(key, customer_id, cl) != 0))
        return fail(p, MD_REJECT_KEY_MISMATCH, "message key \"%.*s\" differs from customer_id \"%s\"",
                    (int)(keylen < 64 ? keylen : 64), key, customer_id),
               false;
    return true;
}

static bool check_event(md_event_parser *p, const char *key, size_t keylen, int64_t now_ms) {
    md_event *ev = p->ev;
    char type[16];
    if (!require(p, F_EVENT_ID, J_STRING) || !copy_string(p, F_EVENT_ID, ev->event_id, MD_EVENT_ID_MAX, false))
        return false;
    if (!require(p, F_TYPE, J_STRING)) return false;
    if (p->slots[F_TYPE].len >= sizeof(type))
        return fail(p, MD_REJECT_UNKNOWN_TYPE, "'type' = \"%.20s...\" is not payment, call or app_login",
                    p->slots[F_TYPE].text), false;
    if (!copy_string(p, F_TYPE, type, sizeof(type) - 1, true)) return false;
    int t;
    for (t = 0; t < MD_EVENT_TYPE_COUNT; t++)
        if (strcmp(type, type_names[t]) == 0) break;
    if (t == MD_EVENT_TYPE_COUNT)
        return fail(p, MD_REJECT_UNKNOWN_TYPE, "'type' = \"%s\" is not payment, call or app_login", type), false;
    ev->type = (md_event_type)t;
    if (!require(p, F_CUSTOMER_ID, J_STRING) ||
        !copy_string(p, F_CUSTOMER_ID, ev->customer_id, MD_CUSTOMER_ID_MAX, false) || !customer_id_ok(p, ev->customer_id))
        return false;
    if (!check_timestamp(p, now_ms)) return false;
    bool ok = ev->type == MD_EVENT_PAYMENT ? check_payment(p)
              : ev->type == MD_EVENT_CALL  ? check_call(p)
                                           : check_app_login(p);
    if (!ok) return false;
    return check_key(p, key, keylen, ev->customer_id);
}

/* ------------------------------------------------------------------------- */

md_event_parser *md_event_parser_new(const md_event_limits *limits) {
    md_event_parser *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->limits = *limits;
    if (p->limits.max_pages > MD_PAGES_MAX) p->limits.max_pages = MD_PAGES_MAX;
    if (p->limits.max_depth < 1) p->limits.max_depth = 1;
    return p;
}

void md_event_parser_destroy(md_event_parser *p) { free(p); }

size_t md_event_used_bytes(const md_event *ev) { return offsetof(md_event, pages) + ev->n_pages * sizeof(ev->pages[0]); }

void md_event_clear(md_event *ev) { memset(ev, 0, offsetof(md_event, pages)); /* n_pages among them: pages come last */ }

/* Empties the slots and out's pages for a parse of the message. */
static void begin_parse(md_event_parser *p, md_event *out) {
    md_event_clear(out);
    for (int i = 0; i < F_COUNT; i++) {
        p->slots[i].jt = J_NONE;
        p->slots[i].len = 0;
        p->slots[i].text[0] = '\0';
    }
    p->depth = 0;
    p->cur = F_UNKNOWN;
    p->in_pages = false;
    p->seen_top = false;
    p->ev = out;
}

/* Reads the message into the slots (and out's pages): md_json_scan's fast
 * path, or yajl where the message leaves its subset. Returns false with res
 * filled when the bytes are not one well-formed JSON object within the
 * limits; the field rules are checked afterwards by the caller. */
static bool run_parse(md_event_parser *p, const char *buf, size_t len, md_event *out, md_parse_result *res) {
    res->reason = MD_REJECT_NONE;
    res->detail[0] = '\0';
    p->res = res;
    if (len > p->limits.max_message_bytes) {
        fail(p, MD_REJECT_TOO_LARGE, "%zu bytes, limit %zu", len, p->limits.max_message_bytes);
        return false;
    }
    begin_parse(p, out);
    md_json_scan_result scanned = md_json_scan(&callbacks, p, buf, len);
    if (scanned == MD_JSON_SCAN_DONE || (scanned == MD_JSON_SCAN_STOPPED && res->reason != MD_REJECT_NONE))
        return res->reason == MD_REJECT_NONE;
    begin_parse(p, out); /* yajl reads it again from the start */

    p->arena_used = 0; /* the last parse's handle was freed: nothing lives there */
    yajl_alloc_funcs arena = {arena_malloc, arena_realloc, arena_free, p};
    yajl_handle h = yajl_alloc(&callbacks, &arena, p);
    if (!h) {
        fail(p, MD_REJECT_TOO_LARGE, "out of memory");
        return false;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    if (st != yajl_status_ok && res->reason == MD_REJECT_NONE) {
        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
        /* yajl's message ends in a newline; keep one line for logs and headers. */
        char *nl = msg ? strchr((char *)msg, '\n') : NULL;
        if (nl) *nl = '\0';
        fail(p, MD_REJECT_NOT_JSON, "%s", msg ? (const char *)msg : "parse error");
        if (msg) yajl_free_error(h, msg);
    }
    yajl_free(h);
    if (res->reason == MD_REJECT_NONE && !p->seen_top) fail(p, MD_REJECT_NOT_JSON, "empty message");
    return res->reason == MD_REJECT_NONE;
}

md_err md_event_parse(md_event_parser *p, const char *buf, size_t len, const char *key, size_t keylen,
                      int64_t now_ms, md_event *out, md_parse_result *res) {
    if (!run_parse(p, buf, len, out, res)) return MD_ERR_BAD_EVENT;
    if (!check_event(p, key, keylen, now_ms)) return MD_ERR_BAD_EVENT;
    return MD_ERR_OK;
}

md_err md_outcome_parse(md_event_parser *p, const char *buf, size_t len, const char *key, size_t keylen,
                        int64_t now_ms, md_outcome *out, md_parse_result *res) {
    memset(out, 0, sizeof(*out));
    if (!run_parse(p, buf, len, &p->scratch, res)) return MD_ERR_BAD_EVENT;
    char status[16];
    bool bad = false;
    if (!require(p, F_TRIGGER_ID, J_STRING) || !copy_string(p, F_TRIGGER_ID, out->trigger_id, MD_EVENT_ID_MAX, false) ||
        !require(p, F_CUSTOMER_ID, J_STRING) ||
        !copy_string(p, F_CUSTOMER_ID, out->customer_id, MD_CUSTOMER_ID_MAX, false) || !customer_id_ok(p, out->customer_id) ||
        !require(p, F_CAMPAIGN, J_STRING) || !copy_string(p, F_CAMPAIGN, out->campaign, MD_TOKEN_MAX, false) ||
        !require(p, F_CHANNEL, J_STRING) || !copy_string(p, F_CHANNEL, out->channel, MD_TOKEN_MAX, false) ||
        !require(p, F_STATUS, J_STRING))
        return MD_ERR_BAD_EVENT;
    if (p->slots[F_STATUS].len >= sizeof(status))
        return fail(p, MD_REJECT_UNKNOWN_STATUS, "'status' = \"%.20s...\" is not a known status", p->slots[F_STATUS].text),
               MD_ERR_BAD_EVENT;
    if (!copy_string(p, F_STATUS, status, sizeof(status) - 1, true)) return MD_ERR_BAD_EVENT;
    int st;
    for (st = 0; st < MD_OUTCOME_STATUS_COUNT; st++)
        if (strcmp(status, status_names[st]) == 0) break;
    if (st == MD_OUTCOME_STATUS_COUNT)
        return fail(p, MD_REJECT_UNKNOWN_STATUS,
                    "'status' = \"%s\" is not sent, delivered, reached, opened, converted, declined, no_answer, complaint or opt_out",
                    status),
               MD_ERR_BAD_EVENT;
    out->status = (md_outcome_status)st;
    p->ev = &p->scratch; /* check_timestamp writes the time here */
    if (!check_timestamp(p, now_ms)) return MD_ERR_BAD_EVENT;
    out->ts_ms = p->scratch.ts_ms;
    if (optional(p, F_DURATION_S, J_NUMBER, &bad)) {
        if (!integer_in(p, F_DURATION_S, 0, DURATION_MAX, &out->duration_s)) return MD_ERR_BAD_EVENT;
        out->has_duration = true;
    }
    if (bad) return MD_ERR_BAD_EVENT;
    if (!check_key(p, key, keylen, out->customer_id)) return MD_ERR_BAD_EVENT;
    return MD_ERR_OK;
}

/* ------------------------------------------------------------------------- */
/* Event time without a parse                                                 */

typedef struct time_peek {
    int depth;
    bool at_ts;  /* the next value at depth 1 is "ts"'s */
    bool found;
    int64_t ts;
} time_peek;

/* Each callback stops the parse (returns 0) once "ts" is read: the rest of
 * the message is not this function's business. at_ts is set by a key at
 * the top level only, and the value read is the one right after it. */
static int peek_scalar(time_peek *k) { return !k->at_ts; }
static int peek_null(void *ctx) { return peek_scalar(ctx); }
static int peek_boolean(void *ctx, int v) { (void)v; return peek_scalar(ctx); }

static int peek_number(void *ctx, const char *v, size_t len) {
    time_peek *k = ctx;
    if (!k->at_ts) return 1;
    char text[24];
    if (len < sizeof(text) && !memchr(v, '.', len) && !memchr(v, 'e', len) && !memchr(v, 'E', len)) {
        memcpy(text, v, len);
        text[len] = '\0';
        char *end;
        errno = 0;
        long long t = strtoll(text, &end, 10);
        if (*end == '\0' && errno == 0) {
            k->found = true;
            k->ts = t;
        }
    }
    return 0;
}

static int peek_string(void *ctx, const unsigned char *v, size_t len) {
    time_peek *k = ctx;
    if (!k->at_ts) return 1;
    k->found = len <= 40 && md_parse_rfc3339((const char *)v, len, &k->ts);
    return 0;
}

static int peek_open(void *ctx) {
    time_peek *k = ctx;
    if (k->at_ts) return 0; /* "ts" is an object or an array: no time */
    return ++k->depth <= 64;
}
static int peek_close(void *ctx) {
    ((time_peek *)ctx)->depth--;
    return 1;
}
static int peek_key(void *ctx, const unsigned char *key, size_t len) {
    time_peek *k = ctx;
    if (k->depth == 1) k->at_ts = len == 2 && key[0] == 't' && key[1] == 's';
    return 1;
}

static const yajl_callbacks peek_callbacks = {peek_null,     peek_boolean, NULL,      NULL,       peek_number, peek_string,
                                              peek_open,     peek_key,     peek_close, peek_open, peek_close};

bool md_event_peek_time(const char *buf, size_t len, int64_t *ts_ms) {
    time_peek k = {0, false, false, 0};
    /* A prefix is enough: yajl reports an unfinished text as ok, and a "ts"
     * not among the first bytes is not worth reading a large message for.
     * The scan stops at "ts"'s value as yajl does; only a prefix it is not
     * sure of goes to yajl. */
    size_t n = len < MD_PEEK_TIME_BYTES ? len : MD_PEEK_TIME_BYTES;
    if (md_json_scan(&peek_callbacks, &k, buf, n) == MD_JSON_SCAN_UNSURE) {
        k = (time_peek){0, false, false, 0};
        yajl_handle h = yajl_alloc(&peek_callbacks, NULL, &k);
        if (!h) return false;
        yajl_parse(h, (const unsigned char *)buf, n);
        yajl_free(h);
    }
    if (!k.found || k.ts < MD_MIN_EVENT_TIME_MS || k.ts > INT64_MAX / 2) return false;
    *ts_ms = k.ts;
    return true;
}
