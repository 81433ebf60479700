/* hip/gemm_fp8_gfx942.hip: FP8 block-scaled GEMM for AMD MI300X (gfx942), C-style HIP.
 *
 *   D[m, n] = sum_k A[m, k] a_scale[m, k/128] B[n, k] b_scale[n/128, k/128]
 * for the dense, grouped-contiguous and grouped-masked layouts of include/dsk/gemm.h; the
 * contract with the host is hip/gemm_fp8_gfx942.h. One configuration per compilation:
 * DSK_HIP_BM x DSK_HIP_BN output tile per workgroup, DSK_HIP_WM x DSK_HIP_WN waves of 64
 * lanes, each wave owning a (BM/WM) x (BN/WN) sub-tile made of 16x16 MFMA tiles
 * (hip/gemm_fp8_gfx942_configs.def lists the ones that are built).
 *
 * Design (DeepGEMM's scheme on CDNA3 instead of Hopper):
 *   - per 128-wide K block, A (BM x 128) and B (BN x 128) are staged in LDS; the next block
 *     is fetched into registers while the current one is multiplied (one LDS buffer);
 *   - while staging, the OCP e4m3 codes become e4m3fnuz codes of half the value
 *     (hip/hip_fnuz.h), which is what gfx942's MFMA reads;
 *   - each K block is summed by four v_mfma_f32_16x16x32_fp8_fp8 per 16x16 tile into a
 *     fresh f32 partial, then promoted: acc += partial * a_scale[row] * b_scale * 4 (the 4
 *     undoes the two halvings), the FP32 promotion every 128 of K that DeepGEMM does;
 *   - ragged M and N tails are zero-filled in LDS and not stored; K needs K % 16 == 0 (a
 *     ragged last K block is zero-filled by 16-byte chunks).
 * Compiled by clang for gfx942 into the code object the hip backend loads, and by the host
 * C compiler under the CPU SIMT shim (hip/shim/) for the tests: the same source both ways. */
#include "hip/hip_prelude.h"
#include "hip/hip_fnuz.h"
#include "hip/gemm_fp8_gfx942.h"

#if !defined(DSK_HIP_BM) || !defined(DSK_HIP_BN) || !defined(DSK_HIP_WM) || !defined(DSK_HIP_WN)
#error "define DSK_HIP_BM, DSK_HIP_BN, DSK_HIP_WM and DSK_HIP_WN (see hip/gemm_fp8_gfx942_configs.def)"
#endif

#define BM DSK_HIP_BM
#define BN DSK_HIP_BN
#define WM DSK_HIP_WM
#define WN DSK_HIP_WN
#define THREADS DSK_HIP_GEMM_THREADS(WM, WN)
#define WTM (BM / WM)                 /* rows of a wave's sub-tile */
#define WTN (BN / WN)                 /* columns of a wave's sub-tile */
#define TM (WTM / 16)                 /* 16x16 MFMA tiles per wave along M */
#define TN (WTN / 16)                 /* ... along N */
#define LDS_ROW DSK_HIP_GEMM_LDS_ROW
#define A_CHUNKS (BM * 8)             /* 16-byte chunks in a BM x 128 tile */
#define B_CHUNKS (BN * 8)
#define A_LOADS ((A_CHUNKS + THREADS - 1) / THREADS)
#define B_LOADS ((B_CHUNKS + THREADS - 1) / THREADS)

_Static_assert(BM % (16 * WM) == 0 && BN % (16 * WN) == 0, "wave sub-tiles are whole 16x16 MFMA tiles");
_Static_assert(128 % BN == 0, "a block's columns lie in one 128-row block of b_scale");
_Static_assert(BM <= THREADS, "one thread stages each row scale");
_Static_assert(DSK_HIP_GEMM_LDS_BYTES(BM, BN) <= 65536, "LDS per workgroup on gfx942 is 64 KiB");

#define DSK_HIP_NAME_(bm, bn, wm, wn) gemm_fp8_gfx942_##bm##x##bn##_w##wm##x##wn
#define DSK_HIP_NAME(bm, bn, wm, wn) DSK_HIP_NAME_(bm, bn, wm, wn)

/* Global -> registers: the 16-byte chunks of rows [row0, row0 + rows_tile) x [k0, k0 + 128)
 * that thread tid stages (chunk c = tid + i * THREADS: row c / 8, bytes 16 * (c % 8)).
 * Chunks past row_end or K are zero. */
DSK_DEVICE void tile_fetch(dsk_u32x4 *r, int loads, int chunks, const unsigned char *src, long long ld, int row0,
                           int row_end, int k0, int K, int tid)
{
    DSK_UNROLL
    for (int i = 0; i < loads; i++) {
        int c = tid + i * THREADS;
        int row = c >> 3, col = (c & 7) * 16;
        dsk_u32x4 v = {0u, 0u, 0u, 0u};
        if (c < chunks && row0 + row < row_end && k0 + col < K)
            v = *(const dsk_u32x4 *)(src + (long long)(row0 + row) * ld + k0 + col);
        r[i] = v;
    }
}

/* Registers -> LDS, converting e4m3 codes to e4m3fnuz on the way. */
DSK_DEVICE void tile_store(unsigned char *dst, const dsk_u32x4 *r, int loads, int chunks, int tid)
{
    DSK_UNROLL
    for (int i = 0; i < loads; i++) {
        int c = tid + i * THREADS;
        if (c < chunks) {
            dsk_u32x4 v = r[i];
            v[0] = dsk_e4m3_to_fnuz_x4(v[0]);
            v[1] = dsk_e4m3_to_fnuz_x4(v[1]);
            v[2] = dsk_e4m3_to_fnuz_x4(v[2]);
            v[3] = dsk_e4m3_to_fnuz_x4(v[3]);
            *(dsk_u32x4 *)(dst + (c >> 3) * LDS_ROW + (c & 7) * 16) = v;
        }
    }
}

/* f32 -> bf16, round to nearest even, NaN kept quiet. */
DSK_DEVICE unsigned short f32_to_bf16(float f)
{
    union { float f; unsigned int u; } v;
    v.f = f;
    if ((v.u & 0x7FFFFFFFu) > 0x7F800000u)
        return (unsigned short)((v.u >> 16) | 0x40u);
    v.u += 0x7FFFu + ((v.u >> 16) & 1u);
    return (unsigned short)(v.u >> 16);
}

DSK_KERNEL(THREADS)
void DSK_HIP_NAME(DSK_HIP_BM, DSK_HIP_BN, DSK_HIP_WM, DSK_HIP_WN)(const unsigned char *a, const float *a_scale,
                                                                  const unsigned char *b, const float *b_scale,
                                                                  void *d, const int *idx, dsk_hip_gemm_dims p)
{
    DSK_LDS(lds, DSK_HIP_GEMM_LDS_BYTES(BM, BN));
    unsigned char *lds_a = lds;
    unsigned char *lds_b = lds + BM * LDS_ROW;
    float *lds_sa = (float *)(lds + (BM + BN) * LDS_ROW);

    const int tid = dsk_tid(), lane = tid & 63, wave = tid >> 6;
    const int wm = wave % WM, wn = wave / WM;
    const int m0 = dsk_bid_x() * BM, n0 = dsk_bid_y() * BN;
    int rows = p.m, group = 0;
    long long d_off = 0;

    /* The block's group. Masked: grid z, rows past masked_m[g] idle. Contiguous: the group of
     * the block's first row (the host checked that a block holds one group, then -1 rows);
     * a block that starts with -1 is all padding. Branches are uniform over the block. */
    if (p.layout == 2) {
        group = dsk_bid_z();
        rows = idx[group];
        if (m0 >= rows)
            return;
        a += group * p.ga;
        a_scale += group * p.gsa;
        b += group * p.gb;
        b_scale += group * p.gsb;
        d_off = group * p.gd;
    } else if (p.layout == 1) {
        group = idx[m0];
        if (group < 0)
            return;
        b += group * p.gb;
        b_scale += group * p.gsb;
    }
    b_scale += (n0 / 128) * p.sb_n;

    const int nkb = (p.k + DSK_HIP_GEMM_BK - 1) / DSK_HIP_GEMM_BK;
    dsk_u32x4 ra[A_LOADS], rb[B_LOADS];
    float rsa = 0.0f, rsb;
    const dsk_f32x4 zero = {0.0f, 0.0f, 0.0f, 0.0f};
    dsk_f32x4 acc[TM][TN];
    DSK_UNROLL
    for (int tm = 0; tm < TM; tm++)
        DSK_UNROLL
        for (int tn = 0; tn < TN; tn++)
            acc[tm][tn] = zero;

    /* prologue: K block 0 into LDS */
    tile_fetch(ra, A_LOADS, A_CHUNKS, a, p.lda, m0, rows, 0, p.k, tid);
    tile_fetch(rb, B_LOADS, B_CHUNKS, b, p.ldb, n0, p.n, 0, p.k, tid);
    if (tid < BM && m0 + tid < rows)
        rsa = a_scale[(long long)(m0 + tid) * p.sa_m];
    rsb = b_scale[0];
    tile_store(lds_a, ra, A_LOADS, A_CHUNKS, tid);
    tile_store(lds_b, rb, B_LOADS, B_CHUNKS, tid);
    if (tid < BM)
        lds_sa[tid] = rsa;
    float sb = rsb;
    dsk_syncthreads();

    for (int kb = 0; kb < nkb; kb++) {
        const int more = kb + 1 < nkb;
        if (more) { /* fetch K block kb + 1 while this one is multiplied */
            const int k1 = (kb + 1) * DSK_HIP_GEMM_BK;
            tile_fetch(ra, A_LOADS, A_CHUNKS, a, p.lda, m0, rows, k1, p.k, tid);
            tile_fetch(rb, B_LOADS, B_CHUNKS, b, p.ldb, n0, p.n, k1, p.k, tid);
            rsa = 0.0f;
            if (tid < BM && m0 + tid < rows)
                rsa = a_scale[(long long)(m0 + tid) * p.sa_m + (long long)(kb + 1) * p.sa_k];
            rsb = b_scale[(long long)(kb + 1) * p.sb_k];
        }

        /* Four MFMA steps cover the 128 of K. v_mfma_f32_16x16x32_fp8_fp8 operand layout
         * (AMD matrix instruction calculator, CDNA3): lane l supplies A[i = l % 16][k] and
         * B[k][j = l % 16] for k = 8 * (l / 16) + byte (bytes 0..7 of its 64-bit operand).
         * Any permutation of K applied to A and B alike leaves the sum unchanged, so at step s
         * lane l reads the 8 bytes at K offset 32 * (l / 16) + 8 * s of its row: each lane's
         * 32 bytes of a row are contiguous in LDS and the steps together cover all 128. */
        dsk_f32x4 part[TM][TN];
        DSK_UNROLL
        for (int tm = 0; tm < TM; tm++)
            DSK_UNROLL
            for (int tn = 0; tn < TN; tn++)
                part[tm][tn] = zero;
        DSK_UNROLL
        for (int s = 0; s < 4; s++) {
            long fa[TM], fb[TN];
            const int koff = (lane >> 4) * 32 + s * 8;
            DSK_UNROLL
            for (int tm = 0; tm < TM; tm++)
                fa[tm] = *(const long *)(lds_a + (wm * WTM + tm * 16 + (lane & 15)) * LDS_ROW + koff);
            DSK_UNROLL
            for (int tn = 0; tn < TN; tn++)
                fb[tn] = *(const long *)(lds_b + (wn * WTN + tn * 16 + (lane & 15)) * LDS_ROW + koff);
            DSK_UNROLL
            for (int tm = 0; tm < TM; tm++)
                DSK_UNROLL
                for (int tn = 0; tn < TN; tn++)
                    part[tm][tn] = dsk_mfma_f32_16x16x32_fp8(fa[tm], fb[tn], part[tm][tn]);
        }

        /* Promotion. Result layout (same source): lane l, element r holds D[i][j] with
         * i = 4 * (l / 16) + r, j = l % 16. */
        DSK_UNROLL
        for (int tm = 0; tm < TM; tm++)
            DSK_UNROLL
            for (int r = 0; r < 4; r++) {
                const float f = lds_sa[wm * WTM + tm * 16 + (lane >> 4) * 4 + r] * sb * DSK_HIP_FNUZ_PRODUCT_SCALE;
                DSK_UNROLL
                for (int tn = 0; tn < TN; tn++)
                    acc[tm][tn][r] = __builtin_fmaf(part[tm][tn][r], f, acc[tm][tn][r]);
            }
        dsk_syncthreads(); /* every wave is done reading this K block */

        if (more) {
            tile_store(lds_a, ra, A_LOADS, A_CHUNKS, tid);
            tile_store(lds_b, rb, B_LOADS, B_CHUNKS, tid);
            if (tid < BM)
                lds_sa[tid] = rsa;
            sb = rsb;
            dsk_syncthreads();
        }
    }

    /* Epilogue: rows past `rows` and (contiguous) rows of another group are not written. */
    DSK_UNROLL
    for (int tm = 0; tm < TM; tm++)
        DSK_UNROLL
        for (int r = 0; r < 4; r++) {
            const int m = m0 + wm * WTM + tm * 16 + (lane >> 4) * 4 + r;
            if (m >= rows || (p.layout == 1 && idx[m] != group))
                continue;
            DSK_UNROLL
            for (int tn = 0; tn < TN; tn++) {
                const int n = n0 + wn * WTN + tn * 16 + (lane & 15);
                if (n >= p.n)
                    continue;
                const long long off = d_off + (long long)m * p.ldd + n;
                if (p.d_f32)
                    ((float *)d)[off] = acc[tm][tn][r];
                else
                    ((unsigned short *)d)[off] = f32_to_bf16(acc[tm][tn][r]);
            }
        }
}
