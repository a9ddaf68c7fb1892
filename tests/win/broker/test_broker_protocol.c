/*
 * test_broker_protocol.c - the broker's protocol end to end (broker_suite.h): direct messages,
 * request/reply, errors and retained messages with broker-stamped senders; bad input (each kind
 * answered with an error and a close) while good traffic flows undisturbed.
 */
#include "broker_suite.h"

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

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_protocol");
    bs_add(s, "direct_request_retained", direct_request_retained);
    bs_add(s, "bad_input", bad_input);
    return s;
}

CHECK_MAIN(make_suite);
