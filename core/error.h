/* core/error.h: setting the thread-local error message (internal). */
#ifndef DSK_CORE_ERROR_H
#define DSK_CORE_ERROR_H

#include "dsk/status.h"

/* Formats the message and returns s, so callers write `return dsk_fail(...)`. */
dsk_status dsk_fail(dsk_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends context to the current message: "ctx: <previous message>". Returns s. */
dsk_status dsk_fail_prefix(dsk_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Propagate a failing status. */
#define DSK_TRY(expr)                          \
    do {                                       \
        dsk_status dsk_try_s_ = (expr);        \
        if (dsk_try_s_ != DSK_OK) return dsk_try_s_; \
    } while (0)

#endif
