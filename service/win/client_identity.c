/*
 * client_identity.c - the identity of a pipe client as the core wants it (client_identity.h),
 * from the SDK's win_ident.
 */
#include "client_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_app.h"

_Static_assert(AIPC__IDENT_SID_MAX == AIPC_SID_MAX, "one SID length limit");
_Static_assert(AIPC__IDENT_MAX_GROUPS == AIPC_IDENTITY_MAX_GROUPS, "one group count limit");

void aipc_peer_identity_free(aipc_peer_identity *ci)
{
    free(ci->groups);
    aipc__win_ident_free(&ci->w);
    memset(ci, 0, sizeof *ci);
}

/* Points the core's view at w. */
static int adapt(aipc_peer_identity *out, char *why, size_t whylen)
{
    out->groups = calloc(out->w.ngroups ? out->w.ngroups : 1, sizeof *out->groups);
    if (!out->groups) {
        snprintf(why, whylen, "out of memory");
        aipc_peer_identity_free(out);
        return -1;
    }
    for (size_t i = 0; i < out->w.ngroups; i++) {
        out->groups[i].sid = out->w.groups[i].sid;
        out->groups[i].deny_only = out->w.groups[i].deny_only;
    }
    out->user_sid = out->w.user_sid;
    out->id.user_sid = out->w.user_sid;
    out->id.session = out->w.session;
    out->id.integrity = out->w.integrity;
    out->id.groups = out->groups;
    out->id.ngroups = out->w.ngroups;
    return 0;
}

int aipc_peer_identity_from_token(HANDLE tok, aipc_peer_identity *out, char *why,
                                    size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (aipc__win_ident_from_token(tok, &out->w, why, whylen) != 0)
        return -1;
    return adapt(out, why, whylen);
}

int aipc_peer_identity_capture(HANDLE pipe, DWORD pid, aipc_peer_identity *out, char *why,
                                 size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (aipc__win_ident_capture(pipe, pid, AIPC_BROKER_EXIT_SYSTEM, &out->w, why, whylen) != 0)
        return -1;
    return adapt(out, why, whylen);
}
