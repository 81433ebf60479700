/* cli/cmd_gemm.c: `dsk gemm`: one FP8 block-scaled GEMM on a chosen backend, with
 * --check against the reference and --bench timing (median of N runs after a warm-up).
 *
 * Inputs: A [M, K] and B [N, K] drawn from N(0, 1) (seeded), quantized the DeepSeek-V3
 * way (1x128 activation groups, 128x128 weight blocks). --check reports
 *   diff         DESIGN.md's metric between the backend's D and the reference's D
 *                on the same FP8 inputs (tolerance 1e-4 for bf16 output, 1e-6 for f32);
 *   diff_unquant the same metric against the product of the unquantized f32 inputs
 *                (informational: the FP8 quantization error itself, ~1e-3 is typical). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "tests/harness/harness.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* Copies a host tensor to a new tensor on dev (or returns a view for host-memory devices). */
static dsk_status to_device(dsk_device *dev, const dsk_tensor *h, dsk_tensor *out)
{
    if (dsk_device_get_props(dev)->host_memory) {
        *out = *h;
        return DSK_OK;
    }
    dsk_status s = dsk_tensor_alloc(dev, h->dtype, h->rank, h->shape, out);
    if (s == DSK_OK) s = dsk_device_upload(dev, out->data, h->data, dsk_tensor_nbytes(h));
    return s;
}

static void usage(void)
{
    printf("usage: dsk gemm --m M --n N --k K [--backend NAME] [--out bf16|f32] [--check] [--bench N]\n"
           "                [--seed S] [--json]\n"
           "  D[M,N] = A[M,K] . B[N,K]^T in FP8 e4m3 with 1x128 (A) and 128x128 (B) f32 scales.\n"
           "  --backend  cpu (default), emu:h800, emu:h20, emu:4090, cuda:0, ...\n"
           "  --check    compare with the reference; exit 3 past the tolerance\n"
           "  --bench N  median time of N runs after one warm-up run\n");
}

int dsk_cmd_gemm(int argc, char **argv)
{
    const char *cmd = "gemm";
    int64_t M = -1, N = -1, K = -1, bench = 0, seed = 1;
    const char *backend = "cpu", *outdt = "bf16";
    int check = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int err = 0;
        if (dsk_cli_flag(argv, i, "--help")) {
            usage();
            return 0;
        } else if (dsk_cli_flag(argv, i, "--check")) check = 1;
        else if (dsk_cli_flag(argv, i, "--json")) json = 1;
        else if (dsk_cli_opt(argc, argv, &i, "--m", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &M) || M < 1) return dsk_cli_usage_error(cmd, "--m expects a positive integer, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--n", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &N) || N < 1) return dsk_cli_usage_error(cmd, "--n expects a positive integer, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--k", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &K) || K < 1) return dsk_cli_usage_error(cmd, "--k expects a positive integer, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--bench", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &bench) || bench < 1) return dsk_cli_usage_error(cmd, "--bench expects a positive count, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--seed", &v, &err)) {
            if (err || dsk_cli_parse_i64(v, &seed)) return dsk_cli_usage_error(cmd, "--seed expects an integer, got '%s'", v ? v : "");
        } else if (dsk_cli_opt(argc, argv, &i, "--backend", &v, &err)) {
            if (err) return dsk_cli_usage_error(cmd, "--backend expects a device name");
            backend = v;
        } else if (dsk_cli_opt(argc, argv, &i, "--out", &v, &err)) {
            if (err || (strcmp(v, "bf16") && strcmp(v, "f32"))) return dsk_cli_usage_error(cmd, "--out expects bf16 or f32");
            outdt = v;
        } else return dsk_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    }
    if (M < 0 || N < 0 || K < 0) return dsk_cli_usage_error(cmd, "--m, --n and --k are required");
    if ((double)M * K > 4e9 || (double)N * K > 4e9 || (double)M * N > 4e9)
        return dsk_cli_usage_error(cmd, "shape %lldx%lldx%lld is too large for this command", (long long)M, (long long)N, (long long)K);

    dsk_device *dev;
    dsk_status s = dsk_device_open(backend, &dev);
    if (s != DSK_OK) return dsk_cli_fail(cmd, s);
    dsk_dtype dt = !strcmp(outdt, "f32") ? DSK_F32 : DSK_BF16;
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;

    dsk_rng r;
    dsk_rng_seed(&r, (uint64_t)seed);
    dsk_tensor *af = dsk_t_new2(DSK_F32, M, K), *bf = dsk_t_new2(DSK_F32, N, K);
    dsk_t_fill_normal(af, &r, 1.0);
    dsk_t_fill_normal(bf, &r, 1.0);
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *as = dsk_t_new2(DSK_F32, M, KB);
    dsk_tensor *b = dsk_t_new2(DSK_E4M3, N, K), *bs = dsk_t_new2(DSK_F32, NB, KB);
    dsk_tensor *d = dsk_t_new2(dt, M, N), *dref = dsk_t_new2(DSK_F32, M, N);
    if ((s = dsk_quant_act_fp8_ref(af, a, as)) != DSK_OK || (s = dsk_quant_weight_fp8(bf, b, bs)) != DSK_OK)
        return dsk_cli_fail(cmd, s);

    dsk_tensor da, das, db, dbs, dd;
    if ((s = to_device(dev, a, &da)) || (s = to_device(dev, as, &das)) || (s = to_device(dev, b, &db)) ||
        (s = to_device(dev, bs, &dbs)))
        return dsk_cli_fail(cmd, s);
    dsk_t_poison(d);
    if ((s = to_device(dev, d, &dd))) return dsk_cli_fail(cmd, s);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, &da, &das, &db, &dbs, &dd, NULL, NULL};

    double t0 = now_us();
    s = dsk_gemm_fp8(dev, &g);
    if (s == DSK_OK) s = dsk_device_sync(dev);
    double first_us = now_us() - t0;
    if (s != DSK_OK) return dsk_cli_fail(cmd, s);
    char kernel[96];
    snprintf(kernel, sizeof kernel, "%s", dsk_device_last_kernel(dev));

    double median_us = -1;
    if (bench > 0) {
        double *ts = malloc(sizeof(double) * (size_t)bench);
        for (int64_t i = 0; i < bench && s == DSK_OK; i++) {
            t0 = now_us();
            s = dsk_gemm_fp8(dev, &g);
            if (s == DSK_OK) s = dsk_device_sync(dev);
            ts[i] = now_us() - t0;
        }
        if (s != DSK_OK) return dsk_cli_fail(cmd, s);
        qsort(ts, (size_t)bench, sizeof(double), cmp_double);
        median_us = bench % 2 ? ts[bench / 2] : 0.5 * (ts[bench / 2 - 1] + ts[bench / 2]);
        free(ts);
    }
    if (!dsk_device_get_props(dev)->host_memory &&
        (s = dsk_device_download(dev, d->data, dd.data, dsk_tensor_nbytes(d))) != DSK_OK)
        return dsk_cli_fail(cmd, s);

    double tol = dt == DSK_BF16 ? 1e-4 : 1e-6;
    dsk_t_cmp c = {0}, cu = {0};
    int pass = 1;
    if (check) {
        dsk_gemm_fp8_args gr = {DSK_GEMM_DENSE, a, as, b, bs, dref, NULL, NULL};
        if ((s = dsk_gemm_fp8_ref(&gr)) != DSK_OK) return dsk_cli_fail(cmd, s);
        c = dsk_t_compare(d, dref, 1e-2);
        /* the unquantized product in f64 */
        double *ex = malloc(sizeof(double) * (size_t)(M * N)), *got = malloc(sizeof(double) * (size_t)(M * N));
        const float *A = af->data, *B = bf->data;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) acc += (double)A[m * K + k] * B[n * K + k];
                ex[m * N + n] = acc;
                got[m * N + n] = dsk_t_get(d, m * N + n);
            }
        cu = dsk_t_compare_f64(got, ex, M * N, 1e-2);
        free(ex);
        free(got);
        pass = c.nonfinite == 0 && c.diff <= tol;
    }
    /* on emu: devices the time is the emulator's CPU time, not a GPU's */
    int emulated = !strcmp(dsk_device_get_props(dev)->backend, "emu");
    double flops = 2.0 * M * N * K, bytes = (double)M * K + (double)N * K + (double)M * N * dsk_dtype_size(dt);
    if (json) {
        printf("{\"backend\": ");
        dsk_cli_json_str(stdout, dsk_device_get_props(dev)->name);
        printf(", \"kernel\": ");
        dsk_cli_json_str(stdout, kernel);
        printf(", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"out\": \"%s\", \"seed\": %lld", (long long)M, (long long)N,
               (long long)K, outdt, (long long)seed);
        if (check)
            printf(", \"diff\": %.3e, \"max_rel_err\": %.3e, \"diff_unquant\": %.3e, \"tolerance\": %.0e, \"check\": \"%s\"",
                   c.diff, c.max_rel_err, cu.diff, tol, pass ? "pass" : "fail");
        else
            printf(", \"diff\": null, \"max_rel_err\": null");
        if (median_us >= 0)
            printf(", \"median_us\": %.2f, \"tflops\": %.4f, \"gbps\": %.3f", median_us, flops / median_us * 1e-6,
                   bytes / median_us * 1e-3);
        else printf(", \"median_us\": null, \"first_run_us\": %.2f", first_us);
        printf(", \"timing\": \"%s\"", emulated ? "emulator wall clock on the CPU, not a GPU measurement"
                                                  : "wall clock on the device");
        printf("}\n");
    } else {
        printf("gemm_fp8 %lldx%lldx%lld on %s, kernel %s, out %s\n", (long long)M, (long long)N, (long long)K,
               dsk_device_get_props(dev)->name, kernel, outdt);
        if (check)
            printf("  check vs reference: diff %.3e (tolerance %.0e), max_rel_err %.3e  %s\n"
                   "  vs unquantized f32 product: diff %.3e (FP8 quantization error)\n",
                   c.diff, tol, c.max_rel_err, pass ? "PASS" : "FAIL", cu.diff);
        if (median_us >= 0 && emulated)
            printf("  emulator wall clock: median %.1f us over %lld runs (CPU time of the emulation, not a GPU "
                   "measurement; see dsk tune for predicted GPU time)\n", median_us, (long long)bench);
        else if (median_us >= 0)
            printf("  measured: median %.1f us over %lld runs, %.2f GFLOP/s, %.2f GB/s\n", median_us, (long long)bench,
                   flops / median_us * 1e-3, bytes / median_us * 1e-3);
        else printf("  first run %.1f us (use --bench N for a median)\n", first_us);
    }
    dsk_t_free_all();
    dsk_device_close(dev);
    return pass ? 0 : 3;
}
