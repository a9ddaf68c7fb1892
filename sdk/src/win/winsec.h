/*
 * winsec.h - who may serve and who may connect: security descriptors of the SDK's server pipes
 * and the check every client makes of the server it opened (winsec.c).
 *
 * A client opening a pipe name cannot tell who created it: whoever holds the name while the
 * real server is down (boot, restart, upgrade) receives the client's hello and data. So after
 * CreateFile, and before writing anything, a client reads the owner of the pipe's security
 * descriptor (GetSecurityInfo) and requires it to be one of an expected set of principals.
 * On real Windows a process can only make itself (its user, or a group it holds with the owner
 * attribute - Administrators when elevated) the owner of what it creates, so the owner names
 * the server's account. Under Wine descriptors are stored as given and not enforced.
 *
 * Principal lists (options of pipes and bus clients) are ';'-separated:
 *   SID strings and SDDL aliases ("S-1-5-18", "SY", "BA", ...), "self" (this process's user),
 *   "service:NAME" (the virtual account NT SERVICE\NAME), or "*" (no check).
 * Thread: any.
 */
#ifndef AIPC_WIN_WINSEC_H
#define AIPC_WIN_WINSEC_H

#include <windows.h>

#include <stddef.h>

#include "asyncipc/asyncipc.h"

/* The broker's service name (its virtual account is NT SERVICE\AsyncIPCBroker). */
#define AIPC_SEC_BROKER_SERVICE L"AsyncIPCBroker"
/* Default principals a bus client accepts as the broker's owner. */
#define AIPC_SEC_BROKER_OWNERS AIPC_BUS_DEFAULT_SERVER_OWNERS
/* Default principals a point-to-point client accepts as its server's owner. */
#define AIPC_SEC_P2P_OWNERS "self"

/* What a client asks for when it opens a server's pipe: read, write data, and write attributes
 * (SetNamedPipeHandleState). Not GENERIC_WRITE: for a pipe that includes FILE_APPEND_DATA, which
 * is FILE_CREATE_PIPE_INSTANCE, a right servers rightly withhold from their clients (the
 * broker grants users 0x12019B), so a standard user's open would be denied. */
#define AIPC_SEC_CLIENT_ACCESS (FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES)
/* The rights the broker grants its clients (must contain AIPC_SEC_CLIENT_ACCESS). */
#define AIPC_SEC_USER_PIPE_ACCESS 0x0012019Bu

typedef struct aipc__sec_expect {
    PSID *sids;        /* malloc'd copies */
    size_t n;
    int any;           /* "*": every owner */
} aipc__sec_expect;

/* Parses a principal list. 0, AIPC_EINVAL (with the bad item logged) or AIPC_ENOMEM. */
int  aipc__sec_expect_parse(const char *list, aipc__sec_expect *out);
void aipc__sec_expect_free(aipc__sec_expect *e);
/* 1 if `owner` (may be NULL: no owner recorded) is acceptable. */
int  aipc__sec_owner_allowed(const aipc__sec_expect *e, PSID owner);
/* Checks the owner of the server end of client handle `h`. 0 if acceptable, AIPC_EUNTRUSTED
 * (logged at WARN with the owner's SID, `what` names the pipe), or AIPC_ESYS. */
int  aipc__sec_verify_server(HANDLE h, const aipc__sec_expect *e, const char *what);

/* The owner of the object behind handle `h` (a pipe's server end), malloc'd into *owner.
 * 0, ERROR_INVALID_SID when the descriptor records no owner (*owner NULL), or the Win32 error. */
DWORD aipc__sec_pipe_owner(HANDLE h, PSID *owner);
/* The SID of NT SERVICE\<name> (S-1-5-80-<SHA-1 of the upper-case name>), malloc'd. */
PSID aipc__sec_service_sid(const wchar_t *name);
/* A malloc'd copy of a SID, or NULL. */
PSID aipc__sec_sid_dup(PSID s);
/* This process's user SID (malloc'd), or NULL. */
PSID aipc__sec_user_sid(void);
/* This process's user SID as a string (LocalFree), or NULL. */
wchar_t *aipc__sec_user_sid_string(void);

/* A self-relative descriptor (LocalFree) from `sddl`; NULL sddl = `def_sddl`. "%U" in either
 * stands for this process's user SID. When the result has no owner, "O:<user>" is added so
 * clients can check it. NULL on failure with *err set to the Win32 error. */
PSECURITY_DESCRIPTOR aipc__sec_descriptor(const wchar_t *sddl, const wchar_t *def_sddl, DWORD *err);

#endif
