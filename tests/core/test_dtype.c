/* tests/core/test_dtype.c: FP8 / bf16 / f16 conversions, bit-exact.
 * - every code of each FP8 format decodes to the value its definition gives (spot values
 *   from the OCP FP8 spec and AMD's FNUZ description; all codes round-trip; order is monotonic)
 * - every rounding boundary: the midpoint between adjacent codes rounds to the even code,
 *   one float ulp either side rounds to the nearer code
 * - saturation (satfinite) at the top, flush/round at the bottom, NaN handling
 * With --dump, prints "fmt code value" lines for tests/core/fp8_oracle.py. */
#include <math.h>
#include <string.h>
#include "tests/harness/harness.h"

static const dsk_dtype FMTS[4] = {DSK_E4M3, DSK_E5M2, DSK_E4M3FNUZ, DSK_E5M2FNUZ};

static int is_nan_code(uint8_t c, dsk_dtype t)
{
    switch (t) {
    case DSK_E4M3: return (c & 0x7F) == 0x7F;
    case DSK_E5M2: return (c & 0x7F) > 0x7C;
    default: return c == 0x80;
    }
}

static void spot_values(void)
{
    struct { dsk_dtype t; uint8_t c; double v; } s[] = {
        {DSK_E4M3, 0x7E, 448}, {DSK_E4M3, 0x08, 0x1p-6}, {DSK_E4M3, 0x01, 0x1p-9}, {DSK_E4M3, 0x07, 7 * 0x1p-9},
        {DSK_E4M3, 0x38, 1.0}, {DSK_E4M3, 0xB8, -1.0}, {DSK_E4M3, 0x3C, 1.5}, {DSK_E4M3, 0x80, -0.0},
        {DSK_E5M2, 0x7B, 57344}, {DSK_E5M2, 0x3C, 1.0}, {DSK_E5M2, 0x01, 0x1p-16}, {DSK_E5M2, 0x04, 0x1p-14},
        {DSK_E5M2, 0x7C, INFINITY}, {DSK_E5M2, 0xFC, -INFINITY},
        {DSK_E4M3FNUZ, 0x7F, 240}, {DSK_E4M3FNUZ, 0x40, 1.0}, {DSK_E4M3FNUZ, 0x01, 0x1p-10}, {DSK_E4M3FNUZ, 0x08, 0x1p-7},
        {DSK_E5M2FNUZ, 0x7F, 57344}, {DSK_E5M2FNUZ, 0x40, 1.0}, {DSK_E5M2FNUZ, 0x01, 0x1p-17},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        double got = dsk_fp8_to_f32(s[i].c, s[i].t);
        DSK_T_CHECK(got == s[i].v && signbit(got) == signbit(s[i].v), "%s code 0x%02X decodes to %g, expected %g",
                    dsk_dtype_name(s[i].t), s[i].c, got, s[i].v);
    }
    DSK_T_CHECK(isnan(dsk_fp8_to_f32(0x7F, DSK_E4M3)) && isnan(dsk_fp8_to_f32(0xFF, DSK_E4M3)), "e4m3 NaN codes");
    DSK_T_CHECK(isnan(dsk_fp8_to_f32(0x7D, DSK_E5M2)) && isnan(dsk_fp8_to_f32(0xFF, DSK_E5M2)), "e5m2 NaN codes");
    DSK_T_CHECK(isnan(dsk_fp8_to_f32(0x80, DSK_E4M3FNUZ)) && isnan(dsk_fp8_to_f32(0x80, DSK_E5M2FNUZ)), "fnuz NaN is 0x80");
    DSK_T_CHECK(dsk_fp8_max(DSK_E4M3) == 448 && dsk_fp8_max(DSK_E5M2) == 57344 && dsk_fp8_max(DSK_E4M3FNUZ) == 240 &&
                    dsk_fp8_max(DSK_E5M2FNUZ) == 57344, "dsk_fp8_max");
}

static void all_codes(dsk_dtype t)
{
    /* every non-NaN code round-trips; positive codes increase with their value */
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        if (is_nan_code((uint8_t)c, t)) {
            bad += !isnan(dsk_fp8_to_f32((uint8_t)c, t));
            continue;
        }
        float v = dsk_fp8_to_f32((uint8_t)c, t);
        if (isinf(v)) continue;  /* e5m2 inf encodes (satfinite) to max: checked below */
        uint8_t back = dsk_f32_to_fp8(v, t);
        if (back != c) {
            DSK_T_CHECK(0, "%s code 0x%02X (%g) re-encodes to 0x%02X", dsk_dtype_name(t), c, v, back);
            bad++;
        }
    }
    DSK_T_CHECK(bad == 0, "%s: all 256 codes round-trip (%d bad)", dsk_dtype_name(t), bad);
    double prev = -1;
    for (int c = 0; c < 0x80; c++) {
        if (is_nan_code((uint8_t)c, t)) continue;
        double v = dsk_fp8_to_f32((uint8_t)c, t);
        if (isinf(v)) continue;
        DSK_T_CHECK(v > prev, "%s: code 0x%02X (%g) not above the previous code (%g)", dsk_dtype_name(t), c, v, prev);
        prev = v;
    }
}

static void boundaries(dsk_dtype t)
{
    /* adjacent finite positive codes lo, lo+1 */
    int fails = 0;
    for (int lo = 0; lo < 0x7F; lo++) {
        int hi = lo + 1;
        if (is_nan_code((uint8_t)hi, t) || isinf(dsk_fp8_to_f32((uint8_t)hi, t))) break;
        for (int sgn = 0; sgn < 2; sgn++) {
            float s = sgn ? -1.0f : 1.0f;
            float vlo = dsk_fp8_to_f32((uint8_t)lo, t), vhi = dsk_fp8_to_f32((uint8_t)hi, t);
            float mid = (vlo + vhi) / 2;  /* exact: at most 5 significant bits */
            uint8_t sb = sgn ? 0x80 : 0;
            uint8_t elo = (uint8_t)(lo | sb), ehi = (uint8_t)(hi | sb);
            if (lo == 0 && (t == DSK_E4M3FNUZ || t == DSK_E5M2FNUZ)) elo = 0;  /* no -0 */
            uint8_t even = (lo & 1) ? ehi : elo;
            uint8_t got_mid = dsk_f32_to_fp8(s * mid, t);
            uint8_t got_below = dsk_f32_to_fp8(s * nextafterf(mid, 0), t);
            uint8_t got_above = dsk_f32_to_fp8(s * nextafterf(mid, INFINITY), t);
            if (got_mid != even || got_below != elo || got_above != ehi) {
                if (fails++ < 5)
                    DSK_T_CHECK(0, "%s boundary %g..%g (sign %d): mid->0x%02X (want 0x%02X), below->0x%02X (want 0x%02X), above->0x%02X (want 0x%02X)",
                                dsk_dtype_name(t), vlo, vhi, sgn, got_mid, even, got_below, elo, got_above, ehi);
            }
        }
    }
    DSK_T_CHECK(fails == 0, "%s: every rounding boundary (%d wrong)", dsk_dtype_name(t), fails);

    /* saturation and specials (PTX cvt.rn.satfinite) */
    float mx = dsk_fp8_max(t);
    uint8_t maxc = dsk_f32_to_fp8(mx, t), nanc = (t == DSK_E4M3 || t == DSK_E5M2) ? 0x7F : 0x80;
    DSK_T_CHECK(dsk_fp8_to_f32(maxc, t) == mx, "%s max encodes", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(mx * 1.0625f, t) == maxc, "%s: above max saturates", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(1e30f, t) == maxc && dsk_f32_to_fp8(INFINITY, t) == maxc, "%s: huge/inf saturate", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(-INFINITY, t) == (maxc | 0x80), "%s: -inf saturates to -max", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(NAN, t) == nanc, "%s: NaN -> 0x%02X", dsk_dtype_name(t), nanc);
    float minsub = dsk_fp8_to_f32(1, t);
    DSK_T_CHECK(dsk_f32_to_fp8(minsub / 2, t) == 0, "%s: half the smallest subnormal rounds to 0 (tie to even)", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(nextafterf(minsub / 2, 1), t) == 1, "%s: just above half the smallest subnormal rounds up", dsk_dtype_name(t));
    DSK_T_CHECK(dsk_f32_to_fp8(1e-30f, t) == 0, "%s: tiny rounds to 0", dsk_dtype_name(t));
    uint8_t negz = dsk_f32_to_fp8(-1e-30f, t);
    DSK_T_CHECK(negz == ((t == DSK_E4M3 || t == DSK_E5M2) ? 0x80 : 0x00), "%s: tiny negative -> 0x%02X", dsk_dtype_name(t), negz);
}

static void half_formats(void)
{
    int bad = 0;
    for (uint32_t c = 0; c < 65536; c++) {
        float v = dsk_bf16_to_f32((uint16_t)c);
        if (!isnan(v) && dsk_f32_to_bf16(v) != c) bad++;
        float h = dsk_f16_to_f32((uint16_t)c);
        if (!isnan(h) && dsk_f32_to_f16(h) != c) bad++;
        if (isnan(v) != ((c & 0x7f80) == 0x7f80 && (c & 0x7f))) bad++;
    }
    DSK_T_CHECK(bad == 0, "bf16/f16: all 65536 codes round-trip (%d bad)", bad);
    DSK_T_CHECK(dsk_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even (down)");
    DSK_T_CHECK(dsk_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie to even (up)");
    DSK_T_CHECK(dsk_f32_to_bf16(nextafterf(1.0f + 0x1p-8f, 2)) == 0x3f81, "bf16 above tie rounds up");
    DSK_T_CHECK(dsk_f32_to_f16(65504.0f) == 0x7bff && dsk_f32_to_f16(65520.0f) == 0x7c00 &&
                    dsk_f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff, "f16 overflow boundary");
    DSK_T_CHECK(dsk_f32_to_f16(0x1p-25f) == 0 && dsk_f32_to_f16(nextafterf(0x1p-25f, 1)) == 1, "f16 subnormal rounding");
    DSK_T_CHECK(dsk_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00 && dsk_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "f16 ties to even");
    DSK_T_CHECK((dsk_f32_to_bf16(NAN) & 0x7fc0) == 0x7fc0, "bf16 NaN stays quiet NaN");
    DSK_T_CHECK(dsk_dtype_size(DSK_E4M3) == 1 && dsk_dtype_size(DSK_BF16) == 2 && dsk_dtype_size(DSK_F32) == 4 &&
                    dsk_dtype_size((dsk_dtype)99) == 0 && !strcmp(dsk_dtype_name((dsk_dtype)99), "invalid"),
                "dtype sizes and names");
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--dump")) {
        for (int f = 0; f < 4; f++)
            for (int c = 0; c < 256; c++)
                printf("%s %d %a\n", dsk_dtype_name(FMTS[f]), c, (double)dsk_fp8_to_f32((uint8_t)c, FMTS[f]));
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--encode")) {  /* reads floats (hex) on stdin, prints codes */
        char fmt[32];
        float x;
        while (scanf("%31s %a", fmt, &x) == 2) {
            dsk_dtype t = DSK_E4M3;
            for (int f = 0; f < 4; f++)
                if (!strcmp(fmt, dsk_dtype_name(FMTS[f]))) t = FMTS[f];
            printf("%d\n", dsk_f32_to_fp8(x, t));
        }
        return 0;
    }
    spot_values();
    for (int f = 0; f < 4; f++) {
        all_codes(FMTS[f]);
        boundaries(FMTS[f]);
    }
    half_formats();
    return dsk_t_finish();
}
