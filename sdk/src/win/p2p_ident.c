/*
 * p2p_ident.c - a pipe peer's identity (p2p_ident.h).
 */
#include "p2p_ident.h"

#include "asyncipc/asyncipc.h"

#include <aclapi.h>
#include <stdlib.h>
#include <string.h>

PSID aipc__ident_sid_dup(PSID sid)
{
    if (!sid || !IsValidSid(sid))
        return NULL;
    DWORD n = GetLengthSid(sid);
    PSID copy = malloc(n);
    if (copy && !CopySid(n, copy, sid)) {
        free(copy);
        copy = NULL;
    }
    return copy;
}

/* GetTokenInformation into a malloc'd buffer (NULL on failure, GetLastError set). */
static void *token_info(HANDLE tok, TOKEN_INFORMATION_CLASS cls)
{
    DWORD need = 0;
    GetTokenInformation(tok, cls, NULL, 0, &need);
    if (!need || need > 64 * 1024)
        return NULL;
    void *buf = malloc(need);
    if (buf && !GetTokenInformation(tok, cls, buf, need, &need)) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* The user and integrity of a token. 0 or the Win32 error. */
static DWORD from_token(HANDLE tok, PSID *user, DWORD *integrity)
{
    TOKEN_USER *tu = token_info(tok, TokenUser);
    if (!tu)
        return GetLastError() ? GetLastError() : ERROR_INVALID_DATA;
    *user = aipc__ident_sid_dup(tu->User.Sid);
    free(tu);
    if (!*user)
        return ERROR_NOT_ENOUGH_MEMORY;
    TOKEN_MANDATORY_LABEL *ml = token_info(tok, TokenIntegrityLevel);
    if (ml && ml->Label.Sid && IsValidSid(ml->Label.Sid) &&
        *GetSidSubAuthorityCount(ml->Label.Sid) > 0)
        *integrity = *GetSidSubAuthority(ml->Label.Sid, *GetSidSubAuthorityCount(ml->Label.Sid) - 1u);
    free(ml);
    return 0;
}

DWORD aipc__ident_pipe_client(HANDLE pipe, PSID *user, DWORD *integrity)
{
    *user = NULL;
    *integrity = 0;
    if (!ImpersonateNamedPipeClient(pipe))
        return GetLastError() ? GetLastError() : ERROR_CANNOT_IMPERSONATE;
    /* The thread's effective token (pseudo-handle -6): no handle opened, no access check
     * against the client token's DACL; OpenThreadToken as the fallback. */
    DWORD e = from_token((HANDLE)(LONG_PTR)-6, user, integrity);
    if (e) {
        HANDLE tok = NULL;
        if (OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok)) {
            e = from_token(tok, user, integrity);
            CloseHandle(tok);
        } else {
            e = GetLastError() ? GetLastError() : ERROR_NO_TOKEN;
        }
    }
    if (!RevertToSelf()) {
        /* Running on as the client would be worse than stopping: this thread is the SDK's. */
        aipc_log(AIPC_LOG_ERROR, "pipe: RevertToSelf failed (%lu) after reading a client's "
                 "identity; terminating", GetLastError());
        TerminateProcess(GetCurrentProcess(), 3);
    }
    if (e) {
        free(*user);
        *user = NULL;
    }
    return e;
}

DWORD aipc__ident_pipe_owner(HANDLE pipe, PSID *owner)
{
    *owner = NULL;
    PSID o = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD e = GetSecurityInfo(pipe, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &o, NULL, NULL,
                              NULL, &sd);
    if (e == 0) {
        *owner = aipc__ident_sid_dup(o);
        if (!*owner)
            e = ERROR_NOT_ENOUGH_MEMORY;
    }
    if (sd)
        LocalFree(sd);
    return e;
}
