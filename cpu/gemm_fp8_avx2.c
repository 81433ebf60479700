/* cpu/gemm_fp8_avx2.c: FP8 block-scaled GEMM, AVX2 + FMA + F16C level.
 *
 * e4m3 -> f32 without a table: sign-extend the code to 16 bits, shift left by 7 and
 * mask with 0xBF80; the result is the f16 whose value is the e4m3 value times 2^-8
 * (exponent field eeee, bias 15 instead of 7; e4m3 subnormals become f16 subnormals, so
 * the mapping is exact for every finite code). vcvtph2ps widens it exactly. Both
 * operands carry 2^-8, so each block's scale is multiplied by 2^16. The NaN codes
 * (0x7F, 0xFF) decode to +-480 at this level instead of NaN.
 *
 * Decode path (M <= 8): activations are decoded once per task to f32 (zero-padded to
 * whole 128-K blocks, L1/L2 resident); each weight row's bytes are read from memory
 * exactly once, 8 codes per vpmovsxbw straight into registers, decoded and FMA-ed
 * against the M activation rows (memory operands). RR weight rows go per pass (4 for
 * M <= 2, 2 for M = 3, 4, 1 for M = 5..8: at most 8 block accumulators in the 16 ymm
 * registers, two per (row, column) for M = 1 to hide the FMA latency). Each 128-K
 * block's partial sums are scaled by a_scale * b_scale * 2^16 into f32 totals. A ragged
 * last K block is copied into a zero-padded buffer; a ragged N tail repeats a valid row
 * and does not store it. Up to M = 8 this beats the tile path (measured on Zen 1, 2
 * threads: 2.1-2.3x at M = 1, 1.7x at M = 4, 1.6x at M = 8). It is compute-bound, not
 * bandwidth-bound, on Zen 1: the decode costs about 2.6 cycles per 8 codes (9 GB/s of
 * weights at M = 1 on 2 cores, against 20 GB/s stream read); prefetching did not help.
 *
 * Tile path (larger M): four weight rows of one 128-K block are decoded
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

/* ---- decode path ---- */
#define DEC_MAX_M 8

/* 8 codes -> 8 f32 (times 2^-8), read from memory by vpmovsxbw. */
static inline __m256 dec8(const uint8_t *p)
{
    __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p));
    w = _mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16((short)0xBF80));
    return _mm256_cvtph_ps(w);
}

/* One pass of RR weight rows (br[j], 128-K blocks kb_lo..kb_hi, kb_hi possibly read from
 * the zero-padded copy `tail`) against MM activation rows. tot[m * RR + j] accumulates
 * the scaled block sums. DUAL: two accumulators per (m, j). */
static inline __attribute__((always_inline)) void
dec_pass(const float *af, int64_t Kp, const float *sa, int64_t nkb, const uint8_t *const *br,
         const uint8_t *tail, int64_t nfull, const float *sbp, int64_t sb_k, int MM, int RR, int DUAL,
         __m256 *tot)
{
    for (int64_t kb = 0; kb < nkb; kb++) {
        const int64_t k0 = kb * 128;
        const uint8_t *bp[4];
#pragma GCC unroll 8
        for (int j = 0; j < RR; j++) bp[j] = kb < nfull ? br[j] + k0 : tail + j * 128;
        __m256 acc[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm256_setzero_ps();
        const float *ap = af + k0;
        for (int k = 0; k < 128; k += 16) {
#pragma GCC unroll 8
            for (int j = 0; j < RR; j++) {
                const __m256 w0 = dec8(bp[j] + k), w1 = dec8(bp[j] + k + 8);
#pragma GCC unroll 8
                for (int m = 0; m < MM; m++) {
                    const int i = (m * RR + j) * (DUAL ? 2 : 1);
                    acc[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(ap + m * Kp + k), acc[i]);
                    acc[i + DUAL] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(ap + m * Kp + k + 8), acc[i + DUAL]);
                }
            }
        }
        const float sbv = sbp[kb * sb_k] * 65536.0f;
#pragma GCC unroll 8
        for (int m = 0; m < MM; m++) {
            const __m256 sc = _mm256_set1_ps(sa[m * nkb + kb] * sbv);
#pragma GCC unroll 8
            for (int j = 0; j < RR; j++) {
                const int i = (m * RR + j) * (DUAL ? 2 : 1);
                const __m256 p = DUAL ? _mm256_add_ps(acc[i], acc[i + 1]) : acc[i];
                tot[m * RR + j] = _mm256_fmadd_ps(p, sc, tot[m * RR + j]);
            }
        }
    }
}

static int avx2_decode(const cpu_gemm_sub *s, int64_t n0, int64_t n1)
{
    const int64_t M = s->M, K = s->K, nkb = (K + 127) / 128, Kp = nkb * 128;
    const int64_t nfull = K / 128;   /* blocks read straight from b; a ragged last one is copied */
    float *af = dsk_cpu_scratch(0, sizeof(float) * (size_t)(M * Kp));
    float *sa = dsk_cpu_scratch(1, sizeof(float) * (size_t)(M * nkb));
    uint8_t *tail = dsk_cpu_scratch(2, 4 * 128);
    if (!af || !sa || !tail) return -1;
    for (int64_t m = 0; m < M; m++) {
        dec_row(s->a + m * s->lda, K, Kp, af + m * Kp);
        for (int64_t kb = 0; kb < nkb; kb++) sa[m * nkb + kb] = s->sa[m * s->sa_m + kb * s->sa_k];
    }
    /* rows per pass: M x RR <= 8 block accumulators (x2 when DUAL) */
    const int RR = M <= 2 ? 4 : M <= 4 ? 2 : 1;
    for (int64_t n = n0; n < n1; n += RR) {
        const int nr = n1 - n < RR ? (int)(n1 - n) : RR;
        const uint8_t *br[4];
        for (int j = 0; j < RR; j++) br[j] = s->b + (n + (j < nr ? j : 0)) * s->ldb;
        if (nfull < nkb)
            for (int j = 0; j < RR; j++) {
                memset(tail + j * 128, 0, 128);
                memcpy(tail + j * 128, br[j] + nfull * 128, (size_t)(K - nfull * 128));
            }
        /* n is a multiple of RR (n0 of 4), so the RR rows share one 128-row scale block */
        const float *sbp = s->sb + (n / 128) * s->sb_n;
        __m256 tot[8];
        for (int i = 0; i < 8; i++) tot[i] = _mm256_setzero_ps();
        switch (M) {
        case 1: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 1, 4, 1, tot); break;
        case 2: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 2, 4, 0, tot); break;
        case 3: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 3, 2, 0, tot); break;
        case 4: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 4, 2, 0, tot); break;
        case 5: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 5, 1, 0, tot); break;
        case 6: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 6, 1, 0, tot); break;
        case 7: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 7, 1, 0, tot); break;
        default: dec_pass(af, Kp, sa, nkb, br, tail, nfull, sbp, s->sb_k, 8, 1, 0, tot); break;
        }
        for (int64_t m = 0; m < M; m++)
            for (int j = 0; j < nr; j++)
                dsk_cpu_store_out(s->d, m * s->ldd + n + j, s->d_bf16, hsum(tot[m * RR + j]));
    }
    return 0;
}

const cpu_gemm_kernels dsk_cpu_gemm_avx2 = {
    .isa_name = "avx2", .isa = DSK_CPU_AVX2,
    .decode_max_m = DEC_MAX_M, .decode = avx2_decode,
    .tile_m = TILE_M, .tile_n = TILE_N, .tile = avx2_tile,
};
