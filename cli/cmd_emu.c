/* cli/cmd_emu.c: `dsk emu`. Placeholder until its issue lands: it says so and fails. */
#include <stdio.h>
#include "cli.h"

int dsk_cmd_emu(int argc, char **argv)
{
    fprintf(stderr, "dsk emu: not built yet\n");
    return 1;
}
