/* aipc_testutil.c - processes, names, bounded waits, handle counts and payload patterns for
 * the Windows suites (see aipc_testutil.h). */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "aipc_testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- process registry: what a failed test left running is killed by its teardown ---------- */
#define MAX_PROCS 64
static SRWLOCK g_procs_lock = SRWLOCK_INIT;
static aipc_proc *g_procs[MAX_PROCS];
static HANDLE g_job;   /* kill-on-close job: children die with the suite even if it crashes */

/* Remembers p so aipc_proc_kill_all can find it. */
static void procs_add(aipc_proc *p)
{
    AcquireSRWLockExclusive(&g_procs_lock);
    for (int i = 0; i < MAX_PROCS; i++)
        if (!g_procs[i]) {
            g_procs[i] = p;
            break;
        }
    ReleaseSRWLockExclusive(&g_procs_lock);
}

/* Forgets p (closed by its owner). */
static void procs_remove(aipc_proc *p)
{
    AcquireSRWLockExclusive(&g_procs_lock);
    for (int i = 0; i < MAX_PROCS; i++)
        if (g_procs[i] == p)
            g_procs[i] = NULL;
    ReleaseSRWLockExclusive(&g_procs_lock);
}

/* One job object for every child: if the suite dies, the children go with it. Best effort
 * (the registry and the ctest timeout cover systems where jobs are not available). */
static void ensure_job(void)
{
    AcquireSRWLockExclusive(&g_procs_lock);
    if (!g_job) {
        HANDLE j = CreateJobObjectW(NULL, NULL);
        if (j) {
            JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
            memset(&li, 0, sizeof li);
            li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            SetInformationJobObject(j, JobObjectExtendedLimitInformation, &li, sizeof li);
            g_job = j;
        }
    }
    ReleaseSRWLockExclusive(&g_procs_lock);
}

void aipc_test_job_assign(HANDLE process)
{
    ensure_job();
    if (g_job)
        AssignProcessToJobObject(g_job, process);
}

/* See aipc_testutil.h: a CreateProcessA that rides out Wine's transient start failures. */
BOOL aipc_test_create_process(const char *app, char *cmd, BOOL inherit, DWORD flags,
                              STARTUPINFOA *si, PROCESS_INFORMATION *pi)
{
    for (int attempt = 0;; attempt++) {
        if (CreateProcessA(app, cmd, NULL, NULL, inherit, flags, NULL, NULL, si, pi))
            return TRUE;
        DWORD e = GetLastError();
        if (e != ERROR_INTERNAL_ERROR || attempt >= 4)
            return FALSE;
        fprintf(stderr, "CreateProcess(%s): transient error %lu, retrying\n", app, (unsigned long)e);
        Sleep(200);
        SetLastError(e);
    }
}

int aipc_proc_spawn(aipc_proc *p, const char *exe, const char *args_fmt, ...)
{
    memset(p, 0, sizeof *p);
    char dir[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, dir, MAX_PATH);
    if (n == 0 || n >= MAX_PATH)
        return AIPC_ESYS;
    char *slash = strrchr(dir, '\\');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;

    char args[2048];
    va_list ap;
    va_start(ap, args_fmt);
    int a = vsnprintf(args, sizeof args, args_fmt ? args_fmt : "", ap);
    va_end(ap);
    if (a < 0 || (size_t)a >= sizeof args)
        return AIPC_EINVAL;

    char cmd[MAX_PATH * 2 + 2100];
    char app[MAX_PATH * 2];
    snprintf(app, sizeof app, "%s%s", dir, exe);
    snprintf(cmd, sizeof cmd, "\"%s\" %s", app, args);

    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!aipc_test_create_process(app, cmd, FALSE, 0, &si, &pi)) {
        fprintf(stderr, "aipc_proc_spawn: CreateProcess(%s) failed: %lu\n", app,
                (unsigned long)GetLastError());
        return AIPC_ESYS;
    }
    aipc_test_job_assign(pi.hProcess);
    p->process = pi.hProcess;
    p->thread = pi.hThread;
    p->pid = pi.dwProcessId;
    procs_add(p);
    return AIPC_OK;
}

int aipc_proc_wait(aipc_proc *p, DWORD ms)
{
    if (!p->process)
        return AIPC_ECLOSED;
    if (WaitForSingleObject(p->process, ms) != WAIT_OBJECT_0)
        return AIPC_ETIMEDOUT;
    DWORD code = 0;
    GetExitCodeProcess(p->process, &code);
    p->exit_code = code;
    return AIPC_OK;
}

void aipc_proc_kill(aipc_proc *p)
{
    if (!p->process)
        return;
    TerminateProcess(p->process, 99);
    if (WaitForSingleObject(p->process, aipc_test_wait_ms()) == WAIT_OBJECT_0) {
        DWORD code = 0;
        GetExitCodeProcess(p->process, &code);
        p->exit_code = code;
    }
}

void aipc_proc_close(aipc_proc *p)
{
    procs_remove(p);
    if (p->thread)
        CloseHandle(p->thread);
    if (p->process)
        CloseHandle(p->process);
    p->thread = p->process = NULL;
}

void aipc_proc_kill_all(void)
{
    for (;;) {
        aipc_proc *p = NULL;
        AcquireSRWLockExclusive(&g_procs_lock);
        for (int i = 0; i < MAX_PROCS && !p; i++)
            if (g_procs[i]) {
                p = g_procs[i];
                g_procs[i] = NULL;
            }
        ReleaseSRWLockExclusive(&g_procs_lock);
        if (!p)
            return;
        if (p->process && WaitForSingleObject(p->process, 0) != WAIT_OBJECT_0)
            aipc_proc_kill(p);
        aipc_proc_close(p);
    }
}

/* ---- names, paths, time ------------------------------------------------------------------- */
static volatile LONG g_name_counter;

/* The pid and a counter make names unique within one Wine prefix; two prefixes hand out the
 * same pids (and start their counters alike), so a clock part taken once per process keeps
 * two runs side by side from sharing a name (two soaks once sampled the same broker). */
void aipc_test_name(char *out, size_t cap, const char *tag)
{
    static volatile LONG64 run_part;
    if (run_part == 0) {
        LARGE_INTEGER t;
        QueryPerformanceCounter(&t);
        uint64_t v = (uint64_t)t.QuadPart ^ ((uint64_t)t.QuadPart >> 32) ^ GetTickCount64();
        InterlockedCompareExchange64(&run_part, (LONG64)(v | 1u), 0);
    }
    LONG n = InterlockedIncrement(&g_name_counter);
    snprintf(out, cap, "aipc-test-%s-%lu-%ld-%08lx", tag, (unsigned long)GetCurrentProcessId(),
             (long)n, (unsigned long)(uint32_t)run_part);
}

void aipc_test_wname(wchar_t *out, size_t cap, const char *narrow)
{
    if (MultiByteToWideChar(CP_UTF8, 0, narrow, -1, out, (int)cap) <= 0 && cap > 0)
        out[0] = 0;
}

void aipc_test_temp_path(char *out, size_t cap, const char *tag, const char *ext)
{
    char dir[MAX_PATH], name[128];
    DWORD n = GetTempPathA(MAX_PATH, dir);
    if (n == 0 || n >= MAX_PATH)
        strcpy(dir, ".\\");
    aipc_test_name(name, sizeof name, tag);
    /* Process ids repeat between runs (Wine starts again from small numbers), so a clock value
     * keeps a new run from appending to an old run's file. */
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    snprintf(out, cap, "%s%s-%llx%s", dir, name, (unsigned long long)t.QuadPart, ext ? ext : "");
}

char *aipc_test_read_file(const char *path, size_t *len)
{
    HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    LARGE_INTEGER size;
    char *buf = NULL;
    if (GetFileSizeEx(h, &size) && size.QuadPart < (1LL << 30)) {
        buf = malloc((size_t)size.QuadPart + 1);
        DWORD got = 0;
        if (buf && (size.QuadPart == 0 || ReadFile(h, buf, (DWORD)size.QuadPart, &got, NULL))) {
            buf[got] = 0;
            if (len)
                *len = got;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    CloseHandle(h);
    return buf;
}

uint64_t aipc_test_now_ms(void)
{
    return GetTickCount64();
}

PipeImplType aipc_test_bus_engine(void)
{
    char v[16];
    DWORD n = GetEnvironmentVariableA("AIPC_TEST_BUS_ENGINE", v, sizeof v);
    return n > 0 && n < sizeof v && _stricmp(v, "iocp") == 0 ? PIPE_OVERLAPPED : PIPE_ASYNC;
}

/* ---- waits -------------------------------------------------------------------------------- */
DWORD aipc_test_wait_ms(void)
{
    static volatile LONG cached;
    LONG v = cached;
    if (v == 0) {
        char buf[16];
        DWORD n = GetEnvironmentVariableA("AIPC_TEST_WAIT_MS", buf, sizeof buf);
        long ms = (n > 0 && n < sizeof buf) ? strtol(buf, NULL, 10) : 0;
        v = ms > 0 ? (LONG)ms : (LONG)AIPC_TEST_WAIT_MS;
        InterlockedExchange(&cached, v);
    }
    return (DWORD)v;
}

int aipc_test_wait(HANDLE h, DWORD ms)
{
    return WaitForSingleObject(h, ms) == WAIT_OBJECT_0;
}

typedef struct bounded_call {
    void (*fn)(void *);
    void *arg;
} bounded_call;

/* Thread body for aipc_test_call_bounded. The record is heap-owned by this thread, so a
 * caller that gave up waiting leaves nothing dangling. */
static DWORD WINAPI bounded_thread(void *param)
{
    bounded_call c = *(bounded_call *)param;
    free(param);
    c.fn(c.arg);
    return 0;
}

int aipc_test_call_bounded(void (*fn)(void *), void *arg, DWORD ms)
{
    bounded_call *c = malloc(sizeof *c);
    if (!c)
        return 0;
    c->fn = fn;
    c->arg = arg;
    HANDLE t = CreateThread(NULL, 0, bounded_thread, c, 0, NULL);
    if (!t) {
        free(c);
        return 0;
    }
    int done = WaitForSingleObject(t, ms) == WAIT_OBJECT_0;
    CloseHandle(t);
    return done;
}

/* ---- handles ------------------------------------------------------------------------------ */
/* SystemExtendedHandleInformation (class 64) of NtQuerySystemInformation: every handle of
 * every process, with its owner's pid. */
typedef LONG(WINAPI *nt_query_system_information_fn)(ULONG, PVOID, ULONG, PULONG);
typedef struct handle_entry_ex {
    PVOID object;
    ULONG_PTR pid;
    ULONG_PTR handle;
    ULONG access;
    USHORT creator_back_trace_index;
    USHORT object_type_index;
    ULONG attributes;
    ULONG reserved;
} handle_entry_ex;
typedef struct handle_info_ex {
    ULONG_PTR count;
    ULONG_PTR reserved;
    handle_entry_ex handles[1];
} handle_info_ex;

/* Counts this process's handles in the system handle table; 0 if that is unavailable. */
static DWORD handle_count_from_system_table(void)
{
    nt_query_system_information_fn query = (nt_query_system_information_fn)(void (*)(void))
        GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtQuerySystemInformation");
    if (!query)
        return 0;
    ULONG size = 1u << 16;
    for (int tries = 0; tries < 16; tries++) {
        handle_info_ex *info = malloc(size);
        if (!info)
            return 0;
        ULONG needed = 0;
        LONG status = query(64, info, size, &needed);
        if (status == (LONG)0xC0000004L) {   /* STATUS_INFO_LENGTH_MISMATCH */
            free(info);
            size = needed > size ? needed + 4096 : size * 2;
            continue;
        }
        DWORD n = 0;
        if (status == 0) {
            ULONG_PTR me = GetCurrentProcessId();
            for (ULONG_PTR i = 0; i < info->count; i++)
                if (info->handles[i].pid == me)
                    n++;
        }
        free(info);
        return n;
    }
    return 0;
}

/* GetProcessHandleCount; Wine 8 answers 0 there, so the system handle table (which Wine keeps
 * accurately) is counted instead. */
DWORD aipc_test_handle_count(void)
{
    DWORD n = 0;
    if (!GetProcessHandleCount(GetCurrentProcess(), &n) || n == 0)
        n = handle_count_from_system_table();
    return n;
}

/* ---- payload patterns --------------------------------------------------------------------- */
/* Byte i of the pattern for `seed`: zero every 7th byte, otherwise a mix of seed and index. */
static uint8_t pattern_byte(size_t i, uint32_t seed)
{
    if (i % 7 == 3)
        return 0;
    uint32_t x = (uint32_t)i * 2654435761u ^ (seed * 40503u + (uint32_t)(i >> 12));
    return (uint8_t)(x >> 13 ^ x);
}

void aipc_pattern_fill(uint8_t *buf, size_t n, uint32_t seed)
{
    size_t i = 0;
    if (n >= 4) {
        buf[0] = (uint8_t)seed;
        buf[1] = (uint8_t)(seed >> 8);
        buf[2] = (uint8_t)(seed >> 16);
        buf[3] = (uint8_t)(seed >> 24);
        i = 4;
    }
    for (; i < n; i++)
        buf[i] = pattern_byte(i, seed);
}

long long aipc_pattern_check(const uint8_t *buf, size_t n, uint32_t seed)
{
    size_t i = 0;
    if (n >= 4) {
        uint32_t s = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                     (uint32_t)buf[3] << 24;
        if (s != seed)
            return 0;
        i = 4;
    }
    for (; i < n; i++)
        if (buf[i] != pattern_byte(i, seed))
            return (long long)i;
    return -1;
}
