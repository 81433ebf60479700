/* cpu/gemm_fp8_avx2.c: FP8 block-scaled GEMM, AVX2 + FMA + F16C level.
 *
 * e4m3 -> f32 without a table: sign-extend the code to 16 bits, shift left by 7 and
 * mask with 0xBF80; the result is the f16 whose value is the e4m3 value times 2^-8
 * (exponent field eeee, bias 15 instead of 7; e4m3 subnormals become f16 subnormals, so
 * the mapping is exact for every finite code). vcvtph2ps widens it exactly. Both
 * operands carry 2^-8, so each block's scale is multiplied by 2^16. The NaN codes
 * (0x7F, 0xFF) decode to +-480 at this level instead of NaN.
 *
 * Dot-product form for every shape: four weight rows of one 128-K block are decoded
 * into an L1 buffer, then every activation row (decoded once per task) is dotted with
 * them, two rows at a time (8 ymm accumulators). */
#include <immintrin.h>
#include <string.h>

#include "cpu/cpu_internal.h"

/* 16 codes -> 16 f32 (times 2^-8). */
static inline void dec16(const uint8_t *p, float *out)
{
    __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
    w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16((short)0xBF80));
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm256_castsi256_si128(w)));
    _mm256_storeu_ps(out + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(w, 1)));
}

/* len (multiple of 128) values from avail codes, zero past them. */
static void dec_row(const uint8_t *src, int64_t avail, int64_t len, float *dst)
{
    for (int64_t c = 0; c < len; c += 16) {
        if (avail - c >= 16) {
            dec16(src + c, dst + c);
        } else {
            uint8_t tmp[16] = {0};
            if (avail - c > 0) memcpy(tmp, src + c, (size_t)(avail - c));
            dec16(tmp, dst + c);
        }
    }
}

static inline float hsum(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

#define TILE_M 16
#define TILE_N 32

static int avx2_tile(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const int64_t K = s->K, nkb = (K + 127) / 128, Kp = nkb * 128, mr = m1 - m0;
    float *af = dsk_cpu_scratch(0, sizeof(float) * (size_t)(mr * Kp));
    float *wb = dsk_cpu_scratch(1, sizeof(float) * 4 * 128);
    float *tot = dsk_cpu_scratch(2, sizeof(float) * (size_t)(mr * 4 * 8));
    if (!af || !wb || !tot) return -1;
    for (int64_t m = 0; m < mr; m++) dec_row(s->a + (m0 + m) * s->lda, K, Kp, af + m * Kp);
    for (int64_t n = n0; n < n1; n += 4) {
        const int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
        memset(tot, 0, sizeof(float) * (size_t)(mr * 4 * 8));
        const float *sbp = s->sb + (n / 128) * s->sb_n;
        for (int64_t kb = 0; kb < nkb; kb++) {
            const int64_t k0 = kb * 128;
            for (int j = 0; j < 4; j++)
                dec_row(s->b + (n + (j < nr ? j : 0)) * s->ldb + k0, K - k0, 128, wb + j * 128);
            const float sbv = sbp[kb * s->sb_k] * 65536.0f;
            for (int64_t m = 0; m < mr; m += 2) {
                const int two = m + 1 < mr;
                const float *a0 = af + m * Kp + k0, *a1 = two ? a0 + Kp : a0;
                __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
                __m256 q0 = p0, q1 = p0, q2 = p0, q3 = p0;
                for (int k = 0; k < 128; k += 8) {
                    const __m256 x0 = _mm256_loadu_ps(a0 + k), x1 = _mm256_loadu_ps(a1 + k);
                    const __m256 b0 = _mm256_loadu_ps(wb + k), b1 = _mm256_loadu_ps(wb + 128 + k);
                    const __m256 b2 = _mm256_loadu_ps(wb + 256 + k), b3 = _mm256_loadu_ps(wb + 384 + k);
                    p0 = _mm256_fmadd_ps(x0, b0, p0); p1 = _mm256_fmadd_ps(x0, b1, p1);
                    p2 = _mm256_fmadd_ps(x0, b2, p2); p3 = _mm256_fmadd_ps(x0, b3, p3);
                    q0 = _mm256_fmadd_ps(x1, b0, q0); q1 = _mm256_fmadd_ps(x1, b1, q1);
                    q2 = _mm256_fmadd_ps(x1, b2, q2); q3 = _mm256_fmadd_ps(x1, b3, q3);
                }
                const __m256 pr[4] = {p0, p1, p2, p3}, qr[4] = {q0, q1, q2, q3};
                const __m256 s0 = _mm256_set1_ps(s->sa[(m0 + m) * s->sa_m + kb * s->sa_k] * sbv);
                for (int j = 0; j < 4; j++) {
                    float *t = tot + (m * 4 + j) * 8;
                    _mm256_storeu_ps(t, _mm256_fmadd_ps(pr[j], s0, _mm256_loadu_ps(t)));
                }
                if (two) {
                    const __m256 s1 = _mm256_set1_ps(s->sa[(m0 + m + 1) * s->sa_m + kb * s->sa_k] * sbv);
                    for (int j = 0; j < 4; j++) {
                        float *t = tot + ((m + 1) * 4 + j) * 8;
                        _mm256_storeu_ps(t, _mm256_fmadd_ps(qr[j], s1, _mm256_loadu_ps(t)));
                    }
                }
            }
        }
        for (int64_t m = 0; m < mr; m++)
            for (int j = 0; j < nr; j++)
                dsk_cpu_store_out(s->d, (m0 + m) * s->ldd + n + j, s->d_bf16,
                                  hsum(_mm256_loadu_ps(tot + (m * 4 + j) * 8)));
    }
    return 0;
}

const cpu_gemm_kernels dsk_cpu_gemm_avx2 = {
    .isa_name = "avx2", .isa = DSK_CPU_AVX2,
    .decode_max_m = 0, .decode = NULL,
    .tile_m = TILE_M, .tile_n = TILE_N, .tile = avx2_tile,
};
