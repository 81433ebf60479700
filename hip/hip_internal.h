/* hip/hip_internal.h: the hip backend's internals shared by its host code, the backend and
 * the tests: the GEMM tile configurations, the embedded gfx942 code objects, and the small
 * launch table the GEMM host code is written against (the real HIP runtime in
 * hip/backend_hip.c; the CPU SIMT shim in tests/hip). */
#ifndef DSK_HIP_INTERNAL_H
#define DSK_HIP_INTERNAL_H

#include <stddef.h>
#include "dsk/dsk.h"
#include "hip/gemm_fp8_gfx942.h"

/* ---- tile configurations (hip/gemm_fp8_gfx942_configs.def), largest BLOCK_M first ---- */
typedef struct dsk_hip_gemm_config {
    const char *name;        /* kernel symbol, e.g. "gemm_fp8_gfx942_128x128_w2x2" */
    int bm, bn, wm, wn;      /* BLOCK_M, BLOCK_N, waves along M and N */
} dsk_hip_gemm_config;

int dsk_hip_gemm_config_count(void);
const dsk_hip_gemm_config *dsk_hip_gemm_config_get(int i);
const dsk_hip_gemm_config *dsk_hip_gemm_config_find(const char *name);
unsigned dsk_hip_gemm_config_threads(const dsk_hip_gemm_config *c);
size_t dsk_hip_gemm_config_lds(const dsk_hip_gemm_config *c);

/* ---- code objects compiled for gfx942 at build time (hip/hip.cmake) ----
 * None when clang-19 was not found at build time. */
typedef struct dsk_hip_code_object {
    const char *kernel;             /* the one kernel it holds */
    const unsigned char *data;      /* ELF (amdgcn-amd-amdhsa--gfx942) */
    size_t size;
} dsk_hip_code_object;

int dsk_hip_code_object_count(void);
const dsk_hip_code_object *dsk_hip_code_object_get(int i);
const dsk_hip_code_object *dsk_hip_code_object_find(const char *kernel);

/* ---- the launch table ----
 * Kernel arguments travel as hipModuleLaunchKernel's kernelParams: args[i] points at the
 * i-th argument (a, a_scale, b, b_scale, d, idx, dims; see hip/gemm_fp8_gfx942.h). */
typedef struct dsk_hip_driver {
    const char *name;
    /* Copies bytes of device memory to the host (index checks of the grouped layouts). */
    dsk_status (*copy_d2h)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Runs kernel c with grid (grid[0], grid[1], grid[2]) and the config's block size. */
    dsk_status (*launch)(void *ctx, const dsk_hip_gemm_config *c, const unsigned grid[3], void **args);
} dsk_hip_driver;

/* Checks the arguments, picks a configuration (want: that one, or NULL for the default
 * choice: the smallest BLOCK_M covering the rows; for the contiguous layout the largest
 * BLOCK_M the segments are aligned to), and launches. *ran (optional) receives the
 * configuration that ran. Tensors' data are pointers the driver understands. */
dsk_status dsk_hip_gemm_fp8_launch(const dsk_hip_driver *drv, void *ctx, const dsk_hip_gemm_config *want,
                                   const dsk_gemm_fp8_args *g, const dsk_hip_gemm_config **ran);

#endif
