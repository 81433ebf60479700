/* ptx/gemm_fp8_host.c: host code of the FP8 GEMM kernels, written once against the GPU
 * driver table (ptx/gpu_driver.h) and so shared by the cuda and emu backends: argument checks
 * that a launch would trip on, scale-layout preparation, the per-process module cache,
 * TMA tensor maps (sm_90a), the parameter list (ptx/gemm_fp8_internal.h) and the launch. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "ptx/gemm_fp8_internal.h"
#include "ptx/gpu_driver.h"

static const char *FN = "dsk_gemm_fp8";

/* ---- module cache: (driver, key, kernel name) -> function ---- */
typedef struct cache_entry {
    const dsk_gpu_driver *drv;
    int key;
    char name[96];
    void *module, *fn;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache;
static int cache_len, cache_cap;

static dsk_status kernel_get(const dsk_gpu_driver *drv, void *ctx, const dsk_gemm_tile *t, void **fn)
{
    char name[96];
    dsk_gemm_tile_name(t, name, sizeof name);
    int key = drv->cache_key ? drv->cache_key(ctx) : 0;
    dsk_status s = DSK_OK;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < cache_len; i++)
        if (cache[i].drv == drv && cache[i].key == key && !strcmp(cache[i].name, name)) {
            *fn = cache[i].fn;
            pthread_mutex_unlock(&cache_lock);
            return DSK_OK;
        }
    char *ptx = NULL, entry[96];
    void *module = NULL;
    s = dsk_ptx_gemm_emit(t, &ptx, entry, sizeof entry);
    if (!s)
        s = drv->module_load(ctx, ptx, entry, &module);
    free(ptx);
    if (!s) {
        s = drv->function_get(ctx, module, entry, fn);
        if (s)
            drv->module_unload(ctx, module);
    }
    if (!s && cache_len == cache_cap) {
        int cap = cache_cap ? cache_cap * 2 : 16;
        cache_entry *c = realloc(cache, (size_t)cap * sizeof *c);
        if (!c) {
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: module cache", FN);
        } else {
            cache = c;
            cache_cap = cap;
        }
    }
    if (!s) {
        cache_entry *e = &cache[cache_len++];
        e->drv = drv;
        e->key = key;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->module = module;
        e->fn = *fn;
    }
    pthread_mutex_unlock(&cache_lock);
    return s;
}

/* ---- the launch ---- */
typedef struct temp_bufs {
    void *dev[4];
    int n;
    const void *reg[8];
    int nreg;
} temp_bufs;

static void temps_free(const dsk_gpu_driver *drv, void *ctx, temp_bufs *tb)
{
    for (int i = 0; i < tb->n; i++)
        drv->mem_free(ctx, tb->dev[i]);
    for (int i = 0; i < tb->nreg; i++)
        drv->mem_release(ctx, tb->reg[i]);
    tb->n = tb->nreg = 0;
}

static dsk_status temp_alloc(const dsk_gpu_driver *drv, void *ctx, temp_bufs *tb, size_t bytes, void **p)
{
    DSK_TRY(drv->mem_alloc(ctx, bytes, p));
    tb->dev[tb->n++] = *p;
    return DSK_OK;
}

/* Bytes a strided tensor spans (the last element's offset + 1, times the element size). */
static size_t span_bytes(const dsk_tensor *t)
{
    int64_t off = 0;
    for (int i = 0; i < t->rank; i++)
        off += (t->shape[i] - 1) * t->stride[i];
    return (size_t)(off + 1) * dsk_dtype_size(t->dtype);
}

static dsk_status use_tensor(const dsk_gpu_driver *drv, void *ctx, temp_bufs *tb, const dsk_tensor *t)
{
    if (!t || !drv->mem_use)
        return DSK_OK;
    int reg = 0;
    DSK_TRY(drv->mem_use(ctx, t->data, span_bytes(t), &reg));
    if (reg)
        tb->reg[tb->nreg++] = t->data;
    return DSK_OK;
}

/* Downloads a strided tensor into a host array of its elements (row-major, logical order). */
static dsk_status download_elems(const dsk_gpu_driver *drv, void *ctx, const dsk_tensor *t, void **out)
{
    size_t es = dsk_dtype_size(t->dtype), span = span_bytes(t);
    int64_t n = dsk_tensor_numel(t);
    char *raw = malloc(span), *dst = malloc((size_t)n * es);
    if (!raw || !dst) {
        free(raw);
        free(dst);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: %zu bytes for a host copy", FN, span);
    }
    dsk_status s = drv->copy_d2h(ctx, raw, t->data, span);
    if (s) {
        free(raw);
        free(dst);
        return s;
    }
    int64_t idx[DSK_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->rank; d++)
            off += idx[d] * t->stride[d];
        memcpy(dst + (size_t)i * es, raw + (size_t)off * es, es);
        for (int d = t->rank - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    free(raw);
    *out = dst;
    return DSK_OK;
}

/* a_scale as the kernels read it: MN-major, (g, m, kb) at sa[g * gsa + kb * sa_ld + m] with
 * sa_ld % 4 == 0 (16-byte rows for TMA) and groups stacked (gsa = kbc * sa_ld). Used as
 * given when it already is; rejected when it is MN-major with a misaligned stride (the
 * caller chose a layout the kernels cannot read); otherwise (e.g. the reference's row-major
 * [M, kbc]) converted into a temporary MN-major copy. */
static dsk_status prepare_ascale(const dsk_gpu_driver *drv, void *ctx, temp_bufs *tb, const dsk_tensor *as,
                                 int64_t G, int64_t rows, int64_t kbc, void **ptr, uint32_t *sa_ld)
{
    int r = as->rank;  /* 2: [M, kbc]; 3: [G, max_m, kbc] */
    int64_t sm = as->stride[r - 2], sk = as->stride[r - 1];
    int stacked = r == 2 || G == 1 || as->stride[0] == kbc * sk;
    int aligned = (uintptr_t)as->data % 16 == 0;
    if (rows > 1 && sm == 1 && kbc > 1 && sk % 4)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: a_scale is MN-major with %lld elements between k-blocks; the GPU kernels need a "
                        "multiple of 4 (16-byte rows for TMA): use M_pad = round_up(M, 4)",
                        FN, (long long)sk);
    if (kbc > 1 && (sm == 1 || rows == 1) && sk % 4 == 0 && sk >= rows && stacked && aligned) {
        *ptr = as->data;
        *sa_ld = (uint32_t)sk;
        return DSK_OK;
    }
    int64_t ld;
    /* the MN-major copy: [G][kbc][ld] */
    ld = (rows + 3) / 4 * 4;
    float *host = NULL, *mn = calloc((size_t)(G * kbc * ld), sizeof(float));
    if (!mn)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: a_scale copy", FN);
    dsk_status s = download_elems(drv, ctx, as, (void **)&host);
    if (s) {
        free(mn);
        return s;
    }
    for (int64_t g = 0; g < G; g++)
        for (int64_t m = 0; m < rows; m++)
            for (int64_t k = 0; k < kbc; k++)
                mn[(g * kbc + k) * ld + m] = host[(g * rows + m) * kbc + k];
    free(host);
    size_t bytes = (size_t)(G * kbc * ld) * sizeof(float);
    s = temp_alloc(drv, ctx, tb, bytes, ptr);
    if (!s)
        s = drv->copy_h2d(ctx, *ptr, mn, bytes);
    free(mn);
    *sa_ld = (uint32_t)ld;
    return s;
}

/* Contiguous layout: each BLOCK_M block of rows holds one group (then padding rows of -1). */
static dsk_status check_segments(const dsk_gpu_driver *drv, void *ctx, const dsk_tensor *mi, int64_t G, int bm,
                                 const char *tile)
{
    int32_t *idx = NULL;
    DSK_TRY(download_elems(drv, ctx, mi, (void **)&idx));
    int64_t M = mi->shape[0];
    dsk_status s = DSK_OK;
    for (int64_t b = 0; b < M && !s; b += bm) {
        int32_t first = idx[b];
        for (int64_t r = b; r < M && r < b + bm; r++) {
            if (idx[r] < -1 || idx[r] >= G) {
                s = dsk_fail(DSK_ERR_INVALID_ARG, "%s: m_indices[%lld] = %d, expected -1 or a group in [0, %lld)", FN,
                             (long long)r, idx[r], (long long)G);
                break;
            }
            if (idx[r] >= 0 && idx[r] != first) {
                s = dsk_fail(DSK_ERR_INVALID_ARG,
                             "%s: m_indices: rows %lld and %lld of one BLOCK_M = %d block of %s belong to groups %d "
                             "and %d; GPU kernels need every group's segment to start at a multiple of BLOCK_M "
                             "(pad segments with -1 rows)",
                             FN, (long long)b, (long long)r, bm, tile, first, idx[r]);
                break;
            }
        }
    }
    free(idx);
    return s;
}

#define LIM31 ((int64_t)0x7fffffff)

dsk_status dsk_ptx_gemm_fp8_launch(const dsk_gpu_driver *drv, dsk_device *dev, const dsk_gemm_tile *t,
                                   const dsk_gemm_fp8_args *g)
{
    if (!drv || !dev || !t)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s is NULL", FN, !drv ? "driver" : !dev ? "dev" : "tile");
    DSK_TRY(dsk_gemm_fp8_check(FN, g));
    const dsk_device_props *pr = &dev->props;
    char name[96];
    dsk_gemm_tile_name(t, name, sizeof name);
    dsk_arch arch;
    if (dsk_ptx_arch_parse(pr->arch, &arch))
        return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: device %s has arch '%s', the PTX kernels target sm_90a and sm_89",
                        FN, pr->name, pr->arch);
    if (t->arch != arch)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: kernel %s is for %s, device %s is %s", FN, name,
                        dsk_ptx_arch_name(t->arch), pr->name, pr->arch);
    if (t->layout != g->layout)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: kernel %s is for layout %d, the arguments have layout %d", FN, name,
                        (int)t->layout, (int)g->layout);
    dsk_gemm_plan plan;
    DSK_TRY(dsk_ptx_gemm_plan(t, pr->smem_per_block, &plan));
    if (!plan.legal)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: kernel %s cannot run on %s (%zu bytes of shared memory per block): %s",
                        FN, name, pr->name, pr->smem_per_block, plan.reason);

    int masked = g->layout == DSK_GEMM_MASKED, contig = g->layout == DSK_GEMM_CONTIGUOUS;
    const dsk_tensor *a = g->a, *b = g->b, *as = g->a_scale, *bs = g->b_scale;
    dsk_tensor *d = g->d;
    int64_t G = masked || contig ? b->shape[0] : 1;
    int64_t rows = masked ? a->shape[1] : a->shape[0];          /* M, or max_m */
    int64_t K = a->shape[a->rank - 1], N = b->shape[b->rank - 2];
    int64_t kbc = K / 128;
    if (K % 128)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: K = %lld, the GPU kernels need K %% 128 == 0 (pad K with zeros to a multiple of 128)", FN,
                        (long long)K);
    int64_t lda = a->stride[a->rank - 2], ldb = b->stride[b->rank - 2];
    if (lda % 16 || ldb % 16 || (uintptr_t)a->data % 16 || (uintptr_t)b->data % 16)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: a and b need 16-byte aligned data and row strides that are multiples of 16 bytes "
                        "(given a stride %lld, b stride %lld)", FN, (long long)lda, (long long)ldb);
    if (rows < 1 || G < 1)
        return DSK_OK;  /* nothing to compute */
    /* u32 parameters, s32 TMA coordinates, grid limits */
    if (G * rows > LIM31 || G * N > LIM31 || K > LIM31 || d->stride[d->rank - 2] > 0xffffffffLL ||
        lda > 0xffffffffLL || ldb > 0xffffffffLL)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: G*rows = %lld, G*N = %lld, K = %lld or a row stride beyond what the kernels and a TMA "
                        "tensor map describe (2^31 - 1 rows, 2^32 - 1 strides)", FN, (long long)(G * rows),
                        (long long)(G * N), (long long)K);
    int64_t gx = (rows + t->block_m - 1) / t->block_m, gy = (N + t->block_n - 1) / t->block_n;
    if (gy + 1 > 65535 || G > 65535)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: grid %lld x %lld x %lld beyond the launch limits (y, z <= 65535)",
                        FN, (long long)gx, (long long)gy, (long long)G);
    if (arch == DSK_ARCH_SM90A) {
        if (masked && G > 1 && a->stride[0] != rows * lda)
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: sm_90a reads a through one tensor map over [G*max_m, K]: a's groups must be stacked "
                            "(stride[0] = max_m * stride[1] = %lld, given %lld)", FN, (long long)(rows * lda),
                            (long long)a->stride[0]);
        if ((masked || contig) && G > 1 && b->stride[0] != N * ldb)
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: sm_90a reads b through one tensor map over [G*N, K]: b's groups must be stacked "
                            "(stride[0] = N * stride[1] = %lld, given %lld)", FN, (long long)(N * ldb),
                            (long long)b->stride[0]);
    }

    void *ctx = dev;
    temp_bufs tb = {0};
    dsk_status s = DSK_OK;
    const dsk_tensor *uses[] = {a, b, as, bs, d, g->m_indices, g->masked_m};
    for (int i = 0; i < 7 && !s; i++)
        s = use_tensor(drv, ctx, &tb, uses[i]);
    void *sa_ptr = NULL, *idx_ptr = NULL;
    uint32_t sa_ld = 0;
    if (!s)
        s = prepare_ascale(drv, ctx, &tb, as, masked ? G : 1, rows, kbc, &sa_ptr, &sa_ld);  /* groups: masked only */
    if (!s && contig)
        s = check_segments(drv, ctx, g->m_indices, G, t->block_m, name);
    const dsk_tensor *it = contig ? g->m_indices : masked ? g->masked_m : NULL;
    if (!s && it) {
        if (it->stride[0] == 1 || it->shape[0] == 1) {
            idx_ptr = it->data;
        } else {
            void *host = NULL;
            s = download_elems(drv, ctx, it, &host);
            if (!s)
                s = temp_alloc(drv, ctx, &tb, (size_t)it->shape[0] * 4, &idx_ptr);
            if (!s)
                s = drv->copy_h2d(ctx, idx_ptr, host, (size_t)it->shape[0] * 4);
            free(host);
        }
    }
    void *fn = NULL;
    if (!s)
        s = kernel_get(drv, ctx, t, &fn);

    /* parameters (ptx/gemm_fp8_internal.h) */
    void *pa = a->data, *pb = b->data, *psa = sa_ptr, *psb = bs->data, *pd = d->data;
    uint32_t m32 = (uint32_t)rows, n32 = (uint32_t)N, k32 = (uint32_t)K, lda32 = (uint32_t)lda,
             ldb32 = (uint32_t)ldb, ldd32 = (uint32_t)d->stride[d->rank - 2];
    uint32_t sb_n = (uint32_t)bs->stride[bs->rank - 2], sb_k = (uint32_t)bs->stride[bs->rank - 1];
    uint64_t ga = masked ? (uint64_t)a->stride[0] : 0, gb = G > 1 ? (uint64_t)b->stride[0] : 0;
    uint64_t gsa = masked ? (uint64_t)(kbc * sa_ld) * 4 : 0, gsb = G > 1 ? (uint64_t)bs->stride[0] * 4 : 0;
    uint64_t gd = masked ? (uint64_t)d->stride[0] * dsk_dtype_size(d->dtype) : 0;
    uint32_t out_f32 = d->dtype == DSK_F32, groups32 = masked ? (uint32_t)G : 1;
    int dmap = arch == DSK_ARCH_SM90A && t->tma_store && !out_f32;
    if (!s && dmap && (ldd32 % 8 || (uintptr_t)d->data % 16 || gd % 16))
        s = dsk_fail(DSK_ERR_INVALID_ARG,
                     "%s: kernel %s writes D through a TMA tensor map: d needs 16-byte aligned data and row (and "
                     "group) strides that are multiples of 16 bytes (given row stride %u elements, group stride "
                     "%llu bytes)", FN, name, ldd32, (unsigned long long)gd);
    void *pdm = NULL;
    if (!s && arch == DSK_ARCH_SM90A) {
        /* TMA maps, copied to device memory (the kernels take their global addresses) */
        dsk_tensor_map maps[4];
        memset(maps, 0, sizeof maps);
        uint64_t da[2] = {(uint64_t)K, (uint64_t)(G > 1 && masked ? G * rows : rows)}, sta[1] = {(uint64_t)lda};
        uint64_t db[2] = {(uint64_t)K, (uint64_t)(G * N)}, stb[1] = {(uint64_t)ldb};
        uint64_t dsa[2] = {(uint64_t)rows, (uint64_t)(G * kbc)}, stsa[1] = {(uint64_t)sa_ld * 4};
        /* cluster 2: each CTA loads (and multicasts) half of the A tile */
        uint32_t boxa[2] = {128, (uint32_t)(t->block_m / t->cluster)}, boxb[2] = {128, (uint32_t)t->block_n};
        uint32_t boxsa[2] = {(uint32_t)t->block_m, 1}, es[2] = {1, 1};
        s = drv->tensor_map_encode(ctx, &maps[0], DSK_TMA_UINT8, 2, pa, da, sta, boxa, es, DSK_TMA_SWIZZLE_128B);
        if (!s)
            s = drv->tensor_map_encode(ctx, &maps[1], DSK_TMA_UINT8, 2, pb, db, stb, boxb, es, DSK_TMA_SWIZZLE_128B);
        if (!s)
            s = drv->tensor_map_encode(ctx, &maps[2], DSK_TMA_FLOAT32, 2, psa, dsa, stsa, boxsa, es,
                                       DSK_TMA_SWIZZLE_NONE);
        if (!s && dmap) {
            /* D (bf16): the dense layout stores whole tiles, the grouped ones single rows
             * (ptx/gemm_fp8_internal.h) */
            uint64_t dd[3] = {(uint64_t)N, (uint64_t)rows, (uint64_t)G}, std[2] = {(uint64_t)ldd32 * 2, gd};
            uint32_t boxd[3] = {(uint32_t)t->block_n, g->layout == DSK_GEMM_DENSE ? (uint32_t)t->block_m : 1, 1};
            uint32_t esd[3] = {1, 1, 1};
            s = drv->tensor_map_encode(ctx, &maps[3], DSK_TMA_BFLOAT16, masked ? 3 : 2, pd, dd, std, boxd, esd,
                                       DSK_TMA_SWIZZLE_NONE);
        }
        if (s)
            s = dsk_fail_prefix(s, "%s: tensor map of %s", FN, name);
        void *dmaps = NULL;
        if (!s)
            s = temp_alloc(drv, ctx, &tb, sizeof maps, &dmaps);
        if (!s)
            s = drv->copy_h2d(ctx, dmaps, maps, sizeof maps);
        pa = dmaps;
        pb = (char *)dmaps + sizeof(dsk_tensor_map);
        psa = (char *)dmaps + 2 * sizeof(dsk_tensor_map);
        if (dmap)
            pdm = (char *)dmaps + 3 * sizeof(dsk_tensor_map);
    }
    /* the launch contract (docs/KERNELS.md): one CTA per tile, or for persistent kernels
     * min(tiles, SMs) CTAs along x that walk the tiles; cluster 2: pairs of N tiles, one per
     * CTA of the cluster (the grid's y padded to even; persistent: units of two N tiles and
     * min(units, SMs / 2) clusters along x) */
    unsigned grid[3] = {(unsigned)gx, (unsigned)gy, masked ? (unsigned)G : 1}, cdim[3] = {1, 1, 1};
    if (t->cluster == 2 && !t->persistent) {
        grid[1] = (unsigned)((gy + 1) / 2 * 2);
        cdim[1] = 2;
    }
    if (t->persistent) {
        int64_t cl = t->cluster, units = gx * ((gy + cl - 1) / cl) * (masked ? G : 1);
        int64_t slots = pr->num_sms / cl > 0 ? pr->num_sms / cl : 1;
        grid[0] = (unsigned)((units < slots ? units : slots) * cl);
        grid[1] = grid[2] = 1;
        cdim[0] = (unsigned)cl;
    }
    if (!s) {
        void *params[DSK_GEMM_NPARAMS] = {&pa,    &pb,    &psa,   &psb,  &pd,   &idx_ptr, &m32,
                                          &n32,   &k32,   &lda32, &ldb32, &ldd32, &sa_ld,  &sb_n,
                                          &sb_k,  &ga,    &gb,    &gsa,  &gsb,  &gd,      &out_f32,
                                          &pdm,   &groups32};
        dsk_gpu_launch cfg = {.grid = {grid[0], grid[1], grid[2]},
                              .block = {(unsigned)plan.threads, 1, 1},
                              .cluster = {cdim[0], cdim[1], cdim[2]},
                              .dynamic_smem = plan.smem_dynamic_bytes};
        s = drv->launch(ctx, fn, &cfg, params);
        if (s)
            s = dsk_fail_prefix(s, "%s: kernel %s on %s", FN, name, pr->name);
    }
    temps_free(drv, ctx, &tb);
    if (!s)
        dsk_device_set_kernel(dev, name);
    return s;
}

dsk_status dsk_ptx_gemm_fp8_run(dsk_device *dev, const dsk_gemm_tile *t, const dsk_gemm_fp8_args *args)
{
    if (!dev)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dev is NULL", FN);
    if (!strcmp(dev->backend->name, "emu"))
        return dsk_ptx_gemm_fp8_launch(dsk_gpu_driver_emu(), dev, t, args);
    if (!strcmp(dev->backend->name, "cuda"))
        return dsk_ptx_gemm_fp8_launch(dsk_gpu_driver_cuda(), dev, t, args);
    return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: device %s is not an NVIDIA device (cuda or emu)", FN, dev->props.name);
}
