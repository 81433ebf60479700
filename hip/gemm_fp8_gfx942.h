/* hip/gemm_fp8_gfx942.h: the contract between the gfx942 FP8 GEMM kernel
 * (hip/gemm_fp8_gfx942.hip) and its host code. Included by the kernel source (compiled by
 * clang for gfx942, or by the host compiler under the CPU SIMT shim) and by host C, so it
 * holds only plain C: the by-value parameter block and the tile plan arithmetic.
 *
 * Kernel signature (every configuration):
 *   void gemm_fp8_gfx942_<BM>x<BN>_w<WM>x<WN>(
 *       const unsigned char *a,       e4m3 (OCP), [rows, K] (+ group stride for masked)
 *       const float *a_scale,         one scale per row per 128 of K
 *       const unsigned char *b,       e4m3 (OCP), [N, K] (+ group stride when grouped)
 *       const float *b_scale,         one scale per 128x128 block of b
 *       void *d,                      bf16 or f32, [rows, N]
 *       const int *idx,               m_indices [M] (contiguous), masked_m [G] (masked), else NULL
 *       dsk_hip_gemm_dims p)          strides and sizes below
 * Launch: grid (ceil(rows/BM), ceil(N/BN), masked ? G : 1), block 64*WM*WN threads, no
 * dynamic LDS. Requirements checked by the host (hip/gemm_fp8_hip.c): K % 16 == 0, a and b
 * 16-byte aligned with row (and group) strides multiples of 16 bytes; for the contiguous
 * layout every BLOCK_M block of rows holds one group's rows then -1 rows. */
#ifndef DSK_HIP_GEMM_FP8_GFX942_H
#define DSK_HIP_GEMM_FP8_GFX942_H

/* Strides in elements. Same layout on the host (x86-64 LP64) and on amdgcn: 8-byte fields
 * first, no pointers (pointers travel as their own kernel arguments so that the compiler
 * knows they are global memory). */
typedef struct dsk_hip_gemm_dims {
    long long lda, ldb, ldd;          /* row strides of a, b, d */
    long long sa_m, sa_k;             /* a_scale: (row, k-block) strides */
    long long sb_n, sb_k;             /* b_scale: (n-block, k-block) strides */
    long long ga, gsa, gb, gsb, gd;   /* group strides of a, a_scale, b, b_scale, d (0 if unused) */
    int m, n, k;                      /* rows (M, or max_m for masked), N, K */
    int layout;                       /* dsk_gemm_layout: 0 dense, 1 contiguous, 2 masked */
    int d_f32;                        /* 1: d is f32; 0: d is bf16 */
    int reserved;                     /* 0 */
} dsk_hip_gemm_dims;

/* The tile plan. Each 128-wide K block of A (BM x 128) and B (BN x 128) is staged in LDS
 * with rows padded by 16 bytes (rows stay 16-byte aligned for ds_write_b128), followed by
 * the BM row scales of that K block. */
#define DSK_HIP_GEMM_BK 128
#define DSK_HIP_GEMM_LDS_PAD 16
#define DSK_HIP_GEMM_LDS_ROW (DSK_HIP_GEMM_BK + DSK_HIP_GEMM_LDS_PAD)
#define DSK_HIP_GEMM_LDS_BYTES(bm, bn) (((bm) + (bn)) * DSK_HIP_GEMM_LDS_ROW + (bm) * 4)
#define DSK_HIP_GEMM_THREADS(wm, wn) (64 * (wm) * (wn))

/* OCP e4m3 codes read as e4m3fnuz are worth exactly half (see hip/hip_fnuz.h), so each
 * product of an A and a B element is worth a quarter: the kernel multiplies the scales by 4. */
#define DSK_HIP_FNUZ_PRODUCT_SCALE 4.0f

#endif
