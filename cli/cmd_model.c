/* cli/cmd_model.c: `dsk model`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_model(int argc, char **argv)
{
    fprintf(stderr, "dsk model: not built yet\n");
    return 1;
}
