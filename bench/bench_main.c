/* bench/bench_main.c: dsk_bench's main: measures this machine's roofline once (streaming
 * read bandwidth over all workers of the thread pool; clock by a dependent-add chain;
 * peak FLOP/s from the ISA level, the core count and that clock), records them in the
 * run's context, registers every family and hands over to Google Benchmark.
 *
 * Default run: a subset affordable on a 2-core machine (DSK_BENCH_DEFAULT_FILTER);
 * `--benchmark_filter=.` (or `dsk bench --all`) runs everything. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "core/threadpool.h"
#include "cpu/cpu_internal.h"
#include "dsk/dsk.h"

#define DSK_BENCH_DEFAULT_FILTER                                                              \
    "^gemm/(2112x7168|4096x7168|7168x2048)/M=(1|4|16|512)/|^mla_decode/h128/b(1|8|32)/ctx4096/" \
    "|^moe_(route|permute)/t(1|256|4096)/|^small/.*/t(1|512)/"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *dsk_bench_alloc(size_t bytes)
{
    size_t n = (bytes + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(4096, n ? n : 4096);
    if (p) dsk_threadpool_first_touch(dsk_threadpool_default(), p, n);
    return p;
}

void dsk_bench_free(void *p) { free(p); }

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

void dsk_bench_fill_e4m3(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(lcg(&s) & 0xff);
        if ((c & 0x7f) == 0x7f) c ^= 1;   /* no NaN codes */
        b[i] = c;
    }
}

void dsk_bench_fill_bf16(void *p, size_t n, unsigned seed)
{
    uint16_t *h = p;
    uint32_t s = seed * 2654435761u + 7;
    for (size_t i = 0; i < n; i++) {
        union { float f; uint32_t u; } v = {(float)(lcg(&s) & 0xffff) / 32768.0f - 1.0f};
        h[i] = (uint16_t)(v.u >> 16);
    }
}

void dsk_bench_fill_f32(void *p, size_t n, unsigned seed, float lo, float hi)
{
    float *f = p;
    uint32_t s = seed * 2654435761u + 3;
    for (size_t i = 0; i < n; i++) f[i] = lo + (hi - lo) * (float)(lcg(&s) & 0xffff) / 65536.0f;
}

/* ---- streaming read bandwidth ---- */
typedef struct bw_ctx { const uint8_t *buf; size_t bytes; int n; double sink[64]; } bw_ctx;

__attribute__((target("avx2"))) static double read_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (double)_mm256_extract_epi32(a0, 0);
}

static void bw_task(void *c, int64_t t, int worker)
{
    bw_ctx *b = c;
    size_t lo, hi;
    dsk_threadpool_split(b->bytes, b->n, (int)t, 4096, &lo, &hi);
    b->sink[t % 64] += read_avx2(b->buf + lo, hi - lo);
}

/* Best of several passes over a buffer much larger than the last-level cache. */
static double measure_bw(int threads_all)
{
    size_t bytes = (size_t)512 << 20;
    uint8_t *buf = dsk_bench_alloc(bytes);
    if (!buf) return 0;
    memset(buf, 1, bytes);
    dsk_threadpool *pool = dsk_threadpool_default();
    bw_ctx c = {buf, bytes, threads_all ? dsk_threadpool_size(pool) : 1, {0}};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        if (threads_all) dsk_threadpool_run_static(pool, bw_task, &c);
        else bw_task(&c, 0, 0);
        double bw = (double)bytes / (now_s() - t0);
        if (bw > best) best = bw;
    }
    dsk_bench_free(buf);
    return best;
}

/* Clock: a chain of dependent 1-cycle adds. */
static double measure_clock_hz(void)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t iters = 20000000, x = 0;
        double t0 = now_s();
        for (uint64_t i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
        double hz = 8.0 * (double)iters / (now_s() - t0);
        if (hz > best) best = hz;
    }
    return best;
}

int main(int argc, char **argv)
{
    int all = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--all")) {   /* our flag: everything */
            all = 1;
            memmove(argv + i, argv + i + 1, sizeof(char *) * (size_t)(argc - i));
            argc--;
            i--;
        }
    dsk_threadpool *pool = dsk_threadpool_default();
    int cores = dsk_threadpool_size(pool);
    dsk_cpu_isa isa = dsk_cpu_isa_active();
    double hz = measure_clock_hz();
    double bw1 = measure_bw(0), bw = measure_bw(1);
    /* FLOP per cycle per core. AVX-512 BF16 dot (vdpbf16ps): 2 MACs per f32 lane; AMD Zen 4
     * executes 512-bit operations on two 256-bit FMA pipes (16 f32 lanes/cycle in all),
     * Intel server cores on two 512-bit FMA units (32 lanes). f32 FMA: half the bf16 rate. */
    int amd = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    amd = __builtin_cpu_is("amd");
#endif
    double lanes = isa == DSK_CPU_AVX512BF16 ? (amd ? 16 : 32) : isa == DSK_CPU_AVX2 ? 16 : 2;
    double f32_per_cycle = lanes * 2;                                   /* FMA = 2 flops */
    double bf16_per_cycle = isa == DSK_CPU_AVX512BF16 ? lanes * 4 : f32_per_cycle;
    double peak_bf16 = bf16_per_cycle * cores * hz, peak_f32 = f32_per_cycle * cores * hz;
    dsk_bench_set_roof(bw, peak_bf16, peak_f32);

    char v[160];
    dsk_bench_context("dsk_isa", dsk_cpu_isa_name(isa));
    snprintf(v, sizeof v, "%d", cores);
    dsk_bench_context("dsk_threads", v);
    snprintf(v, sizeof v, "%.2f", hz * 1e-9);
    dsk_bench_context("dsk_clock_ghz_measured", v);
    snprintf(v, sizeof v, "%.2f (all threads), %.2f (one thread)", bw * 1e-9, bw1 * 1e-9);
    dsk_bench_context("dsk_stream_read_gb_s", v);
    snprintf(v, sizeof v, "%.1f bf16 (%.0f flop/cycle/core), %.1f f32", peak_bf16 * 1e-9, bf16_per_cycle,
             peak_f32 * 1e-9);
    dsk_bench_context("dsk_peak_gflop_s", v);
    fprintf(stderr, "dsk_bench: isa %s, %d threads, clock %.2f GHz, stream read %.1f GB/s (1 thread %.1f), "
                    "peak %.0f GFLOP/s bf16, %.0f f32\n",
            dsk_cpu_isa_name(isa), cores, hz * 1e-9, bw * 1e-9, bw1 * 1e-9, peak_bf16 * 1e-9, peak_f32 * 1e-9);

    dsk_bench_register_gemm();
    dsk_bench_register_mla();
    dsk_bench_register_moe();
    dsk_bench_register_small();
    return dsk_bench_main(argc, argv, all ? "." : DSK_BENCH_DEFAULT_FILTER);
}
