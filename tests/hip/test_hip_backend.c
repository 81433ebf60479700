/* tests/hip/test_hip_backend.c: the hip backend as a user meets it.
 *   - It is registered (named "hip"), and where no HIP runtime or AMD GPU exists it says so:
 *     dsk_device_open("hip:0") fails with DSK_ERR_DEVICE and the reason (naming libamdhip64), and the registry's
 *     availability line carries the same reason. The test then reports Skipped: the GEMM on a
 *     real gfx942 was not run.
 *   - Where ROCm and an MI300X (gfx942) are present, it runs dsk_gemm_fp8 on hip:0 (device
 *     memory, the embedded code objects) against dsk_gemm_fp8_ref on random quantized inputs
 *     over ragged shapes, outputs poisoned first. Tolerance: bf16 output, max relative error
 *     2^-7 + 1e-4 against max(|ref|, 1e-2 rms) (kernel and reference round to bf16 from
 *     slightly different sums: one bf16 ulp apart near a midpoint, up to 2^-7 relative). This path has never run in this project: no machine here has an AMD GPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness/harness.h"

static void gemm_on_device(dsk_device *dev, int64_t M, int64_t N, int64_t K, uint64_t case_id)
{
    dsk_rng r = dsk_t_rng(case_id);
    int64_t kb = (K + 127) / 128;
    dsk_tensor *x = dsk_t_new2(DSK_F32, M, K), *w = dsk_t_new2(DSK_F32, N, K);
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *as = dsk_t_new2(DSK_F32, M, kb);
    dsk_tensor *b = dsk_t_new2(DSK_E4M3, N, K), *bs = dsk_t_new2(DSK_F32, (N + 127) / 128, kb);
    dsk_tensor *d = dsk_t_new2(DSK_BF16, M, N), *dref = dsk_t_new2(DSK_BF16, M, N);
    dsk_t_fill_normal(x, &r, 1.0);
    dsk_t_fill_normal(w, &r, 0.02);
    DSK_T_OK(dsk_quant_act_fp8_ref(x, a, as));
    DSK_T_OK(dsk_quant_weight_fp8(w, b, bs));
    dsk_gemm_fp8_args g = {.layout = DSK_GEMM_DENSE, .a = a, .a_scale = as, .b = b, .b_scale = bs, .d = dref};
    DSK_T_OK(dsk_gemm_fp8_ref(&g));
    dsk_t_poison(d);

    const dsk_tensor *host[5] = {a, as, b, bs, d};
    dsk_tensor dv[5];
    for (int i = 0; i < 5; i++) {
        DSK_T_OK(dsk_tensor_alloc(dev, host[i]->dtype, host[i]->rank, host[i]->shape, &dv[i]));
        DSK_T_OK(dsk_device_upload(dev, dv[i].data, host[i]->data, dsk_tensor_nbytes(host[i])));
    }
    dsk_gemm_fp8_args gd = {.layout = DSK_GEMM_DENSE, .a = &dv[0], .a_scale = &dv[1], .b = &dv[2],
                            .b_scale = &dv[3], .d = &dv[4]};
    if (DSK_T_OK(dsk_gemm_fp8(dev, &gd))) {
        DSK_T_OK(dsk_device_download(dev, d->data, dv[4].data, dsk_tensor_nbytes(d)));
        dsk_t_cmp c = dsk_t_compare(d, dref, 0);
        double ss = 0, max_rel = 0;
        for (int64_t i = 0; i < M * N; i++)
            ss += dsk_t_get(dref, i) * dsk_t_get(dref, i);
        double fl = 1e-2 * sqrt(ss / (double)(M * N));
        for (int64_t i = 0; i < M * N; i++) {
            double x1 = dsk_t_get(d, i), y1 = dsk_t_get(dref, i);
            double e = isfinite(x1) ? fabs(x1 - y1) / fmax(fabs(y1), fl) : INFINITY;
            max_rel = e > max_rel ? e : max_rel;
        }
        DSK_T_CHECK(max_rel <= 0x1p-7 + 1e-4, "hip:0 %s M=%lld N=%lld K=%lld: max relative error %.3g (diff %.3g), tolerance 2^-7 + 1e-4",
                    dsk_device_last_kernel(dev), (long long)M, (long long)N, (long long)K, max_rel, c.diff);
    }
    for (int i = 0; i < 5; i++)
        dsk_tensor_free(&dv[i]);
}

int main(void)
{
    int idx = -1;
    for (int i = 0; i < dsk_backend_count(); i++)
        if (!strcmp(dsk_backend_name(i), "hip"))
            idx = i;
    if (!DSK_T_CHECK(idx >= 0, "the hip backend is not registered"))
        return dsk_t_finish();
    char why[256] = "";
    int avail = dsk_backend_available(idx, why, sizeof why);
    dsk_device *dev = NULL;
    dsk_status s = dsk_device_open("hip:0", &dev);
    if (!avail) {
        DSK_T_CHECK(strstr(why, "unavailable") != NULL, "hip unavailable without a reason: '%s'", why);
        DSK_T_ERR(s, DSK_ERR_DEVICE, "libamdhip64");
        if (dsk_t_finish())
            return 1;
        dsk_t_skip("hip backend %s; the GEMM on hip:0 was not run", why);
    }
    if (!DSK_T_OK(s))
        return dsk_t_finish();
    const dsk_device_props *p = dsk_device_get_props(dev);
    printf("hip:0: %s, arch %s, %d CUs\n", p->description, p->arch, p->num_sms);
    if (strcmp(p->arch, "gfx942")) {
        dsk_device_close(dev);
        dsk_t_skip("hip:0 is %s, dsk's hip kernels are for gfx942", p->arch);
    }
    gemm_on_device(dev, 1, 512, 256, 1);
    gemm_on_device(dev, 77, 300, 384, 2);
    gemm_on_device(dev, 260, 1000, 1024, 3);
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
