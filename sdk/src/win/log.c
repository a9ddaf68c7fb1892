/*
 * log.c - the SDK logger (InitEasyLog, aipc_log, aipc_log_set_level, aipc_log_open_file).
 *
 * Line format (UTF-8, CRLF):  "2026-11-25 08:59:01.123 INFO  pid=1234 tid=5678 message"
 *
 * Destinations (the last call wins):
 *   - InitEasyLog(name): %LOCALAPPDATA%\AsyncIPC\logs\AsyncIPC_<name>_<yyyymmdd>.log; the date is
 *     checked on every line and a new file is opened when the local date changes (midnight).
 *   - aipc_log_open_file(path): exactly that file, never rolled; NULL closes it.
 *   - neither: lines are dropped, except ERROR lines, which go to stderr when the environment
 *     variable AIPC_LOG_STDERR=1.
 * Files are opened for appending (FILE_APPEND_DATA, shared read/write/delete so several
 * processes and log viewers can use the same file) and every line is one unbuffered WriteFile,
 * so nothing is lost if the process dies.
 *
 * Level: AIPC_LOG_INFO by default. The environment variable AIPC_LOG_LEVEL
 * (error|warn|info|debug|trace, or 0..4) sets the initial level, read once on first use;
 * aipc_log_set_level() changes it afterwards.
 *
 * Threads: every function may be called from any thread at any time; one SRW lock serialises
 * the destination and the writes. The message is formatted before taking the lock.
 */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1   /* C99 printf (%zu, %lld, %llu) regardless of the CRT */
#endif
#include <windows.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "errors.h"

#define LOG_PREFIX_ROOM 96      /* bytes reserved in front of the message for the prefix */
#define LOG_STACK_MSG   1024    /* messages up to this size are formatted on the stack */

enum { DEST_NONE = 0, DEST_EASY = 1, DEST_FILE = 2 };

static SRWLOCK g_lock = SRWLOCK_INIT;
static HANDLE g_file = INVALID_HANDLE_VALUE;   /* guarded by g_lock */
static int g_dest = DEST_NONE;                 /* guarded by g_lock */
static wchar_t *g_easy_name;                   /* sanitised process name, for roll-over */
static WORD g_year, g_month, g_day;            /* date of the open easy-log file */
static volatile LONG g_level = -1;             /* -1: not yet initialised from the env */
static volatile LONG g_stderr_errors = -1;     /* AIPC_LOG_STDERR=1, read once */

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};

/* Reads AIPC_LOG_LEVEL once so that programs can be made verbose without recompiling. */
static LONG level_from_env(void)
{
    char v[16];
    DWORD n = GetEnvironmentVariableA("AIPC_LOG_LEVEL", v, sizeof v);
    if (n == 0 || n >= sizeof v)
        return AIPC_LOG_INFO;
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++)
        if (_stricmp(v, names[i]) == 0)
            return i;
    if (_stricmp(v, "warning") == 0)
        return AIPC_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '4' && v[1] == 0)
        return v[0] - '0';
    return AIPC_LOG_INFO;
}

/* The current level, initialising it from the environment on first use (benign race: every
 * thread computes the same value). */
static LONG current_level(void)
{
    LONG l = g_level;
    if (l < 0) {
        LONG env = level_from_env();
        InterlockedCompareExchange(&g_level, env, -1);
        l = g_level;
    }
    return l;
}

/* Whether ERROR lines go to stderr while no log file is open (AIPC_LOG_STDERR=1). */
static int stderr_errors_enabled(void)
{
    LONG v = g_stderr_errors;
    if (v < 0) {
        char buf[8];
        DWORD n = GetEnvironmentVariableA("AIPC_LOG_STDERR", buf, sizeof buf);
        v = (n == 1 && buf[0] == '1') ? 1 : 0;
        InterlockedExchange(&g_stderr_errors, v);
    }
    return (int)v;
}

void aipc_log_set_level(aipc_log_level level)
{
    LONG l = (LONG)level;
    if (l < AIPC_LOG_ERROR)
        l = AIPC_LOG_ERROR;
    if (l > AIPC_LOG_TRACE)
        l = AIPC_LOG_TRACE;
    InterlockedExchange(&g_level, l);
}

/* UTF-8 -> newly allocated UTF-16 (NULL on failure). */
static wchar_t *utf8_to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

/* Creates every missing directory on the way to the file `path` (its parent chain), so that
 * a fresh profile or a configured log_file in a new folder works. Errors are left to the
 * CreateFileW that follows. */
static void make_parent_dirs(const wchar_t *path)
{
    size_t len = wcslen(path);
    wchar_t *p = malloc((len + 1) * sizeof *p);
    if (!p)
        return;
    memcpy(p, path, (len + 1) * sizeof *p);
    wchar_t *last = NULL;
    for (wchar_t *c = p; *c; c++)
        if (*c == L'\\' || *c == L'/')
            last = c;
    if (last) {
        *last = 0;
        /* Skip the root ("C:\", "\\server\share\", "\\?\C:\") - it exists or cannot be made. */
        wchar_t *start = p;
        if (p[0] == L'\\' && p[1] == L'\\') {
            int seps = 0;
            for (start = p + 2; *start && seps < 2; start++)
                if (*start == L'\\')
                    seps++;
        } else if (p[0] && p[1] == L':') {
            start = p + 2;
        }
        for (wchar_t *c = start; ; c++) {
            if (*c == L'\\' || *c == L'/' || *c == 0) {
                wchar_t saved = *c;
                *c = 0;
                if (c > start && c[-1] != L':')
                    CreateDirectoryW(p, NULL);   /* fails harmlessly if it exists */
                *c = saved;
                if (saved == 0)
                    break;
            }
        }
    }
    free(p);
}

/* Opens `path` for appending, creating its directories. */
static HANDLE open_append(const wchar_t *path)
{
    make_parent_dirs(path);
    return CreateFileW(path, FILE_APPEND_DATA | SYNCHRONIZE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_ALWAYS,
                       FILE_ATTRIBUTE_NORMAL, NULL);
}

/* Closes the current destination. Caller holds g_lock. */
static void close_locked(void)
{
    if (g_file != INVALID_HANDLE_VALUE)
        CloseHandle(g_file);
    g_file = INVALID_HANDLE_VALUE;
    g_dest = DEST_NONE;
}

/* The folder for InitEasyLog files: %LOCALAPPDATA%\AsyncIPC\logs, falling back to
 * %USERPROFILE%\AppData\Local and then the temp folder when the variable is missing (services
 * running as LocalSystem have it; stripped-down environments may not). */
static int easy_dir(wchar_t *out, size_t cap)
{
    wchar_t base[MAX_PATH];
    DWORD n = GetEnvironmentVariableW(L"LOCALAPPDATA", base, MAX_PATH);
    if (n == 0 || n >= MAX_PATH) {
        n = GetEnvironmentVariableW(L"USERPROFILE", base, MAX_PATH);
        if (n > 0 && n + 15 < MAX_PATH)
            wcscat(base, L"\\AppData\\Local");
        else if ((n = GetTempPathW(MAX_PATH, base)) == 0 || n >= MAX_PATH)
            return -1;
    }
    size_t bl = wcslen(base);
    while (bl > 0 && (base[bl - 1] == L'\\' || base[bl - 1] == L'/'))
        base[--bl] = 0;
    int w = _snwprintf(out, cap, L"%ls\\AsyncIPC\\logs", base);
    return (w < 0 || (size_t)w >= cap) ? -1 : 0;
}

/* Opens the easy-log file for the date in `st`. Caller holds g_lock and has set g_easy_name. */
static void open_easy_locked(const SYSTEMTIME *st)
{
    wchar_t dir[MAX_PATH], path[MAX_PATH + 160];
    if (g_file != INVALID_HANDLE_VALUE)
        CloseHandle(g_file);
    g_file = INVALID_HANDLE_VALUE;
    g_year = st->wYear;
    g_month = st->wMonth;
    g_day = st->wDay;
    if (easy_dir(dir, MAX_PATH) != 0)
        return;
    int w = _snwprintf(path, MAX_PATH + 160, L"%ls\\AsyncIPC_%ls_%04u%02u%02u.log", dir,
                       g_easy_name, (unsigned)st->wYear, (unsigned)st->wMonth, (unsigned)st->wDay);
    if (w < 0 || w >= MAX_PATH + 160)
        return;
    g_file = open_append(path);
}

/* A file-name-safe copy of the process name (NULL or empty: the executable's base name). */
static wchar_t *easy_name(const char *process_name)
{
    wchar_t *w = NULL;
    if (process_name && *process_name) {
        w = utf8_to_wide(process_name);
    } else {
        wchar_t exe[MAX_PATH];
        DWORD n = GetModuleFileNameW(NULL, exe, MAX_PATH);
        if (n > 0 && n < MAX_PATH) {
            wchar_t *b = exe;
            for (wchar_t *c = exe; *c; c++)
                if (*c == L'\\' || *c == L'/')
                    b = c + 1;
            wchar_t *dot = wcsrchr(b, L'.');
            if (dot && dot != b)
                *dot = 0;
            w = _wcsdup(b);
        }
    }
    if (!w)
        w = _wcsdup(L"process");
    if (!w)
        return NULL;
    for (wchar_t *c = w; *c; c++)
        if (wcschr(L"\\/:*?\"<>|", *c) || *c < 32)
            *c = L'_';
    if (wcslen(w) > 100)
        w[100] = 0;
    return w;
}

void InitEasyLog(const char *process_name)
{
    wchar_t *name = easy_name(process_name);
    if (!name)
        return;
    SYSTEMTIME st;
    AcquireSRWLockExclusive(&g_lock);
    close_locked();
    free(g_easy_name);
    g_easy_name = name;
    GetLocalTime(&st);
    open_easy_locked(&st);
    g_dest = DEST_EASY;
    ReleaseSRWLockExclusive(&g_lock);
    current_level();
}

int aipc_log_open_file(const char *path_utf8)
{
    if (!path_utf8) {
        AcquireSRWLockExclusive(&g_lock);
        close_locked();
        ReleaseSRWLockExclusive(&g_lock);
        return AIPC_OK;
    }
    if (!*path_utf8)
        return AIPC_EINVAL;
    wchar_t *w = utf8_to_wide(path_utf8);
    if (!w)
        return AIPC_EINVAL;
    HANDLE h = open_append(w);
    DWORD e = GetLastError();
    free(w);
    if (h == INVALID_HANDLE_VALUE)
        return aipc__syserr(e);
    AcquireSRWLockExclusive(&g_lock);
    close_locked();
    g_file = h;
    g_dest = DEST_FILE;
    ReleaseSRWLockExclusive(&g_lock);
    current_level();
    return AIPC_OK;
}

/* Writes all of buf to h (a file or console/pipe handle); short writes are retried. */
static void write_all(HANDLE h, const char *buf, size_t len)
{
    while (len > 0) {
        DWORD done = 0;
        DWORD chunk = len > 0x10000000u ? 0x10000000u : (DWORD)len;
        if (!WriteFile(h, buf, chunk, &done, NULL) || done == 0)
            return;
        buf += done;
        len -= done;
    }
}

void aipc_log(aipc_log_level level, const char *fmt, ...)
{
    if ((LONG)level > current_level() || (int)level < 0 || !fmt)
        return;

    /* Format the message outside the lock, leaving room for the prefix in front. */
    char stack[LOG_PREFIX_ROOM + LOG_STACK_MSG + 2];
    char *buf = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack + LOG_PREFIX_ROOM, LOG_STACK_MSG, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n >= LOG_STACK_MSG) {
        char *big = malloc((size_t)LOG_PREFIX_ROOM + (size_t)n + 3);
        if (big) {
            va_start(ap, fmt);
            vsnprintf(big + LOG_PREFIX_ROOM, (size_t)n + 1, fmt, ap);
            va_end(ap);
            buf = big;
        } else {
            n = LOG_STACK_MSG - 1;   /* out of memory: log the truncated message */
        }
    }
    char *msg = buf + LOG_PREFIX_ROOM;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    msg[n++] = '\r';
    msg[n++] = '\n';

    AcquireSRWLockExclusive(&g_lock);
    SYSTEMTIME st;
    GetLocalTime(&st);
    HANDLE out = INVALID_HANDLE_VALUE;
    if (g_dest == DEST_EASY) {
        if (st.wDay != g_day || st.wMonth != g_month || st.wYear != g_year ||
            g_file == INVALID_HANDLE_VALUE)
            open_easy_locked(&st);   /* midnight roll-over, or retry after a failed open */
        out = g_file;
    } else if (g_dest == DEST_FILE) {
        out = g_file;
    } else if (level == AIPC_LOG_ERROR && stderr_errors_enabled()) {
        out = GetStdHandle(STD_ERROR_HANDLE);
    }
    if (out != INVALID_HANDLE_VALUE && out != NULL) {
        char pre[LOG_PREFIX_ROOM];
        int p = snprintf(pre, sizeof pre, "%04u-%02u-%02u %02u:%02u:%02u.%03u %s pid=%lu tid=%lu ",
                         (unsigned)st.wYear, (unsigned)st.wMonth, (unsigned)st.wDay,
                         (unsigned)st.wHour, (unsigned)st.wMinute, (unsigned)st.wSecond,
                         (unsigned)st.wMilliseconds, level_names[level],
                         (unsigned long)GetCurrentProcessId(), (unsigned long)GetCurrentThreadId());
        if (p > 0 && p < LOG_PREFIX_ROOM) {
            memcpy(msg - p, pre, (size_t)p);
            write_all(out, msg - p, (size_t)n + (size_t)p);
        }
    }
    ReleaseSRWLockExclusive(&g_lock);

    if (buf != stack)
        free(buf);
}
