/*
 * json.h - a small JSON reader for the operator vectors (host only): parses
 * a document into a tree of values. Numbers must be integers (the vector
 * format has no others); they are kept as int64.
 */
#ifndef IH_JSON_H
#define IH_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { J_NULL, J_BOOL, J_INT, J_STRING, J_ARRAY, J_OBJECT } json_kind;

typedef struct json json;
struct json {
    json_kind kind;
    int64_t i;    /* J_INT, J_BOOL */
    char *s;      /* J_STRING */
    size_t n;     /* J_ARRAY, J_OBJECT: elements */
    json *items;  /* elements */
    char **keys;  /* J_OBJECT: the key of each element */
};

/* Parses text (len bytes). On error returns NULL and writes a message with
 * the line number into err (errlen bytes). */
json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json *v);

/* The member of an object named key, NULL if absent or v is no object. */
const json *json_get(const json *v, const char *key);

#endif
