/*
 * test_broker_service.c - the broker as a Windows service under Wine: sc create/start/stop/delete
 * with the plain exe path, the exe's own install/start/status/stop/uninstall, a client exchanging
 * messages with the running service, bye on stop, and a start-up failure reported to the SCM.
 * This suite process stays alive throughout, which keeps Wine's service processes running.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define W 30000u

/* Runs a command line (bounded); returns its exit code or -1. */
static int run_cmd(const char *fmt, ...)
{
    char cmd[4 * MAX_PATH];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    STARTUPINFOA si = { sizeof si };
    PROCESS_INFORMATION pi;
    if (!aipc_test_create_process(NULL, cmd, FALSE, 0, &si, &pi))
        return -1;
    CloseHandle(pi.hThread);
    DWORD code = (DWORD)-1;
    if (WaitForSingleObject(pi.hProcess, 60000) == WAIT_OBJECT_0)
        GetExitCodeProcess(pi.hProcess, &code);
    else
        TerminateProcess(pi.hProcess, 99);
    CloseHandle(pi.hProcess);
    return (int)code;
}

/* Folder of this suite (where asyncipc-broker.exe is). */
static void bin_dir(char *out, size_t cap)
{
    DWORD n = GetModuleFileNameA(NULL, out, (DWORD)cap);
    while (n > 0 && out[n - 1] != '\\')
        n--;
    out[n] = 0;
}

/* Writes a config for pipe (log next to it); fills path. */
static void write_config(char *path, size_t cap, const char *pipe)
{
    char log[MAX_PATH];
    aipc_test_temp_path(path, cap, "svc", ".json");
    FILE *fp = fopen(path, "wb");
    ck_assert(fp != NULL);
    /* log_file relative to the config's folder (resolved by the broker) */
    snprintf(log, sizeof log, "%s.log", strrchr(path, '\\') + 1);
    fprintf(fp, "{\"pipe_name\":\"\\\\\\\\.\\\\pipe\\\\%s\",\"log_file\":\"%s\"}", pipe, log);
    fclose(fp);
}

/* State of the service via the SCM (or 0 if it cannot be queried). */
static DWORD svc_state(DWORD *specific)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE s = scm ? OpenServiceW(scm, L"AsyncIPCBroker", SERVICE_QUERY_STATUS) : NULL;
    SERVICE_STATUS_PROCESS st = { 0 };
    DWORD need;
    if (s)
        QueryServiceStatusEx(s, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof st, &need);
    if (specific)
        *specific = st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR ? st.dwServiceSpecificExitCode : 0;
    if (s)
        CloseServiceHandle(s);
    if (scm)
        CloseServiceHandle(scm);
    return st.dwCurrentState;
}

/* A client session against the running service: hello, sub, pub to itself, receive. */
static raw_conn *exchange(const char *pipe)
{
    raw_conn *c = raw_connect(pipe, W);
    ck_assert_msg(c != NULL, "cannot connect to the service's pipe");
    ck_assert(raw_hello(c, "svc-client", W) > 0);
    ck_assert_int_eq(raw_sub(c, "svc/#", 1, W), 0);
    ck_assert_int_eq(raw_send(c, "{\"op\":\"pub\",\"topic\":\"svc/a\"}", "hello service", 13, W), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "msg", -1, W), 1);
    ck_assert(f.payload_len == 13 && memcmp(f.payload, "hello service", 13) == 0);
    raw_frame_free(&f);
    return c;
}

/* Expects the bye of a stopping broker, then the close. */
static void expect_bye(raw_conn *c)
{
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "bye", -1, W), 1);
    ck_assert_str_eq(raw_str(&f, "reason"), "shutdown");
    raw_frame_free(&f);
    ck_assert_int_eq(raw_recv(c, &f, W), -1);
    raw_close(c);
}

/* Waits (bounded) until the service is STOPPED; returns its service-specific exit code. */
static DWORD wait_stopped(void)
{
    DWORD specific = 0;
    uint64_t until = aipc_test_now_ms() + 10000;
    while (svc_state(&specific) != SERVICE_STOPPED && aipc_test_now_ms() < until)
        Sleep(50);   /* the SCM has no wait primitive for a state: poll, bounded */
    ck_assert_uint_eq(svc_state(&specific), SERVICE_STOPPED);
    return specific;
}

/* The default log's text (NULL when absent). */
static char *default_log(void)
{
    char pd[MAX_PATH], log[MAX_PATH + 64];
    ck_assert(GetEnvironmentVariableA("ProgramData", pd, MAX_PATH) > 0);
    snprintf(log, sizeof log, "%s\\AsyncIPC\\logs\\broker.log", pd);
    size_t n = 0;
    return aipc_test_read_file(log, &n);
}

/* What `sc config AsyncIPCBroker binPath= ...` does (Wine's sc has no `config`): the service's
 * command line, with the config, as an administrator sets it. */
static void set_binpath(const char *dir, const char *cfg)
{
    wchar_t cmd[4 * MAX_PATH];
    _snwprintf(cmd, 4 * MAX_PATH, L"\"%hsasyncipc-broker.exe\" service --config \"%hs\"", dir,
               cfg);
    cmd[4 * MAX_PATH - 1] = 0;
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, L"AsyncIPCBroker", SERVICE_CHANGE_CONFIG) : NULL;
    ck_assert_msg(svc != NULL, "OpenService: %lu", GetLastError());
    ck_assert_msg(ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE,
                                       SERVICE_NO_CHANGE, cmd, NULL, NULL, NULL, NULL, NULL,
                                       NULL), "ChangeServiceConfig: %lu", GetLastError());
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
}

/* The data folder the installers create (a service broker never creates it: it refuses to
 * start without it). A fresh prefix has none. */
static void ensure_data_folder(void)
{
    char data[MAX_PATH];
    DWORD n = GetEnvironmentVariableA("ProgramData", data, sizeof data);
    ck_assert(n > 0 && n < sizeof data - 16);
    strcat(data, "\\AsyncIPC");
    ck_assert_msg(CreateDirectoryA(data, NULL) || GetLastError() == ERROR_ALREADY_EXISTS,
                  "cannot create %s (%lu)", data, GetLastError());
}

START_TEST(sc_plain_binpath)
{
    char dir[MAX_PATH], cfg[MAX_PATH], pipe[96];
    ensure_data_folder();
    bin_dir(dir, sizeof dir);
    aipc_test_name(pipe, sizeof pipe, "svc");
    write_config(cfg, sizeof cfg, pipe);
    run_cmd("sc delete AsyncIPCBroker");      /* leftovers of an aborted run */
    ck_assert_int_eq(run_cmd("sc create AsyncIPCBroker binPath= \"%sasyncipc-broker.exe\" "
                             "DisplayName= \"AsyncIPC Broker\"", dir), 0);
    /* start arguments would let whoever may start the service choose the config: refused
     * (service-specific exit code 1), the reason in the default log */
    run_cmd("sc start AsyncIPCBroker --config \"%s\"", cfg);
    ck_assert_uint_eq(wait_stopped(), 1);
    char *text = default_log();
    ck_assert_msg(text && strstr(text, "service start arguments are refused"),
                  "the default log lacks the refusal");
    free(text);
    ck_assert_msg(raw_connect(pipe, 1) == NULL, "a broker listens on the start argument's pipe");
    /* options set by an administrator in the service's command line are fine */
    set_binpath(dir, cfg);
    ck_assert_int_eq(run_cmd("sc start AsyncIPCBroker"), 0);
    raw_conn *c = exchange(pipe);
    ck_assert_uint_eq(svc_state(NULL), SERVICE_RUNNING);
    ck_assert_int_eq(run_cmd("sc stop AsyncIPCBroker"), 0);
    expect_bye(c);
    ck_assert_uint_eq(wait_stopped(), 0);
    ck_assert_int_eq(run_cmd("sc delete AsyncIPCBroker"), 0);
}
END_TEST

START_TEST(exe_install_control)
{
    char dir[MAX_PATH], cfg[MAX_PATH], pipe[96];
    ensure_data_folder();
    bin_dir(dir, sizeof dir);
    aipc_test_name(pipe, sizeof pipe, "svc2");
    write_config(cfg, sizeof cfg, pipe);
    run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" install --config \"%s\" --start demand", dir, cfg), 0);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" start", dir), 0);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" status", dir), 0);
    raw_conn *c = exchange(pipe);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" stop", dir), 0);
    expect_bye(c);
    ck_assert_uint_eq(svc_state(NULL), SERVICE_STOPPED);

    /* start-up failure: the pipe name is taken by someone else -> service-specific exit 3 */
    wchar_t wp[128];
    _snwprintf(wp, 128, L"\\\\.\\pipe\\%hs", pipe);
    HANDLE squat = CreateNamedPipeW(wp, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE, 1, 4096, 4096, 0, NULL);
    ck_assert(squat != INVALID_HANDLE_VALUE);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" start", dir), 3);
    DWORD specific = 0;
    ck_assert_uint_eq(svc_state(&specific), SERVICE_STOPPED);
    ck_assert_uint_eq(specific, 3);
    CloseHandle(squat);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir), 0);
    ck_assert_int_ne(run_cmd("\"%sasyncipc-broker.exe\" status", dir), 0);
    /* the log went next to the config file (relative log_file) */
    char log[MAX_PATH + 8];
    snprintf(log, sizeof log, "%s.log", cfg);
    size_t n = 0;
    char *text = aipc_test_read_file(log, &n);
    ck_assert_msg(text && strstr(text, "in use"), "log %s lacks the start-up error", log);
    free(text);
}
END_TEST

/* A service with an invalid config stops with service-specific exit code 2, and the reason is
 * in the default log (the configured one is not usable when the config is not). */
START_TEST(service_bad_config)
{
    char dir[MAX_PATH], cfg[MAX_PATH], pd[MAX_PATH], log[MAX_PATH + 64];
    ensure_data_folder();
    bin_dir(dir, sizeof dir);
    aipc_test_temp_path(cfg, sizeof cfg, "badsvc", ".json");
    FILE *fp = fopen(cfg, "wb");
    ck_assert(fp != NULL);
    fputs("{\"pipe_name\":\"x\",\"max_clients\":0,\"flavour\":1}", fp);
    fclose(fp);
    run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" install --config \"%s\"", dir, cfg), 0);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" start", dir), 2);
    DWORD specific = 0;
    ck_assert_uint_eq(svc_state(&specific), SERVICE_STOPPED);
    ck_assert_uint_eq(specific, 2);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir), 0);
    ck_assert(GetEnvironmentVariableA("ProgramData", pd, MAX_PATH) > 0);
    snprintf(log, sizeof log, "%s\\AsyncIPC\\logs\\broker.log", pd);
    size_t n = 0;
    char *text = aipc_test_read_file(log, &n);
    ck_assert_msg(text && strstr(text, cfg + 3), "default log %s lacks the config error", log);
    free(text);
    DeleteFileA(cfg);
}
END_TEST

/* Service mode: a log path through a reparse point (the build's guard-link, a symbolic link that
 * Wine reports as one) stops the service with exit code 2, the link named in the default log;
 * the same config is fine for a console broker (`run` has its user's own rights). */
START_TEST(service_refuses_linked_log)
{
    char dir[MAX_PATH], cfg[MAX_PATH], pipe[96], link[MAX_PATH + 16];
    ensure_data_folder();
    bin_dir(dir, sizeof dir);
    snprintf(link, sizeof link, "%sguard-link", dir);
    DWORD attr = GetFileAttributesA(link);
    if (attr == INVALID_FILE_ATTRIBUTES || !(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        fprintf(stderr, "service_refuses_linked_log: skipped, %s is not a reparse point\n", link);
        return;
    }
    aipc_test_name(pipe, sizeof pipe, "svc-link");
    aipc_test_temp_path(cfg, sizeof cfg, "svc-link", ".json");
    FILE *fp = fopen(cfg, "wb");
    ck_assert(fp != NULL);
    fprintf(fp, "{\"pipe_name\":\"%s\",\"log_file\":\"", pipe);
    for (const char *p = link; *p; p++)
        fprintf(fp, *p == '\\' ? "\\\\" : "%c", *p);
    fprintf(fp, "\\\\broker-%s.log\"}", pipe);
    fclose(fp);
    run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" install --config \"%s\"", dir, cfg), 0);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" start", dir), 2);
    ck_assert_uint_eq(wait_stopped(), 2);
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\" uninstall", dir), 0);
    char *text = default_log();
    ck_assert_msg(text && strstr(text, "refused in service mode") && strstr(text, "guard-link"),
                  "the default log lacks the refusal of the linked log path");
    free(text);
    char target[MAX_PATH + 64];
    snprintf(target, sizeof target, "%sguard-target\\broker-%s.log", dir, pipe);
    ck_assert_msg(GetFileAttributesA(target) == INVALID_FILE_ATTRIBUTES,
                  "the service wrote through the link: %s", target);
    /* console mode does not apply the service checks */
    char ready[96], stop[96];
    aipc_test_name(ready, sizeof ready, "ready");
    aipc_test_name(stop, sizeof stop, "stop");
    HANDLE hr = CreateEventA(NULL, TRUE, FALSE, ready), hs = CreateEventA(NULL, TRUE, FALSE, stop);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "asyncipc-broker.exe",
                                     "run --config \"%s\" --ready-event %s --stop-event %s", cfg,
                                     ready, stop), 0);
    HANDLE hw[2] = {hr, p.process};
    ck_assert_int_eq(WaitForMultipleObjects(2, hw, FALSE, W), WAIT_OBJECT_0);
    SetEvent(hs);
    ck_assert_int_eq(aipc_proc_wait(&p, 10000), 0);
    ck_assert_uint_eq(p.exit_code, 0);
    aipc_proc_close(&p);
    CloseHandle(hr);
    CloseHandle(hs);
    DeleteFileA(target);
    DeleteFileA(cfg);
}
END_TEST

START_TEST(no_command_outside_scm)
{
    char dir[MAX_PATH];
    bin_dir(dir, sizeof dir);
    /* started by hand without a command: not a service -> usage, exit 1 (bounded) */
    ck_assert_int_eq(run_cmd("\"%sasyncipc-broker.exe\"", dir), 1);
}
END_TEST

/* No --config and no %ProgramData%\AsyncIPC\broker.json: defaults (the default pipe, the log
 * at %ProgramData%\AsyncIPC\logs\broker.log). Runs serially (the default pipe is global). */
START_TEST(defaults_without_config)
{
    char pd[MAX_PATH], cfg[MAX_PATH + 64], log[MAX_PATH + 64], ready[96], stop[96];
    ck_assert(GetEnvironmentVariableA("ProgramData", pd, MAX_PATH) > 0);
    snprintf(cfg, sizeof cfg, "%s\\AsyncIPC\\broker.json", pd);
    snprintf(log, sizeof log, "%s\\AsyncIPC\\logs\\broker.log", pd);
    if (GetFileAttributesA(cfg) != INVALID_FILE_ATTRIBUTES) {
        /* e.g. left by an installer test in a shared prefix: this case needs it absent */
        fprintf(stderr, "defaults_without_config: skipped, %s exists\n", cfg);
        return;
    }
    aipc_test_name(ready, sizeof ready, "ready");
    aipc_test_name(stop, sizeof stop, "stop");
    HANDLE hr = CreateEventA(NULL, TRUE, FALSE, ready), hs = CreateEventA(NULL, TRUE, FALSE, stop);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "asyncipc-broker.exe", "run --ready-event %s --stop-event %s",
                                     ready, stop), 0);
    HANDLE hw[2] = { hr, p.process };
    ck_assert_int_eq(WaitForMultipleObjects(2, hw, FALSE, W), WAIT_OBJECT_0);
    raw_conn *c = exchange("asyncipc.broker");     /* short form of the default pipe */
    raw_conn *c2 = raw_connect("\\\\.\\pipe\\asyncipc.broker", W);   /* full form */
    ck_assert(c2 && raw_hello(c2, NULL, W) > 0);
    SetEvent(hs);
    ck_assert_int_eq(aipc_proc_wait(&p, 10000), 0);
    ck_assert_uint_eq(p.exit_code, 0);
    aipc_proc_close(&p);
    expect_bye(c);
    expect_bye(c2);
    size_t n = 0;
    char *text = aipc_test_read_file(log, &n);
    ck_assert_msg(text && strstr(text, "listening on \\\\.\\pipe\\asyncipc.broker"), "log %s", log);
    /* payloads are not logged at the default level */
    ck_assert(strstr(text, "hello service") == NULL);
    free(text);
    CloseHandle(hr);
    CloseHandle(hs);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_service");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sc_plain_binpath);
    tcase_add_test(tc, exe_install_control);
    tcase_add_test(tc, service_bad_config);
    tcase_add_test(tc, service_refuses_linked_log);
    tcase_add_test(tc, no_command_outside_scm);
    tcase_add_test(tc, defaults_without_config);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
