/* meta.c - building outgoing frames (metas written by hand into the broker's scratch buffer)
 * and queueing them to one client under the queue rules:
 *   - publications (msg) are dropped for a client whose queued publications/directs would
 *     exceed max_queue_bytes, each counted with its overhead (AIPC_QUEUED_FRAME_OVERHEAD: the
 *     bound is on memory; unless none are queued: one frame may always be in flight),
 *     counted, and reported with `dropped` at the head of its queue (outq.c);
 *   - direct/req/rep frames over the bound are refused (the caller answers queue_full);
 *   - control frames (ok, error, welcome, pong, stats, dropped, bye) are never dropped, but a
 *     client that lets more than max_queue_bytes + 1 MiB of them (overhead included) pile up
 *     is cut off;
 *   - answers that settle a pending request (ANSWER) are exempt from that cut-off: their number
 *     is bounded by max_pending_requests (see aipc_reqs_room). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_SLACK (1024u * 1024u)

/* Whether anything may still be queued to c (not closing). */
bool aipc_client_can_queue(const aipc_client *c)
{
    return c->state != AIPC_CL_CLOSING;
}

/* Asks the engine to close c after flushing; nothing more is queued to it afterwards. */
void aipc_request_close(aipc_client *c)
{
    if (c->state == AIPC_CL_CLOSING)
        return;
    c->state = AIPC_CL_CLOSING;
    aipc_dq_remove(&c->b->hello_q, &c->t_hello);
    aipc_partial_closing(c->b, c);
    aipc_dq_push(&c->b->linger_q, &c->t_linger, aipc_now(c->b) + c->b->cfg.close_linger_ms);
    if (c->conn->ops && c->conn->ops->close)
        c->conn->ops->close(c->conn);
}

/* The memory of c's queued control frames with one more of len bytes: bytes + head_off is the
 * whole size of the queued frames, minus data and answers is control; each frame also counts
 * its overhead, as data frames do (a small pong costs more in overhead than in bytes). */
static uint64_t control_cost(const aipc_client *c, uint64_t len)
{
    const aipc_outq *q = &c->q;
    uint64_t bytes = q->bytes + q->head_off - q->data_bytes - c->answer_bytes + len;
    uint64_t frames = q->count - q->data_frames - c->answers_queued + 1;
    return bytes + frames * AIPC_QUEUED_FRAME_OVERHEAD;
}

/* Queues a frame reference to c applying the drop rules above; wakes the engine's writer when
 * the queue was empty. Returns 0, AIPC_EQUEUEFULL, AIPC_ECLOSED or AIPC_ENOMEM. */
int aipc_queue_frame(aipc_client *c, aipc_frame *f)
{
    aipc_broker *b = c->b;
    if (c->state == AIPC_CL_CLOSING)
        return AIPC_ECLOSED;
    uint64_t max = b->cfg.max_queue_bytes;
    if (aipc_fk_data(f->kind)) {
        if (c->q.data_bytes && aipc_outq_data_cost(&c->q, f->len) > max) {
            if (f->kind == AIPC_FK_PUB) {
                c->dropped_pending++;
                b->st.drops++;
            }
            return AIPC_EQUEUEFULL;
        }
    } else if (f->kind == AIPC_FK_CONTROL && control_cost(c, f->len) > max + CONTROL_SLACK) {
        aipc_logf(b, AIPC_LOG_WARN, "client %" PRIu64 " does not read its answers: closing it",
                  c->id);
        c->kill = true;
        aipc_request_close(c);
        return AIPC_EQUEUEFULL;
    }
    bool was_empty = c->q.count == 0;
    if (aipc_outq_push(&c->q, f) != 0) {
        if (f->kind == AIPC_FK_PUB) {
            c->dropped_pending++;
            b->st.drops++;
        }
        return AIPC_ENOMEM;
    }
    if (f->kind == AIPC_FK_ANSWER) {
        c->answers_queued++;
        c->answer_bytes += f->len;
    }
    if (was_empty && c->conn->ops && c->conn->ops->want_write)
        c->conn->ops->want_write(c->conn);
    return 0;
}

/* Builds the frame in the gap before an assembled inbound payload and takes the decoder's
 * block (no allocation or copy of the payload). NULL when that is not possible: the payload was
 * delivered in place (the engine's read buffer), the meta does not fit the gap, or memory ran
 * out; the caller then copies. Tried at most once per inbound frame. */
static aipc_frame *adopt(aipc_broker *b, int kind, const uint8_t *payload, size_t plen)
{
    aipc_decoder *d = b->in_dec;
    b->in_dec = NULL;
    size_t head = AIPC_HDR_SIZE + b->meta.len;
    if (head > d->adopt_gap || plen > UINT32_MAX)
        return NULL;
    aipc_frame *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    f->mem_len = (uint64_t)d->meta_len + 1 + d->gap + d->payload_len + 1; /* its layout */
    f->mem = aipc_decoder_adopt(d);
    if (!f->mem) {
        free(f);
        return NULL;
    }
    /* The gap lies between the inbound meta's NUL and the payload: writing there leaves the
     * inbound meta (still read by the router) intact. */
    f->refs = 2;                        /* the caller's, and the one held in in_frame */
    f->kind = (uint32_t)kind;
    f->len = head + plen;
    f->data = (uint8_t *)payload - head;
    aipc_frame_put_header(f->data, (uint32_t)b->meta.len, (uint32_t)plen);
    memcpy(f->data + AIPC_HDR_SIZE, b->meta.p, b->meta.len);
    b->in_frame = f;
    return f;
}

/* Turns the scratch meta into a frame (NULL when building or allocating failed). */
static aipc_frame *finish(aipc_broker *b, int kind, const uint8_t *payload, size_t plen)
{
    if (b->meta.oom || b->meta.len > AIPC_MAX_META)
        return NULL;
    if (plen >= AIPC_ADOPT_MIN && b->in_dec && payload == b->in_payload && plen == b->in_plen) {
        aipc_frame *f = adopt(b, kind, payload, plen);
        if (f)
            return f;
    }
    return aipc_frame_make(kind, b->meta.p, b->meta.len, payload, plen);
}

/* Queues a control frame built in the scratch buffer (payload optional). */
static void send_kind(aipc_client *c, int kind, const uint8_t *payload, size_t plen)
{
    aipc_frame *f = finish(c->b, kind, payload, plen);
    if (!f) {
        c->kill = true;                /* cannot even answer: cut the connection */
        aipc_request_close(c);
        return;
    }
    aipc_queue_frame(c, f);
    aipc_frame_unref(f);
}

static void send_control(aipc_client *c, const uint8_t *payload, size_t plen)
{
    send_kind(c, AIPC_FK_CONTROL, payload, plen);
}

/* Starts a control meta: {"op":"<op>" and, when the request had an id, ,"re":id. */
static void begin(aipc_broker *b, const char *op, bool has_id, int64_t id)
{
    aipc_sbuf_reset(&b->meta);
    aipc_sbuf_lit(&b->meta, "{\"op\":\"");
    aipc_sbuf_lit(&b->meta, op);
    aipc_sbuf_lit(&b->meta, "\"");
    if (has_id) {
        aipc_sbuf_lit(&b->meta, ",\"re\":");
        aipc_sbuf_i64(&b->meta, id);
    }
}

/* {"op":"ok","re":id} - only sent when the request carried an id. */
void aipc_send_ok(aipc_client *c, bool has_id, int64_t id)
{
    if (!has_id || !aipc_client_can_queue(c))
        return;
    begin(c->b, "ok", true, id);
    aipc_sbuf_lit(&c->b->meta, "}");
    send_control(c, NULL, 0);
}

static void send_error_kind(aipc_client *c, int kind, bool has_id, int64_t id, const char *code,
                            const char *message)
{
    aipc_broker *b = c->b;
    if (!aipc_client_can_queue(c))
        return;
    b->st.errors++;
    begin(b, "error", has_id, id);
    aipc_sbuf_lit(&b->meta, ",\"code\":");
    aipc_sbuf_jstr(&b->meta, code, strlen(code));
    aipc_sbuf_lit(&b->meta, ",\"message\":");
    aipc_sbuf_jstr(&b->meta, message, strlen(message));
    aipc_sbuf_lit(&b->meta, "}");
    send_kind(c, kind, NULL, 0);
}

/* {"op":"error","re":id?,"code":"...","message":"..."} - sent with or without an id. */
void aipc_send_error(aipc_client *c, bool has_id, int64_t id, const char *code,
                     const char *message)
{
    send_error_kind(c, AIPC_FK_CONTROL, has_id, id, code, message);
}

void aipc_send_answer_error(aipc_client *c, int64_t rid, const char *code, const char *message)
{
    send_error_kind(c, AIPC_FK_ANSWER, true, rid, code, message);
}

/* A payload-less answer such as {"op":"pong","re":id}. */
void aipc_send_simple(aipc_client *c, const char *op, bool has_id, int64_t id)
{
    if (!aipc_client_can_queue(c))
        return;
    begin(c->b, op, has_id, id);
    aipc_sbuf_lit(&c->b->meta, "}");
    send_control(c, NULL, 0);
}

/* The answer to hello: the client's id, its name (null when anonymous) and the payload limit. */
void aipc_send_welcome(aipc_client *c, bool has_id, int64_t id)
{
    aipc_broker *b = c->b;
    begin(b, "welcome", has_id, id);
    aipc_sbuf_lit(&b->meta, ",\"proto\":1,\"id\":");
    aipc_sbuf_u64(&b->meta, c->id);
    aipc_sbuf_lit(&b->meta, ",\"name\":");
    if (c->name_len)
        aipc_sbuf_jstr(&b->meta, c->name, c->name_len);
    else
        aipc_sbuf_lit(&b->meta, "null");
    aipc_sbuf_lit(&b->meta, ",\"max_payload\":");
    aipc_sbuf_u64(&b->meta, b->cfg.max_payload);
    aipc_sbuf_lit(&b->meta, "}");
    send_control(c, NULL, 0);
}

/* A publication frame, encoded once for every subscriber:
 * {"op":"msg","topic":"...","from":{...},"retained":false} + payload. */
aipc_frame *aipc_build_msg(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                           size_t from_len, bool retained, const uint8_t *payload, size_t plen)
{
    aipc_sbuf *m = &b->meta;
    aipc_sbuf_reset(m);
    aipc_sbuf_lit(m, "{\"op\":\"msg\",\"topic\":");
    aipc_sbuf_jstr(m, topic, tlen);
    aipc_sbuf_lit(m, ",\"from\":");
    aipc_sbuf_add(m, from, from_len);
    aipc_sbuf_lit(m, retained ? ",\"retained\":true}" : ",\"retained\":false}");
    return finish(b, AIPC_FK_PUB, payload, plen);
}

/* A point-to-point frame {"op":"<op>","from":{...}[,"<key>":n]} + payload (direct, req, rep). */
aipc_frame *aipc_build_delivery(aipc_broker *b, const char *op, const char *from, size_t from_len,
                                const char *extra_key, bool has_extra, int64_t extra,
                                const uint8_t *payload, size_t plen)
{
    aipc_sbuf *m = &b->meta;
    aipc_sbuf_reset(m);
    aipc_sbuf_lit(m, "{\"op\":\"");
    aipc_sbuf_lit(m, op);
    aipc_sbuf_lit(m, "\",\"from\":");
    aipc_sbuf_add(m, from, from_len);
    if (has_extra) {
        aipc_sbuf_lit(m, ",\"");
        aipc_sbuf_lit(m, extra_key);
        aipc_sbuf_lit(m, "\":");
        aipc_sbuf_i64(m, extra);
    }
    aipc_sbuf_lit(m, "}");
    return finish(b, AIPC_FK_DIRECT, payload, plen);
}

/* {"op":"bye","reason":"shutdown"}: the broker is stopping (queued before the close request). */
void aipc_send_simple_bye(aipc_client *c)
{
    if (!aipc_client_can_queue(c))
        return;
    begin(c->b, "bye", false, 0);
    aipc_sbuf_lit(&c->b->meta, ",\"reason\":\"shutdown\"}");
    send_control(c, NULL, 0);
}
