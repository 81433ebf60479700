/* dsk/attention.h: MLA (multi-head latent attention), DeepSeek-V2/V3.
 *
 * Decode, weight-absorbed form over a paged latent cache (FlashMLA's contract):
 *   q           [B, H, D]  f32 or bf16; D = kv_lora_rank + qk_rope_dim (576 for V3):
 *               q[.., :dv] is the nope query already multiplied by W_UK (absorbed),
 *               q[.., dv:] is the roped query.
 *   kv_cache    [num_pages, page_size, D] f32 or bf16; row = [c_kv (dv) | k_rope (D-dv)].
 *               The latent c_kv doubles as V.
 *   block_table [B, max_pages] i32: page index of each 64-token page of each sequence.
 *   seq_lens    [B] i32: tokens in the cache for each sequence (1..max_pages*page_size).
 *   out         [B, H, dv] f32 or bf16:  out = softmax(scale * q . K^T) . V
 *   lse         [B, H] f32 (optional, may be NULL): natural-log sum-exp of the scaled
 *               scores, for merging split-KV partials.
 *   Every page index read must lie in [0, num_pages); a seq_len of 0 is invalid.
 *
 * Prefill, non-absorbed form, causal, variable-length batch (packed tokens):
 *   q [T, H, Dqk] , k [T, H, Dqk], v [T, H, Dv]  f32 or bf16 (Dqk = 192, Dv = 128 for V3)
 *   cu_seqlens [B+1] i32, cu_seqlens[0] = 0, nondecreasing, cu_seqlens[B] = T.
 *   out [T, H, Dv]; lse [T, H] f32 optional. Token i of a sequence attends to tokens 0..i
 *   of the same sequence.
 *
 * Softmax scale: 1/sqrt(qk_nope + qk_rope) * mscale^2 with YaRN's
 *   mscale = 0.1 * mscale_all_dim * ln(factor) + 1   (when factor > 1, else 1).
 * For DeepSeek-V3 (192, mscale_all_dim 1.0, factor 40): mscale = 1.3689, scale = 0.13524. */
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

/* YaRN-corrected softmax scale (see above). factor <= 1 means no YaRN. */
float dsk_mla_softmax_scale(int qk_head_dim, float mscale_all_dim, float rope_factor);

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
