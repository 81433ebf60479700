/* bench/bench.h: the C face of dsk_bench. Benchmarks are written in C against this
 * header; bench/shim.cc turns them into Google Benchmark registrations.
 *
 * A benchmark has a setup (builds its inputs once; kept while its runs repeat and freed
 * before the next benchmark's setup), a run (times `while (dsk_bench_next(st)) {...}`)
 * and per-iteration work sizes from which the shim reports the user counters:
 *   GB         bytes / time (GB/s)   GFLOP     flops / time (GFLOP/s)
 *   roofline   max(bytes / BW, flops / PEAK) / time: the fraction of this machine's
 *              roofline (BW: streaming read measured at start; PEAK: from the ISA, cores
 *              and the measured clock; both printed in the run's context). */
#ifndef DSK_BENCH_H
#define DSK_BENCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsk_bench_state dsk_bench_state;

typedef enum dsk_bench_peak { DSK_PEAK_BF16 = 0, DSK_PEAK_F32 = 1 } dsk_bench_peak;

typedef struct dsk_bench {
    char name[160];
    const void *params;   /* the benchmark's parameters (must outlive the run) */
    /* Builds the fixture; NULL with a message in err skips the benchmark with an error. */
    void *(*setup)(const void *params, char *err, size_t err_len);
    void (*teardown)(void *fixture);
    /* Times the work: while (dsk_bench_next(st)) { ... }. */
    void (*run)(dsk_bench_state *st, void *fixture);
    double bytes, flops;  /* per iteration, for the counters */
    dsk_bench_peak peak;  /* which compute peak the roofline uses */
} dsk_bench;

void dsk_bench_register(const dsk_bench *b);
int dsk_bench_next(dsk_bench_state *st);
void dsk_bench_label(dsk_bench_state *st, const char *label);
void dsk_bench_fail(dsk_bench_state *st, const char *msg);
void dsk_bench_context(const char *key, const char *value);

/* The machine's roofline inputs (set once by bench_main.c before running). */
void dsk_bench_set_roof(double bw_bytes_per_s, double peak_bf16_flops, double peak_f32_flops);

/* Runs Google Benchmark over argv; default_filter applies when argv sets none.
 * Repetitions (DSK_BENCH_REPS, default 3) report median, mean, stddev. */
int dsk_bench_main(int argc, char **argv, const char *default_filter);

/* Registration of each family (bench_gemm.c, bench_mla.c, bench_moe.c, bench_small.c). */
void dsk_bench_register_gemm(void);
void dsk_bench_register_mla(void);
void dsk_bench_register_moe(void);
void dsk_bench_register_small(void);

/* Helpers: 64-byte aligned buffer first-touched by the thread pool (NUMA placement). */
void *dsk_bench_alloc(size_t bytes);
void dsk_bench_free(void *p);
/* Fills with pseudo-random bytes / e4m3 codes (no NaN) / bf16 or f32 values in [-1, 1). */
void dsk_bench_fill_e4m3(void *p, size_t n, unsigned seed);
void dsk_bench_fill_bf16(void *p, size_t n, unsigned seed);
void dsk_bench_fill_f32(void *p, size_t n, unsigned seed, float lo, float hi);

#ifdef __cplusplus
}
#endif
#endif
