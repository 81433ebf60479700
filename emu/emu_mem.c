/* emu/emu_mem.c: the memory the emulator may touch.
 *
 * Global addresses in emulated kernels are host addresses; an access is legal only inside
 * a range allocated with dsk_emu_alloc or registered with dsk_emu_register. The registry
 * is a sorted array guarded by a mutex; a launch takes a snapshot of it (emu_exec.c), so
 * lookups during execution need no lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "emu_internal.h"
#include "emu_mem.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_range *g_ranges;
static int g_n, g_cap;

static int find_index(uintptr_t base)
{
    int lo = 0, hi = g_n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g_ranges[mid].base < base) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static dsk_status add_range(void *ptr, size_t bytes, const char *fn)
{
    uintptr_t b = (uintptr_t)ptr;
    pthread_mutex_lock(&g_lock);
    int i = find_index(b);
    if ((i < g_n && g_ranges[i].base < b + bytes) ||
        (i > 0 && g_ranges[i - 1].base + g_ranges[i - 1].size > b)) {
        pthread_mutex_unlock(&g_lock);
        return dsk_fail(DSK_ERR_INVALID_ARG, "%s: [%p, +%zu) overlaps memory already known to the emulator",
                        fn, ptr, bytes);
    }
    if (g_n == g_cap) {
        int c = g_cap ? g_cap * 2 : 64;
        emu_range *r = realloc(g_ranges, sizeof *r * (size_t)c);
        if (!r) {
            pthread_mutex_unlock(&g_lock);
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        }
        g_ranges = r;
        g_cap = c;
    }
    memmove(&g_ranges[i + 1], &g_ranges[i], sizeof *g_ranges * (size_t)(g_n - i));
    g_ranges[i].base = b;
    g_ranges[i].size = bytes;
    g_n++;
    pthread_mutex_unlock(&g_lock);
    return DSK_OK;
}

static int remove_range(void *ptr)
{
    uintptr_t b = (uintptr_t)ptr;
    pthread_mutex_lock(&g_lock);
    int i = find_index(b);
    int found = i < g_n && g_ranges[i].base == b;
    if (found) {
        memmove(&g_ranges[i], &g_ranges[i + 1], sizeof *g_ranges * (size_t)(g_n - i - 1));
        g_n--;
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}

dsk_status dsk_emu_alloc(size_t bytes, void **ptr)
{
    if (!ptr) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_alloc: ptr is NULL");
    *ptr = NULL;
    if (bytes == 0) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_alloc: bytes is 0");
    size_t rounded = (bytes + 255) / 256 * 256;
    void *p = aligned_alloc(256, rounded);
    if (!p) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_alloc: %zu bytes: out of memory", bytes);
    memset(p, 0, rounded);
    dsk_status s = add_range(p, bytes, "dsk_emu_alloc");
    if (s != DSK_OK) {
        free(p);
        return s;
    }
    *ptr = p;
    return DSK_OK;
}

void dsk_emu_free(void *ptr)
{
    if (!ptr) return;
    if (remove_range(ptr)) free(ptr);
}

dsk_status dsk_emu_register(void *ptr, size_t bytes)
{
    if (!ptr || bytes == 0)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_emu_register: expected a non-NULL pointer and bytes > 0, given %p and %zu",
                        ptr, bytes);
    return add_range(ptr, bytes, "dsk_emu_register");
}

void dsk_emu_unregister(void *ptr)
{
    if (ptr) remove_range(ptr);
}

dsk_status emu_ranges_snapshot(emu_range **out, int *n)
{
    pthread_mutex_lock(&g_lock);
    emu_range *r = malloc(sizeof *r * (size_t)(g_n + 1));
    if (r) memcpy(r, g_ranges, sizeof *r * (size_t)g_n);
    *n = g_n;
    pthread_mutex_unlock(&g_lock);
    *out = r;
    return r ? DSK_OK : dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_emu_launch: out of memory");
}

int emu_global_ok(emu_launch *L, uintptr_t p, size_t size)
{
    /* the range of the previous hit first: accesses cluster in a few buffers */
    if (L->last_range >= 0) {
        const emu_range *r = &L->ranges[L->last_range];
        if (p >= r->base && p - r->base + size <= r->size) return 1;
    }
    int lo = 0, hi = L->nranges;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (L->ranges[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    const emu_range *r = &L->ranges[lo - 1];
    if (p < r->base || p - r->base + size > r->size) return 0;
    L->last_range = lo - 1;
    return 1;
}
