/* core/tensor.c: strided tensor views and allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dsk/dsk.h"
#include "core/error.h"

dsk_tensor dsk_tensor_view(void *data, dsk_dtype dtype, int rank, const int64_t *shape)
{
    dsk_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.rank = rank < 0 ? 0 : rank > DSK_MAX_RANK ? DSK_MAX_RANK : rank;
    t.data = data;
    for (int i = 0; i < DSK_MAX_RANK; i++) {
        t.shape[i] = 1;
        t.stride[i] = 1;
    }
    int64_t s = 1;
    for (int i = t.rank - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

dsk_tensor dsk_tensor_1d(void *data, dsk_dtype dtype, int64_t d0)
{
    return dsk_tensor_view(data, dtype, 1, (int64_t[]){d0});
}

dsk_tensor dsk_tensor_2d(void *data, dsk_dtype dtype, int64_t d0, int64_t d1)
{
    return dsk_tensor_view(data, dtype, 2, (int64_t[]){d0, d1});
}

dsk_tensor dsk_tensor_3d(void *data, dsk_dtype dtype, int64_t d0, int64_t d1, int64_t d2)
{
    return dsk_tensor_view(data, dtype, 3, (int64_t[]){d0, d1, d2});
}

int64_t dsk_tensor_numel(const dsk_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

size_t dsk_tensor_nbytes(const dsk_tensor *t)
{
    return (size_t)dsk_tensor_numel(t) * dsk_dtype_size(t->dtype);
}

int dsk_tensor_is_contiguous(const dsk_tensor *t)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

char *dsk_tensor_shape_str(const dsk_tensor *t, char *buf, size_t len)
{
    size_t n = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "[");
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
    snprintf(buf + n, n < len ? len - n : 0, "]");
    return buf;
}

dsk_status dsk_tensor_alloc(dsk_device *dev, dsk_dtype dtype, int rank, const int64_t *shape,
                            dsk_tensor *out)
{
    if (!out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tensor_alloc: out is NULL");
    if (!shape && rank > 0) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tensor_alloc: shape is NULL");
    if (rank < 0 || rank > DSK_MAX_RANK)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tensor_alloc: rank is %d, expected 0..%d", rank,
                        DSK_MAX_RANK);
    if (dsk_dtype_size(dtype) == 0)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tensor_alloc: dtype %d is not a dsk_dtype", (int)dtype);
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0)
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tensor_alloc: shape[%d] is %lld, expected >= 0", i,
                            (long long)shape[i]);
    *out = dsk_tensor_view(NULL, dtype, rank, shape);
    size_t bytes = dsk_tensor_nbytes(out);
    size_t alloc = bytes ? bytes : 1;
    if (dev) {
        DSK_TRY(dsk_device_alloc(dev, alloc, &out->data));
    } else {
        alloc = (alloc + 63) & ~(size_t)63;
        out->data = aligned_alloc(64, alloc);
        if (!out->data)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_tensor_alloc: %zu bytes", bytes);
    }
    out->device = dev;
    return DSK_OK;
}

void dsk_tensor_free(dsk_tensor *t)
{
    if (!t || !t->data) return;
    if (t->device) dsk_device_free(t->device, t->data);
    else free(t->data);
    t->data = NULL;
}
