/* cpu/layers_avx2.c: the avx2 level of the layer row kernels (contract:
 * cpu/layers_internal.h): 8 f32 lanes (AVX2 + FMA), bf16 widened by a 16-bit shift,
 * tails shorter than a vector in C with the same formulas.
 *
 * quant: amax by vmaxps with the running max as the second operand (a NaN element is
 * skipped, as fmaxf skips it in the reference), the f32 division x / scale as the
 * reference does it (no reciprocal), then the integer e4m3 encoder of layers_internal.h
 * lane-wise. exp for SwiGLU: Cody-Waite reduction by ln 2 and Cephes' degree-5 expf
 * polynomial (about 1 ulp). */
#include <immintrin.h>

#include "cpu/layers_internal.h"

static inline __m256 ld8(const void *p, int bf16, int64_t i)
{
    if (bf16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i))), 16));
    return _mm256_loadu_ps((const float *)p + i);
}

/* f32 -> bf16 bits (round to nearest even, NaN quieted), as dsk_cpu_store_out. */
static inline __m128i bf16_8(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    return _mm256_castsi256_si128(p);
}

static inline void st8(void *p, int bf16, int64_t i, __m256 v)
{
    if (bf16) _mm_storeu_si128((__m128i *)((uint16_t *)p + i), bf16_8(v));
    else _mm256_storeu_ps((float *)p + i, v);
}

/* The e4m3 codes of 8 f32 lanes as int32 (dsk_cpu_e4m3_encode lane-wise). */
static inline __m256i e4m3_8(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
    __m256i normal = _mm256_srli_epi32(_mm256_add_epi32(a, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7ffff))), 20);
    normal = _mm256_min_epi32(_mm256_sub_epi32(normal, _mm256_set1_epi32(120 << 3)), _mm256_set1_epi32(0x7e));
    const __m256 sub = _mm256_round_ps(_mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(512.0f)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a);
    __m256i code = _mm256_or_si256(_mm256_blendv_epi8(normal, _mm256_cvttps_epi32(sub), small), sign);
    const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7f), nan);
}

static void quant_row(const void *x, int bf, int64_t K, uint8_t *q, float *s, int64_t ss)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t k0 = 0; k0 < K; k0 += 128) {
        const int64_t n = k0 + 128 < K ? 128 : K - k0;
        __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            m0 = _mm256_max_ps(_mm256_and_ps(ld8(x, bf, k0 + i), absmask), m0);
            m1 = _mm256_max_ps(_mm256_and_ps(ld8(x, bf, k0 + i + 8), absmask), m1);
        }
        for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_and_ps(ld8(x, bf, k0 + i), absmask), m0);
        m0 = _mm256_max_ps(m0, m1);
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        for (; i < n; i++) amax = fmaxf(amax, fabsf(dsk_cpu_ld(x, bf, k0 + i)));
        const float sc = fmaxf(amax, DSK_CPU_AMAX_FLOOR) / DSK_CPU_E4M3_MAX;
        s[(k0 / 128) * ss] = sc;
        const __m256 vs = _mm256_set1_ps(sc);
        i = 0;
        for (; i + 16 <= n; i += 16) {
            const __m256i a = e4m3_8(_mm256_div_ps(ld8(x, bf, k0 + i), vs));
            const __m256i b = e4m3_8(_mm256_div_ps(ld8(x, bf, k0 + i + 8), vs));
            const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);   /* 16 x u16 in order */
            _mm_storeu_si128((__m128i *)(q + k0 + i),
                             _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
        }
        for (; i + 8 <= n; i += 8) {
            const __m256i a = e4m3_8(_mm256_div_ps(ld8(x, bf, k0 + i), vs));
            const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, a), 0x08);
            _mm_storel_epi64((__m128i *)(q + k0 + i), _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_castsi256_si128(w)));
        }
        for (; i < n; i++) q[k0 + i] = dsk_cpu_e4m3_encode(dsk_cpu_ld(x, bf, k0 + i) / sc);
    }
}

static void rmsnorm_row(const void *x, int xb, const void *w, int wb, void *y, int yb, int64_t n, float eps)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {   /* squares of f32 values are exact in f64 */
        const __m256 v = ld8(x, xb, i);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double part[4];
    _mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
    double ss = (part[0] + part[1]) + (part[2] + part[3]);
    for (; i < n; i++) {
        const double v = dsk_cpu_ld(x, xb, i);
        ss += v * v;
    }
    const float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) st8(y, yb, i, _mm256_mul_ps(_mm256_mul_ps(ld8(x, xb, i), vi), ld8(w, wb, i)));
    for (; i < n; i++) dsk_cpu_store_out(y, i, yb, dsk_cpu_ld(x, xb, i) * inv * dsk_cpu_ld(w, wb, i));
}

/* e^x: n = round(x log2 e), r = x - n ln2 (two-constant Cody-Waite), e^r = 1 + r + r^2 P(r)
 * with Cephes' expf coefficients, times 2^n built in the exponent field. x is clamped to
 * [-87.3, 88.3] so 2^n stays a normal f32 (the clamp drops a NaN; SwiGLU's g / (1 + e)
 * is NaN for a NaN g all the same). */
static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static void swiglu_row(const void *g, const void *u, int ib, void *y, int yb, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = ld8(g, ib, i);
        const __m256 e = exp8(_mm256_xor_ps(gv, neg));
        st8(y, yb, i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), ld8(u, ib, i)));
    }
    for (; i < n; i++) {
        const float gv = dsk_cpu_ld(g, ib, i);
        dsk_cpu_store_out(y, i, yb, gv / (1.0f + expf(-gv)) * dsk_cpu_ld(u, ib, i));
    }
}

static void rope_row(void *x, int bf, const float *cs2, const float *sn2, int64_t half)
{
    const int64_t n = 2 * half;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = ld8(x, bf, i);
        const __m256 sw = _mm256_permute_ps(v, 0xb1);   /* (x1, x0, x3, x2, ...) */
        st8(x, bf, i, _mm256_fmadd_ps(v, _mm256_loadu_ps(cs2 + i), _mm256_mul_ps(sw, _mm256_loadu_ps(sn2 + i))));
    }
    for (; i < n; i += 2) {
        const float re = dsk_cpu_ld(x, bf, i), im = dsk_cpu_ld(x, bf, i + 1);
        dsk_cpu_store_out(x, i, bf, re * cs2[i] + im * sn2[i]);
        dsk_cpu_store_out(x, i + 1, bf, im * cs2[i + 1] + re * sn2[i + 1]);
    }
}

const cpu_layer_kernels dsk_cpu_layers_avx2 = {
    .isa_name = "avx2", .isa = DSK_CPU_AVX2,
    .quant_row = quant_row,
    .rmsnorm_row = rmsnorm_row,
    .swiglu_row = swiglu_row,
    .rope_row = rope_row,
};
