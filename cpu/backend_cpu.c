/* cpu/backend_cpu.c: the cpu backend's function table. Device memory is host memory.
 * Op entries run the CPU kernels of cpu/, each picking its ISA level at run time
 * (cpu/cpu_internal.h); props.arch is the level chosen for this process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/backend.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "core/topo.h"
#include "cpu/cpu_internal.h"
#include "cpu/mla_internal.h"
#include "cpu/ops_internal.h"

static int cpu_available(char *why, size_t len) { return 1; }

static dsk_status cpu_open(dsk_device *dev, const char *arg)
{
    if (arg && *arg)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_open: cpu takes no index, got 'cpu:%s'", arg);
    int workers = dsk_threadpool_size(dsk_threadpool_default());
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    dsk_topo_info topo;
    const char *model = dsk_topo_query(&topo) == DSK_OK && topo.cpu_model[0] ? topo.cpu_model : "host CPU";
    const char *isa = dsk_cpu_isa_name(dsk_cpu_isa_active());
    snprintf(dev->props.description, sizeof dev->props.description, "%s (%d threads, %s)", model, workers, isa);
    snprintf(dev->props.arch, sizeof dev->props.arch, "%s", isa);
    dev->props.num_sms = workers;
    dev->props.mem_bytes = (size_t)pages * (size_t)psize;
    dev->props.host_memory = 1;
    return DSK_OK;
}

static dsk_status cpu_alloc(dsk_device *dev, size_t bytes, void **ptr)
{
    size_t n = (bytes + 63) & ~(size_t)63;
    *ptr = aligned_alloc(64, n ? n : 64);
    if (!*ptr) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "cpu: allocating %zu bytes", bytes);
    return DSK_OK;
}

static void cpu_free(dsk_device *dev, void *ptr) { free(ptr); }

static dsk_status cpu_copy(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    memmove(dst, src, bytes);
    return DSK_OK;
}

/* MLA prefill runs its reference on the cpu backend (no kernel yet). */
static dsk_status cpu_mla_prefill(dsk_device *dev, const dsk_mla_prefill_args *a)
{
    dsk_device_set_kernel(dev, "mla_prefill_cpu_ref");
    return dsk_mla_prefill_ref(a);
}

const dsk_backend dsk_backend_cpu = {
    .name = "cpu",
    .available = cpu_available,
    .open = cpu_open,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .gemm_fp8 = dsk_cpu_gemm_fp8,
    .quant_act_fp8 = dsk_cpu_quant_act,
    .mla_decode = dsk_cpu_mla_decode,
    .mla_prefill = cpu_mla_prefill,
    .moe_route = dsk_cpu_moe_route,
    .moe_permute = dsk_cpu_moe_permute,
    .moe_combine = dsk_cpu_moe_combine,
    .rmsnorm = dsk_cpu_rmsnorm,
    .rope = dsk_cpu_rope,
    .swiglu = dsk_cpu_swiglu,
};
