/* ptx/gpu_driver_emu.c: the GPU driver table over dsk's PTX emulator (dsk/emu.h), and the emu
 * backend's FP8 GEMM entry. The emulated GPU takes the device's properties (arch, SMs,
 * shared memory); caller buffers the emulator did not allocate are registered for the
 * launch, so host tensors work as device tensors (host-memory device). ctx = the dsk_device.
 *
 * The emulator's entry points are strong references: a static link of libdsk must pull emu/'s
 * objects in (weak references would let the archive drop them and every launch would fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "ptx/gpu_driver.h"


typedef struct emu_fn {
    dsk_emu_module *m;
    char name[96];
} emu_fn;

static int drv_cache_key(void *ctx) { return 0; }

static dsk_status drv_module_load(void *ctx, const char *ptx, const char *source_name, void **module)
{
    dsk_emu_module *m = NULL;
    DSK_TRY(dsk_emu_module_load(ptx, source_name, &m));
    *module = m;
    return DSK_OK;
}

static void drv_module_unload(void *ctx, void *module) { dsk_emu_module_free(module); }

static dsk_status drv_function_get(void *ctx, void *module, const char *kernel, void **fn)
{
    if (!dsk_emu_module_has_kernel(module, kernel))
        return dsk_fail(DSK_ERR_NOT_FOUND, "emu: module has no kernel '%s'", kernel);
    emu_fn *f = calloc(1, sizeof *f);
    if (!f)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "emu: function handle");
    f->m = module;
    snprintf(f->name, sizeof f->name, "%s", kernel);
    *fn = f;  /* lives as long as the process-wide module cache */
    return DSK_OK;
}

static dsk_status drv_mem_alloc(void *ctx, size_t bytes, void **p)
{
    return dsk_emu_alloc(bytes ? bytes : 1, p);
}
static void drv_mem_free(void *ctx, void *p) { dsk_emu_free(p); }

static dsk_status drv_copy(void *ctx, void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
    return DSK_OK;
}

static dsk_status drv_mem_use(void *ctx, const void *ptr, size_t bytes, int *registered)
{
    *registered = 0;
    if (!ptr || !bytes)
        return DSK_OK;
    /* already known to the emulator (its allocation, or another view of a registered buffer):
     * nothing to do; the emulator still checks every access against what it knows */
    if (dsk_emu_register((void *)ptr, bytes) == DSK_OK)
        *registered = 1;
    else
        dsk_clear_error();
    return DSK_OK;
}

static void drv_mem_release(void *ctx, const void *ptr) { dsk_emu_unregister((void *)ptr); }

static dsk_status drv_launch(void *ctx, void *fn, const dsk_gpu_launch *c, void **params)
{
    const dsk_device_props *p = &((dsk_device *)ctx)->props;
    emu_fn *f = fn;
    dsk_emu_target tg = {.sm_version = !strncmp(p->arch, "sm_89", 5) ? 89 : 90,
                         .has_sm90a = !strcmp(p->arch, "sm_90a"),
                         .num_sms = p->num_sms,
                         .smem_per_block = p->smem_per_block,
                         .smem_per_sm = p->smem_per_sm,
                         .max_threads_per_block = 1024};
    dsk_emu_launch_cfg cfg;
    memcpy(cfg.grid, c->grid, sizeof cfg.grid);
    memcpy(cfg.block, c->block, sizeof cfg.block);
    memcpy(cfg.cluster, c->cluster, sizeof cfg.cluster);
    cfg.dynamic_smem = c->dynamic_smem;
    return dsk_emu_launch(f->m, f->name, &cfg, params, &tg, NULL, NULL);
}

static dsk_status drv_tmap(void *ctx, dsk_tensor_map *map, dsk_tma_dtype dtype, int rank, void *addr,
                           const uint64_t *dims, const uint64_t *strides, const uint32_t *box,
                           const uint32_t *elem_strides, dsk_tma_swizzle swizzle)
{
    return dsk_emu_tensor_map_encode_tiled(map, dtype, rank, addr, dims, strides, box, elem_strides, swizzle);
}

static const dsk_gpu_driver emu_driver = {
    .name = "emu",
    .cache_key = drv_cache_key,
    .mem_use = drv_mem_use,
    .mem_release = drv_mem_release,
    .module_load = drv_module_load,
    .module_unload = drv_module_unload,
    .function_get = drv_function_get,
    .mem_alloc = drv_mem_alloc,
    .mem_free = drv_mem_free,
    .copy_h2d = drv_copy,
    .copy_d2h = drv_copy,
    .launch = drv_launch,
    .tensor_map_encode = drv_tmap,
};

const dsk_gpu_driver *dsk_gpu_driver_emu(void) { return &emu_driver; }

dsk_status dsk_ptx_gemm_fp8_emu(dsk_device *dev, const dsk_gemm_fp8_args *a)
{
    dsk_arch arch;
    if (dsk_ptx_arch_parse(dev->props.arch, &arch))
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_gemm_fp8: %s (%s) has no dsk FP8 kernel (sm_90a and sm_89 only)",
                        dev->props.name, dev->props.arch);
    dsk_gemm_tile t;
    DSK_TRY(dsk_ptx_gemm_choose(dev, arch, a, "emu", &t));
    return dsk_ptx_gemm_fp8_launch(&emu_driver, dev, &t, a);
}
