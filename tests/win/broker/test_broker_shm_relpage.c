/*
 * test_broker_shm_relpage.c - the broker's release pages (service/core/shm_rel.c) through the
 * real broker process and its Win32 backend (service/win/engine_shm.c), before any SDK uses
 * them: this process is a raw client that creates a 4096-byte section for its own user (the
 * broker's), announces it with "rel":1 and releases the broker's slots only by stores into it.
 *   - the welcome offers "rel":1 by default; the page is answered ok:true (a 4096-byte section
 *     maps through the backend: read-only, owner checked), and stats show shm_pages 1;
 *   - 20 publications of 256 KiB from a plain client reach the subscriber as descriptors on the
 *     broker's fan-out segment, byte-exact; after each the subscriber stores the count into its
 *     page; a stats answer then shows shm_page_releases 20, shm_bytes 0 and no shm_done frame
 *     (the stats op drains every page: nothing else made the broker look after the last store);
 *   - the broker never wrote the page (its other 4092 bytes are still zero, the counter ours);
 *   - a broker with "shm_release_page": false offers no "rel" and closes a client that
 *     announces a page anyway (bad_request);
 *   - when the subscriber leaves, shm_pages goes back to 0.
 */
#include "check_main.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"
#include "proto/shm.h"
#include "raw_proto.h"
#include "shm_seg.h"
#include "winsec.h"

#define PAYLOAD (256u * 1024u)
#define N 20

/* hello with shm; the welcome's "shm" object's "rel" (-1 without one). */
static double hello_rel(raw_conn *c)
{
    ck_assert_int_eq(raw_send(c, "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1}}", NULL, 0,
                              aipc_test_wait_ms()), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "welcome", -1, aipc_test_wait_ms()), 1);
    const cJSON *shm = cJSON_GetObjectItemCaseSensitive(f.meta, "shm");
    ck_assert_msg(cJSON_IsObject(shm), "%s", f.meta_text);
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(shm, "rel");
    double v = cJSON_IsNumber(rel) ? rel->valuedouble : -1;
    raw_frame_free(&f);
    return v;
}

/* A 4096-byte section readable by our user (the broker's), announced as a release page. */
static void announce_page(raw_conn *c, aipc__shm_seg *page)
{
    PSID me = aipc__sec_user_sid();
    ck_assert_ptr_nonnull(me);
    char name[AIPC_SHM_NAME_BUF], meta[256];
    memset(page, 0, sizeof *page);
    ck_assert_int_eq(aipc__shm_seg_create(page, 4096, me, 0, name, sizeof name), 0);
    free(me);
    size_t n = aipc_shm_relpage_put(meta, sizeof meta - 1, 1, name, 4096, page->session, 1);
    ck_assert_uint_gt(n, 0);
    meta[n] = 0;
    ck_assert_int_eq(raw_send(c, meta, NULL, 0, aipc_test_wait_ms()), 0);
}

/* The payload of publication i. */
static void fill(uint8_t *p, uint32_t i)
{
    for (uint32_t k = 0; k < PAYLOAD; k += 4)
        memcpy(p + k, &(uint32_t){k * 2654435761u + i}, 4);
}

START_TEST(page_releases_across_processes)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "bshm-rel", NULL), 0);
    raw_conn *s = raw_connect(b.pipe, aipc_test_wait_ms());
    ck_assert_ptr_nonnull(s);
    ck_assert(hello_rel(s) == 1);
    aipc__shm_seg page;
    announce_page(s, &page);
    raw_frame f;
    ck_assert_int_eq(raw_expect(s, &f, "shm_seg", 1, aipc_test_wait_ms()), 1);
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f.meta, "ok")), "%s", f.meta_text);
    raw_frame_free(&f);
    ck_assert_int_eq(raw_sub(s, "rel/#", 2, aipc_test_wait_ms()), 0);
    raw_conn *p = raw_connect(b.pipe, aipc_test_wait_ms());
    ck_assert_ptr_nonnull(p);
    ck_assert(raw_hello(p, "p", aipc_test_wait_ms()) > 0);
    ck_assert(raw_stat(p, "shm_pages", 1, aipc_test_wait_ms()) == 1);
    uint8_t *buf = malloc(PAYLOAD);
    ck_assert_ptr_nonnull(buf);
    aipc__shm_seg bseg;                          /* the broker's fan-out segment, read-only */
    memset(&bseg, 0, sizeof bseg);
    PSID me = aipc__sec_user_sid();
    uint32_t shared = 0;
    for (uint32_t i = 0; i <= N; i++) {
        fill(buf, i);
        ck_assert_int_eq(raw_send(p, "{\"op\":\"pub\",\"topic\":\"rel/x\"}", buf, PAYLOAD,
                                  aipc_test_wait_ms()), 0);
        for (;;) {
            ck_assert_int_eq(raw_recv(s, &f, aipc_test_wait_ms()), 1);
            if (strcmp(raw_op(&f), "shm_seg") == 0) {  /* the broker's segment: map, confirm */
                char ans[128];
                ck_assert_ptr_null(bseg.view);
                ck_assert_int_eq(aipc__shm_seg_open_in(&bseg, (DWORD)raw_num(&f, "session"),
                                                       raw_str(&f, "name"),
                                                       (uint32_t)raw_num(&f, "size"), me), 0);
                snprintf(ans, sizeof ans, "{\"op\":\"shm_seg\",\"re\":%.0f,\"seg\":%.0f,\"ok\":true}",
                         raw_num(&f, "id"), raw_num(&f, "seg"));
                ck_assert_int_eq(raw_send(s, ans, NULL, 0, aipc_test_wait_ms()), 0);
                raw_frame_free(&f);
                continue;
            }
            break;
        }
        ck_assert_str_eq(raw_op(&f), "msg");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(f.meta, "shm");
        if (i == 0) {
            ck_assert_ptr_null(d);                 /* the announce round goes inline */
            ck_assert(f.payload_len == PAYLOAD && memcmp(f.payload, buf, PAYLOAD) == 0);
        } else {
            ck_assert_msg(cJSON_GetArraySize(d) == 3, "%s", f.meta_text);
            uint32_t off = (uint32_t)cJSON_GetArrayItem(d, 1)->valuedouble;
            ck_assert_uint_eq((uint32_t)cJSON_GetArrayItem(d, 2)->valuedouble, PAYLOAD);
            ck_assert_uint_le((uint64_t)off + PAYLOAD, bseg.size);
            ck_assert(memcmp(bseg.view + off, buf, PAYLOAD) == 0);
            /* released: the client's store (release order after its reads) */
            __atomic_store_n((uint32_t *)page.view, ++shared, __ATOMIC_RELEASE);
        }
        raw_frame_free(&f);
    }
    ck_assert(raw_stat(p, "shm_page_releases", 2, aipc_test_wait_ms()) == N);
    ck_assert(raw_stat(p, "shm_bytes", 3, aipc_test_wait_ms()) == 0);
    ck_assert(raw_stat(p, "shm_release_frames", 4, aipc_test_wait_ms()) == 0);
    ck_assert(raw_stat(p, "shm_bad_releases", 5, aipc_test_wait_ms()) == 0);
    ck_assert_uint_eq(*(volatile uint32_t *)page.view, N);
    for (uint32_t k = 4; k < 4096; k++)
        ck_assert_msg(page.view[k] == 0, "page byte %u written", k);
    raw_close(s);
    double pages = 1;                              /* the detach is the broker's, in its time */
    for (int k = 0; k < 1000 && pages != 0; k++)
        pages = raw_stat(p, "shm_pages", 10 + k, aipc_test_wait_ms());
    ck_assert(pages == 0);
    aipc__shm_seg_close(&bseg);
    aipc__shm_seg_close(&page);
    free(me);
    free(buf);
    raw_close(p);
    ck_assert_int_eq(raw_broker_stop(&b, 10000), 0);
}
END_TEST

START_TEST(page_not_offered_when_off)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "bshm-reloff", "\"shm_release_page\":false"), 0);
    raw_conn *s = raw_connect(b.pipe, aipc_test_wait_ms());
    ck_assert_ptr_nonnull(s);
    ck_assert(hello_rel(s) == -1);
    aipc__shm_seg page;
    announce_page(s, &page);
    raw_frame f;
    ck_assert_int_eq(raw_expect(s, &f, "shm_seg", 1, aipc_test_wait_ms()), -2);
    ck_assert_str_eq(raw_str(&f, "code"), "bad_request");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_recv(s, &f, aipc_test_wait_ms()), -1);   /* closed */
    aipc__shm_seg_close(&page);
    raw_close(s);
    ck_assert_int_eq(raw_broker_stop(&b, 10000), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_relpage");
    TCase *tc = tcase_create("relpage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, page_releases_across_processes);
    tcase_add_test(tc, page_not_offered_when_off);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
