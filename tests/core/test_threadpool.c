/* tests/core/test_threadpool.c: stress test of core/threadpool.c.
 *
 * Every run checks that each task index ran exactly once and that no worker index was
 * in use by two threads at the same time (a per-worker in-use flag swapped at task entry
 * and exit). Cases: pools created and used at once, then destroyed, in cycles (the old
 * pool lost a worker that started after the first run and hung); thousands of tiny runs
 * with task counts 0, 1, 2, size-1, size, size+1 and random, through run, run_grain and
 * run_static; runs separated by pauses long enough for the workers to fall asleep (the
 * futex wake path); several threads submitting to one pool at once; runs nested inside
 * tasks; destroy while another thread's run is in flight. A hang is the failure mode of
 * a lost wake-up: a watchdog (SIGALRM) turns it into a failure with the case name, and
 * ctest's TIMEOUT backs it up. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "tests/harness/harness.h"

#define MAX_TASKS 4096
#define MAX_WORKERS 64

static const char *volatile current_case = "start";

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL test_threadpool: watchdog: a run did not return (hang) in case ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    const char *c = current_case;
    r = write(2, c, strlen(c));
    r = write(2, "\n", 1);
    (void)r;
    _exit(1);
}

typedef struct job {
    _Atomic int count[MAX_TASKS];
    _Atomic int in_use[MAX_WORKERS];
    _Atomic int bad_worker;   /* a worker index out of range or shared at once */
    int size;
    int spin;                 /* a little work per task so workers overlap */
} job;

static void job_reset(job *j, int size, int spin)
{
    for (int i = 0; i < MAX_TASKS; i++) atomic_store(&j->count[i], 0);
    for (int i = 0; i < MAX_WORKERS; i++) atomic_store(&j->in_use[i], 0);
    atomic_store(&j->bad_worker, 0);
    j->size = size;
    j->spin = spin;
}

static void task(void *ctx, int64_t t, int w)
{
    job *j = ctx;
    if (w < 0 || w >= j->size || w >= MAX_WORKERS || t < 0 || t >= MAX_TASKS) {
        atomic_store(&j->bad_worker, 1);
        return;
    }
    if (atomic_exchange(&j->in_use[w], 1) != 0) atomic_store(&j->bad_worker, 1);
    for (volatile int i = 0; i < j->spin; i++) {
    }
    atomic_fetch_add(&j->count[t], 1);
    atomic_store(&j->in_use[w], 0);
}

/* Every task in [0, n) ran once, none beyond, no worker index shared. */
static int job_ok(job *j, int64_t n)
{
    if (atomic_load(&j->bad_worker)) return 0;
    for (int64_t i = 0; i < MAX_TASKS; i++)
        if (atomic_load(&j->count[i]) != (i < n ? 1 : 0)) return 0;
    return 1;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static job J;

static void create_run_destroy_cycles(dsk_rng *r)
{
    current_case = "create/run/destroy cycles";
    int fails = 0;
    for (int c = 0; c < 300; c++) {
        int n = (int)dsk_rng_int(r, 1, 8);
        dsk_threadpool *p;
        if (!DSK_T_OK(dsk_threadpool_create(n, c & 1, &p))) return;
        int runs = (int)dsk_rng_int(r, 0, 3);   /* 0: destroy a pool that never ran */
        for (int k = 0; k < runs; k++) {
            int64_t nt = dsk_rng_int(r, 0, 3 * n);
            job_reset(&J, n, 0);
            dsk_threadpool_run(p, nt, task, &J);
            fails += !job_ok(&J, nt);
        }
        dsk_threadpool_destroy(p);
    }
    DSK_T_CHECK(fails == 0, "threadpool: %d runs of fresh pools missed or repeated tasks", fails);
}

static void tiny_runs(dsk_threadpool *p, dsk_rng *r, int count, long pause_us, const char *name)
{
    current_case = name;
    const int n = dsk_threadpool_size(p);
    const int64_t fixed[] = {0, 1, 2, n - 1, n, n + 1, 2 * n + 3};
    int fails = 0, static_fails = 0;
    int64_t first_bad = -1;
    for (int i = 0; i < count; i++) {
        int64_t nt = i < 7 * 4 ? fixed[i % 7] : dsk_rng_int(r, 0, i % 50 == 0 ? MAX_TASKS : 3 * n);
        int mode = (int)(i % 3);
        job_reset(&J, n, (int)dsk_rng_int(r, 0, 200));
        if (mode == 0) dsk_threadpool_run(p, nt, task, &J);
        else if (mode == 1) dsk_threadpool_run_grain(p, nt, dsk_rng_int(r, 0, 5), task, &J);
        else {
            dsk_threadpool_run_static(p, task, &J);
            nt = n;
        }
        if (!job_ok(&J, nt)) {
            if (mode == 2) static_fails++;
            else fails++;
            if (first_bad < 0) first_bad = nt;
        }
        if (pause_us) sleep_us(pause_us);
    }
    DSK_T_CHECK(fails == 0 && static_fails == 0,
                "threadpool %s: size %d, %d of %d runs wrong (%d static), first with %lld tasks", name, n,
                fails + static_fails, count, static_fails, (long long)first_bad);
}

/* ---- concurrent submitters: each thread has its own job, all on one pool ---- */
typedef struct submitter {
    dsk_threadpool *p;
    job *j;
    uint64_t seed;
    int fails;
    _Atomic int *shared_in_use;   /* worker index -> thread using it, across all jobs */
} submitter;

typedef struct cross_ctx { job *j; _Atomic int *shared; } cross_ctx;

static void cross_task(void *ctx, int64_t t, int w)
{
    cross_ctx *c = ctx;
    if (w >= 0 && w < MAX_WORKERS && atomic_exchange(&c->shared[w], 1) != 0) atomic_store(&c->j->bad_worker, 1);
    task(c->j, t, w);
    if (w >= 0 && w < MAX_WORKERS) atomic_store(&c->shared[w], 0);
}

static void *submit_main(void *arg)
{
    submitter *s = arg;
    dsk_rng r;
    dsk_rng_seed(&r, s->seed);
    const int n = dsk_threadpool_size(s->p);
    for (int i = 0; i < 1500; i++) {
        int64_t nt = dsk_rng_int(&r, 0, 2 * n + 1);
        job_reset(s->j, n, (int)dsk_rng_int(&r, 0, 100));
        cross_ctx c = {s->j, s->shared_in_use};
        if (i % 4 == 3) {
            dsk_threadpool_run_static(s->p, cross_task, &c);
            nt = n;
        } else {
            dsk_threadpool_run(s->p, nt, cross_task, &c);
        }
        s->fails += !job_ok(s->j, nt);
    }
    return NULL;
}

static void concurrent_submitters(dsk_threadpool *p, uint64_t seed)
{
    current_case = "concurrent submitters";
    enum { S = 4 };
    static job jobs[S];
    static _Atomic int shared[MAX_WORKERS];
    submitter sub[S];
    pthread_t th[S];
    for (int i = 0; i < S; i++) {
        sub[i] = (submitter){p, &jobs[i], seed + 101 * (uint64_t)i, 0, shared};
        pthread_create(&th[i], NULL, submit_main, &sub[i]);
    }
    int fails = 0;
    for (int i = 0; i < S; i++) {
        pthread_join(th[i], NULL);
        fails += sub[i].fails;
    }
    DSK_T_CHECK(fails == 0, "threadpool concurrent submitters: %d of %d runs wrong (missed/repeated tasks or a worker "
                "index used by two threads at once)", fails, S * 1500);
}

/* ---- nested runs: a task starts a run of its own, which must run inline as that worker ---- */
typedef struct nest_ctx { dsk_threadpool *p; _Atomic int inner[64][8]; _Atomic int bad; } nest_ctx;
typedef struct inner_ctx { nest_ctx *n; int64_t outer; int worker; } inner_ctx;

static void inner_task(void *ctx, int64_t t, int w)
{
    inner_ctx *c = ctx;
    if (w != c->worker) atomic_store(&c->n->bad, 1);
    atomic_fetch_add(&c->n->inner[c->outer][t], 1);
}

static void outer_task(void *ctx, int64_t t, int w)
{
    nest_ctx *n = ctx;
    inner_ctx c = {n, t, w};
    dsk_threadpool_run(n->p, 8, inner_task, &c);
}

static void nested(dsk_threadpool *p)
{
    current_case = "nested runs";
    static nest_ctx n;
    memset(&n, 0, sizeof n);
    n.p = p;
    dsk_threadpool_run(p, 64, outer_task, &n);
    int ok = !atomic_load(&n.bad);
    for (int i = 0; i < 64; i++)
        for (int k = 0; k < 8; k++) ok &= atomic_load(&n.inner[i][k]) == 1;
    DSK_T_CHECK(ok, "threadpool nested runs: inner tasks missed/repeated or not run inline as the outer worker");
}

/* ---- destroy while another thread's run is in flight ---- */
typedef struct slow_ctx { _Atomic int started, done; } slow_ctx;
static void slow_task(void *ctx, int64_t t, int w)
{
    (void)t;
    (void)w;
    slow_ctx *s = ctx;
    atomic_fetch_add(&s->started, 1);
    sleep_us(2000);
    atomic_fetch_add(&s->done, 1);
}
typedef struct slow_arg { dsk_threadpool *p; slow_ctx *s; } slow_arg;
static void *slow_main(void *arg)
{
    slow_arg *a = arg;
    dsk_threadpool_run(a->p, 16, slow_task, a->s);
    return NULL;
}

static void destroy_during_run(void)
{
    current_case = "destroy during a run";
    dsk_threadpool *p;
    if (!DSK_T_OK(dsk_threadpool_create(4, 0, &p))) return;
    static slow_ctx s;
    atomic_store(&s.started, 0);
    atomic_store(&s.done, 0);
    slow_arg a = {p, &s};
    pthread_t th;
    pthread_create(&th, NULL, slow_main, &a);
    while (atomic_load(&s.started) == 0) sleep_us(50);
    dsk_threadpool_destroy(p);   /* waits for the run, then stops the workers */
    pthread_join(th, NULL);
    DSK_T_CHECK(atomic_load(&s.done) == 16, "threadpool destroy during a run: %d of 16 tasks finished",
                atomic_load(&s.done));
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(100);
    dsk_rng r = dsk_t_rng(1);
    DSK_T_ERR(dsk_threadpool_create(0, 0, &(dsk_threadpool *){NULL}), DSK_ERR_INVALID_ARG, "n is 0");
    DSK_T_ERR(dsk_threadpool_create(2, 0, NULL), DSK_ERR_INVALID_ARG, "out is NULL");
    create_run_destroy_cycles(&r);
    /* more workers than this machine's cores too: descheduled workers */
    const int sizes[] = {1, 2, 3, 8};
    for (int i = 0; i < 4; i++) {
        dsk_threadpool *p;
        if (!DSK_T_OK(dsk_threadpool_create(sizes[i], 1, &p))) continue;
        tiny_runs(p, &r, 3000, 0, "tiny runs back to back");
        tiny_runs(p, &r, 100, 300, "runs after the workers fall asleep");
        if (sizes[i] > 1) {
            concurrent_submitters(p, dsk_rng_u64(&r));
            nested(p);
        }
        dsk_threadpool_destroy(p);
    }
    destroy_during_run();
    /* a NULL pool runs on the caller */
    job_reset(&J, 1, 0);
    dsk_threadpool_run(NULL, 5, task, &J);
    DSK_T_CHECK(job_ok(&J, 5), "threadpool: a NULL pool did not run 5 tasks inline");
    alarm(0);
    return dsk_t_finish();
}
