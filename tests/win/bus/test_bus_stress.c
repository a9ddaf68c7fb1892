/* test_bus_stress.c - 100 bus clients in one process share the SDK's I/O thread; 4 threads
 * publish at once through them; every subscriber gets every publication, in per-publisher
 * order; then all clients close without leaking handles. Waits are event-based and bounded. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"

#define W AIPC_TEST_WAIT_MS
#define NCLIENTS 100
#define NTHREADS 4
#define PER_THREAD 100          /* publications per thread */
#define NSUBS 100               /* clients that subscribe (each gets every publication) */

static bt_broker g_br;
static bt_client g_c[NCLIENTS];
static HANDLE g_go;

typedef struct { int thread; int failures; } pub_arg;

/* Publisher thread: publishes through its own 25 clients in turn; payload 'S', u32 client
 * index, u32 sequence number of that client (from 1). */
static DWORD WINAPI publisher(void *p)
{
    pub_arg *a = p;
    uint32_t seq[NCLIENTS] = {0};
    WaitForSingleObject(g_go, W);
    for (int i = 0; i < PER_THREAD; i++) {
        int ci = a->thread * (NCLIENTS / NTHREADS) + i % (NCLIENTS / NTHREADS);
        uint8_t msg[9];
        uint32_t s = ++seq[ci], pubno = (uint32_t)ci;
        msg[0] = 'S';
        memcpy(msg + 1, &pubno, 4);
        memcpy(msg + 5, &s, 4);
        int rc;
        while ((rc = aipc_bus_publish(g_c[ci].bus, "load/x", msg, sizeof msg, false)) == AIPC_EQUEUEFULL)
            SwitchToThread();   /* backpressure: the queue bound was reached, retry */
        if (rc != 0)
            a->failures++;
    }
    return 0;
}

START_TEST(hundred_clients_four_threads)
{
    ck_assert_int_eq(bt_broker_start(&g_br, "busload"), 0);
    {   /* warm-up: the I/O thread exists before the handle baseline */
        bt_client w;
        ck_assert_int_eq(bt_open(&w, g_br.wpipe, NULL, 0), 0);
        ck_assert(bt_close(&w));
    }
    DWORD handles0 = aipc_test_handle_count();
    for (int i = 0; i < NCLIENTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "load-%d", i);
        aipc_bus_options o;
        bt_options(&g_c[i], &o, g_br.wpipe, name, 1);
        ck_assert_int_eq(bt_connect(&g_c[i], &o), 0);
    }
    DWORD io_thread = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_msg(bt_wait(&g_c[i], &g_c[i].connected, 1, W), "client %d did not connect", i);
        if (i == 0)
            io_thread = g_c[i].io_thread;
        ck_assert_uint_eq(g_c[i].io_thread, io_thread);   /* one shared I/O thread */
    }
    for (int i = 0; i < NSUBS; i++) {
        ck_assert_int_eq(aipc_bus_subscribe(g_c[i * (NCLIENTS / NSUBS)].bus, "load/#"), 0);
        ck_assert(bt_sync(&g_c[i * (NCLIENTS / NSUBS)], W));
    }
    g_go = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE th[NTHREADS];
    pub_arg args[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        args[t].thread = t;
        args[t].failures = 0;
        th[t] = CreateThread(NULL, 0, publisher, &args[t], 0, NULL);
        ck_assert_ptr_nonnull(th[t]);
    }
    SetEvent(g_go);
    ck_assert_int_eq(WaitForMultipleObjects(NTHREADS, th, TRUE, W * 2), WAIT_OBJECT_0);
    for (int t = 0; t < NTHREADS; t++) {
        CloseHandle(th[t]);
        ck_assert_int_eq(args[t].failures, 0);
    }
    CloseHandle(g_go);
    for (int i = 0; i < NSUBS; i++) {
        bt_client *s = &g_c[i * (NCLIENTS / NSUBS)];
        ck_assert_msg(bt_wait(s, &s->msgs, NTHREADS * PER_THREAD, W * 2),
                      "subscriber %d got %lld of %d", i * (NCLIENTS / NSUBS), bt_get(s, &s->msgs),
                      NTHREADS * PER_THREAD);
        ck_assert_int_eq(s->order_errors, 0);
        ck_assert_int_eq(s->dropped, 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_str_eq(g_c[i].error, "");
        ck_assert(bt_close(&g_c[i]));
        ck_assert_int_eq(g_c[i].closed, 1);
    }
    bt_broker_stop(&g_br);
    DWORD handles1 = aipc_test_handle_count();
    ck_assert_msg(handles1 <= handles0 + 2, "handles: %lu before, %lu after", handles0, handles1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_stress");
    TCase *tc = bt_tcase_create("stress");
    tcase_set_timeout(tc, 250);
    tcase_add_test(tc, hundred_clients_four_threads);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
