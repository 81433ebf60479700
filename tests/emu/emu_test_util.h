/* tests/emu/emu_test_util.h: helpers shared by the emulator's test suites: compiling CUDA
 * C to PTX with nvcc at test time, loading and launching PTX text. */
#ifndef DSK_EMU_TEST_UTIL_H
#define DSK_EMU_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dsk/emu.h"
#include "tests/harness/harness.h"

/* Reads a whole file (caller frees), NULL on failure. */
static inline char *emu_t_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

/* Compiles CUDA source with `nvcc -ptx -arch=<arch>`; returns the PTX text (caller frees).
 * Exits 77 (skipped) when nvcc is absent; returns NULL when compilation fails. */
static inline char *emu_t_nvcc(const char *cuda_src, const char *arch)
{
    const char *nvcc = dsk_t_find_tool("nvcc");
    if (!nvcc) dsk_t_skip("nvcc not found (CUDA toolkit absent): the nvcc-compiled emulator tests cannot run");
    char dir[] = "/tmp/dsk_emu_nvcc_XXXXXX";
    if (!mkdtemp(dir)) return NULL;
    char cu[600], ptx[600], cmd[2048];
    snprintf(cu, sizeof cu, "%s/k.cu", dir);
    snprintf(ptx, sizeof ptx, "%s/k.ptx", dir);
    FILE *f = fopen(cu, "w");
    if (!f) return NULL;
    fputs(cuda_src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' -ptx -arch=%s -o '%s' '%s' 2>&1", nvcc, arch, ptx, cu);
    int rc = system(cmd);
    char *text = rc == 0 ? emu_t_slurp(ptx) : NULL;
    unlink(cu);
    unlink(ptx);
    rmdir(dir);
    return text;
}

#endif
