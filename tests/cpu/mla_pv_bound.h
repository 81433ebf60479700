/* tests/cpu/mla_pv_bound.h: the part of the MLA decode tolerance that the avx512bf16
 * level's bf16 softmax weights add (shared by test_cpu_mla and test_cpu_mla_avx512_simde).
 * That level rounds each weight to bf16 for P.V, round to nearest even: bf16 has 8
 * significant bits, so the relative error is at most 2^-8 (DSK_T_BF16_U, the unit
 * roundoff; e.g. 1 + 2^-8 + 2^-20 rounds to 1 + 2^-7). Only the numerator sees the
 * rounded weights (l sums the f32 ones), so out[b][h][c] may move by up to
 * 2^-8 * sum_t w_t |v_t[c]|. dsk_t_mla_pv_bound computes the sum in f64 from the inputs
 * (q [B, H, D], kv_cache [pages, 64, D] contiguous, block_table [B, max_pages], lens[b]
 * rows per sequence) and adds it into out [B * H * dv]. */
#ifndef DSK_TESTS_CPU_MLA_PV_BOUND_H
#define DSK_TESTS_CPU_MLA_PV_BOUND_H

#include <math.h>
#include <stdlib.h>

#include "tests/harness/harness.h"

#define DSK_T_BF16_U 0x1p-8

static inline void dsk_t_mla_pv_bound(const dsk_tensor *q, const dsk_tensor *kv, const dsk_tensor *bt,
                                      const int *lens, int B, int H, int D, int dv, float scale, double *out)
{
    int64_t mp = bt->shape[1];
    for (int b = 0; b < B; b++) {
        double *s = malloc(sizeof(double) * (size_t)lens[b]);
        int64_t *row = malloc(sizeof(int64_t) * (size_t)lens[b]);
        for (int t = 0; t < lens[b]; t++)
            row[t] = ((int64_t)((int32_t *)bt->data)[b * mp + t / 64] * 64 + t % 64) * D;
        for (int h = 0; h < H; h++) {
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t < lens[b]; t++) {
                double acc = 0;
                for (int d = 0; d < D; d++) acc += dsk_t_get(q, ((int64_t)b * H + h) * D + d) * dsk_t_get(kv, row[t] + d);
                s[t] = acc * scale;
                mx = fmax(mx, s[t]);
            }
            for (int t = 0; t < lens[b]; t++) sum += (s[t] = exp(s[t] - mx));
            double *o = out + ((int64_t)b * H + h) * dv;
            for (int t = 0; t < lens[b]; t++)
                for (int c2 = 0; c2 < dv; c2++) o[c2] += s[t] / sum * fabs(dsk_t_get(kv, row[t] + c2));
        }
        free(s);
        free(row);
    }
}

#endif
