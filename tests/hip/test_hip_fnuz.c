/* tests/hip/test_hip_fnuz.c: the e4m3 -> e4m3fnuz conversion the gfx942 kernels apply while
 * staging tiles (hip/hip_fnuz.h, compiled here as the shim compiles the kernels).
 *
 * For every OCP e4m3 code c in every byte position of a 32-bit word (the other bytes random):
 *   - finite c: the fnuz code it becomes is worth exactly half of c (decoded with dsk's own
 *     bit-exact FP8 decoders, dsk_fp8_to_f32), including the top binade up to 448 -> 224,
 *     the subnormals, and -0 -> +0 (fnuz's 0x80 is NaN, so -0 must not survive);
 *   - NaN c (0x7F, 0xFF): the fnuz NaN 0x80;
 *   - the other three bytes are unchanged by the conversion of their neighbour.
 * Plus the identity the kernels rely on: with both operands halved, a product is worth a
 * quarter (DSK_HIP_FNUZ_PRODUCT_SCALE = 4), exactly, over all pairs of finite codes. */
#include <math.h>
#include <string.h>
#include "hip/hip_fnuz.h"
#include "hip/gemm_fp8_gfx942.h"
#include "tests/harness/harness.h"

/* The conversion of one code, byte by byte (the specification the SWAR code must meet). */
static unsigned char convert_one(unsigned char c)
{
    if (c == 0x80)
        return 0x00;
    if ((c & 0x7F) == 0x7F)
        return 0x80;
    return c;
}

int main(void)
{
    dsk_rng r = dsk_t_rng(1);
    int bad_value = 0, bad_nan = 0, bad_neighbour = 0, bad_spec = 0, checked = 0;
    for (int pos = 0; pos < 4; pos++)
        for (int c = 0; c < 256; c++)
            for (int rep = 0; rep < 8; rep++) {
                unsigned int w = (unsigned int)dsk_rng_u64(&r);
                w = (w & ~(0xFFu << (8 * pos))) | ((unsigned int)c << (8 * pos));
                unsigned int out = dsk_e4m3_to_fnuz_x4(w);
                for (int k = 0; k < 4; k++) {
                    unsigned char in_b = (unsigned char)(w >> (8 * k)), out_b = (unsigned char)(out >> (8 * k));
                    bad_spec += out_b != convert_one(in_b);
                    if (k != pos)
                        continue;
                    float v = dsk_fp8_to_f32(in_b, DSK_E4M3), h = dsk_fp8_to_f32(out_b, DSK_E4M3FNUZ);
                    if (isnan(v))
                        bad_nan += out_b != 0x80;
                    else
                        bad_value += !(h == 0.5f * v) || (v == 0.0f && out_b != 0x00);
                    checked++;
                }
                for (int k = 0; k < 4; k++)
                    if (k != pos)
                        bad_neighbour += (unsigned char)(out >> (8 * k)) != convert_one((unsigned char)(w >> (8 * k)));
            }
    DSK_T_CHECK(checked == 4 * 256 * 8, "test defect: %d codes checked", checked);
    DSK_T_CHECK(bad_value == 0, "%d finite e4m3 codes did not become fnuz codes of exactly half the value", bad_value);
    DSK_T_CHECK(bad_nan == 0, "%d e4m3 NaN codes did not become the fnuz NaN 0x80", bad_nan);
    DSK_T_CHECK(bad_neighbour == 0, "%d neighbouring bytes changed by another byte's conversion", bad_neighbour);
    DSK_T_CHECK(bad_spec == 0, "%d bytes differ from the byte-wise specification", bad_spec);

    /* the top of the range: 448 (0x7E) -> 224, still inside fnuz's 240 */
    DSK_T_CHECK(dsk_fp8_to_f32((unsigned char)dsk_e4m3_to_fnuz_x4(0x7E), DSK_E4M3FNUZ) == 224.0f,
                "e4m3 448 (0x7E) does not map to fnuz 224");
    DSK_T_CHECK(dsk_fp8_to_f32((unsigned char)dsk_e4m3_to_fnuz_x4(0x01), DSK_E4M3FNUZ) == 0x1p-10f,
                "the smallest e4m3 subnormal 2^-9 does not map to 2^-10");

    /* products: a * b == 4 * fnuz(a) * fnuz(b) exactly for all finite pairs */
    int bad_prod = 0;
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y++) {
            float fx = dsk_fp8_to_f32((unsigned char)x, DSK_E4M3), fy = dsk_fp8_to_f32((unsigned char)y, DSK_E4M3);
            if (isnan(fx) || isnan(fy))
                continue;
            float hx = dsk_fp8_to_f32((unsigned char)dsk_e4m3_to_fnuz_x4((unsigned)x), DSK_E4M3FNUZ);
            float hy = dsk_fp8_to_f32((unsigned char)dsk_e4m3_to_fnuz_x4((unsigned)y), DSK_E4M3FNUZ);
            bad_prod += fx * fy != DSK_HIP_FNUZ_PRODUCT_SCALE * hx * hy;
        }
    DSK_T_CHECK(bad_prod == 0, "%d pairs with a*b != 4 * fnuz(a) * fnuz(b)", bad_prod);
    return dsk_t_finish();
}
