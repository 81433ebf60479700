/* dsk/moe.h: Mixture-of-Experts routing, dispatch layout, permute and combine.
 *
 * Routing (DeepSeek-V3, "noaux_tc"):
 *   logits [T, E] f32 (router output x . W_gate^T), bias [E] f32 (e_score_correction_bias)
 *   s = sigmoid(logits) (or softmax over E when scoring == DSK_MOE_SOFTMAX, V2-style)
 *   b = s + bias; experts are split into n_group groups of E/n_group; a group's score is
 *   the sum of its top-2 b; the best topk_group groups are kept; the top_k experts by b
 *   among kept groups are chosen (ties: lower expert index first).
 *   weights = s (unbiased) of the chosen experts, divided by their sum when
 *   norm_topk_prob, times routed_scaling_factor.
 *   Outputs: topk_idx [T, top_k] i32 (in descending b order), topk_w [T, top_k] f32.
 *   V3: E=256, n_group=8, topk_group=4, top_k=8, norm_topk_prob=1, factor 2.5.
 *
 * Dispatch layout (for expert parallelism over R ranks, experts split evenly):
 *   topk_idx [T, k] i32 (-1 = no expert) -> tokens_per_expert [E] i32,
 *   tokens_per_rank [R] i32 (tokens with at least one expert on that rank),
 *   is_token_in_rank [T, R] u8.
 *
 * Permute (gather tokens into expert-contiguous rows for the grouped GEMM):
 *   x [T, Hd] (any dtype; rows copied bytewise), topk_idx [T, k] i32
 *   -> x_perm [P, Hd], m_indices [P] i32 (expert of each row, -1 for padding),
 *      row_map [T, k] i32 (row of x_perm holding (token t, slot j); -1 if topk_idx was -1),
 *      expert_offsets [E+1] i32 (first row of each expert's segment; segments padded to
 *      a multiple of `align`, which is 1 for no padding).
 *   Within an expert, rows follow token order. P must be >= dsk_moe_permute_rows(T,k,E,align)
 *   (the worst case); rows past expert_offsets[E] are padding (m_indices -1, not written).
 *
 * Combine (unpermute with weights):
 *   y_perm [P, Hd] f32 or bf16, row_map [T, k] i32, topk_w [T, k] f32
 *   -> y [T, Hd] f32 or bf16:  y[t] = sum_j topk_w[t, j] * y_perm[row_map[t, j]]
 *   (slots with row_map -1 contribute nothing). */
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

/* Worst-case rows of x_perm for T tokens, k slots, E experts, segment alignment align. */
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
