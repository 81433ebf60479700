/* tests/ptx/ptx_configs.h: the tile configurations the PTX tests sweep per arch: the shapes
 * DeepGEMM's heuristics and dsk's tuner pick from (BLOCK_N incl. non-powers of two), each
 * with the deepest pipeline that fits the arch's shared memory, plus the grouped and
 * swapped variants. */
#ifndef DSK_TESTS_PTX_CONFIGS_H
#define DSK_TESTS_PTX_CONFIGS_H

#include "dsk/ptx.h"

/* Fills out[] (capacity cap) with the configurations of arch; returns how many. */
static int ptx_test_configs(dsk_arch arch, dsk_gemm_tile *out, int cap)
{
    static const int sm90_mn[][2] = {{64, 16},   {64, 32},   {64, 64},   {64, 72},   {64, 112},  {64, 128},
                                     {64, 160},  {64, 192},  {128, 16},  {128, 48},  {128, 64},  {128, 72},
                                     {128, 112}, {128, 128}, {128, 144}, {128, 160}, {128, 192}, {256, 32},
                                     {256, 64},  {256, 96}};
    static const int sm89_mn[][2] = {{16, 64},  {32, 64},  {32, 128}, {64, 64},  {64, 72},
                                     {64, 112}, {64, 128}, {128, 64}, {128, 72}, {128, 128}};
    int n = 0;
    const int (*mn)[2] = arch == DSK_ARCH_SM90A ? sm90_mn : sm89_mn;
    int count = arch == DSK_ARCH_SM90A ? (int)(sizeof sm90_mn / sizeof sm90_mn[0])
                                       : (int)(sizeof sm89_mn / sizeof sm89_mn[0]);
    for (int i = 0; i < count && n < cap; i++) {
        dsk_gemm_tile t = dsk_gemm_tile_default(arch, mn[i][0], mn[i][1]);
        /* deepest legal pipeline up to 8 stages */
        for (int s = 8; s >= 2; s--) {
            dsk_gemm_plan p;
            t.stages = s;
            if (dsk_ptx_gemm_plan(&t, 0, &p) == DSK_OK && p.legal)
                break;
        }
        out[n++] = t;
    }
    /* grouped and swapped variants of a few tiles */
    /* + the sm90a epilogue / scheduler options: TMA store (staging buffer in the ring or
     * dedicated), persistent, both */
    static const struct { int m, n, stages; dsk_gemm_layout layout; int swap, tma, pers, cl; } extra90[] = {
        {128, 128, 5, DSK_GEMM_CONTIGUOUS, 0, 0, 0, 1}, {64, 112, 6, DSK_GEMM_MASKED, 0, 0, 0, 1},
        {128, 72, 6, DSK_GEMM_MASKED, 0, 0, 0, 1},      {16, 64, 8, DSK_GEMM_DENSE, 1, 0, 0, 1},
        {32, 128, 8, DSK_GEMM_DENSE, 1, 0, 0, 1},       {64, 128, 6, DSK_GEMM_MASKED, 1, 0, 0, 1},
        {8, 64, 8, DSK_GEMM_MASKED, 1, 0, 0, 1},        {128, 112, 6, DSK_GEMM_DENSE, 0, 1, 0, 1},
        {64, 72, 8, DSK_GEMM_MASKED, 0, 1, 0, 1},       {32, 128, 8, DSK_GEMM_DENSE, 1, 1, 0, 1},
        {128, 160, 5, DSK_GEMM_DENSE, 0, 0, 1, 1},      {256, 88, 3, DSK_GEMM_DENSE, 0, 0, 1, 1},
        {64, 128, 6, DSK_GEMM_MASKED, 1, 0, 1, 1},      {128, 128, 4, DSK_GEMM_DENSE, 0, 1, 1, 1},
        {128, 112, 4, DSK_GEMM_CONTIGUOUS, 0, 1, 1, 1}, {64, 72, 6, DSK_GEMM_MASKED, 0, 1, 1, 1},
        {16, 64, 8, DSK_GEMM_MASKED, 1, 1, 1, 1},       {256, 64, 3, DSK_GEMM_DENSE, 0, 1, 1, 1},
        /* clusters of 2 (TMA multicast of A), alone and with the other options */
        {128, 112, 6, DSK_GEMM_DENSE, 0, 0, 0, 2},    {32, 128, 8, DSK_GEMM_DENSE, 1, 0, 0, 2},
        {64, 72, 6, DSK_GEMM_MASKED, 0, 1, 1, 2},     {16, 64, 8, DSK_GEMM_MASKED, 1, 1, 1, 2},
        {128, 128, 5, DSK_GEMM_CONTIGUOUS, 0, 1, 1, 2}, {128, 176, 4, DSK_GEMM_DENSE, 0, 1, 1, 2},
        {256, 88, 3, DSK_GEMM_DENSE, 0, 0, 1, 2}},
      extra89[] = {{64, 128, 3, DSK_GEMM_CONTIGUOUS, 0, 0, 0, 1}, {32, 112, 4, DSK_GEMM_MASKED, 0, 0, 0, 1},
                   {16, 64, 4, DSK_GEMM_DENSE, 1, 0, 0, 1},       {32, 128, 3, DSK_GEMM_MASKED, 1, 0, 0, 1}};
    int ne = arch == DSK_ARCH_SM90A ? (int)(sizeof extra90 / sizeof extra90[0])
                                    : (int)(sizeof extra89 / sizeof extra89[0]);
    for (int i = 0; i < ne && n < cap; i++) {
        const __typeof__(extra90[0]) *e = arch == DSK_ARCH_SM90A ? &extra90[i] : &extra89[i];
        dsk_gemm_tile t = dsk_gemm_tile_default(arch, e->m, e->n);
        t.stages = e->stages;
        t.layout = e->layout;
        t.swap_ab = e->swap;
        t.tma_store = e->tma;
        t.persistent = e->pers;
        t.cluster = e->cl;
        out[n++] = t;
    }
    return n;
}

#endif
