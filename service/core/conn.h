/*
 * conn.h - the broker core's connection interface, portable (no <windows.h>), shared by the core
 * (broker.h) and the engine (service/win/engine.h) so that neither copies the other's types:
 *   - aipc_iov: one piece of a scatter list of queued output; the core fills them
 *     (aipc_client_out_next) and the engine writes them as they are (WriteFile in place, or
 *     gathered into its coalescing buffer);
 *   - aipc_conn: what a connection is to the core. The engine's connection struct begins with it
 *     (as nng's transports begin with nng_stream), with ops pointing at the engine's own
 *     want_write/close/abort, so the core drives the engine's connection without a wrapper.
 */
#ifndef AIPC_BROKER_CONN_H
#define AIPC_BROKER_CONN_H
#include <stddef.h>
#include <stdint.h>

#include "proto/iov.h"
#ifdef __cplusplus
extern "C" {
#endif
typedef struct aipc_client aipc_client;
typedef struct aipc_conn aipc_conn;

/* aipc_iov: one piece of a scatter list of queued output bytes (proto/iov.h). */

/* What the core asks of the engine for one connection. Both called on the broker thread. */
typedef struct aipc_conn_ops {
    /* The core queued output for c and c's queue was empty before: start a write if none is
     * pending (via aipc_client_out_next). May be called for any client during any core call. */
    void (*want_write)(aipc_conn *c);
    /* The core wants c closed once what is queued now has been written (error frames, bye).
     * Called at most once per client. Do not detach from inside the callback. */
    void (*close)(aipc_conn *c);
    /* Optional: a close requested through `close` has not drained within close_linger_ms (the
     * client does not read): close c now, dropping what is still queued, and detach it as
     * usual once its I/O is done. At most once per client; do not detach from inside it. */
    void (*abort)(aipc_conn *c);
} aipc_conn_ops;

/* Engines embed this as the FIRST member of their connection struct. `client` is set by
 * aipc_broker_attach and cleared by aipc_broker_detach. */
struct aipc_conn {
    const aipc_conn_ops *ops;
    aipc_client *client;
};
#ifdef __cplusplus
}
#endif
#endif
