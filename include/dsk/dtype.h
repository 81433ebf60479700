/* dsk/dtype.h: element types and bit-exact conversions (FP8, bf16, f16).
 *
 * FP8 formats (all 8 bits, 1 sign bit):
 *   DSK_E4M3      OCP "e4m3fn": bias 7, no infinities, NaN = 0x7F/0xFF, max 448,
 *                 min normal 2^-6, min subnormal 2^-9. Used by NVIDIA (Hopper, Ada).
 *   DSK_E5M2      OCP e5m2 (IEEE-like): bias 15, inf 0x7C/0xFC, NaN 0x7D-0x7F/0xFD-0xFF,
 *                 max 57344.
 *   DSK_E4M3FNUZ  AMD MI300 variant: bias 8, NaN = 0x80 only, no -0, no inf, max 240.
 *   DSK_E5M2FNUZ  AMD MI300 variant: bias 16, NaN = 0x80 only, no -0, no inf, max 57344.
 * Encoding (dsk_f32_to_fp8) follows PTX cvt.rn.satfinite: round to nearest even,
 * finite values (and infinities) beyond the largest finite value saturate to it
 * with the sign kept, NaN becomes the format's NaN (0x7F for e4m3, 0x7F for e5m2,
 * 0x80 for the FNUZ formats). For FNUZ a result that rounds to -0 encodes as +0. */
#ifndef DSK_DTYPE_H
#define DSK_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsk_dtype {
    DSK_F32 = 0,
    DSK_F16,
    DSK_BF16,
    DSK_I32,
    DSK_U8,
    DSK_E4M3,
    DSK_E5M2,
    DSK_E4M3FNUZ,
    DSK_E5M2FNUZ,
    DSK_I64,
    DSK_DTYPE_COUNT
} dsk_dtype;

/* Bytes per element; 0 for an invalid dtype. */
size_t dsk_dtype_size(dsk_dtype t);
/* "f32", "bf16", "e4m3", ... ; "invalid" for an out-of-range value. */
const char *dsk_dtype_name(dsk_dtype t);
/* 1 for the four FP8 formats. */
int dsk_dtype_is_fp8(dsk_dtype t);

/* FP8 <-> f32. t must be one of the four FP8 dtypes (otherwise 0 / NaN). */
uint8_t dsk_f32_to_fp8(float x, dsk_dtype t);
float dsk_fp8_to_f32(uint8_t v, dsk_dtype t);
/* Largest finite value of an FP8 format (448, 57344, 240, 57344). */
float dsk_fp8_max(dsk_dtype t);

/* bf16 and IEEE f16, round to nearest even; NaN stays NaN (quiet), overflow to inf. */
uint16_t dsk_f32_to_bf16(float x);
float dsk_bf16_to_f32(uint16_t v);
uint16_t dsk_f32_to_f16(float x);
float dsk_f16_to_f32(uint16_t v);

#ifdef __cplusplus
}
#endif
#endif
