/* cli/cmd_compare.c: `dsk compare`: GPUs on one forward step of a model, predicted op by
 * op (tuned FP8 GEMMs + rooflines for ops without a tuned kernel), tokens/s, the bound,
 * the ratio between GPUs, and an SVG of tokens/s against batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "dsk/tune.h"

#define MAX_GPUS 8
#define MAX_BATCH 16

static void usage(void)
{
    printf("usage: dsk compare --gpus h20,h100[,...] --model deepseek-v3 [--phase decode|prefill]\n"
           "                   [--batch 1,8,32,128,512] [--ctx 4096] [--json] [--svg FILE]\n"
           "                   [--gpus-file FILE]\n"
           "  PREDICTED time of one forward step per GPU (docs/MODEL.md): FP8 GEMMs with the\n"
           "  tuner's choice, MLA / MoE experts / lm_head / elementwise layers by roofline\n"
           "  (marked [roofline]); tokens/s, what bounds it, the ratio to the first GPU, the\n"
           "  per-op breakdown, and the batch from which each GPU's FP8 GEMMs are compute-bound.\n"
           "  decode: batch sequences, one new token each, attending to ctx cached tokens.\n"
           "  prefill: batch prompts of ctx tokens each.\n"
           "  --json  {\"model\", \"phase\", \"ctx\", \"gpus\": [{\"name\", \"points\": [{\"batch\",\n"
           "          \"step_us\", \"tokens_per_s\", \"bound\", \"ops\": [{\"op\", \"shape\", \"us\", \"bound\"}]}]}]}\n"
           "  --svg   tokens/s against batch, one line per GPU (log-log)\n");
}

static int parse_list_int(const char *s, int *v, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > (1 << 20) || n == cap) return -1;
        v[n++] = (int)x;
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return n;
}

static void op_label(const dsk_step_op *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", o->op, o->roofline ? " [roofline]" : "");
}

/* Smallest batches (powers of two up to 16384) at which the step's tuned FP8 GEMMs
 * (dense projections and shared experts; most of their time) and the MoE expert GEMMs
 * are compute-bound; 0 where none is. */
static dsk_status compute_batches(const dsk_gpu *g, const char *model, dsk_step_phase ph, int ctx, int *dense,
                                  int *experts)
{
    *dense = *experts = 0;
    dsk_step_point *p = malloc(sizeof *p);
    if (!p) return DSK_ERR_OUT_OF_MEMORY;
    dsk_status s = DSK_OK;
    for (int b = 1; b <= 16384 && (!*dense || !*experts); b *= 2) {
        if ((s = dsk_tune_step(g, model, ph, b, ctx, p))) break;
        double comp = 0, all = 0;
        for (int i = 0; i < p->n_ops; i++) {
            const dsk_step_op *o = &p->ops[i];
            if (!strcmp(o->op, "moe_experts") && o->bound == DSK_BOUND_COMPUTE && !*experts) *experts = b;
            if (!o->kernel[0]) continue;
            all += o->us;
            if (o->bound == DSK_BOUND_COMPUTE) comp += o->us;
        }
        if (all > 0 && comp > 0.5 * all && !*dense) *dense = b;
    }
    free(p);
    return s;
}

static void write_svg(FILE *f, const char *model, const char *phase, int ctx, int ng, const dsk_gpu **g,
                      int nb, const int *batch, dsk_step_point (*pts)[MAX_BATCH])
{
    const double W = 720, H = 440, L = 80, R = 150, T = 50, B = 60;
    double ymin = 1e300, ymax = 0;
    for (int i = 0; i < ng; i++)
        for (int j = 0; j < nb; j++) {
            double v = pts[i][j].tokens_per_s;
            if (v < ymin) ymin = v;
            if (v > ymax) ymax = v;
        }
    double ly0 = floor(log10(ymin)), ly1 = ceil(log10(ymax));
    if (ly1 <= ly0) ly1 = ly0 + 1;
    double lx0 = log2(batch[0]), lx1 = log2(batch[nb - 1]);
    if (lx1 <= lx0) lx1 = lx0 + 1;
#define X(b) (L + (log2(b) - lx0) / (lx1 - lx0) * (W - L - R))
#define Y(v) (H - B - (log10(v) - ly0) / (ly1 - ly0) * (H - T - B))
    static const char *col[MAX_GPUS] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"};
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">%s %s, ctx %d: tokens/s vs batch (PREDICTED by dsk's model, not measured)</text>\n",
            L - 40, model, phase, ctx);
    for (double e = ly0; e <= ly1; e++) {
        double y = Y(pow(10, e));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%.0f</text>\n", L - 6, y + 4, e);
    }
    for (int j = 0; j < nb; j++) {
        double x = X(batch[j]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x, (double)T, x, H - B);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, H - B + 16, batch[j]);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">batch (%s)</text>\n", (L + W - R) / 2, H - 18,
            !strcmp(phase, "decode") ? "sequences decoding one token each" : "prompts per step");
    fprintf(f, "<text x=\"18\" y=\"%.1f\" transform=\"rotate(-90 18 %.1f)\" text-anchor=\"middle\">tokens/s (predicted)</text>\n",
            (T + H - B) / 2, (T + H - B) / 2);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", L, T,
            W - L - R, H - T - B);
    for (int i = 0; i < ng; i++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col[i % MAX_GPUS]);
        for (int j = 0; j < nb; j++) fprintf(f, "%.1f,%.1f ", X(batch[j]), Y(pts[i][j].tokens_per_s));
        fprintf(f, "\"/>\n");
        for (int j = 0; j < nb; j++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s batch %d: %.4g tokens/s (%s-bound), predicted</title></circle>\n",
                    X(batch[j]), Y(pts[i][j].tokens_per_s), col[i % MAX_GPUS], g[i]->name, batch[j],
                    pts[i][j].tokens_per_s, dsk_tune_bound_name(pts[i][j].bound));
        double ly = T + 20 + 20 * i;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", W - R + 12,
                ly, W - R + 36, ly, col[i % MAX_GPUS]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\">%s</text>\n", W - R + 42, ly + 4, g[i]->name);
    }
    fprintf(f, "</svg>\n");
#undef X
#undef Y
}

static void print_json(const char *model, const char *phase, int ctx, int ng, const dsk_gpu **g, int nb,
                       dsk_step_point (*pts)[MAX_BATCH])
{
    printf("{\"model\": ");
    dsk_cli_json_str(stdout, model);
    printf(", \"phase\": \"%s\", \"ctx\": %d, \"gpus\": [", phase, ctx);
    for (int i = 0; i < ng; i++) {
        printf("%s\n {\"name\": ", i ? "," : "");
        dsk_cli_json_str(stdout, g[i]->name);
        printf(", \"points\": [");
        for (int j = 0; j < nb; j++) {
            const dsk_step_point *p = &pts[i][j];
            printf("%s\n  {\"batch\": %d, \"step_us\": %.6g, \"tokens_per_s\": %.6g, \"bound\": \"%s\", \"ops\": [",
                   j ? "," : "", p->batch, p->step_us, p->tokens_per_s, dsk_tune_bound_name(p->bound));
            for (int k = 0; k < p->n_ops; k++) {
                const dsk_step_op *o = &p->ops[k];
                char lab[80];
                op_label(o, lab, sizeof lab);
                printf("%s\n   {\"op\": ", k ? "," : "");
                dsk_cli_json_str(stdout, lab);
                printf(", \"shape\": [");
                for (int d = 0; d < o->shape_rank; d++) printf("%s%lld", d ? ", " : "", o->shape[d]);
                printf("], \"us\": %.6g, \"bound\": \"%s\"}", o->us, dsk_tune_bound_name(o->bound));
            }
            printf("]}");
        }
        printf("]}");
    }
    printf("\n]}\n");
}

static void print_text(const char *model, const char *phase, int ctx, int ng, const dsk_gpu **g, int nb,
                       const int *batch, dsk_step_point (*pts)[MAX_BATCH], const int *cbatch)
{
    printf("dsk compare: %s %s, ctx %d. PREDICTED by dsk's analytic model (docs/MODEL.md), not measured.\n",
           model, phase, ctx);
    printf("One step = the whole model's work on one GPU's resources; communication not modelled.\n\n");
    printf("%7s", "batch");
    for (int i = 0; i < ng; i++) printf(" | %-8s %11s %9s %-8s", g[i]->name, "tokens/s", "step ms", "bound");
    for (int i = 1; i < ng; i++) printf(" | %s/%s", g[0]->name, g[i]->name);
    printf("\n");
    for (int j = 0; j < nb; j++) {
        printf("%7d", batch[j]);
        for (int i = 0; i < ng; i++)
            printf(" | %-8s %11.4g %9.3f %-8s", "", pts[i][j].tokens_per_s, pts[i][j].step_us / 1e3,
                   dsk_tune_bound_name(pts[i][j].bound));
        for (int i = 1; i < ng; i++) printf(" | %9.3f", pts[0][j].tokens_per_s / pts[i][j].tokens_per_s);
        printf("\n");
    }
    printf("\n");
    for (int i = 1; i < ng; i++) {
        double a = 0, b = 0;
        const dsk_step_point *p0 = &pts[0][nb - 1], *pi = &pts[i][nb - 1];
        for (int k = 0; k < p0->n_ops; k++)
            if (p0->ops[k].kernel[0] && pi->ops[k].kernel[0]) a += p0->ops[k].us, b += pi->ops[k].us;
        if (a > 0)
            printf("Tuned FP8 GEMMs alone at batch %d: %s/%s = %.3f (peak FP8 ratio %.3f).\n", batch[nb - 1],
                   g[0]->name, g[i]->name, b / a, g[0]->fp8_tflops.v / g[i]->fp8_tflops.v);
    }
    for (int i = 0; i < ng; i++) {
        char d[48] = "beyond batch 16384", e[48] = "beyond batch 16384";
        if (cbatch[2 * i]) snprintf(d, sizeof d, "from batch %d", cbatch[2 * i]);
        if (cbatch[2 * i + 1]) snprintf(e, sizeof e, "from batch %d", cbatch[2 * i + 1]);
        printf("%s: tuned FP8 GEMMs compute-bound %s; MoE expert GEMMs %s (predicted, %s).\n", g[i]->name, d, e,
               phase);
    }
    for (int i = 0; i < ng; i++) {
        printf("\n%s (%s): predicted us per step by op, summed over layers (c = compute-, m = memory-, "
               "l = latency-, o = overhead-, 2 = L2->SM-bound)\n", g[i]->name, g[i]->description);
        printf("  %-30s %6s", "op", "layers");
        for (int j = 0; j < nb; j++) printf(" %10d b ", batch[j]);
        printf("  kernel at batch %d\n", batch[nb - 1]);
        for (int k = 0; k < pts[i][0].n_ops; k++) {
            char lab[80];
            op_label(&pts[i][0].ops[k], lab, sizeof lab);
            printf("  %-30s %6d", lab, pts[i][0].ops[k].layers);
            for (int j = 0; j < nb; j++)
                printf(" %10.4g %c ", pts[i][j].ops[k].us,
                       pts[i][j].ops[k].bound == DSK_BOUND_L2 ? '2' : dsk_tune_bound_name(pts[i][j].ops[k].bound)[0]);
            printf("  %s\n", pts[i][nb - 1].ops[k].kernel);
        }
    }
}

int dsk_cmd_compare(int argc, char **argv)
{
    const char *cmd = "compare", *gpus = NULL, *model = NULL, *phase = "decode", *svg = NULL;
    int batch[MAX_BATCH] = {1, 8, 32, 128, 512}, nb = 5;
    int64_t ctx = 4096;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_flag(argv, i, "--help")) {
            usage();
            return 0;
        } else if (dsk_cli_flag(argv, i, "--json")) json = 1;
        else if (dsk_cli_opt(argc, argv, &i, "--gpus", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpus expects a comma-separated list (dsk gpus lists them)");
            gpus = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--model", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--model expects a model name (deepseek-v3)");
            model = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--phase", &v, &err)) {
            if (err || (strcmp(v, "decode") && strcmp(v, "prefill")))
                return dsk_cli_usage_error(cmd, "--phase expects decode or prefill");
            phase = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--batch", &v, &err)) {
            if (err || (nb = parse_list_int(v, batch, MAX_BATCH)) < 1)
                return dsk_cli_usage_error(cmd, "--batch expects up to %d comma-separated sizes in 1..%d, got '%s'",
                                           MAX_BATCH, 1 << 20, v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--ctx", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &ctx) || ctx < 1 || ctx > (1 << 20))
                return dsk_cli_usage_error(cmd, "--ctx expects a context length in 1..%d, got '%s'", 1 << 20, v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--svg", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--svg expects a file name");
            svg = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--gpus-file", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpus-file expects a file name");
            dsk_status s = dsk_gpu_load_file(v);
            if (s) return dsk_cli_fail(cmd, s);
        } else {
            return dsk_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
        }
    }
    if (!gpus) return dsk_cli_usage_error(cmd, "--gpus is required (e.g. --gpus h20,h100)");
    if (!model) return dsk_cli_usage_error(cmd, "--model is required (deepseek-v3)");
    for (int j = 1; j < nb; j++)
        if (batch[j] <= batch[j - 1]) return dsk_cli_usage_error(cmd, "--batch sizes must increase");
    const dsk_gpu *g[MAX_GPUS];
    int ng = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", gpus);
    for (char *sv, *w = strtok_r(list, ",", &sv); w; w = strtok_r(NULL, ",", &sv)) {
        if (ng == MAX_GPUS) return dsk_cli_usage_error(cmd, "--gpus takes at most %d GPUs", MAX_GPUS);
        dsk_status s = dsk_gpu_find(w, &g[ng]);
        if (s) return dsk_cli_fail(cmd, s);
        ng++;
    }
    if (!ng) return dsk_cli_usage_error(cmd, "--gpus is empty");
    dsk_step_phase ph = !strcmp(phase, "decode") ? DSK_PHASE_DECODE : DSK_PHASE_PREFILL;
    dsk_step_point (*pts)[MAX_BATCH] = calloc(MAX_GPUS, sizeof *pts);
    if (!pts) return dsk_cli_usage_error(cmd, "out of memory");
    int cbatch[2 * MAX_GPUS] = {0}, rc = 0;
    for (int i = 0; i < ng && !rc; i++) {
        for (int j = 0; j < nb && !rc; j++) {
            dsk_status s = dsk_tune_step(g[i], model, ph, batch[j], (int)ctx, &pts[i][j]);
            if (s) rc = dsk_cli_fail(cmd, s);
        }
        if (!rc && !json) {
            dsk_status s = compute_batches(g[i], model, ph, (int)ctx, &cbatch[2 * i], &cbatch[2 * i + 1]);
            if (s) rc = dsk_cli_fail(cmd, s);
        }
    }
    if (!rc && svg) {
        FILE *f = fopen(svg, "w");
        if (!f) {
            fprintf(stderr, "dsk compare: cannot write '%s'\n", svg);
            rc = 1;
        } else {
            write_svg(f, model, phase, (int)ctx, ng, g, nb, batch, pts);
            if (fclose(f)) {
                fprintf(stderr, "dsk compare: error writing '%s'\n", svg);
                rc = 1;
            }
        }
    }
    if (!rc) {
        if (json) print_json(model, phase, (int)ctx, ng, g, nb, pts);
        else print_text(model, phase, (int)ctx, ng, g, nb, batch, pts, cbatch);
    }
    free(pts);
    return rc;
}
