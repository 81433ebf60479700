/* tests/refs/test_refs_args.c: bad input to the MLA, MoE and layer ops: one test per
 * check, each asserting the status and a message substring; and the dispatchers (check
 * first, then the backend's entry; NULL entry -> DSK_ERR_UNSUPPORTED naming the backend;
 * tensors on the wrong device refused).
 *
 * Every case starts from a valid fixture (asserted to pass) and breaks one thing. */
#include <math.h>
#include <string.h>
#include "core/backend.h"
#include "tests/harness/harness.h"

#define BAD(expr, substr) DSK_T_ERR((expr), DSK_ERR_INVALID_ARG, (substr))

static dsk_tensor view(void *data, dsk_dtype dt, int rank, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t shape[3] = {d0, d1, d2};
    return dsk_tensor_view(data, dt, rank, shape);
}

/* ---- MLA decode ------------------------------------------------------------------- */

typedef struct dec_fx {
    float q[2 * 2 * 10], kv[4 * 64 * 10], out[2 * 2 * 8], lse[2 * 2];
    int32_t bt[2 * 2], sl[2];
    dsk_tensor tq, tkv, tbt, tsl, tout, tlse;
    dsk_mla_decode_args a;
} dec_fx;

/* B=2, H=2, D=10, dv=8, 4 pages, 2 pages per sequence, lengths 1 and 100. */
static void dec_init(dec_fx *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 4 * 64 * 10; i++)
        f->kv[i] = (float)((i % 7) - 3) * 0.1f;
    for (int i = 0; i < 40; i++)
        f->q[i] = (float)(i % 5) * 0.2f;
    const int32_t bt[4] = {0, 1, 2, 3};
    memcpy(f->bt, bt, sizeof bt);
    f->sl[0] = 1, f->sl[1] = 100;
    f->tq = view(f->q, DSK_F32, 3, 2, 2, 10);
    f->tkv = view(f->kv, DSK_F32, 3, 4, 64, 10);
    f->tbt = view(f->bt, DSK_I32, 2, 2, 2, 1);
    f->tsl = view(f->sl, DSK_I32, 1, 2, 1, 1);
    f->tout = view(f->out, DSK_F32, 3, 2, 2, 8);
    f->tlse = view(f->lse, DSK_F32, 2, 2, 2, 1);
    f->a = (dsk_mla_decode_args){.q = &f->tq, .kv_cache = &f->tkv, .block_table = &f->tbt,
                                 .seq_lens = &f->tsl, .out = &f->tout, .lse = &f->tlse, .dv = 8,
                                 .softmax_scale = 0.1352f};
}

static void test_decode_args(void)
{
    dec_fx f;
#define D(mutate, substr) do { dec_init(&f); mutate; BAD(dsk_mla_decode_ref(&f.a), substr); } while (0)
    dec_init(&f);
    DSK_T_OK(dsk_mla_decode_ref(&f.a));
    BAD(dsk_mla_decode_ref(NULL), "dsk_mla_decode_ref: args is NULL");
    BAD(dsk_mla_decode_check(NULL, NULL), "dsk_mla_decode: args is NULL");
    D(f.a.q = NULL, "dsk_mla_decode_ref: q is NULL, expected a [B, H, D]");
    D(f.tq.dtype = DSK_I32, "q has dtype i32, expected f32|bf16");
    D(f.tq.dtype = DSK_F16, "q has dtype f16");
    D(f.tq.rank = 2, "q has rank 2");
    D(f.tq.shape[0] = -1, "q has negative shape");
    D(f.tq.stride[2] = 2, "q has last-dimension stride 2, expected 1");
    D(f.tq.stride[0] = -20, "q has stride[0] = -20, expected >= 0");
    D(f.tq.data = NULL, "q has a NULL data pointer");
    D(f.a.dv = 0, "dv = 0, expected 1..D = 1..10");
    D(f.a.dv = 11, "dv = 11, expected 1..D");
    D(f.a.kv_cache = NULL, "kv_cache is NULL");
    D(f.tkv.dtype = DSK_E4M3, "kv_cache has dtype e4m3");
    D(f.tkv.shape[1] = 32, "kv_cache has shape [4, 32, 10], expected [num_pages, page_size, D] = [4, 64, 10]");
    D(f.tkv.shape[2] = 9, "kv_cache has shape [4, 64, 9], expected [num_pages, page_size, D] = [4, 64, 10]");
    D(f.a.block_table = NULL, "block_table is NULL");
    D(f.tbt.dtype = DSK_F32, "block_table has dtype f32, expected i32");
    D(f.tbt.shape[0] = 1, "block_table has shape [1, 2], expected [B, max_pages] = [2, 2]");
    D(f.a.seq_lens = NULL, "seq_lens is NULL");
    D(f.tsl.dtype = DSK_I64, "seq_lens has dtype i64");
    D(f.tsl.shape[0] = 1, "seq_lens has shape [1], expected [B] = [2]");
    D(f.a.out = NULL, "out is NULL");
    D(f.tout.dtype = DSK_I32, "out has dtype i32");
    D(f.tout.shape[2] = 10, "out has shape [2, 2, 10], expected [B, H, dv] = [2, 2, 8]");
    D(f.tout.stride[1] = 4, "output out (shape [2, 2, 8]) has strides that make elements share memory");
    D(f.tlse.dtype = DSK_BF16, "lse has dtype bf16, expected f32");
    D(f.tlse.shape[1] = 3, "lse has shape [2, 3], expected [B, H] = [2, 2]");
    D(f.tlse.data = f.out + 30, "output lse overlaps input out");
    D(f.a.softmax_scale = 0.0f, "softmax_scale = 0, expected a finite value > 0");
    D(f.a.softmax_scale = NAN, "softmax_scale = nan");
    D(f.tout.data = f.kv, "output out overlaps input kv_cache");
    D(f.tout.data = f.q, "output out overlaps input q");
    D(f.sl[1] = 0, "seq_lens[1] = 0, expected 1..max_pages*page_size = 1..128");
    D(f.sl[0] = 129, "seq_lens[0] = 129, expected 1..max_pages*page_size = 1..128");
    D(f.sl[1] = -4, "seq_lens[1] = -4");
    D(f.bt[3] = 4, "block_table[1, 1] = 4 is outside the cache, expected 0..num_pages-1 = 0..3");
    D(f.bt[0] = -1, "block_table[0, 0] = -1 is outside the cache");
#undef D
    /* an unread table entry may hold anything: sequence 0 reads only its first page */
    dec_init(&f);
    f.bt[1] = 12345;
    DSK_T_OK(dsk_mla_decode_ref(&f.a));
    /* lse is optional */
    dec_init(&f);
    f.a.lse = NULL;
    DSK_T_OK(dsk_mla_decode_ref(&f.a));
}

/* ---- MLA prefill ------------------------------------------------------------------ */

typedef struct pre_fx {
    float q[7 * 2 * 6], k[7 * 2 * 6], v[7 * 2 * 4], out[7 * 2 * 4], lse[7 * 2];
    int32_t cu[4];
    dsk_tensor tq, tk, tv, tcu, tout, tlse;
    dsk_mla_prefill_args a;
} pre_fx;

/* T=7 in sequences of 3, 0, 4; H=2, Dqk=6, Dv=4. */
static void pre_init(pre_fx *f)
{
    memset(f, 0, sizeof *f);
    const int32_t cu[4] = {0, 3, 3, 7};
    memcpy(f->cu, cu, sizeof cu);
    f->tq = view(f->q, DSK_F32, 3, 7, 2, 6);
    f->tk = view(f->k, DSK_F32, 3, 7, 2, 6);
    f->tv = view(f->v, DSK_F32, 3, 7, 2, 4);
    f->tcu = view(f->cu, DSK_I32, 1, 4, 1, 1);
    f->tout = view(f->out, DSK_F32, 3, 7, 2, 4);
    f->tlse = view(f->lse, DSK_F32, 2, 7, 2, 1);
    f->a = (dsk_mla_prefill_args){.q = &f->tq, .k = &f->tk, .v = &f->tv, .cu_seqlens = &f->tcu,
                                  .out = &f->tout, .lse = &f->tlse, .softmax_scale = 0.2f};
}

static void test_prefill_args(void)
{
    pre_fx f;
#define P(mutate, substr) do { pre_init(&f); mutate; BAD(dsk_mla_prefill_ref(&f.a), substr); } while (0)
    pre_init(&f);
    DSK_T_OK(dsk_mla_prefill_ref(&f.a));
    BAD(dsk_mla_prefill_ref(NULL), "dsk_mla_prefill_ref: args is NULL");
    P(f.a.q = NULL, "q is NULL");
    P(f.tq.dtype = DSK_U8, "q has dtype u8");
    P(f.tq.shape[2] = 0, "q has shape[2] = Dqk = 0, expected >= 1");
    P(f.a.k = NULL, "k is NULL");
    P(f.tk.shape[1] = 1, "k has shape [7, 1, 6], expected [T, H, Dqk] (q's shape) = [7, 2, 6]");
    P(f.tk.stride[2] = 0, "k has last-dimension stride 0, expected 1");
    P(f.a.v = NULL, "v is NULL");
    P(f.tv.shape[0] = 6, "v has shape [6, 2, 4], expected [T, H, Dv] = [7, 2, 4]");
    P((f.tv.shape[2] = 0, f.tout.shape[2] = 0), "v has shape[2] = Dv = 0, expected >= 1");
    P(f.a.cu_seqlens = NULL, "cu_seqlens is NULL");
    P(f.tcu.dtype = DSK_F32, "cu_seqlens has dtype f32");
    P(f.tcu.shape[0] = 0, "cu_seqlens has shape [0], expected [B+1]");
    P(f.cu[0] = 1, "cu_seqlens[0] = 1, expected 0");
    P(f.cu[2] = 2, "cu_seqlens[2] = 2 < cu_seqlens[1] = 3, expected nondecreasing");
    P(f.cu[3] = 6, "cu_seqlens[B] = cu_seqlens[3] = 6, expected T = 7");
    P(f.a.out = NULL, "out is NULL");
    P(f.tout.shape[2] = 6, "out has shape [7, 2, 6], expected [T, H, Dv] = [7, 2, 4]");
    P(f.tlse.shape[0] = 8, "lse has shape [8, 2], expected [T, H] = [7, 2]");
    P(f.a.softmax_scale = -1.0f, "softmax_scale = -1, expected a finite value > 0");
    P(f.a.softmax_scale = INFINITY, "softmax_scale = inf");
    P(f.tout.data = f.v + 4, "output out overlaps input v");
    P(f.tlse.data = f.cu, "output lse overlaps input cu_seqlens");
#undef P
}

/* ---- routing ---------------------------------------------------------------------- */

typedef struct route_fx {
    float logits[3 * 16], bias[16], w[3 * 4];
    int32_t idx[3 * 4];
    dsk_tensor tl, tb, ti, tw;
    dsk_moe_route_args a;
} route_fx;

/* T=3, E=16 in 4 groups of 4, keep 2 groups, top 4. */
static void route_init(route_fx *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 48; i++)
        f->logits[i] = (float)((i * 7) % 11) - 5.0f;
    f->tl = view(f->logits, DSK_F32, 2, 3, 16, 1);
    f->tb = view(f->bias, DSK_F32, 1, 16, 1, 1);
    f->ti = view(f->idx, DSK_I32, 2, 3, 4, 1);
    f->tw = view(f->w, DSK_F32, 2, 3, 4, 1);
    f->a = (dsk_moe_route_args){.logits = &f->tl, .bias = &f->tb, .topk_idx = &f->ti, .topk_w = &f->tw,
                                .p = {.n_experts = 16, .n_group = 4, .topk_group = 2, .top_k = 4,
                                      .norm_topk_prob = 1, .routed_scaling_factor = 2.5f,
                                      .scoring = DSK_MOE_SIGMOID}};
}

static void test_route_args(void)
{
    route_fx f;
#define R(mutate, substr) do { route_init(&f); mutate; BAD(dsk_moe_route_ref(&f.a), substr); } while (0)
    route_init(&f);
    DSK_T_OK(dsk_moe_route_ref(&f.a));
    BAD(dsk_moe_route_ref(NULL), "dsk_moe_route_ref: args is NULL");
    R(f.a.p.n_experts = 0, "p.n_experts = 0, expected >= 1");
    R(f.a.p.n_group = 3, "p.n_group = 3, expected a divisor of p.n_experts = 16");
    R(f.a.p.n_group = 0, "p.n_group = 0, expected a divisor");
    R((f.a.p.n_group = 16, f.a.p.topk_group = 4), "p.n_group = 16 leaves 1 expert per group, expected >= 2");
    R(f.a.p.topk_group = 0, "p.topk_group = 0, expected 1..n_group = 1..4");
    R(f.a.p.topk_group = 5, "p.topk_group = 5, expected 1..n_group = 1..4");
    R(f.a.p.top_k = 0, "p.top_k = 0, expected 1..topk_group*n_experts/n_group = 1..8");
    R(f.a.p.top_k = 9, "p.top_k = 9, expected 1..topk_group*n_experts/n_group = 1..8 (the experts in the kept groups)");
    R(f.a.p.routed_scaling_factor = NAN, "p.routed_scaling_factor = nan, expected finite");
    R(f.a.p.scoring = (dsk_moe_scoring)2, "p.scoring = 2, expected DSK_MOE_SIGMOID (0) or DSK_MOE_SOFTMAX (1)");
    R(f.a.logits = NULL, "logits is NULL");
    R(f.tl.dtype = DSK_BF16, "logits has dtype bf16, expected f32");
    R(f.tl.shape[1] = 15, "logits has shape [3, 15], expected [T, E = p.n_experts] = [3, 16]");
    R(f.tb.shape[0] = 8, "bias has shape [8], expected [E = p.n_experts] = [16]");
    R(f.tb.dtype = DSK_F16, "bias has dtype f16");
    R(f.a.topk_idx = NULL, "topk_idx is NULL");
    R(f.ti.dtype = DSK_F32, "topk_idx has dtype f32, expected i32");
    R(f.ti.shape[1] = 8, "topk_idx has shape [3, 8], expected [T, p.top_k] = [3, 4]");
    R(f.tw.shape[0] = 2, "topk_w has shape [2, 4], expected [T, p.top_k] = [3, 4]");
    R(f.tw.dtype = DSK_I32, "topk_w has dtype i32");
    R(f.tw.data = f.idx, "output topk_w overlaps input topk_idx");
    R(f.ti.data = f.logits, "output topk_idx overlaps input logits");
    R(f.tw.data = f.bias, "output topk_w overlaps input bias");
#undef R
    route_init(&f);
    f.a.bias = NULL; /* optional */
    DSK_T_OK(dsk_moe_route_ref(&f.a));
}

/* ---- layout ----------------------------------------------------------------------- */

typedef struct layout_fx {
    int32_t idx[3 * 2], tpe[4], tpr[2];
    uint8_t in[3 * 2];
    dsk_tensor ti, te, tr, tin;
    dsk_moe_layout_args a;
} layout_fx;

static void layout_init(layout_fx *f)
{
    memset(f, 0, sizeof *f);
    const int32_t idx[6] = {0, 3, 1, -1, 2, 3};
    memcpy(f->idx, idx, sizeof idx);
    f->ti = view(f->idx, DSK_I32, 2, 3, 2, 1);
    f->te = view(f->tpe, DSK_I32, 1, 4, 1, 1);
    f->tr = view(f->tpr, DSK_I32, 1, 2, 1, 1);
    f->tin = view(f->in, DSK_U8, 2, 3, 2, 1);
    f->a = (dsk_moe_layout_args){.topk_idx = &f->ti, .n_experts = 4, .n_ranks = 2,
                                 .tokens_per_expert = &f->te, .tokens_per_rank = &f->tr,
                                 .is_token_in_rank = &f->tin};
}

static void test_layout_args(void)
{
    layout_fx f;
#define L(mutate, substr) do { layout_init(&f); mutate; BAD(dsk_moe_layout_ref(&f.a), substr); } while (0)
    layout_init(&f);
    DSK_T_OK(dsk_moe_layout_ref(&f.a));
    BAD(dsk_moe_layout_ref(NULL), "dsk_moe_layout_ref: args is NULL");
    L(f.a.n_experts = 0, "n_experts = 0, expected >= 1");
    L(f.a.n_ranks = 3, "n_ranks = 3, expected a divisor of n_experts = 4");
    L(f.a.n_ranks = 0, "n_ranks = 0, expected a divisor");
    L(f.a.topk_idx = NULL, "topk_idx is NULL");
    L(f.ti.dtype = DSK_U8, "topk_idx has dtype u8, expected i32");
    L(f.te.shape[0] = 3, "tokens_per_expert has shape [3], expected [E = n_experts] = [4]");
    L(f.tr.shape[0] = 4, "tokens_per_rank has shape [4], expected [R = n_ranks] = [2]");
    L(f.tin.dtype = DSK_I32, "is_token_in_rank has dtype i32, expected u8");
    L(f.tin.shape[0] = 2, "is_token_in_rank has shape [2, 2], expected [T, R = n_ranks] = [3, 2]");
    L(f.te.data = f.idx, "output tokens_per_expert overlaps input topk_idx");
    L(f.idx[3] = 4, "topk_idx[1, 1] = 4, expected -1 (no expert) or 0..n_experts-1 = 0..3");
    L(f.idx[0] = -2, "topk_idx[0, 0] = -2");
#undef L
}

/* ---- permute ---------------------------------------------------------------------- */

typedef struct perm_fx {
    float x[3 * 5], xp[18 * 5];
    int32_t idx[3 * 2], mi[18], rm[3 * 2], off[5];
    dsk_tensor tx, ti, txp, tmi, trm, toff;
    dsk_moe_permute_args a;
} perm_fx;

/* T=3, k=2, E=4, Hd=5, align=4: P >= 6 + 4*3 = 18. */
static void perm_init(perm_fx *f)
{
    memset(f, 0, sizeof *f);
    const int32_t idx[6] = {0, 3, 1, -1, 2, 3};
    memcpy(f->idx, idx, sizeof idx);
    f->tx = view(f->x, DSK_F32, 2, 3, 5, 1);
    f->ti = view(f->idx, DSK_I32, 2, 3, 2, 1);
    f->txp = view(f->xp, DSK_F32, 2, 18, 5, 1);
    f->tmi = view(f->mi, DSK_I32, 1, 18, 1, 1);
    f->trm = view(f->rm, DSK_I32, 2, 3, 2, 1);
    f->toff = view(f->off, DSK_I32, 1, 5, 1, 1);
    f->a = (dsk_moe_permute_args){.x = &f->tx, .topk_idx = &f->ti, .n_experts = 4, .align = 4,
                                  .x_perm = &f->txp, .m_indices = &f->tmi, .row_map = &f->trm,
                                  .expert_offsets = &f->toff};
}

static void test_permute_args(void)
{
    perm_fx f;
#define M(mutate, substr) do { perm_init(&f); mutate; BAD(dsk_moe_permute_ref(&f.a), substr); } while (0)
    perm_init(&f);
    DSK_T_OK(dsk_moe_permute_ref(&f.a));
    BAD(dsk_moe_permute_ref(NULL), "dsk_moe_permute_ref: args is NULL");
    M(f.a.n_experts = 0, "n_experts = 0, expected >= 1");
    M(f.a.align = 0, "align = 0, expected >= 1 (1: no padding)");
    M(f.a.x = NULL, "x is NULL");
    M(f.tx.dtype = (dsk_dtype)99, "x has dtype invalid");
    M(f.a.topk_idx = NULL, "topk_idx is NULL");
    M(f.ti.shape[0] = 2, "topk_idx has shape [2, 2], expected [T (x.shape[0]), k] = [3, 2]");
    M(f.txp.dtype = DSK_BF16, "x_perm has dtype bf16, expected f32");
    M(f.txp.shape[1] = 4, "x_perm has shape [18, 4], expected [P, Hd (x.shape[1])] = [18, 5]");
    M((f.txp.shape[0] = 17, f.tmi.shape[0] = 17), "x_perm has 17 rows, expected P >= dsk_moe_permute_rows(T=3, k=2, E=4, align=4) = 18");
    M(f.tmi.shape[0] = 17, "m_indices has shape [17], expected [P (x_perm.shape[0])] = [18]");
    M(f.trm.shape[1] = 3, "row_map has shape [3, 3], expected [T, k] (topk_idx's shape) = [3, 2]");
    M(f.toff.shape[0] = 4, "expert_offsets has shape [4], expected [n_experts + 1] = [5]");
    M(f.toff.dtype = DSK_I64, "expert_offsets has dtype i64");
    M(f.txp.data = f.x, "output x_perm overlaps input x");
    M(f.trm.data = f.mi + 2, "output row_map overlaps input m_indices");
    M(f.idx[5] = 4, "topk_idx[2, 1] = 4, expected -1 (no expert) or 0..n_experts-1 = 0..3");
    /* more rows than i32 row indices can address (no data is read before the check) */
    M((f.tx.shape[0] = f.ti.shape[0] = f.trm.shape[0] = 1 << 29, f.ti.shape[1] = f.trm.shape[1] = 8,
       f.ti.stride[0] = f.trm.stride[0] = 8),
      "expected <= 2147483647 (row indices are i32)");
#undef M
}

/* ---- combine ---------------------------------------------------------------------- */

typedef struct comb_fx {
    float yp[6 * 4], w[3 * 2], y[3 * 4];
    int32_t rm[3 * 2];
    dsk_tensor typ, trm, tw, ty;
    dsk_moe_combine_args a;
} comb_fx;

static void comb_init(comb_fx *f)
{
    memset(f, 0, sizeof *f);
    const int32_t rm[6] = {0, 5, 2, -1, 3, 4};
    memcpy(f->rm, rm, sizeof rm);
    f->typ = view(f->yp, DSK_F32, 2, 6, 4, 1);
    f->trm = view(f->rm, DSK_I32, 2, 3, 2, 1);
    f->tw = view(f->w, DSK_F32, 2, 3, 2, 1);
    f->ty = view(f->y, DSK_F32, 2, 3, 4, 1);
    f->a = (dsk_moe_combine_args){.y_perm = &f->typ, .row_map = &f->trm, .topk_w = &f->tw, .y = &f->ty};
}

static void test_combine_args(void)
{
    comb_fx f;
#define C(mutate, substr) do { comb_init(&f); mutate; BAD(dsk_moe_combine_ref(&f.a), substr); } while (0)
    comb_init(&f);
    DSK_T_OK(dsk_moe_combine_ref(&f.a));
    BAD(dsk_moe_combine_ref(NULL), "dsk_moe_combine_ref: args is NULL");
    C(f.a.y_perm = NULL, "y_perm is NULL");
    C(f.typ.dtype = DSK_E4M3, "y_perm has dtype e4m3, expected f32|bf16");
    C(f.a.row_map = NULL, "row_map is NULL");
    C(f.trm.dtype = DSK_F32, "row_map has dtype f32, expected i32");
    C(f.tw.shape[1] = 3, "topk_w has shape [3, 3], expected [T, k] (row_map's shape) = [3, 2]");
    C(f.tw.dtype = DSK_BF16, "topk_w has dtype bf16, expected f32");
    C(f.a.y = NULL, "y is NULL");
    C(f.ty.shape[1] = 3, "y has shape [3, 3], expected [T (row_map.shape[0]), Hd (y_perm.shape[1])] = [3, 4]");
    C(f.ty.dtype = DSK_I32, "y has dtype i32");
    C(f.ty.data = f.yp + 8, "output y overlaps input y_perm");
    C(f.rm[1] = 6, "row_map[0, 1] = 6, expected -1 (no row) or 0..P-1 = 0..5");
    C(f.rm[4] = -3, "row_map[2, 0] = -3");
#undef C
}

/* ---- RMSNorm, RoPE, SwiGLU -------------------------------------------------------- */

typedef struct norm_fx {
    float x[3 * 8], w[8], y[3 * 8];
    dsk_tensor tx, tw, ty;
    dsk_rmsnorm_args a;
} norm_fx;

static void norm_init(norm_fx *f)
{
    memset(f, 0, sizeof *f);
    f->tx = view(f->x, DSK_F32, 2, 3, 8, 1);
    f->tw = view(f->w, DSK_F32, 1, 8, 1, 1);
    f->ty = view(f->y, DSK_F32, 2, 3, 8, 1);
    f->a = (dsk_rmsnorm_args){.x = &f->tx, .weight = &f->tw, .y = &f->ty, .eps = 1e-6f};
}

static void test_rmsnorm_args(void)
{
    norm_fx f;
#define N(mutate, substr) do { norm_init(&f); mutate; BAD(dsk_rmsnorm_ref(&f.a), substr); } while (0)
    norm_init(&f);
    DSK_T_OK(dsk_rmsnorm_ref(&f.a));
    BAD(dsk_rmsnorm_ref(NULL), "dsk_rmsnorm_ref: args is NULL");
    N(f.a.x = NULL, "x is NULL");
    N(f.tx.dtype = DSK_I32, "x has dtype i32");
    N((f.tx.shape[1] = 0, f.tw.shape[0] = 0, f.ty.shape[1] = 0), "x has Hd = x.shape[1] = 0, expected >= 1");
    N(f.a.weight = NULL, "weight is NULL");
    N(f.tw.shape[0] = 7, "weight has shape [7], expected [Hd (x.shape[1])] = [8]");
    N(f.tw.dtype = DSK_E4M3, "weight has dtype e4m3");
    N(f.a.y = NULL, "y is NULL");
    N(f.ty.shape[0] = 2, "y has shape [2, 8], expected [T, Hd] (x's shape) = [3, 8]");
    N(f.a.eps = -1e-6f, "eps = -1e-06, expected a finite value >= 0");
    N(f.a.eps = NAN, "eps = nan");
    N(f.ty.data = f.x + 8, "output y overlaps input x");      /* partial overlap: refused */
    N((f.ty.data = f.x, f.ty.dtype = DSK_BF16), "output y overlaps input x"); /* not the same view */
    N(f.tw.data = f.y, "output y overlaps input weight");
#undef N
    norm_init(&f);
    f.a.y = &f.tx; /* exact alias: in place is allowed */
    DSK_T_OK(dsk_rmsnorm_ref(&f.a));
}

typedef struct rope_fx {
    float x[2 * 3 * 8];
    int32_t pos[2];
    dsk_tensor tx, tp;
    dsk_rope_args a;
} rope_fx;

static void rope_init(rope_fx *f)
{
    memset(f, 0, sizeof *f);
    f->pos[0] = 0, f->pos[1] = 70000;
    f->tx = view(f->x, DSK_F32, 3, 2, 3, 8);
    f->tp = view(f->pos, DSK_I32, 1, 2, 1, 1);
    f->a = (dsk_rope_args){.x = &f->tx, .positions = &f->tp, .p = dsk_rope_params_v3()};
    f->a.p.dim = 8;
}

static void test_rope_args(void)
{
    rope_fx f;
#define Q(mutate, substr) do { rope_init(&f); mutate; BAD(dsk_rope_ref(&f.a), substr); } while (0)
    rope_init(&f);
    DSK_T_OK(dsk_rope_ref(&f.a));
    BAD(dsk_rope_ref(NULL), "dsk_rope_ref: args is NULL");
    Q((f.a.p.dim = 7, f.tx.shape[2] = 7), "p.dim = 7, expected an even value >= 2 (pairs)");
    Q(f.a.p.dim = 0, "p.dim = 0, expected an even value >= 2");
    Q(f.a.p.theta = 1.0f, "p.theta = 1, expected a finite value > 1");
    Q(f.a.p.factor = 0.0f, "p.factor = 0, expected a finite value > 0 (<= 1: no YaRN)");
    Q(f.a.p.attn_factor = INFINITY, "p.attn_factor = inf, expected finite");
    Q(f.a.p.original_max_pos = 0, "p.original_max_pos = 0, expected >= 1 when p.factor > 1 (YaRN)");
    Q(f.a.p.beta_slow = 0.0f, "p.beta_slow = 0, expected a finite value > 0 when p.factor > 1");
    Q(f.a.p.beta_fast = 0.5f, "p.beta_fast = 0.5, expected a finite value >= p.beta_slow = 1");
    Q(f.a.x = NULL, "x is NULL");
    Q(f.tx.shape[2] = 6, "x has shape [2, 3, 6], expected [T, nh, p.dim] = [2, 3, 8]");
    Q(f.tx.dtype = DSK_F16, "x has dtype f16");
    Q(f.a.positions = NULL, "positions is NULL");
    Q(f.tp.shape[0] = 3, "positions has shape [3], expected [T (x.shape[0])] = [2]");
    Q(f.tp.dtype = DSK_I64, "positions has dtype i64, expected i32");
    Q(f.pos[1] = -1, "positions[1] = -1, expected >= 0");
    Q(f.tp.data = f.x + 4, "output x overlaps input positions");
#undef Q
    /* plain RoPE ignores the YaRN fields */
    rope_init(&f);
    f.a.p.factor = 1.0f;
    f.a.p.original_max_pos = 0;
    f.a.p.beta_fast = f.a.p.beta_slow = 0.0f;
    DSK_T_OK(dsk_rope_ref(&f.a));
}

typedef struct swiglu_fx {
    float gu[2 * 10], y[2 * 5];
    dsk_tensor tg, ty;
    dsk_swiglu_args a;
} swiglu_fx;

static void swiglu_init(swiglu_fx *f)
{
    memset(f, 0, sizeof *f);
    f->tg = view(f->gu, DSK_F32, 2, 2, 10, 1);
    f->ty = view(f->y, DSK_F32, 2, 2, 5, 1);
    f->a = (dsk_swiglu_args){.gate_up = &f->tg, .y = &f->ty};
}

static void test_swiglu_args(void)
{
    swiglu_fx f;
#define S(mutate, substr) do { swiglu_init(&f); mutate; BAD(dsk_swiglu_ref(&f.a), substr); } while (0)
    swiglu_init(&f);
    DSK_T_OK(dsk_swiglu_ref(&f.a));
    BAD(dsk_swiglu_ref(NULL), "dsk_swiglu_ref: args is NULL");
    S(f.a.gate_up = NULL, "gate_up is NULL");
    S(f.tg.dtype = DSK_I32, "gate_up has dtype i32");
    S(f.tg.shape[1] = 9, "gate_up has 9 columns, expected an even count 2*I (gate | up)");
    S(f.a.y = NULL, "y is NULL");
    S(f.ty.shape[1] = 4, "y has shape [2, 4], expected [T, I (gate_up.shape[1] / 2)] = [2, 5]");
    S(f.ty.rank = 3, "y has rank 3");
    S(f.ty.data = f.gu, "output y overlaps input gate_up");
#undef S
}

/* ---- dispatch --------------------------------------------------------------------- */

static int g_calls;
static const void *g_last_args;

static dsk_status fake_decode(dsk_device *dev, const dsk_mla_decode_args *a)
{
    g_calls++;
    g_last_args = a;
    dsk_device_set_kernel(dev, "mla_decode_fake");
    return DSK_OK;
}
static dsk_status fake_rmsnorm(dsk_device *dev, const dsk_rmsnorm_args *a)
{
    g_calls++;
    g_last_args = a;
    return DSK_OK;
}

static const dsk_backend fake_backend = {.name = "fake", .mla_decode = fake_decode,
                                         .rmsnorm = fake_rmsnorm};
static const dsk_backend bare_backend = {.name = "bare"};

static void test_dispatch(void)
{
    dsk_device dev = {.backend = &fake_backend};
    snprintf(dev.props.name, sizeof dev.props.name, "fake:0");
    dev.props.host_memory = 1;
    dsk_device bare = {.backend = &bare_backend};
    snprintf(bare.props.name, sizeof bare.props.name, "bare:0");
    bare.props.host_memory = 1;
    dsk_device gpu = {.backend = &fake_backend}; /* device memory that the host cannot read */
    snprintf(gpu.props.name, sizeof gpu.props.name, "fakegpu:0");

    dec_fx f;
    dec_init(&f);
    BAD(dsk_mla_decode(NULL, &f.a), "dsk_mla_decode: dev is NULL");
    g_calls = 0;
    DSK_T_OK(dsk_mla_decode(&dev, &f.a));
    DSK_T_CHECK(g_calls == 1 && g_last_args == &f.a, "dispatch: the backend entry ran %d times", g_calls);
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(&dev), "mla_decode_fake"), "dispatch: last kernel '%s'",
                dsk_device_last_kernel(&dev));
    /* arguments are checked before the backend sees them */
    g_calls = 0;
    f.sl[1] = 0;
    BAD(dsk_mla_decode(&dev, &f.a), "dsk_mla_decode: seq_lens[1] = 0");
    DSK_T_CHECK(g_calls == 0, "dispatch: the backend ran on invalid arguments");
    dec_init(&f);
    f.a.dv = 0;
    BAD(dsk_mla_decode(&dev, &f.a), "dsk_mla_decode: dv = 0");
    /* no entry: unsupported, naming the backend */
    dec_init(&f);
    DSK_T_ERR(dsk_mla_decode(&bare, &f.a), DSK_ERR_UNSUPPORTED, "dsk_mla_decode: not available on the 'bare' backend");
    norm_fx n;
    norm_init(&n);
    DSK_T_ERR(dsk_rmsnorm(&bare, &n.a), DSK_ERR_UNSUPPORTED, "dsk_rmsnorm: not available on the 'bare' backend");
    g_calls = 0;
    DSK_T_OK(dsk_rmsnorm(&dev, &n.a));
    DSK_T_CHECK(g_calls == 1, "dispatch rmsnorm: the backend entry ran %d times", g_calls);
    /* residency: host tensors on a device whose memory the host cannot address */
    dec_init(&f);
    BAD(dsk_mla_decode(&gpu, &f.a), "dsk_mla_decode: q lives on the host, expected device 'fakegpu:0'");
    /* tensors on that device: their index data cannot be read, so only shapes are checked
     * (the kernel bounds its own reads) */
    dec_init(&f);
    f.tq.device = f.tkv.device = f.tbt.device = f.tsl.device = f.tout.device = f.tlse.device = &gpu;
    f.sl[1] = 0;
    g_calls = 0;
    DSK_T_OK(dsk_mla_decode(&gpu, &f.a));
    DSK_T_CHECK(g_calls == 1, "dispatch to a device-memory backend: entry ran %d times", g_calls);
    /* ... and on a host-memory device they must not come from the device-memory one */
    BAD(dsk_mla_decode(&dev, &f.a), "q lives on device 'fakegpu:0', expected device 'fake:0' or host memory");
    /* the reference needs host memory */
    BAD(dsk_mla_decode_ref(&f.a), "dsk_mla_decode_ref: q lives on device 'fakegpu:0', expected host memory");

    /* the remaining dispatchers: NULL device and missing entries */
    route_fx r;
    route_init(&r);
    BAD(dsk_moe_route(NULL, &r.a), "dsk_moe_route: dev is NULL");
    DSK_T_ERR(dsk_moe_route(&bare, &r.a), DSK_ERR_UNSUPPORTED, "dsk_moe_route: not available on the 'bare' backend");
    perm_fx p;
    perm_init(&p);
    BAD(dsk_moe_permute(NULL, &p.a), "dsk_moe_permute: dev is NULL");
    DSK_T_ERR(dsk_moe_permute(&bare, &p.a), DSK_ERR_UNSUPPORTED, "dsk_moe_permute: not available");
    comb_fx c;
    comb_init(&c);
    BAD(dsk_moe_combine(NULL, &c.a), "dsk_moe_combine: dev is NULL");
    DSK_T_ERR(dsk_moe_combine(&bare, &c.a), DSK_ERR_UNSUPPORTED, "dsk_moe_combine: not available");
    pre_fx pf;
    pre_init(&pf);
    BAD(dsk_mla_prefill(NULL, &pf.a), "dsk_mla_prefill: dev is NULL");
    DSK_T_ERR(dsk_mla_prefill(&bare, &pf.a), DSK_ERR_UNSUPPORTED, "dsk_mla_prefill: not available");
    rope_fx q;
    rope_init(&q);
    BAD(dsk_rope(NULL, &q.a), "dsk_rope: dev is NULL");
    DSK_T_ERR(dsk_rope(&bare, &q.a), DSK_ERR_UNSUPPORTED, "dsk_rope: not available");
    swiglu_fx s;
    swiglu_init(&s);
    BAD(dsk_swiglu(NULL, &s.a), "dsk_swiglu: dev is NULL");
    DSK_T_ERR(dsk_swiglu(&bare, &s.a), DSK_ERR_UNSUPPORTED, "dsk_swiglu: not available");
}

int main(void)
{
    test_decode_args();
    test_prefill_args();
    test_route_args();
    test_layout_args();
    test_permute_args();
    test_combine_args();
    test_rmsnorm_args();
    test_rope_args();
    test_swiglu_args();
    test_dispatch();
    return dsk_t_finish();
}
