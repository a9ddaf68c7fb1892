/*
 * shm_seg.h - Win32 shared-memory segments: named pagefile-backed sections with an explicit
 * descriptor (shm_seg.c). docs/design/shared-memory.md sections 5, 7 and 8.
 *
 * The creator (the sender of payloads) creates a segment for one or more receiving principals
 * and maps it read+write; a receiver opens it by name, checks its owner and maps it
 * copy-on-write (FILE_MAP_COPY: its writes stay private, the shared copy is never touched).
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
    uint8_t *view;       /* creator: read+write view; receiver: copy-on-write view */
    uint32_t size;       /* bytes usable from view */
    DWORD syserr;        /* the Win32 error behind the last failure (AIPC_ESYS and the others) */
} aipc__shm_seg;

/* Creates a named pagefile-backed section (SEC_COMMIT) of `size` bytes (> 0) in this session's
 * namespace ("Local\" + name), maps it read+write, and writes its name (without "Local\", as
 * the shm_seg frame carries it; NUL-terminated) into name_out (name_cap >= AIPC_SHM_NAME_BUF).
 * Descriptor (secdesc_section.h): owner this process's user (no ACE: the returned handle has all
 * access), SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL for `reader` and nobody else,
 * mandatory label NWNR at `reader_integrity` (an integrity RID, 0 = medium). 0, AIPC_EINVAL (bad argument, or `reader` a group: see secdesc_section.h),
 * AIPC_EUNTRUSTED (the name exists already: somebody squats it), AIPC_ENOMEM, AIPC_ESYS. */
int aipc__shm_seg_create(aipc__shm_seg *s, uint32_t size, PSID reader, DWORD reader_integrity,
                         char *name_out, size_t name_cap);
/* The same with a given name (a valid segment name): what aipc__shm_seg_create does after
 * drawing one; tests use it to create on a name they squatted. */
int aipc__shm_seg_create_named(aipc__shm_seg *s, uint32_t size, PSID reader,
                               DWORD reader_integrity, const char *name);
/* Opens the section `name` for reading (OpenFileMappingW(FILE_MAP_READ | READ_CONTROL)),
 * checks that its owner is `expect_owner` (the peer's SID) and maps all of it copy-on-write;
 * the view must hold at least `size` bytes (VirtualQuery). `name` is a segment name
 * ("Local\" is added) or one prefixed "Local\", "Global\" or "Session\<n>\" (the broker opening
 * another session's segment). 0 / AIPC_EINVAL (bad name) / AIPC_EACCESS (the DACL does not
 * admit us: error 5) / AIPC_ENOTFOUND (no such section) / AIPC_EUNTRUSTED (another owner) /
 * AIPC_EPROTO (smaller than `size`) / AIPC_ENOMEM / AIPC_ESYS. */
int aipc__shm_seg_open(aipc__shm_seg *s, const char *name, uint32_t size, PSID expect_owner);
/* Unmaps and closes; idempotent (a zeroed or closed segment is fine). */
void aipc__shm_seg_close(aipc__shm_seg *s);

#endif
