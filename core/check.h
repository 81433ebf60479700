/* core/check.h: argument checks shared by every op's contract, and typed element access
 * for the references (internal). */
#ifndef DSK_CORE_CHECK_H
#define DSK_CORE_CHECK_H

#include <math.h>
#include <string.h>
#include "dsk/dsk.h"

#define DSK_DT(t) (1u << (t))
#define DSK_DT_FLOAT (DSK_DT(DSK_F32) | DSK_DT(DSK_BF16) | DSK_DT(DSK_F16))

/* Checks that t is non-NULL with non-NULL data, a dtype in dtype_mask, the given rank,
 * and (when expect is non-NULL) expect[i] == shape[i] for every i with expect[i] >= 0.
 * shape_desc describes the expected shape symbolically, e.g. "[ceil(N/128), ceil(K/128)]".
 * Messages: "<fn>: <arg> has shape [4, 8], expected [ceil(N/128), ceil(K/128)] = [4, 16]". */
dsk_status dsk_check_tensor(const char *fn, const char *arg, const dsk_tensor *t,
                            unsigned dtype_mask, int rank, const int64_t *expect,
                            const char *shape_desc);
/* The last dimension has stride 1 and the other strides are >= 0. */
dsk_status dsk_check_inner_contig(const char *fn, const char *arg, const dsk_tensor *t);
/* Strides are >= 0 (negative strides are refused everywhere). */
dsk_status dsk_check_strides(const char *fn, const char *arg, const dsk_tensor *t);
/* "f32|bf16" for a dtype mask, into buf. */
const char *dsk_dtype_mask_str(unsigned mask, char *buf, size_t len);

/* Element offset of a 1..4-D index. */
static inline int64_t dsk_off2(const dsk_tensor *t, int64_t i, int64_t j)
{
    return i * t->stride[0] + j * t->stride[1];
}
static inline int64_t dsk_off3(const dsk_tensor *t, int64_t i, int64_t j, int64_t k)
{
    return i * t->stride[0] + j * t->stride[1] + k * t->stride[2];
}

/* Reads the element at element offset off as double, whatever the dtype. */
static inline double dsk_load(const dsk_tensor *t, int64_t off)
{
    const char *p = (const char *)t->data;
    switch (t->dtype) {
    case DSK_F32: return ((const float *)p)[off];
    case DSK_BF16: return dsk_bf16_to_f32(((const uint16_t *)p)[off]);
    case DSK_F16: return dsk_f16_to_f32(((const uint16_t *)p)[off]);
    case DSK_I32: return ((const int32_t *)p)[off];
    case DSK_I64: return (double)((const int64_t *)p)[off];
    case DSK_U8: return ((const uint8_t *)p)[off];
    case DSK_E4M3: case DSK_E5M2: case DSK_E4M3FNUZ: case DSK_E5M2FNUZ:
        return dsk_fp8_to_f32(((const uint8_t *)p)[off], t->dtype);
    default: return NAN;
    }
}

/* Writes v (rounded once to the dtype) at element offset off. */
static inline void dsk_store(dsk_tensor *t, int64_t off, double v)
{
    char *p = (char *)t->data;
    switch (t->dtype) {
    case DSK_F32: ((float *)p)[off] = (float)v; break;
    case DSK_BF16: ((uint16_t *)p)[off] = dsk_f32_to_bf16((float)v); break;
    case DSK_F16: ((uint16_t *)p)[off] = dsk_f32_to_f16((float)v); break;
    case DSK_I32: ((int32_t *)p)[off] = (int32_t)v; break;
    case DSK_I64: ((int64_t *)p)[off] = (int64_t)v; break;
    case DSK_U8: ((uint8_t *)p)[off] = (uint8_t)v; break;
    case DSK_E4M3: case DSK_E5M2: case DSK_E4M3FNUZ: case DSK_E5M2FNUZ:
        ((uint8_t *)p)[off] = dsk_f32_to_fp8((float)v, t->dtype);
        break;
    default: break;
    }
}

static inline int32_t dsk_load_i32(const dsk_tensor *t, int64_t off)
{
    return ((const int32_t *)t->data)[off];
}

#endif
