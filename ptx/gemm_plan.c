/* ptx/gemm_plan.c: tile configurations of the FP8 GEMM emitters: canonical names, parsing,
 * and the resource plan (threads, shared memory, registers, legality with a reason).
 *
 * The plan is the emitters' contract with the tuner and with the assembly test: the
 * emitters (gemm_fp8_sm90.c, gemm_fp8_sm89.c) lay shared memory out exactly as computed
 * here and declare .maxnreg = plan.max_regs; tests/ptx compares ptxas's report with it.
 *
 * sm_90a (DeepGEMM's design): one producer warpgroup (TMA) + 1 or 2 consumer warpgroups
 * (wgmma m64nNk32). Per stage: the A tile (BLOCK_M x 128 e4m3, 128B-swizzled), the B tile
 * (BLOCK_N x 128), A's scales (BLOCK_M f32, padded to 128 B). Dynamic shared memory also
 * holds 1 KiB of slack so the kernel can align the ring to 1024 B (the 128B-swizzle atom)
 * whatever base the driver gives; the full/empty mbarriers are static .shared (padded by
 * ptxas to 1024 bytes). The TMA-store epilogue (tma_store) stages the bf16 D tile in shared
 * memory: inside the ring when it fits and the kernel is not persistent, else in a
 * dedicated buffer after the ring. Persistent kernels add no shared memory.
 * sm_89: 1..8 warps, each an (mma_m / warps_m) x (mma_n / warps_n) tile of m16n8k32 MMAs;
 * per stage the A and B tiles (rows x 128 B, XOR-swizzled 16-byte chunks); no static smem. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "dsk/ptx.h"

size_t dsk_ptx_smem_limit(dsk_arch arch)
{
    return arch == DSK_ARCH_SM89 ? (size_t)99 * 1024 : (size_t)227 * 1024;
}

const char *dsk_ptx_arch_name(dsk_arch arch)
{
    return arch == DSK_ARCH_SM89 ? "sm_89" : arch == DSK_ARCH_SM90A ? "sm_90a" : "invalid";
}

dsk_status dsk_ptx_arch_parse(const char *s, dsk_arch *out)
{
    if (s && (!strcmp(s, "sm_90a") || !strcmp(s, "sm90a"))) {
        *out = DSK_ARCH_SM90A;
        return DSK_OK;
    }
    if (s && (!strcmp(s, "sm_89") || !strcmp(s, "sm89"))) {
        *out = DSK_ARCH_SM89;
        return DSK_OK;
    }
    return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_arch_parse: arch '%s' unknown, expected sm_90a or sm_89",
                    s ? s : "(null)");
}

dsk_gemm_tile dsk_gemm_tile_default(dsk_arch arch, int block_m, int block_n)
{
    dsk_gemm_tile t;
    memset(&t, 0, sizeof t);
    t.arch = arch;
    t.block_m = block_m;
    t.block_n = block_n;
    t.block_k = 128;
    t.stages = arch == DSK_ARCH_SM89 ? 3 : 4;
    t.cluster = 1;
    t.layout = DSK_GEMM_DENSE;
    return t;
}

char *dsk_gemm_tile_name(const dsk_gemm_tile *t, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!t) {
        snprintf(buf, len, "(null tile)");
        return buf;
    }
    char cl[16] = "";
    if (t->arch == DSK_ARCH_SM90A)
        snprintf(cl, sizeof cl, "_c%d", t->cluster);
    snprintf(buf, len, "gemm_fp8_%s_%dx%d_s%d%s%s%s%s%s", t->arch == DSK_ARCH_SM89 ? "sm89" : "sm90a",
             t->block_m, t->block_n, t->stages, cl,
             t->layout == DSK_GEMM_CONTIGUOUS ? "_contig" : t->layout == DSK_GEMM_MASKED ? "_masked" : "",
             t->swap_ab ? "_swapab" : "", t->tma_store ? "_tmastore" : "", t->persistent ? "_p" : "");
    return buf;
}

/* Parses "<int>x<int>" at *p, advancing it. */
static int parse_mxn(const char **p, int *m, int *n)
{
    char *end;
    long a = strtol(*p, &end, 10);
    if (end == *p || *end != 'x')
        return 0;
    const char *q = end + 1;
    long b = strtol(q, &end, 10);
    if (end == q || a <= 0 || b <= 0 || a > 4096 || b > 4096)
        return 0;
    *m = (int)a;
    *n = (int)b;
    *p = end;
    return 1;
}

static dsk_status parse_full_name(const char *s, dsk_gemm_tile *t)
{
    dsk_gemm_tile r;
    const char *p = s + strlen("gemm_fp8_");
    dsk_arch arch;
    if (!strncmp(p, "sm90a_", 6)) {
        arch = DSK_ARCH_SM90A;
        p += 6;
    } else if (!strncmp(p, "sm89_", 5)) {
        arch = DSK_ARCH_SM89;
        p += 5;
    } else {
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gemm_tile_parse: '%s': expected sm90a_ or sm89_ after gemm_fp8_", s);
    }
    int m, n;
    if (!parse_mxn(&p, &m, &n))
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gemm_tile_parse: '%s': expected MxN after the arch", s);
    r = dsk_gemm_tile_default(arch, m, n);
    while (*p) {
        if (*p != '_')
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gemm_tile_parse: '%s': unexpected '%s'", s, p);
        p++;
        char *end;
        if (*p == 's' && p[1] >= '0' && p[1] <= '9') {
            r.stages = (int)strtol(p + 1, &end, 10);
            p = end;
        } else if (*p == 'c' && p[1] >= '0' && p[1] <= '9') {
            r.cluster = (int)strtol(p + 1, &end, 10);
            p = end;
        } else if (!strncmp(p, "contig", 6)) {
            r.layout = DSK_GEMM_CONTIGUOUS;
            p += 6;
        } else if (!strncmp(p, "masked", 6)) {
            r.layout = DSK_GEMM_MASKED;
            p += 6;
        } else if (!strncmp(p, "swapab", 6)) {
            r.swap_ab = 1;
            p += 6;
        } else if (!strncmp(p, "tmastore", 8)) {
            r.tma_store = 1;
            p += 8;
        } else if (*p == 'p' && (p[1] == '\0' || p[1] == '_')) {
            r.persistent = 1;
            p += 1;
        } else {
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gemm_tile_parse: '%s': unknown part '_%s'", s, p);
        }
    }
    *t = r;
    return DSK_OK;
}

dsk_status dsk_gemm_tile_parse(const char *s, dsk_gemm_tile *t)
{
    if (!s || !t)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gemm_tile_parse: %s is NULL", !s ? "s" : "t");
    if (!strncmp(s, "gemm_fp8_", 9))
        return parse_full_name(s, t);
    const char *p = s;
    int m, n;
    if (!parse_mxn(&p, &m, &n) || *p != '\0')
        return dsk_fail(DSK_ERR_INVALID_ARG,
                        "dsk_gemm_tile_parse: tile '%s' malformed, expected BLOCK_MxBLOCK_N such as 128x112", s);
    t->block_m = m;
    t->block_n = n;
    return DSK_OK;
}

static int illegal(dsk_gemm_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int illegal(dsk_gemm_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    p->legal = 0;
    return 0;
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* The register budget of sm90a consumers: with 2 consumer WGs (384 threads) the kernel
 * declares .maxnreg 168 (65536 / 384 rounded down to 8), the producer gives back down to
 * 40 and each consumer takes 232 (40*128 + 232*256 = 64512 <= 65536). With one consumer
 * WG (256 threads) no redistribution is needed: .maxnreg 255 for everyone. */
#define SM90_PRODUCER_REGS 40
#define SM90_CONSUMER_REGS 232
/* Registers a thread needs besides its accumulators (addresses, loop state, scales,
 * descriptors, fragments), calibrated against ptxas 13.0 -v over tests/ptx's configurations:
 * the estimate is an upper bound of what ptxas allocates; a configuration is legal when
 * its accumulators plus the minimum overhead fit the cap. */
#define SM90_REG_OVERHEAD 80
#define SM90_REG_MIN_OVERHEAD 40
/* The persistent tile loop keeps its state (tile, tile counts, group bases) live across the
 * main loop: ptxas 13.0 spills 128x184_p and 256x96_p, not 128x176_p (232 - 176 = 56). */
#define SM90_REG_MIN_OVERHEAD_PERSISTENT 56
#define SM89_REG_OVERHEAD 64

static int plan_sm90(const dsk_gemm_tile *t, size_t limit, dsk_gemm_plan *p)
{
    int mm = p->mma_m, mn = p->mma_n;
    if (!t->swap_ab) {
        if (t->block_m != 64 && t->block_m != 128 && t->block_m != 256)
            return illegal(p, "sm90a block_m %d: expected 64, 128 or 256", t->block_m);
        if (t->block_n < 16 || t->block_n > 256 || t->block_n % 8)
            return illegal(p, "sm90a block_n %d: expected a multiple of 8 in [16, 256] (wgmma N)", t->block_n);
    } else {
        if (t->block_n != 64 && t->block_n != 128)
            return illegal(p, "sm90a swap_ab block_n %d: expected 64 or 128 (the wgmma M side, one 128-block of B's scales)",
                           t->block_n);
        if (t->block_m < 8 || t->block_m > 256 || t->block_m % 8)
            return illegal(p, "sm90a swap_ab block_m %d: expected a multiple of 8 in [8, 256] (wgmma N)", t->block_m);
    }
    if (t->cluster != 1 && t->cluster != 2)
        return illegal(p, "sm90a cluster %d: expected 1 or 2", t->cluster);
    if (t->cluster == 2 && t->block_m % 16)
        return illegal(p, "sm90a cluster 2 block_m %d: each CTA multicasts half of the A tile, which must be a "
                          "multiple of 8 rows (the 128B-swizzle atom): block_m %% 16 == 0", t->block_m);
    p->consumer_warpgroups = mm == 64 ? 1 : 2;
    p->warps_m = p->consumer_warpgroups;
    p->warps_n = 1;
    int mtiles = mm / 64 / p->consumer_warpgroups;
    p->threads = 128 * (1 + p->consumer_warpgroups);
    /* wgmma's accumulators (mn/2 f32 per m64 tile per thread) plus the promoted FP32 copy. */
    p->max_regs = p->consumer_warpgroups == 2 ? 168 : 255;
    int cap = p->consumer_warpgroups == 2 ? SM90_CONSUMER_REGS : 255;
    int acc = mtiles * mn;
    p->regs_per_thread = acc + SM90_REG_OVERHEAD < cap ? acc + SM90_REG_OVERHEAD : cap;
    p->stage_bytes = (size_t)t->block_m * 128 + (size_t)t->block_n * 128 + round_up((size_t)t->block_m * 4, 128);
    size_t ring = (size_t)t->stages * p->stage_bytes;
    p->smem_dynamic_bytes = ring + 1024;
    if (t->tma_store) {
        /* bf16 D staging buffer: one dense box for the dense layout, 128-byte aligned rows
         * (one TMA row store each) for the grouped layouts, which skip rows */
        p->d_pitch = t->layout == DSK_GEMM_DENSE ? t->block_n * 2 : (int)round_up((size_t)t->block_n * 2, 128);
        p->smem_d_bytes = round_up((size_t)t->block_m * (size_t)p->d_pitch, 128);
        /* a persistent CTA's producer already fills the ring with the next tile while the
         * consumers store this one: the buffer is dedicated then */
        p->d_in_ring = !t->persistent && p->smem_d_bytes <= ring;
        p->d_offset = p->d_in_ring ? 0 : ring;
        if (!p->d_in_ring)
            p->smem_dynamic_bytes += p->smem_d_bytes;
    }
    /* full + empty mbarriers; ptxas pads static shared memory to the 1024-byte alignment of
     * the dynamic ring that follows it, and reports (and the driver reserves) the padded size */
    p->smem_static_bytes = round_up((size_t)t->stages * 2 * 8, 1024);
    p->smem_bytes = p->smem_dynamic_bytes + p->smem_static_bytes;
    int min_over = t->persistent ? SM90_REG_MIN_OVERHEAD_PERSISTENT : SM90_REG_MIN_OVERHEAD;
    if (acc + min_over > cap)
        return illegal(p, "sm90a %dx%d%s: consumers need more than %d registers per thread (%d accumulators), more than the %d available",
                       mm, mn, t->persistent ? " persistent" : "", acc + min_over, acc, cap);
    if (p->smem_bytes > limit)
        return illegal(p, "sm90a %d stages need %zu bytes of shared memory, the target allows %zu", t->stages,
                       p->smem_bytes, limit);
    return 1;
}

/* Warp grid of the sm_89 kernel: up to 4 warps along the MMA's M side (each >= 32 rows
 * unless the tile is smaller) and 2 along N when the tile is wide enough. */
static void sm89_warps(int mm, int mn, int *wm, int *wn)
{
    *wm = 1;
    for (int w = 4; w >= 2; w--)
        if (mm % (16 * w) == 0 && mm / w >= 32) {
            *wm = w;
            break;
        }
    *wn = (mn % 16 == 0 && mn >= 64 && *wm * 2 <= 8) ? 2 : 1;
}

static int plan_sm89(const dsk_gemm_tile *t, size_t limit, dsk_gemm_plan *p)
{
    int mm = p->mma_m, mn = p->mma_n;
    if (mm < 16 || mm > 128 || mm % 16)
        return illegal(p, "sm_89 %s %d: expected a multiple of 16 in [16, 128] (mma m16 side)",
                       t->swap_ab ? "swap_ab block_n" : "block_m", mm);
    if (mn < 8 || mn > 256 || mn % 8)
        return illegal(p, "sm_89 %s %d: expected a multiple of 8 in [8, 256] (mma n8 side)",
                       t->swap_ab ? "swap_ab block_m" : "block_n", mn);
    if (t->swap_ab && 128 % mm)
        return illegal(p, "sm_89 swap_ab block_n %d: must divide 128 (one 128-block of B's scales per tile)", mm);
    if (t->cluster != 1)
        return illegal(p, "sm_89 has no thread-block clusters (cluster %d)", t->cluster);
    if (t->persistent)
        return illegal(p, "sm_89 emitter has no persistent variant");
    if (t->tma_store)
        return illegal(p, "sm_89 has no TMA (tma_store is sm90a only)");
    sm89_warps(mm, mn, &p->warps_m, &p->warps_n);
    int wtm = mm / p->warps_m, wtn = mn / p->warps_n;
    p->threads = 32 * p->warps_m * p->warps_n;
    int acc = (wtm / 16) * (wtn / 8) * 4;
    p->regs_per_thread = 2 * acc + (wtm / 16) * 4 + (wtn / 8) * 2 + SM89_REG_OVERHEAD;
    p->max_regs = 255;
    p->consumer_warpgroups = 0;
    p->stage_bytes = (size_t)(t->block_m + t->block_n) * 128;
    p->smem_dynamic_bytes = (size_t)t->stages * p->stage_bytes;
    p->smem_static_bytes = 0;
    p->smem_bytes = p->smem_dynamic_bytes;
    if (p->regs_per_thread > p->max_regs)
        return illegal(p, "sm_89 warp tile %dx%d needs ~%d registers per thread, more than %d", wtm, wtn,
                       p->regs_per_thread, p->max_regs);
    if (p->smem_bytes > limit)
        return illegal(p, "sm_89 %d stages need %zu bytes of shared memory, the target allows %zu", t->stages,
                       p->smem_bytes, limit);
    return 1;
}

dsk_status dsk_ptx_gemm_plan(const dsk_gemm_tile *t, size_t smem_limit, dsk_gemm_plan *plan)
{
    if (!t || !plan)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_plan: %s is NULL", !t ? "t" : "plan");
    if (t->arch != DSK_ARCH_SM90A && t->arch != DSK_ARCH_SM89)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_plan: arch %d unknown, expected DSK_ARCH_SM90A or DSK_ARCH_SM89",
                        (int)t->arch);
    if (t->block_m <= 0 || t->block_m > 4096 || t->block_n <= 0 || t->block_n > 4096)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_plan: tile %dx%d out of range (1..4096)", t->block_m,
                        t->block_n);
    if (t->stages < 1 || t->stages > 64)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_plan: stages %d out of range (1..64)", t->stages);
    if (t->layout != DSK_GEMM_DENSE && t->layout != DSK_GEMM_CONTIGUOUS && t->layout != DSK_GEMM_MASKED)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_ptx_gemm_plan: layout %d unknown", (int)t->layout);
    memset(plan, 0, sizeof *plan);
    plan->legal = 1;
    plan->mma_m = t->swap_ab ? t->block_n : t->block_m;
    plan->mma_n = t->swap_ab ? t->block_m : t->block_n;
    size_t limit = smem_limit ? smem_limit : dsk_ptx_smem_limit(t->arch);
    if (t->block_k != 128) {
        illegal(plan, "block_k %d: the FP8 GEMM promotes every 128 of K, expected 128", t->block_k);
        return DSK_OK;
    }
    if (t->swap_ab && t->layout == DSK_GEMM_CONTIGUOUS) {
        illegal(plan, "swap_ab with the contiguous layout: contiguous groups are BLOCK_M-aligned prefill rows, "
                      "swap_ab is for small M");
        return DSK_OK;
    }
    if (t->arch == DSK_ARCH_SM90A)
        plan_sm90(t, limit, plan);
    else
        plan_sm89(t, limit, plan);
    return DSK_OK;
}
