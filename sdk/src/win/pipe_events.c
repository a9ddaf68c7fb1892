/*
 * pipe_events.c - the delegate calls of a point-to-point pipe.
 *
 * Without a dispatcher each event calls the delegate at once on the I/O thread. With one, the
 * event becomes an item (arguments copied, a pipe reference held) that the dispatcher's thread
 * delivers in order. Either way the call passes the pipe's gate, so nothing is called after
 * Exit returns (or, from inside a callback, after that callback).
 * Flow control with a dispatcher: events queued (dq_bytes: received payloads, connects and
 * disconnects, each with its overhead) above the bound pause the read side and a server's next
 * listen; the dispatcher's thread posts the resume task once they are down to half of it.
 * OnSend items count in `unreported`, which aipc_pipe_send adds to its queue bound.
 * Threads: the ev_* entry points run on the I/O thread; ev_item runs on the dispatcher's thread.
 */
#include "pipe_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum { EV_CREATE, EV_CONNECTED, EV_DISCONNECTED, EV_RECV, EV_SENT } ev_kind;

typedef struct pipe_ev {
    aipc__dq_item it;         /* first */
    aipc__pipe *p;            /* referenced */
    ev_kind kind;
    int ok;
    uint32_t n;              /* EV_RECV: payload bytes; EV_SENT: count of sizes */
    uint64_t flow;           /* bytes added to dq_bytes (EV_RECV) or unreported (EV_SENT) */
    union {
        uint8_t data[1];     /* EV_RECV: n bytes + NUL */
        uint32_t sizes[1];   /* EV_SENT */
    } u;
} pipe_ev;

uint64_t aipc__pipe_dispatch_limit(const aipc__pipe *p)
{
    if (p->max_dispatch)
        return p->max_dispatch;
    uint64_t one = (uint64_t)p->max_msg + AIPC_DISPATCH_ITEM_OVERHEAD;
    return one > AIPC_DEFAULT_MAX_DISPATCH ? one : AIPC_DEFAULT_MAX_DISPATCH;
}

/* ---- the classic delegate on the versioned events ---------------------------------------- */
/* Each reads the delegate's member at the call (a classic delegate may change its members). */
static void classic_create(aipc_named_pipe *pipe, void *user, bool ok)
{
    aipc_pipe_delegate *d = user;
    (void)pipe;
    if (d->OnCreate)
        d->OnCreate(d, ok);
}

static void classic_connected(aipc_named_pipe *pipe, void *user, bool ok)
{
    aipc_pipe_delegate *d = user;
    (void)pipe;
    if (d->OnConnected)
        d->OnConnected(d, ok);
}

static void classic_send(aipc_named_pipe *pipe, void *user, size_t size)
{
    aipc_pipe_delegate *d = user;
    (void)pipe;
    if (d->OnSend)
        d->OnSend(d, (int)size);         /* size <= AIPC_MAX_MESSAGE_LIMIT */
}

static void classic_recv(aipc_named_pipe *pipe, void *user, const void *data, size_t size)
{
    aipc_pipe_delegate *d = user;
    (void)pipe;
    if (d->OnRecv)
        d->OnRecv(d, (void *)data, (int)size);  /* the classic signature: our writable copy */
}

static void classic_disconnected(aipc_named_pipe *pipe, void *user)
{
    aipc_pipe_delegate *d = user;
    (void)pipe;
    if (d->OnDisconnected)
        d->OnDisconnected(d);
}

void aipc__pipe_events_classic(aipc_pipe_delegate *d, aipc_pipe_events *out, int *want_sent)
{
    memset(out, 0, sizeof *out);
    out->size = (uint32_t)sizeof *out;
    *want_sent = d && d->OnSend;
    if (!d)
        return;
    out->user = d;
    out->on_create = classic_create;
    out->on_connected = classic_connected;
    out->on_send = classic_send;
    out->on_recv = classic_recv;
    out->on_disconnected = classic_disconnected;
}

int aipc__pipe_events_copy(const aipc_pipe_events *events, aipc_pipe_events *out)
{
    if (!events || events->size < AIPC_PIPE_EVENTS_MIN_SIZE)
        return AIPC_EINVAL;
    memset(out, 0, sizeof *out);
    memcpy(out, events, events->size < sizeof *out ? events->size : sizeof *out);
    out->size = (uint32_t)sizeof *out;
    /* A member cut by the caller's size is not one it has. */
#define AIPC_EV_KEEP(m) \
    if (events->size < offsetof(aipc_pipe_events, m) + sizeof out->m) \
        out->m = NULL;
    AIPC_EV_KEEP(on_create)
    AIPC_EV_KEEP(on_connected)
    AIPC_EV_KEEP(on_send)
    AIPC_EV_KEEP(on_recv)
    AIPC_EV_KEEP(on_disconnected)
#undef AIPC_EV_KEEP
    return 0;
}

/* Calls the events for one event, through the gate. Any thread. */
static void deliver(aipc__pipe *p, ev_kind kind, int ok, uint8_t *data, uint32_t n,
                    const uint32_t *sizes)
{
    const aipc_pipe_events *ev = &p->ev;
    aipc_named_pipe *pub = &p->pub;
    if (!aipc__gate_enter(&p->gate))
        return;
    switch (kind) {
    case EV_CREATE:
        if (ev->on_create)
            ev->on_create(pub, ev->user, ok != 0);
        break;
    case EV_CONNECTED:
        if (ev->on_connected)
            ev->on_connected(pub, ev->user, ok != 0);
        break;
    case EV_DISCONNECTED:
        if (ev->on_disconnected)
            ev->on_disconnected(pub, ev->user);
        break;
    case EV_RECV:
        if (ev->on_recv && n == 0) {
            char empty[1] = {0};             /* the decoder may hand a read-only "" */
            ev->on_recv(pub, ev->user, empty, 0);
        } else if (ev->on_recv && data[n] == 0) {
            ev->on_recv(pub, ev->user, data, n);   /* no write: a shared message's view page
                                                      would become a private copy */
        } else if (ev->on_recv) {
            uint8_t saved = data[n];
            data[n] = 0;
            ev->on_recv(pub, ev->user, data, n);
            data[n] = saved;
        }
        break;
    case EV_SENT:
        /* Exit inside an OnSend shuts the gate: the rest of the batch is not reported. */
        for (uint32_t i = 0; i < n && !aipc__gate_is_closed(&p->gate) && ev->on_send; i++)
            ev->on_send(pub, ev->user, sizes[i]);
        break;
    }
    aipc__gate_leave(&p->gate);
}

void aipc__pipe_dq_done(aipc__pipe *p, uint64_t flow)
{
    LONG64 left = InterlockedAdd64(&p->dq_bytes, -(LONG64)flow);
    if ((uint64_t)left <= aipc__pipe_dispatch_limit(p) / 2 &&
        InterlockedCompareExchange(&p->rpaused, 0, 1) == 1 &&
        InterlockedCompareExchange(&p->resume_posted, 1, 0) == 0) {
        aipc__pipe_ref(p);
        if (aipc__loop_gone(p->loop) || !p->eng->post(p->loop, &p->resume)) {
            InterlockedExchange(&p->resume_posted, 0);
            aipc__pipe_unref(p);
        }
    }
}

/* Dispatcher's thread: deliver (run) or drop, then release the item and its accounting. */
static void ev_item(aipc__dq_item *it, int run)
{
    pipe_ev *e = (pipe_ev *)it;
    aipc__pipe *p = e->p;
    if (run)
        deliver(p, e->kind, e->ok, e->u.data, e->n, e->u.sizes);
    if (e->kind != EV_SENT) {
        aipc__pipe_dq_done(p, e->flow);
    } else {
        InterlockedAdd64(&p->unreported, -(LONG64)e->flow);
    }
    free(e);
    aipc__pipe_unref(p);
}

/* Queues an event for the dispatcher (I/O thread). `extra` bytes follow the header. */
static pipe_ev *ev_new(aipc__pipe *p, ev_kind kind, size_t extra)
{
    size_t sz = offsetof(pipe_ev, u) + extra;
    pipe_ev *e = malloc(sz > sizeof(pipe_ev) ? sz : sizeof(pipe_ev));
    if (!e) {
        aipc_log(AIPC_LOG_ERROR, "pipe %s: out of memory for a callback; it is lost",
                 p->name_utf8 ? p->name_utf8 : "?");
        return NULL;
    }
    e->it.fn = ev_item;
    e->it.charge = (uint32_t)(AIPC_DISPATCH_ITEM_OVERHEAD + (extra > UINT32_MAX / 2 ? UINT32_MAX / 2 : extra));
    e->p = p;
    e->kind = kind;
    e->ok = 0;
    e->n = 0;
    e->flow = 0;
    return e;
}

static void ev_push(aipc__pipe *p, pipe_ev *e)
{
    if (e->kind != EV_SENT) {             /* every received event counts toward the bound */
        e->flow = e->it.charge;
        InterlockedAdd64(&p->dq_bytes, (LONG64)e->flow);
    }
    aipc__pipe_ref(p);
    aipc__dispatcher_push(p->disp, &e->it);   /* a freed dispatcher drops it (ev_item(.., 0)) */
}

static void simple(aipc__pipe *p, ev_kind kind, int ok)
{
    if (!p->disp) {
        deliver(p, kind, ok, NULL, 0, NULL);
        return;
    }
    pipe_ev *e = ev_new(p, kind, 0);
    if (!e)
        return;
    e->ok = ok;
    ev_push(p, e);
}

void aipc__pipe_ev_create(aipc__pipe *p, bool ok)
{
    simple(p, EV_CREATE, ok);
}

void aipc__pipe_ev_connected(aipc__pipe *p, bool ok)
{
    simple(p, EV_CONNECTED, ok);
}

void aipc__pipe_ev_disconnected(aipc__pipe *p)
{
    simple(p, EV_DISCONNECTED, 0);
}

void aipc__pipe_ev_recv(aipc__pipe *p, uint8_t *data, uint32_t size)
{
    if (p->recv_ref) {
        aipc__pipe_ev_recv_ref(p, data, size, NULL, 0, 0, 0);   /* a heap copy (pipe_buf.c) */
        return;
    }
    if (!p->disp) {
        deliver(p, EV_RECV, 0, data, size, NULL);
        return;
    }
    pipe_ev *e = ev_new(p, EV_RECV, (size_t)size + 1);
    if (!e)
        return;
    memcpy(e->u.data, data, size);
    e->u.data[size] = 0;
    e->n = size;
    ev_push(p, e);
}

/* I/O thread. A shared payload reaches the classic OnRecv as a private copy, like an inline
 * one: OnRecv's data is writable by contract, and the view is read-only (a copy-on-write view
 * would keep a page a callback wrote into as a private copy for good, hiding later payloads in
 * it, and Wine cannot tell which pages were written). The slot goes back to the peer at once. */
void aipc__pipe_ev_recv_shm(aipc__pipe *p, uint8_t *data, uint32_t size, aipc__shm_rx *rx,
                            uint32_t seg, uint32_t off)
{
    uint32_t gen = p->shm.gen;           /* changes only on this thread (the reset) */
    aipc__shm_rx_hold(rx);
    if (p->recv_ref) {                   /* in place: the buffer keeps the hold (pipe_buf.c) */
        aipc__pipe_ev_recv_ref(p, data, size, rx, gen, seg, off);
        return;
    }
    if (p->disp) {
        aipc__pipe_ev_recv(p, data, size);   /* copied into the queued item */
    } else {
        aipc__shm_link *L = &p->shm;
        if (L->rcopy_cap < (size_t)size + 1) {
            uint8_t *n = malloc((size_t)size + 1);
            if (n) {
                free(L->rcopy);
                L->rcopy = n;
                L->rcopy_cap = (size_t)size + 1;
            }
        }
        if (L->rcopy_cap >= (size_t)size + 1) {
            memcpy(L->rcopy, data, size);
            L->rcopy[size] = 0;
            deliver(p, EV_RECV, 0, L->rcopy, size, NULL);
        } else {
            aipc_log(AIPC_LOG_ERROR, "pipe: out of memory copying a shared message of %lu bytes: "
                     "lost", (unsigned long)size);
        }
    }
    if (aipc__shm_link_release(&p->shm, rx, gen, seg, off))
        aipc__pipe_poke(p);
}

void aipc__pipe_ev_sent(aipc__pipe *p, const uint32_t *sizes, size_t count)
{
    if (count == 0)
        return;
    if (!p->disp) {
        deliver(p, EV_SENT, 0, NULL, (uint32_t)count, sizes);
        return;
    }
    if (!p->want_sent)                    /* the delegate itself is read only in the gate */
        return;
    pipe_ev *e = ev_new(p, EV_SENT, count * sizeof(uint32_t));
    if (!e)
        return;
    memcpy(e->u.sizes, sizes, count * sizeof(uint32_t));
    e->n = (uint32_t)count;
    for (size_t i = 0; i < count; i++)
        e->flow += (uint64_t)sizes[i] + AIPC_HDR_SIZE;
    InterlockedAdd64(&p->unreported, (LONG64)e->flow);
    ev_push(p, e);
}

int aipc__pipe_ev_should_pause(aipc__pipe *p)
{
    if (!p->disp)
        return 0;
    uint64_t limit = aipc__pipe_dispatch_limit(p);
    if ((uint64_t)InterlockedCompareExchange64(&p->dq_bytes, 0, 0) <= limit)
        return 0;
    InterlockedExchange(&p->rpaused, 1);
    /* The dispatcher may have drained in between without seeing the flag: look again. */
    if ((uint64_t)InterlockedCompareExchange64(&p->dq_bytes, 0, 0) <= limit / 2 &&
        InterlockedCompareExchange(&p->rpaused, 0, 1) == 1)
        return 0;
    return 1;
}
