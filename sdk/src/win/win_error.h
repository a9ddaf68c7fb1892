/*
 * win_error.h - the one place that reads Win32 error codes: their AIPC_E* meaning, whether they
 * say "the peer is gone", and their text for log lines (win_error.c).
 *
 * Every transport (point-to-point pipe, bus client, broker engine) maps through these, so a
 * given Win32 error means the same to every caller. The Win32 code itself is never thrown away
 * by the map: callers keep it beside the AIPC_E* code (aipc_pipe_get_error, log lines).
 * Thread: any (pure functions).
 */
#ifndef AIPC_WIN_ERROR_H
#define AIPC_WIN_ERROR_H

#include <windows.h>

#include <stddef.h>

/* 1 when a read, write or connect failed because the other end closed or left: the pipe was
 * broken, is no longer connected, is being closed, or ended. Not an error worth a warning. */
int aipc__win_peer_gone(DWORD err);

/* The AIPC_E* code for a Win32 error of a pipe operation (0 for 0):
 *   missing pipe or path           AIPC_ENOTFOUND
 *   every instance busy            AIPC_EBUSY
 *   peer gone / operation aborted  AIPC_EDISCONNECTED
 *   access denied                  AIPC_EACCESS
 *   out of memory                  AIPC_ENOMEM
 *   anything else                  AIPC_ESYS (the caller keeps the Win32 code)  */
int aipc__win_err(DWORD err);

/* Writes "what: error N - <system text>" into buf (always NUL-terminated when n > 0). */
void aipc__win_errtext(char *buf, size_t n, const char *what, DWORD err);

#endif
