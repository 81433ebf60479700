/* tests/hip/shim_driver.h: the hip launch table (hip/hip_internal.h) over the CPU SIMT shim:
 * the gfx942 GEMM kernels compiled by the host compiler (one object per configuration,
 * tests/hip/CMakeLists.txt) run through hip/shim/. Tensors are host memory. */
#ifndef DSK_TESTS_HIP_SHIM_DRIVER_H
#define DSK_TESTS_HIP_SHIM_DRIVER_H

#include "hip/hip_internal.h"

/* The launch table; its launches counter counts kernels actually run. */
const dsk_hip_driver *dsk_test_hip_shim_driver(void);
long dsk_test_hip_shim_launches(void);

#endif
