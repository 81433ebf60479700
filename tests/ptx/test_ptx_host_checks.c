/* tests/ptx/test_ptx_host_checks.c: the FP8 GEMM host code (ptx/gemm_fp8_host.c) through a
 * recording driver table: every bad input is refused before any launch with a message naming
 * it (one check per case), and a good call launches once with the grid, block, dynamic shared
 * memory and parameters the plan and the shapes imply. No emulator or GPU needed. */
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "ptx/gemm_fp8_internal.h"
#include "ptx/gpu_driver.h"
#include "tests/harness/harness.h"

static int n_launch, n_load;
static dsk_gpu_launch last_cfg;
static uint32_t last_m, last_n, last_k, last_sa_ld, last_groups;
static void *last_tmapd;
/* tensor maps encoded since the last reset: rank, dtype and box of each */
static int n_maps, map_rank[8];
static dsk_tma_dtype map_dtype[8];
static uint32_t map_box[8][3];

static dsk_status f_load(void *c, const char *ptx, const char *nm, void **m)
{
    n_load++;
    *m = (void *)1;
    return DSK_OK;
}
static void f_unload(void *c, void *m) {}
static dsk_status f_fn(void *c, void *m, const char *k, void **fn)
{
    *fn = (void *)2;
    return DSK_OK;
}
static dsk_status f_alloc(void *c, size_t n, void **p)
{
    *p = calloc(1, n);
    return *p ? DSK_OK : DSK_ERR_OUT_OF_MEMORY;
}
static void f_free(void *c, void *p) { free(p); }
static dsk_status f_copy(void *c, void *d, const void *s, size_t n)
{
    memcpy(d, s, n);
    return DSK_OK;
}
static dsk_status f_launch(void *c, void *fn, const dsk_gpu_launch *cfg, void **params)
{
    n_launch++;
    last_cfg = *cfg;
    last_m = *(uint32_t *)params[6];
    last_n = *(uint32_t *)params[7];
    last_k = *(uint32_t *)params[8];
    last_sa_ld = *(uint32_t *)params[12];
    last_tmapd = *(void **)params[21];
    last_groups = *(uint32_t *)params[22];
    return DSK_OK;
}
static dsk_status f_tmap(void *c, dsk_tensor_map *m, dsk_tma_dtype dt, int rank, void *a, const uint64_t *d,
                         const uint64_t *s, const uint32_t *b, const uint32_t *e, dsk_tma_swizzle sw)
{
    memset(m, 0, sizeof *m);
    if (n_maps < 8) {
        map_rank[n_maps] = rank;
        map_dtype[n_maps] = dt;
        for (int i = 0; i < rank && i < 3; i++)
            map_box[n_maps][i] = b[i];
        n_maps++;
    }
    return DSK_OK;
}

static const dsk_gpu_driver rec = {.name = "recording", .module_load = f_load, .module_unload = f_unload,
                                   .function_get = f_fn, .mem_alloc = f_alloc, .mem_free = f_free,
                                   .copy_h2d = f_copy, .copy_d2h = f_copy, .launch = f_launch,
                                   .tensor_map_encode = f_tmap};

static dsk_device fake_dev(const char *arch, size_t smem)
{
    dsk_device d;
    memset(&d, 0, sizeof d);
    snprintf(d.props.name, sizeof d.props.name, "fake:%s", arch);
    snprintf(d.props.arch, sizeof d.props.arch, "%s", arch);
    d.props.num_sms = 132;
    d.props.smem_per_block = smem;
    d.props.host_memory = 1;
    return d;
}

typedef struct operands {
    dsk_tensor *a, *as, *b, *bs, *d, *mi;
    dsk_gemm_fp8_args args;
} operands;

static operands dense(int64_t M, int64_t N, int64_t K)
{
    operands o;
    o.a = dsk_t_new2(DSK_E4M3, M, K);
    o.as = dsk_t_new2(DSK_F32, M, (K + 127) / 128);
    o.b = dsk_t_new2(DSK_E4M3, N, K);
    o.bs = dsk_t_new2(DSK_F32, (N + 127) / 128, (K + 127) / 128);
    o.d = dsk_t_new2(DSK_BF16, M, N);
    o.mi = NULL;
    o.args = (dsk_gemm_fp8_args){.layout = DSK_GEMM_DENSE, .a = o.a, .a_scale = o.as, .b = o.b, .b_scale = o.bs,
                                 .d = o.d};
    return o;
}

int main(void)
{
    dsk_device h800 = fake_dev("sm_90a", 227 * 1024), ada = fake_dev("sm_89", 99 * 1024);
    dsk_gemm_tile t;
    if (!DSK_T_OK(dsk_gemm_tile_parse("gemm_fp8_sm90a_128x112_s4_c1", &t)))
        return dsk_t_finish();

    /* a good dense call: one launch, grid (ceil(M/128), ceil(N/112), 1), 384 threads, the plan's
     * dynamic shared memory; row-major a_scale converted to MN-major with M rounded up to 4 */
    operands o = dense(65, 576, 256);
    dsk_gemm_plan plan;
    DSK_T_OK(dsk_ptx_gemm_plan(&t, 0, &plan));
    n_launch = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &o.args));
    DSK_T_CHECK(n_launch == 1 && last_cfg.grid[0] == 1 && last_cfg.grid[1] == 6 && last_cfg.grid[2] == 1 &&
                    last_cfg.block[0] == 384 && last_cfg.dynamic_smem == plan.smem_dynamic_bytes,
                "launch %d: grid %u %u %u block %u smem %zu", n_launch, last_cfg.grid[0], last_cfg.grid[1],
                last_cfg.grid[2], last_cfg.block[0], last_cfg.dynamic_smem);
    DSK_T_CHECK(last_m == 65 && last_n == 576 && last_k == 256 && last_sa_ld == 68, "params m %u n %u k %u sa_ld %u",
                last_m, last_n, last_k, last_sa_ld);
    DSK_T_CHECK(!strcmp(dsk_device_last_kernel(&h800), "gemm_fp8_sm90a_128x112_s4_c1"), "last kernel '%s'",
                dsk_device_last_kernel(&h800));
    /* the module cache: a second call loads nothing */
    int loads = n_load;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &o.args));
    DSK_T_CHECK(n_load == loads && n_launch == 2, "second call loaded %d modules", n_load - loads);

    /* an MN-major a_scale with an aligned stride is used as given */
    float *mn = calloc(2 * 68, sizeof(float));
    dsk_tensor as_mn = dsk_tensor_2d(mn, DSK_F32, 65, 2);
    as_mn.stride[0] = 1;
    as_mn.stride[1] = 68;
    o.args.a_scale = &as_mn;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &o.args));
    DSK_T_CHECK(last_sa_ld == 68, "MN-major a_scale: sa_ld %u", last_sa_ld);
    /* ... and refused when its k-block stride is not a multiple of 4 */
    as_mn.stride[1] = 66;
    n_launch = 0;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &o.args), DSK_ERR_INVALID_ARG, "multiple of 4");
    o.args.a_scale = o.as;

    /* K not a multiple of 128 */
    operands k200 = dense(65, 576, 200);
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &k200.args), DSK_ERR_INVALID_ARG, "K % 128 == 0");
    /* a row stride that is not a multiple of 16 bytes */
    operands st = dense(8, 64, 128);
    uint8_t *araw = calloc(8 * 136, 1);
    dsk_tensor a_str = dsk_tensor_2d(araw, DSK_E4M3, 8, 128);
    a_str.stride[0] = 136;
    st.args.a = &a_str;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &st.args), DSK_ERR_INVALID_ARG, "multiples of 16 bytes");
    /* the tile's shared memory beyond the device's */
    dsk_gemm_tile big = t;
    big.stages = 6;
    dsk_device small = fake_dev("sm_90a", 100 * 1024);
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &small, &big, &o.args), DSK_ERR_UNSUPPORTED, "shared memory");
    /* a kernel for another arch */
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &ada, &t, &o.args), DSK_ERR_INVALID_ARG, "is for sm_90a");
    /* a kernel for another layout */
    dsk_gemm_tile tm = t;
    tm.layout = DSK_GEMM_MASKED;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tm, &o.args), DSK_ERR_INVALID_ARG, "layout");
    /* N beyond a tensor map's s32 coordinates (the data is never touched: the check comes first) */
    int64_t hugeN = (int64_t)1 << 31;
    dsk_tensor b_huge = dsk_tensor_2d(o.b->data, DSK_E4M3, hugeN, 256);
    dsk_tensor bs_huge = dsk_tensor_2d(o.bs->data, DSK_F32, hugeN / 128, 2);
    dsk_tensor d_huge = dsk_tensor_2d(o.d->data, DSK_BF16, 65, hugeN);
    dsk_gemm_fp8_args hv = o.args;
    hv.b = &b_huge;
    hv.b_scale = &bs_huge;
    hv.d = &d_huge;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &hv), DSK_ERR_INVALID_ARG, "tensor map");
    /* a grid beyond 65535 N blocks */
    int64_t wideN = (int64_t)65536 * 112;
    dsk_tensor b_w = dsk_tensor_2d(o.b->data, DSK_E4M3, wideN, 256), bs_w = dsk_tensor_2d(o.bs->data, DSK_F32, wideN / 128, 2);
    dsk_tensor d_w = dsk_tensor_2d(o.d->data, DSK_BF16, 65, wideN);
    hv.b = &b_w;
    hv.b_scale = &bs_w;
    hv.d = &d_w;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t, &hv), DSK_ERR_INVALID_ARG, "grid");
    DSK_T_CHECK(n_launch == 0, "%d launches happened for refused inputs", n_launch);

    /* contiguous layout: a group's segment that does not start at a multiple of BLOCK_M */
    dsk_gemm_tile tc = t;
    tc.layout = DSK_GEMM_CONTIGUOUS;
    dsk_tensor *ca = dsk_t_new2(DSK_E4M3, 256, 128), *cas = dsk_t_new2(DSK_F32, 256, 1);
    dsk_tensor *cb = dsk_t_new3(DSK_E4M3, 2, 112, 128), *cbs = dsk_t_new3(DSK_F32, 2, 1, 1);
    dsk_tensor *cd = dsk_t_new2(DSK_BF16, 256, 112), *cmi = dsk_t_new(DSK_I32, 1, (int64_t[]){256});
    for (int i = 0; i < 256; i++)
        dsk_t_set(cmi, i, i < 100 ? 0 : 1);  /* group 1 starts at row 100 */
    dsk_gemm_fp8_args ca_args = {.layout = DSK_GEMM_CONTIGUOUS, .a = ca, .a_scale = cas, .b = cb, .b_scale = cbs,
                                 .d = cd, .m_indices = cmi};
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tc, &ca_args), DSK_ERR_INVALID_ARG, "multiple of BLOCK_M");
    for (int i = 0; i < 256; i++)
        dsk_t_set(cmi, i, i < 100 ? 0 : i < 128 ? -1 : 1);  /* padded: fine */
    n_launch = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tc, &ca_args));
    DSK_T_CHECK(n_launch == 1 && last_cfg.grid[0] == 2, "contiguous launch %d grid %u", n_launch, last_cfg.grid[0]);
    dsk_t_set(cmi, 200, 2);  /* group 2 of 2 */
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tc, &ca_args), DSK_ERR_INVALID_ARG, "m_indices");

    /* persistent: min(tiles, SMs) CTAs along x; groups counted for masked */
    dsk_gemm_tile tp = t;
    tp.persistent = 1;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tp, &o.args));
    DSK_T_CHECK(last_cfg.grid[0] == 6 && last_cfg.grid[1] == 1 && last_cfg.grid[2] == 1 && last_groups == 1,
                "persistent, 6 tiles on 132 SMs: grid %u %u %u groups %u", last_cfg.grid[0], last_cfg.grid[1],
                last_cfg.grid[2], last_groups);
    dsk_device few = fake_dev("sm_90a", 227 * 1024);
    few.props.num_sms = 4;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &few, &tp, &o.args));
    DSK_T_CHECK(last_cfg.grid[0] == 4 && last_cfg.cluster[0] == 1, "persistent, 6 tiles on 4 SMs: grid %u",
                last_cfg.grid[0]);
    /* cluster 2: grid y padded to even, cluster (1, 2, 1), A's box half the tile */
    operands o5 = dense(65, 560, 256);  /* 5 N tiles of 112 */
    dsk_gemm_tile t2 = t;
    t2.cluster = 2;
    n_maps = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &t2, &o5.args));
    DSK_T_CHECK(last_cfg.grid[0] == 1 && last_cfg.grid[1] == 6 && last_cfg.cluster[0] == 1 &&
                    last_cfg.cluster[1] == 2 && last_cfg.cluster[2] == 1 && n_maps == 3 && map_box[0][1] == 64,
                "c2: grid %u %u cluster %u %u %u, %d maps, A box rows %u", last_cfg.grid[0], last_cfg.grid[1],
                last_cfg.cluster[0], last_cfg.cluster[1], last_cfg.cluster[2], n_maps, map_box[0][1]);
    /* persistent cluster 2 on 5 SMs: units = 1 x ceil(5 / 2) = 3, 2 cluster slots: grid 4 */
    t2.persistent = 1;
    few.props.num_sms = 5;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &few, &t2, &o5.args));
    DSK_T_CHECK(last_cfg.grid[0] == 4 && last_cfg.grid[1] == 1 && last_cfg.cluster[0] == 2 && last_cfg.cluster[1] == 1,
                "c2_p on 5 SMs: grid %u %u cluster %u %u", last_cfg.grid[0], last_cfg.grid[1], last_cfg.cluster[0],
                last_cfg.cluster[1]);
    /* TMA store: D's map (bf16, box {BLOCK_N, BLOCK_M}) passed as tmap_d; f32 D: none */
    dsk_gemm_tile ts = t;
    ts.tma_store = 1;
    n_maps = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &ts, &o.args));
    DSK_T_CHECK(n_maps == 4 && map_rank[3] == 2 && map_dtype[3] == DSK_TMA_BFLOAT16 && map_box[3][0] == 112 &&
                    map_box[3][1] == 128 && last_tmapd != NULL,
                "tmastore: %d maps, D rank %d box %u x %u, tmap_d %p", n_maps, map_rank[3], map_box[3][0],
                map_box[3][1], last_tmapd);
    dsk_tensor *d32 = dsk_t_new2(DSK_F32, 65, 576);
    dsk_gemm_fp8_args a32 = o.args;
    a32.d = d32;
    n_maps = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &ts, &a32));
    DSK_T_CHECK(n_maps == 3 && last_tmapd == NULL, "tmastore, f32 D: %d maps, tmap_d %p", n_maps, last_tmapd);
    /* ... and refused when D's rows are not 16-byte multiples */
    dsk_tensor d_odd = dsk_tensor_2d(o.d->data, DSK_BF16, 65, 570);
    operands o570 = dense(65, 570, 256);
    o570.args.d = &d_odd;
    n_launch = 0;
    DSK_T_ERR(dsk_ptx_gemm_fp8_launch(&rec, &h800, &ts, &o570.args), DSK_ERR_INVALID_ARG,
              "writes D through a TMA tensor map");
    DSK_T_CHECK(n_launch == 0, "a refused TMA-store call launched");
    /* masked TMA store: D's map is 3-D {N, max_m, G} with row boxes */
    dsk_gemm_tile tms = ts;
    tms.layout = DSK_GEMM_MASKED;
    dsk_tensor *ma = dsk_t_new3(DSK_E4M3, 2, 64, 128), *mas = dsk_t_new3(DSK_F32, 2, 64, 1);
    dsk_tensor *mb = dsk_t_new3(DSK_E4M3, 2, 112, 128), *mbs = dsk_t_new3(DSK_F32, 2, 1, 1);
    dsk_tensor *md = dsk_t_new3(DSK_BF16, 2, 64, 112), *mm = dsk_t_new(DSK_I32, 1, (int64_t[]){2});
    dsk_gemm_fp8_args m_args = {.layout = DSK_GEMM_MASKED, .a = ma, .a_scale = mas, .b = mb, .b_scale = mbs,
                                .d = md, .masked_m = mm};
    n_maps = 0;
    DSK_T_OK(dsk_ptx_gemm_fp8_launch(&rec, &h800, &tms, &m_args));
    DSK_T_CHECK(n_maps == 4 && map_rank[3] == 3 && map_box[3][0] == 112 && map_box[3][1] == 1 && last_groups == 2,
                "masked tmastore: D rank %d box %u x %u, groups %u", map_rank[3], map_box[3][0], map_box[3][1],
                last_groups);

    free(mn);
    free(araw);
    dsk_t_free_all();
    return dsk_t_finish();
}
