/* test_expr.c: the expression language: parsing, evaluation, errors that point. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "momentd/expr.h"

static void count(void *ctx, int slot);

/* A toy namespace: x=3, y=200, s="prepay", pages=[home, prepay_product], m=missing. */
static int resolve(void *ctx, const char *name) {
    (void)ctx;
    static const char *const names[] = {"x", "y", "s", "pages", "m", "profile.segment"};
    for (int i = 0; i < 6; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

static const char pages[2][8] = {"home", "prepay"};

static md_value get(void *ctx, int slot) {
    (void)ctx;
    md_value v = {0};
    switch (slot) {
    case 0: v.kind = MD_VAL_NUM; v.num = 3; break;
    case 1: v.kind = MD_VAL_NUM; v.num = 200; break;
    case 2: v.kind = MD_VAL_STR; v.str = "prepay"; break;
    case 3: v.kind = MD_VAL_LIST; v.list = pages[0]; v.n = 2; v.stride = 8; break;
    case 5: v.kind = MD_VAL_STR; v.str = "revolver"; break;
    default: v.kind = MD_VAL_MISSING;
    }
    return v;
}

static md_value eval(const char *text) {
    char err[512];
    md_expr *e = md_expr_compile(text, resolve, NULL, err, sizeof(err));
    cr_assert(e, "'%s' should compile: %s", text, err);
    md_value v = md_expr_eval(e, get, NULL);
    md_expr_destroy(e);
    return v;
}

static double num(const char *text) {
    md_value v = eval(text);
    cr_assert_eq(v.kind, MD_VAL_NUM, "'%s' should give a number", text);
    return v.num;
}

Test(expr, seed_rule_shapes) {
    cr_assert_eq(num("x >= 3 && y < 201"), 1);
    cr_assert_eq(num("x >= 4 && y < 201"), 0);
    cr_assert_eq(num("x > 5 || y == 200"), 1);
    cr_assert_eq(num("!(x >= 3)"), 0);
}

Test(expr, precedence_and_arithmetic) {
    cr_assert_float_eq(num("1 + 2 * 3"), 7, 1e-12);
    cr_assert_float_eq(num("(1 + 2) * 3"), 9, 1e-12);
    cr_assert_float_eq(num("-x + 10 / 4"), -0.5, 1e-12);
    cr_assert_float_eq(num("max(x, 7) - min(x, 7)"), 4, 1e-12);
    cr_assert_float_eq(num("log1p(x)"), 1.3862943611198906, 1e-12);
    cr_assert_float_eq(num("abs(0 - y)"), 200, 1e-12);
    cr_assert_eq(num("1 + 2 * 3 == 7 && 2 < 3"), 1);
}

Test(expr, strings_lists_and_has) {
    cr_assert_eq(num("s == \"prepay\""), 1);
    cr_assert_eq(num("s != \"prepay\""), 0);
    cr_assert_eq(num("\"prepay\" in pages"), 1);
    cr_assert_eq(num("\"instalment\" in pages"), 0);
    cr_assert_eq(num("has(x)"), 1);
    cr_assert_eq(num("has(m)"), 0);
    cr_assert_eq(num("profile.segment == \"revolver\""), 1);
    cr_assert_eq(num("true && !false"), 1);
}

Test(expr, missing_values_never_compare_true) {
    /* A customer with no known balance is neither low- nor high-balance. */
    cr_assert_eq(num("m < 200"), 0);
    cr_assert_eq(num("m >= 200"), 0);
    cr_assert_eq(num("m == m"), 0);
    cr_assert_eq(eval("m + 1").kind, MD_VAL_MISSING);
    cr_assert_eq(eval("x / 0").kind, MD_VAL_MISSING, "division by zero has no value");
    cr_assert_eq(num("s < 3"), 0, "a string is not less than a number");
}

static void expect_error(const char *text, const char *want_msg, int want_col) {
    char err[512];
    md_expr *e = md_expr_compile(text, resolve, NULL, err, sizeof(err));
    cr_assert_null(e, "'%s' should not compile", text);
    cr_assert(strstr(err, want_msg), "error for '%s' should mention '%s', got: %s", text, want_msg, err);
    char col[32];
    snprintf(col, sizeof(col), "column %d", want_col);
    cr_assert(strstr(err, col), "error for '%s' should point at %s, got: %s", text, col, err);
    /* The caret line puts '^' under that column. */
    const char *caret = strrchr(err, '\n');
    cr_assert(caret);
    cr_assert_eq(caret[1 + 4 + want_col - 1], '^', "caret under column %d in: %s", want_col, err);
}

Test(expr, errors_point_at_the_offending_text) {
    expect_error("late_payments_180d >= 3", "unknown name 'late_payments_180d'", 1);
    expect_error("x >= 3 && balanse < 200", "unknown name 'balanse'", 11);
    expect_error("x >= ", "unexpected end", 6);
    expect_error("x = 3", "did you mean '=='", 3);
    expect_error("(x > 1", "expected ')'", 7);
    expect_error("x > 1 y", "after a complete expression", 7);
    expect_error("s == \"abc", "unterminated string", 6);
    expect_error("foo(x)", "unknown function 'foo'", 1);
    expect_error("1 < x < 5", "do not chain", 7);
    expect_error("x # 2", "after a complete expression", 3);
}

Test(expr, nesting_is_bounded) {
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "1");
    memset(deep + 201, ')', 198);
    deep[399] = '\0';
    char err[512];
    md_expr *e = md_expr_compile(deep, resolve, NULL, err, sizeof(err));
    cr_assert_null(e);
    cr_assert(strstr(err, "nested deeper"), "%s", err);
}

Test(expr, foreach_slot_lists_reads) {
    char err[256];
    md_expr *e = md_expr_compile("x > 1 && has(m) || s == \"a\"", resolve, NULL, err, sizeof(err));
    cr_assert(e);
    int seen = 0;
    md_expr_foreach_slot(e, count, &seen);
    cr_assert_eq(seen, (1 << 0) | (1 << 4) | (1 << 2));
    cr_assert_str_eq(md_expr_text(e), "x > 1 && has(m) || s == \"a\"");
    md_expr_destroy(e);
}

static void count(void *ctx, int slot) { *(int *)ctx |= 1 << slot; }
