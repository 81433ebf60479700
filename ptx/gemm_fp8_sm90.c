/* ptx/gemm_fp8_sm90.c: the Hopper (sm_90a: H800, H20, H100, H200) FP8 block-scaled GEMM emitter.
 *
 * Variants: dense / contiguous-grouped / masked-grouped, and swap_ab (wgmma's 64-row M side
 * takes B's rows and its N side A's rows: D^T = B . A^T, for small M).
 * Design (after DeepGEMM's fp8_gemm kernel; the code here is dsk's own):
 *   - warpgroups 0..C-1 consume (C = 1 or 2), warpgroup C produces; with C = 2 the kernel
 *     declares .maxnreg 168 and moves registers with setmaxnreg (producer 40, consumers 232);
 *   - one producer thread issues, per k-block of 128, three TMA loads
 *     (cp.async.bulk.tensor.2d) into a `stages`-deep ring: the A tile (BLOCK_M x 128 e4m3),
 *     the B tile (BLOCK_N x 128), both 128B-swizzled, and A's scales (BLOCK_M f32); each
 *     stage has a full mbarrier (producer arrive.expect_tx + TMA complete_tx) and an empty
 *     mbarrier (one arrival per consumer warp);
 *   - consumers issue 4 wgmma.mma_async m64nNk32 f32.e4m3.e4m3 per k-block per 64-row tile
 *     from matrix descriptors (K-major, 128B swizzle), wait, release the stage, and promote
 *     final += partial * a_scale(row) * b_scale(block) in FP32 registers (Hopper's FP8 MMA
 *     keeps ~14 bits of accumulation, so partial sums never run longer than 128 of K);
 *   - epilogue: predicated bf16 / f32 stores from registers (ragged M and N).
 * Not yet emitted: thread-block clusters with TMA multicast, the persistent scheduler, the
 * TMA store epilogue (the plan declares those configurations illegal, with the reason).
 * Parameter list: ptx/gemm_fp8_internal.h. */
#include <stdio.h>
#include <string.h>
#include "ptx/gemm_fp8_internal.h"

typedef struct sm90 {
    const dsk_gemm_tile *t;
    const dsk_gemm_plan *p;
    dsk_ptx_text *b;
    int swap, mm, mn, cwg, mt, nt, S, nb_vals;
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
    P("\t.param .u32 p_out_f32)\n");
    P(".maxntid %d, 1, 1\n", k->p->threads);
    if (k->cwg == 2)
        P(".maxnreg %d\n", k->p->max_regs);
}

static void emit_decls(sm90 *k)
{
    int nacc = k->mt * k->mn / 2;
    P("\t.reg .pred %%pin, %%pv, %%pa, %%pe, %%pl, %%pw, %%pz, %%pt;\n");
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
    P("\t.reg .b32 %%sc_as;\n");
    P("\t.reg .b64 %%tmap_a, %%tmap_b, %%tmap_sa, %%sb_ptr, %%d_base, %%idx, %%idx_thr, %%u, %%v, %%st;\n");
    P("\t.reg .b64 %%dp, %%dq, %%sb_blk<%d>, %%sc_off, %%sc_b;\n", k->nb_vals);
    P("\t.reg .b64 %%ep_t, %%ep_u, %%ep_row, %%ep_step, %%ep_ptr;\n");
}

static void emit_setup(sm90 *k)
{
    const dsk_gemm_tile *t = k->t;
    P("\tmov.u32 %%tx, %%tid.x;\n\tshr.u32 %%wg, %%tx, 7;\n\tshr.u32 %%warp, %%tx, 5;\n\tand.b32 %%warp, %%warp, 3;\n");
    P("\tand.b32 %%lane, %%tx, 31;\n\tshr.u32 %%gid, %%lane, 2;\n\tand.b32 %%tig, %%lane, 3;\n");
    P("\tmov.u32 %%t0, %%ctaid.y;\n\tmul.lo.u32 %%n0, %%t0, %d;\n", t->block_n);
    P("\tmov.u32 %%t0, %%ctaid.x;\n\tmul.lo.u32 %%m0, %%t0, %d;\n", t->block_m);
    P("\tmov.u32 %%g, %%ctaid.z;\n\tmov.u32 %%grp, 0;\n");
    P("\tsetp.ne.u32 %%pz, %%tx, %%tx;\n\tsetp.eq.u32 %%pt, %%tx, %%tx;\n");
    P("\tld.param.u64 %%tmap_a, [p_tmap_a];\n\tld.param.u64 %%tmap_b, [p_tmap_b];\n");
    P("\tld.param.u64 %%tmap_sa, [p_tmap_sa];\n\tld.param.u64 %%sb_ptr, [p_sb];\n");
    P("\tld.param.u64 %%d_base, [p_d];\n\tld.param.u64 %%idx, [p_idx];\n");
    P("\tcvta.to.global.u64 %%sb_ptr, %%sb_ptr;\n\tcvta.to.global.u64 %%d_base, %%d_base;\n");
    P("\tcvta.to.global.u64 %%idx, %%idx;\n");
    P("\tld.param.u32 %%m, [p_m];\n\tld.param.u32 %%n, [p_n];\n\tld.param.u32 %%kdim, [p_k];\n");
    P("\tld.param.u32 %%ldd, [p_ldd];\n\tld.param.u32 %%sb_n, [p_sb_n];\n\tld.param.u32 %%sb_k, [p_sb_k];\n");
    P("\tld.param.u32 %%out_f32, [p_out_f32];\n");
    P("\tshr.u32 %%nk, %%kdim, 7;\n\tmov.u32 %%mrows, %%m;\n");
    /* TMA rows of this tile: A in [G*max_m, K] (masked) or [M, K]; B in [G*N, K]; a_scale in
     * [G*ceil(K/128), rows] (row = group's k-block) */
    P("\tmov.u32 %%a_row, %%m0;\n\tmov.u32 %%b_row, %%n0;\n\tmov.u32 %%sa_row, 0;\n");
    if (t->layout == DSK_GEMM_MASKED) {
        P("\t// masked layout: group = ctaid.z, its row count masked_m[g] read on the device\n");
        P("\tmul.wide.u32 %%u, %%g, 4;\n\tadd.u64 %%u, %%idx, %%u;\n\tld.global.u32 %%mrows, [%%u];\n");
        P("\tmin.u32 %%mrows, %%mrows, %%m;\n");
        P("\tsetp.ge.u32 %%pl, %%m0, %%mrows;\n\t@%%pl bra.uni L_exit;\n");
        P("\tmad.lo.u32 %%a_row, %%g, %%m, %%m0;\n\tmad.lo.u32 %%b_row, %%g, %%n, %%n0;\n");
        P("\tmul.lo.u32 %%sa_row, %%g, %%nk;\n");
        P("\tld.param.u64 %%u, [p_gsb];\n\tcvt.u64.u32 %%v, %%g;\n\tmad.lo.u64 %%sb_ptr, %%u, %%v, %%sb_ptr;\n");
        P("\tld.param.u64 %%u, [p_gd];\n\tmad.lo.u64 %%d_base, %%u, %%v, %%d_base;\n");
    } else if (t->layout == DSK_GEMM_CONTIGUOUS) {
        P("\t// contiguous layout: the tile's group is m_indices[m0]; -1 marks padding\n");
        P("\tmul.wide.u32 %%u, %%m0, 4;\n\tadd.u64 %%u, %%idx, %%u;\n\tld.global.s32 %%grp, [%%u];\n");
        P("\tsetp.lt.s32 %%pl, %%grp, 0;\n\t@%%pl bra.uni L_exit;\n");
        P("\tmad.lo.u32 %%b_row, %%grp, %%n, %%n0;\n");
        P("\tld.param.u64 %%u, [p_gsb];\n\tcvt.u64.u32 %%v, %%grp;\n\tmad.lo.u64 %%sb_ptr, %%u, %%v, %%sb_ptr;\n");
    }
    P("\tsub.u32 %%a_valid, %%mrows, %%m0;\n\tsub.u32 %%b_valid, %%n, %%n0;\n");
    P("\t// the ring starts at the first 1024-byte boundary of dynamic shared memory (128B-swizzle atom)\n");
    P("\tmov.u32 %%smem, dsk_smem;\n\tadd.u32 %%smem, %%smem, 1023;\n\tand.b32 %%smem, %%smem, -1024;\n");
    P("\tmov.u32 %%bar, dsk_bar;\n");
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
    P("\t// ---- producer warpgroup: one thread issues the TMA loads ----\n");
    if (k->cwg == 2)
        P("\tsetmaxnreg.dec.sync.aligned.u32 40;\n");
    P("\tsetp.ne.u32 %%pl, %%tx, %d;\n\t@%%pl bra.uni L_exit;\n", k->cwg * 128);
    P("\tmov.u32 %%stage, 0;\n\tmov.u32 %%ph, 0;\n\tmov.u32 %%kb, 0;\n");
    P("L_prod:\n");
    P("\t// wait until the consumers released this stage (a fresh barrier passes parity 1)\n");
    P("\tmad.lo.u32 %%eb, %%stage, 8, %%bar;\n\tadd.u32 %%eb, %%eb, %d;\n", k->S * 8);
    P("\txor.b32 %%t1, %%ph, 1;\n");
    emit_wait(k, "%eb", "%t1");
    P("\tmad.lo.u32 %%fb, %%stage, 8, %%bar;\n");
    P("\tmbarrier.arrive.expect_tx.shared::cta.b64 %%st, [%%fb], %d;\n", k->a_bytes + k->b_bytes + k->t->block_m * 4);
    P("\tmad.lo.u32 %%a_s, %%stage, %d, %%smem;\n", k->a_bytes);
    P("\tmad.lo.u32 %%b_s, %%stage, %d, %%smem;\n\tadd.u32 %%b_s, %%b_s, %d;\n", k->b_bytes, k->S * k->a_bytes);
    P("\tmad.lo.u32 %%sa_s, %%stage, %d, %%smem;\n\tadd.u32 %%sa_s, %%sa_s, %d;\n", k->sa_bytes,
      k->S * (k->a_bytes + k->b_bytes));
    P("\tshl.b32 %%kc, %%kb, 7;\n\tadd.u32 %%t0, %%sa_row, %%kb;\n");
    P("\tcp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%a_s], [%%tmap_a, {%%kc, "
      "%%a_row}], [%%fb];\n");
    P("\tcp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%b_s], [%%tmap_b, {%%kc, "
      "%%b_row}], [%%fb];\n");
    P("\tcp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%sa_s], [%%tmap_sa, "
      "{%%m0, %%t0}], [%%fb];\n");
    emit_advance(k);
    P("\tadd.u32 %%kb, %%kb, 1;\n\tsetp.lt.u32 %%pl, %%kb, %%nk;\n\t@%%pl bra.uni L_prod;\n");
    P("\tbra.uni L_exit;\n");
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

static void emit_consumer(sm90 *k, const dsk_gemm_frag *fr)
{
    int nacc = k->mt * k->mn / 2;
    P("\t// ---- consumer warpgroups: wgmma + FP32 promotion ----\n");
    if (k->cwg == 2)
        P("\tsetmaxnreg.inc.sync.aligned.u32 232;\n");
    emit_consumer_addressing(k);
    for (int i = 0; i < nacc; i++)
        P("\tmov.f32 %%fin%d, 0f00000000;\n", i);
    P("\tmov.u32 %%stage, 0;\n\tmov.u32 %%ph, 0;\n\tmov.u32 %%kb, 0;\n");
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
    dsk_ptx_emit_promote(fr);
    emit_advance(k);
    P("\tadd.u32 %%kb, %%kb, 1;\n\tsetp.lt.u32 %%pl, %%kb, %%nk;\n\t@%%pl bra.uni L_cons;\n");
    P("\tsetp.ne.u32 %%pl, %%out_f32, 0;\n\t@%%pl bra.uni L_epi_f32;\n");
    dsk_ptx_emit_epilogue(fr, 0);
    P("\tbra.uni L_exit;\nL_epi_f32:\n");
    dsk_ptx_emit_epilogue(fr, 1);
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
    P("\t// barriers: full[s] (count 1: producer arrive.expect_tx) at dsk_bar + 8s, empty[s] (count %d:\n", 4 * k->cwg);
    P("\t// one per consumer warp) at dsk_bar + 8(S + s)\n");
    P("\tsetp.ne.u32 %%pl, %%tx, 0;\n\t@%%pl bra.uni L_init_done;\n");
    for (int s = 0; s < k->S; s++) {
        P("\tmbarrier.init.shared::cta.b64 [%%bar+%d], 1;\n", s * 8);
        P("\tmbarrier.init.shared::cta.b64 [%%bar+%d], %d;\n", (k->S + s) * 8, 4 * k->cwg);
    }
    P("\tfence.mbarrier_init.release.cluster;\n\tfence.proxy.async.shared::cta;\n");
    P("L_init_done:\n\tbar.sync 0;\n");
    P("\tsetp.lt.u32 %%pl, %%wg, %d;\n\t@%%pl bra.uni L_consumer;\n", k->cwg);
    emit_producer(k);
    P("L_consumer:\n");
    emit_consumer(k, &fr);
    P("L_exit:\n\tret;\n}\n");
}
