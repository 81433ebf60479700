/* model/forward.c: the forward pass of a DeepSeek-V3-architecture model on a device,
 * through the public ops only (dsk_gemm_fp8, dsk_quant_act_fp8, dsk_rmsnorm, dsk_rope,
 * dsk_mla_prefill/decode, dsk_moe_route/permute/combine, dsk_swiglu), so the same code
 * runs on every backend. The glue between ops (embedding rows, residual adds, head
 * slicing, the latent-cache append) writes device memory directly, which needs a
 * host-memory device (cpu, emu:GPU).
 *
 * Follows DeepSeek-V3's reference inference/model.py: MLA prefill in the naive form
 * (k/v expanded through kv_b_proj), decode in the absorbed form over the latent cache
 * [c_kv | k_pe] (FlashMLA's layout: rows of kv_lora + rope, 64-token pages); MoE with
 * noaux_tc routing, the experts as grouped contiguous FP8 GEMMs over permuted tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "model/model_internal.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Activation buffers for up to `cap` tokens. Every member after pcap is a dsk_tensor
 * (free_bufs walks them from x to logits). */
typedef struct bufs {
    int64_t cap, pcap;
    dsk_tensor x, h, h8, hs;                 /* residual, normed, quantized */
    dsk_tensor qa, qa8, qas, q;              /* q_a, q [T, H*qk] */
    dsk_tensor kva, ckv, ckv8, ckvs;         /* kv_a [T, R+rope], normed latent [T, R] */
    dsk_tensor kvb, k;                       /* prefill: kv_b [T, H*(nope+v)], k [T, H, qk] */
    dsk_tensor o, o8, os, attn;              /* attention output [T, H*v], o_proj [T, hd] */
    dsk_tensor qn, qn8, qns, qabs, qd;       /* decode: q_nope [H, T, nope], [H, T, R], [T, H, R+rope] */
    dsk_tensor od, odt, od8, ods, ov;        /* decode: [T, H, R], [H, T, R], [H, T, v] */
    dsk_tensor masked;                       /* [H] i32 */
    dsk_tensor gu, act, act8, acts, mo, so;  /* MLP / shared expert */
    dsk_tensor rlog, tidx, tw;               /* router logits [T, E], topk idx/w [T, k] */
    dsk_tensor xp8, xps, midx, rmap, eoff, midx2, rmap2, eoff2; /* permuted [P, ...] */
    dsk_tensor gup, actp, actp8, actps, yp;  /* experts [P, ...] */
    dsk_tensor pos, cu, hl, hl8, hls, logits;
} bufs;

struct dsk_model_session {
    dsk_model *m;
    dsk_device *dev;
    int max_batch, max_len, pps;             /* pages per sequence */
    int batch;                               /* sequences in the cache (after prefill) */
    int32_t *lens;                           /* host: tokens in the cache per sequence */
    dsk_tensor *cache;                       /* per layer [max_batch*pps, 64, R+rope] f32 */
    dsk_tensor block_table, seq_lens;        /* [max_batch, pps], [max_batch] i32 */
    int align;                               /* MoE segment alignment */
    bufs b;
    dsk_model_profile prof[2];
    int phase;
};

const char *dsk_model_op_name(dsk_model_op op)
{
    static const char *n[DSK_MOP_COUNT] = {"embed", "rmsnorm", "quant_act", "gemm", "rope", "mla",
                                           "routing", "permute_combine", "swiglu", "glue"};
    return (unsigned)op < DSK_MOP_COUNT ? n[op] : "?";
}

int32_t dsk_model_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

const dsk_model_profile *dsk_model_session_profile(const dsk_model_session *s, int phase)
{
    return s && (phase == 0 || phase == 1) ? &s->prof[phase] : NULL;
}

/* ---- timing ---- */

static void prof_add(dsk_model_session *S, dsk_model_op op, double t)
{
    S->prof[S->phase].seconds[op] += t;
    S->prof[S->phase].calls[op]++;
}

#define RUN(S, op, expr)                                   \
    do {                                                   \
        double t0_ = now_s();                              \
        dsk_status st_ = (expr);                           \
        if (st_ == DSK_OK)                                 \
            st_ = dsk_device_sync((S)->dev);               \
        if (st_ != DSK_OK)                                 \
            return st_;                                    \
        prof_add((S), (op), now_s() - t0_);                \
    } while (0)

static dsk_status gemm(dsk_model_session *S, const char *what, dsk_gemm_layout layout, const dsk_tensor *a,
                       const dsk_tensor *as, const dsk_lin *w, dsk_tensor *d, const dsk_tensor *midx,
                       const dsk_tensor *masked, int64_t rows)
{
    dsk_gemm_fp8_args g = {.layout = layout, .a = a, .a_scale = as, .b = &w->w, .b_scale = &w->s, .d = d,
                           .m_indices = midx, .masked_m = masked};
    double t0 = now_s();
    dsk_status s = dsk_gemm_fp8(S->dev, &g);
    if (s == DSK_OK)
        s = dsk_device_sync(S->dev);
    if (s != DSK_OK)
        return dsk_fail_prefix(s, "%s", what);
    double t = now_s() - t0;
    prof_add(S, DSK_MOP_GEMM, t);
    int64_t n = w->w.shape[w->w.rank - 2], k = w->w.shape[w->w.rank - 1];
    dsk_model_profile *p = &S->prof[S->phase];
    int i = 0;
    while (i < p->n_gemm && !(!strcmp(p->gemm[i].what, what) && p->gemm[i].n == n && p->gemm[i].k == k))
        i++;
    if (i == p->n_gemm) {
        if (i == DSK_MODEL_MAX_GEMM_STATS)
            return DSK_OK;
        p->n_gemm++;
        memset(&p->gemm[i], 0, sizeof p->gemm[i]);
        snprintf(p->gemm[i].what, sizeof p->gemm[i].what, "%s", what);
        p->gemm[i].layout = layout;
        p->gemm[i].n = n;
        p->gemm[i].k = k;
    }
    dsk_model_gemm_stat *st = &p->gemm[i];
    st->calls++;
    st->rows += rows;
    st->seconds += t;
    st->flops += 2.0 * (double)rows * (double)n * (double)k;
    snprintf(st->kernel, sizeof st->kernel, "%s", dsk_device_last_kernel(S->dev));
    return DSK_OK;
}

static dsk_status quant(dsk_model_session *S, const dsk_tensor *x, dsk_tensor *q, dsk_tensor *s)
{
    RUN(S, DSK_MOP_QUANT, dsk_quant_act_fp8(S->dev, x, q, s));
    return DSK_OK;
}

static dsk_status rmsnorm(dsk_model_session *S, const dsk_tensor *x, const dsk_tensor *w, dsk_tensor *y)
{
    dsk_rmsnorm_args a = {.x = x, .weight = w, .y = y, .eps = S->m->cfg.rms_norm_eps};
    RUN(S, DSK_MOP_NORM, dsk_rmsnorm(S->dev, &a));
    return DSK_OK;
}

/* ---- views ---- */

static dsk_tensor rows(const dsk_tensor *t, int64_t n)
{
    dsk_tensor v = *t;
    v.shape[0] = n;
    return v;
}

/* Columns [c0, c0+n) of a 2-D tensor. */
static dsk_tensor cols(const dsk_tensor *t, int64_t c0, int64_t n)
{
    dsk_tensor v = *t;
    v.data = (char *)t->data + (size_t)c0 * dsk_dtype_size(t->dtype);
    v.shape[1] = n;
    return v;
}

/* [T, a*b] contiguous as [T, a, b] (or a slice [c0, c0+n) of the last dim of [T, a, b]). */
static dsk_tensor heads(const dsk_tensor *t, int64_t T, int64_t a, int64_t b, int64_t c0, int64_t n)
{
    dsk_tensor v = dsk_tensor_3d((char *)t->data + (size_t)c0 * dsk_dtype_size(t->dtype), t->dtype, T, a, n);
    v.stride[0] = t->stride[0];
    v.stride[1] = b;
    v.device = t->device;
    return v;
}

/* The first T*a rows of a [cap*a, k] buffer viewed as [a, T, k] (rank 3) or [a*T, k]. */
static dsk_tensor grp3(const dsk_tensor *t, int64_t a, int64_t T)
{
    dsk_tensor v = dsk_tensor_3d(t->data, t->dtype, a, T, t->shape[1]);
    v.device = t->device;
    return v;
}

static dsk_tensor flat2(const dsk_tensor *t, int64_t r)
{
    dsk_tensor v = dsk_tensor_2d(t->data, t->dtype, r, t->shape[1]);
    v.device = t->device;
    return v;
}

static float *F(const dsk_tensor *t) { return (float *)t->data; }

/* ---- buffers ---- */

static void free_bufs(dsk_model_session *S)
{
    dsk_tensor *first = &S->b.x, *last = &S->b.logits;
    for (dsk_tensor *t = first; t <= last; t++)
        dsk_tensor_free(t);
    memset(&S->b, 0, sizeof S->b);
}

static dsk_status ensure(dsk_model_session *S, int64_t T)
{
    if (T <= S->b.cap)
        return DSK_OK;
    free_bufs(S);
    const dsk_model_config *c = &S->m->cfg;
    dsk_device *d = S->dev;
    const int64_t hd = c->hidden_size, H = c->num_attention_heads, nope = c->qk_nope_head_dim,
                  rope = c->qk_rope_head_dim, vd = c->v_head_dim, R = c->kv_lora_rank, qk = nope + rope,
                  E = c->n_routed_experts, K = c->num_experts_per_tok;
    const int64_t Imax = c->intermediate_size > c->moe_intermediate_size * c->n_shared_experts
                             ? c->intermediate_size : c->moe_intermediate_size * (int64_t)c->n_shared_experts;
    const int64_t I = c->moe_intermediate_size, qr = c->q_lora_rank > 0 ? c->q_lora_rank : 1;
    const int64_t P = dsk_moe_permute_rows(T, (int)K, (int)E, S->align);
    bufs *b = &S->b;
#define A2(t, dt, r, cc) DSK_TRY(dsk_tensor_alloc(d, dt, 2, (int64_t[]){r, cc}, &b->t))
#define A1(t, dt, r) DSK_TRY(dsk_tensor_alloc(d, dt, 1, (int64_t[]){r}, &b->t))
    A2(x, DSK_F32, T, hd); A2(h, DSK_F32, T, hd); A2(h8, DSK_E4M3, T, hd); A2(hs, DSK_F32, T, cdiv(hd, 128));
    A2(qa, DSK_F32, T, qr); A2(qa8, DSK_E4M3, T, qr); A2(qas, DSK_F32, T, cdiv(qr, 128));
    A2(q, DSK_F32, T, H * qk);
    A2(kva, DSK_F32, T, R + rope); A2(ckv, DSK_F32, T, R); A2(ckv8, DSK_E4M3, T, R); A2(ckvs, DSK_F32, T, cdiv(R, 128));
    A2(kvb, DSK_F32, T, H * (nope + vd)); A2(k, DSK_F32, T, H * qk);
    A2(o, DSK_F32, T, H * vd); A2(o8, DSK_E4M3, T, H * vd); A2(os, DSK_F32, T, cdiv(H * vd, 128));
    A2(attn, DSK_F32, T, hd);
    A2(qn, DSK_F32, H * T, nope); A2(qn8, DSK_E4M3, H * T, nope); A2(qns, DSK_F32, H * T, cdiv(nope, 128));
    A2(qabs, DSK_F32, H * T, R); A2(qd, DSK_F32, T, H * (R + rope));
    A2(od, DSK_F32, T, H * R); A2(odt, DSK_F32, H * T, R); A2(od8, DSK_E4M3, H * T, R);
    A2(ods, DSK_F32, H * T, cdiv(R, 128)); A2(ov, DSK_F32, H * T, vd);
    A1(masked, DSK_I32, H);
    A2(gu, DSK_F32, T, 2 * Imax); A2(act, DSK_F32, T, Imax); A2(act8, DSK_E4M3, T, Imax);
    A2(acts, DSK_F32, T, cdiv(Imax, 128)); A2(mo, DSK_F32, T, hd); A2(so, DSK_F32, T, hd);
    A2(rlog, DSK_F32, T, E); A2(tidx, DSK_I32, T, K); A2(tw, DSK_F32, T, K);
    A2(xp8, DSK_E4M3, P, hd); A2(xps, DSK_F32, P, cdiv(hd, 128)); A1(midx, DSK_I32, P);
    A2(rmap, DSK_I32, T, K); A1(eoff, DSK_I32, E + 1);
    A1(midx2, DSK_I32, P); A2(rmap2, DSK_I32, T, K); A1(eoff2, DSK_I32, E + 1);
    A2(gup, DSK_F32, P, 2 * I); A2(actp, DSK_F32, P, I); A2(actp8, DSK_E4M3, P, I);
    A2(actps, DSK_F32, P, cdiv(I, 128)); A2(yp, DSK_F32, P, hd);
    A1(pos, DSK_I32, T); A1(cu, DSK_I32, S->max_batch + 1);
    A2(hl, DSK_F32, S->max_batch, hd); A2(hl8, DSK_E4M3, S->max_batch, hd);
    A2(hls, DSK_F32, S->max_batch, cdiv(hd, 128)); A2(logits, DSK_F32, S->max_batch, c->vocab_size);
#undef A1
#undef A2
    b->cap = T;
    b->pcap = P;
    return DSK_OK;
}

void dsk_model_session_free(dsk_model_session *S)
{
    if (!S)
        return;
    free_bufs(S);
    if (S->cache)
        for (int l = 0; l < S->m->cfg.num_hidden_layers; l++)
            dsk_tensor_free(&S->cache[l]);
    free(S->cache);
    dsk_tensor_free(&S->block_table);
    dsk_tensor_free(&S->seq_lens);
    free(S->lens);
    free(S);
}

dsk_status dsk_model_session_new(dsk_model *m, int max_batch, int max_len, dsk_model_session **out)
{
    const char *fn = "dsk_model_session_new";
    if (!m || !out)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m and out must be non-NULL", fn);
    *out = NULL;
    const dsk_device_props *pr = dsk_device_get_props(m->dev);
    if (!pr->host_memory)
        return dsk_fail(DSK_ERR_UNSUPPORTED,
                        "%s: device %s keeps memory off the host; the driver's glue between ops (embedding, "
                        "residual adds, cache append) runs on host-visible memory only (cpu, emu:GPU)",
                        fn, pr->name);
    if (max_batch < 1 || max_len < 1 || max_len > m->cfg.max_position_embeddings)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: max_batch = %d, max_len = %d, expected >= 1 and max_len <= "
                        "max_position_embeddings (%d)", fn, max_batch, max_len, m->cfg.max_position_embeddings);
    dsk_model_session *S = calloc(1, sizeof *S);
    if (!S)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    S->m = m;
    S->dev = m->dev;
    S->max_batch = max_batch;
    S->max_len = max_len;
    S->pps = (int)cdiv(max_len, DSK_MLA_PAGE_SIZE);
    /* GPU contiguous grouped GEMMs want each expert's rows to start at a multiple of
     * their BLOCK_M (gemm.h); the cpu backend takes any layout. */
    S->align = !strcmp(pr->backend, "cpu") ? 1 : 128;
    const dsk_model_config *c = &m->cfg;
    S->lens = calloc((size_t)max_batch, sizeof *S->lens);
    S->cache = calloc((size_t)c->num_hidden_layers, sizeof *S->cache);
    dsk_status s = S->lens && S->cache ? DSK_OK : dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    const int64_t pages = (int64_t)max_batch * S->pps, D = c->kv_lora_rank + c->qk_rope_head_dim;
    for (int l = 0; l < c->num_hidden_layers && s == DSK_OK; l++)
        s = dsk_tensor_alloc(S->dev, DSK_F32, 3, (int64_t[]){pages, DSK_MLA_PAGE_SIZE, D}, &S->cache[l]);
    if (s == DSK_OK)
        s = dsk_tensor_alloc(S->dev, DSK_I32, 2, (int64_t[]){max_batch, S->pps}, &S->block_table);
    if (s == DSK_OK)
        s = dsk_tensor_alloc(S->dev, DSK_I32, 1, (int64_t[]){max_batch}, &S->seq_lens);
    if (s == DSK_OK) {
        /* Pages interleaved across sequences (page p of sequence b is p*max_batch + b), so
         * every block table really is a scatter. */
        int32_t *bt = S->block_table.data;
        for (int b = 0; b < max_batch; b++)
            for (int p = 0; p < S->pps; p++)
                bt[b * S->pps + p] = p * max_batch + b;
    }
    if (s != DSK_OK) {
        dsk_model_session_free(S);
        return s;
    }
    *out = S;
    return DSK_OK;
}

/* ---- glue (host-visible device memory) ---- */

static dsk_status embed(dsk_model_session *S, int64_t T, const int32_t *tokens)
{
    const dsk_model *m = S->m;
    const int64_t hd = m->cfg.hidden_size;
    double t0 = now_s();
    for (int64_t t = 0; t < T; t++) {
        float *x = F(&S->b.x) + t * hd;
        const char *row = (const char *)m->embed.data + (size_t)(tokens[t] * hd) * dsk_dtype_size(m->embed.dtype);
        if (m->embed.dtype == DSK_BF16)
            for (int64_t i = 0; i < hd; i++)
                x[i] = dsk_bf16_to_f32(((const uint16_t *)row)[i]);
        else
            memcpy(x, row, sizeof(float) * (size_t)hd);
    }
    prof_add(S, DSK_MOP_EMBED, now_s() - t0);
    return DSK_OK;
}

static void add_into(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* Appends token t's latent [c_kv | k_pe] to the cache of layer l at (sequence, pos). */
static void cache_put(dsk_model_session *S, int l, int seq, int pos, const float *ckv, const float *kpe)
{
    const dsk_model_config *c = &S->m->cfg;
    const int64_t R = c->kv_lora_rank, D = R + c->qk_rope_head_dim;
    const int32_t *bt = S->block_table.data;
    int64_t page = bt[seq * S->pps + pos / DSK_MLA_PAGE_SIZE];
    float *row = F(&S->cache[l]) + (page * DSK_MLA_PAGE_SIZE + pos % DSK_MLA_PAGE_SIZE) * D;
    memcpy(row, ckv, sizeof(float) * (size_t)R);
    memcpy(row + R, kpe, sizeof(float) * (size_t)c->qk_rope_head_dim);
}

/* ---- attention ---- */

/* Shared by prefill and decode: q (roped), kva (k_pe roped in place), ckv (normed); the
 * latent of every token appended to the cache. seq_of/pos_of: host arrays per token. */
static dsk_status mla_common(dsk_model_session *S, int l, int64_t T, const int *seq_of, const int32_t *pos_of)
{
    const dsk_model_config *c = &S->m->cfg;
    const dsk_layer_w *L = &S->m->layers[l];
    bufs *b = &S->b;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank;
    dsk_tensor h8 = rows(&b->h8, T), hs = rows(&b->hs, T), q = rows(&b->q, T);
    if (c->q_lora_rank > 0) {
        dsk_tensor qa = rows(&b->qa, T), qa8 = rows(&b->qa8, T), qas = rows(&b->qas, T);
        DSK_TRY(gemm(S, "q_a_proj", DSK_GEMM_DENSE, &h8, &hs, &L->q_a, &qa, NULL, NULL, T));
        DSK_TRY(rmsnorm(S, &qa, &L->q_a_norm, &qa));
        DSK_TRY(quant(S, &qa, &qa8, &qas));
        DSK_TRY(gemm(S, "q_b_proj", DSK_GEMM_DENSE, &qa8, &qas, &L->q_b, &q, NULL, NULL, T));
    } else {
        DSK_TRY(gemm(S, "q_proj", DSK_GEMM_DENSE, &h8, &hs, &L->q, &q, NULL, NULL, T));
    }
    dsk_tensor kva = rows(&b->kva, T), ckv = rows(&b->ckv, T);
    DSK_TRY(gemm(S, "kv_a_proj_with_mqa", DSK_GEMM_DENSE, &h8, &hs, &L->kv_a, &kva, NULL, NULL, T));
    dsk_tensor ckv_in = cols(&kva, 0, R);
    DSK_TRY(rmsnorm(S, &ckv_in, &L->kv_a_norm, &ckv));
    dsk_tensor pos = rows(&b->pos, T);
    dsk_tensor qpe = heads(&q, T, H, qk, nope, rope);
    dsk_tensor kpe = heads(&kva, T, 1, R + rope, R, rope);
    dsk_rope_args ra = {.x = &qpe, .positions = &pos, .p = c->rope};
    RUN(S, DSK_MOP_ROPE, dsk_rope(S->dev, &ra));
    ra.x = &kpe;
    RUN(S, DSK_MOP_ROPE, dsk_rope(S->dev, &ra));
    double t0 = now_s();
    for (int64_t t = 0; t < T; t++)
        cache_put(S, l, seq_of[t], pos_of[t], F(&ckv) + t * R, F(&kva) + t * (R + rope) + R);
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    return DSK_OK;
}

static float softmax_scale(const dsk_model_config *c)
{
    return dsk_mla_softmax_scale(c->qk_nope_head_dim + c->qk_rope_head_dim, c->mscale_all_dim, c->rope.factor);
}

/* Prefill: non-absorbed MLA over the packed tokens; output -> b->attn [T, hd]. */
static dsk_status mla_prefill(dsk_model_session *S, int l, int64_t T, int B, const int *seq_of,
                              const int32_t *pos_of)
{
    const dsk_model_config *c = &S->m->cfg;
    const dsk_layer_w *L = &S->m->layers[l];
    bufs *b = &S->b;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank, vd = c->v_head_dim;
    DSK_TRY(mla_common(S, l, T, seq_of, pos_of));
    dsk_tensor ckv = rows(&b->ckv, T), ckv8 = rows(&b->ckv8, T), ckvs = rows(&b->ckvs, T), kvb = rows(&b->kvb, T);
    DSK_TRY(quant(S, &ckv, &ckv8, &ckvs));
    DSK_TRY(gemm(S, "kv_b_proj", DSK_GEMM_DENSE, &ckv8, &ckvs, &L->kv_b, &kvb, NULL, NULL, T));
    /* k = [k_nope (from kv_b) | k_pe (shared by all heads)] */
    double t0 = now_s();
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float *k = F(&b->k) + (t * H + h) * qk;
            memcpy(k, F(&kvb) + t * H * (nope + vd) + h * (nope + vd), sizeof(float) * (size_t)nope);
            memcpy(k + nope, F(&b->kva) + t * (R + rope) + R, sizeof(float) * (size_t)rope);
        }
    int32_t *cu = b->cu.data;
    cu[0] = 0;
    for (int s = 0, t = 0; s < B; s++) {
        while (t < T && seq_of[t] == s)
            t++;
        cu[s + 1] = t;
    }
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    dsk_tensor q3 = heads(&b->q, T, H, qk, 0, qk), k3 = heads(&b->k, T, H, qk, 0, qk);
    dsk_tensor v3 = heads(&kvb, T, H, nope + vd, nope, vd), o3 = heads(&b->o, T, H, vd, 0, vd);
    dsk_tensor cu_t = rows(&b->cu, B + 1);
    dsk_mla_prefill_args pa = {.q = &q3, .k = &k3, .v = &v3, .cu_seqlens = &cu_t, .out = &o3,
                               .softmax_scale = softmax_scale(c)};
    RUN(S, DSK_MOP_MLA, dsk_mla_prefill(S->dev, &pa));
    dsk_tensor o = rows(&b->o, T), o8 = rows(&b->o8, T), os = rows(&b->os, T), attn = rows(&b->attn, T);
    DSK_TRY(quant(S, &o, &o8, &os));
    return gemm(S, "o_proj", DSK_GEMM_DENSE, &o8, &os, &L->o, &attn, NULL, NULL, T);
}

/* Decode: absorbed MLA, one token per sequence (T = B); output -> b->attn. */
static dsk_status mla_decode(dsk_model_session *S, int l, int B, const int *seq_of, const int32_t *pos_of)
{
    const dsk_model_config *c = &S->m->cfg;
    const dsk_layer_w *L = &S->m->layers[l];
    bufs *b = &S->b;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank, vd = c->v_head_dim, D = R + rope, T = B;
    DSK_TRY(mla_common(S, l, T, seq_of, pos_of));
    /* q_nope per head [H, B, nope] -> absorbed through W_UK^T -> [H, B, R] */
    double t0 = now_s();
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++)
            memcpy(F(&b->qn) + (h * T + t) * nope, F(&b->q) + (t * H + h) * qk, sizeof(float) * (size_t)nope);
    int32_t *mm = b->masked.data;
    for (int64_t h = 0; h < H; h++)
        mm[h] = (int32_t)T;
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    dsk_tensor qn = flat2(&b->qn, H * T), qn8 = flat2(&b->qn8, H * T), qns = flat2(&b->qns, H * T);
    DSK_TRY(quant(S, &qn, &qn8, &qns));
    dsk_tensor a3 = grp3(&b->qn8, H, T), s3 = grp3(&b->qns, H, T), d3 = grp3(&b->qabs, H, T);
    DSK_TRY(gemm(S, "kv_b_proj.w_uk (absorb)", DSK_GEMM_MASKED, &a3, &s3, &L->w_uk_t, &d3, NULL, &b->masked, H * T));
    /* q for the latent cache: [B, H, R + rope] = [absorbed q_nope | roped q_pe] */
    t0 = now_s();
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float *qd = F(&b->qd) + (t * H + h) * D;
            memcpy(qd, F(&b->qabs) + (h * T + t) * R, sizeof(float) * (size_t)R);
            memcpy(qd + R, F(&b->q) + (t * H + h) * qk + nope, sizeof(float) * (size_t)rope);
        }
    int32_t *sl = S->seq_lens.data;
    for (int64_t t = 0; t < T; t++)
        sl[t] = pos_of[t] + 1;
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    dsk_tensor q3 = heads(&b->qd, T, H, D, 0, D), o3 = heads(&b->od, T, H, R, 0, R);
    dsk_tensor bt = rows(&S->block_table, T), sl_t = rows(&S->seq_lens, T);
    dsk_mla_decode_args da = {.q = &q3, .kv_cache = &S->cache[l], .block_table = &bt, .seq_lens = &sl_t,
                              .out = &o3, .dv = (int)R, .softmax_scale = softmax_scale(c)};
    RUN(S, DSK_MOP_MLA, dsk_mla_decode(S->dev, &da));
    /* latent output per head [H, B, R] -> through W_UV -> [H, B, v] -> [B, H*v] */
    t0 = now_s();
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++)
            memcpy(F(&b->odt) + (h * T + t) * R, F(&b->od) + (t * H + h) * R, sizeof(float) * (size_t)R);
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    dsk_tensor odt = flat2(&b->odt, H * T), od8 = flat2(&b->od8, H * T), ods = flat2(&b->ods, H * T);
    DSK_TRY(quant(S, &odt, &od8, &ods));
    dsk_tensor oa = grp3(&b->od8, H, T), osc = grp3(&b->ods, H, T), ov = grp3(&b->ov, H, T);
    DSK_TRY(gemm(S, "kv_b_proj.w_uv (absorb)", DSK_GEMM_MASKED, &oa, &osc, &L->w_uv, &ov, NULL, &b->masked, H * T));
    t0 = now_s();
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            memcpy(F(&b->o) + (t * H + h) * vd, F(&b->ov) + (h * T + t) * vd, sizeof(float) * (size_t)vd);
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    dsk_tensor o = rows(&b->o, T), o8 = rows(&b->o8, T), os = rows(&b->os, T), attn = rows(&b->attn, T);
    DSK_TRY(quant(S, &o, &o8, &os));
    return gemm(S, "o_proj", DSK_GEMM_DENSE, &o8, &os, &L->o, &attn, NULL, NULL, T);
}

/* ---- MLP / MoE ---- */

/* SwiGLU MLP on b->h8/hs -> out [T, hd] (the dense MLP or the shared expert). */
static dsk_status mlp(dsk_model_session *S, const dsk_layer_w *L, int64_t T, const char *name, dsk_tensor *out)
{
    bufs *b = &S->b;
    const int64_t I = L->gate.w.shape[0];
    char wg[32], wd[32];
    snprintf(wg, sizeof wg, "%s.gate_up", name);
    snprintf(wd, sizeof wd, "%s.down", name);
    dsk_tensor h8 = rows(&b->h8, T), hs = rows(&b->hs, T);
    dsk_tensor gu = dsk_tensor_2d(b->gu.data, DSK_F32, T, 2 * I);
    gu.device = b->gu.device;
    dsk_tensor g = cols(&gu, 0, I), u = cols(&gu, I, I);
    DSK_TRY(gemm(S, wg, DSK_GEMM_DENSE, &h8, &hs, &L->gate, &g, NULL, NULL, T));
    DSK_TRY(gemm(S, wg, DSK_GEMM_DENSE, &h8, &hs, &L->up, &u, NULL, NULL, T));
    dsk_tensor act = dsk_tensor_2d(b->act.data, DSK_F32, T, I), act8 = dsk_tensor_2d(b->act8.data, DSK_E4M3, T, I);
    dsk_tensor acts = dsk_tensor_2d(b->acts.data, DSK_F32, T, cdiv(I, 128));
    act.device = act8.device = acts.device = b->act.device;
    dsk_swiglu_args sw = {.gate_up = &gu, .y = &act};
    RUN(S, DSK_MOP_SWIGLU, dsk_swiglu(S->dev, &sw));
    DSK_TRY(quant(S, &act, &act8, &acts));
    return gemm(S, wd, DSK_GEMM_DENSE, &act8, &acts, &L->down, out, NULL, NULL, T);
}

/* Routed experts on b->h8/hs -> b->mo [T, hd]. */
static dsk_status moe(dsk_model_session *S, const dsk_layer_w *L, int64_t T)
{
    const dsk_model_config *c = &S->m->cfg;
    bufs *b = &S->b;
    const int64_t E = c->n_routed_experts, K = c->num_experts_per_tok, I = c->moe_intermediate_size,
                  hd = c->hidden_size;
    dsk_tensor h8 = rows(&b->h8, T), hs = rows(&b->hs, T), rl = rows(&b->rlog, T);
    dsk_tensor tidx = rows(&b->tidx, T), tw = rows(&b->tw, T);
    DSK_TRY(gemm(S, "mlp.gate (router)", DSK_GEMM_DENSE, &h8, &hs, &L->router, &rl, NULL, NULL, T));
    dsk_moe_route_args ra = {.logits = &rl, .bias = &L->bias, .topk_idx = &tidx, .topk_w = &tw,
                             .p = {.n_experts = (int)E, .n_group = c->n_group, .topk_group = c->topk_group,
                                   .top_k = (int)K, .norm_topk_prob = c->norm_topk_prob,
                                   .routed_scaling_factor = c->routed_scaling_factor, .scoring = DSK_MOE_SIGMOID}};
    RUN(S, DSK_MOP_ROUTE, dsk_moe_route(S->dev, &ra));
    /* Permute the quantized tokens and their scales (DeepEP dispatches FP8 the same way). */
    const int64_t P = dsk_moe_permute_rows(T, (int)K, (int)E, S->align);
    dsk_tensor xp8 = rows(&b->xp8, P), xps = rows(&b->xps, P), midx = rows(&b->midx, P), rmap = rows(&b->rmap, T);
    dsk_tensor midx2 = rows(&b->midx2, P), rmap2 = rows(&b->rmap2, T);
    dsk_moe_permute_args pa = {.x = &h8, .topk_idx = &tidx, .n_experts = (int)E, .align = S->align,
                               .x_perm = &xp8, .m_indices = &midx, .row_map = &rmap, .expert_offsets = &b->eoff};
    RUN(S, DSK_MOP_PERMUTE, dsk_moe_permute(S->dev, &pa));
    dsk_moe_permute_args ps = {.x = &hs, .topk_idx = &tidx, .n_experts = (int)E, .align = S->align,
                               .x_perm = &xps, .m_indices = &midx2, .row_map = &rmap2, .expert_offsets = &b->eoff2};
    RUN(S, DSK_MOP_PERMUTE, dsk_moe_permute(S->dev, &ps));
    const int64_t Pv = ((const int32_t *)b->eoff.data)[E]; /* rows in use */
    int64_t valid = 0;
    for (int64_t r = 0; r < Pv; r++)
        valid += ((const int32_t *)b->midx.data)[r] >= 0;
    dsk_tensor a = rows(&b->xp8, Pv), as = rows(&b->xps, Pv), mi = rows(&b->midx, Pv);
    dsk_tensor gup = dsk_tensor_2d(b->gup.data, DSK_F32, Pv, 2 * I);
    gup.device = b->gup.device;
    if (S->align > 1) /* padding rows are skipped by the GEMMs: give SwiGLU zeros there */
        memset(gup.data, 0, sizeof(float) * (size_t)(Pv * 2 * I));
    dsk_tensor g = cols(&gup, 0, I), u = cols(&gup, I, I);
    DSK_TRY(gemm(S, "experts.gate_up", DSK_GEMM_CONTIGUOUS, &a, &as, &L->ex_gate, &g, &mi, NULL, valid));
    DSK_TRY(gemm(S, "experts.gate_up", DSK_GEMM_CONTIGUOUS, &a, &as, &L->ex_up, &u, &mi, NULL, valid));
    dsk_tensor act = rows(&b->actp, Pv), act8 = rows(&b->actp8, Pv), acts = rows(&b->actps, Pv);
    dsk_swiglu_args sw = {.gate_up = &gup, .y = &act};
    RUN(S, DSK_MOP_SWIGLU, dsk_swiglu(S->dev, &sw));
    DSK_TRY(quant(S, &act, &act8, &acts));
    dsk_tensor yp = rows(&b->yp, Pv);
    DSK_TRY(gemm(S, "experts.down", DSK_GEMM_CONTIGUOUS, &act8, &acts, &L->ex_down, &yp, &mi, NULL, valid));
    dsk_tensor mo = rows(&b->mo, T);
    dsk_moe_combine_args ca = {.y_perm = &yp, .row_map = &rmap, .topk_w = &tw, .y = &mo};
    RUN(S, DSK_MOP_PERMUTE, dsk_moe_combine(S->dev, &ca));
    (void)hd;
    return DSK_OK;
}

/* ---- one layer, whole forward ---- */

static dsk_status layer(dsk_model_session *S, int l, int64_t T, int B, int decode, const int *seq_of,
                        const int32_t *pos_of)
{
    const dsk_model_config *c = &S->m->cfg;
    const dsk_layer_w *L = &S->m->layers[l];
    bufs *b = &S->b;
    const int64_t hd = c->hidden_size;
    dsk_tensor x = rows(&b->x, T), h = rows(&b->h, T), h8 = rows(&b->h8, T), hs = rows(&b->hs, T);
    DSK_TRY(rmsnorm(S, &x, &L->in_norm, &h));
    DSK_TRY(quant(S, &h, &h8, &hs));
    if (decode)
        DSK_TRY(mla_decode(S, l, B, seq_of, pos_of));
    else
        DSK_TRY(mla_prefill(S, l, T, B, seq_of, pos_of));
    double t0 = now_s();
    add_into(F(&x), F(&b->attn), T * hd);
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    DSK_TRY(rmsnorm(S, &x, &L->post_norm, &h));
    DSK_TRY(quant(S, &h, &h8, &hs));
    if (!L->moe) {
        dsk_tensor mo = rows(&b->mo, T);
        DSK_TRY(mlp(S, L, T, "mlp", &mo));
    } else {
        DSK_TRY(moe(S, L, T));
        if (L->has_shared) {
            dsk_tensor so = rows(&b->so, T);
            DSK_TRY(mlp(S, L, T, "shared_experts", &so));
        }
    }
    /* model.py's order: y = routed + shared, then x + y (f32 rounding as the reference) */
    t0 = now_s();
    if (L->moe && L->has_shared)
        add_into(F(&b->mo), F(&b->so), T * hd);
    add_into(F(&x), F(&b->mo), T * hd);
    prof_add(S, DSK_MOP_GLUE, now_s() - t0);
    return DSK_OK;
}

/* Final norm + lm_head on B rows of b->hl -> host logits [B, vocab]. */
static dsk_status head(dsk_model_session *S, int B, float *logits)
{
    const dsk_model *m = S->m;
    bufs *b = &S->b;
    dsk_tensor hl = rows(&b->hl, B), hl8 = rows(&b->hl8, B), hls = rows(&b->hls, B), lg = rows(&b->logits, B);
    DSK_TRY(rmsnorm(S, &hl, &m->final_norm, &hl));
    DSK_TRY(quant(S, &hl, &hl8, &hls));
    DSK_TRY(gemm(S, "lm_head", DSK_GEMM_DENSE, &hl8, &hls, &m->lm_head, &lg, NULL, NULL, B));
    return dsk_device_download(S->dev, logits, lg.data, sizeof(float) * (size_t)B * (size_t)m->cfg.vocab_size);
}

static dsk_status check_tokens(const dsk_model_session *S, const char *fn, int64_t n, const int32_t *tok)
{
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= S->m->cfg.vocab_size)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: token %lld is %d, expected 0..vocab_size-1 = 0..%d", fn,
                            (long long)i, tok[i], S->m->cfg.vocab_size - 1);
    return DSK_OK;
}

static dsk_status forward(dsk_model_session *S, int64_t T, int B, int decode, const int32_t *tokens,
                          const int *seq_of, const int32_t *pos_of, float *logits)
{
    double t0 = now_s();
    DSK_TRY(ensure(S, T));
    memcpy(S->b.pos.data, pos_of, sizeof(int32_t) * (size_t)T);
    DSK_TRY(embed(S, T, tokens));
    for (int l = 0; l < S->m->cfg.num_hidden_layers; l++) {
        dsk_status s = layer(S, l, T, B, decode, seq_of, pos_of);
        if (s != DSK_OK)
            return dsk_fail_prefix(s, "layer %d", l);
    }
    /* the last token of each sequence */
    const int64_t hd = S->m->cfg.hidden_size;
    for (int s = 0, t = 0; s < B; s++) {
        while (t + 1 < T && seq_of[t + 1] == s)
            t++;
        memcpy(F(&S->b.hl) + s * hd, F(&S->b.x) + (int64_t)t * hd, sizeof(float) * (size_t)hd);
        t++;
    }
    DSK_TRY(head(S, B, logits));
    S->prof[S->phase].total_seconds += now_s() - t0;
    S->prof[S->phase].tokens += T;
    return DSK_OK;
}

dsk_status dsk_model_prefill(dsk_model_session *S, int batch, const int32_t *lens, const int32_t *tokens,
                             float *logits)
{
    const char *fn = "dsk_model_prefill";
    if (!S || !lens || !tokens || !logits)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: session, lens, tokens and logits must be non-NULL", fn);
    if (batch < 1 || batch > S->max_batch)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: batch = %d, expected 1..max_batch = 1..%d", fn, batch, S->max_batch);
    int64_t T = 0;
    for (int b = 0; b < batch; b++) {
        if (lens[b] < 1 || lens[b] > S->max_len)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: lens[%d] = %d, expected 1..max_len = 1..%d", fn, b, lens[b],
                            S->max_len);
        T += lens[b];
    }
    DSK_TRY(check_tokens(S, fn, T, tokens));
    int *seq_of = malloc(sizeof(int) * (size_t)T);
    int32_t *pos_of = malloc(sizeof(int32_t) * (size_t)T);
    if (!seq_of || !pos_of) {
        free(seq_of);
        free(pos_of);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    for (int b = 0, t = 0; b < batch; b++)
        for (int i = 0; i < lens[b]; i++, t++) {
            seq_of[t] = b;
            pos_of[t] = i;
        }
    S->phase = 0;
    dsk_status s = forward(S, T, batch, 0, tokens, seq_of, pos_of, logits);
    free(seq_of);
    free(pos_of);
    if (s != DSK_OK) {
        S->batch = 0;
        return s;
    }
    S->batch = batch;
    for (int b = 0; b < batch; b++)
        S->lens[b] = lens[b];
    return DSK_OK;
}

dsk_status dsk_model_decode(dsk_model_session *S, const int32_t *tokens, float *logits)
{
    const char *fn = "dsk_model_decode";
    if (!S || !tokens || !logits)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: session, tokens and logits must be non-NULL", fn);
    if (S->batch < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: nothing prefilled in this session", fn);
    const int B = S->batch;
    for (int b = 0; b < B; b++)
        if (S->lens[b] >= S->max_len)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: sequence %d already holds max_len = %d tokens", fn, b,
                            S->max_len);
    DSK_TRY(check_tokens(S, fn, B, tokens));
    int seq_of[B > 0 ? B : 1];
    S->phase = 1;
    for (int b = 0; b < B; b++)
        seq_of[b] = b;
    DSK_TRY(forward(S, B, B, 1, tokens, seq_of, S->lens, logits));
    for (int b = 0; b < B; b++)
        S->lens[b]++;
    return DSK_OK;
}
