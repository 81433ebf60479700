/* ptx/ptx_text.c: the emitters' text buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "ptx/ptx_text.h"

void dsk_ptx_put(dsk_ptx_text *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = b->s ? vsnprintf(b->s + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t need = b->len + (n > 0 ? (size_t)n : 0) + 1;
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < need)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

int dsk_ptx_label(dsk_ptx_text *b) { return b->labels++; }

void dsk_ptx_text_free(dsk_ptx_text *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}
