/* moe/route.c: DeepSeek-V3 routing ("noaux_tc": sigmoid scores, bias-corrected
 * group-limited top-k): the parameter and argument checks, the float64 reference and the
 * dispatcher. The contract is in dsk/moe.h. */
#include <math.h>
#include <stdlib.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

dsk_moe_route_params dsk_moe_route_params_v3(void)
{
    dsk_moe_route_params p = {
        .n_experts = 256,
        .n_group = 8,
        .topk_group = 4,
        .top_k = 8,
        .norm_topk_prob = 1,
        .routed_scaling_factor = 2.5f,
        .scoring = DSK_MOE_SIGMOID,
    };
    return p;
}

static dsk_status check_params(const char *fn, const dsk_moe_route_params *p)
{
    if (p->n_experts < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.n_experts = %d, expected >= 1", fn, p->n_experts);
    if (p->n_group < 1 || p->n_experts % p->n_group != 0)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: p.n_group = %d, expected a divisor of p.n_experts = %d", fn, p->n_group,
                        p->n_experts);
    const int gsize = p->n_experts / p->n_group;
    if (p->n_group > 1 && gsize < 2)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: p.n_group = %d leaves %d expert per group, expected >= 2 (a group's "
                        "score is the sum of its top-2 biased scores)",
                        fn, p->n_group, gsize);
    if (p->topk_group < 1 || p->topk_group > p->n_group)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.topk_group = %d, expected 1..n_group = 1..%d",
                        fn, p->topk_group, p->n_group);
    const int kept = p->topk_group * gsize;
    if (p->top_k < 1 || p->top_k > kept)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: p.top_k = %d, expected 1..topk_group*n_experts/n_group = 1..%d (the "
                        "experts in the kept groups)",
                        fn, p->top_k, kept);
    if (!isfinite(p->routed_scaling_factor))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: p.routed_scaling_factor = %g, expected finite", fn,
                        (double)p->routed_scaling_factor);
    if (p->scoring != DSK_MOE_SIGMOID && p->scoring != DSK_MOE_SOFTMAX)
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "%s: p.scoring = %d, expected DSK_MOE_SIGMOID (0) or DSK_MOE_SOFTMAX (1)", fn,
                        (int)p->scoring);
    return DSK_OK;
}

dsk_status dsk_moe_route_check(const char *fn, const dsk_moe_route_args *a)
{
    if (!fn)
        fn = "dsk_moe_route";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_moe_route_args", fn);
    DSK_TRY(check_params(fn, &a->p));
    DSK_TRY(dsk_op_tensor(fn, "logits", a->logits, 2, DSK_DT(DSK_F32), "[T, E]"));
    const int64_t T = a->logits->shape[0], E = a->p.n_experts, k = a->p.top_k;
    const int64_t lg_want[2] = {T, E};
    DSK_TRY(dsk_op_shape(fn, "logits", a->logits, lg_want, "[T, E = p.n_experts]"));
    if (a->bias) {
        DSK_TRY(dsk_op_tensor(fn, "bias", a->bias, 1, DSK_DT(DSK_F32), "[E]"));
        DSK_TRY(dsk_op_shape(fn, "bias", a->bias, &E, "[E = p.n_experts]"));
    }
    const int64_t out_want[2] = {T, k};
    DSK_TRY(dsk_op_tensor(fn, "topk_idx", a->topk_idx, 2, DSK_DT(DSK_I32), "[T, top_k]"));
    DSK_TRY(dsk_op_out_shape(fn, "topk_idx", a->topk_idx, out_want, "[T, p.top_k]"));
    DSK_TRY(dsk_op_tensor(fn, "topk_w", a->topk_w, 2, DSK_DT(DSK_F32), "[T, top_k]"));
    DSK_TRY(dsk_op_out_shape(fn, "topk_w", a->topk_w, out_want, "[T, p.top_k]"));
    DSK_TRY(dsk_op_no_overlap(fn, "topk_w", a->topk_w, "topk_idx", a->topk_idx));
    DSK_TRY(dsk_op_no_overlap(fn, "topk_idx", a->topk_idx, "logits", a->logits));
    DSK_TRY(dsk_op_no_overlap(fn, "topk_idx", a->topk_idx, "bias", a->bias));
    DSK_TRY(dsk_op_no_overlap(fn, "topk_w", a->topk_w, "logits", a->logits));
    DSK_TRY(dsk_op_no_overlap(fn, "topk_w", a->topk_w, "bias", a->bias));
    return DSK_OK;
}

/* x (index ix) ranks before y (index iy): larger value first, ties to the lower index.
 * Written so that a NaN never wins against a number but a choice is always made. */
static int ranks_before(double x, int64_t ix, double y, int64_t iy)
{
    if (x > y)
        return 1;
    if (x < y)
        return 0;
    if (x == y)
        return ix < iy;
    return isnan(y) && !isnan(x) ? 1 : (isnan(x) && !isnan(y) ? 0 : ix < iy);
}

/* Scratch of one token's routing, each array [E] (n_group <= E). */
typedef struct route_scratch {
    double *s, *b, *gscore;
    unsigned char *keep, *gtaken;
} route_scratch;

static void route_token(const dsk_moe_route_args *a, int64_t t, route_scratch *w)
{
    double *s = w->s, *b = w->b, *gscore = w->gscore;
    unsigned char *keep = w->keep, *gtaken = w->gtaken;
    const dsk_moe_route_params *p = &a->p;
    const int64_t E = p->n_experts, G = p->n_group, gsize = E / G;

    /* scores: sigmoid per expert, or softmax over all experts (max subtracted) */
    for (int64_t e = 0; e < E; e++)
        s[e] = dsk_load(a->logits, dsk_off2(a->logits, t, e));
    if (p->scoring == DSK_MOE_SOFTMAX) {
        double m = -INFINITY, sum = 0.0;
        for (int64_t e = 0; e < E; e++)
            m = s[e] > m ? s[e] : m;
        for (int64_t e = 0; e < E; e++) {
            s[e] = exp(s[e] - m);
            sum += s[e];
        }
        for (int64_t e = 0; e < E; e++)
            s[e] /= sum;
    } else {
        for (int64_t e = 0; e < E; e++)
            s[e] = 1.0 / (1.0 + exp(-s[e]));
    }
    for (int64_t e = 0; e < E; e++)
        b[e] = s[e] + (a->bias ? dsk_load(a->bias, e * a->bias->stride[0]) : 0.0);

    /* group limiting: keep the topk_group groups with the largest sum of top-2 b */
    for (int64_t e = 0; e < E; e++)
        keep[e] = G == 1;
    if (G > 1) {
        for (int64_t g = 0; g < G; g++) {
            int64_t i1 = g * gsize, i2 = -1;
            for (int64_t e = g * gsize + 1; e < (g + 1) * gsize; e++)
                if (ranks_before(b[e], e, b[i1], i1))
                    i1 = e;
            for (int64_t e = g * gsize; e < (g + 1) * gsize; e++)
                if (e != i1 && (i2 < 0 || ranks_before(b[e], e, b[i2], i2)))
                    i2 = e;
            gscore[g] = b[i1] + b[i2];
            gtaken[g] = 0;
        }
        for (int r = 0; r < p->topk_group; r++) {
            int64_t best = -1;
            for (int64_t g = 0; g < G; g++)
                if (!gtaken[g] && (best < 0 || ranks_before(gscore[g], g, gscore[best], best)))
                    best = g;
            gtaken[best] = 1;
            for (int64_t e = best * gsize; e < (best + 1) * gsize; e++)
                keep[e] = 1;
        }
    }

    /* top_k experts by b among the kept ones, in descending order */
    double wsum = 0.0;
    for (int j = 0; j < p->top_k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++)
            if (keep[e] && (best < 0 || ranks_before(b[e], e, b[best], best)))
                best = e;
        keep[best] = 0;
        dsk_op_st_i32(a->topk_idx, dsk_off2(a->topk_idx, t, j), (int32_t)best);
        wsum += s[best];
    }

    /* weights: unbiased scores, normalized when asked, times the scaling factor */
    for (int j = 0; j < p->top_k; j++) {
        int64_t e = dsk_load_i32(a->topk_idx, dsk_off2(a->topk_idx, t, j));
        double w = s[e];
        if (p->norm_topk_prob)
            w /= wsum;
        dsk_store(a->topk_w, dsk_off2(a->topk_w, t, j), w * p->routed_scaling_factor);
    }
}

dsk_status dsk_moe_route_ref(const dsk_moe_route_args *a)
{
    static const char fn[] = "dsk_moe_route_ref";
    DSK_TRY(dsk_moe_route_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "logits", a->logits));
    DSK_TRY(dsk_op_host(fn, "bias", a->bias));
    DSK_TRY(dsk_op_host(fn, "topk_idx", a->topk_idx));
    DSK_TRY(dsk_op_host(fn, "topk_w", a->topk_w));
    const int64_t T = a->logits->shape[0], E = a->p.n_experts;
    route_scratch w = {
        .s = malloc((size_t)E * sizeof(double)),
        .b = malloc((size_t)E * sizeof(double)),
        .gscore = malloc((size_t)E * sizeof(double)),
        .keep = malloc((size_t)E),
        .gtaken = malloc((size_t)E),
    };
    dsk_status st = DSK_OK;
    if (!w.s || !w.b || !w.gscore || !w.keep || !w.gtaken)
        st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: cannot allocate scratch for %lld experts", fn,
                      (long long)E);
    for (int64_t t = 0; st == DSK_OK && t < T; t++)
        route_token(a, t, &w);
    free(w.s);
    free(w.b);
    free(w.gscore);
    free(w.keep);
    free(w.gtaken);
    return st;
}

dsk_status dsk_moe_route(dsk_device *dev, const dsk_moe_route_args *a)
{
    static const char fn[] = "dsk_moe_route";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_moe_route_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "logits", a->logits, dev));
    DSK_TRY(dsk_op_on_device(fn, "bias", a->bias, dev));
    DSK_TRY(dsk_op_on_device(fn, "topk_idx", a->topk_idx, dev));
    DSK_TRY(dsk_op_on_device(fn, "topk_w", a->topk_w, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->moe_route != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->moe_route) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->moe_route(rd, a);
}
