/* tests/hip/test_hip_gemm_shim.c: the gfx942 FP8 GEMM kernel (hip/gemm_fp8_gfx942.hip, the
 * same source clang compiles for MI300X) run by the CPU SIMT shim through the hip host code
 * (hip/gemm_fp8_hip.c), against the op's reference dsk_gemm_fp8_ref on the same e4m3 inputs.
 *
 * Covers every configuration in hip/gemm_fp8_gfx942_configs.def and the default choice;
 * dense, contiguous (segments aligned to 128, 32, 16, empty groups) and masked layouts
 * (groups of 0 and of max_m rows); ragged M, N and K (K % 128 != 0); padded row strides and
 * an MN-major a_scale; f32 and bf16 outputs; -0 and NaN e4m3 codes (the codes whose meaning
 * differs in e4m3fnuz); the host checks refusing bad inputs before any launch; and the
 * shim's own detection of a barrier or MFMA that not every thread reaches.
 *
 * Inputs: normal activations and weights quantized the DeepSeek-V3 way (1x128 activation
 * scales over rows of different magnitude, 128x128 weight scales), so e4m3 codes span the
 * whole range up to 448 (the top binade, which e4m3fnuz reaches only through the halving of
 * hip/hip_fnuz.h). Outputs are poisoned first; rows a layout skips must stay poisoned.
 * Tolerances, relative to max(|ref|, 1e-2 * rms(ref)):
 *   f32 output 1e-4: products of two e4m3 values are exact; each 128-K block is summed in
 *     f32 by four chained MFMAs (the shim rounds each MFMA once) and promoted with one f32
 *     FMA: ~5 roundings of 2^-24 per K block against the reference's f64 sums. With K <= 384
 *     (3 blocks) and partial sums up to ~10x the output rms, the absolute error stays below
 *     ~1e-6 rms; at the 1e-2 rms floor of the denominator that is ~1e-4 (measured: <= 5e-5);
 *   bf16 output 2^-7 + 1e-4: kernel and reference each round to bf16 once, from sums that
 *     differ slightly, so near a midpoint they can land one bf16 ulp apart (up to 2^-7 relative).
 * A failure prints one reproducing line (kernel, layout, shape, seed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "hip/hip_internal.h"
#include "hip/shim/hip_shim.h"
#include "tests/harness/harness.h"
#include "tests/hip/shim_driver.h"

typedef struct gcase {
    const char *cfg;           /* configuration to force, NULL: the default choice */
    const char *expect;        /* configuration that must run */
    dsk_gemm_layout layout;
    int64_t m, n, k;           /* dense: M; masked: max_m; contiguous: from sizes */
    int groups, sizes[4];      /* grouped: rows per group */
    int align;                 /* contiguous: segments padded with -1 rows to this */
    dsk_dtype out;
    int pad;                   /* extra bytes per row of a and elements per row of d */
    int scale_mn;              /* a_scale MN-major: strides [1, M_pad] */
    int specials;              /* -0 codes written into a and b */
} gcase;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Activations: rows of different magnitudes, 1x128 scales. */
static void quant_act(dsk_rng *r, int64_t rows, int64_t k, dsk_tensor *q, dsk_tensor *s)
{
    dsk_tensor *x = dsk_t_new2(DSK_F32, rows, k);
    for (int64_t i = 0; i < rows; i++) {
        double mag = exp2((double)dsk_rng_int(r, -4, 4));
        for (int64_t j = 0; j < k; j++)
            dsk_t_set(x, i * k + j, dsk_rng_normal(r) * mag);
    }
    DSK_T_OK(dsk_quant_act_fp8_ref(x, q, s));
}

/* Weights: 128x128 blocks of different magnitudes. */
static void quant_w(dsk_rng *r, int64_t n, int64_t k, dsk_tensor *q, dsk_tensor *s)
{
    dsk_tensor *x = dsk_t_new2(DSK_F32, n, k);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++)
            dsk_t_set(x, i * k + j, dsk_rng_normal(r) * 0.02 * exp2((double)((i / 128 + j / 128) % 5) - 2));
    DSK_T_OK(dsk_quant_weight_fp8(x, q, s));
}

/* A 2-D view of g's slice of a 3-D contiguous tensor. */
static dsk_tensor slice(const dsk_tensor *t, int64_t g)
{
    dsk_tensor v = *t;
    v.rank = 2;
    v.shape[0] = t->shape[1];
    v.shape[1] = t->shape[2];
    v.stride[0] = t->stride[1];
    v.stride[1] = t->stride[2];
    v.data = (char *)t->data + (size_t)(g * t->stride[0]) * dsk_dtype_size(t->dtype);
    return v;
}

static int is_poison(const dsk_tensor *d, const void *p)
{
    const unsigned char *c = p;
    for (size_t b = 0; b < dsk_dtype_size(d->dtype); b++)
        if (c[b] != 0xFF)
            return 0;
    return 1;
}

/* Element (i, j) of the last two dimensions of slice g of d. */
static void *elem(const dsk_tensor *d, int64_t g, int64_t i, int64_t j)
{
    int64_t off = d->rank == 3 ? g * d->stride[0] : 0;
    off += i * d->stride[d->rank - 2] + j * d->stride[d->rank - 1];
    return (char *)d->data + (size_t)off * dsk_dtype_size(d->dtype);
}

static double elem_get(const dsk_tensor *d, const void *p)
{
    if (d->dtype == DSK_F32)
        return *(const float *)p;
    return dsk_bf16_to_f32(*(const uint16_t *)p);
}

/* The operands of a case (host tensors, possibly strided), built from seeded quantization. */
typedef struct operands {
    dsk_tensor a, as, b, bs, d, dref, mi, mm;
    int64_t G, rows;
} operands;

static void build(const gcase *c, int case_id, operands *o)
{
    memset(o, 0, sizeof *o);
    dsk_rng r = dsk_t_rng((uint64_t)case_id);
    const int masked = c->layout == DSK_GEMM_MASKED, contig = c->layout == DSK_GEMM_CONTIGUOUS;
    int64_t G = masked || contig ? c->groups : 1, N = c->n, K = c->k, kb = cdiv(K, 128);
    int64_t rows = c->m;
    if (contig) {
        rows = 0;
        for (int g = 0; g < G; g++)
            rows += cdiv(c->sizes[g], c->align) * c->align;
    }
    /* a: [rows, K] or [G, max_m, K], row stride K + pad */
    int64_t lda = K + c->pad, MG = masked ? G * rows : rows;
    dsk_tensor *abuf = dsk_t_new2(DSK_E4M3, MG, lda);
    dsk_tensor *sbuf = dsk_t_new2(DSK_F32, MG, kb);
    dsk_tensor *q = dsk_t_new2(DSK_E4M3, MG, K);
    quant_act(&r, MG, K, q, sbuf);
    for (int64_t i = 0; i < MG; i++)
        memcpy((char *)abuf->data + i * lda, (char *)q->data + i * K, (size_t)K);
    o->a = masked ? dsk_tensor_3d(abuf->data, DSK_E4M3, G, rows, K) : dsk_tensor_2d(abuf->data, DSK_E4M3, rows, K);
    o->a.stride[o->a.rank - 2] = lda;
    if (masked)
        o->a.stride[0] = rows * lda;
    if (c->scale_mn) { /* [M, kb] with strides [1, M_pad] (dense only) */
        int64_t mp = cdiv(rows, 4) * 4;
        dsk_tensor *mn = dsk_t_new2(DSK_F32, kb, mp);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < kb; j++)
                ((float *)mn->data)[j * mp + i] = ((float *)sbuf->data)[i * kb + j];
        o->as = dsk_tensor_2d(mn->data, DSK_F32, rows, kb);
        o->as.stride[0] = 1;
        o->as.stride[1] = mp;
    } else {
        o->as = masked ? dsk_tensor_3d(sbuf->data, DSK_F32, G, rows, kb) : *sbuf;
    }
    /* b: [N, K] or [G, N, K] */
    dsk_tensor *bq = dsk_t_new3(DSK_E4M3, G, N, K), *bsq = dsk_t_new3(DSK_F32, G, cdiv(N, 128), kb);
    for (int64_t g = 0; g < G; g++) {
        dsk_tensor bg = slice(bq, g), sg = slice(bsq, g);
        quant_w(&r, N, K, &bg, &sg);
    }
    o->b = G > 1 || masked || contig ? *bq : slice(bq, 0);
    o->bs = G > 1 || masked || contig ? *bsq : slice(bsq, 0);
    if (c->specials) { /* -0 codes, which e4m3fnuz would read as NaN without the conversion */
        unsigned char *pa = abuf->data, *pb = bq->data;
        for (int64_t i = 0; i < MG * lda; i += 7)
            pa[i] = 0x80;
        for (int64_t i = 0; i < G * N * K; i += 5)
            pb[i] = 0x80;
    }
    /* d (and the reference's copy): row stride N + pad */
    int64_t ldd = N + c->pad;
    dsk_tensor *dbuf = dsk_t_new2(c->out, MG, ldd), *rbuf = dsk_t_new2(c->out, MG, ldd);
    o->d = masked ? dsk_tensor_3d(dbuf->data, c->out, G, rows, N) : dsk_tensor_2d(dbuf->data, c->out, rows, N);
    o->d.stride[o->d.rank - 2] = ldd;
    if (masked)
        o->d.stride[0] = rows * ldd;
    o->dref = o->d;
    o->dref.data = rbuf->data;
    dsk_t_poison(dbuf);
    dsk_t_poison(rbuf);
    if (contig) {
        dsk_tensor *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){rows});
        int64_t row = 0;
        for (int g = 0; g < G; g++) {
            int64_t seg = cdiv(c->sizes[g], c->align) * c->align;
            for (int64_t i = 0; i < seg; i++)
                ((int32_t *)mi->data)[row + i] = i < c->sizes[g] ? g : -1;
            row += seg;
        }
        o->mi = *mi;
    }
    if (masked) {
        dsk_tensor *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){G});
        for (int g = 0; g < G; g++)
            ((int32_t *)mm->data)[g] = c->sizes[g];
        o->mm = *mm;
    }
    o->G = G;
    o->rows = rows;
}

static dsk_gemm_fp8_args args_of(const gcase *c, operands *o, dsk_tensor *d)
{
    dsk_gemm_fp8_args g = {.layout = c->layout, .a = &o->a, .a_scale = &o->as, .b = &o->b, .b_scale = &o->bs, .d = d};
    if (c->layout == DSK_GEMM_CONTIGUOUS)
        g.m_indices = &o->mi;
    if (c->layout == DSK_GEMM_MASKED)
        g.masked_m = &o->mm;
    return g;
}

static const char *layout_name(dsk_gemm_layout l)
{
    return l == DSK_GEMM_DENSE ? "dense" : l == DSK_GEMM_CONTIGUOUS ? "contiguous" : "masked";
}

/* Compares d with dref: poison where the reference left it, close elsewhere. Returns the
 * max relative error (INFINITY for a non-finite value where the reference is finite). */
static double compare(const operands *o, int64_t *bad_poison, int64_t *written, int nan_rows_ok)
{
    int64_t N = o->d.shape[o->d.rank - 1], G = o->d.rank == 3 ? o->d.shape[0] : 1;
    double ss = 0, max_rel = 0;
    *bad_poison = *written = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t i = 0; i < o->rows; i++)
                for (int64_t j = 0; j < N; j++) {
                    const void *pr = elem(&o->dref, g, i, j), *pd = elem(&o->d, g, i, j);
                    if (is_poison(&o->dref, pr)) {
                        *bad_poison += pass && !is_poison(&o->d, pd);
                        continue;
                    }
                    double y = elem_get(&o->dref, pr), x = elem_get(&o->d, pd);
                    if (!pass) {
                        if (isfinite(y)) {
                            ss += y * y;
                            ++*written;
                        }
                        continue;
                    }
                    if (!isfinite(y)) { /* NaN inputs: the kernel must give NaN too */
                        if (!(nan_rows_ok && isnan(x)))
                            max_rel = INFINITY;
                        continue;
                    }
                    double fl = 1e-2 * sqrt(ss / (double)(*written ? *written : 1));
                    double e = isfinite(x) ? fabs(x - y) / fmax(fabs(y), fl) : INFINITY;
                    if (e > max_rel)
                        max_rel = e;
                }
    return max_rel;
}

static void run_case(const gcase *c, int case_id)
{
    operands o;
    build(c, case_id, &o);
    const dsk_hip_gemm_config *want = c->cfg ? dsk_hip_gemm_config_find(c->cfg) : NULL, *ran = NULL;
    char repro[256];
    snprintf(repro, sizeof repro, "case %d: %s %s rows=%lld N=%lld K=%lld G=%lld out=%s pad=%d scale_mn=%d", case_id,
             c->cfg ? c->cfg : "default", layout_name(c->layout), (long long)o.rows, (long long)c->n,
             (long long)c->k, (long long)o.G, dsk_dtype_name(c->out), c->pad, c->scale_mn);
    if (c->cfg && !DSK_T_CHECK(want, "%s: unknown configuration", repro))
        return;
    dsk_gemm_fp8_args gr = args_of(c, &o, &o.dref), gk = args_of(c, &o, &o.d);
    DSK_T_OK(dsk_gemm_fp8_ref(&gr));
    dsk_status s = dsk_hip_gemm_fp8_launch(dsk_test_hip_shim_driver(), NULL, want, &gk, &ran);
    if (!DSK_T_CHECK(s == DSK_OK, "%s: %s", repro, dsk_last_error()))
        return;
    DSK_T_CHECK(ran && !strcmp(ran->name, c->expect), "%s: ran %s, expected %s", repro, ran ? ran->name : "nothing",
                c->expect);
    int64_t bad_poison, written;
    double err = compare(&o, &bad_poison, &written, 0);
    /* bf16 output: the kernel rounds its f32 sum and the reference its f64 sum to bf16, so
     * near a rounding midpoint they land one bf16 ulp apart: up to 2^-7 relative for a
     * mantissa near 1.0 (4e-3 failed ~1 run in 5 with 5.2e-3, one such flip); plus the f32
     * accumulation slack of the f32 case. */
    double tol = c->out == DSK_F32 ? 1e-4 : 0x1p-7 + 1e-4;
    DSK_T_CHECK(written > 0, "%s: the reference wrote nothing (test defect)", repro);
    DSK_T_CHECK(err <= tol, "%s: max relative error %.3g vs dsk_gemm_fp8_ref, tolerance %.1g", repro, err, tol);
    DSK_T_CHECK(bad_poison == 0, "%s: %lld elements written in rows the layout skips", repro, (long long)bad_poison);
    printf("  %-60s %-28s max rel err %.2e (%lld outputs)\n", repro + 8, ran ? ran->name : "-", err,
           (long long)written);
}

static const gcase cases[] = {
    /* every configuration, ragged M, N and K */
    {"gemm_fp8_gfx942_128x128_w2x2", "gemm_fp8_gfx942_128x128_w2x2", DSK_GEMM_DENSE, 150, 200, 384, 0, {0}, 0, DSK_F32, 0, 0, 0},
    {"gemm_fp8_gfx942_32x128_w1x4", "gemm_fp8_gfx942_32x128_w1x4", DSK_GEMM_DENSE, 40, 130, 272, 0, {0}, 0, DSK_F32, 0, 0, 0},
    {"gemm_fp8_gfx942_16x128_w1x4", "gemm_fp8_gfx942_16x128_w1x4", DSK_GEMM_DENSE, 5, 64, 144, 0, {0}, 0, DSK_BF16, 0, 0, 0},
    /* the default choice */
    {NULL, "gemm_fp8_gfx942_16x128_w1x4", DSK_GEMM_DENSE, 1, 300, 256, 0, {0}, 0, DSK_BF16, 0, 0, 0},
    {NULL, "gemm_fp8_gfx942_32x128_w1x4", DSK_GEMM_DENSE, 32, 100, 128, 0, {0}, 0, DSK_F32, 0, 0, 0},
    {NULL, "gemm_fp8_gfx942_128x128_w2x2", DSK_GEMM_DENSE, 33, 129, 256, 0, {0}, 0, DSK_F32, 0, 0, 0},
    /* padded strides of a and d, MN-major a_scale */
    {NULL, "gemm_fp8_gfx942_128x128_w2x2", DSK_GEMM_DENSE, 70, 129, 256, 0, {0}, 0, DSK_F32, 48, 1, 0},
    /* -0 codes in a and b */
    {NULL, "gemm_fp8_gfx942_32x128_w1x4", DSK_GEMM_DENSE, 20, 128, 256, 0, {0}, 0, DSK_F32, 0, 0, 1},
    /* contiguous: segments aligned to 128 / 32 / 16, an empty group */
    {NULL, "gemm_fp8_gfx942_128x128_w2x2", DSK_GEMM_CONTIGUOUS, 0, 160, 256, 3, {100, 0, 40}, 128, DSK_F32, 0, 0, 0},
    {NULL, "gemm_fp8_gfx942_32x128_w1x4", DSK_GEMM_CONTIGUOUS, 0, 96, 128, 3, {20, 33, 7}, 32, DSK_BF16, 0, 0, 0},
    {"gemm_fp8_gfx942_16x128_w1x4", "gemm_fp8_gfx942_16x128_w1x4", DSK_GEMM_CONTIGUOUS, 0, 48, 256, 3, {5, 16, 9}, 16,
     DSK_F32, 0, 0, 0},
    /* masked: groups of 0 and of max_m rows */
    {NULL, "gemm_fp8_gfx942_128x128_w2x2", DSK_GEMM_MASKED, 40, 136, 128, 3, {0, 17, 40}, 0, DSK_F32, 0, 0, 0},
    {"gemm_fp8_gfx942_16x128_w1x4", "gemm_fp8_gfx942_16x128_w1x4", DSK_GEMM_MASKED, 16, 80, 256, 2, {16, 3}, 0,
     DSK_BF16, 0, 0, 0},
};

/* NaN e4m3 codes (0x7F, 0xFF) must give NaN rows, as in the reference, not +-240-valued
 * fnuz codes. */
static void test_nan_codes(void)
{
    gcase c = {NULL, "gemm_fp8_gfx942_16x128_w1x4", DSK_GEMM_DENSE, 9, 100, 128, 0, {0}, 0, DSK_F32, 0, 0, 0};
    operands o;
    build(&c, 100, &o);
    ((unsigned char *)o.a.data)[3 * o.a.stride[0] + 5] = 0x7F;
    ((unsigned char *)o.a.data)[7 * o.a.stride[0] + 100] = 0xFF;
    dsk_gemm_fp8_args gr = args_of(&c, &o, &o.dref), gk = args_of(&c, &o, &o.d);
    DSK_T_OK(dsk_gemm_fp8_ref(&gr));
    if (!DSK_T_OK(dsk_hip_gemm_fp8_launch(dsk_test_hip_shim_driver(), NULL, NULL, &gk, NULL)))
        return;
    int64_t bad_poison, written, nan_rows = 0;
    double err = compare(&o, &bad_poison, &written, 1);
    for (int64_t j = 0; j < 100; j++)
        nan_rows += isnan(*(float *)elem(&o.d, 0, 3, j)) && isnan(*(float *)elem(&o.d, 0, 7, j));
    DSK_T_CHECK(nan_rows == 100, "NaN codes: %lld of 100 columns NaN in rows 3 and 7", (long long)nan_rows);
    DSK_T_CHECK(err <= 1e-4 && bad_poison == 0, "NaN codes: other rows max relative error %.3g (tolerance 1e-4)", err);
}

/* Two runs of one case are bit-for-bit equal (the shim is deterministic, the kernel has no
 * order-dependent reductions). */
static void test_repeatable(void)
{
    operands o;
    build(&cases[1], 1, &o);
    dsk_gemm_fp8_args g = args_of(&cases[1], &o, &o.d);
    DSK_T_OK(dsk_hip_gemm_fp8_launch(dsk_test_hip_shim_driver(), NULL, NULL, &g, NULL));
    size_t bytes = (size_t)(o.rows * o.d.stride[0]) * dsk_dtype_size(o.d.dtype);
    void *first = malloc(bytes);
    memcpy(first, o.d.data, bytes);
    dsk_t_poison(&o.d);
    DSK_T_OK(dsk_hip_gemm_fp8_launch(dsk_test_hip_shim_driver(), NULL, NULL, &g, NULL));
    DSK_T_CHECK(!memcmp(first, o.d.data, bytes), "two runs of case 1 differ");
    free(first);
}

/* ---- host checks: refused before any launch, one check each ---- */
static void expect_refused(const char *what, const gcase *c, void (*edit)(operands *, dsk_gemm_fp8_args *),
                           const char *cfg, const char *substr)
{
    operands o;
    build(c, 200, &o);
    dsk_gemm_fp8_args g = args_of(c, &o, &o.d);
    edit(&o, &g);
    long before = dsk_test_hip_shim_launches();
    dsk_status s = dsk_hip_gemm_fp8_launch(dsk_test_hip_shim_driver(), NULL, cfg ? dsk_hip_gemm_config_find(cfg) : NULL,
                                           &g, NULL);
    DSK_T_CHECK(s == DSK_ERR_INVALID_ARG && strstr(dsk_last_error(), substr),
                "%s: status %d, message '%s', expected DSK_ERR_INVALID_ARG containing '%s'", what, (int)s,
                dsk_last_error(), substr);
    DSK_T_CHECK(dsk_test_hip_shim_launches() == before, "%s: a kernel was launched", what);
}

static void edit_k(operands *o, dsk_gemm_fp8_args *g)
{
    o->a.shape[1] = o->b.shape[1] = 120; /* scales keep ceil(120/128) = 1 block */
}
static void edit_none(operands *o, dsk_gemm_fp8_args *g) {}
static void edit_seg(operands *o, dsk_gemm_fp8_args *g) { ((int32_t *)o->mi.data)[20] = 1; }
static void edit_seg_all(operands *o, dsk_gemm_fp8_args *g) { ((int32_t *)o->mi.data)[3] = 2; }
static void edit_mi(operands *o, dsk_gemm_fp8_args *g) { ((int32_t *)o->mi.data)[0] = 5; }
static void edit_mm(operands *o, dsk_gemm_fp8_args *g) { ((int32_t *)o->mm.data)[1] = 41; }
static void edit_mm_stride(operands *o, dsk_gemm_fp8_args *g)
{
    static int32_t spaced[6] = {0, -7, 17, -7, 40, -7};
    o->mm.data = spaced;
    o->mm.stride[0] = 2;
}
static void edit_dtype(operands *o, dsk_gemm_fp8_args *g) { o->a.dtype = DSK_E4M3FNUZ; }

static void test_refusals(void)
{
    gcase dense = {NULL, "", DSK_GEMM_DENSE, 8, 64, 128, 0, {0}, 0, DSK_F32, 0, 0, 0};
    gcase contig = {NULL, "", DSK_GEMM_CONTIGUOUS, 0, 64, 128, 3, {20, 30, 10}, 32, DSK_F32, 0, 0, 0};
    gcase dense_pad8 = {NULL, "", DSK_GEMM_DENSE, 8, 64, 128, 0, {0}, 0, DSK_F32, 8, 0, 0}; /* a row stride 136 */
    gcase masked = {NULL, "", DSK_GEMM_MASKED, 40, 64, 128, 3, {0, 17, 40}, 0, DSK_F32, 0, 0, 0};
    expect_refused("K % 16", &dense, edit_k, NULL, "K % 16 == 0");
    expect_refused("a row stride", &dense_pad8, edit_none, NULL, "16-byte aligned");
    expect_refused("segment alignment (forced 128x128)", &contig, edit_seg, "gemm_fp8_gfx942_128x128_w2x2",
                   "multiple of BLOCK_M");
    expect_refused("segment alignment (every configuration)", &contig, edit_seg_all, NULL, "multiple of BLOCK_M");
    expect_refused("m_indices range", &contig, edit_mi, NULL, "m_indices[0] = 5");
    expect_refused("masked_m range", &masked, edit_mm, NULL, "masked_m[1] = 41");
    expect_refused("masked_m stride", &masked, edit_mm_stride, NULL, "stride 2");
    expect_refused("a dtype (the op's check)", &dense, edit_dtype, NULL, "a");
}

/* ---- the shim refuses kernels that would hang or misbehave on a GPU ---- */
static void divergent_barrier(void *arg)
{
    if (dsk_shim_tid() < 64)
        dsk_shim_syncthreads();
}

static void uniform_barriers(void *arg)
{
    dsk_shim_syncthreads();
    dsk_shim_syncthreads();
}

static void partial_mfma(void *arg)
{
    dsk_f32x4 z = {0, 0, 0, 0};
    if (dsk_shim_tid() % 64 != 5)
        (void)dsk_shim_mfma_f32_16x16x32_fp8(0, 0, z);
}

static void too_much_lds(void *arg) { (void)dsk_shim_lds(65537); }

/* The shim's MFMA against the forward mapping of AMD's matrix instruction calculator
 * (element -> lane/GPR/bits), written independently of the shim's and the kernel's
 * lane -> element loops: A[i][k] and B[k][j] at lane 16 * (k / 8) + i (+ j), GPR (k / 4) % 2,
 * bits 8 * (k % 4); C/D[i][j] at lane 16 * (i / 4) + j, GPR i % 4. Random fnuz codes (no
 * NaN), random C; expected D from a plain f64 matrix product (exact: the shim rounds once).
 * Which K a byte carries cannot show in any result (a K permutation shared by A and B leaves
 * A.B unchanged), so the kernel does not rely on it; what this checks is the row (A),
 * column (B) and result (C/D) placement, which the kernel's epilogue and scales rely on. */
static unsigned char lay_a[16 * 32], lay_b[32 * 16];
static float lay_c[256], lay_d[256];

static void mfma_layout_kernel(void *arg)
{
    int l = dsk_shim_tid();
    unsigned long a = 0, b = 0;
    dsk_f32x4 c = {0, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 32; k++) {
            if (16 * (k / 8) + i == l)
                a |= (unsigned long)lay_a[i * 32 + k] << (32 * ((k / 4) % 2) + 8 * (k % 4));
            if (16 * (k / 8) + i == l) /* B[k][j] with j = i */
                b |= (unsigned long)lay_b[k * 16 + i] << (32 * ((k / 4) % 2) + 8 * (k % 4));
        }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            if (16 * (i / 4) + j == l)
                c[i % 4] = lay_c[i * 16 + j];
    dsk_f32x4 d = dsk_shim_mfma_f32_16x16x32_fp8((long)a, (long)b, c);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            if (16 * (i / 4) + j == l)
                lay_d[i * 16 + j] = d[i % 4];
}

static void test_mfma_layout(void)
{
    dsk_rng r = dsk_t_rng(300);
    for (int i = 0; i < 16 * 32; i++) {
        lay_a[i] = (unsigned char)dsk_rng_int(&r, 0, 255);
        lay_b[i] = (unsigned char)dsk_rng_int(&r, 0, 255);
        if (lay_a[i] == 0x80)
            lay_a[i] = 0;
        if (lay_b[i] == 0x80)
            lay_b[i] = 0;
    }
    for (int i = 0; i < 256; i++)
        lay_c[i] = (float)dsk_rng_normal(&r);
    unsigned grid[3] = {1, 1, 1};
    char err[256] = "";
    if (!DSK_T_CHECK(!dsk_shim_launch(grid, 64, mfma_layout_kernel, NULL, err, sizeof err), "mfma layout: %s", err))
        return;
    int bad = 0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double s = lay_c[i * 16 + j];
            for (int k = 0; k < 32; k++)
                s += (double)dsk_fp8_to_f32(lay_a[i * 32 + k], DSK_E4M3FNUZ) *
                     (double)dsk_fp8_to_f32(lay_b[k * 16 + j], DSK_E4M3FNUZ);
            bad += lay_d[i * 16 + j] != (float)s;
        }
    DSK_T_CHECK(bad == 0, "mfma layout: %d of 256 elements of D differ from A.B + C", bad);
}

static void test_shim_detects(void)
{
    unsigned grid[3] = {1, 1, 1};
    char err[512] = "";
    DSK_T_CHECK(dsk_shim_launch(grid, 128, divergent_barrier, NULL, err, sizeof err) && strstr(err, "barrier"),
                "shim: a barrier reached by 64 of 128 threads was not reported (%s)", err);
    err[0] = 0;
    DSK_T_CHECK(!dsk_shim_launch(grid, 128, uniform_barriers, NULL, err, sizeof err),
                "shim: a kernel with uniform barriers was refused (%s)", err);
    err[0] = 0;
    DSK_T_CHECK(dsk_shim_launch(grid, 64, partial_mfma, NULL, err, sizeof err) && strstr(err, "MFMA"),
                "shim: an MFMA reached by 63 of 64 lanes was not reported (%s)", err);
    err[0] = 0;
    DSK_T_CHECK(dsk_shim_launch(grid, 64, too_much_lds, NULL, err, sizeof err) && strstr(err, "LDS"),
                "shim: 65537 bytes of LDS were not refused (%s)", err);
}

int main(void)
{
    printf("seed %llu\n", (unsigned long long)dsk_t_seed());
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++)
        run_case(&cases[i], i);
    test_nan_codes();
    test_repeatable();
    test_refusals();
    test_mfma_layout();
    test_shim_detects();
    dsk_t_free_all();
    return dsk_t_finish();
}
