/* cpu/gemm_fp8_avx512.c: FP8 block-scaled GEMM, AVX-512 BF16 level (compiled with the
 * AVX-512 flags; only called after run-time detection says the CPU has them).
 *
 * FP8 -> bf16 in registers: an e4m3 value has 4 significant bits, so it is exact in
 * bf16. A 64-byte chunk of codes is decoded with two byte-table lookups (vpermi2b over
 * 128-entry tables indexed by the 7 magnitude bits: the high and the low byte of the
 * bf16), the sign OR-ed into the high byte, and the two byte vectors interleaved with
 * vpunpck{l,h}bw. The interleave leaves the pairs (2i, 2i+1) intact but permutes pair
 * order within each chunk; A and B go through the same decode, so dot products over a
 * chunk are unchanged.
 *
 * vdpbf16ps multiplies bf16 pairs and adds into f32 lanes. Per 128-wide K block the
 * f32 partial is scaled by a_scale * b_scale and added to an f32 total.
 *
 * Decode path (M <= 8): dot-product form. Four weight rows are decoded per 128-K block
 * (16 zmm), every activation row (pre-decoded to bf16, zero-padded) is dotted with
 * them; weights are read from memory exactly once. Totals live in a small L1 array; each is
 * reduced horizontally once at the end. Bandwidth-bound up to M = 8 (16 flop per weight
 * byte); past that the prefill path is faster (measured: docs/PERFORMANCE.md).
 *
 * Prefill path (M > 8), with the weights as the broadcast operand so that neither
 * operand needs a transpose in the hot loop:
 *  - activations are packed once per GEMM (pack_a, all workers): 64-row panels, per
 *    128-wide K block [64 pairs][h rows] of bf16 pairs (16 x 16 transposes), h the
 *    panel's rows rounded up to 16, plus the panel's a scales;
 *  - a task is up to 256 rows x 192 columns; per K block it decodes its weight rows
 *    once (row-major bf16, 256 bytes a row, no transpose) and runs every panel against
 *    them; a one-panel task (M <= 64) instead walks NR weight rows over all of K, so
 *    the weights stream sequentially;
 *  - the microkernel MV x NR (4x6, 3x8, 2x12, 1x24 for 64/48/32/16-row panels) keeps
 *    24 zmm accumulators for 16 MV rows x NR columns, loads MV activation vectors and
 *    broadcasts one pair of each weight row per K pair: MV loads + NR broadcasts per
 *    24 vdpbf16ps. One K block (64 pairs) per call; the block's scales are applied to
 *    the column-major f32 totals (L2), which are transposed into D at the end.
 *  The activation panel's K block (16 KiB) stays in L1 while the columns stream by. */
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#include "cpu/cpu_internal.h"

static uint8_t tab_hi[128] __attribute__((aligned(64)));
static uint8_t tab_lo[128] __attribute__((aligned(64)));
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_build(void)
{
    dsk_cpu_tables_init();
    for (int c = 0; c < 128; c++) {
        union { float f; uint32_t u; } v = {dsk_cpu_e4m3_f32[c]};
        tab_hi[c] = (uint8_t)(v.u >> 24);
        tab_lo[c] = (uint8_t)(v.u >> 16);
    }
}

typedef struct dec_tabs { __m512i hi0, hi1, lo0, lo1, sign; } dec_tabs;

static inline dec_tabs tabs_load(void)
{
    dec_tabs t;
    t.hi0 = _mm512_load_si512((const void *)tab_hi);
    t.hi1 = _mm512_load_si512((const void *)(tab_hi + 64));
    t.lo0 = _mm512_load_si512((const void *)tab_lo);
    t.lo1 = _mm512_load_si512((const void *)(tab_lo + 64));
    t.sign = _mm512_set1_epi8((char)0x80);
    return t;
}

/* 64 e4m3 codes -> 64 bf16 in two vectors (pair order permuted as described above). */
static inline void dec64(const dec_tabs *t, __m512i x, __m512i *w0, __m512i *w1)
{
    __m512i hi = _mm512_permutex2var_epi8(t->hi0, x, t->hi1);
    hi = _mm512_ternarylogic_epi32(hi, x, t->sign, 0xF8);   /* hi | (x & 0x80) */
    __m512i lo = _mm512_permutex2var_epi8(t->lo0, x, t->lo1);
    *w0 = _mm512_unpacklo_epi8(lo, hi);
    *w1 = _mm512_unpackhi_epi8(lo, hi);
}

static inline __mmask64 tail_mask(int64_t avail)
{
    if (avail >= 64) return ~(__mmask64)0;
    if (avail <= 0) return 0;
    return ((__mmask64)1 << avail) - 1;
}

/* Decodes len (a multiple of 64) codes from src, of which avail exist; zeros past them. */
static inline void dec_row(const dec_tabs *t, const uint8_t *src, int64_t avail, int64_t len, uint16_t *dst)
{
    for (int64_t c = 0; c < len; c += 64) {
        __m512i x = _mm512_maskz_loadu_epi8(tail_mask(avail - c), src + c);
        __m512i w0, w1;
        dec64(t, x, &w0, &w1);
        _mm512_storeu_si512((void *)(dst + c), w0);
        _mm512_storeu_si512((void *)(dst + c + 32), w1);
    }
}

static inline __m512 dot(__m512 acc, __m512i a, __m512i b)
{
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/* In-register transpose of a 16 x 16 block of 32-bit elements: r[i] (row i) becomes
 * column i. Two unpack stages build, per 128-bit lane, 4 x 4 transposed blocks; two
 * 128-bit-lane shuffle stages move those blocks into place (64 shuffles in all). */
static inline __attribute__((always_inline)) void tr16x16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {   /* r[4g + c], lane L: column 4L + c of rows 4g..4g+3 */
        r[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);        /* lanes 0, 2 of groups 0, 1 */
        t[4 + c] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);    /* lanes 1, 3 of groups 0, 1 */
        t[8 + c] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);
        r[4 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0xdd);
    }
}

/* ---- decode path ---- */
#define DEC_MAX_M 8

static int avx512_decode(const cpu_gemm_sub *s, int64_t n0, int64_t n1)
{
    pthread_once(&tab_once, tab_build);
    const dec_tabs t = tabs_load();
    const int64_t M = s->M, K = s->K, nkb = (K + 127) / 128, Kp = nkb * 128;
    uint16_t *abf = dsk_cpu_scratch(0, sizeof(uint16_t) * (size_t)(M * Kp));
    float *sa = dsk_cpu_scratch(1, sizeof(float) * (size_t)(M * nkb));
    if (!abf || !sa) return -1;
    for (int64_t m = 0; m < M; m++) {
        dec_row(&t, s->a + m * s->lda, K, Kp, abf + m * Kp);
        for (int64_t kb = 0; kb < nkb; kb++) sa[m * nkb + kb] = s->sa[m * s->sa_m + kb * s->sa_k];
    }
    __m512 tot[DEC_MAX_M * 4];
    for (int64_t n = n0; n < n1; n += 4) {
        const int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
        const uint8_t *br[4];
        for (int j = 0; j < 4; j++) br[j] = s->b + (n + (j < nr ? j : 0)) * s->ldb;
        /* Prefetch the next group of rows while this one is decoded: one group (4K bytes)
         * ahead hides the memory latency that the hardware stream prefetcher, tracking
         * four interleaved streams, does not. */
        const uint8_t *pf[4];
        for (int j = 0; j < 4; j++) pf[j] = n + 4 + j < n1 ? br[0] + (4 + j) * s->ldb : br[j];
        for (int64_t i = 0; i < M * 4; i++) tot[i] = _mm512_setzero_ps();
        const float *sbp = s->sb + (n / 128) * s->sb_n;
        for (int64_t kb = 0; kb < nkb; kb++) {
            const int64_t k0 = kb * 128;
            const __mmask64 mk0 = tail_mask(K - k0), mk1 = tail_mask(K - k0 - 64);
            __m512i w[4][4];
            for (int j = 0; j < 4; j++) {
                _mm_prefetch((const char *)(pf[j] + k0), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf[j] + k0 + 64), _MM_HINT_T0);
                dec64(&t, _mm512_maskz_loadu_epi8(mk0, br[j] + k0), &w[j][0], &w[j][1]);
                dec64(&t, _mm512_maskz_loadu_epi8(mk1, br[j] + k0 + 64), &w[j][2], &w[j][3]);
            }
            const float sbv = sbp[kb * s->sb_k];
            for (int64_t m = 0; m < M; m++) {
                const uint16_t *ap = abf + m * Kp + k0;
                const __m512i a0 = _mm512_loadu_si512(ap), a1 = _mm512_loadu_si512(ap + 32);
                const __m512i a2 = _mm512_loadu_si512(ap + 64), a3 = _mm512_loadu_si512(ap + 96);
                const __m512 sc = _mm512_set1_ps(sa[m * nkb + kb] * sbv);
                for (int j = 0; j < 4; j++) {
                    __m512 p = dot(_mm512_setzero_ps(), a0, w[j][0]);
                    __m512 q = dot(_mm512_setzero_ps(), a1, w[j][1]);
                    p = dot(p, a2, w[j][2]);
                    q = dot(q, a3, w[j][3]);
                    tot[m * 4 + j] = _mm512_fmadd_ps(_mm512_add_ps(p, q), sc, tot[m * 4 + j]);
                }
            }
        }
        for (int64_t m = 0; m < M; m++)
            for (int j = 0; j < nr; j++)
                dsk_cpu_store_out(s->d, m * s->ldd + n + j, s->d_bf16, _mm512_reduce_add_ps(tot[m * 4 + j]));
    }
    return 0;
}

/* ---- prefill path ---- */
#define PM 64                     /* rows per packed activation panel */
#define KP 64                     /* bf16 pairs per 128-wide K block */
#define PANEL_U32 (KP * PM + PM)  /* one panel's K block: pairs, then 64 a scales */
#define MC 256                    /* rows per task */
#define NC 192                    /* columns per task at most */
#define N_GRAIN 24                /* task width grain: a multiple of every NR below */

/* Packed activations: panel p (rows [64p, 64p + 64) of the sub-problem), K block kb at
 * apk + (p * nkb + kb) * PANEL_U32 u32: [64 pairs][h] bf16 pairs, h = the panel's rows
 * rounded up to 16 (rows past M are zero), then at offset KP * PM the h a scales (f32,
 * zero past M). One K block of a full panel is 16 KiB: it stays in L1 while a task's
 * columns stream past it. */
static size_t avx512_pack_bytes(const cpu_gemm_sub *s)
{
    const int64_t nkb = (s->K + 127) / 128, np = (s->M + PM - 1) / PM;
    return sizeof(uint32_t) * (size_t)(np * nkb * PANEL_U32);
}

static int avx512_pack_a(const cpu_gemm_sub *s, void *dst, int64_t p)
{
    pthread_once(&tab_once, tab_build);
    const dec_tabs t = tabs_load();
    const int64_t K = s->K, nkb = (K + 127) / 128;
    const int64_t r0 = p * PM, cnt = s->M - r0 < PM ? s->M - r0 : PM, h = (cnt + 15) / 16 * 16;
    uint32_t *rows = dsk_cpu_scratch(0, sizeof(uint32_t) * 16 * KP);   /* 16 rows of one K block */
    if (!rows) return -1;
    uint32_t *base = (uint32_t *)dst + p * nkb * PANEL_U32;
    for (int64_t kb = 0; kb < nkb; kb++) {
        uint32_t *blk = base + kb * PANEL_U32;
        for (int64_t rb = 0; rb < h; rb += 16) {
            /* 16 rows decoded (zero past M), then 16 x 16 transposes: pair kp of rows
             * rb..rb+15 lands in one vector at blk[kp * h + rb]. */
            for (int64_t i = 0; i < 16; i++) {
                if (rb + i < cnt)
                    dec_row(&t, s->a + (r0 + rb + i) * s->lda + kb * 128, K - kb * 128, 128, (uint16_t *)(rows + i * KP));
                else
                    memset(rows + i * KP, 0, sizeof(uint32_t) * KP);
            }
            for (int q = 0; q < KP; q += 16) {
                __m512i r[16];
                for (int i = 0; i < 16; i++) r[i] = _mm512_load_si512(rows + i * KP + q);
                tr16x16(r);
                for (int i = 0; i < 16; i++) _mm512_store_si512(blk + (q + i) * h + rb, r[i]);
            }
        }
        float *sad = (float *)blk + KP * PM;
        for (int64_t i = 0; i < h; i++) sad[i] = i < cnt ? s->sa[(r0 + i) * s->sa_m + kb * s->sa_k] : 0.0f;
    }
    return 0;
}

/* Microkernel MV x NR: C[NR columns][16 MV rows] += scale * (A block . B rows) over one
 * 128-wide K block. ap: [64 pairs][16 MV] bf16 pairs (a panel's K block); bp: NR
 * decoded weight rows of 64 pairs, 256 bytes apart; sa: 16 MV a scales; sbc: NR b
 * scales; c: column j's rows at c + j * ldc. Accumulators: MV * NR = 24 zmm. Each pair
 * step loads MV vectors of A and broadcasts one pair of each weight row (the broadcast
 * folds into vdpbf16ps's memory operand). */
static inline __attribute__((always_inline)) void micro(const int MV, const int NR, const uint32_t *ap,
                                                        const uint32_t *bp, const float *sa, const float *sbc,
                                                        float *c, int64_t ldc)
{
    __m512 acc[4][24];
#pragma GCC unroll 4
    for (int v = 0; v < MV; v++)
#pragma GCC unroll 24
        for (int j = 0; j < NR; j++) acc[v][j] = _mm512_setzero_ps();
    for (int kp = 0; kp < KP; kp++) {
        __m512i a[4];
#pragma GCC unroll 4
        for (int v = 0; v < MV; v++) a[v] = _mm512_load_si512(ap + kp * 16 * MV + 16 * v);
#pragma GCC unroll 24
        for (int j = 0; j < NR; j++) {
            const __m512i b = _mm512_set1_epi32((int)bp[j * KP + kp]);
#pragma GCC unroll 4
            for (int v = 0; v < MV; v++) acc[v][j] = dot(acc[v][j], a[v], b);
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < MV; v++) {
        const __m512 sv = _mm512_loadu_ps(sa + 16 * v);
#pragma GCC unroll 24
        for (int j = 0; j < NR; j++) {
            float *cp = c + j * ldc + 16 * v;
            const __m512 sc = _mm512_mul_ps(sv, _mm512_set1_ps(sbc[j]));
            _mm512_store_ps(cp, _mm512_fmadd_ps(acc[v][j], sc, _mm512_load_ps(cp)));
        }
    }
}

/* Columns [0, ncols) of one K block against one panel of h rows, NR columns at a time. */
static void panel_pass(int64_t h, const uint32_t *ap, const uint32_t *bbuf, const float *sa, const float *sbc,
                       int64_t ncols, float *c, int64_t ldc)
{
    switch (h) {
    case 64:
        for (int64_t j = 0; j < ncols; j += 6) micro(4, 6, ap, bbuf + j * KP, sa, sbc + j, c + j * ldc, ldc);
        break;
    case 48:
        for (int64_t j = 0; j < ncols; j += 8) micro(3, 8, ap, bbuf + j * KP, sa, sbc + j, c + j * ldc, ldc);
        break;
    case 32:
        for (int64_t j = 0; j < ncols; j += 12) micro(2, 12, ap, bbuf + j * KP, sa, sbc + j, c + j * ldc, ldc);
        break;
    default:
        for (int64_t j = 0; j < ncols; j += 24) micro(1, 24, ap, bbuf + j * KP, sa, sbc + j, c + j * ldc, ldc);
        break;
    }
}

/* Columns per microkernel call for a panel of h rows. */
static int64_t panel_nr(int64_t h) { return h == 64 ? 6 : h == 48 ? 8 : h == 32 ? 12 : 24; }

/* Decodes K block kb of weight rows [n, n + cnt) into rows of dst (64 pairs each) and
 * their b scales into sbc; prefetches the rows `ahead` blocks further on. */
static inline void decode_block(const dec_tabs *t, const cpu_gemm_sub *s, int64_t n, int64_t cnt, int64_t kb,
                                int64_t ahead, uint32_t *dst, float *sbc)
{
    const int64_t k0 = kb * 128, nkb = (s->K + 127) / 128;
    for (int64_t j = 0; j < cnt; j++) {
        const uint8_t *br = s->b + (n + j) * s->ldb + k0;
        dec_row(t, br, s->K - k0, 128, (uint16_t *)(dst + j * KP));
        if (kb + ahead < nkb) {
            _mm_prefetch((const char *)(br + 128 * ahead), _MM_HINT_T1);
            _mm_prefetch((const char *)(br + 128 * ahead + 64), _MM_HINT_T1);
        }
        sbc[j] = s->sb[((n + j) / 128) * s->sb_n + kb * s->sb_k];
    }
}

/* Task of one panel (at most 64 rows, as in decode-sized M): NR weight rows at a time
 * over all of K, so the weights stream as NR sequential rows (hardware prefetch follows
 * them; software prefetch runs 4 blocks ahead) and the NR x h totals stay in L1. */
static void tile_one_panel(const dec_tabs *t, const cpu_gemm_sub *s, int64_t m0, int64_t n0, int64_t ncols,
                           uint32_t *bbuf, float *sbc, float *c, int64_t ldc)
{
    const int64_t nkb = (s->K + 127) / 128, p = m0 / PM;
    const int64_t cnt = s->M - m0 < PM ? s->M - m0 : PM, h = (cnt + 15) / 16 * 16, nr = panel_nr(h);
    const uint32_t *apk = (const uint32_t *)s->apk + p * nkb * PANEL_U32;
    for (int64_t j0 = 0; j0 < ncols; j0 += nr) {
        const int64_t jn = ncols - j0 < nr ? ncols - j0 : nr;
        for (int64_t kb = 0; kb < nkb; kb++) {
            decode_block(t, s, n0 + j0, jn, kb, 4, bbuf, sbc);
            const uint32_t *blk = apk + kb * PANEL_U32;
            panel_pass(h, blk, bbuf, (const float *)blk + KP * PM, sbc, nr, c + j0 * ldc, ldc);
        }
    }
}

/* D[m0..m1)[n0..n0+ncols) from the column-major totals c (column j at c + j * ldc, with
 * ldc and the buffer padded so that every 16 x 16 block can be read): 16 x 16
 * transposes, masked row stores (bf16: vcvtneps2bf16, round to nearest even). */
static void store_tile(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t ncols, const float *c,
                       int64_t ldc)
{
    for (int64_t j = 0; j < ncols; j += 16) {
        const __mmask16 mk = (__mmask16)(ncols - j >= 16 ? 0xffff : (1u << (ncols - j)) - 1);
        for (int64_t m = m0; m < m1; m += 16) {
            __m512i r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(_mm512_load_ps(c + (j + i) * ldc + (m - m0)));
            tr16x16(r);
            const int rows = m1 - m < 16 ? (int)(m1 - m) : 16;
            for (int i = 0; i < rows; i++) {
                const __m512 v = _mm512_castsi512_ps(r[i]);
                if (s->d_bf16)
                    _mm256_mask_storeu_epi16((uint16_t *)s->d + (m + i) * s->ldd + n0 + j, mk,
                                             (__m256i)_mm512_cvtneps_pbh(v));
                else
                    _mm512_mask_storeu_ps((float *)s->d + (m + i) * s->ldd + n0 + j, mk, v);
            }
        }
    }
}

/* Task [m0, m1) x [n0, n1): per K block, the task's weight rows are decoded once into
 * bbuf (L2) and every panel of the task's rows runs against them; totals live in c,
 * column-major [n][m], and are transposed into D at the end. The next K block of the
 * weight rows is prefetched while the current one is computed. */
static int avx512_tile(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    pthread_once(&tab_once, tab_build);
    const dec_tabs t = tabs_load();
    const int64_t K = s->K, nkb = (K + 127) / 128;
    const int64_t ncols = n1 - n0, ncp = (ncols + N_GRAIN - 1) / N_GRAIN * N_GRAIN;
    const int64_t ldc = (m1 - m0 + 15) / 16 * 16;
    uint32_t *bbuf = dsk_cpu_scratch(0, sizeof(uint32_t) * (size_t)(ncp * KP));
    float *c = dsk_cpu_scratch(1, sizeof(float) * (size_t)((ncp + 16) * ldc));   /* + 16: store_tile's reads */
    float *sbc = dsk_cpu_scratch(2, sizeof(float) * (size_t)ncp);
    if (!bbuf || !c || !sbc) return -1;
    memset(c, 0, sizeof(float) * (size_t)(ncp * ldc));
    memset(bbuf + ncols * KP, 0, sizeof(uint32_t) * (size_t)((ncp - ncols) * KP));
    for (int64_t j = ncols; j < ncp; j++) sbc[j] = 0.0f;
    if (m1 - m0 <= PM) {
        tile_one_panel(&t, s, m0, n0, ncols, bbuf, sbc, c, ldc);
    } else {
        const uint32_t *apk = s->apk;
        for (int64_t kb = 0; kb < nkb; kb++) {
            decode_block(&t, s, n0, ncols, kb, 1, bbuf, sbc);
            for (int64_t r = m0; r < m1; r += PM) {
                const int64_t p = r / PM, cnt = s->M - r < PM ? s->M - r : PM, h = (cnt + 15) / 16 * 16;
                const uint32_t *blk = apk + (p * nkb + kb) * PANEL_U32;
                panel_pass(h, blk, bbuf, (const float *)blk + KP * PM, sbc, ncols, c + (r - m0), ldc);
            }
        }
    }
    store_tile(s, m0, m1, n0, ncols, c, ldc);
    return 0;
}

const cpu_gemm_kernels dsk_cpu_gemm_avx512bf16 = {
    .isa_name = "avx512bf16", .isa = DSK_CPU_AVX512BF16,
    .decode_max_m = DEC_MAX_M, .decode = avx512_decode,
    .tile_m = MC, .tile_n = NC, .tile_n_grain = N_GRAIN, .tile = avx512_tile,
    .pack_m = PM, .pack_a_bytes = avx512_pack_bytes, .pack_a = avx512_pack_a,
};
