/*
 * test_broker_backlog.c - the broker's listener keeps several instances waiting, so clients that
 * connect at the same moment all get in at their first CreateFile: none sees ERROR_PIPE_BUSY.
 *
 * The engine runs in-process on its own thread. Each round waits (an event set from the
 * engine's tick) until the backlog is full again, releases a burst of client threads at once
 * (one manual-reset event), and requires every raw CreateFileW - the SDK's flags, no retry - to
 * succeed and every connection to reach the handler. With a single pending instance the second
 * client of a burst finds no free instance unless the engine re-armed in between.
 */
#include <windows.h>

#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"
#include "engine.h"

#define W       20000u
#define ROUNDS  12
#define MAXB    4

typedef struct bl_state {
    broker_engine *e;
    wchar_t path[128];
    volatile LONG want;         /* tick: set ev_ready once this many instances are pending */
    HANDLE ev_ready;
    HANDLE sem_attached, sem_detached;
} bl_state;

static void *bl_attach(void *ctx, aipc_wconn *w, unsigned long pid)
{
    bl_state *st = ctx;
    ReleaseSemaphore(st->sem_attached, 1, NULL);
    return w;
}

static int bl_input(void *ctx, void *conn, const uint8_t *d, size_t n)
{
    return 0;
}

static void bl_detach(void *ctx, void *conn)
{
    bl_state *st = ctx;
    ReleaseSemaphore(st->sem_detached, 1, NULL);
}

static int bl_out_next(void *ctx, void *conn, aipc_iov *iov, int max)
{
    return 0;
}

static void bl_out_consume(void *ctx, void *conn, size_t n)
{
}

static void bl_shutdown(void *ctx)
{
}

/* I/O thread, once per loop turn (after completions, so after the backlog was refilled). */
static void bl_tick(void *ctx)
{
    bl_state *st = ctx;
    LONG want = InterlockedCompareExchange(&st->want, 0, 0);
    if (want && broker_engine_listening(st->e) >= want) {
        InterlockedExchange(&st->want, 0);
        SetEvent(st->ev_ready);
    }
}

static DWORD WINAPI bl_run(void *p)
{
    broker_engine_run(p);
    return 0;
}

typedef struct burst_client {
    const wchar_t *path;
    HANDLE go;
    HANDLE h;
    DWORD err;
} burst_client;

static DWORD WINAPI client_thread(void *arg)
{
    burst_client *c = arg;
    WaitForSingleObject(c->go, INFINITE);
    c->h = CreateFileW(c->path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                       NULL);
    c->err = c->h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    return 0;
}

/* `burst` clients at once, ROUNDS times, against an engine keeping `backlog` (0 = default). */
static void run_bursts(DWORD backlog, int burst)
{
    bl_state st;
    memset(&st, 0, sizeof st);
    _snwprintf(st.path, 128, L"\\\\.\\pipe\\aipc-backlog-%lu-%lu", GetCurrentProcessId(),
               (unsigned long)backlog);
    st.ev_ready = CreateEventW(NULL, FALSE, FALSE, NULL);
    st.sem_attached = CreateSemaphoreW(NULL, 0, 1000, NULL);
    st.sem_detached = CreateSemaphoreW(NULL, 0, 1000, NULL);
    broker_engine_config ec = {0};
    ec.pipe_path = st.path;
    ec.stop_grace_ms = 1000;
    ec.listen_backlog = backlog;
    broker_engine_handler h = {&st, bl_attach, bl_input, bl_detach, bl_out_next, bl_out_consume,
                               bl_shutdown, bl_tick, NULL, NULL, NULL, NULL};
    char err[256];
    ck_assert_int_eq(broker_engine_create(&st.e, &ec, &h, err, sizeof err), BROKER_ENGINE_OK);
    HANDLE th = CreateThread(NULL, 0, bl_run, st.e, 0, NULL);
    HANDLE go = CreateEventW(NULL, TRUE, FALSE, NULL);
    InterlockedExchange(&st.want, burst);
    for (int round = 0; round < ROUNDS; round++) {
        ck_assert_msg(aipc_test_wait(st.ev_ready, W), "round %d: the backlog was not refilled",
                      round);
        burst_client c[MAXB];
        HANDLE t[MAXB];
        ResetEvent(go);
        for (int i = 0; i < burst; i++) {
            c[i] = (burst_client){st.path, go, INVALID_HANDLE_VALUE, 0};
            t[i] = CreateThread(NULL, 0, client_thread, &c[i], 0, NULL);
            ck_assert_ptr_nonnull(t[i]);
        }
        SetEvent(go);
        ck_assert_uint_eq(WaitForMultipleObjects((DWORD)burst, t, TRUE, W), WAIT_OBJECT_0);
        for (int i = 0; i < burst; i++) {
            CloseHandle(t[i]);
            ck_assert_msg(c[i].err == 0, "round %d: client %d of a burst of %d failed (%lu%s)",
                          round, i, burst, c[i].err,
                          c[i].err == ERROR_PIPE_BUSY ? ": ERROR_PIPE_BUSY" : "");
        }
        for (int i = 0; i < burst; i++)
            ck_assert_msg(aipc_test_wait(st.sem_attached, W), "round %d: a client was not "
                          "attached", round);
        /* the backlog was refilled before each attach: the next tick (the detaches below
         * cause one) reports it */
        InterlockedExchange(&st.want, burst);
        for (int i = 0; i < burst; i++)
            CloseHandle(c[i].h);
        for (int i = 0; i < burst; i++)
            ck_assert_msg(aipc_test_wait(st.sem_detached, W), "round %d: a client was not "
                          "detached", round);
    }
    broker_engine_request_stop(st.e);
    ck_assert_uint_eq(WaitForSingleObject(th, W), WAIT_OBJECT_0);
    CloseHandle(th);
    broker_engine_free(st.e);
    CloseHandle(go);
    CloseHandle(st.ev_ready);
    CloseHandle(st.sem_attached);
    CloseHandle(st.sem_detached);
}

/* The broker's default: two instances wait, a pair connecting together both get in. */
START_TEST(default_backlog_takes_a_pair)
{
    run_bursts(0, 2);
}
END_TEST

/* The largest backlog: four at once. */
START_TEST(backlog_of_four_takes_four)
{
    run_bursts(4, 4);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_backlog");
    TCase *tc = tcase_create("burst");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, default_backlog_takes_a_pair);
    tcase_add_test(tc, backlog_of_four_takes_four);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
