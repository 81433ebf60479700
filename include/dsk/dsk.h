/* dsk/dsk.h: the whole public API of dsk. */
#ifndef DSK_DSK_H
#define DSK_DSK_H

#include "status.h"
#include "dtype.h"
#include "tensor.h"
#include "device.h"
#include "gemm.h"
#include "attention.h"
#include "moe.h"
#include "layers.h"
#include "ptx.h"
#include "tune.h"
#include "model.h"

#define DSK_VERSION_MAJOR 0
#define DSK_VERSION_MINOR 1
#define DSK_VERSION_PATCH 0
#define DSK_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif
/* The library's version string (same as DSK_VERSION_STRING at build time). */
const char *dsk_version(void);
#ifdef __cplusplus
}
#endif

#endif
