/* core/registry.c: the one list of backends, in the order `dsk info` shows them. */
#include <pthread.h>
#include <stddef.h>
#include "core/registry.h"

static const dsk_backend *list[8];
static int count;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    int n = 0;
    list[n++] = &dsk_backend_cpu;
    list[n++] = &dsk_backend_emu;
    list[n++] = &dsk_backend_cuda;
    list[n++] = &dsk_backend_hip;
    count = n;
}

int dsk_registry_count(void)
{
    pthread_once(&once, build);
    return count;
}

const dsk_backend *dsk_registry_get(int i)
{
    pthread_once(&once, build);
    return (i >= 0 && i < count) ? list[i] : NULL;
}
