/*
 * security.c - builds the broker pipe's SECURITY_DESCRIPTOR from SDDL (see security.h).
 */
#include "security.h"

#include "sd_audit.h"
#include "winsec.h"

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* SY, BA: FILE_ALL_ACCESS. IU, AU: 0x12019B (read/write, no FILE_CREATE_PIPE_INSTANCE).
 * "P" protects the DACL from inheritance. */
static const wchar_t base_sddl[] =
    L"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x12019b;;;IU)(A;;0x12019b;;;AU)";

wchar_t *broker_default_pipe_sddl(void)
{
    /* The broker's own account must keep FILE_CREATE_PIPE_INSTANCE, or it could not create its
     * second instance when it runs unelevated (Administrators is deny-only then). */
    wchar_t *user = aipc__sec_user_sid_string();
    size_t n = wcslen(base_sddl) + (user ? wcslen(user) + 16 : 0) + 1;
    wchar_t *out = malloc(n * sizeof *out);
    if (out) {
        wcscpy(out, base_sddl);
        if (user && wcscmp(user, L"S-1-5-18") != 0) {
            wcscat(out, L"(A;;FA;;;");
            wcscat(out, user);
            wcscat(out, L")");
        }
    }
    if (user)
        LocalFree(user);
    return out;
}

int broker_pipe_security_init(broker_pipe_security *s, const char *sddl_utf8, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (sddl_utf8) {
        int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, sddl_utf8, -1, NULL, 0);
        if (n <= 1) {
            snprintf(err, errlen, "config key \"sddl\": not valid UTF-8 text");
            return -1;
        }
        s->sddl = malloc((size_t)n * sizeof(wchar_t));
        if (!s->sddl) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        MultiByteToWideChar(CP_UTF8, 0, sddl_utf8, -1, s->sddl, n);
    } else {
        s->sddl = broker_default_pipe_sddl();
        if (!s->sddl) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    /* aipc__sec_descriptor adds "O:<our user>" when the SDDL names no owner: clients check the
     * owner of the pipe they open (a default descriptor may come back without one). */
    DWORD er = 0;
    s->sd = aipc__sec_descriptor(s->sddl, NULL, &er);
    if (!s->sd) {
        snprintf(err, errlen, "config key \"sddl\": invalid security descriptor (error %lu)",
                 (unsigned long)er);
        free(s->sddl);
        s->sddl = NULL;
        s->sd = NULL;
        return -1;
    }
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    if (!GetSecurityDescriptorDacl(s->sd, &present, &dacl, &defaulted) || !present) {
        snprintf(err, errlen, "config key \"sddl\": the descriptor has no DACL (\"D:\" part)");
        broker_pipe_security_free(s);
        return -1;
    }
    if (!dacl) {
        snprintf(err, errlen, "config key \"sddl\": a NULL DACL would give everyone full control");
        broker_pipe_security_free(s);
        return -1;
    }
    /* Only SYSTEM, Administrators and the broker's own account may create instances of the
     * pipe (a squatter's instance would receive clients) or change its descriptor. */
    aipc__trust trust;
    char why[300];
    int bad = aipc__trust_init(&trust, false);
    if (bad)
        snprintf(why, sizeof why, "cannot build the list of trusted accounts");
    else
        bad = aipc__sd_audit_pipe(s->sd, &trust, why, sizeof why);
    aipc__trust_free(&trust);
    if (bad) {
        snprintf(err, errlen, "config key \"sddl\": refused: %s", why);
        broker_pipe_security_free(s);
        return -1;
    }
    s->sa.nLength = sizeof s->sa;
    s->sa.lpSecurityDescriptor = s->sd;
    s->sa.bInheritHandle = FALSE;
    return 0;
}

void broker_pipe_security_free(broker_pipe_security *s)
{
    if (s->sd)
        LocalFree(s->sd);
    free(s->sddl);
    memset(s, 0, sizeof *s);
}
