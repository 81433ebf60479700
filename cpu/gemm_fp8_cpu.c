/* cpu/gemm_fp8_cpu.c: the cpu backend's FP8 block-scaled GEMM: the framework (layouts,
 * sub-problems, task split over the thread pool, ISA dispatch) and the portable C level.
 *
 * Variants, best first (DSK_VERBOSE=dispatch prints why each declines):
 *   gemm_fp8_cpu_avx512bf16   FP8 -> bf16 in registers (byte tables, vpermi2b), vdpbf16ps;
 *                             decode path for sub-problems of M <= 16 (weights streamed
 *                             once, N split over cores), prefill path otherwise (packing,
 *                             6x64 register-blocked microkernel, K/N/M cache blocking)
 *   gemm_fp8_cpu_avx2         FP8 -> f16 bits -> f32 (vcvtph2ps), FMA
 *   gemm_fp8_cpu_scalar       plain C, table decode
 * Every level accumulates each 128-wide K block in f32, multiplies it by
 * a_scale * b_scale in f32 and adds it to an f32 total (the reference does the same in
 * f64). A grouped layout becomes one sub-problem per group (contiguous: per run of
 * rows with one group index; masked: per group's first masked_m rows). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/cpu_internal.h"

/* ---- portable C level ---- */
static int scalar_tile(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const float *lut = dsk_cpu_e4m3_f32;
    int64_t nkb = (s->K + 127) / 128;
    for (int64_t m = m0; m < m1; m++) {
        const uint8_t *a = s->a + m * s->lda;
        for (int64_t n = n0; n < n1; n++) {
            const uint8_t *b = s->b + n * s->ldb;
            float tot = 0.0f;
            for (int64_t kb = 0; kb < nkb; kb++) {
                int64_t k0 = kb * 128, k1 = k0 + 128 < s->K ? k0 + 128 : s->K;
                float blk = 0.0f;
                for (int64_t k = k0; k < k1; k++) blk += lut[a[k]] * lut[b[k]];
                float sc = s->sa[m * s->sa_m + kb * s->sa_k] * s->sb[(n / 128) * s->sb_n + kb * s->sb_k];
                tot += blk * sc;
            }
            dsk_cpu_store_out(s->d, m * s->ldd + n, s->d_bf16, tot);
        }
    }
    return 0;
}

const cpu_gemm_kernels dsk_cpu_gemm_scalar = {
    .isa_name = "scalar", .isa = DSK_CPU_SCALAR,
    .decode_max_m = 0, .decode = NULL,
    .tile_m = 16, .tile_n = 32, .tile = scalar_tile,
};

/* ---- sub-problems from the layouts ---- */
typedef struct gemm_plan {
    const cpu_gemm_kernels *k;
    cpu_gemm_sub *subs;
    int64_t n_subs;
    int64_t *task_start;   /* [n_subs + 1]: first task of each sub-problem */
    int64_t *tiles_n;      /* [n_subs]: n tiles of each (tasks = m tiles x n tiles) */
    int64_t *tile_n;       /* [n_subs]: columns per n tile */
    int64_t *tile_m;       /* [n_subs]: rows per m tile (M for decode) */
    int *use_decode;       /* [n_subs] */
    _Atomic int failed;
} gemm_plan;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Task width for a level with a column grain: the multiple of the grain up to tile_n
 * whose task count spreads most evenly over the workers (cost: rounds of tasks times
 * columns per task, plus a small per-task charge). */
static int64_t balanced_tile_n(const cpu_gemm_kernels *k, int64_t M, int64_t N, int workers)
{
    const int64_t g = k->tile_n_grain, mt = cdiv(M, k->tile_m);
    int64_t best = k->tile_n, best_cost = -1;
    for (int64_t tn = k->tile_n; tn >= g; tn -= g) {
        int64_t tasks = mt * cdiv(N, tn), rounds = cdiv(tasks, workers);
        int64_t cost = rounds * (tn + 8);
        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            best = tn;
        }
    }
    return best;
}

static void plan_shape(gemm_plan *p, int64_t i, int workers)
{
    const cpu_gemm_sub *s = &p->subs[i];
    const cpu_gemm_kernels *k = p->k;
    if (k->decode && s->M <= k->decode_max_m) {
        /* Decode: all rows per task; N cut into about 4 tasks per worker (groups of 4
         * rows) so a lone sub-problem spreads over every core. */
        p->use_decode[i] = 1;
        p->tile_m[i] = s->M;
        int64_t want = (int64_t)workers * 4;
        int64_t tn = cdiv(s->N, want);
        tn = (tn + 3) & ~(int64_t)3;
        if (tn < 16) tn = 16;
        p->tile_n[i] = tn;
    } else {
        p->use_decode[i] = 0;
        p->tile_m[i] = k->tile_m;
        p->tile_n[i] = k->tile_n_grain ? balanced_tile_n(k, s->M, s->N, workers) : k->tile_n;
    }
    p->tiles_n[i] = cdiv(s->N, p->tile_n[i]);
}

/* pack_a tasks: panel t of the sub-problem holding it. */
typedef struct pack_plan {
    gemm_plan *g;
    int64_t *first;   /* [n_subs + 1]: first panel task of each sub-problem */
    char **dst;       /* [n_subs]: its packed buffer (NULL: not packed) */
} pack_plan;

static void pack_task(void *ctx, int64_t t, int worker)
{
    pack_plan *pp = ctx;
    int64_t lo = 0, hi = pp->g->n_subs - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (pp->first[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    if (pp->g->k->pack_a(&pp->g->subs[lo], pp->dst[lo], t - pp->first[lo])) atomic_store(&pp->g->failed, 1);
}

/* Runs pack_a over every prefill sub-problem into the calling thread's scratch. */
static dsk_status pack_all(gemm_plan *p, dsk_threadpool *pool)
{
    const cpu_gemm_kernels *k = p->k;
    pack_plan pp = {p, malloc(sizeof(int64_t) * (size_t)(p->n_subs + 1)), malloc(sizeof(char *) * (size_t)(p->n_subs + 1))};
    dsk_status st = DSK_OK;
    if (!pp.first || !pp.dst) {
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): packing plan");
        goto done;
    }
    size_t total = 0;
    pp.first[0] = 0;
    for (int64_t i = 0; i < p->n_subs; i++) {
        size_t b = p->use_decode[i] ? 0 : (k->pack_a_bytes(&p->subs[i]) + 63) & ~(size_t)63;
        pp.dst[i] = (char *)(uintptr_t)total;
        total += b;
        pp.first[i + 1] = pp.first[i] + (b ? cdiv(p->subs[i].M, k->pack_m) : 0);
    }
    if (!total) goto done;
    char *buf = dsk_cpu_scratch(4, total);
    if (!buf) {
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): packed activations (%zu bytes)", total);
        goto done;
    }
    for (int64_t i = 0; i < p->n_subs; i++) {
        pp.dst[i] = buf + (uintptr_t)pp.dst[i];
        if (!p->use_decode[i]) p->subs[i].apk = pp.dst[i];
    }
    dsk_threadpool_run(pool, pp.first[p->n_subs], pack_task, &pp);
    if (atomic_load(&p->failed))
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): per-worker scratch allocation failed");
done:
    free(pp.first);
    free(pp.dst);
    return st;
}

static void gemm_task(void *ctx, int64_t t, int worker)
{
    gemm_plan *p = ctx;
    int64_t lo = 0, hi = p->n_subs - 1;
    while (lo < hi) {   /* the sub-problem holding task t */
        int64_t mid = (lo + hi + 1) / 2;
        if (p->task_start[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    const cpu_gemm_sub *s = &p->subs[lo];
    int64_t local = t - p->task_start[lo];
    int64_t mt = local / p->tiles_n[lo], nt = local % p->tiles_n[lo];
    int64_t n0 = nt * p->tile_n[lo], n1 = n0 + p->tile_n[lo] < s->N ? n0 + p->tile_n[lo] : s->N;
    int rc;
    if (p->use_decode[lo]) {
        rc = p->k->decode(s, n0, n1);
    } else {
        int64_t m0 = mt * p->tile_m[lo], m1 = m0 + p->tile_m[lo] < s->M ? m0 + p->tile_m[lo] : s->M;
        rc = p->k->tile(s, m0, m1, n0, n1);
    }
    if (rc) atomic_store(&p->failed, 1);
}

static cpu_gemm_sub sub_from(const dsk_gemm_fp8_args *a, int64_t g, const uint8_t *abase, int64_t lda,
                             const float *sa, int64_t sa_m, int64_t sa_k, void *d, int64_t ldd, int64_t M)
{
    const dsk_tensor *b = a->b, *sb = a->b_scale;
    int grouped = a->layout != DSK_GEMM_DENSE;
    cpu_gemm_sub s = {0};
    s.a = abase; s.lda = lda;
    s.sa = sa; s.sa_m = sa_m; s.sa_k = sa_k;
    s.b = (const uint8_t *)b->data + (grouped ? g * b->stride[0] : 0);
    s.ldb = b->stride[grouped ? 1 : 0];
    s.sb = (const float *)sb->data + (grouped ? g * sb->stride[0] : 0);
    s.sb_n = sb->stride[grouped ? 1 : 0];
    s.sb_k = sb->stride[grouped ? 2 : 1];
    s.d = d; s.ldd = ldd; s.d_bf16 = a->d->dtype == DSK_BF16;
    s.M = M;
    s.N = b->shape[grouped ? 1 : 0];
    s.K = b->shape[grouped ? 2 : 1];
    return s;
}

/* Fills p->subs (malloc'd); returns the count, or -1 when out of memory. */
static int64_t build_subs(const dsk_gemm_fp8_args *a, cpu_gemm_sub **out)
{
    const dsk_tensor *A = a->a, *SA = a->a_scale, *D = a->d;
    size_t esz = D->dtype == DSK_BF16 ? 2 : 4;
    cpu_gemm_sub *subs;
    int64_t n = 0;
    if (a->layout == DSK_GEMM_DENSE) {
        subs = malloc(sizeof *subs);
        if (!subs) return -1;
        if (A->shape[0] > 0)
            subs[n++] = sub_from(a, 0, A->data, A->stride[0], SA->data, SA->stride[0], SA->stride[1],
                                 D->data, D->stride[0], A->shape[0]);
    } else if (a->layout == DSK_GEMM_CONTIGUOUS) {
        int64_t M = A->shape[0];
        const int32_t *mi = a->m_indices->data;
        int64_t mis = a->m_indices->stride[0];
        subs = malloc(sizeof *subs * (size_t)(M > 0 ? M : 1));
        if (!subs) return -1;
        for (int64_t r = 0; r < M;) {
            int32_t g = mi[r * mis];
            int64_t e = r + 1;
            while (e < M && mi[e * mis] == g) e++;
            if (g >= 0)
                subs[n++] = sub_from(a, g, (const uint8_t *)A->data + r * A->stride[0], A->stride[0],
                                     (const float *)SA->data + r * SA->stride[0], SA->stride[0], SA->stride[1],
                                     (char *)D->data + (size_t)(r * D->stride[0]) * esz, D->stride[0], e - r);
            r = e;
        }
    } else {
        int64_t G = A->shape[0];
        const int32_t *mm = a->masked_m->data;
        subs = malloc(sizeof *subs * (size_t)(G > 0 ? G : 1));
        if (!subs) return -1;
        for (int64_t g = 0; g < G; g++) {
            int64_t rows = mm[g * a->masked_m->stride[0]];
            if (rows <= 0) continue;
            subs[n++] = sub_from(a, g, (const uint8_t *)A->data + g * A->stride[0], A->stride[1],
                                 (const float *)SA->data + g * SA->stride[0], SA->stride[1], SA->stride[2],
                                 (char *)D->data + (size_t)(g * D->stride[0]) * esz, D->stride[1], rows);
        }
    }
    *out = subs;
    return n;
}

static const cpu_gemm_kernels *const gemm_levels[] = {
    &dsk_cpu_gemm_avx512bf16, &dsk_cpu_gemm_avx2, &dsk_cpu_gemm_scalar,
};

static const cpu_gemm_kernels *gemm_pick(void)
{
    char why[128];
    for (size_t i = 0; i < sizeof gemm_levels / sizeof gemm_levels[0]; i++) {
        const cpu_gemm_kernels *k = gemm_levels[i];
        char name[64];
        snprintf(name, sizeof name, "gemm_fp8_cpu_%s", k->isa_name);
        if (dsk_cpu_isa_declines(k->isa, why, sizeof why)) {
            dsk_cpu_dispatch_note("gemm_fp8", name, why);
            continue;
        }
        dsk_cpu_dispatch_note("gemm_fp8", name, NULL);
        return k;
    }
    return &dsk_cpu_gemm_scalar;
}

/* Stride checks the op's contract leaves to backends: element-contiguous rows. */
static dsk_status check_rows(const dsk_gemm_fp8_args *a)
{
    const dsk_tensor *t[3] = {a->a, a->b, a->d};
    const char *nm[3] = {"a", "b", "d"};
    for (int i = 0; i < 3; i++)
        if (t[i]->stride[t[i]->rank - 1] != 1)
            return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_gemm_fp8 (cpu): %s has last stride %lld, expected 1",
                            nm[i], (long long)t[i]->stride[t[i]->rank - 1]);
    return DSK_OK;
}

dsk_status dsk_cpu_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *a)
{
    DSK_TRY(check_rows(a));
    dsk_cpu_tables_init();
    gemm_plan p = {.k = gemm_pick()};
    p.n_subs = build_subs(a, &p.subs);
    if (p.n_subs < 0) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): sub-problem list");
    dsk_threadpool *pool = dsk_threadpool_default();
    int workers = dsk_threadpool_size(pool);
    int64_t n = p.n_subs > 0 ? p.n_subs : 1;
    p.task_start = malloc(sizeof(int64_t) * (size_t)(n + 1));
    p.tiles_n = malloc(sizeof(int64_t) * (size_t)n);
    p.tile_n = malloc(sizeof(int64_t) * (size_t)n);
    p.tile_m = malloc(sizeof(int64_t) * (size_t)n);
    p.use_decode = malloc(sizeof(int) * (size_t)n);
    dsk_status st = DSK_OK;
    if (!p.task_start || !p.tiles_n || !p.tile_n || !p.tile_m || !p.use_decode) {
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): task plan");
        goto done;
    }
    int all_decode = 1, any = 0;
    p.task_start[0] = 0;
    for (int64_t i = 0; i < p.n_subs; i++) {
        plan_shape(&p, i, workers);
        all_decode &= p.use_decode[i];
        any = 1;
        p.task_start[i + 1] = p.task_start[i] + cdiv(p.subs[i].M, p.tile_m[i]) * p.tiles_n[i];
    }
    char kname[96];
    snprintf(kname, sizeof kname, "gemm_fp8_cpu_%s%s", p.k->isa_name,
             !p.k->decode ? "" : !any ? "" : all_decode ? "_decode" : "_prefill");
    dsk_device_set_kernel(dev, kname);
    if (p.k->pack_a && !all_decode) {
        st = pack_all(&p, pool);
        if (st != DSK_OK) goto done;
    }
    dsk_threadpool_run(pool, p.task_start[p.n_subs], gemm_task, &p);
    if (atomic_load(&p.failed))
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gemm_fp8 (cpu): per-worker scratch allocation failed");
done:
    free(p.subs);
    free(p.task_start);
    free(p.tiles_n);
    free(p.tile_n);
    free(p.tile_m);
    free(p.use_decode);
    return st;
}
