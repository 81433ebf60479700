/* tests/cpu/test_cpu_ops.c: the cpu backend's layer and MoE kernels against their ops'
 * references (activation quantization, RMSNorm incl. in place, RoPE with V3's YaRN,
 * SwiGLU, MoE routing with sigmoid and softmax scoring and group limiting, permute with
 * and without segment padding, combine), on seeded random inputs with ragged widths,
 * outputs poisoned first. Tolerances are stated at each check.
 *
 * The layer ops run at every ISA level this CPU has (forced with dsk_cpu_isa_set_cap;
 * the kernel that ran is checked to be that level's), on fixed shapes and on random
 * ragged ones. The quantization is compared byte for byte, including groups that are
 * all zero, hold a NaN, an infinity, negative zeros, f32 subnormals, and every e4m3
 * rounding boundary (rows anchored at 448 make the scale exactly 1, so x / scale = x
 * reaches the encoder unchanged). The scalar e4m3 encoder the levels share is checked
 * against core/dtype.c's dsk_f32_to_fp8 over a stride of all 2^32 f32 bit patterns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "cpu/layers_internal.h"
#include "tests/harness/harness.h"

static dsk_device *dev;

/* max |x - y| over max|y| (poisoned/unwritten elements count as failures). */
static double rel_err(const dsk_tensor *x, const dsk_tensor *y)
{
    double m = 0, e = 0;
    for (int64_t i = 0; i < dsk_tensor_numel(y); i++) m = fmax(m, fabs(dsk_t_get(y, i)));
    for (int64_t i = 0; i < dsk_tensor_numel(y); i++) {
        double d = fabs(dsk_t_get(x, i) - dsk_t_get(y, i));
        if (!(d == d)) return INFINITY;
        e = fmax(e, d);
    }
    return m > 0 ? e / m : e;
}

static int same_bytes(const dsk_tensor *x, const dsk_tensor *y)
{
    return memcmp(x->data, y->data, dsk_tensor_nbytes(y)) == 0;
}

static void quant_case(int64_t M, int64_t K, dsk_dtype in, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t KB = (K + 127) / 128;
    dsk_tensor *x = dsk_t_new2(in, M, K), *q = dsk_t_new2(DSK_E4M3, M, K), *s = dsk_t_new2(DSK_F32, M, KB);
    dsk_tensor *qr = dsk_t_new2(DSK_E4M3, M, K), *sr = dsk_t_new2(DSK_F32, M, KB);
    dsk_t_fill_normal(x, &r, 2.0);
    if (M > 1)   /* a zero group */
        memset((char *)x->data + (size_t)K * dsk_dtype_size(in), 0, (size_t)(K < 128 ? K : 128) * dsk_dtype_size(in));
    dsk_t_poison(q);
    dsk_t_poison(s);
    if (!DSK_T_OK(dsk_quant_act_fp8(dev, x, q, s)) || !DSK_T_OK(dsk_quant_act_fp8_ref(x, qr, sr))) return;
    /* the same f32 operations and encoder as the reference: bit-exact */
    DSK_T_CHECK(same_bytes(q, qr) && same_bytes(s, sr), "quant_act [%s] M=%lld K=%lld %s: differs from the reference",
                dsk_device_last_kernel(dev), (long long)M, (long long)K, dsk_dtype_name(in));
}

static void rmsnorm_case(int64_t T, int64_t Hd, dsk_dtype in, dsk_dtype out, int in_place, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    dsk_tensor *x = dsk_t_new2(in, T, Hd), *w = dsk_t_new(in, 1, (int64_t[]){Hd});
    dsk_tensor *y = in_place ? x : dsk_t_new2(out, T, Hd), *yr = dsk_t_new2(in_place ? in : out, T, Hd);
    dsk_t_fill_normal(x, &r, 1.5);
    dsk_t_fill_normal(w, &r, 1.0);
    if (!in_place) dsk_t_poison(y);
    dsk_rmsnorm_args ar = {x, w, yr, 1e-6f};
    if (!DSK_T_OK(dsk_rmsnorm_ref(&ar))) return;
    dsk_rmsnorm_args a = {x, w, y, 1e-6f};
    if (!DSK_T_OK(dsk_rmsnorm(dev, &a))) return;
    /* f32 products (3 roundings): 1e-6 of max|y|; bf16 output: one ulp, 2^-7 relative to
     * the element, bounded by 2^-7 of max|y| */
    double tol = y->dtype == DSK_BF16 ? 0x1p-7 : 1e-6, e = rel_err(y, yr);
    DSK_T_CHECK(e <= tol, "rmsnorm [%s] T=%lld Hd=%lld %s->%s in_place=%d: rel err %.3e (tol %.1e)",
                dsk_device_last_kernel(dev), (long long)T, (long long)Hd, dsk_dtype_name(in), dsk_dtype_name(y->dtype),
                in_place, e, tol);
}

static void rope_case_dim(int64_t T, int64_t nh, int dim, dsk_dtype dt, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    dsk_tensor *x = dsk_t_new3(dt, T, nh, dim), *xr = dsk_t_new3(dt, T, nh, dim);
    dsk_tensor *pos = dsk_t_new(DSK_I32, 1, (int64_t[]){T});
    dsk_t_fill_normal(x, &r, 1.0);
    memcpy(xr->data, x->data, dsk_tensor_nbytes(x));
    dsk_t_fill_int(pos, &r, 0, 163840);
    dsk_rope_params p = dsk_rope_params_v3();
    p.dim = dim;
    dsk_rope_args a = {x, pos, p}, ar = {xr, pos, p};
    if (!DSK_T_OK(dsk_rope(dev, &a)) || !DSK_T_OK(dsk_rope_ref(&ar))) return;
    /* cos/sin from f64 rounded to f32, rotation in f32: ~3 f32 roundings, 1e-6 of max|x|;
     * bf16: one ulp */
    double tol = dt == DSK_BF16 ? 0x1p-7 : 1e-6, e = rel_err(x, xr);
    DSK_T_CHECK(e <= tol, "rope [%s] T=%lld nh=%lld dim=%d %s: rel err %.3e (tol %.1e)", dsk_device_last_kernel(dev),
                (long long)T, (long long)nh, dim, dsk_dtype_name(dt), e, tol);
}

static void rope_case(int64_t T, int64_t nh, dsk_dtype dt, uint64_t id) { rope_case_dim(T, nh, 64, dt, id); }

static void swiglu_case(int64_t T, int64_t I, dsk_dtype in, dsk_dtype out, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    dsk_tensor *g = dsk_t_new2(in, T, 2 * I), *y = dsk_t_new2(out, T, I), *yr = dsk_t_new2(out, T, I);
    dsk_t_fill_normal(g, &r, 3.0);
    dsk_t_poison(y);
    dsk_swiglu_args a = {g, y}, ar = {g, yr};
    if (!DSK_T_OK(dsk_swiglu(dev, &a)) || !DSK_T_OK(dsk_swiglu_ref(&ar))) return;
    /* expf and three f32 operations: 1e-6 of max|y|; bf16 output: one ulp */
    double tol = out == DSK_BF16 ? 0x1p-7 : 1e-6, e = rel_err(y, yr);
    DSK_T_CHECK(e <= tol, "swiglu [%s] T=%lld I=%lld: rel err %.3e (tol %.1e)", dsk_device_last_kernel(dev),
                (long long)T, (long long)I, e, tol);
}

static void route_case(int64_t T, dsk_moe_route_params p, int with_bias, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    dsk_tensor *lg = dsk_t_new2(DSK_F32, T, p.n_experts), *bias = dsk_t_new(DSK_F32, 1, (int64_t[]){p.n_experts});
    dsk_tensor *idx = dsk_t_new2(DSK_I32, T, p.top_k), *w = dsk_t_new2(DSK_F32, T, p.top_k);
    dsk_tensor *idxr = dsk_t_new2(DSK_I32, T, p.top_k), *wr = dsk_t_new2(DSK_F32, T, p.top_k);
    dsk_t_fill_normal(lg, &r, 2.0);
    dsk_t_fill_uniform(bias, &r, -0.2, 0.2);
    dsk_t_poison(idx);
    dsk_t_poison(w);
    dsk_moe_route_args a = {lg, with_bias ? bias : NULL, idx, w, p}, ar = a;
    ar.topk_idx = idxr;
    ar.topk_w = wr;
    if (!DSK_T_OK(dsk_moe_route(dev, &a)) || !DSK_T_OK(dsk_moe_route_ref(&ar))) return;
    /* the same f64 scores: identical choices; weights rounded once to f32 from f64 */
    double e = rel_err(w, wr);
    DSK_T_CHECK(same_bytes(idx, idxr) && e <= 1e-7, "moe_route [%s] T=%lld E=%d groups=%d/%d top_k=%d scoring=%d: %s, weight rel err %.3e (tol 1e-7)",
                dsk_device_last_kernel(dev), (long long)T, p.n_experts, p.topk_group, p.n_group, p.top_k, (int)p.scoring,
                same_bytes(idx, idxr) ? "same experts" : "different experts", e);
}

static void permute_combine_case(int64_t T, int k, int E, int align, int64_t Hd, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    int64_t P = dsk_moe_permute_rows(T, k, E, align);
    dsk_tensor *x = dsk_t_new2(DSK_BF16, T, Hd), *idx = dsk_t_new2(DSK_I32, T, k);
    dsk_tensor *xp = dsk_t_new2(DSK_BF16, P, Hd), *mi = dsk_t_new(DSK_I32, 1, (int64_t[]){P});
    dsk_tensor *rm = dsk_t_new2(DSK_I32, T, k), *off = dsk_t_new(DSK_I32, 1, (int64_t[]){E + 1});
    dsk_tensor *xpr = dsk_t_new2(DSK_BF16, P, Hd), *mir = dsk_t_new(DSK_I32, 1, (int64_t[]){P});
    dsk_tensor *rmr = dsk_t_new2(DSK_I32, T, k), *offr = dsk_t_new(DSK_I32, 1, (int64_t[]){E + 1});
    dsk_t_fill_normal(x, &r, 1.0);
    for (int64_t t = 0; t < T; t++)   /* distinct experts per token, some slots -1 */
        for (int j = 0; j < k; j++) {
            int32_t e = (int32_t)dsk_rng_int(&r, -1, E - 1);
            for (int i = 0; i < j; i++)
                if (((int32_t *)idx->data)[t * k + i] == e) e = -1;
            ((int32_t *)idx->data)[t * k + j] = e;
        }
    dsk_t_poison(xp);
    dsk_t_poison(xpr);   /* padding rows stay poisoned in both */
    dsk_moe_permute_args a = {x, idx, E, align, xp, mi, rm, off}, ar = {x, idx, E, align, xpr, mir, rmr, offr};
    if (!DSK_T_OK(dsk_moe_permute(dev, &a)) || !DSK_T_OK(dsk_moe_permute_ref(&ar))) return;
    /* a copy: bit-exact */
    DSK_T_CHECK(same_bytes(xp, xpr) && same_bytes(mi, mir) && same_bytes(rm, rmr) && same_bytes(off, offr),
                "moe_permute [%s] T=%lld k=%d E=%d align=%d: differs from the reference", dsk_device_last_kernel(dev),
                (long long)T, k, E, align);
    /* combine the permuted rows back (bf16 in, f32 and bf16 out) */
    dsk_tensor *tw = dsk_t_new2(DSK_F32, T, k);
    dsk_t_fill_uniform(tw, &r, 0.0, 1.0);
    for (int o = 0; o < 2; o++) {
        dsk_dtype od = o ? DSK_BF16 : DSK_F32;
        dsk_tensor *y = dsk_t_new2(od, T, Hd), *yr = dsk_t_new2(od, T, Hd);
        dsk_t_poison(y);
        dsk_moe_combine_args c = {xpr, rmr, tw, y}, cr = {xpr, rmr, tw, yr};
        if (!DSK_T_OK(dsk_moe_combine(dev, &c)) || !DSK_T_OK(dsk_moe_combine_ref(&cr))) return;
        /* up to k f32 multiply-adds: 1e-6 of max|y|; bf16: one ulp */
        double tol = o ? 0x1p-7 : 1e-6, e = rel_err(y, yr);
        DSK_T_CHECK(e <= tol, "moe_combine [%s] T=%lld k=%d %s: rel err %.3e (tol %.1e)", dsk_device_last_kernel(dev),
                    (long long)T, k, dsk_dtype_name(od), e, tol);
    }
}

/* e4m3 values of codes 0..0x7E (finite, positive). */
static float e4m3_value(int c) { return dsk_fp8_to_f32((uint8_t)c, DSK_E4M3); }

/* Values that exercise every rounding decision of the encoder, |v| <= 448: each code,
 * each midpoint between neighbours, one f32 ulp either side; both signs. */
static int64_t boundary_values(float *v, int64_t cap)
{
    int64_t n = 0;
    for (int c = 0; c < 0x7e && n + 12 <= cap; c++) {
        const float a = e4m3_value(c), b = e4m3_value(c + 1), mid = (a + b) / 2;   /* exact: <= 5 significant bits */
        const float w[6] = {a, mid, nextafterf(mid, 0.0f), nextafterf(mid, 1e9f), nextafterf(a, 1e9f), b};
        for (int k = 0; k < 6; k++) {
            v[n++] = w[k];
            v[n++] = -w[k];
        }
    }
    return n;
}

/* Quantization groups with special contents, f32 and bf16 input, against the reference
 * byte for byte. Row r of x: see the comments at each fill. */
static void quant_special_case(dsk_dtype in, uint64_t id)
{
    dsk_rng r = dsk_t_rng(id);
    static float bv[2048];
    const int64_t nb = boundary_values(bv, 2048);
    const int64_t K = 128 * 3 + 37, rows_b = (nb + 126) / 127;
    const int64_t M = 6 + rows_b;
    dsk_tensor *x = dsk_t_new2(in, M, K), *q = dsk_t_new2(DSK_E4M3, M, K), *s = dsk_t_new2(DSK_F32, M, (K + 127) / 128);
    dsk_tensor *qr = dsk_t_new2(DSK_E4M3, M, K), *sr = dsk_t_new2(DSK_F32, M, (K + 127) / 128);
    dsk_t_fill_normal(x, &r, 3.0);
    for (int64_t k = 0; k < K; k++) {
        dsk_t_set(x, 0 * K + k, 0.0);                                   /* row 0: all zero (scale floor) */
        dsk_t_set(x, 1 * K + k, k % 2 ? -0.0 : 0.0);                    /* row 1: +-0 */
        if (k % 17 == 3) dsk_t_set(x, 2 * K + k, NAN);                  /* row 2: NaNs among normals */
        if (k % 130 == 5) dsk_t_set(x, 3 * K + k, k % 3 ? INFINITY : -INFINITY);   /* row 3: an inf per group */
        dsk_t_set(x, 4 * K + k, ldexp((double)(k % 9) - 4.0, -130));   /* row 4: f32 subnormals, scale floor */
        dsk_t_set(x, 5 * K + k, ldexp(dsk_rng_normal(&r), -20));        /* row 5: tiny values, scale floor */
    }
    if (in == DSK_BF16)   /* a negative NaN too */
        ((uint16_t *)x->data)[2 * K + 7] = 0xffc1;
    else
        ((uint32_t *)x->data)[2 * K + 7] = 0xffc00001u;
    /* rows 6..: every group starts with 448 (scale exactly 1), then boundary values;
     * bf16 keeps those its 8 bits represent (the rest round, still |v| <= 448) */
    int64_t j = 0;
    for (int64_t m = 6; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            dsk_t_set(x, m * K + k, k % 128 == 0 ? 448.0 : (double)bv[j < nb ? j++ : (j++ % nb)]);
    dsk_t_poison(q);
    dsk_t_poison(s);
    if (!DSK_T_OK(dsk_quant_act_fp8(dev, x, q, s)) || !DSK_T_OK(dsk_quant_act_fp8_ref(x, qr, sr))) return;
    int64_t bad = -1;
    for (int64_t i = 0; i < M * K && bad < 0; i++)
        if (((uint8_t *)q->data)[i] != ((uint8_t *)qr->data)[i]) bad = i;
    DSK_T_CHECK(bad < 0 && same_bytes(s, sr),
                "quant_act special groups [%s] %s M=%lld K=%lld: q differs first at row %lld col %lld (x=%g: got 0x%02x, "
                "want 0x%02x)%s", dsk_device_last_kernel(dev), dsk_dtype_name(in), (long long)M, (long long)K,
                (long long)(bad < 0 ? -1 : bad / K), (long long)(bad < 0 ? -1 : bad % K), bad < 0 ? 0.0 : dsk_t_get(x, bad),
                bad < 0 ? 0 : ((uint8_t *)q->data)[bad], bad < 0 ? 0 : ((uint8_t *)qr->data)[bad],
                same_bytes(s, sr) ? "" : "; scales differ");
}

/* The shared scalar encoder against core/dtype.c: f32 bit patterns at a prime stride
 * over all 2^32 (both signs, NaNs, infinities, subnormals, saturation), plus the
 * boundary values and the region just above 448 where saturation starts. */
static void encoder_sweep(void)
{
    int64_t bad = 0;
    uint32_t first = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += 251) {
        float v;
        uint32_t u = (uint32_t)b;
        memcpy(&v, &u, 4);
        if (dsk_cpu_e4m3_encode(v) != dsk_f32_to_fp8(v, DSK_E4M3) && bad++ == 0) first = u;
    }
    static float bv[2048];
    int64_t nb = boundary_values(bv, 2048);
    for (int64_t i = 0; i < nb; i++)
        if (dsk_cpu_e4m3_encode(bv[i]) != dsk_f32_to_fp8(bv[i], DSK_E4M3) && bad++ == 0) memcpy(&first, &bv[i], 4);
    for (float v = 440.0f; v < 500.0f; v = nextafterf(v, 1e9f))
        if (dsk_cpu_e4m3_encode(v) != dsk_f32_to_fp8(v, DSK_E4M3) && bad++ == 0) memcpy(&first, &v, 4);
    DSK_T_CHECK(bad == 0, "e4m3 encoder (cpu/layers_internal.h): %lld inputs differ from dsk_f32_to_fp8, first bits 0x%08x",
                (long long)bad, first);
}

static dsk_dtype pick_dt(dsk_rng *r) { return dsk_rng_int(r, 0, 1) ? DSK_BF16 : DSK_F32; }

/* The layer ops at the current level: fixed shapes, then random ragged ones. */
static void layer_level(dsk_cpu_isa isa)
{
    dsk_cpu_isa_set_cap((int)isa);
    const uint64_t id = 1000 + (uint64_t)isa * 1000;
    quant_case(5, 300, DSK_F32, id + 1);
    quant_case(17, 7168, DSK_BF16, id + 2);
    quant_special_case(DSK_F32, id + 3);
    quant_special_case(DSK_BF16, id + 4);
    char want[64];
    snprintf(want, sizeof want, "quant_act_fp8_cpu_%s", isa == DSK_CPU_AVX512BF16 ? "avx512" : dsk_cpu_isa_name(isa));
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(dev), want), "level %s: quant kernel that ran is '%s', expected '%s'",
                dsk_cpu_isa_name(isa), dsk_device_last_kernel(dev), want);
    rmsnorm_case(9, 7168, DSK_BF16, DSK_BF16, 0, id + 5);
    rmsnorm_case(5, 513, DSK_F32, DSK_F32, 0, id + 6);
    rmsnorm_case(6, 100, DSK_F32, DSK_F32, 1, id + 7);
    rmsnorm_case(3, 1536, DSK_F32, DSK_BF16, 0, id + 8);
    rope_case(13, 7, DSK_F32, id + 9);
    rope_case(5, 128, DSK_BF16, id + 10);
    swiglu_case(7, 2048, DSK_BF16, DSK_BF16, id + 11);
    swiglu_case(3, 333, DSK_F32, DSK_F32, id + 12);
    snprintf(want, sizeof want, "swiglu_cpu_%s", isa == DSK_CPU_AVX512BF16 ? "avx512" : dsk_cpu_isa_name(isa));
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(dev), want), "level %s: swiglu kernel that ran is '%s', expected '%s'",
                dsk_cpu_isa_name(isa), dsk_device_last_kernel(dev), want);
    /* random ragged shapes: widths 1..~2100 (most not multiples of 8, 16 or 128), token
     * counts from decode (1) to a small prefill, so rows go inline and over the pool */
    dsk_rng r = dsk_t_rng(id + 100);
    for (int i = 0; i < 12; i++) {
        int64_t T = dsk_rng_int(&r, 1, i % 4 == 0 ? 300 : 9), w = dsk_rng_int(&r, 1, 2100);
        quant_case(T, w, pick_dt(&r), id + 200 + (uint64_t)i);
        dsk_dtype in = pick_dt(&r);
        int in_place = (int)dsk_rng_int(&r, 0, 1);
        rmsnorm_case(T, w, in, in_place ? in : pick_dt(&r), in_place, id + 300 + (uint64_t)i);
        swiglu_case(T, dsk_rng_int(&r, 1, 1100), pick_dt(&r), pick_dt(&r), id + 400 + (uint64_t)i);
        rope_case_dim(T, dsk_rng_int(&r, 1, 9), 2 * (int)dsk_rng_int(&r, 1, 100), pick_dt(&r), id + 500 + (uint64_t)i);
    }
    snprintf(want, sizeof want, "rope_cpu_%s", isa == DSK_CPU_AVX512BF16 ? "avx512" : dsk_cpu_isa_name(isa));
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(dev), want), "level %s: rope kernel that ran is '%s', expected '%s'",
                dsk_cpu_isa_name(isa), dsk_device_last_kernel(dev), want);
}

int main(void)
{
    if (!DSK_T_OK(dsk_device_open("cpu", &dev))) return dsk_t_finish();
    encoder_sweep();
    dsk_cpu_isa best = dsk_cpu_isa_detected();
    for (int isa = DSK_CPU_AVX512BF16; isa >= DSK_CPU_SCALAR; isa--) {
        if (isa > (int)best) {
            printf("layer ops, level %s: not on this CPU (it has %s), not tested here\n",
                   dsk_cpu_isa_name((dsk_cpu_isa)isa), dsk_cpu_isa_name(best));
            continue;
        }
        printf("layer ops, level %s\n", dsk_cpu_isa_name((dsk_cpu_isa)isa));
        layer_level((dsk_cpu_isa)isa);
    }
    dsk_cpu_isa_set_cap(-1);
    route_case(37, dsk_moe_route_params_v3(), 1, 11);
    dsk_moe_route_params p = {16, 4, 2, 4, 0, 1.0f, DSK_MOE_SOFTMAX};
    route_case(50, p, 0, 12);
    dsk_moe_route_params p1 = {64, 1, 1, 6, 1, 1.5f, DSK_MOE_SIGMOID};
    route_case(20, p1, 1, 13);
    permute_combine_case(40, 8, 16, 1, 100, 14);
    permute_combine_case(33, 4, 9, 4, 7168, 15);
    dsk_device_close(dev);
    dsk_t_free_all();
    return dsk_t_finish();
}
