/* model/model.c: loading a checkpoint onto a device: config.json, then every tensor the
 * config implies checked for presence, dtype and shape (all before any upload or
 * computation), then the weights placed: used in place from the file mapping on the
 * cpu backend, copied to the device elsewhere; bf16 linear weights quantized to FP8
 * 128x128 blocks; kv_b_proj split per head into the absorbed-decode weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model/model_internal.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- ownership of device allocations ---- */

static dsk_status own(dsk_model *m, dsk_dtype dt, int rank, const int64_t *shape, dsk_tensor *t)
{
    if (m->n_owned == m->cap_owned) {
        int nc = m->cap_owned ? m->cap_owned * 2 : 64;
        void **no = realloc(m->owned, (size_t)nc * sizeof *no);
        if (!no)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
        m->owned = no;
        m->cap_owned = nc;
    }
    DSK_TRY(dsk_tensor_alloc(m->dev, dt, rank, shape, t));
    m->owned[m->n_owned++] = t->data;
    m->owned_bytes += dsk_tensor_nbytes(t);
    return DSK_OK;
}

static dsk_status upload(dsk_model *m, dsk_tensor *dst, const void *src)
{
    return dsk_device_upload(m->dev, dst->data, src, dsk_tensor_nbytes(dst));
}

/* ---- checks ---- */

static const dsk_st_tensor *find(const dsk_model *m, const char *name)
{
    return dsk_st_find(m->st, name);
}

static dsk_status check_shape(const dsk_model *m, const dsk_st_tensor *t, int rank, const int64_t *shape,
                              const char *dims)
{
    int ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = t->shape[i] == shape[i];
    if (ok)
        return DSK_OK;
    char got[96] = "[", want[96] = "[";
    for (int i = 0; i < t->rank && i < 4; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    for (int i = 0; i < rank; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
    strcat(got, t->rank > 4 ? ", ...]" : "]");
    strcat(want, "]");
    return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s = %s",
                    m->st->files[t->file].path, t->name, got, dims, want);
}

static dsk_status missing(const dsk_model *m, const char *name)
{
    return dsk_fail(DSK_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing from the checkpoint", m->dir, name);
}

static dsk_status bad_dtype(const dsk_model *m, const dsk_st_tensor *t, const char *want)
{
    return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s, expected %s", m->st->files[t->file].path,
                    t->name, t->dtype_name, want);
}

/* Checks one spec's tensors; fills w (weight) and s (scale, NULL if none). */
static dsk_status check_spec(const dsk_model *m, const dsk_wspec *sp, const dsk_st_tensor **w,
                             const dsk_st_tensor **s)
{
    char nm[160];
    dsk_wspec_tensor_name(sp, nm, sizeof nm);
    *w = find(m, nm);
    *s = NULL;
    if (!*w)
        return missing(m, nm);
    const dsk_st_tensor *t = *w;
    switch (sp->kind) {
    case DSK_WK_NORM:
        if (t->dtype != DSK_BF16 && t->dtype != DSK_F32)
            return bad_dtype(m, t, "BF16 or F32");
        return check_shape(m, t, 1, (int64_t[]){sp->n}, sp->dims);
    case DSK_WK_BIAS:
        if (t->dtype != DSK_BF16 && t->dtype != DSK_F32)
            return bad_dtype(m, t, "F32 or BF16");
        return check_shape(m, t, 1, (int64_t[]){sp->n}, sp->dims);
    case DSK_WK_EMBED:
    case DSK_WK_LINEAR_BF16:
        if (t->dtype != DSK_BF16 && t->dtype != DSK_F32)
            return bad_dtype(m, t, "BF16 or F32");
        return check_shape(m, t, 2, (int64_t[]){sp->n, sp->k}, sp->dims);
    case DSK_WK_LINEAR:
        if (t->dtype == DSK_E4M3) {
            DSK_TRY(check_shape(m, t, 2, (int64_t[]){sp->n, sp->k}, sp->dims));
            char sn[176];
            snprintf(sn, sizeof sn, "%s.weight_scale_inv", sp->name);
            *s = find(m, sn);
            if (!*s)
                return missing(m, sn);
            if ((*s)->dtype != DSK_F32)
                return bad_dtype(m, *s, "F32");
            return check_shape(m, *s, 2, (int64_t[]){cdiv(sp->n, DSK_FP8_BLOCK), cdiv(sp->k, DSK_FP8_BLOCK)},
                               "[ceil(N/128), ceil(K/128)] of its weight");
        }
        if (m->cfg.fp8)
            return bad_dtype(m, t, "F8_E4M3 (config.json has an fp8 quantization_config)");
        if (t->dtype != DSK_BF16 && t->dtype != DSK_F32)
            return bad_dtype(m, t, "BF16, F32 or F8_E4M3");
        return check_shape(m, t, 2, (int64_t[]){sp->n, sp->k}, sp->dims);
    }
    return dsk_fail(DSK_ERR_INTERNAL, "dsk_model_open: spec kind %d", (int)sp->kind);
}

/* ---- placing weights ---- */

static dsk_tensor host_view(const dsk_st_tensor *t)
{
    int64_t shape[DSK_MAX_RANK] = {1, 1, 1, 1};
    for (int i = 0; i < t->rank && i < DSK_MAX_RANK; i++)
        shape[i] = t->shape[i];
    return dsk_tensor_view((void *)t->data, t->dtype, t->rank, shape);
}

static int aligned_for(const dsk_st_tensor *t)
{
    return ((uintptr_t)t->data % dsk_dtype_size(t->dtype)) == 0;
}

/* A small tensor (norm, bias) as the device wants it: f32 bias / norm as stored. */
static dsk_status place_vec(dsk_model *m, const dsk_st_tensor *t, int want_f32, dsk_tensor *out)
{
    if (m->zero_copy && aligned_for(t) && (!want_f32 || t->dtype == DSK_F32)) {
        *out = host_view(t);
        return DSK_OK;
    }
    dsk_dtype dt = want_f32 ? DSK_F32 : t->dtype;
    DSK_TRY(own(m, dt, 1, (int64_t[]){t->shape[0]}, out));
    if (dt == t->dtype) {
        void *tmp = malloc(t->nbytes);
        if (!tmp)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
        memcpy(tmp, t->data, t->nbytes); /* the mapping may be unaligned */
        dsk_status s = upload(m, out, tmp);
        free(tmp);
        return s;
    }
    float *tmp = malloc(sizeof(float) * (size_t)t->shape[0]);
    if (!tmp)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
    for (int64_t i = 0; i < t->shape[0]; i++) {
        uint16_t v;
        memcpy(&v, t->data + 2 * i, 2);
        tmp[i] = dsk_bf16_to_f32(v);
    }
    dsk_status s = upload(m, out, tmp);
    free(tmp);
    return s;
}

/* Quantizes a bf16/f32 [N, K] weight into host buffers q (N*K) and s. */
static dsk_status quantize_host(const dsk_st_tensor *t, uint8_t *q, float *s)
{
    int64_t N = t->shape[0], K = t->shape[1];
    dsk_tensor w = host_view(t);
    dsk_tensor tmp = {0};
    if (!aligned_for(t)) {
        DSK_TRY(dsk_tensor_alloc(NULL, t->dtype, 2, (int64_t[]){N, K}, &tmp));
        memcpy(tmp.data, t->data, t->nbytes);
        w = tmp;
    }
    dsk_tensor qt = dsk_tensor_2d(q, DSK_E4M3, N, K);
    dsk_tensor st = dsk_tensor_2d(s, DSK_F32, cdiv(N, DSK_FP8_BLOCK), cdiv(K, DSK_FP8_BLOCK));
    dsk_status r = dsk_quant_weight_fp8(&w, &qt, &st);
    dsk_tensor_free(&tmp);
    return r;
}

/* Copies (or quantizes) one [N, K] weight into group g of the device tensors l->w / l->s. */
static dsk_status fill_lin(dsk_model *m, dsk_lin *l, int64_t g, const dsk_st_tensor *w, const dsk_st_tensor *s)
{
    int64_t N = w->shape[0], K = w->shape[1];
    size_t wb = (size_t)(N * K), sb = sizeof(float) * (size_t)(cdiv(N, DSK_FP8_BLOCK) * cdiv(K, DSK_FP8_BLOCK));
    uint8_t *wd = (uint8_t *)l->w.data + (size_t)g * wb;
    uint8_t *sd = (uint8_t *)l->s.data + (size_t)g * sb;
    if (s) {
        DSK_TRY(dsk_device_upload(m->dev, wd, w->data, wb));
        return dsk_device_upload(m->dev, sd, s->data, sb);
    }
    uint8_t *q = malloc(wb);
    float *sc = malloc(sb);
    dsk_status r = q && sc ? quantize_host(w, q, sc) : dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
    if (r == DSK_OK)
        r = dsk_device_upload(m->dev, wd, q, wb);
    if (r == DSK_OK)
        r = dsk_device_upload(m->dev, sd, sc, sb);
    free(q);
    free(sc);
    return r;
}

static dsk_status place_lin(dsk_model *m, const dsk_st_tensor *w, const dsk_st_tensor *s, dsk_lin *l)
{
    int64_t N = w->shape[0], K = w->shape[1];
    if (m->zero_copy && s && aligned_for(s)) {
        l->w = host_view(w);
        l->s = host_view(s);
        return DSK_OK;
    }
    DSK_TRY(own(m, DSK_E4M3, 2, (int64_t[]){N, K}, &l->w));
    DSK_TRY(own(m, DSK_F32, 2, (int64_t[]){cdiv(N, DSK_FP8_BLOCK), cdiv(K, DSK_FP8_BLOCK)}, &l->s));
    return fill_lin(m, l, 0, w, s);
}

/* E experts' weights as one [E, N, K] tensor: a strided view of the mapping when they
 * lie evenly spaced in one file (the generator writes them so), else a copy. */
static dsk_status place_stack(dsk_model *m, int E, const dsk_st_tensor **w, const dsk_st_tensor **s, dsk_lin *l)
{
    int64_t N = w[0]->shape[0], K = w[0]->shape[1], nb = cdiv(N, DSK_FP8_BLOCK), kb = cdiv(K, DSK_FP8_BLOCK);
    int view = m->zero_copy && s[0] != NULL;
    ptrdiff_t dw = E > 1 ? w[1]->data - w[0]->data : 0, ds = E > 1 && s[0] ? s[1]->data - s[0]->data : 0;
    for (int e = 0; view && e < E; e++)
        view = s[e] && w[e]->file == w[0]->file && s[e]->file == s[0]->file && aligned_for(s[e]) &&
               w[e]->data - w[0]->data == e * dw && s[e]->data - s[0]->data == e * ds && dw >= 0 && ds >= 0 &&
               ds % (ptrdiff_t)sizeof(float) == 0;
    if (view) {
        l->w = dsk_tensor_3d((void *)w[0]->data, DSK_E4M3, E, N, K);
        l->w.stride[0] = E > 1 ? (int64_t)dw : N * K;
        l->s = dsk_tensor_3d((void *)s[0]->data, DSK_F32, E, nb, kb);
        l->s.stride[0] = E > 1 ? (int64_t)(ds / (ptrdiff_t)sizeof(float)) : nb * kb;
        return DSK_OK;
    }
    DSK_TRY(own(m, DSK_E4M3, 3, (int64_t[]){E, N, K}, &l->w));
    DSK_TRY(own(m, DSK_F32, 3, (int64_t[]){E, nb, kb}, &l->s));
    for (int e = 0; e < E; e++)
        DSK_TRY(fill_lin(m, l, e, w[e], s[e]));
    return DSK_OK;
}

/* kv_b_proj [H*(nope+v), kv_lora] -> w_uk_t [H, kv_lora, nope] and w_uv [H, v, kv_lora],
 * each re-blocked to 128x128 FP8 from the dequantized weight (exact when the head
 * boundaries fall on block boundaries, as for V3: a block's largest code stays 448). */
static dsk_status place_absorbed(dsk_model *m, const dsk_st_tensor *w, const dsk_st_tensor *s, dsk_layer_w *L)
{
    const dsk_model_config *c = &m->cfg;
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim,
                  R = c->kv_lora_rank, rows = H * (nope + vd);
    dsk_status r = DSK_OK;
    float *full = malloc(sizeof(float) * (size_t)(rows * R));
    float *part = malloc(sizeof(float) * (size_t)((nope > vd ? nope : vd) * R));
    uint8_t *q = malloc((size_t)(H * (nope > vd ? nope : vd) * R));
    float *sc = malloc(sizeof(float) * (size_t)(H * cdiv(nope > vd ? nope : vd, DSK_FP8_BLOCK) * cdiv(R, DSK_FP8_BLOCK) +
                                                H * cdiv(R, DSK_FP8_BLOCK) * cdiv(nope, DSK_FP8_BLOCK)));
    if (!full || !part || !q || !sc) {
        r = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
        goto done;
    }
    dsk_tensor fw = dsk_tensor_2d(full, DSK_F32, rows, R);
    if (s) {
        dsk_tensor qv = host_view(w);
        dsk_tensor sv = host_view(s);
        float *sa = NULL;
        if (!aligned_for(s)) {
            sa = malloc(s->nbytes);
            if (!sa) {
                r = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
                goto done;
            }
            memcpy(sa, s->data, s->nbytes);
            sv.data = sa;
        }
        r = dsk_dequant_weight_fp8(&qv, &sv, &fw);
        free(sa);
    } else {
        for (int64_t i = 0; i < rows * R; i++) {
            if (w->dtype == DSK_F32) {
                memcpy(&full[i], w->data + 4 * i, 4);
            } else {
                uint16_t v;
                memcpy(&v, w->data + 2 * i, 2);
                full[i] = dsk_bf16_to_f32(v);
            }
        }
    }
    if (r != DSK_OK)
        goto done;
    /* W_UK^T: per head [R, nope] from rows h*(nope+v) .. +nope, transposed. */
    int64_t kb_uk = cdiv(nope, DSK_FP8_BLOCK), nb_uk = cdiv(R, DSK_FP8_BLOCK);
    r = own(m, DSK_E4M3, 3, (int64_t[]){H, R, nope}, &L->w_uk_t.w);
    if (r == DSK_OK)
        r = own(m, DSK_F32, 3, (int64_t[]){H, nb_uk, kb_uk}, &L->w_uk_t.s);
    for (int64_t h = 0; h < H && r == DSK_OK; h++) {
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < nope; j++)
                part[i * nope + j] = full[(h * (nope + vd) + j) * R + i];
        dsk_tensor pw = dsk_tensor_2d(part, DSK_F32, R, nope);
        dsk_tensor qt = dsk_tensor_2d(q + h * R * nope, DSK_E4M3, R, nope);
        dsk_tensor st = dsk_tensor_2d(sc + h * nb_uk * kb_uk, DSK_F32, nb_uk, kb_uk);
        r = dsk_quant_weight_fp8(&pw, &qt, &st);
    }
    if (r == DSK_OK)
        r = upload(m, &L->w_uk_t.w, q);
    if (r == DSK_OK)
        r = upload(m, &L->w_uk_t.s, sc);
    /* W_UV: per head [v, R] from rows h*(nope+v)+nope .. +v (already K-major). */
    int64_t nb_uv = cdiv(vd, DSK_FP8_BLOCK), kb_uv = cdiv(R, DSK_FP8_BLOCK);
    if (r == DSK_OK)
        r = own(m, DSK_E4M3, 3, (int64_t[]){H, vd, R}, &L->w_uv.w);
    if (r == DSK_OK)
        r = own(m, DSK_F32, 3, (int64_t[]){H, nb_uv, kb_uv}, &L->w_uv.s);
    for (int64_t h = 0; h < H && r == DSK_OK; h++) {
        dsk_tensor pw = dsk_tensor_2d(full + (h * (nope + vd) + nope) * R, DSK_F32, vd, R);
        dsk_tensor qt = dsk_tensor_2d(q + h * vd * R, DSK_E4M3, vd, R);
        dsk_tensor st = dsk_tensor_2d(sc + h * nb_uv * kb_uv, DSK_F32, nb_uv, kb_uv);
        r = dsk_quant_weight_fp8(&pw, &qt, &st);
    }
    if (r == DSK_OK)
        r = upload(m, &L->w_uv.w, q);
    if (r == DSK_OK)
        r = upload(m, &L->w_uv.s, sc);
done:
    free(full);
    free(part);
    free(q);
    free(sc);
    return r;
}

/* ---- open ---- */

/* Which field of the model a spec fills. */
static dsk_status place_spec(dsk_model *m, const dsk_wspec *sp, const dsk_st_tensor *w, const dsk_st_tensor *s)
{
    const char *n = sp->name;
    if (!strcmp(n, "model.embed_tokens")) {
        if (!aligned_for(w))
            return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" is not aligned to its element size in the file",
                            m->st->files[w->file].path, w->name);
        m->embed = host_view(w);
        return DSK_OK;
    }
    if (!strcmp(n, "model.norm"))
        return place_vec(m, w, 0, &m->final_norm);
    if (!strcmp(n, "lm_head"))
        return place_lin(m, w, s, &m->lm_head);
    int li, used = 0;
    if (sscanf(n, "model.layers.%d.%n", &li, &used) != 1 || li < 0 || li >= m->cfg.num_hidden_layers)
        return dsk_fail(DSK_ERR_INTERNAL, "dsk_model_open: unexpected spec %s", n);
    dsk_layer_w *L = &m->layers[li];
    const char *f = n + used;
    if (!strcmp(f, "input_layernorm")) return place_vec(m, w, 0, &L->in_norm);
    if (!strcmp(f, "post_attention_layernorm")) return place_vec(m, w, 0, &L->post_norm);
    if (!strcmp(f, "self_attn.q_a_proj")) return place_lin(m, w, s, &L->q_a);
    if (!strcmp(f, "self_attn.q_a_layernorm")) return place_vec(m, w, 0, &L->q_a_norm);
    if (!strcmp(f, "self_attn.q_b_proj")) return place_lin(m, w, s, &L->q_b);
    if (!strcmp(f, "self_attn.q_proj")) return place_lin(m, w, s, &L->q);
    if (!strcmp(f, "self_attn.kv_a_proj_with_mqa")) return place_lin(m, w, s, &L->kv_a);
    if (!strcmp(f, "self_attn.kv_a_layernorm")) return place_vec(m, w, 0, &L->kv_a_norm);
    if (!strcmp(f, "self_attn.kv_b_proj")) {
        DSK_TRY(place_lin(m, w, s, &L->kv_b));
        return place_absorbed(m, w, s, L);
    }
    if (!strcmp(f, "self_attn.o_proj")) return place_lin(m, w, s, &L->o);
    if (!strcmp(f, "mlp.gate_proj") || !strcmp(f, "mlp.shared_experts.gate_proj")) return place_lin(m, w, s, &L->gate);
    if (!strcmp(f, "mlp.up_proj") || !strcmp(f, "mlp.shared_experts.up_proj")) return place_lin(m, w, s, &L->up);
    if (!strcmp(f, "mlp.down_proj") || !strcmp(f, "mlp.shared_experts.down_proj")) return place_lin(m, w, s, &L->down);
    if (!strcmp(f, "mlp.gate")) return place_lin(m, w, s, &L->router);
    if (!strcmp(f, "mlp.gate.e_score_correction_bias")) return place_vec(m, w, 1, &L->bias);
    return dsk_fail(DSK_ERR_INTERNAL, "dsk_model_open: unexpected spec %s", n);
}

dsk_status dsk_model_open(dsk_device *dev, const char *dir, dsk_model **out)
{
    if (!dev || !dir || !out)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_model_open: dev, dir and out must be non-NULL");
    *out = NULL;
    dsk_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
    m->dev = dev;
    m->dir = strdup(dir);
    m->zero_copy = !strcmp(dsk_device_get_props(dev)->backend, "cpu");
    dsk_wspec *specs = NULL;
    const dsk_st_tensor **tw = NULL, **ts = NULL;
    int n = 0;
    size_t pl = strlen(dir) + 16;
    char *cfg_path = malloc(pl);
    dsk_status s = m->dir && cfg_path ? DSK_OK : dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
    if (s == DSK_OK) {
        snprintf(cfg_path, pl, "%s/config.json", dir);
        s = dsk_model_config_load(cfg_path, &m->cfg);
    }
    if (s == DSK_OK)
        s = dsk_st_open(dir, &m->st);
    if (s == DSK_OK)
        s = dsk_model_wspecs(&m->cfg, &specs, &n);
    if (s == DSK_OK) {
        m->layers = calloc((size_t)m->cfg.num_hidden_layers, sizeof *m->layers);
        tw = calloc((size_t)n, sizeof *tw);
        ts = calloc((size_t)n, sizeof *ts);
        if (!m->layers || !tw || !ts)
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_open: out of memory");
    }
    /* Pass 1: every tensor checked before anything is placed or computed. */
    for (int i = 0; i < n && s == DSK_OK; i++)
        s = check_spec(m, &specs[i], &tw[i], &ts[i]);
    /* Pass 2: place. Experts are placed per projection as one stacked tensor. */
    for (int i = 0; i < n && s == DSK_OK;) {
        int li, e, used = 0;
        char proj[16];
        if (sscanf(specs[i].name, "model.layers.%d.mlp.experts.%d.%15[a-z]_proj%n", &li, &e, proj, &used) == 3 &&
            e == 0) {
            dsk_layer_w *L = &m->layers[li];
            L->moe = 1;
            int E = m->cfg.n_routed_experts;
            dsk_lin *dst = !strcmp(proj, "gate") ? &L->ex_gate : !strcmp(proj, "up") ? &L->ex_up : &L->ex_down;
            s = place_stack(m, E, tw + i, ts + i, dst);
            i += E;
            continue;
        }
        s = place_spec(m, &specs[i], tw[i], ts[i]);
        i++;
    }
    for (int li = 0; li < m->cfg.num_hidden_layers && s == DSK_OK; li++)
        m->layers[li].has_shared = m->layers[li].moe && m->cfg.n_shared_experts > 0;
    free(specs);
    free(tw);
    free(ts);
    free(cfg_path);
    if (s != DSK_OK) {
        dsk_model_close(m);
        return s;
    }
    *out = m;
    return DSK_OK;
}

void dsk_model_close(dsk_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        dsk_device_free(m->dev, m->owned[i]);
    free(m->owned);
    free(m->layers);
    dsk_st_close(m->st);
    free(m->dir);
    free(m);
}

const dsk_model_config *dsk_model_get_config(const dsk_model *m) { return m ? &m->cfg : NULL; }
dsk_device *dsk_model_get_device(const dsk_model *m) { return m ? m->dev : NULL; }
size_t dsk_model_weight_bytes(const dsk_model *m) { return m ? m->owned_bytes : 0; }
