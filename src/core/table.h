/* table.h (private to the core): declarative tables of settings, and the
 * machinery that walks them. The configuration (config.c) and the
 * simulator's scenario files (sim_world.c) are each one set of tables; both
 * are loaded, defaulted, bounded, freed and documented by this one walk.
 *
 * A table row: key, type, offset into its struct, default as text (NULL:
 * required), bounds, a sentence for the docs, and for nested objects and
 * arrays the sub-table; then two optional columns, flags (F_RESTART: a
 * reload that changes it is refused) and env (the environment variable
 * that overrides it). Unknown and repeated keys are rejected, so nothing
 * reads a key its table does not declare. */
#ifndef MOMENTD_TABLE_H
#define MOMENTD_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <yajl/yajl_tree.h>

typedef enum md_ftype { T_STR, T_INT, T_NUM, T_DUR, T_ENUM, T_EXPR, T_TOD, T_UTCOFF, T_OBJ, T_ARR, T_PASS, T_NUMMAP, T_NUMS } md_ftype;

struct md_table;

typedef struct md_field {
    const char *key;
    md_ftype type;
    size_t off;
    const char *def; /* default as text; NULL = required (objects, arrays: NULL = may be absent) */
    double lo, hi;   /* bounds for T_INT, T_NUM, T_DUR (ms) */
    const char *doc;
    const struct md_table *sub; /* T_OBJ, T_ARR */
    size_t elem_size;        /* T_ARR: bytes per element; T_NUMS: how many numbers */
    size_t count_off;        /* T_ARR, T_PASS, T_NUMMAP */
    const char *choices;     /* T_ENUM: "a|b|c" */
    /* The columns that drive more than the loader: */
    unsigned flags;          /* F_RESTART: a reload that changes it is refused (the connections, the group
                              * and the subscription are made once) */
    const char *env;         /* T_STR: the environment variable that overrides it, or NULL */
    /* T_PASS: whether a property of this name is a secret, whose value may
     * be a reference (F_SECRET's rule, property by property); NULL: none
     * is. A column, not a call into the configuration, so that the tables'
     * machinery knows no table of its own. */
    bool (*secret_key)(const char *key);
} md_field;

#define F_RESTART 1u
/* F_SECRET: the value may be a reference, "${env:NAME}" or "${file:PATH}"
 * (in no other field: a reference in kafka.brokers would print a file in
 * check and in connection errors); it is never printed. */
#define F_SECRET 2u
/* F_OPTIONAL (T_OBJ): absent, the object stays zeroed (no defaults, no
 * required keys): the caller tests a required field for NULL. */
#define F_OPTIONAL 4u

typedef struct md_table {
    const char *name;
    const md_field *fields;
    size_t n;
} md_table;

#define NF(arr) (sizeof(arr) / sizeof((arr)[0]))
#define STR(s, k, d, doc_, ...) {#k, T_STR, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define STRK(s, k, m, d, doc_, ...) {k, T_STR, offsetof(s, m), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define EXPR(s, k, d, doc_, ...) {#k, T_EXPR, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define INT(s, k, d, lo, hi, doc_, ...) {#k, T_INT, offsetof(s, k), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define NUM(s, k, d, lo, hi, doc_, ...) {#k, T_NUM, offsetof(s, k), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define DUR(s, k, m, d, lo, hi, doc_, ...) {k, T_DUR, offsetof(s, m), d, lo, hi, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define ENUM(s, k, m, d, ch, doc_, ...) {k, T_ENUM, offsetof(s, m), d, 0, 0, doc_, NULL, 0, 0, ch, __VA_ARGS__}
#define TOD(s, k, d, doc_, ...) {#k, T_TOD, offsetof(s, k), d, 0, 0, doc_, NULL, 0, 0, NULL, __VA_ARGS__}
#define OBJ(s, k, m, t, doc_, ...) {k, T_OBJ, offsetof(s, m), "", 0, 0, doc_, &t, 0, 0, NULL, __VA_ARGS__}
#define ARR(s, k, m, cnt, t, et, req, doc_, ...) {k, T_ARR, offsetof(s, m), req, 0, 0, doc_, &t, sizeof(et), offsetof(s, cnt), NULL, __VA_ARGS__}
#define PASS(s, k, m, cnt, doc_, ...) {k, T_PASS, offsetof(s, m), "", 0, 0, doc_, NULL, 0, offsetof(s, cnt), NULL, __VA_ARGS__}
#define NUMMAP(s, k, m, cnt, doc_, ...) {k, T_NUMMAP, offsetof(s, m), "", 0, 0, doc_, NULL, 0, offsetof(s, cnt), NULL, __VA_ARGS__}
/* T_NUMS: a fixed array of elem_size doubles, each within the bounds; text
 * "a,b,c", JSON [a, b, c]. */
#define NUMS(s, k, n, d, lo, hi, doc_, ...) {#k, T_NUMS, offsetof(s, k), d, lo, hi, doc_, NULL, n, 0, NULL, __VA_ARGS__}

/* Where a load reports its first error: "<file>: <json path>: <what>". */
typedef struct md_table_loader {
    const char *file;
    char *err;
    size_t errsz;
    bool failed;
} md_table_loader;

/* Records the first error (later ones are dropped); returns false. */
bool md_table_fail(md_table_loader *L, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Loads object obj (NULL: absent, every default applies) into base by
 * table t; path names it in errors ("$"). On failure base may be half
 * filled: md_table_free frees whatever was set. */
bool md_table_load(md_table_loader *L, const md_table *t, yajl_val obj, void *base, const char *path);
void md_table_free(const md_table *t, void *base);

/* Applies the environment overrides the table names over what was loaded. */
bool md_table_apply_env(md_table_loader *L, const md_table *t, void *obj);

/* The first F_RESTART setting that differs between a and b, as its dotted
 * key (under prefix) in key; false when none does. */
bool md_table_restart_change(const md_table *t, const char *prefix, const void *a, const void *b, char *key, size_t n);

/* Calls fn for every row, depth first, with its dotted path. */
typedef void (*md_table_visit_fn)(void *ctx, const char *path, const md_field *f);
void md_table_walk(const md_table *t, const char *prefix, md_table_visit_fn fn, void *ctx);

/* The Markdown rows of the reference: key, type, default, bounds, and with
 * reload_columns the reload rule and environment variable, then the doc. */
void md_table_print_rows(const md_table *t, FILE *out, bool reload_columns);

#endif
