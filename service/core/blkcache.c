/* blkcache.c - large frame blocks recycled (issue 13 item 2: the broker's 1 MiB forward path).
 *
 * A large publication is assembled in a decoder block that its outgoing frame adopts
 * (outframe.c). When the last queue lets go of that frame, the block comes here instead of
 * back to the frame allocator (at most AIPC_BLK_KEEP blocks of AIPC_BLK_MIN bytes or more,
 * AIPC_BLK_BYTES in all), and it is lent to the next client whose input starts a frame of
 * about its size: the decoder assembles that frame in it (its spare, proto/frame.c) and the
 * engine reads the frame's whole rest into it in one direct read. Without it every 1 MiB
 * publication was read in six growing pieces, moved by four reallocs, and mapped afresh
 * (~380 page faults under Wine). After a large frame, the next read of that client may go
 * straight into a cached block, or a new one of that size when none is cached (aipc_blk_land,
 * a "landing"): a frame of the same size is then read whole in one ReadFile, header included
 * (proto/frame.c aipc_decoder_land).
 *
 * Limits (docs/protocol.md sections 1 and 8):
 *   - a block is lent only when it is close to the frame's size (AIPC_BLK_SLACK: at most
 *     full / 8 over it), so a queued frame that adopted it holds at most 1/8 more than the
 *     frame's own layout, which is what max_queue_bytes and max_total_queue_bytes charge;
 *   - only to a client past hello, only once its input carries AIPC_BLK_ARRIVED bytes of the
 *     frame's body (not for a header alone), and at most AIPC_BLK_MAX blocks, AIPC_BLK_BYTES
 *     together, are lent at once broker-wide (b->nlent, b->lent_bytes);
 *   - a lent block is charged to max_incomplete_bytes like any partial frame's buffer (its
 *     whole size, from the moment the frame starts in it), and it is lent only when that charge
 *     fits the bound, so the borrower is never refused where the growing buffer would have
 *     served it. Other clients can find at most AIPC_BLK_BYTES more of the bound taken than
 *     the growing buffers would take (the loans' cap), however many clients stall.
 *   - memory that is not yet there is never allocated for a declared size (the block exists
 *     already); the cache itself holds at most AIPC_BLK_BYTES.
 * A block unused for AIPC_BLK_IDLE_MS goes back to the allocator (aipc_blk_tick), the rest at
 * aipc_broker_free. Everything here runs on the core's thread. */
#include "internal.h"

#include <string.h>

/* Gives block p (usable size cap, from b->fa) to the cache; false: the caller frees it. */
bool aipc_blk_put(aipc_broker *b, void *p, size_t cap)
{
    if (cap < AIPC_BLK_MIN || b->nblk == AIPC_BLK_KEEP || b->blk_bytes + cap > AIPC_BLK_BYTES)
        return false;
    b->blk[b->nblk++] = (aipc_blk){p, cap, aipc__now(b)};
    b->blk_bytes += cap;
    return true;
}

/* Removes block i from the cache (order does not matter). */
static void take(aipc_broker *b, uint32_t i)
{
    b->blk_bytes -= b->blk[i].cap;
    b->blk[i] = b->blk[--b->nblk];
}

/* The usable size of the frame that this input will leave partial at its end, or 0: none,
 * its header is split, or it breaks a limit. Frames after the one the decoder is in the middle
 * of count too: a read that ends one frame and starts the next is the usual case once reads
 * and frames fell out of step. */
static uint64_t partial_size(const aipc_decoder *d, const uint8_t *data, size_t len,
                             uint64_t *arrived)
{
    size_t pos = 0;
    if (d->hdr_have && !d->body)
        return 0;                               /* a header split across reads */
    if (d->body) {
        uint64_t missing = d->body_need - d->body_have;
        if (missing >= len)
            return 0;                           /* no frame starts in this input */
        pos = (size_t)missing;
    }
    while (len - pos >= AIPC_HDR_SIZE) {
        uint32_t ml, pl;
        aipc_frame_get_header(data + pos, &ml, &pl);
        if (ml > d->max_meta || pl > d->max_payload)
            return 0;
        uint64_t body = (uint64_t)ml + pl;
        if (body > len - pos - AIPC_HDR_SIZE) {
            *arrived = len - pos - AIPC_HDR_SIZE;
            return body + 2 + d->adopt_gap;     /* proto/frame.c begin_body's "full" */
        }
        pos += AIPC_HDR_SIZE + (size_t)body;
    }
    return 0;
}

/* Ends c's loan i (routed, reclaimed, not landed on or the client is going). */
static void unlend(aipc_broker *b, aipc_client *c, int i)
{
    b->nlent--;
    b->lent_bytes -= c->lent[i].cap;
    c->lent[i].p = NULL;
}

/* The smallest cached block of full..full + AIPC_BLK_SLACK bytes, or UINT32_MAX. */
static uint32_t best_fit(const aipc_broker *b, uint64_t full)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < b->nblk; i++) {
        size_t cap = b->blk[i].cap;
        if (cap >= full && cap - full <= AIPC_BLK_SLACK(full) &&
            (best == UINT32_MAX || cap < b->blk[best].cap))
            best = i;
    }
    return best;
}

/* Before c's input is decoded: lends the smallest cached block of full..full + AIPC_BLK_SLACK
 * bytes for the frame left partial by this input (begin_body takes it as its spare). The
 * engine then reads that frame's whole rest into it (aipc_decoder_direct offers the room). */
void aipc_blk_lend(aipc_broker *b, aipc_client *c, const uint8_t *data, size_t len)
{
    aipc_decoder *d = &c->dec;
    if (!b->nblk || d->spare || d->keep_max || d->error || c->state != AIPC_CL_READY ||
        b->nlent >= AIPC_BLK_MAX)
        return;
    int slot = !c->lent[0].p ? 0 : !c->lent[1].p ? 1 : -1;
    if (slot < 0)
        return;
    uint64_t arrived = 0;
    uint64_t full = partial_size(d, data, len, &arrived);
    if (full < AIPC_BLK_MIN || arrived < AIPC_BLK_ARRIVED)
        return;
    uint32_t best = best_fit(b, full);
    if (best == UINT32_MAX || b->lent_bytes + b->blk[best].cap > AIPC_BLK_BYTES ||
        b->incomplete_bytes + b->blk[best].cap > b->cfg.max_incomplete_bytes)
        return;
    c->lent[slot] = b->blk[best];
    b->nlent++;
    b->lent_bytes += b->blk[best].cap;
    d->spare = b->blk[best].p;
    d->spare_cap = b->blk[best].cap;
    take(b, best);
}


/* Whole-frame reads (aipc_decoder_land): at a frame boundary of a client whose last frame was
 * large (c->land_wire), lends the smallest cached block that would have been lent for a frame
 * of that size (none cached: a new block of exactly that size) to the engine's next read, which asks for exactly that many bytes: a publisher
 * sending frames of one size then gets each one read whole, in one ReadFile and without the
 * 64 KiB head going through the read buffer (the head read used to wait for the publisher and
 * the rest followed in a second read). The same limits as aipc_blk_lend: past hello, at most
 * AIPC_BLK_MAX blocks and AIPC_BLK_BYTES lent at once; the landing counts as a loan from now on.
 * Nothing is charged to max_incomplete_bytes while no byte is there: aipc_client_read_commit
 * lets the decoder keep the block for a frame that is still partial only with
 * AIPC_BLK_ARRIVED bytes of its body in hand and when its whole size fits the bound, else the
 * bytes are decoded as input (copied) and the block comes back here. A landing of a client that
 * sends nothing more stays lent until its read completes or the client goes: at most
 * AIPC_BLK_LAND_MAX such blocks broker-wide, so a quiet client never takes the last loan from
 * the others. Returns where the engine reads (*want bytes), or NULL. */
uint8_t *aipc_blk_land(aipc_broker *b, aipc_client *c, size_t *want)
{
    aipc_decoder *d = &c->dec;
    size_t off = aipc_decoder_land_offset(d);
    if (c->landing) {                       /* asked again before its read completed */
        *want = (size_t)c->land_wire;
        return c->landing + off;
    }
    if (!c->land_wire || off == SIZE_MAX || d->spare || d->keep_max || d->error ||
        aipc_decoder_partial(d) || c->state != AIPC_CL_READY || b->nlent >= AIPC_BLK_MAX ||
        b->nland >= AIPC_BLK_LAND_MAX)
        return NULL;
    int slot = !c->lent[0].p ? 0 : !c->lent[1].p ? 1 : -1;
    if (slot < 0)
        return NULL;
    uint64_t full = c->land_wire - AIPC_HDR_SIZE + 2 + d->adopt_gap;
    uint32_t best = best_fit(b, full);
    /* None cached (every block still queued or being written: a publisher ahead of its
     * subscribers): a new block of the last frame's size, within the same bounds, so the frame
     * is still read whole. Else it would take a 64 KiB head read and growing reads of the rest
     * (ending in a block of this size anyway), and under Wine only a read of exactly one whole
     * queued write is free of a copy in the wineserver. */
    aipc_blk blk = best != UINT32_MAX ? b->blk[best] : (aipc_blk){NULL, (size_t)full, 0};
    if (full > AIPC_BLK_BYTES || b->lent_bytes + blk.cap > AIPC_BLK_BYTES)
        return NULL;
    if (!blk.p && !(blk.p = b->fa.alloc(b->fa.ctx, blk.cap)))
        return NULL;
    c->lent[slot] = blk;
    b->nlent++;
    b->lent_bytes += blk.cap;
    c->landing = blk.p;
    c->landing_cap = blk.cap;
    b->nland++;
    if (best != UINT32_MAX)
        take(b, best);
    *want = (size_t)c->land_wire;
    return c->landing + off;
}

/* c's landing (NULL: none), no longer c's: its read completed or will not use it. The block
 * stays lent (in c->lent) until aipc_blk_unland or the decoder's frame ends the loan. */
uint8_t *aipc_blk_land_take(aipc_broker *b, aipc_client *c)
{
    uint8_t *l = c->landing;
    if (l) {
        c->landing = NULL;
        b->nland--;
    }
    return l;
}

/* A landing the decoder did not take (or a closing client's): its loan ends (unless routing an
 * in-place frame that lay in it ended it already) and the block goes back to the cache. */
void aipc_blk_unland(aipc_broker *b, aipc_client *c, uint8_t *blk, size_t cap)
{
    for (int i = 0; i < 2; i++)
        if (c->lent[i].p == blk)
            unlend(b, c, i);
    if (!aipc_blk_put(b, blk, cap))
        b->fa.free(b->fa.ctx, blk);
}

/* After c's input was decoded: a lent block the decoder did not take comes back (a broker
 * decoder has a spare only while lent: keep_max is 0; a closed client's decoder freed it). */
void aipc_blk_reclaim(aipc_broker *b, aipc_client *c)
{
    aipc_decoder *d = &c->dec;
    if (!d->spare || d->keep_max)
        return;
    void *p = d->spare;
    size_t cap = d->spare_cap;
    d->spare = NULL;
    d->spare_cap = 0;
    for (int i = 0; i < 2; i++)
        if (c->lent[i].p == p)
            unlend(b, c, i);
    if (!aipc_blk_put(b, p, cap))
        b->fa.free(b->fa.ctx, p);
}

/* The size of c's lent block p (0: p is not one). A lent block is live until its frame is
 * routed, so no other block can have its address meanwhile. */
size_t aipc_blk_lent_cap(const aipc_client *c, const void *p)
{
    for (int i = 0; i < 2; i++)
        if (p && c->lent[i].p == p)
            return c->lent[i].cap;
    return 0;
}

/* After one of c's frames was routed: forgets the loan it was assembled in, if any (the block
 * is the frame's now, or freed: its address may come back for another block). */
void aipc_blk_routed(aipc_broker *b, aipc_client *c, const uint8_t *payload)
{
    uintptr_t at = (uintptr_t)payload;
    for (int i = 0; i < 2; i++) {
        uintptr_t p = (uintptr_t)c->lent[i].p;
        if (p && at > p && at < p + c->lent[i].cap)
            unlend(b, c, i);
    }
}

/* c is going (detach, teardown): its loans end (a block its decoder still had was freed by
 * the decoder or at detach; a closing client's entries were left until now). */
void aipc_blk_release(aipc_broker *b, aipc_client *c)
{
    for (int i = 0; i < 2; i++)
        if (c->lent[i].p)
            unlend(b, c, i);
    uint8_t *l = aipc_blk_land_take(b, c);
    if (l)                              /* its read never completed (every I/O is over now) */
        b->fa.free(b->fa.ctx, l);
}

/* Frees the blocks idle for AIPC_BLK_IDLE_MS; ms until the next one is due (UINT64_MAX: none). */
uint64_t aipc_blk_tick(aipc_broker *b, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < b->nblk;) {
        uint64_t due = b->blk[i].at + AIPC_BLK_IDLE_MS;
        if (due <= now) {
            b->fa.free(b->fa.ctx, b->blk[i].p);
            take(b, i);
            continue;
        }
        if (due - now < next)
            next = due - now;
        i++;
    }
    return next;
}

/* Frees every cached block (aipc_broker_free, after the last frame went). */
void aipc_blk_free_all(aipc_broker *b)
{
    while (b->nblk) {
        b->fa.free(b->fa.ctx, b->blk[b->nblk - 1].p);
        take(b, b->nblk - 1);
    }
}
