/*
 * test_broker_conn_limits.c - connections per client process and per user against the real
 * asyncipc-broker.exe under Wine (every process here is the same user). A connection over a
 * bound gets error too_many_connections as its only frame, then the pipe closes; other
 * processes (per-process bound) and the well-behaved client are not affected, and the
 * refusals hold no slot. Holders are raw_client.exe processes (mode hold).
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_good.h"

#define W GOOD_WAIT_MS

static raw_broker *g_broker;

static void broker_start(raw_broker *b, const char *tag, const char *extra)
{
    ck_assert_int_eq(raw_broker_start(b, tag, extra), 0);
    g_broker = b;
}

static void teardown(void)
{
    aipc_proc_kill_all();
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
}

/* A connection of this process: hello answered with welcome. */
static raw_conn *connect_ok(const raw_broker *b)
{
    raw_conn *c = raw_connect(b->pipe, W);
    ck_assert_ptr_nonnull(c);
    ck_assert(raw_hello(c, NULL, W) > 0);
    return c;
}

/* A connection of this process that the broker refuses: its hello gets no welcome; the only
 * frame is error too_many_connections, then the pipe is closed. */
static void connect_refused(const raw_broker *b)
{
    raw_conn *c = raw_connect(b->pipe, W);
    ck_assert_ptr_nonnull(c);
    raw_send(c, "{\"op\":\"hello\",\"proto\":1}", NULL, 0, W);  /* may meet the closed pipe */
    raw_frame f;
    ck_assert_int_eq(raw_recv(c, &f, W), 1);
    ck_assert_str_eq(raw_op(&f), "error");
    ck_assert_str_eq(raw_str(&f, "code"), "too_many_connections");
    ck_assert_ptr_nonnull(raw_str(&f, "message"));
    raw_frame_free(&f);
    ck_assert_int_eq(raw_recv(c, &f, W), -1);
    raw_close(c);
}

/* A raw_client.exe holding n connections (hello each) until rel is set. */
static void hold_start(aipc_proc *p, const raw_broker *b, unsigned n, const char *rdy,
                       const char *rel)
{
    ck_assert_int_eq(aipc_proc_spawn(p, "raw_client.exe", "hold %s %u %s %s", b->pipe, n, rdy,
                                     rel), 0);
}

/* Polls the stats (round trips) until `clients` is n: detaches follow the holders' exits. */
static void wait_clients(good_client *g, double n)
{
    for (int i = 0; i < 2000 && good_stat(g->c, "clients") != n; i++)
        Sleep(5);
    ck_assert_int_eq((int)good_stat(g->c, "clients"), (int)n);
}

/* One process opens connections up to the bound: the next ones are refused while another
 * process of the same user connects as many; the good client is served throughout. */
START_TEST(per_process)
{
    enum { LIMIT = 8, REFUSALS = 20 };
    raw_broker b;
    broker_start(&b, "perproc", "\"max_connections_per_process\":8,"
                                "\"max_connections_per_user\":0");
    good_client g;
    good_start(&g, &b, "pp");
    size_t mem0 = raw_broker_private_bytes(&b);
    char rdy1[96], rdy2[96], rel[96];
    HANDLE hr1 = good_event(rdy1, sizeof rdy1, "rdy1"), hr2 = good_event(rdy2, sizeof rdy2, "rdy2");
    HANDLE hrel = good_event(rel, sizeof rel, "rel");
    aipc_proc h1, h2;
    hold_start(&h1, &b, LIMIT, rdy1, rel);
    raw_conn *mine[LIMIT - 1];
    for (int i = 0; i < LIMIT - 1; i++)                 /* with the good one: LIMIT */
        mine[i] = connect_ok(&b);
    ck_assert(aipc_test_wait(hr1, 60000));
    for (int i = 0; i < REFUSALS; i++) {
        connect_refused(&b);
        good_round(&g, 10);
    }
    hold_start(&h2, &b, LIMIT, rdy2, rel);              /* another process: all of them */
    ck_assert(aipc_test_wait(hr2, 60000));
    size_t peak = raw_broker_private_bytes(&b);
    ck_assert_int_eq((int)good_stat(g.c, "process_conns_refused"), REFUSALS);
    ck_assert_int_eq((int)good_stat(g.c, "user_conns_refused"), 0);
    ck_assert_int_eq((int)good_stat(g.c, "clients"), 3 * LIMIT);   /* refusals hold no slot */
    raw_close(mine[0]);                                 /* room for one again */
    wait_clients(&g, 3 * LIMIT - 1);
    mine[0] = connect_ok(&b);
    connect_refused(&b);
    good_round(&g, 100);
    SetEvent(hrel);
    good_expect_exit(&h1, 60000, 0, "holder 1");
    good_expect_exit(&h2, 60000, 0, "holder 2");
    for (int i = 0; i < LIMIT - 1; i++)
        raw_close(mine[i]);
    wait_clients(&g, 1);
    size_t after = raw_broker_private_bytes(&b);
    fprintf(stderr, "per_process: broker private bytes before %zu KiB, peak %zu KiB, after %zu KiB\n",
            mem0 / 1024, peak / 1024, after / 1024);
    good_round(&g, 10);
    good_stop(&g);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    g_broker = NULL;
    CloseHandle(hr1);
    CloseHandle(hr2);
    CloseHandle(hrel);
}
END_TEST

/* Several processes of one user: the user's bound (below per-process x processes) refuses the
 * next connection of any of its processes, even one with room under its own bound; when a
 * holder leaves, connections are accepted again. */
START_TEST(per_user)
{
    enum { PER_PROCESS = 6, PER_USER = 10 };
    raw_broker b;
    broker_start(&b, "peruser", "\"max_connections_per_process\":6,"
                                "\"max_connections_per_user\":10");
    good_client g;
    good_start(&g, &b, "pu");                           /* user: 1 */
    size_t mem0 = raw_broker_private_bytes(&b);
    char rdy1[96], rdy2[96], rdy3[96], rel1[96], rel2[96];
    HANDLE hr1 = good_event(rdy1, sizeof rdy1, "rdy1"), hr2 = good_event(rdy2, sizeof rdy2, "rdy2");
    HANDLE hr3 = good_event(rdy3, sizeof rdy3, "rdy3");
    HANDLE hrel1 = good_event(rel1, sizeof rel1, "rel1"), hrel2 = good_event(rel2, sizeof rel2, "rel2");
    aipc_proc h1, h2, h3;
    hold_start(&h1, &b, PER_PROCESS - 1, rdy1, rel1);   /* user: 6 */
    ck_assert(aipc_test_wait(hr1, 60000));
    hold_start(&h2, &b, 4, rdy2, rel2);                 /* user: 10 */
    ck_assert(aipc_test_wait(hr2, 60000));
    good_round(&g, 20);
    connect_refused(&b);                                /* this process has 1 of 6 */
    hold_start(&h3, &b, 1, rdy3, rel1);                 /* a fresh process: refused too */
    good_expect_exit(&h3, 60000, 3, "holder 3");
    good_round(&g, 20);
    size_t peak = raw_broker_private_bytes(&b);
    ck_assert_int_eq((int)good_stat(g.c, "user_conns_refused"), 2);
    ck_assert_int_eq((int)good_stat(g.c, "process_conns_refused"), 0);
    ck_assert_int_eq((int)good_stat(g.c, "clients"), PER_USER);
    SetEvent(hrel2);                                    /* user: 6 */
    good_expect_exit(&h2, 60000, 0, "holder 2");
    wait_clients(&g, 6);
    raw_conn *more[4];
    for (int i = 0; i < 4; i++)                         /* this process: 5 of 6, user 10 */
        more[i] = connect_ok(&b);
    connect_refused(&b);
    good_round(&g, 100);
    SetEvent(hrel1);
    good_expect_exit(&h1, 60000, 0, "holder 1");
    for (int i = 0; i < 4; i++)
        raw_close(more[i]);
    wait_clients(&g, 1);
    size_t after = raw_broker_private_bytes(&b);
    fprintf(stderr, "per_user: broker private bytes before %zu KiB, peak %zu KiB, after %zu KiB\n",
            mem0 / 1024, peak / 1024, after / 1024);
    ck_assert_int_eq((int)good_stat(g.c, "user_conns_refused"), 3);
    good_stop(&g);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    g_broker = NULL;
    CloseHandle(hr1);
    CloseHandle(hr2);
    CloseHandle(hr3);
    CloseHandle(hrel1);
    CloseHandle(hrel2);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_conn_limits");
    TCase *tc = tcase_create("conn_limits");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, per_process);
    tcase_add_test(tc, per_user);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
