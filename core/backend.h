/* core/backend.h: the backend interface (internal). One backend = one const struct of
 * function pointers; core/registry.c lists them all. An op entry left NULL means "not on
 * this backend": the op then returns DSK_ERR_UNSUPPORTED naming the backend (or, for
 * host-memory backends that set fallback_cpu, runs on the cpu backend's entry).
 *
 * Op entries receive arguments already checked by the op's dsk_*_check. */
#ifndef DSK_CORE_BACKEND_H
#define DSK_CORE_BACKEND_H

#include "dsk/dsk.h"

typedef struct dsk_backend dsk_backend;

struct dsk_device {
    const dsk_backend *backend;
    dsk_device_props props;
    void *priv;                 /* the backend's own state */
    char last_kernel[96];       /* written by op entries: the kernel that ran */
};

struct dsk_backend {
    const char *name;           /* "cpu", "emu", "cuda", "hip": the prefix of device names */
    /* Can this backend open a device here? 1 yes; 0 no, with the reason in why. */
    int (*available)(char *why, size_t why_len);
    /* Opens the device named by arg (the part after "name:", "" if none): fills
     * dev->props and dev->priv. */
    dsk_status (*open)(dsk_device *dev, const char *arg);
    void (*close)(dsk_device *dev);

    dsk_status (*alloc)(dsk_device *dev, size_t bytes, void **ptr);
    void (*free)(dsk_device *dev, void *ptr);
    dsk_status (*upload)(dsk_device *dev, void *dst, const void *src, size_t bytes);
    dsk_status (*download)(dsk_device *dev, void *dst, const void *src, size_t bytes);
    dsk_status (*sync)(dsk_device *dev);

    /* When 1, device memory is host memory and op entries left NULL run on the cpu
     * backend instead of failing (the emu backend; `dsk info` says so). */
    int fallback_cpu;

    /* Ops; each optional (NULL: unsupported here). */
    dsk_status (*gemm_fp8)(dsk_device *dev, const dsk_gemm_fp8_args *a);
    dsk_status (*quant_act_fp8)(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s);
    dsk_status (*mla_decode)(dsk_device *dev, const dsk_mla_decode_args *a);
    dsk_status (*mla_prefill)(dsk_device *dev, const dsk_mla_prefill_args *a);
    dsk_status (*moe_route)(dsk_device *dev, const dsk_moe_route_args *a);
    dsk_status (*moe_permute)(dsk_device *dev, const dsk_moe_permute_args *a);
    dsk_status (*moe_combine)(dsk_device *dev, const dsk_moe_combine_args *a);
    dsk_status (*rmsnorm)(dsk_device *dev, const dsk_rmsnorm_args *a);
    dsk_status (*rope)(dsk_device *dev, const dsk_rope_args *a);
    dsk_status (*swiglu)(dsk_device *dev, const dsk_swiglu_args *a);
};

/* The backends (defined in their folders; listed in core/registry.c). */
extern const dsk_backend dsk_backend_cpu;
extern const dsk_backend dsk_backend_emu;
extern const dsk_backend dsk_backend_cuda;
extern const dsk_backend dsk_backend_hip;


/* The cpu backend's device, opened once, for fallbacks from host-memory backends. */
dsk_device *dsk_cpu_device_shared(void);

/* Picks the device that runs an op: dev itself when its backend has the entry
 * (has != 0), the shared cpu device when dev's backend falls back to the cpu, or NULL
 * after setting DSK_ERR_UNSUPPORTED naming fn and the backend. Typical use:
 *   dsk_device *rd = dsk_op_device(dev, dev->backend->gemm_fp8 != NULL, "dsk_gemm_fp8");
 *   if (!rd) return DSK_ERR_UNSUPPORTED;
 *   return rd->backend->gemm_fp8(rd, args);                                          */
dsk_device *dsk_op_device(dsk_device *dev, int has, const char *fn);

void dsk_unsupported_op(const dsk_device *dev, const char *fn);

/* Records the kernel name an op ran. */
void dsk_device_set_kernel(dsk_device *dev, const char *name);

#endif
