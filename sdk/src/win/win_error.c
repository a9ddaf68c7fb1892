/*
 * win_error.c - Win32 error codes: AIPC_E* map, "peer is gone" predicate, log text (win_error.h).
 */
#include "win_error.h"

#include <stdio.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

int aipc__win_peer_gone(DWORD err)
{
    switch (err) {
    case ERROR_BROKEN_PIPE:           /* the other end closed its handle */
    case ERROR_PIPE_NOT_CONNECTED:    /* the server disconnected this instance */
    case ERROR_NO_DATA:               /* the pipe is being closed */
    case ERROR_HANDLE_EOF:            /* end of the stream */
        return 1;
    default:
        return 0;
    }
}

int aipc__win_err(DWORD err)
{
    if (err == 0)
        return 0;
    if (aipc__win_peer_gone(err))
        return AIPC_EDISCONNECTED;
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return AIPC_ENOTFOUND;
    case ERROR_PIPE_BUSY:
        return AIPC_EBUSY;
    case ERROR_OPERATION_ABORTED:     /* our own cancel after the connection was lost */
        return AIPC_EDISCONNECTED;
    case ERROR_ACCESS_DENIED:
        return AIPC_EACCESS;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return AIPC_ENOMEM;
    default:
        return AIPC_ESYS;
    }
}

void aipc__win_errtext(char *buf, size_t n, const char *what, DWORD err)
{
    char msg[256] = "";
    if (!buf || !n)
        return;
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err, 0, msg,
                   sizeof msg, NULL);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r' || msg[l - 1] == ' '))
        msg[--l] = 0;
    snprintf(buf, n, "%s: error %lu%s%s", what, (unsigned long)err, l ? " - " : "", msg);
}
