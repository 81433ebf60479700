/* tests/cpu/test_cpu_isa_env.c: DSK_CPU_ISA caps the level (ctest runs this with
 * DSK_CPU_ISA=scalar): the device's arch says "scalar", and a GEMM and an activation
 * quantization run their scalar kernels. */
#include <string.h>

#include "tests/harness/harness.h"

int main(void)
{
    dsk_device *dev;
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    const dsk_device_props *p = dsk_device_get_props(dev);
    DSK_T_CHECK(!strcmp(p->arch, "scalar"), "DSK_CPU_ISA=scalar: arch is '%s', expected 'scalar'", p->arch);
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, 2, 130), *as = dsk_t_new2(DSK_F32, 2, 2);
    dsk_tensor *b = dsk_t_new2(DSK_E4M3, 3, 130), *bs = dsk_t_new2(DSK_F32, 1, 2), *d = dsk_t_new2(DSK_F32, 2, 3);
    dsk_rng r = dsk_t_rng(1);
    dsk_t_fill_normal(a, &r, 10);
    dsk_t_fill_normal(b, &r, 10);
    dsk_t_fill_uniform(as, &r, 0.5, 1);
    dsk_t_fill_uniform(bs, &r, 0.5, 1);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, a, as, b, bs, d, NULL, NULL};
    DSK_T_OK(dsk_gemm_fp8(dev, &g));
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(dev), "gemm_fp8_cpu_scalar"), "DSK_CPU_ISA=scalar: kernel '%s'",
                dsk_device_last_kernel(dev));
    dsk_tensor *x = dsk_t_new2(DSK_BF16, 2, 300), *q = dsk_t_new2(DSK_E4M3, 2, 300), *s = dsk_t_new2(DSK_F32, 2, 3);
    dsk_t_fill_normal(x, &r, 1);
    DSK_T_OK(dsk_quant_act_fp8(dev, x, q, s));
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(dev), "quant_act_fp8_cpu_scalar"), "DSK_CPU_ISA=scalar: kernel '%s'",
                dsk_device_last_kernel(dev));
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
