/* names.c - client names and pipe-name normalisation (see names.h). Portable C11. */
#include "proto/names.h"

#include "proto/topic.h"

#include <stdint.h>
#include <string.h>

bool aipc_proto_name_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > AIPC_PROTO_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Whether s starts with the pipe prefix in any ASCII case. */
static bool has_prefix(const char *s)
{
    static const char prefix[] = AIPC_PROTO_PIPE_PREFIX;
    for (size_t i = 0; i < AIPC_PROTO_PIPE_PREFIX_LEN; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != prefix[i])
            return false;           /* also stops at s's NUL */
    }
    return true;
}

size_t aipc_proto_pipe_name(const char *in, char out[AIPC_PROTO_PIPE_BUF])
{
    if (!in)
        return 0;
    const char *name = in;
    if (has_prefix(in))
        name = in + AIPC_PROTO_PIPE_PREFIX_LEN;
    else if (in[0] == '\\')
        return 0;
    size_t n = 0, units = AIPC_PROTO_PIPE_PREFIX_LEN;
    for (; name[n]; n++) {
        uint8_t c = (uint8_t)name[n];
        if (c < 0x20 || c == '\\')
            return 0;
        if ((c & 0xC0) != 0x80)
            units += c >= 0xF0 ? 2 : 1;   /* a lead byte: one UTF-16 unit, two past U+FFFF */
        if (units > AIPC_PROTO_PIPE_MAX)
            return 0;
    }
    if (n == 0 || !aipc_proto_utf8_valid(name, n))
        return 0;
    memcpy(out, AIPC_PROTO_PIPE_PREFIX, AIPC_PROTO_PIPE_PREFIX_LEN);
    memcpy(out + AIPC_PROTO_PIPE_PREFIX_LEN, name, n + 1);
    return AIPC_PROTO_PIPE_PREFIX_LEN + n;
}
