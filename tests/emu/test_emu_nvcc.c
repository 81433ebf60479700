/* tests/emu/test_emu_nvcc.c: CUDA C kernels compiled to PTX by nvcc at test time
 * (`nvcc -ptx -arch=sm_90a`), run on the emulator and compared with the same computation
 * written in C. This checks the emulator against PTX it did not write itself: integer and
 * float arithmetic and conversions, divergent loops, shuffles and votes, shared-memory
 * reductions with barriers, atomics, inline-asm ldmatrix + mma.sync (bf16 and e4m3) and
 * the FP8 cvt packs. Skipped (exit 77) when nvcc is absent. */
#include <math.h>
#include "emu_test_util.h"

static const char *cuda_src =
    "#include <cuda_fp16.h>\n"
    "#include <cuda_bf16.h>\n"
    "extern \"C\" __global__ void k_int(const int *a, const int *b, int *out, int n) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i >= n) return;\n"
    "  int x = a[i], y = b[i]; unsigned ux = (unsigned)x, uy = (unsigned)y;\n"
    "  int *o = out + i * 16;\n"
    "  o[0] = x + y; o[1] = x * y; o[2] = x / y; o[3] = x % y;\n"
    "  o[4] = (int)(ux / uy); o[5] = min(x, y); o[6] = max(x, y); o[7] = x >> (y & 31);\n"
    "  o[8] = (int)(ux >> (uy & 31)); o[9] = x << (y & 31); o[10] = __popc(ux); o[11] = __clz(x);\n"
    "  o[12] = (int)__brev(ux); o[13] = __mulhi(x, y); o[14] = (int)(((long long)x * y) >> 7);\n"
    "  o[15] = (x & y) ^ (x | ~y);\n"
    "}\n"
    "extern \"C\" __global__ void k_float(const float *a, const float *b, float *out, int *iout,\n"
    "                                     unsigned short *hout, int n) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i >= n) return;\n"
    "  float x = a[i], y = b[i];\n"
    "  float *o = out + i * 12;\n"
    "  o[0] = x + y; o[1] = x * y; o[2] = x / y; o[3] = sqrtf(fabsf(x)); o[4] = fmaf(x, y, 1.5f);\n"
    "  o[5] = fminf(x, y); o[6] = fmaxf(x, y); o[7] = rintf(x); o[8] = floorf(x); o[9] = ceilf(y);\n"
    "  o[10] = truncf(x * y); o[11] = (float)(int)x;\n"
    "  int *io = iout + i * 4;\n"
    "  io[0] = (int)x; io[1] = __float2int_rn(x); io[2] = (int)(unsigned)fabsf(y); io[3] = __float_as_int(x) ^ 5;\n"
    "  hout[2 * i] = __half_as_ushort(__float2half_rn(x));\n"
    "  hout[2 * i + 1] = __bfloat16_as_ushort(__float2bfloat16_rn(y));\n"
    "}\n"
    "extern \"C\" __global__ void k_loop(const int *a, int *out) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  int v = a[i] & 1023, steps = 0;\n"
    "  while (v != 1 && steps < 200) { v = (v & 1) ? 3 * v + 1 : v / 2; steps++; if (v == 0) break; }\n"
    "  int s = steps;\n"
    "  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);\n"
    "  out[i * 5 + 0] = steps; out[i * 5 + 1] = s;\n"
    "  out[i * 5 + 2] = (int)__ballot_sync(0xffffffffu, steps > 20);\n"
    "  out[i * 5 + 3] = __shfl_up_sync(0xffffffffu, steps, 3) + 1000 * __shfl_down_sync(0xffffffffu, steps, 5)\n"
    "                 + 1000000 * __shfl_sync(0xffffffffu, steps, (threadIdx.x * 7) & 31);\n"
    "  out[i * 5 + 4] = __any_sync(0xffffffffu, steps > 100) + 2 * __all_sync(0xffffffffu, steps > 0);\n"
    "}\n"
    "extern \"C\" __global__ void k_block(const float *a, float *sums, int *counts, unsigned *mx, int n) {\n"
    "  __shared__ float s[256];\n"
    "  int t = threadIdx.x, i = blockIdx.x * 256 + t;\n"
    "  float v = i < n ? a[i] : 0.f;\n"
    "  s[t] = v; __syncthreads();\n"
    "  for (int st = 128; st > 0; st >>= 1) { if (t < st) s[t] += s[t + st]; __syncthreads(); }\n"
    "  if (t == 0) sums[blockIdx.x] = s[0];\n"
    "  if (i < n) { atomicAdd(&counts[((int)v) & 7], 1); atomicMax(mx, (unsigned)(v * 100.f)); }\n"
    "}\n"
    "extern \"C\" __global__ void k_mma_bf16(const unsigned short *A, const unsigned short *Bt, float *D) {\n"
    "  __shared__ __align__(16) unsigned short sa[16 * 16], sb[8 * 16];\n"
    "  int l = threadIdx.x;\n"
    "  for (int i = l; i < 256; i += 32) sa[i] = A[i];\n"
    "  for (int i = l; i < 128; i += 32) sb[i] = Bt[i];\n"
    "  __syncwarp();\n"
    "  unsigned a0, a1, a2, a3, b0, b1;\n"
    "  unsigned pa = (unsigned)__cvta_generic_to_shared(&sa[(l % 16) * 16 + (l / 16) * 8]);\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\"\n"
    "               : \"=r\"(a0), \"=r\"(a1), \"=r\"(a2), \"=r\"(a3) : \"r\"(pa));\n"
    "  unsigned pb = (unsigned)__cvta_generic_to_shared(&sb[(l % 8) * 16 + ((l / 8) % 2) * 8]);\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\" : \"=r\"(b0), \"=r\"(b1) : \"r\"(pb));\n"
    "  float d0 = 0.5f, d1 = 0.5f, d2 = 0.5f, d3 = 0.5f;\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\"\n"
    "               : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3) : \"r\"(a0), \"r\"(a1), \"r\"(a2), \"r\"(a3), \"r\"(b0), \"r\"(b1));\n"
    "  int g = l / 4, t = l % 4;\n"
    "  D[g * 8 + 2 * t] = d0; D[g * 8 + 2 * t + 1] = d1; D[(g + 8) * 8 + 2 * t] = d2; D[(g + 8) * 8 + 2 * t + 1] = d3;\n"
    "}\n"
    "extern \"C\" __global__ void k_mma_e4m3(const unsigned char *A, const unsigned char *Bt, float *D) {\n"
    "  int l = threadIdx.x, g = l / 4, t = l % 4;\n"
    "  unsigned a[4], b[2];\n"
    "  for (int r = 0; r < 4; r++) a[r] = *(const unsigned *)(A + (g + 8 * (r & 1)) * 32 + 4 * t + 16 * (r >> 1));\n"
    "  for (int r = 0; r < 2; r++) b[r] = *(const unsigned *)(Bt + g * 32 + 4 * t + 16 * r);\n"
    "  float d0 = 0, d1 = 0, d2 = 0, d3 = 0;\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\"\n"
    "               : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3) : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "  D[g * 8 + 2 * t] = d0; D[g * 8 + 2 * t + 1] = d1; D[(g + 8) * 8 + 2 * t] = d2; D[(g + 8) * 8 + 2 * t + 1] = d3;\n"
    "}\n"
    "extern \"C\" __global__ void k_cvt8(const float *x, unsigned short *e4, unsigned short *e5, unsigned *h2) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  unsigned short r;\n"
    "  asm(\"cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\" : \"=h\"(r) : \"f\"(x[2 * i]), \"f\"(x[2 * i + 1])); e4[i] = r;\n"
    "  asm(\"cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;\" : \"=h\"(r) : \"f\"(x[2 * i]), \"f\"(x[2 * i + 1])); e5[i] = r;\n"
    "  unsigned h; unsigned short c = (unsigned short)i;\n"
    "  asm(\"cvt.rn.f16x2.e4m3x2 %0, %1;\" : \"=r\"(h) : \"h\"(c)); h2[i] = h;\n"
    "}\n";

static dsk_emu_module *mod;

static void *emu_buf(size_t bytes)
{
    void *p = NULL;
    if (dsk_emu_alloc(bytes, &p) != DSK_OK) {
        fprintf(stderr, "alloc: %s\n", dsk_last_error());
        exit(1);
    }
    memset(p, 0xFF, bytes);  /* poison */
    return p;
}

static int launch(const char *k, unsigned grid, unsigned block, void **params)
{
    dsk_emu_launch_cfg cfg = {{grid, 1, 1}, {block, 1, 1}, {0, 0, 0}, 0};
    dsk_status s = dsk_emu_launch(mod, k, &cfg, params, NULL, NULL, NULL);
    return DSK_T_CHECK(s == DSK_OK, "launch %s: %s", k, dsk_last_error());
}

static void test_int(void)
{
    int n = 1000;
    dsk_rng r = dsk_t_rng(1);
    int *a = emu_buf(sizeof(int) * (size_t)n), *b = emu_buf(sizeof(int) * (size_t)n), *o = emu_buf(sizeof(int) * 16 * (size_t)n);
    for (int i = 0; i < n; i++) {
        a[i] = (int)dsk_rng_int(&r, -(1 << 30), 1 << 30);
        b[i] = (int)dsk_rng_int(&r, -(1 << 15), 1 << 15);
        if (b[i] == 0) b[i] = 7;
    }
    void *p[] = {&a, &b, &o, &n};
    if (!launch("k_int", 8, 128, p)) return;
    int bad = 0;
    for (int i = 0; i < n && bad < 5; i++) {
        int x = a[i], y = b[i];
        unsigned ux = (unsigned)x, uy = (unsigned)y;
        unsigned rev = 0;
        for (int k = 0; k < 32; k++) rev |= ((ux >> k) & 1u) << (31 - k);
        int e[16] = {(int)(ux + uy), (int)(ux * uy), x / y, x % y, (int)(ux / uy), x < y ? x : y, x > y ? x : y,
                     x >> (y & 31), (int)(ux >> (uy & 31)), (int)(ux << (y & 31)), __builtin_popcount(ux),
                     x ? __builtin_clz(ux) : 32, (int)rev, (int)(((long long)x * y) >> 32), (int)(((long long)x * y) >> 7),
                     (x & y) ^ (x | ~y)};
        for (int k = 0; k < 16; k++)
            if (o[i * 16 + k] != e[k]) {
                bad++;
                DSK_T_CHECK(0, "k_int element %d op %d: a=%d b=%d got %d expected %d", i, k, x, y, o[i * 16 + k], e[k]);
            }
    }
    DSK_T_CHECK(bad == 0, "k_int: %d mismatches (exact integer results expected)", bad);
    dsk_emu_free(a); dsk_emu_free(b); dsk_emu_free(o);
}

static void test_float(void)
{
    int n = 777;  /* ragged: not a multiple of the block */
    dsk_rng r = dsk_t_rng(2);
    float *a = emu_buf(4 * (size_t)n), *b = emu_buf(4 * (size_t)n), *o = emu_buf(4 * 12 * (size_t)n);
    int *io = emu_buf(4 * 4 * (size_t)n);
    uint16_t *ho = emu_buf(2 * 2 * (size_t)n);
    for (int i = 0; i < n; i++) {
        a[i] = (float)(dsk_rng_normal(&r) * 1000.0);
        b[i] = (float)(dsk_rng_normal(&r) * 3.0);
        if (i % 10 == 0) a[i] = (float)((int)a[i]) + 0.5f;  /* rounding ties */
    }
    void *p[] = {&a, &b, &o, &io, &ho, &n};
    if (!launch("k_float", 7, 128, p)) return;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float x = a[i], y = b[i];
        float e[12] = {x + y, x * y, x / y, sqrtf(fabsf(x)), fmaf(x, y, 1.5f), fminf(x, y), fmaxf(x, y), rintf(x),
                       floorf(x), ceilf(y), truncf(x * y), (float)(int)x};
        for (int k = 0; k < 12; k++)  /* exact: IEEE operations, round to nearest even */
            if (memcmp(&o[i * 12 + k], &e[k], 4)) {
                if (bad++ < 5) DSK_T_CHECK(0, "k_float %d op %d: x=%.9g y=%.9g got %.9g expected %.9g", i, k, x, y, o[i * 12 + k], e[k]);
            }
        int ie[4] = {(int)x, (int)rintf(x), (int)(unsigned)fabsf(y), 0};
        memcpy(&ie[3], &x, 4);
        ie[3] ^= 5;
        for (int k = 0; k < 4; k++)
            if (io[i * 4 + k] != ie[k] && bad++ < 5) DSK_T_CHECK(0, "k_float int %d op %d: got %d expected %d", i, k, io[i * 4 + k], ie[k]);
        if (ho[2 * i] != dsk_f32_to_f16(x) && bad++ < 5) DSK_T_CHECK(0, "f16 of %.9g: got 0x%04x", x, ho[2 * i]);
        if (ho[2 * i + 1] != dsk_f32_to_bf16(y) && bad++ < 5) DSK_T_CHECK(0, "bf16 of %.9g: got 0x%04x", y, ho[2 * i + 1]);
    }
    DSK_T_CHECK(bad == 0, "k_float: %d mismatches (bit-exact expected)", bad);
    dsk_emu_free(a); dsk_emu_free(b); dsk_emu_free(o); dsk_emu_free(io); dsk_emu_free(ho);
}

static void test_loop(void)
{
    int n = 256;
    dsk_rng r = dsk_t_rng(3);
    int *a = emu_buf(4 * (size_t)n), *o = emu_buf(4 * 5 * (size_t)n);
    for (int i = 0; i < n; i++) a[i] = (int)dsk_rng_int(&r, 0, 100000);
    void *p[] = {&a, &o};
    if (!launch("k_loop", 2, 128, p)) return;
    int steps[256];
    for (int i = 0; i < n; i++) {
        int v = a[i] & 1023, s = 0;
        while (v != 1 && s < 200) { v = (v & 1) ? 3 * v + 1 : v / 2; s++; if (v == 0) break; }
        steps[i] = s;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int w0 = i / 32 * 32, l = i % 32, sum = 0;
        unsigned ballot = 0;
        int any = 0, all = 1;
        for (int k = 0; k < 32; k++) {
            sum += steps[w0 + k];
            if (steps[w0 + k] > 20) ballot |= 1u << k;
            any |= steps[w0 + k] > 100;
            all &= steps[w0 + k] > 0;
        }
        int up = l >= 3 ? steps[i - 3] : steps[i], down = l + 5 < 32 ? steps[i + 5] : steps[i];
        int idx = steps[w0 + ((l * 7) & 31)];
        int e[5] = {steps[i], sum, (int)ballot, up + 1000 * down + 1000000 * idx, any + 2 * all};
        for (int k = 0; k < 5; k++)
            if (o[i * 5 + k] != e[k] && bad++ < 5) DSK_T_CHECK(0, "k_loop thread %d value %d: got %d expected %d", i, k, o[i * 5 + k], e[k]);
    }
    DSK_T_CHECK(bad == 0, "k_loop: %d mismatches", bad);
    dsk_emu_free(a); dsk_emu_free(o);
}

static void test_block(void)
{
    int n = 1000, nb = 4;
    dsk_rng r = dsk_t_rng(4);
    float *a = emu_buf(4 * (size_t)n), *sums = emu_buf(4 * (size_t)nb);
    int *counts = emu_buf(4 * 8);
    unsigned *mx = emu_buf(4);
    memset(counts, 0, 32);
    *mx = 0;
    for (int i = 0; i < n; i++) a[i] = (float)dsk_rng_uniform(&r) * 50.0f;
    void *p[] = {&a, &sums, &counts, &mx, &n};
    if (!launch("k_block", (unsigned)nb, 256, p)) return;
    int ec[8] = {0};
    unsigned emx = 0;
    for (int bI = 0; bI < nb; bI++) {
        float s[256];
        for (int t = 0; t < 256; t++) s[t] = bI * 256 + t < n ? a[bI * 256 + t] : 0.f;
        for (int st = 128; st > 0; st >>= 1)
            for (int t = 0; t < st; t++) s[t] += s[t + st];
        DSK_T_CHECK(memcmp(&sums[bI], &s[0], 4) == 0, "k_block sum of block %d: got %.9g expected %.9g (same order, exact)", bI, sums[bI], s[0]);
    }
    for (int i = 0; i < n; i++) {
        ec[((int)a[i]) & 7]++;
        unsigned v = (unsigned)(a[i] * 100.f);
        if (v > emx) emx = v;
    }
    for (int k = 0; k < 8; k++) DSK_T_CHECK(counts[k] == ec[k], "atomicAdd count %d: got %d expected %d", k, counts[k], ec[k]);
    DSK_T_CHECK(*mx == emx, "atomicMax: got %u expected %u", *mx, emx);
    dsk_emu_free(a); dsk_emu_free(sums); dsk_emu_free(counts); dsk_emu_free(mx);
}

static void test_mma(void)
{
    dsk_rng r = dsk_t_rng(5);
    uint16_t *A = emu_buf(2 * 256), *Bt = emu_buf(2 * 128);
    float *D = emu_buf(4 * 128);
    for (int i = 0; i < 256; i++) A[i] = dsk_f32_to_bf16((float)dsk_rng_normal(&r));
    for (int i = 0; i < 128; i++) Bt[i] = dsk_f32_to_bf16((float)dsk_rng_normal(&r));
    void *p[] = {&A, &Bt, &D};
    if (launch("k_mma_bf16", 1, 32, p)) {
        double maxerr = 0;
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double s = 0.5;
                for (int k = 0; k < 16; k++) s += (double)dsk_bf16_to_f32(A[m * 16 + k]) * dsk_bf16_to_f32(Bt[n * 16 + k]);
                double e = fabs(D[m * 8 + n] - s) / (fabs(s) + 1e-3);
                if (!(e <= maxerr)) maxerr = e;
            }
        /* bf16 products are exact in f32; one f32 rounding of the sum: rel. error <= 2^-23 (+ abs floor) */
        DSK_T_CHECK(maxerr < 1e-6, "ldmatrix + mma.sync bf16: max rel error %.3g (tolerance 1e-6)", maxerr);
    }
    uint8_t *A8 = emu_buf(16 * 32), *B8 = emu_buf(8 * 32);
    for (int i = 0; i < 512; i++) A8[i] = dsk_f32_to_fp8((float)dsk_rng_normal(&r) * 4, DSK_E4M3);
    for (int i = 0; i < 256; i++) B8[i] = dsk_f32_to_fp8((float)dsk_rng_normal(&r) * 4, DSK_E4M3);
    void *p8[] = {&A8, &B8, &D};
    if (launch("k_mma_e4m3", 1, 32, p8)) {
        int bad = 0;
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double s = 0;
                for (int k = 0; k < 32; k++) s += (double)dsk_fp8_to_f32(A8[m * 32 + k], DSK_E4M3) * dsk_fp8_to_f32(B8[n * 32 + k], DSK_E4M3);
                bad += D[m * 8 + n] != (float)s;  /* the exact sum rounded once (ideal accumulation) */
            }
        DSK_T_CHECK(bad == 0, "mma.sync m16n8k32 e4m3: %d of 128 outputs differ from the exactly rounded sum", bad);
    }
    dsk_emu_free(A); dsk_emu_free(Bt); dsk_emu_free(D); dsk_emu_free(A8); dsk_emu_free(B8);
}

static void test_cvt8(void)
{
    /* inputs: every e4m3/e5m2 value, the midpoints between neighbours (ties), points just
     * beside them, values beyond the largest finite value, NaN and infinities */
    int n = 65536;
    float *x = emu_buf(4 * 2 * (size_t)n);
    uint16_t *e4 = emu_buf(2 * (size_t)n), *e5 = emu_buf(2 * (size_t)n);
    uint32_t *h2 = emu_buf(4 * (size_t)n);
    int k = 0;
    for (int f = 0; f < 2; f++) {
        dsk_dtype t = f ? DSK_E5M2 : DSK_E4M3;
        for (int c = 0; c < 256; c++) {
            float v = dsk_fp8_to_f32((uint8_t)c, t), w = dsk_fp8_to_f32((uint8_t)(c + 1), t);
            x[k++] = v;
            if (isfinite(v) && isfinite(w) && (c & 0x7F) != 0x7F) {
                float mid = (v + w) / 2;
                x[k++] = mid;
                x[k++] = nextafterf(mid, INFINITY);
                x[k++] = nextafterf(mid, -INFINITY);
            }
        }
    }
    float special[] = {1e6f, -1e6f, 465.f, 449.f, 480.f, -480.f, 57344.f, 61440.f, 61439.f, INFINITY, -INFINITY, NAN, 0.f, -0.f, 1e-30f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[k++] = special[i];
    dsk_rng r = dsk_t_rng(6);
    while (k < 2 * n) x[k++] = (float)(dsk_rng_normal(&r) * pow(2.0, (double)dsk_rng_int(&r, -20, 17)));
    void *p[] = {&x, &e4, &e5, &h2};
    if (!launch("k_cvt8", (unsigned)n / 256, 256, p)) return;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        /* cvt.rn.satfinite.e4m3x2.f32 d, a, b: a (the first source) in the upper byte */
        uint16_t w4 = (uint16_t)(dsk_f32_to_fp8(x[2 * i], DSK_E4M3) << 8 | dsk_f32_to_fp8(x[2 * i + 1], DSK_E4M3));
        uint16_t w5 = (uint16_t)(dsk_f32_to_fp8(x[2 * i], DSK_E5M2) << 8 | dsk_f32_to_fp8(x[2 * i + 1], DSK_E5M2));
        uint32_t wh = (uint32_t)dsk_f32_to_f16(dsk_fp8_to_f32((uint8_t)(i >> 8), DSK_E4M3)) << 16 |
                      dsk_f32_to_f16(dsk_fp8_to_f32((uint8_t)i, DSK_E4M3));
        if (e4[i] != w4 && bad++ < 5) DSK_T_CHECK(0, "e4m3x2 of (%.9g, %.9g): got 0x%04x expected 0x%04x", x[2 * i], x[2 * i + 1], e4[i], w4);
        if (e5[i] != w5 && bad++ < 5) DSK_T_CHECK(0, "e5m2x2 of (%.9g, %.9g): got 0x%04x expected 0x%04x", x[2 * i], x[2 * i + 1], e5[i], w5);
        if (h2[i] != wh && bad++ < 5) DSK_T_CHECK(0, "f16x2.e4m3x2 of 0x%04x: got 0x%08x expected 0x%08x", i, h2[i], wh);
    }
    DSK_T_CHECK(bad == 0, "FP8 cvt packs: %d mismatches (bit-exact against core's conversions)", bad);
    dsk_emu_free(x); dsk_emu_free(e4); dsk_emu_free(e5); dsk_emu_free(h2);
}

int main(void)
{
    char *ptx = emu_t_nvcc(cuda_src, "sm_90a");
    if (!DSK_T_CHECK(ptx != NULL, "nvcc failed to compile the test kernels")) return dsk_t_finish();
    if (!DSK_T_OK(dsk_emu_module_load(ptx, "nvcc_kernels.ptx", &mod))) return dsk_t_finish();
    test_int();
    test_float();
    test_loop();
    test_block();
    test_mma();
    test_cvt8();
    dsk_emu_module_free(mod);
    free(ptx);
    return dsk_t_finish();
}
