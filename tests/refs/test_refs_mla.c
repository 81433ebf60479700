/* tests/refs/test_refs_mla.c: the MLA references by hand-computed cases and invariants.
 *
 * - the YaRN softmax scale of DeepSeek-V3 (0.13523...), and the no-YaRN cases;
 * - decode over one token returns that token's latent row, lse = scale * q.k;
 * - two tokens, computed by hand;
 * - the absorbed decode equals the non-absorbed prefill computation when q/k/v are built
 *   from the latent with random W_UK / W_UV (the contract's defining identity);
 * - pages are only addressed through the block table (permuting pages changes nothing,
 *   garbage in unread pages and unread table entries is never read);
 * - prefill is causal and per-sequence (future tokens and other sequences don't matter);
 * - strided q and a bf16 output.
 * All math is float64 inside the reference; f32 outputs agree with float64 expectations
 * to a few f32 ulps (tolerances stated at each check). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness/harness.h"

#define PG DSK_MLA_PAGE_SIZE

static void test_softmax_scale(void)
{
    /* mscale = 0.1 * 1.0 * ln(40) + 1 = 1.36888794541139; scale = mscale^2 / sqrt(192) */
    const double want = 1.36888794541139 * 1.36888794541139 / sqrt(192.0);
    float got = dsk_mla_softmax_scale(192, 1.0f, 40.0f);
    DSK_T_CHECK(fabs(got - want) <= 1e-7 * want, "softmax_scale(192, 1, 40) = %.9g, want %.9g", got,
                want);
    DSK_T_CHECK(fabs(got - 0.135234) < 1e-6, "softmax_scale(192, 1, 40) = %.9g, want ~0.135234", got);
    /* several public kernels default to 1/sqrt(192) = 0.0722: make sure we differ */
    DSK_T_CHECK(fabs(got - 1.0 / sqrt(192.0)) > 0.05, "softmax_scale must include mscale^2");
    float plain = dsk_mla_softmax_scale(192, 1.0f, 1.0f);
    DSK_T_CHECK(fabs(plain - 1.0 / sqrt(192.0)) <= 1e-7 / sqrt(192.0),
                "softmax_scale(192, 1, factor 1) = %.9g, want 1/sqrt(192)", plain);
    float zero_m = dsk_mla_softmax_scale(192, 0.0f, 40.0f);
    DSK_T_CHECK(fabs(zero_m - 1.0 / sqrt(192.0)) <= 1e-7 / sqrt(192.0),
                "softmax_scale(192, mscale_all_dim 0, 40) = %.9g, want 1/sqrt(192)", zero_m);
    dsk_mla_config c = dsk_mla_config_v3();
    DSK_T_CHECK(c.n_heads == 128 && c.q_lora_rank == 1536 && c.kv_lora_rank == 512 &&
                    c.qk_nope_head_dim == 128 && c.qk_rope_head_dim == 64 && c.v_head_dim == 128 &&
                    c.mscale_all_dim == 1.0f && c.rope_factor == 40.0f,
                "dsk_mla_config_v3: unexpected values");
    float v3 = dsk_mla_softmax_scale(c.qk_nope_head_dim + c.qk_rope_head_dim, c.mscale_all_dim,
                                     c.rope_factor);
    DSK_T_CHECK(v3 == got, "softmax scale from dsk_mla_config_v3 = %.9g, want %.9g", v3, got);
    float m2 = dsk_mla_softmax_scale(64, 0.707f, 4.0f);
    double mm = 0.1 * 0.707 * log(4.0) + 1.0;
    DSK_T_CHECK(fabs(m2 - mm * mm / 8.0) <= 1e-6, "softmax_scale(64, 0.707, 4) = %.9g, want %.9g", m2,
                mm * mm / 8.0);
}

/* A decode problem on host tensors. */
typedef struct dec {
    dsk_tensor *q, *kv, *bt, *sl, *out, *lse;
    dsk_mla_decode_args a;
} dec;

static dec dec_new(int B, int H, int D, int dv, int num_pages, int max_pages, dsk_dtype dt)
{
    dec d;
    d.q = dsk_t_new3(dt, B, H, D);
    d.kv = dsk_t_new3(dt, num_pages, PG, D);
    d.bt = dsk_t_new2(DSK_I32, B, max_pages);
    d.sl = dsk_t_new(DSK_I32, 1, (int64_t[]){B});
    d.out = dsk_t_new3(DSK_F32, B, H, dv);
    d.lse = dsk_t_new2(DSK_F32, B, H);
    dsk_t_poison(d.out);
    dsk_t_poison(d.lse);
    memset(d.bt->data, 0, dsk_tensor_nbytes(d.bt));
    d.a = (dsk_mla_decode_args){.q = d.q, .kv_cache = d.kv, .block_table = d.bt, .seq_lens = d.sl,
                                .out = d.out, .lse = d.lse, .dv = dv, .softmax_scale = 0.25f};
    return d;
}

static void test_one_token(void)
{
    dsk_rng r = dsk_t_rng(1);
    dec d = dec_new(2, 3, 10, 8, 4, 2, DSK_F32);
    dsk_t_fill_normal(d.q, &r, 1.0);
    dsk_t_fill_normal(d.kv, &r, 1.0);
    int32_t *bt = d.bt->data, *sl = d.sl->data;
    bt[0] = 2; /* sequence 0: one token, in page 2 row 0 */
    bt[2] = 1; /* sequence 1: one token, in page 1 row 0 */
    sl[0] = sl[1] = 1;
    if (!DSK_T_OK(dsk_mla_decode_ref(&d.a)))
        return;
    int64_t bad_out = 0;
    double max_lse_err = 0;
    for (int b = 0; b < 2; b++)
        for (int h = 0; h < 3; h++) {
            int page = bt[b * 2];
            /* softmax over one token is exactly 1: out is the latent row, bit-exact */
            for (int c = 0; c < 8; c++)
                bad_out += dsk_t_get(d.out, (b * 3 + h) * 8 + c) !=
                           dsk_t_get(d.kv, (int64_t)page * PG * 10 + c);
            double dot = 0;
            for (int k = 0; k < 10; k++)
                dot += dsk_t_get(d.q, (b * 3 + h) * 10 + k) * dsk_t_get(d.kv, (int64_t)page * PG * 10 + k);
            /* lse = log(exp(scale*dot)) = scale*dot, f32-rounded */
            double err = fabs(dsk_t_get(d.lse, b * 3 + h) - 0.25 * dot) / (1 + fabs(dot));
            max_lse_err = isfinite(err) ? fmax(max_lse_err, err) : INFINITY;
        }
    DSK_T_CHECK(bad_out == 0, "one token: %lld of 48 outputs differ from the token's V row",
                (long long)bad_out);
    DSK_T_CHECK(max_lse_err <= 1e-6, "one token: lse differs from scale*q.k by %.3g (tol 1e-6)",
                max_lse_err);
}

static void test_two_tokens_by_hand(void)
{
    /* D = 3 (dv = 2, one rope column), one head. q = [1, 0, 2], scale 0.5.
     * token 0 row [1, 2 | 0.5] : score 0.5 * (1 + 1)   = 1.0
     * token 1 row [3, -1 | -1]: score 0.5 * (3 - 2)   = 0.5
     * p = [e^1, e^0.5] / (e^1 + e^0.5); out = p0*[1,2] + p1*[3,-1]; lse = ln(e^1 + e^0.5). */
    dec d = dec_new(1, 1, 3, 2, 3, 1, DSK_F32);
    float *q = d.q->data, *kv = d.kv->data;
    q[0] = 1, q[1] = 0, q[2] = 2;
    memset(kv, 0, dsk_tensor_nbytes(d.kv));
    float *row0 = kv + 2 * PG * 3; /* page 2 */
    row0[0] = 1, row0[1] = 2, row0[2] = 0.5f;
    row0[3] = 3, row0[4] = -1, row0[5] = -1;
    ((int32_t *)d.bt->data)[0] = 2;
    ((int32_t *)d.sl->data)[0] = 2;
    d.a.softmax_scale = 0.5f;
    if (!DSK_T_OK(dsk_mla_decode_ref(&d.a)))
        return;
    double e1 = exp(1.0), e05 = exp(0.5), p0 = e1 / (e1 + e05), p1 = e05 / (e1 + e05);
    double want[2] = {p0 * 1 + p1 * 3, p0 * 2 - p1 * 1};
    for (int c = 0; c < 2; c++)
        DSK_T_CHECK(fabs(dsk_t_get(d.out, c) - want[c]) <= 1e-6, "two tokens: out[%d] = %.9g, want %.9g",
                    c, dsk_t_get(d.out, c), want[c]);
    DSK_T_CHECK(fabs(dsk_t_get(d.lse, 0) - log(e1 + e05)) <= 1e-6, "two tokens: lse = %.9g, want %.9g",
                dsk_t_get(d.lse, 0), log(e1 + e05));
}

/* The absorbed identity. Per head h, with latent c_j [dv] and shared rope key r_j [dr]:
 *   non-absorbed:  k_hj = [W_UK[h] c_j | r_j],  v_hj = W_UV[h] c_j,  q_h = [qn_h | qr_h]
 *   absorbed:      q'_h = [W_UK[h]^T qn_h | qr_h] over cache rows [c_j | r_j]
 *                  out_h = W_UV[h] . decode_out_h
 * Decode of the last token of a sequence equals prefill's output for that token. */
static void test_absorbed_equals_nonabsorbed(int id, int B, int H, int dn, int dr, int dv, int dvh)
{
    dsk_rng r = dsk_t_rng(100 + id);
    const int D = dv + dr, Dqk = dn + dr;
    int lens[8], maxlen = 0, T = 0;
    for (int b = 0; b < B; b++) {
        lens[b] = b == 0 ? 1 : (int)dsk_rng_int(&r, 2, 150);
        maxlen = lens[b] > maxlen ? lens[b] : maxlen;
        T += lens[b];
    }
    const int max_pages = (maxlen + PG - 1) / PG, num_pages = B * max_pages + 2;
    double *wuk = malloc(sizeof(double) * H * dn * dv), *wuv = malloc(sizeof(double) * H * dvh * dv);
    for (int i = 0; i < H * dn * dv; i++)
        wuk[i] = dsk_rng_normal(&r) / sqrt(dv);
    for (int i = 0; i < H * dvh * dv; i++)
        wuv[i] = dsk_rng_normal(&r) / sqrt(dv);

    dec d = dec_new(B, H, D, dv, num_pages, max_pages, DSK_F32);
    dsk_tensor *q = dsk_t_new3(DSK_F32, T, H, Dqk), *k = dsk_t_new3(DSK_F32, T, H, Dqk);
    dsk_tensor *v = dsk_t_new3(DSK_F32, T, H, dvh), *out = dsk_t_new3(DSK_F32, T, H, dvh);
    dsk_tensor *lse = dsk_t_new2(DSK_F32, T, H), *cu = dsk_t_new(DSK_I32, 1, (int64_t[]){B + 1});
    dsk_t_fill_normal(q, &r, 1.0); /* rows of tokens other than the last don't matter */
    dsk_t_fill_normal(d.kv, &r, 1.0); /* also fills unused pages with values never read */
    dsk_t_poison(out);
    dsk_t_poison(lse);
    int32_t *bt = d.bt->data, *sl = d.sl->data, *cup = cu->data;
    for (int i = 0; i < B * max_pages; i++) /* pages in reverse order: scattered */
        bt[i] = num_pages - 1 - i;
    cup[0] = 0;
    double *c = malloc(sizeof(double) * dv), *rr = malloc(sizeof(double) * dr);
    for (int b = 0, t = 0; b < B; b++) {
        sl[b] = lens[b];
        cup[b + 1] = cup[b] + lens[b];
        for (int j = 0; j < lens[b]; j++, t++) {
            /* the latent row is whatever the cache holds (f32), built into k and v */
            int page = bt[b * max_pages + j / PG];
            int64_t base = ((int64_t)page * PG + j % PG) * D;
            for (int x = 0; x < dv; x++)
                c[x] = dsk_t_get(d.kv, base + x);
            for (int x = 0; x < dr; x++)
                rr[x] = dsk_t_get(d.kv, base + dv + x);
            for (int h = 0; h < H; h++) {
                for (int e = 0; e < dn; e++) {
                    double s = 0;
                    for (int x = 0; x < dv; x++)
                        s += wuk[(h * dn + e) * dv + x] * c[x];
                    dsk_t_set(k, ((int64_t)t * H + h) * Dqk + e, s);
                }
                for (int x = 0; x < dr; x++)
                    dsk_t_set(k, ((int64_t)t * H + h) * Dqk + dn + x, rr[x]);
                for (int e = 0; e < dvh; e++) {
                    double s = 0;
                    for (int x = 0; x < dv; x++)
                        s += wuv[(h * dvh + e) * dv + x] * c[x];
                    dsk_t_set(v, ((int64_t)t * H + h) * dvh + e, s);
                }
            }
        }
    }
    /* absorbed queries from the last token's q of each sequence */
    for (int b = 0; b < B; b++) {
        int t = cup[b + 1] - 1;
        for (int h = 0; h < H; h++) {
            for (int x = 0; x < dv; x++) {
                double s = 0;
                for (int e = 0; e < dn; e++)
                    s += wuk[(h * dn + e) * dv + x] * dsk_t_get(q, ((int64_t)t * H + h) * Dqk + e);
                dsk_t_set(d.q, ((int64_t)b * H + h) * D + x, s);
            }
            for (int x = 0; x < dr; x++)
                dsk_t_set(d.q, ((int64_t)b * H + h) * D + dv + x,
                          dsk_t_get(q, ((int64_t)t * H + h) * Dqk + dn + x));
        }
    }
    const float scale = dsk_mla_softmax_scale(Dqk, 1.0f, 40.0f);
    d.a.softmax_scale = scale;
    dsk_mla_prefill_args pa = {.q = q, .k = k, .v = v, .cu_seqlens = cu, .out = out, .lse = lse,
                               .softmax_scale = scale};
    if (!DSK_T_OK(dsk_mla_decode_ref(&d.a)) || !DSK_T_OK(dsk_mla_prefill_ref(&pa)))
        goto done;
    /* k, v, q' were rounded to f32 from float64 products: scores agree to ~1e-6 relative,
     * so outputs (magnitude ~1) agree to ~1e-5. */
    double max_err = 0, max_lse_err = 0;
    for (int b = 0; b < B; b++) {
        int t = cup[b + 1] - 1;
        for (int h = 0; h < H; h++) {
            for (int e = 0; e < dvh; e++) {
                double s = 0;
                for (int x = 0; x < dv; x++)
                    s += wuv[(h * dvh + e) * dv + x] * dsk_t_get(d.out, ((int64_t)b * H + h) * dv + x);
                double want = dsk_t_get(out, ((int64_t)t * H + h) * dvh + e);
                max_err = fmax(max_err, fabs(s - want));
                if (!isfinite(s) || !isfinite(want))
                    max_err = INFINITY;
            }
            double dl = fabs(dsk_t_get(d.lse, b * H + h) - dsk_t_get(lse, (int64_t)t * H + h));
            max_lse_err = isfinite(dl) ? fmax(max_lse_err, dl) : INFINITY;
        }
    }
    DSK_T_CHECK(max_err <= 1e-4, "absorbed == non-absorbed (B=%d H=%d dn=%d dr=%d dv=%d dvh=%d): "
                "max |W_UV.decode - prefill| = %.3g (tol 1e-4)", B, H, dn, dr, dv, dvh, max_err);
    DSK_T_CHECK(max_lse_err <= 1e-4, "absorbed == non-absorbed (B=%d H=%d): max lse err %.3g (tol 1e-4)",
                B, H, max_lse_err);
done:
    free(wuk);
    free(wuv);
    free(c);
    free(rr);
}

/* Same sequence stored in two page arrangements; unread pages and table entries hold
 * garbage (NaN pages, out-of-range page indices) that must never be touched. */
static void test_paging(void)
{
    dsk_rng r = dsk_t_rng(3);
    const int H = 2, D = 12, dv = 8, len = 130, max_pages = 5, num_pages = 9;
    dec d1 = dec_new(1, H, D, dv, num_pages, max_pages, DSK_F32);
    dec d2 = dec_new(1, H, D, dv, num_pages, max_pages, DSK_F32);
    dsk_t_poison(d1.kv); /* NaN everywhere ... */
    dsk_t_poison(d2.kv);
    dsk_t_fill_normal(d1.q, &r, 1.0);
    memcpy(d2.q->data, d1.q->data, dsk_tensor_nbytes(d1.q));
    const int pages1[5] = {4, 0, 7, -5, 99999}; /* 3 pages read; entries 3, 4 unread garbage */
    const int pages2[5] = {1, 8, 2, 123, -1};
    float *k1 = d1.kv->data, *k2 = d2.kv->data;
    for (int j = 0; j < len; j++)
        for (int x = 0; x < D; x++) {
            float val = (float)dsk_rng_normal(&r);
            k1[((int64_t)pages1[j / PG] * PG + j % PG) * D + x] = val; /* ... but rows read */
            k2[((int64_t)pages2[j / PG] * PG + j % PG) * D + x] = val;
        }
    for (int p = 0; p < 5; p++) {
        ((int32_t *)d1.bt->data)[p] = pages1[p];
        ((int32_t *)d2.bt->data)[p] = pages2[p];
    }
    ((int32_t *)d1.sl->data)[0] = ((int32_t *)d2.sl->data)[0] = len;
    if (!DSK_T_OK(dsk_mla_decode_ref(&d1.a)) || !DSK_T_OK(dsk_mla_decode_ref(&d2.a)))
        return;
    int same = memcmp(d1.out->data, d2.out->data, dsk_tensor_nbytes(d1.out)) == 0 &&
               memcmp(d1.lse->data, d2.lse->data, dsk_tensor_nbytes(d1.lse)) == 0;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < dsk_tensor_numel(d1.out); i++)
        nonfinite += !isfinite(dsk_t_get(d1.out, i));
    for (int64_t i = 0; i < dsk_tensor_numel(d1.lse); i++)
        nonfinite += !isfinite(dsk_t_get(d1.lse, i));
    DSK_T_CHECK(same && nonfinite == 0, "paging: results depend on page placement or read an "
                "unused (NaN) row (identical=%d, nonfinite=%lld)", same, (long long)nonfinite);
}

static void test_prefill_causal(void)
{
    dsk_rng r = dsk_t_rng(4);
    const int T = 20, H = 2, Dqk = 6, Dv = 5;
    const int32_t cuv[4] = {0, 7, 7, 20}; /* sequences of 7, 0 and 13 tokens */
    dsk_tensor *q = dsk_t_new3(DSK_F32, T, H, Dqk), *k = dsk_t_new3(DSK_F32, T, H, Dqk);
    dsk_tensor *v = dsk_t_new3(DSK_F32, T, H, Dv), *cu = dsk_t_new(DSK_I32, 1, (int64_t[]){4});
    dsk_tensor *o1 = dsk_t_new3(DSK_F32, T, H, Dv), *o2 = dsk_t_new3(DSK_F32, T, H, Dv);
    memcpy(cu->data, cuv, sizeof cuv);
    dsk_t_fill_normal(q, &r, 1.0);
    dsk_t_fill_normal(k, &r, 1.0);
    dsk_t_fill_normal(v, &r, 1.0);
    dsk_t_poison(o1);
    dsk_t_poison(o2);
    dsk_mla_prefill_args a = {.q = q, .k = k, .v = v, .cu_seqlens = cu, .out = o1, .lse = NULL,
                              .softmax_scale = 0.3f};
    if (!DSK_T_OK(dsk_mla_prefill_ref(&a)))
        return;
    /* first token of each sequence: softmax over itself = its own v row, exactly */
    int first_ok = 1;
    for (int s = 0; s < 3; s++)
        if (cuv[s + 1] > cuv[s])
            for (int h = 0; h < H; h++)
                for (int c = 0; c < Dv; c++) {
                    int64_t i = ((int64_t)cuv[s] * H + h) * Dv + c;
                    first_ok &= dsk_t_get(o1, i) == dsk_t_get(v, i);
                }
    DSK_T_CHECK(first_ok, "prefill: the first token of a sequence must return its own v row");
    /* change k/v of tokens 12.. (sequence 2 from its 6th token): outputs before are unchanged,
     * sequence 0 entirely unchanged, token 12's output changes */
    for (int64_t i = 12 * H * Dqk; i < (int64_t)T * H * Dqk; i++)
        dsk_t_set(k, i, dsk_t_get(k, i) + 1.0);
    for (int64_t i = 12 * H * Dv; i < (int64_t)T * H * Dv; i++)
        dsk_t_set(v, i, -dsk_t_get(v, i));
    a.out = o2;
    if (!DSK_T_OK(dsk_mla_prefill_ref(&a)))
        return;
    int before_same = memcmp(o1->data, o2->data, sizeof(float) * 12 * H * Dv) == 0;
    int after_diff = memcmp((float *)o1->data + 12 * H * Dv, (float *)o2->data + 12 * H * Dv,
                            sizeof(float) * H * Dv) != 0;
    DSK_T_CHECK(before_same, "prefill: tokens before 12 changed when only tokens >= 12 changed");
    DSK_T_CHECK(after_diff, "prefill: token 12 did not change when its own k/v changed");
}

/* q as a strided view (a slice of a wider buffer) and a bf16 output. */
static void test_strided_and_bf16(void)
{
    dsk_rng r = dsk_t_rng(5);
    const int B = 2, H = 3, D = 16, dv = 12;
    dec d = dec_new(B, H, D, dv, 3, 1, DSK_F32);
    dsk_t_fill_normal(d.q, &r, 1.0);
    dsk_t_fill_normal(d.kv, &r, 1.0);
    ((int32_t *)d.bt->data)[0] = 2, ((int32_t *)d.bt->data)[1] = 0;
    ((int32_t *)d.sl->data)[0] = 64, ((int32_t *)d.sl->data)[1] = 37;
    if (!DSK_T_OK(dsk_mla_decode_ref(&d.a)))
        return;
    /* q inside a [B, H, 40] buffer at column 5 */
    dsk_tensor *wide = dsk_t_new3(DSK_F32, B, H, 40);
    dsk_t_fill_normal(wide, &r, 100.0);
    dsk_tensor qv = *wide;
    qv.shape[2] = D;
    qv.data = (float *)wide->data + 5;
    for (int64_t i = 0; i < (int64_t)B * H; i++)
        memcpy((float *)qv.data + i * 40, (float *)d.q->data + i * D, sizeof(float) * D);
    dsk_tensor *ob = dsk_t_new3(DSK_BF16, B, H, dv);
    dsk_t_poison(ob);
    dsk_mla_decode_args a2 = d.a;
    a2.q = &qv;
    a2.out = ob;
    a2.lse = NULL;
    if (!DSK_T_OK(dsk_mla_decode_ref(&a2)))
        return;
    int ok = 1;
    for (int64_t i = 0; i < (int64_t)B * H * dv; i++) {
        /* the bf16 output is the f32 output rounded to bf16 (f64 -> f32 -> bf16) */
        uint16_t want = dsk_f32_to_bf16(((float *)d.out->data)[i]);
        ok &= ((uint16_t *)ob->data)[i] == want;
    }
    DSK_T_CHECK(ok, "strided q + bf16 out: differs from contiguous q + f32 out rounded to bf16");
}

int main(void)
{
    test_softmax_scale();
    test_one_token();
    test_two_tokens_by_hand();
    test_absorbed_equals_nonabsorbed(0, 3, 4, 16, 8, 32, 12);
    test_absorbed_equals_nonabsorbed(1, 2, 2, 128, 64, 512, 128); /* V3's head dims */
    test_paging();
    test_prefill_causal();
    test_strided_and_bf16();
    return dsk_t_finish();
}
