/* test_bus_api.c - the aipc_bus_* calls doing their work against the real broker
 * (asyncipc-broker.exe in its own process, bt_suite_broker): connect/state/close, publish and
 * subscribe with wildcards, retained messages, direct messages, request/reply and its timeout,
 * presence, stats and ping, peers in other processes (aipc.exe), close inside a callback, large
 * payloads, the engine option. test_bus_refusals.c: what the calls refuse. Waits are event-based
 * and bounded. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"

#define W AIPC_TEST_WAIT_MS

START_TEST(connect_state_close)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, "state-a", 0), 0);
    ck_assert_int_eq(aipc_bus_get_state(c.bus), AIPC_BUS_CONNECTED);
    ck_assert_uint_gt(aipc_bus_client_id(c.bus), 0);
    ck_assert_int_eq(c.last_error, 0);
    ck_assert(bt_close(&c));                       /* bounded aipc_bus_close */
    ck_assert_int_eq(c.closed, 1);                 /* on_state(CLOSED) ran before close returned */
    ck_assert_int_eq(c.state_after_close, 0);      /* ... and it was the last callback */
    ck_assert_str_eq(c.error, "");
}
END_TEST

START_TEST(pubsub_wildcards)
{
    char base[64], f1[96], f2[96], t[128];
    bt_unique_topic(base, sizeof base, "wild");
    bt_client sub, pub;
    ck_assert_int_eq(bt_open(&sub, bt_suite_broker.wpipe, "wild-sub", 1), 0);
    ck_assert_int_eq(bt_open(&pub, bt_suite_broker.wpipe, "wild-pub", 0), 0);
    snprintf(f1, sizeof f1, "%s/+/c", base);
    snprintf(f2, sizeof f2, "%s/w/#", base);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, f1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, f2), 0);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, f2), 0);       /* again: a no-op */
    ck_assert(bt_sync(&sub, W));                                 /* subscriptions are in place */
    const char *topics[] = {"x/c", "x/d", "w", "w/x/y", "x/c/d", "y/y/c", "w/z"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        snprintf(t, sizeof t, "%s/%s", base, topics[i]);
        ck_assert_int_eq(aipc_bus_publish(pub.bus, t, topics[i], strlen(topics[i]), false), 0);
    }
    /* x/c, w, w/x/y, w/z match (w/# matches w itself); w/z is last, so per-publisher order
     * means all earlier ones have arrived when it has */
    ck_assert(bt_wait(&sub, &sub.msgs, 4, W));
    ck_assert(bt_sync(&pub, W) && bt_sync(&sub, W));
    ck_assert_int_eq(bt_get(&sub, &sub.msgs), 4);
    const char *want[] = {"x/c", "w", "w/x/y", "w/z"};
    for (int i = 0; i < 4; i++) {
        bt_msg *m = bt_kept(&sub, (size_t)i);
        snprintf(t, sizeof t, "%s/%s", base, want[i]);
        ck_assert_str_eq(m->topic, t);
        ck_assert_str_eq((char *)m->data, want[i]);
        ck_assert_str_eq(m->from_name, "wild-pub");
        ck_assert_uint_eq(m->from_pid, GetCurrentProcessId());
        ck_assert_uint_eq(m->from_id, aipc_bus_client_id(pub.bus));
        ck_assert(!m->retained);
    }
    /* unsubscribe: no more deliveries for that filter */
    ck_assert_int_eq(aipc_bus_unsubscribe(sub.bus, f2), 0);
    ck_assert(bt_sync(&sub, W));
    snprintf(t, sizeof t, "%s/w/after", base);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, "n", 1, false), 0);
    snprintf(t, sizeof t, "%s/q/c", base);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, "y", 1, false), 0);
    ck_assert(bt_wait(&sub, &sub.msgs, 5, W));
    ck_assert_str_eq(bt_kept(&sub, 4)->topic, t);
    ck_assert_str_eq(sub.error, "");
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

START_TEST(retain_and_clear)
{
    char t[96], f[128];
    bt_unique_topic(t, sizeof t, "ret");
    snprintf(f, sizeof f, "%s/#", t);
    bt_client pub, late, later;
    ck_assert_int_eq(bt_open(&pub, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, "keep\0me", 7, true), 0);
    ck_assert(bt_sync(&pub, W));
    ck_assert_int_eq(bt_open(&late, bt_suite_broker.wpipe, NULL, 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(late.bus, f), 0);
    ck_assert(bt_wait(&late, &late.msgs, 1, W));
    bt_msg *m = bt_kept(&late, 0);
    ck_assert_str_eq(m->topic, t);
    ck_assert_uint_eq(m->len, 7);
    ck_assert_mem_eq(m->data, "keep\0me", 7);
    ck_assert(m->retained);
    /* clear with an empty retained publication: a later subscriber gets nothing */
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, NULL, 0, true), 0);
    ck_assert(bt_sync(&pub, W));
    ck_assert_int_eq(bt_open(&later, bt_suite_broker.wpipe, NULL, 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(later.bus, f), 0);
    ck_assert(bt_sync(&later, W));                     /* retained would precede the pong */
    ck_assert_int_eq(bt_get(&later, &later.msgs), 0);
    ck_assert(bt_close(&pub) && bt_close(&late) && bt_close(&later));
}
END_TEST

START_TEST(direct_messages)
{
    bt_client a, b;
    ck_assert_int_eq(bt_open(&a, bt_suite_broker.wpipe, "direct-a", 1), 0);
    ck_assert_int_eq(bt_open(&b, bt_suite_broker.wpipe, "direct-b", 1), 0);
    ck_assert_int_eq(aipc_bus_send(a.bus, "direct-b", "hi b", 4), 0);
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)aipc_bus_client_id(b.bus));
    ck_assert_int_eq(aipc_bus_send(a.bus, id, "by id", 5), 0);   /* numeric id works too */
    ck_assert(bt_wait(&b, &b.directs, 2, W));
    ck_assert_str_eq((char *)bt_kept(&b, 0)->data, "hi b");
    ck_assert_str_eq(bt_kept(&b, 0)->from_name, "direct-a");
    ck_assert_str_eq((char *)bt_kept(&b, 1)->data, "by id");
    /* unknown target: on_error with the broker's code */
    ck_assert_int_eq(aipc_bus_send(a.bus, "nobody-here", "x", 1), 0);
    ck_assert(bt_wait(&a, &a.errors, 1, W));
    ck_assert_str_eq(a.last_error_code, "no_such_client");
    ck_assert(bt_close(&a) && bt_close(&b));
}
END_TEST

/* Replies to every kept request of `svc` from the test thread (reply from any thread). */
static void reply_later(bt_client *svc, size_t from)
{
    for (size_t i = from;; i++) {
        bt_msg *m = bt_kept(svc, i);
        if (!m)
            break;
        char out[256];
        int n = snprintf(out, sizeof out, "later:%s", (char *)m->data);
        ck_assert_int_eq(aipc_bus_reply(svc->bus, m->from_id, m->req_id, out, (size_t)n), 0);
    }
}

START_TEST(request_reply)
{
    bt_client cli, svc, slow;
    ck_assert_int_eq(bt_open(&svc, bt_suite_broker.wpipe, "rr-svc", 1), 0);
    slow.req_mode = BT_REQ_LATER;
    ck_assert_int_eq(bt_open(&slow, bt_suite_broker.wpipe, "rr-slow", 1), 0);
    ck_assert_int_eq(bt_open(&cli, bt_suite_broker.wpipe, "rr-cli", 0), 0);

    bt_reply r;
    bt_reply_init(&r);
    int64_t id = aipc_bus_request(cli.bus, "rr-svc", "ping\0pong", 9, 10000, bt_on_reply, &r);
    ck_assert_int_gt(id, 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.len, 9);
    ck_assert_mem_eq(r.data, "ping\0pong", 9);
    ck_assert_str_eq(r.from_name, "rr-svc");
    ck_assert_uint_eq(r.from_id, aipc_bus_client_id(svc.bus));
    ck_assert_uint_ne(r.thread, GetCurrentThreadId());
    ck_assert_str_eq((char *)bt_kept(&svc, 0)->data, "ping");
    ck_assert_str_eq(bt_kept(&svc, 0)->from_name, "rr-cli");
    bt_reply_free(&r);

    /* answered later, from the test thread */
    bt_reply r2[3];
    for (int i = 0; i < 3; i++) {
        bt_reply_init(&r2[i]);
        char msg[16];
        snprintf(msg, sizeof msg, "q%d", i);
        ck_assert_int_gt(aipc_bus_request(cli.bus, "rr-slow", msg, strlen(msg), 10000,
                                          bt_on_reply, &r2[i]), 0);
    }
    ck_assert(bt_wait(&slow, &slow.requests, 3, W));
    reply_later(&slow, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(bt_reply_wait(&r2[i], W));
        ck_assert_int_eq(r2[i].status, 0);
        char want[16];
        snprintf(want, sizeof want, "later:q%d", i);
        ck_assert_str_eq((char *)r2[i].data, want);
        ck_assert_int_eq(r2[i].calls, 1);
        bt_reply_free(&r2[i]);
    }
    /* unknown target: AIPC_EREFUSED with the broker's code as data */
    bt_reply r3;
    bt_reply_init(&r3);
    ck_assert_int_gt(aipc_bus_request(cli.bus, "rr-nobody", "x", 1, 10000, bt_on_reply, &r3), 0);
    ck_assert(bt_reply_wait(&r3, W));
    ck_assert_int_eq(r3.status, AIPC_EREFUSED);
    ck_assert_str_eq((char *)r3.data, "no_such_client");
    bt_reply_free(&r3);
    ck_assert_str_eq(svc.error, "");
    ck_assert(bt_close(&cli) && bt_close(&svc) && bt_close(&slow));
}
END_TEST

START_TEST(request_timeout_and_no_reply)
{
    bt_client cli, mute;
    mute.req_mode = BT_REQ_IGNORE;
    ck_assert_int_eq(bt_open(&mute, bt_suite_broker.wpipe, "to-mute", 1), 0);
    ck_assert_int_eq(bt_open(&cli, bt_suite_broker.wpipe, "to-cli", 0), 0);
    bt_reply r;
    bt_reply_init(&r);
    uint64_t t0 = aipc_test_now_ms();
    ck_assert_int_gt(aipc_bus_request(cli.bus, "to-mute", "x", 1, 400, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    uint64_t took = aipc_test_now_ms() - t0;
    ck_assert_int_eq(r.status, AIPC_ETIMEDOUT);
    ck_assert_uint_ge(took, 350);
    ck_assert_uint_lt(took, 10000);
    bt_reply_free(&r);
    /* the target leaves before replying: the broker answers no_reply */
    bt_reply r2;
    bt_reply_init(&r2);
    ck_assert_int_gt(aipc_bus_request(cli.bus, "to-mute", "y", 1, 20000, bt_on_reply, &r2), 0);
    ck_assert(bt_wait(&mute, &mute.requests, 2, W));
    ck_assert(bt_close(&mute));
    ck_assert(bt_reply_wait(&r2, W));
    ck_assert_int_eq(r2.status, AIPC_EREFUSED);
    ck_assert_str_eq((char *)r2.data, "no_reply");
    bt_reply_free(&r2);
    ck_assert(bt_close(&cli));
}
END_TEST

START_TEST(presence)
{
    bt_client watch, x;
    ck_assert_int_eq(bt_open(&watch, bt_suite_broker.wpipe, "pres-watch", 0), 0);
    ck_assert(bt_sync(&watch, W));   /* the internal $bus subscriptions are in place */
    long long j0 = bt_get(&watch, &watch.joined), l0 = bt_get(&watch, &watch.left);
    ck_assert_int_eq(bt_open(&x, bt_suite_broker.wpipe, "pres-x", 0), 0);
    ck_assert(bt_wait(&watch, &watch.joined, j0 + 1, W));
    EnterCriticalSection(&watch.lock);
    ck_assert_str_eq(watch.last_presence_name, "pres-x");
    ck_assert_uint_eq(watch.last_presence_pid, GetCurrentProcessId());
    ck_assert_uint_eq(watch.last_presence_id, aipc_bus_client_id(x.bus));
    LeaveCriticalSection(&watch.lock);
    ck_assert(bt_close(&x));
    ck_assert(bt_wait(&watch, &watch.left, l0 + 1, W));
    EnterCriticalSection(&watch.lock);
    ck_assert_str_eq(watch.last_presence_name, "pres-x");
    LeaveCriticalSection(&watch.lock);
    /* presence events are not publications for on_message without a $bus filter */
    ck_assert_int_eq(bt_get(&watch, &watch.msgs), 0);
    ck_assert(bt_close(&watch));
}
END_TEST

START_TEST(stats_and_ping)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, NULL, 0), 0);
    bt_reply r;
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_stats(c.bus, 5000, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr((char *)r.data, "\"clients\""));
    ck_assert_ptr_nonnull(strstr((char *)r.data, "\"uptime_ms\""));
    ck_assert_int_eq(((char *)r.data)[0], '{');
    bt_reply_free(&r);
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_ping(c.bus, 5000, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.len, 0);
    bt_reply_free(&r);
    ck_assert(bt_close(&c));
}
END_TEST

START_TEST(peers_in_other_processes)
{
    char t[96], args[512];
    bt_unique_topic(t, sizeof t, "xproc");
    bt_client c;
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, "xproc-test", 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, t), 0);
    ck_assert(bt_sync(&c, W));
    /* a publisher process */
    bt_child pub;
    snprintf(args, sizeof args, "pub %s from-child --pipe %s", t, bt_suite_broker.pipe);
    ck_assert_int_eq(bt_child_start(&pub, "aipc.exe", args, NULL), 0);
    DWORD child_pid = pub.pid;
    ck_assert(bt_child_wait(&pub, W));
    ck_assert_int_eq(pub.exit_code, 0);
    ck_assert(bt_wait(&c, &c.msgs, 1, W));
    ck_assert_str_eq((char *)bt_kept(&c, 0)->data, "from-child");
    ck_assert_uint_eq(bt_kept(&c, 0)->from_pid, child_pid);
    bt_child_free(&pub);
    /* an echo service process: wait for its presence, then request */
    long long j0 = bt_get(&c, &c.joined);
    bt_child svc;
    snprintf(args, sizeof args, "serve xproc-echo --count 1 --pipe %s", bt_suite_broker.pipe);
    ck_assert_int_eq(bt_child_start(&svc, "aipc.exe", args, NULL), 0);
    int seen = 0;
    for (long long k = j0 + 1; !seen && bt_wait(&c, &c.joined, k, W); k++) {
        EnterCriticalSection(&c.lock);
        seen = strcmp(c.last_presence_name, "xproc-echo") == 0;
        LeaveCriticalSection(&c.lock);
    }
    ck_assert(seen);
    bt_reply r;
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_request(c.bus, "xproc-echo", "echo me", 7, 10000, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq((char *)r.data, "echo me");
    bt_reply_free(&r);
    ck_assert(bt_child_wait(&svc, W));                  /* --count 1: exits after one request */
    ck_assert_int_eq(svc.exit_code, 0);
    bt_child_free(&svc);
    ck_assert(bt_close(&c));
}
END_TEST

START_TEST(close_inside_callback)
{
    char t[96];
    bt_unique_topic(t, sizeof t, "cic");
    bt_client sub, pub;
    ck_assert_int_eq(bt_open(&sub, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(bt_open(&pub, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    bt_reply pending;
    bt_reply_init(&pending);
    ck_assert_int_gt(aipc_bus_request(sub.bus, "nobody-answers-cic", "x", 1, 60000, bt_on_reply,
                                      &pending), 0);
    EnterCriticalSection(&sub.lock);
    sub.close_in_callback = 1;
    LeaveCriticalSection(&sub.lock);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(aipc_bus_publish(pub.bus, t, "m", 1, false), 0);
    ck_assert(bt_wait(&sub, &sub.closed, 1, W));
    ck_assert(bt_reply_wait(&pending, W));
    ck_assert(pending.status == AIPC_ECLOSED || pending.status == AIPC_EREFUSED);
    bt_reply_free(&pending);
    ck_assert(bt_sync(&pub, W));
    ck_assert_int_eq(bt_get(&sub, &sub.msgs), 1);       /* nothing after the closing callback */
    ck_assert_int_eq(bt_get(&sub, &sub.state_after_close), 0);
    sub.bus = NULL;                                     /* already closed */
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

START_TEST(large_payload_and_many_frames)
{
    char t[96];
    bt_unique_topic(t, sizeof t, "big");
    bt_client sub, pub;
    ck_assert_int_eq(bt_open(&sub, bt_suite_broker.wpipe, NULL, 1), 0);
    ck_assert_int_eq(bt_open(&pub, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    size_t big = 3u * 1024u * 1024u + 17u;
    uint8_t *buf = malloc(big);
    aipc_pattern_fill(buf, big, 0xB16);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, big, false), 0);
    for (uint32_t i = 0; i < 500; i++) {
        uint8_t small[16];
        aipc_pattern_fill(small, sizeof small, i);
        ck_assert_int_eq(aipc_bus_publish(pub.bus, t, small, sizeof small, false), 0);
    }
    ck_assert(bt_wait(&sub, &sub.msgs, 501, W));
    bt_msg *m = bt_kept(&sub, 0);
    ck_assert_uint_eq(m->len, big);
    ck_assert_int_eq(aipc_pattern_check(m->data, big, 0xB16), -1);
    for (uint32_t i = 0; i < 500; i++)
        ck_assert_int_eq(aipc_pattern_check(bt_kept(&sub, i + 1)->data, 16, i), -1);
    free(buf);
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

/* aipc_bus_options.engine: each client's callbacks run on its engine's I/O thread, the default
 * (and a caller's struct from before the field) is PIPE_ASYNC, other values are refused. */
START_TEST(engine_option)
{
    char t[96], f[128];
    bt_unique_topic(t, sizeof t, "engine");
    snprintf(f, sizeof f, "%s/#", t);
    aipc_bus_options o;
    static bt_client apc, iocp, def, old, env;   /* zeroed: keep 0, req_mode ECHO */
    aipc_bus *b = NULL;
    bt_options(&apc, &o, bt_suite_broker.wpipe, NULL, 1);
    o.engine = (PipeImplType)7;
    ck_assert_int_eq(aipc_bus_connect(&o, &b), AIPC_EINVAL);
    ck_assert_ptr_null(b);
    o.engine = PIPE_ASYNC;
    ck_assert_int_eq(bt_connect(&apc, &o), 0);
    bt_options(&iocp, &o, bt_suite_broker.wpipe, NULL, 1);
    o.engine = PIPE_OVERLAPPED;
    ck_assert_int_eq(bt_connect(&iocp, &o), 0);
    bt_options(&def, &o, bt_suite_broker.wpipe, NULL, 1);
    aipc_bus_options init;
    aipc_bus_options_init(&init);
    o.engine = init.engine;                             /* what aipc_bus_options_init gives */
    ck_assert_int_eq(bt_connect(&def, &o), 0);
    bt_options(&old, &o, bt_suite_broker.wpipe, NULL, 1);
    o.size = (uint32_t)offsetof(aipc_bus_options, engine);   /* built before the field */
    o.engine = (PipeImplType)7;                          /* not part of that struct: ignored */
    ck_assert_int_eq(bt_connect(&old, &o), 0);
    bt_options(&env, &o, bt_suite_broker.wpipe, NULL, 1);      /* this run's engine (the suite's) */
    ck_assert_int_eq(bt_connect(&env, &o), 0);
    bt_client *all[] = {&apc, &iocp, &def, &old, &env};
    for (int i = 0; i < 5; i++) {
        ck_assert(bt_wait(all[i], &all[i]->connected, 1, W));
        ck_assert_int_eq(aipc_bus_subscribe(all[i]->bus, f), 0);
        ck_assert(bt_sync(all[i], W));
    }
    /* every client publishes once and receives all five: data flows both ways on each */
    for (int i = 0; i < 5; i++) {
        char tt[128];
        snprintf(tt, sizeof tt, "%s/%d", t, i);
        ck_assert_int_eq(aipc_bus_publish(all[i]->bus, tt, "x", 1, false), 0);
    }
    for (int i = 0; i < 5; i++)
        ck_assert(bt_wait(all[i], &all[i]->msgs, 5, W));
    ck_assert_uint_ne(apc.io_thread, 0);
    ck_assert_uint_ne(iocp.io_thread, 0);
    ck_assert_uint_ne(apc.io_thread, iocp.io_thread);   /* two engines, two threads */
    ck_assert_uint_eq(def.io_thread, apc.io_thread);    /* default: PIPE_ASYNC */
    ck_assert_uint_eq(old.io_thread, apc.io_thread);    /* older struct: PIPE_ASYNC */
    ck_assert_uint_eq(env.io_thread, aipc_test_bus_engine() == PIPE_OVERLAPPED ? iocp.io_thread
                                                                              : apc.io_thread);
    for (int i = 0; i < 5; i++) {
        ck_assert(bt_close(all[i]));
        ck_assert_int_eq(all[i]->closed, 1);
        ck_assert_str_eq(all[i]->error, "");
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_api");
    TCase *tc = bt_tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, connect_state_close);
    tcase_add_test(tc, pubsub_wildcards);
    tcase_add_test(tc, retain_and_clear);
    tcase_add_test(tc, direct_messages);
    tcase_add_test(tc, request_reply);
    tcase_add_test(tc, request_timeout_and_no_reply);
    tcase_add_test(tc, presence);
    tcase_add_test(tc, stats_and_ping);
    tcase_add_test(tc, peers_in_other_processes);
    tcase_add_test(tc, close_inside_callback);
    tcase_add_test(tc, large_payload_and_many_frames);
    tcase_add_test(tc, engine_option);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN_EX(suite, bt_suite_broker_start, bt_suite_broker_stop, 0u);
