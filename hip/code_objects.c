/* hip/code_objects.c: the gfx942 code objects embedded in libdsk. hip/hip.cmake compiles
 * each configuration of hip/gemm_fp8_gfx942.hip with clang-19 and writes their bytes into
 * dsk_hip_code_objects.inc (in the build's generated/ folder); without clang-19 that file
 * holds no objects and the hip backend reports that it was built without them. */
#include <string.h>
#include "hip/hip_internal.h"

#if defined(__has_include)
#if __has_include("dsk_hip_code_objects.inc")
#include "dsk_hip_code_objects.inc" /* defines DSK_HIP_CODE_OBJECTS(X): X(kernel, byte array) */
#endif
#endif

#ifdef DSK_HIP_CODE_OBJECTS
#define X(kernel, bytes) {kernel, bytes, sizeof bytes},
static const dsk_hip_code_object objects[] = {DSK_HIP_CODE_OBJECTS(X)};
#undef X
static const int nobjects = (int)(sizeof objects / sizeof objects[0]);
#else
static const dsk_hip_code_object *const objects = NULL;
static const int nobjects = 0;
#endif

int dsk_hip_code_object_count(void) { return nobjects; }

const dsk_hip_code_object *dsk_hip_code_object_get(int i) { return i >= 0 && i < nobjects ? &objects[i] : NULL; }

const dsk_hip_code_object *dsk_hip_code_object_find(const char *kernel)
{
    for (int i = 0; kernel && i < nobjects; i++)
        if (!strcmp(objects[i].kernel, kernel))
            return &objects[i];
    return NULL;
}
