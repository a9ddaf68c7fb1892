/*
 * win_listen.c - pipe instances and ConnectNamedPipe (win_listen.h).
 */
#include "win_listen.h"

HANDLE aipc__listen_instance(const aipc__listen_cfg *cfg, int first, DWORD *err)
{
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                      (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    DWORD mode = (cfg->message ? PIPE_TYPE_MESSAGE : PIPE_TYPE_BYTE) | PIPE_READMODE_BYTE |
                 PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
    HANDLE h = CreateNamedPipeW(cfg->path, open_mode, mode, cfg->max_instances, cfg->buffer,
                                cfg->buffer, 0, cfg->sa);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        *err = e ? e : ERROR_GEN_FAILURE;
        return INVALID_HANDLE_VALUE;
    }
    *err = 0;
    return h;
}

aipc__accept aipc__listen_accept(HANDLE h, OVERLAPPED *ov, DWORD *err)
{
    *err = 0;
    if (ConnectNamedPipe(h, ov))
        return AIPC__ACCEPT_PENDING;    /* finished at once: its completion is queued too */
    DWORD e = GetLastError();
    *err = e;
    switch (e) {
    case ERROR_IO_PENDING:
        *err = 0;
        return AIPC__ACCEPT_PENDING;
    case ERROR_PIPE_CONNECTED:          /* a client got in between create and accept */
        return AIPC__ACCEPT_CONNECTED;
    case ERROR_NO_DATA:                 /* ... and already left */
        return AIPC__ACCEPT_GONE;
    default:
        if (!e)
            *err = ERROR_GEN_FAILURE;
        return AIPC__ACCEPT_FAILED;
    }
}

aipc__accept aipc__listen_done(DWORD err)
{
    if (err == 0 || err == ERROR_PIPE_CONNECTED)
        return AIPC__ACCEPT_CONNECTED;
    if (err == ERROR_NO_DATA)
        return AIPC__ACCEPT_GONE;
    return AIPC__ACCEPT_FAILED;
}

int aipc__listen_name_served(const wchar_t *path)
{
    if (WaitNamedPipeW(path, 1))
        return 1;
    DWORD e = GetLastError();
    return e == ERROR_SEM_TIMEOUT || e == ERROR_PIPE_BUSY;
}
