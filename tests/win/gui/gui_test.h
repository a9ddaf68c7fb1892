/*
 * gui_test.h - shared by the GUI / dispatcher suites (tests/win/gui):
 *
 *   watchdog   every step of a test is bounded: gui_step() names the step and gives it a
 *              deadline; a step still running after it (a deadlock inside a window procedure,
 *              a message loop that never ends) prints "HANG: <step>" and ends the suite with
 *              exit code 1 - a hang is a failure, never a skip or a ctest timeout;
 *   windows    a hidden top-level window with a listbox child, owned by the calling thread (the
 *              "UI thread" of the test), with the test's own window procedure;
 *   loops      bounded message loops (PeekMessage/TranslateMessage/DispatchMessage) that stop on
 *              a condition, an event or WM_QUIT, and a bounded aipc_dispatcher_run loop;
 *   recorder   a bus client recording what its callbacks see (thread, order of numbered
 *              messages, nesting, drops) for the dispatcher suites;
 *   fixture    the broker + a publishing client of a bus test (bt_broker/bt_client from
 *              tests/win/bus), and a teardown that releases whatever a failed test left;
 *   runner     Check in no-fork mode with the watchdog running.
 *
 * Nothing here sleeps to synchronise: waits are on events, processes, or the message queue.
 * Callbacks never call ck_assert (Check must assert on the test's thread): they record, and the
 * test checks the record.
 */
#ifndef AIPC_GUI_TEST_H
#define AIPC_GUI_TEST_H

#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "check_main.h"
/* check.h declares its printf-like assertion with format(printf), which mingw GCC checks as the
 * Microsoft dialect: silence that false alarm for the ck_assert_* macros (as p2p_common.h). */
#if defined(__MINGW32__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_probe.h"
#include "aipc_testutil.h"
#include "bus_test.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every wait is bounded by this (30 s, or AIPC_TEST_WAIT_MS from the environment). */
#define WAIT_MS ((DWORD)aipc_test_wait_ms())

/* Engine names as p2p_peer/gui_peer take them. */
static inline const char *gui_engine_arg(PipeImplType e)
{
    return e == PIPE_OVERLAPPED ? "overlapped" : "async";
}
static inline const char *gui_role_arg(PipeType r)
{
    return r == PIPE_CLIENT ? "client" : "server";
}

/* ---- watchdog ----------------------------------------------------------------------------- */
/* Names the step now running and gives it `ms` to finish, i.e. until the next
 * gui_step/gui_step_done. printf-style. gui_step: 2 x WAIT_MS, more than a step's own bounded
 * waits of WAIT_MS (those fail with their own message; the watchdog catches what no wait
 * bounds: a call that never returns). Steps with longer waits say so with gui_step_ms. */
void gui_step_ms(DWORD ms, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(gnu_printf, 2, 3)))
#endif
    ;
#define gui_step(...) gui_step_ms(0, __VA_ARGS__)
/* No step running (the watchdog waits). */
void gui_step_done(void);

/* ---- windows ------------------------------------------------------------------------------ */
typedef struct gui_window {
    HWND hwnd;   /* hidden top-level window, class per window procedure */
    HWND list;   /* listbox child (the "log" of the classic samples) */
} gui_window;

/* Creates the window on the calling thread with `proc` as its window procedure and `user` in
 * GWLP_USERDATA (set right after creation: messages before that see NULL). 0, or -1 with the
 * reason on stderr (no display: windows need an X display under Wine). */
int gui_window_open(gui_window *w, WNDPROC proc, void *user);
/* GWLP_USERDATA of hwnd. */
void *gui_window_user(HWND hwnd);
/* DestroyWindow if it still exists. */
void gui_window_close(gui_window *w);
/* Adds a line to the listbox (printf-style); returns its index or a negative LB_ERR*. */
int gui_list_add(HWND list, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(gnu_printf, 2, 3)))
#endif
    ;
int gui_list_count(HWND list);

/* Teardown after a failed test, on the test's (UI) thread: clears the window's user data (its
 * procedure then does nothing of the test's), releases *pipe / closes *bus if still set (on
 * this thread, so a callback blocked in SendMessage to its windows completes; bounded by the
 * watchdog) and sets them NULL, destroys the window, and empties the thread's message queue (a
 * WM_QUIT left behind would end the next test's loop at once). Any argument may be NULL. */
void gui_cleanup(aipc_named_pipe **pipe, aipc_bus **bus, gui_window *win);

/* What the running test holds, for gui_teardown: point these at the test's own (static)
 * variables as it creates them. */
typedef struct gui_held {
    aipc_named_pipe **pipe;
    aipc_bus **bus;
    gui_window *win;
    aipc_probe **probe;
    aipc_dispatcher **disp;
} gui_held;
extern gui_held gui_left;
/* The suites' teardown: kills the helper processes still running (aipc_proc_kill_all), then
 * gui_cleanup of what gui_left points at, releases a probe left (bounded), frees a dispatcher
 * left, closes the publisher and stops the broker of gui_bus_start, and forgets all that. */
void gui_teardown(void);

/* A bus test's broker (its own process, on a unique pipe) and one publishing client
 * (no dispatcher; max_queue_bytes = pub_queue, 0 = default), started together; gui_teardown
 * stops them. */
extern bt_broker gui_broker;
extern bt_client gui_pub;
void gui_bus_start(const char *tag, const char *pub_name, uint64_t pub_queue);

/* ---- message loops ------------------------------------------------------------------------ */
/* Non-zero while gui_pump runs on some thread (callbacks of a WINDOW dispatcher must only run
 * inside the message loop). */
extern volatile LONG gui_pumping;
/* Runs the calling thread's message loop until done(arg) is true (checked before every wait and
 * after every dispatched message), `ev` is signalled, or WM_QUIT arrives (then *quit = 1 if
 * quit != NULL); at most `ms`. Returns 1 on one of those, 0 on timeout. done and ev may be
 * NULL. */
int gui_pump(int (*done)(void *), void *arg, HANDLE ev, DWORD ms, int *quit);
/* Runs the loop until WM_QUIT, at most ms. 1 if WM_QUIT came. */
int gui_pump_until_quit(DWORD ms);

/* Non-zero while gui_manual_run is inside aipc_dispatcher_run on some thread. */
extern volatile LONG gui_in_run;
/* The AIPC_DISPATCH_MANUAL loop of a console program: waits on aipc_dispatcher_event(d) and
 * calls aipc_dispatcher_run(d, 0), until done(arg) or ms. 1 if done. */
int gui_manual_run(aipc_dispatcher *d, int (*done)(void *), void *arg, DWORD ms);

/* ---- bus recorder ------------------------------------------------------------------------- */
/* Payloads of numbered messages: aipc_pattern_fill(seed = sequence number, 0, 1, 2, ...). */
typedef struct gui_busrec {
    aipc_bus *bus;
    DWORD want_thread;          /* every callback must run on it (0: on one thread, any) */
    volatile LONG inside;       /* callbacks of this client running now */
    volatile LONG max_inside;   /* must stay 1 */
    volatile LONG msgs;         /* numbered messages received */
    volatile LONG dropped;      /* on_dropped total */
    volatile LONG gaps;         /* sequence numbers missing before one that arrived */
    volatile LONG order_errors; /* a sequence number not greater than the previous one */
    volatile LONG data_errors;  /* payload not the pattern of its sequence number */
    volatile LONG thread_errors;/* a callback on another thread */
    volatile LONG outside_loop; /* a callback outside gui_pump/gui_manual_run (when checked) */
    volatile LONG connected, closed, late;  /* late: callbacks after on_state(CLOSED) */
    volatile LONG pings, pongs; /* gui_busrec_ping calls, and replies that ran */
    volatile LONG closed_returned; /* set by the test after aipc_bus_close returned */
    volatile LONG after_close_return; /* callbacks started after that */
    DWORD closed_thread;        /* thread of on_state(CLOSED) */
    int check_loop;             /* 1: callbacks must be inside gui_pump, 2: inside gui_manual_run */
    long long next_seq;         /* expected next sequence number (first is 0) */
    DWORD first_thread;
} gui_busrec;

/* Connects a recorder to the broker pipe `wpipe` (subscribing to `filter`), with dispatcher `d`
 * (may be NULL) and max_dispatch_bytes (0 = default). 0 or AIPC_E*. */
int gui_busrec_connect(gui_busrec *r, const wchar_t *wpipe, const char *name, const char *filter,
                       aipc_dispatcher *d, uint64_t max_dispatch);
/* Sends a ping; r->pongs grows when its reply ran (through the dispatcher, if any). */
int gui_busrec_ping(gui_busrec *r);
/* Predicates for gui_pump / gui_manual_run (arg = the recorder). */
int gui_busrec_connected(void *r);
int gui_busrec_has_pong(void *r);   /* every gui_busrec_ping so far was answered */
/* Target for gui_busrec_all_in: numbered messages received + dropped reach this. */
typedef struct gui_busrec_goal {
    gui_busrec *r;
    long long n;
} gui_busrec_goal;
int gui_busrec_all_in(void *goal);

/* Publishes n numbered messages of `size` bytes (size >= 4) on `topic` through `bus`. 0 or the
 * first AIPC_E*. */
int gui_publish_numbered(aipc_bus *bus, const char *topic, long long first, long long n, size_t size);

/* ---- runner ------------------------------------------------------------------------------- */
/* The suites' set-up (starts the watchdog) and clean-up (disarms it), for GUI_CHECK_MAIN. */
int gui_suite_start(void);
void gui_suite_end(void);
/* Names a GUI suite for the shared main (tests/common/check_main.h): the watchdog around the
 * run, stdout unbuffered and each result printed when its test ends. */
#define GUI_CHECK_MAIN(make) CHECK_MAIN_EX(make, gui_suite_start, gui_suite_end, CHECK_MAIN_LOG_EACH)

#ifdef __cplusplus
}
#endif
#endif
