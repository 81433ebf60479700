/* cpu/layers_internal.h: the row kernels of the cpu backend's elementwise layer ops
 * (activation quantization, RMSNorm, SwiGLU, RoPE), one table per ISA level (internal).
 *
 * Contract of every level (cpu/layers_cpu.c splits rows over the pool and calls these):
 *   - one row per call; pointers are element-aligned, no other alignment; a flag per
 *     operand says bf16 (else f32); lengths are any value >= 0 (tails are the kernel's);
 *   - results are those of the portable C level, up to the order of a sum (RMSNorm) and
 *     the exp implementation (SwiGLU); the quantization is bit-exact with
 *     dsk_quant_act_fp8_ref (same f32 amax, scale and division, the same encoder);
 *   - bf16 stores round to nearest even, NaN kept quiet (dsk_cpu_store_out). */
#ifndef DSK_CPU_LAYERS_INTERNAL_H
#define DSK_CPU_LAYERS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu_internal.h"

typedef struct cpu_layer_kernels {
    const char *isa_name;
    dsk_cpu_isa isa;
    /* x[0, K) -> q[0, K) e4m3 in 1x128 groups; group kb's scale to s[kb * s_stride]:
     * s = max(amax, 1e-4) / 448 (f32), q = e4m3 RNE satfinite of x / s (f32 division). */
    void (*quant_row)(const void *x, int x_bf16, int64_t K, uint8_t *q, float *s, int64_t s_stride);
    /* y[i] = x[i] * inv * w[i] for i < n, inv = 1 / sqrt(sum(x^2) / n + eps), the sum in
     * f64; y may be x (every x read before y is written). */
    void (*rmsnorm_row)(const void *x, int x_bf16, const void *w, int w_bf16, void *y, int y_bf16, int64_t n,
                        float eps);
    /* y[i] = g[i] / (1 + e^-g[i]) * u[i] for i < n (g and u in one dtype). */
    void (*swiglu_row)(const void *g, const void *u, int in_bf16, void *y, int y_bf16, int64_t n);
    /* In place over x[0, 2*half): x'[j] = x[j] * cs2[j] + x[j ^ 1] * sn2[j], where
     * cs2 = (c0, c0, c1, c1, ...) and sn2 = (-s0, s0, -s1, s1, ...): each pair rotated. */
    void (*rope_row)(void *x, int bf16, const float *cs2, const float *sn2, int64_t half);
} cpu_layer_kernels;

extern const cpu_layer_kernels dsk_cpu_layers_avx512;
extern const cpu_layer_kernels dsk_cpu_layers_avx2;
extern const cpu_layer_kernels dsk_cpu_layers_scalar;

/* The quantization's constants, the reference's (gemm/quant.c). */
#define DSK_CPU_AMAX_FLOOR 1e-4f
#define DSK_CPU_E4M3_MAX 448.0f

/* f32 -> e4m3 (OCP FP8 E4M3FN: bias 7, no infinities, S.1111.111 is NaN), round to
 * nearest even, saturating to +-448: bit-exact with dsk_f32_to_fp8(v, DSK_E4M3).
 *   - NaN (any sign) -> 0x7F, as the reference;
 *   - |v| >= 2^-6 (normal e4m3): round the f32 mantissa to 3 bits by integer addition
 *     (a carry moves into the exponent, as it should), rebias the exponent 127 -> 7
 *     (subtract 120 << 3 from bits >> 20), clamp to 0x7E = 448 (everything that rounds
 *     above 448, inf included, saturates);
 *   - |v| < 2^-6 (subnormal, step 2^-9): the magnitude code is rint(|v| * 512), exact
 *     product, 0..8 (8 is the smallest normal, code 0x08, so the encoding carries on);
 *   - sign bit 7 from the f32 sign (negative zero -> 0x80).
 * The vector levels do the same steps lane-wise. */
static inline uint8_t dsk_cpu_e4m3_encode(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    const uint32_t a = u & 0x7fffffffu, sign = (u >> 24) & 0x80u;
    if (a > 0x7f800000u) return 0x7f;
    uint32_t mag;
    if (a < 0x3c800000u) {   /* 2^-6 */
        float f;
        memcpy(&f, &a, 4);
        mag = (uint32_t)rintf(f * 512.0f);
    } else {
        mag = ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3);
        if (mag > 0x7eu) mag = 0x7eu;
    }
    return (uint8_t)(sign | mag);
}

static inline float dsk_cpu_ld(const void *row, int bf16, int64_t i)
{
    return bf16 ? dsk_cpu_bf16_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

#endif
