/*
 * json.c - see json.h. Recursive descent; depth is bounded.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end, *start;
    char *err;
    size_t errlen;
    int failed;
} parser;

#define MAX_DEPTH 64

static void fail(parser *ps, const char *what)
{
    if (!ps->failed) {
        int line = 1;
        const char *q;
        for (q = ps->start; q < ps->p && q < ps->end; q++) {
            line += *q == '\n';
        }
        snprintf(ps->err, ps->errlen, "line %d: %s", line, what);
        ps->failed = 1;
    }
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static int parse_value(parser *ps, json *v, int depth);

static char *parse_string(parser *ps)
{
    size_t cap = 16, n = 0;
    char *s;
    if (ps->p >= ps->end || *ps->p != '"') {
        fail(ps, "expected a string");
        return NULL;
    }
    ps->p++;
    s = malloc(cap);
    if (!s) {
        fail(ps, "out of memory");
        return NULL;
    }
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p++;
        if ((unsigned char)c < 0x20) {
            fail(ps, "control character in a string");
            free(s);
            return NULL;
        }
        if (c == '\\') {
            if (ps->p >= ps->end) {
                break;
            }
            c = *ps->p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u':
                /* \uXXXX: kept as '?' (the vectors' names are ASCII). */
                if (ps->end - ps->p < 4) {
                    fail(ps, "short \\u escape");
                    free(s);
                    return NULL;
                }
                ps->p += 4;
                c = '?';
                break;
            case '"':
            case '\\':
            case '/':
                break;
            default:
                fail(ps, "bad escape in a string");
                free(s);
                return NULL;
            }
        }
        if (n + 1 >= cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                fail(ps, "out of memory");
                return NULL;
            }
            s = t;
        }
        s[n++] = c;
    }
    if (ps->p >= ps->end) {
        fail(ps, "unterminated string");
        free(s);
        return NULL;
    }
    ps->p++;
    s[n] = 0;
    return s;
}

static int push(parser *ps, json *v, json *item, char *key)
{
    if ((v->n & (v->n - 1)) == 0) { /* grow at powers of two */
        size_t cap = v->n ? 2 * v->n : 1;
        json *items = realloc(v->items, cap * sizeof *items);
        if (!items) {
            fail(ps, "out of memory");
            return 0;
        }
        v->items = items;
        if (v->kind == J_OBJECT) {
            char **keys = realloc(v->keys, cap * sizeof *keys);
            if (!keys) {
                fail(ps, "out of memory");
                return 0;
            }
            v->keys = keys;
        }
    }
    v->items[v->n] = *item;
    if (v->kind == J_OBJECT) {
        v->keys[v->n] = key;
    }
    v->n++;
    return 1;
}

static int parse_container(parser *ps, json *v, int depth, int object)
{
    char close = object ? '}' : ']';
    v->kind = object ? J_OBJECT : J_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 1;
    }
    for (;;) {
        json item;
        char *key = NULL;
        memset(&item, 0, sizeof item);
        skip_ws(ps);
        if (object) {
            if (!(key = parse_string(ps))) {
                return 0;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                fail(ps, "expected ':'");
                return 0;
            }
            ps->p++;
        }
        if (!parse_value(ps, &item, depth + 1) || !push(ps, v, &item, key)) {
            free(key);
            json_free(&item);
            /* json_free frees only children: item itself is on the stack */
            return 0;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 1;
        }
        fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return 0;
    }
}

static int parse_value(parser *ps, json *v, int depth)
{
    if (depth > MAX_DEPTH) {
        fail(ps, "nested too deeply");
        return 0;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return 0;
    }
    switch (*ps->p) {
    case '{':
        return parse_container(ps, v, depth, 1);
    case '[':
        return parse_container(ps, v, depth, 0);
    case '"':
        v->kind = J_STRING;
        return (v->s = parse_string(ps)) != NULL;
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[3] = {"true", "false", "null"};
        int k;
        for (k = 0; k < 3; k++) {
            size_t len = strlen(words[k]);
            if ((size_t)(ps->end - ps->p) >= len && memcmp(ps->p, words[k], len) == 0) {
                ps->p += len;
                v->kind = k == 2 ? J_NULL : J_BOOL;
                v->i = k == 0;
                return 1;
            }
        }
        fail(ps, "unexpected word");
        return 0;
    }
    default: {
        int neg = 0, digits = 0;
        uint64_t mag = 0;
        if (*ps->p == '-') {
            neg = 1;
            ps->p++;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (mag > (UINT64_C(1) << 63) / 10) {
                fail(ps, "integer out of range");
                return 0;
            }
            mag = mag * 10 + (uint64_t)(*ps->p - '0');
            ps->p++;
            digits++;
        }
        if (digits == 0) {
            fail(ps, "unexpected character");
            return 0;
        }
        if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
            fail(ps, "not an integer");
            return 0;
        }
        if (mag > (neg ? (UINT64_C(1) << 63) : (UINT64_C(1) << 63) - 1)) {
            fail(ps, "integer out of range");
            return 0;
        }
        v->kind = J_INT;
        v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return 1;
    }
    }
}

static void free_children(json *v)
{
    size_t k;
    for (k = 0; k < v->n; k++) {
        free_children(&v->items[k]);
        if (v->keys) {
            free(v->keys[k]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->s);
}

void json_free(json *v)
{
    if (v) {
        free_children(v);
        v->items = NULL;
        v->keys = NULL;
        v->s = NULL;
        v->n = 0;
    }
}

json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    parser ps;
    json *v = calloc(1, sizeof *v);
    ps.p = ps.start = text;
    ps.end = text + len;
    ps.err = err;
    ps.errlen = errlen;
    ps.failed = 0;
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!parse_value(&ps, v, 0)) {
        json_free(v);
        free(v);
        return NULL;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "trailing data after the JSON value");
        json_free(v);
        free(v);
        return NULL;
    }
    return v;
}

const json *json_get(const json *v, const char *key)
{
    size_t k;
    if (!v || v->kind != J_OBJECT) {
        return NULL;
    }
    for (k = 0; k < v->n; k++) {
        if (strcmp(v->keys[k], key) == 0) {
            return &v->items[k];
        }
    }
    return NULL;
}
