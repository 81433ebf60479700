/* model/ref_forward.c: the reference forward of one sequence, built from the ops'
 * *_ref functions on host memory, written independently of model/forward.c's structure:
 * every position recomputed from scratch (no cache, no absorption: MLA in the
 * non-absorbed prefill form over the whole sequence), the MoE as a loop over experts
 * gathering their tokens for dense reference GEMMs (no permute, no combine, no grouped
 * GEMM). Activations are quantized with dsk_quant_act_fp8_ref before each GEMM, as the
 * driver does, and the few sums outside the ops are done in the driver's order (the
 * routed experts summed per token in top-k slot order in float64, as
 * dsk_moe_combine_ref does, then y = routed + shared and x + y in f32, model.py's
 * order), so the driver run on a device whose ops are these references gives logits
 * bit-identical to the decode form's below (tests/model/test_forward.c checks it); on
 * other backends the two differ only by the kernels' rounding.
 *
 * The decode form (dsk_model_ref_logits_decode) computes the prompt that way while filling
 * a latent cache, then each later token alone through MLA's absorbed form over that cache
 * (W_UK^T into the query, dsk_mla_decode_ref, W_UV on the latent output), so the driver's
 * decode steps are compared with a reference that quantizes the same tensors. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model/model_internal.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

typedef struct pool { dsk_tensor t[64]; int n; } pool;

static dsk_status T2(pool *p, dsk_dtype dt, int64_t r, int64_t c, dsk_tensor **out)
{
    if (p->n == 64)
        return dsk_fail(DSK_ERR_INTERNAL, "dsk_model_ref_logits: tensor pool exhausted");
    dsk_tensor *t = &p->t[p->n];
    DSK_TRY(dsk_tensor_alloc(NULL, dt, 2, (int64_t[]){r, c}, t));
    memset(t->data, 0, dsk_tensor_nbytes(t));
    p->n++;
    *out = t;
    return DSK_OK;
}

/* Frees the tensors allocated after the pool held `mark`. */
static void pool_pop(pool *p, int mark)
{
    while (p->n > mark)
        dsk_tensor_free(&p->t[--p->n]);
}

static void pool_free(pool *p) { pool_pop(p, 0); }

/* y = x . W^T with x quantized 1x128 first (as every linear layer of the model). */
static dsk_status linear(pool *p, const dsk_tensor *x, const dsk_tensor *w, const dsk_tensor *ws, dsk_tensor *y)
{
    int64_t M = x->shape[0], K = x->shape[1];
    dsk_tensor *q = NULL, *s = NULL;
    DSK_TRY(T2(p, DSK_E4M3, M, K, &q));
    DSK_TRY(T2(p, DSK_F32, M, cdiv(K, 128), &s));
    DSK_TRY(dsk_quant_act_fp8_ref(x, q, s));
    dsk_gemm_fp8_args g = {.layout = DSK_GEMM_DENSE, .a = q, .a_scale = s, .b = w, .b_scale = ws, .d = y};
    return dsk_gemm_fp8_ref(&g);
}

static dsk_status lin(pool *p, const dsk_tensor *x, const dsk_lin *l, dsk_tensor *y)
{
    return linear(p, x, &l->w, &l->s, y);
}

/* Group e of a stacked [E, N, K] weight as a 2-D view. */
static void expert(const dsk_lin *st, int64_t e, dsk_tensor *w, dsk_tensor *s)
{
    *w = dsk_tensor_2d((uint8_t *)st->w.data + e * st->w.stride[0], DSK_E4M3, st->w.shape[1], st->w.shape[2]);
    w->stride[0] = st->w.stride[1];
    *s = dsk_tensor_2d((float *)st->s.data + e * st->s.stride[0], DSK_F32, st->s.shape[1], st->s.shape[2]);
    s->stride[0] = st->s.stride[1];
}

static dsk_status swiglu_mlp(pool *p, const dsk_tensor *h, const dsk_tensor *gw, const dsk_tensor *gs,
                             const dsk_tensor *uw, const dsk_tensor *us, const dsk_tensor *dw, const dsk_tensor *ds,
                             dsk_tensor *out)
{
    int64_t M = h->shape[0], I = gw->shape[0];
    dsk_tensor *gu = NULL, *act = NULL;
    DSK_TRY(T2(p, DSK_F32, M, 2 * I, &gu));
    DSK_TRY(T2(p, DSK_F32, M, I, &act));
    dsk_tensor g = *gu, u = *gu;
    g.shape[1] = I;
    u.shape[1] = I;
    u.data = (float *)gu->data + I;
    DSK_TRY(linear(p, h, gw, gs, &g));
    DSK_TRY(linear(p, h, uw, us, &u));
    dsk_swiglu_args sw = {.gate_up = gu, .y = act};
    DSK_TRY(dsk_swiglu_ref(&sw));
    return linear(p, act, dw, ds, out);
}

/* The attention inputs of n tokens from the normed h [n, hd]: q [n, H*qk] with q_pe roped,
 * kva [n, R+rope] with k_pe roped, ckv [n, R] the normed latent. */
static dsk_status ref_qkv(pool *p, const dsk_model *m, const dsk_layer_w *L, int64_t n, const dsk_tensor *h,
                          const dsk_tensor *pos, dsk_tensor **q, dsk_tensor **kva, dsk_tensor **ckv)
{
    const dsk_model_config *c = &m->cfg;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank;
    DSK_TRY(T2(p, DSK_F32, n, H * qk, q));
    if (c->q_lora_rank > 0) {
        dsk_tensor *qa = NULL;
        DSK_TRY(T2(p, DSK_F32, n, c->q_lora_rank, &qa));
        DSK_TRY(lin(p, h, &L->q_a, qa));
        dsk_rmsnorm_args qn = {.x = qa, .weight = &L->q_a_norm, .y = qa, .eps = c->rms_norm_eps};
        DSK_TRY(dsk_rmsnorm_ref(&qn));
        DSK_TRY(lin(p, qa, &L->q_b, *q));
    } else {
        DSK_TRY(lin(p, h, &L->q, *q));
    }
    DSK_TRY(T2(p, DSK_F32, n, R + rope, kva));
    DSK_TRY(lin(p, h, &L->kv_a, *kva));
    DSK_TRY(T2(p, DSK_F32, n, R, ckv));
    for (int64_t t = 0; t < n; t++)
        memcpy((float *)(*ckv)->data + t * R, (float *)(*kva)->data + t * (R + rope), sizeof(float) * (size_t)R);
    dsk_rmsnorm_args kn = {.x = *ckv, .weight = &L->kv_a_norm, .y = *ckv, .eps = c->rms_norm_eps};
    DSK_TRY(dsk_rmsnorm_ref(&kn));
    dsk_tensor qpe = dsk_tensor_3d((float *)(*q)->data + nope, DSK_F32, n, H, rope);
    qpe.stride[0] = H * qk;
    qpe.stride[1] = qk;
    dsk_tensor kpe = dsk_tensor_3d((float *)(*kva)->data + R, DSK_F32, n, 1, rope);
    kpe.stride[0] = R + rope;
    kpe.stride[1] = rope;
    dsk_rope_args ra = {.x = &qpe, .positions = pos, .p = c->rope};
    DSK_TRY(dsk_rope_ref(&ra));
    ra.x = &kpe;
    return dsk_rope_ref(&ra);
}

static float softmax_scale(const dsk_model_config *c)
{
    return dsk_mla_softmax_scale(c->qk_nope_head_dim + c->qk_rope_head_dim, c->mscale_all_dim, c->rope.factor);
}

/* The latent cache row of position t: [c_kv (R) | k_pe (rope)] (FlashMLA's layout). */
static void cache_rows(dsk_tensor *cache, int64_t t0, int64_t n, const dsk_tensor *ckv, const dsk_tensor *kva,
                       int64_t R, int64_t rope)
{
    for (int64_t t = 0; t < n; t++) {
        float *row = (float *)cache->data + (t0 + t) * (R + rope);
        memcpy(row, (float *)ckv->data + t * R, sizeof(float) * (size_t)R);
        memcpy(row + R, (float *)kva->data + t * (R + rope) + R, sizeof(float) * (size_t)rope);
    }
}

/* Attention of n tokens at positions 0..n-1, non-absorbed (prefill) form:
 * k = [kv_b(c_kv) nope part | k_pe], v = kv_b(c_kv) value part. attn [n, hd]. When cache
 * is non-NULL the latent rows of the n tokens are written to it. */
static dsk_status ref_attn_prefill(pool *p, const dsk_model *m, const dsk_layer_w *L, int64_t n, const dsk_tensor *h,
                                   const dsk_tensor *pos, dsk_tensor *cache, dsk_tensor *attn)
{
    const dsk_model_config *c = &m->cfg;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank, vd = c->v_head_dim;
    dsk_tensor *q = NULL, *kva = NULL, *ckv = NULL, *kvb = NULL, *k = NULL, *v = NULL, *o = NULL;
    DSK_TRY(ref_qkv(p, m, L, n, h, pos, &q, &kva, &ckv));
    if (cache)
        cache_rows(cache, 0, n, ckv, kva, R, rope);
    DSK_TRY(T2(p, DSK_F32, n, H * (nope + vd), &kvb));
    DSK_TRY(lin(p, ckv, &L->kv_b, kvb));
    DSK_TRY(T2(p, DSK_F32, n, H * qk, &k));
    DSK_TRY(T2(p, DSK_F32, n, H * vd, &v));
    for (int64_t t = 0; t < n; t++)
        for (int64_t hh = 0; hh < H; hh++) {
            const float *src = (float *)kvb->data + t * H * (nope + vd) + hh * (nope + vd);
            memcpy((float *)k->data + (t * H + hh) * qk, src, sizeof(float) * (size_t)nope);
            memcpy((float *)k->data + (t * H + hh) * qk + nope, (float *)kva->data + t * (R + rope) + R,
                   sizeof(float) * (size_t)rope);
            memcpy((float *)v->data + (t * H + hh) * vd, src + nope, sizeof(float) * (size_t)vd);
        }
    DSK_TRY(T2(p, DSK_F32, n, H * vd, &o));
    int32_t cu_d[2] = {0, (int32_t)n};
    dsk_tensor cu = dsk_tensor_1d(cu_d, DSK_I32, 2);
    dsk_tensor q3 = dsk_tensor_3d(q->data, DSK_F32, n, H, qk), k3 = dsk_tensor_3d(k->data, DSK_F32, n, H, qk);
    dsk_tensor v3 = dsk_tensor_3d(v->data, DSK_F32, n, H, vd), o3 = dsk_tensor_3d(o->data, DSK_F32, n, H, vd);
    dsk_mla_prefill_args pa = {.q = &q3, .k = &k3, .v = &v3, .cu_seqlens = &cu, .out = &o3,
                               .softmax_scale = softmax_scale(c)};
    DSK_TRY(dsk_mla_prefill_ref(&pa));
    return lin(p, o, &L->o, attn);
}

/* The absorbed-MLA per-head products of one token: for each head h, the n_in values at
 * x + h*x_stride times head h of the stacked weight st, written to y + h*y_stride. */
static dsk_status per_head_linear(pool *p, const dsk_lin *st, int64_t H, const float *x, int64_t x_stride,
                                  int64_t n_in, float *y, int64_t y_stride, int64_t n_out)
{
    for (int64_t hh = 0; hh < H; hh++) {
        dsk_tensor xi = dsk_tensor_2d((float *)x + hh * x_stride, DSK_F32, 1, n_in);
        dsk_tensor yo = dsk_tensor_2d(y + hh * y_stride, DSK_F32, 1, n_out), w, ws;
        expert(st, hh, &w, &ws);
        int mark = p->n;
        DSK_TRY(linear(p, &xi, &w, &ws, &yo));
        pool_pop(p, mark);
    }
    return DSK_OK;
}

/* Attention of one token at position t over the latent cache (rows 0..t-1 filled, row t
 * appended here), absorbed (decode) form as in DeepSeek-V3's model.py: per head,
 * q_abs = W_UK^T q_nope (quantized q_nope), scores against [c_kv | k_pe] of every cached
 * row, the latent output o_lat (quantized) back through W_UV. attn [1, hd]. The cache is
 * one sequence's pages in order, [pages, 64, R+rope]. */
static dsk_status ref_attn_decode(pool *p, const dsk_model *m, const dsk_layer_w *L, int64_t t, const dsk_tensor *h,
                                  const dsk_tensor *pos, dsk_tensor *cache, dsk_tensor *attn)
{
    const dsk_model_config *c = &m->cfg;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim,
                  qk = nope + rope, R = c->kv_lora_rank, vd = c->v_head_dim, D = R + rope;
    dsk_tensor *q = NULL, *kva = NULL, *ckv = NULL, *qd = NULL, *od = NULL, *o = NULL;
    DSK_TRY(ref_qkv(p, m, L, 1, h, pos, &q, &kva, &ckv));
    cache_rows(cache, t, 1, ckv, kva, R, rope);
    DSK_TRY(T2(p, DSK_F32, H, D, &qd));
    DSK_TRY(T2(p, DSK_F32, H, R, &od));
    DSK_TRY(T2(p, DSK_F32, 1, H * vd, &o));
    DSK_TRY(per_head_linear(p, &L->w_uk_t, H, q->data, qk, nope, qd->data, D, R));
    for (int64_t hh = 0; hh < H; hh++)
        memcpy((float *)qd->data + hh * D + R, (float *)q->data + hh * qk + nope, sizeof(float) * (size_t)rope);
    const int64_t pages = cache->shape[0];
    int32_t *bt_d = malloc(sizeof(int32_t) * (size_t)pages);
    if (!bt_d)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_ref_logits_decode: out of memory");
    for (int64_t i = 0; i < pages; i++)
        bt_d[i] = (int32_t)i;
    int32_t sl_d[1] = {(int32_t)(t + 1)};
    dsk_tensor bt = dsk_tensor_2d(bt_d, DSK_I32, 1, pages), sl = dsk_tensor_1d(sl_d, DSK_I32, 1);
    dsk_tensor q3 = dsk_tensor_3d(qd->data, DSK_F32, 1, H, D), o3 = dsk_tensor_3d(od->data, DSK_F32, 1, H, R);
    dsk_mla_decode_args da = {.q = &q3, .kv_cache = cache, .block_table = &bt, .seq_lens = &sl, .out = &o3,
                              .dv = (int)R, .softmax_scale = softmax_scale(c)};
    dsk_status s = dsk_mla_decode_ref(&da);
    free(bt_d);
    DSK_TRY(s);
    DSK_TRY(per_head_linear(p, &L->w_uv, H, od->data, R, R, o->data, vd, vd));
    return lin(p, o, &L->o, attn);
}

/* x += ffn(post_norm(x)) for n tokens: the dense MLP, or the routed experts (a loop over
 * experts gathering their tokens) plus the shared expert. */
static dsk_status ref_ffn(pool *p, const dsk_model *m, const dsk_layer_w *L, int64_t n, dsk_tensor *x)
{
    const dsk_model_config *c = &m->cfg;
    const int64_t hd = c->hidden_size;
    float *X = x->data;
    dsk_tensor *h = NULL, *out = NULL;
    DSK_TRY(T2(p, DSK_F32, n, hd, &h));
    dsk_rmsnorm_args na = {.x = x, .weight = &L->post_norm, .y = h, .eps = c->rms_norm_eps};
    DSK_TRY(dsk_rmsnorm_ref(&na));
    DSK_TRY(T2(p, DSK_F32, n, hd, &out));
    if (!L->moe) {
        DSK_TRY(swiglu_mlp(p, h, &L->gate.w, &L->gate.s, &L->up.w, &L->up.s, &L->down.w, &L->down.s, out));
        for (int64_t i = 0; i < n * hd; i++)
            X[i] += ((float *)out->data)[i];
        return DSK_OK;
    }
    const int64_t E = c->n_routed_experts, K = c->num_experts_per_tok;
    dsk_tensor *rl = NULL, *idx = NULL, *w = NULL;
    DSK_TRY(T2(p, DSK_F32, n, E, &rl));
    DSK_TRY(T2(p, DSK_I32, n, K, &idx));
    DSK_TRY(T2(p, DSK_F32, n, K, &w));
    DSK_TRY(lin(p, h, &L->router, rl));
    dsk_moe_route_args ra2 = {.logits = rl, .bias = &L->bias, .topk_idx = idx, .topk_w = w,
                              .p = {.n_experts = (int)E, .n_group = c->n_group, .topk_group = c->topk_group,
                                    .top_k = (int)K, .norm_topk_prob = c->norm_topk_prob,
                                    .routed_scaling_factor = c->routed_scaling_factor, .scoring = DSK_MOE_SIGMOID}};
    DSK_TRY(dsk_moe_route_ref(&ra2));
    /* each (token, slot)'s expert output, then summed per token in slot order in float64
     * (dsk_moe_combine_ref's order, so equal inputs give equal sums) */
    float *yk = malloc(sizeof(float) * (size_t)(n * K * hd));
    int64_t *who = malloc(sizeof(int64_t) * (size_t)(n * K));
    dsk_tensor *xe = NULL, *ye = NULL;
    dsk_status s = yk && who ? DSK_OK : dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_ref_logits: out of memory");
    if (s == DSK_OK)
        s = T2(p, DSK_F32, n * K, hd, &xe);
    if (s == DSK_OK)
        s = T2(p, DSK_F32, n * K, hd, &ye);
    for (int64_t e = 0; e < E && s == DSK_OK; e++) {
        int64_t m_e = 0;
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < K; j++)
                if (((int32_t *)idx->data)[t * K + j] == e) {
                    memcpy((float *)xe->data + m_e * hd, (float *)h->data + t * hd, sizeof(float) * (size_t)hd);
                    who[m_e++] = t * K + j;
                }
        if (!m_e)
            continue;
        dsk_tensor gw, gs, uw, us, dw, ds;
        expert(&L->ex_gate, e, &gw, &gs);
        expert(&L->ex_up, e, &uw, &us);
        expert(&L->ex_down, e, &dw, &ds);
        dsk_tensor xin = dsk_tensor_2d(xe->data, DSK_F32, m_e, hd), yout = dsk_tensor_2d(ye->data, DSK_F32, m_e, hd);
        int mark = p->n;
        s = swiglu_mlp(p, &xin, &gw, &gs, &uw, &us, &dw, &ds, &yout);
        pool_pop(p, mark);
        for (int64_t r = 0; r < m_e && s == DSK_OK; r++)
            memcpy(yk + who[r] * hd, (float *)ye->data + r * hd, sizeof(float) * (size_t)hd);
    }
    if (s == DSK_OK && L->has_shared)
        s = swiglu_mlp(p, h, &L->gate.w, &L->gate.s, &L->up.w, &L->up.s, &L->down.w, &L->down.s, out);
    /* model.py: y = routed + shared; x = x + y */
    for (int64_t t = 0; s == DSK_OK && t < n; t++)
        for (int64_t i = 0; i < hd; i++) {
            double acc = 0;
            for (int64_t j = 0; j < K; j++)
                acc += (double)((float *)w->data)[t * K + j] * yk[(t * K + j) * hd + i];
            float y = (float)acc;
            if (L->has_shared)
                y += ((float *)out->data)[t * hd + i];
            X[t * hd + i] += y;
        }
    free(yk);
    free(who);
    return s;
}


/* One layer on n tokens as DeepSeek-V3's model.py orders it: x += attn(in_norm(x)), then
 * x += ffn(post_norm(x)). decode_t < 0: the n tokens are positions 0..n-1 (prefill
 * form, cache filled when non-NULL); decode_t >= 0: one token at that position, absorbed
 * form over cache. */
static dsk_status ref_layer(pool *p, const dsk_model *m, int l, int64_t n, dsk_tensor *x, const dsk_tensor *pos,
                            dsk_tensor *cache, int64_t decode_t)
{
    const dsk_model_config *c = &m->cfg;
    const dsk_layer_w *L = &m->layers[l];
    const int64_t hd = c->hidden_size;
    dsk_tensor *h = NULL, *attn = NULL;
    DSK_TRY(T2(p, DSK_F32, n, hd, &h));
    dsk_rmsnorm_args na = {.x = x, .weight = &L->in_norm, .y = h, .eps = c->rms_norm_eps};
    DSK_TRY(dsk_rmsnorm_ref(&na));
    DSK_TRY(T2(p, DSK_F32, n, hd, &attn));
    if (decode_t < 0)
        DSK_TRY(ref_attn_prefill(p, m, L, n, h, pos, cache, attn));
    else
        DSK_TRY(ref_attn_decode(p, m, L, decode_t, h, pos, cache, attn));
    for (int64_t i = 0; i < n * hd; i++)
        ((float *)x->data)[i] += ((float *)attn->data)[i];
    return ref_ffn(p, m, L, n, x);
}

/* Tokens [0, n_prefill) in the prefill form, every later token alone in the decode form
 * (n_prefill == n: the whole sequence in the prefill form, no cache kept). */
static dsk_status ref_run(const char *fn, const dsk_model *m, int n, int n_prefill, const int32_t *tokens,
                          float *logits)
{
    if (!m || !tokens || !logits || n < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: m, tokens, logits must be non-NULL and n >= 1", fn);
    if (n_prefill < 1 || n_prefill > n)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: n_prefill = %d, expected 1..n = 1..%d", fn, n_prefill, n);
    if (!dsk_device_get_props(m->dev)->host_memory)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: the model's weights are not in host memory", fn);
    const dsk_model_config *c = &m->cfg;
    const int64_t hd = c->hidden_size, D = c->kv_lora_rank + c->qk_rope_head_dim;
    const int nl = c->num_hidden_layers, decode = n_prefill < n;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: token %d is %d, expected 0..%d", fn, i, tokens[i], c->vocab_size - 1);
    if (decode && nl > 32)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "%s: the decode form keeps at most 32 layers' caches, the model has %d",
                        fn, nl);
    pool keep = {0}, p = {0};
    dsk_tensor *x = NULL, *pos = NULL, *h = NULL, *lg = NULL, *cache[32] = {0};
    dsk_status s = T2(&keep, DSK_F32, n, hd, &x);
    if (s == DSK_OK)
        s = T2(&keep, DSK_I32, n, 1, &pos);
    for (int i = 0; s == DSK_OK && i < n; i++) {
        ((int32_t *)pos->data)[i] = i;
        for (int64_t j = 0; j < hd; j++)
            ((float *)x->data)[i * hd + j] =
                m->embed.dtype == DSK_BF16 ? dsk_bf16_to_f32(((const uint16_t *)m->embed.data)[tokens[i] * hd + j])
                                           : ((const float *)m->embed.data)[tokens[i] * hd + j];
    }
    /* one sequence's latent cache per layer, pages in order */
    const int64_t pages = cdiv(n, DSK_MLA_PAGE_SIZE);
    for (int l = 0; decode && l < nl && s == DSK_OK; l++) {
        dsk_tensor *t = &keep.t[keep.n];
        s = keep.n < 64 ? dsk_tensor_alloc(NULL, DSK_F32, 3, (int64_t[]){pages, DSK_MLA_PAGE_SIZE, D}, t)
                        : dsk_fail(DSK_ERR_INTERNAL, "%s: tensor pool exhausted", fn);
        if (s == DSK_OK) {
            memset(t->data, 0, dsk_tensor_nbytes(t));
            cache[l] = t;
            keep.n++;
        }
    }
    /* the prompt, then each decode token through every layer */
    for (int t0 = 0; s == DSK_OK && t0 < n; t0 = t0 ? t0 + 1 : n_prefill) {
        const int64_t cnt = t0 ? 1 : n_prefill;
        dsk_tensor xt = dsk_tensor_2d((float *)x->data + t0 * hd, DSK_F32, cnt, hd);
        dsk_tensor pt = dsk_tensor_1d((int32_t *)pos->data + t0, DSK_I32, cnt);
        for (int l = 0; l < nl && s == DSK_OK; l++) {
            s = ref_layer(&p, m, l, cnt, &xt, &pt, cache[l], t0 ? t0 : -1);
            pool_free(&p);
            if (s != DSK_OK)
                s = dsk_fail_prefix(s, "%s: %s position %d, layer %d", fn, t0 ? "decode" : "prefill", t0, l);
        }
    }
    if (s == DSK_OK)
        s = T2(&keep, DSK_F32, n, hd, &h);
    if (s == DSK_OK) {
        dsk_rmsnorm_args na = {.x = x, .weight = &m->final_norm, .y = h, .eps = c->rms_norm_eps};
        s = dsk_rmsnorm_ref(&na);
    }
    if (s == DSK_OK)
        s = T2(&keep, DSK_F32, n, c->vocab_size, &lg);
    if (s == DSK_OK)
        s = lin(&p, h, &m->lm_head, lg);
    if (s == DSK_OK)
        memcpy(logits, lg->data, sizeof(float) * (size_t)n * (size_t)c->vocab_size);
    pool_free(&p);
    pool_free(&keep);
    return s;
}

dsk_status dsk_model_ref_logits(const dsk_model *m, int n, const int32_t *tokens, float *logits)
{
    return ref_run("dsk_model_ref_logits", m, n, n, tokens, logits);
}

dsk_status dsk_model_ref_logits_decode(const dsk_model *m, int n, int n_prompt, const int32_t *tokens,
                                       float *logits)
{
    return ref_run("dsk_model_ref_logits_decode", m, n, n_prompt, tokens, logits);
}
