/*
 * pipe_io.c - engine-neutral data path of a connected pipe.
 *
 * Reads: one read is always pending while connected, into a 256 KiB buffer (many frames per
 * read) or, for the rest of a large frame, straight into the decoder's frame buffer
 * (aipc_decoder_direct/commit). Every whole frame becomes one OnRecv.
 * A stream of large frames reads each one whole into a block kept from the previous one
 * (decoder keep_max), so a 1 MiB message costs about two reads and no allocation.
 * Writes: Send appends frames to the pending batch under the pipe lock; the holder of the
 * "writer token" (wbusy) swaps the pending batch with the empty in-flight one and writes it in
 * pieces of AIPC_WRITE_PIECE bytes (one WriteFile each), reporting OnSend for the messages a
 * piece finished as it completes.
 * With a dispatcher, reading pauses while the received messages queued for it exceed the
 * pipe's dispatch bound; the dispatcher's thread posts `resume` when they have drained.
 * Thread: the engine's I/O thread.
 */
#include "pipe_internal.h"

static void issue_read(aipc__pipe *p);
static void start_write(aipc__pipe *p);
static void on_write(aipc__op *op, DWORD err, DWORD bytes);

/* ---- read side ------------------------------------------------------------------------------- */

/* One whole frame from the decoder. A point-to-point frame must have meta_len == 0. */
static int on_frame(void *ctx, const uint8_t *meta, uint32_t meta_len, const uint8_t *payload,
                    uint32_t payload_len)
{
    aipc__pipe *p = ctx;
    (void)meta;
    if (meta_len != 0)
        return AIPC_EPROTO;
    if (p->closed)
        return 1;
    /* The byte after the payload is ours (read buffer has a spare byte; assembled frames end
     * with a NUL), so the callee may NUL-terminate in place. */
    aipc__pipe_ev_recv(p, (uint8_t *)payload, payload_len);
    return p->state == AIPC_ST_CONNECTED ? 0 : 1;   /* stop if Exit ran inside OnRecv */
}

/* Parses what a read returned, then reads again. */
static void read_done(aipc__pipe *p, DWORD bytes)
{
    int rc;
    p->in_read = 1;
    /* Without a dispatcher every OnRecv of this read runs here: hold the gate once for all of
     * them (each still checks it, so Exit waits only for the one running). */
    int held = !p->disp && aipc__gate_enter(&p->gate);
    if (p->rdirect)
        rc = aipc_decoder_commit(&p->dec, bytes, on_frame, p);
    else
        rc = aipc_decoder_feed(&p->dec, p->rbuf, bytes, on_frame, p, NULL);
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
        return;
    if (rc == 0 && aipc__pipe_ev_should_pause(p))
        return;               /* the dispatcher's thread posts the resume task */
    if (rc != 0) {
        aipc__pipe_set_error(p, rc == AIPC_ENOMEM ? AIPC_ENOMEM : AIPC_EPROTO, 0);
        if (rc == AIPC_ENOMEM)
            aipc_log(AIPC_LOG_ERROR, "pipe(%s) %s: out of memory for an incoming message; closing",
                     p->eng->name, p->name_utf8 ? p->name_utf8 : "?");
        else
            aipc_log(AIPC_LOG_ERROR,
                     "pipe(%s) %s: protocol error from peer (frame with meta_len != 0 or payload "
                     "over %u bytes); closing", p->eng->name, p->name_utf8 ? p->name_utf8 : "?",
                     p->max_msg);
        aipc__pipe_conn_lost(p, 0, NULL);
        return;
    }
    issue_read(p);
}

/* Read completion. ERROR_MORE_DATA is a partial read, not an error. */
static void on_read(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    p->ops--;
    p->reading = 0;
    if (err == ERROR_MORE_DATA)
        err = 0;
    if (p->state == AIPC_ST_CONNECTED) {
        if (err)
            aipc__pipe_conn_lost(p, err, "read");
        else
            read_done(p, bytes);
    }
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);
}

static void issue_read(aipc__pipe *p)
{
    size_t want = 0;
    uint8_t *dst = aipc_decoder_direct(&p->dec, &want);
    DWORD len;
    if (dst && want >= AIPC_DIRECT_MIN) {
        p->rdirect = 1;
        len = want > AIPC_IO_CHUNK_MAX ? AIPC_IO_CHUNK_MAX : (DWORD)want;
    } else {
        p->rdirect = 0;
        dst = p->rbuf;
        len = AIPC_PIPE_BUFSIZE;
    }
    p->rd.cb = on_read;
    DWORD e = p->eng->read(p->h, &p->rd, dst, len);
    if (e == 0) {
        p->ops++;
        p->reading = 1;
        aipc__pipe_ref(p);
        return;
    }
    aipc__pipe_conn_lost(p, e, "read");
}

/* ---- write side ------------------------------------------------------------------------------ */

/* Drops the in-flight batch (its unwritten messages get no OnSend) and gives the writer token
 * back. */
static void drop_inflight(aipc__pipe *p)
{
    aipc__batch_clear(&p->q[p->qi ^ 1]);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
    AcquireSRWLockExclusive(&p->lock);
    p->wbusy = 0;
    p->inflight = 0;
    ReleaseSRWLockExclusive(&p->lock);
}

/* Writes the next piece of the in-flight batch: at most AIPC_WRITE_PIECE bytes. */
static void issue_write(aipc__pipe *p)
{
    aipc__batch *b = &p->q[p->qi ^ 1];
    size_t left = b->len - p->wr_off;
    DWORD len = left > AIPC_WRITE_PIECE ? AIPC_WRITE_PIECE : (DWORD)left;
    p->wr.cb = on_write;
    DWORD e = p->eng->write(p->h, &p->wr, b->buf + p->wr_off, len);
    if (e == 0) {
        p->ops++;
        aipc__pipe_ref(p);
        return;
    }
    aipc__pipe_conn_lost(p, e, "write");
    drop_inflight(p);
}

/* A write completed: OnSend for the messages it finished, then the next piece or batch. */
static void write_done(aipc__pipe *p, DWORD bytes)
{
    aipc__batch *b = &p->q[p->qi ^ 1];
    if (bytes == 0) {
        aipc__pipe_conn_lost(p, ERROR_NO_DATA, "write made no progress");
        drop_inflight(p);
        return;
    }
    p->wr_off += bytes;
    size_t first = p->wr_msg;
    while (p->wr_msg < b->count && p->wr_end + AIPC_HDR_SIZE + b->sizes[p->wr_msg] <= p->wr_off)
        p->wr_end += AIPC_HDR_SIZE + (size_t)b->sizes[p->wr_msg++];
    if (p->wr_msg > first) {
        AcquireSRWLockExclusive(&p->lock);
        p->inflight = b->len - p->wr_end;   /* written: no longer counts against the queue limit */
        ReleaseSRWLockExclusive(&p->lock);
        if (!p->closed)
            aipc__pipe_ev_sent(p, b->sizes + first, p->wr_msg - first);
        if (p->state != AIPC_ST_CONNECTED) {
            drop_inflight(p);
            return;
        }
    }
    if (p->wr_off < b->len) {
        issue_write(p);
        return;
    }
    aipc__batch_clear(b);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
    start_write(p);
}

/* Write completion. */
static void on_write(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    p->ops--;
    if (p->state != AIPC_ST_CONNECTED) {
        drop_inflight(p);
    } else if (err) {
        aipc__pipe_conn_lost(p, err, "write");
        drop_inflight(p);
    } else {
        write_done(p, bytes);
    }
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);
}

/* Holder of the writer token: swap the pending batch in and write it, or give the token back. */
static void start_write(aipc__pipe *p)
{
    AcquireSRWLockExclusive(&p->lock);
    if (!p->sendable || p->q[p->qi].len == 0) {
        p->wbusy = 0;
        p->inflight = 0;
        ReleaseSRWLockExclusive(&p->lock);
        return;
    }
    p->qi ^= 1;               /* pending -> in flight; the empty in-flight batch collects next */
    p->inflight = p->q[p->qi ^ 1].len;
    ReleaseSRWLockExclusive(&p->lock);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
    issue_write(p);
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
    if (p->state == AIPC_ST_CONNECTED && !p->reading) {
        issue_read(p);
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
    p->dec.max_meta = 0;      /* point-to-point frames carry no meta: reject before allocating */
    p->dec.keep_max = AIPC_RECV_KEEP_MAX;   /* the pipe outlives its decoder's callbacks */
    p->rdirect = 0;
    InterlockedExchange(&p->rpaused, 0);
    issue_read(p);
    if (p->state != AIPC_ST_CONNECTED)
        return;
    AcquireSRWLockExclusive(&p->lock);
    p->sendable = 1;
    int start = !p->wbusy && p->q[p->qi].len > 0;
    if (start)
        p->wbusy = 1;
    ReleaseSRWLockExclusive(&p->lock);
    if (start)
        start_write(p);
}

void aipc__pipe_io_reset(aipc__pipe *p)
{
    aipc_decoder_free(&p->dec);
    p->rdirect = 0;
    AcquireSRWLockExclusive(&p->lock);
    p->sendable = 0;
    aipc__batch_clear(&p->q[p->qi]);     /* unsent messages belonged to the old peer */
    p->inflight = 0;
    ReleaseSRWLockExclusive(&p->lock);
    aipc__batch_clear(&p->q[p->qi ^ 1]);
    p->wr_off = p->wr_end = 0;
    p->wr_msg = 0;
}
