/* core/dtype.c: dtype sizes and names; bit-exact FP8 / bf16 / f16 conversions.
 *
 * One generic encoder serves every small float format: it rounds |x| to nearest even on
 * the format's grid (subnormals included), then applies the format's overflow policy
 * (saturate to the largest finite value for FP8, as PTX cvt.rn.satfinite does; infinity
 * for f16). Formats: OCP FP8 spec v1.0 (e4m3fn, e5m2); AMD/Graphcore FNUZ variants
 * (bias one higher, 0x80 = NaN, no negative zero); IEEE 754 binary16. */
#include <math.h>
#include <string.h>
#include "dsk/dtype.h"

size_t dsk_dtype_size(dsk_dtype t)
{
    switch (t) {
    case DSK_F32: case DSK_I32: return 4;
    case DSK_F16: case DSK_BF16: return 2;
    case DSK_U8: case DSK_E4M3: case DSK_E5M2: case DSK_E4M3FNUZ: case DSK_E5M2FNUZ: return 1;
    case DSK_I64: return 8;
    default: return 0;
    }
}

const char *dsk_dtype_name(dsk_dtype t)
{
    static const char *names[DSK_DTYPE_COUNT] = {
        "f32", "f16", "bf16", "i32", "u8", "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz", "i64"};
    return (unsigned)t < DSK_DTYPE_COUNT ? names[t] : "invalid";
}

int dsk_dtype_is_fp8(dsk_dtype t)
{
    return t == DSK_E4M3 || t == DSK_E5M2 || t == DSK_E4M3FNUZ || t == DSK_E5M2FNUZ;
}

/* A small float format: exponent and mantissa widths, bias, and its special codes. */
typedef struct fmt8 {
    int man_bits, bias;
    int emax;            /* unbiased exponent of the largest finite value */
    int max_man;         /* mantissa field of the largest finite value */
    int fnuz;            /* 0x80 is NaN, no -0 */
    int ieee_inf;        /* all-ones exponent = inf/NaN (e5m2, f16) */
    int exp_bits;
} fmt8;

static const fmt8 FMT_E4M3 = {3, 7, 8, 6, 0, 0, 4};
static const fmt8 FMT_E5M2 = {2, 15, 15, 3, 0, 1, 5};
static const fmt8 FMT_E4M3FNUZ = {3, 8, 7, 7, 1, 0, 4};
static const fmt8 FMT_E5M2FNUZ = {2, 16, 15, 3, 1, 0, 5};
static const fmt8 FMT_F16 = {10, 15, 15, 1023, 0, 1, 5};

static const fmt8 *fmt_of(dsk_dtype t)
{
    switch (t) {
    case DSK_E4M3: return &FMT_E4M3;
    case DSK_E5M2: return &FMT_E5M2;
    case DSK_E4M3FNUZ: return &FMT_E4M3FNUZ;
    case DSK_E5M2FNUZ: return &FMT_E5M2FNUZ;
    default: return NULL;
    }
}

static double fmt_max(const fmt8 *f)
{
    return ldexp(1.0 + (double)f->max_man / (1 << f->man_bits), f->emax);
}

/* Rounds |x| (finite, > 0) to nearest even on f's grid; returns the magnitude code
 * (exponent field << man_bits | mantissa), or -1 when the rounded value exceeds the
 * largest finite value. */
static int encode_mag(double ax, const fmt8 *f)
{
    int emin = 1 - f->bias;             /* exponent of the smallest normal */
    int e;
    frexp(ax, &e);
    e -= 1;                             /* ax in [2^e, 2^(e+1)) */
    if (e < emin) e = emin;
    double q = ldexp(1.0, e - f->man_bits);
    double r = nearbyint(ax / q);       /* default rounding mode: nearest, ties to even */
    int one = 1 << f->man_bits;
    if (r >= 2 * one) {                 /* rounded up into the next binade */
        e += 1;
        r = one;
    }
    if (r == 0) return 0;
    if (ldexp(r, e - f->man_bits) > fmt_max(f)) return -1;
    if (r < one) return (int)r;         /* subnormal: exponent field 0 */
    return ((e + f->bias) << f->man_bits) | ((int)r - one);
}

uint8_t dsk_f32_to_fp8(float x, dsk_dtype t)
{
    const fmt8 *f = fmt_of(t);
    if (!f) return 0;
    uint8_t nan = f->fnuz ? 0x80 : 0x7F;
    if (isnan(x)) return nan;
    int neg = signbit(x) != 0;
    double ax = fabs((double)x);
    int mag;
    if (isinf(x)) mag = -1;
    else if (ax == 0) mag = 0;
    else mag = encode_mag(ax, f);
    if (mag < 0)                        /* satfinite: the largest finite value */
        mag = ((f->emax + f->bias) << f->man_bits) | f->max_man;
    if (mag == 0 && f->fnuz) return 0;  /* FNUZ has no negative zero */
    return (uint8_t)((neg ? 0x80 : 0) | mag);
}

static double decode_small(unsigned v, const fmt8 *f)
{
    int total = 1 + f->exp_bits + f->man_bits;
    unsigned sign = (v >> (total - 1)) & 1;
    unsigned ef = (v >> f->man_bits) & ((1u << f->exp_bits) - 1);
    unsigned mf = v & ((1u << f->man_bits) - 1);
    double s = sign ? -1.0 : 1.0;
    if (f->fnuz && v == (1u << (total - 1))) return NAN;
    if (!f->fnuz && !f->ieee_inf && ef == (1u << f->exp_bits) - 1 &&
        mf == (1u << f->man_bits) - 1)
        return NAN;                     /* e4m3fn: S.1111.111 */
    if (f->ieee_inf && ef == (1u << f->exp_bits) - 1)
        return mf ? NAN : s * INFINITY;
    if (ef == 0) return s * ldexp((double)mf, 1 - f->bias - f->man_bits);
    return s * ldexp(1.0 + (double)mf / (1 << f->man_bits), (int)ef - f->bias);
}

float dsk_fp8_to_f32(uint8_t v, dsk_dtype t)
{
    const fmt8 *f = fmt_of(t);
    return f ? (float)decode_small(v, f) : NAN;
}

float dsk_fp8_max(dsk_dtype t)
{
    const fmt8 *f = fmt_of(t);
    return f ? (float)fmt_max(f) : 0.0f;
}

uint16_t dsk_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);     /* round to nearest even; overflow carries to inf */
    return (uint16_t)(u >> 16);
}

float dsk_bf16_to_f32(uint16_t v)
{
    uint32_t u = (uint32_t)v << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t dsk_f32_to_f16(float x)
{
    const fmt8 *f = &FMT_F16;
    if (isnan(x)) return 0x7e00;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double ax = fabs((double)x);
    if (isinf(x)) return sign | 0x7c00;
    if (ax == 0) return sign;
    int mag = encode_mag(ax, f);
    if (mag < 0) return sign | 0x7c00;  /* IEEE: overflow rounds to infinity */
    return (uint16_t)(sign | mag);
}

float dsk_f16_to_f32(uint16_t v) { return (float)decode_small(v, &FMT_F16); }
