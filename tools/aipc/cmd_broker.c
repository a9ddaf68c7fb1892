/*
 * cmd_broker.c - the broker itself: `aipc stats` prints its counters (one JSON line),
 * `aipc ping` prints "pong from \\.\pipe\NAME in N ms".
 */
#include "aipc_cli.h"

int cmd_stats(const aipc_args *a)
{
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_open(&c, a, &o, &bus);
    if (rc)
        return rc;
    return cli_print_answer(&c, bus, aipc_bus_stats(bus, a->timeout_ms, cli_on_reply, &c), "stats");
}

int cmd_ping(const aipc_args *a)
{
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_open(&c, a, &o, &bus);
    if (rc)
        return rc;
    ULONGLONG t0 = GetTickCount64();
    int64_t id = aipc_bus_ping(bus, a->timeout_ms, cli_on_reply, &c);
    if (id < 0)
        cli_set_failed(&c, (int)id, "ping failed: %s", aipc_strerror((int)id));
    int ok = id > 0 && cli_wait_reply(&c);
    if (ok)
        printf("pong from %s in %llu ms\n", c.pipe, (unsigned long long)(GetTickCount64() - t0));
    return cli_finish(&c, bus, ok);
}
