/* cli/cmd_ptx.c: `dsk ptx gemm_fp8 ...`: prints the PTX an emitter writes for one tile
 * configuration (the module opens with a comment naming generator and parameters), or with
 * --plan the emitter's resource plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "dsk/ptx.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dsk ptx gemm_fp8 --arch sm_90a|sm_89 --tile MxN [--stages N] [--cluster 1|2]\n"
               "                        [--grouped contiguous|masked] [--swap-ab] [--persistent]\n"
               "                        [--tma-store]\n"
               "                        [--plan] [-o FILE]\n"
               "  prints the PTX module of one FP8 GEMM kernel (or, with --plan, its resource plan)\n");
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    int64_t x;
    if (dsk_cli_parse_i64(v, &x) || x < lo || x > hi)
        return dsk_cli_usage_error("ptx", "%s '%s': expected an integer in [%d, %d]", opt, v, lo, hi);
    *out = (int)x;
    return 0;
}

int dsk_cmd_ptx(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "gemm_fp8"))
        return dsk_cli_usage_error("ptx", "kernel '%s' unknown, expected gemm_fp8", argv[1]);
    const char *arch_s = NULL, *tile_s = NULL, *out_path = NULL;
    int stages = 0, cluster = 1, swap = 0, persistent = 0, tma_store = 0, plan_only = 0;
    dsk_gemm_layout layout = DSK_GEMM_DENSE;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_opt(argc, argv, &i, "--arch", &v, &err)) {
            arch_s = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--tile", &v, &err)) {
            tile_s = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--stages", &v, &err)) {
            if (!err && parse_int("--stages", v, 1, 64, &stages))
                return 2;
        } else if (dsk_cli_opt(argc, argv, &i, "--cluster", &v, &err)) {
            if (!err && parse_int("--cluster", v, 1, 2, &cluster))
                return 2;
        } else if (dsk_cli_opt(argc, argv, &i, "--grouped", &v, &err)) {
            if (err)
                ;
            else if (!strcmp(v, "contiguous"))
                layout = DSK_GEMM_CONTIGUOUS;
            else if (!strcmp(v, "masked"))
                layout = DSK_GEMM_MASKED;
            else
                return dsk_cli_usage_error("ptx", "--grouped '%s': expected contiguous or masked", v);
        } else if (dsk_cli_opt(argc, argv, &i, "-o", &v, &err)) {
            out_path = v;
        } else if (dsk_cli_flag(argv, i, "--swap-ab")) {
            swap = 1;
        } else if (dsk_cli_flag(argv, i, "--persistent")) {
            persistent = 1;
        } else if (dsk_cli_flag(argv, i, "--tma-store")) {
            tma_store = 1;
        } else if (dsk_cli_flag(argv, i, "--plan")) {
            plan_only = 1;
        } else if (dsk_cli_flag(argv, i, "--help")) {
            usage(stdout);
            return 0;
        } else {
            return dsk_cli_usage_error("ptx", "unknown option '%s' (dsk ptx --help)", argv[i]);
        }
        if (err)
            return dsk_cli_usage_error("ptx", "%s needs a value", argv[i]);
    }
    if (!arch_s || !tile_s)
        return dsk_cli_usage_error("ptx", "--arch and --tile are required (dsk ptx --help)");
    dsk_arch arch;
    dsk_status s = dsk_ptx_arch_parse(arch_s, &arch);
    if (s)
        return dsk_cli_fail("ptx", s);
    dsk_gemm_tile t = dsk_gemm_tile_default(arch, 0, 0);
    if ((s = dsk_gemm_tile_parse(tile_s, &t)))
        return dsk_cli_fail("ptx", s);
    if (stages)
        t.stages = stages;
    t.cluster = cluster;
    t.layout = layout;
    t.swap_ab = swap;
    t.persistent = persistent;
    t.tma_store = tma_store;
    char name[96];
    dsk_gemm_tile_name(&t, name, sizeof name);
    if (plan_only) {
        dsk_gemm_plan p;
        if ((s = dsk_ptx_gemm_plan(&t, 0, &p)))
            return dsk_cli_fail("ptx", s);
        printf("%s: %s%s%s\n", name, p.legal ? "legal" : "illegal", p.legal ? "" : ": ", p.legal ? "" : p.reason);
        printf("  threads %d  smem %zu (static %zu, dynamic %zu, %zu per stage)  registers ~%d (cap %d)\n",
               p.threads, p.smem_bytes, p.smem_static_bytes, p.smem_dynamic_bytes, p.stage_bytes,
               p.regs_per_thread, p.max_regs);
        if (t.tma_store && p.legal)
            printf("  TMA-store staging: %zu bytes (rows of %d) %s at offset %zu of the ring base\n", p.smem_d_bytes,
                   p.d_pitch, p.d_in_ring ? "reusing the ring" : "dedicated", p.d_offset);
        return p.legal ? 0 : 1;
    }
    char *ptx = NULL, entry[96];
    if ((s = dsk_ptx_gemm_emit(&t, &ptx, entry, sizeof entry)))
        return dsk_cli_fail("ptx", s);
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    if (!f) {
        free(ptx);
        fprintf(stderr, "dsk ptx: cannot write '%s'\n", out_path);
        return 1;
    }
    fputs(ptx, f);
    int bad = ferror(f);
    if (out_path)
        bad |= fclose(f) != 0;
    free(ptx);
    if (bad) {
        fprintf(stderr, "dsk ptx: writing '%s' failed\n", out_path ? out_path : "stdout");
        return 1;
    }
    return 0;
}
