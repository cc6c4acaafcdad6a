/* log.c: JSON-lines logging to stderr (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "momentd/jsonw.h"

static md_log_level min_level = MD_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void md_log_set_level(md_log_level level) { min_level = level; }
bool md_log_enabled(md_log_level level) { return level >= min_level; }

bool md_log_parse_level(const char *name, md_log_level *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (md_log_level)i;
            return true;
        }
    return false;
}

static void line_open(md_jsonw *w, md_log_level level, const char *component, const char *msg) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char ts[32];
    md_format_time((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts);
    md_jsonw_init(w);
    md_jsonw_obj_open(w);
    md_jsonw_kstr(w, "time", ts);
    md_jsonw_kstr(w, "level", level_names[level]);
    md_jsonw_kstr(w, "component", component);
    md_jsonw_kstr(w, "msg", msg);
}

static void line_close(md_jsonw *w) {
    md_jsonw_obj_close(w);
    if (!w->oom) fprintf(stderr, "%s\n", w->buf);
    md_jsonw_fini(w);
}

void md_log(md_log_level level, const char *component, const char *msg, ...) {
    if (level < min_level) return;
    md_jsonw w;
    line_open(&w, level, component, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        md_jsonw_kstr(&w, k, v ? v : "");
    }
    va_end(ap);
    line_close(&w);
}

void md_log_pairs(md_log_level level, const char *component, const char *msg, const char *const *keys, const char *const *values,
                  size_t n) {
    if (level < min_level) return;
    md_jsonw w;
    line_open(&w, level, component, msg);
    for (size_t i = 0; i < n; i++) md_jsonw_kstr(&w, keys[i], values[i] ? values[i] : "");
    line_close(&w);
}
