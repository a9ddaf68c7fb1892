/*
 * pipe_io.c - a connected pipe's side of its connection (win_conn.c does the I/O): the decoder
 * that gets what is read, the send batches that are its output source.
 *
 * Reads: one read is always pending while connected, into a 256 KiB buffer (many frames per
 * read) or, for the rest of a large frame, straight into the decoder's frame buffer
 * (aipc_decoder_direct/commit). Every whole frame becomes one OnRecv.
 * A stream of large frames reads each one whole into a block kept from the previous one
 * (decoder keep_max), so a 1 MiB message costs about two reads and no allocation.
 * Writes: Send appends frames to the pending batch under the pipe lock; the holder of the
 * "writer token" (wbusy: a write in flight or a flush task queued) kicks the connection, whose
 * out_next swaps the pending batch with the empty in-flight one; the connection writes it in
 * pieces of AIPC_WRITE_PIECE bytes (one WriteFile each) and out_done reports OnSend for the
 * messages a piece finished as it completes.
 * With a dispatcher, reading pauses while the received messages queued for it exceed the
 * pipe's dispatch bound; the dispatcher's thread posts `resume` when they have drained.
 * Thread: the engine's I/O thread.
 */
#include "pipe_internal.h"

static void start_write(aipc__pipe *p);

/* ---- read side: the connection's input (win_conn.c) -------------------------------------------- */

/* One whole frame from the decoder: a message (meta_len 0), or a control frame (pipe_ctl.c). */
static int on_frame(void *ctx, const uint8_t *meta, uint32_t meta_len, const uint8_t *payload,
                    uint32_t payload_len)
{
    aipc__pipe *p = ctx;
    if (meta_len != 0) {
        int rc = aipc__pipe_ctl_frame(p, meta, meta_len, payload, payload_len);
        return rc ? rc : p->state == AIPC_ST_CONNECTED ? 0 : 1;
    }
    aipc__pipe_ctl_plain(p);
    if (p->closed)
        return 1;
    /* The byte after the payload is ours (read buffer has a spare byte; assembled frames end
     * with a NUL), so the callee may NUL-terminate in place. */
    aipc__pipe_ev_recv(p, (uint8_t *)payload, payload_len);
    return p->state == AIPC_ST_CONNECTED ? 0 : 1;   /* stop if Exit ran inside OnRecv */
}

static uint8_t *io_read_direct(aipc__conn *c, size_t *want)
{
    aipc__pipe *p = c->ctx;
    return aipc_decoder_direct(&p->dec, want);
}

/* Parses what a read returned; 0 to read again. */
static int io_input(aipc__conn *c, uint8_t *data, size_t n, int direct)
{
    aipc__pipe *p = c->ctx;
    int rc;
    p->in_read = 1;
    /* Without a dispatcher every OnRecv of this read runs here: hold the gate once for all of
     * them (each still checks it, so Exit waits only for the one running). */
    int held = !p->disp && aipc__gate_enter(&p->gate);
    if (direct)
        rc = aipc_decoder_commit(&p->dec, n, on_frame, p);
    else
        rc = aipc_decoder_feed(&p->dec, data, n, on_frame, p, NULL);
    if (held)
        aipc__gate_leave(&p->gate);
    p->in_read = 0;
    if (p->flush_due) {
        /* A reply sent from OnRecv: write it now, in one batch with any other replies of this
         * read, instead of a posted task (saves a wake-up and a server round trip per message). */
        p->flush_due = 0;
        start_write(p);       /* gives the token back if the pipe is no longer connected */
    }
    if (p->state != AIPC_ST_CONNECTED)
        return 1;
    if (rc == 0 && aipc__pipe_ev_should_pause(p))
        return 1;             /* the dispatcher's thread posts the resume task */
    if (rc != 0) {
        aipc__pipe_set_error(p, rc == AIPC_ENOMEM ? AIPC_ENOMEM : AIPC_EPROTO, 0);
        if (rc == AIPC_ENOMEM)
            aipc_log(AIPC_LOG_ERROR, "pipe(%s) %s: out of memory for an incoming message; closing",
                     p->eng->name, p->name_utf8 ? p->name_utf8 : "?");
        else
            aipc_log(AIPC_LOG_ERROR,
                     "pipe(%s) %s: protocol error from peer (a meta that is no control frame "
                     "expected now, or a payload over %u bytes); closing", p->eng->name,
                     p->name_utf8 ? p->name_utf8 : "?", p->max_msg);
        aipc__pipe_conn_lost(p, 0, NULL);
        return 1;
    }
    return 0;
}

/* ---- write side: the batches are the connection's output source ------------------------------- */

/* Drops the in-flight batch (its unwritten messages get no OnSend) and gives the writer token
 * back. */
static void drop_inflight(aipc__pipe *p)
{
    p->xlen = p->xoff = 0;
    aipc__batch_clear(&p->q[p->qi ^ 1]);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
    AcquireSRWLockExclusive(&p->lock);
    p->wbusy = 0;
    p->inflight = 0;
    ReleaseSRWLockExclusive(&p->lock);
}

/* The rest of the in-flight batch; when it is all written, the pending batch is swapped in, or
 * the writer token given back when there is nothing to write (no batch, no release owed).
 * Releases of the peer's shared slots go first, at a frame boundary (the peer's sends must not
 * wait behind a large batch of ours), offered together with what follows: a small batch (a
 * descriptor, a reply) is gathered into the same WriteFile by win_conn.c, so a shared round
 * trip costs one write per side, not two. */
static int io_out_next(aipc__conn *c, aipc_iov *iov, int max)
{
    aipc__pipe *p = c->ctx;
    aipc__batch *b = &p->q[p->qi ^ 1];
    (void)max;
    if (p->wr_off >= b->len) {
        if (b->len)
            aipc__batch_clear(b);
        p->wr_off = p->wr_end = 0;
        p->wr_msg = 0;
        aipc__shm_link_pump(&p->shm);   /* a wanted segment's announce: into the pending batch */
        AcquireSRWLockExclusive(&p->lock);
        if (p->sendable && p->q[p->qi].len != 0) {
            p->qi ^= 1;       /* pending -> in flight; the empty in-flight batch collects next */
            b = &p->q[p->qi ^ 1];
            p->inflight = b->len;
        } else if (!p->sendable || (!p->xlen && !(p->shm_on && p->shm.ndone))) {
            /* (releases owed are looked at under the lock: one owed after this point pokes a
             * free token) */
            p->wbusy = 0;
            p->inflight = 0;
            ReleaseSRWLockExclusive(&p->lock);
            return 0;
        }
        ReleaseSRWLockExclusive(&p->lock);
    }
    if (!p->xlen && p->wr_off == p->wr_end && p->shm_on) {
        if (!p->xbuf)
            p->xbuf = malloc(AIPC__SHM_DONE_FRAME);
        if (p->xbuf)
            p->xlen = aipc__shm_link_take_done(&p->shm, p->xbuf, AIPC__SHM_DONE_FRAME);
    }
    int n = 0;
    if (p->xlen) {
        iov[n].base = p->xbuf + p->xoff;
        iov[n++].len = p->xlen - p->xoff;
    }
    if (p->wr_off < b->len) {
        iov[n].base = b->buf + p->wr_off;
        iov[n++].len = b->len - p->wr_off;
    }
    if (n == 0) {             /* a release owed that could not be framed (out of memory) */
        AcquireSRWLockExclusive(&p->lock);
        p->wbusy = 0;
        p->inflight = 0;
        ReleaseSRWLockExclusive(&p->lock);
    }
    return n;
}

/* Reports OnSend for frames [from, to) of the batch, skipping control frames (runs of messages
 * in one call each). */
static void report_sent(aipc__pipe *p, const aipc__batch *b, size_t from, size_t to)
{
    while (from < to && !p->closed) {
        while (from < to && b->sizes[from] == AIPC__BATCH_CTL)
            from++;
        size_t run = from;
        while (run < to && b->sizes[run] != AIPC__BATCH_CTL)
            run++;
        if (run > from)
            aipc__pipe_ev_sent(p, b->sizes + from, run - from);
        from = run;
    }
}

/* A piece was written: OnSend for the messages it finished. */
static void io_out_done(aipc__conn *c, size_t bytes)
{
    aipc__pipe *p = c->ctx;
    aipc__batch *b = &p->q[p->qi ^ 1];
    if (p->xlen) {            /* the release frame: offered first */
        size_t take = bytes < p->xlen - p->xoff ? bytes : p->xlen - p->xoff;
        p->xoff += take;
        bytes -= take;
        if (p->xoff >= p->xlen)
            p->xlen = p->xoff = 0;
        if (bytes == 0)
            return;
    }
    p->wr_off += bytes;
    size_t first = p->wr_msg;
    while (p->wr_msg < b->count) {
        uint32_t ml, pl;
        aipc_frame_get_header(b->buf + p->wr_end, &ml, &pl);
        size_t end = p->wr_end + AIPC_HDR_SIZE + (size_t)ml + pl;
        if (end > p->wr_off)
            break;
        p->wr_end = end;
        p->wr_msg++;
    }
    if (p->wr_msg > first) {
        AcquireSRWLockExclusive(&p->lock);
        p->inflight = b->len - p->wr_end;   /* written: no longer counts against the queue limit */
        ReleaseSRWLockExclusive(&p->lock);
        report_sent(p, b, first, p->wr_msg);
    }
}

static void io_out_drop(aipc__conn *c)
{
    drop_inflight(c->ctx);
}

static void io_on_error(aipc__conn *c, DWORD err, const char *what)
{
    aipc__pipe_conn_lost(c->ctx, err, what);
}

static void io_done(aipc__conn *c)
{
    aipc__pipe_maybe_finish(c->ctx);
}

static void io_ref(aipc__conn *c)
{
    aipc__pipe_ref(c->ctx);
}

static void io_unref(aipc__conn *c)
{
    aipc__pipe_unref(c->ctx);
}

const aipc__conn_handler aipc__pipe_io_handler = {
    io_read_direct, io_input, io_out_next, io_out_done, io_out_drop, io_on_error, io_done,
    io_ref, io_unref,
};

void aipc__pipe_poke(aipc__pipe *p)
{
    AcquireSRWLockExclusive(&p->lock);
    int take = p->sendable && !p->wbusy;   /* else the write in flight takes it along */
    if (take)
        p->wbusy = 1;
    ReleaseSRWLockExclusive(&p->lock);
    if (!take)
        return;
    if (GetCurrentThreadId() == p->loop->tid && !p->in_read)
        start_write(p);
    else
        aipc__pipe_kick(p);   /* inside OnRecv: after this read's frames; else posted */
}

int aipc__pipe_queue_ctl(aipc__pipe *p, const char *meta, uint32_t len)
{
    AcquireSRWLockExclusive(&p->lock);
    int rc = aipc__batch_append_meta(&p->q[p->qi], meta, len, NULL, 0, AIPC__BATCH_CTL);
    ReleaseSRWLockExclusive(&p->lock);
    if (rc == 0)
        aipc__pipe_poke(p);
    return rc;
}

/* ---- the pipe as shm_link's owner (shm_link.h) --------------------------------------------- */

static int shm_queue_locked(void *ctx, const char *meta, size_t len)
{
    aipc__pipe *p = ctx;
    return aipc__batch_append_meta(&p->q[p->qi], meta, (uint32_t)len, NULL, 0, AIPC__BATCH_CTL);
}

static int shm_queue_ctl(void *ctx, const char *meta, uint32_t len)
{
    return aipc__pipe_queue_ctl(ctx, meta, len);
}

static void shm_released(void *ctx, const uint32_t *sizes, size_t n)
{
    aipc__pipe *p = ctx;
    if (!p->closed)
        aipc__pipe_ev_sent(p, sizes, n);   /* OnSend fires at the release */
}

static uint64_t shm_pool_max(void *ctx)
{
    return aipc__pipe_queue_limit(ctx);   /* the pool's bound is the queue's */
}

void aipc__pipe_shm_init(aipc__pipe *p)
{
    aipc__shm_owner own = {p, &p->lock, shm_queue_locked, shm_queue_ctl, shm_released,
                           shm_pool_max};
    aipc__shm_link_init(&p->shm, &own, "pipe");
}

/* Holder of the writer token: write what is pending, or give the token back. */
static void start_write(aipc__pipe *p)
{
    if (p->io.open) {
        aipc__conn_kick(&p->io);  /* out_next gives the token back when nothing is pending */
        return;
    }
    AcquireSRWLockExclusive(&p->lock);
    p->wbusy = 0;
    p->inflight = 0;
    ReleaseSRWLockExclusive(&p->lock);
}

void aipc__pipe_on_flush(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    (void)err;
    (void)bytes;
    start_write(p);           /* gives the token back when not connected */
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);       /* the task's reference */
}

void aipc__pipe_on_resume(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    (void)err;
    (void)bytes;
    InterlockedExchange(&p->resume_posted, 0);
    if (p->state == AIPC_ST_CONNECTED) {
        aipc__conn_read(&p->io);   /* nothing if a read is pending */
    } else if (p->state == AIPC_ST_IDLE && p->listen_due && !p->closed) {
        p->listen_due = 0;
        aipc__pipe_server_listen(p);
    }
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);       /* the task's reference */
}

/* ---- connection start / reset ---------------------------------------------------------------- */

void aipc__pipe_io_begin(aipc__pipe *p)
{
    aipc_decoder_free(&p->dec);   /* a block kept from the previous peer, if any */
    aipc_decoder_init(&p->dec, 0, p->max_msg);
    p->dec.keep_max = AIPC_RECV_KEEP_MAX;   /* the pipe outlives its decoder's callbacks */
    /* Messages carry no meta: the decoder refuses one before allocating, unless the shared-
     * memory negotiation takes control frames from this peer (pipe_ctl.c sets max_meta). */
    int hello = 0;
    aipc__pipe_ctl_begin(p, &hello);
    InterlockedExchange(&p->rpaused, 0);
    aipc__conn_start(&p->io, p->eng, p->loop, p->h);
    int start = 0;
    if (hello) {
        /* The hello goes first, before what Send queued: it is the in-flight batch (empty
         * after the reset), written as soon as the token is free. */
        size_t hl;
        const char *h = aipc__pipe_ctl_hello(&hl);
        AcquireSRWLockExclusive(&p->lock);
        aipc__batch *b = &p->q[p->qi ^ 1];
        if (aipc__batch_append_meta(b, h, (uint32_t)hl, NULL, 0, AIPC__BATCH_CTL) == 0) {
            p->inflight = b->len;
            start = !p->wbusy;
            p->wbusy = 1;
        } else {
            p->ctl = AIPC__CTL_NONE;   /* out of memory: stay inline */
            p->dec.max_meta = 0;
        }
        ReleaseSRWLockExclusive(&p->lock);
    }
    aipc__conn_read(&p->io);
    if (p->state != AIPC_ST_CONNECTED) {
        if (start)
            start_write(p);   /* not open: gives the token back (the reset drops the hello) */
        return;
    }
    AcquireSRWLockExclusive(&p->lock);
    p->sendable = 1;
    if (!start && !p->wbusy && p->q[p->qi].len > 0) {
        start = 1;
        p->wbusy = 1;
    }
    ReleaseSRWLockExclusive(&p->lock);
    if (start)
        start_write(p);
}

void aipc__pipe_io_reset(aipc__pipe *p)
{
    aipc_decoder_free(&p->dec);
    aipc__pipe_ctl_reset(p);
    aipc__shm_link_reset(&p->shm);   /* nothing pending: every slot and view of this peer goes */
    aipc__conn_reset(&p->io);
    AcquireSRWLockExclusive(&p->lock);
    p->sendable = 0;
    aipc__batch_clear(&p->q[p->qi]);     /* unsent messages belonged to the old peer */
    p->inflight = 0;
    ReleaseSRWLockExclusive(&p->lock);
    aipc__batch_clear(&p->q[p->qi ^ 1]);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
    p->xlen = p->xoff = 0;
}
