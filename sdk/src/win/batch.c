/* batch.c - growable send batch: frames (header + meta + payload) back to back plus what to
 * report per frame (a message's size, or AIPC__BATCH_CTL for a control frame), so the I/O
 * thread can hand a whole batch to one WriteFile and then report OnSend per message.
 * Thread: callers serialise access (Send under the pipe lock, the I/O thread for its batch). */
#include "pipe_internal.h"

#include <stdlib.h>
#include <string.h>

/* Buffers up to BATCH_KEEP_SMALL are kept. A larger one (up to BATCH_KEEP_MAX) is kept while
 * the batches use it - a stream of large messages then copies each one once and allocates
 * nothing - and released after BATCH_SPARSE_RUNS batches in a row used less than a sixteenth
 * of it, so one burst of large messages does not pin memory for the rest of the pipe's life. */
#define BATCH_KEEP_SMALL  (1u * 1024u * 1024u)
#define BATCH_KEEP_MAX    (16u * 1024u * 1024u)
#define BATCH_SPARSE_RUNS 8u
#define BATCH_KEEP_SIZES  (64u * 1024u)

/* Grows *buf to hold at least `need` elements of `elem` bytes (doubling, from `first`). */
static int grow(void **buf, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return AIPC_ENOMEM;
        ncap *= 2;
    }
    void *nb = realloc(*buf, ncap * elem);
    if (!nb)
        return AIPC_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

int aipc__batch_append(aipc__batch *b, const void *data, uint32_t size)
{
    return aipc__batch_append_meta(b, NULL, 0, data, size, size);
}

int aipc__batch_append_meta(aipc__batch *b, const void *meta, uint32_t meta_len, const void *data,
                            uint32_t size, uint32_t report)
{
    size_t need = b->len + AIPC_HDR_SIZE + (size_t)meta_len + (size_t)size;
    if (need < b->len)
        return AIPC_ENOMEM;
    if (b->len == 0 && need > b->cap && b->buf) {
        free(b->buf);         /* an empty batch's buffer has nothing to copy */
        b->buf = NULL;
        b->cap = 0;
    }
    if (grow((void **)&b->buf, &b->cap, need, 1, 64u * 1024u) != 0)
        return AIPC_ENOMEM;
    if (grow((void **)&b->sizes, &b->scap, b->count + 1, sizeof *b->sizes, 256) != 0)
        return AIPC_ENOMEM;
    uint8_t *at = b->buf + b->len;
    aipc_frame_put_header(at, meta_len, size);
    if (meta_len)
        memcpy(at + AIPC_HDR_SIZE, meta, meta_len);
    if (size)
        memcpy(at + AIPC_HDR_SIZE + meta_len, data, size);
    b->len = need;
    b->sizes[b->count++] = report;
    return 0;
}

void aipc__batch_clear(aipc__batch *b)
{
    if (b->cap > BATCH_KEEP_SMALL)
        b->sparse = b->len < b->cap / 16 ? b->sparse + 1 : 0;
    b->len = 0;
    b->count = 0;
    if (b->cap > BATCH_KEEP_MAX || (b->cap > BATCH_KEEP_SMALL && b->sparse >= BATCH_SPARSE_RUNS)) {
        free(b->buf);
        b->buf = NULL;
        b->cap = 0;
        b->sparse = 0;
    }
    if (b->scap > BATCH_KEEP_SIZES) {
        free(b->sizes);
        b->sizes = NULL;
        b->scap = 0;
    }
}

void aipc__batch_free(aipc__batch *b)
{
    free(b->buf);
    free(b->sizes);
    memset(b, 0, sizeof *b);
}
