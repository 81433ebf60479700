/* cli/cmd_info.c: `dsk info`: the machine as hwloc sees it, the toolchains found, and
 * which backends can open a device here. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "core/topo.h"
#include "dsk_config.h"

/* First line a command prints, or "" (the CLI may run tools; the library never does). */
static void first_line(const char *cmd, const char *match, char *out, size_t len)
{
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        if (!match || strstr(line, match)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, len, "%.*s", (int)(len - 1), line);
            break;
        }
    }
    pclose(p);
}

static const char *find_tool(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:%s", path ? path : "", DSK_CUDA_BIN_DIR);
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, len, "%s/%s", d, name);
        if (access(buf, X_OK) == 0) return buf;
    }
    return NULL;
}

static void human(size_t b, char *out, size_t len)
{
    if (b >= (1u << 20)) snprintf(out, len, "%.1f MiB", b / 1048576.0);
    else if (b) snprintf(out, len, "%zu KiB", b / 1024);
    else snprintf(out, len, "unknown");
}

int dsk_cmd_info(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (dsk_cli_flag(argv, i, "--json")) json = 1;
        else if (dsk_cli_flag(argv, i, "--help")) {
            printf("usage: dsk info [--json]\n");
            return 0;
        } else return dsk_cli_usage_error("info", "unknown option '%s'", argv[i]);
    }
    dsk_topo_info t;
    dsk_status s = dsk_topo_query(&t);
    if (s != DSK_OK) return dsk_cli_fail("info", s);

    char ptxas_path[512] = "", ptxas_ver[256] = "", clang_path[512] = "", clang_gfx[64] = "";
    if (find_tool("ptxas", ptxas_path, sizeof ptxas_path)) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", ptxas_path);
        first_line(cmd, "release", ptxas_ver, sizeof ptxas_ver);
    } else ptxas_path[0] = 0;
    if (find_tool("clang-19", clang_path, sizeof clang_path)) {
        char cmd[700], out[256];
        /* compiles a one-line function for gfx942 (no ROCm device library needed) */
        snprintf(cmd, sizeof cmd,
                 "echo 'int f(int x){return x+1;}' | '%s' -x c --target=amdgcn-amd-amdhsa -mcpu=gfx942 "
                 "-nogpulib -c - -o /dev/null 2>&1 && echo gfx942-ok", clang_path);
        first_line(cmd, "gfx942-ok", out, sizeof out);
        snprintf(clang_gfx, sizeof clang_gfx, "%s", out[0] ? "targets gfx942" : "cannot target gfx942");
    } else clang_path[0] = 0;

    char l1[32], l2[32], l3[32];
    human(t.l1d, l1, sizeof l1);
    human(t.l2, l2, sizeof l2);
    human(t.l3, l3, sizeof l3);
    if (json) {
        printf("{\"version\": \"%s\", \"machine\": {\"cpu\": ", dsk_version());
        dsk_cli_json_str(stdout, t.cpu_model);
        printf(", \"packages\": %d, \"cores\": %d, \"pus\": %d, \"numa_nodes\": %d, \"l1d\": %zu, \"l2\": %zu, "
               "\"l3\": %zu, \"hwloc\": %s, \"pci\": [",
               t.packages, t.cores, t.pus, t.numa_nodes, t.l1d, t.l2, t.l3, t.have_hwloc ? "true" : "false");
        for (int i = 0; i < t.n_pci; i++) {
            printf("%s{\"kind\": \"%s\", \"busid\": \"%s\", \"name\": ", i ? ", " : "", t.pci[i].kind, t.pci[i].busid);
            dsk_cli_json_str(stdout, t.pci[i].name);
            printf("}");
        }
        printf("]}, \"toolchains\": {\"ptxas\": ");
        dsk_cli_json_str(stdout, ptxas_path[0] ? ptxas_path : NULL);
        printf(", \"ptxas_version\": ");
        dsk_cli_json_str(stdout, ptxas_ver);
        printf(", \"clang_hip\": ");
        dsk_cli_json_str(stdout, clang_path[0] ? clang_path : NULL);
        printf(", \"clang_gfx942\": %s}, \"backends\": [", strstr(clang_gfx, "targets") ? "true" : "false");
    } else {
        printf("dsk %s\n\nmachine (%s)\n", dsk_version(), t.have_hwloc ? "hwloc" : "sysconf; built without hwloc");
        printf("  cpu          %s\n", t.cpu_model[0] ? t.cpu_model : "unknown");
        printf("  packages     %d   cores %d   hardware threads %d   NUMA nodes %d\n", t.packages, t.cores, t.pus,
               t.numa_nodes);
        printf("  caches       L1d %s   L2 %s   L3 %s (per instance)\n", l1, l2, l3);
        int gpus = 0;
        for (int i = 0; i < t.n_pci; i++) {
            printf("  pci %-8s %s  %s\n", t.pci[i].kind, t.pci[i].busid, t.pci[i].name);
            gpus += !strcmp(t.pci[i].kind, "GPU");
        }
        if (!gpus) printf("  pci GPU      none found\n");
        printf("\ntoolchains\n");
        printf("  ptxas        %s%s%s\n", ptxas_path[0] ? ptxas_path : "not found (PTX assembly checks are skipped)",
               ptxas_ver[0] ? "  " : "", ptxas_ver);
        printf("  clang (HIP)  %s%s%s\n", clang_path[0] ? clang_path : "clang-19 not found (HIP checks are skipped)",
               clang_gfx[0] ? "  " : "", clang_gfx);
        printf("\nbackends\n");
    }
    for (int i = 0; i < dsk_backend_count(); i++) {
        char why[256];
        int ok = dsk_backend_available(i, why, sizeof why);
        const char *name = dsk_backend_name(i);
        char detail[512] = "";
        if (ok) {
            dsk_device *d;
            const char *probe = !strcmp(name, "emu") ? "emu:h800" : !strcmp(name, "cpu") ? "cpu" : NULL;
            char pn[32];
            if (!probe) {
                snprintf(pn, sizeof pn, "%s:0", name);
                probe = pn;
            }
            if (dsk_device_open(probe, &d) == DSK_OK) {
                const dsk_device_props *p = dsk_device_get_props(d);
                snprintf(detail, sizeof detail, "%s: %s, arch %s", p->name, p->description, p->arch);
                dsk_device_close(d);
            } else {
                ok = 0;
                snprintf(why, sizeof why, "%s", dsk_last_error());
            }
        }
        if (json) {
            printf("%s{\"name\": \"%s\", \"available\": %s, \"detail\": ", i ? ", " : "", name, ok ? "true" : "false");
            dsk_cli_json_str(stdout, ok ? detail : why);
            printf("}");
        } else {
            printf("  %-6s %s  %s\n", name, ok ? "yes" : "no ", ok ? detail : why);
        }
    }
    if (json) printf("]}\n");
    return 0;
}
