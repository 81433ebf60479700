/* layers/op_args.c: argument-check helpers shared by attention/, moe/ and layers/
 * (see op_args.h for the rules they enforce). */
#include "layers/op_args.h"

#include <stdio.h>
#include <stdlib.h>
#include "core/backend.h"
#include "core/error.h"

dsk_status dsk_op_tensor(const char *fn, const char *name, const dsk_tensor *t, int rank,
                         unsigned dtype_mask, const char *layout)
{
    char dts[96];
    if (!t)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s is NULL, expected a %s %s tensor", fn, name,
                        layout, dsk_dtype_mask_str(dtype_mask, dts, sizeof dts));
    if ((unsigned)t->dtype >= DSK_DTYPE_COUNT) /* before any DSK_DT(dtype) shift */
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has dtype invalid (%d), expected %s", fn, name,
                        (int)t->dtype, dsk_dtype_mask_str(dtype_mask, dts, sizeof dts));
    DSK_TRY(dsk_check_tensor(fn, name, t, dtype_mask, rank, NULL, layout));
    return dsk_check_inner_contig(fn, name, t);
}

/* Element offsets spanned by t: [0, max_off]; -1 when empty. */
static int64_t max_offset(const dsk_tensor *t)
{
    int64_t m = 0;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] == 0)
            return -1;
        m += (t->shape[i] - 1) * t->stride[i];
    }
    return m;
}

static int cmp_dim_stride(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Sufficient condition for no self-overlap: with the dims of extent > 1 sorted by stride,
 * each stride exceeds the largest offset reachable by the smaller ones. */
static dsk_status check_distinct(const char *fn, const char *name, const dsk_tensor *t)
{
    if (max_offset(t) < 0)
        return DSK_OK;
    int64_t dims[DSK_MAX_RANK][2];
    int n = 0;
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] > 1) {
            dims[n][0] = t->stride[i];
            dims[n][1] = t->shape[i];
            n++;
        }
    qsort(dims, (size_t)n, sizeof dims[0], cmp_dim_stride);
    int64_t reach = 0;
    for (int i = 0; i < n; i++) {
        if (dims[i][0] <= reach) {
            char sh[64];
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: output %s (shape %s) has strides that make elements share memory, "
                            "expected distinct elements",
                            fn, name, dsk_tensor_shape_str(t, sh, sizeof sh));
        }
        reach += dims[i][0] * (dims[i][1] - 1);
    }
    return DSK_OK;
}

dsk_status dsk_op_out_shape(const char *fn, const char *name, const dsk_tensor *t,
                            const int64_t *want, const char *layout)
{
    DSK_TRY(dsk_op_shape(fn, name, t, want, layout));
    return check_distinct(fn, name, t);
}

dsk_status dsk_op_shape(const char *fn, const char *name, const dsk_tensor *t,
                        const int64_t *want, const char *layout)
{
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] != want[i]) {
            char got[96], exp[96];
            size_t u = 0;
            exp[0] = '\0';
            for (int j = 0; j < t->rank; j++)
                u += (size_t)snprintf(exp + u, sizeof exp - u, "%s%lld", j ? ", " : "[",
                                      (long long)want[j]);
            snprintf(exp + u, sizeof exp - u, "]");
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has shape %s, expected %s = %s", fn, name,
                            dsk_tensor_shape_str(t, got, sizeof got), layout, exp);
        }
    return DSK_OK;
}

dsk_status dsk_op_no_overlap(const char *fn, const char *out_name, const dsk_tensor *out,
                             const char *in_name, const dsk_tensor *in)
{
    if (!out || !in || !out->data || !in->data)
        return DSK_OK;
    int64_t mo = max_offset(out), mi = max_offset(in);
    if (mo < 0 || mi < 0)
        return DSK_OK;
    uintptr_t o0 = (uintptr_t)out->data, i0 = (uintptr_t)in->data;
    uintptr_t o1 = o0 + (uintptr_t)(mo + 1) * dsk_dtype_size(out->dtype);
    uintptr_t i1 = i0 + (uintptr_t)(mi + 1) * dsk_dtype_size(in->dtype);
    if (o0 < i1 && i0 < o1)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: output %s overlaps input %s in memory, expected separate buffers", fn,
                        out_name, in_name);
    return DSK_OK;
}

int dsk_op_host_readable(const dsk_tensor *t)
{
    return t->device == NULL || t->device->props.host_memory;
}

dsk_status dsk_op_host(const char *fn, const char *name, const dsk_tensor *t)
{
    if (t && !dsk_op_host_readable(t))
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: %s lives on device '%s', expected host memory (the reference runs on "
                        "the host)",
                        fn, name, t->device->props.name);
    return DSK_OK;
}

dsk_status dsk_op_device_arg(const char *fn, const dsk_device *dev)
{
    if (!dev)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dev is NULL, expected an open device", fn);
    return DSK_OK;
}

dsk_status dsk_op_on_device(const char *fn, const char *name, const dsk_tensor *t,
                            const dsk_device *dev)
{
    if (!t || t->device == dev)
        return DSK_OK;
    if (dev->props.host_memory && dsk_op_host_readable(t))
        return DSK_OK;
    return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s lives on %s%s%s, expected device '%s'%s", fn, name,
                    t->device ? "device '" : "the host", t->device ? t->device->props.name : "",
                    t->device ? "'" : "", dev->props.name,
                    dev->props.host_memory ? " or host memory" : "");
}
