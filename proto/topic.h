/*
 * topic.h - topics and filters (MQTT style): validity and the one matcher. Portable, pure
 * functions (any thread). The SDK checks what it sends with these before anything is queued,
 * and the broker checks what it receives with the same functions, so a client learns of a bad
 * topic synchronously (AIPC_EINVAL) and the broker never has to refuse one the SDK accepted.
 *
 * Rules (docs/protocol.md section 3):
 *   - Topics and filters are 1..AIPC_PROTO_TOPIC_MAX_BYTES bytes of strict UTF-8 (no overlongs,
 *     no surrogates, <= U+10FFFF) without control characters (< 0x20), with at most
 *     AIPC_PROTO_TOPIC_MAX_LEVELS '/'-separated levels; empty levels are allowed.
 *   - A publication topic has no '+' or '#' anywhere and does not start with '$' (reserved for
 *     the broker's $bus/... topics).
 *   - In a filter '+' is a whole level and '#' the whole last level; '$' may start a filter.
 *   - Matching: '+' is any one level, '#' any number of levels including none ("a/#" matches
 *     "a"); a filter whose first level is '+' or '#' matches no topic starting with '$'.
 */
#ifndef AIPC_PROTO_TOPIC_H
#define AIPC_PROTO_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Strict UTF-8 over s[0..n). */
bool aipc_proto_utf8_valid(const char *s, size_t n);
/* A topic that may be published. */
bool aipc_proto_topic_valid(const char *t, size_t n);
/* A subscription filter. */
bool aipc_proto_filter_valid(const char *f, size_t n);

/* One level of a topic or filter: s[0..len), not NUL-terminated. */
typedef struct aipc_proto_level {
    const char *s;
    size_t len;
} aipc_proto_level;

/* The matcher: filter levels f[0..nf) against topic levels t[0..nt) (the broker's retained
 * store calls it with the levels of its trie paths). */
bool aipc_proto_match_levels(const aipc_proto_level *f, size_t nf, const aipc_proto_level *t,
                             size_t nt);
/* Whether topic[0..tn) matches filter[0..fn) (the same matcher, levels split as it goes). */
bool aipc_proto_topic_match(const char *filter, size_t fn, const char *topic, size_t tn);

#ifdef __cplusplus
}
#endif
#endif
