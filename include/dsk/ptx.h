/* dsk/ptx.h: NVIDIA kernel emitters (ptx/): tile configurations, resource plans, PTX text.
 *
 * A tile configuration names one kernel; its canonical name is what tests, benchmarks,
 * the tuner and the verbose log print, e.g. "gemm_fp8_sm90a_128x112_s6_c2"
 * (+ "_contig" / "_masked" for grouped layouts, "_swapab" for the swapped-operand
 * small-M variant, "_tmastore" for the TMA-store epilogue, "_p" for persistent; sm90a
 * names always carry the cluster size "_c1" / "_c2"). */
#ifndef DSK_PTX_H
#define DSK_PTX_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsk_arch { DSK_ARCH_SM90A = 0, DSK_ARCH_SM89 = 1 } dsk_arch;

typedef struct dsk_gemm_tile {
    dsk_arch arch;
    int block_m;          /* 64, 128, 256 (sm90a, where legal); 16..128 on sm_89 */
    int block_n;          /* 16..256 on sm90a in steps of 8 (wgmma N), incl. non-powers of two */
    int block_k;          /* 128 */
    int stages;           /* shared-memory pipeline depth */
    int cluster;          /* 1 or 2 (sm90a TMA multicast) */
    int persistent;       /* 1: persistent tile scheduler (grid = min(tiles, SMs), sm90a) */
    int tma_store;        /* 1: bf16 D staged in shared memory and written by TMA (sm90a) */
    int swap_ab;          /* 1: compute D^T = B . A^T (small M) */
    dsk_gemm_layout layout;
} dsk_gemm_tile;

/* The emitter's own resource plan of a configuration. */
typedef struct dsk_gemm_plan {
    int legal;               /* 0: the configuration cannot be built; reason says why */
    char reason[160];
    int threads;             /* per CTA */
    size_t smem_bytes;       /* dynamic + static shared memory per CTA */
    int regs_per_thread;     /* the emitter's estimate (consumer threads for sm90a) */
    int max_regs;            /* the register cap the kernel declares (.maxnreg / setmaxnreg) */
    int consumer_warpgroups; /* sm90a */
    /* Added by the emitters (ptx/): the pieces of the plan the tests compare with ptxas. */
    size_t smem_static_bytes;  /* .shared declared in the module (what ptxas -v reports) */
    size_t smem_dynamic_bytes; /* the launch's dynamic shared memory */
    size_t stage_bytes;        /* shared memory of one pipeline stage */
    int warps_m, warps_n;      /* sm_89: warp grid of the CTA (sm90a: consumer WGs x 1) */
    int mma_m, mma_n;          /* the tile the MMA side sees: (block_m, block_n), or
                                * (block_n, block_m) for swap_ab */
    /* sm90a TMA-store epilogue: the bf16 D tile's staging buffer in shared memory, rows of
     * d_pitch bytes (block_n * 2 for the dense layout's one-box store; rounded up to 128 for
     * the grouped layouts' row stores), at d_offset bytes from the 1024-aligned ring base:
     * inside the ring (d_in_ring, the stages are free once the last k-block is consumed;
     * non-persistent only) or after it (dedicated, counted in smem_dynamic_bytes). */
    size_t smem_d_bytes, d_offset;
    int d_pitch, d_in_ring;
} dsk_gemm_plan;

/* Default shared-memory limit per block of an arch (227 KiB sm90a, 99 KiB sm_89). */
size_t dsk_ptx_smem_limit(dsk_arch arch);
/* "sm_90a" / "sm_89"; dsk_ptx_arch_parse accepts those (and "sm90a", "sm89"). */
const char *dsk_ptx_arch_name(dsk_arch arch);
dsk_status dsk_ptx_arch_parse(const char *s, dsk_arch *out);
/* A tile with the defaults filled in: block_k 128, stages 4 (sm90a) / 3 (sm_89),
 * cluster 1, dense, not persistent, not swapped. */
dsk_gemm_tile dsk_gemm_tile_default(dsk_arch arch, int block_m, int block_n);

/* Canonical kernel name of a configuration into buf. Returns buf. */
char *dsk_gemm_tile_name(const dsk_gemm_tile *t, char *buf, size_t len);
/* Parses "128x112" etc. into block_m/block_n (other fields untouched); also accepts a
 * whole canonical name ("gemm_fp8_sm90a_128x112_s6_c2_masked_p"), which sets every field. */
dsk_status dsk_gemm_tile_parse(const char *s, dsk_gemm_tile *t);

/* Fills plan for t (does not emit). Fails only for arguments out of any range. */
dsk_status dsk_ptx_gemm_plan(const dsk_gemm_tile *t, size_t smem_limit, dsk_gemm_plan *plan);

/* Emits the PTX module text of t (malloc'd, caller frees) and its entry name. */
dsk_status dsk_ptx_gemm_emit(const dsk_gemm_tile *t, char **ptx, char *entry, size_t entry_len);

/* The tile a backend runs when nobody chose one: DSK_GEMM_TILE (a canonical name) when set
 * and it matches arch and layout; else a DeepGEMM-like heuristic (fewest waves over num_sms,
 * then the larger BLOCK_N; swap_ab on sm90a for M <= 32 outside the contiguous layout;
 * contiguous layouts use BLOCK_M 128, so segments must be 128-aligned), deepest legal pipeline.
 * rows = M (max_m for masked), groups = G (1 for dense). */
dsk_status dsk_ptx_gemm_pick(dsk_arch arch, dsk_gemm_layout layout, int64_t rows, int64_t n, int64_t k,
                             int64_t groups, int num_sms, size_t smem_limit, dsk_gemm_tile *out);

/* Runs the FP8 GEMM with a given tile on an emu or cuda device (dev's backend decides the
 * driver table); the backends' gemm_fp8 entries call it with dsk_ptx_gemm_pick's tile. */
dsk_status dsk_ptx_gemm_fp8_run(dsk_device *dev, const dsk_gemm_tile *t, const dsk_gemm_fp8_args *args);

#ifdef __cplusplus
}
#endif
#endif
