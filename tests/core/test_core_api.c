/* tests/core/test_core_api.c: status messages, tensors, the device registry. */
#include <string.h>
#include "tests/harness/harness.h"

int main(void)
{
    DSK_T_CHECK(!strcmp(dsk_status_name(DSK_ERR_INVALID_ARG), "DSK_ERR_INVALID_ARG"), "status names");
    DSK_T_CHECK(!strcmp(dsk_version(), DSK_VERSION_STRING), "version");

    dsk_device *dev = NULL;
    DSK_T_ERR(dsk_device_open("tpu:0", &dev), DSK_ERR_NOT_FOUND, "unknown device 'tpu:0', expected cpu, cuda:N, hip:N or emu:GPU");
    DSK_T_CHECK(dev == NULL, "failed open leaves out NULL");
    DSK_T_ERR(dsk_device_open("", &dev), DSK_ERR_INVALID_ARG, "name is empty");
    DSK_T_ERR(dsk_device_open(NULL, &dev), DSK_ERR_INVALID_ARG, "name is empty");
    DSK_T_ERR(dsk_device_open("cpu", NULL), DSK_ERR_INVALID_ARG, "out is NULL");
    DSK_T_ERR(dsk_device_open("cpu:3", &dev), DSK_ERR_INVALID_ARG, "cpu takes no index");
    if (DSK_T_OK(dsk_device_open("cpu", &dev))) {
        const dsk_device_props *p = dsk_device_get_props(dev);
        DSK_T_CHECK(!strcmp(p->backend, "cpu") && p->host_memory && p->num_sms >= 1, "cpu props");
        dsk_tensor t;
        DSK_T_OK(dsk_tensor_alloc(dev, DSK_BF16, 2, (int64_t[]){3, 5}, &t));
        DSK_T_CHECK(t.device == dev && t.stride[0] == 5 && dsk_tensor_nbytes(&t) == 30, "device tensor");
        dsk_tensor_free(&t);
        DSK_T_CHECK(t.data == NULL, "free clears data");
        DSK_T_ERR(dsk_tensor_alloc(dev, DSK_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, &t), DSK_ERR_INVALID_ARG, "rank is 5");
        DSK_T_ERR(dsk_tensor_alloc(dev, DSK_F32, 2, (int64_t[]){3, -1}, &t), DSK_ERR_INVALID_ARG, "shape[1] is -1");
        DSK_T_ERR(dsk_tensor_alloc(dev, (dsk_dtype)42, 1, (int64_t[]){3}, &t), DSK_ERR_INVALID_ARG, "dtype 42");
        DSK_T_ERR(dsk_device_upload(dev, NULL, "x", 1), DSK_ERR_INVALID_ARG, "dst or src is NULL");
        dsk_device_close(dev);
    }
    /* every registered backend answers available() and names itself */
    int n = dsk_backend_count();
    DSK_T_CHECK(n >= 1 && !strcmp(dsk_backend_name(0), "cpu"), "cpu backend first in the registry");
    for (int i = 0; i < n; i++) {
        char why[256];
        int ok = dsk_backend_available(i, why, sizeof why);
        DSK_T_CHECK(ok || why[0], "backend %s unavailable must say why", dsk_backend_name(i));
    }
    DSK_T_CHECK(dsk_backend_name(n) == NULL, "out-of-range backend index");

    dsk_tensor v = dsk_tensor_3d(NULL, DSK_F32, 2, 3, 4);
    char buf[64];
    DSK_T_CHECK(!strcmp(dsk_tensor_shape_str(&v, buf, sizeof buf), "[2, 3, 4]"), "shape string");
    DSK_T_CHECK(dsk_tensor_is_contiguous(&v) && dsk_tensor_numel(&v) == 24, "contiguous view");
    v.stride[2] = 2;
    DSK_T_CHECK(!dsk_tensor_is_contiguous(&v), "strided view is not contiguous");
    return dsk_t_finish();
}
