/* tests/refs/test_refs_moe.c: the MoE references by hand-computed cases and invariants.
 *
 * - routing: a case where group limiting changes the chosen experts; weights from the
 *   unbiased scores although the bias decides the choice; softmax scoring; ties; the V3
 *   parameters; structural invariants at V3 size;
 * - dispatch layout, permute with padding, combine: hand cases;
 * - permute then combine is the weighted sum of each token's own row (round trip). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness/harness.h"

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct route {
    dsk_tensor *logits, *bias, *idx, *w;
    dsk_moe_route_args a;
} route;

static route route_new(int T, dsk_moe_route_params p, const float *logits, const float *bias)
{
    route r;
    r.logits = dsk_t_new2(DSK_F32, T, p.n_experts);
    r.bias = dsk_t_new(DSK_F32, 1, (int64_t[]){p.n_experts});
    r.idx = dsk_t_new2(DSK_I32, T, p.top_k);
    r.w = dsk_t_new2(DSK_F32, T, p.top_k);
    if (logits)
        memcpy(r.logits->data, logits, sizeof(float) * T * p.n_experts);
    if (bias)
        memcpy(r.bias->data, bias, sizeof(float) * p.n_experts);
    dsk_t_poison(r.idx);
    dsk_t_poison(r.w);
    r.a = (dsk_moe_route_args){.logits = r.logits, .bias = bias ? r.bias : NULL, .topk_idx = r.idx,
                               .topk_w = r.w, .p = p};
    return r;
}

static void test_v3_params(void)
{
    dsk_moe_route_params p = dsk_moe_route_params_v3();
    DSK_T_CHECK(p.n_experts == 256 && p.n_group == 8 && p.topk_group == 4 && p.top_k == 8 &&
                    p.norm_topk_prob == 1 && p.routed_scaling_factor == 2.5f &&
                    p.scoring == DSK_MOE_SIGMOID,
                "dsk_moe_route_params_v3: %d experts, %d groups, topk_group %d, top_k %d, norm %d, "
                "factor %g, scoring %d; want 256, 8, 4, 8, 1, 2.5, sigmoid",
                p.n_experts, p.n_group, p.topk_group, p.top_k, p.norm_topk_prob,
                (double)p.routed_scaling_factor, (int)p.scoring);
}

/* 8 experts in 4 groups of 2; logits 0 (s = 0.5), the bias shapes b = 0.5 + bias:
 *   group 0: b = 0.9, 0.0   (top-2 sum 0.9)   <- holds the best single expert
 *   group 1: b = 0.8, 0.8   (sum 1.6)
 *   group 2: b = 0.7, 0.7   (sum 1.4)
 *   group 3: b = 0.85, 0.0  (sum 0.85)
 * Without groups, top-2 = {0 (0.9), 6 (0.85)}. Keeping the best 2 groups {1, 2}, top-2 =
 * {2, 3} (tied at 0.8: the lower index first). */
static void test_group_limiting(void)
{
    const float logits[8] = {0};
    const float bias[8] = {0.4f, -0.5f, 0.3f, 0.3f, 0.2f, 0.2f, 0.35f, -0.5f};
    dsk_moe_route_params p = {.n_experts = 8, .n_group = 4, .topk_group = 2, .top_k = 2,
                              .norm_topk_prob = 1, .routed_scaling_factor = 2.5f,
                              .scoring = DSK_MOE_SIGMOID};
    route r = route_new(1, p, logits, bias);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        float *w = r.w->data;
        DSK_T_CHECK(idx[0] == 2 && idx[1] == 3, "group-limited: chose {%d, %d}, want {2, 3}", idx[0],
                    idx[1]);
        /* equal unbiased scores 0.5 -> normalized 0.5 each, times 2.5 */
        DSK_T_CHECK(w[0] == 1.25f && w[1] == 1.25f, "group-limited: weights %g %g, want 1.25 1.25",
                    w[0], w[1]);
    }
    p.n_group = 1;
    p.topk_group = 1;
    r = route_new(1, p, logits, bias);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        DSK_T_CHECK(idx[0] == 0 && idx[1] == 6, "one group: chose {%d, %d}, want {0, 6}", idx[0],
                    idx[1]);
    }
    /* all 4 groups kept: same as no grouping */
    p.n_group = 4;
    p.topk_group = 4;
    r = route_new(1, p, logits, bias);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        DSK_T_CHECK(idx[0] == 0 && idx[1] == 6, "all groups kept: chose {%d, %d}, want {0, 6}",
                    idx[0], idx[1]);
    }
}

/* The bias chooses, the unbiased scores weigh. 4 experts, logits [2, 0, -1, 1]:
 * no bias: top-2 = {0, 3}; bias [-5, 0, 0, 0]: top-2 = {3, 1} with weights from s. */
static void test_weights_unbiased(void)
{
    const float logits[4] = {2, 0, -1, 1};
    const float bias[4] = {-5, 0, 0, 0};
    dsk_moe_route_params p = {.n_experts = 4, .n_group = 1, .topk_group = 1, .top_k = 2,
                              .norm_topk_prob = 1, .routed_scaling_factor = 2.5f,
                              .scoring = DSK_MOE_SIGMOID};
    route r = route_new(1, p, logits, NULL);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        float *w = r.w->data;
        double s0 = sigm(2), s3 = sigm(1);
        DSK_T_CHECK(idx[0] == 0 && idx[1] == 3, "no bias: chose {%d, %d}, want {0, 3}", idx[0], idx[1]);
        DSK_T_CHECK(fabs(w[0] - 2.5 * s0 / (s0 + s3)) < 1e-6 && fabs(w[1] - 2.5 * s3 / (s0 + s3)) < 1e-6,
                    "no bias: weights %.7g %.7g, want %.7g %.7g", w[0], w[1], 2.5 * s0 / (s0 + s3),
                    2.5 * s3 / (s0 + s3));
        DSK_T_CHECK(fabs(w[0] + w[1] - 2.5) < 1e-6, "normalized weights sum to %.7g, want 2.5",
                    w[0] + w[1]);
    }
    r = route_new(1, p, logits, bias);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        float *w = r.w->data;
        double s3 = sigm(1), s1 = sigm(0);
        DSK_T_CHECK(idx[0] == 3 && idx[1] == 1, "bias: chose {%d, %d}, want {3, 1}", idx[0], idx[1]);
        DSK_T_CHECK(fabs(w[0] - 2.5 * s3 / (s3 + s1)) < 1e-6 && fabs(w[1] - 2.5 * s1 / (s3 + s1)) < 1e-6,
                    "bias: weights %.7g %.7g, want unbiased %.7g %.7g", w[0], w[1],
                    2.5 * s3 / (s3 + s1), 2.5 * s1 / (s3 + s1));
    }
    /* no normalization: weight = s * factor */
    p.norm_topk_prob = 0;
    p.routed_scaling_factor = 1.0f;
    r = route_new(1, p, logits, NULL);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        float *w = r.w->data;
        DSK_T_CHECK(fabs(w[0] - sigm(2)) < 1e-7 && fabs(w[1] - sigm(1)) < 1e-7,
                    "no norm: weights %.7g %.7g, want sigmoid %.7g %.7g", w[0], w[1], sigm(2), sigm(1));
    }
    /* softmax scoring (V2 style): weights are the probabilities over all experts */
    p.scoring = DSK_MOE_SOFTMAX;
    r = route_new(1, p, logits, NULL);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        float *w = r.w->data;
        double z = exp(2) + exp(0) + exp(-1) + exp(1);
        DSK_T_CHECK(fabs(w[0] - exp(2) / z) < 1e-7 && fabs(w[1] - exp(1) / z) < 1e-7,
                    "softmax: weights %.7g %.7g, want %.7g %.7g", w[0], w[1], exp(2) / z, exp(1) / z);
    }
}

static void test_ties(void)
{
    /* all equal: experts 0..k-1 in order; groups 0..topk_group-1 */
    const float logits[12] = {0};
    dsk_moe_route_params p = {.n_experts = 12, .n_group = 3, .topk_group = 2, .top_k = 5,
                              .norm_topk_prob = 1, .routed_scaling_factor = 1.0f,
                              .scoring = DSK_MOE_SIGMOID};
    route r = route_new(1, p, logits, NULL);
    if (DSK_T_OK(dsk_moe_route_ref(&r.a))) {
        int32_t *idx = r.idx->data;
        int ok = 1;
        for (int j = 0; j < 5; j++)
            ok &= idx[j] == j;
        DSK_T_CHECK(ok, "ties: chose %d %d %d %d %d, want 0 1 2 3 4", idx[0], idx[1], idx[2], idx[3],
                    idx[4]);
    }
}

/* V3 size, random: structural invariants of every row. */
static void test_v3_invariants(void)
{
    dsk_rng g = dsk_t_rng(7);
    const int T = 32;
    dsk_moe_route_params p = dsk_moe_route_params_v3();
    route r = route_new(T, p, NULL, NULL);
    dsk_t_fill_normal(r.logits, &g, 2.0);
    dsk_t_fill_normal(r.bias, &g, 0.3);
    r.a.bias = r.bias;
    if (!DSK_T_OK(dsk_moe_route_ref(&r.a)))
        return;
    int bad = 0;
    for (int t = 0; t < T && !bad; t++) {
        const int32_t *idx = (int32_t *)r.idx->data + t * 8;
        const float *w = (float *)r.w->data + t * 8;
        int groups = 0, ngroups = 0;
        double wsum = 0, prev_b = INFINITY;
        for (int j = 0; j < 8; j++) {
            int e = idx[j];
            if (e < 0 || e >= 256) { bad = 1; break; }
            for (int i = 0; i < j; i++)
                bad |= idx[i] == e; /* distinct */
            if (!(groups & (1 << (e / 32))))
                ngroups++;
            groups |= 1 << (e / 32);
            double s = sigm(dsk_t_get(r.logits, t * 256 + e)), b = s + dsk_t_get(r.bias, e);
            bad |= b > prev_b; /* descending biased score */
            prev_b = b;
            wsum += w[j];
        }
        bad |= ngroups > 4 || fabs(wsum - 2.5) > 1e-5;
        if (bad)
            DSK_T_CHECK(0, "V3 routing token %d: experts not distinct / not descending / more than "
                        "4 groups / weights sum %.7g != 2.5", t, wsum);
    }
    DSK_T_CHECK(!bad, "V3 routing invariants over %d tokens", T);
}

/* ---- layout, permute, combine ----------------------------------------------------- */

/* T=3, k=2, E=4: token 0 -> {0, 3}, token 1 -> {1, none}, token 2 -> {2, 3}. */
static const int32_t IDX[6] = {0, 3, 1, -1, 2, 3};

static void test_layout(void)
{
    dsk_tensor *idx = dsk_t_new2(DSK_I32, 3, 2);
    memcpy(idx->data, IDX, sizeof IDX);
    dsk_tensor *tpe = dsk_t_new(DSK_I32, 1, (int64_t[]){4}), *tpr = dsk_t_new(DSK_I32, 1, (int64_t[]){2});
    dsk_tensor *in = dsk_t_new2(DSK_U8, 3, 2);
    dsk_t_poison(tpe);
    dsk_t_poison(tpr);
    dsk_t_poison(in);
    dsk_moe_layout_args a = {.topk_idx = idx, .n_experts = 4, .n_ranks = 2, .tokens_per_expert = tpe,
                             .tokens_per_rank = tpr, .is_token_in_rank = in};
    if (!DSK_T_OK(dsk_moe_layout_ref(&a)))
        return;
    const int32_t want_tpe[4] = {1, 1, 1, 2}, want_tpr[2] = {2, 2};
    const uint8_t want_in[6] = {1, 1, 1, 0, 0, 1}; /* rank 0: experts 0-1, rank 1: experts 2-3 */
    DSK_T_CHECK(!memcmp(tpe->data, want_tpe, sizeof want_tpe), "layout: tokens_per_expert %d %d %d %d, "
                "want 1 1 1 2", ((int32_t *)tpe->data)[0], ((int32_t *)tpe->data)[1],
                ((int32_t *)tpe->data)[2], ((int32_t *)tpe->data)[3]);
    DSK_T_CHECK(!memcmp(tpr->data, want_tpr, sizeof want_tpr), "layout: tokens_per_rank %d %d, want 2 2",
                ((int32_t *)tpr->data)[0], ((int32_t *)tpr->data)[1]);
    DSK_T_CHECK(!memcmp(in->data, want_in, sizeof want_in), "layout: is_token_in_rank differs");
    /* one rank holds everything; four ranks: one expert each */
    a.n_ranks = 1;
    dsk_tensor *tpr1 = dsk_t_new(DSK_I32, 1, (int64_t[]){1}), *in1 = dsk_t_new2(DSK_U8, 3, 1);
    a.tokens_per_rank = tpr1;
    a.is_token_in_rank = in1;
    if (DSK_T_OK(dsk_moe_layout_ref(&a)))
        DSK_T_CHECK(((int32_t *)tpr1->data)[0] == 3, "layout, 1 rank: tokens_per_rank %d, want 3",
                    ((int32_t *)tpr1->data)[0]);
}

static void test_permute_rows(void)
{
    DSK_T_CHECK(dsk_moe_permute_rows(3, 2, 4, 1) == 6, "permute_rows(3,2,4,1) = %lld, want 6",
                (long long)dsk_moe_permute_rows(3, 2, 4, 1));
    DSK_T_CHECK(dsk_moe_permute_rows(3, 2, 4, 4) == 18, "permute_rows(3,2,4,4) = %lld, want 6 + 4*3",
                (long long)dsk_moe_permute_rows(3, 2, 4, 4));
    DSK_T_CHECK(dsk_moe_permute_rows(1, 2, 256, 128) == 2 + 2 * 127,
                "permute_rows(1,2,256,128) = %lld, want 2 + 2*127 (only 2 segments can be nonempty)",
                (long long)dsk_moe_permute_rows(1, 2, 256, 128));
    DSK_T_CHECK(dsk_moe_permute_rows(-1, 2, 4, 1) == -1 && dsk_moe_permute_rows(3, 2, 4, 0) == -1,
                "permute_rows: invalid arguments give -1");
}

static void test_permute_combine_by_hand(void)
{
    /* x rows are bytes (e4m3 codes): permute copies bytes, whatever the dtype */
    const int T = 3, k = 2, E = 4, Hd = 5, align = 4, P = 18;
    dsk_tensor *x = dsk_t_new2(DSK_E4M3, T, Hd), *idx = dsk_t_new2(DSK_I32, T, k);
    for (int i = 0; i < T * Hd; i++)
        ((uint8_t *)x->data)[i] = (uint8_t)(16 * (i / Hd) + i % Hd + 1);
    memcpy(idx->data, IDX, sizeof IDX);
    dsk_tensor *xp = dsk_t_new2(DSK_E4M3, P, Hd), *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){P});
    dsk_tensor *rm = dsk_t_new2(DSK_I32, T, k), *off = dsk_t_new(DSK_I32, 1, (int64_t[]){E + 1});
    memset(xp->data, 0xAB, dsk_tensor_nbytes(xp));
    dsk_t_poison(mi);
    dsk_t_poison(rm);
    dsk_t_poison(off);
    dsk_moe_permute_args a = {.x = x, .topk_idx = idx, .n_experts = E, .align = align, .x_perm = xp,
                              .m_indices = mi, .row_map = rm, .expert_offsets = off};
    if (!DSK_T_OK(dsk_moe_permute_ref(&a)))
        return;
    /* counts 1,1,1,2 -> segments padded to 4: offsets 0,4,8,12,16 */
    const int32_t want_off[5] = {0, 4, 8, 12, 16};
    const int32_t want_rm[6] = {0, 12, 4, -1, 8, 13};
    int32_t want_mi[18];
    for (int i = 0; i < 18; i++)
        want_mi[i] = -1;
    want_mi[0] = 0, want_mi[4] = 1, want_mi[8] = 2, want_mi[12] = 3, want_mi[13] = 3;
    DSK_T_CHECK(!memcmp(off->data, want_off, sizeof want_off), "permute: expert_offsets differ from "
                "0 4 8 12 16");
    DSK_T_CHECK(!memcmp(rm->data, want_rm, sizeof want_rm), "permute: row_map differs from "
                "0 12 4 -1 8 13");
    DSK_T_CHECK(!memcmp(mi->data, want_mi, sizeof want_mi), "permute: m_indices differs");
    const int src_of_row[18] = {0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 0, 2, -1, -1, -1, -1};
    int rows_ok = 1;
    for (int r = 0; r < P; r++)
        for (int c = 0; c < Hd; c++) {
            uint8_t got = ((uint8_t *)xp->data)[r * Hd + c];
            uint8_t want = src_of_row[r] < 0 ? 0xAB : ((uint8_t *)x->data)[src_of_row[r] * Hd + c];
            rows_ok &= got == want; /* padding rows are left untouched */
        }
    DSK_T_CHECK(rows_ok, "permute: x_perm rows are not the tokens' rows (or padding was written)");

    /* combine: y_perm row r = [r, 10r, ...]; y[t] = sum_j w[t,j] * y_perm[row_map[t,j]] */
    dsk_tensor *yp = dsk_t_new2(DSK_F32, P, 2), *w = dsk_t_new2(DSK_F32, T, k), *y = dsk_t_new2(DSK_F32, T, 2);
    for (int r = 0; r < P; r++)
        ((float *)yp->data)[2 * r] = (float)r, ((float *)yp->data)[2 * r + 1] = 10.0f * r;
    const float wv[6] = {0.5f, 2.0f, 3.0f, 100.0f, -1.0f, 0.25f};
    memcpy(w->data, wv, sizeof wv);
    dsk_t_poison(y);
    dsk_moe_combine_args ca = {.y_perm = yp, .row_map = rm, .topk_w = w, .y = y};
    if (!DSK_T_OK(dsk_moe_combine_ref(&ca)))
        return;
    /* t0: 0.5*row0 + 2*row12 = 24; t1: 3*row4 (slot -1 ignored) = 12; t2: -row8 + 0.25*row13 = -4.75 */
    const float want_y[6] = {24, 240, 12, 120, -4.75f, -47.5f};
    DSK_T_CHECK(!memcmp(y->data, want_y, sizeof want_y), "combine: y = %g %g %g %g %g %g, want "
                "24 240 12 120 -4.75 -47.5", ((float *)y->data)[0], ((float *)y->data)[1],
                ((float *)y->data)[2], ((float *)y->data)[3], ((float *)y->data)[4], ((float *)y->data)[5]);
}

/* permute then combine with y_perm = x_perm: y[t] = (sum of t's weights) * x[t]. */
static void test_round_trip(int id, int T, int k, int E, int align)
{
    dsk_rng g = dsk_t_rng(100 + id);
    const int Hd = 19;
    const int64_t P = dsk_moe_permute_rows(T, k, E, align) + 3;
    dsk_tensor *x = dsk_t_new2(DSK_F32, T, Hd), *idx = dsk_t_new2(DSK_I32, T, k);
    dsk_tensor *xp = dsk_t_new2(DSK_F32, P, Hd), *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){P});
    dsk_tensor *rm = dsk_t_new2(DSK_I32, T, k), *off = dsk_t_new(DSK_I32, 1, (int64_t[]){E + 1});
    dsk_tensor *w = dsk_t_new2(DSK_F32, T, k), *y = dsk_t_new2(DSK_F32, T, Hd);
    dsk_t_fill_normal(x, &g, 1.0);
    dsk_t_fill_int(idx, &g, -1, E - 1);
    dsk_t_fill_uniform(w, &g, 0.0, 1.0);
    dsk_t_poison(xp);
    dsk_t_poison(mi);
    dsk_t_poison(rm);
    dsk_t_poison(off);
    dsk_t_poison(y);
    dsk_moe_permute_args pa = {.x = x, .topk_idx = idx, .n_experts = E, .align = align, .x_perm = xp,
                               .m_indices = mi, .row_map = rm, .expert_offsets = off};
    dsk_moe_combine_args ca = {.y_perm = xp, .row_map = rm, .topk_w = w, .y = y};
    if (!DSK_T_OK(dsk_moe_permute_ref(&pa)) || !DSK_T_OK(dsk_moe_combine_ref(&ca)))
        return;
    double max_err = 0;
    for (int t = 0; t < T; t++) {
        double ws = 0;
        for (int j = 0; j < k; j++)
            if (((int32_t *)idx->data)[t * k + j] >= 0)
                ws += ((float *)w->data)[t * k + j];
        for (int c = 0; c < Hd; c++) {
            double e = fabs(dsk_t_get(y, t * Hd + c) - ws * dsk_t_get(x, t * Hd + c));
            max_err = isfinite(e) ? fmax(max_err, e) : INFINITY;
        }
    }
    /* f64 sums rounded once to f32: |y| <= ~8*4, error <= a few 1e-6 */
    DSK_T_CHECK(max_err <= 1e-5, "round trip T=%d k=%d E=%d align=%d: max err %.3g (tol 1e-5)", T, k,
                E, align, max_err);
    /* segments: contiguous, in expert order, aligned, m_indices consistent */
    int ok = ((int32_t *)off->data)[0] == 0;
    for (int e = 0; e < E; e++) {
        int32_t o0 = ((int32_t *)off->data)[e], o1 = ((int32_t *)off->data)[e + 1];
        ok &= o1 >= o0 && (o1 - o0) % align == 0;
        int seen_pad = 0;
        for (int32_t r = o0; r < o1; r++) {
            int32_t m = ((int32_t *)mi->data)[r];
            ok &= m == e || m == -1;
            ok &= !(seen_pad && m == e); /* padding only at the segment's end */
            seen_pad |= m == -1;
        }
    }
    for (int64_t r = ((int32_t *)off->data)[E]; r < P; r++)
        ok &= ((int32_t *)mi->data)[r] == -1;
    DSK_T_CHECK(ok, "round trip T=%d k=%d E=%d align=%d: segments malformed", T, k, E, align);
}

int main(void)
{
    test_v3_params();
    test_group_limiting();
    test_weights_unbiased();
    test_ties();
    test_v3_invariants();
    test_layout();
    test_permute_rows();
    test_permute_combine_by_hand();
    test_round_trip(0, 37, 8, 16, 1);
    test_round_trip(1, 37, 8, 16, 8);
    test_round_trip(2, 5, 3, 64, 128);
    return dsk_t_finish();
}
