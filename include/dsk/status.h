/* dsk/status.h: status codes and the thread-local error message.
 *
 * Every fallible dsk call returns a dsk_status; results go through out-parameters.
 * On failure, dsk_last_error() returns a message that names the function, the
 * argument, what was expected and what was given, e.g.
 *   "dsk_gemm_fp8: b_scale has shape [4, 8], expected [ceil(N/128), ceil(K/128)] = [4, 16]"
 * The library never prints and never exits. */
#ifndef DSK_STATUS_H
#define DSK_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsk_status {
    DSK_OK = 0,
    DSK_ERR_INVALID_ARG,   /* an argument is null, of the wrong dtype/shape, out of range */
    DSK_ERR_UNSUPPORTED,   /* the op or configuration is not available on this backend */
    DSK_ERR_OUT_OF_MEMORY, /* an allocation failed */
    DSK_ERR_IO,            /* a file could not be opened, read or written */
    DSK_ERR_FORMAT,        /* a file or text is malformed (JSON, safetensors, PTX) */
    DSK_ERR_DEVICE,        /* a driver call failed, or the device is absent */
    DSK_ERR_NOT_FOUND,     /* a named thing (device, kernel, GPU, tensor) does not exist */
    DSK_ERR_EMU,           /* the PTX emulator stopped a kernel (strictness violation, trap) */
    DSK_ERR_CHECK,         /* a result failed its check against the reference */
    DSK_ERR_INTERNAL       /* an internal invariant broke: a dsk bug */
} dsk_status;

/* The message of the last failure on this thread ("" if none). Valid until the
 * next failing dsk call on the same thread. */
const char *dsk_last_error(void);

/* A short constant name for a status, e.g. "DSK_ERR_INVALID_ARG". */
const char *dsk_status_name(dsk_status s);

/* Clears the thread's last error message. */
void dsk_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
