/* bench/bench_moe.c: MoE routing (V3: 256 experts, 8 groups, top-4 groups, top-8) and
 * permute (gather 7168-wide bf16 token rows into expert-contiguous rows) at 1..4096
 * tokens. Bytes counted: routing reads the logits and writes the choices; permute reads
 * each token once and writes each of its 8 copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "dsk/dsk.h"

#define E 256
#define TOPK 8
#define HD 7168

static const int tokens[] = {1, 16, 256, 1024, 4096};
typedef struct moe_params { int T, permute; } moe_params;
static moe_params params[2][5];

typedef struct moe_fix {
    dsk_device *dev;
    void *logits, *bias, *idx, *w, *x, *xp, *mi, *rm, *off;
    dsk_tensor tl, tb, ti, tw, tx, txp, tmi, trm, toff;
    dsk_moe_route_args route;
    dsk_moe_permute_args perm;
} moe_fix;

static void moe_teardown(void *f)
{
    moe_fix *x = f;
    void *bufs[] = {x->logits, x->bias, x->idx, x->w, x->x, x->xp, x->mi, x->rm, x->off};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dsk_bench_free(bufs[i]);
    if (x->dev) dsk_device_close(x->dev);
    free(x);
}

static void *moe_setup(const void *pp, char *err, size_t len)
{
    const moe_params *p = pp;
    moe_fix *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    int64_t T = p->T, P = dsk_moe_permute_rows(T, TOPK, E, 1);
    x->logits = dsk_bench_alloc(4 * (size_t)T * E);
    x->bias = dsk_bench_alloc(4 * E);
    x->idx = dsk_bench_alloc(4 * (size_t)T * TOPK);
    x->w = dsk_bench_alloc(4 * (size_t)T * TOPK);
    x->rm = dsk_bench_alloc(4 * (size_t)T * TOPK);
    x->mi = dsk_bench_alloc(4 * (size_t)P);
    x->off = dsk_bench_alloc(4 * (E + 1));
    x->x = p->permute ? dsk_bench_alloc(2 * (size_t)T * HD) : NULL;
    x->xp = p->permute ? dsk_bench_alloc(2 * (size_t)P * HD) : NULL;
    if (!x->logits || !x->bias || !x->idx || !x->w || !x->rm || !x->mi || !x->off || (p->permute && (!x->x || !x->xp)) ||
        dsk_device_open("cpu", &x->dev) != DSK_OK) {
        snprintf(err, len, "setup: out of memory");
        moe_teardown(x);
        return NULL;
    }
    dsk_bench_fill_f32(x->logits, (size_t)T * E, 1, -4, 4);
    dsk_bench_fill_f32(x->bias, E, 2, -0.1f, 0.1f);
    x->tl = dsk_tensor_2d(x->logits, DSK_F32, T, E);
    x->tb = dsk_tensor_1d(x->bias, DSK_F32, E);
    x->ti = dsk_tensor_2d(x->idx, DSK_I32, T, TOPK);
    x->tw = dsk_tensor_2d(x->w, DSK_F32, T, TOPK);
    x->route = (dsk_moe_route_args){&x->tl, &x->tb, &x->ti, &x->tw, dsk_moe_route_params_v3()};
    if (dsk_moe_route(x->dev, &x->route) != DSK_OK) {
        snprintf(err, len, "setup: %s", dsk_last_error());
        moe_teardown(x);
        return NULL;
    }
    if (p->permute) {
        dsk_bench_fill_bf16(x->x, (size_t)T * HD, 3);
        x->tx = dsk_tensor_2d(x->x, DSK_BF16, T, HD);
        x->txp = dsk_tensor_2d(x->xp, DSK_BF16, P, HD);
        x->tmi = dsk_tensor_1d(x->mi, DSK_I32, P);
        x->trm = dsk_tensor_2d(x->rm, DSK_I32, T, TOPK);
        x->toff = dsk_tensor_1d(x->off, DSK_I32, E + 1);
        x->perm = (dsk_moe_permute_args){&x->tx, &x->ti, E, 1, &x->txp, &x->tmi, &x->trm, &x->toff};
    }
    return x;
}

static void moe_run(dsk_bench_state *st, void *f)
{
    moe_fix *x = f;
    int permute = x->x != NULL;
    dsk_status s = permute ? dsk_moe_permute(x->dev, &x->perm) : dsk_moe_route(x->dev, &x->route);
    if (s != DSK_OK) {
        dsk_bench_fail(st, dsk_last_error());
        while (dsk_bench_next(st)) {}
        return;
    }
    dsk_bench_label(st, dsk_device_last_kernel(x->dev));
    if (permute)
        while (dsk_bench_next(st)) dsk_moe_permute(x->dev, &x->perm);
    else
        while (dsk_bench_next(st)) dsk_moe_route(x->dev, &x->route);
}

void dsk_bench_register_moe(void)
{
    for (int pm = 0; pm < 2; pm++)
        for (int ti = 0; ti < 5; ti++) {
            moe_params *p = &params[pm][ti];
            *p = (moe_params){tokens[ti], pm};
            dsk_bench b = {0};
            snprintf(b.name, sizeof b.name, "%s/t%d", pm ? "moe_permute" : "moe_route", p->T);
            b.params = p;
            b.bytes = pm ? 2.0 * p->T * HD * (1 + TOPK) : 4.0 * p->T * (E + 2 * TOPK);
            b.peak = DSK_PEAK_F32;
            b.setup = moe_setup;
            b.teardown = moe_teardown;
            b.run = moe_run;
            dsk_bench_register(&b);
        }
}
