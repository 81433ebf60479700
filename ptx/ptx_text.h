/* ptx/ptx_text.h: a growable text buffer the PTX emitters write into (internal).
 * Allocation failures are sticky: the emitter keeps writing, the final check reports. */
#ifndef DSK_PTX_TEXT_H
#define DSK_PTX_TEXT_H

#include <stddef.h>

typedef struct dsk_ptx_text {
    char *s;
    size_t len, cap;
    int oom;       /* an allocation failed */
    int labels;    /* next fresh label number */
} dsk_ptx_text;

/* Appends printf-formatted text. */
void dsk_ptx_put(dsk_ptx_text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh label number (the emitters name labels L<n>). */
int dsk_ptx_label(dsk_ptx_text *b);
void dsk_ptx_text_free(dsk_ptx_text *b);

#endif
