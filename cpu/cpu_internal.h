/* cpu/cpu_internal.h: what the cpu backend's files share (internal).
 *
 * ISA levels, best first: avx512bf16 (AVX-512 F/BW/VL/VBMI + BF16 dot products),
 * avx2 (AVX2 + FMA + F16C), scalar (portable C). The level a kernel runs at is the
 * best the CPU has, capped by DSK_CPU_ISA=avx2|scalar or by dsk_cpu_isa_set_cap()
 * (tests force each level that way). Every op keeps an ordered variant list; each
 * variant that declines says why under DSK_VERBOSE=dispatch. */
#ifndef DSK_CPU_INTERNAL_H
#define DSK_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "core/backend.h"

typedef enum dsk_cpu_isa {
    DSK_CPU_SCALAR = 0,
    DSK_CPU_AVX2 = 1,
    DSK_CPU_AVX512BF16 = 2,
} dsk_cpu_isa;

/* "scalar", "avx2", "avx512bf16". */
const char *dsk_cpu_isa_name(dsk_cpu_isa isa);
/* The best level this CPU (and OS) supports. */
dsk_cpu_isa dsk_cpu_isa_detected(void);
/* The level kernels run at: min(detected, cap). */
dsk_cpu_isa dsk_cpu_isa_active(void);
/* Caps the level (tests); -1 restores the DSK_CPU_ISA / no-cap default. */
void dsk_cpu_isa_set_cap(int cap);
/* Why a variant needing isa cannot run here, in why; 0 when it can. */
int dsk_cpu_isa_declines(dsk_cpu_isa isa, char *why, size_t len);
/* Under DSK_VERBOSE=dispatch (or =all), writes "dispatch: OP: VARIANT declines: WHY" or
 * "dispatch: OP: VARIANT chosen" to stderr (a diagnostic the user asked for). */
void dsk_cpu_dispatch_note(const char *op, const char *variant, const char *why);

/* e4m3 code -> f32, all 256 codes (NaN for 0x7F/0xFF). */
extern const float *dsk_cpu_e4m3_f32;
void dsk_cpu_tables_init(void);

/* ---- FP8 GEMM: one dense sub-problem (a group of a grouped layout is one too) ---- */
typedef struct cpu_gemm_sub {
    const uint8_t *a; int64_t lda;              /* a[m*lda + k] e4m3 */
    const float *sa; int64_t sa_m, sa_k;        /* a_scale[m*sa_m + kb*sa_k] */
    const uint8_t *b; int64_t ldb;              /* b[n*ldb + k] e4m3 */
    const float *sb; int64_t sb_n, sb_k;        /* b_scale[nb*sb_n + kb*sb_k], nb = n/128 */
    void *d; int64_t ldd; int d_bf16;           /* d[m*ldd + n], f32 or bf16 */
    int64_t M, N, K;
    const void *apk;   /* the level's packed activations (pack_a), NULL for levels without */
} cpu_gemm_sub;

/* Per-thread scratch in slots 0..7, grown on demand, kept for the thread's life. Kernels
 * running as pool tasks use 0..3; 4..7 belong to the op's calling thread. */
void *dsk_cpu_scratch(int slot, size_t bytes);

/* One ISA level's GEMM kernels.
 * decode (optional): rows [0, M) for n in [n0, n1) when M <= decode_max_m (n0 a
 *   multiple of 4).
 * tile: any [m0, m1) x [n0, n1); m0 a multiple of tile_m; n0 a multiple of tile_n,
 *   or, when tile_n_grain != 0, of tile_n_grain (the framework then picks the task
 *   width per sub-problem, a multiple of the grain up to tile_n, to balance workers).
 * pack_a (optional): before any tile of a sub-problem runs, the framework calls
 *   pack_a(s, dst, p) for every panel p of pack_m rows (in parallel), dst holding
 *   pack_a_bytes(s) bytes, 64-byte aligned, then sets s->apk = dst for the tiles.
 * All return 0, or -1 when their scratch could not be allocated. */
typedef struct cpu_gemm_kernels {
    const char *isa_name;
    dsk_cpu_isa isa;
    int decode_max_m;
    int (*decode)(const cpu_gemm_sub *s, int64_t n0, int64_t n1);
    int64_t tile_m, tile_n, tile_n_grain;
    int (*tile)(const cpu_gemm_sub *s, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
    int64_t pack_m;
    size_t (*pack_a_bytes)(const cpu_gemm_sub *s);
    int (*pack_a)(const cpu_gemm_sub *s, void *dst, int64_t panel);
} cpu_gemm_kernels;

extern const cpu_gemm_kernels dsk_cpu_gemm_avx512bf16;
extern const cpu_gemm_kernels dsk_cpu_gemm_avx2;
extern const cpu_gemm_kernels dsk_cpu_gemm_scalar;

/* Stores v into d (f32 or bf16, round to nearest even). */
static inline void dsk_cpu_store_out(void *d, int64_t i, int bf16, float v)
{
    if (bf16) {
        union { float f; uint32_t u; } x = {v};
        uint16_t h;
        if ((x.u & 0x7fffffffu) > 0x7f800000u) h = (uint16_t)((x.u >> 16) | 0x40);
        else h = (uint16_t)((x.u + 0x7fffu + ((x.u >> 16) & 1)) >> 16);
        ((uint16_t *)d)[i] = h;
    } else {
        ((float *)d)[i] = v;
    }
}

static inline float dsk_cpu_bf16_f32(uint16_t h)
{
    union { uint32_t u; float f; } x = {(uint32_t)h << 16};
    return x.f;
}

/* The backend entry for the GEMM (cpu/gemm_fp8_cpu.c). */
dsk_status dsk_cpu_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *a);

#endif
