/* report_store.c: a report's counts read from Redis, for `momentd report`
 * and the HTTP endpoint: every campaign's funnel hash of every day in the
 * range, in one pipelined round trip. */
#include "report_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct load_ctx {
    md_report *rep;
    size_t n_campaigns;
} load_ctx;

/* Key i is campaign i % n_campaigns of day i / n_campaigns. */
static void add_field(void *ctx, size_t i, const char *field, size_t flen, const char *value, size_t vlen) {
    load_ctx *l = ctx;
    char f[128], v[32];
    if (flen >= sizeof(f) || vlen >= sizeof(v)) {
        md_report_add(l->rep, -1, 0, "", ""); /* counted as ignored */
        return;
    }
    memcpy(f, field, flen);
    f[flen] = '\0';
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    md_report_add(l->rep, (int)(i % l->n_campaigns), (int)(i / l->n_campaigns), f, v);
}

md_report *md_report_read(md_store *s, const md_config *cfg, int64_t from_day, int64_t to_day, int64_t now_ms, char *errstr,
                          size_t errstr_size) {
    md_report *rep = md_report_new(cfg, from_day, to_day, now_ms);
    if (!rep) {
        snprintf(errstr, errstr_size, "bad day range or out of memory");
        return NULL;
    }
    size_t n = (size_t)md_report_days(rep) * cfg->n_campaigns;
    char **keys = calloc(n + 1, sizeof(char *));
    bool ok = keys != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        keys[i] = malloc(256);
        if (!keys[i]) {
            ok = false;
            break;
        }
        md_store_funnel_key(s, cfg->campaigns[i % cfg->n_campaigns].name, md_report_day(rep, (int)(i / cfg->n_campaigns)), keys[i],
                            256);
    }
    load_ctx l = {rep, cfg->n_campaigns};
    if (!ok) snprintf(errstr, errstr_size, "out of memory");
    else if (md_store_hgetall_each(s, n, (const char *const *)keys, add_field, &l, errstr, errstr_size) != MD_ERR_OK) ok = false;
    /* And which campaigns an operator paused (momentd pause). */
    uint32_t mask;
    int64_t since[MD_MAX_CAMPAIGNS + 1];
    if (ok && cfg->n_campaigns <= MD_MAX_CAMPAIGNS) {
        if (md_store_paused(s, cfg, &mask, since, errstr, errstr_size) != MD_ERR_OK) ok = false;
        else md_report_set_paused(rep, since);
    }
    for (size_t i = 0; keys && i < n; i++) free(keys[i]);
    free(keys);
    if (!ok) {
        md_report_destroy(rep);
        return NULL;
    }
    return rep;
}
