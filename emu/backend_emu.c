/* emu/backend_emu.c: the emu backend: devices "emu:GPU" (emu:h800, emu:h20, emu:h100,
 * emu:h200, emu:4090, emu:l20, emu:a100) run dsk's PTX through the emulator with that
 * GPU's properties. Device memory is host memory allocated through dsk_emu_alloc, so
 * kernels' global accesses are bounds-checked. Ops without an emulated kernel yet run on
 * the cpu backend (fallback_cpu); `dsk info` says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/backend.h"
#include "core/error.h"
#include "dsk/emu.h"
#include "ptx/gpu_driver.h"

/* The GPUs the emulator can take on: arch, SMs, shared memory (per block / per SM),
 * registers per SM, memory. Source: /work/shared/gpu_specs.md (CUDA tuning guides);
 * the autotuner's GPU table will replace this table (see dsk_emu_target_for). */
typedef struct emu_gpu {
    const char *name, *description;
    int sm_version, sm90a, num_sms;
    size_t smem_per_block, smem_per_sm;
    int regs_per_sm;
    size_t mem_bytes;
} emu_gpu;

#define GB (1000ull * 1000ull * 1000ull)
static const emu_gpu gpus[] = {
    {"h800", "NVIDIA H800 SXM5 (emulated)", 90, 1, 132, 232448, 233472, 65536, 80 * GB},
    {"h20", "NVIDIA H20 (emulated)", 90, 1, 78, 232448, 233472, 65536, 96 * GB},
    {"h100", "NVIDIA H100 SXM5 (emulated)", 90, 1, 132, 232448, 233472, 65536, 80 * GB},
    {"h200", "NVIDIA H200 SXM (emulated)", 90, 1, 132, 232448, 233472, 65536, 141 * GB},
    {"4090", "NVIDIA GeForce RTX 4090 (emulated)", 89, 0, 128, 101376, 102400, 65536, 24 * GB},
    {"l20", "NVIDIA L20 (emulated)", 89, 0, 92, 101376, 102400, 65536, 48 * GB},
    {"a100", "NVIDIA A100 SXM4 (emulated)", 80, 0, 108, 166912, 167936, 65536, 80 * GB},
};

dsk_status dsk_emu_target_for(const char *gpu, dsk_emu_target *target, dsk_device_props *props)
{
    if (!gpu) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_target_for: gpu is NULL");
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++) {
        const emu_gpu *g = &gpus[i];
        if (strcasecmp(gpu, g->name)) continue;
        if (target) {
            target->sm_version = g->sm_version;
            target->has_sm90a = g->sm90a;
            target->num_sms = g->num_sms;
            target->smem_per_block = g->smem_per_block;
            target->smem_per_sm = g->smem_per_sm;
            target->max_threads_per_block = 1024;
        }
        if (props) {
            snprintf(props->description, sizeof props->description, "%s", g->description);
            snprintf(props->arch, sizeof props->arch, "sm_%d%s", g->sm_version, g->sm90a ? "a" : "");
            props->num_sms = g->num_sms;
            props->smem_per_block = g->smem_per_block;
            props->smem_per_sm = g->smem_per_sm;
            props->regs_per_sm = g->regs_per_sm;
            props->mem_bytes = g->mem_bytes;
            props->host_memory = 1;
        }
        return DSK_OK;
    }
    return dsk_fail(DSK_ERR_NOT_FOUND, "dsk_emu_target_for: unknown GPU '%s', expected one of h800, h20, h100, h200, "
                    "4090, l20, a100", gpu);
}

/* The emulator's entry points, referenced from the backend so that linking the backend
 * out of the static library brings the whole emulator along (users of the emulator such as
 * ptx/gpu_driver_emu.c reference it weakly). */
static void *const emu_entry_points[] = {
    (void *)dsk_emu_module_load, (void *)dsk_emu_module_free, (void *)dsk_emu_module_has_kernel,
    (void *)dsk_emu_launch, (void *)dsk_emu_register, (void *)dsk_emu_unregister,
    (void *)dsk_emu_tensor_map_encode_tiled, (void *)dsk_emu_selftest};

static int emu_available(char *why, size_t why_len)
{
    for (size_t i = 0; i < sizeof emu_entry_points / sizeof emu_entry_points[0]; i++)
        if (!emu_entry_points[i]) {
            snprintf(why, why_len, "the emulator is incomplete in this build");
            return 0;
        }
    return 1;
}

static dsk_status emu_open(dsk_device *dev, const char *arg)
{
    dsk_emu_target *t = calloc(1, sizeof *t);
    if (!t) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "emu backend: out of memory");
    dsk_status s = dsk_emu_target_for(arg && *arg ? arg : "h800", t, &dev->props);
    if (s != DSK_OK) {
        free(t);
        return dsk_fail_prefix(s, "dsk_device_open(emu:%s)", arg);
    }
    dev->priv = t;
    return DSK_OK;
}

static void emu_close(dsk_device *dev)
{
    free(dev->priv);
    dev->priv = NULL;
}

static dsk_status emu_alloc_dev(dsk_device *dev, size_t bytes, void **ptr)
{
    (void)dev;
    return dsk_emu_alloc(bytes, ptr);
}

static void emu_free_dev(dsk_device *dev, void *ptr)
{
    (void)dev;
    dsk_emu_free(ptr);
}

static dsk_status emu_copy(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    (void)dev;
    if (bytes) memmove(dst, src, bytes);
    return DSK_OK;
}

const dsk_backend dsk_backend_emu = {
    .name = "emu",
    .available = emu_available,
    .open = emu_open,
    .close = emu_close,
    .alloc = emu_alloc_dev,
    .free = emu_free_dev,
    .upload = emu_copy,
    .download = emu_copy,
    .fallback_cpu = 1,
    .gemm_fp8 = dsk_ptx_gemm_fp8_emu,   /* the PTX GEMM, run in the emulator (ptx/) */
};
