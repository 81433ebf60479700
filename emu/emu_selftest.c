/* emu/emu_selftest.c: dsk_emu_selftest (`dsk emu selftest`): small built-in kernels that
 * exercise each layer of the emulator against values computed here in C: arithmetic and
 * reconvergence, shuffles, the mma.sync fragment layout, a TMA + mbarrier + wgmma pipeline
 * step, the FP8 cvt pack byte order, and two strictness classes that must be caught.
 * The ctest suites in tests/emu/ are the thorough checks; this is the quick health check a
 * user can run anywhere (no CUDA toolkit needed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_internal.h"

typedef struct st_ctx { FILE *out; int passed, failed; } st_ctx;

static void report(st_ctx *c, int ok, const char *name, const char *detail)
{
    if (ok) c->passed++;
    else c->failed++;
    if (c->out) fprintf(c->out, "%s %-28s %s\n", ok ? "ok  " : "FAIL", name, detail ? detail : "");
}

static const char *HDR = ".version 8.0\n.target sm_90a\n.address_size 64\n";

/* Loads and launches `text` (kernel k, params) with one CTA of `threads`. */
static dsk_status run(const char *text, void **params, unsigned threads, char *why, size_t why_len)
{
    dsk_emu_module *m = NULL;
    dsk_status s = dsk_emu_module_load(text, "selftest.ptx", &m);
    if (s == DSK_OK) {
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {threads, 1, 1}, {0, 0, 0}, 0};
        s = dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL);
    }
    if (s != DSK_OK) snprintf(why, why_len, "%s", dsk_last_error());
    dsk_emu_module_free(m);
    return s;
}

static char *cat(const char *a, const char *b)
{
    size_t n = strlen(a), k = strlen(b);
    char *s = malloc(n + k + 1);
    if (s) {
        memcpy(s, a, n);
        memcpy(s + n, b, k + 1);
    }
    return s;
}

static void t_arith(st_ctx *c)
{
    /* out[t] = sum_{i<t%5} (i*3 + t) computed in a divergent loop, then a butterfly sum */
    char *ptx = cat(HDR,
        ".visible .entry k(.param .u64 out)\n{\n  .reg .b32 %r<12>;\n  .reg .b64 %rd<4>;\n  .reg .pred %p<2>;\n"
        "  mov.u32 %r1, %tid.x;\n  rem.u32 %r2, %r1, 5;\n  mov.u32 %r3, 0;\n  mov.u32 %r4, 0;\n"
        "L:\n  setp.ge.u32 %p1, %r4, %r2;\n  @%p1 bra D;\n  mad.lo.u32 %r5, %r4, 3, %r1;\n  add.u32 %r3, %r3, %r5;\n"
        "  add.u32 %r4, %r4, 1;\n  bra L;\nD:\n  shfl.sync.bfly.b32 %r6, %r3, 1, 31, -1;\n  add.u32 %r7, %r3, %r6;\n"
        "  ld.param.u64 %rd1, [out];\n  mul.wide.u32 %rd2, %r1, 4;\n  add.u64 %rd3, %rd1, %rd2;\n  st.global.u32 [%rd3], %r7;\n"
        "  ret;\n}\n");
    uint32_t *out = NULL;
    char why[512] = "";
    int ok = ptx && dsk_emu_alloc(64 * 4, (void **)&out) == DSK_OK;
    void *p[] = {&out};
    if (ok && run(ptx, p, 64, why, sizeof why) != DSK_OK) ok = 0;
    for (uint32_t t = 0; ok && t < 64; t++) {
        uint32_t v[2];
        for (int h = 0; h < 2; h++) {
            uint32_t u = t ^ (uint32_t)h, s = 0;
            for (uint32_t i = 0; i < u % 5; i++) s += i * 3 + u;
            v[h] = s;
        }
        if (out[t] != v[0] + v[1]) {
            ok = 0;
            snprintf(why, sizeof why, "thread %u: got %u expected %u", t, out[t], v[0] + v[1]);
        }
    }
    report(c, ok, "divergent loop + shfl", why);
    dsk_emu_free(out);
    free(ptx);
}

static void t_cvt_fp8(st_ctx *c)
{
    char *ptx = cat(HDR,
        ".visible .entry k(.param .u64 out)\n{\n  .reg .b16 %rs<2>;\n  .reg .f32 %f<3>;\n  .reg .b64 %rd<2>;\n"
        "  mov.f32 %f1, 0f3F800000;\n  mov.f32 %f2, 0fC0000000;\n"
        "  cvt.rn.satfinite.e4m3x2.f32 %rs1, %f1, %f2;\n  ld.param.u64 %rd1, [out];\n  st.global.u16 [%rd1], %rs1;\n  ret;\n}\n");
    uint16_t *out = NULL;
    char why[512] = "";
    int ok = ptx && dsk_emu_alloc(2, (void **)&out) == DSK_OK;
    void *p[] = {&out};
    if (ok && run(ptx, p, 1, why, sizeof why) != DSK_OK) ok = 0;
    /* 1.0 = 0x38 in the upper byte (first source), -2.0 = 0xC0 in the lower */
    if (ok && *out != 0x38C0) {
        ok = 0;
        snprintf(why, sizeof why, "got 0x%04x expected 0x38c0", *out);
    }
    report(c, ok, "cvt e4m3x2 byte order", why);
    dsk_emu_free(out);
    free(ptx);
}

static void t_mma(st_ctx *c)
{
    /* mma.sync m16n8k16 bf16 with A(m,k) = m+1 at k = m%16 (else 0), B(k,n) = n+1 at every k:
     * D(m,n) = (m+1)(n+1). Fragments per the PTX ISA m16n8k16 tables. */
    char *ptx = cat(HDR,
        ".visible .entry k(.param .u64 frag, .param .u64 out)\n{\n  .reg .b32 %r<12>;\n  .reg .f32 %f<8>;\n  .reg .b64 %rd<8>;\n"
        "  mov.u32 %r1, %tid.x;\n  ld.param.u64 %rd1, [frag];\n  mul.wide.u32 %rd2, %r1, 32;\n  add.u64 %rd3, %rd1, %rd2;\n"
        "  ld.global.v4.u32 {%r2, %r3, %r4, %r5}, [%rd3];\n  ld.global.v2.u32 {%r6, %r7}, [%rd3+16];\n  mov.f32 %f0, 0f00000000;\n"
        "  mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r2, %r3, %r4, %r5}, {%r6, %r7}, {%f0, %f0, %f0, %f0};\n"
        "  ld.param.u64 %rd4, [out];\n  mul.wide.u32 %rd5, %r1, 16;\n  add.u64 %rd6, %rd4, %rd5;\n"
        "  st.global.v4.f32 [%rd6], {%f1, %f2, %f3, %f4};\n  ret;\n}\n");
    uint32_t *frag = NULL;
    float *out = NULL;
    char why[512] = "";
    int ok = ptx && dsk_emu_alloc(32 * 32, (void **)&frag) == DSK_OK && dsk_emu_alloc(32 * 16, (void **)&out) == DSK_OK;
    for (int l = 0; ok && l < 32; l++) {
        int g = l / 4, t = l % 4;
        for (int r = 0; r < 4; r++) {
            uint32_t v = 0;
            for (int h = 0; h < 2; h++) {
                int row = g + 8 * (r & 1), col = 2 * t + h + 8 * (r >> 1);
                v |= (uint32_t)dsk_f32_to_bf16(col == row % 16 ? (float)(row + 1) : 0.0f) << (16 * h);
            }
            frag[l * 8 + r] = v;
        }
        for (int r = 0; r < 2; r++)
            frag[l * 8 + 4 + r] = (uint32_t)dsk_f32_to_bf16((float)(g + 1)) * 0x10001u;
    }
    void *p[] = {&frag, &out};
    if (ok && run(ptx, p, 32, why, sizeof why) != DSK_OK) ok = 0;
    for (int l = 0; ok && l < 32; l++)
        for (int i = 0; i < 4; i++) {
            int row = l / 4 + 8 * (i >> 1), col = 2 * (l % 4) + (i & 1);
            if (out[l * 4 + i] != (float)((row + 1) * (col + 1))) {
                ok = 0;
                snprintf(why, sizeof why, "lane %d d%d: got %g expected %d", l, i, out[l * 4 + i], (row + 1) * (col + 1));
                break;
            }
        }
    report(c, ok, "mma.sync fragment layout", why);
    dsk_emu_free(frag);
    dsk_emu_free(out);
    free(ptx);
}

static void t_strict(st_ctx *c)
{
    char *uninit = cat(HDR, ".visible .entry k(.param .u64 out)\n{\n  .reg .b32 %r<4>;\n  add.u32 %r1, %r2, 1;\n  ret;\n}\n");
    char *oob = cat(HDR, ".visible .entry k(.param .u64 out)\n{\n  .reg .b32 %r<4>;\n  .reg .b64 %rd<2>;\n"
                         "  ld.param.u64 %rd1, [out];\n  ld.global.u32 %r1, [%rd1+64];\n  ret;\n}\n");
    uint32_t *buf = NULL;
    char why[512] = "";
    int ok = uninit && oob && dsk_emu_alloc(64, (void **)&buf) == DSK_OK;
    void *p[] = {&buf};
    dsk_status s1 = ok ? run(uninit, p, 32, why, sizeof why) : DSK_OK;
    int ok1 = ok && s1 == DSK_ERR_EMU && strstr(why, "never written");
    report(c, ok1, "uninitialised register caught", ok1 ? "" : why);
    why[0] = 0;
    dsk_status s2 = ok ? run(oob, p, 1, why, sizeof why) : DSK_OK;
    int ok2 = ok && s2 == DSK_ERR_EMU && strstr(why, "outside every allocation");
    report(c, ok2, "out-of-allocation load caught", ok2 ? "" : why);
    dsk_emu_free(buf);
    free(uninit);
    free(oob);
}

static void t_tma_wgmma(st_ctx *c)
{
    /* One TMA box (64 x 32 bytes of e4m3, A; 8 x 32, B) through an mbarrier into 32B-swizzled
     * shared memory, one wgmma m64n8k32 reading it: D = A . B^T exactly. */
    char *ptx = cat(HDR,
        ".visible .entry k(.param .align 64 .b8 ta[128], .param .align 64 .b8 tb[128], .param .u64 out)\n{\n"
        "  .reg .b32 %r<40>;\n  .reg .b64 %rd<30>;\n  .reg .pred %p<4>;\n  .reg .f32 %d<4>;\n"
        "  .shared .align 1024 .b8 sa[2048];\n  .shared .align 1024 .b8 sb[1024];\n  .shared .align 8 .b64 bar;\n"
        "  mov.u32 %r1, %tid.x;\n  setp.eq.u32 %p1, %r1, 0;\n  mov.u32 %r2, bar;\n  mov.u32 %r3, sa;\n  mov.u32 %r4, sb;\n"
        "  @%p1 mbarrier.init.shared::cta.b64 [%r2], 1;\n  bar.sync 0;\n  mov.u32 %r5, 0;\n"
        "  mov.u64 %rd1, ta;\n  mov.u64 %rd2, tb;\n"
        "  @%p1 mbarrier.arrive.expect_tx.shared::cta.b64 %rd3, [%r2], 2304;\n"
        "  @%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%r3], [%rd1, {%r5, %r5}], [%r2];\n"
        "  @%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%r4], [%rd2, {%r5, %r5}], [%r2];\n"
        "W:\n  mbarrier.try_wait.parity.shared::cta.b64 %p2, [%r2], 0;\n  @!%p2 bra W;\n"
        /* descriptors: start >> 4, SBO = 256 (8 rows of 32 B) -> 16, swizzle 3 (32B) */
        "  cvt.u64.u32 %rd4, %r3;\n  shr.u64 %rd4, %rd4, 4;\n  or.b64 %rd4, %rd4, 13835058124001705984;\n"
        "  cvt.u64.u32 %rd5, %r4;\n  shr.u64 %rd5, %rd5, 4;\n  or.b64 %rd5, %rd5, 13835058124001705984;\n"
        "  setp.ne.u32 %p3, %r5, 0;\n  wgmma.fence.sync.aligned;\n"
        "  wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%d0, %d1, %d2, %d3}, %rd4, %rd5, %p3, 1, 1;\n"
        "  wgmma.commit_group.sync.aligned;\n  wgmma.wait_group.sync.aligned 0;\n"
        "  ld.param.u64 %rd6, [out];\n  mul.wide.u32 %rd7, %r1, 16;\n  add.u64 %rd8, %rd6, %rd7;\n"
        "  st.global.v4.f32 [%rd8], {%d0, %d1, %d2, %d3};\n  ret;\n}\n");
    uint8_t *A = NULL, *B = NULL;
    float *out = NULL;
    char why[512] = "";
    int ok = ptx && dsk_emu_alloc(64 * 32, (void **)&A) == DSK_OK && dsk_emu_alloc(8 * 32, (void **)&B) == DSK_OK &&
             dsk_emu_alloc(128 * 16, (void **)&out) == DSK_OK;
    uint64_t seed = 0x1234567;
    for (int i = 0; ok && i < 64 * 32; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        A[i] = dsk_f32_to_fp8((float)((int)(seed >> 59) - 16) / 4.0f, DSK_E4M3);
        if (i < 256) B[i] = dsk_f32_to_fp8((float)((int)((seed >> 40) & 15) - 8) / 2.0f, DSK_E4M3);
    }
    dsk_tensor_map ma, mb;
    uint64_t da[2] = {32, 64}, db[2] = {32, 8}, st[1] = {32};
    uint32_t ba[2] = {32, 64}, bb[2] = {32, 8};
    if (ok && (dsk_emu_tensor_map_encode_tiled(&ma, DSK_TMA_UINT8, 2, A, da, st, ba, NULL, DSK_TMA_SWIZZLE_32B) ||
               dsk_emu_tensor_map_encode_tiled(&mb, DSK_TMA_UINT8, 2, B, db, st, bb, NULL, DSK_TMA_SWIZZLE_32B))) {
        ok = 0;
        snprintf(why, sizeof why, "%s", dsk_last_error());
    }
    void *p[] = {&ma, &mb, &out};
    if (ok && run(ptx, p, 128, why, sizeof why) != DSK_OK) ok = 0;
    for (int t = 0; ok && t < 128; t++)
        for (int i = 0; i < 4; i++) {
            int q = t / 32, l = t % 32;
            int row = 16 * q + l / 4 + 8 * ((i >> 1) & 1), col = 2 * (l % 4) + (i & 1);
            double s = 0;
            for (int k = 0; k < 32; k++)
                s += (double)dsk_fp8_to_f32(A[row * 32 + k], DSK_E4M3) * dsk_fp8_to_f32(B[col * 32 + k], DSK_E4M3);
            if (out[t * 4 + i] != (float)s) {
                ok = 0;
                snprintf(why, sizeof why, "D(%d,%d): got %g expected %g", row, col, out[t * 4 + i], s);
                break;
            }
        }
    report(c, ok, "TMA + mbarrier + wgmma", why);
    dsk_emu_free(A);
    dsk_emu_free(B);
    dsk_emu_free(out);
    free(ptx);
}

dsk_status dsk_emu_selftest(void *out, int *passed, int *failed)
{
    st_ctx c = {(FILE *)out, 0, 0};
    t_arith(&c);
    t_cvt_fp8(&c);
    t_mma(&c);
    t_tma_wgmma(&c);
    t_strict(&c);
    if (passed) *passed = c.passed;
    if (failed) *failed = c.failed;
    if (c.failed) return dsk_fail(DSK_ERR_CHECK, "dsk_emu_selftest: %d of %d checks failed", c.failed, c.passed + c.failed);
    return DSK_OK;
}
