/* ptx/gemm_fp8_sm89.c: the Ada (sm_89, RTX 4090 / L20) FP8 block-scaled GEMM emitter.
 *
 * One kernel per tile configuration; variants: dense / contiguous-grouped / masked-grouped,
 * and swap_ab (the MMA's 16-row side takes B's rows, the 8-column side A's: D^T = B . A^T).
 * Design (DeepGEMM's numerics on Ada's instruction set, which has no TMA or wgmma):
 *   - warps_m x warps_n warps; each warp owns a (mma_m/warps_m) x (mma_n/warps_n) tile of
 *     mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 instructions;
 *   - a `stages`-deep cp.async ring in dynamic shared memory: per stage the P tile (the MMA
 *     M side, mma_m rows x 128 B of K) and the Q tile (mma_n rows x 128 B), each row's eight
 *     16-byte chunks XOR-swizzled by (row & 7) so ldmatrix reads are bank-conflict free;
 *     rows beyond M / N are zero-filled (cp.async src-size 0);
 *   - per 128 of K: 4 MMA k-steps into zeroed partial sums, then the promotion
 *     final += partial * a_scale(row, kb) * b_scale(n / 128, kb) in FP32 registers;
 *   - epilogue: predicated bf16 or f32 stores (ragged M and N).
 * Parameter list: ptx/gemm_fp8_internal.h. */
#include <stdio.h>
#include <string.h>
#include "ptx/gemm_fp8_internal.h"

typedef struct sm89 {
    const dsk_gemm_tile *t;
    const dsk_gemm_plan *p;
    dsk_ptx_text *b;
    int swap;
    int mm, mn;           /* MMA M side (P rows) and N side (Q rows) of the CTA tile */
    int wm, wn, wtm, wtn; /* warp grid and warp tile */
    int mt, nt;           /* m16 tiles and n8 tiles per warp */
    int T, T8;            /* threads, threads / 8 (rows one cp.async sweep covers) */
    int nb_vals;          /* distinct 128-blocks of B a tile's N side can touch (1..3) */
} sm89;

#define P(...) dsk_ptx_put(k->b, __VA_ARGS__)

/* cp.async of one operand's tile rows into the stage at %stg + soff (a shared address),
 * K offset %koff (bytes, u64). side 0: P, 1: Q. */
static void emit_load_side(sm89 *k, int side, int rows, int soff)
{
    const char *s = side ? "q" : "p";
    int iters = (rows * 8 + k->T - 1) / k->T;
    P("\tadd.u64 %%ld_g, %%%s_gthr, %%koff;\n", s);
    for (int j = 0; j < iters; j++) {
        int r = j * k->T8;
        int in_tile_all = r + k->T8 <= rows;
        if (!in_tile_all)
            P("\tsetp.lt.s32 %%pin, %%row0, %d;\n", rows - r);
        P("\tsetp.gt.s32 %%pv, %%%s_lrem, %d;\n", s, r);
        P("\tselp.b64 %%ld_a, %%ld_g, %%%s_base, %%pv;\n", s);
        P("\tselp.u32 %%ld_sz, 16, 0, %%pv;\n");
        /* rows r apart keep (row & 7) when r % 8 == 0, else flip bit 2 of the swizzle */
        int odd = (r / 4) & 1;
        P("\t%scp.async.cg.shared.global [%%ld_s%d+%d], [%%ld_a], 16, %%ld_sz;\n", in_tile_all ? "" : "@%pin ",
          odd, soff + r * 128);
        if (j + 1 < iters)
            P("\tadd.u64 %%ld_g, %%ld_g, %%%s_gstep;\n", s);
    }
}

/* Loads stage %ld_stage (shared offset, u32) with k-block %ld_kb. */
static void emit_load(sm89 *k)
{
    P("\t// cp.async: P and Q tiles of k-block %%ld_kb into the stage at %%ld_stage\n");
    P("\tmul.wide.u32 %%koff, %%ld_kb, 128;\n");
    P("\tadd.u32 %%ld_s0, %%ld_stage, %%sdst0;\n");
    P("\tadd.u32 %%ld_s1, %%ld_stage, %%sdst1;\n");
    emit_load_side(k, 0, k->mm, 0);
    emit_load_side(k, 1, k->mn, k->mm * 128);
}

/* The MMAs of one stage (%rs): 4 k-steps of 32; ks 0 starts from zero. PTX ISA 9.7.14.5.8
 * ("Matrix Fragments for mma.m16n8k32"): a0..a3 = A[gid | gid+8][tig*4 .. +3 | +16],
 * b0, b1 = B[k = tig*4 .. +3 | +16][n = gid]; with A and B stored row-major in K (16-byte
 * rows of ldmatrix = 16 k-values), ldmatrix.x4 (PTX ISA 9.7.9.24: thread l gets row l/4,
 * bytes 4*(l%4)..+3 of each 8x8 b16 matrix) yields exactly these registers: A from
 * matrices (rows 0-7, k 0-15), (rows 8-15, k 0-15), (rows 0-7, k 16-31), (rows 8-15, k 16-31);
 * B for n-tiles nt, nt+1 from (n 0-7, k 0-15), (n 0-7, k 16-31), (n 8-15, k 0-15), (n 8-15, k 16-31). */
static void emit_mma_stage(sm89 *k)
{
    P("\tadd.u32 %%rs_addr, %%smem, %%rs;\n");
    for (int ks = 0; ks < 4; ks++) {
        P("\t// k-step %d: fragments by ldmatrix, then %d MMAs\n", ks, k->mt * k->nt);
        P("\tadd.u32 %%lm_a, %%rs_addr, %%a_off%d;\n", ks);
        for (int mt = 0; mt < k->mt; mt++)
            P("\tldmatrix.sync.aligned.m8n8.x4.shared.b16 {%%fa%d, %%fa%d, %%fa%d, %%fa%d}, [%%lm_a+%d];\n", mt * 4,
              mt * 4 + 1, mt * 4 + 2, mt * 4 + 3, mt * 2048);
        P("\tadd.u32 %%lm_b, %%rs_addr, %%b_off%d;\n", ks);
        for (int nt = 0; nt < k->nt; nt += 2) {
            if (nt + 1 < k->nt)
                P("\tldmatrix.sync.aligned.m8n8.x4.shared.b16 {%%fb%d, %%fb%d, %%fb%d, %%fb%d}, [%%lm_b+%d];\n", nt * 2,
                  nt * 2 + 1, nt * 2 + 2, nt * 2 + 3, nt * 1024);
            else
                P("\tldmatrix.sync.aligned.m8n8.x2.shared.b16 {%%fb%d, %%fb%d}, [%%lm_b+%d];\n", nt * 2, nt * 2 + 1,
                  nt * 1024);
        }
        for (int mt = 0; mt < k->mt; mt++)
            for (int nt = 0; nt < k->nt; nt++) {
                int c = (mt * k->nt + nt) * 4;
                P("\tmma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%%ps%d, %%ps%d, %%ps%d, %%ps%d}, "
                  "{%%fa%d, %%fa%d, %%fa%d, %%fa%d}, {%%fb%d, %%fb%d}, ",
                  c, c + 1, c + 2, c + 3, mt * 4, mt * 4 + 1, mt * 4 + 2, mt * 4 + 3, nt * 2, nt * 2 + 1);
                if (ks == 0)
                    P("{%%fzero, %%fzero, %%fzero, %%fzero};\n");
                else
                    P("{%%ps%d, %%ps%d, %%ps%d, %%ps%d};\n", c, c + 1, c + 2, c + 3);
            }
    }
}

static void emit_params(sm89 *k, const char *entry)
{
    P(".visible .entry %s(\n", entry);
    P("\t.param .u64 p_a, .param .u64 p_b, .param .u64 p_sa, .param .u64 p_sb, .param .u64 p_d, .param .u64 p_idx,\n");
    P("\t.param .u32 p_m, .param .u32 p_n, .param .u32 p_k, .param .u32 p_lda, .param .u32 p_ldb, .param .u32 p_ldd,\n");
    P("\t.param .u32 p_sa_ld, .param .u32 p_sb_n, .param .u32 p_sb_k,\n");
    P("\t.param .u64 p_ga, .param .u64 p_gb, .param .u64 p_gsa, .param .u64 p_gsb, .param .u64 p_gd,\n");
    P("\t.param .u32 p_out_f32, .param .u64 p_tmap_d, .param .u32 p_groups)\n");
    P(".maxntid %d, 1, 1\n", k->T);
}

static void emit_decls(sm89 *k)
{
    int nacc = k->mt * k->nt * 4;
    P("\t.reg .pred %%pin, %%pv, %%pa, %%pe, %%pl;\n");
    P("\t.reg .b16 %%ep_h;\n");
    P("\t.reg .f32 %%ps<%d>, %%fin<%d>, %%fzero, %%sprod;\n", nacc, nacc);
    P("\t.reg .f32 %%sa<%d>, %%sbv<%d>", 2 * (k->swap ? k->nt : k->mt), k->nb_vals);
    if (!k->swap && k->nb_vals > 1)
        P(", %%sbn<%d>", k->nt);
    P(";\n");
    P("\t.reg .b32 %%fa<%d>, %%fb<%d>;\n", k->mt * 4, k->nt * 2);
    P("\t.reg .b32 %%tx, %%warp, %%lane, %%wm, %%wn, %%gid, %%tig, %%q, %%r8, %%y, %%t0, %%t1;\n");
    P("\t.reg .b32 %%m0, %%n0, %%g, %%grp, %%mrows, %%m, %%n, %%kdim, %%nk, %%kb, %%lda, %%ldb, %%ldd;\n");
    P("\t.reg .b32 %%sa_ld, %%sb_n, %%sb_k, %%sa_kstep, %%sb_kstep, %%out_f32, %%nbmax, %%nb0;\n");
    P("\t.reg .b32 %%a_valid, %%b_valid, %%a_rem, %%b_rem, %%nb_rem, %%p_rem, %%q_rem, %%p_lrem, %%q_lrem, %%rP, %%rQ;\n");
    P("\t.reg .b32 %%row0, %%chunk, %%sdst0, %%sdst1, %%smem, %%rs, %%ws, %%ld_stage, %%ld_kb, %%ld_s0, %%ld_s1;\n");
    P("\t.reg .b32 %%ld_sz, %%rs_addr, %%lm_a, %%lm_b, %%a_off<4>, %%b_off<4>, %%d_row0, %%d_col0, %%ep_grp;\n");
    P("\t.reg .b64 %%a_ptr, %%b_ptr, %%sa_ptr, %%sb_ptr, %%d_base, %%idx, %%idx_thr, %%u, %%v;\n");
    P("\t.reg .b64 %%p_base, %%q_base, %%p_gthr, %%q_gthr, %%p_gstep, %%q_gstep, %%koff, %%ld_g, %%ld_a;\n");
    P("\t.reg .b64 %%sa_thr, %%sb_blk<%d>, %%sc_off, %%sc_a, %%sc_b;\n", k->nb_vals);
    P("\t.reg .b64 %%ep_t, %%ep_u, %%ep_row, %%ep_step, %%ep_ptr;\n");
}

/* Thread and tile coordinates, the group of the tile, operand base pointers. */
static void emit_setup(sm89 *k)
{
    const dsk_gemm_tile *t = k->t;
    P("\t// thread coordinates: warp (wm, wn) of the %dx%d warp grid, lane = 4*gid + tig\n", k->wm, k->wn);
    P("\tmov.u32 %%tx, %%tid.x;\n");
    P("\tshr.u32 %%warp, %%tx, 5;\n");
    P("\tand.b32 %%lane, %%tx, 31;\n");
    P("\trem.u32 %%wm, %%warp, %d;\n", k->wm);
    P("\tdiv.u32 %%wn, %%warp, %d;\n", k->wm);
    P("\tshr.u32 %%gid, %%lane, 2;\n");
    P("\tand.b32 %%tig, %%lane, 3;\n");
    P("\tmov.u32 %%t0, %%ctaid.y;\n");
    P("\tmul.lo.u32 %%n0, %%t0, %d;\n", t->block_n);
    P("\tmov.u32 %%t0, %%ctaid.x;\n");
    P("\tmul.lo.u32 %%m0, %%t0, %d;\n", t->block_m);
    P("\tmov.u32 %%g, %%ctaid.z;\n");
    P("\tmov.f32 %%fzero, 0f00000000;\n");
    P("\tld.param.u64 %%a_ptr, [p_a];\n\tld.param.u64 %%b_ptr, [p_b];\n");
    P("\tld.param.u64 %%sa_ptr, [p_sa];\n\tld.param.u64 %%sb_ptr, [p_sb];\n");
    P("\tld.param.u64 %%d_base, [p_d];\n\tld.param.u64 %%idx, [p_idx];\n");
    P("\tcvta.to.global.u64 %%a_ptr, %%a_ptr;\n\tcvta.to.global.u64 %%b_ptr, %%b_ptr;\n");
    P("\tcvta.to.global.u64 %%sa_ptr, %%sa_ptr;\n\tcvta.to.global.u64 %%sb_ptr, %%sb_ptr;\n");
    P("\tcvta.to.global.u64 %%d_base, %%d_base;\n\tcvta.to.global.u64 %%idx, %%idx;\n");
    P("\tld.param.u32 %%m, [p_m];\n\tld.param.u32 %%n, [p_n];\n\tld.param.u32 %%kdim, [p_k];\n");
    P("\tld.param.u32 %%lda, [p_lda];\n\tld.param.u32 %%ldb, [p_ldb];\n\tld.param.u32 %%ldd, [p_ldd];\n");
    P("\tld.param.u32 %%sa_ld, [p_sa_ld];\n\tld.param.u32 %%sb_n, [p_sb_n];\n\tld.param.u32 %%sb_k, [p_sb_k];\n");
    P("\tld.param.u32 %%out_f32, [p_out_f32];\n");
    P("\tshr.u32 %%nk, %%kdim, 7;\n");
    P("\tmov.u32 %%mrows, %%m;\n");
    if (t->layout == DSK_GEMM_MASKED) {
        P("\t// masked layout: group = ctaid.z, its row count masked_m[g] read here (graph-capturable)\n");
        P("\tmul.wide.u32 %%u, %%g, 4;\n\tadd.u64 %%u, %%idx, %%u;\n");
        P("\tld.global.u32 %%mrows, [%%u];\n");
        P("\tmin.u32 %%mrows, %%mrows, %%m;\n");
        P("\tsetp.ge.u32 %%pl, %%m0, %%mrows;\n\t@%%pl bra.uni L_exit;\n");
        static const char *gs[] = {"ga", "gsa", "gb", "gsb", "gd"};
        static const char *ps[] = {"a_ptr", "sa_ptr", "b_ptr", "sb_ptr", "d_base"};
        for (int i = 0; i < 5; i++) {
            P("\tld.param.u64 %%u, [p_%s];\n", gs[i]);
            P("\tcvt.u64.u32 %%v, %%g;\n\tmad.lo.u64 %%%s, %%u, %%v, %%%s;\n", ps[i], ps[i]);
        }
    } else if (t->layout == DSK_GEMM_CONTIGUOUS) {
        P("\t// contiguous layout: the tile's group is m_indices[m0] (segments are BLOCK_M-aligned); -1: padding\n");
        P("\tmul.wide.u32 %%u, %%m0, 4;\n\tadd.u64 %%u, %%idx, %%u;\n");
        P("\tld.global.s32 %%grp, [%%u];\n");
        P("\tsetp.lt.s32 %%pl, %%grp, 0;\n\t@%%pl bra.uni L_exit;\n");
        static const char *gs[] = {"gb", "gsb"};
        static const char *ps[] = {"b_ptr", "sb_ptr"};
        for (int i = 0; i < 2; i++) {
            P("\tld.param.u64 %%u, [p_%s];\n", gs[i]);
            P("\tcvt.u64.u32 %%v, %%grp;\n\tmad.lo.u64 %%%s, %%u, %%v, %%%s;\n", ps[i], ps[i]);
        }
    }
    P("\tsub.u32 %%a_valid, %%mrows, %%m0;\n");
    P("\tsub.u32 %%b_valid, %%n, %%n0;\n");
}

/* Per-thread loader and fragment addresses, scale pointers, epilogue coordinates. */
static void emit_addressing(sm89 *k)
{
    /* P = A (rows m0.., stride lda) unless swapped; Q the other. */
    const char *pp = k->swap ? "b_ptr" : "a_ptr", *qp = k->swap ? "a_ptr" : "b_ptr";
    const char *pld = k->swap ? "ldb" : "lda", *qld = k->swap ? "lda" : "ldb";
    const char *p0 = k->swap ? "n0" : "m0", *q0 = k->swap ? "m0" : "n0";
    const char *pv = k->swap ? "b_valid" : "a_valid", *qv = k->swap ? "a_valid" : "b_valid";
    P("\t// cp.async addressing: thread loads 16-byte chunk (tid %% 8) of rows tid/8 + j*%d;\n", k->T8);
    P("\t// the chunk lands at (chunk ^ (row & 7)) * 16 in its 128-byte shared row\n");
    P("\tshr.u32 %%row0, %%tx, 3;\n");
    P("\tand.b32 %%chunk, %%tx, 7;\n");
    P("\tand.b32 %%t0, %%row0, 7;\n\txor.b32 %%t0, %%t0, %%chunk;\n");
    P("\tshl.b32 %%t1, %%row0, 7;\n");
    P("\tshl.b32 %%sdst0, %%t0, 4;\n\tadd.u32 %%sdst0, %%sdst0, %%t1;\n");
    P("\txor.b32 %%t0, %%t0, 4;\n\tshl.b32 %%sdst1, %%t0, 4;\n\tadd.u32 %%sdst1, %%sdst1, %%t1;\n");
    for (int s = 0; s < 2; s++) {
        const char *n = s ? "q" : "p";
        P("\tmov.u64 %%%s_base, %%%s;\n", n, s ? qp : pp);
        P("\tadd.u32 %%t0, %%%s, %%row0;\n", s ? q0 : p0);
        P("\tmul.wide.u32 %%u, %%t0, %%%s;\n", s ? qld : pld);
        P("\tadd.u64 %%u, %%u, %%%s_base;\n", n);
        P("\tmul.wide.u32 %%v, %%chunk, 16;\n");
        P("\tadd.u64 %%%s_gthr, %%u, %%v;\n", n);
        P("\tmul.wide.u32 %%%s_gstep, %%%s, %d;\n", n, s ? qld : pld, k->T8);
        P("\tsub.s32 %%%s_lrem, %%%s, %%row0;\n", n, s ? qv : pv);
    }
    P("\t// ldmatrix addressing (lane l supplies row l %% 8 of matrix l / 8)\n");
    P("\tshr.u32 %%q, %%lane, 3;\n\tand.b32 %%r8, %%lane, 7;\n");
    /* P: matrix q covers rows (q & 1) * 8.., k-chunk 2ks + (q >> 1) */
    P("\tand.b32 %%t0, %%q, 1;\n\tshl.b32 %%t0, %%t0, 3;\n\tadd.u32 %%t0, %%t0, %%r8;\n");
    P("\tmad.lo.u32 %%t0, %%wm, %d, %%t0;\n\tshl.b32 %%t1, %%t0, 7;\n", k->wtm);
    P("\tshr.u32 %%y, %%q, 1;\n\txor.b32 %%y, %%y, %%r8;\n");
    for (int ks = 0; ks < 4; ks++)
        P("\txor.b32 %%t0, %%y, %d;\n\tshl.b32 %%t0, %%t0, 4;\n\tadd.u32 %%a_off%d, %%t1, %%t0;\n", 2 * ks, ks);
    /* Q: matrix q covers rows (q >> 1) * 8.., k-chunk 2ks + (q & 1) */
    P("\tshr.u32 %%t0, %%q, 1;\n\tshl.b32 %%t0, %%t0, 3;\n\tadd.u32 %%t0, %%t0, %%r8;\n");
    P("\tmad.lo.u32 %%t0, %%wn, %d, %%t0;\n\tadd.u32 %%t0, %%t0, %d;\n\tshl.b32 %%t1, %%t0, 7;\n", k->wtn, k->mm);
    P("\tand.b32 %%y, %%q, 1;\n\txor.b32 %%y, %%y, %%r8;\n");
    for (int ks = 0; ks < 4; ks++)
        P("\txor.b32 %%t0, %%y, %d;\n\tshl.b32 %%t0, %%t0, 4;\n\tadd.u32 %%b_off%d, %%t1, %%t0;\n", 2 * ks, ks);

    P("\t// accumulator coordinates: P row rP = wm*%d + gid (+16 mt, +8), Q col rQ = wn*%d + 2 tig (+8 nt, +1)\n",
      k->wtm, k->wtn);
    P("\tmad.lo.u32 %%rP, %%wm, %d, %%gid;\n", k->wtm);
    P("\tshl.b32 %%t0, %%tig, 1;\n\tmad.lo.u32 %%rQ, %%wn, %d, %%t0;\n", k->wtn);
    P("\tsub.s32 %%p_rem, %%%s, %%rP;\n", pv);
    P("\tsub.s32 %%q_rem, %%%s, %%rQ;\n", qv);
    /* A-side / B-side aliases for the scale loads and the epilogue */
    const char *ar = k->swap ? "rQ" : "rP", *br = k->swap ? "rP" : "rQ";
    P("\tmov.s32 %%a_rem, %%%s;\n", k->swap ? "q_rem" : "p_rem");
    P("\tmov.s32 %%b_rem, %%%s;\n", k->swap ? "p_rem" : "q_rem");
    P("\tadd.u32 %%d_row0, %%m0, %%%s;\n", ar);
    P("\tadd.u32 %%d_col0, %%n0, %%%s;\n", br);
    if (k->t->layout == DSK_GEMM_CONTIGUOUS)
        P("\tmul.wide.u32 %%u, %%d_row0, 4;\n\tadd.u64 %%idx_thr, %%idx, %%u;\n");
    P("\t// a_scale is MN-major: (row, kb) at sa[kb * sa_ld + row]\n");
    P("\tmul.wide.u32 %%u, %%d_row0, 4;\n\tadd.u64 %%sa_thr, %%sa_ptr, %%u;\n");
    P("\tshl.b32 %%sa_kstep, %%sa_ld, 2;\n\tshl.b32 %%sb_kstep, %%sb_k, 2;\n");
    P("\t// b_scale blocks of the tile: nb0 = n0 / 128 (+1, +2 clamped to ceil(N/128) - 1)\n");
    P("\tadd.u32 %%nbmax, %%n, 127;\n\tshr.u32 %%nbmax, %%nbmax, 7;\n\tsub.u32 %%nbmax, %%nbmax, 1;\n");
    P("\tshr.u32 %%nb0, %%n0, 7;\n");
    for (int v = 0; v < k->nb_vals; v++) {
        P("\tadd.u32 %%t0, %%nb0, %d;\n\tmin.u32 %%t0, %%t0, %%nbmax;\n", v);
        P("\tmul.wide.u32 %%u, %%t0, %%sb_n;\n\tshl.b64 %%u, %%u, 2;\n\tadd.u64 %%sb_blk%d, %%sb_ptr, %%u;\n", v);
    }
    if (!k->swap && k->nb_vals > 1) {
        P("\tand.b32 %%t0, %%n0, 127;\n\tmov.u32 %%t1, 128;\n\tsub.u32 %%t0, %%t1, %%t0;\n");
        P("\tsub.s32 %%nb_rem, %%t0, %%rQ;\n");
    }
}

void dsk_ptx_emit_sm89(const dsk_gemm_tile *t, const dsk_gemm_plan *p, const char *entry, dsk_ptx_text *b)
{
    sm89 kk, *k = &kk;
    memset(k, 0, sizeof kk);
    k->t = t;
    k->p = p;
    k->b = b;
    k->swap = t->swap_ab;
    k->mm = p->mma_m;
    k->mn = p->mma_n;
    k->wm = p->warps_m;
    k->wn = p->warps_n;
    k->wtm = k->mm / k->wm;
    k->wtn = k->mn / k->wn;
    k->mt = k->wtm / 16;
    k->nt = k->wtn / 8;
    k->T = p->threads;
    k->T8 = k->T / 8;
    /* How many 128-blocks of B's rows one tile can straddle. */
    if (t->swap_ab || 128 % t->block_n == 0)
        k->nb_vals = 1;
    else
        k->nb_vals = t->block_n <= 128 ? 2 : 3;
    int S = t->stages;
    int sb = (int)p->stage_bytes;
    dsk_gemm_frag fr = {.b = b, .swap = k->swap, .mt = k->mt, .nt = k->nt, .mstride = 16,
                        .nb_vals = k->nb_vals, .ascale_shared = 0, .layout = t->layout};

    P(".version 8.4\n.target sm_89\n.address_size 64\n\n");
    P(".extern .shared .align 128 .b8 dsk_smem[];\n\n");
    emit_params(k, entry);
    P("{\n");
    emit_decls(k);
    emit_setup(k);
    emit_addressing(k);
    int nacc = k->mt * k->nt * 4;
    for (int i = 0; i < nacc; i++)
        P("\tmov.f32 %%fin%d, 0f00000000;\n", i);
    P("\tmov.u32 %%smem, dsk_smem;\n");

    P("\t// pipeline prologue: k-blocks 0..%d into stages 0..%d (one commit group each)\n", S - 2, S - 2);
    for (int s = 0; s < S - 1; s++) {
        int l = dsk_ptx_label(b);
        P("\tsetp.le.s32 %%pl, %%nk, %d;\n\t@%%pl bra.uni L%d;\n", s, l);
        P("\tadd.u32 %%ld_stage, %%smem, %d;\n\tmov.u32 %%ld_kb, %d;\n", s * sb, s);
        emit_load(k);
        P("L%d:\n\tcp.async.commit_group;\n", l);
    }
    P("\tmov.u32 %%rs, 0;\n\tmov.u32 %%ws, %d;\n\tmov.u32 %%kb, 0;\n", (S - 1) * sb);
    P("L_kloop:\n");
    P("\t// stage kb is complete for this thread once at most %d groups are pending; the barrier\n", S - 2);
    P("\t// makes it complete for all and frees stage kb-1 for the next load\n");
    P("\tcp.async.wait_group %d;\n\tbar.sync 0;\n", S - 2);
    {
        int l = dsk_ptx_label(b);
        P("\tadd.u32 %%ld_kb, %%kb, %d;\n", S - 1);
        P("\tsetp.ge.u32 %%pl, %%ld_kb, %%nk;\n\t@%%pl bra.uni L%d;\n", l);
        P("\tadd.u32 %%ld_stage, %%smem, %%ws;\n");
        emit_load(k);
        P("L%d:\n\tcp.async.commit_group;\n", l);
        P("\tadd.u32 %%ws, %%ws, %d;\n\tsetp.eq.u32 %%pl, %%ws, %d;\n\tselp.u32 %%ws, 0, %%ws, %%pl;\n", sb, S * sb);
    }
    dsk_ptx_emit_scales(&fr);
    emit_mma_stage(k);
    dsk_ptx_emit_promote(&fr);
    P("\tadd.u32 %%rs, %%rs, %d;\n\tsetp.eq.u32 %%pl, %%rs, %d;\n\tselp.u32 %%rs, 0, %%rs, %%pl;\n", sb, S * sb);
    P("\tadd.u32 %%kb, %%kb, 1;\n\tsetp.lt.u32 %%pl, %%kb, %%nk;\n\t@%%pl bra.uni L_kloop;\n");
    P("\tcp.async.wait_group 0;\n");
    P("\tsetp.ne.u32 %%pl, %%out_f32, 0;\n\t@%%pl bra.uni L_epi_f32;\n");
    dsk_ptx_emit_epilogue(&fr, 0);
    P("\tbra.uni L_exit;\nL_epi_f32:\n");
    dsk_ptx_emit_epilogue(&fr, 1);
    P("L_exit:\n\tret;\n}\n");
}
