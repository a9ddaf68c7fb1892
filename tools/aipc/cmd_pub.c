/*
 * cmd_pub.c - messages out: `aipc pub` and `aipc send`.
 *
 *   aipc pub TOPIC MSG            MSG as given
 *   aipc pub TOPIC [-]            all of stdin as one message, minus one trailing "\n" or "\r\n"
 *   aipc pub TOPIC -s             all of stdin as one message, bytes unchanged (NULs, newlines)
 *   aipc pub TOPIC -l             one message per line of stdin, without its "\n" / "\r\n";
 *                                 published as each line arrives, empty lines are empty messages
 *   aipc send NAME MSG
 *
 * Both end with a ping: exit 0 means the broker has processed every message (and `send`
 * fails on no_such_client, which the broker answers before the pong).
 */
#include "aipc_cli.h"

#include <stdlib.h>
#include <string.h>

/* Publishes one message. A full client queue (a fast -l producer) first waits for the broker
 * to take what is queued. `line` (1-based, 0 = not -l) names the line in a failure. 1 or 0. */
static int publish_one(aipc_cli *c, aipc_bus *bus, const char *topic, const void *data,
                       size_t len, unsigned long long line)
{
    int rc = aipc_bus_publish(bus, topic, data, len, c->a->retain != 0);
    if (rc == AIPC_EQUEUEFULL) {
        if (!cli_barrier(c, bus, "publish"))
            return 0;
        rc = aipc_bus_publish(bus, topic, data, len, c->a->retain != 0);
    }
    if (rc == 0)
        return 1;
    if (c->failed)
        return 0;   /* the connection was lost: that is the failure to report */
    if (rc == AIPC_EINVAL)
        cli_set_usage(c, "bad topic '%s' (no wildcards, no leading '$')", topic);
    else if (line)
        cli_set_failed(c, rc, "publish of line %llu failed: %s", line, aipc_strerror(rc));
    else
        cli_set_failed(c, rc, "publish failed: %s", aipc_strerror(rc));
    return 0;
}

/* -l: publishes each line of stdin as it is read, until the end of input. 1 or 0. */
static int publish_lines(aipc_cli *c, aipc_bus *bus, const char *topic)
{
    char *buf = NULL;
    size_t cap = 0, len = 0;
    unsigned long long line = 0;
    int r, ok = 1;
    while (ok && !c->failed && (r = cli_read_line(&buf, &cap, &len)) != 0) {
        if (r < 0) {
            cli_set_failed(c, AIPC_ENOMEM, "cannot read line %llu from stdin: out of memory", line + 1);
            ok = 0;
            break;
        }
        ok = publish_one(c, bus, topic, buf ? buf : "", len, ++line);
    }
    free(buf);
    return ok && !c->failed;
}

int cmd_pub(const aipc_args *a)
{
    const char *topic = a->args[0];
    aipc_cli c;
    aipc_bus_options o;
    int rc = cli_init(&c, a, &o);
    if (rc)
        return rc;
    /* the whole message is read before connecting: no connection is held while a user types */
    const char *msg = NULL;
    size_t len = 0;
    char *buf = NULL;
    if (a->msg_mode == MSG_ARG) {
        msg = a->args[1];
        len = strlen(msg);
    } else if (a->msg_mode == MSG_STDIN || a->msg_mode == MSG_STDIN_FILE) {
        if (!(buf = cli_read_stdin(&len))) {
            cli_line("cannot read the message from stdin");
            return EXIT_FAIL;
        }
        if (a->msg_mode == MSG_STDIN && len && buf[len - 1] == '\n') {
            len--;   /* `echo 21.5 | aipc pub t -` publishes "21.5" */
            if (len && buf[len - 1] == '\r')
                len--;
        }
        msg = buf;
    }
    aipc_bus *bus;
    if ((rc = cli_connect(&c, &o, &bus)) != 0)
        return rc;
    int ok = a->msg_mode == MSG_STDIN_LINE ? publish_lines(&c, bus, topic)
                                           : publish_one(&c, bus, topic, msg, len, 0);
    ok = ok && cli_barrier(&c, bus, "publish");
    free(buf);
    return cli_finish(&c, bus, ok);
}

int cmd_send(const aipc_args *a)
{
    const char *to = a->args[0], *msg = a->args[1];
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_open(&c, a, &o, &bus);
    if (rc)
        return rc;
    rc = aipc_bus_send(bus, to, msg, strlen(msg));
    if (rc == AIPC_EINVAL)
        cli_set_usage(&c, "bad client name '%s'", to);
    else if (rc != 0)
        cli_set_failed(&c, rc, "send failed: %s", aipc_strerror(rc));
    int ok = rc == 0 && cli_barrier(&c, bus, "send");
    return cli_finish(&c, bus, ok);
}
