/* tests/harness/harness.c: seeded random inputs, poisoning, the error metric, results. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/harness/harness.h"
#include "core/check.h"
#include "dsk_config.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void dsk_rng_seed(dsk_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dsk_rng_u64(dsk_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double dsk_rng_uniform(dsk_rng *r) { return (double)(dsk_rng_u64(r) >> 11) * 0x1.0p-53; }

double dsk_rng_normal(dsk_rng *r)
{
    double u1 = dsk_rng_uniform(r), u2 = dsk_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int64_t dsk_rng_int(dsk_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    return lo + (int64_t)(dsk_rng_u64(r) % (uint64_t)(hi - lo + 1));
}

static uint64_t suite_seed;
static int seed_set;

uint64_t dsk_t_seed(void)
{
    if (!seed_set) {
        const char *e = getenv("DSK_TEST_SEED");
        if (e && *e) suite_seed = strtoull(e, NULL, 0);
        else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            suite_seed = ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20);
            suite_seed %= 1000000007ull;
        }
        seed_set = 1;
    }
    return suite_seed;
}

dsk_rng dsk_t_rng(uint64_t case_id)
{
    dsk_rng r;
    dsk_rng_seed(&r, dsk_t_seed() * 0x100000001b3ull + case_id);
    return r;
}

/* Logical row-major index -> element offset. */
static int64_t offset_of(const dsk_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->rank - 1; d >= 0; d--) {
        int64_t n = t->shape[d] ? t->shape[d] : 1;
        off += (i % n) * t->stride[d];
        i /= n;
    }
    return off;
}

double dsk_t_get(const dsk_tensor *t, int64_t i) { return dsk_load(t, offset_of(t, i)); }
void dsk_t_set(dsk_tensor *t, int64_t i, double v) { dsk_store(t, offset_of(t, i), v); }

void dsk_t_fill_normal(dsk_tensor *t, dsk_rng *r, double stddev)
{
    int64_t n = dsk_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dsk_t_set(t, i, dsk_rng_normal(r) * stddev);
}

void dsk_t_fill_uniform(dsk_tensor *t, dsk_rng *r, double lo, double hi)
{
    int64_t n = dsk_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dsk_t_set(t, i, lo + (hi - lo) * dsk_rng_uniform(r));
}

int dsk_t_fill_scattered_pages(dsk_tensor *block_table, dsk_rng *r, int pages)
{
    const int64_t n = dsk_tensor_numel(block_table);
    if (n > pages) return 0;
    int *perm = malloc(sizeof(int) * (size_t)(pages > 0 ? pages : 1));
    if (!perm) return 0;
    for (int i = 0; i < pages; i++) perm[i] = i;
    for (int i = pages - 1; i > 0; i--) {  /* Fisher-Yates */
        const int k = (int)dsk_rng_int(r, 0, i), t = perm[i];
        perm[i] = perm[k];
        perm[k] = t;
    }
    for (int64_t i = 0; i < n; i++) dsk_t_set(block_table, i, perm[i]);
    free(perm);
    return 1;
}

void dsk_t_fill_int(dsk_tensor *t, dsk_rng *r, int64_t lo, int64_t hi)
{
    int64_t n = dsk_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dsk_t_set(t, i, (double)dsk_rng_int(r, lo, hi));
}

void dsk_t_poison(dsk_tensor *t)
{
    int64_t n = dsk_tensor_numel(t);
    size_t es = dsk_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) memset((char *)t->data + offset_of(t, i) * (int64_t)es, 0xFF, es);
}

/* ---- allocation list ---- */
typedef struct talloc { dsk_tensor t; struct talloc *next; } talloc;
static talloc *allocs;

dsk_tensor *dsk_t_new(dsk_dtype dtype, int rank, const int64_t *shape)
{
    talloc *a = calloc(1, sizeof *a);
    if (!a || dsk_tensor_alloc(NULL, dtype, rank, shape, &a->t) != DSK_OK) {
        fprintf(stderr, "harness: out of memory allocating a tensor\n");
        abort();
    }
    a->next = allocs;
    allocs = a;
    return &a->t;
}

dsk_tensor *dsk_t_new2(dsk_dtype dt, int64_t d0, int64_t d1) { return dsk_t_new(dt, 2, (int64_t[]){d0, d1}); }
dsk_tensor *dsk_t_new3(dsk_dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    return dsk_t_new(dt, 3, (int64_t[]){d0, d1, d2});
}

void dsk_t_free_all(void)
{
    while (allocs) {
        talloc *n = allocs->next;
        dsk_tensor_free(&allocs->t);
        free(allocs);
        allocs = n;
    }
}

/* ---- comparing ---- */
dsk_t_cmp dsk_t_compare_f64(const double *x, const double *y, int64_t n, double rel_floor)
{
    dsk_t_cmp c = {0, 0, 0, 0, n};
    double sxy = 0, sxx_yy = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = x[i], b = y[i];
        if (!isfinite(a) && isfinite(b)) {
            c.nonfinite++;
            continue;
        }
        sxy += a * b;
        sxx_yy += a * a + b * b;
        double ae = fabs(a - b), den = fmax(fabs(b), rel_floor);
        if (ae > c.max_abs_err) c.max_abs_err = ae;
        if (ae / den > c.max_rel_err) c.max_rel_err = ae / den;
    }
    c.diff = sxx_yy > 0 ? 1.0 - 2.0 * sxy / sxx_yy : 0.0;
    if (c.nonfinite) c.diff = INFINITY;
    return c;
}

dsk_t_cmp dsk_t_compare(const dsk_tensor *x, const dsk_tensor *y, double rel_floor)
{
    int64_t n = dsk_tensor_numel(x);
    if (dsk_tensor_numel(y) != n) {
        dsk_t_cmp c = {INFINITY, INFINITY, INFINITY, n, n};
        return c;
    }
    double *a = malloc(sizeof(double) * (size_t)(n ? n : 1)), *b = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        a[i] = dsk_t_get(x, i);
        b[i] = dsk_t_get(y, i);
    }
    dsk_t_cmp c = dsk_t_compare_f64(a, b, n, rel_floor);
    free(a);
    free(b);
    return c;
}

/* ---- results ---- */
static int n_pass, n_fail;

int dsk_t_check(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        n_pass++;
        return 1;
    }
    n_fail++;
    fprintf(stdout, "FAIL %s:%d ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fprintf(stdout, " (seed=%llu: rerun with DSK_TEST_SEED=%llu)\n", (unsigned long long)dsk_t_seed(),
            (unsigned long long)dsk_t_seed());
    fflush(stdout);
    return 0;
}

int dsk_t_expect_error(dsk_status got, dsk_status st, const char *substr, const char *file, int line,
                       const char *what)
{
    const char *msg = dsk_last_error();
    int ok = got == st && (!substr || strstr(msg, substr));
    return dsk_t_check(ok, file, line, "%s: expected %s with message containing '%s', got %s: '%s'", what,
                       dsk_status_name(st), substr ? substr : "", dsk_status_name(got), msg);
}

int dsk_t_finish(void)
{
    dsk_t_free_all();
    printf("seed %llu\n%d passed, %d failed\n", (unsigned long long)dsk_t_seed(), n_pass, n_fail);
    return n_fail ? 1 : 0;
}

void dsk_t_skip(const char *fmt, ...)
{
    printf("SKIPPED: ");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(77);
}

const char *dsk_t_find_tool(const char *name)
{
    static char buf[8][512];
    static int next;
    char *out = buf[next++ % 8];
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:%s", path ? path : "", DSK_CUDA_BIN_DIR);
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, 512, "%s/%s", d, name);
        if (access(out, X_OK) == 0) return out;
    }
    return NULL;
}
