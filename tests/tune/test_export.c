/* tests/tune/test_export.c: dsk export's files: manifest.json parses and says for every
 * kernel what a foreign engine needs (entry, parameters, grid per the rule, shared
 * memory within the GPU, tensor maps on sm_90a), each .ptx holds its entry and was
 * produced by the tuned tile, and with ptxas present every cubin assembled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/json.h"
#include "tests/harness/harness.h"

static char *slurp(const char *path)
{
    char *t = NULL;
    return dsk_json_read_file(path, &t, NULL) == DSK_OK ? t : NULL;
}

static void check_export(const char *gpu_name, int batch, const dsk_tune_export_opts *opts)
{
    const dsk_gpu *g;
    DSK_T_OK(dsk_gpu_find(gpu_name, &g));
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/dsk_export_XXXXXX");
    if (!mkdtemp(dir)) dsk_t_skip("mkdtemp failed");
    int nk = 0, nc = 0;
    DSK_T_OK(dsk_tune_export_opts_run(g, "deepseek-v3", DSK_PHASE_DECODE, batch, 4096, dir, opts, &nk, &nc));
    DSK_T_CHECK(nk == 8, "%s: 8 FP8 GEMM shapes in a V3 decode step, got %d", gpu_name, nk);
    int ptxas = dsk_t_find_tool("ptxas") != NULL;
    if (ptxas) DSK_T_CHECK(nc == nk, "%s: ptxas present: every cubin assembled (%d of %d)", gpu_name, nc, nk);
    else printf("note: ptxas not found: cubins not checked\n");

    char path[256];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = slurp(path);
    DSK_T_CHECK(text != NULL, "manifest readable");
    dsk_json *root = NULL;
    if (text) DSK_T_OK(dsk_json_parse(text, strlen(text), path, &root));
    free(text);
    const dsk_json *ver = dsk_json_get(root, "dsk_export"), *ks = dsk_json_get(root, "kernels");
    const dsk_json *ps = dsk_json_get(root, "params"), *dv = dsk_json_get(root, "dsk_version");
    DSK_T_CHECK(ver && ver->num == 1 && ks && ks->type == DSK_JSON_ARRAY && ps && dv && !strcmp(dv->str, dsk_version()),
                "manifest header");
    int np = ps ? ps->n : 0;
    DSK_T_CHECK(np == 23, "23 kernel parameters listed, got %d", np);
    int sm90 = !strcmp(g->arch, "sm_90a");
    for (int ki = 0; ks && ki < ks->n; ki++) {
        const dsk_json *k = &ks->items[ki];
        const dsk_json *name = dsk_json_get(k, "name"), *entry = dsk_json_get(k, "entry"),
                       *ptx = dsk_json_get(k, "ptx"), *cubin = dsk_json_get(k, "cubin"),
                       *shape = dsk_json_get(k, "shape"), *tile = dsk_json_get(k, "tile"),
                       *grid = dsk_json_get(k, "grid"), *block = dsk_json_get(k, "block"),
                       *smem = dsk_json_get(k, "dynamic_smem"), *tm = dsk_json_get(k, "tensor_maps"),
                       *pred = dsk_json_get(k, "predicted_us"), *kern = dsk_json_get(k, "kernel");
        if (!name || !entry || !ptx || !cubin || !shape || !tile || !grid || !block || !smem || !tm || !pred || !kern) {
            DSK_T_CHECK(0, "kernel entry at line %d lacks a member", k->line);
            continue;
        }
        long long M = (long long)shape->items[0].num, N = (long long)shape->items[1].num;
        int bm = (int)dsk_json_get(tile, "block_m")->num, bn = (int)dsk_json_get(tile, "block_n")->num;
        int pers = (int)dsk_json_get(tile, "persistent")->num, tma = (int)dsk_json_get(tile, "tma_store")->num;
        int cl = (int)dsk_json_get(tile, "cluster")->num;
        const dsk_json *cdim = dsk_json_get(k, "cluster");
        long long gn = (N + bn - 1) / bn, units = ((M + bm - 1) / bm) * ((gn + cl - 1) / cl), slots = g->sms.v / cl;
        if (pers)
            DSK_T_CHECK(grid->items[0].num == cl * (units < slots ? units : slots) && grid->items[1].num == 1 &&
                            cdim->items[0].num == cl && cdim->items[1].num == 1,
                        "%s: persistent grid follows cluster * min(units, SMs / cluster)", name->str);
        else
            DSK_T_CHECK(grid->items[0].num == (M + bm - 1) / bm && grid->items[1].num == (gn + cl - 1) / cl * cl &&
                            cdim->items[0].num == 1 && cdim->items[1].num == cl,
                        "%s: grid follows ceil(M/block_m), ceil(N/block_n) (even for clusters of 2)", name->str);
        if (sm90) {
            const dsk_json *box = dsk_json_get(&tm->items[0], "box");
            DSK_T_CHECK(box && box->items[1].num == bm / cl, "%s: A's box has block_m / cluster rows", name->str);
        }
        DSK_T_CHECK(smem->num + 1024 <= g->smem_block_kb.v * 1024 + 1024 && smem->num > 0, "%s: dynamic smem %g fits",
                    name->str, smem->num);
        int nmaps = tm->n;
        DSK_T_CHECK(nmaps == (sm90 ? 3 + tma : 0), "%s: %d tensor maps", name->str, nmaps);
        DSK_T_CHECK(pred->num > 0, "%s: predicted time", name->str);
        /* The kernel is the tuner's choice for this shape (among those with the required
         * options). */
        dsk_tune_gemm_shape s = {M, N, (long long)shape->items[2].num, 1, DSK_GEMM_DENSE};
        dsk_tune_result r;
        if (DSK_T_OK(dsk_tune_gemm(g, &s, &r))) {
            int ci = 0;
            while (opts && ci < r.n &&
                   ((opts->persistent >= 0 && r.cand[ci].tile.persistent != opts->persistent) ||
                    (opts->tma_store >= 0 && r.cand[ci].tile.tma_store != opts->tma_store) ||
                    (opts->cluster >= 0 && r.cand[ci].tile.cluster != opts->cluster)))
                ci++;
            DSK_T_CHECK(ci < r.n && !strcmp(r.cand[ci].kernel, kern->str), "%s: %s is the tuned choice %s", name->str,
                        kern->str, ci < r.n ? r.cand[ci].kernel : "(none)");
            if (opts)
                DSK_T_CHECK((opts->persistent < 0 || pers == opts->persistent) &&
                                (opts->tma_store < 0 || tma == opts->tma_store) &&
                                (opts->cluster < 0 || cl == opts->cluster),
                            "%s: %s lacks the required options", name->str, kern->str);
            dsk_tune_result_free(&r);
        }
        snprintf(path, sizeof path, "%s/%s", dir, ptx->str);
        char *src = slurp(path);
        char want[160];
        snprintf(want, sizeof want, ".entry %s(", entry->str);
        DSK_T_CHECK(src && strstr(src, want), "%s: %s holds '%s'", name->str, ptx->str, want);
        free(src);
        if (ptxas) {
            snprintf(path, sizeof path, "%s/%s", dir, cubin->type == DSK_JSON_STRING ? cubin->str : "none");
            DSK_T_CHECK(cubin->type == DSK_JSON_STRING && access(path, R_OK) == 0, "%s: cubin present", name->str);
        }
    }
    dsk_json_free(root);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
}

int main(void)
{
    check_export("h800", 128, NULL);
    check_export("h20", 7, NULL);
    check_export("4090", 64, NULL);
    dsk_tune_export_opts pt = {1, 1, -1}, c2 = {-1, -1, 2}, c2p = {1, -1, 2};
    check_export("h800", 32, &pt);
    check_export("h800", 32, &c2);
    check_export("h20", 300, &c2p);
    /* Bad input. */
    const dsk_gpu *g;
    dsk_gpu_find("mi300x", &g);
    int nk, nc;
    DSK_T_ERR(dsk_tune_export(g, "deepseek-v3", DSK_PHASE_DECODE, 1, 64, "/tmp/x", &nk, &nc), DSK_ERR_UNSUPPORTED, "HIP");
    dsk_gpu_find("h20", &g);
    DSK_T_ERR(dsk_tune_export(g, "gpt-2", DSK_PHASE_DECODE, 1, 64, "/tmp/x", &nk, &nc), DSK_ERR_NOT_FOUND,
              "known models");
    DSK_T_ERR(dsk_tune_export(g, "deepseek-v3", DSK_PHASE_DECODE, 1, 64, "/nonexistent/dir/out", &nk, &nc), DSK_ERR_IO,
              "cannot create '/nonexistent/dir/out'");
    /* sm_89 has no TMA store: no kernel has the option */
    dsk_gpu_find("4090", &g);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/dsk_export_XXXXXX");
    if (mkdtemp(dir)) {
        dsk_tune_export_opts tma = {-1, 1, -1};
        DSK_T_ERR(dsk_tune_export_opts_run(g, "deepseek-v3", DSK_PHASE_DECODE, 1, 64, dir, &tma, &nk, &nc),
                  DSK_ERR_UNSUPPORTED, "no legal kernel with the required options");
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    }
    return dsk_t_finish();
}
