/* model/checkpoint.c: the tensor list a config implies (shared by the loader's checks
 * and the generator), and `dsk model new`: a checkpoint with seeded random weights in
 * the Hugging Face DeepSeek-V3 layout. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "model/model_internal.h"

typedef struct wlist { dsk_wspec *v; int n, cap; } wlist;

static int add(wlist *l, dsk_wkind kind, int64_t n, int64_t k, const char *dims, double std,
               const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int add(wlist *l, dsk_wkind kind, int64_t n, int64_t k, const char *dims, double std,
               const char *fmt, ...)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        dsk_wspec *nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return 0;
        l->v = nv;
        l->cap = nc;
    }
    dsk_wspec *w = &l->v[l->n++];
    memset(w, 0, sizeof *w);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->name, sizeof w->name, fmt, ap);
    va_end(ap);
    w->kind = kind;
    w->n = n;
    w->k = k;
    w->dims = dims;
    w->std = std;
    return 1;
}

dsk_status dsk_model_wspecs(const dsk_model_config *c, dsk_wspec **out, int *count)
{
    wlist l = {0};
    int ok = 1;
    const int64_t hd = c->hidden_size, H = c->num_attention_heads;
    const int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    const double norm_std = 0.1;
    /* GPT-2's init (Radford et al. 2019, "Language Models are Unsupervised Multitask
     * Learners", section 2.3): the projections that write into the residual stream
     * (o_proj, the MLPs' and experts' down_proj) get 1/sqrt(2 * layers) of the usual
     * 1/sqrt(k), so the residual stream stays dominated by the embedding and a small
     * perturbation early (one e4m3 rounding flipped by another f32 summation order) is not
     * amplified layer over layer into a different expert choice. */
    const double res_scale = 1.0 / sqrt(2.0 * (c->num_hidden_layers > 0 ? c->num_hidden_layers : 1));
#define LIN(n, k, dims, ...) (ok = ok && add(&l, DSK_WK_LINEAR, n, k, dims, 1.0 / sqrt((double)(k)), __VA_ARGS__))
#define LIN_RES(n, k, dims, ...) \
    (ok = ok && add(&l, DSK_WK_LINEAR, n, k, dims, res_scale / sqrt((double)(k)), __VA_ARGS__))
#define NORM(n, dims, ...) (ok = ok && add(&l, DSK_WK_NORM, n, 0, dims, norm_std, __VA_ARGS__))
    ok = add(&l, DSK_WK_EMBED, c->vocab_size, hd, "[vocab_size, hidden_size]", 1.0, "model.embed_tokens");
    for (int i = 0; i < c->num_hidden_layers && ok; i++) {
        NORM(hd, "[hidden_size]", "model.layers.%d.input_layernorm", i);
        if (c->q_lora_rank > 0) {
            LIN(c->q_lora_rank, hd, "[q_lora_rank, hidden_size]", "model.layers.%d.self_attn.q_a_proj", i);
            NORM(c->q_lora_rank, "[q_lora_rank]", "model.layers.%d.self_attn.q_a_layernorm", i);
            LIN(H * qk, c->q_lora_rank, "[num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim), q_lora_rank]",
                "model.layers.%d.self_attn.q_b_proj", i);
        } else {
            LIN(H * qk, hd, "[num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim), hidden_size]",
                "model.layers.%d.self_attn.q_proj", i);
        }
        LIN(c->kv_lora_rank + c->qk_rope_head_dim, hd, "[kv_lora_rank + qk_rope_head_dim, hidden_size]",
            "model.layers.%d.self_attn.kv_a_proj_with_mqa", i);
        NORM(c->kv_lora_rank, "[kv_lora_rank]", "model.layers.%d.self_attn.kv_a_layernorm", i);
        LIN(H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
            "[num_attention_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]", "model.layers.%d.self_attn.kv_b_proj", i);
        LIN_RES(hd, H * c->v_head_dim, "[hidden_size, num_attention_heads * v_head_dim]", "model.layers.%d.self_attn.o_proj", i);
        NORM(hd, "[hidden_size]", "model.layers.%d.post_attention_layernorm", i);
        if (!dsk_model_layer_is_moe(c, i)) {
            LIN(c->intermediate_size, hd, "[intermediate_size, hidden_size]", "model.layers.%d.mlp.gate_proj", i);
            LIN(c->intermediate_size, hd, "[intermediate_size, hidden_size]", "model.layers.%d.mlp.up_proj", i);
            LIN_RES(hd, c->intermediate_size, "[hidden_size, intermediate_size]", "model.layers.%d.mlp.down_proj", i);
            continue;
        }
        const int64_t E = c->n_routed_experts, I = c->moe_intermediate_size;
        ok = ok && add(&l, DSK_WK_LINEAR_BF16, E, hd, "[n_routed_experts, hidden_size]", 1.0 / sqrt((double)hd),
                       "model.layers.%d.mlp.gate", i);
        ok = ok && add(&l, DSK_WK_BIAS, E, 0, "[n_routed_experts]", 0.1,
                       "model.layers.%d.mlp.gate.e_score_correction_bias", i);
        /* Experts by projection, then by index: each projection's weights are equally
         * spaced in the file, so the loader can view them as one [E, N, K] tensor. */
        for (int e = 0; e < E; e++)
            LIN(I, hd, "[moe_intermediate_size, hidden_size]", "model.layers.%d.mlp.experts.%d.gate_proj", i, e);
        for (int e = 0; e < E; e++)
            LIN(I, hd, "[moe_intermediate_size, hidden_size]", "model.layers.%d.mlp.experts.%d.up_proj", i, e);
        for (int e = 0; e < E; e++)
            LIN_RES(hd, I, "[hidden_size, moe_intermediate_size]", "model.layers.%d.mlp.experts.%d.down_proj", i, e);
        if (c->n_shared_experts > 0) {
            const int64_t S = I * c->n_shared_experts;
            LIN(S, hd, "[n_shared_experts * moe_intermediate_size, hidden_size]", "model.layers.%d.mlp.shared_experts.gate_proj", i);
            LIN(S, hd, "[n_shared_experts * moe_intermediate_size, hidden_size]", "model.layers.%d.mlp.shared_experts.up_proj", i);
            LIN_RES(hd, S, "[hidden_size, n_shared_experts * moe_intermediate_size]", "model.layers.%d.mlp.shared_experts.down_proj", i);
        }
    }
    NORM(hd, "[hidden_size]", "model.norm");
    ok = ok && add(&l, DSK_WK_LINEAR_BF16, c->vocab_size, hd, "[vocab_size, hidden_size]", 1.0 / sqrt((double)hd), "lm_head");
#undef LIN
#undef LIN_RES
#undef NORM
    if (!ok) {
        free(l.v);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_wspecs: out of memory");
    }
    *out = l.v;
    *count = l.n;
    return DSK_OK;
}

void dsk_wspec_tensor_name(const dsk_wspec *w, char *buf, size_t len)
{
    if (w->kind == DSK_WK_BIAS)
        snprintf(buf, len, "%s", w->name);
    else
        snprintf(buf, len, "%s.weight", w->name);
}

/* ---- the generator ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct gen { uint64_t s; int have; double spare; } gen;

static double gen_normal(gen *g)
{
    if (g->have) {
        g->have = 0;
        return g->spare;
    }
    double u, v, r;
    do {
        u = (double)(splitmix(&g->s) >> 11) * 0x1.0p-53 * 2 - 1;
        v = (double)(splitmix(&g->s) >> 11) * 0x1.0p-53 * 2 - 1;
        r = u * u + v * v;
    } while (r >= 1 || r == 0);
    double f = sqrt(-2 * log(r) / r);
    g->spare = v * f;
    g->have = 1;
    return u * f;
}

/* Each tensor's values come from its own stream (seed, name), independent of order and
 * sharding. */
static gen gen_for(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    gen g = {.s = seed ^ h};
    splitmix(&g.s);
    return g;
}

typedef struct out_tensor { char name[144]; dsk_dtype dtype; int rank; int64_t shape[2]; size_t bytes; int spec; int part; } out_tensor;

static size_t dtype_bytes(dsk_dtype t, int64_t n) { return dsk_dtype_size(t) * (size_t)n; }

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Writes spec w's tensors' data (weight, then scales for FP8 linears). */
static dsk_status write_spec(dsk_st_writer *wr, const dsk_wspec *w, int fp8, uint64_t seed, float *rows,
                             uint16_t *bf, uint8_t *q8, float *sc)
{
    char nm[128];
    dsk_wspec_tensor_name(w, nm, sizeof nm);
    gen g = gen_for(seed, nm);
    if (w->kind == DSK_WK_NORM || w->kind == DSK_WK_BIAS) {
        for (int64_t i = 0; i < w->n; i++) {
            double v = w->kind == DSK_WK_NORM ? 1.0 + w->std * gen_normal(&g) : w->std * gen_normal(&g);
            if (w->kind == DSK_WK_NORM)
                bf[i] = dsk_f32_to_bf16((float)v);
            else
                sc[i] = (float)v;
        }
        return w->kind == DSK_WK_NORM ? dsk_st_writer_data(wr, bf, dtype_bytes(DSK_BF16, w->n))
                                      : dsk_st_writer_data(wr, sc, dtype_bytes(DSK_F32, w->n));
    }
    int quant = w->kind == DSK_WK_LINEAR && fp8;
    int64_t kb = cdiv(w->k, DSK_FP8_BLOCK);
    for (int64_t r0 = 0; r0 < w->n; r0 += DSK_FP8_BLOCK) {
        int64_t rows_n = w->n - r0 < DSK_FP8_BLOCK ? w->n - r0 : DSK_FP8_BLOCK;
        for (int64_t i = 0; i < rows_n * w->k; i++)
            rows[i] = (float)(w->std * gen_normal(&g));
        if (quant) {
            dsk_tensor x = dsk_tensor_2d(rows, DSK_F32, rows_n, w->k);
            dsk_tensor q = dsk_tensor_2d(q8, DSK_E4M3, rows_n, w->k);
            dsk_tensor s = dsk_tensor_2d(sc + (r0 / DSK_FP8_BLOCK) * kb, DSK_F32, 1, kb);
            DSK_TRY(dsk_quant_weight_fp8(&x, &q, &s));
            DSK_TRY(dsk_st_writer_data(wr, q8, (size_t)(rows_n * w->k)));
        } else {
            for (int64_t i = 0; i < rows_n * w->k; i++)
                bf[i] = dsk_f32_to_bf16(rows[i]);
            DSK_TRY(dsk_st_writer_data(wr, bf, dtype_bytes(DSK_BF16, rows_n * w->k)));
        }
    }
    if (quant)
        DSK_TRY(dsk_st_writer_data(wr, sc, dtype_bytes(DSK_F32, cdiv(w->n, DSK_FP8_BLOCK) * kb)));
    return DSK_OK;
}

static int spec_tensors(const dsk_wspec *w, int fp8, out_tensor *t)
{
    memset(t, 0, 2 * sizeof *t);
    dsk_wspec_tensor_name(w, t[0].name, sizeof t[0].name);
    if (w->kind == DSK_WK_NORM || w->kind == DSK_WK_BIAS) {
        t[0].dtype = w->kind == DSK_WK_NORM ? DSK_BF16 : DSK_F32;
        t[0].rank = 1;
        t[0].shape[0] = w->n;
        t[0].bytes = dtype_bytes(t[0].dtype, w->n);
        return 1;
    }
    int quant = w->kind == DSK_WK_LINEAR && fp8;
    t[0].dtype = quant ? DSK_E4M3 : DSK_BF16;
    t[0].rank = 2;
    t[0].shape[0] = w->n;
    t[0].shape[1] = w->k;
    t[0].bytes = dtype_bytes(t[0].dtype, w->n * w->k);
    if (!quant)
        return 1;
    snprintf(t[1].name, sizeof t[1].name, "%s.weight_scale_inv", w->name);
    t[1].dtype = DSK_F32;
    t[1].rank = 2;
    t[1].shape[0] = cdiv(w->n, DSK_FP8_BLOCK);
    t[1].shape[1] = cdiv(w->k, DSK_FP8_BLOCK);
    t[1].bytes = dtype_bytes(DSK_F32, t[1].shape[0] * t[1].shape[1]);
    return 2;
}

static dsk_status write_shard(const char *path, const dsk_wspec *specs, int s0, int s1, int fp8, uint64_t seed,
                              float *rows, uint16_t *bf, uint8_t *q8, float *sc)
{
    dsk_st_writer *wr;
    DSK_TRY(dsk_st_writer_new(path, &wr));
    dsk_status s = DSK_OK;
    for (int i = s0; i < s1 && s == DSK_OK; i++) {
        out_tensor t[2];
        int nt = spec_tensors(&specs[i], fp8, t);
        for (int j = 0; j < nt && s == DSK_OK; j++)
            s = dsk_st_writer_declare(wr, t[j].name, t[j].dtype, t[j].rank, t[j].shape);
    }
    if (s == DSK_OK)
        s = dsk_st_writer_begin_data(wr);
    for (int i = s0; i < s1 && s == DSK_OK; i++)
        s = write_spec(wr, &specs[i], fp8, seed, rows, bf, q8, sc);
    if (s == DSK_OK)
        s = dsk_st_writer_finish(wr);
    dsk_st_writer_free(wr);
    return s;
}

dsk_status dsk_model_write_random(const dsk_model_config *cfg, const char *dir, uint64_t seed,
                                  size_t max_shard_bytes)
{
    DSK_TRY(dsk_model_config_validate(cfg, "dsk_model_write_random: cfg"));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return dsk_fail(DSK_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    dsk_wspec *specs;
    int n;
    DSK_TRY(dsk_model_wspecs(cfg, &specs, &n));
    int64_t maxk = 0, maxn = 0;
    for (int i = 0; i < n; i++) {
        if (specs[i].k > maxk) maxk = specs[i].k;
        if (specs[i].n > maxn) maxn = specs[i].n;
    }
    if (maxk < 1) maxk = 1;
    float *rows = malloc(sizeof(float) * DSK_FP8_BLOCK * (size_t)maxk);
    uint16_t *bf = malloc(sizeof(uint16_t) * (size_t)(DSK_FP8_BLOCK * maxk > maxn ? DSK_FP8_BLOCK * maxk : maxn));
    uint8_t *q8 = malloc((size_t)(DSK_FP8_BLOCK * maxk));
    float *sc = malloc(sizeof(float) * (size_t)(cdiv(maxn, DSK_FP8_BLOCK) * cdiv(maxk, DSK_FP8_BLOCK) + maxn));
    size_t plen = strlen(dir) + 64;
    char *path = malloc(plen);
    int *shard_end = malloc(sizeof(int) * ((size_t)n + 1));
    dsk_status s = DSK_OK;
    if (!rows || !bf || !q8 || !sc || !path || !shard_end) {
        s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_model_write_random: out of memory");
        goto done;
    }
    /* Shards: consecutive specs, cut when the next would pass max_shard_bytes. */
    int n_shards = 0;
    size_t acc = 0;
    for (int i = 0; i < n; i++) {
        out_tensor t[2];
        int nt = spec_tensors(&specs[i], cfg->fp8, t);
        size_t b = t[0].bytes + (nt > 1 ? t[1].bytes : 0);
        if (max_shard_bytes && acc > 0 && acc + b > max_shard_bytes) {
            shard_end[n_shards++] = i;
            acc = 0;
        }
        acc += b;
    }
    shard_end[n_shards++] = n;
    if (n_shards == 1) {
        snprintf(path, plen, "%s/model.safetensors", dir);
        s = write_shard(path, specs, 0, n, cfg->fp8, seed, rows, bf, q8, sc);
    } else {
        snprintf(path, plen, "%s/model.safetensors.index.json", dir);
        FILE *ix = fopen(path, "w");
        if (!ix) {
            s = dsk_fail(DSK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            goto done;
        }
        fprintf(ix, "{\n  \"metadata\": {\"generator\": \"dsk model new\"},\n  \"weight_map\": {");
        int first = 1;
        for (int sh = 0, i0 = 0; sh < n_shards && s == DSK_OK; i0 = shard_end[sh], sh++) {
            char fname[96];
            snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
            snprintf(path, plen, "%s/%s", dir, fname);
            s = write_shard(path, specs, i0, shard_end[sh], cfg->fp8, seed, rows, bf, q8, sc);
            for (int i = i0; i < shard_end[sh]; i++) {
                out_tensor t[2];
                int nt = spec_tensors(&specs[i], cfg->fp8, t);
                for (int j = 0; j < nt; j++) {
                    fprintf(ix, "%s\n    \"%s\": \"%s\"", first ? "" : ",", t[j].name, fname);
                    first = 0;
                }
            }
        }
        fprintf(ix, "\n  }\n}\n");
        if (fclose(ix) != 0 && s == DSK_OK)
            s = dsk_fail(DSK_ERR_IO, "%s/model.safetensors.index.json: write failed", dir);
    }
    if (s == DSK_OK) {
        snprintf(path, plen, "%s/config.json", dir);
        s = dsk_model_config_write(cfg, path);
    }
done:
    free(rows);
    free(bf);
    free(q8);
    free(sc);
    free(path);
    free(shard_end);
    free(specs);
    return s;
}
