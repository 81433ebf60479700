/* layers/rope.c: rotary position embedding as DeepSeek-V3's reference model.py applies it
 * (interleaved pairs, YaRN-corrected frequencies): parameter and argument checks, the
 * float64 reference and the dispatcher. The contract is in dsk/layers.h. */
#include <math.h>
#include <stdlib.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

dsk_rope_params dsk_rope_params_v3(void)
{
    dsk_rope_params p = {
        .dim = 64,
        .theta = 10000.0f,
        .factor = 40.0f,
        .original_max_pos = 4096,
        .beta_fast = 32.0f,
        .beta_slow = 1.0f,
        .attn_factor = 1.0f,
    };
    return p;
}

/* model.py's find_correction_dim: the pair index whose wavelength fits num_rotations
 * times into max_pos positions (fractional). */
static double correction_dim(double num_rotations, int dim, double theta, double max_pos)
{
    const double pi = 3.14159265358979323846;
    return dim * log(max_pos / (num_rotations * 2.0 * pi)) / (2.0 * log(theta));
}

void dsk_rope_freqs(const dsk_rope_params *p, double *freqs)
{
    const int half = p->dim / 2;
    for (int i = 0; i < half; i++)
        freqs[i] = 1.0 / pow((double)p->theta, (double)(2 * i) / (double)p->dim);
    if (!(p->factor > 1.0f))
        return;
    /* model.py's find_correction_range and linear_ramp_factor: pairs below `low` keep
     * their frequency (extrapolation), pairs above `high` are divided by factor
     * (interpolation), a linear ramp in between. */
    double low = floor(correction_dim(p->beta_fast, p->dim, p->theta, p->original_max_pos));
    double high = ceil(correction_dim(p->beta_slow, p->dim, p->theta, p->original_max_pos));
    low = low < 0.0 ? 0.0 : low;
    high = high > p->dim - 1 ? p->dim - 1 : high;
    if (low == high)
        high += 0.001;
    for (int i = 0; i < half; i++) {
        double ramp = (i - low) / (high - low);
        ramp = ramp < 0.0 ? 0.0 : (ramp > 1.0 ? 1.0 : ramp);
        freqs[i] = freqs[i] / p->factor * ramp + freqs[i] * (1.0 - ramp);
    }
}

static dsk_status check_params(const char *fn, const dsk_rope_params *p)
{
    if (p->dim < 2 || p->dim % 2 != 0)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.dim = %d, expected an even value >= 2 (pairs)",
                        fn, p->dim);
    if (!isfinite(p->theta) || !(p->theta > 1.0f))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.theta = %g, expected a finite value > 1", fn,
                        (double)p->theta);
    if (!isfinite(p->factor) || !(p->factor > 0.0f))
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: p.factor = %g, expected a finite value > 0 (<= 1: no YaRN)", fn,
                        (double)p->factor);
    if (!isfinite(p->attn_factor))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.attn_factor = %g, expected finite", fn,
                        (double)p->attn_factor);
    if (p->factor > 1.0f) {
        if (p->original_max_pos < 1)
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: p.original_max_pos = %d, expected >= 1 when p.factor > 1 (YaRN)",
                            fn, p->original_max_pos);
        if (!isfinite(p->beta_slow) || !(p->beta_slow > 0.0f))
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: p.beta_slow = %g, expected a finite value > 0 when p.factor > 1",
                            fn, (double)p->beta_slow);
        if (!isfinite(p->beta_fast) || !(p->beta_fast >= p->beta_slow))
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: p.beta_fast = %g, expected a finite value >= p.beta_slow = %g "
                            "when p.factor > 1",
                            fn, (double)p->beta_fast, (double)p->beta_slow);
    }
    return DSK_OK;
}

dsk_status dsk_rope_check(const char *fn, const dsk_rope_args *a)
{
    if (!fn)
        fn = "dsk_rope";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_rope_args", fn);
    DSK_TRY(check_params(fn, &a->p));
    DSK_TRY(dsk_op_tensor(fn, "x", a->x, 3, DSK_OP_FLOAT, "[T, nh, dim]"));
    const int64_t T = a->x->shape[0];
    const int64_t x_want[3] = {T, a->x->shape[1], a->p.dim};
    DSK_TRY(dsk_op_out_shape(fn, "x", a->x, x_want, "[T, nh, p.dim]"));
    DSK_TRY(dsk_op_tensor(fn, "positions", a->positions, 1, DSK_DT(DSK_I32), "[T]"));
    DSK_TRY(dsk_op_shape(fn, "positions", a->positions, &T, "[T (x.shape[0])]"));
    DSK_TRY(dsk_op_no_overlap(fn, "x", a->x, "positions", a->positions));
    if (dsk_op_host_readable(a->positions))
        for (int64_t t = 0; t < T; t++) {
            int32_t pos = dsk_load_i32(a->positions, t * a->positions->stride[0]);
            if (pos < 0)
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: positions[%lld] = %d, expected >= 0",
                                fn, (long long)t, pos);
        }
    return DSK_OK;
}

dsk_status dsk_rope_ref(const dsk_rope_args *a)
{
    static const char fn[] = "dsk_rope_ref";
    DSK_TRY(dsk_rope_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "x", a->x));
    DSK_TRY(dsk_op_host(fn, "positions", a->positions));
    const int64_t T = a->x->shape[0], nh = a->x->shape[1], half = a->p.dim / 2;
    double *freqs = malloc((size_t)half * sizeof *freqs);
    if (!freqs)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld frequencies", fn,
                        (long long)half);
    dsk_rope_freqs(&a->p, freqs);
    dsk_tensor *x = a->x;
    for (int64_t t = 0; t < T; t++) {
        const double pos = dsk_load_i32(a->positions, t * a->positions->stride[0]);
        for (int64_t i = 0; i < half; i++) {
            /* pair (x[2i], x[2i+1]) as a complex number times attn_factor * e^(i*pos*freq) */
            const double c = cos(pos * freqs[i]) * a->p.attn_factor;
            const double s = sin(pos * freqs[i]) * a->p.attn_factor;
            for (int64_t h = 0; h < nh; h++) {
                const int64_t o0 = dsk_off3(x, t, h, 2 * i), o1 = o0 + 1;
                const double x0 = dsk_load(x, o0), x1 = dsk_load(x, o1);
                dsk_store(x, o0, x0 * c - x1 * s);
                dsk_store(x, o1, x0 * s + x1 * c);
            }
        }
    }
    free(freqs);
    return DSK_OK;
}

dsk_status dsk_rope(dsk_device *dev, const dsk_rope_args *a)
{
    static const char fn[] = "dsk_rope";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_rope_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "x", a->x, dev));
    DSK_TRY(dsk_op_on_device(fn, "positions", a->positions, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->rope != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->rope) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->rope(rd, a);
}
