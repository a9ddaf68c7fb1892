/*
 * sd_audit.c - descriptor audits for the config/log files and the pipe's "sddl" (sd_audit.h).
 */
#include "sd_audit.h"

#include "winsec.h"

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NT SERVICE\TrustedInstaller. */
static const char trusted_installer[] =
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

static int trust_take(aipc__trust *t, PSID s)
{
    if (!s)
        return -1;
    if (t->n >= AIPC_TRUST_MAX) {
        free(s);
        return -1;
    }
    t->sids[t->n++] = s;
    return 0;
}

int aipc__trust_add(aipc__trust *t, const char *sid)
{
    PSID s = NULL;
    if (!ConvertStringSidToSidA(sid, &s))
        return -1;
    PSID c = aipc__sec_sid_dup(s);
    LocalFree(s);
    return trust_take(t, c);
}

int aipc__trust_init(aipc__trust *t, bool with_trusted_installer)
{
    memset(t, 0, sizeof *t);
    if (aipc__trust_add(t, "S-1-5-18") || aipc__trust_add(t, "S-1-5-32-544") ||
        trust_take(t, aipc__sec_user_sid()) || trust_take(t, aipc__sec_service_sid(AIPC_SEC_BROKER_SERVICE)) ||
        (with_trusted_installer && aipc__trust_add(t, trusted_installer))) {
        aipc__trust_free(t);
        return -1;
    }
    return 0;
}

bool aipc__trust_has(const aipc__trust *t, PSID sid)
{
    if (!sid || !IsValidSid(sid))
        return false;
    for (int i = 0; i < t->n; i++)
        if (EqualSid(t->sids[i], sid))
            return true;
    return false;
}

void aipc__trust_free(aipc__trust *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->sids[i]);
    memset(t, 0, sizeof *t);
}

/* "S-1-..." text of a SID for messages (into buf). */
static const char *sid_str(PSID s, char *buf, size_t cap)
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

static bool is_wellknown(PSID s, WELL_KNOWN_SID_TYPE type)
{
    return IsWellKnownSid(s, type) != FALSE;
}

/* Walks the DACL: the first allowed ACE granting `rights` to an untrusted SID refuses. */
static int audit(PSECURITY_DESCRIPTOR sd, const aipc__trust *t, DWORD rights, bool file,
                 char *why, size_t whylen)
{
    char sb[200];
    if (!sd || !IsValidSecurityDescriptor(sd)) {
        snprintf(why, whylen, "no valid security descriptor");
        return -1;
    }
    PSID owner = NULL;
    BOOL defaulted = FALSE;
    if (!GetSecurityDescriptorOwner(sd, &owner, &defaulted)) {
        snprintf(why, whylen, "the descriptor's owner cannot be read");
        return -1;
    }
    if (owner || file) {
        if (!aipc__trust_has(t, owner)) {
            snprintf(why, whylen, "it is owned by %s, not by SYSTEM, Administrators or the "
                     "broker's account", sid_str(owner, sb, sizeof sb));
            return -1;
        }
    }
    BOOL present = FALSE;
    PACL dacl = NULL;
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present || !dacl) {
        snprintf(why, whylen, "it has no DACL (everyone has full access)");
        return -1;
    }
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h = NULL;
        if (!GetAce(dacl, i, (void **)&h)) {
            snprintf(why, whylen, "its DACL cannot be read");
            return -1;
        }
        switch (h->AceType) {
        case ACCESS_DENIED_ACE_TYPE:
        case ACCESS_DENIED_CALLBACK_ACE_TYPE:
        case ACCESS_DENIED_OBJECT_ACE_TYPE:
        case ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE:
            continue;                       /* only grants are judged */
        case ACCESS_ALLOWED_ACE_TYPE:
        case ACCESS_ALLOWED_CALLBACK_ACE_TYPE:
            break;                          /* same layout: header, mask, SID */
        default:
            snprintf(why, whylen, "its DACL holds an unrecognised ACE (type %u)",
                     (unsigned)h->AceType);
            return -1;
        }
        ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
        PSID sid = (PSID)&a->SidStart;
        if (!(a->Mask & rights) || aipc__trust_has(t, sid))
            continue;
        if (owner && is_wellknown(sid, WinCreatorOwnerRightsSid))
            continue;                       /* OWNER RIGHTS: the owner, trusted (above) */
        if (file && (h->AceFlags & INHERIT_ONLY_ACE) &&
            (is_wellknown(sid, WinCreatorOwnerSid) || is_wellknown(sid, WinCreatorGroupSid)))
            continue;
        snprintf(why, whylen, "its DACL grants %s access 0x%lx (%s)",
                 sid_str(sid, sb, sizeof sb), (unsigned long)a->Mask,
                 file ? "write, delete or permission changes"
                      : "creating pipe instances or changing the descriptor");
        return -1;
    }
    return 0;
}

int aipc__sd_audit_file(PSECURITY_DESCRIPTOR sd, const aipc__trust *t, char *why, size_t whylen)
{
    return audit(sd, t, AIPC_FILE_CHANGE_RIGHTS, true, why, whylen);
}

int aipc__sd_audit_pipe(PSECURITY_DESCRIPTOR sd, const aipc__trust *t, char *why, size_t whylen)
{
    return audit(sd, t, AIPC_PIPE_SERVER_RIGHTS, false, why, whylen);
}
