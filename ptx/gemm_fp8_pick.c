/* ptx/gemm_fp8_pick.c: the default tile choice of the FP8 GEMM kernels (see dsk/ptx.h).
 * The autotuner ranks configurations with its model; this is what runs without it. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "dsk/ptx.h"

/* deepest legal pipeline (2..8 stages); 0 when none is legal */
static int deepest(dsk_gemm_tile *t, size_t smem_limit)
{
    for (int s = 8; s >= 2; s--) {
        dsk_gemm_plan p;
        t->stages = s;
        if (dsk_ptx_gemm_plan(t, smem_limit, &p) == DSK_OK && p.legal)
            return 1;
    }
    return 0;
}

dsk_status dsk_ptx_gemm_pick(dsk_arch arch, dsk_gemm_layout layout, int64_t rows, int64_t n, int64_t k,
                             int64_t groups, int num_sms, size_t smem_limit, dsk_gemm_tile *out)
{
    if (!out || rows < 0 || n < 1 || k < 1 || groups < 1)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_pick: bad arguments (rows %lld, n %lld, k %lld, groups %lld)",
                        (long long)rows, (long long)n, (long long)k, (long long)groups);
    const char *env = getenv("DSK_GEMM_TILE");
    if (env && *env) {
        dsk_gemm_tile t;
        DSK_TRY(dsk_gemm_tile_parse(env, &t));
        if (t.arch == arch && t.layout == layout) {
            *out = t;
            return DSK_OK;
        }
    }
    if (num_sms < 1)
        num_sms = 1;
    int64_t m_groups = layout == DSK_GEMM_MASKED ? groups : 1;
    dsk_gemm_tile best = {0};
    double best_cost = 0;
    int found = 0;
    int swap = arch == DSK_ARCH_SM90A && layout != DSK_GEMM_CONTIGUOUS && rows <= 32;
    for (int bn = 16; bn <= 256; bn += 8) {
        dsk_gemm_tile t;
        if (swap) {
            if (bn != 64 && bn != 128)
                continue;
            int bm = (int)((rows + 7) / 8 * 8);
            t = dsk_gemm_tile_default(arch, bm < 8 ? 8 : bm, bn);
            t.swap_ab = 1;
        } else {
            int bm;
            if (layout == DSK_GEMM_CONTIGUOUS)
                bm = 128;
            else if (arch == DSK_ARCH_SM90A)
                bm = rows <= 64 ? 64 : 128;
            else
                bm = rows <= 16 ? 16 : rows <= 32 ? 32 : rows <= 64 ? 64 : 128;
            t = dsk_gemm_tile_default(arch, bm, bn);
        }
        t.layout = layout;
        if (!deepest(&t, smem_limit))
            continue;
        int64_t tiles = (rows + t.block_m - 1) / t.block_m * ((n + bn - 1) / bn) * m_groups;
        int64_t waves = (tiles + num_sms - 1) / num_sms;
        /* time of a wave ~ the tile's N extent plus a fixed cost (pipeline fill, epilogue) */
        double cost = (double)waves * (bn + 32);
        if (!found || cost < best_cost || (cost == best_cost && bn > best.block_n)) {
            best = t;
            best_cost = cost;
            found = 1;
        }
    }
    if (!found)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_ptx_gemm_pick: no legal %s tile for rows %lld within %zu bytes of "
                        "shared memory", dsk_ptx_arch_name(arch), (long long)rows, smem_limit);
    *out = best;
    return DSK_OK;
}
