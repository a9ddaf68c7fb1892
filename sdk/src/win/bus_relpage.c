/*
 * bus_relpage.c - the bus client's release page (docs/protocol.md section 11, docs/sdk.md
 * "Shared memory"): the broker's slots are released by a 32-bit counter in a page of ours that
 * the broker maps read-only, instead of shm_done frames.
 *
 *   - Offer: a welcome with "shm" and "rel":1 (and shared memory agreed): the I/O thread creates
 *     a 4096-byte segment like our payload segments (granted to the broker pipe's owner,
 *     shm_link's aipc__shm_link_seg_new: same DACL, label and id space), read-write, and queues
 *     its announce with "rel":1 in ctl before anything else of the connection (NONE ->
 *     ANNOUNCED). Creation fails: no page, frames as before (NONE).
 *   - Every descriptor received in ANNOUNCED or OK gets the next sequence number (relseq.h),
 *     carried with its hold (aipc__bus_shm_msg.seq: the frame, a dispatcher item, a received
 *     buffer).
 *   - Release in OK (any thread, under b->lock: a bit, the prefix, one release store into the
 *     page; no write, no wait, no kick): the page counts every descriptor of the prefix as
 *     released. A held one stops the prefix: releases after it reach the broker when it is
 *     released (the broker reads the page when it needs room or decides about this client).
 *   - The answer: ok -> OK, the prefix stored; refused -> REFUSED, the page unmapped, releases by
 *     shm_done frames as before. Releases in ANNOUNCED (a broker answers before its first
 *     descriptor, so only a broken one gets here) are marked in the bitmap AND owed as frames,
 *     which are withheld until the answer: ok drops the frames (the page carries them), refused
 *     writes them.
 *   - Released in NONE / REFUSED, or of an older connection (gen): bus_shm.c's frame path.
 *   - The drain (connection gone): NONE, the page unmapped and closed, the bitmap freed.
 * Decisions where the design is silent:
 *   - Every connection with shared memory gets a page when offered, a publisher's too (it may
 *     subscribe later; 4 KiB and one of the broker's mapped segments of that client).
 *   - The announce goes at the HEAD of ctl (ahead of the resubscriptions queued at the
 *     welcome), so it is our first frame after the welcome whatever ctl holds.
 *   - The bitmap grows when a descriptor arrives (I/O thread), never at a release: a release
 *     on a UI thread cannot fail or allocate. No memory to count a descriptor: the connection
 *     is dropped as for a bad frame (it reconnects), since an uncounted descriptor would shift
 *     every later release.
 *   - "rel" >= 1 in the welcome is an offer (as "v" >= 1 is for shared memory); we announce 1.
 *   - The segment test hook (AIPC_TEST_SHM_GRANT_SID) applies to the page too: the Wine suite
 *     makes the broker refuse it that way.
 * Threads: state, id and the segment are written on the I/O thread under b->lock (so the I/O
 * thread reads them without it); the bitmap and the store are under b->lock on any thread.
 */
#include "bus_internal.h"

#include <stdlib.h>
#include <string.h>

#define RELPAGE_SIZE 4096u

void aipc__bus_relpage_offer(aipc_bus *b)
{
    aipc__bus_relpage *p = &b->page;
    aipc__shm_seg seg;
    memset(&seg, 0, sizeof seg);
    char name[AIPC_SHM_NAME_BUF], meta[256];
    uint32_t id = 0;
    int rc = aipc__shm_link_seg_new(&b->shm, RELPAGE_SIZE, &seg, &id, name);
    size_t ml = rc == 0 ? aipc_shm_relpage_put(meta, sizeof meta, id, name, RELPAGE_SIZE,
                                               b->shm.session, id) : 0;
    aipc__bus_qnode *n = ml ? aipc__bus_frame_new(meta, ml, NULL, 0, 0) : NULL;
    if (!n) {
        aipc_log(AIPC_LOG_WARN, "bus(%s): no release page (%d): releases go as frames",
                 b->pipe_utf8, rc ? rc : AIPC_ENOMEM);
        aipc__shm_seg_close(&seg);
        return;
    }
    /* before anything else of the connection: ahead of what ctl holds (subscriptions) */
    aipc__bus_queue one;
    aipc__bus_queue_init(&one, 0);
    aipc__bus_queue_push(&one, n, 0);
    aipc__bus_queue_splice(&b->ctl, &one, 1);
    AcquireSRWLockExclusive(&b->lock);
    p->seg = seg;
    p->id = id;
    aipc__relseq_init(&p->rs, 0);
    p->state = AIPC__RELPAGE_ANNOUNCED;
    ReleaseSRWLockExclusive(&b->lock);
}

int aipc__bus_relpage_answer(aipc_bus *b, const aipc_shm_ctl *c)
{
    aipc__bus_relpage *p = &b->page;
    if (p->state != AIPC__RELPAGE_ANNOUNCED || c->op != AIPC_SHM_OP_SEG_ANSWER || c->seg != p->id)
        return 0;                                /* not the page's: one of our segments */
    aipc__shm_seg gone;
    memset(&gone, 0, sizeof gone);
    AcquireSRWLockExclusive(&b->lock);
    if (c->ok) {
        p->state = AIPC__RELPAGE_OK;
        aipc__shm_link_drop_done_locked(&b->shm);   /* withheld: the page carries them now */
        aipc__relseq_store(p->seg.view, aipc__relseq_prefix(&p->rs));
    } else {
        p->state = AIPC__RELPAGE_REFUSED;
        gone = p->seg;
        memset(&p->seg, 0, sizeof p->seg);
        aipc__relseq_free(&p->rs);
    }
    ReleaseSRWLockExclusive(&b->lock);
    if (c->ok) {
        aipc_log(AIPC_LOG_INFO, "bus(%s): releases go through the release page", b->pipe_utf8);
    } else {
        aipc_log(AIPC_LOG_INFO, "bus(%s): the broker cannot map the release page (%s): releases "
                 "go as frames", b->pipe_utf8, c->code[0] ? c->code : "refused");
        aipc__shm_seg_close(&gone);
        b->shm_kick = 1;                         /* releases withheld meanwhile go now */
    }
    return 1;
}

int aipc__bus_relpage_rx(aipc_bus *b, uint32_t *seq)
{
    aipc__bus_relpage *p = &b->page;
    *seq = 0;
    if (p->state != AIPC__RELPAGE_ANNOUNCED && p->state != AIPC__RELPAGE_OK)
        return 0;
    AcquireSRWLockExclusive(&b->lock);
    int rc = aipc__relseq_take(&p->rs, seq);
    ReleaseSRWLockExclusive(&b->lock);
    if (rc != 0)
        aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory counting %u held shared messages",
                 b->pipe_utf8, aipc__relseq_outstanding(&p->rs));
    return rc;
}

int aipc__bus_relpage_release_locked(aipc_bus *b, const aipc__bus_shm_msg *m)
{
    aipc__bus_relpage *p = &b->page;
    if (m->gen != b->shm.gen ||
        (p->state != AIPC__RELPAGE_ANNOUNCED && p->state != AIPC__RELPAGE_OK))
        return 0;
    /* AIPC_EINVAL (a seq not outstanding) cannot happen: each hold is released once */
    int moved = aipc__relseq_release(&p->rs, m->seq);
    if (p->state != AIPC__RELPAGE_OK)
        return 0;                                /* ANNOUNCED: owed as a frame as well */
    if (moved == 1)
        aipc__relseq_store(p->seg.view, aipc__relseq_prefix(&p->rs));
    return 1;
}

int aipc__bus_relpage_withholds(const aipc_bus *b)
{
    return b->page.state == AIPC__RELPAGE_ANNOUNCED;
}

void aipc__bus_relpage_reset(aipc_bus *b)
{
    aipc__bus_relpage *p = &b->page;
    AcquireSRWLockExclusive(&b->lock);
    aipc__shm_seg gone = p->seg;
    memset(&p->seg, 0, sizeof p->seg);
    aipc__relseq_free(&p->rs);
    p->state = AIPC__RELPAGE_NONE;
    p->id = 0;
    ReleaseSRWLockExclusive(&b->lock);
    aipc__shm_seg_close(&gone);                  /* no release stores into it any more */
}

void aipc__bus_relpage_counts_locked(const aipc_bus *b, uint32_t *on, uint32_t *waiting)
{
    *on = b->page.state == AIPC__RELPAGE_OK;
    *waiting = *on ? b->page.rs.waiting : 0;
}
