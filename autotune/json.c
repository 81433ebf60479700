/* autotune/json.c: the JSON reader of json.h (recursive descent, depth-limited). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "json.h"

#define MAX_DEPTH 64

typedef struct parser {
    const char *s, *name;
    int line, depth;
    dsk_status st;
} parser;

static dsk_json *fail(parser *p, const char *what)
{
    if (p->st == DSK_OK) {
        char near[24] = "end of text";
        if (*p->s) snprintf(near, sizeof near, "'%.12s'", p->s);
        for (char *c = near; *c; c++)
            if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
        p->st = dsk_fail(DSK_ERR_FORMAT, "%s:%d: %s (at %s)", p->name, p->line, what, near);
    }
    return NULL;
}

static void skip_ws(parser *p)
{
    for (;; p->s++) {
        if (*p->s == '\n') p->line++;
        else if (*p->s != ' ' && *p->s != '\t' && *p->s != '\r') return;
    }
}

static dsk_json *node(parser *p, dsk_json_type t)
{
    dsk_json *j = calloc(1, sizeof *j);
    if (!j) {
        if (p->st == DSK_OK) p->st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", p->name);
        return NULL;
    }
    j->type = t;
    j->line = p->line;
    return j;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *parse_string(parser *p)
{
    /* p->s at the opening quote. */
    const char *s = p->s + 1;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    if (!out) return (char *)fail(p, "out of memory");
    for (;;) {
        unsigned char c = (unsigned char)*s;
        if (n + 4 >= cap) {
            char *no = realloc(out, cap *= 2);
            if (!no) {
                free(out);
                return (char *)fail(p, "out of memory");
            }
            out = no;
        }
        if (c == 0 || c == '\n') {
            free(out);
            p->s = s;
            return (char *)fail(p, "unterminated string");
        }
        if (c < 0x20) {
            free(out);
            p->s = s;
            return (char *)fail(p, "control character in string");
        }
        if (c == '"') break;
        if (c != '\\') {
            out[n++] = (char)c;
            s++;
            continue;
        }
        s++;
        char e = *s++;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned v = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(s[i]);
                if (h < 0) {
                    free(out);
                    p->s = s;
                    return (char *)fail(p, "bad \\u escape");
                }
                v = v * 16 + (unsigned)h;
            }
            s += 4;
            if (v < 0x80) out[n++] = (char)v;
            else if (v < 0x800) {
                out[n++] = (char)(0xC0 | (v >> 6));
                out[n++] = (char)(0x80 | (v & 0x3F));
            } else {
                out[n++] = (char)(0xE0 | (v >> 12));
                out[n++] = (char)(0x80 | ((v >> 6) & 0x3F));
                out[n++] = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default:
            free(out);
            p->s = s - 1;
            return (char *)fail(p, "bad escape in string");
        }
    }
    out[n] = 0;
    p->s = s + 1;
    return out;
}

static dsk_json *parse_value(parser *p);

static dsk_json *parse_container(parser *p, int obj)
{
    dsk_json *j = node(p, obj ? DSK_JSON_OBJECT : DSK_JSON_ARRAY);
    if (!j) return NULL;
    if (++p->depth > MAX_DEPTH) {
        dsk_json_free(j);
        return fail(p, "nesting deeper than 64");
    }
    p->s++;
    skip_ws(p);
    dsk_json **tail = &j->child;
    char close = obj ? '}' : ']';
    if (*p->s == close) {
        p->s++;
        p->depth--;
        return j;
    }
    for (;;) {
        char *key = NULL;
        if (obj) {
            skip_ws(p);
            if (*p->s != '"') {
                dsk_json_free(j);
                return fail(p, "expected a member name in double quotes");
            }
            key = parse_string(p);
            if (!key) {
                dsk_json_free(j);
                return NULL;
            }
            skip_ws(p);
            if (*p->s != ':') {
                free(key);
                dsk_json_free(j);
                return fail(p, "expected ':' after member name");
            }
            p->s++;
        }
        dsk_json *v = parse_value(p);
        if (!v) {
            free(key);
            dsk_json_free(j);
            return NULL;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        skip_ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        if (*p->s == close) {
            p->s++;
            p->depth--;
            return j;
        }
        dsk_json_free(j);
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static dsk_json *parse_value(parser *p)
{
    skip_ws(p);
    char c = *p->s;
    if (c == '{' || c == '[') return parse_container(p, c == '{');
    if (c == '"') {
        dsk_json *j = node(p, DSK_JSON_STRING);
        if (!j) return NULL;
        j->str = parse_string(p);
        if (!j->str) {
            free(j);
            return NULL;
        }
        return j;
    }
    static const struct { const char *w; dsk_json_type t; double v; } lits[] = {
        {"true", DSK_JSON_BOOL, 1}, {"false", DSK_JSON_BOOL, 0}, {"null", DSK_JSON_NULL, 0}};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].w);
        if (!strncmp(p->s, lits[i].w, n)) {
            dsk_json *j = node(p, lits[i].t);
            if (!j) return NULL;
            j->num = lits[i].v;
            p->s += n;
            return j;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        errno = 0;
        double v = strtod(p->s, &end);
        if (end == p->s || errno == ERANGE) return fail(p, "bad number");
        dsk_json *j = node(p, DSK_JSON_NUMBER);
        if (!j) return NULL;
        j->num = v;
        p->s = end;
        return j;
    }
    return fail(p, "expected a value");
}

dsk_status dsk_json_parse(const char *text, const char *source_name, dsk_json **out)
{
    *out = NULL;
    parser p = {text, source_name ? source_name : "<json>", 1, 0, DSK_OK};
    dsk_json *j = parse_value(&p);
    if (!j) return p.st;
    skip_ws(&p);
    if (*p.s) {
        dsk_json_free(j);
        fail(&p, "text after the JSON value");
        return p.st;
    }
    *out = j;
    return DSK_OK;
}

void dsk_json_free(dsk_json *j)
{
    while (j) {
        dsk_json *n = j->next;
        dsk_json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = n;
    }
}

const dsk_json *dsk_json_get(const dsk_json *j, const char *key)
{
    if (!j || j->type != DSK_JSON_OBJECT) return NULL;
    for (const dsk_json *c = j->child; c; c = c->next)
        if (c->key && !strcmp(c->key, key)) return c;
    return NULL;
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
