/* autotune/cache.c: the tuning cache: one JSON file of winners, keyed by GPU, driver
 * version, op and shape class, and the rule ops follow: cache first, model second.
 *
 * File (tune.json):
 *   {"dsk_tune_cache": 1, "entries": [{"gpu", "driver", "op", "shape_class", "kernel",
 *     "measured_us", "source", "dsk_version"}, ...]}
 * Writers take an exclusive flock on tune.json.lock, read the current file, write a
 * temporary file in the same directory, fsync it and rename it over tune.json: readers
 * see the old or the new file, never a torn one, and two tuners do not lose each
 * other's entries. A corrupt file is reported (file, line, problem) and ignored by
 * readers; the next writer moves it aside to tune.json.corrupt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "dsk/dsk.h"
#include "core/json.h"
#include "model_internal.h"

#define CACHE_FILE "tune.json"

static dsk_status cache_dir(char *buf, size_t len)
{
    const char *d = getenv("DSK_CACHE_DIR");
    int n;
    if (d && *d) n = snprintf(buf, len, "%s", d);
    else if ((d = getenv("XDG_CACHE_HOME")) && *d) n = snprintf(buf, len, "%s/dsk", d);
    else if ((d = getenv("HOME")) && *d) n = snprintf(buf, len, "%s/.cache/dsk", d);
    else
        return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_path: none of DSK_CACHE_DIR, XDG_CACHE_HOME, HOME is set");
    if (n < 0 || (size_t)n >= len) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_path: path too long");
    return DSK_OK;
}

dsk_status dsk_tune_cache_path(char *buf, size_t len)
{
    if (!buf) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_path: buf is NULL");
    char dir[4000];
    DSK_TRY(cache_dir(dir, sizeof dir));
    int n = snprintf(buf, len, "%s/%s", dir, CACHE_FILE);
    if (n < 0 || (size_t)n >= len) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_path: buffer too small");
    return DSK_OK;
}

void dsk_tune_shape_class(const dsk_tune_gemm_shape *s, char *buf, size_t len)
{
    long long p = 1;
    while (p < s->m) p *= 2;
    const char *l = s->layout == DSK_GEMM_CONTIGUOUS ? "contig" : s->layout == DSK_GEMM_MASKED ? "masked" : "dense";
    if (s->layout == DSK_GEMM_DENSE) snprintf(buf, len, "%s:m<=%lld:n=%lld:k=%lld", l, p, s->n, s->k);
    else snprintf(buf, len, "%s:g=%d:m<=%lld:n=%lld:k=%lld", l, s->groups, p, s->n, s->k);
}

/* Copies a required string member into dst, or fails naming the file and line. */
static dsk_status get_str(const char *path, const dsk_json *e, const char *key, char *dst, size_t cap)
{
    const dsk_json *v = dsk_json_get(e, key);
    if (!v || v->type != DSK_JSON_STRING)
        return dsk_fail(DSK_ERR_FORMAT, "%s: line %d: entry lacks string member \"%s\"", path, e->line, key);
    if (strlen(v->str) >= cap)
        return dsk_fail(DSK_ERR_FORMAT, "%s: line %d: \"%s\" longer than %zu characters", path, v->line, key, cap - 1);
    snprintf(dst, cap, "%s", v->str);
    return DSK_OK;
}

/* Reads and validates the whole cache. *missing = 1 when there is no file (not an error). */
static dsk_status load(const char *path, dsk_tune_cache_entry **out, int *n, int *missing)
{
    *out = NULL;
    *n = 0;
    char *text;
    dsk_status st = dsk_json_read_file(path, &text, missing);
    if (st) return *missing ? DSK_OK : st;
    dsk_json *root;
    st = dsk_json_parse(text, strlen(text), path, &root);
    free(text);
    if (st) return st;
    const dsk_json *ver = dsk_json_get(root, "dsk_tune_cache"), *ents = dsk_json_get(root, "entries");
    if (root->type != DSK_JSON_OBJECT) st = dsk_fail(DSK_ERR_FORMAT, "%s: line %d: expected a JSON object", path, root->line);
    else if (!ver || ver->type != DSK_JSON_NUMBER || ver->num != 1)
        st = dsk_fail(DSK_ERR_FORMAT, "%s: line %d: expected \"dsk_tune_cache\": 1", path, ver ? ver->line : root->line);
    else if (!ents || ents->type != DSK_JSON_ARRAY)
        st = dsk_fail(DSK_ERR_FORMAT, "%s: line %d: expected an \"entries\" array", path, ents ? ents->line : root->line);
    int count = st ? 0 : ents->n;
    dsk_tune_cache_entry *v = count ? calloc(count, sizeof *v) : NULL;
    if (count && !v && !st) st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (int i = 0; i < count && !st; i++) {
        const dsk_json *e = &ents->items[i];
        if (e->type != DSK_JSON_OBJECT) {
            st = dsk_fail(DSK_ERR_FORMAT, "%s: line %d: entry %d is not an object", path, e->line, i);
            break;
        }
        dsk_tune_cache_entry *c = &v[i];
        if ((st = get_str(path, e, "gpu", c->gpu, sizeof c->gpu))) break;
        if ((st = get_str(path, e, "driver", c->driver, sizeof c->driver))) break;
        if ((st = get_str(path, e, "op", c->op, sizeof c->op))) break;
        if ((st = get_str(path, e, "shape_class", c->shape_class, sizeof c->shape_class))) break;
        if ((st = get_str(path, e, "kernel", c->kernel, sizeof c->kernel))) break;
        if ((st = get_str(path, e, "source", c->source, sizeof c->source))) break;
        const dsk_json *us = dsk_json_get(e, "measured_us");
        if (!us || us->type != DSK_JSON_NUMBER) {
            st = dsk_fail(DSK_ERR_FORMAT, "%s: line %d: entry lacks number member \"measured_us\"", path, e->line);
            break;
        }
        c->measured_us = us->num;
    }
    dsk_json_free(root);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    *n = count;
    return DSK_OK;
}

static int same_key(const dsk_tune_cache_entry *a, const dsk_tune_cache_entry *b)
{
    return !strcmp(a->gpu, b->gpu) && !strcmp(a->driver, b->driver) && !strcmp(a->op, b->op) &&
           !strcmp(a->shape_class, b->shape_class);
}

dsk_status dsk_tune_cache_lookup(const char *gpu, const char *driver, const char *op,
                                 const char *shape_class, dsk_tune_cache_entry *out, int *found)
{
    if (!gpu || !driver || !op || !shape_class || !out || !found)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_lookup: NULL argument");
    *found = 0;
    char path[4096];
    DSK_TRY(dsk_tune_cache_path(path, sizeof path));
    dsk_tune_cache_entry *v, key;
    int n, missing;
    memset(&key, 0, sizeof key);
    snprintf(key.gpu, sizeof key.gpu, "%s", gpu);
    snprintf(key.driver, sizeof key.driver, "%s", driver);
    snprintf(key.op, sizeof key.op, "%s", op);
    snprintf(key.shape_class, sizeof key.shape_class, "%s", shape_class);
    dsk_status st = load(path, &v, &n, &missing);
    if (st) return dsk_fail_prefix(st, "dsk_tune_cache_lookup: corrupt tuning cache, ignored");
    for (int i = 0; i < n; i++)
        if (same_key(&v[i], &key)) {
            *out = v[i];
            *found = 1;
        }
    free(v);
    return DSK_OK;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static dsk_status mkdirs(const char *dir)
{
    char tmp[4000];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: cannot create '%s': %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: cannot create '%s': %s", tmp, strerror(errno));
    return DSK_OK;
}

static dsk_status write_atomic(const char *dir, const char *path, const dsk_tune_cache_entry *v, int n)
{
    char tmp[4100];
    snprintf(tmp, sizeof tmp, "%s/.tune.json.XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: cannot create a file in '%s': %s", dir, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: fdopen: %s", strerror(errno));
    }
    fprintf(f, "{\"dsk_tune_cache\": 1, \"entries\": [");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s\n  {\"gpu\": ", i ? "," : "");
        json_str(f, v[i].gpu);
        fprintf(f, ", \"driver\": ");
        json_str(f, v[i].driver);
        fprintf(f, ", \"op\": ");
        json_str(f, v[i].op);
        fprintf(f, ", \"shape_class\": ");
        json_str(f, v[i].shape_class);
        fprintf(f, ", \"kernel\": ");
        json_str(f, v[i].kernel);
        fprintf(f, ", \"measured_us\": %.6g, \"source\": ", v[i].measured_us);
        json_str(f, v[i].source);
        fprintf(f, ", \"dsk_version\": \"%s\"}", dsk_version());
    }
    fprintf(f, "\n]}\n");
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: writing '%s': %s", path, strerror(e));
    }
    return DSK_OK;
}

dsk_status dsk_tune_cache_store(const dsk_tune_cache_entry *e, int *recovered)
{
    if (!e) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_store: e is NULL");
    if (recovered) *recovered = 0;
    if (!e->gpu[0] || !e->driver[0] || !e->op[0] || !e->shape_class[0] || !e->kernel[0])
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_cache_store: gpu, driver, op, shape_class and kernel "
                                             "must be non-empty");
    char dir[4000], path[4100], lockp[4200];
    DSK_TRY(cache_dir(dir, sizeof dir));
    DSK_TRY(mkdirs(dir));
    snprintf(path, sizeof path, "%s/%s", dir, CACHE_FILE);
    snprintf(lockp, sizeof lockp, "%s.lock", path);
    int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: cannot open '%s': %s", lockp, strerror(errno));
    if (flock(lfd, LOCK_EX)) {
        close(lfd);
        return dsk_fail(DSK_ERR_IO, "dsk_tune_cache_store: cannot lock '%s': %s", lockp, strerror(errno));
    }
    dsk_tune_cache_entry *v;
    int n, missing;
    dsk_status st = load(path, &v, &n, &missing);
    if (st == DSK_ERR_FORMAT) {
        char aside[4200];
        snprintf(aside, sizeof aside, "%s.corrupt", path);
        rename(path, aside);
        if (recovered) *recovered = 1;
        v = NULL;
        n = 0;
        st = DSK_OK;
    }
    if (st == DSK_OK) {
        dsk_tune_cache_entry *nv = realloc(v, sizeof *nv * (n + 1));
        if (!nv) {
            free(v);
            st = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_tune_cache_store: out of memory");
        } else {
            v = nv;
            int w = 0;
            for (int i = 0; i < n; i++)
                if (!same_key(&v[i], e)) v[w++] = v[i];
            v[w++] = *e;
            st = write_atomic(dir, path, v, w);
            free(v);
        }
    }
    flock(lfd, LOCK_UN);
    close(lfd);
    return st;
}

dsk_status dsk_tune_choose(const dsk_gpu *g, const char *driver, const dsk_tune_gemm_shape *s,
                           dsk_gemm_tile *out, int *from_cache, char *cache_warning, size_t warning_len)
{
    if (!g || !s || !out || !from_cache) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_tune_choose: NULL argument");
    *from_cache = 0;
    if (cache_warning && warning_len) cache_warning[0] = 0;
    DSK_TRY(dsk_tune_check_shape("dsk_tune_choose", s));
    dsk_arch arch;
    DSK_TRY(dsk_gpu_ptx_arch(g, &arch));
    char cls[64];
    dsk_tune_shape_class(s, cls, sizeof cls);
    dsk_tune_cache_entry e;
    int found = 0;
    dsk_status st = dsk_tune_cache_lookup(g->name, driver ? driver : "none", "gemm_fp8", cls, &e, &found);
    if (st && cache_warning) snprintf(cache_warning, warning_len, "%s", dsk_last_error());
    if (st == DSK_OK && found) {
        dsk_gemm_tile t;
        dsk_gemm_plan p;
        if (dsk_gemm_tile_parse(e.kernel, &t) == DSK_OK && t.arch == arch && t.layout == s->layout &&
            dsk_ptx_gemm_plan(&t, (size_t)(g->smem_block_kb.v * 1024), &p) == DSK_OK && p.legal) {
            *out = t;
            *from_cache = 1;
            return DSK_OK;
        }
        if (cache_warning)
            snprintf(cache_warning, warning_len, "tuning cache entry '%s' for %s %s is not a legal %s kernel; ignored",
                     e.kernel, g->name, cls, g->arch);
    }
    dsk_clear_error();
    dsk_tune_result r;
    DSK_TRY(dsk_tune_gemm(g, s, &r));
    *out = r.cand[0].tile;
    dsk_tune_result_free(&r);
    return DSK_OK;
}
