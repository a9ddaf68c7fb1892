/*
 * wine_procmem.h - memory of another Windows process as Linux sees it, for programs running
 * under Wine (the broker suites, bench_broker, the soak). Header-only (static functions): it is
 * shared by test suites and bench programs that link different libraries.
 *
 * Under Wine, PrivateUsage of another process is not tracked (GetProcessMemoryInfo returns 0
 * for it), so the process's memory is read from Linux: Wine maps / to Z:, and the process's Unix
 * side is the one whose /proc/N/cmdline contains a string unique to it (a pipe or event name on
 * its command line). VmData (private writable mappings: what Wine has committed) is the
 * counterpart of Windows' PrivateUsage (commit charge); RssAnon is the part actually touched;
 * Threads counts its threads. On Windows (no Z:\proc) every read gives -1.
 */
#ifndef AIPC_WINE_PROCMEM_H
#define AIPC_WINE_PROCMEM_H

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a small file whole (NUL-terminated); its length, or -1. */
static inline int aipc_procmem_read(const char *path, char *buf, size_t cap)
{
    HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    DWORD total = 0, n = 0;
    while (total + 1 < cap && ReadFile(h, buf + total, (DWORD)(cap - 1 - total), &n, NULL) && n)
        total += n;
    buf[total] = 0;
    CloseHandle(h);
    return (int)total;
}

/* Finds the Unix process whose command line contains both needles (needle2 may be NULL) and
 * writes its "Z:\proc\N" to dir. Returns 0, or -1 (dir set to "") when there is none. */
static inline int aipc_procmem_find(char *dir, size_t cap, const char *needle1,
                                    const char *needle2)
{
    char buf[4096];
    dir[0] = 0;
    WIN32_FIND_DATAA fd;
    HANDLE f = FindFirstFileA("Z:\\proc\\*", &fd);
    if (f == INVALID_HANDLE_VALUE)
        return -1;
    do {
        if (fd.cFileName[0] < '1' || fd.cFileName[0] > '9')
            continue;
        char path[128];
        snprintf(path, sizeof path, "Z:\\proc\\%s\\cmdline", fd.cFileName);
        int n = aipc_procmem_read(path, buf, sizeof buf);
        for (int i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        if (n > 0 && strstr(buf, needle1) && (!needle2 || strstr(buf, needle2))) {
            snprintf(dir, cap, "Z:\\proc\\%s", fd.cFileName);
            break;
        }
    } while (FindNextFileA(f, &fd));
    FindClose(f);
    return dir[0] ? 0 : -1;
}

/* "Key:   N kB" (or "Key: N") from dir\status: the number (bytes for kB values), or -1. */
static inline double aipc_procmem_status(const char *dir, const char *key)
{
    char path[96], buf[8192];
    if (!dir || !dir[0])
        return -1;
    snprintf(path, sizeof path, "%s\\status", dir);
    if (aipc_procmem_read(path, buf, sizeof buf) <= 0)
        return -1;
    char *p = strstr(buf, key);
    if (!p)
        return -1;
    char *end;
    double v = strtod(p + strlen(key), &end);
    while (*end == ' ' || *end == '\t')
        end++;
    return strncmp(end, "kB", 2) == 0 ? v * 1024.0 : v;
}

/* VmData of the process in bytes, or -1. */
static inline double aipc_procmem_vmdata(const char *dir)
{
    return aipc_procmem_status(dir, "VmData:");
}

#endif
