/* helpers.h: shared fixtures of the unit suites. */
#ifndef MOMENTD_TEST_HELPERS_H
#define MOMENTD_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/config.h"
#include "momentd/engine.h"
#include "momentd/event.h"

/* The whole file at path, NUL-terminated; the caller frees it. Aborts the
 * test when the file cannot be read. */
char *th_read_file(const char *path);
/* The repository's default configuration; aborts the test on failure. */
md_config *th_default_config(void);
/* The default configuration with `from` replaced by `to` once in its text. */
md_config *th_config_with(const char *from, const char *to, char *err, size_t errsz);
/* The default configuration with n_pairs replacements: pairs[2i] becomes pairs[2i+1]. */
md_config *th_config_edit(const char *const *pairs, size_t n_pairs, char *err, size_t errsz);
/* Writes into id (n bytes) the first "<prefix>-<i>" outside bill_instalment's
 * holdout group (10%) and inside (in_prepay_holdout) or outside
 * prepay_wallet's (5%), as the default configuration assigns them. */
void th_pick_customer(char *id, size_t n, const char *prefix, bool in_prepay_holdout);
/* Base 36, lower case, as the state layout writes times and hashes (out:
 * at least 14 bytes), computed here apart from the code under test. */
void th_b36(uint64_t v, char *out);
/* Parses a JSON event (no key check) at a fixed "now"; aborts on rejection. */
md_event th_event(const char *json);
/* 2026-03-02T10:00:00+08:00 (a Monday morning in Beijing): mid-morning, so quiet hours don't interfere. */
#define TH_T0 INT64_C(1772416800000)
#define TH_DAY INT64_C(86400000)
#define TH_HOUR INT64_C(3600000)

#endif
