/* cli/main.c: the dsk command: dispatches to a subcommand from cli/commands.def. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

typedef struct { const char *name, *help; int (*fn)(int, char **); } dsk_cli_cmd;

static const dsk_cli_cmd commands[] = {
#define DSK_CMD(n, h) {#n, h, dsk_cmd_##n},
#include "commands.def"
#undef DSK_CMD
};

static void usage(FILE *f)
{
    fprintf(f, "dsk %s: FP8 GEMM, MLA and MoE kernels for DeepSeek-V3-class inference\n\n"
               "usage: dsk COMMAND [options]   (dsk COMMAND --help for its options)\n\n",
            dsk_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dsk %s\n", dsk_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dsk: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
