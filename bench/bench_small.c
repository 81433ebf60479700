/* bench/bench_small.c: the elementwise layer ops `dsk run` calls around the GEMMs, on
 * DeepSeek-V3 widths, at decode (1, 4 tokens) and prefill (64, 512 tokens) token counts:
 *   quant_act_fp8  x bf16 [T, 7168] -> e4m3 [T, 7168] + f32 scales [T, 56]
 *   rmsnorm        x bf16 [T, 7168], weight bf16 [7168] -> y bf16 [T, 7168]
 *   swiglu         gate|up bf16 [T, 2 * 2048] -> y bf16 [T, 2048] (one routed expert)
 *   rope           q_pe bf16 [T, 128 heads, 64], in place, YaRN positions
 * each at every ISA level this CPU has (avx512, avx2, scalar: forced with
 * dsk_cpu_isa_set_cap for the run and restored after), plus quant_act_fp8 through the op's
 * reference (`ref`: the encoder the cpu backend used before round 3, one f32 at a time
 * through core/dtype.c). The levels of one op and token count are each other's peers in
 * the same run. Bytes counted: every input read once and every output written once in its
 * dtype; the data of one iteration is in cache for T <= 64 (these are latency-bound calls,
 * which is how decode sees them), so the roofline fraction against the streaming bandwidth
 * can pass 1 there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "cpu/cpu_internal.h"
#include "dsk/dsk.h"

#define HD 7168
#define INTER 2048
#define HEADS 128
#define ROPE_DIM 64

enum { OP_QUANT, OP_RMSNORM, OP_SWIGLU, OP_ROPE, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"quant_act_fp8", "rmsnorm", "swiglu", "rope"};
static const int tokens[] = {1, 4, 64, 512};
#define N_TOK (int)(sizeof tokens / sizeof tokens[0])
/* level: a dsk_cpu_isa value, or -1 for the op's reference */
static const int levels[] = {DSK_CPU_AVX512BF16, DSK_CPU_AVX2, DSK_CPU_SCALAR, -1};
#define N_LVL (int)(sizeof levels / sizeof levels[0])

typedef struct small_params { int op, T, level; } small_params;
static small_params params[OP_COUNT][N_TOK][N_LVL];

typedef struct small_fix {
    const small_params *p;
    dsk_device *dev;
    void *in, *out, *aux, *pos;
    dsk_tensor tin, tout, taux, tpos;
    dsk_rmsnorm_args rms;
    dsk_swiglu_args swi;
    dsk_rope_args rope;
} small_fix;

static void small_teardown(void *f)
{
    small_fix *x = f;
    dsk_bench_free(x->in);
    dsk_bench_free(x->out);
    dsk_bench_free(x->aux);
    dsk_bench_free(x->pos);
    if (x->dev) dsk_device_close(x->dev);
    free(x);
}

static void *small_setup(const void *pp, char *err, size_t len)
{
    const small_params *p = pp;
    if (p->level > (int)dsk_cpu_isa_detected()) {
        snprintf(err, len, "level %s: not on this CPU (it has %s)", dsk_cpu_isa_name((dsk_cpu_isa)p->level),
                 dsk_cpu_isa_name(dsk_cpu_isa_detected()));
        return NULL;
    }
    small_fix *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->p = p;
    const int64_t T = p->T;
    size_t in_n = 0, out_b = 0, aux_b = 64;
    switch (p->op) {
    case OP_QUANT: in_n = (size_t)T * HD; out_b = (size_t)T * HD; aux_b = 4 * (size_t)T * (HD / 128); break;
    case OP_RMSNORM: in_n = (size_t)T * HD; out_b = 2 * (size_t)T * HD; aux_b = 2 * HD; break;
    case OP_SWIGLU: in_n = (size_t)T * 2 * INTER; out_b = 2 * (size_t)T * INTER; break;
    default: in_n = (size_t)T * HEADS * ROPE_DIM; out_b = 64; break;
    }
    x->in = dsk_bench_alloc(2 * in_n);
    x->out = dsk_bench_alloc(out_b);
    x->aux = dsk_bench_alloc(aux_b);
    x->pos = dsk_bench_alloc(4 * (size_t)T);
    if (!x->in || !x->out || !x->aux || !x->pos || dsk_device_open("cpu", &x->dev) != DSK_OK) {
        snprintf(err, len, "setup: out of memory");
        small_teardown(x);
        return NULL;
    }
    dsk_bench_fill_bf16(x->in, in_n, 1);
    switch (p->op) {
    case OP_QUANT:
        x->tin = dsk_tensor_2d(x->in, DSK_BF16, T, HD);
        x->tout = dsk_tensor_2d(x->out, DSK_E4M3, T, HD);
        x->taux = dsk_tensor_2d(x->aux, DSK_F32, T, HD / 128);
        break;
    case OP_RMSNORM:
        dsk_bench_fill_bf16(x->aux, HD, 2);
        x->tin = dsk_tensor_2d(x->in, DSK_BF16, T, HD);
        x->tout = dsk_tensor_2d(x->out, DSK_BF16, T, HD);
        x->taux = dsk_tensor_1d(x->aux, DSK_BF16, HD);
        x->rms = (dsk_rmsnorm_args){&x->tin, &x->taux, &x->tout, 1e-6f};
        break;
    case OP_SWIGLU:
        x->tin = dsk_tensor_2d(x->in, DSK_BF16, T, 2 * INTER);
        x->tout = dsk_tensor_2d(x->out, DSK_BF16, T, INTER);
        x->swi = (dsk_swiglu_args){&x->tin, &x->tout};
        break;
    default:
        for (int64_t t = 0; t < T; t++) ((int32_t *)x->pos)[t] = (int32_t)(1000 + 37 * t);
        x->tin = dsk_tensor_3d(x->in, DSK_BF16, T, HEADS, ROPE_DIM);
        x->tpos = dsk_tensor_1d(x->pos, DSK_I32, T);
        x->rope = (dsk_rope_args){&x->tin, &x->tpos, dsk_rope_params_v3()};
        break;
    }
    return x;
}

static dsk_status small_call(small_fix *x, int op, int ref)
{
    switch (op) {
    case OP_QUANT: return ref ? dsk_quant_act_fp8_ref(&x->tin, &x->tout, &x->taux)
                              : dsk_quant_act_fp8(x->dev, &x->tin, &x->tout, &x->taux);
    case OP_RMSNORM: return dsk_rmsnorm(x->dev, &x->rms);
    case OP_SWIGLU: return dsk_swiglu(x->dev, &x->swi);
    default: return dsk_rope(x->dev, &x->rope);
    }
}

static void small_run(dsk_bench_state *st, void *f)
{
    small_fix *x = f;
    const small_params *p = x->p;
    const int ref = p->level < 0;
    if (!ref) dsk_cpu_isa_set_cap(p->level);
    dsk_status s = small_call(x, p->op, ref);
    if (s != DSK_OK) {
        dsk_bench_fail(st, dsk_last_error());
        while (dsk_bench_next(st)) {}
    } else {
        dsk_bench_label(st, ref ? "dsk_quant_act_fp8_ref" : dsk_device_last_kernel(x->dev));
        while (dsk_bench_next(st)) small_call(x, p->op, ref);
    }
    dsk_cpu_isa_set_cap(-1);
}

static double small_bytes(int op, double T)
{
    switch (op) {
    case OP_QUANT: return T * HD * (2 + 1) + 4 * T * (HD / 128);
    case OP_RMSNORM: return T * HD * (2 + 2) + 2 * HD;
    case OP_SWIGLU: return T * INTER * (2 * 2 + 2);
    default: return 2 * 2 * T * HEADS * ROPE_DIM + 4 * T;
    }
}

void dsk_bench_register_small(void)
{
    for (int o = 0; o < OP_COUNT; o++)
        for (int t = 0; t < N_TOK; t++)
            for (int l = 0; l < N_LVL; l++) {
                if (levels[l] < 0 && o != OP_QUANT) continue;   /* the reference peer: quant only */
                small_params *p = &params[o][t][l];
                *p = (small_params){o, tokens[t], levels[l]};
                dsk_bench b = {0};
                snprintf(b.name, sizeof b.name, "small/%s/t%d/%s", op_names[o], p->T,
                         levels[l] < 0 ? "ref" : levels[l] == DSK_CPU_AVX512BF16 ? "avx512"
                                                                                 : dsk_cpu_isa_name((dsk_cpu_isa)levels[l]));
                b.params = p;
                b.bytes = small_bytes(o, p->T);
                b.peak = DSK_PEAK_F32;
                b.setup = small_setup;
                b.teardown = small_teardown;
                b.run = small_run;
                dsk_bench_register(&b);
            }
}
