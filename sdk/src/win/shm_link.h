/*
 * shm_link.h - shared memory of one connection (shm_link.c), for both of its users: a
 * point-to-point pipe (pipe_ctl.c, pipe_api.c, pipe_io.c, pipe_events.c) and the bus client's
 * connection to the broker (bus_shm.c). It holds our send pool (segments we create, each with
 * its slot ring, proto/shm_ring.h), the peer's segments we map, the shared messages the peer has
 * not released yet, and the releases we owe it. docs/design/shared-memory.md sections 4-12.
 *
 * Life of a shared message: the owner's send (any thread, under the owner's lock) asks for a
 * slot of a segment the peer confirmed (aipc__shm_link_put: the payload is copied in) and
 * queues a frame carrying the descriptor [seg,off,len] in the same FIFO as inline frames (p2p:
 * {"shm":[...]}; bus: the op's meta plus "shm"); the peer reads the payload out of its
 * read-only view and then owes a release, written as {"op":"shm_done","r":[[seg,off],...]}
 * with its next write; the release frees the slot here and the owner's `released` reports the
 * message. Its bytes count against the owner's send queue bound from the send until the release
 * (`held`).
 * Segments: created on the I/O thread (the first when the connection negotiated shared memory,
 * more when a send found no room, up to the pool bound), announced with shm_seg (queued by the
 * owner's queue_locked), used only after the peer answered ok. A peer that cannot map gets
 * inline messages. A broken connection releases everything (aipc__shm_link_reset).
 *
 * The owner interface (aipc__shm_owner): its lock (guards the [lock] fields), two ways to queue
 * a control frame, what to do when the peer released messages, the pool bound. The owner says
 * who the peer is (aipc__shm_link_set_peer) before aipc__shm_link_start.
 *
 * Threads: [lock] fields are guarded by *own.lock; [io] ones are touched on the owner's I/O
 * thread only; the st_* counters are atomic.
 */
#ifndef AIPC_WIN_SHM_LINK_H
#define AIPC_WIN_SHM_LINK_H

#include <windows.h>

#include <stdint.h>

#include "proto/shm.h"
#include "proto/shm_ring.h"
#include "shm_seg.h"

#define AIPC__SHM_TX_MAX 8    /* our segments per connection */
#define AIPC__SHM_RX_MAX 16   /* the peer's segments we map */

/* What shm_link asks of the connection that uses it. ctx is the owner. */
typedef struct aipc__shm_owner {
    void *ctx;
    SRWLOCK *lock;
    /* Under *lock, I/O thread: appends a control frame (meta only) to the owner's FIFO behind
     * what is queued (it goes with the next write). 0 or AIPC_ENOMEM. */
    int (*queue_locked)(void *ctx, const char *meta, size_t len);
    /* I/O thread, lock not held: queues a control frame (an answer to the peer) and gets it
     * written. 0 or AIPC_ENOMEM. */
    int (*queue_ctl)(void *ctx, const char *meta, uint32_t len);
    /* I/O thread, lock not held: the peer released `n` messages of ours (their sizes). May be
     * NULL. */
    void (*released)(void *ctx, const uint32_t *sizes, size_t n);
    /* Under *lock: the pool bound in bytes (0: the default bound). */
    uint64_t (*pool_max)(void *ctx);
} aipc__shm_owner;

typedef struct aipc__shm_tx {
    aipc__shm_seg seg;
    aipc_shm_ring ring;
    uint32_t id;
    int state;                  /* AIPC__SHM_TX_* */
    int lent;                   /* [lock] slots lent to the application (aipc__shm_link_lend) */
    int retired;                /* [lock] reset while slots were lent: out of the table, kept
                                 * mapped until the last one comes back */
} aipc__shm_tx;

/* A mapped segment of the peer; reference counted: the table holds one, and each received
 * message not released yet holds one (the view stays until the last goes). */
typedef struct aipc__shm_rx {
    aipc__shm_seg seg;
    uint32_t id;
    volatile LONG refs;
    char name[AIPC_SHM_NAME_BUF];
} aipc__shm_rx;

typedef struct aipc__shm_out {  /* a shared message sent, not yet released */
    uint32_t seg, off, len;
    int reserved;               /* _reserve'd, its frame not queued yet: a release of it is a
                                 * protocol error (bperf review m3) */
} aipc__shm_out;

typedef struct aipc__shm_link {
    aipc__shm_owner own;        /* fixed by aipc__shm_link_init */
    const char *kind;           /* "pipe" / "bus": log lines */
    const char *name;           /* the pipe's name for log lines (the owner's string) */
    /* [lock] */
    aipc__shm_tx *tx[AIPC__SHM_TX_MAX];
    int ntx;
    uint64_t pool_bytes;        /* sizes of our segments */
    aipc__shm_out *out;         /* in sending order */
    size_t nout, capout;
    uint64_t held;              /* payload + header bytes of `out` (queue accounting) */
    uint32_t grow_want;         /* a segment of at least this many bytes is wanted (0: none) */
    aipc_shm_ref *done;         /* releases owed to the peer */
    size_t ndone, capdone;
    uint32_t gen;               /* connection number: a release of an older one is dropped */
    int active;                 /* negotiated and identity known: segments may be used */
    /* [io] */
    aipc__shm_rx *rx[AIPC__SHM_RX_MAX];
    PSID peer;                  /* the principal our segments are granted to (malloc'd) */
    DWORD peer_integrity;
    DWORD peer_session;         /* the session holding the peer's segments ... */
    int peer_session_known;     /* ... when known from a trusted source (else "Local\") */
    uint32_t next_id;
    int refusals;               /* segments the peer could not map (3: stop offering) */
    uint32_t session;
    uint8_t *rcopy;             /* p2p: a shared payload's private copy for OnRecv (reused) */
    size_t rcopy_cap;
    /* counters (any thread) */
    volatile LONG64 st_sent, st_recv, st_fallback, st_mapfail;
} aipc__shm_link;

/* The counters and the current connection's state (aipc__shm_link_counts). */
typedef struct aipc__shm_counts {
    uint64_t held;              /* payload bytes of our messages the peer has not released */
    uint32_t segs;              /* our segments the peer confirmed */
    uint32_t peer_segs;         /* the peer's segments we map */
    uint64_t pinned;            /* bytes of released slots of our segments not reusable yet:
                                   behind an older slot still held (aipc_shm_ring_pinned) */
    uint64_t sent, recv, fallback, mapfail;
} aipc__shm_counts;

/* Sets the owner interface (before any other call; the link must be zeroed). */
void aipc__shm_link_init(aipc__shm_link *L, const aipc__shm_owner *own, const char *kind);
/* I/O thread, before start: the principal our segments are granted to (taken over: freed by
 * the link), its integrity RID (0 = medium), and the session holding the peer's segments when
 * known from a trusted source (session_known 0: opened as "Local\" names). `name` names the
 * connection in log lines (kept: the owner's string must outlive the link's use). */
void aipc__shm_link_set_peer(aipc__shm_link *L, PSID peer, DWORD integrity, int session_known,
                             DWORD peer_session, const char *name);
/* I/O thread: the connection negotiated shared memory: the first segment will be created and
 * announced with the next write (the caller starts one). */
void aipc__shm_link_start(aipc__shm_link *L);
/* Under the lock (a send, any thread): puts a message of `size` bytes into a confirmed slot
 * (copied) and records it as sent, filling *d with its descriptor; the caller queues a frame
 * carrying it. 1 done, 0 (go inline; a bigger pool may have been asked for) or AIPC_ENOMEM. */
int  aipc__shm_link_put(aipc__shm_link *L, const void *data, uint32_t size, aipc_shm_desc *d);
/* Under the lock: the same without the copy: *dst is where the caller writes the `size` bytes
 * and then a 0 byte, before the frame carrying *d is queued; meanwhile the segment stays mapped
 * only if the owner keeps aipc__shm_link_reset from running (the bus client: shm_copying). */
int  aipc__shm_link_reserve(aipc__shm_link *L, uint32_t size, aipc_shm_desc *d, uint8_t **dst);
/* Under the lock: the frame carrying a _reserve'd *d is queued: the peer may release it now
 * (until then a shm_done naming it is refused with AIPC_EPROTO). */
void aipc__shm_link_reserved_queued(aipc__shm_link *L, const aipc_shm_desc *d);
/* Under the lock: a put whose frame could not be queued, or was dropped unwritten: undoes it
 * (the slot is free again, the message not counted as sent). */
void aipc__shm_link_unput(aipc__shm_link *L, const aipc_shm_desc *d);
/* Zero-copy send (pipe_buf.c), all under the lock. _lend: a confirmed slot of `size` bytes
 * lent to the application to fill in place: *tx and *off name it, *view is its first byte.
 * The segment stays mapped while the slot is lent, across a reset too. 1 done, 0 (no room or
 * no shared memory: use a heap buffer; a bigger pool may have been asked for).
 * _send_lent: the application sends `len` bytes (<= the size lent) of that slot: writes the
 * spare NUL, records it as sent (as _put does) and fills *d. 1 done; 0 when the segment no
 * longer belongs to the connection (a reset came between): send the bytes inline, then
 * _unlend. _unsend_lent: the frame carrying *d could not be queued: the slot is lent again.
 * _unlend: a lent slot given back unsent (or sent inline): its ring slot is freed; returns the
 * segment when this was the last slot of a retired one (close it with _tx_free, outside the
 * lock), else NULL. */
int  aipc__shm_link_lend(aipc__shm_link *L, uint32_t size, aipc__shm_tx **tx, uint32_t *off,
                         uint8_t **view);
int  aipc__shm_link_send_lent(aipc__shm_link *L, aipc__shm_tx *tx, uint32_t off, uint32_t len,
                              aipc_shm_desc *d);
void aipc__shm_link_unsend_lent(aipc__shm_link *L, const aipc_shm_desc *d);
aipc__shm_tx *aipc__shm_link_unlend(aipc__shm_link *L, aipc__shm_tx *tx, uint32_t off);
void aipc__shm_tx_free(aipc__shm_tx *tx);
/* Under the lock: the payload of our slot (seg, off) that is still held (the bus client turns
 * a descriptor that was never written back into an inline frame); NULL when unknown. */
const uint8_t *aipc__shm_link_slot(aipc__shm_link *L, uint32_t seg, uint32_t off);
/* I/O thread, after set_peer: creates a segment of `size` bytes granted to the peer as every
 * segment of ours is (aipc__shm_seg_create: its DACL and label; the test hook
 * AIPC_TEST_SHM_GRANT_SID too), read-write, and takes the next id of our segment id space for
 * it (*id; never used for another segment). The bus client's release page (bus_relpage.c).
 * 0 or the aipc__shm_seg_create error (no id taken). */
int  aipc__shm_link_seg_new(aipc__shm_link *L, uint32_t size, aipc__shm_seg *s, uint32_t *id,
                            char name[AIPC_SHM_NAME_BUF]);
/* I/O thread, from the owner's output source before it takes the next batch: creates a wanted
 * segment and queues its announce (queue_locked). */
void aipc__shm_link_pump(aipc__shm_link *L);
/* I/O thread: the releases owed, as one whole frame (header + shm_done meta) into out (cap >=
 * AIPC__SHM_DONE_FRAME); its length, or 0 when none is owed. Written at a frame boundary ahead
 * of the rest, so the peer's slots never wait behind our own large writes. */
#define AIPC__SHM_DONE_FRAME (AIPC_SHM_DONE_MAX * 24u + 48u)
size_t aipc__shm_link_take_done(aipc__shm_link *L, uint8_t *out, size_t cap);
/* Under the lock: forgets the releases owed (the bus client's release page carries them). */
void aipc__shm_link_drop_done_locked(aipc__shm_link *L);
/* Any thread: 1 when releases are owed (a write should carry them). Takes the lock. */
int  aipc__shm_link_owes(aipc__shm_link *L);
/* I/O thread: a control meta of the shared-memory kind arrived (proto/shm.h). 0, AIPC_EPROTO
 * or AIPC_ENOMEM. */
int  aipc__shm_link_ctl(aipc__shm_link *L, const aipc_shm_ctl *c, const aipc_shm_ref *refs);
/* I/O thread: a descriptor arrived: *data points at its payload in our read-only view (one more
 * byte after it inside the view: the sender's NUL, which the point-to-point caller checks),
 * *rx is its segment. 0 or AIPC_EPROTO (unknown segment, range outside it). */
int  aipc__shm_link_resolve(aipc__shm_link *L, const aipc_shm_desc *d, uint8_t **data,
                            aipc__shm_rx **rx);
/* Any thread: the message at (seg, off) of rx, received on connection `gen`, was consumed: owe
 * its release (dropped when the connection changed since) and drop one hold on rx. Returns 1
 * when a write should be started to carry it (the first release owed). Takes the lock. */
int  aipc__shm_link_release(aipc__shm_link *L, aipc__shm_rx *rx, uint32_t gen, uint32_t seg,
                            uint32_t off);
/* Under the lock: the release of aipc__shm_link_release without the hold (the caller drops
 * it with aipc__shm_rx_drop once the lock is released). Returns what it returns. */
int  aipc__shm_link_release_locked(aipc__shm_link *L, uint32_t gen, uint32_t seg, uint32_t off);
/* Takes one hold on rx (a message being delivered, a dispatcher item keeping the view). */
void aipc__shm_rx_hold(aipc__shm_rx *rx);
/* Drops one hold on rx (any thread, no lock held): the last one unmaps it. */
void aipc__shm_rx_drop(aipc__shm_rx *rx);
/* I/O thread, nothing pending: the connection is gone; everything is released and unmapped
 * (segments held by messages not released yet go when those are). */
void aipc__shm_link_reset(aipc__shm_link *L);
/* Frees what reset left (owner destruction). */
void aipc__shm_link_free(aipc__shm_link *L);
/* Any thread: the counters. */
void aipc__shm_link_counts(aipc__shm_link *L, aipc__shm_counts *c);

#endif
