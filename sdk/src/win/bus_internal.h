/*
 * bus_internal.h - internals of the bus client (Windows only, not installed).
 *
 *   bus_api.c      the exported aipc_bus_* calls (any thread): options, frames queued under
 *                  `lock`, wake/start/close tasks posted to the I/O thread; object lifetime
 *   bus_conn.c     the connection (I/O thread): open with retry and backoff, hello/welcome,
 *                  read loop, write pump, reconnect, request deadlines, the posted tasks
 *   bus_dispatch.c one frame from the broker (I/O thread): welcome, answers to pending
 *                  requests, publications through the subscription set, events
 *   bus_shm.c      shared memory with the broker: the client as shm_link's owner, negotiation,
 *                  descriptors sent and received, releases (docs/sdk.md "Shared memory")
 *   bus_relpage.c  the release page: broker slots released by a counter in shared memory
 *                  instead of shm_done frames (when the broker offers it)
 *   bus_buf.c      zero-copy buffers: aipc_bus_alloc / _publish_buf / _send_buf (lent slots
 *                  of shm_link, or heap) and the buffers of on_message_buf / on_direct_buf
 *   bus_events.c   user callbacks: at once on the I/O thread (through the client's gate) or
 *                  queued to the client's dispatcher; request completions; the final callbacks
 *                  that aipc_bus_close runs on its caller's thread
 *
 * Threads: fields marked [io] belong to the I/O thread of the client's engine
 * (aipc_bus_options.engine: the APC thread, loop_apc.c, or the completion-port thread,
 * loop_iocp.c), [lock] to `lock` (any thread), [gate] to whichever thread is inside the
 * client's callback gate. All I/O goes through the engine table (b->loop->eng).
 */
#ifndef AIPC_WIN_BUS_INTERNAL_H
#define AIPC_WIN_BUS_INTERNAL_H

#include "pipe_internal.h"

#include "bus_core.h"
#include "relseq.h"

#define BUS_READ_SIZE       (256u * 1024u)       /* one read */
#define BUS_BATCH_MAX       (4u * 1024u * 1024u) /* one coalesced batch */
#define BUS_WRITE_PIECE     (256u * 1024u)       /* largest WriteFile (see AIPC_WRITE_PIECE) */
#define BUS_DIRECT_MAX      (BUS_READ_SIZE * 16u)/* largest read into a frame's block */
#define BUS_OPEN_RETRY_MIN  10u                  /* ms between dial retries, doubling */
#define BUS_OPEN_RETRY_MAX  200u
#define BUS_REQ_TIMEOUT_DEF 30000u
#define BUS_PING_TIMEOUT_DEF 5000u
#define BUS_NAME_BUF        (AIPC_BUS_NAME_MAX + 1)
/* Releases gathered during one read (bus_shm.c aipc__bus_shm_release): written at once only
 * past these bounds, else in one shm_done write at the end of the read. The byte bound is
 * 1/BUS_REL_GATHER_SHARE of the broker's max_queue_bytes (its welcome; rel_gather_max). */
#define BUS_REL_GATHER_SHARE 4u
#define BUS_REL_GATHER_US    1000u                 /* since the first release gathered */

typedef enum {
    BS_OPENING = 0, BS_HELLO, BS_READY, BS_DRAINING, BS_BACKOFF, BS_DOWN, BS_CLOSED
} bus_st;

typedef struct bus_done bus_done;   /* a completed request awaiting delivery (bus_events.c) */

/* A shared message received from the broker and not released yet: whoever holds it (the frame
 * being dispatched, then perhaps a dispatcher item) releases it once (aipc__bus_shm_release). */
typedef struct aipc__bus_shm_msg {
    aipc__shm_rx *rx;             /* NULL: none (holds one reference on rx) */
    const uint8_t *data;          /* the payload in rx's view */
    uint32_t gen, seg, off, len;
    uint32_t seq;                 /* its arrival number on the connection (release page) */
} aipc__bus_shm_msg;

/* The release page of the current connection (bus_relpage.c). */
enum { AIPC__RELPAGE_NONE = 0, AIPC__RELPAGE_ANNOUNCED, AIPC__RELPAGE_OK, AIPC__RELPAGE_REFUSED };
typedef struct aipc__bus_relpage {
    int state;                    /* AIPC__RELPAGE_*: written on the I/O thread under `lock` */
    uint32_t id;                  /* its segment id (our id space); same rule */
    aipc__shm_seg seg;            /* the page, read-write (ANNOUNCED, OK); same rule */
    aipc__relseq rs;              /* [lock] arrival numbers, releases, the prefix */
} aipc__bus_relpage;

struct aipc_bus {
    aipc_bus_options o;           /* copy of the caller's options (strings below are ours) */
    wchar_t *pipe;                /* full "\\.\pipe\NAME" */
    char *pipe_utf8;              /* for log lines */
    char *name;                   /* client name or NULL */
    aipc__loop *loop;
    volatile LONG refs;
    volatile LONG64 next_id;      /* ids for req/ping/stats/acks */
    volatile LONG pub_state;      /* aipc_bus_state for aipc_bus_get_state */
    volatile LONG64 client_id;    /* broker-assigned id while connected */
    aipc__gate gate;               /* every user callback passes it; close shuts it */
    aipc__sec_expect owners;       /* accepted owners of the broker's pipe */
    aipc_dispatcher *disp;        /* callbacks go through it (NULL: on the I/O thread) */
    volatile LONG64 dq_bytes;     /* bytes queued for the dispatcher (with overhead) */
    volatile LONG rpaused;        /* the read side waits for the dispatcher to drain */
    volatile LONG resume_posted;  /* resume_op is queued (posted at most once at a time) */
    volatile LONG fail_code;      /* aipc_bus_get_error: the last failure on_state reported */
    volatile LONG fail_win32;     /* and the Win32 error behind it (0 if none) */

    /* [lock] */
    SRWLOCK lock;
    aipc__bus_queue q;             /* frames accepted from callers, not yet written */
    aipc__bus_subs subs;           /* user filters, re-sent after reconnect */
    aipc__bus_pending pend;        /* outstanding req/ping/stats/acks */
    bus_done *done_head, *done_tail;  /* completions queued for the dispatcher, not yet run */
    int ready;                    /* welcomed: new frames may be written at once */
    int down;                     /* DOWN: calls fail with AIPC_EDISCONNECTED */
    int closing;                  /* aipc_bus_close was called: calls fail with AIPC_ECLOSED */
    int wake_posted;              /* a wake task is queued */
    uint64_t new_deadline;        /* earliest deadline added since the last wake (0 none) */
    uint64_t max_payload;         /* from welcome (default AIPC_DEFAULT_MAX_PAYLOAD) */
    aipc__shm_link shm;            /* shared memory with the broker (bus_shm.c; its [lock] fields
                                     are under `lock`, its [io] ones on the I/O thread) */
    aipc__bus_relpage page;        /* the release page (bus_relpage.c) */

    /* [io] */
    bus_st st;
    int ever_connected;
    uint32_t attempt;             /* failed attempts since the last welcome (backoff exponent) */
    int last_error;               /* cause of the current disconnect */
    DWORD sys_err;                /* Win32 error that failed the current attempt (0: none) */
    ULONGLONG deadline;           /* end of the current attempt (OPENING/HELLO) */
    DWORD open_retry;             /* next dial retry delay */
    aipc__conn io;                /* the pipe's reads and writes (win_conn.c), through the
                                     client's engine; io.h is the pipe handle */
    aipc_decoder dec;
    aipc__bus_queue ctl;           /* hello and resubscribe frames, written before q */
    uint8_t *wbuf;                /* the batch being written (the connection's output) */
    size_t wlen, woff;
    size_t wfend;                 /* end of the batch's frame that holds woff (frames are whole) */
    uint8_t *xbuf;                /* releases written between two frames of the batch */
    size_t xlen, xoff;
    aipc__timer conn_timer;        /* OPENING retry, HELLO deadline, BACKOFF delay */
    aipc__timer req_timer;         /* earliest pending deadline */
    uint64_t req_timer_due;       /* 0 when req_timer is not armed */
    aipc__op wake_op, start_op, close_op, resume_op;
    uint32_t rnd;                 /* jitter state */
    int shm_on;                   /* the current connection's welcome agreed shared memory */
    int shm_kick;                 /* a write is due after the read: releases gathered while
                                     reading (below), control answers (own_queue_ctl) */
    int in_read;                  /* io_input is decoding a read: releases are gathered */
    uint64_t rel_bytes;           /* payload + header bytes of the releases gathered */
    LONGLONG rel_t0;              /* QPC of the first release gathered (rel_bytes != 0) */
    uint64_t rel_gather_max;      /* rel_bytes past this are written at once: 1/4 of the
                                   * welcome's max_queue_bytes; 0 (a broker that does not
                                   * say): every release at once, no gathering */
    /* [lock] publishing threads copying into a reserved slot outside the lock: the drain (which
     * unmaps our segments) waits for them on shm_copied */
    uint32_t shm_copying;
    CONDITION_VARIABLE shm_copied;
    aipc__bus_shm_msg rx_cur;      /* the shared message being dispatched (bus_dispatch.c) */
    /* zero-copy buffers (bus_buf.c) */
    uint64_t lent;                /* [lock] aipc_bus_alloc buffers not sent or released: their
                                     capacity plus a header each (counted in the queue bound) */
    uint64_t buf_bytes, buf_shm_bytes;  /* [lock] their capacity: all / lent shared slots */
    volatile LONG64 recv_buf_bytes;     /* received buffers not released */
};

/* ---- bus_api.c ------------------------------------------------------------------------------ */
void aipc__bus_ref(aipc_bus *b);
void aipc__bus_unref(aipc_bus *b);   /* frees the client at zero (any thread) */
/* Gets the I/O thread to write what is queued (posts the wake task unless one is queued). */
void aipc__bus_wake(aipc_bus *b);

/* AIPC_ECLOSED (closing), AIPC_EDISCONNECTED (down) or 0. Lock held. */
int  aipc__bus_usable_locked(const aipc_bus *b);
/* A zero-copy buffer being sent (bus_buf.c -> aipc__bus_enqueue). */
typedef struct aipc__bus_lent {
    uint64_t charge;              /* its room in b->lent: moves to the frame once it is queued */
    aipc__shm_tx *tx;             /* a lent slot (NULL: heap bytes) ... */
    uint32_t off;                 /* ... at this offset */
    aipc__shm_tx *gone;           /* out: a retired segment this slot was the last of (free it
                                     outside the lock: aipc__shm_tx_free) */
    int fell_back;                /* out: the slot was of an older connection: copied */
} aipc__bus_lent;
/* Any thread: builds the frame of `o` with `len` bytes of data (inline, or through a slot of
 * ours from the threshold), queues it in order with a pending entry `pend` (may be NULL) and
 * gets it written. bl NULL: bounded by max_queue_bytes; else see aipc__bus_lent. 0 or AIPC_E*
 * (nothing queued). */
int  aipc__bus_enqueue(aipc_bus *b, const aipc__bus_out *o, const void *data, size_t len,
                       aipc__bus_pend *pend, uint64_t tag, aipc__bus_lent *bl);
/* aipc_bus_send's frame (a direct message to `to`, acknowledged) through aipc__bus_enqueue. */
int  aipc__bus_send_to(aipc_bus *bus, const char *to, const void *data, size_t len,
                       aipc__bus_lent *bl);

/* ---- bus_buf.c: zero-copy buffers (aipc_bus_alloc, _publish_buf, _send_buf, received ones) */
/* [io] A received message or direct for on_message_buf / on_direct_buf: a buffer holding the
 * shared payload being dispatched (b->rx_cur is taken over when data is its view) or a heap
 * copy. NULL: no memory (logged; the message is lost, a shared slot released by the caller). */
aipc_buf *aipc__bus_buf_received(aipc_bus *b, const void *data, size_t len);

/* ---- bus_conn.c (I/O thread, except aipc__bus_conn_init) ----------------------------------- */
/* Sets the connection fields and the tasks' callbacks of a new client (before any post). */
void aipc__bus_conn_init(aipc_bus *b);
/* The broker welcomed us (HELLO -> READY): resubscribe, write what is queued, CONNECTED. */
void aipc__bus_conn_welcome(aipc_bus *b, const aipc__bus_in *in);
/* The connection broke (HELLO or READY): cancel I/O, fail sent requests, then back off or give
 * up once the handle is closed. `err` is the AIPC_E* cause. */
void aipc__bus_conn_lost(aipc_bus *b, int err);
/* The client's handler of its connection b->io (ctx = the client). */
extern const aipc__conn_handler aipc__bus_io_handler;

/* ---- bus_dispatch.c (I/O thread) ----------------------------------------------------------- */
/* One whole frame from the broker (aipc_decoder callback; ctx = the client). Non-zero stops
 * decoding: the connection was lost or the client closed inside a callback. */
int aipc__bus_on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl,
                       uint32_t pn);

/* ---- bus_shm.c ------------------------------------------------------------------------------ */
/* Makes the client the owner of its shm_link (aipc_bus_connect). */
void aipc__bus_shm_init(aipc_bus *b);
/* [io] The welcome: uses shared memory when it agreed (in->shm_v >= 1) and we offered it. */
void aipc__bus_shm_welcome(aipc_bus *b, const aipc__bus_in *in);
/* [io] The connection broke: no more descriptors are queued from now on. */
void aipc__bus_shm_lost(aipc_bus *b);
/* [io] Nothing pending on the old connection: descriptors still queued go back inline, every
 * slot and view of it goes. */
void aipc__bus_shm_drain(aipc_bus *b);
/* [io] Output source hook, before a new batch is taken: the releases owed as one frame (a
 * malloc'd buffer, *len) or NULL; creates a wanted segment (its announce goes to ctl). */
uint8_t *aipc__bus_shm_out(aipc_bus *b, size_t *len);
/* [io] A frame with op shm_* (0, or non-zero: protocol error, the connection is lost). */
int  aipc__bus_shm_ctl(aipc_bus *b, const uint8_t *meta, uint32_t ml);
/* [io] A msg/direct/req/rep carrying "shm": its payload in the view, held in b->rx_cur. 0 or
 * AIPC_EPROTO. */
int  aipc__bus_shm_resolve(aipc_bus *b, const aipc__bus_in *in, uint32_t pn,
                           const uint8_t **pl, uint32_t *len);
/* Any thread: m was consumed: its release is owed. Inside a read on the I/O thread it is
 * gathered (written at the end of the read, or at once past rel_gather_max or
 * BUS_REL_GATHER_US, unless a write is in flight: then after it); elsewhere a write is started
 * for it at once (the same exception). */
void aipc__bus_shm_release(aipc_bus *b, aipc__bus_shm_msg *m);
/* [io] Before each frame of a read is parsed (bus_dispatch.c): releases gathered for more than
 * BUS_REL_GATHER_US (slow callbacks of any kind since) are written now. 1 if it flushed (the
 * write may have lost the connection: st is then no longer BS_READY), else 0. QPC only. */
int  aipc__bus_shm_gather_check(aipc_bus *b);
/* [io] The end of a read's frames: the gathering stops (io_input then writes what it owes). */
void aipc__bus_shm_read_end(aipc_bus *b);
/* Under the lock (enqueue): a frame for a payload of `len` bytes at or above the threshold
 * through shared memory: *n is its descriptor frame (meta + "shm"), or NULL (go inline).
 * 0 or AIPC_ENOMEM. With *n, *copy_to is its reserved slot: the caller copies the payload
 * there with the lock released (aipc__bus_shm_copy), before *n is queued. */
int  aipc__bus_shm_frame_locked(aipc_bus *b, const char *meta, size_t ml, size_t len,
                                uint64_t tag, aipc__bus_qnode **n, uint8_t **copy_to);
/* A descriptor frame: meta (a JSON object) with ',"shm":[seg,off,len]' before its closing
 * brace, shm_* of the node set (tag as aipc__bus_frame_new). NULL: no memory or bad meta. */
aipc__bus_qnode *aipc__bus_shm_desc_frame(const char *meta, size_t ml, const aipc_shm_desc *d,
                                         uint64_t tag);
/* Called under the lock, returns under it: copies the payload into the slot reserved by
 * aipc__bus_shm_frame_locked with the lock released (the I/O thread and other callers are
 * not held up for the copy, review 2 finding 7), the drain kept waiting meanwhile. */
void aipc__bus_shm_copy(aipc_bus *b, uint8_t *to, const void *data, size_t len);
/* Under the lock: the unsent frames with this tag are being dropped: their slots go. */
void aipc__bus_shm_forget_tag_locked(aipc_bus *b, uint64_t tag);

/* ---- bus_relpage.c: the release page --------------------------------------------------------- */
/* [io] The welcome offered a release page and shared memory is on: creates it and queues its
 * announce at the head of ctl (ANNOUNCED); nothing (NONE, logged) when that fails. */
void aipc__bus_relpage_offer(aipc_bus *b);
/* [io] A shm_seg answer: 1 when it was the page's (handled: OK or REFUSED), 0 when not. */
int  aipc__bus_relpage_answer(aipc_bus *b, const aipc_shm_ctl *c);
/* [io] A descriptor resolved: its arrival number (*seq; 0 when no page is in use). 0 or
 * AIPC_ENOMEM. */
int  aipc__bus_relpage_rx(aipc_bus *b, uint32_t *seq);
/* Under the lock, any thread: m is released. 1: the page took it (a store at most; nothing
 * else to do); 0: release it as a frame (bus_shm.c). */
int  aipc__bus_relpage_release_locked(aipc_bus *b, const aipc__bus_shm_msg *m);
/* [io] 1 while releases owed as frames must wait for the page's answer (ANNOUNCED). */
int  aipc__bus_relpage_withholds(const aipc_bus *b);
/* [io] The connection is gone (the drain), or the client is freed: NONE, the page closed. */
void aipc__bus_relpage_reset(aipc_bus *b);
/* Under the lock (shared is enough): *on 1 in OK; *waiting the releases behind a held one. */
void aipc__bus_relpage_counts_locked(const aipc_bus *b, uint32_t *on, uint32_t *waiting);

/* ---- bus_events.c: user callbacks (called on the I/O thread) ------------------------------ */
void aipc__bus_ev_state(aipc_bus *b, aipc_bus_state s, int err);
void aipc__bus_ev_error(aipc_bus *b, int err, const char *code, const char *msg);
void aipc__bus_ev_message(aipc_bus *b, const char *topic, const aipc_bus_peer *from, int retained,
                          const void *data, size_t len);
void aipc__bus_ev_direct(aipc_bus *b, const aipc_bus_peer *from, const void *data, size_t len);
void aipc__bus_ev_request(aipc_bus *b, const aipc_bus_peer *from, uint64_t req_id,
                          const void *data, size_t len);
void aipc__bus_ev_presence(aipc_bus *b, int joined, const aipc_bus_peer *who);
void aipc__bus_ev_dropped(aipc_bus *b, uint64_t count);
/* The broker answered request `id` (status 0 or AIPC_EREFUSED with data = its code).
 * Returns 0 when no such request was pending (with a dispatcher: when none was pending). */
int  aipc__bus_ev_answer(aipc_bus *b, uint64_t id, int status, const aipc_bus_peer *from,
                         const void *data, size_t len);
/* Completes every expired request with AIPC_ETIMEDOUT (and drops its unsent frame). */
void aipc__bus_ev_expire(aipc_bus *b);
/* Completes with `status` every request already sent (all=0) or every request (all=1). */
void aipc__bus_ev_fail_pending(aipc_bus *b, int all, int status);
/* 1 when callbacks queued for the dispatcher are over the bound: the read side must pause
 * (the resume task follows once they drained); 0 to read on. */
int  aipc__bus_ev_should_pause(aipc_bus *b);
/* 1 when the client's callbacks are shut (aipc_bus_close ran). */
int  aipc__bus_ev_closed(aipc_bus *b);
/* aipc_bus_close on the caller's thread, after the gate is shut: deliver completions that were
 * queued, fail the rest with AIPC_ECLOSED, then on_state(CLOSED). */
void aipc__bus_ev_final(aipc_bus *b);
/* Frees completions still queued (object teardown). */
void aipc__bus_ev_free_done(aipc_bus *b);

#endif
