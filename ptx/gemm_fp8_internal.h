/* ptx/gemm_fp8_internal.h: what the FP8 GEMM emitters and their host code share (internal).
 *
 * Kernel parameters. sm_89 (in this order):
 *   a, b, sa, sb, d, idx          u64  global addresses (idx: m_indices i32 [M] for the
 *                                      contiguous layout, masked_m i32 [G] for masked, else 0)
 *   m, n, k                       u32  rows of A (max_m for masked), rows of B, K (K % 128 == 0)
 *   lda, ldb                      u32  row strides of A and B in bytes (multiples of 16)
 *   ldd                           u32  row stride of D in elements
 *   sa_ld                         u32  a_scale is MN-major: (m, kb) at sa[kb * sa_ld + m]
 *   sb_n, sb_k                    u32  b_scale (nb, kb) at sb[nb * sb_n + kb * sb_k]
 *   ga, gb, gsa, gsb, gd          u64  per-group byte strides (masked: all; contiguous: gb, gsb)
 *   out_f32                       u32  1: D is f32, 0: D is bf16
 *   tmap_d                        u64  sm_90a _tmastore with bf16 D: global address of D's TMA
 *                                      tensor map (dense: 2-D {N, M}, box {BLOCK_N, BLOCK_M};
 *                                      contiguous: 2-D {N, M}, box {BLOCK_N, 1}; masked: 3-D
 *                                      {N, max_m, G}, box {BLOCK_N, 1, 1}; no swizzle); else 0
 *   groups                        u32  G (masked), else 1; the persistent scheduler's tile count
 * sm_90a: the same list with a, b, sa replaced by the global addresses of their TMA tensor
 * maps (A: 2-D {K, rows} e4m3 128B-swizzled, box {128, BLOCK_M}; B: 2-D {K, G*N}, box
 * {128, BLOCK_N}; sa: 2-D {rows, G*ceil(K/128)} f32, box {BLOCK_M, 1}; see
 * gemm_fp8_host.c), and ga / gsa replaced by the row offsets per group in those maps. */
#ifndef DSK_PTX_GEMM_FP8_INTERNAL_H
#define DSK_PTX_GEMM_FP8_INTERNAL_H

#include "dsk/ptx.h"
#include "ptx/ptx_text.h"

#define DSK_GEMM_NPARAMS 23

/* The accumulator geometry of one thread, for the shared pieces (gemm_fp8_common.c). */
typedef struct dsk_gemm_frag {
    dsk_ptx_text *b;
    int swap;            /* 1: P = B's rows, Q = A's rows */
    int mt, nt;          /* m tiles (of mstride rows) and n8 tiles per thread */
    int mstride;         /* 16 (mma.sync) or 64 (wgmma) */
    int nb_vals;         /* 128-blocks of B the tile's N side straddles (1..3) */
    int ascale_shared;   /* a_scale from shared memory (%sc_as) instead of global (%sa_thr) */
    dsk_gemm_layout layout;
} dsk_gemm_frag;

/* Scales of k-block %kb into %sa* (A rows of this thread) and %sbv* / %sbn* (B blocks). */
void dsk_ptx_emit_scales(const dsk_gemm_frag *k);
/* %fin += %ps * scale_A(row) * scale_B(col) */
void dsk_ptx_emit_promote(const dsk_gemm_frag *k);
/* Predicated stores of %fin to D (bf16 or f32). */
void dsk_ptx_emit_epilogue(const dsk_gemm_frag *k, int f32);

/* Emitters: write the whole module for t (plan already computed and legal). */
void dsk_ptx_emit_sm89(const dsk_gemm_tile *t, const dsk_gemm_plan *p, const char *entry, dsk_ptx_text *b);
void dsk_ptx_emit_sm90(const dsk_gemm_tile *t, const dsk_gemm_plan *p, const char *entry, dsk_ptx_text *b);

#endif
