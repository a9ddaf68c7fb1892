/* test_frame.c - the portable frame decoder: whole/split frames, limits, errors. */
#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "proto/frame.h"
#include "test_count_alloc.h"

typedef struct {
    int count;
    int stop_after;           /* stop (return 1) after this many frames; 0 = never */
    uint32_t meta_len[64], payload_len[64];
    uint8_t *payload[64];
    char meta[64][32];
} sink;

static int on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    sink *s = ctx;
    int i = s->count++;
    if (i < 64) {
        s->meta_len[i] = ml;
        s->payload_len[i] = pn;
        memcpy(s->meta[i], meta, ml < 31 ? ml : 31);
        s->meta[i][ml < 31 ? ml : 31] = 0;
        s->payload[i] = malloc(pn + 1);
        memcpy(s->payload[i], pl, pn);
    }
    return (s->stop_after && s->count >= s->stop_after) ? 1 : 0;
}

static void sink_free(sink *s)
{
    for (int i = 0; i < s->count && i < 64; i++)
        free(s->payload[i]);
}

/* Appends a frame to buf at *len. */
static void put_frame(uint8_t *buf, size_t *len, const char *meta, const void *pl, uint32_t pn)
{
    uint32_t ml = (uint32_t)strlen(meta);
    aipc_frame_put_header(buf + *len, ml, pn);
    memcpy(buf + *len + 8, meta, ml);
    memcpy(buf + *len + 8 + ml, pl, pn);
    *len += 8 + ml + pn;
}

START_TEST(header_roundtrip_little_endian)
{
    uint8_t h[8];
    aipc_frame_put_header(h, 0x01020304u, 0xA0B0C0D0u);
    const uint8_t want[8] = {4, 3, 2, 1, 0xD0, 0xC0, 0xB0, 0xA0};
    ck_assert_mem_eq(h, want, 8);
    uint32_t m, p;
    aipc_frame_get_header(h, &m, &p);
    ck_assert_uint_eq(m, 0x01020304u);
    ck_assert_uint_eq(p, 0xA0B0C0D0u);
}
END_TEST

START_TEST(many_frames_in_one_buffer)
{
    uint8_t buf[4096];
    size_t len = 0;
    put_frame(buf, &len, "", "hello", 5);
    put_frame(buf, &len, "{\"op\":\"ping\"}", "", 0);
    put_frame(buf, &len, "", "", 0);
    put_frame(buf, &len, "{}", "\0a\0b", 4);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    sink s = {0};
    size_t used = 0;
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, len, on_frame, &s, &used), 0);
    ck_assert_uint_eq(used, len);
    ck_assert_int_eq(s.count, 4);
    ck_assert_uint_eq(s.payload_len[0], 5);
    ck_assert_mem_eq(s.payload[0], "hello", 5);
    ck_assert_str_eq(s.meta[1], "{\"op\":\"ping\"}");
    ck_assert_uint_eq(s.payload_len[1], 0);
    ck_assert_uint_eq(s.meta_len[2], 0);
    ck_assert_uint_eq(s.payload_len[2], 0);
    ck_assert_mem_eq(s.payload[3], "\0a\0b", 4);
    ck_assert(!aipc_decoder_partial(&d));
    aipc_decoder_free(&d);
    sink_free(&s);
}
END_TEST

/* Every split point of a two-frame stream, fed as 1-byte, 3-byte and 2-piece chunks. */
START_TEST(split_at_every_byte)
{
    uint8_t buf[256];
    size_t len = 0;
    put_frame(buf, &len, "{\"op\":\"msg\"}", "payload-one", 11);
    put_frame(buf, &len, "", "2", 1);
    for (size_t cut = 0; cut <= len; cut++) {
        aipc_decoder d;
        aipc_decoder_init(&d, 0, 0);
        sink s = {0};
        ck_assert_int_eq(aipc_decoder_feed(&d, buf, cut, on_frame, &s, NULL), 0);
        ck_assert_int_eq(aipc_decoder_feed(&d, buf + cut, len - cut, on_frame, &s, NULL), 0);
        ck_assert_int_eq(s.count, 2);
        ck_assert_str_eq(s.meta[0], "{\"op\":\"msg\"}");
        ck_assert_mem_eq(s.payload[0], "payload-one", 11);
        ck_assert_mem_eq(s.payload[1], "2", 1);
        aipc_decoder_free(&d);
        sink_free(&s);
    }
    for (size_t step = 1; step <= 3; step += 2) {
        aipc_decoder d;
        aipc_decoder_init(&d, 0, 0);
        sink s = {0};
        for (size_t i = 0; i < len; i += step) {
            size_t n = len - i < step ? len - i : step;
            ck_assert_int_eq(aipc_decoder_feed(&d, buf + i, n, on_frame, &s, NULL), 0);
        }
        ck_assert_int_eq(s.count, 2);
        ck_assert_mem_eq(s.payload[0], "payload-one", 11);
        aipc_decoder_free(&d);
        sink_free(&s);
    }
}
END_TEST

START_TEST(oversize_rejected_before_allocation)
{
    aipc_decoder d;
    aipc_decoder_init(&d, 16, 1024);
    uint8_t h[8];
    sink s = {0};
    aipc_frame_put_header(h, 0, 1025);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, 8, on_frame, &s, NULL), AIPC_ETOOBIG);
    ck_assert_ptr_null(d.body);           /* nothing allocated for the bad frame */
    /* sticky: the stream stays failed */
    aipc_frame_put_header(h, 0, 1);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, 8, on_frame, &s, NULL), AIPC_ETOOBIG);
    aipc_decoder_free(&d);

    aipc_decoder_init(&d, 16, 1024);
    aipc_frame_put_header(h, 17, 0);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, 4, on_frame, &s, NULL), 0);    /* half header */
    ck_assert_int_eq(aipc_decoder_feed(&d, h + 4, 4, on_frame, &s, NULL), AIPC_ETOOBIG);
    ck_assert_int_eq(s.count, 0);
    aipc_decoder_free(&d);

    /* The protocol default limits: 64 KiB meta, 16 MiB payload. */
    aipc_decoder_init(&d, 0, 0);
    aipc_frame_put_header(h, AIPC_MAX_META + 1, 0);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, 8, on_frame, &s, NULL), AIPC_ETOOBIG);
    aipc_decoder_free(&d);
    aipc_decoder_init(&d, 0, 0);
    aipc_frame_put_header(h, 0, 0xFFFFFFFFu);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, 8, on_frame, &s, NULL), AIPC_ETOOBIG);
    aipc_decoder_free(&d);
}
END_TEST

START_TEST(truncated_stream_is_partial)
{
    uint8_t buf[64];
    size_t len = 0;
    put_frame(buf, &len, "", "abcdef", 6);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    sink s = {0};
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, 3, on_frame, &s, NULL), 0);
    ck_assert(aipc_decoder_partial(&d));
    ck_assert_int_eq(aipc_decoder_feed(&d, buf + 3, 7, on_frame, &s, NULL), 0);
    ck_assert(aipc_decoder_partial(&d));
    ck_assert_int_eq(s.count, 0);
    aipc_decoder_free(&d);           /* frees the half-assembled body (ASan checks) */
}
END_TEST

START_TEST(callback_stop_reports_consumed)
{
    uint8_t buf[64];
    size_t len = 0;
    put_frame(buf, &len, "", "a", 1);
    put_frame(buf, &len, "", "b", 1);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    sink s = {.stop_after = 1};
    size_t used = 0;
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, len, on_frame, &s, &used), 1);
    ck_assert_uint_eq(used, 9);
    ck_assert_int_eq(s.count, 1);
    s.stop_after = 0;
    ck_assert_int_eq(aipc_decoder_feed(&d, buf + used, len - used, on_frame, &s, &used), 0);
    ck_assert_int_eq(s.count, 2);
    ck_assert_mem_eq(s.payload[1], "b", 1);
    aipc_decoder_free(&d);
    sink_free(&s);
}
END_TEST

/* Large payload assembled through the direct (zero-copy) read path. */
START_TEST(direct_read_large_payload)
{
    const uint32_t n = 1u << 20;
    uint8_t *pl = malloc(n);
    for (uint32_t i = 0; i < n; i++)
        pl[i] = (uint8_t)(i * 31 + 7);
    uint8_t head[8 + 2];
    aipc_frame_put_header(head, 2, n);
    memcpy(head + 8, "{}", 2);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    sink s = {0};
    /* header + meta + first 100 payload bytes through feed */
    ck_assert_int_eq(aipc_decoder_feed(&d, head, sizeof head, on_frame, &s, NULL), 0);
    ck_assert_int_eq(aipc_decoder_feed(&d, pl, 100, on_frame, &s, NULL), 0);
    size_t off = 100;
    while (s.count == 0) {
        size_t want;
        uint8_t *dst = aipc_decoder_direct(&d, &want);
        ck_assert_ptr_nonnull(dst);
        size_t take = want < 65536 ? want : 65536;
        memcpy(dst, pl + off, take);
        off += take;
        ck_assert_int_eq(aipc_decoder_commit(&d, take, on_frame, &s), 0);
    }
    ck_assert_uint_eq(off, n);
    ck_assert_uint_eq(s.payload_len[0], n);
    ck_assert_mem_eq(s.payload[0], pl, n);
    ck_assert_str_eq(s.meta[0], "{}");
    aipc_decoder_free(&d);
    sink_free(&s);
    free(pl);
}
END_TEST

/* A peer that declares a huge frame and stalls must not make the decoder reserve its size:
 * memory follows the bytes that actually arrive. */
START_TEST(declared_size_is_not_reserved)
{
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    uint8_t h[8 + 4];
    aipc_frame_put_header(h, 0, AIPC_DEFAULT_MAX_PAYLOAD);
    memcpy(h + 8, "abcd", 4);
    sink s = {0};
    ck_assert_int_eq(aipc_decoder_feed(&d, h, sizeof h, on_frame, &s, NULL), 0);
    ck_assert_ptr_nonnull(d.body);
    ck_assert_uint_le(d.body_cap, AIPC_DECODER_INITIAL);
    /* The direct path offers one growth step, not the whole declared size. */
    size_t want = 0;
    ck_assert_ptr_nonnull(aipc_decoder_direct(&d, &want));
    ck_assert_uint_gt(want, 0);
    ck_assert_uint_le(d.body_cap, 4u * AIPC_DECODER_INITIAL);
    ck_assert_uint_lt(want, AIPC_DEFAULT_MAX_PAYLOAD / 2);
    aipc_decoder_free(&d);

    /* Fed in 1000-byte pieces, a 16 MiB frame still arrives whole and exact. */
    const uint32_t n = AIPC_DEFAULT_MAX_PAYLOAD;
    uint8_t *frame = malloc(8 + (size_t)n);
    aipc_frame_put_header(frame, 0, n);
    for (uint32_t i = 0; i < n; i++)
        frame[8 + i] = (uint8_t)(i ^ (i >> 9));
    aipc_decoder_init(&d, 0, 0);
    for (size_t i = 0; i < 8 + (size_t)n; i += 100000) {
        size_t k = 8 + (size_t)n - i < 100000 ? 8 + (size_t)n - i : 100000;
        ck_assert_int_eq(aipc_decoder_feed(&d, frame + i, k, on_frame, &s, NULL), 0);
    }
    ck_assert_int_eq(s.count, 1);
    ck_assert_uint_eq(s.payload_len[0], n);
    ck_assert_mem_eq(s.payload[0], frame + 8, n);
    aipc_decoder_free(&d);
    sink_free(&s);
    free(frame);
}
END_TEST

/* Reads one frame (header through feed, the payload through direct/commit in reads of at most
 * `step` bytes); returns the number of direct reads it took. */
static int read_frame_direct(aipc_decoder *d, const uint8_t *pl, uint32_t n, size_t step, sink *s)
{
    uint8_t h[8];
    aipc_frame_put_header(h, 0, n);
    int before = s->count, reads = 0;
    ck_assert_int_eq(aipc_decoder_feed(d, h, sizeof h, on_frame, s, NULL), 0);
    size_t off = 0;
    while (s->count == before) {
        size_t want;
        uint8_t *dst = aipc_decoder_direct(d, &want);
        ck_assert_ptr_nonnull(dst);
        ck_assert_uint_le(want, n - off);           /* never beyond this frame */
        size_t take = want < step ? want : step;
        memcpy(dst, pl + off, take);
        off += take;
        reads++;
        ck_assert_int_eq(aipc_decoder_commit(d, take, on_frame, s), 0);
    }
    ck_assert_uint_eq(off, n);
    return reads;
}

/* keep_max: the block of a delivered frame is reused for the next frame that fits it, which is
 * then offered whole to a direct read; a larger kept block never lets a read run past its frame;
 * blocks over keep_max, or much larger than the frame, are not used; free releases the block. */
START_TEST(kept_block_reused_for_next_frame)
{
    const uint32_t big = 1u << 20;
    uint8_t *pl = malloc(big + 1000);
    for (uint32_t i = 0; i < big + 1000; i++)
        pl[i] = (uint8_t)(i * 13 + 5);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    d.keep_max = 2u * big;
    sink s = {0};
    int first = read_frame_direct(&d, pl, big, SIZE_MAX, &s);
    ck_assert_int_gt(first, 1);                      /* the first frame grows step by step */
    ck_assert_ptr_nonnull(d.spare);
    ck_assert_int_eq(read_frame_direct(&d, pl + 1, big, SIZE_MAX, &s), 1);   /* one read */
    ck_assert_ptr_nonnull(d.spare);
    /* A smaller frame in the kept block: offered exactly its own size, then a frame after it. */
    ck_assert_int_eq(read_frame_direct(&d, pl + 2, big - 1000, SIZE_MAX, &s), 1);
    uint8_t two[16];
    size_t len = 0;
    put_frame(two, &len, "", "xy", 2);
    ck_assert_int_eq(aipc_decoder_feed(&d, two, len, on_frame, &s, NULL), 0);
    /* Much smaller than the block: assembled elsewhere, the big block stays kept. */
    uint8_t *kept = d.spare;
    read_frame_direct(&d, pl + 3, 40000, 7000, &s);
    ck_assert_ptr_eq(d.spare, kept);
    ck_assert_int_eq(s.count, 5);
    ck_assert_uint_eq(s.payload_len[0], big);
    ck_assert_mem_eq(s.payload[0], pl, big);
    ck_assert_mem_eq(s.payload[1], pl + 1, big);
    ck_assert_uint_eq(s.payload_len[2], big - 1000);
    ck_assert_mem_eq(s.payload[2], pl + 2, big - 1000);
    ck_assert_uint_eq(s.payload_len[3], 2);
    ck_assert_mem_eq(s.payload[3], "xy", 2);
    ck_assert_uint_eq(s.payload_len[4], 40000);
    ck_assert_mem_eq(s.payload[4], pl + 3, 40000);
    /* A commit past the frame's end is refused. */
    uint8_t h[8];
    aipc_frame_put_header(h, 0, 100);
    ck_assert_int_eq(aipc_decoder_feed(&d, h, sizeof h, on_frame, &s, NULL), 0);
    size_t want = 0;
    ck_assert_ptr_nonnull(aipc_decoder_direct(&d, &want));
    ck_assert_uint_eq(want, 100);
    ck_assert_int_eq(aipc_decoder_commit(&d, 101, on_frame, &s), AIPC_EINVAL);
    aipc_decoder_free(&d);
    ck_assert_ptr_null(d.spare);
    sink_free(&s);

    /* Over keep_max: nothing is kept. */
    sink t = {0};
    aipc_decoder_init(&d, 0, 0);
    d.keep_max = big / 2;
    read_frame_direct(&d, pl, big, SIZE_MAX, &t);
    ck_assert_ptr_null(d.spare);
    aipc_decoder_free(&d);
    sink_free(&t);
    free(pl);
}
END_TEST

/* The allocation hook: with d.alloc set, every block the decoder assembles in (first
 * allocation, growth, the kept spare, the adopted block) comes from it and goes back to it;
 * frames delivered in place allocate nothing. */
static int adopt_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl,
                       uint32_t pn)
{
    (void)meta; (void)ml; (void)pl; (void)pn;
    aipc_decoder *d = ctx;
    uint8_t *blk = aipc_decoder_adopt(d);
    ck_assert_ptr_nonnull(blk);
    d->alloc->free(d->alloc->ctx, blk);      /* the owner frees it with the same allocator */
    return 0;
}

START_TEST(allocation_hook_used_for_every_block)
{
    static count_alloc ca;
    count_alloc_init(&ca);
    const uint32_t big = 300000;
    uint8_t *buf = malloc(big + 64);
    size_t len = 0;
    uint8_t *pl = malloc(big);
    memset(pl, 'q', big);
    put_frame(buf, &len, "{}", pl, big);
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 0);
    d.alloc = &ca.a;
    sink s = {0};
    /* In place: nothing allocated. */
    uint8_t small[64];
    size_t slen = 0;
    put_frame(small, &slen, "{}", "abc", 3);
    ck_assert_int_eq(aipc_decoder_feed(&d, small, slen, on_frame, &s, NULL), 0);
    ck_assert_uint_eq(ca.allocs + ca.reallocs, 0);
    /* Assembled in pieces: allocated, grown and freed through the hook. */
    for (size_t i = 0; i < len; i += 10000)
        ck_assert_int_eq(aipc_decoder_feed(&d, buf + i, len - i < 10000 ? len - i : 10000,
                                           on_frame, &s, NULL), 0);
    ck_assert_int_eq(s.count, 2);
    ck_assert_mem_eq(s.payload[1], pl, big);
    ck_assert_uint_ge(ca.allocs, 1);
    ck_assert_uint_ge(ca.reallocs, 1);
    ck_assert_uint_eq(ca.nblk, 0);                 /* delivered: freed through the hook */
    /* keep_max: the spare block is the hook's, released by aipc_decoder_free. */
    d.keep_max = 1u << 20;
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, len, on_frame, &s, NULL), 0);    /* in place */
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, 100, on_frame, &s, NULL), 0);
    ck_assert_int_eq(aipc_decoder_feed(&d, buf + 100, len - 100, on_frame, &s, NULL), 0);
    ck_assert_int_eq(s.count, 4);
    ck_assert_ptr_nonnull(d.spare);
    ck_assert_uint_eq(ca.nblk, 1);
    aipc_decoder_free(&d);
    ck_assert_uint_eq(ca.nblk, 0);
    /* adopt_gap: the adopted block is the hook's; a half-assembled one is freed by free. */
    size_t before = ca.frees;
    aipc_decoder_init(&d, 0, 0);
    d.alloc = &ca.a;
    d.adopt_gap = 64;
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, 100, adopt_frame, &d, NULL), 0);
    ck_assert_int_eq(aipc_decoder_feed(&d, buf + 100, len - 100, adopt_frame, &d, NULL), 0);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.frees, before + 1);       /* adopt_frame's free, not the decoder's */
    ck_assert_int_eq(aipc_decoder_feed(&d, buf, 5000, adopt_frame, &d, NULL), 0);
    ck_assert_uint_eq(ca.nblk, 1);
    aipc_decoder_free(&d);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);        /* reallocs replace their block */
    sink_free(&s);
    free(pl);
    free(buf);
}
END_TEST

START_TEST(strerror_covers_every_code)
{
    for (int c = AIPC_OK; c >= AIPC_EUNTRUSTED; c--) {
        ck_assert_str_ne(aipc_strerror(c), "unknown error");
        ck_assert_str_ne(aipc_err_name(c), "UNKNOWN");
    }
    /* names and values come from the same list */
#define CHECK_NAME(name, value, text)                          \
    ck_assert_str_eq(aipc_err_name(AIPC_##name), #name);       \
    ck_assert_str_eq(aipc_strerror(value), text);
    AIPC_ERRNO_MAP(CHECK_NAME)
#undef CHECK_NAME
    ck_assert_str_eq(aipc_err_name(AIPC_OK), "OK");
    ck_assert_str_eq(aipc_strerror(AIPC_OK), "success");
    ck_assert_str_eq(aipc_strerror(-1000), "unknown error");
    ck_assert_str_eq(aipc_strerror(5), "unknown error");
    ck_assert_str_eq(aipc_err_name(-1000), "UNKNOWN");
    ck_assert_uint_eq(aipc_version(), AIPC_VERSION);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("decoder");
    tcase_add_test(tc, header_roundtrip_little_endian);
    tcase_add_test(tc, many_frames_in_one_buffer);
    tcase_add_test(tc, split_at_every_byte);
    tcase_add_test(tc, oversize_rejected_before_allocation);
    tcase_add_test(tc, truncated_stream_is_partial);
    tcase_add_test(tc, callback_stop_reports_consumed);
    tcase_add_test(tc, direct_read_large_payload);
    tcase_add_test(tc, declared_size_is_not_reserved);
    tcase_add_test(tc, kept_block_reused_for_next_frame);
    tcase_add_test(tc, allocation_hook_used_for_every_block);
    tcase_add_test(tc, strerror_covers_every_code);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
