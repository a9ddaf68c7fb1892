/* win_ident.c - the identity of a pipe client (win_ident.h). */
#include "win_ident.h"

#include <sddl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "winsec.h"

void aipc__win_ident_free(aipc__win_ident *id)
{
    free(id->groups);
    free(id->mem);
    free(id->user);
    memset(id, 0, sizeof *id);
}

/* GetTokenInformation into a malloc'd buffer (NULL on failure). */
static void *token_info(HANDLE tok, TOKEN_INFORMATION_CLASS cls)
{
    DWORD need = 0;
    GetTokenInformation(tok, cls, NULL, 0, &need);
    if (!need || need > 1024 * 1024)
        return NULL;
    void *buf = malloc(need);
    if (buf && !GetTokenInformation(tok, cls, buf, need, &need)) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* A SID as text into out (cap bytes); false when it does not fit or cannot be converted. */
static bool sid_text(PSID sid, char *out, size_t cap)
{
    char *s = NULL;
    if (!sid || !ConvertSidToStringSidA(sid, &s))
        return false;
    size_t n = strlen(s);
    bool ok = n < cap;
    if (ok)
        memcpy(out, s, n + 1);
    LocalFree(s);
    return ok;
}

int aipc__win_ident_from_token(HANDLE tok, aipc__win_ident *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    TOKEN_USER *tu = token_info(tok, TokenUser);
    if (!tu || !sid_text(tu->User.Sid, out->user_sid, sizeof out->user_sid) ||
        !(out->user = aipc__sec_sid_dup(tu->User.Sid))) {
        snprintf(why, whylen, "cannot read the client's user (error %lu)", GetLastError());
        free(tu);
        aipc__win_ident_free(out);
        return -1;
    }
    free(tu);
    TOKEN_MANDATORY_LABEL *ml = token_info(tok, TokenIntegrityLevel);
    if (ml && ml->Label.Sid && IsValidSid(ml->Label.Sid) &&
        *GetSidSubAuthorityCount(ml->Label.Sid) > 0)
        out->integrity =
            *GetSidSubAuthority(ml->Label.Sid, *GetSidSubAuthorityCount(ml->Label.Sid) - 1u);
    free(ml);                      /* no label (old systems, Wine): integrity 0 = unknown */
    TOKEN_GROUPS *tg = token_info(tok, TokenGroups);
    if (!tg) {
        snprintf(why, whylen, "cannot read the client's groups (error %lu)", GetLastError());
        aipc__win_ident_free(out);
        return -1;
    }
    if (tg->GroupCount > AIPC__IDENT_MAX_GROUPS) {
        snprintf(why, whylen, "the client's token has %lu groups (at most %u are kept)",
                 (unsigned long)tg->GroupCount, AIPC__IDENT_MAX_GROUPS);
        free(tg);
        aipc__win_ident_free(out);
        return -1;
    }
    out->groups = calloc(tg->GroupCount ? tg->GroupCount : 1, sizeof *out->groups);
    out->mem = malloc((size_t)(tg->GroupCount ? tg->GroupCount : 1) * (AIPC__IDENT_SID_MAX + 1));
    if (!out->groups || !out->mem) {
        snprintf(why, whylen, "out of memory");
        free(tg);
        aipc__win_ident_free(out);
        return -1;
    }
    size_t n = 0;
    for (DWORD i = 0; i < tg->GroupCount; i++) {
        DWORD a = tg->Groups[i].Attributes;
        if (a & SE_GROUP_INTEGRITY)
            continue;              /* the mandatory label: reported as integrity, not a group */
        char *slot = out->mem + n * (AIPC__IDENT_SID_MAX + 1);
        if (!sid_text(tg->Groups[i].Sid, slot, AIPC__IDENT_SID_MAX + 1)) {
            snprintf(why, whylen, "cannot read a group of the client (error %lu)",
                     GetLastError());
            free(tg);
            aipc__win_ident_free(out);
            return -1;
        }
        out->groups[n].sid = slot;
        out->groups[n].deny_only = (a & SE_GROUP_USE_FOR_DENY_ONLY) || !(a & SE_GROUP_ENABLED);
        n++;
    }
    free(tg);
    out->ngroups = n;
    return 0;
}

/* Impersonation must end before anything else runs on this thread. */
static void revert_or_die(UINT fatal_exit)
{
    if (RevertToSelf())
        return;
    DWORD er = GetLastError();
    aipc_log(AIPC_LOG_ERROR, "RevertToSelf failed (error %lu) after impersonating a pipe "
             "client: terminating the process", (unsigned long)er);
    TerminateProcess(GetCurrentProcess(), fatal_exit);
    for (;;)                       /* TerminateProcess on ourselves does not return */
        Sleep(INFINITE);
}

int aipc__win_ident_capture(HANDLE pipe, DWORD pid, UINT fatal_exit, aipc__win_ident *out,
                            char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    /* Under Wine GetNamedPipeClientSessionId returns TRUE without writing: keep a sentinel. */
    ULONG session = (ULONG)-1;
    if (!GetNamedPipeClientSessionId(pipe, &session))
        session = (ULONG)-1;
    if (session == (ULONG)-1) {
        DWORD s = 0;
        if (pid && ProcessIdToSessionId(pid, &s))
            session = s;
    }
    if (session == (ULONG)-1) {
        snprintf(why, whylen, "cannot learn the client's session (error %lu)", GetLastError());
        return -1;
    }
    if (!ImpersonateNamedPipeClient(pipe)) {
        snprintf(why, whylen, "ImpersonateNamedPipeClient failed (error %lu)", GetLastError());
        return -1;
    }
    /* Read the client's token through the thread's effective-token pseudo-handle while
     * impersonating: no handle is opened, so no access check against the client token's DACL
     * (which names the client's user and SYSTEM, not NT SERVICE\AsyncIPCBroker: OpenThreadToken
     * fails there for an unprivileged service account). OpenThreadToken is the fallback for
     * systems without the pseudo-handle. */
    HANDLE effective = (HANDLE)(LONG_PTR)-6;          /* GetCurrentThreadEffectiveToken() */
    int rc = aipc__win_ident_from_token(effective, out, why, whylen);
    if (rc != 0) {
        HANDLE tok = NULL;
        BOOL opened = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok);
        DWORD er = opened ? 0 : GetLastError();
        if (opened) {
            rc = aipc__win_ident_from_token(tok, out, why, whylen);
            CloseHandle(tok);
        } else {
            snprintf(why, whylen, "cannot read the client's token (error %lu)", (unsigned long)er);
        }
    }
    revert_or_die(fatal_exit);
    if (rc == 0)
        out->session = (uint32_t)session;
    return rc;
}
