/* tests/model/test_load.c: loading checkpoints: every way config.json or the weights can
 * disagree gives a clear error naming the file and the key or tensor, at dsk_model_open,
 * before anything runs. Also: sharded == single file, a bf16 checkpoint quantized at
 * load, and the run-time argument checks. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/harness/harness.h"
#include "model/safetensors.h"

static char root[64];
static dsk_device *cpu;

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void copy_file(const char *from, const char *to, long truncate_by)
{
    size_t n;
    char *b = read_all(from, &n);
    FILE *f = fopen(to, "wb");
    fwrite(b, 1, n - (size_t)truncate_by, f);
    fclose(f);
    free(b);
}

static const char *path_in(const char *dir, const char *name)
{
    static char p[4][256 + 64]; /* a directory of up to 255 chars + a file name */
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* A copy of base named `name` with config.json's `from` replaced by `to`. */
static const char *with_config(const char *base, const char *name, const char *from, const char *to)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0777);
    copy_file(path_in(base, "model.safetensors"), path_in(dir, "model.safetensors"), 0);
    size_t n;
    char *cfg = read_all(path_in(base, "config.json"), &n);
    char *at = strstr(cfg, from);
    if (!at) {
        DSK_T_CHECK(0, "config.json of %s has no '%s'", base, from);
        free(cfg);
        return dir;
    }
    FILE *f = fopen(path_in(dir, "config.json"), "w");
    fwrite(cfg, 1, (size_t)(at - cfg), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(cfg);
    return dir;
}

/* A copy of base's weights without tensor `drop`, or with `retype` stored as bf16. */
static const char *with_weights(const char *base, const char *name, const char *drop, const char *retype)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0777);
    copy_file(path_in(base, "config.json"), path_in(dir, "config.json"), 0);
    dsk_safetensors *st;
    if (!DSK_T_OK(dsk_st_open(base, &st)))
        return dir;
    dsk_st_writer *w;
    DSK_T_OK(dsk_st_writer_new(path_in(dir, "model.safetensors"), &w));
    for (int i = 0; i < st->n_tensors; i++) {
        const dsk_st_tensor *t = &st->tensors[i];
        if (drop && !strcmp(t->name, drop))
            continue;
        DSK_T_OK(dsk_st_writer_declare(w, t->name, retype && !strcmp(t->name, retype) ? DSK_BF16 : t->dtype, t->rank,
                                       t->shape));
    }
    DSK_T_OK(dsk_st_writer_begin_data(w));
    for (int i = 0; i < st->n_tensors; i++) {
        const dsk_st_tensor *t = &st->tensors[i];
        if (drop && !strcmp(t->name, drop))
            continue;
        if (retype && !strcmp(t->name, retype)) {
            size_t bytes = t->nbytes / dsk_dtype_size(t->dtype) * 2;
            uint16_t *bf = calloc(bytes, 1);
            DSK_T_OK(dsk_st_writer_data(w, bf, bytes));
            free(bf);
        } else {
            DSK_T_OK(dsk_st_writer_data(w, t->data, t->nbytes));
        }
    }
    DSK_T_OK(dsk_st_writer_finish(w));
    dsk_st_writer_free(w);
    dsk_st_close(st);
    return dir;
}

static void bad_open(const char *dir, dsk_status st, const char *msg, int line)
{
    dsk_model *m = NULL;
    dsk_t_expect_error(dsk_model_open(cpu, dir, &m), st, msg, __FILE__, line, dir);
    DSK_T_CHECK(m == NULL, "%s: failed open returned a model", dir);
}
#define BAD(dir, st, msg) bad_open(dir, st, msg, __LINE__)

static double diff_f32(const float *x, const float *y, int64_t n)
{
    double xy = 0, xx = 0;
    for (int64_t i = 0; i < n; i++) {
        xy += (double)x[i] * y[i];
        xx += (double)x[i] * x[i] + (double)y[i] * y[i];
    }
    return xx > 0 ? 1.0 - 2.0 * xy / xx : 0.0;
}

/* Prefill of one fixed prompt of n tokens on an open model: last-position logits into
 * out [V]. */
static int prefill_on(dsk_model *m, float *out, int n)
{
    int32_t tok[16];
    for (int i = 0; i < n; i++)
        tok[i] = (i * 131 + 7) % 512;
    dsk_model_session *S;
    int ok = DSK_T_OK(dsk_model_session_new(m, 1, 16, &S));
    int32_t len = n;
    ok = ok && DSK_T_OK(dsk_model_prefill(S, 1, &len, tok, out));
    if (ok)
        dsk_model_session_free(S);
    return ok;
}

/* The same on the checkpoint in dir. */
static int prefill(const char *dir, float *out, int n)
{
    dsk_model *m;
    if (!DSK_T_OK(dsk_model_open(cpu, dir, &m)))
        return 0;
    int ok = prefill_on(m, out, n);
    dsk_model_close(m);
    return ok;
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/dsk_test_load_XXXXXX");
    if (!mkdtemp(root))
        dsk_t_skip("cannot create a temporary directory");
    DSK_T_OK(dsk_device_open("cpu", &cpu));
    const uint64_t seed = dsk_t_seed();
    dsk_model_config cfg;
    DSK_T_OK(dsk_model_config_preset("tiny", &cfg));
    char base[128], sharded[128], bf[128];
    snprintf(base, sizeof base, "%s/base", root);
    snprintf(sharded, sizeof sharded, "%s/sharded", root);
    snprintf(bf, sizeof bf, "%s/bf16", root);
    if (!DSK_T_OK(dsk_model_write_random(&cfg, base, seed, 0)) ||
        !DSK_T_OK(dsk_model_write_random(&cfg, sharded, seed, 1u << 20)))
        return dsk_t_finish();
    DSK_T_CHECK(access(path_in(sharded, "model.safetensors.index.json"), F_OK) == 0, "1 MiB shards: index written");

    /* ---- good checkpoints ---- */
    const int V = cfg.vocab_size;
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    if (prefill(base, a, 9) && prefill(sharded, b, 9))
        DSK_T_CHECK(!memcmp(a, b, sizeof(float) * V), "sharded checkpoint gives the single file's logits");
    /* bf16 checkpoint: linear weights quantized at load; checked against the reference */
    dsk_model_config cb = cfg;
    cb.fp8 = 0;
    if (DSK_T_OK(dsk_model_write_random(&cb, bf, seed, 0))) {
        dsk_model *m;
        float *ref = malloc(sizeof(float) * 9 * V);
        int32_t tok[16];
        for (int i = 0; i < 9; i++)
            tok[i] = (i * 131 + 7) % 512;
        if (DSK_T_OK(dsk_model_open(cpu, bf, &m)) && DSK_T_OK(dsk_model_ref_logits(m, 9, tok, ref))) {
            /* The last-position logits of prompts of 2..9 tokens against the reference on
             * the same (load-quantized) weights; the lower median row is bounded, as in
             * test_forward.c: single rows move when the cpu kernels' f32 order flips an e4m3
             * rounding or a near-tied expert choice upstream. Seeds 1..110 (Release,
             * DSK_TEST_SEED=s test_model_load): worst 1.9e-3, p99 1.6e-3, exact (1e-14) on
             * 82% -> 6e-3, 3x the worst. */
            double d[8], worst = 0;
            int nd = 0;
            for (int n = 2; n <= 9; n++)
                if (prefill_on(m, a, n)) {
                    d[nd] = diff_f32(a, ref + (n - 1) * V, V);
                    worst = d[nd] > worst ? d[nd] : worst;
                    nd++;
                }
            for (int i = 1; i < nd; i++)  /* insertion sort for the median */
                for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
                    double t = d[j];
                    d[j] = d[j - 1];
                    d[j - 1] = t;
                }
            double med = nd ? d[(nd - 1) / 2] : 1.0; /* the lower median */
            printf("stats: bf16 %.3e (worst %.3e)\n", med, worst);
            DSK_T_CHECK(nd == 8 && med <= 6e-3,
                        "bf16 checkpoint prefill vs reference: lower median row diff %.3e > 6e-3 (worst %.3e, %d rows)",
                        med, worst, nd);
            DSK_T_CHECK(dsk_model_weight_bytes(m) > 0, "bf16 linears were quantized into owned buffers");
            dsk_model_close(m);
        }
        free(ref);
    }

    /* ---- config.json ---- */
    char nocfg[128];
    snprintf(nocfg, sizeof nocfg, "%s/nocfg", root);
    mkdir(nocfg, 0777);
    BAD(nocfg, DSK_ERR_IO, "nocfg/config.json: cannot open");
    BAD(with_config(base, "c_missing", "\"hidden_size\": 256,\n", ""), DSK_ERR_FORMAT,
        "config.json: missing key \"hidden_size\"");
    BAD(with_config(base, "c_type", "\"hidden_size\": 256", "\"hidden_size\": \"256\""), DSK_ERR_FORMAT,
        "config.json: key \"hidden_size\" (line 7) is a string, expected an integer");
    BAD(with_config(base, "c_frac", "\"hidden_size\": 256", "\"hidden_size\": 256.5"), DSK_ERR_FORMAT,
        "key \"hidden_size\" (line 7) is a fractional number");
    BAD(with_config(base, "c_zero", "\"vocab_size\": 512", "\"vocab_size\": 0"), DSK_ERR_FORMAT,
        "key \"vocab_size\" (line 6) is 0, expected 1..");
    BAD(with_config(base, "c_group", "\"n_group\": 4", "\"n_group\": 3"), DSK_ERR_FORMAT,
        "n_routed_experts (16) is not a multiple of n_group (3)");
    BAD(with_config(base, "c_topkg", "\"topk_group\": 2", "\"topk_group\": 5"), DSK_ERR_FORMAT,
        "topk_group (5) exceeds n_group (4)");
    BAD(with_config(base, "c_topk", "\"num_experts_per_tok\": 4", "\"num_experts_per_tok\": 9"), DSK_ERR_FORMAT,
        "num_experts_per_tok (9) exceeds the experts in topk_group groups (2 x 4)");
    BAD(with_config(base, "c_dense", "\"first_k_dense_replace\": 2", "\"first_k_dense_replace\": 9"), DSK_ERR_FORMAT,
        "first_k_dense_replace (9) exceeds num_hidden_layers (5)");
    BAD(with_config(base, "c_kvh", "\"num_key_value_heads\": 4", "\"num_key_value_heads\": 2"), DSK_ERR_FORMAT,
        "\"num_key_value_heads\" is 2 but num_attention_heads is 4");
    BAD(with_config(base, "c_rope", "\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 63"), DSK_ERR_FORMAT,
        "qk_rope_head_dim (63) must be even");
    BAD(with_config(base, "c_block", "[128, 128]", "[64, 64]"), DSK_ERR_FORMAT,
        "\"quantization_config.weight_block_size\" (line 36) must be [128, 128]");
    BAD(with_config(base, "c_type2", "\"deepseek_v3\"", "\"llama\""), DSK_ERR_FORMAT,
        "key \"model_type\" (line 3) is \"llama\", dsk supports \"deepseek_v3\"");
    BAD(with_config(base, "c_score", "\"sigmoid\"", "\"softmax\""), DSK_ERR_FORMAT,
        "key \"scoring_func\" (line 27) is \"softmax\"");
    BAD(with_config(base, "c_tie", "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true"), DSK_ERR_FORMAT,
        "\"tie_word_embeddings\" (line 37) must be false");
    BAD(with_config(base, "c_yarn", "\"yarn\"", "\"linear\""), DSK_ERR_FORMAT, "\"rope_scaling.type\" (line 33) must be \"yarn\"");
    BAD(with_config(base, "c_json", "\"vocab_size\": 512,", "\"vocab_size\": 512,,"), DSK_ERR_FORMAT,
        "config.json: line 6, column 21: expected a string key");

    /* ---- weights vs config ---- */
    BAD(with_config(base, "w_shape", "\"kv_lora_rank\": 128", "\"kv_lora_rank\": 256"), DSK_ERR_FORMAT,
        "model.safetensors: tensor \"model.layers.0.self_attn.kv_a_proj_with_mqa.weight\" has shape [192, 256] but "
        "config.json implies [kv_lora_rank + qk_rope_head_dim, hidden_size] = [320, 256]");
    BAD(with_config(base, "w_experts", "\"n_routed_experts\": 16", "\"n_routed_experts\": 32"), DSK_ERR_FORMAT,
        "\"model.layers.2.mlp.gate.weight\" has shape [16, 256] but config.json implies [n_routed_experts, hidden_size]");
    BAD(with_weights(base, "w_missing", "model.layers.3.mlp.experts.7.down_proj.weight_scale_inv", NULL),
        DSK_ERR_NOT_FOUND, "tensor \"model.layers.3.mlp.experts.7.down_proj.weight_scale_inv\" is missing");
    BAD(with_weights(base, "w_missing2", "model.layers.4.mlp.gate.e_score_correction_bias", NULL), DSK_ERR_NOT_FOUND,
        "tensor \"model.layers.4.mlp.gate.e_score_correction_bias\" is missing");
    BAD(with_weights(base, "w_dtype", NULL, "model.layers.1.self_attn.o_proj.weight"), DSK_ERR_FORMAT,
        "tensor \"model.layers.1.self_attn.o_proj.weight\" has dtype BF16, expected F8_E4M3");
    BAD(with_weights(base, "w_sdtype", NULL, "model.layers.0.mlp.down_proj.weight_scale_inv"), DSK_ERR_FORMAT,
        "tensor \"model.layers.0.mlp.down_proj.weight_scale_inv\" has dtype BF16, expected F32");
    char trunc[128];
    snprintf(trunc, sizeof trunc, "%s/w_trunc", root);
    mkdir(trunc, 0777);
    copy_file(path_in(base, "config.json"), path_in(trunc, "config.json"), 0);
    copy_file(path_in(base, "model.safetensors"), path_in(trunc, "model.safetensors"), 100);
    BAD(trunc, DSK_ERR_FORMAT, "w_trunc/model.safetensors: tensor \"lm_head.weight\": data_offsets");

    /* ---- run-time arguments ---- */
    dsk_model *m;
    if (DSK_T_OK(dsk_model_open(cpu, base, &m))) {
        dsk_model_session *S;
        DSK_T_ERR(dsk_model_session_new(m, 0, 8, &S), DSK_ERR_INVALID_ARG, "max_batch = 0");
        if (DSK_T_OK(dsk_model_session_new(m, 2, 8, &S))) {
            int32_t lens[2] = {3, 9}, tok[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
            float *lg = malloc(sizeof(float) * 2 * V);
            DSK_T_ERR(dsk_model_decode(S, tok, lg), DSK_ERR_INVALID_ARG, "nothing prefilled");
            DSK_T_ERR(dsk_model_prefill(S, 2, lens, tok, lg), DSK_ERR_INVALID_ARG, "lens[1] = 9, expected 1..max_len = 1..8");
            DSK_T_ERR(dsk_model_prefill(S, 3, lens, tok, lg), DSK_ERR_INVALID_ARG, "batch = 3, expected 1..max_batch");
            lens[1] = 2;
            tok[4] = 512;
            DSK_T_ERR(dsk_model_prefill(S, 2, lens, tok, lg), DSK_ERR_INVALID_ARG, "token 4 is 512, expected 0..vocab_size-1");
            tok[4] = 5;
            DSK_T_OK(dsk_model_prefill(S, 2, lens, tok, lg));
            tok[0] = -1;
            DSK_T_ERR(dsk_model_decode(S, tok, lg), DSK_ERR_INVALID_ARG, "token 0 is -1");
            free(lg);
            dsk_model_session_free(S);
        }
        dsk_model_close(m);
    }
    free(a);
    free(b);
    dsk_device_close(cpu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", root);
    return dsk_t_finish();
}
