/* stories.h: the synthetic customers of the demo, the tests and the
 * benchmark, written once for both of their generators (tools/gen_events.c
 * prints them, bench/loadgen.c produces them to Kafka).
 *
 * Every customer has a story fixed by the seed and the customer's number: a
 * late payer with a shrinking balance, a browser of the prepaid product, an
 * instalment shopper, or a quiet payer. A customer, and each day of a
 * customer's history, draws from a random stream of its own (splitmix64 of
 * the seed, the customer and the day), so any customer or day can be drawn
 * without the others, and history and live traffic agree on who is who.
 * Event times fall between 01:00 and 12:00 UTC (09:00-20:00 in China) so
 * that the channels' quiet hours do not hide the interesting part. */
#ifndef MOMENTD_STORIES_H
#define MOMENTD_STORIES_H

#include <stdbool.h>
#include <stdint.h>

#define STORY_DAY_MS INT64_C(86400000)
#define STORY_HOUR_MS INT64_C(3600000)

enum story { STORY_LATE_PAYER, STORY_PREPAY_BROWSER, STORY_INSTALMENT_SHOPPER, STORY_QUIET, STORY_COUNT };

/* The input topics a story writes to, as momentd's default names them. */
typedef enum story_topic { STORY_PAYMENTS, STORY_CALLS, STORY_APP_LOGINS, STORY_PROFILES, STORY_TOPIC_COUNT } story_topic;
extern const char *const story_topic_names[STORY_TOPIC_COUNT];

/* A random stream (splitmix64). */
typedef struct story_rng {
    uint64_t s;
} story_rng;
uint64_t story_mix(uint64_t x);
double story_unif(story_rng *r);         /* [0, 1) */
long story_below(story_rng *r, long n);  /* [0, n) */

typedef struct story_customer {
    char id[16];
    enum story story;
    int bill_day; /* day of the 30-day bill cycle */
    const char *customer_type, *source_channel, *segment, *age_band;
} story_customer;

/* Customer n of the population of seed. */
void story_customer_get(uint64_t seed, long n, story_customer *c);

/* Where a story's messages go: one message of topic t, key and JSON value
 * (len bytes); non-zero stops the story and is returned. */
typedef int (*story_emit_fn)(void *ctx, story_topic t, const char *key, const char *json, int len);

/* A generator: the seed, a tag that makes event ids unique across runs
 * ("<customer>-<tag><letter><n>"), a running event number, and the sink. */
typedef struct story_gen {
    uint64_t seed;
    const char *tag;
    long seq;
    story_emit_fn emit;
    void *ctx;
} story_gen;

int story_profile(story_gen *g, const story_customer *c);
int story_payment(story_gen *g, const story_customer *c, int64_t ts, story_rng *r);
int story_call(story_gen *g, const story_customer *c, int64_t ts, story_rng *r);
int story_app_login(story_gen *g, const story_customer *c, int64_t ts, story_rng *r);

/* Customer n's day d of history, starting at day_start (midnight UTC): the
 * bill on their bill day, then logins and calls at random daytime instants,
 * in time order. */
int story_history_day(story_gen *g, const story_customer *c, long n, long d, int64_t day_start);

/* One event of live traffic for customer c at ts, of the mix of a utility's
 * traffic (mostly app logins), drawn from r. */
int story_live_event(story_gen *g, const story_customer *c, int64_t ts, story_rng *r);

#endif
