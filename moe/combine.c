/* moe/combine.c: unpermute with weights (the MoE combine): argument checks, the float64
 * reference and the dispatcher. The contract is in dsk/moe.h. */
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

/* Every row_map entry lies in [-1, P). Only called on host-readable tensors. */
static dsk_status check_row_map_values(const char *fn, const dsk_tensor *rm, int64_t P)
{
    for (int64_t t = 0; t < rm->shape[0]; t++)
        for (int64_t j = 0; j < rm->shape[1]; j++) {
            int64_t r = dsk_load_i32(rm, dsk_off2(rm, t, j));
            if (r < -1 || r >= P)
                return dsk_fail(DSK_ERR_INVALID_ARG,
                                "%s: row_map[%lld, %lld] = %lld, expected -1 (no row) or "
                                "0..P-1 = 0..%lld (P = y_perm.shape[0])",
                                fn, (long long)t, (long long)j, (long long)r, (long long)P - 1);
        }
    return DSK_OK;
}

dsk_status dsk_moe_combine_check(const char *fn, const dsk_moe_combine_args *a)
{
    if (!fn)
        fn = "dsk_moe_combine";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_moe_combine_args", fn);
    DSK_TRY(dsk_op_tensor(fn, "y_perm", a->y_perm, 2, DSK_OP_FLOAT, "[P, Hd]"));
    const int64_t P = a->y_perm->shape[0], Hd = a->y_perm->shape[1];
    DSK_TRY(dsk_op_tensor(fn, "row_map", a->row_map, 2, DSK_DT(DSK_I32), "[T, k]"));
    const int64_t T = a->row_map->shape[0], k = a->row_map->shape[1];
    DSK_TRY(dsk_op_tensor(fn, "topk_w", a->topk_w, 2, DSK_DT(DSK_F32), "[T, k]"));
    const int64_t tk_want[2] = {T, k};
    DSK_TRY(dsk_op_shape(fn, "topk_w", a->topk_w, tk_want, "[T, k] (row_map's shape)"));
    DSK_TRY(dsk_op_tensor(fn, "y", a->y, 2, DSK_OP_FLOAT, "[T, Hd]"));
    const int64_t y_want[2] = {T, Hd};
    DSK_TRY(dsk_op_out_shape(fn, "y", a->y, y_want, "[T (row_map.shape[0]), Hd (y_perm.shape[1])]"));
    DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "y_perm", a->y_perm));
    DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "row_map", a->row_map));
    DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "topk_w", a->topk_w));
    if (dsk_op_host_readable(a->row_map))
        DSK_TRY(check_row_map_values(fn, a->row_map, P));
    return DSK_OK;
}

dsk_status dsk_moe_combine_ref(const dsk_moe_combine_args *a)
{
    static const char fn[] = "dsk_moe_combine_ref";
    DSK_TRY(dsk_moe_combine_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "y_perm", a->y_perm));
    DSK_TRY(dsk_op_host(fn, "row_map", a->row_map));
    DSK_TRY(dsk_op_host(fn, "topk_w", a->topk_w));
    DSK_TRY(dsk_op_host(fn, "y", a->y));
    const int64_t T = a->row_map->shape[0], k = a->row_map->shape[1], Hd = a->y->shape[1];
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < Hd; c++) {
            double acc = 0.0;
            for (int64_t j = 0; j < k; j++) {
                int64_t r = dsk_load_i32(a->row_map, dsk_off2(a->row_map, t, j));
                if (r < 0)
                    continue;
                acc += dsk_load(a->topk_w, dsk_off2(a->topk_w, t, j)) *
                       dsk_load(a->y_perm, dsk_off2(a->y_perm, r, c));
            }
            dsk_store(a->y, dsk_off2(a->y, t, c), acc);
        }
    return DSK_OK;
}

dsk_status dsk_moe_combine(dsk_device *dev, const dsk_moe_combine_args *a)
{
    static const char fn[] = "dsk_moe_combine";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_moe_combine_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "y_perm", a->y_perm, dev));
    DSK_TRY(dsk_op_on_device(fn, "row_map", a->row_map, dev));
    DSK_TRY(dsk_op_on_device(fn, "topk_w", a->topk_w, dev));
    DSK_TRY(dsk_op_on_device(fn, "y", a->y, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->moe_combine != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->moe_combine) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->moe_combine(rd, a);
}
