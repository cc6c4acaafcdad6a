/* error.h: momentd's one error enum and its text.
 *
 * Every fallible function returns an md_err (0 = ok) or NULL plus an errstr
 * filled by the callee. The codes are classified so that each I/O edge can
 * decide what to do without parsing text: retriable (wait and try again),
 * fatal (stop cleanly) or bad data (dead-letter, count, go on).
 * MD_ERR_REDIS_REFUSED is bad data found by Redis: one key's command was
 * refused (WRONGTYPE, CROSSSLOT, a script's error) while the rest of the
 * pipeline went through; that key's input is set aside, the rest goes on. */
#ifndef MOMENTD_ERROR_H
#define MOMENTD_ERROR_H

#include <stddef.h>

#define MD_ERR_MAP(X)                                                       \
    X(OK, "ok")                                                             \
    X(NOMEM, "out of memory")                                               \
    X(INVALID, "invalid argument")                                          \
    X(CONFIG, "configuration error")                                        \
    X(IO, "input/output error")                                             \
    X(PARSE, "parse error")                                                 \
    X(BAD_EVENT, "malformed event")                                         \
    X(REDIS_DOWN, "redis unavailable")                                      \
    X(REDIS_REPLY, "unexpected redis reply")                                \
    X(REDIS_REFUSED, "redis refused a command for one key")                 \
    X(KAFKA, "kafka error")                                                 \
    X(NOT_FOUND, "not found")                                               \
    X(OVERFLOW, "value or buffer too large")

typedef enum md_err {
#define MD_ERR_ENUM(name, text) MD_ERR_##name,
    MD_ERR_MAP(MD_ERR_ENUM)
#undef MD_ERR_ENUM
} md_err;

/* Static text for err; never NULL, also for codes outside the enum. */
const char *md_err2str(md_err err);

/* Retriable failures are those of a dependency that may come back (Redis,
 * Kafka); the caller waits and retries without skipping input. */
int md_err_is_retriable(md_err err);

#endif
