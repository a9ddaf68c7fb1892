/* wname.c - pipe names: "NAME" and "\\.\pipe\NAME" are both accepted everywhere (SPEC 1).
 * Thread: any (pure functions). */
#include "pipe_internal.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define PIPE_PREFIX     L"\\\\.\\pipe\\"
#define PIPE_PREFIX_LEN 9u
#define PIPE_NAME_MAX   256u   /* whole name, in characters (CreateNamedPipe limit) */

int aipc_wname_normalize(const wchar_t *in, wchar_t **out)
{
    *out = NULL;
    if (!in)
        return AIPC_EINVAL;
    const wchar_t *rest = in;
    if (_wcsnicmp(in, PIPE_PREFIX, PIPE_PREFIX_LEN) == 0)
        rest = in + PIPE_PREFIX_LEN;
    else if (in[0] == L'\\')
        return AIPC_EINVAL;     /* some other path or a remote \\server\pipe\x: not ours */
    size_t n = wcslen(rest);
    if (n == 0 || PIPE_PREFIX_LEN + n > PIPE_NAME_MAX)
        return AIPC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (rest[i] < 0x20)
            return AIPC_EINVAL;
    wchar_t *full = malloc((PIPE_PREFIX_LEN + n + 1) * sizeof *full);
    if (!full)
        return AIPC_ENOMEM;
    memcpy(full, PIPE_PREFIX, PIPE_PREFIX_LEN * sizeof *full);
    memcpy(full + PIPE_PREFIX_LEN, rest, (n + 1) * sizeof *full);
    *out = full;
    return 0;
}

char *aipc_wname_utf8(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n);
    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        s = NULL;
    }
    return s;
}
