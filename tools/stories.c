/* stories.c: the synthetic customers (stories.h). */
#include "stories.h"

#include <inttypes.h>
#include <stdio.h>

const char *const story_topic_names[STORY_TOPIC_COUNT] = {"payments", "calls", "app-logins", "customer-profiles"};

uint64_t story_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t next(story_rng *r) { return r->s = story_mix(r->s); }
double story_unif(story_rng *r) { return (double)(next(r) >> 11) / 9007199254740992.0; }
long story_below(story_rng *r, long n) { return (long)(next(r) % (uint64_t)n); }

void story_customer_get(uint64_t seed, long n, story_customer *c) {
    static const char *const types[] = {"resident", "resident", "resident", "commercial"};
    static const char *const sources[] = {"app", "counter", "wechat", "call_center"};
    static const char *const segments[] = {"revolver", "transactor", "new"};
    static const char *const ages[] = {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"};
    story_rng r = {story_mix(seed * 0x100000001B3ULL + (uint64_t)n)};
    snprintf(c->id, sizeof(c->id), "c%07ld", n);
    uint64_t s = next(&r) % 100;
    c->story = s < 20 ? STORY_LATE_PAYER : s < 35 ? STORY_PREPAY_BROWSER : s < 50 ? STORY_INSTALMENT_SHOPPER : STORY_QUIET;
    c->bill_day = (int)story_below(&r, 30);
    c->customer_type = types[story_below(&r, 4)];
    c->source_channel = sources[story_below(&r, 4)];
    c->segment = segments[story_below(&r, 3)];
    c->age_band = ages[story_below(&r, 6)];
}

/* Writes the fields every event has into json; the caller appends its own
 * and the closing brace. Returns the length written. */
static int event_head(char *json, size_t size, story_gen *g, const story_customer *c, char letter, const char *type, int64_t ts) {
    return snprintf(json, size, "{\"event_id\":\"%s-%s%c%ld\",\"type\":\"%s\",\"customer_id\":\"%s\",\"ts\":%" PRId64, c->id, g->tag,
                    letter, g->seq++, type, c->id, ts);
}

int story_profile(story_gen *g, const story_customer *c) {
    char json[512];
    int len = snprintf(json, sizeof(json),
                       "{\"customer_type\":\"%s\",\"source_channel\":\"%s\",\"segment\":\"%s\",\"age_band\":\"%s\",\"province\":\"Hebei\"}",
                       c->customer_type, c->source_channel, c->segment, c->age_band);
    return g->emit(g->ctx, STORY_PROFILES, c->id, json, len);
}

int story_payment(story_gen *g, const story_customer *c, int64_t ts, story_rng *r) {
    bool risky = c->story == STORY_LATE_PAYER;
    const char *kind = "bill";
    double amount = 60 + story_unif(r) * 240, balance = risky ? 10 + story_unif(r) * 200 : 150 + story_unif(r) * 500;
    bool late = story_unif(r) < (risky ? 0.6 : 0.06);
    double k = story_unif(r);
    if (k < 0.02) kind = "arrears_restore", late = true, balance = 10;
    else if (k < 0.05) kind = "prepay", amount = 500, balance += 500;
    else if (c->story == STORY_INSTALMENT_SHOPPER && k < 0.25) kind = "card", amount = 800 + story_unif(r) * 6000;
    char json[512];
    int len = event_head(json, sizeof(json), g, c, 'p', "payment", ts);
    len += snprintf(json + len, sizeof(json) - (size_t)len, ",\"amount\":%.2f,\"channel\":\"%s\",\"kind\":\"%s\",\"late\":%s,\"balance_after\":%.2f}",
                    amount, story_unif(r) < 0.5 ? "app" : "bank", kind, late ? "true" : "false", balance);
    return g->emit(g->ctx, STORY_PAYMENTS, c->id, json, len);
}

int story_call(story_gen *g, const story_customer *c, int64_t ts, story_rng *r) {
    static const char *const routine[] = {"bill_inquiry", "outage_report", "address_change", "outlet_inquiry", "complaint"};
    const char *reason = routine[story_below(r, 4)]; /* complaints are drawn below, rarely */
    if (c->story == STORY_LATE_PAYER && story_unif(r) < 0.5) reason = "bill_inquiry";
    else if (c->story == STORY_PREPAY_BROWSER && story_unif(r) < 0.4) reason = "prepay_inquiry";
    else if (c->story == STORY_INSTALMENT_SHOPPER && story_unif(r) < 0.5) reason = "instalment_inquiry";
    else if (story_unif(r) < 0.03) reason = routine[4];
    char json[512];
    int len = event_head(json, sizeof(json), g, c, 'c', "call", ts);
    len += snprintf(json + len, sizeof(json) - (size_t)len, ",\"reason\":\"%s\",\"duration_s\":%ld,\"direction\":\"inbound\"}", reason,
                    30 + story_below(r, 570));
    return g->emit(g->ctx, STORY_CALLS, c->id, json, len);
}

int story_app_login(story_gen *g, const story_customer *c, int64_t ts, story_rng *r) {
    static const char *const browsing[] = {"bill", "usage", "payment_history", "notices"};
    const char *page = browsing[story_below(r, 4)];
    if (c->story == STORY_PREPAY_BROWSER && story_unif(r) < 0.35) page = "prepay_product";
    else if (c->story == STORY_INSTALMENT_SHOPPER && story_unif(r) < 0.35) page = "instalment_product";
    else if (story_unif(r) < 0.02) page = "prepay_product";
    char json[512];
    int len = event_head(json, sizeof(json), g, c, 'a', "app_login", ts);
    len += snprintf(json + len, sizeof(json) - (size_t)len, ",\"pages\":[\"home\",\"%s\"],\"session_s\":%ld}", page, 10 + story_below(r, 890));
    return g->emit(g->ctx, STORY_APP_LOGINS, c->id, json, len);
}

/* How often a customer of each story does each thing on an ordinary day:
 * about 6 bills, 20-40 app logins and 2-4 calls in 180 days. */
static const double logins_per_day[STORY_COUNT] = {0.12, 0.25, 0.2, 0.1};
static const double calls_per_day[STORY_COUNT] = {0.02, 0.015, 0.015, 0.01};

int story_history_day(story_gen *g, const story_customer *c, long n, long d, int64_t day_start) {
    story_rng r = {story_mix(g->seed ^ story_mix((uint64_t)n * 1000003u + (uint64_t)d))};
    int64_t t = day_start + STORY_HOUR_MS + story_below(&r, 4 * STORY_HOUR_MS);
    if (d % 30 == c->bill_day && story_payment(g, c, t, &r)) return -1;
    for (double p = logins_per_day[c->story]; p > 0; p -= 1.0)
        if (story_unif(&r) < p && story_app_login(g, c, t += story_below(&r, 2 * STORY_HOUR_MS), &r)) return -1;
    if (story_unif(&r) < calls_per_day[c->story] && story_call(g, c, t += story_below(&r, STORY_HOUR_MS), &r)) return -1;
    return 0;
}

int story_live_event(story_gen *g, const story_customer *c, int64_t ts, story_rng *r) {
    double k = story_unif(r);
    return k < 0.25 ? story_payment(g, c, ts, r) : k < 0.33 ? story_call(g, c, ts, r) : story_app_login(g, c, ts, r);
}
