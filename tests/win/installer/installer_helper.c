/*
 * aipc-installer-helper.exe - the Windows side of the installer tests (tests/win/installer).
 * It asks the service control manager directly (sc.exe under Wine has no "qc"/"qfailure"), and
 * runs command lines verbatim (an NSIS uninstaller's "_?=DIR" must be the unquoted tail of the
 * command line, which `wine prog args...` cannot produce when DIR contains a space).
 *
 *   query NAME                    prints key=value lines: exists, state, pid, start, binpath,
 *                                 display, account, description, failure_reset, failure_actions,
 *                                 failure_flag (failure actions on non-crash failures)
 *   wait NAME STATE|GONE MS       polls (every 100 ms, at most MS) until the service is in
 *                                 STATE (RUNNING, STOPPED, ...) or no longer exists; exit 0/1
 *   run "COMMAND LINE"            CreateProcess with exactly that command line, waits, prints
 *                                 "exit code N" and exits with its exit code
 *   keepalive SECONDS             stays alive (a service under Wine runs only while an ordinary
 *                                 process of the prefix lives); the test ends it with wineserver -k
 *   service-sid NAME              prints the SID of the virtual account NT SERVICE\NAME, derived
 *                                 independently of the installers (SHA-1 of the upper-case name)
 *   message FILE ID TEXT          formats message ID of FILE's message table with TEXT as %1, as
 *                                 Event Viewer does for an event source's EventMessageFile;
 *                                 prints it (exit 1 when FILE has no such message)
 *   hold-dll PATH SECONDS         a client holding a DLL: LoadLibrary(PATH), prints "loaded", sleeps
 *   (no arguments, started by the service manager as the service's binary)
 *                                 a broker stand-in that lingers: RUNNING until asked to stop,
 *                                 then reports STOPPED and keeps running (its .exe in use) for
 *                                 3 s before it exits, as a process may after its service stopped.
 *                                 It appends "stopped UNIXTIME_MS" and "exiting UNIXTIME_MS" to
 *                                 <its own path>.linger.log.
 *   sdcheck KIND SDDL             checks a descriptor the installers apply, as built from its SDDL
 *                                 (ConvertStringSecurityDescriptorToSecurityDescriptor): owner,
 *                                 protection, and every ACE against what KIND (data, logs, config,
 *                                 logfile, install) must grant; a FAIL: line per failed check,
 *                                 a summary line, exit 0 when all pass. Wine synthesises file descriptors from Unix
 *                                 permissions, so the descriptor is checked in memory, not on disk.
 *
 * Links only against kernel32/advapi32 (static runtime): it runs in a prefix without AsyncIPC.
 */
#include <windows.h>
#include <sddl.h>
#include <wincrypt.h>
#include <stdarg.h>
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
        print_kv("account", cfg->lpServiceStartName);
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
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, d2, sizeof d2, &need))
        printf("failure_flag=%d\n", ((SERVICE_FAILURE_ACTIONS_FLAG *)d2)->fFailureActionsOnNonCrashFailures ? 1 : 0);
    else
        printf("failure_flag_query_error=%lu\n", GetLastError());
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
    /* The whole code: a Unix exit status keeps only its low 8 bits (3010 would read 194). */
    printf("exit code %lu\n", (unsigned long)code);
    return (int)code;
}

/* The virtual account's SID: S-1-5-80 followed by the SHA-1 of the upper-case service name in
 * UTF-16LE, read as five little-endian 32-bit sub-authorities (what `sc showsid` prints).
 * Writes it into out (cap characters); 0 or -1. */
static int service_sid(const wchar_t *name, wchar_t *out, size_t cap)
{
    wchar_t up[256];
    size_t n = wcslen(name);
    if (n == 0 || n >= 256)
        return -1;
    wcscpy(up, name);
    CharUpperBuffW(up, (DWORD)n);
    BYTE hash[20];
    DWORD hl = sizeof hash;
    HCRYPTPROV prov = 0;
    HCRYPTHASH h = 0;
    int ok = CryptAcquireContextW(&prov, NULL, NULL, PROV_RSA_FULL, CRYPT_VERIFYCONTEXT) &&
             CryptCreateHash(prov, CALG_SHA1, 0, 0, &h) &&
             CryptHashData(h, (const BYTE *)up, (DWORD)(n * sizeof(wchar_t)), 0) &&
             CryptGetHashParam(h, HP_HASHVAL, hash, &hl, 0) && hl == 20;
    if (h)
        CryptDestroyHash(h);
    if (prov)
        CryptReleaseContext(prov, 0);
    if (!ok)
        return -1;
    DWORD sub[5];
    memcpy(sub, hash, sizeof sub);   /* x86-64 is little-endian, like the hash's reading */
    _snwprintf(out, cap, L"S-1-5-80-%lu-%lu-%lu-%lu-%lu", sub[0], sub[1], sub[2], sub[3], sub[4]);
    out[cap - 1] = 0;
    return 0;
}

/* "service-sid NAME" */
static int cmd_service_sid(const wchar_t *name)
{
    wchar_t sid[128];
    if (service_sid(name, sid, 128) != 0) {
        fprintf(stderr, "cannot hash the service name: %lu\n", GetLastError());
        return 2;
    }
    printf("%ls\n", sid);
    return 0;
}

/* One ACE a descriptor must hold: whose, which rights, which inheritance flags. */
typedef struct want_ace {
    const wchar_t *who;     /* SDDL SID string or alias */
    const char *label;
    DWORD mask;
    BYTE flags;
} want_ace;

static int sd_checks, sd_failures;

/* Counts one check; prints it when it fails. */
static void sd_check(int ok, const char *fmt, ...)
{
    sd_checks++;
    if (ok)
        return;
    sd_failures++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* True when sid equals the SID that the SDDL SID string `who` names. */
static int sid_is(PSID sid, const wchar_t *who)
{
    PSID w = NULL;
    if (!ConvertStringSidToSidW(who, &w))
        return 0;
    int eq = EqualSid(sid, w);
    LocalFree(w);
    return eq;
}

/* "sdcheck KIND SDDL": the descriptor as built must match KIND's table exactly (same ACEs, no
 * others, in any order), with the owner and protection KIND requires. The tables are written
 * from the requirements, not copied from the installers' SDDL: rights are composed from the
 * Windows constants, the service's SID is derived here. */
static int cmd_sdcheck(const wchar_t *kind, const wchar_t *sddl)
{
    const DWORD RX = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE;
    const DWORD MODIFY = FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE;
    const BYTE TREE = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    wchar_t svc[128];
    if (service_sid(L"AsyncIPCBroker", svc, 128) != 0) {
        fprintf(stderr, "cannot derive the service SID\n");
        return 2;
    }
    want_ace want[3];
    int folder = 1;     /* folders: owner Administrators, protected; files: inherited ACEs */
    want[0] = (want_ace){ L"SY", "SYSTEM", FILE_ALL_ACCESS, TREE };
    want[1] = (want_ace){ L"BA", "Administrators", FILE_ALL_ACCESS, TREE };
    if (wcscmp(kind, L"data") == 0) {
        want[2] = (want_ace){ svc, "the service (read)", RX, TREE };
    } else if (wcscmp(kind, L"logs") == 0) {
        want[2] = (want_ace){ svc, "the service (modify)", MODIFY, TREE };
    } else if (wcscmp(kind, L"install") == 0) {
        want[2] = (want_ace){ L"BU", "Users (read and execute)", RX, TREE };
    } else if (wcscmp(kind, L"config") == 0 || wcscmp(kind, L"logfile") == 0) {
        folder = 0;
        int cfg = kind[0] == L'c';
        want[2] = (want_ace){ svc, cfg ? "the service (read)" : "the service (modify)",
                              cfg ? RX : MODIFY, 0 };
        for (int i = 0; i < 3; i++)
            want[i].flags = INHERITED_ACE;
    } else {
        fprintf(stderr, "unknown descriptor kind %ls\n", kind);
        return 2;
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL)) {
        sd_check(0, "%ls: the SDDL converts to a descriptor (error %lu)", kind, GetLastError());
        return 1;
    }
    sd_checks = sd_failures = 0;
    PSID owner = NULL;
    BOOL defaulted, present = FALSE;
    PACL dacl = NULL;
    SECURITY_DESCRIPTOR_CONTROL ctl = 0;
    DWORD rev;
    GetSecurityDescriptorOwner(sd, &owner, &defaulted);
    GetSecurityDescriptorControl(sd, &ctl, &rev);
    if (folder) {
        sd_check(owner && sid_is(owner, L"BA"), "%ls: owner is Administrators", kind);
        sd_check((ctl & SE_DACL_PROTECTED) != 0, "%ls: DACL is protected (inherits nothing)", kind);
    } else {
        sd_check(!(ctl & SE_DACL_PROTECTED), "%ls: DACL is not protected (it inherits)", kind);
    }
    sd_check(GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) && present && dacl,
             "%ls: has a DACL, not a NULL one", kind);
    if (!dacl) {
        LocalFree(sd);
        return 1;
    }
    sd_check(dacl->AceCount == 3, "%ls: exactly 3 ACEs (has %u)", kind, dacl->AceCount);
    int seen[3] = { 0, 0, 0 };
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h;
        if (!GetAce(dacl, i, (void **)&h)) {
            sd_check(0, "%ls: ACE %lu readable", kind, i);
            continue;
        }
        ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
        PSID sid = (PSID)&a->SidStart;
        wchar_t *sidtext = NULL;
        ConvertSidToStringSidW(sid, &sidtext);
        int matched = 0;
        for (int k = 0; k < 3; k++) {
            if (!sid_is(sid, want[k].who))
                continue;
            matched = 1;
            seen[k]++;
            sd_check(h->AceType == ACCESS_ALLOWED_ACE_TYPE, "%ls: %s: an allow ACE", kind,
                     want[k].label);
            sd_check(a->Mask == want[k].mask, "%ls: %s: rights 0x%lx (want 0x%lx)", kind,
                     want[k].label, a->Mask, want[k].mask);
            sd_check(h->AceFlags == want[k].flags, "%ls: %s: inheritance flags 0x%x (want 0x%x)",
                     kind, want[k].label, h->AceFlags, want[k].flags);
            if (k == 2)
                sd_check(!(a->Mask & (WRITE_DAC | WRITE_OWNER | FILE_DELETE_CHILD)),
                         "%ls: %s cannot change permissions or owner", kind, want[k].label);
        }
        sd_check(matched, "%ls: ACE for %ls is expected (no one else gets anything)", kind,
                 sidtext ? sidtext : L"?");
        if (sidtext)
            LocalFree(sidtext);
    }
    for (int k = 0; k < 3; k++)
        sd_check(seen[k] == 1, "%ls: one ACE for %s (found %d)", kind, want[k].label, seen[k]);
    LocalFree(sd);
    printf("sdcheck %ls: %d checks, %d failures\n", kind, sd_checks, sd_failures);
    return sd_failures ? 1 : 0;
}

/* ---- the lingering broker stand-in (no arguments, started by the service manager) ---------- */
static SERVICE_STATUS_HANDLE g_linger_status;
static HANDLE g_linger_stop;

static DWORD WINAPI linger_ctrl(DWORD code, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type; (void)data; (void)ctx;
    if (code == SERVICE_CONTROL_STOP || code == SERVICE_CONTROL_SHUTDOWN)
        SetEvent(g_linger_stop);
    return NO_ERROR;
}

/* Milliseconds since 1970 (comparable with file times seen from Linux). */
static unsigned long long unix_ms(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    ULONGLONG t = ((ULONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (t - 116444736000000000ULL) / 10000ULL;
}

static void linger_log(const char *what)
{
    wchar_t path[MAX_PATH + 32];
    DWORD n = GetModuleFileNameW(NULL, path, MAX_PATH);
    if (!n || n >= MAX_PATH)
        return;
    wcscat(path, L".linger.log");
    FILE *f = _wfopen(path, L"a");
    if (f) {
        fprintf(f, "%s %llu\n", what, unix_ms());
        fclose(f);
    }
}

static void WINAPI linger_main(DWORD argc, LPWSTR *argv)
{
    (void)argc; (void)argv;
    SERVICE_STATUS st = { SERVICE_WIN32_OWN_PROCESS, SERVICE_RUNNING, SERVICE_ACCEPT_STOP, 0, 0, 0, 0 };
    g_linger_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_linger_status = RegisterServiceCtrlHandlerExW(L"", linger_ctrl, NULL);
    if (!g_linger_status || !g_linger_stop)
        return;
    SetServiceStatus(g_linger_status, &st);
    linger_log("running");
    WaitForSingleObject(g_linger_stop, INFINITE);
    st.dwCurrentState = SERVICE_STOPPED;
    st.dwControlsAccepted = 0;
    linger_log("stopped");
    SetServiceStatus(g_linger_status, &st);
}

/* Dispatches the sub-commands listed at the top of this file. */
int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 1) {
        SERVICE_TABLE_ENTRYW table[] = { { (LPWSTR)L"", linger_main }, { NULL, NULL } };
        if (StartServiceCtrlDispatcherW(table)) {
            Sleep(3000);    /* STOPPED reported, the process (and its .exe) still there */
            linger_log("exiting");
            return 0;
        }
    }
    if (argc == 5 && wcscmp(argv[1], L"message") == 0) {
        HMODULE m = LoadLibraryExW(argv[2], NULL, LOAD_LIBRARY_AS_DATAFILE);
        wchar_t buf[2048];
        DWORD_PTR args[1] = { (DWORD_PTR)argv[4] };
        DWORD n = m ? FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY,
                                     m, (DWORD)wcstoul(argv[3], NULL, 10), 0, buf, 2048,
                                     (va_list *)args)
                    : 0;
        if (!n) {
            fprintf(stderr, "no message %ls in %ls: error %lu\n", argv[3], argv[2], GetLastError());
            return 1;
        }
        while (n && (buf[n - 1] == L'\n' || buf[n - 1] == L'\r'))
            buf[--n] = 0;
        printf("%ls\n", buf);
        return 0;
    }
    if (argc == 4 && wcscmp(argv[1], L"hold-dll") == 0) {
        HMODULE m = LoadLibraryW(argv[2]);
        if (!m) {
            fprintf(stderr, "LoadLibrary(%ls) failed: %lu\n", argv[2], GetLastError());
            return 1;
        }
        printf("loaded %ls\n", argv[2]);
        Sleep((DWORD)wcstoul(argv[3], NULL, 10) * 1000u);
        return 0;
    }
    if (argc == 3 && wcscmp(argv[1], L"run") == 0) {
        return cmd_run(argv[2]);
    }
    if (argc == 3 && wcscmp(argv[1], L"keepalive") == 0) {
        Sleep((DWORD)wcstoul(argv[2], NULL, 10) * 1000u);
        return 0;
    }
    if (argc == 3 && wcscmp(argv[1], L"service-sid") == 0)
        return cmd_service_sid(argv[2]);
    if (argc == 4 && wcscmp(argv[1], L"sdcheck") == 0)
        return cmd_sdcheck(argv[2], argv[3]);
    int is_query = argc == 3 && wcscmp(argv[1], L"query") == 0;
    int is_wait = argc == 5 && wcscmp(argv[1], L"wait") == 0;
    if (!is_query && !is_wait) {
        fprintf(stderr, "usage: aipc-installer-helper query NAME | wait NAME STATE|GONE MS |"
                        " run \"CMDLINE\" | keepalive SECONDS | service-sid NAME |"
                        " sdcheck KIND SDDL | hold-dll PATH SECONDS | message FILE ID TEXT\n");
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
