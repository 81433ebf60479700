/* hip/hip_prelude.h: the few definitions dsk's C-style HIP kernels use, for the two ways a
 * kernel source is compiled:
 *   - by clang for gfx942 (`-x hip --cuda-device-only -nogpulib -nogpuinc`: no ROCm headers
 *     are needed, only clang's attributes and AMDGPU builtins);
 *   - by the host C compiler with DSK_HIP_SHIM defined, against the CPU SIMT shim
 *     (hip/shim/hip_shim.h), which runs every thread of a block and models MFMA exactly.
 * Kernels use only what is defined here (no threadIdx/__syncthreads from hip_runtime.h). */
#ifndef DSK_HIP_PRELUDE_H
#define DSK_HIP_PRELUDE_H

#if defined(__HIP__) && defined(DSK_HIP_SHIM)
#error "DSK_HIP_SHIM is for host compilers; clang -x hip compiles the real kernel"
#endif

#if defined(__HIP__)

typedef float dsk_f32x4 __attribute__((ext_vector_type(4)));
typedef unsigned int dsk_u32x4 __attribute__((ext_vector_type(4)));

#define DSK_KERNEL(threads) \
    extern "C" __attribute__((global)) __attribute__((amdgpu_flat_work_group_size(threads, threads)))
#define DSK_DEVICE static __attribute__((device)) inline __attribute__((always_inline))
/* Loops over tiles have compile-time trip counts: unrolled, their arrays stay in registers. */
#define DSK_UNROLL _Pragma("unroll")
/* Static LDS of `bytes`, 16-byte aligned, named `name` (an unsigned char pointer). */
#define DSK_LDS(name, bytes)                                                    \
    __attribute__((shared)) __attribute__((aligned(16))) unsigned char name##_lds_[bytes]; \
    unsigned char *name = name##_lds_

#define dsk_tid() ((int)__builtin_amdgcn_workitem_id_x())
#define dsk_bid_x() ((int)__builtin_amdgcn_workgroup_id_x())
#define dsk_bid_y() ((int)__builtin_amdgcn_workgroup_id_y())
#define dsk_bid_z() ((int)__builtin_amdgcn_workgroup_id_z())
/* A workgroup barrier with the LDS ordering __syncthreads gives in HIP. */
#define dsk_syncthreads()                                       \
    do {                                                        \
        __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");  \
        __builtin_amdgcn_s_barrier();                           \
        __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");  \
    } while (0)
/* v_mfma_f32_16x16x32_fp8_fp8 (CDNA3): D = A(16x32) * B(32x16) + C, fp8 = e4m3fnuz on gfx942. */
#define dsk_mfma_f32_16x16x32_fp8(a, b, c) __builtin_amdgcn_mfma_f32_16x16x32_fp8_fp8((a), (b), (c), 0, 0, 0)

#elif defined(DSK_HIP_SHIM)
#include "hip/shim/hip_shim.h"
#else
#error "compile with clang -x hip (gfx942) or define DSK_HIP_SHIM for the CPU SIMT shim"
#endif

#endif
