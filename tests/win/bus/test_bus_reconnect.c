/* test_bus_reconnect.c - the broker is killed (TerminateProcess) or stopped and restarted on the
 * same pipe: clients report the state changes, reconnect with backoff, re-send hello with their
 * name, resubscribe, get messages published after the restart; pending requests fail instead of
 * hanging; no handle leaks. Waits are event-based and bounded. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"

#define W AIPC_TEST_WAIT_MS
#define NCLIENTS 10

/* Waits until c has kept a message whose payload is `text` (bounded). */
static int wait_for_data(bt_client *c, const char *text, DWORD ms)
{
    uint64_t until = aipc_test_now_ms() + ms;
    size_t next = 0;
    for (;;) {
        EnterCriticalSection(&c->lock);
        for (; next < c->nkept; next++)
            if (c->kept[next].len == strlen(text) && memcmp(c->kept[next].data, text, c->kept[next].len) == 0) {
                LeaveCriticalSection(&c->lock);
                return 1;
            }
        long long have = c->msgs;
        LeaveCriticalSection(&c->lock);
        uint64_t now = aipc_test_now_ms();
        if (now >= until || !bt_wait(c, &c->msgs, have + 1, (DWORD)(until - now)))
            return 0;
    }
}

/* One connect/close so that the SDK's process-wide resources (I/O thread) exist before a
 * handle-count baseline is taken. */
static void warm_up(const wchar_t *pipe)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, pipe, NULL, 0), 0);
    ck_assert(bt_sync(&c, W));
    ck_assert(bt_close(&c));
}

START_TEST(kill_and_restart)
{
    bt_broker br;
    ck_assert_int_eq(bt_broker_start(&br, "busrc"), 0);
    warm_up(br.wpipe);
    DWORD handles0 = aipc_test_handle_count();

    static bt_client c[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "rc-%d", i);
        c[i].req_mode = i == 1 ? BT_REQ_IGNORE : BT_REQ_ECHO;
        ck_assert_int_eq(bt_open(&c[i], br.wpipe, name, 1), 0);
        ck_assert_int_eq(aipc_bus_subscribe(c[i].bus, "rc/#"), 0);
        ck_assert_int_eq(aipc_bus_subscribe(c[i].bus, "other/+"), 0);
    }
    for (int i = 0; i < NCLIENTS; i++)
        ck_assert(bt_sync(&c[i], W));
    uint64_t id_before = aipc_bus_client_id(c[3].bus);

    for (int cycle = 0; cycle < 3; cycle++) {
        /* a request the target never answers: it must fail when the broker dies */
        bt_reply pend;
        bt_reply_init(&pend);
        ck_assert_int_gt(aipc_bus_request(c[0].bus, "rc-1", "never", 5, 60000, bt_on_reply, &pend), 0);
        ck_assert(bt_wait(&c[1], &c[1].requests, cycle + 1, W));   /* it was delivered */

        bt_broker_kill(&br);
        for (int i = 0; i < NCLIENTS; i++) {
            ck_assert(bt_wait(&c[i], &c[i].disconnected, cycle + 1, W));
            ck_assert(bt_wait(&c[i], &c[i].reconnecting, 1, W));
        }
        ck_assert(bt_reply_wait(&pend, W));
        ck_assert_int_eq(pend.status, AIPC_EDISCONNECTED);
        ck_assert_int_eq(pend.calls, 1);
        bt_reply_free(&pend);
        ck_assert_int_ne(aipc_bus_get_state(c[0].bus), AIPC_BUS_CONNECTED);

        /* publications while the broker is down are queued */
        char queued[32];
        snprintf(queued, sizeof queued, "queued-%d", cycle);
        ck_assert_int_eq(aipc_bus_publish(c[0].bus, "rc/q", queued, strlen(queued), false), 0);

        ck_assert_int_eq(bt_broker_restart(&br), 0);
        for (int i = 0; i < NCLIENTS; i++)
            ck_assert(bt_wait(&c[i], &c[i].connected, cycle + 2, W));
        /* the sender resubscribed before its queue was flushed: it sees its own queued message */
        ck_assert(wait_for_data(&c[0], queued, W));
        for (int i = 0; i < NCLIENTS; i++)
            ck_assert(bt_sync(&c[i], W));                /* every resubscription is in place */
        char after[32];
        snprintf(after, sizeof after, "after-%d", cycle);
        ck_assert_int_eq(aipc_bus_publish(c[5].bus, "rc/x", after, strlen(after), false), 0);
        char other[32];
        snprintf(other, sizeof other, "o-%d", cycle);
        ck_assert_int_eq(aipc_bus_publish(c[5].bus, "other/y", other, strlen(other), false), 0);
        for (int i = 0; i < NCLIENTS; i++) {
            ck_assert(wait_for_data(&c[i], after, W));
            ck_assert(wait_for_data(&c[i], other, W));
        }
        /* names were re-registered: direct by name works after the restart */
        ck_assert_int_eq(aipc_bus_send(c[2].bus, "rc-3", "named", 5), 0);
        ck_assert(bt_wait(&c[3], &c[3].directs, cycle + 1, W));
        bt_clear(&c[0]);
    }
    ck_assert_uint_ne(aipc_bus_client_id(c[3].bus), 0);
    (void)id_before;
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_str_eq(c[i].error, "");
        ck_assert_int_eq(bt_get(&c[i], &c[i].errors), 0);
        ck_assert(bt_close(&c[i]));
        ck_assert_int_eq(c[i].closed, 1);
    }
    bt_broker_stop(&br);
    DWORD handles1 = aipc_test_handle_count();
    ck_assert_msg(handles1 <= handles0 + 2, "handles: %lu before, %lu after", handles0, handles1);
}
END_TEST

START_TEST(clean_stop_sends_bye)
{
    bt_broker br;
    ck_assert_int_eq(bt_broker_start(&br, "busbye"), 0);
    bt_client c;
    ck_assert_int_eq(bt_open(&c, br.wpipe, "bye-c", 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "bye/#"), 0);
    ck_assert(bt_sync(&c, W));
    bt_broker_stop(&br);
    ck_assert(bt_wait(&c, &c.disconnected, 1, W));
    ck_assert_int_eq(c.last_state == AIPC_BUS_RECONNECTING || c.last_state == AIPC_BUS_DISCONNECTED, 1);
    ck_assert_int_eq(bt_broker_restart(&br), 0);
    ck_assert(bt_wait(&c, &c.connected, 2, W));
    ck_assert(bt_sync(&c, W));
    bt_client p;
    ck_assert_int_eq(bt_open(&p, br.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(p.bus, "bye/1", "back", 4, false), 0);
    ck_assert(wait_for_data(&c, "back", W));
    ck_assert(bt_close(&p) && bt_close(&c));
    bt_broker_stop(&br);
}
END_TEST

START_TEST(no_reconnect_gives_up)
{
    bt_broker br;
    ck_assert_int_eq(bt_broker_start(&br, "busnorc"), 0);
    bt_client c, svc;
    svc.req_mode = BT_REQ_IGNORE;
    ck_assert_int_eq(bt_open(&svc, br.wpipe, "norc-svc", 0), 0);
    aipc_bus_options o;
    bt_options(&c, &o, br.wpipe, "norc", 0);
    ck_assert_int_eq(bt_connect(&c, &o), 0);
    ck_assert(bt_wait(&c, &c.connected, 1, W));
    bt_reply r;
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_request(c.bus, "norc-svc", "x", 1, 60000, bt_on_reply, &r), 0);
    ck_assert(bt_wait(&svc, &svc.requests, 1, W));
    bt_broker_kill(&br);
    ck_assert(bt_wait(&c, &c.disconnected, 1, W));
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, AIPC_EDISCONNECTED);
    bt_reply_free(&r);
    ck_assert_int_eq(aipc_bus_get_state(c.bus), AIPC_BUS_DISCONNECTED);
    ck_assert_int_eq(aipc_bus_publish(c.bus, "a", "x", 1, false), AIPC_EDISCONNECTED);
    ck_assert_int_eq(bt_get(&c, &c.reconnecting), 0);
    ck_assert(bt_close(&c) && bt_close(&svc));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_reconnect");
    TCase *tc = bt_tcase_create("reconnect");
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, kill_and_restart);
    tcase_add_test(tc, clean_stop_sends_bye);
    tcase_add_test(tc, no_reconnect_gives_up);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
