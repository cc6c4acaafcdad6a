/* fnv_collide.c: finds two event ids that the event-id guard of momentd
 * before its key (md_hash64, FNV-1a with the seed 0x65766964 and a
 * bijective final mix) could not tell apart, to show why the guard is now
 * keyed (tests/unit/test_window.c keeps the pair this found).
 *
 *   fnv_collide [SEED]
 *
 * A distinguished-point search (van Oorschot and Wiener) over ids of 16 hex
 * digits: walk x -> FNV(hex(x)) until the value ends in 22 zero bits, keep
 * (start, end, length) per trail, and when two trails meet at one end, walk
 * both again to the step where they merge. About 2^32 evaluations, a few
 * minutes on one core; prints "ID_A ID_B HASH". Not part of the tests. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define DP_BITS 22
#define TABLE_SIZE (1u << 22)

static const uint64_t basis = 0xcbf29ce484222325ULL ^ 0x65766964ULL;

static void hex16(uint64_t x, char s[16]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        s[i] = digits[x & 15];
        x >>= 4;
    }
}

/* FNV-1a of the id; md_hash64's final mix is a bijection, so a collision
 * here is one of md_hash64. */
static uint64_t step(uint64_t x) {
    char s[16];
    hex16(x, s);
    uint64_t h = basis;
    for (int i = 0; i < 16; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

typedef struct trail {
    uint64_t end, start, len; /* len 0: empty slot */
} trail;

int main(int argc, char **argv) {
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (argc > 1 ? strtoull(argv[1], NULL, 10) : 1);
    trail *table = calloc(TABLE_SIZE, sizeof(*table));
    if (!table) return 1;
    const uint64_t dp_mask = (1ULL << DP_BITS) - 1, max_len = 1ULL << (DP_BITS + 4);
    for (;;) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t start = rng, x = start, len = 0;
        while ((x & dp_mask) != 0 && len <= max_len) x = step(x), len++;
        if (len > max_len || len == 0) continue; /* a cycle without an end, or a start that is one */
        uint32_t slot = (uint32_t)(x >> DP_BITS) & (TABLE_SIZE - 1);
        while (table[slot].len && table[slot].end != x) slot = (slot + 1) & (TABLE_SIZE - 1);
        if (!table[slot].len) {
            table[slot] = (trail){x, start, len};
            continue;
        }
        uint64_t a = table[slot].start, la = table[slot].len, b = start, lb = len;
        for (; la > lb; la--) a = step(a);
        for (; lb > la; lb--) b = step(b);
        if (a == b) continue; /* one trail ran into the other's start */
        while (step(a) != step(b)) a = step(a), b = step(b);
        char sa[17] = {0}, sb[17] = {0};
        hex16(a, sa);
        hex16(b, sb);
        printf("%s %s %016" PRIx64 "\n", sa, sb, step(a));
        free(table);
        return 0;
    }
}
