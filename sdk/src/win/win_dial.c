/*
 * win_dial.c - opens the client end of a named pipe (win_dial.h).
 */
#include "win_dial.h"

#include "win_error.h"

aipc__dial_verdict aipc__dial(const wchar_t *path, const aipc__sec_expect *owners, const char *what,
                              aipc__dial_result *r)
{
    r->h = INVALID_HANDLE_VALUE;
    r->code = 0;
    r->win32 = 0;
    r->message = 0;
    HANDLE h = CreateFileW(path, AIPC_SEC_CLIENT_ACCESS, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                           NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        r->win32 = e ? e : ERROR_GEN_FAILURE;
        r->code = aipc__win_err(r->win32);
        /* Absent (server not started yet, or between instances) or every instance taken. */
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PIPE_BUSY)
            return AIPC__DIAL_RETRY;
        return AIPC__DIAL_FAILED;
    }
    /* Who serves this name? Checked before anything is written to it. */
    int trust = aipc__sec_verify_server(h, owners, what);
    if (trust != 0) {
        CloseHandle(h);
        r->code = trust;
        return AIPC__DIAL_FAILED;
    }
    /* Byte read mode (a message-type pipe too: this states what we rely on). */
    DWORD mode = PIPE_READMODE_BYTE;
    if (!SetNamedPipeHandleState(h, &mode, NULL, NULL))
        aipc_log(AIPC_LOG_DEBUG, "pipe %s: SetNamedPipeHandleState (%lu)", what ? what : "?",
                 GetLastError());
    /* The type the server chose: message = it offers shared memory (a failure reads as byte:
     * the client then simply stays inline). */
    DWORD flags = 0;
    if (GetNamedPipeInfo(h, &flags, NULL, NULL, NULL))
        r->message = (flags & PIPE_TYPE_MESSAGE) != 0;
    r->h = h;
    return AIPC__DIAL_OK;
}
