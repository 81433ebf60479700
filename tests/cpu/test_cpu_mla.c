/* tests/cpu/test_cpu_mla.c: the cpu backend's MLA decode against dsk_mla_decode_ref at
 * every ISA level this CPU has, over ragged sequence lengths (1, 63, 64, 65, ...), head
 * counts that are not multiples of the 16-head group, widths D and dv that are not
 * multiples of 16, scattered page tables, bf16 and f32 inputs and outputs, with lse;
 * outputs poisoned first.
 *
 * Tolerance: the kernels compute in f32 (scores, exp, sums), the reference in f64; with
 * |scores| of a few units the relative error of out and lse stays below ~1e-5; 1e-4 of
 * max|out| is used (bf16 output: plus one bf16 ulp, 2^-7 relative). The avx512bf16
 * level also rounds the softmax weights to bf16 for P.V: plus the bound computed by
 * dsk_t_mla_pv_bound (tests/cpu/mla_pv_bound.h); its lse keeps the 1e-4 tolerance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "tests/cpu/mla_pv_bound.h"
#include "tests/harness/harness.h"

static dsk_device *dev;

static void mla_case(int B, int H, int D, int dv, dsk_dtype in, dsk_dtype out, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int lens[8];
    int maxlen = 0;
    static const int pick[] = {1, 63, 64, 65, 200, 129, 7, 300};
    for (int b = 0; b < B; b++) {
        lens[b] = pick[(id + (uint64_t)b) % 8];
        if (lens[b] > maxlen) maxlen = lens[b];
    }
    int max_pages = (maxlen + 63) / 64, pages = B * max_pages + 3;
    dsk_tensor *q = dsk_t_new3(in, B, H, D), *kv = dsk_t_new3(in, pages, 64, D);
    dsk_tensor *bt = dsk_t_new2(DSK_I32, B, max_pages), *sl = dsk_t_new(DSK_I32, 1, (int64_t[]){B});
    dsk_tensor *o = dsk_t_new3(out, B, H, dv), *oref = dsk_t_new3(out, B, H, dv);
    dsk_tensor *lse = dsk_t_new2(DSK_F32, B, H), *lref = dsk_t_new2(DSK_F32, B, H);
    dsk_t_fill_normal(q, &r, 0.3);
    dsk_t_fill_normal(kv, &r, 0.3);
    DSK_T_CHECK(dsk_t_fill_scattered_pages(bt, &r, pages), "block table larger than the cache");
    for (int b = 0; b < B; b++) ((int32_t *)sl->data)[b] = lens[b];
    dsk_t_poison(o);
    dsk_t_poison(lse);
    float scale = dsk_mla_softmax_scale(192, 1.0f, 40.0f);
    dsk_mla_decode_args a = {q, kv, bt, sl, o, lse, dv, scale}, ar = a;
    ar.out = oref;
    ar.lse = lref;
    if (!DSK_T_OK(dsk_mla_decode(dev, &a)) || !DSK_T_OK(dsk_mla_decode_ref(&ar))) return;
    dsk_t_cmp c = dsk_t_compare(o, oref, 1.0);
    double omax = 0;
    for (int64_t i = 0; i < dsk_tensor_numel(oref); i++) omax = fmax(omax, fabs(dsk_t_get(oref, i)));
    /* The bf16 level rounds the softmax weights to bf16 for P.V (relative error <= 2^-8
     * each), so out[b][h][c] may move by up to 2^-8 * sum_t w_t |v_t[c]|; that bound,
     * computed in f64 from the inputs, is added to its tolerance. */
    int pv_bf16 = strstr(dsk_device_last_kernel(dev), "avx512bf16") != NULL;
    double *pvb = calloc((size_t)(B * H * dv), sizeof(double));
    if (pv_bf16) dsk_t_mla_pv_bound(q, kv, bt, lens, B, H, D, dv, scale, pvb);
    int64_t bad = 0;
    for (int64_t i = 0; i < dsk_tensor_numel(oref); i++) {
        double x = dsk_t_get(o, i), y = dsk_t_get(oref, i);
        double tol = 1e-4 * omax + DSK_T_BF16_U * pvb[i] + (out == DSK_BF16 ? 0x1p-7 * fabs(y) : 0);
        bad += !(fabs(x - y) <= tol);
    }
    free(pvb);
    dsk_t_cmp cl = dsk_t_compare(lse, lref, 1.0);
    DSK_T_CHECK(bad == 0 && c.nonfinite == 0, "mla_decode [%s] B=%d H=%d D=%d dv=%d in=%s out=%s: %lld of %lld out elements beyond tolerance, max_abs_err %.3e (max|out| %.3e)",
                dsk_device_last_kernel(dev), B, H, D, dv, dsk_dtype_name(in), dsk_dtype_name(out), (long long)bad,
                (long long)dsk_tensor_numel(oref), c.max_abs_err, omax);
    DSK_T_CHECK(cl.nonfinite == 0 && cl.max_abs_err < 1e-4, "mla_decode [%s] B=%d H=%d: lse max_abs_err %.3e (tol 1e-4)",
                dsk_device_last_kernel(dev), B, H, cl.max_abs_err);
}

int main(void)
{
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    dsk_cpu_isa best = dsk_cpu_isa_detected();
    for (int isa = DSK_CPU_AVX512BF16; isa >= DSK_CPU_SCALAR; isa--) {
        if (isa > (int)best) {
            printf("level %s: not on this CPU, not tested here\n", dsk_cpu_isa_name((dsk_cpu_isa)isa));
            continue;
        }
        dsk_cpu_isa_set_cap(isa);
        uint64_t id = (uint64_t)isa * 100;
        mla_case(3, 20, 576, 512, DSK_BF16, DSK_BF16, id++);
        mla_case(2, 16, 576, 512, DSK_BF16, DSK_F32, id++);
        mla_case(4, 5, 72, 40, DSK_F32, DSK_F32, id++);
        mla_case(1, 1, 33, 17, DSK_F32, DSK_BF16, id++);
        mla_case(5, 3, 96, 64, DSK_BF16, DSK_F32, id++);
        mla_case(2, 7, 70, 36, DSK_BF16, DSK_BF16, id++);   /* dv not a multiple of 16 */
        if (isa == DSK_CPU_AVX512BF16)
            DSK_T_CHECK(strcmp(dsk_device_last_kernel(dev), "mla_decode_cpu_avx512bf16") == 0,
                        "bf16 inputs at level avx512bf16 ran %s", dsk_device_last_kernel(dev));
        mla_case(3, 4, 33, 17, DSK_BF16, DSK_F32, id++);    /* odd D: the bf16 level declines */
        mla_case(1, 2, 64, 64, DSK_F32, DSK_F32, id++);
        if (isa == DSK_CPU_AVX512BF16)
            DSK_T_CHECK(strcmp(dsk_device_last_kernel(dev), "mla_decode_cpu_avx512") == 0,
                        "f32 inputs at level avx512bf16 ran %s (expected the f32 level)", dsk_device_last_kernel(dev));
        if (isa == DSK_CPU_AVX2)
            DSK_T_CHECK(strcmp(dsk_device_last_kernel(dev), "mla_decode_cpu_avx2") == 0,
                        "level avx2 ran %s", dsk_device_last_kernel(dev));
    }
    dsk_cpu_isa_set_cap(-1);
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
