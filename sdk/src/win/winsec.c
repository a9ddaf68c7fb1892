/*
 * winsec.c - server pipe descriptors and the client's check of the server's owner (winsec.h).
 */
#include "winsec.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wincrypt.h>

#include "asyncipc/asyncipc.h"

_Static_assert((AIPC_SEC_CLIENT_ACCESS & ~AIPC_SEC_USER_PIPE_ACCESS) == 0,
               "clients must ask only for rights the broker grants its users");
_Static_assert((AIPC_SEC_CLIENT_ACCESS & FILE_CREATE_PIPE_INSTANCE) == 0,
               "clients never ask for FILE_CREATE_PIPE_INSTANCE");

/* ---- SIDs ----------------------------------------------------------------------------------- */

PSID aipc__sec_sid_dup(PSID s)
{
    DWORD n = GetLengthSid(s);
    PSID d = malloc(n);
    if (d && !CopySid(n, d, s)) {
        free(d);
        d = NULL;
    }
    return d;
}

PSID aipc__sec_user_sid(void)
{
    HANDLE tok = NULL;
    PSID out = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return NULL;
    DWORD need = 0;
    GetTokenInformation(tok, TokenUser, NULL, 0, &need);
    TOKEN_USER *tu = need ? malloc(need) : NULL;
    if (tu && GetTokenInformation(tok, TokenUser, tu, need, &need))
        out = aipc__sec_sid_dup(tu->User.Sid);
    free(tu);
    CloseHandle(tok);
    return out;
}

wchar_t *aipc__sec_user_sid_string(void)
{
    PSID s = aipc__sec_user_sid();
    wchar_t *str = NULL;
    if (s && !ConvertSidToStringSidW(s, &str))
        str = NULL;
    free(s);
    return str;
}

PSID aipc__sec_service_sid(const wchar_t *name)
{
    /* S-1-5-80-a-b-c-d-e: the SHA-1 of the upper-case service name (UTF-16LE) read as five
     * little-endian 32-bit sub-authorities (the virtual service account's SID). */
    size_t n = wcslen(name);
    wchar_t *up = malloc((n + 1) * sizeof *up);
    if (!up)
        return NULL;
    memcpy(up, name, (n + 1) * sizeof *up);
    /* Windows upper-cases service names locale-independently (not CharUpper: Turkish 'i'). */
    if (!LCMapStringEx(LOCALE_NAME_INVARIANT, LCMAP_UPPERCASE, name, (int)n, up, (int)n, NULL,
                       NULL, 0))
        CharUpperBuffW(up, (DWORD)n);
    BYTE hash[20];
    DWORD hlen = sizeof hash;
    HCRYPTPROV prov = 0;
    HCRYPTHASH h = 0;
    BOOL ok = CryptAcquireContextW(&prov, NULL, NULL, PROV_RSA_FULL, CRYPT_VERIFYCONTEXT) &&
              CryptCreateHash(prov, CALG_SHA1, 0, 0, &h) &&
              CryptHashData(h, (const BYTE *)up, (DWORD)(n * sizeof *up), 0) &&
              CryptGetHashParam(h, HP_HASHVAL, hash, &hlen, 0) && hlen == sizeof hash;
    if (h)
        CryptDestroyHash(h);
    if (prov)
        CryptReleaseContext(prov, 0);
    free(up);
    if (!ok)
        return NULL;
    DWORD sub[5];
    for (int i = 0; i < 5; i++)
        sub[i] = (DWORD)hash[4 * i] | (DWORD)hash[4 * i + 1] << 8 |
                 (DWORD)hash[4 * i + 2] << 16 | (DWORD)hash[4 * i + 3] << 24;
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    PSID tmp = NULL;
    if (!AllocateAndInitializeSid(&nt, 6, SECURITY_SERVICE_ID_BASE_RID, sub[0], sub[1], sub[2],
                                  sub[3], sub[4], 0, 0, &tmp))
        return NULL;
    PSID out = aipc__sec_sid_dup(tmp);
    FreeSid(tmp);
    return out;
}

/* ---- principal lists ------------------------------------------------------------------------ */

void aipc__sec_expect_free(aipc__sec_expect *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->sids[i]);
    free(e->sids);
    memset(e, 0, sizeof *e);
}

/* One item -> SID (malloc'd), NULL when not understood. */
static PSID item_sid(const char *item, size_t len)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf)
        return NULL;
    memcpy(buf, item, len);
    buf[len] = 0;
    if (strcmp(buf, "self") == 0)
        return aipc__sec_user_sid();
    if (strncmp(buf, "service:", 8) == 0) {
        wchar_t w[256];
        if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, buf + 8, -1, w, 256) || !w[0])
            return NULL;
        return aipc__sec_service_sid(w);
    }
    PSID s = NULL;
    if (!ConvertStringSidToSidA(buf, &s))   /* SID strings and SDDL aliases (SY, BA, ...) */
        return NULL;
    PSID out = aipc__sec_sid_dup(s);
    LocalFree(s);
    return out;
}

int aipc__sec_expect_parse(const char *list, aipc__sec_expect *out)
{
    memset(out, 0, sizeof *out);
    if (!list)
        return AIPC_EINVAL;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[0] == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 1 && p[0] == '*') {
            out->any = 1;
        } else if (len) {
            PSID s = item_sid(p, len);
            PSID *grown = s ? realloc(out->sids, (out->n + 1) * sizeof *grown) : NULL;
            if (!grown) {
                int nomem = s != NULL;
                aipc_log(AIPC_LOG_ERROR, "security: bad principal '%.*s' in \"%s\"", (int)len,
                         p, list);
                free(s);
                aipc__sec_expect_free(out);
                return nomem ? AIPC_ENOMEM : AIPC_EINVAL;
            }
            out->sids = grown;
            out->sids[out->n++] = s;
        }
        p += end ? (size_t)(end - p) + 1 : strlen(p);
    }
    if (!out->any && out->n == 0)
        return AIPC_EINVAL;
    return 0;
}

int aipc__sec_owner_allowed(const aipc__sec_expect *e, PSID owner)
{
    if (e->any)
        return 1;
    if (!owner || !IsValidSid(owner))
        return 0;
    for (size_t i = 0; i < e->n; i++)
        if (EqualSid(e->sids[i], owner))
            return 1;
    return 0;
}

int aipc__sec_verify_server(HANDLE h, const aipc__sec_expect *e, const char *what)
{
    if (e->any)
        return 0;
    PSID owner = NULL;
    DWORD rc = aipc__sec_pipe_owner(h, &owner);
    if (rc != ERROR_SUCCESS && rc != ERROR_INVALID_SID) {
        aipc_log(AIPC_LOG_WARN, "security: %s: cannot read the server's owner (%lu)", what, rc);
        return AIPC_ESYS;
    }
    int ok = aipc__sec_owner_allowed(e, owner);
    if (!ok) {
        wchar_t *str = NULL;
        if (owner && IsValidSid(owner))
            ConvertSidToStringSidW(owner, &str);
        aipc_log(AIPC_LOG_WARN, "security: %s: the server is owned by %ls, not by an expected "
                 "principal; nothing sent", what, str ? str : L"(nobody)");
        if (str)
            LocalFree(str);
    }
    free(owner);
    return ok ? 0 : AIPC_EUNTRUSTED;
}

DWORD aipc__sec_pipe_owner(HANDLE h, PSID *owner)
{
    *owner = NULL;
    PSID o = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &o, NULL, NULL,
                               NULL, &sd);
    if (rc == ERROR_SUCCESS) {
        if (!o || !IsValidSid(o))
            rc = ERROR_INVALID_SID;            /* no owner recorded */
        else if (!(*owner = aipc__sec_sid_dup(o)))
            rc = ERROR_NOT_ENOUGH_MEMORY;
    }
    if (sd)
        LocalFree(sd);
    return rc;
}

/* ---- descriptors ---------------------------------------------------------------------------- */

/* Replaces every "%U" in `in` with `user` (malloc'd). */
static wchar_t *expand_user(const wchar_t *in, const wchar_t *user)
{
    size_t n = wcslen(in), ul = wcslen(user), count = 0;
    for (const wchar_t *p = in; (p = wcsstr(p, L"%U")); p += 2)
        count++;
    wchar_t *out = malloc((n + count * ul + 1) * sizeof *out), *w = out;
    if (!out)
        return NULL;
    for (const wchar_t *p = in; *p;) {
        if (p[0] == L'%' && p[1] == L'U') {
            memcpy(w, user, ul * sizeof *w);
            w += ul;
            p += 2;
        } else {
            *w++ = *p++;
        }
    }
    *w = 0;
    return out;
}

PSECURITY_DESCRIPTOR aipc__sec_descriptor(const wchar_t *sddl, const wchar_t *def_sddl, DWORD *err)
{
    *err = 0;
    wchar_t *user = aipc__sec_user_sid_string();
    if (!user) {
        *err = GetLastError() ? GetLastError() : ERROR_NO_TOKEN;
        return NULL;
    }
    wchar_t *text = expand_user(sddl ? sddl : def_sddl, user);
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!text) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
    } else if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(text, SDDL_REVISION_1, &sd,
                                                                     NULL)) {
        *err = GetLastError() ? GetLastError() : ERROR_INVALID_PARAMETER;
        sd = NULL;
    } else {
        PSID owner = NULL;
        BOOL defaulted = FALSE;
        if (GetSecurityDescriptorOwner(sd, &owner, &defaulted) && !owner) {
            /* "O:<user>" in front: the owner part comes first in SDDL. */
            size_t n = wcslen(text) + wcslen(user) + 3;
            wchar_t *with = malloc(n * sizeof *with);
            LocalFree(sd);
            sd = NULL;
            if (!with) {
                *err = ERROR_NOT_ENOUGH_MEMORY;
            } else {
                wcscpy(with, L"O:");
                wcscat(with, user);
                wcscat(with, text);
                if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(with, SDDL_REVISION_1,
                                                                          &sd, NULL)) {
                    *err = GetLastError() ? GetLastError() : ERROR_INVALID_PARAMETER;
                    sd = NULL;
                }
                free(with);
            }
        }
    }
    free(text);
    LocalFree(user);
    return sd;
}
