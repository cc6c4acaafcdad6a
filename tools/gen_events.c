/* gen_events.c: a deterministic synthetic stream of momentd input, as text.
 *
 * Prints one message per line as "topic|key|json", ready to be split by topic
 * and piped to `kcat -P -K'|'`: the profiles first, then the days of history
 * in order, each day's events of every customer. The customers and their
 * stories are tools/stories.c's, the same the benchmark's load generator
 * produces, so the demo, the tests and the benchmark see one population. The
 * same seed gives the same stream.
 *
 *   gen_events --customers N [--seed S] [--start EPOCH_MS] [--days D]
 *              [--topics payments,calls,app-logins,customer-profiles] [--prefix P] */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stories.h"

typedef struct printer {
    bool want[STORY_TOPIC_COUNT];
    const char *prefix; /* before each topic name */
} printer;

/* Every event is drawn whether its topic is printed or not, so that
 * selecting topics never changes the events of the others. */
static int print_line(void *ctx, story_topic t, const char *key, const char *json, int len) {
    const printer *p = ctx;
    if (p->want[t]) printf("%s%s|%s|%.*s\n", p->prefix, story_topic_names[t], key, len, json);
    return 0;
}

int main(int argc, char **argv) {
    long customers = 100;
    uint64_t seed = 1;
    int64_t start = INT64_C(1767225600000); /* 2026-01-01T00:00:00Z */
    long days = 180;
    printer p = {{true, true, true, true}, ""};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--customers") && i + 1 < argc) customers = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--start") && i + 1 < argc) start = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) days = atol(argv[++i]);
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc) p.prefix = argv[++i];
        else if (!strcmp(argv[i], "--topics") && i + 1 < argc) {
            const char *t = argv[++i];
            for (int k = 0; k < STORY_TOPIC_COUNT; k++) p.want[k] = strstr(t, story_topic_names[k]) != NULL;
        } else {
            fprintf(stderr, "usage: gen_events --customers N [--seed S] [--start EPOCH_MS] [--days D] [--topics LIST] [--prefix P]\n");
            return 2;
        }
    }
    if (customers < 1 || customers > 9999999 || days < 30 || seed == 0) {
        fprintf(stderr, "gen_events: need 1 <= --customers <= 9999999, --days >= 30, --seed >= 1\n");
        return 2;
    }
    start -= start % STORY_DAY_MS;
    story_customer *all = malloc((size_t)customers * sizeof(*all));
    if (!all) {
        fprintf(stderr, "gen_events: out of memory for %ld customers\n", customers);
        return 1;
    }
    story_gen g = {seed, "", 0, print_line, &p};
    for (long n = 0; n < customers; n++) {
        story_customer_get(seed, n, &all[n]);
        story_profile(&g, &all[n]);
    }
    for (long d = 0; d < days; d++)
        for (long n = 0; n < customers; n++) story_history_day(&g, &all[n], n, d, start + d * STORY_DAY_MS);
    free(all);
    return 0;
}
