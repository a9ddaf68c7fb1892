/*
 * test_p2p_shm_nego.c - the point-to-point negotiation of shared memory (pipe_ctl.c,
 * docs/protocol.md "Point to point"): two SDK ends agree on it (both roles, both engines, the
 * other end a real process: p2p_peer.exe), AIPC_SHM_OFF on either side keeps both inline, an
 * SDK client on a byte-type server made with CreateNamedPipe sends no meta at all, a raw client
 * that never says hello is served inline, and the hello/answer bytes are exactly the
 * documented ones (a raw client speaking the protocol by hand). What each side negotiated is
 * read with aipc_pipe_get_stats (the peer answers the message "?shm" with "shm:<n>").
 */
#include "p2p_common.h"
#include "p2p_harness.h"

#include <sddl.h>

#define HELLO_SHM "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1}}"
#define ANSWER_NO "{\"op\":\"p2p\",\"v\":1}"

/* aipc_probe_start with AIPC_PIPE_OPT_SHM = `shm`; waits for OnCreate(true). */
static void start_shm_probe(aipc_probe *p, PipeImplType engine, PipeType role, const char *name,
                            int shm)
{
    aipc_named_pipe *pipe = NULL;
    ck_assert_int_eq(aipc_pipe_new(engine, &pipe), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_set_option(pipe, AIPC_PIPE_OPT_SHM, (uint64_t)shm), AIPC_OK);
    p->pipe = pipe;
    wchar_t w[256];
    aipc_test_wname(w, 256, name);
    ck_assert_msg(aipc_pipe_create(pipe, w, role, &p->d), "Create failed");
    ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no OnCreate within %u ms", WAIT_MS);
    ck_assert_msg(p->create_ok == 1, "OnCreate(false)");
}

static uint32_t shm_of(aipc_probe *p)
{
    aipc_pipe_stats st;
    memset(&st, 0xab, sizeof st);
    st.size = sizeof st;
    ck_assert_int_eq(aipc_pipe_get_stats(p->pipe, &st), AIPC_OK);
    ck_assert_int_eq(st.size, sizeof st);
    return st.shm;
}

/* The message kept at index i equals the string s. */
static void assert_msg(aipc_probe *p, size_t i, const char *s)
{
    EnterCriticalSection(&p->lock);
    int ok = i < p->nmsgs && p->msgs[i].size == (int)strlen(s) && !memcmp(p->msgs[i].data, s, strlen(s));
    char got[64] = "(none)";
    if (i < p->nmsgs)
        snprintf(got, sizeof got, "%.*s", p->msgs[i].size < 60 ? p->msgs[i].size : 60,
                 (const char *)p->msgs[i].data);
    LeaveCriticalSection(&p->lock);
    ck_assert_msg(ok, "message %u is \"%s\", want \"%s\"", (unsigned)i, got, s);
}

/* The probe (connected to an echo peer) sends "one" and "?shm": both sides report `want`. The
 * second question goes after the first echo came back, so both ends have read the other's
 * control frames by then (one FIFO each way). */
static void both_sides_report(aipc_probe *p, uint32_t want)
{
    WAIT_FOR(p, connected, 1, "the peer connected");
    ck_assert_int_eq(aipc_probe_send(p, "one", 3), AIPC_OK);
    WAIT_FOR(p, recv_count, 1, "the echo of one");
    assert_msg(p, 0, "one");
    ck_assert_uint_eq(shm_of(p), want);
    ck_assert_int_eq(aipc_probe_send(p, "?shm", 4), AIPC_OK);
    WAIT_FOR(p, recv_count, 2, "the peer's answer");
    assert_msg(p, 1, want ? "shm:1" : "shm:0");
}

/* _i bit 0: this end's engine (the peer runs the other); bit 1: this end is the client. Two new
 * ends negotiate: both report shm = 1. After the peer left, this end's stats are 0 again. */
START_TEST(new_ends_negotiate)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int client = (_i & 2) != 0;
    char name[96];
    aipc_test_name(name, sizeof name, "nego");
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (client) {
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role server --once "
                                         "--engine %s --pipe %s", other, name), AIPC_OK);
        start_shm_probe(p, mine, PIPE_CLIENT, name, AIPC_SHM_AUTO);
    } else {
        start_shm_probe(p, mine, PIPE_SERVER, name, AIPC_SHM_AUTO);
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client "
                                         "--engine %s --pipe %s", other, name), AIPC_OK);
    }
    both_sides_report(p, 1);
    if (client) {
        ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    } else {
        aipc_proc_kill(&peer);          /* the client goes: this server's stats reset */
        WAIT_FOR(p, disconnected, 1, "the client left");
        ck_assert_uint_eq(shm_of(p), 0);
    }
    if (client)
        PEER_DONE(&peer, 0);
    else
        aipc_proc_close(&peer);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* _i bit 0: AIPC_SHM_OFF on the server (0) or the client (1); bit 1: this end is the client
 * (the off side is this end or the peer accordingly); bit 2: this end's engine. Both stay
 * inline and messages flow. */
START_TEST(shm_off_either_side_stays_inline)
{
    int off_client = (_i & 1) != 0, client = (_i & 2) != 0;
    PipeImplType mine = (_i & 4) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int mine_off = off_client == client;
    char name[96];
    aipc_test_name(name, sizeof name, "shmoff");
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    int shm = mine_off ? AIPC_SHM_OFF : AIPC_SHM_AUTO;
    if (client) {
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role server --once "
                                         "--engine %s --pipe %s%s", other, name,
                                         mine_off ? "" : " --shm-off"), AIPC_OK);
        start_shm_probe(p, mine, PIPE_CLIENT, name, shm);
    } else {
        start_shm_probe(p, mine, PIPE_SERVER, name, shm);
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client "
                                         "--engine %s --pipe %s%s", other, name,
                                         mine_off ? "" : " --shm-off"), AIPC_OK);
    }
    both_sides_report(p, 0);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- a raw client speaking the protocol by hand ---------------------------------------------- */

/* One bounded overlapped transfer of exactly len bytes. 1 on success. */
static int raw_xfer(HANDLE h, int write, void *buf, DWORD len)
{
    uint8_t *b = buf;
    while (len > 0) {
        OVERLAPPED ov = {0};
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        DWORD n = 0;
        BOOL ok = write ? WriteFile(h, b, len, NULL, &ov) : ReadFile(h, b, len, NULL, &ov);
        if (!ok && GetLastError() != ERROR_IO_PENDING) {
            CloseHandle(ov.hEvent);
            return 0;
        }
        if (WaitForSingleObject(ov.hEvent, WAIT_MS) != WAIT_OBJECT_0) {
            CancelIoEx(h, &ov);
            GetOverlappedResult(h, &ov, &n, TRUE);
            CloseHandle(ov.hEvent);
            return 0;
        }
        ok = GetOverlappedResult(h, &ov, &n, FALSE);
        CloseHandle(ov.hEvent);
        if (!ok || n == 0)
            return 0;
        b += n;
        len -= n;
    }
    return 1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes one frame: meta (may be NULL) and payload. */
static int raw_put(HANDLE h, const char *meta, const char *payload)
{
    uint8_t f[512];
    uint32_t ml = meta ? (uint32_t)strlen(meta) : 0, pl = payload ? (uint32_t)strlen(payload) : 0;
    put_u32(f, ml);
    put_u32(f + 4, pl);
    memcpy(f + 8, meta, ml);
    memcpy(f + 8 + ml, payload, pl);
    return raw_xfer(h, 1, f, 8 + ml + pl);
}

/* Reads one small frame: its meta and payload as NUL-terminated strings. 1 on success. */
static int raw_get(HANDLE h, char *meta, char *payload, size_t cap)
{
    uint8_t hdr[8];
    if (!raw_xfer(h, 0, hdr, 8))
        return 0;
    uint32_t ml = get_u32(hdr), pl = get_u32(hdr + 4);
    if (ml >= cap || pl >= cap)
        return 0;
    if ((ml && !raw_xfer(h, 0, meta, ml)) || (pl && !raw_xfer(h, 0, payload, pl)))
        return 0;
    meta[ml] = 0;
    payload[pl] = 0;
    return 1;
}

/* _i: engine. An SDK client on a byte-type pipe created with CreateNamedPipe directly (an older
 * server): its first frame is the message it sent, meta_len 0, the reply is delivered, and it reports shm = 0. */
START_TEST(new_client_on_byte_server)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    wchar_t w[256], full[300];
    aipc_test_name(name, sizeof name, "bytesrv");
    aipc_test_wname(w, 256, name);
    _snwprintf(full, 300, L"\\\\.\\pipe\\%ls", w);
    /* Owned by our user, as an older SDK server's pipe is (the client checks the owner). */
    HANDLE tok = NULL;
    uint8_t tu[256];
    DWORD tn = 0;
    char *sid = NULL, sddl[300];
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    ck_assert(GetTokenInformation(tok, TokenUser, tu, sizeof tu, &tn));
    CloseHandle(tok);
    ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)tu)->User.Sid, &sid));
    snprintf(sddl, sizeof sddl, "O:%sD:P(A;;FA;;;%s)", sid, sid);
    LocalFree(sid);
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert(ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL));
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    HANDLE srv = CreateNamedPipeW(full, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                  PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536,
                                  0, &sa);
    LocalFree(sd);
    ck_assert(srv != INVALID_HANDLE_VALUE);
    aipc_probe *p = new_probe();
    p->keep = 1;
    start_shm_probe(p, mine, PIPE_CLIENT, name, AIPC_SHM_AUTO);
    ck_assert_int_eq(aipc_probe_send(p, "first", 5), AIPC_OK);
    OVERLAPPED ov = {0};
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ConnectNamedPipe(srv, &ov)) {
        DWORD e = GetLastError();
        ck_assert_msg(e == ERROR_IO_PENDING || e == ERROR_PIPE_CONNECTED, "ConnectNamedPipe %lu", e);
        if (e == ERROR_IO_PENDING)
            ck_assert_int_eq(WaitForSingleObject(ov.hEvent, WAIT_MS), WAIT_OBJECT_0);
    }
    CloseHandle(ov.hEvent);
    char meta[256], pay[256];
    ck_assert(raw_get(srv, meta, pay, sizeof meta));
    ck_assert_str_eq(meta, "");
    ck_assert_str_eq(pay, "first");
    ck_assert(raw_put(srv, NULL, "reply"));
    WAIT_FOR(p, recv_count, 1, "the raw server's reply");
    assert_msg(p, 0, "reply");
    ck_assert_uint_eq(shm_of(p), 0);
    ck_assert_int_eq(aipc_probe_send(p, "second", 6), AIPC_OK);
    ck_assert(raw_get(srv, meta, pay, sizeof meta));
    ck_assert_str_eq(meta, "");
    ck_assert_str_eq(pay, "second");
    CloseHandle(srv);
    WAIT_FOR(p, disconnected, 1, "the raw server closed");
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* _i: server engine. A raw client on a new server: the pipe shows PIPE_TYPE_MESSAGE (the
 * capability bit), a client that never says hello gets its echo as a plain frame and the
 * server reports shm = 0; the next client's hello with "shm" gets exactly the documented
 * answer (shm = 1), a hello without it the answer without "shm" (shm = 0); a hello that is not
 * the first frame closes the connection. After a yes the server announces its first segment
 * (shm_seg); the raw client never answers it, so nothing is ever sent to it shared. */
START_TEST(raw_clients_on_new_server)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96], meta[256], pay[256];
    wchar_t w[256], full[300];
    aipc_test_name(name, sizeof name, "rawnew");
    aipc_test_wname(w, 256, name);
    _snwprintf(full, 300, L"\\\\.\\pipe\\%ls", w);
    aipc_probe *p = new_probe();
    p->echo = 1;
    start_shm_probe(p, mine, PIPE_SERVER, name, AIPC_SHM_AUTO);

    /* no hello: inline both ways */
    HANDLE h = raw_open(full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    DWORD flags = 0;
    ck_assert(GetNamedPipeInfo(h, &flags, NULL, NULL, NULL));
    ck_assert_msg(flags & PIPE_TYPE_MESSAGE, "the server's pipe is not message-type (0x%lx)", flags);
    ck_assert(raw_put(h, NULL, "plain"));
    ck_assert(raw_get(h, meta, pay, sizeof meta));
    ck_assert_str_eq(meta, "");
    ck_assert_str_eq(pay, "plain");
    ck_assert_uint_eq(shm_of(p), 0);
    CloseHandle(h);
    WAIT_FOR(p, disconnected, 1, "the first raw client left");

    /* the hello with shm: the answer with shm, then the echo */
    h = raw_open(full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(raw_put(h, HELLO_SHM, NULL));
    ck_assert(raw_put(h, NULL, "after"));
    ck_assert(raw_get(h, meta, pay, sizeof meta));
    ck_assert_str_eq(meta, HELLO_SHM);
    ck_assert_str_eq(pay, "");
    /* then the echo, and the announce of the server's first segment (before or after it) */
    int echoed = 0, announced = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert(raw_get(h, meta, pay, sizeof meta));
        if (!meta[0]) {
            ck_assert_str_eq(pay, "after");
            echoed++;
        } else {
            ck_assert_msg(!strncmp(meta, "{\"op\":\"shm_seg\",\"seg\":", 22), "meta %s", meta);
            announced++;
        }
    }
    ck_assert_int_eq(echoed, 1);
    ck_assert_int_eq(announced, 1);
    ck_assert_uint_eq(shm_of(p), 1);
    CloseHandle(h);
    WAIT_FOR(p, disconnected, 2, "the second raw client left");

    /* a hello without shm: declined */
    h = raw_open(full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(raw_put(h, ANSWER_NO, NULL));
    ck_assert(raw_get(h, meta, pay, sizeof meta));
    ck_assert_str_eq(meta, ANSWER_NO);
    ck_assert(raw_put(h, NULL, "x"));
    ck_assert(raw_get(h, meta, pay, sizeof meta));
    ck_assert_str_eq(pay, "x");
    ck_assert_uint_eq(shm_of(p), 0);
    CloseHandle(h);
    WAIT_FOR(p, disconnected, 3, "the third raw client left");

    /* a hello after a message: protocol error, the server closes */
    h = raw_open(full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(raw_put(h, NULL, "m"));
    ck_assert(raw_put(h, HELLO_SHM, NULL));
    ck_assert_msg(raw_sees_close(h), "a late hello did not close the connection");
    CloseHandle(h);
    WAIT_FOR(p, disconnected, 4, "the fourth raw client was dropped");
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), 4);   /* plain, after, x, m */
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_shm_nego_suite(void)
{
    Suite *s = suite_create("p2p_shm_nego");
    TCase *t = tcase_create("nego");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, new_ends_negotiate, 0, 4);
    tcase_add_loop_test(t, shm_off_either_side_stays_inline, 0, 8);
    tcase_add_loop_test(t, new_client_on_byte_server, 0, 2);
    tcase_add_loop_test(t, raw_clients_on_new_server, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_shm_nego_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
