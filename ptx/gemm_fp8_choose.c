/* ptx/gemm_fp8_choose.c: which tile configuration an FP8 GEMM runs on a GPU device.
 * Order (issue 6): the tuning cache's measured winner first, the tuner's model second
 * (autotune/, dsk_tune_choose), and the emitter's default pick (gemm_fp8_pick.c) when
 * the device is no GPU the tuner's table knows or DSK_GEMM_TILE overrides. Choices are
 * memoized per process: the model is deterministic, and a forward pass asks for the same
 * shapes again and again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "dsk/ptx.h"
#include "dsk/tune.h"
#include "ptx/gpu_driver.h"

typedef struct memo_entry {
    char gpu[32];
    dsk_gemm_layout layout;
    int64_t rows, n, k, groups;
    dsk_gemm_tile tile;
} memo_entry;

#define MEMO_SIZE 256
static memo_entry memo[MEMO_SIZE];
static int memo_used, memo_next;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

/* The tuner's GPU for a device: emu:NAME -> NAME; a real device by its description. */
static const dsk_gpu *device_gpu(const dsk_device *dev)
{
    const dsk_gpu *g = NULL;
    const char *name = dev->props.name;
    if (!strncmp(name, "emu:", 4) && dsk_gpu_find(name + 4, &g) == DSK_OK) return g;
    if (dsk_gpu_find(dev->props.description, &g) == DSK_OK) return g;
    dsk_clear_error();
    return NULL;
}

static int verbose_dispatch(void)
{
    const char *v = getenv("DSK_VERBOSE");
    return v && strstr(v, "dispatch");
}

/* The TMA-store variants need D's rows (and groups) at 16-byte multiples for D's tensor map
 * (bf16 D; f32 D keeps register stores in those kernels): otherwise the same tile with
 * register stores runs. */
static void fit_tma_store(const dsk_device *dev, const dsk_gemm_fp8_args *a, dsk_gemm_tile *t)
{
    const dsk_tensor *d = a->d;
    if (!t->tma_store || !d || d->dtype != DSK_BF16 || d->rank < 2)
        return;
    int64_t ldd = d->stride[d->rank - 2], gd = d->rank == 3 ? d->stride[0] : 0;
    if (ldd % 8 == 0 && gd % 8 == 0 && (uintptr_t)d->data % 16 == 0)
        return;
    t->tma_store = 0;
    if (verbose_dispatch()) {
        char name[96];
        fprintf(stderr, "dsk dispatch: gemm_fp8 on %s: D's rows are not 16-byte multiples, %s with register stores\n",
                dev->props.name, dsk_gemm_tile_name(t, name, sizeof name));
    }
}

dsk_status dsk_ptx_gemm_choose(const dsk_device *dev, dsk_arch arch, const dsk_gemm_fp8_args *a, const char *driver,
                               dsk_gemm_tile *out)
{
    int masked = a->layout == DSK_GEMM_MASKED;
    int64_t rows = masked ? a->a->shape[1] : a->a->shape[0];
    int64_t n = a->b->shape[a->b->rank - 2], k = a->a->shape[a->a->rank - 1];
    int64_t groups = a->layout == DSK_GEMM_DENSE ? 1 : a->b->shape[0];
    const char *env = getenv("DSK_GEMM_TILE");
    const dsk_gpu *g = (env && *env) ? NULL : device_gpu(dev);
    if (!g)
        return dsk_ptx_gemm_pick(arch, a->layout, rows, n, k, groups, dev->props.num_sms, dev->props.smem_per_block,
                                 out);

    pthread_mutex_lock(&memo_lock);
    for (int i = 0; i < memo_used; i++) {
        memo_entry *e = &memo[i];
        if (e->layout == a->layout && e->rows == rows && e->n == n && e->k == k && e->groups == groups &&
            !strcmp(e->gpu, g->name)) {
            *out = e->tile;
            pthread_mutex_unlock(&memo_lock);
            fit_tma_store(dev, a, out);
            return DSK_OK;
        }
    }
    pthread_mutex_unlock(&memo_lock);

    dsk_tune_gemm_shape s = {rows, n, k, (int)groups, a->layout};
    int from_cache = 0;
    char warn[256];
    dsk_gemm_tile t;
    dsk_status st = dsk_tune_choose(g, driver, &s, &t, &from_cache, warn, sizeof warn);
    if (st != DSK_OK || t.arch != arch || t.layout != a->layout) {
        if (verbose_dispatch())
            fprintf(stderr, "dsk dispatch: gemm_fp8 %lldx%lldx%lld on %s: tuner declined (%s); default pick\n",
                    (long long)rows, (long long)n, (long long)k, dev->props.name,
                    st != DSK_OK ? dsk_last_error() : "arch or layout differs");
        dsk_clear_error();
        DSK_TRY(dsk_ptx_gemm_pick(arch, a->layout, rows, n, k, groups, dev->props.num_sms,
                                  dev->props.smem_per_block, &t));
    } else if (verbose_dispatch()) {
        char name[96];
        fprintf(stderr, "dsk dispatch: gemm_fp8 %lldx%lldx%lld on %s: %s from the %s%s%s\n", (long long)rows,
                (long long)n, (long long)k, dev->props.name, dsk_gemm_tile_name(&t, name, sizeof name),
                from_cache ? "tuning cache" : "tuner's model (predicted)", warn[0] ? "; " : "", warn);
    }
    pthread_mutex_lock(&memo_lock);
    memo_entry *e = &memo[memo_used < MEMO_SIZE ? memo_used++ : (memo_next++ % MEMO_SIZE)];
    snprintf(e->gpu, sizeof e->gpu, "%s", g->name);
    e->layout = a->layout;
    e->rows = rows;
    e->n = n;
    e->k = k;
    e->groups = groups;
    e->tile = t;
    pthread_mutex_unlock(&memo_lock);
    fit_tma_store(dev, a, &t);
    *out = t;
    return DSK_OK;
}
