/* dsk/model.h: the forward-pass driver: a DeepSeek-V3-architecture model loaded from a
 * Hugging Face checkpoint (config.json + safetensors, single file or sharded with
 * model.safetensors.index.json), run through dsk's ops on one device.
 *
 * Checkpoint layout and the commands that use it: docs/MODEL_FORMAT.md.
 *
 * Forward pass per layer (DeepSeek-V3's reference model.py, HF tensor names):
 *   h = RMSNorm(x) -> MLA -> x += ;  h = RMSNorm(x) -> dense SwiGLU MLP (layers below
 *   first_k_dense_replace) or MoE (router, group-limited top-k, permute, grouped
 *   contiguous FP8 GEMMs of the experts, SwiGLU, combine, plus the shared expert) -> x += ;
 * then the final RMSNorm and lm_head. Prefill uses MLA's non-absorbed form over the
 * packed prompt tokens and writes the paged latent cache; decode uses the absorbed
 * form over that cache. Every linear layer is an FP8 block-scaled GEMM with its input
 * quantized by dsk_quant_act_fp8 (1x128); weights stored in bf16 (lm_head, the router,
 * or a whole bf16 checkpoint) are quantized to FP8 128x128 blocks at load.
 *
 * Activations are f32 on the device. The driver calls only the public ops on the
 * device; the small glue between them (embedding lookup, residual adds, slicing heads,
 * writing the latent cache) touches device memory directly and therefore needs a
 * host-memory device (cpu, emu:GPU); other devices get DSK_ERR_UNSUPPORTED. */
#ifndef DSK_MODEL_H
#define DSK_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "device.h"
#include "gemm.h"
#include "layers.h"
#include "moe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsk_model_config {
    int vocab_size, hidden_size;
    int intermediate_size;        /* dense MLP */
    int moe_intermediate_size;    /* per routed expert; the shared expert has n_shared x this */
    int num_hidden_layers, first_k_dense_replace, moe_layer_freq;
    int num_attention_heads;
    int q_lora_rank;              /* 0: no query compression (q_proj instead of q_a/q_b) */
    int kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    int n_routed_experts, n_shared_experts, num_experts_per_tok, n_group, topk_group;
    int norm_topk_prob;
    float routed_scaling_factor;
    float rms_norm_eps;
    dsk_rope_params rope;         /* theta and YaRN (factor <= 1: none) */
    float mscale_all_dim;         /* YaRN softmax-scale correction (rope_scaling.mscale_all_dim) */
    int max_position_embeddings;
    int fp8;                      /* quantization_config: fp8 e4m3, weight_block_size [128, 128] */
} dsk_model_config;

/* Reads and validates config.json. Errors name the file and the key (and its line). */
dsk_status dsk_model_config_load(const char *path, dsk_model_config *cfg);
/* A preset: "tiny", "small" or "v3-layers=N" (DeepSeek-V3's dimensions, N layers). */
dsk_status dsk_model_config_preset(const char *preset, dsk_model_config *cfg);
/* Writes cfg as a Hugging Face config.json. */
dsk_status dsk_model_config_write(const dsk_model_config *cfg, const char *path);
/* Checks the keys agree with each other (the loader calls this). name: for messages. */
dsk_status dsk_model_config_validate(const dsk_model_config *cfg, const char *name);
/* 1 when layer i is a MoE layer. */
int dsk_model_layer_is_moe(const dsk_model_config *cfg, int layer);

/* Writes a checkpoint with seeded random weights in the real layout into dir (created
 * if absent): config.json and model.safetensors, or shards of at most max_shard_bytes
 * with model.safetensors.index.json when the weights are larger (0: never shard).
 * Linear weights are FP8 e4m3 with 128x128 weight_scale_inv; embeddings, lm_head,
 * router and norms bf16; e_score_correction_bias f32. */
dsk_status dsk_model_write_random(const dsk_model_config *cfg, const char *dir, uint64_t seed,
                                  size_t max_shard_bytes);

typedef struct dsk_model dsk_model;

/* Loads a checkpoint directory onto dev: validates config.json and every tensor's
 * presence, dtype and shape against it before anything runs. On the cpu backend FP8
 * weights are used in place from the file mapping; other devices get copies. */
dsk_status dsk_model_open(dsk_device *dev, const char *dir, dsk_model **out);
void dsk_model_close(dsk_model *m);
const dsk_model_config *dsk_model_get_config(const dsk_model *m);
dsk_device *dsk_model_get_device(const dsk_model *m);
/* Bytes of weights the model holds on its device beyond the file mapping. */
size_t dsk_model_weight_bytes(const dsk_model *m);

/* ---- per-op profile ---- */
typedef enum dsk_model_op {
    DSK_MOP_EMBED = 0, DSK_MOP_NORM, DSK_MOP_QUANT, DSK_MOP_GEMM, DSK_MOP_ROPE, DSK_MOP_MLA,
    DSK_MOP_ROUTE, DSK_MOP_PERMUTE, DSK_MOP_SWIGLU, DSK_MOP_GLUE, DSK_MOP_COUNT
} dsk_model_op;
/* "embed", "rmsnorm", "quant_act", "gemm", "rope", "mla", "routing", "permute_combine",
 * "swiglu", "glue". */
const char *dsk_model_op_name(dsk_model_op op);

#define DSK_MODEL_MAX_GEMM_STATS 48
typedef struct dsk_model_gemm_stat {
    char what[32];            /* the weight, e.g. "q_b_proj", "experts.gate", "lm_head" */
    dsk_gemm_layout layout;
    int64_t n, k;
    int64_t calls, rows;      /* rows: sum of M over calls (valid rows for grouped layouts) */
    double seconds, flops;
    char kernel[96];          /* dsk_device_last_kernel after the call */
} dsk_model_gemm_stat;

typedef struct dsk_model_profile {
    double seconds[DSK_MOP_COUNT];
    int64_t calls[DSK_MOP_COUNT];
    int n_gemm;
    dsk_model_gemm_stat gemm[DSK_MODEL_MAX_GEMM_STATS];
    double total_seconds;
    int64_t tokens;
} dsk_model_profile;

/* ---- running: a session holds the paged latent cache of up to max_batch sequences
 * of up to max_len tokens each, and the activation buffers ---- */
typedef struct dsk_model_session dsk_model_session;

dsk_status dsk_model_session_new(dsk_model *m, int max_batch, int max_len, dsk_model_session **out);
void dsk_model_session_free(dsk_model_session *s);

/* Prefills batch sequences (lens[b] >= 1 tokens each, packed in tokens) from an empty
 * cache; writes each sequence's last-position logits to logits [batch, vocab] (host). */
dsk_status dsk_model_prefill(dsk_model_session *s, int batch, const int32_t *lens,
                             const int32_t *tokens, float *logits);
/* One decode step: tokens[batch] (one per sequence, appended at the end of each) ->
 * logits [batch, vocab] (host). */
dsk_status dsk_model_decode(dsk_model_session *s, const int32_t *tokens, float *logits);
/* The profile of the prefill (phase 0) or decode (phase 1) calls since the session began. */
const dsk_model_profile *dsk_model_session_profile(const dsk_model_session *s, int phase);

/* argmax over a row of logits (the lowest index on ties). */
int32_t dsk_model_argmax(const float *logits, int n);

/* The reference forward: one sequence recomputed from scratch with every op's *_ref
 * function on the host (non-absorbed MLA over all positions, the MoE as a loop over
 * experts without permute/combine). logits [n, vocab] for every position. The model
 * must live on a host-memory device. */
dsk_status dsk_model_ref_logits(const dsk_model *m, int n, const int32_t *tokens, float *logits);
/* The reference of a prefill followed by decode steps: tokens [0, n_prompt) as above
 * (non-absorbed MLA) while writing each layer's latent cache [c_kv | k_pe], then each of
 * tokens [n_prompt, n) alone, in order, through MLA's absorbed form over that cache
 * (q_nope through W_UK^T, dsk_mla_decode_ref, the latent output through W_UV), the form
 * dsk_model_decode uses; every other op as above. logits [n, vocab] for every position
 * (rows < n_prompt from the prefill form). 1 <= n_prompt <= n; n_prompt == n is
 * dsk_model_ref_logits. */
dsk_status dsk_model_ref_logits_decode(const dsk_model *m, int n, int n_prompt, const int32_t *tokens,
                                       float *logits);

#ifdef __cplusplus
}
#endif
#endif
