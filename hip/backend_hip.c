/* hip/backend_hip.c: the hip backend: AMD GPUs through the HIP runtime, with
 * libamdhip64.so loaded by dlopen at run time (dsk builds and runs where ROCm is absent;
 * `dsk info` then lists the backend as unavailable with the reason). Devices: hip:N.
 *
 * Kernels are the gfx942 code objects embedded at build time (hip/code_objects.c), loaded
 * with hipModuleLoadData on first use per device and launched with hipModuleLaunchKernel.
 * Every runtime call goes through HIP_CHECK, which records the call, file and line in the
 * error message. The declarations below restate the few HIP types and enum values dsk needs
 * (hip_runtime_api.h is not required to build; attribute numbers are those of ROCm 5.x/6.x).
 *
 * Not run on an MI300X by this project: no machine it is built on has an AMD GPU. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "hip/hip_internal.h"

typedef int hipError_t;
typedef struct ihipModule_t *hipModule_t;
typedef struct ihipModuleSymbol_t *hipFunction_t;

enum {
    HIP_ATTR_CC_MAJOR = 23,                 /* hipDeviceAttributeComputeCapabilityMajor */
    HIP_ATTR_CC_MINOR = 61,                 /* hipDeviceAttributeComputeCapabilityMinor */
    HIP_ATTR_CU_COUNT = 63,                 /* hipDeviceAttributeMultiprocessorCount */
    HIP_ATTR_REGS_PER_CU = 72,              /* hipDeviceAttributeMaxRegistersPerMultiprocessor */
    HIP_ATTR_LDS_PER_BLOCK = 74,            /* hipDeviceAttributeMaxSharedMemoryPerBlock */
    HIP_ATTR_LDS_PER_CU = 10002,            /* hipDeviceAttributeMaxSharedMemoryPerMultiprocessor */
    HIP_MEMCPY_H2D = 1,                     /* hipMemcpyHostToDevice */
    HIP_MEMCPY_D2H = 2,                     /* hipMemcpyDeviceToHost */
};

/* The runtime entry points dsk uses (X-macro table: field, symbol, parameter list; all
 * return hipError_t except hipGetErrorString, declared apart). */
#define DSK_HIP_FUNCS(X)                                                                       \
    X(hipInit, "hipInit", (unsigned))                                                          \
    X(hipGetDeviceCount, "hipGetDeviceCount", (int *))                                         \
    X(hipSetDevice, "hipSetDevice", (int))                                                     \
    X(hipDeviceGetName, "hipDeviceGetName", (char *, int, int))                                \
    X(hipDeviceGetAttribute, "hipDeviceGetAttribute", (int *, int, int))                       \
    X(hipDeviceTotalMem, "hipDeviceTotalMem", (size_t *, int))                                 \
    X(hipDeviceSynchronize, "hipDeviceSynchronize", (void))                                    \
    X(hipMalloc, "hipMalloc", (void **, size_t))                                               \
    X(hipFree, "hipFree", (void *))                                                            \
    X(hipMemcpy, "hipMemcpy", (void *, const void *, size_t, int))                             \
    X(hipModuleLoadData, "hipModuleLoadData", (hipModule_t *, const void *))                   \
    X(hipModuleUnload, "hipModuleUnload", (hipModule_t))                                       \
    X(hipModuleGetFunction, "hipModuleGetFunction", (hipFunction_t *, hipModule_t, const char *)) \
    X(hipModuleLaunchKernel, "hipModuleLaunchKernel",                                          \
      (hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **, \
       void **))

static struct {
#define X(field, sym, params) hipError_t(*field) params;
    DSK_HIP_FUNCS(X)
#undef X
    const char *(*hipGetErrorString)(hipError_t);
} hip;

static pthread_once_t hip_once = PTHREAD_ONCE_INIT;
static char hip_why[256];
static int hip_ok;

static void hip_load(void)
{
    static const char *const libs[] = {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5"};
    char first[160] = "";
    void *h = NULL;
    for (int i = 0; i < 3 && !h; i++)
        if (!(h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL)) && !first[0])
            snprintf(first, sizeof first, "%s", dlerror());
    if (!h) {
        snprintf(hip_why, sizeof hip_why, "no HIP runtime (dlopen libamdhip64.so, .so.6, .so.5: %s)", first);
        return;
    }
#define X(field, sym, params)                                                                  \
    if (!(*(void **)&hip.field = dlsym(h, sym))) {                                             \
        snprintf(hip_why, sizeof hip_why, "libamdhip64.so lacks %s (ROCm too old)", sym);      \
        return;                                                                                \
    }
    DSK_HIP_FUNCS(X)
#undef X
    *(void **)&hip.hipGetErrorString = dlsym(h, "hipGetErrorString");
    int n = 0;
    hipError_t r = hip.hipInit(0);
    if (r == 0)
        r = hip.hipGetDeviceCount(&n);
    if (r != 0 || n == 0) {
        snprintf(hip_why, sizeof hip_why, r ? "hipInit / hipGetDeviceCount failed (error %d)" : "no HIP device", r);
        return;
    }
    hip_ok = 1;
}

static dsk_status hip_fail(hipError_t r, const char *call, const char *file, int line)
{
    const char *msg = hip.hipGetErrorString ? hip.hipGetErrorString(r) : NULL;
    return dsk_fail(DSK_ERR_DEVICE, "%s failed: %s (hipError_t %d) at %s:%d", call, msg ? msg : "unknown error", r,
                    file, line);
}

/* The one checking macro of the HIP runtime API. */
#define HIP_CHECK(call)                                                     \
    do {                                                                    \
        hipError_t hip_r_ = (call);                                         \
        if (hip_r_ != 0) return hip_fail(hip_r_, #call, __FILE__, __LINE__); \
    } while (0)

typedef struct hip_dev {
    int ordinal;
    pthread_mutex_t lock;                 /* guards the module cache */
    hipModule_t *modules;                 /* per configuration, loaded on first use */
    hipFunction_t *functions;
} hip_dev;

static int hip_available(char *why, size_t len)
{
    pthread_once(&hip_once, hip_load);
    if (!hip_ok && why)
        snprintf(why, len, "unavailable: %s", hip_why);
    return hip_ok;
}

static dsk_status hip_set_current(dsk_device *dev)
{
    HIP_CHECK(hip.hipSetDevice(((hip_dev *)dev->priv)->ordinal));
    return DSK_OK;
}

static dsk_status hip_query(dsk_device *dev, int ord)
{
    dsk_device_props *p = &dev->props;
    int maj = 0, min = 0, cus = 0, regs = 0, lds_b = 0, lds_cu = 0;
    char name[128] = "";
    size_t mem = 0;
    HIP_CHECK(hip.hipDeviceGetAttribute(&maj, HIP_ATTR_CC_MAJOR, ord));
    HIP_CHECK(hip.hipDeviceGetAttribute(&min, HIP_ATTR_CC_MINOR, ord));
    HIP_CHECK(hip.hipDeviceGetAttribute(&cus, HIP_ATTR_CU_COUNT, ord));
    HIP_CHECK(hip.hipDeviceGetAttribute(&regs, HIP_ATTR_REGS_PER_CU, ord));
    HIP_CHECK(hip.hipDeviceGetAttribute(&lds_b, HIP_ATTR_LDS_PER_BLOCK, ord));
    HIP_CHECK(hip.hipDeviceGetAttribute(&lds_cu, HIP_ATTR_LDS_PER_CU, ord));
    HIP_CHECK(hip.hipDeviceGetName(name, (int)sizeof name, ord));
    HIP_CHECK(hip.hipDeviceTotalMem(&mem, ord));
    snprintf(p->name, sizeof p->name, "hip:%d", ord);
    snprintf(p->backend, sizeof p->backend, "hip");
    if (snprintf(p->description, sizeof p->description, "%s (gfx %d.%d)", name, maj, min) < 0)
        p->description[0] = '\0';  /* a long marketing name is cut at the field's size */
    /* HIP reports gfx94x (MI300) as 9.4; the production part is gfx942. Other GPUs get
     * their version and no dsk kernel (the code objects are gfx942-only). */
    if (maj == 9 && min == 4)
        snprintf(p->arch, sizeof p->arch, "gfx942");
    else
        snprintf(p->arch, sizeof p->arch, "gfx%d.%d", maj, min);
    p->num_sms = cus;
    p->smem_per_block = (size_t)lds_b;
    p->smem_per_sm = (size_t)lds_cu;
    p->regs_per_sm = regs;
    p->mem_bytes = mem;
    p->host_memory = 0;
    return DSK_OK;
}

static void hip_close(dsk_device *dev)
{
    hip_dev *h = dev->priv;
    if (!h)
        return;
    if (hip.hipSetDevice(h->ordinal) == 0)
        for (int i = 0; i < dsk_hip_gemm_config_count(); i++)
            if (h->modules[i])
                hip.hipModuleUnload(h->modules[i]);
    free(h->modules);
    free(h->functions);
    pthread_mutex_destroy(&h->lock);
    free(h);
    dev->priv = NULL;
}

static dsk_status hip_open(dsk_device *dev, const char *arg)
{
    if (!hip_available(NULL, 0))
        return dsk_fail(DSK_ERR_DEVICE, "dsk_device_open: hip unavailable: %s", hip_why);
    char *end;
    long ord = strtol(arg && *arg ? arg : "0", &end, 10);
    int count = 0;
    HIP_CHECK(hip.hipGetDeviceCount(&count));
    if (*end || ord < 0 || ord >= count)
        return dsk_fail(DSK_ERR_NOT_FOUND, "dsk_device_open: hip:%s: expected an ordinal in [0, %d)", arg, count);
    hip_dev *h = calloc(1, sizeof *h);
    int n = dsk_hip_gemm_config_count();
    if (h) {
        h->modules = calloc((size_t)n, sizeof *h->modules);
        h->functions = calloc((size_t)n, sizeof *h->functions);
    }
    if (!h || !h->modules || !h->functions) {
        if (h) {
            free(h->modules);
            free(h->functions);
        }
        free(h);
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_device_open: hip state");
    }
    h->ordinal = (int)ord;
    pthread_mutex_init(&h->lock, NULL);
    dev->priv = h;
    dsk_status s = hip_query(dev, (int)ord);
    if (s)
        hip_close(dev);
    return s;
}

static dsk_status hip_alloc(dsk_device *dev, size_t bytes, void **ptr)
{
    DSK_TRY(hip_set_current(dev));
    HIP_CHECK(hip.hipMalloc(ptr, bytes ? bytes : 1));
    return DSK_OK;
}

static void hip_free_mem(dsk_device *dev, void *ptr)
{
    if (ptr && hip_set_current(dev) == DSK_OK)
        hip.hipFree(ptr);
}

static dsk_status hip_upload(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    DSK_TRY(hip_set_current(dev));
    HIP_CHECK(hip.hipMemcpy(dst, src, bytes, HIP_MEMCPY_H2D));
    return DSK_OK;
}

static dsk_status hip_download(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    DSK_TRY(hip_set_current(dev));
    HIP_CHECK(hip.hipMemcpy(dst, src, bytes, HIP_MEMCPY_D2H));
    return DSK_OK;
}

static dsk_status hip_sync(dsk_device *dev)
{
    DSK_TRY(hip_set_current(dev));
    HIP_CHECK(hip.hipDeviceSynchronize());
    return DSK_OK;
}

/* ---- the launch table over the HIP runtime (ctx = the dsk_device) ---- */
static dsk_status drv_d2h(void *ctx, void *dst, const void *src, size_t n) { return hip_download(ctx, dst, src, n); }

static dsk_status function_get(dsk_device *dev, const dsk_hip_gemm_config *c, hipFunction_t *fn)
{
    hip_dev *h = dev->priv;
    int i = (int)(c - dsk_hip_gemm_config_get(0));
    const dsk_hip_code_object *co = dsk_hip_code_object_find(c->name);
    if (!co)
        return dsk_fail(DSK_ERR_UNSUPPORTED,
                        "hip: libdsk holds no gfx942 code object for %s (%d embedded): it was built without "
                        "clang-19; rebuild with clang-19 installed",
                        c->name, dsk_hip_code_object_count());
    dsk_status s = DSK_OK;
    pthread_mutex_lock(&h->lock);
    if (!h->functions[i]) {
        hipModule_t m = NULL;
        hipError_t r = hip.hipModuleLoadData(&m, co->data);
        if (r) {
            hip_fail(r, "hipModuleLoadData", __FILE__, __LINE__);
            s = dsk_fail_prefix(DSK_ERR_DEVICE, "hip: loading the gfx942 code object of %s on %s (%s)", c->name,
                                dev->props.name, dev->props.arch);
        } else {
            r = hip.hipModuleGetFunction(&h->functions[i], m, c->name);
            if (r)
                s = hip_fail(r, "hipModuleGetFunction", __FILE__, __LINE__);
            h->modules[i] = m;
        }
    }
    *fn = h->functions[i];
    pthread_mutex_unlock(&h->lock);
    return s;
}

static dsk_status drv_launch(void *ctx, const dsk_hip_gemm_config *c, const unsigned grid[3], void **args)
{
    dsk_device *dev = ctx;
    DSK_TRY(hip_set_current(dev));
    hipFunction_t fn = NULL;
    DSK_TRY(function_get(dev, c, &fn));
    HIP_CHECK(hip.hipModuleLaunchKernel(fn, grid[0], grid[1], grid[2], dsk_hip_gemm_config_threads(c), 1, 1, 0, NULL,
                                        args, NULL));
    HIP_CHECK(hip.hipDeviceSynchronize());
    return DSK_OK;
}

static const dsk_hip_driver hip_driver = {
    .name = "hip",
    .copy_d2h = drv_d2h,
    .launch = drv_launch,
};

static dsk_status hip_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *a)
{
    if (strcmp(dev->props.arch, "gfx942"))
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_gemm_fp8: %s (%s) has no dsk FP8 kernel (gfx942 only)",
                        dev->props.name, dev->props.arch);
    const dsk_hip_gemm_config *ran = NULL;
    DSK_TRY(dsk_hip_gemm_fp8_launch(&hip_driver, dev, NULL, a, &ran));
    if (ran)
        dsk_device_set_kernel(dev, ran->name);
    return DSK_OK;
}

const dsk_backend dsk_backend_hip = {
    .name = "hip",
    .available = hip_available,
    .open = hip_open,
    .close = hip_close,
    .alloc = hip_alloc,
    .free = hip_free_mem,
    .upload = hip_upload,
    .download = hip_download,
    .sync = hip_sync,
    .fallback_cpu = 0,
    .gemm_fp8 = hip_gemm_fp8,
};
