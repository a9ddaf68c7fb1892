/*
 * bus_events.c - the user callbacks of a bus client.
 *
 * Without a dispatcher each event calls the user at once, on the I/O thread, through the
 * client's gate. With one, the event becomes an item (arguments copied, a client reference
 * held) that the dispatcher's thread delivers in order, through the same gate.
 *
 * Request completions are delivered exactly once, whoever gets there first:
 *   - Without a dispatcher the I/O thread takes a pending entry only while inside the gate,
 *     so once aipc_bus_close has shut the gate every entry left is its to complete.
 *   - With one, the I/O thread takes the entry and, under the same lock, parks its result in
 *     the client's `done` list; the item delivers it if it is still there. aipc_bus_close
 *     (after shutting the gate) delivers whatever is still parked, then fails the rest.
 * Flow control: bytes queued for the dispatcher above max_dispatch_bytes pause the read side;
 * the dispatcher's thread posts the resume task once they are down to half of it.
 * Shared payloads (bus_shm.c): delivered at once, the callback gets the pointer into the view;
 * queued, the item takes over the frame's hold (b->rx_cur) instead of copying, and releases
 * it after its callback ran (or when it is dropped).
 * Buffer callbacks (on_message_buf / on_direct_buf set): the payload becomes a buffer
 * (bus_buf.c: the shared view with its release owed, or a heap copy) that the event carries
 * instead of data; the callback gets it and owns it from then on. An event not delivered
 * (the gate shut, the item dropped) releases its buffer.
 */
#include "bus_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A completed request parked for the dispatcher: referenced by the `done` list (until taken)
 * and by its item. */
struct bus_done {
    bus_done *next, *prev;   /* [lock] in b->done_* while linked */
    volatile LONG refs;
    int linked;              /* [lock] */
    aipc__bus_pend e;         /* the entry taken from the pending table */
    int status;
    int has_from;
    aipc_bus_peer from;      /* from.name points into `buf` */
    size_t len;
    uint8_t *data;           /* points into `buf`; NUL-terminated */
    char buf[];
};

typedef enum {
    EV_STATE, EV_ERROR, EV_MESSAGE, EV_DIRECT, EV_REQUEST, EV_PRESENCE, EV_DROPPED, EV_DONE
} ev_kind;

typedef struct bus_ev {
    aipc__dq_item it;         /* first */
    aipc_bus *b;             /* referenced */
    ev_kind kind;
    int i;                   /* state / error / joined / retained */
    int err;                 /* EV_STATE: cause */
    uint64_t u;              /* req id / dropped count */
    aipc_bus_peer peer;      /* from / who; name points into buf */
    const char *s1, *s2;     /* topic | code, message (into buf) */
    const void *data;
    size_t len;
    bus_done *done;          /* EV_DONE */
    aipc__bus_shm_msg shm;    /* data is in a view of the broker's segment: released after */
    aipc_buf *ubuf;          /* EV_MESSAGE/EV_DIRECT to a buffer callback: handed over by
                                deliver (NULL then), else released with the event */
    uint64_t flow;           /* bytes added to b->dq_bytes */
    char buf[];
} bus_ev;

/* ---- delivery (inside the gate, on the delivering thread) ---------------------------------- */

static void call_error(aipc_bus *b, int err, const char *code, const char *msg)
{
    if (b->o.on_error)
        b->o.on_error(b, b->o.user, err, code, msg);
}

/* Completes one entry taken out of the pending table (frees its description). */
static void complete(aipc_bus *b, aipc__bus_pend *e, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    if (e->kind == AIPC_BUS_PEND_ACK) {
        if (status == AIPC_EREFUSED) {
            char line[512];
            snprintf(line, sizeof line, "%s: %s", e->desc ? e->desc : "request",
                     data ? (const char *)data : "refused");
            aipc_log(AIPC_LOG_WARN, "bus(%s): error %s", b->pipe_utf8, line);
            call_error(b, status, data ? (const char *)data : "", line);
        }
    } else if (e->cb) {
        e->cb(b, e->user, status, from, data ? data : "", data ? len : 0);
    }
    free(e->desc);
    e->desc = NULL;
}

static void deliver(aipc_bus *b, bus_ev *v)
{
    const aipc_bus_options *o = &b->o;
    aipc_buf *buf = v->ubuf;
    v->ubuf = NULL;                       /* a buffer is the callback's from here on */
    switch (v->kind) {
    case EV_STATE:
        if (o->on_state)
            o->on_state(b, o->user, (aipc_bus_state)v->i, v->err);
        break;
    case EV_ERROR:
        call_error(b, v->i, v->s1, v->s2);
        break;
    case EV_MESSAGE:
        if (buf)
            o->on_message_buf(b, o->user, v->s1, &v->peer, v->i != 0, buf);
        else if (o->on_message)
            o->on_message(b, o->user, v->s1, &v->peer, v->i != 0, v->data, v->len);
        break;
    case EV_DIRECT:
        if (buf)
            o->on_direct_buf(b, o->user, &v->peer, buf);
        else if (o->on_direct)
            o->on_direct(b, o->user, &v->peer, v->data, v->len);
        break;
    case EV_REQUEST:
        if (o->on_request)
            o->on_request(b, o->user, &v->peer, v->u, v->data, v->len);
        break;
    case EV_PRESENCE:
        if (o->on_presence)
            o->on_presence(b, o->user, v->i != 0, &v->peer);
        break;
    case EV_DROPPED:
        if (o->on_dropped)
            o->on_dropped(b, o->user, v->u);
        break;
    case EV_DONE:
        break;               /* handled by ev_item */
    }
}

static void done_unref(bus_done *d)
{
    if (InterlockedDecrement(&d->refs) == 0) {
        free(d->e.desc);
        free(d);
    }
}

/* Unlinks `d` from the done list; 1 if it was still there. Lock held. */
static int done_unlink(aipc_bus *b, bus_done *d)
{
    if (!d->linked)
        return 0;
    if (d->prev)
        d->prev->next = d->next;
    else
        b->done_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        b->done_tail = d->prev;
    d->linked = 0;
    d->next = d->prev = NULL;
    return 1;
}

static void done_deliver(aipc_bus *b, bus_done *d)
{
    complete(b, &d->e, d->status, d->has_from ? &d->from : NULL, d->data, d->len);
}

/* Dispatcher's thread: deliver (run) or drop the item, then release it. */
static void ev_item(aipc__dq_item *it, int run)
{
    bus_ev *v = (bus_ev *)it;
    aipc_bus *b = v->b;
    if (run && aipc__gate_enter(&b->gate)) {
        if (v->kind == EV_DONE) {
            AcquireSRWLockExclusive(&b->lock);
            int mine = done_unlink(b, v->done);
            ReleaseSRWLockExclusive(&b->lock);
            if (mine) {
                done_deliver(b, v->done);
                done_unref(v->done);         /* the list's reference */
            }
        } else {
            deliver(b, v);
        }
        aipc__gate_leave(&b->gate);
    }
    if (v->done)
        done_unref(v->done);                 /* the item's reference */
    aipc_buf_release(v->ubuf);                /* a buffer nobody took (NULL: handed over) */
    aipc__bus_shm_release(b, &v->shm);       /* a shared payload: its release is owed now */
    if (v->flow) {
        LONG64 left = InterlockedAdd64(&b->dq_bytes, -(LONG64)v->flow);
        if ((uint64_t)left <= b->o.max_dispatch_bytes / 2 &&
            InterlockedCompareExchange(&b->rpaused, 0, 1) == 1 &&
            InterlockedCompareExchange(&b->resume_posted, 1, 0) == 0) {
            aipc__bus_ref(b);
            if (aipc__loop_gone(b->loop) || !b->loop->eng->post(b->loop, &b->resume_op)) {
                InterlockedExchange(&b->resume_posted, 0);
                aipc__bus_unref(b);
            }
        }
    }
    free(v);
    aipc__bus_unref(b);
}

/* ---- queueing (I/O thread) ----------------------------------------------------------------- */

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* A new item with room for the strings and the payload; NULL (logged) on no memory. */
static bus_ev *ev_new(aipc_bus *b, ev_kind kind, const aipc_bus_peer *peer, const char *s1,
                      const char *s2, const void *data, size_t len)
{
    size_t n1 = slen(s1), n2 = slen(s2), np = peer ? slen(peer->name) : 0;
    size_t ns = peer ? slen(peer->user_sid) : 0;
    size_t extra = n1 + n2 + np + ns + (data ? len + 1 : 0);
    bus_ev *v = malloc(sizeof *v + extra);
    if (!v) {
        aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory for a callback; it is lost", b->pipe_utf8);
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->it.fn = ev_item;
    v->b = b;
    v->kind = kind;
    char *p = v->buf;
    if (s1) { memcpy(p, s1, n1); v->s1 = p; p += n1; }
    if (s2) { memcpy(p, s2, n2); v->s2 = p; p += n2; }
    if (peer) {
        v->peer = *peer;
        v->peer.name = "";
        v->peer.user_sid = "";
        if (peer->name) { memcpy(p, peer->name, np); v->peer.name = p; p += np; }
        if (peer->user_sid) { memcpy(p, peer->user_sid, ns); v->peer.user_sid = p; p += ns; }
    }
    if (data) {
        if (len)
            memcpy(p, data, len);
        p[len] = 0;
        v->data = p;
        v->len = len;
    }
    uint64_t charge = AIPC_DISPATCH_ITEM_OVERHEAD + (uint64_t)extra;
    v->it.charge = charge > UINT32_MAX ? UINT32_MAX : (uint32_t)charge;
    return v;
}

static void ev_push(aipc_bus *b, bus_ev *v)
{
    v->flow = v->it.charge;
    InterlockedAdd64(&b->dq_bytes, (LONG64)v->flow);
    aipc__bus_ref(b);
    aipc__dispatcher_push(b->disp, &v->it);   /* a freed dispatcher drops it (ev_item(.., 0)) */
}

/* Direct delivery on the I/O thread through the gate, or a queued item. */
static void emit(aipc_bus *b, bus_ev *stack, const aipc_bus_peer *peer, const char *s1,
                 const char *s2, const void *data, size_t len)
{
    if ((stack->kind == EV_MESSAGE && b->o.on_message_buf) ||
        (stack->kind == EV_DIRECT && b->o.on_direct_buf)) {
        if (!(stack->ubuf = aipc__bus_buf_received(b, data, len)))
            return;                       /* lost (logged) */
        data = NULL;                      /* the item carries the buffer, not a copy */
    }
    if (!b->disp) {
        if (aipc__gate_enter(&b->gate)) {
            deliver(b, stack);
            aipc__gate_leave(&b->gate);
        }
        aipc_buf_release(stack->ubuf);     /* not delivered (the gate is shut) */
        return;
    }
    /* the shared payload being dispatched: the item keeps the view, not a copy */
    int view = b->rx_cur.rx && data && (const uint8_t *)data == b->rx_cur.data;
    bus_ev *v = ev_new(b, stack->kind, peer, s1, s2, view ? NULL : data, len);
    if (!v) {
        aipc_buf_release(stack->ubuf);
        return;
    }
    if (stack->ubuf) {                     /* counted like the copy it replaces */
        v->ubuf = stack->ubuf;
        uint64_t charge = (uint64_t)v->it.charge + len;
        v->it.charge = charge > UINT32_MAX ? UINT32_MAX : (uint32_t)charge;
    }
    if (view) {
        v->data = data;
        v->len = len;
        v->shm = b->rx_cur;
        b->rx_cur.rx = NULL;
        uint64_t charge = (uint64_t)v->it.charge + len;
        v->it.charge = charge > UINT32_MAX ? UINT32_MAX : (uint32_t)charge;
    }
    v->i = stack->i;
    v->err = stack->err;
    v->u = stack->u;
    ev_push(b, v);
}

void aipc__bus_ev_state(aipc_bus *b, aipc_bus_state s, int err)
{
    if (err) {                            /* aipc_bus_get_error: this failure and its cause */
        InterlockedExchange(&b->fail_win32, (LONG)b->sys_err);
        InterlockedExchange(&b->fail_code, err);
    }
    InterlockedExchange(&b->pub_state, (LONG)s);
    aipc_log(s == AIPC_BUS_CONNECTED ? AIPC_LOG_INFO : AIPC_LOG_WARN, "bus(%s): %s%s%s",
             b->pipe_utf8, aipc_bus_state_name(s), err ? ": " : "", err ? aipc_strerror(err) : "");
    if (!b->o.on_state)
        return;
    bus_ev v = {.kind = EV_STATE, .i = (int)s, .err = err};
    emit(b, &v, NULL, NULL, NULL, NULL, 0);
}

void aipc__bus_ev_error(aipc_bus *b, int err, const char *code, const char *msg)
{
    aipc_log(AIPC_LOG_WARN, "bus(%s): error %s: %s", b->pipe_utf8, code, msg);
    if (!b->o.on_error)
        return;
    bus_ev v = {.kind = EV_ERROR, .i = err, .s1 = code, .s2 = msg};
    emit(b, &v, NULL, code, msg, NULL, 0);
}

void aipc__bus_ev_message(aipc_bus *b, const char *topic, const aipc_bus_peer *from, int retained,
                          const void *data, size_t len)
{
    if (!b->o.on_message && !b->o.on_message_buf)
        return;
    bus_ev v = {.kind = EV_MESSAGE, .i = retained, .s1 = topic, .peer = *from, .data = data,
                .len = len};
    emit(b, &v, from, topic, NULL, data ? data : "", len);
}

void aipc__bus_ev_direct(aipc_bus *b, const aipc_bus_peer *from, const void *data, size_t len)
{
    if (!b->o.on_direct && !b->o.on_direct_buf)
        return;
    bus_ev v = {.kind = EV_DIRECT, .peer = *from, .data = data, .len = len};
    emit(b, &v, from, NULL, NULL, data ? data : "", len);
}

void aipc__bus_ev_request(aipc_bus *b, const aipc_bus_peer *from, uint64_t req_id,
                          const void *data, size_t len)
{
    bus_ev v = {.kind = EV_REQUEST, .u = req_id, .peer = *from, .data = data, .len = len};
    emit(b, &v, from, NULL, NULL, data ? data : "", len);
}

void aipc__bus_ev_presence(aipc_bus *b, int joined, const aipc_bus_peer *who)
{
    if (!b->o.on_presence)
        return;
    bus_ev v = {.kind = EV_PRESENCE, .i = joined, .peer = *who};
    emit(b, &v, who, NULL, NULL, NULL, 0);
}

void aipc__bus_ev_dropped(aipc_bus *b, uint64_t count)
{
    if (!b->o.on_dropped)
        return;
    bus_ev v = {.kind = EV_DROPPED, .u = count};
    emit(b, &v, NULL, NULL, NULL, NULL, 0);
}

/* ---- request completions ------------------------------------------------------------------- */

/* Parks a taken entry's result for the dispatcher and queues its item. Lock held. */
static void park_locked(aipc_bus *b, aipc__bus_pend *e, int status, const aipc_bus_peer *from,
                        const void *data, size_t len, bus_ev **out)
{
    size_t np = from ? slen(from->name) : 0, ns = from ? slen(from->user_sid) : 0;
    bus_done *d = malloc(sizeof *d + np + ns + (data ? len : 0) + 1);
    bus_ev *v = d ? ev_new(b, EV_DONE, NULL, NULL, NULL, NULL, 0) : NULL;
    *out = NULL;
    if (!d || !v) {
        aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory for a completion; request %llu is lost",
                 b->pipe_utf8, (unsigned long long)e->id);
        free(d);
        free(v);
        free(e->desc);
        return;
    }
    memset(d, 0, sizeof *d);
    d->refs = 2;                       /* the list and the item */
    d->e = *e;
    d->status = status;
    char *p = d->buf;
    if (from) {
        d->has_from = 1;
        d->from = *from;
        d->from.name = "";
        d->from.user_sid = "";
        if (from->name) { memcpy(p, from->name, np); d->from.name = p; p += np; }
        if (from->user_sid) { memcpy(p, from->user_sid, ns); d->from.user_sid = p; p += ns; }
    }
    if (data && len)
        memcpy(p, data, len);
    p[data ? len : 0] = 0;
    d->data = data ? (uint8_t *)p : NULL;
    d->len = data ? len : 0;
    d->linked = 1;
    d->prev = b->done_tail;
    if (b->done_tail)
        b->done_tail->next = d;
    else
        b->done_head = d;
    b->done_tail = d;
    v->done = d;
    v->it.charge += (uint32_t)(np + ns + d->len);
    *out = v;
}

/* Takes entries with `take` (under the lock) and completes each with `status`. */
typedef int (*take_fn)(aipc_bus *b, aipc__bus_pend *out, void *arg);

static void complete_taken(aipc_bus *b, take_fn take, void *arg, int status,
                           const aipc_bus_peer *from, const void *data, size_t len)
{
    if (!b->disp) {
        /* entries are taken only inside the gate: after close shut it, they are close's */
        if (!aipc__gate_enter(&b->gate))
            return;
        /* stops as soon as close shut the gate: what is left is close's to complete */
        while (!aipc__gate_is_closed(&b->gate)) {
            aipc__bus_pend e;
            AcquireSRWLockExclusive(&b->lock);
            int got = take(b, &e, arg);
            ReleaseSRWLockExclusive(&b->lock);
            if (got <= 0)
                break;
            if (got == 2)
                free(e.desc);      /* an ack nobody waits for */
            else
                complete(b, &e, status, from, data, len);
        }
        aipc__gate_leave(&b->gate);
        return;
    }
    for (;;) {
        aipc__bus_pend e;
        bus_ev *v = NULL;
        AcquireSRWLockExclusive(&b->lock);
        int got = take(b, &e, arg);
        if (got == 1)
            park_locked(b, &e, status, from, data, len, &v);
        ReleaseSRWLockExclusive(&b->lock);
        if (got <= 0)
            break;
        if (got == 2)
            free(e.desc);
        if (v)
            ev_push(b, v);
    }
}

/* take functions: 1 = complete it, 2 = drop it silently, 0 = no more. Lock held. */
typedef struct answer_arg { uint64_t id; int done, found; } answer_arg;

static int take_answer(aipc_bus *b, aipc__bus_pend *out, void *arg)
{
    answer_arg *a = arg;
    if (a->done)
        return 0;
    a->done = 1;
    a->found = aipc__bus_pending_take(&b->pend, a->id, out);
    return a->found ? 1 : 0;
}

static int take_expired(aipc_bus *b, aipc__bus_pend *out, void *arg)
{
    (void)arg;
    if (!aipc__bus_pending_take_expired(&b->pend, GetTickCount64(), out))
        return 0;
    if (!out->sent) {
        aipc__bus_shm_forget_tag_locked(b, out->id);   /* a shared payload's slot goes too */
        aipc__bus_queue_remove_tag(&b->q, out->id);
    }
    return 1;
}

static int take_sent(aipc_bus *b, aipc__bus_pend *out, void *arg)
{
    int all = *(int *)arg;
    if (!aipc__bus_pending_take_sent(&b->pend, all, out))
        return 0;
    /* an ack nobody waits for: the disconnect itself is reported */
    return out->kind == AIPC_BUS_PEND_ACK ? 2 : 1;
}

int aipc__bus_ev_answer(aipc_bus *b, uint64_t id, int status, const aipc_bus_peer *from,
                        const void *data, size_t len)
{
    answer_arg a = {id, 0, 0};
    complete_taken(b, take_answer, &a, status, from, data, len);
    return a.found;
}

void aipc__bus_ev_expire(aipc_bus *b)
{
    complete_taken(b, take_expired, NULL, AIPC_ETIMEDOUT, NULL, NULL, 0);
}

void aipc__bus_ev_fail_pending(aipc_bus *b, int all, int status)
{
    complete_taken(b, take_sent, &all, status, NULL, NULL, 0);
}

/* ---- flow control, close ------------------------------------------------------------------- */

int aipc__bus_ev_should_pause(aipc_bus *b)
{
    if (!b->disp)
        return 0;
    uint64_t limit = b->o.max_dispatch_bytes;
    if ((uint64_t)InterlockedCompareExchange64(&b->dq_bytes, 0, 0) <= limit)
        return 0;
    InterlockedExchange(&b->rpaused, 1);
    if ((uint64_t)InterlockedCompareExchange64(&b->dq_bytes, 0, 0) <= limit / 2 &&
        InterlockedCompareExchange(&b->rpaused, 0, 1) == 1)
        return 0;
    return 1;
}

int aipc__bus_ev_closed(aipc_bus *b)
{
    return aipc__gate_is_closed(&b->gate);
}

void aipc__bus_ev_final(aipc_bus *b)
{
    aipc__cb_enter();                   /* these are callbacks: nothing nests inside them */
    /* Pending entries first, then the parked ones, in one hold of the lock: an entry moves
     * from `pend` to `done` under the lock, so every one is in exactly one of the two. */
    aipc__bus_pend *left = NULL;
    size_t nleft = 0, cap = 0;
    AcquireSRWLockExclusive(&b->lock);
    for (;;) {
        aipc__bus_pend e;
        if (!aipc__bus_pending_take_sent(&b->pend, 1, &e))
            break;
        if (e.kind == AIPC_BUS_PEND_ACK) {
            free(e.desc);
            continue;
        }
        if (nleft == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            aipc__bus_pend *n = realloc(left, ncap * sizeof *n);
            if (!n) {                  /* cannot keep it: complete it now, under the lock */
                aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory at close", b->pipe_utf8);
                free(e.desc);
                continue;
            }
            left = n;
            cap = ncap;
        }
        left[nleft++] = e;
    }
    bus_done *d = b->done_head;
    for (bus_done *x = d; x; x = x->next)
        x->linked = 0;
    b->done_head = b->done_tail = NULL;
    ReleaseSRWLockExclusive(&b->lock);
    while (d) {                        /* answers that had arrived: delivered as they are */
        bus_done *next = d->next;
        done_deliver(b, d);
        done_unref(d);                 /* the list's reference */
        d = next;
    }
    for (size_t i = 0; i < nleft; i++)
        complete(b, &left[i], AIPC_ECLOSED, NULL, NULL, 0);
    free(left);
    InterlockedExchange(&b->pub_state, AIPC_BUS_CLOSED);
    aipc_log(AIPC_LOG_INFO, "bus(%s): closed", b->pipe_utf8);
    if (b->o.on_state)
        b->o.on_state(b, b->o.user, AIPC_BUS_CLOSED, 0);
    aipc__cb_leave();
}

void aipc__bus_ev_free_done(aipc_bus *b)
{
    bus_done *d = b->done_head;
    b->done_head = b->done_tail = NULL;
    while (d) {
        bus_done *next = d->next;
        d->linked = 0;
        done_unref(d);
        d = next;
    }
}
