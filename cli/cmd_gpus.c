/* cli/cmd_gpus.c: `dsk gpus`: the GPU table the tuner uses, with each number's source. */
#include <string.h>
#include "cli.h"
#include "dsk/tune.h"

static void usage(void)
{
    printf("usage: dsk gpus [GPU] [--sources] [--dump] [--json] [--gpus-file FILE]\n"
           "  The GPU table (dense peaks; GeForce at FP32-accumulate rates) and the model's\n"
           "  calibration. GPU: one GPU with every number and its source.\n"
           "  --sources    every GPU, every number with its source tag (gpu_specs.md tags)\n"
           "  --dump       the table in the --gpus-file format (start a file of your own from it)\n"
           "  --json       machine-readable: {\"gpus\": [{\"name\", ..., \"sources\": {...}}]}\n"
           "  --gpus-file  add or override GPUs from FILE (format: docs/MODEL.md)\n");
}

typedef struct field { const char *key, *unit; size_t off; } field;
#define F(k, u) {#k, u, offsetof(dsk_gpu, k)}
static const field fields[] = {
    F(sms, "SMs/CUs"), F(clock_mhz, "MHz"), F(fp8_tflops, "TFLOPS"), F(bf16_tflops, "TFLOPS"),
    F(fp32_tflops, "TFLOPS"), F(mem_gb, "GB"), F(mem_gbps, "GB/s"), F(l2_mb, "MB"),
    F(smem_sm_kb, "KiB"), F(smem_block_kb, "KiB"), F(regs_sm, "regs"), F(threads_sm, "threads"),
    F(threads_block, "threads"), F(blocks_sm, "blocks"), F(link_gbps, "GB/s/dir"), F(cal_gemm_fp8, "of FP8 peak"),
    F(cal_gemm_bf16, "of BF16 peak"), F(cal_attn, "of BF16 peak"), F(cal_mla, "of BF16 peak"), F(cal_mem, "of GB/s"),
    F(l2_usable, "of L2"), F(mem_latency_ns, "ns"), F(launch_us, "us"), F(band, "+-"),
};
#undef F
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static const dsk_gpu_num *num(const dsk_gpu *g, int i)
{
    return (const dsk_gpu_num *)((const char *)g + fields[i].off);
}

static void print_one(const dsk_gpu *g)
{
    printf("%s: %s (%s, %s)%s%s\n", g->name, g->description, g->vendor, g->arch,
           g->aliases[0] ? "  aliases: " : "", g->aliases);
    for (int i = 0; i < N_FIELDS; i++)
        printf("  %-15s %10g %-13s [%s]\n", fields[i].key, num(g, i)->v, fields[i].unit, num(g, i)->src);
}

static void print_json(void)
{
    printf("{\"gpus\": [");
    for (int i = 0; i < dsk_gpu_count(); i++) {
        const dsk_gpu *g = dsk_gpu_at(i);
        printf("%s\n  {\"name\": ", i ? "," : "");
        dsk_cli_json_str(stdout, g->name);
        printf(", \"description\": ");
        dsk_cli_json_str(stdout, g->description);
        printf(", \"vendor\": ");
        dsk_cli_json_str(stdout, g->vendor);
        printf(", \"arch\": ");
        dsk_cli_json_str(stdout, g->arch);
        for (int f = 0; f < N_FIELDS; f++) printf(", \"%s\": %.10g", fields[f].key, num(g, f)->v);
        printf(", \"sources\": {");
        for (int f = 0; f < N_FIELDS; f++) {
            printf("%s\"%s\": ", f ? ", " : "", fields[f].key);
            dsk_cli_json_str(stdout, num(g, f)->src);
        }
        printf("}}");
    }
    printf("\n]}\n");
}

int dsk_cmd_gpus(int argc, char **argv)
{
    const char *cmd = "gpus", *one = NULL;
    int sources = 0, dump = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_flag(argv, i, "--help")) {
            usage();
            return 0;
        } else if (dsk_cli_flag(argv, i, "--sources")) sources = 1;
        else if (dsk_cli_flag(argv, i, "--dump")) dump = 1;
        else if (dsk_cli_flag(argv, i, "--json")) json = 1;
        else if (dsk_cli_opt(argc, argv, &i, "--gpus-file", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--gpus-file expects a file name");
            dsk_status s = dsk_gpu_load_file(v);
            if (s) return dsk_cli_fail(cmd, s);
        } else if (argv[i][0] != '-' && !one) one = argv[i];
        else return dsk_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
    }
    if (dump) {
        fputs(dsk_gpu_builtin_text(), stdout);
        return 0;
    }
    if (json) {
        print_json();
        return 0;
    }
    if (one) {
        const dsk_gpu *g;
        dsk_status s = dsk_gpu_find(one, &g);
        if (s) return dsk_cli_fail(cmd, s);
        print_one(g);
        return 0;
    }
    if (sources) {
        for (int i = 0; i < dsk_gpu_count(); i++) {
            if (i) printf("\n");
            print_one(dsk_gpu_at(i));
        }
        return 0;
    }
    printf("%-7s %-7s %4s %5s %7s %7s %6s %4s %5s %4s %9s %5s %5s  %s\n", "gpu", "arch", "SMs", "MHz",
           "FP8", "BF16", "FP32", "GB", "GB/s", "L2", "smem SM/B", "thr", "link", "calibration fp8/mem");
    printf("%-7s %-7s %4s %5s %7s %7s %6s %4s %5s %4s %9s %5s %5s\n", "", "", "", "", "TFLOPS", "TFLOPS",
           "TFLOPS", "", "", "MB", "KiB", "/SM", "GB/s");
    for (int i = 0; i < dsk_gpu_count(); i++) {
        const dsk_gpu *g = dsk_gpu_at(i);
        char smem[48];
        snprintf(smem, sizeof smem, "%g/%g", g->smem_sm_kb.v, g->smem_block_kb.v);
        printf("%-7s %-7s %4g %5g %7g %7g %6g %4g %5g %4g %9s %5g %5g  %.2f/%.2f\n", g->name, g->arch,
               g->sms.v, g->clock_mhz.v, g->fp8_tflops.v, g->bf16_tflops.v, g->fp32_tflops.v, g->mem_gb.v,
               g->mem_gbps.v, g->l2_mb.v, smem, g->threads_sm.v, g->link_gbps.v, g->cal_gemm_fp8.v,
               g->cal_mem.v);
    }
    printf("\nDense peaks (GeForce at FP32-accumulate rates); link = scale-up bandwidth per direction.\n"
           "Every number has a source: dsk gpus GPU, or dsk gpus --sources (tags of gpu_specs.md;\n"
           "[A: ...] marks an assumption of the model, [D: ...] a derived value).\n");
    return 0;
}
