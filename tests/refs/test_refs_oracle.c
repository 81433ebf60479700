/* tests/refs/test_refs_oracle.c: the MLA, MoE routing and layer references against an
 * independent numpy oracle (tests/refs/oracle.py), on seeded random inputs.
 *
 * Inputs go to a temporary folder as raw float64 / int32 files, the oracle computes in
 * float64 and writes its outputs back. Skipped (exit 77) when python3 with numpy is absent.
 * Tolerances: both sides compute in float64; the C reference rounds outputs once to f32,
 * so outputs of magnitude <= ~10 agree to a few f32 ulps: max_abs_err <= 1e-5 and
 * diff <= 1e-12 (an f32 rounding of every element gives diff ~ 1e-15). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness/harness.h"

static char g_dir[256];

static void write_tensor(const char *name, const dsk_tensor *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        DSK_T_CHECK(0, "cannot write %s", path);
        return;
    }
    int64_t n = dsk_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = dsk_t_get(t, i);
        if (t->dtype == DSK_I32) {
            int32_t iv = (int32_t)v;
            fwrite(&iv, sizeof iv, 1, f);
        } else {
            fwrite(&v, sizeof v, 1, f);
        }
    }
    fclose(f);
}

/* Reads n values of the oracle's output `name` (float64, or int32 when is_int). */
static double *read_output(const char *name, int64_t n, int is_int)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", g_dir, name);
    double *out = calloc((size_t)(n ? n : 1), sizeof *out);
    FILE *f = fopen(path, "rb");
    int64_t got = 0;
    if (f) {
        for (; got < n; got++) {
            if (is_int) {
                int32_t v;
                if (fread(&v, sizeof v, 1, f) != 1) break;
                out[got] = v;
            } else if (fread(&out[got], sizeof(double), 1, f) != 1) {
                break;
            }
        }
        fclose(f);
    }
    DSK_T_CHECK(got == n, "oracle output %s: read %lld of %lld values", name, (long long)got,
                (long long)n);
    return out;
}

static int run_oracle(const char *fmt, ...)
{
    char args[1024], cmd[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "python3 '%s' %s", DSK_ORACLE_PY, args);
    int rc = system(cmd);
    return DSK_T_CHECK(rc == 0, "oracle failed (rc %d): %s", rc, cmd);
}

/* Compares tensor t (any strides) with the oracle's output `name`. */
static void compare_output(const char *what, const dsk_tensor *t, const char *name, double max_abs)
{
    int64_t n = dsk_tensor_numel(t);
    double *want = read_output(name, n, 0), *got = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        got[i] = dsk_t_get(t, i);
    dsk_t_cmp c = dsk_t_compare_f64(got, want, n, 1e-3);
    DSK_T_CHECK(c.nonfinite == 0 && c.max_abs_err <= max_abs && c.diff <= 1e-12,
                "%s %s: max_abs_err %.3g (tol %.1g), diff %.3g (tol 1e-12), nonfinite %lld", what,
                name, c.max_abs_err, max_abs, c.diff, (long long)c.nonfinite);
    free(want);
    free(got);
}

/* ---- MLA decode ------------------------------------------------------------------- */

static void case_mla_decode(int id, int B, int H, int D, int dv, int max_pages, dsk_dtype in_dt)
{
    dsk_rng r = dsk_t_rng(100 + id);
    const int num_pages = B * max_pages + 3;
    dsk_tensor *q = dsk_t_new3(in_dt, B, H, D);
    dsk_tensor *kv = dsk_t_new3(in_dt, num_pages, DSK_MLA_PAGE_SIZE, D);
    dsk_tensor *bt = dsk_t_new2(DSK_I32, B, max_pages);
    dsk_tensor *sl = dsk_t_new(DSK_I32, 1, (int64_t[]){B});
    dsk_tensor *out = dsk_t_new3(DSK_F32, B, H, dv);
    dsk_tensor *lse = dsk_t_new2(DSK_F32, B, H);
    dsk_t_fill_normal(q, &r, 1.0);
    dsk_t_fill_normal(kv, &r, 1.0);
    /* pages scattered: a random permutation */
    DSK_T_CHECK(dsk_t_fill_scattered_pages(bt, &r, num_pages), "block table larger than the cache");
    const int cap = max_pages * DSK_MLA_PAGE_SIZE;
    for (int b = 0; b < B; b++) /* ragged: 1, a full page, one past a page, random */
        dsk_t_set(sl, b, b == 0 ? 1 : b == 1 ? (cap >= 64 ? 64 : cap) : b == 2 ? (cap >= 65 ? 65 : cap)
                                                                         : dsk_rng_int(&r, 1, cap));
    dsk_t_poison(out);
    dsk_t_poison(lse);
    const float scale = dsk_mla_softmax_scale(192, 1.0f, 40.0f);
    dsk_mla_decode_args a = {.q = q, .kv_cache = kv, .block_table = bt, .seq_lens = sl,
                             .out = out, .lse = lse, .dv = dv, .softmax_scale = scale};
    char what[160];
    snprintf(what, sizeof what, "mla_decode_ref B=%d H=%d D=%d dv=%d max_pages=%d %s", B, H, D, dv,
             max_pages, dsk_dtype_name(in_dt));
    if (!DSK_T_OK(dsk_mla_decode_ref(&a)))
        return;
    write_tensor("q", q);
    write_tensor("kv_cache", kv);
    write_tensor("block_table", bt);
    write_tensor("seq_lens", sl);
    if (!run_oracle("mla_decode %s B=%d H=%d D=%d dv=%d num_pages=%d max_pages=%d scale=%.17g",
                    g_dir, B, H, D, dv, num_pages, max_pages, (double)scale))
        return;
    compare_output(what, out, "out", 1e-5);
    compare_output(what, lse, "lse", 1e-5);
}

/* ---- MLA prefill ------------------------------------------------------------------ */

static void case_mla_prefill(int id, int H, int Dqk, int Dv, const int *lens, int B, dsk_dtype in_dt)
{
    dsk_rng r = dsk_t_rng(200 + id);
    int T = 0;
    dsk_tensor *cu = dsk_t_new(DSK_I32, 1, (int64_t[]){B + 1});
    dsk_t_set(cu, 0, 0);
    for (int b = 0; b < B; b++) {
        T += lens[b];
        dsk_t_set(cu, b + 1, T);
    }
    dsk_tensor *q = dsk_t_new3(in_dt, T, H, Dqk), *k = dsk_t_new3(in_dt, T, H, Dqk);
    dsk_tensor *v = dsk_t_new3(in_dt, T, H, Dv);
    dsk_tensor *out = dsk_t_new3(DSK_F32, T, H, Dv), *lse = dsk_t_new2(DSK_F32, T, H);
    dsk_t_fill_normal(q, &r, 1.0);
    dsk_t_fill_normal(k, &r, 1.0);
    dsk_t_fill_normal(v, &r, 1.0);
    dsk_t_poison(out);
    dsk_t_poison(lse);
    const float scale = dsk_mla_softmax_scale(Dqk, 1.0f, 40.0f);
    dsk_mla_prefill_args a = {.q = q, .k = k, .v = v, .cu_seqlens = cu, .out = out, .lse = lse,
                              .softmax_scale = scale};
    char what[160];
    snprintf(what, sizeof what, "mla_prefill_ref T=%d B=%d H=%d Dqk=%d Dv=%d %s", T, B, H, Dqk, Dv,
             dsk_dtype_name(in_dt));
    if (!DSK_T_OK(dsk_mla_prefill_ref(&a)))
        return;
    write_tensor("q", q);
    write_tensor("k", k);
    write_tensor("v", v);
    write_tensor("cu_seqlens", cu);
    if (!run_oracle("mla_prefill %s T=%d H=%d Dqk=%d Dv=%d B=%d scale=%.17g", g_dir, T, H, Dqk, Dv,
                    B, (double)scale))
        return;
    compare_output(what, out, "out", 1e-5);
    compare_output(what, lse, "lse", 1e-5);
}

/* ---- routing ---------------------------------------------------------------------- */

static void case_route(int id, int T, dsk_moe_route_params p, int with_bias)
{
    dsk_rng r = dsk_t_rng(300 + id);
    const int E = p.n_experts;
    dsk_tensor *logits = dsk_t_new2(DSK_F32, T, E), *bias = dsk_t_new(DSK_F32, 1, (int64_t[]){E});
    dsk_tensor *idx = dsk_t_new2(DSK_I32, T, p.top_k), *w = dsk_t_new2(DSK_F32, T, p.top_k);
    dsk_t_fill_normal(logits, &r, 2.0);
    dsk_t_fill_normal(bias, &r, 0.5);
    dsk_t_poison(idx);
    dsk_t_poison(w);
    dsk_moe_route_args a = {.logits = logits, .bias = with_bias ? bias : NULL, .topk_idx = idx,
                            .topk_w = w, .p = p};
    char what[200];
    snprintf(what, sizeof what,
             "moe_route_ref T=%d E=%d n_group=%d topk_group=%d top_k=%d norm=%d factor=%g %s%s", T,
             E, p.n_group, p.topk_group, p.top_k, p.norm_topk_prob, (double)p.routed_scaling_factor,
             p.scoring == DSK_MOE_SOFTMAX ? "softmax" : "sigmoid", with_bias ? " bias" : "");
    if (!DSK_T_OK(dsk_moe_route_ref(&a)))
        return;
    write_tensor("logits", logits);
    write_tensor("bias", bias);
    if (!run_oracle("route %s T=%d E=%d n_group=%d topk_group=%d top_k=%d norm=%d factor=%.17g "
                    "scoring=%d has_bias=%d",
                    g_dir, T, E, p.n_group, p.topk_group, p.top_k, p.norm_topk_prob,
                    (double)p.routed_scaling_factor, (int)p.scoring, with_bias))
        return;
    int64_t n = (int64_t)T * p.top_k, mismatch = 0, first = -1;
    double *want = read_output("topk_idx", n, 1);
    for (int64_t i = 0; i < n; i++)
        if (dsk_t_get(idx, i) != want[i] && mismatch++ == 0)
            first = i;
    DSK_T_CHECK(mismatch == 0, "%s: %lld of %lld expert indices differ (first at token %lld slot %lld: "
                "got %g, oracle %g)",
                what, (long long)mismatch, (long long)n, (long long)(first / p.top_k),
                (long long)(first % p.top_k), first >= 0 ? dsk_t_get(idx, first) : 0.0,
                first >= 0 ? want[first] : 0.0);
    free(want);
    compare_output(what, w, "topk_w", 1e-6);
}

/* ---- RoPE, RMSNorm, SwiGLU -------------------------------------------------------- */

static void case_rope(int id, int T, int nh, dsk_rope_params p, int max_pos)
{
    dsk_rng r = dsk_t_rng(400 + id);
    dsk_tensor *x = dsk_t_new3(DSK_F32, T, nh, p.dim), *pos = dsk_t_new(DSK_I32, 1, (int64_t[]){T});
    dsk_t_fill_normal(x, &r, 1.0);
    dsk_t_fill_int(pos, &r, 0, max_pos);
    dsk_t_set(pos, 0, 0);
    write_tensor("x", x);
    write_tensor("positions", pos);
    dsk_rope_args a = {.x = x, .positions = pos, .p = p};
    char what[200];
    snprintf(what, sizeof what,
             "rope_ref T=%d nh=%d dim=%d theta=%g factor=%g orig=%d beta=%g/%g attn=%g max_pos=%d",
             T, nh, p.dim, (double)p.theta, (double)p.factor, p.original_max_pos,
             (double)p.beta_fast, (double)p.beta_slow, (double)p.attn_factor, max_pos);
    if (!DSK_T_OK(dsk_rope_ref(&a)))
        return;
    if (!run_oracle("rope %s T=%d nh=%d dim=%d theta=%.17g factor=%.17g orig=%d beta_fast=%.17g "
                    "beta_slow=%.17g attn_factor=%.17g",
                    g_dir, T, nh, p.dim, (double)p.theta, (double)p.factor, p.original_max_pos,
                    (double)p.beta_fast, (double)p.beta_slow, (double)p.attn_factor))
        return;
    /* angles reach max_pos * freq ~ 2e5 rad: f64 angle error ~ 1e-10, far below f32 */
    compare_output(what, x, "out", 1e-5);
    double *freqs = malloc(sizeof(double) * (size_t)(p.dim / 2));
    dsk_rope_freqs(&p, freqs);
    double *want = read_output("freqs", p.dim / 2, 0);
    dsk_t_cmp c = dsk_t_compare_f64(freqs, want, p.dim / 2, 1e-300);
    DSK_T_CHECK(c.max_rel_err <= 1e-13, "%s: dsk_rope_freqs max_rel_err %.3g (tol 1e-13)", what,
                c.max_rel_err);
    free(freqs);
    free(want);
}

static void case_rmsnorm_swiglu(int id, int T, int Hd, dsk_dtype dt)
{
    dsk_rng r = dsk_t_rng(500 + id);
    dsk_tensor *x = dsk_t_new2(dt, T, Hd), *w = dsk_t_new(dt, 1, (int64_t[]){Hd});
    dsk_tensor *y = dsk_t_new2(DSK_F32, T, Hd);
    dsk_t_fill_normal(x, &r, 3.0);
    dsk_t_fill_uniform(w, &r, 0.5, 1.5);
    dsk_t_poison(y);
    write_tensor("x", x);
    write_tensor("weight", w);
    dsk_rmsnorm_args ra = {.x = x, .weight = w, .y = y, .eps = 1e-6f};
    char what[120];
    snprintf(what, sizeof what, "rmsnorm_ref T=%d Hd=%d %s", T, Hd, dsk_dtype_name(dt));
    if (DSK_T_OK(dsk_rmsnorm_ref(&ra)) && run_oracle("rmsnorm %s T=%d Hd=%d eps=%.17g", g_dir, T, Hd, 1e-6f))
        compare_output(what, y, "out", 1e-5);

    dsk_tensor *gu = dsk_t_new2(dt, T, 2 * Hd);
    dsk_t_fill_normal(gu, &r, 2.0);
    dsk_t_poison(y);
    write_tensor("gate_up", gu);
    dsk_swiglu_args sa = {.gate_up = gu, .y = y};
    snprintf(what, sizeof what, "swiglu_ref T=%d I=%d %s", T, Hd, dsk_dtype_name(dt));
    if (DSK_T_OK(dsk_swiglu_ref(&sa)) && run_oracle("swiglu %s T=%d I=%d", g_dir, T, Hd))
        compare_output(what, y, "out", 1e-5);
}

int main(void)
{
    if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        dsk_t_skip("python3 with numpy not found (scripts/install-deps.sh installs it): no oracle");
    snprintf(g_dir, sizeof g_dir, "%s/dsk_oracle_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir))
        dsk_t_skip("cannot create a temporary folder for the oracle's files");

    case_mla_decode(0, 4, 3, 40, 32, 3, DSK_F32);
    case_mla_decode(1, 3, 16, 576, 512, 4, DSK_BF16);   /* DeepSeek-V3's head dims */
    case_mla_decode(2, 5, 2, 9, 8, 2, DSK_F32);         /* odd dims */

    const int lens0[] = {5, 0, 70, 1};
    case_mla_prefill(0, 3, 24, 16, lens0, 4, DSK_F32);
    const int lens1[] = {33, 100};
    case_mla_prefill(1, 4, 192, 128, lens1, 2, DSK_BF16); /* V3's qk/v head dims */

    case_route(0, 48, dsk_moe_route_params_v3(), 1);
    case_route(1, 48, dsk_moe_route_params_v3(), 0);
    dsk_moe_route_params p2 = {.n_experts = 64, .n_group = 4, .topk_group = 2, .top_k = 6,
                               .norm_topk_prob = 0, .routed_scaling_factor = 1.0f,
                               .scoring = DSK_MOE_SOFTMAX};
    case_route(2, 33, p2, 0);
    dsk_moe_route_params p3 = {.n_experts = 30, .n_group = 1, .topk_group = 1, .top_k = 7,
                               .norm_topk_prob = 1, .routed_scaling_factor = 1.5f,
                               .scoring = DSK_MOE_SIGMOID};
    case_route(3, 20, p3, 1);
    dsk_moe_route_params p4 = {.n_experts = 24, .n_group = 6, .topk_group = 6, .top_k = 5,
                               .norm_topk_prob = 1, .routed_scaling_factor = 2.5f,
                               .scoring = DSK_MOE_SIGMOID};
    case_route(4, 20, p4, 1);

    case_rope(0, 24, 3, dsk_rope_params_v3(), 163840);
    dsk_rope_params plain = {.dim = 16, .theta = 10000.0f, .factor = 1.0f, .attn_factor = 1.0f};
    case_rope(1, 9, 2, plain, 5000);
    dsk_rope_params tiny = {.dim = 8, .theta = 500.0f, .factor = 4.0f, .original_max_pos = 4,
                            .beta_fast = 32.0f, .beta_slow = 1.0f, .attn_factor = 1.25f};
    case_rope(2, 7, 1, tiny, 100); /* correction range collapses to low == high == 0 */
    dsk_rope_params mid = {.dim = 32, .theta = 50000.0f, .factor = 8.0f, .original_max_pos = 2048,
                           .beta_fast = 16.0f, .beta_slow = 2.0f, .attn_factor = 0.9f};
    case_rope(3, 11, 2, mid, 30000);
    dsk_rope_params frac = dsk_rope_params_v3(); /* low = floor(12.88): catches rounding */
    frac.factor = 4.0f;
    frac.original_max_pos = 8192;
    case_rope(4, 6, 2, frac, 40000);

    case_rmsnorm_swiglu(0, 5, 33, DSK_F32);
    case_rmsnorm_swiglu(1, 3, 128, DSK_BF16);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", g_dir);
    return dsk_t_finish();
}
