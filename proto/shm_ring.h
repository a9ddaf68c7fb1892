/*
 * shm_ring.h - the slot allocator of one shared-memory segment (portable, no I/O, no malloc).
 * docs/design/shared-memory.md section 5. Used by the SDK (sdk/src/win/shm_link.c) and the
 * broker core for their send pools; one ring per segment, owned by one thread at a time (the
 * caller serialises: no locks here).
 *
 * Slots are allocated like a ring: at the head, reclaimed at the tail. A slot of `len` payload
 * bytes holds len + 1 bytes (one spare byte after the payload: always 0, written by the sender
 * before it sends the descriptor; receivers map read-only and never write) rounded up to
 * AIPC_SHM_RING_ALIGN, and starts
 * AIPC_SHM_RING_ALIGN-aligned. When the space left before the end is too small, the slot starts
 * at 0 and the skipped tail is charged to that slot. Slots may be released in any order: a slot
 * released before an older one stays charged (its space is reclaimed when every older slot is
 * released). At most AIPC_SHM_RING_SLOTS slots are held (live or released-but-not-reclaimed).
 * An empty ring starts again at offset 0. Head-of-line: one long-held oldest slot keeps every
 * newer slot's space charged until it is released (by design); a sender that finds the ring
 * full goes inline and never waits on it.
 */
#ifndef AIPC_PROTO_SHM_RING_H
#define AIPC_PROTO_SHM_RING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC_SHM_RING_ALIGN 4096u
#define AIPC_SHM_RING_SLOTS 512u   /* slot table bound (8 MiB / 16 KiB) */

typedef struct aipc_shm_ring_slot {
    uint32_t off;     /* payload start (aligned) */
    uint32_t start;   /* where the space it holds starts (off, or the head it wrapped from) */
    uint32_t span;    /* bytes it holds: its rounded size plus any skipped tail */
    uint32_t done;    /* released, waiting for the older slots */
    uint32_t gen;     /* the allocation's generation (never 0) */
} aipc_shm_ring_slot;

typedef struct aipc_shm_ring {
    uint32_t size;    /* segment bytes, a multiple of AIPC_SHM_RING_ALIGN */
    uint32_t head;    /* next allocation starts here (or at 0 after a wrap) */
    uint32_t used;    /* bytes held by the table's slots, skipped tails included */
    uint32_t first;   /* index of the oldest slot in `slot` */
    uint32_t count;   /* slots in the table (live + released-but-not-reclaimed) */
    uint32_t live;    /* slots not yet released */
    uint32_t gen;     /* the last generation handed out */
    aipc_shm_ring_slot slot[AIPC_SHM_RING_SLOTS];
} aipc_shm_ring;

/* 0, or AIPC_EINVAL when size is 0 or not a multiple of AIPC_SHM_RING_ALIGN. */
int aipc_shm_ring_init(aipc_shm_ring *r, uint32_t size);
/* Forgets every slot (nothing is allocated: the ring may simply be dropped). */
void aipc_shm_ring_free(aipc_shm_ring *r);
/* A slot for a payload of len bytes: 0 and *off, or AIPC_EQUEUEFULL when it does not fit now
 * (no room or the slot table is full: go inline or wait for releases), or AIPC_ETOOBIG when
 * len + 1 rounded up is larger than the whole segment (it never fits). */
int aipc_shm_ring_alloc(aipc_shm_ring *r, uint32_t len, uint32_t *off);
/* The same, and *gen (if not NULL) the slot's generation: a number != 0 that differs from the
 * generation of every other slot the ring held at that offset (wraps after 2^32 - 1 slots). */
int aipc_shm_ring_alloc_gen(aipc_shm_ring *r, uint32_t len, uint32_t *off, uint32_t *gen);
/* Releases the live slot starting at off (any order): 0, or AIPC_EINVAL when no live slot
 * starts there. A bogus shm_done changes nothing, but a REPEATED one for an offset the sender
 * has since reused releases the NEW slot: a link must release only slots it handed to that peer
 * and has not seen released (track (peer, seg, off) outstanding), or match generations with
 * aipc_shm_ring_release_gen once the descriptor and shm_done carry one (they do not yet). */
int aipc_shm_ring_release(aipc_shm_ring *r, uint32_t off);
/* Releases the live slot starting at off only if its generation is gen: else AIPC_EINVAL and
 * nothing changes (a stale release cannot free a reused slot). */
int aipc_shm_ring_release_gen(aipc_shm_ring *r, uint32_t off, uint32_t gen);
/* Bytes not available for allocation: held by live slots, by released slots still behind an
 * older live one, and skipped tails (0 when every slot is released). */
uint32_t aipc_shm_ring_used(const aipc_shm_ring *r);
/* Live (not yet released) slots. */
uint32_t aipc_shm_ring_live(const aipc_shm_ring *r);
/* Bytes pinned: held by released slots that wait behind an older live one (the head-of-line
 * cost of holding a slot; 0 when slots are released in ring order). Part of `used`. */
uint32_t aipc_shm_ring_pinned(const aipc_shm_ring *r);

#ifdef __cplusplus
}
#endif
#endif
