/*
 * chat.h - gui_chat, a Win32 chat window over an AsyncIPC point-to-point pipe and the bus.
 *
 * UI-thread mode: one aipc_dispatcher (AIPC_DISPATCH_WINDOW) is created on the UI thread and
 * attached to the pipe (aipc_pipe_set_dispatcher before Create) and to the bus client
 * (aipc_bus_options.dispatcher). Every SDK callback therefore runs on the UI thread, inside
 * DispatchMessage of the ordinary message loop, and touches the window's controls directly -
 * no locks, no PostMessage hand-offs. Closing the window calls Exit/Release/aipc_bus_close
 * from the window procedure; on the dispatcher's own thread those never wait.
 *
 * Files: chat_main.c (command line, start-up, message loop, teardown), chat_window.c (window,
 * controls, transcript), chat_pipe.c (the pipe and its delegate), chat_bus.c (the bus client
 * and the room handshake), chat_auto.c (scripted mode), chat_text.c (UTF-8/UTF-16 helpers).
 *
 * Thread: everything in this program runs on the UI thread, except the console control
 * handler in chat_main.c (it only posts WM_CLOSE). chat_on_ui_thread() checks that in every
 * SDK callback.
 */
#ifndef GUI_CHAT_CHAT_H
#define GUI_CHAT_CHAT_H

#include <windows.h>

#include <stdbool.h>
#include <stddef.h>

#include "asyncipc/asyncipc.h"

#define CHAT_NAME_MAX  128   /* bus client names: [A-Za-z0-9._-]{1,128} */
#define CHAT_ROOM_MAX  64
#define CHAT_TEXT_MAX  1024  /* longest message typed or shown, in bytes */
#define CHAT_MAX_PEERS 64    /* room members remembered for the handshake */

/* Exit codes. */
#define CHAT_EXIT_OK       0
#define CHAT_EXIT_SETUP    1   /* window, dispatcher, pipe or bus could not be set up */
#define CHAT_EXIT_USAGE    2
#define CHAT_EXIT_TIMEOUT  3   /* --auto: the exchange did not finish within --timeout */
#define CHAT_EXIT_THREAD   4   /* a callback ran on a thread other than the UI thread */
#define CHAT_EXIT_FAILED   5   /* --auto: a send failed or the pipe could not connect */

/* Command line (chat_main.c fills it before anything starts; read-only afterwards). */
typedef struct chat_options {
    bool server;                        /* --role server|client */
    PipeImplType engine;                /* --engine async|overlapped */
    wchar_t pipe_name[256];             /* --pipe NAME */
    wchar_t broker[256];                /* --broker PIPE ("" = AIPC_DEFAULT_BROKER_PIPE) */
    char name[CHAT_NAME_MAX + 1];       /* --name X: bus client name and pipe message prefix */
    char room[CHAT_ROOM_MAX + 1];       /* --room R: bus topic chat/R */
    bool use_bus;                       /* off with --no-bus */
    long auto_count;                    /* --auto N: scripted mode (0 = interactive) */
    DWORD timeout_ms;                   /* --timeout MS: scripted mode deadline, pipe connect */
} chat_options;

typedef struct chat_app chat_app;

/* The point-to-point pipe (chat_pipe.c). */
typedef struct chat_pipe {
    IPipeDelegate base;   /* first member: the SDK hands &base back to the callbacks */
    chat_app *app;
    INamedPipe *pipe;     /* NULL when stopped */
    bool connected;       /* a peer is connected */
    bool finished;        /* client only: gave up connecting or the server left */
    long received;        /* messages received (all peers) */
    long written;         /* OnSend reports: messages fully written */
} chat_pipe;

/* The bus client (chat_bus.c). */
typedef struct chat_bus {
    chat_app *app;
    aipc_bus *bus;                      /* NULL when stopped */
    char topic[8 + CHAT_ROOM_MAX];      /* chat/<room>: chat text */
    char hello[16 + CHAT_ROOM_MAX];     /* chat/<room>/hello: "I am in the room" */
    char filter[8 + CHAT_ROOM_MAX];     /* chat/<room>/# (matches both) */
    bool connected;
    long from_peers;                    /* chat messages received from other members */
    long from_self;                     /* our own chat messages, routed back by the broker */
    int npeers;                         /* members known to be subscribed to the room */
    char peers[CHAT_MAX_PEERS][CHAT_NAME_MAX + 1];
} chat_bus;

/* Scripted mode (chat_auto.c). */
typedef struct chat_auto {
    bool pipe_sent;       /* the N pipe messages are queued */
    bool bus_sent;        /* the N bus messages are queued */
    bool done;            /* finished (success, failure or timeout): WM_CLOSE is posted */
} chat_auto;

struct chat_app {
    chat_options opt;
    DWORD ui_thread;              /* the thread that runs the window and the dispatcher */
    aipc_dispatcher *dispatcher;  /* AIPC_DISPATCH_WINDOW, owned by ui_thread */
    HWND wnd, status, list, edit;
    chat_pipe pipe;
    chat_bus bus;
    chat_auto autom;
    volatile LONG callbacks;      /* SDK callbacks seen (all checked; Interlocked) */
    volatile LONG wrong_thread;   /* callbacks that ran elsewhere (must stay 0; Interlocked) */
    int exit_code;                /* returned by the message loop (PostQuitMessage) */
};

/* ---- chat_main.c -------------------------------------------------------------------------- */
/* True when the caller is the UI thread; otherwise logs an error naming `where` and counts it.
 * Every SDK callback calls it first. */
bool chat_on_ui_thread(chat_app *app, const char *where);

/* ---- chat_window.c ------------------------------------------------------------------------ */
/* Registers the class and creates the (visible) main window with its controls. */
bool chat_window_create(chat_app *app, HINSTANCE inst);
/* Appends one line (UTF-8, printf format) to the transcript listbox and scrolls to it. */
void chat_say(chat_app *app, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Rewrites the status line from the pipe's and the bus client's state. */
void chat_window_status(chat_app *app);
/* Writes every transcript line to stdout (UTF-8), each prefixed with `prefix`. */
void chat_window_print_transcript(chat_app *app, const char *prefix);

/* ---- chat_pipe.c -------------------------------------------------------------------------- */
/* Creates the pipe on the dispatcher and starts it (server listens, client connects). */
bool chat_pipe_start(chat_app *app);
/* Sends "<name>: <text>"; a finished client reconnects instead (text not sent). 0 or AIPC_E*. */
int  chat_pipe_send(chat_app *app, const char *text);
/* Exit + Release (no callback of the pipe starts afterwards). */
void chat_pipe_stop(chat_app *app);
const char *chat_pipe_state(const chat_app *app);

/* ---- chat_bus.c --------------------------------------------------------------------------- */
/* Connects to the broker on the dispatcher and subscribes to the room. */
bool chat_bus_start(chat_app *app);
/* Publishes `text` on chat/<room>. 0 or AIPC_E*. */
int  chat_bus_send(chat_app *app, const char *text);
/* aipc_bus_close: its final callbacks run here, before it returns. */
void chat_bus_stop(chat_app *app);
const char *chat_bus_state(const chat_app *app);

/* ---- chat_auto.c -------------------------------------------------------------------------- */
/* Arms the deadline timer (scripted mode only). */
void chat_auto_start(chat_app *app);
/* Called after every event that may move the script on: sends, or finishes when complete. */
void chat_auto_progress(chat_app *app);
/* Ends the script: prints the transcript and a summary, posts WM_CLOSE; exit code `code`. */
void chat_auto_finish(chat_app *app, int code, const char *why);
/* WM_TIMER with CHAT_TIMER_DEADLINE. */
void chat_auto_deadline(chat_app *app);
#define CHAT_TIMER_DEADLINE 1

/* ---- chat_text.c -------------------------------------------------------------------------- */
/* UTF-8 -> new UTF-16 string (malloc; NULL on failure). Invalid sequences become U+FFFD. */
wchar_t *chat_widen(const char *utf8);
/* UTF-16 -> new UTF-8 string (malloc; NULL on failure). */
char *chat_narrow(const wchar_t *w);
/* Copies up to `cap`-1 bytes of a message into `out` for display: control bytes (also NUL)
 * become '.', a cut is marked with "...". Returns out. */
char *chat_printable(char *out, size_t cap, const void *data, size_t len);
/* True for a valid bus client name / room name ([A-Za-z0-9._-], 1..max bytes). */
bool chat_valid_name(const char *s, size_t max);

#endif /* GUI_CHAT_CHAT_H */
