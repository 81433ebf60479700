/* tests/tune/test_gpu_table.c: the GPU table: built-in contents and sources, lookups,
 * the --gpus-file format (overrides, new GPUs, every malformed-input message), the
 * emulator target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness/harness.h"

static const dsk_gpu *must(const char *name)
{
    const dsk_gpu *g = NULL;
    if (dsk_gpu_find(name, &g) != DSK_OK) {
        DSK_T_CHECK(0, "dsk_gpu_find(%s): %s", name, dsk_last_error());
        dsk_t_finish();
        exit(1);
    }
    return g;
}

static void check_builtin(void)
{
    static const char *required[] = {"h800", "h20", "h100", "h200", "4090", "mi300x", "l20", "a100", "b200", "mi325x"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const dsk_gpu *g = NULL;
        DSK_T_OK(dsk_gpu_find(required[i], &g));
    }
    DSK_T_CHECK(dsk_gpu_count() == 10, "built-in table has %d GPUs, expected 10", dsk_gpu_count());
    /* Every number of every built-in GPU carries a source tag. */
    for (int i = 0; i < dsk_gpu_count(); i++) {
        const dsk_gpu *g = dsk_gpu_at(i);
        const dsk_gpu_num *first = &g->sms, *last = &g->band;
        for (const dsk_gpu_num *n = first; n <= last; n++)
            DSK_T_CHECK(n->src[0] != 0, "%s: field %d has no source", g->name, (int)(n - first));
        DSK_T_CHECK(g->description[0] && g->arch[0] && g->vendor[0], "%s: description/arch/vendor set", g->name);
    }
    /* Spot values against gpu_specs.md, with their tags. */
    const dsk_gpu *h20 = must("H20"), *h800 = must("h800"), *r4090 = must("rtx4090"), *mi = must("MI300X");
    DSK_T_CHECK(h20->sms.v == 78 && strstr(h20->sms.src, "R"), "H20 78 SMs tagged [R]: %g [%s]", h20->sms.v, h20->sms.src);
    DSK_T_CHECK(h20->mem_gbps.v == 4000 && h20->fp8_tflops.v == 296 && h20->bf16_tflops.v == 148, "H20 4.0 TB/s, 296/148 TFLOPS");
    DSK_T_CHECK(h800->sms.v == 132 && h800->mem_gbps.v == 3352 && h800->link_gbps.v == 200, "H800 132 SMs, 3352 GB/s, 200 GB/s NVLink");
    DSK_T_CHECK(r4090->fp8_tflops.v == 330.3 && strstr(r4090->fp8_tflops.src, "FP32 accumulate"),
                "4090 FP8 at the FP32-accumulate rate: %g [%s]", r4090->fp8_tflops.v, r4090->fp8_tflops.src);
    DSK_T_CHECK(r4090->smem_block_kb.v == 99 && !strcmp(r4090->arch, "sm_89"), "4090 sm_89 with 99 KiB per block");
    DSK_T_CHECK(mi->sms.v == 304 && !strcmp(mi->vendor, "amd") && mi->smem_sm_kb.v == 64, "MI300X 304 CUs, 64 KiB LDS");
    DSK_T_CHECK(h800->cal_gemm_fp8.v == 0.78 && strstr(h800->cal_gemm_fp8.src, "S12"), "H800 GEMM calibration from S12");
    /* Derived rates: H800 8192 FP8 FLOP/clk/SM (gpu_specs Table 4), 4090 1024. */
    double r8 = dsk_gpu_fp8_flop_per_clk_sm(h800), r4 = dsk_gpu_fp8_flop_per_clk_sm(r4090);
    DSK_T_CHECK(r8 > 8150 && r8 < 8250, "H800 FP8 FLOP/clk/SM %.0f ~ 8192", r8);
    DSK_T_CHECK(r4 > 1010 && r4 < 1035, "4090 FP8 FLOP/clk/SM %.0f ~ 1024", r4);
}

static void check_find_errors(void)
{
    const dsk_gpu *g;
    DSK_T_ERR(dsk_gpu_find("h900", &g), DSK_ERR_NOT_FOUND, "known GPUs: h800, h20, h100");
    DSK_T_ERR(dsk_gpu_find(NULL, &g), DSK_ERR_INVALID_ARG, "must not be NULL");
}

static void check_emu_target(void)
{
    dsk_emu_target t;
    DSK_T_OK(dsk_gpu_emu_target(must("h20"), &t));
    DSK_T_CHECK(t.num_sms == 78 && t.sm_version == 90 && t.has_sm90a && t.smem_per_block == 227 * 1024 &&
                    t.smem_per_sm == 228 * 1024 && t.max_threads_per_block == 1024,
                "emu:h20 target: %d SMs sm_%d, %zu smem/block", t.num_sms, t.sm_version, t.smem_per_block);
    DSK_T_OK(dsk_gpu_emu_target(must("4090"), &t));
    DSK_T_CHECK(t.num_sms == 128 && t.sm_version == 89 && !t.has_sm90a && t.smem_per_block == 99 * 1024, "emu:4090 target");
    DSK_T_ERR(dsk_gpu_emu_target(must("mi300x"), &t), DSK_ERR_UNSUPPORTED, "cannot take on mi300x");
    dsk_arch a;
    DSK_T_ERR(dsk_gpu_ptx_arch(must("a100"), &a), DSK_ERR_UNSUPPORTED, "no FP8 tensor cores");
    DSK_T_ERR(dsk_gpu_ptx_arch(must("b200"), &a), DSK_ERR_UNSUPPORTED, "no PTX GEMM emitter");
}

static void check_file_format(void)
{
    /* Override one key of a known GPU; the rest and the other GPUs stay. */
    DSK_T_OK(dsk_gpu_load_text("# my H20 runs at 1.75 GHz\n[h20]\nclock_mhz = 1755 [my nvidia-smi]\n", "t1"));
    const dsk_gpu *h20 = must("h20");
    DSK_T_CHECK(h20->clock_mhz.v == 1755 && !strcmp(h20->clock_mhz.src, "my nvidia-smi"), "override with source");
    DSK_T_CHECK(h20->sms.v == 78 && strstr(h20->sms.src, "S5"), "untouched keys keep value and source");
    /* A value without a source is attributed to the file and line. */
    DSK_T_OK(dsk_gpu_load_text("[h20]\n\nmem_gbps = 4800\n", "mine.gpus"));
    DSK_T_CHECK(!strcmp(must("h20")->mem_gbps.src, "user: mine.gpus:3"), "source of an untagged value: '%s'",
                must("h20")->mem_gbps.src);
    /* A new GPU from a base. */
    DSK_T_OK(dsk_gpu_load_text("[h20e]\nbase = h20\ndescription = H20 141GB\naliases = h20-3e\nmem_gb = 141\n", "t2"));
    const dsk_gpu *e = must("H20-3E");
    DSK_T_CHECK(!strcmp(e->name, "h20e") && e->mem_gb.v == 141 && e->sms.v == 78, "base copies, keys override");
    DSK_T_CHECK(dsk_gpu_count() == 11, "one GPU added: %d", dsk_gpu_count());
    dsk_gpu_reset();
    DSK_T_CHECK(dsk_gpu_count() == 10 && must("h20")->clock_mhz.v == 1830, "reset restores the built-in table");

    /* Malformed input: each names the source, the line and the problem; the table is unchanged. */
    struct { const char *text, *msg; } bad[] = {
        {"[h20]\nclock_mhz = fast\n", "f.gpus:2: clock_mhz: expected a number and an optional [source], got 'fast'"},
        {"[h20]\nclock_mhz = 1800 (S5)\n", "f.gpus:2: clock_mhz: expected a number"},
        {"[h20]\nwarp_size = 32\n", "f.gpus:2: unknown key 'warp_size' (known: description"},
        {"sms = 78\n", "f.gpus:1: 'sms = 78' before any [gpu] section"},
        {"[h20]\nsms 78\n", "f.gpus:2: expected 'key = value', got 'sms 78'"},
        {"[h20\n", "f.gpus:1: expected '[name]', got '[h20'"},
        {"[h 20]\n", "f.gpus:1: GPU name 'h 20' must be"},
        {"[h20]\nsms = 0\n", "f.gpus:2: sms = 0 is outside [1, 4096]"},
        {"[h20]\ncal_mem = 1.5\n", "f.gpus:2: cal_mem = 1.5 is outside"},
        {"[h20]\n[h20]\n", "f.gpus:2: GPU [h20] appears twice"},
        {"[x1]\narch = sm_90a\n", "f.gpus:1: new GPU [x1] lacks key 'sms'"},
        {"[x1]\nbase = h999\n", "f.gpus:2: base 'h999' is not a known GPU"},
        {"[x1]\nsms = 4\nbase = h20\n", "f.gpus:3: base must be the first key of [x1]"},
        {"[h20]\nbase = h100\n", "base is only for new GPUs; [h20] is known"},
        {"[x1]\nbase = h20\nvendor = intel\n", "f.gpus:3: vendor must be nvidia or amd, got 'intel'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        DSK_T_ERR(dsk_gpu_load_text(bad[i].text, "f.gpus"), DSK_ERR_FORMAT, bad[i].msg);
        DSK_T_CHECK(dsk_gpu_count() == 10 && must("h20")->sms.v == 78, "table unchanged after bad input %zu", i);
    }

    /* Files: a real one, a missing one, a binary one. */
    char path[] = "/tmp/dsk_gpus_XXXXXX";
    int fd = mkstemp(path);
    DSK_T_CHECK(fd >= 0, "mkstemp");
    const char *txt = "[h800]\nlink_gbps = 160 [S4: achievable]\n";
    DSK_T_CHECK(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt), "write");
    close(fd);
    DSK_T_OK(dsk_gpu_load_file(path));
    DSK_T_CHECK(must("h800")->link_gbps.v == 160, "file override");
    FILE *f = fopen(path, "wb");
    fwrite("[h800]\0sms = 1\n", 1, 15, f);
    fclose(f);
    DSK_T_ERR(dsk_gpu_load_file(path), DSK_ERR_FORMAT, "NUL byte");
    unlink(path);
    DSK_T_ERR(dsk_gpu_load_file("/nonexistent/dsk.gpus"), DSK_ERR_IO, "cannot open '/nonexistent/dsk.gpus'");
    dsk_gpu_reset();
}

int main(void)
{
    check_builtin();
    check_find_errors();
    check_emu_target();
    check_file_format();
    return dsk_t_finish();
}
