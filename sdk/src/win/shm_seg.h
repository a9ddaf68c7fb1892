/*
 * shm_seg.h - Win32 shared-memory segments: named pagefile-backed sections with an explicit
 * descriptor (shm_seg.c). docs/design/shared-memory.md sections 5, 7 and 8.
 *
 * The creator (the sender of payloads) creates a segment for its receiving principals (one
 * for point to point, the matched subscribers' users for the broker) and maps it read+write; a receiver opens it by name, checks its owner and maps it READ-ONLY
 * (FILE_MAP_READ: a write through it faults). Never copy-on-write: a receiver page once
 * written would stay private and show stale bytes after the creator reuses the slot. The
 * creator writes every byte receivers read, the spare NUL after a payload included
 * (proto/shm_ring.h). A receiver's view changes under it while the creator writes: copy a
 * payload before validating anything in it (never validate-then-use from the view).
 * Names ("aipc-<pid>-<32 hex random>-<n>", proto/shm.h) carry 128 random bits
 * (RtlGenRandom) but are not secrets: the DACL (secdesc_section.h) is the security. The
 * creator never uses an object somebody else made (ERROR_ALREADY_EXISTS: AIPC_EUNTRUSTED), the
 * receiver never maps one whose owner is not the peer it expects.
 *
 * Thread: any; one segment is used by one thread at a time (the caller serialises).
 * Every handle and view is released by aipc__shm_seg_close (idempotent); a killed process's are
 * released by the kernel, and a section lives while any handle or view of it exists.
 */
#ifndef AIPC_WIN_SHM_SEG_H
#define AIPC_WIN_SHM_SEG_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

#include "proto/shm.h"

typedef struct aipc__shm_seg {
    HANDLE h;            /* the section (NULL when closed) */
    uint8_t *view;       /* creator: read+write view; receiver: READ-ONLY view (never write) */
    uint32_t size;       /* bytes usable from view */
    DWORD syserr;        /* the Win32 error behind the last failure (AIPC_ESYS and the others) */
    DWORD session;       /* the session whose namespace holds it: create fills this process's
                          * (send it with the name: a receiver passes it to _open_in) */
} aipc__shm_seg;

/* Creates a named pagefile-backed section (SEC_COMMIT) of `size` bytes (> 0) in this session's
 * namespace ("Local\" + name), maps it read+write, and writes its name (without "Local\", as
 * the shm_seg frame carries it; NUL-terminated) into name_out (name_cap >= AIPC_SHM_NAME_BUF).
 * Descriptor (secdesc_section.h): owner this process's user (no ACE: the returned handle has all
 * access), SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL for `reader` and nobody else,
 * mandatory label NWNR at min(`reader_integrity` (an integrity RID, 0 = medium), this process's
 * token integrity). `s` must be zeroed, closed or uninitialised (an open one would leak).
 * Never call it while the thread impersonates (the owner is the process's user). 0, AIPC_EINVAL (bad argument, or `reader` a group: see secdesc_section.h),
 * AIPC_EUNTRUSTED (the name exists already: somebody squats it), AIPC_ENOMEM, AIPC_ESYS. */
int aipc__shm_seg_create(aipc__shm_seg *s, uint32_t size, PSID reader, DWORD reader_integrity,
                         char *name_out, size_t name_cap);
/* The same with a given name (a valid segment name): what aipc__shm_seg_create does after
 * drawing one; tests use it to create on a name they squatted. */
int aipc__shm_seg_create_named(aipc__shm_seg *s, uint32_t size, PSID reader,
                               DWORD reader_integrity, const char *name);
/* The same for readers[0..n) (1 <= n <= AIPC__SEC_SECTION_MAX_READERS), SID strings of single
 * principals ("S-1-..."; groups and aliases are refused: AIPC_EINVAL): one ACE each, label at
 * min(`min_integrity` (the readers' lowest integrity RID, 0 = medium), this process's). What
 * the broker creates for a set of subscribers; the PSID forms above are wrappers of these. */
int aipc__shm_seg_create_for(aipc__shm_seg *s, uint32_t size, const char *const *readers, size_t n,
                             DWORD min_integrity, char *name_out, size_t name_cap);
/* This process's token integrity RID, 0 when it cannot be read. The label rule min(readers,
 * own) is right for a creator that sends its OWN data (point to point): the label then equals
 * what its own memory already exposes to that user. A creator that forwards other processes'
 * data to readers above its own level (the broker) must not lower the label: it asks this
 * first and sends inline instead (service/win/engine_shm.c). */
DWORD aipc__shm_seg_own_integrity(void);
int aipc__shm_seg_create_named_for(aipc__shm_seg *s, uint32_t size, const char *const *readers,
                                   size_t n, DWORD min_integrity, const char *name);
/* Opens the section `name` for reading (OpenFileMappingW(FILE_MAP_READ | SECTION_QUERY |
 * READ_CONTROL)), checks that its owner is `expect_owner` (the peer's SID), that it is a
 * pagefile-backed SEC_COMMIT section of at least `size` bytes (NtQuerySection), maps exactly
 * `size` bytes read-only and checks every page of the view is committed (VirtualQuery walk: a
 * SEC_RESERVE section would fault on the first read). Bound `size` by policy before calling. `name` is a segment name
 * ("Local\" is added) or one prefixed "Local\", "Global\" or "Session\<n>\" (the broker opening
 * another session's segment). 0 / AIPC_EINVAL (bad name) / AIPC_EACCESS (the DACL does not
 * admit us: error 5) / AIPC_ENOTFOUND (no such section) / AIPC_EUNTRUSTED (another owner) /
 * AIPC_EPROTO (smaller than `size`, not committed, file-backed) / AIPC_ENOMEM / AIPC_ESYS. */
int aipc__shm_seg_open(aipc__shm_seg *s, const char *name, uint32_t size, PSID expect_owner);
/* The same for a receiver that knows the creator's session from a trusted source (e.g.
 * GetNamedPipeClientSessionId, never the peer's own word): `name` must be a bare segment name
 * (aipc_shm_name_valid: no prefix, no backslash) and the namespace is built here: "Local" when
 * `creator_session` is this process's session, "Global" for session 0 (a session-0 creator's
 * "Local" is the global namespace), "Session\<n>" otherwise. Same results as _open (a prefixed
 * name: AIPC_EINVAL). aipc__shm_seg_open accepts prefixes for tests and same-session peers;
 * code passing a received name uses this one or a bare name. */
int aipc__shm_seg_open_in(aipc__shm_seg *s, DWORD creator_session, const char *name, uint32_t size,
                          PSID expect_owner);
/* Unmaps and closes; idempotent (a zeroed or closed segment is fine). */
void aipc__shm_seg_close(aipc__shm_seg *s);

#endif
