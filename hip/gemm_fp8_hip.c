/* hip/gemm_fp8_hip.c: host code of the gfx942 FP8 GEMM, written once against the launch
 * table of hip/hip_internal.h (the HIP runtime, or the CPU SIMT shim in the tests):
 * the checks a launch would trip on, the choice of tile configuration, the parameter block
 * (hip/gemm_fp8_gfx942.h) and the launch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "hip/gemm_fp8_gfx942_configs.def"
#include "hip/hip_internal.h"

static const char *FN = "dsk_gemm_fp8";

#define X(bm, bn, wm, wn) {"gemm_fp8_gfx942_" #bm "x" #bn "_w" #wm "x" #wn, bm, bn, wm, wn},
static const dsk_hip_gemm_config configs[] = {DSK_HIP_GEMM_CONFIGS(X)};
#undef X
#define NCONFIGS ((int)(sizeof configs / sizeof configs[0]))

int dsk_hip_gemm_config_count(void) { return NCONFIGS; }
const dsk_hip_gemm_config *dsk_hip_gemm_config_get(int i) { return i >= 0 && i < NCONFIGS ? &configs[i] : NULL; }

const dsk_hip_gemm_config *dsk_hip_gemm_config_find(const char *name)
{
    for (int i = 0; name && i < NCONFIGS; i++)
        if (!strcmp(configs[i].name, name))
            return &configs[i];
    return NULL;
}

unsigned dsk_hip_gemm_config_threads(const dsk_hip_gemm_config *c)
{
    return (unsigned)DSK_HIP_GEMM_THREADS(c->wm, c->wn);
}

size_t dsk_hip_gemm_config_lds(const dsk_hip_gemm_config *c)
{
    return (size_t)DSK_HIP_GEMM_LDS_BYTES(c->bm, c->bn);
}

/* Contiguous layout: every BLOCK_M block of rows holds one group's rows, then -1 rows. */
static dsk_status check_segments(const int32_t *idx, int64_t M, int64_t G, int bm, const char *kernel)
{
    for (int64_t blk = 0; blk < M; blk += bm) {
        int32_t first = idx[blk];
        for (int64_t r = blk; r < M && r < blk + bm; r++) {
            if (idx[r] < -1 || idx[r] >= G)
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m_indices[%lld] = %d, expected -1 or a group in [0, %lld)",
                                FN, (long long)r, idx[r], (long long)G);
            if (idx[r] >= 0 && idx[r] != first)
                return dsk_fail(DSK_ERR_INVALID_ARG,
                                "%s: m_indices: rows %lld and %lld of one BLOCK_M = %d block of %s belong to groups "
                                "%d and %d; the hip kernels need every group's segment to start at a multiple of "
                                "BLOCK_M (pad segments with -1 rows)",
                                FN, (long long)blk, (long long)r, bm, kernel, first, idx[r]);
        }
    }
    return DSK_OK;
}

/* m_indices or masked_m, copied to the host for the checks. */
static dsk_status fetch_index(const dsk_hip_driver *drv, void *ctx, const dsk_tensor *t, const char *what,
                              int32_t **out)
{
    int64_t n = t->shape[0];
    if (n > 1 && t->stride[0] != 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has stride %lld, the hip kernels need a contiguous [%lld] i32",
                        FN, what, (long long)t->stride[0], (long long)n);
    int32_t *h = malloc((size_t)n * sizeof *h);
    if (!h)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: host copy of %s (%lld entries)", FN, what, (long long)n);
    dsk_status s = drv->copy_d2h(ctx, h, t->data, (size_t)n * sizeof *h);
    if (s) {
        free(h);
        return dsk_fail_prefix(s, "%s: reading %s", FN, what);
    }
    *out = h;
    return DSK_OK;
}

#define LIM_ROWS ((int64_t)0x7fffffff - 256) /* row indices plus a tile stay within int */

dsk_status dsk_hip_gemm_fp8_launch(const dsk_hip_driver *drv, void *ctx, const dsk_hip_gemm_config *want,
                                   const dsk_gemm_fp8_args *g, const dsk_hip_gemm_config **ran)
{
    if (!drv)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: driver is NULL", FN);
    DSK_TRY(dsk_gemm_fp8_check(FN, g));
    const int masked = g->layout == DSK_GEMM_MASKED, contig = g->layout == DSK_GEMM_CONTIGUOUS;
    const dsk_tensor *a = g->a, *b = g->b, *as = g->a_scale, *bs = g->b_scale;
    dsk_tensor *d = g->d;
    const int64_t G = masked ? a->shape[0] : contig ? b->shape[0] : 1;
    const int64_t rows = masked ? a->shape[1] : a->shape[0];
    const int64_t K = a->shape[a->rank - 1], N = b->shape[b->rank - 2];
    const int64_t lda = a->stride[a->rank - 2], ldb = b->stride[b->rank - 2];

    if (K % 16)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: K = %lld, the hip kernels need K %% 16 == 0 (16-byte loads; pad K with zeros)", FN,
                        (long long)K);
    int64_t ga = masked ? a->stride[0] : 0, gb = masked || contig ? b->stride[0] : 0;
    if ((uintptr_t)a->data % 16 || (uintptr_t)b->data % 16 || lda % 16 || ldb % 16 || ga % 16 || gb % 16)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: a and b need 16-byte aligned data with row and group strides that are multiples of 16 "
                        "bytes (given a stride %lld, b stride %lld, group strides %lld and %lld)",
                        FN, (long long)lda, (long long)ldb, (long long)ga, (long long)gb);
    if (rows > LIM_ROWS || N > LIM_ROWS || K > LIM_ROWS)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: rows = %lld, N = %lld or K = %lld beyond the kernels' 32-bit indices",
                        FN, (long long)rows, (long long)N, (long long)K);
    if (G > 65535)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %lld groups, the masked grid holds at most 65535", FN, (long long)G);
    if (rows < 1 || G < 1)
        return DSK_OK; /* nothing to compute */

    /* configuration; the grouped layouts' index values are checked on a host copy */
    const dsk_hip_gemm_config *c = want;
    int32_t *idx = NULL;
    dsk_status s = DSK_OK;
    if (contig || masked)
        DSK_TRY(fetch_index(drv, ctx, contig ? g->m_indices : g->masked_m, contig ? "m_indices" : "masked_m", &idx));
    if (masked) {
        for (int64_t i = 0; i < G && !s; i++)
            if (idx[i] < 0 || idx[i] > rows)
                s = dsk_fail(DSK_ERR_INVALID_ARG, "%s: masked_m[%lld] = %d, expected 0..max_m = %lld", FN,
                             (long long)i, idx[i], (long long)rows);
    }
    if (!s && !c && contig) {
        for (int i = 0; i < NCONFIGS && !c; i++)
            if (check_segments(idx, rows, G, configs[i].bm, configs[i].name) == DSK_OK)
                c = &configs[i];
        if (!c) /* none fits: report against the smallest BLOCK_M */
            s = check_segments(idx, rows, G, configs[NCONFIGS - 1].bm, configs[NCONFIGS - 1].name);
    } else if (!s && contig) {
        s = check_segments(idx, rows, G, c->bm, c->name);
    }
    free(idx);
    DSK_TRY(s);
    if (!c) {
        c = &configs[0];
        for (int i = 0; i < NCONFIGS; i++)
            if (configs[i].bm >= rows)
                c = &configs[i];
    }

    int64_t gx = (rows + c->bm - 1) / c->bm, gy = (N + c->bn - 1) / c->bn;
    if (gy > 65535)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: N = %lld needs %lld column blocks of %s, the grid holds 65535", FN,
                        (long long)N, (long long)gy, c->name);

    dsk_hip_gemm_dims p;
    memset(&p, 0, sizeof p);
    p.lda = lda;
    p.ldb = ldb;
    p.ldd = d->stride[d->rank - 2];
    p.sa_m = as->stride[as->rank - 2];
    p.sa_k = as->stride[as->rank - 1];
    p.sb_n = bs->stride[bs->rank - 2];
    p.sb_k = bs->stride[bs->rank - 1];
    p.ga = ga;
    p.gsa = masked ? as->stride[0] : 0;
    p.gb = gb;
    p.gsb = masked || contig ? bs->stride[0] : 0;
    p.gd = masked ? d->stride[0] : 0;
    p.m = (int)rows;
    p.n = (int)N;
    p.k = (int)K;
    p.layout = (int)g->layout;
    p.d_f32 = d->dtype == DSK_F32;

    const void *pa = a->data, *psa = as->data, *pb = b->data, *psb = bs->data;
    void *pd = d->data;
    const void *pidx = contig ? g->m_indices->data : masked ? g->masked_m->data : NULL;
    void *args[7] = {&pa, &psa, &pb, &psb, &pd, &pidx, &p};
    unsigned grid[3] = {(unsigned)gx, (unsigned)gy, masked ? (unsigned)G : 1u};
    s = drv->launch(ctx, c, grid, args);
    if (s)
        return dsk_fail_prefix(s, "%s: kernel %s (%s)", FN, c->name, drv->name);
    if (ran)
        *ran = c;
    return DSK_OK;
}
