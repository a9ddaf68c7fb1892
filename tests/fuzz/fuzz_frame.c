/* fuzz_frame.c - libFuzzer target: arbitrary bytes, split arbitrarily, into the frame decoder.
 * The first input byte picks the chunk size, so split frames are exercised too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/frame.h"

static int on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    size_t *sum = ctx;
    /* Touch every delivered byte so ASan checks the bounds. */
    for (uint32_t i = 0; i < ml; i++)
        *sum += meta[i];
    for (uint32_t i = 0; i < pn; i++)
        *sum += pl[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    aipc_decoder d;
    aipc_decoder_init(&d, 256, 4096);      /* small limits so oversize paths are reached */
    size_t sum = 0;
    for (size_t i = 0; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        size_t want;
        uint8_t *direct = aipc_decoder_direct(&d, &want);
        if (direct && (data[i] & 1)) {       /* sometimes use the zero-copy path */
            size_t take = want < n ? want : n;
            memcpy(direct, data + i, take);
            if (aipc_decoder_commit(&d, take, on_frame, &sum) != 0)
                break;
            if (take < n && aipc_decoder_feed(&d, data + i + take, n - take, on_frame, &sum, NULL) != 0)
                break;
            continue;
        }
        if (aipc_decoder_feed(&d, data + i, n, on_frame, &sum, NULL) != 0)
            break;
    }
    aipc_decoder_free(&d);
    return (int)(sum & 0);
}
