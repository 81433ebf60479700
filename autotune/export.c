/* autotune/export.c: `dsk export`: for every FP8 GEMM shape of a model's step, the tuned
 * kernel's PTX (and cubin when ptxas is present) plus manifest.json, which says how to
 * launch each kernel without dsk (docs/EXPORT.md is the format's reference).
 *
 * The launch contract written into the manifest is the kernels' own (ptx/gemm_fp8_host.c,
 * parameter list in ptx/gemm_fp8_internal.h, docs/KERNELS.md "Launch contract"): grid
 * (ceil(M/block_m), ceil(N/block_n), G for masked), or for persistent kernels
 * (min(tiles, SMs), 1, 1); block (plan threads); cluster (cluster, 1, 1); dynamic shared
 * memory from the plan; the tensor maps of A, B, a_scale and (TMA-store kernels) D. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "dsk/dsk.h"
#include "dsk_config.h"
#include "model_internal.h"
#include "ptx/gemm_fp8_internal.h"

/* The kernels' parameters in order (ptx/gemm_fp8_internal.h). */
static const struct { const char *name, *type, *meaning; } params[] = {
    {"a", "u64", "A [M, K] e4m3 (sm_90a: address of A's TMA tensor map)"},
    {"b", "u64", "B [G*N, K] e4m3 (sm_90a: address of B's TMA tensor map)"},
    {"sa", "u64", "a_scale f32, MN-major: (m, kb) at sa[kb * sa_ld + m] (sm_90a: address of its tensor map)"},
    {"sb", "u64", "b_scale f32: (nb, kb) at sb[nb * sb_n + kb * sb_k]"},
    {"d", "u64", "D [M, N] bf16 (or f32 when out_f32)"},
    {"idx", "u64", "m_indices i32 [M] (contiguous), masked_m i32 [G] (masked), else 0"},
    {"m", "u32", "rows of A (max_m for masked)"},
    {"n", "u32", "rows of B per group (N)"},
    {"k", "u32", "K (a multiple of 128)"},
    {"lda", "u32", "row stride of A in bytes (multiple of 16)"},
    {"ldb", "u32", "row stride of B in bytes (multiple of 16)"},
    {"ldd", "u32", "row stride of D in elements"},
    {"sa_ld", "u32", "a_scale's stride between k-blocks, in elements (M rounded up to 4)"},
    {"sb_n", "u32", "b_scale stride along N blocks, elements"},
    {"sb_k", "u32", "b_scale stride along K blocks, elements"},
    {"ga", "u64", "per-group byte stride of A (masked; sm_90a: row offset per group in A's map)"},
    {"gb", "u64", "per-group byte stride of B (grouped layouts)"},
    {"gsa", "u64", "per-group byte stride of a_scale (masked; sm_90a: row offset in its map)"},
    {"gsb", "u64", "per-group byte stride of b_scale (grouped layouts)"},
    {"gd", "u64", "per-group byte stride of D (masked)"},
    {"out_f32", "u32", "1: D is f32, 0: D is bf16"},
    {"tmap_d", "u64", "sm_90a _tmastore kernels with bf16 D: address of D's TMA tensor map (see tensor_maps); else 0"},
    {"groups", "u32", "G (masked), else 1 (persistent kernels count their tiles with it)"},
};
_Static_assert(sizeof params / sizeof params[0] == DSK_GEMM_NPARAMS,
               "the manifest's parameter list must match ptx/gemm_fp8_internal.h");

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static dsk_status write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return dsk_fail(DSK_ERR_IO, "dsk_tune_export: cannot write '%s': %s", path, strerror(errno));
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) return dsk_fail(DSK_ERR_IO, "dsk_tune_export: error writing '%s'", path);
    return DSK_OK;
}

/* ptxas from the CUDA toolkit the build found, else PATH; NULL when absent. */
static const char *find_ptxas(char *buf, size_t len)
{
    snprintf(buf, len, "%s/ptxas", DSK_CUDA_BIN_DIR);
    if (access(buf, X_OK) == 0) return buf;
    const char *path = getenv("PATH");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path ? path : "");
    for (char *sv, *d = strtok_r(tmp, ":", &sv); d; d = strtok_r(NULL, ":", &sv)) {
        snprintf(buf, len, "%s/ptxas", d);
        if (access(buf, X_OK) == 0) return buf;
    }
    return NULL;
}

static int safe_path(const char *p)
{
    for (; *p; p++)
        if (*p == '\'' || *p == '\n') return 0;
    return 1;
}

static int opts_match(const dsk_tune_export_opts *o, const dsk_gemm_tile *t)
{
    return !o || ((o->persistent < 0 || o->persistent == t->persistent) &&
                  (o->tma_store < 0 || o->tma_store == t->tma_store) && (o->cluster < 0 || o->cluster == t->cluster));
}

dsk_status dsk_tune_export(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch, int ctx,
                           const char *out_dir, int *n_kernels, int *n_cubins)
{
    return dsk_tune_export_opts_run(g, model, phase, batch, ctx, out_dir, NULL, n_kernels, n_cubins);
}

dsk_status dsk_tune_export_opts_run(const dsk_gpu *g, const char *model, dsk_step_phase phase, int batch, int ctx,
                                    const char *out_dir, const dsk_tune_export_opts *opts, int *n_kernels,
                                    int *n_cubins)
{
    const char *fn = "dsk_tune_export";
    if (!g || !out_dir || !n_kernels || !n_cubins) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: NULL argument", fn);
    *n_kernels = *n_cubins = 0;
    dsk_arch arch;
    DSK_TRY(dsk_gpu_ptx_arch(g, &arch));
    if (!safe_path(out_dir)) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: out_dir must not contain quotes or newlines", fn);
    dsk_tune_gemm_shape shapes[16];
    char names[16][48];
    int n;
    DSK_TRY(dsk_tune_model_gemms(model, phase, batch, ctx, shapes, names, 16, &n));
    if (mkdir(out_dir, 0755) && errno != EEXIST)
        return dsk_fail(DSK_ERR_IO, "%s: cannot create '%s': %s", fn, out_dir, strerror(errno));
    char ptxas_buf[4096];
    const char *ptxas = find_ptxas(ptxas_buf, sizeof ptxas_buf);
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", out_dir);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", mpath);
    FILE *m = fopen(tmp, "w");
    if (!m) return dsk_fail(DSK_ERR_IO, "%s: cannot write '%s': %s", fn, tmp, strerror(errno));
    fprintf(m, "{\"dsk_export\": 1, \"dsk_version\": \"%s\", \"gpu\": ", dsk_version());
    jstr(m, g->name);
    fprintf(m, ", \"arch\": \"%s\", \"model\": ", g->arch);
    jstr(m, model);
    fprintf(m, ", \"phase\": \"%s\", \"batch\": %d, \"ctx\": %d,\n \"params\": [",
            phase == DSK_PHASE_DECODE ? "decode" : "prefill", batch, ctx);
    for (int i = 0; i < DSK_GEMM_NPARAMS; i++) {
        fprintf(m, "%s\n  {\"name\": \"%s\", \"type\": \"%s\", \"meaning\": ", i ? "," : "", params[i].name, params[i].type);
        jstr(m, params[i].meaning);
        fprintf(m, "}");
    }
    fprintf(m, "],\n \"kernels\": [");
    dsk_status st = DSK_OK;
    int written = 0;
    for (int i = 0; i < n && !st; i++) {
        /* Shapes sharing a kernel (same tile) share its files. */
        dsk_tune_result r;
        if ((st = dsk_tune_gemm(g, &shapes[i], &r))) break;
        int ci = 0;
        while (ci < r.n && !opts_match(opts, &r.cand[ci].tile)) ci++;
        if (ci == r.n) {
            st = dsk_fail(DSK_ERR_UNSUPPORTED,
                          "%s: %s (M,N,K = %lld,%lld,%lld) has no legal kernel with the required options "
                          "(persistent %d, tma_store %d, cluster %d; -1 = any)",
                          fn, names[i], shapes[i].m, shapes[i].n, shapes[i].k, opts->persistent, opts->tma_store,
                          opts->cluster);
            dsk_tune_result_free(&r);
            break;
        }
        const dsk_tune_candidate *c = &r.cand[ci];
        char *ptx = NULL, entry[96];
        st = dsk_ptx_gemm_emit(&c->tile, &ptx, entry, sizeof entry);
        char ppath[4200], cpath[4200];
        snprintf(ppath, sizeof ppath, "%s/%s.ptx", out_dir, c->kernel);
        snprintf(cpath, sizeof cpath, "%s/%s.cubin", out_dir, c->kernel);
        if (!st) st = write_file(ppath, ptx);
        free(ptx);
        int have_cubin = 0;
        if (!st && ptxas) {
            char cmd[16384];
            int len = snprintf(cmd, sizeof cmd, "'%s' -arch=%s -o '%s' '%s' > '%s.log' 2>&1", ptxas, g->arch, cpath,
                               ppath, cpath);
            have_cubin = len > 0 && (size_t)len < sizeof cmd && system(cmd) == 0;
            if (have_cubin) {
                snprintf(cmd, sizeof cmd, "%s.log", cpath);
                unlink(cmd);
            }
        }
        if (st) {
            dsk_tune_result_free(&r);
            break;
        }
        *n_cubins += have_cubin;
        const dsk_gemm_tile *t = &c->tile;
        const dsk_gemm_plan *p = &c->plan;
        long long gx = (shapes[i].m + t->block_m - 1) / t->block_m, gy = (shapes[i].n + t->block_n - 1) / t->block_n;
        long long cl = t->cluster, sms = (long long)g->sms.v;
        long long units = gx * ((gy + cl - 1) / cl), slots = sms / cl > 0 ? sms / cl : 1;
        fprintf(m, "%s\n  {\"name\": ", written ? "," : "");
        jstr(m, names[i]);
        fprintf(m, ", \"op\": \"gemm_fp8\", \"layout\": \"dense\", \"shape\": [%lld, %lld, %lld],\n   \"kernel\": ",
                shapes[i].m, shapes[i].n, shapes[i].k);
        jstr(m, c->kernel);
        fprintf(m, ", \"entry\": ");
        jstr(m, entry);
        fprintf(m, ", \"ptx\": \"%s.ptx\", \"cubin\": ", c->kernel);
        if (have_cubin) fprintf(m, "\"%s.cubin\"", c->kernel);
        else fprintf(m, "null");
        fprintf(m, ",\n   \"tile\": {\"block_m\": %d, \"block_n\": %d, \"block_k\": %d, \"stages\": %d, \"cluster\": %d, "
                   "\"persistent\": %d, \"swap_ab\": %d, \"tma_store\": %d},\n",
                t->block_m, t->block_n, t->block_k, t->stages, t->cluster, t->persistent, t->swap_ab, t->tma_store);
        /* docs/KERNELS.md "Launch contract" */
        if (t->persistent && cl == 2)
            fprintf(m, "   \"grid\": [%lld, 1, 1], \"grid_rule\": [\"2 * min(units, floor(SMs / 2)) with units = G * "
                       "ceil(M / block_m) * ceil(ceil(N / block_n) / 2) (G for masked, else 1); any even value in [2, "
                       "2 * units] is correct\", \"1\", \"1\"], \"sms\": %lld,\n",
                    2 * (units < slots ? units : slots), sms);
        else if (t->persistent)
            fprintf(m, "   \"grid\": [%lld, 1, 1], \"grid_rule\": [\"min(tiles, SMs) with tiles = G * ceil(M / block_m) * "
                       "ceil(N / block_n) (G for masked, else 1); any value in [1, tiles] is correct\", \"1\", \"1\"], "
                       "\"sms\": %lld,\n",
                    units < slots ? units : slots, sms);
        else if (cl == 2)
            fprintf(m, "   \"grid\": [%lld, %lld, 1], \"grid_rule\": [\"ceil(M / block_m)\", \"ceil(N / block_n) rounded "
                       "up to even (cluster pairs)\", \"G for masked, else 1\"],\n",
                    gx, (gy + 1) / 2 * 2);
        else
            fprintf(m, "   \"grid\": [%lld, %lld, 1], \"grid_rule\": [\"ceil(M / block_m)\", \"ceil(N / block_n)\", "
                       "\"G for masked, else 1\"],\n",
                    gx, gy);
        fprintf(m, "   \"block\": [%d, 1, 1], \"cluster\": [%s],\n", p->threads,
                cl == 1 ? "1, 1, 1" : t->persistent ? "2, 1, 1" : "1, 2, 1");
        fprintf(m, "   \"dynamic_smem\": %zu, \"static_smem\": %zu, \"max_regs\": %d,\n", p->smem_dynamic_bytes,
                p->smem_static_bytes, p->max_regs);
        if (arch == DSK_ARCH_SM90A) {
            /* cuTensorMapEncodeTiled's arguments for this shape (dense, A and B K-major
             * with row strides lda = ldb = K, a_scale MN-major with sa_ld = M rounded up to 4). */
            long long M = shapes[i].m, N = shapes[i].n, K = shapes[i].k, sa_ld = (M + 3) / 4 * 4;
            fprintf(m, "   \"tensor_maps\": [\n"
                       "    {\"param\": \"a\", \"dtype\": \"UINT8\", \"rank\": 2, \"dims\": [%lld, %lld], \"strides_bytes\": [%lld], "
                       "\"box\": [128, %d], \"element_strides\": [1, 1], \"swizzle\": \"128B\", \"rule\": \"dims [K, M], stride lda; "
                       "box [128, block_m / cluster]: in a cluster of 2 each CTA loads half of A's tile\"},\n"
                       "    {\"param\": \"b\", \"dtype\": \"UINT8\", \"rank\": 2, \"dims\": [%lld, %lld], \"strides_bytes\": [%lld], "
                       "\"box\": [128, %d], \"element_strides\": [1, 1], \"swizzle\": \"128B\", \"rule\": \"dims [K, G*N], stride ldb\"},\n"
                       "    {\"param\": \"sa\", \"dtype\": \"FLOAT32\", \"rank\": 2, \"dims\": [%lld, %lld], \"strides_bytes\": [%lld], "
                       "\"box\": [%d, 1], \"element_strides\": [1, 1], \"swizzle\": \"NONE\", "
                       "\"rule\": \"dims [M, G*ceil(K/128)], stride sa_ld*4\"}",
                    K, M, K, t->block_m / t->cluster, K, N, K, t->block_n, M, K / 128, sa_ld * 4, t->block_m);
            if (t->tma_store)
                fprintf(m, ",\n    {\"param\": \"tmap_d\", \"dtype\": \"BFLOAT16\", \"rank\": 2, \"dims\": [%lld, %lld], "
                           "\"strides_bytes\": [%lld], \"box\": [%d, %d], \"element_strides\": [1, 1], \"swizzle\": \"NONE\", "
                           "\"rule\": \"dims [N, M], stride ldd*2 (a multiple of 16); bf16 D only: with out_f32 pass 0\"}",
                        N, M, N * 2, t->block_n, t->block_m);
            fprintf(m, "],\n");
        }
        else
            fprintf(m, "   \"tensor_maps\": [],\n");
        fprintf(m, "   \"predicted_us\": %.6g, \"predicted_bound\": \"%s\", \"prediction\": \"analytic model, not a "
                   "measurement\"}",
                c->pred.us, dsk_tune_bound_name(c->pred.bound));
        written++;
        dsk_tune_result_free(&r);
    }
    fprintf(m, "\n]}\n");
    int bad = fclose(m) != 0;
    if (!st && bad) st = dsk_fail(DSK_ERR_IO, "%s: error writing '%s'", fn, tmp);
    if (!st && rename(tmp, mpath)) st = dsk_fail(DSK_ERR_IO, "%s: cannot rename to '%s': %s", fn, mpath, strerror(errno));
    if (st) unlink(tmp);
    *n_kernels = written;
    return st;
}
