/* dsk/device.h: devices, opened by name through the backend registry.
 *
 * Names: "cpu"; "cuda:N" (NVIDIA, libcuda loaded with dlopen); "hip:N" (AMD);
 * "emu:GPU" (the PTX emulator taking on a GPU's properties, e.g. emu:h800, emu:h20,
 * emu:4090). Everything above the backend (driver, tuner, CLI) is written once
 * against this interface. */
#ifndef DSK_DEVICE_H
#define DSK_DEVICE_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsk_device dsk_device;

typedef struct dsk_device_props {
    char name[64];          /* the name it was opened with, e.g. "emu:h800" */
    char backend[16];       /* "cpu", "cuda", "hip", "emu" */
    char description[128];  /* e.g. "NVIDIA H800 SXM5 (emulated)", "Intel Xeon ... (AVX-512 BF16)" */
    char arch[16];          /* "sm_90a", "sm_89", "gfx942", or the CPU ISA level "avx512bf16" */
    int num_sms;            /* SMs / CUs; CPU: cores used */
    size_t smem_per_block;  /* bytes of shared memory a block may use (0 on CPU) */
    size_t smem_per_sm;
    int regs_per_sm;
    size_t mem_bytes;       /* device memory (CPU: physical memory) */
    int host_memory;        /* 1 when device pointers are host pointers (cpu, emu) */
} dsk_device_props;

/* Opens a device by name. Unknown names: DSK_ERR_NOT_FOUND, message lists the known forms. */
dsk_status dsk_device_open(const char *name, dsk_device **out);
void dsk_device_close(dsk_device *dev);
const dsk_device_props *dsk_device_get_props(const dsk_device *dev);

dsk_status dsk_device_alloc(dsk_device *dev, size_t bytes, void **ptr);
void dsk_device_free(dsk_device *dev, void *ptr);
dsk_status dsk_device_upload(dsk_device *dev, void *dst, const void *src, size_t bytes);
dsk_status dsk_device_download(dsk_device *dev, void *dst, const void *src, size_t bytes);
dsk_status dsk_device_sync(dsk_device *dev);

/* Name of the kernel the last op on this device ran (e.g. "gemm_fp8_cpu_avx512bf16_decode",
 * "gemm_fp8_sm90a_128x112_s6_c1"), "" if none. */
const char *dsk_device_last_kernel(const dsk_device *dev);

/* Registry listing: number of backends, and each one's name and whether it can open
 * a device on this machine (with the reason when not). */
int dsk_backend_count(void);
const char *dsk_backend_name(int i);
int dsk_backend_available(int i, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif
