/* registry.c - client identity: ids (64-bit counter, never reused) and unique names (their
 * syntax: proto/names.h). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

/* The client registered under a name, if any. */
aipc_client *aipc_registry_find_name(aipc_broker *b, const char *name, size_t n)
{
    return aipc_strmap_get(&b->by_name, name, n);
}

/* The client with an id, if it is still here. */
aipc_client *aipc_registry_find_id(aipc_broker *b, uint64_t id)
{
    return id ? aipc_pmap_get(&b->by_id, id, 0) : NULL;
}

/* Gives a client (after a valid hello) its id and optional name. The caller checked the name's
 * syntax and that it is free. */
int aipc_registry_add(aipc_broker *b, aipc_client *c, const char *name, size_t n)
{
    uint64_t id = b->next_id;
    memcpy(c->name, name, n);
    c->name[n] = 0;
    c->name_len = (uint32_t)n;
    c->id = id;
    if (aipc__make_from(c) != 0)
        goto fail;
    if (aipc_pmap_put(&b->by_id, id, 0, c) != 0)
        goto fail;
    if (n && aipc_strmap_put(&b->by_name, c->name, n, c) != 0) {
        aipc_pmap_del(&b->by_id, id, 0);
        goto fail;
    }
    b->next_id++;            /* consumed only on success: ids stay dense and unique */
    return 0;
fail:
    free(c->from);
    c->from = NULL;
    c->id = 0;
    c->name_len = 0;
    c->name[0] = 0;
    return AIPC_ENOMEM;
}

/* Forgets a leaving client's id and name (the id itself is never handed out again). Safe to
 * call twice: a name taken by a newer client in between is left to that client. */
void aipc_registry_remove(aipc_broker *b, aipc_client *c)
{
    if (!c->id)
        return;
    if (aipc_pmap_get(&b->by_id, c->id, 0) == c)
        aipc_pmap_del(&b->by_id, c->id, 0);
    if (c->name_len && aipc_strmap_get(&b->by_name, c->name, c->name_len) == c)
        aipc_strmap_del(&b->by_name, c->name, c->name_len);
}
