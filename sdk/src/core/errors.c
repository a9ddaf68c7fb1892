/* errors.c - error text and version queries (portable). */
#include "asyncipc/asyncipc.h"

/* Index = -code. Append-only, in step with the AIPC_E* list in asyncipc.h. */
static const char *const messages[] = {
    "success",
    "invalid argument",
    "out of memory",
    "message too large",
    "pipe closed",
    "invalid state for this call",
    "system call failed",
    "timed out",
    "protocol error",
    "not found",
    "busy",
    "queue full",
    "disconnected",
    "refused by the broker",
    "not supported",
    "access denied",
    "the server is not owned by an expected principal",
};

const char *aipc_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof messages / sizeof messages[0]))
        return "unknown error";
    return messages[-code];
}

uint32_t aipc_version(void)
{
    return AIPC_VERSION;
}

const char *aipc_version_string(void)
{
    return AIPC_VERSION_STRING;
}
