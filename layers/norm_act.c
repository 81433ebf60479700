/* layers/norm_act.c: RMSNorm and SwiGLU: argument checks, float64 references and the
 * dispatchers. The contracts are in dsk/layers.h. */
#include <math.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

/* ---- RMSNorm ---------------------------------------------------------------------- */

static int same_view(const dsk_tensor *a, const dsk_tensor *b)
{
    if (a->data != b->data || a->dtype != b->dtype || a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->stride[i] != b->stride[i]))
            return 0;
    return 1;
}

dsk_status dsk_rmsnorm_check(const char *fn, const dsk_rmsnorm_args *a)
{
    if (!fn)
        fn = "dsk_rmsnorm";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_rmsnorm_args", fn);
    DSK_TRY(dsk_op_tensor(fn, "x", a->x, 2, DSK_OP_FLOAT, "[T, Hd]"));
    const int64_t Hd = a->x->shape[1];
    if (Hd < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: x has Hd = x.shape[1] = 0, expected >= 1", fn);
    DSK_TRY(dsk_op_tensor(fn, "weight", a->weight, 1, DSK_OP_FLOAT, "[Hd]"));
    DSK_TRY(dsk_op_shape(fn, "weight", a->weight, &Hd, "[Hd (x.shape[1])]"));
    DSK_TRY(dsk_op_tensor(fn, "y", a->y, 2, DSK_OP_FLOAT, "[T, Hd]"));
    DSK_TRY(dsk_op_out_shape(fn, "y", a->y, a->x->shape, "[T, Hd] (x's shape)"));
    if (!isfinite(a->eps) || a->eps < 0.0f)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: eps = %g, expected a finite value >= 0", fn,
                        (double)a->eps);
    if (!same_view(a->y, a->x)) /* y may alias x exactly (in place), nothing else */
        DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "x", a->x));
    DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "weight", a->weight));
    return DSK_OK;
}

dsk_status dsk_rmsnorm_ref(const dsk_rmsnorm_args *a)
{
    static const char fn[] = "dsk_rmsnorm_ref";
    DSK_TRY(dsk_rmsnorm_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "x", a->x));
    DSK_TRY(dsk_op_host(fn, "weight", a->weight));
    DSK_TRY(dsk_op_host(fn, "y", a->y));
    const int64_t T = a->x->shape[0], Hd = a->x->shape[1];
    for (int64_t t = 0; t < T; t++) {
        double ss = 0.0;
        for (int64_t c = 0; c < Hd; c++) {
            double v = dsk_load(a->x, dsk_off2(a->x, t, c));
            ss += v * v;
        }
        const double inv = 1.0 / sqrt(ss / (double)Hd + (double)a->eps);
        /* element c of x is read before y's element c is written: in-place safe */
        for (int64_t c = 0; c < Hd; c++) {
            double v = dsk_load(a->x, dsk_off2(a->x, t, c));
            double w = dsk_load(a->weight, c * a->weight->stride[0]);
            dsk_store(a->y, dsk_off2(a->y, t, c), v * inv * w);
        }
    }
    return DSK_OK;
}

dsk_status dsk_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a)
{
    static const char fn[] = "dsk_rmsnorm";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_rmsnorm_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "x", a->x, dev));
    DSK_TRY(dsk_op_on_device(fn, "weight", a->weight, dev));
    DSK_TRY(dsk_op_on_device(fn, "y", a->y, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->rmsnorm != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->rmsnorm) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->rmsnorm(rd, a);
}

/* ---- SwiGLU ----------------------------------------------------------------------- */

dsk_status dsk_swiglu_check(const char *fn, const dsk_swiglu_args *a)
{
    if (!fn)
        fn = "dsk_swiglu";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_swiglu_args", fn);
    DSK_TRY(dsk_op_tensor(fn, "gate_up", a->gate_up, 2, DSK_OP_FLOAT, "[T, 2*I]"));
    const int64_t T = a->gate_up->shape[0], I2 = a->gate_up->shape[1];
    if (I2 % 2 != 0)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: gate_up has %lld columns, expected an even count 2*I (gate | up)", fn,
                        (long long)I2);
    DSK_TRY(dsk_op_tensor(fn, "y", a->y, 2, DSK_OP_FLOAT, "[T, I]"));
    const int64_t y_want[2] = {T, I2 / 2};
    DSK_TRY(dsk_op_out_shape(fn, "y", a->y, y_want, "[T, I (gate_up.shape[1] / 2)]"));
    DSK_TRY(dsk_op_no_overlap(fn, "y", a->y, "gate_up", a->gate_up));
    return DSK_OK;
}

dsk_status dsk_swiglu_ref(const dsk_swiglu_args *a)
{
    static const char fn[] = "dsk_swiglu_ref";
    DSK_TRY(dsk_swiglu_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "gate_up", a->gate_up));
    DSK_TRY(dsk_op_host(fn, "y", a->y));
    const int64_t T = a->y->shape[0], I = a->y->shape[1];
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < I; i++) {
            double g = dsk_load(a->gate_up, dsk_off2(a->gate_up, t, i));
            double u = dsk_load(a->gate_up, dsk_off2(a->gate_up, t, I + i));
            dsk_store(a->y, dsk_off2(a->y, t, i), g / (1.0 + exp(-g)) * u);
        }
    return DSK_OK;
}

dsk_status dsk_swiglu(dsk_device *dev, const dsk_swiglu_args *a)
{
    static const char fn[] = "dsk_swiglu";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_swiglu_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "gate_up", a->gate_up, dev));
    DSK_TRY(dsk_op_on_device(fn, "y", a->y, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->swiglu != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->swiglu) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->swiglu(rd, a);
}
