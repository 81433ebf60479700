/* tests/model/test_safetensors.c: the safetensors reader and writer (model/safetensors.c):
 * a round trip through the writer, then one check per lie a file can tell (each error
 * names the file and the tensor), and the sharded index's checks. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/harness/harness.h"
#include "model/safetensors.h"

static char dir[64];

/* Writes 8-byte length + header + data to dir/name; returns the path (static buffer). */
static const char *make(const char *name, const char *header, const void *data, size_t n, int64_t hlen_override)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint64_t hl = hlen_override != -1 ? (uint64_t)hlen_override : strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)((hl >> (8 * i)) & 0xff), f);
    fwrite(header, 1, strlen(header), f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

static void bad_file(const char *name, const char *header, size_t n, int64_t hl, dsk_status st, const char *msg)
{
    static uint8_t zeros[4096];
    const char *p = make(name, header, zeros, n, hl);
    dsk_safetensors *s = NULL;
    dsk_t_expect_error(dsk_st_open(p, &s), st, msg, __FILE__, __LINE__, name);
    DSK_T_CHECK(!s, "%s: failed open left a handle", name);
    /* and the message names the file */
    DSK_T_CHECK(strstr(dsk_last_error(), name) != NULL, "%s: message does not name the file: %s", name, dsk_last_error());
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dsk_test_st_XXXXXX");
    if (!mkdtemp(dir))
        dsk_t_skip("cannot create a temporary directory");
    dsk_rng r = dsk_t_rng(1);

    /* ---- round trip ---- */
    float f[6];
    uint16_t h[3];
    uint8_t q[256];
    for (int i = 0; i < 6; i++) f[i] = (float)dsk_rng_normal(&r);
    for (int i = 0; i < 3; i++) h[i] = dsk_f32_to_bf16((float)dsk_rng_normal(&r));
    for (int i = 0; i < 256; i++) q[i] = (uint8_t)dsk_rng_int(&r, 0, 255);
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    dsk_st_writer *w;
    if (DSK_T_OK(dsk_st_writer_new(path, &w))) {
        DSK_T_OK(dsk_st_writer_declare(w, "b.f32", DSK_F32, 2, (int64_t[]){2, 3}));
        DSK_T_OK(dsk_st_writer_declare(w, "a.bf16", DSK_BF16, 1, (int64_t[]){3}));
        DSK_T_OK(dsk_st_writer_declare(w, "c.fp8", DSK_E4M3, 2, (int64_t[]){2, 128}));
        DSK_T_OK(dsk_st_writer_declare(w, "empty", DSK_F32, 2, (int64_t[]){0, 4}));
        DSK_T_OK(dsk_st_writer_begin_data(w));
        DSK_T_OK(dsk_st_writer_data(w, f, sizeof f));
        DSK_T_OK(dsk_st_writer_data(w, h, sizeof h));
        DSK_T_OK(dsk_st_writer_data(w, q, 100)); /* in two parts */
        DSK_T_ERR(dsk_st_writer_data(w, q, 200), DSK_ERR_INVALID_ARG, "has 156 bytes left");
        DSK_T_OK(dsk_st_writer_data(w, q + 100, 156));
        DSK_T_OK(dsk_st_writer_finish(w));
        dsk_st_writer_free(w);
    }
    dsk_safetensors *st;
    if (DSK_T_OK(dsk_st_open(path, &st))) {
        const dsk_st_tensor *a = dsk_st_find(st, "a.bf16"), *b = dsk_st_find(st, "b.f32"),
                            *c = dsk_st_find(st, "c.fp8"), *e = dsk_st_find(st, "empty");
        DSK_T_CHECK(st->n_tensors == 4 && a && b && c && e && !dsk_st_find(st, "nope"), "tensors found");
        DSK_T_CHECK(b && b->dtype == DSK_F32 && b->rank == 2 && b->shape[1] == 3 && !memcmp(b->data, f, sizeof f),
                    "f32 tensor round trip");
        DSK_T_CHECK(a && a->dtype == DSK_BF16 && !memcmp(a->data, h, sizeof h), "bf16 round trip");
        DSK_T_CHECK(c && c->dtype == DSK_E4M3 && !strcmp(c->dtype_name, "F8_E4M3") && !memcmp(c->data, q, 256),
                    "fp8 round trip");
        DSK_T_CHECK(e && e->nbytes == 0, "empty tensor");
        DSK_T_CHECK(((uintptr_t)st->files[0].map + 8 + 0) % 8 == 0 && (uintptr_t)b->data % 64 == 0,
                    "data buffer 64-byte aligned by header padding");
        dsk_st_close(st);
    }

    /* ---- lies ---- */
    const char *ok_hdr = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    {
        char p[128];
        snprintf(p, sizeof p, "%s/short.safetensors", dir);
        FILE *fs = fopen(p, "wb");
        fputs("abcd", fs);
        fclose(fs);
        DSK_T_ERR(dsk_st_open(p, &st), DSK_ERR_FORMAT, "short.safetensors: file is 4 bytes, too short");
    }
    bad_file("trunc.safetensors", ok_hdr, 4, -1, DSK_ERR_FORMAT, "\"t\": data_offsets [0, 8] run past the end");
    bad_file("hlen_past.safetensors", ok_hdr, 8, 100000, DSK_ERR_FORMAT, "runs past the end of the file");
    bad_file("hlen_absurd.safetensors", ok_hdr, 8, (int64_t)1 << 40, DSK_ERR_FORMAT, "is absurd");
    bad_file("notobj.safetensors", "[1,2]", 0, -1, DSK_ERR_FORMAT, "does not start with '{'");
    bad_file("badjson.safetensors", "{\"t\":}", 0, -1, DSK_ERR_FORMAT, "line 1");
    bad_file("past.safetensors", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1,
             DSK_ERR_FORMAT, "\"t\": data_offsets [0, 16] run past the end of the data buffer (8 bytes)");
    bad_file("overlap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, -1, DSK_ERR_FORMAT,
             "tensor \"b\" [4, 12) overlaps tensor \"a\" [0, 8)");
    bad_file("gap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, DSK_ERR_FORMAT,
             "bytes [0, 4) of the data buffer belong to no tensor");
    bad_file("tail.safetensors", ok_hdr, 12, -1, DSK_ERR_FORMAT, "at the end of the data buffer belong to no tensor");
    bad_file("count.safetensors", "{\"t\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4, -1,
             DSK_ERR_FORMAT, "\"t\": 4 bytes in data_offsets but dtype BF16 x shape needs 8");
    bad_file("dtype.safetensors", "{\"t\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, -1,
             DSK_ERR_FORMAT, "\"t\": unsupported dtype \"F4\"");
    bad_file("negshape.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, -1,
             DSK_ERR_FORMAT, "shape[0] is not a non-negative integer");
    bad_file("overflow.safetensors",
             "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0, -1,
             DSK_ERR_FORMAT, "byte count overflows");
    bad_file("order.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, -1,
             DSK_ERR_FORMAT, "begin > end");
    bad_file("nodtype.safetensors", "{\"t\":{\"shape\":[0],\"data_offsets\":[0,0]}}", 0, -1, DSK_ERR_FORMAT,
             "\"t\": \"dtype\" is missing");
    bad_file("extra.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":1}}", 0, -1,
             DSK_ERR_FORMAT, "unknown key \"x\"");
    bad_file("offs.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0]}}", 0, -1,
             DSK_ERR_FORMAT, "must be an array [begin, end]");
    bad_file("meta.safetensors", "{\"__metadata__\":{\"a\":1}}", 0, -1, DSK_ERR_FORMAT, "is not a string");
    bad_file("rank.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
             -1, DSK_ERR_FORMAT, "rank 9 exceeds");
    bad_file("ffff.safetensors", "", 0, -2, DSK_ERR_FORMAT, "is absurd"); /* length 2^64 - 2 */
    {
        char p[128];
        snprintf(p, sizeof p, "%s/zero.safetensors", dir);
        FILE *fz = fopen(p, "wb");
        fclose(fz);
        DSK_T_ERR(dsk_st_open(p, &st), DSK_ERR_FORMAT, "file is empty");
    }

    /* ---- sharded ---- */
    char sd[128], ip[160];
    snprintf(sd, sizeof sd, "%s/sharded", dir);
    mkdir(sd, 0777);
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", sd);
    float v2[2] = {1, 2};
    char p1[160];
    snprintf(p1, sizeof p1, "%s/s1.safetensors", sd);
    make("sharded/s1.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", v2, 8, -1);
    make("sharded/s2.safetensors", "{\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", v2, 8, -1);
    make("sharded/s3.safetensors",
         "{\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", v2, 8, -1);
    struct { const char *index, *msg; dsk_status st; } ix[] = {
        {"{\"weight_map\":{\"x\":\"s1.safetensors\",\"y\":\"s2.safetensors\"}}", NULL, DSK_OK},
        {"{\"weight_map\":{\"x\":\"s1.safetensors\",\"y\":\"s1.safetensors\"}}",
         "\"y\" is listed in the weight_map but missing", DSK_ERR_NOT_FOUND},
        {"{\"weight_map\":{\"z\":\"s3.safetensors\"}}", "the shards hold 2 tensors but the weight_map lists 1",
         DSK_ERR_FORMAT},
        {"{\"weight_map\":{\"x\":\"../s1.safetensors\"}}", "must be a plain name", DSK_ERR_FORMAT},
        {"{\"weight_map\":{\"x\":\"s4.safetensors\"}}", "s4.safetensors: cannot open", DSK_ERR_IO},
        {"{\"weight_map\":{\"x\":1}}", "file name must be a non-empty string", DSK_ERR_FORMAT},
        {"{\"metadata\":{}}", "\"weight_map\"", DSK_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof ix / sizeof ix[0]; i++) {
        FILE *fi = fopen(ip, "w");
        fputs(ix[i].index, fi);
        fclose(fi);
        dsk_safetensors *s2 = NULL;
        dsk_status got = dsk_st_open(sd, &s2);
        if (ix[i].st == DSK_OK) {
            if (DSK_T_OK(got)) {
                DSK_T_CHECK(s2->n_files == 2 && dsk_st_find(s2, "x") && dsk_st_find(s2, "y") &&
                                dsk_st_find(s2, "y")->file != dsk_st_find(s2, "x")->file,
                            "sharded: both tensors, two files");
                dsk_st_close(s2);
            }
        } else {
            dsk_t_expect_error(got, ix[i].st, ix[i].msg, __FILE__, __LINE__, ix[i].index);
        }
    }
    make("sharded/s2.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", v2, 8, -1);
    FILE *fi = fopen(ip, "w");
    fputs("{\"weight_map\":{\"x\":\"s1.safetensors\",\"y\":\"s2.safetensors\"}}", fi);
    fclose(fi);
    DSK_T_ERR(dsk_st_open(sd, &st), DSK_ERR_FORMAT, "tensor \"x\" appears in both");
    DSK_T_ERR(dsk_st_open(dir, &st), DSK_ERR_NOT_FOUND, "neither model.safetensors.index.json nor model.safetensors");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return dsk_t_finish();
}
