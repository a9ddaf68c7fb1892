/*
 * relseq.h - the release counter of a bus connection's release page (portable, no locking:
 * the caller serialises; docs/protocol.md section 11 "release page", docs/sdk.md "Shared
 * memory").
 *
 * Every descriptor the broker sends on a connection gets a sequence number in arrival order
 * (aipc__relseq_take: 0, 1, 2, ... from `start`, modulo 2^32). Releases come in any order, from
 * any thread (aipc__relseq_release); the counter the broker reads is the PREFIX: the number of
 * descriptors such that every one before it is released. A release after a held one is
 * remembered in a circular bitmap until the prefix reaches it. The bitmap holds one bit per
 * descriptor taken and not yet under the prefix; it grows by doubling in _take (the only call
 * that allocates), so a release never allocates and never fails for memory.
 *
 * Arithmetic is modulo 2^32 throughout (the counter wraps: the broker compares differences).
 * At most 2^31 descriptors may be outstanding (taken, not under the prefix) at once.
 */
#ifndef AIPC_CORE_RELSEQ_H
#define AIPC_CORE_RELSEQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc__relseq {
    uint32_t next;      /* the sequence number of the next descriptor taken */
    uint32_t prefix;    /* every sequence number before it (from `start`) is released */
    uint32_t *bits;     /* cap bits; seq s lives at bit s & (cap - 1); only [prefix, next) set */
    uint32_t cap;       /* bits: 0 (none yet) or a power of two >= AIPC__RELSEQ_MIN_BITS */
    uint32_t waiting;   /* released, not under the prefix yet (behind a held one) */
} aipc__relseq;

#define AIPC__RELSEQ_MIN_BITS 256u

/* Starts at `start` (0 on a connection; tests start near 2^32 to wrap). No allocation; any
 * previous state of r is forgotten (free it first). */
void aipc__relseq_init(aipc__relseq *r, uint32_t start);
/* Frees the bitmap; r is then as after _init(r, 0). */
void aipc__relseq_free(aipc__relseq *r);
/* A descriptor arrived: *seq is its number. 0, or AIPC_ENOMEM (the bitmap could not grow;
 * nothing taken). */
int aipc__relseq_take(aipc__relseq *r, uint32_t *seq);
/* Descriptor `seq` is released: 1 when the prefix moved (store the new prefix), 0 when it is
 * remembered behind a held one, AIPC_EINVAL when seq is not outstanding (never taken, already
 * released, or under the prefix): nothing changes. */
int aipc__relseq_release(aipc__relseq *r, uint32_t seq);
/* The prefix: what the page says. */
static inline uint32_t aipc__relseq_prefix(const aipc__relseq *r)
{
    return r->prefix;
}
/* Descriptors taken and not under the prefix (held, or released behind a held one). */
static inline uint32_t aipc__relseq_outstanding(const aipc__relseq *r)
{
    return r->next - r->prefix;
}
/* Writes v into the page's counter (offset 0 of `page`, 4-byte aligned, little-endian on every
 * target we build) with a release store: every read of the released slots made before it (on
 * this thread, or on one whose release was ordered before by a lock) is done before the
 * broker's acquire load can see it. 32 bits on purpose: the broker's load must not need a
 * write (a 64-bit atomic load on 32-bit x86 may be a locked cmpxchg8b). */
void aipc__relseq_store(volatile void *page, uint32_t v);
/* The counter's current value (acquire load): what the broker would read (tests). */
uint32_t aipc__relseq_load(const volatile void *page);

#ifdef __cplusplus
}
#endif
#endif
