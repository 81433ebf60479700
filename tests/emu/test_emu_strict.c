/* tests/emu/test_emu_strict.c: each strictness class of the emulator with a small
 * deliberately broken kernel, and its correct twin that must pass (so a check that fires
 * on everything is caught too). Every error must name the kernel, the PTX line, the CTA
 * and the thread. */
#include "emu_test_util.h"

static const char *HDR = ".version 8.0\n.target sm_90a\n.address_size 64\n";

/* Runs kernel "k" of body text (inside .entry k(.param .u64 p) { ... }) on grid x block;
 * expects failure with `want` in the message (want NULL: success). */
static void run(const char *what, const char *decls, const char *body, unsigned grid, unsigned block,
                unsigned cluster, size_t buf_bytes, const char *want, int want_line)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s.visible .entry k(.param .u64 p)\n{\n"
                  "  .reg .b32 %%r<32>;\n  .reg .b64 %%rd<16>;\n  .reg .pred %%p<8>;\n  .reg .f32 %%f<32>;\n%s%s}\n",
              HDR, decls, body);
    dsk_emu_module *m = emu_t_load(b.s, what);
    free(b.s);
    if (!m) return;
    void *buf = emu_t_buf(buf_bytes);
    void *params[] = {&buf};
    dsk_emu_launch_cfg cfg = {{grid, 1, 1}, {block, 1, 1}, {cluster, 1, 1}, 0};
    dsk_status s = dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL);
    const char *msg = dsk_last_error();
    if (!want) {
        DSK_T_CHECK(s == DSK_OK, "%s (correct twin) must run: %s", what, msg);
    } else {
        DSK_T_CHECK(s == DSK_ERR_EMU, "%s: expected DSK_ERR_EMU, got %s (%s)", what, dsk_status_name(s), msg);
        DSK_T_CHECK(strstr(msg, want) != NULL, "%s: message lacks '%s': %s", what, want, msg);
        if (want_line > 0) {
            char ln[32];
            snprintf(ln, sizeof ln, "line %d ", want_line);
            DSK_T_CHECK(strstr(msg, "kernel k") && strstr(msg, ln) && strstr(msg, "CTA (") && strstr(msg, "thread ("),
                        "%s: message must name kernel k, %s, the CTA and the thread: %s", what, ln, msg);
        }
    }
    dsk_emu_free(buf);
    dsk_emu_module_free(m);
}

/* PTX lines: HDR is 3 lines, ".visible .entry" line 4, "{" 5, 4 .reg lines 6-9, then decls. */

static void uninitialised(void)
{
    run("uninitialised register", "",
        "  mov.u32 %r1, %tid.x;\n"            /* 10 */
        "  add.u32 %r2, %r1, %r3;\n"          /* 11: %r3 never written */
        "  ret;\n", 1, 32, 0, 64, "never written", 11);
    run("uninitialised register twin", "",
        "  mov.u32 %r1, %tid.x;\n  mov.u32 %r3, 5;\n  add.u32 %r2, %r1, %r3;\n  ret;\n", 1, 32, 0, 64, NULL, 0);
    /* written on one path only: lanes that skipped the write read garbage */
    run("uninitialised on a divergent path", "",
        "  mov.u32 %r1, %tid.x;\n"            /* 10 */
        "  setp.lt.u32 %p1, %r1, 7;\n"        /* 11 */
        "  @%p1 mov.u32 %r3, 1;\n"            /* 12 */
        "  add.u32 %r2, %r1, %r3;\n"          /* 13 */
        "  ret;\n", 1, 32, 0, 64, "never written", 13);
}

static void out_of_bounds(void)
{
    const char *ld =
        "  ld.param.u64 %rd1, [p];\n"         /* 10 */
        "  mov.u32 %r1, %tid.x;\n"            /* 11 */
        "  mul.wide.u32 %rd2, %r1, 4;\n"      /* 12 */
        "  add.u64 %rd3, %rd1, %rd2;\n"       /* 13 */
        "  ld.global.u32 %r2, [%rd3];\n"      /* 14 */
        "  ret;\n";
    run("global load past the allocation", "", ld, 1, 33, 0, 128, "outside every allocation", 14);
    run("global load twin", "", ld, 1, 32, 0, 128, NULL, 0);
    run("global store before the allocation", "",
        "  ld.param.u64 %rd1, [p];\n  mov.u32 %r1, 7;\n  st.global.u32 [%rd1+-4], %r1;\n  ret;\n", 1, 1, 0, 64,
        "outside every allocation", 12);
    const char *sh =
        "  mov.u32 %r1, %tid.x;\n"            /* 11 */
        "  shl.b32 %r2, %r1, 2;\n"            /* 12 */
        "  mov.u32 %r3, s;\n"                 /* 13 */
        "  add.u32 %r4, %r3, %r2;\n"          /* 14 */
        "  st.shared.u32 [%r4], %r1;\n"       /* 15 */
        "  ret;\n";
    run("shared store past the CTA's shared memory", "  .shared .align 4 .b8 s[128];\n", sh, 1, 33, 0, 64,
        "beyond the CTA's", 15);
    run("shared store twin", "  .shared .align 4 .b8 s[128];\n", sh, 1, 32, 0, 64, NULL, 0);
    run("misaligned load", "",
        "  ld.param.u64 %rd1, [p];\n  ld.global.u32 %r1, [%rd1+2];\n  ret;\n", 1, 1, 0, 64, "misaligned", 11);
}

static void barriers(void)
{
    const char *dis =
        "  mov.u32 %r1, %tid.x;\n"            /* 10 */
        "  setp.lt.u32 %p1, %r1, 32;\n"       /* 11 */
        "  @%p1 bra A;\n"                     /* 12 */
        "  bar.sync 1, 128;\n"                /* 13 */
        "  bra E;\n"                          /* 14 */
        "A:\n  bar.sync 1, 64;\n"             /* 15-16 */
        "E:\n  ret;\n";
    run("barrier count disagreement", "", dis, 1, 128, 0, 64, "disagreement", 0);
    run("barrier deadlock (different barriers)", "",
        "  mov.u32 %r1, %tid.x;\n  setp.lt.u32 %p1, %r1, 32;\n  @%p1 bra A;\n  bar.sync 1;\n  bra E;\n"
        "A:\n  bar.sync 2;\nE:\n  ret;\n", 1, 64, 0, 64, "deadlock", 0);
    run("bar.sync inside a divergent branch", "",
        "  mov.u32 %r1, %tid.x;\n"            /* 10 */
        "  setp.lt.u32 %p1, %r1, 16;\n"       /* 11 */
        "  @%p1 bra A;\n"                     /* 12 */
        "  bra E;\n"                          /* 13 */
        "A:\n  bar.sync 0;\n"                 /* 14-15 */
        "E:\n  ret;\n", 1, 64, 0, 64, "part of a warp", 15);
    run("named barrier producer/consumer twin", "",
        "  mov.u32 %r1, %tid.x;\n  setp.lt.u32 %p1, %r1, 32;\n  @%p1 bra A;\n  bar.sync 1, 64;\n  bra E;\n"
        "A:\n  bar.arrive 1, 64;\nE:\n  ret;\n", 1, 64, 0, 64, NULL, 0);
}

static void collectives(void)
{
    const char *sh =
        "  mov.u32 %r1, %tid.x;\n"            /* 10 */
        "  setp.lt.u32 %p1, %r1, 16;\n"       /* 11 */
        "  @!%p1 bra E;\n"                    /* 12 */
        "  shfl.sync.bfly.b32 %r2, %r1, 1, 31, -1;\n" /* 13 */
        "E:\n  ret;\n";
    run("partial-warp shfl with a full membermask", "", sh, 1, 32, 0, 64, "partial-warp collective", 13);
    run("partial-warp shfl twin (membermask of the 16 lanes)", "",
        "  mov.u32 %r1, %tid.x;\n  setp.lt.u32 %p1, %r1, 16;\n  @!%p1 bra E;\n"
        "  shfl.sync.bfly.b32 %r2, %r1, 1, 31, 65535;\nE:\n  ret;\n", 1, 32, 0, 64, NULL, 0);
    run("partial-warp mma.sync", "",
        "  mov.u32 %r1, %tid.x;\n  mov.u32 %r2, 0;\n  mov.f32 %f1, 0f00000000;\n"
        "  setp.lt.u32 %p1, %r1, 16;\n  @!%p1 bra E;\n"
        "  mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%f2, %f3, %f4, %f5}, {%r2, %r2, %r2, %r2}, {%r2, %r2}, {%f1, %f1, %f1, %f1};\n"
        "E:\n  ret;\n", 1, 32, 0, 64, "partial-warp collective", 0);
}

static void async_copies(void)
{
    /* cp.async: reading the destination before cp.async.wait_group */
    const char *cpa =
        "  ld.param.u64 %rd1, [p];\n"         /* 11 */
        "  mov.u32 %r1, s;\n"                 /* 12 */
        "  mov.u32 %r9, %tid.x;\n"            /* 13 */
        "  shl.b32 %r8, %r9, 4;\n"            /* 14 */
        "  add.u32 %r1, %r1, %r8;\n"          /* 15 */
        "  cvt.u64.u32 %rd2, %r8;\n"          /* 16 */
        "  add.u64 %rd1, %rd1, %rd2;\n"       /* 17 */
        "  cp.async.cg.shared.global [%r1], [%rd1], 16;\n" /* 18 */
        "  cp.async.commit_group;\n";         /* 19 */
    const char *cpa_end =
        "  ld.shared.u32 %r2, [%r1];\n"       /* 20 or 21 */
        "  ret;\n";
    char body[1024];
    snprintf(body, sizeof body, "%s%s", cpa, cpa_end);
    run("shared read before cp.async.wait_group", "  .shared .align 16 .b8 s[512];\n", body, 1, 32, 0, 512,
        "has not completed", 20);
    snprintf(body, sizeof body, "%s%s%s", cpa, "  cp.async.wait_group 0;\n", cpa_end);
    run("cp.async twin", "  .shared .align 16 .b8 s[512];\n", body, 1, 32, 0, 512, NULL, 0);
    /* a bulk copy: reading before the mbarrier wait */
    const char *bulk =
        "  ld.param.u64 %rd1, [p];\n"         /* 12 */
        "  mov.u32 %r1, s;\n"                 /* 13 */
        "  mov.u32 %r2, bar;\n"               /* 14 */
        "  mbarrier.init.shared::cta.b64 [%r2], 1;\n" /* 15 */
        "  mbarrier.arrive.expect_tx.shared::cta.b64 %rd2, [%r2], 256;\n" /* 16 */
        "  cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%r1], [%rd1], 256, [%r2];\n"; /* 17 */
    const char *bulk_end = "  ld.shared.u32 %r3, [%r1+8];\n  ret;\n";
    const char *wait = "W:\n  mbarrier.try_wait.parity.shared::cta.b64 %p1, [%r2], 0;\n  @!%p1 bra W;\n";
    snprintf(body, sizeof body, "%s%s", bulk, bulk_end);
    run("shared read before the mbarrier wait of a bulk copy", "  .shared .align 128 .b8 s[512];\n  .shared .align 8 .b64 bar;\n",
        body, 1, 1, 0, 256, "has not completed", 18);
    snprintf(body, sizeof body, "%s%s%s", bulk, wait, bulk_end);
    run("bulk copy twin", "  .shared .align 128 .b8 s[512];\n  .shared .align 8 .b64 bar;\n", body, 1, 1, 0, 256, NULL, 0);
    run("mbarrier used before init", "  .shared .align 8 .b64 bar;\n",
        "  mov.u32 %r2, bar;\n  mbarrier.arrive.shared::cta.b64 %rd2, [%r2];\n  ret;\n", 1, 1, 0, 64, "before mbarrier.init", 12);
    run("mbarrier wait that never completes", "  .shared .align 8 .b64 bar;\n",
        "  mov.u32 %r2, bar;\n  mbarrier.init.shared::cta.b64 [%r2], 2;\n  mbarrier.arrive.shared::cta.b64 %rd2, [%r2];\n"
        "W:\n  mbarrier.try_wait.parity.shared::cta.b64 %p1, [%r2], 0;\n  @!%p1 bra W;\n  ret;\n", 1, 1, 0, 64,
        "deadlock", 0);
}

static void accumulators(void)
{
    const char *wg =
        "  mov.u64 %rd1, 0;\n"                /* 10 */
        "  mov.u32 %r1, 0;\n"                 /* 11 */
        "  setp.ne.u32 %p1, %r1, 0;\n"        /* 12 */
        "  wgmma.fence.sync.aligned;\n"       /* 13 */
        "  wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%f0, %f1, %f2, %f3}, %rd1, %rd1, %p1, 1, 1;\n" /* 14 */
        "  wgmma.commit_group.sync.aligned;\n"; /* 15 */
    const char *wg_end = "  mov.b32 %r2, %f1;\n  ret;\n";  /* 16 or 17 */
    char body[1024];
    snprintf(body, sizeof body, "%s%s", wg, wg_end);
    run("accumulator read before wgmma.wait_group", "  .shared .align 1024 .b8 s[4096];\n", body, 1, 128, 0, 64,
        "before the wgmma.wait_group", 17);
    snprintf(body, sizeof body, "%s%s%s", wg, "  wgmma.wait_group.sync.aligned 0;\n", wg_end);
    run("accumulator twin", "  .shared .align 1024 .b8 s[4096];\n", body, 1, 128, 0, 64, NULL, 0);
    snprintf(body, sizeof body, "%s%s%s", wg, "  wgmma.commit_group.sync.aligned;\n  wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%f4, %f5, %f6, %f7}, %rd1, %rd1, %p1, 1, 1;\n  wgmma.commit_group.sync.aligned;\n  wgmma.wait_group.sync.aligned 1;\n", wg_end);
    run("accumulator twin with wait_group 1 (older group retired)", "  .shared .align 1024 .b8 s[4096];\n", body, 1, 128, 0, 64, NULL, 0);
}

static void launch_checks(void)
{
    dsk_emu_module *m = emu_t_load(".version 8.0\n.target sm_90a\n.address_size 64\n"
                                   ".visible .entry k(.param .u64 p)\n{\n  .shared .align 16 .b8 s[1024];\n  ret;\n}\n",
                                   "launch.ptx");
    if (!m) return;
    void *buf = emu_t_buf(16);
    void *params[] = {&buf};
    dsk_emu_launch_cfg cfg = {{1, 1, 1}, {32, 1, 1}, {0, 0, 0}, 300000};
    DSK_T_ERR(dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL), DSK_ERR_INVALID_ARG, "shared memory");
    cfg.dynamic_smem = 0;
    cfg.block[0] = 2048;
    DSK_T_ERR(dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL), DSK_ERR_INVALID_ARG, "threads");
    cfg.block[0] = 32;
    cfg.grid[0] = 3;
    cfg.cluster[0] = 2;
    DSK_T_ERR(dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL), DSK_ERR_INVALID_ARG, "multiple of the cluster");
    cfg.cluster[0] = 0;
    DSK_T_ERR(dsk_emu_launch(m, "nope", &cfg, params, NULL, NULL, NULL), DSK_ERR_NOT_FOUND, "nope");
    dsk_emu_target ada;
    if (DSK_T_OK(dsk_emu_target_for("4090", &ada, NULL)))
        DSK_T_ERR(dsk_emu_launch(m, "k", &cfg, params, &ada, NULL, NULL), DSK_ERR_INVALID_ARG, "sm_90a");
    dsk_emu_free(buf);
    dsk_emu_module_free(m);
}

int main(void)
{
    uninitialised();
    out_of_bounds();
    barriers();
    collectives();
    async_copies();
    accumulators();
    launch_checks();
    return dsk_t_finish();
}
