/* core/device.c: opening devices by name through the backend registry. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "core/registry.h"

dsk_status dsk_device_open(const char *name, dsk_device **out)
{
    if (!out) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_open: out is NULL");
    *out = NULL;
    if (!name || !*name) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_open: name is empty");
    const char *colon = strchr(name, ':');
    size_t plen = colon ? (size_t)(colon - name) : strlen(name);
    const char *arg = colon ? colon + 1 : "";
    for (int i = 0; i < dsk_registry_count(); i++) {
        const dsk_backend *b = dsk_registry_get(i);
        if (strlen(b->name) != plen || strncmp(b->name, name, plen)) continue;
        char why[256] = "";
        if (b->available && !b->available(why, sizeof why))
            return dsk_fail(DSK_ERR_DEVICE, "dsk_device_open: backend '%s' is not available here: %s",
                            b->name, why);
        dsk_device *d = calloc(1, sizeof *d);
        if (!d) return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_device_open: %s", name);
        d->backend = b;
        snprintf(d->props.name, sizeof d->props.name, "%s", name);
        snprintf(d->props.backend, sizeof d->props.backend, "%s", b->name);
        dsk_status s = b->open(d, arg);
        if (s != DSK_OK) {
            free(d);
            return s;
        }
        *out = d;
        return DSK_OK;
    }
    return dsk_fail(DSK_ERR_NOT_FOUND,
                    "dsk_device_open: unknown device '%s', expected cpu, cuda:N, hip:N or emu:GPU "
                    "(e.g. emu:h800)", name);
}

void dsk_device_close(dsk_device *dev)
{
    if (!dev || dev == dsk_cpu_device_shared()) return;
    if (dev->backend->close) dev->backend->close(dev);
    free(dev);
}

const dsk_device_props *dsk_device_get_props(const dsk_device *dev) { return dev ? &dev->props : NULL; }

dsk_status dsk_device_alloc(dsk_device *dev, size_t bytes, void **ptr)
{
    if (!dev || !ptr) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_alloc: dev or ptr is NULL");
    return dev->backend->alloc(dev, bytes, ptr);
}

void dsk_device_free(dsk_device *dev, void *ptr)
{
    if (dev && ptr) dev->backend->free(dev, ptr);
}

dsk_status dsk_device_upload(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    if (!dev || (bytes && (!dst || !src)))
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_upload: dev, dst or src is NULL");
    return dev->backend->upload(dev, dst, src, bytes);
}

dsk_status dsk_device_download(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    if (!dev || (bytes && (!dst || !src)))
        return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_download: dev, dst or src is NULL");
    return dev->backend->download(dev, dst, src, bytes);
}

dsk_status dsk_device_sync(dsk_device *dev)
{
    if (!dev) return dsk_fail(DSK_ERR_INVALID_ARG, "dsk_device_sync: dev is NULL");
    return dev->backend->sync ? dev->backend->sync(dev) : DSK_OK;
}

const char *dsk_device_last_kernel(const dsk_device *dev) { return dev ? dev->last_kernel : ""; }

void dsk_device_set_kernel(dsk_device *dev, const char *name)
{
    snprintf(dev->last_kernel, sizeof dev->last_kernel, "%s", name);
}

void dsk_unsupported_op(const dsk_device *dev, const char *fn)
{
    dsk_fail(DSK_ERR_UNSUPPORTED, "%s: not available on the '%s' backend (device %s)", fn,
             dev->backend->name, dev->props.name);
}

dsk_device *dsk_op_device(dsk_device *dev, int has, const char *fn)
{
    if (has) return dev;
    if (dev->backend->fallback_cpu) return dsk_cpu_device_shared();
    dsk_unsupported_op(dev, fn);
    return NULL;
}

static dsk_device *cpu_shared;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void open_cpu_shared(void)
{
    dsk_device *d = calloc(1, sizeof *d);
    if (!d) return;
    d->backend = &dsk_backend_cpu;
    snprintf(d->props.name, sizeof d->props.name, "cpu");
    snprintf(d->props.backend, sizeof d->props.backend, "cpu");
    if (dsk_backend_cpu.open(d, "") != DSK_OK) {
        free(d);
        return;
    }
    cpu_shared = d;
}

dsk_device *dsk_cpu_device_shared(void)
{
    pthread_once(&cpu_once, open_cpu_shared);
    return cpu_shared;
}

int dsk_backend_count(void) { return dsk_registry_count(); }

const char *dsk_backend_name(int i)
{
    return (i >= 0 && i < dsk_registry_count()) ? dsk_registry_get(i)->name : NULL;
}

int dsk_backend_available(int i, char *why, size_t why_len)
{
    if (i < 0 || i >= dsk_registry_count()) return 0;
    const dsk_backend *b = dsk_registry_get(i);
    if (why && why_len) why[0] = '\0';
    return b->available ? b->available(why, why_len) : 1;
}
