/* cpu/mla_decode_avx2.c: MLA decode tile, AVX2 level (f32 FMA, 8 lanes).
 *
 * The avx512 f32 level's scheme (cpu/mla_decode_avx512.c) on 8 lanes: for up to 16 heads
 * of one sequence, q is converted to f32 once; cache rows are taken 4 at a time,
 * converted to f32 once (bf16 -> f32 is a 16-bit shift) and used by every head: 4 scores
 * per head from one pass over q (4 accumulators), an online-softmax update, then
 * out[h] = out[h] * alpha + sum_t p_t * row_t[0, dv) with out[h] loaded and stored once
 * per 4 rows. Rows past the range get p = 0 (their buffer rows are zero), widths are
 * padded to 8 with zeros. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu/mla_internal.h"

static inline void row_f32(const dsk_tensor *t, const void *row, int64_t D, int64_t Dp, float *dst)
{
    int64_t d = 0;
    if (t->dtype == DSK_BF16) {
        const uint16_t *r = row;
        for (; d + 8 <= D; d += 8)
            _mm256_store_ps(dst + d, _mm256_castsi256_ps(_mm256_slli_epi32(
                                         _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + d))), 16)));
    } else {
        const float *r = row;
        for (; d + 8 <= D; d += 8) _mm256_store_ps(dst + d, _mm256_loadu_ps(r + d));
    }
    for (; d < D; d++) dst[d] = dsk_cpu_mla_elem(t, row, d);
    for (; d < Dp; d++) dst[d] = 0;
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static int avx2_tile(const mla_job *jb, int64_t b, int64_t h0, int64_t h1, int64_t j0, int64_t j1, float *o,
                     float *m, float *l)
{
    const dsk_tensor *q = jb->a->q, *kv = jb->a->kv_cache;
    const int64_t D = jb->D, dv = jb->dv, Dp = (D + 7) / 8 * 8, dvp = (dv + 7) / 8 * 8;
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
        for (int64_t h = 0; h < nh; h++) {
            const float *qh = qf + h * Dp;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t d = 0; d < Dp; d += 8) {
                const __m256 qv = _mm256_load_ps(qh + d);
                s0 = _mm256_fmadd_ps(qv, _mm256_load_ps(kf + d), s0);
                s1 = _mm256_fmadd_ps(qv, _mm256_load_ps(kf + Dp + d), s1);
                s2 = _mm256_fmadd_ps(qv, _mm256_load_ps(kf + 2 * Dp + d), s2);
                s3 = _mm256_fmadd_ps(qv, _mm256_load_ps(kf + 3 * Dp + d), s3);
            }
            float s[4] = {hsum8(s0) * scale, hsum8(s1) * scale, hsum8(s2) * scale, hsum8(s3) * scale};
            float mn = m[h];
            for (int t = 0; t < nt; t++) mn = s[t] > mn ? s[t] : mn;
            const float alpha = expf(m[h] - mn);
            float p[4] = {0, 0, 0, 0}, psum = 0;
            for (int t = 0; t < nt; t++) psum += (p[t] = expf(s[t] - mn));
            l[h] = l[h] * alpha + psum;
            m[h] = mn;
            const __m256 va = _mm256_set1_ps(alpha), p0 = _mm256_set1_ps(p[0]), p1 = _mm256_set1_ps(p[1]);
            const __m256 p2 = _mm256_set1_ps(p[2]), p3 = _mm256_set1_ps(p[3]);
            float *oh = of + h * dvp;
            for (int64_t c = 0; c < dvp; c += 8) {
                __m256 acc = _mm256_mul_ps(_mm256_load_ps(oh + c), va);
                acc = _mm256_fmadd_ps(p0, _mm256_load_ps(kf + c), acc);
                acc = _mm256_fmadd_ps(p1, _mm256_load_ps(kf + Dp + c), acc);
                acc = _mm256_fmadd_ps(p2, _mm256_load_ps(kf + 2 * Dp + c), acc);
                acc = _mm256_fmadd_ps(p3, _mm256_load_ps(kf + 3 * Dp + c), acc);
                _mm256_store_ps(oh + c, acc);
            }
        }
    }
    for (int64_t h = 0; h < nh; h++) memcpy(o + h * dv, of + h * dvp, sizeof(float) * (size_t)dv);
    return 0;
}

const mla_kernels dsk_cpu_mla_avx2 = {"avx2", DSK_CPU_AVX2, avx2_tile, NULL, 0};
