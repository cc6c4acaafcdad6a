/* log.h (private): structured logs, one JSON object per line on stderr.
 *
 *   md_log(MD_LOG_INFO, "daemon", "batch committed", "events", "500", NULL);
 *
 * Fields are key/value string pairs ending with NULL. Nothing secret is ever
 * passed here: callers log addresses without credentials. */
#ifndef MOMENTD_LOG_H
#define MOMENTD_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum md_log_level { MD_LOG_DEBUG, MD_LOG_INFO, MD_LOG_WARN, MD_LOG_ERROR } md_log_level;

void md_log_set_level(md_log_level level);
bool md_log_parse_level(const char *name, md_log_level *out);
bool md_log_enabled(md_log_level level);
void md_log(md_log_level level, const char *component, const char *msg, ...);
/* The same with n fields given as two arrays (keys[i], values[i]). */
void md_log_pairs(md_log_level level, const char *component, const char *msg, const char *const *keys, const char *const *values,
                  size_t n);

#endif
