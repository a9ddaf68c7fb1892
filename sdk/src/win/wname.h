/* wname.h - pipe names as the Win32 calls take them (UTF-16): thin conversions around
 * proto/names.h's aipc_proto_pipe_name, the one rule set for pipe names (SDK, broker, aipc).
 * Thread: any (pure functions). */
#ifndef AIPC_WIN_WNAME_H
#define AIPC_WIN_WNAME_H

#include <wchar.h>

/* Normalises "NAME" or "\\.\pipe\NAME" to a new malloc'ed canonical full name.
 * 0, AIPC_EINVAL (not a valid pipe name, or not valid UTF-16) or AIPC_ENOMEM. */
int aipc__wname_normalize(const wchar_t *in, wchar_t **out);
/* The same from UTF-8 (a config value, a command line): the malloc'ed canonical full name, or
 * NULL when `name` is not a valid pipe name (or out of memory). */
wchar_t *aipc__wname_from_utf8(const char *name);
/* UTF-8 copy of a wide string for log lines (malloc'ed; NULL on failure). */
char *aipc__wname_utf8(const wchar_t *w);

#endif
