/* tests/cpu/test_cpu_gemm_avx512_simde.c: the avx512bf16 level of the FP8 GEMM
 * (cpu/gemm_fp8_avx512.c: decode path, packing, prefill microkernels, stores) on a CPU
 * without AVX-512. The kernel source is compiled against SIMDe's portable AVX-512
 * (tests/cpu/simde/immintrin.h; built only when libsimde-dev is installed) and run
 * through a second build of the cpu backend's GEMM framework (cpu/gemm_fp8_cpu.c: the
 * same sub-problems, task split over the thread pool, pack_a panels), entered as
 * dsk_cpu_gemm_fp8_simde after the op's own argument checks. Compared with the op's
 * reference (dsk_gemm_fp8_ref) on seeded random inputs:
 *   - M = 1..16 one by one (decode path for M <= 8, one-panel prefill above), N not a
 *     multiple of 4, 24 or 128, K not a multiple of 64 or 128 (K = 1 included), and 24
 *     shapes drawn from the seed;
 *   - prefill with panel heights 16/32/48/64, several panels, tasks crossing the 256-row
 *     and 192-column task limits;
 *   - dense (contiguous and strided operands, unaligned bases, the column-major GPU
 *     a_scale layout), contiguous grouped (padding rows, groups that get no rows, runs
 *     of decode and prefill size) and masked grouped (groups of 0 rows, full groups);
 *   - bf16 and f32 outputs, poisoned first; every element outside what the layout
 *     writes (padding columns of a strided D, a guard row, skipped rows) must still hold
 *     the poison afterwards.
 * It first checks the stand-ins for the BF16 instructions against values worked out by
 * hand from the SDM's operation sections (vdpbf16ps's order, DAZ and FTZ;
 * vcvtne(2)ps2bf16's rounding).
 *
 * Tolerance (the same as test_cpu_gemm's at every level): each 128-wide K block is
 * summed in f32 (products of two e4m3 values are exact in f32), the reference in f64;
 * the difference is f32 summation error, below K * 2^-24 of the sum of |terms|, so
 * 2e-5 of max|D| for K <= 2000 (f32 output); bf16 output adds one rounding and the two
 * may land on the two sides of a bf16 rounding boundary: + 2^-7 |value|. The metric
 * diff = 1 - 2 sum(xy)/sum(x^2+y^2) must stay below 1e-9 (f32) / 2e-6 (bf16).
 *
 * What this proves: the kernel's logic (decode tables, lane masks, transposes, packing
 * offsets, scale indices, task edges) under Intel's lane semantics as SIMDe and the
 * stand-ins implement them. Not its speed, and not the hardware's rounding where the
 * stand-ins' reading of the SDM differs from the silicon; test_cpu_gemm runs the real
 * instructions where the CPU has AVX-512 BF16. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "gemm/gemm_internal.h"
#include "tests/cpu/simde/immintrin.h"
#include "tests/harness/harness.h"
#include "tests/cpu/gemm_check.h"

dsk_status dsk_cpu_gemm_fp8_simde(dsk_device *dev, const dsk_gemm_fp8_args *a);

static dsk_device *dev;

/* ---- the BF16 stand-ins against hand-worked SDM values ---- */
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void check_bf16_standins(void)
{
    /* vdpbf16ps, lane by lane (a pair (2i, 2i+1) per f32 lane i) */
    uint16_t a[32] = {0}, b[32] = {0};
    float src[16] = {0}, out[16];
    /* lane 0: src 1, odd pair (-1) * 1, even pair 2^-12 * 2^-12. Odd first: 1 - 1 = 0,
     * then 0 + 2^-24 = 2^-24. Even first would give 1 + 2^-24 = 1 (tie to even), then 0. */
    src[0] = 1.0f;
    a[1] = 0xBF80, b[1] = 0x3F80;
    a[0] = 0x3980, b[0] = 0x3980;
    /* lane 1: a bf16 denormal (0x0001 = 2^-133) times 2^127 is read as 0 (DAZ), not 2^-6 */
    a[3] = 0x0001, b[3] = 0x7F00;
    /* lane 2: 2^-70 * 2^-60 = 2^-130, an f32 denormal, flushed to +0 (FTZ) */
    a[5] = 0x1C80, b[5] = 0x2180;
    /* lane 3: src -0.5 + 3 * 7 + 5 * 2 = 30.5, exact */
    src[3] = -0.5f;
    a[7] = 0x4040, b[7] = 0x40E0, a[6] = 0x40A0, b[6] = 0x4000;
    /* lane 4: a denormal accumulator (2^-140) is read as 0: 0 + 2^-63 * 2^-63 = 2^-126
     * (keeping it would give 2^-126 + 2^-140, representable) */
    src[4] = ldexpf(1.0f, -140);
    a[9] = 0x2000, b[9] = 0x2000;
    __m512bh va, vb;
    memcpy(&va, a, sizeof va);
    memcpy(&vb, b, sizeof vb);
    _mm512_storeu_ps(out, _mm512_dpbf16_ps(_mm512_loadu_ps(src), va, vb));
    const float want[5] = {ldexpf(1.0f, -24), 0.0f, 0.0f, 30.5f, ldexpf(1.0f, -126)};
    for (int i = 0; i < 5; i++)
        DSK_T_CHECK(f32_bits(out[i]) == f32_bits(want[i]), "vdpbf16ps stand-in, lane %d: %a, expected %a", i,
                    (double)out[i], (double)want[i]);
    for (int i = 5; i < 16; i++)
        DSK_T_CHECK(f32_bits(out[i]) == 0, "vdpbf16ps stand-in, lane %d: %a, expected +0", i, (double)out[i]);

    /* vcvtneps2bf16: ties to even, denormals to signed zero, NaN made quiet */
    const uint32_t in[8] = {f32_bits(1.0f + 0x1p-8f), f32_bits(1.0f + 3 * 0x1p-8f), 0x00000001u, 0x80400000u,
                            0x7F800001u, 0x7F800000u, f32_bits(-3.0f), f32_bits(1.0f + 0x1p-8f + 0x1p-20f)};
    const uint16_t cvt_want[8] = {0x3F80, 0x3F82, 0x0000, 0x8000, 0x7FC0, 0x7F80, 0xC040, 0x3F81};
    float x[16], y[16];
    for (int i = 0; i < 16; i++) {
        x[i] = bits_f32(in[i % 8]);
        y[i] = (float)(i + 1);
    }
    uint16_t h[32];
    _mm256_storeu_si256((__m256i *)h, (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x)));
    for (int i = 0; i < 8; i++)
        DSK_T_CHECK(h[i] == cvt_want[i], "vcvtneps2bf16 stand-in: 0x%08x -> 0x%04x, expected 0x%04x", in[i], h[i],
                    cvt_want[i]);
    /* vcvtne2ps2bf16(a, b): words 0..15 from b, 16..31 from a */
    _mm512_storeu_si512(h, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x), _mm512_loadu_ps(y)));
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= h[i] == dsk_simde_cvt_bf16(y[i]) && h[16 + i] == cvt_want[i % 8];
    DSK_T_CHECK(ok, "vcvtne2ps2bf16 stand-in: halves swapped or misconverted");
}

/* ---- GEMM cases ---- */
/* A D buffer of (rows + 1) x ld elements, poisoned, and its [rows, cols] window at
 * element offset `shift` (the extra row and the columns past cols are guards). */
typedef struct out_buf {
    dsk_tensor *buf, view;
} out_buf;

static out_buf out_new(dsk_dtype t, int64_t rows, int64_t cols, int64_t ld, int64_t shift)
{
    out_buf o;
    o.buf = dsk_t_new2(t, rows + 1, ld);
    memset(o.buf->data, 0xFF, (size_t)((rows + 1) * ld) * dsk_dtype_size(t));
    o.view = *o.buf;
    o.view.shape[0] = rows;
    o.view.shape[1] = cols;
    o.view.data = (char *)o.buf->data + (size_t)shift * dsk_dtype_size(t);
    return o;
}

/* Elements of the buffer outside the window that are no longer poison. */
static int64_t guards_written(const out_buf *o, int64_t shift)
{
    const size_t es = dsk_dtype_size(o->buf->dtype);
    const int64_t ld = o->buf->shape[1], total = o->buf->shape[0] * ld;
    const int64_t rows = o->view.shape[0], cols = o->view.shape[1];
    int64_t bad = 0;
    for (int64_t e = 0; e < total; e++) {
        const int64_t w = e - shift, r = w >= 0 ? w / ld : -1, c = w >= 0 ? w % ld : -1;
        if (r >= 0 && r < rows && c < cols) continue;
        const unsigned char *p = (const unsigned char *)o->buf->data + (size_t)e * es;
        for (size_t k = 0; k < es; k++) bad += p[k] != 0xFF;
    }
    return bad;
}


/* The op's checks, then the SIMDe build of the cpu backend's entry; the reference. */
static int run(const char *what, dsk_gemm_fp8_args *g, dsk_gemm_fp8_args *gr, const char *want_kernel)
{
    if (!DSK_T_OK(dsk_gemm_fp8_check("dsk_gemm_fp8", g)) || !DSK_T_OK(dsk_gemm_fp8_check_values("dsk_gemm_fp8", g)) ||
        !DSK_T_OK(dsk_cpu_gemm_fp8_simde(dev, g)) || !DSK_T_OK(dsk_gemm_fp8_ref(gr)))
        return 0;
    DSK_T_CHECK(strcmp(dsk_device_last_kernel(dev), want_kernel) == 0, "%s: kernel that ran is '%s', expected '%s'",
                what, dsk_device_last_kernel(dev), want_kernel);
    return 1;
}

static const char *kname(int decode) { return decode ? "gemm_fp8_cpu_avx512bf16_decode" : "gemm_fp8_cpu_avx512bf16_prefill"; }

static void fill_scales(dsk_tensor *t, dsk_rng *r) { dsk_t_fill_uniform(t, r, 0.0005, 0.004); }

/* A [rows, cols] e4m3/f32 view with row stride ld over a fresh allocation, offset by shift. */
static dsk_tensor strided(dsk_dtype t, int64_t rows, int64_t cols, int64_t ld, int64_t shift)
{
    dsk_tensor *buf = dsk_t_new2(t, rows + 1, ld);
    dsk_tensor v = *buf;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.data = (char *)buf->data + (size_t)shift * dsk_dtype_size(t);
    return v;
}

static void dense_case(int64_t M, int64_t N, int64_t K, dsk_dtype out, int odd, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    const int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor a = odd ? strided(DSK_E4M3, M, K, K + 37, 3) : *dsk_t_new2(DSK_E4M3, M, K);
    dsk_tensor b = odd ? strided(DSK_E4M3, N, K, K + 5, 1) : *dsk_t_new2(DSK_E4M3, N, K);
    dsk_tensor *bs = dsk_t_new2(DSK_F32, NB, KB), *ref = dsk_t_new2(out, M, N), as;
    if (odd) {   /* the GPU scale layout: [M, KB] with strides [1, M_pad] */
        const int64_t Mp = (M + 3) / 4 * 4;
        as = *dsk_t_new2(DSK_F32, KB, Mp);
        as.shape[0] = M;
        as.shape[1] = KB;
        as.stride[0] = 1;
        as.stride[1] = Mp;
    } else {
        as = *dsk_t_new2(DSK_F32, M, KB);
    }
    const int64_t ld = odd ? N + 3 : N, shift = odd ? 1 : 0;
    out_buf d = out_new(out, M, N, ld, shift);
    dsk_t_fill_normal(&a, &r, 60);
    dsk_t_fill_normal(&b, &r, 60);
    fill_scales(&as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, &a, &as, &b, bs, &d.view, NULL, NULL}, gr = g;
    gr.d = ref;
    char what[160];
    snprintf(what, sizeof what, "dense M=%lld N=%lld K=%lld odd_layout=%d", (long long)M, (long long)N, (long long)K, odd);
    if (!run(what, &g, &gr, kname(M <= 8))) return;
    dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), &d.view, ref, M, N, NULL);
    const int64_t gw = guards_written(&d, shift);
    DSK_T_CHECK(gw == 0, "%s: %lld bytes outside D's window were written", what, (long long)gw);
}

/* Contiguous grouped layout: runs of rows of random groups (lengths lo..hi), -1 padding
 * runs among them; groups G-1 and up get no rows when spare != 0. */
static void contiguous_case(int64_t M, int64_t N, int64_t K, int G, int spare, int64_t lo, int64_t hi, dsk_dtype out,
                            uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    const int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = dsk_t_new2(DSK_E4M3, M, K), *as = dsk_t_new2(DSK_F32, M, KB);
    dsk_tensor *b = dsk_t_new3(DSK_E4M3, G, N, K), *bs = dsk_t_new3(DSK_F32, G, NB, KB);
    dsk_tensor *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){M}), *ref = dsk_t_new2(out, M, N);
    out_buf d = out_new(out, M, N, N, 0);
    int *want = malloc(sizeof(int) * (size_t)M);
    for (int64_t m = 0; m < M;) {   /* the first run has a group, so something is computed */
        const int64_t len = dsk_rng_int(&r, lo, hi);
        const int g = (int)dsk_rng_int(&r, m == 0 ? 0 : -1, G - 1 - spare);
        for (int64_t e = m; e < M && e < m + len; e++) {
            ((int32_t *)mi->data)[e] = g;
            want[e] = g >= 0;
        }
        m += len;
    }
    /* each maximal run of one group is one sub-problem: decode path if all are <= 8 rows */
    int all_decode = 1;
    const int32_t *mv = mi->data;
    for (int64_t m = 0, e; m < M; m = e) {
        for (e = m + 1; e < M && mv[e] == mv[m]; e++) {}
        if (mv[m] >= 0 && e - m > 8) all_decode = 0;
    }
    dsk_t_fill_normal(a, &r, 60);
    dsk_t_fill_normal(b, &r, 60);
    fill_scales(as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_CONTIGUOUS, a, as, b, bs, &d.view, mi, NULL}, gr = g;
    gr.d = ref;
    char what[160];
    snprintf(what, sizeof what, "contiguous G=%d M=%lld N=%lld K=%lld runs %lld..%lld", G, (long long)M, (long long)N,
             (long long)K, (long long)lo, (long long)hi);
    if (run(what, &g, &gr, kname(all_decode))) {
        dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), &d.view, ref, M, N, want);
        DSK_T_CHECK(guards_written(&d, 0) == 0, "%s: the guard row past D was written", what);
    }
    free(want);
}

/* Masked grouped layout: group 0 has no rows, group 1 all max_m, the others random. */
static void masked_case(int G, int64_t max_m, int64_t N, int64_t K, dsk_dtype out, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    const int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    dsk_tensor *a = dsk_t_new3(DSK_E4M3, G, max_m, K), *as = dsk_t_new3(DSK_F32, G, max_m, KB);
    dsk_tensor *b = dsk_t_new3(DSK_E4M3, G, N, K), *bs = dsk_t_new3(DSK_F32, G, NB, KB);
    dsk_tensor *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){G});
    dsk_tensor *d = dsk_t_new3(out, G, max_m, N), *ref = dsk_t_new3(out, G, max_m, N);
    int *want = malloc(sizeof(int) * (size_t)(G * max_m));
    int all_decode = 1;
    for (int g = 0; g < G; g++) {
        const int64_t c = g == 0 ? 0 : g == 1 ? max_m : dsk_rng_int(&r, 0, max_m);
        ((int32_t *)mm->data)[g] = (int32_t)c;
        if (c > 8) all_decode = 0;
        for (int64_t m = 0; m < max_m; m++) want[g * max_m + m] = m < c;
    }
    dsk_t_fill_normal(a, &r, 60);
    dsk_t_fill_normal(b, &r, 60);
    fill_scales(as, &r);
    fill_scales(bs, &r);
    dsk_t_poison(d);
    dsk_t_poison(ref);
    dsk_gemm_fp8_args g = {DSK_GEMM_MASKED, a, as, b, bs, d, NULL, mm}, gr = g;
    gr.d = ref;
    char what[160];
    snprintf(what, sizeof what, "masked G=%d max_m=%lld N=%lld K=%lld", G, (long long)max_m, (long long)N, (long long)K);
    if (run(what, &g, &gr, kname(all_decode))) dsk_t_gemm_compare_rows(what, dsk_device_last_kernel(dev), d, ref, G * max_m, N, want);
    free(want);
}

int main(void)
{
    check_bf16_standins();
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    uint64_t id = 7000;
    /* M = 1..16: decode (M <= 8) and one-panel prefill of height 16; N and K tails */
    for (int64_t M = 1; M <= 16; M++)
        dense_case(M, 4 * M + (M % 4) + 1, 64 * (M % 5) + 17 * M + (M == 3 ? -50 : 0), M % 2 ? DSK_F32 : DSK_BF16,
                   M % 3 == 0, id++);
    dense_case(1, 257, 1000, DSK_BF16, 0, id++);
    dense_case(4, 131, 1792, DSK_F32, 0, id++);
    dense_case(8, 130, 128, DSK_BF16, 1, id++);
    dense_case(2, 9, 1, DSK_F32, 0, id++);       /* K = 1 */
    dense_case(12, 25, 1, DSK_BF16, 1, id++);
    /* one-panel prefill: panel heights 32, 48, 64; N against the 24-column grain */
    dense_case(17, 200, 300, DSK_F32, 1, id++);
    dense_case(31, 24, 129, DSK_BF16, 0, id++);
    dense_case(33, 97, 640, DSK_F32, 0, id++);
    dense_case(48, 50, 70, DSK_BF16, 1, id++);
    dense_case(64, 256, 512, DSK_F32, 0, id++);
    /* several panels and tasks: partial last panel, tasks past 256 rows and 192 columns */
    dense_case(65, 100, 128, DSK_BF16, 1, id++);
    dense_case(100, 193, 200, DSK_F32, 0, id++);
    dense_case(203, 150, 700, DSK_BF16, 1, id++);
    dense_case(257, 61, 130, DSK_F32, 0, id++);
    dense_case(300, 410, 130, DSK_BF16, 0, id++);
    dense_case(530, 410, 130, DSK_BF16, 1, id++);
    dense_case(70, 90, 2000, DSK_F32, 0, id++);
    /* shapes drawn from the seed: M 1..320, N 1..300, K 1..1500, either output, either layout */
    dsk_rng shapes = dsk_t_rng(6999);
    for (int i = 0; i < 24; i++) {
        const int64_t M = i % 2 ? dsk_rng_int(&shapes, 1, 16) : dsk_rng_int(&shapes, 1, 320);
        const int64_t N = dsk_rng_int(&shapes, 1, 300), K = dsk_rng_int(&shapes, 1, 1500);
        dense_case(M, N, K, dsk_rng_int(&shapes, 0, 1) ? DSK_BF16 : DSK_F32, (int)dsk_rng_int(&shapes, 0, 1), id++);
    }
    /* grouped */
    contiguous_case(180, 136, 384, 5, 1, 1, 40, DSK_BF16, id++);
    contiguous_case(40, 50, 100, 4, 1, 1, 8, DSK_F32, id++);   /* decode-sized runs only */
    contiguous_case(150, 70, 200, 3, 0, 30, 90, DSK_F32, id++);
    masked_case(4, 20, 100, 200, DSK_F32, id++);
    masked_case(3, 70, 129, 130, DSK_BF16, id++);
    masked_case(3, 7, 31, 64, DSK_BF16, id++);                 /* decode path only */
    masked_case(5, 130, 75, 260, DSK_F32, id++);               /* groups of several panels */
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
