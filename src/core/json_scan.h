/* json_scan.h: a fast path in front of yajl's callback parser for the JSON
 * momentd reads on every message (events, outcomes, the event-time peek).
 *
 * yajl spent about 5,300 instructions on a 250-byte event (its lexer and
 * parser, with momentd's callbacks), an eighth of the whole per-event path
 * (bench/instructions, BENCHMARKS.md); this scan and the same callbacks
 * take about 2,300. Almost every message is one flat object of plain ASCII
 * keys and values. md_json_scan reads that subset itself and calls the same
 * yajl_callbacks, in the same order, with the same arguments, as yajl would;
 * for anything else it says so and the caller asks yajl, which stays the
 * one judge of what is JSON and the source of its error messages.
 *
 * The subset: one object at the top (whitespace around it: space, tab, CR,
 * LF); strings of the bytes 0x20-0x7e but for '"' and '\\' (so no escape
 * and no UTF-8, which yajl would check); numbers in JSON's grammar followed
 * by whitespace, ',', '}' or ']'; true, false and null followed by the
 * same; nested arrays and objects at most MD_JSON_SCAN_DEPTH deep. Pure: no
 * allocation, no I/O. */
#ifndef MOMENTD_JSON_SCAN_H
#define MOMENTD_JSON_SCAN_H

#include <stddef.h>
#include <yajl/yajl_parse.h>

#define MD_JSON_SCAN_DEPTH 64

typedef enum md_json_scan_result {
    /* buf is one JSON object in the subset; every callback was called as
     * yajl_parse and yajl_complete_parse would call them, and each
     * returned nonzero: yajl would report yajl_status_ok. */
    MD_JSON_SCAN_DONE,
    /* A callback returned 0; the calls before it and it are the ones yajl
     * makes up to that point: yajl would report yajl_status_client_canceled. */
    MD_JSON_SCAN_STOPPED,
    /* The text leaves the subset (or is not JSON, or ends early) before
     * either: the caller undoes what the callbacks did and asks yajl. */
    MD_JSON_SCAN_UNSURE,
} md_json_scan_result;

/* The callbacks used are yajl_null, yajl_boolean, yajl_number (called with
 * the number's text; yajl_integer and yajl_double must be NULL, or the
 * scan is UNSURE at the first number), yajl_string, yajl_start_map,
 * yajl_map_key, yajl_end_map, yajl_start_array, yajl_end_array; a NULL one
 * is skipped, as yajl skips it. */
md_json_scan_result md_json_scan(const yajl_callbacks *cb, void *ctx, const char *buf, size_t len);

#endif
