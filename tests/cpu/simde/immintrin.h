/* tests/cpu/simde/immintrin.h: stands in for <immintrin.h> when the tests compile the
 * cpu backend's AVX-512 sources (cpu/layers_avx512.c, cpu/gemm_fp8_avx512.c,
 * cpu/mla_decode_avx512.c, cpu/mla_decode_bf16_avx512.c) on a CPU without AVX-512: SIMDe
 * (libsimde-dev, optional) implements the AVX-512 intrinsics in portable C under their
 * Intel names; the ones that SIMDe 0.7.4 lacks, or implements with other rounding than
 * the instruction, are written below, lane by lane, after the Intel Intrinsics Guide's
 * and the SDM's descriptions. Test-only: nothing in the library includes this directory. */
#ifndef DSK_TEST_SIMDE_IMMINTRIN_H
#define DSK_TEST_SIMDE_IMMINTRIN_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef simde__mmask16 __mmask16;
typedef simde__mmask64 __mmask64;
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#endif

static inline void dsk_simde_f(float *d, __m512 v) { _mm512_storeu_ps(d, v); }
static inline void dsk_simde_i(int32_t *d, __m512i v) { _mm512_storeu_si512(d, v); }

static inline __mmask16 dsk_simde_cmplt_epi32_mask(__m512i a, __m512i b)
{
    int32_t x[16], y[16];
    dsk_simde_i(x, a);
    dsk_simde_i(y, b);
    __mmask16 m = 0;
    for (int i = 0; i < 16; i++) m |= (__mmask16)((x[i] < y[i]) << i);
    return m;
}
#ifndef _mm512_cmplt_epi32_mask
#define _mm512_cmplt_epi32_mask dsk_simde_cmplt_epi32_mask
#endif

/* round to nearest even (the only mode cpu/ asks for) */
static inline __m512i dsk_simde_cvt_roundps_epi32(__m512 a, int mode)
{
    (void)mode;
    float x[16];
    int32_t o[16];
    dsk_simde_f(x, a);
    for (int i = 0; i < 16; i++) o[i] = (int32_t)nearbyintf(x[i]);
    return _mm512_loadu_si512(o);
}
#ifndef _mm512_cvt_roundps_epi32
#define _mm512_cvt_roundps_epi32 dsk_simde_cvt_roundps_epi32
#endif

static inline float dsk_simde_reduce_max_ps(__m512 a)
{
    float x[16];
    dsk_simde_f(x, a);
    float m = x[0];
    for (int i = 1; i < 16; i++) m = x[i] > m ? x[i] : m;
    return m;
}
#ifndef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps dsk_simde_reduce_max_ps
#endif

static inline double dsk_simde_reduce_add_pd(__m512d a)
{
    double x[8];
    _mm512_storeu_pd(x, a);
    return ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
}
#ifndef _mm512_reduce_add_pd
#define _mm512_reduce_add_pd dsk_simde_reduce_add_pd
#endif

/* vpmovdb / vpmovdw with a store mask: truncate each lane, write only masked lanes */
static inline void dsk_simde_mask_cvtepi32_storeu_epi8(void *p, __mmask16 k, __m512i a)
{
    int32_t x[16];
    dsk_simde_i(x, a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((uint8_t *)p)[i] = (uint8_t)x[i];
}
#ifndef _mm512_mask_cvtepi32_storeu_epi8
#define _mm512_mask_cvtepi32_storeu_epi8 dsk_simde_mask_cvtepi32_storeu_epi8
#endif

static inline void dsk_simde_mask_cvtepi32_storeu_epi16(void *p, __mmask16 k, __m512i a)
{
    int32_t x[16];
    dsk_simde_i(x, a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((uint16_t *)p)[i] = (uint16_t)x[i];
}
#ifndef _mm512_mask_cvtepi32_storeu_epi16
#define _mm512_mask_cvtepi32_storeu_epi16 dsk_simde_mask_cvtepi32_storeu_epi16
#endif

static inline __m512d dsk_simde_cvtps_pd(__m256 a)
{
    float x[8];
    double d[8];
    _mm256_storeu_ps(x, a);
    for (int i = 0; i < 8; i++) d[i] = x[i];
    return _mm512_loadu_pd(d);
}
#ifndef _mm512_cvtps_pd
#define _mm512_cvtps_pd dsk_simde_cvtps_pd
#endif

static inline __m512i dsk_simde_cvtepu16_epi32(__m256i a)
{
    uint16_t h[16];
    int32_t o[16];
    _mm256_storeu_si256((__m256i *)h, a);
    for (int i = 0; i < 16; i++) o[i] = h[i];
    return _mm512_loadu_si512(o);
}
#ifndef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 dsk_simde_cvtepu16_epi32
#endif

/* masked loads: masked-off lanes are zero and their memory is not read */
static inline __m256i dsk_simde_maskz_loadu_epi16(__mmask16 k, const void *p)
{
    uint16_t h[16];
    for (int i = 0; i < 16; i++) h[i] = (k >> i & 1) ? ((const uint16_t *)p)[i] : 0;
    return _mm256_loadu_si256((const __m256i *)h);
}
#ifndef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16 dsk_simde_maskz_loadu_epi16
#endif

static inline __m512 dsk_simde_maskz_loadu_ps(__mmask16 k, const void *p)
{
    float f[16];
    for (int i = 0; i < 16; i++) f[i] = (k >> i & 1) ? ((const float *)p)[i] : 0.0f;
    return _mm512_loadu_ps(f);
}
#ifndef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps dsk_simde_maskz_loadu_ps
#endif

static inline void dsk_simde_mask_storeu_ps(void *p, __mmask16 k, __m512 a)
{
    float x[16];
    dsk_simde_f(x, a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((float *)p)[i] = x[i];
}
#ifndef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps dsk_simde_mask_storeu_ps
#endif

/* vpermilps with an immediate: the same 4-lane shuffle in each 128-bit lane */
static inline __m512 dsk_simde_permute_ps(__m512 a, int imm)
{
    float x[16], o[16];
    dsk_simde_f(x, a);
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 4; i++) o[4 * l + i] = x[4 * l + ((imm >> (2 * i)) & 3)];
    return _mm512_loadu_ps(o);
}
#ifndef _mm512_permute_ps
#define _mm512_permute_ps dsk_simde_permute_ps
#endif

static inline float dsk_simde_reduce_add_ps(__m512 a)
{
    /* the halving tree of GCC's avx512fintrin.h: (i, i+8), then (i, i+4), (i, i+2), (0, 1) */
    float x[16];
    dsk_simde_f(x, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) x[i] += x[i + w];
    return x[0];
}
#ifndef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps dsk_simde_reduce_add_ps
#endif

/* vmovdqu8 with a zero mask: masked-off bytes are zero and their memory is not read */
static inline __m512i dsk_simde_maskz_loadu_epi8(__mmask64 k, const void *p)
{
    uint8_t b[64];
    for (int i = 0; i < 64; i++) b[i] = (k >> i & 1) ? ((const uint8_t *)p)[i] : 0;
    return _mm512_loadu_si512(b);
}
#ifndef _mm512_maskz_loadu_epi8
#define _mm512_maskz_loadu_epi8 dsk_simde_maskz_loadu_epi8
#endif

/* vmovdqu16 store with a mask: only masked words are written */
static inline void dsk_simde_mask_storeu_epi16(void *p, __mmask16 k, __m256i a)
{
    uint16_t h[16];
    _mm256_storeu_si256((__m256i *)h, a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((uint16_t *)p)[i] = h[i];
}
#ifndef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16 dsk_simde_mask_storeu_epi16
#endif

/* ---- AVX512_BF16 (Intel SDM vol. 2, VCVTNE2PS2BF16, VCVTNEPS2BF16, VDPBF16PS) ---- */

/* The SDM's convert_fp32_to_bfloat16: zero and denormal inputs give a zero of the same
 * sign (DAZ), infinities are truncated, NaNs truncated and made quiet (bit 6 set), normal
 * numbers rounded to nearest even by adding 0x7fff + bit 16. MXCSR plays no part. */
static inline uint16_t dsk_simde_cvt_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t e = u & 0x7f800000u;
    if (e == 0) return (uint16_t)((u >> 16) & 0x8000u);
    if (e == 0x7f800000u) return (uint16_t)((u >> 16) | ((u & 0x007fffffu) ? 0x40u : 0u));
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* vcvtneps2bf16: 16 floats to 16 bf16, lane i from a[i] */
static inline __m256bh dsk_simde_cvtneps_pbh(__m512 a)
{
    float x[16];
    uint16_t h[16];
    dsk_simde_f(x, a);
    for (int i = 0; i < 16; i++) h[i] = dsk_simde_cvt_bf16(x[i]);
    __m256bh r;
    memcpy(&r, h, sizeof r);
    return r;
}
#ifndef _mm512_cvtneps_pbh
#define _mm512_cvtneps_pbh dsk_simde_cvtneps_pbh
#endif

/* vcvtne2ps2bf16: words 0..15 of the result from b, words 16..31 from a */
static inline __m512bh dsk_simde_cvtne2ps_pbh(__m512 a, __m512 b)
{
    float x[16], y[16];
    uint16_t h[32];
    dsk_simde_f(x, a);
    dsk_simde_f(y, b);
    for (int i = 0; i < 16; i++) {
        h[i] = dsk_simde_cvt_bf16(y[i]);
        h[16 + i] = dsk_simde_cvt_bf16(x[i]);
    }
    __m512bh r;
    memcpy(&r, h, sizeof r);
    return r;
}
#ifndef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh dsk_simde_cvtne2ps_pbh
#endif

/* f32 with denormals read as zero of the same sign */
static inline float dsk_simde_daz(uint32_t u)
{
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One accumulation step of vdpbf16ps: c + a*b as a single-rounding FMA, round to
 * nearest even (the C default, which the tests keep), denormal result flushed to a zero
 * of its sign. a and b come from bf16 (8 significant bits), so a*b is exact in f32
 * whenever it is a normal number, and then a*b + c rounds once, like the FMA; a product
 * in the subnormal range or beyond FLT_MAX goes through fmaf. */
static inline float dsk_simde_bf16_fma(float a, float b, float c)
{
    const float p = a * b;
    const float r = isnormal(p) || a == 0.0f || b == 0.0f ? p + c : fmaf(a, b, c);
    return fpclassify(r) == FP_SUBNORMAL ? copysignf(0.0f, r) : r;
}

/* vdpbf16ps as the SDM's operation section states it, which is not one fused dot
 * product: per f32 lane i, with DAZ on every input and FTZ on every result,
 *   acc = acc + a[2i+1] * b[2i+1]   (rounded, the odd pair first)
 *   acc = acc + a[2i]   * b[2i]     (rounded)
 * SIMDe 0.7.4 adds the even product first and keeps denormals, so it is replaced here.
 * Not modelled: which NaN operand's payload survives (the SDM's NaN priority table);
 * any NaN input still gives a NaN. */
static inline __m512 dsk_simde_dpbf16_ps(__m512 src, __m512bh a, __m512bh b)
{
    float acc[16];
    uint16_t x[32], y[32];
    uint32_t u[16];
    _mm512_storeu_ps(acc, src);
    memcpy(u, acc, sizeof u);
    memcpy(x, &a, sizeof x);
    memcpy(y, &b, sizeof y);
    for (int i = 0; i < 16; i++) {
        float t = dsk_simde_daz(u[i]);
        t = dsk_simde_bf16_fma(dsk_simde_daz((uint32_t)x[2 * i + 1] << 16), dsk_simde_daz((uint32_t)y[2 * i + 1] << 16), t);
        t = dsk_simde_bf16_fma(dsk_simde_daz((uint32_t)x[2 * i] << 16), dsk_simde_daz((uint32_t)y[2 * i] << 16), t);
        acc[i] = t;
    }
    return _mm512_loadu_ps(acc);
}
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps dsk_simde_dpbf16_ps

#endif
