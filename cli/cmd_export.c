/* cli/cmd_export.c: `dsk export`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_export(int argc, char **argv)
{
    fprintf(stderr, "dsk export: not built yet\n");
    return 1;
}
