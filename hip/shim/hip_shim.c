/* hip/shim/hip_shim.c: the CPU SIMT shim (see hip_shim.h). Each GPU thread of a block is a
 * ucontext fiber with its own stack; the scheduler runs every runnable fiber until it blocks
 * (barrier, MFMA) or finishes, then releases what can proceed:
 *   - a wave whose 64 lanes all wait at an MFMA: the MFMA is evaluated for the whole wave;
 *   - a block whose threads all wait at a barrier: the barrier opens (a thread that has
 *     finished while others wait is an error, as __syncthreads in non-uniform code is).
 * When nothing can proceed but threads remain, the kernel has a barrier or an MFMA that not
 * every thread (lane) reached; the launch fails with a description instead of hanging.
 * Deterministic: one host thread, fibers in thread order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include "dsk/dtype.h"
#include "hip/shim/hip_shim.h"

enum { F_RUN, F_BAR, F_MFMA, F_DONE };

typedef struct fiber {
    ucontext_t ctx;
    char *stack;
    int state, tid;
    long mfma_a, mfma_b;
    dsk_f32x4 mfma_c, mfma_d;
} fiber;

#define STACK_BYTES (256 * 1024)
#define LDS_LIMIT 65536

static struct {
    fiber *f;
    int n;
    fiber *cur;
    ucontext_t sched;
    int bid[3];
    unsigned char *lds;
    char err[256];
    void (*body)(void *);
    void *arg;
    dsk_shim_stats stats;
} S;

static float fnuz_lut[256];

static void fnuz_init(void)
{
    for (int c = 0; c < 256; c++)
        fnuz_lut[c] = dsk_fp8_to_f32((uint8_t)c, DSK_E4M3FNUZ);
}

/* ---- the kernel-facing side ---- */
int dsk_shim_tid(void) { return S.cur->tid; }
int dsk_shim_bid(int dim) { return S.bid[dim]; }

static void block_on(int state)
{
    fiber *f = S.cur;
    f->state = state;
    swapcontext(&f->ctx, &S.sched);
}

unsigned char *dsk_shim_lds(size_t bytes)
{
    if (bytes > LDS_LIMIT) {
        snprintf(S.err, sizeof S.err, "kernel asks for %zu bytes of LDS, a gfx942 workgroup has %d", bytes, LDS_LIMIT);
        S.cur->state = F_DONE; /* abandon this fiber; the launch fails */
        swapcontext(&S.cur->ctx, &S.sched);
    }
    return S.lds;
}

void dsk_shim_syncthreads(void) { block_on(F_BAR); }

dsk_f32x4 dsk_shim_mfma_f32_16x16x32_fp8(long a, long b, dsk_f32x4 c)
{
    fiber *f = S.cur;
    f->mfma_a = a;
    f->mfma_b = b;
    f->mfma_c = c;
    block_on(F_MFMA);
    return f->mfma_d;
}

/* ---- MFMA: v_mfma_f32_16x16x32_fp8_fp8 over one wave ----
 * Register layout (AMD matrix instruction calculator, CDNA3, no modifiers):
 *   A[i][k]: lane 16 * (k / 8) + i, byte k % 8 of the 64-bit operand (GPR k/4 % 2, bits 8*(k%4))
 *   B[k][j]: lane 16 * (k / 8) + j, byte k % 8
 *   D[i][j]: lane 16 * (i / 4) + j, element i % 4                                    */
void dsk_shim_mfma_f32_16x16x32_fp8_ref(const unsigned char *A, const unsigned char *B, const float *C, float *D)
{
    if (!fnuz_lut[0x38])
        fnuz_init();
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double s = C[i * 16 + j];
            for (int k = 0; k < 32; k++)
                s += (double)fnuz_lut[A[i * 32 + k]] * (double)fnuz_lut[B[k * 16 + j]];
            D[i * 16 + j] = (float)s;
        }
}

static void mfma_wave(fiber *lanes)
{
    unsigned char A[16 * 32], B[32 * 16];
    float C[256], D[256];
    for (int l = 0; l < 64; l++)
        for (int byte = 0; byte < 8; byte++) {
            int k = 8 * (l / 16) + byte;
            A[(l % 16) * 32 + k] = (unsigned char)((unsigned long)lanes[l].mfma_a >> (8 * byte));
            B[k * 16 + l % 16] = (unsigned char)((unsigned long)lanes[l].mfma_b >> (8 * byte));
        }
    for (int l = 0; l < 64; l++)
        for (int r = 0; r < 4; r++)
            C[(4 * (l / 16) + r) * 16 + l % 16] = lanes[l].mfma_c[r];
    dsk_shim_mfma_f32_16x16x32_fp8_ref(A, B, C, D);
    for (int l = 0; l < 64; l++) {
        for (int r = 0; r < 4; r++)
            lanes[l].mfma_d[r] = D[(4 * (l / 16) + r) * 16 + l % 16];
        lanes[l].state = F_RUN;
    }
}

/* ---- the scheduler ---- */
static void fiber_main(void)
{
    S.body(S.arg);
    S.cur->state = F_DONE; /* returning resumes uc_link = the scheduler */
}

static int run_block(char *err, size_t err_len)
{
    memset(S.lds, 0xFF, LDS_LIMIT);
    for (int i = 0; i < S.n; i++) {
        fiber *f = &S.f[i];
        getcontext(&f->ctx);
        f->ctx.uc_stack.ss_sp = f->stack;
        f->ctx.uc_stack.ss_size = STACK_BYTES;
        f->ctx.uc_link = &S.sched;
        makecontext(&f->ctx, fiber_main, 0);
        f->state = F_RUN;
        f->tid = i;
    }
    for (;;) {
        for (int i = 0; i < S.n; i++)
            if (S.f[i].state == F_RUN) {
                S.cur = &S.f[i];
                swapcontext(&S.sched, &S.f[i].ctx);
            }
        if (S.err[0]) {
            snprintf(err, err_len, "block (%d, %d, %d): %s", S.bid[0], S.bid[1], S.bid[2], S.err);
            return -1;
        }
        int released = 0, live = 0, at_bar = 0, at_mfma = 0;
        for (int w = 0; w < S.n / 64; w++) {
            int nm = 0;
            for (int l = 0; l < 64; l++)
                nm += S.f[w * 64 + l].state == F_MFMA;
            if (nm == 64) {
                mfma_wave(&S.f[w * 64]);
                S.stats.mfma_waves++;
                released = 1;
            }
        }
        for (int i = 0; i < S.n; i++) {
            live += S.f[i].state != F_DONE;
            at_bar += S.f[i].state == F_BAR;
            at_mfma += S.f[i].state == F_MFMA;
        }
        if (!live)
            return 0;
        if (!released && at_bar == live && live < S.n) {
            snprintf(err, err_len,
                     "block (%d, %d, %d): %d threads wait at a barrier that %d finished threads never reached (a "
                     "barrier must be reached by the whole block: an early return must be taken by every thread)",
                     S.bid[0], S.bid[1], S.bid[2], at_bar, S.n - live);
            return -1;
        }
        if (!released && at_bar == live) {
            for (int i = 0; i < S.n; i++)
                if (S.f[i].state == F_BAR)
                    S.f[i].state = F_RUN;
            S.stats.barriers++;
            released = 1;
        }
        if (!released) {
            snprintf(err, err_len,
                     "block (%d, %d, %d): stuck with %d threads at a barrier, %d at an MFMA, %d finished: a barrier "
                     "or an MFMA that not every thread (lane of the wave) reached",
                     S.bid[0], S.bid[1], S.bid[2], at_bar, at_mfma, S.n - live);
            return -1;
        }
    }
}

int dsk_shim_launch(const unsigned grid[3], unsigned threads, void (*body)(void *arg), void *arg, char *err,
                    size_t err_len)
{
    if (threads == 0 || threads % 64 || threads > 1024) {
        snprintf(err, err_len, "threads = %u, expected a multiple of 64 in [64, 1024]", threads);
        return -1;
    }
    if (!fnuz_lut[0x38])
        fnuz_init();
    memset(&S, 0, sizeof S);
    S.n = (int)threads;
    S.body = body;
    S.arg = arg;
    S.f = calloc(threads, sizeof *S.f);
    S.lds = malloc(LDS_LIMIT);
    int rc = S.f && S.lds ? 0 : -1;
    for (unsigned i = 0; i < threads && !rc; i++)
        if (!(S.f[i].stack = malloc(STACK_BYTES)))
            rc = -1;
    if (rc)
        snprintf(err, err_len, "out of memory for %u fibers", threads);
    for (unsigned z = 0; z < grid[2] && !rc; z++)
        for (unsigned y = 0; y < grid[1] && !rc; y++)
            for (unsigned x = 0; x < grid[0] && !rc; x++) {
                S.bid[0] = (int)x;
                S.bid[1] = (int)y;
                S.bid[2] = (int)z;
                rc = run_block(err, err_len);
                S.stats.blocks++;
            }
    for (unsigned i = 0; S.f && i < threads; i++)
        free(S.f[i].stack);
    free(S.f);
    free(S.lds);
    dsk_shim_stats st = S.stats;
    memset(&S, 0, sizeof S);
    S.stats = st;
    return rc;
}

dsk_shim_stats dsk_shim_last_stats(void) { return S.stats; }
