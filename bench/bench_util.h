/*
 * bench_util.h - shared helpers of the Windows benchmark programs (bench_raw, bench_p2p,
 * bench_broker): a monotonic clock, repetition statistics, the one-line JSON result format
 * that tools/bench.sh collects, and spawning a copy of the current program as the peer process.
 * Header-only (static functions): every bench program is one translation unit plus this.
 */
#ifndef AIPC_BENCH_UTIL_H
#define AIPC_BENCH_UTIL_H

#include <windows.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define BENCH_MAX_REPS 32

/* Seconds on the performance counter (monotonic). */
static inline double bench_now(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER t;
    if (!freq.QuadPart)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart / (double)freq.QuadPart;
}

/* How many items make one repetition last about target_s, given the seconds per item measured
 * by a warm-up run; clamped to [lo, hi] so a rep is never trivially short or unbounded. */
static inline uint32_t bench_calibrate(double per_item_s, double target_s, uint32_t lo, uint32_t hi)
{
    double n = per_item_s > 0 ? target_s / per_item_s : hi;
    if (n < lo)
        return lo;
    if (n > hi)
        return hi;
    return (uint32_t)n;
}

/* Sorting helper for the statistics. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints one result line: RESULT {"name":..,"unit":..,"median":..,"min":..,"max":..,"reps":n}
 * (median of the repetitions; tools/bench.sh parses every line starting with RESULT). */
static inline void bench_report(const char *name, const char *unit, const double *v, int n,
                         const char *extra_fmt, ...)
{
    double s[BENCH_MAX_REPS];
    if (n > BENCH_MAX_REPS)
        n = BENCH_MAX_REPS;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    char extra[512] = "";
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(extra, sizeof extra, extra_fmt, ap);
        va_end(ap);
    }
    printf("RESULT {\"name\":\"%s\",\"unit\":\"%s\",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,"
           "\"reps\":%d%s%s}\n", name, unit, med, s[0], s[n - 1], n, extra[0] ? "," : "", extra);
    fflush(stdout);
}

/* Child processes registered here (the broker a bench starts): ended by bench_fail, and by the
 * kill-on-close job when this program ends any other way (a crash, a kill), so no run leaves
 * one behind (an orphaned broker kept tools/wine-run waiting). */
#define BENCH_MAX_CHILDREN 8
static HANDLE bench_children[BENCH_MAX_CHILDREN];

static inline void bench_own_child(HANDLE proc)
{
    static HANDLE job;
    if (!job) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
        memset(&li, 0, sizeof li);
        li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        job = CreateJobObjectW(NULL, NULL);
        if (job && !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li)) {
            CloseHandle(job);
            job = NULL;
        }
    }
    if (job)
        AssignProcessToJobObject(job, proc);   /* best effort: bench_fail ends it anyway */
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++)
        if (!bench_children[i]) {
            bench_children[i] = proc;
            return;
        }
}

/* The child has been waited for (its handle is about to be closed): no longer ours to end. */
static inline void bench_disown_child(HANDLE proc)
{
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++)
        if (bench_children[i] == proc)
            bench_children[i] = NULL;
}

/* Fatal measurement failure: message on stderr, the children ended, exit code 2
 * (tools/bench.sh reports it). */
static inline void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++)
        if (bench_children[i]) {
            TerminateProcess(bench_children[i], 2);
            WaitForSingleObject(bench_children[i], 5000);
        }
    ExitProcess(2);
}

/* Starts this same program with the given argument tail (wide, already quoted as needed).
 * Returns the process handle; fails the bench if it cannot start. */
static inline HANDLE bench_spawn_self(const wchar_t *args)
{
    wchar_t exe[MAX_PATH];
    if (!GetModuleFileNameW(NULL, exe, MAX_PATH))
        bench_fail("GetModuleFileName: %lu", GetLastError());
    size_t n = wcslen(exe) + wcslen(args) + 8;
    wchar_t *cmd = malloc(n * sizeof *cmd);
    if (!cmd)
        bench_fail("out of memory");
    _snwprintf(cmd, n, L"\"%ls\" %ls", exe, args);
    cmd[n - 1] = 0;
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        bench_fail("CreateProcess(%ls): %lu", cmd, GetLastError());
    free(cmd);
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

/* Waits (bounded) for a child to exit; returns its exit code, or kills it and fails. */
static inline DWORD bench_wait_child(HANDLE h, DWORD ms, const char *what)
{
    if (WaitForSingleObject(h, ms) != WAIT_OBJECT_0) {
        TerminateProcess(h, 3);
        bench_fail("%s did not exit within %lu ms", what, (unsigned long)ms);
    }
    DWORD code = 1;
    GetExitCodeProcess(h, &code);
    bench_disown_child(h);
    CloseHandle(h);
    return code;
}

/* A pipe name unique to this run: \\.\pipe\aipc-bench-<tag>-<pid>-<tick>. */
static inline void bench_pipe_name(wchar_t *out, size_t n, const wchar_t *tag)
{
    _snwprintf(out, n, L"\\\\.\\pipe\\aipc-bench-%ls-%lu-%llu", tag,
               (unsigned long)GetCurrentProcessId(), (unsigned long long)GetTickCount64());
    out[n - 1] = 0;
}

/* Reads exactly n bytes from a blocking handle; 0 on success, -1 when the pipe broke. */
static inline int bench_read_full(HANDLE h, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        DWORD got = 0, want = n > (1u << 30) ? (1u << 30) : (DWORD)n;
        if (!ReadFile(h, p, want, &got, NULL) && GetLastError() != ERROR_MORE_DATA)
            return -1;
        if (got == 0)
            continue;
        p += got;
        n -= got;
    }
    return 0;
}

/* Writes exactly n bytes with blocking WriteFile calls; 0 on success, -1 when the pipe broke. */
static inline int bench_write_full(HANDLE h, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        DWORD put = 0, want = n > (1u << 30) ? (1u << 30) : (DWORD)n;
        if (!WriteFile(h, p, want, &put, NULL))
            return -1;
        p += put;
        n -= put;
    }
    return 0;
}

/* Opens a client end of a pipe, waiting (bounded) for the server to create it. */
static inline HANDLE bench_open_pipe(const wchar_t *name, DWORD flags, DWORD timeout_ms)
{
    ULONGLONG until = GetTickCount64() + timeout_ms;
    for (;;) {
        HANDLE h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               flags | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        DWORD e = GetLastError();
        if (GetTickCount64() >= until)
            bench_fail("cannot open pipe %ls: error %lu", name, (unsigned long)e);
        if (e == ERROR_PIPE_BUSY)
            WaitNamedPipeW(name, 100);
        else
            Sleep(5);
    }
}

#endif
