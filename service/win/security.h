/*
 * security.h - the broker pipe's security descriptor (SPEC section 4 "Security").
 */
#ifndef AIPC_BROKER_SECURITY_H
#define AIPC_BROKER_SECURITY_H

#include <windows.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Access mask granted to clients: FILE_GENERIC_READ | FILE_GENERIC_WRITE without
 * FILE_CREATE_PIPE_INSTANCE (== FILE_APPEND_DATA, 0x4). */
#define AIPC_PIPE_CLIENT_ACCESS 0x0012019Bu

typedef struct broker_pipe_security {
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd;    /* LocalAlloc'd by ConvertStringSecurityDescriptor... */
    wchar_t *sddl;              /* the SDDL actually used */
} broker_pipe_security;

/* The default SDDL: SYSTEM, Administrators and the broker's own account full control;
 * interactive and authenticated users read/write without FILE_CREATE_PIPE_INSTANCE.
 * Returns a malloc'd string (the broker's user SID is appended when it is not SYSTEM). */
wchar_t *broker_default_pipe_sddl(void);

/* Builds the descriptor from sddl_utf8 (NULL = the default). On failure returns -1 and writes
 * a one-line reason into err. */
int broker_pipe_security_init(broker_pipe_security *s, const char *sddl_utf8, char *err, size_t errlen);
void broker_pipe_security_free(broker_pipe_security *s);

#ifdef __cplusplus
}
#endif
#endif
