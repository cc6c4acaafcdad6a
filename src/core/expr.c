/* expr.c: tokenizer, recursive-descent parser and evaluator of expr.h.
 *
 * The compiled form is a flat array of nodes (children by index), allocated
 * once; evaluation is a recursive walk with no allocation. Errors point at the
 * byte where the parser gave up, because an operator editing a tag rule at
 * 2 a.m. needs to see where, not only what. */
#include "momentd/expr.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum op {
    OP_NUM, OP_STR, OP_SLOT, OP_OR, OP_AND, OP_NOT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_NEG, OP_MIN, OP_MAX, OP_LOG1P, OP_ABS, OP_HAS
} op;

typedef struct node {
    op op;
    int a, b;     /* child node indexes, -1 if none */
    int slot;     /* OP_SLOT, OP_HAS */
    double num;   /* OP_NUM */
    char *str;    /* OP_STR, owned */
} node;

struct md_expr {
    node *nodes;
    int n, cap;
    int root;
    char *text;
};

#define MAX_NODES 512
#define MAX_NESTING 64

typedef struct parser {
    const char *text;
    size_t pos;
    md_expr *e;
    md_expr_resolve_fn resolve;
    void *rctx;
    char *err;
    size_t errsz;
    bool failed;
    int nesting;
} parser;

static void perr(parser *p, size_t at, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Message, then the text and a caret under the offending column. */
    size_t len = strlen(p->text);
    if (at > len) at = len;
    char caret[160];
    size_t c = at < sizeof(caret) - 2 ? at : sizeof(caret) - 2;
    memset(caret, ' ', c);
    caret[c] = '^';
    caret[c + 1] = '\0';
    snprintf(p->err, p->errsz, "%s at column %zu\n    %.150s\n    %s", msg, at + 1, p->text, caret);
}

static int add_node(parser *p, op o, int a, int b) {
    md_expr *e = p->e;
    if (e->n >= MAX_NODES) {
        perr(p, p->pos, "expression too long (more than %d nodes)", MAX_NODES);
        return -1;
    }
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 16;
        node *nn = realloc(e->nodes, (size_t)cap * sizeof(node));
        if (!nn) {
            perr(p, p->pos, "out of memory");
            return -1;
        }
        e->nodes = nn;
        e->cap = cap;
    }
    node *nd = &e->nodes[e->n];
    memset(nd, 0, sizeof(*nd));
    nd->op = o;
    nd->a = a;
    nd->b = b;
    nd->slot = -1;
    return e->n++;
}

static void skip_ws(parser *p) {
    while (isspace((unsigned char)p->text[p->pos])) p->pos++;
}

static bool accept(parser *p, const char *tok) {
    skip_ws(p);
    size_t n = strlen(tok);
    if (strncmp(p->text + p->pos, tok, n) != 0) return false;
    /* Keep "<" from matching the front of "<=", and "in" the front of "index". */
    char next = p->text[p->pos + n];
    if ((tok[0] == '<' || tok[0] == '>' || tok[0] == '!' || tok[0] == '=') && n == 1 && next == '=') return false;
    if (isalpha((unsigned char)tok[0]) && (isalnum((unsigned char)next) || next == '_' || next == '.')) return false;
    p->pos += n;
    return true;
}

static int parse_or(parser *p);

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

static int parse_call(parser *p, const char *name, size_t at) {
    static const struct {
        const char *name;
        op op;
        int arity;
    } fns[] = {{"min", OP_MIN, 2}, {"max", OP_MAX, 2}, {"log1p", OP_LOG1P, 1}, {"abs", OP_ABS, 1}, {"has", OP_HAS, 1}};
    size_t i;
    for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (strcmp(fns[i].name, name) == 0) break;
    if (i == sizeof(fns) / sizeof(fns[0])) {
        perr(p, at, "unknown function '%s' (known: min, max, log1p, abs, has)", name);
        return -1;
    }
    if (fns[i].op == OP_HAS) {
        skip_ws(p);
        size_t start = p->pos;
        while (is_ident_char(p->text[p->pos])) p->pos++;
        if (p->pos == start || !is_ident_start(p->text[start])) {
            perr(p, start, "has() takes a name");
            return -1;
        }
        char nm[128];
        size_t len = p->pos - start < sizeof(nm) - 1 ? p->pos - start : sizeof(nm) - 1;
        memcpy(nm, p->text + start, len);
        nm[len] = '\0';
        int slot = p->resolve(p->rctx, nm);
        if (slot < 0) {
            perr(p, start, "unknown name '%s'", nm);
            return -1;
        }
        if (!accept(p, ")")) {
            perr(p, p->pos, "expected ')'");
            return -1;
        }
        int n = add_node(p, OP_HAS, -1, -1);
        if (n >= 0) p->e->nodes[n].slot = slot;
        return n;
    }
    int a = parse_or(p);
    if (a < 0) return -1;
    int b = -1;
    if (fns[i].arity == 2) {
        if (!accept(p, ",")) {
            perr(p, p->pos, "%s() takes two arguments: expected ','", name);
            return -1;
        }
        b = parse_or(p);
        if (b < 0) return -1;
    }
    if (!accept(p, ")")) {
        perr(p, p->pos, "expected ')' to close %s(", name);
        return -1;
    }
    return add_node(p, fns[i].op, a, b);
}

static int parse_primary(parser *p) {
    skip_ws(p);
    const char *s = p->text + p->pos;
    size_t at = p->pos;
    if (*s == '(') {
        p->pos++;
        if (++p->nesting > MAX_NESTING) {
            perr(p, at, "parentheses nested deeper than %d", MAX_NESTING);
            return -1;
        }
        int n = parse_or(p);
        p->nesting--;
        if (n < 0) return -1;
        if (!accept(p, ")")) {
            perr(p, p->pos, "expected ')' to close the '(' at column %zu", at + 1);
            return -1;
        }
        return n;
    }
    if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double v = strtod(s, &end);
        if (!isfinite(v)) {
            perr(p, at, "number out of range");
            return -1;
        }
        p->pos += (size_t)(end - s);
        int n = add_node(p, OP_NUM, -1, -1);
        if (n >= 0) p->e->nodes[n].num = v;
        return n;
    }
    if (*s == '"') {
        size_t i = 1;
        while (s[i] && s[i] != '"') i++;
        if (!s[i]) {
            perr(p, at, "unterminated string");
            return -1;
        }
        int n = add_node(p, OP_STR, -1, -1);
        if (n < 0) return -1;
        char *str = malloc(i);
        if (!str) {
            perr(p, at, "out of memory");
            return -1;
        }
        memcpy(str, s + 1, i - 1);
        str[i - 1] = '\0';
        p->e->nodes[n].str = str;
        p->pos += i + 1;
        return n;
    }
    if (is_ident_start(*s)) {
        size_t i = 0;
        while (is_ident_char(s[i])) i++;
        char name[128];
        if (i >= sizeof(name)) {
            perr(p, at, "name longer than %zu characters", sizeof(name) - 1);
            return -1;
        }
        memcpy(name, s, i);
        name[i] = '\0';
        p->pos += i;
        if (strcmp(name, "true") == 0 || strcmp(name, "false") == 0) {
            int n = add_node(p, OP_NUM, -1, -1);
            if (n >= 0) p->e->nodes[n].num = name[0] == 't';
            return n;
        }
        skip_ws(p);
        if (p->text[p->pos] == '(') {
            p->pos++;
            return parse_call(p, name, at);
        }
        int slot = p->resolve(p->rctx, name);
        if (slot < 0) {
            perr(p, at, "unknown name '%s'", name);
            return -1;
        }
        int n = add_node(p, OP_SLOT, -1, -1);
        if (n >= 0) p->e->nodes[n].slot = slot;
        return n;
    }
    if (*s == '\0') perr(p, at, "unexpected end of expression");
    else perr(p, at, "unexpected '%c'", *s);
    return -1;
}

static int parse_unary(parser *p) {
    if (accept(p, "-")) {
        int a = parse_unary(p);
        return a < 0 ? -1 : add_node(p, OP_NEG, a, -1);
    }
    return parse_primary(p);
}

static int parse_prod(parser *p) {
    int a = parse_unary(p);
    while (a >= 0) {
        op o;
        if (accept(p, "*")) o = OP_MUL;
        else if (accept(p, "/")) o = OP_DIV;
        else break;
        int b = parse_unary(p);
        a = b < 0 ? -1 : add_node(p, o, a, b);
    }
    return a;
}

static int parse_sum(parser *p) {
    int a = parse_prod(p);
    while (a >= 0) {
        op o;
        if (accept(p, "+")) o = OP_ADD;
        else if (accept(p, "-")) o = OP_SUB;
        else break;
        int b = parse_prod(p);
        a = b < 0 ? -1 : add_node(p, o, a, b);
    }
    return a;
}

static int parse_cmp(parser *p) {
    int a = parse_sum(p);
    if (a < 0) return -1;
    static const struct {
        const char *tok;
        op op;
    } ops[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"<", OP_LT}, {">", OP_GT}, {"in", OP_IN}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (accept(p, ops[i].tok)) {
            int b = parse_sum(p);
            if (b < 0) return -1;
            int n = add_node(p, ops[i].op, a, b);
            skip_ws(p);
            const char *r = p->text + p->pos;
            if (n >= 0 && (*r == '<' || *r == '>' || (r[0] == '=' && r[1] == '=') || (r[0] == '!' && r[1] == '=')))
                perr(p, p->pos, "comparisons do not chain; use && between them");
            return p->failed ? -1 : n;
        }
    }
    skip_ws(p);
    if (p->text[p->pos] == '=' && p->text[p->pos + 1] != '=') {
        perr(p, p->pos, "'=' is not an operator; did you mean '=='?");
        return -1;
    }
    return a;
}

static int parse_not(parser *p) {
    skip_ws(p);
    if (p->text[p->pos] == '!' && p->text[p->pos + 1] != '=') {
        p->pos++;
        if (++p->nesting > MAX_NESTING) {
            perr(p, p->pos, "too many '!' in a row");
            return -1;
        }
        int a = parse_not(p);
        p->nesting--;
        return a < 0 ? -1 : add_node(p, OP_NOT, a, -1);
    }
    return parse_cmp(p);
}

static int parse_and(parser *p) {
    int a = parse_not(p);
    while (a >= 0 && accept(p, "&&")) {
        int b = parse_not(p);
        a = b < 0 ? -1 : add_node(p, OP_AND, a, b);
    }
    return a;
}

static int parse_or(parser *p) {
    if (++p->nesting > MAX_NESTING) {
        perr(p, p->pos, "expression nested deeper than %d", MAX_NESTING);
        return -1;
    }
    int a = parse_and(p);
    while (a >= 0 && accept(p, "||")) {
        int b = parse_and(p);
        a = b < 0 ? -1 : add_node(p, OP_OR, a, b);
    }
    p->nesting--;
    return a;
}

md_expr *md_expr_compile(const char *text, md_expr_resolve_fn resolve, void *resolve_ctx, char *errstr,
                         size_t errstr_size) {
    md_expr *e = calloc(1, sizeof(*e));
    if (!e || !(e->text = strdup(text))) {
        free(e);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    parser p = {.text = text, .e = e, .resolve = resolve, .rctx = resolve_ctx, .err = errstr, .errsz = errstr_size};
    e->root = parse_or(&p);
    skip_ws(&p);
    if (!p.failed && text[p.pos] != '\0') perr(&p, p.pos, "unexpected '%c' after a complete expression", text[p.pos]);
    if (p.failed || e->root < 0) {
        if (!p.failed) perr(&p, p.pos, "invalid expression");
        md_expr_destroy(e);
        return NULL;
    }
    return e;
}

void md_expr_destroy(md_expr *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) free(e->nodes[i].str);
    free(e->nodes);
    free(e->text);
    free(e);
}

const char *md_expr_text(const md_expr *e) { return e->text; }

bool md_value_truthy(md_value v) {
    switch (v.kind) {
    case MD_VAL_NUM: return v.num != 0;
    case MD_VAL_STR: return v.str && v.str[0];
    case MD_VAL_LIST: return v.n > 0;
    default: return false;
    }
}

static md_value num(double x) {
    md_value v = {.kind = isfinite(x) ? MD_VAL_NUM : MD_VAL_MISSING, .num = x};
    return v;
}
static const md_value missing = {.kind = MD_VAL_MISSING};
_Static_assert(sizeof(md_value) == 16, "md_value is returned in two registers");

static md_value eval(const md_expr *e, int i, md_expr_get_fn get, void *ctx);

/* Node i's value, a window's or a number's without a call of eval: half
 * the nodes evaluated are leaves, and entering and leaving eval cost more
 * than reading one (BENCHMARKS.md). */
static inline md_value operand(const md_expr *e, int i, md_expr_get_fn get, void *ctx) {
    const node *nd = &e->nodes[i];
    if (nd->op == OP_SLOT) return get(ctx, nd->slot);
    if (nd->op == OP_NUM) return num(nd->num);
    return eval(e, i, get, ctx);
}

static md_value eval(const md_expr *e, int i, md_expr_get_fn get, void *ctx) {
    const node *nd = &e->nodes[i];
    md_value a, b;
    switch (nd->op) {
    case OP_NUM: return num(nd->num);
    case OP_STR: {
        md_value v = {.kind = MD_VAL_STR, .str = nd->str};
        return v;
    }
    case OP_SLOT: return get(ctx, nd->slot);
    case OP_HAS: return num(get(ctx, nd->slot).kind != MD_VAL_MISSING);
    case OP_OR: return num(md_value_truthy(operand(e, nd->a, get, ctx)) || md_value_truthy(operand(e, nd->b, get, ctx)));
    case OP_AND: return num(md_value_truthy(operand(e, nd->a, get, ctx)) && md_value_truthy(operand(e, nd->b, get, ctx)));
    case OP_NOT: return num(!md_value_truthy(operand(e, nd->a, get, ctx)));
    default: break;
    }
    a = operand(e, nd->a, get, ctx);
    b = nd->b >= 0 ? operand(e, nd->b, get, ctx) : missing;
    switch (nd->op) {
    case OP_EQ:
    case OP_NE: {
        bool eq;
        if (a.kind == MD_VAL_MISSING || b.kind == MD_VAL_MISSING || a.kind != b.kind || a.kind == MD_VAL_LIST)
            return num(0); /* no value, or different kinds: neither equal nor unequal */
        eq = a.kind == MD_VAL_NUM ? a.num == b.num : strcmp(a.str, b.str) == 0;
        return num(nd->op == OP_EQ ? eq : !eq);
    }
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        if (a.kind != MD_VAL_NUM || b.kind != MD_VAL_NUM) return num(0);
        bool r = nd->op == OP_LT ? a.num < b.num : nd->op == OP_LE ? a.num <= b.num : nd->op == OP_GT ? a.num > b.num : a.num >= b.num;
        return num(r);
    }
    case OP_IN:
        if (a.kind != MD_VAL_STR || b.kind != MD_VAL_LIST) return num(0);
        for (size_t k = 0; k < b.n; k++)
            if (strcmp(a.str, b.list + k * b.stride) == 0) return num(1);
        return num(0);
    default: break;
    }
    /* Arithmetic and functions: numbers only. */
    if (a.kind != MD_VAL_NUM || (nd->b >= 0 && b.kind != MD_VAL_NUM)) return missing;
    switch (nd->op) {
    case OP_ADD: return num(a.num + b.num);
    case OP_SUB: return num(a.num - b.num);
    case OP_MUL: return num(a.num * b.num);
    case OP_DIV: return b.num == 0 ? missing : num(a.num / b.num);
    case OP_NEG: return num(-a.num);
    case OP_MIN: return num(a.num < b.num ? a.num : b.num);
    case OP_MAX: return num(a.num > b.num ? a.num : b.num);
    case OP_LOG1P: return a.num <= -1 ? missing : num(log1p(a.num));
    case OP_ABS: return num(fabs(a.num));
    default: return missing;
    }
}

md_value md_expr_eval(const md_expr *e, md_expr_get_fn get, void *get_ctx) { return operand(e, e->root, get, get_ctx); }

void md_expr_foreach_slot(const md_expr *e, void (*fn)(void *ctx, int slot), void *ctx) {
    for (int i = 0; i < e->n; i++)
        if (e->nodes[i].op == OP_SLOT || e->nodes[i].op == OP_HAS) fn(ctx, e->nodes[i].slot);
}
