/*
 * shm_link.h - shared memory of one point-to-point connection (shm_link.c): our send pool
 * (segments we create, each with its slot ring, proto/shm_ring.h), the peer's segments we map,
 * the shared messages the peer has not released yet, and the releases we owe it.
 * docs/design/shared-memory.md sections 4-12.
 *
 * Life of a shared message: Send (any thread, under the pipe's lock) copies the payload into a
 * slot of a segment the peer confirmed and queues the descriptor {"shm":[seg,off,len]} in the
 * same FIFO as inline frames; the peer copies the payload out of its read-only view for its
 * OnRecv (pipe_events.c) and then owes a release, written as {"op":"shm_done","r":[[seg,off],...]} with its next write;
 * the release frees the slot here and OnSend reports the message. Its bytes count against the
 * send queue bound from Send until the release.
 * Segments: created on the I/O thread (the first when the connection negotiated shared memory,
 * more when a Send found no room, up to the pool bound = the pipe's queue bound), announced with
 * shm_seg, used only after the peer answered ok. A peer that cannot map gets inline messages.
 * A broken connection releases everything (aipc__shm_link_reset).
 *
 * Locks and threads: fields marked [lock] are guarded by the pipe's lock (aipc__pipe.lock);
 * [io] ones are touched on the I/O thread only; the st_* counters are atomic.
 */
#ifndef AIPC_WIN_SHM_LINK_H
#define AIPC_WIN_SHM_LINK_H

#include <windows.h>

#include <stdint.h>

#include "proto/shm.h"
#include "proto/shm_ring.h"
#include "shm_seg.h"

typedef struct aipc__pipe aipc__pipe;

#define AIPC__SHM_TX_MAX 8    /* our segments per connection */
#define AIPC__SHM_RX_MAX 16   /* the peer's segments we map */

typedef struct aipc__shm_tx {
    aipc__shm_seg seg;
    aipc_shm_ring ring;
    uint32_t id;
    int state;                  /* AIPC__SHM_TX_* */
} aipc__shm_tx;

/* A mapped segment of the peer; reference counted: the table holds one, and each received
 * message still held by a dispatcher item holds one (the view stays until the last goes). */
typedef struct aipc__shm_rx {
    aipc__shm_seg seg;
    uint32_t id;
    volatile LONG refs;
    char name[AIPC_SHM_NAME_BUF];
} aipc__shm_rx;

typedef struct aipc__shm_out {  /* a shared message sent, not yet released */
    uint32_t seg, off, len;
} aipc__shm_out;

typedef struct aipc__shm_link {
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
    uint32_t next_id;
    int refusals;               /* segments the peer could not map (3: stop offering) */
    uint32_t session;
    uint8_t *rcopy;             /* a shared payload's private copy for OnRecv (reused) */
    size_t rcopy_cap;
    /* counters (any thread) */
    volatile LONG64 st_sent, st_recv, st_fallback, st_mapfail;
} aipc__shm_link;

/* I/O thread, negotiation (pipe_ctl.c): learns who the peer is (server: the client by
 * impersonation, so after its first frame was read; client: the pipe's owner). 0 or the Win32
 * error (shared memory is then not used with this peer). */
DWORD aipc__shm_link_identify(aipc__pipe *p);
/* I/O thread: the connection negotiated shared memory: the first segment will be created and
 * announced with the next write (the caller starts one). */
void aipc__shm_link_start(aipc__pipe *p);
/* Under the pipe's lock (Send, any thread): puts a message of `size` bytes in a confirmed slot
 * and queues its descriptor in the pending batch. 1 done, 0 (go inline; a bigger pool may have
 * been asked for) or AIPC_ENOMEM. */
int  aipc__shm_link_send(aipc__pipe *p, const void *data, uint32_t size);
/* Under the pipe's lock: 1 when a message of `size` bytes should go shared (negotiated, at or
 * above the threshold); when aipc__shm_link_send then says 0 it is an inline fallback. */
int  aipc__shm_link_eligible(const aipc__pipe *p, size_t size);
/* I/O thread, from out_next before the pending batch is taken: creates a wanted segment and
 * queues its announce into the pending batch. */
void aipc__shm_link_pump(aipc__pipe *p);
/* I/O thread: the releases owed, as one whole frame (header + shm_done meta) into out (cap >=
 * AIPC__SHM_DONE_FRAME); its length, or 0 when none is owed. Written ahead of the batch in
 * flight (at a frame boundary), so a peer's slots never wait behind our own large writes. */
#define AIPC__SHM_DONE_FRAME (AIPC_SHM_DONE_MAX * 24u + 48u)
size_t aipc__shm_link_take_done(aipc__pipe *p, uint8_t *out, size_t cap);
/* I/O thread: a control meta of the shared-memory kind arrived (proto/shm.h). 0, AIPC_EPROTO
 * or AIPC_ENOMEM. */
int  aipc__shm_link_ctl(aipc__pipe *p, const aipc_shm_ctl *c, const aipc_shm_ref *refs);
/* I/O thread: a descriptor arrived: *data points at its payload in our view (one writable byte
 * after it), *rx is its segment. 0 or AIPC_EPROTO (unknown segment, range outside it). */
int  aipc__shm_link_resolve(aipc__pipe *p, const aipc_shm_desc *d, uint8_t **data,
                            aipc__shm_rx **rx);
/* Any thread: the message at (seg, off) of rx, received on connection `gen`, was consumed: owe
 * its release (dropped when the connection changed since) and drop the hold on rx. Returns 1
 * when a write should be started to carry it. Takes the pipe's lock. */
int  aipc__shm_link_release(aipc__pipe *p, aipc__shm_rx *rx, uint32_t gen, uint32_t seg,
                            uint32_t off);
/* Takes one hold on rx (a dispatcher item keeps the view). */
void aipc__shm_rx_hold(aipc__shm_rx *rx);
/* I/O thread, nothing pending: the connection is gone; everything is released and unmapped
 * (segments held by dispatcher items go when those are released). */
void aipc__shm_link_reset(aipc__pipe *p);
/* Frees what reset left (pipe destruction). */
void aipc__shm_link_free(aipc__pipe *p);
/* Any thread: the counters into st (aipc_pipe_stats). */
struct aipc_pipe_stats;
void aipc__shm_link_stats(aipc__pipe *p, struct aipc_pipe_stats *st);

#endif
