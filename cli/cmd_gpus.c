/* cli/cmd_gpus.c: `dsk gpus`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_gpus(int argc, char **argv)
{
    fprintf(stderr, "dsk gpus: not built yet\n");
    return 1;
}
