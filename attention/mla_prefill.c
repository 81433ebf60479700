/* attention/mla_prefill.c: MLA prefill (non-absorbed, causal, variable-length batch):
 * the argument checks, the float64 reference and the dispatcher. The contract is in
 * dsk/attention.h. */
#include <math.h>
#include <stdlib.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

/* cu_seqlens: [0] = 0, nondecreasing, [B] = T. Only called on host-readable tensors. */
static dsk_status check_cu_seqlens(const char *fn, const dsk_tensor *cu, int64_t T)
{
    const int64_t n = cu->shape[0];
    int64_t prev = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = dsk_load_i32(cu, i * cu->stride[0]);
        if (i == 0 && v != 0)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: cu_seqlens[0] = %lld, expected 0", fn,
                            (long long)v);
        if (v < prev)
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: cu_seqlens[%lld] = %lld < cu_seqlens[%lld] = %lld, expected "
                            "nondecreasing offsets",
                            fn, (long long)i, (long long)v, (long long)i - 1, (long long)prev);
        prev = v;
    }
    if (prev != T)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: cu_seqlens[B] = cu_seqlens[%lld] = %lld, expected T = %lld (q.shape[0])",
                        fn, (long long)n - 1, (long long)prev, (long long)T);
    return DSK_OK;
}

dsk_status dsk_mla_prefill_check(const char *fn, const dsk_mla_prefill_args *a)
{
    if (!fn)
        fn = "dsk_mla_prefill";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_mla_prefill_args",
                        fn);
    DSK_TRY(dsk_op_tensor(fn, "q", a->q, 3, DSK_OP_FLOAT, "[T, H, Dqk]"));
    const int64_t T = a->q->shape[0], H = a->q->shape[1], Dqk = a->q->shape[2];
    if (Dqk < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: q has shape[2] = Dqk = 0, expected >= 1", fn);
    DSK_TRY(dsk_op_tensor(fn, "k", a->k, 3, DSK_OP_FLOAT, "[T, H, Dqk]"));
    DSK_TRY(dsk_op_shape(fn, "k", a->k, a->q->shape, "[T, H, Dqk] (q's shape)"));
    DSK_TRY(dsk_op_tensor(fn, "v", a->v, 3, DSK_OP_FLOAT, "[T, H, Dv]"));
    const int64_t Dv = a->v->shape[2];
    const int64_t v_want[3] = {T, H, Dv};
    DSK_TRY(dsk_op_shape(fn, "v", a->v, v_want, "[T, H, Dv]"));
    if (Dv < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: v has shape[2] = Dv = 0, expected >= 1", fn);
    DSK_TRY(dsk_op_tensor(fn, "cu_seqlens", a->cu_seqlens, 1, DSK_DT(DSK_I32), "[B+1]"));
    if (a->cu_seqlens->shape[0] < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: cu_seqlens has shape [0], expected [B+1] with B >= 0",
                        fn);
    DSK_TRY(dsk_op_tensor(fn, "out", a->out, 3, DSK_OP_FLOAT, "[T, H, Dv]"));
    DSK_TRY(dsk_op_out_shape(fn, "out", a->out, v_want, "[T, H, Dv]"));
    if (a->lse) {
        DSK_TRY(dsk_op_tensor(fn, "lse", a->lse, 2, DSK_DT(DSK_F32), "[T, H]"));
        const int64_t lse_want[2] = {T, H};
        DSK_TRY(dsk_op_out_shape(fn, "lse", a->lse, lse_want, "[T, H]"));
        DSK_TRY(dsk_op_no_overlap(fn, "lse", a->lse, "out", a->out));
    }
    if (!isfinite(a->softmax_scale) || !(a->softmax_scale > 0.0f))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: softmax_scale = %g, expected a finite value > 0",
                        fn, (double)a->softmax_scale);
    const char *in_names[4] = {"q", "k", "v", "cu_seqlens"};
    const dsk_tensor *ins[4] = {a->q, a->k, a->v, a->cu_seqlens};
    for (int i = 0; i < 4; i++) {
        DSK_TRY(dsk_op_no_overlap(fn, "out", a->out, in_names[i], ins[i]));
        DSK_TRY(dsk_op_no_overlap(fn, "lse", a->lse, in_names[i], ins[i]));
    }
    if (dsk_op_host_readable(a->cu_seqlens))
        DSK_TRY(check_cu_seqlens(fn, a->cu_seqlens, T));
    return DSK_OK;
}

dsk_status dsk_mla_prefill_ref(const dsk_mla_prefill_args *a)
{
    static const char fn[] = "dsk_mla_prefill_ref";
    DSK_TRY(dsk_mla_prefill_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "q", a->q));
    DSK_TRY(dsk_op_host(fn, "k", a->k));
    DSK_TRY(dsk_op_host(fn, "v", a->v));
    DSK_TRY(dsk_op_host(fn, "cu_seqlens", a->cu_seqlens));
    DSK_TRY(dsk_op_host(fn, "out", a->out));
    DSK_TRY(dsk_op_host(fn, "lse", a->lse));

    const int64_t T = a->q->shape[0], H = a->q->shape[1], Dqk = a->q->shape[2];
    const int64_t Dv = a->v->shape[2], nseq = a->cu_seqlens->shape[0] - 1;
    const double scale = a->softmax_scale;
    double *s = malloc((size_t)(T > 0 ? T : 1) * sizeof *s);
    double *o = malloc((size_t)Dv * sizeof *o);
    if (!s || !o) {
        free(s);
        free(o);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld scores", fn, (long long)T);
    }
    for (int64_t sq = 0; sq < nseq; sq++) {
        const int64_t t0 = dsk_load_i32(a->cu_seqlens, sq * a->cu_seqlens->stride[0]);
        const int64_t t1 = dsk_load_i32(a->cu_seqlens, (sq + 1) * a->cu_seqlens->stride[0]);
        for (int64_t i = t0; i < t1; i++)
            for (int64_t h = 0; h < H; h++) {
                /* causal: query token i sees keys t0..i of its own sequence */
                double m = -INFINITY;
                for (int64_t j = t0; j <= i; j++) {
                    double dot = 0.0;
                    for (int64_t d = 0; d < Dqk; d++)
                        dot += dsk_load(a->q, dsk_off3(a->q, i, h, d)) *
                               dsk_load(a->k, dsk_off3(a->k, j, h, d));
                    s[j - t0] = scale * dot;
                    if (s[j - t0] > m)
                        m = s[j - t0];
                }
                double l = 0.0;
                for (int64_t c = 0; c < Dv; c++)
                    o[c] = 0.0;
                for (int64_t j = t0; j <= i; j++) {
                    double p = exp(s[j - t0] - m);
                    l += p;
                    for (int64_t c = 0; c < Dv; c++)
                        o[c] += p * dsk_load(a->v, dsk_off3(a->v, j, h, c));
                }
                for (int64_t c = 0; c < Dv; c++)
                    dsk_store(a->out, dsk_off3(a->out, i, h, c), o[c] / l);
                if (a->lse)
                    dsk_store(a->lse, dsk_off2(a->lse, i, h), m + log(l));
            }
    }
    free(s);
    free(o);
    return DSK_OK;
}

dsk_status dsk_mla_prefill(dsk_device *dev, const dsk_mla_prefill_args *a)
{
    static const char fn[] = "dsk_mla_prefill";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_mla_prefill_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "q", a->q, dev));
    DSK_TRY(dsk_op_on_device(fn, "k", a->k, dev));
    DSK_TRY(dsk_op_on_device(fn, "v", a->v, dev));
    DSK_TRY(dsk_op_on_device(fn, "cu_seqlens", a->cu_seqlens, dev));
    DSK_TRY(dsk_op_on_device(fn, "out", a->out, dev));
    DSK_TRY(dsk_op_on_device(fn, "lse", a->lse, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->mla_prefill != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->mla_prefill) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->mla_prefill(rd, a);
}
