/*
 * client.c - console port of the classic AsyncIPCClient sample (C API).
 *
 * Connects to a server, sends N text messages, prints what it sends and receives, waits until
 * every message came back as an echo (checked byte for byte) and exits 0.
 *   aipc-example-client [--engine async|overlapped] [--pipe NAME] [--count N] [--timeout MS]
 * --timeout: how long to wait for the server to appear (default 20000 ms) and, separately,
 * for all echoes to arrive.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

typedef struct client {
    IPipeDelegate base;        /* first member: the SDK passes &base back to us */
    HANDLE connected;          /* set by OnConnected (either outcome) */
    HANDLE all_echoed;         /* set when every echo arrived, or on disconnect */
    volatile LONG connect_ok;
    volatile LONG disconnected;
    long count;
    long received;             /* I/O thread only until all_echoed is set */
    long mismatches;
} client;

/* The i-th message the client sends. */
static int make_msg(char *buf, size_t cap, long i)
{
    return snprintf(buf, cap, "message %ld of pid %lu: hello from the AsyncIPC C client", i,
                    (unsigned long)GetCurrentProcessId());
}

/* I/O thread: the connect attempt started (or could not). */
static void on_create(IPipeDelegate *self, bool ok)
{
    client *c = (client *)self;
    printf("client: connecting: %s\n", ok ? "yes" : "FAILED");
    fflush(stdout);
    if (!ok)
        SetEvent(c->connected);
}

/* I/O thread: connected, or gave up after the connect timeout. */
static void on_connected(IPipeDelegate *self, bool ok)
{
    client *c = (client *)self;
    printf("client: connected: %s\n", ok ? "yes" : "no (server not found)");
    fflush(stdout);
    InterlockedExchange(&c->connect_ok, ok ? 1 : 0);
    SetEvent(c->connected);
}

/* I/O thread: an echo arrived; compare it with what we sent. */
static void on_recv(IPipeDelegate *self, void *data, int size)
{
    client *c = (client *)self;
    char want[256];
    int n = make_msg(want, sizeof want, c->received);
    int same = (n == size && memcmp(want, data, (size_t)size) == 0);
    printf("client: recv %d bytes: %.*s%s\n", size, size > 200 ? 200 : size, (const char *)data,
           same ? "" : "   <-- MISMATCH");
    fflush(stdout);
    if (!same)
        c->mismatches++;
    if (++c->received == c->count)
        SetEvent(c->all_echoed);
}

/* I/O thread: the server went away. */
static void on_disconnected(IPipeDelegate *self)
{
    client *c = (client *)self;
    printf("client: disconnected\n");
    fflush(stdout);
    InterlockedExchange(&c->disconnected, 1);
    SetEvent(c->all_echoed);
}

/* "NAME" as a wide string for Create. */
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
    unsigned long timeout = 20000;
    client c;
    memset(&c, 0, sizeof c);
    c.count = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
            const char *e = argv[++i];
            if (!strcmp(e, "async") || !strcmp(e, "apc"))
                engine = PIPE_ASYNC;
            else if (!strcmp(e, "overlapped"))
                engine = PIPE_OVERLAPPED;
            else {
                fprintf(stderr, "client: unknown engine %s (async|overlapped)\n", e);
                return 2;
            }
        } else if (!strcmp(argv[i], "--pipe") && i + 1 < argc) {
            pipe_name = argv[++i];
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            c.count = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--engine async|overlapped] [--pipe NAME] [--count N] [--timeout MS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (c.count < 0)
        c.count = 0;

    InitEasyLog("example-client");
    c.base.OnCreate = on_create;
    c.base.OnConnected = on_connected;
    c.base.OnRecv = on_recv;
    c.base.OnDisconnected = on_disconnected;
    c.connected = CreateEventW(NULL, TRUE, FALSE, NULL);
    c.all_echoed = CreateEventW(NULL, TRUE, c.count == 0, NULL);

    INamedPipe *pipe = NULL;
    int rc = CreateInstance(engine, &pipe);
    if (rc != AIPC_OK) {
        fprintf(stderr, "client: CreateInstance: %s\n", aipc_strerror(rc));
        return 1;
    }
    aipc_pipe_set_option(pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, timeout);
    wchar_t *wname = widen(pipe_name);
    printf("client: %s engine, pipe %s, %ld messages\n", engine == PIPE_ASYNC ? "APC" : "overlapped",
           pipe_name, c.count);
    fflush(stdout);
    int status = 1;
    if (!wname || !pipe->Create(pipe, wname, PIPE_CLIENT, &c.base)) {
        fprintf(stderr, "client: Create failed\n");
    } else if (WaitForSingleObject(c.connected, timeout + 10000) != WAIT_OBJECT_0 || !c.connect_ok) {
        fprintf(stderr, "client: could not connect to %s\n", pipe_name);
    } else {
        for (long i = 0; i < c.count; i++) {
            char msg[256];
            make_msg(msg, sizeof msg, i);
            printf("client: send %s\n", msg);
            fflush(stdout);
            pipe->Send(pipe, msg);
        }
        if (WaitForSingleObject(c.all_echoed, timeout) != WAIT_OBJECT_0)
            fprintf(stderr, "client: timed out waiting for the echoes\n");
        else if (c.received != c.count || c.mismatches)
            fprintf(stderr, "client: %ld of %ld echoes, %ld wrong%s\n", c.received, c.count,
                    c.mismatches, c.disconnected ? " (server left)" : "");
        else
            status = 0;
    }
    pipe->Release(pipe);   /* closes the connection; no callback runs after this returns */
    printf("client: exit %d (%ld/%ld echoes)\n", status, c.received, c.count);
    free(wname);
    return status;
}
