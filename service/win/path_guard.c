/*
 * path_guard.c - service-mode checks of the config and log paths (see path_guard.h).
 */
#include "path_guard.h"

#include "sd_audit.h"
#include "winsec.h"

#include <aclapi.h>
#include <shlobj.h>
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

/* "absent" is only what Windows says is absent: anything else (access denied, a sharing
 * violation, a bad name) is a refusal, never "missing means defaults". */
static bool is_absent(DWORD er)
{
    return er == ERROR_FILE_NOT_FOUND || er == ERROR_PATH_NOT_FOUND;
}

/* Opens the object itself (never what a reparse point leads to), folders too. */
static HANDLE open_obj(const wchar_t *path, DWORD access, DWORD *er)
{
    HANDLE h = CreateFileW(path, access | READ_CONTROL | FILE_READ_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS,
                           NULL);
    *er = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    return h;
}

/* Owner and DACL of an open object (LocalFree), or NULL with *er set. */
static PSECURITY_DESCRIPTOR handle_sd(HANDLE h, PSID *owner, PACL *dacl, DWORD *er)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    *er = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION |
                          DACL_SECURITY_INFORMATION, owner, NULL, dacl, NULL, &sd);
    return *er == ERROR_SUCCESS ? sd : NULL;
}

/* The file audit of an open object: not a reparse point, owner and DACL through the handle.
 * 0 = passes, -1 = refused (err set). */
static int audit_handle(HANDLE h, const wchar_t *path, const aipc__trust *t, const char *what,
                        char *err, size_t errlen)
{
    char up[GUARD_PATH_MAX];
    to_utf8(path, up, sizeof up);
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) {
        snprintf(err, errlen, "%s %s: refused in service mode: its attributes cannot be read "
                 "(error %lu)", what, up, (unsigned long)GetLastError());
        return -1;
    }
    if (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
        snprintf(err, errlen, "%s %s: refused in service mode: it is a reparse point (junction "
                 "or link)", what, up);
        return -1;
    }
    DWORD er;
    PSID owner;
    PACL dacl;
    PSECURITY_DESCRIPTOR sd = handle_sd(h, &owner, &dacl, &er);
    if (!sd) {
        snprintf(err, errlen, "%s %s: refused in service mode: its security descriptor cannot "
                 "be read (error %lu)", what, up, (unsigned long)er);
        return -1;
    }
    char why[400];
    int bad = aipc__sd_audit_file(sd, t, why, sizeof why);
    LocalFree(sd);
    if (bad) {
        snprintf(err, errlen, "%s %s: refused in service mode: %s; only SYSTEM, Administrators "
                 "and the broker's account may be able to change it", what, up, why);
        return -1;
    }
    return 0;
}

/* The file audit of one path, opened once. 1 = absent, 0 = passes, -1 = refused (err set). */
static int audit_path(const wchar_t *path, const aipc__trust *t, const char *what, char *err,
                      size_t errlen)
{
    DWORD er;
    HANDLE h = open_obj(path, 0, &er);
    if (h == INVALID_HANDLE_VALUE) {
        if (is_absent(er))
            return 1;
        char up[GUARD_PATH_MAX];
        to_utf8(path, up, sizeof up);
        snprintf(err, errlen, "%s %s: refused in service mode: it cannot be opened (error %lu)",
                 what, up, (unsigned long)er);
        return -1;
    }
    int rc = audit_handle(h, path, t, what, err, errlen);
    CloseHandle(h);
    return rc;
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

/* Rights on a parent folder that let their holder rename it (or what it holds) away and put a
 * folder of their own in its place (installer/secure.c's check_parents). */
#define PARENT_DANGER (DELETE | FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER | GENERIC_ALL)

/* "S-1-..." text of a SID for messages (into buf). */
static const char *aipc__sid_text(PSID s, char *buf, size_t cap)
{
    char *str = NULL;
    if (s && IsValidSid(s) && ConvertSidToStringSidA(s, &str)) {
        snprintf(buf, cap, "%s", str);
        LocalFree(str);
    } else {
        snprintf(buf, cap, "(no SID)");
    }
    return buf;
}

static bool creator_sid(PSID sid)
{
    static SID_IDENTIFIER_AUTHORITY creator = {SECURITY_CREATOR_SID_AUTHORITY};
    return memcmp(GetSidIdentifierAuthority(sid), &creator, sizeof creator) == 0;
}

/* Every folder above `path` (the volume root included, except for DELETE, which cannot rename
 * a root): a plain folder (no reparse point below the root), a trusted owner, and no allowed
 * ACE (not inherit-only) granting PARENT_DANGER to an untrusted SID. 0 = passes, 1 = one is
 * absent (*absent_at is its length), -1 = refused (err set). */
static int check_ancestors(const wchar_t *path, const aipc__trust *t, const char *what,
                           char *err, size_t errlen, size_t *absent_at)
{
    size_t len = wcslen(path), rl = root_len(path);
    char up[GUARD_PATH_MAX], sb[200];
    if (rl == 0 || len >= GUARD_PATH_MAX)
        return 0;               /* not a drive or UNC path: nothing to walk */
    for (size_t i = rl - 1; i < len; i++) {
        if (i >= rl && path[i] != L'\\' && path[i] != L'/')
            continue;
        wchar_t parent[GUARD_PATH_MAX];
        size_t plen = i == rl - 1 ? rl : i;
        wmemcpy(parent, path, plen);
        parent[plen] = 0;
        bool root = plen == rl;
        to_utf8(parent, up, sizeof up);
        DWORD er;
        HANDLE h = open_obj(parent, 0, &er);
        if (h == INVALID_HANDLE_VALUE) {
            if (is_absent(er)) {
                *absent_at = plen;
                return 1;
            }
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: it cannot be "
                     "opened (error %lu)", what, up, (unsigned long)er);
            return -1;
        }
        BY_HANDLE_FILE_INFORMATION fi;
        PSID owner = NULL;
        PACL dacl = NULL;
        PSECURITY_DESCRIPTOR sd = NULL;
        int rc = 0;
        if (!GetFileInformationByHandle(h, &fi)) {
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: its attributes "
                     "cannot be read (error %lu)", what, up, (unsigned long)GetLastError());
            rc = -1;
        } else if (!root && (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: it is a "
                     "reparse point (junction or link)", what, up);
            rc = -1;
        } else if (!(sd = handle_sd(h, &owner, &dacl, &er))) {
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: its security "
                     "descriptor cannot be read (error %lu)", what, up, (unsigned long)er);
            rc = -1;
        } else if (!aipc__trust_has(t, owner)) {
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: it is owned by "
                     "%s, who could rename it and put a folder of their own in its place", what,
                     up, aipc__sid_text(owner, sb, sizeof sb));
            rc = -1;
        } else if (!dacl) {
            snprintf(err, errlen, "%s: parent folder %s: refused in service mode: it has no "
                     "DACL (everyone has full control)", what, up);
            rc = -1;
        }
        for (DWORD k = 0; rc == 0 && k < dacl->AceCount; k++) {
            ACE_HEADER *ah;
            if (!GetAce(dacl, k, (void **)&ah) || ah->AceType != ACCESS_ALLOWED_ACE_TYPE ||
                (ah->AceFlags & INHERIT_ONLY_ACE))
                continue;
            ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)ah;
            PSID sid = (PSID)&a->SidStart;
            DWORD m = a->Mask & PARENT_DANGER;
            if (root)
                m &= ~DELETE;
            if (m && !aipc__trust_has(t, sid) && !creator_sid(sid)) {
                snprintf(err, errlen, "%s: parent folder %s: refused in service mode: it grants "
                         "%s the rights 0x%lx (delete, delete child, change permissions or "
                         "owner): that user could rename it and put a folder of their own in its "
                         "place", what, up, aipc__sid_text(sid, sb, sizeof sb), (unsigned long)m);
                rc = -1;
            }
        }
        if (sd)
            LocalFree(sd);
        CloseHandle(h);
        if (rc)
            return rc;
    }
    return 0;
}

/* Does the open handle name `expected` (a full path)? GetFinalPathNameByHandle gives the path
 * the object was really reached by ("\\?\C:\..." or "\\?\UNC\srv\..."); a parent
 * swapped for a junction or renamed away after the checks shows up as a difference. */
static bool final_path_is(HANDLE h, const wchar_t *expected, wchar_t *got, size_t cap)
{
    wchar_t buf[GUARD_PATH_MAX + 8], want[GUARD_PATH_MAX];
    DWORD n = GetFinalPathNameByHandleW(h, buf, GUARD_PATH_MAX + 8,
                                        FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    got[0] = 0;
    if (!n || n >= GUARD_PATH_MAX + 8)
        return false;
    const wchar_t *p = buf;
    wchar_t unc[GUARD_PATH_MAX + 8];
    if (wcsncmp(p, L"\\\\?\\UNC\\", 8) == 0) {
        _snwprintf(unc, GUARD_PATH_MAX + 8, L"\\%ls", p + 7);
        unc[GUARD_PATH_MAX + 7] = 0;
        p = unc;
    } else if (wcsncmp(p, L"\\\\?\\", 4) == 0) {
        p += 4;
    }
    wcsncpy(got, p, cap - 1);
    got[cap - 1] = 0;
    /* the expected path in its long form (an administrator may have typed 8.3 names) */
    DWORD ln = GetLongPathNameW(expected, want, GUARD_PATH_MAX);
    if (!ln || ln >= GUARD_PATH_MAX) {
        wcsncpy(want, expected, GUARD_PATH_MAX - 1);
        want[GUARD_PATH_MAX - 1] = 0;
    }
    return CompareStringOrdinal(p, -1, want, -1, TRUE) == CSTR_EQUAL;
}

int aipc__guard_config_read(const wchar_t *config_path, char **text, int *missing, char *err,
                           size_t errlen)
{
    *text = NULL;
    *missing = 0;
    aipc__trust t;
    if (aipc__trust_init(&t, true) != 0) {
        snprintf(err, errlen, "cannot build the list of trusted accounts");
        return -1;
    }
    char up[GUARD_PATH_MAX];
    to_utf8(config_path, up, sizeof up);
    int rc = 0;
    /* Opened once, the link itself if it is one: what is checked is what is read. */
    HANDLE h = CreateFileW(config_path, GENERIC_READ | READ_CONTROL,
                           FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                           FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD er = GetLastError();
        if (is_absent(er)) {
            *missing = 1;
        } else {
            snprintf(err, errlen, "config file %s: refused in service mode: it cannot be opened "
                     "(error %lu)", up, (unsigned long)er);
            rc = -1;
        }
    } else {
        BY_HANDLE_FILE_INFORMATION fi;
        wchar_t got[GUARD_PATH_MAX];
        rc = audit_handle(h, config_path, &t, "config file", err, errlen);
        if (rc == 0 && GetFileInformationByHandle(h, &fi)) {
            if (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
                snprintf(err, errlen, "config file %s: refused in service mode: it is a folder",
                         up);
                rc = -1;
            } else if (fi.nNumberOfLinks > 1) {
                snprintf(err, errlen, "config file %s: refused in service mode: it has %lu names "
                         "(hard links): another name may be in a folder others control", up,
                         (unsigned long)fi.nNumberOfLinks);
                rc = -1;
            }
        }
        if (rc == 0 && !final_path_is(h, config_path, got, GUARD_PATH_MAX)) {
            char ug[GUARD_PATH_MAX];
            to_utf8(got, ug, sizeof ug);
            snprintf(err, errlen, "config file %s: refused in service mode: it was reached as "
                     "\"%s\" (a parent folder is a link or was replaced)", up,
                     ug[0] ? ug : "(unknown)");
            rc = -1;
        }
    }
    /* its folder and every folder above it */
    wchar_t dir[GUARD_PATH_MAX];
    if (rc == 0 && wcslen(config_path) < GUARD_PATH_MAX) {
        wcscpy(dir, config_path);
        if (parent_of(dir) && wcslen(dir) > root_len(dir)) {
            size_t absent_at = 0;
            int a = audit_path(dir, &t, "config folder", err, errlen);
            if (a < 0)
                rc = -1;
            else if (check_ancestors(dir, &t, "config file", err, errlen, &absent_at) < 0)
                rc = -1;
        }
    }
    /* the contents, through the handle that was checked */
    if (rc == 0 && h != INVALID_HANDLE_VALUE) {
        LARGE_INTEGER sz;
        char *buf = NULL;
        DWORD got = 0;
        if (GetFileSizeEx(h, &sz) && sz.QuadPart < (1 << 20) &&
            (buf = malloc((size_t)sz.QuadPart + 1)) &&
            ReadFile(h, buf, (DWORD)sz.QuadPart, &got, NULL) && got == sz.QuadPart) {
            buf[got] = 0;
            *text = buf;
        } else {
            free(buf);
            snprintf(err, errlen, "cannot read config file %s (error %lu)", up,
                     (unsigned long)ERROR_INVALID_DATA);
            rc = -1;
        }
    }
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    aipc__trust_free(&t);
    return rc;
}

int aipc__guard_config(const wchar_t *config_path, char *err, size_t errlen)
{
    char *text = NULL;
    int missing = 0;
    int rc = aipc__guard_config_read(config_path, &text, &missing, err, errlen);
    free(text);
    return rc;
}

/* D:P with full control for SYSTEM, Administrators and the broker's own account, inherited by
 * what is created inside. */
static PSECURITY_DESCRIPTOR protected_folder_sd(void)
{
    DWORD er = 0;
    return aipc__sec_descriptor(L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%U)", NULL, &er);
}

/* The installers' descriptor for %ProgramData%\AsyncIPC\logs (installer/secure.c): owner
 * Administrators, protected, SYSTEM and Administrators full control, the service modify. */
static PSECURITY_DESCRIPTOR installer_logs_sd(void)
{
    PSID svc = aipc__sec_service_sid(AIPC_SEC_BROKER_SERVICE);
    wchar_t *ss = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (svc && ConvertSidToStringSidW(svc, &ss)) {
        wchar_t sddl[300];
        _snwprintf(sddl, 300, L"O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;%ls)",
                   ss);
        sddl[299] = 0;
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd,
                                                                  NULL))
            sd = NULL;
        LocalFree(ss);
    }
    free(svc);
    return sd;
}

/* %ProgramData%\AsyncIPC into out, or "" */
static void data_folder(wchar_t *out, size_t cap)
{
    wchar_t pd[MAX_PATH];
    out[0] = 0;
    if (SUCCEEDED(SHGetFolderPathW(NULL, CSIDL_COMMON_APPDATA, NULL, 0, pd))) {
        _snwprintf(out, cap, L"%ls\\AsyncIPC", pd);
        out[cap - 1] = 0;
    }
}

static bool same_path(const wchar_t *a, const wchar_t *b)
{
    return a[0] && b[0] && CompareStringOrdinal(a, -1, b, -1, TRUE) == CSTR_EQUAL;
}

/* Creates the missing folders of dir (deepest last) with a protected DACL. A folder that
 * appears meanwhile is left to the audit that follows. The data folder %ProgramData%\AsyncIPC
 * is never created here (the installers create and protect it); its `logs` is created with the
 * installers' descriptor, so that their later checks accept it. */
static int create_folders(const wchar_t *dir, char *err, size_t errlen)
{
    if (GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES)
        return 0;
    char up[GUARD_PATH_MAX];
    to_utf8(dir, up, sizeof up);
    wchar_t data[GUARD_PATH_MAX], logs[GUARD_PATH_MAX + 8];
    data_folder(data, GUARD_PATH_MAX);
    _snwprintf(logs, GUARD_PATH_MAX + 8, L"%ls\\logs", data);
    logs[GUARD_PATH_MAX + 7] = 0;
    if (same_path(dir, data)) {
        snprintf(err, errlen, "data folder %s does not exist: a service does not create it; run "
                 "the installer (install.cmd or the setup program), which creates and protects "
                 "it", up);
        return -1;
    }
    wchar_t parent[GUARD_PATH_MAX];
    wcscpy(parent, dir);
    if (parent_of(parent) && wcslen(parent) > root_len(parent) &&
        create_folders(parent, err, errlen) != 0)
        return -1;
    bool is_logs = same_path(dir, logs);
    PSECURITY_DESCRIPTOR sd = is_logs ? installer_logs_sd() : protected_folder_sd();
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    BOOL ok = sd && CreateDirectoryW(dir, &sa);
    DWORD er = ok ? 0 : sd ? GetLastError() : ERROR_NOT_ENOUGH_MEMORY;
    if (sd)
        LocalFree(sd);
    if (!ok && er != ERROR_ALREADY_EXISTS) {
        if (is_logs && er == ERROR_INVALID_OWNER)
            snprintf(err, errlen, "log folder %s: cannot create it owned by Administrators, as "
                     "the installers do (error %lu: the service's account may not name that "
                     "owner); run the installer, which creates and protects it", up,
                     (unsigned long)er);
        else
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

int aipc__guard_reparse_walk(const wchar_t *path, DWORD (*attrs)(const wchar_t *, void *),
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

int aipc__guard_log(const char *log_path_utf8, char *err, size_t errlen)
{
    wchar_t path[GUARD_PATH_MAX], cur[GUARD_PATH_MAX];
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, log_path_utf8, -1, path,
                             GUARD_PATH_MAX)) {
        snprintf(err, errlen, "log file %s: not a usable path", log_path_utf8);
        return -1;
    }
    /* No component below the root may redirect. */
    if (aipc__guard_reparse_walk(path, real_attrs, NULL, cur, GUARD_PATH_MAX) != 0) {
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
    /* Again, now that the folders exist: what was checked before may have been swapped while
     * they were created. */
    if (aipc__guard_reparse_walk(path, real_attrs, NULL, cur, GUARD_PATH_MAX) != 0) {
        char up[GUARD_PATH_MAX];
        to_utf8(cur, up, sizeof up);
        snprintf(err, errlen, "log file %s: refused in service mode: %s is a reparse point "
                 "(junction or link)", log_path_utf8, up);
        return -1;
    }
    aipc__trust t;
    if (aipc__trust_init(&t, true) != 0) {
        snprintf(err, errlen, "cannot build the list of trusted accounts");
        return -1;
    }
    /* Every folder above the log's must be one nobody else can rename or re-permission (the
     * log is opened by path afterwards: the path must hold still). */
    size_t absent_at = 0;
    int rc = check_ancestors(dir, &t, "log file", err, errlen, &absent_at);
    if (rc == 1) {
        char up[GUARD_PATH_MAX];
        dir[absent_at] = 0;
        to_utf8(dir, up, sizeof up);
        snprintf(err, errlen, "log file %s: refused in service mode: folder %s disappeared "
                 "while it was checked", log_path_utf8, up);
        rc = -1;
    }
    if (rc == 0) {
        rc = audit_path(dir, &t, "log folder", err, errlen);
        if (rc == 1) {
            char up[GUARD_PATH_MAX];
            to_utf8(dir, up, sizeof up);
            snprintf(err, errlen, "log folder %s: refused in service mode: it disappeared "
                     "while it was checked", up);
            rc = -1;
        }
    }
    if (rc >= 0)
        rc = audit_path(path, &t, "log file", err, errlen);
    aipc__trust_free(&t);
    return rc < 0 ? -1 : 0;
}
