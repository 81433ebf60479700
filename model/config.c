/* model/config.c: config.json of a DeepSeek-V3-architecture checkpoint: reading with
 * strict checks, the presets (tiny, small, v3-layers=N), and writing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "dsk/model.h"
#include "core/json.h"

int dsk_model_layer_is_moe(const dsk_model_config *c, int layer)
{
    return c->n_routed_experts > 0 && layer >= c->first_k_dense_replace &&
           layer % (c->moe_layer_freq > 0 ? c->moe_layer_freq : 1) == 0;
}

/* ---- reading --------------------------------------------------------------------- */

typedef struct reader { const char *src; const dsk_json *root; } reader;

static dsk_status missing(const reader *r, const char *key)
{
    return dsk_fail(DSK_ERR_FORMAT, "%s: missing key \"%s\"", r->src, key);
}

static dsk_status get_int(const reader *r, const dsk_json *obj, const char *key, int required,
                          int lo, int dflt, int *out)
{
    const dsk_json *v = dsk_json_get(obj, key);
    if (!v || (!required && v->type == DSK_JSON_NULL)) {
        if (required)
            return missing(r, key);
        *out = dflt;
        return DSK_OK;
    }
    if (v->type != DSK_JSON_NUMBER || !v->is_int)
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"%s\" (line %d) is a %s, expected an integer", r->src,
                        key, v->line, v->type == DSK_JSON_NUMBER ? "fractional number" : dsk_json_type_name(v->type));
    if (v->i64 < lo || v->i64 > (1 << 30))
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"%s\" (line %d) is %lld, expected %d..%d", r->src, key,
                        v->line, (long long)v->i64, lo, 1 << 30);
    *out = (int)v->i64;
    return DSK_OK;
}

static dsk_status get_num(const reader *r, const dsk_json *obj, const char *key, int required,
                          double dflt, float *out)
{
    const dsk_json *v = dsk_json_get(obj, key);
    if (!v) {
        if (required)
            return missing(r, key);
        *out = (float)dflt;
        return DSK_OK;
    }
    if (v->type != DSK_JSON_NUMBER)
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"%s\" (line %d) is a %s, expected a number", r->src, key,
                        v->line, dsk_json_type_name(v->type));
    *out = (float)v->num;
    return DSK_OK;
}

static dsk_status expect_str(const reader *r, const dsk_json *obj, const char *key, const char *want,
                             int required)
{
    const dsk_json *v = dsk_json_get(obj, key);
    if (!v)
        return required ? missing(r, key) : DSK_OK;
    if (v->type != DSK_JSON_STRING || strcmp(v->str, want))
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"%s\" (line %d) is %s%s%s, dsk supports \"%s\"", r->src, key,
                        v->line, v->type == DSK_JSON_STRING ? "\"" : "a ",
                        v->type == DSK_JSON_STRING ? v->str : dsk_json_type_name(v->type),
                        v->type == DSK_JSON_STRING ? "\"" : "", want);
    return DSK_OK;
}

static dsk_status parse_config(const reader *r, dsk_model_config *c)
{
    const dsk_json *j = r->root;
    if (j->type != DSK_JSON_OBJECT)
        return dsk_fail(DSK_ERR_FORMAT, "%s: expected a JSON object, got a %s", r->src, dsk_json_type_name(j->type));
    memset(c, 0, sizeof *c);
    DSK_TRY(expect_str(r, j, "model_type", "deepseek_v3", 1));
    DSK_TRY(get_int(r, j, "vocab_size", 1, 1, 0, &c->vocab_size));
    DSK_TRY(get_int(r, j, "hidden_size", 1, 1, 0, &c->hidden_size));
    DSK_TRY(get_int(r, j, "intermediate_size", 1, 1, 0, &c->intermediate_size));
    DSK_TRY(get_int(r, j, "moe_intermediate_size", 1, 1, 0, &c->moe_intermediate_size));
    DSK_TRY(get_int(r, j, "num_hidden_layers", 1, 1, 0, &c->num_hidden_layers));
    DSK_TRY(get_int(r, j, "first_k_dense_replace", 1, 0, 0, &c->first_k_dense_replace));
    DSK_TRY(get_int(r, j, "moe_layer_freq", 0, 1, 1, &c->moe_layer_freq));
    DSK_TRY(get_int(r, j, "num_attention_heads", 1, 1, 0, &c->num_attention_heads));
    int kvh;
    DSK_TRY(get_int(r, j, "num_key_value_heads", 0, 1, c->num_attention_heads, &kvh));
    if (kvh != c->num_attention_heads)
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"num_key_value_heads\" is %d but num_attention_heads is %d (MLA needs them equal)",
                        r->src, kvh, c->num_attention_heads);
    DSK_TRY(get_int(r, j, "q_lora_rank", 0, 1, 0, &c->q_lora_rank));
    DSK_TRY(get_int(r, j, "kv_lora_rank", 1, 1, 0, &c->kv_lora_rank));
    DSK_TRY(get_int(r, j, "qk_nope_head_dim", 1, 1, 0, &c->qk_nope_head_dim));
    DSK_TRY(get_int(r, j, "qk_rope_head_dim", 1, 2, 0, &c->qk_rope_head_dim));
    DSK_TRY(get_int(r, j, "v_head_dim", 1, 1, 0, &c->v_head_dim));
    DSK_TRY(get_int(r, j, "n_routed_experts", 1, 1, 0, &c->n_routed_experts));
    DSK_TRY(get_int(r, j, "n_shared_experts", 1, 0, 0, &c->n_shared_experts));
    DSK_TRY(get_int(r, j, "num_experts_per_tok", 1, 1, 0, &c->num_experts_per_tok));
    DSK_TRY(get_int(r, j, "n_group", 1, 1, 0, &c->n_group));
    DSK_TRY(get_int(r, j, "topk_group", 1, 1, 0, &c->topk_group));
    DSK_TRY(get_num(r, j, "routed_scaling_factor", 1, 1.0, &c->routed_scaling_factor));
    DSK_TRY(get_num(r, j, "rms_norm_eps", 1, 1e-6, &c->rms_norm_eps));
    DSK_TRY(get_num(r, j, "rope_theta", 1, 10000, &c->rope.theta));
    DSK_TRY(get_int(r, j, "max_position_embeddings", 1, 1, 0, &c->max_position_embeddings));
    DSK_TRY(expect_str(r, j, "scoring_func", "sigmoid", 0));
    DSK_TRY(expect_str(r, j, "topk_method", "noaux_tc", 0));
    DSK_TRY(expect_str(r, j, "hidden_act", "silu", 0));
    const dsk_json *v = dsk_json_get(j, "norm_topk_prob");
    if (!v)
        return missing(r, "norm_topk_prob");
    if (v->type != DSK_JSON_BOOL)
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"norm_topk_prob\" (line %d) is a %s, expected true or false",
                        r->src, v->line, dsk_json_type_name(v->type));
    c->norm_topk_prob = v->boolean;
    v = dsk_json_get(j, "tie_word_embeddings");
    if (v && !(v->type == DSK_JSON_BOOL && !v->boolean))
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"tie_word_embeddings\" (line %d) must be false (DeepSeek-V3 has its own lm_head)",
                        r->src, v->line);
    v = dsk_json_get(j, "attention_bias");
    if (v && !(v->type == DSK_JSON_BOOL && !v->boolean))
        return dsk_fail(DSK_ERR_FORMAT, "%s: key \"attention_bias\" (line %d) must be false", r->src, v->line);

    /* rope_scaling: null/absent (plain RoPE) or YaRN. */
    c->rope.dim = c->qk_rope_head_dim;
    c->rope.factor = 1.0f;
    c->rope.original_max_pos = c->max_position_embeddings;
    c->rope.beta_fast = 32.0f;
    c->rope.beta_slow = 1.0f;
    c->rope.attn_factor = 1.0f;
    c->mscale_all_dim = 0.0f;
    const dsk_json *rs = dsk_json_get(j, "rope_scaling");
    if (rs && rs->type != DSK_JSON_NULL) {
        if (rs->type != DSK_JSON_OBJECT)
            return dsk_fail(DSK_ERR_FORMAT, "%s: key \"rope_scaling\" (line %d) is a %s, expected an object or null",
                            r->src, rs->line, dsk_json_type_name(rs->type));
        const dsk_json *ty = dsk_json_get(rs, "type");
        if (!ty)
            ty = dsk_json_get(rs, "rope_type");
        if (!ty)
            return missing(r, "rope_scaling.type");
        if (ty->type != DSK_JSON_STRING || strcmp(ty->str, "yarn"))
            return dsk_fail(DSK_ERR_FORMAT, "%s: key \"rope_scaling.type\" (line %d) must be \"yarn\"", r->src, ty->line);
        reader rr = *r;
        DSK_TRY(get_num(&rr, rs, "factor", 1, 1, &c->rope.factor));
        DSK_TRY(get_int(&rr, rs, "original_max_position_embeddings", 1, 1, 0, &c->rope.original_max_pos));
        DSK_TRY(get_num(&rr, rs, "beta_fast", 0, 32, &c->rope.beta_fast));
        DSK_TRY(get_num(&rr, rs, "beta_slow", 0, 1, &c->rope.beta_slow));
        float mscale;
        DSK_TRY(get_num(&rr, rs, "mscale", 0, 1, &mscale));
        DSK_TRY(get_num(&rr, rs, "mscale_all_dim", 0, 0, &c->mscale_all_dim));
        if (c->rope.factor <= 0)
            return dsk_fail(DSK_ERR_FORMAT, "%s: key \"rope_scaling.factor\" is %g, expected > 0", r->src, c->rope.factor);
        if (mscale != c->mscale_all_dim && c->mscale_all_dim != 0)
            return dsk_fail(DSK_ERR_FORMAT, "%s: rope_scaling.mscale (%g) differs from mscale_all_dim (%g); dsk supports equal values (attn_factor 1, as V3)",
                            r->src, mscale, c->mscale_all_dim);
    }

    /* quantization_config: absent (bf16 checkpoint, quantized at load) or fp8 e4m3 128x128. */
    const dsk_json *q = dsk_json_get(j, "quantization_config");
    if (q && q->type != DSK_JSON_NULL) {
        if (q->type != DSK_JSON_OBJECT)
            return dsk_fail(DSK_ERR_FORMAT, "%s: key \"quantization_config\" (line %d) is not an object", r->src, q->line);
        DSK_TRY(expect_str(r, q, "quant_method", "fp8", 1));
        DSK_TRY(expect_str(r, q, "fmt", "e4m3", 0));
        const dsk_json *bs = dsk_json_get(q, "weight_block_size");
        if (!bs)
            return missing(r, "quantization_config.weight_block_size");
        if (bs->type != DSK_JSON_ARRAY || bs->n != 2 || bs->items[0].type != DSK_JSON_NUMBER ||
            bs->items[1].type != DSK_JSON_NUMBER || bs->items[0].num != 128 || bs->items[1].num != 128)
            return dsk_fail(DSK_ERR_FORMAT, "%s: key \"quantization_config.weight_block_size\" (line %d) must be [128, 128]",
                            r->src, bs->line);
        c->fp8 = 1;
    }
    return dsk_model_config_validate(c, r->src);
}

dsk_status dsk_model_config_validate(const dsk_model_config *c, const char *src)
{
    if (c->num_hidden_layers < 1 || c->hidden_size < 1 || c->vocab_size < 1 || c->num_attention_heads < 1)
        return dsk_fail(DSK_ERR_FORMAT, "%s: num_hidden_layers, hidden_size, vocab_size and num_attention_heads must be >= 1", src);
    if (c->first_k_dense_replace > c->num_hidden_layers)
        return dsk_fail(DSK_ERR_FORMAT, "%s: first_k_dense_replace (%d) exceeds num_hidden_layers (%d)", src,
                        c->first_k_dense_replace, c->num_hidden_layers);
    if (c->qk_rope_head_dim % 2)
        return dsk_fail(DSK_ERR_FORMAT, "%s: qk_rope_head_dim (%d) must be even (RoPE rotates pairs)", src,
                        c->qk_rope_head_dim);
    if (c->rope.dim != c->qk_rope_head_dim)
        return dsk_fail(DSK_ERR_FORMAT, "%s: rope dim %d differs from qk_rope_head_dim %d", src, c->rope.dim,
                        c->qk_rope_head_dim);
    if (c->n_group < 1 || c->n_routed_experts % c->n_group)
        return dsk_fail(DSK_ERR_FORMAT, "%s: n_routed_experts (%d) is not a multiple of n_group (%d)", src,
                        c->n_routed_experts, c->n_group);
    if (c->topk_group > c->n_group)
        return dsk_fail(DSK_ERR_FORMAT, "%s: topk_group (%d) exceeds n_group (%d)", src, c->topk_group, c->n_group);
    if (c->num_experts_per_tok > c->topk_group * (c->n_routed_experts / c->n_group))
        return dsk_fail(DSK_ERR_FORMAT, "%s: num_experts_per_tok (%d) exceeds the experts in topk_group groups (%d x %d)",
                        src, c->num_experts_per_tok, c->topk_group, c->n_routed_experts / c->n_group);
    if (c->routed_scaling_factor <= 0 || c->rms_norm_eps <= 0 || c->rope.theta <= 0)
        return dsk_fail(DSK_ERR_FORMAT, "%s: routed_scaling_factor, rms_norm_eps and rope_theta must be > 0", src);
    return DSK_OK;
}

static dsk_status read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsk_fail(DSK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= (16u << 20)) {
                free(b);
                fclose(f);
                return dsk_fail(DSK_ERR_FORMAT, "%s: larger than 16 MB, not a config.json", path);
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (!r)
            break;
        n += r;
    }
    fclose(f);
    *text = b;
    *len = n;
    return DSK_OK;
}

dsk_status dsk_model_config_load(const char *path, dsk_model_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    DSK_TRY(read_file(path, &text, &len));
    dsk_json *j;
    dsk_status s = dsk_json_parse(text, len, path, &j);
    free(text);
    if (s != DSK_OK)
        return s;
    reader r = {path, j};
    s = parse_config(&r, cfg);
    dsk_json_free(j);
    return s;
}

/* ---- presets ----------------------------------------------------------------------- */

static dsk_model_config v3_config(int layers)
{
    dsk_model_config c = {
        .vocab_size = 129280, .hidden_size = 7168, .intermediate_size = 18432,
        .moe_intermediate_size = 2048, .num_hidden_layers = layers, .first_k_dense_replace = 3,
        .moe_layer_freq = 1, .num_attention_heads = 128, .q_lora_rank = 1536, .kv_lora_rank = 512,
        .qk_nope_head_dim = 128, .qk_rope_head_dim = 64, .v_head_dim = 128,
        .n_routed_experts = 256, .n_shared_experts = 1, .num_experts_per_tok = 8, .n_group = 8,
        .topk_group = 4, .norm_topk_prob = 1, .routed_scaling_factor = 2.5f, .rms_norm_eps = 1e-6f,
        .mscale_all_dim = 1.0f, .max_position_embeddings = 163840, .fp8 = 1,
    };
    c.rope = (dsk_rope_params){.dim = 64, .theta = 10000.0f, .factor = 40.0f, .original_max_pos = 4096,
                               .beta_fast = 32.0f, .beta_slow = 1.0f, .attn_factor = 1.0f};
    return c;
}

dsk_status dsk_model_config_preset(const char *preset, dsk_model_config *c)
{
    if (!preset || !c)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_model_config_preset: preset or cfg is NULL");
    if (!strcmp(preset, "tiny")) {
        /* Every V3 feature at small size: q and kv compression, YaRN, 2 dense + 3 MoE
         * layers, 16 experts in 4 groups (2 kept, 4 chosen), one shared expert. Every
         * GEMM K is a multiple of 128 (what the GPU kernels require). */
        *c = v3_config(5);
        c->vocab_size = 512;
        c->hidden_size = 256;
        c->intermediate_size = 512;
        c->moe_intermediate_size = 128;
        c->first_k_dense_replace = 2;
        c->num_attention_heads = 4;
        c->q_lora_rank = 128;
        c->kv_lora_rank = 128;
        c->n_routed_experts = 16;
        c->n_group = 4;
        c->topk_group = 2;
        c->num_experts_per_tok = 4;
        c->max_position_embeddings = 4096 * 40;
        return DSK_OK;
    }
    if (!strcmp(preset, "small")) {
        *c = v3_config(6);
        c->vocab_size = 8192;
        c->hidden_size = 1024;
        c->intermediate_size = 2816;
        c->moe_intermediate_size = 256;
        c->first_k_dense_replace = 1;
        c->num_attention_heads = 16;
        c->q_lora_rank = 384;
        c->kv_lora_rank = 512;
        c->n_routed_experts = 32;
        c->n_group = 4;
        c->topk_group = 2;
        c->num_experts_per_tok = 6;
        return DSK_OK;
    }
    if (!strncmp(preset, "v3-layers=", 10)) {
        char *end;
        errno = 0;
        long n = strtol(preset + 10, &end, 10);
        if (errno || *end || end == preset + 10 || n < 1 || n > 61)
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_model_config_preset: '%s': N must be an integer in 1..61", preset);
        *c = v3_config((int)n);
        return DSK_OK;
    }
    return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_model_config_preset: unknown preset '%s' (tiny, small, v3-layers=N)", preset);
}

dsk_status dsk_model_config_write(const dsk_model_config *c, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return dsk_fail(DSK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f,
            "{\n"
            "  \"architectures\": [\"DeepseekV3ForCausalLM\"],\n"
            "  \"model_type\": \"deepseek_v3\",\n"
            "  \"attention_bias\": false,\n"
            "  \"hidden_act\": \"silu\",\n"
            "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
            "  \"moe_intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
            "  \"num_nextn_predict_layers\": 0,\n"
            "  \"first_k_dense_replace\": %d,\n  \"moe_layer_freq\": %d,\n"
            "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n",
            c->vocab_size, c->hidden_size, c->intermediate_size, c->moe_intermediate_size,
            c->num_hidden_layers, c->first_k_dense_replace, c->moe_layer_freq, c->num_attention_heads,
            c->num_attention_heads);
    if (c->q_lora_rank > 0)
        fprintf(f, "  \"q_lora_rank\": %d,\n", c->q_lora_rank);
    else
        fprintf(f, "  \"q_lora_rank\": null,\n");
    fprintf(f,
            "  \"kv_lora_rank\": %d,\n  \"qk_nope_head_dim\": %d,\n  \"qk_rope_head_dim\": %d,\n"
            "  \"v_head_dim\": %d,\n  \"n_routed_experts\": %d,\n  \"n_shared_experts\": %d,\n"
            "  \"num_experts_per_tok\": %d,\n  \"n_group\": %d,\n  \"topk_group\": %d,\n"
            "  \"topk_method\": \"noaux_tc\",\n  \"scoring_func\": \"sigmoid\",\n"
            "  \"norm_topk_prob\": %s,\n  \"routed_scaling_factor\": %.9g,\n"
            "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n  \"max_position_embeddings\": %d,\n",
            c->kv_lora_rank, c->qk_nope_head_dim, c->qk_rope_head_dim, c->v_head_dim, c->n_routed_experts,
            c->n_shared_experts, c->num_experts_per_tok, c->n_group, c->topk_group,
            c->norm_topk_prob ? "true" : "false", c->routed_scaling_factor, c->rms_norm_eps, c->rope.theta,
            c->max_position_embeddings);
    if (c->rope.factor > 1.0f)
        fprintf(f,
                "  \"rope_scaling\": {\"type\": \"yarn\", \"factor\": %.9g, \"original_max_position_embeddings\": %d,\n"
                "                   \"beta_fast\": %.9g, \"beta_slow\": %.9g, \"mscale\": %.9g, \"mscale_all_dim\": %.9g},\n",
                c->rope.factor, c->rope.original_max_pos, c->rope.beta_fast, c->rope.beta_slow, c->mscale_all_dim,
                c->mscale_all_dim);
    else
        fprintf(f, "  \"rope_scaling\": null,\n");
    if (c->fp8)
        fprintf(f, "  \"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\",\n"
                   "                          \"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]},\n");
    fprintf(f, "  \"tie_word_embeddings\": false,\n  \"torch_dtype\": \"bfloat16\"\n}\n");
    if (fclose(f) != 0)
        return dsk_fail(DSK_ERR_IO, "%s: write failed", path);
    return DSK_OK;
}
