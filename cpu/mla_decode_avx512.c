/* cpu/mla_decode_avx512.c: MLA decode tile, AVX-512 level (f32 FMA).
 *
 * For up to 16 heads of one sequence: q is converted to f32 once; cache rows are taken
 * 4 at a time, converted to f32 once (bf16 -> f32 is a 16-bit shift) and used by every
 * head: 4 scores per head from one pass over q (4 accumulators), an online-softmax
 * update, then out[h] = out[h] * alpha + sum_t p_t * row_t[0, dv) with out[h] loaded and
 * stored once per 4 rows. Rows past the range get p = 0 (their buffer rows are zero). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu/mla_internal.h"

static inline void row_f32(const dsk_tensor *t, const void *row, int64_t D, int64_t Dp, float *dst)
{
    int64_t d = 0;
    if (t->dtype == DSK_BF16) {
        const uint16_t *r = row;
        for (; d + 16 <= D; d += 16)
            _mm512_store_ps(dst + d, _mm512_castsi512_ps(_mm512_slli_epi32(
                                         _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(r + d))), 16)));
    } else {
        const float *r = row;
        for (; d + 16 <= D; d += 16) _mm512_store_ps(dst + d, _mm512_loadu_ps(r + d));
    }
    for (; d < D; d++) dst[d] = dsk_cpu_mla_elem(t, row, d);
    for (; d < Dp; d++) dst[d] = 0;
}

static int avx512_tile(const mla_job *jb, int64_t b, int64_t h0, int64_t h1, int64_t j0, int64_t j1, float *o,
                       float *m, float *l)
{
    const dsk_tensor *q = jb->a->q, *kv = jb->a->kv_cache;
    const int64_t D = jb->D, dv = jb->dv, Dp = (D + 15) / 16 * 16, dvp = (dv + 15) / 16 * 16;
    const int64_t nh = h1 - h0;
    float *qf = dsk_cpu_scratch(0, sizeof(float) * (size_t)(MLA_HEAD_GROUP * Dp));
    float *kf = dsk_cpu_scratch(1, sizeof(float) * (size_t)(4 * Dp));
    float *of = dsk_cpu_scratch(2, sizeof(float) * (size_t)(MLA_HEAD_GROUP * dvp));
    if (!qf || !kf || !of) return -1;
    for (int64_t h = 0; h < nh; h++) {
        const char *qr = (const char *)q->data + (size_t)(b * q->stride[0] + (h0 + h) * q->stride[1]) * dsk_dtype_size(q->dtype);
        row_f32(q, qr, D, Dp, qf + h * Dp);
        m[h] = -INFINITY;
        l[h] = 0;
    }
    memset(of, 0, sizeof(float) * (size_t)(nh * dvp));
    const float scale = jb->scale;
    for (int64_t j = j0; j < j1; j += 4) {
        const int nt = j1 - j < 4 ? (int)(j1 - j) : 4;
        for (int t = 0; t < 4; t++) {
            if (t < nt) row_f32(kv, dsk_cpu_mla_row(jb, b, j + t), D, Dp, kf + t * Dp);
            else memset(kf + t * Dp, 0, sizeof(float) * (size_t)Dp);
        }
        if (j + 4 < j1)
            for (int t = 0; t < 4 && j + 4 + t < j1; t++) {
                const char *nr = dsk_cpu_mla_row(jb, b, j + 4 + t);
                for (int64_t x = 0; x < D * (int64_t)dsk_dtype_size(kv->dtype); x += 64) _mm_prefetch(nr + x, _MM_HINT_T0);
            }
        for (int64_t h = 0; h < nh; h++) {
            const float *qh = qf + h * Dp;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t d = 0; d < Dp; d += 16) {
                const __m512 qv = _mm512_load_ps(qh + d);
                s0 = _mm512_fmadd_ps(qv, _mm512_load_ps(kf + d), s0);
                s1 = _mm512_fmadd_ps(qv, _mm512_load_ps(kf + Dp + d), s1);
                s2 = _mm512_fmadd_ps(qv, _mm512_load_ps(kf + 2 * Dp + d), s2);
                s3 = _mm512_fmadd_ps(qv, _mm512_load_ps(kf + 3 * Dp + d), s3);
            }
            float s[4] = {_mm512_reduce_add_ps(s0) * scale, _mm512_reduce_add_ps(s1) * scale,
                          _mm512_reduce_add_ps(s2) * scale, _mm512_reduce_add_ps(s3) * scale};
            float mn = m[h];
            for (int t = 0; t < nt; t++) mn = s[t] > mn ? s[t] : mn;
            const float alpha = expf(m[h] - mn);
            float p[4] = {0, 0, 0, 0}, psum = 0;
            for (int t = 0; t < nt; t++) psum += (p[t] = expf(s[t] - mn));
            l[h] = l[h] * alpha + psum;
            m[h] = mn;
            const __m512 va = _mm512_set1_ps(alpha), p0 = _mm512_set1_ps(p[0]), p1 = _mm512_set1_ps(p[1]);
            const __m512 p2 = _mm512_set1_ps(p[2]), p3 = _mm512_set1_ps(p[3]);
            float *oh = of + h * dvp;
            for (int64_t c = 0; c < dvp; c += 16) {
                __m512 acc = _mm512_mul_ps(_mm512_load_ps(oh + c), va);
                acc = _mm512_fmadd_ps(p0, _mm512_load_ps(kf + c), acc);
                acc = _mm512_fmadd_ps(p1, _mm512_load_ps(kf + Dp + c), acc);
                acc = _mm512_fmadd_ps(p2, _mm512_load_ps(kf + 2 * Dp + c), acc);
                acc = _mm512_fmadd_ps(p3, _mm512_load_ps(kf + 3 * Dp + c), acc);
                _mm512_store_ps(oh + c, acc);
            }
        }
    }
    for (int64_t h = 0; h < nh; h++) memcpy(o + h * dv, of + h * dvp, sizeof(float) * (size_t)dv);
    return 0;
}

const mla_kernels dsk_cpu_mla_avx512 = {"avx512", DSK_CPU_AVX512BF16, avx512_tile, NULL, 0};
