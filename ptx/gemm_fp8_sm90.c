/* ptx/gemm_fp8_sm90.c: the Hopper (sm_90a) FP8 block-scaled GEMM emitter (in progress). */
#include "ptx/gemm_fp8_internal.h"

void dsk_ptx_emit_sm90(const dsk_gemm_tile *t, const dsk_gemm_plan *p, const char *entry, dsk_ptx_text *b)
{
    dsk_ptx_put(b, "// sm_90a emitter not written yet\n");
}
