/* emu/emu_mem.h: the allocation registry's snapshot for a launch (emu_mem.c). */
#ifndef DSK_EMU_MEM_H
#define DSK_EMU_MEM_H

#include "emu_internal.h"

/* A copy of the registered ranges, sorted by base (caller frees). */
dsk_status emu_ranges_snapshot(emu_range **out, int *n);

#endif
