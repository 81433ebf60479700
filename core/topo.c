/* core/topo.c: machine topology through hwloc (packages, cores, caches, NUMA, PCI GPUs
 * and NICs); falls back to sysconf when dsk was built without hwloc. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/topo.h"
#include "core/error.h"
#ifdef DSK_HAVE_HWLOC
#include <hwloc.h>
#include <pthread.h>
#endif

#ifdef DSK_HAVE_HWLOC
static size_t cache_size(hwloc_topology_t t, hwloc_obj_type_t type)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(t, type, 0);
    return o && o->attr ? (size_t)o->attr->cache.size : 0;
}

/* The PCI-aware topology is discovered once per process and kept (read-only after load,
 * so concurrent queries are safe). Keeping it also keeps hwloc's PCI plugin and
 * libpciaccess loaded: destroying the last topology unloads them, and the few
 * allocations libpciaccess never frees would then show up to LeakSanitizer from an
 * unknown module that no suppression can name. */
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t topo_cached;
static int topo_error;

static void topo_load(void)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) {
        topo_error = 1;
        return;
    }
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        topo_error = 2;
        return;
    }
    topo_cached = t;
}

static void add_pci(dsk_topo_info *info, hwloc_obj_t o)
{
    if (info->n_pci >= (int)(sizeof info->pci / sizeof info->pci[0])) return;
    unsigned cls = o->attr->pcidev.class_id >> 8;
    const char *kind = cls == 0x03 ? "GPU" : cls == 0x02 ? "NIC" : cls == 0x12 ? "GPU" : NULL;
    if (!kind) return;
    dsk_topo_pci *p = &info->pci[info->n_pci++];
    snprintf(p->kind, sizeof p->kind, "%s", kind);
    const char *vendor = hwloc_obj_get_info_by_name(o, "PCIVendor");
    const char *dev = hwloc_obj_get_info_by_name(o, "PCIDevice");
    if (vendor || dev)
        snprintf(p->name, sizeof p->name, "%s %s", vendor ? vendor : "", dev ? dev : "");
    else
        snprintf(p->name, sizeof p->name, "%04x:%04x", o->attr->pcidev.vendor_id, o->attr->pcidev.device_id);
    snprintf(p->busid, sizeof p->busid, "%04x:%02x:%02x.%01x", o->attr->pcidev.domain, o->attr->pcidev.bus,
             o->attr->pcidev.dev, o->attr->pcidev.func);
}
#endif

dsk_status dsk_topo_query(dsk_topo_info *info)
{
    memset(info, 0, sizeof *info);
    FILE *f = fopen("/proc/cpuinfo", "r");  /* the model name only, for display */
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(info->cpu_model, sizeof info->cpu_model, "%s", c + 2);
                    info->cpu_model[strcspn(info->cpu_model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
#ifdef DSK_HAVE_HWLOC
    pthread_once(&topo_once, topo_load);
    if (!topo_cached)
        return dsk_fail(DSK_ERR_DEVICE, "%s failed", topo_error == 1 ? "hwloc_topology_init" : "hwloc_topology_load");
    hwloc_topology_t t = topo_cached;
    info->have_hwloc = 1;
    info->packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    info->cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    info->pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    info->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    info->l1d = cache_size(t, HWLOC_OBJ_L1CACHE);
    info->l2 = cache_size(t, HWLOC_OBJ_L2CACHE);
    info->l3 = cache_size(t, HWLOC_OBJ_L3CACHE);
    for (hwloc_obj_t o = hwloc_get_next_pcidev(t, NULL); o; o = hwloc_get_next_pcidev(t, o)) add_pci(info, o);
#else
    info->packages = 1;
    info->cores = info->pus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    info->numa_nodes = 1;
#endif
    return DSK_OK;
}
