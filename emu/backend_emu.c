/* emu/backend_emu.c: the emu backend: devices "emu:GPU" (emu:h800, emu:h20, emu:h100,
 * emu:h200, emu:4090, emu:l20, emu:a100: any NVIDIA GPU of the tuner's table up to sm_90a)
 * run dsk's PTX through the emulator with that GPU's properties. Device memory is host memory allocated through dsk_emu_alloc, so
 * kernels' global accesses are bounds-checked. Ops without an emulated kernel yet run on
 * the cpu backend (fallback_cpu); `dsk info` says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/backend.h"
#include "core/error.h"
#include "dsk/emu.h"
#include "dsk/tune.h"
#include "ptx/gpu_driver.h"

/* The emulated GPU's properties come from the autotuner's GPU table (autotune/, dsk/tune.h:
 * the same numbers the model and `dsk gpus` use, each with its source). The emulator takes
 * on NVIDIA GPUs of sm_70 .. sm_90a; sm_100a (tcgen05) and AMD GPUs are refused. */
dsk_status dsk_emu_target_for(const char *gpu, dsk_emu_target *target, dsk_device_props *props)
{
    if (!gpu) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_target_for: gpu is NULL");
    const dsk_gpu *g = NULL;
    DSK_TRY(dsk_gpu_find(gpu, &g));
    int sm = 0;
    if (strncmp(g->arch, "sm_", 3) == 0) sm = atoi(g->arch + 3);
    if (sm < 70 || sm > 90)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_emu_target_for: the PTX emulator cannot take on %s (%s): "
                        "NVIDIA sm_70 .. sm_90a only", g->name, g->arch);
    int sm90a = strcmp(g->arch, "sm_90a") == 0;
    if (target) {
        target->sm_version = sm;
        target->has_sm90a = sm90a;
        target->num_sms = (int)g->sms.v;
        target->smem_per_block = (size_t)(g->smem_block_kb.v * 1024);
        target->smem_per_sm = (size_t)(g->smem_sm_kb.v * 1024);
        target->max_threads_per_block = g->threads_block.v > 0 ? (int)g->threads_block.v : 1024;
    }
    if (props) {
        snprintf(props->description, sizeof props->description, "%s (emulated)", g->description);
        snprintf(props->arch, sizeof props->arch, "%s", g->arch);
        props->num_sms = (int)g->sms.v;
        props->smem_per_block = (size_t)(g->smem_block_kb.v * 1024);
        props->smem_per_sm = (size_t)(g->smem_sm_kb.v * 1024);
        props->regs_per_sm = (int)g->regs_sm.v;
        props->mem_bytes = (size_t)(g->mem_gb.v * 1e9);
        props->host_memory = 1;
    }
    return DSK_OK;
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
