/* emu/emu_parse.h: the parser's state, shared by emu_parse.c (statements, declarations)
 * and emu_decode.c (instructions). */
#ifndef DSK_EMU_PARSE_H
#define DSK_EMU_PARSE_H

#include <stdarg.h>
#include "emu_internal.h"

enum { TK_EOF = 0, TK_ID, TK_NUM, TK_STR, TK_PUNCT };
typedef struct emu_tok { int kind; const char *s; int len; int line; } emu_tok;

enum { SYM_REG = 1, SYM_SHARED, SYM_DYN_SHARED, SYM_PARAM, SYM_LOCAL, SYM_GLOBAL };
typedef struct emu_sym {
    char name[96]; int len;
    int kind;
    int64_t value;    /* slot, offset or host address */
    int count;        /* registers declared as name<count>; 0 for a single name */
    int next;         /* hash chain */
} emu_sym;

typedef struct emu_label { char name[96]; int len; int scope; int pc; } emu_label;
typedef struct emu_label_ref { char name[96]; int len; int scope; int insn; } emu_label_ref;

/* a number literal */
enum { IMM_INT = 0, IMM_F32BITS, IMM_F64BITS, IMM_FLOAT };
typedef struct emu_imm { int kind; uint64_t u; double f; } emu_imm;

#define EMU_SYM_BUCKETS 4096
#define EMU_CONST_BUCKETS 4096
#define EMU_MAX_SCOPES 65536

typedef struct emu_parser {
    dsk_emu_module *mod;
    const char *p, *end;
    int line;
    emu_tok tok;
    int failed;
    /* symbols */
    emu_sym *syms; int nsyms, capsyms;
    int bucket[EMU_SYM_BUCKETS];
    size_t module_smem, kernel_smem, dyn_smem_align, module_dyn_align, local_size;
    int capgvars, capkernels;
    /* the function being built */
    emu_insn *code; int ncode, capcode;
    int32_t *lists; int nlists, caplists;
    emu_const *consts; int nconsts, capconsts;
    int *cnext; int capcnext;
    int cbucket[EMU_CONST_BUCKETS];
    emu_param *params; int nparams, capparams;
    size_t params_size;
    int nslots;
    emu_label *labels; int nlabels, caplabels;
    emu_label_ref *refs; int nrefs, caprefs;
    int scope, nscopes;
    int scope_parent[EMU_MAX_SCOPES];
} emu_parser;

void emu_lex(emu_parser *P);
int emu_tok_is(const emu_tok *t, const char *s);
int emu_perr(emu_parser *P, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *emu_line_text(emu_parser *P, int line);
emu_sym *emu_sym_find(emu_parser *P, const char *name, int len, int *idx);
int emu_grow(void **p, int *cap, int need, size_t elem);
int emu_const_slot(emu_parser *P, int kind, int dim, uint64_t value);
int emu_add_label_ref(emu_parser *P, int insn, const char *name, int len);
int emu_parse_number(const char *s, int len, emu_imm *out);
uint64_t emu_imm_bits(const emu_imm *im, int type, int neg);

/* emu_decode.c: parses one instruction statement (current token: '@' or the opcode) and
 * appends it to P->code. */
int emu_parse_instruction(emu_parser *P);

#endif
