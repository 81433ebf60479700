/* core/registry.h: the list of backends compiled into this libdsk (internal). */
#ifndef DSK_CORE_REGISTRY_H
#define DSK_CORE_REGISTRY_H
#include "core/backend.h"
int dsk_registry_count(void);
const dsk_backend *dsk_registry_get(int i);
#endif
