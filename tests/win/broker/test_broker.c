/*
 * test_broker.c - broker suites under Wine: asyncipc-broker.exe runs as its own process; clients
 * are raw_client.exe processes and raw connections of this process (raw_proto.c, no SDK).
 * Synchronisation is by named events, process exits and protocol round trips (ping -> pong);
 * every wait is bounded.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define W 30000u                /* bound for single protocol waits */
#define NPUB 8
#define NSUB 8
#define NMSG 1000

/* Creates a named manual-reset event with a unique name (written to name). */
static HANDLE mk_event(char *name, size_t cap, const char *tag)
{
    aipc_test_name(name, cap, tag);
    HANDLE h = CreateEventA(NULL, TRUE, FALSE, name);
    ck_assert(h != NULL);
    return h;
}

/* Waits for a helper and asserts its exit code. */
static void expect_exit(aipc_proc *p, DWORD ms, const char *what)
{
    ck_assert_msg(aipc_proc_wait(p, ms) == 0, "%s did not finish in time", what);
    ck_assert_msg(p->exit_code == 0, "%s exited with %lu", what, (unsigned long)p->exit_code);
    aipc_proc_close(p);
}

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

/* The broker of the running test, killed by the teardown if the test failed half-way. */
static raw_broker *g_broker;

/* Starts the test's broker (and remembers it for the teardown). */
static void broker_start(raw_broker *b, const char *tag, const char *extra)
{
    ck_assert_int_eq(raw_broker_start(b, tag, extra), 0);
    g_broker = b;
}

static uint64_t g_t0;

/* Records the start of a test (its duration is printed by the teardown). */
static void setup(void)
{
    g_t0 = aipc_test_now_ms();
}

static void teardown(void)
{
    fprintf(stderr, "  test took %llu ms\n", (unsigned long long)(aipc_test_now_ms() - g_t0));
    aipc_proc_kill_all();
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
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

/* Receives the next frame and checks its op (and optional error code). */
static void want(raw_conn *c, raw_frame *f, const char *op, const char *code)
{
    int r = raw_recv(c, f, W);
    ck_assert_msg(r == 1, "expected %s, got %d", op, r);
    ck_assert_msg(strcmp(raw_op(f), op) == 0, "expected %s, got %s", op, f->meta_text);
    if (code)
        ck_assert_msg(raw_str(f, "code") && strcmp(raw_str(f, "code"), code) == 0,
                      "expected code %s: %s", code, f->meta_text);
}

/* Checks the broker-stamped sender. */
static void check_from(const raw_frame *f, const char *name, long long id)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(f->meta, "from");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(from, "name");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(from, "id");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(from, "pid");
    ck_assert_msg(cJSON_IsString(n) && strcmp(n->valuestring, name) == 0, "from: %s", f->meta_text);
    ck_assert_msg(cJSON_IsNumber(i) && (long long)i->valuedouble == id, "from.id: %s", f->meta_text);
    ck_assert_msg(cJSON_IsNumber(p) && (DWORD)p->valuedouble == GetCurrentProcessId(),
                  "from.pid: %s", f->meta_text);
}

/* ---- direct messages, request/reply, errors, retained ---------------------------------------- */
START_TEST(direct_request_retained)
{
    raw_broker b;
    broker_start(&b, "dir", NULL);
    raw_conn *a = raw_connect(b.pipe, W), *bo = raw_connect(b.pipe, W);
    long long ida = raw_hello(a, "alice", W), idb = raw_hello(bo, "bob", W);
    ck_assert(ida > 0 && idb > 0 && ida != idb);
    raw_frame f;
    char meta[256];

    /* send by name, forged from ignored; send by id (binary payload with NULs) */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"send\",\"to\":\"bob\",\"from\":{\"id\":1,\"name\":\"x\",\"pid\":1}}",
                              "hi", 2, W), 0);
    want(bo, &f, "direct", NULL);
    check_from(&f, "alice", ida);
    ck_assert(f.payload_len == 2 && memcmp(f.payload, "hi", 2) == 0);
    raw_frame_free(&f);
    uint8_t bin[1000];
    aipc_pattern_fill(bin, sizeof bin, 77);
    snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":%lld}", idb);
    ck_assert_int_eq(raw_send(a, meta, bin, sizeof bin, W), 0);
    want(bo, &f, "direct", NULL);
    ck_assert(f.payload_len == sizeof bin && aipc_pattern_check(f.payload, f.payload_len, 77) == -1);
    raw_frame_free(&f);

    /* a large payload (read in place by the broker, written in place to bob) */
    {
        uint32_t n = 5u * 1024 * 1024 + 3;
        uint8_t *large = malloc(n);
        aipc_pattern_fill(large, n, 99);
        ck_assert_int_eq(raw_send(a, "{\"op\":\"send\",\"to\":\"bob\"}", large, n, W), 0);
        want(bo, &f, "direct", NULL);
        ck_assert_uint_eq(f.payload_len, n);
        ck_assert(aipc_pattern_check(f.payload, f.payload_len, 99) == -1);
        raw_frame_free(&f);
        free(large);
    }

    /* request / reply */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"req\",\"to\":\"bob\",\"id\":5}", "q?", 2, W), 0);
    want(bo, &f, "req", NULL);
    check_from(&f, "alice", ida);
    ck_assert(raw_num(&f, "id") == 5 && f.payload_len == 2);
    raw_frame_free(&f);
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%lld,\"re\":5}", ida);
    ck_assert_int_eq(raw_send(bo, meta, "answer", 6, W), 0);
    want(a, &f, "rep", NULL);
    check_from(&f, "bob", idb);
    ck_assert(raw_num(&f, "re") == 5 && f.payload_len == 6 && memcmp(f.payload, "answer", 6) == 0);
    raw_frame_free(&f);

    /* no_such_client (by name and by id) */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"send\",\"to\":\"nobody\",\"id\":9}", "x", 1, W), 0);
    want(a, &f, "error", "no_such_client");
    ck_assert(raw_num(&f, "re") == 9);
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(a, "{\"op\":\"req\",\"to\":999999,\"id\":10}", "x", 1, W), 0);
    want(a, &f, "error", "no_such_client");
    raw_frame_free(&f);

    /* name_taken closes the newcomer */
    raw_conn *dup = raw_connect(b.pipe, W);
    ck_assert_int_eq(raw_send(dup, "{\"op\":\"hello\",\"proto\":1,\"name\":\"bob\"}", NULL, 0, W), 0);
    want(dup, &f, "error", "name_taken");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_recv(dup, &f, W), -1);
    raw_close(dup);

    /* retained: delivered right after the ok of a matching subscription */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"pub\",\"topic\":\"r/x\",\"retain\":true}", "R1", 2, W), 0);
    ck_assert_int_eq(raw_send(a, "{\"op\":\"pub\",\"topic\":\"r/y/z\",\"retain\":true}", "R2", 2, W), 0);
    ck_assert_int_eq(raw_sync(a, 11, W), 0);
    raw_conn *c = raw_connect(b.pipe, W);
    ck_assert(raw_hello(c, NULL, W) > 0);
    ck_assert_int_eq(raw_send(c, "{\"op\":\"sub\",\"topic\":\"r/+\",\"id\":1}", NULL, 0, W), 0);
    want(c, &f, "ok", NULL);
    raw_frame_free(&f);
    want(c, &f, "msg", NULL);
    ck_assert_str_eq(raw_str(&f, "topic"), "r/x");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f.meta, "retained")));
    ck_assert(f.payload_len == 2 && memcmp(f.payload, "R1", 2) == 0);
    check_from(&f, "alice", ida);
    raw_frame_free(&f);
    /* a live publication is not flagged retained; an empty retained payload clears */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"pub\",\"topic\":\"r/x\",\"retain\":true}", NULL, 0, W), 0);
    want(c, &f, "msg", NULL);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(f.meta, "retained")));
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(c, "{\"op\":\"sub\",\"topic\":\"r/#\",\"id\":2}", NULL, 0, W), 0);
    want(c, &f, "ok", NULL);
    raw_frame_free(&f);
    want(c, &f, "msg", NULL);
    ck_assert_str_eq(raw_str(&f, "topic"), "r/y/z");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_sync(c, 3, W), 0);     /* r/x was cleared: nothing else came */

    /* bad_topic */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"pub\",\"topic\":\"a/+\",\"id\":12}", NULL, 0, W), 0);
    want(a, &f, "error", "bad_topic");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(a, "{\"op\":\"pub\",\"topic\":\"$bus/joined\",\"id\":13}", NULL, 0, W), 0);
    want(a, &f, "error", "bad_topic");
    raw_frame_free(&f);

    /* no_reply: the target leaves with a request pending */
    ck_assert_int_eq(raw_send(a, "{\"op\":\"req\",\"to\":\"bob\",\"id\":6}", "q", 1, W), 0);
    want(bo, &f, "req", NULL);
    raw_frame_free(&f);
    raw_close(bo);
    want(a, &f, "error", "no_reply");
    ck_assert(raw_num(&f, "re") == 6);
    raw_frame_free(&f);

    raw_close(a);
    raw_close(c);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
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

/* Expects an error (optional code) and then the broker closing the connection. */
static void want_error_close(raw_conn *c, const char *code)
{
    raw_frame f;
    want(c, &f, "error", code);
    raw_frame_free(&f);
    ck_assert_int_eq(raw_recv(c, &f, W), -1);
}

/* ---- bad input -------------------------------------------------------------------------------- */
START_TEST(bad_input)
{
    raw_broker b;
    broker_start(&b, "bad", "\"max_payload\":1048576");
    /* Traffic that must not be disturbed while the bad clients misbehave. */
    char go[96], done[96], rdy[96], mid[96];
    HANDLE hgo = mk_event(go, sizeof go, "go"), hdone = mk_event(done, sizeof done, "done");
    HANDLE hr = mk_event(rdy, sizeof rdy, "rdy"), hmid = mk_event(mid, sizeof mid, "mid");
    aipc_proc sub, pub, midp;
    ck_assert_int_eq(aipc_proc_spawn(&sub, "raw_client.exe", "sub %s sub1 %s %s %d t/p1/+",
                                     b.pipe, rdy, done, NMSG), 0);
    ck_assert(aipc_test_wait(hr, 60000));
    SetEvent(hgo);
    ck_assert_int_eq(aipc_proc_spawn(&pub, "raw_client.exe", "pub %s pub1 1 %d %s", b.pipe, NMSG, go), 0);
    raw_conn *good = raw_connect(b.pipe, W);
    ck_assert(raw_hello(good, "good", W) > 0);
    raw_frame f;

    /* invalid JSON, meta not an object, unknown op: error, connection stays */
    raw_conn *c = raw_connect(b.pipe, W);
    ck_assert(raw_hello(c, NULL, W) > 0);
    ck_assert_int_eq(raw_send(c, "{not json", NULL, 0, W), 0);
    want(c, &f, "error", "bad_meta");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(c, "[1,2]", "x", 1, W), 0);
    want(c, &f, "error", "bad_meta");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(c, "{\"op\":\"frobnicate\",\"id\":3}", NULL, 0, W), 0);
    want(c, &f, "error", "unknown_op");
    ck_assert(raw_num(&f, "re") == 3);
    raw_frame_free(&f);
    ck_assert_int_eq(raw_send(c, "{\"id\":4}", NULL, 0, W), 0);
    want(c, &f, "error", "unknown_op");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_sync(c, 5, W), 0);
    raw_close(c);

    /* missing hello: error, closed */
    c = raw_connect(b.pipe, W);
    ck_assert_int_eq(raw_send(c, "{\"op\":\"pub\",\"topic\":\"t/x\"}", "x", 1, W), 0);
    want_error_close(c, "hello_required");
    raw_close(c);

    /* oversize meta (header only): too_large, closed */
    c = raw_connect(b.pipe, W);
    ck_assert(raw_hello(c, NULL, W) > 0);
    uint8_t hdr[8];
    uint32_t ml = 65537, pl = 0;
    memcpy(hdr, &ml, 4);
    memcpy(hdr + 4, &pl, 4);
    ck_assert_int_eq(raw_write(c, hdr, 8, W), 0);
    want_error_close(c, "too_large");
    raw_close(c);

    /* oversize payload (max_payload 1 MiB): too_large, closed */
    c = raw_connect(b.pipe, W);
    ck_assert(raw_hello(c, NULL, W) > 0);
    ml = 2;
    pl = 1048577;
    memcpy(hdr, &ml, 4);
    memcpy(hdr + 4, &pl, 4);
    ck_assert_int_eq(raw_write(c, hdr, 8, W), 0);
    want_error_close(c, "too_large");
    raw_close(c);

    /* garbage bytes: whatever header they make is over a limit or bad meta; never a crash */
    c = raw_connect(b.pipe, W);
    uint8_t junk[4096];
    aipc_pattern_fill(junk, sizeof junk, 0xBADu);
    memset(junk, 0xFF, 8);
    ck_assert_int_eq(raw_write(c, junk, sizeof junk, W), 0);
    want_error_close(c, "too_large");
    raw_close(c);

    /* truncated frame, then close */
    c = raw_connect(b.pipe, W);
    ck_assert(raw_hello(c, NULL, W) > 0);
    ml = 40;
    pl = 5000;
    memcpy(hdr, &ml, 4);
    memcpy(hdr + 4, &pl, 4);
    ck_assert_int_eq(raw_write(c, hdr, 8, W), 0);
    ck_assert_int_eq(raw_write(c, "{\"op\":\"pub\"", 11, W), 0);
    raw_close(c);

    /* a client killed in the middle of a frame */
    ck_assert_int_eq(aipc_proc_spawn(&midp, "raw_client.exe", "midframe %s %s", b.pipe, mid), 0);
    ck_assert(aipc_test_wait(hmid, 60000));
    aipc_proc_kill(&midp);
    aipc_proc_close(&midp);

    /* the broker is up, the well-behaved clients lost nothing */
    ck_assert_int_eq(raw_sync(good, 1, W), 0);
    expect_exit(&pub, 120000, "publisher");
    SetEvent(hdone);
    expect_exit(&sub, 120000, "subscriber");
    ck_assert_int_eq(raw_send(good, "{\"op\":\"stats\",\"id\":2}", NULL, 0, W), 0);
    ck_assert_int_eq(raw_expect(good, &f, "stats", 2, W), 1);
    fprintf(stderr, "bad input: stats %s\n", f.payload);
    raw_frame_free(&f);
    raw_close(good);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    CloseHandle(hgo);
    CloseHandle(hdone);
    CloseHandle(hr);
    CloseHandle(hmid);
}
END_TEST

/* ---- clean stop (Ctrl+Break) sends bye; start-up errors -------------------------------------- */
START_TEST(stop_sends_bye)
{
    raw_broker b;
    broker_start(&b, "bye", NULL);
    raw_conn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = raw_connect(b.pipe, W);
        ck_assert(raw_hello(c[i], NULL, W) > 0);
    }
    /* c[2] is a slow reader with a lot queued: the stop must still finish in time */
    ck_assert_int_eq(raw_sub(c[2], "big/#", 1, W), 0);
    static uint8_t big[200000];
    for (int i = 0; i < 20; i++)
        raw_queue(c[0], "{\"op\":\"pub\",\"topic\":\"big/x\"}", big, sizeof big);
    ck_assert_int_eq(raw_flush(c[0], W), 0);
    ck_assert_int_eq(raw_sync(c[0], 1, W), 0);
    uint64_t t0 = aipc_test_now_ms();
    int rc = raw_broker_stop(&b, 5000);
    uint64_t t1 = aipc_test_now_ms();
    ck_assert_msg(rc == 0, "broker exit %d after %llu ms", rc, (unsigned long long)(t1 - t0));
    ck_assert_uint_lt(t1 - t0, 5000);
    raw_frame f;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(raw_expect(c[i], &f, "bye", -1, W), 1);
        ck_assert_str_eq(raw_str(&f, "reason"), "shutdown");
        raw_frame_free(&f);
        ck_assert_int_eq(raw_recv(c[i], &f, W), -1);
    }
    for (int i = 0; i < 3; i++)
        raw_close(c[i]);
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

/* ---- Ctrl+C in the broker's console stops it cleanly ---------------------------------------- */
START_TEST(ctrl_c_stops)
{
    raw_broker b;
    broker_start(&b, "ctrlc", NULL);
    raw_conn *c = raw_connect(b.pipe, W);
    ck_assert(c && raw_hello(c, NULL, W) > 0);
    /* The broker shares this suite's console (or has none): attach to it, send Ctrl+C to the
     * broker's process group only (it was started with CREATE_NEW_PROCESS_GROUP, in which
     * Ctrl+C is disabled by default, so use Ctrl+Break, which reaches the same handler). */
    BOOL sent = GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, b.pid);   /* FALSE: no console */
    DWORD w = sent ? WaitForSingleObject(b.process, 5000) : WAIT_TIMEOUT;
    if (w != WAIT_OBJECT_0) {
        fprintf(stderr, "ctrl_c_stops: no console control event delivered (Wine without a "
                "console); stopping through --stop-event instead\n");
        ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    } else {
        DWORD code = 99;
        GetExitCodeProcess(b.process, &code);
        ck_assert_uint_eq(code, 0);
        raw_broker_stop(&b, 0);
    }
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "bye", -1, W), 1);
    raw_frame_free(&f);
    raw_close(c);
}
END_TEST

/* ---- logoff / shutdown: the stop is finished before WM_ENDSESSION returns -------------------- */
typedef struct end_session_find {
    DWORD pid;
    HWND w;
} end_session_find;

static BOOL CALLBACK find_end_session(HWND w, LPARAM lp)
{
    end_session_find *f = (end_session_find *)lp;
    DWORD pid = 0;
    wchar_t cls[64];
    GetWindowThreadProcessId(w, &pid);
    if (pid == f->pid && GetClassNameW(w, cls, 64) && wcscmp(cls, L"AsyncIPCBrokerEndSession") == 0) {
        f->w = w;
        return FALSE;
    }
    return TRUE;
}

/* True when the broker's log file holds TEXT. */
static int log_has(const raw_broker *b, const char *text)
{
    FILE *f = fopen(b->log, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

/* The console broker loads user32, so Windows tells it about logoff and shutdown through
 * WM_QUERYENDSESSION / WM_ENDSESSION to its top-level windows and ends the process as soon as
 * WM_ENDSESSION returns. Simulated here: both messages sent to its hidden window, then the
 * process terminated at once. A slow reader with a lot queued makes the stop take its grace
 * time (3 s): the broker must have finished stopping ("broker: stopped" logged) and the other
 * client must have its "bye" by the time WM_ENDSESSION returns, within Windows' 5 s. */
START_TEST(end_session_stops)
{
    raw_broker b;
    broker_start(&b, "endsession", NULL);
    raw_conn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = raw_connect(b.pipe, W);
        ck_assert(c[i] && raw_hello(c[i], NULL, W) > 0);
    }
    /* Under Wine the broker makes the window only when asked (service/win/main.c), and this
     * case then runs behind a display (win.broker_endsession); on Windows it always has one. */
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    const char *want = getenv("AIPC_BROKER_END_SESSION_WINDOW");
    if (ntdll && GetProcAddress(ntdll, "wine_get_version") && !(want && strcmp(want, "1") == 0)) {
        fprintf(stderr, "end_session_stops: Wine without AIPC_BROKER_END_SESSION_WINDOW=1: the "
                "broker has no end-session window (win.broker_endsession runs this case)\n");
        ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
        for (int i = 0; i < 3; i++)
            raw_close(c[i]);
        return;
    }
    end_session_find f = { b.pid, NULL };
    for (int i = 0; i < 100 && !f.w; i++) {
        EnumWindows(find_end_session, (LPARAM)&f);
        if (!f.w)
            Sleep(100);
    }
    ck_assert_msg(f.w != NULL, "the broker has no end-session window");
    ck_assert_int_eq(raw_sub(c[2], "big/#", 1, W), 0);      /* c[2] never reads */
    static uint8_t big[200000];
    for (int i = 0; i < 20; i++)
        raw_queue(c[0], "{\"op\":\"pub\",\"topic\":\"big/x\"}", big, sizeof big);
    ck_assert_int_eq(raw_flush(c[0], W), 0);
    ck_assert_int_eq(raw_sync(c[0], 1, W), 0);
    DWORD_PTR r = 0;
    ck_assert(SendMessageTimeoutW(f.w, WM_QUERYENDSESSION, 0, ENDSESSION_LOGOFF, SMTO_BLOCK, 5000, &r));
    ck_assert_msg(r != 0, "the broker refused to end the session");
    uint64_t t0 = aipc_test_now_ms();
    /* The broker may finish its stop and exit before the reply reaches us: that is the goal
     * too (the stop had finished), so a failed send counts only while the broker still runs. */
    BOOL sent = SendMessageTimeoutW(f.w, WM_ENDSESSION, TRUE, ENDSESSION_LOGOFF, SMTO_BLOCK, 10000, &r);
    uint64_t t1 = aipc_test_now_ms();
    ck_assert_msg(sent || WaitForSingleObject(b.process, 2000) == WAIT_OBJECT_0,
                  "WM_ENDSESSION failed (%lu) while the broker still runs", GetLastError());
    TerminateProcess(b.process, 99);   /* what Windows does once WM_ENDSESSION returns */
    WaitForSingleObject(b.process, 5000);
    fprintf(stderr, "end_session_stops: WM_ENDSESSION returned after %llu ms\n",
            (unsigned long long)(t1 - t0));
    ck_assert_uint_lt(t1 - t0, 5000);
    ck_assert_msg(log_has(&b, "broker: stopped"), "the stop had not finished when WM_ENDSESSION returned");
    raw_frame fr;
    ck_assert_int_eq(raw_expect(c[1], &fr, "bye", -1, W), 1);
    ck_assert_str_eq(raw_str(&fr, "reason"), "shutdown");
    raw_frame_free(&fr);
    raw_broker_stop(&b, 0);
    for (int i = 0; i < 3; i++)
        raw_close(c[i]);
}
END_TEST

/* Runs the broker with args and returns its exit code (bounded). */
static int run_broker(const char *args)
{
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "asyncipc-broker.exe", "%s", args), 0);
    ck_assert_int_eq(aipc_proc_wait(&p, 30000), 0);
    int rc = (int)p.exit_code;
    aipc_proc_close(&p);
    return rc;
}

START_TEST(startup_errors)
{
    char cfg[MAX_PATH], args[3 * MAX_PATH];
    aipc_test_temp_path(cfg, sizeof cfg, "cfg", ".json");
    FILE *fp = fopen(cfg, "wb");
    fputs("{\"pipe_name\":\"x\",\"colour\":\"blue\"}", fp);
    fclose(fp);
    snprintf(args, sizeof args, "run --config \"%s\"", cfg);
    ck_assert_int_eq(run_broker(args), 2);
    fp = fopen(cfg, "wb");
    fputs("{\"pipe_name\":\"x\",\"sddl\":\"D:(A;;ZZ;;;XX\"}", fp);
    fclose(fp);
    ck_assert_int_eq(run_broker(args), 2);
    fp = fopen(cfg, "wb");
    fputs("{\"pipe_name\":\"x\",\"log_file\":\"C:rel.log\"}", fp);
    fclose(fp);
    ck_assert_int_eq(run_broker(args), 2);
    snprintf(args, sizeof args, "run --config \"%s.missing\"", cfg);
    ck_assert_int_eq(run_broker(args), 2);
    ck_assert_int_eq(run_broker("bogus"), 1);
    /* pipe in use: a second broker on the same name refuses to start */
    raw_broker b;
    broker_start(&b, "busy", NULL);
    snprintf(args, sizeof args, "run --config \"%s\" --pipe \\\\.\\pipe\\%s", b.config, b.pipe);
    ck_assert_int_eq(run_broker(args), 3);
    /* and the first one still serves */
    raw_conn *c = raw_connect(b.pipe, W);
    ck_assert(c && raw_hello(c, NULL, W) > 0);
    raw_close(c);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    DeleteFileA(cfg);
}
END_TEST

/* One test case per test so that one can be run alone: broker_suite.exe <name>. */
static void add(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker");
    add(s, "startup_errors", startup_errors);
    add(s, "direct_request_retained", direct_request_retained);
    add(s, "bad_input", bad_input);
    add(s, "stop_sends_bye", stop_sends_bye);
    add(s, "max_clients_refused", max_clients_refused);
    add(s, "ctrl_c_stops", ctrl_c_stops);
    add(s, "end_session_stops", end_session_stops);
    add(s, "slow_consumer", slow_consumer);
    add(s, "fanout_64_clients", fanout_64_clients);
    add(s, "many_connections_presence", many_connections_presence);
    return s;
}

CHECK_MAIN(make_suite);
