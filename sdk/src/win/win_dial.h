/*
 * win_dial.h - the client side of a named pipe: the one place that opens a pipe by name
 * (win_dial.c).
 *
 * One call is one attempt; it never waits. The caller owns the retry policy (deadline, back-off,
 * timer) and calls again on AIPC__DIAL_RETRY. A handle is returned only once it is known to be
 * served by an expected principal, so nothing is ever written to a squatter.
 * Thread: any.
 */
#ifndef AIPC_WIN_DIAL_H
#define AIPC_WIN_DIAL_H

#include <windows.h>

#include "winsec.h"

typedef enum aipc__dial_verdict {
    AIPC__DIAL_OK = 0,    /* r->h is an open, checked client handle (the caller closes it) */
    AIPC__DIAL_RETRY,     /* no instance free or the pipe is absent: try again later */
    AIPC__DIAL_FAILED     /* give up: r->code says why */
} aipc__dial_verdict;

typedef struct aipc__dial_result {
    HANDLE h;             /* AIPC__DIAL_OK: the handle; otherwise INVALID_HANDLE_VALUE */
    int code;             /* AIPC_E* (RETRY: AIPC_EBUSY or AIPC_ENOTFOUND; FAILED: why) */
    DWORD win32;          /* the Win32 error behind `code` (0 for AIPC_EUNTRUSTED) */
    int message;          /* AIPC__DIAL_OK: the server created a PIPE_TYPE_MESSAGE pipe (a
                           * point-to-point server offering shared memory; win_listen.h) */
} aipc__dial_result;

/*
 * One attempt to open `path` (full "\\.\pipe\NAME"):
 *   CreateFileW with AIPC_SEC_CLIENT_ACCESS, FILE_FLAG_OVERLAPPED and identification-level
 *   impersonation only (SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION), then the owner of the
 *   server's end is checked against `owners` (aipc__sec_verify_server: AIPC_EUNTRUSTED or
 *   AIPC_ESYS on failure, the handle is then closed), then byte read mode is set and the
 *   pipe's type read (GetNamedPipeInfo: r->message).
 * `what` names the pipe in log lines.
 */
aipc__dial_verdict aipc__dial(const wchar_t *path, const aipc__sec_expect *owners, const char *what,
                              aipc__dial_result *r);

#endif
