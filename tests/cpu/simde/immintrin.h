/* tests/cpu/simde/immintrin.h: stands in for <immintrin.h> when
 * tests/cpu/test_cpu_layers_avx512_simde compiles cpu/layers_avx512.c on a CPU without
 * AVX-512: SIMDe (libsimde-dev, optional) implements the AVX-512 intrinsics in portable
 * C under their Intel names; the few that SIMDe 0.7.4 lacks are written below, lane by
 * lane, after the Intel Intrinsics Guide's descriptions. Test-only: nothing in the
 * library includes this directory. */
#ifndef DSK_TEST_SIMDE_IMMINTRIN_H
#define DSK_TEST_SIMDE_IMMINTRIN_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <math.h>
#include <stdint.h>

typedef simde__mmask16 __mmask16;
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

#endif
