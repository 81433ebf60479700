/* model/model_internal.h: the weight list of a checkpoint and the loaded model (internal
 * to model/). */
#ifndef DSK_MODEL_INTERNAL_H
#define DSK_MODEL_INTERNAL_H

#include "dsk/dsk.h"
#include "model/safetensors.h"

/* ---- the tensors a config implies, in the order the generator writes them ---- */
typedef enum dsk_wkind {
    DSK_WK_LINEAR = 0,  /* [n, k]; FP8 + weight_scale_inv in an fp8 checkpoint, else bf16 */
    DSK_WK_LINEAR_BF16, /* [n, k] bf16 in every checkpoint (router gate, lm_head) */
    DSK_WK_EMBED,       /* [n, k] bf16 */
    DSK_WK_NORM,        /* [n] bf16 */
    DSK_WK_BIAS         /* [n] f32 (e_score_correction_bias) */
} dsk_wkind;

typedef struct dsk_wspec {
    char name[112];     /* without the ".weight" suffix for linear/embed/norm kinds */
    dsk_wkind kind;
    int64_t n, k;
    const char *dims;   /* the config keys behind the shape, for messages */
    double std;         /* generator: normal std (norms: 1 + std * N(0,1)) */
} dsk_wspec;

/* All tensors of cfg (malloc'd array). */
dsk_status dsk_model_wspecs(const dsk_model_config *cfg, dsk_wspec **out, int *n);
/* The full tensor name of a spec: name + ".weight", or the bias name as is. */
void dsk_wspec_tensor_name(const dsk_wspec *w, char *buf, size_t len);

/* ---- the loaded model ---- */
typedef struct dsk_lin {
    dsk_tensor w, s;    /* e4m3 [N, K] (or [G, N, K]) and f32 scales [ceil(N/128), ceil(K/128)] (or [G, ...]) */
} dsk_lin;

typedef struct dsk_layer_w {
    int moe;
    dsk_tensor in_norm, post_norm;
    dsk_lin q_a, q_b, q;          /* q_a/q_b when q_lora_rank > 0, else q */
    dsk_tensor q_a_norm;
    dsk_lin kv_a, kv_b, o;
    dsk_tensor kv_a_norm;
    dsk_lin w_uk_t;               /* [H, kv_lora, nope]: kv_b's key part per head, transposed */
    dsk_lin w_uv;                 /* [H, v_head, kv_lora]: kv_b's value part per head */
    dsk_lin gate, up, down;       /* dense MLP, or the shared expert of a MoE layer */
    int has_shared;
    dsk_lin router;               /* [E, hidden] quantized at load */
    dsk_tensor bias;              /* f32 [E] */
    dsk_lin ex_gate, ex_up, ex_down; /* [E, I, hidden], [E, I, hidden], [E, hidden, I] */
} dsk_layer_w;

struct dsk_model {
    dsk_device *dev;
    dsk_model_config cfg;
    char *dir;
    dsk_safetensors *st;
    int zero_copy;                /* weights used in place from the mapping */
    dsk_tensor embed;             /* host view (bf16 or f32) [vocab, hidden] */
    dsk_tensor final_norm;
    dsk_lin lm_head;
    dsk_layer_w *layers;
    void **owned;                 /* device allocations to free */
    int n_owned, cap_owned;
    size_t owned_bytes;
};

#endif
