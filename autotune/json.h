/* autotune/json.h: a small JSON reader for dsk's own files (tuning cache, export
 * manifest). Internal; strict RFC 8259 subset: no comments, no trailing commas, UTF-8
 * passed through, \u escapes of the BMP decoded to UTF-8. */
#ifndef DSK_AUTOTUNE_JSON_H
#define DSK_AUTOTUNE_JSON_H

#include <stddef.h>
#include "dsk/status.h"

typedef enum dsk_json_type {
    DSK_JSON_NULL, DSK_JSON_BOOL, DSK_JSON_NUMBER, DSK_JSON_STRING, DSK_JSON_ARRAY, DSK_JSON_OBJECT
} dsk_json_type;

typedef struct dsk_json dsk_json;
struct dsk_json {
    dsk_json_type type;
    int line;            /* line of the value in the text (1-based), for messages */
    double num;          /* NUMBER; BOOL: 0 or 1 */
    char *str;           /* STRING (NUL-terminated) */
    char *key;           /* the member name when inside an object */
    dsk_json *child;     /* ARRAY / OBJECT: first element */
    dsk_json *next;      /* next sibling */
};

/* Parses text. Errors: DSK_ERR_FORMAT "NAME:LINE: problem" (name = source_name). */
dsk_status dsk_json_parse(const char *text, const char *source_name, dsk_json **out);
void dsk_json_free(dsk_json *j);
/* Member of an object by name (NULL if absent or j is not an object). */
const dsk_json *dsk_json_get(const dsk_json *j, const char *key);
/* Reads a whole file into a NUL-terminated buffer (malloc'd). DSK_ERR_IO on failure;
 * *missing = 1 (if non-NULL) when the file does not exist. */
dsk_status dsk_json_read_file(const char *path, char **text, int *missing);

#endif
