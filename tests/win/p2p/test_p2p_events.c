/*
 * test_p2p_events.c - the versioned pipe events (aipc_pipe_events + aipc_pipe_create_ex) on
 * both engines: every callback with the application's user pointer and the pipe, end to end
 * with p2p_peer.exe in another process; a caller built against an older, smaller struct gets
 * only the callbacks its size covers; a size too small is refused; a larger (newer) size is
 * accepted; a server whose name is taken reports the code and on_create(false).
 *
 * The recording is aipc_probe's (tests/win/util): each versioned callback checks its pipe and
 * user arguments, then calls the probe's delegate member, which records the event and checks
 * the threading promises (one thread, never concurrent, none after Exit/Release).
 */
#include "p2p_common.h"

#define EV_MAGIC 0x45564e54u   /* "EVNT" */

/* The application's user pointer: it leads back to the probe. */
typedef struct ev_user {
    uint32_t magic;
    aipc_probe *probe;
} ev_user;

static volatile LONG g_bad_args;     /* a callback got a wrong user or pipe pointer */
static volatile LONG g_never_calls;  /* a callback outside the caller's size was called */

static aipc_probe *probe_of(aipc_named_pipe *pipe, void *user)
{
    ev_user *u = user;
    if (!u || u->magic != EV_MAGIC) {
        InterlockedIncrement(&g_bad_args);
        return NULL;
    }
    if (pipe == NULL || pipe != u->probe->pipe)
        InterlockedIncrement(&g_bad_args);
    return u->probe;
}

static void ev_create(aipc_named_pipe *pipe, void *user, bool ok)
{
    aipc_probe *p = probe_of(pipe, user);
    if (p)
        p->d.OnCreate(&p->d, ok);
}

static void ev_connected(aipc_named_pipe *pipe, void *user, bool ok)
{
    aipc_probe *p = probe_of(pipe, user);
    if (p)
        p->d.OnConnected(&p->d, ok);
}

static void ev_send(aipc_named_pipe *pipe, void *user, size_t size)
{
    aipc_probe *p = probe_of(pipe, user);
    if (p)
        p->d.OnSend(&p->d, (int)size);
}

static void ev_recv(aipc_named_pipe *pipe, void *user, const void *data, size_t size)
{
    aipc_probe *p = probe_of(pipe, user);
    if (p)
        p->d.OnRecv(&p->d, (void *)data, (int)size);
}

static void ev_disconnected(aipc_named_pipe *pipe, void *user)
{
    aipc_probe *p = probe_of(pipe, user);
    if (p)
        p->d.OnDisconnected(&p->d);
}

static void never_recv(aipc_named_pipe *pipe, void *user, const void *data, size_t size)
{
    (void)pipe, (void)user, (void)data, (void)size;
    InterlockedIncrement(&g_never_calls);
}

static void never_disconnected(aipc_named_pipe *pipe, void *user)
{
    (void)pipe, (void)user;
    InterlockedIncrement(&g_never_calls);
}

static aipc_pipe_events full_events(ev_user *u)
{
    aipc_pipe_events ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    ev.user = u;
    ev.on_create = ev_create;
    ev.on_connected = ev_connected;
    ev.on_send = ev_send;
    ev.on_recv = ev_recv;
    ev.on_disconnected = ev_disconnected;
    return ev;
}

/* A new probe's pipe (engine) started with aipc_pipe_create_ex(events); returns its result. */
static int start_events(aipc_probe *p, ev_user *u, PipeImplType engine, PipeType role,
                        const char *name, const aipc_pipe_events *events)
{
    u->magic = EV_MAGIC;
    u->probe = p;
    aipc_named_pipe *pipe = NULL;
    ck_assert_int_eq(aipc_pipe_new(engine, &pipe), AIPC_OK);
    if (role == PIPE_CLIENT)
        ck_assert_int_eq(aipc_pipe_set_option(pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, 20000), AIPC_OK);
    p->pipe = pipe;
    wchar_t wname[256];
    aipc_test_wname(wname, 256, name);
    return aipc_pipe_create_ex(pipe, wname, role, events);
}

static void events_setup(void)
{
    p2p_setup();
    InterlockedExchange(&g_bad_args, 0);
    InterlockedExchange(&g_never_calls, 0);
}

/* Every callback, end to end: our pipe (engine and role from _i) and an echo peer of the other
 * engine in another process; N messages out and back (on_send, on_recv byte-exact), then the
 * peer is killed (on_disconnected). */
START_TEST(events_round_trip)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeType role = (_i & 2) ? PIPE_CLIENT : PIPE_SERVER;
    char name[96];
    aipc_test_name(name, sizeof name, "events");
    aipc_probe *p = new_probe();
    p->keep = 1;
    ev_user u;
    aipc_pipe_events ev = full_events(&u);
    aipc_proc peer;
    if (role == PIPE_SERVER) {
        ck_assert_int_eq(start_events(p, &u, mine, role, name, &ev), AIPC_OK);
        ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no on_create");
        ck_assert_int_eq(aipc_probe_get(p, &p->create_ok), 1);
    }
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role %s --engine %s --pipe %s "
                                     "--connect-timeout 20000",
                                     role == PIPE_SERVER ? "client" : "server",
                                     engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC), name),
                     AIPC_OK);
    if (role == PIPE_CLIENT) {
        ck_assert_int_eq(start_events(p, &u, mine, role, name, &ev), AIPC_OK);
        ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no on_create");
    }
    ck_assert_msg(aipc_probe_wait(p, &p->connected, 1, WAIT_MS), "no on_connected(true)");
    enum { N = 20 };
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        uint8_t buf[300];
        size_t n = 1 + (size_t)i * 13;
        aipc_pattern_fill(buf, n, (uint32_t)i);
        ck_assert_int_eq(aipc_probe_send(p, buf, n), AIPC_OK);
        total += n;
    }
    WAIT_FOR(p, recv_count, N, "echoes");
    WAIT_FOR(p, sent_count, N, "on_send");
    ck_assert_int_eq(aipc_probe_get(p, &p->sent_bytes), (long long)total);
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_bytes), (long long)total);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(p->msgs[i].size, 1 + i * 13);
        ck_assert_int_eq(aipc_pattern_check(p->msgs[i].data, (size_t)p->msgs[i].size, (uint32_t)i), -1);
    }
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    ck_assert_msg(aipc_probe_wait(p, &p->disconnected, 1, WAIT_MS), "no on_disconnected");
    ck_assert_int_eq(InterlockedCompareExchange(&g_bad_args, 0, 0), 0);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* A caller built against an older header: its struct ends after on_send. Whatever lies beyond
 * its size in memory (here: functions that must never run) is not called; what it has is. */
START_TEST(events_old_caller_gets_its_callbacks_only)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "events-old");
    aipc_probe *s = new_probe();
    ev_user su;
    aipc_pipe_events ev = full_events(&su);
    ev.size = (uint32_t)offsetof(aipc_pipe_events, on_recv);
    ev.on_recv = never_recv;
    ev.on_disconnected = never_disconnected;
    ck_assert_int_eq(start_events(s, &su, mine, PIPE_SERVER, name, &ev), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->created, 1, WAIT_MS), "no on_create");

    /* A first peer: both ways, then it leaves after its message was written. */
    aipc_probe *c1 = new_probe();
    ck_assert_int_eq(aipc_probe_start(c1, mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC,
                                      PIPE_CLIENT, name, 20000, 0), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->connected, 1, WAIT_MS), "no on_connected");
    ck_assert_int_eq(aipc_probe_send(s, "hi", 2), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->sent_count, 1, WAIT_MS), "no on_send");
    ck_assert_msg(aipc_probe_wait(c1, &c1->recv_count, 1, WAIT_MS), "the peer got nothing");
    ck_assert_int_eq(aipc_probe_send(c1, "x", 1), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(c1, &c1->sent_count, 1, WAIT_MS), "the peer's message not written");
    free_probe(c1);

    /* The server saw that peer's message and its leaving before it can take the next peer:
     * once on_connected comes again, on_recv and on_disconnected would have run. */
    aipc_probe *c2 = new_probe();
    ck_assert_int_eq(aipc_probe_start(c2, mine, PIPE_CLIENT, name, 20000, 0), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->connected, 2, WAIT_MS), "no second on_connected");
    ck_assert_msg(aipc_probe_wait(c2, &c2->connected, 1, WAIT_MS), "the second peer did not connect");
    ck_assert_int_eq(InterlockedCompareExchange(&g_never_calls, 0, 0), 0);
    ck_assert_int_eq(aipc_probe_get(s, &s->recv_count), 0);
    ck_assert_int_eq(aipc_probe_get(s, &s->disconnected), 0);
    ck_assert_int_eq(InterlockedCompareExchange(&g_bad_args, 0, 0), 0);
    ck_assert_msg(aipc_probe_exit(s, WAIT_MS), "Exit did not return");
    ASSERT_PROBE_CLEAN(s);
    free_probe(c2);
    free_probe(s);
}
END_TEST

/* No events, a size of 0, or one that ends inside the header: AIPC_EINVAL, and the pipe is
 * left as it was (it can still be created). The header alone (no callback) is accepted and the
 * pipe works; so is a size larger than this SDK knows (members it does not know: never run). */
START_TEST(events_size_checked)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96], wname_narrow[96];
    aipc_test_name(name, sizeof name, "events-size");
    wchar_t wname[256];
    aipc_test_wname(wname, 256, name);
    aipc_named_pipe *bare = NULL;
    ck_assert_int_eq(aipc_pipe_new(mine, &bare), AIPC_OK);
    aipc_pipe_events ev;
    memset(&ev, 0, sizeof ev);
    ck_assert_int_eq(aipc_pipe_create_ex(bare, wname, PIPE_SERVER, NULL), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_create_ex(bare, wname, PIPE_SERVER, &ev), AIPC_EINVAL);     /* 0 */
    ev.size = AIPC_PIPE_EVENTS_MIN_SIZE - 1;
    ck_assert_int_eq(aipc_pipe_create_ex(bare, wname, PIPE_SERVER, &ev), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_create_ex(NULL, wname, PIPE_SERVER, &ev), AIPC_EINVAL);
    ev.size = AIPC_PIPE_EVENTS_MIN_SIZE;                 /* the header alone: no callback */
    ck_assert_int_eq(aipc_pipe_create_ex(bare, wname, PIPE_SERVER, &ev), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_create_ex(bare, wname, PIPE_SERVER, &ev), AIPC_ESTATE);
    aipc_probe *c = new_probe();
    ck_assert_int_eq(aipc_probe_start(c, mine, PIPE_CLIENT, name, 20000, 0), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(c, &c->connected, 1, WAIT_MS), "the callback-less server never listened");
    ck_assert_int_eq(aipc_pipe_send(bare, "x", 1), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(c, &c->recv_count, 1, WAIT_MS), "the callback-less server sent nothing");
    free_probe(c);
    aipc_pipe_free(bare);

    /* A newer caller: members after on_disconnected that this SDK does not know. */
    struct {
        aipc_pipe_events ev;
        void (*future[4])(aipc_named_pipe *, void *);
    } newer;
    ev_user u;
    aipc_probe *s = new_probe();
    newer.ev = full_events(&u);
    newer.ev.size = sizeof newer;
    for (int i = 0; i < 4; i++)
        newer.future[i] = never_disconnected;
    aipc_test_name(wname_narrow, sizeof wname_narrow, "events-newer");
    ck_assert_int_eq(start_events(s, &u, mine, PIPE_SERVER, wname_narrow, &newer.ev), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->created, 1, WAIT_MS), "no on_create");
    c = new_probe();
    ck_assert_int_eq(aipc_probe_start(c, mine, PIPE_CLIENT, wname_narrow, 20000, 0), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->connected, 1, WAIT_MS), "no on_connected");
    ck_assert_int_eq(aipc_probe_send(c, "y", 1), AIPC_OK);
    ck_assert_msg(aipc_probe_wait(s, &s->recv_count, 1, WAIT_MS), "no on_recv");
    free_probe(c);
    ck_assert_msg(aipc_probe_wait(s, &s->disconnected, 1, WAIT_MS), "no on_disconnected");
    ck_assert_int_eq(InterlockedCompareExchange(&g_never_calls, 0, 0), 0);
    ck_assert_int_eq(InterlockedCompareExchange(&g_bad_args, 0, 0), 0);
    ck_assert_msg(aipc_probe_exit(s, WAIT_MS), "Exit did not return");
    ASSERT_PROBE_CLEAN(s);
    free_probe(s);
}
END_TEST

/* A second server on a taken name: aipc_pipe_create_ex says why at once, on_create(false)
 * follows with the user pointer, and aipc_pipe_get_error gives the same code and the Win32
 * error behind it. */
START_TEST(events_name_taken)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "events-taken");
    aipc_probe *first = new_probe();
    start_probe(first, mine, PIPE_SERVER, name, 0, 0);
    aipc_probe *second = new_probe();
    ev_user u;
    aipc_pipe_events ev = full_events(&u);
    int rc = start_events(second, &u, mine, PIPE_SERVER, name, &ev);
    ck_assert_msg(rc == AIPC_EACCESS || rc == AIPC_EBUSY, "create_ex on a taken name: %s",
                  aipc_err_name(rc));
    ck_assert_msg(aipc_probe_wait(second, &second->created, 1, WAIT_MS), "no on_create");
    ck_assert_int_eq(aipc_probe_get(second, &second->create_failed), 1);
    uint32_t win32 = 0;
    ck_assert_int_eq(aipc_pipe_get_error(second->pipe, &win32), rc);
    ck_assert_msg(win32 != 0, "no Win32 error behind %s", aipc_err_name(rc));
    ck_assert_int_eq(InterlockedCompareExchange(&g_bad_args, 0, 0), 0);
    ASSERT_PROBE_CLEAN(second);
    free_probe(second);
    free_probe(first);
}
END_TEST

static Suite *p2p_events_suite(void)
{
    Suite *s = suite_create("p2p_events");
    TCase *t = tcase_create("events");
    tcase_add_checked_fixture(t, events_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, events_round_trip, 0, 4);
    tcase_add_loop_test(t, events_old_caller_gets_its_callbacks_only, 0, 2);
    tcase_add_loop_test(t, events_size_checked, 0, 2);
    tcase_add_loop_test(t, events_name_taken, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_events_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
