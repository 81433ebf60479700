/* model/safetensors.h: safetensors reader (single file or sharded through
 * model.safetensors.index.json) and writer (internal).
 *
 * File format (huggingface/safetensors): 8 bytes little-endian u64 N, then N bytes of
 * JSON header (an object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" object of strings), then the data buffer; offsets are
 * relative to the start of the data buffer.
 *
 * The reader maps each file read-only (mmap, never copied) and validates everything
 * before anything uses it: header length sane (<= 100 MB and inside the file), header
 * a JSON object of well-formed entries (no unknown keys), dtype known, shape non-negative
 * with a product that does not overflow, end - begin == numel * dtype size, every range
 * inside the data buffer, no two ranges overlapping and no byte of the buffer left
 * unindexed. Each error names the file and the tensor (or key). */
#ifndef DSK_MODEL_SAFETENSORS_H
#define DSK_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "dsk/dtype.h"
#include "dsk/status.h"

#define DSK_ST_MAX_RANK 8
#define DSK_ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct dsk_st_tensor {
    char *name;
    dsk_dtype dtype;
    const char *dtype_name;     /* as written in the file: "F8_E4M3", "BF16", "F32", ... */
    int rank;
    int64_t shape[DSK_ST_MAX_RANK];
    const uint8_t *data;        /* inside the file's mapping */
    size_t nbytes;
    int file;                   /* index into dsk_safetensors.files */
} dsk_st_tensor;

typedef struct dsk_st_file {
    char *path;
    const uint8_t *map;         /* the whole file, read-only */
    size_t size;
    int mapped;                 /* 1: map came from mmap (munmap on close) */
} dsk_st_file;

typedef struct dsk_safetensors {
    int n_files;
    dsk_st_file *files;
    int n_tensors;
    dsk_st_tensor *tensors;     /* sorted by name */
} dsk_safetensors;

/* Maps the dtype string of the format to dsk's dtype and element size. Returns 0 for
 * an unknown string. Known: F8_E4M3, F8_E5M2, BF16, F16, F32, I32, I64, U8. */
int dsk_st_dtype_from_name(const char *s, dsk_dtype *dtype, size_t *elem_size);
const char *dsk_st_dtype_to_name(dsk_dtype t);

/* Opens a checkpoint directory (model.safetensors.index.json if present, else
 * model.safetensors) or a single .safetensors file. */
dsk_status dsk_st_open(const char *path, dsk_safetensors **out);
void dsk_st_close(dsk_safetensors *st);

/* Validates one file's bytes held in memory (the fuzz target's entry; the reader uses
 * it on each mapping). Tensors are appended to st with file index `file`. */
dsk_status dsk_st_parse_buffer(dsk_safetensors *st, const uint8_t *buf, size_t size,
                               const char *source, int file);
/* Validates an index.json text: weight_map entries name files without '/' or "..".
 * On success returns the distinct file names (malloc'd array of malloc'd strings) and,
 * for each weight_map entry, its tensor name and file index. */
typedef struct dsk_st_index {
    int n_files;
    char **files;
    int n_entries;
    char **names;
    int *file_of;
} dsk_st_index;
dsk_status dsk_st_parse_index(const char *text, size_t len, const char *source, dsk_st_index *out);
void dsk_st_index_free(dsk_st_index *ix);

/* Finds a tensor by name (binary search), NULL if absent. */
const dsk_st_tensor *dsk_st_find(const dsk_safetensors *st, const char *name);

/* ---- writer: declare every tensor, then write the data in declaration order ---- */
typedef struct dsk_st_writer dsk_st_writer;
dsk_status dsk_st_writer_new(const char *path, dsk_st_writer **out);
dsk_status dsk_st_writer_declare(dsk_st_writer *w, const char *name, dsk_dtype dtype, int rank,
                                 const int64_t *shape);
/* Writes the header; after it the data of the declared tensors, in declaration order:
 * each dsk_st_writer_data call appends bytes to the current tensor (a tensor may be
 * written in several parts) and moves on to the next once it is full. */
dsk_status dsk_st_writer_begin_data(dsk_st_writer *w);
dsk_status dsk_st_writer_data(dsk_st_writer *w, const void *data, size_t nbytes);
/* Checks every tensor was written, closes the file (written to PATH.tmp, then renamed). */
dsk_status dsk_st_writer_finish(dsk_st_writer *w);
/* Frees the writer (removing the partial file if finish was not reached). */
void dsk_st_writer_free(dsk_st_writer *w);

#endif
