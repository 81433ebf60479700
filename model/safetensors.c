/* model/safetensors.c: the safetensors reader and writer of model/safetensors.h. */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/json.h"

static const struct { const char *name; dsk_dtype dtype; size_t size; } st_dtypes[] = {
    {"F8_E4M3", DSK_E4M3, 1}, {"F8_E5M2", DSK_E5M2, 1}, {"BF16", DSK_BF16, 2},
    {"F16", DSK_F16, 2},      {"F32", DSK_F32, 4},      {"I32", DSK_I32, 4},
    {"I64", DSK_I64, 8},      {"U8", DSK_U8, 1},
};
#define N_ST_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

int dsk_st_dtype_from_name(const char *s, dsk_dtype *dtype, size_t *elem_size)
{
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (!strcmp(s, st_dtypes[i].name)) {
            if (dtype) *dtype = st_dtypes[i].dtype;
            if (elem_size) *elem_size = st_dtypes[i].size;
            return 1;
        }
    return 0;
}

const char *dsk_st_dtype_to_name(dsk_dtype t)
{
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dtype == t)
            return st_dtypes[i].name;
    return NULL;
}

static const char *dtype_static_name(const char *s)
{
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (!strcmp(s, st_dtypes[i].name))
            return st_dtypes[i].name;
    return "?";
}

/* ---- parsing one file ---------------------------------------------------------- */

typedef struct range { size_t begin, end; int tensor; } range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static dsk_status push_tensor(dsk_safetensors *st, dsk_st_tensor *t)
{
    if ((st->n_tensors & (st->n_tensors - 1)) == 0) { /* grow at powers of two */
        size_t cap = st->n_tensors ? (size_t)st->n_tensors * 2 : 16;
        dsk_st_tensor *nt = realloc(st->tensors, cap * sizeof *nt);
        if (!nt)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        st->tensors = nt;
    }
    st->tensors[st->n_tensors++] = *t;
    return DSK_OK;
}

static dsk_status parse_entry(const char *source, const char *name, const dsk_json *e,
                              size_t data_size, const uint8_t *data, int file,
                              dsk_st_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (e->type != DSK_JSON_OBJECT)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" (line %d): entry is a %s, expected an object",
                        source, name, e->line, dsk_json_type_name(e->type));
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->keys[i], "dtype") && strcmp(e->keys[i], "shape") &&
            strcmp(e->keys[i], "data_offsets"))
            return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": unknown key \"%s\" (expected dtype, shape, data_offsets)",
                            source, name, e->keys[i]);
    const dsk_json *dt = dsk_json_get(e, "dtype"), *sh = dsk_json_get(e, "shape"),
                   *off = dsk_json_get(e, "data_offsets");
    if (!dt || dt->type != DSK_JSON_STRING)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" %s", source, name,
                        dt ? "is not a string" : "is missing");
    size_t esize;
    if (!dsk_st_dtype_from_name(dt->str, &t->dtype, &esize))
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": unsupported dtype \"%s\" (known: F8_E4M3, F8_E5M2, BF16, F16, F32, I32, I64, U8)",
                        source, name, dt->str);
    t->dtype_name = dtype_static_name(dt->str);
    if (!sh || sh->type != DSK_JSON_ARRAY)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" %s", source, name,
                        sh ? "is not an array" : "is missing");
    if (sh->n > DSK_ST_MAX_RANK)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": rank %d exceeds the supported %d",
                        source, name, sh->n, DSK_ST_MAX_RANK);
    t->rank = sh->n;
    size_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < sh->n; i++) {
        const dsk_json *d = &sh->items[i];
        if (d->type != DSK_JSON_NUMBER || !d->is_int || d->i64 < 0)
            return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer",
                            source, name, i);
        t->shape[i] = d->i64;
        if (d->i64 != 0 && numel > SIZE_MAX / (uint64_t)d->i64)
            overflow = 1;
        else
            numel *= (size_t)d->i64;
    }
    if (overflow || numel > SIZE_MAX / esize)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": shape's byte count overflows", source, name);
    if (!off || off->type != DSK_JSON_ARRAY || off->n != 2)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" %s", source, name,
                        off ? "must be an array [begin, end]" : "is missing");
    for (int i = 0; i < 2; i++)
        if (off->items[i].type != DSK_JSON_NUMBER || !off->items[i].is_int || off->items[i].i64 < 0)
            return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": data_offsets[%d] is not a non-negative integer",
                            source, name, i);
    uint64_t b = (uint64_t)off->items[0].i64, en = (uint64_t)off->items[1].i64;
    if (b > en)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] has begin > end",
                        source, name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data buffer (%zu bytes)",
                        source, name, (unsigned long long)b, (unsigned long long)en, data_size);
    if (en - b != numel * esize)
        return dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\": %llu bytes in data_offsets but dtype %s x shape needs %zu",
                        source, name, (unsigned long long)(en - b), dt->str, numel * esize);
    t->data = data + b;
    t->nbytes = (size_t)(en - b);
    t->file = file;
    return DSK_OK;
}

dsk_status dsk_st_parse_buffer(dsk_safetensors *st, const uint8_t *buf, size_t size,
                               const char *source, int file)
{
    if (size < 8)
        return dsk_fail(DSK_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length (truncated?)",
                        source, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    if (n > DSK_ST_MAX_HEADER)
        return dsk_fail(DSK_ERR_FORMAT, "%s: header length %llu is absurd (limit %u bytes)", source,
                        (unsigned long long)n, DSK_ST_MAX_HEADER);
    if (n > size - 8)
        return dsk_fail(DSK_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                        source, (unsigned long long)n, size);
    if (n < 2 || buf[8] != '{')
        return dsk_fail(DSK_ERR_FORMAT, "%s: header does not start with '{'", source);
    dsk_json *h;
    DSK_TRY(dsk_json_parse((const char *)buf + 8, (size_t)n, source, &h));
    dsk_status s = DSK_OK;
    size_t data_size = size - 8 - (size_t)n;
    const uint8_t *data = buf + 8 + n;
    int first = st->n_tensors;
    range *rg = NULL;
    if (h->type != DSK_JSON_OBJECT) {
        s = dsk_fail(DSK_ERR_FORMAT, "%s: header is a %s, expected an object", source,
                     dsk_json_type_name(h->type));
        goto done;
    }
    for (int i = 0; i < h->n && s == DSK_OK; i++) {
        const char *name = h->keys[i];
        const dsk_json *e = &h->items[i];
        if (!strcmp(name, "__metadata__")) {
            if (e->type != DSK_JSON_OBJECT) {
                s = dsk_fail(DSK_ERR_FORMAT, "%s: \"__metadata__\" is not an object", source);
                break;
            }
            for (int j = 0; j < e->n; j++)
                if (e->items[j].type != DSK_JSON_STRING) {
                    s = dsk_fail(DSK_ERR_FORMAT, "%s: \"__metadata__\".\"%s\" is not a string",
                                 source, e->keys[j]);
                    break;
                }
            continue;
        }
        dsk_st_tensor t;
        s = parse_entry(source, name, e, data_size, data, file, &t);
        if (s != DSK_OK)
            break;
        t.name = strdup(name);
        if (!t.name) {
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
            break;
        }
        s = push_tensor(st, &t);
        if (s != DSK_OK)
            free(t.name);
    }
    if (s != DSK_OK)
        goto done;
    /* Ranges: sorted, no overlaps, no holes; they must cover the data buffer exactly. */
    int nt = st->n_tensors - first;
    rg = malloc(((size_t)nt + 1) * sizeof *rg);
    if (!rg) {
        s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        const dsk_st_tensor *t = &st->tensors[first + i];
        rg[i].begin = (size_t)(t->data - data);
        rg[i].end = rg[i].begin + t->nbytes;
        rg[i].tensor = first + i;
    }
    qsort(rg, (size_t)nt, sizeof *rg, cmp_range);
    size_t at = 0;
    for (int i = 0; i < nt; i++) {
        if (rg[i].begin < at) {
            int prev = i - 1; /* no holes so far: `at` is the previous range's end */
            s = dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" [%zu, %zu) overlaps tensor \"%s\" [%zu, %zu)",
                         source, st->tensors[rg[i].tensor].name, rg[i].begin, rg[i].end,
                         st->tensors[rg[prev].tensor].name, rg[prev].begin, rg[prev].end);
            goto done;
        }
        if (rg[i].begin > at) {
            s = dsk_fail(DSK_ERR_FORMAT, "%s: bytes [%zu, %zu) of the data buffer belong to no tensor (before \"%s\")",
                         source, at, rg[i].begin, st->tensors[rg[i].tensor].name);
            goto done;
        }
        at = rg[i].end;
    }
    if (at != data_size)
        s = dsk_fail(DSK_ERR_FORMAT, "%s: bytes [%zu, %zu) at the end of the data buffer belong to no tensor",
                     source, at, data_size);
done:
    if (s != DSK_OK) {
        for (int i = first; i < st->n_tensors; i++)
            free(st->tensors[i].name);
        st->n_tensors = first;
    }
    free(rg);
    dsk_json_free(h);
    return s;
}

/* ---- index.json ------------------------------------------------------------------ */

void dsk_st_index_free(dsk_st_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < ix->n_files; i++)
        free(ix->files[i]);
    for (int i = 0; i < ix->n_entries; i++)
        free(ix->names[i]);
    free(ix->files);
    free(ix->names);
    free(ix->file_of);
    memset(ix, 0, sizeof *ix);
}

dsk_status dsk_st_parse_index(const char *text, size_t len, const char *source, dsk_st_index *ix)
{
    memset(ix, 0, sizeof *ix);
    dsk_json *j;
    DSK_TRY(dsk_json_parse(text, len, source, &j));
    dsk_status s = DSK_OK;
    const dsk_json *wm = dsk_json_get(j, "weight_map");
    if (j->type != DSK_JSON_OBJECT || !wm || wm->type != DSK_JSON_OBJECT) {
        s = dsk_fail(DSK_ERR_FORMAT, "%s: expected an object with a \"weight_map\" object", source);
        goto done;
    }
    ix->names = calloc((size_t)wm->n + 1, sizeof *ix->names);
    ix->file_of = calloc((size_t)wm->n + 1, sizeof *ix->file_of);
    ix->files = calloc((size_t)wm->n + 1, sizeof *ix->files);
    if (!ix->names || !ix->file_of || !ix->files) {
        s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        goto done;
    }
    for (int i = 0; i < wm->n; i++) {
        const dsk_json *f = &wm->items[i];
        if (f->type != DSK_JSON_STRING || f->str_len == 0 || strlen(f->str) != f->str_len) {
            s = dsk_fail(DSK_ERR_FORMAT, "%s: weight_map \"%s\" (line %d): file name must be a non-empty string",
                         source, wm->keys[i], f->line);
            goto done;
        }
        if (strchr(f->str, '/') || strchr(f->str, '\\') || !strcmp(f->str, "..") || !strcmp(f->str, ".")) {
            s = dsk_fail(DSK_ERR_FORMAT, "%s: weight_map \"%s\": file \"%s\" must be a plain name in the checkpoint directory",
                         source, wm->keys[i], f->str);
            goto done;
        }
        /* Shards are few (163 for V3): a linear search over distinct files is fine. */
        int k = 0;
        while (k < ix->n_files && strcmp(ix->files[k], f->str))
            k++;
        if (k == ix->n_files) {
            ix->files[k] = strdup(f->str);
            if (!ix->files[k]) {
                s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
                goto done;
            }
            ix->n_files++;
        }
        ix->names[i] = strdup(wm->keys[i]);
        if (!ix->names[i]) {
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
            goto done;
        }
        ix->n_entries = i + 1;
        ix->file_of[i] = k;
    }
done:
    if (s != DSK_OK)
        dsk_st_index_free(ix);
    dsk_json_free(j);
    return s;
}

/* ---- opening -------------------------------------------------------------------- */

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const dsk_st_tensor *)a)->name, ((const dsk_st_tensor *)b)->name);
}

const dsk_st_tensor *dsk_st_find(const dsk_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    dsk_st_tensor key = {.name = (char *)name};
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, cmp_tensor);
}

void dsk_st_close(dsk_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].mapped)
            munmap((void *)st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    free(st);
}

static dsk_status map_file(const char *path, dsk_st_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dsk_fail(DSK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dsk_fail(DSK_ERR_IO, "%s: not a regular file", path);
    }
    f->path = strdup(path);
    f->size = (size_t)sb.st_size;
    if (!f->path) {
        close(fd);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    if (f->size == 0) {
        close(fd);
        return dsk_fail(DSK_ERR_FORMAT, "%s: file is empty", path);
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return dsk_fail(DSK_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    f->map = m;
    f->mapped = 1;
    return DSK_OK;
}

static dsk_status add_file(dsk_safetensors *st, const char *path)
{
    dsk_st_file *nf = realloc(st->files, ((size_t)st->n_files + 1) * sizeof *nf);
    if (!nf)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    st->files = nf;
    dsk_status s = map_file(path, &st->files[st->n_files]);
    st->n_files++; /* counted even on failure so close() frees what map_file kept */
    if (s != DSK_OK)
        return s;
    const dsk_st_file *f = &st->files[st->n_files - 1];
    return dsk_st_parse_buffer(st, f->map, f->size, f->path, st->n_files - 1);
}

static dsk_status read_small_file(const char *path, size_t limit, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsk_fail(DSK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= limit) {
                free(b);
                fclose(f);
                return dsk_fail(DSK_ERR_FORMAT, "%s: larger than %zu bytes", path, limit);
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (!b)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "%s: out of memory reading", path);
    if (err) {
        free(b);
        return dsk_fail(DSK_ERR_IO, "%s: read error", path);
    }
    *text = b;
    *len = n;
    return DSK_OK;
}

static dsk_status open_sharded(dsk_safetensors *st, const char *dir, const char *index_path)
{
    char *text = NULL;
    size_t len = 0;
    DSK_TRY(read_small_file(index_path, 512u << 20, &text, &len));
    dsk_st_index ix;
    dsk_status s = dsk_st_parse_index(text, len, index_path, &ix);
    free(text);
    if (s != DSK_OK)
        return s;
    int *file_map = calloc((size_t)ix.n_files + 1, sizeof *file_map);
    if (!file_map) {
        dsk_st_index_free(&ix);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    for (int i = 0; i < ix.n_files && s == DSK_OK; i++) {
        size_t pl = strlen(dir) + strlen(ix.files[i]) + 2;
        char *p = malloc(pl);
        if (!p) {
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
            break;
        }
        snprintf(p, pl, "%s/%s", dir, ix.files[i]);
        file_map[i] = st->n_files;
        s = add_file(st, p);
        free(p);
    }
    if (s == DSK_OK) {
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor);
        for (int i = 1; i < st->n_tensors && s == DSK_OK; i++)
            if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
                s = dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" appears in both %s and %s", index_path,
                             st->tensors[i].name, st->files[st->tensors[i - 1].file].path,
                             st->files[st->tensors[i].file].path);
    }
    for (int i = 0; i < ix.n_entries && s == DSK_OK; i++) {
        const dsk_st_tensor *t = dsk_st_find(st, ix.names[i]);
        if (!t)
            s = dsk_fail(DSK_ERR_NOT_FOUND, "%s: tensor \"%s\" is listed in the weight_map but missing from %s/%s",
                         index_path, ix.names[i], dir, ix.files[ix.file_of[i]]);
        else if (t->file != file_map[ix.file_of[i]])
            s = dsk_fail(DSK_ERR_FORMAT, "%s: tensor \"%s\" is mapped to %s but stored in %s", index_path,
                         ix.names[i], ix.files[ix.file_of[i]], st->files[t->file].path);
    }
    if (s == DSK_OK && ix.n_entries != st->n_tensors)
        s = dsk_fail(DSK_ERR_FORMAT, "%s: the shards hold %d tensors but the weight_map lists %d",
                     index_path, st->n_tensors, ix.n_entries);
    free(file_map);
    dsk_st_index_free(&ix);
    return s;
}

dsk_status dsk_st_open(const char *path, dsk_safetensors **out)
{
    if (!path || !out)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_open: path or out is NULL");
    *out = NULL;
    dsk_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
    struct stat sb;
    dsk_status s;
    if (stat(path, &sb) != 0) {
        s = dsk_fail(DSK_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        size_t pl = strlen(path) + 64;
        char *p = malloc(pl);
        if (!p) {
            s = dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors: out of memory");
        } else {
            snprintf(p, pl, "%s/model.safetensors.index.json", path);
            if (access(p, F_OK) == 0) {
                s = open_sharded(st, path, p);
            } else {
                snprintf(p, pl, "%s/model.safetensors", path);
                if (access(p, F_OK) == 0)
                    s = add_file(st, p);
                else
                    s = dsk_fail(DSK_ERR_NOT_FOUND, "%s: neither model.safetensors.index.json nor model.safetensors found",
                                 path);
            }
            free(p);
        }
    } else {
        s = add_file(st, path);
    }
    if (s == DSK_OK)
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor);
    if (s != DSK_OK) {
        dsk_st_close(st);
        return s;
    }
    *out = st;
    return DSK_OK;
}

/* ---- writer ---------------------------------------------------------------------- */

typedef struct wt { char *name; dsk_dtype dtype; int rank; int64_t shape[DSK_ST_MAX_RANK]; size_t nbytes; } wt;

struct dsk_st_writer {
    char *path, *tmp;
    FILE *f;
    int n, cap, next;
    size_t part;          /* bytes of tensor `next` written so far */
    wt *t;
    int began, finished;
};

dsk_status dsk_st_writer_new(const char *path, dsk_st_writer **out)
{
    *out = NULL;
    dsk_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    size_t pl = strlen(path) + 8;
    w->path = strdup(path);
    w->tmp = malloc(pl);
    if (!w->path || !w->tmp) {
        dsk_st_writer_free(w);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    }
    snprintf(w->tmp, pl, "%s.tmp", path);
    *out = w;
    return DSK_OK;
}

dsk_status dsk_st_writer_declare(dsk_st_writer *w, const char *name, dsk_dtype dtype, int rank,
                                 const int64_t *shape)
{
    if (w->began)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_writer_declare: %s: tensors must be declared before the data", name);
    const char *dn = dsk_st_dtype_to_name(dtype);
    if (!dn || rank < 0 || rank > DSK_ST_MAX_RANK)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_writer_declare: %s: dtype %s or rank %d not writable",
                        name, dsk_dtype_name(dtype), rank);
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        wt *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt)
            return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        w->t = nt;
        w->cap = nc;
    }
    wt *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->rank = rank;
    size_t nb = dsk_dtype_size(dtype);
    for (int i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        nb *= (size_t)shape[i];
    }
    t->nbytes = nb;
    w->n++;
    return DSK_OK;
}

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

dsk_status dsk_st_writer_begin_data(dsk_st_writer *w)
{
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *m = open_memstream(&hdr, &hlen);
    if (!m)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    fputs("{\"__metadata__\":{\"format\":\"pt\"}", m);
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wt *t = &w->t[i];
        fputc(',', m);
        put_json_string(m, t->name);
        fprintf(m, ":{\"dtype\":\"%s\",\"shape\":[", dsk_st_dtype_to_name(t->dtype));
        for (int d = 0; d < t->rank; d++)
            fprintf(m, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fprintf(m, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    fputc('}', m);
    /* Pad with spaces (allowed by the format) so the data buffer starts 64-byte aligned. */
    while ((8 + ftell(m)) % 64)
        fputc(' ', m);
    if (fclose(m) != 0 || !hdr) {
        free(hdr);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    }
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        free(hdr);
        return dsk_fail(DSK_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
    }
    uint8_t n8[8];
    for (int i = 0; i < 8; i++)
        n8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(n8, 1, 8, w->f) == 8 && fwrite(hdr, 1, hlen, w->f) == hlen;
    free(hdr);
    if (!ok)
        return dsk_fail(DSK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->began = 1;
    return DSK_OK;
}

dsk_status dsk_st_writer_data(dsk_st_writer *w, const void *data, size_t nbytes)
{
    while (w->began && w->next < w->n && w->t[w->next].nbytes == w->part)
        w->next++, w->part = 0; /* skip empty tensors; close full ones */
    if (!w->began || w->next >= w->n)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_writer_data: no declared tensor left to write");
    const wt *t = &w->t[w->next];
    if (nbytes > t->nbytes - w->part)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_writer_data: tensor \"%s\" has %zu bytes left, given %zu",
                        t->name, t->nbytes - w->part, nbytes);
    if (nbytes && fwrite(data, 1, nbytes, w->f) != nbytes)
        return dsk_fail(DSK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->part += nbytes;
    if (w->part == t->nbytes) {
        w->next++;
        w->part = 0;
    }
    return DSK_OK;
}

dsk_status dsk_st_writer_finish(dsk_st_writer *w)
{
    while (w->began && w->next < w->n && w->t[w->next].nbytes == 0)
        w->next++;
    if (!w->began || w->next != w->n)
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_st_writer_finish: %s: %d of %d tensors written",
                        w->path, w->next, w->n);
    int bad = fclose(w->f) != 0;
    w->f = NULL;
    if (bad)
        return dsk_fail(DSK_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return dsk_fail(DSK_ERR_IO, "%s: rename to %s failed: %s", w->tmp, w->path, strerror(errno));
    w->finished = 1;
    return DSK_OK;
}

void dsk_st_writer_free(dsk_st_writer *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    if (w->began && !w->finished)
        remove(w->tmp);
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    free(w->path);
    free(w->tmp);
    free(w);
}
