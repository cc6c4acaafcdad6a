/* backtest.h (private): `momentd backtest`, a candidate configuration tried
 * on recorded input beside the live one (backtest.c). */
#ifndef MOMENTD_BACKTEST_H
#define MOMENTD_BACKTEST_H

#include <stdbool.h>

typedef struct md_backtest_opts {
    const char *candidate;   /* configuration to try */
    const char *live;        /* configuration it is compared with */
    const char *from_file;   /* JSON lines (events) or "topic|key|json" lines; "-" = stdin */
    const char *from_topics; /* or: comma-separated topics, read from the beginning to their end now */
    const char *redis_url;   /* NULL: the live configuration's (namespaces of their own, wiped) */
    bool json;
} md_backtest_opts;

/* Returns a process exit code: 0, 1 runtime failure, 2 bad input or configuration. */
int md_backtest(const md_backtest_opts *o);

/* `momentd load-profiles -c FILE PROFILES`: writes static profiles
 * ("CUSTOMER_ID|{json}" lines, as on the compacted topic) straight into the
 * customers' state through the versioned apply; invalid lines are reported
 * with their line number and skipped. Exit 0, 1 runtime failure, 2 when a
 * line was refused or the input is bad. */
int md_load_profiles(const char *config_path, const char *file, const char *redis_url);

#endif
