/* cpu/layers_avx512.c: the avx512 level of the layer row kernels (contract:
 * cpu/layers_internal.h): the avx2 level's algorithms on 16 f32 lanes (AVX-512 F/BW/VL/DQ),
 * tails by masked loads and stores (masked-off lanes are neither read nor written), so
 * no C tail.
 *
 * quant: vmaxps with the running max as the second operand (skips a NaN element, as
 * fmaxf in the reference), the f32 division, the integer e4m3 encoder of
 * layers_internal.h lane-wise, vpmovdb to bytes. bf16 stores use the integer
 * round-to-nearest-even of dsk_cpu_store_out, not vcvtneps2bf16 (which flushes f32
 * subnormals to zero, Intel SDM, VCVTNEPS2BF16). */
#include <immintrin.h>

#include "cpu/layers_internal.h"

static inline __mmask16 tail(int64_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

static inline __m512 ld16(const void *p, int bf16, int64_t i, __mmask16 m)
{
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

static inline void st16(void *p, int bf16, int64_t i, __m512 v, __mmask16 m)
{
    if (bf16) {
        const __m512i u = _mm512_castps_si512(v);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                      _mm512_set1_epi32(0x7f800000));
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
        _mm512_mask_cvtepi32_storeu_epi16((uint16_t *)p + i, m, r);
    } else {
        _mm512_mask_storeu_ps((float *)p + i, m, v);
    }
}

/* The e4m3 codes of 16 f32 lanes as int32 (dsk_cpu_e4m3_encode lane-wise). */
static inline __m512i e4m3_16(__m512 v)
{
    const __m512i u = _mm512_castps_si512(v);
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 24), _mm512_set1_epi32(0x80));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(a, 20), _mm512_set1_epi32(1));
    __m512i code = _mm512_srli_epi32(_mm512_add_epi32(a, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7ffff))), 20);
    code = _mm512_min_epi32(_mm512_sub_epi32(code, _mm512_set1_epi32(120 << 3)), _mm512_set1_epi32(0x7e));
    const __mmask16 small = _mm512_cmplt_epi32_mask(a, _mm512_set1_epi32(0x3c800000));
    const __m512i sub = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(512.0f)),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    code = _mm512_or_si512(_mm512_mask_mov_epi32(code, small, sub), sign);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(0x7f));
}

static void quant_row(const void *x, int bf, int64_t K, uint8_t *q, float *s, int64_t ss)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t k0 = 0; k0 < K; k0 += 128) {
        const int64_t n = k0 + 128 < K ? 128 : K - k0;
        __m512 m0 = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16)   /* masked-off lanes load 0, below any |x| */
            m0 = _mm512_max_ps(_mm512_and_ps(ld16(x, bf, k0 + i, tail(n - i)), absmask), m0);
        const float amax = _mm512_reduce_max_ps(m0);
        const float sc = fmaxf(amax, DSK_CPU_AMAX_FLOOR) / DSK_CPU_E4M3_MAX;
        s[(k0 / 128) * ss] = sc;
        const __m512 vs = _mm512_set1_ps(sc);
        for (int64_t i = 0; i < n; i += 16) {
            const __mmask16 m = tail(n - i);
            _mm512_mask_cvtepi32_storeu_epi8(q + k0 + i, m, e4m3_16(_mm512_div_ps(ld16(x, bf, k0 + i, m), vs)));
        }
    }
}

static void rmsnorm_row(const void *x, int xb, const void *w, int wb, void *y, int yb, int64_t n, float eps)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {   /* squares of f32 values are exact in f64 */
        const __m512 v = ld16(x, xb, i, tail(n - i));
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 vi = _mm512_set1_ps((float)(1.0 / sqrt(ss / (double)n + (double)eps)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail(n - i);
        st16(y, yb, i, _mm512_mul_ps(_mm512_mul_ps(ld16(x, xb, i, m), vi), ld16(w, wb, i, m)), m);
    }
}

/* e^x as the avx2 level's exp8 (Cephes expf polynomial after a Cody-Waite reduction,
 * x clamped to [-87.3, 88.3]); 2^n by vscalefps. */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3f));
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static void swiglu_row(const void *g, const void *u, int ib, void *y, int yb, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail(n - i);
        const __m512 gv = ld16(g, ib, i, m);
        const __m512 e = exp16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(gv), _mm512_set1_epi32((int)0x80000000u))));
        st16(y, yb, i, _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)), ld16(u, ib, i, m)), m);
    }
}

static void rope_row(void *x, int bf, const float *cs2, const float *sn2, int64_t half)
{
    const int64_t n = 2 * half;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail(n - i);
        const __m512 v = ld16(x, bf, i, m);
        const __m512 sw = _mm512_permute_ps(v, 0xb1);   /* (x1, x0, x3, x2, ...) */
        st16(x, bf, i,
             _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, cs2 + i), _mm512_mul_ps(sw, _mm512_maskz_loadu_ps(m, sn2 + i))), m);
    }
}

const cpu_layer_kernels dsk_cpu_layers_avx512 = {
    .isa_name = "avx512", .isa = DSK_CPU_AVX512BF16,
    .quant_row = quant_row,
    .rmsnorm_row = rmsnorm_row,
    .swiglu_row = swiglu_row,
    .rope_row = rope_row,
};
