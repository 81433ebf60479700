/* tests/tune/test_cache.c: the tuning cache in a temporary DSK_CACHE_DIR: store and
 * look up, replacement, corrupt files reported with file and line and ignored, the
 * cache-first rule of dsk_tune_choose, and concurrent writers losing nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/harness/harness.h"

static char dir[64], path[128];

static dsk_tune_cache_entry entry(const char *gpu, const char *cls, const char *kernel, double us)
{
    dsk_tune_cache_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.gpu, sizeof e.gpu, "%s", gpu);
    snprintf(e.driver, sizeof e.driver, "550.54");
    snprintf(e.op, sizeof e.op, "gemm_fp8");
    snprintf(e.shape_class, sizeof e.shape_class, "%s", cls);
    snprintf(e.kernel, sizeof e.kernel, "%s", kernel);
    e.measured_us = us;
    snprintf(e.source, sizeof e.source, "measured");
    return e;
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void check_paths(void)
{
    char buf[256];
    setenv("DSK_CACHE_DIR", dir, 1);
    DSK_T_OK(dsk_tune_cache_path(buf, sizeof buf));
    DSK_T_CHECK(!strcmp(buf, path), "DSK_CACHE_DIR wins: %s", buf);
    unsetenv("DSK_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    DSK_T_OK(dsk_tune_cache_path(buf, sizeof buf));
    DSK_T_CHECK(!strcmp(buf, "/xdg/dsk/tune.json"), "XDG_CACHE_HOME: %s", buf);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    DSK_T_OK(dsk_tune_cache_path(buf, sizeof buf));
    DSK_T_CHECK(!strcmp(buf, "/home/u/.cache/dsk/tune.json"), "HOME: %s", buf);
    setenv("DSK_CACHE_DIR", dir, 1);
    dsk_tune_gemm_shape s = {100, 7168, 2048, 1, DSK_GEMM_DENSE};
    dsk_tune_shape_class(&s, buf, sizeof buf);
    DSK_T_CHECK(!strcmp(buf, "dense:m<=128:n=7168:k=2048"), "shape class %s", buf);
}

static void check_store_lookup(void)
{
    dsk_tune_cache_entry got;
    int found = 1;
    DSK_T_OK(dsk_tune_cache_lookup("h800", "550.54", "gemm_fp8", "dense:m<=128:n=7168:k=2048", &got, &found));
    DSK_T_CHECK(!found, "no file: not found, no error");
    dsk_tune_cache_entry a = entry("h800", "dense:m<=128:n=7168:k=2048", "gemm_fp8_sm90a_64x64_s6_c1", 9.5);
    dsk_tune_cache_entry b = entry("h20", "dense:m<=128:n=7168:k=2048", "gemm_fp8_sm90a_64x184_s5_c1", 20.25);
    int rec = 1;
    DSK_T_OK(dsk_tune_cache_store(&a, &rec));
    DSK_T_CHECK(rec == 0, "nothing to recover");
    DSK_T_OK(dsk_tune_cache_store(&b, NULL));
    DSK_T_OK(dsk_tune_cache_lookup("h800", "550.54", "gemm_fp8", a.shape_class, &got, &found));
    DSK_T_CHECK(found && !strcmp(got.kernel, a.kernel) && got.measured_us == 9.5, "h800 entry back: %s", got.kernel);
    DSK_T_OK(dsk_tune_cache_lookup("h800", "535.0", "gemm_fp8", a.shape_class, &got, &found));
    DSK_T_CHECK(!found, "another driver version is another key");
    a.measured_us = 8.75;
    snprintf(a.kernel, sizeof a.kernel, "gemm_fp8_sm90a_64x56_s7_c1");
    DSK_T_OK(dsk_tune_cache_store(&a, NULL));
    DSK_T_OK(dsk_tune_cache_lookup("h800", "550.54", "gemm_fp8", a.shape_class, &got, &found));
    DSK_T_CHECK(found && !strcmp(got.kernel, "gemm_fp8_sm90a_64x56_s7_c1") && got.measured_us == 8.75, "replaced");
    DSK_T_OK(dsk_tune_cache_lookup("h20", "550.54", "gemm_fp8", b.shape_class, &got, &found));
    DSK_T_CHECK(found && got.measured_us == 20.25, "other entry kept");
    dsk_tune_cache_entry bad = entry("", "x", "k", 1);
    DSK_T_ERR(dsk_tune_cache_store(&bad, NULL), DSK_ERR_INVALID_ARG, "must be non-empty");
}

static void check_choose(void)
{
    const dsk_gpu *g;
    dsk_gpu_find("h800", &g);
    dsk_tune_gemm_shape s = {100, 7168, 2048, 1, DSK_GEMM_DENSE};
    dsk_gemm_tile t;
    int from_cache = -1;
    char warn[512];
    /* Cache first: the stored winner (not the model's best). */
    DSK_T_OK(dsk_tune_choose(g, "550.54", &s, &t, &from_cache, warn, sizeof warn));
    char name[96];
    dsk_gemm_tile_name(&t, name, sizeof name);
    DSK_T_CHECK(from_cache == 1 && !strcmp(name, "gemm_fp8_sm90a_64x56_s7_c1") && !warn[0], "from cache: %s", name);
    /* Model second, deterministic: another driver has no entry. */
    DSK_T_OK(dsk_tune_choose(g, "535.0", &s, &t, &from_cache, warn, sizeof warn));
    dsk_tune_result r;
    DSK_T_OK(dsk_tune_gemm(g, &s, &r));
    char best[96];
    dsk_gemm_tile_name(&t, name, sizeof name);
    dsk_gemm_tile_name(&r.cand[0].tile, best, sizeof best);
    DSK_T_CHECK(from_cache == 0 && !strcmp(name, best), "model's best %s, got %s", best, name);
    dsk_tune_result_free(&r);
    /* An entry that is not a legal kernel for the GPU is ignored with a warning. */
    dsk_tune_cache_entry e = entry("h800", "dense:m<=128:n=7168:k=2048", "gemm_fp8_sm89_64x64_s3", 1);
    snprintf(e.driver, sizeof e.driver, "1.0");
    DSK_T_OK(dsk_tune_cache_store(&e, NULL));
    DSK_T_OK(dsk_tune_choose(g, "1.0", &s, &t, &from_cache, warn, sizeof warn));
    DSK_T_CHECK(from_cache == 0 && strstr(warn, "not a legal sm_90a kernel"), "illegal entry ignored: %s", warn);
}

static void check_corrupt(void)
{
    dsk_tune_cache_entry got;
    int found;
    struct { const char *text, *msg; } bad[] = {
        {"{\"dsk_tune_cache\": 1, \"entries\": [\n  {\"gpu\": \"h800\",\n  \"driver\": }]}", "tune.json: line 3, column 13: unexpected character (expected a value)"},
        {"", "tune.json: line 1, column 1: unexpected end of text (expected a value)"},
        {"{\"dsk_tune_cache\": 2, \"entries\": []}", "tune.json: line 1: expected \"dsk_tune_cache\": 1"},
        {"{\"dsk_tune_cache\": 1, \"entries\": [\n\n{\"gpu\": \"h800\"}]}", "tune.json: line 3: entry lacks string member \"driver\""},
        {"{\"dsk_tune_cache\": 1, \"entries\": {}}", "expected an \"entries\" array"},
        {"{\"dsk_tune_cache\": 1, \"entries\": [1]}", "entry 0 is not an object"},
        {"{\"dsk_tune_cache\": 1, \"entries\": []} trailing", "text after the JSON value"},
        {"{\"dsk_tune_cache\": 1, \"entries\": [\"\\q\"]}", "line 1, column 38: invalid escape character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text);
        DSK_T_ERR(dsk_tune_cache_lookup("h800", "550.54", "gemm_fp8", "x", &got, &found), DSK_ERR_FORMAT, bad[i].msg);
        DSK_T_CHECK(strstr(dsk_last_error(), "corrupt tuning cache, ignored") != NULL, "message says ignored: %s",
                    dsk_last_error());
    }
    /* dsk_tune_choose goes on with the model and passes the reason on. */
    const dsk_gpu *g;
    dsk_gpu_find("h20", &g);
    dsk_tune_gemm_shape s = {64, 2112, 7168, 1, DSK_GEMM_DENSE};
    dsk_gemm_tile t;
    int from_cache = -1;
    char warn[512];
    DSK_T_OK(dsk_tune_choose(g, "550.54", &s, &t, &from_cache, warn, sizeof warn));
    DSK_T_CHECK(from_cache == 0 && strstr(warn, "tune.json: line 1, column 38"), "corrupt cache ignored with reason: %s", warn);
    /* The next writer moves the corrupt file aside and starts a fresh one. */
    int rec = 0;
    dsk_tune_cache_entry a = entry("h20", "dense:m<=64:n=2112:k=7168", "gemm_fp8_sm90a_64x128_s6_c1", 3);
    DSK_T_OK(dsk_tune_cache_store(&a, &rec));
    char aside[160];
    snprintf(aside, sizeof aside, "%s.corrupt", path);
    struct stat st;
    DSK_T_CHECK(rec == 1 && stat(aside, &st) == 0, "corrupt file moved to %s", aside);
    DSK_T_OK(dsk_tune_cache_lookup("h20", "550.54", "gemm_fp8", a.shape_class, &got, &found));
    DSK_T_CHECK(found, "fresh cache readable");
}

static void check_concurrent(void)
{
    /* 4 processes x 10 entries each, all storing at once: the file stays valid and none is lost. */
    unlink(path);
    pid_t pids[4];
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            for (int i = 0; i < 10; i++) {
                char cls[64];
                snprintf(cls, sizeof cls, "dense:m<=%d:n=%d:k=128", 1 << p, 8 * (i + 1));
                dsk_tune_cache_entry e = entry("h800", cls, "gemm_fp8_sm90a_64x64_s4_c1", p * 100 + i);
                if (dsk_tune_cache_store(&e, NULL) != DSK_OK) _exit(1);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < 4; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        DSK_T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d succeeded", p);
    }
    int all = 1;
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < 10; i++) {
            char cls[64];
            snprintf(cls, sizeof cls, "dense:m<=%d:n=%d:k=128", 1 << p, 8 * (i + 1));
            dsk_tune_cache_entry got;
            int found = 0;
            if (dsk_tune_cache_lookup("h800", "550.54", "gemm_fp8", cls, &got, &found) != DSK_OK || !found ||
                got.measured_us != p * 100 + i)
                all = 0;
        }
    DSK_T_CHECK(all, "all 40 concurrent entries present: %s", dsk_last_error());
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dsk_cache_XXXXXX");
    if (!mkdtemp(dir)) dsk_t_skip("mkdtemp failed");
    /* A nested directory that does not exist yet: store creates it. */
    strcat(dir, "/nested/dsk");
    snprintf(path, sizeof path, "%s/tune.json", dir);
    check_paths();
    check_store_lookup();
    check_choose();
    check_corrupt();
    check_concurrent();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strlen(dir) - strlen("/nested/dsk")), dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    return dsk_t_finish();
}
