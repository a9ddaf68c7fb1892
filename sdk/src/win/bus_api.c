/*
 * bus_api.c - the exported aipc_bus_* calls and the client object's lifetime.
 *
 * Public calls run on any thread. They validate, build the frame (meta + payload copy) on the
 * calling thread, then queue it under `lock` and, when needed, post one `wake` task to the I/O
 * thread (at most one is outstanding per client, so bursts cost one post). aipc_bus_close
 * shuts the callback gate, runs the final callbacks on its caller's thread (bus_events.c) and
 * posts the close task (bus_conn.c).
 *
 * Lifetime: `refs` counts the user's handle, every kernel operation in flight and every posted
 * task; memory (including each buffer handed to the kernel) is freed when it reaches zero.
 */
#include "bus_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aipc__bus_ref(aipc_bus *b)
{
    InterlockedIncrement(&b->refs);
}

/* Frees everything once the last reference is gone (any thread; nothing is pending then). */
void aipc__bus_unref(aipc_bus *b)
{
    if (InterlockedDecrement(&b->refs) != 0)
        return;
    aipc__bus_ev_free_done(b);
    aipc__gate_free(&b->gate);
    aipc__sec_expect_free(&b->owners);
    if (b->disp)
        aipc__dispatcher_unref(b->disp);
    aipc__bus_queue_free(&b->q);
    aipc__bus_queue_free(&b->ctl);
    aipc__bus_subs_free(&b->subs);
    aipc__bus_pending_free(&b->pend);
    aipc__bus_relpage_reset(b);          /* (the drain did it, unless it never ran) */
    aipc__shm_link_free(&b->shm);
    aipc_decoder_free(&b->dec);
    free(b->wbuf);
    free(b->xbuf);
    aipc__conn_free(&b->io);
    free(b->pipe);
    free(b->pipe_utf8);
    free(b->name);
    free(b);
}

const char *aipc_bus_state_name(aipc_bus_state s)
{
    switch (s) {
    case AIPC_BUS_CONNECTING: return "connecting";
    case AIPC_BUS_CONNECTED: return "connected";
    case AIPC_BUS_DISCONNECTED: return "disconnected";
    case AIPC_BUS_RECONNECTING: return "reconnecting";
    case AIPC_BUS_CLOSED: return "closed";
    }
    return "unknown";
}

/* Posts the wake task unless one is queued. Caller holds the lock. */
static void wake_locked(aipc_bus *b)
{
    if (b->wake_posted || b->closing)
        return;
    b->wake_posted = 1;
    aipc__bus_ref(b);
    if (!b->loop->eng->post(b->loop, &b->wake_op)) {
        b->wake_posted = 0;
        InterlockedDecrement(&b->refs);   /* never the last reference: the caller holds one */
    }
}

void aipc__bus_wake(aipc_bus *b)
{
    AcquireSRWLockExclusive(&b->lock);
    wake_locked(b);
    ReleaseSRWLockExclusive(&b->lock);
}

/* ---- public API ------------------------------------------------------------------------------ */

void aipc_bus_options_init(aipc_bus_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->reconnect = 1;
    o->backoff_min_ms = AIPC_BUS_DEFAULT_BACKOFF_MIN_MS;
    o->backoff_max_ms = AIPC_BUS_DEFAULT_BACKOFF_MAX_MS;
    o->max_queue_bytes = AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES;
    o->connect_timeout_ms = AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS;
}

/* Smallest options struct accepted: everything up to and including on_error. */
#define BUS_OPTS_MIN_SIZE (offsetof(aipc_bus_options, on_error) + sizeof(void (*)(void)))

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int aipc_bus_connect(const aipc_bus_options *opts, aipc_bus **out)
{
    if (!out)
        return AIPC_EINVAL;
    *out = NULL;
    if (!opts || opts->size < BUS_OPTS_MIN_SIZE)
        return AIPC_EINVAL;
    if (opts->name && !aipc__bus_name_valid(opts->name))
        return AIPC_EINVAL;
    if (opts->size >= offsetof(aipc_bus_options, engine) + sizeof opts->engine &&
        opts->engine != PIPE_ASYNC && opts->engine != PIPE_OVERLAPPED)
        return AIPC_EINVAL;
    aipc_bus *b = calloc(1, sizeof *b);
    if (!b)
        return AIPC_ENOMEM;
    /* copy what the caller's version has; newer fields keep their defaults */
    aipc_bus_options def;
    aipc_bus_options_init(&def);
    def.reconnect = 0;
    memcpy(&def, opts, opts->size < sizeof def ? opts->size : sizeof def);
    if (opts->size < offsetof(aipc_bus_options, reconnect) + sizeof def.reconnect)
        def.reconnect = 1;
    b->o = def;
    b->o.size = sizeof b->o;
    if (!b->o.backoff_min_ms)
        b->o.backoff_min_ms = AIPC_BUS_DEFAULT_BACKOFF_MIN_MS;
    if (!b->o.backoff_max_ms)
        b->o.backoff_max_ms = AIPC_BUS_DEFAULT_BACKOFF_MAX_MS;
    if (b->o.backoff_max_ms < b->o.backoff_min_ms)
        b->o.backoff_max_ms = b->o.backoff_min_ms;
    if (!b->o.max_queue_bytes)
        b->o.max_queue_bytes = AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES;
    if (!b->o.connect_timeout_ms)
        b->o.connect_timeout_ms = AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS;
    if (opts->size < offsetof(aipc_bus_options, dispatcher) + sizeof(void *))
        b->o.dispatcher = NULL;
    if (opts->size < offsetof(aipc_bus_options, max_dispatch_bytes) + sizeof(uint64_t) ||
        !b->o.max_dispatch_bytes)
        b->o.max_dispatch_bytes = AIPC_DEFAULT_MAX_DISPATCH;
    if (opts->size < offsetof(aipc_bus_options, shm_threshold) + sizeof b->o.shm_threshold) {
        b->o.shm = AIPC_SHM_AUTO;
        b->o.shm_threshold = 0;
    }
    if (b->o.shm != AIPC_SHM_AUTO && b->o.shm != AIPC_SHM_OFF) {
        free(b);
        return AIPC_EINVAL;
    }
    if (!b->o.shm_threshold)
        b->o.shm_threshold = AIPC_DEFAULT_SHM_THRESHOLD;
    aipc__gate_init(&b->gate);
    if (opts->size < offsetof(aipc_bus_options, server_owners) + sizeof(char *))
        b->o.server_owners = NULL;
    if (opts->size < offsetof(aipc_bus_options, engine) + sizeof b->o.engine)
        b->o.engine = PIPE_ASYNC;
    int orc = aipc__sec_expect_parse(b->o.server_owners ? b->o.server_owners
                                                       : AIPC_BUS_DEFAULT_SERVER_OWNERS, &b->owners);
    b->o.server_owners = NULL;      /* the caller's string is not kept */
    if (orc != 0) {
        free(b);
        return orc == AIPC_ENOMEM ? AIPC_ENOMEM : AIPC_EINVAL;
    }
    b->disp = b->o.dispatcher;
    if (b->disp)
        aipc__dispatcher_ref(b->disp);

    int rc = aipc__wname_normalize(opts->pipe_name ? opts->pipe_name : AIPC_DEFAULT_BROKER_PIPE,
                                  &b->pipe);
    if (rc == 0 && !(b->pipe_utf8 = aipc__wname_utf8(b->pipe)))
        rc = AIPC_ENOMEM;
    if (rc == 0 && opts->name && !(b->name = dup_str(opts->name)))
        rc = AIPC_ENOMEM;
    if (rc == 0)
        rc = aipc__conn_init(&b->io, &aipc__bus_io_handler, b, &(aipc__conn_cfg){
            BUS_READ_SIZE, BUS_READ_SIZE, BUS_WRITE_PIECE, BUS_WRITE_PIECE, AIPC_DIRECT_MIN,
            BUS_DIRECT_MAX});
    const aipc__engine *eng = b->o.engine == PIPE_OVERLAPPED ? &aipc__engine_iocp : &aipc__engine_apc;
    if (rc == 0 && !(b->loop = eng->loop()))
        rc = aipc__syserr(GetLastError());
    b->refs = 1;
    aipc__bus_queue_init(&b->q, (size_t)(b->o.max_queue_bytes > SIZE_MAX ? SIZE_MAX
                                                                         : b->o.max_queue_bytes));
    aipc__bus_queue_init(&b->ctl, SIZE_MAX);
    if (rc != 0) {
        aipc__bus_unref(b);
        return rc;
    }
    b->o.pipe_name = b->pipe;
    b->o.name = b->name;
    InitializeSRWLock(&b->lock);
    aipc__bus_shm_init(b);
    aipc__bus_subs_init(&b->subs);
    aipc__bus_pending_init(&b->pend);
    b->max_payload = AIPC_DEFAULT_MAX_PAYLOAD;
    aipc__bus_conn_init(b);
    b->pub_state = AIPC_BUS_CONNECTING;
    aipc__bus_ref(b);
    if (!b->loop->eng->post(b->loop, &b->start_op)) {
        DWORD e = GetLastError();
        b->refs = 1;
        aipc__bus_unref(b);
        return aipc__syserr(e);
    }
    aipc_log(AIPC_LOG_INFO, "bus(%s): connecting as '%s' (%s engine)", b->pipe_utf8,
             b->name ? b->name : "(anonymous)", b->loop->eng->name);
    *out = b;
    return 0;
}

/* Common gate for calls that queue frames: AIPC_ECLOSED / AIPC_EDISCONNECTED. Lock held. */
int aipc__bus_usable_locked(const aipc_bus *b)
{
    if (b->closing)
        return AIPC_ECLOSED;
    if (b->down)
        return AIPC_EDISCONNECTED;
    return 0;
}

/*
 * Builds a frame and queues it (bounded), optionally with a pending entry; posts a wake.
 * `pend` (may be NULL) gets its id set to `id`. `bl` (may be NULL): a zero-copy buffer's bytes
 * (bus_buf.c): their room was charged at aipc_bus_alloc (b->lent), so no bound applies and the
 * charge goes once the frame is queued; a lent slot of the current connection goes as its
 * descriptor, one of an older connection is copied like any payload. Returns 0 or AIPC_E*.
 */
int aipc__bus_enqueue(aipc_bus *b, const aipc__bus_out *o, const void *data, size_t len,
                      aipc__bus_pend *pend, uint64_t tag, aipc__bus_lent *bl)
{
    if (len && !data)
        return AIPC_EINVAL;
    size_t ml;
    char *meta = aipc__bus_meta_build(o, &ml);
    if (!meta)
        return AIPC_ENOMEM;
    if (ml > AIPC_MAX_META) {
        free(meta);
        return AIPC_ETOOBIG;
    }
    /* At or above the threshold (never a retained publication) the payload may go through
     * shared memory (bus_shm.c): the inline frame is then built only if it does not. */
    int shared = len >= b->o.shm_threshold && b->o.shm == AIPC_SHM_AUTO && !o->retain;
    int slot = bl && bl->tx;
    aipc__bus_qnode *n = NULL;
    /* (shm.active is a hint here: decided under the lock) */
    if ((!shared || !*(volatile int *)&b->shm.active) && !slot) {
        n = aipc__bus_frame_new(meta, ml, data, len, tag);
        if (!n) {
            free(meta);
            return AIPC_ENOMEM;
        }
    }
    AcquireSRWLockExclusive(&b->lock);
    int rc = aipc__bus_usable_locked(b);
    if (rc == 0 && len > b->max_payload)
        rc = AIPC_ETOOBIG;
    /* shared payloads not released yet and allocated buffers count against the bound too */
    if (rc == 0 && !bl && (b->shm.held || b->lent) &&
        (uint64_t)b->q.bytes + b->shm.held + b->lent + AIPC_HDR_SIZE + ml + len > b->q.max_bytes)
        rc = AIPC_EQUEUEFULL;
    aipc__bus_qnode *sn = NULL;
    uint8_t *copy_to = NULL;
    aipc_shm_desc ld = {0, 0, 0};
    int lent_sent = 0;
    if (rc == 0 && slot) {                /* the application wrote the payload in our slot */
        int r = aipc__shm_link_send_lent(&b->shm, bl->tx, bl->off, (uint32_t)len, &ld);
        if (r == 1 && !(sn = aipc__bus_shm_desc_frame(meta, ml, &ld, tag))) {
            aipc__shm_link_unsend_lent(&b->shm, &ld);
            rc = AIPC_ENOMEM;
        } else if (r == 1) {
            lent_sent = 1;
        } else if (r < 0) {
            rc = r;
        }                                 /* 0: an older connection's slot: copied below */
    }
    if (rc == 0 && shared && !sn)
        rc = aipc__bus_shm_frame_locked(b, meta, ml, len, tag, &sn, &copy_to);
    if (copy_to) {                        /* the payload goes in with the lock released */
        aipc__bus_shm_copy(b, copy_to, data, len);
        rc = aipc__bus_usable_locked(b);  /* (closed meanwhile: the slot goes back below) */
    }
    if (rc == 0 && !sn && !n && !(n = aipc__bus_frame_new(meta, ml, data, len, tag)))
        rc = AIPC_ENOMEM;
    if (rc == 0 && pend)
        rc = aipc__bus_pending_add(&b->pend, pend);
    if (rc == 0) {
        rc = aipc__bus_queue_push(&b->q, sn ? sn : n, !bl);
        if (rc != 0 && pend) {
            aipc__bus_pend undo;
            if (aipc__bus_pending_take(&b->pend, pend->id, &undo))
                free(undo.desc);
        }
    }
    if (rc == 0) {
        if (sn) {
            aipc_shm_desc d = {sn->shm_seg, sn->shm_off, sn->shm_len};
            aipc__shm_link_reserved_queued(&b->shm, &d);   /* the broker may release it now */
            sn = NULL;
        } else {
            n = NULL;
        }
        if (bl) {                         /* the buffer's room is the frame's (or the slot's) now */
            b->lent -= bl->charge;
            if (slot && !lent_sent) {     /* sent as a copy: the old slot is free */
                bl->gone = aipc__shm_link_unlend(&b->shm, bl->tx, bl->off);
                bl->fell_back = 1;
            }
        }
        if (pend && pend->deadline_ms &&
            (b->new_deadline == 0 || pend->deadline_ms < b->new_deadline))
            b->new_deadline = pend->deadline_ms;
        if (b->ready || (pend && pend->deadline_ms))
            wake_locked(b);
    }
    if (sn && lent_sent) {                /* not queued: the slot is lent again */
        aipc__shm_link_unsend_lent(&b->shm, &ld);
    } else if (sn) {                      /* not queued: its slot goes back */
        aipc_shm_desc d = {sn->shm_seg, sn->shm_off, sn->shm_len};
        aipc__shm_link_unput(&b->shm, &d);
    }
    ReleaseSRWLockExclusive(&b->lock);
    free(meta);
    free(n);
    free(sn);
    return rc;
}

/* Subscribe/unsubscribe: updates the set; sends the op now only when connected (a reconnect
 * re-sends the whole set). */
static int sub_op(aipc_bus *b, const char *filter, int add)
{
    if (!b || !aipc__bus_filter_valid(filter))
        return AIPC_EINVAL;
    uint64_t id = (uint64_t)InterlockedIncrement64(&b->next_id);
    size_t ml;
    char *meta = aipc__bus_meta_build(&(aipc__bus_out){.op = add ? "sub" : "unsub",
                                                     .topic = filter, .id = id}, &ml);
    aipc__bus_qnode *n = meta ? aipc__bus_frame_new(meta, ml, NULL, 0, 0) : NULL;
    free(meta);
    if (!n)
        return AIPC_ENOMEM;
    char desc[96];
    snprintf(desc, sizeof desc, "%s '%.64s'", add ? "subscribe" : "unsubscribe", filter);
    aipc__bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc};
    AcquireSRWLockExclusive(&b->lock);
    int rc = aipc__bus_usable_locked(b);
    int changed = 0;
    if (rc == 0) {
        changed = add ? aipc__bus_subs_add(&b->subs, filter) : aipc__bus_subs_remove(&b->subs, filter);
        if (changed < 0)
            rc = changed;
    }
    if (rc == 0 && changed && b->ready) {
        /* control traffic: not subject to the queue bound */
        if (aipc__bus_pending_add(&b->pend, &e) == 0) {
            aipc__bus_queue_push(&b->q, n, 0);
            n = NULL;
            wake_locked(b);
        }
    }
    ReleaseSRWLockExclusive(&b->lock);
    free(n);
    return rc;
}

int aipc_bus_subscribe(aipc_bus *bus, const char *filter)
{
    return sub_op(bus, filter, 1);
}

int aipc_bus_unsubscribe(aipc_bus *bus, const char *filter)
{
    return sub_op(bus, filter, 0);
}

int aipc_bus_publish(aipc_bus *bus, const char *topic, const void *data, size_t len, bool retain)
{
    if (!bus || !aipc__bus_topic_valid(topic))
        return AIPC_EINVAL;
    return aipc__bus_enqueue(bus, &(aipc__bus_out){.op = "pub", .topic = topic, .retain = retain},
                             data, len, NULL, 0, NULL);
}

/* Validates a send/req target: a client name or a decimal id. */
static int target_valid(const char *to)
{
    return to && (aipc__bus_name_valid(to) || aipc__bus_to_is_id(to, NULL));
}

int aipc__bus_send_to(aipc_bus *bus, const char *to, const void *data, size_t len,
                      aipc__bus_lent *bl)
{
    if (!bus || !target_valid(to))
        return AIPC_EINVAL;
    uint64_t id = (uint64_t)InterlockedIncrement64(&bus->next_id);
    char desc[160];
    snprintf(desc, sizeof desc, "send to '%s'", to);
    aipc__bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc};
    return aipc__bus_enqueue(bus, &(aipc__bus_out){.op = "send", .to = to, .id = id}, data, len, &e,
                             id, bl);
}

int aipc_bus_send(aipc_bus *bus, const char *to, const void *data, size_t len)
{
    return aipc__bus_send_to(bus, to, data, len, NULL);
}

/* Shared by request/ping/stats: a pending entry with a deadline and a callback. */
static int64_t call_op(aipc_bus *b, const aipc__bus_out *o, const void *data, size_t len,
                       uint32_t timeout_ms, aipc__bus_pend_kind kind, aipc_bus_reply_fn cb,
                       void *user)
{
    uint64_t id = (uint64_t)InterlockedIncrement64(&b->next_id);
    aipc__bus_out out = *o;
    out.id = id;
    aipc__bus_pend e = {.id = id, .deadline_ms = GetTickCount64() + timeout_ms, .kind = kind,
                       .cb = cb, .user = user};
    int rc = aipc__bus_enqueue(b, &out, data, len, &e, id, NULL);
    return rc ? rc : (int64_t)id;
}

int64_t aipc_bus_request(aipc_bus *bus, const char *to, const void *data, size_t len,
                         uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !target_valid(to) || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc__bus_out){.op = "req", .to = to}, data, len,
                   timeout_ms ? timeout_ms : BUS_REQ_TIMEOUT_DEF, AIPC_BUS_PEND_REQ, cb, user);
}

int aipc_bus_reply(aipc_bus *bus, uint64_t to_id, uint64_t req_id, const void *data, size_t len)
{
    if (!bus || !to_id || !req_id)
        return AIPC_EINVAL;
    return aipc__bus_enqueue(bus, &(aipc__bus_out){.op = "rep", .to_id = to_id, .re = req_id},
                             data, len, NULL, 0, NULL);
}

int64_t aipc_bus_ping(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc__bus_out){.op = "ping"}, NULL, 0,
                   timeout_ms ? timeout_ms : BUS_PING_TIMEOUT_DEF, AIPC_BUS_PEND_PING, cb, user);
}

int64_t aipc_bus_stats(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc__bus_out){.op = "stats"}, NULL, 0,
                   timeout_ms ? timeout_ms : BUS_PING_TIMEOUT_DEF, AIPC_BUS_PEND_STATS, cb, user);
}

aipc_bus_state aipc_bus_get_state(aipc_bus *bus)
{
    return bus ? (aipc_bus_state)InterlockedCompareExchange(&bus->pub_state, 0, 0)
               : AIPC_BUS_CLOSED;
}

int aipc_bus_get_error(aipc_bus *bus, uint32_t *win32)
{
    if (!bus)
        return AIPC_EINVAL;
    if (win32)
        *win32 = (uint32_t)InterlockedCompareExchange(&bus->fail_win32, 0, 0);
    return (int)InterlockedCompareExchange(&bus->fail_code, 0, 0);
}

uint64_t aipc_bus_client_id(aipc_bus *bus)
{
    return bus ? (uint64_t)InterlockedCompareExchange64(&bus->client_id, 0, 0) : 0;
}

void aipc_bus_close(aipc_bus *b)
{
    if (!b)
        return;
    if (aipc__loop_gone(b->loop)) {
        /* Process exit (a static destructor in a DLL): every other thread is gone, perhaps
         * inside one of our locks. Nothing can run a callback any more; leave it all. */
        InterlockedExchange(&b->gate.closed, 1);
        return;
    }
    aipc__bus_ref(b);                    /* a served message may not free it under us */
    AcquireSRWLockExclusive(&b->lock);
    if (b->closing) {
        ReleaseSRWLockExclusive(&b->lock);
        aipc__bus_unref(b);
        return;
    }
    b->closing = 1;
    b->ready = 0;
    ReleaseSRWLockExclusive(&b->lock);
    /* No callback from now on; waits only for one running on another thread. */
    aipc__gate_close(&b->gate);
    aipc__bus_ev_final(b);
    /* The I/O thread closes the connection and drops the user's reference. At process exit
     * the thread may be gone (e.g. a static destructor in a DLL): the client is left as is. */
    aipc__bus_ref(b);
    if (aipc__loop_gone(b->loop) || !b->loop->eng->post(b->loop, &b->close_op)) {
        if (!aipc__loop_gone(b->loop))
            aipc_log(AIPC_LOG_ERROR, "bus(%s): cannot post the close task; leaking the client",
                     b->pipe_utf8);
        InterlockedDecrement(&b->refs);
    }
    aipc__bus_unref(b);
}
