/* tests/ptx/test_ptx_plan.c: tile names and parsing round-trip, plans of known tiles (the
 * shared-memory arithmetic written out by hand), illegal configurations with their reasons,
 * and bad arguments. */
#include <string.h>
#include "tests/harness/harness.h"
#include "dsk/ptx.h"

static void roundtrip(dsk_gemm_tile t, const char *expect)
{
    char name[96];
    dsk_gemm_tile_name(&t, name, sizeof name);
    DSK_T_CHECK(!strcmp(name, expect), "name '%s', expected '%s'", name, expect);
    dsk_gemm_tile u;
    memset(&u, 0x5a, sizeof u);
    if (!DSK_T_OK(dsk_gemm_tile_parse(name, &u)))
        return;
    DSK_T_CHECK(u.arch == t.arch && u.block_m == t.block_m && u.block_n == t.block_n && u.stages == t.stages &&
                    u.cluster == t.cluster && u.layout == t.layout && u.swap_ab == t.swap_ab &&
                    u.persistent == t.persistent && u.tma_store == t.tma_store && u.block_k == 128,
                "'%s' does not parse back to the same tile", name);
}

int main(void)
{
    dsk_gemm_tile t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 112);
    t.stages = 6;
    t.cluster = 2;
    roundtrip(t, "gemm_fp8_sm90a_128x112_s6_c2");
    t.cluster = 1;
    t.layout = DSK_GEMM_MASKED;
    t.persistent = 1;
    roundtrip(t, "gemm_fp8_sm90a_128x112_s6_c1_masked_p");
    t.tma_store = 1;
    t.swap_ab = 1;
    t.block_m = 32;
    t.block_n = 128;
    roundtrip(t, "gemm_fp8_sm90a_32x128_s6_c1_masked_swapab_tmastore_p");
    DSK_T_OK(dsk_gemm_tile_parse("gemm_fp8_sm90a_64x72_s4_c1_p_tmastore", &t));
    DSK_T_CHECK(t.tma_store && t.persistent && t.block_n == 72, "_p_tmastore: tma_store %d persistent %d", t.tma_store,
                t.persistent);
    t = dsk_gemm_tile_default(DSK_ARCH_SM89, 16, 64);
    t.swap_ab = 1;
    t.layout = DSK_GEMM_MASKED;
    roundtrip(t, "gemm_fp8_sm89_16x64_s3_masked_swapab");
    t = dsk_gemm_tile_default(DSK_ARCH_SM89, 64, 128);
    t.layout = DSK_GEMM_CONTIGUOUS;
    roundtrip(t, "gemm_fp8_sm89_64x128_s3_contig");

    /* "MxN" sets only the block sizes */
    t = dsk_gemm_tile_default(DSK_ARCH_SM89, 1, 1);
    t.stages = 4;
    DSK_T_OK(dsk_gemm_tile_parse("128x72", &t));
    DSK_T_CHECK(t.block_m == 128 && t.block_n == 72 && t.stages == 4 && t.arch == DSK_ARCH_SM89,
                "128x72 parsed to %dx%d s%d", t.block_m, t.block_n, t.stages);
    DSK_T_ERR(dsk_gemm_tile_parse("128", &t), DSK_ERR_INVALID_ARG, "BLOCK_MxBLOCK_N");
    DSK_T_ERR(dsk_gemm_tile_parse("128x", &t), DSK_ERR_INVALID_ARG, "malformed");
    DSK_T_ERR(dsk_gemm_tile_parse("128x64y", &t), DSK_ERR_INVALID_ARG, "malformed");
    DSK_T_ERR(dsk_gemm_tile_parse("gemm_fp8_sm80_128x64", &t), DSK_ERR_INVALID_ARG, "sm90a_ or sm89_");
    DSK_T_ERR(dsk_gemm_tile_parse("gemm_fp8_sm90a_128x64_s4_zz", &t), DSK_ERR_INVALID_ARG, "unknown part");
    DSK_T_ERR(dsk_gemm_tile_parse(NULL, &t), DSK_ERR_INVALID_ARG, "NULL");

    /* sm90a 128x112, 6 stages: A 16384 + B 14336 + scales 512 = 31232 per stage;
     * 6 * 31232 + 1024 alignment slack = 188416 dynamic; barriers 96 B padded to 1024 */
    dsk_gemm_plan p;
    t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 112);
    t.stages = 6;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal && p.threads == 384 && p.consumer_warpgroups == 2 && p.stage_bytes == 31232 &&
                    p.smem_dynamic_bytes == 188416 && p.smem_static_bytes == 1024 && p.smem_bytes == 189440 &&
                    p.max_regs == 168,
                "sm90a 128x112 s6 plan: legal %d threads %d cwg %d stage %zu dyn %zu static %zu maxreg %d", p.legal,
                p.threads, p.consumer_warpgroups, p.stage_bytes, p.smem_dynamic_bytes, p.smem_static_bytes,
                p.max_regs);
    t.stages = 8;  /* 8 * 31232 + 2048 > 227 KiB */
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(!p.legal && strstr(p.reason, "shared memory"), "8 stages: legal %d reason '%s'", p.legal, p.reason);
    /* TMA store, 128x112 s6 (ring 187392 B): the dense bf16 staging tile, 128 rows of 224 B =
     * 28672, fits in the ring (reused after the last k-block); persistent: dedicated after the
     * ring, 188416 + 28672 = 217088 dynamic; contiguous: rows padded to 256 B = 32768 */
    t.stages = 6;
    t.tma_store = 1;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal && p.d_in_ring && p.d_offset == 0 && p.d_pitch == 224 && p.smem_d_bytes == 28672 &&
                    p.smem_dynamic_bytes == 188416,
                "128x112 s6 tmastore: legal %d in_ring %d off %zu pitch %d d %zu dyn %zu", p.legal, p.d_in_ring,
                p.d_offset, p.d_pitch, p.smem_d_bytes, p.smem_dynamic_bytes);
    t.persistent = 1;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal && !p.d_in_ring && p.d_offset == 187392 && p.smem_dynamic_bytes == 217088,
                "128x112 s6 tmastore_p: legal %d in_ring %d off %zu dyn %zu", p.legal, p.d_in_ring, p.d_offset,
                p.smem_dynamic_bytes);
    t.layout = DSK_GEMM_CONTIGUOUS;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal && p.d_pitch == 256 && p.smem_d_bytes == 32768 && p.smem_dynamic_bytes == 221184,
                "128x112 s6 contig tmastore_p: legal %d pitch %d d %zu dyn %zu", p.legal, p.d_pitch, p.smem_d_bytes,
                p.smem_dynamic_bytes);
    t.stages = 7;  /* 7 * 31232 + 1024 + 32768 + 1024 static > 227 KiB */
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(!p.legal && strstr(p.reason, "shared memory"), "s7 contig tmastore_p: legal %d '%s'", p.legal,
                p.reason);
    t.stages = 6;
    t.layout = DSK_GEMM_DENSE;
    t.tma_store = t.persistent = 0;
    /* a smaller limit (a target with less shared memory) makes 6 stages illegal */
    t.stages = 6;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 100 * 1024, &p));
    DSK_T_CHECK(!p.legal, "6 stages fit in 100 KiB?");
    /* sm_89 128x128, 3 stages: (128 + 128) * 128 * 3 = 98304 <= 99 KiB; 4 stages do not fit */
    t = dsk_gemm_tile_default(DSK_ARCH_SM89, 128, 128);
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal && p.smem_bytes == 98304 && p.threads == 256 && p.warps_m == 4 && p.warps_n == 2,
                "sm89 128x128 plan: legal %d smem %zu threads %d warps %dx%d", p.legal, p.smem_bytes, p.threads,
                p.warps_m, p.warps_n);
    t.stages = 4;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(!p.legal && strstr(p.reason, "shared memory"), "sm89 4 stages: '%s'", p.reason);

    /* illegal configurations say why */
    struct { dsk_arch arch; int m, n, cluster, swap, persistent; const char *why; } bad[] = {
        {DSK_ARCH_SM90A, 96, 128, 1, 0, 0, "block_m"},     {DSK_ARCH_SM90A, 128, 100, 1, 0, 0, "block_n"},
        {DSK_ARCH_SM90A, 128, 264, 1, 0, 0, "block_n"},    {DSK_ARCH_SM90A, 128, 256, 1, 0, 0, "registers"},
        {DSK_ARCH_SM90A, 64, 96, 1, 1, 0, "swap_ab block_n"}, {DSK_ARCH_SM90A, 128, 128, 3, 0, 0, "cluster"},
        {DSK_ARCH_SM89, 128, 128, 2, 0, 0, "clusters"},    {DSK_ARCH_SM89, 24, 64, 1, 0, 0, "multiple of 16"},
        {DSK_ARCH_SM89, 64, 68, 1, 0, 0, "multiple of 8"}, {DSK_ARCH_SM89, 32, 256, 1, 0, 0, "registers"},
        {DSK_ARCH_SM89, 64, 128, 1, 0, 1, "persistent"},
        /* the persistent loop's live state: 176 accumulators fit the consumers' 232, 184 do not */
        {DSK_ARCH_SM90A, 128, 184, 1, 0, 1, "registers"},  {DSK_ARCH_SM90A, 256, 96, 1, 0, 1, "registers"},
        /* cluster 2 multicasts half of A: whole 8-row swizzle atoms */
        {DSK_ARCH_SM90A, 8, 64, 2, 1, 0, "multiple of 8 rows"}, {DSK_ARCH_SM90A, 24, 128, 2, 1, 0, "block_m % 16"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = dsk_gemm_tile_default(bad[i].arch, bad[i].m, bad[i].n);
        t.cluster = bad[i].cluster;
        t.swap_ab = bad[i].swap;
        t.persistent = bad[i].persistent;
        DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
        DSK_T_CHECK(!p.legal && strstr(p.reason, bad[i].why), "%s %dx%d: legal %d reason '%s', expected '%s'",
                    dsk_ptx_arch_name(bad[i].arch), bad[i].m, bad[i].n, p.legal, p.reason, bad[i].why);
        char *ptx = NULL, entry[96];
        DSK_T_ERR(dsk_ptx_gemm_emit(&t, &ptx, entry, sizeof entry), DSK_ERR_UNSUPPORTED, "cannot be built");
    }
    t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 176);
    t.persistent = 1;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(p.legal, "128x176 persistent: '%s'", p.reason);
    t = dsk_gemm_tile_default(DSK_ARCH_SM89, 64, 128);
    t.tma_store = 1;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(!p.legal && strstr(p.reason, "TMA"), "sm89 tma_store: '%s'", p.reason);
    t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 128);
    t.block_k = 64;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &p));
    DSK_T_CHECK(!p.legal && strstr(p.reason, "block_k"), "block_k 64: '%s'", p.reason);

    /* arguments out of any range */
    t = dsk_gemm_tile_default(DSK_ARCH_SM90A, 128, 128);
    t.stages = 0;
    DSK_T_ERR(dsk_ptx_gemm_plan(&t, 0, &p), DSK_ERR_INVALID_ARG, "stages");
    t.stages = 4;
    t.arch = (dsk_arch)7;
    DSK_T_ERR(dsk_ptx_gemm_plan(&t, 0, &p), DSK_ERR_INVALID_ARG, "arch");
    DSK_T_ERR(dsk_ptx_gemm_plan(NULL, 0, &p), DSK_ERR_INVALID_ARG, "NULL");
    dsk_arch a;
    DSK_T_ERR(dsk_ptx_arch_parse("sm_80", &a), DSK_ERR_INVALID_ARG, "sm_90a or sm_89");
    DSK_T_OK(dsk_ptx_arch_parse("sm_89", &a));
    DSK_T_CHECK(a == DSK_ARCH_SM89, "sm_89 parsed to %d", (int)a);
    return dsk_t_finish();
}
