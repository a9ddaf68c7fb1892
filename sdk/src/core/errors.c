/* errors.c - error text, the system error behind AIPC_ESYS, and version queries (portable). */
#include "errors.h"

#include "asyncipc/asyncipc.h"

/* Every #define agrees with the list (a mismatch fails the build). */
#define AIPC_CHECK_CODE(name, value, text) \
    _Static_assert(AIPC_##name == (value), "AIPC_" #name " disagrees with AIPC_ERRNO_MAP");
AIPC_ERRNO_MAP(AIPC_CHECK_CODE)
#undef AIPC_CHECK_CODE

const char *aipc_strerror(int code)
{
    switch (code) {
    case AIPC_OK: return "success";
#define AIPC_TEXT_CASE(name, value, text) case value: return text;
    AIPC_ERRNO_MAP(AIPC_TEXT_CASE)
#undef AIPC_TEXT_CASE
    default: return "unknown error";
    }
}

const char *aipc_err_name(int code)
{
    switch (code) {
    case AIPC_OK: return "OK";
#define AIPC_NAME_CASE(name, value, text) case value: return #name;
    AIPC_ERRNO_MAP(AIPC_NAME_CASE)
#undef AIPC_NAME_CASE
    default: return "UNKNOWN";
    }
}

/* The calling thread's system error behind its last AIPC_ESYS (aipc__syserr). */
static _Thread_local uint32_t t_syserr;

int aipc__syserr(uint32_t err)
{
    t_syserr = err;
    return AIPC_ESYS;
}

uint32_t aipc_last_syserr(void)
{
    return t_syserr;
}

uint32_t aipc_version(void)
{
    return AIPC_VERSION;
}

const char *aipc_version_string(void)
{
    return AIPC_VERSION_STRING;
}
