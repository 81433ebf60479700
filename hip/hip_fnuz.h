/* hip/hip_fnuz.h: OCP e4m3 (e4m3fn, what dsk's tensors hold) to AMD e4m3fnuz (what gfx942's
 * MFMA reads), four codes at a time. Used by the kernels while staging tiles into LDS.
 *
 * The mapping. e4m3fn has bias 7, e4m3fnuz bias 8, with the same 1-4-3 field layout; so a
 * code c with exponent field E and mantissa M is worth 2^(E-7)(1+M/8) in fn and 2^(E-8)(1+M/8)
 * in fnuz (subnormals: 2^-6 M/8 and 2^-7 M/8). For every finite fn code other than 0x80,
 * the same bits read as fnuz are worth exactly half: the whole fn range (+-448) lands on
 * +-224, inside fnuz's +-240, with no rounding. The factor 2 per operand goes into the scales
 * (DSK_HIP_FNUZ_PRODUCT_SCALE = 4 per product). The exceptions are the codes whose meaning
 * differs between the formats:
 *   0x80  fn -0   -> 0x00 (fnuz has no -0: 0x80 is its only NaN)
 *   0x7F, 0xFF  fn NaN -> 0x80 (fnuz NaN; as fnuz bits they would read +-240)
 * Tested over all 256 codes in every byte position (tests/hip/test_hip_fnuz.c). */
#ifndef DSK_HIP_FNUZ_H
#define DSK_HIP_FNUZ_H

#include "hip/hip_prelude.h"

/* SWAR over the four bytes of w; no byte carries into its neighbour because the sums are
 * formed on the low 7 bits only (at most 0x7F + 0x7F = 0xFE). */
DSK_DEVICE unsigned int dsk_e4m3_to_fnuz_x4(unsigned int w)
{
    unsigned int mag = w & 0x7F7F7F7Fu;
    unsigned int nonzero = (mag + 0x7F7F7F7Fu) & 0x80808080u; /* bit 7: magnitude != 0 */
    unsigned int nan = (mag + 0x01010101u) & 0x80808080u;     /* bit 7: magnitude == 0x7F */
    unsigned int nan_bytes = nan | (nan - (nan >> 7));          /* 0xFF over NaN bytes */
    w &= 0x7F7F7F7Fu | nonzero;                                 /* -0 -> +0 */
    return (w & ~nan_bytes) | nan;                              /* NaN -> 0x80 */
}

#endif
