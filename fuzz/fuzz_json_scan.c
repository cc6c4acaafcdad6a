/* fuzz_json_scan.c: libFuzzer target comparing md_json_scan with yajl.
 *
 * Both read the same text with the same recording callbacks. Whenever the
 * scanner is sure (DONE or STOPPED), yajl must end the same way (ok, or
 * cancelled by the callback) after the very same calls with the very same
 * arguments: the fast path may leave a text to yajl, never read it
 * otherwise. The first input byte says at which call the callbacks stop
 * the parse (0: never), so stopping is compared too, read as a prefix. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "fuzz.h"
#include "json_scan.h"

/* A trace: its calls, counted and hashed (kind, then each argument's
 * length and bytes), and the call at which it answers 0. */
typedef struct trace {
    uint64_t hash;
    long calls, stop_at;
} trace;

static void mix(trace *t, const void *bytes, size_t n) {
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) t->hash = (t->hash ^ b[i]) * 0x100000001b3ULL;
}

static int record(trace *t, char kind, const void *s, size_t len) {
    mix(t, &kind, 1);
    mix(t, &len, sizeof(len));
    if (s) mix(t, s, len);
    return ++t->calls != t->stop_at;
}

static int on_null(void *c) { return record(c, 'n', NULL, 0); }
static int on_boolean(void *c, int v) { return record(c, v ? 't' : 'f', NULL, 0); }
static int on_number(void *c, const char *s, size_t n) { return record(c, '#', s, n); }
static int on_string(void *c, const unsigned char *s, size_t n) { return record(c, '"', s, n); }
static int on_key(void *c, const unsigned char *s, size_t n) { return record(c, ':', s, n); }
static int on_start_map(void *c) { return record(c, '{', NULL, 0); }
static int on_end_map(void *c) { return record(c, '}', NULL, 0); }
static int on_start_array(void *c) { return record(c, '[', NULL, 0); }
static int on_end_array(void *c) { return record(c, ']', NULL, 0); }

static const yajl_callbacks recorders = {on_null,  on_boolean,   NULL,           NULL,        on_number, on_string,
                                         on_start_map, on_key, on_end_map, on_start_array, on_end_array};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    long stop_at = data[0] ? (long)data[0] : -1;
    trace fast = {0xcbf29ce484222325ULL, 0, stop_at}, slow = fast;
    md_json_scan_result r = md_json_scan(&recorders, &fast, buf, len);
    FUZZ_ASSERT(r == MD_JSON_SCAN_DONE || r == MD_JSON_SCAN_STOPPED || r == MD_JSON_SCAN_UNSURE);
    if (r == MD_JSON_SCAN_UNSURE) return 0;
    yajl_handle h = yajl_alloc(&recorders, NULL, &slow);
    FUZZ_ASSERT(h);
    /* A stop must come within yajl_parse, before the completion: the scan
     * gives no call for a token that touches the end of the text, so a
     * prefix (the event-time peek reads one) stops where yajl's does. */
    yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
    if (st == yajl_status_ok && r == MD_JSON_SCAN_DONE) st = yajl_complete_parse(h);
    yajl_free(h);
    FUZZ_ASSERT(st == (r == MD_JSON_SCAN_DONE ? yajl_status_ok : yajl_status_client_canceled));
    FUZZ_ASSERT(fast.calls == slow.calls);
    FUZZ_ASSERT(fast.hash == slow.hash);
    return 0;
}
