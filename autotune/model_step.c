/* autotune/model_step.c: the predicted time of one forward step of a DeepSeek-V3-class
 * model on one GPU, op by op: FP8 GEMMs through the tuner (its best configuration's
 * predicted time), everything without a tuned dsk kernel (MLA, MoE experts, lm_head,
 * elementwise layers) by its roofline, marked so.
 *
 * Scope (docs/MODEL.md): the whole model's work on one GPU's resources (a data-parallel
 * share of a multi-GPU deployment scales every op alike); memory capacity, all-to-all
 * and tensor-parallel communication are not modelled. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"
#include "model_internal.h"

/* DeepSeek-V3's architecture (config.json of deepseek-ai/DeepSeek-V3). */
typedef struct v3_cfg {
    int layers, dense_layers, hidden, q_lora, kv_lora, heads, qk_nope, qk_rope, v_head;
    int dense_inter, moe_inter, experts, top_k, shared, vocab;
} v3_cfg;

static const v3_cfg V3 = {
    .layers = 61, .dense_layers = 3, .hidden = 7168, .q_lora = 1536, .kv_lora = 512,
    .heads = 128, .qk_nope = 128, .qk_rope = 64, .v_head = 128, .dense_inter = 18432,
    .moe_inter = 2048, .experts = 256, .top_k = 8, .shared = 1, .vocab = 129280,
};

static dsk_status find_model(const char *fn, const char *model, const v3_cfg **out)
{
    if (model && (!strcasecmp(model, "deepseek-v3") || !strcasecmp(model, "deepseek-r1"))) {
        *out = &V3;
        return DSK_OK;
    }
    return dsk_fail(DSK_ERR_NOT_FOUND, "%s: unknown model '%s'; known models: deepseek-v3, deepseek-r1",
                    fn, model ? model : "(null)");
}

typedef struct gemm_def { const char *name; long long n, k; int layers; } gemm_def;

/* The FP8 GEMMs of a step (M = tokens): fills defs, returns the count. */
static int step_gemms(const v3_cfg *c, dsk_step_phase ph, gemm_def *d)
{
    int moe_layers = c->layers - c->dense_layers, n = 0;
    d[n++] = (gemm_def){"q_a_proj", c->q_lora, c->hidden, c->layers};
    d[n++] = (gemm_def){"kv_a_proj", c->kv_lora + c->qk_rope, c->hidden, c->layers};
    d[n++] = (gemm_def){"q_b_proj", (long long)c->heads * (c->qk_nope + c->qk_rope), c->q_lora, c->layers};
    if (ph == DSK_PHASE_PREFILL)
        d[n++] = (gemm_def){"kv_b_proj", (long long)c->heads * (c->qk_nope + c->v_head), c->kv_lora, c->layers};
    d[n++] = (gemm_def){"o_proj", c->hidden, (long long)c->heads * c->v_head, c->layers};
    d[n++] = (gemm_def){"dense_gate_up", 2LL * c->dense_inter, c->hidden, c->dense_layers};
    d[n++] = (gemm_def){"dense_down", c->hidden, c->dense_inter, c->dense_layers};
    d[n++] = (gemm_def){"shared_gate_up", 2LL * c->moe_inter * c->shared, c->hidden, moe_layers};
    d[n++] = (gemm_def){"shared_down", c->hidden, (long long)c->moe_inter * c->shared, moe_layers};
    return n;
}

static dsk_step_op *new_op(dsk_step_point *p, const char *name, int layers, int roofline)
{
    dsk_step_op *o = &p->ops[p->n_ops++];
    memset(o, 0, sizeof *o);
    snprintf(o->op, sizeof o->op, "%s", name);
    o->layers = layers;
    o->roofline = roofline;
    return o;
}

static void roof(const dsk_gpu *g, dsk_step_op *o, double flops_per_layer, double bytes_per_layer,
                 double peak, double frac)
{
    o->flops = flops_per_layer * o->layers;
    o->bytes = bytes_per_layer * o->layers;
    o->us = dsk_roofline_us(g, flops_per_layer, bytes_per_layer, peak, frac, &o->bound) * o->layers;
}

dsk_status dsk_tune_step(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch,
                         int ctx, dsk_step_point *out)
{
    const char *fn = "dsk_tune_step";
    if (!g || !out) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: g and out must not be NULL", fn);
    const v3_cfg *c;
    DSK_TRY(find_model(fn, model, &c));
    if (phase != DSK_PHASE_DECODE && phase != DSK_PHASE_PREFILL)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: phase %d is neither decode nor prefill", fn, (int)phase);
    if (batch < 1 || batch > 1 << 20)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: batch = %d, expected 1..%d", fn, batch, 1 << 20);
    if (ctx < 1 || ctx > 1 << 20)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: ctx = %d, expected 1..%d", fn, ctx, 1 << 20);
    memset(out, 0, sizeof *out);
    out->batch = batch;

    const double T = phase == DSK_PHASE_DECODE ? batch : (double)batch * ctx;  /* tokens */
    const int moe_layers = c->layers - c->dense_layers;
    const double fp8_peak = g->fp8_tflops.v > 0 ? g->fp8_tflops.v : g->bf16_tflops.v;
    const double fp8_frac = g->fp8_tflops.v > 0 ? g->cal_gemm_fp8.v : g->cal_gemm_bf16.v;
    const double bf16 = g->bf16_tflops.v;
    dsk_arch arch;
    int tunable = dsk_gpu_ptx_arch(g, &arch) == DSK_OK;
    dsk_clear_error();

    /* Elementwise layers of the attention block: norms, RoPE, activation quantization
     * (bf16 in and out; FLOPs negligible). */
    dsk_step_op *o = new_op(out, "attn_norm_rope", c->layers, 1);
    o->shape[0] = (long long)T;
    o->shape[1] = c->hidden;
    o->shape_rank = 2;
    double w = c->hidden + c->q_lora + c->kv_lora + (double)c->heads * c->qk_rope + c->qk_rope;
    roof(g, o, 0, T * w * 4, bf16, g->cal_gemm_bf16.v);

    /* FP8 GEMMs through the tuner. */
    gemm_def defs[16];
    int nd = step_gemms(c, phase, defs);
    for (int i = 0; i < nd; i++) {
        o = new_op(out, defs[i].name, defs[i].layers, !tunable);
        dsk_tune_gemm_shape s = {(long long)T, defs[i].n, defs[i].k, 1, DSK_GEMM_DENSE};
        o->shape[0] = s.m;
        o->shape[1] = s.n;
        o->shape[2] = s.k;
        o->shape_rank = 3;
        double flops = 2.0 * s.m * s.n * s.k;
        double bytes = (double)s.m * s.k + (double)s.n * s.k + 2.0 * s.m * s.n;
        if (tunable) {
            dsk_tune_result r;
            DSK_TRY(dsk_tune_gemm(g, &s, &r));
            o->us = r.cand[0].pred.us * o->layers;
            o->bound = r.cand[0].pred.bound;
            o->flops = flops * o->layers;
            o->bytes = r.cand[0].pred.dram_bytes * o->layers;
            snprintf(o->kernel, sizeof o->kernel, "%s", r.cand[0].kernel);
            dsk_tune_result_free(&r);
        } else {
            roof(g, o, flops, bytes, fp8_peak, fp8_frac);
        }
    }

    /* MLA core. Decode (absorbed): q_nope . W_UK and out . W_UV are per-head bf16 BMMs
     * with the weights dequantized to bf16; attention reads each sequence's latent cache
     * of ctx x (kv_lora + rope) bf16 once for all 128 heads:
     *   FLOPs = 2 T H ctx (576 + 512), bytes = B ctx 576 x 2 (~242 FLOP/B).
     * Prefill (not absorbed): causal attention over q, k of 192 and v of 128. */
    const double dqk = c->kv_lora + c->qk_rope, H = c->heads;
    if (phase == DSK_PHASE_DECODE) {
        double bmm_flops = 2.0 * T * H * c->qk_nope * c->kv_lora;
        double bmm_bytes = 2.0 * H * c->qk_nope * c->kv_lora + 2.0 * T * H * (c->qk_nope + c->kv_lora);
        o = new_op(out, "mla_absorb_q", c->layers, 1);
        o->shape[0] = (long long)T, o->shape[1] = c->heads, o->shape[2] = c->qk_nope, o->shape[3] = c->kv_lora;
        o->shape_rank = 4;
        roof(g, o, bmm_flops, bmm_bytes, bf16, g->cal_gemm_bf16.v);
        o = new_op(out, "mla_attn_decode", c->layers, 1);
        o->shape[0] = batch, o->shape[1] = ctx, o->shape[2] = c->heads, o->shape[3] = (long long)dqk;
        o->shape_rank = 4;
        double af = 2.0 * T * H * ctx * (dqk + c->kv_lora);
        double ab = (double)batch * ctx * dqk * 2 + T * H * (dqk + c->kv_lora) * 2;
        roof(g, o, af, ab, bf16, g->cal_mla.v);
        o = new_op(out, "mla_absorb_o", c->layers, 1);
        o->shape[0] = (long long)T, o->shape[1] = c->heads, o->shape[2] = c->kv_lora, o->shape[3] = c->v_head;
        o->shape_rank = 4;
        roof(g, o, bmm_flops, bmm_bytes, bf16, g->cal_gemm_bf16.v);
    } else {
        o = new_op(out, "mla_attn_prefill", c->layers, 1);
        o->shape[0] = batch, o->shape[1] = ctx, o->shape[2] = c->heads, o->shape[3] = c->qk_nope + c->qk_rope;
        o->shape_rank = 4;
        double pairs = (double)batch * ctx * (ctx + 1.0) / 2.0;
        double af = 2.0 * H * pairs * (c->qk_nope + c->qk_rope + c->v_head);
        double ab = T * H * (2.0 * (c->qk_nope + c->qk_rope) + 2.0 * c->v_head) * 2;
        roof(g, o, af, ab, bf16, g->cal_attn.v);
    }

    /* MoE: router (bf16 gate), routed experts as grouped FP8 GEMMs (roofline: every
     * expert touched reads its three matrices once; tokens per expert T k / E), and the
     * permute/combine traffic. Expected distinct experts for T tokens choosing k of E:
     * E (1 - (1 - k/E)^T). */
    o = new_op(out, "moe_router", moe_layers, 1);
    o->shape[0] = (long long)T, o->shape[1] = c->experts, o->shape[2] = c->hidden;
    o->shape_rank = 3;
    roof(g, o, 2.0 * T * c->experts * c->hidden, 2.0 * c->experts * c->hidden + 2.0 * T * c->hidden, bf16,
         g->cal_gemm_bf16.v);
    o = new_op(out, "moe_experts", moe_layers, 1);
    double touched = c->experts * (1.0 - pow(1.0 - (double)c->top_k / c->experts, T));
    double per_expert = 3.0 * c->moe_inter * c->hidden;
    o->shape[0] = (long long)ceil(T * c->top_k / c->experts);
    o->shape[1] = c->experts;
    o->shape[2] = c->moe_inter;
    o->shape[3] = c->hidden;
    o->shape_rank = 4;
    double ef = 2.0 * T * c->top_k * per_expert;
    double eb = touched * per_expert * (1.0 + 4.0 / (128.0 * 128.0)) +
                T * c->top_k * (c->hidden + 2.0 * 2 * c->moe_inter + c->moe_inter + 2.0 * c->hidden);
    roof(g, o, ef, eb, fp8_peak, fp8_frac);
    o = new_op(out, "moe_permute_combine", moe_layers, 1);
    o->shape[0] = (long long)T, o->shape[1] = c->top_k, o->shape[2] = c->hidden;
    o->shape_rank = 3;
    roof(g, o, 0, T * c->top_k * c->hidden * 6.0, bf16, g->cal_gemm_bf16.v);
    o = new_op(out, "ffn_swiglu", c->layers, 1);
    o->shape[0] = (long long)T, o->shape[1] = 2LL * c->moe_inter;
    o->shape_rank = 2;
    roof(g, o, 0, T * (3.0 * c->moe_inter * (1 + c->top_k)) * 2, bf16, g->cal_gemm_bf16.v);

    /* Final norm + lm_head (bf16 weights in V3), on the last token of each sequence. */
    o = new_op(out, "lm_head", 1, 1);
    o->shape[0] = batch, o->shape[1] = c->vocab, o->shape[2] = c->hidden;
    o->shape_rank = 3;
    roof(g, o, 2.0 * batch * c->vocab * c->hidden,
         2.0 * c->vocab * c->hidden + 2.0 * batch * c->hidden + 4.0 * batch * c->vocab, bf16,
         g->cal_gemm_bf16.v);

    double by_bound[DSK_BOUND_L2 + 1] = {0};
    for (int i = 0; i < out->n_ops; i++) {
        out->step_us += out->ops[i].us;
        by_bound[out->ops[i].bound] += out->ops[i].us;
    }
    int b = 0;
    for (int i = 1; i <= DSK_BOUND_L2; i++)
        if (by_bound[i] > by_bound[b]) b = i;
    out->bound = (dsk_tune_bound)b;
    out->compute_share = by_bound[DSK_BOUND_COMPUTE] / out->step_us;
    double tokens = phase == DSK_PHASE_DECODE ? batch : (double)batch * ctx;
    out->tokens_per_s = tokens / (out->step_us * 1e-6);
    return DSK_OK;
}

dsk_status dsk_tune_model_gemms(const char *model, dsk_step_phase phase, int batch, int ctx,
                                dsk_tune_gemm_shape *shapes, char (*names)[48], int cap, int *n)
{
    const char *fn = "dsk_tune_model_gemms";
    const v3_cfg *c;
    DSK_TRY(find_model(fn, model, &c));
    if (!shapes || !names || !n) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if (batch < 1 || ctx < 1) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: batch and ctx must be >= 1", fn);
    gemm_def defs[16];
    int nd = step_gemms(c, phase, defs);
    if (nd > cap) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: cap %d < %d shapes", fn, cap, nd);
    long long m = phase == DSK_PHASE_DECODE ? batch : (long long)batch * ctx;
    for (int i = 0; i < nd; i++) {
        shapes[i] = (dsk_tune_gemm_shape){m, defs[i].n, defs[i].k, 1, DSK_GEMM_DENSE};
        snprintf(names[i], 48, "%s", defs[i].name);
    }
    *n = nd;
    return DSK_OK;
}
