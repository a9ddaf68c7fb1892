/*
 * cmd_req.c - request/reply: `aipc req NAME MSG [--timeout MS]` prints the reply;
 * `aipc serve NAME [--count N] [--no-reconnect]` answers every request with its own payload.
 *
 * serve keeps its name across broker restarts (the SDK reconnects and says hello again; state
 * lines on stderr, see client_shared.c) unless --no-reconnect is given.
 */
#include "aipc_cli.h"

#include <string.h>

int cmd_req(const aipc_args *a)
{
    const char *to = a->args[0], *msg = a->args[1];
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_open(&c, a, &o, &bus);
    if (rc)
        return rc;
    c.what = "request";
    int64_t id = aipc_bus_request(bus, to, msg, strlen(msg), a->timeout_ms, cli_on_reply, &c);
    if (id == AIPC_EINVAL)
        cli_set_usage(&c, "bad client name '%s'", to);   /* first failure kept: not "request failed" */
    return cli_print_answer(&c, bus, id, "request");
}

static void on_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    aipc_cli *c = user;
    int rc = aipc_bus_reply(bus, from->id, req_id, data, len);
    if (rc != 0)
        cli_line("cannot reply to request %llu: %s", (unsigned long long)req_id, aipc_strerror(rc));
    cli_count_seen(c);
}

int cmd_serve(const aipc_args *a)
{
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_init(&c, a, &o);
    if (rc)
        return rc;
    o.name = a->args[0];
    o.on_request = on_request;
    if ((rc = cli_connect(&c, &o, &bus)) != 0)
        return rc;
    cli_line("serving '%s' (echo) on %s; Ctrl+C stops", a->args[0], c.pipe);
    int ok = cli_wait_done(&c);
    cli_drain(&c, bus);   /* the last replies reach the broker: close discards unwritten frames */
    return cli_finish(&c, bus, ok);
}
