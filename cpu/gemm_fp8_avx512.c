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
 * Decode path (M <= 16): dot-product form. Four weight rows are decoded per 128-K block
 * (16 zmm), every activation row (pre-decoded to bf16, zero-padded) is dotted with
 * them; weights are read from memory exactly once. Totals live in a small L1 array;
 * each is reduced horizontally once at the end.
 *
 * Prefill path: GEMM in the BLIS arrangement. Per task (192 x 256 of D) and per 512-wide
 * K slice, A is packed into 6-row panels of bf16 pairs and B (decoded once per slice)
 * into 64-column panels, pairs interleaved for vdpbf16ps; the 6x64 microkernel keeps
 * 24 zmm accumulators, broadcasts one A pair per row and loads 4 B vectors per K pair. */
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

static inline void store_row(const cpu_gemm_sub *s, int64_t m, int64_t n0, int64_t cnt, const float *v)
{
    if (s->d_bf16) {
        uint16_t *d = (uint16_t *)s->d + m * s->ldd + n0;
        int64_t j = 0;
        for (; j + 16 <= cnt; j += 16)
            _mm256_storeu_si256((__m256i *)(d + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(v + j)));
        for (; j < cnt; j++) dsk_cpu_store_out(d, j, 1, v[j]);
    } else {
        memcpy((float *)s->d + m * s->ldd + n0, v, sizeof(float) * (size_t)cnt);
    }
}

/* ---- decode path ---- */
#define DEC_MAX_M 16

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
#define MR 6
#define NR 64
#define KC 512
#define MC 192
#define NC 256

/* Total row cr[0..63] += (r0|r1|r2|r3) * scale: one K block's partial, scaled. */
static inline void row_update(float *cr, float scale, __m512 r0, __m512 r1, __m512 r2, __m512 r3)
{
    const __m512 sc = _mm512_set1_ps(scale);
    _mm512_store_ps(cr, _mm512_fmadd_ps(r0, sc, _mm512_load_ps(cr)));
    _mm512_store_ps(cr + 16, _mm512_fmadd_ps(r1, sc, _mm512_load_ps(cr + 16)));
    _mm512_store_ps(cr + 32, _mm512_fmadd_ps(r2, sc, _mm512_load_ps(cr + 32)));
    _mm512_store_ps(cr + 48, _mm512_fmadd_ps(r3, sc, _mm512_load_ps(cr + 48)));
}

/* D tile [6 x 64] (in c, row stride ldc) += A panel . B panel over nkb blocks of 128 K.
 * ap: [nkb*64 pairs][6] bf16 pairs; bp: [nkb*64 pairs][64] bf16 pairs;
 * sa: [nkb][6] a scales; sb: [nkb] b scales. */
static void micro_6x64(const uint32_t *ap, const uint32_t *bp, int nkb, const float *sa, const float *sb,
                       float *c, int64_t ldc)
{
    for (int kb = 0; kb < nkb; kb++) {
        __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
        __m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        __m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        __m512 c40 = c00, c41 = c00, c42 = c00, c43 = c00;
        __m512 c50 = c00, c51 = c00, c52 = c00, c53 = c00;
        const uint32_t *a = ap + (size_t)kb * 64 * MR;
        const uint32_t *b = bp + (size_t)kb * 64 * NR;
        for (int kp = 0; kp < 64; kp++, a += MR, b += NR) {
            const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 16);
            const __m512i b2 = _mm512_load_si512(b + 32), b3 = _mm512_load_si512(b + 48);
            __m512i x;
            x = _mm512_set1_epi32((int)a[0]);
            c00 = dot(c00, x, b0); c01 = dot(c01, x, b1); c02 = dot(c02, x, b2); c03 = dot(c03, x, b3);
            x = _mm512_set1_epi32((int)a[1]);
            c10 = dot(c10, x, b0); c11 = dot(c11, x, b1); c12 = dot(c12, x, b2); c13 = dot(c13, x, b3);
            x = _mm512_set1_epi32((int)a[2]);
            c20 = dot(c20, x, b0); c21 = dot(c21, x, b1); c22 = dot(c22, x, b2); c23 = dot(c23, x, b3);
            x = _mm512_set1_epi32((int)a[3]);
            c30 = dot(c30, x, b0); c31 = dot(c31, x, b1); c32 = dot(c32, x, b2); c33 = dot(c33, x, b3);
            x = _mm512_set1_epi32((int)a[4]);
            c40 = dot(c40, x, b0); c41 = dot(c41, x, b1); c42 = dot(c42, x, b2); c43 = dot(c43, x, b3);
            x = _mm512_set1_epi32((int)a[5]);
            c50 = dot(c50, x, b0); c51 = dot(c51, x, b1); c52 = dot(c52, x, b2); c53 = dot(c53, x, b3);
        }
        const float sbv = sb[kb];
        const float *sak = sa + kb * MR;
        row_update(c, sak[0] * sbv, c00, c01, c02, c03);
        row_update(c + ldc, sak[1] * sbv, c10, c11, c12, c13);
        row_update(c + 2 * ldc, sak[2] * sbv, c20, c21, c22, c23);
        row_update(c + 3 * ldc, sak[3] * sbv, c30, c31, c32, c33);
        row_update(c + 4 * ldc, sak[4] * sbv, c40, c41, c42, c43);
        row_update(c + 5 * ldc, sak[5] * sbv, c50, c51, c52, c53);
    }
}

static int avx512_tile(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    pthread_once(&tab_once, tab_build);
    const dec_tabs t = tabs_load();
    const int64_t K = s->K, nkb = (K + 127) / 128, Kp = nkb * 128;
    const int64_t pm_n = (m1 - m0 + MR - 1) / MR, pn_n = (n1 - n0 + NR - 1) / NR;
    const int64_t ldc = pn_n * NR;
    uint32_t *apk = dsk_cpu_scratch(0, sizeof(uint32_t) * (size_t)(pm_n * MR * KC / 2));
    uint32_t *bpk = dsk_cpu_scratch(1, sizeof(uint32_t) * (size_t)(pn_n * NR * KC / 2));
    float *cbuf = dsk_cpu_scratch(2, sizeof(float) * (size_t)(pm_n * MR * ldc + pm_n * MR * (KC / 128) + pn_n * (KC / 128)));
    uint16_t *row = dsk_cpu_scratch(3, sizeof(uint16_t) * KC);
    if (!apk || !bpk || !cbuf || !row) return -1;
    float *sap = cbuf + pm_n * MR * ldc;            /* [pm][kb][6] */
    float *sbp = sap + pm_n * MR * (KC / 128);      /* [pn][kb] */
    memset(cbuf, 0, sizeof(float) * (size_t)(pm_n * MR * ldc));
    const uint32_t *row32 = (const uint32_t *)row;

    for (int64_t kc0 = 0; kc0 < Kp; kc0 += KC) {
        const int64_t kcl = Kp - kc0 < KC ? Kp - kc0 : KC, nkbl = kcl / 128, kpl = kcl / 2;
        /* Pack A: panel pm, pair kp, row i at apk[(pm*kpl + kp)*6 + i]. */
        for (int64_t pm = 0; pm < pm_n; pm++) {
            for (int i = 0; i < MR; i++) {
                int64_t m = m0 + pm * MR + i;
                uint32_t *dst = apk + pm * kpl * MR + i;
                float *sad = sap + pm * MR * (KC / 128) + i;
                if (m < m1) {
                    dec_row(&t, s->a + m * s->lda + kc0, K - kc0, kcl, row);
                    for (int64_t kp = 0; kp < kpl; kp++) dst[kp * MR] = row32[kp];
                    for (int64_t kb = 0; kb < nkbl; kb++)
                        sad[kb * MR] = s->sa[m * s->sa_m + (kc0 / 128 + kb) * s->sa_k];
                } else {
                    for (int64_t kp = 0; kp < kpl; kp++) dst[kp * MR] = 0;
                    for (int64_t kb = 0; kb < nkbl; kb++) sad[kb * MR] = 0.0f;
                }
            }
        }
        /* Pack B: panel pn, pair kp, column j at bpk[(pn*kpl + kp)*64 + j]. */
        for (int64_t pn = 0; pn < pn_n; pn++) {
            const int64_t nb0 = n0 + pn * NR;
            for (int j = 0; j < NR; j++) {
                int64_t n = nb0 + j;
                uint32_t *dst = bpk + pn * kpl * NR + j;
                if (n < n1) {
                    dec_row(&t, s->b + n * s->ldb + kc0, K - kc0, kcl, row);
                    for (int64_t kp = 0; kp < kpl; kp++) dst[kp * NR] = row32[kp];
                } else {
                    for (int64_t kp = 0; kp < kpl; kp++) dst[kp * NR] = 0;
                }
            }
            for (int64_t kb = 0; kb < nkbl; kb++)
                sbp[pn * (KC / 128) + kb] = s->sb[(nb0 / 128) * s->sb_n + (kc0 / 128 + kb) * s->sb_k];
        }
        for (int64_t pm = 0; pm < pm_n; pm++)
            for (int64_t pn = 0; pn < pn_n; pn++)
                micro_6x64(apk + pm * kpl * MR, bpk + pn * kpl * NR, (int)nkbl, sap + pm * MR * (KC / 128),
                           sbp + pn * (KC / 128), cbuf + pm * MR * ldc + pn * NR, ldc);
    }
    for (int64_t m = m0; m < m1; m++) store_row(s, m, n0, n1 - n0, cbuf + (m - m0) * ldc);
    return 0;
}

const cpu_gemm_kernels dsk_cpu_gemm_avx512bf16 = {
    .isa_name = "avx512bf16", .isa = DSK_CPU_AVX512BF16,
    .decode_max_m = DEC_MAX_M, .decode = avx512_decode,
    .tile_m = MC, .tile_n = NC, .tile = avx512_tile,
};
