/* frame_heap.c - the broker's frame allocator over a private Windows heap (frame_heap.h). */
#include "frame_heap.h"

static void *fh_alloc(void *ctx, size_t n)
{
    return HeapAlloc((HANDLE)ctx, 0, n ? n : 1);
}

static void *fh_realloc(void *ctx, void *p, size_t n)
{
    if (!p)
        return HeapAlloc((HANDLE)ctx, 0, n ? n : 1);
    return HeapReAlloc((HANDLE)ctx, 0, p, n ? n : 1);
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
