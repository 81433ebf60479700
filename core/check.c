/* core/check.c: shared argument checks with messages that name argument, expectation
 * and what was given. */
#include <stdio.h>
#include "core/check.h"
#include "core/error.h"

const char *dsk_dtype_mask_str(unsigned mask, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < DSK_DTYPE_COUNT; t++)
        if (mask & DSK_DT(t))
            n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "|" : "",
                                  dsk_dtype_name((dsk_dtype)t));
    return buf;
}

dsk_status dsk_check_tensor(const char *fn, const char *arg, const dsk_tensor *t,
                            unsigned dtype_mask, int rank, const int64_t *expect,
                            const char *shape_desc)
{
    char got[96], want[96], dt[96];
    if (!t) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s is NULL", fn, arg);
    if ((unsigned)t->dtype >= DSK_DTYPE_COUNT || !(dtype_mask & DSK_DT(t->dtype)))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has dtype %s, expected %s", fn, arg,
                        dsk_dtype_name(t->dtype), dsk_dtype_mask_str(dtype_mask, dt, sizeof dt));
    if (t->rank != rank)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has rank %d (shape %s), expected rank %d %s",
                        fn, arg, t->rank, dsk_tensor_shape_str(t, got, sizeof got), rank,
                        shape_desc ? shape_desc : "");
    for (int i = 0; i < rank; i++)
        if (t->shape[i] < 0)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has negative shape %s", fn, arg,
                            dsk_tensor_shape_str(t, got, sizeof got));
    if (expect) {
        for (int i = 0; i < rank; i++) {
            if (expect[i] >= 0 && expect[i] != t->shape[i]) {
                dsk_tensor e = *t;  /* expected shape; unconstrained dims print as given */
                for (int j = 0; j < rank; j++)
                    if (expect[j] >= 0) e.shape[j] = expect[j];
                const char *w = dsk_tensor_shape_str(&e, want, sizeof want);
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has shape %s, expected %s%s%s", fn, arg,
                                dsk_tensor_shape_str(t, got, sizeof got), shape_desc ? shape_desc : "",
                                shape_desc ? " = " : "", w);
            }
        }
    }
    if (!t->data && dsk_tensor_numel(t) > 0)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has a NULL data pointer", fn, arg);
    return dsk_check_strides(fn, arg, t);
}

dsk_status dsk_check_strides(const char *fn, const char *arg, const dsk_tensor *t)
{
    for (int i = 0; i < t->rank; i++)
        if (t->stride[i] < 0)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has stride[%d] = %lld, expected >= 0", fn, arg,
                            i, (long long)t->stride[i]);
    return DSK_OK;
}

dsk_status dsk_check_inner_contig(const char *fn, const char *arg, const dsk_tensor *t)
{
    if (t->rank > 0 && t->shape[t->rank - 1] > 1 && t->stride[t->rank - 1] != 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: %s has last-dimension stride %lld, expected 1", fn,
                        arg, (long long)t->stride[t->rank - 1]);
    return dsk_check_strides(fn, arg, t);
}
