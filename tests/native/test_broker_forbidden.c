/* test_broker_forbidden.c - the policy in the broker, through the fake engine: refused pub, sub,
 * send and req get `forbidden` (with "re" when the op had an id) and have no effect; a reserved
 * name gets `name_reserved` and the client may say hello again; replies are never refused; the
 * `denied` counter; no policy = the open bus. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"

#include "policy.h"

/* The docs' example policy (sessions, users, shared area, presence, services). */
static const char example[] =
    "{\"policy\":{\"rules\":["
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"session/%s/#\"},"
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"user/%u/#\"},"
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"shared/#\"},"
    "{\"allow\":[\"sub\"],\"topic\":\"$bus/#\"},"
    "{\"allow\":[\"send\",\"req\"],\"to_session\":\"%s\"},"
    "{\"allow\":[\"send\",\"req\"],\"to_user\":\"SY\"},"
    "{\"allow\":[\"*\"],\"who\":[\"SY\",\"BA\"]}],"
    "\"names\":{\"svc.*\":[\"SY\",\"BA\"]}}}";

static aipc_broker *policy_broker(const char *json)
{
    aipc_broker_config cfg;
    char err[256];
    ck_assert_msg(aipc_broker_config_load_json(&cfg, json, err, sizeof err) == 0, "%s", err);
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    aipc_broker_config_free(&cfg);              /* the broker keeps its own copy */
    return b;
}

static fake *client(aipc_broker *b, uint32_t pid, const aipc_identity *id, const char *name)
{
    fake *f = fake_new(b, pid);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    fake_hello(f, name);
    return f;
}

/* pub/sub: allowed in one's own session and user area, forbidden elsewhere; a forbidden pub
 * reaches nobody, a forbidden sub subscribes to nothing. */
START_TEST(topics)
{
    aipc_broker *b = policy_broker(example);
    fake *alice = client(b, 1, &id_alice, "alice");
    fake *bob = client(b, 2, &id_bob, "bob");
    fake *root = client(b, 3, &id_system, "root");
    fake_sendt(root, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(root, "ok");
    fake_sendt(bob, "{\"op\":\"sub\",\"topic\":\"session/+/x\",\"id\":2}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(bob, "forbidden"), "re"), 2);
    fake_sendt(bob, "{\"op\":\"sub\",\"topic\":\"session/2/#\",\"id\":3}", NULL);
    fake_expect(bob, "ok");
    /* alice may not publish into session 2: nobody (not even root's '#') gets it */
    fake_sendt(alice, "{\"op\":\"pub\",\"topic\":\"session/2/x\",\"id\":4}", "no");
    ck_assert_int_eq((int)rx_num(fake_expect_error(alice, "forbidden"), "re"), 4);
    fake_sendt(alice, "{\"op\":\"pub\",\"topic\":\"session/1/x\",\"id\":5}", "yes");
    fake_expect(alice, "ok");
    fake_sendt(alice, "{\"op\":\"pub\",\"topic\":\"user/" SID_ALICE "/n\"}", "mine");
    /* the fast pub path is policed too (no id, no escapes) and errors without "re" */
    fake_sendt(alice, "{\"op\":\"pub\",\"topic\":\"user/" SID_BOB "/n\"}", "theirs");
    rx_frame *e = fake_expect_error(alice, "forbidden");
    ck_assert(!rx_has(e, "re"));
    rx_frame *r = fake_next_nonpresence(root);
    ck_assert_str_eq(rx_str(r, "topic"), "session/1/x");
    r = fake_next_nonpresence(root);
    ck_assert_str_eq(rx_str(r, "topic"), "user/" SID_ALICE "/n");
    ck_assert_ptr_null(fake_next_nonpresence(root));
    ck_assert_ptr_null(fake_next(bob));
    /* presence is allowed for everyone, '#' for nobody but SY/BA */
    fake_sendt(alice, "{\"op\":\"sub\",\"topic\":\"$bus/+\",\"id\":6}", NULL);
    fake_expect(alice, "ok");
    fake_sendt(alice, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":7}", NULL);
    fake_expect_error(alice, "forbidden");
    ck_assert_uint_eq(fake_stats(b).denied, 4);
    /* refusals are answers, not disconnections */
    ck_assert_int_eq(alice->close_calls, 0);
    ck_assert_int_eq(bob->close_calls, 0);
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 3);       /* root '#', bob session/2/#, alice $bus/+ */
    fake_free(alice);
    fake_free(bob);
    fake_free(root);
    aipc_broker_free(b);
}
END_TEST

/* send/req across sessions are forbidden (req: error with re = the request id, no pending
 * request left behind); within a session and to SYSTEM services they pass; replies always. */
START_TEST(targets)
{
    aipc_broker *b = policy_broker(example);
    fake *alice = client(b, 1, &id_alice, "alice");
    fake *admin = client(b, 2, &id_admin, "admin");      /* session 1 too */
    fake *bob = client(b, 3, &id_bob, "bob");            /* session 2 */
    fake *svc = client(b, 4, &id_system, "svc.print");   /* reserved to SY/BA */
    fake_skip_all(alice);
    fake_skip_all(admin);
    fake_skip_all(bob);
    fake_skip_all(svc);
    fake_sendt(alice, "{\"op\":\"send\",\"to\":\"bob\",\"id\":1}", "x");
    ck_assert_int_eq((int)rx_num(fake_expect_error(alice, "forbidden"), "re"), 1);
    fake_sendt(alice, "{\"op\":\"req\",\"to\":\"bob\",\"id\":2}", "x");
    ck_assert_int_eq((int)rx_num(fake_expect_error(alice, "forbidden"), "re"), 2);
    ck_assert_ptr_null(fake_next(bob));
    /* the same id may be used again: nothing was left pending */
    fake_sendt(alice, "{\"op\":\"req\",\"to\":\"admin\",\"id\":2}", "q");
    rx_frame *r = fake_expect(admin, "req");
    ck_assert_int_eq((int)rx_num(r, "id"), 2);
    fake_sendt(alice, "{\"op\":\"send\",\"to\":\"admin\",\"id\":3}", "d");
    fake_expect(alice, "ok");
    fake_expect(admin, "direct");
    /* to a SYSTEM service across sessions: allowed by to_user SY; and it may reply to anyone */
    fake_sendt(bob, "{\"op\":\"req\",\"to\":\"svc.print\",\"id\":9}", "print");
    r = fake_expect(svc, "req");
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%d,\"re\":9,\"id\":1}",
             (int)rx_from_num(r, "id"));
    fake_sendt(svc, meta, "done");
    fake_expect(svc, "ok");
    ck_assert_int_eq((int)rx_num(fake_expect(bob, "rep"), "re"), 9);
    /* bob's reply to a request that admin (session 1) could not have sent him: admin is BA,
     * allowed anything, so it can; bob answers across sessions - replies are not policed */
    fake_sendt(admin, "{\"op\":\"req\",\"to\":\"bob\",\"id\":4}", "q");
    r = fake_expect(bob, "req");
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%d,\"re\":4}", (int)rx_from_num(r, "id"));
    fake_sendt(bob, meta, "a");
    fake_expect(admin, "rep");
    ck_assert_uint_eq(fake_stats(b).denied, 2);
    fake_free(alice);
    fake_free(admin);
    fake_free(bob);
    fake_free(svc);
    aipc_broker_free(b);
}
END_TEST

/* A reserved name from another account: name_reserved, the connection stays, another hello
 * works; the owner takes it. */
START_TEST(reserved_name)
{
    aipc_broker *b = policy_broker(example);
    fake *f = fake_new(b, 1);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &id_alice), 0);
    fake_sendt(f, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc.print\",\"id\":1}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(f, "name_reserved"), "re"), 1);
    ck_assert_int_eq(f->close_calls, 0);
    ck_assert_uint_eq(aipc_client_id(f->cl), 0);
    fake_hello(f, "alice");
    fake *ua = fake_new(b, 2);                         /* unelevated admin: BA deny-only */
    ck_assert_int_eq(aipc_client_set_identity(ua->cl, &id_admin_ua), 0);
    fake_sendt(ua, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc.print\"}", NULL);
    fake_expect_error(ua, "name_reserved");
    fake *sys = client(b, 3, &id_system, "svc.print");
    ck_assert_str_eq(aipc_client_name(sys->cl), "svc.print");
    ck_assert_uint_eq(fake_stats(b).denied, 2);
    fake_free(f);
    fake_free(ua);
    fake_free(sys);
    aipc_broker_free(b);
}
END_TEST

/* No policy: the open bus, whatever the identities. */
START_TEST(open_bus)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *alice = client(b, 1, &id_alice, "svc.print");
    fake *bob = client(b, 2, &id_bob, "bob");
    fake_sendt(bob, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(bob, "ok");
    fake_sendt(alice, "{\"op\":\"pub\",\"topic\":\"session/2/x\",\"id\":2}", "x");
    fake_expect(alice, "ok");
    fake_sendt(alice, "{\"op\":\"send\",\"to\":\"bob\",\"id\":3}", "x");
    fake_expect(alice, "ok");
    fake_expect(bob, "msg");
    fake_expect(bob, "direct");
    ck_assert_uint_eq(fake_stats(b).denied, 0);
    char json[1024];
    aipc_broker_stats_json(b, json, sizeof json);
    ck_assert_msg(strstr(json, "\"denied\":0"), "%s", json);
    fake_free(alice);
    fake_free(bob);
    aipc_broker_free(b);
}
END_TEST

/* A client without identity under a policy: rules needing it never allow. */
START_TEST(no_identity_under_policy)
{
    aipc_broker *b = policy_broker(example);
    fake *f = fake_new(b, 1);
    fake_hello(f, NULL);
    fake_sendt(f, "{\"op\":\"pub\",\"topic\":\"shared/x\",\"id\":1}", "x");
    fake_expect(f, "ok");
    fake_sendt(f, "{\"op\":\"pub\",\"topic\":\"session/0/x\",\"id\":2}", "x");
    fake_expect_error(f, "forbidden");
    fake_sendt(f, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc.x\"}", NULL);
    fake_expect_error(f, "bad_request");          /* already said hello */
    fake *g = fake_new(b, 2);
    fake_sendt(g, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc.x\"}", NULL);
    fake_expect_error(g, "name_reserved");
    fake_free(f);
    fake_free(g);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_forbidden");
    TCase *tc = tcase_create("forbidden");
    tcase_add_test(tc, topics);
    tcase_add_test(tc, targets);
    tcase_add_test(tc, reserved_name);
    tcase_add_test(tc, open_bus);
    tcase_add_test(tc, no_identity_under_policy);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
