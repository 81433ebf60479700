/* cpu/layers_cpu.c: activation quantization (1x128), RMSNorm, RoPE and SwiGLU on the cpu
 * backend: the framework (row split over the thread pool, ISA dispatch) and the portable
 * C level. The row kernels' contract is in cpu/layers_internal.h.
 *
 * Variants, best first (DSK_VERBOSE=dispatch prints why each declines); kernel names are
 * <op>_cpu_<level>, e.g. quant_act_fp8_cpu_avx2:
 *   avx512   16 lanes, masked tails (cpu/layers_avx512.c)
 *   avx2     8 lanes, C tails (cpu/layers_avx2.c)
 *   scalar   plain C (below)
 * The quantization is bit-exact with dsk_quant_act_fp8_ref at every level (the same f32
 * operations; the encoder of layers_internal.h, equal to core/dtype.c's). RoPE's cos and
 * sin come from f64 per token (positions reach 10^5, too far for an f32 argument) and
 * are shared by the token's heads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/layers_internal.h"
#include "cpu/ops_internal.h"

/* Elements per task: about 10-20 us of vector work, enough to pay for handing rows to
 * another worker; fewer elements run on the calling thread alone (decode). */
#define ELEMS_PER_TASK 16384

/* ---- portable C level ---- */
static void quant_row_scalar(const void *x, int bf, int64_t K, uint8_t *q, float *s, int64_t ss)
{
    for (int64_t k0 = 0; k0 < K; k0 += 128) {
        const int64_t k1 = k0 + 128 < K ? k0 + 128 : K;
        float amax = 0;
        for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf(dsk_cpu_ld(x, bf, k)));
        const float sc = fmaxf(amax, DSK_CPU_AMAX_FLOOR) / DSK_CPU_E4M3_MAX;
        for (int64_t k = k0; k < k1; k++) q[k] = dsk_cpu_e4m3_encode(dsk_cpu_ld(x, bf, k) / sc);
        s[(k0 / 128) * ss] = sc;
    }
}

static void rmsnorm_row_scalar(const void *x, int xb, const void *w, int wb, void *y, int yb, int64_t n, float eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = dsk_cpu_ld(x, xb, i);
        ss += v * v;
    }
    const float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) dsk_cpu_store_out(y, i, yb, dsk_cpu_ld(x, xb, i) * inv * dsk_cpu_ld(w, wb, i));
}

static void swiglu_row_scalar(const void *g, const void *u, int ib, void *y, int yb, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float gv = dsk_cpu_ld(g, ib, i);
        dsk_cpu_store_out(y, i, yb, gv / (1.0f + expf(-gv)) * dsk_cpu_ld(u, ib, i));
    }
}

static void rope_row_scalar(void *x, int bf, const float *cs2, const float *sn2, int64_t half)
{
    for (int64_t i = 0; i < half; i++) {
        const float re = dsk_cpu_ld(x, bf, 2 * i), im = dsk_cpu_ld(x, bf, 2 * i + 1);
        dsk_cpu_store_out(x, 2 * i, bf, re * cs2[2 * i] + im * sn2[2 * i]);
        dsk_cpu_store_out(x, 2 * i + 1, bf, im * cs2[2 * i + 1] + re * sn2[2 * i + 1]);
    }
}

const cpu_layer_kernels dsk_cpu_layers_scalar = {
    .isa_name = "scalar", .isa = DSK_CPU_SCALAR,
    .quant_row = quant_row_scalar,
    .rmsnorm_row = rmsnorm_row_scalar,
    .swiglu_row = swiglu_row_scalar,
    .rope_row = rope_row_scalar,
};

/* ---- framework ---- */
static const cpu_layer_kernels *const layer_levels[] = {&dsk_cpu_layers_avx512, &dsk_cpu_layers_avx2,
                                                        &dsk_cpu_layers_scalar};

/* The first level of the list that runs here; names the kernel on dev as <op>_cpu_<level>. */
static const cpu_layer_kernels *layer_pick(dsk_device *dev, const char *op)
{
    char why[128], name[96];
    const cpu_layer_kernels *k = &dsk_cpu_layers_scalar;
    for (size_t i = 0; i < sizeof layer_levels / sizeof layer_levels[0]; i++) {
        snprintf(name, sizeof name, "%s_cpu_%s", op, layer_levels[i]->isa_name);
        if (dsk_cpu_isa_declines(layer_levels[i]->isa, why, sizeof why)) {
            dsk_cpu_dispatch_note(op, name, why);
            continue;
        }
        dsk_cpu_dispatch_note(op, name, NULL);
        k = layer_levels[i];
        break;
    }
    snprintf(name, sizeof name, "%s_cpu_%s", op, k->isa_name);
    dsk_device_set_kernel(dev, name);
    return k;
}

typedef struct rows_ctx {
    const cpu_layer_kernels *k;
    int64_t rows, per_task;
    const void *a;          /* op arguments */
    const double *freqs;    /* RoPE */
} rows_ctx;

static void run_rows(rows_ctx *c, int64_t row_elems, dsk_pool_fn fn)
{
    int64_t per = ELEMS_PER_TASK / (row_elems > 0 ? row_elems : 1);
    c->per_task = per > 0 ? per : 1;
    dsk_threadpool_run(dsk_threadpool_default(), (c->rows + c->per_task - 1) / c->per_task, fn, c);
}

static inline void *row_ptr(const dsk_tensor *t, int64_t r)
{
    return (char *)t->data + (size_t)(r * t->stride[0]) * dsk_dtype_size(t->dtype);
}

#define FOR_ROWS(c, task, r) \
    for (int64_t r = (task) * (c)->per_task; r < (c)->rows && r < ((task) + 1) * (c)->per_task; r++)

/* ---- activation quantization ---- */
typedef struct quant_args { const dsk_tensor *x, *q, *s; } quant_args;

static void quant_task(void *ctx, int64_t task, int worker)
{
    (void)worker;
    const rows_ctx *c = ctx;
    const quant_args *a = c->a;
    FOR_ROWS(c, task, m)
        c->k->quant_row(row_ptr(a->x, m), a->x->dtype == DSK_BF16, a->x->shape[1], row_ptr(a->q, m),
                        (float *)a->s->data + m * a->s->stride[0], a->s->stride[1]);
}

dsk_status dsk_cpu_quant_act(dsk_device *dev, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s)
{
    if (x->stride[1] != 1 || q->stride[1] != 1)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_quant_act_fp8 (cpu): x and q need last stride 1, got %lld and %lld",
                        (long long)x->stride[1], (long long)q->stride[1]);
    quant_args a = {x, q, s};
    rows_ctx c = {.k = layer_pick(dev, "quant_act_fp8"), .rows = x->shape[0], .a = &a};
    run_rows(&c, x->shape[1], quant_task);
    return DSK_OK;
}

/* ---- RMSNorm ---- */
static void rmsnorm_task(void *ctx, int64_t task, int worker)
{
    (void)worker;
    const rows_ctx *c = ctx;
    const dsk_rmsnorm_args *a = c->a;
    FOR_ROWS(c, task, t)
        c->k->rmsnorm_row(row_ptr(a->x, t), a->x->dtype == DSK_BF16, a->weight->data, a->weight->dtype == DSK_BF16,
                          row_ptr(a->y, t), a->y->dtype == DSK_BF16, a->x->shape[1], a->eps);
}

dsk_status dsk_cpu_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a)
{
    rows_ctx c = {.k = layer_pick(dev, "rmsnorm"), .rows = a->x->shape[0], .a = a};
    run_rows(&c, a->x->shape[1], rmsnorm_task);
    return DSK_OK;
}

/* ---- RoPE ---- */
static void rope_task(void *ctx, int64_t task, int worker)
{
    (void)worker;
    const rows_ctx *c = ctx;
    const dsk_rope_args *a = c->a;
    dsk_tensor *x = a->x;
    const int64_t nh = x->shape[1], half = x->shape[2] / 2;
    const int bf16 = x->dtype == DSK_BF16;
    float cs2[1024], sn2[1024];   /* dim <= 1024 (checked below) */
    FOR_ROWS(c, task, t) {
        const double pos = ((const int32_t *)a->positions->data)[t * a->positions->stride[0]];
        for (int64_t i = 0; i < half; i++) {
            const float cv = (float)(cos(pos * c->freqs[i]) * a->p.attn_factor);
            const float sv = (float)(sin(pos * c->freqs[i]) * a->p.attn_factor);
            cs2[2 * i] = cs2[2 * i + 1] = cv;
            sn2[2 * i] = -sv;
            sn2[2 * i + 1] = sv;
        }
        for (int64_t h = 0; h < nh; h++)
            c->k->rope_row((char *)x->data + (size_t)(t * x->stride[0] + h * x->stride[1]) * dsk_dtype_size(x->dtype),
                           bf16, cs2, sn2, half);
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
    rows_ctx c = {.k = layer_pick(dev, "rope"), .rows = a->x->shape[0], .a = a, .freqs = freqs};
    /* the per-token cos/sin (f64) weigh like a few heads of rotation */
    run_rows(&c, (a->x->shape[1] + 8) * dim, rope_task);
    free(freqs);
    return DSK_OK;
}

/* ---- SwiGLU ---- */
static void swiglu_task(void *ctx, int64_t task, int worker)
{
    (void)worker;
    const rows_ctx *c = ctx;
    const dsk_swiglu_args *a = c->a;
    const int64_t I = a->y->shape[1];
    const int ib = a->gate_up->dtype == DSK_BF16;
    FOR_ROWS(c, task, t) {
        const char *g = row_ptr(a->gate_up, t);
        c->k->swiglu_row(g, g + (size_t)I * dsk_dtype_size(a->gate_up->dtype), ib, row_ptr(a->y, t),
                         a->y->dtype == DSK_BF16, I);
    }
}

dsk_status dsk_cpu_swiglu(dsk_device *dev, const dsk_swiglu_args *a)
{
    rows_ctx c = {.k = layer_pick(dev, "swiglu"), .rows = a->y->shape[0], .a = a};
    run_rows(&c, 3 * a->y->shape[1], swiglu_task);
    return DSK_OK;
}
