/*
 * client_identity.h - who is at the other end of a broker pipe instance, as Windows says:
 * session, user SID, integrity level and groups (for the core's aipc_identity).
 *
 * The user, integrity and groups come from the client's token through ImpersonateNamedPipeClient
 * at the level the client allowed (SDK clients open with SECURITY_IDENTIFICATION: enough to
 * query, not to act) + OpenThreadToken(TOKEN_QUERY, OpenAsSelf) + GetTokenInformation. The
 * impersonation lasts for the OpenThreadToken call only; if RevertToSelf fails the process is
 * terminated, since the thread would otherwise keep running with a client's identity.
 * Windows lets a server impersonate only after it has read data from the pipe
 * (ERROR_CANNOT_IMPERSONATE before that): the engine calls this on the first read.
 * Thread: the broker's I/O thread (it impersonates on the calling thread).
 */
#ifndef AIPC_BROKER_CLIENT_IDENTITY_H
#define AIPC_BROKER_CLIENT_IDENTITY_H

#include <windows.h>

#include <stddef.h>

#include "broker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_peer_identity {
    aipc_identity id;            /* what the core gets; pointers into the members below */
    char user_sid[AIPC_SID_MAX + 1];
    aipc_identity_group *groups; /* malloc'd */
    char *mem;                   /* malloc'd group SID strings */
} aipc_peer_identity;

/* Learns the identity of the client of connected instance `pipe` (pid from
 * GetNamedPipeClientProcessId, used when the pipe does not tell the session). Returns 0, or -1
 * with a one-line reason in why. */
int aipc_peer_identity_capture(HANDLE pipe, DWORD pid, aipc_peer_identity *out, char *why,
                                 size_t whylen);
void aipc_peer_identity_free(aipc_peer_identity *ci);

/* The group list of an open token (TOKEN_QUERY), as the core wants it: enabled groups, and
 * deny-only or disabled ones flagged deny_only; integrity labels left out. For tests too. */
int aipc_peer_identity_from_token(HANDLE token, aipc_peer_identity *out, char *why,
                                    size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
