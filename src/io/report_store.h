/* report_store.h (private): reading a report's counts from Redis. */
#ifndef MOMENTD_REPORT_STORE_H
#define MOMENTD_REPORT_STORE_H

#include "report.h"
#include "store.h"

/* The report for days from_day .. to_day (days since 1970-01-01), read with
 * one pipelined round trip. The caller owns the result (md_report_destroy);
 * NULL with errstr on a Redis error or a bad range. */
md_report *md_report_read(md_store *s, const md_config *cfg, int64_t from_day, int64_t to_day, int64_t now_ms, char *errstr,
                          size_t errstr_size);

#endif
