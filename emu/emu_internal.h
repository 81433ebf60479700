/* emu/emu_internal.h: the PTX emulator's internal structures (emu/ only).
 *
 * Pipeline: emu_parse.c turns PTX text into, per kernel, a compact array of decoded
 * instructions (emu_insn) whose operands are register-slot indices: immediates, symbol
 * addresses and special registers are given slots of their own, filled when a warp is
 * created, so every source operand is read the same way. emu_exec.c runs a launch: CTAs
 * (a cluster at a time), warps of 32 lanes with lowest-PC-first reconvergence,
 * cooperative scheduling. emu_ops.c holds the scalar instruction handlers, emu_mma.c the
 * tensor-core and matrix-load ones, emu_async.c cp.async, mbarrier and bulk tensor copies.
 *
 * Register file of a warp: r[slot * 32 + lane], 64 bits per slot whatever the PTX type
 * (readers convert by their operand type). valid[slot] has a bit per lane that has been
 * written; pend[slot] marks wgmma accumulators in flight. */
#ifndef DSK_EMU_INTERNAL_H
#define DSK_EMU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsk/emu.h"
#include "dsk/dtype.h"
#include "core/error.h"

/* ---- generic address windows (state-space addresses are offsets; generic = window + offset) */
#define EMU_WIN_SHARED 0xFFFF000000000000ull
#define EMU_WIN_LOCAL  0xFFFE000000000000ull
#define EMU_WIN_PARAM  0xFFFD000000000000ull
#define EMU_WIN_MASK   0xFFFF000000000000ull
/* shared::cluster address of another CTA's shared memory: ((rank + 1) << 24) | offset */
#define EMU_CLUSTER_SHIFT 24

enum emu_type {
    T_NONE = 0, T_PRED,
    T_B8, T_B16, T_B32, T_B64, T_B128,
    T_U8, T_U16, T_U32, T_U64,
    T_S8, T_S16, T_S32, T_S64,
    T_F16, T_F16X2, T_BF16, T_BF16X2, T_TF32, T_F32, T_F64,
    T_E4M3, T_E5M2, T_E4M3X2, T_E5M2X2,
    T_COUNT
};

enum emu_space {
    SP_GENERIC = 0, SP_GLOBAL, SP_SHARED, SP_SHARED_CLUSTER, SP_LOCAL, SP_PARAM, SP_CONST
};

enum emu_op {
    OP_NOP = 0, OP_MOV, OP_PACK, OP_UNPACK, OP_CLOCK,
    OP_ADD, OP_SUB, OP_MUL, OP_MAD, OP_FMA, OP_DIV, OP_REM, OP_MIN, OP_MAX, OP_ABS, OP_NEG,
    OP_MUL24,
    OP_AND, OP_OR, OP_XOR, OP_NOT, OP_CNOT, OP_SHL, OP_SHR, OP_LOP3, OP_SHF,
    OP_BFE, OP_BFI, OP_PRMT, OP_POPC, OP_CLZ, OP_BREV, OP_BFIND,
    OP_SETP, OP_SELP,
    OP_CVT, OP_CVT_PACK, OP_CVTA,
    OP_RCP, OP_SQRT, OP_RSQRT, OP_EX2, OP_LG2, OP_SIN, OP_COS, OP_TANH, OP_COPYSIGN, OP_TESTP,
    OP_LD, OP_ST, OP_ATOM, OP_RED, OP_ISSPACEP,
    OP_SHFL, OP_VOTE, OP_ACTIVEMASK, OP_REDUX, OP_ELECT,
    OP_BRA, OP_EXIT, OP_RET, OP_BAR, OP_BARWARP, OP_TRAP,
    OP_MAPA, OP_GETCTARANK, OP_CLUSTER_BAR,
    OP_CPASYNC, OP_CPASYNC_COMMIT, OP_CPASYNC_WAIT, OP_CPASYNC_MBAR,
    OP_MBAR, OP_TMA, OP_BULK, OP_BULK_COMMIT, OP_BULK_WAIT,
    OP_LDMATRIX, OP_STMATRIX, OP_MMA,
    OP_WGMMA_FENCE, OP_WGMMA, OP_WGMMA_COMMIT, OP_WGMMA_WAIT,
    OP_COUNT
};

/* modifier bits (emu_insn.mod) */
enum {
    M_SAT = 1u << 0, M_FTZ = 1u << 1, M_APPROX = 1u << 2, M_HI = 1u << 3, M_LO = 1u << 4,
    M_WIDE = 1u << 5, M_TRANS = 1u << 7, M_RELU = 1u << 8,
    M_SATFINITE = 1u << 9, M_ALIGNED = 1u << 10, M_VOLATILE = 1u << 11, M_UNI = 1u << 12,
    M_SHIFT_CLAMP = 1u << 13, M_NOINC = 1u << 14, M_MULTICAST = 1u << 15, M_BOOL_AND = 1u << 16,
    M_BOOL_OR = 1u << 17, M_BOOL_XOR = 1u << 18, M_FULL = 1u << 20, M_NAN = 1u << 22
};

/* rounding modes (emu_insn.rnd) */
enum { RND_NONE = 0, RND_RN, RND_RZ, RND_RM, RND_RP, RND_RNI, RND_RZI, RND_RMI, RND_RPI, RND_RNA };

/* comparison operators (setp) */
enum { CMP_EQ = 1, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_LO, CMP_LS, CMP_HI, CMP_HS,
       CMP_EQU, CMP_NEU, CMP_LTU, CMP_LEU, CMP_GTU, CMP_GEU, CMP_NUM, CMP_NAN };

typedef struct emu_insn {
    uint16_t op;          /* OP_* */
    uint8_t type;         /* primary type (destination type for cvt) */
    uint8_t type2;        /* secondary type (cvt source, mma A/B) */
    uint8_t type3;
    uint8_t nd, ns;       /* destination / source slots used in d[] / s[] */
    uint8_t vec;          /* ld/st/cp vector width; mma/ldmatrix count */
    uint8_t space;        /* SP_* */
    uint8_t rnd;          /* RND_* */
    uint16_t sub;         /* op-specific: comparison, shfl mode, atom op, mbarrier verb ... */
    uint32_t mod;         /* M_* */
    int32_t pred;         /* guard predicate slot, -1: none */
    int32_t pred_neg;
    int32_t d[4];
    int32_t s[6];
    int64_t imm;          /* address offset of the first memory operand; op-specific */
    int64_t imm2, imm3;   /* offsets of the second / third memory operands */
    int32_t target;       /* branch target instruction; op-specific */
    int32_t list, nlist;  /* a run of slots in emu_kernel.lists (wgmma, mma vectors) */
    int32_t list2, nlist2;
    int32_t line;         /* PTX source line */
    const char *text;     /* source text of the statement (for messages and traces) */
} emu_insn;

typedef struct emu_param {
    char name[96];
    size_t offset, size, align;
} emu_param;

/* A slot filled at warp creation: an immediate, an address, or a special register. */
enum { CK_IMM = 0, CK_TID, CK_NTID, CK_CTAID, CK_NCTAID, CK_LANEID, CK_WARPID, CK_NWARPID,
       CK_SMID, CK_NSMID, CK_CLUSTER_CTAID, CK_CLUSTER_NCTAID, CK_CLUSTERID, CK_NCLUSTERID,
       CK_CLUSTER_CTARANK, CK_CLUSTER_NCTARANK, CK_IS_EXPLICIT_CLUSTER, CK_DYN_SMEM,
       CK_TOTAL_SMEM, CK_LANEMASK_EQ, CK_LANEMASK_LT, CK_LANEMASK_LE, CK_LANEMASK_GT,
       CK_LANEMASK_GE, CK_GRIDID, CK_DYN_SMEM_BASE };
typedef struct emu_const {
    int32_t slot;
    int32_t kind;         /* CK_* */
    int32_t dim;          /* 0..2 for .x/.y/.z */
    uint64_t value;       /* CK_IMM */
} emu_const;

typedef struct emu_kernel {
    char name[128];
    int is_entry;
    emu_insn *code; int ncode;
    int32_t *lists; int nlists;
    emu_param *params; int nparams; size_t params_size;
    emu_const *consts; int nconsts;
    int nslots;                /* registers + constants */
    size_t static_smem;        /* static shared bytes (module + kernel variables) */
    size_t dyn_smem_align;     /* alignment of the extern .shared array */
    size_t local_size;         /* per-thread .local bytes */
    int maxntid[3], reqntid[3], reqnctapercluster[3];
    int explicit_cluster;
} emu_kernel;

typedef struct emu_module_var {
    char name[96];
    void *host;
    size_t size;
} emu_module_var;

struct dsk_emu_module {
    char source_name[128];
    char *text;                /* copy of the source; insn.text points into per-line copies */
    char **lines; int nlines;
    emu_kernel *kernels; int nkernels;
    emu_module_var *gvars; int ngvars;   /* .global / .const variables (host memory) */
    int sm_version, has_sm90a;
};

/* ---- execution state ---- */
typedef struct emu_group { int32_t pc; uint32_t mask; int32_t wait; } emu_group;

enum { W_RUN = 0, W_BAR, W_MBAR, W_CLUSTER_BAR, W_EXITED };

typedef struct emu_cpasync {
    int lane; int group;       /* group -1: not yet committed */
    uint32_t smem; const uint8_t *src; int size, src_size;
} emu_cpasync;

typedef struct emu_wgmma_op {
    const emu_insn *in;
    int group;
    uint64_t desc_a, desc_b;
    int scale_d;
    uint32_t *areg;            /* A fragment from registers: 4 x 32 values, or NULL */
} emu_wgmma_op;

typedef struct emu_warp {
    struct emu_cta *cta;
    int id;                    /* warp index in the CTA */
    int state;                 /* W_* */
    uint32_t exists;           /* lanes that are threads of the CTA */
    uint32_t live;             /* lanes not exited */
    uint64_t *r;
    uint32_t *valid;
    uint8_t *pend;
    emu_group grp[32]; int ngrp;
    /* what a blocked warp waits for */
    int wait_mbar_cta; uint32_t wait_mbar; int wait_parity;
    /* cp.async */
    emu_cpasync *cpa; int ncpa, capcpa;
    int cpa_committed[32];
    /* wgmma */
    emu_wgmma_op *wg; int nwg, capwg;
    int wg_committed;
    /* bulk async-group (cp.async.bulk.commit_group / wait_group) */
    int bulk_committed;
    /* barrier.cluster: arrived in phase cbar_phase, not yet waited */
    unsigned cbar_phase; int cbar_pending;
} emu_warp;

typedef struct emu_barrier {
    int arrived;               /* threads arrived in the current phase */
    int expected;              /* 0: not in use */
    int count_given;           /* the count operand of the first arrival (0: all threads) */
    int first_line;
    uint32_t red_or, red_and; int red_popc; int red_kind;
} emu_barrier;

typedef struct emu_mbar {
    uint32_t off;
    int expected, pending;
    int64_t tx;
    uint32_t phase;
} emu_mbar;

typedef struct emu_cta {
    struct emu_launch *L;
    unsigned ctaid[3];
    unsigned cluster_ctaid[3];
    int rank;                  /* %cluster_ctarank */
    uint8_t *smem, *shadow;    /* shadow: see emu_check_shadow */
    size_t smem_size;
    int npending;              /* async copies outstanding into this CTA's shared memory */
    emu_warp *warps; int nwarps;
    int nthreads, nlive;
    emu_barrier bars[16];
    emu_mbar *mbars; int nmbars, capmbars;
    uint8_t *local;
    int done;
} emu_cta;

typedef struct emu_range { uintptr_t base; size_t size; } emu_range;

typedef struct emu_bulk {
    int kind;                  /* 0 tensor load, 1 tensor store, 2 bulk load g->s, 3 bulk store s->g */
    int cta;                   /* destination CTA (index in cluster) for loads */
    uint16_t mcast;            /* multicast ctaMask (loads), 0: just cta */
    uint32_t smem;             /* smem offset */
    uint32_t mbar;             /* mbarrier offset (loads) */
    uint8_t *data; size_t bytes;   /* loads: box contents gathered at issue */
    int src_cta; int warp; int group;  /* stores: the issuing warp's bulk group */
    uint8_t map[128]; int32_t coord[5];
    uint8_t *gdst;             /* bulk store destination */
} emu_bulk;

typedef struct emu_launch {
    const dsk_emu_module *mod;
    const emu_kernel *k;
    dsk_emu_launch_cfg cfg;
    unsigned cluster[3];
    int cluster_size;
    dsk_emu_target tgt;
    dsk_emu_options opt;
    uint8_t *params;
    size_t dyn_smem, dyn_base;
    emu_range *ranges; int nranges, last_range;
    uint64_t rng;
    uint64_t thread_insns, warp_insns;
    dsk_status status;         /* DSK_OK until something stops the launch */
    emu_cta *ctas; int nctas;  /* the CTAs of the current cluster */
    emu_bulk *bulk; int nbulk, capbulk;
    unsigned cluster_bar_phase; int cluster_bar_arrived;
    FILE *trace;
    uint64_t clock;
} emu_launch;

/* ---- emu_parse.c ---- */
const emu_kernel *emu_find_kernel(const dsk_emu_module *m, const char *name);

/* ---- emu_exec.c ---- */
/* Stops the launch: DSK_ERR_EMU with "kernel K, line L `text`: CTA (x,y,z) thread (x,y,z): msg". */
int emu_error(emu_warp *w, const emu_insn *in, int lane, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Host pointer of [addr, addr+size) in space sp for a lane, or NULL after emu_error. */
uint8_t *emu_addr(emu_warp *w, const emu_insn *in, int lane, int sp, uint64_t addr, size_t size,
                  int write);
/* shared memory of the CTA a shared::cluster address names, and the offset in it */
emu_cta *emu_cluster_cta(emu_warp *w, const emu_insn *in, int lane, uint64_t addr, uint32_t *off);
/* shadow bytes: 1 pending cp.async, 2 pending bulk/tensor load, 3 source of a bulk store in
 * flight (readable, not writable) */
int emu_check_shadow(emu_warp *w, const emu_insn *in, int lane, emu_cta *c, uint32_t off,
                     size_t size, int write);
uint64_t emu_rand(emu_launch *L);
int emu_global_ok(emu_launch *L, uintptr_t p, size_t size);

/* ---- emu_ops.c ---- */
int emu_exec_alu(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_mem(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_warp_collective(emu_warp *w, const emu_insn *in, uint32_t m);

/* ---- emu_mma.c ---- */
int emu_exec_ldmatrix(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_stmatrix(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_mma(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_wgmma(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_wgmma_retire(emu_warp *w, const emu_insn *in, int keep);
float emu_fp8_value(uint8_t v, int e5m2);

/* ---- emu_async.c ---- */
int emu_exec_cpasync(emu_warp *w, const emu_insn *in, uint32_t m);
int emu_exec_mbar(emu_warp *w, const emu_insn *in, uint32_t m, int *block);
int emu_exec_bulk(emu_warp *w, const emu_insn *in, uint32_t m);
/* 1 when the mbarrier phase with parity `parity` has completed (completing pending bulk
 * copies that signal it first). -1 on error. */
int emu_mbar_ready(emu_launch *L, int cta, uint32_t off, int parity);
emu_mbar *emu_mbar_find(emu_cta *c, uint32_t off);
int emu_bulk_finish_cta(emu_launch *L, int cta);
void emu_mbar_complete_tx(emu_launch *L, emu_cta *c, emu_mbar *b, int64_t bytes);

/* ---- helpers shared by the handlers ---- */
#define EMU_R(w, slot) ((w)->r + (size_t)(slot) * 32)
#define FOR_LANES(l, m) for (int l = 0; l < 32; l++) if (((m) >> l) & 1u)

static inline float emu_f32(uint64_t v) { union { uint32_t u; float f; } x = { (uint32_t)v }; return x.f; }
static inline uint64_t emu_bits32(float f) { union { float f; uint32_t u; } x = { f }; return x.u; }
static inline double emu_f64(uint64_t v) { union { uint64_t u; double f; } x = { v }; return x.f; }
static inline uint64_t emu_bits64(double f) { union { double f; uint64_t u; } x = { f }; return x.u; }

static inline int emu_type_bits(int t)
{
    switch (t) {
    case T_PRED: return 1;
    case T_B8: case T_U8: case T_S8: case T_E4M3: case T_E5M2: return 8;
    case T_B16: case T_U16: case T_S16: case T_F16: case T_BF16: case T_E4M3X2: case T_E5M2X2: return 16;
    case T_B32: case T_U32: case T_S32: case T_F32: case T_F16X2: case T_BF16X2: case T_TF32: return 32;
    case T_B64: case T_U64: case T_S64: case T_F64: return 64;
    case T_B128: return 128;
    default: return 0;
    }
}
const char *emu_op_name(int op);

#endif
