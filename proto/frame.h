/*
 * frame.h - wire protocol v1 frame codec (portable: no I/O, no <windows.h>).
 *
 * A frame is an 8-byte header {u32 meta_len, u32 payload_len} (little-endian), then meta_len
 * bytes of JSON meta, then payload_len payload bytes. The decoder is incremental: feed it
 * whatever bytes a read returned; it calls back once per whole frame. Frames that lie wholly
 * inside the fed buffer are delivered in place (no copy); a frame split across reads is
 * assembled in a buffer allocated only after the header passed the size limits, and grown with
 * the bytes that actually arrive (a peer cannot reserve memory by merely declaring a size).
 */
#ifndef AIPC_PROTO_FRAME_H
#define AIPC_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC_HDR_SIZE 8u
/* First allocation for a split frame; the buffer then grows geometrically as bytes arrive. */
#define AIPC_DECODER_INITIAL 65536u

/* The on-wire header. Compile-time checked to be exactly 8 bytes with no padding. */
typedef struct aipc_wire_header {
    uint8_t meta_len[4];
    uint8_t payload_len[4];
} aipc_wire_header;

/* Writes the 8-byte little-endian header for (meta_len, payload_len) into out. */
void aipc_frame_put_header(uint8_t out[AIPC_HDR_SIZE], uint32_t meta_len, uint32_t payload_len);
/* Reads a header. */
void aipc_frame_get_header(const uint8_t in[AIPC_HDR_SIZE], uint32_t *meta_len,
                           uint32_t *payload_len);

/* Called once per whole frame; meta/payload are valid only during the call and are followed
 * by one readable NUL byte each when they were assembled (not guaranteed for in-place frames).
 * Return 0 to continue, non-zero to stop decoding (feed returns that value). */
typedef int (*aipc_frame_cb)(void *ctx, const uint8_t *meta, uint32_t meta_len,
                             const uint8_t *payload, uint32_t payload_len);

/* Where a decoder's assembly blocks come from (and an owner's other memory, e.g. the broker's
 * frames): alloc/realloc/free with the C library's contract (realloc of NULL allocates) and ctx
 * passed back. An owner sets aipc_decoder.alloc after aipc_decoder_init; NULL = the CRT's
 * malloc/realloc/free. The struct must outlive the decoder and every block adopted from it. */
typedef struct aipc_allocator {
    void *(*alloc)(void *ctx, size_t n);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
    void *ctx;
} aipc_allocator;

typedef struct aipc_decoder {
    uint32_t max_meta;       /* limits, checked before any allocation */
    uint32_t max_payload;
    /* private */
    uint8_t  hdr[AIPC_HDR_SIZE];
    uint32_t hdr_have;       /* header bytes buffered (0..8) */
    uint32_t meta_len, payload_len;
    uint8_t *body;           /* assembly buffer: meta, NUL, payload, NUL */
    uint64_t body_need, body_have;  /* meta_len + payload_len, and how much is here */
    size_t   body_cap;       /* bytes allocated for body (grows with the data, not the header) */
    int      error;          /* sticky: once a stream is bad it stays bad */
    uint32_t adopt_gap;      /* 0, or set by an owner that adopts frames (aipc_decoder_adopt) */
    size_t   keep_max;       /* 0, or set by an owner that reuses blocks (see below) */
    const aipc_allocator *alloc; /* NULL (CRT), or set by an owner before the first feed */
    /* private */
    uint32_t gap;            /* adopt_gap of the frame being assembled */
    uint8_t *cur;            /* while an assembled frame is being delivered: its block */
    uint8_t *spare;          /* keep_max: the block of the last assembled frame, for the next */
    size_t   spare_cap;
} aipc_decoder;

/* Initialises a decoder with the given limits (0 = protocol defaults: 64 KiB meta, 16 MiB). */
void aipc_decoder_init(aipc_decoder *d, uint32_t max_meta, uint32_t max_payload);
/* Frees the assembly buffer, if any. The decoder may be re-initialised afterwards. */
void aipc_decoder_free(aipc_decoder *d);
/*
 * Feeds `len` bytes. Returns 0 when all bytes were consumed; AIPC_ETOOBIG if a header exceeds
 * the limits, AIPC_ENOMEM on allocation failure (the stream is then unusable: close it); or
 * the callback's non-zero value if it asked to stop (the remaining bytes are not consumed:
 * the decoder must not be fed again for this stream unless the caller re-feeds from
 * *consumed).
 */
int aipc_decoder_feed(aipc_decoder *d, const uint8_t *data, size_t len, aipc_frame_cb cb,
                      void *ctx, size_t *consumed);
/* True when the decoder holds a partial frame (a stream that ends now was truncated). */
int aipc_decoder_partial(const aipc_decoder *d);
/*
 * Zero-copy hint for large frames: when a partial frame's body is being assembled, returns
 * where the next bytes should go and how many are still missing, so a reader can read straight
 * into the frame instead of into its own buffer. Returns NULL when no body is being assembled.
 * `want` may be less than what the frame still misses (the buffer grows step by step); ask
 * again after each commit. After reading n <= want bytes there, call
 * aipc_decoder_commit(d, n, cb, ctx).
 */
uint8_t *aipc_decoder_direct(aipc_decoder *d, size_t *want);
int aipc_decoder_commit(aipc_decoder *d, size_t n, aipc_frame_cb cb, void *ctx);

/*
 * Taking over an assembled frame's memory (zero-copy forwarding). An owner that sets
 * d->adopt_gap = G > 0 after aipc_decoder_init promises that the decoder outlives every
 * callback it makes (it is not freed from inside one). Assembled frames are then laid out as
 * meta, NUL, G spare bytes, payload, NUL - the spare bytes let the owner put a new header and
 * meta right before the payload without touching the meta it is still reading. Inside the
 * callback of an assembled frame (not one delivered in place), aipc_decoder_adopt returns the
 * block that holds it and the caller owns it (free() it, or d->alloc->free when set); the payload pointer the callback got
 * stays valid, with G writable bytes before it (after the meta's NUL). Returns NULL for
 * in-place frames, outside a callback, when adopt_gap is 0 or when the block was taken
 * already. With adopt_gap 0 (the default) nothing changes for a decoder's users.
 */
uint8_t *aipc_decoder_adopt(aipc_decoder *d);

/*
 * Reusing assembly blocks (large frames without an allocation each). An owner that sets
 * d->keep_max = K > 0 after aipc_decoder_init promises, as for adopt_gap, that the decoder
 * outlives every callback it makes. The block of a delivered assembled frame (not adopted) of
 * at most K bytes is then kept and the next assembled frame that fits in it (and is not much
 * smaller) is assembled there: a stream of large frames reads each one whole into a block it
 * already holds (aipc_decoder_direct offers the whole rest of the frame). The decoder then
 * holds at most K bytes beyond its frame in progress, all of it memory that frames already
 * filled (a header alone never reserves it); aipc_decoder_free releases it.
 */

/*
 * Reading a whole large frame into a block the owner already has (one read instead of a
 * header read plus a direct read). For an owner with adopt_gap >= 7, at a frame boundary
 * (aipc_decoder_partial is 0): the wire bytes read at block + aipc_decoder_land_offset(d) put
 * the payload exactly where an assembled frame's payload goes (meta, NUL, gap, payload, NUL),
 * whatever the meta's length. After reading n bytes there, aipc_decoder_land(d, block, cap, n,
 * allow_partial, cb, ctx, &taken):
 *   - if they hold a valid header and the whole meta, the frame fits in cap bytes, and either
 *     the frame is complete (n is exactly its size) or allow_partial is set, the block becomes
 *     the frame's assembly buffer (*taken = 1: the decoder owns it from now on, as if it had
 *     allocated it; a complete frame is delivered at once, adoptable like any assembled one,
 *     and a partial one goes on through aipc_decoder_direct/commit or feed);
 *   - otherwise the n bytes are fed like aipc_decoder_feed input (*taken = 0: the block is
 *     still the caller's). Returns what aipc_decoder_feed/commit would.
 * aipc_decoder_land_offset returns SIZE_MAX when the decoder cannot land (adopt_gap < 7).
 */
size_t aipc_decoder_land_offset(const aipc_decoder *d);
int aipc_decoder_land(aipc_decoder *d, uint8_t *block, size_t cap, size_t n, int allow_partial,
                      aipc_frame_cb cb, void *ctx, int *taken);

/* Total encoded size of a frame, or 0 if over the protocol limits of the types. */
uint64_t aipc_frame_size(uint32_t meta_len, uint64_t payload_len);

#ifdef __cplusplus
}
#endif
#endif
