/* bench/bench_mla.c: MLA decode (absorbed form, paged bf16 latent cache of 576 = 512 +
 * 64 per token) at batch 1..32 and context 1k..8k, 128 heads (V3 on one device) and 16
 * heads (V3 split 8-way by tensor parallelism). Bytes counted: the latent cache read
 * once per sequence (all heads share it), q and out. */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "dsk/dsk.h"

#define D 576
#define DV 512

typedef struct mla_params { int B, ctx, H; } mla_params;
static const int batches[] = {1, 4, 8, 16, 32};
static const int ctxs[] = {1024, 2048, 4096, 8192};
static const int heads[] = {128, 16};
static mla_params params[2][5][4];

typedef struct mla_fix {
    dsk_device *dev;
    void *q, *kv, *bt, *sl, *out;
    dsk_tensor tq, tkv, tbt, tsl, tout;
    dsk_mla_decode_args args;
} mla_fix;

static void mla_teardown(void *f)
{
    mla_fix *x = f;
    dsk_bench_free(x->q);
    dsk_bench_free(x->kv);
    dsk_bench_free(x->bt);
    dsk_bench_free(x->sl);
    dsk_bench_free(x->out);
    if (x->dev) dsk_device_close(x->dev);
    free(x);
}

static void *mla_setup(const void *pp, char *err, size_t len)
{
    const mla_params *p = pp;
    mla_fix *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    int pages_per = (p->ctx + DSK_MLA_PAGE_SIZE - 1) / DSK_MLA_PAGE_SIZE, pages = pages_per * p->B;
    x->q = dsk_bench_alloc(2 * (size_t)p->B * p->H * D);
    x->kv = dsk_bench_alloc(2 * (size_t)pages * DSK_MLA_PAGE_SIZE * D);
    x->bt = dsk_bench_alloc(4 * (size_t)pages);
    x->sl = dsk_bench_alloc(4 * (size_t)p->B);
    x->out = dsk_bench_alloc(2 * (size_t)p->B * p->H * DV);
    if (!x->q || !x->kv || !x->bt || !x->sl || !x->out || dsk_device_open("cpu", &x->dev) != DSK_OK) {
        snprintf(err, len, "setup: out of memory");
        mla_teardown(x);
        return NULL;
    }
    dsk_bench_fill_bf16(x->q, (size_t)p->B * p->H * D, 1);
    dsk_bench_fill_bf16(x->kv, (size_t)pages * DSK_MLA_PAGE_SIZE * D, 2);
    /* pages of all sequences interleaved, as a paged allocator hands them out */
    for (int b = 0; b < p->B; b++) {
        ((int32_t *)x->sl)[b] = p->ctx;
        for (int i = 0; i < pages_per; i++) ((int32_t *)x->bt)[b * pages_per + i] = i * p->B + b;
    }
    x->tq = dsk_tensor_3d(x->q, DSK_BF16, p->B, p->H, D);
    x->tkv = dsk_tensor_3d(x->kv, DSK_BF16, pages, DSK_MLA_PAGE_SIZE, D);
    x->tbt = dsk_tensor_2d(x->bt, DSK_I32, p->B, pages_per);
    x->tsl = dsk_tensor_1d(x->sl, DSK_I32, p->B);
    x->tout = dsk_tensor_3d(x->out, DSK_BF16, p->B, p->H, DV);
    x->args = (dsk_mla_decode_args){&x->tq, &x->tkv, &x->tbt, &x->tsl, &x->tout, NULL, DV,
                                    dsk_mla_softmax_scale(192, 1.0f, 40.0f)};
    return x;
}

static void mla_run(dsk_bench_state *st, void *f)
{
    mla_fix *x = f;
    if (dsk_mla_decode(x->dev, &x->args) != DSK_OK) {
        dsk_bench_fail(st, dsk_last_error());
        while (dsk_bench_next(st)) {}
        return;
    }
    dsk_bench_label(st, dsk_device_last_kernel(x->dev));
    while (dsk_bench_next(st)) dsk_mla_decode(x->dev, &x->args);
}

void dsk_bench_register_mla(void)
{
    for (int h = 0; h < 2; h++)
        for (int bi = 0; bi < 5; bi++)
            for (int ci = 0; ci < 4; ci++) {
                mla_params *p = &params[h][bi][ci];
                *p = (mla_params){batches[bi], ctxs[ci], heads[h]};
                dsk_bench b = {0};
                snprintf(b.name, sizeof b.name, "mla_decode/h%d/b%d/ctx%d", p->H, p->B, p->ctx);
                b.params = p;
                b.bytes = 2.0 * p->B * ((double)p->ctx * D + (double)p->H * (D + DV));
                b.flops = 2.0 * p->B * p->H * (double)p->ctx * (D + DV);
                b.peak = DSK_PEAK_BF16;
                b.setup = mla_setup;
                b.teardown = mla_teardown;
                b.run = mla_run;
                dsk_bench_register(&b);
            }
}
