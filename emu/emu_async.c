/* emu/emu_async.c: asynchronous copies and mbarriers.
 *
 * - cp.async (Ampere-style, per thread): recorded at issue, performed at the
 *   cp.async.wait_group that retires its group; until then its destination bytes are
 *   marked in the CTA's shadow, and any other access to them is an error.
 * - mbarrier: state kept beside shared memory, keyed by offset: expected count, pending
 *   arrivals, transaction count (may go negative when bytes land before expect_tx) and
 *   phase. A phase completes when pending arrivals and transactions are both zero; a wait
 *   on parity P succeeds once the current phase's parity differs from P (PTX ISA 9.7.13.15
 *   "mbarrier").
 * - cp.async.bulk(.tensor) loads gather the box at issue (zero fill out of bounds, PTX ISA
 *   5.5 "Tensors" and the CUDA driver's cuTensorMapEncodeTiled) but land in shared memory
 *   only when a thread waits on their mbarrier, as late as the rules allow; the whole
 *   box's bytes count as transactions. Stores run at cp.async.bulk.wait_group or at exit.
 * - Swizzle of bulk tensor copies: the 16-byte chunk index within each 128-byte line is
 *   XORed with address bits 7.. (Swizzle<3,4,3> for 128B, <2,4,3> for 64B, <1,4,3> for
 *   32B on the shared-memory byte address), the same pattern wgmma descriptors use. */
#include <stdlib.h>
#include <string.h>
#include "emu_internal.h"

/* ---- tensor maps ---------------------------------------------------------------------- */

#define EMU_TMAP_MAGIC 0x544B5344u  /* "DSKT" */

typedef struct emu_tmap {
    uint32_t magic;
    uint8_t dtype, rank, swizzle, esize;
    uint64_t addr;
    uint64_t dim[5];
    uint64_t stride[4];   /* bytes, dims 1..rank-1 */
    uint32_t box[5];
    uint32_t estride[5];
} emu_tmap;

_Static_assert(sizeof(emu_tmap) == 128, "tensor map must be 128 bytes");

static int dtype_size(int dt)
{
    switch (dt) {
    case DSK_TMA_UINT8: return 1;
    case DSK_TMA_UINT16: case DSK_TMA_FLOAT16: case DSK_TMA_BFLOAT16: return 2;
    case DSK_TMA_UINT32: case DSK_TMA_INT32: case DSK_TMA_FLOAT32: return 4;
    case DSK_TMA_UINT64: case DSK_TMA_INT64: case DSK_TMA_FLOAT64: return 8;
    }
    return 0;
}

dsk_status dsk_emu_tensor_map_encode_tiled(dsk_tensor_map *map, dsk_tma_dtype dtype, int rank, void *global_address,
                                           const uint64_t *global_dim, const uint64_t *global_strides,
                                           const uint32_t *box_dim, const uint32_t *element_strides,
                                           dsk_tma_swizzle swizzle)
{
    const char *fn = "dsk_emu_tensor_map_encode_tiled";
    if (!map || !global_dim || !box_dim || (rank > 1 && !global_strides))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: map, global_dim, box_dim (and global_strides for rank > 1) must be non-NULL", fn);
    int es = dtype_size(dtype);
    if (!es) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: dtype %d is not a CUtensorMapDataType value 0..9", fn, (int)dtype);
    if (rank < 1 || rank > 5) return dsk_fail(DSK_ERR_INVALID_ARG, "%s: rank must be 1..5, given %d", fn, rank);
    if (!global_address || ((uintptr_t)global_address & 15))
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: global_address must be non-NULL and 16-byte aligned, given %p", fn, global_address);
    if ((int)swizzle < 0 || (int)swizzle > 3)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: swizzle must be 0..3 (none, 32B, 64B, 128B), given %d", fn, (int)swizzle);
    emu_tmap t;
    memset(&t, 0, sizeof t);
    t.magic = EMU_TMAP_MAGIC;
    t.dtype = (uint8_t)dtype;
    t.rank = (uint8_t)rank;
    t.swizzle = (uint8_t)swizzle;
    t.esize = (uint8_t)es;
    t.addr = (uint64_t)(uintptr_t)global_address;
    for (int i = 0; i < rank; i++) {
        if (global_dim[i] == 0 || global_dim[i] > (1ull << 32))
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: global_dim[%d] must be 1..2^32, given %llu", fn, i, (unsigned long long)global_dim[i]);
        if (box_dim[i] == 0 || box_dim[i] > 256)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: box_dim[%d] must be 1..256, given %u", fn, i, box_dim[i]);
        uint32_t e = element_strides ? element_strides[i] : 1;
        if (e == 0 || e > 8)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: element_strides[%d] must be 1..8, given %u", fn, i, e);
        t.dim[i] = global_dim[i];
        t.box[i] = box_dim[i];
        t.estride[i] = e;
        if (i > 0) {
            uint64_t s = global_strides[i - 1];
            if (s % 16 || s >= (1ull << 40))
                return dsk_fail(DSK_ERR_INVALID_ARG, "%s: global_strides[%d] must be a multiple of 16 below 2^40, given %llu",
                                fn, i - 1, (unsigned long long)s);
            t.stride[i - 1] = s;
        }
    }
    if (((uint64_t)box_dim[0] * (uint64_t)es) % 16)
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: box_dim[0] * element size (%u * %d bytes) must be a multiple of 16", fn,
                        box_dim[0], es);
    if (swizzle != DSK_TMA_SWIZZLE_NONE) {
        uint32_t span = swizzle == DSK_TMA_SWIZZLE_32B ? 32 : swizzle == DSK_TMA_SWIZZLE_64B ? 64 : 128;
        if (box_dim[0] * (uint32_t)es > span)
            return dsk_fail(DSK_ERR_INVALID_ARG, "%s: box_dim[0] * element size (%u bytes) exceeds the %u-byte swizzle span",
                            fn, box_dim[0] * (uint32_t)es, span);
    }
    memcpy(map->opaque, &t, sizeof t);
    return DSK_OK;
}

static uint32_t swizzle_addr(uint32_t a, int sw)
{
    static const uint32_t mask[4] = {0, 1, 3, 7};  /* CU_TENSOR_MAP_SWIZZLE_{NONE,32B,64B,128B} */
    return a ^ (((a >> 7) & mask[sw]) << 4);
}

static int read_tmap(emu_warp *w, const emu_insn *in, int lane, uint64_t addr, emu_tmap *t)
{
    if (addr & 63) return emu_error(w, in, lane, "tensor map address 0x%llx is not 64-byte aligned", (unsigned long long)addr);
    uint8_t *p = emu_addr(w, in, lane, SP_GENERIC, addr, 16, 0);
    if (!p) return -1;
    if ((addr & EMU_WIN_MASK) == 0 && !emu_global_ok(w->cta->L, (uintptr_t)addr, 128))
        return emu_error(w, in, lane, "tensor map at 0x%llx is outside known memory", (unsigned long long)addr);
    memcpy(t, p, sizeof *t);
    if (t->magic != EMU_TMAP_MAGIC)
        return emu_error(w, in, lane, "the tensor map at 0x%llx was not written by dsk_emu_tensor_map_encode_tiled",
                         (unsigned long long)addr);
    return 0;
}

/* ---- bulk copy records ---------------------------------------------------------------- */

static emu_bulk *bulk_new(emu_launch *L)
{
    if (L->nbulk == L->capbulk) {
        int c = L->capbulk ? L->capbulk * 2 : 32;
        emu_bulk *b = realloc(L->bulk, sizeof *b * (size_t)c);
        if (!b) return NULL;
        L->bulk = b;
        L->capbulk = c;
    }
    emu_bulk *b = &L->bulk[L->nbulk++];
    memset(b, 0, sizeof *b);
    return b;
}

static void bulk_remove(emu_launch *L, int i)
{
    free(L->bulk[i].data);
    memmove(&L->bulk[i], &L->bulk[i + 1], sizeof(emu_bulk) * (size_t)(L->nbulk - i - 1));
    L->nbulk--;
}

/* Box coordinates iteration: counts per dim and the smem offset of each inner row. */
typedef struct box_iter { int rank; uint32_t n[5]; uint64_t rows; } box_iter;

static void box_init(box_iter *b, const emu_tmap *t)
{
    b->rank = t->rank;
    b->rows = 1;
    for (int i = 0; i < 5; i++) {
        b->n[i] = i < t->rank ? (t->box[i] + t->estride[i] - 1) / t->estride[i] : 1;
        if (i > 0) b->rows *= b->n[i];
    }
}

/* global element address of box element (j0, row index r) or NULL if out of bounds */
static const uint8_t *box_elem(const emu_tmap *t, const box_iter *b, const int32_t *coord, uint64_t r, uint32_t j0)
{
    uint64_t off = 0;
    for (int i = 0; i < t->rank; i++) {
        int64_t j;
        if (i == 0) j = j0;
        else { j = (int64_t)(r % b->n[i]); r /= b->n[i]; }
        int64_t x = (int64_t)coord[i] + j * (int64_t)t->estride[i];
        if (x < 0 || (uint64_t)x >= t->dim[i]) return NULL;
        off += (uint64_t)x * (i == 0 ? t->esize : t->stride[i - 1]);
    }
    return (const uint8_t *)(uintptr_t)(t->addr + off);
}

static int load_box(emu_warp *w, const emu_insn *in, int lane, const emu_tmap *t, const int32_t *coord,
                    uint32_t dst, uint8_t *img, size_t ext)
{
    emu_launch *L = w->cta->L;
    box_iter b;
    box_init(&b, t);
    uint32_t rowbytes = b.n[0] * t->esize;
    memset(img, 0, ext);
    for (uint64_t r = 0; r < b.rows; r++) {
        /* the row's outer coordinates; out of bounds: the whole row stays zero */
        uint64_t rr = r, off = 0;
        int oob = 0;
        for (int i = 1; i < t->rank; i++) {
            int64_t x = (int64_t)coord[i] + (int64_t)(rr % b.n[i]) * (int64_t)t->estride[i];
            rr /= b.n[i];
            if (x < 0 || (uint64_t)x >= t->dim[i]) { oob = 1; break; }
            off += (uint64_t)x * t->stride[i - 1];
        }
        if (oob) continue;
        /* inner dimension: elements j with 0 <= coord[0] + j*estride[0] < dim[0] */
        for (uint32_t j = 0; j < b.n[0];) {
            int64_t x = (int64_t)coord[0] + (int64_t)j * (int64_t)t->estride[0];
            if (x < 0 || (uint64_t)x >= t->dim[0]) { j++; continue; }
            uint32_t o = (uint32_t)(r * rowbytes + j * t->esize);
            /* run of elements to the end of this 16-byte chunk (contiguous when estride is 1) */
            uint32_t n = 1;
            if (t->estride[0] == 1) {
                uint32_t chunk_left = (16 - (o & 15)) / t->esize;
                uint64_t dim_left = t->dim[0] - (uint64_t)x;
                n = b.n[0] - j;
                if (n > chunk_left) n = chunk_left;
                if ((uint64_t)n > dim_left) n = (uint32_t)dim_left;
            }
            const uint8_t *g = (const uint8_t *)(uintptr_t)(t->addr + off + (uint64_t)x * t->esize);
            if (!emu_global_ok(L, (uintptr_t)g, (size_t)n * t->esize))
                return emu_error(w, in, lane, "tensor copy reads global address %p outside every allocation "
                                 "(tensor map global address 0x%llx)", (const void *)g, (unsigned long long)t->addr);
            uint32_t phys = swizzle_addr(dst + o, t->swizzle) - dst;
            if (phys + n * t->esize > ext) return emu_error(w, in, lane, "internal: swizzled offset outside the box image");
            memcpy(img + phys, g, (size_t)n * t->esize);
            j += n;
        }
    }
    return 0;
}

static void mark_shadow(emu_cta *c, uint32_t off, size_t n, uint8_t v)
{
    memset(c->shadow + off, v, n);
}

/* Completes bulk load record i: lands the bytes, clears the shadow, counts the bytes. */
static void bulk_land(emu_launch *L, int i)
{
    emu_bulk *b = &L->bulk[i];
    emu_cta *c = &L->ctas[b->cta];
    memcpy(c->smem + b->smem, b->data, b->bytes);
    mark_shadow(c, b->smem, b->bytes, 0);
    c->npending--;
    emu_mbar *mb = emu_mbar_find(c, b->mbar);
    int64_t tx = (int64_t)b->gdst;  /* transaction bytes of this record */
    if (mb) emu_mbar_complete_tx(L, c, mb, tx);
    bulk_remove(L, i);
}

static int store_box(emu_launch *L, emu_bulk *b)
{
    emu_cta *c = &L->ctas[b->src_cta];
    emu_tmap t;
    memcpy(&t, b->map, sizeof t);
    box_iter bi;
    box_init(&bi, &t);
    uint32_t rowbytes = bi.n[0] * t.esize;
    for (uint64_t r = 0; r < bi.rows; r++)
        for (uint32_t j = 0; j < bi.n[0]; j++) {
            uint32_t a = swizzle_addr(b->smem + (uint32_t)(r * rowbytes + j * t.esize), t.swizzle);
            const uint8_t *g = box_elem(&t, &bi, b->coord, r, j);
            if (!g) continue;
            if (!emu_global_ok(L, (uintptr_t)g, t.esize)) {
                dsk_fail(DSK_ERR_EMU, "dsk_emu_launch: kernel %s: tensor store writes global address %p outside every allocation",
                         L->k->name, (const void *)g);
                L->status = DSK_ERR_EMU;
                return -1;
            }
            memcpy((uint8_t *)(uintptr_t)g, c->smem + a, t.esize);
        }
    return 0;
}

/* Marks (v = 3) or unmarks (v = 0) the shared source of a bulk store in flight: readable,
 * not writable until the store's wait_group. */
static void store_mark(emu_cta *c, uint32_t off, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (c->shadow[off + i] == 0 || c->shadow[off + i] == 3) c->shadow[off + i] = v;
    c->npending += v ? 1 : -1;
}

static int bulk_store_run(emu_launch *L, int i)
{
    emu_bulk *b = &L->bulk[i];
    emu_cta *c = &L->ctas[b->src_cta];
    int rc = 0;
    if (b->kind == 1) rc = store_box(L, b);
    else memcpy(b->gdst, c->smem + b->smem, b->bytes);
    store_mark(c, b->smem, b->bytes, 0);
    bulk_remove(L, i);
    return rc;
}

int emu_bulk_finish_cta(emu_launch *L, int cta)
{
    for (int i = 0; i < L->nbulk;) {
        emu_bulk *b = &L->bulk[i];
        if ((b->kind == 1 || b->kind == 3) && b->src_cta == cta) {
            if (bulk_store_run(L, i)) return -1;
        } else {
            i++;
        }
    }
    return 0;
}

/* ---- mbarrier ------------------------------------------------------------------------- */

emu_mbar *emu_mbar_find(emu_cta *c, uint32_t off)
{
    for (int i = 0; i < c->nmbars; i++)
        if (c->mbars[i].off == off) return &c->mbars[i];
    return NULL;
}

void emu_mbar_complete_tx(emu_launch *L, emu_cta *c, emu_mbar *b, int64_t bytes)
{
    (void)L;
    (void)c;
    b->tx -= bytes;
    if (b->pending == 0 && b->tx == 0) {
        b->phase++;
        b->pending = b->expected;
    }
}

int emu_mbar_ready(emu_launch *L, int cta, uint32_t off, int parity)
{
    emu_cta *c = &L->ctas[cta];
    emu_mbar *b = emu_mbar_find(c, off);
    if (!b) return 0;
    if ((int)(b->phase & 1) != parity) return 1;
    /* bulk copies signalling this barrier land now: a waiter is the first to observe them */
    int landed = 0;
    for (int i = 0; i < L->nbulk;) {
        emu_bulk *k = &L->bulk[i];
        if ((k->kind == 0 || k->kind == 2) && k->cta == cta && k->mbar == off) {
            bulk_land(L, i);
            landed = 1;
        } else {
            i++;
        }
    }
    if (landed) b = emu_mbar_find(c, off);
    return b && (int)(b->phase & 1) != parity;
}

/* the CTA and offset of an mbarrier operand */
static int mbar_locate(emu_warp *w, const emu_insn *in, int lane, int sp, uint64_t addr, int *cta, uint32_t *off)
{
    if ((addr & EMU_WIN_MASK) == EMU_WIN_SHARED || sp == SP_GENERIC) {
        if ((addr & EMU_WIN_MASK) != EMU_WIN_SHARED)
            return emu_error(w, in, lane, "mbarrier address 0x%llx is not a shared-memory address", (unsigned long long)addr);
        addr &= ~EMU_WIN_MASK;
        sp = SP_SHARED_CLUSTER;
    }
    emu_cta *c = w->cta;
    uint32_t o = (uint32_t)addr;
    if (sp == SP_SHARED_CLUSTER) {
        c = emu_cluster_cta(w, in, lane, addr, &o);
        if (!c) return -1;
    }
    if (o & 7) return emu_error(w, in, lane, "mbarrier at shared offset 0x%x is not 8-byte aligned", o);
    if ((size_t)o + 8 > c->smem_size)
        return emu_error(w, in, lane, "mbarrier at shared offset 0x%x is beyond the CTA's %zu bytes", o, c->smem_size);
    *cta = (int)(c - w->cta->L->ctas);
    *off = o;
    return 0;
}

static emu_mbar *mbar_get(emu_warp *w, const emu_insn *in, int lane, int cta, uint32_t off)
{
    emu_mbar *b = emu_mbar_find(&w->cta->L->ctas[cta], off);
    if (!b) emu_error(w, in, lane, "mbarrier at shared offset 0x%x is used before mbarrier.init", off);
    return b;
}

static int mbar_arrive(emu_warp *w, const emu_insn *in, int lane, emu_mbar *b, int count)
{
    emu_launch *L = w->cta->L;
    if (count <= 0) return emu_error(w, in, lane, "mbarrier arrive count %d must be positive", count);
    if (b->pending < count)
        return emu_error(w, in, lane, "mbarrier at 0x%x: %d arrivals exceed the %d pending in this phase", b->off, count, b->pending);
    b->pending -= count;
    if (b->pending == 0 && b->tx == 0) {
        b->phase++;
        b->pending = b->expected;
    }
    (void)L;
    return 0;
}

int emu_exec_mbar(emu_warp *w, const emu_insn *in, uint32_t m, int *block)
{
    emu_cta *c = w->cta;
    emu_launch *L = c->L;
    if (in->sub == 10) return emu_error(w, in, __builtin_ctz(m), "mbarrier.pending_count is not supported");
    const uint64_t *base = EMU_R(w, in->s[0]);
    const uint64_t *arg = in->ns > 1 && in->s[1] >= 0 ? EMU_R(w, in->s[1]) : NULL;
    uint64_t *d = in->nd && in->d[0] >= 0 ? EMU_R(w, in->d[0]) : NULL;
    int all_ready = 1, first_wait = -1, wcta = 0, wpar = 0;
    uint32_t woff = 0;
    FOR_LANES(l, m) {
        int cta = 0;
        uint32_t off = 0;
        if (mbar_locate(w, in, l, in->space, base[l] + (uint64_t)in->imm, &cta, &off)) return -1;
        emu_cta *tc = &L->ctas[cta];
        if (in->sub == 1) {  /* init */
            uint64_t cnt = arg[l] & 0xFFFFFFFFu;
            if (cnt < 1 || cnt > (1u << 20) - 1)
                return emu_error(w, in, l, "mbarrier.init count %llu must be 1..2^20-1", (unsigned long long)cnt);
            emu_mbar *b = emu_mbar_find(tc, off);
            if (!b) {
                if (tc->nmbars == tc->capmbars) {
                    int cap = tc->capmbars ? tc->capmbars * 2 : 16;
                    emu_mbar *nb = realloc(tc->mbars, sizeof *nb * (size_t)cap);
                    if (!nb) return emu_error(w, in, l, "out of memory");
                    tc->mbars = nb;
                    tc->capmbars = cap;
                }
                b = &tc->mbars[tc->nmbars++];
            }
            b->off = off;
            b->expected = b->pending = (int)cnt;
            b->tx = 0;
            b->phase = 0;
            continue;
        }
        if (in->sub == 8) {  /* inval */
            emu_mbar *b = emu_mbar_find(tc, off);
            if (b) *b = tc->mbars[--tc->nmbars];
            continue;
        }
        emu_mbar *b = mbar_get(w, in, l, cta, off);
        if (!b) return -1;
        switch (in->sub) {
        case 2: case 3: case 9: case 11: {  /* arrive, arrive.expect_tx, arrive_drop */
            int count = 1;
            if (in->sub == 3 || in->sub == 11) b->tx += (int64_t)(arg[l] & 0xFFFFFFFFu);
            else if (arg) count = (int)(arg[l] & 0xFFFFFFFFu);
            if (d) d[l] = (uint64_t)b->phase;  /* the state token: the phase arrived on */
            if (in->sub == 9 || in->sub == 11) {
                if (b->expected < count) return emu_error(w, in, l, "mbarrier.arrive_drop below zero expected arrivals");
                b->expected -= count;
            }
            if (mbar_arrive(w, in, l, b, count)) return -1;
            break;
        }
        case 4: b->tx += (int64_t)(arg[l] & 0xFFFFFFFFu); break;
        case 5: emu_mbar_complete_tx(L, tc, b, (int64_t)(arg[l] & 0xFFFFFFFFu)); break;
        case 6: case 7: {  /* test_wait / try_wait */
            /* .parity: the operand is the phase parity; otherwise a state token from arrive,
             * which holds the phase number arrived on: either way the wait is for the phase
             * whose parity is the low bit */
            int parity = (int)(arg[l] & 1);
            int r = emu_mbar_ready(L, cta, off, parity);
            if (r < 0) return -1;
            if (d) d[l] = (uint64_t)r;
            if (!r && first_wait < 0) {
                first_wait = l;
                wcta = cta;
                woff = off;
                wpar = parity;
            }
            all_ready &= r;
            break;
        }
        }
    }
    if ((in->sub == 6 || in->sub == 7) && !all_ready) {
        /* a failed wait parks the warp until the barrier's phase moves: try_wait is
         * re-executed then (and succeeds); test_wait has returned false */
        w->state = W_MBAR;
        w->wait_mbar_cta = wcta;
        w->wait_mbar = woff;
        w->wait_parity = wpar;
        if (in->sub == 7) *block = 1;
    }
    return 0;
}

/* ---- cp.async ------------------------------------------------------------------------- */

static void cpa_complete(emu_warp *w, int i)
{
    emu_cpasync *op = &w->cpa[i];
    emu_cta *c = w->cta;
    if (op->src_size > 0) memcpy(c->smem + op->smem, op->src, (size_t)op->src_size);
    if (op->size > op->src_size) memset(c->smem + op->smem + op->src_size, 0, (size_t)(op->size - op->src_size));
    mark_shadow(c, op->smem, (size_t)op->size, 0);
    c->npending--;
}

/* Completes the cp.async of the lanes in m whose group is retired: all of them (all), or
 * those committed in groups older than the newest `keep` of their lane. One pass. */
static void cpa_retire(emu_warp *w, uint32_t m, int keep, int all)
{
    int j = 0;
    for (int i = 0; i < w->ncpa; i++) {
        emu_cpasync *op = &w->cpa[i];
        int l = op->lane;
        int done = ((m >> l) & 1) && (all || (op->group >= 0 && op->group <= w->cpa_committed[l] - keep));
        if (done) cpa_complete(w, i);
        else w->cpa[j++] = *op;
    }
    w->ncpa = j;
}

int emu_exec_cpasync(emu_warp *w, const emu_insn *in, uint32_t m)
{
    emu_cta *c = w->cta;
    switch (in->op) {
    case OP_CPASYNC_COMMIT:
        FOR_LANES(l, m) {
            int g = ++w->cpa_committed[l];
            for (int i = 0; i < w->ncpa; i++)
                if (w->cpa[i].lane == l && w->cpa[i].group < 0) w->cpa[i].group = g;
        }
        return 0;
    case OP_CPASYNC_WAIT:
        cpa_retire(w, m, (int)in->imm, in->target == 1);
        return 0;
    case OP_CPASYNC_MBAR: {
        /* the barrier tracks this thread's prior cp.async: they complete now, then arrive */
        const uint64_t *base = EMU_R(w, in->s[0]);
        FOR_LANES(l, m) {
            cpa_retire(w, 1u << l, 0, 1);
            int cta;
            uint32_t off;
            if (mbar_locate(w, in, l, in->space, base[l] + (uint64_t)in->imm, &cta, &off)) return -1;
            emu_mbar *b = mbar_get(w, in, l, cta, off);
            if (!b) return -1;
            if ((in->mod & M_NOINC) && mbar_arrive(w, in, l, b, 1)) return -1;
        }
        return 0;
    }
    default: break;
    }
    const uint64_t *dst = EMU_R(w, in->s[0]), *src = EMU_R(w, in->s[1]);
    const uint64_t *ssz = in->s[2] >= 0 ? EMU_R(w, in->s[2]) : NULL;
    int size = in->vec;
    FOR_LANES(l, m) {
        uint64_t da = dst[l] + (uint64_t)in->imm, sa = src[l] + (uint64_t)in->imm2;
        int src_size = ssz ? (int)(uint32_t)ssz[l] : size;
        if (src_size > size) return emu_error(w, in, l, "cp.async src-size %d exceeds cp-size %d", src_size, size);
        if ((da | sa) & (uint64_t)(size - 1))
            return emu_error(w, in, l, "cp.async addresses must be %d-byte aligned (dst 0x%llx, src 0x%llx)", size,
                             (unsigned long long)da, (unsigned long long)sa);
        if ((da & EMU_WIN_MASK) == EMU_WIN_SHARED) da &= ~EMU_WIN_MASK;
        uint8_t *d = emu_addr(w, in, l, SP_SHARED, da, (size_t)size, 1);
        if (!d) return -1;
        if (src_size > 0 && !emu_global_ok(c->L, (uintptr_t)sa, (size_t)src_size))
            return emu_error(w, in, l, "cp.async source 0x%llx (+%d) is outside every allocation", (unsigned long long)sa, src_size);
        if (w->ncpa == w->capcpa) {
            int cap = w->capcpa ? w->capcpa * 2 : 64;
            emu_cpasync *p = realloc(w->cpa, sizeof *p * (size_t)cap);
            if (!p) return emu_error(w, in, l, "out of memory");
            w->cpa = p;
            w->capcpa = cap;
        }
        emu_cpasync *op = &w->cpa[w->ncpa++];
        op->lane = l;
        op->group = -1;
        op->smem = (uint32_t)da;
        op->src = (const uint8_t *)(uintptr_t)sa;
        op->size = size;
        op->src_size = src_size;
        mark_shadow(c, (uint32_t)da, (size_t)size, 1);
        c->npending++;
    }
    return 0;
}

/* ---- bulk copies ---------------------------------------------------------------------- */

int emu_exec_bulk(emu_warp *w, const emu_insn *in, uint32_t m)
{
    emu_cta *c = w->cta;
    emu_launch *L = c->L;
    if (in->op == OP_BULK_COMMIT) {
        int g = ++w->bulk_committed;
        for (int i = 0; i < L->nbulk; i++)
            if ((L->bulk[i].kind == 1 || L->bulk[i].kind == 3) && L->bulk[i].src_cta == (int)(c - L->ctas) &&
                L->bulk[i].warp == w->id && L->bulk[i].group < 0)
                L->bulk[i].group = g;
        return 0;
    }
    if (in->op == OP_BULK_WAIT) {
        int limit = w->bulk_committed - (int)in->imm;
        for (int i = 0; i < L->nbulk;) {
            emu_bulk *b = &L->bulk[i];
            if ((b->kind == 1 || b->kind == 3) && b->src_cta == (int)(c - L->ctas) && b->warp == w->id &&
                b->group >= 0 && b->group <= limit) {
                if (bulk_store_run(L, i)) return -1;
            } else {
                i++;
            }
        }
        return 0;
    }
    const uint64_t *s0 = EMU_R(w, in->s[0]), *s1 = EMU_R(w, in->s[1]);
    FOR_LANES(l, m) {
        if (in->op == OP_TMA) {
            emu_tmap t;
            if (read_tmap(w, in, l, s1[l] + (uint64_t)in->imm2, &t)) return -1;
            if (t.rank != in->vec)
                return emu_error(w, in, l, "a %dd copy with a rank-%d tensor map", in->vec, t.rank);
            int32_t coord[5] = {0, 0, 0, 0, 0};
            const int32_t *cl = L->k->lists + in->list;
            for (int i = 0; i < in->nlist; i++) {
                if (!((w->valid[cl[i]] >> l) & 1)) return emu_error(w, in, l, "tensor coordinate %d was never written", i);
                coord[i] = (int32_t)EMU_R(w, cl[i])[l];
            }
            box_iter bi;
            box_init(&bi, &t);
            size_t bytes = (size_t)bi.n[0] * t.esize * bi.rows;
            uint64_t sa = s0[l] + (uint64_t)in->imm;
            if ((sa & EMU_WIN_MASK) == EMU_WIN_SHARED) sa &= ~EMU_WIN_MASK;
            uint32_t off;
            emu_cta *dc = emu_cluster_cta(w, in, l, sa, &off);
            if (!dc) return -1;
            if (off & 127) return emu_error(w, in, l, "tensor copy shared address 0x%x is not 128-byte aligned", off);
            size_t ext = (bytes + 127) / 128 * 128;
            if ((size_t)off + ext > dc->smem_size)
                return emu_error(w, in, l, "tensor copy of %zu bytes at shared offset 0x%x exceeds the CTA's %zu bytes",
                                 bytes, off, dc->smem_size);
            if (in->sub == 1) {  /* store: shared -> global at the bulk wait_group */
                if (dc != c) return emu_error(w, in, l, "tensor store source must be the CTA's own shared memory");
                if (c->npending && emu_check_shadow(w, in, l, c, off, ext, 0)) return -1;
                emu_bulk *b = bulk_new(L);
                if (!b) return emu_error(w, in, l, "out of memory");
                b->kind = 1;
                b->src_cta = (int)(c - L->ctas);
                b->warp = w->id;
                b->group = -1;
                b->smem = off;
                b->bytes = ext;
                memcpy(b->map, &t, sizeof t);
                memcpy(b->coord, coord, sizeof coord);
                store_mark(c, off, ext, 3);
                continue;
            }
            uint64_t ma = EMU_R(w, in->s[2])[l] + (uint64_t)in->imm3;
            int mcta;
            uint32_t moff;
            if (mbar_locate(w, in, l, SP_SHARED_CLUSTER, ma, &mcta, &moff)) return -1;
            uint16_t mask = (in->mod & M_MULTICAST) ? (uint16_t)EMU_R(w, in->s[3])[l] : 0;
            if (mask >> L->nctas) return emu_error(w, in, l, "multicast ctaMask 0x%x names CTAs beyond the cluster of %d", mask, L->nctas);
            uint8_t *img = malloc(ext);
            if (!img) return emu_error(w, in, l, "out of memory");
            if (load_box(w, in, l, &t, coord, off, img, ext)) { free(img); return -1; }
            int ndst = mask ? __builtin_popcount(mask) : 1;
            for (int k = 0, done = 0; done < ndst; k++) {
                int tc = mask ? k : mcta;
                if (mask && !((mask >> k) & 1)) continue;
                if (!mask) tc = (int)(dc - L->ctas);
                emu_cta *target = &L->ctas[tc];
                if (!emu_mbar_find(target, moff))
                    return emu_error(w, in, l, "tensor copy signals mbarrier 0x%x of CTA rank %d before its mbarrier.init", moff, tc);
                if (target->npending && emu_check_shadow(w, in, l, target, off, ext, 1)) return -1;
                emu_bulk *b = bulk_new(L);
                if (!b) return emu_error(w, in, l, "out of memory");
                b->kind = 0;
                b->cta = tc;
                b->smem = off;
                b->mbar = moff;
                b->bytes = ext;
                b->gdst = (uint8_t *)(uintptr_t)bytes;  /* transaction bytes */
                b->data = done + 1 < ndst ? malloc(ext) : img;
                if (!b->data) return emu_error(w, in, l, "out of memory");
                if (b->data != img) memcpy(b->data, img, ext);
                mark_shadow(target, off, ext, 2);
                target->npending++;
                done++;
            }
            continue;
        }
        /* non-tensor bulk copy */
        uint32_t size = (uint32_t)EMU_R(w, in->s[2])[l];
        if (size == 0 || size % 16) return emu_error(w, in, l, "bulk copy size %u must be a positive multiple of 16", size);
        uint64_t da = s0[l] + (uint64_t)in->imm, sa = s1[l] + (uint64_t)in->imm2;
        if (in->sub == 0) {
            if ((da & EMU_WIN_MASK) == EMU_WIN_SHARED) da &= ~EMU_WIN_MASK;
            uint32_t off;
            emu_cta *dc = emu_cluster_cta(w, in, l, da, &off);
            if (!dc) return -1;
            if ((off & 15) || (sa & 15)) return emu_error(w, in, l, "bulk copy addresses must be 16-byte aligned");
            if ((size_t)off + size > dc->smem_size) return emu_error(w, in, l, "bulk copy beyond shared memory");
            if (!emu_global_ok(L, (uintptr_t)sa, size)) return emu_error(w, in, l, "bulk copy source 0x%llx (+%u) is outside every allocation", (unsigned long long)sa, size);
            uint64_t ma = EMU_R(w, in->s[3])[l] + (uint64_t)in->imm3;
            int mcta;
            uint32_t moff;
            if (mbar_locate(w, in, l, SP_SHARED_CLUSTER, ma, &mcta, &moff)) return -1;
            if (dc->npending && emu_check_shadow(w, in, l, dc, off, size, 1)) return -1;
            emu_bulk *b = bulk_new(L);
            if (!b) return emu_error(w, in, l, "out of memory");
            b->kind = 2;
            b->cta = (int)(dc - L->ctas);
            b->smem = off;
            b->mbar = moff;
            b->bytes = size;
            b->gdst = (uint8_t *)(uintptr_t)size;
            b->data = malloc(size);
            if (!b->data) return emu_error(w, in, l, "out of memory");
            memcpy(b->data, (const void *)(uintptr_t)sa, size);
            mark_shadow(dc, off, size, 2);
            dc->npending++;
        } else {
            if ((sa & EMU_WIN_MASK) == EMU_WIN_SHARED) sa &= ~EMU_WIN_MASK;
            if ((sa & 15) || (da & 15)) return emu_error(w, in, l, "bulk copy addresses must be 16-byte aligned");
            if (sa + size > c->smem_size) return emu_error(w, in, l, "bulk store source beyond shared memory");
            if (!emu_global_ok(L, (uintptr_t)da, size)) return emu_error(w, in, l, "bulk store destination 0x%llx (+%u) is outside every allocation", (unsigned long long)da, size);
            if (c->npending && emu_check_shadow(w, in, l, c, (uint32_t)sa, size, 0)) return -1;
            emu_bulk *b = bulk_new(L);
            if (!b) return emu_error(w, in, l, "out of memory");
            b->kind = 3;
            b->src_cta = (int)(c - L->ctas);
            b->warp = w->id;
            b->group = -1;
            b->smem = (uint32_t)sa;
            b->bytes = size;
            b->gdst = (uint8_t *)(uintptr_t)da;
            store_mark(c, (uint32_t)sa, size, 3);
        }
    }
    return 0;
}
