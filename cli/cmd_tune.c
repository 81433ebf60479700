/* cli/cmd_tune.c: `dsk tune`: the ranked tile configurations of the FP8 GEMM for a GPU
 * and shape, as predicted by the model (labelled so), with the breakdown and the reason
 * the winner wins; --measure verifies (emu:) or times (cuda:) the top candidates. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "dsk/tune.h"

static void usage(void)
{
    printf("usage: dsk tune --gpu GPU --op gemm --shape M,N,K [--layout dense|contig|masked]\n"
           "                [--groups G] [--top K] [--measure] [--device DEV] [--json]\n"
           "                [--gpus-file FILE]\n"
           "  Ranks every legal FP8 GEMM tile configuration for GPU (dsk gpus lists them) by the\n"
           "  analytic model's PREDICTED time (docs/MODEL.md), best first, with the breakdown and\n"
           "  the limiting factor. Nothing here is a measurement unless marked measured.\n"
           "  --top K      candidates shown (default 10; 0 = all)\n"
           "  --all        list every configuration; by default a tile shape (block_m x block_n,\n"
           "               swap-AB, cluster, persistent, TMA store) is listed once, with its best stage count\n"
           "  --measure    run the top candidates on DEV in the model's order and keep the winner\n"
           "               in the tuning cache (DSK_CACHE_DIR, else XDG_CACHE_HOME/dsk, ~/.cache/dsk)\n"
           "  --device DEV the device for --measure (default emu:GPU: runs each candidate in the\n"
           "               PTX emulator and checks it against the reference; cuda:N times it)\n"
           "  --json       {\"gpu\", \"op\", \"shape\": [M, N, K], \"candidates\": [{\"kernel\", \"tile\",\n"
           "               \"predicted_us\", \"tflops\", \"gbps\", \"bound\", \"measured_us\"}]}\n");
}

static int parse_shape(const char *s, long long v[3])
{
    char *end;
    for (int i = 0; i < 3; i++) {
        v[i] = strtoll(s, &end, 10);
        if (end == s || v[i] < 1) return -1;
        if (i < 2 && *end != ',') return -1;
        s = end + 1;
    }
    return *end ? -1 : 0;
}

/* Indices of the candidates to list: all, or the first of each tile shape. */
static int pick(const dsk_tune_result *r, int all, int top, int *idx)
{
    int n = 0;
    for (int i = 0; i < r->n && (top == 0 || n < top); i++) {
        const dsk_gemm_tile *t = &r->cand[i].tile;
        int dup = 0;
        for (int j = 0; j < n && !all && !dup; j++) {
            const dsk_gemm_tile *u = &r->cand[idx[j]].tile;
            dup = t->block_m == u->block_m && t->block_n == u->block_n && t->swap_ab == u->swap_ab &&
                  t->cluster == u->cluster && t->persistent == u->persistent && t->tma_store == u->tma_store;
        }
        if (!dup) idx[n++] = i;
    }
    return n;
}

static void print_json(const dsk_tune_result *r, const int *idx, int top)
{
    printf("{\"gpu\": ");
    dsk_cli_json_str(stdout, r->gpu);
    printf(", \"op\": \"gemm\", \"shape\": [%lld, %lld, %lld], \"candidates\": [", r->shape.m, r->shape.n,
           r->shape.k);
    for (int i = 0; i < top; i++) {
        const dsk_tune_candidate *c = &r->cand[idx[i]];
        char tile[32];
        snprintf(tile, sizeof tile, "%dx%d", c->tile.block_m, c->tile.block_n);
        printf("%s\n  {\"kernel\": ", i ? "," : "");
        dsk_cli_json_str(stdout, c->kernel);
        printf(", \"tile\": \"%s\", \"predicted_us\": %.4g, \"tflops\": %.4g, \"gbps\": %.4g, \"bound\": \"%s\"",
               tile, c->pred.us, c->pred.tflops, c->pred.gbps, dsk_tune_bound_name(c->pred.bound));
        if (c->measured) printf(", \"measured_us\": %.4g", c->measured_us);
        printf("}");
    }
    printf("\n]}\n");
}

static void print_text(const dsk_gpu *g, const dsk_tune_result *r, const int *idx, int top)
{
    printf("dsk tune: FP8 GEMM M=%lld N=%lld K=%lld%s on %s (%s, %s, %g SMs)\n", r->shape.m, r->shape.n,
           r->shape.k, r->shape.layout == DSK_GEMM_DENSE ? "" : r->shape.layout == DSK_GEMM_MASKED ? " masked" : " contiguous",
           g->name, g->description, g->arch, g->sms.v);
    printf("PREDICTED times (analytic model, docs/MODEL.md; not measured), band +-%.0f%%.\n", 100 * g->band.v);
    printf("%d legal configurations of %d tried (the emitter's plan rejects the rest).\n\n", r->n, r->enumerated);
    printf(" #  %-44s %9s %17s %7s %6s %-8s| %6s %6s %6s %6s %6s %6s %5s\n", "kernel", "pred. us", "band", "TFLOPS",
           "GB/s", "bound", "tensor", "promo", "memory", "latncy", "l2", "fill", "waves");
    for (int i = 0; i < top; i++) {
        const dsk_tune_candidate *c = &r->cand[idx[i]];
        const dsk_gemm_prediction *p = &c->pred;
        char band[40];
        snprintf(band, sizeof band, "%.2f-%.2f", p->us_lo, p->us_hi);
        printf("%2d  %-44s %9.2f %17s %7.1f %6.0f %-8s| %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %5.2f", i + 1, c->kernel,
               p->us, band, p->tflops, p->gbps, dsk_tune_bound_name(p->bound), p->t_tensor, p->t_promote,
               p->t_memory, p->t_latency, p->t_l2, p->t_fill, p->waves);
        if (c->measured) printf("  measured %.2f us", c->measured_us);
        if (c->verified) printf("  emulator: matches reference");
        printf("\n");
    }
    printf("\nwhy (predicted): %s.\n", r->explain);
}

int dsk_cmd_tune(int argc, char **argv)
{
    const char *cmd = "tune", *gpu = NULL, *op = NULL, *shape = NULL, *device = NULL;
    dsk_gemm_layout layout = DSK_GEMM_DENSE;
    int64_t top = 10, groups = 1;
    int measure = 0, json = 0, all = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_flag(argv, i, "--help")) {
            usage();
            return 0;
        } else if (dsk_cli_flag(argv, i, "--measure")) measure = 1;
        else if (dsk_cli_flag(argv, i, "--all")) all = 1;
        else if (dsk_cli_flag(argv, i, "--json")) json = 1;
        else if (dsk_cli_opt(argc, argv, &i, "--gpu", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpu expects a GPU name (dsk gpus lists them)");
            gpu = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--op", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--op expects an op name (gemm)");
            op = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--shape", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--shape expects M,N,K");
            shape = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--device", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--device expects a device name");
            device = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--layout", &v, &err)) {
            if (err || (strcmp(v, "dense") && strcmp(v, "contig") && strcmp(v, "masked")))
                return dsk_cli_usage_error(cmd, "--layout expects dense, contig or masked");
            layout = !strcmp(v, "dense") ? DSK_GEMM_DENSE : !strcmp(v, "contig") ? DSK_GEMM_CONTIGUOUS : DSK_GEMM_MASKED;
        } else if (dsk_cli_opt(argc, argv, &i, "--groups", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &groups) || groups < 1 || groups > 4096)
                return dsk_cli_usage_error(cmd, "--groups expects a count in 1..4096, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--top", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &top) || top < 0)
                return dsk_cli_usage_error(cmd, "--top expects a count >= 0, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--gpus-file", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpus-file expects a file name");
            dsk_status s = dsk_gpu_load_file(v);
            if (s) return dsk_cli_fail(cmd, s);
        } else {
            return dsk_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
        }
    }
    if (!gpu) return dsk_cli_usage_error(cmd, "--gpu is required");
    if (!shape) return dsk_cli_usage_error(cmd, "--shape M,N,K is required");
    if (op && strcmp(op, "gemm") && strcmp(op, "gemm_fp8"))
        return dsk_cli_usage_error(cmd, "--op %s: only gemm (the FP8 block-scaled GEMM) is tunable so far; "
                                   "MLA and MoE are estimated by roofline in dsk compare", op);
    long long mnk[3];
    if (parse_shape(shape, mnk)) return dsk_cli_usage_error(cmd, "--shape expects M,N,K (positive integers), got '%s'", shape);
    if (layout == DSK_GEMM_DENSE && groups != 1)
        return dsk_cli_usage_error(cmd, "--groups needs --layout contig or masked");
    const dsk_gpu *g;
    dsk_status s = dsk_gpu_find(gpu, &g);
    if (s) return dsk_cli_fail(cmd, s);
    dsk_tune_gemm_shape sh = {mnk[0], mnk[1], mnk[2], (int)groups, layout};
    dsk_tune_result r;
    s = dsk_tune_gemm(g, &sh, &r);
    if (s) return dsk_cli_fail(cmd, s);
    int *idx = malloc(sizeof *idx * (size_t)r.n);
    if (!idx) {
        dsk_tune_result_free(&r);
        return dsk_cli_usage_error(cmd, "out of memory");
    }
    int shown = pick(&r, all, (int)top, idx);
    int rc = 0;
    if (measure) {
        char dev[80];
        snprintf(dev, sizeof dev, "%s", device ? device : "");
        if (!device) snprintf(dev, sizeof dev, "emu:%s", g->name);
        /* Measure in the model's order: the listed candidates, best first. */
        s = dsk_tune_measure(g, dev, &r, idx, shown, isatty(2) ? stderr : NULL);
        if (s) rc = dsk_cli_fail(cmd, s);
    }
    if (!rc) {
        if (json) print_json(&r, idx, shown);
        else print_text(g, &r, idx, shown);
    }
    free(idx);
    dsk_tune_result_free(&r);
    return rc;
}
