/* test_broker_reqrep.c - send and req/rep: forwarding with a stamped `from`, correlation by the
 * requester's id, no_reply when the target leaves, and the error paths. */
#include "check_main.h"
#include "test_broker_fake.h"

typedef struct {
    aipc_broker *b;
    fake *cli, *svc;
    uint64_t cli_id, svc_id;
} pair;

static void pair_up(pair *p, uint64_t max_queue)
{
    p->b = test_broker(max_queue, 0, 0);
    p->cli = fake_new(p->b, 100);
    p->svc = fake_new(p->b, 200);
    p->cli_id = fake_hello(p->cli, "cli");
    p->svc_id = fake_hello(p->svc, "svc");
}

static void pair_down(pair *p)
{
    if (p->cli)
        fake_free(p->cli);
    if (p->svc)
        fake_free(p->svc);
    aipc_broker_free(p->b);
}

/* send by name and by id; the from is the broker's stamp, not what the sender claims. */
START_TEST(send_by_name_and_id)
{
    pair p;
    pair_up(&p, 0);
    fake_sendt(p.cli, "{\"op\":\"send\",\"to\":\"svc\",\"id\":1,\"from\":{\"id\":99,\"name\":\"forged\"}}",
               "hi");
    ck_assert_int_eq((int)rx_num(fake_expect(p.cli, "ok"), "re"), 1);
    rx_frame *d = fake_expect(p.svc, "direct");
    ck_assert_str_eq((char *)d->payload, "hi");
    ck_assert_uint_eq((uint64_t)rx_from_num(d, "id"), p.cli_id);
    ck_assert_str_eq(rx_from_str(d, "name"), "cli");
    ck_assert_int_eq((int)rx_from_num(d, "pid"), 100);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":%llu}", (unsigned long long)p.svc_id);
    fake_send(p.cli, meta, "\0bin\0", 5);
    d = fake_expect(p.svc, "direct");
    ck_assert_uint_eq(d->plen, 5);
    ck_assert_mem_eq(d->payload, "\0bin\0", 5);
    ck_assert_ptr_null(fake_next(p.cli));   /* no id, no ok */
    fake_sendt(p.cli, "{\"op\":\"send\",\"to\":\"nobody\",\"id\":2}", "x");
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "no_such_client"), "re"), 2);
    fake_sendt(p.cli, "{\"op\":\"send\",\"to\":12345}", "x");
    fake_expect_error(p.cli, "no_such_client");
    fake_sendt(p.cli, "{\"op\":\"send\",\"to\":true}", "x");
    fake_expect_error(p.cli, "bad_request");
    fake_sendt(p.cli, "{\"op\":\"send\"}", "x");
    fake_expect_error(p.cli, "bad_request");
    pair_down(&p);
}
END_TEST

/* The full round trip: req forwarded with from + id, rep forwarded with from + re. */
START_TEST(request_reply_round_trip)
{
    pair p;
    pair_up(&p, 0);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":5}", "question");
    rx_frame *q = fake_expect(p.svc, "req");
    ck_assert_int_eq((int)rx_num(q, "id"), 5);
    ck_assert_uint_eq((uint64_t)rx_from_num(q, "id"), p.cli_id);
    ck_assert_str_eq((char *)q->payload, "question");
    ck_assert_ptr_null(fake_next(p.cli));   /* no ok for a req: the rep is the answer */
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":5,\"id\":77}",
             (unsigned long long)p.cli_id);
    fake_sendt(p.svc, meta, "answer");
    ck_assert_int_eq((int)rx_num(fake_expect(p.svc, "ok"), "re"), 77);
    rx_frame *r = fake_expect(p.cli, "rep");
    ck_assert_int_eq((int)rx_num(r, "re"), 5);
    ck_assert_uint_eq((uint64_t)rx_from_num(r, "id"), p.svc_id);
    ck_assert_str_eq(rx_from_str(r, "name"), "svc");
    ck_assert_str_eq((char *)r->payload, "answer");
    /* A second rep to the same request is refused: it is no longer pending. */
    fake_sendt(p.svc, meta, "again");
    fake_expect_error(p.svc, "no_such_request");
    ck_assert_ptr_null(fake_next(p.cli));
    /* The same id may be reused once answered. */
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":5}", "q2");
    fake_expect(p.svc, "req");
    pair_down(&p);
}
END_TEST

/* The target leaves before replying: every waiting requester gets no_reply with its id. */
START_TEST(no_reply_when_target_leaves)
{
    pair p;
    pair_up(&p, 0);
    fake *other = fake_new(p.b, 300);
    fake_hello(other, NULL);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":1}", "a");
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":2}", "b");
    fake_sendt(other, "{\"op\":\"req\",\"to\":\"svc\",\"id\":1}", "c");
    fake_skip_all(p.svc);
    fake_free(p.svc);
    p.svc = NULL;
    int seen1 = 0, seen2 = 0;
    for (int i = 0; i < 2; i++) {
        rx_frame *e = fake_expect_error(p.cli, "no_reply");
        int re = (int)rx_num(e, "re");
        seen1 += re == 1;
        seen2 += re == 2;
    }
    ck_assert_int_eq(seen1, 1);
    ck_assert_int_eq(seen2, 1);
    ck_assert_int_eq((int)rx_num(fake_expect_error(other, "no_reply"), "re"), 1);
    ck_assert_ptr_null(fake_next(p.cli));
    fake_free(other);
    pair_down(&p);
}
END_TEST

/* The requester leaves: the pending entry goes; a late rep gets no_such_client. */
START_TEST(requester_leaves_first)
{
    pair p;
    pair_up(&p, 0);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":3}", "a");
    fake_expect(p.svc, "req");
    uint64_t cid = p.cli_id;
    fake_free(p.cli);
    p.cli = NULL;
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":3}", (unsigned long long)cid);
    fake_skip_all(p.svc);
    fake_sendt(p.svc, meta, "late");
    fake_expect_error(p.svc, "no_such_client");
    pair_down(&p);
}
END_TEST

/* Only the target may answer; malformed req/rep are refused. */
START_TEST(req_rep_errors)
{
    pair p;
    pair_up(&p, 0);
    fake *intruder = fake_new(p.b, 300);
    fake_hello(intruder, "intruder");
    fake_skip_all(p.cli);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\"}", "no id");
    fake_expect_error(p.cli, "bad_request");
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"ghost\",\"id\":8}", "x");
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "no_such_client"), "re"), 8);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":9}", "x");
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":9}", "dup");
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "bad_request"), "re"), 9);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":9}", (unsigned long long)p.cli_id);
    fake_sendt(intruder, meta, "forged");
    fake_expect_error(intruder, "no_such_request");
    fake_sendt(intruder, "{\"op\":\"rep\",\"re\":9}", "x");
    fake_expect_error(intruder, "bad_request");
    fake_sendt(intruder, "{\"op\":\"rep\",\"to\":\"cli\",\"re\":9}", "x");
    fake_expect_error(intruder, "bad_request");
    ck_assert_ptr_null(fake_next(p.cli));
    /* The real target still can. */
    fake_sendt(p.svc, meta, "real");
    ck_assert_str_eq((char *)fake_expect(p.cli, "rep")->payload, "real");
    fake_free(intruder);
    pair_down(&p);
}
END_TEST

/* A client can send a request to itself. */
START_TEST(request_to_self)
{
    pair p;
    pair_up(&p, 0);
    fake_sendt(p.cli, "{\"op\":\"req\",\"to\":\"cli\",\"id\":1}", "me");
    rx_frame *q = fake_expect(p.cli, "req");
    ck_assert_uint_eq((uint64_t)rx_from_num(q, "id"), p.cli_id);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":1}", (unsigned long long)p.cli_id);
    fake_sendt(p.cli, meta, "you");
    ck_assert_str_eq((char *)fake_expect(p.cli, "rep")->payload, "you");
    pair_down(&p);
}
END_TEST

/* send/req to a client whose queue is full: queue_full to the sender; a rep that does not fit
 * the requester's queue fails on both sides (nobody waits forever). */
START_TEST(queue_full_direct)
{
    pair p;
    pair_up(&p, 65536);
    p.svc->stalled = true;
    static char big[40000];
    memset(big, 'x', sizeof big);
    fake_send(p.cli, "{\"op\":\"send\",\"to\":\"svc\",\"id\":1}", big, sizeof big);
    fake_expect(p.cli, "ok");
    fake_send(p.cli, "{\"op\":\"send\",\"to\":\"svc\",\"id\":2}", big, sizeof big);
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "queue_full"), "re"), 2);
    fake_send(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":3}", big, sizeof big);
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "queue_full"), "re"), 3);
    p.svc->stalled = false;
    fake_expect(p.svc, "direct");
    ck_assert_ptr_null(fake_next(p.svc));
    /* rep into a full requester queue */
    fake_send(p.cli, "{\"op\":\"req\",\"to\":\"svc\",\"id\":4}", "q", 1);
    fake_expect(p.svc, "req");
    p.cli->stalled = true;
    fake_send(p.svc, "{\"op\":\"send\",\"to\":\"cli\"}", big, sizeof big);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":4}", (unsigned long long)p.cli_id);
    fake_send(p.svc, meta, big, sizeof big);
    fake_expect_error(p.svc, "queue_full");
    p.cli->stalled = false;
    fake_expect(p.cli, "direct");
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "queue_full"), "re"), 4);
    pair_down(&p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_reqrep");
    TCase *tc = tcase_create("reqrep");
    tcase_add_test(tc, send_by_name_and_id);
    tcase_add_test(tc, request_reply_round_trip);
    tcase_add_test(tc, no_reply_when_target_leaves);
    tcase_add_test(tc, requester_leaves_first);
    tcase_add_test(tc, req_rep_errors);
    tcase_add_test(tc, request_to_self);
    tcase_add_test(tc, queue_full_direct);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
