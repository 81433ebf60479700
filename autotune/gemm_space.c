/* autotune/gemm_space.c: the candidate space of the FP8 GEMM for a (GPU, shape): every
 * configuration of the GPU's emitter arch that the emitter's own resource plan
 * (dsk_ptx_gemm_plan) calls legal, each predicted by the model and ranked best first,
 * with the explanation of the winner against the runner-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model_internal.h"

/* The grid the space is drawn from; the plan decides what is legal in it. Tile extents
 * block_m (along M) and block_n (along N) in steps of 8 up to 256, which covers
 * sm_90a's wgmma shapes (M 64 per consumer warpgroup, N 8..256 in steps of 8: PTX ISA
 * "Asynchronous Warpgroup Level Matrix Multiply-Accumulate", m64nNk32 for e4m3) on
 * either side (swap-AB), and sm_89's tiles of m16n8k32 mma.sync fragments (PTX ISA
 * "Matrix Fragments for mma.m16n8k32"). */
#define GRID_STEP 8
#define GRID_MAX 256
#define MAX_STAGES_90 32
#define MAX_STAGES_89 16

static int tile_cmp(const void *pa, const void *pb)
{
    const dsk_tune_candidate *a = pa, *b = pb;
    if (a->pred.us != b->pred.us) return a->pred.us < b->pred.us ? -1 : 1;
    /* Ties: the most latency headroom (bytes in flight), the smaller footprint, the
     * simpler kernel, then the name (a total order: deterministic). */
    if (a->pred.t_latency != b->pred.t_latency) return a->pred.t_latency < b->pred.t_latency ? -1 : 1;
    if (a->plan.smem_bytes != b->plan.smem_bytes) return a->plan.smem_bytes < b->plan.smem_bytes ? -1 : 1;
    if (a->tile.cluster != b->tile.cluster) return a->tile.cluster - b->tile.cluster;
    if (a->tile.persistent != b->tile.persistent) return a->tile.persistent - b->tile.persistent;
    if (a->tile.tma_store != b->tile.tma_store) return a->tile.tma_store - b->tile.tma_store;
    return strcmp(a->kernel, b->kernel);
}

static int same_shape(const dsk_gemm_tile *a, const dsk_gemm_tile *b)
{
    return a->block_m == b->block_m && a->block_n == b->block_n && a->swap_ab == b->swap_ab;
}

static void tile_str(const dsk_gemm_tile *t, char *buf, size_t len)
{
    snprintf(buf, len, "%dx%d%s", t->block_m, t->block_n, t->swap_ab ? " swap-AB" : "");
}

/* One sentence on why the runner-up loses: the component that grew the most. */
static void explain(const dsk_gpu *g, dsk_tune_result *r)
{
    const dsk_tune_candidate *b = &r->cand[0];
    const dsk_gemm_prediction *p = &b->pred;
    char tb[48];
    tile_str(&b->tile, tb, sizeof tb);
    size_t o = 0;
    char *e = r->explain;
    size_t cap = sizeof r->explain;
    switch (p->bound) {
    case DSK_BOUND_COMPUTE:
        o += snprintf(e + o, cap - o, "%s is compute-bound: tensor %.1f us on the busiest SM (%lld tiles "
                      "on %d SMs: %.0f%% of tile slots busy, %.0f%% of MACs useful)",
                      tb, p->t_tensor, p->tiles, (int)g->sms.v, 100 * p->wave_eff, 100 * p->pad_eff);
        break;
    case DSK_BOUND_MEMORY:
        o += snprintf(e + o, cap - o, "%s is memory-bound: %.1f MB from DRAM take %.1f us at %.0f%% of "
                      "%.0f GB/s (tensor %.1f us)", tb, p->dram_bytes / 1e6, p->t_memory,
                      100 * g->cal_mem.v, g->mem_gbps.v, p->t_tensor);
        break;
    case DSK_BOUND_LATENCY:
        o += snprintf(e + o, cap - o, "%s is latency-bound: %d stage(s) in flight per CTA cannot cover "
                      "DRAM latency (%.1f us vs memory %.1f us)", tb, b->tile.stages, p->t_latency,
                      p->t_memory);
        break;
    case DSK_BOUND_L2:
        o += snprintf(e + o, cap - o, "%s is L2-bound: %.1f us to move its operand tiles from L2 into the busiest "
                      "SM (assumed rate; tensor %.1f us)%s", tb, p->t_l2, p->t_tensor,
                      b->tile.cluster == 2 ? ", half of A multicast by the cluster partner" : "");
        break;
    case DSK_BOUND_OVERHEAD:
        o += snprintf(e + o, cap - o, "%s is overhead-bound: fill/drain %.1f us + launch %.1f us exceed "
                      "tensor %.1f us and memory %.1f us", tb, p->t_fill, p->t_launch, p->t_tensor,
                      p->t_memory);
        break;
    }
    if (r->runner_up < 0) {
        snprintf(e + o, cap - o, "; it is the only legal tile shape");
        return;
    }
    const dsk_tune_candidate *q = &r->cand[r->runner_up];
    const dsk_gemm_prediction *u = &q->pred;
    char qb[48];
    tile_str(&q->tile, qb, sizeof qb);
    struct { const char *what; double d; } c[] = {
        {"tensor time (wave quantization / padding)", u->t_tensor - p->t_tensor},
        {"exposed FP32 promotion", u->t_promote - p->t_promote},
        {"DRAM traffic (A/B re-reads)", u->t_memory - p->t_memory},
        {"bytes in flight (latency)", u->t_latency - p->t_latency},
        {"pipeline fill/drain", u->t_fill - p->t_fill},
        {"L2 -> SM operand traffic", u->t_l2 - p->t_l2},
    };
    int w = 0;
    for (int i = 1; i < 6; i++)
        if (c[i].d > c[w].d) w = i;
    o += snprintf(e + o, cap - o, "; margin %.1f%% over the runner-up %s", 100 * r->margin, qb);
    if (r->margin < g->band.v)
        o += snprintf(e + o, cap - o, " (inside the +-%.0f%% band: measure to decide)", 100 * g->band.v);
    if (c[w].d > 0)
        snprintf(e + o, cap - o, ", which loses most on %s (+%.2f us)", c[w].what, c[w].d);
}

static dsk_status add(dsk_tune_result *r, int *cap, const dsk_tune_candidate *c)
{
    if (r->n == *cap) {
        int nc = *cap ? 2 * *cap : 1024;
        dsk_tune_candidate *nv = realloc(r->cand, sizeof *nv * nc);
        if (!nv) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_tune_gemm: out of memory");
        r->cand = nv;
        *cap = nc;
    }
    r->cand[r->n++] = *c;
    return DSK_OK;
}

dsk_status dsk_tune_gemm(const dsk_gpu *g, const dsk_tune_gemm_shape *s, dsk_tune_result *out)
{
    if (!g || !out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_gemm: g and out must not be NULL");
    memset(out, 0, sizeof *out);
    out->runner_up = -1;
    DSK_TRY(dsk_tune_check_shape("dsk_tune_gemm", s));
    dsk_arch arch;
    DSK_TRY(dsk_gpu_ptx_arch(g, &arch));
    snprintf(out->gpu, sizeof out->gpu, "%s", g->name);
    out->shape = *s;

    size_t smem_limit = (size_t)(g->smem_block_kb.v * 1024);
    int max_stages = arch == DSK_ARCH_SM90A ? MAX_STAGES_90 : MAX_STAGES_89;
    int max_cluster = arch == DSK_ARCH_SM90A ? 2 : 1;
    /* TMA store of D (sm_90a): D's rows must be multiples of 16 bytes (bf16: N % 8 == 0)
     * for its tensor map */
    int max_tma = arch == DSK_ARCH_SM90A && s->n % 8 == 0 ? 1 : 0;
    dsk_traffic_memo *memo = calloc(1, sizeof *memo);
    if (!memo) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_tune_gemm: out of memory");
    int cap = 0;
    dsk_status st = DSK_OK;
    for (int swap = 0; swap <= 1 && !st; swap++)
        for (int bm = GRID_STEP; bm <= GRID_MAX && !st; bm += GRID_STEP)
            for (int bn = GRID_STEP; bn <= GRID_MAX && !st; bn += GRID_STEP)
                for (int cl = 1; cl <= max_cluster && !st; cl++)
                    for (int pers = 0; pers <= 1 && !st; pers++)
                      for (int tma = 0; tma <= max_tma && !st; tma++)
                        for (int stg = 1; stg <= max_stages && !st; stg++) {
                            dsk_tune_candidate c;
                            memset(&c, 0, sizeof c);
                            c.tile.arch = arch;
                            c.tile.block_m = bm;
                            c.tile.block_n = bn;
                            c.tile.block_k = DSK_FP8_BLOCK;
                            c.tile.stages = stg;
                            c.tile.cluster = cl;
                            c.tile.persistent = pers;
                            c.tile.tma_store = tma;
                            c.tile.swap_ab = swap;
                            c.tile.layout = s->layout;
                            out->enumerated++;
                            st = dsk_ptx_gemm_plan(&c.tile, smem_limit, &c.plan);
                            if (st) break;
                            if (!c.plan.legal) break;  /* more stages only add shared memory */
                            st = dsk_tune_predict_memo(g, s, &c.tile, &c.plan, memo, &c.pred);
                            if (st) break;
                            dsk_gemm_tile_name(&c.tile, c.kernel, sizeof c.kernel);
                            st = add(out, &cap, &c);
                        }
    free(memo);
    if (st) {
        dsk_tune_result_free(out);
        return dsk_fail_prefix(st, "dsk_tune_gemm (%s)", g->name);
    }
    if (out->n == 0) {
        dsk_tune_result_free(out);
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_tune_gemm: no legal %s configuration among %d for %s",
                        g->arch, out->enumerated, g->name);
    }
    qsort(out->cand, out->n, sizeof *out->cand, tile_cmp);
    for (int i = 1; i < out->n; i++)
        if (!same_shape(&out->cand[i].tile, &out->cand[0].tile)) {
            out->runner_up = i;
            out->margin = out->cand[i].pred.us / out->cand[0].pred.us - 1;
            break;
        }
    explain(g, out);
    return DSK_OK;
}

void dsk_tune_result_free(dsk_tune_result *r)
{
    if (!r) return;
    free(r->cand);
    r->cand = NULL;
    r->n = 0;
}
