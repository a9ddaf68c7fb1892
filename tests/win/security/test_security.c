/*
 * test_security.c - who may serve a pipe (SDK side of docs/security.md), under Wine.
 *
 * Wine stores a pipe's descriptor as given and enforces none of it, so a "squatter" is
 * simulated by fake_server.exe, which creates the pipe with an owner the clients do not
 * expect. Checked: both clients refuse such a server before sending a byte (and say so with
 * AIPC_EUNTRUSTED), accept it when configured to, resolve "service:NAME" to the virtual
 * account's SID, and a point-to-point server's own descriptor as built (owner, protected DACL,
 * SYSTEM + creating user only, or the caller's SDDL).
 */
#include <windows.h>

#include <aclapi.h>
#include "check_main.h"
#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "aipc_testutil.h"

#define W aipc_test_wait_ms()
#define OTHER_USER "S-1-5-21-1111-2222-3333-4444"
/* The SID of NT SERVICE\TrustedInstaller, as Windows documents it. */
#define TRUSTED_INSTALLER "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

/* ---- the fake server ------------------------------------------------------------------------ */

typedef struct fake {
    aipc_proc proc;
    char name[96];
    wchar_t wname[96];
} fake;

static void fake_start(fake *f, const char *owner)
{
    char ev_name[96];
    aipc_test_name(f->name, sizeof f->name, "squat");
    aipc_test_wname(f->wname, 96, f->name);
    snprintf(ev_name, sizeof ev_name, "%s-ready", f->name);
    HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
    ck_assert_ptr_nonnull(ready);
    ck_assert_int_eq(aipc_proc_spawn(&f->proc, "fake_server.exe", "--pipe %s --owner %s --ready %s",
                                     f->name, owner, ev_name), 0);
    ck_assert_msg(aipc_test_wait(ready, W), "fake_server did not start");
    CloseHandle(ready);
}

/* The fake server's verdict: 0 = the client sent nothing, 1 = it sent bytes. */
static DWORD fake_end(fake *f)
{
    ck_assert_int_eq(aipc_proc_wait(&f->proc, W), 0);
    DWORD code = f->proc.exit_code;
    aipc_proc_close(&f->proc);
    return code;
}

/* ---- a point-to-point client ---------------------------------------------------------------- */

typedef struct client {
    aipc_pipe_delegate d;
    HANDLE done;
    volatile LONG ok, fail;
} client;

static void on_connected(aipc_pipe_delegate *self, bool ok)
{
    client *c = (client *)self;
    InterlockedIncrement(ok ? &c->ok : &c->fail);
    SetEvent(c->done);
}

static aipc_named_pipe *p2p_client(client *c, PipeImplType eng, const wchar_t *name,
                                   const char *owners)
{
    memset(c, 0, sizeof *c);
    c->d.OnConnected = on_connected;
    c->done = CreateEventW(NULL, TRUE, FALSE, NULL);
    aipc_named_pipe *p = NULL;
    ck_assert_int_eq(aipc_pipe_new(eng, &p), 0);
    ck_assert_int_eq(aipc_pipe_set_option(p, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, 5000), 0);
    if (owners)
        ck_assert_int_eq(aipc_pipe_set_security(p, NULL, owners), 0);
    ck_assert_int_eq(aipc_pipe_send(p, "secret", 6), 0);   /* queued: must never reach a squatter */
    ck_assert(aipc_pipe_create(p, name, PIPE_CLIENT, &c->d));
    ck_assert_msg(aipc_test_wait(c->done, W), "no OnConnected");
    return p;
}

START_TEST(p2p_client_refuses_other_owner)
{
    PipeImplType eng = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    fake f;
    fake_start(&f, OTHER_USER);
    client c;
    aipc_named_pipe *p = p2p_client(&c, eng, f.wname, NULL);
    ck_assert_int_eq(c.ok, 0);
    ck_assert_int_eq(c.fail, 1);
    uint32_t w = 1;
    ck_assert_int_eq(aipc_pipe_get_error(p, &w), AIPC_EUNTRUSTED);
    ck_assert_str_eq(aipc_strerror(AIPC_EUNTRUSTED),
                     "the server is not owned by an expected principal");
    aipc_pipe_free(p);
    ck_assert_uint_eq(fake_end(&f), 0);                    /* not one byte reached it */
    CloseHandle(c.done);
}
END_TEST

START_TEST(p2p_client_accepts_configured_owner)
{
    fake f;
    fake_start(&f, OTHER_USER);
    client c;
    aipc_named_pipe *p = p2p_client(&c, PIPE_ASYNC, f.wname, "SY;" OTHER_USER);
    ck_assert_int_eq(c.ok, 1);
    ck_assert_int_eq(c.fail, 0);
    ck_assert_uint_eq(fake_end(&f), 1);                    /* the queued message went out */
    /* The fake server exits right after its read, so by now the pipe may be broken: the only
     * error the client may have is that one, never a refusal of the owner. */
    int err = aipc_pipe_get_error(p, NULL);
    ck_assert_msg(err == 0 || err == AIPC_EDISCONNECTED, "error %d", err);
    aipc_pipe_free(p);
    CloseHandle(c.done);
}
END_TEST

START_TEST(p2p_security_arguments)
{
    aipc_named_pipe *p = NULL;
    ck_assert_int_eq(aipc_pipe_new(PIPE_ASYNC, &p), 0);
    ck_assert_int_eq(aipc_pipe_set_security(p, "D:(A;;XYZ;;;NOPE", NULL), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_set_security(p, NULL, "not-a-sid"), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_set_security(p, NULL, ""), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_set_security(p, NULL, "service:"), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_set_security(p, NULL, "*"), 0);
    ck_assert_int_eq(aipc_pipe_set_security(p, "D:P(A;;FA;;;SY)", "SY; BA ;self;service:Foo"), 0);
    ck_assert_int_eq(aipc_pipe_get_error(p, NULL), 0);
    aipc_pipe_free(p);
}
END_TEST

/* ---- the point-to-point server's own descriptor, read back from the pipe -------------------- */

typedef struct srv {
    aipc_pipe_delegate d;
} srv;

static wchar_t *own_sid(void)
{
    HANDLE tok;
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    char buf[256];
    DWORD n;
    ck_assert(GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n));
    CloseHandle(tok);
    wchar_t *s = NULL;
    ck_assert(ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &s));
    return s;
}

/* Creates a server (optionally with `sddl`), opens the pipe raw and returns its descriptor as
 * SDDL text (LocalFree). */
static wchar_t *server_sddl_as_built(const char *sddl)
{
    char name[96];
    wchar_t wname[96], full[128];
    aipc_test_name(name, sizeof name, "sd");
    aipc_test_wname(wname, 96, name);
    _snwprintf(full, 128, L"\\\\.\\pipe\\%ls", wname);
    aipc_named_pipe *p = NULL;
    srv s = {{0}};
    ck_assert_int_eq(aipc_pipe_new(PIPE_OVERLAPPED, &p), 0);
    if (sddl)
        ck_assert_int_eq(aipc_pipe_set_security(p, sddl, NULL), 0);
    ck_assert(aipc_pipe_create(p, wname, PIPE_SERVER, &s.d));
    HANDLE h = CreateFileW(full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    ck_assert_msg(h != INVALID_HANDLE_VALUE, "open: %lu", GetLastError());
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert_int_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
                                     OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                     NULL, NULL, NULL, NULL, &sd), ERROR_SUCCESS);
    wchar_t *text = NULL;
    ck_assert(ConvertSecurityDescriptorToStringSecurityDescriptorW(
        sd, SDDL_REVISION_1, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &text, NULL));
    LocalFree(sd);
    CloseHandle(h);
    aipc_pipe_free(p);
    return text;
}

START_TEST(p2p_server_default_descriptor)
{
    wchar_t *me = own_sid();
    wchar_t *text = server_sddl_as_built(NULL);
    wchar_t want[512];
    /* owner = the creating user; protected DACL: SYSTEM and that user, nobody else */
    _snwprintf(want, 512, L"O:%lsD:P(A;;FA;;;SY)(A;;FA;;;%ls)", me, me);
    ck_assert_msg(wcscmp(text, want) == 0, "as built: %ls\nwanted:   %ls", text, want);
    LocalFree(text);
    LocalFree(me);
}
END_TEST

START_TEST(p2p_server_custom_descriptor)
{
    wchar_t *me = own_sid();
    wchar_t *text = server_sddl_as_built("D:P(A;;FA;;;SY)(A;;0x12019b;;;IU)");
    wchar_t want[512];
    _snwprintf(want, 512, L"O:%lsD:P(A;;FA;;;SY)(A;;0x12019b;;;IU)", me);
    ck_assert_msg(wcscmp(text, want) == 0, "as built: %ls\nwanted:   %ls", text, want);
    LocalFree(text);
    LocalFree(me);
}
END_TEST

/* ---- the bus client ------------------------------------------------------------------------- */

typedef struct busrec {
    HANDLE done;
    volatile LONG state, error, untrusted_errors;
} busrec;

/* Records the first failed attempt (later ones find no server at all). */
static void bus_state(aipc_bus *b, void *u, aipc_bus_state s, int err)
{
    busrec *r = u;
    if ((s == AIPC_BUS_DISCONNECTED || s == AIPC_BUS_RECONNECTING) &&
        InterlockedCompareExchange(&r->state, (LONG)s, 0) == 0) {
        InterlockedExchange(&r->error, err);
        SetEvent(r->done);
    }
}

static void bus_error(aipc_bus *b, void *u, int err, const char *code, const char *msg)
{
    busrec *r = u;
    if (err == AIPC_EUNTRUSTED && strcmp(code, "untrusted_server") == 0)
        InterlockedIncrement(&r->untrusted_errors);
}

static aipc_bus *bus_client(busrec *r, const wchar_t *pipe, const char *owners)
{
    memset(r, 0, sizeof *r);
    r->done = CreateEventW(NULL, TRUE, FALSE, NULL);
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = pipe;
    o.user = r;
    o.reconnect = 1;              /* publications queue while there is no trusted broker */
    o.backoff_min_ms = 50;
    o.connect_timeout_ms = 3000;
    o.on_state = bus_state;
    o.on_error = bus_error;
    o.server_owners = owners;
    aipc_bus *b = NULL;
    ck_assert_int_eq(aipc_bus_connect(&o, &b), 0);
    ck_assert_int_eq(aipc_bus_publish(b, "queued/before/hello", "secret", 6, false), 0);
    return b;
}

START_TEST(bus_refuses_other_owner)
{
    fake f;
    fake_start(&f, OTHER_USER);
    busrec r;
    aipc_bus *b = bus_client(&r, f.wname, NULL);
    ck_assert_msg(aipc_test_wait(r.done, W), "no state change");
    ck_assert_int_eq(r.state, AIPC_BUS_RECONNECTING);      /* refused, retried later */
    ck_assert_int_eq(r.error, AIPC_EUNTRUSTED);
    ck_assert_int_eq(r.untrusted_errors, 1);
    aipc_bus_close(b);
    ck_assert_uint_eq(fake_end(&f), 0);                    /* no hello, no publication */
    CloseHandle(r.done);
}
END_TEST

/* "service:NAME" is the virtual account's SID: a broker running as NT SERVICE\TrustedInstaller
 * (the SID Windows documents) is accepted when that service is named, and hello goes out. */
START_TEST(bus_accepts_named_service_owner)
{
    fake f;
    fake_start(&f, TRUSTED_INSTALLER);
    busrec r;
    aipc_bus *b = bus_client(&r, f.wname, "service:TrustedInstaller");
    ck_assert_uint_eq(fake_end(&f), 1);                    /* it received our hello */
    aipc_bus_close(b);
    ck_assert_int_eq(r.untrusted_errors, 0);
    CloseHandle(r.done);
}
END_TEST

START_TEST(bus_bad_owner_list)
{
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.reconnect = 0;
    o.server_owners = "S-1-5-bogus";
    aipc_bus *b = NULL;
    ck_assert_int_eq(aipc_bus_connect(&o, &b), AIPC_EINVAL);
    ck_assert_ptr_null(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("owners");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, p2p_client_refuses_other_owner, 0, 2);
    tcase_add_test(tc, p2p_client_accepts_configured_owner);
    tcase_add_test(tc, p2p_security_arguments);
    tcase_add_test(tc, p2p_server_default_descriptor);
    tcase_add_test(tc, p2p_server_custom_descriptor);
    tcase_add_test(tc, bus_refuses_other_owner);
    tcase_add_test(tc, bus_accepts_named_service_owner);
    tcase_add_test(tc, bus_bad_owner_list);
    suite_add_tcase(s, tc);
    return s;
}

/* whatever a failed test left running */
static void kill_children(void)
{
    aipc_proc_kill_all();
}

CHECK_MAIN_EX(make_suite, NULL, kill_children, 0u);
