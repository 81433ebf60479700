/* tests/hip/test_hip_codeobj.c: the gfx942 code objects embedded in libdsk (hip/hip.cmake)
 * checked the way DESIGN.md's "assembles" step asks, with llvm-objdump-19 and llvm-readelf-19:
 *   - one object per configuration, targeting amdgcn-amd-amdhsa--gfx942, holding its kernel;
 *   - the disassembly contains exactly 4 * TM * TN v_mfma_f32_16x16x32_fp8_fp8 (TM x TN
 *     16x16 tiles per wave, four MFMAs per 128 of K: the K loop body fully unrolled, the
 *     FP8 matrix cores used);
 *   - no scratch: private segment 0 bytes, no VGPR/SGPR spills, no scratch_ or buffer_
 *     instructions (dsk's kernels address memory with global_ and ds_ only);
 *   - LDS (group segment) equal to the tile plan DSK_HIP_GEMM_LDS_BYTES(BM, BN) <= 64 KiB;
 *   - registers within budget (below); occupancy derived from them is printed;
 *   - the kernel arguments as the host passes them: 6 pointers and the by-value
 *     dsk_hip_gemm_dims of sizeof(dsk_hip_gemm_dims) bytes.
 * Register budgets (per lane; gfx942 has 512 unified VGPRs, ArchVGPRs <= 256):
 *   BM >= 64: total VGPRs (arch + AGPR) <= 512, i.e. at least 1 wave per SIMD;
 *   BM <= 32: total VGPRs <= 128, i.e. at least 4 waves per SIMD (decode shapes need
 *             latency hiding across waves);
 *   SGPRs <= 102.
 * Skipped when libdsk was built without clang-19 or the llvm-19 tools are absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hip/hip_internal.h"
#include "tests/harness/harness.h"

typedef struct meta {
    long vgpr, agpr, sgpr, lds, priv, vspill, sspill, kernarg;
    long by_value_size, n_global, n_by_value;
    int target_ok, name_ok;
} meta;

static long field(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int read_meta(const char *readelf, const char *path, const char *kernel, meta *m)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "%s --notes '%s' 2>&1", readelf, path);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    memset(m, 0xFF, sizeof *m);
    m->n_global = m->n_by_value = 0;
    m->target_ok = m->name_ok = 0;
    long last_size = -1;
    while (fgets(line, sizeof line, f)) {
        long v;
        if ((v = field(line, ".vgpr_count:")) >= 0) m->vgpr = v;
        if ((v = field(line, ".agpr_count:")) >= 0) m->agpr = v;
        if ((v = field(line, ".sgpr_count:")) >= 0) m->sgpr = v;
        if ((v = field(line, ".group_segment_fixed_size:")) >= 0) m->lds = v;
        if ((v = field(line, ".private_segment_fixed_size:")) >= 0) m->priv = v;
        if ((v = field(line, ".vgpr_spill_count:")) >= 0) m->vspill = v;
        if ((v = field(line, ".sgpr_spill_count:")) >= 0) m->sspill = v;
        if ((v = field(line, ".kernarg_segment_size:")) >= 0) m->kernarg = v;
        if ((v = field(line, ".size:")) >= 0) last_size = v;
        if (strstr(line, ".value_kind:") && strstr(line, "global_buffer")) m->n_global++;
        if (strstr(line, ".value_kind:") && strstr(line, "by_value")) {
            m->n_by_value++;
            m->by_value_size = last_size;
        }
        if (strstr(line, "amdgcn-amd-amdhsa--gfx942")) m->target_ok = 1;
        if (strstr(line, ".name:") && strstr(line, kernel)) m->name_ok = 1;
    }
    return pclose(f) == 0 ? 0 : -1;
}

/* Counts MFMA fp8 instructions and scratch/buffer instructions in the disassembly. */
static int read_disasm(const char *objdump, const char *path, long *mfma, long *scratch, long *insns)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "%s -d --mcpu=gfx942 '%s' 2>&1", objdump, path);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    *mfma = *scratch = *insns = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "// 0"))
            ++*insns;
        if (strstr(line, "v_mfma_f32_16x16x32_fp8_fp8"))
            ++*mfma;
        if (strstr(line, "scratch_") || strstr(line, "buffer_"))
            ++*scratch;
    }
    return pclose(f) == 0 ? 0 : -1;
}

int main(void)
{
    int n = dsk_hip_code_object_count();
    if (n == 0)
        dsk_t_skip("libdsk was built without clang-19: no gfx942 code objects embedded");
    const char *objdump = dsk_t_find_tool("llvm-objdump-19"), *readelf = dsk_t_find_tool("llvm-readelf-19");
    if (!objdump || !readelf)
        dsk_t_skip("llvm-objdump-19 / llvm-readelf-19 not found");

    DSK_T_CHECK(n == dsk_hip_gemm_config_count(), "%d code objects embedded, %d configurations", n,
                dsk_hip_gemm_config_count());
    char dir[] = "/tmp/dsk_hip_codeobj_XXXXXX";
    if (!mkdtemp(dir))
        dsk_t_skip("cannot create a temporary directory");
    printf("%-30s %6s %5s %5s %5s %7s %6s %5s %8s\n", "kernel", "mfma", "vgpr", "agpr", "sgpr", "lds", "waves", "priv",
           "code");
    for (int i = 0; i < dsk_hip_gemm_config_count(); i++) {
        const dsk_hip_gemm_config *c = dsk_hip_gemm_config_get(i);
        const dsk_hip_code_object *co = dsk_hip_code_object_find(c->name);
        if (!DSK_T_CHECK(co, "%s: no embedded code object", c->name))
            continue;
        char path[256];
        snprintf(path, sizeof path, "%s/%s.hsaco", dir, c->name);
        FILE *f = fopen(path, "wb");
        int wrote = f && fwrite(co->data, 1, co->size, f) == co->size;
        if (f)
            fclose(f);
        if (!DSK_T_CHECK(wrote, "%s: cannot write %s", c->name, path))
            continue;
        meta m;
        long mfma = 0, scratch = 0, insns = 0;
        if (!DSK_T_CHECK(read_meta(readelf, path, c->name, &m) == 0, "%s: llvm-readelf-19 --notes failed", c->name) ||
            !DSK_T_CHECK(read_disasm(objdump, path, &mfma, &scratch, &insns) == 0,
                         "%s: llvm-objdump-19 -d --mcpu=gfx942 failed", c->name)) {
            unlink(path);
            continue;
        }
        unlink(path);
        int tm = c->bm / c->wm / 16, tn = c->bn / c->wn / 16;
        long lds_plan = (long)dsk_hip_gemm_config_lds(c);
        long vgpr_budget = c->bm >= 64 ? 512 : 128;
        long waves = m.vgpr > 0 ? 512 / ((m.vgpr + 7) / 8 * 8) : 0;
        if (waves > 8)
            waves = 8;
        printf("%-30s %6ld %5ld %5ld %5ld %7ld %6ld %5ld %8zu\n", c->name, mfma, m.vgpr, m.agpr, m.sgpr, m.lds, waves,
               m.priv, co->size);
        DSK_T_CHECK(m.target_ok && m.name_ok, "%s: not a gfx942 code object holding the kernel", c->name);
        DSK_T_CHECK(mfma == 4L * tm * tn, "%s: %ld v_mfma_f32_16x16x32_fp8_fp8, expected 4 * %d * %d", c->name, mfma,
                    tm, tn);
        DSK_T_CHECK(m.priv == 0 && m.vspill == 0 && m.sspill == 0 && scratch == 0,
                    "%s: scratch in use: private segment %ld bytes, spills %ld VGPR / %ld SGPR, %ld scratch/buffer "
                    "instructions",
                    c->name, m.priv, m.vspill, m.sspill, scratch);
        DSK_T_CHECK(m.lds == lds_plan && m.lds <= 65536, "%s: LDS %ld bytes, the tile plan is %ld (limit 65536)",
                    c->name, m.lds, lds_plan);
        DSK_T_CHECK(m.vgpr > 0 && m.vgpr <= vgpr_budget && m.vgpr - m.agpr <= 256,
                    "%s: %ld VGPRs (%ld AGPRs), budget %ld total and 256 ArchVGPRs", c->name, m.vgpr, m.agpr,
                    vgpr_budget);
        DSK_T_CHECK(m.sgpr > 0 && m.sgpr <= 102, "%s: %ld SGPRs, budget 102", c->name, m.sgpr);
        DSK_T_CHECK(m.n_global == 6 && m.n_by_value == 1 && m.by_value_size == (long)sizeof(dsk_hip_gemm_dims),
                    "%s: arguments: %ld pointers, %ld by-value of %ld bytes; the host passes 6 pointers and "
                    "dsk_hip_gemm_dims (%zu bytes)",
                    c->name, m.n_global, m.n_by_value, m.by_value_size, sizeof(dsk_hip_gemm_dims));
        DSK_T_CHECK(insns > 100, "%s: only %ld instructions disassembled", c->name, insns);
    }
    rmdir(dir);
    return dsk_t_finish();
}
