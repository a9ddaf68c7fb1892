/*
 * test_bus_shm_sizes.c - payloads around the threshold through the broker, byte-exact, and
 * really shared when large: a real broker process and two bus clients of this process, one on
 * each engine (PIPE_ASYNC and PIPE_OVERLAPPED, swapped by the loop index), exchange payloads of
 * threshold - 1, threshold, threshold + 1, 1 MiB and max_payload bytes, each with its own
 * pattern, through pub/sub, direct messages (send) and requests with replies, in both
 * directions. For each one: the receiver gets exactly the bytes; a payload at or above the
 * threshold moved the sender's shm_sent, the receiver's shm_recv and the broker's shm_in and
 * shm_publications by one each (a request and its reply by one each way), a smaller one moved
 * none of them, and nothing fell back inline (shm_fallback, shm_inline_fallbacks flat).
 * A warm-up first makes every pool's segments exist and be confirmed (the first payload for a
 * new segment goes inline by design: a segment is used only once its receiver confirmed it).
 * At the end the broker holds no slot and every shared delivery of every op was released
 * through the clients' release pages (docs/protocol.md section 11), none by shm_done.
 */
#include "bus_shm_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP AIPC_DEFAULT_MAX_PAYLOAD
static const uint32_t sizes[] = {BS_THR - 1, BS_THR, BS_THR + 1, BS_MIB, MAXP};
#define NSIZES (sizeof sizes / sizeof sizes[0])

enum { OP_PUB, OP_SEND, OP_REQ };
static const char *const op_name[] = {"pub", "send", "req"};

typedef struct shm_snap {
    aipc_bus_counters a, b;
    uint64_t shm_in, shm_pubs, fallbacks;
} shm_snap;

static shm_snap snap(bt_client *a, bt_client *b)
{
    shm_snap s;
    bt_client *both[2] = {a, b};
    bs_sync(both, 2);
    bs_sync(both, 2);             /* every release written and processed (bus_shm_common.h) */
    s.a = bs_counters(a);
    s.b = bs_counters(b);
    s.shm_in = bs_stat(a, "shm_in");
    s.shm_pubs = bs_stat(a, "shm_publications");
    s.fallbacks = bs_stat(a, "shm_inline_fallbacks");
    return s;
}

/* One payload of `size` bytes (pattern `seed`) from `from` to `to` by `op`; checks what arrived
 * (and, for a request, the echoed reply). */
static void one(bt_client *from, bt_client *to, const char *to_name, const char *topic, int op,
                uint8_t *buf, uint32_t size, uint32_t seed)
{
    aipc_pattern_fill(buf, size, seed);
    bt_clear(to);
    long long base = op == OP_PUB ? bt_get(to, &to->msgs) : op == OP_SEND ? bt_get(to, &to->directs)
                                                                          : bt_get(to, &to->requests);
    bt_reply r;
    bt_reply_init(&r);
    if (op == OP_PUB) {
        bs_publish(from, topic, buf, size);
        ck_assert_msg(bt_wait(to, &to->msgs, base + 1, BS_W), "publication of %u bytes", size);
    } else if (op == OP_SEND) {
        ck_assert_int_eq(aipc_bus_send(from->bus, to_name, buf, size), 0);
        ck_assert_msg(bt_wait(to, &to->directs, base + 1, BS_W), "direct of %u bytes", size);
    } else {
        ck_assert_int_gt(aipc_bus_request(from->bus, to_name, buf, size, BS_W, bt_on_reply, &r), 0);
        ck_assert_msg(bt_wait(to, &to->requests, base + 1, BS_W), "request of %u bytes", size);
        ck_assert_msg(bt_reply_wait(&r, BS_W), "reply of %u bytes", size);
        ck_assert_msg(r.status == 0, "reply to a request of %u bytes: %s (errors: requester %lld "
                      "\"%s\", replier %lld \"%s\")", size, aipc_strerror(r.status),
                      bt_get(from, &from->errors), from->last_error_code, bt_get(to, &to->errors),
                      to->last_error_code);
        ck_assert_uint_eq(r.len, size);
        ck_assert_msg(aipc_pattern_check(r.data, size, seed) == -1, "reply of %u bytes differs at %lld",
                      size, aipc_pattern_check(r.data, size, seed));
        ck_assert_int_eq(r.calls, 1);
    }
    bt_reply_free(&r);
    bt_msg *m = bt_kept(to, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(bt_kept(to, 1));
    ck_assert_uint_eq(m->len, size);
    ck_assert_ptr_nonnull(m->data);
    ck_assert_msg(aipc_pattern_check(m->data, size, seed) == -1, "%s of %u bytes differs at %lld",
                  op_name[op], size, aipc_pattern_check(m->data, size, seed));
    if (op == OP_PUB)
        ck_assert_str_eq(m->topic, topic);
    else
        ck_assert_ptr_null(m->topic);
    bt_clear(to);
    ck_assert_msg(!from->error[0] && !to->error[0], "%s / %s", from->error, to->error);
}

/* _i: 0 = A on PIPE_ASYNC and B on PIPE_OVERLAPPED, 1 = the other way round. */
START_TEST(sizes_around_threshold_every_op_both_ways)
{
    bs_broker b;
    bs_broker_start(&b, "bshm-sizes", "\"max_queue_bytes\":67108864");
    PipeImplType ea = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, eb = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    char na[32], nb[32], topic[96];
    snprintf(na, sizeof na, "shmA%d", _i);
    snprintf(nb, sizeof nb, "shmB%d", _i);
    bt_client a, bb;
    bs_open(&a, &b, na, ea, AIPC_SHM_AUTO, 64u * BS_MIB, 1, NULL);
    bs_open(&bb, &b, nb, eb, AIPC_SHM_AUTO, 64u * BS_MIB, 1, NULL);
    ck_assert_uint_eq(bs_counters(&a).shm_active, 1);
    ck_assert_uint_eq(bs_counters(&bb).shm_active, 1);
    ck_assert_uint_eq(bs_stat(&a, "shm_clients"), 2);
    bt_client *both[2] = {&a, &bb};
    const uint32_t warm[2] = {BS_MIB, MAXP};
    bs_warm_up(both, 2, "warm", warm, 2);
    bt_unique_topic(topic, sizeof topic, "sizes");
    ck_assert_int_eq(aipc_bus_subscribe(a.bus, topic), 0);
    ck_assert_int_eq(aipc_bus_subscribe(bb.bus, topic), 0);
    uint8_t *buf = malloc(MAXP);
    ck_assert_ptr_nonnull(buf);
    uint32_t seed = 1000u * (uint32_t)_i;
    for (int op = OP_PUB; op <= OP_REQ; op++) {
        for (int dir = 0; dir < 2; dir++) {
            bt_client *from = dir ? &bb : &a, *to = dir ? &a : &bb;
            const char *to_name = dir ? na : nb;
            if (op == OP_PUB) {   /* only `to` hears the topic this time */
                ck_assert_int_eq(aipc_bus_unsubscribe(from->bus, topic), 0);
                ck_assert_int_eq(aipc_bus_subscribe(to->bus, topic), 0);
            }
            for (size_t k = 0; k < NSIZES; k++) {
                uint32_t size = sizes[k];
                uint64_t big = size >= BS_THR;
                shm_snap s0 = snap(&a, &bb);
                one(from, to, to_name, topic, op, buf, size, ++seed);
                shm_snap s1 = snap(&a, &bb);
                const aipc_bus_counters *f0 = dir ? &s0.b : &s0.a, *f1 = dir ? &s1.b : &s1.a;
                const aipc_bus_counters *t0 = dir ? &s0.a : &s0.b, *t1 = dir ? &s1.a : &s1.b;
                uint64_t back = op == OP_REQ ? big : 0;     /* the reply goes the other way */
                ck_assert_msg(f1->shm_sent - f0->shm_sent == big && t1->shm_recv - t0->shm_recv == big,
                              "%s of %u bytes (dir %d): sender shm_sent +%llu, receiver shm_recv +%llu, "
                              "expected +%llu", op_name[op], size, dir,
                              (unsigned long long)(f1->shm_sent - f0->shm_sent),
                              (unsigned long long)(t1->shm_recv - t0->shm_recv), (unsigned long long)big);
                ck_assert_msg(t1->shm_sent - t0->shm_sent == back && f1->shm_recv - f0->shm_recv == back,
                              "%s of %u bytes (dir %d): the reply's counters", op_name[op], size, dir);
                ck_assert_msg(s1.shm_in - s0.shm_in == big + back &&
                              s1.shm_pubs - s0.shm_pubs == big + back,
                              "%s of %u bytes (dir %d): broker shm_in +%llu, shm_publications +%llu",
                              op_name[op], size, dir, (unsigned long long)(s1.shm_in - s0.shm_in),
                              (unsigned long long)(s1.shm_pubs - s0.shm_pubs));
                ck_assert_uint_eq(f1->shm_fallback, f0->shm_fallback);
                ck_assert_uint_eq(t1->shm_fallback, t0->shm_fallback);
                ck_assert_uint_eq(s1.fallbacks, s0.fallbacks);
            }
        }
    }
    aipc_bus_counters ka = bs_counters(&a), kb = bs_counters(&bb);
    ck_assert_uint_eq(ka.shm_mapfail, 0);
    ck_assert_uint_eq(kb.shm_mapfail, 0);
    ck_assert_uint_eq(ka.shm_held_bytes, 0);        /* everything released (after snap's syncs) */
    ck_assert_uint_eq(kb.shm_held_bytes, 0);
    ck_assert_uint_eq(bs_stat(&a, "shm_map_failures"), 0);
    ck_assert_uint_eq(bs_stat(&a, "shm_bad_releases"), 0);
    /* every op's shared deliveries (msg, direct, req, rep) were counted alike by both sides of
     * the release page: the broker holds none of its slots (its stats op reads every page), all
     * went through the pages, no shm_done frame (review rprv MINOR-3c) */
    ck_assert_uint_eq(bs_counters(&a).shm_page, 1);
    ck_assert_uint_eq(bs_counters(&bb).shm_page, 1);
    ck_assert_uint_eq(bs_stat(&a, "shm_bytes"), 0);
    ck_assert_uint_eq(bs_stat(&a, "shm_release_frames"), 0);
    ck_assert_uint_eq(bs_stat(&a, "shm_page_releases"), bs_stat(&a, "shm_deliveries"));
    free(buf);
    ck_assert(bt_close(&a));
    ck_assert(bt_close(&bb));
    bs_broker_stop(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bus_shm_sizes");
    TCase *tc = tcase_create("sizes");
    tcase_set_timeout(tc, 0);
    tcase_add_checked_fixture(tc, NULL, bs_teardown);
    tcase_add_loop_test(tc, sizes_around_threshold_every_op_both_ways, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
