/* timers.c - the core's sense of time: aipc_broker_tick runs what is due on the broker's clock
 * (the engine's now_ms, a fake clock in tests) and says when it wants to run next.
 *   hello_q  connections that have not said hello: hello_timeout_ms after attach they get
 *            error hello_timeout and are closed (D-Bus auth_timeout).
 *   req_q    pending requests: request_timeout_ms after forwarding the requester gets error
 *            timeout (D-Bus reply_timeout).
 *   frame_q  connections with a partly received frame: frame_timeout_ms after its last byte
 *            they get error frame_timeout and are closed (partial.c).
 *   linger_q connections the broker closes: close_linger_ms after the close request, one whose
 *            output has not drained (its client does not read) is aborted, its name freed at
 *            once.
 * Every tick first drains the clients' release pages (shm_rel.c).
 * Besides deadlines, each tick runs a slice of the retained deliveries in progress
 * (retained.c) and asks to be called again at once while one can go on. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>

#define RET_TICK_BUDGET 4096u   /* retained entries looked at per tick, all cursors together */

uint64_t aipc__now(const aipc_broker *b)
{
    return b->now_ms();
}

/* Milliseconds from now until a queue's head is due (UINT64_MAX: empty). */
static uint64_t until(const aipc_dq *q, uint64_t now)
{
    if (!q->head)
        return UINT64_MAX;
    return q->head->due > now ? q->head->due - now : 0;
}

/* A connection that did not say hello in time. */
static void hello_expired(aipc_broker *b, aipc_client *c)
{
    aipc_dq_remove(&b->hello_q, &c->t_hello);
    b->st.hello_timeouts++;
    aipc__logf(b, AIPC_LOG_INFO, "closing the connection of pid %u: no hello within %u ms",
              c->pid, b->cfg.hello_timeout_ms);
    aipc__send_error(c, false, 0, "hello_timeout", "no hello within the broker's hello_timeout_ms");
    aipc__request_close(c);
}

/* A close that did not drain in time: the engine drops the rest and detaches the client. */
static void linger_expired(aipc_broker *b, aipc_client *c)
{
    aipc_dq_remove(&b->linger_q, &c->t_linger);
    b->st.linger_aborts++;
    aipc__logf(b, AIPC_LOG_INFO,
              "client %" PRIu64 " (pid %u) did not read its last %" PRIu64 " bytes within %u ms: "
              "cutting it off", c->id, c->pid, aipc_client_out_pending(c), b->cfg.close_linger_ms);
    aipc_registry_remove(b, c);         /* its name is free for a successor right away */
    if (c->conn->ops && c->conn->ops->abort)
        c->conn->ops->abort(c->conn);
}

uint64_t aipc_broker_tick(aipc_broker *b)
{
    uint64_t now = aipc__now(b);
    aipc_dnode *n;
    if (now >= b->shm_sweep_at)         /* release pages before the sweep: idle segments may */
        aipc_shm_rel_drain_all(b);      /* then retire. Not every tick: the engine ticks after
                                         * every completion, and this walks every client (review
                                         * rprv MAJOR-1); every decision that depends on a
                                         * client's charge drains that client itself. */
    while ((n = aipc_dq_due(&b->hello_q, now)))
        hello_expired(b, AIPC_CONTAINER(n, aipc_client, t_hello));
    while ((n = aipc_dq_due(&b->req_q, now)))
        aipc_reqs_expire(b, AIPC_CONTAINER(n, aipc_req, t_due));
    while ((n = aipc_dq_due(&b->frame_q, now)))
        aipc_partial_expire(b, AIPC_CONTAINER(n, aipc_client, t_frame));
    while ((n = aipc_dq_due(&b->linger_q, now)))
        linger_expired(b, AIPC_CONTAINER(n, aipc_client, t_linger));
    uint64_t shm_next = aipc_shm_pools_tick(b, now);
    uint64_t blk_next = aipc_blk_tick(b, now);
    if (blk_next < shm_next)
        shm_next = blk_next;
    if (b->cursors && aipc_retained_run(b, RET_TICK_BUDGET))
        return 0;
    uint64_t next = until(&b->hello_q, now);
    if (shm_next < next)
        next = shm_next;
    const aipc_dq *more[] = {&b->req_q, &b->frame_q, &b->linger_q};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        uint64_t t = until(more[i], now);
        if (t < next)
            next = t;
    }
    return next;
}
