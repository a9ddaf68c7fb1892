/* wname.c - pipe names: "NAME" and "\\.\pipe\NAME" are both accepted everywhere (SPEC 1); the
 * rules are proto/names.h's, this file only converts between UTF-16 and UTF-8.
 * Thread: any (pure functions). */
#include "wname.h"

#include "asyncipc/asyncipc.h"
#include "proto/names.h"

#include <windows.h>
#include <stdlib.h>

/* UTF-8 copy of w; flags WC_ERR_INVALID_CHARS refuses lone surrogates. 0, AIPC_EINVAL or
 * AIPC_ENOMEM. */
static int to_utf8(const wchar_t *w, DWORD flags, char **out)
{
    *out = NULL;
    int n = WideCharToMultiByte(CP_UTF8, flags, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0)
        return AIPC_EINVAL;
    char *s = malloc((size_t)n);
    if (!s)
        return AIPC_ENOMEM;
    if (WideCharToMultiByte(CP_UTF8, flags, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        return AIPC_EINVAL;
    }
    *out = s;
    return 0;
}

/* UTF-16 copy of the canonical name of `name`. 0, AIPC_EINVAL or AIPC_ENOMEM. */
static int from_utf8(const char *name, wchar_t **out)
{
    char full[AIPC_PROTO_PIPE_BUF];
    *out = NULL;
    if (!aipc_proto_pipe_name(name, full))
        return AIPC_EINVAL;
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, full, -1, NULL, 0);
    if (n <= 0)
        return AIPC_EINVAL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (!w)
        return AIPC_ENOMEM;
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, full, -1, w, n);
    *out = w;
    return 0;
}

int aipc__wname_normalize(const wchar_t *in, wchar_t **out)
{
    char *u;
    *out = NULL;
    if (!in)
        return AIPC_EINVAL;
    int rc = to_utf8(in, WC_ERR_INVALID_CHARS, &u);
    if (rc == 0) {
        rc = from_utf8(u, out);
        free(u);
    }
    return rc;
}

wchar_t *aipc__wname_from_utf8(const char *name)
{
    wchar_t *w;
    return from_utf8(name, &w) == 0 ? w : NULL;
}

char *aipc__wname_utf8(const wchar_t *w)
{
    char *s;
    return to_utf8(w, 0, &s) == 0 ? s : NULL;
}
