/*
 * chat_pipe.c - gui_chat's point-to-point pipe (classic INamedPipe / IPipeDelegate, C API).
 *
 * The pipe runs its callbacks through the app's window dispatcher, so every delegate function
 * below runs on the UI thread, inside DispatchMessage, and writes to the transcript directly.
 * Messages are text "<name>: <text>", readable by the classic samples as well.
 * Thread: UI thread only (the callbacks check it).
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static chat_app *app_of(IPipeDelegate *self)
{
    return ((chat_pipe *)self)->app;
}

/* UI thread: server - the pipe instance exists; client - the connect attempt started. */
static void on_create(IPipeDelegate *self, bool ok)
{
    chat_app *app = app_of(self);
    if (!chat_on_ui_thread(app, "pipe.OnCreate"))
        return;
    char *name = chat_narrow(app->opt.pipe_name);
    if (app->opt.server)
        chat_say(app, ok ? "[pipe] listening on %s" : "[pipe] cannot listen on %s (name taken?)",
                 name ? name : "?");
    else
        chat_say(app, ok ? "[pipe] connecting to %s" : "[pipe] cannot connect to %s",
                 name ? name : "?");
    free(name);
    if (!ok) {
        app->pipe.finished = true;
        if (app->opt.auto_count > 0)
            chat_auto_finish(app, CHAT_EXIT_FAILED, "the pipe could not be created");
    }
    chat_window_status(app);
}

/* UI thread: a peer connected (ok), or the client gave up after its connect timeout. */
static void on_connected(IPipeDelegate *self, bool ok)
{
    chat_app *app = app_of(self);
    if (!chat_on_ui_thread(app, "pipe.OnConnected"))
        return;
    app->pipe.connected = ok;
    if (ok) {
        chat_say(app, "[pipe] %s connected", app->opt.server ? "a client" : "the server");
    } else {
        app->pipe.finished = true;
        chat_say(app, "[pipe] no server answered; Send on the pipe reconnects");
        if (app->opt.auto_count > 0)
            chat_auto_finish(app, CHAT_EXIT_FAILED, "the pipe client could not connect");
    }
    chat_window_status(app);
    chat_auto_progress(app);
}

/* UI thread: one message was fully written to the pipe. */
static void on_send(IPipeDelegate *self, int size)
{
    chat_app *app = app_of(self);
    if (!chat_on_ui_thread(app, "pipe.OnSend"))
        return;
    app->pipe.written++;
    chat_auto_progress(app);
}

/* UI thread: one message arrived; `data` is valid during this call only. */
static void on_recv(IPipeDelegate *self, void *data, int size)
{
    chat_app *app = app_of(self);
    if (!chat_on_ui_thread(app, "pipe.OnRecv"))
        return;
    char text[CHAT_TEXT_MAX + CHAT_NAME_MAX + 8];
    chat_say(app, "[pipe] %s", chat_printable(text, sizeof text, data, (size_t)size));
    app->pipe.received++;
    chat_auto_progress(app);
}

/* UI thread: the peer left. A server listens again by itself; a client is finished. */
static void on_disconnected(IPipeDelegate *self)
{
    chat_app *app = app_of(self);
    if (!chat_on_ui_thread(app, "pipe.OnDisconnected"))
        return;
    app->pipe.connected = false;
    if (app->opt.server) {
        chat_say(app, "[pipe] the client left; waiting for the next one");
    } else {
        app->pipe.finished = true;
        chat_say(app, "[pipe] the server left; Send on the pipe reconnects");
    }
    chat_window_status(app);
}

bool chat_pipe_start(chat_app *app)
{
    chat_pipe *cp = &app->pipe;
    cp->app = app;
    cp->base.OnCreate = on_create;
    cp->base.OnConnected = on_connected;
    cp->base.OnSend = on_send;
    cp->base.OnRecv = on_recv;
    cp->base.OnDisconnected = on_disconnected;
    cp->connected = false;
    cp->finished = false;

    INamedPipe *p = NULL;
    int rc = CreateInstance(app->opt.engine, &p);
    if (rc != AIPC_OK) {
        chat_say(app, "[pipe] CreateInstance: %s", aipc_strerror(rc));
        return false;
    }
    /* Before Create: every callback of this pipe runs on the UI thread from now on. */
    rc = aipc_pipe_set_dispatcher(p, app->dispatcher);
    if (rc == AIPC_OK && !app->opt.server)
        rc = aipc_pipe_set_option(p, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, app->opt.timeout_ms);
    if (rc != AIPC_OK) {
        chat_say(app, "[pipe] set-up: %s", aipc_strerror(rc));
        p->Release(p);
        return false;
    }
    cp->pipe = p;
    /* Never waits: OnCreate and OnConnected follow through the message loop. */
    if (!p->Create(p, app->opt.pipe_name, app->opt.server ? PIPE_SERVER : PIPE_CLIENT, &cp->base)) {
        /* a server also gets OnCreate(false), which reports it; keep the object until exit */
        cp->finished = true;
        if (!app->opt.server) {
            chat_say(app, "[pipe] Create failed");
            return false;
        }
    }
    chat_window_status(app);
    return true;
}

int chat_pipe_send(chat_app *app, const char *text)
{
    chat_pipe *cp = &app->pipe;
    if (!cp->pipe || (!app->opt.server && cp->finished)) {
        /* A client connects once: make a new one. The text is not sent (say so). */
        chat_pipe_stop(app);
        chat_say(app, "[pipe] not connected; reconnecting - send again once connected");
        chat_pipe_start(app);
        return AIPC_ECLOSED;
    }
    char msg[CHAT_NAME_MAX + CHAT_TEXT_MAX + 8];
    int n = snprintf(msg, sizeof msg, "%s: %s", app->opt.name, text);
    if (n < 0)
        return AIPC_EINVAL;
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1;
    int rc = cp->pipe->SendData(cp->pipe, msg, (size_t)n);
    if (rc != AIPC_OK)
        chat_say(app, "[pipe] send failed: %s", aipc_strerror(rc));
    else
        chat_say(app, "[pipe] %s%s", msg, cp->connected ? "" : "   (queued until a client connects)");
    return rc;
}

void chat_pipe_stop(chat_app *app)
{
    chat_pipe *cp = &app->pipe;
    INamedPipe *p = cp->pipe;
    if (!p)
        return;
    cp->pipe = NULL;
    cp->connected = false;
    /* On the dispatcher's thread neither call waits, and no callback of the pipe starts after
     * Exit returns (queued ones are dropped). Release frees the object. */
    p->Exit(p);
    p->Release(p);
}

const char *chat_pipe_state(const chat_app *app)
{
    const chat_pipe *cp = &app->pipe;
    if (!cp->pipe)
        return "stopped";
    if (cp->connected)
        return "connected";
    if (cp->finished)
        return app->opt.server ? "failed" : "disconnected";
    return app->opt.server ? "listening" : "connecting";
}
