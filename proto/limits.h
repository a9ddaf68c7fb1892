/*
 * limits.h - the protocol's limits, shared by the SDK, the broker and aipc (portable; no I/O).
 * docs/protocol.md section 2 states them for peers; asyncipc.h carries the public ones
 * (AIPC_MAX_META, AIPC_FRAME_HEADER_SIZE, AIPC_PROTO_VERSION, AIPC_DEFAULT_MAX_PAYLOAD).
 * Include as "proto/limits.h" (never on the include path by itself: <limits.h> is libc's).
 */
#ifndef AIPC_PROTO_LIMITS_H
#define AIPC_PROTO_LIMITS_H

#include "asyncipc/asyncipc.h"

/* Client names: 1..128 bytes of [A-Za-z0-9._-] (safe in logs and JSON without escaping). */
#define AIPC_PROTO_NAME_MAX 128u

/* Topics and filters: 1..32000 bytes. A topic at the limit, even with every byte escaped twice
 * over in JSON ('"' and '\\' are the only printable bytes JSON escapes; control characters are
 * refused), still fits a meta (AIPC_MAX_META) with the other fields of a msg frame. */
#define AIPC_PROTO_TOPIC_MAX_BYTES 32000u
/* At most 256 levels ('/'-separated): bounds the broker's trie walks and every level array. */
#define AIPC_PROTO_TOPIC_MAX_LEVELS 256u

/* Pipe names: "\\.\pipe\NAME" (prefix in any ASCII case) or "NAME"; the canonical full name
 * is at most 256 UTF-16 characters (Windows' limit), so NAME is at most 247 of them, and in
 * UTF-8 at most 3 bytes each. */
#define AIPC_PROTO_PIPE_PREFIX     "\\\\.\\pipe\\"
#define AIPC_PROTO_PIPE_PREFIX_LEN 9u
#define AIPC_PROTO_PIPE_MAX        256u
#define AIPC_PROTO_PIPE_NAME_BUF   (3u * (AIPC_PROTO_PIPE_MAX - AIPC_PROTO_PIPE_PREFIX_LEN) + 1u)
#define AIPC_PROTO_PIPE_BUF        (AIPC_PROTO_PIPE_PREFIX_LEN + AIPC_PROTO_PIPE_NAME_BUF)

/* Ids and other integers travel as JSON numbers: exact up to 2^53 - 1. */
#define AIPC_PROTO_ID_MAX_EXACT 9007199254740991.0

#endif
