/*
 * test_broker_sec_engine.c - the broker's Windows side, in-process:
 *   - a pipe client's identity (session, user, integrity, groups) as the broker captures it on
 *     the first read equals what this process's own token says (under Wine impersonation yields
 *     the server's token: the same user here anyway);
 *   - when every instance of the broker's pipe is gone and another server took the name, the
 *     engine does not join it (FILE_FLAG_FIRST_PIPE_INSTANCE on the retry, plus a probe since
 *     Wine does not enforce the flag), and takes the name back once it is free.
 */
#include <windows.h>

#include "check_main.h"

#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "client_identity.h"
#include "engine.h"
#include "raw_proto.h"
#include "winsec.h"

#define W 20000u

/* Own token facts. */
static void own_facts(char *sid, size_t cap, DWORD *session, DWORD *integrity)
{
    wchar_t *me = aipc__sec_user_sid_string();
    ck_assert_ptr_nonnull(me);
    snprintf(sid, cap, "%ls", me);
    LocalFree(me);
    ck_assert(ProcessIdToSessionId(GetCurrentProcessId(), session));
    HANDLE tok;
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    BYTE buf[256];
    DWORD n = 0;
    *integrity = 0;
    if (GetTokenInformation(tok, TokenIntegrityLevel, buf, sizeof buf, &n)) {
        PSID l = ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid;
        *integrity = *GetSidSubAuthority(l, *GetSidSubAuthorityCount(l) - 1u);
    }
    CloseHandle(tok);
}

START_TEST(capture_identity)
{
    wchar_t name[128];
    _snwprintf(name, 128, L"\\\\.\\pipe\\aipc-sec-id-%lu", GetCurrentProcessId());
    HANDLE srv = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                  PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0,
                                  NULL);
    ck_assert(srv != INVALID_HANDLE_VALUE);
    /* the SDK's way of opening: identification level only */
    HANDLE cli = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                             SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    ck_assert(cli != INVALID_HANDLE_VALUE);
    BOOL c = ConnectNamedPipe(srv, NULL);
    ck_assert(c || GetLastError() == ERROR_PIPE_CONNECTED);
    DWORD n = 0;
    ck_assert(WriteFile(cli, "h", 1, &n, NULL) && n == 1);
    char b;
    ck_assert(ReadFile(srv, &b, 1, &n, NULL) && n == 1);
    ULONG pid = 0;
    ck_assert(GetNamedPipeClientProcessId(srv, &pid));
    aipc_peer_identity id;
    char why[256] = "";
    ck_assert_msg(aipc_peer_identity_capture(srv, pid, &id, why, sizeof why) == 0, "%s", why);
    char sid[200];
    DWORD session, integrity;
    own_facts(sid, sizeof sid, &session, &integrity);
    ck_assert_str_eq(id.id.user_sid, sid);
    ck_assert_uint_eq(id.id.session, session);
    ck_assert_uint_eq(id.id.integrity, integrity);
    /* the thread is itself again: its token is the process's (no thread token) */
    HANDLE tt = NULL;
    BOOL has_token = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tt);
    ck_assert_msg(!has_token, "the thread still impersonates");
    /* groups: Everyone is there, enabled; no integrity label among them */
    int everyone = 0;
    for (size_t i = 0; i < id.id.ngroups; i++) {
        if (strcmp(id.id.groups[i].sid, "S-1-1-0") == 0)
            everyone = !id.id.groups[i].deny_only;
        ck_assert(strncmp(id.id.groups[i].sid, "S-1-16-", 7) != 0);
    }
    ck_assert(everyone);
    aipc_peer_identity_free(&id);
    CloseHandle(cli);
    CloseHandle(srv);
}
END_TEST

/* The group flags of a token, taken apart the way the policy needs them. */
START_TEST(token_groups)
{
    HANDLE tok;
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    aipc_peer_identity id;
    char why[256] = "";
    ck_assert_msg(aipc_peer_identity_from_token(tok, &id, why, sizeof why) == 0, "%s", why);
    DWORD need = 0;
    GetTokenInformation(tok, TokenGroups, NULL, 0, &need);
    TOKEN_GROUPS *tg = malloc(need);
    ck_assert(GetTokenInformation(tok, TokenGroups, tg, need, &need));
    size_t k = 0;
    for (DWORD i = 0; i < tg->GroupCount; i++) {
        DWORD a = tg->Groups[i].Attributes;
        if (a & SE_GROUP_INTEGRITY)
            continue;
        char *s = NULL;
        ck_assert(ConvertSidToStringSidA(tg->Groups[i].Sid, &s));
        ck_assert_uint_lt(k, id.id.ngroups);
        ck_assert_str_eq(id.id.groups[k].sid, s);
        int deny_only = (a & SE_GROUP_USE_FOR_DENY_ONLY) || !(a & SE_GROUP_ENABLED);
        ck_assert_int_eq(id.id.groups[k].deny_only, deny_only);
        LocalFree(s);
        k++;
    }
    ck_assert_uint_eq(k, id.id.ngroups);
    free(tg);
    aipc_peer_identity_free(&id);
    CloseHandle(tok);
}
END_TEST

/* ---- the engine against a squatter ---------------------------------------------------------- */

typedef struct sq_state {
    broker_engine *e;
    wchar_t path[128];
    volatile LONG drop;         /* test -> tick: drop the listener and plant the squatter */
    volatile LONG watch;        /* test -> tick: report when listening again */
    HANDLE squatter;            /* created on the I/O thread, closed by the test */
    OVERLAPPED sq_ov;
    HANDLE ev_refused, ev_listening;
    int listening_when_refused;
    volatile LONG attached;
} sq_state;

typedef struct sq_conn {
    aipc_wconn *w;
    uint8_t buf[64];
    size_t len;
} sq_conn;

static void *sq_attach(void *ctx, aipc_wconn *w, unsigned long pid)
{
    sq_state *st = ctx;
    InterlockedIncrement(&st->attached);
    sq_conn *c = calloc(1, sizeof *c);
    c->w = w;
    return c;
}

static int sq_input(void *ctx, void *conn, const uint8_t *d, size_t n)
{
    sq_conn *c = conn;
    if (n > sizeof c->buf - c->len)
        n = sizeof c->buf - c->len;
    memcpy(c->buf + c->len, d, n);          /* echo */
    c->len += n;
    aipc_wconn_want_write(c->w);
    return 0;
}

static void sq_detach(void *ctx, void *conn)
{
    free(conn);
}

static int sq_out_next(void *ctx, void *conn, aipc_iov *iov, int max)
{
    sq_conn *c = conn;
    if (!c->len || max < 1)
        return 0;
    iov[0].base = c->buf;
    iov[0].len = c->len;
    return 1;
}

static void sq_out_consume(void *ctx, void *conn, size_t n)
{
    sq_conn *c = conn;
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static void sq_shutdown(void *ctx)
{
}

/* Runs on the I/O thread once per loop turn (every 100 ms while the engine retries). */
static void sq_tick(void *ctx)
{
    sq_state *st = ctx;
    if (InterlockedExchange(&st->drop, 0)) {
        broker_engine__test_drop_listener(st->e);
        /* a squatter listening on the name, as another server would */
        st->squatter = CreateNamedPipeW(st->path, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                        PIPE_TYPE_BYTE, 1, 4096, 4096, 0, NULL);
        st->sq_ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (st->squatter != INVALID_HANDLE_VALUE)
            ConnectNamedPipe(st->squatter, &st->sq_ov);
    }
    if (broker_engine_squat_refusals(st->e) > 0 && WaitForSingleObject(st->ev_refused, 0) != 0) {
        st->listening_when_refused = broker_engine_listening(st->e);
        SetEvent(st->ev_refused);
    }
    if (st->watch && broker_engine_listening(st->e)) {
        st->watch = 0;
        SetEvent(st->ev_listening);
    }
}

static DWORD WINAPI sq_run(void *p)
{
    broker_engine_run(p);
    return 0;
}

START_TEST(retry_refuses_squatter)
{
    sq_state st;
    memset(&st, 0, sizeof st);
    _snwprintf(st.path, 128, L"\\\\.\\pipe\\aipc-sec-sq-%lu", GetCurrentProcessId());
    st.ev_refused = CreateEventW(NULL, TRUE, FALSE, NULL);
    st.ev_listening = CreateEventW(NULL, TRUE, FALSE, NULL);
    broker_engine_config ec = {0};
    ec.pipe_path = st.path;
    ec.stop_grace_ms = 1000;
    broker_engine_handler h = {&st, sq_attach, sq_input, sq_detach, sq_out_next, sq_out_consume,
                               sq_shutdown, sq_tick, NULL, NULL, NULL};
    char err[256];
    ck_assert_int_eq(broker_engine_create(&st.e, &ec, &h, err, sizeof err), BROKER_ENGINE_OK);
    HANDLE th = CreateThread(NULL, 0, sq_run, st.e, 0, NULL);
    InterlockedExchange(&st.drop, 1);
    /* the tick runs at least once a second: the drop happens, then the retry meets the
     * squatter and refuses to join it */
    ck_assert_msg(aipc_test_wait(st.ev_refused, W), "the engine never met the squatter");
    ck_assert_int_eq(st.listening_when_refused, 0);
    ck_assert(st.squatter != INVALID_HANDLE_VALUE);
    /* a client now reaches the squatter, the only server of the name */
    HANDLE cli = CreateFileW(st.path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                             SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    ck_assert(cli != INVALID_HANDLE_VALUE);
    ck_assert_msg(aipc_test_wait(st.sq_ov.hEvent, W), "the client did not reach the squatter");
    ck_assert_int_eq(st.attached, 0);
    CloseHandle(cli);
    /* the squatter leaves: the engine takes the name back */
    st.watch = 1;
    CloseHandle(st.squatter);
    ck_assert_msg(aipc_test_wait(st.ev_listening, W), "the engine did not listen again");
    cli = CreateFileW(st.path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                      SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    ck_assert(cli != INVALID_HANDLE_VALUE);
    DWORD n = 0;
    char back[4] = "";
    ck_assert(WriteFile(cli, "abc", 3, &n, NULL) && n == 3);
    ck_assert(ReadFile(cli, back, 3, &n, NULL) && n == 3 && memcmp(back, "abc", 3) == 0);
    ck_assert_int_eq(st.attached, 1);
    CloseHandle(cli);
    broker_engine_request_stop(st.e);
    ck_assert_uint_eq(WaitForSingleObject(th, W), WAIT_OBJECT_0);
    CloseHandle(th);
    broker_engine_free(st.e);
    CloseHandle(st.sq_ov.hEvent);
    CloseHandle(st.ev_refused);
    CloseHandle(st.ev_listening);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_sec_engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, capture_identity);
    tcase_add_test(tc, token_groups);
    tcase_add_test(tc, retry_refuses_squatter);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
