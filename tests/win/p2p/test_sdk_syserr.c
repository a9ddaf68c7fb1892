/*
 * test_sdk_syserr.c - the Win32 error behind AIPC_ESYS reaches the caller: aipc_last_syserr()
 * right after a call that returned AIPC_ESYS (per thread, left alone by other calls),
 * aipc_pipe_get_error for a pipe and aipc_bus_get_error for a bus client whose failure came
 * by callback. The failures are real ones provoked under Wine: a log file name the file system
 * refuses, a directory as the log file, a pipe name the kernel refuses (".."), a broker pipe
 * that does not exist.
 */
#include "p2p_common.h"

/* ---- aipc_last_syserr ---------------------------------------------------------------------- */

static DWORD WINAPI read_syserr(void *arg)
{
    *(uint32_t *)arg = aipc_last_syserr();
    return 0;
}

/* aipc_log_open_file on a name with '|' and on a directory: AIPC_ESYS with the file system's
 * error; another thread does not see it; a later call that succeeds leaves it as it was. */
START_TEST(log_file_refused)
{
    char path[MAX_PATH];
    DWORD n = GetTempPathA(MAX_PATH, path);
    ck_assert(n > 0 && n < MAX_PATH - 40);
    strcat(path, "aipc-test-bad|name.log");
    ck_assert_int_eq(aipc_log_open_file(path), AIPC_ESYS);
    ck_assert_uint_eq(aipc_last_syserr(), ERROR_INVALID_NAME);

    GetTempPathA(MAX_PATH, path);                     /* the folder itself, "...\Temp\" */
    ck_assert_int_eq(aipc_log_open_file(path), AIPC_ESYS);
    ck_assert_uint_eq(aipc_last_syserr(), ERROR_ACCESS_DENIED);

    uint32_t other = 12345;
    HANDLE t = CreateThread(NULL, 0, read_syserr, &other, 0, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert(aipc_test_wait(t, WAIT_MS));
    CloseHandle(t);
    ck_assert_uint_eq(other, 0);                       /* the value is this thread's */

    aipc_named_pipe *pipe = NULL;
    ck_assert_int_eq(aipc_pipe_new(PIPE_OVERLAPPED, &pipe), AIPC_OK);
    aipc_pipe_free(pipe);
    ck_assert_uint_eq(aipc_last_syserr(), ERROR_ACCESS_DENIED);   /* like errno */
}
END_TEST

/* ---- pipes ----------------------------------------------------------------------------------- */

/* A server name the SDK accepts and the kernel refuses ("..": ERROR_INVALID_NAME under Wine),
 * through the classic Create (false) and aipc_pipe_create_ex (AIPC_ESYS): the error is in
 * aipc_last_syserr() at once and in aipc_pipe_get_error with the code, and OnCreate(false)
 * follows. */
START_TEST(pipe_server_name_refused)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    const char *bad = "..";
    wchar_t wbad[16];
    aipc_test_wname(wbad, 16, bad);

    aipc_probe *p = new_probe();
    int rc = aipc_probe_start(p, engine, PIPE_SERVER, bad, 0, 0);   /* Create returned false */
    ck_assert_int_eq(rc, AIPC_ESYS);
    uint32_t sys = aipc_last_syserr();
    printf("CreateNamedPipe(\\\\.\\pipe\\..): Win32 error %u\n", (unsigned)sys);
    ck_assert_uint_ne(sys, 0);
    uint32_t win32 = 0;
    ck_assert_int_eq(aipc_pipe_get_error(p->pipe, &win32), AIPC_ESYS);
    ck_assert_uint_eq(win32, sys);
    ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no OnCreate");
    ck_assert_int_eq(aipc_probe_get(p, &p->create_failed), 1);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);

    aipc_named_pipe *pipe = NULL;
    ck_assert_int_eq(aipc_pipe_new(engine, &pipe), AIPC_OK);
    aipc_pipe_events ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    char dir[MAX_PATH];                               /* another AIPC_ESYS first (5) */
    GetTempPathA(MAX_PATH, dir);
    ck_assert_int_eq(aipc_log_open_file(dir), AIPC_ESYS);
    ck_assert_uint_ne(aipc_last_syserr(), sys);
    ck_assert_int_eq(aipc_pipe_create_ex(pipe, wbad, PIPE_SERVER, &ev), AIPC_ESYS);
    ck_assert_uint_eq(aipc_last_syserr(), sys);
    win32 = 0;
    ck_assert_int_eq(aipc_pipe_get_error(pipe, &win32), AIPC_ESYS);
    ck_assert_uint_eq(win32, sys);
    aipc_pipe_free(pipe);
}
END_TEST

/* ---- bus client -------------------------------------------------------------------------------- */

typedef struct bus_rec {
    HANDLE failed;                 /* set at the first DISCONNECTED */
    volatile LONG state, error;
} bus_rec;

static void rec_state(aipc_bus *bus, void *user, aipc_bus_state state, int error)
{
    bus_rec *r = user;
    (void)bus;
    if (state == AIPC_BUS_DISCONNECTED && InterlockedCompareExchange(&r->state, (LONG)state, 0) == 0) {
        InterlockedExchange(&r->error, error);
        SetEvent(r->failed);
    }
}

/* No broker on the pipe, reconnect off: on_state(DISCONNECTED, AIPC_ENOTFOUND), and
 * aipc_bus_get_error keeps that code with ERROR_FILE_NOT_FOUND behind it. */
START_TEST(bus_failure_kept)
{
    char name[96];
    aipc_test_name(name, sizeof name, "syserr-bus");
    wchar_t wname[160];
    aipc_test_wname(wname, 160, name);
    bus_rec r = {0};
    r.failed = CreateEventW(NULL, TRUE, FALSE, NULL);
    ck_assert_ptr_nonnull(r.failed);
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.pipe_name = wname;
    o.reconnect = 0;
    o.connect_timeout_ms = 300;
    o.server_owners = "*";
    o.user = &r;
    o.on_state = rec_state;
    aipc_bus *bus = NULL;
    ck_assert_int_eq(aipc_bus_connect(&o, &bus), AIPC_OK);
    ck_assert_msg(aipc_test_wait(r.failed, WAIT_MS), "no DISCONNECTED");
    ck_assert_int_eq(InterlockedCompareExchange(&r.error, 0, 0), AIPC_ENOTFOUND);
    uint32_t win32 = 0;
    ck_assert_int_eq(aipc_bus_get_error(bus, &win32), AIPC_ENOTFOUND);
    ck_assert_uint_eq(win32, ERROR_FILE_NOT_FOUND);
    ck_assert_int_eq(aipc_bus_get_error(bus, NULL), AIPC_ENOTFOUND);
    aipc_bus_close(bus);
    ck_assert_int_eq(aipc_bus_get_error(NULL, &win32), AIPC_EINVAL);
    CloseHandle(r.failed);
}
END_TEST

static Suite *sdk_syserr_suite(void)
{
    Suite *s = suite_create("sdk_syserr");
    TCase *t = tcase_create("syserr");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_test(t, log_file_refused);
    tcase_add_loop_test(t, pipe_server_name_refused, 0, 2);
    tcase_add_test(t, bus_failure_kept);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(sdk_syserr_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
