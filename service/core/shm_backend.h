/*
 * shm_backend.h - what the broker core asks the engine for shared memory (portable, no
 * <windows.h>). docs/design/shared-memory.md sections 6-9; the bus wire forms are
 * docs/protocol.md ("Shared memory on the bus") and /work/notes' bshm-interfaces.md section 2.
 *
 * The core decides everything (which clients use shared memory, pools, slots, accounting,
 * release); the engine only makes and maps sections. Without a backend installed
 * (aipc_broker_set_shm_backend) the broker never offers shared memory: every welcome is plain
 * and every frame inline.
 *
 * Rules for the engine:
 *   - THREADS: every callback is made on the broker thread, synchronously from inside a core call
 *     (aipc_broker_input / detach / tick / free, ...), under the same rule as aipc_conn_ops:
 *     it must not call back into the broker.
 *   - OWNERSHIP: every segment returned by create or open is closed by the core exactly once,
 *     through close (when its pool retires it, when the client that announced it retires it or
 *     detaches, at the latest from aipc_broker_free). The engine never closes one itself, and
 *     keeps nothing of it that outlives close.
 *   - Views: a created segment's *base is a read+write view of exactly `size` bytes, valid
 *     until close; the core writes payloads into it. An opened (client's) segment's *base is a
 *     READ-ONLY view of exactly `size` bytes, valid until close; the core only reads it (copies
 *     a payload out once), never parses bytes in place.
 *   - Identity: open takes the client's session and user SID from the identity the engine
 *     captured for `conn` (what it gave aipc_client_set_identity), never from what the client
 *     announced (the announce's "session" member is ignored by the core). The core only asks
 *     for clients that have an identity with a user SID.
 *   - create's readers are the receivers' user SID strings ("S-1-5-21-..."), sorted, unique,
 *     1..64 of them; they and name/code strings are only valid during the call.
 *   - Failures: create returns NULL (the core sends inline); open returns NULL and a static
 *     *code string (the core answers the client's announce ok:false with that code).
 */
#ifndef AIPC_BROKER_SHM_BACKEND_H
#define AIPC_BROKER_SHM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"         /* aipc_conn */
#include "proto/shm.h"    /* AIPC_SHM_NAME_BUF */

#ifdef __cplusplus
extern "C" {
#endif

/* At most this many readers per created segment (a pool's principal set). */
#define AIPC_SHM_BACKEND_MAX_READERS 64u

typedef struct aipc_shm_backend {
    void *ctx;
    /* Create a segment of `size` bytes (multiple of 4096) readable by readers[0..n) (SID strings,
     * n <= 64), mandatory label at integrity RID `min_integrity` (0 = medium). Fills *base
     * (read+write view of exactly size bytes), name (AIPC_SHM_NAME_BUF bytes, NUL-terminated,
     * bare name) and *session (the broker's session). Returns an opaque segment, or NULL
     * (out of memory / commit, error logged by the engine). Broker thread. */
    void *(*create)(void *ctx, uint32_t size, const char *const *readers, size_t n,
                    uint32_t min_integrity, uint8_t **base, char *name, uint32_t *session);
    /* Open a CLIENT's segment `name` of `size` bytes read-only: the engine takes the client's
     * session and user SID from `conn` (its captured identity), checks the owner, maps read-only.
     * Returns an opaque segment and *base, or NULL and *code ("access_denied", "not_found",
     * "untrusted_owner", "bad_segment", "no_memory"). Broker thread. */
    void *(*open)(void *ctx, aipc_conn *conn, const char *name, uint32_t size,
                  const uint8_t **base, const char **code);
    /* Unmap and close a segment from create or open (exactly once each). Broker thread. */
    void (*close)(void *ctx, void *seg);
} aipc_shm_backend;

#ifdef __cplusplus
}
#endif
#endif
