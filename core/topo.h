/* core/topo.h: the machine as hwloc sees it (internal; `dsk info` and the thread pool). */
#ifndef DSK_CORE_TOPO_H
#define DSK_CORE_TOPO_H
#include <stddef.h>
#include "dsk/status.h"

typedef struct dsk_topo_pci {
    char kind[8];            /* "GPU", "NIC", "other" */
    char name[96];           /* vendor/device as hwloc names it, or ids */
    char busid[16];          /* dddd:bb:dd.f */
} dsk_topo_pci;

typedef struct dsk_topo_info {
    int packages, cores, pus, numa_nodes;
    size_t l1d, l2, l3;      /* bytes per cache instance (0 if unknown) */
    int n_pci;
    dsk_topo_pci pci[32];    /* GPUs and NICs first */
    char cpu_model[96];
    int have_hwloc;          /* 0: counts come from sysconf only */
} dsk_topo_info;

dsk_status dsk_topo_query(dsk_topo_info *info);
#endif
