/*
 * bus_publisher.c - example: a bus publisher and requester (C API).
 *
 *   bus_publisher [--pipe NAME] [--count N] [--name NAME]
 *
 * Connects (as NAME with --name, otherwise anonymously), publishes N readings on
 * "example/temperature" (the last one retained, so late subscribers see it), printing each,
 * then asks "example-svc" (bus_subscriber.exe) for the time with a request and prints the
 * reply. Exits 0 on success, 1 on failure.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

static HANDLE g_connected, g_replied;
static volatile LONG g_failed;

static void on_state(aipc_bus *bus, void *user, aipc_bus_state state, int error)
{
    if (state == AIPC_BUS_CONNECTED) {
        SetEvent(g_connected);
    } else if (state == AIPC_BUS_DISCONNECTED) {
        fprintf(stderr, "disconnected: %s\n", aipc_strerror(error));
        InterlockedExchange(&g_failed, 1);
        SetEvent(g_connected);
        SetEvent(g_replied);
    }
}

/* Completion of the request: exactly once, on the I/O thread. */
static void on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    if (status == 0) {
        printf("reply from %s: %.*s\n", from ? from->name : "?", (int)len, (const char *)data);
    } else {
        fprintf(stderr, "request failed: %s%s%.*s\n", aipc_strerror(status),
                status == AIPC_EREFUSED ? " - " : "", status == AIPC_EREFUSED ? (int)len : 0,
                (const char *)data);
        InterlockedExchange(&g_failed, 1);
    }
    SetEvent(g_replied);
}

int main(int argc, char **argv)
{
    wchar_t pipe[256] = L"";
    const char *name = NULL;
    int count = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pipe") == 0)
            MultiByteToWideChar(CP_UTF8, 0, argv[i + 1], -1, pipe, 256);
        else if (strcmp(argv[i], "--count") == 0)
            count = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
    }
    g_connected = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_replied = CreateEventW(NULL, TRUE, FALSE, NULL);

    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.pipe_name = pipe[0] ? pipe : NULL;
    o.name = name;                   /* NULL: anonymous */
    o.reconnect = 0;                 /* a one-shot tool: fail instead of waiting for a broker */
    o.connect_timeout_ms = 3000;
    o.on_state = on_state;
    aipc_bus *bus;
    int rc = aipc_bus_connect(&o, &bus);
    if (rc != 0) {
        fprintf(stderr, "aipc_bus_connect: %s\n", aipc_strerror(rc));
        return 1;
    }
    if (WaitForSingleObject(g_connected, 10000) != WAIT_OBJECT_0 || g_failed) {
        fprintf(stderr, "no broker\n");
        aipc_bus_close(bus);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        char reading[64];
        int n = snprintf(reading, sizeof reading, "%.1f C", 20.0 + i * 0.5);
        rc = aipc_bus_publish(bus, "example/temperature", reading, (size_t)n, i == count - 1);
        if (rc != 0)
            fprintf(stderr, "publish: %s\n", aipc_strerror(rc));
        else
            printf("published example/temperature: %s%s\n", reading,
                   i == count - 1 ? " (retained)" : "");
    }
    fflush(stdout);
    int64_t id = aipc_bus_request(bus, "example-svc", "time?", 5, 5000, on_reply, NULL);
    if (id < 0) {
        fprintf(stderr, "request: %s\n", aipc_strerror((int)id));
        g_failed = 1;
    } else {
        WaitForSingleObject(g_replied, 15000);   /* the request's own timeout fires before */
    }
    aipc_bus_close(bus);
    return g_failed ? 1 : 0;
}
