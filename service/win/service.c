/*
 * service.c - the broker as a Windows service (SCM glue) and the service control commands
 * (install / uninstall / start / stop / status).
 *
 * Threads: StartServiceCtrlDispatcher's thread runs the control handler (svc_ctrl); ServiceMain
 * (svc_main) runs on a thread the dispatcher creates and becomes the broker's I/O thread. The
 * control handler only reports status and posts a stop request to the engine's completion port;
 * g_lock guards the app pointer between the two.
 */
#include "service.h"

#include "broker_app.h"

#include "asyncipc/asyncipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static SERVICE_STATUS_HANDLE g_ssh;
static SERVICE_STATUS g_status;
static CRITICAL_SECTION g_lock;
static aipc__broker_app *g_app;
static int g_stop_early;
static aipc__broker_opts g_opts;

/* Reports a state to the SCM (checkpoints advance for pending states). */
static void report(DWORD state, DWORD win32_exit, DWORD specific_exit, DWORD wait_hint)
{
    EnterCriticalSection(&g_lock);
    g_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    g_status.dwCurrentState = state;
    g_status.dwWin32ExitCode = win32_exit;
    g_status.dwServiceSpecificExitCode = specific_exit;
    g_status.dwWaitHint = wait_hint;
    g_status.dwControlsAccepted =
        state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    if (state == SERVICE_RUNNING || state == SERVICE_STOPPED)
        g_status.dwCheckPoint = 0;
    else
        g_status.dwCheckPoint++;
    SetServiceStatus(g_ssh, &g_status);
    LeaveCriticalSection(&g_lock);
}

/* Control handler (dispatcher thread): STOP and SHUTDOWN request a clean stop. */
static DWORD WINAPI svc_ctrl(DWORD ctl, DWORD type, LPVOID data, LPVOID ctx)
{
    switch (ctl) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        aipc_log(AIPC_LOG_INFO, "broker: service control %s received",
                 ctl == SERVICE_CONTROL_STOP ? "STOP" : "SHUTDOWN");
        /* STOP_PENDING goes out before the stop is requested and under the lock that
         * svc_main's final reports also take: a fast stop can then never be followed by a late
         * STOP_PENDING after SERVICE_STOPPED (which the SCM would take for a crashed service). */
        EnterCriticalSection(&g_lock);
        if (g_status.dwCurrentState != SERVICE_STOPPED)
            report(SERVICE_STOP_PENDING, NO_ERROR, 0, 5000);
        if (g_app)
            aipc__broker_app_stop(g_app);
        else
            g_stop_early = 1;
        LeaveCriticalSection(&g_lock);
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        EnterCriticalSection(&g_lock);
        SetServiceStatus(g_ssh, &g_status);
        LeaveCriticalSection(&g_lock);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* Writes a start-up failure to the Application event log (source AsyncIPCBroker), next to the
 * log file, so that it is visible where service failures are usually looked for. */
static void report_event(int code, const char *err)
{
    HANDLE src = RegisterEventSourceW(NULL, AIPC_SERVICE_NAME);
    if (!src)
        return;
    wchar_t msg[1200];
    _snwprintf(msg, 1200, L"AsyncIPC Broker could not start (service exit code %d: %hs): %hs",
               code, aipc__broker_exit_text((unsigned long)code), err);
    msg[1199] = 0;
    const wchar_t *strs[1] = { msg };
    ReportEventW(src, EVENTLOG_ERROR_TYPE, 0, 1000 + (DWORD)code, NULL, 1, 0, strs, NULL);
    DeregisterEventSource(src);
}

int aipc__service_start_args_check(DWORD argc, const wchar_t *const *argv, char *why,
                                  size_t whylen)
{
    if (argc <= 1)
        return 0;
    snprintf(why, whylen, "service start arguments are refused (%lu given, the first \"%ls\"): "
             "whoever may start the service could use them to choose the config or the pipe; "
             "options belong in the service's command line, set at install time "
             "(asyncipc-broker install --config FILE)",
             (unsigned long)(argc - 1), argv[1] ? argv[1] : L"");
    return -1;
}

/* ServiceMain: starts the broker and serves until a stop. argv are the START arguments (given
 * by whoever called StartService, e.g. `sc start NAME ...`), not the service's command line
 * (set by an administrator, parsed by main): they are refused. */
static void WINAPI svc_main(DWORD argc, LPWSTR *argv)
{
    g_ssh = RegisterServiceCtrlHandlerExW(AIPC_SERVICE_NAME, svc_ctrl, NULL);
    if (!g_ssh)
        return;
    report(SERVICE_START_PENDING, NO_ERROR, 0, 5000);
    aipc__broker_opts o = g_opts;
    o.console = 0;
    o.service = 1;
    char err[1024] = "";
    aipc__broker_app *app = NULL;
    int rc = 0;
    if (aipc__service_start_args_check(argc, (const wchar_t *const *)argv, err, sizeof err) != 0) {
        rc = AIPC_BROKER_EXIT_USAGE;
        aipc__broker_open_default_log(1);
    }
    report(SERVICE_START_PENDING, NO_ERROR, 0, 5000);
    if (rc == 0)
        rc = aipc__broker_app_start(&app, &o, err, sizeof err);
    if (rc != 0) {
        aipc_log(AIPC_LOG_ERROR, "broker: service start failed (service exit code %d: %s): %s",
                 rc, aipc__broker_exit_text((unsigned long)rc), err);
        report_event(rc, err);
        report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, (DWORD)rc, 0);
        return;
    }
    EnterCriticalSection(&g_lock);
    g_app = app;
    if (g_stop_early)
        aipc__broker_app_stop(app);
    LeaveCriticalSection(&g_lock);
    report(SERVICE_RUNNING, NO_ERROR, 0, 0);
    aipc__broker_app_run(app);
    report(SERVICE_STOP_PENDING, NO_ERROR, 0, 3000);
    EnterCriticalSection(&g_lock);
    g_app = NULL;
    LeaveCriticalSection(&g_lock);
    aipc__broker_app_free(app);
    aipc_log(AIPC_LOG_INFO, "broker: service stopped");
    report(SERVICE_STOPPED, NO_ERROR, 0, 0);
}

int aipc__service_dispatch(const aipc__broker_opts *o, DWORD *err)
{
    static SERVICE_TABLE_ENTRYW table[] = {
        { (LPWSTR)AIPC_SERVICE_NAME, svc_main },
        { NULL, NULL },
    };
    InitializeCriticalSection(&g_lock);
    g_opts = *o;
    if (!StartServiceCtrlDispatcherW(table)) {
        *err = GetLastError();
        return -1;
    }
    *err = 0;
    return 0;
}

/* ---- control commands ------------------------------------------------------------------------ */

/* Prints the last error with a prefix; returns the service-failure exit code. */
static int fail(const char *what)
{
    DWORD er = GetLastError();
    char msg[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, er, 0, msg,
                   sizeof msg, NULL);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = 0;
    fprintf(stderr, "asyncipc-broker: %s failed: error %lu %s\n", what, (unsigned long)er, msg);
    return AIPC_BROKER_EXIT_SERVICE;
}

static const char *state_name(DWORD s)
{
    switch (s) {
    case SERVICE_STOPPED: return "STOPPED";
    case SERVICE_START_PENDING: return "START_PENDING";
    case SERVICE_STOP_PENDING: return "STOP_PENDING";
    case SERVICE_RUNNING: return "RUNNING";
    case SERVICE_CONTINUE_PENDING: return "CONTINUE_PENDING";
    case SERVICE_PAUSE_PENDING: return "PAUSE_PENDING";
    case SERVICE_PAUSED: return "PAUSED";
    default: return "UNKNOWN";
    }
}

/* Waits (bounded) until the service leaves `pending`; returns the final status. */
static int wait_state(SC_HANDLE svc, DWORD pending, DWORD timeout_ms, SERVICE_STATUS_PROCESS *st)
{
    ULONGLONG until = GetTickCount64() + timeout_ms;
    DWORD need;
    for (;;) {
        if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)st, sizeof *st, &need))
            return -1;
        if (st->dwCurrentState != pending)
            return 0;
        if (GetTickCount64() >= until)
            return 1;
        /* The SCM offers no change notification usable here on all targets: poll. */
        Sleep(50);
    }
}

/* The Application-log event source: Event Viewer reads the broker's events through the
 * message table in this exe (broker_msg.mc). The installers register the same values. */
#define AIPC_EVENT_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" AIPC_SERVICE_NAME

static int register_event_source(const wchar_t *exe)
{
    HKEY k;
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, AIPC_EVENT_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL, &k,
                        NULL) != ERROR_SUCCESS)
        return -1;
    LONG r = RegSetValueExW(k, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe,
                            (DWORD)((wcslen(exe) + 1) * sizeof(wchar_t)));
    if (r == ERROR_SUCCESS)
        r = RegSetValueExW(k, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof types);
    RegCloseKey(k);
    return r == ERROR_SUCCESS ? 0 : -1;
}

int aipc__service_install(const wchar_t *config, const wchar_t *start)
{
    DWORD start_type = SERVICE_DEMAND_START;
    if (start && wcscmp(start, L"auto") == 0)
        start_type = SERVICE_AUTO_START;
    else if (start && wcscmp(start, L"demand") != 0) {
        fprintf(stderr, "asyncipc-broker: --start must be auto or demand\n");
        return AIPC_BROKER_EXIT_USAGE;
    }
    wchar_t exe[MAX_PATH * 2];
    DWORD n = GetModuleFileNameW(NULL, exe, MAX_PATH * 2);
    if (!n || n >= MAX_PATH * 2)
        return fail("GetModuleFileName");
    wchar_t cmd[MAX_PATH * 5];
    if (config) {
        wchar_t *abs = aipc__broker_config_path(config);
        if (!abs) {
            fprintf(stderr, "asyncipc-broker: invalid --config path\n");
            return AIPC_BROKER_EXIT_USAGE;
        }
        _snwprintf(cmd, MAX_PATH * 5, L"\"%ls\" service --config \"%ls\"", exe, abs);
        free(abs);
    } else {
        _snwprintf(cmd, MAX_PATH * 5, L"\"%ls\" service", exe);
    }
    cmd[MAX_PATH * 5 - 1] = 0;
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CREATE_SERVICE);
    if (!scm)
        return fail("OpenSCManager");
    /* Its own virtual account (NT SERVICE\AsyncIPCBroker, no password), as the installers do:
     * least privilege, and the owner the SDK's clients expect of the broker pipe. */
    SC_HANDLE svc = CreateServiceW(scm, AIPC_SERVICE_NAME, AIPC_SERVICE_DISPLAY,
                                   SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS, start_type,
                                   SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL,
                                   L"NT SERVICE\\" AIPC_SERVICE_NAME, NULL);
    if (!svc) {
        int rc = fail("CreateService");
        CloseServiceHandle(scm);
        return rc;
    }
    SERVICE_DESCRIPTIONW desc = { (LPWSTR)L"AsyncIPC message broker (named pipe \\\\.\\pipe\\asyncipc.broker by default)." };
    ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
    /* Only the privilege every process needs, and an unrestricted service SID. Wine's service
     * manager does not know these levels: a warning, not a failure. */
    static wchar_t privs[] = L"SeChangeNotifyPrivilege\0";
    SERVICE_REQUIRED_PRIVILEGES_INFOW rp = { privs };
    SERVICE_SID_INFO sid = { SERVICE_SID_TYPE_UNRESTRICTED };
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO, &rp) ||
        !ChangeServiceConfig2W(svc, SERVICE_CONFIG_SERVICE_SID_INFO, &sid))
        fprintf(stderr, "asyncipc-broker: warning: cannot restrict the service's privileges or "
                "set its SID type (error %lu)\n", GetLastError());
    /* Restart after 5 s, 5 s, 30 s (count reset after a day), also after a stop with an error
     * exit code (the failure flag), as the installers register it. */
    SC_ACTION acts[3] = { { SC_ACTION_RESTART, 5000 }, { SC_ACTION_RESTART, 5000 },
                          { SC_ACTION_RESTART, 30000 } };
    SERVICE_FAILURE_ACTIONSW fa = { 86400, NULL, NULL, 3, acts };
    SERVICE_FAILURE_ACTIONS_FLAG ff = { TRUE };
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa) ||
        !ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &ff))
        fprintf(stderr, "asyncipc-broker: warning: cannot set the service's failure actions "
                "(error %lu)\n", GetLastError());
    if (register_event_source(exe) != 0)
        fprintf(stderr, "asyncipc-broker: warning: cannot register the event source "
                "HKLM\\%ls\n", AIPC_EVENT_KEY);
    printf("installed service %ls\n", AIPC_SERVICE_NAME);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return 0;
}

/* Opens the service with the given access; prints an error if that fails. */
static SC_HANDLE open_service(SC_HANDLE *scm, DWORD access)
{
    *scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!*scm) {
        fail("OpenSCManager");
        return NULL;
    }
    SC_HANDLE svc = OpenServiceW(*scm, AIPC_SERVICE_NAME, access);
    if (!svc) {
        fail("OpenService");
        CloseServiceHandle(*scm);
        *scm = NULL;
    }
    return svc;
}

/* Sends STOP and waits (bounded) for STOPPED. */
static int stop_service(SC_HANDLE svc, int quiet_if_stopped)
{
    SERVICE_STATUS ss;
    SERVICE_STATUS_PROCESS st;
    if (!ControlService(svc, SERVICE_CONTROL_STOP, &ss)) {
        if (GetLastError() == ERROR_SERVICE_NOT_ACTIVE && quiet_if_stopped)
            return 0;
        return fail("ControlService(STOP)");
    }
    int w = wait_state(svc, SERVICE_STOP_PENDING, 10000, &st);
    if (w != 0 || st.dwCurrentState != SERVICE_STOPPED) {
        fprintf(stderr, "asyncipc-broker: service did not stop (state %s)\n",
                state_name(st.dwCurrentState));
        return AIPC_BROKER_EXIT_SERVICE;
    }
    return 0;
}

int aipc__service_uninstall(void)
{
    SC_HANDLE scm;
    SC_HANDLE svc = open_service(&scm, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (!svc)
        return AIPC_BROKER_EXIT_SERVICE;
    int rc = stop_service(svc, 1);
    if (rc == 0 && !DeleteService(svc))
        rc = fail("DeleteService");
    if (rc == 0) {
        RegDeleteKeyW(HKEY_LOCAL_MACHINE, AIPC_EVENT_KEY);
        printf("removed service %ls\n", AIPC_SERVICE_NAME);
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

/* Prints the status line: state, pid, and the exit code with its meaning. */
static void print_status(const SERVICE_STATUS_PROCESS *st)
{
    printf("%ls: %s", AIPC_SERVICE_NAME, state_name(st->dwCurrentState));
    if (st->dwProcessId)
        printf(" (pid %lu)", (unsigned long)st->dwProcessId);
    if (st->dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
        printf(" exit %lu: %s", (unsigned long)st->dwServiceSpecificExitCode,
               aipc__broker_exit_text(st->dwServiceSpecificExitCode));
    else if (st->dwWin32ExitCode)
        printf(" win32 exit %lu", (unsigned long)st->dwWin32ExitCode);
    printf("\n");
}

int aipc__service_start(void)
{
    SC_HANDLE scm;
    SC_HANDLE svc = open_service(&scm, SERVICE_START | SERVICE_QUERY_STATUS);
    if (!svc)
        return AIPC_BROKER_EXIT_SERVICE;
    int rc = 0;
    SERVICE_STATUS_PROCESS st;
    if (!StartServiceW(svc, 0, NULL)) {
        rc = fail("StartService");
    } else if (wait_state(svc, SERVICE_START_PENDING, 15000, &st) != 0 ||
               st.dwCurrentState != SERVICE_RUNNING) {
        print_status(&st);
        rc = st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR ? (int)st.dwServiceSpecificExitCode
                                                               : AIPC_BROKER_EXIT_SERVICE;
    } else {
        print_status(&st);
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

int aipc__service_stop(void)
{
    SC_HANDLE scm;
    SC_HANDLE svc = open_service(&scm, SERVICE_STOP | SERVICE_QUERY_STATUS);
    if (!svc)
        return AIPC_BROKER_EXIT_SERVICE;
    int rc = stop_service(svc, 0);
    if (rc == 0)
        printf("%ls: STOPPED\n", AIPC_SERVICE_NAME);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

int aipc__service_status(void)
{
    SC_HANDLE scm;
    SC_HANDLE svc = open_service(&scm, SERVICE_QUERY_STATUS);
    if (!svc)
        return AIPC_BROKER_EXIT_SERVICE;
    SERVICE_STATUS_PROCESS st;
    DWORD need;
    int rc = 0;
    if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof st, &need))
        print_status(&st);
    else
        rc = fail("QueryServiceStatusEx");
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}
