/*
 * pipe_internal.h - internals of the point-to-point pipe SDK (Windows only, not installed).
 *
 * Layers
 *   pipe_api.c   exported functions (aipc_pipe_*, CreateInstance), marshalling to the I/O thread,
 *                reference counting and destruction.
 *   pipe.c       engine-neutral connection state machine: server listen / client connect with
 *                retry, teardown, Exit; delegate dispatch for OnCreate/OnConnected/OnDisconnected.
 *   pipe_io.c    the pipe's side of its connection (win_conn.c): framed reads (aipc_decoder),
 *                the send batches as output source, OnRecv/OnSend dispatch.
 *   pipe_ctl.c   control frames (frames with a meta): the shared-memory negotiation.
 *   pipe_buf.c   zero-copy buffers: aipc_pipe_alloc / aipc_pipe_send_buf / aipc_buf_release and
 *                the buffer receive callback (aipc_pipe_set_recv_ref); pipe_buf_live.c the
 *                set of live buffers (a stale pointer is looked up, never read).
 *   shm_link.c   shared memory of a connection: send pool, the peer's mapped segments,
 *                descriptors, releases (shm_link.h); win_ident.c / winsec.c: who the peer is.
 *   batch.c      growable send batch (frames + per-message sizes).
 *   timer.c      timers of one I/O loop (I/O thread only).
 *   wname.c      pipe names in UTF-16 (wname.h): conversions around proto/names.h, UTF-8 for logs.
 *   loop_apc.c   engine PIPE_ASYNC: one alertable thread, ReadFileEx/WriteFileEx, QueueUserAPC.
 *   loop_iocp.c  engine PIPE_OVERLAPPED: one thread on an I/O completion port.
 *   loop_thread.c the start of either engine's I/O thread.
 *   win_iocp.c   the op record's completion-port loop (also the broker's: service/win).
 *   win_dial.c   the one client-side open of a pipe (SQOS, owner check, byte mode).
 *   win_listen.c the one place creating pipe instances and accepting on them (also the broker's).
 *   win_error.c  the one Win32 -> AIPC_E* map and "peer is gone" test.
 *   win_conn.c   one connection's data path: pending read, write pump, cancel (also the bus's
 *                and the broker's).
 *
 * Threads
 *   Each engine has ONE process-wide I/O thread (started on first use, lives until process
 *   exit). Every field marked [io] is touched only on that thread. Fields marked [lock] are
 *   guarded by aipc__pipe.lock (an SRW lock) and may be touched by any thread. `refs` is atomic.
 *
 * Lifetime
 *   The pipe object is reference counted. References: the user's (from aipc_pipe_new until
 *   aipc_pipe_free), one per kernel operation in flight (from a successful issue until its
 *   completion handler returns), one per queued task, one for an armed timer, and a temporary
 *   one around every direct entry that may run user callbacks. Memory (including every buffer
 *   handed to the kernel) is freed only when the count reaches zero, so a buffer always outlives
 *   its operation. The pipe HANDLE is closed exactly once, on the I/O thread, when no kernel
 *   operation is pending on it (after CancelIoEx and the resulting completions).
 */
#ifndef AIPC_WIN_PIPE_INTERNAL_H
#define AIPC_WIN_PIPE_INTERNAL_H

#include <windows.h>

#include "asyncipc/asyncipc.h"
#include "cbgate.h"
#include "dispatcher.h"
#include "errors.h"
#include "proto/frame.h"
#include "shm_link.h"
#include "win_conn.h"
#include "win_io.h"
#include "wname.h"
#include "winsec.h"

typedef struct aipc__pipe aipc__pipe;
typedef struct aipc__loop aipc__loop;
typedef struct aipc__timer aipc__timer;
typedef struct aipc__engine aipc__engine;

/* Pipe buffer sizes given to CreateNamedPipe and the size of each pipe's read buffer. Under
 * Wine every ReadFile/WriteFile is a wineserver round trip, so reads are large and writes are
 * coalesced batches. */
#define AIPC_PIPE_BUFSIZE   (256u * 1024u)
/* A frame body at least this large is read straight into the decoder's frame buffer. */
#define AIPC_DIRECT_MIN     (32u * 1024u)
/* A batch is written in pieces of at most this many bytes, OnSend reported for the messages each
 * piece finished. A write completes once its bytes fit the pipe's buffer, so with pieces of the
 * buffer's size one piece sits in the pipe while the next is already issued: the reader never
 * waits for the writer's wake-up (one 4 MiB write completed only when the pipe was drained, and
 * the next started after a round of wake-ups), and the sender's flow control sees progress. */
#define AIPC_WRITE_PIECE    AIPC_PIPE_BUFSIZE
/* Assembly blocks of received frames up to this size are reused for the next large frame
 * (aipc_decoder keep_max): a stream of large messages allocates nothing per message. */
#define AIPC_RECV_KEEP_MAX  (4u * 1024u * 1024u + 64u)
/* Largest single ReadFile length. */
#define AIPC_IO_CHUNK_MAX   (256u * 1024u * 1024u)
/* Upper bound for AIPC_PIPE_OPT_MAX_MESSAGE (sizes are reported as int to the delegate). */
#define AIPC_MAX_MESSAGE_LIMIT (1u << 30)
/* max_queue value meaning "not set": the limit is max(AIPC_DEFAULT_MAX_QUEUE, 4 frames of the
 * largest message), resolved at each Send so options may be set in any order. */
#define AIPC_QUEUE_AUTO UINT64_MAX

/* One asynchronous kernel operation or one marshalled task: aipc__op (win_io.h). Both engines
 * recover it from its OVERLAPPED with CONTAINING_RECORD; `cb` runs on the I/O thread. */

/* A one-shot timer of an I/O loop. [io] */
typedef void (*aipc__timer_cb)(aipc__timer *t);
struct aipc__timer {
    aipc__timer *next;
    ULONGLONG due;         /* GetTickCount64() deadline */
    aipc__timer_cb cb;
    int armed;
};

/* A process-wide I/O loop (one per engine). */
struct aipc__loop {
    const aipc__engine *eng;
    HANDLE thread;         /* the I/O thread (target of QueueUserAPC for PIPE_ASYNC) */
    DWORD tid;
    HANDLE port;           /* PIPE_OVERLAPPED: the completion port */
    aipc__timer *timers;    /* [io] sorted by due */
};

/*
 * Engine operations. The common layer calls them on the I/O thread, except `post` and
 * `attach` (any thread). read/write/listen return 0 when the operation was issued and its
 * completion WILL be delivered to op->cb on the I/O thread, AIPC__IO_INLINE (IOCP engine,
 * op->skip_port) when it succeeded at once and no completion follows (result in op->ov), or the
 * Win32 error when it failed at once (no completion comes). listen returns ERROR_PIPE_CONNECTED (no completion comes) when
 * a client was already there. While a user callback runs on the I/O thread (an alertable wait
 * inside a PIPE_ASYNC callback), completions and tasks are deferred until it returns.
 */
struct aipc__engine {
    const char *name;
    aipc__loop *(*loop)(void);                    /* lazily started loop; NULL on failure */
    BOOL  (*post)(aipc__loop *l, aipc__op *op);    /* run op->cb(op, 0, 0) on the I/O thread */
    /* h is new: bind it to the engine. `listen` is the op a server handle listens with (the
     * APC engine gives it an event), NULL for a client handle. */
    DWORD (*attach)(aipc__loop *l, HANDLE h, aipc__op *listen);
    /* h is about to be closed, nothing pending on it; `listen` as given to attach. */
    void  (*detach)(aipc__loop *l, HANDLE h, aipc__op *listen);
    DWORD (*read)(HANDLE h, aipc__op *op, void *buf, DWORD len);
    DWORD (*write)(HANDLE h, aipc__op *op, const void *buf, DWORD len);
    DWORD (*listen)(aipc__pipe *p, aipc__op *op);
};

/* 1 when the loop's I/O thread has exited (process exit): nothing posted to it will run. */
int aipc__loop_gone(const aipc__loop *l);
/* Starts an engine's I/O thread on fn(l), the module pinned first (loop_thread.c). FALSE
 * (logged, `who` names the engine) if the thread could not start. */
BOOL aipc__loop_start(aipc__loop *l, const aipc__engine *eng, unsigned(__stdcall *fn)(void *),
                      const char *who);

extern const aipc__engine aipc__engine_apc;    /* loop_apc.c */
extern const aipc__engine aipc__engine_iocp;   /* loop_iocp.c */

/* ---- batch.c: frames queued for one WriteFile ---------------------------------------------- */
typedef struct aipc__batch {
    uint8_t *buf;          /* header+meta+payload of each frame, back to back */
    size_t len, cap;
    uint32_t *sizes;       /* per frame, in order: the size OnSend reports once it is written,
                              or AIPC__BATCH_CTL (no OnSend: a control frame, or a shared
                              message's descriptor whose OnSend comes at its release) */
    size_t count, scap;
    unsigned sparse;       /* clears in a row that used a small part of a large buffer */
} aipc__batch;
#define AIPC__BATCH_CTL UINT32_MAX

/* Appends one frame (meta_len 0). Returns 0 or AIPC_ENOMEM (the batch is then unchanged). */
int  aipc__batch_append(aipc__batch *b, const void *data, uint32_t size);
/* Appends one frame with a meta; `report`: what OnSend reports once it is written (its size),
 * or AIPC__BATCH_CTL. 0 or AIPC_ENOMEM (the batch is then unchanged). */
int  aipc__batch_append_meta(aipc__batch *b, const void *meta, uint32_t meta_len, const void *data,
                             uint32_t size, uint32_t report);
/* Empties the batch, keeping its buffers for reuse; a large buffer goes when it is too large to
 * keep at all, or when the recent batches used only a small part of it. */
void aipc__batch_clear(aipc__batch *b);
void aipc__batch_free(aipc__batch *b);

/* ---- timer.c (I/O thread only) --------------------------------------------------------------- */
void  aipc__timer_start(aipc__loop *l, aipc__timer *t, DWORD ms, aipc__timer_cb cb);
/* Returns 1 if the timer was armed (it will not fire), 0 if it was not. */
int   aipc__timer_stop(aipc__loop *l, aipc__timer *t);
/* Runs every due timer; returns the milliseconds until the next one (INFINITE if none). */
DWORD aipc__timers_run(aipc__loop *l);

/* ---- the pipe object ------------------------------------------------------------------------ */
typedef enum {
    AIPC_ST_NEW = 0,     /* before Create */
    AIPC_ST_OPENING,     /* client: waiting for the server (retry timer armed) */
    AIPC_ST_LISTENING,   /* server: ConnectNamedPipe pending */
    AIPC_ST_IDLE,        /* server: between peers, no operation pending (transient) */
    AIPC_ST_CONNECTED,   /* a peer is connected: a read is always pending */
    AIPC_ST_DRAINING,    /* I/O cancelled, waiting for completions before the next step */
    AIPC_ST_FAILED,      /* setup failed (handle may still be open until Exit) */
    AIPC_ST_CLOSED       /* handle closed; nothing more happens */
} aipc__pipe_state;

struct aipc__pipe {
    aipc_named_pipe pub;          /* first: the public table of operations */
    const aipc__engine *eng;
    aipc__loop *loop;
    volatile LONG refs;
    volatile LONG created;        /* 0 before Create, 1 after, 2 = Exit came first */
    volatile LONG exiting;        /* Exit has posted (or run) the close task */
    aipc__gate gate;               /* every delegate call passes it; Exit shuts it */

    /* options: written before Create only */
    uint32_t max_msg;
    uint32_t connect_timeout_ms;
    uint64_t max_queue;           /* AIPC_PIPE_OPT_MAX_QUEUE; AIPC_QUEUE_AUTO = the default */
    uint64_t max_dispatch;        /* AIPC_PIPE_OPT_MAX_DISPATCH; 0 = the default */
    aipc_dispatcher *disp;        /* callbacks go through it (NULL: on the I/O thread) */
    wchar_t *server_sddl;         /* aipc_pipe_set_security (NULL = the default) */
    aipc__sec_expect owners;       /* client: accepted owners of the server's pipe */
    aipc_pipe_recv_ref_fn recv_ref; /* aipc_pipe_set_recv_ref (NULL: on_recv) */
    void *recv_ref_user;
    int shm_mode;                 /* AIPC_PIPE_OPT_SHM: AIPC_SHM_AUTO or AIPC_SHM_OFF */
    uint32_t shm_threshold;       /* AIPC_PIPE_OPT_SHM_THRESHOLD (0 = never send shared) */
    volatile LONG last_err;       /* aipc_pipe_get_error: AIPC_E* and the Win32 error */
    volatile LONG last_win32;

    /* dispatcher flow control (any thread) */
    volatile LONG64 dq_bytes;     /* received bytes queued for the dispatcher (with overhead) */
    volatile LONG64 unreported;   /* written frames whose OnSend is still queued */
    volatile LONG rpaused;        /* reading/listening waits for the dispatcher to drain */
    volatile LONG resume_posted;  /* `resume` is queued (posted at most once at a time) */
    int want_sent;                /* the events have on_send (read at Create, outside the gate) */
    aipc__op resume;               /* task: read again (posted by the dispatcher's thread) */
    aipc__op start_op, exit_op;    /* tasks posted by Create and Exit */
    DWORD create_err;             /* server: CreateNamedPipe's error in Create (0 = ok) */

    /* fixed once Create has started */
    PipeType role;
    wchar_t *name;                /* full "\\.\pipe\NAME" */
    char *name_utf8;              /* for log lines */
    aipc_pipe_events ev;          /* copied by Create: the versioned events, or for a classic
                                     delegate the trampolines of pipe_events.c (user = it) */

    /* [io] state machine */
    aipc__pipe_state state;
    int closed;                   /* Exit ran: no more callbacks, ever */
    int was_connected;            /* OnConnected(true) was reported for the current peer */
    int ops;                      /* listen operations in flight on h (the connection counts its
                                     reads and writes: aipc__conn_pending) */
    HANDLE h;                     /* the pipe (server: the instance, kept between peers) */
    aipc__op cn;                   /* listen (ConnectNamedPipe) */
    aipc__conn io;                /* the connected peer's reads and writes (win_conn.c) */
    aipc__timer retry;             /* client connect retry */
    ULONGLONG deadline;           /* client: give up after this tick */
    DWORD backoff;                /* client: next retry delay */

    /* [io] negotiation with the current peer (pipe_ctl.c) */
    int peer_msg;                 /* client: the server's pipe is message-type (offers shm) */
    int ctl;                      /* AIPC__CTL_* */
    uint64_t frames_in;           /* frames received from the current peer */
    volatile LONG shm_on;         /* negotiated: shared memory may be used (any thread reads) */
    aipc__shm_link shm;           /* its segments, slots and releases (shm_link.c) */

    /* [io] read side (the read buffer is the connection's: AIPC_PIPE_BUFSIZE + 1 bytes) */
    int listen_due;               /* server: listen once the dispatcher has drained */
    aipc_decoder dec;

    /* [io] write side: the in-flight batch is q[qi ^ 1], written in pieces of whole frames */
    size_t wr_off;                /* bytes of the in-flight batch already written */
    size_t wr_end;                /* end of the last message reported written */
    size_t wr_msg;                /* the first message not yet reported written */
    uint8_t *xbuf;                /* a release frame written ahead of the batch (shm_link.c) */
    size_t xlen, xoff;            /* its length (0: none in flight) and bytes written */
    int in_read;                  /* OnRecv of this pipe may be running (read_done on the stack) */
    int flush_due;                /* a Send inside OnRecv took the writer token: write after it */

    /* [lock] send side */
    SRWLOCK lock;
    aipc__batch q[2];              /* q[qi] collects Send()s; qi changes only on the I/O thread */
    int qi;
    int sendable;                 /* connected: a Send may start a write */
    int wbusy;                    /* writer token: a write is in flight or a flush is queued */
    int send_closed;              /* Send returns AIPC_ECLOSED */
    aipc__op flush;                /* task that starts a write (posted by Send) */
    size_t inflight;              /* [lock] bytes of the in-flight batch not yet reported written */
    uint64_t lent;                /* [lock] aipc_pipe_alloc buffers not sent or released: their
                                     capacity + a frame header each (queue accounting) */
    uint64_t buf_bytes, buf_shm_bytes;  /* [lock] their capacity (stats): all / shared slots */
    volatile LONG64 recv_buf_bytes;     /* received buffers not released (stats) */
};

/* ---- pipe_api.c --------------------------------------------------------------------------- */
/* The send-queue bound in bytes (0 = unbounded). */
uint64_t aipc__pipe_queue_limit(const aipc__pipe *p);
/* Records why the pipe failed (aipc_pipe_get_error). */
void aipc__pipe_set_error(aipc__pipe *p, int code, DWORD win32);
void aipc__pipe_ref(aipc__pipe *p);
void aipc__pipe_unref(aipc__pipe *p);   /* frees the object at zero (any thread) */

/* Under the lock: bytes accepted and not yet written (the queue bound's measure). */
uint64_t aipc__pipe_queued_locked(aipc__pipe *p);
/* Under the lock, after something was queued: 1 when this caller took the writer token and
 * must call aipc__pipe_kick after releasing the lock. */
int  aipc__pipe_take_token_locked(aipc__pipe *p);
/* Under the lock: queues the frame {"shm":[seg,off,len]} carrying a shared message. 0 or
 * AIPC_ENOMEM. */
int  aipc__pipe_append_desc_locked(aipc__pipe *p, const aipc_shm_desc *d);
/* Lock not held: starts the write the token was taken for (any thread). */
void aipc__pipe_kick(aipc__pipe *p);

/* ---- pipe_buf.c: zero-copy buffers ---------------------------------------------------------- */
/* The recv_ref callback for one received message (I/O thread): an inline one (copied into a
 * heap buffer) or a shared one (rx != NULL: the buffer holds the slot until released). */
void aipc__pipe_ev_recv_ref(aipc__pipe *p, const uint8_t *data, uint32_t size, aipc__shm_rx *rx,
                            uint32_t gen, uint32_t seg, uint32_t off);
/* Delivers a buffer (any thread, through the gate) or releases it if it cannot be. */
void aipc__pipe_buf_deliver(aipc__pipe *p, aipc_buf *buf);

/* ---- pipe_buf_live.c: the live buffers of the process (any thread, never under p->lock) ---- */
/* Every zero-copy buffer, a pipe's (pipe_buf.c) or a bus client's (bus_buf.c), starts with this
 * header: aipc_buf_release (pipe_buf_live.c) takes it out of the live set and calls `drop`,
 * which gives back what it holds (queue room, a lent slot, a received slot owed to the peer),
 * frees it and drops its owner's reference. aipc_pipe_send_buf / aipc_bus_publish_buf refuse a
 * buffer of the other owner kind. */
enum { AIPC__BUF_PIPE = 1, AIPC__BUF_BUS };
typedef struct aipc__buf_hdr {
    aipc_buf pub;                              /* first: what the application holds */
    int owner;                                 /* AIPC__BUF_* */
    void (*drop)(struct aipc__buf_hdr *h);     /* taken out of the live set: give back, free */
} aipc__buf_hdr;
/* Bytes to allocate for a buffer object of `type` (a struct ending in `heap[]`) carrying n bytes
 * there: never less than the whole struct, which may reach past offsetof(heap) with its padding
 * (objects are cleared and copied as whole structs). */
#define AIPC__BUF_ALLOC(type, n) \
    (offsetof(type, heap) + (size_t)(n) > sizeof(type) ? offsetof(type, heap) + (size_t)(n) \
                                                        : sizeof(type))
/* The live buffer at buf with this owner kind (buf is looked up, not read), or NULL. */
aipc__buf_hdr *aipc__buf_of(aipc_buf *buf, int owner);
/* Adds b: 0 or AIPC_ENOMEM. */
int  aipc__buf_live_add(const void *b);
/* 1 if b is live (the memory at b is not read). */
int  aipc__buf_live_has(const void *b);
/* Removes b: 1 if it was live (exactly one of racing callers gets 1), else 0. */
int  aipc__buf_live_take(const void *b);

/* ---- pipe.c (I/O thread) ------------------------------------------------------------------ */
/* Task posted by Create: starts the server (its instance was created by Create) or client. */
void aipc__pipe_on_start(aipc__op *op, DWORD err, DWORD bytes);
/* Task posted by Exit. */
void aipc__pipe_on_exit(aipc__op *op, DWORD err, DWORD bytes);
/* Rejects further Sends and drops what is queued (any thread). */
void aipc__pipe_close_send_side(aipc__pipe *p);
/* The connection broke (error already known): cancel I/O, report, relisten/close when drained. */
void aipc__pipe_conn_lost(aipc__pipe *p, DWORD err, const char *what);
/* Called at the end of every completion handler: finishes a drain when nothing is pending. */
void aipc__pipe_maybe_finish(aipc__pipe *p);

/* ---- pipe_io.c (I/O thread) --------------------------------------------------------------- */
/* Server: listens for the next peer (pipe.c). */
void aipc__pipe_server_listen(aipc__pipe *p);
/* A peer is connected: resets the decoder, issues the first read, starts queued writes. */
void aipc__pipe_io_begin(aipc__pipe *p);
/* Drops per-connection read/write state after a drain (no operation pending). */
void aipc__pipe_io_reset(aipc__pipe *p);
/* The pipe's handler of its connection p->io (ctx = the pipe). */
extern const aipc__conn_handler aipc__pipe_io_handler;
/* Task posted by Send when it takes the writer token. */
void aipc__pipe_on_flush(aipc__op *op, DWORD err, DWORD bytes);
/* Task posted by the dispatcher's thread when reading or listening may go on. */
void aipc__pipe_on_resume(aipc__op *op, DWORD err, DWORD bytes);

/* Queues a control frame (meta only, no OnSend) behind what Send queued, and starts a write
 * if none is in flight. I/O thread. 0 or AIPC_ENOMEM. */
int  aipc__pipe_queue_ctl(aipc__pipe *p, const char *meta, uint32_t len);
/* Something was queued outside Send (releases owed to the peer, a wanted segment): takes the
 * writer token if it is free and starts a write (I/O thread) or posts the flush task (any
 * other thread). */
void aipc__pipe_poke(aipc__pipe *p);
/* Makes the pipe the owner of its shm_link (aipc__pipe_new, before anything else uses it). */
void aipc__pipe_shm_init(aipc__pipe *p);

/* ---- pipe_ctl.c: control frames, the shared-memory negotiation (I/O thread) ----------------- */
enum {
    AIPC__CTL_NONE = 0,          /* no negotiation with this peer: metas are refused */
    AIPC__CTL_WAIT_HELLO,        /* server: the first frame may be the hello */
    AIPC__CTL_WAIT_ANSWER,       /* client: sent the hello, the server's answer is due */
    AIPC__CTL_DONE               /* negotiated (p->shm_on says how) */
};
/* A peer is connected, the decoder initialised: sets the negotiation state and the decoder's
 * meta limit; *hello = 1 when the hello must be the first frame written (a client). */
void aipc__pipe_ctl_begin(aipc__pipe *p, int *hello);
/* The hello frame's meta. */
const char *aipc__pipe_ctl_hello(size_t *len);
/* A frame with a meta arrived: 0, AIPC_EPROTO (not a control frame we expect now) or
 * AIPC_ENOMEM. */
int  aipc__pipe_ctl_frame(aipc__pipe *p, const uint8_t *meta, uint32_t meta_len,
                          const uint8_t *payload, uint32_t payload_len);
/* A plain message (meta_len 0) arrived. */
void aipc__pipe_ctl_plain(aipc__pipe *p);
/* The peer is gone: nothing negotiated. */
void aipc__pipe_ctl_reset(aipc__pipe *p);

/* ---- pipe_events.c: delegate calls, on the I/O thread or queued to the dispatcher --------- */
/* The events Create uses for a classic delegate (NULL: none): trampolines that read d's members
 * at each call, as the classic API always did. *want_sent: d has OnSend now. */
void aipc__pipe_events_classic(aipc_pipe_delegate *d, aipc_pipe_events *out, int *want_sent);
/* Copies versioned events into *out: the members that lie wholly inside events->size, the rest
 * NULL. AIPC_EINVAL for NULL or a size below AIPC_PIPE_EVENTS_MIN_SIZE. */
int  aipc__pipe_events_copy(const aipc_pipe_events *events, aipc_pipe_events *out);
/* Each passes the pipe's gate (never after Exit). Called on the I/O thread. */
void aipc__pipe_ev_create(aipc__pipe *p, bool ok);
void aipc__pipe_ev_connected(aipc__pipe *p, bool ok);
void aipc__pipe_ev_disconnected(aipc__pipe *p);
/* One received message; `data` has a spare byte at data[size] the callee may overwrite. */
void aipc__pipe_ev_recv(aipc__pipe *p, uint8_t *data, uint32_t size);
/* One received shared message at `data` in segment rx (slot seg/off): the slot is released
 * (shm_link.c) once the callback ran - here, or on the dispatcher's thread. */
void aipc__pipe_ev_recv_shm(aipc__pipe *p, uint8_t *data, uint32_t size, aipc__shm_rx *rx,
                            uint32_t seg, uint32_t off);
/* OnSend for each of `count` written messages. */
void aipc__pipe_ev_sent(aipc__pipe *p, const uint32_t *sizes, size_t count);
/* With a dispatcher: 1 when events queued for it are over the bound, and reading or listening
 * must pause (a resume task follows once they drained); 0 to go on. */
int  aipc__pipe_ev_should_pause(aipc__pipe *p);
/* Dispatcher's thread: an item that added `flow` to dq_bytes is done (resumes reading once
 * the queue is down to half the bound). */
void aipc__pipe_dq_done(aipc__pipe *p, uint64_t flow);
/* Bytes of the dispatch bound. */
uint64_t aipc__pipe_dispatch_limit(const aipc__pipe *p);

#endif
