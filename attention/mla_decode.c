/* attention/mla_decode.c: MLA decode (weight-absorbed, paged latent cache): the argument
 * checks, the float64 reference and the dispatcher. The contract is in dsk/attention.h.
 * The V3 dimensions and the YaRN softmax scale helper live here too. */
#include <math.h>
#include <stdlib.h>
#include "core/backend.h"
#include "core/error.h"
#include "layers/op_args.h"

dsk_mla_config dsk_mla_config_v3(void)
{
    dsk_mla_config c = {
        .n_heads = 128,
        .q_lora_rank = 1536,
        .kv_lora_rank = 512,
        .qk_nope_head_dim = 128,
        .qk_rope_head_dim = 64,
        .v_head_dim = 128,
        .mscale_all_dim = 1.0f,
        .rope_factor = 40.0f,
    };
    return c;
}

float dsk_mla_softmax_scale(int qk_head_dim, float mscale_all_dim, float rope_factor)
{
    if (qk_head_dim <= 0)
        return NAN;
    double mscale = 1.0;
    if (rope_factor > 1.0f)
        mscale = 0.1 * (double)mscale_all_dim * log((double)rope_factor) + 1.0;
    return (float)(mscale * mscale / sqrt((double)qk_head_dim));
}

/* Index data: seq_lens in 1..max_pages*page_size and every page index that a sequence of
 * that length reads in [0, num_pages). Only called on host-readable tensors. */
static dsk_status check_decode_indices(const char *fn, const dsk_mla_decode_args *a)
{
    const int64_t B = a->q->shape[0], max_pages = a->block_table->shape[1];
    const int64_t num_pages = a->kv_cache->shape[0];
    const int64_t cap = max_pages * DSK_MLA_PAGE_SIZE;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = dsk_load_i32(a->seq_lens, b * a->seq_lens->stride[0]);
        if (len < 1 || len > cap)
            return dsk_fail(DSK_ERR_INVALID_ARG,
                            "%s: seq_lens[%lld] = %lld, expected 1..max_pages*page_size = 1..%lld",
                            fn, (long long)b, (long long)len, (long long)cap);
        int64_t pages = (len + DSK_MLA_PAGE_SIZE - 1) / DSK_MLA_PAGE_SIZE;
        for (int64_t p = 0; p < pages; p++) {
            int64_t pg = dsk_load_i32(a->block_table, dsk_off2(a->block_table, b, p));
            if (pg < 0 || pg >= num_pages)
                return dsk_fail(DSK_ERR_INVALID_ARG,
                                "%s: block_table[%lld, %lld] = %lld is outside the cache, expected "
                                "0..num_pages-1 = 0..%lld",
                                fn, (long long)b, (long long)p, (long long)pg,
                                (long long)num_pages - 1);
        }
    }
    return DSK_OK;
}

dsk_status dsk_mla_decode_check(const char *fn, const dsk_mla_decode_args *a)
{
    if (!fn)
        fn = "dsk_mla_decode";
    if (!a)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: args is NULL, expected a dsk_mla_decode_args", fn);
    DSK_TRY(dsk_op_tensor(fn, "q", a->q, 3, DSK_OP_FLOAT, "[B, H, D]"));
    const int64_t B = a->q->shape[0], H = a->q->shape[1], D = a->q->shape[2];
    if (a->dv < 1 || a->dv > D)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dv = %d, expected 1..D = 1..%lld (D = q.shape[2])",
                        fn, a->dv, (long long)D);
    DSK_TRY(dsk_op_tensor(fn, "kv_cache", a->kv_cache, 3, DSK_OP_FLOAT, "[num_pages, 64, D]"));
    const int64_t kv_want[3] = {a->kv_cache->shape[0], DSK_MLA_PAGE_SIZE, D};
    DSK_TRY(dsk_op_shape(fn, "kv_cache", a->kv_cache, kv_want, "[num_pages, page_size, D]"));
    DSK_TRY(dsk_op_tensor(fn, "block_table", a->block_table, 2, DSK_DT(DSK_I32), "[B, max_pages]"));
    const int64_t bt_want[2] = {B, a->block_table->shape[1]};
    DSK_TRY(dsk_op_shape(fn, "block_table", a->block_table, bt_want, "[B, max_pages]"));
    DSK_TRY(dsk_op_tensor(fn, "seq_lens", a->seq_lens, 1, DSK_DT(DSK_I32), "[B]"));
    const int64_t sl_want[1] = {B};
    DSK_TRY(dsk_op_shape(fn, "seq_lens", a->seq_lens, sl_want, "[B]"));
    DSK_TRY(dsk_op_tensor(fn, "out", a->out, 3, DSK_OP_FLOAT, "[B, H, dv]"));
    const int64_t out_want[3] = {B, H, a->dv};
    DSK_TRY(dsk_op_out_shape(fn, "out", a->out, out_want, "[B, H, dv]"));
    if (a->lse) {
        DSK_TRY(dsk_op_tensor(fn, "lse", a->lse, 2, DSK_DT(DSK_F32), "[B, H]"));
        const int64_t lse_want[2] = {B, H};
        DSK_TRY(dsk_op_out_shape(fn, "lse", a->lse, lse_want, "[B, H]"));
        DSK_TRY(dsk_op_no_overlap(fn, "lse", a->lse, "out", a->out));
    }
    if (!isfinite(a->softmax_scale) || !(a->softmax_scale > 0.0f))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: softmax_scale = %g, expected a finite value > 0",
                        fn, (double)a->softmax_scale);
    const char *in_names[4] = {"q", "kv_cache", "block_table", "seq_lens"};
    const dsk_tensor *ins[4] = {a->q, a->kv_cache, a->block_table, a->seq_lens};
    for (int i = 0; i < 4; i++) {
        DSK_TRY(dsk_op_no_overlap(fn, "out", a->out, in_names[i], ins[i]));
        DSK_TRY(dsk_op_no_overlap(fn, "lse", a->lse, in_names[i], ins[i]));
    }
    if (dsk_op_host_readable(a->block_table) && dsk_op_host_readable(a->seq_lens))
        DSK_TRY(check_decode_indices(fn, a));
    return DSK_OK;
}

dsk_status dsk_mla_decode_ref(const dsk_mla_decode_args *a)
{
    static const char fn[] = "dsk_mla_decode_ref";
    DSK_TRY(dsk_mla_decode_check(fn, a));
    DSK_TRY(dsk_op_host(fn, "q", a->q));
    DSK_TRY(dsk_op_host(fn, "kv_cache", a->kv_cache));
    DSK_TRY(dsk_op_host(fn, "block_table", a->block_table));
    DSK_TRY(dsk_op_host(fn, "seq_lens", a->seq_lens));
    DSK_TRY(dsk_op_host(fn, "out", a->out));
    DSK_TRY(dsk_op_host(fn, "lse", a->lse));

    const int64_t B = a->q->shape[0], H = a->q->shape[1], D = a->q->shape[2];
    const int64_t cap = a->block_table->shape[1] * DSK_MLA_PAGE_SIZE;
    const double scale = a->softmax_scale;
    const dsk_tensor *kv = a->kv_cache;
    double *s = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *s);
    double *o = malloc((size_t)a->dv * sizeof *o);
    if (!s || !o) {
        free(s);
        free(o);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld scores", fn,
                        (long long)cap);
    }
    for (int64_t b = 0; b < B; b++) {
        const int64_t n = dsk_load_i32(a->seq_lens, b * a->seq_lens->stride[0]);
        for (int64_t h = 0; h < H; h++) {
            /* scores s_j = scale * q . kv_row(j) over all D columns (latent + rope) */
            double m = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                int64_t page = dsk_load_i32(a->block_table,
                                             dsk_off2(a->block_table, b, j / DSK_MLA_PAGE_SIZE));
                double dot = 0.0;
                for (int64_t d = 0; d < D; d++)
                    dot += dsk_load(a->q, dsk_off3(a->q, b, h, d)) *
                           dsk_load(kv, dsk_off3(kv, page, j % DSK_MLA_PAGE_SIZE, d));
                s[j] = scale * dot;
                if (s[j] > m)
                    m = s[j];
            }
            /* softmax-weighted sum of the latent columns [0, dv): the latent is V */
            double l = 0.0;
            for (int64_t c = 0; c < a->dv; c++)
                o[c] = 0.0;
            for (int64_t j = 0; j < n; j++) {
                int64_t page = dsk_load_i32(a->block_table,
                                             dsk_off2(a->block_table, b, j / DSK_MLA_PAGE_SIZE));
                double p = exp(s[j] - m);
                l += p;
                for (int64_t c = 0; c < a->dv; c++)
                    o[c] += p * dsk_load(kv, dsk_off3(kv, page, j % DSK_MLA_PAGE_SIZE, c));
            }
            for (int64_t c = 0; c < a->dv; c++)
                dsk_store(a->out, dsk_off3(a->out, b, h, c), o[c] / l);
            if (a->lse)
                dsk_store(a->lse, dsk_off2(a->lse, b, h), m + log(l));
        }
    }
    free(s);
    free(o);
    return DSK_OK;
}

dsk_status dsk_mla_decode(dsk_device *dev, const dsk_mla_decode_args *a)
{
    static const char fn[] = "dsk_mla_decode";
    DSK_TRY(dsk_op_device_arg(fn, dev));
    DSK_TRY(dsk_mla_decode_check(fn, a));
    DSK_TRY(dsk_op_on_device(fn, "q", a->q, dev));
    DSK_TRY(dsk_op_on_device(fn, "kv_cache", a->kv_cache, dev));
    DSK_TRY(dsk_op_on_device(fn, "block_table", a->block_table, dev));
    DSK_TRY(dsk_op_on_device(fn, "seq_lens", a->seq_lens, dev));
    DSK_TRY(dsk_op_on_device(fn, "out", a->out, dev));
    DSK_TRY(dsk_op_on_device(fn, "lse", a->lse, dev));
    dsk_device *rd = dsk_op_device(dev, dev->backend->mla_decode != NULL, fn);
    if (!rd)
        return DSK_ERR_UNSUPPORTED;
    if (!rd->backend->mla_decode) { /* a fallback device without the entry either */
        dsk_unsupported_op(rd, fn);
        return DSK_ERR_UNSUPPORTED;
    }
    return rd->backend->mla_decode(rd, a);
}
