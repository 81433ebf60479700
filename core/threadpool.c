/* core/threadpool.c: the pinned worker pool (see threadpool.h).
 *
 * A run publishes (fn, ctx, n_tasks) and bumps a generation counter; workers that see a
 * new generation claim task indices with an atomic fetch-add until none are left, then
 * decrement the count of busy workers. Sleeping uses Linux futexes on the generation
 * word (wake) and the busy count is polled by the caller, which works too. */
#include "core/threadpool.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"

#ifdef DSK_HAVE_HWLOC
#include <hwloc.h>
#endif

#define SPIN_ITERS 20000   /* ~tens of microseconds of pause before sleeping */

typedef struct worker {
    dsk_threadpool *pool;
    int index;
    pthread_t thread;
} worker;

struct dsk_threadpool {
    int n;
    worker *workers;                 /* [n]; entry 0 unused (the caller) */
    pthread_mutex_t run_lock;        /* serializes runs */
    _Atomic uint32_t generation;     /* bumped per run; futex word */
    _Atomic int stop;
    /* The current run. */
    dsk_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    int is_static;
    _Atomic int64_t next;
    _Atomic int busy;                /* pool workers still inside the current run */
#ifdef DSK_HAVE_HWLOC
    hwloc_topology_t topo;
#endif
};

static _Thread_local int tl_in_task;   /* 1 inside a task: nested runs go inline */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static void do_tasks(dsk_threadpool *p, int w)
{
    tl_in_task = 1;
    if (p->is_static) {
        p->fn(p->ctx, w, w);
    } else {
        for (;;) {
            int64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
            if (t >= p->n_tasks) break;
            p->fn(p->ctx, t, w);
        }
    }
    tl_in_task = 0;
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    dsk_threadpool *p = me->pool;
#ifdef DSK_HAVE_HWLOC
    if (p->topo) {
        int ncores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
        hwloc_obj_t core = ncores > 0 ? hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, me->index % ncores) : NULL;
        if (core) hwloc_set_cpubind(p->topo, core->cpuset, HWLOC_CPUBIND_THREAD);
    }
#endif
    uint32_t seen = atomic_load_explicit(&p->generation, memory_order_acquire);
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
            if (++spins < SPIN_ITERS) cpu_relax();
            else futex_wait(&p->generation, seen);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
        do_tasks(p, me->index);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
}

dsk_status dsk_threadpool_create(int n, int pin, dsk_threadpool **out)
{
    if (!out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_threadpool_create: out is NULL");
    *out = NULL;
    if (n < 1 || n > 4096)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_threadpool_create: n is %d, expected 1..4096", n);
    dsk_threadpool *p = calloc(1, sizeof *p);
    if (!p) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_threadpool_create: pool");
    p->n = n;
    p->workers = calloc((size_t)n, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_threadpool_create: %d workers", n);
    }
    pthread_mutex_init(&p->run_lock, NULL);
#ifdef DSK_HAVE_HWLOC
    if (pin && (hwloc_topology_init(&p->topo) != 0 || hwloc_topology_load(p->topo) != 0)) {
        if (p->topo) hwloc_topology_destroy(p->topo);
        p->topo = NULL;
    }
#endif
    for (int i = 1; i < n; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            p->n = i;   /* keep the workers that started */
            dsk_threadpool_destroy(p);
            return dsk_fail(DSK_ERR_INTERNAL, "dsk_threadpool_create: pthread_create failed for worker %d of %d", i, n);
        }
    }
    *out = p;
    return DSK_OK;
}

void dsk_threadpool_destroy(dsk_threadpool *p)
{
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->generation, 1);
    futex_wake_all(&p->generation);
    for (int i = 1; i < p->n; i++) pthread_join(p->workers[i].thread, NULL);
#ifdef DSK_HAVE_HWLOC
    if (p->topo) hwloc_topology_destroy(p->topo);
#endif
    pthread_mutex_destroy(&p->run_lock);
    free(p->workers);
    free(p);
}

int dsk_threadpool_size(const dsk_threadpool *p) { return p ? p->n : 1; }

static void run(dsk_threadpool *p, int64_t n_tasks, dsk_pool_fn fn, void *ctx, int is_static)
{
    if (tl_in_task || p->n == 1) {   /* nested, or nobody to share with: inline */
        int saved = tl_in_task;
        tl_in_task = 1;
        if (is_static)
            for (int w = 0; w < p->n; w++) fn(ctx, w, 0);
        else
            for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        tl_in_task = saved;
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->is_static = is_static;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    futex_wake_all(&p->generation);
    do_tasks(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->busy, memory_order_acquire) > 0) {
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();   /* a descheduled worker: give it the core */
    }
    pthread_mutex_unlock(&p->run_lock);
}

void dsk_threadpool_run(dsk_threadpool *p, int64_t n_tasks, dsk_pool_fn fn, void *ctx)
{
    if (n_tasks <= 0) return;
    if (n_tasks == 1) {   /* one task: no hand-off */
        int saved = tl_in_task;
        tl_in_task = 1;
        fn(ctx, 0, 0);
        tl_in_task = saved;
        return;
    }
    run(p, n_tasks, fn, ctx, 0);
}

void dsk_threadpool_run_static(dsk_threadpool *p, dsk_pool_fn fn, void *ctx)
{
    run(p, p->n, fn, ctx, 1);
}

int dsk_cpu_core_count(void)
{
    int n = 0;
#ifdef DSK_HAVE_HWLOC
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) == 0) {
        if (hwloc_topology_load(t) == 0) n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
        hwloc_topology_destroy(t);
    }
#endif
    if (n <= 0) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    }
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static dsk_threadpool *default_pool;
static dsk_threadpool default_single = {.n = 1};

static void default_init(void)
{
    int n = dsk_cpu_core_count();
    const char *env = getenv("DSK_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 4096) n = (int)v;
    }
    const char *pin = getenv("DSK_PIN");
    int do_pin = !(pin && !strcmp(pin, "0"));
    if (dsk_threadpool_create(n, do_pin, &default_pool) != DSK_OK) default_pool = &default_single;
}

dsk_threadpool *dsk_threadpool_default(void)
{
    pthread_once(&default_once, default_init);
    return default_pool;
}

void dsk_threadpool_split(size_t total, int n, int w, size_t align, size_t *lo, size_t *hi)
{
    if (align == 0) align = 1;
    size_t units = (total + align - 1) / align;
    size_t a = units * (size_t)w / (size_t)n, b = units * (size_t)(w + 1) / (size_t)n;
    *lo = a * align < total ? a * align : total;
    *hi = b * align < total ? b * align : total;
}

typedef struct touch_ctx { unsigned char *buf; size_t bytes; int n; } touch_ctx;

static void touch_task(void *c, int64_t t, int worker)
{
    touch_ctx *tc = c;
    size_t lo, hi;
    dsk_threadpool_split(tc->bytes, tc->n, (int)t, 4096, &lo, &hi);
    if (hi > lo) memset(tc->buf + lo, 0, hi - lo);
}

void dsk_threadpool_first_touch(dsk_threadpool *p, void *buf, size_t bytes)
{
    if (!buf || bytes == 0) return;
    touch_ctx tc = {buf, bytes, dsk_threadpool_size(p)};
    dsk_threadpool_run_static(p, touch_task, &tc);
}
