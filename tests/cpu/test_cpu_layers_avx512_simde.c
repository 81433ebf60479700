/* tests/cpu/test_cpu_layers_avx512_simde.c: the avx512 level of the layer row kernels
 * (cpu/layers_avx512.c) on a CPU without AVX-512: the same source compiled against SIMDe's
 * portable AVX-512 (tests/cpu/simde/immintrin.h; built only when libsimde-dev is
 * installed), its rows compared with the scalar level's on seeded random inputs: widths
 * 1..3000 (masked tails), f32 and bf16 operands, outputs poisoned and guarded past the
 * row (a masked store that writes a lane too many fails). The quantization must match
 * the scalar level byte for byte (which test_cpu_ops holds to the reference), with NaN,
 * infinities, zeros of both signs, f32 subnormals and rows anchored at 448 (scale 1);
 * the others within the tolerances of test_cpu_ops (f32: 1e-6 of max|y|, bf16: one ulp).
 * This checks the kernels' logic, not the hardware: SIMDe's lane semantics follow
 * Intel's descriptions, and the real instructions run where test_cpu_ops finds AVX-512. */
#include <math.h>
#include <string.h>

#include "cpu/layers_internal.h"
#include "tests/harness/harness.h"

extern const cpu_layer_kernels dsk_cpu_layers_avx512_simde;

#define CAP 4096
#define GUARD 64

static uint8_t buf[6][CAP * 4 + GUARD];

static void put(void *p, int bf, int64_t i, float v)
{
    if (bf) {
        uint32_t u;
        memcpy(&u, &v, 4);
        ((uint16_t *)p)[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    } else {
        ((float *)p)[i] = v;
    }
}

static float special(dsk_rng *r)
{
    switch (dsk_rng_int(r, 0, 11)) {
    case 0: return NAN;
    case 1: return dsk_rng_int(r, 0, 1) ? INFINITY : -INFINITY;
    case 2: return -0.0f;
    case 3: return 0.0f;
    case 4: return ldexpf((float)dsk_rng_int(r, -4, 4), -130);
    case 5: return ldexpf((float)dsk_rng_normal(r), -12);
    default: return (float)(dsk_rng_normal(r) * 3);
    }
}

/* max |got - want| <= tol * max|want| over n elements, and the guard bytes agree. */
static int close_rows(const void *got, const void *want, int bf, int64_t n, double tol, double *err)
{
    double m = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = dsk_cpu_ld(want, bf, i), g = dsk_cpu_ld(got, bf, i);
        m = fmax(m, fabs(w));
        const double d = fabs(g - w);
        e = d == d ? fmax(e, d) : INFINITY;
    }
    *err = m > 0 ? e / m : e;
    const size_t es = bf ? 2 : 4;
    return *err <= tol && !memcmp((const char *)got + es * (size_t)n, (const char *)want + es * (size_t)n, GUARD);
}

int main(void)
{
    const cpu_layer_kernels *v = &dsk_cpu_layers_avx512_simde, *s = &dsk_cpu_layers_scalar;
    dsk_rng r = dsk_t_rng(1);
    int bad[4] = {0, 0, 0, 0};
    char first[4][160] = {{0}};
    for (int it = 0; it < 2000; it++) {
        const int64_t n = dsk_rng_int(&r, 1, it % 10 == 0 ? 3000 : 300);
        const int b0 = (int)dsk_rng_int(&r, 0, 1), b1 = (int)dsk_rng_int(&r, 0, 1), b2 = (int)dsk_rng_int(&r, 0, 1);
        const int kind = it % 3;   /* 0 normal, 1 special values, 2 anchored at 448 */
        for (int k = 0; k < 6; k++) memset(buf[k], 0xff, sizeof buf[k]);
        for (int64_t i = 0; i < n; i++) {
            float x = kind == 1 ? special(&r) : (float)(dsk_rng_normal(&r) * 2);
            if (kind == 2) x = i % 128 == 0 ? 448.0f : (float)dsk_rng_uniform(&r) * 896.0f - 448.0f;
            put(buf[0], b0, i, x);
            put(buf[1], b1, i, (float)dsk_rng_normal(&r));
        }
        /* quantization: byte for byte, scales too, guards untouched */
        v->quant_row(buf[0], b0, n, buf[2], (float *)(void *)buf[3], 1);
        s->quant_row(buf[0], b0, n, buf[4], (float *)(void *)buf[5], 1);
        const size_t nb = (size_t)(n + 127) / 128;
        if ((memcmp(buf[2], buf[4], (size_t)n + GUARD) || memcmp(buf[3], buf[5], nb * 4 + GUARD)) && bad[0]++ == 0)
            snprintf(first[0], sizeof first[0], "K=%lld %s kind=%d", (long long)n, b0 ? "bf16" : "f32", kind);
        if (kind == 1) continue;   /* the float ops are compared on finite inputs */
        double e;
        /* RMSNorm, out of place then in place */
        memset(buf[2], 0xff, sizeof buf[2]);
        memset(buf[4], 0xff, sizeof buf[4]);
        v->rmsnorm_row(buf[0], b0, buf[1], b1, buf[2], b2, n, 1e-6f);
        s->rmsnorm_row(buf[0], b0, buf[1], b1, buf[4], b2, n, 1e-6f);
        if (!close_rows(buf[2], buf[4], b2, n, b2 ? 0x1p-7 : 1e-6, &e) && bad[1]++ == 0)
            snprintf(first[1], sizeof first[1], "n=%lld x %d w %d y %d: rel err %.3e", (long long)n, b0, b1, b2, e);
        memcpy(buf[5], buf[0], sizeof buf[0]);
        memset(buf[4], 0xff, sizeof buf[4]);
        v->rmsnorm_row(buf[5], b0, buf[1], b1, buf[5], b0, n, 1e-6f);
        s->rmsnorm_row(buf[0], b0, buf[1], b1, buf[4], b0, n, 1e-6f);
        if (!close_rows(buf[5], buf[4], b0, n, b0 ? 0x1p-7 : 1e-6, &e) && bad[1]++ == 0)
            snprintf(first[1], sizeof first[1], "in place n=%lld x %d: rel err %.3e", (long long)n, b0, e);
        /* SwiGLU: gates over [-18, 18] and beyond (exp clamp) */
        for (int64_t i = 0; i < n; i++) {   /* gate and up share a dtype */
            put(buf[0], b0, i, (float)(dsk_rng_normal(&r) * 6));
            put(buf[1], b0, i, (float)dsk_rng_normal(&r));
        }
        if (n > 2) put(buf[0], b0, 0, -120.0f), put(buf[0], b0, 1, 95.0f);
        memset(buf[2], 0xff, sizeof buf[2]);
        memset(buf[4], 0xff, sizeof buf[4]);
        v->swiglu_row(buf[0], buf[1], b0, buf[2], b2, n);
        s->swiglu_row(buf[0], buf[1], b0, buf[4], b2, n);
        if (!close_rows(buf[2], buf[4], b2, n, b2 ? 0x1p-7 : 1e-6, &e) && bad[2]++ == 0)
            snprintf(first[2], sizeof first[2], "n=%lld in %d out %d: rel err %.3e", (long long)n, b0, b2, e);
        /* RoPE over ceil(n/2) pairs */
        const int64_t half = (n + 1) / 2;
        static float cs2[CAP], sn2[CAP];
        for (int64_t i = 0; i < half; i++) {
            const double a = dsk_rng_uniform(&r) * 6.283185307179586;
            cs2[2 * i] = cs2[2 * i + 1] = (float)cos(a);
            sn2[2 * i] = -(float)sin(a);
            sn2[2 * i + 1] = (float)sin(a);
        }
        memset(buf[2], 0xff, sizeof buf[2]);
        for (int64_t i = 0; i < 2 * half; i++) put(buf[2], b0, i, (float)dsk_rng_normal(&r));
        memcpy(buf[4], buf[2], sizeof buf[2]);
        v->rope_row(buf[2], b0, cs2, sn2, half);
        s->rope_row(buf[4], b0, cs2, sn2, half);
        if (!close_rows(buf[2], buf[4], b0, 2 * half, b0 ? 0x1p-7 : 1e-6, &e) && bad[3]++ == 0)
            snprintf(first[3], sizeof first[3], "pairs=%lld %s: rel err %.3e", (long long)half, b0 ? "bf16" : "f32", e);
    }
    const char *names[4] = {"quant_act_fp8", "rmsnorm", "swiglu", "rope"};
    for (int k = 0; k < 4; k++)
        DSK_T_CHECK(bad[k] == 0, "%s_cpu_avx512 (SIMDe) against the scalar level: %d rows differ, first: %s", names[k],
                    bad[k], first[k]);
    return dsk_t_finish();
}
