/*
 * engine.h - the broker's Windows connection engine: named-pipe listener and connections on one
 * I/O completion port, driven by ONE I/O thread (the thread that calls broker_engine_run).
 *
 * Thread model
 *   - broker_engine_run() is the only thread that touches connections, buffers and the handler.
 *     Every handler callback runs on it, so the handler (the single-threaded broker core) needs
 *     no lock.
 *   - broker_engine_request_stop() may be called from any thread (console control handler, SCM
 *     control handler): it only posts a packet to the completion port.
 *
 * The engine knows nothing about the protocol: it hands received bytes to the handler and asks
 * the handler for a scatter list of queued output (pieces stay owned by the handler until
 * out_consume reports them written).
 */
#ifndef AIPC_BROKER_ENGINE_H
#define AIPC_BROKER_ENGINE_H

#include <windows.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"   /* aipc_conn (a connection's first member), aipc_iov (output pieces) */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct broker_engine broker_engine;
/* A connection. It begins with the core's connection interface (service/core/conn.h), whose
 * ops are the engine's aipc_wconn_want_write/close/abort: the handler hands aipc_wconn_conn(c)
 * to the core (aipc_broker_attach) as it is, no wrapper object. */
typedef struct aipc_wconn aipc_wconn;

/* What the engine calls. Every member runs on the I/O thread. */
typedef struct broker_engine_handler {
    void *ctx;
    /* A client connected (pid of the peer process). Returns the per-connection handle that the
     * other calls get, or NULL to refuse (the engine closes the pipe instance). */
    void *(*attach)(void *ctx, aipc_wconn *c, unsigned long pid);
    /* Bytes arrived. Returns < 0 to have the connection closed at once (queued output dropped),
     * > 0 to have the engine serve its other connections before this one's next read (the
     * input was heavy: shared payloads copied), 0 otherwise. */
    int (*input)(void *ctx, void *conn, const uint8_t *data, size_t len);
    /* The connection is gone and no I/O on it is pending any more: forget it. */
    void (*detach)(void *ctx, void *conn);
    /* Fills up to max pieces of queued output (from the oldest unwritten byte); returns the count. */
    int (*out_next)(void *ctx, void *conn, aipc_iov *iov, int max);
    /* n bytes from the front of the queued output were written. */
    void (*out_consume)(void *ctx, void *conn, size_t n);
    /* The engine is stopping: queue a goodbye to every client (then flushed and closed). */
    void (*shutdown)(void *ctx);
    /* Called once per loop turn (at least once a second). May be NULL. */
    void (*tick)(void *ctx);
    /* Optional zero-copy reads: while a large frame is being assembled, where its next bytes
     * go and how many are missing (NULL = none). The memory must stay valid until read_commit
     * or detach. read_commit reports n bytes read there (same return values as input). */
    uint8_t *(*read_direct)(void *ctx, void *conn, size_t *want);
    int (*read_commit)(void *ctx, void *conn, size_t n);
    /* Optional: called once per connection, after its first read completed and before those
     * bytes go to input, with the connected instance (Windows lets a server impersonate its
     * client only once it has read from the pipe). Returns < 0 to have the connection closed
     * at once (its bytes are not processed). */
    int (*identify)(void *ctx, void *conn, HANDLE pipe, unsigned long pid);
    /* Optional timers: called once per loop turn (after tick); runs what is due and returns
     * how many milliseconds the loop may wait before calling it again (0: at once, INFINITE:
     * no deadline). The loop never sleeps past it. */
    DWORD (*timer)(void *ctx);
    /* Optional: the write about to be issued covers the first `pieces` pieces the last
     * out_next gave (the last perhaps partly): aipc_client_out_issued. */
    void (*out_issued)(void *ctx, void *conn, int pieces);
} broker_engine_handler;

typedef struct broker_engine_config {
    const wchar_t *pipe_path;      /* full form \\.\pipe\NAME */
    SECURITY_ATTRIBUTES *sa;       /* descriptor for every instance (kept by the caller) */
    DWORD pipe_buffer;             /* in/out buffer size hint per instance (0 = 64 KiB) */
    DWORD stop_grace_ms;           /* how long a stop waits for goodbyes to flush (0 = 3000) */
    DWORD listen_backlog;          /* instances kept waiting for clients (0 = 2; at most 4) */
} broker_engine_config;

/* Start-up error classes (broker_engine_create's return value). */
#define BROKER_ENGINE_OK         0
#define BROKER_ENGINE_PIPE_BUSY  1   /* the pipe name is in use by another server */
#define BROKER_ENGINE_SYS        2   /* any other Win32 failure (err holds the text) */

/* Creates the completion port and the first (FILE_FLAG_FIRST_PIPE_INSTANCE) listening instance.
 * On failure writes a one-line reason into err. */
int broker_engine_create(broker_engine **out, const broker_engine_config *cfg,
                         const broker_engine_handler *h, char *err, size_t errlen);
/* Runs the I/O loop until a requested stop has finished (goodbyes flushed or grace expired).
 * Returns 0. */
int broker_engine_run(broker_engine *e);
/* Asks the loop to stop. Any thread; idempotent. */
void broker_engine_request_stop(broker_engine *e);
/* Frees an engine whose loop has returned (or never ran). */
void broker_engine_free(broker_engine *e);

/* The core's connection interface that c begins with (ops: the three calls below). */
static inline aipc_conn *aipc_wconn_conn(aipc_wconn *c)
{
    return (aipc_conn *)c;
}

/* I/O thread only (from handler callbacks): output was queued for c; a write starts after the
 * current batch of completions. */
void aipc_wconn_want_write(aipc_wconn *c);
/* I/O thread only: close c once its queued output is written. */
void aipc_wconn_close(aipc_wconn *c);
/* I/O thread only: close c now, dropping queued output (a reader that stopped reading); the
 * handler's detach follows once its I/O is done. Takes effect after the current callback. */
void aipc_wconn_abort(aipc_wconn *c);

/* How many instances are pending in ConnectNamedPipe (I/O thread; for diagnostics/tests). */
int broker_engine_listening(const broker_engine *e);
/* How many times re-creating the pipe after every instance was gone found the name held by
 * another server (and did not join it). I/O thread. */
unsigned long broker_engine_squat_refusals(const broker_engine *e);
/* TEST ONLY (I/O thread, e.g. from tick): closes the pending listeners as if creating instances
 * had failed, so the retry path runs. */
void broker_engine__test_drop_listener(broker_engine *e);

/* Number of currently open client connections (I/O thread; for diagnostics). */
size_t broker_engine_clients(const broker_engine *e);

#ifdef __cplusplus
}
#endif
#endif
