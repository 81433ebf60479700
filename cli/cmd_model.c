/* cli/cmd_model.c: `dsk model new`: writes a DeepSeek-V3-layout checkpoint with seeded
 * random weights (config.json + safetensors); `dsk model info DIR`: loads and checks one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dsk model new --preset tiny|small|v3-layers=N --out DIR [--seed S] [--shard-mb MB]\n"
            "       dsk model info DIR\n"
            "  new   writes config.json and model.safetensors (or shards of at most MB megabytes\n"
            "        with model.safetensors.index.json) with random weights in the Hugging Face\n"
            "        DeepSeek-V3 layout: FP8 e4m3 linear weights with 128x128 weight_scale_inv,\n"
            "        bf16 embeddings, lm_head, router and norms, f32 e_score_correction_bias.\n"
            "  info  validates a checkpoint (config.json, every tensor's dtype and shape) and\n"
            "        prints its configuration.\n"
            "  Layout: docs/MODEL_FORMAT.md\n");
}

static int cmd_new(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL;
    int64_t seed = 1, shard_mb = 0;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_opt(argc, argv, &i, "--preset", &preset, &err) || dsk_cli_opt(argc, argv, &i, "--out", &out, &err)) {
        } else if (dsk_cli_opt(argc, argv, &i, "--seed", &v, &err)) {
            if (!err && dsk_cli_parse_i64(v, &seed))
                return dsk_cli_usage_error("model", "--seed '%s' is not an integer", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--shard-mb", &v, &err)) {
            if (!err && (dsk_cli_parse_i64(v, &shard_mb) || shard_mb < 0))
                return dsk_cli_usage_error("model", "--shard-mb '%s' is not a non-negative integer", v);
        } else if (dsk_cli_flag(argv, i, "--help")) {
            usage(stdout);
            return 0;
        } else {
            return dsk_cli_usage_error("model", "unknown option '%s' (dsk model --help)", argv[i]);
        }
        if (err)
            return dsk_cli_usage_error("model", "%s needs a value", argv[i]);
    }
    if (!preset || !out)
        return dsk_cli_usage_error("model", "new needs --preset and --out (dsk model --help)");
    dsk_model_config cfg;
    dsk_status s = dsk_model_config_preset(preset, &cfg);
    if (s == DSK_OK)
        s = dsk_model_write_random(&cfg, out, (uint64_t)seed, (size_t)shard_mb << 20);
    if (s != DSK_OK)
        return dsk_cli_fail("model", s);
    printf("wrote %s (preset %s, seed %lld)\n", out, preset, (long long)seed);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    if (argc < 3)
        return dsk_cli_usage_error("model", "info needs a checkpoint directory");
    dsk_device *dev;
    dsk_status s = dsk_device_open("cpu", &dev);
    if (s != DSK_OK)
        return dsk_cli_fail("model", s);
    dsk_model *m;
    s = dsk_model_open(dev, argv[2], &m);
    if (s != DSK_OK) {
        dsk_device_close(dev);
        return dsk_cli_fail("model", s);
    }
    const dsk_model_config *c = dsk_model_get_config(m);
    int moe = 0;
    for (int i = 0; i < c->num_hidden_layers; i++)
        moe += dsk_model_layer_is_moe(c, i);
    printf("%s: valid DeepSeek-V3-architecture checkpoint (%s weights)\n", argv[2], c->fp8 ? "FP8 e4m3" : "bf16");
    printf("  layers %d (%d dense, %d MoE), hidden %d, heads %d, vocab %d\n", c->num_hidden_layers,
           c->num_hidden_layers - moe, moe, c->hidden_size, c->num_attention_heads, c->vocab_size);
    printf("  MLA: q_lora %d, kv_lora %d, qk_nope %d, qk_rope %d, v %d; rope theta %g, YaRN factor %g\n",
           c->q_lora_rank, c->kv_lora_rank, c->qk_nope_head_dim, c->qk_rope_head_dim, c->v_head_dim,
           c->rope.theta, c->rope.factor);
    printf("  MoE: %d experts in %d groups (top %d groups), %d per token, %d shared, intermediate %d\n",
           c->n_routed_experts, c->n_group, c->topk_group, c->num_experts_per_tok, c->n_shared_experts,
           c->moe_intermediate_size);
    dsk_model_close(m);
    dsk_device_close(dev);
    return 0;
}

int dsk_cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "new"))
        return cmd_new(argc, argv);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc, argv);
    return dsk_cli_usage_error("model", "unknown subcommand '%s' (new, info)", argv[1]);
}
