/* dsk/tune.h: the autotuner (autotune/): the GPU table, candidate tile spaces, the
 * analytic performance model, the tuning cache, and the model-level GPU comparison.
 *
 * Every time this API returns for a GPU that is not being measured is a PREDICTION of
 * the analytic model (docs/MODEL.md), never a measurement; callers that print it label
 * it "predicted". Measured times only come from a real device or, for correctness, the
 * emulator (which verifies a configuration but does not time it).
 *
 * The GPU table is text (one [section] per GPU, `key = value [source]` lines); the
 * built-in table is compiled in, and dsk_gpu_load_file() adds or overrides entries from
 * a file in the same format (docs/MODEL.md, "GPU file format"). The table is global to
 * the process; loading a file is not thread-safe against concurrent lookups. */
#ifndef DSK_TUNE_H
#define DSK_TUNE_H

#include <stddef.h>
#include "status.h"
#include "ptx.h"
#include "emu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- GPU table ------------------------------------------------------------------- */

/* One number of the table with its provenance: a tag from /work/shared/gpu_specs.md's
 * source list ("S4", "D: 132x4", "R", "A: assumed ...") or "user: FILE:LINE". */
typedef struct dsk_gpu_num {
    double v;
    char src[96];
} dsk_gpu_num;

typedef struct dsk_gpu {
    char name[32];          /* table key, lower case: "h800", "h20", "4090", "mi300x" */
    char aliases[64];       /* space-separated other names accepted by dsk_gpu_find */
    char description[96];   /* "NVIDIA H800 SXM5" */
    char vendor[16];        /* "nvidia" or "amd" */
    char arch[16];          /* "sm_90a", "sm_89", "sm_80", "sm_100a", "gfx942" */
    /* Hardware (dense peaks; GeForce at their FP32-accumulate rate). */
    dsk_gpu_num sms;            /* SMs (NVIDIA) or CUs (AMD) */
    dsk_gpu_num clock_mhz;      /* the clock the tensor peak reproduces at */
    dsk_gpu_num fp8_tflops;     /* 0 when the GPU has no FP8 tensor cores */
    dsk_gpu_num bf16_tflops;
    dsk_gpu_num fp32_tflops;    /* non-tensor FP32 (CUDA cores / vector ALUs) */
    dsk_gpu_num mem_gb;
    dsk_gpu_num mem_gbps;       /* peak DRAM bandwidth, GB/s (decimal) */
    dsk_gpu_num l2_mb;
    dsk_gpu_num smem_sm_kb;     /* shared memory (LDS) per SM (CU), KiB */
    dsk_gpu_num smem_block_kb;  /* most one block may use, KiB */
    dsk_gpu_num regs_sm;        /* 32-bit registers per SM */
    dsk_gpu_num threads_sm;     /* max resident threads per SM */
    dsk_gpu_num threads_block;  /* max threads per block */
    dsk_gpu_num blocks_sm;      /* max resident blocks per SM */
    dsk_gpu_num link_gbps;      /* scale-up link bandwidth per direction, GB/s (0: none) */
    /* Model calibration (fractions of the dense peaks above; gpu_specs.md Table 5). */
    dsk_gpu_num cal_gemm_fp8;   /* achievable fraction of FP8 peak, large block-scaled GEMM */
    dsk_gpu_num cal_gemm_bf16;  /* achievable fraction of BF16 peak, large GEMM */
    dsk_gpu_num cal_attn;       /* achievable fraction of BF16 peak, prefill attention (FA3-class) */
    dsk_gpu_num cal_mla;        /* achievable fraction of BF16 peak, absorbed MLA decode (FlashMLA) */
    dsk_gpu_num cal_mem;        /* achievable fraction of peak DRAM bandwidth, streaming */
    dsk_gpu_num l2_usable;      /* fraction of L2 that holds reusable operand data */
    dsk_gpu_num mem_latency_ns; /* loaded DRAM latency (Little's law: bytes in flight) */
    dsk_gpu_num launch_us;      /* per-kernel launch + tail overhead */
    dsk_gpu_num band;           /* relative half-width of the prediction's uncertainty band */
} dsk_gpu;

/* Finds a GPU by name or alias, case-insensitively ("H800", "h20", "rtx4090").
 * Unknown names: DSK_ERR_NOT_FOUND, the message lists every known name. */
dsk_status dsk_gpu_find(const char *name, const dsk_gpu **out);
/* Number of GPUs in the table, and the i-th (table order; NULL when out of range). */
int dsk_gpu_count(void);
const dsk_gpu *dsk_gpu_at(int i);
/* Adds or overrides GPUs from a file in the table's format. A section naming a known
 * GPU overrides only the keys it gives; a new GPU must give every key or start from
 * `base = KNOWN_GPU`. Errors: DSK_ERR_IO (cannot read), DSK_ERR_FORMAT naming the file,
 * line and problem; on error the table is left unchanged. */
dsk_status dsk_gpu_load_file(const char *path);
/* Same, from text (source_name is used in messages). */
dsk_status dsk_gpu_load_text(const char *text, const char *source_name);
/* Restores the built-in table (drops loaded files). */
void dsk_gpu_reset(void);
/* The built-in table's text (the reference for the file format). */
const char *dsk_gpu_builtin_text(void);

/* Derived per-SM rates (dense peak / SMs / clock). */
double dsk_gpu_fp8_flop_per_clk_sm(const dsk_gpu *g);
double dsk_gpu_fp32_fma_per_clk_sm(const dsk_gpu *g);
/* The emitter arch of a GPU; DSK_ERR_UNSUPPORTED when dsk has no PTX GEMM emitter for
 * it (AMD, sm_80 without FP8, sm_100a), naming the GPU and its arch. */
dsk_status dsk_gpu_ptx_arch(const dsk_gpu *g, dsk_arch *out);
/* The emulator target for emu:GPU (SMs, shared memory, arch). DSK_ERR_UNSUPPORTED for
 * GPUs the PTX emulator cannot take on (non-NVIDIA or without an emitter arch). */
dsk_status dsk_gpu_emu_target(const dsk_gpu *g, dsk_emu_target *out);

/* ---- GEMM performance model ------------------------------------------------------ */

typedef struct dsk_tune_gemm_shape {
    long long m, n, k;      /* D[M, N] = A[M, K] . B[N, K]^T (gemm.h) */
    int groups;             /* grouped layouts: number of groups (1 for dense) */
    dsk_gemm_layout layout;
} dsk_tune_gemm_shape;

/* What bounds a prediction (string form by dsk_tune_bound_name). */
typedef enum dsk_tune_bound {
    DSK_BOUND_COMPUTE = 0,  /* tensor cores (incl. wave quantization) */
    DSK_BOUND_MEMORY,       /* DRAM bandwidth */
    DSK_BOUND_LATENCY,      /* too few bytes in flight per SM to reach the bandwidth */
    DSK_BOUND_OVERHEAD,     /* pipeline fill/drain, promotion and launch dominate */
    DSK_BOUND_L2            /* operand bytes from L2 into the SMs (assumed per-SM rate); the last */
} dsk_tune_bound;
const char *dsk_tune_bound_name(dsk_tune_bound b);  /* "compute", "memory", ... */

/* A predicted time with its breakdown. All times in microseconds. */
typedef struct dsk_gemm_prediction {
    double us, us_lo, us_hi;  /* predicted time and its uncertainty band */
    double t_tensor;          /* tensor-core time on the busiest SM (with wave quantization) */
    double t_memory;          /* DRAM bytes / achievable bandwidth */
    double t_latency;         /* per-SM operand loads at the Little's-law rate */
    double t_promote;         /* exposed CUDA-core FP32 promotion every 128 of K */
    double t_fill;            /* exposed pipeline fill + epilogue drain */
    double t_launch;
    double t_l2;              /* operand bytes from L2 into the busiest SM (TMA multicast of A
                               * in a cluster of 2 fetches half of A per CTA) */
    long long tiles;          /* output tiles (all groups) */
    int ctas_per_sm;          /* resident CTAs per SM the plan allows */
    double waves;             /* tiles / (SMs x CTAs per SM), unrounded */
    double wave_eff;          /* useful fraction of the busiest SM's tile slots */
    double pad_eff;           /* useful MACs / MACs computed (tile padding) */
    double dram_bytes;        /* A/B reads after L2 reuse + scales + output */
    double flops;             /* useful FLOPs: 2 M N K (x groups) */
    double tflops, gbps;      /* flops / us, dram_bytes / us */
    dsk_tune_bound bound;
} dsk_gemm_prediction;

/* Predicts the time of one configuration with its plan (from dsk_ptx_gemm_plan). */
dsk_status dsk_tune_gemm_predict(const dsk_gpu *g, const dsk_tune_gemm_shape *s,
                                 const dsk_gemm_tile *t, const dsk_gemm_plan *plan,
                                 dsk_gemm_prediction *out);

typedef struct dsk_tune_candidate {
    dsk_gemm_tile tile;
    dsk_gemm_plan plan;
    char kernel[96];          /* canonical kernel name */
    dsk_gemm_prediction pred;
    int measured;             /* 1: measured_us holds a device measurement */
    double measured_us;
    int verified;             /* 1: ran in the emulator and matched the reference */
} dsk_tune_candidate;

typedef struct dsk_tune_result {
    char gpu[32];
    dsk_tune_gemm_shape shape;
    int n;                    /* legal candidates, best (lowest predicted time) first */
    dsk_tune_candidate *cand;
    int enumerated;           /* configurations tried; enumerated - n were illegal */
    int runner_up;            /* index of the best candidate with another tile shape, -1 none */
    double margin;            /* runner-up's predicted time / best's - 1 */
    char explain[512];        /* what bounds the best and why it beats the runner-up */
} dsk_tune_result;

/* Enumerates every configuration of the GPU's emitter arch, keeps those the emitter's
 * plan calls legal, predicts each and sorts best first (ties: the smaller resource
 * footprint first, deterministic). Shapes a kernel cannot take fail with
 * DSK_ERR_UNSUPPORTED saying why (e.g. K not a multiple of 128). */
dsk_status dsk_tune_gemm(const dsk_gpu *g, const dsk_tune_gemm_shape *s, dsk_tune_result *out);
void dsk_tune_result_free(dsk_tune_result *r);

/* Measures `count` candidates of r (which: their indices, in the model's order; NULL:
 * the first count), on device (a
 * device name): "cuda:N" times each with device events (median of repeats after
 * warm-up, inputs rotated through buffers larger than L2); "emu:GPU" runs each in the
 * PTX emulator and checks it against the reference (sets verified; the emulator does
 * not time). The winner goes into the tuning cache. progress: a FILE* for a progress
 * bar, or NULL. DSK_ERR_UNSUPPORTED, saying what is missing, where this build cannot. */
dsk_status dsk_tune_measure(const dsk_gpu *g, const char *device, dsk_tune_result *r,
                            const int *which, int count, void *progress);

/* ---- tuning cache ------------------------------------------------------------------ */

/* One cache entry: the winner for (gpu, driver, op, shape class). */
typedef struct dsk_tune_cache_entry {
    char gpu[32];
    char driver[32];        /* driver version ("emu" for the emulator) */
    char op[32];            /* "gemm_fp8" */
    char shape_class[64];   /* dsk_tune_shape_class() */
    char kernel[96];        /* canonical kernel name (dsk_gemm_tile_parse reads it back) */
    double measured_us;     /* <= 0: verified in the emulator, not timed */
    char source[16];        /* "measured" or "emulator" */
} dsk_tune_cache_entry;

/* The cache file: $DSK_CACHE_DIR/tune.json, else $XDG_CACHE_HOME/dsk/tune.json, else
 * $HOME/.cache/dsk/tune.json. */
dsk_status dsk_tune_cache_path(char *buf, size_t len);
/* "dense:m<=64:n=7168:k=2048": M rounded up to a power of two (a class of M), N, K exact,
 * groups for grouped layouts. */
void dsk_tune_shape_class(const dsk_tune_gemm_shape *s, char *buf, size_t len);
/* Looks the entry for (gpu, driver, op, shape class) up. *found = 0 when absent. A
 * corrupt file fails with DSK_ERR_FORMAT naming file, line and problem (callers report
 * it and go on without the cache). */
dsk_status dsk_tune_cache_lookup(const char *gpu, const char *driver, const char *op,
                                 const char *shape_class, dsk_tune_cache_entry *out, int *found);
/* Inserts or replaces an entry: under an exclusive lock, reads the file, writes a
 * temporary file beside it and renames it over (atomic). A corrupt existing file is
 * moved aside to tune.json.corrupt and *recovered set to 1 (may be NULL). */
dsk_status dsk_tune_cache_store(const dsk_tune_cache_entry *e, int *recovered);

/* The configuration ops should run: the cache's entry when there is one, else the
 * model's best. *from_cache tells which. Deterministic for the same inputs. A corrupt
 * cache is ignored (the model answers) and *cache_warning gets the reason (may be NULL). */
dsk_status dsk_tune_choose(const dsk_gpu *g, const char *driver, const dsk_tune_gemm_shape *s,
                           dsk_gemm_tile *out, int *from_cache, char *cache_warning,
                           size_t warning_len);

/* ---- model-level comparison (dsk compare) ----------------------------------------- */

typedef enum dsk_step_phase { DSK_PHASE_DECODE = 0, DSK_PHASE_PREFILL = 1 } dsk_step_phase;

/* One op of a forward step, summed over the layers it occurs in. */
typedef struct dsk_step_op {
    char op[48];            /* "q_a_proj", "mla_attn", "moe_experts", ... */
    long long shape[4];     /* GEMM: M, N, K (0); attention: batch, ctx, heads, dim */
    int shape_rank;
    int layers;             /* how many times per step */
    int roofline;           /* 1: no tuned dsk kernel; estimated by roofline */
    double us;              /* predicted, all layers */
    double flops, bytes;    /* all layers */
    dsk_tune_bound bound;
    char kernel[96];        /* the tuner's choice for tuned GEMMs, else "" */
} dsk_step_op;

typedef struct dsk_step_point {
    int batch;              /* decode: sequences (one token each); prefill: prompts of ctx tokens */
    double step_us;         /* predicted */
    double tokens_per_s;    /* predicted */
    dsk_tune_bound bound;   /* the resource bounding most of the step's time */
    double compute_share;   /* fraction of the step's time in compute-bound ops */
    int n_ops;
    dsk_step_op ops[32];
} dsk_step_point;

/* Predicts one forward step of DeepSeek-V3 (61 layers, 3 dense + 58 MoE, MLA, 256
 * experts top-8) on one GPU at the given batch and context. model must be
 * "deepseek-v3" (or "deepseek-r1", same architecture). */
dsk_status dsk_tune_step(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch,
                         int ctx, dsk_step_point *out);

/* The distinct FP8 GEMM shapes (N, K pairs with the M of a phase/batch) of a model's
 * step, for export: writes up to cap shapes and their op names, sets *n. */
dsk_status dsk_tune_model_gemms(const char *model, dsk_step_phase phase, int batch, int ctx,
                                dsk_tune_gemm_shape *shapes, char (*names)[48], int cap, int *n);

/* ---- export (dsk export) ------------------------------------------------------------ */

/* Writes, for every FP8 GEMM shape of the model's step (M from phase/batch/ctx), the tuned
 * kernel's PTX (<kernel>.ptx) and, when ptxas is present, its cubin, plus manifest.json
 * describing how to launch each without dsk (docs/EXPORT.md). out_dir is created if
 * needed. *n_kernels: manifest entries; *n_cubins: cubins assembled. */
dsk_status dsk_tune_export(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch, int ctx,
                           const char *out_dir, int *n_kernels, int *n_cubins);

/* Tile options an export may require (for an engine that wants, e.g., persistent kernels):
 * -1 = the tuner's choice, 0 or 1 = only candidates with that value (the best of them by
 * predicted time). cluster: -1, 1 or 2. */
typedef struct dsk_tune_export_opts {
    int persistent, tma_store, cluster;
} dsk_tune_export_opts;

/* dsk_tune_export with required tile options (opts NULL: none). A shape without a legal
 * candidate that has them fails with DSK_ERR_UNSUPPORTED naming the shape. */
dsk_status dsk_tune_export_opts_run(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch, int ctx,
                                    const char *out_dir, const dsk_tune_export_opts *opts, int *n_kernels,
                                    int *n_cubins);

#ifdef __cplusplus
}
#endif
#endif
