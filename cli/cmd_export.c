/* cli/cmd_export.c: `dsk export`: the tuned kernels of a model for another engine
 * (PTX, cubin when ptxas is present, manifest.json; docs/EXPORT.md). */
#include <string.h>
#include "cli.h"
#include "dsk/tune.h"

static void usage(void)
{
    printf("usage: dsk export --gpu GPU --model deepseek-v3 --out DIR [--phase decode|prefill]\n"
           "                  [--batch B] [--ctx C] [--gpus-file FILE]\n"
           "                  [--persistent 0|1] [--tma-store 0|1] [--cluster 1|2]\n"
           "  For every FP8 GEMM shape of one forward step (M = batch for decode, batch x ctx\n"
           "  for prefill; default decode, batch 128), the tuner's choice (by PREDICTED time):\n"
           "  DIR/<kernel>.ptx, DIR/<kernel>.cubin when ptxas is present, and DIR/manifest.json\n"
           "  with entry names, parameter layout, grid/block/cluster, shared memory, tensor maps,\n"
           "  tile and predicted time (format: docs/EXPORT.md). Load with cuModuleLoadData.\n"
           "  --persistent, --tma-store, --cluster: only kernels with that option (the best of\n"
           "  them); default: whatever the tuner predicts fastest.\n");
}

int dsk_cmd_export(int argc, char **argv)
{
    const char *cmd = "export", *gpu = NULL, *model = NULL, *out = NULL, *phase = "decode";
    int64_t batch = 128, ctx = 4096, x;
    dsk_tune_export_opts opts = {-1, -1, -1};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_flag(argv, i, "--help")) {
            usage();
            return 0;
        } else if (dsk_cli_opt(argc, argv, &i, "--gpu", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpu expects a GPU name (dsk gpus lists them)");
            gpu = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--model", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--model expects a model name (deepseek-v3)");
            model = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--out", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--out expects a directory");
            out = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--phase", &v, &err)) {
            if (err || (strcmp(v, "decode") && strcmp(v, "prefill")))
                return dsk_cli_usage_error(cmd, "--phase expects decode or prefill");
            phase = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--batch", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &batch) || batch < 1 || batch > (1 << 20))
                return dsk_cli_usage_error(cmd, "--batch expects 1..%d, got '%s'", 1 << 20, v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--ctx", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &ctx) || ctx < 1 || ctx > (1 << 20))
                return dsk_cli_usage_error(cmd, "--ctx expects 1..%d, got '%s'", 1 << 20, v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--persistent", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &x) || x < 0 || x > 1)
                return dsk_cli_usage_error(cmd, "--persistent expects 0 or 1, got '%s'", v ? v : "");
            opts.persistent = (int)x;
        } else if (dsk_cli_opt(argc, argv, &i, "--tma-store", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &x) || x < 0 || x > 1)
                return dsk_cli_usage_error(cmd, "--tma-store expects 0 or 1, got '%s'", v ? v : "");
            opts.tma_store = (int)x;
        } else if (dsk_cli_opt(argc, argv, &i, "--cluster", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &x) || x < 1 || x > 2)
                return dsk_cli_usage_error(cmd, "--cluster expects 1 or 2, got '%s'", v ? v : "");
            opts.cluster = (int)x;
        } else if (dsk_cli_opt(argc, argv, &i, "--gpus-file", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpus-file expects a file name");
            dsk_status s = dsk_gpu_load_file(v);
            if (s) return dsk_cli_fail(cmd, s);
        } else {
            return dsk_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
        }
    }
    if (!gpu || !model || !out) return dsk_cli_usage_error(cmd, "--gpu, --model and --out are required");
    const dsk_gpu *g;
    dsk_status s = dsk_gpu_find(gpu, &g);
    if (s) return dsk_cli_fail(cmd, s);
    int nk = 0, nc = 0;
    s = dsk_tune_export_opts_run(g, model, !strcmp(phase, "decode") ? DSK_PHASE_DECODE : DSK_PHASE_PREFILL,
                                 (int)batch, (int)ctx, out, &opts, &nk, &nc);
    if (s) return dsk_cli_fail(cmd, s);
    printf("dsk export: %d kernels for %s on %s (%s, batch %lld, ctx %lld) in %s: manifest.json, %d .ptx, %d .cubin%s\n",
           nk, model, g->name, phase, (long long)batch, (long long)ctx, out, nk, nc,
           nc < nk ? " (cubins need ptxas: not found or it failed; see *.cubin.log)" : "");
    printf("Tiles chosen by PREDICTED time (analytic model); predicted_us in the manifest is not a measurement.\n");
    return 0;
}
