/* gen_events.c: a deterministic synthetic stream of momentd input events.
 *
 * Prints one message per line as "topic|key|json", ready to be split by topic
 * and piped to `kcat -P -K'|'`. The same seed gives the same stream. Each
 * customer gets a story (late payer drifting into a low balance, an app user
 * looking at the prepaid product, an instalment shopper, or a quiet payer),
 * so that some customers cross a campaign threshold and most do not. Event
 * times fall between 09:00 and 20:00 Beijing time so quiet hours don't hide
 * the interesting part; --noise adds events at any hour.
 *
 *   gen_events --customers N [--seed S] [--start EPOCH_MS] [--days D]
 *              [--topics payments,calls,app-logins,customer-profiles] [--prefix P] */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
static uint64_t rnd(void) {
    /* xorshift64*: small, fast, and identical on every platform. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static int64_t range(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

#define DAY INT64_C(86400000)
#define HOUR INT64_C(3600000)

static bool want_payments = true, want_calls = true, want_app = true, want_profiles = true;
static const char *prefix = "";
static int64_t seq;

/* A daytime instant on day d after start (09:00-20:00 at UTC+8 = 01:00-12:00 UTC). */
static int64_t daytime(int64_t start_day_ms, int64_t d) { return start_day_ms + d * DAY + HOUR + range(0, 11 * HOUR - 1); }

static void payment(const char *cust, int64_t ts, double amount, const char *kind, bool late, double balance, const char *channel) {
    int64_t id = seq++;
    if (!want_payments) return;
    printf("%spayments|%s|{\"event_id\":\"%s-p%" PRId64 "\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%" PRId64
           ",\"amount\":%.2f,\"channel\":\"%s\",\"kind\":\"%s\",\"late\":%s,\"balance_after\":%.2f}\n",
           prefix, cust, cust, id, cust, ts, amount, channel, kind, late ? "true" : "false", balance);
}

/* Random draws happen before the topic filter, so that selecting topics
 * never changes the events of the others. */
static void call(const char *cust, int64_t ts, const char *reason) {
    int64_t duration = range(30, 600), id = seq++;
    if (!want_calls) return;
    printf("%scalls|%s|{\"event_id\":\"%s-c%" PRId64 "\",\"type\":\"call\",\"customer_id\":\"%s\",\"ts\":%" PRId64
           ",\"reason\":\"%s\",\"duration_s\":%" PRId64 ",\"direction\":\"inbound\"}\n",
           prefix, cust, cust, id, cust, ts, reason, duration);
}

static void login(const char *cust, int64_t ts, const char *page) {
    int64_t session = range(10, 900), id = seq++;
    if (!want_app) return;
    printf("%sapp-logins|%s|{\"event_id\":\"%s-a%" PRId64 "\",\"type\":\"app_login\",\"customer_id\":\"%s\",\"ts\":%" PRId64
           ",\"pages\":[\"home\"%s%s%s],\"session_s\":%" PRId64 "}\n",
           prefix, cust, cust, id, cust, ts, page ? ",\"" : "", page ? page : "", page ? "\"" : "", session);
}

int main(int argc, char **argv) {
    long customers = 100;
    uint64_t seed = 1;
    int64_t start = INT64_C(1767225600000); /* 2026-01-01T00:00:00Z */
    int days = 180;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--customers") && i + 1 < argc) customers = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--start") && i + 1 < argc) start = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc) prefix = argv[++i];
        else if (!strcmp(argv[i], "--topics") && i + 1 < argc) {
            const char *t = argv[++i];
            want_payments = strstr(t, "payments") != NULL;
            want_calls = strstr(t, "calls") != NULL;
            want_app = strstr(t, "app-logins") != NULL;
            want_profiles = strstr(t, "customer-profiles") != NULL;
        } else {
            fprintf(stderr, "usage: gen_events --customers N [--seed S] [--start EPOCH_MS] [--days D] [--topics LIST] [--prefix P]\n");
            return 2;
        }
    }
    if (customers < 1 || days < 30 || seed == 0) {
        fprintf(stderr, "gen_events: need --customers >= 1, --days >= 30, --seed >= 1\n");
        return 2;
    }
    rng_state = seed * 0x9E3779B97F4A7C15ULL;
    start -= start % DAY;
    static const char *const types[] = {"resident", "resident", "resident", "commercial"};
    static const char *const provinces[] = {"Tianjin", "Hebei", "Shandong", "Beijing"};
    static const char *const sources[] = {"app", "counter", "wechat", "call_center"};
    static const char *const segments[] = {"revolver", "transactor", "new"};
    for (long c = 0; c < customers; c++) {
        char cust[32];
        snprintf(cust, sizeof(cust), "c%06ld", c);
        const char *type = types[rnd() % 4], *province = provinces[rnd() % 4], *source = sources[rnd() % 4],
                   *segment = segments[rnd() % 3];
        if (want_profiles)
            printf("%scustomer-profiles|%s|{\"customer_type\":\"%s\",\"province\":\"%s\",\"source_channel\":\"%s\",\"segment\":\"%s\"}\n",
                   prefix, cust, type, province, source, segment);
        int story = (int)(rnd() % 4);
        double balance = 150 + unif() * 300;
        /* A monthly bill cycle for everyone. */
        for (int d = (int)range(0, 29); d < days; d += 30) {
            bool late = story == 0 ? unif() < 0.8 : unif() < 0.1;
            balance = story == 0 ? 20 + unif() * 150 : 150 + unif() * 400;
            payment(cust, daytime(start, d), 60 + unif() * 240, "bill", late, balance, unif() < 0.5 ? "app" : "bank");
            if (story == 0 && unif() < 0.3) call(cust, daytime(start, d) + HOUR, "bill_inquiry");
        }
        if (story == 1) { /* looks at the prepaid product in bursts; a third buy it soon after one */
            for (int b = 0; b < 3; b++) {
                int d0 = (int)range(0, days - 14);
                for (int k = 0; k < (int)range(2, 6); k++) login(cust, daytime(start, d0 + k), "prepay_product");
                if (unif() < 0.12) payment(cust, daytime(start, d0 + 8), 500, "prepay", false, balance + 500, "app");
            }
        } else if (story == 2) { /* instalment shopper */
            int d0 = (int)range(0, days - 10);
            for (int k = 0; k < (int)range(2, 5); k++) login(cust, daytime(start, d0 + k), "instalment_product");
            if (unif() < 0.5) call(cust, daytime(start, d0 + 2), "instalment_inquiry");
        }
        for (int k = 0; k < (int)range(0, 6); k++) login(cust, daytime(start, range(0, days - 1)), NULL);
        if (unif() < 0.05) payment(cust, daytime(start, range(0, days - 1)), 300, "arrears_restore", true, 10, "counter");
    }
    return 0;
}
