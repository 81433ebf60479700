/* autotune/gemm_model.c: the analytic time model of one FP8 block-scaled GEMM tile
 * configuration on one GPU (docs/MODEL.md has the assumptions and their sources).
 *
 *   time = max(tensor + exposed promotion, DRAM traffic, per-SM latency bound, L2 -> SM)
 *          + exposed pipeline fill/drain + launch
 *
 * - tensor: the busiest SM's tiles (ceil(tiles / SMs): wave quantization) x the tile's
 *   MACs (padding included) at the GPU's FP8 rate times a calibrated fraction;
 * - promotion: DeepGEMM-style FP32 promotion every 128 of K costs one CUDA-core FMA per
 *   accumulator element; the part other consumer warpgroups cannot hide is exposed;
 * - DRAM: A and B strips as the raster order touches them, through an LRU model of the
 *   usable L2 at the granularity of one tile's K-strip, + scales + the bf16 output;
 * - L2 -> SM: each tile's operand strips at an assumed per-SM rate; TMA multicast (cluster
 *   of 2) halves A's share;
 * - latency: each CTA keeps `stages` buffers in flight; by Little's law an SM consumes
 *   at most CTAs x stages k-blocks per (DRAM latency + one k-block's MMA time);
 * - fill/drain: the first stage's latency, the accumulator conversion and the stores'
 *   drain per round of resident CTAs (non-persistent), or once (persistent); the
 *   epilogue's issue is cheaper with the TMA store (st.shared instead of predicated
 *   global stores).
 * The calibrated fraction is backed out so that the model reproduces the GPU's measured
 * large-GEMM fraction (cal_gemm_fp8) at the reference tile (128x128, two consumer
 * warpgroups): tensor and promotion together then equal the measurement there. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "model_internal.h"

/* DeepGEMM's swizzled raster: tiles walk N inside groups of this many tile-rows of M. */
#define RASTER_GROUP 16
/* [A] L2 -> SM read bandwidth per SM and clock (operand tiles through TMA). No sourced
 * figure: an assumption of the model (docs/MODEL.md), chosen so that the reference tile
 * (128x128) stays tensor-bound on H800 while 64x64-class tiles are not. */
#define L2_SM_BYTES_PER_CLK 64.0
/* Tiles simulated for the L2 model; more are extrapolated linearly. */
#define SIM_MAX_TILES 16384

const char *dsk_tune_bound_name(dsk_tune_bound b)
{
    switch (b) {
    case DSK_BOUND_COMPUTE: return "compute";
    case DSK_BOUND_MEMORY: return "memory";
    case DSK_BOUND_LATENCY: return "latency";
    case DSK_BOUND_OVERHEAD: return "overhead";
    case DSK_BOUND_L2: return "l2";
    }
    return "?";
}

dsk_status dsk_tune_check_shape(const char *fn, const dsk_tune_gemm_shape *s)
{
    if (!s) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: shape is NULL", fn);
    if (s->m < 1 || s->n < 1 || s->k < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: shape M,N,K = %lld,%lld,%lld: each must be >= 1",
                        fn, s->m, s->n, s->k);
    if (s->m > (1LL << 31) || s->n > (1LL << 31) || s->k > (1LL << 31))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: shape M,N,K = %lld,%lld,%lld: each must be <= 2^31",
                        fn, s->m, s->n, s->k);
    if (s->k % DSK_FP8_BLOCK)
        return dsk_fail(DSK_ERR_UNSUPPORTED,
                        "%s: K = %lld is not a multiple of 128: the GPU GEMM kernels consume whole "
                        "128-wide scale blocks of K (the CPU backend takes any K)", fn, s->k);
    if (s->layout != DSK_GEMM_DENSE && s->layout != DSK_GEMM_CONTIGUOUS && s->layout != DSK_GEMM_MASKED)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: layout %d is not a dsk_gemm_layout", fn, (int)s->layout);
    if (s->groups < 1 || (s->layout == DSK_GEMM_DENSE && s->groups != 1))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: groups = %d: expected 1 for dense, >= 1 for grouped",
                        fn, s->groups);
    return DSK_OK;
}

double dsk_roofline_us(const dsk_gpu *g, double flops, double bytes, double peak_tflops,
                       double frac, dsk_tune_bound *bound)
{
    double tc = flops / (peak_tflops * 1e12 * frac) * 1e6;
    double tm = bytes / (g->mem_gbps.v * 1e9 * g->cal_mem.v) * 1e6;
    if (bound) *bound = tc >= tm ? DSK_BOUND_COMPUTE : DSK_BOUND_MEMORY;
    return (tc > tm ? tc : tm) + g->launch_us.v;
}

/* Fraction of the promotion's CUDA-core time that other consumers cannot hide. */
static double promo_exposure(const dsk_gemm_tile *t, const dsk_gemm_plan *p)
{
    if (t->arch == DSK_ARCH_SM90A) {
        int wg = p->consumer_warpgroups > 0 ? p->consumer_warpgroups : 1;
        return 1.0 / wg;
    }
    /* sm_89: the four SM sub-partitions overlap one warp's FMAs with other warps' MMAs. */
    int warps = p->threads / 32;
    return warps > 4 ? 4.0 / warps : 1.0;
}

/* The tensor-core fraction that makes the reference tile reproduce cal_gemm_fp8. */
static double tensor_fraction(const dsk_gpu *g)
{
    double cal = g->fp8_tflops.v > 0 ? g->cal_gemm_fp8.v : g->cal_gemm_bf16.v;
    double rel = dsk_gpu_fp8_flop_per_clk_sm(g) / (512.0 * dsk_gpu_fp32_fma_per_clk_sm(g));
    double inv = 1.0 / cal - rel;
    double f = inv > 0 ? 1.0 / inv : 0.98;
    return f < 0.98 ? f : 0.98;
}

/* DRAM bytes of A and B strips (+ their scales) over the raster, LRU over usable L2.
 * Strips are list nodes 0..tm-1 (A) and tm..tm+tn-1 (B) of a doubly linked LRU list
 * (head = least recently used). The first SIM_MAX_TILES tiles in raster order are
 * simulated and the misses scaled to all tiles (past the first waves the per-tile
 * traffic is periodic). */
static double simulate_traffic(const dsk_gpu *g, long long tm, long long tn, double a_strip,
                               double b_strip, long long wave)
{
    const long long tiles = tm * tn, sim = tiles < SIM_MAX_TILES ? tiles : SIM_MAX_TILES;
    const double cap = g->l2_mb.v * 1048576.0 * g->l2_usable.v;
    const long long ns = tm + tn, NIL = -1;
    long long *mem = malloc(sizeof *mem * 3 * ns);
    char *res = calloc(ns, 1);
    if (!mem || !res) {
        free(mem);
        free(res);
        return (double)tiles * (a_strip + b_strip);  /* no reuse: an upper bound */
    }
    long long *last = mem, *prev = mem + ns, *next = mem + 2 * ns, head = NIL, tail = NIL;
    for (long long i = 0; i < ns; i++) last[i] = prev[i] = next[i] = NIL;
    double resident = 0, miss = 0;
    for (long long c0 = 0, chunk = 0; c0 < sim; c0 += wave, chunk++) {
        long long c1 = c0 + wave < sim ? c0 + wave : sim;
        for (long long i = c0; i < c1; i++) {
            long long grp = i / (RASTER_GROUP * tn);
            long long rows = tm - grp * RASTER_GROUP;
            if (rows > RASTER_GROUP) rows = RASTER_GROUP;
            long long local = i - grp * RASTER_GROUP * tn;
            long long ids[2] = {grp * RASTER_GROUP + local % rows, tm + local / rows};
            for (int j = 0; j < 2; j++) {
                long long x = ids[j];
                if (last[x] == chunk) continue;
                if (res[x]) {  /* unlink, to move to the tail */
                    if (prev[x] != NIL) next[prev[x]] = next[x]; else head = next[x];
                    if (next[x] != NIL) prev[next[x]] = prev[x]; else tail = prev[x];
                } else {
                    double sz = j == 0 ? a_strip : b_strip;
                    miss += sz;
                    resident += sz;
                    res[x] = 1;
                }
                prev[x] = tail;
                next[x] = NIL;
                if (tail != NIL) next[tail] = x; else head = x;
                tail = x;
                last[x] = chunk;
            }
        }
        /* Evict least recently used strips beyond the usable L2 (not the current wave's);
         * a wave larger than L2 streams and keeps nothing for the next one. */
        while (resident > cap && head != NIL) {
            long long v = head;
            if (last[v] == chunk) {
                for (long long x = 0; x < ns; x++) res[x] = 0, prev[x] = next[x] = NIL;
                head = tail = NIL;
                resident = 0;
                break;
            }
            head = next[v];
            if (head != NIL) prev[head] = NIL; else tail = NIL;
            res[v] = 0;
            resident -= v < tm ? a_strip : b_strip;
        }
    }
    free(mem);
    free(res);
    return miss * (double)tiles / (double)sim;
}

static double traffic(const dsk_gpu *g, dsk_traffic_memo *memo, long long tm, long long tn, int em,
                      int en, double a_strip, double b_strip, long long wave)
{
    if (memo)
        for (int i = 0; i < memo->n; i++)
            if (memo->e[i].em == em && memo->e[i].en == en && memo->e[i].wave == wave &&
                memo->e[i].tn == tn)
                return memo->e[i].bytes;
    double b = simulate_traffic(g, tm, tn, a_strip, b_strip, wave);
    if (memo && memo->n < (int)(sizeof memo->e / sizeof memo->e[0])) {
        memo->e[memo->n].em = em;
        memo->e[memo->n].en = en;
        memo->e[memo->n].wave = wave;
        memo->e[memo->n].tn = tn;
        memo->e[memo->n].bytes = b;
        memo->n++;
    }
    return b;
}

dsk_status dsk_tune_predict_memo(const dsk_gpu *g, const dsk_tune_gemm_shape *s,
                                 const dsk_gemm_tile *t, const dsk_gemm_plan *plan,
                                 dsk_traffic_memo *memo, dsk_gemm_prediction *out)
{
    const char *fn = "dsk_tune_gemm_predict";
    if (!g || !t || !plan || !out) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: NULL argument", fn);
    DSK_TRY(dsk_tune_check_shape(fn, s));
    if (!plan->legal)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: the configuration is not legal: %s", fn, plan->reason);
    if (t->block_m < 1 || t->block_n < 1 || t->stages < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: tile %dx%d with %d stages: each must be >= 1", fn,
                        t->block_m, t->block_n, t->stages);
    memset(out, 0, sizeof *out);

    const double sms = g->sms.v, clk = g->clock_mhz.v * 1e6;
    const double bw = g->mem_gbps.v * 1e9 * g->cal_mem.v;       /* bytes/s */
    const double lat = g->mem_latency_ns.v * 1e-9;
    const double tc_rate = dsk_gpu_fp8_flop_per_clk_sm(g) * tensor_fraction(g);
    const double fma_rate = dsk_gpu_fp32_fma_per_clk_sm(g);

    /* Extents of one tile along M (tokens) and N (weights). swap-AB keeps them and only
     * changes which of the two the MMA sees as its M side (plan.mma_m). */
    const int em = t->block_m, en = t->block_n;
    const long long k = s->k, kb = k / DSK_FP8_BLOCK;
    const long long groups = s->groups;
    long long rows = s->layout == DSK_GEMM_CONTIGUOUS ? (s->m + groups - 1) / groups : s->m;
    long long tm = (rows + em - 1) / em, tn = (s->n + en - 1) / en;
    /* A cluster of 2 pairs neighbouring N tiles for TMA multicast of A: an odd count of N
     * tiles leaves a partner CTA that computes a tile nobody stores. */
    if (t->cluster > 1 && tn % t->cluster)
        tn = (tn + t->cluster - 1) / t->cluster * t->cluster;
    const long long tiles = groups * tm * tn;

    /* Residency: CTAs per SM by shared memory, threads and registers. */
    int c = (int)((g->smem_sm_kb.v * 1024) / (double)(plan->smem_bytes > 0 ? plan->smem_bytes : 1));
    int by_threads = (int)(g->threads_sm.v / (plan->threads > 0 ? plan->threads : 1));
    /* Registers: two consumer warpgroups redistribute with setmaxnreg, which needs the
     * declared cap for every thread; otherwise what the threads use (allocated in 8s). */
    int regs = plan->consumer_warpgroups == 2 ? plan->max_regs : (plan->regs_per_thread + 7) / 8 * 8;
    int by_regs = regs > 0 ? (int)(g->regs_sm.v / ((double)regs * plan->threads)) : c;
    if (by_threads < c) c = by_threads;
    if (by_regs < c) c = by_regs;
    if (g->blocks_sm.v < c) c = (int)g->blocks_sm.v;
    if (c < 1) c = 1;
    if (t->persistent) c = 1;  /* one persistent CTA per SM walks the tile list */
    out->ctas_per_sm = c;

    const long long per_sm = (tiles + (long long)sms - 1) / (long long)sms;  /* busiest SM */
    out->tiles = tiles;
    out->waves = tiles / (sms * c);
    out->wave_eff = tiles / (sms * per_sm);
    out->flops = 2.0 * (double)s->m * s->n * k * (s->layout == DSK_GEMM_MASKED ? groups : 1);
    out->pad_eff = out->flops / (2.0 * tiles * em * en * k);

    /* Tensor and promotion, per tile, in seconds. */
    double mma_tile = 2.0 * em * en * k / tc_rate / clk;
    double promo_tile = (double)kb * em * en / fma_rate / clk * promo_exposure(t, plan);
    out->t_tensor = per_sm * mma_tile * 1e6;
    out->t_promote = per_sm * promo_tile * 1e6;

    /* DRAM traffic: strips of A and B with their scales, reuse through L2; scales are
     * f32, one per row (A) or per 128 rows (B) per 128 of K; output bf16. */
    double a_strip = (double)em * k + (double)em * kb * 4;
    double b_strip = (double)en * k + ceil(en / 128.0) * kb * 4;
    long long wave = (long long)sms * c;
    double ab = groups * traffic(g, memo, tm, tn, em, en, a_strip, b_strip, wave);
    double out_bytes = 2.0 * (double)s->m * s->n * (s->layout == DSK_GEMM_MASKED ? groups : 1);
    out->dram_bytes = ab + out_bytes;
    out->t_memory = out->dram_bytes / bw * 1e6;

    /* L2 -> SM: every tile's A and B strips (+ scales) enter its SM once; in a cluster of
     * 2 each CTA fetches half of A and receives the other half from its partner's
     * multicast, so A's share is halved. */
    double l2_tile = a_strip / t->cluster + b_strip;
    out->t_l2 = (double)per_sm * l2_tile / (L2_SM_BYTES_PER_CLK * clk) * 1e6;

    /* Latency (Little's law): the SM's resident CTAs keep active x stages buffers in
     * flight; a buffer's cycle is one DRAM latency plus its consumption by the MMAs, so
     * the SM consumes at most active x stages k-blocks per (latency + MMA time). */
    int active = per_sm < c ? (int)per_sm : c;
    double mma_kb = mma_tile / kb;
    out->t_latency = (double)per_sm * kb * (lat + mma_kb) / ((double)active * t->stages) * 1e6;

    /* Fill and drain: a CTA waits one latency for its first stage, converts its
     * accumulators to bf16 and waits one latency for its stores to drain. Resident CTAs
     * overlap each other's, so the busiest SM pays one per round of CTAs; a persistent
     * CTA pays the latencies once (its producer prefetches the next tile during the
     * epilogue) and the conversion per tile. */
    /* The epilogue's issue per tile: one FP32-pipe slot per output element for the bf16
     * conversion and its predicated global store; the TMA store halves it (unpredicated
     * st.shared without per-element address arithmetic; the bulk store itself is issued
     * by one thread and clipped by the copy engine). An assumption, not a calibration. */
    double epi_math = (double)em * en / fma_rate / clk * (t->tma_store ? 0.5 : 1.0);
    if (t->persistent)
        out->t_fill = (2 * lat + per_sm * epi_math) * 1e6;
    else
        out->t_fill = (double)((per_sm + c - 1) / c) * (2 * lat + epi_math) * 1e6;
    out->t_launch = g->launch_us.v;

    double compute = out->t_tensor + out->t_promote;
    double main = compute;
    out->bound = DSK_BOUND_COMPUTE;
    if (out->t_memory > main) {
        main = out->t_memory;
        out->bound = DSK_BOUND_MEMORY;
    }
    if (out->t_latency > main) {
        main = out->t_latency;
        out->bound = DSK_BOUND_LATENCY;
    }
    if (out->t_l2 > main) {
        main = out->t_l2;
        out->bound = DSK_BOUND_L2;
    }
    if (out->t_fill + out->t_launch > main) out->bound = DSK_BOUND_OVERHEAD;
    out->us = main + out->t_fill + out->t_launch;
    out->us_lo = out->us * (1 - g->band.v);
    out->us_hi = out->us * (1 + g->band.v);
    out->tflops = out->flops / out->us * 1e-6;
    out->gbps = out->dram_bytes / out->us * 1e-3;
    return DSK_OK;
}

dsk_status dsk_tune_gemm_predict(const dsk_gpu *g, const dsk_tune_gemm_shape *s,
                                 const dsk_gemm_tile *t, const dsk_gemm_plan *plan,
                                 dsk_gemm_prediction *out)
{
    return dsk_tune_predict_memo(g, s, t, plan, NULL, out);
}
