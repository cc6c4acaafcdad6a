/* fuzz_outcome.c: libFuzzer target for the outcome parser (md_outcome_parse),
 * with the same invariants as the event target. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "momentd/event.h"

#define NOW_MS INT64_C(1772416800000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    md_event_parser *p = fuzz_parser();
    if (size < 1) return 0;
    const char *key = fuzz_key(data);
    md_outcome oc;
    md_parse_result res;
    md_err e = md_outcome_parse(p, (const char *)data + 1, size - 1, key, key ? strlen(key) : 0, NOW_MS, &oc, &res);
    if (e == MD_ERR_OK) {
        FUZZ_ASSERT(res.reason == MD_REJECT_NONE);
        FUZZ_ASSERT(oc.status < MD_OUTCOME_STATUS_COUNT);
        FUZZ_ASSERT(md_outcome_status_name(oc.status) != NULL);
        FUZZ_ASSERT(memchr(oc.trigger_id, '\0', sizeof(oc.trigger_id)) && oc.trigger_id[0]);
        FUZZ_ASSERT(memchr(oc.customer_id, '\0', sizeof(oc.customer_id)) && oc.customer_id[0]);
        FUZZ_ASSERT(memchr(oc.campaign, '\0', sizeof(oc.campaign)) && memchr(oc.channel, '\0', sizeof(oc.channel)));
        FUZZ_ASSERT(!oc.has_duration || oc.duration_s >= 0);
        if (key && key[0] == 'c') FUZZ_ASSERT(strcmp(oc.customer_id, "c-1") == 0);
    } else {
        FUZZ_ASSERT(e == MD_ERR_BAD_EVENT);
        FUZZ_ASSERT(res.reason != MD_REJECT_NONE && res.reason < MD_REJECT_COUNT);
        FUZZ_ASSERT(memchr(res.detail, '\0', sizeof(res.detail)) != NULL);
    }
    return 0;
}
