/*
 * test_p2p_engines.c - point-to-point data path between two real processes: every engine/role
 * pair, payload sizes from 0 B to 16 MiB byte-exact, sizes at the data path's thresholds mixed with
 * small messages in one stream, 100,000 small messages in order, Send from
 * several threads at once, Send before the peer connects.
 *
 * This suite is one end (an aipc_probe); tests/win/p2p/p2p_peer.exe, started with
 * CreateProcess, is the other.
 */
#include "p2p_common.h"

/* ---- every engine/role pair --------------------------------------------------------------- */

/* _i bit 0: this side's engine, bit 1: the peer's engine, bit 2: this side is the client. */
START_TEST(engine_role_pairs)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeImplType theirs = (_i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int i_am_client = (_i & 4) != 0;
    char name[96];
    aipc_test_name(name, sizeof name, "pair");
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;

    if (!i_am_client) {
        start_probe(p, mine, PIPE_SERVER, name, 0, 0);
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                         "--mode echo --greet --role client --engine %s --pipe %s "
                                         "--connect-timeout 20000",
                                         engine_arg(theirs), name), AIPC_OK);
    } else {
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                         "--mode echo --greet --once --role server --engine %s --pipe %s",
                                         engine_arg(theirs), name), AIPC_OK);
        start_probe(p, mine, PIPE_CLIENT, name, 20000, 0);
    }
    WAIT_FOR(p, connected, 1, "connect");
    ck_assert_int_lt(aipc_probe_event_pos(p, 'C'), aipc_probe_event_pos(p, 'O'));

    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char m[64];
        int n = snprintf(m, sizeof m, "message %d from the %s", i, i_am_client ? "client" : "server");
        ck_assert_int_eq(aipc_probe_send(p, m, (size_t)n), AIPC_OK);
    }
    WAIT_FOR(p, recv_count, N + 1, "greeting + echoes");
    WAIT_FOR(p, sent_count, N, "OnSend per message");
    ck_assert_int_eq((int)p->nmsgs, N + 1);
    char greet[64];
    snprintf(greet, sizeof greet, "greet:%lu", (unsigned long)peer.pid);
    ck_assert_int_eq(p->msgs[0].size, (int)strlen(greet));
    ck_assert_mem_eq(p->msgs[0].data, greet, strlen(greet));
    for (int i = 0; i < N; i++) {
        char m[64];
        int n = snprintf(m, sizeof m, "message %d from the %s", i, i_am_client ? "client" : "server");
        ck_assert_int_eq(p->msgs[i + 1].size, n);
        ck_assert_mem_eq(p->msgs[i + 1].data, m, (size_t)n);
    }
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);   /* the peer saw OnCreate, OnConnected and our messages in order */
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- payload sizes ------------------------------------------------------------------------ */

static const size_t k_sizes[] = {0, 1, 4095, 4096, 4097, 65536 + 1, 1u << 20, 16u << 20};
#define NSIZES (sizeof k_sizes / sizeof k_sizes[0])

/* Every size, whole and byte-exact, through an echo peer (so both directions carry it).
 * _i bit 0: this side's engine, bit 1: the peer's. */
START_TEST(payload_sizes_byte_exact)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeImplType theirs = (_i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "sizes");
    aipc_probe *p = new_probe();
    p->keep = 1;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(theirs), name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "connect");

    uint8_t *buf = malloc(16u << 20);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < NSIZES; i++) {
        aipc_pattern_fill(buf, k_sizes[i], (uint32_t)(1000 + i));
        ck_assert_int_eq(aipc_probe_send(p, buf, k_sizes[i]), AIPC_OK);
    }
    static const char nuls[] = "\0a\0\0b\0";   /* text-like message full of NULs */
    ck_assert_int_eq(aipc_probe_send(p, nuls, sizeof nuls), AIPC_OK);
    free(buf);

    WAIT_FOR(p, recv_count, (long long)NSIZES + 1, "echoes of every size");
    for (size_t i = 0; i < NSIZES; i++) {
        ck_assert_msg(p->msgs[i].size == (int)k_sizes[i], "message %zu: %d bytes, want %zu", i,
                      p->msgs[i].size, k_sizes[i]);
        long long bad = aipc_pattern_check(p->msgs[i].data, k_sizes[i], (uint32_t)(1000 + i));
        ck_assert_msg(bad < 0, "size %zu: first wrong byte at %lld", k_sizes[i], bad);
    }
    ck_assert_int_eq(p->msgs[NSIZES].size, (int)sizeof nuls);
    ck_assert_mem_eq(p->msgs[NSIZES].data, nuls, sizeof nuls);
    WAIT_FOR(p, sent_count, (long long)NSIZES + 1, "OnSend per message");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* Sizes at the data path's thresholds (sdk/src/win/pipe_internal.h, sdk/src/core/frame.h): the
 * direct read (AIPC_DIRECT_MIN 32 KiB), the decoder's first block (64 KiB), the read buffer,
 * pipe buffer and write piece (256 KiB; payload + 8-byte header around it), the batch buffer
 * kept (1 MiB), the received block kept for reuse (4 MiB + 64: blocks of payload + 2 bytes),
 * repeated large sizes (a kept block reused), a smaller frame after a large one (in the kept
 * block) and a much smaller one (not). */
static const size_t k_edges[] = {
    32767, 32768, 32769, 65534, 65535, 65536, 262135, 262136, 262137, 262143, 262144, 262145,
    1048575, 1048576, 1048576, 1048577, 300000, 33000, 4194304, 4194366, 4194367, 4194304,
    1048576, 2097152 + 3,
};
#define NEDGES (sizeof k_edges / sizeof k_edges[0])

/* Every edge size, each followed by a small message, in one stream through an echo peer (both
 * directions): all arrive byte-exact and in order. _i bit 0: this side's engine, bit 1: the
 * peer's. */
START_TEST(threshold_sizes_mixed_in_order)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeImplType theirs = (_i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "edges");
    aipc_probe *p = new_probe();
    p->keep = 1;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(theirs), name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "connect");

    uint8_t *buf = malloc(4u << 21);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < NEDGES; i++) {
        aipc_pattern_fill(buf, k_edges[i], (uint32_t)(2000 + i));
        ck_assert_int_eq(aipc_probe_send(p, buf, k_edges[i]), AIPC_OK);
        aipc_pattern_fill(buf, i % 17 + 1, (uint32_t)(3000 + i));
        ck_assert_int_eq(aipc_probe_send(p, buf, i % 17 + 1), AIPC_OK);
    }
    free(buf);

    WAIT_FOR(p, recv_count, (long long)NEDGES * 2, "echoes of every size");
    ck_assert_int_eq((int)p->nmsgs, (int)NEDGES * 2);
    for (size_t i = 0; i < NEDGES; i++) {
        const aipc_probe_msg *big = &p->msgs[2 * i], *small = &p->msgs[2 * i + 1];
        ck_assert_msg(big->size == (int)k_edges[i], "message %zu: %d bytes, want %zu", 2 * i,
                      big->size, k_edges[i]);
        long long bad = aipc_pattern_check(big->data, k_edges[i], (uint32_t)(2000 + i));
        ck_assert_msg(bad < 0, "size %zu (#%zu): first wrong byte at %lld", k_edges[i], i, bad);
        ck_assert_msg(small->size == (int)(i % 17 + 1), "message %zu: %d bytes, want %zu",
                      2 * i + 1, small->size, i % 17 + 1);
        ck_assert_msg(aipc_pattern_check(small->data, i % 17 + 1, (uint32_t)(3000 + i)) < 0,
                      "small message %zu damaged", 2 * i + 1);
    }
    WAIT_FOR(p, sent_count, (long long)NEDGES * 2, "OnSend per message");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* A message one byte over the configured maximum is refused by Send. */
START_TEST(send_over_max_is_refused)
{
    char name[96];
    aipc_test_name(name, sizeof name, "toobig");
    aipc_probe *p = new_probe();
    start_probe(p, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 4096);
    uint8_t buf[4097];
    memset(buf, 7, sizeof buf);
    ck_assert_int_eq(aipc_probe_send(p, buf, 4096), AIPC_OK);
    ck_assert_int_eq(aipc_probe_send(p, buf, 4097), AIPC_ETOOBIG);
    free_probe(p);
}
END_TEST

/* ---- many small messages ------------------------------------------------------------------ */

typedef struct order_check {
    long long next;        /* the seed expected next */
    long long bad_at;      /* first message out of order or damaged; -1 if none */
    int size;
} order_check;

/* I/O thread: every message must be the next pattern message. */
static void check_order_hook(aipc_probe *p, const uint8_t *data, int size)
{
    order_check *c = p->user;
    if (c->bad_at < 0 && (size != c->size || aipc_pattern_check(data, (size_t)size, (uint32_t)c->next) >= 0))
        c->bad_at = c->next;
    c->next++;
}

/* 100,000 small messages from the peer arrive complete and in order, and 100,000 sent from
 * here come back (echoed) complete and in order. _i: 0 = APC here/overlapped there, 1 = the
 * other way round. */
START_TEST(hundred_thousand_in_order)
{
    enum { N = 100000, SIZE = 16 };
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeImplType theirs = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    char name[96];

    /* peer -> here */
    aipc_test_name(name, sizeof name, "many");
    order_check c1 = {0, -1, SIZE};
    aipc_probe *p = new_probe();
    p->hook = check_order_hook;
    p->user = &c1;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode send --count %d --size %d --role client --engine %s --pipe %s",
                                     N, SIZE, engine_arg(theirs), name), AIPC_OK);
    WAIT_FOR(p, recv_count, N, "100,000 messages from the peer");
    ck_assert_msg(c1.bad_at < 0, "message %lld out of order or damaged", c1.bad_at);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);

    /* here -> peer -> here */
    aipc_test_name(name, sizeof name, "many-echo");
    order_check c2 = {0, -1, SIZE};
    p = new_probe();
    p->hook = check_order_hook;
    p->user = &c2;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(theirs), name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "connect");
    uint8_t m[SIZE];
    for (int i = 0; i < N; i++) {
        aipc_pattern_fill(m, SIZE, (uint32_t)i);
        ck_assert_int_eq(aipc_probe_send(p, m, SIZE), AIPC_OK);
    }
    WAIT_FOR(p, recv_count, N, "100,000 echoes");
    ck_assert_msg(c2.bad_at < 0, "echo %lld out of order or damaged", c2.bad_at);
    WAIT_FOR(p, sent_count, N, "OnSend per message");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- Send from several threads -------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 2500 };

typedef struct sender {
    aipc_probe *p;
    HANDLE go;
    int id;
    int failures;
} sender;

typedef struct thread_order {
    long next[THREADS];
    long bad;              /* messages out of per-thread order or malformed */
} thread_order;

/* A sender thread: waits for the start signal, then sends its numbered messages. */
static DWORD WINAPI sender_thread(void *arg)
{
    sender *s = arg;
    WaitForSingleObject(s->go, WAIT_MS);
    for (long i = 0; i < PER_THREAD; i++) {
        uint8_t m[24];
        memset(m, 0, sizeof m);
        m[0] = (uint8_t)s->id;
        memcpy(m + 4, &i, sizeof i);
        m[23] = (uint8_t)(s->id ^ i);
        if (aipc_probe_send(s->p, m, 16 + (size_t)(i % 8)) != AIPC_OK)
            s->failures++;
    }
    return 0;
}

/* I/O thread: per sending thread, echoes arrive in that thread's order. */
static void thread_order_hook(aipc_probe *p, const uint8_t *data, int size)
{
    thread_order *t = p->user;
    long i;
    if (size < 16 || data[0] >= THREADS) {
        t->bad++;
        return;
    }
    memcpy(&i, data + 4, sizeof i);
    if (i != t->next[data[0]] || size != 16 + (int)(i % 8))
        t->bad++;
    t->next[data[0]] = i + 1;
}

/* Four threads send at the same moment; every message arrives once, whole, and in each
 * thread's own order. _i: this side's engine (client here, echo server there). */
START_TEST(send_from_many_threads)
{
    char name[96];
    aipc_test_name(name, sizeof name, "threads");
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --once --role server --engine %s --pipe %s",
                                     engine_arg(_i ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    thread_order order;
    memset(&order, 0, sizeof order);
    aipc_probe *p = new_probe();
    p->hook = thread_order_hook;
    p->user = &order;
    start_probe(p, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_CLIENT, name, 20000, 0);
    WAIT_FOR(p, connected, 1, "connect");

    HANDLE go = CreateEventW(NULL, TRUE, FALSE, NULL);
    sender s[THREADS];
    HANDLE th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (sender){p, go, i, 0};
        th[i] = CreateThread(NULL, 0, sender_thread, &s[i], 0, NULL);
        ck_assert_ptr_nonnull(th[i]);
    }
    SetEvent(go);
    ck_assert_msg(WaitForMultipleObjects(THREADS, th, TRUE, WAIT_MS) == WAIT_OBJECT_0,
                  "sender threads blocked in Send");
    for (int i = 0; i < THREADS; i++) {
        CloseHandle(th[i]);
        ck_assert_int_eq(s[i].failures, 0);
    }
    CloseHandle(go);
    WAIT_FOR(p, recv_count, THREADS * PER_THREAD, "echoes of every thread's messages");
    ck_assert_int_eq(order.bad, 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(order.next[i], PER_THREAD);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- Send before the peer connects ------------------------------------------------------------ */

/* Messages queued before there is a peer are delivered, in order, once it connects.
 * _i bit 0: engine here; bit 1: 0 = this side is the client (the server does not exist yet),
 * 1 = this side is the server (no client yet). */
START_TEST(send_before_connect_is_queued)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int i_am_server = (_i & 2) != 0;
    char name[96];
    aipc_test_name(name, sizeof name, "early");
    aipc_probe *p = new_probe();
    p->keep = 1;
    if (i_am_server)
        start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    else
        ck_assert_int_eq(aipc_probe_start(p, mine, PIPE_CLIENT, name, 20000, 0), AIPC_OK);
    enum { N = 5 };
    for (int i = 0; i < N; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "early %d", i);
        ck_assert_int_eq(aipc_probe_send(p, m, (size_t)n), AIPC_OK);
    }
    ck_assert_int_eq(aipc_probe_get(p, &p->connected), 0);   /* really sent before a peer */
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --once --role %s --engine %s --pipe %s "
                                     "--connect-timeout 20000",
                                     i_am_server ? "client" : "server",
                                     engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC), name),
                     AIPC_OK);
    WAIT_FOR(p, recv_count, N, "echoes of the early messages");
    for (int i = 0; i < N; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "early %d", i);
        ck_assert_int_eq(p->msgs[i].size, n);
        ck_assert_mem_eq(p->msgs[i].data, m, (size_t)n);
    }
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_engines_suite(void)
{
    Suite *s = suite_create("p2p_engines");
    TCase *t = tcase_create("pairs");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, engine_role_pairs, 0, 8);
    suite_add_tcase(s, t);

    t = tcase_create("payloads");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, payload_sizes_byte_exact, 0, 4);
    tcase_add_loop_test(t, threshold_sizes_mixed_in_order, 0, 4);
    tcase_add_loop_test(t, send_over_max_is_refused, 0, 2);
    tcase_add_loop_test(t, hundred_thousand_in_order, 0, 2);
    suite_add_tcase(s, t);

    t = tcase_create("sending");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, send_from_many_threads, 0, 2);
    tcase_add_loop_test(t, send_before_connect_is_queued, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_engines_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
