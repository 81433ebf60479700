/* cpu/mla_decode_cpu.c: MLA decode (absorbed form over the paged latent cache) on the
 * cpu backend: the split over cores, the split-KV combine and the portable C level.
 *
 * Variants, best first (DSK_VERBOSE=dispatch prints why each declines):
 *   mla_decode_cpu_avx512bf16  bf16 dot products (vdpbf16ps) for q.K and P.V, f32
 *                           softmax and accumulation, up to 128 heads per task (each
 *                           cache row read once for all); bf16 q and cache only (declines
 *                           f32 inputs and odd D)
 *   mla_decode_cpu_avx512   f32 FMA over 16-head groups, 4 cache rows at a time (each
 *                           row read once per head group and converted to f32 once)
 *   mla_decode_cpu_avx2     the same on 8 lanes (AVX2 + FMA)
 *   mla_decode_cpu_scalar   plain C, f32, online softmax
 * Work: tasks are (sequence, group of the level's head_group heads, KV split); pages are split
 * so that there are at least two tasks per worker. Each task keeps an unnormalized
 * output, its running max m and sum l (FlashAttention's online softmax, FlashMLA's
 * split-KV); the combine pass rescales the splits by exp(m_s - M) and divides by L. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/cpu_internal.h"
#include "cpu/mla_internal.h"

/* Row r of the cache (page-table resolved) as a pointer. */
static inline const void *cache_row(const mla_job *jb, int64_t b, int64_t j)
{
    const dsk_tensor *bt = jb->a->block_table, *kv = jb->a->kv_cache;
    int64_t page = ((const int32_t *)bt->data)[b * bt->stride[0] + (j / DSK_MLA_PAGE_SIZE) * bt->stride[1]];
    int64_t off = page * kv->stride[0] + (j % DSK_MLA_PAGE_SIZE) * kv->stride[1];
    return (const char *)kv->data + (size_t)off * dsk_dtype_size(kv->dtype);
}

const void *dsk_cpu_mla_row(const mla_job *jb, int64_t b, int64_t j) { return cache_row(jb, b, j); }

float dsk_cpu_mla_elem(const dsk_tensor *t, const void *row, int64_t i)
{
    return t->dtype == DSK_BF16 ? dsk_cpu_bf16_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

static int scalar_tile(const mla_job *jb, int64_t b, int64_t h0, int64_t h1, int64_t j0, int64_t j1, float *o,
                       float *m, float *l)
{
    const dsk_tensor *q = jb->a->q, *kv = jb->a->kv_cache;
    const int64_t D = jb->D, dv = jb->dv;
    for (int64_t h = h0; h < h1; h++) {
        const char *qr = (const char *)q->data + (size_t)(b * q->stride[0] + h * q->stride[1]) * dsk_dtype_size(q->dtype);
        float *oh = o + (h - h0) * dv, mh = -INFINITY, lh = 0;
        for (int64_t c = 0; c < dv; c++) oh[c] = 0;
        for (int64_t j = j0; j < j1; j++) {
            const void *row = cache_row(jb, b, j);
            float s = 0;
            for (int64_t d = 0; d < D; d++) s += dsk_cpu_mla_elem(q, qr, d) * dsk_cpu_mla_elem(kv, row, d);
            s *= jb->scale;
            float mn = s > mh ? s : mh, alpha = expf(mh - mn), p = expf(s - mn);
            lh = lh * alpha + p;
            for (int64_t c = 0; c < dv; c++) oh[c] = oh[c] * alpha + p * dsk_cpu_mla_elem(kv, row, c);
            mh = mn;
        }
        m[h - h0] = mh;
        l[h - h0] = lh;
    }
    return 0;
}

static const mla_kernels mla_scalar = {"scalar", DSK_CPU_SCALAR, scalar_tile, NULL, 0};
static const mla_kernels *const mla_levels[] = {&dsk_cpu_mla_avx512bf16, &dsk_cpu_mla_avx512, &dsk_cpu_mla_avx2,
                                                &mla_scalar};

typedef struct mla_ctx {
    mla_job jb;
    const mla_kernels *k;
    float *part;        /* [B][n_hg][splits][HG][dv + 2]: o, then m, l */
    _Atomic int failed;
} mla_ctx;

static float *part_at(const mla_ctx *c, int64_t b, int64_t g, int64_t s)
{
    const mla_job *j = &c->jb;
    return c->part + (((b * j->n_hg + g) * j->splits + s) * j->HG) * (j->dv + 2);
}

static void mla_task(void *p, int64_t t, int worker)
{
    mla_ctx *c = p;
    const mla_job *j = &c->jb;
    int64_t s = t % j->splits, g = (t / j->splits) % j->n_hg, b = t / (j->splits * j->n_hg);
    const dsk_tensor *sl = j->a->seq_lens;
    int64_t n = ((const int32_t *)sl->data)[b * sl->stride[0]];
    int64_t chunk = (n + j->splits - 1) / j->splits;
    chunk = (chunk + DSK_MLA_PAGE_SIZE - 1) / DSK_MLA_PAGE_SIZE * DSK_MLA_PAGE_SIZE;
    int64_t j0 = s * chunk < n ? s * chunk : n, j1 = j0 + chunk < n ? j0 + chunk : n;
    int64_t h0 = g * j->HG, h1 = h0 + j->HG < j->H ? h0 + j->HG : j->H;
    float *out = part_at(c, b, g, s);
    float *o = out, *ml = out + j->HG * j->dv;   /* o [HG][dv], then m [HG], l [HG] */
    if (j0 >= j1) {
        for (int64_t h = 0; h < h1 - h0; h++) {
            ml[h] = -INFINITY;
            ml[j->HG + h] = 0;
            for (int64_t x = 0; x < j->dv; x++) o[h * j->dv + x] = 0;
        }
        return;
    }
    if (c->k->tile(j, b, h0, h1, j0, j1, o, ml, ml + j->HG)) atomic_store(&c->failed, 1);
}

static void combine_task(void *p, int64_t t, int worker)
{
    mla_ctx *c = p;
    const mla_job *j = &c->jb;
    int64_t b = t / j->H, h = t % j->H, g = h / j->HG, hl = h % j->HG;
    float M = -INFINITY;
    for (int64_t s = 0; s < j->splits; s++) {
        const float *pt = part_at(c, b, g, s);
        float ms = pt[j->HG * j->dv + hl];
        if (ms > M) M = ms;
    }
    float L = 0;
    float w[64];
    for (int64_t s = 0; s < j->splits; s++) {
        const float *pt = part_at(c, b, g, s);
        float ms = pt[j->HG * j->dv + hl], ls = pt[j->HG * j->dv + j->HG + hl];
        w[s] = ms == -INFINITY ? 0.0f : expf(ms - M);
        L += ls * w[s];
    }
    dsk_tensor *out = j->a->out;
    for (int64_t x = 0; x < j->dv; x++) {
        float acc = 0;
        for (int64_t s = 0; s < j->splits; s++) acc += w[s] * part_at(c, b, g, s)[hl * j->dv + x];
        dsk_store(out, dsk_off3(out, b, h, x), acc / L);
    }
    if (j->a->lse) dsk_store(j->a->lse, dsk_off2(j->a->lse, b, h), M + logf(L));
}

dsk_status dsk_cpu_mla_decode(dsk_device *dev, const dsk_mla_decode_args *a)
{
    dsk_threadpool *pool = dsk_threadpool_default();
    int workers = dsk_threadpool_size(pool);
    mla_ctx c = {0};
    mla_job *j = &c.jb;
    j->a = a;
    j->B = a->q->shape[0];
    j->H = a->q->shape[1];
    j->D = a->q->shape[2];
    j->dv = a->dv;
    j->scale = a->softmax_scale;
    char why[160];
    for (size_t i = 0; i < sizeof mla_levels / sizeof mla_levels[0] && !c.k; i++) {
        char name[64];
        snprintf(name, sizeof name, "mla_decode_cpu_%s", mla_levels[i]->name);
        if (dsk_cpu_isa_declines(mla_levels[i]->isa, why, sizeof why) ||
            (mla_levels[i]->declines && mla_levels[i]->declines(j, why, sizeof why))) {
            dsk_cpu_dispatch_note("mla_decode", name, why);
            continue;
        }
        dsk_cpu_dispatch_note("mla_decode", name, NULL);
        c.k = mla_levels[i];
    }
    const mla_kernels *k = c.k;
    j->HG = k->head_group ? k->head_group : MLA_HEAD_GROUP;
    j->n_hg = (j->H + j->HG - 1) / j->HG;
    int64_t max_pages = a->block_table->shape[1];
    int64_t base = j->B * j->n_hg, splits = (2 * workers + base - 1) / base;
    if (splits > max_pages) splits = max_pages;
    if (splits > 64) splits = 64;
    if (splits < 1) splits = 1;
    j->splits = splits;
    size_t n = (size_t)(base * splits * j->HG * (j->dv + 2));
    c.part = malloc(sizeof(float) * (n ? n : 1));
    if (!c.part) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_mla_decode (cpu): split-KV partials (%zu floats)", n);
    char kname[64];
    snprintf(kname, sizeof kname, "mla_decode_cpu_%s", k->name);
    dsk_device_set_kernel(dev, kname);
    dsk_threadpool_run(pool, base * splits, mla_task, &c);
    dsk_status st = DSK_OK;
    if (atomic_load(&c.failed)) st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_mla_decode (cpu): per-worker scratch");
    else dsk_threadpool_run(pool, j->B * j->H, combine_task, &c);
    free(c.part);
    return st;
}
