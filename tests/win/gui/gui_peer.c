/*
 * gui_peer.c - the other end of the classic GUI pattern test (test_gui_classic.c): a real
 * process that talks to the window both ways at once.
 *
 *   gui_peer --pipe NAME [--role server|client] [--engine async|overlapped] [--ready EVENT]
 *            [--inflight N] [--timeout MS]
 *
 * On connect it streams text messages "seq:<n>" (n = 1, 2, ...) forever, keeping about
 * --inflight (default 8) of them unwritten (every OnSend sends the next one), and answers every
 * "ui:<i>" it receives with "echo:ui:<i>". It checks that the "ui:<i>" arrive numbered 0, 1, 2...
 *
 * The process ends when the peer disconnects (a server after its first client), at the latest
 * after --timeout (default 60 s). --ready EVENT is set once OnCreate(true) ran.
 * Exit codes: 0 ok, 2 usage, 3 callback order broken, 4 create/connect failed, 5 timed out,
 * 6 a "ui:<i>" out of order or a send failed.
 */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_ORDER = 3, EXIT_CONNECT = 4, EXIT_TIMEOUT = 5,
       EXIT_DATA = 6 };

typedef struct peer {
    aipc_pipe_delegate d;   /* first member */
    aipc_named_pipe *pipe;
    PipeType role;
    HANDLE done, ready;
    volatile LONG code;     /* first failure wins */
    int created, connected; /* I/O thread only */
    long next_ui;           /* next "ui:<i>" expected */
    long seq;               /* last "seq:<n>" sent */
    long inflight;
} peer;

static void fail(peer *p, LONG code, const char *why)
{
    fprintf(stderr, "gui_peer[%lu]: %s\n", (unsigned long)GetCurrentProcessId(), why);
    InterlockedCompareExchange(&p->code, code, EXIT_OK);
    SetEvent(p->done);
}

/* I/O thread: the next streamed message. A full send queue only means the window is slow. */
static void send_seq(peer *p)
{
    char m[32];
    int n = snprintf(m, sizeof m, "seq:%ld", p->seq + 1);
    int rc = aipc_pipe_send(p->pipe, m, (size_t)n);
    if (rc == AIPC_OK)
        p->seq++;
    else if (rc != AIPC_EQUEUEFULL && rc != AIPC_ECLOSED)
        fail(p, EXIT_DATA, "sending seq failed");
}

static void on_create(aipc_pipe_delegate *d, bool ok)
{
    peer *p = (peer *)d;
    p->created = 1;
    if (!ok)
        fail(p, EXIT_CONNECT, "OnCreate(false)");
    else if (p->ready)
        SetEvent(p->ready);
}

static void on_connected(aipc_pipe_delegate *d, bool ok)
{
    peer *p = (peer *)d;
    if (!p->created) {
        fail(p, EXIT_ORDER, "OnConnected before OnCreate");
        return;
    }
    if (!ok) {
        fail(p, EXIT_CONNECT, "OnConnected(false)");
        return;
    }
    p->connected = 1;
    for (long i = 0; i < p->inflight; i++)
        send_seq(p);
}

static void on_send(aipc_pipe_delegate *d, int size)
{
    send_seq((peer *)d);
}

static void on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    peer *p = (peer *)d;
    long i;
    char tail;
    if (sscanf((const char *)data, "ui:%ld%c", &i, &tail) != 1) {
        fail(p, EXIT_DATA, "unexpected message");
        return;
    }
    if (i != p->next_ui) {
        char why[96];
        snprintf(why, sizeof why, "ui:%ld arrived, expected ui:%ld", i, p->next_ui);
        fail(p, EXIT_DATA, why);
        return;
    }
    p->next_ui++;
    char m[48];
    int n = snprintf(m, sizeof m, "echo:ui:%ld", i);
    if (aipc_pipe_send(p->pipe, m, (size_t)n) != AIPC_OK)
        fail(p, EXIT_DATA, "echo failed");
}

static void on_disconnected(aipc_pipe_delegate *d)
{
    SetEvent(((peer *)d)->done);
}

int main(int argc, char **argv)
{
    static peer p;
    const char *pipe = NULL, *ready = NULL;
    PipeImplType engine = PIPE_ASYNC;
    DWORD timeout = 60000;
    p.role = PIPE_CLIENT;
    p.inflight = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--pipe"))
            pipe = v;
        else if (!strcmp(a, "--role"))
            p.role = !strcmp(v, "server") ? PIPE_SERVER : PIPE_CLIENT;
        else if (!strcmp(a, "--engine"))
            engine = !strcmp(v, "overlapped") ? PIPE_OVERLAPPED : PIPE_ASYNC;
        else if (!strcmp(a, "--ready"))
            ready = v;
        else if (!strcmp(a, "--inflight"))
            p.inflight = strtol(v, NULL, 10);
        else if (!strcmp(a, "--timeout"))
            timeout = strtoul(v, NULL, 10);
        else
            pipe = NULL, argc = 0;
    }
    if (!pipe || argc % 2 == 0) {
        fprintf(stderr, "gui_peer: bad arguments (see gui_peer.c)\n");
        return EXIT_USAGE;
    }
    if (ready) {
        wchar_t w[256];
        aipc_test_wname(w, 256, ready);
        p.ready = OpenEventW(EVENT_MODIFY_STATE, FALSE, w);
    }
    InitEasyLog("gui_peer");
    p.d.OnCreate = on_create;
    p.d.OnConnected = on_connected;
    p.d.OnSend = on_send;
    p.d.OnRecv = on_recv;
    p.d.OnDisconnected = on_disconnected;
    p.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!p.done || aipc_pipe_new(engine, &p.pipe) != AIPC_OK)
        return EXIT_CONNECT;
    wchar_t wname[256];
    aipc_test_wname(wname, 256, pipe);
    if (!aipc_pipe_create(p.pipe, wname, p.role, &p.d)) {
        fprintf(stderr, "gui_peer: aipc_pipe_create failed\n");
        return EXIT_CONNECT;
    }
    if (WaitForSingleObject(p.done, timeout) != WAIT_OBJECT_0)
        fail(&p, EXIT_TIMEOUT, "timed out");
    aipc_pipe_free(p.pipe);
    return (int)p.code;
}
