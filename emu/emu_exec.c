/* emu/emu_exec.c: running a kernel (dsk_emu_launch).
 *
 * Execution model:
 * - The grid runs one cluster at a time (a cluster of 1 CTA without clusters); the CTAs
 *   of a cluster run together so distributed shared memory and multicast copies work.
 * - A warp's lanes are kept as groups (pc, lane mask). The group with the lowest pc runs
 *   next, and groups reaching the same pc merge: lowest-PC-first reconvergence (as GPU
 *   Ocelot does), right for the structured control flow compilers emit.
 * - Warps are scheduled cooperatively: a warp runs until it blocks (bar.sync,
 *   mbarrier waits, barrier.cluster.wait) or its quantum ends. With a schedule seed the
 *   warp order and quanta are random. When no warp can run, the launch stops with a
 *   deadlock report of who waits on what.
 * - Every register read is checked against a per-lane "written" mask; every shared read
 *   against the shadow bytes of copies in flight; every global access against the
 *   allocation registry. Errors name kernel, line, CTA and thread. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "emu_internal.h"
#include "emu_mem.h"

/* ---- errors --------------------------------------------------------------------------- */

static void thread_coords(const emu_launch *L, int linear, unsigned t[3])
{
    unsigned bx = L->cfg.block[0], by = L->cfg.block[1];
    t[0] = (unsigned)linear % bx;
    t[1] = ((unsigned)linear / bx) % by;
    t[2] = (unsigned)linear / (bx * by);
}

int emu_error(emu_warp *w, const emu_insn *in, int lane, const char *fmt, ...)
{
    emu_launch *L = w->cta->L;
    if (L->status != DSK_OK) return -1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned t[3] = {0, 0, 0};
    if (lane < 0) lane = 0;
    thread_coords(L, w->id * 32 + lane, t);
    const emu_cta *c = w->cta;
    dsk_fail(DSK_ERR_EMU, "dsk_emu_launch: kernel %s, line %d `%s`: CTA (%u,%u,%u) thread (%u,%u,%u): %s",
             L->k->name, in ? in->line : 0, in ? in->text : "", c->ctaid[0], c->ctaid[1], c->ctaid[2],
             t[0], t[1], t[2], msg);
    L->status = DSK_ERR_EMU;
    return -1;
}

uint64_t emu_rand(emu_launch *L)
{
    uint64_t z = (L->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- addresses ------------------------------------------------------------------------ */

int emu_check_shadow(emu_warp *w, const emu_insn *in, int lane, emu_cta *c, uint32_t off, size_t size, int write)
{
    if (!c->npending) return 0;
    /* fast path: no marked byte (8 at a time) */
    const uint8_t *sh = c->shadow + off;
    size_t k = 0;
    uint64_t any = 0;
    for (; k + 8 <= size; k += 8) {
        uint64_t v8;
        memcpy(&v8, sh + k, 8);
        any |= v8;
    }
    for (; k < size; k++) any |= sh[k];
    if (!any) return 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t v = c->shadow[off + i];
        if (!v || (v == 3 && !write)) continue;
        if (v == 3)
            return emu_error(w, in, lane,
                             "writes shared memory [0x%x, +%zu) that a bulk store is still reading "
                             "(missing cp.async.bulk.wait_group.read before reusing the buffer)", off, size);
        return emu_error(w, in, lane,
                         "accesses shared memory [0x%x, +%zu) that %s has not completed yet "
                         "(missing %s before the access)", off, size,
                         v == 1 ? "a cp.async" : "a bulk/tensor copy",
                         v == 1 ? "cp.async.wait_group" : "an mbarrier wait");
    }
    return 0;
}

emu_cta *emu_cluster_cta(emu_warp *w, const emu_insn *in, int lane, uint64_t addr, uint32_t *off)
{
    emu_launch *L = w->cta->L;
    uint64_t r = addr >> EMU_CLUSTER_SHIFT;
    *off = (uint32_t)(addr & ((1u << EMU_CLUSTER_SHIFT) - 1));
    if (r == 0) return w->cta;
    if (r > (uint64_t)L->nctas) {
        emu_error(w, in, lane, "shared::cluster address 0x%llx names CTA rank %llu, the cluster has %d",
                  (unsigned long long)addr, (unsigned long long)(r - 1), L->nctas);
        return NULL;
    }
    return &L->ctas[r - 1];
}

uint8_t *emu_addr(emu_warp *w, const emu_insn *in, int lane, int sp, uint64_t addr, size_t size, int write)
{
    emu_cta *c = w->cta;
    emu_launch *L = c->L;
    if (size > 1 && (addr & (size - 1)) && size <= 16) {
        emu_error(w, in, lane, "misaligned %zu-byte access at address 0x%llx", size, (unsigned long long)addr);
        return NULL;
    }
    if (sp == SP_GENERIC) {
        uint64_t win = addr & EMU_WIN_MASK;
        if (win == EMU_WIN_SHARED) { sp = SP_SHARED_CLUSTER; addr &= ~EMU_WIN_MASK; }
        else if (win == EMU_WIN_LOCAL) { sp = SP_LOCAL; addr &= ~EMU_WIN_MASK; }
        else if (win == EMU_WIN_PARAM) { sp = SP_PARAM; addr &= ~EMU_WIN_MASK; }
        else sp = SP_GLOBAL;
    }
    switch (sp) {
    case SP_GLOBAL: case SP_CONST:
        if (!emu_global_ok(L, (uintptr_t)addr, size)) {
            emu_error(w, in, lane, "%s of %zu bytes at global address 0x%llx is outside every allocation "
                      "known to the emulator (dsk_emu_alloc / dsk_emu_register)", write ? "store" : "load",
                      size, (unsigned long long)addr);
            return NULL;
        }
        return (uint8_t *)(uintptr_t)addr;
    case SP_SHARED: case SP_SHARED_CLUSTER: {
        uint32_t off = (uint32_t)addr;
        emu_cta *t = c;
        if (sp == SP_SHARED_CLUSTER) {
            t = emu_cluster_cta(w, in, lane, addr, &off);
            if (!t) return NULL;
        } else if (addr >> 32) {
            emu_error(w, in, lane, "shared address 0x%llx does not fit the shared window", (unsigned long long)addr);
            return NULL;
        }
        if ((uint64_t)off + size > t->smem_size) {
            emu_error(w, in, lane, "%s of %zu bytes at shared offset 0x%x is beyond the CTA's %zu bytes of shared memory",
                      write ? "store" : "load", size, off, t->smem_size);
            return NULL;
        }
        if (t->npending && emu_check_shadow(w, in, lane, t, off, size, write)) return NULL;
        return t->smem + off;
    }
    case SP_LOCAL: {
        size_t ls = L->k->local_size;
        if (addr + size > ls) {
            emu_error(w, in, lane, "local access at 0x%llx (+%zu) is beyond the thread's %zu bytes of local memory",
                      (unsigned long long)addr, size, ls);
            return NULL;
        }
        return c->local + (size_t)(w->id * 32 + lane) * ls + addr;
    }
    case SP_PARAM:
        if ((addr & EMU_WIN_MASK) == EMU_WIN_PARAM) addr &= ~EMU_WIN_MASK;
        if (write) {
            emu_error(w, in, lane, "store to kernel parameter space");
            return NULL;
        }
        if (addr + size > L->k->params_size) {
            emu_error(w, in, lane, "parameter access at offset %llu (+%zu) is beyond the %zu bytes of parameters",
                      (unsigned long long)addr, size, L->k->params_size);
            return NULL;
        }
        return L->params + addr;
    }
    emu_error(w, in, lane, "bad state space");
    return NULL;
}

/* ---- warps ---------------------------------------------------------------------------- */

static uint64_t const_value(const emu_launch *L, const emu_cta *c, const emu_warp *w, const emu_const *k,
                            int lane)
{
    unsigned t[3];
    int linear = w->id * 32 + lane;
    switch (k->kind) {
    case CK_IMM: return k->value;
    case CK_TID: thread_coords(L, linear, t); return t[k->dim];
    case CK_NTID: return L->cfg.block[k->dim];
    case CK_CTAID: return c->ctaid[k->dim];
    case CK_NCTAID: return L->cfg.grid[k->dim];
    case CK_LANEID: return (uint64_t)lane;
    case CK_WARPID: return (uint64_t)w->id;
    case CK_NWARPID: return 64;
    case CK_SMID: return (c->ctaid[0] + c->ctaid[1] * L->cfg.grid[0]) % (unsigned)(L->tgt.num_sms > 0 ? L->tgt.num_sms : 1);
    case CK_NSMID: return (uint64_t)L->tgt.num_sms;
    case CK_CLUSTER_CTAID: return c->cluster_ctaid[k->dim];
    case CK_CLUSTER_NCTAID: return L->cluster[k->dim];
    case CK_CLUSTERID: return c->ctaid[k->dim] / L->cluster[k->dim];
    case CK_NCLUSTERID: return L->cfg.grid[k->dim] / L->cluster[k->dim];
    case CK_CLUSTER_CTARANK: return (uint64_t)c->rank;
    case CK_CLUSTER_NCTARANK: return (uint64_t)L->cluster_size;
    case CK_IS_EXPLICIT_CLUSTER: return L->cluster_size > 1 || L->k->explicit_cluster;
    case CK_DYN_SMEM: return L->dyn_smem;
    case CK_TOTAL_SMEM: return c->smem_size;
    case CK_LANEMASK_EQ: return 1ull << lane;
    case CK_LANEMASK_LT: return (1ull << lane) - 1;
    case CK_LANEMASK_LE: return (2ull << lane) - 1;
    case CK_LANEMASK_GT: return 0xFFFFFFFFull & ~((2ull << lane) - 1);
    case CK_LANEMASK_GE: return 0xFFFFFFFFull & ~((1ull << lane) - 1);
    case CK_GRIDID: return 1;
    case CK_DYN_SMEM_BASE: return L->dyn_base + k->value;
    }
    return 0;
}

static int warp_init(emu_launch *L, emu_cta *c, emu_warp *w, int id)
{
    const emu_kernel *k = L->k;
    memset(w, 0, sizeof *w);
    w->cta = c;
    w->id = id;
    int first = id * 32;
    int n = c->nthreads - first < 32 ? c->nthreads - first : 32;
    w->exists = n == 32 ? 0xFFFFFFFFu : (1u << n) - 1;
    w->live = w->exists;
    size_t ns = (size_t)k->nslots;
    w->r = malloc(ns * 32 * sizeof(uint64_t) + 1);
    w->valid = calloc(ns + 1, sizeof(uint32_t));
    w->pend = calloc(ns + 1, 1);
    if (!w->r || !w->valid || !w->pend) return -1;
    for (int i = 0; i < k->nconsts; i++) {
        const emu_const *kc = &k->consts[i];
        uint64_t *r = EMU_R(w, kc->slot);
        for (int l = 0; l < 32; l++) r[l] = const_value(L, c, w, kc, l);
        w->valid[kc->slot] = 0xFFFFFFFFu;
    }
    w->grp[0].pc = 0;
    w->grp[0].mask = w->live;
    w->ngrp = 1;
    w->state = W_RUN;
    return 0;
}

static void warp_free(emu_warp *w)
{
    free(w->r);
    free(w->valid);
    free(w->pend);
    free(w->cpa);
    for (int i = 0; i < w->nwg; i++) free(w->wg[i].areg);
    free(w->wg);
}

/* ---- barriers ------------------------------------------------------------------------- */

static void bar_release(emu_cta *c, int id)
{
    emu_barrier *b = &c->bars[id];
    const emu_kernel *k = c->L->k;
    for (int wi = 0; wi < c->nwarps; wi++) {
        emu_warp *w = &c->warps[wi];
        int any = 0;
        for (int g = 0; g < w->ngrp; g++) {
            if (w->grp[g].wait != id + 1) continue;
            const emu_insn *in = &k->code[w->grp[g].pc];
            if (in->sub == 2 && in->d[0] >= 0) {  /* bar.red result */
                uint64_t v = b->red_kind == 1 ? (uint64_t)b->red_popc
                           : b->red_kind == 2 ? (uint64_t)(b->red_and != 0) : (uint64_t)(b->red_or != 0);
                uint64_t *d = EMU_R(w, in->d[0]);
                FOR_LANES(l, w->grp[g].mask) d[l] = v;
                w->valid[in->d[0]] |= w->grp[g].mask;
            }
            w->grp[g].wait = 0;
            w->grp[g].pc++;
            any = 1;
        }
        if (any && w->state == W_BAR) w->state = W_RUN;
    }
    b->arrived = 0;
    b->count_given = 0;
    b->red_popc = 0;
    b->red_and = 1;
    b->red_or = 0;
}

static void bar_check_all(emu_cta *c)
{
    for (int i = 0; i < 16; i++) {
        emu_barrier *b = &c->bars[i];
        if (b->arrived == 0) continue;
        int expected = b->count_given ? b->count_given : c->nlive;
        if (b->arrived >= expected) bar_release(c, i);
    }
}

/* bar.sync / bar.arrive / bar.red by group g of warp w. Returns 1 when the group waits. */
static int exec_bar(emu_warp *w, emu_group *g, const emu_insn *in, uint32_t m)
{
    emu_cta *c = w->cta;
    uint64_t *ids = EMU_R(w, in->s[0]);
    int lane0 = __builtin_ctz(m);
    uint64_t id = ids[lane0];
    int count = 0;
    int has_count = in->s[1] >= 0 && !(in->sub == 2 && in->target == 1);
    if (has_count) count = (int)(uint32_t)EMU_R(w, in->s[1])[lane0];
    FOR_LANES(l, m) {
        if (ids[l] != id) return emu_error(w, in, l, "lanes of one warp name different barriers (%llu and %llu)",
                                           (unsigned long long)ids[lane0], (unsigned long long)ids[l]);
        if (has_count && (int)(uint32_t)EMU_R(w, in->s[1])[l] != count)
            return emu_error(w, in, l, "lanes of one warp give different barrier thread counts");
    }
    if (id >= 16) return emu_error(w, in, lane0, "barrier %llu: barriers 0..15 exist", (unsigned long long)id);
    if (has_count && (count <= 0 || count % 32 || count > c->nthreads + 31))
        return emu_error(w, in, lane0, "barrier thread count %d must be a positive multiple of 32 up to the CTA size", count);
    if (in->sub == 1 && !has_count) return emu_error(w, in, lane0, "bar.arrive needs a thread count");
    if ((in->mod & M_ALIGNED) && m != w->live)
        return emu_error(w, in, lane0, "aligned barrier executed by part of a warp (lanes 0x%08x of live 0x%08x): "
                         "all threads of the warp must execute the same bar.sync", m, w->live);
    emu_barrier *b = &c->bars[id];
    if (b->arrived == 0) {
        b->count_given = count;
        b->first_line = in->line;
        b->red_and = 1;
        b->red_or = 0;
        b->red_popc = 0;
        b->red_kind = in->sub == 2 ? in->type : 0;
    } else if (b->count_given != count) {
        return emu_error(w, in, lane0, "barrier %d disagreement: this warp arrives with thread count %d, "
                         "others arrived with %d (line %d)", (int)id, count, b->count_given, b->first_line);
    }
    int n = (in->mod & M_ALIGNED) ? __builtin_popcount(w->live) : __builtin_popcount(m);
    if (in->sub == 2) {
        uint64_t *p = EMU_R(w, in->s[in->target == 1 ? 1 : 2]);
        FOR_LANES(l, m) {
            int v = (int)(p[l] & 1) ^ (int)in->imm;
            b->red_popc += v;
            b->red_and &= (uint32_t)v;
            b->red_or |= (uint32_t)v;
        }
    }
    b->arrived += n;
    int expected = count ? count : c->nlive;
    if (b->arrived > expected)
        return emu_error(w, in, lane0, "barrier %d: %d threads arrived, more than its count %d", (int)id, b->arrived, expected);
    if (in->sub == 1) {  /* arrive: no wait */
        if (b->arrived == expected) bar_release(c, (int)id);
        return 0;
    }
    g->wait = (int)id + 1;
    if (b->arrived == expected) bar_release(c, (int)id);
    return g->wait ? 1 : 2;
}

/* ---- control flow --------------------------------------------------------------------- */

static void groups_merge(emu_warp *w)
{
    for (int i = 0; i < w->ngrp; i++)
        for (int j = i + 1; j < w->ngrp; j++)
            if (w->grp[i].pc == w->grp[j].pc && !w->grp[i].wait && !w->grp[j].wait) {
                w->grp[i].mask |= w->grp[j].mask;
                w->grp[j] = w->grp[--w->ngrp];
                j--;
            }
}

static int pick_group(const emu_warp *w)
{
    int best = -1;
    for (int i = 0; i < w->ngrp; i++)
        if (!w->grp[i].wait && (best < 0 || w->grp[i].pc < w->grp[best].pc)) best = i;
    return best;
}

static void lanes_exit(emu_warp *w, int gi, uint32_t m)
{
    emu_cta *c = w->cta;
    emu_group *g = &w->grp[gi];
    g->mask &= ~m;
    w->live &= ~m;
    c->nlive -= __builtin_popcount(m);
    if (!g->mask) w->grp[gi] = w->grp[--w->ngrp];
    else g->pc++;
    if (!w->live) w->state = W_EXITED;
    bar_check_all(c);
}

static void trace_insn(emu_warp *w, const emu_insn *in, uint32_t m)
{
    emu_launch *L = w->cta->L;
    int t = L->opt.trace_thread;
    int cta_linear = (int)(w->cta->ctaid[0] + L->cfg.grid[0] * (w->cta->ctaid[1] + L->cfg.grid[1] * w->cta->ctaid[2]));
    int per_cta = (int)(L->cfg.block[0] * L->cfg.block[1] * L->cfg.block[2]);
    if (t / per_cta != cta_linear) return;
    int local = t % per_cta;
    if (local / 32 != w->id) return;
    int lane = local % 32;
    FILE *f = L->trace;
    if (!((m >> lane) & 1)) {
        fprintf(f, "[thread %d] line %5d  (inactive)  %s\n", t, in->line, in->text);
        return;
    }
    fprintf(f, "[thread %d] line %5d  %s", t, in->line, in->text);
    for (int i = 0; i < in->nd && i < 4; i++)
        if (in->d[i] >= 0) fprintf(f, "  d%d=0x%llx", i, (unsigned long long)EMU_R(w, in->d[i])[lane]);
    fputc('\n', f);
}

static int check_sources(emu_warp *w, const emu_insn *in, uint32_t m)
{
    for (int i = 0; i < in->ns; i++) {
        int s = in->s[i];
        if (s < 0) continue;
        if ((w->valid[s] & m) != m) {
            int lane = __builtin_ctz(m & ~w->valid[s]);
            if (w->pend[s])
                return emu_error(w, in, lane, "reads a wgmma accumulator register before the wgmma.wait_group "
                                 "that retires it");
            return emu_error(w, in, lane, "reads a register that was never written (source operand %d)", i + 1);
        }
    }
    for (int i = 0; i < in->nd; i++)
        if (in->d[i] >= 0 && w->pend[in->d[i]])
            return emu_error(w, in, __builtin_ctz(m), "writes a wgmma accumulator register while the wgmma "
                             "that writes it is in flight (before wgmma.wait_group)");
    return 0;
}

static int exec_cluster_bar(emu_warp *w, const emu_insn *in, uint32_t m, int *block)
{
    emu_launch *L = w->cta->L;
    if (m != w->live) return emu_error(w, in, __builtin_ctz(m), "barrier.cluster executed by part of a warp");
    if (in->sub == 1) {
        if (w->cbar_pending) return emu_error(w, in, __builtin_ctz(m), "barrier.cluster.arrive twice without a wait");
        w->cbar_pending = 1;
        w->cbar_phase = L->cluster_bar_phase;
        L->cluster_bar_arrived += __builtin_popcount(m);
        int expected = 0;
        for (int i = 0; i < L->nctas; i++) expected += L->ctas[i].nlive;
        if (L->cluster_bar_arrived >= expected) {
            L->cluster_bar_arrived = 0;
            L->cluster_bar_phase++;
        }
        return 0;
    }
    if (!w->cbar_pending) return emu_error(w, in, __builtin_ctz(m), "barrier.cluster.wait without a preceding arrive");
    if (w->cbar_phase == L->cluster_bar_phase) {
        w->state = W_CLUSTER_BAR;
        *block = 1;
        return 0;
    }
    w->cbar_pending = 0;
    return 0;
}

static void cluster_bar_check(emu_launch *L)
{
    if (!L->cluster_bar_arrived) return;
    int expected = 0;
    for (int i = 0; i < L->nctas; i++) expected += L->ctas[i].nlive;
    if (L->cluster_bar_arrived >= expected) {
        L->cluster_bar_arrived = 0;
        L->cluster_bar_phase++;
    }
}

/* Runs warp w for up to `budget` instructions. Returns instructions executed, -1 on error. */
static long run_warp(emu_warp *w, long budget)
{
    emu_cta *c = w->cta;
    emu_launch *L = c->L;
    const emu_kernel *k = L->k;
    const emu_insn *code = k->code;
    long done = 0;
    while (done < budget) {
        if (w->state != W_RUN) break;
        int gi = pick_group(w);
        if (gi < 0) { w->state = W_BAR; break; }
        emu_group *g = &w->grp[gi];
        if (g->pc >= k->ncode) {  /* falling off the end of an entry returns */
            lanes_exit(w, gi, g->mask);
            continue;
        }
        const emu_insn *in = &code[g->pc];
        uint32_t m = g->mask;
        if (in->pred >= 0) {
            if ((w->valid[in->pred] & m) != m)
                return emu_error(w, in, __builtin_ctz(m & ~w->valid[in->pred]),
                                 "guard predicate was never written");
            const uint64_t *p = EMU_R(w, in->pred);
            uint32_t pm = 0;
            FOR_LANES(l, m) if (((uint32_t)p[l] & 1u) ^ (uint32_t)in->pred_neg) pm |= 1u << l;
            m = pm;
        }
        done++;
        L->warp_insns++;
        L->thread_insns += (uint64_t)__builtin_popcount(m);
        int rc = 0, block = 0;
        switch (in->op) {
        case OP_BRA:
            if (m == g->mask) {
                g->pc = in->target;
            } else if (m == 0) {
                g->pc++;
            } else {
                g->mask &= ~m;
                g->pc++;
                w->grp[w->ngrp].pc = in->target;
                w->grp[w->ngrp].mask = m;
                w->grp[w->ngrp].wait = 0;
                w->ngrp++;
            }
            if (w->ngrp > 1) groups_merge(w);
            if (L->trace) trace_insn(w, in, m);
            continue;
        case OP_EXIT: case OP_RET:
            if (L->trace) trace_insn(w, in, m);
            if (!m) { g->pc++; continue; }
            lanes_exit(w, gi, m);
            if (L->cluster_bar_arrived) cluster_bar_check(L);
            if (w->ngrp > 1) groups_merge(w);
            continue;
        case OP_TRAP:
            if (!m) { g->pc++; continue; }
            return emu_error(w, in, __builtin_ctz(m), "trap executed");
        case OP_BAR:
            if (!m) { g->pc++; continue; }
            if (check_sources(w, in, m)) return -1;
            if (L->trace) trace_insn(w, in, m);
            rc = exec_bar(w, g, in, m);
            if (rc < 0) return -1;
            if (rc == 0) g->pc++;
            if (w->ngrp > 1) groups_merge(w);
            continue;
        default:
            break;
        }
        if (!m) { g->pc++; continue; }
        if (check_sources(w, in, m)) return -1;
        switch (in->op) {
        case OP_NOP: case OP_WGMMA_FENCE: break;
        case OP_LD: case OP_ST: case OP_ATOM: case OP_RED: case OP_CVTA: case OP_ISSPACEP:
        case OP_MAPA: case OP_GETCTARANK:
            rc = emu_exec_mem(w, in, m); break;
        case OP_SHFL: case OP_VOTE: case OP_ACTIVEMASK: case OP_REDUX: case OP_ELECT: case OP_BARWARP:
            rc = emu_exec_warp_collective(w, in, m); break;
        case OP_CLOCK: {
            uint64_t *d = EMU_R(w, in->d[0]);
            L->clock += 4;
            FOR_LANES(l, m) d[l] = L->clock;
            break;
        }
        case OP_CPASYNC: case OP_CPASYNC_COMMIT: case OP_CPASYNC_WAIT: case OP_CPASYNC_MBAR:
            rc = emu_exec_cpasync(w, in, m); break;
        case OP_MBAR:
            rc = emu_exec_mbar(w, in, m, &block); break;
        case OP_TMA: case OP_BULK: case OP_BULK_COMMIT: case OP_BULK_WAIT:
            rc = emu_exec_bulk(w, in, m); break;
        case OP_LDMATRIX: rc = emu_exec_ldmatrix(w, in, m); break;
        case OP_STMATRIX: rc = emu_exec_stmatrix(w, in, m); break;
        case OP_MMA: rc = emu_exec_mma(w, in, m); break;
        case OP_WGMMA: case OP_WGMMA_COMMIT: case OP_WGMMA_WAIT:
            rc = emu_exec_wgmma(w, in, m); break;
        case OP_CLUSTER_BAR: rc = exec_cluster_bar(w, in, m, &block); break;
        default:
            rc = emu_exec_alu(w, in, m); break;
        }
        if (rc < 0 || L->status != DSK_OK) return -1;
        if (block) {  /* re-executed when the warp resumes */
            done--;
            L->warp_insns--;
            L->thread_insns -= (uint64_t)__builtin_popcount(m);
            break;
        }
        for (int i = 0; i < in->nd; i++)
            if (in->d[i] >= 0) w->valid[in->d[i]] |= m;
        if (L->trace) trace_insn(w, in, m);
        g->pc++;
        if (w->ngrp > 1) groups_merge(w);
    }
    return done;
}

/* ---- scheduling ----------------------------------------------------------------------- */

static int warp_ready(emu_launch *L, emu_warp *w)
{
    switch (w->state) {
    case W_RUN: return 1;
    case W_MBAR: {
        int r = emu_mbar_ready(L, w->wait_mbar_cta, w->wait_mbar, w->wait_parity);
        if (r < 0) return -1;
        if (r) w->state = W_RUN;
        return r;
    }
    case W_CLUSTER_BAR:
        if (w->cbar_phase != L->cluster_bar_phase) { w->state = W_RUN; return 1; }
        return 0;
    default: return 0;
    }
}

static void deadlock_report(emu_launch *L)
{
    char msg[2048];
    size_t n = 0;
    n += (size_t)snprintf(msg + n, sizeof msg - n, "dsk_emu_launch: kernel %s: deadlock: no warp can run.", L->k->name);
    int shown = 0;
    for (int ci = 0; ci < L->nctas && n < sizeof msg - 200; ci++) {
        emu_cta *c = &L->ctas[ci];
        for (int wi = 0; wi < c->nwarps && n < sizeof msg - 200; wi++) {
            emu_warp *w = &c->warps[wi];
            if (w->state == W_EXITED) continue;
            if (shown++ >= 8) continue;
            int gi = 0;
            for (int i = 1; i < w->ngrp; i++) if (w->grp[i].pc < w->grp[gi].pc) gi = i;
            int line = w->grp[gi].pc < L->k->ncode ? L->k->code[w->grp[gi].pc].line : 0;
            if (w->state == W_BAR) {
                int id = w->grp[gi].wait - 1;
                emu_barrier *b = &c->bars[id < 0 ? 0 : id];
                n += (size_t)snprintf(msg + n, sizeof msg - n,
                                      " CTA (%u,%u,%u) warp %d waits at barrier %d (line %d): %d of %d threads arrived;",
                                      c->ctaid[0], c->ctaid[1], c->ctaid[2], w->id, id, line, b->arrived,
                                      b->count_given ? b->count_given : c->nlive);
            } else if (w->state == W_MBAR) {
                emu_cta *mc = &L->ctas[w->wait_mbar_cta];
                emu_mbar *mb = emu_mbar_find(mc, w->wait_mbar);
                n += (size_t)snprintf(msg + n, sizeof msg - n,
                                      " CTA (%u,%u,%u) warp %d waits on mbarrier 0x%x for parity %d (line %d): "
                                      "phase %u, %d arrivals and %lld tx bytes pending;",
                                      c->ctaid[0], c->ctaid[1], c->ctaid[2], w->id, w->wait_mbar, w->wait_parity, line,
                                      mb ? mb->phase : 0, mb ? mb->pending : -1, mb ? (long long)mb->tx : -1);
            } else if (w->state == W_CLUSTER_BAR) {
                n += (size_t)snprintf(msg + n, sizeof msg - n, " CTA (%u,%u,%u) warp %d waits at barrier.cluster (line %d);",
                                      c->ctaid[0], c->ctaid[1], c->ctaid[2], w->id, line);
            }
        }
    }
    if (shown > 8) snprintf(msg + n, sizeof msg - n, " ... and %d more warps", shown - 8);
    dsk_fail(DSK_ERR_EMU, "%s", msg);
    L->status = DSK_ERR_EMU;
}

static int run_cluster(emu_launch *L)
{
    int total = 0;
    for (int i = 0; i < L->nctas; i++) total += L->ctas[i].nwarps;
    emu_warp **order = malloc(sizeof(emu_warp *) * (size_t)total);
    if (!order) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory");
    int n = 0;
    for (int i = 0; i < L->nctas; i++)
        for (int j = 0; j < L->ctas[i].nwarps; j++) order[n++] = &L->ctas[i].warps[j];
    int random = L->opt.schedule_seed != 0;
    for (;;) {
        int alive = 0;
        long progress = 0;
        if (random)
            for (int i = n - 1; i > 0; i--) {
                int j = (int)(emu_rand(L) % (uint64_t)(i + 1));
                emu_warp *t = order[i]; order[i] = order[j]; order[j] = t;
            }
        for (int i = 0; i < n; i++) {
            emu_warp *w = order[i];
            if (w->state == W_EXITED) continue;
            alive = 1;
            int r = warp_ready(L, w);
            if (r < 0) { free(order); return L->status; }
            if (!r) continue;
            long q = random ? 1 + (long)(emu_rand(L) % 64) : 1L << 20;
            long d = run_warp(w, q);
            if (d < 0) { free(order); return L->status; }
            progress += d;
        }
        if (!alive) break;
        if (!progress) {
            /* a warp may become ready through completions the wait checks trigger */
            int any = 0;
            for (int i = 0; i < n && !any; i++) {
                int r = order[i]->state == W_EXITED ? 0 : warp_ready(L, order[i]);
                if (r < 0) { free(order); return L->status; }
                any = r;
            }
            if (!any) {
                deadlock_report(L);
                free(order);
                return L->status;
            }
        }
    }
    free(order);
    /* copies still in flight at exit complete now (stores must land) */
    for (int i = 0; i < L->nctas; i++)
        if (emu_bulk_finish_cta(L, i)) return L->status;
    return DSK_OK;
}

/* ---- launch --------------------------------------------------------------------------- */

static const dsk_emu_target default_target = {90, 1, 132, 232448, 233472, 1024};

static dsk_status launch_checks(const dsk_emu_module *m, const emu_kernel *k, const dsk_emu_launch_cfg *cfg,
                                const dsk_emu_target *t, unsigned cluster[3])
{
    for (int i = 0; i < 3; i++) {
        if (cfg->grid[i] == 0 || cfg->block[i] == 0)
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: grid and block dimensions must be >= 1, given grid (%u,%u,%u) block (%u,%u,%u)",
                            cfg->grid[0], cfg->grid[1], cfg->grid[2], cfg->block[0], cfg->block[1], cfg->block[2]);
        cluster[i] = cfg->cluster[i] ? cfg->cluster[i] : 1;
        if (k->reqnctapercluster[i]) {
            if (cfg->cluster[i] && cfg->cluster[i] != (unsigned)k->reqnctapercluster[i])
                return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: kernel %s requires cluster dimension %d = %d, given %u",
                                k->name, i, k->reqnctapercluster[i], cfg->cluster[i]);
            cluster[i] = (unsigned)k->reqnctapercluster[i];
        }
        if (cfg->grid[i] % cluster[i])
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: grid dimension %d (%u) is not a multiple of the cluster dimension (%u)",
                            i, cfg->grid[i], cluster[i]);
    }
    unsigned cs = cluster[0] * cluster[1] * cluster[2];
    if (cs > 16) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: cluster of %u CTAs (at most 16)", cs);
    if (cs > 1 && t->sm_version < 90)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: clusters need sm_90, the target is sm_%d", t->sm_version);
    unsigned long threads = (unsigned long)cfg->block[0] * cfg->block[1] * cfg->block[2];
    if (threads > (unsigned long)t->max_threads_per_block)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: block of %lu threads exceeds the target's %d",
                        threads, t->max_threads_per_block);
    if (k->reqntid[0] && (cfg->block[0] != (unsigned)k->reqntid[0] ||
                          cfg->block[1] != (unsigned)(k->reqntid[1] ? k->reqntid[1] : 1) ||
                          cfg->block[2] != (unsigned)(k->reqntid[2] ? k->reqntid[2] : 1)))
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: kernel %s requires block (%d,%d,%d) (.reqntid)",
                        k->name, k->reqntid[0], k->reqntid[1] ? k->reqntid[1] : 1, k->reqntid[2] ? k->reqntid[2] : 1);
    if (k->maxntid[0]) {
        unsigned long mx = (unsigned long)k->maxntid[0] * (k->maxntid[1] ? k->maxntid[1] : 1) * (k->maxntid[2] ? k->maxntid[2] : 1);
        if (threads > mx)
            return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: block of %lu threads exceeds kernel %s's .maxntid (%lu)",
                            threads, k->name, mx);
    }
    if (m->sm_version > t->sm_version || (m->has_sm90a && !t->has_sm90a))
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: module targets sm_%d%s, the emulated GPU is sm_%d%s",
                        m->sm_version, m->has_sm90a ? "a" : "", t->sm_version, t->has_sm90a ? "a" : "");
    return DSK_OK;
}

static void cta_free(emu_cta *c)
{
    for (int i = 0; i < c->nwarps; i++) warp_free(&c->warps[i]);
    free(c->warps);
    free(c->smem);
    free(c->shadow);
    free(c->mbars);
    free(c->local);
}

static dsk_status cta_init(emu_launch *L, emu_cta *c, const unsigned ctaid[3], const unsigned cid[3], int rank)
{
    memset(c, 0, sizeof *c);
    c->L = L;
    for (int i = 0; i < 3; i++) {
        c->ctaid[i] = ctaid[i];
        c->cluster_ctaid[i] = cid[i];
    }
    c->rank = rank;
    c->smem_size = L->dyn_base + L->dyn_smem;
    c->smem = malloc(c->smem_size + 1);
    c->shadow = calloc(c->smem_size + 1, 1);
    c->nthreads = (int)(L->cfg.block[0] * L->cfg.block[1] * L->cfg.block[2]);
    c->nlive = c->nthreads;
    c->nwarps = (c->nthreads + 31) / 32;
    c->warps = calloc((size_t)c->nwarps, sizeof(emu_warp));
    c->local = calloc((size_t)c->nthreads * L->k->local_size + 1, 1);
    if (!c->smem || !c->shadow || !c->warps || !c->local)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory for a CTA");
    /* uninitialised shared memory reads as NaN (0xFF bytes), as garbage would on hardware */
    memset(c->smem, 0xFF, c->smem_size);
    for (int i = 0; i < 16; i++) c->bars[i].red_and = 1;
    for (int i = 0; i < c->nwarps; i++)
        if (warp_init(L, c, &c->warps[i], i))
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory for registers");
    return DSK_OK;
}

dsk_status dsk_emu_launch(dsk_emu_module *m, const char *kernel, const dsk_emu_launch_cfg *cfg, void **params,
                          const dsk_emu_target *target, const dsk_emu_options *opts, dsk_emu_stats *stats)
{
    if (!m || !kernel || !cfg)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: module, kernel and cfg must be non-NULL");
    const emu_kernel *k = emu_find_kernel(m, kernel);
    if (!k) return dsk_fail(DSK_ERR_NOT_FOUND, "dsk_emu_launch: no .entry named '%s' in %s", kernel, m->source_name);
    if (k->nparams && !params)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: kernel %s has %d parameters, params is NULL", kernel, k->nparams);
    emu_launch *L = calloc(1, sizeof *L);
    if (!L) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory");
    L->mod = m;
    L->k = k;
    L->cfg = *cfg;
    L->tgt = target ? *target : default_target;
    if (opts) {
        L->opt = *opts;
    } else {
        /* no options given: the DSK_EMU_* environment knobs (documented in docs/EMULATOR.md) */
        const char *e;
        L->opt.trace_thread = -1;
        if ((e = getenv("DSK_EMU_SCHEDULE_SEED")) && *e) L->opt.schedule_seed = strtoull(e, NULL, 0);
        if ((e = getenv("DSK_EMU_FP8_ACC")) && !strcmp(e, "hopper")) L->opt.fp8_acc = DSK_EMU_FP8_ACC_HOPPER;
        if ((e = getenv("DSK_EMU_TRACE")) && *e) L->opt.trace_thread = atoi(e);
    }
    L->rng = L->opt.schedule_seed;
    if (L->opt.trace_thread >= 0) L->trace = L->opt.trace_out ? (FILE *)L->opt.trace_out : stderr;
    dsk_status s = launch_checks(m, k, cfg, &L->tgt, L->cluster);
    L->cluster_size = (int)(L->cluster[0] * L->cluster[1] * L->cluster[2]);
    L->dyn_smem = cfg->dynamic_smem;
    L->dyn_base = (k->static_smem + k->dyn_smem_align - 1) / k->dyn_smem_align * k->dyn_smem_align;
    if (s == DSK_OK && L->dyn_base + L->dyn_smem > L->tgt.smem_per_block)
        s = dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: kernel %s needs %zu bytes of shared memory (%zu static + %zu dynamic), "
                     "the target allows %zu per block", kernel, L->dyn_base + L->dyn_smem, k->static_smem,
                     L->dyn_smem, L->tgt.smem_per_block);
    if (s == DSK_OK) {
        L->params = calloc(k->params_size + 1, 1);
        if (!L->params) s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory");
        for (int i = 0; s == DSK_OK && i < k->nparams; i++) {
            if (!params[i]) s = dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_launch: params[%d] (%s) is NULL", i, k->params[i].name);
            else memcpy(L->params + k->params[i].offset, params[i], k->params[i].size);
        }
    }
    L->last_range = -1;
    if (s == DSK_OK) s = emu_ranges_snapshot(&L->ranges, &L->nranges);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s == DSK_OK) {
        L->nctas = L->cluster_size;
        L->ctas = calloc((size_t)L->nctas, sizeof(emu_cta));
        if (!L->ctas) s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory");
    }
    unsigned ncl[3] = {1, 1, 1};
    unsigned long nclusters = 0;
    if (s == DSK_OK) {
        for (int i = 0; i < 3; i++) ncl[i] = cfg->grid[i] / L->cluster[i];
        nclusters = (unsigned long)ncl[0] * ncl[1] * ncl[2];
    }
    for (unsigned long ci = 0; s == DSK_OK && ci < nclusters; ci++) {
        unsigned cl[3] = {(unsigned)(ci % ncl[0]), (unsigned)((ci / ncl[0]) % ncl[1]), (unsigned)(ci / ((unsigned long)ncl[0] * ncl[1]))};
        int built = 0;
        for (int r = 0; s == DSK_OK && r < L->nctas; r++) {
            unsigned cid[3] = {(unsigned)r % L->cluster[0], ((unsigned)r / L->cluster[0]) % L->cluster[1],
                               (unsigned)r / (L->cluster[0] * L->cluster[1])};
            unsigned id[3] = {cl[0] * L->cluster[0] + cid[0], cl[1] * L->cluster[1] + cid[1], cl[2] * L->cluster[2] + cid[2]};
            s = cta_init(L, &L->ctas[r], id, cid, r);
            built = r + 1;
        }
        L->cluster_bar_arrived = 0;
        L->cluster_bar_phase = 0;
        if (s == DSK_OK) s = run_cluster(L);
        for (int r = 0; r < built; r++) cta_free(&L->ctas[r]);
        for (int i = 0; i < L->nbulk; i++) free(L->bulk[i].data);
        L->nbulk = 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (stats) {
        stats->thread_instructions = L->thread_insns;
        stats->warp_instructions = L->warp_insns;
        stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    free(L->ctas);
    free(L->bulk);
    free(L->ranges);
    free(L->params);
    free(L);
    return s;
}
