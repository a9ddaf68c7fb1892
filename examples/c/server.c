/*
 * server.c - console port of the classic AsyncIPCServer sample (C API).
 *
 * Listens on a pipe, prints every message it receives and echoes it back to the client.
 *   aipc-example-server [--engine async|overlapped] [--pipe NAME] [--count N] [--once]
 * --once: exit after the first client leaves (otherwise serve clients until Ctrl+C).
 * --count N: also exit after echoing N messages (0 = no limit).
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

typedef struct server {
    IPipeDelegate base;       /* first member: the SDK passes &base back to us */
    INamedPipe *pipe;
    HANDLE done;              /* set when the server should stop */
    int once;
    volatile LONG failed;     /* Create could not set up the pipe */
    long limit;
    volatile LONG echoed;
} server;

/* Prints up to 120 bytes of a message as text (non-printable bytes as '.'). */
static void print_msg(const char *what, const void *data, int size)
{
    char text[121];
    int n = size < 120 ? size : 120;
    for (int i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char *)data)[i];
        text[i] = (c >= 32 && c < 127) ? (char)c : '.';
    }
    text[n] = 0;
    printf("server: %s %d bytes: %s%s\n", what, size, text, size > n ? "..." : "");
    fflush(stdout);
}

/* I/O thread: the pipe instance exists (or could not be created). */
static void on_create(IPipeDelegate *self, bool ok)
{
    server *s = (server *)self;
    printf("server: listening: %s\n", ok ? "yes" : "FAILED");
    fflush(stdout);
    if (!ok) {
        InterlockedExchange(&s->failed, 1);
        SetEvent(s->done);
    }
}

/* I/O thread: a client connected. */
static void on_connected(IPipeDelegate *self, bool ok)
{
    printf("server: client connected: %s\n", ok ? "yes" : "no");
    fflush(stdout);
}

/* I/O thread: one message arrived; echo it. */
static void on_recv(IPipeDelegate *self, void *data, int size)
{
    server *s = (server *)self;
    print_msg("recv", data, size);
    int rc = s->pipe->SendData(s->pipe, data, (size_t)size);
    if (rc != AIPC_OK)
        printf("server: echo failed: %s\n", aipc_strerror(rc));
    else
        print_msg("send", data, size);
    LONG n = InterlockedIncrement(&s->echoed);
    if (s->limit > 0 && n >= s->limit && !s->once)
        SetEvent(s->done);
}

/* I/O thread: one echo was fully written. */
static void on_send(IPipeDelegate *self, int size)
{
    (void)self;
    (void)size;
}

/* I/O thread: the client left; the SDK listens again by itself. */
static void on_disconnected(IPipeDelegate *self)
{
    server *s = (server *)self;
    printf("server: client disconnected (%ld messages echoed)\n", (long)s->echoed);
    fflush(stdout);
    if (s->once)
        SetEvent(s->done);
}

static HANDLE g_stop;

/* Console control thread: Ctrl+C / Ctrl+Break / close stop the server cleanly. */
static BOOL WINAPI on_ctrl(DWORD type)
{
    (void)type;
    SetEvent(g_stop);
    return TRUE;
}

/* Turns "NAME" into a wide string (the SDK accepts both "NAME" and "\\.\pipe\NAME"). */
static wchar_t *widen(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (w)
        MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

int main(int argc, char **argv)
{
    const char *pipe_name = "asyncipc.example";
    PipeImplType engine = PIPE_ASYNC;
    server s;
    memset(&s, 0, sizeof s);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
            const char *e = argv[++i];
            if (!strcmp(e, "async") || !strcmp(e, "apc"))
                engine = PIPE_ASYNC;
            else if (!strcmp(e, "overlapped"))
                engine = PIPE_OVERLAPPED;
            else {
                fprintf(stderr, "server: unknown engine %s (async|overlapped)\n", e);
                return 2;
            }
        } else if (!strcmp(argv[i], "--pipe") && i + 1 < argc) {
            pipe_name = argv[++i];
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            s.limit = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--once")) {
            s.once = 1;
        } else {
            fprintf(stderr, "usage: %s [--engine async|overlapped] [--pipe NAME] [--count N] [--once]\n",
                    argv[0]);
            return 2;
        }
    }

    InitEasyLog("example-server");
    s.base.OnCreate = on_create;
    s.base.OnConnected = on_connected;
    s.base.OnSend = on_send;
    s.base.OnRecv = on_recv;
    s.base.OnDisconnected = on_disconnected;
    s.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(on_ctrl, TRUE);

    int rc = CreateInstance(engine, &s.pipe);
    if (rc != AIPC_OK) {
        fprintf(stderr, "server: CreateInstance: %s\n", aipc_strerror(rc));
        return 1;
    }
    wchar_t *wname = widen(pipe_name);
    printf("server: %s engine, pipe %s\n", engine == PIPE_ASYNC ? "APC" : "overlapped", pipe_name);
    fflush(stdout);
    if (!wname || !s.pipe->Create(s.pipe, wname, PIPE_SERVER, &s.base)) {
        fprintf(stderr, "server: Create failed\n");
        s.pipe->Release(s.pipe);
        return 1;
    }
    HANDLE waits[2] = {s.done, g_stop};
    WaitForMultipleObjects(2, waits, FALSE, INFINITE);
    s.pipe->Release(s.pipe);   /* no callback runs after this returns */
    printf("server: exit (%ld messages echoed)\n", (long)s.echoed);
    free(wname);
    return s.failed ? 1 : 0;
}
