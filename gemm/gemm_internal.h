/* gemm/gemm_internal.h: host-side helpers of the GEMM contract shared with backends. */
#ifndef DSK_GEMM_INTERNAL_H
#define DSK_GEMM_INTERNAL_H
#include "dsk/gemm.h"

/* Checks the values a host-memory kernel will index with: m_indices in [-1, G),
 * masked_m in [0, max_m]. Call only with host-readable tensors, after dsk_gemm_fp8_check. */
dsk_status dsk_gemm_fp8_check_values(const char *fn, const dsk_gemm_fp8_args *g);
#endif
