/*
 * bus_shm_peer.c - a bus client in its own process for test_bus_shm_kill.c, killed by the
 * suite with TerminateProcess:
 *
 *   bus_shm_peer sub --pipe P --topic T --engine apc|iocp --ready EV --stalled EV2
 *       subscribes to T, syncs, sets EV; the first payload of at least the threshold that
 *       arrives once shared memory is in use (its counters' shm_recv >= 1) blocks its callback
 *       for good (after setting EV2): that slot is never released and nothing more is read
 *   bus_shm_peer hold --pipe P --topic T --engine apc|iocp --ready EV --stalled EV2
 *       subscribes to T with on_message_buf (zero-copy receive), syncs, sets EV; keeps every
 *       buffer it receives and never releases one; sets EV2 once it holds 4 shared ones
 *       (its counters' shm_recv >= 4), so the broker charges their slots to it until killed
 *   bus_shm_peer pub --pipe P --topic T --engine apc|iocp --size N --ready EV
 *       sets EV once connected, then publishes N-byte pattern payloads (seeded with their
 *       sequence number 0, 1, ...) to T as fast as its queue takes them, until killed
 *
 * Exit codes: 2 bad arguments, 3 could not connect or subscribe, 4 a publish failed (the
 * suite only ever sees 99 from its kill otherwise).
 */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

static HANDLE g_stalled;

/* I/O thread: blocks the first shared-size payload once shared memory is in use. */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    (void)user, (void)topic, (void)from, (void)retained, (void)data;
    if (len >= BS_THR && bsk_counters(bus).shm_recv >= 1) {
        SetEvent(g_stalled);
        Sleep(INFINITE);   /* holds the slot (and the I/O thread) until the suite kills us */
    }
}

/* I/O thread: keeps every buffer (never released: the suite kills us). */
static void on_message_buf(aipc_bus *bus, void *user, const char *topic,
                           const aipc_bus_peer *from, bool retained, aipc_buf *buf)
{
    (void)user, (void)topic, (void)from, (void)retained, (void)buf;
    if (bsk_counters(bus).shm_recv >= 4)
        SetEvent(g_stalled);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "", *pipe = NULL, *topic = NULL, *ready = NULL,
               *stalled = NULL, *engine = "apc";
    size_t size = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pipe") == 0)
            pipe = argv[i + 1];
        else if (strcmp(argv[i], "--topic") == 0)
            topic = argv[i + 1];
        else if (strcmp(argv[i], "--ready") == 0)
            ready = argv[i + 1];
        else if (strcmp(argv[i], "--stalled") == 0)
            stalled = argv[i + 1];
        else if (strcmp(argv[i], "--engine") == 0)
            engine = argv[i + 1];
        else if (strcmp(argv[i], "--size") == 0)
            size = (size_t)strtoul(argv[i + 1], NULL, 10);
        else
            return 2;
    }
    int hold = strcmp(mode, "hold") == 0;
    int sub = hold || strcmp(mode, "sub") == 0;
    if ((!sub && strcmp(mode, "pub") != 0) || !pipe || !topic || !ready ||
        (sub && !stalled) || (!sub && (size < 4 || size > 16u * BS_MIB)))
        return 2;
    wchar_t wpipe[128];
    aipc_test_wname(wpipe, 128, pipe);
    HANDLE ready_ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, ready);
    if (!ready_ev)
        return 2;
    if (sub && !(g_stalled = OpenEventA(EVENT_MODIFY_STATE, FALSE, stalled)))
        return 2;
    static bsk_sub c;
    aipc_bus_options o;
    bsk_sub_options(&c, &o, wpipe, strcmp(engine, "iocp") == 0 ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (sub)
        o.on_message = on_message;
    if (hold)
        o.on_message_buf = on_message_buf;
    if (bsk_sub_open(&c, &o, sub ? topic : NULL) != 0)
        return 3;
    SetEvent(ready_ev);
    if (sub)
        Sleep(INFINITE);   /* everything happens in on_message; the suite kills us */
    uint8_t *buf = malloc(size);
    if (!buf)
        return 4;
    for (uint32_t seq = 0;; seq++)
        if (bsk_publish(c.bus, topic, buf, size, seq) != 0)
            return 4;
}
