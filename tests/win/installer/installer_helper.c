/*
 * aipc-installer-helper.exe - the Windows side of the installer tests (tests/win/installer).
 * It asks the service control manager directly (sc.exe under Wine has no "qc"/"qfailure"), and
 * runs command lines verbatim (an NSIS uninstaller's "_?=DIR" must be the unquoted tail of the
 * command line, which `wine prog args...` cannot produce when DIR contains a space).
 *
 *   query NAME                    prints key=value lines: exists, state, pid, start, binpath,
 *                                 display, description, failure_reset, failure_actions
 *   wait NAME STATE|GONE MS       polls (every 100 ms, at most MS) until the service is in
 *                                 STATE (RUNNING, STOPPED, ...) or no longer exists; exit 0/1
 *   run "COMMAND LINE"            CreateProcess with exactly that command line, waits, and exits
 *                                 with its exit code
 *   keepalive SECONDS             stays alive (a service under Wine runs only while an ordinary
 *                                 process of the prefix lives); the test ends it with wineserver -k
 *
 * Links only against kernel32/advapi32 (static runtime): it runs in a prefix without AsyncIPC.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Text for a SERVICE_* state, as sc.exe prints it. */
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

/* Text for a start type, as sc.exe qc prints it (without the number). */
static const char *start_name(DWORD t)
{
    switch (t) {
    case SERVICE_BOOT_START: return "BOOT";
    case SERVICE_SYSTEM_START: return "SYSTEM";
    case SERVICE_AUTO_START: return "AUTO";
    case SERVICE_DEMAND_START: return "DEMAND";
    case SERVICE_DISABLED: return "DISABLED";
    default: return "UNKNOWN";
    }
}

/* Prints a wide string as UTF-8 (the test driver greps these lines). */
static void print_kv(const char *key, const wchar_t *value)
{
    char buf[4096];
    int n = WideCharToMultiByte(CP_UTF8, 0, value ? value : L"", -1, buf, sizeof buf, NULL, NULL);
    printf("%s=%s\n", key, n > 0 ? buf : "");
}

/* Opens a service for querying; NULL (and *missing set) when it does not exist. */
static SC_HANDLE open_service(SC_HANDLE scm, const wchar_t *name, int *missing)
{
    SC_HANDLE svc = OpenServiceW(scm, name, SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS);
    *missing = svc == NULL && GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST;
    return svc;
}

/* "query NAME": everything the tests assert about a registered service. */
static int cmd_query(SC_HANDLE scm, const wchar_t *name)
{
    int missing;
    SC_HANDLE svc = open_service(scm, name, &missing);
    if (!svc) {
        if (missing) {
            printf("exists=0\n");
            return 0;
        }
        fprintf(stderr, "OpenService failed: %lu\n", GetLastError());
        return 2;
    }
    printf("exists=1\n");
    SERVICE_STATUS_PROCESS ssp;
    DWORD need = 0;
    if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&ssp, sizeof ssp, &need)) {
        printf("state=%s\npid=%lu\n", state_name(ssp.dwCurrentState), ssp.dwProcessId);
    }
    static BYTE cfgbuf[8192];
    QUERY_SERVICE_CONFIGW *cfg = (QUERY_SERVICE_CONFIGW *)cfgbuf;
    if (QueryServiceConfigW(svc, cfg, sizeof cfgbuf, &need)) {
        printf("start=%s\n", start_name(cfg->dwStartType));
        print_kv("binpath", cfg->lpBinaryPathName);
        print_kv("display", cfg->lpDisplayName);
    }
    static BYTE d2[8192];
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, d2, sizeof d2, &need)) {
        print_kv("description", ((SERVICE_DESCRIPTIONW *)d2)->lpDescription);
    }
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, d2, sizeof d2, &need)) {
        SERVICE_FAILURE_ACTIONSW *fa = (SERVICE_FAILURE_ACTIONSW *)d2;
        printf("failure_reset=%lu\nfailure_actions=", fa->dwResetPeriod);
        for (DWORD i = 0; i < fa->cActions; i++) {
            const SC_ACTION *a = &fa->lpsaActions[i];
            const char *t = a->Type == SC_ACTION_RESTART ? "restart"
                          : a->Type == SC_ACTION_REBOOT  ? "reboot"
                          : a->Type == SC_ACTION_RUN_COMMAND ? "run" : "none";
            printf("%s%s/%lu", i ? "/" : "", t, a->Delay);
        }
        printf("\n");
    } else {
        /* Wine's SCM keeps no failure actions (sc failure "succeeds" and stores nothing). */
        printf("failure_query_error=%lu\n", GetLastError());
    }
    CloseServiceHandle(svc);
    return 0;
}

/* "wait NAME STATE|GONE MS": bounded poll on the SCM's view of the service. */
static int cmd_wait(SC_HANDLE scm, const wchar_t *name, const wchar_t *want, DWORD ms)
{
    char wanted[64];
    WideCharToMultiByte(CP_UTF8, 0, want, -1, wanted, sizeof wanted, NULL, NULL);
    ULONGLONG deadline = GetTickCount64() + ms;
    const char *last = "none";
    for (;;) {
        int missing;
        SC_HANDLE svc = open_service(scm, name, &missing);
        if (!svc) {
            last = missing ? "GONE" : "unqueryable";
        } else {
            SERVICE_STATUS st;
            if (QueryServiceStatus(svc, &st)) {
                last = state_name(st.dwCurrentState);
            }
            CloseServiceHandle(svc);
        }
        if (strcmp(last, wanted) == 0) {
            return 0;
        }
        if (GetTickCount64() >= deadline) {
            fprintf(stderr, "service %ls: wanted %s, still %s after %lu ms\n", name, wanted, last, ms);
            return 1;
        }
        Sleep(100);
    }
}

/* "run CMDLINE": starts exactly CMDLINE and returns its exit code. */
static int cmd_run(const wchar_t *cmdline)
{
    wchar_t *line = _wcsdup(cmdline);
    STARTUPINFOW si = { sizeof si };
    PROCESS_INFORMATION pi;
    if (!line || !CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "CreateProcess(%ls) failed: %lu\n", cmdline, GetLastError());
        free(line);
        return 125;
    }
    free(line);
    DWORD code = 126;
    if (WaitForSingleObject(pi.hProcess, 300000) == WAIT_OBJECT_0) {
        GetExitCodeProcess(pi.hProcess, &code);
    } else {
        fprintf(stderr, "%ls did not finish within 300 s\n", cmdline);
        TerminateProcess(pi.hProcess, 126);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return (int)code;
}

/* Dispatches the sub-commands listed at the top of this file. */
int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && wcscmp(argv[1], L"run") == 0) {
        return cmd_run(argv[2]);
    }
    if (argc == 3 && wcscmp(argv[1], L"keepalive") == 0) {
        Sleep((DWORD)wcstoul(argv[2], NULL, 10) * 1000u);
        return 0;
    }
    int is_query = argc == 3 && wcscmp(argv[1], L"query") == 0;
    int is_wait = argc == 5 && wcscmp(argv[1], L"wait") == 0;
    if (!is_query && !is_wait) {
        fprintf(stderr, "usage: aipc-installer-helper query NAME | wait NAME STATE|GONE MS |"
                        " run \"CMDLINE\" | keepalive SECONDS\n");
        return 2;
    }
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!scm) {
        fprintf(stderr, "OpenSCManager failed: %lu\n", GetLastError());
        return 2;
    }
    int rc = is_query ? cmd_query(scm, argv[2])
                      : cmd_wait(scm, argv[2], argv[3], (DWORD)wcstoul(argv[4], NULL, 10));
    CloseServiceHandle(scm);
    return rc;
}
