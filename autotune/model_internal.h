/* autotune/model_internal.h: pieces shared inside autotune/ (not installed). */
#ifndef DSK_AUTOTUNE_MODEL_INTERNAL_H
#define DSK_AUTOTUNE_MODEL_INTERNAL_H

#include "dsk/tune.h"

/* Memo of DRAM-traffic simulations, keyed by tile extents and concurrency, so ranking
 * thousands of configurations of one shape simulates each distinct raster once. */
typedef struct dsk_traffic_memo {
    int n;
    struct { int em, en; long long wave, tn; double bytes; } e[4096];
} dsk_traffic_memo;

/* dsk_tune_gemm_predict with an optional memo (NULL: none). */
dsk_status dsk_tune_predict_memo(const dsk_gpu *g, const dsk_tune_gemm_shape *s,
                                 const dsk_gemm_tile *t, const dsk_gemm_plan *plan,
                                 dsk_traffic_memo *memo, dsk_gemm_prediction *out);

/* Shape checks shared by the model and the tuner (K % 128, positive sizes, groups). */
dsk_status dsk_tune_check_shape(const char *fn, const dsk_tune_gemm_shape *s);

/* Roofline estimate of an op without a tuned kernel: max(flops / (peak x frac),
 * bytes / (bandwidth x cal_mem)) + one launch. peak_tflops and frac chosen by the caller. */
double dsk_roofline_us(const dsk_gpu *g, double flops, double bytes, double peak_tflops,
                       double frac, dsk_tune_bound *bound);

#endif
