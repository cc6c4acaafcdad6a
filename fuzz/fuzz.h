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

#endif
