/*
 * test_gui_manual.c - the dispatch-function mode (AIPC_DISPATCH_MANUAL) in a console program:
 * no window, no message loop. The program waits on aipc_dispatcher_event() and calls
 * aipc_dispatcher_run(); every callback must run on that thread, only inside
 * aipc_dispatcher_run, one at a time, in order - against a real peer process (p2p_peer.exe) and
 * the real broker.
 *
 *   manual_pipe_in_order  (engine x role) numbered messages from the peer arrive complete and in
 *       order, OnSend for ours too; aipc_dispatcher_run called inside a callback runs nothing and
 *       returns 0; after Exit on the running thread nothing more runs.
 *   manual_bus_in_order   the same for a bus client.
 *   manual_on_other_thread  the dispatcher is made on the main thread and run by another one:
 *       the callbacks follow the thread that calls aipc_dispatcher_run.
 */
#include "gui_test.h"

#define MSGS 2000
#define SIZE 100
#define OUR_MSGS 50

typedef struct manual_check {
    aipc_dispatcher *d;
    DWORD run_thread;
    volatile LONG next, errors, wrong_thread, outside_run, nested_ran;
} manual_check;

/* Inside OnRecv: order, payload, thread, "inside aipc_dispatcher_run", and a nested
 * aipc_dispatcher_run that must run nothing. */
static void manual_hook(aipc_probe *p, const uint8_t *data, int size)
{
    manual_check *m = p->user;
    if (aipc_pattern_check(data, (size_t)size, (uint32_t)m->next) != -1)
        InterlockedIncrement(&m->errors);
    InterlockedIncrement(&m->next);
    if (GetCurrentThreadId() != m->run_thread)
        InterlockedIncrement(&m->wrong_thread);
    if (!gui_in_run)
        InterlockedIncrement(&m->outside_run);
    if (m->next % 100 == 1) {
        int ran = aipc_dispatcher_run(m->d, 0);
        if (ran != 0)
            InterlockedExchangeAdd(&m->nested_ran, ran);
    }
}

typedef struct probe_goal {
    aipc_probe *p;
    long long recv, sent, connected;
} probe_goal;

static int probe_reached(void *arg)
{
    probe_goal *g = arg;
    return aipc_probe_get(g->p, &g->p->recv_count) >= g->recv &&
           aipc_probe_get(g->p, &g->p->sent_count) >= g->sent &&
           aipc_probe_get(g->p, &g->p->connected) >= g->connected;
}

/* p2p_peer --mode send as the other end (a server peer with --once, waited for). */
static void spawn_sender(aipc_proc *peer, PipeType our_role, PipeImplType our_engine, const char *name)
{
    const char *engine = gui_engine_arg(our_engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (our_role == PIPE_SERVER) {
        ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode send --count %d --size %d --role client --engine %s --pipe %s",
                                         MSGS, SIZE, engine, name), AIPC_OK);
        return;
    }
    char ev_name[96];
    aipc_test_name(ev_name, sizeof ev_name, "manual-ready");
    HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
    ck_assert_ptr_nonnull(ready);
    ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode send --count %d --size %d --role server --once --engine %s --pipe %s --ready %s",
                                     MSGS, SIZE, engine, name, ev_name), AIPC_OK);
    HANDLE hs[2] = {ready, peer->process};
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, WAIT_MS);
    CloseHandle(ready);
    ck_assert_msg(w == WAIT_OBJECT_0, "the peer server did not become ready (%lu)", (unsigned long)w);
}

/* The whole pipe scenario, run by the calling thread (the dispatcher's runner). Returns NULL
 * or the first failure (for the thread variant, which cannot ck_assert). */
typedef struct pipe_run {
    aipc_dispatcher *d;
    PipeImplType engine;
    PipeType role;
    aipc_probe *p;
    manual_check m;
    const char *failure;
    char detail[160];
} pipe_run;

#define RUN_FAIL(r, what)               \
    do {                                \
        (r)->failure = (what);          \
        return;                         \
    } while (0)

/* Steps after Create: connect, exchange, Exit on this thread, no callbacks afterwards. */
static void pipe_scenario(pipe_run *r)
{
    aipc_probe *p = r->p;
    probe_goal g = {p, 0, 0, 1};
    if (!gui_manual_run(r->d, probe_reached, &g, WAIT_MS))
        RUN_FAIL(r, "no OnConnected");
    uint8_t buf[64];
    for (uint32_t i = 0; i < OUR_MSGS; i++) {
        aipc_pattern_fill(buf, sizeof buf, 1000000 + i);
        if (aipc_pipe_send(p->pipe, buf, sizeof buf) != AIPC_OK)
            RUN_FAIL(r, "aipc_pipe_send failed");
    }
    g.recv = MSGS;
    g.sent = OUR_MSGS;
    if (!gui_manual_run(r->d, probe_reached, &g, 4 * WAIT_MS)) {
        snprintf(r->detail, sizeof r->detail, "recv %lld/%d sent %lld/%d",
                 aipc_probe_get(p, &p->recv_count), MSGS, aipc_probe_get(p, &p->sent_count), OUR_MSGS);
        RUN_FAIL(r, "not every message / OnSend arrived");
    }
    aipc_pipe_exit(p->pipe);   /* on the dispatcher's running thread: never waits */
    InterlockedExchange(&p->exited, 1);
    aipc_dispatcher_run(r->d, 0);   /* whatever was still queued for it: must not run */
}

static DWORD WINAPI pipe_scenario_thread(void *arg)
{
    pipe_run *r = arg;
    r->m.run_thread = GetCurrentThreadId();
    pipe_scenario(r);
    return 0;
}

/* _i: bit 1 = engine, bit 0 = role; bit 2 = run the dispatcher on another thread. */
static void run_pipe_case(int i)
{
    static pipe_run r;
    memset(&r, 0, sizeof r);
    r.engine = (i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    r.role = (i & 1) ? PIPE_CLIENT : PIPE_SERVER;
    int other_thread = (i & 4) != 0;
    fprintf(stdout, "manual pipe: engine %s, role %s, run on %s thread\n", gui_engine_arg(r.engine),
            gui_role_arg(r.role), other_thread ? "another" : "the creating");
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &r.d), AIPC_OK);
    gui_left.disp = &r.d;
    ck_assert_ptr_nonnull(aipc_dispatcher_event(r.d));
    r.m.d = r.d;
    r.m.run_thread = GetCurrentThreadId();
    r.p = aipc_probe_new();
    gui_left.probe = &r.p;
    r.p->hook = manual_hook;
    r.p->user = &r.m;
    char name[96];
    wchar_t wname[128];
    aipc_test_name(name, sizeof name, "manual");
    aipc_test_wname(wname, 128, name);
    aipc_proc peer;
    if (r.role == PIPE_CLIENT)
        spawn_sender(&peer, r.role, r.engine, name);
    ck_assert_int_eq(aipc_pipe_new(r.engine, &r.p->pipe), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_set_dispatcher(r.p->pipe, r.d), AIPC_OK);
    ck_assert(aipc_pipe_create(r.p->pipe, wname, r.role, &r.p->d));
    if (r.role == PIPE_SERVER)
        spawn_sender(&peer, r.role, r.engine, name);

    gui_step_ms(7 * WAIT_MS, "manual dispatcher: exchange, Exit");
    if (other_thread) {
        HANDLE t = CreateThread(NULL, 0, pipe_scenario_thread, &r, 0, NULL);
        ck_assert_ptr_nonnull(t);
        ck_assert(aipc_test_wait(t, 6 * WAIT_MS));
        CloseHandle(t);
    } else {
        pipe_scenario(&r);
    }
    ck_assert_msg(r.failure == NULL, "%s %s", r.failure ? r.failure : "", r.detail);
    aipc_probe *p = r.p;
    ck_assert_msg(p->io_thread == r.m.run_thread, "callbacks on thread %lu, the runner is %lu",
                  (unsigned long)p->io_thread, (unsigned long)r.m.run_thread);
    ck_assert_int_eq(r.m.wrong_thread, 0);
    ck_assert_int_eq(r.m.outside_run, 0);
    ck_assert_int_eq(r.m.errors, 0);
    ck_assert_int_eq(r.m.next, MSGS);
    ck_assert_msg(r.m.nested_ran == 0, "aipc_dispatcher_run inside a callback ran %ld callbacks",
                  (long)r.m.nested_ran);
    ck_assert_str_eq(p->error, "");

    gui_step("peer exits after the disconnect");
    ck_assert_int_eq(aipc_proc_wait(&peer, WAIT_MS), AIPC_OK);
    aipc_proc_close(&peer);
    /* the queue after the peer left: nothing of the exited pipe may run */
    InterlockedIncrement(&gui_in_run);
    aipc_dispatcher_run(r.d, 0);
    InterlockedDecrement(&gui_in_run);
    ck_assert_msg(p->late_callbacks == 0, "%ld callbacks after Exit returned", (long)p->late_callbacks);
    gui_step("Release");
    r.p = NULL;
    ck_assert(aipc_probe_free(p, WAIT_MS));
    aipc_dispatcher_free(r.d);
    r.d = NULL;
    gui_step_done();
}

START_TEST(manual_pipe_in_order)
{
    run_pipe_case(_i);
}
END_TEST

START_TEST(manual_on_other_thread)
{
    run_pipe_case(4 | _i);
}
END_TEST

START_TEST(manual_bus_in_order)
{
    static gui_busrec r;
    memset(&r, 0, sizeof r);
    r.want_thread = GetCurrentThreadId();
    r.check_loop = 2;
    static aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &d), AIPC_OK);
    gui_left.disp = &d;
    gui_bus_start("gui-manual", "gui-manual-pub", 0);
    gui_step("subscriber connects");
    gui_left.bus = &r.bus;
    ck_assert_int_eq(gui_busrec_connect(&r, gui_broker.wpipe, "gui-manual-sub", "gui/manual", d, 0), AIPC_OK);
    ck_assert(gui_manual_run(d, gui_busrec_connected, &r, WAIT_MS));
    ck_assert_int_eq(gui_busrec_ping(&r), AIPC_OK);
    ck_assert(gui_manual_run(d, gui_busrec_has_pong, &r, WAIT_MS));
    gui_step_ms(5 * WAIT_MS, "%d numbered publications", MSGS);
    ck_assert_int_eq(gui_publish_numbered(gui_pub.bus, "gui/manual", 0, MSGS, SIZE), AIPC_OK);
    gui_busrec_goal goal = {&r, MSGS};
    ck_assert_msg(gui_manual_run(d, gui_busrec_all_in, &goal, 4 * WAIT_MS), "%ld of %d arrived",
                  (long)r.msgs, MSGS);
    ck_assert_int_eq(r.msgs, MSGS);
    ck_assert_int_eq(r.dropped, 0);
    ck_assert_int_eq(r.order_errors, 0);
    ck_assert_int_eq(r.gaps, 0);
    ck_assert_int_eq(r.data_errors, 0);
    ck_assert_int_eq(r.thread_errors, 0);
    ck_assert_int_eq(r.outside_loop, 0);
    ck_assert_int_eq(r.max_inside, 1);
    gui_step("aipc_bus_close on the running thread");
    aipc_bus_close(r.bus);
    r.bus = NULL;
    InterlockedExchange(&r.closed_returned, 1);
    ck_assert_int_eq(r.closed, 1);
    ck_assert_int_eq(r.closed_thread, r.want_thread);
    ck_assert_int_eq(gui_publish_numbered(gui_pub.bus, "gui/manual", MSGS, 10, SIZE), AIPC_OK);
    ck_assert(bt_sync(&gui_pub, WAIT_MS));
    InterlockedIncrement(&gui_in_run);
    aipc_dispatcher_run(d, 0);
    InterlockedDecrement(&gui_in_run);
    ck_assert_int_eq(r.late, 0);
    ck_assert_int_eq(r.after_close_return, 0);
    aipc_dispatcher_free(d);
    d = NULL;
    gui_step_done();
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_manual");
    TCase *t = tcase_create("manual");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, manual_pipe_in_order, 0, 4);
    tcase_add_loop_test(t, manual_on_other_thread, 0, 2);
    tcase_add_test(t, manual_bus_in_order);
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
