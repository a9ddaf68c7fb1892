/*
 * client_identity.h - who is at the other end of a broker pipe instance, as Windows says:
 * session, user SID, integrity level and groups, as the core's aipc_identity.
 *
 * The work is the SDK's (sdk/src/win/win_ident.h: identification-level impersonation of the
 * client's first read, one implementation for the broker and point-to-point servers); this
 * adapts it to the core's types. If RevertToSelf fails the broker terminates with
 * AIPC_BROKER_EXIT_SYSTEM. Call it after the engine's first read of a connection.
 * Thread: the broker's I/O thread (it impersonates on the calling thread).
 */
#ifndef AIPC_BROKER_CLIENT_IDENTITY_H
#define AIPC_BROKER_CLIENT_IDENTITY_H

#include <windows.h>

#include <stddef.h>

#include "broker.h"
#include "win_ident.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_peer_identity {
    aipc_identity id;            /* what the core gets; pointers into the members below */
    const char *user_sid;        /* w.user_sid */
    aipc_identity_group *groups; /* malloc'd, sids pointing into w */
    aipc__win_ident w;
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
