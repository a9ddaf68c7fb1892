/* partial.c - frames a client has sent in part. The decoder's assembly buffer grows with the
 * bytes that arrive (not with the size the header declares); its allocation is charged here:
 *   - in total, all clients' partial frames may hold max_incomplete_bytes (D-Bus's
 *     max_incomplete_message_bytes; each client is further bounded by the frame limits): the
 *     client whose frame would take the total over gets error incomplete_full and is closed,
 *     its buffer freed at once;
 *   - a partial frame that gets no byte for frame_timeout_ms closes its connection (error
 *     frame_timeout), so a stalled sender cannot hold its buffer forever.
 * A buffer the engine may be reading into (aipc_client_read_direct handed it out and no
 * commit or input followed) is never freed here: it goes at detach. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>

/* Brings c's charge in line with its decoder's buffer. */
static void charge(aipc_broker *b, aipc_client *c)
{
    uint64_t now_charge = c->dec.body ? (uint64_t)c->dec.body_cap : 0;
    b->incomplete_bytes = b->incomplete_bytes - c->partial_charge + now_charge;
    c->partial_charge = now_charge;
}

/* Frees c's partial frame when the engine is not reading into it (closing connections). */
static void drop(aipc_broker *b, aipc_client *c)
{
    aipc_dq_remove(&b->frame_q, &c->t_frame);
    if (!c->direct_out) {
        aipc_decoder_free(&c->dec);
        charge(b, c);
    }
}

/* After bytes of c were decoded (input, direct read, commit): charge its buffer, restart its
 * stall timer while a frame is partial, refuse it when the total goes over the bound. */
void aipc_partial_after_input(aipc_broker *b, aipc_client *c)
{
    charge(b, c);
    if (c->state == AIPC_CL_CLOSING) {
        drop(b, c);                     /* its input is ignored from now on */
        return;
    }
    if (aipc_decoder_partial(&c->dec))
        aipc_dq_push(&b->frame_q, &c->t_frame, aipc__now(b) + b->cfg.frame_timeout_ms);
    else
        aipc_dq_remove(&b->frame_q, &c->t_frame);
    if (b->incomplete_bytes <= b->cfg.max_incomplete_bytes)
        return;
    b->st.incomplete_refused++;
    aipc__logf(b, AIPC_LOG_WARN,
              "client %" PRIu64 " (pid %u): incomplete frames would hold %" PRIu64
              " bytes (max_incomplete_bytes %" PRIu64 "): closing it",
              c->id, c->pid, b->incomplete_bytes, b->cfg.max_incomplete_bytes);
    aipc__send_error(c, false, 0, "incomplete_full",
                    "the broker holds max_incomplete_bytes of partially received frames");
    aipc__request_close(c);              /* frees the buffer unless the engine reads into it */
}

/* No byte of c's partial frame for frame_timeout_ms. */
void aipc_partial_expire(aipc_broker *b, aipc_client *c)
{
    b->st.frame_timeouts++;
    aipc__logf(b, AIPC_LOG_INFO,
              "client %" PRIu64 " (pid %u): a frame stalled for %u ms: closing it", c->id,
              c->pid, b->cfg.frame_timeout_ms);
    aipc__send_error(c, false, 0, "frame_timeout",
                    "a partly sent frame got no byte for the broker's frame_timeout_ms");
    aipc__request_close(c);
}

/* A close was requested for c: its partial frame will never complete. Freed now unless the
 * decoder is running (in input: freed when it returns) or the engine may read into it. */
void aipc_partial_closing(aipc_broker *b, aipc_client *c)
{
    aipc_dq_remove(&b->frame_q, &c->t_frame);
    if (!c->in_input)
        drop(b, c);
}

/* The client is going (detach, broker teardown): forget its charge and timer. */
void aipc_partial_release(aipc_broker *b, aipc_client *c)
{
    aipc_dq_remove(&b->frame_q, &c->t_frame);
    b->incomplete_bytes -= c->partial_charge;
    c->partial_charge = 0;
    aipc_blk_release(b, c);             /* its loans end (blkcache.c) */
}
