/*
 * chat_bus.c - gui_chat's bus client: a chat room on the AsyncIPC broker.
 *
 * Topics: chat/<room> carries the chat text (payload = the text, the sender is the broker's
 * stamp), chat/<room>/hello the room handshake. The client subscribes to chat/<room>/#; the
 * broker routes every publication back to its publisher too, so our own lines appear when the
 * broker has routed them.
 *
 * Handshake (so nobody publishes into a room before the others listen): after each (re)connect
 * a member publishes a hello; a member that receives a hello from someone it does not know yet
 * remembers them and answers with its own hello. The subscription is sent before the hello on
 * the same connection, so receiving X's hello proves X is subscribed. $bus/left (on_presence)
 * forgets members that leave.
 *
 * Thread: the client runs its callbacks through the app's window dispatcher: every function
 * here runs on the UI thread (the callbacks check it).
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A printable name for a peer (anonymous clients by id). */
static const char *who(const aipc_bus_peer *p, char *buf, size_t cap)
{
    if (p && p->name && p->name[0])
        return p->name;
    snprintf(buf, cap, "#%llu", p ? (unsigned long long)p->id : 0ULL);
    return buf;
}

static int peer_index(const chat_bus *b, const char *name)
{
    for (int i = 0; i < b->npeers; i++)
        if (strcmp(b->peers[i], name) == 0)
            return i;
    return -1;
}

/* Remembers `name`; false when it was known already. A full table still answers hellos (a
 * member that is not recorded gets an answer each time it says hello: harmless). */
static bool peer_add(chat_bus *b, const char *name)
{
    if (peer_index(b, name) >= 0)
        return false;
    if (b->npeers < CHAT_MAX_PEERS)
        snprintf(b->peers[b->npeers++], sizeof b->peers[0], "%s", name);
    return true;
}

static bool peer_remove(chat_bus *b, const char *name)
{
    int i = peer_index(b, name);
    if (i < 0)
        return false;
    memmove(b->peers[i], b->peers[i + 1], (size_t)(b->npeers - i - 1) * sizeof b->peers[0]);
    b->npeers--;
    return true;
}

static void say_hello(chat_bus *b)
{
    if (!b->bus)
        return;
    int rc = aipc_bus_publish(b->bus, b->hello, "", 0, false);
    if (rc != AIPC_OK)
        chat_say(b->app, "[bus] hello failed: %s", aipc_strerror(rc));
}

/* UI thread: a publication on chat/<room>/#. */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    chat_app *app = user;
    chat_bus *b = &app->bus;
    if (!chat_on_ui_thread(app, "bus.on_message"))
        return;
    char idbuf[32], text[CHAT_TEXT_MAX + 8];
    const char *name = who(from, idbuf, sizeof idbuf);
    bool self = strcmp(name, app->opt.name) == 0;

    if (strcmp(topic, b->hello) == 0) {
        if (!self && !retained && peer_add(b, name)) {
            chat_say(app, "* %s is in the room", name);
            say_hello(b);   /* answer: now they know we listen too */
            chat_window_status(app);
            chat_auto_progress(app);
        }
        return;
    }
    chat_printable(text, sizeof text, data, len);
    if (strcmp(topic, b->topic) == 0) {
        chat_say(app, "[bus] %s: %s", name, text);
        if (self)
            b->from_self++;
        else
            b->from_peers++;
        chat_auto_progress(app);
    } else {
        chat_say(app, "[bus %s] %s: %s", topic, name, text);
    }
}

/* UI thread: a client joined or left the bus; only room members leaving are of interest. */
static void on_presence(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *p)
{
    chat_app *app = user;
    if (!chat_on_ui_thread(app, "bus.on_presence"))
        return;
    if (!joined && p->name[0] && peer_remove(&app->bus, p->name)) {
        chat_say(app, "* %s left the room", p->name);
        chat_window_status(app);
    }
}

/* UI thread: connection state. aipc_bus_close runs the final on_state(CLOSED) on the closing
 * thread, which is this one too. */
static void on_state(aipc_bus *bus, void *user, aipc_bus_state state, int error)
{
    chat_app *app = user;
    chat_bus *b = &app->bus;
    if (!chat_on_ui_thread(app, "bus.on_state"))
        return;
    bool was_connected = b->connected;
    b->connected = state == AIPC_BUS_CONNECTED;
    switch (state) {
    case AIPC_BUS_CONNECTED:
        chat_say(app, "[bus] connected to the broker as %s (id %llu), room %s", app->opt.name,
                 (unsigned long long)aipc_bus_client_id(bus), b->topic);
        say_hello(b);
        break;
    case AIPC_BUS_DISCONNECTED:   /* the connection broke; RECONNECTING follows */
        b->npeers = 0;   /* members who leave meanwhile are announced to those who stayed */
        chat_say(app, "[bus] connection lost%s%s; reconnecting", error ? ": " : "",
                 error ? aipc_strerror(error) : "");
        break;
    case AIPC_BUS_RECONNECTING:   /* an attempt failed: quiet retries with backoff */
        b->npeers = 0;
        if (was_connected)
            chat_say(app, "[bus] connection lost%s%s; reconnecting", error ? ": " : "",
                     error ? aipc_strerror(error) : "");
        break;
    case AIPC_BUS_CLOSED:
        chat_say(app, "[bus] closed");
        break;
    default:
        break;
    }
    chat_window_status(app);
}

/* UI thread: an error without a request to report it to (e.g. name_taken). */
static void on_error(aipc_bus *bus, void *user, int error, const char *code, const char *message)
{
    chat_app *app = user;
    if (!chat_on_ui_thread(app, "bus.on_error"))
        return;
    chat_say(app, "[bus] error: %s%s%s", code[0] ? code : aipc_strerror(error),
             message[0] ? " - " : "", message);
}

/* UI thread: the broker dropped publications for us (we read too slowly). */
static void on_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    chat_app *app = user;
    if (!chat_on_ui_thread(app, "bus.on_dropped"))
        return;
    chat_say(app, "[bus] the broker dropped %llu message(s) for us", (unsigned long long)count);
}

bool chat_bus_start(chat_app *app)
{
    chat_bus *b = &app->bus;
    b->app = app;
    snprintf(b->topic, sizeof b->topic, "chat/%s", app->opt.room);
    snprintf(b->hello, sizeof b->hello, "chat/%s/hello", app->opt.room);
    snprintf(b->filter, sizeof b->filter, "chat/%s/#", app->opt.room);

    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.pipe_name = app->opt.broker[0] ? app->opt.broker : NULL;
    o.name = app->opt.name;
    o.user = app;
    o.on_message = on_message;
    o.on_presence = on_presence;
    o.on_state = on_state;
    o.on_error = on_error;
    o.on_dropped = on_dropped;
    o.dispatcher = app->dispatcher;   /* every callback above runs on the UI thread */
    int rc = aipc_bus_connect(&o, &b->bus);
    if (rc != AIPC_OK) {
        b->bus = NULL;
        chat_say(app, "[bus] connect: %s", aipc_strerror(rc));
        return false;
    }
    /* Queued now, sent first after every (re)connect: before our hello. */
    rc = aipc_bus_subscribe(b->bus, b->filter);
    if (rc != AIPC_OK) {
        chat_say(app, "[bus] subscribe %s: %s", b->filter, aipc_strerror(rc));
        chat_bus_stop(app);
        return false;
    }
    char *broker = chat_narrow(app->opt.broker[0] ? app->opt.broker : AIPC_DEFAULT_BROKER_PIPE);
    chat_say(app, "[bus] connecting to the broker at %s", broker ? broker : "?");
    free(broker);
    chat_window_status(app);
    return true;
}

int chat_bus_send(chat_app *app, const char *text)
{
    chat_bus *b = &app->bus;
    if (!b->bus)
        return AIPC_ECLOSED;
    int rc = aipc_bus_publish(b->bus, b->topic, text, strlen(text), false);
    if (rc != AIPC_OK)
        chat_say(app, "[bus] publish failed: %s", aipc_strerror(rc));
    else if (!b->connected)
        chat_say(app, "[bus] (queued until the broker is reachable) %s", text);
    return rc;
}

void chat_bus_stop(chat_app *app)
{
    chat_bus *b = &app->bus;
    aipc_bus *bus = b->bus;
    if (!bus)
        return;
    b->bus = NULL;   /* callbacks running inside the close must not use it any more */
    /* On the dispatcher's thread this never waits; on_state(CLOSED) runs before it returns. */
    aipc_bus_close(bus);
    b->connected = false;
    b->npeers = 0;
}

const char *chat_bus_state(const chat_app *app)
{
    const chat_bus *b = &app->bus;
    if (!app->opt.use_bus)
        return "off";
    if (!b->bus)
        return "closed";
    return aipc_bus_state_name(aipc_bus_get_state(b->bus));
}
