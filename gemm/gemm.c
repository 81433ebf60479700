/* gemm/gemm.c: the FP8 block-scaled GEMM contract: argument checks and dispatch to the
 * device's backend. The layouts are documented in include/dsk/gemm.h. */
#include <stdio.h>
#include "core/backend.h"
#include "core/check.h"
#include "core/error.h"
#include "gemm/gemm_internal.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

dsk_status dsk_gemm_fp8_check(const char *fn, const dsk_gemm_fp8_args *g)
{
    if (!g) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL", fn);
    const unsigned fp8 = DSK_DT(DSK_E4M3), f32 = DSK_DT(DSK_F32);
    const unsigned out = DSK_DT(DSK_F32) | DSK_DT(DSK_BF16);
    if (!g->a) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: a is NULL", fn);
    if (!g->b) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: b is NULL", fn);

    switch (g->layout) {
    case DSK_GEMM_DENSE:
    case DSK_GEMM_CONTIGUOUS: {
        int grouped = g->layout == DSK_GEMM_CONTIGUOUS;
        DSK_TRY(dsk_check_tensor(fn, "a", g->a, fp8, 2, NULL, "[M, K]"));
        int64_t M = g->a->shape[0], K = g->a->shape[1];
        if (K < 1) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: a has K = %lld, expected K >= 1", fn, (long long)K);
        DSK_TRY(dsk_check_inner_contig(fn, "a", g->a));
        int64_t kb = cdiv(K, DSK_FP8_BLOCK);
        if (grouped) {
            DSK_TRY(dsk_check_tensor(fn, "b", g->b, fp8, 3, (int64_t[]){-1, -1, K}, "[G, N, K]"));
        } else {
            DSK_TRY(dsk_check_tensor(fn, "b", g->b, fp8, 2, (int64_t[]){-1, K}, "[N, K]"));
        }
        DSK_TRY(dsk_check_inner_contig(fn, "b", g->b));
        int64_t G = grouped ? g->b->shape[0] : 1;
        int64_t N = g->b->shape[grouped ? 1 : 0];
        if (N < 1) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: b has N = %lld, expected N >= 1", fn, (long long)N);
        DSK_TRY(dsk_check_tensor(fn, "a_scale", g->a_scale, f32, 2, (int64_t[]){M, kb}, "[M, ceil(K/128)]"));
        if (grouped) {
            DSK_TRY(dsk_check_tensor(fn, "b_scale", g->b_scale, f32, 3,
                                     (int64_t[]){G, cdiv(N, DSK_FP8_BLOCK), kb},
                                     "[G, ceil(N/128), ceil(K/128)]"));
            DSK_TRY(dsk_check_tensor(fn, "m_indices", g->m_indices, DSK_DT(DSK_I32), 1,
                                     (int64_t[]){M}, "[M]"));
        } else {
            DSK_TRY(dsk_check_tensor(fn, "b_scale", g->b_scale, f32, 2,
                                     (int64_t[]){cdiv(N, DSK_FP8_BLOCK), kb}, "[ceil(N/128), ceil(K/128)]"));
            if (g->m_indices)
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m_indices is given, expected NULL for the dense layout", fn);
        }
        if (g->masked_m)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: masked_m is given, expected NULL outside the masked layout", fn);
        DSK_TRY(dsk_check_tensor(fn, "d", g->d, out, 2, (int64_t[]){M, N}, "[M, N]"));
        return dsk_check_inner_contig(fn, "d", g->d);
    }
    case DSK_GEMM_MASKED: {
        DSK_TRY(dsk_check_tensor(fn, "a", g->a, fp8, 3, NULL, "[G, max_m, K]"));
        int64_t G = g->a->shape[0], MM = g->a->shape[1], K = g->a->shape[2];
        if (K < 1) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: a has K = %lld, expected K >= 1", fn, (long long)K);
        DSK_TRY(dsk_check_inner_contig(fn, "a", g->a));
        int64_t kb = cdiv(K, DSK_FP8_BLOCK);
        DSK_TRY(dsk_check_tensor(fn, "b", g->b, fp8, 3, (int64_t[]){G, -1, K}, "[G, N, K]"));
        DSK_TRY(dsk_check_inner_contig(fn, "b", g->b));
        int64_t N = g->b->shape[1];
        if (N < 1) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: b has N = %lld, expected N >= 1", fn, (long long)N);
        DSK_TRY(dsk_check_tensor(fn, "a_scale", g->a_scale, f32, 3, (int64_t[]){G, MM, kb},
                                 "[G, max_m, ceil(K/128)]"));
        DSK_TRY(dsk_check_tensor(fn, "b_scale", g->b_scale, f32, 3,
                                 (int64_t[]){G, cdiv(N, DSK_FP8_BLOCK), kb}, "[G, ceil(N/128), ceil(K/128)]"));
        DSK_TRY(dsk_check_tensor(fn, "masked_m", g->masked_m, DSK_DT(DSK_I32), 1, (int64_t[]){G}, "[G]"));
        if (g->m_indices)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m_indices is given, expected NULL for the masked layout", fn);
        DSK_TRY(dsk_check_tensor(fn, "d", g->d, out, 3, (int64_t[]){G, MM, N}, "[G, max_m, N]"));
        return dsk_check_inner_contig(fn, "d", g->d);
    }
    }
    return dsk_fail(DSK_ERR_INVALID_ARG, "%s: layout is %d, expected DSK_GEMM_DENSE, _CONTIGUOUS or _MASKED",
                    fn, (int)g->layout);
}

dsk_status dsk_gemm_fp8_check_values(const char *fn, const dsk_gemm_fp8_args *g)
{
    if (g->layout == DSK_GEMM_CONTIGUOUS) {
        int64_t M = g->a->shape[0], G = g->b->shape[0];
        for (int64_t i = 0; i < M; i++) {
            int32_t e = dsk_load_i32(g->m_indices, i * g->m_indices->stride[0]);
            if (e < -1 || e >= G)
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m_indices[%lld] = %d, expected -1 or a group in [0, %lld)",
                                fn, (long long)i, e, (long long)G);
        }
    } else if (g->layout == DSK_GEMM_MASKED) {
        int64_t G = g->a->shape[0], MM = g->a->shape[1];
        for (int64_t i = 0; i < G; i++) {
            int32_t m = dsk_load_i32(g->masked_m, i * g->masked_m->stride[0]);
            if (m < 0 || m > MM)
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: masked_m[%lld] = %d, expected 0..max_m = %lld", fn,
                                (long long)i, m, (long long)MM);
        }
    }
    return DSK_OK;
}

dsk_status dsk_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *args)
{
    const char *fn = "dsk_gemm_fp8";
    if (!dev) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dev is NULL", fn);
    DSK_TRY(dsk_gemm_fp8_check(fn, args));
    if (dev->props.host_memory) DSK_TRY(dsk_gemm_fp8_check_values(fn, args));
    dsk_device *rd = dsk_op_device(dev, dev->backend->gemm_fp8 != NULL, fn);
    if (!rd) return DSK_ERR_UNSUPPORTED;
    return rd->backend->gemm_fp8(rd, args);
}
