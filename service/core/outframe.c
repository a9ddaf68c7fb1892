/* outframe.c - building outgoing frames: encoded once (header + meta + payload) into one
 * refcounted buffer shared by every queue it goes to; metas written by hand into the broker's
 * scratch buffer (ok, error, welcome, bye and other control answers; msg; direct, req and rep
 * deliveries); a large inbound payload adopted in place instead of copied. Frames and adopted blocks come
 * from the broker's frame allocator (b->fa, aipc_broker_set_frame_allocator). Queueing them to a
 * client, under the queue's rules, is outq.c's. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Encodes header + meta + payload once into one refcounted buffer (refs = 1), so one
 * publication is shared by every subscriber's queue without copies. */
aipc_frame *aipc__frame_make(aipc_broker *b, int kind, const char *meta, size_t meta_len,
                            const uint8_t *payload, size_t payload_len)
{
    if (meta_len > UINT32_MAX || payload_len > UINT32_MAX)
        return NULL;
    uint64_t len = (uint64_t)AIPC_HDR_SIZE + meta_len + payload_len;
    aipc_frame *f = b->fa.alloc(b->fa.ctx, sizeof *f + (size_t)len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->kind = (uint32_t)kind;
    f->len = len;
    f->data = (uint8_t *)(f + 1);
    f->mem = NULL;
    f->mem_len = 0;
    aipc_frame_put_header(f->data, (uint32_t)meta_len, (uint32_t)payload_len);
    if (meta_len)
        memcpy(f->data + AIPC_HDR_SIZE, meta, meta_len);
    if (payload_len)
        memcpy(f->data + AIPC_HDR_SIZE + meta_len, payload, payload_len);
    return f;
}

/* Drops one reference; the last one frees the frame and the block it adopted, if any (a large
 * block is kept for the next large frame: blkcache.c). */
void aipc__frame_unref(aipc_broker *b, aipc_frame *f)
{
    if (f && --f->refs == 0) {
        if (f->mem && !aipc_blk_put(b, f->mem, (size_t)f->mem_len))
            b->fa.free(b->fa.ctx, f->mem);
        b->fa.free(b->fa.ctx, f);
    }
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
    aipc_frame *f = b->fa.alloc(b->fa.ctx, sizeof *f);
    if (!f)
        return NULL;
    f->mem_len = (uint64_t)d->meta_len + 1 + d->gap + d->payload_len + 1; /* its layout */
    f->mem = aipc_decoder_adopt(d);     /* from b->fa too: the decoder's allocator */
    if (!f->mem) {
        b->fa.free(b->fa.ctx, f);
        return NULL;
    }
    size_t lent = aipc_blk_lent_cap(AIPC_CONTAINER(d, aipc_client, dec), f->mem);
    if (lent)                           /* a recycled block: its whole size (blkcache.c) */
        f->mem_len = lent;
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
    return aipc__frame_make(b, kind, b->meta.p, b->meta.len, payload, plen);
}

/* Queues a control frame built in the scratch buffer (payload optional). */
static void send_kind(aipc_client *c, int kind, const uint8_t *payload, size_t plen)
{
    aipc_frame *f = finish(c->b, kind, payload, plen);
    if (!f) {
        c->kill = true;                /* cannot even answer: cut the connection */
        aipc__request_close(c);
        return;
    }
    aipc__queue_frame(c, f);
    aipc__frame_unref(c->b, f);
}

/* A payload-less control frame whose whole meta the caller wrote (0 bytes: a builder failed),
 * queued at the end or ahead of the queue. Built straight from `meta`, never through the
 * scratch b->meta: callers may be in the middle of building something there (shm_unseg and
 * shm_seg are sent from inside a fan-out). */
static void send_meta(aipc_client *c, const char *meta, size_t n, bool first)
{
    if (!aipc__client_can_queue(c))
        return;
    aipc_frame *f = n && n <= AIPC_MAX_META
                        ? aipc__frame_make(c->b, AIPC_FK_CONTROL, meta, n, NULL, 0) : NULL;
    if (!f) {
        c->kill = true;                /* cannot even answer: cut the connection */
        aipc__request_close(c);
        return;
    }
    if (first)
        aipc__queue_frame_first(c, f);
    else
        aipc__queue_frame(c, f);
    aipc__frame_unref(c->b, f);
}

void aipc__send_meta(aipc_client *c, const char *meta, size_t n)
{
    send_meta(c, meta, n, false);
}

void aipc__send_meta_first(aipc_client *c, const char *meta, size_t n)
{
    send_meta(c, meta, n, true);
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
void aipc__send_ok(aipc_client *c, bool has_id, int64_t id)
{
    if (!has_id || !aipc__client_can_queue(c))
        return;
    begin(c->b, "ok", true, id);
    aipc_sbuf_lit(&c->b->meta, "}");
    send_control(c, NULL, 0);
}

static void send_error_kind(aipc_client *c, int kind, bool has_id, int64_t id, const char *code,
                            const char *message)
{
    aipc_broker *b = c->b;
    if (!aipc__client_can_queue(c))
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
void aipc__send_error(aipc_client *c, bool has_id, int64_t id, const char *code,
                     const char *message)
{
    send_error_kind(c, AIPC_FK_CONTROL, has_id, id, code, message);
}

void aipc__send_answer_error(aipc_client *c, int64_t rid, const char *code, const char *message)
{
    send_error_kind(c, AIPC_FK_ANSWER, true, rid, code, message);
}

/* A payload-less answer such as {"op":"pong","re":id}. */
void aipc__send_simple(aipc_client *c, const char *op, bool has_id, int64_t id)
{
    if (!aipc__client_can_queue(c))
        return;
    begin(c->b, op, has_id, id);
    aipc_sbuf_lit(&c->b->meta, "}");
    send_control(c, NULL, 0);
}

/* The answer to hello: the client's id, its name (null when anonymous), the payload limit and
 * the per-client queue bound (a bus client gathers at most 1/4 of it in unsent releases); for a
 * shm client "shm":{"v":1,"threshold":N[,"rel":1]}. */
void aipc__send_welcome(aipc_client *c, bool has_id, int64_t id)
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
    aipc_sbuf_lit(&b->meta, ",\"max_queue_bytes\":");
    aipc_sbuf_u64(&b->meta, b->cfg.max_queue_bytes);
    if (c->shm_on) {
        aipc_sbuf_lit(&b->meta, ",\"shm\":{\"v\":1,\"threshold\":");
        aipc_sbuf_u64(&b->meta, b->cfg.shm_threshold);
        if (c->shm_rel_offer)
            aipc_sbuf_lit(&b->meta, ",\"rel\":1");   /* a release page is welcome (shm_rel.c) */
        aipc_sbuf_lit(&b->meta, "}");
    }
    aipc_sbuf_lit(&b->meta, "}");
    send_control(c, NULL, 0);
}

/* A publication's meta without its closing brace:
 * {"op":"msg","topic":"...","from":{...},"retained":false */
static void msg_meta(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                     size_t from_len, bool retained)
{
    aipc_sbuf *m = &b->meta;
    aipc_sbuf_reset(m);
    aipc_sbuf_lit(m, "{\"op\":\"msg\",\"topic\":");
    aipc_sbuf_jstr(m, topic, tlen);
    aipc_sbuf_lit(m, ",\"from\":");
    aipc_sbuf_add(m, from, from_len);
    aipc_sbuf_lit(m, retained ? ",\"retained\":true" : ",\"retained\":false");
}

/* A publication frame, encoded once for every subscriber:
 * {"op":"msg","topic":"...","from":{...},"retained":false} + payload. */
aipc_frame *aipc__build_msg(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                           size_t from_len, bool retained, const uint8_t *payload, size_t plen)
{
    msg_meta(b, topic, tlen, from, from_len, retained);
    aipc_sbuf_lit(&b->meta, "}");
    return finish(b, AIPC_FK_PUB, payload, plen);
}

/* A point-to-point meta without its closing brace: {"op":"<op>","from":{...}[,"<key>":n] */
static void delivery_meta(aipc_broker *b, const char *op, const char *from, size_t from_len,
                          const char *extra_key, bool has_extra, int64_t extra)
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
}

/* A point-to-point frame {"op":"<op>","from":{...}[,"<key>":n]} + payload (direct, req, rep). */
aipc_frame *aipc__build_delivery(aipc_broker *b, const char *op, const char *from, size_t from_len,
                                const char *extra_key, bool has_extra, int64_t extra,
                                const uint8_t *payload, size_t plen)
{
    delivery_meta(b, op, from, from_len, extra_key, has_extra, extra);
    aipc_sbuf_lit(&b->meta, "}");
    return finish(b, AIPC_FK_DIRECT, payload, plen);
}

/* Closes the scratch meta with ,"shm":[seg,off,len]} and makes the payload-less descriptor. */
static aipc_frame *finish_shm(aipc_broker *b, int kind, aipc_shm_slot *s)
{
    char d[48];
    aipc_shm_desc desc = {s->seg->id, s->off, s->len};
    size_t n = aipc_shm_desc_put(d, sizeof d, &desc);
    aipc_sbuf_lit(&b->meta, ",");
    aipc_sbuf_add(&b->meta, d, n);
    aipc_sbuf_lit(&b->meta, "}");
    if (!n || b->meta.oom || b->meta.len > AIPC_MAX_META)
        return NULL;
    aipc_frame *f = aipc__frame_make(b, kind, b->meta.p, b->meta.len, NULL, 0);
    if (f)
        f->shm = s;
    return f;
}

aipc_frame *aipc__build_msg_shm(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                               size_t from_len, aipc_shm_slot *s)
{
    msg_meta(b, topic, tlen, from, from_len, false);
    return finish_shm(b, AIPC_FK_PUB, s);
}

aipc_frame *aipc__build_delivery_shm(aipc_broker *b, const char *op, const char *from,
                                    size_t from_len, const char *extra_key, bool has_extra,
                                    int64_t extra, aipc_shm_slot *s)
{
    delivery_meta(b, op, from, from_len, extra_key, has_extra, extra);
    return finish_shm(b, AIPC_FK_DIRECT, s);
}

/* {"op":"bye","reason":"shutdown"}: the broker is stopping (queued before the close request). */
void aipc__send_bye(aipc_client *c)
{
    if (!aipc__client_can_queue(c))
        return;
    begin(c->b, "bye", false, 0);
    aipc_sbuf_lit(&c->b->meta, ",\"reason\":\"shutdown\"}");
    send_control(c, NULL, 0);
}
