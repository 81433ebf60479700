/* A program outside dsk that uses the installed library: opens the cpu device and runs a
 * small checked GEMM through the public API only. */
#include <stdio.h>
#include <string.h>
#include <dsk/dsk.h>

int main(void)
{
    dsk_device *dev;
    if (dsk_device_open("cpu", &dev) != DSK_OK) {
        fprintf(stderr, "open: %s\n", dsk_last_error());
        return 1;
    }
    unsigned char a[256], b[256];
    float as[2] = {1, 1}, bs[2] = {0.5f, 0.5f}, d = 0;
    memset(a, 0x38, sizeof a); /* e4m3 1.0 */
    memset(b, 0x40, sizeof b); /* e4m3 2.0 */
    dsk_tensor ta = dsk_tensor_2d(a, DSK_E4M3, 1, 256), tb = dsk_tensor_2d(b, DSK_E4M3, 1, 256);
    dsk_tensor tas = dsk_tensor_2d(as, DSK_F32, 1, 2), tbs = dsk_tensor_2d(bs, DSK_F32, 1, 2);
    dsk_tensor td = dsk_tensor_2d(&d, DSK_F32, 1, 1);
    dsk_gemm_fp8_args g = {DSK_GEMM_DENSE, &ta, &tas, &tb, &tbs, &td, NULL, NULL};
    if (dsk_gemm_fp8(dev, &g) != DSK_OK) {
        fprintf(stderr, "gemm: %s\n", dsk_last_error());
        return 1;
    }
    dsk_device_close(dev);
    printf("consumer: d = %g (expected 256), dsk %s\n", d, dsk_version());
    return d == 256.0f ? 0 : 1;
}
