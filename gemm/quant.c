/* gemm/quant.c: FP8 quantization in DeepSeek-V3's scheme: activations in 1x128 groups
 * (per token), weights in 128x128 blocks; scale = max(amax, 1e-4) / 448 and
 * q = cvt.rn.satfinite.e4m3(x / scale). The 1e-4 floor keeps an all-zero group finite. */
#include <math.h>
#include "core/backend.h"
#include "core/check.h"
#include "core/error.h"

#define AMAX_FLOOR 1e-4

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static dsk_status check_act(const char *fn, const dsk_tensor *x, const dsk_tensor *q, const dsk_tensor *s)
{
    DSK_TRY(dsk_check_tensor(fn, "x", x, DSK_DT(DSK_F32) | DSK_DT(DSK_BF16), 2, NULL, "[M, K]"));
    int64_t M = x->shape[0], K = x->shape[1];
    DSK_TRY(dsk_check_tensor(fn, "q", q, DSK_DT(DSK_E4M3), 2, (int64_t[]){M, K}, "[M, K]"));
    DSK_TRY(dsk_check_inner_contig(fn, "q", q));
    return dsk_check_tensor(fn, "s", s, DSK_DT(DSK_F32), 2, (int64_t[]){M, cdiv(K, DSK_FP8_BLOCK)},
                            "[M, ceil(K/128)]");
}

dsk_status dsk_quant_act_fp8_ref(const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s)
{
    DSK_TRY(check_act("dsk_quant_act_fp8_ref", x, q, s));
    int64_t M = x->shape[0], K = x->shape[1];
    for (int64_t m = 0; m < M; m++) {
        for (int64_t k0 = 0; k0 < K; k0 += DSK_FP8_BLOCK) {
            int64_t k1 = k0 + DSK_FP8_BLOCK < K ? k0 + DSK_FP8_BLOCK : K;
            float amax = 0;
            for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf((float)dsk_load(x, dsk_off2(x, m, k))));
            float sc = fmaxf(amax, (float)AMAX_FLOOR) / 448.0f;
            dsk_store(s, dsk_off2(s, m, k0 / DSK_FP8_BLOCK), sc);
            for (int64_t k = k0; k < k1; k++)
                ((uint8_t *)q->data)[dsk_off2(q, m, k)] =
                    dsk_f32_to_fp8((float)dsk_load(x, dsk_off2(x, m, k)) / sc, DSK_E4M3);
        }
    }
    return DSK_OK;
}

dsk_status dsk_quant_act_fp8(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s)
{
    const char *fn = "dsk_quant_act_fp8";
    if (!dev) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dev is NULL", fn);
    DSK_TRY(check_act(fn, x, q, s));
    dsk_device *rd = dsk_op_device(dev, dev->backend->quant_act_fp8 != NULL, fn);
    if (!rd) return DSK_ERR_UNSUPPORTED;
    return rd->backend->quant_act_fp8(rd, x, q, s);
}

dsk_status dsk_quant_weight_fp8(const dsk_tensor *w, dsk_tensor *q, dsk_tensor *s)
{
    const char *fn = "dsk_quant_weight_fp8";
    DSK_TRY(dsk_check_tensor(fn, "w", w, DSK_DT(DSK_F32) | DSK_DT(DSK_BF16), 2, NULL, "[N, K]"));
    int64_t N = w->shape[0], K = w->shape[1];
    DSK_TRY(dsk_check_tensor(fn, "q", q, DSK_DT(DSK_E4M3), 2, (int64_t[]){N, K}, "[N, K]"));
    DSK_TRY(dsk_check_tensor(fn, "s", s, DSK_DT(DSK_F32), 2,
                             (int64_t[]){cdiv(N, DSK_FP8_BLOCK), cdiv(K, DSK_FP8_BLOCK)},
                             "[ceil(N/128), ceil(K/128)]"));
    for (int64_t n0 = 0; n0 < N; n0 += DSK_FP8_BLOCK) {
        int64_t n1 = n0 + DSK_FP8_BLOCK < N ? n0 + DSK_FP8_BLOCK : N;
        for (int64_t k0 = 0; k0 < K; k0 += DSK_FP8_BLOCK) {
            int64_t k1 = k0 + DSK_FP8_BLOCK < K ? k0 + DSK_FP8_BLOCK : K;
            float amax = 0;
            for (int64_t n = n0; n < n1; n++)
                for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf((float)dsk_load(w, dsk_off2(w, n, k))));
            float sc = fmaxf(amax, (float)AMAX_FLOOR) / 448.0f;
            dsk_store(s, dsk_off2(s, n0 / DSK_FP8_BLOCK, k0 / DSK_FP8_BLOCK), sc);
            for (int64_t n = n0; n < n1; n++)
                for (int64_t k = k0; k < k1; k++)
                    ((uint8_t *)q->data)[dsk_off2(q, n, k)] =
                        dsk_f32_to_fp8((float)dsk_load(w, dsk_off2(w, n, k)) / sc, DSK_E4M3);
        }
    }
    return DSK_OK;
}

dsk_status dsk_dequant_weight_fp8(const dsk_tensor *q, const dsk_tensor *s, dsk_tensor *w)
{
    const char *fn = "dsk_dequant_weight_fp8";
    DSK_TRY(dsk_check_tensor(fn, "q", q, DSK_DT(DSK_E4M3), 2, NULL, "[N, K]"));
    int64_t N = q->shape[0], K = q->shape[1];
    DSK_TRY(dsk_check_tensor(fn, "s", s, DSK_DT(DSK_F32), 2,
                             (int64_t[]){cdiv(N, DSK_FP8_BLOCK), cdiv(K, DSK_FP8_BLOCK)},
                             "[ceil(N/128), ceil(K/128)]"));
    DSK_TRY(dsk_check_tensor(fn, "w", w, DSK_DT(DSK_F32) | DSK_DT(DSK_BF16), 2, (int64_t[]){N, K}, "[N, K]"));
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            dsk_store(w, dsk_off2(w, n, k),
                      dsk_load(q, dsk_off2(q, n, k)) *
                          dsk_load(s, dsk_off2(s, n / DSK_FP8_BLOCK, k / DSK_FP8_BLOCK)));
    return DSK_OK;
}
