/* emu/emu_ops.c: scalar instruction handlers: integer, bit, floating point (f64, f32,
 * f16/bf16 and their x2 packs), conversions (incl. the FP8 packs), setp/selp, memory
 * (ld/st/atom/red/cvta/mapa) and warp collectives (shfl, vote, redux, elect).
 *
 * Each handler runs one instruction for the lanes in m; operands were checked for
 * initialisation by the caller. Semantics follow the PTX ISA's instruction sections
 * (chapter 9.7); where the ISA leaves a result undefined (integer division by zero) the
 * emulator returns all ones. */
#include <math.h>
#include <string.h>
#include "emu_internal.h"

/* ---- value helpers -------------------------------------------------------------------- */

static inline int is_signed(int t) { return t == T_S8 || t == T_S16 || t == T_S32 || t == T_S64; }
static inline int is_float(int t) { return t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2; }

static inline uint64_t mask_of(int bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

static inline int64_t sext(uint64_t v, int bits)
{
    if (bits >= 64) return (int64_t)v;
    uint64_t m = 1ull << (bits - 1);
    v &= mask_of(bits);
    return (int64_t)((v ^ m) - m);
}

static inline uint32_t ftz_bits(uint32_t u) { return (u & 0x7F800000u) ? u : (u & 0x80000000u); }

static inline float ftz32(float x, int ftz)
{
    if (!ftz) return x;
    return emu_f32(ftz_bits((uint32_t)emu_bits32(x)));
}

static inline float h2f(uint16_t h) { return dsk_f16_to_f32(h); }
static inline float b2f(uint16_t h) { return dsk_bf16_to_f32(h); }

/* f32 result of an exactly computed (or double-rounded) double under a rounding mode */
static float round_f32(double x, int rnd)
{
    float f = (float)x;
    if (isnan(x) || isinf(x)) return f;
    switch (rnd) {
    case RND_RZ: case RND_RZI:
        if (fabs((double)f) > fabs(x)) f = nextafterf(f, 0.0f);
        break;
    case RND_RM: case RND_RMI:
        if ((double)f > x) f = nextafterf(f, -INFINITY);
        break;
    case RND_RP: case RND_RPI:
        if ((double)f < x) f = nextafterf(f, INFINITY);
        break;
    default: break;
    }
    return f;
}

/* half/bfloat16 from a double under round-to-nearest-even */
static uint16_t to_half(double x, int bf, int rnd)
{
    float f = (float)x;
    uint16_t h = bf ? dsk_f32_to_bf16(f) : dsk_f32_to_f16(f);
    if (rnd == RND_RZ && !isnan(f)) {
        float back = bf ? b2f(h) : h2f(h);
        if (fabsf(back) > fabsf(f)) h = (uint16_t)(h - 1);
    }
    return h;
}

static double round_int(double x, int rnd)
{
    switch (rnd) {
    case RND_RZI: case RND_RZ: return trunc(x);
    case RND_RMI: case RND_RM: return floor(x);
    case RND_RPI: case RND_RP: return ceil(x);
    case RND_RNA: return round(x);
    default: return nearbyint(x);  /* default environment: nearest even */
    }
}

/* ---- integer / bit ops ---------------------------------------------------------------- */

static uint64_t int_binop(int op, int t, uint32_t mod, uint64_t a, uint64_t b, int *wide_out)
{
    int bits = emu_type_bits(t);
    uint64_t mk = mask_of(bits);
    int sg = is_signed(t);
    int64_t sa = sext(a, bits), sb = sext(b, bits);
    uint64_t ua = a & mk, ub = b & mk;
    *wide_out = 0;
    switch (op) {
    case OP_ADD:
        if ((mod & M_SAT) && t == T_S32) {
            int64_t r = sa + sb;
            if (r > INT32_MAX) r = INT32_MAX;
            if (r < INT32_MIN) r = INT32_MIN;
            return (uint64_t)r & mk;
        }
        return (ua + ub) & mk;
    case OP_SUB:
        if ((mod & M_SAT) && t == T_S32) {
            int64_t r = sa - sb;
            if (r > INT32_MAX) r = INT32_MAX;
            if (r < INT32_MIN) r = INT32_MIN;
            return (uint64_t)r & mk;
        }
        return (ua - ub) & mk;
    case OP_MUL: case OP_MUL24: {
        if (op == OP_MUL24) {
            sa = sext(a, 24);
            sb = sext(b, 24);
            ua = a & 0xFFFFFF;
            ub = b & 0xFFFFFF;
        }
        if (mod & M_WIDE) {
            *wide_out = 1;
            if (bits == 64) return 0;
            return sg ? (uint64_t)(sa * sb) & mask_of(bits * 2) : (ua * ub) & mask_of(bits * 2);
        }
        if (mod & M_HI) {
            if (op == OP_MUL24) return sg ? (uint64_t)((sa * sb) >> 16) & mk : ((ua * ub) >> 16) & mk;
            if (bits == 64) {
                if (sg) return (uint64_t)(((__int128)sa * sb) >> 64);
                return (uint64_t)(((unsigned __int128)ua * ub) >> 64);
            }
            return sg ? (uint64_t)((sa * sb) >> bits) & mk : ((ua * ub) >> bits) & mk;
        }
        return (ua * ub) & mk;
    }
    case OP_DIV:
        if (sg) {
            if (sb == 0) return mk;
            if (bits == 64 && sa == INT64_MIN && sb == -1) return (uint64_t)sa;
            return (uint64_t)(sa / sb) & mk;
        }
        return ub ? (ua / ub) & mk : mk;
    case OP_REM:
        if (sg) {
            if (sb == 0) return mk;
            if (sb == -1) return 0;
            return (uint64_t)(sa % sb) & mk;
        }
        return ub ? (ua % ub) & mk : mk;
    case OP_MIN: return sg ? (uint64_t)(sa < sb ? sa : sb) & mk : (ua < ub ? ua : ub);
    case OP_MAX: return sg ? (uint64_t)(sa > sb ? sa : sb) & mk : (ua > ub ? ua : ub);
    case OP_AND: return (a & b) & mk;
    case OP_OR: return (a | b) & mk;
    case OP_XOR: return (a ^ b) & mk;
    case OP_SHL: { uint64_t n = b & 0xFFFFFFFFu; return n >= (uint64_t)bits ? 0 : (ua << n) & mk; }
    case OP_SHR: {
        uint64_t n = b & 0xFFFFFFFFu;
        if (sg) return (uint64_t)(n >= (uint64_t)bits ? (sa < 0 ? -1 : 0) : sa >> n) & mk;
        return n >= (uint64_t)bits ? 0 : ua >> n;
    }
    }
    return 0;
}

static uint32_t prmt(uint32_t a, uint32_t b, uint32_t c, int mode)
{
    uint64_t x = (uint64_t)b << 32 | a;
    uint8_t by[8];
    for (int i = 0; i < 8; i++) by[i] = (uint8_t)(x >> (8 * i));
    uint32_t r = 0;
    if (mode == 0) {
        for (int i = 0; i < 4; i++) {
            uint32_t sel = (c >> (4 * i)) & 0xF;
            uint8_t v = by[sel & 7];
            if (sel & 8) v = (v & 0x80) ? 0xFF : 0x00;
            r |= (uint32_t)v << (8 * i);
        }
        return r;
    }
    /* modes: byte indices for d.b0..d.b3 (PTX ISA, prmt) */
    static const uint8_t tab[7][4][4] = {
        {{0}},
        {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}},   /* f4e */
        {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}},   /* b4e */
        {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}},   /* rc8 */
        {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}},   /* ecl */
        {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}},   /* ecr */
        {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}}};  /* rc16 */
    const uint8_t *t = tab[mode][c & 3];
    for (int i = 0; i < 4; i++) r |= (uint32_t)by[t[i]] << (8 * i);
    return r;
}

static uint64_t bfe(uint64_t a, uint32_t pos, uint32_t len, int t)
{
    int bits = emu_type_bits(t);
    pos &= 0xFF;
    len &= 0xFF;
    int msb = bits - 1;
    int sbit;
    if (!is_signed(t) || len == 0) sbit = 0;
    else sbit = (int)((a >> (pos + len - 1 < (uint32_t)msb ? pos + len - 1 : (uint32_t)msb)) & 1);
    uint64_t r = 0;
    for (int i = 0; i <= msb; i++) {
        uint64_t bit = ((uint32_t)i < len && pos + (uint32_t)i <= (uint32_t)msb) ? (a >> (pos + (uint32_t)i)) & 1 : (uint64_t)sbit;
        r |= bit << i;
    }
    return r;
}

static uint64_t bfi(uint64_t f, uint64_t b, uint32_t pos, uint32_t len, int bits)
{
    pos &= 0xFF;
    len &= 0xFF;
    uint64_t r = b;
    for (uint32_t i = 0; i < len && pos + i < (uint32_t)bits; i++) {
        uint64_t bit = (f >> i) & 1;
        r = (r & ~(1ull << (pos + i))) | (bit << (pos + i));
    }
    return r & mask_of(bits);
}

/* ---- float ops ------------------------------------------------------------------------ */

static double f_binop(int op, double a, double b, int *nan_prop)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_MIN:
        if (isnan(a) || isnan(b)) { if (*nan_prop || (isnan(a) && isnan(b))) return NAN; return isnan(a) ? b : a; }
        if (a == 0 && b == 0) return signbit(a) ? a : b;
        return a < b ? a : b;
    case OP_MAX:
        if (isnan(a) || isnan(b)) { if (*nan_prop || (isnan(a) && isnan(b))) return NAN; return isnan(a) ? b : a; }
        if (a == 0 && b == 0) return signbit(a) ? b : a;
        return a > b ? a : b;
    case OP_COPYSIGN: return copysign(b, a);
    }
    return 0;
}

/* One 16-bit float lane op (f16 or bf16), computed in double and rounded once. */
static uint16_t h_op(int op, uint16_t a, uint16_t b, uint16_t c, int bf, const emu_insn *in)
{
    double x = bf ? b2f(a) : h2f(a), y = bf ? b2f(b) : h2f(b), z = bf ? b2f(c) : h2f(c);
    double r;
    int nanp = (in->mod & M_NAN) != 0;
    switch (op) {
    case OP_FMA: case OP_MAD: r = fma(x, y, z); break;
    case OP_NEG: return (uint16_t)(a ^ 0x8000);
    case OP_ABS: return (uint16_t)(a & 0x7FFF);
    default: r = f_binop(op, x, y, &nanp); break;
    }
    if ((in->mod & M_RELU) && !(r >= 0)) r = isnan(r) ? r : 0.0;
    if ((in->mod & M_SAT) && !isnan(r)) r = r < 0 ? 0 : r > 1 ? 1 : r;
    return to_half(r, bf, in->rnd);
}

static int cmp_float(int cmp, double a, double b)
{
    int un = isnan(a) || isnan(b);
    switch (cmp) {
    case CMP_EQ: return !un && a == b;
    case CMP_NE: return !un && a != b;
    case CMP_LT: return !un && a < b;
    case CMP_LE: return !un && a <= b;
    case CMP_GT: return !un && a > b;
    case CMP_GE: return !un && a >= b;
    case CMP_EQU: return un || a == b;
    case CMP_NEU: return un || a != b;
    case CMP_LTU: return un || a < b;
    case CMP_LEU: return un || a <= b;
    case CMP_GTU: return un || a > b;
    case CMP_GEU: return un || a >= b;
    case CMP_NUM: return !un;
    case CMP_NAN: return un;
    }
    return 0;
}

static int cmp_int(int cmp, uint64_t a, uint64_t b, int t)
{
    int bits = emu_type_bits(t);
    int64_t sa = sext(a, bits), sb = sext(b, bits);
    uint64_t ua = a & mask_of(bits), ub = b & mask_of(bits);
    int sg = is_signed(t);
    switch (cmp) {
    case CMP_EQ: return ua == ub;
    case CMP_NE: return ua != ub;
    case CMP_LT: return sg ? sa < sb : ua < ub;
    case CMP_LE: return sg ? sa <= sb : ua <= ub;
    case CMP_GT: return sg ? sa > sb : ua > ub;
    case CMP_GE: return sg ? sa >= sb : ua >= ub;
    case CMP_LO: return ua < ub;
    case CMP_LS: return ua <= ub;
    case CMP_HI: return ua > ub;
    case CMP_HS: return ua >= ub;
    }
    return 0;
}

static double read_f(uint64_t v, int t)
{
    switch (t) {
    case T_F32: return emu_f32(v);
    case T_F64: return emu_f64(v);
    case T_F16: return h2f((uint16_t)v);
    case T_BF16: return b2f((uint16_t)v);
    }
    return 0;
}

/* ---- cvt ------------------------------------------------------------------------------ */

static uint64_t cvt_to_int(double x, int t, int rnd)
{
    int bits = emu_type_bits(t);
    if (isnan(x)) return 0;
    x = round_int(x, rnd ? rnd : RND_RZI);
    if (is_signed(t)) {
        double lo = -ldexp(1.0, bits - 1), hi = ldexp(1.0, bits - 1) - 1;
        if (x < lo) x = lo;
        if (x > hi) x = hi;
        return (uint64_t)(int64_t)x & mask_of(bits);
    }
    double hi = ldexp(1.0, bits) - 1;
    if (x < 0) x = 0;
    if (x > hi) return mask_of(bits);
    return (uint64_t)x;
}

static uint64_t cvt_one(const emu_insn *in, uint64_t a)
{
    int dt = in->type, st = in->type2, rnd = in->rnd;
    int ftz = (in->mod & M_FTZ) != 0, sat = (in->mod & M_SAT) != 0;
    /* packed FP8 and f16 forms */
    if (dt == T_F16X2 && (st == T_E4M3X2 || st == T_E5M2X2)) {
        /* e5m2 is the upper byte of an f16 (exact, payloads kept); e4m3 values convert
         * exactly and its NaN becomes the canonical f16 NaN 0x7FFF (as cuda_fp8.h's host
         * emulation of this instruction does) */
        uint16_t h[2];
        for (int k = 0; k < 2; k++) {
            uint8_t c = (uint8_t)(a >> (8 * k));
            if (st == T_E5M2X2) h[k] = (uint16_t)(c << 8);
            else if ((c & 0x7F) == 0x7F) h[k] = 0x7FFF;
            else h[k] = dsk_f32_to_f16(dsk_fp8_to_f32(c, DSK_E4M3));
        }
        return (uint64_t)h[1] << 16 | h[0];
    }
    if ((dt == T_E4M3X2 || dt == T_E5M2X2) && st == T_F16X2) {
        dsk_dtype ft = dt == T_E4M3X2 ? DSK_E4M3 : DSK_E5M2;
        float lo = h2f((uint16_t)a), hi = h2f((uint16_t)(a >> 16));
        if (in->mod & M_RELU) { lo = lo > 0 ? lo : 0; hi = hi > 0 ? hi : 0; }
        return (uint64_t)dsk_f32_to_fp8(hi, ft) << 8 | dsk_f32_to_fp8(lo, ft);
    }
    int sf = is_float(st), df = is_float(dt);
    if (!sf && !df) {  /* integer <-> integer */
        int sb = emu_type_bits(st), db = emu_type_bits(dt);
        int64_t v = is_signed(st) ? sext(a, sb) : (int64_t)(a & mask_of(sb));
        if (sat) {
            if (is_signed(dt)) {
                int64_t lo = -(int64_t)(1ull << (db - 1)), hi = (int64_t)((1ull << (db - 1)) - 1);
                if (db == 64) { lo = INT64_MIN; hi = INT64_MAX; }
                if (!is_signed(st) && (a & mask_of(sb)) > (uint64_t)hi) v = hi;
                else { if (v < lo) v = lo; if (v > hi) v = hi; }
            } else {
                uint64_t hi = mask_of(db);
                if (is_signed(st) && v < 0) v = 0;
                else if ((uint64_t)v > hi) v = (int64_t)hi;
            }
        }
        return (uint64_t)v & mask_of(db);
    }
    double x;
    if (sf) {
        x = read_f(a, st);
        if (ftz && st == T_F32) x = ftz32((float)x, 1);
    } else {
        int sb = emu_type_bits(st);
        x = is_signed(st) ? (double)sext(a, sb) : (double)(a & mask_of(sb));
        if (sb == 64) {  /* 64-bit integers do not fit a double exactly: convert directly */
            if (dt == T_F32) return emu_bits32(is_signed(st) ? (float)(int64_t)a : (float)a);
            if (dt == T_F64) return emu_bits64(is_signed(st) ? (double)(int64_t)a : (double)a);
        }
    }
    if (!df) return cvt_to_int(x, dt, rnd);
    if (rnd >= RND_RNI && rnd <= RND_RPI) x = round_int(x, rnd);
    if (sat && !isnan(x)) x = x < 0 ? 0 : x > 1 ? 1 : x;
    switch (dt) {
    case T_F32: {
        float f = (rnd && rnd < RND_RNI) ? round_f32(x, rnd) : (float)x;
        return emu_bits32(ftz32(f, ftz));
    }
    case T_F64: return emu_bits64(x);
    case T_F16: return to_half(x, 0, rnd);
    case T_BF16: return to_half(x, 1, rnd);
    }
    return 0;
}

static uint64_t cvt_pack(const emu_insn *in, uint64_t a, uint64_t b)
{
    float fa = emu_f32(a), fb = emu_f32(b);
    if (in->mod & M_RELU) {
        if (fa < 0) fa = 0;
        if (fb < 0) fb = 0;
    }
    /* cvt.rn{.satfinite}.{f16x2,bf16x2,e4m3x2,e5m2x2}.f32 d, a, b: a goes to the upper half
     * (PTX ISA, cvt: "d = {cvt(a), cvt(b)}" with a in the upper element) */
    switch (in->type) {
    case T_F16X2: case T_BF16X2: {
        int bf = in->type == T_BF16X2;
        if ((in->mod & M_SATFINITE) && !bf) {
            if (fa > 65504.f) fa = 65504.f;
            if (fa < -65504.f) fa = -65504.f;
            if (fb > 65504.f) fb = 65504.f;
            if (fb < -65504.f) fb = -65504.f;
        }
        uint16_t hi = to_half(fa, bf, in->rnd), lo = to_half(fb, bf, in->rnd);
        return (uint64_t)hi << 16 | lo;
    }
    case T_E4M3X2: case T_E5M2X2: {
        dsk_dtype ft = in->type == T_E4M3X2 ? DSK_E4M3 : DSK_E5M2;
        return (uint64_t)dsk_f32_to_fp8(fa, ft) << 8 | dsk_f32_to_fp8(fb, ft);
    }
    }
    return 0;
}

/* ---- the ALU handler ------------------------------------------------------------------ */

static uint64_t float_unary(const emu_insn *in, uint64_t a)
{
    int t = in->type, ftz = (in->mod & M_FTZ) != 0;
    if (t == T_F64) {
        double x = emu_f64(a), r = 0;
        switch (in->op) {
        case OP_ABS: return a & ~(1ull << 63);
        case OP_NEG: return a ^ (1ull << 63);
        case OP_RCP: r = 1.0 / x; break;
        case OP_SQRT: r = sqrt(x); break;
        case OP_RSQRT: r = 1.0 / sqrt(x); break;
        default: r = NAN; break;
        }
        return emu_bits64(r);
    }
    if (t == T_F16X2 || t == T_BF16X2 || t == T_F16 || t == T_BF16) {
        int bf = t == T_BF16X2 || t == T_BF16;
        int pairs = (t == T_F16X2 || t == T_BF16X2) ? 2 : 1;
        uint64_t r = 0;
        for (int h = 0; h < pairs; h++) {
            uint16_t x = (uint16_t)(a >> (16 * h)), y;
            float f = bf ? b2f(x) : h2f(x);
            switch (in->op) {
            case OP_ABS: y = (uint16_t)(x & 0x7FFF); break;
            case OP_NEG: y = (uint16_t)(x ^ 0x8000); break;
            case OP_EX2: y = to_half(exp2(f), bf, RND_RN); break;
            case OP_TANH: y = to_half(tanh(f), bf, RND_RN); break;
            case OP_RCP: y = to_half(1.0 / f, bf, RND_RN); break;
            case OP_SQRT: y = to_half(sqrt(f), bf, RND_RN); break;
            case OP_RSQRT: y = to_half(1.0 / sqrt(f), bf, RND_RN); break;
            default: y = 0x7FFF; break;
            }
            r |= (uint64_t)y << (16 * h);
        }
        return r;
    }
    float x = ftz32(emu_f32(a), ftz), r;
    switch (in->op) {
    case OP_ABS: return a & 0x7FFFFFFFu;
    case OP_NEG: return (a ^ 0x80000000u) & 0xFFFFFFFFu;
    case OP_RCP: r = (in->mod & M_APPROX) ? 1.0f / x : round_f32(1.0 / (double)x, in->rnd); break;
    case OP_SQRT: r = (in->mod & M_APPROX) ? sqrtf(x) : round_f32(sqrt((double)x), in->rnd); break;
    case OP_RSQRT: r = (float)(1.0 / sqrt((double)x)); break;
    case OP_EX2: r = exp2f(x); break;
    case OP_LG2: r = log2f(x); break;
    case OP_SIN: r = sinf(x); break;
    case OP_COS: r = cosf(x); break;
    case OP_TANH: r = tanhf(x); break;
    default: r = NAN; break;
    }
    return emu_bits32(ftz32(r, ftz));
}

static uint64_t float_binary(const emu_insn *in, uint64_t a, uint64_t b, uint64_t c)
{
    int t = in->type, ftz = (in->mod & M_FTZ) != 0;
    int nanp = (in->mod & M_NAN) != 0;
    int op = in->op;
    if (t == T_F16X2 || t == T_BF16X2 || t == T_F16 || t == T_BF16) {
        int bf = t == T_BF16X2 || t == T_BF16;
        int pairs = (t == T_F16X2 || t == T_BF16X2) ? 2 : 1;
        uint64_t r = 0;
        for (int h = 0; h < pairs; h++)
            r |= (uint64_t)h_op(op, (uint16_t)(a >> (16 * h)), (uint16_t)(b >> (16 * h)),
                                (uint16_t)(c >> (16 * h)), bf, in) << (16 * h);
        return r;
    }
    if (t == T_F64) {
        double x = emu_f64(a), y = emu_f64(b), z = emu_f64(c);
        if (op == OP_FMA || op == OP_MAD) return emu_bits64(fma(x, y, z));
        return emu_bits64(f_binop(op, x, y, &nanp));
    }
    float x = ftz32(emu_f32(a), ftz), y = ftz32(emu_f32(b), ftz), z = ftz32(emu_f32(c), ftz);
    float r;
    if (op == OP_FMA || op == OP_MAD) {
        r = (in->rnd && in->rnd != RND_RN) ? round_f32(fma((double)x, (double)y, (double)z), in->rnd) : fmaf(x, y, z);
    } else if (op == OP_DIV && (in->mod & M_APPROX)) {
        r = x * (1.0f / y);
    } else if (op == OP_MIN || op == OP_MAX || op == OP_COPYSIGN) {
        r = (float)f_binop(op, x, y, &nanp);
    } else if (in->rnd && in->rnd != RND_RN) {
        r = round_f32(f_binop(op, x, y, &nanp), in->rnd);
    } else {
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV: r = x / y; break;
        default: r = NAN; break;
        }
    }
    if ((in->mod & M_SAT) && !isnan(r)) r = r < 0 ? 0.0f : r > 1 ? 1.0f : r;
    else if (in->mod & M_SAT) r = 0.0f;
    if (isnan(r)) return 0x7FFFFFFFu;  /* NaN results are the canonical NaN (PTX ISA, floating point) */
    return emu_bits32(ftz32(r, ftz));
}

/* The most frequent forms (f32 add/sub/mul/fma round-to-nearest with or without .ftz;
 * 32-bit integer add/sub/mul.lo/logic/shl) without per-lane dispatch. Returns 1 if done. */
static int alu_fast(const emu_insn *in, uint64_t *d, const uint64_t *a, const uint64_t *b, const uint64_t *c,
                    uint32_t m)
{
    int t = in->type;
    if (t == T_F32 && !(in->mod & M_SAT) && in->rnd <= RND_RN) {
        int ftz = (in->mod & M_FTZ) != 0;
        switch (in->op) {
        case OP_ADD: case OP_SUB: case OP_MUL: case OP_FMA: case OP_MAD:
            break;
        default:
            return 0;
        }
        if (in->op == OP_MUL && (in->mod & (M_HI | M_WIDE))) return 0;
        FOR_LANES(l, m) {
            uint32_t ua = (uint32_t)a[l], ub = (uint32_t)b[l];
            if (ftz) { ua = ftz_bits(ua); ub = ftz_bits(ub); }
            float x = emu_f32(ua), y = emu_f32(ub), r;
            switch (in->op) {
            case OP_ADD: r = x + y; break;
            case OP_SUB: r = x - y; break;
            case OP_MUL: r = x * y; break;
            default: {
                uint32_t uc = (uint32_t)c[l];
                if (ftz) uc = ftz_bits(uc);
                r = fmaf(x, y, emu_f32(uc));
                break;
            }
            }
            uint32_t ur = r != r ? 0x7FFFFFFFu : (uint32_t)emu_bits32(r);  /* canonical NaN */
            d[l] = ftz ? ftz_bits(ur) : ur;
        }
        return 1;
    }
    if ((t == T_U32 || t == T_S32 || t == T_B32) && !(in->mod & (M_SAT | M_HI | M_WIDE))) {
        switch (in->op) {
        case OP_ADD: FOR_LANES(l, m) d[l] = (uint32_t)(a[l] + b[l]); return 1;
        case OP_SUB: FOR_LANES(l, m) d[l] = (uint32_t)(a[l] - b[l]); return 1;
        case OP_MUL: FOR_LANES(l, m) d[l] = (uint32_t)((uint32_t)a[l] * (uint32_t)b[l]); return 1;
        case OP_AND: FOR_LANES(l, m) d[l] = (uint32_t)(a[l] & b[l]); return 1;
        case OP_OR: FOR_LANES(l, m) d[l] = (uint32_t)(a[l] | b[l]); return 1;
        case OP_XOR: FOR_LANES(l, m) d[l] = (uint32_t)(a[l] ^ b[l]); return 1;
        case OP_SHL: FOR_LANES(l, m) d[l] = (uint32_t)b[l] >= 32 ? 0 : (uint32_t)((uint32_t)a[l] << (uint32_t)b[l]); return 1;
        case OP_MAD:
            if (!(in->mod & M_LO)) return 0;
            FOR_LANES(l, m) d[l] = (uint32_t)((uint32_t)a[l] * (uint32_t)b[l] + (uint32_t)c[l]);
            return 1;
        default: return 0;
        }
    }
    if ((t == T_U64 || t == T_S64 || t == T_B64) && in->op == OP_ADD) {
        FOR_LANES(l, m) d[l] = a[l] + b[l];
        return 1;
    }
    return 0;
}

int emu_exec_alu(emu_warp *w, const emu_insn *in, uint32_t m)
{
    uint64_t *d = in->d[0] >= 0 ? EMU_R(w, in->d[0]) : NULL;
    const uint64_t *a = in->ns > 0 ? EMU_R(w, in->s[0]) : NULL;
    const uint64_t *b = in->ns > 1 ? EMU_R(w, in->s[1]) : NULL;
    const uint64_t *c = in->ns > 2 ? EMU_R(w, in->s[2]) : NULL;
    const uint64_t *e = in->ns > 3 ? EMU_R(w, in->s[3]) : NULL;
    if (d && b && alu_fast(in, d, a, b, c, m)) return 0;
    int t = in->type;
    int bits = emu_type_bits(t);
    uint64_t mk = mask_of(bits);
    switch (in->op) {
    case OP_MOV:
        FOR_LANES(l, m) d[l] = a[l] & (t == T_PRED ? 1 : mk);
        return 0;
    case OP_PACK: {
        int eb = bits / in->vec;
        FOR_LANES(l, m) {
            uint64_t v = 0;
            for (int k = 0; k < in->vec; k++) v |= (EMU_R(w, in->s[k])[l] & mask_of(eb)) << (eb * k);
            d[l] = v;
        }
        return 0;
    }
    case OP_UNPACK: {
        int eb = bits / in->vec;
        FOR_LANES(l, m) {
            uint64_t v = a[l];
            for (int k = 0; k < in->vec; k++)
                if (in->d[k] >= 0) EMU_R(w, in->d[k])[l] = (v >> (eb * k)) & mask_of(eb);
        }
        return 0;
    }
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_REM: case OP_MIN: case OP_MAX:
    case OP_AND: case OP_OR: case OP_XOR: case OP_SHL: case OP_SHR: case OP_MUL24: case OP_COPYSIGN:
        if (t == T_PRED) {
            FOR_LANES(l, m) {
                uint64_t x = a[l] & 1, y = b[l] & 1;
                d[l] = in->op == OP_AND ? (x & y) : in->op == OP_OR ? (x | y) : (x ^ y);
            }
            return 0;
        }
        if (is_float(t)) {
            FOR_LANES(l, m) d[l] = float_binary(in, a[l], b[l], 0);
            return 0;
        }
        FOR_LANES(l, m) {
            int wide;
            uint64_t r = int_binop(in->op, t, in->mod, a[l], b[l], &wide);
            d[l] = r;
        }
        return 0;
    case OP_MAD: case OP_FMA:
        if (is_float(t)) {
            FOR_LANES(l, m) d[l] = float_binary(in, a[l], b[l], c[l]);
            return 0;
        }
        FOR_LANES(l, m) {
            int wide;
            uint64_t p = int_binop(OP_MUL, t, in->mod & (M_HI | M_WIDE), a[l], b[l], &wide);
            int rb = (in->mod & M_WIDE) ? bits * 2 : bits;
            if ((in->mod & M_SAT) && t == T_S32 && (in->mod & M_HI)) {
                int64_t r = sext(p, 32) + sext(c[l], 32);
                if (r > INT32_MAX) r = INT32_MAX;
                if (r < INT32_MIN) r = INT32_MIN;
                d[l] = (uint64_t)r & 0xFFFFFFFFu;
            } else {
                d[l] = (p + c[l]) & mask_of(rb);
            }
        }
        return 0;
    case OP_ABS: case OP_NEG:
        if (is_float(t)) {
            FOR_LANES(l, m) d[l] = float_unary(in, a[l]);
            return 0;
        }
        FOR_LANES(l, m) {
            int64_t v = sext(a[l], bits);
            d[l] = (uint64_t)(in->op == OP_NEG ? -v : (v < 0 ? -v : v)) & mk;
        }
        return 0;
    case OP_RCP: case OP_SQRT: case OP_RSQRT: case OP_EX2: case OP_LG2: case OP_SIN: case OP_COS:
    case OP_TANH:
        FOR_LANES(l, m) d[l] = float_unary(in, a[l]);
        return 0;
    case OP_NOT:
        FOR_LANES(l, m) d[l] = t == T_PRED ? (~a[l] & 1) : (~a[l] & mk);
        return 0;
    case OP_CNOT:
        FOR_LANES(l, m) d[l] = (a[l] & mk) == 0;
        return 0;
    case OP_POPC:
        FOR_LANES(l, m) d[l] = (uint64_t)__builtin_popcountll(a[l] & mk);
        return 0;
    case OP_CLZ:
        FOR_LANES(l, m) {
            uint64_t v = a[l] & mk;
            d[l] = v ? (uint64_t)(__builtin_clzll(v) - (64 - bits)) : (uint64_t)bits;
        }
        return 0;
    case OP_BREV:
        FOR_LANES(l, m) {
            uint64_t v = a[l], r = 0;
            for (int i = 0; i < bits; i++) r |= ((v >> i) & 1) << (bits - 1 - i);
            d[l] = r;
        }
        return 0;
    case OP_BFIND:
        FOR_LANES(l, m) {
            uint64_t v = a[l] & mk;
            if (is_signed(t) && sext(v, bits) < 0) v = ~v & mk;
            int pos = v ? 63 - __builtin_clzll(v) : -1;
            if (pos >= 0 && (in->mod & M_SHIFT_CLAMP)) pos = bits - 1 - pos;
            d[l] = (uint32_t)pos;
        }
        return 0;
    case OP_LOP3:
        FOR_LANES(l, m) {
            uint32_t x = (uint32_t)a[l], y = (uint32_t)b[l], z = (uint32_t)c[l], r = 0;
            for (int i = 0; i < 8; i++)
                if ((in->imm >> i) & 1)
                    r |= ((i & 4) ? x : ~x) & ((i & 2) ? y : ~y) & ((i & 1) ? z : ~z);
            d[l] = r;
        }
        return 0;
    case OP_SHF:
        FOR_LANES(l, m) {
            uint32_t lo = (uint32_t)a[l], hi = (uint32_t)b[l], n = (uint32_t)c[l];
            n = (in->mod & M_SHIFT_CLAMP) ? (n > 32 ? 32 : n) : (n & 31);
            uint64_t x = (uint64_t)hi << 32 | lo;
            d[l] = in->sub ? (uint32_t)(x >> n) : (uint32_t)((x << n) >> 32);
        }
        return 0;
    case OP_BFE:
        FOR_LANES(l, m) d[l] = bfe(a[l], (uint32_t)b[l], (uint32_t)c[l], t) & mk;
        return 0;
    case OP_BFI:
        FOR_LANES(l, m) d[l] = bfi(a[l], b[l], (uint32_t)c[l], (uint32_t)e[l], bits);
        return 0;
    case OP_PRMT:
        FOR_LANES(l, m) d[l] = prmt((uint32_t)a[l], (uint32_t)b[l], (uint32_t)c[l], in->sub);
        return 0;
    case OP_SETP: {
        uint64_t *q = in->nd > 1 && in->d[1] >= 0 ? EMU_R(w, in->d[1]) : NULL;
        FOR_LANES(l, m) {
            int r;
            if (t == T_F16X2 || t == T_BF16X2)
                return emu_error(w, in, l, "setp on packed halves is not supported");
            if (is_float(t)) {
                double x = read_f(a[l], t), y = read_f(b[l], t);
                if ((in->mod & M_FTZ) && t == T_F32) { x = ftz32((float)x, 1); y = ftz32((float)y, 1); }
                r = cmp_float(in->sub, x, y);
            } else {
                r = cmp_int(in->sub, a[l], b[l], t);
            }
            int nr = !r;
            if (c) {
                int cv = (int)(c[l] & 1) ^ (int)in->imm;
                if (in->mod & M_BOOL_AND) { r &= cv; nr &= cv; }
                if (in->mod & M_BOOL_OR) { r |= cv; nr |= cv; }
                if (in->mod & M_BOOL_XOR) { r ^= cv; nr ^= cv; }
            }
            if (d) d[l] = (uint64_t)r;
            if (q) q[l] = (uint64_t)nr;
        }
        return 0;
    }
    case OP_SELP:
        FOR_LANES(l, m) d[l] = (c[l] & 1) ? a[l] : b[l];
        return 0;
    case OP_TESTP:
        FOR_LANES(l, m) {
            double x = read_f(a[l], t);
            int r = 0;
            switch (in->sub) {
            case 1: r = isfinite(x); break;
            case 2: r = isinf(x); break;
            case 3: r = !isnan(x); break;
            case 4: r = isnan(x) != 0; break;
            case 5: r = t == T_F32 ? fpclassify(emu_f32(a[l])) == FP_NORMAL : fpclassify(x) == FP_NORMAL; break;
            case 6: r = t == T_F32 ? fpclassify(emu_f32(a[l])) == FP_SUBNORMAL : fpclassify(x) == FP_SUBNORMAL; break;
            }
            d[l] = (uint64_t)r;
        }
        return 0;
    case OP_CVT:
        FOR_LANES(l, m) d[l] = cvt_one(in, a[l]);
        return 0;
    case OP_CVT_PACK:
        FOR_LANES(l, m) d[l] = cvt_pack(in, a[l], b[l]);
        return 0;
    }
    return emu_error(w, in, __builtin_ctz(m), "instruction %s is not implemented", emu_op_name(in->op));
}

/* ---- memory --------------------------------------------------------------------------- */

static int type_bytes(int t) { int b = emu_type_bits(t); return b < 8 ? 1 : b / 8; }

static uint64_t load_val(const uint8_t *p, int t)
{
    switch (type_bytes(t)) {
    case 1: return is_signed(t) ? (uint64_t)(int64_t)(int8_t)p[0] : p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return is_signed(t) ? (uint64_t)(int64_t)(int16_t)v : v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return is_signed(t) ? (uint64_t)(int64_t)(int32_t)v : v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static void store_val(uint8_t *p, int t, uint64_t v)
{
    memcpy(p, &v, (size_t)type_bytes(t));
}

static uint64_t atom_apply(int op, int t, uint64_t old, uint64_t b, uint64_t c)
{
    int bits = emu_type_bits(t);
    uint64_t mk = mask_of(bits);
    int sg = is_signed(t);
    if (t == T_F32 && op == 1) return emu_bits32(emu_f32(old) + emu_f32(b));
    if (t == T_F64 && op == 1) return emu_bits64(emu_f64(old) + emu_f64(b));
    if ((t == T_F32 || t == T_F64) && (op == 2 || op == 3)) {
        double x = read_f(old, t), y = read_f(b, t);
        double r = op == 2 ? fmin(x, y) : fmax(x, y);
        return t == T_F32 ? emu_bits32((float)r) : emu_bits64(r);
    }
    switch (op) {
    case 1: return (old + b) & mk;
    case 2: return sg ? ((sext(old, bits) < sext(b, bits)) ? old : b) & mk : ((old & mk) < (b & mk) ? old : b) & mk;
    case 3: return sg ? ((sext(old, bits) > sext(b, bits)) ? old : b) & mk : ((old & mk) > (b & mk) ? old : b) & mk;
    case 4: return ((old & mk) >= (b & mk)) ? 0 : (old + 1) & mk;
    case 5: return (((old & mk) == 0) || ((old & mk) > (b & mk))) ? b & mk : (old - 1) & mk;
    case 6: return b & mk;
    case 7: return ((old & mk) == (b & mk)) ? c & mk : old & mk;
    case 8: return (old & b) & mk;
    case 9: return (old | b) & mk;
    case 10: return (old ^ b) & mk;
    }
    return old;
}

int emu_exec_mem(emu_warp *w, const emu_insn *in, uint32_t m)
{
    emu_launch *L = w->cta->L;
    const uint64_t *base = EMU_R(w, in->s[0]);
    switch (in->op) {
    case OP_LD: {
        int eb = in->type == T_B128 ? 16 : type_bytes(in->type);
        if (eb == 16) return emu_error(w, in, __builtin_ctz(m), ".b128 loads are not supported");
        FOR_LANES(l, m) {
            uint8_t *p = emu_addr(w, in, l, in->space, base[l] + (uint64_t)in->imm, (size_t)eb * in->vec, 0);
            if (!p) return -1;
            for (int k = 0; k < in->vec; k++)
                if (in->d[k] >= 0) EMU_R(w, in->d[k])[l] = load_val(p + eb * k, in->type);
        }
        return 0;
    }
    case OP_ST: {
        int eb = type_bytes(in->type);
        if (in->type == T_B128) return emu_error(w, in, __builtin_ctz(m), ".b128 stores are not supported");
        FOR_LANES(l, m) {
            uint8_t *p = emu_addr(w, in, l, in->space, base[l] + (uint64_t)in->imm, (size_t)eb * in->vec, 1);
            if (!p) return -1;
            for (int k = 0; k < in->vec; k++) store_val(p + eb * k, in->type, EMU_R(w, in->s[1 + k])[l]);
        }
        return 0;
    }
    case OP_ATOM: case OP_RED: {
        int eb = type_bytes(in->type);
        if (in->type == T_F16X2 || in->type == T_BF16X2 || in->type == T_F16 || in->type == T_BF16)
            return emu_error(w, in, __builtin_ctz(m), "atomics on 16-bit floats are not supported");
        const uint64_t *b = EMU_R(w, in->s[1]);
        const uint64_t *c = in->s[2] >= 0 && in->ns > 2 ? EMU_R(w, in->s[2]) : NULL;
        FOR_LANES(l, m) {
            uint8_t *p = emu_addr(w, in, l, in->space, base[l] + (uint64_t)in->imm, (size_t)eb, 1);
            if (!p) return -1;
            uint64_t old = load_val(p, in->type);
            uint64_t nv = atom_apply(in->sub, in->type, old, b[l], c ? c[l] : 0);
            store_val(p, in->type, nv);
            if (in->op == OP_ATOM && in->d[0] >= 0) EMU_R(w, in->d[0])[l] = old & mask_of(emu_type_bits(in->type));
        }
        return 0;
    }
    case OP_CVTA: {
        uint64_t *d = EMU_R(w, in->d[0]);
        uint64_t win = in->space == SP_SHARED || in->space == SP_SHARED_CLUSTER ? EMU_WIN_SHARED
                     : in->space == SP_LOCAL ? EMU_WIN_LOCAL : in->space == SP_PARAM ? EMU_WIN_PARAM : 0;
        int bits = emu_type_bits(in->type);
        FOR_LANES(l, m) {
            uint64_t a = base[l];
            if (!win) { d[l] = a & mask_of(bits); continue; }
            if (in->sub) {  /* generic -> space */
                if ((a & EMU_WIN_MASK) != win && !(win == EMU_WIN_PARAM))
                    return emu_error(w, in, l, "cvta.to: generic address 0x%llx is not in the %s window",
                                     (unsigned long long)a, win == EMU_WIN_SHARED ? "shared" : "local");
                d[l] = win == EMU_WIN_PARAM ? (a | EMU_WIN_PARAM) : (a & ~EMU_WIN_MASK) & mask_of(bits);
            } else {
                if (bits != 64) return emu_error(w, in, l, "cvta to a generic address needs .u64");
                d[l] = (a & ~EMU_WIN_MASK) | win;
            }
        }
        return 0;
    }
    case OP_ISSPACEP: {
        uint64_t *d = EMU_R(w, in->d[0]);
        FOR_LANES(l, m) {
            uint64_t win = base[l] & EMU_WIN_MASK;
            int r;
            switch (in->space) {
            case SP_SHARED: case SP_SHARED_CLUSTER: r = win == EMU_WIN_SHARED; break;
            case SP_LOCAL: r = win == EMU_WIN_LOCAL; break;
            case SP_PARAM: r = win == EMU_WIN_PARAM; break;
            default: r = emu_global_ok(L, (uintptr_t)base[l], 1); break;
            }
            d[l] = (uint64_t)r;
        }
        return 0;
    }
    case OP_MAPA: {
        uint64_t *d = EMU_R(w, in->d[0]);
        const uint64_t *rank = EMU_R(w, in->s[1]);
        FOR_LANES(l, m) {
            if (rank[l] >= (uint64_t)L->cluster_size)
                return emu_error(w, in, l, "mapa: CTA rank %llu, the cluster has %d CTAs", (unsigned long long)rank[l], L->cluster_size);
            uint64_t a = base[l];
            int generic = in->space == SP_GENERIC;
            if (generic) {
                if ((a & EMU_WIN_MASK) != EMU_WIN_SHARED) return emu_error(w, in, l, "mapa: not a shared-window address");
                a &= ~EMU_WIN_MASK;
            }
            uint64_t r = ((rank[l] + 1) << EMU_CLUSTER_SHIFT) | (a & ((1u << EMU_CLUSTER_SHIFT) - 1));
            d[l] = generic ? (r | EMU_WIN_SHARED) : (r & mask_of(emu_type_bits(in->type)));
        }
        return 0;
    }
    case OP_GETCTARANK: {
        uint64_t *d = EMU_R(w, in->d[0]);
        FOR_LANES(l, m) {
            uint64_t a = base[l] & ~EMU_WIN_MASK;
            uint64_t r = a >> EMU_CLUSTER_SHIFT;
            d[l] = r ? r - 1 : (uint64_t)w->cta->rank;
        }
        return 0;
    }
    }
    return emu_error(w, in, __builtin_ctz(m), "bad memory instruction");
}

/* ---- warp collectives ----------------------------------------------------------------- */

/* The membermask operand: uniform over the executing lanes, containing each of them, and
 * every lane it names must be executing now (converged): otherwise a partial-warp
 * collective, which the hardware does not define. */
static int member_check(emu_warp *w, const emu_insn *in, uint32_t m, const uint64_t *mask, uint32_t *out)
{
    int l0 = __builtin_ctz(m);
    uint32_t mm = (uint32_t)mask[l0];
    FOR_LANES(l, m) {
        if ((uint32_t)mask[l] != mm)
            return emu_error(w, in, l, "lanes of the warp give different membermasks (0x%08x and 0x%08x)", mm, (uint32_t)mask[l]);
        if (!((mm >> l) & 1))
            return emu_error(w, in, l, "executing lane %d is not in membermask 0x%08x", l, mm);
    }
    if (mm & ~m)
        return emu_error(w, in, __builtin_ctz(mm & ~m), "partial-warp collective: membermask 0x%08x names lanes 0x%08x "
                         "that are not executing this instruction (diverged or exited)", mm, mm & ~m);
    *out = mm;
    return 0;
}

int emu_exec_warp_collective(emu_warp *w, const emu_insn *in, uint32_t m)
{
    uint32_t mm;
    switch (in->op) {
    case OP_ACTIVEMASK: {
        uint64_t *d = EMU_R(w, in->d[0]);
        FOR_LANES(l, m) d[l] = m;
        return 0;
    }
    case OP_BARWARP:
        return member_check(w, in, m, EMU_R(w, in->s[0]), &mm);
    case OP_SHFL: {
        if (member_check(w, in, m, EMU_R(w, in->s[3]), &mm)) return -1;
        const uint64_t *a = EMU_R(w, in->s[0]), *b = EMU_R(w, in->s[1]), *c = EMU_R(w, in->s[2]);
        uint64_t src[32];
        memcpy(src, a, sizeof src);
        uint64_t *d = in->d[0] >= 0 ? EMU_R(w, in->d[0]) : NULL;
        uint64_t *p = in->d[1] >= 0 ? EMU_R(w, in->d[1]) : NULL;
        /* PTX ISA, shfl.sync: maxLane/minLane from c's clamp and segment mask */
        FOR_LANES(l, m) {
            int bval = (int)(b[l] & 31), cval = (int)(c[l] & 31), segmask = (int)((c[l] >> 8) & 31);
            int maxLane = (l & segmask) | (cval & ~segmask), minLane = l & segmask;
            int j, pval;
            switch (in->sub) {
            case 1: j = l - bval; pval = j >= maxLane; break;
            case 2: j = l + bval; pval = j <= maxLane; break;
            case 3: j = l ^ bval; pval = j <= maxLane; break;
            default: j = minLane | (bval & ~segmask); pval = j <= maxLane; break;
            }
            if (!pval) j = l;
            if (!((m >> j) & 1))
                return emu_error(w, in, l, "shfl reads lane %d, which is not executing it", j);
            if (d) d[l] = src[j] & 0xFFFFFFFFu;
            if (p) p[l] = (uint64_t)pval;
        }
        return 0;
    }
    case OP_VOTE: {
        if (member_check(w, in, m, EMU_R(w, in->s[1]), &mm)) return -1;
        const uint64_t *a = EMU_R(w, in->s[0]);
        uint32_t ballot = 0;
        FOR_LANES(l, m) if (((uint32_t)a[l] & 1u) ^ (uint32_t)in->imm) ballot |= 1u << l;
        uint64_t r;
        switch (in->sub) {
        case 1: r = ballot == m; break;
        case 2: r = ballot != 0; break;
        case 3: r = ballot == m || ballot == 0; break;
        default: r = ballot; break;
        }
        uint64_t *d = EMU_R(w, in->d[0]);
        FOR_LANES(l, m) d[l] = r;
        return 0;
    }
    case OP_REDUX: {
        if (member_check(w, in, m, EMU_R(w, in->s[1]), &mm)) return -1;
        const uint64_t *a = EMU_R(w, in->s[0]);
        int sg = is_signed(in->type);
        uint64_t acc = 0;
        int first = 1;
        FOR_LANES(l, m) {
            uint32_t v = (uint32_t)a[l];
            if (first) { acc = v; first = 0; continue; }
            switch (in->sub) {
            case 1: acc = (uint32_t)(acc + v); break;
            case 2: acc = sg ? (uint32_t)((int32_t)v < (int32_t)acc ? v : acc) : (v < acc ? v : acc); break;
            case 3: acc = sg ? (uint32_t)((int32_t)v > (int32_t)acc ? v : acc) : (v > acc ? v : acc); break;
            case 4: acc &= v; break;
            case 5: acc |= v; break;
            case 6: acc ^= v; break;
            }
        }
        uint64_t *d = EMU_R(w, in->d[0]);
        FOR_LANES(l, m) d[l] = acc;
        return 0;
    }
    case OP_ELECT: {
        if (member_check(w, in, m, EMU_R(w, in->s[0]), &mm)) return -1;
        int leader = __builtin_ctz(mm);
        /* d[0] is the leader lane register unless only the predicate was named (target 1) */
        uint64_t *dl = in->target == 1 ? NULL : (in->d[0] >= 0 ? EMU_R(w, in->d[0]) : NULL);
        uint64_t *dp = in->target == 1 ? EMU_R(w, in->d[0]) : (in->d[1] >= 0 ? EMU_R(w, in->d[1]) : NULL);
        FOR_LANES(l, m) {
            if (dl) dl[l] = (uint64_t)leader;
            if (dp) dp[l] = (uint64_t)(l == leader);
        }
        return 0;
    }
    }
    return emu_error(w, in, __builtin_ctz(m), "%s is not supported", emu_op_name(in->op));
}

const char *emu_op_name(int op)
{
    static const char *names[OP_COUNT] = {
        [OP_NOP] = "nop", [OP_MOV] = "mov", [OP_ADD] = "add", [OP_LD] = "ld", [OP_ST] = "st",
        [OP_SHFL] = "shfl", [OP_VOTE] = "vote", [OP_REDUX] = "redux", [OP_ELECT] = "elect"};
    return (op >= 0 && op < OP_COUNT && names[op]) ? names[op] : "instruction";
}
