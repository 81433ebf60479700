/* dsk/layers.h: the elementwise layers of a DeepSeek-V3 block: RMSNorm, RoPE (YaRN),
 * SwiGLU.
 *
 * RMSNorm:  x [T, Hd] f32 or bf16, weight [Hd] f32 or bf16 -> y [T, Hd] f32 or bf16
 *   y = x / sqrt(mean(x^2) + eps) * weight   (statistics in f32 or better; the reference
 *   uses float64 and rounds y once, where HF rounds x/rms to x's dtype before the weight:
 *   at most one bf16 ulp apart). Hd >= 1, eps finite and >= 0 (V3: 1e-6).
 *   y may alias x exactly (same data, dtype and strides: in place); any other overlap is
 *   refused.
 *
 * RoPE as DeepSeek-V3's reference model.py applies it (precompute_freqs_cis,
 * apply_rotary_emb): interleaved pairs (x[2i], x[2i+1]), i in [0, dim/2), rotated as the
 * complex number x[2i] + i x[2i+1] times attn_factor * e^(i * pos * freq[i]):
 *   x'[2i]   = attn_factor * (x[2i] cos - x[2i+1] sin)
 *   x'[2i+1] = attn_factor * (x[2i] sin + x[2i+1] cos),   angle = pos * freq[i]
 * freq[i] = theta^(-2i/dim); when factor > 1, YaRN corrects them:
 *   corr(r)   = dim * ln(original_max_pos / (2 pi r)) / (2 ln theta)   (find_correction_dim)
 *   low       = max(floor(corr(beta_fast)), 0),  high = min(ceil(corr(beta_slow)), dim-1)
 *               (find_correction_range; if low == high, high += 0.001)
 *   ramp[i]   = clamp((i - low) / (high - low), 0, 1)                   (linear_ramp_factor)
 *   freq[i]   = freq[i] / factor * ramp[i] + freq[i] * (1 - ramp[i])
 * so pairs up to `low` keep their frequency and pairs from `high` on are divided by factor
 * (V3: low 10, high 23 of 32 pairs). attn_factor is HF's _mscale (1.0 for V3, since
 * mscale == mscale_all_dim; model.py has none). model.py applies the correction only when
 * max_seq_len > original_seq_len; dsk applies it whenever factor > 1.
 *   x [T, nh, dim] f32 or bf16, rotated in place; it may be a strided view, e.g. the rope
 *   columns of q [T, H, 192]: shape [T, H, 64], strides [H*192, 192, 1].
 *   positions [T] i32 >= 0 (validated when readable from the host).
 *   Parameters: dim even >= 2 and == x.shape[2]; theta > 1; factor > 0 (<= 1: plain
 *   RoPE, the other YaRN fields are ignored); attn_factor finite; when factor > 1:
 *   original_max_pos >= 1, beta_slow > 0, beta_fast >= beta_slow.
 *   The reference computes frequencies and angles in float64. model.py computes the
 *   frequencies and angles in f32: at position 1.6e5 its angles differ from these by up
 *   to ~5e-3 rad, so kernels must form pos * freq with care (float64 frequencies, or
 *   angle reduction) and tests must state tolerances that grow with the position.
 *
 * SwiGLU:  gate_up [T, 2*I] f32 or bf16 (gate in columns [0, I), up in [I, 2I))
 *   -> y [T, I] f32 or bf16:  y = silu(gate) * up,  silu(g) = g / (1 + exp(-g))
 *   (float64 in the reference, rounded once). y must not overlap gate_up.
 *
 * Conventions (all three): every tensor's innermost stride is 1, other strides are free
 * (>= 0); outputs never overlap themselves. Input and output dtypes are independent (the
 * reference takes any mix of f32 and bf16; a backend may implement a subset and answer
 * DSK_ERR_UNSUPPORTED). *_check validates without running (fn names the caller in
 * messages; NULL: the op's name); the op checks, requires tensors on dev (or in host
 * memory for host-memory devices) and calls dev's backend; *_ref runs on host tensors. */
#ifndef DSK_LAYERS_H
#define DSK_LAYERS_H

#include "tensor.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsk_rope_params {
    int dim;                    /* rotated width per head (qk_rope_head_dim, 64 for V3) */
    float theta;                /* rope_theta, 10000 for V3 */
    float factor;               /* YaRN factor (40 for V3); <= 1: plain RoPE */
    int original_max_pos;       /* original_max_position_embeddings (4096 for V3) */
    float beta_fast, beta_slow; /* 32, 1 for V3 */
    float attn_factor;          /* multiplies cos and sin; 1.0 for V3 */
} dsk_rope_params;

/* DeepSeek-V3's rope parameters. */
dsk_rope_params dsk_rope_params_v3(void);

typedef struct dsk_rmsnorm_args {
    const dsk_tensor *x, *weight;
    dsk_tensor *y;
    float eps;
} dsk_rmsnorm_args;

typedef struct dsk_rope_args {
    dsk_tensor *x;
    const dsk_tensor *positions;
    dsk_rope_params p;
} dsk_rope_args;

typedef struct dsk_swiglu_args {
    const dsk_tensor *gate_up;
    dsk_tensor *y;
} dsk_swiglu_args;

/* The per-pair frequencies after YaRN correction, in float64: freqs[dim/2]. p must pass
 * dsk_rope_check's parameter rules. */
void dsk_rope_freqs(const dsk_rope_params *p, double *freqs);

dsk_status dsk_rmsnorm_check(const char *fn, const dsk_rmsnorm_args *a);
dsk_status dsk_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a);
dsk_status dsk_rmsnorm_ref(const dsk_rmsnorm_args *a);

dsk_status dsk_rope_check(const char *fn, const dsk_rope_args *a);
dsk_status dsk_rope(dsk_device *dev, const dsk_rope_args *a);
dsk_status dsk_rope_ref(const dsk_rope_args *a);

dsk_status dsk_swiglu_check(const char *fn, const dsk_swiglu_args *a);
dsk_status dsk_swiglu(dsk_device *dev, const dsk_swiglu_args *a);
dsk_status dsk_swiglu_ref(const dsk_swiglu_args *a);

#ifdef __cplusplus
}
#endif
#endif
