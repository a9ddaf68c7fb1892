/*
 * exit_dll.h - the two helper DLLs of test_gui_procexit.c (exit_dllmain.dll in C, exit_dtor.dll
 * in C++) and their host program (exit_host.exe).
 *
 * The host loads one DLL and calls its exit_start(): the DLL opens a pipe (as server) or a bus
 * client, waits until it is live (connected; a bus client also subscribed), optionally until one
 * of its callbacks is blocked for good on the SDK's I/O thread, writes "started" to the marker
 * file and returns. The host then returns from main: ExitProcess ends every other thread (the
 * I/O thread too, possibly inside that blocked callback) and then detaches the DLL, which calls
 * Release / aipc_bus_close there - from DllMain(DLL_PROCESS_DETACH) in exit_dllmain.dll, from a
 * static C++ destructor (asyncipc.hpp / bus.hpp objects) in exit_dtor.dll - writing "detach"
 * before and "returned" after. The test checks that the process ends within a bound and that
 * the marker says "started\ndetach\nreturned\n".
 */
#ifndef AIPC_EXIT_DLL_H
#define AIPC_EXIT_DLL_H

#include <windows.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct exit_args {
    int bus;              /* 0: a pipe (server) on `pipe`; 1: a bus client of the broker `pipe` */
    int overlapped;       /* engine of the pipe or bus client: PIPE_OVERLAPPED, not PIPE_ASYNC */
    const char *pipe;     /* pipe or broker pipe name */
    int block;            /* 1: return only once a callback is blocked for good */
    const char *marker;   /* file to append the progress lines to */
    const char *ready;    /* named event set once live (bus: the test then publishes) or NULL */
    DWORD timeout_ms;     /* bound for each wait inside exit_start */
} exit_args;

/* Exported by both DLLs. 0 when started as asked, else non-zero (a reason on stderr). */
typedef int (*exit_start_fn)(const exit_args *a);

/* exit_marker.c (linked into both DLLs): appends `line` to the marker file set by
 * exit_marker_open. */
void exit_marker_open(const char *path);
void exit_marker(const char *line);

#ifdef __cplusplus
}
#endif
#endif
