/*
 * bus_dispatch.c - one frame from the broker, on the I/O thread: the welcome ends the hello
 * phase (bus_conn.c), answers complete pending requests, publications pass the subscription
 * set and presence, and every event goes to its user callback through bus_events.c (at once
 * through the client's gate, or queued to its dispatcher).
 */
#include "bus_internal.h"

#include <string.h>

/* Delivers a request to on_request, or answers it empty when nobody listens. [io] */
static void dispatch_req(aipc_bus *b, const aipc__bus_in *in, const uint8_t *pl, uint32_t pn)
{
    if (!in->has_id || !in->has_from)
        return;
    if (b->o.on_request)
        aipc__bus_ev_request(b, &in->from, in->id, pl, pn);
    else
        aipc_bus_reply(b, in->from.id, in->id, NULL, 0);
}

/* A publication: presence first (internal $bus subscriptions), then on_message. [io] */
static void dispatch_msg(aipc_bus *b, const aipc__bus_in *in, const uint8_t *pl, uint32_t pn)
{
    const char *topic = in->topic;
    if (topic[0] == '$') {
        int joined = strcmp(topic, "$bus/joined") == 0;
        int left = strcmp(topic, "$bus/left") == 0;
        if ((joined || left) && b->o.on_presence) {
            aipc_bus_peer who;
            char name[AIPC_BUS_PRESENCE_BUF];
            if (aipc__bus_presence_parse(pl, pn, &who, name, sizeof name) == 0)
                aipc__bus_ev_presence(b, joined != 0, &who);
        }
        AcquireSRWLockShared(&b->lock);
        int wanted = aipc__bus_subs_match(&b->subs, topic);
        ReleaseSRWLockShared(&b->lock);
        if (!wanted)
            return;
    }
    aipc__bus_ev_message(b, topic, &in->from, in->retained != 0, pl, pn);
}

/* An answer carrying "re": completes the matching pending entry. [io] */
static void dispatch_answer(aipc_bus *b, const aipc__bus_in *in, const uint8_t *pl, uint32_t pn)
{
    int found;
    if (!in->has_re)
        found = 0;
    else if (in->op == AIPC_BUS_IN_ERROR)
        found = aipc__bus_ev_answer(b, in->re, AIPC_EREFUSED, NULL, in->code, strlen(in->code));
    else
        found = aipc__bus_ev_answer(b, in->re, 0, in->has_from ? &in->from : NULL, pl, pn);
    if (!found && in->op == AIPC_BUS_IN_ERROR)
        aipc__bus_ev_error(b, AIPC_EREFUSED, in->code, in->message[0] ? in->message : in->code);
}

/* One whole frame from the broker (decoder callback). Non-zero stops decoding: the connection
 * was lost or the client closed inside a callback. [io] */
int aipc__bus_on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    aipc_bus *b = ctx;
    aipc__bus_in in;
    /* Releases gathered in this read wait at most BUS_REL_GATHER_US whatever the callbacks
     * before this frame were (inline ones too). A flush that lost the connection has run
     * on_state(DISCONNECTED): nothing of this read is delivered after it. */
    if (aipc__bus_shm_gather_check(b) && b->st != BS_READY)
        return 1;
    if (aipc__bus_meta_parse(meta, ml, &in) != 0) {
        aipc_log(AIPC_LOG_WARN, "bus(%s): ignoring a frame with bad meta", b->pipe_utf8);
        return 0;
    }
    if (b->st == BS_HELLO) {
        if (in.op == AIPC_BUS_IN_WELCOME) {
            aipc__bus_conn_welcome(b, &in);
        } else if (in.op == AIPC_BUS_IN_ERROR || in.op == AIPC_BUS_IN_BYE) {
            if (in.op == AIPC_BUS_IN_ERROR)
                aipc__bus_ev_error(b, AIPC_EREFUSED, in.code, in.message[0] ? in.message : in.code);
            aipc__bus_conn_lost(b, in.op == AIPC_BUS_IN_ERROR ? AIPC_EREFUSED : AIPC_EDISCONNECTED);
        }
        aipc__bus_in_free(&in);
        return (b->st == BS_READY && !aipc__bus_ev_closed(b)) ? 0 : 1;
    }
    if (in.op == AIPC_BUS_IN_SHM || (in.has_shm && (in.op == AIPC_BUS_IN_MSG ||
        in.op == AIPC_BUS_IN_DIRECT || in.op == AIPC_BUS_IN_REQ || in.op == AIPC_BUS_IN_REP))) {
        /* shared memory (bus_shm.c): a control frame, or a payload in the broker's segment */
        int rc = in.op == AIPC_BUS_IN_SHM ? aipc__bus_shm_ctl(b, meta, ml)
                                         : aipc__bus_shm_resolve(b, &in, pn, &pl, &pn);
        if (rc != 0) {
            aipc__bus_in_free(&in);
            aipc__bus_ev_error(b, AIPC_EPROTO, "", "bad shared-memory frame from the broker");
            aipc__bus_conn_lost(b, AIPC_EPROTO);
            return 1;
        }
        if (in.op == AIPC_BUS_IN_SHM)
            in.op = AIPC_BUS_IN_UNKNOWN;       /* handled */
    }
    switch (in.op) {
    case AIPC_BUS_IN_MSG: dispatch_msg(b, &in, pl, pn); break;
    case AIPC_BUS_IN_DIRECT:
        aipc__bus_ev_direct(b, &in.from, pl, pn);
        break;
    case AIPC_BUS_IN_REQ: dispatch_req(b, &in, pl, pn); break;
    case AIPC_BUS_IN_REP: case AIPC_BUS_IN_OK: case AIPC_BUS_IN_ERROR: case AIPC_BUS_IN_PONG:
    case AIPC_BUS_IN_STATS:
        dispatch_answer(b, &in, pl, pn);
        break;
    case AIPC_BUS_IN_DROPPED:
        aipc__bus_ev_dropped(b, in.count);
        break;
    case AIPC_BUS_IN_BYE:
        aipc_log(AIPC_LOG_INFO, "bus(%s): broker says bye (%s)", b->pipe_utf8, in.reason);
        aipc__bus_conn_lost(b, AIPC_EDISCONNECTED);
        break;
    default:
        if (strncmp(in.op_text, "shm_", 4) != 0)
            aipc_log(AIPC_LOG_DEBUG, "bus(%s): ignoring op '%s'", b->pipe_utf8, in.op_text);
        break;
    }
    aipc__bus_shm_release(b, &b->rx_cur);    /* a shared payload no item took: released now */
    aipc__bus_in_free(&in);
    return (b->st == BS_READY && !aipc__bus_ev_closed(b)) ? 0 : 1;
}
