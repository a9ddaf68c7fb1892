/* reqs.c - pending requests: who asked whom with which id, so a reply is only forwarded to the
 * requester that is really waiting, and a target that leaves produces no_reply errors.
 * Bounded per requester (max_pending_requests, counting the answers still queued to it) and in
 * time (request_timeout_ms: error timeout). Every pending request ends with exactly one answer
 * - the rep, or an ANSWER error (no_reply, timeout, queue_full) that is never cut off - unless
 * its requester leaves first. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>

/* Whether c may have one more request pending: its pending requests plus the answers that
 * settled earlier ones and are still queued to it stay within max_pending_requests. */
bool aipc_reqs_room(const aipc_broker *b, const aipc_client *c)
{
    return (uint64_t)c->nreqs_out + c->answers_queued < b->cfg.max_pending_requests;
}

/* Whether one more request may be pending broker-wide: every pending request plus every
 * queued answer that settled one stay within max_total_pending_requests (0 = no bound). */
bool aipc_reqs_total_room(const aipc_broker *b)
{
    uint64_t max = b->cfg.max_total_pending_requests;
    return !max || b->npending + b->answers_queued < max;
}

/* Records a forwarded request. A (requester, id) pair still pending is refused by the caller. */
int aipc_reqs_add(aipc_broker *b, aipc_client *from, aipc_client *to, int64_t rid)
{
    aipc_req *r = calloc(1, sizeof *r);
    if (!r)
        return AIPC_ENOMEM;
    r->requester = from;
    r->target = to;
    r->requester_id = from->id;
    r->rid = rid;
    if (aipc_pmap_put(&b->reqs, from->id, (uint64_t)rid, r) != 0) {
        free(r);
        return AIPC_ENOMEM;
    }
    r->onext = from->reqs_out;
    if (from->reqs_out)
        from->reqs_out->oprev = r;
    from->reqs_out = r;
    r->inext = to->reqs_in;
    if (to->reqs_in)
        to->reqs_in->iprev = r;
    to->reqs_in = r;
    from->nreqs_out++;
    b->npending++;
    aipc_dq_push(&b->req_q, &r->t_due, aipc__now(b) + b->cfg.request_timeout_ms);
    return 0;
}

/* The pending request (requester id, id), if any. */
aipc_req *aipc_reqs_find(aipc_broker *b, uint64_t requester_id, int64_t rid)
{
    return aipc_pmap_get(&b->reqs, requester_id, (uint64_t)rid);
}

/* Forgets one pending request (answered, or one side left). */
void aipc_reqs_remove(aipc_broker *b, aipc_req *r)
{
    aipc_pmap_del(&b->reqs, r->requester_id, (uint64_t)r->rid);
    if (r->oprev)
        r->oprev->onext = r->onext;
    else
        r->requester->reqs_out = r->onext;
    if (r->onext)
        r->onext->oprev = r->oprev;
    if (r->iprev)
        r->iprev->inext = r->inext;
    else
        r->target->reqs_in = r->inext;
    if (r->inext)
        r->inext->iprev = r->iprev;
    r->requester->nreqs_out--;
    b->npending--;
    aipc_dq_remove(&b->req_q, &r->t_due);
    free(r);
}

/* No answer within request_timeout_ms: the requester gets error timeout (a later rep from the
 * target is no_such_request). */
void aipc_reqs_expire(aipc_broker *b, aipc_req *r)
{
    aipc_client *req = r->requester;
    int64_t rid = r->rid;
    aipc_reqs_remove(b, r);
    b->st.request_timeouts++;
    aipc__send_answer_error(req, rid, "timeout", "no reply within the broker's request_timeout_ms");
}

/* A client leaves: its own requests are forgotten; requests waiting on it fail with no_reply. */
void aipc_reqs_client_gone(aipc_broker *b, aipc_client *c)
{
    while (c->reqs_out)
        aipc_reqs_remove(b, c->reqs_out);
    while (c->reqs_in) {
        aipc_req *r = c->reqs_in;
        aipc_client *req = r->requester;
        int64_t rid = r->rid;
        aipc_reqs_remove(b, r);
        aipc__send_answer_error(req, rid, "no_reply", "the target left before replying");
    }
}
