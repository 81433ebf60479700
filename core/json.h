/* core/json.h: a small strict JSON parser (RFC 8259) for config.json, safetensors
 * headers and model.safetensors.index.json (internal).
 *
 * Strict: no comments, no trailing commas, no duplicate keys, no leading zeros, no
 * NaN/Infinity, control characters in strings rejected, invalid UTF-8 rejected, \u
 * escapes (with surrogate pairs) decoded to UTF-8, nesting at most DSK_JSON_MAX_DEPTH.
 * The text need not be NUL-terminated. Errors (DSK_ERR_FORMAT) name the source, the
 * line and column, and what was expected. Every value remembers its line so that
 * later checks (a key of the wrong type) can name it too. */
#ifndef DSK_CORE_JSON_H
#define DSK_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "dsk/status.h"

#define DSK_JSON_MAX_DEPTH 64

typedef enum dsk_json_type {
    DSK_JSON_NULL = 0,
    DSK_JSON_BOOL,
    DSK_JSON_NUMBER,
    DSK_JSON_STRING,
    DSK_JSON_ARRAY,
    DSK_JSON_OBJECT
} dsk_json_type;

typedef struct dsk_json dsk_json;
struct dsk_json {
    dsk_json_type type;
    int line;             /* 1-based line where the value starts */
    int boolean;          /* DSK_JSON_BOOL */
    double num;           /* DSK_JSON_NUMBER */
    int is_int;           /* number written without fraction/exponent and fits int64 */
    int64_t i64;          /* exact value when is_int */
    char *str;            /* DSK_JSON_STRING: UTF-8, NUL-terminated (may hold \0 inside) */
    size_t str_len;
    int n;                /* ARRAY / OBJECT: number of items */
    dsk_json *items;      /* n values */
    char **keys;          /* OBJECT: n keys, NUL-terminated (a key with \u0000 is rejected) */
};

/* Parses len bytes of text. source names the file in messages. *out is freed with
 * dsk_json_free. */
dsk_status dsk_json_parse(const char *text, size_t len, const char *source, dsk_json **out);
void dsk_json_free(dsk_json *v);

/* The member of an object with this key, or NULL (also NULL when obj is no object). */
const dsk_json *dsk_json_get(const dsk_json *obj, const char *key);
/* "null", "boolean", "number", "string", "array", "object". */
const char *dsk_json_type_name(dsk_json_type t);

/* Reads a whole file into a NUL-terminated buffer (malloc'd). DSK_ERR_IO on failure;
 * *missing = 1 (if non-NULL) when the file does not exist; DSK_ERR_FORMAT when the
 * file holds a NUL byte. */
dsk_status dsk_json_read_file(const char *path, char **text, int *missing);

#endif
