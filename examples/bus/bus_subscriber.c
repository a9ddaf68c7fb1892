/*
 * bus_subscriber.c - example: a bus subscriber and responder (C API).
 *
 *   bus_subscriber [--pipe NAME] [--count N]
 *
 * Connects as "example-svc", subscribes to "example/#", prints every publication and every
 * client joining or leaving, and answers requests ("time?" -> the local time). Survives broker
 * restarts (auto-reconnect). Stops on Ctrl+C, or after N publications with --count.
 * Pair it with bus_publisher.exe.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

static HANDLE g_stop;
static volatile LONG g_seen;
static long g_count;

/* All callbacks run on the SDK's I/O thread; data is valid only during the call. */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    printf("[%s%s] from %s (id %llu, pid %u): %.*s\n", topic, retained ? ", retained" : "",
           from->name[0] ? from->name : "anonymous", (unsigned long long)from->id, from->pid,
           (int)len, (const char *)data);
    fflush(stdout);
    if (g_count && InterlockedIncrement(&g_seen) >= g_count)
        SetEvent(g_stop);
}

static void on_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    char answer[128];
    SYSTEMTIME st;
    GetLocalTime(&st);
    int n = snprintf(answer, sizeof answer, "it is %02u:%02u:%02u (you asked: %.*s)", st.wHour,
                     st.wMinute, st.wSecond, (int)(len > 40 ? 40 : len), (const char *)data);
    /* a reply may also be sent later, from any thread */
    aipc_bus_reply(bus, from->id, req_id, answer, (size_t)n);
}

static void on_presence(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *who)
{
    printf("* %s %s (id %llu, pid %u)\n", who->name[0] ? who->name : "anonymous",
           joined ? "joined" : "left", (unsigned long long)who->id, who->pid);
    fflush(stdout);
}

static void on_state(aipc_bus *bus, void *user, aipc_bus_state state, int error)
{
    fprintf(stderr, "state: %s%s%s\n", aipc_bus_state_name(state), error ? " - " : "",
            error ? aipc_strerror(error) : "");
}

static BOOL WINAPI on_ctrl(DWORD type)
{
    SetEvent(g_stop);
    return TRUE;
}

int main(int argc, char **argv)
{
    wchar_t pipe[256] = L"";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pipe") == 0)
            MultiByteToWideChar(CP_UTF8, 0, argv[i + 1], -1, pipe, 256);
        else if (strcmp(argv[i], "--count") == 0)
            g_count = atol(argv[i + 1]);
    }
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(on_ctrl, TRUE);

    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.pipe_name = pipe[0] ? pipe : NULL;
    o.name = "example-svc";
    o.on_message = on_message;
    o.on_request = on_request;
    o.on_presence = on_presence;
    o.on_state = on_state;
    aipc_bus *bus;
    int rc = aipc_bus_connect(&o, &bus);
    if (rc != 0) {
        fprintf(stderr, "aipc_bus_connect: %s\n", aipc_strerror(rc));
        return 1;
    }
    aipc_bus_subscribe(bus, "example/#");   /* remembered and re-sent after every reconnect */
    printf("subscribed to example/#; Ctrl+C stops\n");
    fflush(stdout);
    WaitForSingleObject(g_stop, INFINITE);
    aipc_bus_close(bus);
    return 0;
}
