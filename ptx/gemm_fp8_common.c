/* ptx/gemm_fp8_common.c: PTX both FP8 GEMM emitters share: the per-k-block scale loads,
 * the FP32 promotion and the predicated epilogue. Both MMA families hand each thread the
 * same accumulator pattern (PTX ISA 9.7.14.5.8 for mma.m16n8k32, 9.7.15.5.1 for wgmma
 * m64nNk32 D fragments): register (mt, nt, h, e) = index (mt * nt_count + nt) * 4 + 2h + e
 * holds row rP + mt * mstride + 8h, column rQ + 8 nt + e of the MMA's (P, Q) tile, where
 * rP / rQ are per-thread registers the emitter set up (%rP, %rQ) and mstride is 16 (mma.sync
 * m16 tiles) or 64 (wgmma m64 tiles).
 *
 * Registers the caller declares and sets (names fixed): %ps* partial sums, %fin* final
 * accumulators, %sa*, %sbv*, %sbn* scales, %sprod, predicates %pv %pin %pa %pe, %kb,
 * %a_rem / %b_rem (valid A rows / B rows minus the thread's first A / B coordinate),
 * %nb_rem, %sb_blk*, %sb_kstep, %sc_* temporaries, %sa_thr + %sa_kstep (global a_scale)
 * or %sc_as (shared a_scale of the stage), %d_base, %d_row0, %d_col0, %ldd, %idx_thr, %grp,
 * %ep_* temporaries. */
#include <stdio.h>
#include "ptx/gemm_fp8_internal.h"

#define P(...) dsk_ptx_put(k->b, __VA_ARGS__)

/* Names of the scale registers: sP[i] for P's rows (mt, h), sQ[i] for Q's columns (nt, e). */
static void scale_name_p(const dsk_gemm_frag *k, int mt, int h, char *buf)
{
    if (k->swap)
        sprintf(buf, "%%sbv0");  /* P = B, one 128-block per tile (plan: block_n | 128) */
    else
        sprintf(buf, "%%sa%d", mt * 2 + h);
}

static void scale_name_q(const dsk_gemm_frag *k, int nt, int e, char *buf)
{
    if (k->swap)
        sprintf(buf, "%%sa%d", nt * 2 + e);
    else if (k->nb_vals == 1)
        sprintf(buf, "%%sbv0");
    else
        sprintf(buf, "%%sbn%d", nt);
}

/* The scales of k-block %kb: a_scale of this thread's A rows (predicated on the row being
 * inside M), b_scale of the 128-blocks the tile's B rows fall into. */
void dsk_ptx_emit_scales(const dsk_gemm_frag *k)
{
    P("\t// scales of this k-block (loaded before the MMAs to hide their latency)\n");
    if (!k->ascale_shared) {
        P("\tmul.wide.u32 %%sc_off, %%kb, %%sa_kstep;\n");
        P("\tadd.u64 %%sc_a, %%sa_thr, %%sc_off;\n");
    }
    int na = k->swap ? k->nt : k->mt;
    for (int i = 0; i < na; i++)
        for (int h = 0; h < 2; h++) {
            int off = k->swap ? i * 8 + h : i * k->mstride + 8 * h;
            if (k->ascale_shared) {
                P("\tld.shared.f32 %%sa%d, [%%sc_as+%d];\n", i * 2 + h, off * 4);
                continue;
            }
            P("\tmov.f32 %%sa%d, 0f00000000;\n", i * 2 + h);
            P("\tsetp.gt.s32 %%pv, %%a_rem, %d;\n", off);
            P("\t@%%pv ld.global.nc.f32 %%sa%d, [%%sc_a+%d];\n", i * 2 + h, off * 4);
        }
    P("\tmul.wide.u32 %%sc_off, %%kb, %%sb_kstep;\n");
    for (int v = 0; v < k->nb_vals; v++) {
        P("\tadd.u64 %%sc_b, %%sb_blk%d, %%sc_off;\n", v);
        P("\tld.global.nc.f32 %%sbv%d, [%%sc_b];\n", v);
    }
    if (!k->swap && k->nb_vals > 1)
        for (int nt = 0; nt < k->nt; nt++) {
            /* column wn*wtn + tig*2 + nt*8 of the tile is in the first block while it is
             * below nb_bound (= 128 - n0 % 128), in the second below nb_bound + 128 */
            P("\tsetp.gt.s32 %%pv, %%nb_rem, %d;\n", nt * 8);
            if (k->nb_vals == 3) {
                P("\tsetp.gt.s32 %%pin, %%nb_rem, %d;\n", nt * 8 - 128);
                P("\tselp.f32 %%sbn%d, %%sbv1, %%sbv2, %%pin;\n", nt);
                P("\tselp.f32 %%sbn%d, %%sbv0, %%sbn%d, %%pv;\n", nt, nt);
            } else {
                P("\tselp.f32 %%sbn%d, %%sbv0, %%sbv1, %%pv;\n", nt);
            }
        }
}

/* final += partial * scale_P(row) * scale_Q(col) (PTX ISA 9.7.14.5.8: c0, c1 at row gid,
 * c2, c3 at row gid + 8; columns tig*2, tig*2 + 1). */
void dsk_ptx_emit_promote(const dsk_gemm_frag *k)
{
    char sp[16], sq[16];
    P("\t// promotion: FP32 accumulation of this k-block's MMA sums with the scales\n");
    for (int mt = 0; mt < k->mt; mt++)
        for (int h = 0; h < 2; h++) {
            scale_name_p(k, mt, h, sp);
            for (int nt = 0; nt < k->nt; nt++)
                for (int e = 0; e < 2; e++) {
                    int c = (mt * k->nt + nt) * 4 + h * 2 + e;
                    scale_name_q(k, nt, e, sq);
                    P("\tmul.f32 %%sprod, %s, %s;\n", sp, sq);
                    P("\tfma.rn.f32 %%fin%d, %%ps%d, %%sprod, %%fin%d;\n", c, c, c);
                }
        }
}

/* Stores the final accumulators of this thread: predicated on row < valid rows of A (and,
 * for the contiguous layout, m_indices[row] == the tile's group) and col < valid rows of B. */
void dsk_ptx_emit_epilogue(const dsk_gemm_frag *k, int f32)
{
    int es = f32 ? 4 : 2;
    /* A side (runtime stride ldd in D) is the outer loop, B side (unit stride) the inner. */
    int na = k->swap ? k->nt : k->mt, nb = k->swap ? k->mt : k->nt;
    P("\t// epilogue (%s): predicated stores of the FP32 accumulators\n", f32 ? "f32" : "bf16");
    P("\tmul.wide.u32 %%ep_t, %%d_row0, %%ldd;\n");
    P("\tcvt.u64.u32 %%ep_u, %%d_col0;\n");
    P("\tadd.u64 %%ep_t, %%ep_t, %%ep_u;\n");
    P("\tmad.lo.u64 %%ep_row, %%ep_t, %d, %%d_base;\n", es);
    P("\tmul.wide.u32 %%ep_step, %%ldd, %d;\n", es);
    for (int i = 0; i < na; i++)
        for (int h = 0; h < 2; h++) {
            int aoff = k->swap ? i * 8 + h : i * k->mstride + 8 * h;
            P("\tsetp.gt.s32 %%pa, %%a_rem, %d;\n", aoff);
            if (k->layout == DSK_GEMM_CONTIGUOUS) {
                P("\tmov.s32 %%ep_grp, -1;\n");
                P("\t@%%pa ld.global.s32 %%ep_grp, [%%idx_thr+%d];\n", aoff * 4);
                P("\tsetp.eq.and.s32 %%pa, %%ep_grp, %%grp, %%pa;\n");
            }
            if (i || h) {
                P("\tmul.wide.u32 %%ep_t, %%ldd, %d;\n", aoff * es);
                P("\tadd.u64 %%ep_ptr, %%ep_row, %%ep_t;\n");
            } else {
                P("\tmov.u64 %%ep_ptr, %%ep_row;\n");
            }
            for (int j = 0; j < nb; j++)
                for (int e = 0; e < 2; e++) {
                    int boff = k->swap ? j * k->mstride + 8 * e : j * 8 + e;
                    int mt = k->swap ? j : i, nt = k->swap ? i : j;
                    int hh = k->swap ? e : h, ee = k->swap ? h : e;
                    int c = (mt * k->nt + nt) * 4 + hh * 2 + ee;
                    P("\tsetp.gt.and.s32 %%pe, %%b_rem, %d, %%pa;\n", boff);
                    if (f32) {
                        P("\t@%%pe st.global.f32 [%%ep_ptr+%d], %%fin%d;\n", boff * 4, c);
                    } else {
                        P("\tcvt.rn.bf16.f32 %%ep_h, %%fin%d;\n", c);
                        P("\t@%%pe st.global.b16 [%%ep_ptr+%d], %%ep_h;\n", boff * 2);
                    }
                }
        }
}

