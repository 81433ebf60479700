/* tests/cpu/test_cpu_gemm.c: the cpu backend's FP8 GEMM against the op's reference
 * (dsk_gemm_fp8_ref), at every ISA level this CPU has (forced with dsk_cpu_isa_set_cap),
 * over ragged shapes that reach both the decode (M <= 16) and the prefill paths, all
 * three layouts, bf16 and f32 outputs, column-major activation scales, padded row
 * strides and unaligned base pointers; outputs poisoned first, rows a layout must not
 * write checked to stay poisoned.
 *
 * Tolerance: the kernels sum each 128-wide K block in f32 (products of two e4m3 values
 * are exact in f32) and the reference in f64; the difference is f32 summation error,
 * below K * 2^-24 of the sum of |terms|, so 2e-5 of max|D| for K <= 2000 (f32 output).
 * bf16 output adds one rounding (at most 2^-8 relative), and the kernel and the reference may
 * land on the two sides of a bf16 rounding boundary: one bf16 ulp apart, at most 2^-7
 * of |value|; so 2^-7 |value| + 2e-5 max|D|. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "cpu/cpu_internal.h"
#include "tests/harness/harness.h"
#include "tests/cpu/gemm_check.h"

static dsk_device *dev;
static dsk_tensor views[64];   /* strided views of harness allocations */
static int n_views;

static dsk_tensor *new_view(const dsk_tensor *of)
{
    dsk_tensor *v = &views[n_views++ % 64];
    *v = *of;
    return v;
}

/* A [rows, cols] view with row stride ld >= cols, its base offset by `shift` elements
 * from an aligned allocation (to exercise unaligned pointers). */
static dsk_tensor *strided(dsk_dtype t, int64_t rows, int64_t cols, int64_t ld, int64_t shift)
{
    dsk_tensor *buf = dsk_t_new2(t, rows + 1, ld);
    dsk_tensor *v = new_view(buf);
    v->shape[0] = rows;
    v->shape[1] = cols;
    v->data = (char *)buf->data + (size_t)shift * dsk_dtype_size(t);
    return v;
}


static void fill_scales(dsk_tensor *t, dsk_rng *r) { dsk_t_fill_uniform(t, r, 0.0005, 0.004); }

static void dense_case(int64_t M, int64_t N, int64_t K, dsk_dtype out, int odd_layout, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = odd_layout ? strided(DSK_E4M3, M, K, K + 37, 3) : dsk_t_new2(DSK_E4M3, M, K);
    dsk_tensor *b = odd_layout ? strided(DSK_E4M3, N, K, K + 5, 1) : dsk_t_new2(DSK_E4M3, N, K);
    dsk_tensor *d = odd_layout ? strided(out, M, N, N + 3, 1) : dsk_t_new2(out, M, N);
    dsk_tensor *ref = dsk_t_new2(out, M, N), *bs = dsk_t_new2(DSK_F32, NB, KB);
    dsk_tensor *as;
    if (odd_layout) {   /* the GPU scale layout: [M, KB] with strides [1, M_pad] */
        int64_t Mp = (M + 3) / 4 * 4;
        dsk_tensor *buf = dsk_t_new2(DSK_F32, KB, Mp);
        as = new_view(buf);
        as->shape[0] = M;
        as->shape[1] = KB;
        as->stride[0] = 1;
        as->stride[1] = Mp;
    } else {
        as = dsk_t_new2(DSK_F32, M, KB);
    }
    dsk_t_fill_normal(a, &r, 60);
    dsk_t_fill_normal(b, &r, 60);
    fill_scales(as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(d);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, a, as, b, bs, d, NULL, NULL};
    dsk_gemm_fp8_args gr = g;
    gr.d = ref;
    if (!DSK_T_OK(dsk_gemm_fp8(dev, &g)) || !DSK_T_OK(dsk_gemm_fp8_ref(&gr))) return;
    char what[160];
    snprintf(what, sizeof what, "dense M=%lld N=%lld K=%lld odd_layout=%d", (long long)M, (long long)N, (long long)K,
             odd_layout);
    dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), d, ref, M, N, NULL);
}

static void contiguous_case(int64_t M, int64_t N, int64_t K, int G, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *as = dsk_t_new2(DSK_F32, M, KB);
    dsk_tensor *b = dsk_t_new3(DSK_E4M3, G, N, K), *bs = dsk_t_new3(DSK_F32, G, NB, KB);
    dsk_tensor *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){M});
    dsk_tensor *d = dsk_t_new2(DSK_BF16, M, N), *ref = dsk_t_new2(DSK_BF16, M, N);
    int *want = malloc(sizeof(int) * (size_t)M);
    /* runs of random length and group, some of them padding (-1) */
    for (int64_t m = 0; m < M;) {
        int64_t len = dsk_rng_int(&r, 1, 40);
        int g = (int)dsk_rng_int(&r, -1, G - 1);
        for (int64_t e = m; e < M && e < m + len; e++) {
            ((int32_t *)mi->data)[e] = g;
            want[e] = g >= 0;
        }
        m += len;
    }
    dsk_t_fill_normal(a, &r, 60);
    dsk_t_fill_normal(b, &r, 60);
    fill_scales(as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(d);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_CONTIGUOUS, a, as, b, bs, d, mi, NULL}, gr = g;
    gr.d = ref;
    if (!DSK_T_OK(dsk_gemm_fp8(dev, &g)) || !DSK_T_OK(dsk_gemm_fp8_ref(&gr))) return;
    char what[160];
    snprintf(what, sizeof what, "contiguous G=%d M=%lld N=%lld K=%lld", G, (long long)M, (long long)N, (long long)K);
    dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), d, ref, M, N, want);
    free(want);
}

static void masked_case(int G, int64_t max_m, int64_t N, int64_t K, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = dsk_t_new3(DSK_E4M3, G, max_m, K), *as = dsk_t_new3(DSK_F32, G, max_m, KB);
    dsk_tensor *b = dsk_t_new3(DSK_E4M3, G, N, K), *bs = dsk_t_new3(DSK_F32, G, NB, KB);
    dsk_tensor *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){G});
    dsk_tensor *d = dsk_t_new3(DSK_F32, G, max_m, N), *ref = dsk_t_new3(DSK_F32, G, max_m, N);
    int *want = malloc(sizeof(int) * (size_t)(G * max_m));
    for (int g = 0; g < G; g++) {
        int64_t c = g == 0 ? 0 : g == 1 ? max_m : dsk_rng_int(&r, 0, max_m);
        ((int32_t *)mm->data)[g] = (int32_t)c;
        for (int64_t m = 0; m < max_m; m++) want[g * max_m + m] = m < c;
    }
    dsk_t_fill_normal(a, &r, 60);
    dsk_t_fill_normal(b, &r, 60);
    fill_scales(as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(d);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_MASKED, a, as, b, bs, d, NULL, mm}, gr = g;
    gr.d = ref;
    if (!DSK_T_OK(dsk_gemm_fp8(dev, &g)) || !DSK_T_OK(dsk_gemm_fp8_ref(&gr))) return;
    char what[160];
    snprintf(what, sizeof what, "masked G=%d max_m=%lld N=%lld K=%lld", G, (long long)max_m, (long long)N, (long long)K);
    dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), d, ref, G * max_m, N, want);
    free(want);
}

static void run_level(dsk_cpu_isa isa)
{
    dsk_cpu_isa_set_cap(isa);
    uint64_t id = (uint64_t)isa * 1000;
    /* decode shapes (M <= 8 at avx512bf16 and avx2): ragged N (not a multiple of 4 or 128) and K
     * (not of 64/128) */
    dense_case(1, 257, 1000, DSK_BF16, 0, id++);
    dense_case(4, 131, 7168 / 4, DSK_F32, 0, id++);
    dense_case(3, 5, 63, DSK_F32, 1, id++);
    /* avx2 decode (M <= 8: 4 weight rows per pass for M <= 2, 2 for M = 3, 4, 1 for
     * M = 5..8): N tails of 1..3 rows past a 4-row group, a K tail of 1, whole K blocks */
    dense_case(2, 259, 300, DSK_BF16, 1, id++);
    dense_case(1, 130, 128, DSK_F32, 0, id++);
    dense_case(4, 7, 129, DSK_BF16, 0, id++);
    dense_case(3, 133, 256, DSK_BF16, 0, id++);
    dense_case(2, 6, 2000, DSK_F32, 0, id++);
    dense_case(5, 133, 200, DSK_BF16, 1, id++);
    dense_case(6, 66, 1000, DSK_F32, 0, id++);
    dense_case(7, 3, 129, DSK_F32, 1, id++);
    /* one-panel prefill (9 <= M <= 64 at avx512bf16; panel heights 16, 32, 48, 64): N not
     * a multiple of the 24-column grain */
    dense_case(8, 75, 256, DSK_F32, 0, id++);
    dense_case(9, 75, 256, DSK_F32, 0, id++);
    dense_case(16, 130, 129, DSK_BF16, 1, id++);
    dense_case(12, 49, 384, DSK_BF16, 0, id++);
    dense_case(17, 200, 300, DSK_F32, 0, id++);
    dense_case(33, 97, 640, DSK_F32, 1, id++);
    dense_case(64, 256, 1024, DSK_F32, 0, id++);
    /* prefill over several panels and tasks: last panel partial, tasks crossing 256 rows
     * and 192 columns */
    dense_case(203, 150, 700, DSK_BF16, 1, id++);
    dense_case(40, 300, 600, DSK_BF16, 0, id++);
    dense_case(300, 61, 200, DSK_F32, 1, id++);
    dense_case(530, 410, 130, DSK_BF16, 0, id++);
    contiguous_case(150, 136, 384, 4, id++);
    masked_case(4, 20, 100, 200, id++);
    masked_case(3, 7, 129, 130, id++);
    char want[64];
    snprintf(want, sizeof want, "gemm_fp8_cpu_%s", dsk_cpu_isa_name(isa));
    DSK_T_CHECK(strncmp(dsk_device_last_kernel(dev), want, strlen(want)) == 0, "level %s: kernel that ran is '%s'",
                dsk_cpu_isa_name(isa), dsk_device_last_kernel(dev));
}

int main(void)
{
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    dsk_cpu_isa best = dsk_cpu_isa_detected();
    for (int isa = DSK_CPU_AVX512BF16; isa >= DSK_CPU_SCALAR; isa--) {
        if (isa > (int)best) {
            printf("level %s: not on this CPU (it has %s), not tested here\n", dsk_cpu_isa_name((dsk_cpu_isa)isa),
                   dsk_cpu_isa_name(best));
            continue;
        }
        printf("level %s\n", dsk_cpu_isa_name((dsk_cpu_isa)isa));
        run_level((dsk_cpu_isa)isa);
    }
    dsk_cpu_isa_set_cap(-1);
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
