/* shm_seg.c - Win32 shared-memory segments (shm_seg.h). */
#include "shm_seg.h"

#include <aclapi.h>
#include <ntsecapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "secdesc_section.h"
#include "win_error.h"
#include "winsec.h"

/* The last number of this process's segment names (unique per process with the pid). */
static volatile LONG name_seq;

/* "Local\" + name as UTF-16 (the name is ASCII). */
static void wide_name(wchar_t *out, size_t cap, const char *prefix, const char *name)
{
    size_t at = 0;
    for (const char *p = prefix; *p && at + 1 < cap; p++)
        out[at++] = (wchar_t)(unsigned char)*p;
    for (const char *p = name; *p && at + 1 < cap; p++)
        out[at++] = (wchar_t)(unsigned char)*p;
    out[at] = 0;
}

static int fail(aipc__shm_seg *s, DWORD err, int rc)
{
    s->syserr = err;
    return rc;
}

DWORD aipc__shm_seg_own_integrity(void)
{
    HANDLE tok;
    DWORD rid = 0, n = 0;
    union { TOKEN_MANDATORY_LABEL ml; uint8_t b[96]; } u;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return 0;
    if (GetTokenInformation(tok, TokenIntegrityLevel, &u, sizeof u, &n) && u.ml.Label.Sid &&
        IsValidSid(u.ml.Label.Sid) && *GetSidSubAuthorityCount(u.ml.Label.Sid) > 0)
        rid = *GetSidSubAuthority(u.ml.Label.Sid, *GetSidSubAuthorityCount(u.ml.Label.Sid) - 1u);
    CloseHandle(tok);
    return rid;
}

/* The section's descriptor for this process's user and readers[0..n); NULL with *rc set. */
static PSECURITY_DESCRIPTOR section_sd(const char *const *readers, size_t n, DWORD integrity,
                                       DWORD *err, int *rc)
{
    PSID me = aipc__sec_user_sid();
    char *me_s = NULL, *sddl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    *err = 0;
    *rc = AIPC_ENOMEM;
    if (n == 0 || n > AIPC__SEC_SECTION_MAX_READERS) {
        *rc = AIPC_EINVAL;
    } else if (!me || !ConvertSidToStringSidA(me, &me_s)) {
        *err = GetLastError();
        *rc = me ? aipc__win_err(*err) : AIPC_ESYS;
    } else if ((sddl = malloc(AIPC__SEC_SECTION_SDDL_CAP(n))) != NULL) {
        /* Never above our own level: Windows refuses to raise a label (STATUS_INVALID_LABEL). */
        uint32_t label = aipc__sec_section_label(integrity, aipc__shm_seg_own_integrity());
        if (!aipc__sec_section_sddl(sddl, AIPC__SEC_SECTION_SDDL_CAP(n), me_s, readers, n, label)) {
            *rc = AIPC_EINVAL;                 /* a group, or a bad integrity level */
        } else if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL)) {
            *err = GetLastError();
            *rc = AIPC_ESYS;
            sd = NULL;
        }
    }
    if (me_s)
        LocalFree(me_s);
    free(sddl);
    free(me);
    return sd;
}

int aipc__shm_seg_create_named_for(aipc__shm_seg *s, uint32_t size, const char *const *readers,
                                   size_t n, DWORD min_integrity, const char *name)
{
    if (!s)
        return AIPC_EINVAL;
    memset(s, 0, sizeof *s);
    if (size == 0 || !readers || !name || !aipc_shm_name_valid(name, strlen(name)))
        return AIPC_EINVAL;
    DWORD err;
    int rc;
    PSECURITY_DESCRIPTOR sd = section_sd(readers, n, min_integrity, &err, &rc);
    if (!sd)
        return fail(s, err, rc);
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    wchar_t wname[96];
    wide_name(wname, 96, "Local\\", name);
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT, 0, size, wname);
    err = GetLastError();
    LocalFree(sd);
    if (h && err == ERROR_ALREADY_EXISTS) {
        CloseHandle(h);                        /* somebody made it first: never use it */
        return fail(s, err, AIPC_EUNTRUSTED);
    }
    if (!h)                                    /* an existing object we may not open: the same */
        return fail(s, err, err == ERROR_ACCESS_DENIED || err == ERROR_INVALID_HANDLE ? AIPC_EUNTRUSTED
                                                                                       : aipc__win_err(err));
    uint8_t *v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, size);
    if (!v) {
        err = GetLastError();
        CloseHandle(h);
        return fail(s, err, err == ERROR_NOT_ENOUGH_MEMORY ? AIPC_ENOMEM : AIPC_ESYS);
    }
    s->h = h;
    s->view = v;
    s->size = size;
    if (!ProcessIdToSessionId(GetCurrentProcessId(), &s->session))
        s->session = 0;
    return 0;
}

int aipc__shm_seg_create_for(aipc__shm_seg *s, uint32_t size, const char *const *readers, size_t n,
                             DWORD min_integrity, char *name_out, size_t name_cap)
{
    uint8_t rnd[16];
    char name[AIPC_SHM_NAME_BUF];
    if (!s)
        return AIPC_EINVAL;
    memset(s, 0, sizeof *s);
    if (!name_out || name_cap < AIPC_SHM_NAME_BUF)
        return AIPC_EINVAL;
    if (!RtlGenRandom(rnd, sizeof rnd))
        return fail(s, GetLastError(), AIPC_ESYS);
    if (!aipc_shm_name_put(name, sizeof name, (uint32_t)GetCurrentProcessId(), rnd,
                           (uint32_t)InterlockedIncrement(&name_seq)))
        return AIPC_EINVAL;
    int rc = aipc__shm_seg_create_named_for(s, size, readers, n, min_integrity, name);
    if (rc == 0)
        memcpy(name_out, name, strlen(name) + 1);
    return rc;
}

/* reader as the one-element reader list of the _for functions; 0 or AIPC_E* (s zeroed). */
static int one_reader(aipc__shm_seg *s, PSID reader, char **str)
{
    *str = NULL;
    if (!s)
        return AIPC_EINVAL;
    memset(s, 0, sizeof *s);
    if (!reader || !IsValidSid(reader))
        return AIPC_EINVAL;
    if (!ConvertSidToStringSidA(reader, str)) {
        DWORD err = GetLastError();
        return fail(s, err, aipc__win_err(err));
    }
    return 0;
}

int aipc__shm_seg_create_named(aipc__shm_seg *s, uint32_t size, PSID reader,
                               DWORD reader_integrity, const char *name)
{
    char *rd;
    int rc = one_reader(s, reader, &rd);
    if (rc == 0) {
        const char *readers[1] = {rd};
        rc = aipc__shm_seg_create_named_for(s, size, readers, 1, reader_integrity, name);
        LocalFree(rd);
    }
    return rc;
}

int aipc__shm_seg_create(aipc__shm_seg *s, uint32_t size, PSID reader, DWORD reader_integrity,
                         char *name_out, size_t name_cap)
{
    char *rd;
    int rc = one_reader(s, reader, &rd);
    if (rc == 0) {
        const char *readers[1] = {rd};
        rc = aipc__shm_seg_create_for(s, size, readers, 1, reader_integrity, name_out, name_cap);
        LocalFree(rd);
    }
    return rc;
}

/* Splits an optional "Local\", "Global\" or "Session\<n>\" prefix off name; NULL if invalid. */
static const char *name_part(const char *name, char *prefix, size_t cap)
{
    const char *slash = strrchr(name, '\\');
    size_t n = slash ? (size_t)(slash + 1 - name) : 0;
    const char *base = name + n;
    if (!aipc_shm_name_valid(base, strlen(base)) || n + 1 > cap)
        return NULL;
    if (n == 0) {
        strcpy(prefix, "Local\\");
        return base;
    }
    memcpy(prefix, name, n);
    prefix[n] = 0;
    if (strcmp(prefix, "Local\\") == 0 || strcmp(prefix, "Global\\") == 0)
        return base;
    if (strncmp(prefix, "Session\\", 8) != 0 || n < 10)
        return NULL;
    for (size_t i = 8; i + 1 < n; i++)
        if (prefix[i] < '0' || prefix[i] > '9' || (i == 8 && prefix[i] == '0' && i + 2 < n))
            return NULL;
    return n - 9 <= 10 ? base : NULL;          /* Session\<up to 10 digits>\ */
}

/* NtQuerySection(SectionBasicInformation) (ntdll; not in the SDK headers). */
typedef struct {
    PVOID base;
    ULONG attributes;
    LARGE_INTEGER size;
} shm_section_basic;
typedef LONG(WINAPI *nt_query_section_fn)(HANDLE, int, PVOID, SIZE_T, SIZE_T *);

#ifndef SEC_FILE
#define SEC_FILE 0x800000
#endif

/* 0 when the section is a pagefile-backed committed one of at least `size` bytes (as far as
 * NtQuerySection tells: if ntdll lacks it the view walk below still runs), else AIPC_EPROTO. */
static int section_unfit(HANDLE h, uint32_t size, DWORD *err)
{
    static nt_query_section_fn query;
    static volatile LONG looked;
    *err = 0;
    if (!looked) {
        HMODULE nt = GetModuleHandleW(L"ntdll.dll");
        query = nt ? (nt_query_section_fn)(void (*)(void))GetProcAddress(nt, "NtQuerySection") : NULL;
        InterlockedExchange(&looked, 1);
    }
    shm_section_basic b;
    memset(&b, 0, sizeof b);
    if (!query || query(h, 0 /* SectionBasicInformation */, &b, sizeof b, NULL) < 0)
        return 0;
    if ((b.attributes & (SEC_RESERVE | SEC_FILE | SEC_IMAGE)) || !(b.attributes & SEC_COMMIT) ||
        b.size.QuadPart < (LONGLONG)size)
        return AIPC_EPROTO;
    return 0;
}

/* Whether every page of [v, v + size) is committed mapped memory (a SEC_RESERVE section's
 * reserved pages would fault on the first read). */
static int view_committed(const uint8_t *v, uint32_t size)
{
    const uint8_t *p = v, *end = v + size;
    while (p < end) {
        MEMORY_BASIC_INFORMATION mb;
        if (VirtualQuery(p, &mb, sizeof mb) != sizeof mb || mb.State != MEM_COMMIT ||
            mb.Type != MEM_MAPPED || mb.RegionSize == 0 || (mb.Protect & (PAGE_NOACCESS | PAGE_GUARD)))
            return 0;
        p = (const uint8_t *)mb.BaseAddress + mb.RegionSize;
    }
    return 1;
}

int aipc__shm_seg_open(aipc__shm_seg *s, const char *name, uint32_t size, PSID expect_owner)
{
    char prefix[24];
    if (!s)
        return AIPC_EINVAL;
    memset(s, 0, sizeof *s);
    const char *base = name ? name_part(name, prefix, sizeof prefix) : NULL;
    if (!base || size == 0 || !expect_owner || !IsValidSid(expect_owner))
        return AIPC_EINVAL;
    wchar_t wname[96];
    wide_name(wname, 96, prefix, base);
    HANDLE h = OpenFileMappingW(FILE_MAP_READ | SECTION_QUERY | READ_CONTROL, FALSE, wname);
    if (!h) {
        DWORD err = GetLastError();
        return fail(s, err, err == ERROR_FILE_NOT_FOUND ? AIPC_ENOTFOUND : aipc__win_err(err));
    }
    PSID owner = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD err = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
                                NULL, &sd);
    if (err != ERROR_SUCCESS || !owner || !EqualSid(owner, expect_owner)) {
        if (sd)
            LocalFree(sd);
        CloseHandle(h);
        return fail(s, err, err != ERROR_SUCCESS ? aipc__win_err(err) : AIPC_EUNTRUSTED);
    }
    LocalFree(sd);
    int bad = section_unfit(h, size, &err);
    if (bad) {
        CloseHandle(h);
        return fail(s, err, bad);
    }
    /* Exactly `size` bytes, read-only: a stray write faults instead of freezing a private
     * copy-on-write page that would hide the creator's later writes to a reused slot. */
    uint8_t *v = MapViewOfFile(h, FILE_MAP_READ, 0, 0, size);
    if (!v) {
        err = GetLastError();
        CloseHandle(h);
        return fail(s, err, err == ERROR_NOT_ENOUGH_MEMORY ? AIPC_ENOMEM
                            : err == ERROR_ACCESS_DENIED || err == ERROR_INVALID_PARAMETER ? AIPC_EPROTO
                                                                                             : AIPC_ESYS);
    }
    if (!view_committed(v, size)) {
        UnmapViewOfFile(v);
        CloseHandle(h);
        return fail(s, 0, AIPC_EPROTO);
    }
    s->h = h;
    s->view = v;
    s->size = size;
    return 0;
}

int aipc__shm_seg_open_in(aipc__shm_seg *s, DWORD creator_session, const char *name, uint32_t size,
                          PSID expect_owner)
{
    DWORD own = 0;
    char full[24 + AIPC_SHM_NAME_BUF];
    if (!s)
        return AIPC_EINVAL;
    memset(s, 0, sizeof *s);
    if (!name || !aipc_shm_name_valid(name, strlen(name)))
        return AIPC_EINVAL;
    if (!ProcessIdToSessionId(GetCurrentProcessId(), &own))
        return fail(s, GetLastError(), AIPC_ESYS);
    if (creator_session == own)
        snprintf(full, sizeof full, "Local\\%s", name);
    else if (creator_session == 0)
        snprintf(full, sizeof full, "Global\\%s", name);
    else
        snprintf(full, sizeof full, "Session\\%lu\\%s", (unsigned long)creator_session, name);
    int rc = aipc__shm_seg_open(s, full, size, expect_owner);
    if (rc == 0)
        s->session = creator_session;
    return rc;
}

void aipc__shm_seg_close(aipc__shm_seg *s)
{
    if (!s)
        return;
    if (s->view)
        UnmapViewOfFile(s->view);
    if (s->h)
        CloseHandle(s->h);
    s->view = NULL;
    s->h = NULL;
    s->size = 0;
}
