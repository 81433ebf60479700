/* emu/emu_parse.c: PTX text -> decoded kernels (dsk_emu_module_load).
 *
 * One pass over the text with a small lexer. Module directives (.version, .target,
 * .address_size, .file, .section) are read or skipped; .global/.const variables get host
 * memory; .shared variables get offsets in the CTA's shared memory; each .entry/.func body
 * becomes an array of emu_insn whose operands are register-slot indices (emu_decode.c
 * decodes each instruction). Registers may be declared with <N> ranges; nested { } scopes
 * (as inline asm produces) shadow names and labels. Anything not understood is an error
 * naming the file, line and text: nothing is skipped silently. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "emu_parse.h"

/* ---- lexer ---------------------------------------------------------------------------- */

static void lex_skip(emu_parser *P)
{
    for (;;) {
        while (P->p < P->end && isspace((unsigned char)*P->p)) {
            if (*P->p == '\n') P->line++;
            P->p++;
        }
        if (P->p + 1 < P->end && P->p[0] == '/' && P->p[1] == '/') {
            while (P->p < P->end && *P->p != '\n') P->p++;
            continue;
        }
        if (P->p + 1 < P->end && P->p[0] == '/' && P->p[1] == '*') {
            P->p += 2;
            while (P->p + 1 < P->end && !(P->p[0] == '*' && P->p[1] == '/')) {
                if (*P->p == '\n') P->line++;
                P->p++;
            }
            P->p = P->p + 2 <= P->end ? P->p + 2 : P->end;
            continue;
        }
        break;
    }
}

static int is_id_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || c == '%' || c == '.';
}

/* Reads the next token into P->tok. */
void emu_lex(emu_parser *P)
{
    lex_skip(P);
    emu_tok *t = &P->tok;
    t->line = P->line;
    t->s = P->p;
    if (P->p >= P->end) { t->kind = TK_EOF; t->len = 0; return; }
    char c = *P->p;
    if (c == '"') {
        const char *q = P->p + 1;
        while (q < P->end && *q != '"' && *q != '\n') q++;
        t->kind = TK_STR;
        P->p = q < P->end ? q + 1 : q;
        t->len = (int)(P->p - t->s);
        return;
    }
    if (isdigit((unsigned char)c)) {
        const char *q = P->p;
        while (q < P->end && (isalnum((unsigned char)*q) || *q == '.' ||
                              ((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E') &&
                               !(q - P->p >= 2 && (P->p[1] == 'x' || P->p[1] == 'X' ||
                                                   P->p[1] == 'f' || P->p[1] == 'F' ||
                                                   P->p[1] == 'd' || P->p[1] == 'D')))))
            q++;
        t->kind = TK_NUM;
        t->len = (int)(q - P->p);
        P->p = q;
        return;
    }
    if (is_id_char(c)) {
        const char *q = P->p;
        for (;;) {
            if (q < P->end && is_id_char(*q)) { q++; continue; }
            if (q + 1 < P->end && q[0] == ':' && q[1] == ':') { q += 2; continue; }
            break;
        }
        t->kind = TK_ID;
        t->len = (int)(q - P->p);
        P->p = q;
        return;
    }
    t->kind = TK_PUNCT;
    t->len = 1;
    P->p++;
}

int emu_tok_is(const emu_tok *t, const char *s)
{
    return (int)strlen(s) == t->len && memcmp(t->s, s, (size_t)t->len) == 0;
}

static int tok_punct(const emu_tok *t, char c) { return t->kind == TK_PUNCT && t->s[0] == c; }

/* The source line's text (trimmed) for messages. */
const char *emu_line_text(emu_parser *P, int line)
{
    if (line < 1 || line > P->mod->nlines) return "";
    return P->mod->lines[line - 1];
}

int emu_perr(emu_parser *P, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!P->failed)
        dsk_fail(DSK_ERR_FORMAT, "dsk_emu_module_load: %s:%d: %s: `%s`", P->mod->source_name, line,
                 msg, emu_line_text(P, line));
    P->failed = 1;
    return -1;
}

/* ---- symbols -------------------------------------------------------------------------- */

static uint32_t hash_name(const char *s, int len)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int sym_push(emu_parser *P, const char *name, int len, int kind, int64_t value, int count)
{
    if (P->nsyms == P->capsyms) {
        P->capsyms = P->capsyms ? P->capsyms * 2 : 256;
        P->syms = realloc(P->syms, sizeof(emu_sym) * (size_t)P->capsyms);
        if (!P->syms) return emu_perr(P, P->tok.line, "out of memory");
    }
    if (len >= (int)sizeof P->syms[0].name) return emu_perr(P, P->tok.line, "name too long");
    emu_sym *s = &P->syms[P->nsyms];
    memcpy(s->name, name, (size_t)len);
    s->name[len] = 0;
    s->len = len;
    s->kind = kind;
    s->value = value;
    s->count = count;
    uint32_t b = hash_name(name, len) & (EMU_SYM_BUCKETS - 1);
    s->next = P->bucket[b];
    P->bucket[b] = P->nsyms;
    return P->nsyms++;
}

static void sym_pop_to(emu_parser *P, int mark)
{
    while (P->nsyms > mark) {
        emu_sym *s = &P->syms[P->nsyms - 1];
        uint32_t b = hash_name(s->name, s->len) & (EMU_SYM_BUCKETS - 1);
        P->bucket[b] = s->next;
        P->nsyms--;
    }
}

static emu_sym *sym_find_exact(emu_parser *P, const char *name, int len)
{
    uint32_t b = hash_name(name, len) & (EMU_SYM_BUCKETS - 1);
    for (int i = P->bucket[b]; i >= 0; i = P->syms[i].next)
        if (P->syms[i].len == len && memcmp(P->syms[i].name, name, (size_t)len) == 0)
            return &P->syms[i];
    return NULL;
}

/* Finds a name; for registers declared as %r<N> also "%r5" (index in *idx). */
emu_sym *emu_sym_find(emu_parser *P, const char *name, int len, int *idx)
{
    *idx = 0;
    emu_sym *s = sym_find_exact(P, name, len);
    if (s && s->count == 0) return s;
    int k = len;
    while (k > 0 && isdigit((unsigned char)name[k - 1])) k--;
    if (k == len || k == 0) return s;
    emu_sym *r = sym_find_exact(P, name, k);
    if (!r || r->count == 0) return s;
    long v = strtol(name + k, NULL, 10);
    if ((k + 1 < len && name[k] == '0') || v >= r->count) return s;
    *idx = (int)v;
    return r;
}

/* ---- growing arrays ------------------------------------------------------------------- */

int emu_grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* A constant slot (deduplicated). */
int emu_const_slot(emu_parser *P, int kind, int dim, uint64_t value)
{
    uint32_t h = (uint32_t)((value * 0x9E3779B97F4A7C15ull) >> 40) ^ (uint32_t)(kind * 131 + dim);
    h &= EMU_CONST_BUCKETS - 1;
    for (int i = P->cbucket[h]; i >= 0; i = P->cnext[i]) {
        emu_const *c = &P->consts[i];
        if (c->kind == kind && c->dim == dim && c->value == value) return c->slot;
    }
    if (emu_grow((void **)&P->consts, &P->capconsts, P->nconsts + 1, sizeof(emu_const)) ||
        emu_grow((void **)&P->cnext, &P->capcnext, P->nconsts + 1, sizeof(int)))
        return emu_perr(P, P->tok.line, "out of memory");
    emu_const *c = &P->consts[P->nconsts];
    c->slot = P->nslots++;
    c->kind = kind;
    c->dim = dim;
    c->value = value;
    P->cnext[P->nconsts] = P->cbucket[h];
    P->cbucket[h] = P->nconsts;
    P->nconsts++;
    return c->slot;
}

/* ---- declarations --------------------------------------------------------------------- */

static int expect_punct(emu_parser *P, char c)
{
    if (!tok_punct(&P->tok, c)) return emu_perr(P, P->tok.line, "expected '%c'", c);
    emu_lex(P);
    return 0;
}

static int parse_uint(emu_parser *P, uint64_t *v)
{
    if (P->tok.kind != TK_NUM) return emu_perr(P, P->tok.line, "expected a number");
    char buf[64];
    int n = P->tok.len < 63 ? P->tok.len : 63;
    memcpy(buf, P->tok.s, (size_t)n);
    buf[n] = 0;
    char *e;
    *v = strtoull(buf, &e, 0);
    if (*e == 'U' || *e == 'u') e++;
    if (*e) return emu_perr(P, P->tok.line, "bad number '%s'", buf);
    emu_lex(P);
    return 0;
}

static int type_size_of_name(const emu_tok *t)
{
    static const struct { const char *n; int size; } tab[] = {
        {".b8", 1}, {".u8", 1}, {".s8", 1}, {".b16", 2}, {".u16", 2}, {".s16", 2}, {".f16", 2},
        {".bf16", 2}, {".b32", 4}, {".u32", 4}, {".s32", 4}, {".f32", 4}, {".f16x2", 4},
        {".bf16x2", 4}, {".b64", 8}, {".u64", 8}, {".s64", 8}, {".f64", 8}, {".pred", 1},
        {".b128", 16}, {".e4m3", 1}, {".e5m2", 1}, {".tf32", 4}, {".texref", 8},
        {".samplerref", 8}, {".surfref", 8}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (emu_tok_is(t, tab[i].n)) return tab[i].size;
    return 0;
}

/* Skips a balanced { ... } initializer or section body (current token is '{'). */
static int skip_braces(emu_parser *P)
{
    int depth = 0;
    do {
        if (P->tok.kind == TK_EOF) return emu_perr(P, P->tok.line, "unterminated '{'");
        if (tok_punct(&P->tok, '{')) depth++;
        if (tok_punct(&P->tok, '}')) depth--;
        emu_lex(P);
    } while (depth > 0);
    return 0;
}

/* Reads an initializer list of numbers into buf (esize bytes each); current token '{' or number. */
static int parse_init(emu_parser *P, uint8_t *buf, size_t cap, int esize, int is_float)
{
    size_t off = 0;
    int depth = 0;
    for (;;) {
        if (tok_punct(&P->tok, '{')) { depth++; emu_lex(P); continue; }
        if (tok_punct(&P->tok, '}')) { depth--; emu_lex(P); if (depth <= 0) break; continue; }
        if (tok_punct(&P->tok, ',')) { emu_lex(P); continue; }
        if (tok_punct(&P->tok, ';') && depth == 0) break;
        int neg = 0;
        if (tok_punct(&P->tok, '-')) { neg = 1; emu_lex(P); }
        if (P->tok.kind != TK_NUM) return emu_perr(P, P->tok.line, "unsupported initializer");
        emu_imm im;
        if (emu_parse_number(P->tok.s, P->tok.len, &im))
            return emu_perr(P, P->tok.line, "bad number in initializer");
        uint64_t bits = emu_imm_bits(&im, is_float ? (esize == 4 ? T_F32 : T_F64) : T_U64, neg);
        if (off + (size_t)esize <= cap) memcpy(buf + off, &bits, (size_t)esize);
        off += (size_t)esize;
        emu_lex(P);
        if (depth == 0) break;
    }
    return 0;
}

/* .global/.const/.shared/.local variable: [.align N] .type name[[N]...] [= init];
 * Current token is the state-space directive. */
static int parse_var(emu_parser *P, int at_module, int is_extern)
{
    int line = P->tok.line;
    int space = emu_tok_is(&P->tok, ".shared") ? SP_SHARED
              : emu_tok_is(&P->tok, ".local")  ? SP_LOCAL
              : emu_tok_is(&P->tok, ".const")  ? SP_CONST : SP_GLOBAL;
    emu_lex(P);
    uint64_t align = 0;
    int esize = 0, is_float = 0, vec = 1;
    for (;;) {
        if (emu_tok_is(&P->tok, ".align")) {
            emu_lex(P);
            if (parse_uint(P, &align)) return -1;
            continue;
        }
        if (emu_tok_is(&P->tok, ".v2") || emu_tok_is(&P->tok, ".v4")) {
            vec = P->tok.s[2] - '0';
            emu_lex(P);
            continue;
        }
        if (emu_tok_is(&P->tok, ".attribute")) {  /* .attribute(.managed) */
            emu_lex(P);
            while (!tok_punct(&P->tok, ')') && P->tok.kind != TK_EOF) emu_lex(P);
            emu_lex(P);
            continue;
        }
        if (P->tok.kind == TK_ID && P->tok.s[0] == '.' && (esize = type_size_of_name(&P->tok))) {
            is_float = emu_tok_is(&P->tok, ".f32") || emu_tok_is(&P->tok, ".f64");
            emu_lex(P);
            break;
        }
        return emu_perr(P, line, "expected a type in the variable declaration");
    }
    esize *= vec;
    if (P->tok.kind != TK_ID) return emu_perr(P, line, "expected a variable name");
    const char *name = P->tok.s;
    int nlen = P->tok.len;
    emu_lex(P);
    uint64_t count = 1;
    int unsized = 0;
    while (tok_punct(&P->tok, '[')) {
        emu_lex(P);
        if (tok_punct(&P->tok, ']')) { unsized = 1; emu_lex(P); continue; }
        uint64_t n;
        if (parse_uint(P, &n) || expect_punct(P, ']')) return -1;
        count *= n;
    }
    size_t size = (size_t)count * (size_t)esize;
    if (!align) align = (uint64_t)esize;
    if (align & (align - 1)) return emu_perr(P, line, ".align %llu is not a power of two",
                                             (unsigned long long)align);
    if (space == SP_SHARED) {
        if (is_extern || unsized) {
            size_t *da = at_module ? &P->module_dyn_align : &P->dyn_smem_align;
            if (*da < align) *da = align;
            if (sym_push(P, name, nlen, SYM_DYN_SHARED, 0, 0) < 0) return -1;
        } else {
            size_t *top = at_module ? &P->module_smem : &P->kernel_smem;
            size_t base = at_module ? 0 : P->module_smem;
            size_t off = (base + *top + align - 1) / align * align - base;
            if (sym_push(P, name, nlen, SYM_SHARED, (int64_t)(base + off), 0) < 0) return -1;
            *top = off + size;
        }
    } else if (space == SP_LOCAL) {
        if (at_module) return emu_perr(P, line, "module-scope .local variables are not supported");
        size_t off = (P->local_size + align - 1) / align * align;
        if (sym_push(P, name, nlen, SYM_LOCAL, (int64_t)off, 0) < 0) return -1;
        P->local_size = off + size;
    } else {
        dsk_emu_module *m = P->mod;
        if (emu_grow((void **)&m->gvars, &P->capgvars, m->ngvars + 1, sizeof(emu_module_var)))
            return emu_perr(P, line, "out of memory");
        void *host = NULL;
        if (dsk_emu_alloc(size ? size : 1, &host) != DSK_OK) return -1;
        emu_module_var *v = &m->gvars[m->ngvars++];
        snprintf(v->name, sizeof v->name, "%.*s", nlen, name);
        v->host = host;
        v->size = size;
        if (sym_push(P, name, nlen, SYM_GLOBAL, (int64_t)(uintptr_t)host, 0) < 0) return -1;
        if (tok_punct(&P->tok, '=')) {
            emu_lex(P);
            if (parse_init(P, host, size, esize / vec, is_float)) return -1;
        }
    }
    if (tok_punct(&P->tok, '=')) return emu_perr(P, line, "initializers are supported on .global/.const only");
    return expect_punct(P, ';');
}

/* .reg [.vN] .type name[<N>] {, name[<N>]} ; */
static int parse_reg(emu_parser *P)
{
    int line = P->tok.line;
    emu_lex(P);
    int vec = 1;
    if (emu_tok_is(&P->tok, ".v2") || emu_tok_is(&P->tok, ".v4")) {
        vec = P->tok.s[2] - '0';
        emu_lex(P);
    }
    if (!(P->tok.kind == TK_ID && type_size_of_name(&P->tok)))
        return emu_perr(P, line, "expected a register type");
    if (vec != 1) return emu_perr(P, line, "vector registers (.reg .v%d) are not supported", vec);
    emu_lex(P);
    for (;;) {
        if (P->tok.kind != TK_ID) return emu_perr(P, line, "expected a register name");
        const char *name = P->tok.s;
        int len = P->tok.len;
        emu_lex(P);
        if (tok_punct(&P->tok, '<')) {
            emu_lex(P);
            uint64_t n;
            if (parse_uint(P, &n) || expect_punct(P, '>')) return -1;
            if (n == 0 || n > 1000000) return emu_perr(P, line, "bad register count %llu",
                                                       (unsigned long long)n);
            if (sym_push(P, name, len, SYM_REG, P->nslots, (int)n) < 0) return -1;
            P->nslots += (int)n;
        } else {
            if (sym_push(P, name, len, SYM_REG, P->nslots, 0) < 0) return -1;
            P->nslots++;
        }
        if (tok_punct(&P->tok, ',')) { emu_lex(P); continue; }
        break;
    }
    return expect_punct(P, ';');
}

/* ( .param .type [.align N] name[[N]] , ... ) of an .entry */
static int parse_params(emu_parser *P, int record)
{
    if (!tok_punct(&P->tok, '(')) return 0;
    emu_lex(P);
    size_t off = 0;
    while (!tok_punct(&P->tok, ')')) {
        int line = P->tok.line;
        if (P->tok.kind == TK_EOF) return emu_perr(P, line, "unterminated parameter list");
        if (!emu_tok_is(&P->tok, ".param") && !emu_tok_is(&P->tok, ".reg"))
            return emu_perr(P, line, "expected .param");
        emu_lex(P);
        uint64_t align = 0;
        int esize = 0;
        while (P->tok.kind == TK_ID && P->tok.s[0] == '.') {
            if (emu_tok_is(&P->tok, ".align")) {
                emu_lex(P);
                if (parse_uint(P, &align)) return -1;
                continue;
            }
            if (emu_tok_is(&P->tok, ".ptr") || emu_tok_is(&P->tok, ".global") ||
                emu_tok_is(&P->tok, ".shared") || emu_tok_is(&P->tok, ".const") ||
                emu_tok_is(&P->tok, ".local")) { emu_lex(P); continue; }
            int sz = type_size_of_name(&P->tok);
            if (!sz) return emu_perr(P, line, "unsupported parameter attribute");
            esize = sz;
            emu_lex(P);
        }
        if (!esize || P->tok.kind != TK_ID) return emu_perr(P, line, "expected a parameter name");
        const char *name = P->tok.s;
        int len = P->tok.len;
        emu_lex(P);
        uint64_t count = 1;
        if (tok_punct(&P->tok, '[')) {
            emu_lex(P);
            if (parse_uint(P, &count) || expect_punct(P, ']')) return -1;
        }
        if (!align) align = (uint64_t)esize;
        off = (off + align - 1) / align * align;
        if (record) {
            if (emu_grow((void **)&P->params, &P->capparams, P->nparams + 1, sizeof(emu_param)))
                return emu_perr(P, line, "out of memory");
            emu_param *pp = &P->params[P->nparams++];
            snprintf(pp->name, sizeof pp->name, "%.*s", len, name);
            pp->offset = off;
            pp->size = (size_t)count * (size_t)esize;
            pp->align = (size_t)align;
            if (sym_push(P, name, len, SYM_PARAM, (int64_t)off, 0) < 0) return -1;
        }
        off += (size_t)count * (size_t)esize;
        if (tok_punct(&P->tok, ',')) emu_lex(P);
    }
    emu_lex(P);
    P->params_size = off;
    return 0;
}

/* ---- function bodies ------------------------------------------------------------------ */

static int add_label(emu_parser *P, const char *name, int len, int line)
{
    if (emu_grow((void **)&P->labels, &P->caplabels, P->nlabels + 1, sizeof(emu_label)))
        return emu_perr(P, line, "out of memory");
    for (int i = 0; i < P->nlabels; i++)
        if (P->labels[i].scope == P->scope && P->labels[i].len == len &&
            memcmp(P->labels[i].name, name, (size_t)len) == 0)
            return emu_perr(P, line, "label %.*s defined twice in one scope", len, name);
    emu_label *l = &P->labels[P->nlabels++];
    if (len >= (int)sizeof l->name) return emu_perr(P, line, "label too long");
    memcpy(l->name, name, (size_t)len);
    l->name[len] = 0;
    l->len = len;
    l->scope = P->scope;
    l->pc = P->ncode;
    return 0;
}

int emu_add_label_ref(emu_parser *P, int insn, const char *name, int len)
{
    if (emu_grow((void **)&P->refs, &P->caprefs, P->nrefs + 1, sizeof(emu_label_ref)))
        return emu_perr(P, P->tok.line, "out of memory");
    emu_label_ref *r = &P->refs[P->nrefs++];
    if (len >= (int)sizeof r->name) return emu_perr(P, P->tok.line, "label too long");
    memcpy(r->name, name, (size_t)len);
    r->name[len] = 0;
    r->len = len;
    r->scope = P->scope;
    r->insn = insn;
    return 0;
}

static int resolve_labels(emu_parser *P)
{
    for (int i = 0; i < P->nrefs; i++) {
        emu_label_ref *r = &P->refs[i];
        int found = -1;
        for (int sc = r->scope; sc >= 0 && found < 0; sc = P->scope_parent[sc])
            for (int j = 0; j < P->nlabels; j++)
                if (P->labels[j].scope == sc && P->labels[j].len == r->len &&
                    memcmp(P->labels[j].name, r->name, (size_t)r->len) == 0) {
                    found = P->labels[j].pc;
                    break;
                }
        if (found < 0) return emu_perr(P, P->code[r->insn].line, "undefined label %s", r->name);
        P->code[r->insn].target = found;
    }
    return 0;
}

static int parse_statement(emu_parser *P)
{
    emu_tok *t = &P->tok;
    int line = t->line;
    if (t->kind == TK_ID && t->s[0] == '.') {
        if (emu_tok_is(t, ".reg")) return parse_reg(P);
        if (emu_tok_is(t, ".shared") || emu_tok_is(t, ".local") || emu_tok_is(t, ".global") ||
            emu_tok_is(t, ".const"))
            return parse_var(P, 0, 0);
        if (emu_tok_is(t, ".loc") || emu_tok_is(t, ".pragma") || emu_tok_is(t, ".file")) {
            int l0 = t->line;
            while (t->kind != TK_EOF && t->line == l0 && !tok_punct(t, ';')) emu_lex(P);
            if (tok_punct(t, ';')) emu_lex(P);
            return 0;
        }
        return emu_perr(P, line, "unsupported directive inside a function");
    }
    if (t->kind != TK_ID && !tok_punct(t, '@')) return emu_perr(P, line, "expected an instruction");
    if (t->kind == TK_ID) {
        const char *name = t->s;
        int len = t->len;
        const char *save = P->p;
        int save_line = P->line;
        emu_lex(P);
        if (tok_punct(t, ':')) {
            emu_lex(P);
            return add_label(P, name, len, line);
        }
        P->p = save;
        P->line = save_line;
        t->s = name;
        t->len = len;
        t->kind = TK_ID;
        t->line = line;
    }
    return emu_parse_instruction(P);
}

static int parse_body(emu_parser *P)
{
    if (expect_punct(P, '{')) return -1;
    int depth = 1;
    int marks[64];
    marks[0] = P->nsyms;
    P->scope = 0;
    P->nscopes = 1;
    P->scope_parent[0] = -1;
    while (depth > 0) {
        if (P->failed) return -1;
        emu_tok *t = &P->tok;
        if (t->kind == TK_EOF) return emu_perr(P, t->line, "unterminated function body");
        if (tok_punct(t, '{')) {
            if (depth >= 64 || P->nscopes >= EMU_MAX_SCOPES)
                return emu_perr(P, t->line, "scopes nested too deeply");
            marks[depth++] = P->nsyms;
            P->scope_parent[P->nscopes] = P->scope;
            P->scope = P->nscopes++;
            emu_lex(P);
            continue;
        }
        if (tok_punct(t, '}')) {
            depth--;
            sym_pop_to(P, marks[depth]);
            if (depth > 0) P->scope = P->scope_parent[P->scope];
            emu_lex(P);
            continue;
        }
        if (parse_statement(P)) return -1;
    }
    return 0;
}

static void kernel_reset(emu_parser *P)
{
    P->ncode = P->nlists = P->nconsts = P->nparams = P->nlabels = P->nrefs = 0;
    P->nslots = 0;
    P->kernel_smem = 0;
    P->local_size = 0;
    P->params_size = 0;
    P->dyn_smem_align = P->module_dyn_align > 16 ? P->module_dyn_align : 16;
    memset(P->cbucket, 0xff, sizeof P->cbucket);
}

static int finish_kernel(emu_parser *P, const char *name, int len, int is_entry, int dims[3][3],
                         int explicit_cluster)
{
    if (resolve_labels(P)) return -1;
    dsk_emu_module *m = P->mod;
    if (emu_grow((void **)&m->kernels, &P->capkernels, m->nkernels + 1, sizeof(emu_kernel)))
        return emu_perr(P, P->tok.line, "out of memory");
    emu_kernel *k = &m->kernels[m->nkernels++];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%.*s", len, name);
    k->is_entry = is_entry;
    k->code = malloc(sizeof(emu_insn) * (size_t)(P->ncode + 1));
    k->lists = malloc(sizeof(int32_t) * (size_t)(P->nlists + 1));
    k->params = malloc(sizeof(emu_param) * (size_t)(P->nparams + 1));
    k->consts = malloc(sizeof(emu_const) * (size_t)(P->nconsts + 1));
    if (!k->code || !k->lists || !k->params || !k->consts)
        return emu_perr(P, P->tok.line, "out of memory");
    if (P->ncode) memcpy(k->code, P->code, sizeof(emu_insn) * (size_t)P->ncode);
    if (P->nlists) memcpy(k->lists, P->lists, sizeof(int32_t) * (size_t)P->nlists);
    if (P->nparams) memcpy(k->params, P->params, sizeof(emu_param) * (size_t)P->nparams);
    if (P->nconsts) memcpy(k->consts, P->consts, sizeof(emu_const) * (size_t)P->nconsts);
    k->ncode = P->ncode;
    k->nlists = P->nlists;
    k->nparams = P->nparams;
    k->nconsts = P->nconsts;
    k->nslots = P->nslots;
    k->params_size = P->params_size;
    k->static_smem = P->module_smem + P->kernel_smem;
    k->dyn_smem_align = P->dyn_smem_align;
    k->local_size = P->local_size;
    for (int i = 0; i < 3; i++) {
        k->maxntid[i] = dims[0][i];
        k->reqntid[i] = dims[1][i];
        k->reqnctapercluster[i] = dims[2][i];
    }
    k->explicit_cluster = explicit_cluster;
    return 0;
}

/* [.visible|.weak|.extern] (.entry|.func) ... */
static int parse_function(emu_parser *P, int is_extern)
{
    int is_entry = emu_tok_is(&P->tok, ".entry");
    int line = P->tok.line;
    emu_lex(P);
    int mark = P->nsyms;
    kernel_reset(P);
    if (!is_entry && tok_punct(&P->tok, '(')) {  /* return parameters of a .func */
        if (parse_params(P, 0)) return -1;
    }
    if (P->tok.kind != TK_ID) return emu_perr(P, line, "expected a function name");
    const char *name = P->tok.s;
    int len = P->tok.len;
    emu_lex(P);
    if (parse_params(P, 1)) return -1;
    int dims[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    int explicit_cluster = 0;
    for (;;) {
        emu_tok *t = &P->tok;
        int which = emu_tok_is(t, ".maxntid") ? 0 : emu_tok_is(t, ".reqntid") ? 1
                  : emu_tok_is(t, ".reqnctapercluster") ? 2 : -1;
        if (which >= 0) {
            emu_lex(P);
            for (int i = 0; i < 3; i++) {
                uint64_t v;
                if (parse_uint(P, &v)) return -1;
                dims[which][i] = (int)v;
                if (!tok_punct(&P->tok, ',')) break;
                emu_lex(P);
            }
            continue;
        }
        if (emu_tok_is(t, ".explicitcluster")) { explicit_cluster = 1; emu_lex(P); continue; }
        if (emu_tok_is(t, ".minnctapersm") || emu_tok_is(t, ".maxnreg") ||
            emu_tok_is(t, ".maxclusterrank") || emu_tok_is(t, ".maxnctapersm")) {
            emu_lex(P);
            uint64_t v;
            if (parse_uint(P, &v)) return -1;
            continue;
        }
        if (emu_tok_is(t, ".noreturn")) { emu_lex(P); continue; }
        if (emu_tok_is(t, ".pragma")) {
            while (!tok_punct(&P->tok, ';') && P->tok.kind != TK_EOF) emu_lex(P);
            emu_lex(P);
            continue;
        }
        break;
    }
    if (tok_punct(&P->tok, ';')) {  /* a prototype */
        sym_pop_to(P, mark);
        emu_lex(P);
        return 0;
    }
    if (is_extern) return emu_perr(P, line, ".extern function with a body");
    if (parse_body(P)) return -1;
    sym_pop_to(P, mark);
    return finish_kernel(P, name, len, is_entry, dims, explicit_cluster);
}

static int parse_module(emu_parser *P)
{
    emu_lex(P);
    while (P->tok.kind != TK_EOF) {
        if (P->failed) return -1;
        emu_tok *t = &P->tok;
        int line = t->line;
        if (emu_tok_is(t, ".version")) {
            emu_lex(P);
            if (P->tok.kind != TK_NUM) return emu_perr(P, line, "expected a version number");
            emu_lex(P);
            continue;
        }
        if (emu_tok_is(t, ".target")) {
            emu_lex(P);
            for (;;) {
                if (P->tok.kind != TK_ID) return emu_perr(P, line, "expected a target");
                if (P->tok.len > 3 && memcmp(P->tok.s, "sm_", 3) == 0) {
                    int v = atoi(P->tok.s + 3);
                    P->mod->sm_version = v;
                    P->mod->has_sm90a = P->tok.s[P->tok.len - 1] == 'a' && v >= 90;
                    if (v < 70) return emu_perr(P, line, "target sm_%d: sm_70 or newer expected", v);
                } else if (!emu_tok_is(&P->tok, "texmode_independent") &&
                           !emu_tok_is(&P->tok, "texmode_unified") && !emu_tok_is(&P->tok, "debug") &&
                           !emu_tok_is(&P->tok, "map_f64_to_f32")) {
                    return emu_perr(P, line, "unsupported target");
                }
                emu_lex(P);
                if (!tok_punct(&P->tok, ',')) break;
                emu_lex(P);
            }
            continue;
        }
        if (emu_tok_is(t, ".address_size")) {
            emu_lex(P);
            uint64_t v;
            if (parse_uint(P, &v)) return -1;
            if (v != 64) return emu_perr(P, line, ".address_size %llu: only 64 is supported",
                                         (unsigned long long)v);
            continue;
        }
        if (emu_tok_is(t, ".file") || emu_tok_is(t, ".pragma")) {
            int l0 = t->line;
            while (P->tok.kind != TK_EOF && P->tok.line == l0 && !tok_punct(&P->tok, ';')) emu_lex(P);
            if (tok_punct(&P->tok, ';')) emu_lex(P);
            continue;
        }
        if (emu_tok_is(t, ".section")) {
            emu_lex(P);
            while (!tok_punct(&P->tok, '{') && P->tok.kind != TK_EOF) emu_lex(P);
            if (skip_braces(P)) return -1;
            continue;
        }
        int is_extern = 0;
        while (emu_tok_is(&P->tok, ".visible") || emu_tok_is(&P->tok, ".weak") ||
               emu_tok_is(&P->tok, ".extern") || emu_tok_is(&P->tok, ".common")) {
            if (emu_tok_is(&P->tok, ".extern")) is_extern = 1;
            emu_lex(P);
        }
        if (emu_tok_is(&P->tok, ".entry") || emu_tok_is(&P->tok, ".func")) {
            if (parse_function(P, is_extern)) return -1;
            continue;
        }
        if (emu_tok_is(&P->tok, ".global") || emu_tok_is(&P->tok, ".shared") ||
            emu_tok_is(&P->tok, ".const")) {
            if (parse_var(P, 1, is_extern)) return -1;
            continue;
        }
        return emu_perr(P, line, "unsupported module-level statement");
    }
    return 0;
}

static void parser_free(emu_parser *P)
{
    free(P->syms);
    free(P->code);
    free(P->lists);
    free(P->consts);
    free(P->cnext);
    free(P->params);
    free(P->labels);
    free(P->refs);
}

dsk_status dsk_emu_module_load(const char *ptx_text, const char *source_name, dsk_emu_module **out)
{
    if (!out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_module_load: out is NULL");
    *out = NULL;
    if (!ptx_text) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_module_load: ptx_text is NULL");
    dsk_emu_module *m = calloc(1, sizeof *m);
    if (!m) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_module_load: out of memory");
    snprintf(m->source_name, sizeof m->source_name, "%s", source_name ? source_name : "<ptx>");
    size_t n = strlen(ptx_text);
    m->text = malloc(n + 1);
    if (!m->text) {
        free(m);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_module_load: out of memory");
    }
    memcpy(m->text, ptx_text, n + 1);
    /* per-line copies for messages and traces */
    int nl = 1;
    for (size_t i = 0; i < n; i++) nl += ptx_text[i] == '\n';
    m->lines = calloc((size_t)nl, sizeof(char *));
    m->nlines = nl;
    const char *ls = ptx_text;
    for (int i = 0; i < nl && m->lines; i++) {
        const char *le = strchr(ls, '\n');
        if (!le) le = ptx_text + n;
        while (ls < le && isspace((unsigned char)*ls)) ls++;
        const char *te = le;
        while (te > ls && isspace((unsigned char)te[-1])) te--;
        m->lines[i] = malloc((size_t)(te - ls) + 1);
        if (m->lines[i]) {
            memcpy(m->lines[i], ls, (size_t)(te - ls));
            m->lines[i][te - ls] = 0;
        }
        ls = le + 1;
    }
    emu_parser *P = calloc(1, sizeof *P);
    if (!P || !m->lines) {
        free(P);
        dsk_emu_module_free(m);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_module_load: out of memory");
    }
    P->mod = m;
    P->p = m->text;
    P->end = m->text + n;
    P->line = 1;
    memset(P->bucket, 0xff, sizeof P->bucket);
    m->sm_version = 90;
    int rc = parse_module(P);
    parser_free(P);
    free(P);
    if (rc) {
        dsk_emu_module_free(m);
        return DSK_ERR_FORMAT;
    }
    *out = m;
    return DSK_OK;
}

void dsk_emu_module_free(dsk_emu_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->nkernels; i++) {
        free(m->kernels[i].code);
        free(m->kernels[i].lists);
        free(m->kernels[i].params);
        free(m->kernels[i].consts);
    }
    free(m->kernels);
    for (int i = 0; i < m->ngvars; i++) dsk_emu_free(m->gvars[i].host);
    free(m->gvars);
    for (int i = 0; i < m->nlines; i++) free(m->lines[i]);
    free(m->lines);
    free(m->text);
    free(m);
}

const emu_kernel *emu_find_kernel(const dsk_emu_module *m, const char *name)
{
    for (int i = 0; i < m->nkernels; i++)
        if (m->kernels[i].is_entry && strcmp(m->kernels[i].name, name) == 0) return &m->kernels[i];
    return NULL;
}

int dsk_emu_module_has_kernel(const dsk_emu_module *m, const char *kernel)
{
    return m && kernel && emu_find_kernel(m, kernel) != NULL;
}

int dsk_emu_kernel_param_count(const dsk_emu_module *m, const char *kernel)
{
    const emu_kernel *k = m && kernel ? emu_find_kernel(m, kernel) : NULL;
    return k ? k->nparams : -1;
}

size_t dsk_emu_kernel_param_size(const dsk_emu_module *m, const char *kernel, int i)
{
    const emu_kernel *k = m && kernel ? emu_find_kernel(m, kernel) : NULL;
    return (k && i >= 0 && i < k->nparams) ? k->params[i].size : 0;
}

const char *dsk_emu_module_kernel_name(const dsk_emu_module *m, int i)
{
    if (!m) return NULL;
    for (int j = 0; j < m->nkernels; j++)
        if (m->kernels[j].is_entry && i-- == 0) return m->kernels[j].name;
    return NULL;
}
