/* connlim.c - connections per client process (max_connections_per_process) and per user
 * (max_connections_per_user, D-Bus max_connections_per_user), decided from what the engine
 * learnt from Windows: the pid at attach, the user SID at aipc_client_set_identity (before the
 * client's first frame is processed). A connection over either bound gets
 * {"op":"error","code":"too_many_connections"} as its only frame and is closed; anything it
 * sends is ignored (so its hello is never served). Refused connections are not counted, so a
 * process that keeps opening connections cannot make the refusals themselves hold its share.
 *   by_pid   (pid, 0) -> aipc_conn_count
 *   by_user  user SID -> aipc_conn_count (which owns the key) */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct aipc_conn_count {
    uint32_t n;               /* connections counted (never 0 in a map) */
    char sid[];               /* by_user: the key */
} aipc_conn_count;

/* The answer to a connection over a bound: error then close (the slot is freed as soon as the
 * engine has written the few bytes, or after close_linger_ms at the latest). */
static void refuse(aipc_client *c, const char *what, uint32_t limit)
{
    aipc_broker *b = c->b;
    aipc__logf(b, AIPC_LOG_WARN, "refusing a connection of pid %u: %s already has %u", c->pid,
              what, limit);
    aipc__send_error(c, false, 0, "too_many_connections",
                     strcmp(what, "its process") == 0
                         ? "the broker's max_connections_per_process is reached"
                         : "the broker's max_connections_per_user is reached");
    aipc__request_close(c);
}

/* Counts c for its process, or refuses it. 0, or AIPC_ENOMEM (the engine closes c). */
int aipc_connlim_attach(aipc_broker *b, aipc_client *c)
{
    uint32_t limit = b->cfg.max_connections_per_process;
    if (!limit || !c->pid)
        return 0;
    aipc_conn_count *p = aipc_pmap_get(&b->by_pid, c->pid, 0);
    if (p && p->n >= limit) {
        b->st.process_conns_refused++;
        refuse(c, "its process", limit);
        return 0;
    }
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            return AIPC_ENOMEM;
        if (aipc_pmap_put(&b->by_pid, c->pid, 0, p) != 0) {
            free(p);
            return AIPC_ENOMEM;
        }
    }
    p->n++;
    c->pid_counted = true;
    return 0;
}

static void uncount_pid(aipc_broker *b, aipc_client *c)
{
    if (!c->pid_counted)
        return;
    c->pid_counted = false;
    aipc_conn_count *p = aipc_pmap_get(&b->by_pid, c->pid, 0);
    if (p && --p->n == 0)
        free(aipc_pmap_del(&b->by_pid, c->pid, 0));
}

/* Counts c for its user (identity just set), or refuses it. 0 or AIPC_ENOMEM. */
int aipc_connlim_identity(aipc_broker *b, aipc_client *c)
{
    uint32_t limit = b->cfg.max_connections_per_user;
    if (!limit || c->state == AIPC_CL_CLOSING)
        return 0;
    const char *sid = c->ident.user_sid;
    size_t len = strlen(sid);
    aipc_conn_count *u = aipc_strmap_get(&b->by_user, sid, len);
    if (u && u->n >= limit) {
        b->st.user_conns_refused++;
        uncount_pid(b, c);
        refuse(c, "its user", limit);
        return 0;
    }
    if (!u) {
        u = malloc(sizeof *u + len + 1);
        if (!u)
            return AIPC_ENOMEM;
        u->n = 0;
        memcpy(u->sid, sid, len + 1);
        if (aipc_strmap_put(&b->by_user, u->sid, len, u) != 0) {
            free(u);
            return AIPC_ENOMEM;
        }
    }
    u->n++;
    c->user_counted = true;
    return 0;
}

/* c goes (detach or broker freed): it no longer counts. */
void aipc_connlim_release(aipc_broker *b, aipc_client *c)
{
    uncount_pid(b, c);
    if (!c->user_counted)
        return;
    c->user_counted = false;
    size_t len = strlen(c->ident.user_sid);
    aipc_conn_count *u = aipc_strmap_get(&b->by_user, c->ident.user_sid, len);
    if (u && --u->n == 0) {
        aipc_strmap_del(&b->by_user, u->sid, len);
        free(u);
    }
}

/* Frees the maps (every client was released first). */
void aipc_connlim_free(aipc_broker *b)
{
    aipc_pmap_free(&b->by_pid);
    aipc_strmap_free(&b->by_user);
}
