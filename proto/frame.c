/* frame.c - wire protocol v1 frame codec (see frame.h). Portable C11. */
#include "proto/frame.h"
#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(aipc_wire_header) == AIPC_HDR_SIZE, "wire header must be 8 bytes");
_Static_assert(AIPC_HDR_SIZE == AIPC_FRAME_HEADER_SIZE, "header size mismatch with public API");

static void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void aipc_frame_put_header(uint8_t out[AIPC_HDR_SIZE], uint32_t meta_len, uint32_t payload_len)
{
    put_u32le(out, meta_len);
    put_u32le(out + 4, payload_len);
}

void aipc_frame_get_header(const uint8_t in[AIPC_HDR_SIZE], uint32_t *meta_len, uint32_t *payload_len)
{
    *meta_len = get_u32le(in);
    *payload_len = get_u32le(in + 4);
}

uint64_t aipc_frame_size(uint32_t meta_len, uint64_t payload_len)
{
    if (payload_len > UINT32_MAX)
        return 0;
    return (uint64_t)AIPC_HDR_SIZE + meta_len + payload_len;
}

/* The decoder's allocation, through the owner's hook when it set one. */
static void *blk_alloc(const aipc_decoder *d, size_t n)
{
    return d->alloc ? d->alloc->alloc(d->alloc->ctx, n) : malloc(n);
}

static void *blk_realloc(const aipc_decoder *d, void *p, size_t n)
{
    return d->alloc ? d->alloc->realloc(d->alloc->ctx, p, n) : realloc(p, n);
}

static void blk_free(const aipc_decoder *d, void *p)
{
    if (!p)
        return;
    if (d->alloc)
        d->alloc->free(d->alloc->ctx, p);
    else
        free(p);
}

void aipc_decoder_init(aipc_decoder *d, uint32_t max_meta, uint32_t max_payload)
{
    memset(d, 0, sizeof *d);
    d->max_meta = max_meta ? max_meta : AIPC_MAX_META;
    d->max_payload = max_payload ? max_payload : AIPC_DEFAULT_MAX_PAYLOAD;
}

void aipc_decoder_free(aipc_decoder *d)
{
    blk_free(d, d->body);
    blk_free(d, d->spare);
    d->spare = NULL;
    d->spare_cap = 0;
    d->body = NULL;
    d->body_need = d->body_have = 0;
    d->hdr_have = 0;
}

int aipc_decoder_partial(const aipc_decoder *d)
{
    return d->hdr_have > 0 || d->body != NULL;
}

/* Validates the buffered header against the limits (before anything is allocated). */
static int check_header(aipc_decoder *d)
{
    aipc_frame_get_header(d->hdr, &d->meta_len, &d->payload_len);
    if (d->meta_len > d->max_meta || d->payload_len > d->max_payload)
        return d->error = AIPC_ETOOBIG;
    return 0;
}

/* keep_max: after its frame was delivered, keeps the block for the next frame or frees it. */
static void keep_or_free(aipc_decoder *d, uint8_t *block, size_t cap)
{
    if (!block)
        return;
    if (cap > d->keep_max || cap <= d->spare_cap) {
        blk_free(d, block);
        return;
    }
    blk_free(d, d->spare);
    d->spare = block;
    d->spare_cap = cap;
}

/* Delivers the assembled frame and resets for the next header. */
static int deliver_body(aipc_decoder *d, aipc_frame_cb cb, void *ctx)
{
    uint8_t *body = d->body;
    size_t cap = d->body_cap;
    const uint8_t *payload = body + d->meta_len + 1 + d->gap;
    d->body = NULL;
    d->body_need = d->body_have = 0;
    d->body_cap = 0;
    d->hdr_have = 0;
    /* Layout: meta, NUL, [gap], payload, NUL - both parts readable as C strings. */
    if (!d->adopt_gap && !d->keep_max) {
        /* d may be gone after the callback: only the local copies are used afterwards. */
        const aipc_allocator *al = d->alloc;
        int rc = cb(ctx, body, d->meta_len, payload, d->payload_len);
        if (al)
            al->free(al->ctx, body);
        else
            free(body);
        return rc;
    }
    d->cur = body;          /* the callback may take it (aipc_decoder_adopt) */
    int rc = cb(ctx, body, d->meta_len, payload, d->payload_len);
    if (d->keep_max)
        keep_or_free(d, d->cur, cap);
    else
        blk_free(d, d->cur);
    d->cur = NULL;
    return rc;
}

uint8_t *aipc_decoder_adopt(aipc_decoder *d)
{
    uint8_t *p = d->adopt_gap ? d->cur : NULL;
    d->cur = NULL;
    return p;
}

/* Starts assembling a frame whose header is buffered and valid. The buffer starts small and
 * grows with the bytes that actually arrive, so a peer that declares a huge frame and then
 * stalls costs AIPC_DECODER_INITIAL bytes, not the declared size. */
static int begin_body(aipc_decoder *d)
{
    uint64_t need = (uint64_t)d->meta_len + d->payload_len;
    d->gap = d->adopt_gap;
    uint64_t full = need + 2 + d->gap;
    size_t cap = full < AIPC_DECODER_INITIAL ? (size_t)full : AIPC_DECODER_INITIAL;
    /* A kept block that holds the whole frame, unless it is over 4 times its size. */
    if (d->spare && d->spare_cap >= full && d->spare_cap / 4 <= full) {
        d->body = d->spare;
        d->body_cap = d->spare_cap;
        d->spare = NULL;
        d->spare_cap = 0;
        d->body_need = need;
        d->body_have = 0;
        return 0;
    }
    d->body = blk_alloc(d, cap);
    if (!d->body)
        return d->error = AIPC_ENOMEM;
    d->body_cap = cap;
    d->body_need = need;
    d->body_have = 0;
    return 0;
}

/* Makes room for `more` further body bytes (plus the two NULs and the gap), growing
 * geometrically but never beyond the frame's final size. */
static int body_reserve(aipc_decoder *d, uint64_t more)
{
    uint64_t final_size = d->body_need + 2 + d->gap;
    uint64_t want = d->body_have + more + 2 + d->gap;
    if (want <= d->body_cap)
        return 0;
    uint64_t cap = (uint64_t)d->body_cap * 2;
    if (cap < want)
        cap = want;
    if (cap > final_size)
        cap = final_size;
    uint8_t *p = blk_realloc(d, d->body, (size_t)cap);
    if (!p)
        return d->error = AIPC_ENOMEM;
    d->body = p;
    d->body_cap = (size_t)cap;
    return 0;
}

/* Copies body bytes, keeping the NUL gap between meta and payload. */
static void body_copy(aipc_decoder *d, const uint8_t *src, size_t n)
{
    while (n > 0) {
        uint64_t at = d->body_have;
        size_t chunk;
        uint8_t *dst;
        if (at < d->meta_len) {
            chunk = (size_t)(d->meta_len - at);
            dst = d->body + at;
        } else {
            chunk = (size_t)(d->body_need - at);
            dst = d->body + at + 1 + d->gap;
        }
        if (chunk > n)
            chunk = n;
        memcpy(dst, src, chunk);
        d->body_have += chunk;
        src += chunk;
        n -= chunk;
    }
    if (d->body_have == d->body_need) {
        d->body[d->meta_len] = 0;
        d->body[d->body_need + 1 + d->gap] = 0;
    }
}

int aipc_decoder_feed(aipc_decoder *d, const uint8_t *data, size_t len, aipc_frame_cb cb,
                      void *ctx, size_t *consumed)
{
    size_t pos = 0;
    int rc = d->error;
    while (rc == 0 && pos < len) {
        if (d->body) {                               /* continuing a split frame */
            uint64_t missing = d->body_need - d->body_have;
            size_t n = (len - pos) < missing ? (len - pos) : (size_t)missing;
            if ((rc = body_reserve(d, n)) != 0)
                break;
            body_copy(d, data + pos, n);
            pos += n;
            if (d->body_have == d->body_need)
                rc = deliver_body(d, cb, ctx);
            continue;
        }
        if (d->hdr_have == 0 && len - pos >= AIPC_HDR_SIZE) {
            /* Fast path: a header in place; maybe the whole frame too. */
            memcpy(d->hdr, data + pos, AIPC_HDR_SIZE);
            if ((rc = check_header(d)) != 0)
                break;
            uint64_t body = (uint64_t)d->meta_len + d->payload_len;
            if (len - pos - AIPC_HDR_SIZE >= body) {
                const uint8_t *m = data + pos + AIPC_HDR_SIZE;
                pos += AIPC_HDR_SIZE + (size_t)body;
                rc = cb(ctx, m, d->meta_len, m + d->meta_len, d->payload_len);
                continue;
            }
            pos += AIPC_HDR_SIZE;
            d->hdr_have = AIPC_HDR_SIZE;
        } else {
            size_t n = AIPC_HDR_SIZE - d->hdr_have;
            if (n > len - pos)
                n = len - pos;
            memcpy(d->hdr + d->hdr_have, data + pos, n);
            d->hdr_have += (uint32_t)n;
            pos += n;
            if (d->hdr_have < AIPC_HDR_SIZE)
                break;
            if ((rc = check_header(d)) != 0)
                break;
        }
        /* Header complete, body incomplete (or empty). */
        if ((uint64_t)d->meta_len + d->payload_len == 0) {
            d->hdr_have = 0;
            rc = cb(ctx, (const uint8_t *)"", 0, (const uint8_t *)"", 0);
            continue;
        }
        rc = begin_body(d);
    }
    if (consumed)
        *consumed = pos;
    return rc;
}

uint8_t *aipc_decoder_direct(aipc_decoder *d, size_t *want)
{
    /* Only the payload part is contiguous; meta goes through the normal path. */
    if (!d->body || d->error || d->body_have < d->meta_len) {
        *want = 0;
        return NULL;
    }
    uint64_t missing = d->body_need - d->body_have;
    /* Offer at most what the buffer can hold after one growth step: memory follows the bytes
     * that really arrive, whatever size the header declared. */
    uint64_t step = d->body_have > AIPC_DECODER_INITIAL ? d->body_have : AIPC_DECODER_INITIAL;
    if (step > missing)
        step = missing;
    if (body_reserve(d, step) != 0) {
        *want = 0;
        return NULL;
    }
    uint64_t room = d->body_cap - 2 - d->gap - d->body_have;   /* a kept block may be larger */
    *want = (size_t)(room < missing ? room : missing);
    return d->body + d->body_have + 1 + d->gap;
}

int aipc_decoder_commit(aipc_decoder *d, size_t n, aipc_frame_cb cb, void *ctx)
{
    if (!d->body || n > d->body_cap - 2 - d->gap - d->body_have || d->body_have < d->meta_len ||
        n > d->body_need - d->body_have)
        return AIPC_EINVAL;
    d->body_have += n;
    if (d->body_have < d->body_need)
        return 0;
    d->body[d->meta_len] = 0;
    d->body[d->body_need + 1 + d->gap] = 0;
    return deliver_body(d, cb, ctx);
}

size_t aipc_decoder_land_offset(const aipc_decoder *d)
{
    return d->adopt_gap >= AIPC_HDR_SIZE - 1 ? (size_t)d->adopt_gap + 1 - AIPC_HDR_SIZE
                                              : SIZE_MAX;
}

int aipc_decoder_land(aipc_decoder *d, uint8_t *block, size_t cap, size_t n, int allow_partial,
                      aipc_frame_cb cb, void *ctx, int *taken)
{
    size_t off = aipc_decoder_land_offset(d);
    const uint8_t *data = block + off;
    *taken = 0;
    if (off == SIZE_MAX || aipc_decoder_partial(d) || d->error || n < AIPC_HDR_SIZE)
        return aipc_decoder_feed(d, data, n, cb, ctx, NULL);
    uint32_t ml, pl;
    aipc_frame_get_header(data, &ml, &pl);
    uint64_t need = (uint64_t)ml + pl;
    uint64_t wire = AIPC_HDR_SIZE + need;
    uint64_t full = need + 2 + d->adopt_gap;    /* begin_body's size of the assembled frame */
    if (ml > d->max_meta || pl > d->max_payload || need == 0 || full > cap ||
        n < AIPC_HDR_SIZE + (uint64_t)ml || n > wire || (n < wire && !allow_partial))
        return aipc_decoder_feed(d, data, n, cb, ctx, NULL);
    /* Meta to the block's start (it may overlap where it lies: memmove), then its NUL; the
     * payload already lies at meta_len + 1 + gap (off + 8 + ml). */
    memcpy(d->hdr, data, AIPC_HDR_SIZE);
    d->meta_len = ml;
    d->payload_len = pl;
    memmove(block, data + AIPC_HDR_SIZE, ml);
    d->hdr_have = AIPC_HDR_SIZE;
    d->gap = d->adopt_gap;
    d->body = block;
    d->body_cap = cap;
    d->body_need = need;
    d->body_have = n - AIPC_HDR_SIZE;
    *taken = 1;
    if (d->body_have < d->body_need)
        return 0;
    d->body[d->meta_len] = 0;
    d->body[d->body_need + 1 + d->gap] = 0;
    return deliver_body(d, cb, ctx);
}
