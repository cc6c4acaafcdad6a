/* helpers.c: shared fixtures of the unit suites. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *th_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

md_config *th_default_config(void) {
    char err[1024];
    char *text = th_read_file(MOMENTD_SOURCE_DIR "/config/momentd.json");
    md_config *cfg = md_config_load_string(text, "momentd.json", err, sizeof(err));
    free(text);
    cr_assert(cfg, "default config failed to load: %s", err);
    return cfg;
}

/* text with the first `from` replaced by `to` (caller frees). */
static char *replace_once(char *text, const char *from, const char *to) {
    char *at = strstr(text, from);
    cr_assert(at, "fixture text '%s' not found in the default config", from);
    char *out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
    cr_assert(out);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    free(text);
    return out;
}

md_config *th_config_edit(const char *const *pairs, size_t n_pairs, char *err, size_t errsz) {
    char *text = th_read_file(MOMENTD_SOURCE_DIR "/config/momentd.json");
    for (size_t i = 0; i < n_pairs; i++) text = replace_once(text, pairs[2 * i], pairs[2 * i + 1]);
    md_config *cfg = md_config_load_string(text, "test.json", err, errsz);
    free(text);
    return cfg;
}

md_config *th_config_with(const char *from, const char *to, char *err, size_t errsz) {
    const char *pairs[] = {from, to};
    return th_config_edit(pairs, 1, err, errsz);
}

md_event th_event(const char *json) {
    md_event_limits lim = {65536, 300000, 64, 16};
    md_event_parser *p = md_event_parser_new(&lim);
    md_event ev;
    md_parse_result res;
    md_err err = md_event_parse(p, json, strlen(json), NULL, 0, INT64_C(4102444800000), &ev, &res);
    md_event_parser_destroy(p);
    cr_assert_eq(err, MD_ERR_OK, "fixture event rejected (%s: %s): %s", md_reject_code(res.reason), res.detail, json);
    return ev;
}

/* Bounded: with 5% and 10% holdout shares, a wanted id is among the first
 * few hundred unless the membership hash is broken, and a broken hash must
 * fail here, not spin until the suite's timeout. The hash itself is checked
 * against fixed values and by its statistics in test_engine.c. */
void th_pick_customer(char *id, size_t n, const char *prefix, bool in_prepay_holdout) {
    for (int i = 0; i < 2000; i++) {
        snprintf(id, n, "%s-%d", prefix, i);
        unsigned b = md_holdout_bucket(id, "prepay_wallet");
        if ((in_prepay_holdout ? b < 500 : b >= 500) && md_holdout_bucket(id, "bill_instalment") >= 1000) return;
    }
    cr_assert_fail("no %s-N among 2000 ids is %sin prepay_wallet's holdout group: the membership hash is broken", prefix,
                   in_prepay_holdout ? "" : "out of ");
}

void th_b36(uint64_t v, char *out) {
    char tmp[16];
    int n = 0;
    do tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
    while (v /= 36);
    while (n) *out++ = tmp[--n];
    *out = '\0';
}
