/* cli/cmd_bench.c: `dsk bench [--filter REGEX] [--json] [--all] [-- GOOGLE-BENCHMARK-ARGS]`:
 * runs the dsk_bench binary that sits next to the dsk binary (Google Benchmark; oneDNN as
 * the peer). Without --filter it runs the default subset that dsk_bench picks (kept
 * affordable on a small machine); --all runs every benchmark. --json prints Google
 * Benchmark's JSON on stdout. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int find_bench(char *path, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = '\0';
    if ((size_t)snprintf(path, len, "%s/dsk_bench", self) >= len) return -1;
    return access(path, X_OK);
}

int dsk_cmd_bench(int argc, char **argv)
{
    const char *filter = NULL;
    int json = 0, all = 0, extra = argc;
    for (int i = 1; i < argc; i++) {
        int err = 0;
        if (!strcmp(argv[i], "--")) {
            extra = i + 1;
            break;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: dsk bench [--filter REGEX] [--json] [--all] [-- GOOGLE-BENCHMARK-ARGS]\n"
                   "  Runs dsk_bench (next to dsk): dsk's CPU kernels against oneDNN in the same run.\n"
                   "  --filter  benchmarks whose name matches REGEX, e.g. 'gemm/.*/M=1/'\n"
                   "  --all     every benchmark (the full shape lists; long on a small machine)\n"
                   "  --json    Google Benchmark's JSON on stdout\n"
                   "  env: DSK_BENCH_REPS (repetitions, default 3; medians reported),\n"
                   "       DSK_BENCH_MIN_TIME (seconds per repetition, default 0.05)\n");
            return 0;
        }
        if (dsk_cli_opt(argc, argv, &i, "--filter", &filter, &err)) {
            if (err) return dsk_cli_usage_error("bench", "--filter needs a regular expression");
        } else if (dsk_cli_flag(argv, i, "--json")) {
            json = 1;
        } else if (dsk_cli_flag(argv, i, "--all")) {
            all = 1;
        } else {
            return dsk_cli_usage_error("bench", "unknown option '%s' (see dsk bench --help)", argv[i]);
        }
    }
    char path[PATH_MAX];
    if (find_bench(path, sizeof path) != 0) {
        fprintf(stderr, "dsk bench: dsk_bench not found next to the dsk binary (%s); it is built when Google "
                        "Benchmark (libbenchmark-dev) is installed\n", path);
        return 1;
    }
    char fbuf[1024], *args[64];
    int n = 0;
    args[n++] = path;
    if (filter) {
        snprintf(fbuf, sizeof fbuf, "--benchmark_filter=%s", filter);
        args[n++] = fbuf;
    } else if (all) {
        args[n++] = "--all";
    }
    if (json) args[n++] = "--benchmark_format=json";
    for (int i = extra; i < argc && n < 63; i++) args[n++] = argv[i];
    args[n] = NULL;
    fflush(stdout);
    execv(path, args);
    fprintf(stderr, "dsk bench: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}
