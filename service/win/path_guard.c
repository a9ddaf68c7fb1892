/*
 * path_guard.c - service-mode checks of the config and log paths (see path_guard.h).
 */
#include "path_guard.h"

#include "sd_audit.h"
#include "winsec.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define GUARD_PATH_MAX (MAX_PATH * 3)

static void to_utf8(const wchar_t *w, char *out, size_t cap)
{
    if (!WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL))
        snprintf(out, cap, "?");
}

/* The file audit of one existing path. 1 = absent, 0 = passes, -1 = refused (err set). */
static int audit_path(const wchar_t *path, const aipc_trust *t, const char *what, char *err,
                      size_t errlen)
{
    char up[GUARD_PATH_MAX];
    DWORD attr = GetFileAttributesW(path);
    if (attr == INVALID_FILE_ATTRIBUTES)
        return 1;
    to_utf8(path, up, sizeof up);
    if (attr & FILE_ATTRIBUTE_REPARSE_POINT) {
        snprintf(err, errlen, "%s %s: refused in service mode: it is a reparse point (junction "
                 "or link)", what, up);
        return -1;
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = GetNamedSecurityInfoW(path, SE_FILE_OBJECT,
                                     OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, NULL,
                                     NULL, NULL, NULL, &sd);
    if (rc != ERROR_SUCCESS) {
        snprintf(err, errlen, "%s %s: refused in service mode: its security descriptor cannot "
                 "be read (error %lu)", what, up, (unsigned long)rc);
        return -1;
    }
    char why[400];
    int bad = aipc_sd_audit_file(sd, t, why, sizeof why);
    LocalFree(sd);
    if (bad) {
        snprintf(err, errlen, "%s %s: refused in service mode: %s; only SYSTEM, Administrators "
                 "and the broker's account may be able to change it", what, up, why);
        return -1;
    }
    return 0;
}

/* Cuts path at its last separator (in place); false when there is none. */
static bool parent_of(wchar_t *path)
{
    wchar_t *s = wcsrchr(path, L'\\'), *f = wcsrchr(path, L'/');
    if (f > s)
        s = f;
    if (!s)
        return false;
    *s = 0;
    return true;
}

/* Length of the volume root prefix ("C:\", "\\server\share\") that is not checked. */
static size_t root_len(const wchar_t *p)
{
    if (p[0] && p[1] == L':')
        return (p[2] == L'\\' || p[2] == L'/') ? 3 : 2;
    if (p[0] == L'\\' && p[1] == L'\\') {
        const wchar_t *s = wcschr(p + 2, L'\\');
        s = s ? wcschr(s + 1, L'\\') : NULL;
        return s ? (size_t)(s - p) + 1 : wcslen(p);
    }
    return 0;
}

int aipc_guard_config(const wchar_t *config_path, char *err, size_t errlen)
{
    aipc_trust t;
    if (aipc_trust_init(&t, true) != 0) {
        snprintf(err, errlen, "cannot build the list of trusted accounts");
        return -1;
    }
    wchar_t dir[GUARD_PATH_MAX];
    int rc = audit_path(config_path, &t, "config file", err, errlen);
    if (rc >= 0 && wcslen(config_path) < GUARD_PATH_MAX) {
        wcscpy(dir, config_path);
        if (parent_of(dir) && wcslen(dir) > root_len(dir))
            rc = audit_path(dir, &t, "config folder", err, errlen);
    }
    aipc_trust_free(&t);
    return rc < 0 ? -1 : 0;
}

/* D:P with full control for SYSTEM, Administrators and the broker's own account, inherited by
 * what is created inside. */
static PSECURITY_DESCRIPTOR protected_folder_sd(void)
{
    DWORD er = 0;
    return aipc_sec_descriptor(L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%U)", NULL, &er);
}

/* Creates the missing folders of dir (deepest last) with a protected DACL. A folder that
 * appears meanwhile is left to the audit that follows. */
static int create_folders(const wchar_t *dir, char *err, size_t errlen)
{
    if (GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES)
        return 0;
    wchar_t parent[GUARD_PATH_MAX];
    wcscpy(parent, dir);
    if (parent_of(parent) && wcslen(parent) > root_len(parent) &&
        create_folders(parent, err, errlen) != 0)
        return -1;
    PSECURITY_DESCRIPTOR sd = protected_folder_sd();
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    BOOL ok = sd && CreateDirectoryW(dir, &sa);
    DWORD er = ok ? 0 : GetLastError();
    if (sd)
        LocalFree(sd);
    if (!ok && er != ERROR_ALREADY_EXISTS) {
        char up[GUARD_PATH_MAX];
        to_utf8(dir, up, sizeof up);
        snprintf(err, errlen, "log folder %s: cannot create it (error %lu)", up,
                 (unsigned long)er);
        return -1;
    }
    return 0;
}

static DWORD real_attrs(const wchar_t *path, void *ctx)
{
    (void)ctx;
    return GetFileAttributesW(path);
}

int aipc_guard_reparse_walk(const wchar_t *path, DWORD (*attrs)(const wchar_t *, void *),
                            void *ctx, wchar_t *bad, size_t badcap)
{
    wchar_t cur[GUARD_PATH_MAX];
    if (wcslen(path) >= GUARD_PATH_MAX)
        return -1;
    wcscpy(cur, path);
    do {
        DWORD attr = attrs(cur, ctx);
        if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
            if (bad && badcap) {
                wcsncpy(bad, cur, badcap - 1);
                bad[badcap - 1] = 0;
            }
            return -1;
        }
    } while (parent_of(cur) && wcslen(cur) > root_len(cur));
    return 0;
}

int aipc_guard_log(const char *log_path_utf8, char *err, size_t errlen)
{
    wchar_t path[GUARD_PATH_MAX], cur[GUARD_PATH_MAX];
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, log_path_utf8, -1, path,
                             GUARD_PATH_MAX)) {
        snprintf(err, errlen, "log file %s: not a usable path", log_path_utf8);
        return -1;
    }
    /* No component below the root may redirect. */
    if (aipc_guard_reparse_walk(path, real_attrs, NULL, cur, GUARD_PATH_MAX) != 0) {
        char up[GUARD_PATH_MAX];
        to_utf8(cur, up, sizeof up);
        snprintf(err, errlen, "log file %s: refused in service mode: %s is a reparse point "
                 "(junction or link)", log_path_utf8, up);
        return -1;
    }
    wchar_t dir[GUARD_PATH_MAX];
    wcscpy(dir, path);
    if (!parent_of(dir) || wcslen(dir) <= root_len(dir)) {
        snprintf(err, errlen, "log file %s: refused in service mode: not in a folder",
                 log_path_utf8);
        return -1;
    }
    if (create_folders(dir, err, errlen) != 0)
        return -1;
    aipc_trust t;
    if (aipc_trust_init(&t, true) != 0) {
        snprintf(err, errlen, "cannot build the list of trusted accounts");
        return -1;
    }
    int rc = audit_path(dir, &t, "log folder", err, errlen);
    if (rc >= 0)
        rc = audit_path(path, &t, "log file", err, errlen);
    aipc_trust_free(&t);
    return rc < 0 ? -1 : 0;
}
