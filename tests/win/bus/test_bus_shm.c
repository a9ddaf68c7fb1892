/* test_bus_shm.c - the bus client's shared memory against the real broker (bt_suite_broker,
 * its Win32 backend installed): a 1 MiB publication goes through the publisher's segment and
 * the broker's fan-out segment and arrives byte-exact, with the counters of both clients
 * moving and the publisher's slot released; sizes around the threshold mixed with small ones
 * keep their order; send, request and reply go shared too; a client with AIPC_SHM_OFF is still
 * served, inline; with a dispatcher the queued item holds the view until its callback ran;
 * shared publications queued when the broker is killed go inline to the next one.
 * The full suites (fan-out, kills, cycles) are tests/win/bus_shm. Waits are
 * event-based and bounded: a ping (bt_sync) is the barrier after which the broker has answered
 * every announce written before it. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"

#define W AIPC_TEST_WAIT_MS
#define MIB (1024u * 1024u)

static aipc_bus_counters counters(bt_client *c)
{
    aipc_bus_counters k;
    memset(&k, 0xEE, sizeof k);
    k.size = sizeof k;
    ck_assert_int_eq(aipc_bus_get_counters(c->bus, &k), 0);
    ck_assert_uint_eq(k.size, sizeof k);
    return k;
}

/* A connected client with the given shm option; after the ping its first segment (announced
 * at the welcome, ahead of the ping) is confirmed by the broker. */
static void open_client(bt_client *c, const char *name, int keep, uint32_t shm)
{
    aipc_bus_options o;
    bt_options(c, &o, bt_suite_broker.wpipe, name, 0);
    c->keep = keep;
    o.shm = shm;
    ck_assert_int_eq(bt_connect(c, &o), 0);
    ck_assert(bt_wait(c, &c->connected, 1, W));
    ck_assert(bt_sync(c, W));
}

START_TEST(publish_1mib_shared)
{
    char t[96];
    bt_unique_topic(t, sizeof t, "shm1");
    bt_client sub, pub;
    open_client(&sub, NULL, 1, AIPC_SHM_AUTO);
    open_client(&pub, NULL, 0, AIPC_SHM_AUTO);
    aipc_bus_counters ks = counters(&sub), kp = counters(&pub);
    ck_assert_uint_eq(ks.shm_active, 1);
    ck_assert_uint_eq(kp.shm_active, 1);
    ck_assert_uint_ge(kp.shm_segments, 1);              /* confirmed before the pong */
    ck_assert_uint_eq(kp.shm_sent, 0);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    uint8_t *buf = malloc(MIB);
    /* round 1 makes the broker create its fan-out segment for sub (sub confirms it before
     * its pong); round 2 must reach sub through it */
    for (int round = 0; round < 2; round++) {
        aipc_pattern_fill(buf, MIB, 0x5E0 + (uint32_t)round);
        ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, MIB, false), 0);
        ck_assert(bt_wait(&sub, &sub.msgs, round + 1, W));
        ck_assert(bt_sync(&sub, W));
        bt_msg *m = bt_kept(&sub, (size_t)round);
        ck_assert_uint_eq(m->len, MIB);
        ck_assert_int_eq(aipc_pattern_check(m->data, MIB, 0x5E0 + (uint32_t)round), -1);
    }
    ck_assert(bt_sync(&pub, W));                         /* the broker's shm_done came first */
    kp = counters(&pub);
    ks = counters(&sub);
    ck_assert_uint_eq(kp.shm_sent, 2);
    ck_assert_uint_eq(kp.shm_fallback, 0);
    ck_assert_uint_eq(kp.shm_held_bytes, 0);
    ck_assert_uint_ge(ks.shm_recv, 1);
    ck_assert_uint_ge(ks.shm_peer_segments, 1);
    ck_assert_uint_eq(ks.shm_mapfail, 0);
    free(buf);
    ck_assert_str_eq(sub.error, "");
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

/* Sizes around the threshold interleaved with small ones, two rounds (the second one shared
 * both ways), arrive byte-exact and in publishing order. */
START_TEST(mixed_sizes_in_order)
{
    static const size_t sizes[] = {65535, 65536, 16, 65537, 3 * MIB + 5, 0, 200000, 1, 65536};
    const size_t n = sizeof sizes / sizeof sizes[0];
    char t[96];
    bt_unique_topic(t, sizeof t, "shmmix");
    bt_client sub, pub;
    open_client(&sub, NULL, 1, AIPC_SHM_AUTO);
    open_client(&pub, NULL, 0, AIPC_SHM_AUTO);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    uint8_t *buf = malloc(3 * MIB + 5);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            aipc_pattern_fill(buf, sizes[i], (uint32_t)(round * 100 + i));
            ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, sizes[i], false), 0);
        }
        ck_assert(bt_wait(&sub, &sub.msgs, (long long)(n * (size_t)(round + 1)), W));
        ck_assert(bt_sync(&sub, W));
    }
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < n; i++) {
            bt_msg *m = bt_kept(&sub, (size_t)round * n + i);
            ck_assert_uint_eq(m->len, sizes[i]);
            ck_assert_int_eq(aipc_pattern_check(m->data, sizes[i], (uint32_t)(round * 100 + i)),
                             -1);
        }
    ck_assert(bt_sync(&pub, W));
    aipc_bus_counters kp = counters(&pub), ks = counters(&sub);
    ck_assert_uint_eq(kp.shm_sent + kp.shm_fallback, 10);   /* 5 eligible per round */
    ck_assert_uint_ge(kp.shm_sent, 5);
    ck_assert_uint_ge(ks.shm_recv, 5);
    ck_assert_uint_eq(kp.shm_held_bytes, 0);
    free(buf);
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

/* send, request and reply of 256 KiB: the reply callback and on_direct/on_request see the
 * bytes exactly (the echo service replies with what it got). */
START_TEST(send_request_reply_shared)
{
    bt_client svc, cli;
    open_client(&svc, "shm-svc", 1, AIPC_SHM_AUTO);
    open_client(&cli, "shm-cli", 0, AIPC_SHM_AUTO);
    const size_t len = 256u * 1024u;
    uint8_t *buf = malloc(len);
    for (int round = 0; round < 2; round++) {
        aipc_pattern_fill(buf, len, 0xD1 + (uint32_t)round);
        ck_assert_int_eq(aipc_bus_send(cli.bus, "shm-svc", buf, len), 0);
        ck_assert(bt_wait(&svc, &svc.directs, round + 1, W));
        aipc_pattern_fill(buf, len, 0xE1 + (uint32_t)round);
        bt_reply r;
        bt_reply_init(&r);
        ck_assert_int_gt(aipc_bus_request(cli.bus, "shm-svc", buf, len, 20000, bt_on_reply, &r),
                         0);
        ck_assert(bt_reply_wait(&r, W));
        ck_assert_int_eq(r.status, 0);
        ck_assert_uint_eq(r.len, len);
        ck_assert_int_eq(aipc_pattern_check(r.data, len, 0xE1 + (uint32_t)round), -1);
        bt_reply_free(&r);
        ck_assert(bt_sync(&svc, W) && bt_sync(&cli, W));
    }
    ck_assert_int_eq(aipc_pattern_check(bt_kept(&svc, 0)->data, len, 0xD1), -1);
    ck_assert_int_eq(aipc_pattern_check(bt_kept(&svc, 1)->data, len, 0xE1), -1);
    aipc_bus_counters kc = counters(&cli), kv = counters(&svc);
    ck_assert_uint_eq(kc.shm_sent, 4);                   /* 2 sends, 2 requests */
    ck_assert_uint_eq(kv.shm_sent, 2);                   /* 2 replies */
    ck_assert_uint_ge(kv.shm_recv + kc.shm_recv, 1);     /* round 2 at least comes shared */
    ck_assert_uint_eq(kc.shm_held_bytes, 0);
    free(buf);
    ck_assert_str_eq(svc.error, "");
    ck_assert(bt_close(&svc) && bt_close(&cli));
}
END_TEST

/* AIPC_SHM_OFF: no shm in hello, everything inline, still served by a shared publisher. */
START_TEST(declined_client_served)
{
    char t[96];
    bt_unique_topic(t, sizeof t, "shmoff");
    bt_client sub, pub;
    open_client(&sub, NULL, 1, AIPC_SHM_OFF);
    open_client(&pub, NULL, 0, AIPC_SHM_AUTO);
    ck_assert_uint_eq(counters(&sub).shm_active, 0);
    ck_assert_uint_eq(counters(&pub).shm_active, 1);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    uint8_t *buf = malloc(MIB);
    aipc_pattern_fill(buf, MIB, 0x0FF);
    char t2[96];
    bt_unique_topic(t2, sizeof t2, "shmoff-out");
    ck_assert_int_eq(aipc_bus_publish(sub.bus, t2, buf, MIB, false), 0);  /* inline out */
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, MIB, false), 0);   /* shared in */
    ck_assert(bt_wait(&sub, &sub.msgs, 1, W));
    ck_assert(bt_sync(&sub, W));
    ck_assert_uint_eq(bt_kept(&sub, 0)->len, MIB);
    ck_assert_int_eq(aipc_pattern_check(bt_kept(&sub, 0)->data, MIB, 0x0FF), -1);
    aipc_bus_counters ks = counters(&sub);
    ck_assert_uint_eq(ks.shm_sent + ks.shm_recv + ks.shm_fallback + ks.shm_segments, 0);
    ck_assert_uint_eq(counters(&pub).shm_sent, 1);
    /* an invalid option value is refused */
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.shm = 7;
    aipc_bus *bad = NULL;
    ck_assert_int_eq(aipc_bus_connect(&o, &bad), AIPC_EINVAL);
    ck_assert_ptr_null(bad);
    free(buf);
    ck_assert(bt_close(&sub) && bt_close(&pub));
}
END_TEST

/* The broker's stats member `key` (through c, which has no dispatcher). */
static long long broker_stat(bt_client *c, const char *key)
{
    bt_reply r;
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_stats(c->bus, 5000, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, W));
    ck_assert_int_eq(r.status, 0);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr((const char *)r.data, pat);
    long long v = p ? atoll(p + strlen(pat)) : -1;
    bt_reply_free(&r);
    return v;
}

/* A worker thread running a MANUAL dispatcher, which the test can pause (idle acknowledged). */
typedef struct pump {
    aipc_dispatcher *d;
    HANDLE ctl, idle, thread;
    volatile LONG pause, stop;
} pump;

static DWORD WINAPI pump_main(void *arg)
{
    pump *p = arg;
    HANDLE hs[2] = {p->ctl, aipc_dispatcher_event(p->d)};
    while (!p->stop) {
        if (p->pause) {
            SetEvent(p->idle);
            WaitForSingleObject(p->ctl, INFINITE);
            continue;
        }
        WaitForMultipleObjects(2, hs, FALSE, INFINITE);
        if (!p->pause && !p->stop)
            aipc_dispatcher_run(p->d, 0);
    }
    return 0;
}

static void pump_set(pump *p, LONG pause)
{
    ResetEvent(p->idle);
    InterlockedExchange(&p->pause, pause);
    SetEvent(p->ctl);
    if (pause)
        ck_assert_int_eq(WaitForSingleObject(p->idle, W), WAIT_OBJECT_0);
}

/* With a dispatcher the queued item keeps the view (no copy) and the release is owed only
 * after its callback ran: while the dispatcher is paused the broker still holds the slots of
 * publications the client has already read; once the callbacks ran, nothing is held. */
START_TEST(dispatcher_holds_the_view)
{
    char t[96];
    bt_unique_topic(t, sizeof t, "shmdisp");
    pump pm = {0};
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &pm.d), 0);
    pm.ctl = CreateEventW(NULL, FALSE, FALSE, NULL);
    pm.idle = CreateEventW(NULL, TRUE, FALSE, NULL);
    pm.thread = CreateThread(NULL, 0, pump_main, &pm, 0, NULL);
    bt_client sub, pub;
    aipc_bus_options o;
    bt_options(&sub, &o, bt_suite_broker.wpipe, NULL, 0);
    sub.keep = 1;
    o.dispatcher = pm.d;
    o.max_dispatch_bytes = 64u * MIB;
    ck_assert_int_eq(bt_connect(&sub, &o), 0);
    ck_assert(bt_wait(&sub, &sub.connected, 1, W));
    open_client(&pub, NULL, 0, AIPC_SHM_AUTO);
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, t), 0);
    ck_assert(bt_sync(&sub, W));
    uint8_t *buf = malloc(MIB);
    aipc_pattern_fill(buf, MIB, 0xA0);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, MIB, false), 0);   /* fan-out segment */
    ck_assert(bt_wait(&sub, &sub.msgs, 1, W));
    ck_assert(bt_sync(&sub, W));                         /* sub confirmed it */
    long long recv0 = (long long)counters(&sub).shm_recv;
    pump_set(&pm, 1);
    for (uint32_t i = 1; i <= 2; i++) {
        aipc_pattern_fill(buf, MIB, 0xA0 + i);
        ck_assert_int_eq(aipc_bus_publish(pub.bus, t, buf, MIB, false), 0);
    }
    /* no event says "two items queued": poll the dispatcher's count, bounded */
    uint64_t queued = 0;
    for (DWORD waited = 0; waited < W && queued < 2; waited += 10) {
        ck_assert_int_eq(aipc_dispatcher_queued(pm.d, &queued, NULL), 0);
        if (queued < 2)
            Sleep(10);
    }
    ck_assert_uint_ge(queued, 2);
    ck_assert_int_eq((long long)counters(&sub).shm_recv, recv0 + 2);
    ck_assert(bt_sync(&pub, W));
    ck_assert_int_ge(broker_stat(&pub, "shm_bytes"), 2 * (long long)MIB);   /* still held */
    ck_assert_int_eq(bt_get(&sub, &sub.msgs), 1);
    pump_set(&pm, 0);
    ck_assert(bt_wait(&sub, &sub.msgs, 3, W));
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(aipc_pattern_check(bt_kept(&sub, i)->data, MIB, 0xA0 + (uint32_t)i), -1);
    pump_set(&pm, 1);                                    /* every callback and release ran */
    pump_set(&pm, 0);
    ck_assert(bt_sync(&sub, W));                          /* its shm_done went before the ping */
    ck_assert_int_eq(broker_stat(&pub, "shm_bytes"), 0);
    free(buf);
    ck_assert_str_eq(sub.error, "");
    ck_assert(bt_close(&sub) && bt_close(&pub));
    InterlockedExchange(&pm.stop, 1);
    SetEvent(pm.ctl);
    ck_assert_int_eq(WaitForSingleObject(pm.thread, W), WAIT_OBJECT_0);
    CloseHandle(pm.thread);
    CloseHandle(pm.ctl);
    CloseHandle(pm.idle);
    aipc_dispatcher_free(pm.d);
}
END_TEST

/* The broker killed while shared publications may still be queued behind a large inline one
 * (retained: always inline): the queued descriptors go back inline and reach the new broker
 * (or are lost with the connection, at most once), never as descriptors of the old connection:
 * no protocol error, every delivery byte-exact and in order, nothing held afterwards. */
START_TEST(queued_descriptors_survive_a_broker_kill)
{
    bt_broker br;
    ck_assert_int_eq(bt_broker_start(&br, "shmkill"), 0);
    bt_client sub, pub;
    aipc_bus_options o;
    bt_options(&sub, &o, br.wpipe, NULL, 1);
    sub.keep = 1;
    ck_assert_int_eq(bt_connect(&sub, &o), 0);
    bt_options(&pub, &o, br.wpipe, NULL, 1);
    o.max_queue_bytes = 16u * MIB;
    ck_assert_int_eq(bt_connect(&pub, &o), 0);
    ck_assert(bt_wait(&sub, &sub.connected, 1, W) && bt_wait(&pub, &pub.connected, 1, W));
    ck_assert(bt_sync(&pub, W));
    ck_assert_int_eq(aipc_bus_subscribe(sub.bus, "shmkill/#"), 0);
    ck_assert(bt_sync(&sub, W));
    uint8_t *buf = malloc(4 * MIB);
    aipc_pattern_fill(buf, 4 * MIB, 0x4B);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, "shmkill/r", buf, 4 * MIB, true), 0);
    for (uint32_t i = 1; i <= 4; i++) {
        aipc_pattern_fill(buf, MIB, i);
        ck_assert_int_eq(aipc_bus_publish(pub.bus, "shmkill/m", buf, MIB, false), 0);
    }
    bt_broker_kill(&br);
    ck_assert(bt_wait(&pub, &pub.disconnected, 1, W));
    ck_assert_int_eq(bt_broker_restart(&br), 0);
    ck_assert(bt_wait(&sub, &sub.connected, 2, W) && bt_wait(&pub, &pub.connected, 2, W));
    ck_assert(bt_sync(&sub, W) && bt_sync(&pub, W));
    aipc_pattern_fill(buf, MIB, 99);
    ck_assert_int_eq(aipc_bus_publish(pub.bus, "shmkill/m", buf, MIB, false), 0);
    ck_assert(bt_wait(&sub, &sub.msgs, 1, W));
    /* every delivery until the marker (event-based: one more message at a time) */
    bt_msg *last = NULL;
    for (;;) {
        long long n = bt_get(&sub, &sub.msgs);
        EnterCriticalSection(&sub.lock);
        last = sub.nkept ? &sub.kept[sub.nkept - 1] : NULL;
        int done = last && last->len == MIB && aipc_pattern_check(last->data, MIB, 99) == -1;
        LeaveCriticalSection(&sub.lock);
        if (done)
            break;
        last = NULL;
        if (!bt_wait(&sub, &sub.msgs, n + 1, W))
            break;
    }
    ck_assert_ptr_nonnull(last);
    uint32_t prev = 0;
    for (size_t i = 0; i < sub.nkept; i++) {
        bt_msg *m = bt_kept(&sub, i);
        if (strcmp(m->topic, "shmkill/r") == 0) {
            ck_assert_uint_eq(m->len, 4 * MIB);
            ck_assert_int_eq(aipc_pattern_check(m->data, m->len, 0x4B), -1);
            continue;
        }
        ck_assert_uint_eq(m->len, MIB);
        uint32_t seed = 0;
        for (uint32_t k = prev + 1; k <= 4 && !seed; k++)
            if (aipc_pattern_check(m->data, MIB, k) == -1)
                seed = k;
        if (!seed)
            ck_assert_int_eq(aipc_pattern_check(m->data, MIB, 99), -1);
        prev = seed ? seed : 99;
    }
    ck_assert_uint_eq(prev, 99);
    ck_assert(bt_sync(&pub, W));
    ck_assert_uint_eq(counters(&pub).shm_held_bytes, 0);
    ck_assert_int_eq(bt_get(&pub, &pub.errors), 0);
    ck_assert_int_eq(bt_get(&sub, &sub.errors), 0);
    ck_assert_str_eq(pub.error, "");
    ck_assert_str_eq(sub.error, "");
    free(buf);
    ck_assert(bt_close(&sub) && bt_close(&pub));
    bt_broker_stop(&br);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_shm");
    TCase *tc = bt_tcase_create("shm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, publish_1mib_shared);
    tcase_add_test(tc, mixed_sizes_in_order);
    tcase_add_test(tc, send_request_reply_shared);
    tcase_add_test(tc, declined_client_served);
    tcase_add_test(tc, dispatcher_holds_the_view);
    tcase_add_test(tc, queued_descriptors_survive_a_broker_kill);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN_EX(suite, bt_suite_broker_start, bt_suite_broker_stop, 0u);
