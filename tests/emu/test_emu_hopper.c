/* tests/emu/test_emu_hopper.c: the sm_90a machinery the Hopper GEMM uses, in hand-written
 * PTX: mbarrier expect_tx / try_wait.parity, cp.async.bulk.tensor 2D/3D loads with every
 * swizzle mode and out-of-bounds zero fill, tensor stores, clusters (multicast, mapa,
 * barrier.cluster), and wgmma fed by TMA the DeepGEMM way (K-major 128B swizzle, e4m3,
 * every legal N) and with A from registers and an N-major bf16 B (imm-scale, trans-b,
 * two commit groups). Expected values come from C loops over the same inputs; the swizzle
 * expectation is written from the CUDA docs' description (the 16-byte chunk index within
 * a 128-byte line XOR (line index mod 8 / 4 / 2) for 128/64/32B). */
#include <math.h>
#include "emu_test_util.h"

static const char *HDR = ".version 8.0\n.target sm_90a\n.address_size 64\n";

/* ---- TMA loads ------------------------------------------------------------------------ */

static char *tma_load_kernel(int rank)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry tma_load(.param .align 64 .b8 tmap[128], .param .u64 out, .param .u32 c0,\n"
                  "    .param .u32 c1, .param .u32 c2, .param .u32 nbytes)\n{\n"
                  "  .reg .b32 %%r<24>;\n  .reg .b64 %%rd<12>;\n  .reg .pred %%p<4>;\n"
                  "  .shared .align 1024 .b8 smem[32768];\n  .shared .align 8 .b64 bar;\n"
                  "  mov.u32 %%r1, %%tid.x;\n  setp.eq.u32 %%p1, %%r1, 0;\n"
                  "  mov.u32 %%r2, bar;\n  mov.u32 %%r3, smem;\n"
                  "  @%%p1 mbarrier.init.shared::cta.b64 [%%r2], 1;\n"
                  "  fence.mbarrier_init.release.cluster;\n  bar.sync 0;\n"
                  "  ld.param.u32 %%r4, [c0];\n  ld.param.u32 %%r5, [c1];\n  ld.param.u32 %%r14, [c2];\n"
                  "  ld.param.u32 %%r6, [nbytes];\n"
                  "  mov.u64 %%rd1, tmap;\n  cvta.param.u64 %%rd1, %%rd1;\n"
                  "  @%%p1 mbarrier.arrive.expect_tx.shared::cta.b64 %%rd2, [%%r2], %%r6;\n");
    if (rank == 2)
        emu_t_add(&b, "  @%%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r3], [%%rd1, {%%r4, %%r5}], [%%r2];\n");
    else
        emu_t_add(&b, "  @%%p1 cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r3], [%%rd1, {%%r4, %%r5, %%r14}], [%%r2];\n");
    emu_t_add(&b, "WAIT:\n  mbarrier.try_wait.parity.shared::cta.b64 %%p2, [%%r2], 0;\n  @!%%p2 bra WAIT;\n"
                  "  ld.param.u64 %%rd3, [out];\n  mov.u32 %%r7, %%r1;\n"
                  "LOOP:\n  shl.b32 %%r8, %%r7, 4;\n  setp.ge.u32 %%p3, %%r8, %%r6;\n  @%%p3 bra DONE;\n"
                  "  add.u32 %%r9, %%r3, %%r8;\n  ld.shared.v4.u32 {%%r10, %%r11, %%r12, %%r13}, [%%r9];\n"
                  "  cvt.u64.u32 %%rd4, %%r8;\n  add.u64 %%rd5, %%rd3, %%rd4;\n"
                  "  st.global.v4.u32 [%%rd5], {%%r10, %%r11, %%r12, %%r13};\n"
                  "  add.u32 %%r7, %%r7, 128;\n  bra LOOP;\nDONE:\n  ret;\n}\n");
    return b.s;
}

/* The chunk-XOR swizzle (CUDA programming guide, TMA swizzle modes): within each 128-byte
 * line of shared memory, 16-byte chunk c is stored at chunk c ^ ((line / d) % 8 ...), with
 * the line-index bits taken from address bits 7.. : 128B: bits 7-9, 64B: 7-8, 32B: bit 7. */
static size_t swz(size_t off, int sw)
{
    size_t line = off >> 7, mask = sw == 3 ? 7 : sw == 2 ? 3 : sw == 1 ? 1 : 0;
    size_t chunk = (off >> 4) & 7;
    return (off & ~(size_t)0x70) | (((chunk ^ (line & mask)) & 7) << 4);
}

static void test_tma_load2d(void)
{
    char *ptx = tma_load_kernel(2);
    dsk_emu_module *m = emu_t_load(ptx, "tma_load2d.ptx");
    free(ptx);
    if (!m) return;
    const int R = 100, C = 300;  /* bytes per row 300: ragged against every box */
    uint8_t *g = emu_t_buf((size_t)R * 304);
    dsk_rng rng = dsk_t_rng(10);
    for (int i = 0; i < R * 304; i++) g[i] = (uint8_t)dsk_rng_u64(&rng);
    uint8_t *out = emu_t_buf(32768);
    struct { int sw; uint32_t bw, bh; int c0, c1; dsk_tma_dtype dt; } cases[] = {
        {3, 128, 64, 0, 0, DSK_TMA_UINT8},   {3, 128, 64, 256, 80, DSK_TMA_UINT8}, /* both edges OOB */
        {2, 64, 32, 16, 7, DSK_TMA_UINT8},   {1, 32, 16, -8, -3, DSK_TMA_UINT8},   /* negative: OOB */
        {0, 16, 8, 5, 2, DSK_TMA_UINT8},     {3, 64, 40, 10, 30, DSK_TMA_BFLOAT16},
        {2, 32, 24, 100, 90, DSK_TMA_FLOAT16}, {0, 48, 12, 3, 1, DSK_TMA_UINT16}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int es = cases[ci].dt == DSK_TMA_UINT8 ? 1 : 2;
        uint64_t dims[2] = {(uint64_t)(C / es), (uint64_t)R}, strides[1] = {304};
        uint32_t box[2] = {cases[ci].bw, cases[ci].bh};
        dsk_tensor_map map;
        if (!DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&map, cases[ci].dt, 2, g, dims, strides, box, NULL,
                                                       (dsk_tma_swizzle)cases[ci].sw)))
            continue;
        uint32_t bytes = box[0] * box[1] * (uint32_t)es;
        memset(out, 0xEE, 32768);
        int32_t c0 = cases[ci].c0, c1 = cases[ci].c1, c2 = 0;
        void *p[] = {&map, &out, &c0, &c1, &c2, &bytes};
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
        if (!DSK_T_OK(dsk_emu_launch(m, "tma_load", &cfg, p, NULL, NULL, NULL))) continue;
        int bad = 0;
        for (uint32_t r = 0; r < box[1]; r++)
            for (uint32_t j = 0; j < box[0] * (uint32_t)es; j++) {
                int64_t gr = c1 + (int64_t)r, gc = (int64_t)c0 * es + (int64_t)j;
                int in = gr >= 0 && gr < R && gc >= 0 && gc < (int64_t)dims[0] * es;
                uint8_t want = in ? g[gr * 304 + gc] : 0;
                size_t off = swz((size_t)r * box[0] * (size_t)es + j, cases[ci].sw);
                if (out[off] != want) bad++;
            }
        DSK_T_CHECK(bad == 0, "2D TMA load case %zu (swizzle %d, box %ux%u, coords %d,%d, %d-byte elements): %d bytes wrong",
                    ci, cases[ci].sw, box[0], box[1], c0, c1, es, bad);
    }
    dsk_emu_free(g);
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

static void test_tma_load3d(void)
{
    char *ptx = tma_load_kernel(3);
    dsk_emu_module *m = emu_t_load(ptx, "tma_load3d.ptx");
    free(ptx);
    if (!m) return;
    const int D0 = 40, D1 = 10, D2 = 6;  /* f32 elements; dim-1 stride 160 B, dim-2 stride 1600 B */
    float *g = emu_t_buf(sizeof(float) * D0 * D1 * D2);
    for (int i = 0; i < D0 * D1 * D2; i++) g[i] = (float)i;
    float *out = emu_t_buf(32768);
    uint64_t dims[3] = {D0, D1, D2}, strides[2] = {D0 * 4, D0 * D1 * 4};
    uint32_t box[3] = {8, 4, 3};
    dsk_tensor_map map;
    if (DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&map, DSK_TMA_FLOAT32, 3, g, dims, strides, box, NULL, DSK_TMA_SWIZZLE_NONE))) {
        int32_t c0 = 36, c1 = 8, c2 = 4;
        uint32_t bytes = 8 * 4 * 3 * 4;
        void *p[] = {&map, &out, &c0, &c1, &c2, &bytes};
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
        if (DSK_T_OK(dsk_emu_launch(m, "tma_load", &cfg, p, NULL, NULL, NULL))) {
            int bad = 0;
            for (int z = 0; z < 3; z++)
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 8; x++) {
                        int gx = c0 + x, gy = c1 + y, gz = c2 + z;
                        float want = (gx < D0 && gy < D1 && gz < D2) ? g[(gz * D1 + gy) * D0 + gx] : 0.0f;
                        if (out[(z * 4 + y) * 8 + x] != want) bad++;
                    }
            DSK_T_CHECK(bad == 0, "3D TMA load with out-of-bounds corner: %d of 96 elements wrong", bad);
        }
    }
    dsk_emu_free(g);
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

static void test_tma_store(void)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry tma_store(.param .align 64 .b8 tmap[128], .param .u32 c0, .param .u32 c1)\n{\n"
                  "  .reg .b32 %%r<16>;\n  .reg .b64 %%rd<8>;\n  .reg .pred %%p<4>;\n"
                  "  .shared .align 1024 .b8 smem[4096];\n"
                  "  mov.u32 %%r1, %%tid.x;\n  mov.u32 %%r3, smem;\n"
                  /* thread t writes word t of the 64x16-byte box (4 KB = 1024 words: 8 per thread) */
                  "  mov.u32 %%r2, 0;\nFILL:\n  shl.b32 %%r4, %%r2, 7;\n  add.u32 %%r4, %%r4, %%r1;\n"
                  "  shl.b32 %%r5, %%r4, 2;\n  add.u32 %%r6, %%r3, %%r5;\n  mul.lo.u32 %%r7, %%r4, 3;\n"
                  "  st.shared.u32 [%%r6], %%r7;\n  add.u32 %%r2, %%r2, 1;\n  setp.lt.u32 %%p1, %%r2, 8;\n  @%%p1 bra FILL;\n"
                  "  fence.proxy.async.shared::cta;\n  bar.sync 0;\n"
                  "  setp.eq.u32 %%p2, %%r1, 0;\n  ld.param.u32 %%r8, [c0];\n  ld.param.u32 %%r9, [c1];\n"
                  "  mov.u64 %%rd1, tmap;\n"
                  "  @%%p2 cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%%rd1, {%%r8, %%r9}], [%%r3];\n"
                  "  @%%p2 cp.async.bulk.commit_group;\n  @%%p2 cp.async.bulk.wait_group.read 0;\n  ret;\n}\n");
    dsk_emu_module *m = emu_t_load(b.s, "tma_store.ptx");
    free(b.s);
    if (!m) return;
    const int W = 52, H = 40;  /* u32 elements */
    uint32_t *g = emu_t_buf(sizeof(uint32_t) * W * H);
    uint64_t dims[2] = {W, H}, strides[1] = {W * 4};
    uint32_t box[2] = {16, 64};
    dsk_tensor_map map;
    if (DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&map, DSK_TMA_UINT32, 2, g, dims, strides, box, NULL, DSK_TMA_SWIZZLE_64B))) {
        int32_t c0 = 40, c1 = 10;
        void *p[] = {&map, &c0, &c1};
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
        if (DSK_T_OK(dsk_emu_launch(m, "tma_store", &cfg, p, NULL, NULL, NULL))) {
            int bad = 0;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int bx = x - c0, by = y - c1;
                    uint32_t want = 0xFFFFFFFFu;  /* untouched (poison) outside the box */
                    if (bx >= 0 && bx < 16 && by >= 0 && by < 64) {
                        size_t logical = (size_t)(by * 16 + bx) * 4;
                        want = (uint32_t)(swz(logical, 2) / 4) * 3;
                    }
                    if (g[y * W + x] != want) bad++;
                }
            DSK_T_CHECK(bad == 0, "2D TMA store (64B swizzle, clipped at the tensor edge): %d elements wrong", bad);
        }
    }
    dsk_emu_free(g);
    dsk_emu_module_free(m);
}

/* ---- clusters ------------------------------------------------------------------------- */

static void test_cluster(void)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry cl(.param .align 64 .b8 tmap[128], .param .u64 out)\n{\n"
                  "  .reg .b32 %%r<24>;\n  .reg .b64 %%rd<12>;\n  .reg .pred %%p<6>;\n  .reg .b16 %%rs<2>;\n"
                  "  .shared .align 1024 .b8 smem[2048];\n  .shared .align 8 .b64 bar;\n  .shared .align 4 .b32 flag;\n"
                  "  mov.u32 %%r1, %%tid.x;\n  mov.u32 %%r20, %%cluster_ctarank;\n  mov.u32 %%r21, %%cluster_nctarank;\n"
                  "  setp.eq.u32 %%p1, %%r1, 0;\n  mov.u32 %%r2, bar;\n  mov.u32 %%r3, smem;\n  mov.u32 %%r4, flag;\n"
                  "  add.u32 %%r5, %%r20, 100;\n  @%%p1 st.shared.u32 [%%r4], %%r5;\n"
                  "  @%%p1 mbarrier.init.shared::cta.b64 [%%r2], 1;\n"
                  "  fence.mbarrier_init.release.cluster;\n"
                  "  barrier.cluster.arrive.release.aligned;\n  barrier.cluster.wait.acquire.aligned;\n"
                  "  @%%p1 mbarrier.arrive.expect_tx.shared::cta.b64 %%rd2, [%%r2], 1024;\n"
                  /* rank 0 multicasts one box to both CTAs */
                  "  setp.eq.u32 %%p2, %%r20, 0;\n  and.pred %%p3, %%p1, %%p2;\n"
                  "  mov.u64 %%rd1, tmap;\n  mov.u32 %%r6, 0;\n  mov.u16 %%rs1, 3;\n"
                  "  @%%p3 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster [%%r3], [%%rd1, {%%r6, %%r6}], [%%r2], %%rs1;\n"
                  "WAIT:\n  mbarrier.try_wait.parity.shared::cta.b64 %%p4, [%%r2], 0;\n  @!%%p4 bra WAIT;\n"
                  /* read the other CTA's flag through distributed shared memory */
                  "  xor.b32 %%r7, %%r20, 1;\n  mapa.shared::cluster.u32 %%r8, %%r4, %%r7;\n"
                  "  ld.shared::cluster.u32 %%r9, [%%r8];\n"
                  "  ld.param.u64 %%rd3, [out];\n  mul.wide.u32 %%rd4, %%r20, 1040;\n  add.u64 %%rd5, %%rd3, %%rd4;\n"
                  "  @%%p1 st.global.u32 [%%rd5+1024], %%r9;\n  @%%p1 st.global.u32 [%%rd5+1028], %%r21;\n"
                  "  shl.b32 %%r10, %%r1, 3;\n  add.u32 %%r11, %%r3, %%r10;\n  ld.shared.v2.u32 {%%r12, %%r13}, [%%r11];\n"
                  "  cvt.u64.u32 %%rd6, %%r10;\n  add.u64 %%rd7, %%rd5, %%rd6;\n  st.global.v2.u32 [%%rd7], {%%r12, %%r13};\n"
                  "  barrier.cluster.arrive.aligned;\n  barrier.cluster.wait.aligned;\n  ret;\n}\n");
    dsk_emu_module *m = emu_t_load(b.s, "cluster.ptx");
    free(b.s);
    if (!m) return;
    uint8_t *g = emu_t_buf(64 * 16);
    for (int i = 0; i < 1024; i++) g[i] = (uint8_t)(i * 7 + 1);
    uint8_t *out = emu_t_buf(2 * 1040);
    uint64_t dims[2] = {64, 16}, strides[1] = {64};
    uint32_t box[2] = {64, 16};
    dsk_tensor_map map;
    if (DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&map, DSK_TMA_UINT8, 2, g, dims, strides, box, NULL, DSK_TMA_SWIZZLE_NONE))) {
        void *p[] = {&map, &out};
        dsk_emu_launch_cfg cfg = {{4, 1, 1}, {128, 1, 1}, {2, 1, 1}, 0};
        if (DSK_T_OK(dsk_emu_launch(m, "cl", &cfg, p, NULL, NULL, NULL))) {
            for (int r = 0; r < 2; r++) {
                DSK_T_CHECK(memcmp(out + r * 1040, g, 1024) == 0, "multicast TMA: CTA rank %d's shared memory differs", r);
                uint32_t other, n;
                memcpy(&other, out + r * 1040 + 1024, 4);
                memcpy(&n, out + r * 1040 + 1028, 4);
                DSK_T_CHECK(other == (uint32_t)(100 + (r ^ 1)), "mapa + ld.shared::cluster in rank %d read %u, expected %d", r, other, 100 + (r ^ 1));
                DSK_T_CHECK(n == 2, "%%cluster_nctarank = %u, expected 2", n);
            }
        }
    }
    dsk_emu_free(g);
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

/* ---- wgmma ---------------------------------------------------------------------------- */

/* Emits stores of the m64nN f32 accumulators %d0.. to out (row-major 64 x N): PTX ISA
 * 9.7.15.5.1.1 accumulator layout: row 16*warp + lane/4 + 8*((i>>1)&1),
 * col 8*(i>>2) + 2*(lane%4) + (i&1). */
static void emit_acc_store(emu_t_str *b, int N)
{
    emu_t_add(b, "  ld.param.u64 %%rd20, [out];\n  shr.u32 %%r30, %%r1, 5;\n  and.b32 %%r31, %%r1, 31;\n"
                 "  shr.u32 %%r32, %%r31, 2;\n  and.b32 %%r33, %%r31, 3;\n  shl.b32 %%r34, %%r30, 4;\n"
                 "  add.u32 %%r35, %%r34, %%r32;\n  mul.lo.u32 %%r36, %%r35, %d;\n  shl.b32 %%r37, %%r33, 1;\n"
                 "  add.u32 %%r38, %%r36, %%r37;\n  mul.wide.u32 %%rd21, %%r38, 4;\n  add.u64 %%rd22, %%rd20, %%rd21;\n", N);
    for (int i = 0; i < N / 2; i++) {
        int off = 4 * (8 * ((i >> 1) & 1) * N + 8 * (i >> 2) + (i & 1));
        emu_t_add(b, "  st.global.f32 [%%rd22+%d], %%d%d;\n", off, i);
    }
}

static void acc_list(emu_t_str *b, int N)
{
    emu_t_add(b, "{");
    for (int i = 0; i < N / 2; i++) emu_t_add(b, "%s%%d%d", i ? ", " : "", i);
    emu_t_add(b, "}");
}

/* e4m3 A (64 x 128) and B (N x 128) K-major, loaded by TMA with 128B swizzle; four
 * m64nNk32 wgmmas advance the descriptors' start address by 32 bytes (DeepGEMM's scheme:
 * SBO = 1024 = 8 rows of 128 bytes, LBO unused, swizzle mode 1 = 128B). */
static char *wgmma_fp8_kernel(int N)
{
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry wg(.param .align 64 .b8 tma[128], .param .align 64 .b8 tmb[128], .param .u64 out)\n{\n"
                  "  .reg .b32 %%r<40>;\n  .reg .b64 %%rd<40>;\n  .reg .pred %%p<6>;\n  .reg .f32 %%d<%d>;\n"
                  "  .shared .align 1024 .b8 sa[8192];\n  .shared .align 1024 .b8 sb[%d];\n  .shared .align 8 .b64 bar;\n"
                  "  mov.u32 %%r1, %%tid.x;\n  setp.eq.u32 %%p1, %%r1, 0;\n"
                  "  mov.u32 %%r2, bar;\n  mov.u32 %%r3, sa;\n  mov.u32 %%r4, sb;\n"
                  "  @%%p1 mbarrier.init.shared::cta.b64 [%%r2], 1;\n  bar.sync 0;\n"
                  "  mov.u64 %%rd1, tma;\n  cvta.param.u64 %%rd1, %%rd1;\n  mov.u64 %%rd2, tmb;\n  cvta.param.u64 %%rd2, %%rd2;\n"
                  "  mov.u32 %%r5, 0;\n"
                  "  @%%p1 mbarrier.arrive.expect_tx.shared::cta.b64 %%rd3, [%%r2], %d;\n"
                  "  @%%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r3], [%%rd1, {%%r5, %%r5}], [%%r2];\n"
                  "  @%%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r4], [%%rd2, {%%r5, %%r5}], [%%r2];\n"
                  "W:\n  mbarrier.try_wait.parity.shared::cta.b64 %%p2, [%%r2], 0;\n  @!%%p2 bra W;\n"
                  "  cvt.u64.u32 %%rd4, %%r3;\n  shr.u64 %%rd4, %%rd4, 4;\n  and.b64 %%rd4, %%rd4, 16383;\n"
                  "  or.b64 %%rd4, %%rd4, 4611686293305360384;\n"   /* 1<<62 | 64<<32 | 1<<16 */
                  "  cvt.u64.u32 %%rd5, %%r4;\n  shr.u64 %%rd5, %%rd5, 4;\n  and.b64 %%rd5, %%rd5, 16383;\n"
                  "  or.b64 %%rd5, %%rd5, 4611686293305360384;\n"
                  "  setp.ne.u32 %%p3, %%r5, 0;\n  setp.eq.u32 %%p4, %%r5, 0;\n  wgmma.fence.sync.aligned;\n",
              N / 2, N * 128 < 1024 ? 1024 : N * 128, 8192 + N * 128);
    for (int k = 0; k < 4; k++) {
        if (k) emu_t_add(&b, "  add.u64 %%rd4, %%rd4, 2;\n  add.u64 %%rd5, %%rd5, 2;\n");
        emu_t_add(&b, "  wgmma.mma_async.sync.aligned.m64n%dk32.f32.e4m3.e4m3 ", N);
        acc_list(&b, N);
        emu_t_add(&b, ", %%rd4, %%rd5, %%p%d, 1, 1;\n", k ? 4 : 3);
    }
    emu_t_add(&b, "  wgmma.commit_group.sync.aligned;\n  wgmma.wait_group.sync.aligned 0;\n");
    emit_acc_store(&b, N);
    emu_t_add(&b, "  ret;\n}\n");
    return b.s;
}

static void test_wgmma_fp8(void)
{
    dsk_rng rng = dsk_t_rng(20);
    uint8_t *A = emu_t_buf(64 * 128), *B = emu_t_buf(256 * 128);
    for (int i = 0; i < 64 * 128; i++) A[i] = dsk_f32_to_fp8((float)dsk_rng_normal(&rng) * 8, DSK_E4M3);
    for (int i = 0; i < 256 * 128; i++) B[i] = dsk_f32_to_fp8((float)dsk_rng_normal(&rng) * 8, DSK_E4M3);
    float *out = emu_t_buf(sizeof(float) * 64 * 256);
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = dsk_fp8_to_f32((uint8_t)i, DSK_E4M3);
    int failures = 0;
    for (int N = 8; N <= 256; N += 8) {  /* every legal N for e4m3 -> f32 (PTX ISA: N = 8*i, i = 1..32) */
        char *ptx = wgmma_fp8_kernel(N);
        dsk_emu_module *m = emu_t_load(ptx, "wgmma_fp8.ptx");
        free(ptx);
        if (!m) return;
        uint64_t da[2] = {128, 64}, db[2] = {128, (uint64_t)N}, st[1] = {128};
        uint32_t ba[2] = {128, 64}, bb[2] = {128, (uint32_t)N};
        dsk_tensor_map ma, mb;
        if (!DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&ma, DSK_TMA_UINT8, 2, A, da, st, ba, NULL, DSK_TMA_SWIZZLE_128B)) ||
            !DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&mb, DSK_TMA_UINT8, 2, B, db, st, bb, NULL, DSK_TMA_SWIZZLE_128B))) {
            dsk_emu_module_free(m);
            return;
        }
        memset(out, 0xFF, sizeof(float) * 64 * 256);
        void *p[] = {&ma, &mb, &out};
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
        if (DSK_T_OK(dsk_emu_launch(m, "wg", &cfg, p, NULL, NULL, NULL))) {
            int bad = 0;
            for (int r = 0; r < 64; r++)
                for (int n = 0; n < N; n++) {
                    /* ideal accumulation: each wgmma adds its exact 32-term sum with one f32 rounding */
                    float acc = 0;
                    for (int kk = 0; kk < 4; kk++) {
                        double s = 0;
                        for (int k = 32 * kk; k < 32 * kk + 32; k++)
                            s += (double)lut[A[r * 128 + k]] * lut[B[n * 128 + k]];
                        acc = (float)((double)acc + s);
                    }
                    if (out[r * N + n] != acc) bad++;
                }
            if (bad) failures++;
            DSK_T_CHECK(bad == 0, "wgmma m64n%dk32 e4m3 (TMA 128B swizzle, K-major): %d of %d outputs wrong (exact expected)", N, bad, 64 * N);
        }
        dsk_emu_module_free(m);
    }
    DSK_T_CHECK(failures == 0, "wgmma e4m3: %d values of N failed", failures);
    dsk_emu_free(A);
    dsk_emu_free(B);
    dsk_emu_free(out);
}

/* bf16: A from registers (fragment layout of PTX ISA 9.7.15.5.1.1.1), B N-major (imm-trans-b
 * = 1) loaded by two 128B-swizzled TMA boxes of 64 N-elements x 32 K-rows:
 * element (n, k) at (n*2 % 128) + (n*2 / 128)*LBO + (k%8)*128 + (k/8)*SBO, LBO = 4096,
 * SBO = 1024. Two wgmmas (k 0..15, then k 16..31 with imm-scale-a = -1) in two commit
 * groups; wait_group 1 then wait_group 0. */
static void test_wgmma_bf16(void)
{
    const int N = 128;
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry wgb(.param .align 64 .b8 tmb[128], .param .u64 afrag, .param .u64 out)\n{\n"
                  "  .reg .b32 %%r<40>;\n  .reg .b32 %%a<8>;\n  .reg .b64 %%rd<40>;\n  .reg .pred %%p<6>;\n  .reg .f32 %%d<%d>;\n"
                  "  .shared .align 1024 .b8 sb[8192];\n  .shared .align 8 .b64 bar;\n"
                  "  mov.u32 %%r1, %%tid.x;\n  setp.eq.u32 %%p1, %%r1, 0;\n  mov.u32 %%r2, bar;\n  mov.u32 %%r4, sb;\n"
                  "  @%%p1 mbarrier.init.shared::cta.b64 [%%r2], 1;\n  bar.sync 0;\n"
                  "  mov.u64 %%rd2, tmb;\n  mov.u32 %%r5, 0;\n  mov.u32 %%r6, 64;\n  add.u32 %%r7, %%r4, 4096;\n"
                  "  @%%p1 mbarrier.arrive.expect_tx.shared::cta.b64 %%rd3, [%%r2], 8192;\n"
                  "  @%%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r4], [%%rd2, {%%r5, %%r5}], [%%r2];\n"
                  "  @%%p1 cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%%r7], [%%rd2, {%%r6, %%r5}], [%%r2];\n"
                  "  ld.param.u64 %%rd6, [afrag];\n  mul.wide.u32 %%rd7, %%r1, 16;\n  add.u64 %%rd8, %%rd6, %%rd7;\n"
                  "  ld.global.v4.u32 {%%a0, %%a1, %%a2, %%a3}, [%%rd8];\n  ld.global.v4.u32 {%%a4, %%a5, %%a6, %%a7}, [%%rd8+2048];\n"
                  "W:\n  mbarrier.try_wait.parity.shared::cta.b64 %%p2, [%%r2], 0;\n  @!%%p2 bra W;\n"
                  "  cvt.u64.u32 %%rd5, %%r4;\n  shr.u64 %%rd5, %%rd5, 4;\n  and.b64 %%rd5, %%rd5, 16383;\n"
                  "  or.b64 %%rd5, %%rd5, 4611686293322072064;\n"   /* 1<<62 | 64<<32 | 256<<16 */
                  "  setp.ne.u32 %%p3, %%r5, 0;\n  setp.eq.u32 %%p4, %%r5, 0;\n  wgmma.fence.sync.aligned;\n", N / 2);
    emu_t_add(&b, "  wgmma.mma_async.sync.aligned.m64n%dk16.f32.bf16.bf16 ", N);
    acc_list(&b, N);
    emu_t_add(&b, ", {%%a0, %%a1, %%a2, %%a3}, %%rd5, %%p3, 1, 1, 1;\n  wgmma.commit_group.sync.aligned;\n"
                  "  add.u64 %%rd5, %%rd5, 128;\n");
    emu_t_add(&b, "  wgmma.mma_async.sync.aligned.m64n%dk16.f32.bf16.bf16 ", N);
    acc_list(&b, N);
    emu_t_add(&b, ", {%%a4, %%a5, %%a6, %%a7}, %%rd5, %%p4, -1, 1, 1;\n  wgmma.commit_group.sync.aligned;\n"
                  "  wgmma.wait_group.sync.aligned 1;\n  wgmma.wait_group.sync.aligned 0;\n");
    emit_acc_store(&b, N);
    emu_t_add(&b, "  ret;\n}\n");
    dsk_emu_module *m = emu_t_load(b.s, "wgmma_bf16.ptx");
    free(b.s);
    if (!m) return;
    dsk_rng rng = dsk_t_rng(21);
    float A[64][32];
    uint16_t *Bg = emu_t_buf(2 * 32 * N);  /* K x N row-major: N contiguous */
    for (int r = 0; r < 64; r++)
        for (int k = 0; k < 32; k++) A[r][k] = dsk_bf16_to_f32(dsk_f32_to_bf16((float)dsk_rng_normal(&rng)));
    for (int i = 0; i < 32 * N; i++) Bg[i] = dsk_f32_to_bf16((float)dsk_rng_normal(&rng));
    uint32_t *afrag = emu_t_buf(4 * 2 * 512);
    for (int inst = 0; inst < 2; inst++)
        for (int t = 0; t < 128; t++)
            for (int r = 0; r < 4; r++) {
                int q = t / 32, l = t % 32;
                int row = 16 * q + l / 4 + 8 * (r & 1);
                uint32_t v = 0;
                for (int h = 0; h < 2; h++) {
                    int col = 16 * inst + 2 * (l % 4) + h + 8 * (r >> 1);
                    v |= (uint32_t)dsk_f32_to_bf16(A[row][col]) << (16 * h);
                }
                afrag[inst * 512 + t * 4 + r] = v;
            }
    float *out = emu_t_buf(sizeof(float) * 64 * N);
    uint64_t db[2] = {(uint64_t)N, 32}, st[1] = {(uint64_t)N * 2};
    uint32_t bb[2] = {64, 32};
    dsk_tensor_map mb;
    if (DSK_T_OK(dsk_emu_tensor_map_encode_tiled(&mb, DSK_TMA_BFLOAT16, 2, Bg, db, st, bb, NULL, DSK_TMA_SWIZZLE_128B))) {
        void *p[] = {&mb, &afrag, &out};
        dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
        if (DSK_T_OK(dsk_emu_launch(m, "wgb", &cfg, p, NULL, NULL, NULL))) {
            double maxerr = 0;
            for (int r = 0; r < 64; r++)
                for (int n = 0; n < N; n++) {
                    double s0 = 0, s1 = 0;
                    for (int k = 0; k < 16; k++) s0 += (double)A[r][k] * dsk_bf16_to_f32(Bg[k * N + n]);
                    for (int k = 16; k < 32; k++) s1 += (double)A[r][k] * dsk_bf16_to_f32(Bg[k * N + n]);
                    double want = (double)(float)((double)(float)s0 - s1);
                    double e = fabs(out[r * N + n] - want);
                    if (!(e <= maxerr)) maxerr = e;
                }
            /* bf16 products are exact in double; the two f32 roundings are reproduced: 1e-6 abs covers the
             * 16-term double sum's own rounding on values of magnitude ~10 */
            DSK_T_CHECK(maxerr < 1e-5, "wgmma m64n128k16 bf16 (A regs, B N-major 128B swizzle, scale-a -1): max abs error %.3g", maxerr);
        }
    }
    dsk_emu_free(Bg);
    dsk_emu_free(afrag);
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

/* The descriptor layout without swizzle ("interleaved": 8x16-byte core matrices), built by
 * the host from the ISA's words: core matrix (i, j) = rows 8i.., K bytes 16j.. at
 * i*SBO + j*LBO, rows 16 bytes apart inside it. A and B copied to shared memory by threads. */
static void test_wgmma_noswizzle(void)
{
    const int N = 16, LBO = 128, SBO_A = 256, SBO_B = 256;
    emu_t_str b = {0};
    emu_t_add(&b, "%s", HDR);
    emu_t_add(&b, ".visible .entry wgn(.param .u64 img, .param .u64 out)\n{\n"
                  "  .reg .b32 %%r<40>;\n  .reg .b64 %%rd<40>;\n  .reg .pred %%p<6>;\n  .reg .f32 %%d<%d>;\n"
                  "  .shared .align 128 .b8 s[4096];\n"
                  "  mov.u32 %%r1, %%tid.x;\n  mov.u32 %%r3, s;\n  ld.param.u64 %%rd1, [img];\n"
                  "  mov.u32 %%r2, %%r1;\nCP:\n  shl.b32 %%r4, %%r2, 4;\n  cvt.u64.u32 %%rd2, %%r4;\n  add.u64 %%rd3, %%rd1, %%rd2;\n"
                  "  ld.global.v4.u32 {%%r5, %%r6, %%r7, %%r8}, [%%rd3];\n  add.u32 %%r9, %%r3, %%r4;\n"
                  "  st.shared.v4.u32 [%%r9], {%%r5, %%r6, %%r7, %%r8};\n  add.u32 %%r2, %%r2, 128;\n"
                  "  setp.lt.u32 %%p1, %%r2, 256;\n  @%%p1 bra CP;\n"
                  "  fence.proxy.async.shared::cta;\n  bar.sync 0;\n"
                  "  cvt.u64.u32 %%rd4, %%r3;\n  shr.u64 %%rd4, %%rd4, 4;\n  or.b64 %%rd4, %%rd4, %llu;\n"
                  "  add.u32 %%r10, %%r3, 2048;\n  cvt.u64.u32 %%rd5, %%r10;\n  shr.u64 %%rd5, %%rd5, 4;\n  or.b64 %%rd5, %%rd5, %llu;\n"
                  "  mov.u32 %%r11, 0;\n  setp.ne.u32 %%p3, %%r11, 0;\n  wgmma.fence.sync.aligned;\n",
              N / 2, (unsigned long long)(((uint64_t)(SBO_A >> 4) << 32) | ((uint64_t)(LBO >> 4) << 16)),
              (unsigned long long)(((uint64_t)(SBO_B >> 4) << 32) | ((uint64_t)(LBO >> 4) << 16)));
    emu_t_add(&b, "  wgmma.mma_async.sync.aligned.m64n%dk32.f32.e5m2.e4m3 ", N);
    acc_list(&b, N);
    emu_t_add(&b, ", %%rd4, %%rd5, %%p3, 1, -1;\n  wgmma.commit_group.sync.aligned;\n  wgmma.wait_group.sync.aligned 0;\n");
    emit_acc_store(&b, N);
    emu_t_add(&b, "  ret;\n}\n");
    dsk_emu_module *m = emu_t_load(b.s, "wgmma_noswz.ptx");
    free(b.s);
    if (!m) return;
    dsk_rng rng = dsk_t_rng(22);
    uint8_t A[64][32], B[16][32];
    uint8_t *img = emu_t_buf(4096);
    for (int r = 0; r < 64; r++)
        for (int k = 0; k < 32; k++) {
            A[r][k] = dsk_f32_to_fp8((float)dsk_rng_normal(&rng), DSK_E5M2);
            img[(r / 8) * SBO_A + (k / 16) * LBO + (r % 8) * 16 + k % 16] = A[r][k];
        }
    for (int n = 0; n < N; n++)
        for (int k = 0; k < 32; k++) {
            B[n][k] = dsk_f32_to_fp8((float)dsk_rng_normal(&rng), DSK_E4M3);
            img[2048 + (n / 8) * SBO_B + (k / 16) * LBO + (n % 8) * 16 + k % 16] = B[n][k];
        }
    float *out = emu_t_buf(sizeof(float) * 64 * N);
    void *p[] = {&img, &out};
    dsk_emu_launch_cfg cfg = {{1, 1, 1}, {128, 1, 1}, {0, 0, 0}, 0};
    if (DSK_T_OK(dsk_emu_launch(m, "wgn", &cfg, p, NULL, NULL, NULL))) {
        int bad = 0;
        for (int r = 0; r < 64; r++)
            for (int n = 0; n < N; n++) {
                double s = 0;
                for (int k = 0; k < 32; k++) s -= (double)dsk_fp8_to_f32(A[r][k], DSK_E5M2) * dsk_fp8_to_f32(B[n][k], DSK_E4M3);
                bad += out[r * N + n] != (float)s;
            }
        DSK_T_CHECK(bad == 0, "wgmma m64n16k32 e5m2 x e4m3, no-swizzle core-matrix layout, imm-scale-b -1: %d wrong", bad);
    }
    dsk_emu_free(img);
    dsk_emu_free(out);
    dsk_emu_module_free(m);
}

int main(void)
{
    test_tma_load2d();
    test_tma_load3d();
    test_tma_store();
    test_cluster();
    test_wgmma_fp8();
    test_wgmma_bf16();
    test_wgmma_noswizzle();
    return dsk_t_finish();
}
