/* fuzz_expr.c: libFuzzer target for the expression language: compile the
 * input against a fixed set of names, and when it compiles, evaluate it with
 * every kind of value (missing, numbers including NaN and infinities,
 * strings, lists). A compile error must be a terminated message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "momentd/expr.h"

static const char *const names[] = {"amount", "kind", "late", "pages", "balance", "score.x", "profile.segment", "n"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static int resolve(void *ctx, const char *name) {
    (void)ctx;
    for (size_t i = 0; i < N_NAMES; i++)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}

static const char pages[3][16] = {"home", "prepay_product", ""};

static md_value get(void *ctx, int slot) {
    int variant = *(int *)ctx;
    md_value v = {0};
    switch ((slot + variant) % 6) {
    case 0: break; /* missing */
    case 1: v.kind = MD_VAL_NUM; v.num = variant == 1 ? NAN : variant == 2 ? INFINITY : -1e308; break;
    case 2: v.kind = MD_VAL_NUM; v.num = slot * 0.5; break;
    case 3: v.kind = MD_VAL_STR; v.str = variant ? "prepay" : ""; break;
    case 4: v.kind = MD_VAL_LIST; v.list = pages[0]; v.n = 3; v.stride = sizeof(pages[0]); break;
    default: v.kind = MD_VAL_LIST; v.list = pages[0]; v.n = 0; v.stride = sizeof(pages[0]); break;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0; /* the loader's strings are far shorter; deep inputs only slow the search */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512];
    err[sizeof(err) - 1] = 'x';
    md_expr *e = md_expr_compile(text, resolve, NULL, err, sizeof(err));
    if (!e) {
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
    } else {
        FUZZ_ASSERT(md_expr_text(e) != NULL);
        for (int variant = 0; variant < 4; variant++) {
            md_value v = md_expr_eval(e, get, &variant);
            FUZZ_ASSERT(v.kind <= MD_VAL_LIST);
            (void)md_value_truthy(v);
        }
        md_expr_destroy(e);
    }
    free(text);
    return 0;
}
