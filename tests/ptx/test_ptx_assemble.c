/* tests/ptx/test_ptx_assemble.c: every configuration of tests/ptx/ptx_configs.h, on each arch,
 * goes through ptxas -v: 0 bytes of spill and 0 stack frame, the static shared memory ptxas
 * reports equals the plan's, the registers are within the plan (exactly .maxnreg for sm90a
 * kernels with two consumer warpgroups, whose launch register count is what .maxnreg fixes;
 * otherwise at most the plan's estimate), and the PTX holds the instructions that make the
 * kernel fast. Prints a table (config, registers, smem). ptxas absent: skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness/harness.h"
#include "dsk/ptx.h"
#include "tests/ptx/ptx_configs.h"

typedef struct ptxas_report {
    int ok, regs, stack, spill_st, spill_ld;
    long smem;
    char log[4096];
} ptxas_report;

static void run_ptxas(const char *ptxas, const char *arch, const char *ptx, ptxas_report *r)
{
    memset(r, 0, sizeof *r);
    char path[] = "/tmp/dsk_ptx_test_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(r->log, sizeof r->log, "mkstemp failed");
        return;
    }
    FILE *f = fdopen(fd, "w");
    fputs(ptx, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s -arch=%s -v %s -o /dev/null 2>&1", ptxas, arch, path);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(r->log, 1, sizeof r->log - 1, p) : 0;
    r->log[n] = '\0';
    int rc = p ? pclose(p) : -1;
    unlink(path);
    r->ok = rc == 0;
    r->regs = r->stack = r->spill_st = r->spill_ld = -1;
    r->smem = 0;  /* ptxas omits "smem" when there is none */
    const char *s;
    if ((s = strstr(r->log, "bytes stack frame"))) {
        while (s > r->log && s[-1] != '\n')
            s--;
        sscanf(s, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &r->stack, &r->spill_st,
               &r->spill_ld);
    }
    if ((s = strstr(r->log, "Used ")))
        sscanf(s, "Used %d registers", &r->regs);
    if ((s = strstr(r->log, "bytes smem")))
        for (const char *q = s - 2; q > r->log; q--)
            if (*q == ' ' || *q == ',') {
                r->smem = strtol(q + 1, NULL, 10);
                break;
            }
}

static int check_arch(const char *ptxas, dsk_arch arch)
{
    dsk_gemm_tile tiles[64];
    int n = ptx_test_configs(arch, tiles, 64);
    const char *an = dsk_ptx_arch_name(arch);
    printf("\n%-40s %6s %6s %8s %10s %10s\n", "config", "regs", "plan", "cap", "smem_st", "smem_total");
    for (int i = 0; i < n; i++) {
        dsk_gemm_tile *t = &tiles[i];
        char name[96], entry[96];
        dsk_gemm_tile_name(t, name, sizeof name);
        dsk_gemm_plan plan;
        if (!DSK_T_OK(dsk_ptx_gemm_plan(t, 0, &plan)))
            continue;
        if (!DSK_T_CHECK(plan.legal, "%s: expected legal, plan says: %s", name, plan.reason))
            continue;
        char *ptx = NULL;
        if (!DSK_T_OK(dsk_ptx_gemm_emit(t, &ptx, entry, sizeof entry)))
            continue;
        DSK_T_CHECK(!strcmp(entry, name), "%s: entry '%s' differs from the canonical name", name, entry);
        if (arch == DSK_ARCH_SM90A) {
            DSK_T_CHECK(strstr(ptx, "wgmma.mma_async.sync.aligned.m64n") && strstr(ptx, "k32.f32.e4m3.e4m3"),
                        "%s: no wgmma e4m3", name);
            DSK_T_CHECK(strstr(ptx, "cp.async.bulk.tensor.2d") != NULL, "%s: no TMA load", name);
            DSK_T_CHECK(strstr(ptx, "mbarrier.try_wait.parity") != NULL, "%s: no mbarrier wait", name);
            if (plan.consumer_warpgroups == 2)
                DSK_T_CHECK(strstr(ptx, "setmaxnreg.inc") != NULL, "%s: no setmaxnreg", name);
            if (t->tma_store)
                DSK_T_CHECK(strstr(ptx, ".global.shared::cta.tile.bulk_group [%tmap_d") &&
                                strstr(ptx, "fence.proxy.async.shared::cta") &&
                                strstr(ptx, "cp.async.bulk.wait_group.read 0"),
                            "%s: no TMA store of D through shared memory", name);
            if (t->cluster == 2)
                DSK_T_CHECK(strstr(ptx, ".multicast::cluster") && strstr(ptx, "mapa.shared::cluster") &&
                                strstr(ptx, "mbarrier.arrive.release.cluster.shared::cluster") &&
                                strstr(ptx, "barrier.cluster.wait") && strstr(ptx, ".reqnctapercluster"),
                            "%s: no TMA multicast / remote mbarrier arrive / cluster barrier", name);
            if (t->persistent)
                DSK_T_CHECK(strstr(ptx, t->cluster == 2 ? "%nclusterid.x" : "%nctaid.x") && strstr(ptx, "L_ctile:") && strstr(ptx, "L_ptile:"),
                            "%s: no persistent tile loop", name);
        } else {
            DSK_T_CHECK(strstr(ptx, "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32") != NULL,
                        "%s: no mma.sync e4m3", name);
            DSK_T_CHECK(strstr(ptx, "cp.async.cg.shared.global") != NULL, "%s: no cp.async", name);
            DSK_T_CHECK(strstr(ptx, "ldmatrix.sync.aligned") != NULL, "%s: no ldmatrix", name);
        }
        ptxas_report r;
        run_ptxas(ptxas, an, ptx, &r);
        free(ptx);
        if (!DSK_T_CHECK(r.ok, "%s: ptxas -arch=%s failed:\n%s", name, an, r.log))
            continue;
        printf("%-40s %6d %6d %8d %10ld %10zu\n", name, r.regs, plan.regs_per_thread, plan.max_regs, r.smem,
               plan.smem_bytes);
        DSK_T_CHECK(r.stack == 0 && r.spill_st == 0 && r.spill_ld == 0,
                    "%s: stack %d, spill stores %d, loads %d (expected 0)", name, r.stack, r.spill_st, r.spill_ld);
        DSK_T_CHECK(r.smem == (long)plan.smem_static_bytes, "%s: ptxas smem %ld, plan static %zu", name, r.smem,
                    plan.smem_static_bytes);
        if (arch == DSK_ARCH_SM90A && plan.consumer_warpgroups == 2)
            DSK_T_CHECK(r.regs == plan.max_regs, "%s: %d registers, the plan's .maxnreg is %d", name, r.regs,
                        plan.max_regs);
        else
            DSK_T_CHECK(r.regs > 0 && r.regs <= plan.regs_per_thread && r.regs <= plan.max_regs,
                        "%s: %d registers, the plan estimates at most %d (cap %d)", name, r.regs,
                        plan.regs_per_thread, plan.max_regs);
    }
    return n;
}

int main(void)
{
    const char *ptxas = dsk_t_find_tool("ptxas");
    if (!ptxas)
        dsk_t_skip("ptxas not found on PATH or in the CUDA toolkit bin directory");
    printf("ptxas: %s\n", ptxas);
    check_arch(ptxas, DSK_ARCH_SM90A);
    check_arch(ptxas, DSK_ARCH_SM89);
    return dsk_t_finish();
}
