/*
 * test_broker_traffic.c - the broker under load (broker_suite.h): 8 publishers x 8 subscribers
 * on wildcard filters, 200 connections held open while traffic flows (presence), a slow
 * consumer that must not hold the others back, and max_clients (the connection over the limit
 * is closed, the others are unaffected).
 */
#include "broker_suite.h"

#define NPUB 8
#define NSUB 8

/* Counts publisher messages (t/p<P>/k<i%4>, NMSG each) matching any of the filters. */
static unsigned expected_count(const char *const *filters, int nf, int npub, unsigned nmsg)
{
    unsigned n = 0;
    for (int p = 0; p < npub; p++)
        for (unsigned i = 0; i < nmsg; i++) {
            char topic[64];
            snprintf(topic, sizeof topic, "t/p%d/k%u", p, i % 4);
            for (int f = 0; f < nf; f++)
                if (raw_topic_match(filters[f], topic)) {
                    n++;
                    break;
                }
        }
    return n;
}

/* ---- 64 clients: 8 publishers x 8 subscribers on wildcard filters ---------------------------- */
START_TEST(fanout_64_clients)
{
    static const char *const filters[NSUB][3] = {
        { "t/#" }, { "t/+/k0" }, { "t/p1/+" }, { "t/p2/k1", "t/p3/#", "t/p3/k0" /* overlap: once */ },
        { "+/+/k3" }, { "t/p4/k0", "t/p5/k2", "t/p6/k3" }, { "#" }, { "t/p7/k2", "nomatch/#" },
    };
    raw_broker b;
    broker_start(&b, "fan", NULL);
    char go[96], done[96], ready[NSUB][96];
    HANDLE hgo = mk_event(go, sizeof go, "go"), hdone = mk_event(done, sizeof done, "done");
    HANDLE hready[NSUB];
    aipc_proc subs[NSUB], pubs[NPUB];
    unsigned total = 0;
    for (int s = 0; s < NSUB; s++) {
        int nf = 0;
        char args[512] = "";
        while (nf < 3 && filters[s][nf]) {
            strcat(args, " ");
            strcat(args, filters[s][nf]);
            nf++;
        }
        unsigned exp = expected_count(filters[s], nf, NPUB, NMSG);
        total += exp;
        hready[s] = mk_event(ready[s], sizeof ready[s], "rdy");
        ck_assert_int_eq(aipc_proc_spawn(&subs[s], "raw_client.exe", "sub %s sub%d %s %s %u%s",
                                         b.pipe, s, ready[s], done, exp, args), 0);
    }
    ck_assert(WaitForMultipleObjects(NSUB, hready, TRUE, 60000) < WAIT_OBJECT_0 + NSUB);
    size_t mem0 = raw_broker_private_bytes(&b);
    uint64_t t0 = aipc_test_now_ms();
    SetEvent(hgo);
    for (int p = 0; p < NPUB; p++)
        ck_assert_int_eq(aipc_proc_spawn(&pubs[p], "raw_client.exe", "pub %s pub%d %d %d %s",
                                         b.pipe, p, p, NMSG, go), 0);
    for (int p = 0; p < NPUB; p++)
        expect_exit(&pubs[p], 120000, "publisher");
    SetEvent(hdone);
    for (int s = 0; s < NSUB; s++)
        expect_exit(&subs[s], 120000, "subscriber");
    uint64_t t1 = aipc_test_now_ms();
    size_t mem1 = raw_broker_private_bytes(&b);
    fprintf(stderr, "fanout: %d publishers x %d messages -> %u deliveries in %llu ms "
            "(broker private bytes %llu -> %llu)\n", NPUB, NMSG, total,
            (unsigned long long)(t1 - t0), (unsigned long long)mem0, (unsigned long long)mem1);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    for (int s = 0; s < NSUB; s++)
        CloseHandle(hready[s]);
    CloseHandle(hgo);
    CloseHandle(hdone);
}
END_TEST

/* Counts $bus/joined and $bus/left events for names starting with prefix. */
static void count_presence(raw_frame *f, const char *prefix, int *joined, int *left)
{
    const char *topic = raw_str(f, "topic");
    if (strcmp(raw_op(f), "msg") != 0 || !topic)
        return;
    cJSON *p = cJSON_ParseWithLength((const char *)f->payload, f->payload_len);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "name");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(p, "pid");
    ck_assert_msg(cJSON_IsNumber(id) && cJSON_IsNumber(pid), "presence payload %s", f->payload);
    if (cJSON_IsString(n) && strncmp(n->valuestring, prefix, strlen(prefix)) == 0) {
        if (strcmp(topic, "$bus/joined") == 0)
            (*joined)++;
        else if (strcmp(topic, "$bus/left") == 0)
            (*left)++;
    }
    cJSON_Delete(p);
}

/* ---- 200 connections held open while traffic flows; presence ------------------------------- */
START_TEST(many_connections_presence)
{
    enum { HOLDERS = 4, PER = 50 };
    raw_broker b;
    broker_start(&b, "many", NULL);
    raw_conn *w = raw_connect(b.pipe, W);
    ck_assert(w && raw_hello(w, "watcher", W) > 0);
    ck_assert_int_eq(raw_sub(w, "$bus/+", 1, W), 0);

    char go[96], done[96], rdy[96], rel[96], hrdy[HOLDERS][96];
    HANDLE hgo = mk_event(go, sizeof go, "go"), hdone = mk_event(done, sizeof done, "done");
    HANDLE hr = mk_event(rdy, sizeof rdy, "srdy"), hrel = mk_event(rel, sizeof rel, "rel");
    HANDLE hh[HOLDERS];
    aipc_proc sub, pub, hold[HOLDERS];
    /* Traffic: one publisher -> one subscriber. The publisher is held mid-stream by credits
     * this test grants (blocks of 100 messages), so the 200 connections open, stay open and
     * close while its traffic is still flowing. */
    char credit[96];
    aipc_test_name(credit, sizeof credit, "credit");
    HANDLE hsem = CreateSemaphoreA(NULL, 0, 1000, credit);
    ck_assert(hsem != NULL);
    ck_assert_int_eq(aipc_proc_spawn(&sub, "raw_client.exe", "sub %s sub0 %s %s %d t/p0/#",
                                     b.pipe, rdy, done, NMSG), 0);
    ck_assert(aipc_test_wait(hr, 60000));
    ck_assert_int_eq(aipc_proc_spawn(&pub, "raw_client.exe", "pub %s pub0 0 %d %s %s", b.pipe,
                                     NMSG, go, credit), 0);
    SetEvent(hgo);
    ReleaseSemaphore(hsem, 3, NULL);
    for (int i = 0; i < HOLDERS; i++) {
        hh[i] = mk_event(hrdy[i], sizeof hrdy[i], "hrdy");
        ck_assert_int_eq(aipc_proc_spawn(&hold[i], "raw_client.exe", "hold %s %d %s %s", b.pipe,
                                         PER, hrdy[i], rel), 0);
    }
    DWORD hbase = 0, hpeak = 0, hend = 0;
    GetProcessHandleCount(b.process, &hbase);
    ck_assert(WaitForMultipleObjects(HOLDERS, hh, TRUE, 90000) < WAIT_OBJECT_0 + HOLDERS);
    GetProcessHandleCount(b.process, &hpeak);
    /* All 200 are open now: the broker's stats agree. */
    ck_assert_int_eq(raw_send(w, "{\"op\":\"stats\",\"id\":2}", NULL, 0, W), 0);
    raw_frame f;
    int joined = 0, left = 0;
    for (;;) {
        ck_assert_int_eq(raw_recv(w, &f, W), 1);
        if (raw_num(&f, "re") == 2)
            break;
        count_presence(&f, "hold", &joined, &left);
        raw_frame_free(&f);
    }
    cJSON *st = cJSON_ParseWithLength((const char *)f.payload, f.payload_len);
    const cJSON *clients = cJSON_GetObjectItemCaseSensitive(st, "clients");
    ck_assert_msg(cJSON_IsNumber(clients) && clients->valuedouble >= HOLDERS * PER + 1,
                  "stats: %s", f.payload);
    cJSON_Delete(st);
    raw_frame_free(&f);
    ck_assert_msg(WaitForSingleObject(pub.process, 0) == WAIT_TIMEOUT,
                  "the publisher finished before the connections were all open");
    ReleaseSemaphore(hsem, 3, NULL);
    SetEvent(hrel);
    for (int i = 0; i < HOLDERS; i++)
        expect_exit(&hold[i], 60000, "holder");
    ck_assert(WaitForSingleObject(pub.process, 0) == WAIT_TIMEOUT);
    ReleaseSemaphore(hsem, 10, NULL);
    /* Presence: every holder connection joined and left exactly once. */
    while (left < HOLDERS * PER) {
        int r = raw_recv(w, &f, W);
        ck_assert_msg(r == 1, "presence: joined %d left %d", joined, left);
        count_presence(&f, "hold", &joined, &left);
        raw_frame_free(&f);
    }
    ck_assert_int_eq(joined, HOLDERS * PER);
    ck_assert_int_eq(left, HOLDERS * PER);
    /* every pipe handle of the 200 was closed (the sync orders it after their detach) */
    ck_assert_int_eq(raw_sync(w, 9, W), 0);
    GetProcessHandleCount(b.process, &hend);
    fprintf(stderr, "many: broker handles %lu before, %lu with 200 more clients, %lu after\n",
            (unsigned long)hbase, (unsigned long)hpeak, (unsigned long)hend);
    ck_assert_msg(hbase == 0 || hend <= hbase + 2, "handle leak: %lu -> %lu", hbase, hend);
    expect_exit(&pub, 120000, "publisher");
    SetEvent(hdone);
    expect_exit(&sub, 120000, "subscriber");
    raw_close(w);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    for (int i = 0; i < HOLDERS; i++)
        CloseHandle(hh[i]);
    CloseHandle(hgo);
    CloseHandle(hdone);
    CloseHandle(hr);
    CloseHandle(hrel);
    CloseHandle(hsem);
}
END_TEST

/* ---- slow consumer ---------------------------------------------------------------------------- */
START_TEST(slow_consumer)
{
    enum { N = 3000 };
    raw_broker b;
    broker_start(&b, "slow", "\"max_queue_bytes\":262144");
    raw_conn *slow = raw_connect(b.pipe, W);
    ck_assert(raw_hello(slow, "slow", W) > 0);
    ck_assert_int_eq(raw_sub(slow, "t/p3/#", 1, W), 0);
    char go[96], done[96], rdy[96];
    HANDLE hgo = mk_event(go, sizeof go, "go"), hdone = mk_event(done, sizeof done, "done");
    HANDLE hr = mk_event(rdy, sizeof rdy, "rdy");
    /* The fast reader grants the publisher credit (at most two blocks of 100 ahead), so it
     * can never fall a whole queue behind; the slow one never reads until the end. */
    char credit[96];
    aipc_test_name(credit, sizeof credit, "credit");
    HANDLE hsem = CreateSemaphoreA(NULL, 0, 1000, credit);
    ck_assert(hsem != NULL);
    aipc_proc fast, pub;
    ck_assert_int_eq(aipc_proc_spawn(&fast, "raw_client.exe", "sub %s fast %s %s %d --credit=%s t/p3/#",
                                     b.pipe, rdy, done, N, credit), 0);
    ck_assert(aipc_test_wait(hr, 60000));
    size_t mem0 = raw_broker_private_bytes(&b);
    SetEvent(hgo);
    ck_assert_int_eq(aipc_proc_spawn(&pub, "raw_client.exe", "pub %s pub3 3 %d %s %s", b.pipe, N,
                                     go, credit), 0);
    expect_exit(&pub, 120000, "publisher");
    SetEvent(hdone);
    expect_exit(&fast, 120000, "fast subscriber");   /* got all N, exact and in order */
    size_t mem1 = raw_broker_private_bytes(&b);
    fprintf(stderr, "slow consumer: broker private bytes %llu -> %llu\n", (unsigned long long)mem0, (unsigned long long)mem1);
    ck_assert(mem0 > 0 && mem1 > 0);
    ck_assert_msg(mem1 < mem0 + 32u * 1024 * 1024, "broker memory grew %llu -> %llu", (unsigned long long)mem0, (unsigned long long)mem1);

    /* Now the slow one reads: in-order publications plus dropped reports adding up to N. */
    unsigned got = 0, dropped = 0;
    long long last = -1;
    while (got + dropped < N) {
        raw_frame f;
        int r = raw_recv(slow, &f, W);
        ck_assert_msg(r == 1, "slow: got %u dropped %u of %d", got, dropped, N);
        if (strcmp(raw_op(&f), "dropped") == 0) {
            dropped += (unsigned)raw_num(&f, "count");
        } else {
            ck_assert_str_eq(raw_op(&f), "msg");
            uint32_t seed;
            memcpy(&seed, f.payload, 4);
            ck_assert((long long)(seed & 0xFFFFF) > last);
            last = seed & 0xFFFFF;
            ck_assert(aipc_pattern_check(f.payload, f.payload_len, seed) == -1);
            got++;
        }
        raw_frame_free(&f);
    }
    fprintf(stderr, "slow consumer: received %u, dropped %u\n", got, dropped);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_eq(got + dropped, N);
    ck_assert_int_eq(raw_sync(slow, 5, W), 0);
    /* The stats count the drops. */
    ck_assert_int_eq(raw_send(slow, "{\"op\":\"stats\",\"id\":6}", NULL, 0, W), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(slow, &f, "stats", 6, W), 1);
    cJSON *st = cJSON_ParseWithLength((const char *)f.payload, f.payload_len);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(st, "drops");
    ck_assert_msg(cJSON_IsNumber(d) && d->valuedouble >= dropped, "stats %s", f.payload);
    cJSON_Delete(st);
    raw_frame_free(&f);
    raw_close(slow);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    CloseHandle(hgo);
    CloseHandle(hdone);
    CloseHandle(hr);
    CloseHandle(hsem);
}
END_TEST

/* ---- max_clients: the connection over the limit is closed, the others are unaffected -------- */
START_TEST(max_clients_refused)
{
    raw_broker b;
    broker_start(&b, "max", "\"max_clients\":3");
    raw_conn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = raw_connect(b.pipe, W);
        ck_assert(c[i] && raw_hello(c[i], NULL, W) > 0);
    }
    DWORD h0 = 0;
    GetProcessHandleCount(b.process, &h0);
    raw_conn *x = raw_connect(b.pipe, W);
    ck_assert(x != NULL);
    raw_frame f;
    raw_send(x, "{\"op\":\"hello\",\"proto\":1}", NULL, 0, W);   /* may fail: already closed */
    ck_assert_int_eq(raw_recv(x, &f, W), -1);
    raw_close(x);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(raw_sync(c[i], 1, W), 0);
    raw_close(c[0]);
    /* a place is free again (the close is seen once the broker read the end of the pipe) */
    ck_assert_int_eq(raw_sync(c[1], 2, W), 0);
    x = raw_connect(b.pipe, W);
    long long id = -1;
    for (int tries = 0; tries < 50 && id <= 0; tries++) {
        id = raw_hello(x, NULL, W);
        if (id <= 0) {      /* raced the detach of c[0]: refused, try again (bounded) */
            raw_close(x);
            x = raw_connect(b.pipe, W);
        }
    }
    ck_assert(id > 0);
    /* the broker's handles came back to the level with three clients (no handle leak) */
    DWORD h1 = 0;
    GetProcessHandleCount(b.process, &h1);
    fprintf(stderr, "max_clients: broker handles %lu -> %lu\n", (unsigned long)h0, (unsigned long)h1);
    ck_assert_msg(h0 == 0 || h1 <= h0 + 1, "broker handles %lu -> %lu", h0, h1);
    raw_close(x);
    raw_close(c[1]);
    raw_close(c[2]);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_traffic");
    bs_add(s, "slow_consumer", slow_consumer);
    bs_add(s, "fanout_64_clients", fanout_64_clients);
    bs_add(s, "many_connections_presence", many_connections_presence);
    bs_add(s, "max_clients_refused", max_clients_refused);
    return s;
}

CHECK_MAIN(make_suite);
