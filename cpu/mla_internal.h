/* cpu/mla_internal.h: what the MLA decode levels share (internal). */
#ifndef DSK_CPU_MLA_INTERNAL_H
#define DSK_CPU_MLA_INTERNAL_H

#include "cpu/cpu_internal.h"

#define MLA_HEAD_GROUP 16

typedef struct mla_job {
    const dsk_mla_decode_args *a;
    int64_t B, H, D, dv, HG, n_hg, splits;
    float scale;
} mla_job;

/* One level: heads [h0, h1) (at most HG, the level's head_group) of sequence b over cache rows [j0, j1) (j0 a
 * multiple of DSK_MLA_PAGE_SIZE):
 * o [h1-h0][dv] unnormalized output, m and l per head (running max, sum of exp). */
typedef struct mla_kernels {
    const char *name;
    dsk_cpu_isa isa;
    int (*tile)(const mla_job *jb, int64_t b, int64_t h0, int64_t h1, int64_t j0, int64_t j1, float *o, float *m,
                float *l);
    /* Optional: nonzero (with the reason in why) when this level cannot take the job
     * (dtypes, widths); the next level runs. */
    int (*declines)(const mla_job *jb, char *why, size_t len);
    /* Heads per tile (0: MLA_HEAD_GROUP). A level that takes more heads per tile reads
     * each cache row once for all of them. */
    int head_group;
} mla_kernels;

extern const mla_kernels dsk_cpu_mla_avx512bf16;
extern const mla_kernels dsk_cpu_mla_avx512;
extern const mla_kernels dsk_cpu_mla_avx2;

const void *dsk_cpu_mla_row(const mla_job *jb, int64_t b, int64_t j);
float dsk_cpu_mla_elem(const dsk_tensor *t, const void *row, int64_t i);
dsk_status dsk_cpu_mla_decode(dsk_device *dev, const dsk_mla_decode_args *a);

#endif
