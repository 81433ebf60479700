/* tests/model/fuzz/fuzz_json.c: libFuzzer target for the strict JSON parser
 * (core/json.c). Any input must give a value or an error, never a crash, a leak or a
 * read outside the input (AddressSanitizer + UBSan). */
#include <stddef.h>
#include <stdint.h>
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsk_json *j = NULL;
    if (dsk_json_parse((const char *)data, size, "fuzz.json", &j) == DSK_OK) {
        /* walk it: lookups must be safe on whatever was parsed */
        (void)dsk_json_get(j, "weight_map");
        (void)dsk_json_get(j, "");
        dsk_json_free(j);
    }
    return 0;
}
