/* dsk/tensor.h: a strided view of up to 4 dimensions on one device.
 *
 * shape[i] and stride[i] are in elements; stride of the last dimension is usually 1.
 * A tensor does not own its data unless it came from dsk_tensor_alloc (then free it
 * with dsk_tensor_free). device == NULL means host memory. For the cpu and emu
 * backends device memory is host memory; for cuda/hip it is device memory. */
#ifndef DSK_TENSOR_H
#define DSK_TENSOR_H

#include <stdint.h>
#include "dtype.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSK_MAX_RANK 4

struct dsk_device;

typedef struct dsk_tensor {
    dsk_dtype dtype;
    int rank;                      /* 0..DSK_MAX_RANK */
    int64_t shape[DSK_MAX_RANK];   /* elements per dimension; unused dims are 1 */
    int64_t stride[DSK_MAX_RANK];  /* elements between neighbours along each dimension */
    void *data;
    struct dsk_device *device;     /* NULL: host memory */
} dsk_tensor;

/* A contiguous row-major view of existing memory (not owned). */
dsk_tensor dsk_tensor_view(void *data, dsk_dtype dtype, int rank, const int64_t *shape);
/* Shorthands for contiguous 1-, 2- and 3-D views. */
dsk_tensor dsk_tensor_1d(void *data, dsk_dtype dtype, int64_t d0);
dsk_tensor dsk_tensor_2d(void *data, dsk_dtype dtype, int64_t d0, int64_t d1);
dsk_tensor dsk_tensor_3d(void *data, dsk_dtype dtype, int64_t d0, int64_t d1, int64_t d2);

/* Allocates a contiguous tensor on dev (NULL: host, 64-byte aligned). */
dsk_status dsk_tensor_alloc(struct dsk_device *dev, dsk_dtype dtype, int rank,
                            const int64_t *shape, dsk_tensor *out);
void dsk_tensor_free(dsk_tensor *t);

/* Number of elements; bytes spanned by a contiguous tensor. */
int64_t dsk_tensor_numel(const dsk_tensor *t);
size_t dsk_tensor_nbytes(const dsk_tensor *t);
/* 1 when the tensor is row-major contiguous. */
int dsk_tensor_is_contiguous(const dsk_tensor *t);
/* Writes "[4, 16]" into buf (for messages). Returns buf. */
char *dsk_tensor_shape_str(const dsk_tensor *t, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
