/* bench/bench_gemm.c: DeepSeek-V3's GEMM shapes (N x K, nn.Linear layout) at M = 1, 4,
 * 16, 64, 512, 2048: dsk's FP8 block-scaled GEMM (bf16 output) against oneDNN's matmul
 * with bf16 and with f32 weights on the same shape, in the same run. oneDNN gets its
 * preferred weight layout (format_tag any, reordered once at setup, not timed), as dsk
 * gets its FP8 weights as stored. Bytes counted: weights + activations + output.
 *
 * Cold weights: each fixture holds enough copies of the weights to exceed twice the
 * last-level cache and every iteration uses the next copy, so weights come from memory
 * as they do in a model whose layers do not fit in cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/topo.h"
#include "dsk/dsk.h"

#ifdef DSK_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

typedef enum impl { IMPL_DSK_FP8, IMPL_DNNL_BF16, IMPL_DNNL_F32 } impl;
static const char *impl_name[] = {"dsk_fp8", "onednn_bf16", "onednn_f32"};

typedef struct gemm_shape { int64_t N, K; const char *role; } gemm_shape;
static const gemm_shape shapes[] = {
    {2112, 7168, "q_a+kv_a"}, {24576, 1536, "q_b"},  {32768, 512, "kv_b"},
    {7168, 16384, "o_proj"},  {4096, 7168, "expert gate+up"}, {7168, 2048, "expert down"},
    {18432, 7168, "dense gate+up"}, {7168, 18432, "dense down"},
};
static const int64_t Ms[] = {1, 4, 16, 64, 512, 2048};

typedef struct gemm_params { int64_t M, N, K; impl im; } gemm_params;

#define MAX_COPIES 16

/* Copies of a weight of `bytes` that together exceed twice the last-level cache. */
static int weight_copies(double bytes)
{
    static size_t l3;
    if (!l3) {
        dsk_topo_info t;
        l3 = dsk_topo_query(&t) == DSK_OK && t.l3 ? t.l3 : (size_t)32 << 20;
    }
    int n = (int)(2.0 * (double)l3 / bytes) + 1;
    return n < 1 ? 1 : n > MAX_COPIES ? MAX_COPIES : n;
}
static gemm_params params[sizeof shapes / sizeof shapes[0]][6][3];

/* ---- dsk FP8 ---- */
typedef struct dsk_fix {
    dsk_device *dev;
    void *a, *as, *b[MAX_COPIES], *bs, *d;
    dsk_tensor ta, tas, tb[MAX_COPIES], tbs, td;
    dsk_gemm_fp8_args args[MAX_COPIES];
    int copies;
} dsk_fix;

static void dsk_teardown(void *f)
{
    dsk_fix *x = f;
    dsk_bench_free(x->a);
    dsk_bench_free(x->as);
    for (int i = 0; i < MAX_COPIES; i++) dsk_bench_free(x->b[i]);
    dsk_bench_free(x->bs);
    dsk_bench_free(x->d);
    if (x->dev) dsk_device_close(x->dev);
    free(x);
}

static void *dsk_setup(const void *pp, char *err, size_t len)
{
    const gemm_params *p = pp;
    dsk_fix *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    int64_t KB = (p->K + 127) / 128, NB = (p->N + 127) / 128;
    x->a = dsk_bench_alloc((size_t)(p->M * p->K));
    x->as = dsk_bench_alloc(sizeof(float) * (size_t)(p->M * KB));
    x->copies = weight_copies((double)p->N * p->K);
    int ok = 1;
    for (int i = 0; i < x->copies; i++) ok &= (x->b[i] = dsk_bench_alloc((size_t)(p->N * p->K))) != NULL;
    x->bs = dsk_bench_alloc(sizeof(float) * (size_t)(NB * KB));
    x->d = dsk_bench_alloc(2 * (size_t)(p->M * p->N));
    if (!ok || !x->a || !x->as || !x->bs || !x->d || dsk_device_open("cpu", &x->dev) != DSK_OK) {
        snprintf(err, len, "setup: %s", dsk_last_error()[0] ? dsk_last_error() : "out of memory");
        dsk_teardown(x);
        return NULL;
    }
    dsk_bench_fill_e4m3(x->a, (size_t)(p->M * p->K), 1);
    for (int i = 0; i < x->copies; i++) dsk_bench_fill_e4m3(x->b[i], (size_t)(p->N * p->K), 2 + (unsigned)i);
    dsk_bench_fill_f32(x->as, (size_t)(p->M * KB), 3, 0.001f, 0.002f);
    dsk_bench_fill_f32(x->bs, (size_t)(NB * KB), 4, 0.001f, 0.002f);
    x->ta = dsk_tensor_2d(x->a, DSK_E4M3, p->M, p->K);
    x->tas = dsk_tensor_2d(x->as, DSK_F32, p->M, KB);
    x->tbs = dsk_tensor_2d(x->bs, DSK_F32, NB, KB);
    x->td = dsk_tensor_2d(x->d, DSK_BF16, p->M, p->N);
    for (int i = 0; i < x->copies; i++) {
        x->tb[i] = dsk_tensor_2d(x->b[i], DSK_E4M3, p->N, p->K);
        x->args[i] = (dsk_gemm_fp8_args){DSK_GEMM_DENSE, &x->ta, &x->tas, &x->tb[i], &x->tbs, &x->td, NULL, NULL};
    }
    return x;
}

static void dsk_run(dsk_bench_state *st, void *f)
{
    dsk_fix *x = f;
    if (dsk_gemm_fp8(x->dev, &x->args[0]) != DSK_OK) {
        dsk_bench_fail(st, dsk_last_error());
        while (dsk_bench_next(st)) {}
        return;
    }
    dsk_bench_label(st, dsk_device_last_kernel(x->dev));
    int i = 0;
    while (dsk_bench_next(st)) {
        dsk_gemm_fp8(x->dev, &x->args[i]);
        i = i + 1 == x->copies ? 0 : i + 1;
    }
}

/* ---- oneDNN ---- */
#ifdef DSK_HAVE_DNNL
typedef struct dnnl_fix {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wts[MAX_COPIES], dst;
    int copies;
    char impl[128];
} dnnl_fix;

static void dnnl_teardown(void *f)
{
    dnnl_fix *x = f;
    if (x->prim) dnnl_primitive_destroy(x->prim);
    if (x->src) dnnl_memory_destroy(x->src);
    for (int i = 0; i < MAX_COPIES; i++)
        if (x->wts[i]) dnnl_memory_destroy(x->wts[i]);
    if (x->dst) dnnl_memory_destroy(x->dst);
    if (x->strm) dnnl_stream_destroy(x->strm);
    if (x->eng) dnnl_engine_destroy(x->eng);
    free(x);
}

#define DNNL_CK(call)                                                                        \
    do {                                                                                     \
        dnnl_status_t s_ = (call);                                                           \
        if (s_ != dnnl_success) {                                                            \
            snprintf(err, len, "oneDNN: %s failed (status %d) at %s:%d", #call, (int)s_, __FILE__, __LINE__); \
            goto fail;                                                                       \
        }                                                                                    \
    } while (0)

static void *dnnl_setup(const void *pp, char *err, size_t len)
{
    const gemm_params *p = pp;
    dnnl_fix *x = calloc(1, sizeof *x);
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t wuser = NULL;
    if (!x) return NULL;
    dnnl_data_type_t dt = p->im == IMPL_DNNL_F32 ? dnnl_f32 : dnnl_bf16;
    size_t es = dt == dnnl_f32 ? 4 : 2;
    dnnl_dims_t sd = {p->M, p->K}, wd = {p->K, p->N}, dd = {p->M, p->N};
    dnnl_memory_desc_t smd, wmd, wumd, dmd;
    DNNL_CK(dnnl_engine_create(&x->eng, dnnl_cpu, 0));
    DNNL_CK(dnnl_stream_create(&x->strm, x->eng, dnnl_stream_default_flags));
    DNNL_CK(dnnl_memory_desc_init_by_tag(&smd, 2, sd, dt, dnnl_ab));
    DNNL_CK(dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dt, dnnl_format_tag_any));
    DNNL_CK(dnnl_memory_desc_init_by_tag(&wumd, 2, wd, dt, dnnl_ba));   /* stored [N, K] */
    DNNL_CK(dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dt, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_CK(dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd));
    if (dnnl_primitive_desc_create(&pd, &md, NULL, x->eng, NULL) != dnnl_success) {
        /* oneDNN 2.6 has bf16 matmul only on CPUs with AVX-512 (avx512_core and up) */
        snprintf(err, len, "oneDNN: no %s matmul implementation for this shape on this CPU "
                 "(dnnl_primitive_desc_create failed)", dt == dnnl_f32 ? "f32" : "bf16");
        goto fail;
    }
    const char *impl = NULL;
    DNNL_CK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(x->impl, sizeof x->impl, "onednn %s", impl ? impl : "?");
    const dnnl_memory_desc_t *wpref = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    DNNL_CK(dnnl_primitive_create(&x->prim, pd));
    DNNL_CK(dnnl_memory_create(&x->src, &smd, x->eng, DNNL_MEMORY_ALLOCATE));
    DNNL_CK(dnnl_memory_create(&x->dst, &dmd, x->eng, DNNL_MEMORY_ALLOCATE));
    x->copies = weight_copies((double)p->N * p->K * (double)es);
    for (int i = 0; i < x->copies; i++) DNNL_CK(dnnl_memory_create(&x->wts[i], wpref, x->eng, DNNL_MEMORY_ALLOCATE));
    DNNL_CK(dnnl_memory_create(&wuser, &wumd, x->eng, DNNL_MEMORY_ALLOCATE));
    void *h;
    DNNL_CK(dnnl_memory_get_data_handle(x->src, &h));
    if (es == 2) dsk_bench_fill_bf16(h, (size_t)(p->M * p->K), 1);
    else dsk_bench_fill_f32(h, (size_t)(p->M * p->K), 1, -1, 1);
    DNNL_CK(dnnl_memory_get_data_handle(wuser, &h));
    if (es == 2) dsk_bench_fill_bf16(h, (size_t)(p->N * p->K), 2);
    else dsk_bench_fill_f32(h, (size_t)(p->N * p->K), 2, -1, 1);
    DNNL_CK(dnnl_reorder_primitive_desc_create(&rpd, &wumd, x->eng, wpref, x->eng, NULL));
    DNNL_CK(dnnl_primitive_create(&reorder, rpd));
    for (int i = 0; i < x->copies; i++) {
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, x->wts[i]}};
        DNNL_CK(dnnl_primitive_execute(reorder, x->strm, 2, rargs));
        DNNL_CK(dnnl_stream_wait(x->strm));
    }
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(wuser);
    dnnl_primitive_desc_destroy(pd);
    return x;
fail:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (wuser) dnnl_memory_destroy(wuser);
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_teardown(x);
    return NULL;
}

static void dnnl_run(dsk_bench_state *st, void *f)
{
    dnnl_fix *x = f;
    dsk_bench_label(st, x->impl);
    int i = 0;
    while (dsk_bench_next(st)) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, x->src}, {DNNL_ARG_WEIGHTS, x->wts[i]}, {DNNL_ARG_DST, x->dst}};
        dnnl_primitive_execute(x->prim, x->strm, 3, args);
        dnnl_stream_wait(x->strm);
        i = i + 1 == x->copies ? 0 : i + 1;
    }
}
#endif

void dsk_bench_register_gemm(void)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int mi = 0; mi < 6; mi++)
            for (int im = 0; im < 3; im++) {
                gemm_params *p = &params[s][mi][im];
                *p = (gemm_params){Ms[mi], shapes[s].N, shapes[s].K, (impl)im};
                dsk_bench b = {0};
                snprintf(b.name, sizeof b.name, "gemm/%lldx%lld/M=%lld/%s", (long long)p->N, (long long)p->K,
                         (long long)p->M, impl_name[im]);
                b.params = p;
                double wbytes = im == IMPL_DSK_FP8 ? 1 : im == IMPL_DNNL_BF16 ? 2 : 4;
                double abytes = wbytes, obytes = im == IMPL_DNNL_F32 ? 4 : 2;
                b.bytes = (double)p->N * p->K * wbytes + (double)p->M * p->K * abytes + (double)p->M * p->N * obytes;
                b.flops = 2.0 * (double)p->M * p->N * p->K;
                b.peak = im == IMPL_DNNL_F32 ? DSK_PEAK_F32 : DSK_PEAK_BF16;
                if (im == IMPL_DSK_FP8) {
                    b.setup = dsk_setup;
                    b.teardown = dsk_teardown;
                    b.run = dsk_run;
                } else {
#ifdef DSK_HAVE_DNNL
                    b.setup = dnnl_setup;
                    b.teardown = dnnl_teardown;
                    b.run = dnnl_run;
#else
                    continue;   /* built without oneDNN: no peer rows */
#endif
                }
                dsk_bench_register(&b);
            }
}
