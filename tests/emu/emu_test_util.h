/* tests/emu/emu_test_util.h: helpers shared by the emulator's test suites: compiling CUDA
 * C to PTX with nvcc at test time, loading and launching PTX text. */
#ifndef DSK_EMU_TEST_UTIL_H
#define DSK_EMU_TEST_UTIL_H

#include <stdarg.h>
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

/* A growing string for generated PTX. */
typedef struct emu_t_str { char *s; size_t n, cap; } emu_t_str;

static inline void emu_t_add(emu_t_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void emu_t_add(emu_t_str *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) exit(1);
        if (b->n == 0) b->s[0] = 0;
    }
}

/* Loads PTX text; on failure records a check failure and returns NULL. */
static inline dsk_emu_module *emu_t_load(const char *ptx, const char *name)
{
    dsk_emu_module *m = NULL;
    dsk_status s = dsk_emu_module_load(ptx, name, &m);
    if (!DSK_T_CHECK(s == DSK_OK, "load %s: %s", name, dsk_last_error())) return NULL;
    return m;
}

/* Emulator memory filled with 0xFF (poison). */
static inline void *emu_t_buf(size_t bytes)
{
    void *p = NULL;
    if (dsk_emu_alloc(bytes, &p) != DSK_OK) {
        fprintf(stderr, "dsk_emu_alloc(%zu): %s\n", bytes, dsk_last_error());
        exit(1);
    }
    memset(p, 0xFF, bytes);
    return p;
}

#endif
