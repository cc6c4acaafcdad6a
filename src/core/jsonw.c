/* jsonw.c: the JSON writer (see jsonw.h). */
#include "momentd/jsonw.h"

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
    int n = snprintf(tmp, sizeof(tmp), "%.6g", v);
    put(w, tmp, (size_t)n);
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

void md_format_time(int64_t epoch_ms, char out[32]) {
    int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
    int ms = (int)(epoch_ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Years past 9999 cannot occur (event times are bounded); the casts keep
     * the compiler's truncation analysis honest. */
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, ms % 1000);
}
