/* ptx/gpu_driver.h: the "GPU driver table" (internal): what the NVIDIA kernels' host code
 * needs from a driver, so the same host code runs a kernel on a real GPU (the cuda backend,
 * libcuda through dlopen) and in the PTX emulator (the emu backend). Only the table differs.
 *
 * ctx is the implementation's state (the dsk_device for both implementations here).
 * Device pointers are opaque void*; for the emulator they are host pointers. */
#ifndef DSK_PTX_GPU_DRIVER_H
#define DSK_PTX_GPU_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include "dsk/emu.h"     /* dsk_tensor_map, dsk_tma_dtype, dsk_tma_swizzle (types only) */
#include "dsk/device.h"
#include "dsk/ptx.h"

typedef struct dsk_gpu_launch {
    unsigned grid[3], block[3], cluster[3];  /* cluster {1,1,1}: none */
    size_t dynamic_smem;
} dsk_gpu_launch;

typedef struct dsk_gpu_driver {
    const char *name;  /* "cuda", "emu" */
    /* Modules are cached per process by (driver, cache_key(ctx), kernel name): the emulator's
     * modules serve every emu device (key 0), a CUDA module belongs to its device's context. */
    int (*cache_key)(void *ctx);
    /* Optional: make a caller's buffer usable by kernels for the launch (the emulator
     * registers host memory it did not allocate); release undoes it. */
    dsk_status (*mem_use)(void *ctx, const void *ptr, size_t bytes, int *registered);
    void (*mem_release)(void *ctx, const void *ptr);
    /* Module from PTX text (JIT for cuda, parse for emu); source_name for messages. */
    dsk_status (*module_load)(void *ctx, const char *ptx, const char *source_name, void **module);
    void (*module_unload)(void *ctx, void *module);
    dsk_status (*function_get)(void *ctx, void *module, const char *kernel, void **fn);
    dsk_status (*mem_alloc)(void *ctx, size_t bytes, void **dptr);
    void (*mem_free)(void *ctx, void *dptr);
    dsk_status (*copy_h2d)(void *ctx, void *dst, const void *src, size_t bytes);
    dsk_status (*copy_d2h)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Launches fn and waits for it (params as cuLaunchKernel's kernelParams). */
    dsk_status (*launch)(void *ctx, void *fn, const dsk_gpu_launch *cfg, void **params);
    /* cuTensorMapEncodeTiled's parameters (see dsk/emu.h). */
    dsk_status (*tensor_map_encode)(void *ctx, dsk_tensor_map *map, dsk_tma_dtype dtype, int rank, void *addr,
                                    const uint64_t *dims, const uint64_t *strides, const uint32_t *box,
                                    const uint32_t *elem_strides, dsk_tma_swizzle swizzle);
} dsk_gpu_driver;

/* The two implementations: ptx/backend_cuda.c and ptx/gpu_driver_emu.c. */
const dsk_gpu_driver *dsk_gpu_driver_cuda(void);
const dsk_gpu_driver *dsk_gpu_driver_emu(void);

/* Runs the FP8 GEMM with tile t on dev through drv (ctx = dev). Checks everything a launch
 * would trip on first: arch, K % 128, row strides and alignment, scale layouts, tensor-map
 * limits, the tile's shared memory against the device's. Records the kernel name on dev. */
dsk_status dsk_ptx_gemm_fp8_launch(const dsk_gpu_driver *drv, dsk_device *dev, const dsk_gemm_tile *t,
                                   const dsk_gemm_fp8_args *args);

/* The emu backend's gemm_fp8 entry (emu/backend_emu.c sets it): the default tile
 * (dsk_ptx_gemm_pick) through the emulator's driver table. */
dsk_status dsk_ptx_gemm_fp8_emu(dsk_device *dev, const dsk_gemm_fp8_args *a);

/* The tile an FP8 GEMM runs on dev: tuning cache, then the tuner's model, then the
 * default pick (ptx/gemm_fp8_choose.c). driver keys the tuning cache ("emu", or the
 * CUDA driver version). */
dsk_status dsk_ptx_gemm_choose(const dsk_device *dev, dsk_arch arch, const dsk_gemm_fp8_args *a, const char *driver,
                               dsk_gemm_tile *out);

#endif
