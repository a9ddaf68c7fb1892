/*
 * asyncipc-secure.exe - the file-system protection of AsyncIPC's installers. install.cmd,
 * uninstall.cmd and the NSIS setup program run it elevated (the setup program from its
 * temporary plug-in folder); it is not installed. The security descriptors below are the only
 * place where the installers' access rights are written down; `show` prints them as built.
 *
 *   asyncipc-secure data DIR           DIR = %ProgramData%\AsyncIPC. Creates DIR and DIR\logs with
 *                                      their descriptors, or checks and re-protects existing ones;
 *                                      what is inside gets the rights it inherits from them, and
 *                                      what the installing user's own account owns goes to
 *                                      Administrators. Run again after writing broker.json.
 *   asyncipc-secure install DIR PF     the installation folder. Inside PF (Program Files) nothing
 *                                      is done (it inherits Program Files' ACL); elsewhere DIR
 *                                      (and missing parents) is created protected, or an existing
 *                                      one is checked and protected.
 *   asyncipc-secure purge DIR          before the caller deletes DIR: checks its owner, locks it,
 *                                      and refuses when it holds a reparse point. 0 also when DIR
 *                                      does not exist.
 *   asyncipc-secure show               prints the service SID and every descriptor (SDDL).
 *   asyncipc-secure stop-service | replace | path-add | path-remove
 *                                      the installers' other chores: setup_ops.c.
 *
 * Exit codes: 0 done, 1 usage, 3 refused (stderr names the path, the reason and what to do),
 * 4 system error (5: setup_ops.c).
 *
 * Rules (docs/security.md "Installation: folders, service account, tools" explains them):
 *  - "trusted" owners: Administrators, SYSTEM, TrustedInstaller and the user running this
 *    program (an elevated administrator); below DIR\logs also the service's account, which
 *    creates the log files. Anything else was created by someone who is not an administrator.
 *  - Every existing item is opened with FILE_FLAG_OPEN_REPARSE_POINT and checked and changed
 *    through that handle: a reparse point (junction, symbolic link, mount point) is refused,
 *    never followed; a file with more than one name (hard link) is refused.
 *  - Descriptors are written with SetKernelObjectSecurity (no automatic propagation through the
 *    tree); the items below get their inherited rights one by one, each through its own handle,
 *    after the whole tree has been checked.
 *  - Every parent folder must be a plain folder, have a trusted owner, and grant nobody else
 *    DELETE, FILE_DELETE_CHILD, WRITE_DAC, WRITE_OWNER or GENERIC_ALL: otherwise a user could
 *    rename a parent away and put a folder of their own in its place.
 */
#include "setup_ops.h"

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* NT SERVICE\AsyncIPCBroker: S-1-5-80- followed by the SHA-1 of the upper-case service name
 * (UTF-16LE) as five little-endian 32-bit numbers; `sc.exe showsid AsyncIPCBroker` prints it.
 * The installer tests derive it independently and compare. */
#define SERVICE_SID L"S-1-5-80-1367493681-2980605409-3874299912-3683937316-105123856"
#define TRUSTED_INSTALLER_SID L"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

/* The descriptors. FA = FILE_ALL_ACCESS; 0x1200a9 = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE
 * (icacls "RX"); 0x1301bf = that | FILE_GENERIC_WRITE | DELETE (icacls "M", modify). "P" protects
 * the DACL from the parent's ACEs; OICI makes each entry inherited by files and folders below.
 *  data:    %ProgramData%\AsyncIPC - the service reads its config; users get nothing.
 *  logs:    %ProgramData%\AsyncIPC\logs - the service creates and appends its log files.
 *  install: an installation folder outside Program Files - users (and the service, a member of
 *           Users) read and run the programs; nobody but administrators can change them. */
static const wchar_t SDDL_DATA[] =
    L"O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;" SERVICE_SID L")";
static const wchar_t SDDL_LOGS[] =
    L"O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" SERVICE_SID L")";
static const wchar_t SDDL_INSTALL[] =
    L"O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)";

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_REFUSED = 3, EXIT_SYSTEM = 4 };

/* Rights on a parent folder that would let their holder replace what is below it. */
#define PARENT_DANGER (DELETE | FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER | GENERIC_ALL)
#define MAX_DEPTH 16
#define PATH_CAP 1024

/* A descriptor built from SDDL: the self-relative form and its parts. */
typedef struct descr {
    const wchar_t *name;
    const wchar_t *sddl;
    PSECURITY_DESCRIPTOR sd;    /* LocalAlloc'd */
    PSID owner;                 /* inside sd */
    PACL dacl;                  /* inside sd */
} descr;

/* The rights an item inherits from a folder with a descr, built in place (absolute form). */
typedef struct inherited {
    SECURITY_DESCRIPTOR sd;
    union { ACL acl; BYTE buf[1024]; } u;
} inherited;

/* What one handle tells about its object. */
typedef struct obj_info {
    DWORD attrs;
    DWORD links;
    PSID owner;                 /* inside sd */
    PACL dacl;                  /* inside sd */
    PSECURITY_DESCRIPTOR sd;    /* LocalAlloc'd by GetSecurityInfo */
} obj_info;

static descr g_data = { L"data", SDDL_DATA, NULL, NULL, NULL };
static descr g_logs = { L"logs", SDDL_LOGS, NULL, NULL, NULL };
static descr g_install = { L"install", SDDL_INSTALL, NULL, NULL, NULL };
static PSID g_sid_ba, g_sid_sy, g_sid_ti, g_sid_svc, g_sid_user;

/* Prints one refusal (stderr) and returns EXIT_REFUSED. */
static int refuse(const wchar_t *path, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "asyncipc-secure: refused: \"%ls\" ", path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return EXIT_REFUSED;
}

/* Prints a failed system call (stderr) and returns EXIT_SYSTEM. */
static int sys_error(const char *what, const wchar_t *path, DWORD er)
{
    char msg[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, er, 0, msg,
                   sizeof msg, NULL);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r' || msg[l - 1] == ' '))
        msg[--l] = 0;
    fprintf(stderr, "asyncipc-secure: %s \"%ls\" failed: error %lu %s\n", what, path ? path : L"",
            (unsigned long)er, msg);
    return EXIT_SYSTEM;
}

/* The SID as text for messages (a static buffer: one call per message). */
static const char *sid_text(PSID sid)
{
    static char buf[256];
    wchar_t *s = NULL;
    if (!sid || !ConvertSidToStringSidW(sid, &s))
        return "(no owner)";
    WideCharToMultiByte(CP_UTF8, 0, s, -1, buf, sizeof buf, NULL, NULL);
    LocalFree(s);
    return buf;
}

/* Enables the privileges an elevated administrator holds but has disabled: restore and
 * take-ownership let us set the owner and DACL of objects whose DACL denies us, backup lets us
 * read any descriptor. Missing ones are not an error here (the calls that need them fail). */
static void enable_privileges(void)
{
    static const wchar_t *const names[] = { SE_RESTORE_NAME, SE_BACKUP_NAME,
                                            SE_TAKE_OWNERSHIP_NAME };
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok))
        return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        TOKEN_PRIVILEGES tp = { 1, { { { 0, 0 }, SE_PRIVILEGE_ENABLED } } };
        if (LookupPrivilegeValueW(NULL, names[i], &tp.Privileges[0].Luid))
            AdjustTokenPrivileges(tok, FALSE, &tp, 0, NULL, NULL);
    }
    CloseHandle(tok);
}

/* The SID of the user running this program (LocalAlloc'd copy), or NULL. */
static PSID current_user_sid(void)
{
    HANDLE tok;
    PSID out = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return NULL;
    DWORD need = 0;
    GetTokenInformation(tok, TokenUser, NULL, 0, &need);
    TOKEN_USER *tu = need ? malloc(need) : NULL;
    if (tu && GetTokenInformation(tok, TokenUser, tu, need, &need)) {
        DWORD n = GetLengthSid(tu->User.Sid);
        out = LocalAlloc(LMEM_FIXED, n);
        if (out)
            CopySid(n, out, tu->User.Sid);
    }
    free(tu);
    CloseHandle(tok);
    return out;
}

/* Builds a descriptor from its SDDL; 0 or EXIT_SYSTEM. */
static int descr_init(descr *d)
{
    BOOL present = FALSE, defaulted = FALSE;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(d->sddl, SDDL_REVISION_1, &d->sd,
                                                              NULL))
        return sys_error("building the descriptor", d->name, GetLastError());
    if (!GetSecurityDescriptorOwner(d->sd, &d->owner, &defaulted) || !d->owner ||
        !GetSecurityDescriptorDacl(d->sd, &present, &d->dacl, &defaulted) || !present || !d->dacl)
        return sys_error("reading the descriptor", d->name, ERROR_INVALID_SECURITY_DESCR);
    return 0;
}

/* Sets up the SIDs and descriptors; 0 or EXIT_SYSTEM. */
static int init(void)
{
    if (!ConvertStringSidToSidW(L"BA", &g_sid_ba) || !ConvertStringSidToSidW(L"SY", &g_sid_sy) ||
        !ConvertStringSidToSidW(TRUSTED_INSTALLER_SID, &g_sid_ti) ||
        !ConvertStringSidToSidW(SERVICE_SID, &g_sid_svc))
        return sys_error("building the SIDs", NULL, GetLastError());
    g_sid_user = current_user_sid();
    if (!g_sid_user)
        return sys_error("reading this process's user", NULL, GetLastError());
    int rc = descr_init(&g_data);
    if (rc == 0)
        rc = descr_init(&g_logs);
    if (rc == 0)
        rc = descr_init(&g_install);
    return rc;
}

/* An owner nobody but an administrator (or, with_service, the service) can have set. */
static int trusted_owner(PSID sid, int with_service)
{
    return sid && IsValidSid(sid) &&
           (EqualSid(sid, g_sid_ba) || EqualSid(sid, g_sid_sy) || EqualSid(sid, g_sid_ti) ||
            EqualSid(sid, g_sid_user) || (with_service && EqualSid(sid, g_sid_svc)));
}

/* SIDs whose ACEs on a parent are harmless: the trusted owners, and the placeholders
 * CREATOR OWNER / CREATOR GROUP / OWNER RIGHTS (only meaningful when inherited, or standing
 * for the owner, who is checked separately). */
static int harmless_ace_sid(PSID sid)
{
    static SID_IDENTIFIER_AUTHORITY creator = { SECURITY_CREATOR_SID_AUTHORITY };
    if (trusted_owner(sid, 0))
        return 1;
    return memcmp(GetSidIdentifierAuthority(sid), &creator, sizeof creator) == 0;
}

/* Opens an existing file or folder itself (never what a reparse point points to). */
static HANDLE open_obj(const wchar_t *path, DWORD access, DWORD *er)
{
    HANDLE h = CreateFileW(path, READ_CONTROL | FILE_READ_ATTRIBUTES | access,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
                           NULL);
    *er = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    return h;
}

/* Attributes, link count, owner and DACL of an open object; 0 or a Win32 error. The path's
 * own attributes add their reparse-point bit (belt and braces: the handle is authoritative on
 * Windows; some emulations report the bit only by name). */
static DWORD inspect(HANDLE h, const wchar_t *path, obj_info *oi)
{
    BY_HANDLE_FILE_INFORMATION fi;
    memset(oi, 0, sizeof *oi);
    if (!GetFileInformationByHandle(h, &fi))
        return GetLastError();
    oi->attrs = fi.dwFileAttributes;
    DWORD by_name = GetFileAttributesW(path);
    if (by_name != INVALID_FILE_ATTRIBUTES)
        oi->attrs |= by_name & FILE_ATTRIBUTE_REPARSE_POINT;
    oi->links = fi.nNumberOfLinks;
    return GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                           &oi->owner, NULL, &oi->dacl, NULL, &oi->sd);
}

static void info_free(obj_info *oi)
{
    if (oi->sd)
        LocalFree(oi->sd);
    oi->sd = NULL;
}

/* Refuses reparse points, untrusted owners and files with more than one name. */
static int check_item(const wchar_t *path, const obj_info *oi, int with_service)
{
    if (oi->attrs & FILE_ATTRIBUTE_REPARSE_POINT)
        return refuse(path, "is a reparse point (junction, symbolic link or mount point), which "
                            "setup never follows. Remove it and run setup again.");
    if (!trusted_owner(oi->owner, with_service))
        return refuse(path, "is owned by %s, not by Administrators, SYSTEM, TrustedInstaller or "
                            "you: someone who is not an administrator created it. Check it, "
                            "delete it, and run setup again.", sid_text(oi->owner));
    if (!(oi->attrs & FILE_ATTRIBUTE_DIRECTORY) && oi->links > 1)
        return refuse(path, "has %lu names (hard links): writing to it would change another "
                            "file. Delete it and run setup again.", (unsigned long)oi->links);
    return 0;
}

/* The DACL an item created in a folder with descriptor `parent` would get: every ACE that is
 * inherited by that kind of item, marked inherited (ID). */
static int build_inherited(const descr *parent, int is_dir, inherited *out)
{
    if (!InitializeSecurityDescriptor(&out->sd, SECURITY_DESCRIPTOR_REVISION) ||
        !InitializeAcl(&out->u.acl, sizeof out->u.buf, ACL_REVISION))
        return sys_error("building the inherited descriptor", parent->name, GetLastError());
    for (DWORD i = 0; i < parent->dacl->AceCount; i++) {
        ACE_HEADER *h;
        if (!GetAce(parent->dacl, i, (void **)&h) || h->AceType != ACCESS_ALLOWED_ACE_TYPE)
            return sys_error("reading the descriptor", parent->name, ERROR_INVALID_ACL);
        ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
        BYTE want = is_dir ? CONTAINER_INHERIT_ACE : OBJECT_INHERIT_ACE;
        if (!(h->AceFlags & want))
            continue;
        BYTE flags = INHERITED_ACE;
        if (is_dir && !(h->AceFlags & NO_PROPAGATE_INHERIT_ACE))
            flags |= h->AceFlags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE);
        if (!AddAccessAllowedAceEx(&out->u.acl, ACL_REVISION, flags, a->Mask, (PSID)&a->SidStart))
            return sys_error("building the inherited descriptor", parent->name, GetLastError());
    }
    if (!SetSecurityDescriptorDacl(&out->sd, TRUE, &out->u.acl, FALSE) ||
        !SetSecurityDescriptorControl(&out->sd, SE_DACL_AUTO_INHERITED | SE_DACL_PROTECTED,
                                      SE_DACL_AUTO_INHERITED))
        return sys_error("building the inherited descriptor", parent->name, GetLastError());
    return 0;
}

/* Prints a descriptor as SDDL (owner and DACL), as the system sees the built one. */
static int print_sd(const char *key, PSECURITY_DESCRIPTOR sd)
{
    wchar_t *text = NULL;
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd, SDDL_REVISION_1, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &text,
            NULL))
        return sys_error("converting the descriptor", NULL, GetLastError());
    printf("%s=%ls\n", key, text);
    LocalFree(text);
    return 0;
}

/* Writes owner and protected DACL of d through h. SetKernelObjectSecurity (NtSetSecurityObject)
 * sets exactly this object: no path look-up and none of the automatic propagation through the
 * tree that SetSecurityInfo/SetNamedSecurityInfo do (which would walk into whatever the tree
 * holds before it has been checked); that is also why Microsoft recommends those for files,
 * and why walk() gives every item below its inherited rights itself. The protection is passed
 * both ways, as the descriptor's SE_DACL_PROTECTED bit and as PROTECTED_DACL_SECURITY_INFORMATION. */
static int protect_handle(HANDLE h, const wchar_t *path, const descr *d)
{
    if (!SetKernelObjectSecurity(h, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION |
                                        PROTECTED_DACL_SECURITY_INFORMATION, d->sd))
        return sys_error("protecting", path, GetLastError());
    printf("asyncipc-secure: protected \"%ls\" (%ls): %ls\n", path, d->name, d->sddl);
    return 0;
}

/* Joins dir and name into out (PATH_CAP); 0 or -1 when too long. */
static int join(wchar_t *out, const wchar_t *dir, const wchar_t *name)
{
    int n = _snwprintf(out, PATH_CAP, L"%ls\\%ls", dir, name);
    return n < 0 || n >= PATH_CAP ? -1 : 0;
}

/* Walks the tree below dir (which is already locked). mode CHECK: every item must pass
 * check_item (items below service_dir may be owned by the service); mode REPARSE: only reparse
 * points are refused; mode RESET: every item except `skip` gets the rights it inherits (from
 * `parent`, or from g_logs below service_dir), through its own handle. */
enum { WALK_CHECK, WALK_REPARSE, WALK_RESET };
static int walk(const wchar_t *dir, int mode, const descr *parent, const wchar_t *service_dir,
                const wchar_t *skip, int depth)
{
    if (depth > MAX_DEPTH)
        return refuse(dir, "is nested more than %d folders deep; setup expects a flat tree.",
                      MAX_DEPTH);
    wchar_t pattern[PATH_CAP];
    if (join(pattern, dir, L"*") != 0)
        return refuse(dir, "is too long a path.");
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pattern, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD er = GetLastError();
        return er == ERROR_FILE_NOT_FOUND ? 0 : sys_error("listing", dir, er);
    }
    int rc = 0;
    do {
        if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
            continue;
        wchar_t path[PATH_CAP];
        if (join(path, dir, fd.cFileName) != 0) {
            rc = refuse(dir, "holds a path that is too long.");
            break;
        }
        int below_service = service_dir && _wcsnicmp(path, service_dir, wcslen(service_dir)) == 0 &&
                            path[wcslen(service_dir)] == L'\\';
        int is_skip = skip && _wcsicmp(path, skip) == 0;
        DWORD er;
        HANDLE h = open_obj(path, mode == WALK_RESET && !is_skip ? WRITE_DAC | WRITE_OWNER : 0, &er);
        if (h == INVALID_HANDLE_VALUE) {
            rc = sys_error("opening", path, er);
            break;
        }
        obj_info oi;
        er = inspect(h, path, &oi);
        if (er) {
            CloseHandle(h);
            rc = sys_error("reading the security of", path, er);
            break;
        }
        int is_dir = (oi.attrs & FILE_ATTRIBUTE_DIRECTORY) != 0;
        if (mode == WALK_REPARSE) {
            if (oi.attrs & FILE_ATTRIBUTE_REPARSE_POINT)
                rc = refuse(path, "is a reparse point (junction, symbolic link or mount point); "
                                  "remove it by hand first.");
        } else {
            /* RESET re-checks through the handle it writes with. */
            rc = check_item(path, &oi, below_service);
        }
        if (rc == 0 && mode == WALK_RESET && !is_skip) {
            inherited in;
            const descr *from = below_service ? &g_logs : parent;
            rc = build_inherited(from, is_dir, &in);
            /* An item the installing administrator's own account owns (the "object creator"
             * default-owner policy) goes to Administrators: the service trusts well-known
             * owners and its own account, not one administrator's user. */
            SECURITY_INFORMATION si = DACL_SECURITY_INFORMATION | UNPROTECTED_DACL_SECURITY_INFORMATION;
            if (rc == 0 && EqualSid(oi.owner, g_sid_user) && !EqualSid(oi.owner, g_sid_ba) &&
                !EqualSid(oi.owner, g_sid_sy) && !EqualSid(oi.owner, g_sid_ti) &&
                SetSecurityDescriptorOwner(&in.sd, g_sid_ba, FALSE))
                si |= OWNER_SECURITY_INFORMATION;
            if (rc == 0 && !SetKernelObjectSecurity(h, si, &in.sd))
                rc = sys_error("resetting the rights of", path, GetLastError());
        }
        info_free(&oi);
        CloseHandle(h);
        if (rc == 0 && is_dir && !(oi.attrs & FILE_ATTRIBUTE_REPARSE_POINT))
            rc = walk(path, mode, parent, service_dir, skip, depth + 1);
    } while (rc == 0 && FindNextFileW(f, &fd));
    FindClose(f);
    return rc;
}

/* Full path of p (no trailing backslash except for a root) into out; refuses what is not a
 * local drive path (X:\...). */
static int full_path(const wchar_t *p, wchar_t *out)
{
    DWORD n = GetFullPathNameW(p, PATH_CAP, out, NULL);
    if (!n || n >= PATH_CAP)
        return refuse(p, "is not a valid path.");
    if (!(((out[0] | 0x20) >= L'a' && (out[0] | 0x20) <= L'z') && out[1] == L':' && out[2] == L'\\'))
        return refuse(out, "is not a local drive path like C:\\Folder.");
    while (n > 3 && out[n - 1] == L'\\')
        out[--n] = 0;
    return 0;
}

/* Checks every existing parent of path (root first). *missing is set to the length of the first
 * parent that does not exist (0 when they all exist). */
static int check_parents(const wchar_t *path, size_t *missing)
{
    *missing = 0;
    size_t len = wcslen(path);
    for (size_t i = 2; i < len; i++) {
        if (path[i] != L'\\')
            continue;
        wchar_t parent[PATH_CAP];
        size_t plen = i == 2 ? 3 : i;     /* "C:\" for the root */
        wmemcpy(parent, path, plen);
        parent[plen] = 0;
        DWORD er;
        HANDLE h = open_obj(parent, 0, &er);
        if (h == INVALID_HANDLE_VALUE) {
            if (er == ERROR_FILE_NOT_FOUND || er == ERROR_PATH_NOT_FOUND) {
                *missing = plen;
                return 0;
            }
            return sys_error("opening", parent, er);
        }
        obj_info oi;
        er = inspect(h, parent, &oi);
        CloseHandle(h);
        if (er)
            return sys_error("reading the security of", parent, er);
        int rc = 0;
        if (!(oi.attrs & FILE_ATTRIBUTE_DIRECTORY))
            rc = refuse(parent, "is not a folder.");
        else if (plen > 3 && (oi.attrs & FILE_ATTRIBUTE_REPARSE_POINT))
            rc = refuse(parent, "is a reparse point (junction, symbolic link or mount point); "
                                "give the folder's real path.");
        else if (!trusted_owner(oi.owner, 0))
            rc = refuse(parent, "is owned by %s: its owner can rename it and put a folder of "
                                "their own in its place. Choose another folder.",
                        sid_text(oi.owner));
        else if (!oi.dacl)
            rc = refuse(parent, "has no DACL (everyone has full control). Choose another folder.");
        for (DWORD k = 0; rc == 0 && k < oi.dacl->AceCount; k++) {
            ACE_HEADER *ah;
            if (!GetAce(oi.dacl, k, (void **)&ah) || ah->AceType != ACCESS_ALLOWED_ACE_TYPE ||
                (ah->AceFlags & INHERIT_ONLY_ACE))
                continue;
            ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)ah;
            DWORD m = a->Mask & PARENT_DANGER;
            if (plen == 3)
                m &= ~DELETE;   /* a drive's root cannot be renamed */
            if (m && !harmless_ace_sid((PSID)&a->SidStart))
                rc = refuse(parent, "grants %s the rights 0x%lx (delete, delete child, change "
                                    "permissions or owner): that user could rename it and put a "
                                    "folder of their own in its place. Choose another folder.",
                            sid_text((PSID)&a->SidStart), (unsigned long)m);
        }
        info_free(&oi);
        if (rc)
            return rc;
    }
    return 0;
}

/* Creates path with descriptor d (atomically: the folder never exists with other rights).
 * *created = 0 when it already existed. */
static int create_dir(const wchar_t *path, const descr *d, int *created)
{
    SECURITY_ATTRIBUTES sa = { sizeof sa, d->sd, FALSE };
    *created = 0;
    if (CreateDirectoryW(path, &sa)) {
        *created = 1;
        printf("asyncipc-secure: created \"%ls\" (%ls): %ls\n", path, d->name, d->sddl);
        return 0;
    }
    DWORD er = GetLastError();
    return er == ERROR_ALREADY_EXISTS ? 0 : sys_error("creating", path, er);
}

/* Opens an existing folder for protecting, checks it (check_item) and writes d through the same
 * handle. */
static int protect_existing(const wchar_t *path, const descr *d)
{
    DWORD er;
    HANDLE h = open_obj(path, WRITE_DAC | WRITE_OWNER, &er);
    if (h == INVALID_HANDLE_VALUE)
        return sys_error("opening", path, er);
    obj_info oi;
    er = inspect(h, path, &oi);
    int rc = er ? sys_error("reading the security of", path, er) : check_item(path, &oi, 0);
    if (rc == 0 && !(oi.attrs & FILE_ATTRIBUTE_DIRECTORY))
        rc = refuse(path, "is a file, not a folder. Remove it and run setup again.");
    if (rc == 0)
        rc = protect_handle(h, path, d);
    info_free(&oi);
    CloseHandle(h);
    return rc;
}

/* Creates dir with d, or checks and re-protects the existing one. */
static int create_or_protect(const wchar_t *dir, const descr *d, int *created)
{
    int rc = create_dir(dir, d, created);
    if (rc == 0 && !*created)
        rc = protect_existing(dir, d);
    return rc;
}

/* `data DIR`: %ProgramData%\AsyncIPC and its logs folder. */
static int cmd_data(const wchar_t *arg)
{
    wchar_t dir[PATH_CAP], logs[PATH_CAP];
    size_t missing;
    int created, rc = full_path(arg, dir);
    if (rc == 0)
        rc = check_parents(dir, &missing);
    if (rc == 0 && missing) {
        wchar_t parent[PATH_CAP];
        wmemcpy(parent, dir, missing);
        parent[missing] = 0;
        return refuse(parent, "does not exist.");
    }
    if (rc == 0 && join(logs, dir, L"logs") != 0)
        rc = refuse(dir, "is too long a path.");
    /* The folder first: once it is protected, nobody but administrators (and the service, in
     * logs) can add or change anything inside, so the checks below see a tree that holds still. */
    if (rc == 0)
        rc = create_or_protect(dir, &g_data, &created);
    if (rc == 0)
        rc = walk(dir, WALK_CHECK, &g_data, logs, NULL, 0);
    if (rc == 0)
        rc = create_or_protect(logs, &g_logs, &created);
    if (rc == 0)
        rc = walk(dir, WALK_RESET, &g_data, logs, logs, 0);
    return rc;
}

/* True when dir holds nothing, or an AsyncIPC installation (bin\asyncipc-broker.exe), or only
 * the uninstall.exe an uninstaller leaves when it runs in place. */
static int empty_or_ours(const wchar_t *dir)
{
    wchar_t p[PATH_CAP];
    if (join(p, dir, L"bin\\asyncipc-broker.exe") == 0 &&
        GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES)
        return 1;
    if (join(p, dir, L"*") != 0)
        return 0;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(p, &fd);
    if (f == INVALID_HANDLE_VALUE)
        return 1;
    int ok = 1;
    do {
        if (wcscmp(fd.cFileName, L".") && wcscmp(fd.cFileName, L"..") &&
            _wcsicmp(fd.cFileName, L"uninstall.exe"))
            ok = 0;
    } while (ok && FindNextFileW(f, &fd));
    FindClose(f);
    return ok;
}

/* `install DIR PF`: the installation folder. */
static int cmd_install(const wchar_t *arg, const wchar_t *pf_arg)
{
    wchar_t dir[PATH_CAP], pf[PATH_CAP];
    int rc = full_path(arg, dir);
    if (rc == 0)
        rc = full_path(pf_arg, pf);
    if (rc)
        return rc;
    size_t pl = wcslen(pf);
    if (_wcsnicmp(dir, pf, pl) == 0 && dir[pl] == L'\\' && dir[pl + 1]) {
        printf("asyncipc-secure: \"%ls\" is inside \"%ls\" and keeps the rights it inherits from "
               "there\n", dir, pf);
        return 0;
    }
    if (_wcsicmp(dir, pf) == 0)
        return refuse(dir, "is the Program Files folder itself; choose a folder of its own.");
    if (wcslen(dir) <= 3)
        return refuse(dir, "is a drive's root; choose a folder of its own.");
    size_t missing;
    rc = check_parents(dir, &missing);
    if (rc)
        return rc;
    /* Missing parents are created protected too: a folder created with the drive's default
     * rights could be renamed by users (Authenticated Users may modify subfolders of a root). */
    for (size_t i = missing; missing && i < wcslen(dir); i++) {
        if (dir[i] != L'\\')
            continue;
        wchar_t parent[PATH_CAP];
        int created;
        wmemcpy(parent, dir, i);
        parent[i] = 0;
        rc = create_or_protect(parent, &g_install, &created);
        if (rc)
            return rc;
    }
    int created;
    rc = create_dir(dir, &g_install, &created);
    if (rc == 0 && !created) {
        /* Check the folder through a handle before anything else looks inside it. */
        DWORD er;
        HANDLE h = open_obj(dir, 0, &er);
        if (h == INVALID_HANDLE_VALUE)
            return sys_error("opening", dir, er);
        obj_info oi;
        er = inspect(h, dir, &oi);
        CloseHandle(h);
        rc = er ? sys_error("reading the security of", dir, er) : check_item(dir, &oi, 0);
        info_free(&oi);
        if (rc == 0 && !empty_or_ours(dir))
            rc = refuse(dir, "is not empty and holds no AsyncIPC installation; setup would take "
                             "over its permissions. Choose an empty or new folder.");
        if (rc == 0)
            rc = protect_existing(dir, &g_install);
        if (rc == 0)
            rc = walk(dir, WALK_CHECK, &g_install, NULL, NULL, 0);
        if (rc == 0)
            rc = walk(dir, WALK_RESET, &g_install, NULL, NULL, 0);
    }
    return rc;
}

/* `purge DIR`: lock and check DIR before the caller deletes the whole tree. */
static int cmd_purge(const wchar_t *arg)
{
    wchar_t dir[PATH_CAP];
    int rc = full_path(arg, dir);
    if (rc)
        return rc;
    DWORD er;
    HANDLE h = open_obj(dir, 0, &er);
    if (h == INVALID_HANDLE_VALUE) {
        if (er == ERROR_FILE_NOT_FOUND || er == ERROR_PATH_NOT_FOUND) {
            printf("asyncipc-secure: \"%ls\" does not exist\n", dir);
            return 0;
        }
        return sys_error("opening", dir, er);
    }
    CloseHandle(h);
    rc = protect_existing(dir, &g_data);
    if (rc == 0)
        rc = walk(dir, WALK_REPARSE, &g_data, NULL, NULL, 0);
    return rc;
}

/* `show`: the service SID and every descriptor as built (also the rights of a config file and
 * of a log file, which inherit from their folders). */
static int cmd_show(void)
{
    inherited in;
    int rc = 0;
    printf("service_sid=%ls\n", SERVICE_SID);
    const descr *all[] = { &g_data, &g_logs, &g_install };
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        char key[32];
        WideCharToMultiByte(CP_UTF8, 0, all[i]->name, -1, key, sizeof key, NULL, NULL);
        rc = print_sd(key, all[i]->sd);
    }
    if (rc == 0 && (rc = build_inherited(&g_data, 0, &in)) == 0)
        rc = print_sd("config", &in.sd);
    if (rc == 0 && (rc = build_inherited(&g_logs, 0, &in)) == 0)
        rc = print_sd("logfile", &in.sd);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: asyncipc-secure data DIR | install DIR PROGRAMFILES | purge DIR | show\n%s",
            aipc_setup_ops_usage);
    return EXIT_USAGE;
}

int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return usage();
    int ops = aipc_setup_ops_main(argc, argv);
    if (ops >= 0)
        return ops;
    enable_privileges();
    int rc = init();
    if (rc)
        return rc;
    if (argc == 2 && wcscmp(argv[1], L"show") == 0)
        return cmd_show();
    if (argc == 3 && wcscmp(argv[1], L"data") == 0)
        return cmd_data(argv[2]);
    if (argc == 4 && wcscmp(argv[1], L"install") == 0)
        return cmd_install(argv[2], argv[3]);
    if (argc == 3 && wcscmp(argv[1], L"purge") == 0)
        return cmd_purge(argv[2]);
    return usage();
}
