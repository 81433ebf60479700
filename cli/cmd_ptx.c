/* cli/cmd_ptx.c: `dsk ptx`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_ptx(int argc, char **argv)
{
    fprintf(stderr, "dsk ptx: not built yet\n");
    return 1;
}
