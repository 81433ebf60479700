/* emu/emu_decode.c: one PTX instruction statement -> one emu_insn.
 *
 * The opcode is split at '.' into its base name and qualifiers; operands are parsed into
 * a raw form, then resolved to register slots: registers to their slot, immediates,
 * symbol addresses and special registers to constant slots (filled at warp creation),
 * labels to instruction indices (after the function is read). Qualifiers that only
 * affect caching, scope or memory ordering are accepted and have no effect; anything
 * unknown is an error naming the line. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "emu_parse.h"

enum { RO_NAME = 0, RO_NUM, RO_VEC, RO_MEM, RO_SINK };
typedef struct raw {
    int kind, neg, minus;
    const char *s; int len;
    const char *s2; int len2;     /* second name of a pair a|b */
    int vbeg, vn;                 /* RO_VEC elements in the pool */
    int base;                     /* RO_MEM: base operand in the pool */
    int tvec;                     /* RO_MEM: tensor coordinate vector in the pool, -1 none */
    int64_t off;
} raw;

#define POOL 600
typedef struct dec {
    emu_parser *P;
    int line;
    char parts[24][48]; int nparts;
    int ty[4]; int nty;
    raw pool[POOL]; int npool;
    int ops[16]; int nops;        /* top-level operands (pool indices) */
    emu_insn in;
} dec;

/* ---- numbers -------------------------------------------------------------------------- */

int emu_parse_number(const char *s, int len, emu_imm *out)
{
    char buf[80];
    if (len <= 0 || len >= (int)sizeof buf) return -1;
    memcpy(buf, s, (size_t)len);
    buf[len] = 0;
    memset(out, 0, sizeof *out);
    if (len > 2 && buf[0] == '0' && (buf[1] == 'f' || buf[1] == 'F')) {
        if (len != 10) return -1;
        char *e;
        out->u = strtoull(buf + 2, &e, 16);
        out->kind = IMM_F32BITS;
        return *e ? -1 : 0;
    }
    if (len > 2 && buf[0] == '0' && (buf[1] == 'd' || buf[1] == 'D')) {
        if (len != 18) return -1;
        char *e;
        out->u = strtoull(buf + 2, &e, 16);
        out->kind = IMM_F64BITS;
        return *e ? -1 : 0;
    }
    if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
        char *e;
        out->u = strtoull(buf + 2, &e, 16);
        if (*e == 'U' || *e == 'u') e++;
        return *e ? -1 : 0;
    }
    if (strpbrk(buf, ".eE")) {
        char *e;
        out->f = strtod(buf, &e);
        out->kind = IMM_FLOAT;
        return *e ? -1 : 0;
    }
    char *e;
    int base = (len > 1 && buf[0] == '0') ? 8 : 10;
    out->u = strtoull(buf, &e, base);
    if (*e == 'U' || *e == 'u') e++;
    return *e ? -1 : 0;
}

/* The bits of a literal used as an operand of type t. */
uint64_t emu_imm_bits(const emu_imm *im, int t, int neg)
{
    int is_f32 = t == T_F32, is_f64 = t == T_F64;
    if (is_f32 || is_f64) {
        double v;
        switch (im->kind) {
        case IMM_F32BITS: v = emu_f32(im->u); break;
        case IMM_F64BITS: v = emu_f64(im->u); break;
        case IMM_FLOAT: v = im->f; break;
        default: v = (double)(int64_t)im->u; break;
        }
        if (im->kind == IMM_F32BITS && is_f32 && !neg) return im->u;
        if (im->kind == IMM_F64BITS && is_f64 && !neg) return im->u;
        if (neg) v = -v;
        return is_f32 ? emu_bits32((float)v) : emu_bits64(v);
    }
    uint64_t u;
    switch (im->kind) {
    case IMM_FLOAT: u = (uint64_t)(int64_t)im->f; break;
    default: u = im->u; break;
    }
    if (neg) u = (uint64_t)(-(int64_t)u);
    int bits = emu_type_bits(t);
    if (bits > 0 && bits < 64) u &= (1ull << bits) - 1;
    return u;
}

/* ---- qualifiers ----------------------------------------------------------------------- */

static const struct { const char *n; int t; } type_names[] = {
    {"pred", T_PRED}, {"b8", T_B8}, {"b16", T_B16}, {"b32", T_B32}, {"b64", T_B64},
    {"b128", T_B128}, {"u8", T_U8}, {"u16", T_U16}, {"u32", T_U32}, {"u64", T_U64},
    {"s8", T_S8}, {"s16", T_S16}, {"s32", T_S32}, {"s64", T_S64}, {"f16", T_F16},
    {"f16x2", T_F16X2}, {"bf16", T_BF16}, {"bf16x2", T_BF16X2}, {"tf32", T_TF32},
    {"f32", T_F32}, {"f64", T_F64}, {"e4m3", T_E4M3}, {"e5m2", T_E5M2},
    {"e4m3x2", T_E4M3X2}, {"e5m2x2", T_E5M2X2}};

static int type_of(const char *p)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(p, type_names[i].n) == 0) return type_names[i].t;
    return T_NONE;
}

static int has(const dec *D, const char *p)
{
    for (int i = 0; i < D->nparts; i++)
        if (strcmp(D->parts[i], p) == 0) return 1;
    return 0;
}

static int space_of(const dec *D)
{
    if (has(D, "shared::cluster")) return SP_SHARED_CLUSTER;
    if (has(D, "shared") || has(D, "shared::cta")) return SP_SHARED;
    if (has(D, "global")) return SP_GLOBAL;
    if (has(D, "local")) return SP_LOCAL;
    if (has(D, "param") || has(D, "param::entry") || has(D, "param::func")) return SP_PARAM;
    if (has(D, "const")) return SP_CONST;
    return SP_GENERIC;
}

static int rnd_of(const dec *D)
{
    static const char *n[] = {"", "rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi", "rna"};
    for (int i = 1; i < 10; i++)
        if (has(D, n[i])) return i;
    return RND_NONE;
}

/* qualifiers with no functional effect in the emulator */
static int is_ignorable(const char *p)
{
    static const char *ok[] = {
        "sync", "aligned", "uni", "nc", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "weak",
        "relaxed", "acquire", "release", "acq_rel", "sc", "cta", "gpu", "sys", "cluster",
        "L1::no_allocate", "L1::evict_normal", "L1::evict_unchanged", "L1::evict_first",
        "L1::evict_last", "L2::evict_normal", "L2::evict_first", "L2::evict_last",
        "L2::cache_hint", "L2::64B", "L2::128B", "L2::256B", "L2::evict_unchanged",
        "L2::no_allocate", "unified", "mmio", "proxy", "async", "tile", "im2col_no_offs",
        "mbarrier::complete_tx::bytes", "bulk_group", "read", "full", "exclusive", "prefetch", "L2", NULL};
    for (int i = 0; ok[i]; i++)
        if (strcmp(p, ok[i]) == 0) return 1;
    return 0;
}

/* ---- operands ------------------------------------------------------------------------- */

static emu_tok *T(dec *D) { return &D->P->tok; }
static int punct(dec *D, char c) { return T(D)->kind == TK_PUNCT && T(D)->s[0] == c; }

static int new_raw(dec *D)
{
    if (D->npool >= POOL) return emu_perr(D->P, D->line, "too many operands");
    raw *r = &D->pool[D->npool];
    memset(r, 0, sizeof *r);
    r->base = r->tvec = -1;
    return D->npool++;
}

static int parse_simple(dec *D)
{
    emu_parser *P = D->P;
    int i = new_raw(D);
    if (i < 0) return -1;
    raw *r = &D->pool[i];
    if (punct(D, '!')) { r->neg = 1; emu_lex(P); }
    if (punct(D, '-')) { r->minus = 1; emu_lex(P); }
    emu_tok *t = T(D);
    if (t->kind == TK_NUM) {
        r->kind = RO_NUM;
        r->s = t->s;
        r->len = t->len;
        emu_lex(P);
        return i;
    }
    if (t->kind != TK_ID) return emu_perr(P, D->line, "expected an operand");
    r->kind = (t->len == 1 && t->s[0] == '_') ? RO_SINK : RO_NAME;
    r->s = t->s;
    r->len = t->len;
    emu_lex(P);
    if (punct(D, '|')) {
        emu_lex(P);
        if (T(D)->kind != TK_ID) return emu_perr(P, D->line, "expected a name after '|'");
        r->s2 = T(D)->s;
        r->len2 = T(D)->len;
        emu_lex(P);
    }
    if (punct(D, '+') && r->kind == RO_NAME) {
        emu_lex(P);
        int neg = 0;
        if (punct(D, '-')) { neg = 1; emu_lex(P); }
        emu_imm im;
        if (T(D)->kind != TK_NUM || emu_parse_number(T(D)->s, T(D)->len, &im))
            return emu_perr(P, D->line, "expected an offset");
        D->pool[i].off = neg ? -(int64_t)im.u : (int64_t)im.u;
        emu_lex(P);
    }
    return i;
}

static int parse_vec(dec *D)
{
    emu_parser *P = D->P;
    emu_lex(P); /* '{' */
    int ids[300], n = 0;
    while (!punct(D, '}')) {
        int e = parse_simple(D);
        if (e < 0) return -1;
        if (n >= 300) return emu_perr(P, D->line, "vector operand too long");
        ids[n++] = e;
        if (punct(D, ',')) emu_lex(P);
        else if (!punct(D, '}')) return emu_perr(P, D->line, "expected ',' or '}' in a vector");
    }
    emu_lex(P);
    /* elements must be contiguous in the pool: copy them to a fresh run */
    int i = new_raw(D);
    if (i < 0) return -1;
    int beg = D->npool;
    for (int k = 0; k < n; k++) {
        int j = new_raw(D);
        if (j < 0) return -1;
        D->pool[j] = D->pool[ids[k]];
    }
    D->pool[i].kind = RO_VEC;
    D->pool[i].vbeg = beg;
    D->pool[i].vn = n;
    return i;
}

static int parse_operand(dec *D)
{
    emu_parser *P = D->P;
    if (punct(D, '{')) return parse_vec(D);
    if (!punct(D, '[')) return parse_simple(D);
    emu_lex(P);
    int i = new_raw(D);
    if (i < 0) return -1;
    D->pool[i].kind = RO_MEM;
    int b = parse_simple(D);
    if (b < 0) return -1;
    D->pool[i].base = b;
    D->pool[i].off = D->pool[b].off;
    D->pool[b].off = 0;
    for (;;) {
        if (punct(D, '+') || punct(D, '-')) {
            int sign = punct(D, '-') ? -1 : 1;
            emu_lex(P);
            if (punct(D, '-')) { sign = -sign; emu_lex(P); }
            emu_imm im;
            if (T(D)->kind != TK_NUM || emu_parse_number(T(D)->s, T(D)->len, &im) || im.kind != IMM_INT)
                return emu_perr(P, D->line, "expected an integer offset in an address");
            D->pool[i].off += sign * (int64_t)im.u;
            emu_lex(P);
            continue;
        }
        if (punct(D, ',')) {
            emu_lex(P);
            if (!punct(D, '{')) return emu_perr(P, D->line, "expected '{' (tensor coordinates)");
            int v = parse_vec(D);
            if (v < 0) return -1;
            D->pool[i].tvec = v;
            continue;
        }
        break;
    }
    if (!punct(D, ']')) return emu_perr(P, D->line, "expected ']'");
    emu_lex(P);
    return i;
}

/* ---- resolving operands to slots ------------------------------------------------------ */

static const struct { const char *n; int kind; int dim; } specials[] = {
    {"%tid", CK_TID, -1}, {"%ntid", CK_NTID, -1}, {"%ctaid", CK_CTAID, -1},
    {"%nctaid", CK_NCTAID, -1}, {"%laneid", CK_LANEID, 0}, {"%warpid", CK_WARPID, 0},
    {"%nwarpid", CK_NWARPID, 0}, {"%smid", CK_SMID, 0}, {"%nsmid", CK_NSMID, 0},
    {"%cluster_ctaid", CK_CLUSTER_CTAID, -1}, {"%cluster_nctaid", CK_CLUSTER_NCTAID, -1},
    {"%clusterid", CK_CLUSTERID, -1}, {"%nclusterid", CK_NCLUSTERID, -1},
    {"%cluster_ctarank", CK_CLUSTER_CTARANK, 0}, {"%cluster_nctarank", CK_CLUSTER_NCTARANK, 0},
    {"%is_explicit_cluster", CK_IS_EXPLICIT_CLUSTER, 0}, {"%dynamic_smem_size", CK_DYN_SMEM, 0},
    {"%total_smem_size", CK_TOTAL_SMEM, 0}, {"%aggr_smem_size", CK_TOTAL_SMEM, 0},
    {"%lanemask_eq", CK_LANEMASK_EQ, 0}, {"%lanemask_lt", CK_LANEMASK_LT, 0},
    {"%lanemask_le", CK_LANEMASK_LE, 0}, {"%lanemask_gt", CK_LANEMASK_GT, 0},
    {"%lanemask_ge", CK_LANEMASK_GE, 0}, {"%gridid", CK_GRIDID, 0}};

static int special_slot(dec *D, const char *s, int len)
{
    char buf[64];
    if (len >= (int)sizeof buf) return -2;
    memcpy(buf, s, (size_t)len);
    buf[len] = 0;
    int dim = 0;
    char *dot = strchr(buf, '.');
    if (dot) {
        if (strcmp(dot, ".x") == 0) dim = 0;
        else if (strcmp(dot, ".y") == 0) dim = 1;
        else if (strcmp(dot, ".z") == 0) dim = 2;
        else return -2;
        *dot = 0;
    }
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        if (strcmp(buf, specials[i].n) == 0) {
            if ((specials[i].dim == -1) != (dot != NULL)) return -2;
            return emu_const_slot(D->P, specials[i].kind, dim, 0);
        }
    return -2;
}

static int is_clock_name(const raw *r)
{
    static const char *n[] = {"%clock", "%clock_hi", "%clock64", "%globaltimer",
                              "%globaltimer_lo", "%globaltimer_hi", NULL};
    for (int i = 0; n[i]; i++)
        if ((int)strlen(n[i]) == r->len && memcmp(r->s, n[i], (size_t)r->len) == 0) return 1;
    return 0;
}

/* A source operand of type t as a slot. */
static int src(dec *D, int ri, int t)
{
    emu_parser *P = D->P;
    raw *r = &D->pool[ri];
    if (r->kind == RO_NUM) {
        emu_imm im;
        if (emu_parse_number(r->s, r->len, &im))
            return emu_perr(P, D->line, "bad number '%.*s'", r->len, r->s);
        return emu_const_slot(P, CK_IMM, 0, emu_imm_bits(&im, t, r->minus));
    }
    if (r->kind != RO_NAME) return emu_perr(P, D->line, "expected a register or immediate operand");
    int idx;
    emu_sym *s = emu_sym_find(P, r->s, r->len, &idx);
    if (s) {
        switch (s->kind) {
        case SYM_REG:
            if (r->off) return emu_perr(P, D->line, "register with an offset");
            return (int)s->value + idx;
        case SYM_PARAM:  /* parameter addresses carry the param window (generic = param address) */
            return emu_const_slot(P, CK_IMM, 0, EMU_WIN_PARAM + (uint64_t)(s->value + r->off));
        case SYM_SHARED: case SYM_LOCAL: case SYM_GLOBAL:
            return emu_const_slot(P, CK_IMM, 0, (uint64_t)(s->value + r->off));
        case SYM_DYN_SHARED:
            return emu_const_slot(P, CK_DYN_SMEM_BASE, 0, (uint64_t)r->off);
        }
    }
    if (r->s[0] == '%') {
        int sl = special_slot(D, r->s, r->len);
        if (sl >= 0 || sl == -1) return sl;
    }
    return emu_perr(P, D->line, "undeclared name '%.*s'", r->len, r->s);
}

static int dst(dec *D, int ri)
{
    raw *r = &D->pool[ri];
    if (r->kind == RO_SINK) return -1;
    if (r->kind != RO_NAME) return emu_perr(D->P, D->line, "expected a destination register");
    int idx;
    emu_sym *s = emu_sym_find(D->P, r->s, r->len, &idx);
    if (!s || s->kind != SYM_REG)
        return emu_perr(D->P, D->line, "'%.*s' is not a register", r->len, r->s);
    return (int)s->value + idx;
}

/* A memory operand [base+off]: base slot, offset into *off. */
static int mem(dec *D, int ri, int64_t *off)
{
    raw *r = &D->pool[ri];
    if (r->kind != RO_MEM) return emu_perr(D->P, D->line, "expected a memory operand [..]");
    *off = r->off;
    return src(D, r->base, T_U64);
}

static int list_push(dec *D, int slot)
{
    emu_parser *P = D->P;
    if (emu_grow((void **)&P->lists, &P->caplists, P->nlists + 1, sizeof(int32_t)))
        return emu_perr(P, D->line, "out of memory");
    P->lists[P->nlists++] = slot;
    return 0;
}

/* Pushes the elements of vector operand ri (dst: destinations) to the list; returns count. */
static int list_vec(dec *D, int ri, int as_dst, int t)
{
    raw *r = &D->pool[ri];
    if (r->kind != RO_VEC) {
        int s = as_dst ? dst(D, ri) : src(D, ri, t);
        if (s < -1 || (s == -1 && D->P->failed)) return -1;
        return list_push(D, s) ? -1 : 1;
    }
    for (int k = 0; k < r->vn; k++) {
        int s = as_dst ? dst(D, r->vbeg + k) : src(D, r->vbeg + k, t);
        if (D->P->failed) return -1;
        if (list_push(D, s)) return -1;
    }
    return r->vn;
}

static int nops_is(dec *D, int lo, int hi)
{
    if (D->nops < lo || D->nops > hi) {
        if (lo == hi) return emu_perr(D->P, D->line, "expected %d operands, got %d", lo, D->nops);
        return emu_perr(D->P, D->line, "expected %d to %d operands, got %d", lo, hi, D->nops);
    }
    return 0;
}

static int OPD(dec *D, int i) { return D->ops[i]; }

/* ---- per-instruction decoding ---------------------------------------------------------- */

static int need_type(dec *D)
{
    if (D->nty < 1) return emu_perr(D->P, D->line, "instruction without a type");
    return 0;
}

/* d, a[, b[, c[, e]]] with all operands of the instruction's type */
static int dec_alu(dec *D, int op, int nsrc_min, int nsrc_max)
{
    emu_insn *in = &D->in;
    if (need_type(D) || nops_is(D, 1 + nsrc_min, 1 + nsrc_max)) return -1;
    in->op = (uint16_t)op;
    in->type = (uint8_t)D->ty[0];
    in->nd = 1;
    if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
    int st = D->ty[0];
    if ((in->mod & M_WIDE) && (op == OP_MAD)) st = D->ty[0];
    for (int i = 1; i < D->nops; i++) {
        int t = st;
        if ((op == OP_SHL || op == OP_SHR) && i == 2) t = T_U32;
        if ((op == OP_BFE && i >= 2) || (op == OP_BFI && i >= 3)) t = T_U32;
        if (op == OP_MAD && (in->mod & M_WIDE) && i == 3) t = D->ty[0] == T_S32 ? T_S64 : T_U64;
        if (op == OP_MAD && (in->mod & M_WIDE) && i == 3 && D->ty[0] == T_S16) t = T_S32;
        if (op == OP_MAD && (in->mod & M_WIDE) && i == 3 && D->ty[0] == T_U16) t = T_U32;
        int s = src(D, OPD(D, i), t);
        if (s < 0) return -1;
        in->s[in->ns++] = s;
    }
    return 0;
}

static int cmp_of(const dec *D)
{
    static const char *n[] = {"", "eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs",
                              "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"};
    for (int i = 1; i < 19; i++)
        if (has(D, n[i])) return i;
    return 0;
}

static int dec_setp(dec *D)
{
    emu_insn *in = &D->in;
    in->op = OP_SETP;
    if (need_type(D)) return -1;
    in->type = (uint8_t)D->ty[D->nty - 1];
    in->sub = (uint16_t)cmp_of(D);
    if (!in->sub) return emu_perr(D->P, D->line, "setp without a comparison");
    if (has(D, "and")) in->mod |= M_BOOL_AND;
    if (has(D, "or")) in->mod |= M_BOOL_OR;
    if (has(D, "xor")) in->mod |= M_BOOL_XOR;
    int boolop = (in->mod & (M_BOOL_AND | M_BOOL_OR | M_BOOL_XOR)) != 0;
    if (nops_is(D, boolop ? 4 : 3, boolop ? 4 : 3)) return -1;
    raw *p = &D->pool[OPD(D, 0)];
    in->d[0] = dst(D, OPD(D, 0));
    in->nd = 1;
    if (p->s2) {
        raw q = *p;
        q.s = p->s2;
        q.len = p->len2;
        q.s2 = NULL;
        int qi = new_raw(D);
        if (qi < 0) return -1;
        D->pool[qi] = q;
        in->d[1] = dst(D, qi);
        in->nd = 2;
    }
    if (D->P->failed) return -1;
    for (int i = 1; i < 3; i++)
        if ((in->s[in->ns++] = src(D, OPD(D, i), in->type)) < 0) return -1;
    if (boolop) {
        if ((in->s[in->ns++] = src(D, OPD(D, 3), T_PRED)) < 0) return -1;
        in->imm = D->pool[OPD(D, 3)].neg;
    }
    return 0;
}

static int dec_cvt(dec *D)
{
    emu_insn *in = &D->in;
    if (D->nty != 2) return emu_perr(D->P, D->line, "cvt needs two types");
    if (D->ty[0] == T_TF32 || D->ty[1] == T_TF32) return emu_perr(D->P, D->line, "cvt with .tf32 is not supported");
    if (D->ty[0] == T_B128 || D->ty[1] == T_B128 || D->ty[0] == T_PRED || D->ty[1] == T_PRED)
        return emu_perr(D->P, D->line, "cvt between these types is not supported");
    in->type = (uint8_t)D->ty[0];
    in->type2 = (uint8_t)D->ty[1];
    in->nd = 1;
    if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
    int packed_dst = in->type == T_F16X2 || in->type == T_BF16X2 || in->type == T_E4M3X2 ||
                     in->type == T_E5M2X2;
    if (packed_dst && in->type2 == T_F32) {
        if (nops_is(D, 3, 3)) return -1;
        in->op = OP_CVT_PACK;
        for (int i = 1; i < 3; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), T_F32)) < 0) return -1;
        return 0;
    }
    if (nops_is(D, 2, 2)) return -1;
    in->op = OP_CVT;
    if ((in->s[in->ns++] = src(D, OPD(D, 1), in->type2)) < 0) return -1;
    return 0;
}

static int dec_mov(dec *D)
{
    emu_insn *in = &D->in;
    if (need_type(D) || nops_is(D, 2, 2)) return -1;
    in->type = (uint8_t)D->ty[0];
    raw *a = &D->pool[OPD(D, 0)], *b = &D->pool[OPD(D, 1)];
    if (a->kind == RO_VEC) {  /* unpack */
        in->op = OP_UNPACK;
        if (a->vn > 4 || a->vn < 2) return emu_perr(D->P, D->line, "bad unpack vector");
        for (int k = 0; k < a->vn; k++) in->d[k] = dst(D, a->vbeg + k);
        in->nd = (uint8_t)a->vn;
        in->vec = (uint8_t)a->vn;
        if (D->P->failed) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 1), in->type)) < 0) return -1;
        return 0;
    }
    in->nd = 1;
    if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
    if (b->kind == RO_VEC) {
        in->op = OP_PACK;
        if (b->vn > 4 || b->vn < 2) return emu_perr(D->P, D->line, "bad pack vector");
        in->vec = (uint8_t)b->vn;
        int et = emu_type_bits(in->type) / b->vn;
        int t = et == 8 ? T_B8 : et == 16 ? T_B16 : et == 32 ? T_B32 : T_B64;
        for (int k = 0; k < b->vn; k++)
            if ((in->s[in->ns++] = src(D, b->vbeg + k, t)) < 0) return -1;
        return 0;
    }
    if (b->kind == RO_NAME && is_clock_name(b)) {
        in->op = OP_CLOCK;
        return 0;
    }
    in->op = OP_MOV;
    if ((in->s[in->ns++] = src(D, OPD(D, 1), in->type)) < 0) return -1;
    return 0;
}

static int dec_ld(dec *D, int is_st)
{
    emu_insn *in = &D->in;
    if (need_type(D) || nops_is(D, 2, 3)) return -1;
    in->op = is_st ? OP_ST : OP_LD;
    in->type = (uint8_t)D->ty[0];
    in->space = (uint8_t)space_of(D);
    in->vec = has(D, "v2") ? 2 : has(D, "v4") ? 4 : has(D, "v8") ? 8 : 1;
    if (in->vec > 4) return emu_perr(D->P, D->line, ".v8 is not supported");
    if (has(D, "volatile")) in->mod |= M_VOLATILE;
    int mo = OPD(D, is_st ? 0 : 1), vo = OPD(D, is_st ? 1 : 0);
    if ((in->s[in->ns++] = mem(D, mo, &in->imm)) < 0) return -1;
    raw *v = &D->pool[vo];
    int n = v->kind == RO_VEC ? v->vn : 1;
    if (n != in->vec) return emu_perr(D->P, D->line, "vector width does not match .v%d", in->vec);
    for (int k = 0; k < n; k++) {
        int ri = v->kind == RO_VEC ? v->vbeg + k : vo;
        if (is_st) {
            if ((in->s[in->ns++] = src(D, ri, in->type)) < 0) return -1;
        } else {
            in->d[k] = dst(D, ri);
            if (D->P->failed) return -1;
        }
    }
    if (!is_st) in->nd = (uint8_t)n;
    /* a third operand is an L2 cache policy: read it (must be written) and ignore it */
    if (D->nops == 3 && (in->s[in->ns++] = src(D, OPD(D, 2), T_B64)) < 0) return -1;
    return 0;
}

static int dec_atom(dec *D, int is_red)
{
    emu_insn *in = &D->in;
    static const char *n[] = {"", "add", "min", "max", "inc", "dec", "exch", "cas", "and",
                              "or", "xor"};
    in->op = is_red ? OP_RED : OP_ATOM;
    for (int i = 1; i < 11; i++)
        if (has(D, n[i])) in->sub = (uint16_t)i;
    if (!in->sub) return emu_perr(D->P, D->line, "atom/red without an operation");
    if (need_type(D)) return -1;
    in->type = (uint8_t)D->ty[0];
    in->space = (uint8_t)space_of(D);
    int first = 0;
    if (!is_red) {
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
        first = 1;
    }
    int want = (in->sub == 7 ? 3 : 2) + first;
    if (D->nops < want || D->nops > want + 1) return nops_is(D, want, want);
    if ((in->s[in->ns++] = mem(D, OPD(D, first), &in->imm)) < 0) return -1;
    for (int i = first + 1; i < want; i++)
        if ((in->s[in->ns++] = src(D, OPD(D, i), in->type)) < 0) return -1;
    return 0;
}

static int dec_bar(dec *D, const char *base)
{
    emu_insn *in = &D->in;
    in->op = OP_BAR;
    int is_arrive = has(D, "arrive"), is_red = has(D, "red");
    in->sub = (uint16_t)(is_arrive ? 1 : is_red ? 2 : 0);
    if (strcmp(base, "bar") == 0 || has(D, "aligned")) in->mod |= M_ALIGNED;
    if (!is_arrive && !is_red && !has(D, "sync") && strcmp(base, "bar") == 0 && !has(D, "cta"))
        return emu_perr(D->P, D->line, "unsupported bar form");
    int first = 0;
    if (is_red) {
        in->type = (uint8_t)(has(D, "popc") ? 1 : has(D, "and") ? 2 : has(D, "or") ? 3 : 0);
        if (!in->type) return emu_perr(D->P, D->line, "bar.red needs popc/and/or");
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
        first = 1;
    }
    int n = D->nops - first;
    if (n < (is_red ? 2 : 1) || n > (is_red ? 3 : 2)) return emu_perr(D->P, D->line, "bad barrier operands");
    if ((in->s[in->ns++] = src(D, OPD(D, first), T_U32)) < 0) return -1;
    int has_count = is_red ? n == 3 : n == 2;
    in->s[1] = -1;
    if (has_count && (in->s[1] = src(D, OPD(D, first + 1), T_U32)) < 0) return -1;
    in->ns = 2;
    if (in->s[1] < 0) in->ns = 1;
    if (is_red) {
        int pi = OPD(D, D->nops - 1);
        if ((in->s[2] = src(D, pi, T_PRED)) < 0) return -1;
        in->imm = D->pool[pi].neg;
        if (in->ns == 1) { in->s[1] = in->s[2]; in->s[2] = -1; in->target = 1; }
        in->ns = in->ns == 1 ? 2 : 3;
    }
    return 0;
}

static int dec_mbarrier(dec *D)
{
    emu_insn *in = &D->in;
    in->op = OP_MBAR;
    in->space = (uint8_t)space_of(D);
    /* sub: 1 init, 2 arrive, 3 arrive.expect_tx, 4 expect_tx, 5 complete_tx, 6 test_wait,
     * 7 try_wait, 8 inval, 9 arrive_drop, 10 pending_count, 11 arrive_drop.expect_tx */
    const char *verb = D->parts[0];
    int parity = has(D, "parity");
    if (strcmp(verb, "init") == 0) in->sub = 1;
    else if (strcmp(verb, "arrive") == 0) in->sub = has(D, "expect_tx") ? 3 : 2;
    else if (strcmp(verb, "expect_tx") == 0) in->sub = 4;
    else if (strcmp(verb, "complete_tx") == 0) in->sub = 5;
    else if (strcmp(verb, "test_wait") == 0) in->sub = 6;
    else if (strcmp(verb, "try_wait") == 0) in->sub = 7;
    else if (strcmp(verb, "inval") == 0) in->sub = 8;
    else if (strcmp(verb, "arrive_drop") == 0) in->sub = has(D, "expect_tx") ? 11 : 9;
    else if (strcmp(verb, "pending_count") == 0) in->sub = 10;
    else return emu_perr(D->P, D->line, "unsupported mbarrier operation");
    in->target = parity;
    int i = 0;
    in->d[0] = -1;
    switch (in->sub) {
    case 1: case 4: case 5:
        if (nops_is(D, 2, 2)) return -1;
        if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
        if ((in->s[1] = src(D, OPD(D, 1), T_U32)) < 0) return -1;
        in->ns = 2;
        return 0;
    case 8:
        if (nops_is(D, 1, 1)) return -1;
        if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
        in->ns = 1;
        return 0;
    case 10:
        if (nops_is(D, 2, 2)) return -1;
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        if ((in->s[0] = src(D, OPD(D, 1), T_B64)) < 0) return -1;
        in->ns = 1;
        return 0;
    case 2: case 3: case 9: case 11:
        if (D->nops < 1) return nops_is(D, 2, 3);
        if (D->pool[OPD(D, 0)].kind != RO_MEM) {
            in->d[0] = dst(D, OPD(D, 0));
            if (D->P->failed) return -1;
            in->nd = in->d[0] >= 0;
            i = 1;
        }
        if (D->nops - i < 1 || D->nops - i > 2) return nops_is(D, 2, 3);
        if ((in->s[0] = mem(D, OPD(D, i), &in->imm)) < 0) return -1;
        in->ns = 1;
        in->s[1] = -1;
        if (D->nops - i == 2) {
            if ((in->s[1] = src(D, OPD(D, i + 1), T_U32)) < 0) return -1;
            in->ns = 2;
        } else if (in->sub == 3 || in->sub == 11) {
            return emu_perr(D->P, D->line, "arrive.expect_tx needs a transaction count");
        }
        if (in->nd && in->d[0] < 0) in->nd = 0;
        return 0;
    default: /* waits */
        if (nops_is(D, 3, 4)) return -1;
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return emu_perr(D->P, D->line, "bad destination");
        if ((in->s[0] = mem(D, OPD(D, 1), &in->imm)) < 0) return -1;
        if ((in->s[1] = src(D, OPD(D, 2), parity ? T_U32 : T_B64)) < 0) return -1;
        in->ns = 2;
        if (D->nops == 4 && (in->s[in->ns++] = src(D, OPD(D, 3), T_U32)) < 0) return -1;
        return 0;
    }
}

static int dec_cp(dec *D)
{
    emu_insn *in = &D->in;
    /* parts[0] is "async" */
    if (D->nparts >= 2 && strcmp(D->parts[1], "commit_group") == 0) {
        in->op = OP_CPASYNC_COMMIT;
        return nops_is(D, 0, 0);
    }
    if (D->nparts >= 2 && (strcmp(D->parts[1], "wait_group") == 0 || strcmp(D->parts[1], "wait_all") == 0)) {
        in->op = OP_CPASYNC_WAIT;
        if (strcmp(D->parts[1], "wait_all") == 0) { in->imm = 0; in->target = 1; return nops_is(D, 0, 0); }
        if (nops_is(D, 1, 1)) return -1;
        raw *r = &D->pool[OPD(D, 0)];
        emu_imm im;
        if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "wait_group needs an immediate");
        in->imm = (int64_t)im.u;
        return 0;
    }
    if (D->nparts >= 2 && strcmp(D->parts[1], "mbarrier") == 0) {
        in->op = OP_CPASYNC_MBAR;
        if (has(D, "noinc")) in->mod |= M_NOINC;
        if (nops_is(D, 1, 1)) return -1;
        if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
        in->ns = 1;
        return 0;
    }
    if (D->nparts >= 2 && strcmp(D->parts[1], "bulk") == 0 && has(D, "prefetch")) {
        /* cp.async.bulk.prefetch(.tensor): an L2 hint, no architectural effect; operands are
         * still decoded (and read) */
        in->op = OP_NOP;
        for (int i = 0; i < D->nops; i++) {
            raw *r = &D->pool[OPD(D, i)];
            if (r->kind == RO_MEM) {
                if (mem(D, OPD(D, i), &in->imm) < 0) return -1;
                if (r->tvec >= 0 && list_vec(D, r->tvec, 0, T_S32) < 0) return -1;
            } else if (src(D, OPD(D, i), T_U64) < 0) {
                return -1;
            }
        }
        return 0;
    }
    if (D->nparts >= 2 && strcmp(D->parts[1], "bulk") == 0) {
        if (has(D, "commit_group")) { in->op = OP_BULK_COMMIT; return nops_is(D, 0, 0); }
        if (has(D, "wait_group")) {
            in->op = OP_BULK_WAIT;
            if (nops_is(D, 1, 1)) return -1;
            emu_imm im;
            raw *r = &D->pool[OPD(D, 0)];
            if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "wait_group needs an immediate");
            in->imm = (int64_t)im.u;
            return 0;
        }
        int tensor = has(D, "tensor");
        in->op = tensor ? OP_TMA : OP_BULK;
        if (has(D, "multicast::cluster")) in->mod |= M_MULTICAST;
        int load = has(D, "global") && (has(D, "shared::cluster") || has(D, "shared::cta")) &&
                   strncmp(D->parts[tensor ? 4 : 2], "shared", 6) == 0;
        in->sub = (uint16_t)(load ? 0 : 1);
        if (tensor) {
            int dims = 0;
            for (int k = 1; k <= 5; k++) {
                char nm[8];
                snprintf(nm, sizeof nm, "%dd", k);
                if (has(D, nm)) dims = k;
            }
            if (!dims) return emu_perr(D->P, D->line, "cp.async.bulk.tensor needs .1d..5d");
            if (has(D, "im2col")) return emu_perr(D->P, D->line, "im2col mode is not supported");
            in->vec = (uint8_t)dims;
            int tm = load ? 1 : 0;
            raw *t = &D->pool[OPD(D, tm)];
            if (t->kind != RO_MEM || t->tvec < 0) return emu_perr(D->P, D->line, "expected [tensorMap, {coords}]");
            if (D->pool[t->tvec].vn != dims) return emu_perr(D->P, D->line, "%d coordinates for a %dd copy", D->pool[t->tvec].vn, dims);
            in->list = D->P->nlists;
            if ((in->nlist = list_vec(D, t->tvec, 0, T_S32)) < 0) return -1;
            if ((in->s[1] = src(D, t->base, T_U64)) < 0) return -1;
            in->imm2 = t->off;
            if (load) {
                if (D->nops < 3) return nops_is(D, 3, 5);
                if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
                if ((in->s[2] = mem(D, OPD(D, 2), &in->imm3)) < 0) return -1;
                in->ns = 3;
                int k = 3;
                if (in->mod & M_MULTICAST) {
                    if (D->nops <= k) return emu_perr(D->P, D->line, "multicast needs a ctaMask");
                    if ((in->s[in->ns++] = src(D, OPD(D, k++), T_U16)) < 0) return -1;
                }
                if (k < D->nops && (in->s[in->ns++] = src(D, OPD(D, k++), T_B64)) < 0) return -1;
                if (k != D->nops) return emu_perr(D->P, D->line, "too many operands");
            } else {
                if (nops_is(D, 2, 3)) return -1;
                if ((in->s[0] = mem(D, OPD(D, 1), &in->imm)) < 0) return -1;
                in->ns = 2;
                if (D->nops == 3 && (in->s[2] = src(D, OPD(D, 2), T_B64)) < 0) return -1;
                if (D->nops == 3) in->ns = 3;
            }
            return 0;
        }
        /* non-tensor bulk copy: [dst], [src], size[, [mbar]] */
        if (D->nops < 3) return nops_is(D, 3, 5);
        if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
        if ((in->s[1] = mem(D, OPD(D, 1), &in->imm2)) < 0) return -1;
        if ((in->s[2] = src(D, OPD(D, 2), T_U32)) < 0) return -1;
        in->ns = 3;
        if (load) {
            if (D->nops < 4) return emu_perr(D->P, D->line, "bulk load needs an mbarrier");
            if ((in->s[3] = mem(D, OPD(D, 3), &in->imm3)) < 0) return -1;
            in->ns = 4;
        }
        if (in->mod & M_MULTICAST) return emu_perr(D->P, D->line, "multicast non-tensor bulk copy is not supported");
        return 0;
    }
    if (D->nparts >= 2 && strcmp(D->parts[0], "async") == 0 &&
        (has(D, "ca") || has(D, "cg"))) {
        in->op = OP_CPASYNC;
        if (D->nops < 3 || D->nops > 5) return nops_is(D, 3, 5);
        if ((in->s[0] = mem(D, OPD(D, 0), &in->imm)) < 0) return -1;
        if ((in->s[1] = mem(D, OPD(D, 1), &in->imm2)) < 0) return -1;
        raw *r = &D->pool[OPD(D, 2)];
        emu_imm im;
        if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "cp-size must be an immediate");
        if (im.u != 4 && im.u != 8 && im.u != 16) return emu_perr(D->P, D->line, "cp-size must be 4, 8 or 16");
        if (has(D, "cg") && im.u != 16) return emu_perr(D->P, D->line, "cp.async.cg needs cp-size 16");
        in->vec = (uint8_t)im.u;
        in->ns = 2;
        in->s[2] = -1;
        if (D->nops >= 4) {
            /* src-size (u32) unless the operand is the cache policy of .L2::cache_hint */
            int is_policy = has(D, "L2::cache_hint") && D->nops == 4;
            if (!is_policy) {
                if ((in->s[2] = src(D, OPD(D, 3), T_U32)) < 0) return -1;
                in->ns = 3;
            }
        }
        return 0;
    }
    return emu_perr(D->P, D->line, "unsupported cp form");
}

static int dec_ldmatrix(dec *D, int is_st)
{
    emu_insn *in = &D->in;
    in->op = is_st ? OP_STMATRIX : OP_LDMATRIX;
    if (!has(D, "m8n8")) return emu_perr(D->P, D->line, "only .m8n8 matrices are supported");
    in->vec = has(D, "x4") ? 4 : has(D, "x2") ? 2 : has(D, "x1") ? 1 : 0;
    if (!in->vec) return emu_perr(D->P, D->line, "expected .x1, .x2 or .x4");
    if (has(D, "trans")) in->mod |= M_TRANS;
    if (!has(D, "b16")) return emu_perr(D->P, D->line, "only .b16 is supported");
    in->space = (uint8_t)space_of(D);
    if (nops_is(D, 2, 2)) return -1;
    int mo = OPD(D, is_st ? 0 : 1), vo = OPD(D, is_st ? 1 : 0);
    if ((in->s[0] = mem(D, mo, &in->imm)) < 0) return -1;
    in->ns = 1;
    raw *v = &D->pool[vo];
    int n = v->kind == RO_VEC ? v->vn : 1;
    if (n != in->vec) return emu_perr(D->P, D->line, "expected %d registers", in->vec);
    for (int k = 0; k < n; k++) {
        int ri = v->kind == RO_VEC ? v->vbeg + k : vo;
        if (is_st) {
            if ((in->s[in->ns++] = src(D, ri, T_B32)) < 0) return -1;
        } else {
            in->d[k] = dst(D, ri);
            if (in->d[k] < 0) return emu_perr(D->P, D->line, "bad destination");
        }
    }
    if (!is_st) in->nd = (uint8_t)n;
    return 0;
}

static int dec_mma(dec *D)
{
    emu_insn *in = &D->in;
    in->op = OP_MMA;
    int k32 = has(D, "m16n8k32"), k16 = has(D, "m16n8k16");
    if (!k32 && !k16) return emu_perr(D->P, D->line, "mma shape: m16n8k32 and m16n8k16 are supported");
    if (!has(D, "row") || !has(D, "col")) return emu_perr(D->P, D->line, "mma needs .row.col");
    if (D->nty != 4) return emu_perr(D->P, D->line, "mma needs .dtype.atype.btype.ctype");
    in->type = (uint8_t)D->ty[0];
    in->type2 = (uint8_t)D->ty[1];
    in->type3 = (uint8_t)D->ty[2];
    if (in->type != T_F32 || D->ty[3] != T_F32) return emu_perr(D->P, D->line, "mma: f32 accumulators only");
    int a = in->type2, b = in->type3;
    if (k32 && !((a == T_E4M3 || a == T_E5M2) && (b == T_E4M3 || b == T_E5M2)))
        return emu_perr(D->P, D->line, "m16n8k32: e4m3/e5m2 inputs supported");
    if (k16 && !((a == T_BF16 && b == T_BF16) || (a == T_F16 && b == T_F16)))
        return emu_perr(D->P, D->line, "m16n8k16: bf16 or f16 inputs supported");
    in->imm = k32 ? 32 : 16;
    if (nops_is(D, 4, 4)) return -1;
    in->list = D->P->nlists;
    int nd = list_vec(D, OPD(D, 0), 1, T_F32);
    int na = list_vec(D, OPD(D, 1), 0, T_B32);
    int nb = list_vec(D, OPD(D, 2), 0, T_B32);
    int nc = list_vec(D, OPD(D, 3), 0, T_F32);
    if (nd != 4 || na != 4 || nb != 2 || nc != 4) return emu_perr(D->P, D->line, "mma: expected {4 d}, {4 a}, {2 b}, {4 c} registers");
    in->nlist = 14;
    return 0;
}

/* N = 8*i, i = 1..32, for f32 accumulators with e4m3/e5m2 and f16/bf16 inputs (PTX ISA
 * 9.7.15.5.1.1, Matrix Shape) */
static int valid_wgmma_n(int n) { return n >= 8 && n <= 256 && n % 8 == 0; }

static int dec_wgmma(dec *D)
{
    emu_insn *in = &D->in;
    const char *verb = D->parts[0];
    if (strcmp(verb, "fence") == 0) { in->op = OP_WGMMA_FENCE; return nops_is(D, 0, 0); }
    if (strcmp(verb, "commit_group") == 0) { in->op = OP_WGMMA_COMMIT; return nops_is(D, 0, 0); }
    if (strcmp(verb, "wait_group") == 0) {
        in->op = OP_WGMMA_WAIT;
        if (nops_is(D, 1, 1)) return -1;
        emu_imm im;
        raw *r = &D->pool[OPD(D, 0)];
        if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "wait_group needs an immediate");
        in->imm = (int64_t)im.u;
        return 0;
    }
    if (strcmp(verb, "mma_async") != 0) return emu_perr(D->P, D->line, "unsupported wgmma operation");
    if (has(D, "sp")) return emu_perr(D->P, D->line, "sparse wgmma is not supported");
    in->op = OP_WGMMA;
    int n = 0, k = 0;
    for (int i = 0; i < D->nparts; i++) {
        int mm, nn, kk;
        if (sscanf(D->parts[i], "m%dn%dk%d", &mm, &nn, &kk) == 3) {
            if (mm != 64) return emu_perr(D->P, D->line, "wgmma M must be 64");
            n = nn;
            k = kk;
        }
    }
    if (D->nty != 3) return emu_perr(D->P, D->line, "wgmma needs .dtype.atype.btype");
    in->type = (uint8_t)D->ty[0];
    in->type2 = (uint8_t)D->ty[1];
    in->type3 = (uint8_t)D->ty[2];
    if (in->type != T_F32) return emu_perr(D->P, D->line, "wgmma: f32 accumulators only");
    int fp8 = in->type2 == T_E4M3 || in->type2 == T_E5M2;
    if (fp8 && !(k == 32 && (in->type3 == T_E4M3 || in->type3 == T_E5M2)))
        return emu_perr(D->P, D->line, "wgmma e4m3/e5m2 needs k32 and e4m3/e5m2 B");
    if (!fp8 && !(k == 16 && (in->type2 == T_BF16 || in->type2 == T_F16) && in->type3 == in->type2))
        return emu_perr(D->P, D->line, "wgmma supports m64nNk32 e4m3/e5m2 and m64nNk16 bf16/f16");
    if (!valid_wgmma_n(n)) return emu_perr(D->P, D->line, "wgmma N=%d is not legal", n);
    in->vec = (uint8_t)(n / 8);
    in->imm = k;
    /* d, a-desc|{a}, b-desc, scale-d, imm-scale-a, imm-scale-b[, imm-trans-a, imm-trans-b] */
    int a_regs = D->nops >= 2 && D->pool[OPD(D, 1)].kind == RO_VEC;
    int want_lo = 6, want_hi = fp8 ? 6 : (a_regs ? 7 : 8);
    if (nops_is(D, want_lo, want_hi)) return -1;
    in->list = D->P->nlists;
    in->nlist = list_vec(D, OPD(D, 0), 1, T_F32);
    if (in->nlist != n / 2) return emu_perr(D->P, D->line, "wgmma m64n%d: expected %d accumulator registers, got %d", n, n / 2, in->nlist);
    in->s[0] = -1;
    if (a_regs) {
        in->list2 = D->P->nlists;
        in->nlist2 = list_vec(D, OPD(D, 1), 0, T_B32);
        if (in->nlist2 != 4) return emu_perr(D->P, D->line, "wgmma A from registers needs 4 registers");
    } else if ((in->s[0] = src(D, OPD(D, 1), T_B64)) < 0) {
        return -1;
    }
    if ((in->s[1] = src(D, OPD(D, 2), T_B64)) < 0) return -1;
    raw *sd = &D->pool[OPD(D, 3)];
    if ((in->s[2] = src(D, OPD(D, 3), T_PRED)) < 0) return -1;
    in->target = sd->neg;
    in->ns = 3;
    int imms[4] = {1, 1, 0, 0};
    for (int i = 4; i < D->nops; i++) {
        raw *r = &D->pool[OPD(D, i)];
        emu_imm im;
        if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "wgmma scale/transpose operands must be immediates");
        int v = r->minus ? -(int)im.u : (int)im.u;
        if (i < 6 && v != 1 && v != -1) return emu_perr(D->P, D->line, "imm-scale must be 1 or -1");
        if (i >= 6 && v != 0 && v != 1) return emu_perr(D->P, D->line, "imm-trans must be 0 or 1");
        imms[i - 4] = v;
    }
    if (a_regs && D->nops == 8) return emu_perr(D->P, D->line, "imm-trans-a with A from registers");
    if (a_regs && D->nops == 7) { imms[3] = imms[2]; imms[2] = 0; }
    in->sub = (uint16_t)((imms[0] < 0) | (imms[1] < 0) << 1 | imms[2] << 2 | imms[3] << 3);
    return 0;
}

/* ---- the statement -------------------------------------------------------------------- */

static int split_opcode(dec *D, const char *s, int len, char *base, size_t basecap)
{
    int i = 0, n = 0;
    while (i < len && s[i] != '.') i++;
    if ((size_t)i >= basecap) return emu_perr(D->P, D->line, "opcode too long");
    memcpy(base, s, (size_t)i);
    base[i] = 0;
    while (i < len) {
        i++; /* '.' */
        int j = i;
        while (j < len && s[j] != '.') j++;
        if (n >= 24 || j - i >= 48) return emu_perr(D->P, D->line, "too many qualifiers");
        memcpy(D->parts[n], s + i, (size_t)(j - i));
        D->parts[n][j - i] = 0;
        n++;
        i = j;
    }
    D->nparts = n;
    D->nty = 0;
    for (int k = 0; k < n; k++) {
        int t = type_of(D->parts[k]);
        if (t && D->nty < 4) D->ty[D->nty++] = t;
    }
    return 0;
}

/* Qualifiers a decoded instruction did not consume and that are not harmless. */
static int check_quals(dec *D, const char *base, const char *const *known)
{
    for (int i = 0; i < D->nparts; i++) {
        const char *p = D->parts[i];
        if (type_of(p) || is_ignorable(p)) continue;
        int ok = 0;
        for (int k = 0; known && known[k]; k++)
            if (strcmp(p, known[k]) == 0) { ok = 1; break; }
        if (!ok) return emu_perr(D->P, D->line, "unsupported qualifier .%s on %s", p, base);
    }
    return 0;
}

static const char *const Q_ARITH[] = {"rn", "rz", "rm", "rp", "ftz", "sat", "approx", "hi", "lo",
                                      "wide", "full", "relu", "NaN", "satfinite", "oob", "xorsign", "abs", NULL};
static const char *const Q_CVT[] = {"rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi", "rna", "ftz",
                                    "sat", "satfinite", "relu", NULL};
static const char *const Q_SPACE[] = {"global", "shared", "shared::cta", "shared::cluster", "local",
                                      "param", "param::entry", "param::func", "const", "to", "v2", "v4",
                                      "volatile", NULL};

static int decode(dec *D, const char *base)
{
    emu_insn *in = &D->in;
    if (strcmp(base, "add") == 0 || strcmp(base, "sub") == 0 || strcmp(base, "mul") == 0 ||
        strcmp(base, "div") == 0 || strcmp(base, "rem") == 0 || strcmp(base, "min") == 0 ||
        strcmp(base, "max") == 0 || strcmp(base, "and") == 0 || strcmp(base, "or") == 0 ||
        strcmp(base, "xor") == 0 || strcmp(base, "shl") == 0 || strcmp(base, "shr") == 0 ||
        strcmp(base, "copysign") == 0 || strcmp(base, "mul24") == 0) {
        if (has(D, "cc")) return emu_perr(D->P, D->line, "carry (.cc) arithmetic is not supported");
        int op = base[0] == 'a' && base[1] == 'd' ? OP_ADD : base[0] == 's' && base[1] == 'u' ? OP_SUB
               : strcmp(base, "mul") == 0 ? OP_MUL : strcmp(base, "div") == 0 ? OP_DIV
               : strcmp(base, "rem") == 0 ? OP_REM : strcmp(base, "min") == 0 ? OP_MIN
               : strcmp(base, "max") == 0 ? OP_MAX : strcmp(base, "and") == 0 ? OP_AND
               : strcmp(base, "or") == 0 ? OP_OR : strcmp(base, "xor") == 0 ? OP_XOR
               : strcmp(base, "shl") == 0 ? OP_SHL : strcmp(base, "shr") == 0 ? OP_SHR
               : strcmp(base, "mul24") == 0 ? OP_MUL24 : OP_COPYSIGN;
        if (check_quals(D, base, Q_ARITH)) return -1;
        return dec_alu(D, op, 2, 2);
    }
    if (strcmp(base, "addc") == 0 || strcmp(base, "subc") == 0 || strcmp(base, "madc") == 0)
        return emu_perr(D->P, D->line, "carry arithmetic (%s) is not supported", base);
    if (strcmp(base, "mad") == 0 || strcmp(base, "fma") == 0) {
        if (has(D, "cc")) return emu_perr(D->P, D->line, "carry (.cc) arithmetic is not supported");
        if (check_quals(D, base, Q_ARITH)) return -1;
        return dec_alu(D, base[0] == 'm' ? OP_MAD : OP_FMA, 3, 3);
    }
    if (strcmp(base, "abs") == 0 || strcmp(base, "neg") == 0 || strcmp(base, "not") == 0 ||
        strcmp(base, "cnot") == 0 || strcmp(base, "popc") == 0 || strcmp(base, "clz") == 0 ||
        strcmp(base, "brev") == 0 || strcmp(base, "bfind") == 0 || strcmp(base, "rcp") == 0 ||
        strcmp(base, "sqrt") == 0 || strcmp(base, "rsqrt") == 0 || strcmp(base, "ex2") == 0 ||
        strcmp(base, "lg2") == 0 || strcmp(base, "sin") == 0 || strcmp(base, "cos") == 0 ||
        strcmp(base, "tanh") == 0) {
        static const struct { const char *n; int op; } u[] = {
            {"abs", OP_ABS}, {"neg", OP_NEG}, {"not", OP_NOT}, {"cnot", OP_CNOT}, {"popc", OP_POPC},
            {"clz", OP_CLZ}, {"brev", OP_BREV}, {"bfind", OP_BFIND}, {"rcp", OP_RCP},
            {"sqrt", OP_SQRT}, {"rsqrt", OP_RSQRT}, {"ex2", OP_EX2}, {"lg2", OP_LG2},
            {"sin", OP_SIN}, {"cos", OP_COS}, {"tanh", OP_TANH}};
        int op = 0;
        for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
            if (strcmp(base, u[i].n) == 0) op = u[i].op;
        static const char *const q[] = {"rn", "rz", "rm", "rp", "ftz", "approx", "full", "shiftamt", NULL};
        if (check_quals(D, base, q)) return -1;
        if (op == OP_BFIND && has(D, "shiftamt")) in->mod |= M_SHIFT_CLAMP;
        int rc = dec_alu(D, op, 1, 1);
        if (!rc && (op == OP_POPC || op == OP_CLZ || op == OP_BREV || op == OP_BFIND)) in->type2 = in->type;
        return rc;
    }
    if (strcmp(base, "lop3") == 0) {
        if (nops_is(D, 5, 5) || need_type(D)) return -1;
        in->op = OP_LOP3;
        in->type = (uint8_t)D->ty[0];
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        for (int i = 1; i < 4; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), T_B32)) < 0) return -1;
        raw *r = &D->pool[OPD(D, 4)];
        emu_imm im;
        if (r->kind != RO_NUM || emu_parse_number(r->s, r->len, &im)) return emu_perr(D->P, D->line, "lop3 needs an immediate LUT");
        in->imm = (int64_t)(im.u & 0xff);
        return 0;
    }
    if (strcmp(base, "shf") == 0) {
        in->sub = (uint16_t)(has(D, "r") ? 1 : 0);
        if (has(D, "clamp")) in->mod |= M_SHIFT_CLAMP;
        return dec_alu(D, OP_SHF, 3, 3);
    }
    if (strcmp(base, "bfe") == 0) return dec_alu(D, OP_BFE, 3, 3);
    if (strcmp(base, "bfi") == 0) return dec_alu(D, OP_BFI, 4, 4);
    if (strcmp(base, "prmt") == 0) {
        static const char *m[] = {"", "f4e", "b4e", "rc8", "ecl", "ecr", "rc16"};
        for (int i = 1; i < 7; i++)
            if (has(D, m[i])) in->sub = (uint16_t)i;
        return dec_alu(D, OP_PRMT, 3, 3);
    }
    if (strcmp(base, "setp") == 0) return dec_setp(D);
    if (strcmp(base, "selp") == 0) {
        if (need_type(D) || nops_is(D, 4, 4)) return -1;
        in->op = OP_SELP;
        in->type = (uint8_t)D->ty[0];
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        for (int i = 1; i < 3; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), in->type)) < 0) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 3), T_PRED)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "testp") == 0) {
        static const char *m[] = {"", "finite", "infinite", "number", "notanumber", "normal", "subnormal"};
        for (int i = 1; i < 7; i++)
            if (has(D, m[i])) in->sub = (uint16_t)i;
        if (!in->sub) return emu_perr(D->P, D->line, "testp needs a test");
        if (nops_is(D, 2, 2) || need_type(D)) return -1;
        in->op = OP_TESTP;
        in->type = (uint8_t)D->ty[0];
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 1), in->type)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "cvt") == 0) {
        if (check_quals(D, base, Q_CVT)) return -1;
        return dec_cvt(D);
    }
    if (strcmp(base, "cvta") == 0) {
        if (need_type(D) || nops_is(D, 2, 2)) return -1;
        in->op = OP_CVTA;
        in->space = (uint8_t)space_of(D);
        in->sub = (uint16_t)has(D, "to");
        in->type = (uint8_t)D->ty[0];
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 1), T_U64)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "mov") == 0) return dec_mov(D);
    if (strcmp(base, "ld") == 0 || strcmp(base, "ldu") == 0) {
        if (check_quals(D, base, Q_SPACE)) return -1;
        return dec_ld(D, 0);
    }
    if (strcmp(base, "st") == 0) {
        if (check_quals(D, base, Q_SPACE)) return -1;
        return dec_ld(D, 1);
    }
    if (strcmp(base, "atom") == 0 || strcmp(base, "red") == 0) return dec_atom(D, base[0] == 'r');
    if (strcmp(base, "isspacep") == 0) {
        if (nops_is(D, 2, 2)) return -1;
        in->op = OP_ISSPACEP;
        in->space = (uint8_t)space_of(D);
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 1), T_U64)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "shfl") == 0) {
        static const char *m[] = {"", "up", "down", "bfly", "idx"};
        for (int i = 1; i < 5; i++)
            if (has(D, m[i])) in->sub = (uint16_t)i;
        if (!in->sub || !has(D, "sync")) return emu_perr(D->P, D->line, "shfl needs .sync and a mode");
        if (nops_is(D, 5, 5)) return -1;
        in->op = OP_SHFL;
        in->type = T_B32;
        raw *p = &D->pool[OPD(D, 0)];
        in->d[0] = dst(D, OPD(D, 0));
        in->nd = 1;
        in->d[1] = -1;
        if (p->s2) {
            int qi = new_raw(D);
            if (qi < 0) return -1;
            D->pool[qi] = *p;
            D->pool[qi].s = p->s2;
            D->pool[qi].len = p->len2;
            D->pool[qi].s2 = NULL;
            in->d[1] = dst(D, qi);
            in->nd = 2;
        }
        if (D->P->failed) return -1;
        for (int i = 1; i < 5; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), T_B32)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "vote") == 0) {
        static const char *m[] = {"", "all", "any", "uni", "ballot"};
        for (int i = 1; i < 5; i++)
            if (has(D, m[i])) in->sub = (uint16_t)i;
        if (!in->sub || !has(D, "sync")) return emu_perr(D->P, D->line, "vote needs .sync and a mode");
        if (nops_is(D, 3, 3)) return -1;
        in->op = OP_VOTE;
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        if ((in->s[in->ns++] = src(D, OPD(D, 1), T_PRED)) < 0) return -1;
        in->imm = D->pool[OPD(D, 1)].neg;
        if ((in->s[in->ns++] = src(D, OPD(D, 2), T_B32)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "activemask") == 0) {
        if (nops_is(D, 1, 1)) return -1;
        in->op = OP_ACTIVEMASK;
        in->nd = 1;
        return (in->d[0] = dst(D, OPD(D, 0))) < 0 ? -1 : 0;
    }
    if (strcmp(base, "redux") == 0) {
        static const char *m[] = {"", "add", "min", "max", "and", "or", "xor"};
        for (int i = 1; i < 7; i++)
            if (has(D, m[i])) in->sub = (uint16_t)i;
        if (!in->sub || need_type(D) || nops_is(D, 3, 3)) return emu_perr(D->P, D->line, "bad redux.sync");
        in->op = OP_REDUX;
        in->type = (uint8_t)D->ty[0];
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        for (int i = 1; i < 3; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), T_B32)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "elect") == 0) {
        if (nops_is(D, 2, 2)) return -1;
        in->op = OP_ELECT;
        raw *p = &D->pool[OPD(D, 0)];
        in->d[0] = dst(D, OPD(D, 0));
        in->d[1] = -1;
        if (p->s2) {
            int qi = new_raw(D);
            if (qi < 0) return -1;
            D->pool[qi] = *p;
            D->pool[qi].kind = (p->len2 == 1 && p->s2[0] == '_') ? RO_SINK : RO_NAME;
            D->pool[qi].s = p->s2;
            D->pool[qi].len = p->len2;
            D->pool[qi].s2 = NULL;
            in->d[1] = dst(D, qi);
        }
        if (D->P->failed) return -1;
        if (in->d[0] < 0) { in->d[0] = in->d[1]; in->d[1] = -1; in->target = 1; }
        in->nd = (uint8_t)((in->d[0] >= 0) + (in->d[1] >= 0));
        if ((in->s[in->ns++] = src(D, OPD(D, 1), T_B32)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "bra") == 0 || strcmp(base, "brx") == 0) {
        if (base[2] == 'x') return emu_perr(D->P, D->line, "brx.idx is not supported");
        if (nops_is(D, 1, 1)) return -1;
        raw *r = &D->pool[OPD(D, 0)];
        if (r->kind != RO_NAME) return emu_perr(D->P, D->line, "bra needs a label");
        in->op = OP_BRA;
        return emu_add_label_ref(D->P, D->P->ncode, r->s, r->len);
    }
    if (strcmp(base, "exit") == 0) { in->op = OP_EXIT; return nops_is(D, 0, 0); }
    if (strcmp(base, "ret") == 0) { in->op = OP_RET; return nops_is(D, 0, 0); }
    if (strcmp(base, "trap") == 0 || strcmp(base, "brkpt") == 0) { in->op = OP_TRAP; return 0; }
    if (strcmp(base, "call") == 0) return emu_perr(D->P, D->line, "call is not supported (inline device functions)");
    if (strcmp(base, "bar") == 0 || strcmp(base, "barrier") == 0) {
        if (has(D, "cluster")) {
            in->op = OP_CLUSTER_BAR;
            in->sub = (uint16_t)(has(D, "arrive") ? 1 : has(D, "wait") ? 2 : 0);
            if (!in->sub) return emu_perr(D->P, D->line, "barrier.cluster needs .arrive or .wait");
            return nops_is(D, 0, 0);
        }
        if (has(D, "warp")) {
            if (nops_is(D, 1, 1)) return -1;
            in->op = OP_BARWARP;
            if ((in->s[in->ns++] = src(D, OPD(D, 0), T_B32)) < 0) return -1;
            return 0;
        }
        return dec_bar(D, base);
    }
    if (strcmp(base, "membar") == 0 || strcmp(base, "fence") == 0 || strcmp(base, "prefetch") == 0 ||
        strcmp(base, "prefetchu") == 0 || strcmp(base, "griddepcontrol") == 0 ||
        strcmp(base, "nanosleep") == 0 || strcmp(base, "pmevent") == 0 ||
        strcmp(base, "discard") == 0 || strcmp(base, "applypriority") == 0) {
        in->op = OP_NOP;
        for (int i = 0; i < D->nops; i++)
            if (D->pool[OPD(D, i)].kind == RO_MEM) {
                if (mem(D, OPD(D, i), &in->imm) < 0) return -1;
            } else if (src(D, OPD(D, i), T_U32) < 0) {
                return -1;
            }
        return 0;
    }
    if (strcmp(base, "setmaxnreg") == 0) {
        in->op = OP_NOP;
        in->sub = 1;
        if (!D->P->mod->has_sm90a) return emu_perr(D->P, D->line, "setmaxnreg needs target sm_90a");
        return nops_is(D, 1, 1);
    }
    if (strcmp(base, "createpolicy") == 0) {
        if (D->nops < 2) return nops_is(D, 2, 3);
        in->op = OP_MOV;
        in->type = T_B64;
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        in->s[in->ns++] = emu_const_slot(D->P, CK_IMM, 0, 0x1000000000000000ull);
        return 0;
    }
    if (strcmp(base, "mapa") == 0 || strcmp(base, "getctarank") == 0) {
        int is_mapa = base[0] == 'm';
        if (nops_is(D, is_mapa ? 3 : 2, is_mapa ? 3 : 2) || need_type(D)) return -1;
        in->op = is_mapa ? OP_MAPA : OP_GETCTARANK;
        in->type = (uint8_t)D->ty[0];
        in->space = (uint8_t)space_of(D);
        in->nd = 1;
        if ((in->d[0] = dst(D, OPD(D, 0))) < 0) return -1;
        for (int i = 1; i < D->nops; i++)
            if ((in->s[in->ns++] = src(D, OPD(D, i), i == 1 ? T_U64 : T_U32)) < 0) return -1;
        return 0;
    }
    if (strcmp(base, "cp") == 0) return dec_cp(D);
    if (strcmp(base, "mbarrier") == 0) return dec_mbarrier(D);
    if (strcmp(base, "ldmatrix") == 0) return dec_ldmatrix(D, 0);
    if (strcmp(base, "stmatrix") == 0) return dec_ldmatrix(D, 1);
    if (strcmp(base, "mma") == 0) return dec_mma(D);
    if (strcmp(base, "wgmma") == 0) {
        if (!D->P->mod->has_sm90a) return emu_perr(D->P, D->line, "wgmma needs target sm_90a");
        return dec_wgmma(D);
    }
    return emu_perr(D->P, D->line, "unsupported instruction '%s'", base);
}

static void set_mods(dec *D)
{
    emu_insn *in = &D->in;
    static const struct { const char *n; uint32_t m; } mods[] = {
        {"sat", M_SAT}, {"ftz", M_FTZ}, {"approx", M_APPROX}, {"hi", M_HI}, {"lo", M_LO},
        {"wide", M_WIDE}, {"relu", M_RELU}, {"satfinite", M_SATFINITE}, {"aligned", M_ALIGNED},
        {"uni", M_UNI}, {"full", M_FULL}, {"NaN", M_NAN}};
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
        if (has(D, mods[i].n)) in->mod |= mods[i].m;
    in->rnd = (uint8_t)rnd_of(D);
}

int emu_parse_instruction(emu_parser *P)
{
    static _Thread_local dec Dbuf;
    dec *D = &Dbuf;
    memset(&D->in, 0, sizeof D->in);
    D->P = P;
    D->npool = 0;
    D->nops = 0;
    D->line = P->tok.line;
    emu_insn *in = &D->in;
    in->pred = -1;
    in->line = D->line;
    in->text = emu_line_text(P, D->line);
    for (int i = 0; i < 4; i++) in->d[i] = -1;
    for (int i = 0; i < 6; i++) in->s[i] = -1;
    int guard = -1;
    if (punct(D, '@')) {
        emu_lex(P);
        if (punct(D, '!')) { in->pred_neg = 1; emu_lex(P); }
        if (T(D)->kind != TK_ID) return emu_perr(P, D->line, "expected a predicate after '@'");
        guard = new_raw(D);
        if (guard < 0) return -1;
        D->pool[guard].kind = RO_NAME;
        D->pool[guard].s = T(D)->s;
        D->pool[guard].len = T(D)->len;
        emu_lex(P);
    }
    if (T(D)->kind != TK_ID) return emu_perr(P, D->line, "expected an opcode");
    char base[48];
    if (split_opcode(D, T(D)->s, T(D)->len, base, sizeof base)) return -1;
    if (strcmp(base, "call") == 0)
        return emu_perr(P, D->line, "call is not supported (device functions must be inlined; "
                        "nvcc -G output uses calls)");
    emu_lex(P);
    while (!punct(D, ';')) {
        if (T(D)->kind == TK_EOF) return emu_perr(P, D->line, "missing ';'");
        if (D->nops >= 16) return emu_perr(P, D->line, "too many operands");
        int o = parse_operand(D);
        if (o < 0) return -1;
        D->ops[D->nops++] = o;
        if (punct(D, ',')) emu_lex(P);
        else if (!punct(D, ';')) return emu_perr(P, D->line, "expected ',' or ';'");
    }
    emu_lex(P);
    if (guard >= 0 && (in->pred = src(D, guard, T_PRED)) < 0) return -1;
    set_mods(D);
    if (decode(D, base)) return -1;
    if (emu_grow((void **)&P->code, &P->capcode, P->ncode + 1, sizeof(emu_insn)))
        return emu_perr(P, D->line, "out of memory");
    P->code[P->ncode++] = *in;
    return 0;
}
