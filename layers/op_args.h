/* layers/op_args.h (internal): argument-check helpers shared by the
 * op folders attention/, moe/ and layers/ (on top of core/check.h).
 *
 * Every check helper takes the public function's name (fn) and the argument's name, and
 * on failure sets a message of the form
 *   "<fn>: <arg> has <what>, expected <what>"
 * through dsk_fail, returning DSK_ERR_INVALID_ARG.
 *
 * Tensor rules common to these ops (written in each op header):
 *   - data may be NULL only when the tensor has no elements;
 *   - extents >= 0, strides >= 0, the innermost stride is 1 (rows are contiguous);
 *   - an output never overlaps itself (no two elements share memory) nor any input,
 *     unless the op documents an exact alias (same data, dtype and strides). */
#ifndef DSK_LAYERS_OP_ARGS_H
#define DSK_LAYERS_OP_ARGS_H

#include <stdint.h>
#include <string.h>
#include "dsk/dsk.h"
#include "core/check.h"

/* Dtype masks of these ops (core/check.h's DSK_DT_FLOAT also admits f16; these ops
 * take f32 or bf16 only). */
#define DSK_OP_FLOAT (DSK_DT(DSK_F32) | DSK_DT(DSK_BF16))
#define DSK_OP_ANY ((1u << DSK_DTYPE_COUNT) - 1u)

/* t is non-NULL, of rank `rank`, dtype in mask, extents >= 0, strides >= 0, innermost
 * stride 1, data non-NULL unless empty. `layout` describes the expected shape for the
 * message, e.g. "[B, H, D]". */
dsk_status dsk_op_tensor(const char *fn, const char *name, const dsk_tensor *t, int rank,
                         unsigned dtype_mask, const char *layout);

/* t->shape[0..rank) equals want[]; the message shows `layout` and its values. */
dsk_status dsk_op_shape(const char *fn, const char *name, const dsk_tensor *t,
                        const int64_t *want, const char *layout);

/* dsk_op_shape for an output, then: no two of its elements share memory. */
dsk_status dsk_op_out_shape(const char *fn, const char *name, const dsk_tensor *t,
                            const int64_t *want, const char *layout);

/* The memory of out does not overlap the memory of in (NULL tensors are skipped). */
dsk_status dsk_op_no_overlap(const char *fn, const char *out_name, const dsk_tensor *out,
                             const char *in_name, const dsk_tensor *in);

/* 1 when t's data can be read from the host (host tensor or host-memory device). */
int dsk_op_host_readable(const dsk_tensor *t);

/* The reference needs host-readable tensors. */
dsk_status dsk_op_host(const char *fn, const char *name, const dsk_tensor *t);

/* The dispatcher: dev is non-NULL and t (may be NULL) lives on dev, or in host memory
 * when dev's memory is host memory. */
dsk_status dsk_op_device_arg(const char *fn, const dsk_device *dev);
dsk_status dsk_op_on_device(const char *fn, const char *name, const dsk_tensor *t,
                            const dsk_device *dev);

/* Element access: core/check.h's dsk_off2/dsk_off3, dsk_load/dsk_store, dsk_load_i32. */
static inline void dsk_op_st_i32(dsk_tensor *t, int64_t off, int32_t v)
{
    ((int32_t *)t->data)[off] = v;
}

#endif
