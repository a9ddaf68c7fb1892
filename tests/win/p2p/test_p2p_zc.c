/*
 * test_p2p_zc.c - zero-copy buffers of point-to-point pipes (aipc_pipe_alloc,
 * aipc_pipe_send_buf, aipc_buf_release, aipc_pipe_set_recv_ref; pipe_buf.c) between this
 * process and a real peer process of the other engine: p2p_zc_peer.exe (receives with buffers,
 * echoes each into a buffer of its own, or holds them) or p2p_peer.exe (the classic API).
 *   sizes      threshold - 1, threshold, 1 MiB sent from allocated buffers and received as
 *              buffers, byte-exact both ways; slots for the shared sizes, heap below;
 *   order      ordinary sends and buffer sends mixed, sizes around the threshold, in order;
 *   fallback   shared memory off at the peer: buffers are heap buffers, byte-exact;
 *   release    an unsent buffer given back frees its slot and its queue room (the queue bound
 *              counts allocated buffers: AIPC_EQUEUEFULL);
 *   kill       the receiver holds our shared messages as buffers and is killed: our shared
 *              bytes and segments go back to 0; buffers we hold (received and allocated)
 *              outlive the connection and are released afterwards;
 *   dispatcher the buffer callback on a dispatcher's thread, buffers released on another one;
 *   cycles     connections that each move 1 MiB both ways through buffers: handles and mapped
 *              bytes flat.
 */
#include "p2p_shm_common.h"
#include "aipc_memstat.h"

/* ---- this process's end: events and the buffer callback ------------------------------------- */

#define ZC_MAX 256

typedef struct zc_end {
    aipc_named_pipe *pipe;
    CRITICAL_SECTION lock;
    HANDLE ev;                     /* auto-reset: set at every event */
    volatile LONG created, create_ok, connected, disconnected;
    aipc_buf *msgs[ZC_MAX];        /* received, not yet released by the test */
    int nmsgs;
    volatile LONG recv_count;
    volatile LONG wrong_thread;    /* a callback ran off the dispatcher's thread */
    DWORD disp_tid;                /* with a dispatcher: where callbacks must run */
} zc_end;

static zc_end *g_ends[4];

static void zc_signal(zc_end *z)
{
    if (z->disp_tid && GetCurrentThreadId() != z->disp_tid)
        InterlockedIncrement(&z->wrong_thread);
    SetEvent(z->ev);
}

static void zc_create(aipc_named_pipe *pipe, void *user, bool ok)
{
    zc_end *z = user;
    (void)pipe;
    z->create_ok = ok;
    InterlockedIncrement(&z->created);
    zc_signal(z);
}

static void zc_connected(aipc_named_pipe *pipe, void *user, bool ok)
{
    zc_end *z = user;
    (void)pipe;
    if (ok)
        InterlockedIncrement(&z->connected);
    zc_signal(z);
}

static void zc_disconnected(aipc_named_pipe *pipe, void *user)
{
    zc_end *z = user;
    (void)pipe;
    InterlockedIncrement(&z->disconnected);
    zc_signal(z);
}

static void zc_recv(aipc_named_pipe *pipe, void *user, aipc_buf *buf)
{
    zc_end *z = user;
    (void)pipe;
    EnterCriticalSection(&z->lock);
    if (z->nmsgs < ZC_MAX) {
        z->msgs[z->nmsgs++] = buf;   /* kept past the callback: released by the test */
        buf = NULL;
    }
    LeaveCriticalSection(&z->lock);
    aipc_buf_release(buf);
    InterlockedIncrement(&z->recv_count);
    zc_signal(z);
}

static zc_end *zc_new(PipeImplType engine)
{
    zc_end *z = calloc(1, sizeof *z);
    ck_assert_ptr_nonnull(z);
    InitializeCriticalSection(&z->lock);
    z->ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    ck_assert_int_eq(aipc_pipe_new(engine, &z->pipe), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_set_recv_ref(z->pipe, zc_recv, z), AIPC_OK);
    for (int i = 0; i < 4; i++)
        if (!g_ends[i]) {
            g_ends[i] = z;
            return z;
        }
    ck_abort_msg("too many ends");
    return NULL;
}

static void zc_start(zc_end *z, PipeType role, const char *name)
{
    aipc_pipe_events ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    ev.user = z;
    ev.on_create = zc_create;
    ev.on_connected = zc_connected;
    ev.on_disconnected = zc_disconnected;
    wchar_t w[200];
    aipc_test_wname(w, 200, name);
    ck_assert_int_eq(aipc_pipe_create_ex(z->pipe, w, role, &ev), AIPC_OK);
}

/* Waits until *field >= want (any event wakes the wait); fails after WAIT_MS. With a manual
 * dispatcher `d`, runs its callbacks meanwhile. */
static void zc_wait(zc_end *z, volatile LONG *field, LONG want, const char *what,
                    aipc_dispatcher *d)
{
    uint64_t until = aipc_test_now_ms() + WAIT_MS;
    while (InterlockedCompareExchange(field, 0, 0) < want) {
        ck_assert_msg(aipc_test_now_ms() < until, "%s: %ld, want %ld", what, (long)*field,
                      (long)want);
        if (d) {
            HANDLE h = aipc_dispatcher_event(d);
            HANDLE hs[2] = {z->ev, h};
            WaitForMultipleObjects(2, hs, FALSE, 100);
            aipc_dispatcher_run(d, 0);
        } else {
            WaitForSingleObject(z->ev, 100);
        }
    }
}

/* Releases every kept buffer. */
static void zc_clear(zc_end *z)
{
    EnterCriticalSection(&z->lock);
    int n = z->nmsgs;
    aipc_buf *m[ZC_MAX];
    memcpy(m, z->msgs, (size_t)n * sizeof *m);
    z->nmsgs = 0;
    LeaveCriticalSection(&z->lock);
    for (int i = 0; i < n; i++)
        aipc_buf_release(m[i]);
}

static aipc_buf *zc_msg(zc_end *z, int i)
{
    EnterCriticalSection(&z->lock);
    aipc_buf *b = i < z->nmsgs ? z->msgs[i] : NULL;
    LeaveCriticalSection(&z->lock);
    ck_assert_msg(b != NULL, "message %d was not kept", i);
    return b;
}

static void zc_free(zc_end *z)
{
    for (int i = 0; i < 4; i++)
        if (g_ends[i] == z)
            g_ends[i] = NULL;
    aipc_pipe_free(z->pipe);
    zc_clear(z);
    CloseHandle(z->ev);
    DeleteCriticalSection(&z->lock);
    free(z);
}

static aipc_pipe_stats zstats(zc_end *z)
{
    aipc_pipe_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ck_assert_int_eq(aipc_pipe_get_stats(z->pipe, &st), AIPC_OK);
    return st;
}

/* Sends `size` pattern bytes (seed) from an allocated buffer; *shared: it was a slot. */
static void zc_send(zc_end *z, size_t size, uint32_t seed, int *shared)
{
    aipc_buf *b = NULL;
    uint64_t before = zstats(z).buf_shm_bytes;
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, size, &b), AIPC_OK);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->size, size);
    if (shared)
        *shared = zstats(z).buf_shm_bytes == before + size;
    aipc_pattern_fill(b->data, size, seed);
    ck_assert_int_eq(aipc_pipe_send_buf(z->pipe, b, size), AIPC_OK);
}

/* Checks kept message i: `size` pattern bytes of `seed`, NUL after them. */
static void zc_check(zc_end *z, int i, size_t size, uint32_t seed)
{
    aipc_buf *m = zc_msg(z, i);
    ck_assert_msg(m->size == size, "message %d: %zu bytes, want %zu", i, m->size, size);
    long long bad = aipc_pattern_check(m->data, size, seed);
    ck_assert_msg(bad < 0, "message %d (%zu bytes) differs at byte %lld", i, size, bad);
    ck_assert_int_eq(((const uint8_t *)m->data)[size], 0);
}

/* Small round trips until both sides' segments are confirmed, then one more each way. */
static void zc_warm(zc_end *z)
{
    int extra = 0;
    for (int i = 0; i < 100 && extra < 2; i++) {
        LONG n = z->recv_count;
        ck_assert_int_eq(aipc_pipe_send(z->pipe, "warm", 4), AIPC_OK);
        zc_wait(z, &z->recv_count, n + 1, "a warm-up echo", NULL);
        if (zstats(z).shm_segments >= 2 || extra)
            extra++;
    }
    ck_assert_msg(extra == 2, "segments not confirmed (%u)", zstats(z).shm_segments);
    zc_clear(z);
}

/* This end (engine `mine`, server unless `client`) and the zc peer of the other engine. */
static zc_end *zc_pair(aipc_proc *peer, PipeImplType mine, int client, const char *tag,
                       const char *exe_mode)
{
    char name[96];
    aipc_test_name(name, sizeof name, tag);
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    const char *exe = strncmp(exe_mode, "classic", 7) ? "p2p_zc_peer.exe" : "p2p_peer.exe";
    const char *mode = strncmp(exe_mode, "classic", 7) ? exe_mode : "echo";
    zc_end *z = zc_new(mine);
    if (client) {
        ck_assert_int_eq(aipc_proc_spawn(peer, exe, "--mode %s --role server --once --engine %s "
                                         "--pipe %s", mode, other, name), AIPC_OK);
        ck_assert_int_eq(aipc_pipe_set_option(z->pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, 10000),
                         AIPC_OK);
        zc_start(z, PIPE_CLIENT, name);
    } else {
        zc_start(z, PIPE_SERVER, name);
        zc_wait(z, &z->created, 1, "on_create", NULL);
        ck_assert(z->create_ok);
        ck_assert_int_eq(aipc_proc_spawn(peer, exe, "--mode %s --role client --engine %s "
                                         "--pipe %s", mode, other, name), AIPC_OK);
    }
    zc_wait(z, &z->connected, 1, "the peer connected", NULL);
    return z;
}

/* ---- sizes ------------------------------------------------------------------------------------ */

/* _i bit 0: this end's engine; bit 1: this end is the client; bit 2: the peer uses the classic
 * API (p2p_peer.exe echo) instead of buffers. */
START_TEST(sizes_byte_exact_through_buffers)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_proc peer;
    zc_end *z = zc_pair(&peer, mine, (_i & 2) != 0, "zcsz", (_i & 4) ? "classic" : "echo");
    zc_warm(z);
    static const size_t sizes[] = {THR - 1, THR, MIB, THR + 1, 1, MIB};
    uint64_t sent0 = zstats(z).shm_sent, recv0 = zstats(z).shm_received;
    for (int i = 0; i < (int)(sizeof sizes / sizeof *sizes); i++) {
        int shared = 0;
        LONG n = z->recv_count;
        zc_send(z, sizes[i], (uint32_t)i + 11, &shared);
        ck_assert_msg(shared == (sizes[i] >= THR), "a buffer of %zu bytes: slot %d", sizes[i],
                      shared);
        zc_wait(z, &z->recv_count, n + 1, "an echo", NULL);
        zc_check(z, 0, sizes[i], (uint32_t)i + 11);
        if (sizes[i] >= THR)
            ck_assert_msg(zstats(z).recv_buf_bytes == sizes[i], "recv_buf_bytes %llu",
                          (unsigned long long)zstats(z).recv_buf_bytes);
        zc_clear(z);
    }
    aipc_pipe_stats st = zstats(z);
    ck_assert_msg(st.shm_sent - sent0 == 4 && st.shm_received - recv0 == 4,
                  "shared: sent %llu, received %llu (want 4 each way)",
                  (unsigned long long)(st.shm_sent - sent0),
                  (unsigned long long)(st.shm_received - recv0));
    ck_assert_msg(st.buf_bytes == 0 && st.buf_shm_bytes == 0 && st.recv_buf_bytes == 0,
                  "buffers left: %llu / %llu / %llu", (unsigned long long)st.buf_bytes,
                  (unsigned long long)st.buf_shm_bytes, (unsigned long long)st.recv_buf_bytes);
    zc_free(z);
    PEER_DONE(&peer, 0);
}
END_TEST

/* ---- order ------------------------------------------------------------------------------------ */

/* _i: this end's engine. 96 messages, sizes 10 B, threshold - 1, threshold, 256 KiB in turn,
 * every other one through a buffer, the rest with aipc_pipe_send: echoed in order, exact. */
START_TEST(mixed_with_ordinary_sends_in_order)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_proc peer;
    zc_end *z = zc_pair(&peer, mine, 0, "zcord", "echo");
    zc_warm(z);
    static const size_t mix[4] = {10, THR - 1, THR, 256 * 1024};
    uint8_t *tmp = malloc(256 * 1024);
    ck_assert_ptr_nonnull(tmp);
    LONG n0 = z->recv_count;
    for (int i = 0; i < 96; i++) {
        size_t size = mix[i % 4];
        if ((i / 4) & 1) {
            zc_send(z, size, (uint32_t)i, NULL);
        } else {
            aipc_pattern_fill(tmp, size, (uint32_t)i);
            ck_assert_int_eq(aipc_pipe_send(z->pipe, tmp, size), AIPC_OK);
        }
    }
    free(tmp);
    zc_wait(z, &z->recv_count, n0 + 96, "96 echoes", NULL);
    for (int i = 0; i < 96; i++)
        zc_check(z, i, mix[i % 4], (uint32_t)i);
    ck_assert_msg(zstats(z).shm_sent >= 24, "shared sent %llu",
                  (unsigned long long)zstats(z).shm_sent);
    zc_clear(z);
    zc_free(z);
    PEER_DONE(&peer, 0);
}
END_TEST

/* ---- fallback ----------------------------------------------------------------------------------- */

/* _i bit 0: this end's engine; bit 1: shared memory is off here (else at the peer). Buffers
 * are heap buffers; everything arrives exact, nothing shared. */
START_TEST(shm_off_heap_buffers)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "zcoff");
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    zc_end *z = zc_new(mine);
    if (_i & 2)
        ck_assert_int_eq(aipc_pipe_set_option(z->pipe, AIPC_PIPE_OPT_SHM, AIPC_SHM_OFF), AIPC_OK);
    zc_start(z, PIPE_SERVER, name);
    zc_wait(z, &z->created, 1, "on_create", NULL);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode echo --role client "
                                     "--engine %s --pipe %s%s", other, name,
                                     (_i & 2) ? "" : " --shm-off"), AIPC_OK);
    zc_wait(z, &z->connected, 1, "the peer connected", NULL);
    static const size_t sizes[] = {THR, MIB, 3};
    for (int i = 0; i < 3; i++) {
        int shared = -1;
        LONG n = z->recv_count;
        zc_send(z, sizes[i], (uint32_t)i + 40, &shared);
        ck_assert_int_eq(shared, 0);
        zc_wait(z, &z->recv_count, n + 1, "an echo", NULL);
        zc_check(z, 0, sizes[i], (uint32_t)i + 40);
        zc_clear(z);
    }
    aipc_pipe_stats st = zstats(z);
    ck_assert_msg(st.shm == 0 && st.shm_sent == 0 && st.shm_received == 0,
                  "shm %u sent %llu received %llu", st.shm, (unsigned long long)st.shm_sent,
                  (unsigned long long)st.shm_received);
    zc_free(z);
    PEER_DONE(&peer, 0);
}
END_TEST

/* ---- release of unsent buffers, queue bound ---------------------------------------------------- */

/* _i: this end's engine. Unsent buffers given back free their slots (the ring comes back:
 * 24 x 1 MiB allocated and released in turn from an 8 MiB segment are all slots) and their
 * queue room: with a 2.5 MiB queue bound, a second 1 MiB buffer fits, a third does not
 * (AIPC_EQUEUEFULL), nor does an ordinary 1 MiB send; after a release both fit again. */
START_TEST(release_unsent_returns_slot_and_room)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "zcrel");
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    zc_end *z = zc_new(mine);
    ck_assert_int_eq(aipc_pipe_set_option(z->pipe, AIPC_PIPE_OPT_MAX_QUEUE, 5 * MIB / 2), 0);
    zc_start(z, PIPE_SERVER, name);
    zc_wait(z, &z->created, 1, "on_create", NULL);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode echo --role client "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    zc_wait(z, &z->connected, 1, "the peer connected", NULL);
    zc_warm(z);
    for (int i = 0; i < 24; i++) {
        aipc_buf *b;
        ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &b), AIPC_OK);
        aipc_pipe_stats st = zstats(z);
        ck_assert_msg(st.buf_bytes == MIB && st.buf_shm_bytes == MIB,
                      "allocation %d: %llu bytes, %llu in slots", i,
                      (unsigned long long)st.buf_bytes, (unsigned long long)st.buf_shm_bytes);
        memset(b->data, 0x5a, MIB);
        aipc_buf_release(b);
        st = zstats(z);
        ck_assert_msg(st.buf_bytes == 0 && st.buf_shm_bytes == 0, "after release %d: %llu/%llu",
                      i, (unsigned long long)st.buf_bytes, (unsigned long long)st.buf_shm_bytes);
    }
    aipc_buf *a, *b, *c = NULL;
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &a), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &b), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &c), AIPC_EQUEUEFULL);
    ck_assert_ptr_null(c);
    uint8_t *tmp = calloc(1, MIB);
    ck_assert_int_eq(aipc_pipe_send(z->pipe, tmp, MIB), AIPC_EQUEUEFULL);
    ck_assert_uint_eq(zstats(z).buf_bytes, 2 * MIB);
    aipc_buf_release(a);
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &c), AIPC_OK);
    aipc_buf_release(c);
    aipc_buf_release(b);
    LONG n = z->recv_count;
    ck_assert_int_eq(aipc_pipe_send(z->pipe, tmp, MIB), AIPC_OK);
    free(tmp);
    zc_wait(z, &z->recv_count, n + 1, "the echo", NULL);
    /* misuse: a received buffer is not sendable; a released one not at all */
    aipc_buf *m = zc_msg(z, 0);
    ck_assert_int_eq(aipc_pipe_send_buf(z->pipe, m, 1), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &a), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_send_buf(z->pipe, a, MIB + 1), AIPC_EINVAL);
    aipc_buf_release(a);
    zc_clear(z);
    aipc_pipe_stats st = zstats(z);
    ck_assert_msg(st.buf_bytes == 0 && st.recv_buf_bytes == 0, "left %llu / %llu",
                  (unsigned long long)st.buf_bytes, (unsigned long long)st.recv_buf_bytes);
    zc_free(z);
    PEER_DONE(&peer, 0);
}
END_TEST

/* ---- kills ---------------------------------------------------------------------------------- */

/* _i: this end's engine. The peer holds our 4 shared 1 MiB messages as buffers (never
 * released): our shared bytes stay 4 MiB; it is killed: they and our segments go back to 0.
 * A buffer we allocated before the kill (a slot) is still writable after it and is released;
 * then a new peer is served shared again. */
START_TEST(receiver_killed_holding_buffers)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "zckill");
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    zc_end *z = zc_new(mine);
    zc_start(z, PIPE_SERVER, name);
    zc_wait(z, &z->created, 1, "on_create", NULL);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode hold --role client "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    zc_wait(z, &z->connected, 1, "the peer connected", NULL);
    zc_warm(z);
    for (int i = 0; i < 4; i++) {
        int shared = 0;
        zc_send(z, MIB, (uint32_t)i, &shared);
        ck_assert(shared);
    }
    LONG n = z->recv_count;
    ck_assert_int_eq(aipc_pipe_send(z->pipe, "sync", 4), AIPC_OK);
    zc_wait(z, &z->recv_count, n + 1, "the echo behind the held messages", NULL);
    aipc_pipe_stats st = zstats(z);
    ck_assert_msg(st.shm_bytes == 4u * MIB, "held by the peer: %llu",
                  (unsigned long long)st.shm_bytes);
    aipc_buf *lent;
    ck_assert_int_eq(aipc_pipe_alloc(z->pipe, MIB, &lent), AIPC_OK);
    ck_assert_uint_eq(zstats(z).buf_shm_bytes, MIB);
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    zc_wait(z, &z->disconnected, 1, "the killed peer's disconnect", NULL);
    st = zstats(z);
    ck_assert_msg(st.shm_bytes == 0 && st.shm_segments == 0 && st.shm == 0,
                  "after the kill: bytes %llu, segments %u, shm %u",
                  (unsigned long long)st.shm_bytes, st.shm_segments, st.shm);
    memset(lent->data, 0xa5, MIB);           /* its segment stays mapped while lent */
    aipc_buf_release(lent);
    ck_assert_uint_eq(zstats(z).buf_bytes, 0);
    /* the next client is served shared again, through buffers both ways */
    zc_clear(z);
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode echo --role client "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    zc_wait(z, &z->connected, 2, "the next client", NULL);
    zc_warm(z);
    int shared = 0;
    n = z->recv_count;
    zc_send(z, MIB, 77, &shared);
    ck_assert(shared);
    zc_wait(z, &z->recv_count, n + 1, "the echo", NULL);
    zc_check(z, 0, MIB, 77);
    zc_clear(z);
    zc_free(z);
    PEER_DONE(&peer, 0);
}
END_TEST

/* _i: this end's engine. We hold the peer's shared 1 MiB messages as buffers when it is
 * killed: they stay readable and exact after the disconnect, and releasing them afterwards
 * unmaps its segments (received buffer bytes 0, our segment count 0). */
START_TEST(buffers_outlive_a_killed_sender)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_proc peer;
    zc_end *z = zc_pair(&peer, mine, 0, "zcheld", "echo");
    zc_warm(z);
    LONG n = z->recv_count;
    for (int i = 0; i < 3; i++)
        zc_send(z, MIB, (uint32_t)i + 60, NULL);
    zc_wait(z, &z->recv_count, n + 3, "3 echoes", NULL);
    ck_assert_uint_eq(zstats(z).recv_buf_bytes, 3u * MIB);
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    zc_wait(z, &z->disconnected, 1, "the killed peer's disconnect", NULL);
    for (int i = 0; i < 3; i++)
        zc_check(z, i, MIB, (uint32_t)i + 60);
    aipc_memstat before, after;
    aipc_memstat_take(&before);
    zc_clear(z);
    aipc_memstat_take(&after);
    aipc_pipe_stats st = zstats(z);
    ck_assert_msg(st.recv_buf_bytes == 0 && st.shm_segments == 0, "left: %llu bytes, %u segments",
                  (unsigned long long)st.recv_buf_bytes, st.shm_segments);
    ck_assert_msg(after.mapped_bytes < before.mapped_bytes,
                  "the peer's segment stayed mapped (%lld -> %lld bytes)",
                  (long long)before.mapped_bytes, (long long)after.mapped_bytes);
    zc_free(z);
}
END_TEST

/* ---- dispatcher ------------------------------------------------------------------------------ */

/* _i: this end's engine. With a manual dispatcher the buffer callback runs on this (the
 * dispatcher's) thread; the buffers it kept are released from another thread. */
START_TEST(buffers_through_a_dispatcher)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "zcdisp");
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &d), AIPC_OK);
    zc_end *z = zc_new(mine);
    z->disp_tid = GetCurrentThreadId();
    ck_assert_int_eq(aipc_pipe_set_dispatcher(z->pipe, d), AIPC_OK);
    zc_start(z, PIPE_SERVER, name);
    zc_wait(z, &z->created, 1, "on_create", d);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode echo --role client "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    zc_wait(z, &z->connected, 1, "the peer connected", d);
    for (int i = 0; i < 40 && zstats(z).shm_segments < 2; i++) {
        LONG n = z->recv_count;
        ck_assert_int_eq(aipc_pipe_send(z->pipe, "warm", 4), AIPC_OK);
        zc_wait(z, &z->recv_count, n + 1, "a warm-up echo", d);
    }
    zc_clear(z);
    LONG n = z->recv_count;
    for (int i = 0; i < 4; i++)
        zc_send(z, i & 1 ? MIB : 100, (uint32_t)i + 90, NULL);
    zc_wait(z, &z->recv_count, n + 4, "4 echoes", d);
    for (int i = 0; i < 4; i++)
        zc_check(z, i, i & 1 ? MIB : 100, (uint32_t)i + 90);
    ck_assert_int_eq(z->wrong_thread, 0);
    ck_assert_int_eq(aipc_test_call_bounded((void (*)(void *))zc_clear, z, WAIT_MS), 1);
    ck_assert_uint_eq(zstats(z).recv_buf_bytes, 0);
    zc_free(z);
    aipc_dispatcher_free(d);
    PEER_DONE(&peer, 0);
}
END_TEST

/* ---- cycles ------------------------------------------------------------------------------------ */

#define CYCLES 100

/* _i: this end's engine (a client; the peer is a server of the other engine, one process per
 * cycle). CYCLES times: a new pipe connects, moves 1 MiB both ways through buffers (shared) and
 * is freed. This process's next handle value and mapped bytes after the last cycle are what
 * they were after the first (every section handle and view of the buffers' segments closed). */
START_TEST(cycles_flat)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_memstat first, now;
    memset(&first, 0, sizeof first);
    for (int c = 0; c < CYCLES; c++) {
        aipc_proc peer;
        zc_end *z = zc_pair(&peer, mine, 1, "zccyc", "echo");
        zc_warm(z);
        LONG n = z->recv_count;
        int shared = 0;
        zc_send(z, MIB, (uint32_t)c, &shared);
        ck_assert_msg(shared, "cycle %d: no slot", c);
        zc_wait(z, &z->recv_count, n + 1, "the echo", NULL);
        zc_check(z, 0, MIB, (uint32_t)c);
        ck_assert_msg(zstats(z).shm_received >= 1, "cycle %d: the echo did not come shared", c);
        zc_free(z);
        PEER_DONE(&peer, 0);
        if (c == 0)
            aipc_memstat_take(&first);
    }
    aipc_memstat_take(&now);
    ck_assert_msg(now.next_handle <= first.next_handle + 8,
                  "next handle value grew from %lld to %lld over %d cycles",
                  (long long)first.next_handle, (long long)now.next_handle, CYCLES);
    ck_assert_msg(now.mapped_bytes <= first.mapped_bytes,
                  "mapped bytes grew from %lld to %lld over %d cycles",
                  (long long)first.mapped_bytes, (long long)now.mapped_bytes, CYCLES);
}
END_TEST

static void zc_teardown(void)
{
    aipc_proc_kill_all();
    for (int i = 0; i < 4; i++)
        if (g_ends[i])
            zc_free(g_ends[i]);
    p2p_teardown();
}

static Suite *p2p_zc_suite(void)
{
    Suite *s = suite_create("p2p_zc");
    TCase *t = tcase_create("zc");
    tcase_add_checked_fixture(t, p2p_setup, zc_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, sizes_byte_exact_through_buffers, 0, 8);
    tcase_add_loop_test(t, mixed_with_ordinary_sends_in_order, 0, 2);
    tcase_add_loop_test(t, shm_off_heap_buffers, 0, 4);
    tcase_add_loop_test(t, release_unsent_returns_slot_and_room, 0, 2);
    tcase_add_loop_test(t, receiver_killed_holding_buffers, 0, 2);
    tcase_add_loop_test(t, buffers_outlive_a_killed_sender, 0, 2);
    tcase_add_loop_test(t, buffers_through_a_dispatcher, 0, 2);
    tcase_add_loop_test(t, cycles_flat, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_zc_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
