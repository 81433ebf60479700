/* cli/cmd_bench.c: `dsk bench`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_bench(int argc, char **argv)
{
    fprintf(stderr, "dsk bench: not built yet\n");
    return 1;
}
