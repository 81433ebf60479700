/* tests/model/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors header and
 * layout validation (model/safetensors.c) and the sharded index parser. Whatever the
 * bytes, the reader must refuse them or accept them with every tensor inside the
 * buffer; accepted tensors are read end to end so ASan sees any range that lies. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsk_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return 0;
    if (dsk_st_parse_buffer(st, data, size, "fuzz.safetensors", 0) == DSK_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < st->n_tensors; i++)
            for (size_t b = 0; b < st->tensors[i].nbytes; b++)
                sink ^= st->tensors[i].data[b];
        (void)sink;
    }
    dsk_st_close(st);
    dsk_st_index ix;
    if (dsk_st_parse_index((const char *)data, size, "fuzz.index.json", &ix) == DSK_OK)
        dsk_st_index_free(&ix);
    return 0;
}
