/* bus_test.c - broker process control, a recording bus client, reply waiters and captured
 * child processes for the bus and cli suites (see bus_test.h). */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "bus_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- processes -------------------------------------------------------------------------- */

/* Full path of a program next to the suite. */
static void exe_path(char *out, size_t cap, const char *exe)
{
    char dir[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, dir, MAX_PATH);
    while (n > 0 && dir[n - 1] != '\\')
        n--;
    dir[n] = 0;
    snprintf(out, cap, "%s%s", dir, exe);
}

int bt_broker_restart(bt_broker *b)
{
    char app[MAX_PATH], cmd[3 * MAX_PATH], ev_name[128];
    aipc_test_name(ev_name, sizeof ev_name, "bus-ready");
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, ev_name);
    if (!ev)
        return -1;
    exe_path(app, sizeof app, "asyncipc-broker.exe");
    /* an explicit config: nothing from %ProgramData% (other suites of the prefix) applies */
    if (!b->config[0]) {
        aipc_test_temp_path(b->config, sizeof b->config, "bus-broker", ".json");
        aipc_test_temp_path(b->log, sizeof b->log, "bus-broker", ".log");
        char esc[2 * MAX_PATH];
        size_t j = 0;
        for (const char *p = b->log; *p && j + 2 < sizeof esc; p++) {
            if (*p == '\\')
                esc[j++] = '\\';
            esc[j++] = *p;
        }
        esc[j] = 0;
        FILE *f = fopen(b->config, "wb");
        if (!f) {
            CloseHandle(ev);
            return -1;
        }
        fprintf(f, "{\"pipe_name\":\"%s\",\"log_file\":\"%s\",\"log_level\":\"info\"}", b->pipe, esc);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "\"%s\" run --config \"%s\" --ready-event %s", app, b->config, ev_name);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    if (!aipc_test_create_process(app, cmd, FALSE, CREATE_NEW_PROCESS_GROUP, &si,
                        &pi)) {
        fprintf(stderr, "bt_broker: CreateProcess(%s) failed: %lu\n", app, GetLastError());
        CloseHandle(ev);
        return -1;
    }
    aipc_test_job_assign(pi.hProcess);
    CloseHandle(pi.hThread);
    b->process = pi.hProcess;
    b->pid = pi.dwProcessId;
    HANDLE hs[2] = {ev, pi.hProcess};
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, AIPC_TEST_WAIT_MS);
    CloseHandle(ev);
    if (w != WAIT_OBJECT_0) {
        fprintf(stderr, "bt_broker: the broker did not become ready (%lu)\n", w);
        bt_broker_kill(b);
        return -1;
    }
    return 0;
}

int bt_broker_start(bt_broker *b, const char *tag)
{
    memset(b, 0, sizeof *b);
    aipc_test_name(b->pipe, sizeof b->pipe, tag);
    aipc_test_wname(b->wpipe, sizeof b->wpipe / sizeof b->wpipe[0], b->pipe);
    return bt_broker_restart(b);
}

void bt_broker_kill(bt_broker *b)
{
    if (!b->process)
        return;
    TerminateProcess(b->process, 99);
    WaitForSingleObject(b->process, AIPC_TEST_WAIT_MS);
    CloseHandle(b->process);
    b->process = NULL;
}

void bt_broker_stop(bt_broker *b)
{
    if (!b->process)
        return;
    GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, b->pid);
    if (WaitForSingleObject(b->process, 10000) != WAIT_OBJECT_0)
        TerminateProcess(b->process, 99);
    WaitForSingleObject(b->process, AIPC_TEST_WAIT_MS);
    CloseHandle(b->process);
    b->process = NULL;
}

bt_broker bt_suite_broker;

int bt_suite_broker_start(void)
{
    if (bt_broker_start(&bt_suite_broker, "suite") != 0) {
        fprintf(stderr, "cannot start asyncipc-broker.exe\n");
        return 1;
    }
    return 0;
}

void bt_suite_broker_stop(void)
{
    bt_broker_stop(&bt_suite_broker);
}

void bt_unique_topic(char *out, size_t cap, const char *tag)
{
    static volatile LONG n;
    snprintf(out, cap, "t%ld/%s", (long)InterlockedIncrement(&n), tag);
}

/* ---- live recorders ---------------------------------------------------------------------
 * Suites run without fork under Wine (CK_FORK=no): a failed ck_assert longjmps out of the test,
 * so its bt_client / bt_reply (on the test's stack) are never closed and the SDK would later call
 * into a dead frame. Every recorder is registered while live; the callbacks run only for a live
 * registered address (shared lock held while they run); bt_reap (a checked teardown) marks the
 * leftovers dead first, then closes their clients. */
#define BT_MAX_LIVE 512

typedef struct bt_live {
    void *obj;             /* a bt_client or a bt_reply */
    aipc_bus *bus;         /* clients: the bus to close if the test left it */
    int dead;
} bt_live;

static SRWLOCK g_live_lock = SRWLOCK_INIT;
static bt_live g_live[BT_MAX_LIVE];
static int g_nlive;

static void live_add(void *obj, aipc_bus *bus)
{
    AcquireSRWLockExclusive(&g_live_lock);
    int i = 0;
    while (i < g_nlive && g_live[i].obj != obj)
        i++;
    if (i == g_nlive && g_nlive < BT_MAX_LIVE)
        g_nlive++;
    if (i < g_nlive)
        g_live[i] = (bt_live){obj, bus, 0};
    else
        fprintf(stderr, "bus_test: more than %d live recorders: not guarded\n", BT_MAX_LIVE);
    ReleaseSRWLockExclusive(&g_live_lock);
}

static void live_remove(void *obj)
{
    AcquireSRWLockExclusive(&g_live_lock);
    for (int i = 0; i < g_nlive; i++)
        if (g_live[i].obj == obj) {
            g_live[i] = g_live[--g_nlive];
            break;
        }
    ReleaseSRWLockExclusive(&g_live_lock);
}

/* Callback entry: 1 (shared lock held: call live_leave) if obj is a live recorder. */
static int live_enter(void *obj)
{
    AcquireSRWLockShared(&g_live_lock);
    for (int i = 0; i < g_nlive; i++)
        if (g_live[i].obj == obj && !g_live[i].dead)
            return 1;
    ReleaseSRWLockShared(&g_live_lock);
    return 0;
}

static void live_leave(void)
{
    ReleaseSRWLockShared(&g_live_lock);
}

static void close_left_fn(void *arg)
{
    aipc_bus_close(arg);
}

void bt_reap(void)
{
    aipc_bus *left[BT_MAX_LIVE];
    int n = 0;
    AcquireSRWLockExclusive(&g_live_lock);   /* waits for the callbacks running now */
    for (int i = 0; i < g_nlive; i++) {
        g_live[i].dead = 1;
        if (g_live[i].bus)
            left[n++] = g_live[i].bus;
    }
    ReleaseSRWLockExclusive(&g_live_lock);
    if (n)
        fprintf(stderr, "bus_test: the test left %d bus client(s) open (a failed assertion?): "
                        "closed now, their callbacks ignored\n", n);
    for (int i = 0; i < n; i++)
        if (!aipc_test_call_bounded(close_left_fn, left[i], AIPC_TEST_WAIT_MS)) {
            /* still running: its callbacks could reach a later test's recorder at the same
             * address; nothing after this is trustworthy */
            fprintf(stderr, "bus_test: a left client's aipc_bus_close did not return: exit\n");
            fflush(NULL);
            ExitProcess(3);
        }
    AcquireSRWLockExclusive(&g_live_lock);
    g_nlive = 0;
    ReleaseSRWLockExclusive(&g_live_lock);
}

TCase *bt_tcase_create(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, NULL, bt_reap);
    return tc;
}

/* ---- recording client ------------------------------------------------------------------- */

/* Records a broken promise seen on the I/O thread (first one wins). Lock held. */
static void note_error(bt_client *c, const char *what)
{
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, "%s", what);
}

/* Every callback: same thread always; nothing after CLOSED. Lock held. */
static void check_thread(bt_client *c)
{
    DWORD t = GetCurrentThreadId();
    if (!c->io_thread)
        c->io_thread = t;
    else if (c->io_thread != t)
        note_error(c, "callbacks on two different threads");
    if (c->closed)
        c->state_after_close++;
}

static void keep_msg(bt_client *c, const char *topic, const aipc_bus_peer *from, int retained,
                     uint64_t req_id, const void *data, size_t len)
{
    if (!c->keep || c->nkept >= BT_MAX_KEEP)
        return;
    if (!c->kept && !(c->kept = calloc(BT_MAX_KEEP, sizeof *c->kept)))
        return;
    bt_msg *m = &c->kept[c->nkept++];
    m->topic = topic ? _strdup(topic) : NULL;
    m->data = malloc(len + 1);
    if (m->data) {
        memcpy(m->data, data, len);
        m->data[len] = 0;
    }
    m->len = len;
    m->from_id = from ? from->id : 0;
    m->from_pid = from ? from->pid : 0;
    snprintf(m->from_name, sizeof m->from_name, "%s", from && from->name ? from->name : "");
    m->retained = retained;
    m->req_id = req_id;
}

static void rec_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                    bool retained, const void *data, size_t len)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    if (!topic || !from || !from->name || (len && !data))
        note_error(c, "on_message with NULL arguments");
    /* "seq" payloads: 'S', u32 publisher, u32 seq - per-publisher order check */
    if (len == 9 && ((const uint8_t *)data)[0] == 'S') {
        uint32_t pubno, seq;
        memcpy(&pubno, (const uint8_t *)data + 1, 4);
        memcpy(&seq, (const uint8_t *)data + 5, 4);
        if (pubno < 512) {
            if (seq != c->last_seq[pubno] + 1)
                c->order_errors++;
            c->last_seq[pubno] = seq;
        }
    }
    keep_msg(c, topic, from, retained, 0, data, len);
    c->msgs++;
    int close_now = c->close_in_callback;
    c->close_in_callback = 0;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
    if (close_now)
        aipc_bus_close(bus);   /* returns at once; the teardown follows this callback */
}

static void rec_direct(aipc_bus *bus, void *user, const aipc_bus_peer *from, const void *data,
                    size_t len)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    keep_msg(c, NULL, from, 0, 0, data, len);
    c->directs++;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void rec_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                    const void *data, size_t len)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    keep_msg(c, NULL, from, 0, req_id, data, len);
    bt_req_mode mode = c->req_mode;
    LeaveCriticalSection(&c->lock);
    if (mode == BT_REQ_ECHO) {
        int rc = aipc_bus_reply(bus, from->id, req_id, data, len);
        if (rc != 0) {
            EnterCriticalSection(&c->lock);
            note_error(c, "aipc_bus_reply failed inside on_request");
            LeaveCriticalSection(&c->lock);
        }
    }
    EnterCriticalSection(&c->lock);
    c->requests++;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void rec_presence(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *who)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    snprintf(c->last_presence_name, sizeof c->last_presence_name, "%s", who->name);
    c->last_presence_id = who->id;
    c->last_presence_pid = who->pid;
    if (joined)
        c->joined++;
    else
        c->left++;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void rec_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    if (st != AIPC_BUS_CLOSED)
        check_thread(c);
    else if (c->closer_thread && GetCurrentThreadId() != c->closer_thread)
        note_error(c, "on_state(CLOSED) not on the thread that called aipc_bus_close");
    c->last_state = (int)st;
    c->last_error = err;
    switch (st) {
    case AIPC_BUS_CONNECTED: c->connected++; break;
    case AIPC_BUS_DISCONNECTED: c->disconnected++; break;
    case AIPC_BUS_RECONNECTING: c->reconnecting++; break;
    case AIPC_BUS_CLOSED: c->closed++; break;
    default: note_error(c, "unexpected state"); break;
    }
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void rec_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    c->dropped += (long long)count;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void rec_error(aipc_bus *bus, void *user, int err, const char *code, const char *msg)
{
    bt_client *c = user;
    EnterCriticalSection(&c->lock);
    check_thread(c);
    snprintf(c->last_error_code, sizeof c->last_error_code, "%s", code ? code : "(null)");
    if (!msg)
        note_error(c, "on_error with a NULL message");
    c->errors++;
    WakeAllConditionVariable(&c->cv);
    LeaveCriticalSection(&c->lock);
}

static void cb_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    if (live_enter(user)) {
        rec_message(bus, user, topic, from, retained, data, len);
        live_leave();
    }
}

static void cb_direct(aipc_bus *bus, void *user, const aipc_bus_peer *from, const void *data,
                      size_t len)
{
    if (live_enter(user)) {
        rec_direct(bus, user, from, data, len);
        live_leave();
    }
}

static void cb_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    if (live_enter(user)) {
        rec_request(bus, user, from, req_id, data, len);
        live_leave();
    }
}

static void cb_presence(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *who)
{
    if (live_enter(user)) {
        rec_presence(bus, user, joined, who);
        live_leave();
    }
}

static void cb_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    if (live_enter(user)) {
        rec_state(bus, user, st, err);
        live_leave();
    }
}

static void cb_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    if (live_enter(user)) {
        rec_dropped(bus, user, count);
        live_leave();
    }
}

static void cb_error(aipc_bus *bus, void *user, int err, const char *code, const char *msg)
{
    if (live_enter(user)) {
        rec_error(bus, user, err, code, msg);
        live_leave();
    }
}

void bt_options(bt_client *c, aipc_bus_options *o, const wchar_t *pipe, const char *name,
                int reconnect)
{
    aipc_bus_options_init(o);
    o->engine = aipc_test_bus_engine();
    o->pipe_name = pipe;
    o->name = name;
    o->user = c;
    o->reconnect = reconnect;
    o->backoff_min_ms = 20;
    o->backoff_max_ms = 500;
    o->on_message = cb_message;
    o->on_direct = cb_direct;
    o->on_request = cb_request;
    o->on_presence = cb_presence;
    o->on_state = cb_state;
    o->on_dropped = cb_dropped;
    o->on_error = cb_error;
}

int bt_connect(bt_client *c, const aipc_bus_options *o)
{
    int keep = c->keep;
    bt_req_mode mode = c->req_mode;
    memset(c, 0, sizeof *c);
    c->keep = keep;
    c->req_mode = mode;
    InitializeCriticalSection(&c->lock);
    InitializeConditionVariable(&c->cv);
    live_add(c, NULL);   /* before the connect: callbacks may start at once */
    int rc = aipc_bus_connect(o, &c->bus);
    if (rc == 0)
        live_add(c, c->bus);
    else
        live_remove(c);
    return rc;
}

int bt_open(bt_client *c, const wchar_t *pipe, const char *name, int keep)
{
    aipc_bus_options o;
    c->keep = keep;
    bt_options(c, &o, pipe, name, 1);
    if (bt_connect(c, &o) != 0)
        return -1;
    return bt_wait(c, &c->connected, 1, AIPC_TEST_WAIT_MS) ? 0 : -1;
}

int bt_wait(bt_client *c, volatile long long *field, long long target, DWORD ms)
{
    uint64_t until = aipc_test_now_ms() + ms;
    EnterCriticalSection(&c->lock);
    while (*field < target) {
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            break;
        SleepConditionVariableCS(&c->cv, &c->lock, (DWORD)(until - now));
    }
    int ok = *field >= target;
    LeaveCriticalSection(&c->lock);
    return ok;
}

long long bt_get(bt_client *c, volatile long long *field)
{
    EnterCriticalSection(&c->lock);
    long long v = *field;
    LeaveCriticalSection(&c->lock);
    return v;
}

void bt_clear(bt_client *c)
{
    EnterCriticalSection(&c->lock);
    for (size_t i = 0; i < c->nkept; i++) {
        free(c->kept[i].topic);
        free(c->kept[i].data);
    }
    free(c->kept);
    c->kept = NULL;
    c->nkept = 0;
    LeaveCriticalSection(&c->lock);
}

bt_msg *bt_kept(bt_client *c, size_t i)
{
    EnterCriticalSection(&c->lock);
    bt_msg *m = i < c->nkept ? &c->kept[i] : NULL;
    LeaveCriticalSection(&c->lock);
    return m;
}

/* Closes on a helper thread, which the final callbacks (on_state(CLOSED), requests with
 * AIPC_ECLOSED) must run on. */
static void close_fn(void *arg)
{
    bt_client *c = arg;
    EnterCriticalSection(&c->lock);
    c->closer_thread = GetCurrentThreadId();
    LeaveCriticalSection(&c->lock);
    aipc_bus_close(c->bus);
}

int bt_close(bt_client *c)
{
    int ok = 1;
    if (c->bus) {
        ok = aipc_test_call_bounded(close_fn, c, AIPC_TEST_WAIT_MS);
        c->bus = NULL;
    }
    if (!ok)
        return 0;   /* deadlock: leave everything (the SDK may still use it; bt_reap exits) */
    live_remove(c);
    bt_clear(c);
    DeleteCriticalSection(&c->lock);
    return 1;
}

int bt_sync(bt_client *c, DWORD ms)
{
    bt_reply r;
    bt_reply_init(&r);
    int ok = aipc_bus_ping(c->bus, ms, bt_on_reply, &r) > 0 && bt_reply_wait(&r, ms + 5000) &&
             r.status == 0;
    bt_reply_free(&r);
    return ok;
}

/* ---- replies ---------------------------------------------------------------------------- */

void bt_reply_init(bt_reply *r)
{
    memset(r, 0, sizeof *r);
    r->done = CreateEventW(NULL, TRUE, FALSE, NULL);
    r->status = 1;
    live_add(r, NULL);
}

void bt_reply_free(bt_reply *r)
{
    live_remove(r);
    if (r->done)
        CloseHandle(r->done);
    free(r->data);
    memset(r, 0, sizeof *r);
}

static void record_reply(void *user, int status, const aipc_bus_peer *from, const void *data,
                         size_t len)
{
    bt_reply *r = user;
    if (InterlockedIncrement(&r->calls) != 1)
        return;   /* a second call is a bug the test sees in `calls` */
    r->status = status;
    r->data = malloc(len + 1);
    if (r->data) {
        memcpy(r->data, data, len);
        r->data[len] = 0;
    }
    r->len = len;
    r->from_id = from ? from->id : 0;
    snprintf(r->from_name, sizeof r->from_name, "%s", from && from->name ? from->name : "");
    r->thread = GetCurrentThreadId();
    SetEvent(r->done);
}

void bt_on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                 const void *data, size_t len)
{
    (void)bus;
    if (live_enter(user)) {
        record_reply(user, status, from, data, len);
        live_leave();
    }
}

int bt_reply_wait(bt_reply *r, DWORD ms)
{
    return aipc_test_wait(r->done, ms);
}

/* ---- children with captured output ------------------------------------------------------ */

static HANDLE open_inheritable(const char *path, DWORD access, DWORD disp)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    return CreateFileA(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                       disp, FILE_ATTRIBUTE_NORMAL, NULL);
}

int bt_child_start(bt_child *ch, const char *exe, const char *args, const char *stdin_data)
{
    memset(ch, 0, sizeof *ch);
    char app[MAX_PATH], cmd[4096], in_path[MAX_PATH];
    exe_path(app, sizeof app, exe);
    snprintf(cmd, sizeof cmd, "\"%s\" %s", app, args);
    aipc_test_temp_path(ch->out_path, sizeof ch->out_path, "out", ".txt");
    aipc_test_temp_path(ch->err_path, sizeof ch->err_path, "err", ".txt");
    aipc_test_temp_path(in_path, sizeof in_path, "in", ".txt");
    FILE *f = fopen(in_path, "wb");
    if (!f)
        return -1;
    if (stdin_data)
        fputs(stdin_data, f);
    fclose(f);
    HANDLE hin = open_inheritable(in_path, GENERIC_READ, OPEN_EXISTING);
    HANDLE hout = open_inheritable(ch->out_path, GENERIC_WRITE, CREATE_ALWAYS);
    HANDLE herr = open_inheritable(ch->err_path, GENERIC_WRITE, CREATE_ALWAYS);
    int rc = -1;
    if (hin != INVALID_HANDLE_VALUE && hout != INVALID_HANDLE_VALUE && herr != INVALID_HANDLE_VALUE) {
        STARTUPINFOA si;
        memset(&si, 0, sizeof si);
        si.cb = sizeof si;
        si.dwFlags = STARTF_USESTDHANDLES;
        si.hStdInput = hin;
        si.hStdOutput = hout;
        si.hStdError = herr;
        PROCESS_INFORMATION pi;
        if (aipc_test_create_process(app, cmd, TRUE, CREATE_NEW_PROCESS_GROUP, &si,
                           &pi)) {
            aipc_test_job_assign(pi.hProcess);
            CloseHandle(pi.hThread);
            ch->process = pi.hProcess;
            ch->pid = pi.dwProcessId;
            rc = 0;
        } else {
            fprintf(stderr, "bt_child_start: CreateProcess(%s) failed: %lu\n", app, GetLastError());
        }
    }
    if (hin != INVALID_HANDLE_VALUE)
        CloseHandle(hin);
    if (hout != INVALID_HANDLE_VALUE)
        CloseHandle(hout);
    if (herr != INVALID_HANDLE_VALUE)
        CloseHandle(herr);
    DeleteFileA(in_path);
    return rc;
}

/* Reads the outputs once the child is gone. */
static void collect(bt_child *ch)
{
    GetExitCodeProcess(ch->process, &ch->exit_code);
    CloseHandle(ch->process);
    ch->process = NULL;
    size_t n;
    ch->out = aipc_test_read_file(ch->out_path, &n);
    ch->err = aipc_test_read_file(ch->err_path, &n);
    if (!ch->out)
        ch->out = _strdup("");
    if (!ch->err)
        ch->err = _strdup("");
    DeleteFileA(ch->out_path);
    DeleteFileA(ch->err_path);
}

int bt_child_poll(bt_child *ch, DWORD ms)
{
    if (!ch->process)
        return 1;
    if (WaitForSingleObject(ch->process, ms) != WAIT_OBJECT_0)
        return 0;
    collect(ch);
    return 1;
}

int bt_child_wait(bt_child *ch, DWORD ms)
{
    if (bt_child_poll(ch, ms))
        return 1;
    TerminateProcess(ch->process, 99);
    WaitForSingleObject(ch->process, AIPC_TEST_WAIT_MS);
    collect(ch);
    return 0;
}

void bt_child_free(bt_child *ch)
{
    if (ch->process) {
        TerminateProcess(ch->process, 99);
        WaitForSingleObject(ch->process, AIPC_TEST_WAIT_MS);
        collect(ch);
    }
    free(ch->out);
    free(ch->err);
    ch->out = ch->err = NULL;
}

int bt_count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        if (*s == '\n')
            n++;
    return n;
}
