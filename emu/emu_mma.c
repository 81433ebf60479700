/* emu/emu_mma.c: ldmatrix, stmatrix, mma.sync and wgmma.
 *
 * Each executes once per warp: the lanes' fragments are gathered into plain matrices,
 * multiplied, and scattered back. Layouts follow the PTX ISA (section numbers of ISA 8.x):
 * - ldmatrix/stmatrix: 9.7.14.5.15/16 ("Warp-level matrix load/store"): lane 8i+r gives
 *   the address of row r of matrix i; register i of lane t holds row t/4, columns
 *   2*(t%4) and 2*(t%4)+1 (with .trans: column t/4 of rows 2*(t%4), 2*(t%4)+1).
 * - mma.sync m16n8k16 (.f16/.bf16) and m16n8k32 (.e4m3/.e5m2): 9.7.14.5.8 / 9.7.14.5.10
 *   "Matrix Fragments": groupID = lane/4, tig = lane%4; A register r, element e:
 *   row = groupID + 8*(r&1), col = e + tig*E + (E*4)*(r>>1) (E = elements per register);
 *   B register r, element e: k = e + tig*E + (E*4)*r, n = groupID; C/D element i:
 *   row = groupID + 8*(i>>1), col = 2*tig + (i&1).
 * - wgmma (9.7.15.5.1 "Register Fragments and Shared Memory Matrix Layouts"): warp q of
 *   the warpgroup owns rows 16q..16q+15; accumulator i of lane l: row 16q + l/4 +
 *   8*((i>>1)&1), col 8*(i>>2) + 2*(l%4) + (i&1); A from registers as mma.sync's A.
 *   Shared-memory operands via the matrix descriptor (9.7.15.5.1.2.2: start address
 *   bits 0-13, LBO 16-29, SBO 32-45, base offset 49-51, swizzle 62-63, each >> 4) and the
 *   canonical layouts of 9.7.15.5.1.2.1.3, swizzle Swizzle<B,4,3> on the byte address.
 *
 * FP8 accumulation: exact (ideal) by default: the products of one instruction are summed
 * exactly in double and added to the f32 accumulator with one rounding. The "hopper" mode
 * models Hopper's FP8 tensor cores after the DeepSeek-V3 technical report (arXiv:2412.19437,
 * "accumulation precision ... limited to retaining around 14 bits") and the MMA-Sim study
 * (Xie et al., arXiv:2511.10909: products aligned to the largest exponent and truncated):
 * the products and the accumulator are aligned to the largest exponent among them and
 * truncated toward zero to EMU_FP8_ACC_BITS bits (leading bit included) before an exact sum. It is
 * a model of the published behaviour, not a bit-exact simulation of the hardware. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "emu_internal.h"

/* bits kept below and including the leading bit of the largest aligned term ("around 14
 * bits", DeepSeek-V3 report) */
#define EMU_FP8_ACC_BITS 14

static float g_fp8[2][256];
static pthread_once_t g_fp8_once = PTHREAD_ONCE_INIT;

static void fp8_tables(void)
{
    for (int i = 0; i < 256; i++) {
        g_fp8[0][i] = dsk_fp8_to_f32((uint8_t)i, DSK_E4M3);
        g_fp8[1][i] = dsk_fp8_to_f32((uint8_t)i, DSK_E5M2);
    }
}

float emu_fp8_value(uint8_t v, int e5m2)
{
    pthread_once(&g_fp8_once, fp8_tables);
    return g_fp8[e5m2][v];
}

/* element e (of E per 32-bit register) of type t as float */
static float elem(uint32_t reg, int e, int t)
{
    switch (t) {
    case T_E4M3: return emu_fp8_value((uint8_t)(reg >> (8 * e)), 0);
    case T_E5M2: return emu_fp8_value((uint8_t)(reg >> (8 * e)), 1);
    case T_BF16: return dsk_bf16_to_f32((uint16_t)(reg >> (16 * e)));
    default: return dsk_f16_to_f32((uint16_t)(reg >> (16 * e)));
    }
}

static int is_fp8(int t) { return t == T_E4M3 || t == T_E5M2; }

/* acc + sum_k a[k]*b[k] under the accumulation model */
static float dot_acc(float acc, const float *a, const float *b, int K, int hopper)
{
    if (!hopper) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            s0 += (double)a[k] * b[k];
            s1 += (double)a[k + 1] * b[k + 1];
            s2 += (double)a[k + 2] * b[k + 2];
            s3 += (double)a[k + 3] * b[k + 3];
        }
        for (; k < K; k++) s0 += (double)a[k] * b[k];
        return (float)((double)acc + ((s0 + s1) + (s2 + s3)));
    }
    double p[65];
    int emax = -100000;
    for (int k = 0; k < K; k++) {
        p[k] = (double)a[k] * b[k];
        if (p[k] != 0) {
            int e;
            frexp(p[k], &e);
            if (e > emax) emax = e;
        }
    }
    p[K] = acc;
    if (acc != 0) {
        int e;
        frexp((double)acc, &e);
        if (e > emax) emax = e;
    }
    if (emax == -100000) return acc;
    /* frexp: x = m * 2^e with 0.5 <= |m| < 1, so the leading bit weighs 2^(e-1) */
    double q = ldexp(1.0, emax - EMU_FP8_ACC_BITS);
    double s = 0;
    for (int k = 0; k <= K; k++) s += trunc(p[k] / q) * q;
    return (float)s;
}

static int need_full_warp(emu_warp *w, const emu_insn *in, uint32_t m)
{
    if (m != 0xFFFFFFFFu || w->live != 0xFFFFFFFFu)
        return emu_error(w, in, __builtin_ctz(m | 1u),
                         "warp-collective .aligned instruction executed by lanes 0x%08x: all 32 lanes must execute it "
                         "together (partial-warp collective)", m);
    return 0;
}

static int regs_valid(emu_warp *w, const emu_insn *in, const int32_t *slots, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        int s = slots[i];
        if (s >= 0 && w->valid[s] != 0xFFFFFFFFu) {
            int lane = __builtin_ctz(~w->valid[s]);
            if (w->pend[s])
                return emu_error(w, in, lane, "%s register %d is a wgmma accumulator still in flight", what, i);
            return emu_error(w, in, lane, "%s register %d was never written", what, i);
        }
    }
    return 0;
}

/* ---- ldmatrix / stmatrix -------------------------------------------------------------- */

static int matrix_rows(emu_warp *w, const emu_insn *in, uint8_t *rows[32], int write)
{
    const uint64_t *base = EMU_R(w, in->s[0]);
    int nrows = 8 * in->vec;
    for (int t = 0; t < nrows; t++) {
        uint64_t a = base[t] + (uint64_t)in->imm;
        if (a & 15) return emu_error(w, in, t, "row address 0x%llx is not 16-byte aligned", (unsigned long long)a);
        rows[t] = emu_addr(w, in, t, in->space == SP_GENERIC ? SP_GENERIC : SP_SHARED, a, 16, write);
        if (!rows[t]) return -1;
    }
    return 0;
}

int emu_exec_ldmatrix(emu_warp *w, const emu_insn *in, uint32_t m)
{
    if (need_full_warp(w, in, m)) return -1;
    uint8_t *rows[32];
    if (matrix_rows(w, in, rows, 0)) return -1;
    for (int i = 0; i < in->vec; i++) {
        uint64_t *d = EMU_R(w, in->d[i]);
        for (int t = 0; t < 32; t++) {
            uint16_t lo, hi;
            if (in->mod & M_TRANS) {
                int r0 = 2 * (t % 4), c = t / 4;
                memcpy(&lo, rows[8 * i + r0] + 2 * c, 2);
                memcpy(&hi, rows[8 * i + r0 + 1] + 2 * c, 2);
            } else {
                int r = t / 4, c0 = 2 * (t % 4);
                memcpy(&lo, rows[8 * i + r] + 2 * c0, 2);
                memcpy(&hi, rows[8 * i + r] + 2 * c0 + 2, 2);
            }
            d[t] = (uint32_t)hi << 16 | lo;
        }
    }
    return 0;
}

int emu_exec_stmatrix(emu_warp *w, const emu_insn *in, uint32_t m)
{
    if (need_full_warp(w, in, m)) return -1;
    uint8_t *rows[32];
    if (matrix_rows(w, in, rows, 1)) return -1;
    for (int i = 0; i < in->vec; i++) {
        const uint64_t *s = EMU_R(w, in->s[1 + i]);
        for (int t = 0; t < 32; t++) {
            uint16_t lo = (uint16_t)s[t], hi = (uint16_t)(s[t] >> 16);
            if (in->mod & M_TRANS) {
                int r0 = 2 * (t % 4), c = t / 4;
                memcpy(rows[8 * i + r0] + 2 * c, &lo, 2);
                memcpy(rows[8 * i + r0 + 1] + 2 * c, &hi, 2);
            } else {
                int r = t / 4, c0 = 2 * (t % 4);
                memcpy(rows[8 * i + r] + 2 * c0, &lo, 2);
                memcpy(rows[8 * i + r] + 2 * c0 + 2, &hi, 2);
            }
        }
    }
    return 0;
}

/* ---- mma.sync ------------------------------------------------------------------------- */

int emu_exec_mma(emu_warp *w, const emu_insn *in, uint32_t m)
{
    if (need_full_warp(w, in, m)) return -1;
    const int32_t *L = w->cta->L->k->lists + in->list;
    const int32_t *dl = L, *al = L + 4, *bl = L + 8, *cl = L + 10;
    if (regs_valid(w, in, al, 4, "A") || regs_valid(w, in, bl, 2, "B") || regs_valid(w, in, cl, 4, "C")) return -1;
    for (int i = 0; i < 4; i++)
        if (w->pend[dl[i]]) return emu_error(w, in, 0, "D register %d is a wgmma accumulator in flight", i);
    int K = (int)in->imm;
    int E = K == 32 ? 4 : 2;  /* elements per 32-bit register */
    float A[16][32], B[8][32], C[16][8];
    (void)emu_fp8_value(0, 0);
    const float *la = in->type2 == T_E5M2 ? g_fp8[1] : g_fp8[0], *lb = in->type3 == T_E5M2 ? g_fp8[1] : g_fp8[0];
    int fp8 = is_fp8(in->type2);
    for (int l = 0; l < 32; l++) {
        int g = l / 4, t = l % 4;
        for (int r = 0; r < 4; r++) {
            uint32_t v = (uint32_t)EMU_R(w, al[r])[l];
            float *row = &A[g + 8 * (r & 1)][t * E + E * 4 * (r >> 1)];
            if (fp8) for (int e = 0; e < 4; e++) row[e] = la[(v >> (8 * e)) & 0xFF];
            else for (int e = 0; e < 2; e++) row[e] = elem(v, e, in->type2);
        }
        for (int r = 0; r < 2; r++) {
            uint32_t v = (uint32_t)EMU_R(w, bl[r])[l];
            float *col = &B[g][t * E + E * 4 * r];
            if (fp8) for (int e = 0; e < 4; e++) col[e] = lb[(v >> (8 * e)) & 0xFF];
            else for (int e = 0; e < 2; e++) col[e] = elem(v, e, in->type3);
        }
        for (int i = 0; i < 4; i++) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = emu_f32(EMU_R(w, cl[i])[l]);
    }
    int hopper = fp8 && w->cta->L->opt.fp8_acc == DSK_EMU_FP8_ACC_HOPPER;
    float D[16][8];
    if (hopper) {
        for (int r = 0; r < 16; r++)
            for (int n = 0; n < 8; n++) D[r][n] = dot_acc(C[r][n], A[r], B[n], K, 1);
    } else {
        /* ideal accumulation (see wgmma_run): exact K-sum in double, one rounding */
        double Bt[32][8];
        for (int n = 0; n < 8; n++)
            for (int k = 0; k < K; k++) Bt[k][n] = B[n][k];
        for (int r = 0; r < 16; r++) {
            double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int k = 0; k < K; k++) {
                double a = A[r][k];
                for (int n = 0; n < 8; n++) acc[n] += a * Bt[k][n];
            }
            for (int n = 0; n < 8; n++) D[r][n] = (float)((double)C[r][n] + acc[n]);
        }
    }
    for (int l = 0; l < 32; l++) {
        int g = l / 4, t = l % 4;
        for (int i = 0; i < 4; i++) EMU_R(w, dl[i])[l] = emu_bits32(D[g + 8 * (i >> 1)][2 * t + (i & 1)]);
    }
    for (int i = 0; i < 4; i++) w->valid[dl[i]] = 0xFFFFFFFFu;
    return 0;
}

/* ---- wgmma ---------------------------------------------------------------------------- */

/* Byte address of element (mn, k) of a wgmma shared-memory operand (PTX ISA 9.7.15.5.1.2.1.3,
 * canonical layouts; T = 16 / esize elements per 16 bytes, W = swizzle span):
 *   K-major,  none:    (mn%8)*16 + (mn/8)*SBO + (kb%16) + (kb/16)*LBO      kb = k*esize
 *   K-major,  swizzle: (mn%8)*W  + (mn/8)*SBO + kb                         (LBO unused)
 *   MN-major, none:    (mb%16) + (mb/16)*SBO + (k%8)*16 + (k/8)*LBO        mb = mn*esize
 *   MN-major, swizzle: (mb%W) + (mb/W)*LBO + (k%8)*W + (k/8)*SBO
 * then Swizzle<B,4,3>: address bits [4,4+B) ^= bits [7,7+B), B = 3/2/1 for 128/64/32B. */
static inline uint32_t desc_addr(uint64_t desc, int mn, int k, int esize, int mn_major)
{
    uint32_t start = (uint32_t)(desc & 0x3FFF) << 4;
    uint32_t lbo = (uint32_t)((desc >> 16) & 0x3FFF) << 4;
    uint32_t sbo = (uint32_t)((desc >> 32) & 0x3FFF) << 4;
    int sw = (int)((desc >> 62) & 3);
    uint32_t W = sw == 1 ? 128 : sw == 2 ? 64 : sw == 3 ? 32 : 16;
    uint32_t off;
    if (!mn_major) {
        uint32_t kb = (uint32_t)(k * esize);
        if (sw == 0) off = (uint32_t)(mn % 8) * 16 + (uint32_t)(mn / 8) * sbo + (kb % 16) + (kb / 16) * lbo;
        else off = (uint32_t)(mn % 8) * W + (uint32_t)(mn / 8) * sbo + kb;
    } else {
        uint32_t mb = (uint32_t)(mn * esize);
        if (sw == 0) off = (mb % 16) + (mb / 16) * sbo + (uint32_t)(k % 8) * 16 + (uint32_t)(k / 8) * lbo;
        else off = (mb % W) + (mb / W) * lbo + (uint32_t)(k % 8) * W + (uint32_t)(k / 8) * sbo;
    }
    uint32_t a = start + off;
    if (sw) a ^= ((a >> 7) & (sw == 1 ? 7u : sw == 2 ? 3u : 1u)) << 4;
    return a;
}

/* Gathers rows [mn0, mn0+nmn) x K of a descriptor operand as floats into out[nmn][K]. For
 * K-major operands the elements of one 16-byte chunk are contiguous (the swizzle moves whole
 * chunks), so addresses are computed per chunk. */
static int gather_desc(emu_warp *w, const emu_insn *in, uint64_t desc, int mn0, int nmn, int K, int t,
                       int mn_major, float *out)
{
    emu_cta *c = w->cta;
    if ((desc >> 49) & 7)
        return emu_error(w, in, 0, "matrix descriptor 0x%016llx has a non-zero base offset (unsupported)",
                         (unsigned long long)desc);
    int esize = is_fp8(t) ? 1 : 2;
    int per = mn_major ? 1 : 16 / esize;  /* elements per address computation */
    (void)emu_fp8_value(0, 0);            /* the FP8 tables are built */
    const float *lut = t == T_E5M2 ? g_fp8[1] : g_fp8[0];
    for (int i = 0; i < nmn; i++)
        for (int k = 0; k < K; k += per) {
            uint32_t a = desc_addr(desc, mn0 + i, k, esize, mn_major);
            int n = per < K - k ? per : K - k;
            size_t bytes = (size_t)n * (size_t)esize;
            if ((size_t)a + bytes > c->smem_size)
                return emu_error(w, in, 0, "wgmma operand element (%d, %d) at shared offset 0x%x is beyond the CTA's "
                                 "%zu bytes (descriptor 0x%016llx)", mn0 + i, k, a, c->smem_size, (unsigned long long)desc);
            if (c->npending)
                for (size_t x = 0; x < bytes; x++)
                    if (c->shadow[a + x] && c->shadow[a + x] != 3)
                        return emu_error(w, in, 0, "wgmma reads shared offset 0x%x that an async copy has not completed "
                                         "(missing mbarrier wait before the wgmma)", a + (uint32_t)x);
            const uint8_t *p = c->smem + a;
            float *o = out + (size_t)i * K + k;
            if (esize == 1) {
                for (int e = 0; e < n; e++) o[e] = lut[p[e]];
            } else {
                for (int e = 0; e < n; e++) {
                    uint16_t h;
                    memcpy(&h, p + 2 * e, 2);
                    o[e] = t == T_BF16 ? dsk_bf16_to_f32(h) : dsk_f16_to_f32(h);
                }
            }
        }
    return 0;
}

/* Executes one deferred wgmma for warp w (its 16 rows of the 64-row tile). */
static int wgmma_run(emu_warp *w, const emu_wgmma_op *op)
{
    const emu_insn *in = op->in;
    const int32_t *dl = w->cta->L->k->lists + in->list;
    int N = in->vec * 8, K = (int)in->imm;
    int q = w->id % 4;
    int neg_a = in->sub & 1, neg_b = (in->sub >> 1) & 1, tr_a = (in->sub >> 2) & 1, tr_b = (in->sub >> 3) & 1;
    float A[16 * 32];
    float *B = malloc(sizeof(float) * (size_t)N * (size_t)K);
    float *D = malloc(sizeof(float) * 16 * (size_t)N);
    if (!B || !D) {
        free(B);
        free(D);
        return emu_error(w, in, 0, "out of memory");
    }
    int rc = 0;
    if (op->areg) {
        int E = K == 32 ? 4 : 2;
        for (int l = 0; l < 32; l++)
            for (int r = 0; r < 4; r++)
                for (int e = 0; e < E; e++)
                    A[(l / 4 + 8 * (r & 1)) * K + e + (l % 4) * E + E * 4 * (r >> 1)] =
                        elem(op->areg[r * 32 + l], e, in->type2);
    } else {
        rc = gather_desc(w, in, op->desc_a, 16 * q, 16, K, in->type2, tr_a, A);
    }
    if (!rc) rc = gather_desc(w, in, op->desc_b, 0, N, K, in->type3, tr_b, B);
    if (!rc) {
        if (neg_a) for (int i = 0; i < 16 * K; i++) A[i] = -A[i];
        if (neg_b) for (int i = 0; i < N * K; i++) B[i] = -B[i];
        int hopper = is_fp8(in->type2) && w->cta->L->opt.fp8_acc == DSK_EMU_FP8_ACC_HOPPER;
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < N / 2; i++) {
                int row = l / 4 + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * (l % 4) + (i & 1);
                D[row * N + col] = op->scale_d ? emu_f32(EMU_R(w, dl[i])[l]) : 0.0f;
            }
        if (hopper) {
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < N; n++) D[r * N + n] = dot_acc(D[r * N + n], A + r * K, B + (size_t)n * K, K, 1);
        } else {
            /* ideal: per output, the K products summed in double (exact for FP8, whose products have
             * at most 8 significant bits over a 2^36 range), then added to the accumulator with one
             * rounding. Loops ordered k-outer, n-inner over a transposed B so they vectorise. */
            double *Bt = malloc(sizeof(double) * (size_t)N * (size_t)K), acc[256];
            if (!Bt) rc = emu_error(w, in, 0, "out of memory");
            for (int n = 0; !rc && n < N; n++)
                for (int k = 0; k < K; k++) Bt[(size_t)k * N + n] = B[(size_t)n * K + k];
            for (int r = 0; !rc && r < 16; r++) {
                for (int n = 0; n < N; n++) acc[n] = 0;
                for (int k = 0; k < K; k++) {
                    double a = A[r * K + k];
                    if (a == 0) continue;
                    const double *bk = Bt + (size_t)k * N;
                    for (int n = 0; n < N; n++) acc[n] += a * bk[n];
                }
                for (int n = 0; n < N; n++) D[r * N + n] = (float)((double)D[r * N + n] + acc[n]);
            }
            free(Bt);
        }
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < N / 2; i++) {
                int row = l / 4 + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * (l % 4) + (i & 1);
                EMU_R(w, dl[i])[l] = emu_bits32(D[row * N + col]);
            }
    }
    free(B);
    free(D);
    return rc;
}

/* Retires committed wgmma groups until at most `keep` are pending. */
int emu_wgmma_retire(emu_warp *w, const emu_insn *in, int keep)
{
    int limit = w->wg_committed - keep;
    int j = 0;
    for (int i = 0; i < w->nwg; i++) {
        emu_wgmma_op *op = &w->wg[i];
        if (op->group >= 0 && op->group <= limit) {
            if (wgmma_run(w, op)) return -1;
            const int32_t *dl = w->cta->L->k->lists + op->in->list;
            /* accumulators stay pending while a later wgmma still writes them */
            for (int k = 0; k < op->in->nlist; k++) {
                int still = 0;
                for (int o = i + 1; o < w->nwg && !still; o++) {
                    if (w->wg[o].group >= 0 && w->wg[o].group <= limit) continue;
                    const int32_t *ol = w->cta->L->k->lists + w->wg[o].in->list;
                    for (int x = 0; x < w->wg[o].in->nlist; x++)
                        if (ol[x] == dl[k]) { still = 1; break; }
                }
                if (!still) {
                    w->pend[dl[k]] = 0;
                    w->valid[dl[k]] = 0xFFFFFFFFu;
                }
            }
            free(op->areg);
        } else {
            w->wg[j++] = *op;
        }
    }
    w->nwg = j;
    (void)in;
    return 0;
}

static int emu_grow_wgmma(emu_warp *w)
{
    if (w->nwg < w->capwg) return 0;
    int c = w->capwg ? w->capwg * 2 : 16;
    emu_wgmma_op *p = realloc(w->wg, sizeof *p * (size_t)c);
    if (!p) return -1;
    w->wg = p;
    w->capwg = c;
    return 0;
}

int emu_exec_wgmma(emu_warp *w, const emu_insn *in, uint32_t m)
{
    if (need_full_warp(w, in, m)) return -1;
    if (in->op == OP_WGMMA_COMMIT) {
        int g = ++w->wg_committed;
        for (int i = 0; i < w->nwg; i++)
            if (w->wg[i].group < 0) w->wg[i].group = g;
        return 0;
    }
    if (in->op == OP_WGMMA_WAIT) return emu_wgmma_retire(w, in, (int)in->imm);
    /* wgmma.mma_async: check operands now, compute at the wait_group that retires it */
    const int32_t *dl = w->cta->L->k->lists + in->list;
    const uint64_t *sd = EMU_R(w, in->s[2]);
    int scale_d = (int)((sd[0] & 1) ^ (uint64_t)in->target);
    for (int l = 1; l < 32; l++)
        if ((int)((sd[l] & 1) ^ (uint64_t)in->target) != scale_d)
            return emu_error(w, in, l, "scale-d differs between lanes");
    for (int p = 0; p < 2; p++) {
        if (in->s[p] < 0) continue;
        const uint64_t *dv = EMU_R(w, in->s[p]);
        for (int l = 1; l < 32; l++)
            if (dv[l] != dv[0])
                return emu_error(w, in, l, "matrix descriptor of %c differs between lanes (0x%llx vs 0x%llx)",
                                 p ? 'B' : 'A', (unsigned long long)dv[l], (unsigned long long)dv[0]);
    }
    if (scale_d)
        for (int i = 0; i < in->nlist; i++)
            if (w->valid[dl[i]] != 0xFFFFFFFFu && !w->pend[dl[i]])
                return emu_error(w, in, __builtin_ctz(~w->valid[dl[i]]),
                                 "accumulator register %d is read (scale-d = 1) but was never written", i);
    if (emu_grow_wgmma(w)) return emu_error(w, in, 0, "out of memory");
    emu_wgmma_op *op = &w->wg[w->nwg++];
    memset(op, 0, sizeof *op);
    op->in = in;
    op->group = -1;
    op->scale_d = scale_d;
    op->desc_a = in->s[0] >= 0 ? EMU_R(w, in->s[0])[0] : 0;
    op->desc_b = EMU_R(w, in->s[1])[0];
    if (in->nlist2) {
        const int32_t *al = w->cta->L->k->lists + in->list2;
        if (regs_valid(w, in, al, 4, "A")) return -1;
        op->areg = malloc(sizeof(uint32_t) * 4 * 32);
        if (!op->areg) return emu_error(w, in, 0, "out of memory");
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 32; l++) op->areg[r * 32 + l] = (uint32_t)EMU_R(w, al[r])[l];
    }
    for (int i = 0; i < in->nlist; i++) {
        w->pend[dl[i]] = 1;
        w->valid[dl[i]] = 0;
    }
    return 0;
}
