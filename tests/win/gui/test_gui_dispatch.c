/*
 * test_gui_dispatch.c - UI-thread mode (AIPC_DISPATCH_WINDOW) with a real message loop, against
 * real peer processes (p2p_peer.exe) and the real broker (asyncipc-broker.exe).
 *
 *   window_pipe_in_order  (engine x role) every callback of a pipe runs on the thread that made
 *       the dispatcher, only inside its message loop (gui_pump), never nested, and the numbered
 *       messages the peer sends (aipc_pattern, seed = 0, 1, 2, ...) arrive complete and in order;
 *       OnSend for our own messages too. Exit on the UI thread never waits; nothing after it.
 *   window_bus_in_order   the same for a bus client: numbered publications from another client.
 *   window_modal_dialog_loop  (engine) the callbacks also run inside a modal loop that is not
 *       ours (a dialog box), in order.
 *   window_stall_bounded  (PIPE_ASYNC, PIPE_OVERLAPPED, bus, bus with drops) a fast sender
 *       while the UI thread stops pumping for STALL_MS (an alertable SleepEx: no callback may
 *       run in it either; for the bus, until the broker has routed everything published).
 *       During the stall aipc_dispatcher_queued is sampled by another thread; the bytes held
 *       must stay within the documented bound (see stall_bound below), and must have reached
 *       at least half of it (the stall really backed data up). Afterwards nothing is lost: a
 *       pipe delivers every sequence number in order; the bus delivers in order and whatever
 *       is missing was reported by on_dropped (messages + dropped == published, missing numbers == dropped;
 *       publishing 16 MiB, more than the broker's 8 MiB queue for us, there must be drops).
 */
#include "gui_test.h"

#define ORDER_MSGS 2000
#define ORDER_SIZE 100
#define OUR_MSGS 50

/* ---- checking numbered messages through an aipc_probe hook --------------------------------- */
typedef struct order {
    DWORD ui_thread;
    volatile LONG next, errors, wrong_thread, outside_loop;
    HWND end_dialog_at_goal;    /* a modal dialog to end once `goal` messages arrived */
    LONG goal;
    volatile LONG in_dialog, recv_in_dialog;
} order;

/* Inside OnRecv (the probe recorded it already): seed == next, payload intact, UI thread,
 * inside the message loop. */
static void order_hook(aipc_probe *p, const uint8_t *data, int size)
{
    order *o = p->user;
    if (aipc_pattern_check(data, (size_t)size, (uint32_t)o->next) != -1)
        InterlockedIncrement(&o->errors);
    InterlockedIncrement(&o->next);
    if (GetCurrentThreadId() != o->ui_thread)
        InterlockedIncrement(&o->wrong_thread);
    if (!gui_pumping && !o->in_dialog)
        InterlockedIncrement(&o->outside_loop);
    if (o->in_dialog)
        InterlockedIncrement(&o->recv_in_dialog);
    if (o->end_dialog_at_goal && o->next == o->goal)
        EndDialog(o->end_dialog_at_goal, 1);
}

typedef struct probe_goal {
    aipc_probe *p;
    long long recv, sent, connected;
} probe_goal;

/* Predicate for gui_pump: the probe reached every target (read on the UI thread, where its
 * callbacks run). */
static int probe_reached(void *arg)
{
    probe_goal *g = arg;
    return aipc_probe_get(g->p, &g->p->recv_count) >= g->recv &&
           aipc_probe_get(g->p, &g->p->sent_count) >= g->sent &&
           aipc_probe_get(g->p, &g->p->connected) >= g->connected;
}

/* aipc_pipe_new + options + dispatcher + create, the probe as delegate. */
static void start_dispatched_probe(aipc_probe *p, aipc_dispatcher *d, PipeImplType engine,
                                   PipeType role, const char *name, uint64_t max_dispatch)
{
    wchar_t wname[128];
    aipc_test_wname(wname, 128, name);
    ck_assert_int_eq(aipc_pipe_new(engine, &p->pipe), AIPC_OK);
    if (max_dispatch)
        ck_assert_int_eq(aipc_pipe_set_option(p->pipe, AIPC_PIPE_OPT_MAX_DISPATCH, max_dispatch), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_set_dispatcher(p->pipe, d), AIPC_OK);
    ck_assert(aipc_pipe_create(p->pipe, wname, role, &p->d));
    ck_assert_int_eq(aipc_pipe_set_dispatcher(p->pipe, d), AIPC_ESTATE);   /* after Create */
}

/* Starts p2p_peer --mode send (count x size numbered messages) as the other end; a server peer
 * gets --once and is waited for. */
static void spawn_sender(aipc_proc *peer, PipeType our_role, PipeImplType our_engine,
                         const char *name, long count, long size)
{
    const char *engine = gui_engine_arg(our_engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (our_role == PIPE_SERVER) {
        ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode send --count %ld --size %ld --role client --engine %s --pipe %s",
                                         count, size, engine, name), AIPC_OK);
        return;
    }
    char ev_name[96];
    aipc_test_name(ev_name, sizeof ev_name, "disp-ready");
    HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
    ck_assert_ptr_nonnull(ready);
    ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode send --count %ld --size %ld --role server --once --engine %s --pipe %s --ready %s",
                                     count, size, engine, name, ev_name), AIPC_OK);
    gui_step("peer server ready");
    HANDLE hs[2] = {ready, peer->process};
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, WAIT_MS);
    CloseHandle(ready);
    ck_assert_msg(w == WAIT_OBJECT_0, "the peer server did not become ready (%lu)", (unsigned long)w);
}

/* Exit on the UI thread (the dispatcher's thread: must not wait), then the peer ends (it sees
 * the disconnect) while the loop runs: no callback of the probe may run after Exit. */
static void exit_on_ui_thread(aipc_probe *p, aipc_proc *peer)
{
    gui_step("Exit on the dispatcher's thread");
    aipc_pipe_exit(p->pipe);
    InterlockedExchange(&p->exited, 1);
    gui_step("peer exits after the disconnect");
    ck_assert_msg(gui_pump(NULL, NULL, peer->process, WAIT_MS, NULL), "peer still running");
    ck_assert_int_eq(aipc_proc_wait(peer, 0), AIPC_OK);
    aipc_proc_close(peer);
    gui_pump(NULL, NULL, NULL, 0, NULL);
    ck_assert_msg(p->late_callbacks == 0, "%ld callbacks after Exit returned", (long)p->late_callbacks);
}

static void release_probe(aipc_probe **p)
{
    gui_step("Release");
    aipc_probe *q = *p;
    *p = NULL;
    ck_assert_msg(aipc_probe_free(q, WAIT_MS), "Release did not return");
}

/* _i: bit 1 = engine, bit 0 = our role (server, client). */
START_TEST(window_pipe_in_order)
{
    PipeImplType engine = (_i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeType role = (_i & 1) ? PIPE_CLIENT : PIPE_SERVER;
    fprintf(stdout, "window_pipe_in_order: engine %s, role %s\n", gui_engine_arg(engine), gui_role_arg(role));
    static order o;
    memset(&o, 0, sizeof o);
    o.ui_thread = GetCurrentThreadId();
    static aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_WINDOW, &d), AIPC_OK);
    gui_left.disp = &d;
    ck_assert_ptr_null(aipc_dispatcher_event(d));
    static aipc_probe *p;
    p = aipc_probe_new();
    gui_left.probe = &p;
    p->hook = order_hook;
    p->user = &o;
    char name[96];
    aipc_test_name(name, sizeof name, "disp");
    aipc_proc peer;
    if (role == PIPE_CLIENT)
        spawn_sender(&peer, role, engine, name, ORDER_MSGS, ORDER_SIZE);
    start_dispatched_probe(p, d, engine, role, name, 0);
    if (role == PIPE_SERVER)
        spawn_sender(&peer, role, engine, name, ORDER_MSGS, ORDER_SIZE);
    /* no callback runs before the loop pumps: the dispatcher's thread is busy here */
    ck_assert_int_eq(aipc_probe_get(p, &p->created), 0);

    gui_step("connect");
    probe_goal g = {p, 0, 0, 1};
    ck_assert(gui_pump(probe_reached, &g, NULL, WAIT_MS, NULL));
    uint8_t buf[64];
    for (uint32_t i = 0; i < OUR_MSGS; i++) {
        aipc_pattern_fill(buf, sizeof buf, 1000000 + i);
        ck_assert_int_eq(aipc_pipe_send(p->pipe, buf, sizeof buf), AIPC_OK);
    }
    gui_step_ms(5 * WAIT_MS, "%d numbered messages in, %d OnSend", ORDER_MSGS, OUR_MSGS);
    g.recv = ORDER_MSGS;
    g.sent = OUR_MSGS;
    ck_assert_msg(gui_pump(probe_reached, &g, NULL, 4 * WAIT_MS, NULL), "recv %lld/%d, sent %lld/%d",
                  aipc_probe_get(p, &p->recv_count), ORDER_MSGS, aipc_probe_get(p, &p->sent_count), OUR_MSGS);
    ck_assert_msg(p->io_thread == o.ui_thread, "callbacks ran on thread %lu, not the UI thread %lu",
                  (unsigned long)p->io_thread, (unsigned long)o.ui_thread);
    ck_assert_int_eq(o.wrong_thread, 0);
    ck_assert_int_eq(o.outside_loop, 0);
    ck_assert_int_eq(o.errors, 0);
    ck_assert_int_eq(o.next, ORDER_MSGS);
    ck_assert_str_eq(p->error, "");
    ck_assert_int_eq(aipc_probe_event_pos(p, 'C'), 0);
    ck_assert_int_eq(aipc_probe_event_pos(p, 'O'), 1);

    exit_on_ui_thread(p, &peer);
    ck_assert_str_eq(p->error, "");
    release_probe(&p);
    aipc_dispatcher_free(d);
    d = NULL;
    gui_step_done();
}
END_TEST

START_TEST(window_bus_in_order)
{
    static gui_busrec r;
    memset(&r, 0, sizeof r);
    r.want_thread = GetCurrentThreadId();
    r.check_loop = 1;
    static aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_WINDOW, &d), AIPC_OK);
    gui_left.disp = &d;
    gui_bus_start("gui-disp", "gui-disp-pub", 0);
    gui_step("subscriber (UI thread dispatcher) connects");
    gui_left.bus = &r.bus;
    ck_assert_int_eq(gui_busrec_connect(&r, gui_broker.wpipe, "gui-disp-sub", "gui/order", d, 0), AIPC_OK);
    ck_assert(gui_pump(gui_busrec_connected, &r, NULL, WAIT_MS, NULL));
    ck_assert_int_eq(gui_busrec_ping(&r), AIPC_OK);
    ck_assert(gui_pump(gui_busrec_has_pong, &r, NULL, WAIT_MS, NULL));

    gui_step_ms(5 * WAIT_MS, "%d numbered publications", ORDER_MSGS);
    ck_assert_int_eq(gui_publish_numbered(gui_pub.bus, "gui/order", 0, ORDER_MSGS, ORDER_SIZE), AIPC_OK);
    gui_busrec_goal goal = {&r, ORDER_MSGS};
    ck_assert_msg(gui_pump(gui_busrec_all_in, &goal, NULL, 4 * WAIT_MS, NULL), "%ld of %d arrived",
                  (long)r.msgs, ORDER_MSGS);
    ck_assert_int_eq(r.msgs, ORDER_MSGS);
    ck_assert_int_eq(r.dropped, 0);   /* 200 KB: far below the broker's queue bound */
    ck_assert_int_eq(r.order_errors, 0);
    ck_assert_int_eq(r.gaps, 0);
    ck_assert_int_eq(r.data_errors, 0);
    ck_assert_int_eq(r.thread_errors, 0);
    ck_assert_int_eq(r.outside_loop, 0);
    ck_assert_int_eq(r.max_inside, 1);

    gui_step("aipc_bus_close on the dispatcher's thread");
    aipc_bus_close(r.bus);
    r.bus = NULL;
    InterlockedExchange(&r.closed_returned, 1);
    ck_assert_int_eq(r.closed, 1);                 /* on_state(CLOSED) before close returned */
    ck_assert_int_eq(r.closed_thread, r.want_thread);
    ck_assert_int_eq(gui_publish_numbered(gui_pub.bus, "gui/order", ORDER_MSGS, 10, ORDER_SIZE), AIPC_OK);
    ck_assert(bt_sync(&gui_pub, WAIT_MS));
    gui_pump(NULL, NULL, NULL, 0, NULL);
    ck_assert_int_eq(r.late, 0);
    ck_assert_int_eq(r.after_close_return, 0);
    aipc_dispatcher_free(d);
    d = NULL;
    gui_step_done();
}
END_TEST

/* ---- a modal loop ---------------------------------------------------------------------------- */
/* The dialog: remembers itself for the hook, ends with 0 if the goal is not reached in time. */
static INT_PTR CALLBACK modal_proc(HWND dlg, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_INITDIALOG) {
        order *o = (order *)lp;
        o->end_dialog_at_goal = dlg;
        SetTimer(dlg, 1, 4 * WAIT_MS, NULL);
        return TRUE;
    }
    if (msg == WM_TIMER) {
        EndDialog(dlg, 0);
        return TRUE;
    }
    return FALSE;
}

/* _i: engine. The UI thread makes the dispatcher, starts the pipe (client; the peer server
 * sends ORDER_MSGS numbered messages) and, without pumping first, runs a modal dialog
 * (DialogBoxIndirectParam: the dialog manager's own loop, not ours): connection and messages
 * must be delivered inside that modal loop, in order, and the hook ends the dialog at the goal. */
START_TEST(window_modal_dialog_loop)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    fprintf(stdout, "window_modal_dialog_loop: engine %s\n", gui_engine_arg(engine));
    static order o;
    memset(&o, 0, sizeof o);
    o.ui_thread = GetCurrentThreadId();
    o.goal = ORDER_MSGS;
    static aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_WINDOW, &d), AIPC_OK);
    gui_left.disp = &d;
    static aipc_probe *p;
    p = aipc_probe_new();
    gui_left.probe = &p;
    p->hook = order_hook;
    p->user = &o;
    char name[96];
    aipc_test_name(name, sizeof name, "modal");
    aipc_proc peer;
    spawn_sender(&peer, PIPE_CLIENT, engine, name, ORDER_MSGS, ORDER_SIZE);
    start_dispatched_probe(p, d, engine, PIPE_CLIENT, name, 0);

    /* an empty dialog template (no controls), DWORD-aligned as DialogBoxIndirect wants */
    static struct {
        DLGTEMPLATE t;
        WORD menu, cls, title;
    } __attribute__((aligned(4))) tpl;
    memset(&tpl, 0, sizeof tpl);
    tpl.t.style = WS_POPUP | WS_CAPTION | DS_MODALFRAME;
    tpl.t.cx = 120;
    tpl.t.cy = 40;
    gui_step_ms(5 * WAIT_MS, "modal dialog until %d messages arrived", ORDER_MSGS);
    InterlockedExchange(&o.in_dialog, 1);
    INT_PTR r = DialogBoxIndirectParamW(GetModuleHandleW(NULL), &tpl.t, NULL, modal_proc, (LPARAM)&o);
    InterlockedExchange(&o.in_dialog, 0);
    o.end_dialog_at_goal = NULL;
    ck_assert_msg(r == 1, "the dialog ended with %lld (0: timed out; -1: no dialog): %ld of %d messages",
                  (long long)r, (long)o.next, ORDER_MSGS);
    ck_assert_int_eq(o.recv_in_dialog, ORDER_MSGS);   /* every one inside the modal loop */
    ck_assert_int_eq(aipc_probe_get(p, &p->connected), 1);
    ck_assert_int_eq(o.errors, 0);
    ck_assert_int_eq(o.wrong_thread, 0);
    ck_assert_int_eq(o.outside_loop, 0);
    ck_assert_str_eq(p->error, "");
    exit_on_ui_thread(p, &peer);
    release_probe(&p);
    aipc_dispatcher_free(d);
    d = NULL;
    gui_step_done();
}
END_TEST

/* ---- the stalled UI thread ------------------------------------------------------------------ */
#define STALL_MS 3000
#define STALL_SIZE 1024
#define STALL_MAX_DISPATCH (1024u * 1024u)   /* the per-object bound set for these tests */
#define SDK_READ_SIZE (256u * 1024u)         /* one read of the SDK (pipe and bus client) */

/*
 * The bound asserted on aipc_dispatcher_queued's bytes while the UI thread does not pump:
 *   max_dispatch + one read's worth,
 * where one read's worth = the messages one read can complete: a read of SDK_READ_SIZE bytes
 * (AIPC_PIPE_BUFSIZE / BUS_READ_SIZE in sdk/src/win, 256 KiB) holds at most
 * SDK_READ_SIZE / (frame bytes) whole frames, plus one frame begun in an earlier read and
 * completed by this one, each charged its payload plus AIPC_DISPATCH_ITEM_OVERHEAD, plus the
 * bytes of that frame beyond the read. The pipe stops reading once the queue is beyond
 * max_dispatch, so the queue can exceed it by what the last read completed, not more.
 * `extra` is what one message carries beyond its payload (a bus message: topic, sender name,
 * meta header; charged generously: 512 bytes).
 */
static uint64_t stall_bound(uint64_t payload, uint64_t extra)
{
    uint64_t frame = payload + 8 + extra;
    uint64_t per_read = SDK_READ_SIZE / frame + 1;
    return STALL_MAX_DISPATCH + per_read * (payload + extra + AIPC_DISPATCH_ITEM_OVERHEAD) + frame;
}

typedef struct sampler {
    aipc_dispatcher *d;
    HANDLE stop;
    uint64_t peak_bytes, peak_count;
    long samples, errors;
} sampler;

/* Samples the dispatcher's queue every 2 ms until stopped (a measurement, not a sync). */
static DWORD WINAPI sample_thread(void *arg)
{
    sampler *s = arg;
    do {
        uint64_t count = 0, bytes = 0;
        if (aipc_dispatcher_queued(s->d, &count, &bytes) != AIPC_OK)
            s->errors++;
        if (bytes > s->peak_bytes)
            s->peak_bytes = bytes;
        if (count > s->peak_count)
            s->peak_count = count;
        s->samples++;
    } while (WaitForSingleObject(s->stop, 2) == WAIT_TIMEOUT);
    return 0;
}

/* Stalls the UI thread for STALL_MS (alertable: nothing may run in it) while `s` samples; with
 * `pub`, the stall goes on until a ping through that (I/O thread) client came back, i.e. until
 * the broker has routed - or dropped - everything published before. */
static void stall(sampler *s, volatile long long *callbacks_a, volatile LONG *callbacks_b,
                  bt_client *pub)
{
    s->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE t = CreateThread(NULL, 0, sample_thread, s, 0, NULL);
    ck_assert_ptr_nonnull(t);
    long long before = callbacks_a ? *callbacks_a : *callbacks_b;
    gui_step("UI thread stalled for %d ms", STALL_MS);
    SleepEx(STALL_MS, TRUE);   /* deliberate: the UI thread stops pumping */
    int synced = !pub || bt_sync(pub, WAIT_MS);
    long long after = callbacks_a ? *callbacks_a : *callbacks_b;
    uint64_t bytes = 0;
    aipc_dispatcher_queued(s->d, NULL, &bytes);
    SetEvent(s->stop);
    ck_assert(aipc_test_wait(t, WAIT_MS));
    CloseHandle(t);
    CloseHandle(s->stop);
    if (bytes > s->peak_bytes)
        s->peak_bytes = bytes;
    ck_assert_msg(after == before, "%lld callbacks ran while the UI thread was not pumping",
                  after - before);
    ck_assert_int_eq(s->errors, 0);
    ck_assert_msg(synced, "no ping round trip through the publisher during the stall");
    fprintf(stdout, "  stall: peak %llu bytes in %llu queued callbacks (%ld samples), at the end %llu bytes\n",
            (unsigned long long)s->peak_bytes, (unsigned long long)s->peak_count, s->samples,
            (unsigned long long)bytes);
}

#define STALL_PIPE_MSGS 8192   /* 8 MiB: far more than the bound and the pipe's buffers */
#define STALL_BUS_MSGS 4096    /* 4 MiB: within the broker's default max_queue_bytes (8 MiB) */
#define STALL_DROP_MSGS 16384  /* 16 MiB: beyond it, so the broker must drop for us */

/* _i: 0 PIPE_ASYNC, 1 PIPE_OVERLAPPED (we are the client; the peer server sends), 2 bus,
 * 3 bus publishing more than the broker queues for a stalled subscriber (drops reported). */
START_TEST(window_stall_bounded)
{
    static aipc_dispatcher *d;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_WINDOW, &d), AIPC_OK);
    gui_left.disp = &d;
    static sampler s;
    memset(&s, 0, sizeof s);
    s.d = d;
    if (_i < 2) {
        PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
        fprintf(stdout, "window_stall_bounded: pipe, engine %s\n", gui_engine_arg(engine));
        static order o;
        memset(&o, 0, sizeof o);
        o.ui_thread = GetCurrentThreadId();
        static aipc_probe *p;
        p = aipc_probe_new();
        gui_left.probe = &p;
        p->hook = order_hook;
        p->user = &o;
        char name[96];
        aipc_test_name(name, sizeof name, "stall");
        aipc_proc peer;
        spawn_sender(&peer, PIPE_CLIENT, engine, name, STALL_PIPE_MSGS, STALL_SIZE);
        start_dispatched_probe(p, d, engine, PIPE_CLIENT, name, STALL_MAX_DISPATCH);
        gui_step("connect, first messages");
        probe_goal g = {p, 100, 0, 1};
        ck_assert(gui_pump(probe_reached, &g, NULL, WAIT_MS, NULL));

        stall(&s, &p->recv_count, NULL, NULL);
        uint64_t bound = stall_bound(STALL_SIZE, 0);
        ck_assert_msg(s.peak_bytes <= bound, "dispatcher held %llu bytes during the stall; bound %llu",
                      (unsigned long long)s.peak_bytes, (unsigned long long)bound);
        ck_assert_msg(s.peak_bytes >= STALL_MAX_DISPATCH / 2,
                      "only %llu bytes queued during the stall: the sender did not back up",
                      (unsigned long long)s.peak_bytes);

        gui_step_ms(5 * WAIT_MS, "the rest after the stall: all %d in order", STALL_PIPE_MSGS);
        g.recv = STALL_PIPE_MSGS;
        ck_assert_msg(gui_pump(probe_reached, &g, NULL, 4 * WAIT_MS, NULL), "recv %lld of %d",
                      aipc_probe_get(p, &p->recv_count), STALL_PIPE_MSGS);
        ck_assert_int_eq(o.errors, 0);
        ck_assert_int_eq(o.next, STALL_PIPE_MSGS);
        ck_assert_int_eq(o.wrong_thread, 0);
        ck_assert_int_eq(o.outside_loop, 0);
        ck_assert_str_eq(p->error, "");
        exit_on_ui_thread(p, &peer);
        release_probe(&p);
    } else {
        int drops = _i == 3;
        long long n = drops ? STALL_DROP_MSGS : STALL_BUS_MSGS;
        fprintf(stdout, "window_stall_bounded: bus, %lld messages%s\n", n,
                drops ? " (more than the broker keeps for us)" : "");
        static gui_busrec r;
        memset(&r, 0, sizeof r);
        r.want_thread = GetCurrentThreadId();
        r.check_loop = 1;
        gui_bus_start("gui-stall", "gui-stall-pub", drops ? 64u * 1024u * 1024u : 0);
        gui_left.bus = &r.bus;
        ck_assert_int_eq(gui_busrec_connect(&r, gui_broker.wpipe, "gui-stall-sub", "gui/stall", d,
                                            STALL_MAX_DISPATCH), AIPC_OK);
        gui_step("subscriber connects");
        ck_assert(gui_pump(gui_busrec_connected, &r, NULL, WAIT_MS, NULL));
        ck_assert_int_eq(gui_busrec_ping(&r), AIPC_OK);
        ck_assert(gui_pump(gui_busrec_has_pong, &r, NULL, WAIT_MS, NULL));

        ck_assert_int_eq(gui_publish_numbered(gui_pub.bus, "gui/stall", 0, n, STALL_SIZE), AIPC_OK);
        stall(&s, NULL, &r.msgs, &gui_pub);
        uint64_t bound = stall_bound(STALL_SIZE, 512);
        ck_assert_msg(s.peak_bytes <= bound, "dispatcher held %llu bytes during the stall; bound %llu",
                      (unsigned long long)s.peak_bytes, (unsigned long long)bound);
        ck_assert_msg(s.peak_bytes >= STALL_MAX_DISPATCH / 2,
                      "only %llu bytes queued during the stall: the publisher did not back up",
                      (unsigned long long)s.peak_bytes);

        gui_step_ms(5 * WAIT_MS, "the rest after the stall");
        gui_busrec_goal goal = {&r, n};
        ck_assert_msg(gui_pump(gui_busrec_all_in, &goal, NULL, 4 * WAIT_MS, NULL),
                      "%ld arrived + %ld dropped of %lld", (long)r.msgs, (long)r.dropped, n);
        fprintf(stdout, "  bus: %ld arrived, %ld dropped (reported)\n", (long)r.msgs, (long)r.dropped);
        ck_assert_int_eq((long long)r.msgs + r.dropped, n);
        if (drops)   /* 16 MiB routed while we held ~1 MiB: the broker's 8 MiB queue overflowed */
            ck_assert_int_gt(r.dropped, 0);
        /* the numbers missing - between those that arrived, and after the last - were dropped */
        ck_assert_int_eq(r.gaps + (n - r.next_seq), r.dropped);
        ck_assert_int_eq(r.order_errors, 0);
        ck_assert_int_eq(r.data_errors, 0);
        ck_assert_int_eq(r.thread_errors, 0);
        ck_assert_int_eq(r.outside_loop, 0);
        ck_assert_int_eq(r.max_inside, 1);
        gui_step("aipc_bus_close");
        aipc_bus_close(r.bus);
        r.bus = NULL;
    }
    aipc_dispatcher_free(d);
    d = NULL;
    gui_step_done();
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_dispatch");
    TCase *t = tcase_create("window");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, window_pipe_in_order, 0, 4);
    tcase_add_test(t, window_bus_in_order);
    tcase_add_loop_test(t, window_modal_dialog_loop, 0, 2);
    tcase_add_loop_test(t, window_stall_bounded, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
