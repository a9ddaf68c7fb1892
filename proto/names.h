/*
 * names.h - client names and pipe names (portable, pure functions, any thread). The SDK, the
 * broker (hello, its config, --pipe) and aipc all apply these rules; docs/protocol.md section 2.
 *
 * Client names: 1..AIPC_PROTO_NAME_MAX bytes of [A-Za-z0-9._-].
 *
 * Pipe names (UTF-8): "NAME" or "\\.\pipe\NAME", the prefix in any ASCII case
 * ("\\.\PIPE\x" is "\\.\pipe\x"). The canonical form is "\\.\pipe\" (that spelling) + NAME
 * (kept as given: Windows compares pipe names case-insensitively itself). NAME is non-empty
 * strict UTF-8 without control characters (< 0x20) or backslashes (so no other path, no remote
 * "\\server\pipe\x" and no "\\.\pipe\a\b"), and the canonical name is at most
 * AIPC_PROTO_PIPE_MAX UTF-16 characters. Anything else starting with '\' is refused.
 */
#ifndef AIPC_PROTO_NAMES_H
#define AIPC_PROTO_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether s[0..n) is a valid client name. */
bool aipc_proto_name_valid(const char *s, size_t n);

/* Writes the canonical full pipe name of the NUL-terminated `in` into out (NUL-terminated) and
 * returns its length in bytes (> AIPC_PROTO_PIPE_PREFIX_LEN; the short NAME starts at
 * out + AIPC_PROTO_PIPE_PREFIX_LEN); 0 when `in` is NULL or not a valid pipe name. */
size_t aipc_proto_pipe_name(const char *in, char out[AIPC_PROTO_PIPE_BUF]);

#ifdef __cplusplus
}
#endif
#endif
