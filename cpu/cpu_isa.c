/* cpu/cpu_isa.c: run-time ISA detection, the DSK_CPU_ISA cap, the dispatch log, the
 * FP8 decode table and per-worker scratch of the cpu backend.
 *
 * Detection uses the compiler's cpuid wrapper (__builtin_cpu_supports), which also
 * checks that the OS saves the vector state; nothing is decided at build time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"

const char *dsk_cpu_isa_name(dsk_cpu_isa isa)
{
    switch (isa) {
    case DSK_CPU_AVX512BF16: return "avx512bf16";
    case DSK_CPU_AVX2: return "avx2";
    default: return "scalar";
    }
}

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static dsk_cpu_isa detected = DSK_CPU_SCALAR;
static int env_cap = DSK_CPU_AVX512BF16;
static int forced_cap = -1;
static int verbose_dispatch;

static void detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        detected = DSK_CPU_AVX2;
    if (detected == DSK_CPU_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bf16"))
        detected = DSK_CPU_AVX512BF16;
#endif
    const char *e = getenv("DSK_CPU_ISA");
    if (e && *e) {
        if (!strcmp(e, "scalar")) env_cap = DSK_CPU_SCALAR;
        else if (!strcmp(e, "avx2")) env_cap = DSK_CPU_AVX2;
        else env_cap = DSK_CPU_AVX512BF16;   /* "avx512bf16" or unknown: no cap */
    }
    const char *v = getenv("DSK_VERBOSE");
    verbose_dispatch = v && (strstr(v, "dispatch") || strstr(v, "all"));
}

dsk_cpu_isa dsk_cpu_isa_detected(void)
{
    pthread_once(&detect_once, detect);
    return detected;
}

static int cap_now(void)
{
    pthread_once(&detect_once, detect);
    return forced_cap >= 0 ? forced_cap : env_cap;
}

dsk_cpu_isa dsk_cpu_isa_active(void)
{
    int c = cap_now();
    return (dsk_cpu_isa)(c < (int)detected ? c : (int)detected);
}

void dsk_cpu_isa_set_cap(int cap)
{
    pthread_once(&detect_once, detect);
    forced_cap = cap < 0 ? -1 : (cap > DSK_CPU_AVX512BF16 ? DSK_CPU_AVX512BF16 : cap);
}

int dsk_cpu_isa_declines(dsk_cpu_isa isa, char *why, size_t len)
{
    if (isa > dsk_cpu_isa_detected()) {
        snprintf(why, len, "needs %s, this CPU has %s", dsk_cpu_isa_name(isa), dsk_cpu_isa_name(detected));
        return 1;
    }
    int c = cap_now();
    if ((int)isa > c) {
        snprintf(why, len, "capped at %s by %s", dsk_cpu_isa_name((dsk_cpu_isa)c),
                 forced_cap >= 0 ? "dsk_cpu_isa_set_cap" : "DSK_CPU_ISA");
        return 1;
    }
    return 0;
}

void dsk_cpu_dispatch_note(const char *op, const char *variant, const char *why)
{
    pthread_once(&detect_once, detect);
    if (!verbose_dispatch) return;
    if (why) fprintf(stderr, "dispatch: %s: %s declines: %s\n", op, variant, why);
    else fprintf(stderr, "dispatch: %s: %s chosen\n", op, variant);
}

/* ---- e4m3 decode table ---- */
static float e4m3_table[256];
const float *dsk_cpu_e4m3_f32 = e4m3_table;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void)
{
    for (int c = 0; c < 256; c++) {
        int mag = c & 0x7f, e = mag >> 3, m = mag & 7;
        float v;
        if (mag == 0x7f) v = __builtin_nanf("");
        else if (e == 0) v = (float)m * (1.0f / 512.0f);             /* subnormal: m * 2^-9 */
        else v = (1.0f + (float)m / 8.0f) * __builtin_ldexpf(1.0f, e - 7);
        e4m3_table[c] = (c & 0x80) ? -v : v;
    }
}

void dsk_cpu_tables_init(void) { pthread_once(&tables_once, tables_build); }

/* ---- per-thread scratch ---- */
#define SCRATCH_SLOTS 8
static _Thread_local struct { void *p; size_t n; } scratch[SCRATCH_SLOTS];

void *dsk_cpu_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= SCRATCH_SLOTS) return NULL;
    if (scratch[slot].n < bytes) {
        free(scratch[slot].p);
        size_t n = (bytes + 4095) & ~(size_t)4095;
        scratch[slot].p = aligned_alloc(64, n);
        scratch[slot].n = scratch[slot].p ? n : 0;
    }
    return scratch[slot].p;
}
