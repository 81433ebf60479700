/* cli/cmd_run.c: `dsk run`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_run(int argc, char **argv)
{
    fprintf(stderr, "dsk run: not built yet\n");
    return 1;
}
