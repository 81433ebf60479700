/* cli/cmd_compare.c: `dsk compare`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_compare(int argc, char **argv)
{
    fprintf(stderr, "dsk compare: not built yet\n");
    return 1;
}
