/*
 * setup_ops.c - the installers' other chores, in asyncipc-secure.exe next to its folder
 * protection (secure.c), so that install.cmd, uninstall.cmd and the setup program do them the
 * same way and without the limits of cmd.exe and NSIS (NSIS strings hold 1024 characters, a
 * PATH may hold 32767; cmd has no "wait for this process"):
 *
 *   asyncipc-secure stop-service NAME MS   stops the service (if it runs) and waits until the
 *                                          service manager reports STOPPED *and* the service's
 *                                          process has exited, MS milliseconds at most: the
 *                                          process still holds its files for a while after it
 *                                          reported STOPPED. 0 when stopped (or not registered),
 *                                          5 on time-out.
 *   asyncipc-secure replace SRC DIR        copies SRC into DIR. When the old copy in DIR is in
 *                                          use (a running program, a client that loaded the
 *                                          DLL) it is renamed aside to NAME.<n>.old in DIR and
 *                                          deleted at the next restart (MoveFileEx
 *                                          MOVEFILE_DELAY_UNTIL_REBOOT); the new copy is in
 *                                          place at once, running programs keep the old one
 *                                          until they restart. Prints what it did.
 *   asyncipc-secure remove-tree DIR        deletes DIR and everything in it, without entering a
 *                                          reparse point (a junction or link inside is removed
 *                                          itself, not what it points to). A file in use (a
 *                                          client that loaded asyncipc.dll, a running aipc.exe)
 *                                          and the folders holding it are deleted at the next
 *                                          restart instead (MOVEFILE_DELAY_UNTIL_REBOOT, files
 *                                          before their folders); it says so for each.
 *   asyncipc-secure path-add DIR           adds DIR to the system PATH (HKLM ... Session Manager\
 *   asyncipc-secure path-remove DIR        Environment, Path, REG_EXPAND_SZ) unless an entry
 *                                          already names it (compared expanded, without case and
 *                                          trailing backslash); path-remove removes every entry
 *                                          naming it. The other entries are kept byte for byte.
 *                                          Then WM_SETTINGCHANGE "Environment" is broadcast, so
 *                                          new Command Prompts see the change.
 *
 * Exit codes: 0 done, 1 usage, 4 system error, 5 time-out (stop-service).
 */
#include "setup_ops.h"

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

enum { OPS_OK = 0, OPS_USAGE = 1, OPS_SYSTEM = 4, OPS_TIMEOUT = 5 };

#define ENV_KEY L"SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment"
#define PATH_MAX_CHARS 32767   /* an environment variable's limit */

/* Prints a failed system call (stderr) and returns OPS_SYSTEM. */
static int ops_error(const char *what, const wchar_t *arg, DWORD er)
{
    char msg[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, er, 0, msg,
                   sizeof msg, NULL);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r' || msg[l - 1] == ' '))
        msg[--l] = 0;
    fprintf(stderr, "asyncipc-secure: %s \"%ls\" failed: error %lu %s\n", what, arg ? arg : L"",
            (unsigned long)er, msg);
    return OPS_SYSTEM;
}

/* ---- stop-service ---------------------------------------------------------------------------- */

static int cmd_stop_service(const wchar_t *name, DWORD ms)
{
    ULONGLONG t0 = GetTickCount64(), deadline = t0 + ms;
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!scm)
        return ops_error("opening the service manager for", name, GetLastError());
    SC_HANDLE svc = OpenServiceW(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS);
    if (!svc) {
        DWORD er = GetLastError();
        CloseServiceHandle(scm);
        if (er == ERROR_SERVICE_DOES_NOT_EXIST) {
            printf("asyncipc-secure: the %ls service is not registered\n", name);
            return OPS_OK;
        }
        return ops_error("opening the service", name, er);
    }
    SERVICE_STATUS_PROCESS st;
    DWORD need;
    HANDLE proc = NULL;
    DWORD pid = 0;
    int rc = OPS_OK, asked = 0;
    for (;;) {
        if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof st, &need)) {
            rc = ops_error("querying the service", name, GetLastError());
            break;
        }
        /* The process that runs (or ran) the service: opened while it is known, so that its
         * exit can be awaited after the service manager has forgotten it. */
        if (!proc && st.dwProcessId) {
            pid = st.dwProcessId;
            proc = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
        }
        if (st.dwCurrentState == SERVICE_STOPPED)
            break;
        if (!asked && st.dwCurrentState != SERVICE_STOP_PENDING) {
            SERVICE_STATUS ss;
            if (ControlService(svc, SERVICE_CONTROL_STOP, &ss)) {
                asked = 1;
                printf("asyncipc-secure: stopping the %ls service (process %lu)\n", name,
                       (unsigned long)pid);
            } else {
                DWORD er = GetLastError();
                /* START_PENDING does not accept controls yet: ask again on the next round. */
                if (er != ERROR_SERVICE_CANNOT_ACCEPT_CTRL && er != ERROR_SERVICE_NOT_ACTIVE) {
                    rc = ops_error("stopping the service", name, er);
                    break;
                }
            }
        }
        if (GetTickCount64() >= deadline) {
            fprintf(stderr, "asyncipc-secure: the %ls service did not stop within %lu ms\n", name,
                    (unsigned long)ms);
            rc = OPS_TIMEOUT;
            break;
        }
        Sleep(100);
    }
    if (rc == OPS_OK && proc) {
        ULONGLONG now = GetTickCount64();
        DWORD left = now < deadline ? (DWORD)(deadline - now) : 0;
        ULONGLONG stopped_at = now;
        if (WaitForSingleObject(proc, left) == WAIT_OBJECT_0) {
            printf("asyncipc-secure: the %ls service is stopped; its process %lu exited %lu ms "
                   "after the service manager reported STOPPED (%lu ms in all)\n",
                   name, (unsigned long)pid, (unsigned long)(GetTickCount64() - stopped_at),
                   (unsigned long)(GetTickCount64() - t0));
        } else {
            fprintf(stderr, "asyncipc-secure: the %ls service is STOPPED but its process %lu is "
                    "still running after %lu ms; its files cannot be replaced yet\n",
                    name, (unsigned long)pid, (unsigned long)ms);
            rc = OPS_TIMEOUT;
        }
    } else if (rc == OPS_OK) {
        printf("asyncipc-secure: the %ls service is stopped (no process)\n", name);
    }
    if (proc)
        CloseHandle(proc);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

/* ---- replace --------------------------------------------------------------------------------- */

/* A file another process has open or mapped (a running program, a loaded DLL). */
static int in_use(DWORD er)
{
    return er == ERROR_SHARING_VIOLATION || er == ERROR_ACCESS_DENIED ||
           er == ERROR_USER_MAPPED_FILE || er == ERROR_LOCK_VIOLATION;
}

static int cmd_replace(const wchar_t *src, const wchar_t *dir)
{
    const wchar_t *base = wcsrchr(src, L'\\');
    const wchar_t *b2 = wcsrchr(src, L'/');
    if (b2 && (!base || b2 > base))
        base = b2;
    base = base ? base + 1 : src;
    wchar_t dst[MAX_PATH * 2], aside[MAX_PATH * 2];
    if (_snwprintf(dst, MAX_PATH * 2, L"%ls\\%ls", dir, base) < 0)
        return ops_error("building the path of", src, ERROR_FILENAME_EXCED_RANGE);
    if (CopyFileW(src, dst, FALSE))
        return OPS_OK;
    DWORD er = GetLastError();
    if (!in_use(er) || GetFileAttributesW(dst) == INVALID_FILE_ATTRIBUTES)
        return ops_error("copying to", dst, er);
    /* In use: a running image can be renamed, not written or deleted. */
    int n;
    for (n = 1; n < 1000; n++) {
        _snwprintf(aside, MAX_PATH * 2, L"%ls.%d.old", dst, n);
        if (GetFileAttributesW(aside) == INVALID_FILE_ATTRIBUTES)
            break;
    }
    if (n == 1000 || !MoveFileExW(dst, aside, 0))
        return ops_error("renaming the file in use", dst, n == 1000 ? ERROR_FILE_EXISTS : GetLastError());
    if (!CopyFileW(src, dst, FALSE)) {
        er = GetLastError();
        MoveFileExW(aside, dst, 0);   /* put the old one back: the installation stays whole */
        return ops_error("copying to", dst, er);
    }
    const wchar_t *aside_name = wcsrchr(aside, L'\\');
    aside_name = aside_name ? aside_name + 1 : aside;
    if (DeleteFileW(aside)) {
        printf("asyncipc-secure: \"%ls\" was busy; replaced it\n", dst);
    } else if (MoveFileExW(aside, NULL, MOVEFILE_DELAY_UNTIL_REBOOT)) {
        printf("asyncipc-secure: \"%ls\" is in use by a running program: the new version is in "
               "place (programs started from now on use it); the old one, renamed to %ls, is "
               "deleted at the next restart of Windows\n", dst, aside_name);
    } else {
        printf("asyncipc-secure: \"%ls\" is in use by a running program: the new version is in "
               "place; the old one, renamed to %ls, could not be scheduled for deletion "
               "(error %lu): delete it once no program uses it\n", dst, aside_name,
               (unsigned long)GetLastError());
    }
    return OPS_OK;
}

/* ---- remove-tree ----------------------------------------------------------------------------- */

enum { TREE_MAX_DEPTH = 32 };

/* Deletes at the next restart of Windows (the caller has deleted what it could): a file in
 * use, or a folder that still holds one. */
static int remove_at_restart(const wchar_t *path, const char *what, int *pending)
{
    if (!MoveFileExW(path, NULL, MOVEFILE_DELAY_UNTIL_REBOOT))
        return ops_error("scheduling the deletion at the next restart of", path, GetLastError());
    printf("asyncipc-secure: \"%ls\" %s; it is deleted at the next restart of Windows\n", path,
           what);
    (*pending)++;
    return OPS_OK;
}

/* Removes one item found in a folder listing (attrs from the listing). */
static int remove_item(const wchar_t *path, DWORD attrs, int depth, int *pending);

/* Removes what dir holds, then dir itself. */
static int remove_dir(const wchar_t *dir, int depth, int *pending)
{
    if (depth > TREE_MAX_DEPTH)
        return ops_error("removing (nested too deep)", dir, ERROR_FILENAME_EXCED_RANGE);
    wchar_t pattern[MAX_PATH * 2], path[MAX_PATH * 2];
    if (_snwprintf(pattern, MAX_PATH * 2, L"%ls\\*", dir) < 0)
        return ops_error("listing", dir, ERROR_FILENAME_EXCED_RANGE);
    int rc = OPS_OK, before = *pending;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pattern, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD er = GetLastError();
        if (er != ERROR_FILE_NOT_FOUND)
            return ops_error("listing", dir, er);
    } else {
        do {
            if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
                continue;
            if (_snwprintf(path, MAX_PATH * 2, L"%ls\\%ls", dir, fd.cFileName) < 0)
                rc = ops_error("removing", dir, ERROR_FILENAME_EXCED_RANGE);
            else
                rc = remove_item(path, fd.dwFileAttributes, depth + 1, pending);
        } while (rc == OPS_OK && FindNextFileW(f, &fd));
        FindClose(f);
    }
    if (rc != OPS_OK)
        return rc;
    if (RemoveDirectoryW(dir))
        return OPS_OK;
    DWORD er = GetLastError();
    if (er == ERROR_DIR_NOT_EMPTY && *pending > before)
        return remove_at_restart(dir, "still holds files in use", pending);
    if (in_use(er))
        return remove_at_restart(dir, "is in use by a running program", pending);
    return ops_error("removing the folder", dir, er);
}

static int remove_item(const wchar_t *path, DWORD attrs, int depth, int *pending)
{
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
        /* The link itself (a junction or folder link is removed as a folder), never what it
         * points to. Wine cannot remove a Unix symbolic link to a folder that way: an error. */
        BOOL ok = attrs & FILE_ATTRIBUTE_DIRECTORY ? RemoveDirectoryW(path) : DeleteFileW(path);
        return ok ? OPS_OK : ops_error("removing the link", path, GetLastError());
    }
    if (attrs & FILE_ATTRIBUTE_DIRECTORY)
        return remove_dir(path, depth, pending);
    if (attrs & FILE_ATTRIBUTE_READONLY)
        SetFileAttributesW(path, attrs & ~(DWORD)FILE_ATTRIBUTE_READONLY);
    if (DeleteFileW(path))
        return OPS_OK;
    DWORD er = GetLastError();
    if (in_use(er))
        return remove_at_restart(path, "is in use by a running program", pending);
    return ops_error("deleting", path, er);
}

static int cmd_remove_tree(const wchar_t *arg)
{
    wchar_t dir[MAX_PATH * 2];
    DWORD n = GetFullPathNameW(arg, MAX_PATH * 2, dir, NULL);
    if (!n || n >= MAX_PATH * 2)
        return ops_error("resolving", arg, n ? ERROR_FILENAME_EXCED_RANGE : GetLastError());
    while (n > 3 && dir[n - 1] == L'\\')
        dir[--n] = 0;
    if (n <= 3)
        return ops_error("removing a drive's root", dir, ERROR_INVALID_PARAMETER);
    DWORD attrs = GetFileAttributesW(dir);
    if (attrs == INVALID_FILE_ATTRIBUTES) {
        DWORD er = GetLastError();
        if (er == ERROR_FILE_NOT_FOUND || er == ERROR_PATH_NOT_FOUND) {
            printf("asyncipc-secure: \"%ls\" does not exist\n", dir);
            return OPS_OK;
        }
        return ops_error("reading the attributes of", dir, er);
    }
    int pending = 0;
    int rc = remove_item(dir, attrs, 0, &pending);
    if (rc == OPS_OK && pending)
        printf("asyncipc-secure: removed \"%ls\" but for %d item(s) in use or holding files in "
               "use, which Windows deletes at its next restart\n", dir, pending);
    else if (rc == OPS_OK)
        printf("asyncipc-secure: removed \"%ls\"\n", dir);
    return rc;
}

/* ---- path-add / path-remove ------------------------------------------------------------------ */

/* Normalises one PATH entry or directory for comparison: expanded, quotes and surrounding
 * blanks removed, no trailing backslash (except "C:\"), lower case. */
static void norm_dir(const wchar_t *in, size_t len, wchar_t *out, size_t cap)
{
    wchar_t raw[PATH_MAX_CHARS + 1], exp[PATH_MAX_CHARS + 1];
    size_t j = 0;
    for (size_t i = 0; i < len && j < PATH_MAX_CHARS; i++)
        if (in[i] != L'"')
            raw[j++] = in[i];
    raw[j] = 0;
    DWORD n = ExpandEnvironmentStringsW(raw, exp, PATH_MAX_CHARS + 1);
    const wchar_t *s = n && n <= PATH_MAX_CHARS + 1 ? exp : raw;
    while (*s == L' ' || *s == L'\t')
        s++;
    size_t l = wcslen(s);
    while (l && (s[l - 1] == L' ' || s[l - 1] == L'\t'))
        l--;
    while (l > 3 && (s[l - 1] == L'\\' || s[l - 1] == L'/'))
        l--;
    if (l >= cap)
        l = cap - 1;
    for (size_t i = 0; i < l; i++)
        out[i] = (wchar_t)towlower(s[i] == L'/' ? L'\\' : s[i]);
    out[l] = 0;
}

/* Reads the system Path without expanding it (NULL and *er on failure; "" when missing). */
static wchar_t *read_path(HKEY key, DWORD *er)
{
    DWORD type = 0, bytes = 0;
    LONG r = RegQueryValueExW(key, L"Path", NULL, &type, NULL, &bytes);
    if (r == ERROR_FILE_NOT_FOUND) {
        wchar_t *e = calloc(1, sizeof(wchar_t));
        *er = e ? 0 : ERROR_OUTOFMEMORY;
        return e;
    }
    if (r != ERROR_SUCCESS || (type != REG_SZ && type != REG_EXPAND_SZ)) {
        *er = r != ERROR_SUCCESS ? (DWORD)r : ERROR_INVALID_DATA;
        return NULL;
    }
    wchar_t *buf = calloc(bytes / sizeof(wchar_t) + 2, sizeof(wchar_t));
    if (!buf) {
        *er = ERROR_OUTOFMEMORY;
        return NULL;
    }
    r = RegQueryValueExW(key, L"Path", NULL, &type, (BYTE *)buf, &bytes);
    if (r != ERROR_SUCCESS) {
        free(buf);
        *er = (DWORD)r;
        return NULL;
    }
    buf[bytes / sizeof(wchar_t)] = 0;
    return buf;
}

/* Tells running programs (Explorer, which starts new Command Prompts) that the environment
 * changed. Windows without a desktop (or a hung window) just time out. */
static void broadcast_environment(void)
{
    DWORD_PTR res;
    SendMessageTimeoutW(HWND_BROADCAST, WM_SETTINGCHANGE, 0, (LPARAM)L"Environment",
                        SMTO_ABORTIFHUNG, 5000, &res);
}

static int cmd_path(const wchar_t *dir_arg, int add)
{
    wchar_t dir[MAX_PATH * 2], want[MAX_PATH * 2], cur[PATH_MAX_CHARS + 1];
    DWORD n = GetFullPathNameW(dir_arg, MAX_PATH * 2, dir, NULL);
    if (!n || n >= MAX_PATH * 2)
        return ops_error("resolving", dir_arg, n ? ERROR_FILENAME_EXCED_RANGE : GetLastError());
    size_t dl = wcslen(dir);
    while (dl > 3 && dir[dl - 1] == L'\\')
        dir[--dl] = 0;
    norm_dir(dir, dl, want, MAX_PATH * 2);
    HKEY key;
    LONG r = RegOpenKeyExW(HKEY_LOCAL_MACHINE, ENV_KEY, 0, KEY_QUERY_VALUE | KEY_SET_VALUE, &key);
    if (r != ERROR_SUCCESS)
        return ops_error("opening HKLM\\", ENV_KEY, (DWORD)r);
    DWORD er = 0;
    wchar_t *old = read_path(key, &er);
    if (!old) {
        RegCloseKey(key);
        return ops_error("reading the system Path in HKLM\\", ENV_KEY, er);
    }
    size_t ol = wcslen(old);
    wchar_t *out = calloc(ol + dl + 3, sizeof(wchar_t));
    if (!out) {
        free(old);
        RegCloseKey(key);
        return ops_error("building the system Path", dir, ERROR_OUTOFMEMORY);
    }
    /* Which entries name DIR. path-add appends DIR to the value as it is; path-remove drops
     * those entries and keeps every other one (empty ones too) as it was. */
    size_t o = 0, kept = 0;
    int found = 0;
    for (const wchar_t *p = old;;) {
        const wchar_t *e = wcschr(p, L';');
        size_t len = e ? (size_t)(e - p) : wcslen(p);
        norm_dir(p, len, cur, PATH_MAX_CHARS + 1);
        int match = cur[0] && wcscmp(cur, want) == 0;
        found |= match;
        if (!match) {
            if (kept++)
                out[o++] = L';';
            memcpy(out + o, p, len * sizeof(wchar_t));
            o += len;
        }
        if (!e)
            break;
        p = e + 1;
    }
    int rc = OPS_OK, changed = 0;
    if (add && !found) {
        o = ol;
        memcpy(out, old, ol * sizeof(wchar_t));
        if (o && out[o - 1] != L';')
            out[o++] = L';';
        memcpy(out + o, dir, dl * sizeof(wchar_t));
        o += dl;
        changed = 1;
    } else if (!add && found) {
        changed = 1;
    }
    out[o] = 0;
    if (changed && o > PATH_MAX_CHARS) {
        fprintf(stderr, "asyncipc-secure: the system Path would be longer than %d characters; "
                "\"%ls\" was not added (add it by hand, or shorten Path)\n", PATH_MAX_CHARS, dir);
        rc = OPS_SYSTEM;
    } else if (changed) {
        r = RegSetValueExW(key, L"Path", 0, REG_EXPAND_SZ, (const BYTE *)out,
                           (DWORD)((o + 1) * sizeof(wchar_t)));
        if (r != ERROR_SUCCESS)
            rc = ops_error("writing the system Path in HKLM\\", ENV_KEY, (DWORD)r);
        else
            printf("asyncipc-secure: %s \"%ls\" %s the system PATH (new Command Prompts see it)\n",
                   add ? "added" : "removed", dir, add ? "to" : "from");
    } else {
        printf("asyncipc-secure: \"%ls\" is %s the system PATH\n", dir,
               add ? "already in" : "not in");
    }
    RegCloseKey(key);
    free(old);
    free(out);
    if (rc == OPS_OK && changed)
        broadcast_environment();
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

const char aipc_setup_ops_usage[] =
    "       asyncipc-secure stop-service NAME MS | replace SRC DIR | remove-tree DIR |\n"
    "                       path-add DIR | path-remove DIR\n";

int aipc_setup_ops_main(int argc, wchar_t **argv)
{
    if (argc == 4 && wcscmp(argv[1], L"stop-service") == 0)
        return cmd_stop_service(argv[2], (DWORD)wcstoul(argv[3], NULL, 10));
    if (argc == 4 && wcscmp(argv[1], L"replace") == 0)
        return cmd_replace(argv[2], argv[3]);
    if (argc == 3 && wcscmp(argv[1], L"remove-tree") == 0)
        return cmd_remove_tree(argv[2]);
    if (argc == 3 && wcscmp(argv[1], L"path-add") == 0)
        return cmd_path(argv[2], 1);
    if (argc == 3 && wcscmp(argv[1], L"path-remove") == 0)
        return cmd_path(argv[2], 0);
    return -1;
}
