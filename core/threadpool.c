/* core/threadpool.c: the pinned worker pool (see threadpool.h).
 *
 * A run publishes (fn, ctx, n_tasks) under the run lock and opens a gate stamped with
 * the run's id; then it hands the run to the pool workers it can use: it stores the id
 * in each one's mailbox and bumps its ticket (its own futex word, on its own cache line),
 * waking it only when it sleeps. A worker that sees its ticket move joins through the
 * gate (a CAS that counts it in) if the gate still shows that run and is open, claims
 * task indices with an atomic fetch-add until none are left, then counts itself
 * finished. The caller works as worker 0; when it finds no task left it closes the gate
 * and waits for the workers that joined, and only for them. A worker spins SPIN_NS after
 * a run, then sleeps on its ticket.
 *
 * What this rules out (the first was the old pool's hang: a worker that started after
 * the first run was issued took that run's generation as already seen and never joined,
 * and the caller waited for it forever):
 *   - a worker missing a run issued before it started (tickets start at 0 with the pool);
 *   - lost wake-ups (sleeping flag and ticket in a Dekker pair, see wait_ticket);
 *   - a slow or descheduled worker stalling a dynamic run (it finds the gate closed or
 *     stamped with another run and goes back to waiting);
 *   - a worker reading a later run's fields for an earlier run, or joining a run twice
 *     (it joins only the run its mailbox names, once, through the gate's CAS; the caller
 *     rewrites the fields only after every worker that joined has finished);
 *   - two threads acting as worker 0 at once (runs from outside the pool, inline ones
 *     included, hold the run lock; runs from inside a task run inline without it);
 *   - destroy while another thread's run is in flight (destroy takes the run lock). */
#include "core/threadpool.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#ifdef DSK_HAVE_HWLOC
#include <hwloc.h>
#endif

#define SPIN_NS 50000      /* a worker spins this long after a run before it sleeps */

/* One pool thread. Its ticket is its own futex word: the caller bumps it to hand the
 * worker a run, so only the workers a run needs are touched (and woken when asleep). */
typedef struct worker {
    _Alignas(64) _Atomic uint32_t ticket;   /* bumped once per run handed to this worker */
    _Atomic uint32_t run;                   /* id of the latest run handed to it */
    _Atomic int sleeping;                   /* 1 while in (or about to enter) futex_wait */
    dsk_threadpool *pool;
    int index;
    pthread_t thread;
} worker;

/* The gate of the current run: run id in bits 32..63, CLOSED, and the count of pool
 * workers that joined in bits 0..30. */
#define GATE_CLOSED (1ull << 31)
#define GATE_JOINED 0x7fffffffull

struct dsk_threadpool {
    int n;
    worker *workers;                 /* [n]; entry 0 unused (the caller) */
    pthread_mutex_t run_lock;        /* serializes runs (and destroy against a run) */
    _Atomic int stop;
    uint32_t run_id;                 /* caller side, under run_lock */
    /* The current run: written by the caller under run_lock before the gate opens, read
     * only by workers that joined through the gate, not rewritten until they finished. */
    dsk_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    int is_static;
    _Alignas(64) _Atomic uint64_t gate;
    _Alignas(64) _Atomic int64_t next;
    _Alignas(64) _Atomic int finished;   /* joined workers done with the run */
#ifdef DSK_HAVE_HWLOC
    hwloc_topology_t topo;
#endif
};

static _Thread_local int tl_in_task;   /* 1 inside a task: nested runs go inline */
static _Thread_local int tl_worker;    /* the worker index of this thread's current task */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_one(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void do_tasks(dsk_threadpool *p, int w)
{
    tl_in_task = 1;
    tl_worker = w;
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

/* Waits until me->ticket differs from seen: spins for SPIN_NS, then sleeps. The sleep is
 * free of lost wake-ups: the worker announces itself (sleeping = 1) before it re-reads the
 * ticket, the caller bumps the ticket before it reads sleeping (both sequentially
 * consistent), so either the worker sees the new ticket or the caller sees the sleeper
 * and wakes it; futex_wait itself returns at once when the ticket already moved.
 * Spurious returns from futex_wait just loop. */
static uint32_t wait_ticket(worker *me, uint32_t seen)
{
    uint32_t t;
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        if ((t = atomic_load_explicit(&me->ticket, memory_order_acquire)) != seen) return t;
        if ((i & 255) == 0) {
            uint64_t now = now_ns();
            if (!t0) t0 = now;
            if (now - t0 < SPIN_NS) continue;
            atomic_store(&me->sleeping, 1);
            if (atomic_load(&me->ticket) == seen) futex_wait(&me->ticket, seen);
            atomic_store(&me->sleeping, 0);
            t0 = 0;
        } else {
            cpu_relax();
        }
    }
}

/* Joins run `run` if its gate is still open: 1 when joined (the worker then owes the run
 * a `finished` increment), 0 when the run is over or closed (the caller did the tasks). */
static int join(dsk_threadpool *p, uint32_t run)
{
    uint64_t g = atomic_load(&p->gate);
    for (;;) {
        if ((uint32_t)(g >> 32) != run || (g & GATE_CLOSED)) return 0;
        if (atomic_compare_exchange_weak(&p->gate, &g, g + 1)) return 1;
    }
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
    /* Tickets start at 0 when the pool is created, before any run can be issued; reading
     * the current ticket here instead would miss a run issued before this thread got to
     * run (the old pool's hang). */
    uint32_t seen = 0, last = 0;   /* run ids start at 1 */
    for (;;) {
        seen = wait_ticket(me, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        /* two bumps may show the same latest run id: try each run once */
        const uint32_t r = atomic_load(&me->run);
        if (r == last) continue;
        last = r;
        if (!join(p, r)) continue;   /* too late: the caller did the tasks */
        do_tasks(p, me->index);
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_release);
    }
}

/* Hands worker w run `run`: publish the id, bump its ticket, wake it if it sleeps. */
static void hand_over(worker *w, uint32_t run)
{
    atomic_store(&w->run, run);
    atomic_fetch_add(&w->ticket, 1);
    if (atomic_load(&w->sleeping)) futex_wake_one(&w->ticket);
}

dsk_status dsk_threadpool_create(int n, int pin, dsk_threadpool **out)
{
    if (!out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_threadpool_create: out is NULL");
    *out = NULL;
    if (n < 1 || n > 4096)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_threadpool_create: n is %d, expected 1..4096", n);
    dsk_threadpool *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
    if (!p) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_threadpool_create: pool");
    memset(p, 0, sizeof *p);
    p->n = n;
    p->workers = aligned_alloc(64, (size_t)n * sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_threadpool_create: %d workers", n);
    }
    memset(p->workers, 0, (size_t)n * sizeof *p->workers);
    pthread_mutex_init(&p->run_lock, NULL);
#ifdef DSK_HAVE_HWLOC
    if (pin && (hwloc_topology_init(&p->topo) != 0 || hwloc_topology_load(p->topo) != 0)) {
        if (p->topo) hwloc_topology_destroy(p->topo);
        p->topo = NULL;
    }
#else
    (void)pin;
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
    if (!p || p->n < 1 || !p->workers) return;
    pthread_mutex_lock(&p->run_lock);   /* a run from another thread finishes first */
    atomic_store(&p->stop, 1);
    for (int i = 1; i < p->n; i++) {
        atomic_fetch_add(&p->workers[i].ticket, 1);
        futex_wake_one(&p->workers[i].ticket);
    }
    pthread_mutex_unlock(&p->run_lock);
    for (int i = 1; i < p->n; i++) pthread_join(p->workers[i].thread, NULL);
#ifdef DSK_HAVE_HWLOC
    if (p->topo) hwloc_topology_destroy(p->topo);
#endif
    pthread_mutex_destroy(&p->run_lock);
    free(p->workers);
    free(p);
}

int dsk_threadpool_size(const dsk_threadpool *p) { return p ? p->n : 1; }

/* Runs the tasks on the calling thread alone, as the worker it already is. */
static void run_inline(int64_t n_tasks, dsk_pool_fn fn, void *ctx)
{
    const int saved = tl_in_task, w = saved ? tl_worker : 0;
    tl_in_task = 1;
    tl_worker = w;
    for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, w);
    tl_in_task = saved;
}

/* Up to k workers take part: the caller (worker 0) and pool workers 1..k-1, each of which
 * joins through the gate if it arrives while the run is open. A dynamic run closes the
 * gate once the caller finds no task left, then waits only for the workers that joined:
 * a worker that is asleep or descheduled costs the run nothing. A static run needs every
 * worker (each runs its own index) and waits for all k-1. */
static void run(dsk_threadpool *p, int64_t n_tasks, int k, dsk_pool_fn fn, void *ctx, int is_static)
{
    if (tl_in_task) {   /* nested inside a task (of any pool): inline, no lock (no deadlock) */
        run_inline(n_tasks, fn, ctx);
        return;
    }
    if (!p || p->n == 1 || k <= 1) {   /* nobody to share with, or too little work to share */
        if (p && p->n > 1) pthread_mutex_lock(&p->run_lock);   /* worker 0 is one thread at a time */
        run_inline(n_tasks, fn, ctx);
        if (p && p->n > 1) pthread_mutex_unlock(&p->run_lock);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    const uint32_t id = ++p->run_id;
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->is_static = is_static;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store(&p->gate, (uint64_t)id << 32);   /* opens the run: publishes the fields above */
    for (int i = 1; i < k; i++) hand_over(&p->workers[i], id);
    do_tasks(p, 0);
    int joined = k - 1;
    if (!is_static) joined = (int)(atomic_fetch_or(&p->gate, GATE_CLOSED) & GATE_JOINED);
    unsigned spins = 0;
    while (atomic_load_explicit(&p->finished, memory_order_acquire) < joined) {
        if (++spins < 4096) cpu_relax();
        else sched_yield();   /* a descheduled worker: give it the core */
    }
    pthread_mutex_unlock(&p->run_lock);
}

void dsk_threadpool_run(dsk_threadpool *p, int64_t n_tasks, dsk_pool_fn fn, void *ctx)
{
    dsk_threadpool_run_grain(p, n_tasks, 1, fn, ctx);
}

void dsk_threadpool_run_grain(dsk_threadpool *p, int64_t n_tasks, int64_t grain, dsk_pool_fn fn, void *ctx)
{
    if (n_tasks <= 0) return;
    if (grain < 1) grain = 1;
    const int n = dsk_threadpool_size(p);
    int64_t k = (n_tasks + grain - 1) / grain;
    run(p, n_tasks, (int)(k < n ? k : n), fn, ctx, 0);
}

void dsk_threadpool_run_static(dsk_threadpool *p, dsk_pool_fn fn, void *ctx)
{
    const int n = dsk_threadpool_size(p);
    run(p, n, n, fn, ctx, 1);
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
