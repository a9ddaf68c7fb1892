/*
 * p2p_ident.h - who is at the other end of a pipe (p2p_ident.c): the user SID and integrity
 * level of a pipe's client, read by identification-level impersonation (the SDK's clients open
 * with SECURITY_IDENTIFICATION: enough to read the token, never to act as the client), and the
 * owner of a server's pipe as a client sees it. Used by the point-to-point shared memory
 * (shm_link.c) to name the peer in a section's DACL.
 * Thread: any (impersonation is per thread and reverted before returning).
 */
#ifndef AIPC_WIN_P2P_IDENT_H
#define AIPC_WIN_P2P_IDENT_H

#include <windows.h>

/* Server side, after at least one frame was read from the client (impersonation needs it):
 * *user = a malloc'd copy of the client's user SID (free() it), *integrity = the RID of its
 * mandatory label (0 when the token has none, as under Wine). 0, or the Win32 error. */
DWORD aipc__ident_pipe_client(HANDLE pipe, PSID *user, DWORD *integrity);

/* Client side: *owner = a malloc'd copy of the owner SID of the server's pipe (the one
 * aipc__sec_verify_server accepted). 0 or the Win32 error. */
DWORD aipc__ident_pipe_owner(HANDLE pipe, PSID *owner);

/* A malloc'd copy of sid (NULL when out of memory or invalid). */
PSID aipc__ident_sid_dup(PSID sid);

#endif
