/*
 * sd_audit.h - decisions over security descriptors, kept pure (a descriptor and a set of
 * trusted principals in, a verdict out) so that they can be tested with descriptors built from
 * SDDL: Wine synthesises file descriptors from Unix permissions and enforces none of them.
 *
 *   file audit (service mode: the config file and its folder, the log folder and file):
 *     the owner must be trusted, the DACL must exist, and no ACCESS_ALLOWED ACE may grant an
 *     untrusted SID anything that changes the object or what it holds: FILE_WRITE_DATA (add a
 *     file), FILE_APPEND_DATA (add a folder), FILE_WRITE_EA, FILE_WRITE_ATTRIBUTES,
 *     FILE_DELETE_CHILD, DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_WRITE, GENERIC_ALL.
 *     Inherit-only ACEs count too (they decide what files created in a folder get), except
 *     those for CREATOR OWNER / CREATOR GROUP (they name whoever creates the file, and only
 *     trusted principals can create one). OWNER RIGHTS ACEs are skipped (the owner is trusted).
 *     Deny ACEs are ignored: a descriptor is judged by what it grants (conservative).
 *   pipe audit (the config key "sddl"):
 *     no ACCESS_ALLOWED ACE may grant an untrusted SID FILE_CREATE_PIPE_INSTANCE (0x4),
 *     WRITE_DAC, WRITE_OWNER, GENERIC_WRITE or GENERIC_ALL, and the owner (when the SDDL names
 *     one) must be trusted.
 * ACE types other than allowed/denied (and their callback forms) are refused as unrecognised.
 * Thread: any.
 */
#ifndef AIPC_BROKER_SD_AUDIT_H
#define AIPC_BROKER_SD_AUDIT_H

#include <windows.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC_TRUST_MAX 8

/* SIDs whose rights do not matter (malloc'd copies). */
typedef struct aipc__trust {
    PSID sids[AIPC_TRUST_MAX];
    int n;
} aipc__trust;

/* SYSTEM, Administrators, the broker process's own user, the service SID of AsyncIPCBroker,
 * and TrustedInstaller when with_trusted_installer. 0 or -1 (out of memory / no token). */
int aipc__trust_init(aipc__trust *t, bool with_trusted_installer);
/* Adds a SID string or SDDL alias. 0 or -1. */
int aipc__trust_add(aipc__trust *t, const char *sid);
bool aipc__trust_has(const aipc__trust *t, PSID sid);
void aipc__trust_free(aipc__trust *t);

/* Rights that change a file or folder (see above). */
#define AIPC_FILE_CHANGE_RIGHTS                                                              \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES |            \
     FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)
/* Rights on the pipe that only the broker's side may hold. */
#define AIPC_PIPE_SERVER_RIGHTS                                                              \
    (FILE_CREATE_PIPE_INSTANCE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)

/* 0 when only trusted principals can change the object; -1 with the reason (naming the SID
 * and the rights) in why. */
int aipc__sd_audit_file(PSECURITY_DESCRIPTOR sd, const aipc__trust *t, char *why, size_t whylen);
/* 0 when no untrusted principal may create pipe instances or change the descriptor; -1 with
 * the reason in why. */
int aipc__sd_audit_pipe(PSECURITY_DESCRIPTOR sd, const aipc__trust *t, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
