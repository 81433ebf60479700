/* dsk/moe.h: Mixture-of-Experts routing, dispatch layout, permute and combine.
 *
 * Routing (DeepSeek-V3, "noaux_tc"):
 *   logits [T, E] f32 (router output x . W_gate^T), bias [E] f32 (e_score_correction_bias)
 *   s = sigmoid(logits) (or softmax over E when scoring == DSK_MOE_SOFTMAX, V2-style)
 *   b = s + bias (bias NULL: zero); experts are split into n_group contiguous groups of
 *   E/n_group; a group's score is the sum of its top-2 b (also without bias: model.py's
 *   max-based group score for bias-free V2 routing is not offered); the best topk_group
 *   groups are kept (ties: lower group index first); the top_k experts by b among kept
 *   groups are chosen (ties: lower expert index first). n_group == 1 disables grouping.
 *   weights = s (unbiased) of the chosen experts, divided by their sum when
 *   norm_topk_prob, times routed_scaling_factor.
 *   Outputs: topk_idx [T, top_k] i32 (in descending b order), topk_w [T, top_k] f32.
 *   Parameters: n_experts >= 1; n_group divides it, with >= 2 experts per group when
 *   n_group > 1; 1 <= topk_group <= n_group; 1 <= top_k <= topk_group * E / n_group (the
 *   experts in the kept groups); routed_scaling_factor finite.
 *   V3: E=256, n_group=8, topk_group=4, top_k=8, norm_topk_prob=1, factor 2.5.
 *   The reference computes s and b in float64. A kernel computing them in f32 can choose
 *   differently where two biased scores lie within f32 rounding of each other; tests of
 *   kernels should use inputs whose scores are separated, or compare weights per expert.
 *
 * Dispatch layout (for expert parallelism over R ranks; rank r owns experts
 * [r*E/R, (r+1)*E/R), so R must divide E):
 *   topk_idx [T, k] i32 (-1 = no expert) -> tokens_per_expert [E] i32 (slots (t, j)
 *   routed to the expert: the rows its permute segment gets before padding),
 *   tokens_per_rank [R] i32 (tokens with at least one expert on that rank),
 *   is_token_in_rank [T, R] u8 (0/1). Reference only (a host-side planning step).
 *
 * Permute (gather tokens into expert-contiguous rows for the grouped GEMM):
 *   x [T, Hd] (any dtype; rows copied bytewise), topk_idx [T, k] i32
 *   -> x_perm [P, Hd] (x's dtype), m_indices [P] i32 (expert of each row, -1 for padding),
 *      row_map [T, k] i32 (row of x_perm holding (token t, slot j); -1 if topk_idx was -1),
 *      expert_offsets [E+1] i32 (expert_offsets[0] = 0; expert e's segment is rows
 *      [expert_offsets[e], expert_offsets[e+1]), its tokens_per_expert[e] rows first, then
 *      padding up to a multiple of `align`, which is 1 for no padding).
 *   Within an expert, rows follow (t, j) in row-major order of topk_idx. P must be
 *   >= dsk_moe_permute_rows(T,k,E,align) (the worst case) and fit in i32. m_indices is
 *   written for all P rows: -1 on padding inside segments and on every row past
 *   expert_offsets[E]; the x_perm rows of padding are not written.
 *   To permute FP8 activations with their 1x128 scales, call it twice with the same
 *   topk_idx: once for x [T, K] e4m3, once for the scales [T, ceil(K/128)] f32.
 *
 * Combine (unpermute with weights):
 *   y_perm [P, Hd] f32 or bf16, row_map [T, k] i32, topk_w [T, k] f32
 *   -> y [T, Hd] f32 or bf16:  y[t] = sum_j topk_w[t, j] * y_perm[row_map[t, j]]
 *   (slots with row_map -1 contribute nothing; a token with none gets zeros; every row
 *   of y is written). Sums in float64 in the reference, rounded once.
 *
 * Conventions (all ops): every tensor's innermost stride is 1, other strides are free
 * (>= 0); outputs must not overlap themselves, each other or any input. Index data
 * (topk_idx in [-1, E), row_map in [-1, P)) is validated whenever it is readable from the
 * host (the reference, the cpu and emu backends); on device memory only shapes are
 * checked, outputs are then unspecified for invalid indices, but kernels never access
 * memory outside their tensors. *_check validates without running (fn names the caller in
 * messages; NULL: the op's name); the op checks, requires tensors on dev (or in host
 * memory for host-memory devices) and calls dev's backend; *_ref runs on host tensors. */
#ifndef DSK_MOE_H
#define DSK_MOE_H

#include "tensor.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsk_moe_scoring { DSK_MOE_SIGMOID = 0, DSK_MOE_SOFTMAX = 1 } dsk_moe_scoring;

typedef struct dsk_moe_route_params {
    int n_experts, n_group, topk_group, top_k;
    int norm_topk_prob;
    float routed_scaling_factor;
    dsk_moe_scoring scoring;
} dsk_moe_route_params;

/* DeepSeek-V3's routing parameters. */
dsk_moe_route_params dsk_moe_route_params_v3(void);

typedef struct dsk_moe_route_args {
    const dsk_tensor *logits, *bias;   /* bias may be NULL (zero) */
    dsk_tensor *topk_idx, *topk_w;
    dsk_moe_route_params p;
} dsk_moe_route_args;

typedef struct dsk_moe_layout_args {
    const dsk_tensor *topk_idx;
    int n_experts, n_ranks;
    dsk_tensor *tokens_per_expert, *tokens_per_rank, *is_token_in_rank;
} dsk_moe_layout_args;

typedef struct dsk_moe_permute_args {
    const dsk_tensor *x, *topk_idx;
    int n_experts, align;
    dsk_tensor *x_perm, *m_indices, *row_map, *expert_offsets;
} dsk_moe_permute_args;

typedef struct dsk_moe_combine_args {
    const dsk_tensor *y_perm, *row_map, *topk_w;
    dsk_tensor *y;
} dsk_moe_combine_args;

/* Worst-case rows of x_perm for T tokens, k slots, E experts, segment alignment align:
 * T*k + min(E, T*k) * (align - 1) (each nonempty segment pads at most align-1 rows).
 * -1 for T < 0, k < 0, E < 1 or align < 1. */
int64_t dsk_moe_permute_rows(int64_t T, int k, int E, int align);

dsk_status dsk_moe_route_check(const char *fn, const dsk_moe_route_args *a);
dsk_status dsk_moe_route(dsk_device *dev, const dsk_moe_route_args *a);
dsk_status dsk_moe_route_ref(const dsk_moe_route_args *a);

dsk_status dsk_moe_layout_check(const char *fn, const dsk_moe_layout_args *a);
dsk_status dsk_moe_layout_ref(const dsk_moe_layout_args *a);

dsk_status dsk_moe_permute_check(const char *fn, const dsk_moe_permute_args *a);
dsk_status dsk_moe_permute(dsk_device *dev, const dsk_moe_permute_args *a);
dsk_status dsk_moe_permute_ref(const dsk_moe_permute_args *a);

dsk_status dsk_moe_combine_check(const char *fn, const dsk_moe_combine_args *a);
dsk_status dsk_moe_combine(dsk_device *dev, const dsk_moe_combine_args *a);
dsk_status dsk_moe_combine_ref(const dsk_moe_combine_args *a);

#ifdef __cplusplus
}
#endif
#endif
