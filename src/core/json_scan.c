/* json_scan.c: the subset of JSON read without yajl (json_scan.h).
 *
 * A number's or a literal's callback is called only once the byte after it
 * is known to be one the grammar allows there. yajl calls it first and
 * fails at that byte afterwards, and reading a prefix (the event-time peek)
 * it gives no call at all for a number that touches the end; for such a
 * text this scanner says UNSURE and the caller's yajl run does what yajl
 * does. Stricter than yajl is always safe; laxer never is (the fuzz target
 * fuzz/fuzz_json_scan.c and tests/unit/test_json_scan.c compare the two). */
#include "json_scan.h"

#include <stdbool.h>
#include <stdint.h>

/* Byte classes: a string's plain byte, a number's digit, whitespace, and
 * what may follow a scalar (whitespace, ',', '}', ']'). */
enum { C_PLAIN = 1, C_DIGIT = 2, C_SPACE = 4, C_AFTER = 8 };

static const uint8_t byte_class[256] = {
    ['\t'] = C_SPACE | C_AFTER, ['\n'] = C_SPACE | C_AFTER, ['\r'] = C_SPACE | C_AFTER,
    [' '] = C_PLAIN | C_SPACE | C_AFTER, ['!'] = C_PLAIN, ['#'] = C_PLAIN, ['$'] = C_PLAIN, ['%'] = C_PLAIN,
    ['&'] = C_PLAIN, ['\''] = C_PLAIN, ['('] = C_PLAIN, [')'] = C_PLAIN, ['*'] = C_PLAIN, ['+'] = C_PLAIN,
    [','] = C_PLAIN | C_AFTER, ['-'] = C_PLAIN, ['.'] = C_PLAIN, ['/'] = C_PLAIN,
    ['0'] = C_PLAIN | C_DIGIT, ['1'] = C_PLAIN | C_DIGIT, ['2'] = C_PLAIN | C_DIGIT, ['3'] = C_PLAIN | C_DIGIT,
    ['4'] = C_PLAIN | C_DIGIT, ['5'] = C_PLAIN | C_DIGIT, ['6'] = C_PLAIN | C_DIGIT, ['7'] = C_PLAIN | C_DIGIT,
    ['8'] = C_PLAIN | C_DIGIT, ['9'] = C_PLAIN | C_DIGIT,
    [':'] = C_PLAIN, [';'] = C_PLAIN, ['<'] = C_PLAIN, ['='] = C_PLAIN, ['>'] = C_PLAIN, ['?'] = C_PLAIN,
    ['@'] = C_PLAIN, ['A'] = C_PLAIN, ['B'] = C_PLAIN, ['C'] = C_PLAIN, ['D'] = C_PLAIN, ['E'] = C_PLAIN,
    ['F'] = C_PLAIN, ['G'] = C_PLAIN, ['H'] = C_PLAIN, ['I'] = C_PLAIN, ['J'] = C_PLAIN, ['K'] = C_PLAIN,
    ['L'] = C_PLAIN, ['M'] = C_PLAIN, ['N'] = C_PLAIN, ['O'] = C_PLAIN, ['P'] = C_PLAIN, ['Q'] = C_PLAIN,
    ['R'] = C_PLAIN, ['S'] = C_PLAIN, ['T'] = C_PLAIN, ['U'] = C_PLAIN, ['V'] = C_PLAIN, ['W'] = C_PLAIN,
    ['X'] = C_PLAIN, ['Y'] = C_PLAIN, ['Z'] = C_PLAIN, ['['] = C_PLAIN, [']'] = C_PLAIN | C_AFTER,
    ['^'] = C_PLAIN, ['_'] = C_PLAIN, ['`'] = C_PLAIN, ['a'] = C_PLAIN, ['b'] = C_PLAIN, ['c'] = C_PLAIN,
    ['d'] = C_PLAIN, ['e'] = C_PLAIN, ['f'] = C_PLAIN, ['g'] = C_PLAIN, ['h'] = C_PLAIN, ['i'] = C_PLAIN,
    ['j'] = C_PLAIN, ['k'] = C_PLAIN, ['l'] = C_PLAIN, ['m'] = C_PLAIN, ['n'] = C_PLAIN, ['o'] = C_PLAIN,
    ['p'] = C_PLAIN, ['q'] = C_PLAIN, ['r'] = C_PLAIN, ['s'] = C_PLAIN, ['t'] = C_PLAIN, ['u'] = C_PLAIN,
    ['v'] = C_PLAIN, ['w'] = C_PLAIN, ['x'] = C_PLAIN, ['y'] = C_PLAIN, ['z'] = C_PLAIN, ['{'] = C_PLAIN,
    ['|'] = C_PLAIN, ['}'] = C_PLAIN | C_AFTER, ['~'] = C_PLAIN,
};

#define IS(c, k) ((byte_class[(unsigned char)(c)] & (k)) != 0)

typedef struct scan {
    const char *p, *end;
} scan;

static void skip_space(scan *s) {
    while (s->p < s->end && IS(*s->p, C_SPACE)) s->p++;
}

/* After the opening quote: the string's bytes up to the closing quote,
 * which is consumed. false when a byte is not plain or there is no end. */
static bool plain_string(scan *s, const char **str, size_t *len) {
    const char *q = s->p;
    while (q < s->end && IS(*q, C_PLAIN)) q++;
    if (q == s->end || *q != '"') return false;
    *str = s->p;
    *len = (size_t)(q - s->p);
    s->p = q + 1;
    return true;
}

/* A scalar ends where the grammar lets it: at whitespace, ',', '}' or ']'.
 * The end of the text is not such a place (the top level is an object). */
static bool ends_here(const scan *s) { return s->p < s->end && IS(*s->p, C_AFTER); }

static bool digits(scan *s) {
    const char *start = s->p;
    while (s->p < s->end && IS(*s->p, C_DIGIT)) s->p++;
    return s->p > start;
}

/* JSON's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(scan *s) {
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0') s->p++;
    else if (!digits(s)) return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s)) return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!digits(s)) return false;
    }
    return ends_here(s);
}

static bool literal(scan *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n) return false;
    for (size_t i = 0; i < n; i++)
        if (s->p[i] != word[i]) return false;
    s->p += n;
    return ends_here(s);
}

/* A callback's answer: 0 stops the scan (STOPPED). */
#define CALL(fn, ...)                                                                                                  \
    do {                                                                                                               \
        if ((fn) && !(fn)(__VA_ARGS__)) return MD_JSON_SCAN_STOPPED;                                                   \
    } while (0)

md_json_scan_result md_json_scan(const yajl_callbacks *cb, void *ctx, const char *buf, size_t len) {
    if (!buf || len == 0) return MD_JSON_SCAN_UNSURE; /* (no arithmetic on a null pointer) */
    scan s = {buf, buf + len};
    /* in_object[d]: whether the container at depth d (1 = the top) is an object */
    bool in_object[MD_JSON_SCAN_DEPTH + 1];
    int depth = 0;
    skip_space(&s);
    if (s.p == s.end || *s.p != '{') return MD_JSON_SCAN_UNSURE;
    /* Each turn reads one value where the grammar expects one, then what
     * follows it up to where the next value starts. */
    for (;;) {
        /* the value */
        char c = *s.p;
        if (c == '{' || c == '[') {
            if (depth == MD_JSON_SCAN_DEPTH) return MD_JSON_SCAN_UNSURE;
            bool object = c == '{';
            if (object) CALL(cb->yajl_start_map, ctx);
            else CALL(cb->yajl_start_array, ctx);
            in_object[++depth] = object;
            s.p++;
            skip_space(&s);
            if (s.p == s.end) return MD_JSON_SCAN_UNSURE;
            if (*s.p == (object ? '}' : ']')) { /* empty: closed below */
            } else if (object) {
                goto key;
            } else {
                continue; /* the array's first value */
            }
        } else if (c == '"') {
            const char *str;
            size_t n;
            s.p++;
            if (!plain_string(&s, &str, &n)) return MD_JSON_SCAN_UNSURE;
            CALL(cb->yajl_string, ctx, (const unsigned char *)str, n);
            skip_space(&s);
        } else if (c == '-' || IS(c, C_DIGIT)) {
            const char *start = s.p;
            if (cb->yajl_integer || cb->yajl_double || !number(&s)) return MD_JSON_SCAN_UNSURE;
            CALL(cb->yajl_number, ctx, start, (size_t)(s.p - start));
            skip_space(&s);
        } else if (c == 't' || c == 'f') {
            if (!literal(&s, c == 't' ? "true" : "false", c == 't' ? 4 : 5)) return MD_JSON_SCAN_UNSURE;
            CALL(cb->yajl_boolean, ctx, c == 't');
            skip_space(&s);
        } else if (c == 'n') {
            if (!literal(&s, "null", 4)) return MD_JSON_SCAN_UNSURE;
            CALL(cb->yajl_null, ctx);
            skip_space(&s);
        } else {
            return MD_JSON_SCAN_UNSURE;
        }
        /* after it: containers close, then a ',' leads to the next value */
        for (;;) {
            if (s.p == s.end) return MD_JSON_SCAN_UNSURE;
            char close = in_object[depth] ? '}' : ']';
            if (*s.p == close) {
                if (in_object[depth]) CALL(cb->yajl_end_map, ctx);
                else CALL(cb->yajl_end_array, ctx);
                s.p++;
                if (--depth == 0) {
                    skip_space(&s);
                    return s.p == s.end ? MD_JSON_SCAN_DONE : MD_JSON_SCAN_UNSURE;
                }
                skip_space(&s);
                continue;
            }
            if (*s.p != ',') return MD_JSON_SCAN_UNSURE;
            s.p++;
            skip_space(&s);
            break;
        }
        if (!in_object[depth]) {
            if (s.p == s.end) return MD_JSON_SCAN_UNSURE;
            continue;
        }
    key:
        /* an object's key, its ':', and the start of its value */
        if (s.p == s.end || *s.p != '"') return MD_JSON_SCAN_UNSURE;
        {
            const char *key;
            size_t n;
            s.p++;
            if (!plain_string(&s, &key, &n)) return MD_JSON_SCAN_UNSURE;
            CALL(cb->yajl_map_key, ctx, (const unsigned char *)key, n);
        }
        skip_space(&s);
        if (s.p == s.end || *s.p != ':') return MD_JSON_SCAN_UNSURE;
        s.p++;
        skip_space(&s);
        if (s.p == s.end) return MD_JSON_SCAN_UNSURE;
    }
}
