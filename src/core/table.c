/* table.c: loading, freeing, comparing and documenting by declarative
 * tables (table.h). */
#include "table.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "momentd/config.h"

/* ---- The values' syntax: durations, times of day, UTC offsets (the
 * types T_DUR, T_TOD, T_UTCOFF; declared in momentd/config.h, whose
 * callers read the same syntax elsewhere: schedules, reports, the
 * simulator). ---- */

bool md_parse_duration(const char *s, int64_t *out_ms) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return false;
    double mult;
    if (*end == '\0' || strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "s") == 0) mult = 1000;
    else if (strcmp(end, "m") == 0) mult = 60000;
    else if (strcmp(end, "h") == 0) mult = 3600000.0;
    else if (strcmp(end, "d") == 0) mult = 86400000.0;
    else return false;
    if (v * mult > 9e15) return false;
    *out_ms = (int64_t)llround(v * mult);
    return true;
}

bool md_parse_time_of_day(const char *s, int *out_min) {
    if (strlen(s) != 5 || s[2] != ':') return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0)) return false;
    *out_min = h * 60 + m;
    return true;
}

bool md_parse_utc_offset(const char *s, int *out_min) {
    if (strcmp(s, "Z") == 0 || strcmp(s, "z") == 0) {
        *out_min = 0;
        return true;
    }
    if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return false;
    int hm;
    char tmp[6] = {s[1], s[2], ':', s[4], s[5], 0};
    if (!md_parse_time_of_day(tmp, &hm) || hm > 14 * 60) return false;
    *out_min = s[0] == '-' ? -hm : hm;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Loader                                                                     */

bool md_table_fail(md_table_loader *L, const char *path, const char *fmt, ...) {
    if (L->failed) return false;
    L->failed = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errsz, "%s: %s: %s", L->file, path, msg);
    return false;
}

static void describe(yajl_val v, char *out, size_t n) {
    if (!v) snprintf(out, n, "nothing");
    else if (YAJL_IS_STRING(v)) snprintf(out, n, "\"%.60s\"", v->u.string);
    else if (YAJL_IS_NUMBER(v)) snprintf(out, n, "%.60s", v->u.number.r);
    else if (YAJL_IS_OBJECT(v)) snprintf(out, n, "an object");
    else if (YAJL_IS_ARRAY(v)) snprintf(out, n, "an array");
    else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) snprintf(out, n, "a boolean");
    else snprintf(out, n, "null");
}

static bool choice_ok(const char *choices, const char *s) {
    size_t n = strlen(s);
    const char *c = choices;
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, s, n) == 0) return true;
        if (!bar) return false;
        c = bar + 1;
    }
}

/* Whether text is a whole "${env:NAME}" or "${file:PATH}" reference. */
static bool is_reference(const char *text) {
    size_t n = strlen(text);
    return (strncmp(text, "${env:", 6) == 0 || strncmp(text, "${file:", 7) == 0) && n >= 8 && text[n - 1] == '}';
}

/* A whole string value "${env:NAME}" or "${file:PATH}" stands for the
 * variable's value or the file's contents without its trailing newline, so
 * that secrets (SASL and key passwords, the Redis password) stay out of the
 * file. Anything else is taken literally. On success *out is malloc'd. */
#define MD_SECRET_FILE_MAX 65536
static bool resolve_reference(md_table_loader *L, const char *path, const char *text, char **out) {
    size_t n = strlen(text);
    bool is_env = strncmp(text, "${env:", 6) == 0, is_file = strncmp(text, "${file:", 7) == 0;
    if ((!is_env && !is_file) || n < 8 || text[n - 1] != '}') {
        *out = strdup(text);
        return *out ? true : md_table_fail(L, path, "out of memory");
    }
    size_t skip = is_env ? 6 : 7;
    char name[4096];
    if (n - skip - 1 == 0 || n - skip - 1 >= sizeof(name)) return md_table_fail(L, path, "an empty or too long %s reference", is_env ? "${env:}" : "${file:}");
    memcpy(name, text + skip, n - skip - 1);
    name[n - skip - 1] = '\0';
    if (is_env) {
        const char *v = getenv(name);
        if (!v) return md_table_fail(L, path, "environment variable %s is not set", name);
        *out = strdup(v);
        return *out ? true : md_table_fail(L, path, "out of memory");
    }
    FILE *f = fopen(name, "rb");
    if (!f) return md_table_fail(L, path, "cannot read %s: %s", name, strerror(errno));
    char *buf = malloc(MD_SECRET_FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, MD_SECRET_FILE_MAX + 1, f) : 0;
    bool too_big = got > MD_SECRET_FILE_MAX, read_err = ferror(f);
    fclose(f);
    if (!buf) return md_table_fail(L, path, "out of memory");
    if (too_big || read_err) {
        free(buf);
        return md_table_fail(L, path, too_big ? "%s is larger than 64 KiB" : "cannot read %s", name);
    }
    if (got && buf[got - 1] == '\n') got--;
    if (got && buf[got - 1] == '\r') got--;
    buf[got] = '\0';
    if (strlen(buf) != got) {
        free(buf);
        return md_table_fail(L, path, "%s holds a NUL byte", name);
    }
    *out = buf;
    return true;
}

/* Applies a text value (a default, or a string from the file) to a scalar field. */
static bool set_from_text(md_table_loader *L, const md_field *f, void *base, const char *text, const char *path) {
    void *dst = (char *)base + f->off;
    switch (f->type) {
    case T_STR:
    case T_EXPR:
    case T_ENUM:
    case T_TOD:
    case T_UTCOFF: {
        if (f->type == T_ENUM && !choice_ok(f->choices, text))
            return md_table_fail(L, path, "expected one of %s, got \"%s\"", f->choices, text);
        int tmp;
        if (f->type == T_TOD && !md_parse_time_of_day(text, &tmp))
            return md_table_fail(L, path, "expected a local time \"HH:MM\", got \"%s\"", text);
        if (f->type == T_UTCOFF && !md_parse_utc_offset(text, &tmp))
            return md_table_fail(L, path, "expected a UTC offset like \"+08:00\", got \"%s\"", text);
        char *s;
        if (f->type == T_STR && (f->flags & F_SECRET)) {
            if (!resolve_reference(L, path, text, &s)) return false;
        } else if (f->type == T_STR && is_reference(text)) {
            return md_table_fail(L, path, "${env:} and ${file:} references are allowed only in secret settings (redis.url, "
                                          "redis.password, http.token, secret librdkafka properties)");
        } else if (!(s = strdup(text))) {
            return md_table_fail(L, path, "out of memory");
        }
        free(*(char **)dst);
        *(char **)dst = s;
        return true;
    }
    case T_DUR: {
        int64_t ms;
        if (!md_parse_duration(text, &ms))
            return md_table_fail(L, path, "expected a duration like \"90d\", \"12h\", \"30m\", \"45s\" or \"250ms\", got \"%s\"", text);
        if (ms < f->lo || ms > f->hi)
            return md_table_fail(L, path, "duration \"%s\" is outside [%.0f ms, %.0f ms]", text, f->lo, f->hi);
        *(int64_t *)dst = ms;
        return true;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (*end || end == text || errno) return md_table_fail(L, path, "expected an integer, got %s", text);
        if (v < f->lo || v > f->hi) return md_table_fail(L, path, "expected an integer in [%.0f, %.0f], got %lld", f->lo, f->hi, v);
        *(int64_t *)dst = v;
        return true;
    }
    case T_NUM: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (*end || end == text || errno || !isfinite(v)) return md_table_fail(L, path, "expected a number, got %s", text);
        if (v < f->lo || v > f->hi) return md_table_fail(L, path, "expected a number in [%g, %g], got %s", f->lo, f->hi, text);
        *(double *)dst = v;
        return true;
    }
    case T_NUMS: {
        double *v = dst;
        const char *p = text;
        for (size_t i = 0; i < f->elem_size; i++) {
            char *end;
            errno = 0;
            v[i] = strtod(p, &end);
            if (end == p || errno || !isfinite(v[i]))
                return md_table_fail(L, path, "expected %zu numbers separated by commas, got \"%s\"", f->elem_size, text);
            if (v[i] < f->lo || v[i] > f->hi) return md_table_fail(L, path, "%g is outside [%g, %g]", v[i], f->lo, f->hi);
            p = end;
            if (i + 1 < f->elem_size) {
                if (*p != ',') return md_table_fail(L, path, "expected %zu numbers separated by commas, got \"%s\"", f->elem_size, text);
                p++;
            }
        }
        if (*p) return md_table_fail(L, path, "expected %zu numbers separated by commas, got \"%s\"", f->elem_size, text);
        return true;
    }
    default: return md_table_fail(L, path, "internal: not a scalar");
    }
}

/* Builds the JSON path of a member ("campaigns[2].model") for error messages.
 * Paths longer than the buffer are cut with "..." rather than overflowing. */
static void path_key(char *out, size_t n, const char *path, const char *key) {
    int r = snprintf(out, n, "%s.%s", path, key);
    if (r < 0 || (size_t)r >= n) snprintf(out + n - 4, 4, "...");
}

static void path_index(char *out, size_t n, const char *path, size_t i) {
    int r = snprintf(out, n, "%s[%zu]", path, i);
    if (r < 0 || (size_t)r >= n) snprintf(out + n - 4, 4, "...");
}

static bool set_from_json(md_table_loader *L, const md_field *f, void *base, yajl_val v, const char *path) {
    char got[96];
    describe(v, got, sizeof(got));
    switch (f->type) {
    case T_INT:
    case T_NUM:
        if (!YAJL_IS_NUMBER(v)) return md_table_fail(L, path, "expected a number, got %s", got);
        return set_from_text(L, f, base, v->u.number.r, path);
    case T_DUR:
        if (YAJL_IS_NUMBER(v) || YAJL_IS_STRING(v))
            return set_from_text(L, f, base, YAJL_IS_NUMBER(v) ? v->u.number.r : v->u.string, path);
        return md_table_fail(L, path, "expected a duration string like \"90d\", got %s", got);
    case T_NUMS: {
        char text[512] = "";
        bool ok = YAJL_IS_ARRAY(v) && v->u.array.len == f->elem_size;
        for (size_t i = 0; ok && i < f->elem_size; i++) {
            ok = YAJL_IS_NUMBER(v->u.array.values[i]);
            if (ok) snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? "," : "", v->u.array.values[i]->u.number.r);
        }
        if (!ok) return md_table_fail(L, path, "expected an array of %zu numbers, got %s", f->elem_size, got);
        return set_from_text(L, f, base, text, path);
    }
    case T_OBJ:
        if (!YAJL_IS_OBJECT(v)) return md_table_fail(L, path, "expected an object, got %s", got);
        return md_table_load(L, f->sub, v, (char *)base + f->off, path);
    case T_ARR: {
        if (!YAJL_IS_ARRAY(v)) return md_table_fail(L, path, "expected an array of objects, got %s", got);
        size_t n = v->u.array.len;
        void *arr = n ? calloc(n, f->elem_size) : NULL;
        if (n && !arr) return md_table_fail(L, path, "out of memory");
        *(void **)((char *)base + f->off) = arr;
        *(size_t *)((char *)base + f->count_off) = 0;
        for (size_t i = 0; i < n; i++) {
            char sub[512];
            path_index(sub, sizeof(sub), path, i);
            yajl_val el = v->u.array.values[i];
            if (!YAJL_IS_OBJECT(el)) {
                describe(el, got, sizeof(got));
                return md_table_fail(L, sub, "expected an object, got %s", got);
            }
            /* Count first, so that the free walk covers a half-loaded element. */
            *(size_t *)((char *)base + f->count_off) = i + 1;
            if (!md_table_load(L, f->sub, el, (char *)arr + i * f->elem_size, sub)) return false;
        }
        return true;
    }
    case T_PASS:
    case T_NUMMAP: {
        if (!YAJL_IS_OBJECT(v)) return md_table_fail(L, path, "expected an object, got %s", got);
        size_t n = v->u.object.len;
        size_t esz = f->type == T_PASS ? sizeof(md_kv) : sizeof(md_knum);
        void *arr = n ? calloc(n, esz) : NULL;
        if (n && !arr) return md_table_fail(L, path, "out of memory");
        *(void **)((char *)base + f->off) = arr;
        for (size_t i = 0; i < n; i++) {
            char sub[512];
            const char *k = v->u.object.keys[i];
            yajl_val val = v->u.object.values[i];
            path_key(sub, sizeof(sub), path, k);
            *(size_t *)((char *)base + f->count_off) = i + 1;
            if (f->type == T_PASS) {
                md_kv *kv = (md_kv *)arr + i;
                kv->key = strdup(k);
                if (YAJL_IS_STRING(val) && f->secret_key && f->secret_key(k)) {
                    if (!resolve_reference(L, sub, val->u.string, &kv->value)) return false;
                } else if (YAJL_IS_STRING(val) && is_reference(val->u.string)) {
                    return md_table_fail(L, sub, "${env:} and ${file:} references are allowed only in secret properties");
                } else if (YAJL_IS_STRING(val)) {
                    kv->value = strdup(val->u.string);
                } else if (YAJL_IS_NUMBER(val)) kv->value = strdup(val->u.number.r);
                else if (YAJL_IS_TRUE(val) || YAJL_IS_FALSE(val)) kv->value = strdup(YAJL_IS_TRUE(val) ? "true" : "false");
                else {
                    describe(val, got, sizeof(got));
                    return md_table_fail(L, sub, "expected a string, number or boolean, got %s", got);
                }
                if (!kv->key || !kv->value) return md_table_fail(L, sub, "out of memory");
            } else {
                md_knum *kn = (md_knum *)arr + i;
                if (!YAJL_IS_NUMBER(val)) {
                    describe(val, got, sizeof(got));
                    return md_table_fail(L, sub, "expected a number, got %s", got);
                }
                kn->key = strdup(k);
                if (!kn->key) return md_table_fail(L, sub, "out of memory");
                kn->value = YAJL_GET_DOUBLE(val);
                if (!isfinite(kn->value) || fabs(kn->value) > 100)
                    return md_table_fail(L, sub, "expected a number in [-100, 100], got %s", val->u.number.r);
            }
        }
        return true;
    }
    default:
        if (!YAJL_IS_STRING(v)) return md_table_fail(L, path, "expected a string, got %s", got);
        return set_from_text(L, f, base, v->u.string, path);
    }
}

bool md_table_load(md_table_loader *L, const md_table *t, yajl_val obj, void *base, const char *path) {
    size_t nkeys = obj ? obj->u.object.len : 0;
    /* Reject unknown and repeated keys before anything else. */
    for (size_t k = 0; k < nkeys; k++) {
        const char *key = obj->u.object.keys[k];
        size_t i;
        for (i = 0; i < t->n; i++)
            if (strcmp(t->fields[i].key, key) == 0) break;
        if (i == t->n) {
            /* As many key names as fit, then "...": a long table (the
             * scenario's) must not overflow the message. */
            char known[512] = "";
            size_t used = 0;
            for (size_t j = 0; j < t->n; j++) {
                int w = snprintf(known + used, sizeof(known) - used, "%s%s", j ? ", " : "", t->fields[j].key);
                if (w < 0 || (size_t)w >= sizeof(known) - used - 4) {
                    snprintf(known + used, sizeof(known) - used, ", ...");
                    break;
                }
                used += (size_t)w;
            }
            char sub[512];
            path_key(sub, sizeof(sub), path, key);
            return md_table_fail(L, sub, "unknown key in %s (known keys: %s)", t->name, known);
        }
        for (size_t j = 0; j < k; j++)
            if (strcmp(obj->u.object.keys[j], key) == 0) {
                char sub[512];
                path_key(sub, sizeof(sub), path, key);
                return md_table_fail(L, sub, "key appears more than once");
            }
    }
    for (size_t i = 0; i < t->n; i++) {
        const md_field *f = &t->fields[i];
        yajl_val v = NULL;
        for (size_t k = 0; k < nkeys; k++)
            if (strcmp(obj->u.object.keys[k], f->key) == 0) v = obj->u.object.values[k];
        char sub[512];
        path_key(sub, sizeof(sub), path, f->key);
        if (v && !YAJL_IS_NULL(v)) {
            if (!set_from_json(L, f, base, v, sub)) return false;
        } else if (f->type == T_OBJ) {
            if (f->flags & F_OPTIONAL) continue;
            if (!md_table_load(L, f->sub, NULL, (char *)base + f->off, sub)) return false;
        } else if (f->type == T_ARR || f->type == T_PASS || f->type == T_NUMMAP) {
            if (!f->def) return md_table_fail(L, sub, "required (an array of %s objects)", f->sub->name);
        } else if (!f->def) {
            return md_table_fail(L, sub, "required");
        } else if (!set_from_text(L, f, base, f->def, sub)) {
            return false;
        }
    }
    return true;
}

void md_table_free(const md_table *t, void *base) {
    for (size_t i = 0; i < t->n; i++) {
        const md_field *f = &t->fields[i];
        void *p = (char *)base + f->off;
        switch (f->type) {
        case T_OBJ: md_table_free(f->sub, p); break;
        case T_ARR: {
            void *arr = *(void **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) md_table_free(f->sub, (char *)arr + k * f->elem_size);
            free(arr);
            break;
        }
        case T_PASS: {
            md_kv *kv = *(md_kv **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) {
                free(kv[k].key);
                free(kv[k].value);
            }
            free(kv);
            break;
        }
        case T_NUMMAP: {
            md_knum *kn = *(md_knum **)p;
            size_t n = *(size_t *)((char *)base + f->count_off);
            for (size_t k = 0; k < n; k++) free(kn[k].key);
            free(kn);
            break;
        }
        case T_STR:
        case T_EXPR:
        case T_ENUM:
        case T_TOD:
        case T_UTCOFF: free(*(char **)p); break;
        default: break;
        }
    }
}

/* The environment overrides the table names (field.env), applied over
 * what the file said. An empty variable is taken as unset. */
bool md_table_apply_env(md_table_loader *L, const md_table *t, void *obj) {
    for (size_t i = 0; i < t->n; i++) {
        const md_field *f = &t->fields[i];
        void *p = (char *)obj + f->off;
        if (f->type == T_OBJ && !md_table_apply_env(L, f->sub, p)) return false;
        const char *v = f->env ? getenv(f->env) : NULL;
        if (!v || !*v) continue;
        char *copy = strdup(v);
        if (!copy) return md_table_fail(L, f->env, "out of memory");
        free(*(char **)p);
        *(char **)p = copy;
    }
    return true;
}

static bool same_text(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

/* Whether field f holds the same value in objects a and b. */
static bool same_value(const md_field *f, const void *a, const void *b) {
    const void *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
    switch (f->type) {
    case T_STR:
    case T_EXPR:
    case T_ENUM:
    case T_TOD:
    case T_UTCOFF: return same_text(*(char *const *)pa, *(char *const *)pb);
    case T_INT:
    case T_DUR: return *(const int64_t *)pa == *(const int64_t *)pb;
    case T_NUM: return *(const double *)pa == *(const double *)pb;
    case T_NUMS: return memcmp(pa, pb, f->elem_size * sizeof(double)) == 0;
    case T_PASS: {
        size_t na = *(const size_t *)((const char *)a + f->count_off), nb = *(const size_t *)((const char *)b + f->count_off);
        const md_kv *ka = *(md_kv *const *)pa, *kb = *(md_kv *const *)pb;
        if (na != nb) return false;
        for (size_t k = 0; k < na; k++)
            if (!same_text(ka[k].key, kb[k].key) || !same_text(ka[k].value, kb[k].value)) return false;
        return true;
    }
    case T_OBJ:
    case T_ARR:
    case T_NUMMAP: return true; /* objects are compared field by field; no restart-only arrays or maps */
    }
    return true;
}

bool md_table_restart_change(const md_table *t, const char *prefix, const void *a, const void *b, char *key, size_t n) {
    for (size_t i = 0; i < t->n; i++) {
        const md_field *f = &t->fields[i];
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        if (f->type == T_OBJ && md_table_restart_change(f->sub, path, (const char *)a + f->off, (const char *)b + f->off, key, n)) return true;
        if ((f->flags & F_RESTART) && !same_value(f, a, b)) {
            snprintf(key, n, "%s", path);
            return true;
        }
    }
    return false;
}

static const char *type_text(const md_field *f, char *buf, size_t n) {
    switch (f->type) {
    case T_STR: return "string";
    case T_EXPR: return "expression";
    case T_INT: return "integer";
    case T_NUM: return "number";
    case T_DUR: return "duration";
    case T_TOD: return "HH:MM";
    case T_UTCOFF: return "UTC offset";
    case T_OBJ: return "object";
    case T_ARR: return "array of objects";
    case T_PASS: return "object of strings";
    case T_NUMMAP: return "object of numbers";
    case T_ENUM: snprintf(buf, n, "one of `%s`", f->choices); return buf;
    case T_NUMS: snprintf(buf, n, "array of %zu numbers", f->elem_size); return buf;
    }
    return "?";
}

static void fmt_bound(const md_field *f, char *buf, size_t n) {
    if (f->type == T_INT || f->type == T_NUM || f->type == T_NUMS) snprintf(buf, n, "%g – %g", f->lo, f->hi);
    else if (f->type == T_DUR) snprintf(buf, n, "%g ms – %g ms", f->lo, f->hi);
    else buf[0] = '\0';
}

void md_table_walk(const md_table *t, const char *prefix, md_table_visit_fn fn, void *ctx) {
    for (size_t i = 0; i < t->n; i++) {
        const md_field *f = &t->fields[i];
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s%s", prefix, *prefix ? "." : "", f->key, f->type == T_ARR ? "[]" : "");
        fn(ctx, path, f);
        if (f->type == T_OBJ || f->type == T_ARR) md_table_walk(f->sub, path, fn, ctx);
    }
}

typedef struct row_ctx {
    FILE *out;
    bool reload_columns;
} row_ctx;

static void print_row(void *ctx, const char *path, const md_field *f) {
    const row_ctx *rc = ctx;
    char tb[128], bb[64];
    const char *def = f->def == NULL                ? "*required*"
                      : (f->flags & F_OPTIONAL)     ? "optional"
                      : (f->type == T_OBJ || f->type == T_ARR || f->type == T_PASS || f->type == T_NUMMAP) ? ""
                                                    : f->def;
    fmt_bound(f, bb, sizeof(bb));
    bool code = *def && f->def && !(f->flags & F_OPTIONAL); /* a value, in backticks; "optional" is a word */
    fprintf(rc->out, "| `%s` | %s | %s%s%s | %s |", path, type_text(f, tb, sizeof(tb)), code ? "`" : "", def, code ? "`" : "", bb);
    if (rc->reload_columns) {
        char envb[80] = "";
        if (f->env) snprintf(envb, sizeof(envb), "`%s`", f->env);
        fprintf(rc->out, " %s | %s |", (f->flags & F_RESTART) ? "restart" : "yes", envb);
    }
    fprintf(rc->out, " %s |\n", f->doc);
}

void md_table_print_rows(const md_table *t, FILE *out, bool reload_columns) {
    row_ctx rc = {out, reload_columns};
    md_table_walk(t, "", print_row, &rc);
}
