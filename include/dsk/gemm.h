/* dsk/gemm.h: FP8 block-scaled GEMM (DeepSeek-V3's scheme) and FP8 quantization.
 *
 * Dense:  D[m, n] = sum_k  A[m, k] * a_scale[m, k/128] * B[n, k] * b_scale[n/128, k/128]
 * i.e. D = A . B^T with A, B in e4m3 and f32 scales:
 *   a        [M, K]  e4m3, row stride >= K, last stride 1 (K-major activations)
 *   a_scale  [M, ceil(K/128)] f32, any strides (one scale per row per 128 of K;
 *            GPU kernels want it MN-major: strides [1, M_pad], M_pad = M rounded up to 4)
 *   b        [N, K]  e4m3, K-major weights (nn.Linear layout: out_features x in_features)
 *   b_scale  [ceil(N/128), ceil(K/128)] f32, one scale per 128x128 block of B
 *   d        [M, N]  bf16 or f32, last stride 1
 * K need not be a multiple of 128 for the reference and the CPU backend (the last
 * scale block is partial); GPU kernels require K % 128 == 0 and say so.
 *
 * Grouped, contiguous layout (MoE, prefill): rows of all groups stacked.
 *   a [M, K], a_scale [M, ceil(K/128)], b [G, N, K], b_scale [G, ceil(N/128), ceil(K/128)],
 *   d [M, N], m_indices [M] i32: the group of each row, or -1 for a padding row.
 *   Rows with -1 are skipped: their output row is not written.
 *   (GPU kernels additionally require each group's segment to start at a multiple of
 *   their BLOCK_M; the host helper dsk_gemm_fp8_contig_align pads a layout.)
 *
 * Grouped, masked layout (MoE, decode; graph-capturable):
 *   a [G, max_m, K], a_scale [G, max_m, ceil(K/128)], b [G, N, K],
 *   b_scale [G, ceil(N/128), ceil(K/128)], d [G, max_m, N], masked_m [G] i32 with
 *   0 <= masked_m[g] <= max_m: rows >= masked_m[g] of group g are not written.
 *
 * Accumulation: the reference sums each 128-wide K block in f64, multiplies by the two
 * scales and accumulates in f64; the result is rounded once to d's dtype. */
#ifndef DSK_GEMM_H
#define DSK_GEMM_H

#include "tensor.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSK_FP8_BLOCK 128

typedef enum dsk_gemm_layout {
    DSK_GEMM_DENSE = 0,
    DSK_GEMM_CONTIGUOUS,   /* grouped, rows stacked, m_indices per row */
    DSK_GEMM_MASKED        /* grouped, [G, max_m, K], masked_m per group */
} dsk_gemm_layout;

typedef struct dsk_gemm_fp8_args {
    dsk_gemm_layout layout;
    const dsk_tensor *a, *a_scale, *b, *b_scale;
    dsk_tensor *d;
    const dsk_tensor *m_indices;  /* DSK_GEMM_CONTIGUOUS only, else NULL */
    const dsk_tensor *masked_m;   /* DSK_GEMM_MASKED only, else NULL */
} dsk_gemm_fp8_args;

/* Checks the arguments (shapes, dtypes, strides, scale shapes) without running. */
dsk_status dsk_gemm_fp8_check(const char *fn, const dsk_gemm_fp8_args *args);

/* Runs the GEMM on dev (tensors must live on dev, or on the host for host-memory
 * devices). The kernel that ran is reported by dsk_device_last_kernel(dev). */
dsk_status dsk_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *args);

/* The reference (host tensors): simple loops, f64 accumulation. */
dsk_status dsk_gemm_fp8_ref(const dsk_gemm_fp8_args *args);

/* Activation quantization, 1x128 per-token groups:
 *   x [M, K] f32 or bf16  ->  q [M, K] e4m3,  s [M, ceil(K/128)] f32 (any strides)
 *   s = max(amax(group), 1e-4) / 448;  q = cvt.rn.satfinite(x / s).
 * (The 1e-4 floor is DeepSeek-V3's reference act_quant clamp: a zero group gets a
 * tiny positive scale instead of a division by zero.) */
dsk_status dsk_quant_act_fp8(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s);
dsk_status dsk_quant_act_fp8_ref(const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s);

/* Weight quantization, 128x128 blocks (host only; a load-time operation):
 *   w [N, K] f32 or bf16  ->  q [N, K] e4m3,  s [ceil(N/128), ceil(K/128)] f32
 *   s = max(amax(block), 1e-4) / 448 (s is DeepSeek's weight_scale_inv: w ~= q * s). */
dsk_status dsk_quant_weight_fp8(const dsk_tensor *w, dsk_tensor *q, dsk_tensor *s);

/* Dequantizes an FP8 weight with 128x128 block scales into f32 (host only). */
dsk_status dsk_dequant_weight_fp8(const dsk_tensor *q, const dsk_tensor *s, dsk_tensor *w);

#ifdef __cplusplus
}
#endif
#endif
