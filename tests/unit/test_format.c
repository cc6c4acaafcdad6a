/* test_format.c: the number and time writers that stand in for snprintf
 * on the per-event path (md_fmt_g6, md_format_time) must write exactly
 * what snprintf and gmtime write: the texts go into moments, decision
 * records and state, which other programs and older versions read. */
#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "momentd/engine.h"
#include "momentd/jsonw.h"

/* xorshift64*: the same values on every run. */
static uint64_t next_random(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int mismatches;

static void expect_g6(double v) {
    char want[64], got[32];
    memset(got, 'x', sizeof(got));
    snprintf(want, sizeof(want), "%.6g", v);
    size_t n = md_fmt_g6(got, v);
    if (n != strlen(want) || strcmp(got, want) != 0) {
        if (mismatches++ < 10) cr_log_error("md_fmt_g6(%a): \"%.*s\", snprintf \"%s\"", v, (int)sizeof(got) - 1, got, want);
    }
}

Test(format, g6_everyday_numbers) {
    static const double values[] = {0.0, -0.0, 1.0, -1.0, 0.5, 0.25, 0.1, 0.2, 0.3, 1.5, 2.5, 12.345, 100.0, 999999.0, 999999.4,
                                    999999.5, 999999.6, 1e6, 123456.7, 0.0001, 0.00012345, 0.000099999, 0.0000999999,
                                    0.00009999995, 0.00001, 9.999995, 9.9999949, 99.99995, 0.123456789, 3.14159265358979,
                                    1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e-300, 1e300, DBL_MIN, DBL_MAX,
                                    DBL_TRUE_MIN, 5e-324, 0.000123456, 0.0001234565, 1234565.0 / 10, 2.0000005, 7.0, 86400.0,
                                    1.0 / 3, 2.0 / 3, -123.456, -0.000123, 42.0, 19.99, 1999.99, 249.5, 0.07};
    mismatches = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        expect_g6(values[i]);
        expect_g6(-values[i]);
        expect_g6(nextafter(values[i], INFINITY));
        expect_g6(nextafter(values[i], -INFINITY));
    }
    cr_assert_eq(mismatches, 0, "%d numbers written differently from snprintf", mismatches);
}

Test(format, g6_not_numbers_and_limits) {
    mismatches = 0;
    expect_g6(INFINITY);
    expect_g6(-INFINITY);
    expect_g6(NAN);
    expect_g6(-NAN);
    cr_assert_eq(mismatches, 0);
    char out[16];
    cr_assert_eq(md_fmt_g6(out, -DBL_MIN), strlen("-2.22507e-308"), "the longest text, with snprintf's length");
    cr_assert_str_eq(out, "-2.22507e-308");
}

/* Decimals of 1 to 9 significant digits at every exponent where "%.6g"
 * writes no exponent and around its edges: the ties, the carries into the
 * next power of ten and the places the scaling is checked at. */
Test(format, g6_decimals_at_every_exponent) {
    mismatches = 0;
    uint64_t s = 88172645463325252u;
    for (int e = -8; e <= 8; e++)
        for (int digits = 1; digits <= 9; digits++)
            for (int i = 0; i < 4000; i++) {
                uint64_t lim = 1;
                for (int d = 0; d < digits; d++) lim *= 10;
                double m = (double)(next_random(&s) % lim);
                double v = m * pow(10.0, e - digits + 1);
                expect_g6(v);
                expect_g6(-v);
                expect_g6(nextafter(v, INFINITY));
                expect_g6(nextafter(v, 0));
            }
    cr_assert_eq(mismatches, 0, "%d numbers written differently from snprintf", mismatches);
}

/* Every kind of double: random bit patterns, and random magnitudes. */
Test(format, g6_random_doubles) {
    mismatches = 0;
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 1000000; i++) {
        uint64_t bits = next_random(&s);
        double v;
        memcpy(&v, &bits, sizeof(v));
        expect_g6(v);
        double u = (double)(next_random(&s) >> 11) / 9007199254740992.0; /* [0, 1) */
        expect_g6(ldexp(u, (int)(next_random(&s) % 80) - 40));
    }
    cr_assert_eq(mismatches, 0, "%d numbers written differently from snprintf", mismatches);
}

static void expect_time(int64_t ms) {
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char want[64], got[32];
    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(ms - secs * 1000) % 1000);
    md_format_time(ms, got);
    if (strcmp(got, want) != 0 && mismatches++ < 10) cr_log_error("md_format_time(%" PRId64 "): \"%s\", gmtime \"%s\"", ms, got, want);
}

Test(format, time_as_gmtime_writes_it) {
    mismatches = 0;
    static const int64_t edges[] = {0, -1, 1, 999, -999, -1000, -1001, 86399999, 86400000, 951782400000 /* 2000-02-29 */,
                                    4107542399999 /* 2100-02-28T23:59:59.999 */, 253402300799999 /* 9999-12-31 */,
                                    253402300800000, -62135596800000 /* 0001-01-01 */, -62135596800001,
                                    -62167219200000 /* 0000-01-01 */, -62167219200001};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) expect_time(edges[i]);
    uint64_t s = 0x2545f4914f6cdd1du;
    for (int i = 0; i < 300000; i++) {
        expect_time((int64_t)(next_random(&s) % UINT64_C(4102444800000))); /* 1970 to 2100 */
        expect_time((int64_t)(next_random(&s) % UINT64_C(600000000000000)) - INT64_C(300000000000000));
    }
    for (int64_t day = -800000; day < 800000; day += 7) expect_time(day * 86400000 + 86399999); /* every weekday's last ms */
    cr_assert_eq(mismatches, 0, "%d times written differently from gmtime", mismatches);
}

/* md_join cuts where snprintf("%s%s...") cuts, at every buffer size. */
Test(format, join_cuts_as_snprintf_does) {
    const char *parts[] = {"+m0123", "", ":", "arm.", "triggered"};
    for (size_t size = 1; size <= 32; size++) {
        char want[64], got[64];
        memset(got, 'x', sizeof(got));
        int n = snprintf(want, size, "%s%s%s%s%s", parts[0], parts[1], parts[2], parts[3], parts[4]);
        size_t len = md_join(got, size, parts, 5);
        cr_assert_str_eq(got, want, "size %zu", size);
        cr_assert_eq(len, (size_t)n < size ? (size_t)n : size - 1, "size %zu", size);
        cr_assert_eq(got[size], 'x', "size %zu: written past the buffer", size);
    }
    char one[8];
    cr_assert_eq(MD_JOIN(one, sizeof(one), "ab", "cd", "efgh"), 7);
    cr_assert_str_eq(one, "abcdefg");
}

static void expect_day(int64_t ms, int offset_min) {
    int y;
    unsigned m, d;
    md_civil_date(ms, offset_min, &y, &m, &d);
    char want[64], got[16];
    snprintf(want, sizeof(want), "%04d-%02u-%02u", y, m, d);
    md_format_day(ms, offset_min, got);
    if (strcmp(got, want) != 0 && mismatches++ < 10) cr_log_error("md_format_day(%" PRId64 ", %d): \"%s\", \"%s\"", ms, offset_min, got, want);
}

Test(format, day_as_snprintf_writes_it) {
    mismatches = 0;
    uint64_t s = 0x853c49e6748fea9bu;
    for (int i = 0; i < 200000; i++)
        expect_day((int64_t)(next_random(&s) % UINT64_C(253402300799999)), (int)(next_random(&s) % 1681) - 840);
    expect_day(0, -1); /* 1969-12-31 */
    expect_day(253402300799999, 0);
    cr_assert_eq(mismatches, 0, "%d days written differently", mismatches);
    char out[16];
    md_format_day(951782400000, 0, out);
    cr_assert_str_eq(out, "2000-02-29");
}

static void expect_f64(const char *text) {
    char *end;
    double want = strtod(text, &end), got = 0;
    bool whole = *text && *end == '\0';
    if (md_parse_f64(text, strlen(text), &got)) {
        /* sure of it: strtod must read all of it, to the same bits */
        if ((!whole || memcmp(&got, &want, sizeof(got)) != 0) && mismatches++ < 10)
            cr_log_error("md_parse_f64(\"%s\"): %a, strtod %a%s", text, got, want, whole ? "" : " (not all read)");
    }
}

/* md_parse_f64 reads what it reads exactly as strtod does, and reads the
 * plain decimals momentd meets (amounts, balances, profile numbers). */
Test(format, parse_f64_as_strtod_reads) {
    mismatches = 0;
    static const char *const texts[] = {"0", "-0", "0.0", "-0.0", "1", "-1", "12.5", "0.1", "0.3", "1234.56", "999999999999999",
                                        "1000000000000000", "0.0000000000000000000001", "0.00000000000000000000001", ".5", "-.5",
                                        "5.", "-", ".", "", "1e5", "+1", " 1", "1 ", "0x10", "1.2.3", "--1", "12a", "nan", "inf",
                                        "123456789012345.6", "12345678901234.5", "000000000000001", "9007199254740993", "0000000000000000000123.5", "-000.000000000000000000000"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) expect_f64(texts[i]);
    static const char *const plain[] = {"0", "-0", "12.5", "1234.56", "0.1", "999999999999999", "-.5", "0.0000000000000000000001"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        double v;
        cr_assert(md_parse_f64(plain[i], strlen(plain[i]), &v), "\"%s\" is read without strtod", plain[i]);
    }
    double v;
    cr_assert_not(md_parse_f64("5.", 2, &v));
    cr_assert_not(md_parse_f64("1e5", 3, &v));
    cr_assert_not(md_parse_f64("1000000000000000", 16, &v), "16 digits: strtod's");
    cr_assert_not(md_parse_f64("0.00000000000000000000001", 25, &v), "23 decimals: strtod's");
    uint64_t s = 0x6a09e667f3bcc909u;
    char text[64];
    for (int i = 0; i < 1000000; i++) {
        uint64_t r = next_random(&s);
        int digits = 1 + (int)(r % 25), point = (int)((r >> 8) % (digits + 2)) - 1; /* -1: none */
        size_t n = 0;
        if ((r >> 16) & 1) text[n++] = '-';
        for (int d = 0; d < digits; d++) {
            if (d == point) text[n++] = '.';
            text[n++] = (char)('0' + next_random(&s) % 10);
        }
        if (point == digits) text[n++] = '.';
        text[n] = '\0';
        expect_f64(text);
        if (((r >> 20) & 15) == 0) { /* and one byte changed */
            text[next_random(&s) % n] = " .-+e0x9"[next_random(&s) % 8];
            expect_f64(text);
        }
    }
    cr_assert_eq(mismatches, 0, "%d decimals read differently from strtod", mismatches);
}
