/*
 * engine_shm.h - the broker's shared-memory backend on Win32 (service/core/shm_backend.h):
 * the fan-out segments the broker creates for the users of matched subscribers, and the
 * segments of clients (publishers, senders, repliers) that it maps read-only. The segments
 * themselves are the SDK's (sdk/src/win/shm_seg.c); docs/design/shared-memory.md sections 6-8
 * and 12, /work/notes/bshm-interfaces.md.
 *
 * A client's segment is opened in the client's session and must be owned by the client's
 * user, both taken from the identity the engine captured when the client connected
 * (client_identity.c through the core's aipc_client_identity), never from the announce.
 * Failures (create: out of memory or commit; open: refused, missing, foreign owner, unfit) are
 * logged once per segment, at WARN for the first and then at most once a minute (any local
 * user can make the broker fail opens without end), the rest at DEBUG with a count.
 *
 * Thread: the broker's I/O thread (the core calls the backend from input and tick).
 */
#ifndef AIPC_BROKER_ENGINE_SHM_H
#define AIPC_BROKER_ENGINE_SHM_H

#include <stdint.h>

#include "shm_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend's state: log rate limit and counts (for diagnostics). Zero it before use; it
 * holds no resource (every segment is closed through the backend's close). */
typedef struct eng_shm {
    uint64_t warned_at;          /* GetTickCount64 of the last WARN, 0 = none yet */
    unsigned long quiet;         /* failures logged at DEBUG since */
    unsigned long created, opened, closed;   /* segments, ever */
    unsigned long failures;      /* creates and opens that failed, ever */
} eng_shm;

/* Fills *be with the Win32 backend over state `s` (be->ctx = s; s must outlive the core). The
 * open of *be expects its aipc_conn to be an engine connection (aipc_wconn) whose handler
 * handle is the core's aipc_client (broker_app.c attaches them so). */
void eng_shm_backend(aipc_shm_backend *be, eng_shm *s);

/* What the backend's open does once it knows the client (also for tests): opens the bare
 * segment name `name` of `size` bytes created in session `session`, which must be owned by
 * `user_sid` (a SID string), read-only. Returns the segment and *base, or NULL and *code
 * ("access_denied", "not_found", "untrusted_owner", "bad_segment", "no_memory"). `pid` is for
 * the log only. */
void *eng_shm_open_as(eng_shm *s, uint32_t session, const char *user_sid, const char *name,
                      uint32_t size, unsigned long pid, const uint8_t **base, const char **code);

#ifdef __cplusplus
}
#endif
#endif
