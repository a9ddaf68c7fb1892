/*
 * frame_heap.h - the broker's queued frames in a Windows heap of their own.
 *
 * A slow subscriber keeps a random subset of publications queued for tens of seconds while
 * connections and requests allocate and free small blocks around them; in one heap the holes
 * between the long-lived frames only ever grow its commit under Wine (docs/memory.md). With
 * the frames (and the decoder blocks they adopt) in a heap of their own, the CRT heap keeps
 * emptying and the frame heap holds frames only.
 *
 * Threads: install and destroy on the thread that creates / frees the core; the allocation
 * callbacks run wherever the core runs (the engine's I/O thread). The heap is serialized (no
 * HEAP_NO_SERIALIZE): the core is created, run and freed on possibly different threads (service
 * mode), and a HEAP_NO_SERIALIZE heap cannot use Windows' low-fragmentation front end.
 */
#ifndef AIPC_BROKER_FRAME_HEAP_H
#define AIPC_BROKER_FRAME_HEAP_H

#include <windows.h>

#include "broker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the heap (HeapCreate(0, 0, 0): growable) and makes it core's frame allocator; call
 * right after aipc_broker_new, before the first attach. Returns the heap, or NULL (out of
 * memory: GetLastError tells; the core keeps the CRT's allocator). */
HANDLE aipc__frame_heap_install(aipc_broker *core);
/* Destroys the heap; only after aipc_broker_free(core) (every frame is gone then). NULL: no-op. */
void aipc__frame_heap_destroy(HANDLE heap);

#ifdef __cplusplus
}
#endif
#endif
