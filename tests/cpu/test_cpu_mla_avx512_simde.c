/* tests/cpu/test_cpu_mla_avx512_simde.c: the avx512bf16 level's MLA decode kernels
 * (cpu/mla_decode_bf16_avx512.c, vdpbf16ps for q.K and P.V; cpu/mla_decode_avx512.c, f32
 * FMA, which takes f32 inputs and odd D) on a CPU without AVX-512. The kernel sources are
 * compiled against SIMDe's portable AVX-512 (tests/cpu/simde/immintrin.h; built only
 * when libsimde-dev is installed) and run through a second build of the cpu backend's
 * MLA framework (cpu/mla_decode_cpu.c: the level list with its declines, the split over
 * the thread pool, split-KV and the combine), entered as dsk_cpu_mla_decode_simde after
 * the op's argument check. Compared with dsk_mla_decode_ref on seeded random inputs:
 * sequence lengths around the 32-row blocks and 64-row pages (1, 2, 31..33, 63..65, 129,
 * 300), head counts that are not multiples of 16 and one past the 128-head tile, D and
 * dv not multiples of 16 (D = 2 included; 16 more shapes drawn from the seed), scattered
 * page tables, bf16 and f32 inputs and outputs, with and without lse; out and lse
 * poisoned first, with a guard sequence after them that must stay poisoned.
 *
 * Tolerance (test_cpu_mla's at the avx512bf16 level): 1e-4 of max|out| (f32 softmax and
 * sums against the f64 reference), plus for the bf16 kernel 2^-8 * sum_t w_t |v_t[c]|
 * (its bf16 softmax weights, dsk_t_mla_pv_bound), plus 2^-7 |value| for bf16 output;
 * lse within 1e-4.
 *
 * What this proves: the kernels' logic (packing of q, the 16 x 16 transposes, the
 * interleave of row pairs, dv and row tails, the online softmax, head subgroups) under
 * Intel's lane semantics as SIMDe and the stand-ins implement them; not speed, and not
 * the hardware's rounding where that differs from the SDM's description. test_cpu_mla
 * runs the real instructions where the CPU has AVX-512 BF16. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "tests/cpu/mla_pv_bound.h"
#include "tests/harness/harness.h"

dsk_status dsk_cpu_mla_decode_simde(dsk_device *dev, const dsk_mla_decode_args *a);

static dsk_device *dev;

/* The first B entries of a poisoned [B + 1, ...] buffer: entry B is a guard. */
static dsk_tensor first_b(dsk_tensor *buf, int B)
{
    memset(buf->data, 0xFF, (size_t)dsk_tensor_numel(buf) * dsk_dtype_size(buf->dtype));
    dsk_tensor v = *buf;
    v.shape[0] = B;
    return v;
}

static int guard_intact(const dsk_tensor *buf, int B)
{
    const size_t es = dsk_dtype_size(buf->dtype), per = (size_t)(dsk_tensor_numel(buf) / buf->shape[0]) * es;
    const unsigned char *p = (const unsigned char *)buf->data + (size_t)B * per;
    for (size_t i = 0; i < per; i++)
        if (p[i] != 0xFF) return 0;
    return 1;
}

static void mla_case(int B, int H, int D, int dv, dsk_dtype in, dsk_dtype out, int with_lse, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    static const int pick[] = {1, 2, 31, 32, 33, 63, 64, 65, 129, 300};
    int lens[8], maxlen = 0;
    for (int b = 0; b < B; b++) {
        lens[b] = pick[dsk_rng_int(&r, 0, 9)];
        if (lens[b] > maxlen) maxlen = lens[b];
    }
    const int max_pages = (maxlen + 63) / 64, pages = B * max_pages + 3;
    dsk_tensor *q = dsk_t_new3(in, B, H, D), *kv = dsk_t_new3(in, pages, 64, D);
    dsk_tensor *bt = dsk_t_new2(DSK_I32, B, max_pages), *sl = dsk_t_new(DSK_I32, 1, (int64_t[]){B});
    dsk_tensor *obuf = dsk_t_new3(out, B + 1, H, dv), *oref = dsk_t_new3(out, B, H, dv);
    dsk_tensor *lbuf = dsk_t_new2(DSK_F32, B + 1, H), *lref = dsk_t_new2(DSK_F32, B, H);
    dsk_tensor o = first_b(obuf, B), lse = first_b(lbuf, B);
    dsk_t_fill_normal(q, &r, 0.3);
    dsk_t_fill_normal(kv, &r, 0.3);
    DSK_T_CHECK(dsk_t_fill_scattered_pages(bt, &r, pages), "block table larger than the cache");
    for (int b = 0; b < B; b++) ((int32_t *)sl->data)[b] = lens[b];
    dsk_t_poison(oref);
    const float scale = dsk_mla_softmax_scale(192, 1.0f, 40.0f);
    dsk_mla_decode_args a = {q, kv, bt, sl, &o, with_lse ? &lse : NULL, dv, scale}, ar = a;
    ar.out = oref;
    ar.lse = lref;
    char what[200];
    snprintf(what, sizeof what, "mla_decode B=%d H=%d D=%d dv=%d in=%s out=%s lse=%d lens %d,%d,..", B, H, D, dv,
             dsk_dtype_name(in), dsk_dtype_name(out), with_lse, lens[0], B > 1 ? lens[1] : -1);
    if (!DSK_T_OK(dsk_mla_decode_check("dsk_mla_decode", &a)) || !DSK_T_OK(dsk_cpu_mla_decode_simde(dev, &a)) ||
        !DSK_T_OK(dsk_mla_decode_ref(&ar)))
        return;
    const int bf16_level = in == DSK_BF16 && D % 2 == 0;
    const char *want = bf16_level ? "mla_decode_cpu_avx512bf16" : "mla_decode_cpu_avx512";
    DSK_T_CHECK(strcmp(dsk_device_last_kernel(dev), want) == 0, "%s: kernel that ran is '%s', expected '%s'", what,
                dsk_device_last_kernel(dev), want);
    const int64_t n = dsk_tensor_numel(oref);
    double omax = 0;
    for (int64_t i = 0; i < n; i++) omax = fmax(omax, fabs(dsk_t_get(oref, i)));
    double *pvb = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    if (bf16_level) dsk_t_mla_pv_bound(q, kv, bt, lens, B, H, D, dv, scale, pvb);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        const double x = dsk_t_get(&o, i), y = dsk_t_get(oref, i);
        const double tol = 1e-4 * omax + DSK_T_BF16_U * pvb[i] + (out == DSK_BF16 ? 0x1p-7 * fabs(y) : 0);
        if (!(fabs(x - y) <= tol) && bad++ == 0) first = i;
    }
    free(pvb);
    DSK_T_CHECK(bad == 0, "%s [%s (SIMDe)]: %lld of %lld out elements beyond tolerance, first [%lld] got %g want %g",
                what, dsk_device_last_kernel(dev), (long long)bad, (long long)n, (long long)first,
                first >= 0 ? dsk_t_get(&o, first) : 0.0, first >= 0 ? dsk_t_get(oref, first) : 0.0);
    DSK_T_CHECK(guard_intact(obuf, B), "%s: out written past its last sequence", what);
    if (with_lse) {
        const dsk_t_cmp cl = dsk_t_compare(&lse, lref, 1.0);
        DSK_T_CHECK(cl.nonfinite == 0 && cl.max_abs_err < 1e-4, "%s [%s (SIMDe)]: lse max_abs_err %.3e (tol 1e-4)", what,
                    dsk_device_last_kernel(dev), cl.max_abs_err);
    }
    DSK_T_CHECK(guard_intact(lbuf, with_lse ? B : 0), "%s: lse written %s", what,
                with_lse ? "past its last sequence" : "although not given");
}

int main(void)
{
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    uint64_t id = 8000;
    /* the bf16 kernel: bf16 q and cache, even D */
    mla_case(3, 20, 576, 512, DSK_BF16, DSK_BF16, 1, id++);
    mla_case(2, 16, 576, 512, DSK_BF16, DSK_F32, 1, id++);
    mla_case(1, 129, 64, 48, DSK_BF16, DSK_F32, 1, id++);   /* 128 heads per tile, then 1 */
    mla_case(5, 3, 96, 64, DSK_BF16, DSK_F32, 0, id++);
    mla_case(2, 7, 70, 36, DSK_BF16, DSK_BF16, 1, id++);    /* dv not a multiple of 16 */
    mla_case(4, 17, 2, 2, DSK_BF16, DSK_F32, 1, id++);
    /* the f32 kernel: f32 inputs, or bf16 with odd D (the bf16 kernel declines) */
    mla_case(4, 5, 72, 40, DSK_F32, DSK_F32, 1, id++);
    mla_case(1, 1, 33, 17, DSK_F32, DSK_BF16, 1, id++);
    mla_case(3, 4, 33, 17, DSK_BF16, DSK_F32, 1, id++);
    mla_case(2, 18, 100, 100, DSK_F32, DSK_F32, 0, id++);
    /* shapes drawn from the seed: B 1..4, H 1..40, D 2..200 (odd D with bf16 inputs goes
     * to the f32 kernel), dv 1..D */
    dsk_rng shapes = dsk_t_rng(7999);
    for (int i = 0; i < 16; i++) {
        const int B = (int)dsk_rng_int(&shapes, 1, 4), H = (int)dsk_rng_int(&shapes, 1, 40);
        const int D = (int)dsk_rng_int(&shapes, 2, 200), dv = (int)dsk_rng_int(&shapes, 1, D);
        const dsk_dtype in = i % 4 == 3 ? DSK_F32 : DSK_BF16, out = dsk_rng_int(&shapes, 0, 1) ? DSK_BF16 : DSK_F32;
        mla_case(B, H, D, dv, in, out, (int)dsk_rng_int(&shapes, 0, 1), id++);
    }
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
