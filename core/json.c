/* core/json.c: the strict JSON parser of core/json.h. Recursive descent with an
 * explicit depth limit; every byte access is bounds-checked against len. */
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

typedef struct parser {
    const char *s;
    size_t len, pos;
    const char *source;
    int line;
    size_t line_start;
} parser;

static dsk_status perr(parser *p, const char *what)
{
    return dsk_fail(DSK_ERR_FORMAT, "%s: line %d, column %zu: %s", p->source, p->line,
                    p->pos - p->line_start + 1, what);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == '\n') {
            p->line++;
            p->line_start = p->pos + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return;
        }
        p->pos++;
    }
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static int match_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return 0;
    p->pos += n;
    return 1;
}

/* Growable byte buffer for decoded strings. */
typedef struct sbuf { char *b; size_t n, cap; } sbuf;

static int sbuf_put(sbuf *b, const char *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *nb = realloc(b->b, cap);
        if (!nb)
            return 0;
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->n, src, n);
    b->n += n;
    b->b[b->n] = 0;
    return 1;
}

static int put_utf8(sbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sbuf_put(b, u, n);
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

/* Length of a valid UTF-8 sequence starting at s[0] (n bytes available), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { k = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { k = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { k = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return k;
}

/* Parses a string starting at the opening quote into a malloc'd buffer. */
static dsk_status parse_string(parser *p, char **out, size_t *out_len)
{
    sbuf b = {0};
    p->pos++; /* opening quote */
    if (!sbuf_put(&b, "", 0))
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->source);
    for (;;) {
        if (p->pos >= p->len) {
            free(b.b);
            return perr(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(b.b);
            return perr(p, "control character inside a string (must be escaped)");
        }
        int ok = 1;
        if (c == '\\') {
            p->pos++;
            int e = peek(p);
            if (e < 0) {
                free(b.b);
                return perr(p, "unterminated escape");
            }
            p->pos++;
            const char *rep = NULL;
            switch (e) {
            case '"': rep = "\""; break;
            case '\\': rep = "\\"; break;
            case '/': rep = "/"; break;
            case 'b': rep = "\b"; break;
            case 'f': rep = "\f"; break;
            case 'n': rep = "\n"; break;
            case 'r': rep = "\r"; break;
            case 't': rep = "\t"; break;
            case 'u': {
                uint32_t cp, lo;
                if (!hex4(p, &cp)) {
                    free(b.b);
                    return perr(p, "\\u must be followed by 4 hex digits");
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(b.b);
                    return perr(p, "unpaired low surrogate in \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (!match_word(p, "\\u") || !hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        free(b.b);
                        return perr(p, "high surrogate not followed by a \\u low surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                ok = put_utf8(&b, cp);
                break;
            }
            default:
                free(b.b);
                return perr(p, "invalid escape character");
            }
            if (rep)
                ok = sbuf_put(&b, rep, 1);
        } else {
            size_t k = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (!k) {
                free(b.b);
                return perr(p, "invalid UTF-8 inside a string");
            }
            ok = sbuf_put(&b, p->s + p->pos, k);
            p->pos += k;
        }
        if (!ok) {
            free(b.b);
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->source);
        }
    }
    *out = b.b;
    *out_len = b.n;
    return DSK_OK;
}

static dsk_status parse_number(parser *p, dsk_json *v)
{
    size_t start = p->pos;
    int neg = 0, frac = 0;
    if (peek(p) == '-') {
        neg = 1;
        p->pos++;
    }
    int c = peek(p);
    if (c < '0' || c > '9')
        return perr(p, "expected a digit");
    if (c == '0') {
        p->pos++;
        c = peek(p);
        if (c >= '0' && c <= '9')
            return perr(p, "leading zeros are not allowed in numbers");
    } else {
        while ((c = peek(p)) >= '0' && c <= '9')
            p->pos++;
    }
    if (peek(p) == '.') {
        frac = 1;
        p->pos++;
        c = peek(p);
        if (c < '0' || c > '9')
            return perr(p, "expected a digit after the decimal point");
        while ((c = peek(p)) >= '0' && c <= '9')
            p->pos++;
    }
    c = peek(p);
    if (c == 'e' || c == 'E') {
        frac = 1;
        p->pos++;
        c = peek(p);
        if (c == '+' || c == '-')
            p->pos++;
        c = peek(p);
        if (c < '0' || c > '9')
            return perr(p, "expected a digit in the exponent");
        while ((c = peek(p)) >= '0' && c <= '9')
            p->pos++;
    }
    size_t n = p->pos - start;
    char tmp[64];
    if (n >= sizeof tmp)
        return perr(p, "number literal too long (more than 63 characters)");
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    v->type = DSK_JSON_NUMBER;
    v->num = strtod(tmp, NULL);
    if (!isfinite(v->num))
        return perr(p, "number out of range");
    if (!frac) {
        /* Exact integer: accumulate with an overflow check. */
        uint64_t acc = 0;
        int fits = 1;
        for (size_t i = (size_t)neg; i < n; i++) {
            uint64_t d = (uint64_t)(tmp[i] - '0');
            if (acc > (UINT64_MAX - d) / 10) {
                fits = 0;
                break;
            }
            acc = acc * 10 + d;
        }
        if (fits && (neg ? acc <= (uint64_t)INT64_MAX + 1 : acc <= (uint64_t)INT64_MAX)) {
            v->is_int = 1;
            v->i64 = neg ? (int64_t)(0 - acc) : (int64_t)acc;
        }
    }
    return DSK_OK;
}

static dsk_status parse_value(parser *p, dsk_json *v, int depth);

static dsk_status grow_items(parser *p, dsk_json *v, int *cap, int with_keys)
{
    if (v->n < *cap)
        return DSK_OK;
    int nc = *cap ? *cap * 2 : 8;
    dsk_json *ni = realloc(v->items, (size_t)nc * sizeof *ni);
    if (!ni)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->source);
    v->items = ni;
    if (with_keys) {
        char **nk = realloc(v->keys, (size_t)nc * sizeof *nk);
        if (!nk)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->source);
        v->keys = nk;
    }
    *cap = nc;
    return DSK_OK;
}

static dsk_status parse_array(parser *p, dsk_json *v, int depth)
{
    int cap = 0;
    v->type = DSK_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        return DSK_OK;
    }
    for (;;) {
        DSK_TRY(grow_items(p, v, &cap, 0));
        dsk_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        v->n++;
        skip_ws(p);
        DSK_TRY(parse_value(p, item, depth + 1));
        skip_ws(p);
        int c = peek(p);
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            if (peek(p) == ']')
                return perr(p, "trailing comma in array");
            continue;
        }
        if (c == ']') {
            p->pos++;
            return DSK_OK;
        }
        return perr(p, "expected ',' or ']' in array");
    }
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Duplicate keys, found by sorting (index files hold ~100k keys: no quadratic scan). */
static dsk_status check_duplicates(parser *p, const dsk_json *v)
{
    if (v->n < 2)
        return DSK_OK;
    char **k = malloc((size_t)v->n * sizeof *k);
    if (!k)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->source);
    memcpy(k, v->keys, (size_t)v->n * sizeof *k);
    qsort(k, (size_t)v->n, sizeof *k, cmp_key);
    dsk_status s = DSK_OK;
    for (int i = 1; i < v->n && s == DSK_OK; i++)
        if (!strcmp(k[i - 1], k[i]))
            s = dsk_fail(DSK_ERR_FORMAT, "%s: object starting at line %d: duplicate key \"%s\"",
                         p->source, v->line, k[i]);
    free(k);
    return s;
}

static dsk_status parse_object(parser *p, dsk_json *v, int depth)
{
    int cap = 0;
    v->type = DSK_JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return DSK_OK;
    }
    for (;;) {
        skip_ws(p);
        if (peek(p) != '"')
            return perr(p, peek(p) == '}' ? "trailing comma in object" : "expected a string key");
        DSK_TRY(grow_items(p, v, &cap, 1));
        char *key;
        size_t klen;
        DSK_TRY(parse_string(p, &key, &klen));
        if (strlen(key) != klen) {
            free(key);
            return perr(p, "object key contains \\u0000");
        }
        dsk_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        v->keys[v->n] = key;
        v->n++;
        skip_ws(p);
        if (peek(p) != ':')
            return perr(p, "expected ':' after an object key");
        p->pos++;
        skip_ws(p);
        DSK_TRY(parse_value(p, item, depth + 1));
        skip_ws(p);
        int c = peek(p);
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == '}') {
            p->pos++;
            return check_duplicates(p, v);
        }
        return perr(p, "expected ',' or '}' in object");
    }
}

static dsk_status parse_value(parser *p, dsk_json *v, int depth)
{
    if (depth > DSK_JSON_MAX_DEPTH)
        return perr(p, "nesting deeper than 64 levels");
    v->line = p->line;
    int c = peek(p);
    switch (c) {
    case '{': return parse_object(p, v, depth);
    case '[': return parse_array(p, v, depth);
    case '"':
        v->type = DSK_JSON_STRING;
        return parse_string(p, &v->str, &v->str_len);
    case 't':
    case 'f':
        if (match_word(p, "true") || match_word(p, "false")) {
            v->type = DSK_JSON_BOOL;
            v->boolean = c == 't';
            return DSK_OK;
        }
        return perr(p, "invalid literal (expected true or false)");
    case 'n':
        if (match_word(p, "null")) {
            v->type = DSK_JSON_NULL;
            return DSK_OK;
        }
        return perr(p, "invalid literal (expected null)");
    case -1:
        return perr(p, "unexpected end of text (expected a value)");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
        return perr(p, "unexpected character (expected a value)");
    }
}

static void free_inner(dsk_json *v)
{
    free(v->str);
    for (int i = 0; i < v->n; i++) {
        free_inner(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void dsk_json_free(dsk_json *v)
{
    if (!v)
        return;
    free_inner(v);
    free(v);
}

dsk_status dsk_json_parse(const char *text, size_t len, const char *source, dsk_json **out)
{
    if (!out)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_json_parse: out is NULL");
    *out = NULL;
    if (!source)
        source = "<json>";
    if (!text && len)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_json_parse: text is NULL");
    parser p = {.s = text, .len = len, .source = source, .line = 1};
    dsk_json *v = calloc(1, sizeof *v);
    if (!v)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", source);
    skip_ws(&p);
    dsk_status s = parse_value(&p, v, 0);
    if (s == DSK_OK) {
        skip_ws(&p);
        if (p.pos != p.len)
            s = perr(&p, "unexpected text after the JSON value");
    }
    if (s != DSK_OK) {
        dsk_json_free(v);
        return s;
    }
    *out = v;
    return DSK_OK;
}

const dsk_json *dsk_json_get(const dsk_json *obj, const char *key)
{
    if (!obj || obj->type != DSK_JSON_OBJECT)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key))
            return &obj->items[i];
    return NULL;
}

const char *dsk_json_type_name(dsk_json_type t)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < 6 ? names[t] : "invalid";
}

dsk_status dsk_json_read_file(const char *path, char **text, int *missing)
{
    *text = NULL;
    if (missing) *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing && errno == ENOENT) *missing = 1;
        return dsk_fail(DSK_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - 1 - n, f)) > 0;) {
        n += r;
        if (n == cap - 1) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "reading '%s': out of memory", path);
    if (err) {
        free(buf);
        return dsk_fail(DSK_ERR_IO, "error reading '%s'", path);
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return dsk_fail(DSK_ERR_FORMAT, "%s: contains a NUL byte (not a JSON text)", path);
    }
    *text = buf;
    return DSK_OK;
}
