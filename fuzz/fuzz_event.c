/* fuzz_event.c: libFuzzer target for the event parser (md_event_parse).
 *
 * Beyond "does not crash": a parsed event must satisfy what the engine
 * relies on, and a rejection must carry a reason and a terminated detail.
 * The first input byte picks the key mode (none, matching, mismatching), so
 * the key check is fuzzed too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "momentd/event.h"

#define NOW_MS INT64_C(1772416800000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    md_event_parser *p = fuzz_parser();
    if (size < 1) return 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    md_event ev;
    md_parse_result res;
    const char *key = fuzz_key(data);
    md_err e = md_event_parse(p, buf, len, key, key ? strlen(key) : 0, NOW_MS, &ev, &res);
    if (e == MD_ERR_OK) {
        FUZZ_ASSERT(res.reason == MD_REJECT_NONE);
        FUZZ_ASSERT(memchr(ev.customer_id, '\0', sizeof(ev.customer_id)) != NULL);
        FUZZ_ASSERT(ev.customer_id[0] != '\0');
        FUZZ_ASSERT(memchr(ev.event_id, '\0', sizeof(ev.event_id)) != NULL);
        FUZZ_ASSERT(ev.type == MD_EVENT_PAYMENT || ev.type == MD_EVENT_CALL || ev.type == MD_EVENT_APP_LOGIN);
        FUZZ_ASSERT(ev.ts_ms <= NOW_MS + 300000);
        if (key && key[0] == 'c') FUZZ_ASSERT(strcmp(ev.customer_id, "c-1") == 0);
    } else {
        FUZZ_ASSERT(e == MD_ERR_BAD_EVENT);
        FUZZ_ASSERT(res.reason != MD_REJECT_NONE && res.reason < MD_REJECT_COUNT);
        FUZZ_ASSERT(memchr(res.detail, '\0', sizeof(res.detail)) != NULL);
        FUZZ_ASSERT(md_reject_code(res.reason) != NULL);
    }
    return 0;
}
