/*
 * test_broker_sec_e2e.c - identity and policy end to end: asyncipc-broker.exe as its own process,
 * SDK bus clients (aipc_bus_*) in this one.
 *   - the identity the broker stamps into `from` (msg, direct, req, rep) and presence equals
 *     this process's user SID (from its own token), session and integrity level;
 *   - a policy with %u: publishing and subscribing in one's own user area works, elsewhere the
 *     SDK sees on_error "forbidden"; a request the policy refuses completes with AIPC_EREFUSED
 *     and "forbidden"; a reserved name is refused ("name_reserved");
 *   - start-up refuses a bad "sddl" and a bad "policy" (exit code 2, the key in the log).
 * Every wait is bounded and waits on a condition variable or a process.
 */
#include <windows.h>

#include "check_main.h"

#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "raw_proto.h"

#define W 20000u

/* ---- a recording bus client ----------------------------------------------------------------- */

typedef struct peer_rec {
    char sid[200];
    uint32_t session, integrity, pid;
    uint64_t id;
    int seen;
} peer_rec;

typedef struct rec {
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;
    aipc_bus *bus;
    int state, state_error;
    long msgs, directs, requests, joins, errors;
    peer_rec msg, direct, request, joined;
    char topic[256];
    char last_code[64];
} rec;

static void copy_peer(peer_rec *p, const aipc_bus_peer *from)
{
    snprintf(p->sid, sizeof p->sid, "%s", from->user_sid ? from->user_sid : "(null)");
    p->session = from->session;
    p->integrity = from->integrity;
    p->pid = from->pid;
    p->id = from->id;
    p->seen++;
}

static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    if (strncmp(topic, "$bus/", 5) != 0) {
        copy_peer(&r->msg, from);
        snprintf(r->topic, sizeof r->topic, "%s", topic);
        r->msgs++;
    }
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

static void on_direct(aipc_bus *bus, void *user, const aipc_bus_peer *from, const void *data,
                      size_t len)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    copy_peer(&r->direct, from);
    r->directs++;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

static void on_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    copy_peer(&r->request, from);
    r->requests++;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
    aipc_bus_reply(bus, from->id, req_id, "pong", 4);
}

static void on_presence(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *who)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    if (joined) {
        copy_peer(&r->joined, who);
        r->joins++;
    }
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int error)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    r->state = st;
    if (error)
        r->state_error = error;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

static void on_error(aipc_bus *bus, void *user, int error, const char *code, const char *message)
{
    rec *r = user;
    EnterCriticalSection(&r->lock);
    snprintf(r->last_code, sizeof r->last_code, "%s", code ? code : "");
    r->errors++;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

/* Waits until *field >= target (bounded). */
static int rec_wait(rec *r, volatile long *field, long target)
{
    uint64_t until = aipc_test_now_ms() + W;
    EnterCriticalSection(&r->lock);
    while (*field < target) {
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            break;
        SleepConditionVariableCS(&r->cv, &r->lock, (DWORD)(until - now));
    }
    int ok = *field >= target;
    LeaveCriticalSection(&r->lock);
    return ok;
}

/* Waits for a state, or for DISCONNECTED (final: reconnect is off), bounded. */
static int rec_wait_state(rec *r, int state)
{
    uint64_t until = aipc_test_now_ms() + W;
    EnterCriticalSection(&r->lock);
    while (r->state != state && r->state != AIPC_BUS_DISCONNECTED) {
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            break;
        SleepConditionVariableCS(&r->cv, &r->lock, (DWORD)(until - now));
    }
    int ok = r->state == state;
    LeaveCriticalSection(&r->lock);
    return ok;
}

/* Connects a recorder to the broker's pipe (reconnect off). 0 when connected. */
static int rec_open(rec *r, const char *pipe, const char *name, int presence)
{
    memset(r, 0, sizeof *r);
    InitializeCriticalSection(&r->lock);
    InitializeConditionVariable(&r->cv);
    wchar_t wpipe[128];
    aipc_test_wname(wpipe, 128, pipe);
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = wpipe;
    o.name = name;
    o.user = r;
    o.reconnect = 0;
    o.on_message = on_message;
    o.on_direct = on_direct;
    o.on_request = on_request;
    o.on_presence = presence ? on_presence : NULL;
    o.on_state = on_state;
    o.on_error = on_error;
    if (aipc_bus_connect(&o, &r->bus) != 0)
        return -1;
    return rec_wait_state(r, AIPC_BUS_CONNECTED) ? 0 : -1;
}

static void rec_close(rec *r)
{
    if (r->bus)
        aipc_bus_close(r->bus);
    r->bus = NULL;
    DeleteCriticalSection(&r->lock);
}

/* ---- this process's identity, from its own token -------------------------------------------- */

static void own_identity(char *sid, size_t cap, DWORD *session, DWORD *integrity)
{
    HANDLE tok;
    ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    BYTE buf[512];
    DWORD n = 0;
    ck_assert(GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n));
    char *s = NULL;
    ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)buf)->User.Sid, &s));
    snprintf(sid, cap, "%s", s);
    LocalFree(s);
    *integrity = 0;
    if (GetTokenInformation(tok, TokenIntegrityLevel, buf, sizeof buf, &n)) {
        PSID l = ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid;
        *integrity = *GetSidSubAuthority(l, *GetSidSubAuthorityCount(l) - 1u);
    }
    CloseHandle(tok);
    ck_assert(ProcessIdToSessionId(GetCurrentProcessId(), session));
}

static void expect_me(const peer_rec *p, const char *what)
{
    char sid[200];
    DWORD session, integrity;
    own_identity(sid, sizeof sid, &session, &integrity);
    ck_assert_msg(p->seen > 0, "%s: nothing recorded", what);
    ck_assert_msg(strcmp(p->sid, sid) == 0, "%s: sid %s, expected %s", what, p->sid, sid);
    ck_assert_msg(strncmp(p->sid, "S-1-", 4) == 0, "%s: %s", what, p->sid);
    ck_assert_msg(p->session == session, "%s: session %u, expected %lu", what, p->session,
                  session);
    ck_assert_msg(p->integrity == integrity, "%s: integrity 0x%x, expected 0x%lx", what,
                  p->integrity, integrity);
    ck_assert_uint_eq(p->pid, GetCurrentProcessId());
}

/* ---- reply waiter -------------------------------------------------------------------------- */

typedef struct reply {
    HANDLE done;
    int status;
    char data[64];
    peer_rec from;
} reply;

static void on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    reply *r = user;
    r->status = status;
    snprintf(r->data, sizeof r->data, "%.*s", (int)(len < 63 ? len : 63), (const char *)data);
    if (from)
        copy_peer(&r->from, from);
    SetEvent(r->done);
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(identity_stamped)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "sec-id", NULL), 0);
    rec a, s;
    ck_assert_int_eq(rec_open(&s, b.pipe, "sec-b", 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(s.bus, "t/#"), 0);
    ck_assert_int_eq(rec_open(&a, b.pipe, "sec-a", 0), 0);
    ck_assert_msg(rec_wait(&s, &s.joins, 1), "no $bus/joined for sec-a");
    expect_me(&s.joined, "presence");
    /* the subscription is in place once a ping through s has come back */
    reply p = {CreateEventW(NULL, TRUE, FALSE, NULL)};
    ck_assert(aipc_bus_ping(s.bus, W, on_reply, &p) > 0);
    ck_assert(aipc_test_wait(p.done, W) && p.status == 0);
    ck_assert_int_eq(aipc_bus_publish(a.bus, "t/x", "m", 1, false), 0);
    ck_assert(rec_wait(&s, &s.msgs, 1));
    expect_me(&s.msg, "msg");
    ck_assert_int_eq(aipc_bus_send(a.bus, "sec-b", "d", 1), 0);
    ck_assert(rec_wait(&s, &s.directs, 1));
    expect_me(&s.direct, "direct");
    reply r = {CreateEventW(NULL, TRUE, FALSE, NULL)};
    ck_assert(aipc_bus_request(a.bus, "sec-b", "q", 1, W, on_reply, &r) > 0);
    ck_assert(aipc_test_wait(r.done, W));
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.data, "pong");
    expect_me(&s.request, "req");
    expect_me(&r.from, "rep");
    CloseHandle(p.done);
    CloseHandle(r.done);
    rec_close(&a);
    rec_close(&s);
    ck_assert_int_eq(raw_broker_stop(&b, W), 0);
}
END_TEST

START_TEST(policy_user_area)
{
    char sid[200];
    DWORD session, integrity;
    own_identity(sid, sizeof sid, &session, &integrity);
    raw_broker b;
    const char *policy =
        "\"policy\":{\"rules\":["
        "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"user/%u/#\"},"
        "{\"allow\":[\"sub\"],\"topic\":\"$bus/#\"},"
        "{\"allow\":[\"send\",\"req\"],\"to\":\"sec-svc\"}],"
        "\"names\":{\"sec-root\":\"SY\"}}";
    ck_assert_int_eq(raw_broker_start(&b, "sec-pol", policy), 0);
    rec svc, a;
    ck_assert_int_eq(rec_open(&svc, b.pipe, "sec-svc", 0), 0);
    ck_assert_int_eq(rec_open(&a, b.pipe, "sec-a", 0), 0);
    char mine[300], mine_f[300], other[300];
    snprintf(mine, sizeof mine, "user/%s/notes", sid);
    snprintf(mine_f, sizeof mine_f, "user/%s/#", sid);
    snprintf(other, sizeof other, "user/S-1-5-21-9-9-9-9/notes");
    /* allowed: own area, both ways */
    ck_assert_int_eq(aipc_bus_subscribe(a.bus, mine_f), 0);
    ck_assert_int_eq(aipc_bus_publish(a.bus, mine, "ok", 2, false), 0);
    ck_assert_msg(rec_wait(&a, &a.msgs, 1), "own-area publication not received");
    ck_assert_str_eq(a.topic, mine);
    ck_assert_int_eq(a.errors, 0);
    /* denied: someone else's area */
    ck_assert_int_eq(aipc_bus_publish(a.bus, other, "no", 2, false), 0);
    ck_assert_msg(rec_wait(&a, &a.errors, 1), "no error for a forbidden pub");
    ck_assert_str_eq(a.last_code, "forbidden");
    ck_assert_int_eq(aipc_bus_subscribe(a.bus, "user/+/notes"), 0);
    ck_assert_msg(rec_wait(&a, &a.errors, 2), "no error for a forbidden sub");
    ck_assert_str_eq(a.last_code, "forbidden");
    /* requests: to sec-svc allowed, to anyone else forbidden (AIPC_EREFUSED + the code) */
    reply ok = {CreateEventW(NULL, TRUE, FALSE, NULL)};
    ck_assert(aipc_bus_request(a.bus, "sec-svc", "q", 1, W, on_reply, &ok) > 0);
    ck_assert(aipc_test_wait(ok.done, W));
    ck_assert_int_eq(ok.status, 0);
    reply no = {CreateEventW(NULL, TRUE, FALSE, NULL)};
    ck_assert(aipc_bus_request(svc.bus, "sec-a", "q", 1, W, on_reply, &no) > 0);
    ck_assert(aipc_test_wait(no.done, W));
    ck_assert_int_eq(no.status, AIPC_EREFUSED);
    ck_assert_str_eq(no.data, "forbidden");
    ck_assert_int_eq(a.requests, 0);
    /* the own-area message arrived exactly once, nothing from the refused ones */
    ck_assert_int_eq(a.msgs, 1);
    /* a name reserved to SYSTEM */
    rec root;
    ck_assert_int_ne(rec_open(&root, b.pipe, "sec-root", 0), 0);
    ck_assert(rec_wait_state(&root, AIPC_BUS_DISCONNECTED));
    ck_assert_int_eq(root.state_error, AIPC_EREFUSED);
    ck_assert_str_eq(root.last_code, "name_reserved");
    rec_close(&root);
    CloseHandle(ok.done);
    CloseHandle(no.done);
    rec_close(&a);
    rec_close(&svc);
    ck_assert_int_eq(raw_broker_stop(&b, W), 0);
    size_t n = 0;
    char *log = aipc_test_read_file(b.log, &n);
    ck_assert_msg(log && strstr(log, "policy with 3 rules"), "log %s", b.log);
    ck_assert_msg(strstr(log, "may not publish on \"user/S-1-5-21-9-9-9-9/notes\""), "log %s",
                  b.log);
    free(log);
}
END_TEST

/* Whether the file at path holds `needle` after `after` (NULL: anywhere). */
static int log_has(const char *path, const char *after, const char *needle)
{
    size_t n = 0;
    char *text = aipc_test_read_file(path, &n);
    const char *from = text && after ? strstr(text, after) : text;
    int ok = from && strstr(from, needle) != NULL;
    free(text);
    return ok;
}

/* Runs the broker on a config (extra members after pipe_name and log_file) that must be
 * refused at start-up: exit code 2 and the log names `needle` (the configured log when it
 * could be opened; otherwise the default log, after the config file's path). */
static void expect_refused(const char *extra, const char *needle)
{
    char cfg[MAX_PATH], log[MAX_PATH], pipe[96], esc[2 * MAX_PATH];
    aipc_test_temp_path(cfg, sizeof cfg, "sec-bad", ".json");
    aipc_test_temp_path(log, sizeof log, "sec-bad", ".log");
    aipc_test_name(pipe, sizeof pipe, "sec-bad");
    size_t j = 0;
    for (const char *p = log; *p && j + 2 < sizeof esc; p++) {
        if (*p == '\\')
            esc[j++] = '\\';
        esc[j++] = *p;
    }
    esc[j] = 0;
    FILE *fp = fopen(cfg, "wb");
    ck_assert(fp != NULL);
    fprintf(fp, "{\"pipe_name\":\"%s\",\"log_file\":\"%s\",%s}", pipe, esc, extra);
    fclose(fp);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "asyncipc-broker.exe", "run --config \"%s\"", cfg), 0);
    ck_assert_int_eq(aipc_proc_wait(&p, W), 0);
    ck_assert_uint_eq(p.exit_code, 2);
    aipc_proc_close(&p);
    char pd[MAX_PATH], def[MAX_PATH + 64];
    ck_assert(GetEnvironmentVariableA("ProgramData", pd, MAX_PATH) > 0);
    snprintf(def, sizeof def, "%s\\AsyncIPC\\logs\\broker.log", pd);
    ck_assert_msg(log_has(log, NULL, needle) || log_has(def, cfg, needle),
                  "neither %s nor %s has %s", log, def, needle);
    DeleteFileA(cfg);
}

START_TEST(bad_sddl_refused)
{
    expect_refused("\"sddl\":\"D:P(A;;FA;;;SY)(A;;FA;;;AU)\"", "config key \"sddl\": refused");
    expect_refused("\"sddl\":\"D:P(A;;FA;;;SY)(A;;0x4;;;IU)\"", "S-1-5-4");
    expect_refused("\"sddl\":\"O:BUD:P(A;;FA;;;SY)\"", "owned by S-1-5-32-545");
}
END_TEST

START_TEST(bad_policy_refused)
{
    expect_refused("\"policy\":{\"rules\":[{\"allow\":[\"pub\"],\"topic\":\"a/#/b\"}]}",
                   "\"policy.rules[0].topic\"");
    expect_refused("\"policy\":{\"names\":{\"svc\":\"nobody\"}}", "\"policy.names.svc\"");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_sec_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, identity_stamped);
    tcase_add_test(tc, policy_user_area);
    tcase_add_test(tc, bad_sddl_refused);
    tcase_add_test(tc, bad_policy_refused);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
