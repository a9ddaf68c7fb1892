/*
 * pipe_buf_live.c - the set of the process's live zero-copy buffers (pipe_buf.c, bus_buf.c)
 * and aipc_buf_release, common to both owner kinds (aipc__buf_hdr), so that aipc_buf_release,
 * aipc_pipe_send_buf and aipc_bus_publish_buf / _send_buf can tell a live buffer from a pointer given back
 * after its release or successful send WITHOUT reading the memory it points at (that memory
 * may be freed). A pointer set: open addressing, linear probing, backward-shift deletion, one
 * lock for the process (held for a lookup, an insert or a removal only; never across a call
 * out). It cannot tell a stale pointer from a new buffer the allocator put at the same
 * address: using a buffer after release stays undefined (asyncipc.h), this only avoids the
 * read of freed memory and logs what it can see.
 * Threads: any; the lock is taken briefly and never nested with another (pipe locks included:
 * callers call these outside p->lock).
 */
#include "pipe_internal.h"

#include <stdint.h>
#include <stdlib.h>

void aipc_buf_release(aipc_buf *buf)
{
    if (!buf)
        return;
    if (!aipc__buf_live_take(buf)) {         /* one taker only: a racing second release misses */
        aipc_log(AIPC_LOG_ERROR, "aipc_buf_release: %p is not a live buffer (not from the SDK, or "
                 "already released or sent): ignored", (void *)buf);
        return;
    }
    aipc__buf_hdr *h = (aipc__buf_hdr *)buf;
    h->drop(h);                              /* a pipe's (pipe_buf.c) or a bus client's (bus_buf.c) */
}

aipc__buf_hdr *aipc__buf_of(aipc_buf *buf, int owner)
{
    if (!buf || !aipc__buf_live_has(buf))
        return NULL;
    aipc__buf_hdr *h = (aipc__buf_hdr *)buf;  /* live: its memory is ours to read */
    return h->owner == owner ? h : NULL;
}

static SRWLOCK g_lock = SRWLOCK_INIT;
static const void **g_slot;   /* NULL: empty */
static size_t g_cap, g_n;     /* g_cap a power of 2 (or 0); g_n <= g_cap / 2 */

static size_t home(const void *k, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

/* Under the lock: the index holding k, or g_cap when absent. */
static size_t find_locked(const void *k)
{
    if (!g_cap)
        return 0;
    for (size_t i = home(k, g_cap);; i = (i + 1) & (g_cap - 1)) {
        if (g_slot[i] == k)
            return i;
        if (!g_slot[i])
            return g_cap;
    }
}

static void put_locked(const void *k)
{
    size_t i = home(k, g_cap);
    while (g_slot[i])
        i = (i + 1) & (g_cap - 1);
    g_slot[i] = k;
    g_n++;
}

int aipc__buf_live_add(const void *b)
{
    int rc = 0;
    AcquireSRWLockExclusive(&g_lock);
    if (g_n + 1 > g_cap / 2) {
        size_t cap = g_cap ? g_cap * 2 : 64;
        const void **n = calloc(cap, sizeof *n), **old = g_slot;
        size_t oldcap = g_cap;
        if (!n) {
            rc = AIPC_ENOMEM;
        } else {
            g_slot = n;
            g_cap = cap;
            g_n = 0;
            for (size_t i = 0; i < oldcap; i++)
                if (old[i])
                    put_locked(old[i]);
            free((void *)old);
        }
    }
    if (rc == 0)
        put_locked(b);
    ReleaseSRWLockExclusive(&g_lock);
    return rc;
}

int aipc__buf_live_has(const void *b)
{
    AcquireSRWLockShared(&g_lock);
    int has = b && find_locked(b) < g_cap;
    ReleaseSRWLockShared(&g_lock);
    return has;
}

int aipc__buf_live_take(const void *b)
{
    AcquireSRWLockExclusive(&g_lock);
    size_t i = b ? find_locked(b) : g_cap;
    int had = i < g_cap;
    if (had) {
        /* Backward-shift deletion: move later entries of the probe run into the hole. */
        size_t hole = i;
        for (size_t j = (i + 1) & (g_cap - 1); g_slot[j]; j = (j + 1) & (g_cap - 1)) {
            size_t h = home(g_slot[j], g_cap);
            /* j's entry may move to the hole unless its home lies cyclically in (hole, j]. */
            if ((j > hole && (h <= hole || h > j)) || (j < hole && h <= hole && h > j)) {
                g_slot[hole] = g_slot[j];
                hole = j;
            }
        }
        g_slot[hole] = NULL;
        if (--g_n == 0) {
            free((void *)g_slot);
            g_slot = NULL;
            g_cap = 0;
        }
    }
    ReleaseSRWLockExclusive(&g_lock);
    return had;
}
