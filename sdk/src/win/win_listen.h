/*
 * win_listen.h - the server side of a named pipe: the one place that creates pipe instances and
 * waits for clients on them (win_listen.c). Used by the point-to-point server (pipe_api.c, both
 * engines' `listen`) and the broker's listener (service/win).
 *
 * Every instance is read and written in byte mode, overlapped, local clients only
 * (PIPE_REJECT_REMOTE_CLIENTS), with the caller's explicit security descriptor and buffer size;
 * its type is byte, or message when the caller asks (`message`: a point-to-point server that
 * offers shared memory - the type is the capability bit its clients see, docs/design/
 * shared-memory.md section 3; byte-mode I/O behaves the same on both types); the first instance of a name
 * carries FILE_FLAG_FIRST_PIPE_INSTANCE so a name someone else holds is never joined.
 * Thread: any; one instance's accept and its completion on the caller's I/O thread.
 */
#ifndef AIPC_WIN_LISTEN_H
#define AIPC_WIN_LISTEN_H

#include <windows.h>

typedef struct aipc__listen_cfg {
    const wchar_t *path;        /* full "\\.\pipe\NAME" */
    SECURITY_ATTRIBUTES *sa;    /* the instance's descriptor (kept by the caller) */
    DWORD max_instances;        /* 1, or PIPE_UNLIMITED_INSTANCES */
    DWORD buffer;               /* in and out buffer size */
    int message;                /* 1: PIPE_TYPE_MESSAGE (still read in byte mode); 0: byte */
} aipc__listen_cfg;

/* Creates one instance; `first`: with FILE_FLAG_FIRST_PIPE_INSTANCE. INVALID_HANDLE_VALUE on
 * failure with *err set (ERROR_ACCESS_DENIED or ERROR_PIPE_BUSY: the name is held). */
HANDLE aipc__listen_instance(const aipc__listen_cfg *cfg, int first, DWORD *err);

/* What a ConnectNamedPipe start or completion means. */
typedef enum aipc__accept {
    AIPC__ACCEPT_PENDING = 0,   /* started: its completion will be delivered (also when it
                                 * finished at once: the event is set / a packet is queued) */
    AIPC__ACCEPT_CONNECTED,     /* a client is connected (at start: no completion follows) */
    AIPC__ACCEPT_GONE,          /* a client came and left already (ERROR_NO_DATA): disconnect
                                 * the instance and accept again */
    AIPC__ACCEPT_FAILED         /* *err / the completion's error says why */
} aipc__accept;

/* Starts an overlapped ConnectNamedPipe on instance h with `ov` (zeroed by the caller, hEvent
 * set if the engine waits on an event). Classifies every outcome; *err = the Win32 error for
 * AIPC__ACCEPT_FAILED (and ERROR_PIPE_CONNECTED / ERROR_NO_DATA for the other two). */
aipc__accept aipc__listen_accept(HANDLE h, OVERLAPPED *ov, DWORD *err);

/* Classifies the completion of a pending accept (its Win32 error, 0 = success). */
aipc__accept aipc__listen_done(DWORD err);

/* 1 when some server (ours or not) already has an instance of `path`. Wine does not enforce
 * FILE_FLAG_FIRST_PIPE_INSTANCE, so a server that must not join a foreign name asks this first
 * (WaitNamedPipe succeeds or times out only when an instance exists). */
int aipc__listen_name_served(const wchar_t *path);

#endif
