/* expr.h: the small expression language of tags, signals, features and rules.
 *
 *   late_payments_180d >= 3 && balance < 200
 *   "prepay_product" in pages || kind == "prepay"
 *   log1p(payments_180d) * 0.5
 *
 * Operators, loosest first: || ; && ; ! ; == != < <= > >= in ; + - ; * / ;
 * unary -. Literals: numbers, "strings", true, false. Functions: min(a,b),
 * max(a,b), log1p(x), abs(x), has(name) (1 when name has a value).
 *
 * Names are resolved once, at compile time, by a caller-supplied resolver to
 * integer slots, so evaluation does no string lookups. A name may have no value
 * at evaluation time (a customer without a known balance): arithmetic on it
 * gives no value, and any comparison with it is false. That rule keeps a rule
 * tag like `balance < 200` from firing for a customer we know nothing about. */
#ifndef MOMENTD_EXPR_H
#define MOMENTD_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "momentd/error.h"

typedef enum md_value_kind { MD_VAL_MISSING = 0, MD_VAL_NUM, MD_VAL_STR, MD_VAL_LIST } md_value_kind;

/* A value seen by an expression. Strings and lists are borrowed from the
 * resolver's context and must outlive the md_expr_eval call. The union
 * holds the member kind names. Sixteen bytes, so that a value is returned
 * in two registers: an expression is evaluated node by node, every node
 * returning one, about 20 expressions an event, and the 48 bytes it was
 * were copied through memory at every return (BENCHMARKS.md). */
typedef struct md_value {
    union {
        double num;       /* MD_VAL_NUM */
        const char *str;  /* MD_VAL_STR: NUL-terminated */
        const char *list; /* MD_VAL_LIST: n strings, each `stride` bytes apart */
    };
    md_value_kind kind;
    uint16_t n, stride;
} md_value;

/* Compile-time resolver: returns the slot for name (>= 0), or -1 if unknown. */
typedef int (*md_expr_resolve_fn)(void *ctx, const char *name);
/* Evaluation-time lookup of a slot's current value. */
typedef md_value (*md_expr_get_fn)(void *ctx, int slot);

typedef struct md_expr md_expr;

/* Compiles text. On error returns NULL and writes a message naming the
 * offending text and its column, with a caret line, into errstr. The result is
 * owned by the caller; free it with md_expr_destroy. */
md_expr *md_expr_compile(const char *text, md_expr_resolve_fn resolve, void *resolve_ctx, char *errstr,
                         size_t errstr_size);
void md_expr_destroy(md_expr *e); /* accepts NULL */

/* Evaluates e. Never fails: type mismatches and missing names yield MISSING
 * or false as described above. */
md_value md_expr_eval(const md_expr *e, md_expr_get_fn get, void *get_ctx);

/* Truthiness: a non-zero number, a non-empty string or list. */
bool md_value_truthy(md_value v);

/* Calls fn for every slot the expression reads (with repeats), so a loader
 * can check dependencies (a rule tag must not read a model score). */
void md_expr_foreach_slot(const md_expr *e, void (*fn)(void *ctx, int slot), void *ctx);

/* The source text the expression was compiled from. */
const char *md_expr_text(const md_expr *e);

#endif
