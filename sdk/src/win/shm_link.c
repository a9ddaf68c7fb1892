/*
 * shm_link.c - shared memory of one connection (shm_link.h), for a point-to-point pipe and for
 * the bus client alike: everything goes through the owner interface (L->own).
 */
#include "shm_link.h"

#include "asyncipc/asyncipc.h"
#include "proto/frame.h"
#include "winsec.h"

#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#define SEG_DEFAULT   (8u * 1024u * 1024u)    /* a segment's size unless a message needs more */
#define SEG_ROUND     (1024u * 1024u)
#define POOL_UNBOUNDED (256u * 1024u * 1024u) /* pool bound when the owner has none */
#define MAX_REFUSALS  3                       /* the peer could not map this many: stop */

enum { TX_ANNOUNCED = 0, TX_OK, TX_REFUSED };

#define LNAME(L) ((L)->name ? (L)->name : "?")

/* ---- owner, peer and start --------------------------------------------------------------- */

void aipc__shm_link_init(aipc__shm_link *L, const aipc__shm_owner *own, const char *kind)
{
    L->own = *own;
    L->kind = kind;
}

void aipc__shm_link_set_peer(aipc__shm_link *L, PSID peer, DWORD integrity, int session_known,
                             DWORD peer_session, const char *name)
{
    free(L->peer);
    L->peer = peer;
    L->peer_integrity = integrity;
    L->peer_session_known = session_known;
    L->peer_session = peer_session;
    L->name = name;
    DWORD s = 0;
    L->session = ProcessIdToSessionId(GetCurrentProcessId(), &s) ? s : 0;
}

void aipc__shm_link_start(aipc__shm_link *L)
{
    AcquireSRWLockExclusive(L->own.lock);
    L->active = 1;
    L->grow_want = SEG_DEFAULT;
    ReleaseSRWLockExclusive(L->own.lock);
}

/* ---- send side ------------------------------------------------------------------------------ */

static uint64_t pool_max(aipc__shm_link *L)
{
    uint64_t q = L->own.pool_max ? L->own.pool_max(L->own.ctx) : 0;
    return q ? q : POOL_UNBOUNDED;
}

/* A slot of `size` bytes in a confirmed segment: the segment and *off, or NULL (no room now:
 * a segment has been asked of the I/O thread while the pool bound allows one; a message larger
 * than the default gets one of its own size). */
static aipc__shm_tx *slot_alloc(aipc__shm_link *L, uint32_t size, uint32_t *off)
{
    if (!L->active || L->refusals >= MAX_REFUSALS)
        return NULL;
    for (int i = 0; i < L->ntx; i++)
        if (L->tx[i]->state == TX_OK && aipc_shm_ring_alloc(&L->tx[i]->ring, size, off) == 0)
            return L->tx[i];
    uint64_t need = (uint64_t)size + 1 < SEG_DEFAULT ? SEG_DEFAULT
                    : ((uint64_t)size + 1 + SEG_ROUND - 1) / SEG_ROUND * SEG_ROUND;
    if (L->ntx < AIPC__SHM_TX_MAX && L->pool_bytes + need <= pool_max(L) && need > L->grow_want)
        L->grow_want = (uint32_t)need;
    return NULL;
}

/* Records the slot (t, off) holding `size` bytes as sent: 0 or AIPC_ENOMEM (nothing done). */
static int out_add(aipc__shm_link *L, aipc__shm_tx *t, uint32_t off, uint32_t size,
                   aipc_shm_desc *d)
{
    if (L->nout == L->capout) {
        size_t cap = L->capout ? L->capout * 2 : 64;
        aipc__shm_out *n = realloc(L->out, cap * sizeof *n);
        if (!n)
            return AIPC_ENOMEM;
        L->out = n;
        L->capout = cap;
    }
    t->seg.view[off + size] = 0;             /* the spare NUL: the receiver never writes it */
    L->out[L->nout].seg = t->id;
    L->out[L->nout].off = off;
    L->out[L->nout].len = size;
    L->out[L->nout].reserved = 0;
    L->nout++;
    L->held += (uint64_t)size + AIPC_HDR_SIZE;
    InterlockedIncrement64(&L->st_sent);
    d->seg = t->id;
    d->off = off;
    d->len = size;
    return 0;
}

int aipc__shm_link_put(aipc__shm_link *L, const void *data, uint32_t size, aipc_shm_desc *d)
{
    uint32_t off = 0;
    aipc__shm_tx *t = slot_alloc(L, size, &off);
    if (!t)
        return 0;                            /* go inline */
    memcpy(t->seg.view + off, data, size);   /* the payload is in place before its descriptor */
    if (out_add(L, t, off, size, d) != 0) {
        aipc_shm_ring_release(&t->ring, off);
        return AIPC_ENOMEM;
    }
    return 1;
}

int aipc__shm_link_reserve(aipc__shm_link *L, uint32_t size, aipc_shm_desc *d, uint8_t **dst)
{
    uint32_t off = 0;
    aipc__shm_tx *t = slot_alloc(L, size, &off);
    if (!t)
        return 0;                            /* go inline */
    if (out_add(L, t, off, size, d) != 0) {
        aipc_shm_ring_release(&t->ring, off);
        return AIPC_ENOMEM;
    }
    L->out[L->nout - 1].reserved = 1;         /* no release of it until its frame is queued */
    *dst = t->seg.view + off;                /* the caller copies before queueing the frame */
    return 1;
}

void aipc__shm_link_reserved_queued(aipc__shm_link *L, const aipc_shm_desc *d)
{
    for (size_t j = L->nout; j > 0; j--)
        if (L->out[j - 1].seg == d->seg && L->out[j - 1].off == d->off) {
            L->out[j - 1].reserved = 0;
            return;
        }
}

int aipc__shm_link_lend(aipc__shm_link *L, uint32_t size, aipc__shm_tx **tx, uint32_t *off,
                        uint8_t **view)
{
    aipc__shm_tx *t = slot_alloc(L, size, off);
    if (!t)
        return 0;
    t->lent++;
    *tx = t;
    *view = t->seg.view + *off;
    return 1;
}

int aipc__shm_link_send_lent(aipc__shm_link *L, aipc__shm_tx *tx, uint32_t off, uint32_t len,
                             aipc_shm_desc *d)
{
    if (tx->retired || !L->active)
        return 0;
    int rc = out_add(L, tx, off, len, d);
    if (rc != 0)
        return rc;
    tx->lent--;
    return 1;
}

void aipc__shm_link_unsend_lent(aipc__shm_link *L, const aipc_shm_desc *d)
{
    size_t j = L->nout;
    while (j > 0 && (L->out[j - 1].seg != d->seg || L->out[j - 1].off != d->off))
        j--;
    if (!j)
        return;
    for (int s = 0; s < L->ntx; s++)
        if (L->tx[s]->id == d->seg)
            L->tx[s]->lent++;
    j--;
    L->held -= (uint64_t)L->out[j].len + AIPC_HDR_SIZE;
    memmove(L->out + j, L->out + j + 1, (L->nout - j - 1) * sizeof *L->out);
    L->nout--;
    InterlockedDecrement64(&L->st_sent);
}

aipc__shm_tx *aipc__shm_link_unlend(aipc__shm_link *L, aipc__shm_tx *tx, uint32_t off)
{
    (void)L;
    aipc_shm_ring_release(&tx->ring, off);
    tx->lent--;
    return tx->retired && tx->lent == 0 ? tx : NULL;
}

void aipc__shm_tx_free(aipc__shm_tx *tx)
{
    if (!tx)
        return;
    aipc__shm_seg_close(&tx->seg);
    free(tx);
}

static aipc__shm_tx *tx_find(aipc__shm_link *L, uint32_t id)
{
    for (int s = 0; s < L->ntx; s++)
        if (L->tx[s]->id == id)
            return L->tx[s];
    return NULL;
}

void aipc__shm_link_unput(aipc__shm_link *L, const aipc_shm_desc *d)
{
    size_t j = L->nout;
    while (j > 0 && (L->out[j - 1].seg != d->seg || L->out[j - 1].off != d->off))
        j--;
    aipc__shm_tx *t = j ? tx_find(L, d->seg) : NULL;
    if (!t)
        return;
    aipc_shm_ring_release(&t->ring, d->off);
    j--;
    L->held -= (uint64_t)L->out[j].len + AIPC_HDR_SIZE;
    memmove(L->out + j, L->out + j + 1, (L->nout - j - 1) * sizeof *L->out);
    L->nout--;
    InterlockedDecrement64(&L->st_sent);
}

const uint8_t *aipc__shm_link_slot(aipc__shm_link *L, uint32_t seg, uint32_t off)
{
    aipc__shm_tx *t = tx_find(L, seg);
    for (size_t j = 0; t && j < L->nout; j++)
        if (L->out[j].seg == seg && L->out[j].off == off)
            return t->seg.view + off;
    return NULL;
}

/* Test hook (tests/win/p2p: the map-denied case): AIPC_TEST_SHM_GRANT_SID names the principal
 * our segments are granted to instead of the peer. NULL when unset. */
static PSID test_grant(void)
{
    char v[200];
    DWORD n = GetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", v, sizeof v);
    PSID sid = NULL, copy = NULL;
    if (n == 0 || n >= sizeof v || !ConvertStringSidToSidA(v, &sid))
        return NULL;
    copy = aipc__sec_sid_dup(sid);
    LocalFree(sid);
    return copy;
}

int aipc__shm_link_seg_new(aipc__shm_link *L, uint32_t size, aipc__shm_seg *s, uint32_t *id,
                           char name[AIPC_SHM_NAME_BUF])
{
    PSID hook = test_grant();
    int rc = aipc__shm_seg_create(s, size, hook ? hook : L->peer, L->peer_integrity, name,
                                  AIPC_SHM_NAME_BUF);
    free(hook);
    if (rc == 0)
        *id = L->next_id++;
    return rc;
}

/* I/O thread: creates a segment of `size` bytes for the peer and queues its announce. */
static void create_segment(aipc__shm_link *L, uint32_t size)
{
    aipc__shm_tx *t = calloc(1, sizeof *t);
    char name[AIPC_SHM_NAME_BUF], meta[256];
    int rc = t ? aipc_shm_ring_init(&t->ring, size) : AIPC_ENOMEM;
    if (rc == 0)
        rc = aipc__shm_link_seg_new(L, size, &t->seg, &t->id, name);
    size_t ml = 0;
    if (rc == 0) {
        ml = aipc_shm_seg_put(meta, sizeof meta, t->id, name, size, L->session, t->id);
        if (!ml)
            rc = AIPC_EINVAL;
    }
    AcquireSRWLockExclusive(L->own.lock);
    L->grow_want = 0;
    if (rc == 0 && L->own.queue_locked(L->own.ctx, meta, ml) == 0) {
        t->state = TX_ANNOUNCED;
        L->tx[L->ntx++] = t;
        L->pool_bytes += size;
        t = NULL;
    } else if (rc != 0) {
        L->refusals++;                     /* a creator that cannot create sends inline */
    }
    ReleaseSRWLockExclusive(L->own.lock);
    if (t) {
        aipc_log(AIPC_LOG_WARN, "%s %s: cannot create a shared segment of %u bytes (%d): "
                 "inline", L->kind, LNAME(L), size, rc);
        aipc__shm_seg_close(&t->seg);
        free(t);
    }
}

void aipc__shm_link_pump(aipc__shm_link *L)
{
    AcquireSRWLockExclusive(L->own.lock);
    uint32_t want = L->active && L->ntx < AIPC__SHM_TX_MAX ? L->grow_want : 0;
    ReleaseSRWLockExclusive(L->own.lock);
    if (want)
        create_segment(L, want);
}

size_t aipc__shm_link_take_done(aipc__shm_link *L, uint8_t *out, size_t cap)
{
    size_t ml = 0;
    AcquireSRWLockExclusive(L->own.lock);
    if (L->ndone && cap > AIPC_HDR_SIZE) {
        size_t n = L->ndone < AIPC_SHM_DONE_MAX ? L->ndone : AIPC_SHM_DONE_MAX;
        ml = aipc_shm_done_put((char *)out + AIPC_HDR_SIZE, cap - AIPC_HDR_SIZE, L->done, n);
        if (ml) {
            memmove(L->done, L->done + n, (L->ndone - n) * sizeof *L->done);
            L->ndone -= n;
        }
    }
    ReleaseSRWLockExclusive(L->own.lock);
    if (!ml)
        return 0;
    aipc_frame_put_header(out, (uint32_t)ml, 0);
    return AIPC_HDR_SIZE + ml;
}

void aipc__shm_link_drop_done_locked(aipc__shm_link *L)
{
    L->ndone = 0;
}

int aipc__shm_link_owes(aipc__shm_link *L)
{
    AcquireSRWLockShared(L->own.lock);
    int owes = L->ndone != 0;
    ReleaseSRWLockShared(L->own.lock);
    return owes;
}

/* ---- receive side ------------------------------------------------------------------------- */

static aipc__shm_rx *rx_find(aipc__shm_link *L, uint32_t id, int *slot)
{
    for (int i = 0; i < AIPC__SHM_RX_MAX; i++)
        if (L->rx[i] && L->rx[i]->id == id) {
            if (slot)
                *slot = i;
            return L->rx[i];
        }
    return NULL;
}

void aipc__shm_rx_hold(aipc__shm_rx *rx)
{
    InterlockedIncrement(&rx->refs);
}

void aipc__shm_rx_drop(aipc__shm_rx *rx)
{
    if (InterlockedDecrement(&rx->refs) == 0) {
        aipc__shm_seg_close(&rx->seg);
        free(rx);
    }
}

static const char *open_code(int rc)
{
    switch (rc) {
    case AIPC_EACCESS:
        return "access_denied";
    case AIPC_ENOTFOUND:
        return "not_found";
    case AIPC_EUNTRUSTED:
        return "untrusted";
    default:
        return "error";
    }
}

/* The peer announced a segment: map it and answer. */
static int on_seg(aipc__shm_link *L, const aipc_shm_ctl *c)
{
    if (rx_find(L, c->seg, NULL))
        return AIPC_EPROTO;                /* announced twice */
    int slot = -1;
    for (int i = 0; i < AIPC__SHM_RX_MAX && slot < 0; i++)
        if (!L->rx[i])
            slot = i;
    aipc__shm_rx *r = slot >= 0 ? calloc(1, sizeof *r) : NULL;
    int rc = !r ? AIPC_ENOMEM
             : L->peer_session_known
                 ? aipc__shm_seg_open_in(&r->seg, L->peer_session, c->name, c->size, L->peer)
                 : aipc__shm_seg_open(&r->seg, c->name, c->size, L->peer);
    if (rc == 0) {
        r->id = c->seg;
        r->refs = 1;
        memcpy(r->name, c->name, sizeof r->name);
        L->rx[slot] = r;
    } else {
        free(r);
        InterlockedIncrement64(&L->st_mapfail);
        aipc_log(AIPC_LOG_INFO, "%s %s: cannot map the peer's segment %u (%d): it stays inline",
                 L->kind, LNAME(L), c->seg, rc);
    }
    char meta[160];
    size_t ml = aipc_shm_answer_put(meta, sizeof meta, c->id, c->seg, rc == 0,
                                    rc == 0 ? NULL : open_code(rc));
    return ml ? L->own.queue_ctl(L->own.ctx, meta, (uint32_t)ml) : AIPC_ENOMEM;
}

/* The peer answered our announce. */
static int on_answer(aipc__shm_link *L, const aipc_shm_ctl *c)
{
    aipc__shm_tx *gone = NULL;
    int rc = AIPC_EPROTO;
    AcquireSRWLockExclusive(L->own.lock);
    for (int i = 0; i < L->ntx; i++) {
        aipc__shm_tx *t = L->tx[i];
        if (t->id != c->seg || t->state != TX_ANNOUNCED)
            continue;
        rc = 0;
        if (c->ok) {
            t->state = TX_OK;
        } else {                           /* never used: retire it at once */
            L->refusals++;
            L->pool_bytes -= t->ring.size;
            L->tx[i] = L->tx[--L->ntx];
            gone = t;
        }
        break;
    }
    ReleaseSRWLockExclusive(L->own.lock);
    if (gone) {
        InterlockedIncrement64(&L->st_mapfail);
        aipc_log(AIPC_LOG_INFO, "%s %s: the peer cannot map our segment %u (%s): inline",
                 L->kind, LNAME(L), c->seg, c->code[0] ? c->code : "refused");
        aipc__shm_seg_close(&gone->seg);
        free(gone);
    }
    return rc;
}

/* The peer released slots: free them and report the messages to the owner. */
static int on_done(aipc__shm_link *L, const aipc_shm_ref *refs, size_t n)
{
    uint32_t sizes[AIPC_SHM_DONE_MAX];
    size_t k = 0;
    int rc = 0;
    AcquireSRWLockExclusive(L->own.lock);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t j = 0;
        while (j < L->nout && (L->out[j].seg != refs[i].seg || L->out[j].off != refs[i].off))
            j++;
        aipc__shm_tx *t = j < L->nout && !L->out[j].reserved ? tx_find(L, refs[i].seg) : NULL;
        if (!t || aipc_shm_ring_release(&t->ring, refs[i].off) != 0) {
            rc = AIPC_EPROTO;              /* a release of nothing we sent (or not yet sent) */
            break;
        }
        sizes[k++] = L->out[j].len;
        L->held -= (uint64_t)L->out[j].len + AIPC_HDR_SIZE;
        memmove(L->out + j, L->out + j + 1, (L->nout - j - 1) * sizeof *L->out);
        L->nout--;
    }
    ReleaseSRWLockExclusive(L->own.lock);
    if (k && L->own.released)
        L->own.released(L->own.ctx, sizes, k);
    return rc;
}

int aipc__shm_link_ctl(aipc__shm_link *L, const aipc_shm_ctl *c, const aipc_shm_ref *refs)
{
    switch (c->op) {
    case AIPC_SHM_OP_SEG:
        return on_seg(L, c);
    case AIPC_SHM_OP_SEG_ANSWER:
        return on_answer(L, c);
    case AIPC_SHM_OP_DONE:
        return on_done(L, refs, c->nrefs);
    case AIPC_SHM_OP_UNSEG: {
        int slot;
        aipc__shm_rx *r = rx_find(L, c->seg, &slot);
        if (!r)
            return AIPC_EPROTO;
        L->rx[slot] = NULL;
        aipc__shm_rx_drop(r);
        return 0;
    }
    default:
        return AIPC_EPROTO;
    }
}

int aipc__shm_link_resolve(aipc__shm_link *L, const aipc_shm_desc *d, uint8_t **data,
                           aipc__shm_rx **rx)
{
    int slot = 0;
    aipc__shm_rx *r = rx_find(L, d->seg, &slot);
    if (!r || d->off >= r->seg.size || d->len >= r->seg.size - d->off)
        return AIPC_EPROTO;               /* the payload and its spare byte lie in the view */
    *data = r->seg.view + d->off;
    *rx = r;
    InterlockedIncrement64(&L->st_recv);
    return 0;
}

int aipc__shm_link_release_locked(aipc__shm_link *L, uint32_t gen, uint32_t seg, uint32_t off)
{
    int first = 0;
    if (gen == L->gen) {
        if (L->ndone == L->capdone) {
            size_t cap = L->capdone ? L->capdone * 2 : 64;
            aipc_shm_ref *n = realloc(L->done, cap * sizeof *n);
            if (n) {
                L->done = n;
                L->capdone = cap;
            }
        }
        if (L->ndone < L->capdone) {       /* out of memory: the peer keeps the slot (bounded) */
            first = L->ndone == 0;
            L->done[L->ndone].seg = seg;
            L->done[L->ndone].off = off;
            L->ndone++;
        }
    }
    return first;
}

int aipc__shm_link_release(aipc__shm_link *L, aipc__shm_rx *rx, uint32_t gen, uint32_t seg,
                           uint32_t off)
{
    AcquireSRWLockExclusive(L->own.lock);
    int first = aipc__shm_link_release_locked(L, gen, seg, off);
    ReleaseSRWLockExclusive(L->own.lock);
    aipc__shm_rx_drop(rx);
    return first;
}

/* ---- reset, counters ---------------------------------------------------------------------------- */

void aipc__shm_link_reset(aipc__shm_link *L)
{
    aipc__shm_tx *tx[AIPC__SHM_TX_MAX];
    AcquireSRWLockExclusive(L->own.lock);
    int ntx = 0;
    for (int i = 0; i < L->ntx; i++) {
        if (L->tx[i]->lent)
            L->tx[i]->retired = 1;         /* the application still fills a slot of it */
        else
            tx[ntx++] = L->tx[i];
    }
    memset(L->tx, 0, sizeof L->tx);
    L->ntx = 0;
    L->pool_bytes = 0;
    L->nout = 0;
    L->held = 0;
    L->grow_want = 0;
    L->ndone = 0;
    L->gen++;
    L->active = 0;
    ReleaseSRWLockExclusive(L->own.lock);
    for (int i = 0; i < ntx; i++) {
        aipc__shm_seg_close(&tx[i]->seg);
        free(tx[i]);
    }
    for (int i = 0; i < AIPC__SHM_RX_MAX; i++)
        if (L->rx[i]) {
            aipc__shm_rx_drop(L->rx[i]);             /* a message not released yet may keep it a while */
            L->rx[i] = NULL;
        }
    free(L->peer);
    L->peer = NULL;
    L->peer_session_known = 0;
    L->refusals = 0;
    L->next_id = 0;
}

void aipc__shm_link_free(aipc__shm_link *L)
{
    if (L->own.lock)                       /* (never initialised: nothing to reset) */
        aipc__shm_link_reset(L);
    free(L->out);
    free(L->done);
    free(L->rcopy);
    L->out = NULL;
    L->done = NULL;
    L->rcopy = NULL;
    L->rcopy_cap = 0;
}

void aipc__shm_link_counts(aipc__shm_link *L, aipc__shm_counts *c)
{
    AcquireSRWLockShared(L->own.lock);
    uint64_t held = 0;
    for (size_t i = 0; i < L->nout; i++)
        held += L->out[i].len;
    uint32_t segs = 0;
    uint64_t pinned = 0;
    for (int i = 0; i < L->ntx; i++) {
        segs += L->tx[i]->state == TX_OK;
        pinned += aipc_shm_ring_pinned(&L->tx[i]->ring);
    }
    ReleaseSRWLockShared(L->own.lock);
    uint32_t peer = 0;
    for (int i = 0; i < AIPC__SHM_RX_MAX; i++)   /* [io]: a racy but harmless count */
        peer += L->rx[i] != NULL;
    c->held = held;
    c->segs = segs;
    c->peer_segs = peer;
    c->pinned = pinned;
    c->sent = (uint64_t)InterlockedCompareExchange64(&L->st_sent, 0, 0);
    c->recv = (uint64_t)InterlockedCompareExchange64(&L->st_recv, 0, 0);
    c->fallback = (uint64_t)InterlockedCompareExchange64(&L->st_fallback, 0, 0);
    c->mapfail = (uint64_t)InterlockedCompareExchange64(&L->st_mapfail, 0, 0);
}
