/* frame_heap.c - the broker's frame allocator over a private Windows heap (frame_heap.h). */
#include "frame_heap.h"

#include <string.h>

static void *fh_alloc(void *ctx, size_t n)
{
    return HeapAlloc((HANDLE)ctx, 0, n ? n : 1);
}

/* Grows in place when the heap can; otherwise allocates, copies with the CRT's memcpy and frees.
 * Not HeapReAlloc's own move: Wine 8's ntdll copies a byte at a time (its memcpy is a C loop),
 * and the decoder grows a 1 MiB frame's block 64 -> 128 -> ... -> 1024 KiB as bytes arrive:
 * that copy was a fifth of the broker's CPU time forwarding 1 MiB publications. */
static void *fh_realloc(void *ctx, void *p, size_t n)
{
    HANDLE h = ctx;
    if (!n)
        n = 1;
    if (!p)
        return HeapAlloc(h, 0, n);
    void *q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, n);
    if (q)
        return q;
    SIZE_T old = HeapSize(h, 0, p);
    if (old == (SIZE_T)-1 || !(q = HeapAlloc(h, 0, n)))
        return NULL;            /* p is left as it was, like realloc */
    memcpy(q, p, old < n ? old : n);
    HeapFree(h, 0, p);
    return q;
}

static void fh_free(void *ctx, void *p)
{
    if (p)
        HeapFree((HANDLE)ctx, 0, p);
}

HANDLE aipc__frame_heap_install(aipc_broker *core)
{
    HANDLE h = HeapCreate(0, 0, 0);
    if (!h)
        return NULL;
    aipc_allocator a = { fh_alloc, fh_realloc, fh_free, h };
    if (aipc_broker_set_frame_allocator(core, &a) != 0) {
        HeapDestroy(h);
        SetLastError(ERROR_INVALID_STATE);
        return NULL;
    }
    return h;
}

void aipc__frame_heap_destroy(HANDLE heap)
{
    if (heap)
        HeapDestroy(heap);
}
