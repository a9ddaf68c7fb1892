/*
 * consumer.c - built against an INSTALLED AsyncIPC (headers, import library and CMake package
 * from the installation folder) and run with the installed asyncipc.dll. It checks:
 *   1. the loaded DLL's version equals the headers' version;
 *   2. the classic point-to-point API: a server and a client pipe in this process exchange
 *      a message each way;
 *   3. the bus through the installed broker service: client "sub" subscribes, then (after a
 *      ping proves the subscription was processed) client "pub" publishes and "sub" receives
 *      it; "pub" sends a request to "sub" and gets its reply.
 * Usage: consumer.exe [BROKER_PIPE]   (default: the SDK's default broker pipe)
 * Every wait is bounded; exit code 0 only when everything arrived intact.
 * Threads: callbacks run on the SDK's I/O thread and only record data and set events.
 */
#include <asyncipc/asyncipc.h>

#include <windows.h>
#include <stdio.h>
#include <string.h>

#define WAIT_MS 15000

static int failures;

/* Reports one check. */
static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* Waits (bounded) for an event set by a callback. */
static int wait_for(HANDLE ev, const char *what)
{
    int ok = WaitForSingleObject(ev, WAIT_MS) == WAIT_OBJECT_0;
    check(ok, what);
    return ok;
}

/* ---- point-to-point ------------------------------------------------------------------------ */
typedef struct peer {
    aipc_pipe_delegate d;     /* first member: the delegate pointer is the peer */
    aipc_named_pipe *pipe;
    int is_server;
    HANDLE got;               /* set when the expected message arrived */
    char buf[64];
} peer;

/* Server: answers the client's message; client: records the answer. (I/O thread.) */
static void p2p_recv(aipc_pipe_delegate *self, void *data, int size)
{
    peer *p = (peer *)self;
    if (size <= 0 || size >= (int)sizeof p->buf)
        return;
    memcpy(p->buf, data, (size_t)size);
    p->buf[size] = 0;
    if (p->is_server)
        p->pipe->Send(p->pipe, "pong from server");
    SetEvent(p->got);
}

/* A server and a client in this process exchange one message each way. */
static void test_p2p(void)
{
    wchar_t name[64];
    swprintf(name, 64, L"asyncipc.consumer.%lu", GetCurrentProcessId());
    peer srv = { { NULL, NULL, NULL, p2p_recv, NULL }, NULL, 1, CreateEventW(NULL, FALSE, FALSE, NULL), "" };
    peer cli = { { NULL, NULL, NULL, p2p_recv, NULL }, NULL, 0, CreateEventW(NULL, FALSE, FALSE, NULL), "" };
    check(CreateInstance(PIPE_OVERLAPPED, &srv.pipe) == 0, "CreateInstance(PIPE_OVERLAPPED)");
    check(CreateInstance(PIPE_ASYNC, &cli.pipe) == 0, "CreateInstance(PIPE_ASYNC)");
    if (!srv.pipe || !cli.pipe)
        return;
    check(srv.pipe->Create(srv.pipe, name, PIPE_SERVER, &srv.d), "server Create");
    check(cli.pipe->Create(cli.pipe, name, PIPE_CLIENT, &cli.d), "client Create");
    cli.pipe->Send(cli.pipe, "ping from client");
    if (wait_for(srv.got, "p2p: server received the client's message"))
        check(strcmp(srv.buf, "ping from client") == 0, "p2p: client message intact");
    if (wait_for(cli.got, "p2p: client received the server's answer"))
        check(strcmp(cli.buf, "pong from server") == 0, "p2p: server answer intact");
    cli.pipe->Release(cli.pipe);
    srv.pipe->Release(srv.pipe);
    CloseHandle(srv.got);
    CloseHandle(cli.got);
}

/* ---- bus through the installed broker ------------------------------------------------------ */
typedef struct bus_state {
    HANDLE connected, ponged, message, replied;
    char topic[128], payload[128], from[64], reply[64];
    int reply_status;
} bus_state;

/* Connection state changes (I/O thread). */
static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int error)
{
    if (st == AIPC_BUS_CONNECTED)
        SetEvent(((bus_state *)user)->connected);
    else
        printf("bus state %s (%d: %s)\n", aipc_bus_state_name(st), error, aipc_strerror(error));
}

/* A publication for "sub" (I/O thread). */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    bus_state *s = user;
    snprintf(s->topic, sizeof s->topic, "%s", topic);
    snprintf(s->payload, sizeof s->payload, "%.*s", (int)len, (const char *)data);
    snprintf(s->from, sizeof s->from, "%s", from ? from->name : "");
    SetEvent(s->message);
}

/* A request for "sub": answer it at once (I/O thread). */
static void on_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    static const char answer[] = "answer from sub";
    aipc_bus_reply(bus, from->id, req_id, answer, sizeof answer - 1);
}

/* Pong for "sub": the broker has processed the subscription sent before it (I/O thread). */
static void on_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                    const void *data, size_t len)
{
    if (status == 0)
        SetEvent(((bus_state *)user)->ponged);
}

/* Reply to "pub"'s request (I/O thread). */
static void on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    bus_state *s = user;
    s->reply_status = status;
    snprintf(s->reply, sizeof s->reply, "%.*s", (int)len, data ? (const char *)data : "");
    SetEvent(s->replied);
}

static const wchar_t *g_broker_pipe;   /* argv[1], or NULL for the default broker pipe */

/* Opens a named bus client on the broker pipe. */
static aipc_bus *open_bus(const char *name, bus_state *s, int subscriber)
{
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.pipe_name = g_broker_pipe;
    o.name = name;
    o.user = s;
    o.on_state = on_state;
    if (subscriber) {
        o.on_message = on_message;
        o.on_request = on_request;
    }
    aipc_bus *bus = NULL;
    check(aipc_bus_connect(&o, &bus) == 0, subscriber ? "bus: connect sub" : "bus: connect pub");
    return bus;
}

/* Two named clients exchange a publication and a request/reply through the broker. */
static void test_bus(void)
{
    bus_state sub_s = { CreateEventW(NULL, TRUE, FALSE, NULL), CreateEventW(NULL, TRUE, FALSE, NULL),
                        CreateEventW(NULL, TRUE, FALSE, NULL), NULL, "", "", "", "", -1 };
    bus_state pub_s = { CreateEventW(NULL, TRUE, FALSE, NULL), NULL, NULL,
                        CreateEventW(NULL, TRUE, FALSE, NULL), "", "", "", "", -1 };
    char sub_name[64], pub_name[64];
    snprintf(sub_name, sizeof sub_name, "consumer-sub-%lu", GetCurrentProcessId());
    snprintf(pub_name, sizeof pub_name, "consumer-pub-%lu", GetCurrentProcessId());
    aipc_bus *sub = open_bus(sub_name, &sub_s, 1);
    aipc_bus *pub = open_bus(pub_name, &pub_s, 0);
    if (sub && pub && wait_for(sub_s.connected, "bus: sub connected to the installed broker")
        && wait_for(pub_s.connected, "bus: pub connected to the installed broker")) {
        check(aipc_bus_subscribe(sub, "installer/consumer/#") == 0, "bus: subscribe");
        check(aipc_bus_ping(sub, 0, on_pong, &sub_s) > 0, "bus: ping");
        if (wait_for(sub_s.ponged, "bus: pong after the subscription")) {
            static const char msg[] = "hello through the installed broker";
            check(aipc_bus_publish(pub, "installer/consumer/hello", msg, sizeof msg - 1, false) == 0,
                  "bus: publish");
            if (wait_for(sub_s.message, "bus: sub received the publication")) {
                check(strcmp(sub_s.topic, "installer/consumer/hello") == 0, "bus: topic intact");
                check(strcmp(sub_s.payload, msg) == 0, "bus: payload intact");
                check(strcmp(sub_s.from, pub_name) == 0, "bus: from stamped by the broker");
            }
            check(aipc_bus_request(pub, sub_name, "question", 8, 10000, on_reply, &pub_s) > 0,
                  "bus: request");
            if (wait_for(pub_s.replied, "bus: pub received the reply"))
                check(pub_s.reply_status == 0 && strcmp(pub_s.reply, "answer from sub") == 0,
                      "bus: reply intact");
        }
    }
    if (pub)
        aipc_bus_close(pub);
    if (sub)
        aipc_bus_close(sub);
}

/* Runs every check; exit code 0 only when all passed. A plain main(), so that the README's
 * CMakeLists.txt builds it as it is (no -municode). */
int main(int argc, char **argv)
{
    static wchar_t pipe[256];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && MultiByteToWideChar(CP_ACP, 0, argv[1], -1, pipe, 256) > 0)
        g_broker_pipe = pipe;
    printf("AsyncIPC headers %s, DLL %s\n", AIPC_VERSION_STRING, aipc_version_string());
    check(aipc_version() == AIPC_VERSION, "DLL version equals header version");
    test_p2p();
    test_bus();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
