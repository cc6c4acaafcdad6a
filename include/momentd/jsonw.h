/* jsonw.h: an append-only JSON writer over a growable buffer.
 *
 * Triggers, dead letters, logs and `explain --json` all write JSON; this keeps
 * escaping and comma placement in one place. Allocation failure is sticky: the
 * writer sets `oom` and later calls do nothing, so callers check once at the end. */
#ifndef MOMENTD_JSONW_H
#define MOMENTD_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct md_jsonw {
    char *buf;     /* owned; NUL-terminated while !oom */
    size_t len;
    size_t cap;
    bool need_comma; /* a value was written at the current nesting level */
    bool oom;
} md_jsonw;

/* Caller-allocated writer; md_jsonw_fini frees the buffer. */
void md_jsonw_init(md_jsonw *w);
void md_jsonw_fini(md_jsonw *w);
void md_jsonw_reset(md_jsonw *w);

void md_jsonw_obj_open(md_jsonw *w);
void md_jsonw_obj_close(md_jsonw *w);
void md_jsonw_arr_open(md_jsonw *w);
void md_jsonw_arr_close(md_jsonw *w);
/* Writes "key": and leaves the writer ready for the value. */
void md_jsonw_key(md_jsonw *w, const char *key);
void md_jsonw_str(md_jsonw *w, const char *s);
/* Binary-safe: bytes that are not valid UTF-8 are written as \u00XX escapes of
 * the byte value, so dead letters can carry any original payload. */
void md_jsonw_strn(md_jsonw *w, const char *s, size_t len);
void md_jsonw_num(md_jsonw *w, double v);
void md_jsonw_int(md_jsonw *w, int64_t v);
void md_jsonw_bool(md_jsonw *w, bool v);
void md_jsonw_null(md_jsonw *w);
/* Appends already-serialised JSON as one value. */
void md_jsonw_raw(md_jsonw *w, const char *json, size_t len);

/* Convenience pairs: key then value. */
void md_jsonw_kstr(md_jsonw *w, const char *key, const char *s);
void md_jsonw_knum(md_jsonw *w, const char *key, double v);
void md_jsonw_kint(md_jsonw *w, const char *key, int64_t v);
void md_jsonw_kbool(md_jsonw *w, const char *key, bool v);

/* v as printf's "%.6g" writes it, into out (at least 16 bytes),
 * terminated; its length. The usual numbers (a finite v whose six
 * significant digits print without an exponent, and no tie to round) are
 * written from one scaled integer; any other v, and any whose rounding the
 * scaling could have changed, by snprintf. Decision records, moments and
 * state write a number this way several times an event, and snprintf's
 * format parsing and exact decimal conversion cost about 1,500
 * instructions a number (bench/instructions). */
size_t md_fmt_g6(char *out, double v);

/* Writes an RFC 3339 UTC timestamp with milliseconds ("2026-11-24T08:00:00.000Z")
 * into out (at least 32 bytes). */
void md_format_time(int64_t epoch_ms, char out[32]);

#endif
