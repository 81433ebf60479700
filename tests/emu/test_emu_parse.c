/* tests/emu/test_emu_parse.c: the PTX parser: every malformed or unsupported line is an
 * error naming the file, the line and its text (never skipped); the accepted syntax
 * (directives, <N> register ranges, scoped labels and registers, immediates 0f/0d/hex/
 * negative, address forms, .global initializers, extern .shared) decodes and runs. */
#include "emu_test_util.h"

static const char *HDR = ".version 8.0\n.target sm_90a\n.address_size 64\n";

static void expect_format_error(const char *what, const char *body, const char *substr, int line)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s.visible .entry k(.param .u64 p)\n{\n  .reg .b32 %%r<8>;\n  .reg .b64 %%rd<4>;\n"
                  "  .reg .pred %%p<2>;\n%s}\n", HDR, body);
    dsk_emu_module *m = NULL;
    dsk_status s = dsk_emu_module_load(b.s, "bad.ptx", &m);
    free(b.s);
    char ln[32];
    snprintf(ln, sizeof ln, "bad.ptx:%d:", line);
    DSK_T_CHECK(s == DSK_ERR_FORMAT, "%s: expected DSK_ERR_FORMAT, got %s", what, dsk_status_name(s));
    DSK_T_CHECK(strstr(dsk_last_error(), substr) != NULL, "%s: message lacks '%s': %s", what, substr, dsk_last_error());
    DSK_T_CHECK(strstr(dsk_last_error(), ln) != NULL, "%s: message lacks '%s': %s", what, ln, dsk_last_error());
    if (m) dsk_emu_module_free(m);
}

static void errors(void)
{
    /* lines: HDR 1-3, .entry 4, { 5, .reg 6-8, body from 9 */
    expect_format_error("unknown instruction", "  frobnicate.u32 %r1, %r2;\n", "unsupported instruction 'frobnicate'", 9);
    expect_format_error("undeclared register", "  mov.u32 %r1, %r9;\n", "undeclared name '%r9'", 9);
    expect_format_error("missing semicolon", "  mov.u32 %r1, 1\n  ret;\n", "expected ',' or ';'", 9);
    expect_format_error("undefined label", "  bra NOWHERE;\n", "undefined label NOWHERE", 9);
    expect_format_error("unknown qualifier", "  add.wobbly.u32 %r1, %r1, 1;\n", "unsupported qualifier .wobbly", 9);
    expect_format_error("wrong operand count", "  add.u32 %r1, %r1;\n", "expected 3 operands", 9);
    expect_format_error("bad number", "  mov.u32 %r1, 0f12;\n", "bad number", 9);
    expect_format_error("unsupported call", "  call foo;\n", "call is not supported", 9);
    expect_format_error("duplicate label", "L:\n  ret;\nL:\n  ret;\n", "defined twice", 11);
    expect_format_error("wgmma wrong accumulator count",
                        "  .reg .f32 %f<4>;\n  wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 {%f0, %f1, %f2, %f3}, %rd1, %rd1, %p1, 1, 1;\n",
                        "expected 8 accumulator registers", 10);
    expect_format_error("illegal wgmma N", "  .reg .f32 %f<4>;\n  wgmma.mma_async.sync.aligned.m64n12k32.f32.e4m3.e4m3 {%f0}, %rd1, %rd1, %p1, 1, 1;\n",
                        "N=12 is not legal", 10);
    dsk_emu_module *m = NULL;
    DSK_T_ERR(dsk_emu_module_load(".version 8.0\n.target sm_60\n", "old.ptx", &m), DSK_ERR_FORMAT, "sm_70 or newer");
    DSK_T_ERR(dsk_emu_module_load(".version 8.0\n.target sm_90\n.address_size 32\n", "as.ptx", &m), DSK_ERR_FORMAT, "only 64");
    DSK_T_ERR(dsk_emu_module_load(".version 8.0\n.target sm_89\n.address_size 64\n.visible .entry k()\n{\n"
                                  "  .reg .b64 %rd<2>;\n  .reg .f32 %f<2>;\n  .reg .pred %p<2>;\n"
                                  "  wgmma.fence.sync.aligned;\n  ret;\n}\n", "ada.ptx", &m),
              DSK_ERR_FORMAT, "needs target sm_90a");
    DSK_T_ERR(dsk_emu_module_load(NULL, "x", &m), DSK_ERR_INVALID_ARG, "ptx_text");
}

static const char *syntax_ptx;

/* Truncated and corrupted modules load or fail with DSK_ERR_FORMAT, never crash (run under
 * the sanitizers by `make sanitize`). */
static void robustness(void)
{
    size_t n = strlen(syntax_ptx);
    char *buf = malloc(n + 1);
    int bad = 0, loaded = 0;
    for (size_t cut = 0; cut < n; cut += 3) {
        memcpy(buf, syntax_ptx, cut);
        buf[cut] = 0;
        dsk_emu_module *m = NULL;
        dsk_status s = dsk_emu_module_load(buf, "cut.ptx", &m);
        if (s != DSK_OK && s != DSK_ERR_FORMAT) bad++;
        loaded += s == DSK_OK;
        dsk_emu_module_free(m);
    }
    dsk_rng r = dsk_t_rng(50);
    static const char junk[] = "{}[]();,.%@!|<>+-_0123456789xfdabcXYZ \n\t/*";
    for (int trial = 0; trial < 400; trial++) {
        memcpy(buf, syntax_ptx, n + 1);
        int edits = (int)dsk_rng_int(&r, 1, 4);
        for (int e = 0; e < edits; e++) buf[dsk_rng_int(&r, 0, (int64_t)n - 1)] = junk[dsk_rng_int(&r, 0, (int64_t)sizeof junk - 2)];
        dsk_emu_module *m = NULL;
        dsk_status s = dsk_emu_module_load(buf, "junk.ptx", &m);
        if (s != DSK_OK && s != DSK_ERR_FORMAT) bad++;
        dsk_emu_module_free(m);
    }
    free(buf);
    DSK_T_CHECK(bad == 0, "truncated/corrupted PTX: %d loads returned a status other than OK or DSK_ERR_FORMAT", bad);
    DSK_T_CHECK(loaded < (int)(n / 3), "truncated modules must mostly fail to load (%d of %zu loaded)", loaded, n / 3);
}

static void accepted_syntax(void)
{
    static const char *ptx =
        "//\n// a comment block\n/* and a\n multi-line one */\n"
        ".version 8.3\n.target sm_90a\n.address_size 64\n"
        ".file 1 \"k.cu\"\n"
        ".global .align 4 .u32 table[4] = {7, 11, -13, 0x10};\n"
        ".global .align 4 .f32 scale = 0f40400000;\n"
        ".extern .shared .align 16 .b8 dyn[];\n"
        ".visible .entry k(\n  .param .u64 k_param_0,\n  .param .align 16 .b8 k_param_1[16]\n)\n"
        ".maxntid 64, 1, 1\n{\n"
        "  .reg .pred %p<3>;\n  .reg .b32 %r<40>;\n  .reg .f32 %f<8>;\n  .reg .b64 %rd<12>;\n  .reg .f64 %fd<3>;\n"
        "  .reg .b16 %rs<3>;\n"
        "  .local .align 8 .b8 depot[32];\n"
        "  .loc 1 3 5\n"
        "  ld.param.u64 %rd1, [k_param_0];\n"
        "  cvta.to.global.u64 %rd2, %rd1;\n"
        "  ld.param.v4.u32 {%r1, %r2, %r3, %r4}, [k_param_1];\n"
        "  mov.u32 %r5, %tid.x;\n"
        "  mov.u64 %rd3, table;\n"
        "  ld.global.u32 %r6, [%rd3+8];\n"                      /* -13 */
        "  ld.global.u32 %r7, [table+12];\n"                    /* 16 */
        "  ld.global.f32 %f1, [scale];\n"                       /* 3.0 */
        "  mov.f64 %fd1, 0d4000000000000000;\n"                 /* 2.0 */
        "  cvt.rn.f32.f64 %f2, %fd1;\n"
        "  mul.f32 %f3, %f1, %f2;\n"                            /* 6.0 */
        "  cvt.rzi.s32.f32 %r8, %f3;\n"
        "  { .reg .b32 %t;\n    mov.u32 %t, 100;\n    add.s32 %r9, %t, %r6;\n  }\n"   /* 87 */
        "  { .reg .pred %t;\n    setp.lt.s32 %t, %r6, 0;\n    selp.b32 %r10, -1, 1, %t;\n  }\n"
        "  mov.u32 %r11, 0;\n"
        "  mov.u32 %r12, 0;\n"
        "$L__loop:\n"
        "  add.s32 %r11, %r11, %r12;\n  add.s32 %r12, %r12, 1;\n  setp.lt.s32 %p1, %r12, 5;\n  @%p1 bra.uni $L__loop;\n"
        "  { $L__skip:\n  }\n"
        "  mov.u32 %r13, dyn;\n  shl.b32 %r14, %r5, 2;\n  add.s32 %r15, %r13, %r14;\n"
        "  st.shared.u32 [%r15], %r5;\n  bar.sync 0;\n"
        "  xor.b32 %r16, %r5, 1;\n  shl.b32 %r17, %r16, 2;\n  add.s32 %r18, %r13, %r17;\n  ld.shared.u32 %r19, [%r18];\n"
        "  mov.u64 %rd4, depot;\n  cvta.local.u64 %rd5, %rd4;\n  st.u32 [%rd5+4], %r5;\n  ld.local.u32 %r20, [%rd4+4];\n"
        "  mov.b32 %r21, 0fBF800000;\n"                         /* -1.0f bits */
        "  mov.b64 %rd6, {%r1, %r2};\n  mov.b64 {%r22, %r23}, %rd6;\n"
        "  mov.b16 %rs1, 0x3C00;\n  mov.b32 %r24, {%rs1, %rs1};\n"
        "  mul.wide.u32 %rd7, %r5, 64;\n  add.s64 %rd8, %rd2, %rd7;\n"
        "  st.global.v4.u32 [%rd8], {%r6, %r7, %r8, %r9};\n"
        "  st.global.v4.u32 [%rd8+16], {%r10, %r11, %r19, %r20};\n"
        "  st.global.v4.u32 [%rd8+32], {%r21, %r22, %r23, %r24};\n"
        "  st.global.v2.u32 [%rd8+48], {%r1, %r4};\n"
        "  ret;\n}\n";
    syntax_ptx = ptx;
    dsk_emu_module *m = emu_t_load(ptx, "syntax.ptx");
    if (!m) return;
    DSK_T_CHECK(dsk_emu_module_has_kernel(m, "k"), "kernel k is listed");
    DSK_T_CHECK(dsk_emu_kernel_param_count(m, "k") == 2 && dsk_emu_kernel_param_size(m, "k", 1) == 16,
                "parameters: count %d, size of 1 %zu", dsk_emu_kernel_param_count(m, "k"), dsk_emu_kernel_param_size(m, "k", 1));
    uint32_t *out = emu_t_buf(64 * 64);
    uint32_t v4[4] = {0xA1, 0xB2, 0xC3, 0xD4};
    void *params[] = {&out, v4};
    dsk_emu_launch_cfg cfg = {{1, 1, 1}, {64, 1, 1}, {0, 0, 0}, 256};
    if (DSK_T_OK(dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL))) {
        int bad = 0;
        for (uint32_t t = 0; t < 64; t++) {
            const uint32_t *o = out + t * 16;
            uint32_t want[14] = {(uint32_t)-13, 16, 6, 87, (uint32_t)-1, 10, t ^ 1, t, 0xBF800000u, 0xA1, 0xB2,
                                 0x3C003C00u, 0xA1, 0xD4};
            for (int i = 0; i < 14; i++)
                if (o[i] != want[i] && bad++ < 5) DSK_T_CHECK(0, "thread %u value %d: got 0x%x expected 0x%x", t, i, o[i], want[i]);
        }
        DSK_T_CHECK(bad == 0, "accepted-syntax kernel: %d wrong values", bad);
    }
    cfg.block[0] = 128;
    DSK_T_ERR(dsk_emu_launch(m, "k", &cfg, params, NULL, NULL, NULL), DSK_ERR_INVALID_ARG, ".maxntid");
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

int main(void)
{
    errors();
    accepted_syntax();
    robustness();
    return dsk_t_finish();
}
