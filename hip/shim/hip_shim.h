/* hip/shim/hip_shim.h: the CPU SIMT shim's side of hip/hip_prelude.h. A kernel source
 * compiled by the host C compiler with -DDSK_HIP_SHIM runs here: every GPU thread of a
 * block is a fiber on one host thread, switched at the points where GPU threads
 * synchronize (workgroup barriers, and MFMA, where the 64 lanes of a wave exchange
 * operands). Blocks run one after another; each gets a fresh LDS poisoned with 0xFF.
 *
 * MFMA is modelled from AMD's documented register layout (matrix instruction calculator,
 * CDNA3) with e4m3fnuz operands as gfx942 reads them. Products of two fp8 values are exact
 * in f32; the shim adds the 32 products and C in double and rounds once to f32. The
 * hardware's internal summation order and rounding are not published bit-exactly, so results
 * may differ from an MI300X in the last bits of the f32 partial sums; tests state their
 * tolerances with that in mind.
 *
 * Test-only: not part of libdsk (tests/hip links it). */
#ifndef DSK_HIP_SHIM_H
#define DSK_HIP_SHIM_H

#include <stddef.h>

typedef float dsk_f32x4 __attribute__((vector_size(16)));
typedef unsigned int dsk_u32x4 __attribute__((vector_size(16)));

#define DSK_KERNEL(threads)
#define DSK_DEVICE static inline
#define DSK_UNROLL
#define DSK_LDS(name, bytes) unsigned char *name = dsk_shim_lds(bytes)

#define dsk_tid() dsk_shim_tid()
#define dsk_bid_x() dsk_shim_bid(0)
#define dsk_bid_y() dsk_shim_bid(1)
#define dsk_bid_z() dsk_shim_bid(2)
#define dsk_syncthreads() dsk_shim_syncthreads()
#define dsk_mfma_f32_16x16x32_fp8(a, b, c) dsk_shim_mfma_f32_16x16x32_fp8((a), (b), (c))

int dsk_shim_tid(void);
int dsk_shim_bid(int dim);
unsigned char *dsk_shim_lds(size_t bytes);
void dsk_shim_syncthreads(void);
dsk_f32x4 dsk_shim_mfma_f32_16x16x32_fp8(long a, long b, dsk_f32x4 c);

/* Runs body(arg) as every thread of every block of the grid. threads must be a multiple of
 * 64 (whole waves). Returns 0, or -1 with a message in err: a barrier or MFMA that not all
 * threads (lanes) reached, LDS beyond 64 KiB, out of memory. */
int dsk_shim_launch(const unsigned grid[3], unsigned threads, void (*body)(void *arg), void *arg, char *err,
                    size_t err_len);

/* Counters of the last launch (for tests that check what ran). */
typedef struct dsk_shim_stats {
    long long blocks, barriers, mfma_waves;
} dsk_shim_stats;
dsk_shim_stats dsk_shim_last_stats(void);

/* The MFMA model on its own: D (16x16, row-major) = A (16x32, row-major, e4m3fnuz codes) *
 * B (32x16, row-major) + C; for tests of the lane layout. */
void dsk_shim_mfma_f32_16x16x32_fp8_ref(const unsigned char *A, const unsigned char *B, const float *C, float *D);

#endif
