/*
 * test_gui_procexit.c - Release / aipc_bus_close at process exit must not hang.
 *
 * exit_host.exe loads a helper DLL that holds a live pipe (server; p2p_peer.exe is the client)
 * or bus client (the real broker), then returns from main. ExitProcess ends every other thread -
 * the SDK's I/O thread too - and then the DLL releases its object: from
 * DllMain(DLL_PROCESS_DETACH) (exit_dllmain.dll, C API) or from static C++ destructors
 * (exit_dtor.dll, asyncipc.hpp Release() and ~BusClient()). With --block one callback of the
 * object is blocked for good on the I/O thread when the process exits: the contract says the
 * release then returns without waiting for it ("the thread running a callback is already
 * gone"). Checked: the process ends within the bound with exit code 0, and the marker file
 * shows the release ran and returned ("started\ndetach\nreturned\n"); the peer sees the
 * connection end.
 *
 * _i = dll * 6 + object * 2 + block; dll: 0 DllMain, 1 static destructor; object: 0 PIPE_ASYNC,
 * 1 PIPE_OVERLAPPED, 2 bus client. The bus client runs on the suite's bus engine
 * (aipc_test_bus_engine): win.gui_procexit on PIPE_ASYNC; win.gui_procexit_iocp runs only the
 * bus-client cases, on PIPE_OVERLAPPED (the pipe cases already cover both engines).
 */
#include "gui_test.h"

static const char *const DLLS[2] = {"exit_dllmain.dll", "exit_dtor.dll"};
static const char *const OBJECTS[3] = {"pipe (PIPE_ASYNC)", "pipe (PIPE_OVERLAPPED)", "bus client"};

/* The marker file's lines joined with '|' for a one-line message ("(none)" if unreadable). */
static const char *marker_line(char *text)
{
    if (!text)
        return "(none)";
    for (char *c = text; *c; c++)
        if (*c == '\n')
            *c = '|';
    return text;
}

START_TEST(release_at_process_exit)
{
    int dll = _i / 6, object = (_i / 2) % 3, block = _i % 2;
    fprintf(stdout, "release_at_process_exit: %s, %s, %s\n", DLLS[dll], OBJECTS[object],
            block ? "a callback blocked on the I/O thread" : "idle live connection");
    char marker[MAX_PATH], ev_name[96];
    aipc_test_temp_path(marker, sizeof marker, "exit-marker", ".txt");
    aipc_test_name(ev_name, sizeof ev_name, "exit-ready");
    HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
    ck_assert_ptr_nonnull(ready);

    aipc_proc host, peer;
    memset(&peer, 0, sizeof peer);
    if (object < 2) {
        char name[96];
        aipc_test_name(name, sizeof name, "exit");
        ck_assert_int_eq(aipc_proc_spawn(&host, "exit_host.exe", "--dll %s --what pipe --engine %s --pipe %s --block %d --marker \"%s\" --ready %s",
                                         DLLS[dll], gui_engine_arg(object ? PIPE_OVERLAPPED : PIPE_ASYNC), name,
                                         block, marker, ev_name), AIPC_OK);
        /* streaming (something for OnRecv to block in) or echo (idle) */
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode %s --size 256 --role client --engine %s --pipe %s",
                                         block ? "stream" : "echo",
                                         gui_engine_arg(object ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    } else {
        gui_bus_start("gui-exit", "gui-exit-pub", 0);
        ck_assert_int_eq(aipc_proc_spawn(&host, "exit_host.exe", "--dll %s --what bus --engine %s --pipe %s --block %d --marker \"%s\" --ready %s",
                                         DLLS[dll], gui_engine_arg(aipc_test_bus_engine()), gui_broker.pipe,
                                         block, marker, ev_name), AIPC_OK);
        gui_step("the DLL's bus client is live");
        HANDLE hs[2] = {ready, host.process};
        ck_assert_msg(WaitForMultipleObjects(2, hs, FALSE, WAIT_MS) == WAIT_OBJECT_0,
                      "the helper's bus client did not get live");
        if (block)   /* a publication for its on_message to block in */
            ck_assert_int_eq(aipc_bus_publish(gui_pub.bus, "gui/exit", "block", 5, false), 0);
    }

    gui_step("the helper process exits (release at DLL detach)");
    int exited = aipc_proc_wait(&host, WAIT_MS) == AIPC_OK;
    char *text = aipc_test_read_file(marker, NULL);
    int marker_ok = text && !strcmp(text, "started\ndetach\nreturned\n");
    const char *line = marker_line(text);
    if (!exited)
        aipc_proc_kill(&host);
    ck_assert_msg(exited, "the process did not end within %u ms (hang at exit); marker: \"%s\"",
                  WAIT_MS, line);
    ck_assert_msg(host.exit_code == 0, "exit code %lu; marker: \"%s\"", (unsigned long)host.exit_code, line);
    ck_assert_msg(marker_ok, "marker \"%s\", want \"started|detach|returned|\"", line);
    free(text);
    aipc_proc_close(&host);
    DeleteFileA(marker);
    if (object < 2) {
        gui_step("the peer sees the connection end");
        ck_assert_int_eq(aipc_proc_wait(&peer, WAIT_MS), AIPC_OK);
        ck_assert_int_eq(peer.exit_code, 0);
        aipc_proc_close(&peer);
    }
    CloseHandle(ready);
    gui_step_done();
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_procexit");
    TCase *t = tcase_create("procexit");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    if (aipc_test_bus_engine() == PIPE_ASYNC) {
        tcase_add_loop_test(t, release_at_process_exit, 0, 12);
    } else {   /* the bus-client cases: _i 4, 5 (DllMain) and 10, 11 (static destructor) */
        tcase_add_loop_test(t, release_at_process_exit, 4, 6);
        tcase_add_loop_test(t, release_at_process_exit, 10, 12);
    }
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
