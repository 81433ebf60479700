/* autotune/gpu_table.c: the GPU table: parsing the table format (built-in text and
 * --gpus-file), lookups by name or alias, and the values derived from a GPU's row
 * (per-SM rates, emitter arch, emulator target).
 *
 * Format (docs/MODEL.md): '#' starts a comment line; "[name]" opens a GPU; inside it,
 * "key = value" lines. Numeric keys take "number [source]" (the source is optional in
 * user files and recorded as "user: FILE:LINE" when absent). */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"
#include "dsk/tune.h"

#define DSK_GPU_MAX 64

typedef struct num_key {
    const char *key;
    size_t off;        /* offset of the dsk_gpu_num in dsk_gpu */
    double lo, hi;     /* accepted range (inclusive) */
} num_key;

#define NUM(k, lo, hi) {#k, offsetof(dsk_gpu, k), lo, hi}
static const num_key num_keys[] = {
    NUM(sms, 1, 4096),          NUM(clock_mhz, 100, 10000),
    NUM(fp8_tflops, 0, 1e6),    NUM(bf16_tflops, 0.001, 1e6),
    NUM(fp32_tflops, 0.001, 1e6), NUM(mem_gb, 0.001, 1e6),
    NUM(mem_gbps, 1, 1e7),      NUM(l2_mb, 0, 1e5),
    NUM(smem_sm_kb, 1, 1e5),    NUM(smem_block_kb, 1, 1e5),
    NUM(regs_sm, 1024, 1e7),    NUM(threads_sm, 32, 1e5),
    NUM(threads_block, 32, 1e5), NUM(blocks_sm, 1, 1024),
    NUM(link_gbps, 0, 1e6),
    NUM(cal_gemm_fp8, 0.01, 1), NUM(cal_gemm_bf16, 0.01, 1),
    NUM(cal_attn, 0.01, 1),     NUM(cal_mla, 0.01, 1),
    NUM(cal_mem, 0.01, 1),
    NUM(l2_usable, 0, 1),       NUM(mem_latency_ns, 1, 1e5),
    NUM(launch_us, 0, 1e4),     NUM(band, 0, 0.99),
};
#undef NUM
#define N_NUM ((int)(sizeof num_keys / sizeof num_keys[0]))

static const char *str_keys[] = {"description", "aliases", "vendor", "arch", "base"};
#define N_STR ((int)(sizeof str_keys / sizeof str_keys[0]))

typedef struct gpu_table {
    int n;
    dsk_gpu g[DSK_GPU_MAX];
} gpu_table;

static gpu_table table;
static int table_ready;

static dsk_gpu_num *num_at(dsk_gpu *g, int i) { return (dsk_gpu_num *)((char *)g + num_keys[i].off); }

static void lower(char *s) { for (; *s; s++) *s = (char)tolower((unsigned char)*s); }

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int find_in(const gpu_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++) {
        if (!strcasecmp(t->g[i].name, name)) return i;
        char al[sizeof t->g[i].aliases];
        snprintf(al, sizeof al, "%s", t->g[i].aliases);
        for (char *sv, *w = strtok_r(al, " ", &sv); w; w = strtok_r(NULL, " ", &sv))
            if (!strcasecmp(w, name)) return i;
    }
    return -1;
}

/* Per-section parse state: which keys the section gave (to check completeness). */
typedef struct section {
    int idx;            /* index in the staging table */
    int line;
    int is_new;
    int has_base;
    unsigned char given_num[N_NUM];
    unsigned char given_str[N_STR];
} section;

static dsk_status finish_section(const gpu_table *t, const section *s, const char *src)
{
    if (s->idx < 0 || !s->is_new || s->has_base) return DSK_OK;
    const dsk_gpu *g = &t->g[s->idx];
    for (int i = 0; i < N_NUM; i++)
        if (!s->given_num[i])
            return dsk_fail(DSK_ERR_FORMAT,
                            "dsk_gpu_load_file: %s:%d: new GPU [%s] lacks key '%s' (give every "
                            "key, or 'base = KNOWN_GPU' to start from a known one)",
                            src, s->line, g->name, num_keys[i].key);
    for (int i = 0; i < 4; i++)  /* description, aliases, vendor, arch */
        if (i != 1 && !s->given_str[i])
            return dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: new GPU [%s] lacks key '%s'",
                            src, s->line, g->name, str_keys[i]);
    return DSK_OK;
}

static dsk_status parse_into(gpu_table *t, const char *text, const char *src, int user)
{
    char *buf = strdup(text);
    if (!buf) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gpu_load_file: out of memory");
    dsk_status st = DSK_OK;
    section cur = {.idx = -1};
    char seen[DSK_GPU_MAX][32];
    int n_seen = 0;
    int lineno = 0;
    for (char *line = buf, *next; line && st == DSK_OK; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        if (*l == '[') {
            st = finish_section(t, &cur, src);
            if (st) break;
            char *e = strchr(l, ']');
            if (!e || e[1]) {
                st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: expected '[name]', got '%s'",
                              src, lineno, l);
                break;
            }
            *e = 0;
            char *name = trim(l + 1);
            size_t nl = strlen(name);
            int ok = nl > 0 && nl < sizeof t->g[0].name;
            for (size_t i = 0; ok && i < nl; i++)
                ok = isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_';
            if (!ok) {
                st = dsk_fail(DSK_ERR_FORMAT,
                              "dsk_gpu_load_file: %s:%d: GPU name '%s' must be 1-31 letters, digits, "
                              "'-' or '_'", src, lineno, name);
                break;
            }
            lower(name);
            for (int i = 0; i < n_seen && i < DSK_GPU_MAX; i++)
                if (!strcmp(seen[i], name)) {
                    st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: GPU [%s] appears twice",
                                  src, lineno, name);
                    break;
                }
            if (st) break;
            snprintf(seen[n_seen++ % DSK_GPU_MAX], 32, "%s", name);
            memset(&cur, 0, sizeof cur);
            cur.line = lineno;
            cur.idx = find_in(t, name);
            if (cur.idx < 0) {
                if (t->n >= DSK_GPU_MAX) {
                    st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: more than %d GPUs",
                                  src, lineno, DSK_GPU_MAX);
                    break;
                }
                cur.idx = t->n++;
                cur.is_new = 1;
                memset(&t->g[cur.idx], 0, sizeof t->g[cur.idx]);
                snprintf(t->g[cur.idx].name, sizeof t->g[cur.idx].name, "%s", name);
            }
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: expected 'key = value', got '%s'",
                          src, lineno, l);
            break;
        }
        if (cur.idx < 0) {
            st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: '%s' before any [gpu] section",
                          src, lineno, l);
            break;
        }
        *eq = 0;
        char *key = trim(l), *val = trim(eq + 1);
        dsk_gpu *g = &t->g[cur.idx];
        int k = -1;
        for (int i = 0; i < N_NUM; i++)
            if (!strcmp(key, num_keys[i].key)) k = i;
        if (k >= 0) {
            char *end;
            double v = strtod(val, &end);
            char *rest = trim(end);
            if (end == val || (*rest && (*rest != '[' || rest[strlen(rest) - 1] != ']'))) {
                st = dsk_fail(DSK_ERR_FORMAT,
                              "dsk_gpu_load_file: %s:%d: %s: expected a number and an optional "
                              "[source], got '%s'", src, lineno, key, val);
                break;
            }
            if (!(v >= num_keys[k].lo && v <= num_keys[k].hi)) {
                st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: %s = %g is outside [%g, %g]",
                              src, lineno, key, v, num_keys[k].lo, num_keys[k].hi);
                break;
            }
            dsk_gpu_num *n = num_at(g, k);
            n->v = v;
            if (*rest) {
                rest[strlen(rest) - 1] = 0;
                snprintf(n->src, sizeof n->src, "%s", trim(rest + 1));
            } else if (user) {
                snprintf(n->src, sizeof n->src, "user: %s:%d", src, lineno);
            } else {
                st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: %s has no [source]",
                              src, lineno, key);
                break;
            }
            cur.given_num[k] = 1;
            continue;
        }
        for (int i = 0; i < N_STR; i++)
            if (!strcmp(key, str_keys[i])) k = i;
        if (k < 0) {
            char known[640];
            size_t o = 0;
            for (int i = 0; i < N_STR; i++) o += snprintf(known + o, sizeof known - o, "%s ", str_keys[i]);
            for (int i = 0; i < N_NUM && o < sizeof known; i++)
                o += snprintf(known + o, sizeof known - o, "%s ", num_keys[i].key);
            st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: unknown key '%s' (known: %s)",
                          src, lineno, key, trim(known));
            break;
        }
        cur.given_str[k] = 1;
        if (!strcmp(key, "base")) {
            int b = find_in(t, val);
            if (b < 0 || b == cur.idx) {
                st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: base '%s' is not a known GPU",
                              src, lineno, val);
                break;
            }
            int any = 0;
            for (int i = 0; i < N_NUM; i++) any |= cur.given_num[i];
            for (int i = 0; i < N_STR - 1; i++) any |= cur.given_str[i];
            if (any) {
                st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: base must be the first key of [%s]",
                              src, lineno, g->name);
                break;
            }
            if (!cur.is_new) {
                st = dsk_fail(DSK_ERR_FORMAT,
                              "dsk_gpu_load_file: %s:%d: base is only for new GPUs; [%s] is known",
                              src, lineno, g->name);
                break;
            }
            char name[32];
            snprintf(name, sizeof name, "%s", g->name);
            *g = t->g[b];
            snprintf(g->name, sizeof g->name, "%s", name);
            g->aliases[0] = 0;
            cur.has_base = 1;
            continue;
        }
        size_t cap = !strcmp(key, "description") ? sizeof g->description
                   : !strcmp(key, "aliases")     ? sizeof g->aliases
                   : !strcmp(key, "vendor")      ? sizeof g->vendor : sizeof g->arch;
        if (strlen(val) >= cap) {
            st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: %s is longer than %zu characters",
                          src, lineno, key, cap - 1);
            break;
        }
        if (!strcmp(key, "vendor") && strcmp(val, "nvidia") && strcmp(val, "amd")) {
            st = dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s:%d: vendor must be nvidia or amd, got '%s'",
                          src, lineno, val);
            break;
        }
        char *dst = !strcmp(key, "description") ? g->description
                  : !strcmp(key, "aliases")     ? g->aliases
                  : !strcmp(key, "vendor")      ? g->vendor : g->arch;
        snprintf(dst, cap, "%s", val);
        if (dst == g->aliases) lower(dst);
    }
    if (st == DSK_OK) st = finish_section(t, &cur, src);
    free(buf);
    return st;
}

static void ensure_table(void)
{
    if (table_ready) return;
    table.n = 0;
    dsk_status st = parse_into(&table, dsk_gpu_builtin_text(), "<built-in>", 0);
    /* The built-in text is checked by tests/tune; a failure here is a dsk bug. */
    if (st != DSK_OK) table.n = 0;
    table_ready = 1;
}

void dsk_gpu_reset(void)
{
    table_ready = 0;
    ensure_table();
}

int dsk_gpu_count(void)
{
    ensure_table();
    return table.n;
}

const dsk_gpu *dsk_gpu_at(int i)
{
    ensure_table();
    return i >= 0 && i < table.n ? &table.g[i] : NULL;
}

dsk_status dsk_gpu_find(const char *name, const dsk_gpu **out)
{
    ensure_table();
    if (!name || !out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gpu_find: name and out must not be NULL");
    int i = find_in(&table, name);
    if (i >= 0) {
        *out = &table.g[i];
        return DSK_OK;
    }
    char known[512];
    size_t o = 0;
    for (int j = 0; j < table.n && o < sizeof known; j++)
        o += snprintf(known + o, sizeof known - o, "%s%s", j ? ", " : "", table.g[j].name);
    return dsk_fail(DSK_ERR_NOT_FOUND, "dsk_gpu_find: unknown GPU '%s'; known GPUs: %s", name, known);
}

dsk_status dsk_gpu_load_text(const char *text, const char *source_name)
{
    ensure_table();
    if (!text) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gpu_load_text: text is NULL");
    gpu_table *staging = malloc(sizeof *staging);
    if (!staging) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gpu_load_text: out of memory");
    *staging = table;
    dsk_status st = parse_into(staging, text, source_name ? source_name : "<text>", 1);
    if (st == DSK_OK) table = *staging;
    free(staging);
    return st;
}

dsk_status dsk_gpu_load_file(const char *path)
{
    if (!path) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gpu_load_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return dsk_fail(DSK_ERR_IO, "dsk_gpu_load_file: cannot open '%s'", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gpu_load_file: out of memory");
    }
    for (size_t r; (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_gpu_load_file: out of memory");
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return dsk_fail(DSK_ERR_IO, "dsk_gpu_load_file: error reading '%s'", path);
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return dsk_fail(DSK_ERR_FORMAT, "dsk_gpu_load_file: %s: contains a NUL byte (not a text file)", path);
    }
    dsk_status st = dsk_gpu_load_text(buf, path);
    free(buf);
    return st;
}

double dsk_gpu_fp8_flop_per_clk_sm(const dsk_gpu *g)
{
    double tf = g->fp8_tflops.v > 0 ? g->fp8_tflops.v : g->bf16_tflops.v;
    return tf * 1e12 / (g->sms.v * g->clock_mhz.v * 1e6);
}

double dsk_gpu_fp32_fma_per_clk_sm(const dsk_gpu *g)
{
    return g->fp32_tflops.v * 1e12 / (2.0 * g->sms.v * g->clock_mhz.v * 1e6);
}

dsk_status dsk_gpu_ptx_arch(const dsk_gpu *g, dsk_arch *out)
{
    if (!strcmp(g->vendor, "nvidia") && !strcmp(g->arch, "sm_90a")) {
        *out = DSK_ARCH_SM90A;
        return DSK_OK;
    }
    if (!strcmp(g->vendor, "nvidia") && !strcmp(g->arch, "sm_89")) {
        *out = DSK_ARCH_SM89;
        return DSK_OK;
    }
    const char *why = !strcmp(g->vendor, "amd") ? "dsk's AMD kernels are HIP (hip/), which has no tile plan to tune"
                    : g->fp8_tflops.v <= 0      ? "it has no FP8 tensor cores"
                                                : "dsk has no PTX GEMM emitter for this arch (sm_90a and sm_89 only)";
    return dsk_fail(DSK_ERR_UNSUPPORTED, "%s (%s): no tunable FP8 GEMM kernel: %s", g->name, g->arch, why);
}

dsk_status dsk_gpu_emu_target(const dsk_gpu *g, dsk_emu_target *out)
{
    if (!g || !out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_gpu_emu_target: g and out must not be NULL");
    dsk_arch a;
    if (dsk_gpu_ptx_arch(g, &a) != DSK_OK)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_gpu_emu_target: the PTX emulator cannot take on %s (%s)",
                        g->name, g->arch);
    memset(out, 0, sizeof *out);
    out->sm_version = a == DSK_ARCH_SM90A ? 90 : 89;
    out->has_sm90a = a == DSK_ARCH_SM90A;
    out->num_sms = (int)g->sms.v;
    out->smem_per_block = (size_t)(g->smem_block_kb.v * 1024);
    out->smem_per_sm = (size_t)(g->smem_sm_kb.v * 1024);
    out->max_threads_per_block = (int)g->threads_block.v;
    return DSK_OK;
}
