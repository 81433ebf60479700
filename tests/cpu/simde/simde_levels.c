/* tests/cpu/simde/simde_levels.c: the ISA check of the cpu backend's GEMM and MLA
 * frameworks (cpu/gemm_fp8_cpu.c, cpu/mla_decode_cpu.c) as the SIMDe tests compile them:
 * there, dsk_cpu_isa_declines is renamed to this function, and the avx512bf16 entries of
 * their level lists are the SIMDe builds of the AVX-512 kernels, which run on any CPU.
 * So no level declines for want of an ISA; a level's own declines (the bf16 MLA level's
 * dtype and width checks) still apply. Test-only. */
#include <stddef.h>

#include "cpu/cpu_internal.h"

int dsk_simde_isa_declines(dsk_cpu_isa isa, char *why, size_t len);

int dsk_simde_isa_declines(dsk_cpu_isa isa, char *why, size_t len)
{
    (void)isa;
    (void)why;
    (void)len;
    return 0;
}
