/*
 * pipe_api.c - exported point-to-point pipe API: CreateInstance / aipc_pipe_* and the
 * INamedPipe table of operations that calls them.
 *
 * Threads and ownership
 *   - aipc_pipe_new may be called on any thread; it starts the engine's I/O thread on first use.
 *   - Create and Exit are marshalled to the I/O thread and wait for it (unless already on it),
 *     so Create returns the real result and, once Exit returns, no callback of the pipe runs
 *     and the caller may free its delegate.
 *   - Send never blocks on I/O: it copies the message into the pending batch under the pipe's
 *     lock and posts one flush task only when no write is in flight or queued.
 *   - aipc_pipe_free = Exit + drop the user's reference; memory goes when the last reference
 *     (pending I/O, queued tasks, timers, running callbacks) is dropped, on whatever thread.
 */
#include "pipe_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference counting ---------------------------------------------------------------------- */

void aipc_pipe_ref(aipc_pipe *p)
{
    InterlockedIncrement(&p->refs);
}

/* Last reference: nothing is pending, so every buffer and handle can go. */
static void pipe_destroy(aipc_pipe *p)
{
    if (p->h != INVALID_HANDLE_VALUE) {
        p->eng->detach(p);
        CloseHandle(p->h);
    }
    aipc_decoder_free(&p->dec);
    aipc_batch_free(&p->q[0]);
    aipc_batch_free(&p->q[1]);
    free(p->rbuf);
    free(p->name);
    free(p->name_utf8);
    free(p);
}

void aipc_pipe_unref(aipc_pipe *p)
{
    if (InterlockedDecrement(&p->refs) == 0)
        pipe_destroy(p);
}

/* ---- marshalling ----------------------------------------------------------------------------- */

typedef struct sync_call {
    aipc_op op;                  /* first: posted to the I/O thread */
    int (*fn)(aipc_pipe *p);
    HANDLE done;
    int result;
} sync_call;

/* I/O thread: runs the call and wakes the waiting caller (whose stack holds `c`). */
static void sync_call_run(aipc_op *op, DWORD err, DWORD bytes)
{
    sync_call *c = CONTAINING_RECORD(op, sync_call, op);
    aipc_pipe *p = op->pipe;
    (void)err;
    (void)bytes;
    c->result = c->fn(p);
    SetEvent(c->done);           /* `c` may be gone after this */
    aipc_pipe_unref(p);
}

/* Runs fn(p) on the pipe's I/O thread and returns its result; `fail` if it cannot be posted.
 * With `must` (Exit) a failure to create the event or to post is retried until it works: an
 * Exit that silently did not happen would let callbacks run after Release returned, on a
 * delegate the caller has freed. Such failures only come from momentary resource exhaustion. */
static int run_on_loop(aipc_pipe *p, int (*fn)(aipc_pipe *p), int fail, int must)
{
    if (GetCurrentThreadId() == p->loop->tid) {
        aipc_pipe_ref(p);
        int r = fn(p);
        aipc_pipe_unref(p);
        return r;
    }
    sync_call c;
    memset(&c, 0, sizeof c);
    c.op.pipe = p;
    c.op.cb = sync_call_run;
    c.fn = fn;
    c.result = fail;
    for (int logged = 0;; logged = 1) {
        c.done = CreateEventW(NULL, TRUE, FALSE, NULL);
        DWORD e = GetLastError();
        if (c.done) {
            aipc_pipe_ref(p);
            if (p->eng->post(p->loop, &c.op))
                break;
            e = GetLastError();
            aipc_pipe_unref(p);
            CloseHandle(c.done);
            c.done = NULL;
        }
        if (!logged)
            aipc_log(AIPC_LOG_ERROR, "pipe: cannot hand a call to the I/O thread (%lu)%s", e,
                     must ? "; retrying" : "");
        if (!must)
            return fail;
        Sleep(10);
    }
    WaitForSingleObject(c.done, INFINITE);
    CloseHandle(c.done);
    return c.result;
}

static int exit_fn(aipc_pipe *p)
{
    aipc_pipe_close_io(p);
    return 0;
}

/* ---- table of operations --------------------------------------------------------------------- */

static bool vt_create(aipc_named_pipe *self, const wchar_t *name, PipeType type,
                      aipc_pipe_delegate *d)
{
    return aipc_pipe_create(self, name, type, d);
}

static void vt_exit(aipc_named_pipe *self)
{
    aipc_pipe_exit(self);
}

static void vt_send(aipc_named_pipe *self, const char *msg)
{
    if (!msg) {
        aipc_log(AIPC_LOG_WARN, "pipe: Send(NULL) ignored");
        return;
    }
    int rc = aipc_pipe_send(self, msg, strlen(msg));
    if (rc != 0)
        aipc_log(AIPC_LOG_WARN, "pipe: Send failed: %s", aipc_strerror(rc));
}

static int vt_send_data(aipc_named_pipe *self, const void *data, size_t size)
{
    return aipc_pipe_send(self, data, size);
}

static void vt_release(aipc_named_pipe *self)
{
    aipc_pipe_free(self);
}

/* ---- exported functions ---------------------------------------------------------------------- */

int aipc_pipe_new(PipeImplType engine, aipc_named_pipe **out)
{
    if (!out)
        return AIPC_EINVAL;
    *out = NULL;
    const aipc_engine *eng = engine == PIPE_ASYNC       ? &aipc_engine_apc
                             : engine == PIPE_OVERLAPPED ? &aipc_engine_iocp
                                                         : NULL;
    if (!eng)
        return AIPC_EINVAL;
    aipc_loop *loop = eng->loop();
    if (!loop)
        return AIPC_ESYS;
    aipc_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return AIPC_ENOMEM;
    p->rbuf = malloc(AIPC_PIPE_BUFSIZE + 1);
    if (!p->rbuf) {
        free(p);
        return AIPC_ENOMEM;
    }
    p->pub.Create = vt_create;
    p->pub.Exit = vt_exit;
    p->pub.Send = vt_send;
    p->pub.SendData = vt_send_data;
    p->pub.Release = vt_release;
    p->eng = eng;
    p->loop = loop;
    p->refs = 1;
    p->max_msg = AIPC_DEFAULT_MAX_PAYLOAD;
    p->connect_timeout_ms = AIPC_DEFAULT_CONNECT_TIMEOUT_MS;
    p->max_queue = AIPC_QUEUE_AUTO;
    p->state = AIPC_ST_NEW;
    p->h = INVALID_HANDLE_VALUE;
    p->rd.pipe = p->wr.pipe = p->cn.pipe = p->flush.pipe = p;
    p->flush.cb = aipc_pipe_on_flush;
    InitializeSRWLock(&p->lock);
    *out = &p->pub;
    return 0;
}

int CreateInstance(PipeImplType engine, INamedPipe **pipe)
{
    return aipc_pipe_new(engine, pipe);
}

int aipc_pipe_set_option(aipc_named_pipe *pipe, int option, uint64_t value)
{
    aipc_pipe *p = (aipc_pipe *)pipe;
    if (!p)
        return AIPC_EINVAL;
    if (p->created)
        return AIPC_ESTATE;
    switch (option) {
    case AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS:
        if (value >= INFINITE)
            return AIPC_EINVAL;
        p->connect_timeout_ms = (uint32_t)value;
        return 0;
    case AIPC_PIPE_OPT_MAX_MESSAGE:
        if (value == 0 || value > AIPC_MAX_MESSAGE_LIMIT)
            return AIPC_EINVAL;
        p->max_msg = (uint32_t)value;
        return 0;
    case AIPC_PIPE_OPT_MAX_QUEUE:
        if (value == AIPC_QUEUE_AUTO)
            return AIPC_EINVAL;
        p->max_queue = value;
        return 0;
    default:
        return AIPC_EINVAL;
    }
}

bool aipc_pipe_create(aipc_named_pipe *pipe, const wchar_t *pipe_name, PipeType type,
                      aipc_pipe_delegate *d)
{
    aipc_pipe *p = (aipc_pipe *)pipe;
    if (!p || (type != PIPE_SERVER && type != PIPE_CLIENT)) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid argument");
        return false;
    }
    wchar_t *full = NULL;
    if (aipc_wname_normalize(pipe_name, &full) != 0) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid pipe name");
        return false;
    }
    if (InterlockedCompareExchange(&p->created, 1, 0) != 0) {
        free(full);
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: already created or exited");
        return false;
    }
    p->name = full;
    p->name_utf8 = aipc_wname_utf8(full);
    p->role = type;
    p->d = d;
    return run_on_loop(p, aipc_pipe_start, 0, 0) != 0;
}

/* The send-queue limit in bytes (0 = unbounded). Never below one frame of the largest message,
 * and a message into an empty queue is always accepted (see aipc_pipe_send). */
static uint64_t queue_limit(const aipc_pipe *p)
{
    if (p->max_queue != AIPC_QUEUE_AUTO)
        return p->max_queue;
    uint64_t four = 4u * ((uint64_t)p->max_msg + AIPC_HDR_SIZE);
    return four > AIPC_DEFAULT_MAX_QUEUE ? four : AIPC_DEFAULT_MAX_QUEUE;
}

int aipc_pipe_send(aipc_named_pipe *pipe, const void *data, size_t size)
{
    aipc_pipe *p = (aipc_pipe *)pipe;
    if (!p || (!data && size))
        return AIPC_EINVAL;
    if (size > p->max_msg)
        return AIPC_ETOOBIG;
    AcquireSRWLockExclusive(&p->lock);
    if (p->send_closed) {
        ReleaseSRWLockExclusive(&p->lock);
        return AIPC_ECLOSED;
    }
    /* Bytes accepted and not yet written: the collecting batch plus the one being written. */
    uint64_t queued = (uint64_t)p->q[p->qi].len + p->inflight;
    uint64_t limit = queue_limit(p);
    if (limit && queued > 0 && queued + AIPC_HDR_SIZE + size > limit) {
        ReleaseSRWLockExclusive(&p->lock);
        return AIPC_EQUEUEFULL;
    }
    int rc = aipc_batch_append(&p->q[p->qi], data, (uint32_t)size);
    int poke = rc == 0 && p->sendable && !p->wbusy;
    if (poke)
        p->wbusy = 1;           /* this caller now holds the writer token */
    ReleaseSRWLockExclusive(&p->lock);
    if (poke && GetCurrentThreadId() == p->loop->tid && p->in_read) {
        p->flush_due = 1;       /* inside this pipe's OnRecv: read_done writes after the callback */
    } else if (poke) {
        aipc_pipe_ref(p);
        if (!p->eng->post(p->loop, &p->flush)) {
            aipc_pipe_unref(p);
            AcquireSRWLockExclusive(&p->lock);
            p->wbusy = 0;
            ReleaseSRWLockExclusive(&p->lock);
        }
    }
    return rc;
}

void aipc_pipe_exit(aipc_named_pipe *pipe)
{
    aipc_pipe *p = (aipc_pipe *)pipe;
    if (!p)
        return;
    InterlockedCompareExchange(&p->created, 2, 0);   /* a later Create fails */
    run_on_loop(p, exit_fn, 0, 1);
}

void aipc_pipe_free(aipc_named_pipe *pipe)
{
    aipc_pipe *p = (aipc_pipe *)pipe;
    if (!p)
        return;
    aipc_pipe_exit(pipe);
    aipc_pipe_unref(p);
}
