/* test_event.c: docs/SPEC.md section 2 parsing: every accepted form, every rejection reason. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "momentd/event.h"

static md_event_parser *P;
static const int64_t NOW = INT64_C(1772416800000); /* 2026-03-02T02:00:00Z */

static void setup(void) {
    md_event_limits lim = {1024, 300000, 4, 5};
    P = md_event_parser_new(&lim);
}
static void teardown(void) { md_event_parser_destroy(P); }

TestSuite(event, .init = setup, .fini = teardown);

static md_reject parse(const char *json, md_event *ev) {
    md_parse_result res;
    md_event_parse(P, json, strlen(json), NULL, 0, NOW, ev, &res);
    return res.reason;
}

static md_reject parse_key(const char *json, const char *key, md_event *ev) {
    md_parse_result res;
    md_event_parse(P, json, strlen(json), key, strlen(key), NOW, ev, &res);
    return res.reason;
}

#define PAY "\"event_id\":\"e1\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":\"2026-03-01T08:00:00Z\""

Test(event, payment_all_fields) {
    md_event ev;
    cr_assert_eq(parse("{" PAY ",\"amount\":120.5,\"channel\":\"app\",\"kind\":\"bill\",\"late\":true,\"balance_after\":-12.25}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(ev.type, MD_EVENT_PAYMENT);
    cr_assert_str_eq(ev.event_id, "e1");
    cr_assert_str_eq(ev.customer_id, "c1");
    cr_assert_eq(ev.ts_ms, INT64_C(1772352000000));
    cr_assert_float_eq(ev.amount, 120.5, 1e-9);
    cr_assert_str_eq(ev.channel, "app");
    cr_assert_str_eq(ev.kind, "bill");
    cr_assert(ev.late);
    cr_assert(ev.has_balance_after);
    cr_assert_float_eq(ev.balance_after, -12.25, 1e-9);
}

Test(event, payment_optional_fields_absent_or_null) {
    md_event ev;
    cr_assert_eq(parse("{" PAY ",\"amount\":0,\"kind\":\"prepay\",\"balance_after\":null}", &ev), MD_REJECT_NONE);
    cr_assert_not(ev.late);
    cr_assert_not(ev.has_balance_after);
    cr_assert_str_eq(ev.channel, "");
}

Test(event, call_and_app_login) {
    md_event ev;
    cr_assert_eq(parse("{\"event_id\":\"e2\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,"
                       "\"reason\":\"bill_inquiry\",\"duration_s\":95,\"direction\":\"inbound\"}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(ev.type, MD_EVENT_CALL);
    cr_assert(ev.inbound);
    cr_assert_eq(ev.duration_s, 95);
    cr_assert_eq(ev.ts_ms, INT64_C(1772352000000));
    cr_assert_eq(parse("{\"event_id\":\"e3\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,"
                       "\"pages\":[\"home\",\"prepay_product\"],\"session_s\":40}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(ev.type, MD_EVENT_APP_LOGIN);
    cr_assert_eq(ev.n_pages, 2);
    cr_assert_str_eq(ev.pages[1], "prepay_product");
    cr_assert_eq(ev.session_s, 40);
    cr_assert_eq(parse("{\"event_id\":\"e4\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"pages\":[]}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(ev.n_pages, 0);
}

Test(event, rfc3339_forms) {
    int64_t t;
    cr_assert(md_parse_rfc3339("2026-03-01T08:00:00Z", 20, &t));
    cr_assert_eq(t, INT64_C(1772352000000));
    cr_assert(md_parse_rfc3339("2026-03-01T16:00:00+08:00", 25, &t));
    cr_assert_eq(t, INT64_C(1772352000000), "offsets are subtracted");
    cr_assert(md_parse_rfc3339("2026-03-01T03:30:00-04:30", 25, &t));
    cr_assert_eq(t, INT64_C(1772352000000));
    cr_assert(md_parse_rfc3339("2026-03-01t08:00:00.125z", 24, &t));
    cr_assert_eq(t, INT64_C(1772352000125), "fraction and lower-case separators");
    cr_assert(md_parse_rfc3339("2024-02-29T00:00:00Z", 20, &t), "leap day");
    cr_assert_not(md_parse_rfc3339("2026-02-29T00:00:00Z", 20, &t), "not a leap year");
    cr_assert_not(md_parse_rfc3339("2026-13-01T00:00:00Z", 20, &t));
    cr_assert_not(md_parse_rfc3339("2026-03-01T24:00:00Z", 20, &t));
    cr_assert_not(md_parse_rfc3339("2026-03-01T08:00:00", 19, &t), "zone required");
    cr_assert_not(md_parse_rfc3339("2026-03-01 08:00:00+0800", 24, &t));
}

Test(event, rejections_each_reason) {
    md_event ev;
    struct {
        const char *json;
        md_reject want;
    } cases[] = {
        {"{\"event_id\":", MD_REJECT_NOT_JSON},
        {"", MD_REJECT_NOT_JSON},
        {"{" PAY ",\"amount\":1,\"kind\":\"bill\"} trailing", MD_REJECT_NOT_JSON},
        {"{" PAY ",\"amount\":NaN,\"kind\":\"bill\"}", MD_REJECT_NOT_JSON},
        {"{\"event_id\":\"e\xff\",\"type\":\"payment\"}", MD_REJECT_NOT_JSON},
        {"[1,2]", MD_REJECT_NOT_OBJECT},
        {"\"payment\"", MD_REJECT_NOT_OBJECT},
        {"{" PAY ",\"amount\":1,\"kind\":\"bill\",\"x\":[[[[[1]]]]]}", MD_REJECT_TOO_DEEP},
        {"{\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_MISSING_FIELD},
        {"{" PAY ",\"kind\":\"bill\"}", MD_REJECT_MISSING_FIELD},
        {"{" PAY ",\"amount\":\"12\",\"kind\":\"bill\"}", MD_REJECT_WRONG_TYPE},
        {"{" PAY ",\"amount\":1,\"kind\":\"bill\",\"late\":\"yes\"}", MD_REJECT_WRONG_TYPE},
        {"{\"event_id\":7,\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_WRONG_TYPE},
        {"{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"inbound\",\"duration_s\":1.5}", MD_REJECT_WRONG_TYPE},
        {"{" PAY ",\"amount\":1,\"amount\":2,\"kind\":\"bill\"}", MD_REJECT_DUPLICATE_FIELD},
        {"{\"event_id\":\"e\",\"type\":\"refund\",\"customer_id\":\"c1\",\"ts\":1772352000000}", MD_REJECT_UNKNOWN_TYPE},
        {"{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"sideways\"}", MD_REJECT_BAD_VALUE},
        {"{" PAY ",\"amount\":1e999,\"kind\":\"bill\"}", MD_REJECT_BAD_NUMBER},
        {"{" PAY ",\"amount\":-5,\"kind\":\"bill\"}", MD_REJECT_BAD_NUMBER},
        {"{" PAY ",\"amount\":1,\"kind\":\"bill\",\"balance_after\":-1e12}", MD_REJECT_BAD_NUMBER},
        {"{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"inbound\",\"duration_s\":99999999999999999999}", MD_REJECT_BAD_NUMBER},
        {"{" PAY ",\"amount\":1,\"kind\":\"" "0123456789012345678901234567890123456789012345678901234567890123456789" "\"}", MD_REJECT_STRING_TOO_LONG},
        {"{\"event_id\":\"\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_EMPTY_STRING},
        {"{\"event_id\":\"e\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"pages\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", MD_REJECT_TOO_MANY_ITEMS},
        {"{\"event_id\":\"e\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"pages\":[\"a\",3]}", MD_REJECT_WRONG_TYPE},
        {"{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":\"yesterday\",\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_BAD_TIMESTAMP},
        {"{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":\"1970-01-01T00:00:00Z\",\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_BAD_TIMESTAMP},
        {"{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":\"2100-01-01T00:00:00Z\",\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_FUTURE_TIMESTAMP},
        {"{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":true,\"amount\":1,\"kind\":\"bill\"}", MD_REJECT_WRONG_TYPE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_reject got = parse(cases[i].json, &ev);
        cr_expect_eq(got, cases[i].want, "case %zu: want %s, got %s for %s", i, md_reject_code(cases[i].want),
                     md_reject_code(got), cases[i].json);
    }
}

Test(event, future_skew_is_configurable) {
    md_event ev;
    /* 4 minutes ahead is inside the 300 s limit, 6 minutes is not. */
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772417040000,\"amount\":1,\"kind\":\"bill\"}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772417160000,\"amount\":1,\"kind\":\"bill\"}", &ev),
                 MD_REJECT_FUTURE_TIMESTAMP);
}

Test(event, too_large) {
    char big[2048];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{}", 2);
    md_event ev;
    md_parse_result res;
    md_event_parse(P, big, sizeof(big), NULL, 0, NOW, &ev, &res);
    cr_assert_eq(res.reason, MD_REJECT_TOO_LARGE);
    cr_assert(strstr(res.detail, "2048") != NULL, "detail names the size: %s", res.detail);
}

Test(event, key_must_match_customer_id) {
    md_event ev;
    const char *json = "{" PAY ",\"amount\":1,\"kind\":\"bill\"}";
    cr_assert_eq(parse_key(json, "c1", &ev), MD_REJECT_NONE);
    cr_assert_eq(parse_key(json, "c2", &ev), MD_REJECT_KEY_MISMATCH);
    cr_assert_eq(parse_key(json, "", &ev), MD_REJECT_KEY_MISMATCH);
}

Test(event, unknown_fields_ignored_even_nested) {
    md_event ev;
    cr_assert_eq(parse("{\"extra\":{\"a\":[1,{\"b\":null}]}," PAY ",\"amount\":1,\"kind\":\"bill\",\"more\":\"x\"}", &ev), MD_REJECT_NONE);
    cr_assert_str_eq(ev.kind, "bill");
}

Test(event, not_nul_terminated_input) {
    /* Kafka payloads end without a NUL: parse exactly len bytes. */
    const char *json = "{" PAY ",\"amount\":1,\"kind\":\"bill\"}GARBAGE";
    size_t len = strlen(json) - strlen("GARBAGE");
    md_event ev;
    md_parse_result res;
    cr_assert_eq(md_event_parse(P, json, len, NULL, 0, NOW, &ev, &res), MD_ERR_OK, "%s", res.detail);
}

Test(event, reason_codes_are_stable) {
    cr_assert_str_eq(md_reject_code(MD_REJECT_NOT_JSON), "not_json");
    cr_assert_str_eq(md_reject_code(MD_REJECT_FUTURE_TIMESTAMP), "future_timestamp");
    for (int r = 0; r < MD_REJECT_COUNT; r++) cr_assert(strlen(md_reject_text((md_reject)r)) > 0);
}

/* "\u0000" is valid JSON but would cut a C string short: "c\u0000x" must not
 * become customer "c" (a regression found by fuzz/fuzz_event.c). */
Test(event, nul_characters_are_rejected) {
    md_event ev;
    const char *cases[] = {
        "{\"event_id\":\"e1\",\"type\":\"payment\",\"customer_id\":\"c\\u0000x\",\"ts\":\"2026-03-01T08:00:00Z\",\"amount\":1,\"kind\":\"bill\"}",
        "{\"event_id\":\"\\u0000\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":\"2026-03-01T08:00:00Z\",\"amount\":1,\"kind\":\"bill\"}",
        "{\"event_id\":\"e1\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":\"2026-03-01T08:00:00Z\",\"pages\":[\"a\\u0000\"]}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(parse(cases[i], &ev), MD_REJECT_BAD_VALUE, "case %zu", i);
    md_parse_result res;
    md_event_parse(P, cases[0], strlen(cases[0]), NULL, 0, NOW, &ev, &res);
    cr_assert_not_null(strstr(res.detail, "'customer_id' contains a NUL character"), "%s", res.detail);
}

Test(event, nul_in_type_is_rejected_not_read_uninitialised) {
    md_event ev;
    cr_assert_eq(parse("{\"event_id\":\"e1\",\"type\":\"pay\\u0000ment\",\"customer_id\":\"c1\",\"ts\":\"2026-03-01T08:00:00Z\"}", &ev),
                 MD_REJECT_BAD_VALUE);
}

/* Every input limit is exact: the limit itself is accepted, one more is
 * refused with its reason (this suite's parser: 1024 bytes, 4 pages, depth
 * 5; the compiled-in string limits). */
static md_reject parse_with_string(const char *field, size_t n, md_event *ev) {
    char s[300], json[1024];
    memset(s, 'x', n);
    s[n] = '\0';
    if (strcmp(field, "event_id") == 0)
        snprintf(json, sizeof(json), "{\"event_id\":\"%s\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", s);
    else if (strcmp(field, "customer_id") == 0)
        snprintf(json, sizeof(json), "{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", s);
    else
        snprintf(json, sizeof(json), "{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"%s\"}", s);
    return parse(json, ev);
}

Test(event, limits_are_exact_at_their_edges) {
    md_event ev;
    cr_assert_eq(parse_with_string("event_id", MD_EVENT_ID_MAX, &ev), MD_REJECT_NONE, "event_id of %d bytes", MD_EVENT_ID_MAX);
    cr_assert_eq(parse_with_string("event_id", MD_EVENT_ID_MAX + 1, &ev), MD_REJECT_STRING_TOO_LONG);
    cr_assert_eq(parse_with_string("customer_id", MD_CUSTOMER_ID_MAX, &ev), MD_REJECT_NONE, "customer_id of %d bytes", MD_CUSTOMER_ID_MAX);
    cr_assert_eq(parse_with_string("customer_id", MD_CUSTOMER_ID_MAX + 1, &ev), MD_REJECT_STRING_TOO_LONG);
    cr_assert_eq(parse_with_string("kind", 64, &ev), MD_REJECT_NONE, "kind of 64 bytes");
    cr_assert_eq(parse_with_string("kind", 65, &ev), MD_REJECT_STRING_TOO_LONG);
    /* 4 pages, then 5. */
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"pages\":[\"a\",\"b\",\"c\",\"d\"]}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"app_login\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"pages\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", &ev),
                 MD_REJECT_TOO_MANY_ITEMS);
    /* Depth 5 (the object and four arrays), then 6. */
    cr_assert_eq(parse("{" PAY ",\"amount\":1,\"kind\":\"bill\",\"x\":[[[[1]]]]}", &ev), MD_REJECT_NONE);
    cr_assert_eq(parse("{" PAY ",\"amount\":1,\"kind\":\"bill\",\"x\":[[[[[1]]]]]}", &ev), MD_REJECT_TOO_DEEP);
    /* 1024 bytes, then 1025: a valid event padded with spaces. */
    char buf[1100];
    const char *base = "{" PAY ",\"amount\":1,\"kind\":\"bill\"}";
    size_t bl = strlen(base);
    memcpy(buf, base, bl);
    memset(buf + bl, ' ', sizeof(buf) - bl);
    md_parse_result res;
    md_event_parse(P, buf, 1024, NULL, 0, NOW, &ev, &res);
    cr_assert_eq(res.reason, MD_REJECT_NONE, "1024 bytes: %s", res.detail);
    md_event_parse(P, buf, 1025, NULL, 0, NOW, &ev, &res);
    cr_assert_eq(res.reason, MD_REJECT_TOO_LARGE);
    /* A call of a day, then a second more. */
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"inbound\",\"duration_s\":86400}", &ev),
                 MD_REJECT_NONE);
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"inbound\",\"duration_s\":86401}", &ev),
                 MD_REJECT_BAD_NUMBER);
    /* Integers read without strtoll (md_parse_i64: at most 19 digits, within
     * int64) and with it (past that): the same values and the same refusals
     * either side of that length. */
    static const struct {
        const char *duration;
        md_reject want;
        int64_t value;
    } durations[] = {
        {"0", MD_REJECT_NONE, 0},
        {"-0", MD_REJECT_NONE, 0},
        {"-1", MD_REJECT_BAD_NUMBER, 0},
        {"-86400", MD_REJECT_BAD_NUMBER, 0},
        {"000000000000086400", MD_REJECT_NOT_JSON, 0}, /* JSON has no leading zeros */
        {"86400", MD_REJECT_NONE, 86400},
        {"999999999999999999", MD_REJECT_BAD_NUMBER, 0},       /* 18 digits */
        {"9223372036854775807", MD_REJECT_BAD_NUMBER, 0},      /* 19, the largest int64 */
        {"-9223372036854775809", MD_REJECT_BAD_NUMBER, 0},     /* past it: strtoll's */
        {"8.64e4", MD_REJECT_WRONG_TYPE, 0},
        {"-5.0", MD_REJECT_WRONG_TYPE, 0},
    };
    char call[300];
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        snprintf(call, sizeof(call),
                 "{\"event_id\":\"e\",\"type\":\"call\",\"customer_id\":\"c1\",\"ts\":1772352000000,\"reason\":\"other\",\"direction\":\"inbound\",\"duration_s\":%s}",
                 durations[i].duration);
        cr_assert_eq(parse(call, &ev), durations[i].want, "duration_s %s: %s", durations[i].duration, md_reject_code(parse(call, &ev)));
        if (durations[i].want == MD_REJECT_NONE) cr_assert_eq(ev.duration_s, durations[i].value, "duration_s %s", durations[i].duration);
    }
    /* A time in ms before 1970 is no time of this millennium. */
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":-1772352000000,\"amount\":1,\"kind\":\"bill\"}", &ev),
                 MD_REJECT_BAD_TIMESTAMP);
    /* 300 s ahead of the clock, then a millisecond more. */
    char json[256];
    snprintf(json, sizeof(json), "{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":%lld,\"amount\":1,\"kind\":\"bill\"}",
             (long long)(NOW + 300000));
    cr_assert_eq(parse(json, &ev), MD_REJECT_NONE);
    snprintf(json, sizeof(json), "{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"c1\",\"ts\":%lld,\"amount\":1,\"kind\":\"bill\"}",
             (long long)(NOW + 300001));
    cr_assert_eq(parse(json, &ev), MD_REJECT_FUTURE_TIMESTAMP);
}

/* Regression: ids were checked for length and NUL only, and name Redis keys:
 * customer "cp:13800000000" wrote into that phone's contact-point hash, and
 * an id with a brace would move a customer's keys to other cluster slots. */
Test(event, ids_that_would_break_keys_are_refused) {
    md_event ev;
    static const char *const bad[] = {"c{1", "c}1", "}c", "c*", "c?", "c\\u0001", "c\\u007f", "cp:13800000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json), "{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}",
                 bad[i]);
        cr_expect_eq(parse(json, &ev), MD_REJECT_BAD_VALUE, "customer_id %s", bad[i]);
    }
    cr_assert_eq(parse("{\"event_id\":\"e\",\"type\":\"payment\",\"customer_id\":\"acct:cp-1.2_x@y\",\"ts\":1772352000000,\"amount\":1,\"kind\":\"bill\"}", &ev),
                 MD_REJECT_NONE, "other punctuation is fine");
    char why[160];
    cr_assert_not(md_id_check("a}b", 3, why, sizeof(why)));
    cr_assert(strstr(why, "'}'") != NULL, "%s", why);
}

/* The consumer orders its topics by the time md_event_peek_time reads; it
 * must be the time md_event_parse accepts, and nothing where there is none. */
static bool peek(const char *json, int64_t *ts) { return md_event_peek_time(json, strlen(json), ts); }

Test(event, peek_time_reads_the_top_level_ts) {
    int64_t ts = 0;
    md_event ev;
    const char *pay = "{" PAY ",\"amount\":1,\"kind\":\"bill\"}";
    cr_assert(peek(pay, &ts));
    cr_assert_eq(parse(pay, &ev), MD_REJECT_NONE);
    cr_assert_eq(ts, ev.ts_ms);
    cr_assert(peek("{\"ts\":1772352000000,\"anything\":[}", &ts), "the rest of the message is not read");
    cr_assert_eq(ts, INT64_C(1772352000000));
    cr_assert(peek("{\"x\":{\"ts\":5},\"pages\":[\"ts\"],\"ts\":\"2026-03-01T08:00:00+08:00\"}", &ts), "only the top level's ts counts");
    cr_assert_eq(ts, INT64_C(1772323200000));
    /* No time: absent, nested only, of the wrong type, out of range, not JSON, beyond the prefix read. */
    cr_assert_not(peek("{\"event_id\":\"e1\"}", &ts));
    cr_assert_not(peek("{\"x\":{\"ts\":1772352000000}}", &ts));
    cr_assert_not(peek("{\"ts\":{\"ms\":1772352000000}}", &ts));
    cr_assert_not(peek("{\"ts\":1772352000000.5}", &ts));
    cr_assert_not(peek("{\"ts\":true}", &ts));
    cr_assert_not(peek("{\"ts\":\"yesterday\"}", &ts));
    cr_assert_not(peek("{\"ts\":12}", &ts), "before 2000");
    cr_assert_not(peek("{\"ts\":99999999999999999999}", &ts));
    cr_assert_not(peek("[\"ts\",1772352000000]", &ts));
    cr_assert_not(peek("not json", &ts));
    cr_assert_not(peek("", &ts));
    char big[MD_PEEK_TIME_BYTES + 64];
    int n = snprintf(big, sizeof(big), "{\"pad\":\"%*s\",\"ts\":1772352000000}", MD_PEEK_TIME_BYTES, "");
    cr_assert_gt(n, MD_PEEK_TIME_BYTES);
    cr_assert_not(md_event_peek_time(big, (size_t)n, &ts), "a ts beyond the first bytes is not looked for");
    /* A ts cut by the prefix read is no time (yajl, reading a prefix, does
     * not give a number that touches its end): not the first 13 digits of
     * a longer one, read as a time of 1970. */
    n = snprintf(big, sizeof(big), "{\"pad\":\"%*s\",\"ts\":17723520000001234}", MD_PEEK_TIME_BYTES - 28, "");
    cr_assert_eq(memcmp(big + MD_PEEK_TIME_BYTES - 13, "1772352000000", 13), 0);
    cr_assert_not(md_event_peek_time(big, (size_t)n, &ts), "a ts cut at the prefix's end");
}

/* yajl's allocations come from the parser's arena, let go at each parse:
 * a message whose buffers outgrow the arena (a long escaped string, a deep
 * stack of unknown nesting) is parsed as right as a small one, the parser
 * stays right for the messages after it, bad ones included, and nothing is
 * leaked (ASan). */
Test(event, yajl_allocations_past_the_arena_and_back) {
    md_event_limits lim = {1 << 20, 300000, 4, 200};
    md_event_parser *p = md_event_parser_new(&lim);
    size_t n = 200000;
    char *big = malloc(n + 512), *w = big;
    w += sprintf(w, "{" PAY ",\"amount\":5,\"note\":\"");
    for (size_t i = 0; w - big < (ptrdiff_t)n; i++) w += sprintf(w, i % 2 ? "\\u00e9x" : "\\\"y"); /* escapes: yajl decodes into a buffer */
    w += sprintf(w, "\",\"deep\":");
    for (int i = 0; i < 150; i++) *w++ = '[';
    for (int i = 0; i < 150; i++) *w++ = ']';
    w += sprintf(w, ",\"kind\":\"bill\"}");
    const char *small = "{" PAY ",\"amount\":7.5,\"kind\":\"bill\"}";
    const char *broken = "{" PAY ",\"amount\":7.5,\"kind\":";
    for (int round = 0; round < 3; round++) {
        md_event ev;
        md_parse_result res;
        cr_assert_eq(md_event_parse(p, big, (size_t)(w - big), NULL, 0, NOW, &ev, &res), MD_ERR_OK, "round %d: %s", round, res.detail);
        cr_assert_float_eq(ev.amount, 5, 1e-9);
        cr_assert_str_eq(ev.kind, "bill");
        cr_assert_eq(md_event_parse(p, small, strlen(small), NULL, 0, NOW, &ev, &res), MD_ERR_OK);
        cr_assert_float_eq(ev.amount, 7.5, 1e-9);
        cr_assert_neq(md_event_parse(p, broken, strlen(broken), NULL, 0, NOW, &ev, &res), MD_ERR_OK);
        cr_assert_eq(res.reason, MD_REJECT_NOT_JSON, "round %d: %s", round, res.detail);
        cr_assert(strstr(res.detail, "premature EOF") != NULL, "yajl's message comes through: %s", res.detail);
    }
    free(big);
    md_event_parser_destroy(p);
}
