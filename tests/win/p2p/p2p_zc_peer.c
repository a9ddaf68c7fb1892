/*
 * p2p_zc_peer.c - the other end of test_p2p_zc.c: a real process that receives with the
 * zero-copy buffer callback (aipc_pipe_set_recv_ref) and sends with aipc_pipe_alloc /
 * aipc_pipe_send_buf.
 *
 *   p2p_zc_peer --pipe NAME --mode echo|hold [--role server|client] [--engine async|overlapped]
 *               [--shm-off] [--once]
 *
 *   echo   every message goes back as a buffer of its own: allocated, the received bytes
 *          copied into it once, sent; the received buffer released after that
 *   hold   messages of more than 64 bytes are kept (never released: their shared slots stay
 *          charged to the sender until this process dies); smaller ones are echoed with
 *          aipc_pipe_send (so the suite knows everything before them has arrived)
 * --shm-off: AIPC_PIPE_OPT_SHM = AIPC_SHM_OFF. The suites' test hook AIPC_TEST_SHM_GRANT_SID
 * is removed from this process's environment at start.
 * The process ends: a client when the peer disconnects, a server with --once after its first
 * client leaves, at the latest after 60 s.
 * Exit codes: 0 ok, 2 usage, 4 create/connect failed, 5 timed out, 6 a send failed.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"

typedef struct zpeer {
    aipc_named_pipe *pipe;
    HANDLE done;
    volatile LONG code;
    int hold, once;
    PipeType role;
    aipc_buf *kept[1024];
    int nkept;
} zpeer;

static void fail(zpeer *z, LONG code, const char *why)
{
    fprintf(stderr, "p2p_zc_peer[%lu]: %s\n", (unsigned long)GetCurrentProcessId(), why);
    InterlockedCompareExchange(&z->code, code, 0);
    SetEvent(z->done);
}

static void on_create(aipc_named_pipe *pipe, void *user, bool ok)
{
    (void)pipe;
    if (!ok)
        fail(user, 4, "on_create(false)");
}

static void on_connected(aipc_named_pipe *pipe, void *user, bool ok)
{
    (void)pipe;
    if (!ok)
        fail(user, 4, "on_connected(false)");
}

static void on_disconnected(aipc_named_pipe *pipe, void *user)
{
    zpeer *z = user;
    (void)pipe;
    if (z->role == PIPE_CLIENT || z->once)
        SetEvent(z->done);
}

/* I/O thread. */
static void on_buf(aipc_named_pipe *pipe, void *user, aipc_buf *buf)
{
    zpeer *z = user;
    if (z->hold && buf->size > 64 && z->nkept < 1024) {
        z->kept[z->nkept++] = buf;             /* held until the process dies */
        return;
    }
    int rc;
    size_t size = buf->size;
    if (z->hold) {
        rc = aipc_pipe_send(pipe, buf->data, buf->size);
    } else {
        aipc_buf *out = NULL;
        rc = aipc_pipe_alloc(pipe, buf->size, &out);
        if (rc == 0) {
            memcpy(out->data, buf->data, buf->size);
            rc = aipc_pipe_send_buf(pipe, out, buf->size);
            if (rc != 0)
                aipc_buf_release(out);
        }
    }
    aipc_buf_release(buf);
    if (rc != 0) {
        char why[96];
        snprintf(why, sizeof why, "echo of %zu bytes failed: %s", size, aipc_strerror(rc));
        fail(z, 6, why);
    }
}

int main(int argc, char **argv)
{
    static zpeer z;
    const char *pipe = NULL, *mode = NULL;
    PipeImplType engine = PIPE_ASYNC;
    int shm_off = 0;
    z.role = PIPE_CLIENT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--shm-off"))
            shm_off = 1;
        else if (!strcmp(a, "--once"))
            z.once = 1;
        else if (!strcmp(a, "--pipe") && ++i)
            pipe = v;
        else if (!strcmp(a, "--mode") && ++i)
            mode = v;
        else if (!strcmp(a, "--role") && ++i)
            z.role = strcmp(v, "server") ? PIPE_CLIENT : PIPE_SERVER;
        else if (!strcmp(a, "--engine") && ++i)
            engine = strcmp(v, "overlapped") ? PIPE_ASYNC : PIPE_OVERLAPPED;
    }
    if (!pipe || !mode || (strcmp(mode, "echo") && strcmp(mode, "hold")))
        return 2;
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    z.hold = !strcmp(mode, "hold");
    z.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (aipc_pipe_new(engine, &z.pipe) != 0)
        return 4;
    aipc_pipe_set_option(z.pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, 10000);
    if (shm_off)
        aipc_pipe_set_option(z.pipe, AIPC_PIPE_OPT_SHM, AIPC_SHM_OFF);
    aipc_pipe_set_recv_ref(z.pipe, on_buf, &z);
    aipc_pipe_events ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    ev.user = &z;
    ev.on_create = on_create;
    ev.on_connected = on_connected;
    ev.on_disconnected = on_disconnected;
    wchar_t wname[200];
    aipc_test_wname(wname, 200, pipe);
    if (aipc_pipe_create_ex(z.pipe, wname, z.role, &ev) != 0)
        return 4;
    if (WaitForSingleObject(z.done, 60000) != WAIT_OBJECT_0)
        fail(&z, 5, "timed out");
    aipc_pipe_free(z.pipe);
    for (int i = 0; i < z.nkept; i++)
        aipc_buf_release(z.kept[i]);
    return (int)z.code;
}
