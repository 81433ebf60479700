/* core/status.c: status names and the thread-local error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "dsk/dsk.h"
#include "core/error.h"

static _Thread_local char dsk_err_msg[1024];

const char *dsk_last_error(void) { return dsk_err_msg; }

void dsk_clear_error(void) { dsk_err_msg[0] = '\0'; }

const char *dsk_version(void) { return DSK_VERSION_STRING; }

const char *dsk_status_name(dsk_status s)
{
    switch (s) {
    case DSK_OK: return "DSK_OK";
    case DSK_ERR_INVALID_ARG: return "DSK_ERR_INVALID_ARG";
    case DSK_ERR_UNSUPPORTED: return "DSK_ERR_UNSUPPORTED";
    case DSK_ERR_OUT_OF_MEMORY: return "DSK_ERR_OUT_OF_MEMORY";
    case DSK_ERR_IO: return "DSK_ERR_IO";
    case DSK_ERR_FORMAT: return "DSK_ERR_FORMAT";
    case DSK_ERR_DEVICE: return "DSK_ERR_DEVICE";
    case DSK_ERR_NOT_FOUND: return "DSK_ERR_NOT_FOUND";
    case DSK_ERR_EMU: return "DSK_ERR_EMU";
    case DSK_ERR_CHECK: return "DSK_ERR_CHECK";
    case DSK_ERR_INTERNAL: return "DSK_ERR_INTERNAL";
    }
    return "DSK_ERR_UNKNOWN";
}

dsk_status dsk_fail(dsk_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dsk_err_msg, sizeof dsk_err_msg, fmt, ap);
    va_end(ap);
    return s;
}

dsk_status dsk_fail_prefix(dsk_status s, const char *fmt, ...)
{
    char prev[sizeof dsk_err_msg];
    memcpy(prev, dsk_err_msg, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dsk_err_msg, sizeof dsk_err_msg, fmt, ap);
    va_end(ap);
    /* the earlier message is appended as context and may be cut at the buffer's end */
    if (n >= 0 && (size_t)n < sizeof dsk_err_msg &&
        snprintf(dsk_err_msg + n, sizeof dsk_err_msg - (size_t)n, ": %s", prev) < 0)
        dsk_err_msg[n] = '\0';
    return s;
}
