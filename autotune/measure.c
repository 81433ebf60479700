/* autotune/measure.c: `dsk tune --measure`: candidates in the model's order on a device.
 *
 * emu:GPU  each candidate runs in the PTX emulator on a reduced shape that keeps its
 *          tile and ragged tails (at most 2 tiles + a tail per dimension, K <= 384),
 *          and is compared with the reference: the emulator verifies, it does not time.
 * cuda:N   timing with device events needs a timed launch of a chosen configuration,
 *          which the cuda backend does not have yet: answered as unsupported.
 * The run of one chosen configuration goes through dsk_ptx_gemm_fp8_run() (ptx/). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "dsk/dsk.h"
#include "model_internal.h"

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_normalish(uint64_t *s)
{
    /* Sum of 4 uniforms, centred: mean 0, variance 1/3; rich enough for a check. */
    float v = 0;
    for (int i = 0; i < 4; i++) v += (float)(rng_next(s) >> 40) / (float)(1 << 24);
    return v - 2.0f;
}

/* Verifies one configuration on a reduced shape against the reference. *diff gets
 * DESIGN.md's metric. Tolerance: both sides compute exact f32/f64 sums of the same FP8
 * products and round once to bf16, so any difference beyond bf16 rounding (2^-8
 * relative, diff ~1e-5 over a tile) is a wrong result: 1e-4 is the bar. */
static dsk_status verify_one(dsk_device *dev, const dsk_tune_candidate *c, const dsk_tune_gemm_shape *full,
                             uint64_t seed, double *diff)
{
    long long m = full->m, n = full->n, k = full->k;
    long long mcap = 2LL * c->tile.block_m + 5, ncap = 2LL * c->tile.block_n + 8;
    if (m > mcap) m = mcap;
    if (n > ncap) n = ncap;
    if (k > 384) k = 384;
    long long kb = k / 128, nb = (n + 127) / 128;
    dsk_status st = DSK_OK;
    dsk_tensor x, w, a, as, b, bs, d, dref;
    memset(&x, 0, sizeof x);
    int64_t sx[2] = {m, k}, sw[2] = {n, k}, sas[2] = {m, kb}, sbs[2] = {nb, kb}, sd[2] = {m, n};
    dsk_tensor *all[] = {&x, &w, &a, &as, &b, &bs, &d, &dref};
    for (int i = 0; i < 8; i++) memset(all[i], 0, sizeof *all[i]);
    if ((st = dsk_tensor_alloc(NULL, DSK_F32, 2, sx, &x)) || (st = dsk_tensor_alloc(NULL, DSK_F32, 2, sw, &w)) ||
        (st = dsk_tensor_alloc(NULL, DSK_E4M3, 2, sx, &a)) || (st = dsk_tensor_alloc(NULL, DSK_F32, 2, sas, &as)) ||
        (st = dsk_tensor_alloc(NULL, DSK_E4M3, 2, sw, &b)) || (st = dsk_tensor_alloc(NULL, DSK_F32, 2, sbs, &bs)) ||
        (st = dsk_tensor_alloc(NULL, DSK_BF16, 2, sd, &d)) || (st = dsk_tensor_alloc(NULL, DSK_BF16, 2, sd, &dref)))
        goto done;
    for (long long i = 0; i < m * k; i++) ((float *)x.data)[i] = rng_normalish(&seed);
    for (long long i = 0; i < n * k; i++) ((float *)w.data)[i] = rng_normalish(&seed);
    if ((st = dsk_quant_act_fp8_ref(&x, &a, &as)) || (st = dsk_quant_weight_fp8(&w, &b, &bs))) goto done;
    memset(d.data, 0xFF, dsk_tensor_nbytes(&d));  /* poison: unwritten elements are NaN */
    dsk_gemm_fp8_args args = {DSK_GEMM_DENSE, &a, &as, &b, &bs, &dref, NULL, NULL};
    if ((st = dsk_gemm_fp8_ref(&args))) goto done;
    args.d = &d;
    if ((st = dsk_ptx_gemm_fp8_run(dev, &c->tile, &args))) goto done;
    double xy = 0, xx = 0;
    for (long long i = 0; i < m * n; i++) {
        double p = dsk_bf16_to_f32(((uint16_t *)d.data)[i]), q = dsk_bf16_to_f32(((uint16_t *)dref.data)[i]);
        if (!isfinite(p)) {
            xy = NAN;
            break;
        }
        xy += p * q;
        xx += p * p + q * q;
    }
    *diff = isnan(xy) ? INFINITY : xx > 0 ? 1 - 2 * xy / xx : 0;
done:
    for (int i = 0; i < 8; i++) dsk_tensor_free(all[i]);
    return st;
}

static void progress_bar(void *out, int done, int total, const char *what)
{
    if (!out) return;
    FILE *f = out;
    int w = 30, fill = total ? done * w / total : w;
    fprintf(f, "\r[%.*s%*s] %d/%d %-40.40s", fill, "##############################", w - fill, "", done, total, what);
    if (done == total) fputc('\n', f);
    fflush(f);
}

dsk_status dsk_tune_measure(const dsk_gpu *g, const char *device, dsk_tune_result *r,
                            const int *which, int count, void *progress)
{
    const char *fn = "dsk_tune_measure";
    if (!g || !device || !r) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if (count < 1 || count > r->n) count = r->n;
    for (int i = 0; which && i < count; i++)
        if (which[i] < 0 || which[i] >= r->n)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: which[%d] = %d is outside [0, %d)", fn, i, which[i], r->n);
    if (!strncmp(device, "cuda:", 5) || !strncmp(device, "hip:", 4))
        return dsk_fail(DSK_ERR_UNSUPPORTED,
                        "%s: timing on %s needs a timed launch of a chosen configuration (device events, "
                        "rotating buffers larger than L2), which the %s backend does not provide yet; the "
                        "ranking above is the model's prediction", fn, device, !strncmp(device, "cuda:", 5) ? "cuda" : "hip");
    if (strncmp(device, "emu:", 4))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: device '%s': expected emu:GPU (verify in the emulator) or "
                                             "cuda:N (time)", fn, device);
    if (r->shape.layout != DSK_GEMM_DENSE)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: emulator verification covers the dense layout only", fn);
    dsk_device *dev;
    dsk_status os = dsk_device_open(device, &dev);
    if (os)
        return dsk_fail_prefix(os, "%s: verifying candidates on %s needs the PTX emulator's backend (emu/); "
                                   "nothing was run and the ranking is the model's prediction", fn, device);
    dsk_status st = DSK_OK;
    int best = -1;
    for (int i = 0; i < count && !st; i++) {
        dsk_tune_candidate *c = &r->cand[which ? which[i] : i];
        progress_bar(progress, i, count, c->kernel);
        double diff = 0;
        st = verify_one(dev, c, &r->shape, 0x5eed0000u + (uint64_t)i, &diff);
        if (st) {
            st = dsk_fail_prefix(st, "%s: %s on %s", fn, c->kernel, device);
            break;
        }
        if (!(diff <= 1e-4)) {
            st = dsk_fail(DSK_ERR_CHECK, "%s: %s on %s differs from the reference: diff %.3g > 1e-4 "
                                         "(reduced shape of M,N,K = %lld,%lld,%lld)", fn, c->kernel,
                          device, diff, r->shape.m, r->shape.n, r->shape.k);
            break;
        }
        c->verified = 1;
        if (best < 0) best = (int)(c - r->cand);
    }
    progress_bar(progress, count, count, st ? "stopped" : "done");
    dsk_device_close(dev);
    if (st || best < 0) return st;
    /* The model's best verified candidate is the winner on the emulator (no timing). */
    dsk_tune_cache_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.gpu, sizeof e.gpu, "%s", g->name);
    snprintf(e.driver, sizeof e.driver, "emu");
    snprintf(e.op, sizeof e.op, "gemm_fp8");
    dsk_tune_shape_class(&r->shape, e.shape_class, sizeof e.shape_class);
    snprintf(e.kernel, sizeof e.kernel, "%s", r->cand[best].kernel);
    e.measured_us = 0;
    snprintf(e.source, sizeof e.source, "emulator");
    return dsk_tune_cache_store(&e, NULL);
}
