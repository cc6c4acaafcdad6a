/* jsonw.c: the JSON writer (see jsonw.h). */
#include "momentd/jsonw.h"
#include "momentd/event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void md_jsonw_init(md_jsonw *w) { memset(w, 0, sizeof(*w)); }

void md_jsonw_fini(md_jsonw *w) {
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

void md_jsonw_reset(md_jsonw *w) {
    w->len = 0;
    w->need_comma = false;
    w->oom = false;
    if (w->buf) w->buf[0] = '\0';
}

static void put(md_jsonw *w, const char *s, size_t n) {
    if (w->oom) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) cap *= 2;
        char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->oom = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void before_value(md_jsonw *w) {
    if (w->need_comma) put(w, ",", 1);
    w->need_comma = true;
}

void md_jsonw_obj_open(md_jsonw *w) {
    before_value(w);
    put(w, "{", 1);
    w->need_comma = false;
}

void md_jsonw_obj_close(md_jsonw *w) {
    put(w, "}", 1);
    w->need_comma = true;
}

void md_jsonw_arr_open(md_jsonw *w) {
    before_value(w);
    put(w, "[", 1);
    w->need_comma = false;
}

void md_jsonw_arr_close(md_jsonw *w) {
    put(w, "]", 1);
    w->need_comma = true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and code points past U+10FFFF. */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static void put_escaped(md_jsonw *w, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes copied verbatim in one go */
    char esc[8];
    put(w, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        const char *rep = NULL;
        size_t seq = 1;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            rep = esc;
        } else if (c >= 0x80) {
            seq = utf8_seq_len(p + i, len - i);
            if (seq == 0) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                rep = esc;
                seq = 1;
            }
        }
        if (rep) {
            put(w, s + i - run, run);
            run = 0;
            put(w, rep, strlen(rep));
            i += seq;
        } else {
            run += seq;
            i += seq;
        }
    }
    put(w, s + len - run, run);
    put(w, "\"", 1);
}

void md_jsonw_key(md_jsonw *w, const char *key) {
    before_value(w);
    put_escaped(w, key, strlen(key));
    put(w, ":", 1);
    w->need_comma = false;
}

void md_jsonw_strn(md_jsonw *w, const char *s, size_t len) {
    before_value(w);
    put_escaped(w, s, len);
}

void md_jsonw_str(md_jsonw *w, const char *s) {
    if (!s) {
        md_jsonw_null(w);
        return;
    }
    md_jsonw_strn(w, s, strlen(s));
}

void md_jsonw_num(md_jsonw *w, double v) {
    char tmp[40];
    before_value(w);
    if (!isfinite(v)) {
        put(w, "null", 4); /* JSON has no NaN or infinity */
        return;
    }
    put(w, tmp, md_fmt_g6(tmp, v));
}

void md_jsonw_int(md_jsonw *w, int64_t v) {
    char tmp[32];
    before_value(w);
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    put(w, tmp, (size_t)n);
}

void md_jsonw_bool(md_jsonw *w, bool v) {
    before_value(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void md_jsonw_null(md_jsonw *w) {
    before_value(w);
    put(w, "null", 4);
}

void md_jsonw_raw(md_jsonw *w, const char *json, size_t len) {
    before_value(w);
    put(w, json, len);
}

void md_jsonw_kstr(md_jsonw *w, const char *key, const char *s) {
    md_jsonw_key(w, key);
    md_jsonw_str(w, s);
}
void md_jsonw_knum(md_jsonw *w, const char *key, double v) {
    md_jsonw_key(w, key);
    md_jsonw_num(w, v);
}
void md_jsonw_kint(md_jsonw *w, const char *key, int64_t v) {
    md_jsonw_key(w, key);
    md_jsonw_int(w, v);
}
void md_jsonw_kbool(md_jsonw *w, const char *key, bool v) {
    md_jsonw_key(w, key);
    md_jsonw_bool(w, v);
}

/* Powers of ten a double holds exactly (up to 10^22). */
static const double exact_pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};

/* The fast path of md_fmt_g6; 0 when it is not sure of printf's text. */
static size_t fmt_g6_fixed(char *out, double v) {
    if (v == 0) { /* a feature's usual value */
        size_t n = 0;
        if (signbit(v)) out[n++] = '-';
        out[n++] = '0';
        out[n] = '\0';
        return n;
    }
    double a = fabs(v);
    if (!(a >= 1e-5 && a < 1e6)) return 0; /* 0, NaN, infinities, exponents */
    /* e: the decimal exponent of a's first digit, from comparisons with
     * doubles that are powers of ten only approximately below 1; a wrong e
     * near such a power shows as a scaled value outside [10^5, 10^6). */
    int e = 5;
    while (e > -5 && a < (e >= 0 ? exact_pow10[e] : 1.0 / exact_pow10[-e])) e--;
    /* One rounding: a times an exact power of ten, 10^5 <= scaled < 10^6
     * < 2^20, so it is within 2^-33 of a * 10^(5-e). */
    double scaled = a * exact_pow10[5 - e];
    if (!(scaled >= 1e5 && scaled < 1e6)) return 0;
    double whole = floor(scaled), frac = scaled - whole; /* both exact */
    /* Near a half, the product's rounding could flip printf's decision
     * (and an exact half is printf's round-half-even on the exact value):
     * leave it to snprintf. */
    if (fabs(frac - 0.5) < 1e-7) return 0;
    uint32_t m = (uint32_t)whole + (frac > 0.5);
    if (m == 1000000) { /* 9.999995 and up: the next power of ten */
        m = 100000;
        e++;
    }
    if (e < -4 || e > 5) return 0; /* printf writes an exponent */
    char digits[6];
    for (int k = 5; k >= 0; k--, m /= 10) digits[k] = (char)('0' + m % 10);
    int last = 5; /* the last digit written: trailing zeros of a fraction go */
    while (last > (e > 0 ? e : 0) && digits[last] == '0') last--;
    size_t n = 0;
    if (signbit(v)) out[n++] = '-';
    if (e >= 0) {
        for (int k = 0; k <= e; k++) out[n++] = digits[k];
        if (last > e) {
            out[n++] = '.';
            for (int k = e + 1; k <= last; k++) out[n++] = digits[k];
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int k = -1; k > e; k--) out[n++] = '0';
        for (int k = 0; k <= last; k++) out[n++] = digits[k];
    }
    out[n] = '\0';
    return n;
}

size_t md_fmt_g6(char *out, double v) {
    size_t n = fmt_g6_fixed(out, v);
    if (n) return n;
    int len = snprintf(out, 16, "%.6g", v); /* at most "-1.23457e-308" */
    return len > 0 && len < 16 ? (size_t)len : 0;
}

/* n digits of v, with leading zeros, at out; out + n. */
static char *put_digits(char *out, unsigned v, int n) {
    for (int k = n - 1; k >= 0; k--, v /= 10) out[k] = (char)('0' + v % 10);
    return out + n;
}

/* The seconds of 0000-01-01T00:00:00Z and of 9999-12-31T23:59:59Z. */
#define YEAR_0_SECS INT64_C(-62167219200)
#define YEAR_9999_END_SECS INT64_C(253402300799)

void md_format_time(int64_t epoch_ms, char out[32]) {
    int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
    int ms = (int)(epoch_ms - secs * 1000);
    if (secs >= YEAR_0_SECS && secs <= YEAR_9999_END_SECS) { /* every time momentd meets: without gmtime's and snprintf's cost (a moment writes three) */
        md_format_day(secs * 1000, 0, out); /* "YYYY-MM-DD" */
        unsigned sod = (unsigned)(secs - (secs / 86400 - (secs % 86400 < 0)) * 86400); /* second of the day */
        char *p = out + 10;
        *p++ = 'T';
        p = put_digits(p, sod / 3600, 2);
        *p++ = ':';
        p = put_digits(p, sod / 60 % 60, 2);
        *p++ = ':';
        p = put_digits(p, sod % 60, 2);
        *p++ = '.';
        p = put_digits(p, (unsigned)ms, 3);
        *p++ = 'Z';
        *p = '\0';
        return;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Years past 9999 cannot occur (event times are bounded); the casts keep
     * the compiler's truncation analysis honest. */
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, ms % 1000);
}
