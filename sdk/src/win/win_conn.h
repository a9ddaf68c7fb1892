/*
 * win_conn.h - one connected pipe's data path (win_conn.c), shared by point-to-point pipes
 * (pipe_io.c), the bus client (bus_conn.c) and the broker's connections (service/win/
 * engine_conn.c): the handle's one pending read, the write pump, cancel and drain. In the spirit
 * of nng's win_ipcconn.c.
 *
 * Reads: one read is pending while the connection is open and its user does not pause it, into
 * the connection's read buffer (many frames per read; it may start small and grow after a read
 * that filled it) or, for the rest of a large frame, straight into the frame's own block (the
 * handler's read_direct: the decoder that grows with the bytes that arrive, proto/frame.c).
 * Writes: the handler is an output source. out_next offers the next pieces (aipc_iov, proto/iov.h)
 * without copying them; several small pieces are gathered into one coalescing buffer (at most
 * gather_max bytes), a single or large piece is written in place, at most `piece` bytes per
 * WriteFile (the pipe buffer's size): a write completes once its bytes fit the pipe's buffer,
 * so the reader starts on one piece while the next is written. out_done reports what was
 * written, in order.
 * Inline completions (the broker, and the bus client on PIPE_OVERLAPPED): on a handle with
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (c->rd.skip_port / c->wr.skip_port set by the user) an
 * operation that succeeds at once queues no completion; it is handled in place (the handler's
 * `done` does not run for it: such a user finishes a drain in unref), and after CONN_INLINE
 * reads, or writes, in a row the next one's result is posted to c->port instead, so one busy
 * peer cannot starve the others.
 * Cancel: aipc__conn_cancel closes the connection for I/O (no further read or write is issued)
 * and cancels what is in flight; the handler's `done` runs after every completion, so its user
 * finishes a drain when aipc__conn_pending() is 0. The handle is closed once, only when nothing
 * is pending on it: by aipc__conn_close_handle (the bus client), or by a user that keeps it
 * beyond the connection (a point-to-point server's instance, pipe.c) or closes it with its
 * record (the broker, engine_conn.c).
 *
 * Lifetime: the handler's ref runs for every operation issued and its unref after that
 * operation's completion has been handled, so the user (and with it the connection, its
 * buffers and every piece out_next offered) outlives every kernel operation. aipc__conn_read and
 * aipc__conn_kick hold a reference of their own while they run (a callback inside may close the
 * connection): their unref is the last thing they do, so with a user whose unref may free it
 * (the broker) the caller must not touch c afterwards. The read buffer
 * and the coalescing buffer are freed by aipc__conn_free, which the user calls only when
 * nothing is pending.
 *
 * Threads: every function and every handler callback runs on the I/O thread of the connection's
 * engine - the SDK's APC thread (loop_apc.c) or completion-port thread (loop_iocp.c), or the
 * broker's loop thread (service/win/engine.c, through the IOCP engine's table) - except
 * aipc__conn_init/free, which run where the user creates and destroys it (nothing pending).
 */
#ifndef AIPC_WIN_CONN_H
#define AIPC_WIN_CONN_H

#include "proto/iov.h"
#include "win_io.h"

struct aipc__engine;
struct aipc__loop;
typedef struct aipc__conn aipc__conn;

/* Every callback: on the I/O thread, `c` is the connection, its user is c->ctx. */
typedef struct aipc__conn_handler {
    /* Optional. A large frame is being assembled: where its next bytes go and how many it still
     * misses (*want); NULL when none is. The block stays valid until `input` reports the read. */
    uint8_t *(*read_direct)(aipc__conn *c, size_t *want);
    /* A read returned n bytes (n may be 0), in c's read buffer or, when `direct`, in the block
     * read_direct gave (the bytes at `data` are the ones read). Return 0 to read on, non-zero
     * to issue no read now (paused: aipc__conn_read resumes; or the connection failed/closed
     * inside). The read buffer has one spare byte after the bytes read. */
    int (*input)(aipc__conn *c, uint8_t *data, size_t n, int direct);
    /* Up to `max` next pieces to write; how many (0: nothing to write now). The pieces stay
     * valid and unchanged until out_done reports them written or out_drop runs. */
    int (*out_next)(aipc__conn *c, aipc_iov *iov, int max);
    /* `bytes` (> 0) of the pieces last offered were written, in order. */
    void (*out_done)(aipc__conn *c, size_t bytes);
    /* A write ended while the connection is no longer open (cancelled, failed, or closed by
     * out_done's callee), or could not be issued: what it offered will not be written. */
    void (*out_drop)(aipc__conn *c);
    /* A read or write failed (Win32 error; ERROR_NO_DATA for a write that made no progress), or
     * could not be issued. `what` names it for the log. The connection is cancelled right after
     * (aipc__conn_cancel), unless the callee did it already. Called at most once per start. */
    void (*on_error)(aipc__conn *c, DWORD err, const char *what);
    /* After every completion delivered through the engine has been handled (before unref):
     * finish a drain when aipc__conn_pending(c) == 0. Not run for an operation that succeeded
     * inline (op.skip_port handles only, see win_io.h) and was handled inside aipc__conn_read
     * or aipc__conn_kick: a user that sets skip_port finishes in unref (as the broker does). */
    void (*done)(aipc__conn *c);
    void (*ref)(aipc__conn *c);
    void (*unref)(aipc__conn *c);
    /* Optional. The write about to be issued covers the first `pieces` pieces out_next offered
     * (the last perhaps partly); the others wait for a later write (the broker queues a release
     * right behind the write in flight, service/core/outq.c). */
    void (*out_issued)(aipc__conn *c, int pieces);
} aipc__conn_handler;

/* Sizes of one connection. */
typedef struct aipc__conn_cfg {
    size_t rfirst;                /* the read buffer's first size ... */
    size_t rmax;                  /* ... grown to this after a read that filled it */
    uint32_t piece;               /* largest WriteFile from the user's memory (in place) */
    uint32_t gather_max;          /* largest coalescing buffer (several small pieces) */
    uint32_t direct_min;          /* frames missing at least this much are read in place */
    uint32_t direct_max;          /* largest ReadFile into a frame's block */
} aipc__conn_cfg;

struct aipc__conn {
    const aipc__conn_handler *hd;
    void *ctx;                    /* the user */
    const struct aipc__engine *eng;
    struct aipc__loop *loop;       /* for detach */
    HANDLE h;                     /* INVALID_HANDLE_VALUE when not started */
    aipc__op rd, wr;
    int ops;                      /* operations issued whose completion has not been handled */
    int open;                     /* started and not cancelled: reads and writes may be issued */
    int reading, writing;         /* a read / a write is in flight */
    int rdirect;                  /* the pending read targets the read_direct block */
    uint8_t *rdst;                /* where the pending read goes */
    uint8_t *rbuf;                /* rcap + 1 bytes */
    size_t rcap;
    uint8_t *wbuf;                /* coalescing buffer (only for several small pieces) */
    size_t wcap;
    HANDLE port;                  /* inline completions: where a yielded read is posted */
    int yield;                    /* set by `input`: the next read that succeeds at once is
                                   * posted to `port` (the other connections first) */
    aipc__conn_cfg cfg;
};

/* Sets c up (not started) with its read buffer (cfg->rfirst + 1 bytes). 0 or AIPC_ENOMEM. */
int  aipc__conn_init(aipc__conn *c, const aipc__conn_handler *hd, void *ctx,
                     const aipc__conn_cfg *cfg);
/* Frees the buffers (nothing pending). */
void aipc__conn_free(aipc__conn *c);
/* h is connected and attached to `eng` (whose I/O thread calls this): c owns it from now on and
 * is open. Reading starts with aipc__conn_read, writing with aipc__conn_kick. */
void aipc__conn_start(aipc__conn *c, const struct aipc__engine *eng, struct aipc__loop *loop,
                      HANDLE h);
/* Starts a write of what out_next offers, unless one is in flight or c is not open. */
void aipc__conn_kick(aipc__conn *c);
/* Issues the read (the first one, or again after `input` paused it); nothing if one is pending
 * or c is not open. It may fail at once: on_error runs inside. */
void aipc__conn_read(aipc__conn *c);
/* No more I/O is issued; what is in flight is cancelled (its completions still come). */
void aipc__conn_cancel(aipc__conn *c);
/* Operations in flight (including the one whose completion is being handled). */
int  aipc__conn_pending(const aipc__conn *c);
/* Ends the connection state after a drain (nothing pending): c->h is forgotten (not closed; the
 * user keeps a server instance for its next client) and c may be started again. */
void aipc__conn_reset(aipc__conn *c);
/* Detaches h from the engine (`listen` as given to attach) and closes it, once; nothing may be
 * pending. The connection is reset. */
void aipc__conn_close_handle(aipc__conn *c, aipc__op *listen);

/* The IOCP engine's table (loop_iocp.c): its read and write serve any handle bound to a
 * completion port, also one the SDK's thread does not dispatch (the broker's). */
extern const struct aipc__engine aipc__engine_iocp;

#endif
