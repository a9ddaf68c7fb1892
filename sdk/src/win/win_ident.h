/*
 * win_ident.h - who is at the other end of a server pipe instance, as Windows says: session,
 * user SID, integrity level and groups (win_ident.c). One implementation for the broker
 * (service/win/client_identity.c adapts it to the core's aipc_identity) and the SDK's
 * point-to-point servers (the DACL of shared-memory segments names the client's user).
 *
 * The user, integrity and groups come from the client's token through ImpersonateNamedPipeClient
 * at the level the client allowed (SDK clients open with SECURITY_IDENTIFICATION: enough to
 * query, not to act), read through the thread's effective-token pseudo-handle (no handle is
 * opened, so no access check against the client token's DACL), with OpenThreadToken(TOKEN_QUERY,
 * OpenAsSelf) as the fallback. The impersonation lasts for those calls only; if RevertToSelf
 * fails the process is terminated (exit code `fatal_exit`), since the thread would otherwise
 * keep running with a client's identity. Windows lets a server impersonate only after it has
 * read data from the pipe (ERROR_CANNOT_IMPERSONATE before that): call it after the first read.
 * Thread: any (it impersonates on the calling thread, and reverts before returning).
 */
#ifndef AIPC_WIN_IDENT_H
#define AIPC_WIN_IDENT_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

#define AIPC__IDENT_SID_MAX    191u   /* longest SID string kept (NUL excluded) */
#define AIPC__IDENT_MAX_GROUPS 1024u  /* a Windows token holds at most 1015 groups */

typedef struct aipc__ident_group {
    const char *sid;          /* "S-1-5-32-544" */
    int deny_only;            /* SE_GROUP_USE_FOR_DENY_ONLY, or not enabled */
} aipc__ident_group;

typedef struct aipc__win_ident {
    char user_sid[AIPC__IDENT_SID_MAX + 1];
    PSID user;                /* malloc'd binary copy of the user SID */
    uint32_t session;         /* Windows session id (capture only; 0 from a token) */
    uint32_t integrity;       /* mandatory integrity RID (0x2000 medium, ...); 0 unknown (Wine) */
    aipc__ident_group *groups;   /* malloc'd; integrity labels left out */
    size_t ngroups;
    char *mem;                /* malloc'd group SID strings */
} aipc__win_ident;

/* Learns the identity of the client of connected instance `pipe` (pid from
 * GetNamedPipeClientProcessId, used when the pipe does not tell the session). 0, or -1 with a
 * one-line reason in why. */
int aipc__win_ident_capture(HANDLE pipe, DWORD pid, UINT fatal_exit, aipc__win_ident *out,
                            char *why, size_t whylen);
/* The same from an open token (TOKEN_QUERY); session left 0. */
int aipc__win_ident_from_token(HANDLE token, aipc__win_ident *out, char *why, size_t whylen);
/* Frees what an identity holds and zeroes it (idempotent). */
void aipc__win_ident_free(aipc__win_ident *id);

#endif
