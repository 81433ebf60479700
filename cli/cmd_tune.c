/* cli/cmd_tune.c: `dsk tune`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_tune(int argc, char **argv)
{
    fprintf(stderr, "dsk tune: not built yet\n");
    return 1;
}
