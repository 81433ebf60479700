/* cli/cmd_emu.c: `dsk emu`: run a PTX kernel by hand on the emulator, or its self tests.
 *
 *   dsk emu run FILE.ptx --kernel NAME --grid X,Y,Z --block X,Y,Z [--cluster X,Y,Z]
 *                        [--dynamic-smem B] [--gpu h800] [--arg SPEC]... [--trace THREAD]
 *                        [--stats] [--seed S] [--fp8-acc ideal|hopper] [--dump]
 *   dsk emu selftest
 *
 * --arg gives the kernel parameters in order: i32:V, u32:V, i64:V, u64:V, f32:V, f64:V,
 * or buf:BYTES (a zeroed emulator allocation; its address is passed), rand:BYTES (random
 * bytes). --dump prints the first bytes of each buffer after the run. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "dsk/emu.h"

static void usage(void)
{
    printf("usage: dsk emu run FILE.ptx --kernel NAME --grid X,Y,Z --block X,Y,Z [--cluster X,Y,Z]\n"
           "                   [--dynamic-smem BYTES] [--gpu h800|h20|h100|h200|4090|l20|a100]\n"
           "                   [--arg SPEC]... [--trace THREAD] [--stats] [--seed S]\n"
           "                   [--fp8-acc ideal|hopper] [--dump]\n"
           "       dsk emu selftest\n"
           "  --arg SPEC   one per kernel parameter, in order: i32:V u32:V i64:V u64:V f32:V f64:V,\n"
           "               buf:BYTES (zeroed emulator memory, its address is passed), rand:BYTES\n"
           "  --trace T    print every instruction thread T (global linear id) executes\n"
           "  --stats      executed thread-instructions and thread-instructions per second\n"
           "  --seed S     seeded random warp interleaving (0: round robin)\n");
}

static int parse_dim3(const char *s, unsigned d[3])
{
    d[0] = d[1] = d[2] = 1;
    char *end;
    for (int i = 0; i < 3; i++) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > (1L << 31)) return -1;
        d[i] = (unsigned)v;
        if (*end == 0) return 0;
        if (*end != ',') return -1;
        s = end + 1;
    }
    return *end ? -1 : 0;
}

typedef struct arg_val {
    uint8_t bytes[8];
    size_t size;        /* bytes the spec provides: 4 or 8 */
    void *buf;
    size_t buf_bytes;
} arg_val;

static int parse_arg(const char *spec, arg_val *a)
{
    memset(a, 0, sizeof *a);
    const char *colon = strchr(spec, ':');
    if (!colon) return -1;
    size_t n = (size_t)(colon - spec);
    const char *v = colon + 1;
    char *end;
    if (!strncmp(spec, "buf", n) || !strncmp(spec, "rand", n)) {
        long long b = strtoll(v, &end, 10);
        if (*end || b <= 0) return -1;
        if (dsk_emu_alloc((size_t)b, &a->buf) != DSK_OK) return -1;
        a->buf_bytes = (size_t)b;
        if (spec[0] == 'r') {
            uint64_t x = 0x9E3779B97F4A7C15ull;
            for (long long i = 0; i < b; i++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                ((uint8_t *)a->buf)[i] = (uint8_t)x;
            }
        }
        memcpy(a->bytes, &a->buf, sizeof(void *));
        a->size = sizeof(void *);
        return 0;
    }
    if (!strncmp(spec, "f32", n) || !strncmp(spec, "f64", n)) {
        double d = strtod(v, &end);
        if (*end) return -1;
        if (spec[1] == '3') { float f = (float)d; memcpy(a->bytes, &f, 4); a->size = 4; }
        else { memcpy(a->bytes, &d, 8); a->size = 8; }
        return 0;
    }
    if (!strncmp(spec, "i32", n) || !strncmp(spec, "u32", n) || !strncmp(spec, "i64", n) || !strncmp(spec, "u64", n)) {
        long long i = strtoll(v, &end, 0);
        if (*end) return -1;
        memcpy(a->bytes, &i, 8);  /* little endian: the low 4 bytes are the 32-bit value */
        a->size = spec[1] == '3' ? 4 : 8;
        return 0;
    }
    return -1;
}

static int cmd_run(int argc, char **argv)
{
    const char *cmd = "emu run";
    const char *file = NULL, *kernel = NULL, *gpu = "h800", *acc = "ideal";
    unsigned grid[3] = {0, 0, 0}, block[3] = {0, 0, 0}, cluster[3] = {0, 0, 0};
    int64_t dyn = 0, trace = -1, seed = 0;
    int stats = 0, dump = 0, nargs = 0;
    arg_val args[64];
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_opt(argc, argv, &i, "--kernel", &kernel, &err)) {
        } else if (dsk_cli_opt(argc, argv, &i, "--grid", &v, &err)) {
            if (!err && parse_dim3(v, grid)) return dsk_cli_usage_error(cmd, "--grid expects X[,Y[,Z]] >= 1, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--block", &v, &err)) {
            if (!err && parse_dim3(v, block)) return dsk_cli_usage_error(cmd, "--block expects X[,Y[,Z]] >= 1, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--cluster", &v, &err)) {
            if (!err && parse_dim3(v, cluster)) return dsk_cli_usage_error(cmd, "--cluster expects X[,Y[,Z]] >= 1, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--dynamic-smem", &v, &err)) {
            if (!err && (dsk_cli_parse_i64(v, &dyn) || dyn < 0)) return dsk_cli_usage_error(cmd, "--dynamic-smem expects bytes >= 0, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--trace", &v, &err)) {
            if (!err && (dsk_cli_parse_i64(v, &trace) || trace < 0)) return dsk_cli_usage_error(cmd, "--trace expects a thread id >= 0, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--seed", &v, &err)) {
            if (!err && (dsk_cli_parse_i64(v, &seed) || seed < 0)) return dsk_cli_usage_error(cmd, "--seed expects an integer >= 0, given '%s'", v);
        } else if (dsk_cli_opt(argc, argv, &i, "--gpu", &gpu, &err)) {
        } else if (dsk_cli_opt(argc, argv, &i, "--fp8-acc", &acc, &err)) {
            if (!err && strcmp(acc, "ideal") && strcmp(acc, "hopper")) return dsk_cli_usage_error(cmd, "--fp8-acc expects ideal or hopper, given '%s'", acc);
        } else if (dsk_cli_opt(argc, argv, &i, "--arg", &v, &err)) {
            if (!err) {
                if (nargs == 64) return dsk_cli_usage_error(cmd, "at most 64 --arg");
                if (parse_arg(v, &args[nargs])) return dsk_cli_usage_error(cmd, "bad --arg '%s' (i32:V u32:V i64:V u64:V f32:V f64:V buf:BYTES rand:BYTES)", v);
                nargs++;
            }
        } else if (dsk_cli_flag(argv, i, "--stats")) {
            stats = 1;
        } else if (dsk_cli_flag(argv, i, "--dump")) {
            dump = 1;
        } else if (dsk_cli_flag(argv, i, "--help") || dsk_cli_flag(argv, i, "-h")) {
            usage();
            return 0;
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            return dsk_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
        }
        if (err) return dsk_cli_usage_error(cmd, "%s needs a value", argv[i]);
    }
    if (!file) return dsk_cli_usage_error(cmd, "missing FILE.ptx");
    if (!kernel) return dsk_cli_usage_error(cmd, "missing --kernel NAME");
    if (!grid[0] || !block[0]) return dsk_cli_usage_error(cmd, "--grid and --block are required");
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "dsk emu run: cannot open %s\n", file);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(text);
        fprintf(stderr, "dsk emu run: cannot read %s\n", file);
        return 1;
    }
    text[n] = 0;
    fclose(f);
    dsk_emu_module *m = NULL;
    dsk_status s = dsk_emu_module_load(text, file, &m);
    free(text);
    if (s != DSK_OK) return dsk_cli_fail(cmd, s);
    int np = dsk_emu_kernel_param_count(m, kernel);
    if (np < 0) {
        fprintf(stderr, "dsk emu run: no kernel '%s' in %s; kernels:", kernel, file);
        for (int i = 0; dsk_emu_module_kernel_name(m, i); i++) fprintf(stderr, " %s", dsk_emu_module_kernel_name(m, i));
        fprintf(stderr, "\n");
        dsk_emu_module_free(m);
        return 2;
    }
    if (np != nargs) {
        fprintf(stderr, "dsk emu run: kernel %s takes %d parameters (sizes:", kernel, np);
        for (int i = 0; i < np; i++) fprintf(stderr, " %zu", dsk_emu_kernel_param_size(m, kernel, i));
        fprintf(stderr, " bytes), %d --arg given\n", nargs);
        dsk_emu_module_free(m);
        return 2;
    }
    void *params[64];
    for (int i = 0; i < nargs; i++) {
        size_t want = dsk_emu_kernel_param_size(m, kernel, i);
        if (want != args[i].size) {
            fprintf(stderr, "dsk emu run: parameter %d of %s is %zu bytes, --arg %d gives %zu "
                    "(parameters other than 4/8-byte scalars and pointers, e.g. tensor maps, cannot be given here)\n",
                    i, kernel, want, i, args[i].size);
            dsk_emu_module_free(m);
            return 2;
        }
        params[i] = args[i].bytes;
    }
    dsk_emu_target tgt;
    if ((s = dsk_emu_target_for(gpu, &tgt, NULL)) != DSK_OK) {
        dsk_emu_module_free(m);
        return dsk_cli_fail(cmd, s);
    }
    dsk_emu_options opt = {strcmp(acc, "hopper") ? DSK_EMU_FP8_ACC_IDEAL : DSK_EMU_FP8_ACC_HOPPER, (uint64_t)seed,
                           (int)trace, stdout};
    dsk_emu_launch_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < 3; i++) {
        cfg.grid[i] = grid[i];
        cfg.block[i] = block[i];
        cfg.cluster[i] = cluster[i];
    }
    cfg.dynamic_smem = (size_t)dyn;
    dsk_emu_stats st;
    s = dsk_emu_launch(m, kernel, &cfg, np ? params : NULL, &tgt, &opt, &st);
    int rc = 0;
    if (s != DSK_OK) rc = dsk_cli_fail(cmd, s);
    else printf("kernel %s completed on emu:%s\n", kernel, gpu);
    if (stats)
        printf("stats: %llu thread-instructions (%llu warp-instructions) in %.3f s: %.3g thread-instructions/s\n",
               (unsigned long long)st.thread_instructions, (unsigned long long)st.warp_instructions, st.seconds,
               st.seconds > 0 ? (double)st.thread_instructions / st.seconds : 0.0);
    for (int i = 0; i < nargs; i++) {
        if (!args[i].buf) continue;
        if (dump) {
            printf("param %d (buffer of %zu bytes):", i, args[i].buf_bytes);
            for (size_t k = 0; k < args[i].buf_bytes && k < 64; k++) printf(" %02x", ((uint8_t *)args[i].buf)[k]);
            printf("\n");
        }
        dsk_emu_free(args[i].buf);
    }
    dsk_emu_module_free(m);
    return rc;
}

int dsk_cmd_emu(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "selftest")) {
        int passed = 0, failed = 0;
        dsk_status s = dsk_emu_selftest(stdout, &passed, &failed);
        printf("emu selftest: %d passed, %d failed\n", passed, failed);
        return s == DSK_OK && failed == 0 ? 0 : 1;
    }
    return dsk_cli_usage_error("emu", "unknown subcommand '%s' (run, selftest)", argv[1]);
}
