/*
 * test_p2p_zc_guard.c - the guards and costs of zero-copy buffers that the main suite
 * (test_p2p_zc.c) does not cover:
 *   nul     what a receiving end checks in a shared descriptor from a peer that does not follow
 *           the rules (pipe_ctl.c, docs/protocol.md section 10 "the byte after the payload the
 *           sender sets to 0"): a raw client in this process speaks the protocol by hand,
 *           creates its own section, announces it and sends descriptors to an SDK server (both
 *           engines, the classic OnRecv path and the buffer callback). With the NUL: delivered;
 *           without it: a protocol error, the connection is closed, nothing delivered.
 *   pinned  a slot we allocate and keep pins the later slots of its segment once the peer
 *           released them: aipc_pipe_stats.shm_pinned_bytes shows them, and they are free
 *           again when the kept one is released (echo peer p2p_peer.exe, other engine); the
 *           released pointer given again to send_buf / release is refused / ignored.
 */
#include "p2p_shm_common.h"
#include "p2p_harness.h"

#include <sddl.h>

#define HELLO_SHM "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1}}"
#define SEG_SIZE (1024u * 1024u)

/* ---- the buffer callback (variant with aipc_pipe_set_recv_ref) ------------------------------- */

static volatile LONG g_ref_count, g_ref_bad;
static char g_ref_last[32];
static HANDLE g_ref_ev;            /* auto-reset: set at every buffer */

/* I/O thread: keeps a copy of the message and checks its documented NUL, then releases it. */
static void ref_fn(aipc_named_pipe *pipe, void *user, aipc_buf *buf)
{
    (void)pipe;
    (void)user;
    const char *d = buf->data;
    if (buf->size >= sizeof g_ref_last || d[buf->size] != 0)
        InterlockedIncrement(&g_ref_bad);
    else
        memcpy(g_ref_last, d, buf->size + 1);
    aipc_buf_release(buf);
    InterlockedIncrement(&g_ref_count);
    SetEvent(g_ref_ev);
}

/* ---- the raw sender's section ---------------------------------------------------------------- */

/* A section owned by this process's user (what the server's owner check expects of its
 * client), mapped writable at *view; its name (a valid segment name) in name. */
static HANDLE make_section(char *name, size_t cap, uint8_t **view)
{
    HANDLE tok = NULL;
    uint8_t tu[256];
    DWORD tn = 0;
    char *sid = NULL, sddl[300];
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    ck_assert(GetTokenInformation(tok, TokenUser, tu, sizeof tu, &tn));
    CloseHandle(tok);
    ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)tu)->User.Sid, &sid));
    snprintf(sddl, sizeof sddl, "O:%sD:P(A;;GA;;;%s)", sid, sid);
    LocalFree(sid);
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert(ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL));
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    snprintf(name, cap, "aipc-%lu-%08lx%08lx0123456789abcdef-1", (unsigned long)GetCurrentProcessId(),
             (unsigned long)GetTickCount(), (unsigned long)(uintptr_t)&sa & 0xfffffffful);
    wchar_t w[128];
    _snwprintf(w, 128, L"Local\\%hs", name);
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT, 0, SEG_SIZE, w);
    LocalFree(sd);
    ck_assert_msg(h != NULL, "CreateFileMapping: %lu", GetLastError());
    *view = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, SEG_SIZE);
    ck_assert_ptr_nonnull(*view);
    return h;
}

/* Reads frames until the answer to our announce of segment 1 (the server's own announces and
 * other control frames are skipped); fails unless it is ok:true. */
static void wait_answer(HANDLE h)
{
    char meta[512];
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(raw_read_meta(h, meta, sizeof meta) >= 0, "no answer to the announce");
        if (strstr(meta, "\"re\":1")) {
            ck_assert_msg(strstr(meta, "\"ok\":true"), "announce refused: %s", meta);
            return;
        }
    }
    ck_abort_msg("no answer to the announce in 8 frames");
}

/* _i: bit 0 the server's engine, bit 1 the server receives with the buffer callback. A raw
 * client negotiates shared memory, announces a section of its own (confirmed), then sends a
 * descriptor of "good" followed by its NUL (delivered, byte-exact) and one of "evil" followed
 * by 'Y': the server refuses it as a protocol error (closes the connection) and delivers
 * nothing of it. */
START_TEST(descriptor_without_nul_refused)
{
    PipeImplType mine = _i & 1 ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int by_ref = _i >> 1;
    g_ref_count = g_ref_bad = 0;
    if (!g_ref_ev)
        g_ref_ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    ck_assert_ptr_nonnull(g_ref_ev);
    char name[96], meta[512], seg_name[96];
    wchar_t w[256], full[300];
    aipc_test_name(name, sizeof name, "zcnul");
    aipc_test_wname(w, 256, name);
    _snwprintf(full, 300, L"\\\\.\\pipe\\%ls", w);
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_named_pipe *pipe = NULL;
    ck_assert_int_eq(aipc_pipe_new(mine, &pipe), AIPC_OK);
    if (by_ref)
        ck_assert_int_eq(aipc_pipe_set_recv_ref(pipe, ref_fn, NULL), AIPC_OK);
    p->pipe = pipe;
    ck_assert_msg(aipc_pipe_create(pipe, w, PIPE_SERVER, &p->d), "Create failed");
    ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no OnCreate within %u ms", WAIT_MS);

    HANDLE h = raw_open(full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    WAIT_FOR(p, connected, 1, "the raw client connected");
    ck_assert(raw_send_meta(h, HELLO_SHM));
    ck_assert(raw_read_meta(h, meta, sizeof meta) >= 0);
    ck_assert_str_eq(meta, HELLO_SHM);

    uint8_t *view = NULL;
    HANDLE sec = make_section(seg_name, sizeof seg_name, &view);
    DWORD session = 0;
    ck_assert(ProcessIdToSessionId(GetCurrentProcessId(), &session));
    snprintf(meta, sizeof meta, "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"%s\",\"size\":%u,"
             "\"session\":%lu,\"id\":1}", seg_name, SEG_SIZE, (unsigned long)session);
    ck_assert(raw_send_meta(h, meta));
    wait_answer(h);

    memcpy(view, "good", 5);                 /* the payload and its NUL */
    ck_assert(raw_send_meta(h, "{\"shm\":[1,0,4]}"));
    if (by_ref) {
        ck_assert_int_eq(WaitForSingleObject(g_ref_ev, WAIT_MS), WAIT_OBJECT_0);
        ck_assert_int_eq(g_ref_count, 1);
        ck_assert_int_eq(g_ref_bad, 0);
        ck_assert_str_eq(g_ref_last, "good");
    } else {
        WAIT_FOR(p, recv_count, 1, "the good descriptor");
        EnterCriticalSection(&p->lock);
        int ok = p->nmsgs == 1 && p->msgs[0].size == 4 && !memcmp(p->msgs[0].data, "good", 4);
        LeaveCriticalSection(&p->lock);
        ck_assert_msg(ok, "the good descriptor was not delivered byte-exact");
    }

    memcpy(view + 64, "evilY", 5);           /* no NUL after the 4 bytes */
    ck_assert(raw_send_meta(h, "{\"shm\":[1,64,4]}"));
    WAIT_FOR(p, disconnected, 1, "the server closed on the descriptor without its NUL");
    ck_assert_msg(raw_sees_close(h), "the raw client did not see the close");
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), by_ref ? 0 : 1);
    ck_assert_int_eq(g_ref_count, by_ref ? 1 : 0);
    ck_assert_int_eq(g_ref_bad, 0);
    CloseHandle(h);
    UnmapViewOfFile(view);
    CloseHandle(sec);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* _i: bit 0 our engine, bit 1 our role (client). After the warm-up we allocate a slot of
 * threshold size and keep it; a 1 MiB message sent after it (shared) is echoed and released by
 * the peer: its slot waits behind ours (pinned >= 1 MiB, while our shm_bytes is 0); releasing
 * ours frees both (pinned 0). */
START_TEST(kept_slot_pins_later_slots)
{
    PipeImplType mine = _i & 1 ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;
    pair_up(p, &peer, mine, _i >> 1, "zcpin", "");
    warm_up(p);
    ck_assert_uint_eq(stats_of(p).shm_pinned_bytes, 0);
    aipc_buf *kept = NULL;
    ck_assert_int_eq(aipc_pipe_alloc(p->pipe, THR, &kept), AIPC_OK);
    ck_assert_uint_eq(stats_of(p).buf_shm_bytes, THR);        /* a slot, not a heap buffer */
    uint8_t *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    uint64_t sent = stats_of(p).shm_sent;
    echo_exact(p, buf, MIB, 7);
    aipc_pipe_stats st = stats_of(p);
    ck_assert_uint_eq(st.shm_sent, sent + 1);                  /* it went shared */
    ck_assert_uint_eq(st.shm_bytes, 0);                        /* and the peer released it */
    ck_assert_msg(st.shm_pinned_bytes >= MIB, "pinned %llu, want >= 1 MiB",
                  (unsigned long long)st.shm_pinned_bytes);
    aipc_buf_release(kept);
    ck_assert_uint_eq(stats_of(p).shm_pinned_bytes, 0);
    /* No buffer was made since: the stale pointer is no live buffer, refused and ignored. */
    ck_assert_int_eq(aipc_pipe_send_buf(p->pipe, kept, 1), AIPC_EINVAL);
    aipc_buf_release(kept);
    st = stats_of(p);
    ck_assert_msg(st.buf_bytes == 0 && st.buf_shm_bytes == 0, "after a stale release: %llu/%llu",
                  (unsigned long long)st.buf_bytes, (unsigned long long)st.buf_shm_bytes);
    echo_exact(p, buf, MIB, 8);                                /* the path still works */
    ck_assert_uint_eq(stats_of(p).shm_pinned_bytes, 0);
    free(buf);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_zc_guard_suite(void)
{
    Suite *s = suite_create("p2p_zc_guard");
    TCase *t = tcase_create("guard");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, descriptor_without_nul_refused, 0, 4);
    tcase_add_loop_test(t, kept_slot_pins_later_slots, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_zc_guard_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
