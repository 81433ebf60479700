/* gemm/gemm_ref.c: the reference FP8 block-scaled GEMM, and FP8 quantization.
 *
 * Written for clarity: every output element is
 *   sum over K blocks kb of (sum_{k in kb} a[m,k] * b[n,k]) * a_scale[m,kb] * b_scale[n/128,kb]
 * with the inner sums and the outer accumulation in float64, rounded once to d's dtype.
 * The inner sums are exact in float64 (FP8 products have at most 8 significant bits). */
#include <math.h>
#include <stdlib.h>
#include "core/check.h"
#include "core/error.h"
#include "gemm/gemm_internal.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* One output row block: rows of A (already decoded) against one group's B. */
static void ref_rows(const dsk_tensor *a, const dsk_tensor *as, const dsk_tensor *b,
                     const dsk_tensor *bs, dsk_tensor *d, int64_t a_row0, int64_t as_row0,
                     int64_t d_row0, int64_t rows, int64_t g, int grouped, const double *lut,
                     double *arow)
{
    int64_t K = a->shape[a->rank - 1], N = b->shape[b->rank - 2], KB = cdiv(K, DSK_FP8_BLOCK);
    const uint8_t *A = a->data, *B = b->data;
    int ar = a->rank;
    for (int64_t r = 0; r < rows; r++) {
        int64_t am = a_row0 + r;
        const uint8_t *ap = A + (ar == 3 ? g * a->stride[0] + am * a->stride[1] : am * a->stride[0]);
        for (int64_t k = 0; k < K; k++) arow[k] = lut[ap[k]];
        for (int64_t n = 0; n < N; n++) {
            const uint8_t *bp = B + (grouped ? g * b->stride[0] + n * b->stride[1] : n * b->stride[0]);
            double acc = 0;
            for (int64_t kb = 0; kb < KB; kb++) {
                double part = 0;
                int64_t k1 = (kb + 1) * DSK_FP8_BLOCK < K ? (kb + 1) * DSK_FP8_BLOCK : K;
                for (int64_t k = kb * DSK_FP8_BLOCK; k < k1; k++) part += arow[k] * lut[bp[k]];
                double sa = as->rank == 3 ? dsk_load(as, dsk_off3(as, g, as_row0 + r, kb))
                                          : dsk_load(as, dsk_off2(as, as_row0 + r, kb));
                double sb = grouped ? dsk_load(bs, dsk_off3(bs, g, n / DSK_FP8_BLOCK, kb))
                                    : dsk_load(bs, dsk_off2(bs, n / DSK_FP8_BLOCK, kb));
                acc += part * sa * sb;
            }
            int64_t off = d->rank == 3 ? dsk_off3(d, g, d_row0 + r, n) : dsk_off2(d, d_row0 + r, n);
            dsk_store(d, off, acc);
        }
    }
}

dsk_status dsk_gemm_fp8_ref(const dsk_gemm_fp8_args *g)
{
    const char *fn = "dsk_gemm_fp8_ref";
    DSK_TRY(dsk_gemm_fp8_check(fn, g));
    DSK_TRY(dsk_gemm_fp8_check_values(fn, g));
    double lut[256];
    for (int i = 0; i < 256; i++) lut[i] = dsk_fp8_to_f32((uint8_t)i, DSK_E4M3);
    int64_t K = g->a->shape[g->a->rank - 1];
    double *arow = malloc(sizeof(double) * (size_t)(K > 0 ? K : 1));
    if (!arow) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: row buffer of K = %lld", fn, (long long)K);

    switch (g->layout) {
    case DSK_GEMM_DENSE:
        ref_rows(g->a, g->a_scale, g->b, g->b_scale, g->d, 0, 0, 0, g->a->shape[0], 0, 0, lut, arow);
        break;
    case DSK_GEMM_CONTIGUOUS:
        for (int64_t m = 0; m < g->a->shape[0]; m++) {
            int32_t e = dsk_load_i32(g->m_indices, m * g->m_indices->stride[0]);
            if (e >= 0) ref_rows(g->a, g->a_scale, g->b, g->b_scale, g->d, m, m, m, 1, e, 1, lut, arow);
        }
        break;
    case DSK_GEMM_MASKED:
        for (int64_t e = 0; e < g->a->shape[0]; e++) {
            int32_t rows = dsk_load_i32(g->masked_m, e * g->masked_m->stride[0]);
            ref_rows(g->a, g->a_scale, g->b, g->b_scale, g->d, 0, 0, 0, rows, e, 1, lut, arow);
        }
        break;
    }
    free(arow);
    return DSK_OK;
}
