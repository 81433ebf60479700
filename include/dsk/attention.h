/* dsk/attention.h: MLA (multi-head latent attention), DeepSeek-V2/V3.
 *
 * Decode, weight-absorbed form over a paged latent cache (FlashMLA's contract), one query
 * token per sequence:
 *   q           [B, H, D]  f32 or bf16; D = kv_lora_rank + qk_rope_dim (576 for V3):
 *               q[.., :dv] is the nope query already multiplied by W_UK (absorbed),
 *               q[.., dv:] is the roped query.
 *   kv_cache    [num_pages, 64, D] f32 or bf16 (page size DSK_MLA_PAGE_SIZE = 64, no other);
 *               row = [c_kv (dv) | k_rope (D-dv)]. The latent c_kv doubles as V.
 *   block_table [B, max_pages] i32: block_table[b, p] is the page holding tokens
 *               64p..64p+63 of sequence b. Only the first ceil(seq_lens[b]/64) entries of a
 *               row are read; the rest may hold anything.
 *   seq_lens    [B] i32: tokens in the cache for each sequence, 1..max_pages*64.
 *   out         [B, H, dv] f32 or bf16:  out[b,h] = softmax_j(scale * q[b,h] . row_j) . V
 *               where row_j (all D columns) is token j's cache row and V = its first dv.
 *   lse         [B, H] f32 (optional, may be NULL): natural-log sum-exp of the scaled
 *               scores, ln(sum_j exp(scale * q . row_j)), for merging split-KV partials.
 *   dv          1..D (512 for V3). softmax_scale: finite, > 0.
 *   Every page index read must lie in [0, num_pages); a seq_len of 0 is invalid.
 *
 * Prefill, non-absorbed form, causal, variable-length batch (packed tokens):
 *   q [T, H, Dqk], k [T, H, Dqk], v [T, H, Dv]  f32 or bf16 (Dqk = 192, Dv = 128 for V3;
 *   k carries the per-head nope key and the shared rope key copied into every head).
 *   cu_seqlens [B+1] i32, cu_seqlens[0] = 0, nondecreasing (empty sequences allowed),
 *   cu_seqlens[B] = T. out [T, H, Dv]; lse [T, H] f32 optional (natural log, as above).
 *   Token i of a sequence attends to tokens 0..i of the same sequence. Dqk, Dv >= 1.
 *
 * Conventions (both ops):
 *   - q, kv_cache / k / v and out may each be f32 or bf16; the reference takes any mix. A
 *     backend may implement a subset and answers DSK_ERR_UNSUPPORTED for the others.
 *   - Every tensor's innermost stride is 1; other strides are free (>= 0), so q may be a
 *     slice of a wider buffer. Outputs (out, lse) must not overlap themselves, each other
 *     or any input.
 *   - Index data (seq_lens, block_table, cu_seqlens) is validated whenever it is readable
 *     from the host (the reference, the cpu and emu backends). On device memory (cuda, hip)
 *     only shapes are checked: with invalid index data the outputs are unspecified, but a
 *     kernel still never accesses memory outside its tensors.
 *   - The reference computes in float64 (scores, max-subtracted exponentials, sums) and
 *     rounds each output once (bf16 outputs through f32).
 *   - The absorbed decode equals the non-absorbed computation with k = [W_UK c | k_rope],
 *     v = W_UV c once its output is multiplied by W_UV (tests/refs checks this identity).
 *
 * Softmax scale: 1/sqrt(qk_nope + qk_rope) * mscale^2 with YaRN's
 *   mscale = 0.1 * mscale_all_dim * ln(factor) + 1   (when factor > 1, else 1).
 * For DeepSeek-V3 (192, mscale_all_dim 1.0, factor 40): mscale = 1.36889, scale = 0.135234
 * (plain 1/sqrt(192) = 0.0722 is wrong for V3). The same scale serves decode: absorption
 * does not change q . k. HF's modeling code applies mscale whenever rope_scaling is set;
 * DeepSeek's model.py only when max_seq_len > original_seq_len; pass factor 1 for the
 * latter's short-context behaviour. */
#ifndef DSK_ATTENTION_H
#define DSK_ATTENTION_H

#include "tensor.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSK_MLA_PAGE_SIZE 64

typedef struct dsk_mla_decode_args {
    const dsk_tensor *q, *kv_cache, *block_table, *seq_lens;
    dsk_tensor *out;
    dsk_tensor *lse;      /* optional */
    int dv;               /* value / latent width (kv_lora_rank), 512 for V3 */
    float softmax_scale;
} dsk_mla_decode_args;

typedef struct dsk_mla_prefill_args {
    const dsk_tensor *q, *k, *v, *cu_seqlens;
    dsk_tensor *out;
    dsk_tensor *lse;      /* optional */
    float softmax_scale;
} dsk_mla_prefill_args;

/* The attention dimensions of a DeepSeek-V2/V3 model (config.json names); the ops take
 * them through tensor shapes, this collects them with DeepSeek-V3's values as default. */
typedef struct dsk_mla_config {
    int n_heads;          /* num_attention_heads: 128 */
    int q_lora_rank;      /* 1536 */
    int kv_lora_rank;     /* 512: the latent width, decode's dv */
    int qk_nope_head_dim; /* 128 */
    int qk_rope_head_dim; /* 64: decode's D = kv_lora_rank + qk_rope_head_dim = 576 */
    int v_head_dim;       /* 128 */
    float mscale_all_dim; /* rope_scaling.mscale_all_dim: 1.0 */
    float rope_factor;    /* rope_scaling.factor: 40 */
} dsk_mla_config;

/* DeepSeek-V3's attention dimensions. */
dsk_mla_config dsk_mla_config_v3(void);

/* YaRN-corrected softmax scale (see above), computed in float64. factor <= 1 means no
 * YaRN; qk_head_dim <= 0 gives NaN. */
float dsk_mla_softmax_scale(int qk_head_dim, float mscale_all_dim, float rope_factor);

/* *_check: validates the arguments as above without running (fn names the caller in
 * messages; NULL: the op's name). The op runs the check, requires every tensor to live on
 * dev (or in host memory when dev's memory is host memory) and calls dev's backend.
 * *_ref: the reference on host tensors. */
dsk_status dsk_mla_decode_check(const char *fn, const dsk_mla_decode_args *a);
dsk_status dsk_mla_decode(dsk_device *dev, const dsk_mla_decode_args *a);
dsk_status dsk_mla_decode_ref(const dsk_mla_decode_args *a);

dsk_status dsk_mla_prefill_check(const char *fn, const dsk_mla_prefill_args *a);
dsk_status dsk_mla_prefill(dsk_device *dev, const dsk_mla_prefill_args *a);
dsk_status dsk_mla_prefill_ref(const dsk_mla_prefill_args *a);

#ifdef __cplusplus
}
#endif
#endif
