/* tests/core/test_gemm_ref.c: the FP8 GEMM reference and quantization against an
 * independent computation (dequantize A and B with their scales, then a plain f64 triple
 * loop), over ragged shapes and all three layouts, with poisoned outputs; plus
 * hand-computed cases and the argument checks (one per check). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness/harness.h"

static double deq(const dsk_tensor *q, int64_t off) { return dsk_fp8_to_f32(((uint8_t *)q->data)[off], DSK_E4M3); }

/* Independent: D = dequant(A) . dequant(B)^T, both dequantized element-wise. */
static double oracle(const dsk_tensor *a, const dsk_tensor *as, const dsk_tensor *b, const dsk_tensor *bs, int64_t g,
                     int64_t m, int64_t n, int grouped_b)
{
    int64_t K = a->shape[a->rank - 1];
    double acc = 0;
    for (int64_t k = 0; k < K; k++) {
        double av, sa, bv, sb;
        if (a->rank == 3) {
            av = deq(a, g * a->stride[0] + m * a->stride[1] + k);
            sa = ((float *)as->data)[g * as->stride[0] + m * as->stride[1] + k / 128];
        } else {
            av = deq(a, m * a->stride[0] + k);
            sa = ((float *)as->data)[m * as->stride[0] + (k / 128) * as->stride[1]];
        }
        if (grouped_b) {
            bv = deq(b, g * b->stride[0] + n * b->stride[1] + k);
            sb = ((float *)bs->data)[g * bs->stride[0] + (n / 128) * bs->stride[1] + k / 128];
        } else {
            bv = deq(b, n * b->stride[0] + k);
            sb = ((float *)bs->data)[(n / 128) * bs->stride[0] + k / 128];
        }
        acc += av * sa * bv * sb;
    }
    return acc;
}

static void dense_case(int64_t M, int64_t N, int64_t K, dsk_dtype out, int col_major_scale, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *b = dsk_t_new2(DSK_E4M3, N, K);
    dsk_tensor *bs = dsk_t_new2(DSK_F32, NB, KB), *d = dsk_t_new2(out, M, N);
    dsk_tensor *as;
    dsk_tensor as_cm;
    dsk_t_fill_normal(a, &r, 30);
    dsk_t_fill_normal(b, &r, 30);
    dsk_t_fill_uniform(bs, &r, 0.001, 0.01);
    if (col_major_scale) {  /* the GPU layout: [M, KB] viewed with strides [1, M_pad] */
        int64_t Mp = (M + 3) / 4 * 4;
        dsk_tensor *buf = dsk_t_new2(DSK_F32, KB, Mp);
        as_cm = *buf;
        as_cm.shape[0] = M;
        as_cm.shape[1] = KB;
        as_cm.stride[0] = 1;
        as_cm.stride[1] = Mp;
        as = &as_cm;
    } else as = dsk_t_new2(DSK_F32, M, KB);
    dsk_t_fill_uniform(as, &r, 0.001, 0.01);
    dsk_t_poison(d);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, a, as, b, bs, d, NULL, NULL};
    if (!DSK_T_OK(dsk_gemm_fp8_ref(&g))) return;
    double *x = malloc(sizeof(double) * (size_t)(M * N)), *y = malloc(sizeof(double) * (size_t)(M * N));
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            x[m * N + n] = dsk_t_get(d, m * N + n);
            y[m * N + n] = oracle(a, as, b, bs, 0, m, n, 0);
        }
    dsk_t_cmp c = dsk_t_compare_f64(x, y, M * N, 1e-3);
    /* tolerance: one rounding to the output dtype (bf16: at most 2^-8 relative, 8 significant bits; f32: 2^-24) */
    double tol = out == DSK_BF16 ? 0x1p-8 : 1e-6;
    DSK_T_CHECK(c.nonfinite == 0 && c.max_rel_err <= tol, "gemm_fp8_ref dense %s M=%lld N=%lld K=%lld scale_cm=%d: max_rel_err %.3e (tol %.1e), nonfinite %lld",
                dsk_dtype_name(out), (long long)M, (long long)N, (long long)K, col_major_scale, c.max_rel_err, tol, (long long)c.nonfinite);
    free(x);
    free(y);
}

static void grouped_cases(uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t G = 3, N = 200, K = 300, KB = 3, NB = 2;
    /* contiguous: 10 rows, groups 2,2,-1,0,0,0,-1,1,2,-1 */
    int32_t idx[10] = {2, 2, -1, 0, 0, 0, -1, 1, 2, -1};
    int64_t M = 10;
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *as = dsk_t_new2(DSK_F32, M, KB);
    dsk_tensor *b = dsk_t_new3(DSK_E4M3, G, N, K), *bs = dsk_t_new3(DSK_F32, G, NB, KB);
    dsk_tensor *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){M}), *d = dsk_t_new2(DSK_F32, M, N);
    memcpy(mi->data, idx, sizeof idx);
    dsk_t_fill_normal(a, &r, 20);
    dsk_t_fill_normal(b, &r, 20);
    dsk_t_fill_uniform(as, &r, 0.5, 2);
    dsk_t_fill_uniform(bs, &r, 0.5, 2);
    dsk_t_poison(d);
    dsk_gemm_fp8_args g = {DSK_GEMM_CONTIGUOUS, a, as, b, bs, d, mi, NULL};
    DSK_T_OK(dsk_gemm_fp8_ref(&g));
    int bad = 0, untouched = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double got = dsk_t_get(d, m * N + n);
            if (idx[m] < 0) {
                untouched += isnan(got);
                continue;
            }
            double want = oracle(a, as, b, bs, idx[m], m, n, 1);
            bad += fabs(got - want) > 1e-6 * fmax(fabs(want), 1);
        }
    DSK_T_CHECK(bad == 0, "contiguous: %d elements differ from the oracle", bad);
    DSK_T_CHECK(untouched == 3 * N, "contiguous: rows with m_indices -1 left unwritten (%d of %lld)", untouched, (long long)(3 * N));

    /* masked: G=3, max_m=5, counts 5, 0, 2 */
    int32_t cnt[3] = {5, 0, 2};
    int64_t MM = 5;
    dsk_tensor *a3 = dsk_t_new3(DSK_E4M3, G, MM, K), *as3 = dsk_t_new3(DSK_F32, G, MM, KB);
    dsk_tensor *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){G}), *d3 = dsk_t_new3(DSK_BF16, G, MM, N);
    memcpy(mm->data, cnt, sizeof cnt);
    dsk_t_fill_normal(a3, &r, 20);
    dsk_t_fill_uniform(as3, &r, 0.5, 2);
    dsk_t_poison(d3);
    dsk_gemm_fp8_args gm = {DSK_GEMM_MASKED, a3, as3, b, bs, d3, NULL, mm};
    DSK_T_OK(dsk_gemm_fp8_ref(&gm));
    bad = untouched = 0;
    for (int64_t e = 0; e < G; e++)
        for (int64_t m = 0; m < MM; m++)
            for (int64_t n = 0; n < N; n++) {
                double got = dsk_t_get(d3, (e * MM + m) * N + n);
                if (m >= cnt[e]) {
                    untouched += isnan(got);
                    continue;
                }
                double want = oracle(a3, as3, b, bs, e, m, n, 1);
                bad += fabs(got - want) > 0x1p-8 * fmax(fabs(want), 1);
            }
    DSK_T_CHECK(bad == 0, "masked: %d elements differ from the oracle", bad);
    DSK_T_CHECK(untouched == (5 + 3) * N, "masked: rows past masked_m left unwritten (%d)", untouched);
}

static void hand_case(void)
{
    /* K = 256 with two scale blocks: a = 1 everywhere (e4m3 0x38), b = 2 (0x40);
     * a_scale = {1, 3}, b_scale = {0.5, 0.25}: d = 128*2*1*0.5 + 128*2*3*0.25 = 128 + 192 = 320 */
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, 1, 256), *b = dsk_t_new2(DSK_E4M3, 1, 256);
    dsk_tensor *as = dsk_t_new2(DSK_F32, 1, 2), *bs = dsk_t_new2(DSK_F32, 1, 2), *d = dsk_t_new2(DSK_F32, 1, 1);
    memset(a->data, 0x38, 256);
    memset(b->data, 0x40, 256);
    ((float *)as->data)[0] = 1;
    ((float *)as->data)[1] = 3;
    ((float *)bs->data)[0] = 0.5f;
    ((float *)bs->data)[1] = 0.25f;
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, a, as, b, bs, d, NULL, NULL};
    DSK_T_OK(dsk_gemm_fp8_ref(&g));
    DSK_T_CHECK(((float *)d->data)[0] == 320.0f, "hand case: d = %g, expected 320", ((float *)d->data)[0]);
}

static void quant_cases(void)
{
    dsk_rng r = dsk_t_rng(99);
    int64_t M = 5, K = 300;
    dsk_tensor *x = dsk_t_new2(DSK_F32, M, K), *q = dsk_t_new2(DSK_E4M3, M, K), *s = dsk_t_new2(DSK_F32, M, 3);
    dsk_t_fill_normal(x, &r, 3);
    for (int64_t k = 0; k < 128; k++) ((float *)x->data)[2 * K + k] = 0;  /* an all-zero group */
    DSK_T_OK(dsk_quant_act_fp8_ref(x, q, s));
    int bad = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t kb = 0; kb < 3; kb++) {
            double amax = 0;
            for (int64_t k = kb * 128; k < K && k < kb * 128 + 128; k++) amax = fmax(amax, fabs(((float *)x->data)[m * K + k]));
            float sc = ((float *)s->data)[m * 3 + kb];
            bad += fabs(sc - fmax(amax, 1e-4) / 448) > 1e-6 * sc;
            for (int64_t k = kb * 128; k < K && k < kb * 128 + 128; k++) {
                double xv = ((float *)x->data)[m * K + k], qv = dsk_fp8_to_f32(((uint8_t *)q->data)[m * K + k], DSK_E4M3) * sc;
                /* e4m3 has 3 mantissa bits: relative error <= 2^-4, plus subnormal absolute 2^-10 * sc */
                bad += fabs(qv - xv) > fabs(xv) * 0.0625 + sc * 0x1p-10;
            }
        }
    DSK_T_CHECK(bad == 0, "act quant: %d scale or value errors", bad);
    DSK_T_CHECK(((float *)s->data)[2 * 3] == (float)(1e-4 / 448), "act quant: zero group gets the 1e-4 floor");

    dsk_tensor *w = dsk_t_new2(DSK_BF16, 200, 260), *wq = dsk_t_new2(DSK_E4M3, 200, 260), *ws = dsk_t_new2(DSK_F32, 2, 3);
    dsk_tensor *wd = dsk_t_new2(DSK_F32, 200, 260);
    dsk_t_fill_normal(w, &r, 0.02);
    DSK_T_OK(dsk_quant_weight_fp8(w, wq, ws));
    DSK_T_OK(dsk_dequant_weight_fp8(wq, ws, wd));
    dsk_t_cmp c = dsk_t_compare(wd, w, 1e-3);
    /* e4m3 quantization of a normal block: the DeepGEMM metric is ~1e-3 or better */
    DSK_T_CHECK(c.diff < 2e-3, "weight quant round trip: diff %.3e (tol 2e-3)", c.diff);
}

static void bad_input(void)
{
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, 4, 256), *as = dsk_t_new2(DSK_F32, 4, 2);
    dsk_tensor *b = dsk_t_new2(DSK_E4M3, 512, 256), *bs = dsk_t_new2(DSK_F32, 4, 2), *d = dsk_t_new2(DSK_BF16, 4, 512);
    dsk_tensor *bs_bad = dsk_t_new2(DSK_F32, 4, 8), *a_f32 = dsk_t_new2(DSK_F32, 4, 256), *d_bad = dsk_t_new2(DSK_BF16, 4, 500);
    dsk_tensor *b_k = dsk_t_new2(DSK_E4M3, 512, 128), *d_i32 = dsk_t_new2(DSK_I32, 4, 512);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, a, as, b, bs, d, NULL, NULL}, x;
    DSK_T_OK(dsk_gemm_fp8_check("t", &g));
    DSK_T_ERR(dsk_gemm_fp8_ref(NULL), DSK_ERR_INVALID_ARG, "args is NULL");
    x = g; x.a = NULL;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "a is NULL");
    x = g; x.b_scale = bs_bad;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "b_scale has shape [4, 8], expected [ceil(N/128), ceil(K/128)] = [4, 2]");
    x = g; x.a = a_f32;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "a has dtype f32, expected e4m3");
    x = g; x.d = d_bad;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "d has shape [4, 500], expected [M, N] = [4, 512]");
    x = g; x.d = d_i32;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "d has dtype i32");
    x = g; x.b = b_k;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "b has shape [512, 128], expected [N, K] = [512, 256]");
    x = g; x.a_scale = dsk_t_new2(DSK_F32, 3, 2);
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "a_scale has shape [3, 2]");
    dsk_tensor a_strided = *a;
    a_strided.stride[1] = 2;
    x = g; x.a = &a_strided;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "a has last-dimension stride 2");
    dsk_tensor a_neg = *a;
    a_neg.stride[0] = -256;
    x = g; x.a = &a_neg;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "stride[0] = -256");
    dsk_tensor a_null = *a;
    a_null.data = NULL;
    x = g; x.a = &a_null;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "a has a NULL data pointer");
    x = g; x.layout = (dsk_gemm_layout)7;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "layout is 7");
    dsk_tensor *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){4});
    x = g; x.m_indices = mi;
    DSK_T_ERR(dsk_gemm_fp8_ref(&x), DSK_ERR_INVALID_ARG, "m_indices is given");
    /* contiguous: group index out of range */
    dsk_tensor *b3 = dsk_t_new3(DSK_E4M3, 2, 512, 256), *bs3 = dsk_t_new3(DSK_F32, 2, 4, 2);
    int32_t bad_idx[4] = {0, 1, 2, -1};
    memcpy(mi->data, bad_idx, sizeof bad_idx);
    dsk_gemm_fp8_args gc = {DSK_GEMM_CONTIGUOUS, a, as, b3, bs3, d, mi, NULL};
    DSK_T_ERR(dsk_gemm_fp8_ref(&gc), DSK_ERR_INVALID_ARG, "m_indices[2] = 2, expected -1 or a group in [0, 2)");
    gc.m_indices = NULL;
    DSK_T_ERR(dsk_gemm_fp8_ref(&gc), DSK_ERR_INVALID_ARG, "m_indices is NULL");
    /* masked: count above max_m */
    dsk_tensor *a3 = dsk_t_new3(DSK_E4M3, 2, 4, 256), *as3 = dsk_t_new3(DSK_F32, 2, 4, 2), *d3 = dsk_t_new3(DSK_F32, 2, 4, 512);
    dsk_tensor *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){2});
    ((int32_t *)mm->data)[0] = 4;
    ((int32_t *)mm->data)[1] = 5;
    dsk_gemm_fp8_args gm = {DSK_GEMM_MASKED, a3, as3, b3, bs3, d3, NULL, mm};
    DSK_T_ERR(dsk_gemm_fp8_ref(&gm), DSK_ERR_INVALID_ARG, "masked_m[1] = 5, expected 0..max_m = 4");
    ((int32_t *)mm->data)[1] = -1;
    DSK_T_ERR(dsk_gemm_fp8_ref(&gm), DSK_ERR_INVALID_ARG, "masked_m[1] = -1");
    /* quantization */
    DSK_T_ERR(dsk_quant_act_fp8_ref(a, dsk_t_new2(DSK_E4M3, 4, 256), as), DSK_ERR_INVALID_ARG, "x has dtype e4m3");
    DSK_T_ERR(dsk_quant_act_fp8_ref(a_f32, dsk_t_new2(DSK_E4M3, 4, 256), bs_bad), DSK_ERR_INVALID_ARG, "s has shape [4, 8], expected [M, ceil(K/128)] = [4, 2]");
    DSK_T_ERR(dsk_quant_weight_fp8(a_f32, a, dsk_t_new2(DSK_F32, 2, 2)), DSK_ERR_INVALID_ARG, "s has shape [2, 2], expected [ceil(N/128), ceil(K/128)] = [1, 2]");
    /* dispatch on a device */
    dsk_device *dev;
    if (DSK_T_OK(dsk_device_open("cpu", &dev))) {
        x = g; x.b_scale = bs_bad;
        DSK_T_ERR(dsk_gemm_fp8(dev, &x), DSK_ERR_INVALID_ARG, "dsk_gemm_fp8: b_scale has shape [4, 8]");
        DSK_T_ERR(dsk_gemm_fp8(NULL, &g), DSK_ERR_INVALID_ARG, "dev is NULL");
        dsk_device_close(dev);
    }
}

int main(void)
{
    hand_case();
    int64_t shapes[][3] = {{1, 1, 1}, {1, 128, 128}, {7, 72, 200}, {17, 130, 384}, {33, 257, 129}, {64, 112, 512}};
    uint64_t id = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int out = 0; out < 2; out++)
            dense_case(shapes[i][0], shapes[i][1], shapes[i][2], out ? DSK_BF16 : DSK_F32, (int)(i & 1), id++);
    grouped_cases(100);
    quant_cases();
    bad_input();
    return dsk_t_finish();
}
