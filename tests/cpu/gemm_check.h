/* tests/cpu/gemm_check.h: the CPU GEMM tests' output check (test_cpu_gemm and the SIMDe
 * test of the avx512bf16 level share it). Include after tests/harness/harness.h. */
#ifndef DSK_TESTS_CPU_GEMM_CHECK_H
#define DSK_TESTS_CPU_GEMM_CHECK_H
#include <math.h>
#include <stdlib.h>

/* Rows of d the layout writes (want_row[r] != 0; NULL: all) against ref; the others must
 * still hold the poison, and at least one element must be compared.
 * Tolerance: the kernels sum each 128-wide K block in f32 and the reference in f64, so the
 * difference is f32 summation error, 2e-5 of max|D| for K <= 2000; bf16 output adds one
 * rounding, and kernel and reference may land one bf16 ulp apart (2^-7 of |value|). */
static void dsk_t_gemm_compare_rows(const char *what, const char *kernel, const dsk_tensor *d, const dsk_tensor *ref,
                                    int64_t rows, int64_t N, const int *want_row)
{
    int64_t n = rows * N, cnt = 0, untouched = 0, skipped = 0;
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double ymax = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < N; j++) {
            if (want_row && !want_row[r]) {
                skipped++;
                untouched += isnan(dsk_t_get(d, r * N + j));
                continue;
            }
            x[cnt] = dsk_t_get(d, r * N + j);
            y[cnt] = dsk_t_get(ref, r * N + j);
            ymax = fmax(ymax, fabs(y[cnt]));
            cnt++;
        }
    const int bf16 = d->dtype == DSK_BF16;
    int64_t bad = 0, nonfinite = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (!isfinite(x[i])) {
            nonfinite++;
            if (first < 0) first = i;
            continue;
        }
        const double tol = 2e-5 * ymax + (bf16 ? 0x1p-7 * fabs(y[i]) : 0);
        const double e = fabs(x[i] - y[i]);
        if (e > tol) {
            bad++;
            if (first < 0) first = i;
        }
        if (e / (tol > 0 ? tol : 1) > worst) worst = e / (tol > 0 ? tol : 1);
    }
    const dsk_t_cmp c = dsk_t_compare_f64(x, y, cnt, ymax * 1e-3 + 1e-30);
    const double dtol = bf16 ? 2e-6 : 1e-9;
    DSK_T_CHECK(bad == 0 && nonfinite == 0 && cnt > 0 && c.diff < dtol,
                "%s [%s, kernel %s]: %lld of %lld beyond tolerance (worst %.2fx tol; first: written element %lld, "
                "got %g, want %g), %lld nonfinite, diff %.3e (tol %.0e)",
                what, dsk_dtype_name(d->dtype), kernel, (long long)bad, (long long)cnt, worst,
                (long long)first, first >= 0 ? x[first] : 0.0, first >= 0 ? y[first] : 0.0, (long long)nonfinite,
                c.diff, dtol);
    DSK_T_CHECK(untouched == skipped, "%s [kernel %s]: %lld of %lld elements of rows the layout skips were written",
                what, kernel, (long long)(skipped - untouched), (long long)skipped);
    free(x);
    free(y);
}

#endif
