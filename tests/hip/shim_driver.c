/* tests/hip/shim_driver.c: see shim_driver.h. */
#include <stdio.h>
#include <string.h>
#include "core/error.h"
#include "hip/gemm_fp8_gfx942_configs.def"
#include "hip/shim/hip_shim.h"
#include "tests/hip/shim_driver.h"

typedef void (*gemm_kernel)(const unsigned char *, const float *, const unsigned char *, const float *, void *,
                            const int *, dsk_hip_gemm_dims);

#define X(bm, bn, wm, wn)                                                                                      \
    void gemm_fp8_gfx942_##bm##x##bn##_w##wm##x##wn(const unsigned char *, const float *, const unsigned char *, \
                                                     const float *, void *, const int *, dsk_hip_gemm_dims);
DSK_HIP_GEMM_CONFIGS(X)
#undef X

static const struct {
    const char *name;
    gemm_kernel fn;
} kernels[] = {
#define X(bm, bn, wm, wn) {"gemm_fp8_gfx942_" #bm "x" #bn "_w" #wm "x" #wn, gemm_fp8_gfx942_##bm##x##bn##_w##wm##x##wn},
    DSK_HIP_GEMM_CONFIGS(X)
#undef X
};

static long launches;

typedef struct call {
    gemm_kernel fn;
    void **args;
} call;

/* Every GPU thread runs this: the kernel with the arguments as hipModuleLaunchKernel passes them. */
static void trampoline(void *p)
{
    call *c = p;
    c->fn(*(const unsigned char **)c->args[0], *(const float **)c->args[1], *(const unsigned char **)c->args[2],
          *(const float **)c->args[3], *(void **)c->args[4], *(const int **)c->args[5],
          *(const dsk_hip_gemm_dims *)c->args[6]);
}

static dsk_status shim_d2h(void *ctx, void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
    return DSK_OK;
}

static dsk_status shim_launch(void *ctx, const dsk_hip_gemm_config *c, const unsigned grid[3], void **args)
{
    call cl = {NULL, args};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(kernels[i].name, c->name))
            cl.fn = kernels[i].fn;
    if (!cl.fn)
        return dsk_fail(DSK_ERR_NOT_FOUND, "shim: no host build of kernel %s", c->name);
    char err[512];
    if (dsk_shim_launch(grid, dsk_hip_gemm_config_threads(c), trampoline, &cl, err, sizeof err))
        return dsk_fail(DSK_ERR_DEVICE, "shim: %s", err);
    launches++;
    return DSK_OK;
}

static const dsk_hip_driver driver = {.name = "cpu simt shim", .copy_d2h = shim_d2h, .launch = shim_launch};

const dsk_hip_driver *dsk_test_hip_shim_driver(void) { return &driver; }
long dsk_test_hip_shim_launches(void) { return launches; }
