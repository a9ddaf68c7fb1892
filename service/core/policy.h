/*
 * policy.h - the broker's access policy: who may publish, subscribe, send and request what, and
 * which client names are reserved to whom (the config key "policy"; docs/protocol.md section 9).
 *
 * A policy is an ordered list of rules and a map of reserved names, evaluated against a client's
 * identity (aipc_identity: user SID, session, groups) as the engine learnt it at connect.
 *
 *   "policy": {
 *     "default": "deny",                                   optional, "deny" (default) | "allow"
 *     "rules": [
 *       {"allow": ["pub","sub"], "who": "*",  "topic": "session/%s/#"},
 *       {"deny":  ["send","req"], "who": "BG"},
 *       {"allow": ["send","req"], "who": "AU", "to": "svc.*", "to_user": "SY"},
 *       {"allow": ["send","req"], "who": "*", "to_session": "%s"}
 *     ],
 *     "names": {"svc.print": "SY", "ui.*": ["BA", "S-1-5-21-1-2-3-1001"]}
 *   }
 *
 * Rules: the FIRST rule (in order) whose op list, principal and resource all match decides;
 * when none does, "default" decides. Ops: "pub", "sub", "send", "req", or "*" (all four).
 * Replies are not governed: only the client a request was delivered to can answer it, once.
 * Principals ("who", "to_user", reserved name owners): "*" (anyone), a SID string, an SDDL
 * alias of a well-known SID (BA, BU, AU, IU, SY, LS, NS, WD, ...), or "%u" (the acting client's
 * own user: useful in "to_user"). A principal matches a client whose user SID is it or which
 * holds it as a group - for allow rules only enabled groups count, for deny rules deny-only
 * groups count too. Integrity labels (LW, ME, HI, SI, "S-1-16-<level>") are thresholds: in a
 * deny rule they match a client at that level or below (a process can lower its own level), in
 * an allow rule one at that level or above.
 * Resources: pub/sub rules may have "topic" (an MQTT filter; absent: every topic, "$" ones
 * included); %u and %s in it stand for the acting client's user SID and session id. A pub matches when its topic matches the filter;
 * a sub matches an ALLOW rule when every topic its filter can match is matched by the rule's
 * filter, and a DENY rule when the two filters share any topic (so no subscription can ever
 * reach a denied topic). As in MQTT, filters starting with a wildcard never match "$" topics.
 * send/req rules may have "to" (the target's name: exact, "*" any client including anonymous
 * ones, or "prefix*"; %u/%s substituted), "to_user" (a principal the target must match) and
 * "to_session" ("%s": the acting client's session, or a session number).
 * When the acting client's identity is unknown, rules that need it (%u, %s, a SID principal)
 * never match as allow rules and always match as deny rules.
 * Reserved names: a hello whose name matches a pattern (exact, or "prefix*") must come from a
 * client matching one of the pattern's owners (allow semantics), else `name_reserved`. When
 * several patterns match, the most specific decides (exact over prefix, longer prefix first).
 *
 * Bounds: 1024 rules, 1024 reserved names, 16 principals per list, patterns of 1024 bytes with
 * at most 8 placeholders. Thread: a policy is immutable once parsed; any thread may read it.
 */
#ifndef AIPC_BROKER_POLICY_H
#define AIPC_BROKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "proto/topic.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_policy aipc_policy;

/* Operations a rule can govern (bit mask). */
#define AIPC_POLICY_PUB  1u
#define AIPC_POLICY_SUB  2u
#define AIPC_POLICY_SEND 4u
#define AIPC_POLICY_REQ  8u

#define AIPC_POLICY_MAX_RULES      1024u
#define AIPC_POLICY_MAX_NAMES      1024u
#define AIPC_POLICY_MAX_PRINCIPALS 16u
#define AIPC_POLICY_PATTERN_MAX    1024u
#define AIPC_POLICY_MAX_PLACEHOLDERS 8u

struct cJSON;

/* Parses the value of the "policy" key (JSON text of one object). Returns 0 with *out set, or
 * AIPC_EINVAL with a one-line message naming the key ("policy.rules[2].topic") in err, or
 * AIPC_ENOMEM. */
int aipc_policy_parse(const char *json, size_t len, aipc_policy **out, char *err, size_t errlen);
/* The same from an already parsed cJSON value (the config loader's). */
int aipc_policy_from_cjson(const struct cJSON *obj, aipc_policy **out, char *err, size_t errlen);
/* A deep copy (NULL on out of memory or when p is NULL). */
aipc_policy *aipc_policy_clone(const aipc_policy *p);
void aipc_policy_free(aipc_policy *p);
size_t aipc_policy_rule_count(const aipc_policy *p);

/* The verdict of a check: allowed or not, and which rule decided (-1: the default). */
typedef struct aipc_policy_verdict {
    bool allow;
    int rule;
} aipc_policy_verdict;

/* May `who` (NULL = identity unknown) publish on `topic` (op AIPC_POLICY_PUB) or subscribe to
 * the filter `topic` (AIPC_POLICY_SUB)? The topic/filter must be valid (the router checks). */
aipc_policy_verdict aipc_policy_check_topic(const aipc_policy *p, const aipc_identity *who,
                                            unsigned op, const char *topic, size_t n);
/* May `who` send (AIPC_POLICY_SEND) or send a request (AIPC_POLICY_REQ) to the client named
 * `to_name` ("" = anonymous) whose identity is `target` (NULL = unknown)? */
aipc_policy_verdict aipc_policy_check_target(const aipc_policy *p, const aipc_identity *who,
                                             unsigned op, const char *to_name,
                                             const aipc_identity *target);
/* May `who` take the name? true when the name is not reserved or `who` is one of its owners. */
bool aipc_policy_check_name(const aipc_policy *p, const aipc_identity *who, const char *name);

/* MQTT filter relations used for sub (exposed for tests): does every topic that `inner` can
 * match also match `outer`? Do the two filters share at least one topic? Both valid filters. */
bool aipc_filter_covers(const char *outer, size_t on, const char *inner, size_t in);
bool aipc_filter_overlaps(const char *a, size_t an, const char *b, size_t bn);
/* Whether a filter matches a topic is proto/topic.h's aipc_proto_topic_match. */

#ifdef __cplusplus
}
#endif
#endif
