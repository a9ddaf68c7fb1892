/*
 * engine_internal.h - what the broker engine's three files share (not installed):
 *   engine.c         the loop on the caller's thread (broker_engine_run), stop, create/free
 *   engine_listen.c  the instances waiting for clients (backlog, first instance, squatters)
 *   engine_conn.c    one client connection: the handler of its pipe connection (win_conn.c:
 *                    reads, coalesced writes), flush list, close
 *
 * Every overlapped operation is an aipc__op (sdk/src/win/win_io.h) embedded in its connection
 * (the accept cn; the reads and writes are its win_conn.c connection's) and recovered with
 * CONTAINING_RECORD; the completion port is dispatched by the SDK's aipc__iocp_dispatch, the
 * same code as the SDK's PIPE_OVERLAPPED thread. Everything here runs on the thread in
 * broker_engine_run (the I/O thread), except broker_engine_request_stop.
 */
#ifndef AIPC_BROKER_ENGINE_INTERNAL_H
#define AIPC_BROKER_ENGINE_INTERNAL_H

#include "engine.h"

#include <stdbool.h>

#include "win_conn.h"
#include "win_io.h"

enum { C_LISTEN, C_OPEN, C_CLOSING };

struct aipc_wconn {
    aipc_conn conn;         /* first: the core's view (aipc_wconn_conn); ops = the engine's */
    broker_engine *e;
    HANDLE h;
    aipc__op cn;             /* accept */
    aipc__conn io;          /* once connected: its reads and writes (sdk/src/win/win_conn.c) */
    int inflight;           /* the accept, and (io's ref/unref) every read and write in flight and
                             * every pump of io running: finished when 0 */
    int st;
    void *user;             /* handler's connection, NULL until attached */
    unsigned long pid;
    bool close_flush;       /* close once output is drained */
    bool abort;             /* close now, whatever is queued (aipc_wconn_abort) */
    bool dirty;             /* on the engine's flush list */
    bool identified;        /* the handler's identify ran (before the first input) */
    bool listening;         /* counted in e->nlisten: its accept is pending */
    bool dropped;           /* a listener closed on purpose: its handle goes once the
                             * cancelled accept completes and no longer holds the name */
    aipc_wconn *prev, *next;    /* all connections (listener included) */
    aipc_wconn *dnext;          /* flush list */
};

struct broker_engine {
    HANDLE port;
    broker_engine_config cfg;
    wchar_t *pipe_path;
    broker_engine_handler h;
    int nlisten;                /* instances pending in ConnectNamedPipe (c->listening) */
    int backlog;                /* how many we keep pending (cfg.listen_backlog, 1..4) */
    aipc_wconn *all;
    aipc_wconn *dirty;
    aipc_wconn *ready;          /* connected instances waiting to be attached (dnext chain) */
    size_t nopen;
    bool need_listener;         /* creating an instance failed: retry on a timer */
    bool squat_logged;          /* "name taken while we had no instance" was logged */
    unsigned long squat_refusals;   /* retries that found the name held by another server */
    bool stopping, stop_requested;
    LONG stop_posted;
    aipc__op stop_op;            /* task posted by broker_engine_request_stop */
    ULONGLONG stop_deadline;
    bool hard_cancelled;
    DWORD timer_wait;           /* what the handler's timer asked for last (I/O thread) */
};

/* ---- engine_conn.c -------------------------------------------------------------------------- */
/* A connection record (no handle yet), linked into e->all. NULL when out of memory. */
aipc_wconn *eng_conn_alloc(broker_engine *e);
/* Unlinks and frees c, whose ops have all completed; detaches it from the handler and closes
 * its handle (once). */
void eng_conn_finish(aipc_wconn *c);
/* After an op of c completed: finishes a closing connection with nothing in flight. */
void eng_conn_maybe_finish(aipc_wconn *c);
/* Abortive close: cancels everything in flight; the last completion frees the connection. */
void eng_conn_close_now(aipc_wconn *c);
/* A connected instance: attach it to the handler and start reading. */
void eng_conn_accept(aipc_wconn *c);
/* Writes for the connections with new output (after a batch of completions), at most
 * ENG_FLUSH_SLICE per call: a large fan-out marks every subscriber at once, and each WriteFile
 * costs a server round trip (~0.2 ms under Wine), so the rest stay on the list for the loop's
 * next turn, which polls the port without waiting while the list is not empty: other
 * clients' completions are served in between (docs/protocol.md section 8). */
#define ENG_FLUSH_SLICE 8u
void eng_flush_dirty(broker_engine *e);

/* ---- engine_listen.c ------------------------------------------------------------------------ */
/* The first instance (FILE_FLAG_FIRST_PIPE_INSTANCE, after a probe) and the rest of the backlog.
 * BROKER_ENGINE_OK, or _PIPE_BUSY / _SYS with a one-line reason in err. */
int eng_listen_start(broker_engine *e, char *err, size_t errlen);
/* Refills the backlog; instances that connect at once go to e->ready. */
void eng_listen_next(broker_engine *e);
/* Attaches instances that connected at once (after the backlog is pending again). */
void eng_drain_ready(broker_engine *e);
/* Closes every instance pending in ConnectNamedPipe. */
void eng_close_listeners(broker_engine *e);

#endif
