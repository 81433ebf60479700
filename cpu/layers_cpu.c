/* cpu/layers_cpu.c: activation quantization (1x128), RMSNorm, RoPE and SwiGLU on the cpu
 * backend: rows split over the thread pool, f32 arithmetic in simple loops the compiler
 * vectorizes at the baseline ISA.
 *
 * Variants: one level (portable C) for these memory-bound elementwise ops; the ISA
 * levels of cpu/ are the GEMM's and MLA's (docs/PERFORMANCE.md says so). The
 * quantization matches the reference bit for bit (same f32 operations, the same
 * round-to-nearest-even satfinite encoder of core/dtype.c). */
#include <math.h>
#include <stdlib.h>

#include "core/check.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/cpu_internal.h"
#include "cpu/ops_internal.h"

#define ROWS_PER_TASK 4

static inline float ld(const dsk_tensor *t, const void *row, int64_t i)
{
    return t->dtype == DSK_BF16 ? dsk_cpu_bf16_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

static inline void *row_ptr(const dsk_tensor *t, int64_t r)
{
    return (char *)t->data + (size_t)(r * t->stride[0]) * dsk_dtype_size(t->dtype);
}

static void run_rows(int64_t rows, dsk_pool_fn fn, void *ctx)
{
    dsk_threadpool_run(dsk_threadpool_default(), (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, fn, ctx);
}

/* ---- activation quantization ---- */
typedef struct quant_ctx { const dsk_tensor *x; dsk_tensor *q, *s; } quant_ctx;

static void quant_task(void *c, int64_t task, int worker)
{
    quant_ctx *qc = c;
    const dsk_tensor *x = qc->x;
    const int64_t M = x->shape[0], K = x->shape[1];
    for (int64_t m = task * ROWS_PER_TASK; m < M && m < (task + 1) * ROWS_PER_TASK; m++) {
        const void *xr = row_ptr(x, m);
        uint8_t *qr = row_ptr(qc->q, m);
        for (int64_t k0 = 0; k0 < K; k0 += 128) {
            const int64_t k1 = k0 + 128 < K ? k0 + 128 : K;
            float amax = 0;
            for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf(ld(x, xr, k)));
            const float sc = fmaxf(amax, 1e-4f) / 448.0f;
            for (int64_t k = k0; k < k1; k++) qr[k] = dsk_f32_to_fp8(ld(x, xr, k) / sc, DSK_E4M3);
            ((float *)qc->s->data)[m * qc->s->stride[0] + (k0 / 128) * qc->s->stride[1]] = sc;
        }
    }
}

dsk_status dsk_cpu_quant_act(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s)
{
    if (x->stride[1] != 1 || q->stride[1] != 1)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_quant_act_fp8 (cpu): x and q need last stride 1, got %lld and %lld",
                        (long long)x->stride[1], (long long)q->stride[1]);
    dsk_device_set_kernel(dev, "quant_act_fp8_cpu_c");
    quant_ctx c = {x, q, s};
    run_rows(x->shape[0], quant_task, &c);
    return DSK_OK;
}

/* ---- RMSNorm ---- */
static void rmsnorm_task(void *c, int64_t task, int worker)
{
    const dsk_rmsnorm_args *a = c;
    const int64_t T = a->x->shape[0], Hd = a->x->shape[1];
    const dsk_tensor *w = a->weight;
    for (int64_t t = task * ROWS_PER_TASK; t < T && t < (task + 1) * ROWS_PER_TASK; t++) {
        const void *xr = row_ptr(a->x, t);
        void *yr = row_ptr(a->y, t);
        float acc[8] = {0};
        int64_t c8 = Hd / 8 * 8;
        for (int64_t i = 0; i < c8; i += 8)
            for (int j = 0; j < 8; j++) {
                float v = ld(a->x, xr, i + j);
                acc[j] += v * v;
            }
        double ss = 0;
        for (int j = 0; j < 8; j++) ss += acc[j];
        for (int64_t i = c8; i < Hd; i++) {
            float v = ld(a->x, xr, i);
            ss += (double)v * v;
        }
        const float inv = (float)(1.0 / sqrt(ss / (double)Hd + (double)a->eps));
        for (int64_t i = 0; i < Hd; i++) {
            float v = ld(a->x, xr, i) * inv * ld(w, (const char *)w->data + (size_t)(i * w->stride[0]) * dsk_dtype_size(w->dtype), 0);
            dsk_cpu_store_out(yr, i, a->y->dtype == DSK_BF16, v);
        }
    }
}

dsk_status dsk_cpu_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a)
{
    dsk_device_set_kernel(dev, "rmsnorm_cpu_c");
    run_rows(a->x->shape[0], rmsnorm_task, (void *)a);
    return DSK_OK;
}

/* ---- RoPE ---- */
typedef struct rope_ctx { const dsk_rope_args *a; const double *freqs; } rope_ctx;

static void rope_task(void *c, int64_t task, int worker)
{
    const rope_ctx *rc = c;
    const dsk_rope_args *a = rc->a;
    dsk_tensor *x = a->x;
    const int64_t T = x->shape[0], nh = x->shape[1], half = x->shape[2] / 2;
    float cs[512], sn[512];   /* dim <= 1024 (checked below) */
    for (int64_t t = task * ROWS_PER_TASK; t < T && t < (task + 1) * ROWS_PER_TASK; t++) {
        const double pos = ((const int32_t *)a->positions->data)[t * a->positions->stride[0]];
        for (int64_t i = 0; i < half; i++) {
            cs[i] = (float)(cos(pos * rc->freqs[i]) * a->p.attn_factor);
            sn[i] = (float)(sin(pos * rc->freqs[i]) * a->p.attn_factor);
        }
        const int bf16 = x->dtype == DSK_BF16;
        for (int64_t h = 0; h < nh; h++) {
            void *r = (char *)x->data + (size_t)(t * x->stride[0] + h * x->stride[1]) * dsk_dtype_size(x->dtype);
            for (int64_t i = 0; i < half; i++) {
                float re = ld(x, r, 2 * i), im = ld(x, r, 2 * i + 1);
                dsk_cpu_store_out(r, 2 * i, bf16, re * cs[i] - im * sn[i]);
                dsk_cpu_store_out(r, 2 * i + 1, bf16, re * sn[i] + im * cs[i]);
            }
        }
    }
}

dsk_status dsk_cpu_rope(dsk_device *dev, const dsk_rope_args *a)
{
    const int64_t dim = a->x->shape[2];
    if (dim > 1024)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_rope (cpu): x has head width %lld, expected <= 1024", (long long)dim);
    double *freqs = malloc(sizeof(double) * (size_t)(dim / 2 > 0 ? dim / 2 : 1));
    if (!freqs) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_rope (cpu): frequencies");
    dsk_rope_freqs(&a->p, freqs);
    dsk_device_set_kernel(dev, "rope_cpu_c");
    rope_ctx c = {a, freqs};
    run_rows(a->x->shape[0], rope_task, &c);
    free(freqs);
    return DSK_OK;
}

/* ---- SwiGLU ---- */
static void swiglu_task(void *c, int64_t task, int worker)
{
    const dsk_swiglu_args *a = c;
    const int64_t T = a->y->shape[0], I = a->y->shape[1];
    const int bf16 = a->y->dtype == DSK_BF16;
    for (int64_t t = task * ROWS_PER_TASK; t < T && t < (task + 1) * ROWS_PER_TASK; t++) {
        const void *gr = row_ptr(a->gate_up, t);
        void *yr = row_ptr(a->y, t);
        for (int64_t i = 0; i < I; i++) {
            float g = ld(a->gate_up, gr, i), u = ld(a->gate_up, gr, I + i);
            dsk_cpu_store_out(yr, i, bf16, g / (1.0f + expf(-g)) * u);
        }
    }
}

dsk_status dsk_cpu_swiglu(dsk_device *dev, const dsk_swiglu_args *a)
{
    dsk_device_set_kernel(dev, "swiglu_cpu_c");
    run_rows(a->y->shape[0], swiglu_task, (void *)a);
    return DSK_OK;
}
