/* test_bus_refusals.c - what the aipc_bus_* calls refuse and how they fail, against the real
 * broker (bt_suite_broker): an absent broker without reconnect, the queue bound while
 * disconnected, a name already taken, invalid arguments, and the verdict of every row of the
 * shared rules table (tests/common/rules_table.h) through the real API. Waits are event-based
 * and bounded. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"
#include "rules_table.h"

#define W AIPC_TEST_WAIT_MS

START_TEST(absent_broker_without_reconnect)
{
    char name[96];
    wchar_t wname[96];
    aipc_test_name(name, sizeof name, "absent");
    aipc_test_wname(wname, 96, name);
    bt_client c;
    aipc_bus_options o;
    bt_options(&c, &o, wname, NULL, 0);
    o.connect_timeout_ms = 300;
    ck_assert_int_eq(bt_connect(&c, &o), 0);
    bt_reply r;
    bt_reply_init(&r);
    int64_t id = aipc_bus_request(c.bus, "x", "q", 1, 20000, bt_on_reply, &r);
    ck_assert_int_gt(id, 0);                          /* queued until the attempt fails */
    ck_assert(bt_wait(&c, &c.disconnected, 1, W));
    ck_assert_int_eq(c.last_error, AIPC_ENOTFOUND);
    ck_assert(bt_reply_wait(&r, W));                   /* never hangs */
    ck_assert_int_eq(r.status, AIPC_EDISCONNECTED);
    bt_reply_free(&r);
    ck_assert_int_eq(aipc_bus_get_state(c.bus), AIPC_BUS_DISCONNECTED);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "a/b", "x", 1, false), AIPC_EDISCONNECTED);
    ck_assert_int_eq(aipc_bus_request(c.bus, "x", "q", 1, 100, bt_on_reply, &r), AIPC_EDISCONNECTED);
    ck_assert_int_eq(bt_get(&c, &c.reconnecting), 0);
    ck_assert(bt_close(&c));
}
END_TEST

START_TEST(queue_bound_while_disconnected)
{
    char name[96];
    wchar_t wname[96];
    aipc_test_name(name, sizeof name, "absentq");
    aipc_test_wname(wname, 96, name);
    bt_client c;
    aipc_bus_options o;
    bt_options(&c, &o, wname, NULL, 1);
    o.connect_timeout_ms = 100;
    o.max_queue_bytes = 4096;
    ck_assert_int_eq(bt_connect(&c, &o), 0);
    ck_assert(bt_wait(&c, &c.reconnecting, 1, W));
    char buf[1000];
    memset(buf, 'q', sizeof buf);
    int accepted = 0, rc;
    while ((rc = aipc_bus_publish(c.bus, "q/x", buf, sizeof buf, false)) == 0)
        accepted++;
    ck_assert_int_eq(rc, AIPC_EQUEUEFULL);
    ck_assert_int_ge(accepted, 3);
    ck_assert_int_le(accepted, 4);
    /* a request that cannot be sent times out (it never hangs) */
    bt_reply r;
    bt_reply_init(&r);
    memset(buf, 'r', 10);
    ck_assert_int_gt(aipc_bus_request(c.bus, "svc", buf, 10, 300, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, AIPC_ETIMEDOUT);
    bt_reply_free(&r);
    ck_assert(bt_close(&c));
}
END_TEST

START_TEST(name_taken)
{
    bt_client a, b;
    ck_assert_int_eq(bt_open(&a, bt_suite_broker.wpipe, "taken-name", 0), 0);
    aipc_bus_options o;
    bt_options(&b, &o, bt_suite_broker.wpipe, "taken-name", 0);
    ck_assert_int_eq(bt_connect(&b, &o), 0);
    ck_assert(bt_wait(&b, &b.disconnected, 1, W));
    ck_assert_int_eq(b.last_error, AIPC_EREFUSED);
    ck_assert(bt_wait(&b, &b.errors, 1, W));
    ck_assert_str_eq(b.last_error_code, "name_taken");
    ck_assert_int_eq(bt_get(&b, &b.connected), 0);
    ck_assert(bt_close(&b) && bt_close(&a));
}
END_TEST

START_TEST(invalid_arguments)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "a/+", "x", 1, false), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "a/#", "x", 1, false), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "$bus/joined", "x", 1, false), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "", "x", 1, false), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "a", NULL, 1, false), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "a/#/b"), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "a+"), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_send(c.bus, "bad name", "x", 1), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_request(c.bus, "x", "x", 1, 10, NULL, NULL), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_reply(c.bus, 0, 1, "x", 1), AIPC_EINVAL);
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    aipc_bus *b = NULL;
    o.name = "bad/name";
    ck_assert_int_eq(aipc_bus_connect(&o, &b), AIPC_EINVAL);
    o.name = NULL;
    o.size = 8;
    ck_assert_int_eq(aipc_bus_connect(&o, &b), AIPC_EINVAL);
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = L"\\\\server\\pipe\\x";
    ck_assert_int_eq(aipc_bus_connect(&o, &b), AIPC_EINVAL);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(aipc_bus_connect(NULL, &b), AIPC_EINVAL);
    ck_assert_str_eq(aipc_bus_state_name(AIPC_BUS_RECONNECTING), "reconnecting");
    ck_assert(bt_close(&c));
}
END_TEST

/* The SDK's verdict on one row of rules_table.h through the API: AIPC_EINVAL at once or not.
 * Returns -1 for a pipe-name row that UTF-16 cannot carry (bad UTF-8). */
static int api_verdict(bt_client *c, const rule_case *r, const char *s)
{
    int rc;
    if (r->kind == R_TOPIC)
        return aipc_bus_publish(c->bus, s, "x", 1, false) != AIPC_EINVAL;
    if (r->kind == R_FILTER) {
        rc = aipc_bus_subscribe(c->bus, s);
        ck_assert_int_eq(aipc_bus_unsubscribe(c->bus, s) == AIPC_EINVAL, rc == AIPC_EINVAL);
        return rc != AIPC_EINVAL;
    }
    static wchar_t w[1024];
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.reconnect = 0;
    o.connect_timeout_ms = 300;
    o.pipe_name = bt_suite_broker.wpipe;
    if (r->kind == R_NAME) {
        o.name = s;
    } else {
        if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, 1024) <= 0)
            return -1;
        o.pipe_name = w;
    }
    aipc_bus *b = NULL;
    rc = aipc_bus_connect(&o, &b);
    if (b)
        aipc_bus_close(b);
    return rc != AIPC_EINVAL;
}

/* Every row of tests/common/rules_table.h through the real API to the real broker: the SDK
 * refuses at once (AIPC_EINVAL) exactly the rows the table refuses, and the broker answers no
 * error to what the SDK let through. */

/* Every row of tests/common/rules_table.h through the real API to the real broker: the SDK
 * refuses at once (AIPC_EINVAL) exactly the rows the table refuses, and the broker answers no
 * error to what the SDK let through. */
START_TEST(api_gives_each_rule_verdict)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, NULL, 0), 0);
    int checked = 0;
    for (int i = 0; i < N_RULE_CASES; i++) {
        const rule_case *r = &rule_cases[i];
        size_t n;
        char *s = rule_text(r, &n);
        int got = api_verdict(&c, r, s);
        if (got >= 0) {
            ck_assert_msg(got == r->ok, "row %d (%s, %u bytes, \"%.40s\"): the SDK %s it", i,
                          rule_kind_name(r->kind), (unsigned)n, s, got ? "accepts" : "refuses");
            checked++;
        }
        free(s);
    }
    ck_assert_int_gt(checked, N_RULE_CASES - 4);
    ck_assert(bt_sync(&c, W));
    ck_assert_msg(bt_get(&c, &c.errors) == 0, "the broker refused what the SDK accepted: %s",
                  c.last_error_code);
    ck_assert(bt_close(&c));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_refusals");
    TCase *tc = bt_tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, absent_broker_without_reconnect);
    tcase_add_test(tc, queue_bound_while_disconnected);
    tcase_add_test(tc, name_taken);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, api_gives_each_rule_verdict);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN_EX(suite, bt_suite_broker_start, bt_suite_broker_stop, 0u);
