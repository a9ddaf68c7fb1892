/* test_shm_meta.c - the shared-memory wire forms (proto/shm.h): descriptors put and found,
 * malformed forms refused, segment names, control metas built and parsed. */
#include "check_main.h"
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "proto/shm.h"

static int find(const char *meta, aipc_shm_desc *d)
{
    return aipc_shm_desc_find(meta, strlen(meta), d);
}

START_TEST(desc_put_find_round_trip)
{
    const aipc_shm_desc cases[] = {{0, 0, 0}, {3, 4096, 1048576}, {UINT32_MAX, UINT32_MAX, UINT32_MAX}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char meta[128] = "{\"op\":\"pub\",\"topic\":\"a/b\",";
        size_t at = strlen(meta);
        size_t n = aipc_shm_desc_put(meta + at, sizeof meta - at - 2, &cases[i]);
        ck_assert_uint_gt(n, 0);
        memcpy(meta + at + n, "}", 2);
        aipc_shm_desc d = {9, 9, 9};
        ck_assert_int_eq(find(meta, &d), 1);
        ck_assert_uint_eq(d.seg, cases[i].seg);
        ck_assert_uint_eq(d.off, cases[i].off);
        ck_assert_uint_eq(d.len, cases[i].len);
    }
    char out[64];
    aipc_shm_desc d = {3, 0, 1048576};
    ck_assert_uint_eq(aipc_shm_desc_put(out, sizeof out, &d), strlen("\"shm\":[3,0,1048576]"));
    ck_assert_mem_eq(out, "\"shm\":[3,0,1048576]", strlen("\"shm\":[3,0,1048576]"));
    ck_assert_uint_eq(aipc_shm_desc_put(out, strlen("\"shm\":[3,0,1048576]") - 1, &d), 0);
}
END_TEST

START_TEST(desc_found_anywhere_at_top_level)
{
    aipc_shm_desc d;
    ck_assert_int_eq(find("{\"shm\":[1,2,3]}", &d), 1);
    ck_assert_uint_eq(d.seg + d.off + d.len, 6);
    ck_assert_int_eq(find(" { \"a\" : {\"shm\":[9,9,9]} , \"b\":[\"shm\",{}], \"shm\" : [ 7 , 8192 , 5 ] } \r\n", &d), 1);
    ck_assert_uint_eq(d.seg, 7);
    ck_assert_uint_eq(d.off, 8192);
    ck_assert_uint_eq(d.len, 5);
    ck_assert_int_eq(find("{\"s\\u0068m\":[1,2,3]}", &d), 1);        /* escaped key */
    ck_assert_int_eq(find("{\"op\":\"pub\",\"topic\":\"shm\"}", &d), 0);
    ck_assert_int_eq(find("{}", &d), 0);
    ck_assert_int_eq(find("{\"x\":{\"shm\":[1,2,3]}}", &d), 0);      /* nested: not ours */
    ck_assert_int_eq(find("{\"shmx\":[1,2,3],\"sh\":1}", &d), 0);
    ck_assert_int_eq(find("{\"a\":-1.5e+3,\"b\":null,\"c\":true,\"d\":\"\\ud83d\\ude00\\n\"}", &d), 0);
}
END_TEST

START_TEST(desc_malformed_refused)
{
    static const char *const bad[] = {
        "", " ", "[]", "\"shm\"", "{", "}", "{\"shm\":[1,2,3]", "{\"shm\":[1,2,3]}x", "{\"shm\":[1,2,3]}{}",
        "{\"shm\":[1,2]}", "{\"shm\":[1,2,3,4]}", "{\"shm\":[]}", "{\"shm\":{}}", "{\"shm\":1}",
        "{\"shm\":[1,2,-3]}", "{\"shm\":[1,2,3.0]}", "{\"shm\":[1,2,3e0]}", "{\"shm\":[1,2,\"3\"]}",
        "{\"shm\":[1,2,4294967296]}", "{\"shm\":[1,2,01]}", "{\"shm\":[1,2,99999999999]}",
        "{\"shm\":[1,2,3],\"shm\":[1,2,3]}", "{\"shm\":[1,2,3],\"s\\u0068m\":[4,5,6]}",
        "{\"shm\":[1,,3]}", "{\"shm\":[1,2,3,]}", "{\"a\":1,}", "{,\"a\":1}", "{\"a\" 1}", "{a:1}",
        "{'shm':[1,2,3]}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
        "{\"a\":+1}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u00g0\"}",
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":[1 2]}", "{\"a\":\"open}",
        "{\"a\":1111111111111111111111111111111111111111111111111111111111111111}", /* 64 chars */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aipc_shm_desc d;
        ck_assert_msg(find(bad[i], &d) == AIPC_EPROTO, "accepted: %s", bad[i]);
    }
    /* A NUL byte anywhere, and nesting deeper than the scanner's bound. */
    aipc_shm_desc d;
    ck_assert_int_eq(aipc_shm_desc_find("{\"a\":\"x\0\"}", 9, &d), AIPC_EPROTO);
    ck_assert_int_eq(aipc_shm_desc_find("{\"shm\":[1,2,3]}\0", 16, &d), AIPC_EPROTO);
    char deep[256] = "{\"a\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    ck_assert_int_eq(find(deep, &d), AIPC_EPROTO);
    ck_assert_int_eq(aipc_shm_desc_find(NULL, 0, &d), AIPC_EPROTO);
    /* 63-character numbers are still numbers. */
    ck_assert_int_eq(find("{\"a\":111111111111111111111111111111111111111111111111111111111111111}", &d), 0);
}
END_TEST

START_TEST(names)
{
    const uint8_t rnd[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                             0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    char name[AIPC_SHM_NAME_BUF];
    size_t n = aipc_shm_name_put(name, sizeof name, 4242, rnd, 7);
    ck_assert_str_eq(name, "aipc-4242-0123456789abcdeffedcba9876543210-7");
    ck_assert_uint_eq(n, strlen(name));
    ck_assert(aipc_shm_name_valid(name, n));
    n = aipc_shm_name_put(name, sizeof name, UINT32_MAX, rnd, UINT32_MAX);
    ck_assert_uint_eq(n, 59);
    ck_assert(aipc_shm_name_valid(name, n));
    ck_assert_uint_eq(aipc_shm_name_put(name, sizeof name, 0, rnd, 1), 0);
    ck_assert_uint_eq(aipc_shm_name_put(name, AIPC_SHM_NAME_BUF - 1, 1, rnd, 1), 0);
    ck_assert(aipc_shm_name_valid("aipc-1-00000000000000000000000000000000-0", 41));
    static const char *const bad[] = {
        "", "aipc-", "aipc-1-0123456789abcdeffedcba9876543210", "aipc-1-0123456789abcdeffedcba9876543210-",
        "aipc-0-0123456789abcdeffedcba9876543210-1", "aipc-01-0123456789abcdeffedcba9876543210-1",
        "aipc-1-0123456789abcdeffedcba9876543210-01", "aipc-1-0123456789ABCDEFfedcba9876543210-1",
        "aipc-1-0123456789abcdeffedcba987654321-1", "aipc-1-0123456789abcdeffedcba98765432100-1",
        "aipc-4294967296-0123456789abcdeffedcba9876543210-1", "aipc-1-0123456789abcdeffedcba9876543210-4294967296",
        "AIPC-1-0123456789abcdeffedcba9876543210-1", "aipc--0123456789abcdeffedcba9876543210-1",
        "aipc-1-0123456789abcdeffedcba9876543210-1\\x", "Local\\aipc-1-0123456789abcdeffedcba9876543210-1",
        "aipc-1-0123456789abcdeffedcba9876543210-1 ", "aipc-1-0123456789abcdef-fedcba9876543210-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!aipc_shm_name_valid(bad[i], strlen(bad[i])), "accepted: %s", bad[i]);
    ck_assert(!aipc_shm_name_valid("aipc-1-00000000000000000000000000000000-0\0", 42));
    ck_assert(!aipc_shm_name_valid(NULL, 0));
}
END_TEST

static int ctl(const char *meta, aipc_shm_ctl *c)
{
    static aipc_shm_ref refs[AIPC_SHM_DONE_MAX];
    return aipc_shm_ctl_parse(meta, strlen(meta), c, refs, AIPC_SHM_DONE_MAX);
}

START_TEST(control_metas_round_trip)
{
    char m[4096];
    aipc_shm_ctl c;
    const char *name = "aipc-77-0123456789abcdeffedcba9876543210-3";
    size_t n = aipc_shm_seg_put(m, sizeof m, 3, name, 8u << 20, 1, 9);
    ck_assert_uint_gt(n, 0);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_seg\",\"seg\":3,\"name\":\"aipc-77-0123456789abcdeffedcba9876543210-3\","
                        "\"size\":8388608,\"session\":1,\"id\":9}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_SEG);
    ck_assert_uint_eq(c.seg, 3);
    ck_assert_str_eq(c.name, name);
    ck_assert_uint_eq(c.size, 8u << 20);
    ck_assert_uint_eq(c.session, 1);
    ck_assert_uint_eq(c.id, 9);
    ck_assert(!c.rel);
    ck_assert_uint_eq(aipc_shm_seg_put(m, n - 1, 3, name, 8u << 20, 1, 9), 0);
    ck_assert_uint_eq(aipc_shm_seg_put(m, sizeof m, 3, "aipc-x", 4096, 1, 9), 0);

    /* The release page's announce: the same with "rel":1. */
    n = aipc_shm_relpage_put(m, sizeof m, 1, name, 4096, 1, 2);
    ck_assert_uint_gt(n, 0);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-77-0123456789abcdeffedcba9876543210-3\","
                        "\"size\":4096,\"session\":1,\"id\":2,\"rel\":1}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_SEG);
    ck_assert(c.rel);
    ck_assert_uint_eq(c.seg, 1);
    ck_assert_uint_eq(c.size, 4096);
    ck_assert_uint_eq(c.id, 2);
    ck_assert_uint_eq(aipc_shm_relpage_put(m, n - 1, 1, name, 4096, 1, 2), 0);
    ck_assert_uint_eq(aipc_shm_relpage_put(m, sizeof m, 1, "aipc-x", 4096, 1, 2), 0);
    /* "rel" is read on announces only: an answer or another op ignores it. */
    ck_assert_int_eq(ctl("{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":true,\"rel\":7}", &c), 1);
    ck_assert(!c.rel);

    n = aipc_shm_answer_put(m, sizeof m, 9, 3, true, NULL);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_seg\",\"re\":9,\"seg\":3,\"ok\":true}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_SEG_ANSWER);
    ck_assert_uint_eq(c.id, 9);
    ck_assert_uint_eq(c.seg, 3);
    ck_assert(c.ok);
    n = aipc_shm_answer_put(m, sizeof m, 10, 4, false, "access_denied");
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_seg\",\"re\":10,\"seg\":4,\"ok\":false,\"code\":\"access_denied\"}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert(!c.ok);
    ck_assert_str_eq(c.code, "access_denied");
    ck_assert_uint_eq(aipc_shm_answer_put(m, sizeof m, 1, 1, true, "x"), 0);
    ck_assert_uint_eq(aipc_shm_answer_put(m, sizeof m, 1, 1, false, "Bad-Code"), 0);

    aipc_shm_ref r[AIPC_SHM_DONE_MAX + 1], back[AIPC_SHM_DONE_MAX];
    for (uint32_t i = 0; i <= AIPC_SHM_DONE_MAX; i++)
        r[i] = (aipc_shm_ref){UINT32_MAX - i, UINT32_MAX};
    n = aipc_shm_done_put(m, sizeof m, r, AIPC_SHM_DONE_MAX);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, 4096);                           /* fits a 4 KiB meta */
    ck_assert_int_eq(aipc_shm_ctl_parse(m, n, &c, back, AIPC_SHM_DONE_MAX), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_DONE);
    ck_assert_uint_eq(c.nrefs, AIPC_SHM_DONE_MAX);
    ck_assert_mem_eq(back, r, sizeof back);
    ck_assert_int_eq(aipc_shm_ctl_parse(m, n, &c, back, AIPC_SHM_DONE_MAX - 1), AIPC_EPROTO);
    ck_assert_uint_eq(aipc_shm_done_put(m, sizeof m, r, AIPC_SHM_DONE_MAX + 1), 0);
    ck_assert_uint_eq(aipc_shm_done_put(m, sizeof m, r, 0), 0);
    n = aipc_shm_done_put(m, sizeof m, (aipc_shm_ref[]){{3, 0}, {3, 1048576}}, 2);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_done\",\"r\":[[3,0],[3,1048576]]}");
    ck_assert_uint_eq(aipc_shm_done_put(m, n - 1, (aipc_shm_ref[]){{3, 0}, {3, 1048576}}, 2), 0);

    n = aipc_shm_unseg_put(m, sizeof m, 5);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"shm_unseg\",\"seg\":5}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_UNSEG);
    ck_assert_uint_eq(c.seg, 5);

    n = aipc_shm_hello_put(m, sizeof m, true);
    m[n] = 0;
    ck_assert_str_eq(m, "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1}}");
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_int_eq(c.op, AIPC_SHM_OP_HELLO);
    ck_assert_uint_eq(c.v, 1);
    ck_assert_uint_eq(c.shm_v, 1);
    n = aipc_shm_hello_put(m, sizeof m, false);
    m[n] = 0;
    ck_assert_int_eq(ctl(m, &c), 1);
    ck_assert_uint_eq(c.shm_v, 0);
    ck_assert_int_eq(ctl("{\"v\":2,\"shm\":{\"x\":[],\"v\":3},\"op\":\"p2p\",\"more\":1}", &c), 1);
    ck_assert_uint_eq(c.v, 2);
    ck_assert_uint_eq(c.shm_v, 3);
}
END_TEST

START_TEST(control_metas_refused_or_not_ours)
{
    aipc_shm_ctl c;
    /* Not ours: 0. */
    ck_assert_int_eq(ctl("{\"op\":\"pub\",\"seg\":\"x\",\"r\":1}", &c), 0);
    ck_assert_int_eq(ctl("{\"shm\":[1,2,3]}", &c), 0);
    ck_assert_int_eq(ctl("{\"op\":1}", &c), 0);
    ck_assert_int_eq(ctl("{\"op\":\"shm_seg_and_a_long_one\"}", &c), 0);
    ck_assert_int_eq(ctl("{\"op\":\"pub\",\"seg\":1,\"seg\":2}", &c), 0);
    /* Malformed: AIPC_EPROTO. */
    static const char *const bad[] = {
        "{\"op\":\"shm_seg\"", "{\"op\":\"shm_unseg\",\"op\":\"shm_unseg\",\"seg\":1}",
        "{\"op\":\"shm_unseg\"}", "{\"op\":\"shm_unseg\",\"seg\":-1}", "{\"op\":\"shm_unseg\",\"seg\":1,\"seg\":1}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":0,\"session\":1,\"id\":1}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-x\",\"size\":4096,\"session\":1,\"id\":1}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"id\":1}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":7,\"size\":4096,\"session\":1,\"id\":1}",
        "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1}", "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":1}",
        "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":true,\"code\":\"x\"}",
        "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":false,\"code\":\"A\"}",
        "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":false,\"code\":\"\"}",
        "{\"op\":\"shm_seg\",\"re\":1,\"seg\":1,\"ok\":true,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\"}",
        "{\"op\":\"shm_done\"}", "{\"op\":\"shm_done\",\"r\":[]}", "{\"op\":\"shm_done\",\"r\":[[1]]}",
        "{\"op\":\"shm_done\",\"r\":[[1,2,3]]}", "{\"op\":\"shm_done\",\"r\":[1,2]}", "{\"op\":\"shm_done\",\"r\":{}}",
        "{\"op\":\"p2p\"}", "{\"op\":\"p2p\",\"v\":0}", "{\"op\":\"p2p\",\"v\":1,\"shm\":1}",
        "{\"op\":\"p2p\",\"v\":1,\"shm\":{}}", "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":0}}",
        "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1,\"v\":1}}", "{\"op\":\"p2p\",\"v\":1}x",
        /* a release page's "rel" is exactly 1, once */
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"session\":1,\"id\":1,\"rel\":0}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"session\":1,\"id\":1,\"rel\":2}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"session\":1,\"id\":1,\"rel\":true}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"session\":1,\"id\":1,\"rel\":1,\"rel\":1}",
        "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-1-0123456789abcdeffedcba9876543210-1\",\"size\":4096,\"session\":1,\"id\":1,\"rel\":1.0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ctl(bad[i], &c) == AIPC_EPROTO, "accepted: %s", bad[i]);
    /* A shm_done with no room for its pairs. */
    ck_assert_int_eq(aipc_shm_ctl_parse("{\"op\":\"shm_done\",\"r\":[[1,2]]}", 29, &c, NULL, 0), AIPC_EPROTO);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("shm_meta");
    TCase *tc = tcase_create("meta");
    tcase_add_test(tc, desc_put_find_round_trip);
    tcase_add_test(tc, desc_found_anywhere_at_top_level);
    tcase_add_test(tc, desc_malformed_refused);
    tcase_add_test(tc, names);
    tcase_add_test(tc, control_metas_round_trip);
    tcase_add_test(tc, control_metas_refused_or_not_ours);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
