/* broker.c - broker lifecycle and the engine-facing calls: attach, input, detach, shutdown. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The `from` stamped on what the broker itself publishes ($bus/joined, $bus/left). Its name
 * cannot clash with a client's: '$' is not allowed in names. */
static const char broker_from[] = "{\"id\":0,\"name\":\"$broker\",\"pid\":0}";

/* Fallback clock when the engine gives none (uptime only). */
static uint64_t default_now_ms(void)
{
    return (uint64_t)time(NULL) * 1000u;
}

/* Formats one log line for the engine's sink; nothing happens without a sink. */
void aipc__logf(aipc_broker *b, int level, const char *fmt, ...)
{
    if (!b->log || level > b->cfg.log_level)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    b->log(b->log_ctx, level, line);
}

/* Publishes $bus/joined or $bus/left with the client's {"id","name","pid"} as payload. */
void aipc__presence(aipc_broker *b, aipc_client *c, bool joined)
{
    const char *topic = joined ? "$bus/joined" : "$bus/left";
    aipc__publish(b, topic, strlen(topic), broker_from, sizeof broker_from - 1,
                 (const uint8_t *)c->from, c->from_len, false);
}

/* The default frame allocator: the CRT's. */
static void *crt_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *crt_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void crt_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

int aipc_broker_set_frame_allocator(aipc_broker *b, const aipc_allocator *a)
{
    if (b->st.clients_total || b->nretained)
        return AIPC_EINVAL;
    if (a && (!a->alloc || !a->realloc || !a->free))
        return AIPC_EINVAL;
    b->fa = a ? *a : (aipc_allocator){ crt_alloc, crt_realloc, crt_free, NULL };
    return 0;
}

/* Copies the config (zero fields = defaults) so the engine's struct need not outlive it. */
aipc_broker *aipc_broker_new(const aipc_broker_config *cfg, uint64_t (*now_ms)(void))
{
    aipc_broker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    aipc_broker_config def;
    aipc_broker_config_defaults(&def);
    b->cfg = cfg ? *cfg : def;
    if (!b->cfg.pipe_name[0])
        memcpy(b->cfg.pipe_name, def.pipe_name, sizeof def.pipe_name);
    if (!b->cfg.max_clients)
        b->cfg.max_clients = def.max_clients;
    if (!b->cfg.max_payload)
        b->cfg.max_payload = def.max_payload;
    if (!b->cfg.max_queue_bytes)
        b->cfg.max_queue_bytes = def.max_queue_bytes;
    if (!b->cfg.hello_timeout_ms)
        b->cfg.hello_timeout_ms = def.hello_timeout_ms;
    if (!b->cfg.max_subscriptions)
        b->cfg.max_subscriptions = def.max_subscriptions;
    if (!b->cfg.max_subscription_bytes)
        b->cfg.max_subscription_bytes = def.max_subscription_bytes;
    if (!b->cfg.max_pending_requests)
        b->cfg.max_pending_requests = def.max_pending_requests;
    if (!b->cfg.request_timeout_ms)
        b->cfg.request_timeout_ms = def.request_timeout_ms;
    if (!b->cfg.max_incomplete_bytes)
        b->cfg.max_incomplete_bytes = def.max_incomplete_bytes;
    if (!b->cfg.frame_timeout_ms)
        b->cfg.frame_timeout_ms = def.frame_timeout_ms;
    if (!b->cfg.close_linger_ms)
        b->cfg.close_linger_ms = def.close_linger_ms;
    if (!b->cfg.shm_threshold)
        b->cfg.shm_threshold = def.shm_threshold;
    if (!b->cfg.shm_segment_bytes)
        b->cfg.shm_segment_bytes = def.shm_segment_bytes;
    b->cfg.policy = NULL;                 /* the broker's own copy, below */
    if (cfg && cfg->policy && !(b->policy = aipc_policy_clone(cfg->policy))) {
        free(b);
        return NULL;
    }
    b->now_ms = now_ms ? now_ms : default_now_ms;
    b->started_ms = aipc__now(b);
    b->next_id = 1;
    aipc_broker_set_frame_allocator(b, NULL);
    return b;
}

/* The core has no logger of its own: the engine decides where lines go. */
void aipc_broker_set_log(aipc_broker *b, aipc_broker_log_fn fn, void *ctx)
{
    b->log = fn;
    b->log_ctx = ctx;
}

/* Frees a client's memory (after it was unlinked from everything). */
static void client_free(aipc_client *c)
{
    c->b->answers_queued -= c->answers_queued;
    aipc_outq_free(c->b, &c->q);
    aipc_decoder_free(&c->dec);
    aipc__identity_free(c);
    free(c->from);
    free(c);
}

/* Unlinks c from the broker's client list. */
static void client_unlink(aipc_broker *b, aipc_client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        b->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->nclients--;
}

/* Asks the engine to close c after flushing; nothing more is queued to it afterwards. */
void aipc__request_close(aipc_client *c)
{
    if (c->state == AIPC_CL_CLOSING)
        return;
    c->state = AIPC_CL_CLOSING;
    aipc_dq_remove(&c->b->hello_q, &c->t_hello);
    aipc_partial_closing(c->b, c);
    aipc_dq_push(&c->b->linger_q, &c->t_linger, aipc__now(c->b) + c->b->cfg.close_linger_ms);
    if (c->conn->ops && c->conn->ops->close)
        c->conn->ops->close(c->conn);
}

/* Tears everything down without callbacks: at this point the engine is gone or stopping. */
void aipc_broker_free(aipc_broker *b)
{
    if (!b)
        return;
    while (b->clients) {
        aipc_client *c = b->clients;
        client_unlink(b, c);
        aipc_connlim_release(b, c);
        aipc_dq_remove(&b->hello_q, &c->t_hello);
        aipc_dq_remove(&b->linger_q, &c->t_linger);
        aipc_partial_release(b, c);
        aipc__unsubscribe_all(b, c);
        while (c->reqs_out)
            aipc_reqs_remove(b, c->reqs_out);
        while (c->reqs_in)
            aipc_reqs_remove(b, c->reqs_in);
        aipc_shm_client_gone(b, c);
        client_free(c);
    }
    aipc_shm_pools_free(b);
    free(b->shm_targets);
    aipc_trie_free(&b->sub_root);
    aipc_retained_free(b);
    aipc_pmap_free(&b->by_id);
    aipc_strmap_free(&b->by_name);
    aipc_pmap_free(&b->sub_index);
    aipc_pmap_free(&b->reqs);
    aipc_sbuf_free(&b->meta);
    aipc_policy_free(b->policy);
    aipc_connlim_free(b);
    aipc_blk_free_all(b);                 /* last: every frame is gone */
    free(b);
}

/* Registers a fresh connection (no id until hello); refuses beyond max_clients. */
aipc_client *aipc_broker_attach(aipc_broker *b, aipc_conn *conn, uint32_t pid)
{
    if (b->shutting_down || b->nclients >= b->cfg.max_clients) {
        aipc__logf(b, AIPC_LOG_WARN, "refusing a connection from pid %u (%s)", pid,
                  b->shutting_down ? "shutting down" : "max_clients reached");
        return NULL;
    }
    aipc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->conn = conn;
    c->pid = pid;
    c->q.total = &b->queue_total;
    aipc_decoder_init(&c->dec, AIPC_MAX_META, b->cfg.max_payload);
    c->dec.adopt_gap = AIPC_ADOPT_GAP;  /* the client outlives every decoder callback */
    c->dec.alloc = &b->fa;              /* adopted blocks become frames: the frames' memory */
    c->next = b->clients;
    if (b->clients)
        b->clients->prev = c;
    b->clients = c;
    b->nclients++;
    b->st.clients_total++;
    aipc_dq_push(&b->hello_q, &c->t_hello, aipc__now(b) + b->cfg.hello_timeout_ms);
    conn->client = c;
    if (aipc_connlim_attach(b, c) != 0) {     /* no memory: undone, the engine closes it */
        aipc_broker_detach(b, c);
        return NULL;
    }
    return c;
}

/* Decoder callback: one whole frame of this client. */
static int on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    aipc_client *c = ctx;
    aipc_broker *b = c->b;
    b->in_dec = &c->dec;
    b->in_payload = pl;
    b->in_plen = pn;
    int rc = aipc_router_frame(b, c, meta, ml, pl, pn);
    aipc_blk_routed(b, c, pl);
    uint64_t wire = AIPC_HDR_SIZE + (uint64_t)ml + pn;
    c->land_wire = wire >= AIPC_BLK_MIN ? wire : 0;     /* the next is read whole (blkcache.c) */
    b->in_dec = NULL;
    b->in_payload = NULL;
    b->in_plen = 0;
    if (b->in_frame) {                  /* it adopted the block holding meta and payload */
        aipc__frame_unref(b, b->in_frame);
        b->in_frame = NULL;
    }
    return rc;
}

/* Maps the decoder's verdict to what the engine must do. */
static int after_decode(aipc_broker *b, aipc_client *c, int rc)
{
    if (rc == AIPC_ETOOBIG) {
        aipc__logf(b, AIPC_LOG_WARN, "client %" PRIu64 " (pid %u) sent an oversize frame",
                  c->id, c->pid);
        aipc__send_error(c, false, 0, "too_large", "frame over the meta or payload limit");
        aipc__request_close(c);
    } else if (rc == AIPC_ENOMEM) {
        return AIPC_ENOMEM;
    }
    return c->kill ? AIPC_EQUEUEFULL : 0;
}

/* Bytes from a read: decoded in place, one router call per whole frame. */
int aipc_broker_input(aipc_broker *b, aipc_client *cl, const uint8_t *data, size_t len)
{
    b->st.bytes_in += len;
    cl->direct_out = false;               /* this read went to the engine's own buffer */
    uint8_t *l = aipc_blk_land_take(b, cl);
    if (l)                                /* ... not into the landing it was offered */
        aipc_blk_unland(b, cl, l, cl->landing_cap);
    if (cl->state == AIPC_CL_CLOSING || b->shutting_down) {
        aipc_partial_after_input(b, cl);  /* a partial frame left by the close goes */
        return cl->kill ? AIPC_EQUEUEFULL : 0;
    }
    aipc_blk_lend(b, cl, data, len);      /* a recycled block for a large frame it starts */
    cl->in_input = true;
    int rc = aipc_decoder_feed(&cl->dec, data, len, on_frame, cl, NULL);
    cl->in_input = false;
    aipc_blk_reclaim(b, cl);
    aipc_shm_in_flush(b, cl);             /* the releases this turn owes, coalesced */
    aipc_shm_rel_drain(b, cl);            /* and what it released in its page */
    rc = after_decode(b, cl, rc);
    aipc_partial_after_input(b, cl);
    return rc;
}

/* Lets the engine read a big payload straight into the frame being assembled (the buffer
 * grows by one step here: charged like input). */
uint8_t *aipc_client_read_direct(aipc_client *cl, size_t *want)
{
    aipc_broker *b = cl->b;
    if (cl->state == AIPC_CL_CLOSING) {
        *want = 0;
        return NULL;
    }
    if (!aipc_decoder_partial(&cl->dec)) {
        uint8_t *l = aipc_blk_land(b, cl, want);  /* the next frame whole, into a cached block */
        if (l) {
            cl->direct_out = true;
            return l;
        }
    }
    uint8_t *p = aipc_decoder_direct(&cl->dec, want);
    aipc_partial_after_input(b, cl);
    if (cl->state == AIPC_CL_CLOSING) {   /* the growth took the total over the bound */
        *want = 0;
        return NULL;
    }
    cl->direct_out = p != NULL;
    return p;
}

/* After the decoder ran on a direct read: the turn's releases, the verdict, the charge. */
static int commit_done(aipc_broker *b, aipc_client *cl, int rc)
{
    aipc_shm_in_flush(b, cl);
    aipc_shm_rel_drain(b, cl);
    if (rc > 0)
        rc = 0;
    rc = after_decode(b, cl, rc);
    aipc_partial_after_input(b, cl);
    return rc;
}

/* Completes a read into a landing (aipc_blk_land): the decoder keeps the block for the frame
 * that starts there when it is whole, or partial with AIPC_BLK_ARRIVED of its body here and its
 * charge within max_incomplete_bytes (aipc_blk_lend's rules); anything else is decoded as input
 * and the block goes back to the cache. */
static int land_commit(aipc_broker *b, aipc_client *cl, size_t n)
{
    size_t cap = cl->landing_cap;
    uint8_t *blk = aipc_blk_land_take(b, cl);
    if (cl->state == AIPC_CL_CLOSING || b->shutting_down) {
        aipc_blk_unland(b, cl, blk, cap);
        aipc_partial_after_input(b, cl);
        return cl->kill ? AIPC_EQUEUEFULL : 0;
    }
    const uint8_t *at = blk + aipc_decoder_land_offset(&cl->dec);
    int allow_partial = 0, fits = 0;
    if (n >= AIPC_HDR_SIZE) {
        uint32_t ml, pl;
        aipc_frame_get_header(at, &ml, &pl);
        uint64_t full = (uint64_t)ml + pl + 2 + cl->dec.adopt_gap;
        /* at most 1/8 over the frame that really came, like any loan (max_queue_bytes) */
        fits = cap >= full && cap - full <= AIPC_BLK_SLACK(full);
        allow_partial = n >= AIPC_HDR_SIZE + (uint64_t)ml + AIPC_BLK_ARRIVED &&
                        b->incomplete_bytes + cap <= b->cfg.max_incomplete_bytes;
    }
    int taken = 0, rc;
    cl->in_input = true;
    if (fits)
        rc = aipc_decoder_land(&cl->dec, blk, cap, n, allow_partial, on_frame, cl, &taken);
    else        /* decoded from the block (no block is lent for it: it still holds the bytes) */
        rc = aipc_decoder_feed(&cl->dec, at, n, on_frame, cl, NULL);
    cl->in_input = false;
    if (!taken)
        aipc_blk_unland(b, cl, blk, cap);
    return commit_done(b, cl, rc);
}

/* Completes a direct read; a whole frame is routed like input. */
int aipc_client_read_commit(aipc_broker *b, aipc_client *cl, size_t n)
{
    b->st.bytes_in += n;
    cl->direct_out = false;
    if (cl->landing)
        return land_commit(b, cl, n);
    if (cl->state == AIPC_CL_CLOSING || b->shutting_down) {
        aipc_partial_after_input(b, cl);
        return cl->kill ? AIPC_EQUEUEFULL : 0;
    }
    cl->in_input = true;
    int rc = aipc_decoder_commit(&cl->dec, n, on_frame, cl);
    cl->in_input = false;
    aipc_blk_reclaim(b, cl);
    return commit_done(b, cl, rc);
}

/* The pipe is gone: undo everything the client took part in, tell the others, free it. */
void aipc_broker_detach(aipc_broker *b, aipc_client *cl)
{
    bool joined = cl->id != 0;
    client_unlink(b, cl);
    aipc_connlim_release(b, cl);
    cl->state = AIPC_CL_CLOSING;          /* nothing is queued to it from now on */
    aipc_dq_remove(&b->hello_q, &cl->t_hello);
    aipc_dq_remove(&b->linger_q, &cl->t_linger);
    aipc_partial_release(b, cl);
    aipc_registry_remove(b, cl);
    aipc__unsubscribe_all(b, cl);
    aipc_reqs_client_gone(b, cl);
    aipc_shm_client_gone(b, cl);
    if (joined) {
        aipc__logf(b, AIPC_LOG_INFO, "client %" PRIu64 " (%s, pid %u) left", cl->id,
                  cl->name_len ? cl->name : "anonymous", cl->pid);
        aipc__presence(b, cl, false);
    }
    cl->conn->client = NULL;
    client_free(cl);
}

/* Stopping: bye to everyone, then the engine flushes and disconnects each client. */
void aipc_broker_shutdown(aipc_broker *b)
{
    b->shutting_down = true;
    for (aipc_client *c = b->clients; c; c = c->next) {
        aipc__send_bye(c);
        aipc__request_close(c);
    }
}

/* Accessors for the engine's logs. */
uint64_t aipc_client_id(const aipc_client *cl)
{
    return cl->id;
}

/* "" for anonymous clients. */
const char *aipc_client_name(const aipc_client *cl)
{
    return cl->name;
}

/* As given at attach (the pipe's client process). */
uint32_t aipc_client_pid(const aipc_client *cl)
{
    return cl->pid;
}

/* Back from a client to the engine's connection. */
aipc_conn *aipc_client_conn(const aipc_client *cl)
{
    return cl->conn;
}
