/*
 * test_p2p_bounds_lifetime.c - point-to-point SDK bounds and lifetimes: the send-queue bound,
 * ConnectNamedPipe's outcomes at the first listen, more than 64 PIPE_ASYNC listeners (the
 * thread-pool wait path), Exit/Release inside every kind of callback, a busy server, 32 MiB
 * messages, and Send racing Exit.
 *
 * The far end is a plain Win32 pipe client in this process (raw_*: overlapped handle, every
 * wait bounded) where a test needs a peer that does not read, or exact control over when a
 * client comes and goes; otherwise two SDK pipes of different engines.
 */
#include "p2p_common.h"

/* ---- a recording delegate with an optional action inside one kind of callback --------------- */

typedef struct rv rv;
struct rv {
    aipc_pipe_delegate d;         /* first member */
    aipc_named_pipe *pipe;
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;
    long long created, create_ok, connected, connect_failed, disconnected, recv, sent;
    long long last_recv_size, last_sent_size;
    char act_on;                  /* 'C','O','S','R','D': act in that callback (first time) */
    int act_release;              /* the action: 1 Release, 0 Exit */
    long long acted;              /* the action returned (set inside the callback) */
    volatile LONG gone;           /* any callback after this is late */
    volatile LONG late;
    void (*on_create_hook)(rv *r);
    HANDLE raw;                   /* used by on_create_hook */
    int raw_keep;
    wchar_t full[300];
    uint8_t *keep_data;           /* copy of the last message when keep */
    int keep;
};

static void rv_bump(rv *r, long long *field)
{
    EnterCriticalSection(&r->lock);
    (*field)++;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

static int rv_wait(rv *r, long long *field, long long target)
{
    uint64_t deadline = aipc_test_now_ms() + WAIT_MS;
    EnterCriticalSection(&r->lock);
    while (*field < target) {
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            break;
        SleepConditionVariableCS(&r->cv, &r->lock, (DWORD)(deadline - now));
    }
    int ok = *field >= target;
    LeaveCriticalSection(&r->lock);
    return ok;
}

static long long rv_get(rv *r, long long *field)
{
    EnterCriticalSection(&r->lock);
    long long v = *field;
    LeaveCriticalSection(&r->lock);
    return v;
}

/* I/O thread: late-callback check, then the configured action for this callback kind. */
static void rv_enter(rv *r)
{
    if (r->gone)
        InterlockedIncrement(&r->late);
}

static void rv_act(rv *r, char kind)
{
    if (r->act_on != kind || r->acted || !r->pipe)
        return;
    if (r->act_release) {
        aipc_pipe_free(r->pipe);
        r->pipe = NULL;
    } else {
        aipc_pipe_exit(r->pipe);
    }
    InterlockedExchange(&r->gone, 1);
    rv_bump(r, &r->acted);
}

static void rv_on_create(aipc_pipe_delegate *d, bool ok)
{
    rv *r = (rv *)d;
    rv_enter(r);
    if (ok)
        rv_bump(r, &r->create_ok);
    if (r->on_create_hook)
        r->on_create_hook(r);
    rv_bump(r, &r->created);
    rv_act(r, 'C');
}

static void rv_on_connected(aipc_pipe_delegate *d, bool ok)
{
    rv *r = (rv *)d;
    rv_enter(r);
    rv_bump(r, ok ? &r->connected : &r->connect_failed);
    rv_act(r, 'O');
}

static void rv_on_send(aipc_pipe_delegate *d, int size)
{
    rv *r = (rv *)d;
    rv_enter(r);
    EnterCriticalSection(&r->lock);
    r->last_sent_size = size;
    LeaveCriticalSection(&r->lock);
    rv_bump(r, &r->sent);
    rv_act(r, 'S');
}

static void rv_on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    rv *r = (rv *)d;
    rv_enter(r);
    EnterCriticalSection(&r->lock);
    r->last_recv_size = size;
    if (r->keep && size >= 0) {
        free(r->keep_data);
        r->keep_data = malloc((size_t)size + 1);
        if (r->keep_data)
            memcpy(r->keep_data, data, (size_t)size + 1);
    }
    LeaveCriticalSection(&r->lock);
    rv_bump(r, &r->recv);
    rv_act(r, 'R');
}

static void rv_on_disconnected(aipc_pipe_delegate *d)
{
    rv *r = (rv *)d;
    rv_enter(r);
    rv_bump(r, &r->disconnected);
    rv_act(r, 'D');
}

static rv *rv_new(void)
{
    rv *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->d.OnCreate = rv_on_create;
    r->d.OnConnected = rv_on_connected;
    r->d.OnSend = rv_on_send;
    r->d.OnRecv = rv_on_recv;
    r->d.OnDisconnected = rv_on_disconnected;
    r->raw = INVALID_HANDLE_VALUE;
    InitializeCriticalSection(&r->lock);
    InitializeConditionVariable(&r->cv);
    return r;
}

static void do_free_pipe(void *arg)
{
    aipc_pipe_free((aipc_named_pipe *)arg);
}

static void do_exit_pipe(void *arg)
{
    aipc_pipe_exit((aipc_named_pipe *)arg);
}

/* Releases the pipe (bounded: a deadlock fails the test) and frees the delegate. */
static void rv_free(rv *r)
{
    if (r->pipe) {
        ck_assert_msg(aipc_test_call_bounded(do_free_pipe, r->pipe, WAIT_MS),
                      "Release did not return within %u ms", WAIT_MS);
        r->pipe = NULL;
        InterlockedExchange(&r->gone, 1);
    }
    ck_assert_msg(r->late == 0, "%ld callbacks after Exit/Release returned", (long)r->late);
    if (r->raw != INVALID_HANDLE_VALUE)
        CloseHandle(r->raw);
    free(r->keep_data);
    DeleteCriticalSection(&r->lock);
    free(r);
}

/* aipc_pipe_new + options + Create. */
static void rv_start(rv *r, PipeImplType engine, PipeType role, const char *name,
                     uint32_t connect_timeout_ms, uint64_t max_message, int64_t max_queue)
{
    ck_assert_int_eq(aipc_pipe_new(engine, &r->pipe), AIPC_OK);
    if (connect_timeout_ms)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS,
                                              connect_timeout_ms), AIPC_OK);
    if (max_message)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_MESSAGE, max_message),
                         AIPC_OK);
    if (max_queue >= 0)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_QUEUE,
                                              (uint64_t)max_queue), AIPC_OK);
    wchar_t w[256];
    aipc_test_wname(w, 256, name);
    _snwprintf(r->full, 300, L"\\\\.\\pipe\\%ls", w);
    ck_assert_msg(aipc_pipe_create(r->pipe, w, role, &r->d), "Create failed");
}

/* ---- raw Win32 client ------------------------------------------------------------------------ */

/* Opens `full` as an overlapped client; waits (bounded) while the pipe is busy or absent. */
static HANDLE raw_open(const wchar_t *full)
{
    uint64_t deadline = aipc_test_now_ms() + WAIT_MS;
    for (;;) {
        HANDLE h = CreateFileW(full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        DWORD e = GetLastError();
        if (aipc_test_now_ms() >= deadline || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND))
            return INVALID_HANDLE_VALUE;
        WaitNamedPipeW(full, 200);   /* bounded wait for a free instance */
    }
}

/* One overlapped read/write, bounded. Returns bytes moved, 0 at end of pipe, -1 error/timeout. */
static long raw_io(HANDLE h, int write, void *buf, DWORD len)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    long r;
    BOOL ok = write ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA) ? 0 : -1;
    } else if (WaitForSingleObject(ov.hEvent, WAIT_MS) != WAIT_OBJECT_0) {
        CancelIoEx(h, &ov);
        GetOverlappedResult(h, &ov, &n, TRUE);
        r = -1;
    } else if (GetOverlappedResult(h, &ov, &n, FALSE)) {
        r = (long)n;
    } else {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED) ? 0 : -1;
    }
    CloseHandle(ov.hEvent);
    return r;
}

/* Reads exactly n bytes. 1 on success. */
static int raw_read_exact(HANDLE h, void *buf, size_t n)
{
    uint8_t *b = buf;
    while (n > 0) {
        long r = raw_io(h, 0, b, n > 65536 ? 65536 : (DWORD)n);
        if (r <= 0)
            return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

/* Reads one frame into a new buffer (caller frees); returns the payload size or -1. */
static long long raw_read_frame(HANDLE h, uint8_t **out)
{
    uint8_t hdr[8];
    *out = NULL;
    if (!raw_read_exact(h, hdr, 8))
        return -1;
    uint32_t meta = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint32_t len = hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24;
    if (meta != 0)
        return -1;
    *out = malloc((size_t)len + 1);
    if (!*out || !raw_read_exact(h, *out, len))
        return -1;
    return len;
}

static int raw_send_frame(HANDLE h, const void *data, uint32_t len)
{
    uint8_t *f = malloc(8 + (size_t)len);
    memset(f, 0, 8);
    f[4] = (uint8_t)len;
    f[5] = (uint8_t)(len >> 8);
    f[6] = (uint8_t)(len >> 16);
    f[7] = (uint8_t)(len >> 24);
    memcpy(f + 8, data, len);
    long r = raw_io(h, 1, f, 8 + len);
    free(f);
    return r == (long)(8 + len);
}

/* 1 when the pipe reports end-of-pipe within the wait bound (the SDK closed its end). */
static int raw_sees_close(HANDLE h)
{
    uint8_t buf[4096];
    for (;;) {
        long r = raw_io(h, 0, buf, sizeof buf);
        if (r == 0)
            return 1;
        if (r < 0)
            return 0;
    }
}

/* ---- send-queue bound --------------------------------------------------------------------- */

/* A reader that does not read: Send stops with AIPC_EQUEUEFULL near the configured bound
 * (1 MiB), nothing accepted is lost, and once the reader drains the pipe Send works again.
 * _i: engine. */
START_TEST(queue_bound_option)
{
    enum { MSG = 65536, QUEUE = 1 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "qbound");
    rv *r = rv_new();
    rv_start(r, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, QUEUE);
    ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_QUEUE, 0), AIPC_ESTATE);
    ck_assert(rv_wait(r, &r->created, 1));
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(r, &r->connected, 1));

    uint8_t *m = malloc(MSG);
    int accepted = 0, rc = 0;
    while (accepted < 200) {
        aipc_pattern_fill(m, MSG, (uint32_t)accepted);
        rc = aipc_pipe_send(r->pipe, m, MSG);
        if (rc != AIPC_OK)
            break;
        accepted++;
    }
    ck_assert_msg(rc == AIPC_EQUEUEFULL, "Send never refused (%d accepted, rc %d)", accepted, rc);
    /* 1 MiB queued plus what the kernel pipe (256 KiB) and one batch in flight absorbed. */
    ck_assert_msg(accepted >= QUEUE / (MSG + 8) && accepted <= 40, "accepted %d", accepted);

    for (int i = 0; i < accepted; i++) {
        uint8_t *f;
        long long n = raw_read_frame(h, &f);
        ck_assert_msg(n == MSG, "frame %d: %lld bytes", i, n);
        ck_assert_msg(aipc_pattern_check(f, MSG, (uint32_t)i) < 0, "frame %d damaged", i);
        free(f);
    }
    ck_assert(rv_wait(r, &r->sent, accepted));
    ck_assert_int_eq(aipc_pipe_send(r->pipe, m, MSG), AIPC_OK);   /* room again */
    uint8_t *f;
    ck_assert_int_eq(raw_read_frame(h, &f), MSG);
    free(f);
    free(m);
    CloseHandle(h);
    rv_free(r);
}
END_TEST

/* Without the option the queue is still bounded (64 MiB by default): a sender of 1 MiB
 * messages to a reader that never reads is refused after about 64 of them, and Release with
 * the big write pending returns. _i: engine. */
START_TEST(queue_bound_default)
{
    enum { MSG = 1 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "qdefault");
    rv *r = rv_new();
    rv_start(r, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(r, &r->created, 1));
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(r, &r->connected, 1));
    uint8_t *m = calloc(1, MSG);
    int accepted = 0, rc = 0;
    while (accepted < 160) {
        rc = aipc_pipe_send(r->pipe, m, MSG);
        if (rc != AIPC_OK)
            break;
        accepted++;
    }
    free(m);
    ck_assert_msg(rc == AIPC_EQUEUEFULL, "Send never refused (%d accepted, rc %d)", accepted, rc);
    ck_assert_msg(accepted >= 63 && accepted <= 70, "accepted %d", accepted);
    rv_free(r);
    ck_assert(raw_sees_close(h));
    CloseHandle(h);
}
END_TEST

/* ---- ConnectNamedPipe outcomes ------------------------------------------------------------ */

/* I/O thread, inside OnCreate (before the first ConnectNamedPipe): a client opens the new
 * instance, and either stays (ERROR_PIPE_CONNECTED) or leaves at once (ERROR_NO_DATA). */
static void client_before_listen(rv *r)
{
    r->raw = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED, NULL);
    if (r->raw != INVALID_HANDLE_VALUE && !r->raw_keep) {
        CloseHandle(r->raw);
        r->raw = INVALID_HANDLE_VALUE;
    }
}

/* _i bit 0: engine; bit 1: the early client stays (1) or has left (0). Either way that client
 * (if it stayed) and the next one are served. */
START_TEST(connect_outcomes_first_listen)
{
    char name[96];
    aipc_test_name(name, sizeof name, "outcome");
    rv *r = rv_new();
    r->on_create_hook = client_before_listen;
    r->raw_keep = (_i & 2) != 0;
    rv_start(r, (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(r, &r->created, 1));
    ck_assert_int_eq(rv_get(r, &r->create_ok), 1);
    long long want = 0;
    if (r->raw_keep) {
        ck_assert_msg(r->raw != INVALID_HANDLE_VALUE, "early client could not open (%lu)",
                      GetLastError());
        ck_assert(rv_wait(r, &r->connected, 1));
        ck_assert(raw_send_frame(r->raw, "early", 5));
        ck_assert(rv_wait(r, &r->recv, ++want));
        CloseHandle(r->raw);
        r->raw = INVALID_HANDLE_VALUE;
        ck_assert(rv_wait(r, &r->disconnected, 1));
    }
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(raw_send_frame(h, "next", 4));
    ck_assert_msg(rv_wait(r, &r->recv, ++want), "the next client was not served");
    ck_assert_int_eq(rv_get(r, &r->connect_failed), 0);
    ck_assert_int_eq(rv_get(r, &r->last_recv_size), 4);
    CloseHandle(h);
    rv_free(r);
}
END_TEST

/* ---- more than 64 PIPE_ASYNC listeners -------------------------------------------------------- */

/* 70 PIPE_ASYNC servers listen at once (64 on the I/O thread's own wait, the rest through
 * thread-pool waits); clients of both kinds of slot are served, and listeners of both kinds are
 * released while their ConnectNamedPipe is pending. */
START_TEST(apc_listeners_beyond_64)
{
    enum { N = 70 };
    rv *r[N];
    char name[96];
    for (int i = 0; i < N; i++) {
        aipc_test_name(name, sizeof name, "many-listen");
        r[i] = rv_new();
        rv_start(r[i], PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    }
    for (int i = 0; i < N; i++)
        ck_assert(rv_wait(r[i], &r[i]->created, 1));
    static const int pick[] = {0, 63, 64, 66, 69, 0, 66};
    for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
        rv *s = r[pick[k]];
        long long before = rv_get(s, &s->recv);
        HANDLE h = raw_open(s->full);
        ck_assert_msg(h != INVALID_HANDLE_VALUE, "server %d: cannot connect", pick[k]);
        ck_assert(raw_send_frame(h, "hi", 2));
        ck_assert_msg(rv_wait(s, &s->recv, before + 1), "server %d did not receive", pick[k]);
        ck_assert(aipc_pipe_send(s->pipe, "yo", 2) == AIPC_OK);
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 2);
        free(f);
        long long disc = rv_get(s, &s->disconnected);
        CloseHandle(h);
        ck_assert(rv_wait(s, &s->disconnected, disc + 1));
    }
    for (int i = N - 1; i >= 0; i--)
        rv_free(r[i]);
}
END_TEST

/* ---- Exit / Release inside each callback ----------------------------------------------------- */

/* _i: bit 0 engine, bit 1 Release (else Exit), bits 2-3 the callback: OnCreate, OnConnected,
 * OnSend, OnDisconnected. The call returns inside the callback, nothing follows it, the handle
 * is closed (the raw client sees the end of the pipe), and a final Release returns. */
START_TEST(exit_or_release_in_each_callback)
{
    static const char kinds[] = {'C', 'O', 'S', 'D'};
    char name[96];
    aipc_test_name(name, sizeof name, "act");
    rv *r = rv_new();
    r->act_on = kinds[(_i >> 2) & 3];
    r->act_release = (_i & 2) != 0;
    ck_assert_int_eq(aipc_pipe_new((_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC, &r->pipe), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_send(r->pipe, "queued", 6), AIPC_OK);   /* OnSend after connect */
    wchar_t w[256];
    aipc_test_wname(w, 256, name);
    _snwprintf(r->full, 300, L"\\\\.\\pipe\\%ls", w);
    aipc_named_pipe *pipe = r->pipe;
    aipc_pipe_create(pipe, w, PIPE_SERVER, &r->d);
    if (r->act_on == 'C') {
        ck_assert(rv_wait(r, &r->acted, 1));
        HANDLE h = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        ck_assert_msg(h == INVALID_HANDLE_VALUE, "the pipe is still open after Exit in OnCreate");
        rv_free(r);
        return;
    }
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    if (r->act_on == 'O') {
        ck_assert(rv_wait(r, &r->acted, 1));
        raw_send_frame(h, "after", 5);      /* must not reach OnRecv */
        ck_assert(raw_sees_close(h));
    } else if (r->act_on == 'S') {
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 6);
        free(f);
        ck_assert(rv_wait(r, &r->acted, 1));
        raw_send_frame(h, "after", 5);
        ck_assert(raw_sees_close(h));
    } else {
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 6);
        free(f);
        CloseHandle(h);
        h = INVALID_HANDLE_VALUE;
        ck_assert(rv_wait(r, &r->acted, 1));
        /* No relisten after Exit/Release in OnDisconnected: the pipe name is gone. */
        HANDLE h2 = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                                FILE_FLAG_OVERLAPPED, NULL);
        ck_assert_msg(h2 == INVALID_HANDLE_VALUE, "still listening after Exit in OnDisconnected");
    }
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    ck_assert_int_eq(rv_get(r, &r->recv), 0);
    if (!r->act_release)
        ck_assert_int_eq(aipc_pipe_send(r->pipe, "x", 1), AIPC_ECLOSED);
    rv_free(r);
}
END_TEST

/* ---- client: busy server ---------------------------------------------------------------------- */

/* The server's only instance is taken: a client gives up after its connect timeout with
 * OnConnected(false), and Send then says AIPC_ECLOSED. _i: client engine. */
START_TEST(client_busy_server_times_out)
{
    char name[96];
    aipc_test_name(name, sizeof name, "busy-srv");
    rv *s = rv_new();
    rv_start(s, _i ? PIPE_ASYNC : PIPE_OVERLAPPED, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(s, &s->created, 1));
    HANDLE h = raw_open(s->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(s, &s->connected, 1));
    rv *c = rv_new();
    uint64_t t0 = aipc_test_now_ms();
    rv_start(c, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_CLIENT, name, 300, 0, -1);
    ck_assert(rv_wait(c, &c->connect_failed, 1));
    uint64_t took = aipc_test_now_ms() - t0;
    ck_assert_msg(took >= 250 && took < 5000, "gave up after %llu ms", (unsigned long long)took);
    ck_assert_int_eq(rv_get(c, &c->connected), 0);
    ck_assert_int_eq(aipc_pipe_send(c->pipe, "x", 1), AIPC_ECLOSED);
    rv_free(c);
    CloseHandle(h);
    rv_free(s);
}
END_TEST

/* ---- 32 MiB messages ------------------------------------------------------------------------- */

/* With the maximum raised to 40 MiB, a 32 MiB message (and a 0-byte one) crosses whole and
 * OnSend/OnRecv report the exact sizes. _i: server engine (the client uses the other). */
START_TEST(message_32mib)
{
    enum { BIG = 32 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "big");
    rv *s = rv_new();
    s->keep = 1;
    rv_start(s, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 40u << 20, -1);
    ck_assert(rv_wait(s, &s->created, 1));
    rv *c = rv_new();
    rv_start(c, _i ? PIPE_ASYNC : PIPE_OVERLAPPED, PIPE_CLIENT, name, 20000, 40u << 20, -1);
    ck_assert(rv_wait(c, &c->connected, 1));
    uint8_t *m = malloc(BIG);
    aipc_pattern_fill(m, BIG, 32);
    ck_assert_int_eq(aipc_pipe_send(c->pipe, m, BIG), AIPC_OK);
    ck_assert(rv_wait(s, &s->recv, 1));
    EnterCriticalSection(&s->lock);
    ck_assert_int_eq(s->last_recv_size, BIG);
    ck_assert_msg(aipc_pattern_check(s->keep_data, BIG, 32) < 0, "32 MiB message damaged");
    LeaveCriticalSection(&s->lock);
    /* Only now the 0-byte one: sent together, both could arrive before the check above and
     * the kept copy would be the empty message's. */
    ck_assert_int_eq(aipc_pipe_send(c->pipe, m, 0), AIPC_OK);
    ck_assert(rv_wait(c, &c->sent, 2));
    ck_assert(rv_wait(s, &s->recv, 2));
    ck_assert_int_eq(rv_get(s, &s->last_recv_size), 0);
    ck_assert_int_eq(rv_get(c, &c->last_sent_size), 0);
    free(m);
    rv_free(c);
    rv_free(s);
}
END_TEST

/* ---- Send racing Exit ------------------------------------------------------------------------ */

typedef struct racer {
    aipc_named_pipe *pipe;
    HANDLE go;
    volatile LONG bad;
} racer;

static DWORD WINAPI race_sender(void *arg)
{
    racer *x = arg;
    WaitForSingleObject(x->go, WAIT_MS);
    uint8_t m[512];
    memset(m, 3, sizeof m);
    for (int i = 0; i < 3000; i++) {
        int rc = aipc_pipe_send(x->pipe, m, 1 + (size_t)(i % 512));
        if (rc == AIPC_ECLOSED)
            break;
        if (rc != AIPC_OK && rc != AIPC_EQUEUEFULL)
            InterlockedIncrement(&x->bad);
    }
    return 0;
}

/* Three threads Send while the test thread calls Exit: Exit returns, Sends only ever answer
 * 0 / AIPC_EQUEUEFULL / AIPC_ECLOSED, no callback after Exit. 10 rounds. _i: engine. */
START_TEST(send_races_exit)
{
    for (int round = 0; round < 10; round++) {
        char name[96];
        aipc_test_name(name, sizeof name, "race");
        rv *s = rv_new();
        rv_start(s, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
        ck_assert(rv_wait(s, &s->created, 1));
        HANDLE h = raw_open(s->full);
        ck_assert(h != INVALID_HANDLE_VALUE);
        ck_assert(rv_wait(s, &s->connected, 1));
        racer x = {s->pipe, CreateEventW(NULL, TRUE, FALSE, NULL), 0};
        HANDLE th[3];
        for (int i = 0; i < 3; i++)
            th[i] = CreateThread(NULL, 0, race_sender, &x, 0, NULL);
        SetEvent(x.go);
        ck_assert(aipc_test_call_bounded(do_exit_pipe, s->pipe, WAIT_MS));
        InterlockedExchange(&s->gone, 1);
        ck_assert(WaitForMultipleObjects(3, th, TRUE, WAIT_MS) == WAIT_OBJECT_0);
        for (int i = 0; i < 3; i++)
            CloseHandle(th[i]);
        CloseHandle(x.go);
        ck_assert_int_eq(x.bad, 0);
        ck_assert(raw_sees_close(h));
        CloseHandle(h);
        rv_free(s);
    }
}
END_TEST

static Suite *p2p_bounds_lifetime_suite(void)
{
    Suite *s = suite_create("p2p_bounds_lifetime");
    TCase *t = tcase_create("queue");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, queue_bound_option, 0, 2);
    tcase_add_loop_test(t, queue_bound_default, 0, 2);
    suite_add_tcase(s, t);
    t = tcase_create("setup");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, connect_outcomes_first_listen, 0, 4);
    tcase_add_test(t, apc_listeners_beyond_64);
    tcase_add_loop_test(t, client_busy_server_times_out, 0, 2);
    suite_add_tcase(s, t);
    t = tcase_create("lifetime");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, exit_or_release_in_each_callback, 0, 16);
    tcase_add_loop_test(t, message_32mib, 0, 2);
    tcase_add_loop_test(t, send_races_exit, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_bounds_lifetime_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
