/* cpu/mla_decode_bf16_avx512.c: MLA decode tile, AVX-512 BF16 level (vdpbf16ps).
 *
 * For up to 128 heads of one sequence (a tile), cache rows in blocks of 32 (a block never
 * crosses a 64-row page: tiles start on page boundaries); each block is read from memory
 * once and used by every 16-head subgroup while it is in L1/L2. q and the cache must be bf16 (the
 * level declines f32 inputs, which go to the f32 level unrounded) and D even.
 *  - Scores, q.K: q is packed once per tile as [D/2 pairs][16 heads] of bf16 pairs; each
 *    cache row is used as stored, one pair at a time broadcast into vdpbf16ps against
 *    the 16 heads' q pairs (8 rows per pass, 8 accumulators whose lanes are heads).
 *    Products of bf16 values are exact in f32; sums are f32, as in the f32 level.
 *  - Online softmax per head in f32 (lanes = heads): running max m, sum l, rescale
 *    alpha = exp(m_old - m_new), vectorized exp (below).
 *  - P.V: the block's probabilities are transposed to [head][row] and rounded to bf16
 *    pairs (FlashMLA does the same for its P.V GEMM); for every 16 output columns, the
 *    16 heads' accumulators are loaded once, scaled by alpha, and take 16 row pairs:
 *    vdpbf16ps of the interleaved (row t, row t+1) values against the broadcast pair
 *    (p_t, p_t+1). l sums the f32 probabilities, not the rounded ones.
 * Accuracy consequence: each probability carries a relative rounding error of at most
 * 2^-8 (bf16 keeps 8 significant bits) in the numerator, so an output element moves by
 * at most 2^-8 * sum_t w_t |v_t| (w the softmax weights) from the f32 result; lse is
 * unaffected. */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu/mla_internal.h"

#define BLK 32   /* cache rows per block; divides DSK_MLA_PAGE_SIZE */

/* e^x for x <= 88 (x = -inf and x < -87 give 0): x = n ln2 + r, |r| <= ln2 / 2,
 * e^r by a degree-6 Taylor polynomial (relative error < 2e-7 there), times 2^n. */
static inline __m512 exp512(__m512 x)
{
    const __m512 ln2_hi = _mm512_set1_ps(0.693145751953125f), ln2_lo = _mm512_set1_ps(1.428606765330187e-06f);
    const __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps((__mmask16)~zero, _mm512_scalef_ps(p, n));
}

static inline __m512 dot(__m512 acc, __m512i a, __m512i b)
{
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/* 16 x 16 f32 transpose: r[i] (row i) becomes column i. */
static inline __attribute__((always_inline)) void tr16x16_ps(__m512 r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(_mm512_castps_si512(r[2 * i]), _mm512_castps_si512(r[2 * i + 1]));
        t[2 * i + 1] = _mm512_unpackhi_epi32(_mm512_castps_si512(r[2 * i]), _mm512_castps_si512(r[2 * i + 1]));
    }
    for (int g = 0; g < 4; g++) {
        u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        t[8 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_castsi512_ps(_mm512_shuffle_i32x4(t[c], t[8 + c], 0x88));
        r[8 + c] = _mm512_castsi512_ps(_mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd));
        r[4 + c] = _mm512_castsi512_ps(_mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0x88));
        r[12 + c] = _mm512_castsi512_ps(_mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0xdd));
    }
}

/* A bf16 pair as one 32-bit value (rows need only 2-byte alignment). */
static inline int ld32(const uint16_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return (int)v;
}

/* Scores of 8 cache rows against the 16 heads' packed q: s[i] lanes = heads. */
static inline void scores8(const uint32_t *qpk, int64_t npairs, const uint16_t *const row[8], __m512 s[8])
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const uint16_t *r0 = row[0], *r1 = row[1], *r2 = row[2], *r3 = row[3];
    const uint16_t *r4 = row[4], *r5 = row[5], *r6 = row[6], *r7 = row[7];
    for (int64_t d = 0; d < npairs; d++) {
        const __m512i q = _mm512_load_si512(qpk + d * 16);
        a0 = dot(a0, q, _mm512_set1_epi32(ld32(r0 + 2 * d)));
        a1 = dot(a1, q, _mm512_set1_epi32(ld32(r1 + 2 * d)));
        a2 = dot(a2, q, _mm512_set1_epi32(ld32(r2 + 2 * d)));
        a3 = dot(a3, q, _mm512_set1_epi32(ld32(r3 + 2 * d)));
        a4 = dot(a4, q, _mm512_set1_epi32(ld32(r4 + 2 * d)));
        a5 = dot(a5, q, _mm512_set1_epi32(ld32(r5 + 2 * d)));
        a6 = dot(a6, q, _mm512_set1_epi32(ld32(r6 + 2 * d)));
        a7 = dot(a7, q, _mm512_set1_epi32(ld32(r7 + 2 * d)));
    }
    s[0] = a0; s[1] = a1; s[2] = a2; s[3] = a3; s[4] = a4; s[5] = a5; s[6] = a6; s[7] = a7;
}

static int bf16_declines(const mla_job *jb, char *why, size_t len)
{
    const dsk_tensor *q = jb->a->q, *kv = jb->a->kv_cache;
    if (q->dtype != DSK_BF16 || kv->dtype != DSK_BF16) {
        snprintf(why, len, "needs bf16 q and kv_cache (given %s, %s)", dsk_dtype_name(q->dtype), dsk_dtype_name(kv->dtype));
        return 1;
    }
    if (jb->D % 2 || q->stride[2] != 1 || kv->stride[2] != 1) {
        snprintf(why, len, "needs even D (given %lld) and element-contiguous rows", (long long)jb->D);
        return 1;
    }
    return 0;
}

static int bf16_tile(const mla_job *jb, int64_t b, int64_t h0, int64_t h1, int64_t j0, int64_t j1, float *o,
                     float *mo, float *lo)
{
    const dsk_tensor *q = jb->a->q;
    const int64_t D = jb->D, dv = jb->dv, np = D / 2, dvp = (dv + 15) / 16 * 16, nh = h1 - h0;
    const int64_t ng = (nh + 15) / 16;   /* 16-head subgroups, all served by each block */
    uint32_t *qpk = dsk_cpu_scratch(0, sizeof(uint32_t) * (size_t)(ng * np * 16));
    float *oacc = dsk_cpu_scratch(1, sizeof(float) * (size_t)(ng * 16 * dvp));
    float *st = dsk_cpu_scratch(2, sizeof(uint32_t) * 16 * (BLK / 2) + sizeof(float) * (size_t)(16 + ng * 32));
    if (!qpk || !oacc || !st) return -1;
    uint32_t *ppk = (uint32_t *)st;
    float *alpha_s = st + 16 * (BLK / 2), *ml = alpha_s + 16;   /* ml: per subgroup m[16], l[16] */
    for (int64_t h = 0; h < ng * 16; h++) {
        uint32_t *qg = qpk + (h / 16) * np * 16 + h % 16;
        if (h >= nh) {
            for (int64_t d = 0; d < np; d++) qg[d * 16] = 0;
            continue;
        }
        const uint16_t *qr = (const uint16_t *)q->data + b * q->stride[0] + (h0 + h) * q->stride[1];
        for (int64_t d = 0; d < np; d++) qg[d * 16] = (uint32_t)ld32(qr + 2 * d);
    }
    memset(oacc, 0, sizeof(float) * (size_t)(ng * 16 * dvp));
    for (int64_t g = 0; g < ng; g++) {
        _mm512_storeu_ps(ml + g * 32, _mm512_set1_ps(-INFINITY));
        _mm512_storeu_ps(ml + g * 32 + 16, _mm512_setzero_ps());
    }
    const __m512 scale = _mm512_set1_ps(jb->scale);
    const __m512i ilv = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t t0 = j0; t0 < j1; t0 += BLK) {
        const int T = j1 - t0 < BLK ? (int)(j1 - t0) : BLK;
        /* rows of the block; rows past T point at the first (their p is 0) */
        const uint16_t *rows[BLK];
        for (int t = 0; t < BLK; t++) rows[t] = dsk_cpu_mla_row(jb, b, t < T ? t0 + t : t0);
        for (int64_t g = 0; g < ng; g++) {   /* the block's rows stay in L1/L2 across subgroups */
            const uint32_t *qg = qpk + g * np * 16;
            float *og = oacc + g * 16 * dvp;
            __m512 s[BLK];
            for (int t = 0; t < BLK; t += 8) {
                if (t < T) scores8(qg, np, rows + t, s + t);
                for (int i = 0; i < 8; i++)
                    s[t + i] = t + i < T ? _mm512_mul_ps(s[t + i], scale) : _mm512_set1_ps(-INFINITY);
            }
            const __m512 m = _mm512_loadu_ps(ml + g * 32), l = _mm512_loadu_ps(ml + g * 32 + 16);
            __m512 mn = m;
            for (int t = 0; t < T; t++) mn = _mm512_max_ps(mn, s[t]);
            const __m512 alpha = exp512(_mm512_sub_ps(m, mn));
            __m512 psum = _mm512_setzero_ps();
            for (int t = 0; t < BLK; t++) {
                s[t] = exp512(_mm512_sub_ps(s[t], mn));
                psum = _mm512_add_ps(psum, s[t]);
            }
            _mm512_storeu_ps(ml + g * 32 + 16, _mm512_fmadd_ps(l, alpha, psum));
            _mm512_storeu_ps(ml + g * 32, mn);
            _mm512_storeu_ps(alpha_s, alpha);
            /* p[t][h] -> per head 32 bf16 (16 pairs of consecutive rows) */
            tr16x16_ps(s);
            tr16x16_ps(s + 16);
            for (int h = 0; h < 16; h++)
                _mm512_storeu_si512(ppk + h * (BLK / 2), (__m512i)_mm512_cvtne2ps_pbh(s[16 + h], s[h]));
            const int tps = (T + 1) / 2;
            for (int64_t c0 = 0; c0 < dvp; c0 += 16) {
                const __mmask16 mk = (__mmask16)(dv - c0 >= 16 ? 0xffff : (1u << (dv - c0)) - 1);
                __m512 acc[16];
#pragma GCC unroll 16
                for (int h = 0; h < 16; h++)
                    acc[h] = _mm512_mul_ps(_mm512_load_ps(og + h * dvp + c0), _mm512_set1_ps(alpha_s[h]));
                for (int tp = 0; tp < tps; tp++) {
                    const __m256i va = _mm256_maskz_loadu_epi16(mk, rows[2 * tp] + c0);
                    const __m256i vb = _mm256_maskz_loadu_epi16(mk, rows[2 * tp + 1] + c0);
                    const __m512i v =
                        _mm512_permutexvar_epi16(ilv, _mm512_inserti64x4(_mm512_castsi256_si512(va), vb, 1));
#pragma GCC unroll 16
                    for (int h = 0; h < 16; h++)
                        acc[h] = dot(acc[h], v, _mm512_set1_epi32((int)ppk[h * (BLK / 2) + tp]));
                }
#pragma GCC unroll 16
                for (int h = 0; h < 16; h++) _mm512_store_ps(og + h * dvp + c0, acc[h]);
            }
        }
    }
    for (int64_t h = 0; h < nh; h++) {
        memcpy(o + h * dv, oacc + (h / 16) * 16 * dvp + (h % 16) * dvp, sizeof(float) * (size_t)dv);
        mo[h] = ml[(h / 16) * 32 + h % 16];
        lo[h] = ml[(h / 16) * 32 + 16 + h % 16];
    }
    return 0;
}

const mla_kernels dsk_cpu_mla_avx512bf16 = {"avx512bf16", DSK_CPU_AVX512BF16, bf16_tile, bf16_declines, 128};
