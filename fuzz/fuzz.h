/* fuzz.h: what every fuzz target shares. FUZZ_ASSERT aborts on a broken
 * invariant (libFuzzer keeps the input as a crash); it stays on in release
 * builds, unlike assert(). */
#ifndef MOMENTD_FUZZ_H
#define MOMENTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "momentd/event.h"

/* The parser the event and outcome targets share, with the daemon's default
 * limits; created once (libFuzzer calls the target millions of times). */
static inline md_event_parser *fuzz_parser(void) {
    static md_event_parser *p;
    if (!p) {
        md_event_limits lim = {65536, 300000, 64, 16};
        p = md_event_parser_new(&lim);
        FUZZ_ASSERT(p);
    }
    return p;
}

/* The first input byte picks the key check: none, the right key, a wrong one. */
static inline const char *fuzz_key(const uint8_t *data) {
    int mode = data[0] % 3;
    return mode == 0 ? NULL : mode == 1 ? "c-1" : "someone-else";
}

#endif
