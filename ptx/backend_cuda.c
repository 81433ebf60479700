/* ptx/backend_cuda.c: the cuda backend: NVIDIA GPUs through the CUDA driver API, with
 * libcuda.so.1 loaded by dlopen at run time (dsk builds and runs where no driver exists;
 * `dsk info` then lists the backend as unavailable with the reason).
 *
 * Every driver call goes through CU_CHECK, which records the call, file and line in the
 * error message. The GPU driver table (ptx/gpu_driver.h) over these calls is what the
 * kernels' host code uses; modules are JIT-compiled from the emitters' PTX by the driver
 * and cached per process by kernel name (ptx/gemm_fp8_host.c). The driver API declarations
 * below restate the few types and enum values dsk needs (cuda.h is not required to build). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/backend.h"
#include "core/error.h"
#include "ptx/gpu_driver.h"

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef unsigned long long CUdeviceptr;

/* cuLaunchKernelEx's launch configuration with one attribute, the cluster dimension (CUDA
 * driver API, "CUlaunchConfig", "CUlaunchAttribute": id, padding to 8 bytes, a 64-byte
 * value union whose clusterDim is {x, y, z}; CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4). */
enum { CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4 };
typedef struct cu_launch_attr {
    int id;
    char pad[4];
    union {
        char pad[64];
        void *align;
        struct { unsigned x, y, z; } cluster_dim;
    } value;
} cu_launch_attr;
typedef struct cu_launch_config {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_mem_bytes;
    void *stream;
    cu_launch_attr *attrs;
    unsigned num_attrs;
} cu_launch_config;
_Static_assert(sizeof(cu_launch_attr) == 72, "CUlaunchAttribute is 72 bytes");

enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_JIT_ERROR_LOG_BUFFER = 5,
    CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
};

/* The driver entry points dsk uses (X-macro table: name, symbol, parameter list; all return CUresult). */
#define DSK_CU_FUNCS(X)                                                                                       \
    X(cuInit, "cuInit", (unsigned))                                                               \
    X(cuGetErrorString, "cuGetErrorString", (CUresult, const char **))                            \
    X(cuDeviceGetCount, "cuDeviceGetCount", (int *))                                              \
    X(cuDeviceGet, "cuDeviceGet", (CUdevice *, int))                                              \
    X(cuDeviceGetName, "cuDeviceGetName", (char *, int, CUdevice))                                \
    X(cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *, int, CUdevice))                       \
    X(cuDeviceTotalMem, "cuDeviceTotalMem_v2", (size_t *, CUdevice))                              \
    X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext *, CUdevice))              \
    X(cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext))                                            \
    X(cuCtxSynchronize, "cuCtxSynchronize", (void))                                               \
    X(cuModuleLoadDataEx, "cuModuleLoadDataEx", (CUmodule *, const void *, unsigned, int *, void **)) \
    X(cuModuleUnload, "cuModuleUnload", (CUmodule))                                               \
    X(cuModuleGetFunction, "cuModuleGetFunction", (CUfunction *, CUmodule, const char *))         \
    X(cuFuncSetAttribute, "cuFuncSetAttribute", (CUfunction, int, int))                           \
    X(cuMemAlloc, "cuMemAlloc_v2", (CUdeviceptr *, size_t))                                       \
    X(cuMemFree, "cuMemFree_v2", (CUdeviceptr))                                                   \
    X(cuMemcpyHtoD, "cuMemcpyHtoD_v2", (CUdeviceptr, const void *, size_t))                       \
    X(cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *, CUdeviceptr, size_t))                             \
    X(cuLaunchKernel, "cuLaunchKernel",                                                                       \
      (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,  \
                   void **, void **))                                                                         \
    X(cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled",                                                       \
      (void *, int, unsigned, void *, const uint64_t *, const uint64_t *, const uint32_t *,       \
                   const uint32_t *, int, int, int, int))

static struct {
#define X(field, sym, params) CUresult(*field) params;
    DSK_CU_FUNCS(X)
#undef X
} cu;

/* Optional (CUDA 12.0+ drivers): cluster launches only. */
static CUresult (*cu_launch_ex)(const cu_launch_config *, CUfunction, void **, void **);

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static char cu_why[256];
static int cu_ok;

static void cu_load(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(cu_why, sizeof cu_why, "no libcuda (dlopen libcuda.so.1: %s)", dlerror());
        return;
    }
#define X(field, sym, params)                                                             \
    if (!(*(void **)&cu.field = dlsym(h, sym))) {                                         \
        snprintf(cu_why, sizeof cu_why, "libcuda.so.1 lacks %s (driver too old)", sym); \
        return;                                                                           \
    }
    DSK_CU_FUNCS(X)
#undef X
    *(void **)&cu_launch_ex = dlsym(h, "cuLaunchKernelEx");
    CUresult r = cu.cuInit(0);
    int n = 0;
    if (r == 0)
        r = cu.cuDeviceGetCount(&n);
    if (r != 0 || n == 0) {
        snprintf(cu_why, sizeof cu_why, r ? "cuInit failed (error %d)" : "no CUDA device", r);
        return;
    }
    cu_ok = 1;
}

static dsk_status cu_fail(CUresult r, const char *call, const char *file, int line)
{
    const char *msg = NULL;
    if (cu.cuGetErrorString)
        cu.cuGetErrorString(r, &msg);
    return dsk_fail(DSK_ERR_DEVICE, "%s failed: %s (CUresult %d) at %s:%d", call, msg ? msg : "unknown error", r, file,
                    line);
}

/* The one checking macro of the driver API. */
#define CU_CHECK(call)                                                 \
    do {                                                               \
        CUresult cu_r_ = (call);                                       \
        if (cu_r_ != 0) return cu_fail(cu_r_, #call, __FILE__, __LINE__); \
    } while (0)

typedef struct cuda_dev {
    int ordinal;
    CUdevice dev;
    CUcontext ctx;
} cuda_dev;

static int cuda_available(char *why, size_t len)
{
    pthread_once(&cu_once, cu_load);
    if (!cu_ok && why)
        snprintf(why, len, "unavailable: %s", cu_why);
    return cu_ok;
}

static dsk_status cuda_open(dsk_device *dev, const char *arg)
{
    if (!cuda_available(NULL, 0))
        return dsk_fail(DSK_ERR_DEVICE, "dsk_device_open: cuda unavailable: %s", cu_why);
    char *end;
    long ord = strtol(arg && *arg ? arg : "0", &end, 10);
    int count = 0;
    CU_CHECK(cu.cuDeviceGetCount(&count));
    if (*end || ord < 0 || ord >= count)
        return dsk_fail(DSK_ERR_NOT_FOUND, "dsk_device_open: cuda:%s: expected an ordinal in [0, %d)", arg, count);
    cuda_dev *c = calloc(1, sizeof *c);
    if (!c)
        return dsk_fail(DSK_ERR_OUT_OF_MEMORY, "dsk_device_open: cuda state");
    c->ordinal = (int)ord;
    dsk_status s = DSK_OK;
    CUresult r = cu.cuDeviceGet(&c->dev, c->ordinal);
    if (!r)
        r = cu.cuDevicePrimaryCtxRetain(&c->ctx, c->dev);
    if (!r)
        r = cu.cuCtxSetCurrent(c->ctx);
    if (r) {
        free(c);
        return cu_fail(r, "cuDeviceGet / cuDevicePrimaryCtxRetain", __FILE__, __LINE__);
    }
    dsk_device_props *p = &dev->props;
    int maj = 0, min = 0, sms = 0, smem_b = 0, smem_sm = 0, regs = 0;
    char name[100] = "";
    size_t mem = 0;
    r = cu.cuDeviceGetAttribute(&maj, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c->dev);
    r = r ? r : cu.cuDeviceGetAttribute(&min, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c->dev);
    r = r ? r : cu.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, c->dev);
    r = r ? r : cu.cuDeviceGetAttribute(&smem_b, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, c->dev);
    r = r ? r : cu.cuDeviceGetAttribute(&smem_sm, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, c->dev);
    r = r ? r : cu.cuDeviceGetAttribute(&regs, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, c->dev);
    r = r ? r : cu.cuDeviceGetName(name, sizeof name, c->dev);
    r = r ? r : cu.cuDeviceTotalMem(&mem, c->dev);
    if (r) {
        free(c);
        return cu_fail(r, "cuDeviceGetAttribute / cuDeviceGetName / cuDeviceTotalMem", __FILE__, __LINE__);
    }
    snprintf(p->name, sizeof p->name, "cuda:%d", c->ordinal);
    snprintf(p->backend, sizeof p->backend, "cuda");
    snprintf(p->description, sizeof p->description, "%s (compute capability %d.%d)", name, maj, min);
    /* sm_90 devices run the sm_90a kernels (wgmma, setmaxnreg are 90a features of Hopper) */
    snprintf(p->arch, sizeof p->arch, "sm_%d%d%s", maj, min, maj == 9 && min == 0 ? "a" : "");
    p->num_sms = sms;
    p->smem_per_block = (size_t)smem_b;
    p->smem_per_sm = (size_t)smem_sm;
    p->regs_per_sm = regs;
    p->mem_bytes = mem;
    p->host_memory = 0;
    dev->priv = c;
    return s;
}

static void cuda_close(dsk_device *dev)
{
    free(dev->priv);
    dev->priv = NULL;
}

static dsk_status cuda_set_current(dsk_device *dev)
{
    cuda_dev *c = dev->priv;
    CU_CHECK(cu.cuCtxSetCurrent(c->ctx));
    return DSK_OK;
}

static dsk_status cuda_alloc(dsk_device *dev, size_t bytes, void **ptr)
{
    DSK_TRY(cuda_set_current(dev));
    CUdeviceptr p = 0;
    CU_CHECK(cu.cuMemAlloc(&p, bytes ? bytes : 1));
    *ptr = (void *)(uintptr_t)p;
    return DSK_OK;
}

static void cuda_free(dsk_device *dev, void *ptr)
{
    if (ptr && cuda_set_current(dev) == DSK_OK)
        cu.cuMemFree((CUdeviceptr)(uintptr_t)ptr);
}

static dsk_status cuda_upload(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    DSK_TRY(cuda_set_current(dev));
    CU_CHECK(cu.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)dst, src, bytes));
    return DSK_OK;
}

static dsk_status cuda_download(dsk_device *dev, void *dst, const void *src, size_t bytes)
{
    DSK_TRY(cuda_set_current(dev));
    CU_CHECK(cu.cuMemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)src, bytes));
    return DSK_OK;
}

static dsk_status cuda_sync(dsk_device *dev)
{
    DSK_TRY(cuda_set_current(dev));
    CU_CHECK(cu.cuCtxSynchronize());
    return DSK_OK;
}

/* ---- the GPU driver table over the driver API (ctx = the dsk_device) ---- */
static int drv_cache_key(void *ctx) { return ((cuda_dev *)((dsk_device *)ctx)->priv)->ordinal; }

static dsk_status drv_module_load(void *ctx, const char *ptx, const char *source_name, void **module)
{
    DSK_TRY(cuda_set_current(ctx));
    char log[4096] = "";
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
    CUmodule m = NULL;
    CUresult r = cu.cuModuleLoadDataEx(&m, ptx, 2, opts, vals);
    if (r) {
        cu_fail(r, "cuModuleLoadDataEx", __FILE__, __LINE__);
        return dsk_fail_prefix(DSK_ERR_DEVICE, "JIT of %s (log: %.1000s)", source_name, log);
    }
    *module = m;
    return DSK_OK;
}

static void drv_module_unload(void *ctx, void *module)
{
    if (cuda_set_current(ctx) == DSK_OK)
        cu.cuModuleUnload(module);
}

static dsk_status drv_function_get(void *ctx, void *module, const char *kernel, void **fn)
{
    CUfunction f = NULL;
    CU_CHECK(cu.cuModuleGetFunction(&f, module, kernel));
    *fn = f;
    return DSK_OK;
}

static dsk_status drv_mem_alloc(void *ctx, size_t bytes, void **p) { return cuda_alloc(ctx, bytes, p); }
static void drv_mem_free(void *ctx, void *p) { cuda_free(ctx, p); }
static dsk_status drv_h2d(void *ctx, void *dst, const void *src, size_t n) { return cuda_upload(ctx, dst, src, n); }
static dsk_status drv_d2h(void *ctx, void *dst, const void *src, size_t n) { return cuda_download(ctx, dst, src, n); }

static dsk_status drv_launch(void *ctx, void *fn, const dsk_gpu_launch *c, void **params)
{
    DSK_TRY(cuda_set_current(ctx));
    int cluster = c->cluster[0] * c->cluster[1] * c->cluster[2] > 1;
    if (cluster && !cu_launch_ex)
        return dsk_fail(DSK_ERR_UNSUPPORTED, "cuda launch: a cluster launch needs cuLaunchKernelEx (CUDA 12.0+ driver)");
    CU_CHECK(cu.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)c->dynamic_smem));
    if (cluster) {
        cu_launch_attr at;
        memset(&at, 0, sizeof at);
        at.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
        at.value.cluster_dim.x = c->cluster[0];
        at.value.cluster_dim.y = c->cluster[1];
        at.value.cluster_dim.z = c->cluster[2];
        cu_launch_config lc = {c->grid[0],  c->grid[1],  c->grid[2], c->block[0], c->block[1],
                               c->block[2], (unsigned)c->dynamic_smem, NULL, &at, 1};
        CU_CHECK(cu_launch_ex(&lc, fn, params, NULL));
    } else {
        CU_CHECK(cu.cuLaunchKernel(fn, c->grid[0], c->grid[1], c->grid[2], c->block[0], c->block[1], c->block[2],
                                   (unsigned)c->dynamic_smem, NULL, params, NULL));
    }
    CU_CHECK(cu.cuCtxSynchronize());
    return DSK_OK;
}

static dsk_status drv_tmap(void *ctx, dsk_tensor_map *map, dsk_tma_dtype dtype, int rank, void *addr,
                           const uint64_t *dims, const uint64_t *strides, const uint32_t *box,
                           const uint32_t *elem_strides, dsk_tma_swizzle swizzle)
{
    /* interleave NONE (0), L2 promotion 256B (3), OOB fill NONE (0: zeros) */
    CU_CHECK(cu.cuTensorMapEncodeTiled(map, (int)dtype, (unsigned)rank, addr, dims, strides, box, elem_strides, 0,
                                       (int)swizzle, 3, 0));
    return DSK_OK;
}

static const dsk_gpu_driver cuda_driver = {
    .name = "cuda",
    .cache_key = drv_cache_key,
    .module_load = drv_module_load,
    .module_unload = drv_module_unload,
    .function_get = drv_function_get,
    .mem_alloc = drv_mem_alloc,
    .mem_free = drv_mem_free,
    .copy_h2d = drv_h2d,
    .copy_d2h = drv_d2h,
    .launch = drv_launch,
    .tensor_map_encode = drv_tmap,
};

const dsk_gpu_driver *dsk_gpu_driver_cuda(void) { return &cuda_driver; }

static dsk_status cuda_gemm_fp8(dsk_device *dev, const dsk_gemm_fp8_args *a)
{
    dsk_arch arch;
    if (dsk_ptx_arch_parse(dev->props.arch, &arch))
        return dsk_fail(DSK_ERR_UNSUPPORTED, "dsk_gemm_fp8: %s (%s) has no dsk FP8 kernel (sm_90a and sm_89 only)",
                        dev->props.name, dev->props.arch);
    dsk_gemm_tile t;
    DSK_TRY(dsk_ptx_gemm_choose(dev, arch, a, "cuda", &t));
    return dsk_ptx_gemm_fp8_launch(&cuda_driver, dev, &t, a);
}

const dsk_backend dsk_backend_cuda = {
    .name = "cuda",
    .available = cuda_available,
    .open = cuda_open,
    .close = cuda_close,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .sync = cuda_sync,
    .fallback_cpu = 0,
    .gemm_fp8 = cuda_gemm_fp8,
};
