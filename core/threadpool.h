/* core/threadpool.h: a pool of worker threads, one per core, pinned with hwloc (internal).
 *
 * The calling thread takes part as worker 0; workers 1..n-1 are pool threads, worker i
 * bound to the i-th core hwloc lists (when built with hwloc). A run hands out task
 * indices 0..n_tasks-1 dynamically (an atomic counter) and returns when all are done.
 * A run hands itself only to the workers it can use (no more than it has tasks, or task
 * groups of `grain` with dsk_threadpool_run_grain), and a worker that arrives after the
 * tasks are gone is not waited for; a run that one worker can do runs on the calling
 * thread without touching the pool threads. Runs are serialized per pool (any
 * number of threads may submit; each waits its turn); a run started from inside a task
 * runs inline on the calling worker (no nesting deadlock).
 *
 * Waiting workers spin about 50 us, then sleep on a futex of their own, so an idle pool
 * costs nothing and a run that follows another closely starts without a wake-up
 * system call. No OpenMP. */
#ifndef DSK_CORE_THREADPOOL_H
#define DSK_CORE_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "dsk/status.h"

typedef struct dsk_threadpool dsk_threadpool;

/* One task: index task of the run, executed on worker (0..size-1). */
typedef void (*dsk_pool_fn)(void *ctx, int64_t task, int worker);

/* Creates a pool of n workers (n >= 1, the caller included); pin != 0 binds worker i
 * to core i (hwloc; ignored without it). */
dsk_status dsk_threadpool_create(int n, int pin, dsk_threadpool **out);
void dsk_threadpool_destroy(dsk_threadpool *p);
int dsk_threadpool_size(const dsk_threadpool *p);

/* Runs fn(ctx, t, worker) for t in [0, n_tasks), dynamically scheduled; blocks until
 * every task has returned. n_tasks <= 0 runs nothing. Uses min(size, n_tasks) workers,
 * the caller included; p NULL runs everything on the caller. */
void dsk_threadpool_run(dsk_threadpool *p, int64_t n_tasks, dsk_pool_fn fn, void *ctx);

/* The same with at most ceil(n_tasks / grain) workers: grain is the number of tasks
 * worth one worker's wake-up (a task count too small to share runs on the caller). */
void dsk_threadpool_run_grain(dsk_threadpool *p, int64_t n_tasks, int64_t grain, dsk_pool_fn fn, void *ctx);

/* Runs fn(ctx, w, w) once on each worker w in [0, size): a static split, for work that
 * must land on a given core (first touch, per-core partitions that match it). */
void dsk_threadpool_run_static(dsk_threadpool *p, dsk_pool_fn fn, void *ctx);

/* The process-wide pool, created on first use: DSK_NUM_THREADS workers if set, else one
 * per core the process may run on; pinned unless DSK_PIN=0. Never NULL (a pool of one
 * when threads cannot be created). */
dsk_threadpool *dsk_threadpool_default(void);

/* Cores the process may run on (hwloc, else the affinity mask). */
int dsk_cpu_core_count(void);

/* NUMA-aware first touch: worker w of p writes zeros over the w-th of size equal
 * page-aligned slices of buf, so on a NUMA machine each slice's pages are placed on
 * the node of the core that later streams it (the decode GEMM splits N the same way:
 * worker w reads the w-th contiguous slice of the weight rows). Call right after
 * allocating, before the data is written. */
void dsk_threadpool_first_touch(dsk_threadpool *p, void *buf, size_t bytes);

/* Byte range [*lo, *hi) of the w-th of n equal slices of [0, total), slice starts
 * rounded to multiples of align. */
void dsk_threadpool_split(size_t total, int n, int w, size_t align, size_t *lo, size_t *hi);

#endif
