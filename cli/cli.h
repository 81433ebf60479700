/* cli/cli.h: shared helpers of the dsk command (argument parsing, JSON printing). */
#ifndef DSK_CLI_H
#define DSK_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "dsk/dsk.h"

#define DSK_CMD(name, help) int dsk_cmd_##name(int argc, char **argv);
#include "commands.def"
#undef DSK_CMD

/* Prints "dsk <cmd>: <message>" to stderr and returns 2 (usage error exit code). */
int dsk_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "dsk <cmd>: <dsk_last_error()>" and returns 1. */
int dsk_cli_fail(const char *cmd, dsk_status s);

/* Option parsing over argv[1..]: --name value / --name=value / boolean --flag.
 * Returns 1 and sets *val when argv[*i] is --name (advancing *i past a separate value);
 * on a missing value sets *err. */
int dsk_cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *err);
int dsk_cli_flag(char **argv, int i, const char *name);
/* Strict integer/float parsing; 0 on success. */
int dsk_cli_parse_i64(const char *s, int64_t *out);
int dsk_cli_parse_double(const char *s, double *out);

/* Writes s as a JSON string literal (with quotes). */
void dsk_cli_json_str(FILE *f, const char *s);

#endif
