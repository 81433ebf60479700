/* tests/refs/test_refs_layers.c: RMSNorm, RoPE (YaRN) and SwiGLU references by
 * hand-computed cases and invariants (the numpy oracle covers random inputs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness/harness.h"

static void test_rmsnorm(void)
{
    /* x = [3, 4]: mean(x^2) = 12.5, y = x / sqrt(12.5) * w */
    dsk_tensor *x = dsk_t_new2(DSK_F32, 1, 2), *w = dsk_t_new(DSK_F32, 1, (int64_t[]){2});
    dsk_tensor *y = dsk_t_new2(DSK_F32, 1, 2);
    ((float *)x->data)[0] = 3, ((float *)x->data)[1] = 4;
    ((float *)w->data)[0] = 1, ((float *)w->data)[1] = -2;
    dsk_t_poison(y);
    dsk_rmsnorm_args a = {.x = x, .weight = w, .y = y, .eps = 0.0f};
    if (DSK_T_OK(dsk_rmsnorm_ref(&a))) {
        float *o = y->data;
        double r = sqrt(12.5);
        DSK_T_CHECK(o[0] == (float)(3 / r) && o[1] == (float)(-8 / r),
                    "rmsnorm [3,4] w [1,-2]: got %.9g %.9g, want %.9g %.9g", o[0], o[1], 3 / r, -8 / r);
    }
    /* eps matters for a small row: x = [1e-3, 0], eps = 1e-6: y0 = 1e-3 / sqrt(5e-7 + 1e-6) */
    ((float *)x->data)[0] = 1e-3f, ((float *)x->data)[1] = 0;
    a.eps = 1e-6f;
    if (DSK_T_OK(dsk_rmsnorm_ref(&a))) {
        double want = (double)1e-3f / sqrt((double)1e-3f * 1e-3f / 2 + (double)1e-6f);
        DSK_T_CHECK(fabs(((float *)y->data)[0] - want) <= 1e-6 * want, "rmsnorm eps: got %.9g, want %.9g",
                    ((float *)y->data)[0], want);
    }
    /* in place (y aliases x) equals out of place; bf16 output is the f32 output rounded */
    dsk_rng r = dsk_t_rng(1);
    dsk_tensor *x2 = dsk_t_new2(DSK_BF16, 4, 70), *w2 = dsk_t_new(DSK_BF16, 1, (int64_t[]){70});
    dsk_tensor *y2 = dsk_t_new2(DSK_F32, 4, 70), *yb = dsk_t_new2(DSK_BF16, 4, 70);
    dsk_t_fill_normal(x2, &r, 2.0);
    dsk_t_fill_uniform(w2, &r, 0.5, 1.5);
    dsk_t_poison(y2);
    dsk_t_poison(yb);
    dsk_rmsnorm_args b = {.x = x2, .weight = w2, .y = y2, .eps = 1e-6f};
    dsk_rmsnorm_args bb = {.x = x2, .weight = w2, .y = yb, .eps = 1e-6f};
    if (!DSK_T_OK(dsk_rmsnorm_ref(&b)) || !DSK_T_OK(dsk_rmsnorm_ref(&bb)))
        return;
    int ok = 1;
    for (int i = 0; i < 4 * 70; i++)
        ok &= ((uint16_t *)yb->data)[i] == dsk_f32_to_bf16(((float *)y2->data)[i]);
    DSK_T_CHECK(ok, "rmsnorm bf16 output differs from the f32 output rounded to bf16");
    dsk_rmsnorm_args in_place = {.x = x2, .weight = w2, .y = x2, .eps = 1e-6f};
    if (DSK_T_OK(dsk_rmsnorm_ref(&in_place)))
        DSK_T_CHECK(!memcmp(x2->data, yb->data, dsk_tensor_nbytes(yb)),
                    "rmsnorm in place differs from out of place");
}

static void test_swiglu(void)
{
    /* gate | up = [0, 1, -2 | 5, 2, 3]: y = [0, 2*silu(1), 3*silu(-2)] */
    dsk_tensor *gu = dsk_t_new2(DSK_F32, 1, 6), *y = dsk_t_new2(DSK_F32, 1, 3);
    const float v[6] = {0, 1, -2, 5, 2, 3};
    memcpy(gu->data, v, sizeof v);
    dsk_t_poison(y);
    dsk_swiglu_args a = {.gate_up = gu, .y = y};
    if (!DSK_T_OK(dsk_swiglu_ref(&a)))
        return;
    float *o = y->data;
    double w1 = 2.0 / (1 + exp(-1.0)), w2 = 3.0 * -2.0 / (1 + exp(2.0));
    DSK_T_CHECK(o[0] == 0 && o[1] == (float)w1 && o[2] == (float)w2,
                "swiglu: got %.9g %.9g %.9g, want 0 %.9g %.9g", o[0], o[1], o[2], w1, w2);
}

static void test_rope_freqs(void)
{
    /* plain RoPE: freq[i] = theta^(-2i/dim) */
    dsk_rope_params plain = {.dim = 8, .theta = 10000.0f, .factor = 1.0f, .attn_factor = 1.0f};
    double f[32];
    dsk_rope_freqs(&plain, f);
    DSK_T_CHECK(f[0] == 1.0 && fabs(f[1] - 0.1) < 1e-15 && fabs(f[3] - 1e-3) < 1e-17,
                "plain freqs: %.17g %.17g %.17g, want 1 0.1 0.001", f[0], f[1], f[3]);

    /* V3: correction range low = floor(10.47) = 10, high = ceil(22.51) = 23:
     * pairs <= 10 keep theta^(-2i/64), pairs >= 23 are divided by 40, pair 16 has ramp 6/13 */
    dsk_rope_params p = dsk_rope_params_v3();
    DSK_T_CHECK(p.dim == 64 && p.theta == 10000.0f && p.factor == 40.0f && p.original_max_pos == 4096 &&
                    p.beta_fast == 32.0f && p.beta_slow == 1.0f && p.attn_factor == 1.0f,
                "dsk_rope_params_v3: unexpected values");
    dsk_rope_freqs(&p, f);
    int ok = 1;
    for (int i = 0; i < 32; i++) {
        double base = pow(10000.0, -2.0 * i / 64.0), want;
        if (i <= 10)
            want = base;
        else if (i >= 23)
            want = base / 40;
        else {
            double ramp = (i - 10) / 13.0;
            want = base / 40 * ramp + base * (1 - ramp);
        }
        if (fabs(f[i] - want) > 1e-14 * want) {
            ok = 0;
            DSK_T_CHECK(0, "V3 freq[%d] = %.17g, want %.17g", i, f[i], want);
        }
    }
    DSK_T_CHECK(ok, "V3 YaRN frequencies (low 10, high 23)");
}

static void test_rope_apply(void)
{
    /* dim 4, theta 100: freqs [1, 0.1]. x = e0 and e2 at position 3 */
    dsk_rope_params p = {.dim = 4, .theta = 100.0f, .factor = 1.0f, .attn_factor = 1.0f};
    dsk_tensor *x = dsk_t_new3(DSK_F32, 2, 1, 4), *pos = dsk_t_new(DSK_I32, 1, (int64_t[]){2});
    const float xv[8] = {1, 0, 0, 0, 0, 0, 1, 0};
    memcpy(x->data, xv, sizeof xv);
    ((int32_t *)pos->data)[0] = 3, ((int32_t *)pos->data)[1] = 3;
    dsk_rope_args a = {.x = x, .positions = pos, .p = p};
    if (DSK_T_OK(dsk_rope_ref(&a))) {
        float *o = x->data;
        /* interleaved pairs: (x0, x1) rotated by 3 rad, (x2, x3) by 0.3 rad */
        int ok = o[0] == (float)cos(3.0) && o[1] == (float)sin(3.0) && o[2] == 0 && o[3] == 0 &&
                 o[4] == 0 && o[5] == 0 && o[6] == (float)cos(0.3) && o[7] == (float)sin(0.3);
        DSK_T_CHECK(ok, "rope by hand: got [%g %g %g %g] [%g %g %g %g]", o[0], o[1], o[2], o[3], o[4],
                    o[5], o[6], o[7]);
    }
    /* position 0 is the identity (times attn_factor); attn_factor scales */
    dsk_rng r = dsk_t_rng(2);
    dsk_rope_params v3 = dsk_rope_params_v3();
    v3.attn_factor = 2.0f;
    dsk_tensor *x2 = dsk_t_new3(DSK_F32, 1, 3, 64), *p0 = dsk_t_new(DSK_I32, 1, (int64_t[]){1});
    dsk_t_fill_normal(x2, &r, 1.0);
    ((int32_t *)p0->data)[0] = 0;
    float orig[192];
    memcpy(orig, x2->data, sizeof orig);
    dsk_rope_args b = {.x = x2, .positions = p0, .p = v3};
    if (DSK_T_OK(dsk_rope_ref(&b))) {
        int ok = 1;
        for (int i = 0; i < 192; i++)
            ok &= ((float *)x2->data)[i] == 2.0f * orig[i];
        DSK_T_CHECK(ok, "rope at position 0 with attn_factor 2 must return 2x");
    }
    /* rotation preserves each pair's norm (attn_factor 1) at a far position */
    b.p.attn_factor = 1.0f;
    ((int32_t *)p0->data)[0] = 150000;
    memcpy(x2->data, orig, sizeof orig);
    if (DSK_T_OK(dsk_rope_ref(&b))) {
        double max_err = 0;
        for (int i = 0; i < 192; i += 2) {
            float *o = x2->data;
            double n0 = hypot(orig[i], orig[i + 1]), n1 = hypot(o[i], o[i + 1]);
            max_err = fmax(max_err, fabs(n0 - n1));
        }
        DSK_T_CHECK(max_err <= 1e-6, "rope preserves pair norms: max err %.3g (tol 1e-6)", max_err);
    }
}

/* RoPE on the rope columns of q [T, H, 192] in place (a strided view): the nope columns
 * are untouched, the rope columns match a contiguous copy. */
static void test_rope_strided(void)
{
    dsk_rng r = dsk_t_rng(3);
    const int T = 5, H = 3, W = 192, R = 64;
    dsk_tensor *q = dsk_t_new3(DSK_BF16, T, H, W), *c = dsk_t_new3(DSK_BF16, T, H, R);
    dsk_tensor *pos = dsk_t_new(DSK_I32, 1, (int64_t[]){T});
    dsk_t_fill_normal(q, &r, 1.0);
    dsk_t_fill_int(pos, &r, 0, 100000);
    uint16_t *before = malloc(dsk_tensor_nbytes(q));
    memcpy(before, q->data, dsk_tensor_nbytes(q));
    for (int i = 0; i < T * H; i++)
        memcpy((uint16_t *)c->data + i * R, (uint16_t *)q->data + i * W + (W - R), 2 * R);
    dsk_tensor view = *q;
    view.shape[2] = R;
    view.data = (uint16_t *)q->data + (W - R);
    dsk_rope_args a = {.x = &view, .positions = pos, .p = dsk_rope_params_v3()};
    dsk_rope_args b = {.x = c, .positions = pos, .p = dsk_rope_params_v3()};
    if (DSK_T_OK(dsk_rope_ref(&a)) && DSK_T_OK(dsk_rope_ref(&b))) {
        int nope_ok = 1, rope_ok = 1;
        for (int i = 0; i < T * H; i++) {
            nope_ok &= !memcmp((uint16_t *)q->data + i * W, before + i * W, 2 * (W - R));
            rope_ok &= !memcmp((uint16_t *)q->data + i * W + (W - R), (uint16_t *)c->data + i * R, 2 * R);
        }
        DSK_T_CHECK(nope_ok, "rope on a strided view wrote outside its columns");
        DSK_T_CHECK(rope_ok, "rope on a strided view differs from the contiguous result");
    }
    free(before);
}

int main(void)
{
    test_rmsnorm();
    test_swiglu();
    test_rope_freqs();
    test_rope_apply();
    test_rope_strided();
    return dsk_t_finish();
}
