/* moe/permute.c: the expert-parallel dispatch layout (tokens per expert / per rank) and the
 * permute that gathers token rows into expert-contiguous segments for the grouped GEMM:
 * argument checks, references and the permute dispatcher. The contract is in dsk/moe.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

/* Every topk_idx entry lies in [-1, E). Only called on host-readable tensors. */
static dsk_status check_topk_idx_values(const char *fn, const dsk_tensor *idx, int64_t E)
{
    for (int64_t t = 0; t < idx->shape[0]; t++)
        for (int64_t j = 0; j < idx->shape[1]; j++) {
            int64_t e = dsk_load_i32(idx, dsk_off2(idx, t, j));
            if (e < -1 || e >= E)
                return dsk_fail(DSK_ERR_INVALID_ARG,
                                "%s: topk_idx[%lld, %lld] = %lld, expected -1 (no expert) or "
                                "0..n_experts-1 = 0..%lld",
                                fn, (long long)t, (long long)j, (long long)e, (long long)E - 1);
        }
    return DSK_OK;
}

/* ---- dispatch layout -------------------------------------------------------------- */

dsk_status dsk_moe_layout_check(const char *fn, const dsk_moe_layout_args *a)
{
    if (!fn)
        fn = "dsk_moe_layout";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_moe_layout_args", fn);
    if (a->n_experts < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: n_experts = %d, expected >= 1", fn, a->n_experts);
    if (a->n_ranks < 1 || a->n_experts % a->n_ranks != 0)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: n_ranks = %d, expected a divisor of n_experts = %d (experts split "
                        "evenly over ranks)",
                        fn, a->n_ranks, a->n_experts);
    DSK_TRY(dsk_op_tensor(fn, "topk_idx", a->topk_idx, 2, DSK_DT(DSK_I32), "[T, k]"));
    const int64_t T = a->topk_idx->shape[0], E = a->n_experts, R = a->n_ranks;
    DSK_TRY(dsk_op_tensor(fn, "tokens_per_expert", a->tokens_per_expert, 1, DSK_DT(DSK_I32), "[E]"));
    DSK_TRY(dsk_op_out_shape(fn, "tokens_per_expert", a->tokens_per_expert, &E, "[E = n_experts]"));
    DSK_TRY(dsk_op_tensor(fn, "tokens_per_rank", a->tokens_per_rank, 1, DSK_DT(DSK_I32), "[R]"));
    DSK_TRY(dsk_op_out_shape(fn, "tokens_per_rank", a->tokens_per_rank, &R, "[R = n_ranks]"));
    DSK_TRY(dsk_op_tensor(fn, "is_token_in_rank", a->is_token_in_rank, 2, DSK_DT(DSK_U8), "[T, R]"));
    const int64_t tr_want[2] = {T, R};
    DSK_TRY(dsk_op_out_shape(fn, "is_token_in_rank", a->is_token_in_rank, tr_want, "[T, R = n_ranks]"));
    const char *names[4] = {"topk_idx", "tokens_per_expert", "tokens_per_rank", "is_token_in_rank"};
    const dsk_tensor *ts[4] = {a->topk_idx, a->tokens_per_expert, a->tokens_per_rank,
                               a->is_token_in_rank};
    for (int o = 1; o < 4; o++)
        for (int i = 0; i < o; i++)
            DSK_TRY(dsk_op_no_overlap(fn, names[o], ts[o], names[i], ts[i]));
    if (dsk_op_host_readable(a->topk_idx))
        DSK_TRY(check_topk_idx_values(fn, a->topk_idx, E));
    return DSK_OK;
}

dsk_status dsk_moe_layout_ref(const dsk_moe_layout_args *a)
{
    static const char fn[] = "dsk_moe_layout_ref";
    DSK_TRY(dsk_moe_layout_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "topk_idx", a->topk_idx));
    DSK_TRY(dsk_op_host(fn, "tokens_per_expert", a->tokens_per_expert));
    DSK_TRY(dsk_op_host(fn, "tokens_per_rank", a->tokens_per_rank));
    DSK_TRY(dsk_op_host(fn, "is_token_in_rank", a->is_token_in_rank));
    const dsk_tensor *idx = a->topk_idx;
    dsk_tensor *tpe = a->tokens_per_expert, *tpr = a->tokens_per_rank, *in = a->is_token_in_rank;
    const int64_t T = idx->shape[0], k = idx->shape[1], E = a->n_experts, R = a->n_ranks;
    const int64_t per_rank = E / R;
    for (int64_t e = 0; e < E; e++)
        dsk_op_st_i32(tpe, e * tpe->stride[0], 0);
    for (int64_t r = 0; r < R; r++)
        dsk_op_st_i32(tpr, r * tpr->stride[0], 0);
    for (int64_t t = 0; t < T; t++) {
        uint8_t *row = (uint8_t *)in->data + t * in->stride[0];
        for (int64_t r = 0; r < R; r++)
            row[r * in->stride[1]] = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t e = dsk_load_i32(idx, dsk_off2(idx, t, j));
            if (e < 0)
                continue;
            int64_t off = e * tpe->stride[0];
            dsk_op_st_i32(tpe, off, dsk_load_i32(tpe, off) + 1);
            row[(e / per_rank) * in->stride[1]] = 1;
        }
        for (int64_t r = 0; r < R; r++)
            if (row[r * in->stride[1]]) {
                int64_t off = r * tpr->stride[0];
                dsk_op_st_i32(tpr, off, dsk_load_i32(tpr, off) + 1);
            }
    }
    return DSK_OK;
}

/* ---- permute ---------------------------------------------------------------------- */

int64_t dsk_moe_permute_rows(int64_t T, int k, int E, int align)
{
    if (T < 0 || k < 0 || E < 1 || align < 1)
        return -1;
    const int64_t slots = T * k;
    /* each nonempty segment is padded by at most align-1 rows */
    const int64_t segments = slots < E ? slots : E;
    return slots + segments * (align - 1);
}

dsk_status dsk_moe_permute_check(const char *fn, const dsk_moe_permute_args *a)
{
    if (!fn)
        fn = "dsk_moe_permute";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_moe_permute_args", fn);
    if (a->n_experts < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: n_experts = %d, expected >= 1", fn, a->n_experts);
    if (a->align < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: align = %d, expected >= 1 (1: no padding)", fn,
                        a->align);
    DSK_TRY(dsk_op_tensor(fn, "x", a->x, 2, DSK_OP_ANY, "[T, Hd]"));
    const int64_t T = a->x->shape[0], Hd = a->x->shape[1], E = a->n_experts;
    DSK_TRY(dsk_op_tensor(fn, "topk_idx", a->topk_idx, 2, DSK_DT(DSK_I32), "[T, k]"));
    const int64_t k = a->topk_idx->shape[1];
    const int64_t idx_want[2] = {T, k};
    DSK_TRY(dsk_op_shape(fn, "topk_idx", a->topk_idx, idx_want, "[T (x.shape[0]), k]"));
    if (k > INT32_MAX)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: topk_idx has k = %lld, expected <= %d", fn,
                        (long long)k, INT32_MAX);
    const int64_t worst = dsk_moe_permute_rows(T, (int)k, a->n_experts, a->align);
    if (worst > INT32_MAX)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: dsk_moe_permute_rows(T=%lld, k=%lld, E=%d, align=%d) = %lld rows, "
                        "expected <= %d (row indices are i32)",
                        fn, (long long)T, (long long)k, a->n_experts, a->align, (long long)worst,
                        INT32_MAX);
    DSK_TRY(dsk_op_tensor(fn, "x_perm", a->x_perm, 2, DSK_DT(a->x->dtype), "[P, Hd]"));
    const int64_t P = a->x_perm->shape[0];
    const int64_t xp_want[2] = {P, Hd};
    DSK_TRY(dsk_op_out_shape(fn, "x_perm", a->x_perm, xp_want, "[P, Hd (x.shape[1])]"));
    if (P < worst)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: x_perm has %lld rows, expected P >= dsk_moe_permute_rows(T=%lld, "
                        "k=%lld, E=%d, align=%d) = %lld",
                        fn, (long long)P, (long long)T, (long long)k, a->n_experts, a->align,
                        (long long)worst);
    DSK_TRY(dsk_op_tensor(fn, "m_indices", a->m_indices, 1, DSK_DT(DSK_I32), "[P]"));
    DSK_TRY(dsk_op_out_shape(fn, "m_indices", a->m_indices, &P, "[P (x_perm.shape[0])]"));
    DSK_TRY(dsk_op_tensor(fn, "row_map", a->row_map, 2, DSK_DT(DSK_I32), "[T, k]"));
    DSK_TRY(dsk_op_out_shape(fn, "row_map", a->row_map, idx_want, "[T, k] (topk_idx's shape)"));
    const int64_t E1 = E + 1;
    DSK_TRY(dsk_op_tensor(fn, "expert_offsets", a->expert_offsets, 1, DSK_DT(DSK_I32), "[E+1]"));
    DSK_TRY(dsk_op_out_shape(fn, "expert_offsets", a->expert_offsets, &E1, "[n_experts + 1]"));
    const char *names[6] = {"x", "topk_idx", "x_perm", "m_indices", "row_map", "expert_offsets"};
    const dsk_tensor *ts[6] = {a->x, a->topk_idx, a->x_perm, a->m_indices, a->row_map,
                               a->expert_offsets};
    for (int o = 2; o < 6; o++)
        for (int i = 0; i < o; i++)
            DSK_TRY(dsk_op_no_overlap(fn, names[o], ts[o], names[i], ts[i]));
    if (dsk_op_host_readable(a->topk_idx))
        DSK_TRY(check_topk_idx_values(fn, a->topk_idx, E));
    return DSK_OK;
}

dsk_status dsk_moe_permute_ref(const dsk_moe_permute_args *a)
{
    static const char fn[] = "dsk_moe_permute_ref";
    DSK_TRY(dsk_moe_permute_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "x", a->x));
    DSK_TRY(dsk_op_host(fn, "topk_idx", a->topk_idx));
    DSK_TRY(dsk_op_host(fn, "x_perm", a->x_perm));
    DSK_TRY(dsk_op_host(fn, "m_indices", a->m_indices));
    DSK_TRY(dsk_op_host(fn, "row_map", a->row_map));
    DSK_TRY(dsk_op_host(fn, "expert_offsets", a->expert_offsets));
    const dsk_tensor *idx = a->topk_idx;
    const int64_t T = a->x->shape[0], Hd = a->x->shape[1], k = idx->shape[1];
    const int64_t E = a->n_experts, P = a->x_perm->shape[0], align = a->align;
    const size_t esz = dsk_dtype_size(a->x->dtype);
    int64_t *cursor = calloc((size_t)E, sizeof *cursor);
    if (!cursor)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld counters", fn, (long long)E);

    /* segment sizes -> offsets (each padded to a multiple of align) */
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            int64_t e = dsk_load_i32(idx, dsk_off2(idx, t, j));
            if (e >= 0)
                cursor[e]++;
        }
    int64_t off = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t n = cursor[e], padded = (n + align - 1) / align * align;
        dsk_op_st_i32(a->expert_offsets, e * a->expert_offsets->stride[0], (int32_t)off);
        for (int64_t r = 0; r < padded; r++)
            dsk_op_st_i32(a->m_indices, (off + r) * a->m_indices->stride[0],
                          r < n ? (int32_t)e : -1);
        cursor[e] = off;
        off += padded;
    }
    dsk_op_st_i32(a->expert_offsets, E * a->expert_offsets->stride[0], (int32_t)off);
    for (int64_t r = off; r < P; r++)
        dsk_op_st_i32(a->m_indices, r * a->m_indices->stride[0], -1);

    /* rows in token order within each expert: (t, j) row-major over topk_idx */
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            int64_t e = dsk_load_i32(idx, dsk_off2(idx, t, j));
            int64_t row = e >= 0 ? cursor[e]++ : -1;
            dsk_op_st_i32(a->row_map, dsk_off2(a->row_map, t, j), (int32_t)row);
            if (row >= 0 && Hd > 0)
                memcpy((char *)a->x_perm->data + (size_t)(row * a->x_perm->stride[0]) * esz,
                       (const char *)a->x->data + (size_t)(t * a->x->stride[0]) * esz,
                       (size_t)Hd * esz);
        }
    free(cursor);
    return DSK_OK;
}

dsk_status dsk_moe_permute(dsk_device *dev, const dsk_moe_permute_args *a)
{
    static const char fn[] = "dsk_moe_permute";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_moe_permute_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "x", a->x, dev));
    DSK_TRY(dsk_op_on_device(fn, "topk_idx", a->topk_idx, dev));
    DSK_TRY(dsk_op_on_device(fn, "x_perm", a->x_perm, dev));
    DSK_TRY(dsk_op_on_device(fn, "m_indices", a->m_indices, dev));
    DSK_TRY(dsk_op_on_device(fn, "row_map", a->row_map, dev));
    DSK_TRY(dsk_op_on_device(fn, "expert_offsets", a->expert_offsets, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->moe_permute != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->moe_permute) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->moe_permute(rd, a);
}
