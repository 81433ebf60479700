/* tests/harness/harness.h: what every dsk test uses.
 *
 * - Seeded random inputs: the seed is DSK_TEST_SEED if set, else fresh (time-based);
 *   it is printed with every failure so a run can be reproduced.
 * - Poisoning: outputs are filled with NaN-pattern bytes (0xFF) before each run, so an
 *   element a kernel forgot to write fails the comparison.
 * - The error metric of DESIGN.md (DeepGEMM/FlashMLA's):
 *     diff = 1 - 2*sum(x*y) / sum(x*x + y*y)
 *   plus max relative error; the tolerance is stated at each call.
 * - Results: DSK_T_CHECK records a failure with one reproducing line; dsk_t_finish()
 *   prints "N passed, N failed" and returns the exit code. dsk_t_skip() exits 77, which
 *   ctest shows as Skipped (never as passed). */
#ifndef DSK_TEST_HARNESS_H
#define DSK_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include "dsk/dsk.h"

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ---- */
typedef struct dsk_rng { uint64_t s[4]; } dsk_rng;
void dsk_rng_seed(dsk_rng *r, uint64_t seed);
uint64_t dsk_rng_u64(dsk_rng *r);
double dsk_rng_uniform(dsk_rng *r);                 /* [0, 1) */
double dsk_rng_normal(dsk_rng *r);                  /* N(0, 1) */
int64_t dsk_rng_int(dsk_rng *r, int64_t lo, int64_t hi); /* [lo, hi] inclusive */

/* The suite seed (DSK_TEST_SEED or fresh), fixed for the process. */
uint64_t dsk_t_seed(void);
/* A generator for one case: seeded from the suite seed and a case number. */
dsk_rng dsk_t_rng(uint64_t case_id);

/* ---- filling tensors (host, any strides) ---- */
/* Normal(0, stddev) values stored in t's dtype (f32, bf16, f16; FP8 dtypes get the
 * value encoded with saturation). */
void dsk_t_fill_normal(dsk_tensor *t, dsk_rng *r, double stddev);
void dsk_t_fill_uniform(dsk_tensor *t, dsk_rng *r, double lo, double hi);
/* A paged-cache block table (i32, any shape) filled with the first numel entries of a
 * random permutation of 0..pages-1, so sequences read scattered, distinct pages.
 * Returns 0 when the table has more entries than pages. */
int dsk_t_fill_scattered_pages(dsk_tensor *block_table, dsk_rng *r, int pages);
/* Uniform integers in [lo, hi] for i32 tensors. */
void dsk_t_fill_int(dsk_tensor *t, dsk_rng *r, int64_t lo, int64_t hi);
/* Bytes 0xFF over the tensor's elements (NaN for f32/bf16/f16 and e4m3). */
void dsk_t_poison(dsk_tensor *t);
/* Element i (row-major logical index) as double, whatever the dtype. */
double dsk_t_get(const dsk_tensor *t, int64_t i);
void dsk_t_set(dsk_tensor *t, int64_t i, double v);

/* Allocates a host tensor (64-byte aligned, contiguous); freed by dsk_t_free_all(). */
dsk_tensor *dsk_t_new(dsk_dtype dtype, int rank, const int64_t *shape);
dsk_tensor *dsk_t_new2(dsk_dtype dtype, int64_t d0, int64_t d1);
dsk_tensor *dsk_t_new3(dsk_dtype dtype, int64_t d0, int64_t d1, int64_t d2);
void dsk_t_free_all(void);

/* ---- comparing ---- */
typedef struct dsk_t_cmp {
    double diff;         /* 1 - 2 sum(xy)/sum(x^2+y^2) */
    double max_rel_err;  /* max |x-y| / max(|y|, floor) */
    double max_abs_err;
    int64_t nonfinite;   /* elements of x that are NaN/inf where y is finite */
    int64_t n;
} dsk_t_cmp;
/* Compares got x with expected y element-wise; rel_floor guards tiny denominators. */
dsk_t_cmp dsk_t_compare(const dsk_tensor *x, const dsk_tensor *y, double rel_floor);
dsk_t_cmp dsk_t_compare_f64(const double *x, const double *y, int64_t n, double rel_floor);

/* ---- results ---- */
/* Records one check. On failure prints "FAIL <file>:<line> <message> (seed=S)". */
int dsk_t_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define DSK_T_CHECK(cond, ...) dsk_t_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* A call that must succeed; prints dsk_last_error() on failure. */
#define DSK_T_OK(expr) \
    dsk_t_check((expr) == DSK_OK, __FILE__, __LINE__, "%s failed: %s", #expr, dsk_last_error())
/* A call that must fail with status st and a message containing substr. */
int dsk_t_expect_error(dsk_status got, dsk_status st, const char *substr, const char *file,
                       int line, const char *what);
#define DSK_T_ERR(expr, st, substr) dsk_t_expect_error((expr), (st), (substr), __FILE__, __LINE__, #expr)

/* Prints "N passed, N failed" and returns 0 if none failed, 1 otherwise. */
int dsk_t_finish(void);
/* Prints "SKIPPED: reason" and exits 77 (ctest: Skipped). */
void dsk_t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Finds a tool (ptxas, nvcc, clang-19) on PATH or in the CUDA toolkit; NULL if absent. */
const char *dsk_t_find_tool(const char *name);

#endif
