/*
 * chat_auto.c - gui_chat's scripted mode (--auto N), for the demo and for automation.
 *
 * Sends N messages over the pipe (once a peer is connected) and N over the bus (once another
 * room member is known to listen: the hello handshake in chat_bus.c), and finishes when
 *   - the peer's N pipe messages are in the transcript and ours are written (OnSend), and
 *   - the peer's N bus messages are in the transcript and the broker has routed our N back
 *     to us (so it has routed them to the peer too).
 * Then it prints the transcript to stdout and posts WM_CLOSE to its own window. A WM_TIMER
 * deadline (--timeout) bounds the whole exchange. Everything is event-driven: progress is
 * checked after each callback, nothing sleeps or polls.
 * Thread: UI thread only.
 */
#include "chat.h"

#include <stdio.h>

void chat_auto_start(chat_app *app)
{
    if (app->opt.auto_count <= 0)
        return;
    if (!SetTimer(app->wnd, CHAT_TIMER_DEADLINE, app->opt.timeout_ms, NULL))
        chat_auto_finish(app, CHAT_EXIT_SETUP, "SetTimer failed");
}

static bool send_all(chat_app *app, const char *via, int (*send)(chat_app *, const char *))
{
    for (long i = 1; i <= app->opt.auto_count; i++) {
        char text[128];
        snprintf(text, sizeof text, "message %ld of %ld over the %s", i, app->opt.auto_count, via);
        if (send(app, text) != AIPC_OK)
            return false;
    }
    return true;
}

void chat_auto_progress(chat_app *app)
{
    chat_auto *a = &app->autom;
    long n = app->opt.auto_count;
    if (n <= 0 || a->done)
        return;
    if (!a->pipe_sent && app->pipe.connected) {
        a->pipe_sent = true;
        if (!send_all(app, "pipe", chat_pipe_send)) {
            chat_auto_finish(app, CHAT_EXIT_FAILED, "a pipe send failed");
            return;
        }
    }
    if (app->opt.use_bus && !a->bus_sent && app->bus.connected && app->bus.npeers > 0) {
        a->bus_sent = true;
        if (!send_all(app, "bus", chat_bus_send)) {
            chat_auto_finish(app, CHAT_EXIT_FAILED, "a bus publish failed");
            return;
        }
    }
    bool pipe_done = a->pipe_sent && app->pipe.received >= n && app->pipe.written >= n;
    bool bus_done = !app->opt.use_bus ||
                    (a->bus_sent && app->bus.from_peers >= n && app->bus.from_self >= n);
    if (pipe_done && bus_done)
        chat_auto_finish(app, CHAT_EXIT_OK, NULL);
}

void chat_auto_deadline(chat_app *app)
{
    char why[160];
    snprintf(why, sizeof why, "timed out after %lu ms (pipe: %ld received, %ld written; "
             "bus: %ld from peers, %ld own)", (unsigned long)app->opt.timeout_ms,
             app->pipe.received, app->pipe.written, app->bus.from_peers, app->bus.from_self);
    chat_auto_finish(app, CHAT_EXIT_TIMEOUT, why);
}

void chat_auto_finish(chat_app *app, int code, const char *why)
{
    chat_auto *a = &app->autom;
    if (a->done)
        return;
    a->done = true;
    if (app->wnd)
        KillTimer(app->wnd, CHAT_TIMER_DEADLINE);
    if (app->wrong_thread > 0) {
        code = CHAT_EXIT_THREAD;
        why = "callbacks ran outside the UI thread";
    }
    char prefix[CHAT_NAME_MAX + 8];
    snprintf(prefix, sizeof prefix, "%s | ", app->opt.name);
    printf("---- gui_chat %s: transcript ----\n", app->opt.name);
    chat_window_print_transcript(app, prefix);
    printf("---- gui_chat %s: %s; %ld SDK callbacks, %ld on the UI thread (tid %lu), "
           "%ld elsewhere ----\n", app->opt.name, code == CHAT_EXIT_OK ? "done" : "FAILED",
           (long)app->callbacks, (long)(app->callbacks - app->wrong_thread),
           (unsigned long)app->ui_thread, (long)app->wrong_thread);
    fflush(stdout);
    if (why)
        fprintf(stderr, "gui_chat %s: %s\n", app->opt.name, why);
    app->exit_code = code;
    /* Closing goes through the window procedure like a user's click on [x]. */
    if (app->wnd)
        PostMessageW(app->wnd, WM_CLOSE, 0, 0);
}
