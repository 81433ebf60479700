/* core/registry.c: the one list of backends, in the order `dsk info` shows them.
 * Backends are weak references so a build without a folder's backend still links; a
 * missing one is simply not listed. */
#include <stddef.h>
#include "core/registry.h"

extern const dsk_backend dsk_backend_emu __attribute__((weak));
extern const dsk_backend dsk_backend_cuda __attribute__((weak));
extern const dsk_backend dsk_backend_hip __attribute__((weak));

static const dsk_backend *list[4];
static int count = -1;

static void build(void)
{
    int n = 0;
    list[n++] = &dsk_backend_cpu;
    if (&dsk_backend_emu) list[n++] = &dsk_backend_emu;
    if (&dsk_backend_cuda) list[n++] = &dsk_backend_cuda;
    if (&dsk_backend_hip) list[n++] = &dsk_backend_hip;
    count = n;
}

int dsk_registry_count(void)
{
    if (count < 0) build();
    return count;
}

const dsk_backend *dsk_registry_get(int i)
{
    if (count < 0) build();
    return (i >= 0 && i < count) ? list[i] : NULL;
}
