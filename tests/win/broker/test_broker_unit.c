/*
 * test_broker_unit.c - in-process checks of the broker's Windows pieces that Wine cannot
 * enforce: the pipe security descriptor (converted back and its ACEs inspected), and path rules.
 */
#include "check_main.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "broker_app.h"
#include "engine.h"
#include "raw_proto.h"
#include "security.h"
#include "wname.h"

/* Finds the ACCESS_ALLOWED ACE for a well-known SID; returns its mask or 0. */
static DWORD ace_mask_for(PACL dacl, WELL_KNOWN_SID_TYPE type, int *count)
{
    DWORD mask = 0;
    *count = 0;
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h;
        ck_assert(GetAce(dacl, i, (void **)&h));
        ck_assert_int_eq(h->AceType, ACCESS_ALLOWED_ACE_TYPE);
        ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
        if (IsWellKnownSid((PSID)&a->SidStart, type)) {
            mask |= a->Mask;
            (*count)++;
        }
    }
    return mask;
}

START_TEST(default_descriptor_aces)
{
    broker_pipe_security s;
    char err[256] = "";
    ck_assert_int_eq(broker_pipe_security_init(&s, NULL, err, sizeof err), 0);
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    ck_assert(GetSecurityDescriptorDacl(s.sd, &present, &dacl, &defaulted));
    ck_assert(present && dacl);
    SECURITY_DESCRIPTOR_CONTROL ctl;
    DWORD rev;
    ck_assert(GetSecurityDescriptorControl(s.sd, &ctl, &rev));
    ck_assert(ctl & SE_DACL_PROTECTED);
    int n;
    ck_assert_uint_eq(ace_mask_for(dacl, WinLocalSystemSid, &n), FILE_ALL_ACCESS);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(ace_mask_for(dacl, WinBuiltinAdministratorsSid, &n), FILE_ALL_ACCESS);
    ck_assert_int_eq(n, 1);
    DWORD iu = ace_mask_for(dacl, WinInteractiveSid, &n);
    ck_assert_int_eq(n, 1);
    DWORD au = ace_mask_for(dacl, WinAuthenticatedUserSid, &n);
    ck_assert_int_eq(n, 1);
    for (int k = 0; k < 2; k++) {
        DWORD m = k ? au : iu;
        ck_assert(m & FILE_READ_DATA);
        ck_assert(m & FILE_WRITE_DATA);
        ck_assert(m & SYNCHRONIZE);
        ck_assert_msg(!(m & FILE_CREATE_PIPE_INSTANCE), "users may create pipe instances: %lx", m);
        ck_assert(!(m & (WRITE_DAC | WRITE_OWNER | DELETE)));
    }
    ck_assert_uint_eq(iu, AIPC_PIPE_CLIENT_ACCESS);
    /* Everyone / anonymous get nothing. */
    ck_assert_uint_eq(ace_mask_for(dacl, WinWorldSid, &n), 0);
    ck_assert_uint_eq(ace_mask_for(dacl, WinAnonymousSid, &n), 0);
    /* Round trip: the kernel-format descriptor converts back to the same DACL text. */
    wchar_t *text = NULL;
    ck_assert(ConvertSecurityDescriptorToStringSecurityDescriptorW(s.sd, SDDL_REVISION_1,
                                                                  DACL_SECURITY_INFORMATION, &text, NULL));
    ck_assert_msg(wcsstr(text, L"(A;;FA;;;SY)") && wcsstr(text, L"(A;;FA;;;BA)"),
                  "round trip: %ls", text);
    LocalFree(text);
    broker_pipe_security_free(&s);
}
END_TEST

START_TEST(sddl_override_and_invalid)
{
    broker_pipe_security s;
    char err[256] = "";
    ck_assert_int_eq(broker_pipe_security_init(&s, "D:P(A;;FA;;;SY)", err, sizeof err), 0);
    PACL dacl = NULL;
    BOOL present, defaulted;
    ck_assert(GetSecurityDescriptorDacl(s.sd, &present, &dacl, &defaulted) && dacl);
    ck_assert_int_eq(dacl->AceCount, 1);
    broker_pipe_security_free(&s);

    ck_assert_int_eq(broker_pipe_security_init(&s, "D:(A;;XYZ;;;NOPE", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "sddl") != NULL, "%s", err);
    ck_assert_int_eq(broker_pipe_security_init(&s, "O:SY", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "sddl") != NULL, "%s", err);
    /* A NULL DACL (everyone full control) is refused. Wine parses NO_ACCESS_CONTROL as an
     * empty DACL instead, which is accepted (it denies everyone): check only on Windows. */
    if (broker_pipe_security_init(&s, "D:NO_ACCESS_CONTROL", err, sizeof err) == 0) {
        ck_assert(GetSecurityDescriptorDacl(s.sd, &present, &dacl, &defaulted) && dacl);
        broker_pipe_security_free(&s);
    }
}
END_TEST

/* The descriptor really reaches the pipe object (Wine stores it even though it does not
 * enforce it): read the DACL back from a created instance. */
START_TEST(descriptor_on_pipe)
{
    broker_pipe_security s;
    char err[256];
    ck_assert_int_eq(broker_pipe_security_init(&s, NULL, err, sizeof err), 0);
    wchar_t name[128];
    _snwprintf(name, 128, L"\\\\.\\pipe\\aipc-unit-sd-%lu", GetCurrentProcessId());
    HANDLE h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 4, 4096, 4096, 0, &s.sa);
    ck_assert(h != INVALID_HANDLE_VALUE);
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                               NULL, &sd);
    if (rc == ERROR_SUCCESS && dacl) {
        int n;
        DWORD m = ace_mask_for(dacl, WinAuthenticatedUserSid, &n);
        ck_assert_int_eq(n, 1);
        ck_assert(!(m & FILE_CREATE_PIPE_INSTANCE));
    }
    if (sd)
        LocalFree(sd);
    CloseHandle(h);
    broker_pipe_security_free(&s);
}
END_TEST

START_TEST(pipe_names)
{
    wchar_t *p = aipc__wname_from_utf8("asyncipc.broker");
    ck_assert(p && wcscmp(p, L"\\\\.\\pipe\\asyncipc.broker") == 0);
    free(p);
    p = aipc__wname_from_utf8("\\\\.\\pipe\\x.y");
    ck_assert(p && wcscmp(p, L"\\\\.\\pipe\\x.y") == 0);
    free(p);
    ck_assert(aipc__wname_from_utf8("") == NULL);
    ck_assert(aipc__wname_from_utf8("\\\\.\\pipe\\") == NULL);
    ck_assert(aipc__wname_from_utf8("a\\b") == NULL);
}
END_TEST

START_TEST(paths_relative_to_config)
{
    char *r = aipc__broker_resolve_path("logs\\b.log", L"C:\\cfg\\dir\\broker.json");
    ck_assert(r && strcmp(r, "C:\\cfg\\dir\\logs\\b.log") == 0);
    free(r);
    r = aipc__broker_resolve_path("..\\b.log", L"C:\\cfg\\dir\\broker.json");
    ck_assert(r && strcmp(r, "C:\\cfg\\b.log") == 0);
    free(r);
    r = aipc__broker_resolve_path("D:\\x\\y.log", L"C:\\cfg\\broker.json");
    ck_assert(r && strcmp(r, "D:\\x\\y.log") == 0);
    free(r);
    ck_assert(aipc__broker_resolve_path("b.log", NULL) == NULL);        /* no config folder */
    ck_assert(aipc__broker_resolve_path("C:b.log", L"C:\\c\\b.json") == NULL); /* drive-relative */
    ck_assert(aipc__broker_resolve_path("\\b.log", L"C:\\c\\b.json") == NULL); /* rooted, no drive */
    wchar_t *c = aipc__broker_config_path(NULL);
    ck_assert(c && wcsstr(c, L"\\AsyncIPC\\broker.json"));
    free(c);
}
END_TEST

/* ---- the engine alone, with an echo handler: close protocol and handle hygiene ---------------- */

typedef struct echo_conn {
    aipc_wconn *w;
    uint8_t *q;             /* queued output */
    size_t len, cap;
} echo_conn;

typedef struct echo_state {
    int attached, detached;
} echo_state;

static void *echo_attach(void *ctx, aipc_wconn *w, unsigned long pid)
{
    echo_state *st = ctx;
    ck_assert_uint_eq(pid, GetCurrentProcessId());
    echo_conn *c = calloc(1, sizeof *c);
    c->w = w;
    st->attached++;
    return c;
}

/* Queues bytes for c (the handler's side of the engine's scatter/consume contract). */
static void echo_queue(echo_conn *c, const uint8_t *d, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->q = realloc(c->q, c->cap);
    }
    memcpy(c->q + c->len, d, n);
    c->len += n;
    aipc_wconn_want_write(c->w);
}

static int echo_input(void *ctx, void *conn, const uint8_t *d, size_t n)
{
    echo_queue(conn, d, n);
    return 0;
}

static void echo_detach(void *ctx, void *conn)
{
    echo_state *st = ctx;
    echo_conn *c = conn;
    st->detached++;
    free(c->q);
    free(c);
}

static int echo_out_next(void *ctx, void *conn, aipc_iov *iov, int max)
{
    echo_conn *c = conn;
    if (!c->len)
        return 0;
    iov[0].base = c->q;     /* one piece: large ones are written in place by the engine */
    iov[0].len = c->len;
    return 1;
}

static void echo_out_consume(void *ctx, void *conn, size_t n)
{
    echo_conn *c = conn;
    memmove(c->q, c->q + n, c->len - n);
    c->len -= n;
}

/* On stop: the echo protocol has no goodbye; the engine closes each connection once its
 * queue drained (or at the grace deadline for readers that never read). */
static void echo_shutdown(void *ctx)
{
}

static DWORD WINAPI engine_thread(LPVOID e)
{
    broker_engine_run(e);
    return 0;
}

START_TEST(engine_echo_close_protocol)
{
    enum { N = 60 };
    echo_state st = { 0 };
    char name[96];
    aipc_test_name(name, sizeof name, "eng");
    wchar_t *path = aipc__wname_from_utf8(name);
    DWORD h0 = aipc_test_handle_count();
    broker_pipe_security sec;
    char err[256];
    ck_assert_int_eq(broker_pipe_security_init(&sec, NULL, err, sizeof err), 0);
    broker_engine_config cfg = { path, &sec.sa, 0, 2000 };
    broker_engine_handler h = { &st, echo_attach, echo_input, echo_detach, echo_out_next,
                                echo_out_consume, echo_shutdown, NULL, NULL, NULL };
    broker_engine *e = NULL;
    ck_assert_int_eq(broker_engine_create(&e, &cfg, &h, err, sizeof err), BROKER_ENGINE_OK);
    /* a second engine on the same name is refused as "in use" */
    broker_engine *e2 = NULL;
    ck_assert_int_eq(broker_engine_create(&e2, &cfg, &h, err, sizeof err), BROKER_ENGINE_PIPE_BUSY);
    HANDLE th = CreateThread(NULL, 0, engine_thread, e, 0, NULL);

    static uint8_t big[300000];
    aipc_pattern_fill(big, sizeof big, 4242);
    raw_conn *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = raw_connect(name, 10000);
        ck_assert(c[i] != NULL);
        /* one frame: small for even, large (written in place) for odd connections */
        uint32_t n = (i % 2) ? 200000 : 100;
        ck_assert_int_eq(raw_send(c[i], NULL, big, n, 10000), 0);
    }
    for (int i = 0; i < N; i++) {
        if (i % 3 == 2)
            continue;           /* these never read their echo: closed with writes pending */
        raw_frame f;
        ck_assert_int_eq(raw_recv(c[i], &f, 10000), 1);
        ck_assert_uint_eq(f.payload_len, (i % 2) ? 200000 : 100);
        ck_assert(aipc_pattern_check(f.payload, f.payload_len, 4242) == -1);
        raw_frame_free(&f);
    }
    for (int i = 0; i < N; i += 3) {    /* abrupt client closes */
        raw_close(c[i]);
        c[i] = NULL;
    }
    broker_engine_request_stop(e);
    ck_assert_int_eq(WaitForSingleObject(th, 10000), WAIT_OBJECT_0);
    CloseHandle(th);
    ck_assert_int_eq(st.attached, N);
    ck_assert_int_eq(st.detached, N);
    for (int i = 0; i < N; i++) {
        if (!c[i])
            continue;
        raw_frame f;
        int r;
        while ((r = raw_recv(c[i], &f, 10000)) == 1)   /* the unread echo, then the end */
            raw_frame_free(&f);
        ck_assert_int_eq(r, -1);
        raw_close(c[i]);
    }
    broker_engine_free(e);
    broker_pipe_security_free(&sec);
    free(path);
    DWORD h1 = aipc_test_handle_count();
    fprintf(stderr, "engine: handles %lu before, %lu after\n", (unsigned long)h0, (unsigned long)h1);
    ck_assert_msg(h1 <= h0 + 2, "handle leak: %lu -> %lu", (unsigned long)h0, (unsigned long)h1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_unit");
    TCase *tc = tcase_create("unit");
    tcase_add_test(tc, default_descriptor_aces);
    tcase_add_test(tc, sddl_override_and_invalid);
    tcase_add_test(tc, descriptor_on_pipe);
    tcase_add_test(tc, pipe_names);
    tcase_add_test(tc, paths_relative_to_config);
    tcase_add_test(tc, engine_echo_close_protocol);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
