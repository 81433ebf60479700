/* cli/cli.c: argument parsing and JSON helpers shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int dsk_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    fprintf(stderr, "dsk %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see dsk %s --help)\n", cmd);
    return 2;
}

int dsk_cli_fail(const char *cmd, dsk_status s)
{
    fprintf(stderr, "dsk %s: %s (%s)\n", cmd, dsk_last_error(), dsk_status_name(s));
    return 1;
}

int dsk_cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *err)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        *err = 1;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

int dsk_cli_flag(char **argv, int i, const char *name) { return !strcmp(argv[i], name); }

int dsk_cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int dsk_cli_parse_double(const char *s, double *out)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

void dsk_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
