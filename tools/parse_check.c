/* parse_check.c: momentd's own verdict on input messages, for the schema
 * test (tests/schemas/check): each stdin line "event|outcome|profile<TAB>
 * JSON" prints "accept" or "reject <reason>" with the parsers the daemon
 * uses (md_event_parse, md_outcome_parse, md_profile_check) at the default
 * limits, the clock at the time given by --now MS (default: now); --codes
 * prints every reason a dead letter can carry, --suppressions every rule a
 * decision can be blocked by. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "momentd/engine.h"
#include "momentd/event.h"

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (argc == 2 && strcmp(argv[1], "--codes") == 0) { /* every reason a dead letter can carry */
        for (int r = 1; r < MD_REJECT_COUNT; r++) printf("%s\n", md_reject_code((md_reject)r));
        printf("%s\n%s\n", MD_DEAD_LETTER_BAD_PROFILE, MD_DEAD_LETTER_REDIS_REFUSED);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--suppressions") == 0) { /* every reason a decision can be blocked for */
        for (int r = 1; r < MD_SUPPRESS_COUNT; r++) printf("%s\n", md_suppress_name((md_suppress)r));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--now") == 0) now = strtoll(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: parse_check [--now MS | --codes | --suppressions] < LINES\n");
        return 2;
    }
    md_event_limits lim = {65536, 300000, 64, 16}; /* the configuration's defaults */
    md_event_parser *p = md_event_parser_new(&lim);
    if (!p) return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) {
            printf("reject no_kind\n");
            continue;
        }
        *tab = '\0';
        const char *json = tab + 1;
        size_t jl = (size_t)(line + len - json);
        md_parse_result res;
        memset(&res, 0, sizeof(res));
        if (strcmp(line, "event") == 0) {
            md_event ev;
            md_event_parse(p, json, jl, NULL, 0, now, &ev, &res);
        } else if (strcmp(line, "outcome") == 0) {
            md_outcome o;
            md_outcome_parse(p, json, jl, NULL, 0, now, &o, &res);
        } else if (strcmp(line, "profile") == 0) {
            char err[256];
            printf("%s\n", md_profile_check(json, 32, err, sizeof(err)) == MD_ERR_OK ? "accept" : "reject " MD_DEAD_LETTER_BAD_PROFILE);
            continue;
        } else {
            printf("reject unknown_kind\n");
            continue;
        }
        if (res.reason == MD_REJECT_NONE) printf("accept\n");
        else printf("reject %s\n", md_reject_code(res.reason));
    }
    free(line);
    md_event_parser_destroy(p);
    return 0;
}
