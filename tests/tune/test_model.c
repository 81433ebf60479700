/* tests/tune/test_model.c: the GEMM performance model and the candidate space: each term
 * of the breakdown responds to what it models (wave quantization, L2 reuse, stages,
 * calibration), the ranking is sorted and deterministic, GPUs with different hardware
 * choose differently, and bad shapes fail with their reason. */
#include <math.h>
#include <string.h>
#include "tests/harness/harness.h"

static const dsk_gpu *gpu(const char *n)
{
    const dsk_gpu *g = NULL;
    dsk_gpu_find(n, &g);
    return g;
}

static dsk_gemm_prediction predict(const dsk_gpu *g, long long m, long long n, long long k, int bm, int bn, int stages)
{
    dsk_gemm_tile t = dsk_gemm_tile_default(DSK_ARCH_SM90A, bm, bn);
    t.stages = stages;
    dsk_gemm_plan p;
    dsk_gemm_prediction r;
    memset(&r, 0, sizeof r);
    dsk_tune_gemm_shape s = {m, n, k, 1, DSK_GEMM_DENSE};
    if (dsk_ptx_gemm_plan(&t, 0, &p) != DSK_OK || !p.legal) {
        DSK_T_CHECK(0, "plan %dx%d s%d: %s", bm, bn, stages, p.reason);
        return r;
    }
    DSK_T_OK(dsk_tune_gemm_predict(g, &s, &t, &p, &r));
    return r;
}

static void check_terms(void)
{
    const dsk_gpu *h800 = gpu("h800");
    /* Wave quantization: 132 tiles of 128x128 fill the 132 SMs once; 133 tiles need a
     * second tile on one SM, doubling the busiest SM's tensor time. */
    dsk_gemm_prediction a = predict(h800, 128, 128 * 132, 7168, 128, 128, 4);
    dsk_gemm_prediction b = predict(h800, 128, 128 * 133, 7168, 128, 128, 4);
    DSK_T_CHECK(a.tiles == 132 && b.tiles == 133, "tiles %lld, %lld", a.tiles, b.tiles);
    DSK_T_CHECK(fabs(b.t_tensor / a.t_tensor - 2.0) < 1e-9, "one extra tile doubles tensor time: %.3f vs %.3f",
                b.t_tensor, a.t_tensor);
    DSK_T_CHECK(a.wave_eff == 1.0 && fabs(b.wave_eff - 133.0 / 264) < 1e-12, "wave efficiency %.3f %.3f",
                a.wave_eff, b.wave_eff);

    /* Calibration: a large square GEMM at the reference tile reaches the GPU's measured
     * fraction of peak (gpu_specs Table 5: 78% on H800) in its tensor + promotion time. */
    dsk_gemm_prediction c = predict(h800, 128 * 132, 128 * 64, 8192, 128, 128, 6);
    double frac = c.flops / ((c.t_tensor + c.t_promote) * 1e-6) / (h800->fp8_tflops.v * 1e12);
    DSK_T_CHECK(fabs(frac - h800->cal_gemm_fp8.v) < 0.01, "reference tile reproduces the calibration: %.3f vs %.3f",
                frac, h800->cal_gemm_fp8.v);
    DSK_T_CHECK(c.bound == DSK_BOUND_COMPUTE, "large square GEMM compute-bound, got %s", dsk_tune_bound_name(c.bound));
    DSK_T_CHECK(c.us > c.t_tensor + c.t_promote, "total includes fill and launch");

    /* DRAM traffic: at least A + B + D once; a decode-sized GEMM streams B once and is
     * memory-bound (H800's FP8 ridge is ~590 FLOP/B; M = 16 gives ~32). */
    dsk_gemm_prediction d = predict(h800, 16, 7168, 2048, 64, 128, 8);
    double compulsory = 16.0 * 2048 + 7168.0 * 2048 + 2.0 * 16 * 7168;
    DSK_T_CHECK(d.dram_bytes >= compulsory && d.dram_bytes < 1.1 * compulsory, "decode traffic %.0f vs compulsory %.0f",
                d.dram_bytes, compulsory);
    DSK_T_CHECK(d.bound == DSK_BOUND_MEMORY, "M=16 GEMM memory-bound, got %s", dsk_tune_bound_name(d.bound));
    DSK_T_CHECK(fabs(d.t_memory - d.dram_bytes / (h800->mem_gbps.v * 1e3 * h800->cal_mem.v)) < 1e-9,
                "memory time = bytes / calibrated bandwidth");

    /* L2 reuse: a GEMM whose operands fit in L2 reads each once; a huge one re-reads. */
    dsk_gemm_prediction e = predict(h800, 16384, 16384, 7168, 128, 128, 6);
    double ab = 16384.0 * 7168 * 2;
    DSK_T_CHECK(e.dram_bytes - 2.0 * 16384 * 16384 > 1.5 * ab, "operands beyond L2 are re-read: %.3g vs %.3g",
                e.dram_bytes - 2.0 * 16384 * 16384, ab);
    dsk_gemm_prediction f = predict(h800, 2048, 2048, 2048, 128, 128, 6);
    double ab2 = 2048.0 * 2048 * 2;
    DSK_T_CHECK(f.dram_bytes - 2.0 * 2048 * 2048 < 1.05 * ab2, "operands within L2 read once: %.3g vs %.3g",
                f.dram_bytes - 2.0 * 2048 * 2048, ab2);

    /* Pipeline depth: more stages never lengthen the latency term; one stage is latency-bound
     * where the compute would otherwise bound. */
    double prev = 1e300;
    for (int st = 1; st <= 6; st++) {  /* 6 stages of 128x128 fill 227 KiB */
        dsk_gemm_prediction p = predict(h800, 4096, 4096, 4096, 128, 128, st);
        DSK_T_CHECK(p.t_latency <= prev, "stages %d latency %.2f <= %.2f", st, p.t_latency, prev);
        prev = p.t_latency;
        if (st == 1) DSK_T_CHECK(p.bound == DSK_BOUND_LATENCY, "1 stage latency-bound, got %s", dsk_tune_bound_name(p.bound));
    }
    /* The band. */
    DSK_T_CHECK(fabs(d.us_lo - d.us * (1 - h800->band.v)) < 1e-9 && fabs(d.us_hi - d.us * (1 + h800->band.v)) < 1e-9,
                "band = us x (1 -+ band)");
}

static void check_ranking(void)
{
    /* DeepSeek-V3 q_b_proj at decode batch 128: N = 24576, K = 1536. */
    dsk_tune_gemm_shape s = {128, 7168, 2048, 1, DSK_GEMM_DENSE};
    dsk_tune_result r8, r20, r4, again;
    DSK_T_OK(dsk_tune_gemm(gpu("h800"), &s, &r8));
    DSK_T_OK(dsk_tune_gemm(gpu("h20"), &s, &r20));
    DSK_T_OK(dsk_tune_gemm(gpu("4090"), &s, &r4));
    DSK_T_OK(dsk_tune_gemm(gpu("h800"), &s, &again));
    DSK_T_CHECK(r8.n > 100 && r8.n < r8.enumerated, "legal %d of %d", r8.n, r8.enumerated);
    for (int i = 1; i < r8.n; i++)
        if (r8.cand[i].pred.us < r8.cand[i - 1].pred.us) {
            DSK_T_CHECK(0, "ranking not sorted at %d", i);
            break;
        }
    int same = again.n == r8.n;
    for (int i = 0; same && i < r8.n; i++) same = !strcmp(again.cand[i].kernel, r8.cand[i].kernel);
    DSK_T_CHECK(same, "ranking deterministic");
    for (int i = 0; i < r8.n; i++) {
        dsk_gemm_plan p;
        dsk_ptx_gemm_plan(&r8.cand[i].tile, 227 * 1024, &p);
        if (!p.legal) {
            DSK_T_CHECK(0, "candidate %s illegal: %s", r8.cand[i].kernel, p.reason);
            break;
        }
    }
    /* Different hardware, different choice, each with its reason. */
    DSK_T_CHECK(strcmp(r8.cand[0].kernel, r20.cand[0].kernel), "H800 and H20 choose differently: %s vs %s",
                r8.cand[0].kernel, r20.cand[0].kernel);
    DSK_T_CHECK(!strncmp(r4.cand[0].kernel, "gemm_fp8_sm89_", 14), "4090 gets an sm_89 kernel: %s", r4.cand[0].kernel);
    DSK_T_CHECK(r8.cand[0].pred.bound == DSK_BOUND_MEMORY && r20.cand[0].pred.bound == DSK_BOUND_COMPUTE,
                "M=128: memory-bound on H800 (ridge ~590), compute-bound on H20 (ridge ~74): %s, %s",
                dsk_tune_bound_name(r8.cand[0].pred.bound), dsk_tune_bound_name(r20.cand[0].pred.bound));
    DSK_T_CHECK(r8.runner_up > 0 && r8.margin >= 0, "runner-up %d margin %.3f", r8.runner_up, r8.margin);
    const dsk_gemm_tile *a = &r8.cand[0].tile, *b = &r8.cand[r8.runner_up].tile;
    DSK_T_CHECK(a->block_m != b->block_m || a->block_n != b->block_n || a->swap_ab != b->swap_ab,
                "runner-up has another tile shape");
    DSK_T_CHECK(strstr(r8.explain, "memory-bound") && strstr(r8.explain, "runner-up"), "explanation: %s", r8.explain);
    dsk_tune_result_free(&r8);
    dsk_tune_result_free(&r20);
    dsk_tune_result_free(&r4);
    dsk_tune_result_free(&again);
}

static void check_bad_input(void)
{
    dsk_tune_result r;
    dsk_tune_gemm_shape s = {128, 7168, 2000, 1, DSK_GEMM_DENSE};
    DSK_T_ERR(dsk_tune_gemm(gpu("h800"), &s, &r), DSK_ERR_UNSUPPORTED, "K = 2000 is not a multiple of 128");
    s.k = 2048;
    s.m = 0;
    DSK_T_ERR(dsk_tune_gemm(gpu("h800"), &s, &r), DSK_ERR_INVALID_ARG, "each must be >= 1");
    s.m = 16;
    s.groups = 4;
    DSK_T_ERR(dsk_tune_gemm(gpu("h800"), &s, &r), DSK_ERR_INVALID_ARG, "expected 1 for dense");
    s.groups = 1;
    DSK_T_ERR(dsk_tune_gemm(gpu("mi300x"), &s, &r), DSK_ERR_UNSUPPORTED, "HIP");
    DSK_T_ERR(dsk_tune_gemm(gpu("a100"), &s, &r), DSK_ERR_UNSUPPORTED, "no FP8 tensor cores");
    dsk_gemm_tile t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 128);
    t.stages = 40;
    dsk_gemm_plan p;
    dsk_ptx_gemm_plan(&t, 0, &p);
    dsk_gemm_prediction out;
    DSK_T_ERR(dsk_tune_gemm_predict(gpu("h800"), &s, &t, &p, &out), DSK_ERR_INVALID_ARG, "not legal");
    /* Grouped layouts tune too (MoE): masked, 8 experts of up to 64 rows. */
    dsk_tune_gemm_shape gs = {64, 4096, 7168, 8, DSK_GEMM_MASKED};
    DSK_T_OK(dsk_tune_gemm(gpu("h20"), &gs, &r));
    DSK_T_CHECK(r.n > 0 && strstr(r.cand[0].kernel, "_masked"), "masked kernel %s", r.n ? r.cand[0].kernel : "-");
    DSK_T_CHECK(fabs(r.cand[0].pred.flops - 2.0 * 64 * 4096 * 7168 * 8) < 1, "masked FLOPs count every group");
    dsk_tune_result_free(&r);
}

int main(void)
{
    check_terms();
    check_ranking();
    check_bad_input();
    return dsk_t_finish();
}
