/*
 * pipe_api.c - exported point-to-point pipe API: CreateInstance / aipc_pipe_* and the
 * INamedPipe table of operations that calls them.
 *
 * Threads and ownership
 *   - aipc_pipe_new may be called on any thread; it starts the engine's I/O thread on first use.
 *   - Create never waits: a server creates its pipe instance on the calling thread (so Create
 *     returns the real result), then a start task is posted to the I/O thread.
 *   - Exit shuts the pipe's callback gate (waiting only for a callback of this pipe running on
 *     another thread, serving sent messages meanwhile: cbgate.c), rejects further Sends, and
 *     posts the close task; once it returns no callback of the pipe runs and the caller may
 *     free its delegate. On the I/O thread the close runs inline.
 *   - Send never blocks on I/O: it copies the message into the pending batch under the pipe's
 *     lock and posts one flush task only when no write is in flight or queued.
 *   - aipc_pipe_free = Exit + drop the user's reference; memory goes when the last reference
 *     (pending I/O, queued tasks, timers, running callbacks) is dropped, on whatever thread.
 */
#include "pipe_internal.h"
#include "win_error.h"
#include "win_listen.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference counting ---------------------------------------------------------------------- */

void aipc__pipe_ref(aipc__pipe *p)
{
    InterlockedIncrement(&p->refs);
}

/* Last reference: nothing is pending, so every buffer and handle can go. */
static void pipe_destroy(aipc__pipe *p)
{
    if (p->h != INVALID_HANDLE_VALUE) {
        p->eng->detach(p->loop, p->h, p->role == PIPE_SERVER ? &p->cn : NULL);
        CloseHandle(p->h);
    }
    if (p->disp)
        aipc__dispatcher_unref(p->disp);
    aipc__gate_free(&p->gate);
    aipc__sec_expect_free(&p->owners);
    free(p->server_sddl);
    aipc_decoder_free(&p->dec);
    aipc__batch_free(&p->q[0]);
    aipc__batch_free(&p->q[1]);
    aipc__conn_free(&p->io);
    aipc__shm_link_free(&p->shm);
    free(p->xbuf);
    free(p->name);
    free(p->name_utf8);
    free(p);
}

void aipc__pipe_unref(aipc__pipe *p)
{
    if (InterlockedDecrement(&p->refs) == 0)
        pipe_destroy(p);
}

/* ---- tasks for the I/O thread ----------------------------------------------------------------- */

int aipc__loop_gone(const aipc__loop *l)
{
    return l->thread && WaitForSingleObject(l->thread, 0) == WAIT_OBJECT_0;
}

/* Posts `op` (a task of the pipe) to the I/O thread with a reference. With `must` (Exit) a
 * failure is retried until it works: an Exit that silently did not happen would leave the pipe
 * open. Such failures only come from momentary resource exhaustion; at process exit (the I/O
 * thread is gone) nothing can run the task and it is dropped. Returns 1 if posted. */
static int post_task(aipc__pipe *p, aipc__op *op, int must)
{
    for (int logged = 0;; logged = 1) {
        if (aipc__loop_gone(p->loop))
            return 0;
        aipc__pipe_ref(p);
        if (p->eng->post(p->loop, op))
            return 1;
        DWORD e = GetLastError();
        aipc__pipe_unref(p);
        if (!logged)
            aipc_log(AIPC_LOG_ERROR, "pipe: cannot hand a task to the I/O thread (%lu)%s", e,
                     must ? "; retrying" : "");
        if (!must)
            return 0;
        Sleep(10);
    }
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
    const aipc__engine *eng = engine == PIPE_ASYNC       ? &aipc__engine_apc
                             : engine == PIPE_OVERLAPPED ? &aipc__engine_iocp
                                                         : NULL;
    if (!eng)
        return AIPC_EINVAL;
    aipc__loop *loop = eng->loop();
    if (!loop)
        return aipc__syserr(GetLastError());
    aipc__pipe *p = calloc(1, sizeof *p);
    if (!p)
        return AIPC_ENOMEM;
    static const aipc__conn_cfg io_cfg = {
        AIPC_PIPE_BUFSIZE, AIPC_PIPE_BUFSIZE, AIPC_WRITE_PIECE, AIPC_WRITE_PIECE, AIPC_DIRECT_MIN,
        AIPC_IO_CHUNK_MAX,
    };
    if (aipc__conn_init(&p->io, &aipc__pipe_io_handler, p, &io_cfg) != 0) {
        aipc__conn_free(&p->io);
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
    p->shm_mode = AIPC_SHM_AUTO;
    p->shm_threshold = AIPC_DEFAULT_SHM_THRESHOLD;
    p->state = AIPC_ST_NEW;
    p->h = INVALID_HANDLE_VALUE;
    p->cn.pipe = p->flush.pipe = p;
    p->resume.pipe = p->start_op.pipe = p->exit_op.pipe = p;
    p->flush.cb = aipc__pipe_on_flush;
    p->resume.cb = aipc__pipe_on_resume;
    p->start_op.cb = aipc__pipe_on_start;
    p->exit_op.cb = aipc__pipe_on_exit;
    InitializeSRWLock(&p->lock);
    aipc__pipe_shm_init(p);
    aipc__gate_init(&p->gate);
    *out = &p->pub;
    return 0;
}

int CreateInstance(PipeImplType engine, INamedPipe **pipe)
{
    return aipc_pipe_new(engine, pipe);
}

int aipc_pipe_set_option(aipc_named_pipe *pipe, int option, uint64_t value)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
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
    case AIPC_PIPE_OPT_MAX_DISPATCH:
        if (value == 0 || value > ((uint64_t)4 << 30))
            return AIPC_EINVAL;
        p->max_dispatch = value;
        return 0;
    case AIPC_PIPE_OPT_SHM:
        if (value != AIPC_SHM_AUTO && value != AIPC_SHM_OFF)
            return AIPC_EINVAL;
        p->shm_mode = (int)value;
        return 0;
    case AIPC_PIPE_OPT_SHM_THRESHOLD:
        if (value > AIPC_MAX_MESSAGE_LIMIT)
            return AIPC_EINVAL;
        p->shm_threshold = (uint32_t)value;
        return 0;
    default:
        return AIPC_EINVAL;
    }
}

void aipc__pipe_set_error(aipc__pipe *p, int code, DWORD win32)
{
    InterlockedExchange(&p->last_win32, (LONG)win32);
    InterlockedExchange(&p->last_err, code);
}

int aipc_pipe_get_error(aipc_named_pipe *pipe, uint32_t *win32)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return AIPC_EINVAL;
    if (win32)
        *win32 = (uint32_t)InterlockedCompareExchange(&p->last_win32, 0, 0);
    return (int)InterlockedCompareExchange(&p->last_err, 0, 0);
}

int aipc_pipe_get_stats(aipc_named_pipe *pipe, aipc_pipe_stats *out)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p || !out || out->size < offsetof(aipc_pipe_stats, shm_bytes))
        return AIPC_EINVAL;
    aipc_pipe_stats s;
    memset(&s, 0, sizeof s);
    s.size = out->size;
    s.shm = (uint32_t)InterlockedCompareExchange(&p->shm_on, 0, 0);
    aipc__shm_counts c;
    aipc__shm_link_counts(&p->shm, &c);
    s.shm_bytes = c.held;
    s.shm_segments = c.segs + c.peer_segs;
    s.shm_sent = c.sent;
    s.shm_received = c.recv;
    s.shm_inline_fallbacks = c.fallback;
    s.shm_map_failures = c.mapfail;
    AcquireSRWLockShared(&p->lock);
    s.buf_bytes = p->buf_bytes;
    s.buf_shm_bytes = p->buf_shm_bytes;
    ReleaseSRWLockShared(&p->lock);
    s.recv_buf_bytes = (uint64_t)InterlockedCompareExchange64(&p->recv_buf_bytes, 0, 0);
    s.shm_pinned_bytes = c.pinned;
    memcpy(out, &s, out->size < sizeof s ? out->size : sizeof s);  /* what the caller's has */
    return 0;
}

int aipc_pipe_set_security(aipc_named_pipe *pipe, const char *server_sddl,
                           const char *server_owners)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return AIPC_EINVAL;
    if (p->created)
        return AIPC_ESTATE;
    wchar_t *sddl = NULL;
    if (server_sddl) {
        int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, server_sddl, -1, NULL, 0);
        if (n <= 1)
            return AIPC_EINVAL;
        sddl = malloc((size_t)n * sizeof *sddl);
        if (!sddl)
            return AIPC_ENOMEM;
        MultiByteToWideChar(CP_UTF8, 0, server_sddl, -1, sddl, n);
        DWORD e = 0;
        PSECURITY_DESCRIPTOR sd = aipc__sec_descriptor(sddl, NULL, &e);
        if (!sd) {
            aipc_log(AIPC_LOG_ERROR, "pipe: invalid server SDDL \"%s\" (%lu)", server_sddl, e);
            free(sddl);
            return e == ERROR_NOT_ENOUGH_MEMORY ? AIPC_ENOMEM : AIPC_EINVAL;
        }
        LocalFree(sd);
    }
    if (server_owners) {
        aipc__sec_expect e;
        int rc = aipc__sec_expect_parse(server_owners, &e);
        if (rc != 0) {
            free(sddl);
            return rc;
        }
        aipc__sec_expect_free(&p->owners);
        p->owners = e;
    }
    if (sddl) {
        free(p->server_sddl);
        p->server_sddl = sddl;
    }
    return 0;
}

int aipc_pipe_set_dispatcher(aipc_named_pipe *pipe, aipc_dispatcher *d)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return AIPC_EINVAL;
    if (p->created)
        return AIPC_ESTATE;
    if (d)
        aipc__dispatcher_ref(d);
    if (p->disp)
        aipc__dispatcher_unref(p->disp);
    p->disp = d;
    return 0;
}

/* Server: the single pipe instance, created on the calling thread so Create can report it. */
/* Default descriptor of a point-to-point server: SYSTEM and the creating user only (no
 * Everyone/Anonymous read access as the default descriptor would give). */
#define P2P_DEFAULT_SDDL L"D:P(A;;FA;;;SY)(A;;FA;;;%U)"

static DWORD server_create(aipc__pipe *p)
{
    DWORD e = 0;
    PSECURITY_DESCRIPTOR sd = aipc__sec_descriptor(p->server_sddl, P2P_DEFAULT_SDDL, &e);
    if (!sd)
        return e;
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    aipc__listen_cfg lc = {p->name, &sa, 1, AIPC_PIPE_BUFSIZE, p->shm_mode == AIPC_SHM_AUTO};
    p->h = aipc__listen_instance(&lc, 1, &e);
    LocalFree(sd);
    if (e)
        return e;
    e = p->eng->attach(p->loop, p->h, p->role == PIPE_SERVER ? &p->cn : NULL);
    if (e) {
        p->eng->detach(p->loop, p->h, p->role == PIPE_SERVER ? &p->cn : NULL);
        CloseHandle(p->h);
        p->h = INVALID_HANDLE_VALUE;
    }
    return e;
}

/* Create and aipc_pipe_create_ex: starts the pipe with `ev` (already copied into p->ev's
 * shape; installed only once the pipe is ours). 0 or AIPC_E*. */
static int pipe_start(aipc__pipe *p, const wchar_t *pipe_name, PipeType type,
                      const aipc_pipe_events *ev, int want_sent)
{
    if (type != PIPE_SERVER && type != PIPE_CLIENT) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid argument");
        return AIPC_EINVAL;
    }
    wchar_t *full = NULL;
    int rc = aipc__wname_normalize(pipe_name, &full);
    if (rc != 0) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid pipe name");
        return rc;
    }
    if (InterlockedCompareExchange(&p->created, 1, 0) != 0) {
        free(full);
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: already created or exited");
        return AIPC_ESTATE;
    }
    p->name = full;
    p->name_utf8 = aipc__wname_utf8(full);
    p->role = type;
    p->ev = *ev;
    p->want_sent = want_sent;
    rc = 0;
    if (type == PIPE_SERVER) {
        p->create_err = server_create(p);   /* the start task reports OnCreate(false) */
        if (p->create_err) {
            rc = aipc__win_err(p->create_err);
            if (rc == AIPC_ESYS)
                aipc__syserr(p->create_err);
            aipc__pipe_set_error(p, rc, p->create_err);
        }
    } else if (!p->owners.any && p->owners.n == 0 &&
               aipc__sec_expect_parse(AIPC_SEC_P2P_OWNERS, &p->owners) != 0) {
        DWORD e = GetLastError();
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: cannot resolve this process's user");
        aipc__pipe_set_error(p, AIPC_ESYS, e);
        return aipc__syserr(e);
    }
    if (!post_task(p, &p->start_op, 0)) {
        DWORD e = GetLastError();
        if (rc == 0 && aipc__loop_gone(p->loop))
            rc = AIPC_ECLOSED;               /* process exit: the I/O thread is gone */
        else if (rc == 0) {
            rc = aipc__syserr(e);
            aipc__pipe_set_error(p, rc, e);
        }
    }
    return rc;
}

bool aipc_pipe_create(aipc_named_pipe *pipe, const wchar_t *pipe_name, PipeType type,
                      aipc_pipe_delegate *d)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid argument");
        return false;
    }
    aipc_pipe_events ev;
    int want_sent;
    aipc__pipe_events_classic(d, &ev, &want_sent);
    return pipe_start(p, pipe_name, type, &ev, want_sent) == 0;
}

int aipc_pipe_create_ex(aipc_named_pipe *pipe, const wchar_t *pipe_name, PipeType type,
                        const aipc_pipe_events *events)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    aipc_pipe_events ev;
    if (!p || aipc__pipe_events_copy(events, &ev) != 0) {
        aipc_log(AIPC_LOG_ERROR, "pipe: Create: invalid argument (events missing or their size "
                                 "below AIPC_PIPE_EVENTS_MIN_SIZE)");
        return AIPC_EINVAL;
    }
    return pipe_start(p, pipe_name, type, &ev, ev.on_send != NULL);
}

/* The send-queue limit in bytes (0 = unbounded). Never below one frame of the largest message,
 * and a message into an empty queue is always accepted (see aipc_pipe_send). */
uint64_t aipc__pipe_queue_limit(const aipc__pipe *p)
{
    if (p->max_queue != AIPC_QUEUE_AUTO)
        return p->max_queue;
    uint64_t four = 4u * ((uint64_t)p->max_msg + AIPC_HDR_SIZE);
    return four > AIPC_DEFAULT_MAX_QUEUE ? four : AIPC_DEFAULT_MAX_QUEUE;
}

/* Under the lock: a message at or above the threshold into a slot (shm_link.c), its descriptor
 * {"shm":[seg,off,len]} queued in the pending batch. 1 done, 0 (go inline) or AIPC_ENOMEM. */
static int shm_send(aipc__pipe *p, const void *data, uint32_t size)
{
    aipc_shm_desc d;
    int rc = aipc__shm_link_put(&p->shm, data, size, &d);
    if (rc != 1)
        return rc;
    if (aipc__pipe_append_desc_locked(p, &d)) {
        aipc__shm_link_unput(&p->shm, &d);
        return AIPC_ENOMEM;
    }
    return 1;
}

int aipc__pipe_append_desc_locked(aipc__pipe *p, const aipc_shm_desc *d)
{
    char meta[64];
    meta[0] = '{';
    size_t ml = aipc_shm_desc_put(meta + 1, sizeof meta - 2, d);
    meta[1 + ml] = '}';
    return aipc__batch_append_meta(&p->q[p->qi], meta, (uint32_t)ml + 2, NULL, 0,
                                   AIPC__BATCH_CTL);
}

int aipc_pipe_send(aipc_named_pipe *pipe, const void *data, size_t size)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p || (!data && size))
        return AIPC_EINVAL;
    if (size > p->max_msg)
        return AIPC_ETOOBIG;
    AcquireSRWLockExclusive(&p->lock);
    if (p->send_closed) {
        ReleaseSRWLockExclusive(&p->lock);
        return AIPC_ECLOSED;
    }
    uint64_t queued = aipc__pipe_queued_locked(p);
    uint64_t limit = aipc__pipe_queue_limit(p);
    if (limit && queued > 0 && queued + AIPC_HDR_SIZE + size > limit) {
        ReleaseSRWLockExclusive(&p->lock);
        return AIPC_EQUEUEFULL;
    }
    int rc = 0;
    if (p->shm_on && p->shm_threshold && size >= p->shm_threshold) {
        rc = shm_send(p, data, (uint32_t)size);   /* 1: its descriptor is queued */
        if (rc == 0)
            InterlockedIncrement64(&p->shm.st_fallback);
    }
    if (rc == 1)
        rc = 0;
    else if (rc == 0)
        rc = aipc__batch_append(&p->q[p->qi], data, (uint32_t)size);
    int poke = rc == 0 && aipc__pipe_take_token_locked(p);
    ReleaseSRWLockExclusive(&p->lock);
    if (poke)
        aipc__pipe_kick(p);
    return rc;
}

uint64_t aipc__pipe_queued_locked(aipc__pipe *p)
{
    /* Bytes accepted and not yet written: the collecting batch plus the one being written
     * (with a dispatcher, plus written ones whose OnSend is still queued for it), plus shared
     * messages the peer has not released, plus aipc_pipe_alloc buffers not yet sent. */
    return (uint64_t)p->q[p->qi].len + p->inflight + p->shm.held + p->lent +
           (uint64_t)InterlockedCompareExchange64(&p->unreported, 0, 0);
}

int aipc__pipe_take_token_locked(aipc__pipe *p)
{
    if (!p->sendable || p->wbusy)
        return 0;
    p->wbusy = 1;               /* this caller now holds the writer token */
    return 1;
}

void aipc__pipe_kick(aipc__pipe *p)
{
    if (GetCurrentThreadId() == p->loop->tid && p->in_read) {
        p->flush_due = 1;       /* inside this pipe's OnRecv: read_done writes after the callback */
        return;
    }
    aipc__pipe_ref(p);
    if (!p->eng->post(p->loop, &p->flush)) {
        aipc__pipe_unref(p);
        AcquireSRWLockExclusive(&p->lock);
        p->wbusy = 0;
        ReleaseSRWLockExclusive(&p->lock);
    }
}

void aipc_pipe_exit(aipc_named_pipe *pipe)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return;
    InterlockedCompareExchange(&p->created, 2, 0);   /* a later Create fails */
    if (aipc__loop_gone(p->loop)) {
        /* Process exit (a static destructor in a DLL): every other thread is gone, perhaps
         * inside one of our locks. Nothing can run a callback any more; leave it all. */
        InterlockedExchange(&p->gate.closed, 1);
        return;
    }
    aipc__pipe_ref(p);                                /* a served message may Release it */
    aipc__pipe_close_send_side(p);
    aipc__gate_close(&p->gate);                       /* no callback from now on */
    if (!InterlockedExchange(&p->exiting, 1)) {
        if (GetCurrentThreadId() == p->loop->tid) {
            aipc__pipe_ref(p);
            aipc__pipe_on_exit(&p->exit_op, 0, 0);    /* drops that reference */
        } else {
            post_task(p, &p->exit_op, 1);
        }
    }
    aipc__pipe_unref(p);
}

void aipc_pipe_free(aipc_named_pipe *pipe)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return;
    aipc_pipe_exit(pipe);
    aipc__pipe_unref(p);
}
