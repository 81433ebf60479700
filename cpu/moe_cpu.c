/* cpu/moe_cpu.c: MoE routing, permute and combine on the cpu backend.
 *
 *   route    tokens split over the thread pool; per token one pass computes the scores
 *            (f64, as the reference, so near-ties rank the same), one pass keeps each
 *            group's best two, and a single insertion pass keeps the top_k experts of the
 *            kept groups in order (O(E * top_k), no repeated scans)
 *   permute  segment sizes and the row of every (token, slot) on one thread (T * k
 *            integers), then the row copies split over the pool by token
 *   combine  tokens split over the pool; f32 weighted sums of the expert rows
 * One level (portable C): routing is arithmetic on a few hundred floats per token and
 * permute/combine are copies bounded by memory bandwidth. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/cpu_internal.h"
#include "cpu/ops_internal.h"

#define TOKENS_PER_TASK 8
#define MAX_E 1024

/* Ranks (x, ix) before (y, iy): larger value first, lower index on ties. */
static inline int before(double x, int64_t ix, double y, int64_t iy) { return x > y || (x == y && ix < iy); }

static void route_task(void *c, int64_t task, int worker)
{
    const dsk_moe_route_args *a = c;
    const dsk_moe_route_params *p = &a->p;
    const int64_t T = a->logits->shape[0], E = p->n_experts, G = p->n_group, gs = E / G;
    double s[MAX_E], b[MAX_E], gscore[MAX_E];
    unsigned char keep[MAX_E];
    int64_t top[64];
    for (int64_t t = task * TOKENS_PER_TASK; t < T && t < (task + 1) * TOKENS_PER_TASK; t++) {
        const float *lr = (const float *)a->logits->data + t * a->logits->stride[0];
        if (p->scoring == DSK_MOE_SOFTMAX) {
            double mx = -INFINITY, sum = 0;
            for (int64_t e = 0; e < E; e++) mx = lr[e] > mx ? lr[e] : mx;
            for (int64_t e = 0; e < E; e++) sum += (s[e] = exp(lr[e] - mx));
            for (int64_t e = 0; e < E; e++) s[e] /= sum;
        } else {
            for (int64_t e = 0; e < E; e++) s[e] = 1.0 / (1.0 + exp(-(double)lr[e]));
        }
        for (int64_t e = 0; e < E; e++)
            b[e] = s[e] + (a->bias ? (double)((const float *)a->bias->data)[e * a->bias->stride[0]] : 0.0);
        if (G > 1) {
            for (int64_t g = 0; g < G; g++) {   /* best two of each group in one pass */
                int64_t i1 = -1, i2 = -1;
                for (int64_t e = g * gs; e < (g + 1) * gs; e++) {
                    if (i1 < 0 || before(b[e], e, b[i1], i1)) {
                        i2 = i1;
                        i1 = e;
                    } else if (i2 < 0 || before(b[e], e, b[i2], i2)) {
                        i2 = e;
                    }
                }
                gscore[g] = b[i1] + (i2 >= 0 ? b[i2] : 0.0);
            }
            memset(keep, 0, (size_t)E);
            for (int64_t g = 0; g < G; g++) {   /* kept when fewer than topk_group groups rank before it */
                int rank = 0;
                for (int64_t h = 0; h < G; h++) rank += h != g && before(gscore[h], h, gscore[g], g);
                if (rank < p->topk_group) memset(keep + g * gs, 1, (size_t)gs);
            }
        } else {
            memset(keep, 1, (size_t)E);
        }
        int n = 0, k = p->top_k;
        for (int64_t e = 0; e < E; e++) {   /* insertion into the sorted top-k */
            if (!keep[e]) continue;
            if (n == k && !before(b[e], e, b[top[n - 1]], top[n - 1])) continue;
            int i = n < k ? n++ : k - 1;
            while (i > 0 && before(b[e], e, b[top[i - 1]], top[i - 1])) {
                top[i] = top[i - 1];
                i--;
            }
            top[i] = e;
        }
        double wsum = 0;
        for (int j = 0; j < k; j++) wsum += s[top[j]];
        for (int j = 0; j < k; j++) {
            ((int32_t *)a->topk_idx->data)[t * a->topk_idx->stride[0] + j * a->topk_idx->stride[1]] = (int32_t)top[j];
            double w = s[top[j]] / (p->norm_topk_prob ? wsum : 1.0) * p->routed_scaling_factor;
            dsk_store(a->topk_w, dsk_off2(a->topk_w, t, j), w);
        }
    }
}

dsk_status dsk_cpu_moe_route(dsk_device *dev, const dsk_moe_route_args *a)
{
    if (a->p.n_experts > MAX_E || a->p.top_k > 64 || a->logits->dtype != DSK_F32)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_moe_route (cpu): n_experts %d, top_k %d, logits %s; expected <= %d, <= 64, f32",
                        a->p.n_experts, a->p.top_k, dsk_dtype_name(a->logits->dtype), MAX_E);
    dsk_device_set_kernel(dev, "moe_route_cpu_c");
    int64_t T = a->logits->shape[0];
    dsk_threadpool_run(dsk_threadpool_default(), (T + TOKENS_PER_TASK - 1) / TOKENS_PER_TASK, route_task, (void *)a);
    return DSK_OK;
}

/* ---- permute ---- */
typedef struct perm_ctx { const dsk_moe_permute_args *a; } perm_ctx;

static void permute_task(void *c, int64_t task, int worker)
{
    const dsk_moe_permute_args *a = c;
    const int64_t T = a->x->shape[0], Hd = a->x->shape[1], k = a->topk_idx->shape[1];
    const size_t esz = dsk_dtype_size(a->x->dtype), rowb = (size_t)Hd * esz;
    for (int64_t t = task * TOKENS_PER_TASK; t < T && t < (task + 1) * TOKENS_PER_TASK; t++) {
        const char *src = (const char *)a->x->data + (size_t)(t * a->x->stride[0]) * esz;
        for (int64_t j = 0; j < k; j++) {
            int32_t r = ((const int32_t *)a->row_map->data)[t * a->row_map->stride[0] + j * a->row_map->stride[1]];
            if (r >= 0) memcpy((char *)a->x_perm->data + (size_t)(r * a->x_perm->stride[0]) * esz, src, rowb);
        }
    }
}

dsk_status dsk_cpu_moe_permute(dsk_device *dev, const dsk_moe_permute_args *a)
{
    const dsk_tensor *idx = a->topk_idx;
    const int64_t T = idx->shape[0], k = idx->shape[1], E = a->n_experts, P = a->x_perm->shape[0];
    int64_t *cur = calloc((size_t)E, sizeof *cur);
    if (!cur) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_moe_permute (cpu): %lld counters", (long long)E);
    const int32_t *ip = idx->data;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t e = ip[t * idx->stride[0] + j * idx->stride[1]];
            if (e >= 0) cur[e]++;
        }
    int32_t *off = a->expert_offsets->data, *mi = a->m_indices->data;
    const int64_t so = a->expert_offsets->stride[0], sm = a->m_indices->stride[0];
    int64_t row = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t n = cur[e], padded = (n + a->align - 1) / a->align * a->align;
        off[e * so] = (int32_t)row;
        for (int64_t r = 0; r < padded; r++) mi[(row + r) * sm] = r < n ? (int32_t)e : -1;
        cur[e] = row;
        row += padded;
    }
    off[E * so] = (int32_t)row;
    for (int64_t r = row; r < P; r++) mi[r * sm] = -1;
    int32_t *rm = a->row_map->data;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t e = ip[t * idx->stride[0] + j * idx->stride[1]];
            rm[t * a->row_map->stride[0] + j * a->row_map->stride[1]] = e >= 0 ? (int32_t)cur[e]++ : -1;
        }
    free(cur);
    dsk_device_set_kernel(dev, "moe_permute_cpu_c");
    dsk_threadpool_run(dsk_threadpool_default(), (T + TOKENS_PER_TASK - 1) / TOKENS_PER_TASK, permute_task, (void *)a);
    return DSK_OK;
}

/* ---- combine ---- */
static void combine_task(void *c, int64_t task, int worker)
{
    const dsk_moe_combine_args *a = c;
    const int64_t T = a->y->shape[0], Hd = a->y->shape[1], k = a->row_map->shape[1];
    const dsk_tensor *yp = a->y_perm;
    const int in_bf16 = yp->dtype == DSK_BF16, out_bf16 = a->y->dtype == DSK_BF16;
    float acc[1024];
    for (int64_t t = task * TOKENS_PER_TASK; t < T && t < (task + 1) * TOKENS_PER_TASK; t++) {
        for (int64_t c0 = 0; c0 < Hd; c0 += 1024) {
            const int64_t cn = Hd - c0 < 1024 ? Hd - c0 : 1024;
            for (int64_t i = 0; i < cn; i++) acc[i] = 0;
            for (int64_t j = 0; j < k; j++) {
                int32_t r = ((const int32_t *)a->row_map->data)[t * a->row_map->stride[0] + j * a->row_map->stride[1]];
                if (r < 0) continue;
                const float w = ((const float *)a->topk_w->data)[t * a->topk_w->stride[0] + j * a->topk_w->stride[1]];
                if (in_bf16) {
                    const uint16_t *src = (const uint16_t *)yp->data + r * yp->stride[0] + c0;
                    for (int64_t i = 0; i < cn; i++) acc[i] += w * dsk_cpu_bf16_f32(src[i]);
                } else {
                    const float *src = (const float *)yp->data + r * yp->stride[0] + c0;
                    for (int64_t i = 0; i < cn; i++) acc[i] += w * src[i];
                }
            }
            void *dst = (char *)a->y->data + (size_t)(t * a->y->stride[0] + c0) * dsk_dtype_size(a->y->dtype);
            for (int64_t i = 0; i < cn; i++) dsk_cpu_store_out(dst, i, out_bf16, acc[i]);
        }
    }
}

dsk_status dsk_cpu_moe_combine(dsk_device *dev, const dsk_moe_combine_args *a)
{
    dsk_device_set_kernel(dev, "moe_combine_cpu_c");
    int64_t T = a->y->shape[0];
    dsk_threadpool_run(dsk_threadpool_default(), (T + TOKENS_PER_TASK - 1) / TOKENS_PER_TASK, combine_task, (void *)a);
    return DSK_OK;
}
