/* dsk/emu.h: the PTX emulator's host API (emu/).
 *
 * Mirrors the CUDA driver API closely enough that a kernel's host code is the same for
 * the cuda and emu backends apart from the function table: load a module from PTX text,
 * look a kernel up, launch it with cuLaunchKernel-style parameters, allocate memory the
 * emulator knows the bounds of, and encode a TMA tensor map with cuTensorMapEncodeTiled's
 * parameters.
 *
 * Global addresses inside kernels are host addresses. Every global access must fall
 * inside memory allocated with dsk_emu_alloc or registered with dsk_emu_register;
 * anything else stops the kernel with DSK_ERR_EMU and a message naming the kernel,
 * PTX line, CTA and thread. */
#ifndef DSK_EMU_H
#define DSK_EMU_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsk_emu_module dsk_emu_module;

/* The properties the emulated GPU has (taken from autotune's GPU table for emu:GPU). */
typedef struct dsk_emu_target {
    int sm_version;          /* 90 for sm_90/sm_90a, 89 for sm_89 */
    int has_sm90a;           /* wgmma, setmaxnreg allowed */
    int num_sms;
    size_t smem_per_block;   /* max static + dynamic shared memory of one CTA */
    size_t smem_per_sm;
    int max_threads_per_block;
} dsk_emu_target;

/* The FP8 tensor-core accumulation model. */
typedef enum dsk_emu_fp8_acc {
    DSK_EMU_FP8_ACC_IDEAL = 0,   /* exact f32 sums (default) */
    DSK_EMU_FP8_ACC_HOPPER       /* Hopper's reduced-precision FP8 MMA accumulation */
} dsk_emu_fp8_acc;

typedef struct dsk_emu_options {
    dsk_emu_fp8_acc fp8_acc;
    uint64_t schedule_seed;      /* 0: deterministic round-robin; else seeded random warp interleaving */
    int trace_thread;            /* -1: none; else global linear thread id to trace to trace_out */
    void *trace_out;             /* FILE* for the trace (NULL: stderr) */
} dsk_emu_options;

typedef struct dsk_emu_stats {
    uint64_t thread_instructions;  /* executed instructions summed over active lanes */
    uint64_t warp_instructions;
    double seconds;
} dsk_emu_stats;

/* Parses and decodes PTX text. `source_name` is used in error messages (file name).
 * A malformed or unsupported line fails with DSK_ERR_FORMAT naming file, line and text. */
dsk_status dsk_emu_module_load(const char *ptx_text, const char *source_name,
                               dsk_emu_module **out);
void dsk_emu_module_free(dsk_emu_module *m);
/* 1 if the module has an .entry with this name. */
int dsk_emu_module_has_kernel(const dsk_emu_module *m, const char *kernel);
/* The kernel's parameter count (-1 if no such kernel) and the byte size of parameter i
 * (0 if out of range), as declared in the PTX. */
int dsk_emu_kernel_param_count(const dsk_emu_module *m, const char *kernel);
size_t dsk_emu_kernel_param_size(const dsk_emu_module *m, const char *kernel, int i);
/* Name of the i-th .entry of the module (NULL past the end). */
const char *dsk_emu_module_kernel_name(const dsk_emu_module *m, int i);

typedef struct dsk_emu_launch_cfg {
    unsigned grid[3], block[3], cluster[3];  /* cluster {0,0,0} or {1,1,1}: no clusters */
    size_t dynamic_smem;
} dsk_emu_launch_cfg;

/* Launches kernel and runs it to completion. params: one pointer per kernel parameter
 * to its value (as cuLaunchKernel's kernelParams); sizes come from the PTX declaration.
 * target: the emulated GPU (NULL: sm_90a with H800 limits). opts may be NULL. */
dsk_status dsk_emu_launch(dsk_emu_module *m, const char *kernel, const dsk_emu_launch_cfg *cfg,
                          void **params, const dsk_emu_target *target,
                          const dsk_emu_options *opts, dsk_emu_stats *stats);

/* Memory the emulator may touch. alloc returns zeroed, 256-byte-aligned host memory. */
dsk_status dsk_emu_alloc(size_t bytes, void **ptr);
void dsk_emu_free(void *ptr);
dsk_status dsk_emu_register(void *ptr, size_t bytes);
void dsk_emu_unregister(void *ptr);

/* TMA tensor map: same parameters and meaning as cuTensorMapEncodeTiled (CUDA driver
 * API), written into a 128-byte, 64-byte-aligned opaque object the emulated
 * cp.async.bulk.tensor reads. */
typedef struct dsk_tensor_map { _Alignas(64) uint64_t opaque[16]; } dsk_tensor_map;

typedef enum dsk_tma_dtype {  /* values equal CUtensorMapDataType's */
    DSK_TMA_UINT8 = 0, DSK_TMA_UINT16 = 1, DSK_TMA_UINT32 = 2, DSK_TMA_INT32 = 3,
    DSK_TMA_UINT64 = 4, DSK_TMA_INT64 = 5, DSK_TMA_FLOAT16 = 6, DSK_TMA_FLOAT32 = 7,
    DSK_TMA_FLOAT64 = 8, DSK_TMA_BFLOAT16 = 9
} dsk_tma_dtype;

typedef enum dsk_tma_swizzle {  /* values equal CUtensorMapSwizzle's */
    DSK_TMA_SWIZZLE_NONE = 0, DSK_TMA_SWIZZLE_32B = 1, DSK_TMA_SWIZZLE_64B = 2,
    DSK_TMA_SWIZZLE_128B = 3
} dsk_tma_swizzle;

/* rank 1..5; global_dim[rank] elements; global_strides[rank-1] bytes for dims 1..rank-1
 * (multiples of 16); box_dim[rank] elements (<= 256; box_dim[0]*elemsize a multiple of
 * 16, and <= the swizzle span when swizzled); element_strides[rank] (1 = dense).
 * Out-of-bounds elements are filled with zero. Errors name the offending parameter. */
dsk_status dsk_emu_tensor_map_encode_tiled(dsk_tensor_map *map, dsk_tma_dtype dtype, int rank,
                                           void *global_address, const uint64_t *global_dim,
                                           const uint64_t *global_strides,
                                           const uint32_t *box_dim,
                                           const uint32_t *element_strides,
                                           dsk_tma_swizzle swizzle);

/* The emulated GPU named gpu ("h800", "h20", "h100", "h200", "4090", "l20", "a100" or any
 * name/alias of the autotuner's GPU table, dsk/tune.h; case insensitive): its target and
 * device properties (either may be NULL), taken from that table. Unknown names:
 * DSK_ERR_NOT_FOUND listing the known ones; GPUs the emulator cannot take on (AMD,
 * sm_100a): DSK_ERR_UNSUPPORTED. */
dsk_status dsk_emu_target_for(const char *gpu, dsk_emu_target *target, dsk_device_props *props);

/* Runs the emulator's built-in self tests; writes a report line per test to out
 * (a FILE*, NULL for none). Returns DSK_OK when all pass. */
dsk_status dsk_emu_selftest(void *out, int *passed, int *failed);

#ifdef __cplusplus
}
#endif
#endif
