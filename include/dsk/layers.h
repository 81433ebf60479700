/* dsk/layers.h: the elementwise layers of a DeepSeek-V3 block: RMSNorm, RoPE (YaRN),
 * SwiGLU.
 *
 * RMSNorm:  x [T, Hd] f32 or bf16, weight [Hd] f32 or bf16 -> y [T, Hd] f32 or bf16
 *   y = x / sqrt(mean(x^2) + eps) * weight   (statistics in f32 or better)
 *   y may alias x (in place).
 *
 * RoPE as DeepSeek-V3's reference applies it: interleaved pairs (x[2i], x[2i+1]) rotated
 * by angle pos * freq[i], freq[i] = theta^(-2i/dim), with YaRN correction when
 * factor > 1:  low, high = correction range(beta_fast, beta_slow, dim, theta,
 * original_max_position_embeddings); ramp = clamp((i - low)/(high - low), 0, 1);
 * freq[i] = freq[i]/factor * ramp + freq[i] * (1 - ramp); cos/sin are multiplied by
 * attn_factor (HF's _mscale: 1.0 for V3 since mscale == mscale_all_dim).
 *   x [T, nh, dim] f32 or bf16 (rotated in place; dim even), positions [T] i32 >= 0.
 *
 * SwiGLU:  gate_up [T, 2*I] f32 or bf16 (gate in columns [0, I), up in [I, 2I))
 *   -> y [T, I] f32 or bf16:  y = silu(gate) * up,  silu(g) = g / (1 + exp(-g)). */
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

/* The per-pair frequencies after YaRN correction: freqs[dim/2]. */
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
