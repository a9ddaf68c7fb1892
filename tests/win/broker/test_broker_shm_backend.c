/*
 * test_broker_shm_backend.c - the broker's Win32 shared-memory backend (service/win/engine_shm.c,
 * the core's service/core/shm_backend.h) across real processes, the other one being
 * shm_seg_peer.exe (tests/win/shm):
 *   - create for one reader (our user): a second process of that user opens the segment (owner
 *     the broker's user, read-only, the bytes the broker wrote), in the session create reported;
 *   - create for N readers: one ACE per reader (exact DACL read back), each reader admitted;
 *   - create for readers that are not the second process's user: it gets error 5 (Wine enforces
 *     section DACLs; all processes here are one user, so only the DACL refuses it);
 *   - create refuses groups, no readers and more than 64 (NULL, nothing leaked);
 *   - open of a client's segment (created by the second process for its user): mapped read-only
 *     with the client's bytes when session and owner are the client's; each failure mapped to
 *     the contract's codes: another owner "untrusted_owner", another reader "access_denied",
 *     no such name "not_found", a prefixed name or a size beyond the section "bad_segment";
 *   - close: every create and open closed once (counts), the section gone afterwards;
 *   - the broker process installs it: a raw client whose hello offers "shm" gets a welcome with
 *     "shm" {v 1, threshold} (the configured one), one whose hello does not gets a plain
 *     welcome, and with config "shm": false nobody does.
 */
#include "check_main.h"

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"
#include "raw_proto.h"
#include "engine_shm.h"
#include "secdesc_section.h"
#include "shm_seg.h"
#include "shm_seg_common.h"
#include "winsec.h"

#define SEG 262144u

static char *me_str(void)
{
    PSID me = aipc__sec_user_sid();
    char *s = NULL;
    ck_assert_ptr_nonnull(me);
    ck_assert(ConvertSidToStringSidA(me, &s));
    free(me);
    return s;                                   /* LocalFree */
}

static DWORD my_session(void)
{
    DWORD s = 0;
    ck_assert(ProcessIdToSessionId(GetCurrentProcessId(), &s));
    return s;
}

/* Runs "shm_seg_peer open NAME SIZE OWNER SEED" and returns its exit code. */
static int peer_open(const char *name, uint32_t size, const char *owner, uint32_t seed)
{
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "open %s %u %s %u", name, size, owner, seed), 0);
    ck_assert_int_eq(aipc_proc_wait(&p, aipc_test_wait_ms()), 0);
    int rc = (int)p.exit_code;
    aipc_proc_close(&p);
    return rc;
}

/* The DACL of a created segment: OWNER RIGHTS (READ_CONTROL), then readers[i] in order with
 * SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL, nothing else; owner `owner`. */
static void check_dacl(HANDLE h, const char *owner, const char *const *readers, size_t n)
{
    PSID o = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert_uint_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                      &o, NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
    char *os = NULL;
    ck_assert(ConvertSidToStringSidA(o, &os));
    ck_assert_str_eq(os, owner);
    LocalFree(os);
    ck_assert_ptr_nonnull(dacl);
    ck_assert_uint_eq(dacl->AceCount, n + 1);
    for (size_t i = 0; i <= n; i++) {
        ACCESS_ALLOWED_ACE *ace = NULL;
        char *as = NULL;
        ck_assert(GetAce(dacl, (DWORD)i, (void **)&ace));
        ck_assert_uint_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
        ck_assert(ConvertSidToStringSidA((PSID)&ace->SidStart, &as));
        ck_assert_str_eq(as, i == 0 ? "S-1-3-4" : readers[i - 1]);
        ck_assert_uint_eq(ace->Mask, i == 0 ? READ_CONTROL : SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL);
        LocalFree(as);
    }
    LocalFree(sd);
}

START_TEST(create_for_our_user_opens_in_peer)
{
    eng_shm st;
    memset(&st, 0, sizeof st);
    aipc_shm_backend be;
    eng_shm_backend(&be, &st);
    ck_assert_ptr_eq(be.ctx, &st);
    char *me = me_str(), name[AIPC_SHM_NAME_BUF];
    const char *readers[1] = {me};
    uint8_t *base = NULL;
    uint32_t session = 0xFFFFFFFFu;
    void *seg = be.create(be.ctx, SEG, readers, 1, 0, &base, name, &session);
    ck_assert_ptr_nonnull(seg);
    ck_assert_ptr_nonnull(base);
    ck_assert(aipc_shm_name_valid(name, strlen(name)));
    ck_assert_uint_eq(session, my_session());
    check_dacl(((aipc__shm_seg *)seg)->h, me, readers, 1);
    aipc_pattern_fill(base, SEG, 31);
    ck_assert_int_eq(peer_open(name, SEG, me, 31), 0);      /* read-only: its write faulted */
    ck_assert_int_eq(aipc_pattern_check(base, SEG, 31), -1);
    ck_assert_int_eq(peer_open(name, SEG, me, 32), SHM_PEER_BADBYTES);   /* a real check */
    be.close(be.ctx, seg);
    be.close(be.ctx, NULL);                     /* nothing */
    ck_assert_uint_eq(st.created, 1);
    ck_assert_uint_eq(st.closed, 1);
    ck_assert_uint_eq(st.failures, 0);
    /* Closed: the section is gone (nobody else held it). */
    ck_assert_int_eq(peer_open(name, SEG, me, 31), SHM_PEER_RC(AIPC_ENOTFOUND));
    LocalFree(me);
}
END_TEST

START_TEST(create_for_n_readers)
{
    eng_shm st;
    memset(&st, 0, sizeof st);
    aipc_shm_backend be;
    eng_shm_backend(&be, &st);
    char *me = me_str(), name[AIPC_SHM_NAME_BUF];
    const char *readers[4] = {"S-1-5-18", "S-1-5-21-1-2-3-1001", me, "S-1-5-80-1-2-3-4-5"};
    uint8_t *base = NULL;
    uint32_t session = 0;
    void *seg = be.create(be.ctx, SEG, readers, 4, 0x1000, &base, name, &session);
    ck_assert_ptr_nonnull(seg);
    check_dacl(((aipc__shm_seg *)seg)->h, me, readers, 4);
    aipc_pattern_fill(base, SEG, 41);
    ck_assert_int_eq(peer_open(name, SEG, me, 41), 0);
    /* Every byte up to the segment's end is there, none beyond (exactly SEG mapped). */
    ck_assert_int_eq(peer_open(name, SEG + 4096, me, 41), SHM_PEER_RC(AIPC_EPROTO));
    be.close(be.ctx, seg);
    /* 64 readers are allowed, 65 are not. */
    const char *many[AIPC__SEC_SECTION_MAX_READERS + 1];
    for (size_t i = 0; i <= AIPC__SEC_SECTION_MAX_READERS; i++)
        many[i] = i == 40 ? me : "S-1-5-21-1004336348-1177238915-682003330-1001";
    seg = be.create(be.ctx, 65536, many, AIPC__SEC_SECTION_MAX_READERS, 0, &base, name, &session);
    ck_assert_ptr_nonnull(seg);
    check_dacl(((aipc__shm_seg *)seg)->h, me, many, AIPC__SEC_SECTION_MAX_READERS);
    memset(base, 0x5a, 65536);
    be.close(be.ctx, seg);
    ck_assert_ptr_null(be.create(be.ctx, 65536, many, AIPC__SEC_SECTION_MAX_READERS + 1, 0, &base,
                                 name, &session));
    ck_assert_uint_eq(st.created, 2);
    ck_assert_uint_eq(st.closed, 2);
    ck_assert_uint_eq(st.failures, 1);
    LocalFree(me);
}
END_TEST

START_TEST(non_reader_gets_access_denied)
{
    eng_shm st;
    memset(&st, 0, sizeof st);
    aipc_shm_backend be;
    eng_shm_backend(&be, &st);
    char *me = me_str(), name[AIPC_SHM_NAME_BUF];
    const char *readers[2] = {"S-1-5-18", "S-1-5-21-1004336348-1177238915-682003330-1001"};
    uint8_t *base = NULL;
    uint32_t session = 0;
    void *seg = be.create(be.ctx, SEG, readers, 2, 0, &base, name, &session);
    ck_assert_ptr_nonnull(seg);
    aipc_pattern_fill(base, SEG, 51);
    ck_assert_int_eq(peer_open(name, SEG, me, 51), SHM_PEER_RC(AIPC_EACCESS));
    /* The broker's own open of it (as a client of our user would be): access_denied. */
    const uint8_t *ro = NULL;
    const char *code = NULL;
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), me, name, SEG, 1, &ro, &code));
    ck_assert_str_eq(code, "access_denied");
    be.close(be.ctx, seg);
    /* Groups are never readers: no segment. */
    const char *groups[2][1] = {{"S-1-1-0"}, {"S-1-5-32-545"}};
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_null(be.create(be.ctx, SEG, groups[i], 1, 0, &base, name, &session));
    ck_assert_ptr_null(be.create(be.ctx, SEG, readers, 0, 0, &base, name, &session));
    ck_assert_uint_eq(st.created, 1);
    ck_assert_uint_eq(st.failures, 4);
    LocalFree(me);
}
END_TEST

START_TEST(open_client_segment_and_codes)
{
    eng_shm st;
    memset(&st, 0, sizeof st);
    char ready[96], file[MAX_PATH];
    aipc_test_name(ready, sizeof ready, "bshm-created");
    aipc_test_temp_path(file, sizeof file, "bshm-name", ".txt");
    HANDLE e_ready = CreateEventA(NULL, TRUE, FALSE, ready);
    aipc_proc p;   /* a "client": creates a segment for its own user (ours), fills seed 61 */
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "create %u 61 %s %s", SEG, ready, file), 0);
    ck_assert(aipc_test_wait(e_ready, aipc_test_wait_ms()));
    size_t len = 0;
    char *name = aipc_test_read_file(file, &len);
    ck_assert_ptr_nonnull(name);
    ck_assert(aipc_shm_name_valid(name, len));
    char *me = me_str();
    const uint8_t *ro = NULL;
    const char *code = NULL;
    void *seg = eng_shm_open_as(&st, my_session(), me, name, SEG, p.pid, &ro, &code);
    ck_assert_ptr_nonnull(seg);
    ck_assert_int_eq(aipc_pattern_check(ro, SEG, 61), -1);
    MEMORY_BASIC_INFORMATION mb;
    ck_assert_uint_eq(VirtualQuery(ro, &mb, sizeof mb), sizeof mb);
    ck_assert_uint_eq(mb.Protect, PAGE_READONLY);
    /* The same section under another owner than the client's user: refused. */
    code = NULL;
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), "S-1-5-18", name, SEG, p.pid, &ro, &code));
    ck_assert_str_eq(code, "untrusted_owner");
    /* Larger than the section, a prefixed name, a missing one, no identity. */
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), me, name, SEG * 2, p.pid, &ro, &code));
    ck_assert_str_eq(code, "bad_segment");
    char full[128];
    snprintf(full, sizeof full, "Local\\%s", name);
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), me, full, SEG, p.pid, &ro, &code));
    ck_assert_str_eq(code, "bad_segment");
    char other[AIPC_SHM_NAME_BUF];
    const uint8_t rnd[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
    ck_assert(aipc_shm_name_put(other, sizeof other, p.pid, rnd, 77));
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), me, other, SEG, p.pid, &ro, &code));
    ck_assert_str_eq(code, "not_found");
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), NULL, name, SEG, p.pid, &ro, &code));
    ck_assert_str_eq(code, "access_denied");
    /* The client killed: our view stays intact until we close it, then the section is gone. */
    aipc_proc_kill(&p);
    aipc_proc_close(&p);
    ck_assert_int_eq(aipc_pattern_check(ro, SEG, 61), -1);
    aipc_shm_backend be;
    eng_shm_backend(&be, &st);
    be.close(be.ctx, seg);
    ck_assert_ptr_null(eng_shm_open_as(&st, my_session(), me, name, SEG, 0, &ro, &code));
    ck_assert_str_eq(code, "not_found");
    ck_assert_uint_eq(st.opened, 1);
    ck_assert_uint_eq(st.closed, 1);
    ck_assert_uint_eq(st.failures, 6);
    DeleteFileA(file);
    free(name);
    LocalFree(me);
    CloseHandle(e_ready);
}
END_TEST

/* hello (with "shm":{"v":1} when offer) and the welcome's "shm" threshold, -1 without one. */
static double welcome_shm(const raw_broker *b, int offer)
{
    raw_conn *c = raw_connect(b->pipe, aipc_test_wait_ms());
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(raw_send(c, offer ? "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1}}"
                                       : "{\"op\":\"hello\",\"proto\":1}", NULL, 0,
                              aipc_test_wait_ms()), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "welcome", -1, aipc_test_wait_ms()), 1);
    cJSON *shm = cJSON_GetObjectItemCaseSensitive(f.meta, "shm");
    double thr = -1;
    if (shm) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(shm, "v"), *t = cJSON_GetObjectItemCaseSensitive(shm, "threshold");
        ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble == 1 && cJSON_IsNumber(t), "%s", f.meta_text);
        thr = t->valuedouble;
    }
    raw_frame_free(&f);
    raw_close(c);
    return thr;
}

START_TEST(broker_offers_per_config)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "bshm-on", "\"shm_threshold\":131072"), 0);
    ck_assert(welcome_shm(&b, 1) == 131072);
    ck_assert(welcome_shm(&b, 0) == -1);
    ck_assert_int_eq(raw_broker_stop(&b, 10000), 0);
    ck_assert_int_eq(raw_broker_start(&b, "bshm-def", NULL), 0);
    ck_assert(welcome_shm(&b, 1) == 65536);
    ck_assert_int_eq(raw_broker_stop(&b, 10000), 0);
    ck_assert_int_eq(raw_broker_start(&b, "bshm-off", "\"shm\":false"), 0);
    ck_assert(welcome_shm(&b, 1) == -1);
    ck_assert(welcome_shm(&b, 0) == -1);
    ck_assert_int_eq(raw_broker_stop(&b, 10000), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_for_our_user_opens_in_peer);
    tcase_add_test(tc, create_for_n_readers);
    tcase_add_test(tc, non_reader_gets_access_denied);
    tcase_add_test(tc, open_client_segment_and_codes);
    tcase_add_test(tc, broker_offers_per_config);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
