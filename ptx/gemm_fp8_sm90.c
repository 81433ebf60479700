/* ptx/gemm_fp8_sm90.c: the Hopper (sm_90a: H800, H20, H100, H200) FP8 block-scaled GEMM emitter.
 *
 * Variants: dense / contiguous-grouped / masked-grouped, and swap_ab (wgmma's 64-row M side
 * takes B's rows and its N side A's rows: D^T = B . A^T, for small M).
 * Design (after DeepGEMM's fp8_gemm kernel; the code here is dsk's own):
 *   - warpgroups 0..C-1 consume (C = 1 or 2), warpgroup C produces; with C = 2 the kernel
 *     declares .maxnreg 168 and moves registers with setmaxnreg (producer 40, consumers 232);
 *   - one producer thread (lane 0 of its first warp) issues, per k-block of 128, three TMA loads
 *     (cp.async.bulk.tensor.2d) into a `stages`-deep ring: the A tile (BLOCK_M x 128 e4m3),
 *     the B tile (BLOCK_N x 128), both 128B-swizzled, and A's scales (BLOCK_M f32); each
 *     stage has a full mbarrier (producer arrive.expect_tx + TMA complete_tx) and an empty
 *     mbarrier (one arrival per consumer warp);
 *   - consumers issue 4 wgmma.mma_async m64nNk32 f32.e4m3.e4m3 per k-block per 64-row tile
 *     from matrix descriptors (K-major, 128B swizzle), wait, release the stage, and promote
 *     final += partial * a_scale(row) * b_scale(block) in FP32 registers (Hopper's FP8 MMA
 *     keeps ~14 bits of accumulation, so partial sums never run longer than 128 of K);
 *   - epilogue: predicated bf16 / f32 stores from registers (ragged M and N), or (_tmastore,
 *     bf16) the tile staged in shared memory and written by a TMA tensor store;
 *   - _p: persistent CTAs walk the tiles in banded raster order, the ring's phases running on
 *     across tiles;
 *   - _c2: clusters of 2 CTAs on neighbouring N tiles, each loading half of the A tile and
 *     multicasting it to both; empty barriers count both CTAs' consumer warps (remote arrive).
 * docs/KERNELS.md describes each and the launch contract. Parameter list:
 * ptx/gemm_fp8_internal.h. */
#include <stdio.h>
#include <string.h>
#include "ptx/gemm_fp8_internal.h"

typedef struct sm90 {
    const dsk_gemm_tile *t;
    const dsk_gemm_plan *p;
    dsk_ptx_text *b;
    int swap, mm, mn, cwg, mt, nt, S, nb_vals, cl;
    int a_bytes, b_bytes, sa_bytes;   /* per stage */
} sm90;

#define P(...) dsk_ptx_put(k->b, __VA_ARGS__)

static void emit_params(sm90 *k, const char *entry)
{
    P(".visible .entry %s(\n", entry);
    P("\t.param .u64 p_tmap_a, .param .u64 p_tmap_b, .param .u64 p_tmap_sa, .param .u64 p_sb, .param .u64 p_d,\n");
    P("\t.param .u64 p_idx, .param .u32 p_m, .param .u32 p_n, .param .u32 p_k, .param .u32 p_lda, .param .u32 p_ldb,\n");
    P("\t.param .u32 p_ldd, .param .u32 p_sa_ld, .param .u32 p_sb_n, .param .u32 p_sb_k,\n");
    P("\t.param .u64 p_ga, .param .u64 p_gb, .param .u64 p_gsa, .param .u64 p_gsb, .param .u64 p_gd,\n");
    P("\t.param .u32 p_out_f32, .param .u64 p_tmap_d, .param .u32 p_groups)\n");
    P(".maxntid %d, 1, 1\n", k->p->threads);
    /* clusters of 2 along N (one CTA per N tile of a pair) or, persistent, along x */
    if (k->cl == 2)
        P(".reqnctapercluster %s\n", k->t->persistent ? "2, 1, 1" : "1, 2, 1");
    if (k->cwg == 2)
        P(".maxnreg %d\n", k->p->max_regs);
}

static void emit_decls(sm90 *k)
{
    int nacc = k->mt * k->mn / 2;
    P("\t.reg .pred %%pin, %%pv, %%pa, %%pe, %%pl, %%pw, %%pz, %%pt, %%pld;\n");
    P("\t.reg .b16 %%ep_h;\n");
    P("\t.reg .f32 %%ps<%d>, %%fin<%d>, %%sprod;\n", nacc, nacc);
    P("\t.reg .f32 %%sa<%d>, %%sbv<%d>", 2 * (k->swap ? k->nt : k->mt), k->nb_vals);
    if (!k->swap && k->nb_vals > 1)
        P(", %%sbn<%d>", k->nt);
    P(";\n");
    P("\t.reg .b32 %%tx, %%wg, %%warp, %%lane, %%gid, %%tig, %%t0, %%t1, %%lo, %%hi;\n");
    P("\t.reg .b32 %%m0, %%n0, %%g, %%grp, %%mrows, %%m, %%n, %%kdim, %%nk, %%kb, %%ldd;\n");
    P("\t.reg .b32 %%sb_n, %%sb_k, %%sb_kstep, %%out_f32, %%nbmax, %%nb0;\n");
    P("\t.reg .b32 %%a_valid, %%b_valid, %%a_rem, %%b_rem, %%nb_rem, %%rP, %%rQ, %%d_row0, %%d_col0, %%ep_grp;\n");
    P("\t.reg .b32 %%smem, %%bar, %%stage, %%ph, %%fb, %%eb, %%a_s, %%b_s, %%sa_s, %%kc, %%a_row, %%b_row, %%sa_row;\n");
    P("\t.reg .b32 %%sc_as, %%t2, %%t3, %%mblk, %%nblk, %%tile, %%ntiles, %%mb, %%nbk, %%tpg, %%groups;\n");
    P("\t.reg .b32 %%dbuf, %%ep_s, %%ep_b, %%crank, %%peer, %%ra, %%a_half;\n");
    P("\t.reg .b16 %%mcast;\n");
    P("\t.reg .b64 %%tmap_a, %%tmap_b, %%tmap_sa, %%tmap_d, %%sb_ptr, %%sb_base, %%d_base, %%d_base0;\n");
    P("\t.reg .b64 %%idx, %%idx_thr, %%u, %%v, %%st;\n");
    P("\t.reg .b64 %%dp, %%dq, %%sb_blk<%d>, %%sc_off, %%sc_b;\n", k->nb_vals);
    P("\t.reg .b64 %%ep_t, %%ep_u, %%ep_row, %%ep_step, %%ep_ptr;\n");
}

/* Raster band of the persistent scheduler: tiles run M-block fastest inside bands of
 * SM90_RASTER_BAND M-blocks, so the CTAs resident at once share few A rows and few B
 * columns (L2 reuse; a band of 8 rows of 128 and ~16 columns of N for 132 SMs). */
#define SM90_RASTER_BAND 8

static void emit_setup(sm90 *k)
{
    const dsk_gemm_tile *t = k->t;
    P("\tmov.u32 %%tx, %%tid.x;\n\tshr.u32 %%wg, %%tx, 7;\n\tshr.u32 %%warp, %%tx, 5;\n\tand.b32 %%warp, %%warp, 3;\n");
    P("\tand.b32 %%lane, %%tx, 31;\n\tshr.u32 %%gid, %%lane, 2;\n\tand.b32 %%tig, %%lane, 3;\n");
    P("\tsetp.ne.u32 %%pz, %%tx, %%tx;\n\tsetp.eq.u32 %%pt, %%tx, %%tx;\n");
    P("\tld.param.u64 %%tmap_a, [p_tmap_a];\n\tld.param.u64 %%tmap_b, [p_tmap_b];\n");
    P("\tld.param.u64 %%tmap_sa, [p_tmap_sa];\n\tld.param.u64 %%sb_base, [p_sb];\n");
    P("\tld.param.u64 %%d_base0, [p_d];\n\tld.param.u64 %%idx, [p_idx];\n");
    P("\tcvta.to.global.u64 %%sb_base, %%sb_base;\n\tcvta.to.global.u64 %%d_base0, %%d_base0;\n");
    P("\tcvta.to.global.u64 %%idx, %%idx;\n");
    P("\tld.param.u32 %%m, [p_m];\n\tld.param.u32 %%n, [p_n];\n\tld.param.u32 %%kdim, [p_k];\n");
    P("\tld.param.u32 %%ldd, [p_ldd];\n\tld.param.u32 %%sb_n, [p_sb_n];\n\tld.param.u32 %%sb_k, [p_sb_k];\n");
    P("\tld.param.u32 %%out_f32, [p_out_f32];\n");
    P("\tshr.u32 %%nk, %%kdim, 7;\n");
    if (k->cl == 2)
        P("\tmov.u32 %%crank, %%cluster_ctarank;\n\txor.b32 %%peer, %%crank, 1;\n\tmov.u16 %%mcast, 3;\n");
    if (t->tma_store)
        P("\tld.param.u64 %%tmap_d, [p_tmap_d];\n");
    if (t->persistent) {
        /* tiles: G (masked) x ceil(rows / BLOCK_M) x ceil(N / BLOCK_N) */
        P("\t// persistent scheduler: CTA i runs tiles i, i + nctaid.x, ... of ntiles\n");
        P("\tadd.u32 %%mb, %%m, %d;\n\tdiv.u32 %%mb, %%mb, %d;\n", t->block_m - 1, t->block_m);
        P("\tadd.u32 %%nbk, %%n, %d;\n\tdiv.u32 %%nbk, %%nbk, %d;\n", t->block_n - 1, t->block_n);
        if (k->cl == 2)
            P("\t// a cluster walks units of two N tiles (its CTAs' ranks): columns of units = ceil(nbk / 2)\n"
              "\tadd.u32 %%nbk, %%nbk, 1;\n\tshr.u32 %%nbk, %%nbk, 1;\n");
        P("\tmul.lo.u32 %%tpg, %%mb, %%nbk;\n\tmov.u32 %%ntiles, %%tpg;\n");
        if (t->layout == DSK_GEMM_MASKED)
            P("\tld.param.u32 %%groups, [p_groups];\n\tmul.lo.u32 %%ntiles, %%tpg, %%groups;\n");
    }
    P("\t// the ring starts at the first 1024-byte boundary of dynamic shared memory (128B-swizzle atom)\n");
    P("\tmov.u32 %%smem, dsk_smem;\n\tadd.u32 %%smem, %%smem, 1023;\n\tand.b32 %%smem, %%smem, -1024;\n");
    P("\tmov.u32 %%bar, dsk_bar;\n");
    if (t->tma_store)
        P("\tadd.u32 %%dbuf, %%smem, %zu;\n", k->p->d_offset);
}

/* The tile loop's head (label L_<role>tile): the tile's (mblk, nblk, g). Non-persistent: the
 * CTA's ids. Persistent: tile index %tile -> group g = tile / tpg, then, inside the group,
 * bands of SM90_RASTER_BAND M-blocks walked M-block fastest (DeepGEMM's grouped raster). */
static void emit_tile_coords(sm90 *k, char role)
{
    const dsk_gemm_tile *t = k->t;
    if (!t->persistent) {
        P("\tmov.u32 %%mblk, %%ctaid.x;\n\tmov.u32 %%nblk, %%ctaid.y;\n\tmov.u32 %%g, %%ctaid.z;\n");
        return;
    }
    P("L_%ctile:\n", role);
    P("\tsetp.ge.u32 %%pl, %%tile, %%ntiles;\n\t@%%pl bra.uni L_%cdone;\n", role);
    if (t->layout == DSK_GEMM_MASKED)
        P("\tdiv.u32 %%g, %%tile, %%tpg;\n\tmul.lo.u32 %%t0, %%g, %%tpg;\n\tsub.u32 %%t1, %%tile, %%t0;\n");
    else
        P("\tmov.u32 %%g, 0;\n\tmov.u32 %%t1, %%tile;\n");
    P("\tmul.lo.u32 %%t2, %%nbk, %d;\n\tdiv.u32 %%t3, %%t1, %%t2;\n", SM90_RASTER_BAND);
    P("\tmul.lo.u32 %%t0, %%t3, %%t2;\n\tsub.u32 %%t1, %%t1, %%t0;\n\tmul.lo.u32 %%t3, %%t3, %d;\n",
      SM90_RASTER_BAND);
    P("\tsub.u32 %%t0, %%mb, %%t3;\n\tmin.u32 %%t0, %%t0, %d;\n", SM90_RASTER_BAND);
    P("\trem.u32 %%mblk, %%t1, %%t0;\n\tadd.u32 %%mblk, %%mblk, %%t3;\n\tdiv.u32 %%nblk, %%t1, %%t0;\n");
    if (k->cl == 2)
        P("\tmad.lo.u32 %%nblk, %%nblk, 2, %%crank;\n");
}

/* The tile's rows and columns, its group, and the TMA rows of A, B and a_scale (A in
 * [G*max_m, K] (masked) or [M, K]; B in [G*N, K]; a_scale in [G*ceil(K/128), rows], row =
 * the group's k-block). Tiles without work (masked: m0 >= masked_m[g]; contiguous: padding
 * block) branch to skip, uniformly for the whole CTA. */
static void emit_tile_setup(sm90 *k, const char *skip)
{
    const dsk_gemm_tile *t = k->t;
    P("\tmul.lo.u32 %%n0, %%nblk, %d;\n\tmul.lo.u32 %%m0, %%mblk, %d;\n", t->block_n, t->block_m);
    P("\tmov.u32 %%grp, 0;\n\tmov.u32 %%mrows, %%m;\n\tmov.u64 %%sb_ptr, %%sb_base;\n\tmov.u64 %%d_base, %%d_base0;\n");
    P("\tmov.u32 %%a_row, %%m0;\n\tmov.u32 %%b_row, %%n0;\n\tmov.u32 %%sa_row, 0;\n");
    if (t->layout == DSK_GEMM_MASKED) {
        P("\t// masked layout: the group's row count masked_m[g] read on the device\n");
        P("\tmul.wide.u32 %%u, %%g, 4;\n\tadd.u64 %%u, %%idx, %%u;\n\tld.global.u32 %%mrows, [%%u];\n");
        P("\tmin.u32 %%mrows, %%mrows, %%m;\n");
        P("\tsetp.ge.u32 %%pl, %%m0, %%mrows;\n\t@%%pl bra.uni %s;\n", skip);
        P("\tmad.lo.u32 %%a_row, %%g, %%m, %%m0;\n\tmad.lo.u32 %%b_row, %%g, %%n, %%n0;\n");
        P("\tmul.lo.u32 %%sa_row, %%g, %%nk;\n");
        P("\tld.param.u64 %%u, [p_gsb];\n\tcvt.u64.u32 %%v, %%g;\n\tmad.lo.u64 %%sb_ptr, %%u, %%v, %%sb_ptr;\n");
        P("\tld.param.u64 %%u, [p_gd];\n\tmad.lo.u64 %%d_base, %%u, %%v, %%d_base;\n");
    } else if (t->layout == DSK_GEMM_CONTIGUOUS) {
        P("\t// contiguous layout: the tile's group is m_indices[m0]; -1 marks padding\n");
        P("\tmul.wide.u32 %%u, %%m0, 4;\n\tadd.u64 %%u, %%idx, %%u;\n\tld.global.s32 %%grp, [%%u];\n");
        P("\tsetp.lt.s32 %%pl, %%grp, 0;\n\t@%%pl bra.uni %s;\n", skip);
        P("\tmad.lo.u32 %%b_row, %%grp, %%n, %%n0;\n");
        P("\tld.param.u64 %%u, [p_gsb];\n\tcvt.u64.u32 %%v, %%grp;\n\tmad.lo.u64 %%sb_ptr, %%u, %%v, %%sb_ptr;\n");
    }
    P("\tsub.u32 %%a_valid, %%mrows, %%m0;\n\tsub.u32 %%b_valid, %%n, %%n0;\n");
}

/* After a tile: the next one (persistent) or the role's end. */
static void emit_tile_next(sm90 *k, char role)
{
    P("L_%cnext:\n", role);
    if (k->t->persistent)
        P("\tmov.u32 %%t0, %s;\n\tadd.u32 %%tile, %%tile, %%t0;\n\tbra.uni L_%ctile;\n",
          k->cl == 2 ? "%nclusterid.x" : "%nctaid.x", role);
    P("L_%cdone:\n", role);
}

static void emit_wait(sm90 *k, const char *bar_reg, const char *parity)
{
    int l = dsk_ptx_label(k->b);
    P("L%d:\n\tmbarrier.try_wait.parity.shared::cta.b64 %%pw, [%s], %s;\n\t@!%%pw bra.uni L%d;\n", l, bar_reg,
      parity, l);
}

/* stage / phase advance: stage += 1, wrapping to 0 flips the phase */
static void emit_advance(sm90 *k)
{
    P("\tadd.u32 %%stage, %%stage, 1;\n\tsetp.eq.u32 %%pl, %%stage, %d;\n", k->S);
    P("\tselp.u32 %%stage, 0, %%stage, %%pl;\n\t@%%pl xor.b32 %%ph, %%ph, 1;\n");
}

static void emit_producer(sm90 *k)
{
    P("\t// ---- producer warpgroup: its first warp walks the tiles, lane 0 issues the TMA loads ----\n");
    if (k->cwg == 2)
        P("\tsetmaxnreg.dec.sync.aligned.u32 40;\n");
    /* whole warps leave (the warp that stays is converged at the cluster barrier at the end) */
    P("\tsetp.ne.u32 %%pl, %%warp, 0;\n\t@%%pl bra.uni L_exit;\n\tsetp.eq.u32 %%pld, %%lane, 0;\n");
    P("\t// stage and phase run on across tiles: the consumers walk the same tile sequence\n");
    P("\tmov.u32 %%stage, 0;\n\tmov.u32 %%ph, 0;\n\tmov.u32 %%tile, %s;\n", k->cl == 2 ? "%clusterid.x" : "%ctaid.x");
    emit_tile_coords(k, 'p');
    emit_tile_setup(k, "L_pnext");
    if (k->cl == 2) {
        /* this CTA's half of the A tile: rows a_row + rank * BLOCK_M/2, landing at the same
         * offset of the stage in both CTAs (multiples of 1024 B: the 128B-swizzle atom) */
        P("\tmad.lo.u32 %%a_half, %%crank, %d, %%a_row;\n", k->t->block_m / 2);
    }
    P("\tmov.u32 %%kb, 0;\n");
    P("L_prod:\n");
    P("\t// wait until the consumers released this stage (a fresh barrier passes parity 1)%s\n",
      k->cl == 2 ? ": those of both CTAs, since\n\t// this CTA's multicast writes the stage in both" : "");
    P("\tmad.lo.u32 %%eb, %%stage, 8, %%bar;\n\tadd.u32 %%eb, %%eb, %d;\n", k->S * 8);
    P("\txor.b32 %%t1, %%ph, 1;\n");
    emit_wait(k, "%eb", "%t1");
    P("\tmad.lo.u32 %%fb, %%stage, 8, %%bar;\n");
    P("\t@%%pld mbarrier.arrive.expect_tx.shared::cta.b64 %%st, [%%fb], %d;\n",
      k->a_bytes + k->b_bytes + k->t->block_m * 4);
    P("\tmad.lo.u32 %%a_s, %%stage, %d, %%smem;\n", k->a_bytes);
    P("\tmad.lo.u32 %%b_s, %%stage, %d, %%smem;\n\tadd.u32 %%b_s, %%b_s, %d;\n", k->b_bytes, k->S * k->a_bytes);
    P("\tmad.lo.u32 %%sa_s, %%stage, %d, %%smem;\n\tadd.u32 %%sa_s, %%sa_s, %d;\n", k->sa_bytes,
      k->S * (k->a_bytes + k->b_bytes));
    P("\tshl.b32 %%kc, %%kb, 7;\n\tadd.u32 %%t0, %%sa_row, %%kb;\n");
    if (k->cl == 2) {
        /* PTX ISA "cp.async.bulk.tensor", .multicast::cluster: the box lands at the
         * same shared offset in every CTA of ctaMask and signals the mbarrier at the same
         * offset in each; the full barriers expect the whole A tile (both halves) */
        P("\tmad.lo.u32 %%t3, %%crank, %d, %%a_s;\n", k->a_bytes / 2);
        P("\t@%%pld cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster "
          "[%%t3], [%%tmap_a, {%%kc, %%a_half}], [%%fb], %%mcast;\n");
    } else {
        P("\t@%%pld cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%a_s], [%%tmap_a, "
          "{%%kc, %%a_row}], [%%fb];\n");
    }
    P("\t@%%pld cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%b_s], [%%tmap_b, "
      "{%%kc, %%b_row}], [%%fb];\n");
    P("\t@%%pld cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%sa_s], [%%tmap_sa, "
      "{%%m0, %%t0}], [%%fb];\n");
    emit_advance(k);
    P("\tadd.u32 %%kb, %%kb, 1;\n\tsetp.lt.u32 %%pl, %%kb, %%nk;\n\t@%%pl bra.uni L_prod;\n");
    emit_tile_next(k, 'p');
    P("\tbra.uni L_end;\n");
}

/* Consumer addressing: rows of this thread in the wgmma D fragment (PTX ISA 9.7.15.5.1,
 * "Register fragments", m64nNk32 D: thread t of the warpgroup holds rows 16*(t/32) + (t%32)/4
 * (+8), columns 8j + 2*(t%4) (+1)). */
static void emit_consumer_addressing(sm90 *k)
{
    P("\tmul.lo.u32 %%rP, %%wg, %d;\n\tmad.lo.u32 %%rP, %%warp, 16, %%rP;\n\tadd.u32 %%rP, %%rP, %%gid;\n",
      k->mt * 64);
    P("\tshl.b32 %%rQ, %%tig, 1;\n");
    const char *ar = k->swap ? "rQ" : "rP", *br = k->swap ? "rP" : "rQ";
    P("\tsub.s32 %%a_rem, %%a_valid, %%%s;\n\tsub.s32 %%b_rem, %%b_valid, %%%s;\n", ar, br);
    P("\tadd.u32 %%d_row0, %%m0, %%%s;\n\tadd.u32 %%d_col0, %%n0, %%%s;\n", ar, br);
    if (k->t->layout == DSK_GEMM_CONTIGUOUS)
        P("\tmul.wide.u32 %%u, %%d_row0, 4;\n\tadd.u64 %%idx_thr, %%idx, %%u;\n");
    P("\tshl.b32 %%sb_kstep, %%sb_k, 2;\n");
    P("\tadd.u32 %%nbmax, %%n, 127;\n\tshr.u32 %%nbmax, %%nbmax, 7;\n\tsub.u32 %%nbmax, %%nbmax, 1;\n");
    P("\tshr.u32 %%nb0, %%n0, 7;\n");
    for (int v = 0; v < k->nb_vals; v++) {
        P("\tadd.u32 %%t0, %%nb0, %d;\n\tmin.u32 %%t0, %%t0, %%nbmax;\n", v);
        P("\tmul.wide.u32 %%u, %%t0, %%sb_n;\n\tshl.b64 %%u, %%u, 2;\n\tadd.u64 %%sb_blk%d, %%sb_ptr, %%u;\n", v);
    }
    if (!k->swap && k->nb_vals > 1)
        P("\tand.b32 %%t0, %%n0, 127;\n\tmov.u32 %%t1, 128;\n\tsub.u32 %%t0, %%t1, %%t0;\n\tsub.s32 %%nb_rem, %%t0, "
          "%%rQ;\n");
}

/* Matrix descriptor (PTX ISA 9.7.15.5.1.2, "Matrix Descriptor Format"): bits 0-13 start
 * address >> 4, 16-29 leading byte offset >> 4 (unused for swizzled K-major; 1), 32-45
 * stride byte offset >> 4 (1024: the next 8-row group of a 128B-swizzled tile), 62-63
 * swizzle mode (1 = 128B). */
static void emit_desc(sm90 *k, const char *dst, const char *addr)
{
    P("\tshr.u32 %%lo, %s, 4;\n\tand.b32 %%lo, %%lo, 16383;\n\tor.b32 %%lo, %%lo, 65536;\n", addr);
    P("\tmov.u32 %%hi, %d;\n\tmov.b64 %s, {%%lo, %%hi};\n", 64 | (1 << 30), dst);
}

/* bf16 epilogue through shared memory and TMA (PTX ISA, data movement, "cp.async.bulk.tensor":
 * the store direction .global.shared::cta with .bulk_group completion; the tensor map clips
 * the box at the tensor's bounds, so ragged M and N need no predicates).
 *   1. the previous tile's stores have read the staging buffer (wait_group.read), and every
 *      consumer is past its last wgmma (named barrier 1 over the consumer threads);
 *   2. each thread writes its accumulators as bf16 at (row, col) of the tile, rows of
 *      d_pitch bytes;
 *   3. fence.proxy.async.shared::cta makes the generic-proxy writes visible to the TMA unit
 *      (PTX ISA "membar/fence": proxy fences), barrier 1 again;
 *   4. dense: consumer thread 0 stores the whole box {BLOCK_N, BLOCK_M} at (n0, m0);
 *      grouped: consumer thread r stores row r of the tile ({BLOCK_N, 1} boxes) when the
 *      layout keeps the row (contiguous: m_indices[row] == the tile's group; masked: row <
 *      masked_m[g], the D map being 3-D {N, max_m, G}); then commit_group. */
static void emit_tma_store(sm90 *k)
{
    const dsk_gemm_tile *t = k->t;
    int nc = 128 * k->cwg, pitch = k->p->d_pitch;
    const char *ar = k->swap ? "%rQ" : "%rP", *br = k->swap ? "%rP" : "%rQ";
    int na = k->swap ? k->nt : k->mt, nb = k->swap ? k->mt : k->nt;
    P("\t// epilogue (bf16): staged in shared memory, written by TMA\n");
    P("\tcp.async.bulk.wait_group.read 0;\n\tbar.sync 1, %d;\n", nc);
    P("\tmad.lo.u32 %%ep_s, %s, %d, %%dbuf;\n\tshl.b32 %%t0, %s, 1;\n\tadd.u32 %%ep_s, %%ep_s, %%t0;\n", ar, pitch,
      br);
    for (int i = 0; i < na; i++)
        for (int h = 0; h < 2; h++) {
            int aoff = k->swap ? i * 8 + h : i * 64 + 8 * h;
            for (int j = 0; j < nb; j++)
                for (int e = 0; e < 2; e++) {
                    int boff = k->swap ? j * 64 + 8 * e : j * 8 + e;
                    int mt = k->swap ? j : i, nt = k->swap ? i : j;
                    int hh = k->swap ? e : h, ee = k->swap ? h : e;
                    int c = (mt * k->nt + nt) * 4 + hh * 2 + ee;
                    P("\tcvt.rn.bf16.f32 %%ep_h, %%fin%d;\n\tst.shared.b16 [%%ep_s+%d], %%ep_h;\n", c,
                      aoff * pitch + boff * 2);
                }
        }
    P("\tfence.proxy.async.shared::cta;\n\tbar.sync 1, %d;\n", nc);
    if (t->layout == DSK_GEMM_DENSE) {
        P("\tsetp.eq.u32 %%pl, %%tx, 0;\n");
        P("\t@%%pl cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%%tmap_d, {%%n0, %%m0}], [%%dbuf];\n");
    } else {
        for (int r0 = 0; r0 < t->block_m; r0 += nc) {
            P("\tadd.u32 %%t2, %%tx, %d;\n", r0);
            P("\tsetp.lt.u32 %%pe, %%t2, %%a_valid;\n");
            if (r0 + nc > t->block_m)
                P("\tsetp.lt.and.u32 %%pe, %%t2, %d, %%pe;\n", t->block_m);
            P("\tadd.u32 %%t3, %%m0, %%t2;\n\tmad.lo.u32 %%ep_b, %%t2, %d, %%dbuf;\n", pitch);
            if (t->layout == DSK_GEMM_CONTIGUOUS) {
                P("\tmov.s32 %%ep_grp, -1;\n\tmul.wide.u32 %%u, %%t3, 4;\n\tadd.u64 %%u, %%idx, %%u;\n");
                P("\t@%%pe ld.global.s32 %%ep_grp, [%%u];\n\tsetp.eq.and.s32 %%pe, %%ep_grp, %%grp, %%pe;\n");
                P("\t@%%pe cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%%tmap_d, {%%n0, %%t3}], "
                  "[%%ep_b];\n");
            } else {
                P("\t@%%pe cp.async.bulk.tensor.3d.global.shared::cta.tile.bulk_group [%%tmap_d, {%%n0, %%t3, %%g}], "
                  "[%%ep_b];\n");
            }
        }
    }
    P("\tcp.async.bulk.commit_group;\n");
}

static void emit_consumer(sm90 *k, const dsk_gemm_frag *fr)
{
    int nacc = k->mt * k->mn / 2;
    P("\t// ---- consumer warpgroups: wgmma + FP32 promotion ----\n");
    if (k->cwg == 2)
        P("\tsetmaxnreg.inc.sync.aligned.u32 232;\n");
    P("\tmov.u32 %%stage, 0;\n\tmov.u32 %%ph, 0;\n\tmov.u32 %%tile, %s;\n", k->cl == 2 ? "%clusterid.x" : "%ctaid.x");
    emit_tile_coords(k, 'c');
    emit_tile_setup(k, "L_cnext");
    emit_consumer_addressing(k);
    for (int i = 0; i < nacc; i++)
        P("\tmov.f32 %%fin%d, 0f00000000;\n", i);
    P("\tmov.u32 %%kb, 0;\n");
    P("L_cons:\n");
    P("\tmad.lo.u32 %%fb, %%stage, 8, %%bar;\n");
    emit_wait(k, "%fb", "%ph");
    /* the stage's tiles: P (wgmma M side) and Q (N side) */
    P("\tmad.lo.u32 %%a_s, %%stage, %d, %%smem;\n", k->a_bytes);
    P("\tmad.lo.u32 %%b_s, %%stage, %d, %%smem;\n\tadd.u32 %%b_s, %%b_s, %d;\n", k->b_bytes, k->S * k->a_bytes);
    P("\tmad.lo.u32 %%sa_s, %%stage, %d, %%smem;\n\tadd.u32 %%sa_s, %%sa_s, %d;\n", k->sa_bytes,
      k->S * (k->a_bytes + k->b_bytes));
    P("\tshl.b32 %%t0, %%%s, 2;\n\tadd.u32 %%sc_as, %%sa_s, %%t0;\n", k->swap ? "rQ" : "rP");
    dsk_ptx_emit_scales(fr);
    const char *ps = k->swap ? "%b_s" : "%a_s", *qs = k->swap ? "%a_s" : "%b_s";
    P("\tmad.lo.u32 %%t0, %%wg, %d, %s;\n", k->mt * 64 * 128, ps);
    emit_desc(k, "%dp", "%t0");
    emit_desc(k, "%dq", qs);
    P("\twgmma.fence.sync.aligned;\n");
    for (int i = 0; i < k->mt; i++)
        for (int ks = 0; ks < 4; ks++) {
            /* 64 rows x 128 B = 512 descriptor units further per m64 tile; 32 B of K per k-step */
            P("\tadd.s64 %%u, %%dp, %d;\n\tadd.s64 %%v, %%dq, %d;\n", i * 512 + ks * 2, ks * 2);
            P("\twgmma.mma_async.sync.aligned.m64n%dk32.f32.e4m3.e4m3 {", k->mn);
            for (int j = 0; j < k->mn / 2; j++)
                P("%s%%ps%d", j ? ", " : "", i * (k->mn / 2) + j);
            P("}, %%u, %%v, %s, 1, 1;\n", ks == 0 ? "%pz" : "%pt");
        }
    P("\twgmma.commit_group.sync.aligned;\n\twgmma.wait_group.sync.aligned 0;\n");
    P("\t// release the stage: one arrival per consumer warp\n");
    P("\tmad.lo.u32 %%eb, %%stage, 8, %%bar;\n\tadd.u32 %%eb, %%eb, %d;\n", k->S * 8);
    P("\tsetp.eq.u32 %%pl, %%lane, 0;\n\t@%%pl mbarrier.arrive.shared::cta.b64 %%st, [%%eb];\n");
    if (k->cl == 2) {
        /* and on the partner CTA's empty barrier (PTX ISA "mapa", and "mbarrier.arrive"
         * on a shared::cluster address: release at cluster scope orders
         * this warp's reads of the stage before the partner's multicast overwrites it) */
        P("\tmapa.shared::cluster.u32 %%ra, %%eb, %%peer;\n");
        P("\t@%%pl mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%%ra];\n");
    }
    dsk_ptx_emit_promote(fr);
    emit_advance(k);
    P("\tadd.u32 %%kb, %%kb, 1;\n\tsetp.lt.u32 %%pl, %%kb, %%nk;\n\t@%%pl bra.uni L_cons;\n");
    P("\tsetp.ne.u32 %%pl, %%out_f32, 0;\n\t@%%pl bra.uni L_epi_f32;\n");
    if (k->t->tma_store)
        emit_tma_store(k);
    else
        dsk_ptx_emit_epilogue(fr, 0);
    P("\tbra.uni L_cnext;\nL_epi_f32:\n");
    dsk_ptx_emit_epilogue(fr, 1);
    emit_tile_next(k, 'c');
    if (k->t->tma_store)
        P("\t// the last tile's stores must be complete before the CTA (and its shared memory) ends\n"
          "\tcp.async.bulk.wait_group 0;\n");
}

void dsk_ptx_emit_sm90(const dsk_gemm_tile *t, const dsk_gemm_plan *p, const char *entry, dsk_ptx_text *b)
{
    sm90 kk, *k = &kk;
    memset(k, 0, sizeof kk);
    k->t = t;
    k->p = p;
    k->b = b;
    k->swap = t->swap_ab;
    k->mm = p->mma_m;
    k->mn = p->mma_n;
    k->cwg = p->consumer_warpgroups;
    k->mt = k->mm / 64 / k->cwg;
    k->nt = k->mn / 8;
    k->S = t->stages;
    k->cl = t->cluster;
    k->a_bytes = t->block_m * 128;
    k->b_bytes = t->block_n * 128;
    k->sa_bytes = (t->block_m * 4 + 127) / 128 * 128;
    if (t->swap_ab || 128 % t->block_n == 0)
        k->nb_vals = 1;
    else
        k->nb_vals = t->block_n <= 128 ? 2 : 3;
    dsk_gemm_frag fr = {.b = b, .swap = k->swap, .mt = k->mt, .nt = k->nt, .mstride = 64,
                        .nb_vals = k->nb_vals, .ascale_shared = 1, .layout = t->layout};

    P(".version 8.4\n.target sm_90a\n.address_size 64\n\n");
    P(".extern .shared .align 1024 .b8 dsk_smem[];\n");
    P(".shared .align 8 .b64 dsk_bar[%d];\n\n", 2 * k->S);
    emit_params(k, entry);
    P("{\n");
    emit_decls(k);
    emit_setup(k);
    P("\t// barriers: full[s] (count 1: producer arrive.expect_tx) at dsk_bar + 8s, empty[s] (count %d:\n",
      4 * k->cwg * k->cl);
    P("\t// one per consumer warp%s) at dsk_bar + 8(S + s)\n", k->cl == 2 ? " of both CTAs of the cluster" : "");
    P("\tsetp.ne.u32 %%pl, %%tx, 0;\n\t@%%pl bra L_init_done;  // divergent in warp 0: not .uni\n");
    for (int s = 0; s < k->S; s++) {
        P("\tmbarrier.init.shared::cta.b64 [%%bar+%d], 1;\n", s * 8);
        P("\tmbarrier.init.shared::cta.b64 [%%bar+%d], %d;\n", (k->S + s) * 8, 4 * k->cwg * k->cl);
    }
    P("\tfence.mbarrier_init.release.cluster;\n\tfence.proxy.async.shared::cta;\n");
    if (k->cl == 2)  /* the partner's barriers must be initialized before any remote access */
        P("L_init_done:\n\tbarrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;\n");
    else
        P("L_init_done:\n\tbar.sync 0;\n");
    P("\tsetp.lt.u32 %%pl, %%wg, %d;\n\t@%%pl bra.uni L_consumer;\n", k->cwg);
    emit_producer(k);
    P("L_consumer:\n");
    emit_consumer(k, &fr);
    P("L_end:\n");
    if (k->cl == 2)  /* no CTA leaves while its partner may still arrive on its barriers */
        P("\tbarrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;\n");
    P("L_exit:\n\tret;\n}\n");
}
