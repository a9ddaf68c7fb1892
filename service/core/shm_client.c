/* shm_client.c - shared memory per client (docs/protocol.md "Shared memory on the bus"): the
 * engine's backend, the hello/welcome negotiation and what a client's detach releases. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include "proto/shm.h"

#include <cjson/cJSON.h>

int aipc_broker_set_shm_backend(aipc_broker *b, const aipc_shm_backend *be)
{
    if (b->st.clients_total)
        return AIPC_EINVAL;
    if (!be) {
        b->shm_have_be = false;
        return 0;
    }
    if (!be->create || !be->open || !be->close)
        return AIPC_EINVAL;
    b->shm_be = *be;
    b->shm_have_be = true;
    return 0;
}

/* The hello's "shm":{"v":N} with an integer N >= 1 (anything else: the client did not ask). */
static bool hello_asks(const cJSON *hello)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(hello, "shm");
    if (!cJSON_IsObject(o))
        return false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "v");
    return cJSON_IsNumber(v) && v->valuedouble >= AIPC_SHM_V && v->valuedouble <= 1e9 &&
           (double)(long)v->valuedouble == v->valuedouble;
}

bool aipc_shm_negotiate(aipc_broker *b, aipc_client *c, const cJSON *hello)
{
    if (!b->cfg.shm || !b->shm_have_be || !c->has_ident || !c->ident.user_sid ||
        !c->ident.user_sid[0] || !hello_asks(hello))
        return false;
    if (!c->shm_on) {
        c->shm_on = true;
        b->shm_nclients++;
    }
    c->shm_rel_offer = b->cfg.shm_release_page;
    return true;
}

void aipc_shm_client_gone(aipc_broker *b, aipc_client *c)
{
    aipc_shm_out_gone(b, c);
    aipc_shm_rel_gone(b, c);
    aipc_shm_in_gone(b, c);
    if (c->shm_on) {
        c->shm_on = false;
        b->shm_nclients--;
    }
}

/* A protocol error on shared memory: bad_request, then the connection is closed. */
static void shm_violation(aipc_client *c, const char *message)
{
    aipc__send_error(c, false, 0, "bad_request", message);
    aipc__request_close(c);
}

void aipc_shm_control(aipc_broker *b, aipc_client *c, const uint8_t *meta, size_t len,
                      const uint8_t *payload, size_t plen)
{
    aipc_shm_ctl ctl;
    aipc_shm_ref refs[AIPC_SHM_DONE_MAX];
    if (!c->shm_on) {
        shm_violation(c, "shared memory was not negotiated (hello without \"shm\")");
        return;
    }
    if (plen || aipc_shm_ctl_parse((const char *)meta, len, &ctl, refs, AIPC_SHM_DONE_MAX) != 1) {
        shm_violation(c, "malformed shared-memory control frame");
        return;
    }
    (void)payload;
    switch (ctl.op) {
    case AIPC_SHM_OP_SEG:
        if (ctl.rel)
            aipc_shm_rel_announce(b, c, &ctl);
        else if (aipc_shm_rel_is_page(c, ctl.seg))
            shm_violation(c, "segment announced twice");
        else
            aipc_shm_in_announce(b, c, &ctl);
        break;
    case AIPC_SHM_OP_DONE:
        if (aipc_shm_rel_on(c)) {      /* its page is its only way to release */
            shm_violation(c, "shm_done from a client whose release page was accepted");
            break;
        }
        b->st.shm_release_frames++;
        aipc_shm_release(b, c, refs, ctl.nrefs);
        break;
    case AIPC_SHM_OP_SEG_ANSWER:
        if (aipc_shm_answer(b, c, ctl.seg, ctl.ok) != 0)
            shm_violation(c, "answer to a segment the broker did not announce, or a second one");
        break;
    case AIPC_SHM_OP_UNSEG:
        if (aipc_shm_rel_on(c) && aipc_shm_rel_is_page(c, ctl.seg))
            shm_violation(c, "the release page lasts as long as the connection");
        else
            aipc_shm_in_unseg(b, c, ctl.seg);
        break;
    default:
        shm_violation(c, "malformed shared-memory control frame");
        break;
    }
}
