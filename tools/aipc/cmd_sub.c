/*
 * cmd_sub.c - publications in: `aipc sub FILTER... [--count N] [--json] [--no-reconnect]`.
 *
 * Output, one line per message on stdout:
 *   plain    TOPIC PAYLOAD                 a live publication
 *            TOPIC (retained) PAYLOAD      a retained message (delivered on subscribing)
 *            (the payload's bytes as they are; --json is the unambiguous form)
 *   --json   {"topic":T,"from":{"id":N,"name":S|null,"pid":N},"retained":B,"payload":S}
 *            ("payload_base64" instead of "payload" when the payload holds a NUL byte;
 *            "name" is null for an anonymous sender, as on the wire)
 *
 * The subscription survives broker restarts (the SDK reconnects and subscribes again; state
 * lines on stderr, see client_shared.c) unless --no-reconnect is given.
 */
#include "aipc_cli.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* Adds the payload: a JSON string when it has no NUL byte, else base64. */
static void json_payload(cJSON *o, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!memchr(p, 0, len)) {
        char *s = malloc(len + 1);
        if (!s)
            return;
        memcpy(s, p, len);
        s[len] = 0;
        cJSON_AddStringToObject(o, "payload", s);
        free(s);
        return;
    }
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((len + 2) / 3 * 4 + 1), *w = s;
    if (!s)
        return;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        *w++ = tbl[(v >> 18) & 63];
        *w++ = tbl[(v >> 12) & 63];
        *w++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        *w++ = i + 2 < len ? tbl[v & 63] : '=';
    }
    *w = 0;
    cJSON_AddStringToObject(o, "payload_base64", s);
    free(s);
}

static void print_json(const char *topic, const aipc_bus_peer *from, bool retained,
                       const void *data, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON *f = cJSON_AddObjectToObject(o, "from");
    cJSON_AddNumberToObject(f, "id", (double)from->id);
    if (from->name && from->name[0])
        cJSON_AddStringToObject(f, "name", from->name);
    else
        cJSON_AddNullToObject(f, "name");   /* anonymous ("" in the SDK, null on the wire) */
    cJSON_AddNumberToObject(f, "pid", from->pid);
    cJSON_AddBoolToObject(o, "retained", retained);
    json_payload(o, data, len);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(o);
}

static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    aipc_cli *c = user;
    const aipc_args *a = c->a;
    (void)bus;
    if (a->count && c->seen >= a->count)
        return;
    if (a->json) {
        print_json(topic, from, retained, data, len);
    } else {
        fputs(topic, stdout);
        fputs(retained ? " (retained) " : " ", stdout);
        fwrite(data, 1, len, stdout);
        putchar('\n');
    }
    fflush(stdout);
    cli_count_seen(c);
}

int cmd_sub(const aipc_args *a)
{
    aipc_cli c;
    aipc_bus_options o;
    aipc_bus *bus;
    int rc = cli_init(&c, a, &o);
    if (rc)
        return rc;
    o.on_message = on_message;
    if ((rc = cli_connect(&c, &o, &bus)) != 0)
        return rc;
    for (int i = 0; i < a->nargs && !c.failed; i++) {
        rc = aipc_bus_subscribe(bus, a->args[i]);   /* remembered across reconnects */
        if (rc == AIPC_EINVAL)
            cli_set_usage(&c, "bad filter '%s'", a->args[i]);
        else if (rc != 0)
            cli_set_failed(&c, rc, "subscribe failed: %s", aipc_strerror(rc));
    }
    int ok = !c.failed && cli_wait_done(&c);
    return cli_finish(&c, bus, ok);
}
