/* fuzz_state.c: libFuzzer target for a customer's state as Redis hands it
 * back (md_cstate_load_field): whatever a foreign write or a bad restore
 * left in the hash, loading it, deciding an event on it and writing it back
 * never crashes, and what momentd writes back always loads.
 *
 * Input: the first byte picks the event (its type, and where it lies
 * around the state's newest event); then lines "field\tvalue" (a line
 * without a tab is a field with an empty value; a field named twice holds
 * the last value, as in a hash). Invariants:
 *   - every field the engine writes back is read again without being
 *     counted malformed, and no piece (event ids, series, watermarks,
 *     profile) passes Redis's 64-byte listpack value limit, with or
 *     without the namespace's short codes (the first byte's bit 1);
 *   - an event applied is remembered by the event-id guard once the state
 *     is read back (a re-publication is recognised after the next read). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cstate_internal.h" /* bad_fields */
#include "fuzz.h"
#include "momentd/config.h"
#include "momentd/engine.h"

#define T0_MS INT64_C(1772416800000)
#define MAX_FIELDS 512

typedef struct pair {
    char *f, *v;
    size_t fl, vl;
} pair;

static md_config *state_config(void) {
    static md_config *cfg;
    if (cfg) return cfg;
    FILE *f = fopen(MOMENTD_DEFAULT_CONFIG, "rb");
    FUZZ_ASSERT(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char err[1024];
    cfg = md_config_load_string(text, "momentd.json", err, sizeof(err));
    if (!cfg) fprintf(stderr, "fuzz_state: %s\n", err);
    FUZZ_ASSERT(cfg);
    return cfg;
}

/* The namespace's short codes for the configuration, as a new
 * namespace's registry gives them. */
static const md_codes *state_codes(const md_config *cfg) {
    static md_codes *codes;
    if (!codes) codes = md_codes_fresh(cfg);
    FUZZ_ASSERT(codes);
    return codes;
}

/* The hash after ops: a set replaces or adds, a delete removes (the
 * outbox's writes go to another key). Field and value copies are owned. */
static size_t apply_ops(pair *h, size_t n, const md_ops *ops) {
    for (size_t k = 0; k < ops->n; k++) {
        const char *f = md_ops_field(ops, k);
        size_t fl = ops->ops[k].field_len, at = 0;
        if (ops->ops[k].kind == MD_OP_OUTBOX_SET) continue;
        while (at < n && !(h[at].fl == fl && memcmp(h[at].f, f, fl) == 0)) at++;
        if (ops->ops[k].kind == MD_OP_DEL) {
            if (at < n) {
                free(h[at].f);
                free(h[at].v);
                h[at] = h[--n];
            }
            continue;
        }
        FUZZ_ASSERT(ops->ops[k].kind == MD_OP_SET); /* the engine writes no increments to a customer */
        if (at == n) {
            FUZZ_ASSERT(n < MAX_FIELDS * 4);
            h[n].f = malloc(fl + 1);
            FUZZ_ASSERT(h[n].f);
            memcpy(h[n].f, f, fl + 1);
            h[n].fl = fl;
            h[n].v = NULL;
            n++;
        }
        size_t vl = ops->ops[k].value_len;
        free(h[at].v);
        h[at].v = malloc(vl + 1);
        FUZZ_ASSERT(h[at].v);
        memcpy(h[at].v, md_ops_value(ops, k), vl + 1);
        h[at].vl = vl;
        if ((f[0] == 'G' || f[0] == 'H' || f[0] == 'W') && fl <= 3) FUZZ_ASSERT(vl <= 64); /* the guard's, the series' and the watermarks' pieces */
        if (f[0] == 'P' && fl <= 4) FUZZ_ASSERT(vl <= 64);                                 /* the profile's */
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    md_config *cfg = state_config();
    static pair h[MAX_FIELDS * 4];
    size_t n = 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end && n < MAX_FIELDS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(line_end - p));
        const char *fe = tab ? tab : line_end, *vs = tab ? tab + 1 : line_end;
        size_t fl = (size_t)(fe - p), at = 0;
        /* A hash: a field named twice holds the last value. */
        while (at < n && !(h[at].fl == fl && memcmp(h[at].f, p, fl) == 0)) at++;
        if (at == n) {
            h[n].fl = fl;
            h[n].f = malloc(fl + 1);
            FUZZ_ASSERT(h[n].f);
            memcpy(h[n].f, p, fl);
            h[n].f[fl] = '\0';
            h[n].v = NULL;
            n++;
        }
        free(h[at].v);
        h[at].vl = (size_t)(line_end - vs);
        h[at].v = malloc(h[at].vl + 1);
        FUZZ_ASSERT(h[at].v);
        memcpy(h[at].v, vs, h[at].vl);
        h[at].v[h[at].vl] = '\0';
        p = nl ? nl + 1 : end;
    }
    md_cstate *cs = md_cstate_new(cfg), *back = md_cstate_new(cfg);
    FUZZ_ASSERT(cs && back);
    if (data[0] & 2) { /* half the inputs as a namespace with short codes reads them */
        md_cstate_set_codes(cs, state_codes(cfg));
        md_cstate_set_codes(back, state_codes(cfg));
    }
    for (size_t i = 0; i < n; i++) md_cstate_load_field(cs, h[i].f, h[i].fl, h[i].v, h[i].vl);
    size_t bad_before = cs->bad_fields;

    static const char *const types[] = {"payment", "call", "app_login"};
    /* From two days before the state's newest event to two weeks after
     * it: late, in order and far ahead, as they come. */
    int64_t ts = (cs->newest_ts > T0_MS && cs->newest_ts < T0_MS * 2 ? cs->newest_ts : T0_MS) + ((int64_t)(data[0] >> 2) - 8) * 3600000 * 7;
    char json[512];
    snprintf(json, sizeof(json),
             "{\"event_id\":\"fz-%u\",\"type\":\"%s\",\"customer_id\":\"c-1\",\"ts\":%lld,\"amount\":12.5,\"kind\":\"bill\","
             "\"late\":false,\"balance_after\":100,\"topic\":\"instalment\",\"pages\":[\"prepay_product\"]}",
             (unsigned)data[0], types[data[0] % 3], (long long)ts);
    md_event ev;
    md_parse_result res;
    md_err e = md_event_parse(fuzz_parser(), json, strlen(json), NULL, 0, INT64_C(4102444800000), &ev, &res);
    if (e == MD_ERR_OK) {
        md_ops ops;
        md_ops_init(&ops);
        md_engine_out out;
        md_engine_out_init(&out);
        e = md_engine_process(cfg, cs, NULL, &ev, NULL, ts, &ops, NULL, &out);
        if (e == MD_ERR_OK) {
            md_cstate_flush(cs, &ops);
            FUZZ_ASSERT(!ops.oom);
            n = apply_ops(h, n, &ops);
            for (size_t i = 0; i < n; i++) md_cstate_load_field(back, h[i].f, h[i].fl, h[i].v, h[i].vl);
            /* Written back, nothing new is malformed: a field the engine
             * rewrote reads; one it left alone counts as before. */
            FUZZ_ASSERT(back->bad_fields <= bad_before);
            if (out.applied == MD_APPLIED) FUZZ_ASSERT(md_cs_seen(back, ev.event_id, md_cs_id_hash(back, ev.event_id)));
        }
        md_engine_out_fini(&out);
        md_ops_fini(&ops);
    }
    md_cstate_destroy(cs);
    md_cstate_destroy(back);
    for (size_t i = 0; i < n; i++) {
        free(h[i].f);
        free(h[i].v);
    }
    return 0;
}
