/*
 * test_bus_shm_decline.c - clients that decline shared memory are still served, inline, next to
 * one that takes it: a real broker process; a publisher P and a subscriber S with shared memory
 * (AIPC_SHM_AUTO), a bus client O with AIPC_SHM_OFF (no "shm" in its hello) and a raw-protocol
 * client R (tests/win/broker/raw_proto.c: an independent implementation whose hello has no
 * "shm"). _i picks the engines (P and O on one, S on the other).
 *   - welcomes: P and S agree shared memory (shm_active, broker shm_clients 2), O does not, R's
 *     welcome carries no "shm" member;
 *   - P publishes 10 B, threshold - 1, threshold, 1 MiB and 4 MiB payloads, three rounds: S, O
 *     and R get every one, in order and byte-exact; S's large ones came shared (shm_recv), O's
 *     and R's inline (O's counters stay 0; R's frames are `msg` with the payload, no "shm");
 *   - direct messages from P to O and to R, and a request from P to O with O's echo, inline at
 *     O and R, byte-exact;
 *   - O publishes large payloads: it never sends shared (shm_sent 0), S and R get them exact;
 *   - the broker mapped every client segment (shm_map_failures 0), and its inline fallbacks
 *     are S's only (S's shared plus the fallbacks during the burst = S's large payloads).
 */
#include "bus_shm_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t sizes[] = {10, BS_THR - 1, BS_THR, BS_MIB, 4 * BS_MIB};
#define NSIZES 5
#define ROUNDS 3
#define NPUB (NSIZES * ROUNDS)

/* R's next frame must be op `op` carrying `size` bytes of pattern `seed`, inline. */
static void raw_expect_payload(raw_conn *r, const char *op, uint32_t size, uint32_t seed)
{
    raw_frame f;
    int rc = raw_expect(r, &f, op, -1, BS_W);
    ck_assert_msg(rc == 1, "raw client: no %s of %u bytes (%d)", op, size, rc);
    ck_assert_msg(cJSON_GetObjectItemCaseSensitive(f.meta, "shm") == NULL,
                  "a shared-memory descriptor to a client that did not offer it: %s", f.meta_text);
    ck_assert_uint_eq(f.payload_len, size);
    ck_assert_msg(aipc_pattern_check(f.payload, size, seed) == -1, "raw %s of %u bytes differs", op, size);
    raw_frame_free(&f);
}

/* c kept exactly n payloads, the i-th of psizes[i] bytes and pattern seeds[i], in order. */
static void check_kept(bt_client *c, const char *who, const uint32_t *psizes, const uint32_t *seeds,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bt_msg *m = bt_kept(c, i);
        ck_assert_msg(m != NULL, "%s: message %u missing", who, (unsigned)i);
        ck_assert_msg(m->len == psizes[i] && aipc_pattern_check(m->data, m->len, seeds[i]) == -1,
                      "%s: message %u (%u bytes) came wrong (%u bytes)", who, (unsigned)i,
                      psizes[i], (unsigned)m->len);
    }
    ck_assert_ptr_null(bt_kept(c, n));
}

START_TEST(decliners_served_inline_beside_a_shm_subscriber)
{
    bs_broker b;
    bs_broker_start(&b, "bshm-decline", "\"max_queue_bytes\":67108864");
    PipeImplType e1 = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, e2 = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    char np[32], ns[32], no[32], nr[32], topic[96];
    snprintf(np, sizeof np, "declP%d", _i);
    snprintf(ns, sizeof ns, "declS%d", _i);
    snprintf(no, sizeof no, "declO%d", _i);
    snprintf(nr, sizeof nr, "declR%d", _i);
    bt_client p, s, o;
    bs_open(&p, &b, np, e1, AIPC_SHM_AUTO, 64u * BS_MIB, 1, NULL);
    bs_open(&s, &b, ns, e2, AIPC_SHM_AUTO, 64u * BS_MIB, 1, NULL);
    bs_open(&o, &b, no, e1, AIPC_SHM_OFF, 64u * BS_MIB, 1, NULL);
    /* R: hello without "shm"; its welcome has none. */
    raw_conn *r = raw_connect(b.rb.pipe, BS_W);
    ck_assert_ptr_nonnull(r);
    char hello[128];
    snprintf(hello, sizeof hello, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", nr);
    ck_assert_int_eq(raw_send(r, hello, NULL, 0, BS_W), 0);
    raw_frame wf;
    ck_assert_int_eq(raw_expect(r, &wf, "welcome", -1, BS_W), 1);
    ck_assert_msg(cJSON_GetObjectItemCaseSensitive(wf.meta, "shm") == NULL, "welcome: %s", wf.meta_text);
    raw_frame_free(&wf);
    ck_assert_uint_eq(bs_counters(&p).shm_active, 1);
    ck_assert_uint_eq(bs_counters(&s).shm_active, 1);
    ck_assert_uint_eq(bs_counters(&o).shm_active, 0);
    ck_assert_uint_eq(bs_stat(&p, "shm_clients"), 2);
    bt_client *ps[2] = {&p, &s};
    const uint32_t warm[1] = {BS_MIB};
    bs_warm_up(ps, 2, "warm", warm, 1);

    bt_unique_topic(topic, sizeof topic, "decline");
    ck_assert_int_eq(aipc_bus_subscribe(s.bus, topic), 0);
    ck_assert_int_eq(aipc_bus_subscribe(o.bus, topic), 0);
    ck_assert_int_eq(raw_sub(r, topic, 1, BS_W), 0);
    bt_client *all[3] = {&p, &s, &o};
    bs_sync(all, 3);
    aipc_bus_counters s0 = bs_counters(&s);
    uint64_t fb0 = bs_stat(&p, "shm_inline_fallbacks");   /* the warm-up's first ones */
    long long sgot = bt_get(&s, &s.msgs);
    uint8_t *buf = malloc(4 * BS_MIB);
    ck_assert_ptr_nonnull(buf);
    uint32_t psz[NPUB], seeds[NPUB];
    size_t nbig = 0;
    for (size_t i = 0; i < NPUB; i++) {
        psz[i] = sizes[i % NSIZES];
        seeds[i] = 500u + (uint32_t)i + 100u * (uint32_t)_i;
        nbig += psz[i] >= BS_THR;
        aipc_pattern_fill(buf, psz[i], seeds[i]);
        bs_publish(&p, topic, buf, psz[i]);
    }
    ck_assert(bt_wait(&s, &s.msgs, sgot + NPUB, BS_W));
    ck_assert(bt_wait(&o, &o.msgs, NPUB, BS_W));
    for (size_t i = 0; i < NPUB; i++)
        raw_expect_payload(r, "msg", psz[i], seeds[i]);
    check_kept(&s, "shm subscriber", psz, seeds, NPUB);
    check_kept(&o, "AIPC_SHM_OFF subscriber", psz, seeds, NPUB);
    bs_sync(all, 3);
    bs_sync(all, 3);
    aipc_bus_counters s1 = bs_counters(&s), k = bs_counters(&o);
    /* S's large ones went shared, except those the broker had no confirmed room for (a burst
     * can outgrow a segment: the new one is used once S confirmed it), counted as fallbacks;
     * O and R are not shared-memory clients: never a fallback of theirs. */
    uint64_t fb1 = bs_stat(&p, "shm_inline_fallbacks");
    ck_assert_msg(s1.shm_recv - s0.shm_recv + (fb1 - fb0) == nbig && s1.shm_recv - s0.shm_recv > 0,
                  "shm subscriber: %llu of %u shared, %llu fallbacks",
                  (unsigned long long)(s1.shm_recv - s0.shm_recv), (unsigned)nbig,
                  (unsigned long long)(fb1 - fb0));
    ck_assert_uint_eq(k.shm_recv, 0);
    ck_assert_uint_eq(k.shm_sent, 0);
    ck_assert_uint_eq(k.shm_peer_segments, 0);
    ck_assert_uint_eq(k.shm_segments, 0);
    bt_clear(&s);
    bt_clear(&o);

    /* Directs to O and R, a request to O (echoed): inline, exact. */
    for (size_t i = 0; i < NSIZES; i++) {
        uint32_t seed = 900u + (uint32_t)i;
        aipc_pattern_fill(buf, sizes[i], seed);
        ck_assert_int_eq(aipc_bus_send(p.bus, no, buf, sizes[i]), 0);
        ck_assert_int_eq(aipc_bus_send(p.bus, nr, buf, sizes[i]), 0);
        ck_assert(bt_wait(&o, &o.directs, (long long)i + 1, BS_W));
        raw_expect_payload(r, "direct", sizes[i], seed);
        bt_reply rep;
        bt_reply_init(&rep);
        ck_assert_int_gt(aipc_bus_request(p.bus, no, buf, sizes[i], BS_W, bt_on_reply, &rep), 0);
        ck_assert(bt_reply_wait(&rep, BS_W));
        ck_assert_int_eq(rep.status, 0);
        ck_assert_uint_eq(rep.len, sizes[i]);
        ck_assert_msg(aipc_pattern_check(rep.data, sizes[i], seed) == -1, "echo of %u bytes", sizes[i]);
        bt_reply_free(&rep);
    }
    ck_assert_uint_eq(bt_get(&o, &o.requests), NSIZES);
    for (size_t i = 0; i < 2 * NSIZES; i++) {          /* direct, request, direct, ... */
        bt_msg *m = bt_kept(&o, i);
        ck_assert_ptr_nonnull(m);
        ck_assert_msg(m->len == sizes[i / 2] && aipc_pattern_check(m->data, m->len, 900u + (uint32_t)(i / 2)) == -1,
                      "O's %s %u came wrong", i % 2 ? "request" : "direct", (unsigned)(i / 2));
    }
    bt_clear(&o);

    /* O publishes large ones: never shared from O; S and R get them exact. */
    ck_assert_int_eq(aipc_bus_unsubscribe(o.bus, topic), 0);
    long long sbase = bt_get(&s, &s.msgs);
    for (size_t i = 2; i < NSIZES; i++) {
        aipc_pattern_fill(buf, sizes[i], 700u + (uint32_t)i);
        bs_publish(&o, topic, buf, sizes[i]);
    }
    ck_assert(bt_wait(&s, &s.msgs, sbase + NSIZES - 2, BS_W));
    for (size_t i = 2; i < NSIZES; i++) {
        raw_expect_payload(r, "msg", sizes[i], 700u + (uint32_t)i);
        bt_msg *m = bt_kept(&s, i - 2);
        ck_assert_ptr_nonnull(m);
        ck_assert(m->len == sizes[i] && aipc_pattern_check(m->data, m->len, 700u + (uint32_t)i) == -1);
    }
    bs_sync(all, 3);
    k = bs_counters(&o);
    ck_assert_uint_eq(k.shm_sent, 0);
    ck_assert_uint_eq(k.shm_fallback, 0);          /* not eligible: shared memory is off */
    ck_assert_uint_eq(bs_stat(&p, "shm_map_failures"), 0);
    ck_assert_msg(!p.error[0] && !s.error[0] && !o.error[0], "%s / %s / %s", p.error, s.error, o.error);
    ck_assert_int_eq(r->closed, 0);
    free(buf);
    raw_close(r);
    ck_assert(bt_close(&p));
    ck_assert(bt_close(&s));
    ck_assert(bt_close(&o));
    bs_broker_stop(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bus_shm_decline");
    TCase *tc = tcase_create("decline");
    tcase_set_timeout(tc, 0);
    tcase_add_checked_fixture(tc, NULL, bs_teardown);
    tcase_add_loop_test(tc, decliners_served_inline_beside_a_shm_subscriber, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
